//! Scenario 7: the edge's cloud link is down for 60 s, `mqtt_pub` spools to
//! disk, and the edge flowrun is killed with SIGKILL mid-capture and
//! restarted while the link is still down. Every face it captured (put in
//! the spool) must reach the bucket once the link returns.
//!
//! Beyond tests/spool.rs: real face PNGs, the link cut under a running
//! publisher (not a broker that was never there), the kill in the middle
//! of capturing, a second run capturing more on top of the first run's
//! spool, and the shipped cloud-cos storing into s3s-fs at the far end.
//!
//! The faces come from a `files` node over real Megamind crops (one file
//! per face, named in capture order), so that each run captures a known,
//! ordered sequence: run A captures `a-00000`… until it is killed, run B
//! captures `b-00000`…`b-00999`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::report::Figures;
use crate::{bucket_keys, start_cloud, wait_for_keys, BUCKET, FLOWRUN, SERIAL, START};
use flowrun_test_support::crops::{self, name};
use flowrun_test_support::mosquitto::Mosquitto;
use flowrun_test_support::proxy::Proxy;
use flowrun_test_support::s3::S3Server;

const DEVICE: &str = "door-7";
/// What the issue asks for.
const LINK_DOWN: Duration = Duration::from_secs(60);
const RUN_A: usize = 2_000;
const RUN_B: usize = 1_000;
/// Run A is killed once this many faces are in its spool.
const KILL_AT: u64 = 1_200;
const DELIVERY: Duration = Duration::from_secs(90);

/// files → mqtt_pub with a spool, at QoS 1, one face every 2 ms.
/// `reconnect_max_ms` is lowered from its 30 s default so that the time
/// to recover measures the spool, not the backoff.
fn spec(dir: &Path) -> String {
    let path = dir.join("edge-spooled.yaml");
    std::fs::write(
        &path,
        r#"version: 1
name: edge-spooled
nodes:
  faces:
    type: files
    path: ${FACES_DIR}
    interval_ms: 2
  publish:
    type: mqtt_pub
    inputs: [faces]
    broker:
      url: ${CLOUD_BROKER}
      client_id: ${DEVICE_ID}-publisher
      reconnect_min_ms: 100
      reconnect_max_ms: 1000
    topic: faces/${DEVICE_ID}/{file_name}
    qos: 1
    spool: {dir: "${SPOOL_DIR}", max_bytes: 1073741824}
"#,
    )
    .unwrap();
    path.display().to_string()
}

fn key(name: &str) -> String {
    format!("faces/{DEVICE}/{name}.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spooled_edge_killed_while_its_link_is_down_delivers_every_face() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    crops::write_numbered(FLOWRUN, &dir.path().join("a"), "a", RUN_A).await;
    crops::write_numbered(FLOWRUN, &dir.path().join("b"), "b", RUN_B).await;
    let cloud_broker = Mosquitto::start();
    let store = S3Server::start();
    store.create_bucket(BUCKET).await;
    let cloud = start_cloud(cloud_broker.url(), store.endpoint(), &store).await;
    let link = Proxy::start(cloud_broker.port, Duration::ZERO).await;

    let spec = spec(dir.path());
    let env = |faces: &str| {
        vec![
            ("FACES_DIR", dir.path().join(faces).display().to_string()),
            ("CLOUD_BROKER", link.url("mqtt")),
            ("DEVICE_ID", DEVICE.to_string()),
            ("SPOOL_DIR", dir.path().join("spool").display().to_string()),
        ]
    };
    let mut run_a = FLOWRUN.start("edge run A", &spec, &env("a"));
    run_a
        .wait_until("delivering", START, |s| s.count("publish", "ack") >= 100)
        .await;
    link.cut();
    let cut = Instant::now();
    run_a
        .wait_until("spooling with the link down", START, |s| {
            s.count("publish", "ack") >= KILL_AT
        })
        .await;
    // At least this many were in the spool when it died.
    let captured_a = run_a.kill().count("publish", "ack");
    assert!(
        captured_a < RUN_A as u64,
        "run A captured every face before the kill: not mid-stream"
    );

    let mut run_b = FLOWRUN.start("edge run B (restarted)", &spec, &env("b"));
    let b_done = format!("done: {RUN_B} files");
    run_b
        .wait_until("capturing run B with the link down", START, |s| {
            s.state("faces") == b_done && s.count("publish", "ack") == RUN_B as u64
        })
        .await;
    let down_left = LINK_DOWN.saturating_sub(cut.elapsed());
    assert!(
        down_left > Duration::ZERO,
        "capturing with the link down took longer than the {LINK_DOWN:?} outage"
    );
    // The outage itself: a fixed time by definition, nothing to wait for.
    tokio::time::sleep(down_left).await;
    link.restore();
    let up = Instant::now();

    let mut expected: BTreeSet<String> = (0..captured_a as usize)
        .map(|i| key(&name("a", i)))
        .collect();
    expected.extend((0..RUN_B).map(|i| key(&name("b", i))));
    wait_for_keys(&store, &expected, DELIVERY).await;
    let recover = up.elapsed();
    let (_, clean) = run_b.stop().await;
    assert!(clean, "run B did not exit cleanly");
    let (cloud_end, clean) = cloud.stop().await;
    assert!(clean, "cloud-cos did not exit cleanly");

    let keys = bucket_keys(&store).await;
    let present = |prefix: &str, i: usize| keys.contains(&key(&name(prefix, i)));
    // The spool keeps capture order: run A's faces in the bucket must be
    // a gap-free `a-00000…` at least as long as its last acknowledged count.
    let a_end = (0..RUN_A)
        .rev()
        .find(|&i| present("a", i))
        .map_or(0, |i| i + 1);
    let a_present = (0..a_end).filter(|&i| present("a", i)).count();
    let b_present = (0..RUN_B).filter(|&i| present("b", i)).count();
    let captured = a_end.max(captured_a as usize) + RUN_B;
    let figures = Figures {
        scenario: "7-link-down-60s-spool-sigkill",
        sent: captured as u64,
        stored: (a_present + b_present) as u64,
        lost: (captured - a_present - b_present) as u64,
        duplicated: cloud_end
            .state_count("store", "stored")
            .saturating_sub(keys.len() as u64),
        recover_ms: recover.as_millis(),
        extra: vec![
            ("link_down_s", LINK_DOWN.as_secs().to_string()),
            ("a_acknowledged_at_last_status", captured_a.to_string()),
            ("a_captured", a_end.to_string()),
            ("b_captured", RUN_B.to_string()),
        ],
    };
    println!("{figures}");
    assert_eq!(figures.lost, 0, "{figures}");
    assert_eq!(keys.len(), captured, "objects beyond what was captured");
}
