//! Running a spec file the way `flowrun run` does: check it, start it, watch
//! it for changes, report on it, and stop it cleanly on a signal.

use std::io::IsTerminal;
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
    /// How often the status line is printed when stderr is not a terminal
    /// (on a terminal it is a live line, refreshed every second).
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
/// SIGINT/SIGTERM arrives.
pub async fn run_file(
    path: &Path,
    catalogue: Arc<Catalogue>,
    options: RunOptions,
) -> Result<RunReport, RunError> {
    // The content the graph starts from: a later save that leaves it as it
    // is changes nothing.
    let mut file = reload::SpecFile::new(path);
    let checked = match file.reread() {
        reload::Reread::Changed(text) => validate(path, &text, &catalogue, &env),
        _ => load(path, &catalogue),
    };
    for warning in checked.warnings() {
        eprintln!("{warning}");
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
        ));
        Some(AbortOnDrop(task))
    } else {
        None
    };
    let _status = AbortOnDrop(tokio::spawn(report_status(
        metrics.clone(),
        options.status_interval,
    )));
    let report = engine.run(stop_signal(handle.clone())).await;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    tracing::info!("final counts: {}", metrics.status_line());
    Ok(report)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once.
async fn stop_signal(handle: EngineHandle) {
    wait_for_signal().await;
    tracing::info!("signal received: draining (a second signal exits at once)");
    handle.shutdown();
    tokio::spawn(async {
        wait_for_signal().await;
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

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
) {
    let path = file.path().to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut missing = false;
    while changes.recv().await.is_some() {
        let started = Instant::now();
        if let Err(error) = watcher.refresh() {
            tracing::warn!("{error}: edits to {name} may go unseen");
        }
        let text = match file.reread() {
            reload::Reread::Changed(text) => text,
            reload::Reread::Same => {
                tracing::debug!("{name}: content unchanged");
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
            eprintln!("{d}");
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

async fn report_status(metrics: Metrics, interval: Duration) {
    let live = std::io::stderr().is_terminal();
    let mut ticker = tokio::time::interval(if live {
        Duration::from_secs(1)
    } else {
        interval
    });
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let line = metrics.status_line();
        if live {
            eprint!("\r\x1b[K{line}");
        } else {
            tracing::info!("status: {line}");
        }
    }
}
