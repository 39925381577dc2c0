//! Issue 7's edge faults 6–8 with real processes: the shipped specs (or
//! specs built on them) as separate `flowrun` processes, real mosquitto
//! brokers with persistence, s3s-fs, and real face crops from opencv-doc's
//! Megamind.avi.
//!
//! Each scenario prints one line for `bench/reliability/edge.sh`:
//! `RELIABILITY scenario=… sent=… stored=… lost=… duplicated=… recover_ms=…`.
//! The tests run one at a time: each is a timing of a 2-core machine.

#[path = "../support/crops.rs"]
mod crops;
use flowrun_test_support::faces;
mod killed_edge;
mod link_down;
use flowrun_test_support::proxy;
mod report;
mod rss;
mod slow_store;

#[path = "../e2e/flowrun.rs"]
#[allow(dead_code)]
mod flowrun;
use flowrun_test_support::logs;
use flowrun_test_support::mosquitto;
use flowrun_test_support::s3;

use std::collections::BTreeSet;
use std::time::Duration;

use flowrun::Flowrun;
use flowrun_test_support::wait;
use s3::S3Server;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starting a process and connecting it.
const START: Duration = Duration::from_secs(30);

const BUCKET: &str = "faces";

fn cloud_cos_env(
    cloud_broker: String,
    s3_endpoint: String,
    store: &S3Server,
) -> Vec<(&'static str, String)> {
    vec![
        ("CLOUD_BROKER", cloud_broker),
        ("WORKER_ID", "1".into()),
        ("S3_ENDPOINT", s3_endpoint),
        ("BUCKET", BUCKET.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", store.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", store.secret_key.clone()),
    ]
}

/// Starts the shipped cloud-cos and waits until its shared subscription
/// exists, so that the broker keeps every face for it from then on.
async fn start_cloud(cloud_broker: String, s3_endpoint: String, store: &S3Server) -> Flowrun {
    let mut process = Flowrun::start(
        "cloud-cos",
        "cloud-cos.yaml",
        &cloud_cos_env(cloud_broker, s3_endpoint, store),
    );
    process
        .wait_until("subscribed", START, |s| {
            s.state("faces").starts_with("subscribed")
        })
        .await;
    process
}

/// The keys in the bucket, as a set.
async fn bucket_keys(store: &S3Server) -> BTreeSet<String> {
    store.list(BUCKET).await.into_iter().collect()
}

/// Polls the bucket until it holds every key in `expected`; fails after
/// `limit` naming how many are missing.
async fn wait_for_keys(store: &S3Server, expected: &BTreeSet<String>, limit: Duration) {
    let all = wait::at_most(limit)
        .every(Duration::from_millis(250))
        .poll_async(|| async {
            let keys = bucket_keys(store).await;
            expected.is_subset(&keys).then_some(())
        })
        .await;
    if all.is_some() {
        return;
    }
    let missing = expected.difference(&bucket_keys(store).await).count();
    assert!(
        missing == 0,
        "{missing} of {} expected objects not in the bucket after {limit:?}",
        expected.len()
    );
}
