//! `flowrun run`: the process around the engine's runner — which signals
//! stop it, how its events show on the terminal, and the exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use flowrun_runtime::runner::{run_file, EventSink, RunError, RunEvent, RunOptions};
use flowrun_runtime::Catalogue;

use crate::{logs, LogArgs};

#[derive(Args)]
pub struct RunArgs {
    /// The spec file to run.
    #[arg(required = true)]
    pub spec: Option<PathBuf>,
    /// Do not reload the spec when the file changes.
    #[arg(long)]
    no_watch: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics and /healthz (e.g. 127.0.0.1:9464;
    /// a bare port means loopback).
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics_address)]
    metrics: Option<std::net::SocketAddr>,
    /// Seconds in-flight messages may take to drain on stop or reload before they are cut short.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    drain_timeout: f64,
    /// Seconds between status lines when stderr is not a terminal.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    status_interval: f64,
    /// Where to keep state across runs (what each MQTT client id subscribed).
    /// Default: $FLOWRUN_STATE_DIR, else $XDG_STATE_HOME/flowrun, else ~/.local/state/flowrun.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// How often the live status line on a terminal is refreshed.
const LIVE_STATUS: Duration = Duration::from_secs(1);

pub fn run(args: RunArgs, log: LogArgs, catalogue: Catalogue) -> anyhow::Result<ExitCode> {
    logs::init(log.log_format);
    let spec = args.spec.context("no spec given")?;
    let seconds = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s)
            .with_context(|| format!("--{what} must be a number of seconds ≥ 0"))
    };
    // On a terminal the status is one live line, redrawn every second; in a
    // log it is a line every --status-interval.
    let live = std::io::stderr().is_terminal();
    let drain_timeout = seconds(args.drain_timeout, "drain-timeout")?;
    let status_interval = seconds(args.status_interval, "status-interval")?;
    let options = RunOptions {
        watch: !args.no_watch,
        metrics_addr: args.metrics,
        drain_timeout,
        status_interval: if live {
            LIVE_STATUS
        } else {
            status_interval.max(Duration::from_millis(100))
        },
        state_dir: args.state_dir,
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let events: EventSink = Arc::new(move |event| render(event, live));
    let run = run_file(&spec, Arc::new(catalogue), options, stop_signal(), events);
    match runtime.block_on(run) {
        Ok(report) if report.is_success() => Ok(ExitCode::SUCCESS),
        Ok(report) => {
            for (node, error) in &report.failures {
                eprintln!("flowrun: node `{node}` failed: {error}");
            }
            if !report.cut_short.is_empty() {
                eprintln!(
                    "flowrun: cut short at the drain deadline: {}",
                    report.cut_short.join(", ")
                );
            }
            Ok(ExitCode::FAILURE)
        }
        Err(RunError::Invalid(diagnostics, path)) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            eprintln!("flowrun: {}", RunError::Invalid(diagnostics, path));
            Ok(ExitCode::FAILURE)
        }
        Err(error) => Err(error.into()),
    }
}

/// Shows one event of the run on stderr: `live` when stderr is a terminal.
fn render(event: RunEvent, live: bool) {
    match event {
        RunEvent::Diagnostic(d) => eprintln!("{d}"),
        RunEvent::Status(line) if live => eprint!("\r\x1b[K{line}"),
        RunEvent::Status(line) => tracing::info!("status: {line}"),
        // Ends the live line, so the logs that follow start on their own.
        RunEvent::Stopped if live => eprintln!(),
        RunEvent::Stopped => {}
        other => tracing::debug!(?other, "run event"),
    }
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once.
async fn stop_signal() {
    wait_for_signal().await;
    tracing::info!("signal received: draining (a second signal exits at once)");
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
