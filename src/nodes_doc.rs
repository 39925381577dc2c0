//! `flowrun nodes`: the catalogue as a reference, read from each node type's
//! declaration and config schema — so it cannot drift from the code.

use std::process::ExitCode;

use flowrun_runtime::diagnostic::suggest;
use flowrun_runtime::{Catalogue, NodeType};
use serde_json::Value;

pub fn print(catalogue: &Catalogue, only: Option<&str>) -> anyhow::Result<ExitCode> {
    if let Some(name) = only {
        if let Some(why) = catalogue.why_left_out(name) {
            anyhow::bail!("node type `{name}` is not in this build of flowrun: {why}");
        }
        let Some(node_type) = catalogue.get(name) else {
            let names: Vec<&str> = catalogue.names().collect();
            anyhow::bail!(
                "unknown node type `{name}`: {}",
                suggest(name, names, "known types are")
            );
        };
        print!("{}", describe(node_type));
        return Ok(ExitCode::SUCCESS);
    }
    let blocks: Vec<String> = catalogue.types().map(describe).collect();
    print!("{}", blocks.join("\n"));
    for (name, why) in catalogue.left_out() {
        print!("\n{name} — not in this build: {why}\n");
    }
    Ok(ExitCode::SUCCESS)
}

/// One node type: name, description, payload kinds, then one line per key.
pub fn describe(t: &NodeType) -> String {
    let mut out = format!(
        "{} — {}\n  input: {}    output: {}\n",
        t.name, t.description, t.inputs, t.output
    );
    // Named outputs, as an input takes them: `inputs: [node.dead_letter]`.
    for port in t.ports {
        out.push_str(&format!(
            "  output .{}: {} — {}\n",
            port.name, port.kind, port.description
        ));
    }
    let lines = keys(&t.schema, 4);
    if lines.is_empty() {
        out.push_str("  config: none\n");
        return out;
    }
    out.push_str("  config:\n");
    out.push_str(&lines);
    out
}

/// One line per key of an object schema, then, indented under it, the keys
/// of what it holds: a nested object (`broker:`), the items of a list
/// (`topics[]:`), or each variant of a choice (`backend:` → `s3:` / `fs:`).
fn keys(schema: &Value, indent: usize) -> String {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return String::new();
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = String::new();
    for (key, property) in properties {
        let mut facts = vec![type_name(property)];
        if required.contains(&key.as_str()) {
            facts.push("required".into());
        } else if let Some(default) = property.get("default").filter(|d| !d.is_null()) {
            facts.push(format!("default {default}"));
        }
        let description = property
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('\n', " ");
        let items = property
            .get("items")
            .filter(|i| i.get("properties").is_some());
        let name = if items.is_some() {
            format!("{key}[]")
        } else {
            key.clone()
        };
        out.push_str(&format!(
            "{:indent$}{name} ({}): {description}\n",
            "",
            facts.join(", ")
        ));
        for inner in std::iter::once(property)
            .chain(items)
            .chain(variants(property))
        {
            out.push_str(&keys(inner, indent + 2));
        }
    }
    out
}

/// The branches of a choice (`oneOf`/`anyOf`), without a `null` one.
fn variants(schema: &Value) -> impl Iterator<Item = &Value> {
    schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn type_name(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let mut names: Vec<String> = Vec::new();
        for value in values {
            // `"5"` and `5` are one choice to a reader.
            let name = value.as_str().map_or(value.to_string(), str::to_owned);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        return names.join("|");
    }
    if let Some(options) = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
    {
        let names: Vec<String> = options
            .iter()
            .map(type_name)
            .filter(|n| n != "null")
            .collect();
        return names.join("|");
    }
    match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join("|"),
        _ => schema
            .get("const")
            .map(|c| c.to_string())
            .unwrap_or_else(|| "value".into()),
    }
}
