//! The README and the manual it points to stay true to the code: the node
//! catalogue (docs/DESIGN.md) says what `flowrun nodes` says, the Variables
//! table (docs/SPEC.md) names every variable a shipped spec or compose file
//! reads, and every spec file the README or a manual page names exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Markdown file of the repository, by its path from the root.
fn doc(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The README and the manual pages its sections moved to.
const DOCS: [&str; 6] = [
    "README.md",
    "docs/SPEC.md",
    "docs/TOPICS-AND-QOS.md",
    "docs/DOCKER.md",
    "docs/DESIGN.md",
    "docs/TESTING.md",
];

/// The pages whose links and anchors are checked: the manual and the guide
/// to writing a node type.
fn linked_pages() -> impl Iterator<Item = &'static str> {
    DOCS.into_iter().chain(["docs/WRITING-A-NODE.md"])
}

/// The rows of the first Markdown table after `heading`, as cells.
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("no `{heading}` heading"));
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
        table_after(&doc("docs/DESIGN.md"), "### Node catalogue")
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
        "docs/DESIGN.md's node catalogue differs from `flowrun nodes`"
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
    let documented: BTreeSet<String> = table_after(&doc("docs/SPEC.md"), "## Variables")
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
        "docs/SPEC.md's Variables table lacks {missing:?}"
    );
}

#[test]
fn every_spec_the_readme_names_exists() {
    let mut named = BTreeSet::new();
    for file in DOCS {
        let text = doc(file);
        for (at, _) in text.match_indices("specs/") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/-_.".contains(*c))
                .collect();
            if name.ends_with(".yaml") {
                named.insert((file, name));
            }
        }
    }
    assert!(
        named.contains(&("README.md", "specs/edge-bridge.yaml".to_owned())),
        "{named:?}"
    );
    for (file, name) in named {
        assert!(
            root().join(&name).is_file(),
            "{file} names {name}, which is missing"
        );
    }
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_`
/// dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown file's headings (outside code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut code = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            code = !code;
        } else if !code && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// `docs/../README.md` as `README.md`.
fn normalize(path: &std::path::Path) -> String {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::CurDir => {}
            other => parts.push(other.as_os_str()),
        }
    }
    parts
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The README's sections moved to docs/: every link on these pages reaches
/// a file, and a link into one of them a heading where it names one.
#[test]
fn every_link_between_the_docs_resolves() {
    let mut checked = 0;
    for file in linked_pages() {
        let text = doc(file);
        let dir = PathBuf::from(file).parent().unwrap().to_path_buf();
        for (at, _) in text.match_indices("](") {
            let target: String = text[at + 2..].chars().take_while(|c| *c != ')').collect();
            if target.contains("://") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let path = if path.is_empty() {
                file.to_string()
            } else {
                normalize(&dir.join(path))
            };
            assert!(
                root().join(&path).exists(),
                "{file} links to {target}: no such file"
            );
            // Anchors are checked on the pages the README's sections moved
            // between; other pages' headings are their own business.
            let moved = linked_pages().any(|page| page == path);
            if !fragment.is_empty() && moved {
                let headings = anchors(&doc(&path));
                assert!(
                    headings.contains(fragment),
                    "{file} links to {target}: no such heading"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
}

/// docs/WRITING-A-NODE.md shows `delay` as it is: its first Rust block is
/// nodes/src/delay.rs but the module comment.
#[test]
fn the_worked_example_is_nodes_delay() {
    let page = doc("docs/WRITING-A-NODE.md");
    let start = page.find("```rust\n").expect("a Rust block") + "```rust\n".len();
    let block = &page[start..start + page[start..].find("```\n").unwrap()];
    let source = doc("nodes/src/delay.rs");
    let code: String = source
        .lines()
        .skip_while(|l| l.starts_with("//!") || l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        block, code,
        "docs/WRITING-A-NODE.md's delay differs from nodes/src/delay.rs"
    );
}
