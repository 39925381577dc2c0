//! How `mqtt_pub` turns a message into a publish and connects, shared by
//! its direct path ([`super::publish`]) and its spooled one
//! ([`super::spooled`]), so that neither depends on the other.

use std::sync::Arc;

use flowrun_runtime::{Message, NodeContext, Payload};

use super::client::{Options, Publish};
use super::connection::{BrokerConfig, TooLarge};
use super::link::{Link, EVENTS};
use super::topic::{RenderError, TopicTemplate};
use super::Qos;

/// Why a message can never be published: it is refused, not retried.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unsendable {
    #[error("mqtt_pub publishes bytes, not frames")]
    NotBytes,
    #[error(transparent)]
    Topic(#[from] RenderError),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

/// What an `mqtt_pub` publishes, where, and how much it hands over unacknowledged.
pub(super) struct Outgoing {
    pub(super) broker: BrokerConfig,
    pub(super) options: Options,
    /// `topic`, parsed.
    pub(super) topic: TopicTemplate,
    pub(super) qos: Qos,
    pub(super) retain: bool,
    /// The metadata keys sent as MQTT 5 user properties.
    pub(super) user_properties: Vec<String>,
    /// Messages handed to the connection and not yet acknowledged, at most.
    pub(super) buffer: usize,
}

impl Outgoing {
    /// Starts the connection; at most `buffer` publishes wait in its queue.
    pub(super) fn connect(&self, ctx: &NodeContext) -> Link {
        Link::start(
            self.options.clone(),
            &self.broker,
            &ctx.id,
            Arc::clone(&ctx.metrics),
            self.buffer,
            EVENTS,
        )
    }

    /// The publish to send for `message`, or why it was refused (counted,
    /// logged) because it can never be sent: a missing topic key, a payload
    /// over the packet limit.
    pub(super) fn prepare(
        &self,
        message: &Message,
        ctx: &NodeContext,
    ) -> Result<Publish, Unsendable> {
        self.publish_of(message).inspect_err(|reason| {
            ctx.metrics.errors.inc();
            tracing::warn!(node = %ctx.id, "message refused: {reason}");
        })
    }

    fn publish_of(&self, message: &Message) -> Result<Publish, Unsendable> {
        let Payload::Bytes(payload) = &message.payload else {
            return Err(Unsendable::NotBytes);
        };
        let topic = self.topic.render(&message.meta)?;
        let user_properties = user_properties(message, &self.user_properties);
        self.broker
            .check_fits(&topic, &user_properties, payload.len())?;
        Ok(Publish {
            topic,
            payload: payload.clone(),
            qos: self.qos,
            retain: self.retain,
            user_properties,
        })
    }
}

/// The user properties to send for `message`: the configured metadata keys it has.
fn user_properties(message: &Message, keys: &[String]) -> Vec<(String, String)> {
    keys.iter()
        .filter_map(|key| Some((key.clone(), message.meta.get(key)?.to_string())))
        .collect()
}
