//! MQTT node types, over rumqttc (tokio):
//!
//! - [`publish`]: `mqtt_pub`, a sink whose input is acknowledged only once
//!   the broker acknowledged the publish;
//! - [`subscribe`]: `mqtt_sub`, a source that acknowledges to the broker only
//!   once every downstream sink acknowledged, in arrival order.
//!
//! - [`bridge`]: `mqtt_bridge`, mosquitto's bridge as a node;
//! - [`broker`]: `mqtt_broker`, a broker inside the flowrun process.
//!
//! [`connection`] holds what they share: the `broker:` config and the options
//! made from it; [`client`] is one client for MQTT 3.1.1 and 5, so that the
//! nodes are written once; [`link`] runs a connection (reconnects with
//! backoff, the link state); [`unheard`] holds publishes that reached no
//! subscriber (`require_subscribers`); [`subscriptions`] keeps what a
//! persistent session subscribed in line with the spec.

pub mod bridge;
pub mod broker;
pub mod client;
pub mod connection;
mod echoes;
mod inbound;
pub mod link;
mod outgoing;
pub(crate) mod outstanding;
pub mod publish;
pub mod spool;
mod spooled;
pub mod subscribe;
mod subscriptions;
pub mod topic;
mod unheard;

use schemars::JsonSchema;
use serde::Deserialize;

/// Metadata keys the MQTT nodes add, beside `flowrun_runtime::keys::TOPIC`.
/// Over MQTT 5, `mqtt_sub` also adds each user property under its own name.
pub mod keys {
    /// The QoS a message was received with (0, 1, 2).
    pub const QOS: &str = "qos";
    /// Whether the message was a retained one.
    pub const RETAIN: &str = "retain";
    /// Whether the broker is delivering it again (MQTT's DUP flag).
    pub const REDELIVERED: &str = "redelivered";
    /// `topic_level_0`, `topic_level_1`, …: each level of the topic.
    pub const TOPIC_LEVEL_PREFIX: &str = "topic_level_";
}

/// An MQTT quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "u8")]
pub enum Qos {
    /// 0: at most once.
    AtMostOnce,
    /// 1: at least once.
    #[default]
    AtLeastOnce,
    /// 2: exactly once.
    ExactlyOnce,
}

impl JsonSchema for Qos {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Qos".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "0: at most once, 1: at least once, 2: exactly once.",
            "type": "integer",
            "enum": [0, 1, 2]
        })
    }
}

/// A number that is no MQTT quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("qos {0} does not exist: use 0, 1 or 2")]
pub struct BadQos(pub u8);

impl TryFrom<u8> for Qos {
    type Error = BadQos;
    fn try_from(value: u8) -> Result<Self, BadQos> {
        match value {
            0 => Ok(Qos::AtMostOnce),
            1 => Ok(Qos::AtLeastOnce),
            2 => Ok(Qos::ExactlyOnce),
            other => Err(BadQos(other)),
        }
    }
}

impl From<Qos> for u8 {
    fn from(qos: Qos) -> u8 {
        match qos {
            Qos::AtMostOnce => 0,
            Qos::AtLeastOnce => 1,
            Qos::ExactlyOnce => 2,
        }
    }
}

impl From<Qos> for rumqttc::QoS {
    fn from(qos: Qos) -> rumqttc::QoS {
        match qos {
            Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
            Qos::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
        }
    }
}

impl From<rumqttc::QoS> for Qos {
    fn from(qos: rumqttc::QoS) -> Qos {
        match qos {
            rumqttc::QoS::AtMostOnce => Qos::AtMostOnce,
            rumqttc::QoS::AtLeastOnce => Qos::AtLeastOnce,
            rumqttc::QoS::ExactlyOnce => Qos::ExactlyOnce,
        }
    }
}
