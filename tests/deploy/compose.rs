//! Docker and docker-compose, driven the way a user drives them from a
//! shell: `docker-compose -p NAME -f docker/edge/compose.yaml -f … up -d`,
//! `docker kill`, `docker network disconnect`. Every command's failure
//! carries what the tool printed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use flowrun_test_support::{http, wait};
use tokio::process::Command;

use crate::logs;

/// Runs `program args…`; its stdout, or a panic with what it printed.
pub async fn run(program: &str, args: &[&str], env: &[(String, String)]) -> String {
    match try_run(program, args, env).await {
        Ok(out) => out,
        Err(error) => panic!("{error:#}"),
    }
}

/// `run`, returning the failure instead of panicking.
pub async fn try_run(
    program: &str,
    args: &[&str],
    env: &[(String, String)],
) -> anyhow::Result<String> {
    let output = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("cannot run {program}; scripts/setup.sh installs it"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(anyhow!(
            "`{program} {}` failed ({}):\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

pub async fn docker(args: &[&str]) -> String {
    run("docker", args, &[]).await
}

/// A compose project: the shipped compose file of one side plus the test's
/// override, under a name of its own; taken down with its volumes on drop,
/// its logs kept in target/test-logs for the secret scan.
pub struct Project {
    name: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
}

impl Project {
    pub fn new(name: String, files: Vec<PathBuf>, env: Vec<(String, String)>) -> Project {
        Project { name, files, env }
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<String> {
        let mut args = vec!["-p".to_string(), self.name.clone()];
        for file in &self.files {
            args.push("-f".into());
            args.push(file.display().to_string());
        }
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    }

    pub async fn compose(&self, rest: &[&str]) -> String {
        let args = self.args(rest);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run("docker-compose", &args, &self.env).await
    }

    /// `up -d` for `services` (all when empty), from the images already
    /// built: nothing is built or pulled.
    pub async fn up(&self, services: &[&str]) {
        let mut rest = vec!["up", "-d", "--no-build"];
        rest.extend_from_slice(services);
        self.compose(&rest).await;
    }

    /// The container running `service`, by the labels compose puts on it
    /// (the docker CLI answers in milliseconds, docker-compose in a second
    /// or two: faults must land mid-video).
    pub async fn container(&self, service: &str) -> String {
        let project = format!("label=com.docker.compose.project={}", self.name);
        let service_label = format!("label=com.docker.compose.service={service}");
        let id = docker(&[
            "ps",
            "-aq",
            "--filter",
            &project,
            "--filter",
            &service_label,
        ])
        .await;
        let id = id.trim();
        assert!(
            !id.is_empty() && !id.contains('\n'),
            "{}: no one container for {service}: {id:?}",
            self.name
        );
        id.to_string()
    }

    pub async fn logs(&self) -> String {
        self.compose(&["logs", "--no-color", "--timestamps"]).await
    }

    /// Writes every container's log to target/test-logs/deploy-NAME.log.
    pub async fn save_logs(&self) {
        let text = self.logs().await;
        let path = logs::dir().join(format!("deploy-{}.log", self.name));
        std::fs::write(&path, text).expect("target/test-logs is writable");
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let args = self.args(&["down", "-v", "--remove-orphans", "-t", "5"]);
        let _ = std::process::Command::new("docker-compose")
            .args(&args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output();
    }
}

/// A user-defined network the two projects join from outside; removed on drop.
pub struct Network(pub String);

impl Network {
    pub async fn create(name: String) -> Network {
        docker(&["network", "create", "--driver", "bridge", &name]).await;
        Network(name)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// The health state docker reports for a container (`healthy`,
/// `unhealthy`, `starting`), or its run state when it has no healthcheck.
pub async fn health(container: &str) -> String {
    let format = "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}";
    docker(&["inspect", "--format", format, container])
        .await
        .trim()
        .to_string()
}

/// Waits until docker reports `container` in `state`; how long it took.
pub async fn wait_health(container: &str, state: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let reached = wait::at_most(limit)
        .every(Duration::from_millis(250))
        .poll_async(|| async { (health(container).await == state).then_some(()) })
        .await;
    if reached.is_some() {
        return started.elapsed();
    }
    let now = health(container).await;
    let log = docker(&["logs", "--tail", "30", container]).await;
    let probes = docker(&["inspect", "--format", "{{json .State.Health}}", container]).await;
    panic!("{container} is {now}, not {state}, after {limit:?}\nhealth: {probes}\nlog:\n{log}");
}

/// The user id a container's processes run as (`id -u` inside it).
pub async fn user_id(container: &str) -> String {
    docker(&["exec", container, "id", "-u"])
        .await
        .trim()
        .to_string()
}

/// `GET path` on 127.0.0.1:`port` (the shared client, off the async
/// threads): the status code and body, or `None` while nothing answers.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let path = path.to_owned();
    let (head, body) = tokio::task::spawn_blocking(move || http::get(port, &path, ""))
        .await
        .ok()??;
    let status = http::status_line(&head)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}
