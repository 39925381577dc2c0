//! The fuzz target's inputs replayed in the ordinary test run, without
//! libFuzzer: every file in `fuzz/regressions/` (hostile inputs written by
//! hand and any crash `bench/fuzz/run.sh` ever found) goes through what
//! `flowrun check` does with a spec, as `fuzz/fuzz_targets/spec_check.rs`
//! does. Each must end in a plan or in located errors, never a panic.

use std::path::Path;

use flowrun_runtime::spec::interpolate::referenced_variables;

#[test]
fn fuzz_regressions_end_in_located_errors_not_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let catalogue = flowrun_nodes::catalogue();
    let env = |name: &str| (name == "FUZZ_SET").then(|| "value".to_owned());
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let checked = flowrun_runtime::validate(Path::new("fuzz.yaml"), text, &catalogue, &env);
        let errors: Vec<String> = checked.errors().map(ToString::to_string).collect();
        assert!(
            checked.plan.is_some() || !errors.is_empty(),
            "{}: neither a plan nor an error",
            path.display()
        );
        for error in &errors {
            assert!(
                error.starts_with("fuzz.yaml:"),
                "{}: an error without a place: {error}",
                path.display()
            );
        }
        if let Ok(root) = flowrun_runtime::spec::yaml::parse(text) {
            referenced_variables(&root);
        }
        replayed += 1;
    }
    assert!(replayed >= 9, "only {replayed} inputs in {}", dir.display());
}
