//! The node catalogue: every node type the engine can build, registered by
//! the node crate. The engine knows node types only through this table.
//!
//! A node type *is* its config struct: implementing [`NodeConfig`] declares
//! the type name, a one-line description, the payload kinds it takes and
//! gives (on its default output and on each named port, [`crate::port`]),
//! and how to build a running node. The JSON Schema (and from it the
//! editor completion, `flowrun nodes` and the unknown-key checks) comes from
//! the struct's doc comments through `schemars`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::edge::Overflow;
use crate::message::PayloadKind;
use crate::node::{BuildContext, Node, NodeError};
use crate::port::OutputPort;
use crate::spec::yaml::PathStep;

/// What a node type takes on its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inputs {
    /// A source: it takes no input.
    None,
    /// Any payload kind.
    Any,
    /// Only these kinds.
    Only(&'static [PayloadKind]),
}

impl Inputs {
    pub fn accepts(self, kind: PayloadKind) -> bool {
        match self {
            Inputs::None => false,
            Inputs::Any => true,
            Inputs::Only(kinds) => kinds.contains(&kind),
        }
    }
}

impl fmt::Display for Inputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inputs::None => f.write_str("nothing (a source)"),
            Inputs::Any => f.write_str("any"),
            Inputs::Only(kinds) => {
                let names: Vec<String> = kinds.iter().map(ToString::to_string).collect();
                f.write_str(&names.join(" or "))
            }
        }
    }
}

/// What a node type gives on its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// A sink: it has no output.
    None,
    /// The kind it was given (a pass-through).
    SameAsInput,
    Kind(PayloadKind),
}

impl fmt::Display for OutputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputKind::None => f.write_str("nothing (a sink)"),
            OutputKind::SameAsInput => f.write_str("same as input"),
            OutputKind::Kind(kind) => write!(f, "{kind}"),
        }
    }
}

/// A problem in a config that its type cannot express (a bad URL, a range
/// that depends on another field). `field` is a dotted path (`tls.ca_file`,
/// `topics.1`) from the node's mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigIssue {
    pub field: String,
    pub message: String,
    pub hint: Option<String>,
    /// Only a warning: the spec still runs (a setting that works but has a
    /// better spelling).
    pub warning: bool,
}

impl ConfigIssue {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigIssue {
            field: field.into(),
            message: message.into(),
            hint: None,
            warning: false,
        }
    }

    /// Makes the issue a warning: reported, but the spec still runs.
    pub fn warning(mut self) -> Self {
        self.warning = true;
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn path(&self) -> Vec<PathStep> {
        self.field
            .split('.')
            .filter(|s| !s.is_empty())
            .map(|s| match s.parse::<usize>() {
                Ok(i) => PathStep::Index(i),
                Err(_) => PathStep::Key(s.to_owned()),
            })
            .collect()
    }
}

/// A node type, declared by its config struct. The struct should carry
/// `#[serde(deny_unknown_fields)]` and doc comments on every field.
pub trait NodeConfig: DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// The name used as `type:` in specs.
    const TYPE: &'static str;
    /// One line for `flowrun nodes` and the schema.
    const DESCRIPTION: &'static str;
    const INPUTS: Inputs;
    const OUTPUT: OutputKind;
    /// Named outputs beside the default one (`dead_letter`), which an input
    /// takes as `inputs: [node.port]`.
    const PORTS: &'static [OutputPort] = &[];
    /// The overflow policy of edges leaving this node unless an input says
    /// otherwise: live sources drop old data rather than build a backlog.
    const OUTPUT_OVERFLOW: Overflow = Overflow::Block;
    /// Whether an instance says when its config has taken effect
    /// ([`crate::NodeContext::ready`]): an MQTT subscriber once the broker
    /// confirmed its subscriptions. A reload is reported once every node it
    /// started is ready (bounded); other types are ready when started.
    const REPORTS_READY: bool = false;

    /// Checks the types cannot express; every issue found, not just the first.
    fn check(&self) -> Vec<ConfigIssue> {
        Vec::new()
    }

    /// Environment variables an instance reads by itself, by name (an S3
    /// key named by `access_key_id_env`), beside the spec's own `${VAR}`s:
    /// `flowrun check` lists them and refuses a spec whose required ones
    /// are not set, so that it does not fail only once running.
    fn environment(&self) -> Vec<EnvVar> {
        Vec::new()
    }

    /// The systems outside the graph this node exchanges data with (a
    /// broker and its topics, a bucket), for `flowrun graph`: links between
    /// specs run as separate processes show through them.
    fn links(&self) -> Vec<ExternalLink> {
        Vec::new()
    }

    /// Builds a node instance. Called again for every restart.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError>;
}

/// Data crossing the graph's edge: to or from a system outside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLink {
    /// The system, as its address (`mqtt://127.0.0.1:1883`, `s3://faces`):
    /// specs that name the same one are drawn meeting there.
    pub system: String,
    /// Data flows from the system into the node.
    pub inbound: bool,
    /// What flows: `faces/# (qos 1)`.
    pub label: String,
}

/// An environment variable a node reads by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The config key that names it (`backend.s3.access_key_id_env`), for
    /// the error's location.
    pub field: String,
    pub name: String,
    /// What it holds: "the S3 access key id".
    pub what: String,
    /// Whether the node cannot run without it.
    pub required: bool,
}

/// A config that has been parsed and checked, ready to build instances.
pub trait BuiltConfig: Send + Sync {
    fn check(&self) -> Vec<ConfigIssue>;
    fn environment(&self) -> Vec<EnvVar>;
    fn links(&self) -> Vec<ExternalLink>;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError>;
}

impl<C: NodeConfig> BuiltConfig for C {
    fn check(&self) -> Vec<ConfigIssue> {
        NodeConfig::check(self)
    }

    fn environment(&self) -> Vec<EnvVar> {
        NodeConfig::environment(self)
    }

    fn links(&self) -> Vec<ExternalLink> {
        NodeConfig::links(self)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        NodeConfig::build(self, ctx)
    }
}

/// Why a config did not deserialize, and where.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub path: Vec<PathStep>,
    pub message: String,
}

type ParseFn = fn(serde_json::Value) -> Result<Arc<dyn BuiltConfig>, ParseError>;

/// What the engine knows about one node type.
#[derive(Clone)]
pub struct NodeType {
    pub name: &'static str,
    pub description: &'static str,
    pub inputs: Inputs,
    pub output: OutputKind,
    /// See [`NodeConfig::PORTS`].
    pub ports: &'static [OutputPort],
    pub output_overflow: Overflow,
    /// See [`NodeConfig::REPORTS_READY`].
    pub reports_ready: bool,
    /// The JSON Schema of the config, with every subschema inlined.
    pub schema: serde_json::Value,
    parse: ParseFn,
}

impl NodeType {
    /// Deserializes a config, with the path to the offending value on error.
    pub fn parse(&self, config: serde_json::Value) -> Result<Arc<dyn BuiltConfig>, ParseError> {
        (self.parse)(config)
    }

    /// Config keys this type accepts, from its schema (including those of
    /// every variant of a tagged config).
    pub fn config_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        collect_keys(&self.schema, &mut keys);
        keys.sort();
        keys.dedup();
        keys
    }

    pub fn is_source(&self) -> bool {
        self.inputs == Inputs::None
    }

    /// Whether its default output sends nothing: a named port (a dead
    /// letter) does not make a store any less the end of the pipeline.
    pub fn is_sink(&self) -> bool {
        self.output == OutputKind::None
    }
}

fn collect_keys(schema: &serde_json::Value, keys: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        keys.extend(props.keys().cloned());
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(branches) = schema.get(combinator).and_then(|b| b.as_array()) {
            branches.iter().for_each(|b| collect_keys(b, keys));
        }
    }
}

fn parse_config<C: NodeConfig>(
    config: serde_json::Value,
) -> Result<Arc<dyn BuiltConfig>, ParseError> {
    serde_path_to_error::deserialize::<_, C>(config)
        .map(|c| Arc::new(c) as Arc<dyn BuiltConfig>)
        .map_err(|e| ParseError {
            path: e
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Map { key } => Some(PathStep::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(PathStep::Index(*index)),
                    _ => None,
                })
                .collect(),
            message: e.inner().to_string(),
        })
}

/// The schema of `T` with every subschema inlined, so each node type's
/// schema stands alone inside the spec schema.
pub fn inline_schema<T: JsonSchema>() -> serde_json::Value {
    let mut settings = schemars::generate::SchemaSettings::draft07();
    settings.inline_subschemas = true;
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
    }
    schema
}

/// Every node type, by name.
#[derive(Clone, Default)]
pub struct Catalogue {
    types: BTreeMap<&'static str, NodeType>,
    /// Types this build was made without, and why (a cargo feature left out).
    left_out: BTreeMap<&'static str, &'static str>,
}

impl Catalogue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds node type `C`.
    pub fn register<C: NodeConfig>(&mut self) -> &mut Self {
        self.types.insert(
            C::TYPE,
            NodeType {
                name: C::TYPE,
                description: C::DESCRIPTION,
                inputs: C::INPUTS,
                output: C::OUTPUT,
                ports: C::PORTS,
                output_overflow: C::OUTPUT_OVERFLOW,
                reports_ready: C::REPORTS_READY,
                schema: inline_schema::<C>(),
                parse: parse_config::<C>,
            },
        );
        self
    }

    /// Notes that node type `name` exists but is not in this build, so a
    /// spec that uses it is told `why` rather than that no such type exists.
    pub fn leave_out(&mut self, name: &'static str, why: &'static str) -> &mut Self {
        self.left_out.insert(name, why);
        self
    }

    pub fn get(&self, name: &str) -> Option<&NodeType> {
        self.types.get(name)
    }

    /// Why node type `name` is not in this build, if it was left out.
    pub fn why_left_out(&self, name: &str) -> Option<&'static str> {
        self.left_out.get(name).copied()
    }

    /// The node types this build was made without, and why.
    pub fn left_out(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.left_out.iter().map(|(name, why)| (*name, *why))
    }

    pub fn types(&self) -> impl Iterator<Item = &NodeType> {
        self.types.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.types.keys().copied()
    }
}
