//! Named output ports as a user meets them: a spec wiring `cos_put`'s
//! `store.dead_letter` into a second store checks, draws its port edge
//! labelled, and runs — each refused payload arrives in the dead-letter
//! folder with the reason beside it; a misspelt port is refused with the
//! located message naming the ports the node has.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const FLOWRUN: &str = env!("CARGO_BIN_EXE_flowrun");

/// How long one flowrun command may take; generous for a loaded CI.
const BOUND: Duration = Duration::from_secs(60);

/// `flowrun ARGS` in `dir`, killed if it has not finished within [`BOUND`].
fn flowrun(dir: &Path, args: &[&str]) -> Output {
    let child = Command::new(FLOWRUN)
        .args(args)
        .current_dir(dir)
        .env_remove("FLOWRUN_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowrun starts");
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(BOUND) {
        Ok(output) => output.expect("flowrun's output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!(
                "`flowrun {}` did not finish within {BOUND:?}",
                args.join(" ")
            );
        }
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Two notes that are not images: the store refuses both, and its
/// `dead_letter` port takes them to a folder of their own.
const SPEC: &str = "version: 1
name: dead-letters
nodes:
  notes:
    type: generate
    count: 2
    text: not an image
    require_ack: true
  store:
    type: cos_put
    inputs: [notes]
    accept: [image/png]
    backend: {fs: {root: bucket}}
  refused:
    type: cos_put
    inputs: [store.dead_letter]
    key: \"{meta.dead_letter_key}\"
    backend: {fs: {root: dead, metadata_file: true}}
";

#[test]
fn a_dead_letter_port_wired_to_a_store_checks_draws_and_runs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("spec.yaml"), SPEC).expect("write the spec");
    for folder in ["bucket", "dead"] {
        std::fs::create_dir(dir.path().join(folder)).expect("a folder");
    }

    let checked = flowrun(dir.path(), &["check", "spec.yaml"]);
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(
        text(&checked).contains("3 nodes, 2 edges"),
        "{}",
        text(&checked)
    );

    let mermaid = flowrun(dir.path(), &["graph", "spec.yaml"]);
    assert!(mermaid.status.success(), "{}", text(&mermaid));
    let drawn = String::from_utf8_lossy(&mermaid.stdout);
    assert!(
        drawn.contains("store -->|\"dead_letter: bytes\"| refused"),
        "no labelled port edge in:\n{drawn}"
    );
    let dot = flowrun(dir.path(), &["graph", "--format", "dot", "spec.yaml"]);
    let drawn = String::from_utf8_lossy(&dot.stdout);
    assert!(
        drawn.contains("\"store\" -> \"refused\" [label=\"dead_letter: bytes\"]"),
        "no labelled port edge in:\n{drawn}"
    );

    // `require_ack` makes the run fail unless the refusing store's dead
    // letters were acknowledged by the node taking its port.
    let ran = flowrun(dir.path(), &["run", "--no-watch", "spec.yaml"]);
    assert_eq!(ran.status.code(), Some(0), "{}", text(&ran));
    assert!(
        std::fs::read_dir(dir.path().join("bucket"))
            .expect("the bucket")
            .next()
            .is_none(),
        "nothing stored in the bucket"
    );
    for n in 0..2 {
        let key = format!("test{n}.txt");
        let payload = std::fs::read(dir.path().join("dead").join(&key))
            .unwrap_or_else(|e| panic!("no dead letter {key}: {e}\n{}", text(&ran)));
        assert_eq!(payload, b"not an image");
        let meta = std::fs::read(dir.path().join("dead").join(format!("{key}.meta.json")))
            .expect("the dead letter's metadata");
        let meta: serde_json::Value = serde_json::from_slice(&meta).expect("JSON metadata");
        assert_eq!(meta["dead_letter_key"], key.as_str());
        let reason = meta["dead_letter_reason"].as_str().unwrap_or_default();
        assert!(reason.contains("not stored"), "{meta}");
        assert_eq!(meta["source"], "notes", "{meta}");
    }
    assert!(
        text(&ran).contains("dead_lettered=2"),
        "the store's counter: {}",
        text(&ran)
    );
}

#[test]
fn a_misspelt_port_is_refused_with_the_ports_the_node_has() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let spec = SPEC.replace("store.dead_letter", "store.dead_leter");
    std::fs::write(dir.path().join("spec.yaml"), spec).expect("write the spec");
    for command in [&["check", "spec.yaml"][..], &["graph", "spec.yaml"]] {
        let refused = flowrun(dir.path(), command);
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
        let said = text(&refused);
        assert!(
            said.contains(
                "spec.yaml:16:14: error: node `refused` takes input from `store.dead_leter`, \
                 but node `store` (cos_put) has no output `dead_leter`"
            ),
            "{said}"
        );
        assert!(
            said.contains("does node `store` declare output `dead_leter`? it has: dead_letter"),
            "{said}"
        );
    }
}

#[test]
fn flowrun_nodes_lists_a_types_named_outputs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let listed = flowrun(dir.path(), &["nodes", "cos_put"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let said = String::from_utf8_lossy(&listed.stdout);
    assert!(
        said.lines()
            .any(|l| l.starts_with("  output .dead_letter: bytes — each message it refuses")),
        "{said}"
    );
    let generate = flowrun(dir.path(), &["nodes", "generate"]);
    assert!(
        !String::from_utf8_lossy(&generate.stdout).contains("output ."),
        "a type without named outputs lists none"
    );
}

#[test]
fn diff_names_a_port_an_input_moved_to() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("new.yaml"), SPEC).expect("write the spec");
    let old = SPEC.replace("inputs: [store.dead_letter]", "inputs: [notes]");
    std::fs::write(dir.path().join("old.yaml"), old).expect("write the spec");
    let diff = flowrun(dir.path(), &["diff", "old.yaml", "new.yaml"]);
    assert!(diff.status.success(), "{}", text(&diff));
    assert!(
        text(&diff).contains("refused: inputs notes → store.dead_letter"),
        "{}",
        text(&diff)
    );
}
