//! The flowrun engine.
//!
//! A spec (YAML) is read into a positioned tree ([`spec::yaml`]), its
//! `${VAR}`s are filled in ([`spec::interpolate`]), and [`validate`] turns it
//! into a [`Plan`] — or into every located problem at once. The [`Engine`]
//! runs a plan: each node a supervised task, each edge a bounded queue
//! ([`edge`]), each message carrying an end-to-end acknowledgement ([`ack`]).
//! A running engine takes new plans ([`diff`]) when the spec changes
//! ([`reload`]), and counts everything ([`metrics`]).
//!
//! The engine knows no node type by name: node types register in a
//! [`Catalogue`] by implementing [`NodeConfig`] and are built from it alone.

// Library code takes nothing on trust from a spec, a broker or a store:
// no `unwrap`/`expect` outside the tests, which unwrap by design.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod ack;
pub mod catalogue;
pub mod diagnostic;
pub mod diff;
pub mod edge;
pub mod engine;
pub mod graph;
pub mod message;
pub mod metrics;
pub mod node;
pub mod payload;
pub mod plan;
pub mod port;
pub mod reload;
pub mod runner;
pub mod schema;
pub mod spec;
pub mod validate;

pub use ack::{Ack, AckReceiver, AckStatus, OrderedAcks, Outcome};
pub use catalogue::{
    Catalogue, ConfigIssue, EnvVar, ExternalLink, Inputs, NodeConfig, NodeType, OutputKind,
};
pub use diagnostic::{Diagnostic, Severity};
pub use edge::{Input, Output, Overflow};
pub use engine::{Engine, EngineHandle, ReloadReport, RunReport};
pub use message::{keys, Message, MetaValue, Metadata};
pub use metrics::{Counter, Counts, Metrics, NodeMetrics};
pub use node::{default_state_dir, BuildContext, Node, NodeContext, NodeError, NodeFailure};
pub use payload::{Payload, PayloadKind, PayloadValue, TypedPayload};
pub use plan::Plan;
pub use port::{OutputPort, OutputRef};
pub use validate::{load, load_shape, validate, Checked};
