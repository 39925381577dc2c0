//! `mqtt_pub`: publishes each message's bytes to a broker; the message is
//! acknowledged upstream only when the broker acknowledged it (PUBACK at
//! QoS 1, PUBCOMP at QoS 2, written at QoS 0).
//!
//! While the broker is away the number of messages handed over and not yet
//! acknowledged is capped by `buffer`; past it the node stops taking input
//! (backpressure). With a `spool`, messages wait on disk instead
//! ([`super::spooled`]).

use std::sync::Arc;

use bytes::Bytes;
use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Message, Node, NodeConfig, NodeContext, NodeError,
    NodeMetrics, OutputKind, Payload, PayloadKind,
};
use futures::future::BoxFuture;
use rumqttc::{AsyncClient, MqttOptions};
use schemars::JsonSchema;
use serde::Deserialize;

use super::connection::BrokerConfig;
use super::link::{Link, LinkEvent, EVENTS};
use super::outstanding::Outstanding;
use super::spool::SpoolConfig;
use super::topic::TopicTemplate;
use super::Qos;

/// Publishes each message's payload on a topic made from its metadata.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttPubConfig {
    /// The broker to publish to.
    pub broker: BrokerConfig,
    /// Topic template: `{key}` is replaced by the message's metadata value,
    /// e.g. `faces/{source}/{frame}-{face}`. A message lacking a key is refused.
    pub topic: String,
    /// 0, 1 or 2. Default 1: the input is acknowledged on the broker's PUBACK.
    #[serde(default)]
    pub qos: Qos,
    /// Ask the broker to keep the last message of each topic for new subscribers.
    #[serde(default)]
    pub retain: bool,
    /// Messages handed to the connection and not yet acknowledged by the
    /// broker, at most. While the broker is unreachable they wait here; when
    /// it is full the node takes no more input (backpressure). Default 1000.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
    /// Keep messages on disk until the broker acknowledged them: the input
    /// is acknowledged once a message is durably spooled, and what was
    /// captured while the broker was unreachable survives a crash or a
    /// power cut and is sent, in order, when it is back.
    #[serde(default)]
    pub spool: Option<SpoolConfig>,
}

fn default_buffer() -> usize {
    1000
}

impl NodeConfig for MqttPubConfig {
    const TYPE: &'static str = "mqtt_pub";
    const DESCRIPTION: &'static str =
        "Publishes each message to an MQTT broker; acknowledges it once the broker did";
    const INPUTS: Inputs = Inputs::Only(&[PayloadKind::Bytes]);
    const OUTPUT: OutputKind = OutputKind::None;

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = self.broker.check("broker");
        if let Err(reason) = TopicTemplate::parse(&self.topic) {
            issues.push(ConfigIssue::new(
                "topic",
                format!("bad topic template: {reason}"),
            ));
        }
        if self.buffer == 0 {
            issues.push(ConfigIssue::new("buffer", "at least 1"));
        }
        if self.spool.as_ref().is_some_and(|s| s.max_bytes == 0) {
            issues.push(ConfigIssue::new("spool.max_bytes", "at least 1"));
        }
        issues
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let options = self.broker.options(&ctx.id, |p| ctx.resolve(p))?;
        let topic = TopicTemplate::parse(&self.topic)?;
        let spool_dir = self.spool.as_ref().map(|s| ctx.resolve(&s.dir));
        Ok(Box::new(MqttPub {
            config: self.clone(),
            options,
            topic,
            spool_dir,
        }))
    }
}

pub(super) struct MqttPub {
    pub(super) config: MqttPubConfig,
    pub(super) options: MqttOptions,
    pub(super) topic: TopicTemplate,
    spool_dir: Option<std::path::PathBuf>,
}

pub(super) fn delivered(message: Message, metrics: &NodeMetrics) {
    metrics.sent.inc();
    message.ack();
}

/// The topic and payload to publish for `message`, or `None` when it was
/// refused (counted, logged) because it can never be sent: a missing topic
/// key, a payload over the packet limit.
pub(super) fn prepare(
    message: &Message,
    config: &MqttPubConfig,
    topic: &TopicTemplate,
    ctx: &NodeContext,
) -> Result<(String, Bytes), String> {
    let refused = |reason: String| {
        ctx.metrics.errors.inc();
        tracing::warn!(node = %ctx.id, "message refused: {reason}");
        reason
    };
    let Payload::Bytes(payload) = &message.payload else {
        return Err(refused("mqtt_pub publishes bytes, not frames".into()));
    };
    let topic = topic.render(&message.meta).map_err(refused)?;
    let limit = config.broker.max_payload(&topic);
    if payload.len() > limit {
        // Handing it to rumqttc would fail the connection and be resent after
        // every reconnect: a disconnect loop. Refuse it here instead.
        return Err(refused(format!(
            "payload of {} bytes on `{topic}` is over the {limit} bytes that fit `max_packet_bytes` ({})",
            payload.len(),
            config.broker.max_packet_bytes
        )));
    }
    Ok((topic, payload.clone()))
}

/// Publishes `message` through `client`, or refuses it.
fn hand_over(
    message: Message,
    node: &MqttPub,
    client: &AsyncClient,
    outstanding: &mut Outstanding<Message>,
    ctx: &NodeContext,
) -> Result<(), NodeError> {
    let (topic, payload) = match prepare(&message, &node.config, &node.topic, ctx) {
        Ok(prepared) => prepared,
        Err(reason) => {
            message.reject(reason);
            return Ok(());
        }
    };
    client
        .try_publish(topic, node.config.qos.into(), node.config.retain, payload)
        .map_err(|e| format!("cannot hand the message to the MQTT client: {e}"))?;
    outstanding.push(message);
    Ok(())
}

impl Node for MqttPub {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            if let Some(dir) = self.spool_dir.clone() {
                return super::spooled::run(*self, dir, ctx).await;
            }
            let buffer = self.config.buffer;
            let mut link = Link::start(
                self.options.clone(),
                &self.config.broker,
                &ctx.id,
                Arc::clone(&ctx.metrics),
                buffer,
                EVENTS,
            );
            let mut outstanding = Outstanding::default();
            let mut input_done = false;
            while !(input_done && outstanding.is_empty()) {
                tokio::select! {
                    event = link.events.recv() => match event {
                        Some(LinkEvent::Packet(event)) => {
                            if let Some(message) = outstanding.on_event(event) {
                                delivered(message, &ctx.metrics);
                            }
                        }
                        Some(LinkEvent::Connected { .. } | LinkEvent::Disconnected) => {}
                        None => return Err("the MQTT connection task ended".into()),
                    },
                    message = ctx.input.recv(), if !input_done && outstanding.len() < buffer => {
                        match message {
                            Some(message) => hand_over(message, &self, &link.client, &mut outstanding, &ctx)?,
                            None => input_done = true,
                        }
                    }
                }
            }
            Ok(())
        })
    }
}
