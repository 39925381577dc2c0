//! Node types for exercising the engine, and helpers to run specs.
//!
//! These are real nodes run by the real engine; what they record goes into a
//! process-wide board keyed by a name from their config, so a test can read
//! what happened inside the graph.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use flowrun_runtime::{
    AckStatus, BuildContext, Catalogue, Engine, EngineHandle, Inputs, Message, Metadata, Metrics,
    Node, NodeConfig, NodeContext, NodeError, OrderedAcks, OutputKind, Payload, PayloadKind, Plan,
    RunReport,
};
use flowrun_test_support::wait;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

/// What nodes saw, by board name.
#[derive(Default, Debug, Clone)]
pub struct Board {
    /// (seq, tag) per message a sink stored.
    pub stored: Vec<(u64, String)>,
    /// (seq, status) per message a source learned the fate of, in order.
    pub outcomes: Vec<(u64, AckStatus)>,
    /// How many times a node instance was built.
    pub builds: u64,
}

fn boards() -> &'static Mutex<HashMap<String, Board>> {
    static BOARDS: OnceLock<Mutex<HashMap<String, Board>>> = OnceLock::new();
    BOARDS.get_or_init(Mutex::default)
}

pub fn board(name: &str) -> Board {
    boards()
        .lock()
        .unwrap()
        .get(name)
        .cloned()
        .unwrap_or_default()
}

fn update(name: &str, f: impl FnOnce(&mut Board)) {
    f(boards().lock().unwrap().entry(name.to_owned()).or_default())
}

/// A unique board name per test, so tests can run in parallel.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Emits `count` tracked messages and records each outcome, in order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub board: String,
    pub count: u64,
    #[serde(default)]
    pub interval_us: u64,
}

impl NodeConfig for SourceConfig {
    const TYPE: &'static str = "test_source";
    const DESCRIPTION: &'static str = "emits tracked messages";
    const INPUTS: Inputs = Inputs::None;
    const OUTPUT: OutputKind = OutputKind::Kind(PayloadKind::Bytes);

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        update(&self.board, |b| b.builds += 1);
        Ok(Box::new(self.clone()))
    }
}

impl Node for SourceConfig {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let mut acks = OrderedAcks::new();
            for seq in 0..self.count {
                if ctx.is_stopping() {
                    break;
                }
                let mut meta = Metadata::new();
                meta.insert("seq".into(), seq.into());
                let payload = Payload::Bytes(Bytes::from(vec![0u8; 64]));
                ctx.output
                    .send(Message::with_ack(payload, meta, acks.track(seq)))
                    .await;
                if self.interval_us > 0 {
                    // The source's pace, part of the scenario: not a wait.
                    tokio::time::sleep(Duration::from_micros(self.interval_us)).await;
                }
            }
            while let Some((seq, outcome)) = acks.next().await {
                update(&self.board, |b| b.outcomes.push((seq, outcome.status)));
            }
            Ok(())
        })
    }
}

/// Records each message's seq with `tag`; can be told to misbehave.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    pub board: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub delay_ms: u64,
    /// Reject messages whose seq is a multiple of this.
    #[serde(default)]
    pub reject_every: Option<u64>,
    /// Panic on the first message with this seq (once per board).
    #[serde(default)]
    pub panic_on: Option<u64>,
    /// Return an error as soon as it starts.
    #[serde(default)]
    pub fail_at_start: bool,
    /// Never finish a message (to test drain deadlines).
    #[serde(default)]
    pub hang: bool,
}

impl NodeConfig for SinkConfig {
    const TYPE: &'static str = "test_sink";
    const DESCRIPTION: &'static str = "records what it stores";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::None;

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        update(&self.board, |b| b.builds += 1);
        Ok(Box::new(self.clone()))
    }
}

fn seq_of(message: &Message) -> u64 {
    match message.meta.get("seq") {
        Some(flowrun_runtime::MetaValue::Int(n)) => *n as u64,
        _ => u64::MAX,
    }
}

impl Node for SinkConfig {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            if self.fail_at_start {
                return Err("told to fail".into());
            }
            while let Some(message) = ctx.input.recv().await {
                let seq = seq_of(&message);
                if self.hang {
                    std::future::pending::<()>().await;
                }
                if self.delay_ms > 0 {
                    // A slow sink is the scenario: not a wait for anything.
                    tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
                }
                if self.panic_on == Some(seq) {
                    let first = {
                        let mut boards = boards().lock().unwrap();
                        let key = format!("{}/panicked", self.board);
                        let entry = boards.entry(key).or_default();
                        entry.builds += 1;
                        entry.builds == 1
                    };
                    if first {
                        panic!("test panic on {seq}");
                    }
                }
                if self.reject_every.is_some_and(|n| seq % n == 0) {
                    message.reject("test rejects it");
                    continue;
                }
                update(&self.board, |b| b.stored.push((seq, self.tag.clone())));
                message.ack();
            }
            Ok(())
        })
    }
}

/// Turns each message into `parts` derived messages (a frame into faces).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    pub parts: u64,
}

impl NodeConfig for SplitConfig {
    const TYPE: &'static str = "test_split";
    const DESCRIPTION: &'static str = "one message into several";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::SameAsInput;

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(self.clone()))
    }
}

impl Node for SplitConfig {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            while let Some(message) = ctx.input.recv().await {
                for part in 0..self.parts {
                    let mut meta = message.meta.clone();
                    meta.insert("part".into(), part.into());
                    ctx.output
                        .send(message.derive(message.payload.clone(), meta))
                        .await;
                }
                message.ack();
            }
            Ok(())
        })
    }
}

/// Forwards messages; `note` exists only so a reload can change its config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    #[serde(default)]
    pub note: String,
}

impl NodeConfig for RelayConfig {
    const TYPE: &'static str = "test_relay";
    const DESCRIPTION: &'static str = "forwards messages";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::SameAsInput;

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(self.clone()))
    }
}

impl Node for RelayConfig {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            while let Some(message) = ctx.input.recv().await {
                ctx.output.send(message).await;
            }
            Ok(())
        })
    }
}

pub fn catalogue() -> Catalogue {
    let mut catalogue = Catalogue::new();
    catalogue
        .register::<SourceConfig>()
        .register::<SinkConfig>()
        .register::<SplitConfig>()
        .register::<RelayConfig>();
    catalogue
}

/// A plan from spec text, panicking with the diagnostics when it is invalid.
pub fn plan(yaml: &str) -> Plan {
    let checked = flowrun_runtime::validate(Path::new("test.yaml"), yaml, &catalogue(), &|_| None);
    match checked.plan {
        Some(plan) => plan,
        None => panic!(
            "invalid test spec:\n{}",
            checked
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// Starts `yaml` in the engine; returns the handle, the metrics and the running task.
pub fn start(
    yaml: &str,
    drain: Duration,
) -> (EngineHandle, Metrics, tokio::task::JoinHandle<RunReport>) {
    let metrics = Metrics::new();
    let (engine, handle) = Engine::start(plan(yaml), metrics.clone(), drain);
    let task = tokio::spawn(engine.run(std::future::pending()));
    (handle, metrics, task)
}

/// Waits (bounded) until `check` holds, polling every few milliseconds.
pub async fn wait_until(what: &str, limit: Duration, check: impl FnMut() -> bool) {
    let held = wait::at_most(limit)
        .every(Duration::from_millis(5))
        .until_async(check)
        .await;
    assert!(held, "timed out after {limit:?} waiting for {what}");
}

/// Awaits the end of a task running the engine (or a whole run), bounded.
pub async fn finish<T>(task: tokio::task::JoinHandle<T>, limit: Duration) -> T {
    tokio::time::timeout(limit, task)
        .await
        .expect("the engine did not finish in time")
        .expect("the engine task panicked")
}
