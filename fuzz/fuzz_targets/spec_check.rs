//! Arbitrary bytes through what `flowrun check` does with a spec file:
//! parse, interpolate, validate against the real node catalogue, and print
//! every diagnostic. Any panic (or overflow, or runaway allocation) is a bug:
//! bad input must end in a located error.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use flowrun_runtime::spec::interpolate::referenced_variables;
use flowrun_runtime::{validate, Catalogue};
use libfuzzer_sys::fuzz_target;

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(flowrun_nodes::catalogue)
}

/// One variable set, one unset, so that both interpolation paths run.
fn env(name: &str) -> Option<String> {
    (name == "FUZZ_SET").then(|| "value".to_owned())
}

fuzz_target!(|data: &[u8]| {
    // `flowrun check` reads the file as UTF-8 and reports anything else as
    // unreadable before the loader sees it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let checked = validate(Path::new("fuzz.yaml"), text, catalogue(), &env);
    for diagnostic in &checked.diagnostics {
        let _ = diagnostic.to_string();
    }
    if let Ok(root) = flowrun_runtime::spec::yaml::parse(text) {
        let _ = referenced_variables(&root);
    }
});
