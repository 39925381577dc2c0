//! One node's life: build an instance, run it, and on failure restart it
//! with backoff or give up, as its `on_failure` policy says. A panic in a
//! node is caught here and becomes a failure like any other.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::catalogue::BuiltConfig;
use crate::edge::{Inbox, Input, Output};
use crate::metrics::NodeMetrics;
use crate::node::{BuildContext, NodeContext, NodeFailure};
use crate::spec::OnFailure;

/// Restart backoff: starts here, doubles while the node keeps failing.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long counts as healthy: the next failure starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(10);
/// The part of a node's health that is its own run (beside its broker links).
const RUN_PART: &str = "run";

/// Runs one node: builds an instance, runs it, and on failure restarts it
/// with backoff or gives up, as its policy says.
pub(super) struct Supervisor {
    pub(super) id: String,
    pub(super) built: Arc<dyn BuiltConfig>,
    pub(super) build: BuildContext,
    pub(super) on_failure: OnFailure,
    pub(super) inbox: Arc<Inbox>,
    pub(super) output: Output,
    pub(super) metrics: Arc<NodeMetrics>,
    pub(super) stop: CancellationToken,
    pub(super) ready: Arc<watch::Sender<bool>>,
}

impl Supervisor {
    pub(super) async fn run(self) -> Result<(), NodeFailure> {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = Instant::now();
            let error = match self.run_once().await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            self.metrics.errors.inc();
            if self.on_failure == OnFailure::Stop || self.stop.is_cancelled() {
                tracing::error!(node = %self.id, %error, "node failed");
                return Err(error);
            }
            if started.elapsed() > HEALTHY_RUN {
                backoff = FIRST_BACKOFF;
            }
            tracing::error!(node = %self.id, %error, retry_in = ?backoff, "node failed; restarting");
            self.metrics.set_state(format!("restarting: {error}"));
            self.metrics
                .set_down(RUN_PART, format!("failed, restarting: {error}"));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.cancelled() => return Err(error),
            }
            self.metrics.restarts.inc();
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn run_once(&self) -> Result<(), NodeFailure> {
        // The status word belongs to an instance: a new one (after a
        // failure, or a reload that changed the node) starts without the
        // last one's "restarting: …" or "done: …".
        self.metrics.set_state(String::new());
        let node = self.built.build(&self.build).map_err(NodeFailure::Build)?;
        self.metrics.set_up(RUN_PART);
        let ctx = NodeContext::new(
            self.id.clone(),
            Input::new(self.inbox.clone(), self.stop.clone(), self.metrics.clone()),
            self.output.clone(),
            self.metrics.clone(),
            self.stop.clone(),
            self.ready.clone(),
        );
        match AssertUnwindSafe(node.run(ctx)).catch_unwind().await {
            Ok(result) => result.map_err(NodeFailure::Run),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(NodeFailure::Panicked(what))
            }
        }
    }
}
