//! What a reload changes: nodes added, removed, reconfigured or rewired.
//!
//! Nodes are matched by id. A node whose type, config or failure policy
//! changed is restarted; one whose inputs alone changed keeps running and
//! only has its edges rewired; everything else is left alone.

use crate::plan::Plan;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PlanDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Restarted with the new config, each with a short description of what changed.
    pub changed: Vec<(String, String)>,
    /// Same config, different inputs.
    pub rewired: Vec<String>,
    pub unchanged: usize,
}

impl PlanDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.rewired.is_empty()
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
                format!("type {}→{}", before.node_type.name, node.node_type.name),
            )),
            Some(before)
                if before.config != node.config || before.on_failure != node.on_failure =>
            {
                let mut what = describe(&before.config, &node.config);
                if before.on_failure != node.on_failure {
                    what.push(
                        format!("on_failure {:?}→{:?}", before.on_failure, node.on_failure)
                            .to_lowercase(),
                    );
                }
                d.changed.push((node.id.clone(), what.join(", ")));
            }
            Some(before) if before.inputs != node.inputs => d.rewired.push(node.id.clone()),
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

/// `qos 0→1`-style notes for the top-level config keys that differ. Values
/// of keys that look secret are not shown.
fn describe(old: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let old = old.as_object().unwrap_or(&empty);
    let new = new.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            if is_secret(k) {
                format!("{k} changed")
            } else {
                format!("{k} {}→{}", short(old.get(k)), short(new.get(k)))
            }
        })
        .collect()
}

/// Whether a config key names a credential, whose value must not be printed.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "credential", "access_key"]
        .iter()
        .any(|word| key.contains(word))
}

fn short(value: Option<&serde_json::Value>) -> String {
    let text = match value {
        None => "(unset)".to_owned(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(39).collect::<String>())
    } else {
        text
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
            vec!["password changed", "qos 0→1", "retain (unset)→true"]
        );
    }
}
