//! A validated spec: the only thing the engine runs. It can only be made by
//! [`crate::validate`], so a `Plan` in hand means every node type exists,
//! every config parsed, every input names a node of a fitting kind, and the
//! graph has no cycle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::catalogue::{BuiltConfig, NodeType};
use crate::edge::Overflow;
use crate::message::PayloadKind;
use crate::port::OutputRef;
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
    /// What each of its named ports sends, resolved the same way.
    pub port_kinds: BTreeMap<String, Option<PayloadKind>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedInput {
    /// The id of the node that feeds it.
    pub from: String,
    /// Which output of that node: `None` for its default one.
    pub port: Option<String>,
    pub capacity: usize,
    pub overflow: Overflow,
}

impl PlannedInput {
    /// The output it reads, as the spec writes it: `store.dead_letter`.
    pub fn source(&self) -> OutputRef {
        OutputRef {
            node: self.from.clone(),
            port: self.port.clone(),
        }
    }
}

impl PlannedNode {
    pub fn is_source(&self) -> bool {
        self.node_type.is_source()
    }

    /// What output `port` sends (`None`: the default one).
    pub fn kind_of(&self, port: Option<&str>) -> Option<PayloadKind> {
        match port {
            None => self.output_kind,
            Some(name) => self.port_kinds.get(name).copied().flatten(),
        }
    }
}

impl Plan {
    pub fn node(&self, id: &str) -> Option<&PlannedNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The graph as a Mermaid flowchart ([`crate::graph`]).
    pub fn to_mermaid(&self) -> String {
        crate::graph::mermaid(std::slice::from_ref(self))
    }

    /// The graph in Graphviz's dot language ([`crate::graph`]).
    pub fn to_dot(&self) -> String {
        crate::graph::dot(std::slice::from_ref(self))
    }
}
