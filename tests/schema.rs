//! The committed JSON Schema is what `flowrun schema` prints, and every
//! shipped spec is valid under it — so the editor completion the specs point
//! at (`# yaml-language-server: $schema=...`) agrees with `flowrun check`.

use std::path::Path;
use std::process::Command;

use flowrun_runtime::spec::interpolate::substitute;
use flowrun_runtime::spec::yaml::{self, Node, Value};
use serde_json::json;

const FLOWRUN: &str = env!("CARGO_BIN_EXE_flowrun");
const SCHEMA_FILE: &str = "schemas/flowrun.schema.json";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn committed_schema() -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join(SCHEMA_FILE)).expect("the schema is committed");
    serde_json::from_str(&text).expect("the committed schema is JSON")
}

#[test]
fn the_committed_schema_is_what_flowrun_schema_prints() {
    let output = Command::new(FLOWRUN)
        .arg("schema")
        .output()
        .expect("flowrun runs");
    assert!(output.status.success(), "flowrun schema failed: {output:?}");
    let generated = String::from_utf8(output.stdout).expect("the schema is UTF-8");
    let committed = std::fs::read_to_string(repo().join(SCHEMA_FILE)).unwrap_or_default();
    assert!(
        generated == committed,
        "schemas/flowrun.schema.json is stale: run `cargo run -q -- schema > schemas/flowrun.schema.json`"
    );
}

/// Every spec that must be valid: the shipped ones and the good corpus.
fn good_specs() -> Vec<String> {
    let mut files = Vec::new();
    for dir in ["specs", "tests/specs/good"] {
        let Ok(entries) = std::fs::read_dir(repo().join(dir)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("a readable directory entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// What a required variable (one with no default) stands for while the
/// schema is checked: its real value is only known where the spec runs.
const PLACEHOLDER: &str = "placeholder-for-a-required-variable";

/// Fills in `${VAR:-default}` with its default, as a run with the variable
/// unset would; a `${VAR}` with no default becomes a placeholder string and
/// its JSON pointer is recorded, so that errors about it can be ignored.
fn interpolate_with_defaults(node: &mut Node, pointer: &str, unresolved: &mut Vec<String>) {
    let pos = node.pos;
    match &mut node.value {
        Value::Scalar { text, plain } => {
            if text.contains('$') {
                let mut errors = Vec::new();
                let filled = substitute(text, pos, &|_| None, &mut errors);
                if errors.is_empty() {
                    *text = filled;
                } else {
                    *text = PLACEHOLDER.to_owned();
                    *plain = false;
                    unresolved.push(pointer.to_owned());
                }
            }
        }
        Value::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_with_defaults(item, &format!("{pointer}/{i}"), unresolved);
            }
        }
        Value::Map(entries) => {
            for (key, value) in entries.iter_mut() {
                let key = key.as_str().unwrap_or_default();
                let escaped = key.replace('~', "~0").replace('/', "~1");
                interpolate_with_defaults(value, &format!("{pointer}/{escaped}"), unresolved);
            }
        }
    }
}

/// The schema branch for node type `type_name`: each branch fixes `type`.
fn branch_for<'a>(schema: &'a serde_json::Value, type_name: &str) -> Option<&'a serde_json::Value> {
    schema
        .pointer("/properties/nodes/additionalProperties/oneOf")?
        .as_array()?
        .iter()
        .find(|branch| branch.pointer("/properties/type/const") == Some(&json!(type_name)))
}

/// Every schema error in `spec`, as `pointer: message`. The top level and
/// each node are checked apart, against the node's own branch, so that an
/// error names the value at fault rather than "matches none of the node
/// types".
fn schema_errors(schema: &serde_json::Value, text: &str) -> Vec<String> {
    schema_errors_as(schema, text, true)
}

/// As [`schema_errors`]; with `interpolate` false, of the spec as written,
/// `${VAR}`s and all: what an editor checks.
fn schema_errors_as(schema: &serde_json::Value, text: &str, interpolate: bool) -> Vec<String> {
    let mut root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => return vec![format!("{}: {}", e.pos, e.message)],
    };
    let mut unresolved = Vec::new();
    if interpolate {
        interpolate_with_defaults(&mut root, "", &mut unresolved);
    }
    let spec = root.to_json();
    let ignored = |pointer: &str| {
        unresolved
            .iter()
            .any(|u| pointer == u || pointer.starts_with(&format!("{u}/")))
    };
    let mut errors = Vec::new();

    let mut top = schema.clone();
    top["properties"]["nodes"]["additionalProperties"] = json!(true);
    let top = jsonschema::validator_for(&top).expect("the schema compiles");
    for error in top.iter_errors(&spec) {
        errors.push(format!("{}: {error}", error.instance_path()));
    }

    let nodes = spec.get("nodes").and_then(|n| n.as_object());
    for (id, node) in nodes.into_iter().flatten() {
        let type_name = node
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        let Some(branch) = branch_for(schema, type_name) else {
            errors.push(format!(
                "/nodes/{id}: no schema branch for type `{type_name}`"
            ));
            continue;
        };
        let validator = jsonschema::validator_for(branch).expect("a node type's schema compiles");
        for error in validator.iter_errors(node) {
            let pointer = format!("/nodes/{id}{}", error.instance_path());
            if !ignored(&pointer) {
                errors.push(format!("{pointer}: {error}"));
            }
        }
    }
    errors
}

#[test]
fn every_good_spec_is_valid_under_the_committed_schema() {
    let schema = committed_schema();
    let files = good_specs();
    assert!(files.contains(&"specs/hello.yaml".to_owned()), "{files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(repo().join(file)).expect("a readable spec");
        for error in schema_errors(&schema, &text) {
            failures.push(format!("{file}: {error}"));
        }
    }
    assert!(
        failures.is_empty(),
        "specs the schema refuses:\n{}",
        failures.join("\n")
    );
}

/// What the editor sees: the spec as written, `count: ${COUNT:-5}` and
/// all, before flowrun fills anything in.
#[test]
fn every_good_spec_as_written_is_valid_under_the_committed_schema() {
    let schema = committed_schema();
    let mut failures = Vec::new();
    for file in &good_specs() {
        let text = std::fs::read_to_string(repo().join(file)).expect("a readable spec");
        for error in schema_errors_as(&schema, &text, false) {
            failures.push(format!("{file}: {error}"));
        }
    }
    assert!(
        failures.is_empty(),
        "specs as written that the editor schema marks red:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_good_spec_points_editors_at_the_schema() {
    let mut failures = Vec::new();
    for file in good_specs() {
        let text = std::fs::read_to_string(repo().join(&file)).expect("a readable spec");
        let Some(target) = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# yaml-language-server: $schema="))
        else {
            failures.push(format!(
                "{file}: no `# yaml-language-server: $schema=` first line"
            ));
            continue;
        };
        let dir = repo().join(&file);
        let resolved = dir.parent().expect("a spec is in a directory").join(target);
        if !resolved.is_file() {
            failures.push(format!("{file}: `{target}` is not the schema file"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_schema_refuses_what_check_refuses() {
    // The validation above is only worth something if it can fail.
    let schema = committed_schema();
    let cases = [
        ("version: 1\nnodes:\n  g: {type: generate, cuont: 1}\n", "/nodes/g"),
        ("version: 1\nnodes:\n  g: {type: generate, count: five}\n", "/nodes/g/count"),
        ("version: 2\nnodes:\n  g: {type: generate}\n", "/version"),
        ("version: 1\nnodez: {}\n", ""),
        ("version: 1\nnodes:\n  g: {type: nosuch}\n", "/nodes/g"),
        (
            "version: 1\nnodes:\n  g: {type: generate}\n  p: {type: print, inputs: [{from: g, overflow: drop_newest}]}\n",
            "/nodes/p/inputs/0",
        ),
    ];
    for (spec, pointer) in cases {
        let errors = schema_errors(&schema, spec);
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("{pointer}: "))),
            "no schema error at `{pointer}` for:\n{spec}\nerrors: {errors:#?}"
        );
    }
}

#[test]
fn required_variables_are_placeholders_and_defaults_are_typed() {
    let schema = committed_schema();
    let spec = "version: 1\nnodes:\n  g:\n    type: generate\n    count: ${N:-3}\n    text: ${GREETING}\n  p: {type: print, inputs: [g]}\n";
    assert_eq!(schema_errors(&schema, spec), Vec::<String>::new());
    let wrong_default = "version: 1\nnodes:\n  g: {type: generate, count: \"${N:-many}\"}\n";
    assert!(
        schema_errors(&schema, wrong_default)
            .iter()
            .any(|e| e.starts_with("/nodes/g/count: ")),
        "a default of the wrong type is caught"
    );
}
