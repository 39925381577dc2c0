//! One broker's end of a running bridge: its connection, the
//! acknowledgements it is owed, and what was published to it.

use flowrun_runtime::{Counter, Message, NodeContext, NodeError};

use super::super::client::{Event, Publish};
use super::super::inbound::InboundAcks;
use super::super::link::Link;
use super::super::outstanding::{Outstanding, Settled};
use super::super::subscriptions::Subscriptions;
use super::super::unheard::Unheard;

/// One broker's end of the bridge.
pub(super) struct Side {
    pub(super) link: Link,
    /// Whether what the bridge publishes here comes back to its own
    /// subscription: over MQTT 3.1.1; over 5 it subscribes with "no local".
    pub(super) echoes_back: bool,
    /// Messages received from this broker, acknowledged back in order.
    pub(super) acks: InboundAcks,
    /// Messages published to this broker, waiting for its acknowledgement.
    pub(super) outstanding: Outstanding<Forwarded>,
    /// Messages this broker matched to no subscriber, to publish again.
    pub(super) unheard: Unheard<Forwarded>,
    /// What this side subscribes to, kept in line with the spec.
    pub(super) subscriptions: Subscriptions,
    /// The broker confirmed them (once is enough to call the node ready).
    pub(super) subscribed: bool,
}

/// A message published to one side, and how to publish it again.
pub(super) struct Forwarded {
    pub(super) message: Message,
    pub(super) publish: Publish,
    /// Its topic entry's `require_subscribers`.
    pub(super) require_subscribers: bool,
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
    pub(super) fn may_read(side: &Side, other: &Side, buffer: usize) -> bool {
        !other.is_full(buffer) || side.is_full(buffer)
    }

    /// Publishes through this side, tracking it like any forwarded message.
    pub(super) fn publish(&mut self, forwarded: Forwarded) -> Result<(), NodeError> {
        self.link
            .client
            .try_publish(forwarded.publish.clone())
            .map_err(|e| format!("cannot hand a message to the MQTT client: {e}"))?;
        self.outstanding.push(forwarded);
        Ok(())
    }

    /// This broker answered a publish: the message it forwarded is
    /// acknowledged where it came from, held for a subscriber, or failed
    /// (redelivered there) or rejected (set aside) with the broker's reason.
    pub(super) fn on_publish_event(
        &mut self,
        event: &Event,
        too_large: &Counter,
        ctx: &NodeContext,
    ) {
        match self.outstanding.on_event(event) {
            Some((forwarded, Settled::Unheard)) if forwarded.require_subscribers => {
                let topic = forwarded.publish.topic.clone();
                self.unheard.hold(forwarded, &topic);
            }
            Some((forwarded, Settled::Taken | Settled::Unheard)) => {
                if forwarded.require_subscribers {
                    self.unheard.heard();
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
