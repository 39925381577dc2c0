//! Storage pipelines run through the real engine, and real images to feed them.

use std::time::Duration;

/// Checks `yaml` (written as `dir/spec.yaml`, so relative paths resolve in
/// `dir`) and runs it on the real engine until every node is done, within
/// `limit`. Returns the run report and the counters.
pub async fn run_spec(
    dir: &std::path::Path,
    yaml: &str,
    limit: Duration,
) -> (flowrun_runtime::RunReport, flowrun_runtime::Metrics) {
    let path = dir.join("spec.yaml");
    std::fs::write(&path, yaml).unwrap();
    let checked = flowrun_runtime::validate(&path, yaml, &flowrun_nodes::catalogue(), &|name| {
        std::env::var(name).ok()
    });
    let Some(plan) = checked.plan else {
        let errors: Vec<String> = checked.diagnostics.iter().map(|d| d.to_string()).collect();
        panic!("spec refused:\n{}", errors.join("\n"));
    };
    let metrics = flowrun_runtime::Metrics::new();
    let (engine, _handle) =
        flowrun_runtime::Engine::start(plan, metrics.clone(), Duration::from_secs(10));
    let report = tokio::time::timeout(limit, engine.run(std::future::pending()))
        .await
        .unwrap_or_else(|_| panic!("the pipeline did not finish within {limit:?}"));
    (report, metrics)
}

/// Puts the server's keys in environment variables only this test reads,
/// and returns the spec lines that name them (at the indentation of the
/// settings under `backend:` → `s3:`).
pub fn credentials(server: &super::s3::S3Server, tag: &str) -> String {
    let (id_var, secret_var) = (
        format!("FLOWRUN_TEST_{tag}_{}_ID", server.port),
        format!("FLOWRUN_TEST_{tag}_{}_SECRET", server.port),
    );
    std::env::set_var(&id_var, &server.access_key);
    std::env::set_var(&secret_var, &server.secret_key);
    format!("access_key_id_env: {id_var}\n        secret_access_key_env: {secret_var}")
}

/// The state word of node `id`.
pub fn state(metrics: &flowrun_runtime::Metrics, id: &str) -> String {
    metrics
        .snapshot()
        .get(id)
        .map(|(_, state)| state.clone())
        .unwrap_or_default()
}

/// Real images from Debian's opencv-doc (JPEG and PNG), sorted.
pub fn sample_images() -> Vec<std::path::PathBuf> {
    let mut images: Vec<_> = std::fs::read_dir(SAMPLE_IMAGES)
        .unwrap_or_else(|e| panic!("{SAMPLE_IMAGES}: {e}; scripts/setup.sh installs opencv-doc"))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect();
    images.sort();
    images
}

pub const SAMPLE_IMAGES: &str = "/usr/share/doc/opencv-doc/examples/data";
