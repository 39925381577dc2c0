//! `mqtt_sub`: a source of the messages published on topic filters.
//!
//! QoS 1/2 messages are acknowledged to the broker only once every
//! downstream sink acknowledged them through the runtime, and in the order
//! they arrived (MQTT 3.1.1 §4.6, which rumqttc leaves to its user):
//! [`super::inbound`] holds a finished message back until those before it
//! are done. A message a sink failed is not acknowledged: the node
//! reconnects so that the broker redelivers it (with a persistent session),
//! and the acks still held for the old connection are dropped — the broker
//! redelivers those too, so sinks must be idempotent.
//!
//! With MQTT 5 the node advertises `inflight` as its receive maximum (the
//! broker sends no more unacknowledged messages than that), and a
//! message's user properties become metadata: a property `source = cam1`
//! is the key `source` with the text `cam1`. The node's own keys (`topic`,
//! `qos`, `seq`, …) win over a property of the same name; of repeated
//! names the last wins. `timestamp_ms` is the exception: a capture time
//! sent as a property, or read from the topic (`topic_fields`), is kept,
//! and the time of receipt is `received_ms`.
//!
//! Incoming publishes are taken up to MQTT's own limit whatever
//! `max_packet_bytes` says: over 3.1.1 the client drops a connection on a
//! larger one, the broker redelivers it on the next, and the subscriber
//! would loop there forever; over 5 the broker would drop it unseen. Sizes
//! are for the sinks to police (`cos_put`'s `max_object_bytes` sets an
//! oversize payload aside, counted, with its reason) or for the broker
//! (mosquitto's `message_size_limit`).

use std::sync::Arc;

use bytes::Bytes;
use flowrun_runtime::{
    BuildContext, ConfigIssue, ExternalLink, Inputs, Message, MetaValue, Metadata, Node,
    NodeConfig, NodeContext, NodeError, OutputKind, Payload, PayloadKind,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use super::client::{Event, Options, Received, SubscribeRefused, Subscribing};
use super::connection::BrokerConfig;
use super::inbound::InboundAcks;
use super::link::{Link, LinkEvent};
use super::subscriptions::{send_requests, Subscriptions};
use super::topic::{add_topic_meta, TopicTemplate};
use super::{keys, Qos};

/// Emits every message published on its topic filters.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttSubConfig {
    /// The broker to subscribe to. Keep `clean_session` false (the default)
    /// and `client_id` fixed so that what is published while flowrun is down
    /// is delivered when it comes back.
    pub broker: BrokerConfig,
    /// Topic filters, with wildcards (`faces/+/#`).
    pub topics: Vec<TopicFilter>,
    /// A shared subscription group: every filter is subscribed as
    /// `$share/<group>/<filter>`, so that the workers of one group (the same
    /// `share`, different client ids) split the messages between them
    /// instead of each receiving all. Over MQTT 5 only: where the broker
    /// speaks 3.1.1 alone (RabbitMQ before 3.13, mosquitto before 1.6),
    /// the plain filters are subscribed and a warning says so — every
    /// worker then receives every message (nothing lost; with identity
    /// keys, repeats are overwrites).
    #[serde(default)]
    pub share: Option<String>,
    /// Metadata read from each topic, by a template of the form `mqtt_pub`
    /// publishes with: `faces/{device}/{source}/{timestamp_ms}-{frame}-{face}`
    /// gives each face its device, camera, capture time, frame and face
    /// number (numbers as numbers), whatever the MQTT version. A topic of
    /// another shape gets none. A `timestamp_ms` so read (or sent as an
    /// MQTT 5 user property) is kept — the capture time — and the time of
    /// receipt is `received_ms`.
    #[serde(default)]
    pub topic_fields: Option<String>,
}

/// One subscription.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicFilter {
    /// The filter: `image`, `faces/+/#`. (A hand-written
    /// `$share/group/faces/#` works over MQTT 5; `share:` says it better.)
    pub filter: String,
    /// The highest QoS to receive it with. Default 1.
    #[serde(default)]
    pub qos: Qos,
}

impl NodeConfig for MqttSubConfig {
    const TYPE: &'static str = "mqtt_sub";
    const DESCRIPTION: &'static str =
        "Receives messages from MQTT topic filters; acknowledges them once every sink stored them";
    const INPUTS: Inputs = Inputs::None;
    const OUTPUT: OutputKind = OutputKind::Kind(PayloadKind::Bytes);
    // Ready once the broker confirmed the spec's subscriptions.
    const REPORTS_READY: bool = true;

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = self.broker.check("broker");
        if self.topics.is_empty() {
            issues.push(ConfigIssue::new(
                "topics",
                "subscribe to at least one filter",
            ));
        }
        for (i, topic) in self.topics.iter().enumerate() {
            let field = format!("topics.{i}.filter");
            if let Err(reason) = check_filter(&topic.filter) {
                issues.push(ConfigIssue::new(field, reason.to_string()));
            } else if let Some(rest) = topic.filter.strip_prefix("$share/") {
                let (group, plain) = rest.split_once('/').unwrap_or((rest, ""));
                issues.push(
                    ConfigIssue::new(
                        field,
                        "a hand-written shared subscription: it needs MQTT 5, and a broker that speaks only 3.1.1 takes it as a plain filter that nothing matches",
                    )
                    .hint(format!(
                        "write `filter: \"{plain}\"` and `share: {group}` beside `topics`: flowrun then asks for the shared subscription where the broker can give it, and says so where it cannot"
                    ))
                    .warning(),
                );
                if self.share.is_some() {
                    issues.push(ConfigIssue::new(
                        format!("topics.{i}.filter"),
                        "is shared already, and `share` would share it again",
                    ));
                }
            }
        }
        if let Some(template) = &self.topic_fields {
            if let Err(reason) = TopicTemplate::parse(template) {
                issues.push(
                    ConfigIssue::new("topic_fields", format!("not a topic template: {reason}"))
                        .hint("e.g. `faces/{device}/{source}/{timestamp_ms}-{frame}-{face}`"),
                );
            }
        }
        if let Some(group) = &self.share {
            if group.is_empty() || group.contains(['/', '+', '#']) {
                issues.push(ConfigIssue::new(
                    "share",
                    "a share group is a name without `/`, `+` or `#`",
                ));
            }
        }
        issues
    }

    fn links(&self) -> Vec<ExternalLink> {
        self.topics
            .iter()
            .map(|t| {
                let shared = match &self.share {
                    Some(group) => format!(", shared by {group}"),
                    None => String::new(),
                };
                ExternalLink {
                    system: self.broker.url.clone(),
                    inbound: true,
                    label: format!("{} (qos {}{shared})", t.filter, u8::from(t.qos)),
                }
            })
            .collect()
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let options = self.broker.receiving_options(&ctx.id, |p| ctx.resolve(p))?;
        let url = self.broker.broker_url()?;
        let wanted = self
            .topics
            .iter()
            .map(|t| (t.filter.clone(), t.qos))
            .collect();
        let topic_fields = match &self.topic_fields {
            Some(template) => Some(TopicTemplate::parse(template)?),
            None => None,
        };
        Ok(Box::new(MqttSub {
            config: self.clone(),
            options,
            topic_fields,
            subscriptions: Subscriptions::new(
                wanted,
                self.share.clone(),
                Some(&ctx.state_dir),
                (&url.host, url.port),
                &self.broker.client_id(&ctx.id),
                &ctx.id,
            ),
        }))
    }
}

/// A topic filter MQTT does not allow; each names the whole filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadFilter {
    #[error("a shared subscription is `$share/<group>/<filter>`")]
    Share,
    #[error("the filter is empty")]
    Empty,
    #[error("`#` must be a whole level and the last one in `{0}`")]
    MultiLevel(String),
    #[error("`+` must be a whole level in `{0}`")]
    SingleLevel(String),
}

/// MQTT's rules for a filter: `#` only last and alone in its level, `+` alone in its level.
pub fn check_filter(filter: &str) -> Result<(), BadFilter> {
    let plain = match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((group, plain)) if !group.is_empty() && !group.contains(['+', '#']) => plain,
            _ => return Err(BadFilter::Share),
        },
        None => filter,
    };
    if plain.is_empty() {
        return Err(BadFilter::Empty);
    }
    let levels: Vec<&str> = plain.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(BadFilter::MultiLevel(filter.to_owned()));
        }
        if level.contains('+') && *level != "+" {
            return Err(BadFilter::SingleLevel(filter.to_owned()));
        }
    }
    Ok(())
}

struct MqttSub {
    config: MqttSubConfig,
    options: Options,
    subscriptions: Subscriptions,
    /// `topic_fields`, parsed.
    topic_fields: Option<TopicTemplate>,
}

/// Room for acknowledgements on their way to the connection task. It only
/// fills if that many messages are in flight in the graph at once; the
/// channel allocates as it fills.
const ACK_QUEUE: usize = 1 << 16;

/// Events waiting between the connection task and the node, at most. Kept
/// small: received messages should wait in the graph's queues, which are
/// bounded, counted and configurable, or in the broker — not here. (At
/// 1,024, a slow store under a burst had this hold 1,024 faces more.)
const RECEIVED: usize = 16;

/// When the message arrived here, in ms since the epoch (`timestamp_ms` is
/// the capture time where the topic or a property says it).
pub const RECEIVED_MS: &str = "received_ms";

impl MqttSub {
    /// The broker answered the subscriptions: says which it refused, and
    /// that the node is ready.
    fn on_suback(&mut self, codes: &[Result<Qos, SubscribeRefused>], ctx: &NodeContext) {
        let refused = self.subscriptions.on_suback(codes);
        for (filter, reason) in &refused {
            ctx.metrics.errors.inc();
            tracing::error!(node = %ctx.id, filter = %filter, "the broker refused the subscription: {reason}");
        }
        ctx.metrics.set_state(if refused.is_empty() {
            self.subscriptions.state()
        } else {
            let names: Vec<String> = refused.iter().map(|(f, _)| format!("`{f}`")).collect();
            format!("subscription refused: {}", names.join(", "))
        });
        ctx.ready();
    }

    fn message(&self, publish: &Received, seq: u64) -> (Payload, Metadata) {
        let mut meta = Metadata::new();
        for (name, value) in &publish.user_properties {
            meta.insert(name.clone(), value.as_str().into());
        }
        let fields = self
            .topic_fields
            .as_ref()
            .and_then(|t| t.capture(&publish.topic));
        for (name, value) in fields.into_iter().flatten() {
            meta.insert(name, value);
        }
        add_topic_meta(&mut meta, &publish.topic);
        meta.insert(
            keys::QOS.into(),
            MetaValue::Int(u8::from(publish.qos).into()),
        );
        meta.insert(keys::RETAIN.into(), publish.retain.into());
        meta.insert(keys::REDELIVERED.into(), publish.dup.into());
        meta.insert(flowrun_runtime::keys::SEQ.into(), seq.into());
        meta.insert(
            flowrun_runtime::keys::CONTENT_TYPE.into(),
            crate::util::sniff_content_type(&publish.payload).into(),
        );
        // The capture time, when the topic or a property told it; the
        // receipt's either way.
        let now = crate::util::now_ms();
        meta.insert(RECEIVED_MS.into(), now.into());
        meta.entry(flowrun_runtime::keys::TIMESTAMP_MS.into())
            .or_insert_with(|| now.into());
        let payload: Bytes = publish.payload.clone();
        (Payload::Bytes(payload), meta)
    }
}

impl Node for MqttSub {
    fn run(mut self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let mut link = Link::start(
                self.options.clone(),
                &self.config.broker,
                &ctx.id,
                Arc::clone(&ctx.metrics),
                ACK_QUEUE,
                RECEIVED,
            );
            let mut acks = InboundAcks::default();
            let mut seq = 0u64;
            let mut redelivered = 0u64;
            let mut stopping = false;
            while !(stopping && acks.is_empty()) {
                tokio::select! {
                    _ = ctx.stopping(), if !stopping => stopping = true,
                    event = link.events.recv() => match event {
                        Some(LinkEvent::Connected { session_present, protocol }) => {
                            acks.new_connection();
                            let requests = self.subscriptions.on_connect(session_present, protocol);
                            send_requests(&link, &requests, Subscribing::Plainly, &ctx.id)?;
                            if !self.subscriptions.is_pending() {
                                ctx.metrics.set_state(self.subscriptions.state());
                                ctx.ready();
                            }
                        }
                        Some(LinkEvent::Disconnected) => acks.new_connection(),
                        Some(LinkEvent::Packet(Event::Received(publish))) if !stopping => {
                            if publish.dup {
                                redelivered += 1;
                                ctx.metrics.set_state(format!("connected, {redelivered} redelivered"));
                            }
                            let (payload, meta) = self.message(&publish, seq);
                            seq += 1;
                            let message = Message::with_ack(payload, meta, acks.track(&publish));
                            ctx.output.send(message).await;
                        }
                        Some(LinkEvent::Packet(Event::Subscribed(codes))) => self.on_suback(&codes, &ctx),
                        Some(LinkEvent::Packet(_)) => {}
                        None => return Err("the MQTT connection task ended".into()),
                    },
                    settled = acks.next() => acks.settle(settled, &link, &ctx.id),
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_filters() {
        assert!(check_filter("image").is_ok());
        assert!(check_filter("faces/+/#").is_ok());
        assert!(check_filter("$share/g/faces/#").is_ok());
        assert_eq!(
            check_filter("faces/#/x"),
            Err(BadFilter::MultiLevel("faces/#/x".into()))
        );
        assert_eq!(
            check_filter("faces/a+").unwrap_err().to_string(),
            "`+` must be a whole level in `faces/a+`"
        );
        assert_eq!(check_filter("$share//x"), Err(BadFilter::Share));
        assert_eq!(check_filter(""), Err(BadFilter::Empty));
    }

    #[test]
    fn a_hand_written_share_is_a_warning_pointing_at_the_setting() {
        let config =
            |json: serde_json::Value| -> MqttSubConfig { serde_json::from_value(json).unwrap() };
        let issues = config(serde_json::json!({
            "broker": {"url": "mqtt://x"},
            "topics": [{"filter": "$share/g/faces/#"}]
        }))
        .check();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].warning);
        let hint = issues[0].hint.clone().unwrap();
        assert!(
            hint.contains("`filter: \"faces/#\"` and `share: g`"),
            "{hint}"
        );
        let issues = config(serde_json::json!({
            "broker": {"url": "mqtt://x"},
            "topics": [{"filter": "faces/#"}],
            "share": "a/b"
        }))
        .check();
        assert_eq!(issues.len(), 1);
        assert!(!issues[0].warning);
    }
}
