//! End-to-end acknowledgements.
//!
//! A source that must not lose data (an MQTT subscription at QoS 1) creates an
//! [`Ack`] for each message it emits and keeps the matching [`AckReceiver`].
//! The `Ack` travels with the message: every copy made for a fan-out and every
//! message derived from it (one frame → several faces) holds a handle to the
//! same shared state. The receiver resolves once the *last* handle is gone,
//! with the worst status any holder reported.
//!
//! A node cannot forget: a handle dropped without being settled records
//! [`AckStatus::Failed`], so a message lost to a panic, an abort or a bug is a
//! negative acknowledgement and the source redelivers, never a silent success.
//! This is Vector's finalizer design (`lib/vector-common/src/finalization.rs`)
//! with that gap closed: there, dropping an event without a status counts as
//! delivered.
//!
//! Sources that must acknowledge in arrival order (MQTT's rule for manual
//! acks) use [`OrderedAcks`], which hands outcomes back in the order the
//! messages were tracked, whatever order the sinks finish in.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::stream::{FuturesOrdered, StreamExt};
use tokio::sync::oneshot;

use crate::metrics::NodeMetrics;

/// How a message ended. Ordered from best to worst: when several holders
/// report, the worst wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AckStatus {
    /// Every sink that received it has it safely (stored, published, written).
    Delivered = 0,
    /// A sink refused it for good (bad payload, forbidden key): redelivering
    /// would fail again. A source may acknowledge it upstream after routing it aside.
    Rejected = 1,
    /// It was lost or a sink failed in a way that may pass (store down,
    /// shutdown cut it short): the source should let it be redelivered.
    Failed = 2,
}

impl AckStatus {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => AckStatus::Delivered,
            1 => AckStatus::Rejected,
            _ => AckStatus::Failed,
        }
    }
}

/// The final word on a message: its status and, when not delivered, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: AckStatus,
    pub reason: Option<String>,
}

struct Shared {
    worst: AtomicU8,
    reason: Mutex<Option<String>>,
    done: Mutex<Option<oneshot::Sender<Outcome>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let status = AckStatus::from_u8(self.worst.load(Ordering::Acquire));
        let reason = self.reason.get_mut().map(Option::take).unwrap_or_default();
        if let Some(done) = self.done.get_mut().ok().and_then(Option::take) {
            // The source may have gone away (shut down): nobody left to tell.
            let _ = done.send(Outcome { status, reason });
        }
    }
}

/// One holder's handle on a message's acknowledgement. Clone it for each copy
/// of the message; settle or drop each clone exactly once.
pub struct Ack {
    shared: Option<Arc<Shared>>,
    settled: bool,
    /// The node currently holding the message, whose acked/nacked counters
    /// this handle's settlement updates.
    holder: Option<Arc<NodeMetrics>>,
}

impl Ack {
    /// A handle that nobody waits on, for sources whose messages need no
    /// acknowledgement (camera frames). Settling it still updates counters.
    pub fn untracked() -> Self {
        Ack {
            shared: None,
            settled: false,
            holder: None,
        }
    }

    /// A tracked handle and the receiver that resolves when every copy settled.
    pub fn tracked() -> (Ack, AckReceiver) {
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            worst: AtomicU8::new(AckStatus::Delivered as u8),
            reason: Mutex::new(None),
            done: Mutex::new(Some(tx)),
        });
        (
            Ack {
                shared: Some(shared),
                settled: false,
                holder: None,
            },
            AckReceiver(rx),
        )
    }

    /// Settles this handle with `status`; `reason` says why when it is not `Delivered`.
    pub fn settle(mut self, status: AckStatus, reason: Option<String>) {
        self.record(status, reason);
    }

    pub(crate) fn set_holder(&mut self, metrics: Arc<NodeMetrics>) {
        self.holder = Some(metrics);
    }

    fn record(&mut self, status: AckStatus, reason: Option<String>) {
        self.settled = true;
        if let Some(holder) = &self.holder {
            holder.count_settled(status);
        }
        let Some(shared) = &self.shared else { return };
        let previous = shared.worst.fetch_max(status as u8, Ordering::AcqRel);
        // Keep the reason of the worst status; among equals, the first one.
        if let (Some(reason), Ok(mut slot)) = (reason, shared.reason.lock()) {
            if status as u8 > previous || (status as u8 == previous && slot.is_none()) {
                *slot = Some(reason);
            }
        }
    }
}

impl Clone for Ack {
    fn clone(&self) -> Self {
        Ack {
            shared: self.shared.clone(),
            settled: false,
            holder: self.holder.clone(),
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if !self.settled {
            self.record(
                AckStatus::Failed,
                Some("dropped before it was acknowledged".into()),
            );
        }
    }
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("tracked", &self.shared.is_some())
            .finish()
    }
}

/// Resolves to the [`Outcome`] once every handle of a tracked message is gone.
pub struct AckReceiver(oneshot::Receiver<Outcome>);

impl Future for AckReceiver {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        Pin::new(&mut self.0).poll(cx).map(|result| {
            // The sender lives in `Shared`, whose `Drop` always sends; a closed
            // channel can only mean a panic while dropping it.
            result.unwrap_or(Outcome {
                status: AckStatus::Failed,
                reason: Some("acknowledgement lost".into()),
            })
        })
    }
}

type Pending<T> = Pin<Box<dyn Future<Output = (T, Outcome)> + Send>>;

/// Outcomes handed back in the order messages were tracked: what a source
/// needs when its protocol acknowledges in arrival order (MQTT manual acks).
pub struct OrderedAcks<T> {
    pending: FuturesOrdered<Pending<T>>,
}

impl<T: Send + 'static> OrderedAcks<T> {
    pub fn new() -> Self {
        OrderedAcks {
            pending: FuturesOrdered::new(),
        }
    }

    /// Tracks a new message identified by `token`; attach the returned `Ack` to it.
    pub fn track(&mut self, token: T) -> Ack {
        let (ack, receiver) = Ack::tracked();
        self.pending
            .push_back(Box::pin(async move { (token, receiver.await) }));
        ack
    }

    /// How many tracked messages have not been handed back yet.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The next outcome in tracking order; `None` when nothing is pending.
    pub async fn next(&mut self) -> Option<(T, Outcome)> {
        self.pending.next().await
    }
}

impl<T: Send + 'static> Default for OrderedAcks<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_when_the_last_copy_settles() {
        let (ack, mut rx) = Ack::tracked();
        let copy = ack.clone();
        ack.settle(AckStatus::Delivered, None);
        assert!(futures::poll!(&mut rx).is_pending());
        copy.settle(AckStatus::Delivered, None);
        assert_eq!(rx.await.status, AckStatus::Delivered);
    }

    #[tokio::test]
    async fn worst_status_wins_with_its_reason() {
        let (ack, rx) = Ack::tracked();
        let a = ack.clone();
        let b = ack.clone();
        ack.settle(AckStatus::Delivered, None);
        a.settle(AckStatus::Rejected, Some("not an image".into()));
        b.settle(AckStatus::Delivered, None);
        assert_eq!(
            rx.await,
            Outcome {
                status: AckStatus::Rejected,
                reason: Some("not an image".into())
            }
        );
    }

    #[tokio::test]
    async fn dropping_without_settling_is_a_failure() {
        let (ack, rx) = Ack::tracked();
        let copy = ack.clone();
        ack.settle(AckStatus::Delivered, None);
        drop(copy);
        let outcome = rx.await;
        assert_eq!(outcome.status, AckStatus::Failed);
        assert_eq!(
            outcome.reason.as_deref(),
            Some("dropped before it was acknowledged")
        );
    }

    #[tokio::test]
    async fn ordered_acks_come_back_in_tracking_order() {
        let mut acks = OrderedAcks::new();
        let first = acks.track(1);
        let second = acks.track(2);
        second.settle(AckStatus::Delivered, None);
        assert!(futures::poll!(Box::pin(acks.next())).is_pending());
        first.settle(AckStatus::Failed, Some("store down".into()));
        assert_eq!(
            acks.next().await.map(|(t, o)| (t, o.status)),
            Some((1, AckStatus::Failed))
        );
        assert_eq!(
            acks.next().await.map(|(t, o)| (t, o.status)),
            Some((2, AckStatus::Delivered))
        );
        assert!(acks.next().await.is_none());
    }
}
