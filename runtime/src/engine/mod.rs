//! Runs a [`Plan`]: one supervised task per node, bounded edges between
//! them, hot reconfiguration, and a drain-then-stop shutdown.
//!
//! The engine owns every queue. A node instance only borrows its input and
//! output for as long as it runs, so restarting a node after a failure or
//! replacing it on a reload loses nothing that was queued for it, and its
//! neighbours never notice.
//!
//! Shutdown follows mini-redis's shape: sources are told to stop, and the
//! rest of the graph drains naturally — a node's input ends once every edge
//! into it is closed and empty, and an edge closes when the node feeding it
//! is done. Every wait is bounded: what is still running at the deadline is
//! aborted, its messages fail their acknowledgements (so QoS 1 sources
//! redeliver them) and the report says what was cut short.

mod report;
mod supervisor;

pub use report::{ReloadReport, RunReport};
use supervisor::Supervisor;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::diff::diff;
use crate::edge::{Inbox, Output};
use crate::metrics::{Metrics, NodeMetrics};
use crate::node::{BuildContext, NodeFailure};
use crate::plan::{Plan, PlannedNode};
use crate::spec::OnFailure;

/// After the drain deadline aborts the busy nodes, how long sources may take
/// to learn the outcome of their messages before they are aborted too.
const SOURCE_GRACE: Duration = Duration::from_secs(1);

/// A request to the engine from outside its task.
enum Command {
    Reload(Box<Plan>, oneshot::Sender<ReloadReport>),
}

/// Controls a running engine: reload it, stop it.
#[derive(Clone)]
pub struct EngineHandle {
    commands: mpsc::Sender<Command>,
    shutdown: CancellationToken,
}

impl EngineHandle {
    /// Applies `plan` to the running graph; resolves when the new graph is live.
    pub async fn reload(&self, plan: Plan) -> Option<ReloadReport> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Reload(Box::new(plan), tx))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Starts a graceful shutdown: sources stop, the rest drains.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

struct Exit {
    id: String,
    generation: u64,
    result: Result<(), NodeFailure>,
}

struct RunningNode {
    planned: PlannedNode,
    inbox: Arc<Inbox>,
    output: Output,
    metrics: Arc<NodeMetrics>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
    generation: u64,
    /// Whether the current instance said its config took effect.
    ready: watch::Receiver<bool>,
}

/// A graph being run.
pub struct Engine {
    plan: Plan,
    metrics: Metrics,
    nodes: BTreeMap<String, RunningNode>,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits: mpsc::UnboundedReceiver<Exit>,
    commands: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
    next_generation: u64,
    drain_timeout: Duration,
    state_dir: std::path::PathBuf,
    report: RunReport,
}

impl Engine {
    /// Wires and starts every node of `plan`, with the default state
    /// directory ([`crate::node::default_state_dir`]).
    pub fn start(plan: Plan, metrics: Metrics, drain_timeout: Duration) -> (Engine, EngineHandle) {
        Self::start_in(
            plan,
            metrics,
            drain_timeout,
            crate::node::default_state_dir(),
        )
    }

    /// Wires and starts every node of `plan`; nodes keep their state in `state_dir`.
    pub fn start_in(
        plan: Plan,
        metrics: Metrics,
        drain_timeout: Duration,
        state_dir: std::path::PathBuf,
    ) -> (Engine, EngineHandle) {
        let (exits_tx, exits) = mpsc::unbounded_channel();
        let (commands_tx, commands) = mpsc::channel(4);
        let shutdown = CancellationToken::new();
        let mut engine = Engine {
            plan: plan.clone(),
            metrics,
            nodes: BTreeMap::new(),
            exits_tx,
            exits,
            commands,
            shutdown: shutdown.clone(),
            next_generation: 0,
            drain_timeout,
            state_dir,
            report: RunReport::default(),
        };
        for node in &plan.nodes {
            engine.add_node(node.clone());
        }
        engine.rewire();
        let ids: Vec<String> = plan.nodes.iter().map(|n| n.id.clone()).collect();
        for id in ids {
            engine.spawn(&id);
        }
        let handle = EngineHandle {
            commands: commands_tx,
            shutdown,
        };
        (engine, handle)
    }

    /// Runs until every node is done, or until `stop` resolves and the graph
    /// has drained (bounded by the drain timeout).
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> RunReport {
        let mut stop = std::pin::pin!(stop);
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if self.nodes.values().all(|n| n.task.is_none()) {
                break;
            }
            let draining = deadline.is_some();
            tokio::select! {
                Some(exit) = self.exits.recv() => self.on_exit(exit),
                // Reloads wait while draining: the graph is going away.
                Some(command) = self.commands.recv(), if !draining => match command {
                    Command::Reload(plan, reply) => {
                        let report = self.apply(*plan).await;
                        let _ = reply.send(report);
                    }
                },
                _ = &mut stop, if !draining => deadline = Some(self.begin_shutdown()),
                _ = self.shutdown.cancelled(), if !draining => deadline = Some(self.begin_shutdown()),
                _ = sleep_until(deadline), if draining => {
                    if self.abort_busy(false) {
                        // Sources get a moment to hear the failures of what
                        // was aborted, so that they can report them.
                        deadline = Some(tokio::time::Instant::now() + SOURCE_GRACE);
                    } else {
                        self.abort_busy(true);
                        break;
                    }
                }
            }
        }
        self.report
    }

    fn begin_shutdown(&mut self) -> tokio::time::Instant {
        tracing::info!("stopping: sources stop, in-flight messages drain");
        self.shutdown.cancel();
        for node in self.nodes.values() {
            if node.planned.is_source() {
                node.stop.cancel();
            }
        }
        tokio::time::Instant::now() + self.drain_timeout
    }

    /// Aborts the nodes still running: first everything but the sources,
    /// then (`sources: true`) the sources. Returns whether it aborted any.
    fn abort_busy(&mut self, sources: bool) -> bool {
        let mut aborted = false;
        for (id, node) in &mut self.nodes {
            if node.planned.is_source() != sources {
                continue;
            }
            if let Some(task) = node.task.take() {
                node.stop.cancel();
                task.abort();
                for edge in node.inbox.edges() {
                    edge.discard("its node was cut short at the drain deadline");
                }
                tracing::warn!(node = %id, "still busy at the drain deadline: aborted, its messages fail back to their sources");
                self.report.cut_short.push(id.clone());
                aborted = true;
            }
        }
        aborted
    }

    fn on_exit(&mut self, exit: Exit) {
        let Some(node) = self.nodes.get_mut(&exit.id) else {
            return;
        };
        if node.generation != exit.generation {
            return; // an instance a reload already replaced
        }
        node.task = None;
        let stop_pipeline = exit.result.is_err() && node.planned.on_failure == OnFailure::Stop;
        if let Err(error) = exit.result {
            self.report
                .failures
                .insert(exit.id.clone(), error.to_string());
        }
        self.retire(&exit.id, "its node has stopped");
        if stop_pipeline {
            tracing::error!(node = %exit.id, "node failed and its policy is `on_failure: stop`: stopping the pipeline");
            self.shutdown.cancel();
        }
    }

    /// A node is done for good: close what it feeds (downstream drains it)
    /// and refuse what feeds it (queued messages fail back to their sources,
    /// saying `why`). Returns how many queued messages failed.
    fn retire(&mut self, id: &str, why: &str) -> usize {
        let Some(node) = self.nodes.get(id) else {
            return 0;
        };
        for edge in node.output.edges() {
            edge.close();
        }
        let inputs = node.inbox.edges();
        let failed = inputs.iter().map(|edge| edge.discard(why)).sum();
        for upstream in self.nodes.values() {
            let kept: Vec<_> = upstream
                .output
                .edges()
                .into_iter()
                .filter(|e| !inputs.iter().any(|i| Arc::ptr_eq(i, e)))
                .collect();
            upstream.output.set_edges(kept);
        }
        failed
    }

    fn add_node(&mut self, planned: PlannedNode) {
        let metrics = self.metrics.node(&planned.id);
        let node = RunningNode {
            inbox: Inbox::new(&planned.id, metrics.clone()),
            output: Output::new(metrics.clone()),
            metrics,
            stop: CancellationToken::new(),
            task: None,
            generation: 0,
            ready: watch::channel(false).1,
            planned,
        };
        self.nodes.insert(node.planned.id.clone(), node);
    }

    /// Makes the edges match the plan: keeps edges whose settings did not
    /// change, closes the others (their receiver drains them) and connects
    /// new ones.
    fn rewire(&mut self) {
        let mut outputs: HashMap<String, Vec<Arc<crate::edge::Edge>>> = HashMap::new();
        let mut unwanted = Vec::new();
        for node in self.nodes.values() {
            let mut kept = Vec::new();
            for edge in node.inbox.edges() {
                let wanted = node.planned.inputs.iter().any(|i| {
                    i.from == edge.from
                        && i.port == edge.port
                        && i.capacity == edge.capacity
                        && i.overflow == edge.overflow
                });
                // A closed edge is draining away; it is never reused.
                if wanted && !edge.is_closed() && self.nodes.contains_key(&edge.from) {
                    kept.push(edge);
                } else {
                    unwanted.push(edge);
                }
            }
            for input in &node.planned.inputs {
                let existing = kept
                    .iter()
                    .find(|e| e.from == input.from && e.port == input.port)
                    .cloned();
                let edge = existing.unwrap_or_else(|| {
                    let edge = node.inbox.connect(
                        &input.from,
                        input.port.as_deref(),
                        input.capacity,
                        input.overflow,
                    );
                    kept.push(edge.clone());
                    edge
                });
                outputs.entry(input.from.clone()).or_default().push(edge);
            }
        }
        for (id, node) in &self.nodes {
            node.output
                .set_edges(outputs.remove(id).unwrap_or_default());
        }
        // Old edges close only now that their replacements are connected and
        // the senders point at them: a node whose inputs all looked closed
        // for a moment would take its input as ended and stop, and a send
        // to a closed edge with no replacement yet would fail its message.
        for edge in unwanted {
            edge.close();
        }
    }

    fn spawn(&mut self, id: &str) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let Some(node) = self.nodes.get_mut(id) else {
            return;
        };
        node.generation = generation;
        node.stop = CancellationToken::new();
        let (ready, ready_rx) = watch::channel(!node.planned.node_type.reports_ready);
        node.ready = ready_rx;
        let supervisor = Supervisor {
            id: id.to_owned(),
            built: node.planned.built.clone(),
            build: BuildContext {
                id: id.to_owned(),
                spec_dir: self
                    .plan
                    .file
                    .parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_default(),
                state_dir: self.state_dir.clone(),
            },
            on_failure: node.planned.on_failure,
            inbox: node.inbox.clone(),
            output: node.output.clone(),
            metrics: node.metrics.clone(),
            stop: node.stop.clone(),
            ready: Arc::new(ready),
        };
        let exits = self.exits_tx.clone();
        let id = id.to_owned();
        node.task = Some(tokio::spawn(async move {
            let result = supervisor.run().await;
            let _ = exits.send(Exit {
                id,
                generation,
                result,
            });
        }));
    }

    /// Applies a new plan to the running graph.
    async fn apply(&mut self, plan: Plan) -> ReloadReport {
        let started = Instant::now();
        let diff = diff(&self.plan, &plan);
        let mut report = ReloadReport::default();
        let stopping: Vec<String> = diff
            .removed
            .iter()
            .chain(diff.changed.iter().map(|(id, _)| id))
            .cloned()
            .collect();
        report.cut_short = self.stop_nodes(&stopping).await;
        let removed: Vec<RunningNode> = diff
            .removed
            .iter()
            .filter_map(|id| self.nodes.remove(id))
            .collect();
        for planned in &plan.nodes {
            match self.nodes.get_mut(&planned.id) {
                Some(node) => node.planned = planned.clone(),
                None => self.add_node(planned.clone()),
            }
        }
        self.plan = plan;
        // Rewiring closes the removed nodes' output edges, after their
        // successors' edges are connected.
        self.rewire();
        for node in removed {
            report.failed_messages += node
                .inbox
                .edges()
                .iter()
                .map(|edge| edge.discard("its node was removed by a reload"))
                .sum::<usize>();
            self.metrics.remove(&node.planned.id);
        }
        for id in diff
            .added
            .iter()
            .chain(diff.changed.iter().map(|(id, _)| id))
        {
            self.spawn(id);
            if let Some(node) = self.nodes.get(id) {
                report.starting.push((id.clone(), node.ready.clone()));
            }
        }
        report.took = started.elapsed();
        report.diff = diff;
        report
    }

    /// Asks nodes to stop and waits for them together, up to the drain
    /// timeout; returns those that had to be aborted.
    async fn stop_nodes(&mut self, ids: &[String]) -> Vec<String> {
        let mut waiting = Vec::new();
        for id in ids {
            if let Some(node) = self.nodes.get_mut(id) {
                node.stop.cancel();
                if let Some(task) = node.task.take() {
                    waiting.push((id.clone(), task));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.drain_timeout;
        let mut cut_short = Vec::new();
        for (id, mut task) in waiting {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(node = %id, "did not stop within the drain timeout: aborted");
                cut_short.push(id);
            }
        }
        cut_short
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
