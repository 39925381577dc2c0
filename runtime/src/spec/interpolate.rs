//! `${VAR}` and `${VAR:-default}` in spec values.
//!
//! Interpolation runs on the positioned tree before any value is typed, so a
//! plain `qos: ${QOS:-1}` becomes the number 1 and a missing variable is
//! reported at the line that uses it. `$${` writes a literal `${`. Keys are
//! never interpolated: the shape of a spec does not depend on the environment.

use super::yaml::{Node, Pos, Value};

/// A variable that is unset and has no default.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingVar {
    pub name: String,
    pub pos: Pos,
}

/// A `${` with no closing brace or an empty or malformed name.
#[derive(Debug, Clone, PartialEq)]
pub struct BadReference {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InterpolationError {
    Missing(MissingVar),
    Malformed(BadReference),
}

/// Replaces every reference in the values of `node`, looking variables up with
/// `lookup`; returns every problem found, not just the first.
pub fn interpolate(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<InterpolationError> {
    let mut errors = Vec::new();
    walk(node, lookup, &mut errors);
    errors
}

fn walk(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<InterpolationError>,
) {
    match &mut node.value {
        Value::Scalar { text, .. } => {
            if text.contains('$') {
                *text = substitute(text, node.pos, lookup, errors);
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|n| walk(n, lookup, errors)),
        Value::Map(entries) => entries
            .iter_mut()
            .for_each(|(_, v)| walk(v, lookup, errors)),
    }
}

/// Substitutes references in one string.
pub fn substitute(
    text: &str,
    pos: Pos,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<InterpolationError>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(escaped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = escaped;
            continue;
        }
        let Some(body_and_rest) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let Some(close) = body_and_rest.find('}') else {
            errors.push(InterpolationError::Malformed(BadReference {
                text: format!("${{{body_and_rest}"),
                pos,
            }));
            return out;
        };
        let body = &body_and_rest[..close];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        if !is_variable_name(name) {
            errors.push(InterpolationError::Malformed(BadReference {
                text: format!("${{{body}}}"),
                pos,
            }));
        } else {
            match (
                lookup(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => errors.push(InterpolationError::Missing(MissingVar {
                    name: name.to_owned(),
                    pos,
                })),
            }
        }
        rest = &body_and_rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The names of every variable a tree references, with and without defaults:
/// what `flowrun check` lists as the variables a spec reads.
pub fn referenced_variables(node: &Node) -> Vec<String> {
    fn visit(node: &Node, lookup: &dyn Fn(&str) -> Option<String>) {
        match &node.value {
            Value::Scalar { text, .. } => {
                substitute(text, node.pos, lookup, &mut Vec::new());
            }
            Value::Seq(items) => items.iter().for_each(|n| visit(n, lookup)),
            Value::Map(entries) => entries.iter().for_each(|(_, v)| visit(v, lookup)),
        }
    }
    // `substitute` asks the lookup for every reference it meets: record the names.
    let seen = std::cell::RefCell::new(Vec::<String>::new());
    visit(node, &|name| {
        seen.borrow_mut().push(name.to_owned());
        None
    });
    let mut names = seen.into_inner();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse;
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("broker.local".into()),
            "QOS" => Some("1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_keeps_types() {
        let mut root = parse(
            "url: mqtt://${HOST}:${PORT:-1883}\nqos: ${QOS}\nq: '${QOS}'\nlit: $${HOST} $5\n",
        )
        .unwrap();
        let errors = interpolate(&mut root, &env);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            root.to_json(),
            serde_json::json!({"url": "mqtt://broker.local:1883", "qos": 1, "q": "1", "lit": "${HOST} $5"})
        );
    }

    #[test]
    fn empty_variable_takes_the_default() {
        let mut root = parse("a: ${EMPTY:-x}\nb: ${EMPTY}\n").unwrap();
        assert!(interpolate(&mut root, &env).is_empty());
        assert_eq!(root.to_json(), serde_json::json!({"a": "x", "b": null}));
    }

    #[test]
    fn every_missing_variable_is_reported_with_its_line() {
        let mut root = parse("a: ${NOPE}\nb:\n  - ${ALSO_NOPE}\n").unwrap();
        let errors = interpolate(&mut root, &env);
        assert_eq!(
            errors,
            vec![
                InterpolationError::Missing(MissingVar {
                    name: "NOPE".into(),
                    pos: Pos { line: 1, column: 4 }
                }),
                InterpolationError::Missing(MissingVar {
                    name: "ALSO_NOPE".into(),
                    pos: Pos { line: 3, column: 5 }
                }),
            ]
        );
    }

    #[test]
    fn malformed_references_are_reported() {
        let mut root = parse("a: ${1BAD}\nb: ${OPEN\n").unwrap();
        let errors = interpolate(&mut root, &env);
        assert_eq!(errors.len(), 2);
        assert!(matches!(&errors[0], InterpolationError::Malformed(b) if b.text == "${1BAD}"));
    }

    #[test]
    fn lists_referenced_variables() {
        let root = parse("a: ${B:-1} ${A}\nc: [\"${C}\"]\n").unwrap();
        assert_eq!(referenced_variables(&root), vec!["A", "B", "C"]);
    }
}
