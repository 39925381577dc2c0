//! The first layer: the YAML document — its syntax, its `${VAR}`s, its top
//! keys, `version`, `name` and the `nodes` mapping — then each node in turn
//! and the wiring between them.

use std::path::Path;

use super::Validator;
use crate::diagnostic::suggest;
use crate::plan::Plan;
use crate::spec::interpolate::{interpolate, InterpolationError};
use crate::spec::yaml::{self, Node};
use crate::spec::{TOP_KEYS, VERSION};

impl Validator<'_> {
    /// Every layer in turn; a plan when each could make sense of the spec.
    pub(super) fn run(&mut self, path: &Path, text: &str) -> Option<Plan> {
        let mut root = match yaml::parse(text) {
            Ok(root) => root,
            Err(e) => {
                self.error(e.pos, e.message, e.hint);
                return None;
            }
        };
        self.interpolate(&mut root);
        let Some(entries) = root.as_map() else {
            self.error(
                root.pos,
                format!("a spec must be a mapping, found {}", root.kind()),
                "start with `version: 1` and `nodes:`".to_owned(),
            );
            return None;
        };
        for (key, _) in entries {
            let name = key.as_str().unwrap_or_default();
            if !TOP_KEYS.contains(&name) {
                self.error(
                    key.pos,
                    format!("unknown top-level key `{name}`"),
                    suggest(name, TOP_KEYS, "valid keys are"),
                );
            }
        }
        self.check_version(&root);
        let name = self.spec_name(&root, path);
        let node_entries = self.node_entries(&root)?;
        let mut parsed = Vec::new();
        let mut wiring = Vec::new();
        for (key, body) in node_entries {
            if let Some(p) = self.check_node(key, body, &mut wiring) {
                parsed.push(p);
            }
        }
        let all_ids: Vec<&str> = node_entries
            .iter()
            .filter_map(|(k, _)| k.as_str())
            .collect();
        let nodes = self.check_wiring(parsed, &wiring, &all_ids)?;
        Some(Plan {
            name,
            file: path.to_path_buf(),
            nodes,
        })
    }

    /// Fills in `${VAR}`s, reporting each that cannot be, and remembers
    /// where they were so that their remains give no second error.
    fn interpolate(&mut self, root: &mut Node) {
        let errors = interpolate(root, self.env);
        for error in &errors {
            match error {
                InterpolationError::Missing(m) => self.error(
                    m.pos,
                    format!("environment variable `{}` is not set", m.name),
                    format!("export {0}=…, or give a default: ${{{0}:-value}}", m.name),
                ),
                InterpolationError::Malformed(b) => self.error(
                    b.pos,
                    format!("malformed variable reference `{}`", b.text),
                    "write ${NAME} or ${NAME:-default}; NAME is letters, digits and _, not starting with a digit; $${ is a literal ${".to_owned(),
                ),
            }
        }
        self.broken = errors
            .iter()
            .map(|error| match error {
                InterpolationError::Missing(m) => m.pos,
                InterpolationError::Malformed(b) => b.pos,
            })
            .collect();
    }

    fn check_version(&mut self, root: &Node) {
        match root.get("version") {
            None => self.error(
                root.pos,
                "the spec has no `version`",
                format!("add `version: {VERSION}` at the top"),
            ),
            // The found value is printed as JSON, so that the string "1"
            // does not read as the supported number 1.
            Some(v) if v.to_json() != serde_json::json!(VERSION) => self.error(
                v.pos,
                format!("unsupported spec version `{}`", v.to_json()),
                format!("this flowrun reads `version: {VERSION}` (a number)"),
            ),
            Some(_) => {}
        }
    }

    /// `name`, else the file's stem.
    fn spec_name(&mut self, root: &Node, path: &Path) -> String {
        match root.get("name") {
            Some(n) => match n.as_str() {
                Some(s) if !s.is_empty() && n.to_json().is_string() => s.to_owned(),
                _ => {
                    self.error(
                        n.pos,
                        format!("`name` must be a non-empty string, found {}", n.kind()),
                        None,
                    );
                    String::new()
                }
            },
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// The entries of `nodes:`, when it is a mapping with at least one.
    fn node_entries<'n>(&mut self, root: &'n Node) -> Option<&'n [(Node, Node)]> {
        let Some(nodes) = root.get("nodes") else {
            self.error(
                root.pos,
                "the spec has no `nodes:`",
                "add `nodes:` with at least one node".to_owned(),
            );
            return None;
        };
        let Some(entries) = nodes.as_map() else {
            self.error(
                nodes.pos,
                format!(
                    "`nodes` must be a mapping of node id to node, found {}",
                    nodes.kind()
                ),
                None,
            );
            return None;
        };
        if entries.is_empty() {
            self.error(
                nodes.pos,
                "the spec has no nodes",
                "add at least one node under `nodes:`".to_owned(),
            );
            return None;
        }
        Some(entries)
    }
}
