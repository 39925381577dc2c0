//! Running a spec file the way `flowrun run` does: check it, start it, watch
//! it for changes, report on it, and stop it cleanly when told to.
//!
//! What belongs to the process stays with the caller (the CLI): which
//! signals stop a run, exiting, the terminal. The runner takes a future
//! that says "stop" and hands what a user should see to a callback as
//! [`RunEvent`]s; it logs through `tracing` and never prints.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::catalogue::Catalogue;
use crate::diagnostic::Diagnostic;
use crate::engine::{Engine, EngineHandle, RunReport};
use crate::metrics::Metrics;
use crate::reload;
use crate::validate::{load, validate};

/// How `run_file` behaves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Reload the spec when the file changes.
    pub watch: bool,
    /// Serve `/metrics` and `/healthz` here.
    pub metrics_addr: Option<SocketAddr>,
    /// How long in-flight messages may take to drain on stop or reload.
    pub drain_timeout: Duration,
    /// How often a [`RunEvent::Status`] is reported.
    pub status_interval: Duration,
    /// Where nodes keep state across runs; `None`: the default
    /// ([`crate::node::default_state_dir`]).
    pub state_dir: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            watch: true,
            metrics_addr: None,
            drain_timeout: Duration::from_secs(10),
            status_interval: Duration::from_secs(10),
            state_dir: None,
        }
    }
}

/// What a run reports to its caller for the user, besides its logs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RunEvent {
    /// A problem in the spec: each warning when the run starts, and every
    /// diagnostic of a reload (a refused one's errors).
    Diagnostic(Diagnostic),
    /// The counts so far (`Metrics::status_line`), every
    /// [`RunOptions::status_interval`].
    Status(String),
    /// The graph has stopped: no status follows, and the final counts are
    /// logged next.
    Stopped,
}

/// Where a run's [`RunEvent`]s go.
pub type EventSink = Arc<dyn Fn(RunEvent) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{} found in {}", plural(.0.iter().filter(|d| d.is_error()).count(), "error"), .1.display())]
    Invalid(Vec<Diagnostic>, PathBuf),
    #[error("cannot serve metrics on {0}: {1}")]
    Metrics(SocketAddr, std::io::Error),
    #[error(transparent)]
    Watch(#[from] reload::WatchError),
}

/// `n error` / `n errors`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Checks and runs the spec at `path` until its sources are exhausted or
/// `stop` resolves (then in-flight messages drain), reporting to `events`.
pub async fn run_file(
    path: &Path,
    catalogue: Arc<Catalogue>,
    options: RunOptions,
    stop: impl Future<Output = ()>,
    events: EventSink,
) -> Result<RunReport, RunError> {
    // The content the graph starts from: a later save that leaves it as it
    // is changes nothing.
    let mut file = reload::SpecFile::new(path);
    let checked = match file.reread() {
        reload::Reread::Changed(text) => validate(path, &text, &catalogue, &env),
        _ => load(path, &catalogue),
    };
    for warning in checked.warnings() {
        events(RunEvent::Diagnostic(warning.clone()));
    }
    let Some(plan) = checked.plan else {
        return Err(RunError::Invalid(checked.diagnostics, path.to_path_buf()));
    };
    let metrics = Metrics::new();
    let _server = match options.metrics_addr {
        Some(addr) => {
            let (bound, task) = metrics
                .serve(addr)
                .await
                .map_err(|e| RunError::Metrics(addr, e))?;
            tracing::info!("metrics on http://{bound}/metrics");
            Some(AbortOnDrop(task))
        }
        None => None,
    };
    tracing::info!(spec = %path.display(), nodes = plan.nodes.len(), "running {}", plan.name);
    let state_dir = options
        .state_dir
        .clone()
        .unwrap_or_else(crate::node::default_state_dir);
    let (engine, handle) =
        Engine::start_in(plan, metrics.clone(), options.drain_timeout, state_dir);
    let _watch = if options.watch {
        let (watcher, changes) = reload::watch(path)?;
        tracing::info!(
            "watching {} for changes (--no-watch turns this off)",
            path.display()
        );
        let task = tokio::spawn(reload_on_change(
            file,
            catalogue.clone(),
            handle.clone(),
            (watcher, changes),
            events.clone(),
        ));
        Some(AbortOnDrop(task))
    } else {
        None
    };
    let status = AbortOnDrop(tokio::spawn(report_status(
        metrics.clone(),
        options.status_interval,
        events.clone(),
    )));
    let report = engine.run(stop).await;
    drop(status);
    events(RunEvent::Stopped);
    tracing::info!("final counts: {}", metrics.status_line());
    Ok(report)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often the spec is read again when no file-system event came.
const REREAD_EVERY: Duration = Duration::from_secs(2);

/// How long a reload waits for the nodes it started to say their config
/// took effect before it is reported anyway.
const READY_LIMIT: Duration = Duration::from_secs(5);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Applies each change of the spec's content: reads it (only when the
/// watch saw something that may have changed it), checks it, and hands a
/// valid plan to the engine. Saves that leave the content as it was, and
/// the moments a save is half-done (the file gone or empty), change nothing
/// and print nothing above DEBUG.
async fn reload_on_change(
    mut file: reload::SpecFile,
    catalogue: Arc<Catalogue>,
    handle: EngineHandle,
    (mut watcher, mut changes): (reload::SpecWatcher, tokio::sync::mpsc::Receiver<()>),
    events: EventSink,
) {
    let path = file.path().to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut missing = false;
    loop {
        // The file is also read again now and then: file-system events can
        // be lost (notify-debouncer-full drops a delete that follows a
        // create within its window; remote file systems send none), and a
        // read that finds the same bytes costs little and prints nothing.
        let polled = tokio::select! {
            change = changes.recv() => match change {
                Some(()) => false,
                None => return,
            },
            _ = tokio::time::sleep(REREAD_EVERY) => true,
        };
        let started = Instant::now();
        if let Err(error) = watcher.refresh() {
            tracing::warn!("{error}: edits to {name} may go unseen");
        }
        let text = match file.reread() {
            reload::Reread::Changed(text) => text,
            reload::Reread::Same => {
                if !polled {
                    tracing::debug!("{name}: content unchanged");
                }
                continue;
            }
            reload::Reread::Empty => {
                tracing::debug!("{name} is empty: waiting for the rest of the save");
                continue;
            }
            reload::Reread::Missing => {
                if !std::mem::replace(&mut missing, true) {
                    tracing::warn!("{name} is gone: the running graph is unchanged, and reloads when the file is back");
                }
                continue;
            }
            reload::Reread::Unreadable(why) => {
                tracing::warn!("cannot read {name} ({why}): the running graph is unchanged");
                continue;
            }
        };
        missing = false;
        let checked = validate(&path, &text, &catalogue, &env);
        for d in &checked.diagnostics {
            events(RunEvent::Diagnostic(d.clone()));
        }
        let Some(plan) = checked.plan else {
            tracing::warn!("reload of {name} refused: the running graph is unchanged");
            continue;
        };
        match handle.reload(plan).await {
            Some(report) if report.diff.is_empty() => {
                tracing::info!("{name} saved, nothing to change")
            }
            Some(mut report) => {
                // Reported once what the edit asked for is in effect, e.g.
                // the broker confirmed a subscriber's new filters.
                let late = report.ready(READY_LIMIT).await;
                let mut summary = report.summary();
                if !late.is_empty() {
                    summary.push_str(&format!(
                        "; not ready after {} s: {} (see their state)",
                        READY_LIMIT.as_secs(),
                        late.join(", ")
                    ));
                }
                tracing::info!(
                    "reloaded {name} in {:.1} ms: {summary}",
                    started.elapsed().as_secs_f64() * 1000.0,
                );
                for line in report.details() {
                    tracing::info!("  {line}");
                }
            }
            None => return,
        }
    }
}

async fn report_status(metrics: Metrics, interval: Duration, events: EventSink) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        events(RunEvent::Status(metrics.status_line()));
    }
}
