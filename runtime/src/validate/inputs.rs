//! A node's `inputs:` on their own: each an output reference (`camera`,
//! `store.dead_letter`) or `{from, capacity, overflow}`. Whether the
//! referenced node and port exist is the wiring layer's business.

use super::{ExplicitQueue, Validator};
use crate::catalogue::NodeType;
use crate::plan::PlannedInput;
use crate::port::{OutputRef, OutputRefError};
use crate::spec::yaml::{self, Node, Pos};
use crate::spec::{InputQueue, InputSpec, DEFAULT_CAPACITY};

/// Why one input entry was refused: serde's message and the field it is
/// about (for the queue form), or a reference that does not parse.
enum BadInput {
    Queue { field: String, message: String },
    Reference(OutputRefError),
    Shape,
}

impl Validator<'_> {
    pub(super) fn check_inputs(
        &mut self,
        id: &str,
        body: &Node,
        node_type: &NodeType,
    ) -> (Vec<PlannedInput>, Vec<Pos>, Vec<ExplicitQueue>) {
        let mut inputs = Vec::new();
        let mut positions = Vec::new();
        let mut overflows = Vec::new();
        for item in self.input_items(id, body, node_type) {
            match parse_input(item) {
                Ok(spec) => {
                    let (capacity, overflow) = match &spec {
                        InputSpec::Node(_) => (None, None),
                        InputSpec::WithQueue(q) => (q.capacity, q.overflow),
                    };
                    if capacity == Some(0) {
                        let at = item.get("capacity").map_or(item.pos, |n| n.pos);
                        self.error(at, "an input's `capacity` must be at least 1", None);
                    }
                    let from = spec.from();
                    inputs.push(PlannedInput {
                        from: from.node.clone(),
                        port: from.port.clone(),
                        capacity: capacity.unwrap_or(DEFAULT_CAPACITY),
                        overflow: overflow.unwrap_or_default(),
                    });
                    positions.push(item.pos);
                    overflows.push((capacity, overflow));
                }
                Err(bad) => self.bad_input(id, item, bad),
            }
        }
        (inputs, positions, overflows)
    }

    /// The entries of `inputs:`, when the node may have any.
    fn input_items<'n>(&mut self, id: &str, body: &'n Node, node_type: &NodeType) -> Vec<&'n Node> {
        let Some(list) = body.get("inputs") else {
            return Vec::new();
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
            return Vec::new();
        }
        match &list.value {
            yaml::Value::Seq(items) => items.iter().collect(),
            yaml::Value::Scalar { .. } => vec![list],
            yaml::Value::Map(_) => {
                self.error(
                    list.pos,
                    "`inputs` must be a list of node ids",
                    "write `inputs: [camera]` or `inputs: [{from: camera, capacity: 4}]`"
                        .to_owned(),
                );
                Vec::new()
            }
        }
    }

    fn bad_input(&mut self, id: &str, item: &Node, bad: BadInput) {
        match bad {
            BadInput::Queue { field, message } => {
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
            BadInput::Reference(error) => self.error(
                item.pos,
                format!("bad input of node `{id}`: {error}"),
                "write a node id, or `node.port` for a named output: `store.dead_letter`"
                    .to_owned(),
            ),
            BadInput::Shape => self.error(
                item.pos,
                format!("bad input of node `{id}`: expected a node id or {{from, capacity, overflow}}, found {}", item.kind()),
                "overflow is `block` or `drop_oldest`; capacity a positive number".to_owned(),
            ),
        }
    }
}

/// One entry of `inputs:`.
fn parse_input(item: &Node) -> Result<InputSpec, BadInput> {
    // A mapping is read as the queue form directly, so that a typo in it
    // gets serde's precise message at the offending key instead of the
    // untagged enum's "matched no variant".
    if item.as_map().is_some() {
        return serde_path_to_error::deserialize::<_, InputQueue>(item.to_json())
            .map(InputSpec::WithQueue)
            .map_err(|e| BadInput::Queue {
                field: e.path().to_string(),
                message: e.inner().to_string(),
            });
    }
    let json = item.to_json();
    let Some(text) = json.as_str() else {
        return Err(BadInput::Shape);
    };
    match text.parse::<OutputRef>() {
        Ok(from) => Ok(InputSpec::Node(from)),
        // Not an id and no port: most likely a misspelt node, which the
        // wiring layer names with the closest id.
        Err(OutputRefError::Node(_)) if !text.contains('.') => {
            Ok(InputSpec::Node(OutputRef::node(text)))
        }
        Err(error) => Err(BadInput::Reference(error)),
    }
}
