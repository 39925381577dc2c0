//! The last layer: payload kinds along every edge, per output port, in
//! topological order (a pass-through gives what it was given); the queue
//! defaults that depend on what feeds an input; then warnings about the
//! shape of the graph (nodes with no path to a sink, sinks fed by nothing).

use std::collections::HashMap;

use petgraph::graphmap::DiGraphMap;
use petgraph::visit::{Dfs, Reversed};

use super::wiring::Graph;
use super::{Parsed, Validator};
use crate::catalogue::OutputKind;
use crate::message::PayloadKind;
use crate::plan::{PlannedInput, PlannedNode};
use crate::spec::yaml::Pos;

impl Validator<'_> {
    /// Plans the nodes in topological order, checking that each input takes
    /// the kind its upstream port sends.
    pub(super) fn check_kinds(
        &mut self,
        parsed: Vec<Parsed>,
        graph: &Graph,
    ) -> Option<Vec<PlannedNode>> {
        let order = petgraph::algo::toposort(&graph.edges, None).ok()?;
        let mut slots: Vec<Option<Parsed>> = parsed.into_iter().map(Some).collect();
        let mut planned: Vec<PlannedNode> = Vec::new();
        // Where each planned node is in `planned`, by id.
        let mut done: HashMap<String, usize> = HashMap::new();
        let mut kinds_ok = true;
        let mut positions = HashMap::new();
        for i in order {
            let Some(p) = slots[i].take() else { continue };
            let mut node = p.node;
            let upstream = |input: &PlannedInput| done.get(&input.from).map(|&j| &planned[j]);
            queue_defaults(&mut node.inputs, &p.explicit_queue, upstream);
            let mut incoming = None;
            for (input, pos) in node.inputs.iter().zip(&p.input_pos) {
                let from = upstream(input);
                match self.input_kind(&node, input, from, *pos) {
                    Some(kind) => {
                        incoming.get_or_insert(kind);
                    }
                    None => kinds_ok = false,
                }
            }
            if node.node_type.output == OutputKind::SameAsInput {
                node.output_kind = incoming;
            }
            for port in node.node_type.ports {
                if port.kind == OutputKind::SameAsInput {
                    node.port_kinds.insert(port.name.to_owned(), incoming);
                }
            }
            positions.insert(node.id.clone(), p.id_pos);
            done.insert(node.id.clone(), planned.len());
            planned.push(node);
        }
        if !kinds_ok {
            return None;
        }
        self.warn_about_shape(&planned, &graph.edges, &graph.by_id, &positions);
        Some(planned)
    }

    /// The kind `input` of `node` receives, when `node` takes it.
    fn input_kind(
        &mut self,
        node: &PlannedNode,
        input: &PlannedInput,
        from: Option<&PlannedNode>,
        pos: Pos,
    ) -> Option<PayloadKind> {
        let source = input.source();
        let Some(kind) = from.and_then(|n| n.kind_of(input.port.as_deref())) else {
            self.error(
                pos,
                format!(
                    "node `{}` takes input from `{source}`, a sink with no output",
                    node.id
                ),
                format!("is `{source}` the node you meant? sinks cannot feed other nodes"),
            );
            return None;
        };
        if !node.node_type.inputs.accepts(kind) {
            self.error(
                pos,
                format!(
                    "node `{}` ({}) cannot take {kind} from `{source}`: it takes {}",
                    node.id, node.node_type.name, node.node_type.inputs
                ),
                format!(
                    "does `{source}` give what `{}` needs? `flowrun nodes` shows each type's input and output",
                    node.id
                ),
            );
            return None;
        }
        Some(kind)
    }

    fn warn_about_shape(
        &mut self,
        planned: &[PlannedNode],
        graph: &DiGraphMap<usize, ()>,
        by_id: &HashMap<String, usize>,
        positions: &HashMap<String, Pos>,
    ) {
        let index_of = |id: &str| by_id.get(id).copied();
        let sinks: Vec<usize> = planned
            .iter()
            .filter(|n| n.node_type.is_sink())
            .filter_map(|n| index_of(&n.id))
            .collect();
        let mut reaches_sink = vec![false; by_id.len()];
        let reversed = Reversed(graph);
        for &sink in &sinks {
            let mut dfs = Dfs::new(reversed, sink);
            while let Some(n) = dfs.next(reversed) {
                reaches_sink[n] = true;
            }
        }
        for node in planned {
            let pos = positions.get(&node.id).copied().unwrap_or_default();
            let Some(i) = index_of(&node.id) else {
                continue;
            };
            if !node.node_type.is_sink() && !reaches_sink[i] {
                self.warning(
                    pos,
                    format!(
                        "node `{}` has no path to a sink: what it sends is dropped",
                        node.id
                    ),
                    format!(
                        "add a sink with `inputs: [{}]`, or remove the node",
                        node.id
                    ),
                );
            }
            if !node.node_type.is_source() && node.inputs.is_empty() {
                self.warning(
                    pos,
                    format!("node `{}` has no inputs: it will receive nothing", node.id),
                    "add `inputs:` naming the node that feeds it".to_owned(),
                );
            }
        }
    }
}

/// Queue settings an input left out come from what feeds it: the upstream
/// type's overflow policy, and the queue its payload kind asks for (a
/// decoded frame is megabytes; a deep queue of them is memory and latency,
/// not throughput).
fn queue_defaults<'p>(
    inputs: &mut [PlannedInput],
    explicit: &[super::ExplicitQueue],
    upstream: impl Fn(&PlannedInput) -> Option<&'p PlannedNode>,
) {
    for (input, (capacity, overflow)) in inputs.iter_mut().zip(explicit) {
        let Some(from) = upstream(input) else {
            continue;
        };
        if overflow.is_none() {
            input.overflow = from.node_type.output_overflow;
        }
        let kind = from.kind_of(input.port.as_deref());
        if let (None, Some(kind_capacity)) = (capacity, kind.and_then(PayloadKind::queue_capacity))
        {
            input.capacity = kind_capacity;
        }
    }
}
