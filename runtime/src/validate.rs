//! From YAML text to a [`Plan`], collecting every problem on the way.
//!
//! The checks run in layers, as dora's do: the YAML itself, then each node
//! (its type, its engine keys, its config), then the wiring between nodes
//! (dangling inputs, cycles, payload kinds), then warnings about the shape of
//! the graph. Every layer reports all it finds; a later layer runs only on
//! what the earlier ones could make sense of, so one typo gives one error.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use petgraph::visit::{Dfs, Reversed};

use crate::catalogue::{Catalogue, ConfigIssue, NodeType, OutputKind};
use crate::diagnostic::{closest, suggest, Diagnostic};
use crate::edge::Overflow;
use crate::message::PayloadKind;
use crate::plan::{Plan, PlannedInput, PlannedNode};
use crate::spec::interpolate::{interpolate, InterpolationError};
use crate::spec::yaml::{self, Node, PathStep, Pos};
use crate::spec::{
    InputQueue, InputSpec, OnFailure, DEFAULT_CAPACITY, ENGINE_KEYS, TOP_KEYS, VERSION,
};

/// The result of checking a spec: a plan when there were no errors, and
/// every diagnostic (errors and warnings) in file order.
pub struct Checked {
    pub plan: Option<Plan>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

/// Reads and checks the spec at `path`, interpolating from the process environment.
pub fn load(path: &Path, catalogue: &Catalogue) -> Checked {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => validate(path, &text, catalogue, &|name| std::env::var(name).ok()),
        Err(error) => Checked {
            plan: None,
            diagnostics: vec![Diagnostic::error(
                &file,
                Pos { line: 1, column: 1 },
                format!("cannot read the spec: {error}"),
            )
            .hint("check the path and that the file is readable")],
        },
    }
}

/// Reads and checks the spec at `path` as [`load`] does, except that the
/// variables nodes read by themselves (S3 keys) need not be set: for
/// looking at a spec (`flowrun graph`, `flowrun diff`) on a machine that
/// does not run it.
pub fn load_shape(path: &Path, catalogue: &Catalogue) -> Checked {
    match std::fs::read_to_string(path) {
        Ok(text) => check(
            path,
            &text,
            catalogue,
            &|name| std::env::var(name).ok(),
            false,
        ),
        Err(_) => load(path, catalogue),
    }
}

/// Checks spec `text` (from `path`, for messages and relative paths).
pub fn validate(
    path: &Path,
    text: &str,
    catalogue: &Catalogue,
    env: &dyn Fn(&str) -> Option<String>,
) -> Checked {
    check(path, text, catalogue, env, true)
}

fn check(
    path: &Path,
    text: &str,
    catalogue: &Catalogue,
    env: &dyn Fn(&str) -> Option<String>,
    node_env: bool,
) -> Checked {
    let mut v = Validator {
        file: path.display().to_string(),
        catalogue,
        env,
        node_env,
        diagnostics: Vec::new(),
        broken: Vec::new(),
    };
    let plan = v.run(path, text, env);
    let mut diagnostics = v.diagnostics;
    diagnostics.sort();
    diagnostics.dedup();
    let plan = plan.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Checked { plan, diagnostics }
}

struct Validator<'a> {
    file: String,
    catalogue: &'a Catalogue,
    /// The environment the spec will run in: for `${VAR}`s, and for the
    /// variables nodes read by themselves.
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether the variables nodes read by themselves must be set.
    node_env: bool,
    diagnostics: Vec<Diagnostic>,
    /// Values whose `${...}` could not be filled in, already reported.
    broken: Vec<Pos>,
}

/// The queue settings an input gave itself (capacity, overflow); the rest
/// are filled in once the upstream node is known.
type ExplicitQueue = (Option<usize>, Option<Overflow>);

/// A node's inputs, known even when its config has errors, so that wiring
/// mistakes are reported in the same run.
struct Wiring {
    id: String,
    id_pos: Pos,
    inputs: Vec<(String, Pos)>,
}

/// A node that passed its own checks, before wiring is checked.
struct Parsed {
    node: PlannedNode,
    /// Positions of each input entry, for wiring errors.
    input_pos: Vec<Pos>,
    /// The overflow each input asked for; the others take the upstream
    /// type's default, known once wiring is checked.
    explicit_queue: Vec<ExplicitQueue>,
    id_pos: Pos,
}

impl Validator<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<Option<String>>) {
        // What is left of a value after a failed interpolation would only give
        // a second, misleading error (an input from ``, a type mismatch).
        if self.broken.contains(&pos) {
            return;
        }
        let d = Diagnostic::error(&self.file, pos, message).with_hint(hint.into());
        self.diagnostics.push(d);
    }

    fn warning(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<Option<String>>) {
        let d = Diagnostic::warning(&self.file, pos, message).with_hint(hint.into());
        self.diagnostics.push(d);
    }

    fn run(
        &mut self,
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Plan> {
        let mut root = match yaml::parse(text) {
            Ok(root) => root,
            Err(e) => {
                self.error(e.pos, e.message, e.hint);
                return None;
            }
        };
        let interpolation_errors = interpolate(&mut root, env);
        for error in &interpolation_errors {
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
        self.broken = interpolation_errors
            .iter()
            .map(|error| match error {
                InterpolationError::Missing(m) => m.pos,
                InterpolationError::Malformed(b) => b.pos,
            })
            .collect();
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
        let name = match root.get("name") {
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
        };
        let Some(nodes) = root.get("nodes") else {
            self.error(
                root.pos,
                "the spec has no `nodes:`",
                "add `nodes:` with at least one node".to_owned(),
            );
            return None;
        };
        let Some(node_entries) = nodes.as_map() else {
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
        if node_entries.is_empty() {
            self.error(
                nodes.pos,
                "the spec has no nodes",
                "add at least one node under `nodes:`".to_owned(),
            );
            return None;
        }
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

    /// Checks one node on its own: id, type, engine keys and config.
    fn check_node(&mut self, key: &Node, body: &Node, wiring: &mut Vec<Wiring>) -> Option<Parsed> {
        let id = key.as_str().unwrap_or_default().to_owned();
        if !is_valid_id(&id) {
            self.error(
                key.pos,
                format!("invalid node id `{id}`"),
                "use letters, digits, `_` and `-`, starting with a letter".to_owned(),
            );
        }
        let Some(entries) = body.as_map() else {
            self.error(
                body.pos,
                format!(
                    "node `{id}` must be a mapping with a `type`, found {}",
                    body.kind()
                ),
                None,
            );
            return None;
        };
        let Some(type_node) = body.get("type") else {
            self.error(
                key.pos,
                format!("node `{id}` has no `type`"),
                format!("add `type:` with one of: {}", self.type_list()),
            );
            return None;
        };
        let type_name = type_node.as_str().unwrap_or_default();
        let Some(node_type) = self.catalogue.get(type_name).cloned() else {
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
            return None;
        };
        let before = self.diagnostics.len();
        let (inputs, input_pos, explicit_queue) = self.check_inputs(&id, body, &node_type);
        wiring.push(Wiring {
            id: id.clone(),
            id_pos: key.pos,
            inputs: inputs
                .iter()
                .map(|i| i.from.clone())
                .zip(input_pos.iter().copied())
                .collect(),
        });
        let on_failure = match body.get("on_failure") {
            None => OnFailure::default(),
            Some(n) => match serde_json::from_value::<OnFailure>(n.to_json()) {
                Ok(p) => p,
                Err(_) => {
                    self.error(
                        n.pos,
                        format!(
                            "`on_failure` must be `restart` or `stop`, found `{}`",
                            n.as_str().unwrap_or("…")
                        ),
                        None,
                    );
                    OnFailure::default()
                }
            },
        };
        // Bad engine keys do not stop the config checks below, but the node
        // is then left out of the wiring checks, so a bad input does not also
        // show up as "no inputs" or "no path to a sink".
        let engine_keys_ok = self.diagnostics.len() == before;
        let mut ok = true;
        let known = node_type.config_keys();
        let mut config = serde_json::Map::new();
        for (k, v) in entries {
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
        let built = match node_type.parse(config.clone()) {
            Ok(built) => built,
            Err(e) => {
                let target = body.locate(&e.path);
                let field = path_text(&e.path);
                let message = if field.is_empty() {
                    format!("node `{id}` ({}): {}", node_type.name, e.message)
                } else {
                    format!("`{field}` of node `{id}`: {}", e.message)
                };
                let hint = missing_field(&e.message)
                    .map(|f| format!("add `{f}:` to node `{id}`"))
                    .or_else(|| {
                        Some(format!(
                            "`flowrun nodes {}` describes every key",
                            node_type.name
                        ))
                    });
                let pos = if missing_field(&e.message).is_some() {
                    key.pos
                } else {
                    target.pos
                };
                self.error(pos, message, hint);
                return None;
            }
        };
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
        let mut refused = false;
        for issue in issues {
            let pos = body.locate(&issue.path()).pos;
            let message = format!("`{}` of node `{id}`: {}", issue.field, issue.message);
            if issue.warning {
                self.warning(pos, message, issue.hint);
            } else {
                refused = true;
                self.error(pos, message, issue.hint);
            }
        }
        if refused {
            return None;
        }
        if !engine_keys_ok {
            return None;
        }
        let output_kind = match node_type.output {
            OutputKind::Kind(kind) => Some(kind),
            _ => None,
        };
        Some(Parsed {
            node: PlannedNode {
                id,
                node_type,
                config,
                built,
                inputs,
                on_failure,
                output_kind,
            },
            input_pos,
            explicit_queue,
            id_pos: key.pos,
        })
    }

    fn check_inputs(
        &mut self,
        id: &str,
        body: &Node,
        node_type: &NodeType,
    ) -> (Vec<PlannedInput>, Vec<Pos>, Vec<ExplicitQueue>) {
        let mut inputs = Vec::new();
        let mut positions = Vec::new();
        let mut overflows = Vec::new();
        let Some(list) = body.get("inputs") else {
            return (inputs, positions, overflows);
        };
        if node_type.is_source() {
            self.error(
                list.pos,
                format!(
                    "node `{id}` is a `{}`, a source: it takes no inputs",
                    node_type.name
                ),
                "remove `inputs:`".to_owned(),
            );
            return (inputs, positions, overflows);
        }
        let items: Vec<&Node> = match &list.value {
            yaml::Value::Seq(items) => items.iter().collect(),
            yaml::Value::Scalar { .. } => vec![list],
            yaml::Value::Map(_) => {
                self.error(
                    list.pos,
                    "`inputs` must be a list of node ids",
                    "write `inputs: [camera]` or `inputs: [{from: camera, capacity: 4}]`"
                        .to_owned(),
                );
                return (inputs, positions, overflows);
            }
        };
        for item in items {
            // A mapping is read as the queue form directly, so that a typo in
            // it gets serde's precise message at the offending key instead of
            // the untagged enum's "matched no variant".
            let parsed = match item.as_map() {
                Some(_) => serde_path_to_error::deserialize::<_, InputQueue>(item.to_json())
                    .map(InputSpec::WithQueue)
                    .map_err(|e| Some((e.path().to_string(), e.inner().to_string()))),
                None => serde_json::from_value::<InputSpec>(item.to_json()).map_err(|_| None),
            };
            match parsed {
                Ok(spec) => {
                    let (capacity, overflow) = match &spec {
                        InputSpec::Node(_) => (None, None),
                        InputSpec::WithQueue(q) => (q.capacity, q.overflow),
                    };
                    if capacity == Some(0) {
                        self.error(item.get("capacity").map_or(item.pos, |n| n.pos), "an input's `capacity` must be at least 1", None);
                    }
                    inputs.push(PlannedInput {
                        from: spec.from().to_owned(),
                        capacity: capacity.unwrap_or(DEFAULT_CAPACITY),
                        overflow: overflow.unwrap_or_default(),
                    });
                    positions.push(item.pos);
                    overflows.push((capacity, overflow));
                }
                Err(Some((field, message))) => {
                    // An unknown key is pointed at itself, a bad value at the value.
                    let at = if message.starts_with("unknown field") {
                        item.key_node(&field)
                    } else {
                        item.get(&field)
                    };
                    let pos = at.map_or(item.pos, |n| n.pos);
                    self.error(
                        pos,
                        format!("bad input of node `{id}`: {message}"),
                        "write `{from: node, capacity: 64, overflow: block}`; overflow is `block` or `drop_oldest`".to_owned(),
                    )
                }
                Err(None) => self.error(
                    item.pos,
                    format!("bad input of node `{id}`: expected a node id or {{from, capacity, overflow}}, found {}", item.kind()),
                    "overflow is `block` or `drop_oldest`; capacity a positive number".to_owned(),
                ),
            }
        }
        (inputs, positions, overflows)
    }

    /// Checks the edges: dangling inputs, cycles, payload kinds; then warnings.
    fn check_wiring(
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
        let mut graph = DiGraphMap::<usize, ()>::new();
        for i in 0..wiring.len() {
            graph.add_node(i);
        }
        let mut wiring_ok = true;
        for (i, w) in wiring.iter().enumerate() {
            let mut seen = Vec::new();
            for (from, pos) in &w.inputs {
                if seen.contains(from) {
                    self.error(
                        *pos,
                        format!("node `{}` lists input `{from}` twice", w.id),
                        None,
                    );
                    wiring_ok = false;
                    continue;
                }
                seen.push(from.clone());
                match by_id.get(from) {
                    Some(&j) => {
                        graph.add_edge(j, i, ());
                    }
                    // A node whose type is unknown: its own error says so.
                    None if all_ids.contains(&from.as_str()) => wiring_ok = false,
                    None => {
                        let others = all_ids.iter().copied().filter(|other| *other != w.id);
                        let hint = match closest(from, others) {
                            Some(best) => {
                                format!("did you mean `{best}`? does node `{from}` exist?")
                            }
                            None => format!(
                                "does node `{from}` exist? nodes are: {}",
                                all_ids.join(", ")
                            ),
                        };
                        self.error(
                            *pos,
                            format!(
                                "node `{}` takes input from `{from}`, which is not a node",
                                w.id
                            ),
                            hint,
                        );
                        wiring_ok = false;
                    }
                }
            }
        }
        let mut cyclic = false;
        for component in tarjan_scc(&graph) {
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
        // Payload kinds can only be checked once every node is understood;
        // then `parsed` and `wiring` list the same nodes in the same order.
        let complete = parsed.len() == all_ids.len()
            && parsed.iter().zip(wiring).all(|(p, w)| p.node.id == w.id);
        if !complete {
            return None;
        }
        if cyclic || !wiring_ok {
            return None;
        }
        let order = petgraph::algo::toposort(&graph, None).ok()?;
        let types: Vec<NodeType> = parsed.iter().map(|p| p.node.node_type.clone()).collect();
        let mut slots: Vec<Option<Parsed>> = parsed.into_iter().map(Some).collect();
        let mut planned: Vec<PlannedNode> = Vec::new();
        let mut kinds: BTreeMap<String, Option<PayloadKind>> = BTreeMap::new();
        let mut kinds_ok = true;
        let mut positions = HashMap::new();
        for i in order {
            let Some(p) = slots[i].take() else { continue };
            let mut node = p.node;
            let mut incoming = None;
            // Queue settings an input left out come from what feeds it: the
            // upstream type's overflow policy, and the queue its payload kind
            // asks for (a decoded frame is megabytes; a deep queue of them is
            // memory and latency, not throughput).
            for (input, (capacity, overflow)) in node.inputs.iter_mut().zip(&p.explicit_queue) {
                if let (None, Some(&j)) = (overflow, by_id.get(&input.from)) {
                    input.overflow = types[j].output_overflow;
                }
                let kind = kinds.get(&input.from).copied().flatten();
                if let (None, Some(kind_capacity)) =
                    (capacity, kind.and_then(PayloadKind::queue_capacity))
                {
                    input.capacity = kind_capacity;
                }
            }
            for (input, pos) in node.inputs.iter().zip(&p.input_pos) {
                let Some(kind) = kinds.get(&input.from).copied().flatten() else {
                    self.error(
                        *pos,
                        format!(
                            "node `{}` takes input from `{}`, a sink with no output",
                            node.id, input.from
                        ),
                        format!(
                            "is `{}` the node you meant? sinks cannot feed other nodes",
                            input.from
                        ),
                    );
                    kinds_ok = false;
                    continue;
                };
                if !node.node_type.inputs.accepts(kind) {
                    self.error(
                        *pos,
                        format!("node `{}` ({}) cannot take {kind} from `{}`: it takes {}", node.id, node.node_type.name, input.from, node.node_type.inputs),
                        format!("does `{}` give what `{}` needs? `flowrun nodes` shows each type's input and output", input.from, node.id),
                    );
                    kinds_ok = false;
                }
                incoming.get_or_insert(kind);
            }
            if node.node_type.output == OutputKind::SameAsInput {
                node.output_kind = incoming;
            }
            kinds.insert(node.id.clone(), node.output_kind);
            positions.insert(node.id.clone(), p.id_pos);
            planned.push(node);
        }
        if !kinds_ok {
            return None;
        }
        self.warn_about_shape(&planned, &graph, &by_id, &positions);
        Some(planned)
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

    fn type_list(&self) -> String {
        self.catalogue.names().collect::<Vec<_>>().join(", ")
    }
}

fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn path_text(path: &[PathStep]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathStep::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathStep::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The field name in serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

#[cfg(test)]
mod tests;
