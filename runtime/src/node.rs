//! The contract between the engine and a running node.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::edge::{Input, Output};
use crate::metrics::NodeMetrics;

/// Why a node run ended badly. Nodes use their own error types; the engine
/// only reports them.
pub type NodeError = Box<dyn std::error::Error + Send + Sync>;

/// How a node instance ended badly, as its supervisor saw it. It prints as
/// the node's own error (a panic as `panicked: …`): the node id is the
/// caller's to add.
#[derive(Debug, thiserror::Error)]
pub enum NodeFailure {
    /// Its type could not build an instance from its config.
    #[error("{0}")]
    Build(NodeError),
    /// Its run returned an error.
    #[error("{0}")]
    Run(NodeError),
    /// Its run panicked, with the panic's message.
    #[error("panicked: {0}")]
    Panicked(String),
}

/// A running node instance, built from its config by its node type.
///
/// `run` loops until its work is done (a file ended, its inputs closed) or
/// until the context says stop, then returns. When told to stop it finishes
/// the message it holds, acknowledges what it can and leaves the rest: the
/// engine owns the queues, and the node's successor (after a restart or a
/// reload) takes over from there.
pub trait Node: Send + 'static {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>>;
}

/// Everything a node instance may touch: its input, its output (the
/// default port, and its named ports through [`Output::send_to`]), its stop
/// signal and its counters.
pub struct NodeContext {
    pub id: String,
    pub input: Input,
    pub output: Output,
    pub metrics: Arc<NodeMetrics>,
    stop: CancellationToken,
    ready: Arc<tokio::sync::watch::Sender<bool>>,
}

impl NodeContext {
    pub(crate) fn new(
        id: String,
        input: Input,
        output: Output,
        metrics: Arc<NodeMetrics>,
        stop: CancellationToken,
        ready: Arc<tokio::sync::watch::Sender<bool>>,
    ) -> Self {
        NodeContext {
            id,
            input,
            output,
            metrics,
            stop,
            ready,
        }
    }

    /// Says that this instance's config has taken effect (for node types
    /// with [`crate::NodeConfig::REPORTS_READY`]): a reload that started it
    /// is reported as applied from then on.
    pub fn ready(&self) {
        self.ready.send_replace(true);
    }

    /// Whether this instance has been asked to stop.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    /// Resolves when this instance is asked to stop: select on it in loops
    /// that wait on something other than the input.
    pub async fn stopping(&self) {
        self.stop.cancelled().await
    }

    /// A token that is cancelled when this instance is asked to stop, for
    /// threads and tasks the node spawns.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// What a node type's constructor may know beyond its own config.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The node's id in the spec.
    pub id: String,
    /// The directory of the spec file: relative paths in a config resolve
    /// against it, so a spec runs the same from any working directory.
    pub spec_dir: PathBuf,
    /// Where node instances keep what must outlive the process (what an MQTT
    /// client subscribed, per broker and client id): `flowrun run
    /// --state-dir`, else [`default_state_dir`].
    pub state_dir: PathBuf,
}

/// `$FLOWRUN_STATE_DIR`, else `$XDG_STATE_HOME/flowrun`, else
/// `~/.local/state/flowrun` (the XDG base directory rule for state), else
/// `.flowrun-state` in the working directory.
pub fn default_state_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("FLOWRUN_STATE_DIR") {
        return dir.into();
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("flowrun");
    }
    match var("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/flowrun"),
        None => PathBuf::from(".flowrun-state"),
    }
}

impl BuildContext {
    /// `path` resolved against the spec's directory when relative.
    pub fn resolve(&self, path: impl AsRef<std::path::Path>) -> PathBuf {
        self.spec_dir.join(path)
    }
}
