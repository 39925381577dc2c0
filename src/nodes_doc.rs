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
    let required: Vec<&str> = t
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = t.schema.get("properties").and_then(Value::as_object) else {
        out.push_str("  config: none\n");
        return out;
    };
    if properties.is_empty() {
        out.push_str("  config: none\n");
        return out;
    }
    out.push_str("  config:\n");
    for (key, schema) in properties {
        let mut facts = vec![type_name(schema)];
        if required.contains(&key.as_str()) {
            facts.push("required".into());
        } else if let Some(default) = schema.get("default").filter(|d| !d.is_null()) {
            facts.push(format!("default {default}"));
        }
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('\n', " ");
        out.push_str(&format!(
            "    {key} ({}): {description}\n",
            facts.join(", ")
        ));
    }
    out
}

fn type_name(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .map(|v| v.as_str().map_or(v.to_string(), str::to_owned))
            .collect();
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
