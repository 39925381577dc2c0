//! The JSON Schema of a whole spec, generated from the catalogue.
//!
//! Each node type contributes one branch: its config schema plus the engine's
//! keys (`type` fixed to the type's name, `inputs`, `on_failure`). Editors
//! that read the `# yaml-language-server: $schema=` line complete and check
//! specs with it.

use serde_json::{json, Value};

use crate::catalogue::{inline_schema, Catalogue};
use crate::spec::{InputSpec, OnFailure, VERSION};

/// The schema of a spec that may use every type in `catalogue`.
pub fn spec_schema(catalogue: &Catalogue) -> Value {
    let inputs = json!({
        "description": "The nodes that feed this one: ids, or {from, capacity, overflow} for per-input queue settings.",
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
                object.insert("description".into(), json!(t.description));
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
    json!({
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
    })
}
