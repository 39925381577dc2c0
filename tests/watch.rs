//! Hot reload as users meet it: a running `flowrun run spec.yaml`, and the
//! spec read and saved the ways people and their tools do. Reading it must
//! print nothing at all; each save that changes the content must apply
//! exactly once, whatever way the file was written; a save that leaves the
//! content as it was, or a touch, changes nothing and says nothing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowrun_test_support::wait;

const FLOWRUN: &str = env!("CARGO_BIN_EXE_flowrun");
const LIMIT: Duration = Duration::from_secs(15);
/// How long a quiet process is watched for lines it should not print.
const QUIET: Duration = Duration::from_secs(3);

/// A spec whose one node carries `text`: each edit changes it.
fn spec(text: &str) -> String {
    format!(
        "version: 1\nname: watched\nnodes:\n  ticks:\n    type: generate\n    text: {text}\n    interval_ms: 100\n  out:\n    type: print\n    inputs: [ticks]\n"
    )
}

/// `flowrun run` on `path`, its stderr lines collected (INFO and up).
struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(path: &Path) -> Running {
        let mut child = Command::new(FLOWRUN)
            .args(["run", "--status-interval", "3600"])
            .arg(path)
            .env("FLOWRUN_LOG", "info")
            .env("FLOWRUN_STATE_DIR", path.parent().unwrap().join(".state"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flowrun starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let running = Running { child, lines };
        running.wait_for("the watch", |lines| {
            lines.iter().any(|l| l.contains("watching"))
        });
        running
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn count(&self, text: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(text)).count()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let held = wait::at_most(LIMIT).until(|| done(&self.lines()));
        assert!(
            held,
            "no {what} after {LIMIT:?}:\n{}",
            self.lines().join("\n")
        );
    }

    /// Waits for the `n`th reload, which must be the edit `from → to`.
    fn wait_reload(&self, n: usize, from: &str, to: &str, how: &str) {
        self.wait_for(&format!("reload after {how}"), |lines| {
            lines.iter().filter(|l| l.contains("reloaded ")).count() >= n
        });
        let change = format!("~ ticks: text {from} → {to}");
        assert!(
            self.count(&change) == 1,
            "{how}: expected one `{change}`:\n{}",
            self.lines().join("\n")
        );
    }

    /// Asserts that nothing more is printed for [`QUIET`].
    fn assert_quiet(&self, after: &str) {
        let before = self.lines().len();
        // The assertion is that nothing happens: there is no event to wait for.
        std::thread::sleep(QUIET);
        let lines = self.lines();
        assert_eq!(
            lines.len(),
            before,
            "flowrun printed after {after}:\n{}",
            lines[before..].join("\n")
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(program: &str, args: &[&str], dir: &Path) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn git(dir: &Path, args: &[&str]) {
    let mut all = vec!["-c", "user.name=t", "-c", "user.email=t@example.org"];
    all.extend_from_slice(args);
    run("git", &all, dir);
}

#[test]
fn reads_print_nothing_and_every_save_pattern_applies_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let path = root.join("spec.yaml");
    // A commit to check out later, as `git checkout` writes it.
    std::fs::write(&path, spec("v6")).unwrap();
    git(root, &["init", "-q"]);
    git(root, &["add", "spec.yaml"]);
    git(root, &["commit", "-q", "-m", "v6"]);
    git(root, &["tag", "six"]);
    std::fs::write(&path, spec("v0")).unwrap();
    let flowrun = Running::start(&path);

    // Reads: cat, cp from it, flowrun check of it, and a plain open.
    run("cat", &["spec.yaml"], root);
    run("cp", &["spec.yaml", "copy.yaml"], root);
    run(FLOWRUN, &["check", "spec.yaml"], root);
    drop(std::fs::File::open(&path).unwrap());
    flowrun.assert_quiet("reads of the spec");

    // 1. Written in place, without truncating (same length).
    {
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all(spec("v1").as_bytes()).unwrap();
    }
    flowrun.wait_reload(1, "v0", "v1", "a write in place");
    // 2. Truncated and written, as most programs write a file.
    std::fs::write(&path, spec("v2")).unwrap();
    flowrun.wait_reload(2, "v1", "v2", "truncate + write");
    // 3. Written to a temporary file renamed over it (vim, VS Code).
    std::fs::write(root.join(".spec.yaml.tmp"), spec("v3")).unwrap();
    std::fs::rename(root.join(".spec.yaml.tmp"), &path).unwrap();
    flowrun.wait_reload(3, "v2", "v3", "write + rename");
    // 4. sed -i (its own temporary file and rename).
    run("sed", &["-i", "s/text: v3/text: v4/", "spec.yaml"], root);
    flowrun.wait_reload(4, "v3", "v4", "sed -i");
    // 5. cp over it.
    std::fs::write(root.join("other.yaml"), spec("v5")).unwrap();
    run("cp", &["other.yaml", "spec.yaml"], root);
    flowrun.wait_reload(5, "v4", "v5", "cp over it");
    // 6. git checkout of another version.
    git(root, &["checkout", "-q", "six", "--", "spec.yaml"]);
    flowrun.wait_reload(6, "v5", "v6", "git checkout");
    // 7. Deleted, then created again.
    std::fs::remove_file(&path).unwrap();
    flowrun.wait_for("word that the spec is gone", |lines| {
        lines.iter().any(|l| l.contains("spec.yaml is gone"))
    });
    std::fs::write(&path, spec("v7")).unwrap();
    flowrun.wait_reload(7, "v6", "v7", "delete + create");

    // Saves that change nothing: the same bytes again, a touch.
    std::fs::write(root.join(".same.tmp"), spec("v7")).unwrap();
    std::fs::rename(root.join(".same.tmp"), &path).unwrap();
    run("touch", &["spec.yaml"], root);
    run("cat", &["spec.yaml"], root);
    flowrun.assert_quiet("a save of the same content and a touch");

    // A broken save is refused once, not again and again.
    std::fs::write(&path, "version: 1\nnodes:\n  ticks: {type: generat}\n").unwrap();
    flowrun.wait_for("refusal", |lines| {
        lines
            .iter()
            .any(|l| l.contains("reload of spec.yaml refused"))
    });
    flowrun.assert_quiet("a refused save");
    assert_eq!(flowrun.count("unknown node type `generat`"), 1);

    assert_eq!(
        flowrun.count("reloaded "),
        7,
        "{}",
        flowrun.lines().join("\n")
    );
    assert_eq!(flowrun.count("nothing to change"), 0);
}

/// A spec mounted from a Kubernetes ConfigMap: `spec.yaml -> ..data/spec.yaml`,
/// `..data -> ..<version>`, updated by renaming a new `..data` link over the
/// old one and removing the old version's directory.
#[test]
fn a_configmap_style_symlink_swap_applies_once_per_update() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let version = |n: u32| -> PathBuf {
        let dir = root.join(format!("..v{n}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("spec.yaml"), spec(&format!("v{n}"))).unwrap();
        dir
    };
    version(0);
    std::os::unix::fs::symlink("..v0", root.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/spec.yaml", root.join("spec.yaml")).unwrap();
    let flowrun = Running::start(&root.join("spec.yaml"));
    for n in 1..=3u32 {
        version(n);
        std::os::unix::fs::symlink(format!("..v{n}"), root.join("..data_tmp")).unwrap();
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
        std::fs::remove_dir_all(root.join(format!("..v{}", n - 1))).unwrap();
        flowrun.wait_reload(
            n as usize,
            &format!("v{}", n - 1),
            &format!("v{n}"),
            "a ConfigMap update",
        );
    }
    // An edit of the file the links lead to, in place.
    std::fs::write(root.join("..v3/spec.yaml"), spec("v4")).unwrap();
    flowrun.wait_reload(4, "v3", "v4", "an edit of the linked file");
    flowrun.assert_quiet("the last update");
    assert_eq!(flowrun.count("reloaded "), 4);
}

/// Editor autosave: 50 saves in 5 s, 10 distinct contents among them.
/// Each distinct content is applied at most once in a row, the last one
/// is what runs, and flowrun stays quiet once the saves stop.
#[test]
fn an_autosave_burst_applies_only_distinct_contents_and_settles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec("v0")).unwrap();
    let flowrun = Running::start(&path);
    let cpu_before = cpu_seconds(flowrun.child.id());
    for save in 1..=50u32 {
        // The content changes every 5th save; the others save it unchanged.
        let text = format!("v{}", save.div_ceil(5));
        let aside = dir.path().join(".spec.yaml.swp");
        std::fs::write(&aside, spec(&text)).unwrap();
        std::fs::rename(&aside, &path).unwrap();
        // The autosave's pace, part of the scenario: not a wait for anything.
        std::thread::sleep(Duration::from_millis(100));
    }
    flowrun.wait_for("the last content applied", |lines| {
        lines.iter().any(|l| l.contains("→ v10"))
    });
    flowrun.assert_quiet("the autosave burst");
    // Ten reloads of a two-node graph, and a ticker: far under a core-second.
    let cpu = cpu_seconds(flowrun.child.id()) - cpu_before;
    assert!(cpu < 2.0, "{cpu:.2} CPU seconds over the burst");
    let reloads = flowrun.count("reloaded ");
    assert!(
        (1..=10).contains(&reloads),
        "{reloads} reloads for 10 distinct contents:\n{}",
        flowrun.lines().join("\n")
    );
    assert_eq!(flowrun.count("nothing to change"), 0);
}

/// User + system CPU time of process `pid` so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}
