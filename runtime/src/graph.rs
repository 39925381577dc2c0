//! Drawing plans: `flowrun graph` as Mermaid or Graphviz dot.
//!
//! A pipeline here is mostly links between processes through brokers, so
//! besides the nodes and their edges (labelled with the payload kind, and
//! `drop oldest` where a queue drops), each system a node exchanges data
//! with ([`crate::NodeConfig::links`]: a broker with its topics and QoS, a
//! bucket) is drawn as a node of its own. Several specs drawn together
//! (`flowrun graph edge.yaml cloud.yaml`) each get a box, and meet at the
//! systems they share: the edge's bridge publishes to the broker the
//! cloud's subscriber reads.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::edge::Overflow;
use crate::plan::{Plan, PlannedInput};

/// The systems outside the plans, each with the id it is drawn under.
fn systems(plans: &[Plan]) -> BTreeMap<String, String> {
    let mut systems = BTreeMap::new();
    for plan in plans {
        for node in &plan.nodes {
            for link in node.built.links() {
                let next = format!("ext{}", systems.len());
                systems.entry(link.system).or_insert(next);
            }
        }
    }
    systems
}

/// The id a node is drawn under: prefixed by its spec's box when there
/// are several.
fn node_id(plans: &[Plan], index: usize, id: &str) -> String {
    let id = safe_id(id);
    if plans.len() == 1 {
        id
    } else {
        format!("s{index}_{id}")
    }
}

/// The label of an edge between two nodes: the output port when it is a
/// named one (`dead_letter: bytes`), the payload kind, and what happens
/// when its queue is full if that is not to wait.
fn edge_label(plan: &Plan, input: &PlannedInput) -> String {
    let port = input.port.as_deref();
    let kind = plan
        .node(&input.from)
        .and_then(|n| n.kind_of(port))
        .map(|k| k.to_string())
        .unwrap_or_default();
    let kind = match port {
        Some(port) => format!("{port}: {kind}"),
        None => kind,
    };
    match input.overflow {
        Overflow::Block => kind,
        Overflow::DropOldest => format!("{kind}, drop oldest"),
    }
}

/// An arrow of the drawing, between drawn ids.
struct Arrow {
    from: String,
    to: String,
    label: String,
    kind: ArrowKind,
}

enum ArrowKind {
    /// A queue between two nodes, by its overflow policy.
    Queue(Overflow),
    /// Data to or from a system outside the plans.
    Link,
}

/// Every arrow of the plans: their queues, then each node's links.
fn arrows(plans: &[Plan], systems: &BTreeMap<String, String>) -> Vec<Arrow> {
    let mut arrows = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        for node in &plan.nodes {
            let id = node_id(plans, index, &node.id);
            for input in &node.inputs {
                arrows.push(Arrow {
                    from: node_id(plans, index, &input.from),
                    to: id.clone(),
                    label: edge_label(plan, input),
                    kind: ArrowKind::Queue(input.overflow),
                });
            }
            for link in node.built.links() {
                let system = systems[&link.system].clone();
                let (from, to) = if link.inbound {
                    (system, id.clone())
                } else {
                    (id.clone(), system)
                };
                arrows.push(Arrow {
                    from,
                    to,
                    label: link.label,
                    kind: ArrowKind::Link,
                });
            }
        }
    }
    arrows
}

/// The plans as one Mermaid flowchart.
pub fn mermaid(plans: &[Plan]) -> String {
    let mut out = String::from("flowchart LR\n");
    let systems = systems(plans);
    for (system, id) in &systems {
        let _ = writeln!(out, "    {id}[(\"{}\")]", mermaid_text(system));
    }
    for (index, plan) in plans.iter().enumerate() {
        let indent = if plans.len() > 1 {
            let _ = writeln!(
                out,
                "    subgraph s{index}[\"{}\"]",
                mermaid_text(&plan.name)
            );
            "        "
        } else {
            "    "
        };
        for node in &plan.nodes {
            let (open, close) = match (node.node_type.is_source(), node.node_type.is_sink()) {
                (true, _) => ("([", "])"),
                (_, true) => ("[/", "/]"),
                _ => ("[", "]"),
            };
            let _ = writeln!(
                out,
                "{indent}{}{open}\"{}<br/><small>{}</small>\"{close}",
                node_id(plans, index, &node.id),
                mermaid_text(&node.id),
                node.node_type.name
            );
        }
        if plans.len() > 1 {
            out.push_str("    end\n");
        }
    }
    for arrow in arrows(plans, &systems) {
        let style = match arrow.kind {
            ArrowKind::Queue(Overflow::Block) => "-->",
            ArrowKind::Queue(Overflow::DropOldest) => "-.->",
            ArrowKind::Link => "==>",
        };
        let _ = writeln!(
            out,
            "    {} {style}|\"{}\"| {}",
            arrow.from,
            mermaid_text(&arrow.label),
            arrow.to
        );
    }
    out
}

/// The plans as one Graphviz digraph.
pub fn dot(plans: &[Plan]) -> String {
    let title = plans
        .iter()
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join(" + ");
    let mut out = format!("digraph \"{}\" {{\n    rankdir=LR;\n", escape(&title));
    let systems = systems(plans);
    for (system, id) in &systems {
        let _ = writeln!(
            out,
            "    \"{id}\" [shape=cylinder, style=filled, fillcolor=lightgrey, label=\"{}\"];",
            escape(system)
        );
    }
    for (index, plan) in plans.iter().enumerate() {
        let indent = if plans.len() > 1 {
            let _ = writeln!(
                out,
                "    subgraph \"cluster_s{index}\" {{\n        label=\"{}\";",
                escape(&plan.name)
            );
            "        "
        } else {
            "    "
        };
        for node in &plan.nodes {
            let shape = if node.node_type.is_source() {
                "invhouse"
            } else if node.node_type.is_sink() {
                "house"
            } else {
                "box"
            };
            let _ = writeln!(
                out,
                "{indent}\"{}\" [shape={shape}, label=\"{}\\n({})\"];",
                node_id(plans, index, &node.id),
                escape(&node.id),
                node.node_type.name
            );
        }
        if plans.len() > 1 {
            out.push_str("    }\n");
        }
    }
    for arrow in arrows(plans, &systems) {
        let style = match arrow.kind {
            ArrowKind::Queue(Overflow::Block) => "",
            ArrowKind::Queue(Overflow::DropOldest) => ", style=dashed",
            ArrowKind::Link => ", style=bold",
        };
        let _ = writeln!(
            out,
            "    \"{}\" -> \"{}\" [label=\"{}\"{style}];",
            arrow.from,
            arrow.to,
            escape(&arrow.label)
        );
    }
    out.push_str("}\n");
    out
}

fn safe_id(id: &str) -> String {
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

/// Text inside a quoted Mermaid label: `"` and `#` (which starts an entity
/// code there) as entity codes.
fn mermaid_text(text: &str) -> String {
    text.replace('#', "#35;").replace('"', "#quot;")
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
