//! The third layer: the wiring between nodes. Every input names a node that
//! exists and, when it names a port, a port that node's type declares; no
//! input is listed twice; the graph has no cycle. Then [`super::kinds`].

use std::collections::HashMap;

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;

use super::{Parsed, Validator, Wiring};
use crate::diagnostic::closest;
use crate::plan::PlannedNode;
use crate::port::OutputRef;
use crate::spec::yaml::Pos;

/// The nodes' graph by their index in the wiring list, and those indices by id.
pub(super) struct Graph {
    pub edges: DiGraphMap<usize, ()>,
    pub by_id: HashMap<String, usize>,
}

impl Validator<'_> {
    /// Checks the edges: dangling inputs, unknown ports, cycles, payload
    /// kinds; then warnings about the shape. The planned nodes in
    /// topological order when all is well.
    pub(super) fn check_wiring(
        &mut self,
        parsed: Vec<Parsed>,
        wiring: &[Wiring],
        all_ids: &[&str],
    ) -> Option<Vec<PlannedNode>> {
        let by_id: HashMap<String, usize> = wiring
            .iter()
            .enumerate()
            .map(|(i, w)| (w.id.clone(), i))
            .collect();
        let mut graph = Graph {
            edges: DiGraphMap::new(),
            by_id,
        };
        for i in 0..wiring.len() {
            graph.edges.add_node(i);
        }
        let mut wiring_ok = true;
        for (i, w) in wiring.iter().enumerate() {
            let mut seen: Vec<&OutputRef> = Vec::new();
            for (from, pos) in &w.inputs {
                if seen.contains(&from) {
                    self.error(
                        *pos,
                        format!("node `{}` lists input `{from}` twice", w.id),
                        None,
                    );
                    wiring_ok = false;
                    continue;
                }
                seen.push(from);
                match self.link(&graph, wiring, all_ids, w, from, *pos) {
                    Some(j) => {
                        graph.edges.add_edge(j, i, ());
                    }
                    None => wiring_ok = false,
                }
            }
        }
        let cyclic = self.report_cycles(&graph.edges, wiring);
        // Payload kinds can only be checked once every node is understood;
        // then `parsed` and `wiring` list the same nodes in the same order.
        let complete = parsed.len() == all_ids.len()
            && parsed.iter().zip(wiring).all(|(p, w)| p.node.id == w.id);
        if !complete || cyclic || !wiring_ok {
            return None;
        }
        self.check_kinds(parsed, &graph)
    }

    /// The index of the node input `from` of node `w` reads, when it exists
    /// and declares the port named; else reports why not (unless the node's
    /// own error already says it).
    fn link(
        &mut self,
        graph: &Graph,
        wiring: &[Wiring],
        all_ids: &[&str],
        w: &Wiring,
        from: &OutputRef,
        pos: Pos,
    ) -> Option<usize> {
        let Some(&j) = graph.by_id.get(&from.node) else {
            // A node whose type is unknown: its own error says so.
            if !all_ids.contains(&from.node.as_str()) {
                self.missing_node(w, all_ids, from, pos);
            }
            return None;
        };
        let upstream = &wiring[j];
        let Some(port) = from.port() else {
            return Some(j);
        };
        if upstream.ports.iter().any(|p| p.name == port) {
            return Some(j);
        }
        let names: Vec<&str> = upstream.ports.iter().map(|p| p.name).collect();
        let declared = if names.is_empty() {
            "it has only its default output".to_owned()
        } else {
            format!("it has: {}", names.join(", "))
        };
        let hint = match closest(port, names.iter().copied()) {
            Some(best) => format!(
                "did you mean `{}.{best}`? does node `{}` declare output `{port}`? {declared}",
                from.node, from.node
            ),
            None => format!(
                "does node `{}` declare output `{port}`? {declared} (`flowrun nodes {}` lists its outputs)",
                from.node, upstream.type_name
            ),
        };
        self.error(
            pos,
            format!(
                "node `{}` takes input from `{from}`, but node `{}` ({}) has no output `{port}`",
                w.id, from.node, upstream.type_name
            ),
            hint,
        );
        None
    }

    fn missing_node(&mut self, w: &Wiring, all_ids: &[&str], from: &OutputRef, pos: Pos) {
        let node = from.node.as_str();
        let others = all_ids.iter().copied().filter(|other| *other != w.id);
        let hint = match closest(node, others) {
            Some(best) => format!("did you mean `{best}`? does node `{node}` exist?"),
            None => format!(
                "does node `{node}` exist? nodes are: {}",
                all_ids.join(", ")
            ),
        };
        self.error(
            pos,
            format!(
                "node `{}` takes input from `{from}`, which is not a node",
                w.id
            ),
            hint,
        );
    }

    /// Reports each cycle, naming its nodes in file order; whether there was one.
    fn report_cycles(&mut self, graph: &DiGraphMap<usize, ()>, wiring: &[Wiring]) -> bool {
        let mut cyclic = false;
        for component in tarjan_scc(graph) {
            let self_loop = component.len() == 1 && graph.contains_edge(component[0], component[0]);
            if component.len() > 1 || self_loop {
                cyclic = true;
                let mut members: Vec<&Wiring> = component.iter().map(|&i| &wiring[i]).collect();
                members.sort_by_key(|w| w.id_pos);
                let names: Vec<String> = members.iter().map(|w| format!("`{}`", w.id)).collect();
                let mut path = names.clone();
                path.push(names[0].clone());
                self.error(
                    members[0].id_pos,
                    format!("the graph has a cycle: {}", path.join(" → ")),
                    "messages would loop forever; remove one of these inputs".to_owned(),
                );
            }
        }
        cyclic
    }
}
