//! Output ports: where a node sends, and how an input names it.
//!
//! Every node with an output has a default port; a node type may declare
//! named ones beside it ([`crate::NodeConfig::PORTS`]), each with its payload
//! kind — `cos_put` sends what it refuses on `dead_letter`. An input names
//! a port as Vector's `component.output` does: `inputs: [store.dead_letter]`,
//! while a plain `store` is the default port. [`OutputRef`] is that
//! reference; it parses and prints the same text, so what a message says
//! is what the user wrote.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalogue::OutputKind;

/// A named output a node type declares beside its default one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputPort {
    /// The name an input uses after the dot: `dead_letter`.
    pub name: &'static str,
    /// What it sends.
    pub kind: OutputKind,
    /// One line for `flowrun nodes` and the schema.
    pub description: &'static str,
}

/// A reference to a node's output: `node` (its default port) or `node.port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutputRef {
    pub node: String,
    /// `None` for the default port.
    pub port: Option<String>,
}

/// Why a reference does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputRefError {
    #[error("`{0}` is not a node id: use letters, digits, `_` and `-`, starting with a letter")]
    Node(String),
    #[error("`{0}` is not a port name: use letters, digits and `_`, starting with a letter")]
    Port(String),
}

impl OutputRef {
    /// The default port of `node`.
    pub fn node(node: impl Into<String>) -> Self {
        OutputRef {
            node: node.into(),
            port: None,
        }
    }

    /// The same node's output `port`.
    pub fn with_port(mut self, port: impl Into<String>) -> Self {
        self.port = Some(port.into());
        self
    }

    pub fn port(&self) -> Option<&str> {
        self.port.as_deref()
    }
}

/// Whether `id` can be a node id: letters, digits, `_` and `-`, from a letter.
pub fn is_valid_id(id: &str) -> bool {
    is_name(id, &['_', '-'])
}

/// A port name is a node id without `-`.
fn is_valid_port(name: &str) -> bool {
    is_name(name, &['_'])
}

/// A letter, then letters, digits and the `extra` characters.
fn is_name(text: &str, extra: &[char]) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

impl FromStr for OutputRef {
    type Err = OutputRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // Node ids cannot hold a dot, so the first one separates the port.
        let (node, port) = match text.split_once('.') {
            Some((node, port)) => (node, Some(port)),
            None => (text, None),
        };
        if !is_valid_id(node) {
            return Err(OutputRefError::Node(node.to_owned()));
        }
        if let Some(port) = port.filter(|p| !is_valid_port(p)) {
            return Err(OutputRefError::Port(port.to_owned()));
        }
        Ok(OutputRef {
            node: node.to_owned(),
            port: port.map(str::to_owned),
        })
    }
}

impl fmt::Display for OutputRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.port {
            Some(port) => write!(f, "{}.{port}", self.node),
            None => f.write_str(&self.node),
        }
    }
}

impl Serialize for OutputRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OutputRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for OutputRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OutputRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A node id (its default output), or `node.port` for a named output such as `store.dead_letter`.",
            "pattern": "^[A-Za-z][A-Za-z0-9_-]*(\\.[A-Za-z][A-Za-z0-9_]*)?$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_the_same() {
        for text in ["store", "store.dead_letter", "a-1.out2"] {
            let parsed: OutputRef = text.parse().unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        let parsed: OutputRef = "store.dead_letter".parse().unwrap();
        assert_eq!(parsed.node, "store");
        assert_eq!(parsed.port(), Some("dead_letter"));
        assert_eq!("store".parse::<OutputRef>().unwrap().port(), None);
    }

    #[test]
    fn bad_references_say_which_part_is_wrong() {
        assert_eq!(
            "store.".parse::<OutputRef>(),
            Err(OutputRefError::Port(String::new()))
        );
        assert_eq!(
            "a.b.c".parse::<OutputRef>(),
            Err(OutputRefError::Port("b.c".into()))
        );
        assert_eq!(
            "1store".parse::<OutputRef>(),
            Err(OutputRefError::Node("1store".into()))
        );
    }

    #[test]
    fn deserializing_uses_the_same_parser() {
        let parsed: OutputRef = serde_json::from_value(serde_json::json!("s.dead_letter")).unwrap();
        assert_eq!(parsed, OutputRef::node("s").with_port("dead_letter"));
        assert!(serde_json::from_value::<OutputRef>(serde_json::json!("s.")).is_err());
    }
}
