//! Runtime overhead: messages/s through a chain of pass-through nodes run by
//! the real engine, against the same chain built from bare tokio channels, in
//! the same process and on the same runtime.
//!
//! Both chains have the same shape: a source, `HOPS` forwarding stages and a
//! sink, so `HOPS + 1` bounded queues of capacity `CAPACITY`. Every message
//! carries the same 9 KB `Bytes` payload, cloned by reference count, never
//! copied. The engine chain goes through everything a real graph does: a spec
//! checked by `validate`, `Engine::start`, edges with their semaphore, notify
//! and counters, acknowledgements settled by the sink, and the engine's
//! drain-then-stop shutdown once the source ends.
//!
//!     cargo bench -p flowrun-runtime --bench chain -- [--messages N] [--rounds R]
//!
//! `--only engine` (or `--only bare`) runs one chain alone, for a profiler.
//! Without `--bench` (which `cargo bench` passes), the defaults shrink to a
//! quick check, so `cargo test --benches` stays fast.
//!
//! Rounds alternate bare/engine so that load from elsewhere on the machine
//! hits both alike; the medians and their ratio are printed, then one
//! `RESULT` line for scripts (bench/runtime/run.sh).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowrun_runtime::{
    validate, BuildContext, Catalogue, Engine, Inputs, Message, Metadata, Metrics, Node,
    NodeConfig, NodeContext, NodeError, OutputKind, Payload, PayloadKind,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;

/// Forwarding stages between source and sink.
const HOPS: usize = 5;
/// Queue capacity of every edge, in both chains: the engine's default.
const CAPACITY: usize = 64;
/// The payload size: a cropped face as the mission's edge device encodes it.
const PAYLOAD: usize = 9 * 1024;

/// What the engine's sink counted in the current round. A static because
/// node configs come from YAML and cannot carry a handle.
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static RECEIVED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Emits `count` messages of `size` bytes as fast as downstream takes them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CountSource {
    count: u64,
    size: usize,
}

impl NodeConfig for CountSource {
    const TYPE: &'static str = "count_source";
    const DESCRIPTION: &'static str = "bench: emits `count` messages of `size` bytes";
    const INPUTS: Inputs = Inputs::None;
    const OUTPUT: OutputKind = OutputKind::Kind(PayloadKind::Bytes);

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(self.clone()))
    }
}

impl Node for CountSource {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let payload = Bytes::from(vec![0x5a; self.size]);
            for _ in 0..self.count {
                let message = Message::new(Payload::Bytes(payload.clone()), Metadata::new());
                ctx.output.send(message).await;
            }
            Ok(())
        })
    }
}

/// Forwards every message unchanged (the nodes crate's `passthrough`, which
/// the runtime may not depend on).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Forward {}

impl NodeConfig for Forward {
    const TYPE: &'static str = "forward";
    const DESCRIPTION: &'static str = "bench: forwards every message";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::SameAsInput;

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(self.clone()))
    }
}

impl Node for Forward {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            while let Some(message) = ctx.input.recv().await {
                ctx.output.send(message).await;
            }
            Ok(())
        })
    }
}

/// Counts and acknowledges what arrives.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CountSink {}

impl NodeConfig for CountSink {
    const TYPE: &'static str = "count_sink";
    const DESCRIPTION: &'static str = "bench: counts and acknowledges messages";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::None;

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(self.clone()))
    }
}

impl Node for CountSink {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            while let Some(message) = ctx.input.recv().await {
                RECEIVED.fetch_add(1, Ordering::Relaxed);
                RECEIVED_BYTES.fetch_add(message.payload.len() as u64, Ordering::Relaxed);
                message.ack();
            }
            Ok(())
        })
    }
}

fn spec(messages: u64) -> String {
    let mut yaml = format!(
        "version: 1\nname: chain\nnodes:\n  src:\n    type: count_source\n    count: {messages}\n    size: {PAYLOAD}\n"
    );
    let mut previous = "src".to_owned();
    for hop in 1..=HOPS {
        yaml.push_str(&format!(
            "  hop{hop}:\n    type: forward\n    inputs: [{{from: {previous}, capacity: {CAPACITY}}}]\n"
        ));
        previous = format!("hop{hop}");
    }
    yaml.push_str(&format!(
        "  sink:\n    type: count_sink\n    inputs: [{{from: {previous}, capacity: {CAPACITY}}}]\n"
    ));
    yaml
}

/// One run of the engine chain; returns its wall time.
async fn engine_round(catalogue: &Catalogue, messages: u64) -> Duration {
    let checked = validate(Path::new("chain.yaml"), &spec(messages), catalogue, &|_| {
        None
    });
    let Some(plan) = checked.plan else {
        for d in &checked.diagnostics {
            eprintln!("{d}");
        }
        panic!("the bench spec does not validate");
    };
    RECEIVED.store(0, Ordering::Relaxed);
    RECEIVED_BYTES.store(0, Ordering::Relaxed);
    let started = Instant::now();
    let (engine, _handle) = Engine::start(plan, Metrics::new(), Duration::from_secs(30));
    // Ends by itself: the source stops after `messages`, the chain drains.
    let report = engine.run(std::future::pending()).await;
    let took = started.elapsed();
    assert!(report.is_success(), "engine run failed: {report:?}");
    assert_eq!(RECEIVED.load(Ordering::Relaxed), messages);
    assert_eq!(
        RECEIVED_BYTES.load(Ordering::Relaxed),
        messages * PAYLOAD as u64
    );
    took
}

/// One run of the bare chain: tokio mpsc channels and forwarding tasks.
async fn bare_round(messages: u64) -> Duration {
    let started = Instant::now();
    let (source_tx, mut rx) = mpsc::channel::<Bytes>(CAPACITY);
    let mut tasks = Vec::new();
    for _ in 0..HOPS {
        let (tx, next_rx) = mpsc::channel::<Bytes>(CAPACITY);
        let mut input = rx;
        tasks.push(tokio::spawn(async move {
            while let Some(payload) = input.recv().await {
                if tx.send(payload).await.is_err() {
                    break;
                }
            }
        }));
        rx = next_rx;
    }
    let sink = tokio::spawn(async move {
        let (mut count, mut bytes) = (0u64, 0u64);
        while let Some(payload) = rx.recv().await {
            count += 1;
            bytes += payload.len() as u64;
        }
        (count, bytes)
    });
    let source = tokio::spawn(async move {
        let payload = Bytes::from(vec![0x5a; PAYLOAD]);
        for _ in 0..messages {
            if source_tx.send(payload.clone()).await.is_err() {
                break;
            }
        }
    });
    source.await.expect("bare source");
    for task in tasks {
        task.await.expect("bare hop");
    }
    let (count, bytes) = sink.await.expect("bare sink");
    let took = started.elapsed();
    assert_eq!(count, messages);
    assert_eq!(bytes, messages * PAYLOAD as u64);
    took
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// `--name value` from the command line; cargo bench adds `--bench`, which
/// is ignored like any other flag.
fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

/// Runs one chain alone and prints its rate, so a profile shows only it.
async fn only(which: &str, catalogue: &Catalogue, messages: u64, rounds: u64) {
    for round in 1..=rounds {
        let took = match which {
            "bare" => bare_round(messages).await,
            "engine" => engine_round(catalogue, messages).await,
            other => panic!("--only takes `bare` or `engine`, not `{other}`"),
        };
        println!(
            "round {round}: {which} {:.0} msg/s",
            messages as f64 / took.as_secs_f64()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`,
    // an unoptimised build) a short run checks that the bench still works.
    let measuring = args.iter().any(|a| a == "--bench");
    let messages = arg(&args, "--messages", if measuring { 500_000 } else { 2_000 });
    let rounds = arg(&args, "--rounds", if measuring { 7 } else { 1 }).max(1);
    let alone = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1));
    let mut catalogue = Catalogue::new();
    catalogue
        .register::<CountSource>()
        .register::<Forward>()
        .register::<CountSink>();
    // The runtime `flowrun run` uses: multi-threaded, one worker per core.
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    println!(
        "chain: source → {HOPS} forwarding stages → sink, {messages} messages of {PAYLOAD} B, \
         capacity {CAPACITY}, {rounds} rounds, {} worker threads",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if let Some(which) = alone {
        runtime.block_on(only(which, &catalogue, messages, rounds));
        return;
    }
    runtime.block_on(async {
        // Warm-up: allocator, thread pool, page faults.
        bare_round(messages / 10).await;
        engine_round(&catalogue, messages / 10).await;
        let (mut bare, mut engine, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=rounds {
            let b = messages as f64 / bare_round(messages).await.as_secs_f64();
            let e = messages as f64 / engine_round(&catalogue, messages).await.as_secs_f64();
            println!(
                "round {round}: bare {b:>10.0} msg/s   engine {e:>10.0} msg/s   ratio {:.2}",
                e / b
            );
            bare.push(b);
            engine.push(e);
            ratios.push(e / b);
        }
        let (b, e, r) = (median(&mut bare), median(&mut engine), median(&mut ratios));
        println!(
            "median: bare {b:.0} msg/s, engine {e:.0} msg/s, engine/bare {:.2} \
             (median of round ratios {r:.2}); goal ≥ 0.50",
            e / b
        );
        println!(
            "RESULT bare_msgs_per_s={b:.0} engine_msgs_per_s={e:.0} ratio={:.3} \
             round_ratio_median={r:.3} messages={messages} rounds={rounds}",
            e / b
        );
    });
}
