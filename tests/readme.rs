//! The README stays true to the code: its node catalogue says what
//! `flowrun nodes` says, its Variables table names every variable a shipped
//! spec or compose file reads, and every spec file it names exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The rows of the first Markdown table after `heading`, as cells.
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no `{heading}`"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // the header and its `| --- |` line
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

fn stdout(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_flowrun"))
        .args(args)
        // `check` refuses a spec whose node needs keys that are not set.
        .env("AWS_ACCESS_KEY_ID", "id")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "flowrun {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_node_catalogue_table_is_what_flowrun_nodes_says() {
    // `type — description` then `  input: …    output: …`.
    let listing = stdout(&["nodes"]);
    let mut expected = BTreeMap::new();
    let mut lines = listing.lines().peekable();
    while let Some(line) = lines.next() {
        // A type's header starts the line; its keys are indented.
        let header = line.split_once(" — ").filter(|_| !line.starts_with(' '));
        let Some((name, description)) = header else {
            continue;
        };
        let io = lines.next().unwrap_or_default();
        let (input, output) = io
            .trim()
            .strip_prefix("input: ")
            .and_then(|rest| rest.split_once("    output: "))
            .unwrap_or_else(|| panic!("`flowrun nodes` changed its layout: {io}"));
        let short = |kind: &str| match kind {
            "nothing (a source)" | "nothing (a sink)" => "—".to_owned(),
            "same as input" => "same".to_owned(),
            other => other.to_owned(),
        };
        expected.insert(
            format!("`{name}`"),
            (short(input), short(output), description.to_owned()),
        );
    }
    assert!(expected.len() >= 13, "{listing}");
    let documented: BTreeMap<String, (String, String, String)> =
        table_after(&readme(), "### Node catalogue")
            .into_iter()
            .map(|row| {
                assert_eq!(row.len(), 4, "{row:?}");
                (
                    row[0].clone(),
                    (row[1].clone(), row[2].clone(), row[3].clone()),
                )
            })
            .collect();
    assert_eq!(
        documented, expected,
        "README.md's node catalogue differs from `flowrun nodes`"
    );
}

/// Every variable the shipped specs read: what `flowrun check` reports, and
/// the names handed to nodes (`access_key_id_env: NAME`).
fn spec_variables() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let specs: Vec<PathBuf> = std::fs::read_dir(root().join("specs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    for spec in &specs {
        let summary = stdout(&["check", spec.to_str().unwrap()]);
        if let Some((_, reads)) = summary.split_once("; reads ") {
            names.extend(reads.trim().split(", ").map(String::from));
        }
        for line in std::fs::read_to_string(spec).unwrap().lines() {
            if let Some((key, value)) = line.split_once(':') {
                if key.trim().ends_with("_env") {
                    names.insert(value.trim().to_owned());
                }
            }
        }
    }
    names
}

/// `${NAME…}` in the compose files.
fn compose_variables() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for file in ["docker/edge/compose.yaml", "docker/cloud/compose.yaml"] {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        for (at, _) in text.match_indices("${") {
            let name: String = text[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    names
}

#[test]
fn the_variables_table_names_every_variable_specs_and_compose_files_read() {
    let documented: BTreeSet<String> = table_after(&readme(), "## Variables")
        .iter()
        .flat_map(|row| {
            row[0]
                .split(", ")
                .map(|n| n.trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut read = spec_variables();
    read.extend(compose_variables());
    let missing: Vec<&String> = read.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "README.md's Variables table lacks {missing:?}"
    );
}

#[test]
fn every_spec_the_readme_names_exists() {
    let text = readme();
    let mut named = BTreeSet::new();
    for (at, _) in text.match_indices("specs/") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "/-_.".contains(*c))
            .collect();
        if name.ends_with(".yaml") {
            named.insert(name);
        }
    }
    assert!(named.contains("specs/edge-bridge.yaml"), "{named:?}");
    for name in named {
        assert!(
            root().join(&name).is_file(),
            "README.md names {name}, which is missing"
        );
    }
}
