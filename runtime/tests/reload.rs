//! Hot reload through the file watcher, as `flowrun SPEC` does it: editors
//! save by writing a temporary file and renaming it over the spec.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flowrun_runtime::runner::{run_file, RunOptions};
use flowrun_runtime::AckStatus;
use support::{board, catalogue, finish, unique, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

/// Saves `text` over `path` the way editors do: write aside, then rename.
fn save(path: &Path, text: &str) {
    let aside = path.with_extension("yaml.swp");
    std::fs::write(&aside, text).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_to_the_spec_file_apply_live_with_nothing_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipeline.yaml");
    let src = unique("src");
    let sink = unique("sink");
    let count = 4000;
    let spec = |tag: &str| {
        format!(
            "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: {count}, interval_us: 500}}\n  sink: {{type: test_sink, board: {sink}, tag: {tag}, inputs: [src]}}\n"
        )
    };
    save(&path, &spec("v0"));
    let options = RunOptions {
        watch: true,
        ..RunOptions::default()
    };
    let run = tokio::spawn({
        let path = path.clone();
        async move {
            let no_stop = std::future::pending();
            run_file(
                &path,
                Arc::new(catalogue()),
                options,
                no_stop,
                Arc::new(|_| {}),
            )
            .await
        }
    });
    wait_until("the first sink", LIMIT, || board(&sink).stored.len() >= 100).await;

    // A broken save is refused and the running graph keeps going.
    save(&path, "version: 1\nnodes:\n  src: {type: test_sourze}\n");
    let stored_before = board(&sink).stored.len();
    wait_until("progress after a refused save", LIMIT, || {
        board(&sink).stored.len() >= stored_before + 200
    })
    .await;
    assert_eq!(
        board(&sink).builds,
        1,
        "an invalid spec must not touch the running graph"
    );

    let edits = 5;
    for k in 1..=edits {
        save(&path, &spec(&format!("v{k}")));
        wait_until("the reload to restart the sink", LIMIT, || {
            board(&sink).builds == k + 1
        })
        .await;
    }
    let report = finish(run, LIMIT).await.unwrap();
    assert!(report.is_success(), "{report:?}");

    let stored = board(&sink).stored;
    let seqs: BTreeSet<u64> = stored.iter().map(|(q, _)| *q).collect();
    assert_eq!(
        (stored.len(), seqs.len()),
        (count as usize, count as usize),
        "exactly once"
    );
    assert!(
        stored.iter().any(|(_, tag)| tag == &format!("v{edits}")),
        "the last edit took effect"
    );
    assert_eq!(board(&src).builds, 1, "the unchanged source kept running");
    assert!(board(&src)
        .outcomes
        .iter()
        .all(|(_, s)| *s == AckStatus::Delivered));
}
