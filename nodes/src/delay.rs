//! `delay`: holds each message `ms` milliseconds, then forwards it. Stands
//! in for a slow store or service — to see what a latency does to a
//! pipeline (e.g. how the broker's in-flight window caps an
//! acknowledge-after-store subscriber) without needing the real thing.

use std::time::Duration;

use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Node, NodeConfig, NodeContext, NodeError, OutputKind,
};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, StreamExt};
use schemars::JsonSchema;
use serde::Deserialize;

/// Forwards every message `ms` milliseconds after it arrived, in order.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelayConfig {
    /// How long each message is held, in milliseconds.
    pub ms: u64,
    /// Messages held at once, at most (like a store's parallel requests);
    /// past it the node takes no more input. Default 1.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
}

fn default_concurrency() -> usize {
    1
}

impl NodeConfig for DelayConfig {
    const TYPE: &'static str = "delay";
    const DESCRIPTION: &'static str =
        "Holds each message a fixed time (up to `concurrency` at once), then forwards it";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::SameAsInput;

    fn check(&self) -> Vec<ConfigIssue> {
        if self.concurrency == 0 {
            return vec![ConfigIssue::new("concurrency", "at least 1")];
        }
        Vec::new()
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(Delay {
            hold: Duration::from_millis(self.ms),
            concurrency: self.concurrency,
        }))
    }
}

struct Delay {
    hold: Duration,
    concurrency: usize,
}

impl Node for Delay {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let mut held = FuturesOrdered::new();
            let mut input_done = false;
            while !(input_done && held.is_empty()) {
                tokio::select! {
                    message = ctx.input.recv(), if !input_done && held.len() < self.concurrency => {
                        match message {
                            Some(message) => {
                                let until = tokio::time::Instant::now() + self.hold;
                                held.push_back(async move {
                                    tokio::time::sleep_until(until).await;
                                    message
                                });
                            }
                            None => input_done = true,
                        }
                    }
                    Some(message) = held.next(), if !held.is_empty() => ctx.output.send(message).await,
                }
            }
            Ok(())
        })
    }
}
