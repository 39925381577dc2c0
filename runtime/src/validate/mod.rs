//! From YAML text to a [`Plan`], collecting every problem on the way.
//!
//! The checks run in layers, as dora's do, one file each: the YAML document
//! itself (`document.rs`), then each node on its own — its type, its engine
//! keys, its config (`node.rs`, its inputs in `inputs.rs`) — then the wiring
//! between nodes: dangling inputs, unknown ports, cycles (`wiring.rs`), then
//! payload kinds along the edges and warnings about the shape of the graph
//! (`kinds.rs`). Every layer reports all it finds; a later layer runs only on
//! what the earlier ones could make sense of, so one typo gives one error.

mod document;
mod inputs;
mod kinds;
mod node;
mod wiring;

use std::path::Path;

use crate::catalogue::Catalogue;
use crate::diagnostic::Diagnostic;
use crate::edge::Overflow;
use crate::plan::{Plan, PlannedNode};
use crate::port::{OutputPort, OutputRef};
use crate::spec::yaml::{PathStep, Pos};

/// The result of checking a spec: a plan when there were no errors, and
/// every diagnostic (errors and warnings) in file order.
pub struct Checked {
    pub plan: Option<Plan>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }
}

/// Reads and checks the spec at `path`, interpolating from the process environment.
pub fn load(path: &Path, catalogue: &Catalogue) -> Checked {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => validate(path, &text, catalogue, &|name| std::env::var(name).ok()),
        Err(error) => Checked {
            plan: None,
            diagnostics: vec![Diagnostic::error(
                &file,
                Pos { line: 1, column: 1 },
                format!("cannot read the spec: {error}"),
            )
            .hint("check the path and that the file is readable")],
        },
    }
}

/// Reads and checks the spec at `path` as [`load`] does, except that the
/// variables nodes read by themselves (S3 keys) need not be set: for
/// looking at a spec (`flowrun graph`, `flowrun diff`) on a machine that
/// does not run it.
pub fn load_shape(path: &Path, catalogue: &Catalogue) -> Checked {
    match std::fs::read_to_string(path) {
        Ok(text) => check(
            path,
            &text,
            catalogue,
            &|name| std::env::var(name).ok(),
            false,
        ),
        Err(_) => load(path, catalogue),
    }
}

/// Checks spec `text` (from `path`, for messages and relative paths).
pub fn validate(
    path: &Path,
    text: &str,
    catalogue: &Catalogue,
    env: &dyn Fn(&str) -> Option<String>,
) -> Checked {
    check(path, text, catalogue, env, true)
}

fn check(
    path: &Path,
    text: &str,
    catalogue: &Catalogue,
    env: &dyn Fn(&str) -> Option<String>,
    node_env: bool,
) -> Checked {
    let mut v = Validator {
        file: path.display().to_string(),
        catalogue,
        env,
        node_env,
        diagnostics: Vec::new(),
        broken: Vec::new(),
    };
    let plan = v.run(path, text);
    let mut diagnostics = v.diagnostics;
    diagnostics.sort();
    diagnostics.dedup();
    let plan = plan.filter(|_| !diagnostics.iter().any(Diagnostic::is_error));
    Checked { plan, diagnostics }
}

struct Validator<'a> {
    file: String,
    catalogue: &'a Catalogue,
    /// The environment the spec will run in: for `${VAR}`s, and for the
    /// variables nodes read by themselves.
    env: &'a dyn Fn(&str) -> Option<String>,
    /// Whether the variables nodes read by themselves must be set.
    node_env: bool,
    diagnostics: Vec<Diagnostic>,
    /// Values whose `${...}` could not be filled in, already reported.
    broken: Vec<Pos>,
}

/// The queue settings an input gave itself (capacity, overflow); the rest
/// are filled in once the upstream node is known.
type ExplicitQueue = (Option<usize>, Option<Overflow>);

/// A node's inputs, known even when its config has errors, so that wiring
/// mistakes are reported in the same run.
struct Wiring {
    id: String,
    id_pos: Pos,
    /// Its type's name and named outputs, for inputs that name a port of it.
    type_name: &'static str,
    ports: &'static [OutputPort],
    inputs: Vec<(OutputRef, Pos)>,
}

/// A node that passed its own checks, before wiring is checked.
struct Parsed {
    node: PlannedNode,
    /// Positions of each input entry, for wiring errors.
    input_pos: Vec<Pos>,
    /// The overflow each input asked for; the others take the upstream
    /// type's default, known once wiring is checked.
    explicit_queue: Vec<ExplicitQueue>,
    id_pos: Pos,
}

impl Validator<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<Option<String>>) {
        // What is left of a value after a failed interpolation would only give
        // a second, misleading error (an input from ``, a type mismatch).
        if self.broken.contains(&pos) {
            return;
        }
        let d = Diagnostic::error(&self.file, pos, message).with_hint(hint.into());
        self.diagnostics.push(d);
    }

    fn warning(&mut self, pos: Pos, message: impl Into<String>, hint: impl Into<Option<String>>) {
        let d = Diagnostic::warning(&self.file, pos, message).with_hint(hint.into());
        self.diagnostics.push(d);
    }

    fn type_list(&self) -> String {
        self.catalogue.names().collect::<Vec<_>>().join(", ")
    }
}

fn path_text(path: &[PathStep]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathStep::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathStep::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The field name in serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

#[cfg(test)]
mod tests;
