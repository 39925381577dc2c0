//! The spec a user writes: YAML with a version, a name and a map of nodes.
//!
//! ```yaml
//! version: 1
//! name: cloud-cos
//! nodes:
//!   images:
//!     type: mqtt_sub
//!     broker: ${CLOUD_BROKER:-mqtt://localhost:1883}
//!     topics: ["faces/#"]
//!   store:
//!     type: cos_put
//!     inputs: [images]
//!     bucket: ${BUCKET:-faces}
//!   refused:
//!     type: print
//!     inputs: [store.dead_letter]   # a named output port of `store`
//! ```
//!
//! Each node's mapping holds three keys the engine reads — `type`, `inputs`
//! and `on_failure` — and the node type's own config beside them. The engine
//! takes its keys off the mapping before the rest is deserialized into the
//! node type's config, which denies unknown fields.

pub mod interpolate;
pub mod yaml;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::edge::Overflow;
use crate::port::OutputRef;

/// Keys of a node's mapping that belong to the engine, not to the node type.
pub const ENGINE_KEYS: [&str; 3] = ["type", "inputs", "on_failure"];

/// Keys at the top of a spec.
pub const TOP_KEYS: [&str; 4] = ["version", "name", "description", "nodes"];

/// The only spec version so far.
pub const VERSION: i64 = 1;

/// Default capacity of an input's queue, in messages.
pub const DEFAULT_CAPACITY: usize = 64;

/// One input of a node: the output that feeds it (`camera`, or a named
/// port: `store.dead_letter`), optionally with its queue settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum InputSpec {
    /// The upstream node (its default output), or `node.port`.
    Node(OutputRef),
    /// The upstream node with queue settings for this edge.
    WithQueue(InputQueue),
}

/// An input with its own queue settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InputQueue {
    /// The upstream node (its default output), or `node.port`.
    pub from: OutputRef,
    /// How many messages may wait on this edge (default 64; 4 for decoded frames).
    #[serde(default)]
    pub capacity: Option<usize>,
    /// What to do when the queue is full: `block` (backpressure, the
    /// default) or `drop_oldest` (counted).
    #[serde(default)]
    pub overflow: Option<Overflow>,
}

impl InputSpec {
    pub fn from(&self) -> &OutputRef {
        match self {
            InputSpec::Node(from) => from,
            InputSpec::WithQueue(q) => &q.from,
        }
    }
}

/// What the engine does when a node's run fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Build and start the node again, after a backoff that grows from 100 ms
    /// to 30 s while it keeps failing. Its queued messages wait for it.
    #[default]
    Restart,
    /// Stop the whole pipeline, with a non-zero exit code.
    Stop,
}
