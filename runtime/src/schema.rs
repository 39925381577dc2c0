//! The JSON Schema of a whole spec, generated from the catalogue.
//!
//! Each node type contributes one branch: its config schema plus the engine's
//! keys (`type` fixed to the type's name, `inputs`, `on_failure`). Editors
//! that read the `# yaml-language-server: $schema=` line complete and check
//! specs with it.

use serde_json::{json, Value};

use crate::catalogue::{inline_schema, Catalogue, NodeType};
use crate::spec::{InputSpec, OnFailure, VERSION};

/// The schema of a spec that may use every type in `catalogue`.
pub fn spec_schema(catalogue: &Catalogue) -> Value {
    let inputs = json!({
        "description": "The nodes that feed this one: ids (a node's default output) or `node.port` (a named output, such as `store.dead_letter`), or {from, capacity, overflow} for per-input queue settings.",
        "type": "array",
        "items": inline_schema::<InputSpec>(),
    });
    let on_failure = inline_schema::<OnFailure>();
    let branches: Vec<Value> = catalogue
        .types()
        .map(|t| {
            let mut schema = t.schema.clone();
            // Config schemas of structs are objects; anything else is left as is.
            if let Some(object) = schema.as_object_mut() {
                object.insert("title".into(), json!(t.name));
                object.insert("description".into(), json!(describe(t)));
                if !t.ports.is_empty() {
                    // Machine-readable too, for tools that draw or wire specs.
                    let ports: serde_json::Map<String, Value> = t
                        .ports
                        .iter()
                        .map(|p| {
                            let port =
                                json!({"kind": p.kind.to_string(), "description": p.description});
                            (p.name.to_owned(), port)
                        })
                        .collect();
                    object.insert("x-flowrun-outputs".into(), Value::Object(ports));
                }
                if let Some(properties) = object
                    .entry("properties")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    properties.insert(
                        "type".into(),
                        json!({"const": t.name, "description": t.description}),
                    );
                    if !t.is_source() {
                        properties.insert("inputs".into(), inputs.clone());
                    }
                    properties.insert("on_failure".into(), on_failure.clone());
                }
                if let Some(list) = object
                    .entry("required")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                {
                    list.insert(0, json!("type"));
                }
                object.insert("additionalProperties".into(), json!(false));
            }
            schema
        })
        .collect();
    let mut schema = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://flowrun.dev/schemas/flowrun.schema.json",
        "title": "flowrun spec",
        "description": "A graph of nodes that flowrun runs. Values may use ${VAR} and ${VAR:-default}.",
        "type": "object",
        "additionalProperties": false,
        "required": ["version", "nodes"],
        "properties": {
            "version": {"const": VERSION, "description": "The spec format version."},
            "name": {"type": "string", "description": "A name for logs and metrics; defaults to the file name."},
            "description": {"type": "string", "description": "What this spec is for."},
            "nodes": {
                "type": "object",
                "description": "The nodes, by id.",
                "propertyNames": {"pattern": "^[A-Za-z][A-Za-z0-9_-]*$"},
                "additionalProperties": {"oneOf": branches},
            }
        }
    });
    allow_placeholders(&mut schema);
    schema
}

/// A type's description, with its named outputs (for the editor's hover):
/// `… Outputs: dead_letter (bytes): …, as `inputs: [node.dead_letter]`.`
fn describe(t: &NodeType) -> String {
    if t.ports.is_empty() {
        return t.description.to_owned();
    }
    let ports: Vec<String> = t
        .ports
        .iter()
        .map(|p| format!("`{}` ({}): {}", p.name, p.kind, p.description))
        .collect();
    format!(
        "{}. Named outputs, taken as `inputs: [node.port]`: {}",
        t.description,
        ports.join("; ")
    )
}

/// A `${VAR}` placeholder as an editor sees it before flowrun fills it in:
/// a string, where the schema may want a number or a boolean.
fn placeholder() -> Value {
    json!({
        "type": "string",
        "pattern": "\\$\\{[^}]+\\}",
        "description": "A ${VAR} or ${VAR:-default} that flowrun fills in from the environment."
    })
}

/// Lets every number, integer, boolean or enum in `schema` also be a
/// `${VAR}` placeholder, so that the editor schema accepts specs as they are
/// written (`count: ${COUNT:-5}`, `emit: ${TRACK:-all}`) and still checks
/// typed values and words. Free strings need nothing: a placeholder is one.
/// A string `const` stays as it is: it tells a node type's branch apart
/// (`type: delay`), and that is never a variable.
fn allow_placeholders(schema: &mut Value) {
    match schema {
        Value::Array(items) => items.iter_mut().for_each(allow_placeholders),
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                // Literal values (`const`, `enum`, `default`, examples) are not schemas.
                if !matches!(key.as_str(), "const" | "enum" | "default" | "examples") {
                    allow_placeholders(value);
                }
            }
            if refuses_placeholder(object) {
                let mut wrapper = serde_json::Map::new();
                for key in ["description", "default", "title"] {
                    if let Some(value) = object.remove(key) {
                        wrapper.insert(key.into(), value);
                    }
                }
                let original = Value::Object(std::mem::take(object));
                wrapper.insert("anyOf".into(), json!([original, placeholder()]));
                *object = wrapper;
            }
        }
        _ => {}
    }
}

/// Whether a (sub)schema refuses a `${VAR}` as written: typed as number,
/// integer or boolean, an enum of any values, or a const that is not text.
fn refuses_placeholder(object: &serde_json::Map<String, Value>) -> bool {
    let scalar = |t: &Value| matches!(t.as_str(), Some("integer" | "number" | "boolean"));
    let typed = match object.get("type") {
        Some(Value::Array(types)) => {
            !types.is_empty() && types.iter().all(|t| scalar(t) || t == "null")
        }
        Some(t) => scalar(t),
        None => false,
    };
    let enumerated = object.get("enum").is_some_and(Value::is_array)
        || object.get("const").is_some_and(|v| !v.is_string());
    // An enum whose words each carry a doc comment is a `oneOf` of string
    // consts (`overflow: block | drop_oldest`): a word from a list, so it
    // takes a placeholder too (`overflow: "${CAMERA_OVERFLOW:-block}"`).
    let documented_words = object
        .get("oneOf")
        .and_then(Value::as_array)
        .is_some_and(|words| {
            !words.is_empty()
                && words
                    .iter()
                    .all(|w| w.get("const").is_some_and(Value::is_string))
        });
    typed || enumerated || documented_words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_booleans_also_take_a_placeholder() {
        let mut schema = json!({
            "properties": {
                "count": {"type": "integer", "minimum": 0, "description": "How many."},
                "text": {"type": "string"},
                "qos": {"enum": [0, 1, 2], "default": 1},
                "opt": {"type": ["integer", "null"]},
                "emit": {"type": "string", "enum": ["all", "best"]},
                "type": {"const": "delay"},
                "overflow": {"description": "When full.", "oneOf": [
                    {"const": "block", "type": "string", "description": "Wait."},
                    {"const": "drop_oldest", "type": "string", "description": "Drop."}
                ]}
            }
        });
        allow_placeholders(&mut schema);
        let count = &schema["properties"]["count"];
        assert_eq!(count["description"], "How many.");
        assert_eq!(count["anyOf"][0], json!({"type": "integer", "minimum": 0}));
        assert_eq!(count["anyOf"][1]["type"], "string");
        assert_eq!(schema["properties"]["text"], json!({"type": "string"}));
        assert_eq!(schema["properties"]["qos"]["default"], 1);
        assert!(schema["properties"]["opt"]["anyOf"].is_array());
        // A word from a list takes a placeholder too (`emit: ${TRACK:-all}`);
        // the node type's name does not.
        let emit = &schema["properties"]["emit"];
        assert_eq!(emit["anyOf"][0]["enum"], json!(["all", "best"]));
        // So does one whose words are documented one by one.
        let overflow = &schema["properties"]["overflow"];
        assert_eq!(overflow["description"], "When full.");
        assert_eq!(overflow["anyOf"][0]["oneOf"][1]["const"], "drop_oldest");
        assert_eq!(overflow["anyOf"][1]["type"], "string");
        assert_eq!(schema["properties"]["type"], json!({"const": "delay"}));
    }
}
