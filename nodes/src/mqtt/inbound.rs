//! What a node that receives from a broker owes it: the acknowledgements of
//! its QoS 1/2 messages, in the order they arrived (MQTT 3.1.1 §4.6, which
//! rumqttc leaves to its user), each once whatever took the message
//! downstream settled it. Shared by `mqtt_sub` (downstream is the graph's
//! sinks) and `mqtt_bridge` (downstream is the other broker).
//!
//! A message that failed downstream is not acknowledged: the connection is
//! dropped so that the broker redelivers it (with a persistent session), and
//! the acknowledgements still held for the old connection are dropped —
//! packet ids mean nothing on another connection, and the broker redelivers
//! those messages too, so whatever takes them must be idempotent. When
//! failures follow one another with nothing taken between them (a store
//! that is down, a bucket not mounted), each reconnection waits longer
//! ([`redelivery_pause`]) instead of fetching the same messages to fail
//! them again at once: hundreds of reconnections a second otherwise.

use std::time::Duration;

use flowrun_runtime::{Ack, AckStatus, OrderedAcks, Outcome};

use super::client::{AckToken, Received};
use super::link::Link;
use super::Qos;

/// A received message's acknowledgement, held until it is its turn.
pub(super) struct Held {
    /// The connection it came on.
    connection: u64,
    token: AckToken,
    /// For logs.
    topic: String,
}

/// The acknowledgements owed to one broker connection, in arrival order.
#[derive(Default)]
pub(super) struct InboundAcks {
    acks: OrderedAcks<Held>,
    /// Counts connections (and disconnections): an acknowledgement held for
    /// an earlier one is not sent.
    connection: u64,
    /// Redeliveries asked for since downstream last took a message.
    failures_in_a_row: u32,
}

/// The first pause before a redelivery that follows another failed one;
/// it doubles with each further failure in a row, up to [`PAUSE_MAX`].
const PAUSE_MIN: Duration = Duration::from_millis(250);
const PAUSE_MAX: Duration = Duration::from_secs(30);

/// How long to stay disconnected before the `failures`-th redelivery in a
/// row: none for the first (a single failure is retried at once), then
/// 250 ms doubling up to 30 s.
pub(super) fn redelivery_pause(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => PAUSE_MIN
            .saturating_mul(2u32.saturating_pow(n - 2))
            .min(PAUSE_MAX),
    }
}

impl InboundAcks {
    /// Whether every tracked message has been settled.
    pub(super) fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }

    /// The link connected or dropped: what is held for the connection
    /// before is no longer acknowledged.
    pub(super) fn new_connection(&mut self) {
        self.connection += 1;
    }

    /// The acknowledgement to attach to `received`: tracked at QoS 1/2,
    /// untracked at QoS 0, which the broker expects none for.
    pub(super) fn track(&mut self, received: &Received) -> Ack {
        if received.qos == Qos::AtMostOnce {
            return Ack::untracked();
        }
        self.acks.track(Held {
            connection: self.connection,
            token: received.ack,
            topic: received.topic.clone(),
        })
    }

    /// The next settled message whose turn it is; never resolves while
    /// nothing is tracked, so that it can sit in a `select!` unguarded.
    pub(super) async fn next(&mut self) -> (Held, Outcome) {
        match self.acks.next().await {
            Some(settled) => settled,
            None => std::future::pending().await,
        }
    }

    /// Acknowledges `held` to the broker through `link` if downstream took
    /// it (or set it aside as rejected: a redelivery would be rejected
    /// again); otherwise reconnects so that the broker redelivers it.
    pub(super) fn settle(&mut self, (held, outcome): (Held, Outcome), link: &Link, node: &str) {
        if held.connection != self.connection {
            return;
        }
        let why = match outcome.status {
            // Never wait on the client here: the connection task may itself
            // be waiting for the node to take an event.
            AckStatus::Delivered | AckStatus::Rejected => match link.client.try_ack(held.token) {
                Ok(()) => {
                    self.failures_in_a_row = 0;
                    return;
                }
                Err(error) => format!("cannot queue an acknowledgement ({error})"),
            },
            AckStatus::Failed => format!(
                "not taken downstream ({})",
                outcome.reason.unwrap_or_default()
            ),
        };
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        let pause = redelivery_pause(self.failures_in_a_row);
        tracing::warn!(
            node,
            topic = %held.topic,
            pause_ms = pause.as_millis() as u64,
            "{why}: reconnecting so that the broker redelivers"
        );
        self.new_connection();
        link.reconnect_after(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::redelivery_pause;
    use std::time::Duration;

    #[test]
    fn redeliveries_in_a_row_wait_longer_and_longer() {
        let ms = |n| redelivery_pause(n).as_millis();
        assert_eq!(ms(1), 0);
        assert_eq!(ms(2), 250);
        assert_eq!(ms(3), 500);
        assert_eq!(ms(8), 16_000);
        assert_eq!(redelivery_pause(9), Duration::from_secs(30));
        assert_eq!(redelivery_pause(u32::MAX), Duration::from_secs(30));
    }
}
