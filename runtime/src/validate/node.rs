//! The second layer: each node on its own — its id, its type, the engine's
//! keys (`inputs` in [`super::inputs`], `on_failure`) and its config, which
//! its type parses and checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{missing_field, path_text, Parsed, Validator, Wiring};
use crate::catalogue::{BuiltConfig, ConfigIssue, NodeType, OutputKind};
use crate::diagnostic::closest;
use crate::diagnostic::suggest;
use crate::plan::PlannedNode;
use crate::port::is_valid_id;
use crate::spec::yaml::Node;
use crate::spec::{OnFailure, ENGINE_KEYS};

impl Validator<'_> {
    /// Checks one node on its own: id, type, engine keys and config. Its
    /// wiring is recorded in `wiring` even when the rest has errors.
    pub(super) fn check_node(
        &mut self,
        key: &Node,
        body: &Node,
        wiring: &mut Vec<Wiring>,
    ) -> Option<Parsed> {
        let id = key.as_str().unwrap_or_default().to_owned();
        if !is_valid_id(&id) {
            self.error(
                key.pos,
                format!("invalid node id `{id}`"),
                "use letters, digits, `_` and `-`, starting with a letter".to_owned(),
            );
        }
        let node_type = self.node_type(&id, key, body)?;
        let before = self.diagnostics.len();
        let (inputs, input_pos, explicit_queue) = self.check_inputs(&id, body, &node_type);
        wiring.push(Wiring {
            id: id.clone(),
            id_pos: key.pos,
            type_name: node_type.name,
            ports: node_type.ports,
            inputs: inputs
                .iter()
                .map(|i| i.source())
                .zip(input_pos.iter().copied())
                .collect(),
        });
        let on_failure = self.on_failure(body);
        // Bad engine keys do not stop the config checks below, but the node
        // is then left out of the wiring checks, so a bad input does not also
        // show up as "no inputs" or "no path to a sink".
        let engine_keys_ok = self.diagnostics.len() == before;
        let (config, built) = self.config(&id, key, body, &node_type)?;
        if !self.config_issues(&id, body, built.as_ref()) || !engine_keys_ok {
            return None;
        }
        let output_kind = match node_type.output {
            OutputKind::Kind(kind) => Some(kind),
            _ => None,
        };
        let port_kinds = node_type
            .ports
            .iter()
            .map(|port| match port.kind {
                OutputKind::Kind(kind) => (port.name.to_owned(), Some(kind)),
                _ => (port.name.to_owned(), None),
            })
            .collect::<BTreeMap<_, _>>();
        Some(Parsed {
            node: PlannedNode {
                id,
                node_type,
                config,
                built,
                inputs,
                on_failure,
                output_kind,
                port_kinds,
            },
            input_pos,
            explicit_queue,
            id_pos: key.pos,
        })
    }

    /// The node's type, when its body is a mapping naming a known one.
    fn node_type(&mut self, id: &str, key: &Node, body: &Node) -> Option<NodeType> {
        if body.as_map().is_none() {
            self.error(
                body.pos,
                format!(
                    "node `{id}` must be a mapping with a `type`, found {}",
                    body.kind()
                ),
                None,
            );
            return None;
        }
        let Some(type_node) = body.get("type") else {
            self.error(
                key.pos,
                format!("node `{id}` has no `type`"),
                format!("add `type:` with one of: {}", self.type_list()),
            );
            return None;
        };
        let type_name = type_node.as_str().unwrap_or_default();
        if let Some(node_type) = self.catalogue.get(type_name) {
            return Some(node_type.clone());
        }
        if let Some(why) = self.catalogue.why_left_out(type_name) {
            self.error(
                type_node.pos,
                format!("node type `{type_name}` is not in this build of flowrun"),
                why.to_owned(),
            );
            return None;
        }
        let names: Vec<&str> = self.catalogue.names().collect();
        let hint = suggest(type_name, names, "known types are");
        self.error(
            type_node.pos,
            format!("unknown node type `{type_name}`"),
            format!("{hint} (`flowrun nodes` lists them)"),
        );
        None
    }

    fn on_failure(&mut self, body: &Node) -> OnFailure {
        let Some(n) = body.get("on_failure") else {
            return OnFailure::default();
        };
        serde_json::from_value::<OnFailure>(n.to_json()).unwrap_or_else(|_| {
            self.error(
                n.pos,
                format!(
                    "`on_failure` must be `restart` or `stop`, found `{}`",
                    n.as_str().unwrap_or("…")
                ),
                None,
            );
            OnFailure::default()
        })
    }

    /// The node's own config: every key known to its type, parsed by it.
    fn config(
        &mut self,
        id: &str,
        key: &Node,
        body: &Node,
        node_type: &NodeType,
    ) -> Option<(serde_json::Value, Arc<dyn BuiltConfig>)> {
        let known = node_type.config_keys();
        let mut config = serde_json::Map::new();
        let mut ok = true;
        for (k, v) in body.as_map().unwrap_or_default() {
            let name = k.as_str().unwrap_or_default();
            if ENGINE_KEYS.contains(&name) {
                continue;
            }
            if !known.iter().any(|key| key == name) {
                let candidates = known.iter().map(String::as_str).chain(ENGINE_KEYS);
                let hint = match closest(name, candidates) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None if known.is_empty() => format!("`{}` takes no config", node_type.name),
                    None => format!("`{}` takes: {}", node_type.name, known.join(", ")),
                };
                self.error(
                    k.pos,
                    format!("unknown key `{name}` for node type `{}`", node_type.name),
                    hint,
                );
                ok = false;
                continue;
            }
            config.insert(name.to_owned(), v.to_json());
        }
        if !ok {
            return None;
        }
        let config = serde_json::Value::Object(config);
        match node_type.parse(config.clone()) {
            Ok(built) => Some((config, built)),
            Err(e) => {
                let field = path_text(&e.path);
                let message = if field.is_empty() {
                    format!("node `{id}` ({}): {}", node_type.name, e.message)
                } else {
                    format!("`{field}` of node `{id}`: {}", e.message)
                };
                let missing = missing_field(&e.message);
                let hint = match missing {
                    Some(f) => format!("add `{f}:` to node `{id}`"),
                    None => format!("`flowrun nodes {}` describes every key", node_type.name),
                };
                let pos = match missing {
                    Some(_) => key.pos,
                    None => body.locate(&e.path).pos,
                };
                self.error(pos, message, hint);
                None
            }
        }
    }

    /// Reports what the type's own checks and the environment say about a
    /// parsed config; whether it may run.
    fn config_issues(&mut self, id: &str, body: &Node, built: &dyn BuiltConfig) -> bool {
        let mut issues = built.check();
        for var in built.environment() {
            if self.node_env && var.required && (self.env)(&var.name).is_none_or(|v| v.is_empty()) {
                issues.push(
                    ConfigIssue::new(
                        var.field,
                        format!(
                            "reads {} from the environment variable `{}`, which is not set",
                            var.what, var.name
                        ),
                    )
                    .hint(format!(
                        "export {} before running flowrun (secrets never go in the spec)",
                        var.name
                    )),
                );
            }
        }
        let mut ok = true;
        for issue in issues {
            let pos = body.locate(&issue.path()).pos;
            let message = format!("`{}` of node `{id}`: {}", issue.field, issue.message);
            if issue.warning {
                self.warning(pos, message, issue.hint);
            } else {
                ok = false;
                self.error(pos, message, issue.hint);
            }
        }
        ok
    }
}
