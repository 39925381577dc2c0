//! `generate`: a source of synthetic messages — for trying a pipeline out,
//! publishing a test message (what the original's one-shot script did), and
//! measuring throughput.

use std::time::Duration;

use bytes::Bytes;
use flowrun_runtime::{
    AckStatus, BuildContext, ConfigIssue, Inputs, Message, Metadata, Node, NodeConfig, NodeContext,
    NodeError, OrderedAcks, OutputKind, Payload, PayloadKind,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

/// Emits `count` messages of `size` bytes (or `text`), `interval_ms` apart.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateConfig {
    /// How many messages to emit; the source ends after the last one.
    /// Leave it out to emit until stopped.
    #[serde(default)]
    pub count: Option<u64>,
    /// Payload size in bytes, when `text` is not given.
    #[serde(default = "default_size")]
    pub size: usize,
    /// A fixed text payload, instead of `size` patterned bytes.
    #[serde(default)]
    pub text: Option<String>,
    /// Milliseconds between messages; 0 emits as fast as downstream takes them.
    #[serde(default)]
    pub interval_ms: u64,
    /// Wait for every message's end-to-end acknowledgement before ending, and
    /// fail if any was not delivered (useful in tests and smoke checks).
    #[serde(default)]
    pub require_ack: bool,
}

fn default_size() -> usize {
    1024
}

impl NodeConfig for GenerateConfig {
    const TYPE: &'static str = "generate";
    const DESCRIPTION: &'static str = "Emits synthetic messages: a test payload, a load generator";
    const INPUTS: Inputs = Inputs::None;
    const OUTPUT: OutputKind = OutputKind::Kind(PayloadKind::Bytes);

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.size > 256 * 1024 * 1024 {
            issues.push(ConfigIssue::new(
                "size",
                format!(
                    "{} bytes is more than the 256 MiB a message may have",
                    self.size
                ),
            ));
        }
        if self.require_ack && self.count.is_none() {
            issues.push(
                ConfigIssue::new(
                    "require_ack",
                    "`require_ack` needs a `count`: it waits for the last message",
                )
                .hint("add `count:`"),
            );
        }
        issues
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(Generate {
            config: self.clone(),
        }))
    }
}

struct Generate {
    config: GenerateConfig,
}

impl Node for Generate {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let c = self.config;
            let payload = match &c.text {
                Some(text) => Bytes::from(text.clone().into_bytes()),
                None => Bytes::from((0..c.size).map(|i| (i % 251) as u8).collect::<Vec<u8>>()),
            };
            let content_type = if c.text.is_some() {
                "text/plain"
            } else {
                "application/octet-stream"
            };
            let mut acks = OrderedAcks::new();
            let mut failed = 0u64;
            let mut ticker = (c.interval_ms > 0)
                .then(|| tokio::time::interval(Duration::from_millis(c.interval_ms)));
            let mut seq = 0u64;
            while c.count.is_none_or(|count| seq < count) {
                if let Some(ticker) = ticker.as_mut() {
                    tokio::select! {
                        _ = ticker.tick() => {}
                        _ = ctx.stopping() => break,
                    }
                } else if ctx.is_stopping() {
                    break;
                }
                let mut meta = Metadata::new();
                meta.insert("seq".into(), seq.into());
                meta.insert("source".into(), ctx.id.clone().into());
                meta.insert("content_type".into(), content_type.into());
                meta.insert("timestamp_ms".into(), crate::util::now_ms().into());
                let message = if c.require_ack {
                    Message::with_ack(Payload::Bytes(payload.clone()), meta, acks.track(seq))
                } else {
                    Message::new(Payload::Bytes(payload.clone()), meta)
                };
                ctx.output.send(message).await;
                seq += 1;
                // Settle what is already done so the pending list stays short.
                while let Some(Some((_, outcome))) = futures::FutureExt::now_or_never(acks.next()) {
                    if outcome.status != AckStatus::Delivered {
                        failed += 1;
                    }
                }
            }
            while let Some((_, outcome)) = acks.next().await {
                if outcome.status != AckStatus::Delivered {
                    failed += 1;
                }
            }
            ctx.metrics.set_state(format!("done: {seq} sent"));
            if failed > 0 {
                return Err(format!("{failed} of {seq} messages were not delivered").into());
            }
            Ok(())
        })
    }
}
