//! Edges: bounded queues between nodes, and the `Input`/`Output` ends a node uses.
//!
//! Each edge is its own bounded queue with its own overflow policy, so a slow
//! branch of a fan-out does not silently lose a fast one's messages, and a
//! live source can drop old frames on one edge while a store blocks on
//! another. The runtime owns the queues, not the node instances: a node that
//! is restarted or reconfigured by a hot reload picks up the same inputs with
//! nothing lost, and unchanged neighbours keep their connections.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::message::Message;
use crate::metrics::NodeMetrics;

/// What an edge does when its queue is full.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// The sender waits: backpressure travels upstream. Nothing is lost.
    #[default]
    Block,
    /// The oldest queued message is dropped (and counted) to make room: for
    /// live sources, where a stale frame is worth less than a fresh one.
    DropOldest,
}

/// A bounded queue from one node to another.
pub struct Edge {
    pub from: String,
    /// Which output of `from` feeds it: `None` for the default one.
    pub port: Option<String>,
    pub to: String,
    pub capacity: usize,
    pub overflow: Overflow,
    queue: Mutex<VecDeque<Message>>,
    /// Free places, for `Block`: a sender takes one, the receiver gives it back.
    slots: Semaphore,
    closed: AtomicBool,
    /// Wakes the receiving node; shared by all edges into it.
    wake: Arc<Notify>,
    /// The receiving node's counters: its queue depth and the drops on its inputs.
    receiver: Arc<NodeMetrics>,
}

impl Edge {
    fn new(
        from: &str,
        port: Option<&str>,
        to: &Inbox,
        capacity: usize,
        overflow: Overflow,
    ) -> Arc<Edge> {
        let capacity = capacity.max(1);
        Arc::new(Edge {
            from: from.to_owned(),
            port: port.map(str::to_owned),
            to: to.node.clone(),
            capacity,
            overflow,
            queue: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            slots: Semaphore::new(capacity),
            closed: AtomicBool::new(false),
            wake: to.wake.clone(),
            receiver: to.metrics.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        // A panic while holding this lock cannot leave the queue half-changed.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `message`, waiting for room under `Block`. A closed edge hands
    /// the message back.
    async fn push(&self, message: Message) -> Result<(), Message> {
        if self.overflow == Overflow::Block {
            match self.slots.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => return Err(message),
            }
        }
        let evicted = {
            let mut queue = self.lock();
            if self.closed.load(Ordering::Acquire) {
                if self.overflow == Overflow::Block {
                    self.slots.add_permits(1);
                }
                return Err(message);
            }
            queue.push_back(message);
            if queue.len() > self.capacity {
                queue.pop_front()
            } else {
                self.receiver.queue_depth.inc();
                None
            }
        };
        self.wake.notify_one();
        if let Some(evicted) = evicted {
            self.receiver.dropped.inc();
            evicted.fail("dropped by the drop_oldest overflow policy");
        }
        Ok(())
    }

    fn pop(&self) -> Option<Message> {
        let message = self.lock().pop_front()?;
        self.receiver.queue_depth.dec();
        if self.overflow == Overflow::Block {
            self.slots.add_permits(1);
        }
        Some(message)
    }

    /// No more messages will be sent; the receiver still takes what is queued.
    pub fn close(&self) {
        // Under the queue lock, so that no push lands after the receiver saw
        // the edge closed and empty.
        let queue = self.lock();
        self.closed.store(true, Ordering::Release);
        drop(queue);
        self.wake.notify_one();
    }

    /// The receiver is gone: refuse senders and fail what is queued (its
    /// sources redeliver), saying `why`. Returns how many were failed.
    pub fn discard(&self, why: &str) -> usize {
        self.close();
        self.slots.close();
        let drained: Vec<Message> = self.lock().drain(..).collect();
        let n = drained.len();
        self.receiver.queue_depth.dec_by(n as i64);
        for message in drained {
            message.fail(why);
        }
        n
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn is_finished(&self) -> bool {
        self.closed.load(Ordering::Acquire) && self.lock().is_empty()
    }
}

/// The edges into one node. Owned by the runtime; rewired by reloads.
pub struct Inbox {
    node: String,
    edges: RwLock<Vec<Arc<Edge>>>,
    wake: Arc<Notify>,
    /// Where the round-robin over edges starts next, so that one busy input
    /// cannot starve another.
    next: AtomicUsize,
    metrics: Arc<NodeMetrics>,
}

enum Poll {
    Ready(Message),
    Empty,
    Finished,
}

impl Inbox {
    pub fn new(node: &str, metrics: Arc<NodeMetrics>) -> Arc<Inbox> {
        Arc::new(Inbox {
            node: node.to_owned(),
            edges: RwLock::new(Vec::new()),
            wake: Arc::new(Notify::new()),
            next: AtomicUsize::new(0),
            metrics,
        })
    }

    /// Creates an edge from output `port` of `from` (`None`: its default
    /// output) into this inbox.
    pub fn connect(
        &self,
        from: &str,
        port: Option<&str>,
        capacity: usize,
        overflow: Overflow,
    ) -> Arc<Edge> {
        let edge = Edge::new(from, port, self, capacity, overflow);
        self.edges
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(edge.clone());
        edge
    }

    /// The edges currently feeding this node.
    pub fn edges(&self) -> Vec<Arc<Edge>> {
        self.edges.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn poll(&self) -> Poll {
        let edges = self.edges.read().unwrap_or_else(|p| p.into_inner());
        let n = edges.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut finished = 0;
        for i in 0..n {
            let edge = &edges[(start + i) % n];
            if let Some(message) = edge.pop() {
                return Poll::Ready(message);
            }
            if edge.is_finished() {
                finished += 1;
            }
        }
        if finished == n {
            Poll::Finished
        } else {
            Poll::Empty
        }
    }

    /// Drops edges that are closed and empty, so they stop costing a look.
    fn prune(&self) {
        let mut edges = self.edges.write().unwrap_or_else(|p| p.into_inner());
        let before = edges.len();
        edges.retain(|e| !e.is_finished());
        if edges.len() != before {
            tracing::trace!(node = %self.node, removed = before - edges.len(), "pruned finished edges");
        }
    }
}

/// A node's receiving end: messages from all its input edges.
pub struct Input {
    inbox: Arc<Inbox>,
    stop: CancellationToken,
    metrics: Arc<NodeMetrics>,
}

impl Input {
    pub(crate) fn new(
        inbox: Arc<Inbox>,
        stop: CancellationToken,
        metrics: Arc<NodeMetrics>,
    ) -> Self {
        Input {
            inbox,
            stop,
            metrics,
        }
    }

    /// The next message from any input. `None` when this node instance is
    /// asked to stop (what is still queued stays for its successor) or when
    /// every input is closed and drained.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let woken = self.inbox.wake.notified();
            if self.stop.is_cancelled() {
                return None;
            }
            match self.inbox.poll() {
                Poll::Ready(mut message) => {
                    self.metrics.received.inc();
                    message.ack_mut().set_holder(self.metrics.clone());
                    return Some(message);
                }
                Poll::Finished => {
                    self.inbox.prune();
                    if self.inbox.edges().is_empty() {
                        return None;
                    }
                }
                Poll::Empty => {
                    tokio::select! {
                        _ = woken => {}
                        _ = self.stop.cancelled() => return None,
                    }
                }
            }
        }
    }

    /// `recv` for nodes that run on their own thread (OpenCV work).
    pub fn blocking_recv(&mut self) -> Option<Message> {
        futures::executor::block_on(self.recv())
    }
}

/// A node's sending end: fans each message out to every edge leaving the
/// output port it is sent on. Clone it to send from several tasks or threads.
#[derive(Clone)]
pub struct Output {
    routes: Arc<RwLock<Routes>>,
    metrics: Arc<NodeMetrics>,
}

/// The edges leaving a node, all of them and by port: split once when the
/// engine wires the node, not on every send. The named ports are a short
/// list scanned by name: a node has one or two, and a send (every message,
/// every hop) must not allocate or hash a key — a map keyed by
/// `Option<String>` cost a fifth more instructions per hop (callgrind,
/// runtime/benches/chain.rs).
#[derive(Default)]
struct Routes {
    all: Vec<Arc<Edge>>,
    default: Option<Arc<[Arc<Edge>]>>,
    named: Vec<(String, Arc<[Arc<Edge>]>)>,
}

impl Routes {
    fn get(&self, port: Option<&str>) -> Option<&Arc<[Arc<Edge>]>> {
        match port {
            None => self.default.as_ref(),
            Some(port) => self
                .named
                .iter()
                .find(|(name, _)| name == port)
                .map(|(_, edges)| edges),
        }
    }
}

impl Output {
    pub fn new(metrics: Arc<NodeMetrics>) -> Self {
        Output {
            routes: Arc::new(RwLock::new(Routes::default())),
            metrics,
        }
    }

    /// Sends `message` on the default output to every downstream node,
    /// waiting where an edge is full and blocks. A message with nowhere to
    /// go is counted as dropped and fails its acknowledgement.
    pub async fn send(&self, message: Message) {
        self.send_on(None, message).await
    }

    /// Sends `message` on the named output `port`, as [`Output::send`] does
    /// on the default one. The message keeps its acknowledgement: its
    /// source hears the outcome once the port's consumers settled it.
    pub async fn send_to(&self, port: &str, message: Message) {
        self.send_on(Some(port), message).await
    }

    /// Whether any node takes output `port` (`None`: the default one), so
    /// that a node can do without it (reject a dead letter) instead of
    /// sending into nothing.
    pub fn is_connected(&self, port: Option<&str>) -> bool {
        self.route(port).is_some_and(|edges| !edges.is_empty())
    }

    fn route(&self, port: Option<&str>) -> Option<Arc<[Arc<Edge>]>> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        routes.get(port).cloned()
    }

    async fn send_on(&self, port: Option<&str>, message: Message) {
        let edges = self.route(port).unwrap_or_else(|| Arc::from(Vec::new()));
        self.metrics.sent.inc();
        let Some((last, rest)) = edges.split_last() else {
            self.metrics.dropped.inc();
            let why = match port {
                None => "no node is connected to this output".to_owned(),
                Some(port) => format!("no node is connected to output `{port}`"),
            };
            message.fail(why);
            return;
        };
        for edge in rest {
            self.push(edge, message.clone()).await;
        }
        self.push(last, message).await;
    }

    async fn push(&self, edge: &Edge, message: Message) {
        let Err(message) = edge.push(message).await else {
            return;
        };
        // A reload may have replaced the edge (new queue settings) while this
        // send waited on it: follow the node to its new edge.
        let replacement = self.edges().into_iter().find(|e| {
            e.to == edge.to
                && e.port == edge.port
                && !std::ptr::eq(e.as_ref(), edge)
                && !e.is_closed()
        });
        let message = match replacement {
            Some(next) => match next.push(message).await {
                Ok(()) => return,
                Err(message) => message,
            },
            None => message,
        };
        self.metrics.dropped.inc();
        message.fail(format!("the edge to {} was closed", edge.to));
    }

    /// `send` for nodes that run on their own thread.
    pub fn blocking_send(&self, message: Message) {
        futures::executor::block_on(self.send(message))
    }

    /// The downstream edges, of every port.
    pub fn edges(&self) -> Vec<Arc<Edge>> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        routes.all.clone()
    }

    pub(crate) fn set_edges(&self, edges: Vec<Arc<Edge>>) {
        let mut grouped: Vec<(Option<String>, Vec<Arc<Edge>>)> = Vec::new();
        for edge in &edges {
            match grouped.iter_mut().find(|(port, _)| *port == edge.port) {
                Some((_, group)) => group.push(edge.clone()),
                None => grouped.push((edge.port.clone(), vec![edge.clone()])),
            }
        }
        let mut routes = Routes {
            all: edges,
            ..Routes::default()
        };
        for (port, group) in grouped {
            match port {
                None => routes.default = Some(Arc::from(group)),
                Some(port) => routes.named.push((port, Arc::from(group))),
            }
        }
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{Ack, AckStatus};
    use crate::message::{Metadata, Payload};
    use crate::metrics::Metrics;
    use bytes::Bytes;

    fn msg(n: u8) -> Message {
        Message::new(Payload::Bytes(Bytes::from(vec![n])), Metadata::new())
    }

    fn byte(m: &Message) -> u8 {
        match &m.payload {
            Payload::Bytes(b) => b[0],
            Payload::Typed(_) => 255,
        }
    }

    fn wire(metrics: &Metrics, capacity: usize, overflow: Overflow) -> (Output, Input, Arc<Edge>) {
        let inbox = Inbox::new("b", metrics.node("b"));
        let edge = inbox.connect("a", None, capacity, overflow);
        let output = Output::new(metrics.node("a"));
        output.set_edges(vec![edge.clone()]);
        let input = Input::new(inbox, CancellationToken::new(), metrics.node("b"));
        (output, input, edge)
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest_and_counts() {
        let metrics = Metrics::new();
        let (output, mut input, edge) = wire(&metrics, 2, Overflow::DropOldest);
        for n in 0..5 {
            output.send(msg(n)).await;
        }
        edge.close();
        let mut got = Vec::new();
        while let Some(m) = input.recv().await {
            got.push(byte(&m));
            m.ack();
        }
        assert_eq!(got, vec![3, 4]);
        assert_eq!(metrics.node("b").snapshot().dropped, 3);
        assert_eq!(metrics.node("b").snapshot().queue_depth, 0);
    }

    #[tokio::test]
    async fn block_applies_backpressure_without_loss() {
        let metrics = Metrics::new();
        let (output, mut input, edge) = wire(&metrics, 1, Overflow::Block);
        let sender = tokio::spawn(async move {
            for n in 0..100 {
                output.send(msg(n)).await;
            }
            edge.close();
        });
        let mut got = Vec::new();
        while let Some(m) = input.recv().await {
            got.push(byte(&m));
            m.ack();
        }
        sender.await.unwrap();
        assert_eq!(got, (0..100).collect::<Vec<u8>>());
        assert_eq!(metrics.node("b").snapshot().acked, 100);
    }

    #[tokio::test]
    async fn unconnected_output_fails_the_message() {
        let metrics = Metrics::new();
        let output = Output::new(metrics.node("a"));
        let (ack, rx) = Ack::tracked();
        output
            .send(Message::with_ack(
                Payload::Bytes(Bytes::new()),
                Metadata::new(),
                ack,
            ))
            .await;
        assert_eq!(rx.await.status, AckStatus::Failed);
        assert_eq!(metrics.node("a").snapshot().dropped, 1);
    }

    #[tokio::test]
    async fn discarding_an_edge_fails_what_it_held() {
        let metrics = Metrics::new();
        let (output, _input, edge) = wire(&metrics, 4, Overflow::Block);
        let (ack, rx) = Ack::tracked();
        output
            .send(Message::with_ack(
                Payload::Bytes(Bytes::new()),
                Metadata::new(),
                ack,
            ))
            .await;
        assert_eq!(edge.discard("its node was removed by a reload"), 1);
        let outcome = rx.await;
        assert_eq!(outcome.status, AckStatus::Failed);
        assert_eq!(
            outcome.reason.as_deref(),
            Some("its node was removed by a reload")
        );
    }

    #[tokio::test]
    async fn a_port_sends_only_to_its_edges_and_its_consumer_settles_the_ack() {
        let metrics = Metrics::new();
        let main = Inbox::new("b", metrics.node("b"));
        let dead = Inbox::new("c", metrics.node("c"));
        let main_edge = main.connect("a", None, 4, Overflow::Block);
        let dead_edge = dead.connect("a", Some("dead_letter"), 4, Overflow::Block);
        let output = Output::new(metrics.node("a"));
        output.set_edges(vec![main_edge.clone(), dead_edge.clone()]);
        assert!(output.is_connected(None));
        assert!(output.is_connected(Some("dead_letter")));
        assert!(!output.is_connected(Some("other")));

        let (ack, outcome) = Ack::tracked();
        let message = Message::with_ack(Payload::Bytes(Bytes::new()), Metadata::new(), ack);
        output.send_to("dead_letter", message).await;
        main_edge.close();
        dead_edge.close();
        let mut main = Input::new(main, CancellationToken::new(), metrics.node("b"));
        assert!(main.recv().await.is_none(), "nothing on the default output");
        let mut dead = Input::new(dead, CancellationToken::new(), metrics.node("c"));
        let letter = dead.recv().await.expect("the message on the port");
        letter.reject("kept aside");
        let outcome = outcome.await;
        assert_eq!(outcome.status, AckStatus::Rejected);
        assert_eq!(outcome.reason.as_deref(), Some("kept aside"));
    }

    #[tokio::test]
    async fn a_port_nobody_takes_fails_the_message_naming_it() {
        let metrics = Metrics::new();
        let output = Output::new(metrics.node("a"));
        let (ack, outcome) = Ack::tracked();
        let message = Message::with_ack(Payload::Bytes(Bytes::new()), Metadata::new(), ack);
        output.send_to("dead_letter", message).await;
        let outcome = outcome.await;
        assert_eq!(outcome.status, AckStatus::Failed);
        assert_eq!(
            outcome.reason.as_deref(),
            Some("no node is connected to output `dead_letter`")
        );
    }
}
