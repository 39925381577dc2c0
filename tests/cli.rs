//! The `flowrun` command as a user meets it: `graph`, `nodes`, the help
//! texts, and `run` — its output, its exit codes, SIGTERM, a failing node,
//! `--metrics` and `--log-format json`.
//!
//! Every wait has a deadline: a process is polled until it says what the
//! test waits for, and killed when the deadline passes.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use flowrun_test_support::{free_port, http, wait};

const FLOWRUN: &str = env!("CARGO_BIN_EXE_flowrun");

/// How long anything in these tests may take; generous for a loaded CI.
const BOUND: Duration = Duration::from_secs(30);

/// How often a condition is polled while waiting for it.
const POLL: Duration = Duration::from_millis(20);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn flowrun() -> Command {
    let mut command = Command::new(FLOWRUN);
    command
        .current_dir(repo())
        .env_remove("COUNT")
        .env_remove("FLOWRUN_LOG");
    command
}

/// A flowrun process whose output is collected as it comes, so a test can
/// wait for a line and still read everything at the end.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut text = into.lock().expect("the output lock");
            text.push_str(&line);
            text.push('\n');
        }
    })
}

impl Running {
    fn start(command: &mut Command) -> Running {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("flowrun starts");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), stdout.clone()),
            collect(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Running {
            child,
            stdout,
            stderr,
            readers,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().expect("the output lock").clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().expect("the output lock").clone()
    }

    /// Polls `ready` until it holds, or panics with what was printed.
    fn wait_for(&mut self, what: &str, ready: impl Fn(&Running) -> bool) {
        // `Some(None)`: ready; `Some(Some(status))`: exited before it.
        let outcome = wait::at_most(BOUND).every(POLL).poll(|| {
            if ready(self) {
                return Some(None);
            }
            match self.child.try_wait() {
                Ok(Some(status)) => Some((!ready(self)).then_some(status)),
                _ => None,
            }
        });
        match outcome {
            Some(None) => {}
            Some(Some(status)) => panic!(
                "flowrun exited ({status}) before {what}\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            ),
            None => panic!(
                "no {what} within {BOUND:?}\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            ),
        }
    }

    fn terminate(&self) {
        // The shell's built-in `kill`: a minimal system may have no kill binary.
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("kill -TERM {}", self.child.id()))
            .status()
            .expect("sh runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit within `bound`, then for its output.
    fn finish(mut self, bound: Duration) -> (ExitStatus, String, String) {
        let status = wait::at_most(bound)
            .every(POLL)
            .poll(|| self.child.try_wait().expect("the child can be waited on"));
        let Some(status) = status else {
            panic!(
                "flowrun did not exit within {bound:?}\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
        };
        // The pipes close with the process, so the readers end now.
        for reader in self.readers.drain(..) {
            reader.join().expect("an output reader");
        }
        (status, self.stdout(), self.stderr())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that failed half-way must not leave flowrun running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a command that should end by itself, within the bound.
fn output(command: &mut Command) -> Output {
    let (status, stdout, stderr) = Running::start(command).finish(BOUND);
    Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes `spec` into a fresh directory and returns both.
fn spec_file(spec: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).expect("write the spec");
    (dir, path)
}

/// A spec whose source never ends: it runs until it is told to stop.
const FOREVER: &str = "version: 1
name: forever
nodes:
  gen: {type: generate, interval_ms: 10, text: tick}
  out: {type: print, inputs: [gen]}
";

#[test]
fn graph_draws_the_nodes_and_edges_in_mermaid_by_default() {
    let out = output(flowrun().args(["graph", "specs/hello.yaml"]));
    let text = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(text.starts_with("flowchart LR\n"), "{text}");
    for node in ["ticks", "relay", "out"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(node) && l.contains(&format!("{node}<br/>"))),
            "no node `{node}` in:\n{text}"
        );
    }
    for edge in ["ticks -->|\"bytes\"| relay", "relay -->|\"bytes\"| out"] {
        assert!(text.contains(edge), "no edge `{edge}` in:\n{text}");
    }
}

#[test]
fn graph_draws_the_nodes_and_edges_in_dot() {
    let out = output(flowrun().args(["graph", "--format", "dot", "specs/hello.yaml"]));
    let text = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(text.starts_with("digraph \"hello\" {"), "{text}");
    assert!(text.trim_end().ends_with('}'), "{text}");
    for (node, node_type) in [
        ("ticks", "generate"),
        ("relay", "passthrough"),
        ("out", "print"),
    ] {
        assert!(
            text.contains(&format!("\"{node}\" [")) && text.contains(&format!("({node_type})")),
            "no node `{node}` ({node_type}) in:\n{text}"
        );
    }
    for edge in ["\"ticks\" -> \"relay\"", "\"relay\" -> \"out\""] {
        assert!(text.contains(edge), "no edge `{edge}` in:\n{text}");
    }
}

#[test]
fn graph_of_an_invalid_spec_prints_the_errors_and_no_graph() {
    let (_dir, path) = spec_file("version: 1\nnodes:\n  out: {type: print, inputs: [nope]}\n");
    let out = output(flowrun().arg("graph").arg(&path));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout_of(&out).is_empty(), "{}", stdout_of(&out));
    assert!(
        stderr_of(&out).contains(
            "spec.yaml:3:31: error: node `out` takes input from `nope`, which is not a node"
        ),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn nodes_lists_every_registered_type_with_its_description_and_kinds() {
    let out = output(flowrun().arg("nodes"));
    let text = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let catalogue = flowrun_nodes::catalogue();
    assert!(catalogue.types().count() >= 4);
    for t in catalogue.types() {
        assert!(
            text.contains(&format!("{} — {}\n", t.name, t.description)),
            "`{}` is not listed with its description:\n{text}",
            t.name
        );
        assert!(
            text.contains(&format!("  input: {}    output: {}\n", t.inputs, t.output)),
            "`{}` has no input/output line:\n{text}",
            t.name
        );
    }
}

#[test]
fn nodes_of_one_type_shows_every_config_key_with_its_default() {
    for t in flowrun_nodes::catalogue().types() {
        let out = output(flowrun().args(["nodes", t.name]));
        let text = stdout_of(&out);
        assert!(out.status.success(), "{}", stderr_of(&out));
        assert!(text.starts_with(&format!("{} — ", t.name)), "{text}");
        for key in t.config_keys() {
            let line = text
                .lines()
                .find(|l| {
                    l.starts_with(&format!("    {key} ("))
                        || l.starts_with(&format!("    {key}[] ("))
                })
                .unwrap_or_else(|| panic!("`{}` does not show key `{key}`:\n{text}", t.name));
            let default = t
                .schema
                .pointer(&format!("/properties/{key}/default"))
                .filter(|d| !d.is_null());
            if let Some(default) = default {
                assert!(
                    line.contains(&format!("default {default}")),
                    "`{line}` does not show the default {default}"
                );
            }
        }
    }
    let out = output(flowrun().args(["nodes", "generate"]));
    let text = stdout_of(&out);
    assert!(
        text.contains("    size (integer, default 1024): "),
        "{text}"
    );
    assert!(
        text.contains("    interval_ms (integer, default 0): "),
        "{text}"
    );
    assert!(
        text.contains("    require_ack (boolean, default false): "),
        "{text}"
    );
    assert!(
        !text.contains("files —"),
        "only the one type is shown:\n{text}"
    );
}

#[test]
fn nodes_of_an_unknown_type_fails_with_a_suggestion() {
    let out = output(flowrun().args(["nodes", "genrate"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout_of(&out).is_empty());
    assert_eq!(
        stderr_of(&out),
        "flowrun: unknown node type `genrate`: did you mean `generate`?\n"
    );
    let out = output(flowrun().args(["nodes", "nosuch"]));
    assert_eq!(out.status.code(), Some(1));
    let names: Vec<String> = flowrun_nodes::catalogue()
        .names()
        .map(|n| format!("`{n}`"))
        .collect();
    assert_eq!(
        stderr_of(&out),
        format!(
            "flowrun: unknown node type `nosuch`: known types are: {}\n",
            names.join(", ")
        )
    );
}

/// Checks that `flowrun ARGS --help` succeeds and mentions every word.
fn assert_help_mentions(args: &[&str], words: &[&str]) {
    let out = output(flowrun().args(args).arg("--help"));
    let text = stdout_of(&out);
    assert!(
        out.status.success(),
        "{args:?} --help failed: {}",
        stderr_of(&out)
    );
    let missing: Vec<&&str> = words.iter().filter(|w| !text.contains(**w)).collect();
    assert!(
        missing.is_empty(),
        "`flowrun {} --help` does not mention {missing:?}:\n{text}",
        args.join(" ")
    );
}

const RUN_OPTIONS: [&str; 8] = [
    "<SPEC>",
    "--no-watch",
    "--metrics <ADDR>",
    "--drain-timeout <SECONDS>",
    "--status-interval <SECONDS>",
    "--log-format",
    "pretty",
    "json",
];

#[test]
fn the_version_says_whether_the_build_has_the_vision_nodes() {
    let output = Command::new(env!("CARGO_BIN_EXE_flowrun"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        concat!(
            "flowrun ",
            env!("CARGO_PKG_VERSION"),
            " (with vision: OpenCV)"
        )
    );
}

#[test]
fn help_texts_are_complete() {
    let mut top = vec![
        "flowrun SPEC` is short for `flowrun run SPEC",
        "run ",
        "check ",
        "graph ",
        "nodes ",
        "schema ",
        "--version",
        "--help",
    ];
    top.extend(RUN_OPTIONS);
    assert_help_mentions(&[], &top);
    let mut run = vec!["SIGINT/SIGTERM", "[default: 10]"];
    run.extend(RUN_OPTIONS);
    assert_help_mentions(&["run"], &run);
    assert_help_mentions(
        &["check"],
        &["<SPECS>...", "file:line:column", "exit 1 on any error"],
    );
    assert_help_mentions(&["graph"], &["<SPECS>...", "--format", "mermaid", "dot"]);
    assert_help_mentions(&["nodes"], &["[NODE_TYPE]", "config keys"]);
    assert_help_mentions(&["schema"], &["JSON Schema"]);
}

#[test]
fn run_prints_one_json_line_per_message_and_exits_0() {
    let out = output(flowrun().args(["run", "specs/hello.yaml", "--no-watch"]));
    let stdout = stdout_of(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
        .collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    for (seq, line) in lines.iter().enumerate() {
        assert_eq!(line["meta"]["seq"], seq, "{line}");
        assert_eq!(line["meta"]["source"], "ticks", "{line}");
        assert_eq!(line["payload"], "hello from flowrun", "{line}");
    }
    assert!(
        stderr_of(&out).contains("final counts: out in=5 ack=5"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_spec_alone_is_short_for_run() {
    let out = output(
        flowrun()
            .args(["specs/hello.yaml", "--no-watch"])
            .env("COUNT", "2"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).lines().count(), 2, "{}", stdout_of(&out));
}

#[test]
fn run_refuses_an_invalid_spec_with_located_errors() {
    let (_dir, path) = spec_file("version: 1\nnodes:\n  gen: {type: genrate}\n");
    let out = output(flowrun().arg("run").arg(&path).arg("--no-watch"));
    assert_eq!(out.status.code(), Some(1));
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains(
            "spec.yaml:3:15: error: unknown node type `genrate`\n  hint: did you mean `generate`?"
        ),
        "{stderr}"
    );
    assert!(stdout_of(&out).is_empty());
}

/// `gen out=N` in the final counts line.
fn final_count(stderr: &str, field: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| l.contains("final counts:"))?;
    let at = line.find(field)? + field.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[test]
fn sigterm_drains_and_exits_0_with_final_counts() {
    let (_dir, path) = spec_file(FOREVER);
    let mut running = Running::start(flowrun().arg("run").arg(&path).arg("--no-watch"));
    running.wait_for("a first message", |r| r.stdout().lines().count() >= 3);
    running.terminate();
    let (status, stdout, stderr) = running.finish(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("signal received: draining"), "{stderr}");
    // Everything the source sent was printed and acknowledged: nothing was
    // lost on the way out.
    let printed = stdout.lines().count() as u64;
    assert_eq!(final_count(&stderr, "gen out="), Some(printed), "{stderr}");
    assert_eq!(final_count(&stderr, "out in="), Some(printed), "{stderr}");
    assert_eq!(final_count(&stderr, "ack="), Some(printed), "{stderr}");
}

#[test]
fn a_failing_node_with_on_failure_stop_ends_the_run_with_exit_1() {
    let (_dir, path) = spec_file(
        "version: 1
nodes:
  pictures: {type: files, path: \"nothing-here/*.png\", on_failure: stop}
  out: {type: print, inputs: [pictures]}
",
    );
    let out = output(flowrun().arg("run").arg(&path).arg("--no-watch"));
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("flowrun: node `pictures` failed: no files match ")
            && last.ends_with("nothing-here/*.png"),
        "the last line names the node and the cause:\n{stderr}"
    );
    assert!(stdout_of(&out).is_empty());
}

/// `GET path` over plain HTTP/1.1: the status line and the body, or `None`
/// while nothing answers.
fn http_get(port: u16, path: &str) -> Option<(String, String)> {
    let (head, body) = http_exchange(port, path, "")?;
    Some((http::status_line(&head).to_owned(), body))
}

/// `GET path` with `headers` (each ending in CRLF): the whole head and the body.
fn http_exchange(port: u16, path: &str, headers: &str) -> Option<(String, String)> {
    let (head, body) = http::get(port, path, headers)?;
    Some((head, String::from_utf8(body).ok()?))
}

/// The value of the sample `name{node="id"}` in Prometheus text.
fn sample(metrics: &str, name: &str, node: &str) -> Option<f64> {
    let prefix = format!("{name}{{node=\"{node}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// `flowrun run` of [`FOREVER`] serving metrics on a free port, once its
/// counters move (a message counted): the process, the port, and the
/// spec's folder (to keep).
fn run_with_metrics() -> (Running, u16, tempfile::TempDir) {
    let (dir, path) = spec_file(FOREVER);
    let port = free_port();
    let mut running = Running::start(flowrun().arg("run").arg(&path).args([
        "--no-watch",
        "--metrics",
        &format!("127.0.0.1:{port}"),
    ]));
    running.wait_for("a message counted", |_| {
        http_get(port, "/metrics")
            .and_then(|(_, body)| sample(&body, "flowrun_node_sent_total", "gen"))
            .is_some_and(|sent| sent > 0.0)
    });
    (running, port, dir)
}

#[test]
fn metrics_serves_healthz_and_per_node_counters() {
    let (mut running, port, _dir) = run_with_metrics();
    running.wait_for("/healthz", |_| {
        http_get(port, "/healthz").is_some_and(|(status, _)| status.contains(" 200 "))
    });
    let (status, metrics) = http_get(port, "/metrics").expect("/metrics answers");
    assert!(status.contains(" 200 "), "{status}");
    for node in ["gen", "out"] {
        for name in [
            "flowrun_node_sent_total",
            "flowrun_node_received_total",
            "flowrun_node_acked_total",
            "flowrun_node_dropped_total",
        ] {
            assert!(
                sample(&metrics, name, node).is_some(),
                "no `{name}{{node=\"{node}\"}}` in:\n{metrics}"
            );
        }
    }
    running.terminate();
    let (status, _, stderr) = running.finish(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("metrics on http://127.0.0.1:{port}/metrics")),
        "{stderr}"
    );
}

#[test]
fn log_format_json_writes_json_lines_on_stderr() {
    let out = output(flowrun().args([
        "run",
        "specs/hello.yaml",
        "--no-watch",
        "--log-format",
        "json",
    ]));
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}\n{stderr}"))
        })
        .collect();
    assert!(!logs.is_empty());
    for log in &logs {
        assert!(
            log["level"].is_string() && log["timestamp"].is_string(),
            "{log}"
        );
    }
    assert!(
        logs.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("final counts: "))),
        "{stderr}"
    );
    assert_eq!(
        stdout_of(&out).lines().count(),
        5,
        "stdout still has the messages"
    );
}

/// `flowrun diff OLD NEW`: what a reload would change, key by key, with
/// both values in full and secrets masked; nothing runs.
#[test]
fn diff_prints_the_reload_plan_without_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.yaml");
    let new = dir.path().join("new.yaml");
    let spec = |filter: &str, qos: u8, password: &str| {
        format!(
            "version: 1\nnodes:\n  faces:\n    type: mqtt_sub\n    broker: {{url: \"mqtt://127.0.0.1:1\", username: u, password: {password}}}\n    topics: [{{filter: \"{filter}\", qos: {qos}}}]\n  out:\n    type: print\n    inputs: [faces]\n"
        )
    };
    std::fs::write(&old, spec("$share/cloud-fs/faces/#", 1, "one-secret")).unwrap();
    std::fs::write(&new, spec("$share/cloud-fs/walkfaces/#", 2, "two-secret")).unwrap();
    let output = flowrun().arg("diff").arg(&old).arg(&new).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(
        stdout,
        "+0 −0 ~1, 1 unchanged\n  ~ faces: broker.password changed; \
         topics[0].filter $share/cloud-fs/faces/# → $share/cloud-fs/walkfaces/#; topics[0].qos 1 → 2\n"
    );
    assert!(!stdout.contains("secret"));

    let same = flowrun().arg("diff").arg(&old).arg(&old).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&same.stdout), "nothing to change\n");

    std::fs::write(&new, "version: 1\nnodes:\n  faces: {type: mqtt_sup}\n").unwrap();
    let invalid = flowrun().arg("diff").arg(&old).arg(&new).output().unwrap();
    assert_eq!(invalid.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(stderr.contains("new.yaml:3:"), "{stderr}");
    assert!(
        stderr.contains("a reload to it would be refused"),
        "{stderr}"
    );
}

/// A mistyped command is named as such, with the nearest command, instead
/// of clap's words about `<SPEC>`.
#[test]
fn a_mistyped_command_gets_the_nearest_command() {
    for (typed, meant) in [("chek", "check"), ("grph", "graph"), ("nodse", "nodes")] {
        let output = flowrun()
            .args([typed, "specs/hello.yaml"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("`{typed}` is neither a command nor a spec file"))
                && stderr.contains(&format!("did you mean `flowrun {meant}`?")),
            "{stderr}"
        );
    }
    // A spec file still runs as `flowrun SPEC`.
    let output = flowrun()
        .args(["specs/hello.yaml", "--no-watch"])
        .env("COUNT", "1")
        .output()
        .unwrap();
    assert!(output.status.success());
}

/// `/healthz` tells the truth: 200 while the subscriber's broker is up,
/// 503 naming the node and why once it is gone, and `flowrun_node_up` says
/// the same for alerts.
#[test]
fn healthz_turns_503_naming_the_node_when_its_broker_dies() {
    let broker_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {broker_port} 127.0.0.1\nallow_anonymous true\nuser root\n"),
    )
    .unwrap();
    let mut broker = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts");
    let spec = format!(
        "version: 1\nnodes:\n  sub:\n    type: mqtt_sub\n    broker: {{url: \"mqtt://127.0.0.1:{broker_port}\", reconnect_max_ms: 500}}\n    topics: [{{filter: \"a/#\"}}]\n  out: {{type: print, inputs: [sub]}}\n"
    );
    let (_spec_dir, path) = spec_file(&spec);
    let port = free_port();
    let mut running = Running::start(
        flowrun()
            .arg("run")
            .arg(&path)
            .args(["--no-watch", "--metrics", &format!("127.0.0.1:{port}")])
            .env("FLOWRUN_STATE_DIR", dir.path()),
    );
    running.wait_for("/healthz 200", |_| {
        http_get(port, "/healthz").is_some_and(|(status, _)| status.contains(" 200 "))
    });
    let _ = broker.kill();
    let _ = broker.wait();
    running.wait_for("/healthz 503 naming the node", |_| {
        http_get(port, "/healthz").is_some_and(|(status, body)| {
            status.contains(" 503 ")
                && body.contains(&format!(
                    "down: sub: disconnected from mqtt://127.0.0.1:{broker_port}"
                ))
        })
    });
    let (_, metrics) = http_get(port, "/metrics").expect("/metrics answers");
    assert_eq!(
        sample(&metrics, "flowrun_node_up", "sub"),
        Some(0.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "flowrun_node_up", "out"),
        Some(1.0),
        "{metrics}"
    );
}

/// `/metrics` serves what its Content-Type declares: Prometheus text 0.0.4
/// by default, which Debian's `promtool check metrics` accepts, and
/// OpenMetrics (ending in `# EOF`) to a client that asks for it.
#[test]
fn metrics_are_in_the_format_their_content_type_declares() {
    let (_running, port, _dir) = run_with_metrics();
    let (head, text) = http_exchange(port, "/metrics", "").expect("/metrics answers");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    assert!(
        text.contains("# TYPE flowrun_node_sent_total counter"),
        "{text}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) runs");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    let (head, open) = http_exchange(
        port,
        "/metrics",
        "Accept: application/openmetrics-text; version=1.0.0,text/plain;q=0.5\r\n",
    )
    .expect("/metrics answers");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
}

/// `flowrun nodes TYPE` documents nested keys too, from the same schema:
/// what `broker`, each `topics[]` entry and each `backend` variant hold,
/// with defaults.
#[test]
fn nodes_documents_nested_keys_with_their_defaults() {
    let text = |args: &[&str]| {
        let output = flowrun().args(args).output().unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    let sub = text(&["nodes", "mqtt_sub"]);
    for line in [
        "    broker (object, required): ",
        "      url (string, required): ",
        "      keepalive_secs (integer, default 30): ",
        "    topics[] (array, required): ",
        "      filter (string, required): ",
    ] {
        assert!(sub.contains(line), "no `{line}` in:\n{sub}");
    }
    let put = text(&["nodes", "cos_put"]);
    for line in [
        "      s3 (object, required): ",
        "        bucket (string, required): ",
    ] {
        assert!(put.contains(line), "no `{line}` in:\n{put}");
    }
    let broker = text(&["nodes", "mqtt_broker"]);
    assert!(!broker.contains("5|5"), "{broker}");
}

/// An edge spec and a cloud spec drawn as one system: each in its own box,
/// meeting at the cloud broker they share, with the topics and QoS on the
/// links; the bridge is connected, not left alone.
#[test]
fn graph_draws_edge_and_cloud_specs_as_one_system_through_their_brokers() {
    let out = output(flowrun().args(["graph", "specs/edge-bridge.yaml", "specs/cloud-cos.yaml"]));
    let text = stdout_of(&out);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(text.contains("subgraph s0[\"edge-bridge\"]"), "{text}");
    assert!(text.contains("subgraph s1[\"cloud-cos\"]"), "{text}");
    let system = |url: &str| {
        text.lines()
            .find(|l| l.contains(&format!("[(\"{url}\")]")))
            .and_then(|l| l.trim().split('[').next())
            .unwrap_or_else(|| panic!("no system {url} in:\n{text}"))
            .to_owned()
    };
    let edge = system("mqtt://127.0.0.1:1883");
    let cloud = system("mqtt://127.0.0.1:1884");
    for link in [
        format!("s0_publish ==>|\"faces/edge-1/{{source}}/{{timestamp_ms}}-{{frame}}-{{face}} (qos 1)\"| {edge}"),
        format!("{edge} ==>|\"faces/edge-1/#35; (qos 1)\"| s0_bridge"),
        format!("s0_bridge ==>|\"faces/edge-1/#35; (qos 1)\"| {cloud}"),
        format!("{cloud} ==>|\"faces/#35; (qos 1, shared by cloud-cos)\"| s1_faces"),
    ] {
        assert!(text.contains(&link), "no `{link}` in:\n{text}");
    }
}
