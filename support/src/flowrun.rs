//! A `flowrun run` process for a test: started on a spec from `specs/` with
//! the variables the test gives (and none from the developer's shell), its
//! status lines parsed as they arrive, stopped with SIGINT (or SIGKILL, as
//! a crash), killed when dropped. Its log, at DEBUG, is also written to
//! `target/test-logs/` for `scripts/scan-logs.sh`.
//!
//! Cargo tells where it built the `flowrun` binary (`CARGO_BIN_EXE_flowrun`)
//! only to the root crate's integration tests, so each of them names it
//! once and starts processes from it:
//!
//! ```ignore
//! const FLOWRUN: Binary = Binary::at(env!("CARGO_BIN_EXE_flowrun"));
//! let edge = FLOWRUN.start("edge-bridge", "edge-bridge.yaml", &env);
//! ```
//!
//! A `const` value rather than a `flowrun_bin!()` macro: the `env!` stays
//! visible where cargo's variable exists, it is written once per test
//! crate rather than at every start, and the call sites read as what they
//! do (`FLOWRUN.start(…)`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::s3::S3Server;
use crate::wait;

/// Every variable the shipped specs read: removed from the environment of
/// each process, so that only what a test sets reaches it.
const SPEC_VARIABLES: &[&str] = &[
    "CAMERA",
    "TRACK",
    "DEVICE_ID",
    "EDGE_BROKER",
    "CLOUD_BROKER",
    "S3_ENDPOINT",
    "BUCKET",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
    "BUCKET_DIR",
    "MQTT_USERNAME",
    "MQTT_PASSWORD",
    "WORKER_ID",
    "MQTT_PORT",
    "PREVIEW_ADDRESS",
];

pub const MEGAMIND: &str = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";

/// Starting a process and connecting it.
const START: Duration = Duration::from_secs(30);

/// The repository's root: this crate lives in its `support/` folder.
pub fn repository() -> PathBuf {
    let support = Path::new(env!("CARGO_MANIFEST_DIR"));
    support
        .parent()
        .expect("support/ is in the repository")
        .into()
}

/// The variables of `specs/cloud-cos.yaml`: worker `worker` on `broker`,
/// storing into `bucket` at `endpoint` (the store's own, or a proxy in
/// front of it) with the store's keys.
pub fn cloud_cos_env(
    worker: u32,
    broker: String,
    store: &S3Server,
    endpoint: String,
    bucket: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("CLOUD_BROKER", broker),
        ("WORKER_ID", worker.to_string()),
        ("S3_ENDPOINT", endpoint),
        ("BUCKET", bucket.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", store.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", store.secret_key.clone()),
    ]
}

/// The counters and state word of each node, from one status line:
/// `camera out=270 [end of file: 270 frames] | crops in=223 out=295 ack=223 | …`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    nodes: BTreeMap<String, (BTreeMap<String, u64>, String)>,
}

impl Status {
    /// The status in a log line, if it holds one.
    pub fn parse(line: &str) -> Option<Status> {
        let (_, rest) = line
            .split_once(" status: ")
            .or_else(|| line.split_once(" final counts: "))?;
        let mut nodes = BTreeMap::new();
        for part in rest.split(" | ") {
            let (counts, state) = match part.split_once(" [") {
                Some((counts, state)) => (counts, state.trim_end().trim_end_matches(']')),
                None => (part, ""),
            };
            let mut words = counts.split_whitespace();
            let Some(id) = words.next() else { continue };
            let counts = words
                .filter_map(|w| w.split_once('='))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                .collect();
            nodes.insert(id.to_owned(), (counts, state.to_owned()));
        }
        Some(Status { nodes })
    }

    /// A counter (`in`, `out`, `ack`, `drop`…); 0 when the line leaves it out.
    pub fn count(&self, node: &str, key: &str) -> u64 {
        self.nodes
            .get(node)
            .and_then(|(counts, _)| counts.get(key).copied())
            .unwrap_or(0)
    }

    pub fn state(&self, node: &str) -> &str {
        self.nodes.get(node).map(|(_, s)| s.as_str()).unwrap_or("")
    }

    /// A `key=N` inside a node's state word (`[stored=285 retried=0 …]`).
    pub fn state_count(&self, node: &str, key: &str) -> u64 {
        self.state(node)
            .split([' ', ';'])
            .filter_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .next()
            .unwrap_or(0)
    }

    /// Faces the edge detected and cut out.
    pub fn faces(&self) -> u64 {
        self.count("crops", "out")
    }

    /// The edge has read the whole video, detection took every frame it did
    /// not drop, the tracker (`track`, in the shipped specs) took every frame
    /// with faces and flushed its open tracks, every face it sent on was cut,
    /// and the broker acknowledged every face.
    pub fn edge_finished(&self) -> bool {
        let (cut_from, tracked) = match self.nodes.contains_key("track") {
            true => (
                "track",
                self.count("track", "in") == self.count("faces", "out")
                    && self.state("track").starts_with("done"),
            ),
            false => ("faces", true),
        };
        self.state("camera").starts_with("end of file")
            && self.count("faces", "in") + self.count("faces", "drop")
                == self.count("camera", "out")
            && self.count("faces", "out") + self.count("faces", "ack") == self.count("faces", "in")
            && tracked
            && self.count("crops", "in") == self.count(cut_from, "out")
            && self.count("crops", "ack") == self.count("crops", "in")
            && self.count("publish", "ack") == self.faces()
    }
}

/// The `flowrun` binary under test (see the module's doc).
#[derive(Debug, Clone, Copy)]
pub struct Binary(&'static str);

impl Binary {
    pub const fn at(path: &'static str) -> Binary {
        Binary(path)
    }

    pub fn path(self) -> &'static Path {
        Path::new(self.0)
    }

    /// Runs `specs/<spec>` (or `spec` itself when it is an absolute path)
    /// with exactly the spec variables in `env`.
    pub fn start(self, name: &str, spec: &str, env: &[(&str, String)]) -> Flowrun {
        self.start_file(name, &repository().join("specs").join(spec), false, env)
    }

    /// Runs the spec at `path`; with `watch`, reloading it when it changes.
    pub fn start_file(
        self,
        name: &str,
        path: &Path,
        watch: bool,
        env: &[(&str, String)],
    ) -> Flowrun {
        let mut command = Command::new(self.path());
        for variable in SPEC_VARIABLES {
            command.env_remove(variable);
        }
        command.args(["run", "--status-interval", "0.2"]);
        if !watch {
            command.arg("--no-watch");
        }
        // One state directory per test binary: a process restarted by a
        // test finds what the first one recorded, and nothing lands in the
        // developer's home.
        let state = std::env::temp_dir().join(format!("flowrun-test-state-{}", std::process::id()));
        let mut child = command
            .env("FLOWRUN_LOG", "debug")
            .env("FLOWRUN_STATE_DIR", state)
            .arg(path)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start flowrun for {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().unwrap();
        let (_, mut file) = crate::logs::file(&format!("e2e-{name}"));
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                sink.lock().unwrap().push(line);
            }
        });
        Flowrun {
            name: name.to_owned(),
            child,
            lines,
        }
    }

    /// Starts a cloud process (a shipped cloud spec, or one like it) and
    /// waits until its subscription (node `faces`) exists, so that the
    /// broker keeps every face for it from then on.
    pub async fn start_cloud(self, name: &str, spec: &str, env: &[(&str, String)]) -> Flowrun {
        let mut cloud = self.start(name, spec, env);
        cloud
            .wait_until("subscribed", START, |s| {
                s.state("faces").starts_with("subscribed")
            })
            .await;
        cloud
    }
}

/// A running `flowrun run`, killed when dropped.
pub struct Flowrun {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Flowrun {
    /// The process id, to read its memory use from `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last status line, parsed.
    pub fn status(&self) -> Status {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|l| Status::parse(l))
            .unwrap_or_default()
    }

    /// The log so far, for failure messages.
    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Polls the status until `done` holds; fails after `limit`, or at once
    /// if the process ended.
    pub async fn wait_until(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&Status) -> bool,
    ) -> Status {
        // `Ok`: done; `Err`: the process ended before.
        let outcome = wait::at_most(limit)
            .every(Duration::from_millis(50))
            .poll_async(|| {
                let status = self.status();
                let settled = if done(&status) {
                    Some(Ok(status))
                } else {
                    self.child.try_wait().ok().flatten().map(Err)
                };
                std::future::ready(settled)
            })
            .await;
        match outcome {
            Some(Ok(status)) => status,
            Some(Err(exit)) => panic!(
                "{} exited ({exit}) before {what}:\n{}",
                self.name,
                self.log()
            ),
            None => panic!("{}: not {what} after {limit:?}:\n{}", self.name, self.log()),
        }
    }

    /// How many log lines so far contain `text`.
    pub fn lines_with(&self, text: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    /// SIGKILL, as a crash or a power cut would: no draining, no final
    /// counts. Returns the last status line it printed (up to one status
    /// interval old).
    pub fn kill(mut self) -> Status {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.status()
    }

    /// SIGINT, then waits (bounded) for the exit: its final counts, and
    /// whether it exited with 0.
    pub async fn stop(self) -> (Status, bool) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        self.wait_for_exit(Duration::from_secs(30)).await
    }

    /// [`Flowrun::stop`], and the whole log, to the final counts.
    pub async fn stop_with_log(self) -> (Status, bool, String) {
        let lines = Arc::clone(&self.lines);
        let (status, clean) = self.stop().await;
        let log = lines.lock().unwrap().join("\n");
        (status, clean, log)
    }

    /// Waits (at most `limit`) for the process to end by itself: its final
    /// counts, and whether it exited with 0.
    pub async fn wait_for_exit(mut self, limit: Duration) -> (Status, bool) {
        let exit = wait::at_most(limit)
            .poll_async(|| std::future::ready(self.child.try_wait().unwrap()))
            .await;
        let Some(exit) = exit else {
            panic!(
                "{} did not stop within {limit:?}:\n{}",
                self.name,
                self.log()
            );
        };
        // The reader thread may still be taking the last lines.
        let final_counts = wait::at_most(Duration::from_secs(5))
            .poll_async(|| {
                let found = self
                    .lines
                    .lock()
                    .unwrap()
                    .iter()
                    .rev()
                    .find(|l| l.contains(" final counts: "))
                    .and_then(|l| Status::parse(l));
                std::future::ready(found)
            })
            .await;
        let Some(final_counts) = final_counts else {
            panic!("{} printed no final counts:\n{}", self.name, self.log());
        };
        (final_counts, exit.success())
    }
}

impl Drop for Flowrun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
#[test]
fn status_lines_parse() {
    let line = "2026-11-25T16:28:15Z  INFO final counts: camera out=270 [end of file: 270 frames] \
                | crops in=223 out=295 ack=223 | store in=285 ack=285 [stored=285 retried=0 dead_lettered=0]";
    let status = Status::parse(line).unwrap();
    assert_eq!(status.count("camera", "out"), 270);
    assert_eq!(status.count("camera", "in"), 0);
    assert_eq!(status.state("camera"), "end of file: 270 frames");
    assert_eq!(status.faces(), 295);
    assert_eq!(status.state_count("store", "stored"), 285);
    assert_eq!(status.state_count("store", "retried"), 0);
    assert!(Status::parse("INFO running demo").is_none());
}
