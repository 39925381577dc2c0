//! `mqtt_bridge`: mosquitto's bridge as one node. A local and a remote
//! connection, and `topic` entries as in mosquitto.conf
//! (`pattern, direction in|out|both, qos, local_prefix, remote_prefix`).
//!
//! A QoS 1/2 message is acknowledged to the broker it came from only once
//! the other broker acknowledged it: each side subscribes with manual acks,
//! and the message forwarded to the other side carries an acknowledgement
//! that [`super::inbound`] hands back in arrival order. `both` entries would
//! echo each message back where it came from: over MQTT 5 each side
//! subscribes with "no local" (and "retain as published", so a retained
//! message stays retained on the other side); over 3.1.1, which has
//! neither, [`super::echoes`] drops the copy.
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

mod node;
mod side;

use flowrun_runtime::{
    BuildContext, ConfigIssue, ExternalLink, Inputs, Node, NodeConfig, NodeError, OutputKind,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::client::Will;
use super::connection::{BrokerConfig, Protocol};
use super::subscribe::check_filter;
use super::topic::matches;
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

impl MqttBridgeConfig {
    /// The broker on `side`.
    fn broker(&self, side: usize) -> &BrokerConfig {
        if side == LOCAL {
            &self.local
        } else {
            &self.remote
        }
    }

    /// Where a message on `topic` from `side` goes on the other side, with
    /// the QoS and `require_subscribers` of the first entry that carries it.
    fn route(&self, side: usize, topic: &str) -> Option<(String, Qos, bool)> {
        self.topics.iter().find_map(|t| {
            t.map(side, topic)
                .map(|to| (to, t.qos, t.require_subscribers))
        })
    }
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
                let url = |side| &self.broker(side).url;
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
                    issues.push(ConfigIssue::new(
                        format!("topics.{i}.pattern"),
                        reason.to_string(),
                    ));
                }
            }
            if !topic.require_subscribers {
                continue;
            }
            for &side in topic.targets() {
                let name = if side == LOCAL { "local" } else { "remote" };
                let broker = self.broker(side);
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
        // Each side acknowledges a message once the other broker took it.
        let local = self
            .local
            .receiving_options(&format!("{}-local", ctx.id), |p| ctx.resolve(p))?;
        let mut remote = self
            .remote
            .receiving_options(&format!("{}-remote", ctx.id), |p| ctx.resolve(p))?;
        remote.set_last_will(Will {
            topic: status.clone(),
            payload: "0".into(),
            qos: Qos::AtLeastOnce,
            retain: true,
        });
        Ok(Box::new(node::MqttBridge {
            config: self.clone(),
            options: [local, remote],
            status,
            state_dir: ctx.state_dir.clone(),
        }))
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
