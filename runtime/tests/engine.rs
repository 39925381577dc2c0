//! The engine end to end: acknowledgements across fan-out and derived
//! messages, failures and restarts, shutdown draining, and reloads.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use flowrun_runtime::AckStatus;
use support::{board, finish, plan, start, unique, wait_until};

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_is_acked_only_when_every_copy_and_part_is_stored() {
    let src = unique("src");
    let (fast, slow) = (unique("fast"), unique("slow"));
    let spec = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 50}}\n  split: {{type: test_split, parts: 3, inputs: [src]}}\n  fast: {{type: test_sink, board: {fast}, inputs: [split]}}\n  slow: {{type: test_sink, board: {slow}, delay_ms: 1, inputs: [split]}}\n"
    );
    let (_handle, metrics, task) = start(&spec, LIMIT);
    let report = finish(task, LIMIT).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(board(&fast).stored.len(), 150);
    assert_eq!(board(&slow).stored.len(), 150);
    let outcomes = board(&src).outcomes;
    assert_eq!(outcomes.len(), 50);
    assert!(
        outcomes.iter().all(|(_, s)| *s == AckStatus::Delivered),
        "{outcomes:?}"
    );
    let seqs: Vec<u64> = outcomes.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (0..50).collect::<Vec<_>>(),
        "outcomes come back in arrival order"
    );
    let counts = metrics.node("slow").snapshot();
    assert_eq!(
        (counts.received, counts.acked, counts.nacked),
        (150, 150, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_on_one_branch_reaches_the_source() {
    let src = unique("src");
    let (ok, picky) = (unique("ok"), unique("picky"));
    let spec = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 20}}\n  ok: {{type: test_sink, board: {ok}, inputs: [src]}}\n  picky: {{type: test_sink, board: {picky}, reject_every: 5, inputs: [src]}}\n"
    );
    let (_handle, metrics, task) = start(&spec, LIMIT);
    finish(task, LIMIT).await;
    let outcomes = board(&src).outcomes;
    for (seq, status) in outcomes {
        let expected = if seq % 5 == 0 {
            AckStatus::Rejected
        } else {
            AckStatus::Delivered
        };
        assert_eq!(status, expected, "message {seq}");
    }
    assert_eq!(metrics.node("picky").snapshot().nacked, 4);
    assert_eq!(board(&ok).stored.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_node_fails_its_message_restarts_and_keeps_its_queue() {
    let src = unique("src");
    let sink = unique("sink");
    let spec = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 100}}\n  sink: {{type: test_sink, board: {sink}, panic_on: 10, inputs: [src]}}\n"
    );
    let (_handle, metrics, task) = start(&spec, LIMIT);
    let report = finish(task, LIMIT).await;
    assert!(
        report.failures.is_empty(),
        "a restarted node is not a failure of the run: {report:?}"
    );
    let outcomes = board(&src).outcomes;
    let failed: Vec<u64> = outcomes
        .iter()
        .filter(|(_, s)| *s == AckStatus::Failed)
        .map(|(q, _)| *q)
        .collect();
    assert_eq!(
        failed,
        vec![10],
        "only the message in hand at the panic fails"
    );
    let stored: BTreeSet<u64> = board(&sink).stored.iter().map(|(q, _)| *q).collect();
    assert_eq!(
        stored.len(),
        99,
        "everything queued behind it is stored by the restarted node"
    );
    let counts = metrics.node("sink").snapshot();
    assert_eq!((counts.errors, counts.restarts), (1, 1));
    assert_eq!(board(&sink).builds, 2);
    // The status word was the failed instance's; the one running now has
    // said nothing (it does not stay "restarting: …" for the rest of the run).
    assert_eq!(metrics.node("sink").state(), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_failure_stop_ends_the_run_with_the_node_named() {
    let src = unique("src");
    let sink = unique("sink");
    let spec = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 1000000, interval_us: 100}}\n  sink: {{type: test_sink, board: {sink}, fail_at_start: true, on_failure: stop, inputs: [src]}}\n"
    );
    let (_handle, _metrics, task) = start(&spec, Duration::from_secs(2));
    let report = finish(task, LIMIT).await;
    assert_eq!(
        report.failures.get("sink").map(String::as_str),
        Some("told to fail")
    );
    assert!(!report.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_what_is_queued() {
    let src = unique("src");
    let sink = unique("sink");
    let spec = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 1000000}}\n  sink: {{type: test_sink, board: {sink}, delay_ms: 1, inputs: [{{from: src, capacity: 32}}]}}\n"
    );
    let (handle, metrics, task) = start(&spec, LIMIT);
    wait_until("some messages stored", LIMIT, || {
        board(&sink).stored.len() >= 10
    })
    .await;
    handle.shutdown();
    let report = finish(task, LIMIT).await;
    assert!(report.is_success(), "{report:?}");
    let sent = metrics.node("src").snapshot().sent;
    assert_eq!(
        board(&sink).stored.len() as u64,
        sent,
        "every message sent before the stop is stored"
    );
    let outcomes = board(&src).outcomes;
    assert_eq!(outcomes.len() as u64, sent);
    assert!(outcomes.iter().all(|(_, s)| *s == AckStatus::Delivered));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stuck_past_the_drain_deadline_is_cut_short_and_its_messages_fail() {
    let src = unique("src");
    let sink = unique("sink");
    let spec = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 5}}\n  sink: {{type: test_sink, board: {sink}, hang: true, inputs: [src]}}\n"
    );
    let (handle, _metrics, task) = start(&spec, Duration::from_millis(300));
    wait_until("the sink to take a message", LIMIT, || {
        support::board(&sink).builds == 1
    })
    .await;
    handle.shutdown();
    let report = finish(task, LIMIT).await;
    assert_eq!(report.cut_short, vec!["sink".to_owned()]);
    let outcomes = board(&src).outcomes;
    assert_eq!(outcomes.len(), 5);
    assert!(
        outcomes.iter().all(|(_, s)| *s == AckStatus::Failed),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_oldest_inputs_drop_and_count_instead_of_blocking() {
    let src = unique("src");
    let sink = unique("sink");
    let spec = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 200}}\n  sink: {{type: test_sink, board: {sink}, delay_ms: 2, inputs: [{{from: src, capacity: 4, overflow: drop_oldest}}]}}\n"
    );
    let (_handle, metrics, task) = start(&spec, LIMIT);
    finish(task, LIMIT).await;
    let stored = board(&sink).stored.len() as u64;
    let dropped = metrics.node("sink").snapshot().dropped;
    assert!(dropped > 0, "a slow sink behind a fast source must drop");
    assert_eq!(
        stored + dropped,
        200,
        "every message is either stored or counted as dropped"
    );
    let failed = board(&src)
        .outcomes
        .iter()
        .filter(|(_, s)| *s == AckStatus::Failed)
        .count() as u64;
    assert_eq!(
        failed, dropped,
        "a dropped message fails its acknowledgement"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_mid_stream_deliver_every_message_exactly_once() {
    let src = unique("src");
    let sink = unique("sink");
    let spec = |tag: usize, note: usize| {
        format!(
            "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 3000, interval_us: 200}}\n  relay: {{type: test_relay, note: n{note}, inputs: [src]}}\n  sink: {{type: test_sink, board: {sink}, tag: t{tag}, inputs: [relay]}}\n"
        )
    };
    let (handle, _metrics, task) = start(&spec(0, 0), LIMIT);
    let reloads = 12;
    for k in 1..=reloads {
        wait_until("progress between reloads", LIMIT, || {
            board(&sink).stored.len() >= k * 150
        })
        .await;
        // Alternate between reconfiguring the sink and the node before it.
        let next = if k % 2 == 0 {
            spec(k, k - 1)
        } else {
            spec(k - 1, k)
        };
        let report = handle.reload(plan(&next)).await.expect("engine running");
        assert_eq!(report.diff.changed.len(), 1, "{:?}", report.diff);
        assert_eq!(report.diff.unchanged, 2);
        assert!(report.cut_short.is_empty());
    }
    let report = finish(task, Duration::from_secs(60)).await;
    assert!(report.is_success(), "{report:?}");
    let stored = board(&sink).stored;
    let unique_seqs: BTreeSet<u64> = stored.iter().map(|(q, _)| *q).collect();
    assert_eq!(stored.len(), 3000, "no duplicates");
    assert_eq!(unique_seqs.len(), 3000, "no loss");
    let tags: BTreeSet<&str> = stored.iter().map(|(_, t)| t.as_str()).collect();
    assert!(
        tags.len() > reloads / 2,
        "the new sink configs took effect: {tags:?}"
    );
    assert_eq!(
        board(&src).builds,
        1,
        "the unchanged source was never restarted"
    );
    assert!(board(&src)
        .outcomes
        .iter()
        .all(|(_, s)| *s == AckStatus::Delivered));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_adds_removes_and_rewires_nodes() {
    let src = unique("src");
    let (a, b) = (unique("a"), unique("b"));
    let first = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 100000, interval_us: 100}}\n  a: {{type: test_sink, board: {a}, inputs: [src]}}\n"
    );
    let second = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 100000, interval_us: 100}}\n  relay: {{type: test_relay, inputs: [src]}}\n  b: {{type: test_sink, board: {b}, inputs: [relay]}}\n"
    );
    let (handle, metrics, task) = start(&first, LIMIT);
    wait_until("a to store", LIMIT, || board(&a).stored.len() >= 20).await;
    let report = handle.reload(plan(&second)).await.expect("engine running");
    assert_eq!(report.diff.added, vec!["relay".to_owned(), "b".to_owned()]);
    assert_eq!(report.diff.removed, vec!["a".to_owned()]);
    assert!(
        report.summary().starts_with("+2 −1 ~0"),
        "{}",
        report.summary()
    );
    let stored_by_a = board(&a).stored.len();
    wait_until("b to store", LIMIT, || board(&b).stored.len() >= 20).await;
    assert_eq!(
        board(&a).stored.len(),
        stored_by_a,
        "the removed node stores nothing more"
    );
    assert!(
        !metrics.render().contains("node=\"a\""),
        "a removed node leaves /metrics"
    );
    handle.shutdown();
    let report = finish(task, LIMIT).await;
    assert!(report.is_success(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_an_inputs_queue_settings_mid_stream_loses_nothing() {
    let src = unique("src");
    let sink = unique("sink");
    let spec = |capacity: usize| {
        format!(
            "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 2000, interval_us: 100}}\n  sink: {{type: test_sink, board: {sink}, inputs: [{{from: src, capacity: {capacity}}}]}}\n"
        )
    };
    let (handle, _metrics, task) = start(&spec(1), LIMIT);
    // Back to capacity 1 on purpose: the first edge, closed, must not be reused.
    for (k, capacity) in [2, 64, 1, 8].into_iter().enumerate() {
        wait_until("progress between reloads", LIMIT, || {
            board(&sink).stored.len() >= (k + 1) * 200
        })
        .await;
        let report = handle
            .reload(plan(&spec(capacity)))
            .await
            .expect("engine running");
        let rewired: Vec<&str> = report
            .diff
            .rewired
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(rewired, ["sink"]);
        assert!(
            report.details()[0].contains(&format!("(capacity {capacity}, ")),
            "{:?}",
            report.details()
        );
    }
    let report = finish(task, LIMIT).await;
    assert!(report.is_success(), "{report:?}");
    let seqs: BTreeSet<u64> = board(&sink).stored.iter().map(|(q, _)| *q).collect();
    assert_eq!((board(&sink).stored.len(), seqs.len()), (2000, 2000));
    assert_eq!(board(&sink).builds, 1, "a rewired node keeps running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_middle_node_rewires_its_neighbours_without_stopping_them() {
    let src = unique("src");
    let sink = unique("sink");
    let with_relay = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 2000, interval_us: 100}}\n  relay: {{type: test_relay, inputs: [src]}}\n  sink: {{type: test_sink, board: {sink}, inputs: [relay]}}\n"
    );
    let direct = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 2000, interval_us: 100}}\n  sink: {{type: test_sink, board: {sink}, inputs: [src]}}\n"
    );
    let (handle, _metrics, task) = start(&with_relay, LIMIT);
    wait_until("the relayed stream", LIMIT, || {
        board(&sink).stored.len() >= 200
    })
    .await;
    let report = handle.reload(plan(&direct)).await.expect("engine running");
    assert_eq!(report.diff.removed, vec!["relay".to_owned()]);
    assert_eq!(report.details(), ["− relay", "~ sink: inputs relay → src"]);
    let report = finish(task, LIMIT).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        board(&sink).builds,
        1,
        "the sink kept running through the rewire"
    );
    let stored = board(&sink).stored.len();
    let failed = board(&src)
        .outcomes
        .iter()
        .filter(|(_, s)| *s == AckStatus::Failed)
        .count();
    assert!(
        stored >= 1500,
        "the stream went on after the reload: {stored} stored"
    );
    assert_eq!(
        stored + failed,
        2000,
        "every message is stored or failed back to its source"
    );
}
