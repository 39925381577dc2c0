//! A validated spec: the only thing the engine runs. It can only be made by
//! [`crate::validate`], so a `Plan` in hand means every node type exists,
//! every config parsed, every input names a node of a fitting kind, and the
//! graph has no cycle.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use crate::catalogue::{BuiltConfig, NodeType};
use crate::edge::Overflow;
use crate::message::PayloadKind;
use crate::spec::OnFailure;

#[derive(Clone)]
pub struct Plan {
    pub name: String,
    /// The spec file it came from; relative paths in configs resolve against its directory.
    pub file: PathBuf,
    /// Nodes in topological order: every node after the nodes that feed it.
    pub nodes: Vec<PlannedNode>,
}

#[derive(Clone)]
pub struct PlannedNode {
    pub id: String,
    pub node_type: NodeType,
    /// The interpolated config, as JSON: what a reload compares.
    pub config: serde_json::Value,
    pub built: Arc<dyn BuiltConfig>,
    pub inputs: Vec<PlannedInput>,
    pub on_failure: OnFailure,
    /// What this node sends, once pass-through kinds are resolved.
    pub output_kind: Option<PayloadKind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedInput {
    pub from: String,
    pub capacity: usize,
    pub overflow: Overflow,
}

impl PlannedNode {
    pub fn is_source(&self) -> bool {
        self.node_type.is_source()
    }
}

impl Plan {
    pub fn node(&self, id: &str) -> Option<&PlannedNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The graph as a Mermaid flowchart, edges labelled with their payload kind.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for node in &self.nodes {
            let (open, close) = match (node.node_type.is_source(), node.node_type.is_sink()) {
                (true, _) => ("([", "])"),
                (_, true) => ("[(", ")]"),
                _ => ("[", "]"),
            };
            let _ = writeln!(
                out,
                "    {}{open}\"{}<br/><small>{}</small>\"{close}",
                mermaid_id(&node.id),
                node.id,
                node.node_type.name
            );
        }
        for node in &self.nodes {
            for input in &node.inputs {
                let kind = self.kind_of(&input.from);
                let style = if input.overflow == Overflow::DropOldest {
                    "-.->"
                } else {
                    "-->"
                };
                let _ = writeln!(
                    out,
                    "    {} {style}|{kind}| {}",
                    mermaid_id(&input.from),
                    mermaid_id(&node.id)
                );
            }
        }
        out
    }

    /// The graph in Graphviz's dot language.
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph \"{}\" {{\n    rankdir=LR;\n", escape(&self.name));
        for node in &self.nodes {
            let shape = if node.node_type.is_source() {
                "invhouse"
            } else if node.node_type.is_sink() {
                "cylinder"
            } else {
                "box"
            };
            let _ = writeln!(
                out,
                "    \"{}\" [shape={shape}, label=\"{}\\n({})\"];",
                escape(&node.id),
                escape(&node.id),
                node.node_type.name
            );
        }
        for node in &self.nodes {
            for input in &node.inputs {
                let style = if input.overflow == Overflow::DropOldest {
                    ", style=dashed"
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "    \"{}\" -> \"{}\" [label=\"{}\"{style}];",
                    escape(&input.from),
                    escape(&node.id),
                    self.kind_of(&input.from)
                );
            }
        }
        out.push_str("}\n");
        out
    }

    fn kind_of(&self, id: &str) -> String {
        self.node(id)
            .and_then(|n| n.output_kind)
            .map(|k| k.to_string())
            .unwrap_or_default()
    }
}

fn mermaid_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
