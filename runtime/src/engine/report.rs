//! What the engine tells its caller: how a run ended, what a reload did.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;

use crate::diff::PlanDiff;

/// How a whole run ended.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    /// Nodes that failed, with the last error of each ([`NodeFailure`] as
    /// text: a report is cloned and compared, a boxed node error cannot be).
    pub failures: BTreeMap<String, String>,
    /// Nodes still running at the drain deadline, which were aborted.
    pub cut_short: Vec<String>,
}

impl RunReport {
    pub fn is_success(&self) -> bool {
        self.failures.is_empty() && self.cut_short.is_empty()
    }
}

/// What a reload did.
#[derive(Debug, Clone, Default)]
pub struct ReloadReport {
    pub diff: PlanDiff,
    pub took: Duration,
    /// Nodes that did not stop within the drain deadline and were aborted.
    pub cut_short: Vec<String>,
    /// Messages failed because they were queued for a removed node.
    pub failed_messages: usize,
    /// The nodes the reload started, and whether each says its config took
    /// effect yet ([`ReloadReport::ready`]).
    pub starting: Vec<(String, watch::Receiver<bool>)>,
}

impl ReloadReport {
    /// The headline: `+1 −0 ~1, rewired out, 5 unchanged`. What changed in
    /// each node is in [`ReloadReport::details`].
    pub fn summary(&self) -> String {
        let d = &self.diff;
        let mut s = format!(
            "+{} −{} ~{}",
            d.added.len(),
            d.removed.len(),
            d.changed.len()
        );
        if !d.rewired.is_empty() {
            let ids: Vec<&str> = d.rewired.iter().map(|(id, _)| id.as_str()).collect();
            s.push_str(&format!(", rewired {}", ids.join(", ")));
        }
        s.push_str(&format!(", {} unchanged", d.unchanged));
        if !self.cut_short.is_empty() {
            s.push_str(&format!(
                "; cut short at the deadline: {}",
                self.cut_short.join(", ")
            ));
        }
        if self.failed_messages > 0 {
            s.push_str(&format!(
                "; {} queued messages failed back to their sources",
                self.failed_messages
            ));
        }
        s
    }

    /// Waits, at most `limit`, until every node the reload started says its
    /// config took effect (an MQTT subscriber: the broker confirmed the
    /// edited subscriptions); returns those that did not.
    pub async fn ready(&mut self, limit: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut late = Vec::new();
        for (id, ready) in &mut self.starting {
            let waited = tokio::time::timeout_at(deadline, ready.wait_for(|r| *r)).await;
            if !matches!(waited, Ok(Ok(_))) {
                late.push(id.clone());
            }
        }
        late
    }

    /// One line per node added, removed or changed: `~ faces: topics[0].qos 1 → 2`.
    pub fn details(&self) -> Vec<String> {
        self.diff.lines()
    }
}
