//! What a reload changes: nodes added, removed, reconfigured or rewired.
//!
//! Nodes are matched by id. A node whose type, config or failure policy
//! changed is restarted; one whose inputs alone changed keeps running and
//! only has its edges rewired; everything else is left alone.

use crate::plan::{Plan, PlannedInput};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlanDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Restarted with the new config, each with what changed in it
    /// (`topics[0].qos 1 → 2`, one note per value).
    pub changed: Vec<(String, Vec<String>)>,
    /// Same config, different inputs: the id, and `inputs a → a, b`.
    pub rewired: Vec<(String, String)>,
    pub unchanged: usize,
}

impl PlanDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.rewired.is_empty()
    }

    /// One line per node added (`+ id`), removed (`− id`), changed (`~ id:
    /// what changed; …`) or rewired (`> id: inputs`).
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.added.iter().map(|id| format!("+ {id}")).collect();
        lines.extend(self.removed.iter().map(|id| format!("− {id}")));
        lines.extend(
            self.changed
                .iter()
                .map(|(id, what)| format!("~ {id}: {}", what.join("; "))),
        );
        lines.extend(
            self.rewired
                .iter()
                .map(|(id, how)| format!("~ {id}: {how}")),
        );
        lines
    }
}

/// Compares the running plan with a new one.
pub fn diff(old: &Plan, new: &Plan) -> PlanDiff {
    let mut d = PlanDiff::default();
    for node in &new.nodes {
        match old.node(&node.id) {
            None => d.added.push(node.id.clone()),
            Some(before) if before.node_type.name != node.node_type.name => d.changed.push((
                node.id.clone(),
                vec![format!(
                    "type {} → {}",
                    before.node_type.name, node.node_type.name
                )],
            )),
            Some(before)
                if before.config != node.config || before.on_failure != node.on_failure =>
            {
                let mut what = describe(&before.config, &node.config);
                if before.on_failure != node.on_failure {
                    what.push(
                        format!("on_failure {:?} → {:?}", before.on_failure, node.on_failure)
                            .to_lowercase(),
                    );
                }
                d.changed.push((node.id.clone(), what));
            }
            Some(before) if before.inputs != node.inputs => d.rewired.push((
                node.id.clone(),
                format!(
                    "inputs {} → {}",
                    inputs(&before.inputs, &node.inputs),
                    inputs(&node.inputs, &before.inputs)
                ),
            )),
            Some(_) => d.unchanged += 1,
        }
    }
    for node in &old.nodes {
        if new.node(&node.id).is_none() {
            d.removed.push(node.id.clone());
        }
    }
    d
}

/// `a, b`; with each queue's size and overflow when only those differ
/// from `other`.
fn inputs(these: &[PlannedInput], other: &[PlannedInput]) -> String {
    let same_names = these
        .iter()
        .map(PlannedInput::source)
        .eq(other.iter().map(PlannedInput::source));
    let names: Vec<String> = these
        .iter()
        .map(|i| {
            if same_names {
                let overflow = match i.overflow {
                    crate::edge::Overflow::Block => "block",
                    crate::edge::Overflow::DropOldest => "drop_oldest",
                };
                format!("{} (capacity {}, {overflow})", i.source(), i.capacity)
            } else {
                i.source().to_string()
            }
        })
        .collect();
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

/// `topics[0].qos 1 → 2`-style notes, one for each value that differs,
/// named by its full path in the node's config, with both values in full.
/// Values under keys that look secret are not shown.
pub fn describe(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let mut notes = Vec::new();
    changes(&mut String::new(), Some(old), Some(new), false, &mut notes);
    notes
}

fn changes(
    path: &mut String,
    old: Option<&serde_json::Value>,
    new: Option<&serde_json::Value>,
    secret: bool,
    notes: &mut Vec<String>,
) {
    use serde_json::Value;
    if old == new {
        return;
    }
    let len = path.len();
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                changes(
                    path,
                    a.get(key),
                    b.get(key),
                    secret || is_secret(key),
                    notes,
                );
                path.truncate(len);
            }
        }
        // Lists are compared item by item: `topics[1].filter a → b`.
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                path.push_str(&format!("[{i}]"));
                changes(path, a.get(i), b.get(i), secret, notes);
                path.truncate(len);
            }
        }
        _ if secret => notes.push(format!("{path} changed")),
        _ => notes.push(format!("{path} {} → {}", show(old), show(new))),
    }
}

/// Whether a config key names a credential, whose value must not be printed.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential", "access_key"]
        .iter()
        .any(|word| key.contains(word))
}

/// A value as written in a spec: text bare (quoted when empty or when it
/// has spaces at its ends), the rest as JSON.
fn show(value: Option<&serde_json::Value>) -> String {
    match value {
        None => "(unset)".to_owned(),
        Some(serde_json::Value::String(s)) if s.is_empty() || s.trim() != s => format!("{s:?}"),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_changed_keys_and_hides_secrets() {
        let notes = describe(
            &json!({"qos": 0, "password": "a", "topic": "x"}),
            &json!({"qos": 1, "password": "b", "topic": "x", "retain": true}),
        );
        assert_eq!(
            notes,
            vec!["password changed", "qos 0 → 1", "retain (unset) → true"]
        );
    }

    #[test]
    fn names_nested_keys_by_their_path_with_both_values_in_full() {
        let filter = "$share/cloud-fs/crops/with/a/long/path/that/goes/on/#";
        let notes = describe(
            &json!({"broker": {"url": "mqtt://a", "password": "x"}, "topics": [{"filter": filter, "qos": 1}]}),
            &json!({"broker": {"url": "mqtt://b", "password": "y"}, "topics": [{"filter": filter, "qos": 2}, {"filter": "b/#"}]}),
        );
        assert_eq!(
            notes,
            vec![
                "broker.password changed".to_owned(),
                "broker.url mqtt://a → mqtt://b".to_owned(),
                "topics[0].qos 1 → 2".to_owned(),
                r#"topics[1] (unset) → {"filter":"b/#"}"#.to_owned(),
            ]
        );
    }
}
