//! `require_subscribers`: a publish the broker took but matched to no
//! subscriber (MQTT 5 reason code 0x10) reached no one. It is held, still
//! unacknowledged where it came from, and published again after a backoff
//! (the connection's `reconnect_min_ms` doubling up to `reconnect_max_ms`)
//! until a subscriber takes it. A cloud worker that is still subscribing
//! again after a broker restart thus loses nothing, and an absent one costs
//! one publish per held message per backoff, not a hot loop.

use std::time::Duration;

use flowrun_runtime::metrics::Counter;
use flowrun_runtime::NodeMetrics;
use tokio::time::Instant;

use super::connection::{BrokerConfig, Protocol};
use super::link::jitter;

/// The counter of publishes that reached no subscriber, per node.
pub const EVENT: &str = "no_subscribers";

/// Held publishes and when to try them again.
pub struct Unheard<T> {
    waiting: Vec<T>,
    retry_at: Option<Instant>,
    backoff: Duration,
    min: Duration,
    max: Duration,
    /// Whether the last word from the broker was "no subscribers": logged
    /// when it changes, not per message.
    absent: bool,
    /// Whether the connection speaks 3.1.1 (`auto` fell back): warned
    /// when it changes, not per connection.
    unprotected: bool,
    counter: Counter,
    node: String,
}

impl<T> Unheard<T> {
    pub fn new(broker: &BrokerConfig, counter: Counter, node: &str) -> Unheard<T> {
        let min = Duration::from_millis(broker.reconnect_min_ms.max(1));
        Unheard {
            waiting: Vec::new(),
            retry_at: None,
            backoff: min,
            min,
            max: Duration::from_millis(broker.reconnect_max_ms.max(1)),
            absent: false,
            unprotected: false,
            counter,
            node: node.to_owned(),
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The broker said no subscriber matched `item`'s `topic`: hold it.
    pub fn hold(&mut self, item: T, topic: &str) {
        self.counter.inc();
        if !self.absent {
            self.absent = true;
            tracing::warn!(node = %self.node, %topic, "no subscriber on the broker: holding messages unacknowledged and publishing them again with backoff");
        }
        self.waiting.push(item);
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + jitter(self.backoff));
        }
    }

    /// A connection speaking `protocol` is up. Over 3.1.1 (where `auto`
    /// found a broker that speaks only that) no broker says that a publish
    /// reached no subscriber: the protection is lost while it lasts, and
    /// the spec runs on; said in the log once and in the node's status.
    /// `guarded`: the node publishes here with `require_subscribers`.
    pub fn connected(
        &mut self,
        protocol: Protocol,
        guarded: bool,
        metrics: &NodeMetrics,
        node: &str,
    ) {
        let unprotected = guarded && protocol == Protocol::V311;
        if unprotected {
            if !self.unprotected {
                tracing::warn!(node = %node, "require_subscribers is lost on this MQTT 3.1.1 connection: a message published while no subscriber is subscribed can be dropped by the broker and still be acknowledged");
            }
            metrics.set_state(
                "connected over MQTT 3.1.1: require_subscribers lost (a message published while no subscriber is subscribed can be dropped)",
            );
        }
        self.unprotected = unprotected;
    }

    /// A publish reached a subscriber: retries start from the shortest wait again.
    pub fn heard(&mut self) {
        self.backoff = self.min;
        if self.absent {
            self.absent = false;
            tracing::info!(node = %self.node, "a subscriber took a message: publishing normally again");
        }
    }

    /// Waits for the retry time and hands back what to publish again; the
    /// next wait is twice as long unless a subscriber shows up. Pending
    /// forever while nothing is held.
    pub async fn due(&mut self) -> Vec<T> {
        let Some(at) = self.retry_at else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(at).await;
        self.retry_at = None;
        self.backoff = (self.backoff * 2).min(self.max);
        std::mem::take(&mut self.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_then_retries_with_a_doubling_backoff() {
        let mut broker = BrokerConfig::new("mqtt://x");
        broker.reconnect_min_ms = 100;
        broker.reconnect_max_ms = 300;
        let mut unheard = Unheard::new(&broker, Counter::default(), "n");
        unheard.hold("a", "t");
        unheard.hold("b", "t");
        let start = Instant::now();
        assert_eq!(unheard.due().await, ["a", "b"]);
        assert!(start.elapsed() >= Duration::from_millis(75));
        unheard.hold("a", "t");
        let start = Instant::now();
        assert_eq!(unheard.due().await, ["a"]);
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert!(unheard.is_empty());
    }
}
