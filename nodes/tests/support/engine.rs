//! Runs a spec through the real engine, in-process.

use std::path::Path;
use std::time::Duration;

use flowrun_runtime::{Counts, Engine, EngineHandle, Metrics, Plan, RunReport};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Running {
    pub metrics: Metrics,
    pub handle: EngineHandle,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<RunReport>,
}

/// The state directory of this test process's engines: one per process,
/// so that a test restarting a graph finds what the first run recorded,
/// and nothing is written to the developer's home.
pub fn state_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("flowrun-test-state-{}", std::process::id()))
}

/// Validates `yaml` (every `${VAR}` from `env`) and starts it.
pub fn start(yaml: &str, env: &[(&str, &str)]) -> Running {
    let plan = plan(yaml, env);
    let metrics = Metrics::new();
    let (engine, handle) =
        Engine::start_in(plan, metrics.clone(), Duration::from_secs(10), state_dir());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(engine.run(async {
        let _ = stopped.await;
    }));
    Running {
        metrics,
        handle,
        stop: Some(stop),
        task,
    }
}

/// Waits (bounded) until the subscriber `node` of `running` has subscribed:
/// from then on the broker keeps what is published for it.
pub async fn wait_subscribed(running: &Running, node: &str) {
    flowrun_test_support::wait::eventually(Duration::from_secs(20), "the subscription", || {
        running.state(node).starts_with("subscribed")
    })
    .await;
}

/// Validates `yaml` (every `${VAR}` from `env`) into a plan; panics with the
/// diagnostics if it is invalid.
pub fn plan(yaml: &str, env: &[(&str, &str)]) -> Plan {
    super::logs::init();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // What the test does not give comes from the process, as for `flowrun`:
    // the S3 keys the tests set with `set_var` for the node to read.
    let lookup = move |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let checked = flowrun_runtime::validate(
        Path::new("test.yaml"),
        yaml,
        &flowrun_nodes::catalogue(),
        &lookup,
    );
    checked.plan.unwrap_or_else(|| {
        let text: Vec<String> = checked.diagnostics.iter().map(|d| d.to_string()).collect();
        panic!("invalid spec:\n{}", text.join("\n"))
    })
}

impl Running {
    pub fn counts(&self, node: &str) -> Counts {
        self.metrics.node(node).snapshot()
    }

    pub fn state(&self, node: &str) -> String {
        self.metrics.node(node).state()
    }

    /// Asks the graph to stop and waits (bounded) for its report.
    pub async fn stop(mut self) -> RunReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the engine did not stop")
            .unwrap()
    }

    /// Waits (bounded) for the graph to end by itself.
    pub async fn finished(mut self, limit: Duration) -> RunReport {
        let report = tokio::time::timeout(limit, &mut self.task)
            .await
            .expect("the graph did not finish")
            .unwrap();
        self.stop.take();
        report
    }
}
