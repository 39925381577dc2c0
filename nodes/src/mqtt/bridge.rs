//! `mqtt_bridge`: mosquitto's bridge as one node. A local and a remote
//! connection, and `topic` entries as in mosquitto.conf
//! (`pattern, direction in|out|both, qos, local_prefix, remote_prefix`).
//!
//! A QoS 1/2 message is acknowledged to the broker it came from only once
//! the other broker acknowledged it: each side subscribes with manual acks,
//! and the message forwarded to the other side carries an acknowledgement
//! that [`OrderedAcks`] hands back in arrival order. `both` entries would
//! echo each message back where it came from: over MQTT 5 each side
//! subscribes with "no local" (and "retain as published", so a retained
//! message stays retained on the other side); over 3.1.1, which has
//! neither, [`Echoes`] drops the copy.
//!
//! The bridge's state (`1` connected to the remote, `0` not) is published
//! retained on `status_topic`, on the local broker and (with a last will
//! for `0`) on the remote, like mosquitto's `$SYS/broker/connection/<name>/state`.
//!
//! Each side has its own `protocol`; MQTT 5 user properties are carried
//! across when both sides speak 5. A publish the other side refuses (MQTT 5)
//! is not acknowledged where it came from, so that broker redelivers it.
//! A topic entry with `require_subscribers` also holds back the
//! acknowledgement of a publish the other side matched to no subscriber
//! (MQTT 5 reason code 0x10), and publishes it again with backoff until one
//! took it ([`super::unheard`]).

use std::sync::Arc;

use flowrun_runtime::{
    AckStatus, BuildContext, ConfigIssue, ExternalLink, Inputs, Message, Metadata, Node,
    NodeConfig, NodeContext, NodeError, OrderedAcks, OutputKind, Payload,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::client::{AckToken, Event, Options, Publish, Subscribing, Will};
use super::connection::{BrokerConfig, BrokerUrl, Protocol};
use super::echoes::Echoes;
use super::link::{Link, LinkEvent, EVENTS};
use super::outstanding::{Outstanding, Settled};
use super::subscribe::check_filter;
use super::subscriptions::{send_requests, Subscriptions};
use super::topic::matches;
use super::unheard::{self, Unheard};
use super::Qos;

/// Bridges topics between a local and a remote broker, as mosquitto's bridge does.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttBridgeConfig {
    /// The edge broker.
    pub local: BrokerConfig,
    /// The broker to bridge to (the cloud).
    pub remote: BrokerConfig,
    /// What to bridge, as mosquitto.conf's `topic` lines.
    pub topics: Vec<BridgeTopic>,
    /// Where the bridge publishes its state, retained: `1` connected to the
    /// remote, `0` not. Default `flowrun/bridge/<node id>/state`.
    #[serde(default)]
    pub status_topic: Option<String>,
    /// Messages taken from one broker and not yet acknowledged by the
    /// other (or held by `require_subscribers`), at most, per direction.
    /// Past it the bridge reads no more from the first broker, which keeps
    /// the rest (so a backlog stays in the broker, not in the bridge's
    /// memory: mosquitto 2.0.11 sends a 3.1.1 subscriber more than its
    /// in-flight window once the first acknowledgements are back). Default
    /// 1000, as `mqtt_pub`'s `buffer`: a burst larger than a broker's queue
    /// is dropped by that broker (mosquitto's default `max_queued_messages`
    /// is 1000), so a smaller buffer loses more of it there; 1000 images of
    /// 9 KB are 9 MB.
    #[serde(default = "default_buffer")]
    pub buffer: usize,
}

fn default_buffer() -> usize {
    1000
}

/// One `topic` line: `pattern [direction [qos [local_prefix remote_prefix]]]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BridgeTopic {
    /// Topic filter, wildcards allowed, appended to each side's prefix.
    pub pattern: String,
    /// `out` (local → remote, the default), `in` (remote → local) or `both`.
    #[serde(default)]
    pub direction: Direction,
    /// Subscribe and publish with this QoS. Default 0, as in mosquitto.
    #[serde(default = "qos_zero")]
    pub qos: Qos,
    /// Prefix of the topic on the local broker. Default none.
    #[serde(default)]
    pub local_prefix: String,
    /// Prefix of the topic on the remote broker. Default none.
    #[serde(default)]
    pub remote_prefix: String,
    /// Acknowledge a message where it came from only once the other broker
    /// delivered it to at least one subscriber. A publish that broker takes
    /// with "no matching subscribers" (MQTT 5 reason code 0x10) would
    /// otherwise be acknowledged and lost; with this it is held and
    /// published again (that side's `reconnect_min_ms`…`reconnect_max_ms`
    /// backoff) until one did, e.g. while a cloud worker subscribes again
    /// after a broker restart. Counted as the `no_subscribers` event. Needs
    /// `protocol: "5"` on the side(s) this entry publishes to.
    #[serde(default)]
    pub require_subscribers: bool,
}

fn qos_zero() -> Qos {
    Qos::AtMostOnce
}

/// Which way messages flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Remote → local.
    In,
    /// Local → remote.
    #[default]
    Out,
    /// Both ways.
    Both,
}

const LOCAL: usize = 0;
const REMOTE: usize = 1;

impl Direction {
    /// Whether messages arriving on `side` are forwarded.
    fn from(self, side: usize) -> bool {
        match self {
            Direction::Both => true,
            Direction::Out => side == LOCAL,
            Direction::In => side == REMOTE,
        }
    }
}

impl BridgeTopic {
    /// The sides this entry publishes to.
    fn targets(&self) -> &'static [usize] {
        match self.direction {
            Direction::Out => &[REMOTE],
            Direction::In => &[LOCAL],
            Direction::Both => &[LOCAL, REMOTE],
        }
    }

    fn prefix(&self, side: usize) -> &str {
        if side == LOCAL {
            &self.local_prefix
        } else {
            &self.remote_prefix
        }
    }

    /// The filter subscribed on `side`.
    fn filter(&self, side: usize) -> String {
        format!("{}{}", self.prefix(side), self.pattern)
    }

    /// Where a message on `topic` from `side` goes on the other side, if this entry carries it.
    fn map(&self, side: usize, topic: &str) -> Option<String> {
        if !self.direction.from(side) || !matches(&self.filter(side), topic) {
            return None;
        }
        let rest = topic.strip_prefix(self.prefix(side))?;
        Some(format!("{}{rest}", self.prefix(1 - side)))
    }
}

impl NodeConfig for MqttBridgeConfig {
    const TYPE: &'static str = "mqtt_bridge";
    const DESCRIPTION: &'static str =
        "Bridges topics between a local and a remote MQTT broker (mosquitto's bridge semantics)";
    const INPUTS: Inputs = Inputs::None;
    const OUTPUT: OutputKind = OutputKind::None;
    // Ready once both brokers confirmed the subscriptions of the spec.
    const REPORTS_READY: bool = true;

    /// Each entry as what it takes from one broker and gives the other.
    fn links(&self) -> Vec<ExternalLink> {
        let mut links = Vec::new();
        for topic in &self.topics {
            for from in [LOCAL, REMOTE] {
                if !topic.direction.from(from) {
                    continue;
                }
                let url = |side| {
                    if side == LOCAL {
                        &self.local.url
                    } else {
                        &self.remote.url
                    }
                };
                let label = |side| format!("{} (qos {})", topic.filter(side), u8::from(topic.qos));
                links.push(ExternalLink {
                    system: url(from).clone(),
                    inbound: true,
                    label: label(from),
                });
                links.push(ExternalLink {
                    system: url(1 - from).clone(),
                    inbound: false,
                    label: label(1 - from),
                });
            }
        }
        links
    }

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = self.local.check("local");
        issues.extend(self.remote.check("remote"));
        if self.buffer == 0 {
            issues.push(ConfigIssue::new("buffer", "at least 1"));
        }
        if self.topics.is_empty() {
            issues.push(ConfigIssue::new("topics", "bridge at least one pattern"));
        }
        for (i, topic) in self.topics.iter().enumerate() {
            for side in [LOCAL, REMOTE] {
                if let Err(reason) = check_filter(&topic.filter(side)) {
                    issues.push(ConfigIssue::new(format!("topics.{i}.pattern"), reason));
                }
            }
            if !topic.require_subscribers {
                continue;
            }
            for &side in topic.targets() {
                let (name, broker) = if side == LOCAL {
                    ("local", &self.local)
                } else {
                    ("remote", &self.remote)
                };
                if broker.protocol == Protocol::V311 {
                    issues.push(
                        ConfigIssue::new(
                            format!("topics.{i}.require_subscribers"),
                            format!(
                                "only MQTT 5 says that a publish reached no subscriber, and the {name} connection uses {}",
                                broker.protocol
                            ),
                        )
                        .hint(format!("set `{name}.protocol: \"5\"`, or drop `require_subscribers`")),
                    );
                }
            }
        }
        issues
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let status = self
            .status_topic
            .clone()
            .unwrap_or_else(|| format!("flowrun/bridge/{}/state", ctx.id));
        let mut local = self
            .local
            .options(&format!("{}-local", ctx.id), |p| ctx.resolve(p))?;
        let mut remote = self
            .remote
            .options(&format!("{}-remote", ctx.id), |p| ctx.resolve(p))?;
        // Each side takes what its broker sends up to MQTT's own limit: a
        // message over `max_packet_bytes` is refused when it is forwarded
        // (counted, logged) instead of failing the connection it came on,
        // which the broker would redeliver it on, again and again.
        local
            .set_manual_acks(true)
            .set_receive_maximum(self.local.inflight)
            .set_max_packet_sizes(
                super::connection::MQTT_MAX_PACKET,
                self.local.max_packet_bytes,
            );
        remote
            .set_manual_acks(true)
            .set_receive_maximum(self.remote.inflight)
            .set_max_packet_sizes(
                super::connection::MQTT_MAX_PACKET,
                self.remote.max_packet_bytes,
            )
            .set_last_will(Will {
                topic: status.clone(),
                payload: "0".into(),
                qos: Qos::AtLeastOnce,
                retain: true,
            });
        Ok(Box::new(MqttBridge {
            config: self.clone(),
            options: [local, remote],
            status,
            state_dir: ctx.state_dir.clone(),
        }))
    }
}

struct MqttBridge {
    config: MqttBridgeConfig,
    options: [Options; 2],
    status: String,
    /// Where each side records what it subscribed.
    state_dir: std::path::PathBuf,
}

/// Room for publishes and acks on their way to a connection task; they are
/// bounded by `buffer` (publishes) and the brokers' in-flight windows
/// (acks), and the channel grows as it fills.
const REQUESTS: usize = 1 << 16;

/// One broker's end of the bridge.
struct Side {
    link: Link,
    /// Whether what the bridge publishes here comes back to its own
    /// subscription: over MQTT 3.1.1; over 5 it subscribes with "no local".
    echoes_back: bool,
    /// Messages received from this broker, acknowledged back in order.
    acks: OrderedAcks<Held>,
    connection: u64,
    /// Messages published to this broker, waiting for its acknowledgement.
    outstanding: Outstanding<Forwarded>,
    /// Messages this broker matched to no subscriber, to publish again.
    unheard: Unheard<Forwarded>,
    /// What this side subscribes to, kept in line with the spec.
    subscriptions: Subscriptions,
    /// The broker confirmed them (once is enough to call the node ready).
    subscribed: bool,
}

impl Side {
    /// Whether the side has `buffer` messages waiting on its broker:
    /// published and not acknowledged, or held for want of a subscriber.
    fn is_full(&self, buffer: usize) -> bool {
        self.outstanding.len() + self.unheard.len() >= buffer
    }

    /// Whether the bridge reads what `side` sends: not while the other side
    /// is full, unless `side` is full too and needs its acknowledgements
    /// read (with `both` entries the two would otherwise wait on each other).
    fn may_read(side: &Side, other: &Side, buffer: usize) -> bool {
        !other.is_full(buffer) || side.is_full(buffer)
    }
}

/// A message published to one side, and how to publish it again.
struct Forwarded {
    message: Message,
    publish: Publish,
    /// Its topic entry's `require_subscribers`.
    require_subscribers: bool,
}

/// A received message's acknowledgement: the connection it came on, the
/// token, its topic (for logs).
type Held = (u64, AckToken, String);

/// What woke the bridge up.
enum Step {
    Event(usize, Option<LinkEvent>),
    Settled(usize, Held, AckStatus),
    Again(usize, Vec<Forwarded>),
}

impl MqttBridge {
    fn side(&self, side: usize, ctx: &NodeContext) -> Side {
        let broker = if side == LOCAL {
            &self.config.local
        } else {
            &self.config.remote
        };
        let filters = self
            .config
            .topics
            .iter()
            .filter(|t| t.direction.from(side))
            .map(|t| (t.filter(side), t.qos))
            .collect();
        let name = format!(
            "{}-{}",
            ctx.id,
            if side == LOCAL { "local" } else { "remote" }
        );
        let subscriptions = match BrokerUrl::parse(&broker.url) {
            Ok(url) => Subscriptions::new(
                filters,
                None,
                Some(&self.state_dir),
                (&url.host, url.port),
                &broker.client_id(&name),
                &ctx.id,
            ),
            // Not reached: the URL was parsed when the node was built.
            Err(_) => Subscriptions::new(filters, None, None, ("", 0), &name, &ctx.id),
        };
        Side {
            echoes_back: broker.protocol != Protocol::V5,
            link: Link::start(
                self.options[side].clone(),
                broker,
                &ctx.id,
                Arc::clone(&ctx.metrics),
                REQUESTS,
                EVENTS,
            ),
            acks: OrderedAcks::new(),
            connection: 0,
            outstanding: Outstanding::default(),
            unheard: Unheard::new(broker, ctx.metrics.event(unheard::EVENT), &ctx.id),
            subscriptions,
            subscribed: false,
        }
    }

    /// Publishes through `to`, tracking it like any forwarded message.
    fn publish(to: &mut Side, forwarded: Forwarded) -> Result<(), NodeError> {
        to.link
            .client
            .try_publish(forwarded.publish.clone())
            .map_err(|e| format!("cannot hand a message to the MQTT client: {e}"))?;
        to.outstanding.push(forwarded);
        Ok(())
    }

    fn status(&self, sides: &mut [Side; 2], up: bool) -> Result<(), NodeError> {
        let state = if up { "1" } else { "0" };
        let targets: &[usize] = if up { &[LOCAL, REMOTE] } else { &[LOCAL] };
        for &side in targets {
            let publish = Publish {
                topic: self.status.clone(),
                payload: state.into(),
                qos: Qos::AtLeastOnce,
                retain: true,
                user_properties: Vec::new(),
            };
            let message = Message::new(Payload::Bytes(publish.payload.clone()), Metadata::new());
            let forwarded = Forwarded {
                message,
                publish,
                require_subscribers: false,
            };
            Self::publish(&mut sides[side], forwarded)?;
        }
        Ok(())
    }
}

impl Node for MqttBridge {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let mut sides = [self.side(LOCAL, &ctx), self.side(REMOTE, &ctx)];
            let mut echoes = Echoes::default();
            let too_large = ctx.metrics.event("too_large");
            loop {
                let step = {
                    let buffer = self.config.buffer;
                    let read_local = Side::may_read(&sides[LOCAL], &sides[REMOTE], buffer);
                    let read_remote = Side::may_read(&sides[REMOTE], &sides[LOCAL], buffer);
                    let [local, remote] = &mut sides;
                    tokio::select! {
                        _ = ctx.stopping() => return Ok(()),
                        event = local.link.events.recv(), if read_local => Step::Event(LOCAL, event),
                        event = remote.link.events.recv(), if read_remote => Step::Event(REMOTE, event),
                        Some((held, outcome)) = local.acks.next(), if !local.acks.is_empty() => {
                            Step::Settled(LOCAL, held, outcome.status)
                        }
                        Some((held, outcome)) = remote.acks.next(), if !remote.acks.is_empty() => {
                            Step::Settled(REMOTE, held, outcome.status)
                        }
                        again = local.unheard.due() => Step::Again(LOCAL, again),
                        again = remote.unheard.due() => Step::Again(REMOTE, again),
                    }
                };
                let (from, event) = match step {
                    Step::Event(from, event) => (from, event),
                    Step::Settled(side, (on, token, topic), status) => {
                        settle(&mut sides[side], on, token, &topic, status, &ctx);
                        continue;
                    }
                    Step::Again(side, again) => {
                        for forwarded in again {
                            Self::publish(&mut sides[side], forwarded)?;
                        }
                        continue;
                    }
                };
                let to = 1 - from;
                match event {
                    None => return Err("an MQTT connection task ended".into()),
                    Some(LinkEvent::Connected {
                        session_present,
                        protocol,
                    }) => {
                        // Under `auto`, each connection has its own version.
                        sides[from].echoes_back = protocol != Protocol::V5;
                        let topics = &self.config.topics;
                        let guarded = topics
                            .iter()
                            .any(|t| t.require_subscribers && t.targets().contains(&from));
                        let side = &mut sides[from];
                        side.connection += 1;
                        side.unheard
                            .connected(protocol, guarded, &ctx.metrics, &ctx.id);
                        let requests = side.subscriptions.on_connect(session_present, protocol);
                        send_requests(&side.link, &requests, Subscribing::AsBridge, &ctx.id)?;
                        if !side.subscriptions.is_pending() {
                            side.subscribed = true;
                        }
                        if sides.iter().all(|s| s.subscribed) {
                            ctx.ready();
                        }
                        if from == REMOTE {
                            self.status(&mut sides, true)?;
                        }
                    }
                    Some(LinkEvent::Disconnected) => {
                        sides[from].connection += 1;
                        if from == REMOTE {
                            self.status(&mut sides, false)?;
                        }
                    }
                    Some(LinkEvent::Packet(Event::Received(publish))) => {
                        ctx.metrics.received.inc();
                        let side = &mut sides[from];
                        let ack = if publish.qos == Qos::AtMostOnce {
                            flowrun_runtime::Ack::untracked()
                        } else {
                            side.acks
                                .track((side.connection, publish.ack, publish.topic.clone()))
                        };
                        let message = Message::with_ack(
                            Payload::Bytes(publish.payload.clone()),
                            Metadata::new(),
                            ack,
                        );
                        if echoes.take(from, &publish.topic, &publish.payload) {
                            message.ack();
                            continue;
                        }
                        let entry = self.config.topics.iter().find_map(|t| {
                            t.map(from, &publish.topic)
                                .map(|topic| (topic, t.qos, t.require_subscribers))
                        });
                        let Some((topic, qos, require_subscribers)) = entry else {
                            message.ack();
                            continue;
                        };
                        let broker = if to == REMOTE {
                            &self.config.remote
                        } else {
                            &self.config.local
                        };
                        if let Err(why) = broker.check_fits(
                            &topic,
                            &publish.user_properties,
                            publish.payload.len(),
                        ) {
                            too_large.inc();
                            ctx.metrics.errors.inc();
                            let reason = format!("{why} of the broker it goes to: not forwarded");
                            tracing::warn!(node = %ctx.id, "{reason}");
                            message.reject(reason);
                            continue;
                        }
                        // The copy we publish comes back if the other side
                        // also subscribes to its topic, unless it speaks
                        // MQTT 5 ("no local"): drop it then.
                        if sides[to].echoes_back
                            && self
                                .config
                                .topics
                                .iter()
                                .any(|t| t.map(to, &topic).is_some())
                        {
                            echoes.note(to, &topic, &publish.payload);
                        }
                        let forward = Publish {
                            topic,
                            payload: publish.payload,
                            qos,
                            retain: publish.retain,
                            user_properties: publish.user_properties,
                        };
                        let forwarded = Forwarded {
                            message,
                            publish: forward,
                            require_subscribers,
                        };
                        Self::publish(&mut sides[to], forwarded)?;
                    }
                    Some(LinkEvent::Packet(Event::Subscribed(codes))) => {
                        let subscriptions = &mut sides[from].subscriptions;
                        for (filter, reason) in subscriptions.on_suback(&codes) {
                            ctx.metrics.errors.inc();
                            tracing::error!(node = %ctx.id, %filter, "the broker refused the subscription: {reason}");
                        }
                        let side = if from == LOCAL { "local" } else { "remote" };
                        tracing::info!(node = %ctx.id, side, "{}", subscriptions.state());
                        sides[from].subscribed = true;
                        if sides.iter().all(|s| s.subscribed) {
                            ctx.ready();
                        }
                    }
                    Some(LinkEvent::Packet(event)) => {
                        let side = &mut sides[from];
                        match side.outstanding.on_event(&event) {
                            Some((forwarded, Settled::Unheard))
                                if forwarded.require_subscribers =>
                            {
                                let topic = forwarded.publish.topic.clone();
                                side.unheard.hold(forwarded, &topic);
                            }
                            Some((forwarded, Settled::Taken | Settled::Unheard)) => {
                                if forwarded.require_subscribers {
                                    side.unheard.heard();
                                }
                                ctx.metrics.sent.inc();
                                forwarded.message.ack();
                            }
                            Some((forwarded, Settled::Refused(reason))) => {
                                ctx.metrics.errors.inc();
                                tracing::warn!(node = %ctx.id, "{reason}");
                                forwarded.message.fail(reason);
                            }
                            Some((forwarded, Settled::TooLarge(reason))) => {
                                too_large.inc();
                                ctx.metrics.errors.inc();
                                tracing::warn!(node = %ctx.id, "{reason}");
                                forwarded.message.reject(reason);
                            }
                            None => {}
                        }
                    }
                }
            }
        })
    }
}

/// Acknowledges to `side` a message the other broker took, in arrival order.
fn settle(
    side: &mut Side,
    on: u64,
    token: AckToken,
    topic: &str,
    status: AckStatus,
    ctx: &NodeContext,
) {
    if on != side.connection {
        return;
    }
    let queued = match status {
        AckStatus::Delivered | AckStatus::Rejected => side.link.client.try_ack(token).is_ok(),
        AckStatus::Failed => false,
    };
    if !queued {
        tracing::warn!(node = %ctx.id, %topic, "a bridged message was not taken: reconnecting so that the broker redelivers");
        side.connection += 1;
        side.link.reconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(direction: Direction, local: &str, remote: &str) -> BridgeTopic {
        BridgeTopic {
            pattern: "sensors/#".into(),
            direction,
            qos: Qos::AtLeastOnce,
            local_prefix: local.into(),
            remote_prefix: remote.into(),
            require_subscribers: false,
        }
    }

    #[test]
    fn maps_topics_between_prefixes() {
        let out = entry(Direction::Out, "edge/", "cloud/");
        assert_eq!(out.filter(LOCAL), "edge/sensors/#");
        assert_eq!(
            out.map(LOCAL, "edge/sensors/t1").as_deref(),
            Some("cloud/sensors/t1")
        );
        assert_eq!(out.map(REMOTE, "cloud/sensors/t1"), None);
        assert_eq!(out.map(LOCAL, "other/sensors/t1"), None);
        let both = entry(Direction::Both, "", "");
        assert_eq!(both.map(REMOTE, "sensors/a").as_deref(), Some("sensors/a"));
    }
}
