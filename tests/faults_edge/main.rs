//! Issue 7's edge faults 6–8 with real processes: the shipped specs (or
//! specs built on them) as separate `flowrun` processes, real mosquitto
//! brokers with persistence, s3s-fs, and real face crops from opencv-doc's
//! Megamind.avi.
//!
//! Each scenario prints one line for `bench/reliability/edge.sh`:
//! `RELIABILITY scenario=… sent=… stored=… lost=… duplicated=… recover_ms=…`.
//! The tests run one at a time: each is a timing of a 2-core machine.

mod killed_edge;
mod link_down;
mod report;
mod rss;
mod slow_store;

use std::collections::BTreeSet;
use std::time::Duration;

use flowrun_test_support::flowrun::{cloud_cos_env, Binary, Flowrun};
use flowrun_test_support::s3::S3Server;
use flowrun_test_support::wait;

/// The binary under test (see `flowrun_test_support::flowrun`).
const FLOWRUN: Binary = Binary::at(env!("CARGO_BIN_EXE_flowrun"));

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starting a process and connecting it.
const START: Duration = Duration::from_secs(30);

const BUCKET: &str = "faces";

/// Starts the shipped cloud-cos on `cloud_broker`, storing at `s3_endpoint`
/// with `store`'s keys, and waits until its shared subscription exists.
async fn start_cloud(cloud_broker: String, s3_endpoint: String, store: &S3Server) -> Flowrun {
    let env = cloud_cos_env(1, cloud_broker, store, s3_endpoint, BUCKET);
    FLOWRUN
        .start_cloud("cloud-cos", "cloud-cos.yaml", &env)
        .await
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
