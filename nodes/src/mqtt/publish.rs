//! `mqtt_pub`: publishes each message's bytes to a broker; the message is
//! acknowledged upstream only when the broker acknowledged it (PUBACK at
//! QoS 1, PUBCOMP at QoS 2, written at QoS 0).
//!
//! rumqttc does not say which request became which packet id, so the node
//! keeps the messages it handed over in order: the next new packet id the
//! event loop reports belongs to the oldest message not yet numbered. A
//! packet id already known is a resend after a reconnect. While the broker
//! is away the number of messages handed over and not yet acknowledged is
//! capped by `buffer`; past it the node stops taking input (backpressure).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Message, Node, NodeConfig, NodeContext, NodeError,
    NodeMetrics, OutputKind, Payload, PayloadKind,
};
use futures::future::BoxFuture;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, Outgoing};
use schemars::JsonSchema;
use serde::Deserialize;

use super::connection::{BrokerConfig, Link, LinkEvent};
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
        issues
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let options = self.broker.options(&ctx.id, |p| ctx.resolve(p))?;
        let topic = TopicTemplate::parse(&self.topic)?;
        Ok(Box::new(MqttPub {
            config: self.clone(),
            options,
            topic,
        }))
    }
}

struct MqttPub {
    config: MqttPubConfig,
    options: MqttOptions,
    topic: TopicTemplate,
}

/// Messages handed to rumqttc, matched to the broker's acknowledgements.
#[derive(Default)]
pub(super) struct Outstanding {
    /// Handed over, no packet id seen yet: oldest first.
    unnumbered: VecDeque<Message>,
    /// Sent with a packet id, waiting for PUBACK / PUBCOMP.
    numbered: HashMap<u16, Message>,
}

impl Outstanding {
    pub(super) fn len(&self) -> usize {
        self.unnumbered.len() + self.numbered.len()
    }

    /// A message just handed to the client.
    pub(super) fn push(&mut self, message: Message) {
        self.unnumbered.push_back(message);
    }

    pub(super) fn on_event(&mut self, event: Event, metrics: &NodeMetrics) {
        match event {
            Event::Outgoing(Outgoing::Publish(0)) => {
                if let Some(message) = self.unnumbered.pop_front() {
                    delivered(message, metrics);
                }
            }
            // A known packet id is a resend after a reconnect.
            Event::Outgoing(Outgoing::Publish(pkid)) if !self.numbered.contains_key(&pkid) => {
                if let Some(message) = self.unnumbered.pop_front() {
                    self.numbered.insert(pkid, message);
                }
            }
            Event::Incoming(Incoming::PubAck(ack)) => self.settle(ack.pkid, metrics),
            Event::Incoming(Incoming::PubComp(comp)) => self.settle(comp.pkid, metrics),
            _ => {}
        }
    }

    fn settle(&mut self, pkid: u16, metrics: &NodeMetrics) {
        if let Some(message) = self.numbered.remove(&pkid) {
            delivered(message, metrics);
        }
    }
}

fn delivered(message: Message, metrics: &NodeMetrics) {
    metrics.sent.inc();
    message.ack();
}

/// Publishes `message` through `client`, or refuses it (counted, logged)
/// when it can never be sent: a missing topic key, a payload over the packet limit.
fn hand_over(
    message: Message,
    node: &MqttPub,
    client: &AsyncClient,
    outstanding: &mut Outstanding,
    ctx: &NodeContext,
) -> Result<(), NodeError> {
    let refuse = |message: Message, reason: String| {
        ctx.metrics.errors.inc();
        tracing::warn!(node = %ctx.id, "message refused: {reason}");
        message.reject(reason);
    };
    let Payload::Bytes(payload) = &message.payload else {
        refuse(message, "mqtt_pub publishes bytes, not frames".into());
        return Ok(());
    };
    let topic = match node.topic.render(&message.meta) {
        Ok(topic) => topic,
        Err(reason) => {
            refuse(message, reason);
            return Ok(());
        }
    };
    let limit = node.config.broker.max_payload(&topic);
    if payload.len() > limit {
        // Handing it to rumqttc would fail the connection and be resent after
        // every reconnect: a disconnect loop. Refuse it here instead.
        let reason = format!(
            "payload of {} bytes on `{topic}` is over the {limit} bytes that fit `max_packet_bytes` ({})",
            payload.len(),
            node.config.broker.max_packet_bytes
        );
        refuse(message, reason);
        return Ok(());
    }
    let payload: Bytes = payload.clone();
    client
        .try_publish(topic, node.config.qos.into(), node.config.retain, payload)
        .map_err(|e| format!("cannot hand the message to the MQTT client: {e}"))?;
    outstanding.push(message);
    Ok(())
}

impl Node for MqttPub {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let buffer = self.config.buffer;
            let mut link = Link::start(
                self.options.clone(),
                &self.config.broker,
                &ctx.id,
                Arc::clone(&ctx.metrics),
                buffer,
            );
            let mut outstanding = Outstanding::default();
            let mut input_done = false;
            while !(input_done && outstanding.len() == 0) {
                tokio::select! {
                    event = link.events.recv() => match event {
                        Some(LinkEvent::Packet(event)) => outstanding.on_event(event, &ctx.metrics),
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
