//! Per-node counters, the status line and the Prometheus endpoint.
//!
//! Counters live in a `prometheus-client` registry, labelled by node id, so
//! `/metrics` and the status line read the same numbers. A node's counters
//! survive its restarts and reloads: they belong to the node id, not to an
//! instance.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::ack::AckStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    node: String,
    event: String,
}

/// One node's counters. Cheap to clone handles; safe to update from any thread.
#[derive(Debug)]
pub struct NodeMetrics {
    pub received: Counter,
    pub sent: Counter,
    pub errors: Counter,
    pub dropped: Counter,
    pub acked: Counter,
    pub nacked: Counter,
    pub restarts: Counter,
    pub queue_depth: Gauge,
    /// A short word a node sets about its own state ("connected",
    /// "reconnecting", "end of file"), shown in the status line.
    state: Mutex<String>,
    id: String,
    events: Family<EventLabel, Counter>,
    event_names: Mutex<Vec<String>>,
}

impl NodeMetrics {
    pub(crate) fn count_settled(&self, status: AckStatus) {
        match status {
            AckStatus::Delivered => self.acked.inc(),
            AckStatus::Rejected | AckStatus::Failed => self.nacked.inc(),
        };
    }

    /// A counter of the node's own, e.g. `stored`, `retried`,
    /// `redelivered`: exported as `flowrun_node_events_total{node, event}`.
    /// Take it once and keep the handle; it is cheap to clone.
    pub fn event(&self, event: &str) -> Counter {
        if let Ok(mut names) = self.event_names.lock() {
            if !names.iter().any(|n| n == event) {
                names.push(event.to_owned());
            }
        }
        self.events
            .get_or_create(&EventLabel {
                node: self.id.clone(),
                event: event.to_owned(),
            })
            .clone()
    }

    fn event_names(&self) -> Vec<String> {
        self.event_names
            .lock()
            .map(|n| n.clone())
            .unwrap_or_default()
    }

    /// Sets the node's own state word, shown in the status line.
    pub fn set_state(&self, state: impl Into<String>) {
        if let Ok(mut slot) = self.state.lock() {
            *slot = state.into();
        }
    }

    pub fn state(&self) -> String {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A snapshot, for tests and the status line.
    pub fn snapshot(&self) -> Counts {
        Counts {
            received: self.received.get(),
            sent: self.sent.get(),
            errors: self.errors.get(),
            dropped: self.dropped.get(),
            acked: self.acked.get(),
            nacked: self.nacked.get(),
            restarts: self.restarts.get(),
            queue_depth: self.queue_depth.get(),
        }
    }
}

/// A copy of one node's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub received: u64,
    pub sent: u64,
    pub errors: u64,
    pub dropped: u64,
    pub acked: u64,
    pub nacked: u64,
    pub restarts: u64,
    pub queue_depth: i64,
}

struct Families {
    received: Family<NodeLabel, Counter>,
    sent: Family<NodeLabel, Counter>,
    errors: Family<NodeLabel, Counter>,
    dropped: Family<NodeLabel, Counter>,
    acked: Family<NodeLabel, Counter>,
    nacked: Family<NodeLabel, Counter>,
    restarts: Family<NodeLabel, Counter>,
    queue_depth: Family<NodeLabel, Gauge<i64, AtomicI64>>,
    events: Family<EventLabel, Counter>,
}

/// Every node's counters, by node id.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    families: Arc<Families>,
    nodes: Arc<Mutex<BTreeMap<String, Arc<NodeMetrics>>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Families {
    /// Every counter family with its name and help text.
    fn counters(&self) -> [(&'static str, &'static str, &Family<NodeLabel, Counter>); 7] {
        [
            (
                "received",
                "Messages a node took from its inputs",
                &self.received,
            ),
            ("sent", "Messages a node sent on its output", &self.sent),
            (
                "errors",
                "Errors a node reported (failed runs, failed messages)",
                &self.errors,
            ),
            (
                "dropped",
                "Messages dropped by an overflow policy or sent to no one",
                &self.dropped,
            ),
            (
                "acked",
                "Messages a node acknowledged as delivered",
                &self.acked,
            ),
            (
                "nacked",
                "Messages a node rejected, failed or dropped unacknowledged",
                &self.nacked,
            ),
            (
                "restarts",
                "Times a failed node was restarted",
                &self.restarts,
            ),
        ]
    }
}

impl Metrics {
    pub fn new() -> Self {
        let families = Families {
            received: Family::default(),
            sent: Family::default(),
            errors: Family::default(),
            dropped: Family::default(),
            acked: Family::default(),
            nacked: Family::default(),
            restarts: Family::default(),
            queue_depth: Family::default(),
            events: Family::default(),
        };
        let mut registry = Registry::with_prefix("flowrun_node");
        for (name, help, family) in families.counters() {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "queue_depth",
            "Messages waiting on a node's inputs",
            families.queue_depth.clone(),
        );
        registry.register(
            "events",
            "Events a node counts of its own (stored, retried, redelivered…)",
            families.events.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            families: Arc::new(families),
            nodes: Arc::default(),
        }
    }

    /// The counters of node `id`, created on first use.
    pub fn node(&self, id: &str) -> Arc<NodeMetrics> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .entry(id.to_owned())
            .or_insert_with(|| {
                let label = NodeLabel {
                    node: id.to_owned(),
                };
                let f = &self.families;
                Arc::new(NodeMetrics {
                    received: f.received.get_or_create(&label).clone(),
                    sent: f.sent.get_or_create(&label).clone(),
                    errors: f.errors.get_or_create(&label).clone(),
                    dropped: f.dropped.get_or_create(&label).clone(),
                    acked: f.acked.get_or_create(&label).clone(),
                    nacked: f.nacked.get_or_create(&label).clone(),
                    restarts: f.restarts.get_or_create(&label).clone(),
                    queue_depth: f.queue_depth.get_or_create(&label).clone(),
                    state: Mutex::new(String::new()),
                    id: id.to_owned(),
                    events: f.events.clone(),
                    event_names: Mutex::default(),
                })
            })
            .clone()
    }

    /// Forgets a node that a reload removed, so it leaves `/metrics`.
    pub fn remove(&self, id: &str) {
        let label = NodeLabel {
            node: id.to_owned(),
        };
        for (_, _, family) in self.families.counters() {
            family.remove(&label);
        }
        self.families.queue_depth.remove(&label);
        // Families cannot be filtered by one label: drop the node's events by
        // name, from the node's own record of them.
        if let Some(node) = self.nodes.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            for event in node.event_names() {
                self.families.events.remove(&EventLabel {
                    node: id.to_owned(),
                    event,
                });
            }
        }
        self.nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Every node's counters, by id.
    pub fn snapshot(&self) -> BTreeMap<String, (Counts, String)> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .iter()
            .map(|(id, m)| (id.clone(), (m.snapshot(), m.state())))
            .collect()
    }

    /// The Prometheus text exposition of every counter, and of each node's
    /// state word as `flowrun_node_state_info{node,state} 1` (what an MQTT
    /// subscriber holds, a link's last failure), for alerts and dashboards.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        let states: Vec<String> = self
            .snapshot()
            .into_iter()
            .filter(|(_, (_, state))| !state.is_empty())
            .map(|(id, (_, state))| {
                format!(
                    "flowrun_node_state_info{{node=\"{}\",state=\"{}\"}} 1\n",
                    escape_label(&id),
                    escape_label(&state)
                )
            })
            .collect();
        if !states.is_empty() {
            let info = format!(
                "# HELP flowrun_node_state The state a node reports of itself.\n# TYPE flowrun_node_state info\n{}",
                states.concat()
            );
            // Before OpenMetrics' closing `# EOF`, which must stay last.
            match out.rfind("# EOF") {
                Some(at) => out.insert_str(at, &info),
                None => out.push_str(&info),
            }
        }
        out
    }

    /// One compact line: each node's id with its non-zero counters.
    pub fn status_line(&self) -> String {
        let parts: Vec<String> = self
            .snapshot()
            .into_iter()
            .map(|(id, (c, state))| {
                let mut s = id;
                for (name, value) in [
                    ("in", c.received),
                    ("out", c.sent),
                    ("ack", c.acked),
                    ("nack", c.nacked),
                    ("drop", c.dropped),
                    ("err", c.errors),
                    ("restart", c.restarts),
                ] {
                    if value > 0 {
                        s.push_str(&format!(" {name}={value}"));
                    }
                }
                if c.queue_depth > 0 {
                    s.push_str(&format!(" q={}", c.queue_depth));
                }
                if !state.is_empty() {
                    s.push_str(&format!(" [{state}]"));
                }
                s
            })
            .collect();
        parts.join(" | ")
    }

    /// Serves `/metrics` (Prometheus text) and `/healthz` on `addr` until the
    /// returned task is dropped or aborted.
    pub async fn serve(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        use axum::routing::get;
        let metrics = self.clone();
        let app = axum::Router::new()
            .route(
                "/metrics",
                get(move || {
                    let body = metrics.render();
                    async move {
                        (
                            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                            body,
                        )
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok\n" }));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "metrics endpoint stopped");
            }
        });
        Ok((bound, task))
    }
}

/// A label value as the exposition formats quote it.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text_and_status() {
        let metrics = Metrics::new();
        let node = metrics.node("store");
        node.received.inc();
        node.count_settled(AckStatus::Delivered);
        node.set_state("connected");
        node.event("stored").inc();
        let text = metrics.render();
        assert!(
            text.contains("flowrun_node_received_total{node=\"store\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("flowrun_node_acked_total{node=\"store\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("flowrun_node_events_total{node=\"store\",event=\"stored\"} 1"),
            "{text}"
        );
        node.set_state("subscribed \"a\"/# (qos 1)");
        let text = metrics.render();
        assert!(
            text.contains(
                "flowrun_node_state_info{node=\"store\",state=\"subscribed \\\"a\\\"/# (qos 1)\"} 1\n# EOF"
            ),
            "{text}"
        );
        node.set_state("connected");
        assert_eq!(metrics.status_line(), "store in=1 ack=1 [connected]");
        metrics.remove("store");
        assert!(!metrics.render().contains("store"));
    }
}
