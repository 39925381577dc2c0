//! A running broker connection: a task that polls the [`super::client`] event loop,
//! reconnects with backoff and jitter, reports the link's state in the
//! node's status, and hands events to the node over a channel.
//!
//! The event loop must be polled continuously (it sends the pings and the
//! acks), and its `poll` is not meant to be dropped half-way, so it runs in
//! a task of its own.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use flowrun_runtime::NodeMetrics;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::client::{Cause, Client, Event, EventLoop, Failure, Options, Polled};
use super::connection::{BrokerConfig, Protocol};

/// What the connection task tells its node.
#[derive(Debug)]
pub enum LinkEvent {
    /// Connected (again); `session_present` says whether the broker kept
    /// the session; `protocol` is the version this connection speaks
    /// (`V311` or `V5`): under `auto` it may change on each connection.
    Connected {
        session_present: bool,
        protocol: Protocol,
    },
    /// The connection dropped; unacknowledged publishes are resent on the next one.
    Disconnected,
    /// Something a node acts on happened.
    Packet(Event),
}

/// A running connection: the client to send with, the events it produces.
/// Dropping it stops the connection task.
pub struct Link {
    pub client: Client,
    pub events: mpsc::Receiver<LinkEvent>,
    reconnect: Arc<Reconnect>,
    stop: CancellationToken,
}

/// A reconnection the node asked for, and how long to wait before it.
#[derive(Default)]
struct Reconnect {
    asked: Notify,
    /// Milliseconds to stay disconnected first.
    after_ms: std::sync::atomic::AtomicU64,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Events waiting for the node, at most, where the node does not say: room
/// for a publisher's acknowledgements to arrive in bursts.
pub const EVENTS: usize = 1024;

impl Link {
    /// Starts connecting with `options`; `node` names the node in logs. At
    /// most `events` events wait for the node: while they do, the task
    /// reads no more from the network, so the broker keeps the rest.
    pub fn start(
        options: Options,
        config: &BrokerConfig,
        node: &str,
        metrics: Arc<NodeMetrics>,
        requests: usize,
        events: usize,
    ) -> Link {
        let (client, eventloop) = options.start(requests.max(10));
        let (tx, events) = mpsc::channel(events.max(1));
        let reconnect = Arc::new(Reconnect::default());
        let stop = CancellationToken::new();
        // Each link is its own part of the node's health: a bridge has two.
        static LINKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let part = format!(
            "mqtt link {} to {}",
            LINKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            config.url
        );
        let task = Poller {
            part,
            eventloop,
            tx,
            metrics,
            node: node.to_owned(),
            url: config.url.clone(),
            auto: config.protocol == Protocol::Auto,
            min: Duration::from_millis(config.reconnect_min_ms.max(1)),
            max: Duration::from_millis(config.reconnect_max_ms.max(1)),
            reconnect: reconnect.clone(),
            stop: stop.clone(),
            first_attempt: true,
        };
        tokio::spawn(task.run());
        Link {
            client,
            events,
            reconnect,
            stop,
        }
    }

    /// Drops the network connection and connects again once `after` has
    /// passed: the broker then redelivers what was not acknowledged (for a
    /// subscriber whose sink failed).
    pub fn reconnect_after(&self, after: Duration) {
        let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        self.reconnect
            .after_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
        self.reconnect.asked.notify_one();
    }
}

/// What `auto` falling back to 3.1.1 costs, said once per connection.
const FELL_BACK: &str =
    "the broker speaks MQTT 3.1.1 only (it refused MQTT 5): connected with 3.1.1. \
This connection has no refusal reasons (a publish the broker drops is not failed), \
no user properties, no receive maximum, and `require_subscribers` cannot hold \
a publish that reached no subscriber";

struct Poller {
    /// This link's key in the node's health.
    part: String,
    eventloop: EventLoop,
    tx: mpsc::Sender<LinkEvent>,
    metrics: Arc<NodeMetrics>,
    node: String,
    url: String,
    /// `protocol: auto`: say so when a connection fell back to 3.1.1.
    auto: bool,
    min: Duration,
    max: Duration,
    reconnect: Arc<Reconnect>,
    stop: CancellationToken,
    /// No connection made and no failure said yet. A broker started beside
    /// flowrun (the spec's own `mqtt_broker`, or a container started with
    /// it) may not listen yet at a link's first attempt: that refusal is
    /// retried after the usual backoff without a WARN, and said only if
    /// the next attempt fails too.
    first_attempt: bool,
}

impl Poller {
    async fn run(mut self) {
        let connecting = format!("connecting to {}", self.url);
        self.metrics.set_state(&connecting);
        self.metrics.set_down(&self.part, connecting);
        self.connect_and_poll().await;
        // Stopped (the node stops, or is reloaded): no longer part of its health.
        self.metrics.set_up(&self.part);
    }

    async fn connect_and_poll(&mut self) {
        let mut backoff = self.min;
        let mut connected = false;
        loop {
            let polled = tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = self.reconnect.asked.notified() => {
                    self.eventloop.clean();
                    self.metrics.set_down(&self.part, format!("reconnecting to {}", self.url));
                    if self.disconnected(&mut connected).await.is_break()
                        || self.pause_before_reconnecting().await.is_break()
                    {
                        return;
                    }
                    continue;
                }
                polled = self.eventloop.poll() => polled,
            };
            let event = match polled {
                Ok(Polled::Connected {
                    session_present,
                    protocol,
                }) => {
                    connected = true;
                    backoff = self.min;
                    self.on_connected(session_present, protocol)
                }
                Ok(Polled::Event(event)) => LinkEvent::Packet(event),
                Ok(Polled::Nothing) => continue,
                Err(failure) => {
                    if self.disconnected(&mut connected).await.is_break()
                        || self.on_failure(failure, &mut backoff).await.is_break()
                    {
                        return;
                    }
                    continue;
                }
            };
            if self.tx.send(event).await.is_err() {
                return;
            }
        }
    }

    /// Waits out the pause the node asked for with its reconnection
    /// ([`Link::reconnect_after`]), disconnected; `Break` when it stops.
    async fn pause_before_reconnecting(&mut self) -> ControlFlow<()> {
        let ms = self
            .reconnect
            .after_ms
            .swap(0, std::sync::atomic::Ordering::Relaxed);
        if ms == 0 {
            return ControlFlow::Continue(());
        }
        let pause = Duration::from_millis(ms);
        self.metrics.set_state(format!(
            "disconnected so that the broker redelivers, reconnecting in {:.1}s",
            pause.as_secs_f64()
        ));
        tokio::select! {
            _ = self.stop.cancelled() => ControlFlow::Break(()),
            _ = tokio::time::sleep(pause) => ControlFlow::Continue(()),
        }
    }

    /// Tells the node that the connection dropped, if it was up; `Break`
    /// when the node is gone. (`&mut self`: the task must stay `Send`, and
    /// the event loop is not `Sync`.)
    async fn disconnected(&mut self, connected: &mut bool) -> ControlFlow<()> {
        if std::mem::take(connected) && self.tx.send(LinkEvent::Disconnected).await.is_err() {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Logs and shows a new connection; the event that tells the node.
    fn on_connected(&mut self, session_present: bool, protocol: Protocol) -> LinkEvent {
        self.first_attempt = false;
        tracing::info!(node = %self.node, url = %self.url, session_present, %protocol, "connected to the broker");
        if self.auto && protocol == Protocol::V311 {
            tracing::warn!(node = %self.node, url = %self.url, "{FELL_BACK}");
            self.metrics
                .set_state("connected over MQTT 3.1.1 (the broker does not speak 5)");
        } else {
            self.metrics.set_state("connected");
        }
        self.metrics.set_up(&self.part);
        LinkEvent::Connected {
            session_present,
            protocol,
        }
    }

    /// After the connection ended: hands refused publishes to the node, or
    /// says why it failed and waits out `backoff` (then doubled). `Break`
    /// when the node is gone or stops.
    async fn on_failure(&mut self, failure: Failure, backoff: &mut Duration) -> ControlFlow<()> {
        // A refused publish is the broker's answer, not a broken link: say
        // which, and connect again without waiting.
        if !failure.refused.is_empty() {
            for refused in failure.refused {
                if self.tx.send(LinkEvent::Packet(refused)).await.is_err() {
                    return ControlFlow::Break(());
                }
            }
            return ControlFlow::Continue(());
        }
        let wait = jitter(*backoff);
        let reason = failure.reason;
        if std::mem::take(&mut self.first_attempt) && failure.cause == Cause::NothingListens {
            // The status still says "connecting to …".
            tracing::debug!(node = %self.node, url = %self.url, retry_in_ms = wait.as_millis() as u64, "nothing listens yet: {reason}");
        } else {
            tracing::warn!(node = %self.node, url = %self.url, retry_in_ms = wait.as_millis() as u64, "broker connection failed: {reason}");
            self.metrics.set_state(format!(
                "disconnected ({reason}), retry in {:.1}s",
                wait.as_secs_f64()
            ));
            self.metrics.set_down(
                &self.part,
                format!("disconnected from {} ({reason})", self.url),
            );
        }
        tokio::select! {
            _ = self.stop.cancelled() => return ControlFlow::Break(()),
            _ = tokio::time::sleep(wait) => {}
        }
        *backoff = (*backoff * 2).min(self.max);
        ControlFlow::Continue(())
    }
}

/// Up to ±25 % around `base`, so that many clients do not reconnect in step.
pub(super) fn jitter(base: Duration) -> Duration {
    base.mul_f64(0.75 + fastrand::f64() * 0.5)
}
