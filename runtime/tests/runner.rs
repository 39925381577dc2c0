//! The runner as the CLI drives it: it stops when its caller says so, and
//! hands what a user should see to the caller as events instead of printing.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowrun_runtime::runner::{run_file, EventSink, RunError, RunEvent, RunOptions};
use support::{board, catalogue, finish, unique, wait_until};

const LIMIT: Duration = Duration::from_secs(30);

type Run = tokio::task::JoinHandle<Result<flowrun_runtime::RunReport, RunError>>;
type Events = Arc<Mutex<Vec<RunEvent>>>;

/// Runs the spec `text` until `stop` resolves, recording its events.
fn start(
    dir: &Path,
    text: &str,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> (Run, Events) {
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, text).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink: EventSink = {
        let events = events.clone();
        Arc::new(move |event| events.lock().unwrap().push(event))
    };
    let options = RunOptions {
        watch: false,
        status_interval: Duration::from_millis(50),
        drain_timeout: Duration::from_secs(5),
        ..RunOptions::default()
    };
    let run =
        tokio::spawn(
            async move { run_file(&path, Arc::new(catalogue()), options, stop, sink).await },
        );
    (run, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reports_its_status_stops_when_told_and_says_so_last() {
    let dir = tempfile::tempdir().unwrap();
    let (src, sink) = (unique("src"), unique("sink"));
    // A source that would run for minutes: only the stop future ends it.
    let spec = format!(
        "version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 100000, interval_us: 1000}}\n  sink: {{type: test_sink, board: {sink}, tag: a, inputs: [src]}}\n"
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (run, events) = start(dir.path(), &spec, async {
        let _ = stop_rx.await;
    });
    let statuses = || {
        let events = events.lock().unwrap();
        events
            .iter()
            .filter(|e| matches!(e, RunEvent::Status(line) if line.contains("sink")))
            .count()
    };
    wait_until("two status events", LIMIT, || statuses() >= 2).await;
    stop_tx.send(()).unwrap();
    let report = finish(run, LIMIT).await.unwrap();
    assert!(report.is_success(), "{report:?}");
    // Drained, not cut: every message the source sent was stored.
    assert_eq!(board(&sink).stored.len(), board(&src).outcomes.len());
    let events = events.lock().unwrap();
    assert!(
        matches!(events.last(), Some(RunEvent::Stopped)),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_are_events_and_errors_are_returned() {
    let dir = tempfile::tempdir().unwrap();
    let never = std::future::pending::<()>();
    // A source feeding nothing: a warning, and the spec still runs to its end.
    let src = unique("src");
    let spec =
        format!("version: 1\nnodes:\n  src: {{type: test_source, board: {src}, count: 3}}\n");
    let (run, events) = start(dir.path(), &spec, never);
    let report = finish(run, LIMIT).await.unwrap();
    assert!(report.is_success(), "{report:?}");
    {
        let events = events.lock().unwrap();
        assert!(
            matches!(events.first(), Some(RunEvent::Diagnostic(d)) if !d.is_error()),
            "{events:?}"
        );
        assert!(
            matches!(events.last(), Some(RunEvent::Stopped)),
            "{events:?}"
        );
    }

    let bad = "version: 1\nnodes:\n  src: {type: test_sourze}\n";
    let (run, events) = start(dir.path(), bad, std::future::pending());
    let result = finish(run, LIMIT).await;
    let Err(RunError::Invalid(diagnostics, _)) = result else {
        panic!("an invalid spec must be refused: {result:?}");
    };
    assert!(diagnostics.iter().any(|d| d.is_error()));
    // Errors are the caller's to show, once: nothing ran, nothing was reported.
    assert!(events.lock().unwrap().is_empty());
}
