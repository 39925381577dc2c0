//! `mqtt_pub`: publishes each message's bytes to a broker; the message is
//! acknowledged upstream only when the broker acknowledged it (PUBACK at
//! QoS 1, PUBCOMP at QoS 2, written at QoS 0).
//!
//! With MQTT 5 a broker may refuse a publish (a reason code ≥ 0x80: not
//! authorized, quota exceeded, …): the message is then failed, not
//! acknowledged, and the reason logged and counted. With
//! `require_subscribers`, a publish the broker took but matched to no
//! subscriber (reason code 0x10) is not acknowledged either: it is held and
//! published again with backoff until one takes it ([`super::unheard`]).
//!
//! While the broker is away the number of messages handed over and not yet
//! acknowledged is capped by `buffer`; past it the node stops taking input
//! (backpressure). With a `spool`, messages wait on disk instead
//! ([`super::spooled`]).

use std::path::PathBuf;

use flowrun_runtime::{
    BuildContext, ConfigIssue, ExternalLink, Inputs, Message, Node, NodeConfig, NodeContext,
    NodeError, NodeMetrics, OutputKind, PayloadKind,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::client::Client;
use super::connection::{BrokerConfig, Protocol};
use super::link::LinkEvent;
use super::outgoing::Outgoing;
use super::outstanding::{Outstanding, Settled};
use super::spool::SpoolConfig;
use super::topic::TopicTemplate;
use super::unheard::{self, Unheard};
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
    /// Metadata keys sent along as MQTT 5 user properties (name = the key,
    /// value = the metadata value as text), e.g. `[source, frame]`; a key
    /// the message lacks is left out. Needs MQTT 5 (`broker.protocol` auto,
    /// the default, or "5"); not sent over a connection that fell back to 3.1.1.
    #[serde(default)]
    pub user_properties: Vec<String>,
    /// Acknowledge a message only once the broker delivered it to at least
    /// one subscriber. A publish the broker takes with "no matching
    /// subscribers" (MQTT 5 reason code 0x10) would otherwise be acknowledged
    /// and lost; with this it is held, unacknowledged, and published again
    /// (the `reconnect_min_ms`…`reconnect_max_ms` backoff) until one did.
    /// For links into a broker whose consumers may be briefly away, e.g. a
    /// cloud worker subscribing again after a broker restart. Counted as the
    /// `no_subscribers` event. Needs MQTT 5 (`broker.protocol` auto, the
    /// default, or "5"); over a connection `auto` fell back to 3.1.1 the
    /// protection is lost (warned, shown in the status). Not with `spool`.
    #[serde(default)]
    pub require_subscribers: bool,
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

    fn links(&self) -> Vec<ExternalLink> {
        vec![ExternalLink {
            system: self.broker.url.clone(),
            inbound: false,
            label: format!("{} (qos {})", self.topic, u8::from(self.qos)),
        }]
    }

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
        if !self.user_properties.is_empty() && self.broker.protocol == Protocol::V311 {
            issues.push(
                ConfigIssue::new(
                    "user_properties",
                    format!(
                        "user properties need MQTT 5, and the broker connection uses {}",
                        self.broker.protocol
                    ),
                )
                .hint("set `broker.protocol: auto` or \"5\", or drop `user_properties`"),
            );
        }
        if self.require_subscribers && self.broker.protocol == Protocol::V311 {
            issues.push(
                ConfigIssue::new(
                    "require_subscribers",
                    format!(
                        "only MQTT 5 says that a publish reached no subscriber, and the broker connection uses {}",
                        self.broker.protocol
                    ),
                )
                .hint("set `broker.protocol: auto` or \"5\", or drop `require_subscribers`"),
            );
        }
        if self.require_subscribers && self.spool.is_some() {
            issues.push(ConfigIssue::new(
                "require_subscribers",
                "not with a `spool`: spooled messages are acknowledged once on disk",
            ));
        }
        if !self.user_properties.is_empty() && self.spool.is_some() {
            issues.push(ConfigIssue::new(
                "user_properties",
                "the spool keeps topic and payload only: user properties cannot be spooled",
            ));
        }
        issues
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let out = Outgoing {
            broker: self.broker.clone(),
            options: self.broker.options(&ctx.id, |p| ctx.resolve(p))?,
            topic: TopicTemplate::parse(&self.topic)?,
            qos: self.qos,
            retain: self.retain,
            user_properties: self.user_properties.clone(),
            buffer: self.buffer,
        };
        let spool = self
            .spool
            .as_ref()
            .map(|s| (ctx.resolve(&s.dir), s.max_bytes));
        Ok(Box::new(MqttPub {
            out,
            require_subscribers: self.require_subscribers,
            spool,
        }))
    }
}

struct MqttPub {
    out: Outgoing,
    require_subscribers: bool,
    /// The spool's folder and `max_bytes`, with a `spool`.
    spool: Option<(PathBuf, u64)>,
}

fn delivered(message: Message, metrics: &NodeMetrics) {
    metrics.sent.inc();
    message.ack();
}

/// The broker refused a publish (MQTT 5): the message was not stored.
fn refused(message: Message, reason: String, ctx: &NodeContext) {
    ctx.metrics.errors.inc();
    tracing::warn!(node = %ctx.id, "{reason}");
    message.fail(reason);
}

/// A message the broker will never take: set aside (its source told
/// `rejected`), not failed, which would have it redelivered and dropped again.
fn too_large(message: Message, reason: String, ctx: &NodeContext) {
    ctx.metrics.errors.inc();
    tracing::warn!(node = %ctx.id, "{reason}");
    message.reject(reason);
}

/// Publishes `message` through `client`, or refuses it.
fn hand_over(
    message: Message,
    out: &Outgoing,
    client: &Client,
    outstanding: &mut Outstanding<(Message, String)>,
    ctx: &NodeContext,
) -> Result<(), NodeError> {
    let publish = match out.prepare(&message, ctx) {
        Ok(prepared) => prepared,
        Err(reason) => {
            message.reject(reason.to_string());
            return Ok(());
        }
    };
    let topic = publish.topic.clone();
    client
        .try_publish(publish)
        .map_err(|e| format!("cannot hand the message to the MQTT client: {e}"))?;
    outstanding.push((message, topic));
    Ok(())
}

impl Node for MqttPub {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let MqttPub {
                out,
                require_subscribers,
                spool,
            } = *self;
            if let Some((dir, max_bytes)) = spool {
                return super::spooled::run(out, dir, max_bytes, ctx).await;
            }
            let buffer = out.buffer;
            let mut link = out.connect(&ctx);
            let mut outstanding: Outstanding<(Message, String)> = Outstanding::default();
            let mut unheard = Unheard::new(&out.broker, ctx.metrics.event(unheard::EVENT), &ctx.id);
            let mut input_done = false;
            while !(input_done && outstanding.is_empty() && unheard.is_empty()) {
                tokio::select! {
                    event = link.events.recv() => match event {
                        Some(LinkEvent::Packet(event)) => match outstanding.on_event(&event) {
                            Some(((message, topic), Settled::Unheard)) if require_subscribers => {
                                unheard.hold(message, &topic);
                            }
                            Some(((message, _), Settled::Taken | Settled::Unheard)) => {
                                unheard.heard();
                                delivered(message, &ctx.metrics);
                            }
                            Some(((message, _), Settled::Refused(reason))) => refused(message, reason, &ctx),
                            Some(((message, _), Settled::TooLarge(reason))) => too_large(message, reason, &ctx),
                            None => {}
                        },
                        Some(LinkEvent::Connected { protocol, .. }) => {
                            unheard.connected(protocol, require_subscribers, &ctx.metrics, &ctx.id);
                        }
                        Some(LinkEvent::Disconnected) => {}
                        None => return Err("the MQTT connection task ended".into()),
                    },
                    again = unheard.due() => {
                        for message in again {
                            hand_over(message, &out, &link.client, &mut outstanding, &ctx)?;
                        }
                    }
                    message = ctx.input.recv(), if !input_done && outstanding.len() + unheard.len() < buffer => {
                        match message {
                            Some(message) => hand_over(message, &out, &link.client, &mut outstanding, &ctx)?,
                            None => input_done = true,
                        }
                    }
                }
            }
            Ok(())
        })
    }
}
