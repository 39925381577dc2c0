//! `delay` through the real engine: each message is held for `ms`, up to
//! `concurrency` at once, and still acknowledged end to end.

mod support;

use std::time::{Duration, Instant};

use support::engine;

fn spec(count: u32, ms: u64, concurrency: usize) -> String {
    format!(
        r#"
version: 1
name: delay
nodes:
  gen:
    type: generate
    count: {count}
    size: 16
    require_ack: true
  slow:
    type: delay
    inputs: [gen]
    ms: {ms}
    concurrency: {concurrency}
  out:
    type: print
    inputs: [slow]
"#
    )
}

/// Runs `count` messages through the delay; the time until all were acknowledged.
async fn run(count: u32, ms: u64, concurrency: usize) -> Duration {
    let started = Instant::now();
    let running = engine::start(&spec(count, ms, concurrency), &[]);
    let report = running.finished(Duration::from_secs(30)).await;
    assert!(report.is_success(), "{report:?}");
    started.elapsed()
}

#[tokio::test]
async fn holds_each_message_and_overlaps_up_to_concurrency() {
    // 10 messages of 200 ms held all at once: about 200 ms, far from the
    // 2 s they would take one after another.
    let parallel = run(10, 200, 10).await;
    assert!(parallel >= Duration::from_millis(200), "{parallel:?}");
    assert!(parallel < Duration::from_millis(1500), "{parallel:?}");

    // One at a time: at least 10 × 100 ms.
    let serial = run(10, 100, 1).await;
    assert!(serial >= Duration::from_millis(1000), "{serial:?}");
}
