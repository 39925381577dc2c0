//! A YAML tree that remembers where every key and value came from.
//!
//! Specs are read with `saphyr-parser`'s event stream rather than straight into
//! serde types, because every diagnostic must point at `file:line:column` —
//! for an unknown key, a bad value, a missing variable — and serde alone
//! forgets positions once a value is deserialized. The tree is small: scalars
//! keep their text until the spec is interpolated, then resolve to JSON types.
//!
//! The loader also bounds what a hostile file can cost: nesting depth and the
//! number of nodes after alias expansion are capped (the "billion laughs"
//! attack is a few aliases that expand exponentially).

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Deepest nesting a spec may have; real specs use five or six levels.
pub const MAX_DEPTH: usize = 64;
/// Most nodes a spec may expand to, counting every alias expansion.
pub const MAX_NODES: usize = 100_000;
/// Largest spec file accepted, in bytes.
pub const MAX_BYTES: usize = 1024 * 1024;

/// A 1-based line and column in the spec file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Self {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value in the tree, with the position where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A scalar as written. `plain` scalars resolve to null, bool, number or
    /// string by YAML 1.2's core schema; quoted ones are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys in file order; duplicate keys are refused by the loader.
    Map(Vec<(Node, Node)>),
}

/// A syntax or limit error, with where it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

impl Node {
    /// The text of a scalar, or `None` for a sequence or mapping.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The entries of a mapping, or `None`.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// What kind of YAML value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Scalar { .. } => match self.to_json() {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                _ => "a string",
            },
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Converts the tree to JSON, resolving plain scalars by YAML 1.2's core schema.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Scalar { text, plain: true } => resolve_plain(text),
            Value::Scalar { text, plain: false } => serde_json::Value::String(text.clone()),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// The node a serde error path (`a.b[2].c`) leads to, or the deepest one
    /// on the way, so that an error about a value points at that value.
    pub fn locate<'a>(&'a self, path: &[PathStep]) -> &'a Node {
        let mut here = self;
        for step in path {
            let next = match (step, &here.value) {
                (PathStep::Key(key), Value::Map(entries)) => entries
                    .iter()
                    .find(|(k, _)| k.as_str() == Some(key))
                    .map(|(_, v)| v),
                (PathStep::Index(i), Value::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(node) => here = node,
                None => break,
            }
        }
        here
    }

    /// The key node of `key` in a mapping (errors about a key point at the key).
    pub fn key_node(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }
}

/// One step of a path into the tree.
#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

fn resolve_plain(text: &str) -> serde_json::Value {
    use serde_json::Value as J;
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return J::Null,
        "true" | "True" | "TRUE" => return J::Bool(true),
        "false" | "False" | "FALSE" => return J::Bool(false),
        _ => {}
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<i64>() {
            return J::from(n);
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(n) = i64::from_str_radix(hex, 16) {
            return J::from(n);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(n) = i64::from_str_radix(oct, 8) {
            return J::from(n);
        }
    }
    let looks_numeric = digits
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if looks_numeric {
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return J::Number(n);
        }
    }
    J::String(text.to_owned())
}

/// Parses one YAML document into a positioned tree.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_BYTES {
        return Err(YamlError {
            pos: Pos { line: 1, column: 1 },
            message: format!(
                "the spec is {} bytes, more than the {MAX_BYTES} a spec may have",
                text.len()
            ),
            hint: Some("is this the right file? a spec describes a graph, not data".into()),
        });
    }
    let mut loader = Loader {
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
        last: Pos { line: 1, column: 1 },
    };
    loader.document()
}

struct Loader<'a> {
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    last: Pos,
}

impl<'a> Loader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Pos), YamlError> {
        match self.events.next() {
            Some(Ok((event, span))) => {
                self.last = Pos::from_span(&span);
                Ok((event, self.last))
            }
            Some(Err(e)) => Err(YamlError {
                pos: Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                message: format!("YAML syntax error: {}", e.info()),
                hint: Some("check the indentation and the quoting around this place".into()),
            }),
            None => Err(self.error(self.last, "unexpected end of the file")),
        }
    }

    fn error(&self, pos: Pos, message: impl Into<String>) -> YamlError {
        YamlError {
            pos,
            message: message.into(),
            hint: None,
        }
    }

    fn document(&mut self) -> Result<Node, YamlError> {
        let mut root = None;
        loop {
            let (event, pos) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) if root.is_some() => {
                    return Err(YamlError {
                        pos,
                        message: "a spec file holds one YAML document, this is a second one".into(),
                        hint: Some("remove the `---` line, or split the specs into files".into()),
                    })
                }
                Event::DocumentStart(_) => {
                    let (event, pos) = self.next()?;
                    root = Some(self.node(event, pos, 0)?);
                }
                Event::StreamEnd => {
                    return root.ok_or_else(|| YamlError {
                        pos,
                        message: "the spec is empty".into(),
                        hint: Some("a spec needs at least `version: 1` and `nodes:`".into()),
                    })
                }
                _ => return Err(self.error(pos, "unexpected YAML structure")),
            }
        }
    }

    fn count(&mut self, pos: Pos, n: usize) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(YamlError {
                pos,
                message: format!("the spec expands to more than {MAX_NODES} values"),
                hint: Some(
                    "aliases (`*name`) that refer to each other multiply; write the values out"
                        .into(),
                ),
            });
        }
        Ok(())
    }

    fn node(&mut self, event: Event<'a>, pos: Pos, depth: usize) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(YamlError {
                pos,
                message: format!("the spec nests deeper than {MAX_DEPTH} levels"),
                hint: Some("a spec is a flat map of nodes; flatten this value".into()),
            });
        }
        self.count(pos, 1)?;
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_string = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !tagged_string;
                let value = Value::Scalar {
                    text: text.into_owned(),
                    plain,
                };
                (Node { pos, value }, anchor)
            }
            Event::SequenceStart(anchor, _) => (
                Node {
                    pos,
                    value: Value::Seq(self.sequence(depth)?),
                },
                anchor,
            ),
            Event::MappingStart(anchor, _) => (
                Node {
                    pos,
                    value: Value::Map(self.mapping(depth)?),
                },
                anchor,
            ),
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id).cloned() else {
                    return Err(self.error(pos, "alias to an unknown anchor"));
                };
                self.count(pos, target.size())?;
                return Ok(Node { pos, ..target });
            }
            _ => return Err(self.error(pos, "unexpected YAML structure")),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    /// The items of a sequence whose start was just read, up to its end.
    fn sequence(&mut self, depth: usize) -> Result<Vec<Node>, YamlError> {
        let mut items = Vec::new();
        loop {
            let (event, item_pos) = self.next()?;
            if matches!(event, Event::SequenceEnd) {
                return Ok(items);
            }
            items.push(self.node(event, item_pos, depth + 1)?);
        }
    }

    /// The entries of a mapping whose start was just read, up to its end:
    /// plain string keys, each at most once.
    fn mapping(&mut self, depth: usize) -> Result<Vec<(Node, Node)>, YamlError> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        loop {
            let (event, key_pos) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                return Ok(entries);
            }
            let key = self.node(event, key_pos, depth + 1)?;
            let Some(key_text) = key.as_str().map(str::to_owned) else {
                return Err(YamlError {
                    pos: key.pos,
                    message: "a mapping key must be a plain string".into(),
                    hint: None,
                });
            };
            if let Some((first, _)) = entries.iter().find(|(k, _)| k.as_str() == Some(&key_text)) {
                return Err(YamlError {
                    pos: key.pos,
                    message: format!(
                        "duplicate key `{key_text}` (first at line {})",
                        first.pos.line
                    ),
                    hint: Some("each key may appear once in a mapping; remove one".into()),
                });
            }
            let (event, value_pos) = self.next()?;
            let value = self.node(event, value_pos, depth + 1)?;
            entries.push((key, value));
        }
    }
}

impl Node {
    /// How many values this tree holds, to charge alias expansions.
    fn size(&self) -> usize {
        match &self.value {
            Value::Scalar { .. } => 1,
            Value::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Value::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_point_at_keys_and_values() {
        let root = parse("a: 1\nb:\n  c: [x, 'y']\n").unwrap();
        assert_eq!(root.key_node("b").unwrap().pos, Pos { line: 2, column: 1 });
        let c = root.get("b").unwrap().get("c").unwrap();
        assert_eq!(c.pos, Pos { line: 3, column: 6 });
        assert_eq!(
            root.to_json(),
            serde_json::json!({"a": 1, "b": {"c": ["x", "y"]}})
        );
    }

    #[test]
    fn plain_scalars_resolve_by_the_core_schema() {
        let root = parse("a: 1\nb: '1'\nc: true\nd: 1.5\ne: ~\nf: 0x10\ng: 1.2.3\n").unwrap();
        assert_eq!(
            root.to_json(),
            serde_json::json!({"a": 1, "b": "1", "c": true, "d": 1.5, "e": null, "f": 16, "g": "1.2.3"})
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.starts_with("YAML syntax error"), "{err:?}");
        assert!(err.pos.line >= 1);
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, column: 1 });
        assert!(err.message.contains("duplicate key `a`"));
    }

    #[test]
    fn alias_bombs_are_bounded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("expands to more than"), "{err:?}");
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let text = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nests deeper"), "{err:?}");
    }
}
