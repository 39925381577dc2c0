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
    /// What of this node is down, and why: a broker link, the node itself
    /// while it restarts after a failure. Empty when all is well.
    down: Mutex<BTreeMap<String, String>>,
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

    /// Marks `part` of the node (a broker link, the node's run) as down,
    /// saying why: `/healthz` answers 503 and names it until [`Self::set_up`].
    pub fn set_down(&self, part: &str, why: impl Into<String>) {
        if let Ok(mut down) = self.down.lock() {
            down.insert(part.to_owned(), why.into());
        }
    }

    /// Marks `part` as working again (or gone).
    pub fn set_up(&self, part: &str) {
        if let Ok(mut down) = self.down.lock() {
            down.remove(part);
        }
    }

    /// Why the node is down, one reason per part that is; empty when up.
    pub fn down(&self) -> Vec<String> {
        self.down
            .lock()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default()
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
                    down: Mutex::default(),
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
        let snapshot = self.snapshot();
        let states: Vec<String> = snapshot
            .iter()
            .filter(|(_, (_, state))| !state.is_empty())
            .map(|(id, (_, state))| {
                format!(
                    "flowrun_node_state_info{{node=\"{}\",state=\"{}\"}} 1\n",
                    escape_label(id),
                    escape_label(state)
                )
            })
            .collect();
        let down = self.down();
        let up: Vec<String> = snapshot
            .keys()
            .map(|id| {
                let up = u8::from(!down.iter().any(|(node, _)| node == id));
                format!("flowrun_node_up{{node=\"{}\"}} {up}\n", escape_label(id))
            })
            .collect();
        if !up.is_empty() {
            let info = format!(
                "# HELP flowrun_node_state The state a node reports of itself.\n# TYPE flowrun_node_state info\n{}\
                 # HELP flowrun_node_up 1 while every part of the node works (its broker links, its run), else 0.\n# TYPE flowrun_node_up gauge\n{}",
                states.concat(),
                up.concat()
            );
            // Before OpenMetrics' closing `# EOF`, which must stay last.
            match out.rfind("# EOF") {
                Some(at) => out.insert_str(at, &info),
                None => out.push_str(&info),
            }
        }
        out
    }

    /// Every node that is down, with why: `(node, reason)`, one per part down.
    pub fn down(&self) -> Vec<(String, String)> {
        let nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        nodes
            .iter()
            .flat_map(|(id, m)| m.down().into_iter().map(move |why| (id.clone(), why)))
            .collect()
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
        let health = self.clone();
        let app = axum::Router::new()
            .route(
                "/metrics",
                get(move |headers: axum::http::HeaderMap| {
                    let body = metrics.render();
                    async move { exposition(&headers, body) }
                }),
            )
            .route("/healthz", get(move || async move { health.health() }));
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

impl Metrics {
    /// `/healthz`: 200 `ok` while every node is up; 503 naming each node
    /// down and why (a broker link lost, a node restarting after a failure).
    fn health(&self) -> (axum::http::StatusCode, String) {
        let down = self.down();
        if down.is_empty() {
            return (axum::http::StatusCode::OK, "ok\n".to_owned());
        }
        let lines: Vec<String> = down
            .iter()
            .map(|(node, why)| format!("down: {node}: {why}\n"))
            .collect();
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, lines.concat())
    }
}

/// What `/metrics` serves: OpenMetrics to a client that asks for it in
/// `Accept` (Prometheus does, first), else the Prometheus text format 0.0.4
/// that its `Content-Type` then declares — each body in its own format.
fn exposition(
    headers: &axum::http::HeaderMap,
    openmetrics: String,
) -> ([(&'static str, &'static str); 1], String) {
    let wants_openmetrics = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            openmetrics,
        )
    } else {
        (
            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            prometheus_text(&openmetrics),
        )
    }
}

/// OpenMetrics text as Prometheus text 0.0.4: a counter family is named
/// as its samples are (`x_total`), an info family becomes a gauge named
/// `x_info`, and `# UNIT` and `# EOF` go.
fn prometheus_text(openmetrics: &str) -> String {
    let mut suffix: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            match rest.split_once(' ') {
                Some((name, "counter")) => suffix.insert(name, ("_total", "counter")),
                Some((name, "info")) => suffix.insert(name, ("_info", "gauge")),
                _ => None,
            };
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| Some((p, line.strip_prefix(p)?)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                match suffix.get(name) {
                    Some((end, kind)) if prefix == "# TYPE " => {
                        out.push_str(&format!("# TYPE {name}{end} {kind}\n"))
                    }
                    Some((end, _)) => out.push_str(&format!("{prefix}{name}{end} {tail}\n")),
                    None => out.push_str(&format!("{line}\n")),
                }
            }
            None => out.push_str(&format!("{line}\n")),
        }
    }
    out
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
                "flowrun_node_state_info{node=\"store\",state=\"subscribed \\\"a\\\"/# (qos 1)\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("flowrun_node_up{node=\"store\"} 1\n"),
            "{text}"
        );
        node.set_down("link", "disconnected");
        assert!(metrics
            .render()
            .contains("flowrun_node_up{node=\"store\"} 0\n"));
        assert_eq!(
            metrics.down(),
            [("store".to_owned(), "disconnected".to_owned())]
        );
        node.set_up("link");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let prometheus = prometheus_text(&text);
        assert!(
            prometheus.contains("# TYPE flowrun_node_received_total counter\n"),
            "{prometheus}"
        );
        assert!(
            prometheus.contains("# TYPE flowrun_node_state_info gauge\n"),
            "{prometheus}"
        );
        assert!(!prometheus.contains("# EOF"));
        node.set_state("connected");
        assert_eq!(metrics.status_line(), "store in=1 ack=1 [connected]");
        metrics.remove("store");
        assert!(!metrics.render().contains("store"));
    }
}
