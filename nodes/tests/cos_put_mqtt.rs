//! `mqtt_sub` → `cos_put` against real mosquitto and s3s-fs: QoS 1 messages
//! are acknowledged to the broker only once stored, so an outage of the store
//! loses nothing, and identity keys (the content hash) turn redeliveries
//! into overwrites instead of duplicates.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use rumqttc::QoS;
use sha2::{Digest, Sha256};
use support::mosquitto::{eventually, numbered_payloads, publish_all, Mosquitto};
use support::s3::S3Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_mid_stream_loses_no_qos1_message_and_stores_none_twice() {
    let broker = Mosquitto::start();
    let mut store = S3Server::start();
    store.create_bucket("faces").await;
    let backend = format!(
        "s3:\n        endpoint: {}\n        bucket: faces\n        {}",
        store.endpoint(),
        support::storage::credentials(&store, "MQTT"),
    );
    let yaml = stored_from_broker(&broker.url(), "cloud-store", &backend);
    let running = support::engine::start(&yaml, &[]);
    support::engine::wait_subscribed(&running, "images").await;

    let total = 1000;
    let payloads = numbered_payloads(total, 9000);
    let expected: BTreeSet<String> = payloads
        .iter()
        .map(|p| format!("{:x}.bin", Sha256::digest(p)))
        .collect();
    let publisher = tokio::spawn(publish_all(
        broker.port,
        "faces/cam0",
        QoS::AtLeastOnce,
        payloads,
    ));
    eventually(Duration::from_secs(60), "a third of the objects", || {
        running.counts("store").acked >= (total / 3) as u64
    })
    .await;
    store.stop();
    // The outage itself: five seconds with the store gone while messages keep arriving.
    tokio::time::sleep(Duration::from_secs(5)).await;
    store.resume();
    publisher.await.unwrap();
    eventually(Duration::from_secs(120), "every message stored", || {
        running.counts("store").acked >= total as u64
    })
    .await;

    let keys: BTreeSet<String> = store.list("faces").await.into_iter().collect();
    assert_eq!(keys.len(), total, "one object per message, none lost");
    assert_eq!(
        keys, expected,
        "each object is one of the published payloads"
    );
    let retried = running.metrics.node("store").event("retried").get();
    assert!(retried > 0, "the outage was seen and retried");
    let report = running.stop().await;
    assert!(report.is_success(), "{report:?}");
}

/// A bucket folder that is not mounted (or not made yet): every message is
/// given back to the broker, and the subscriber does not fetch them again
/// at once — it waits longer after each failure in a row (it reconnected
/// hundreds of times a second before). Once the folder is there, every
/// message is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmounted_bucket_is_retried_with_growing_pauses_and_then_filled() {
    let broker = Mosquitto::start();
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("bucket");
    let backend = format!("fs: {{root: \"{}\"}}", root.display());
    let yaml = stored_from_broker(&broker.url(), "unmounted-store", &backend);
    let running = support::engine::start(&yaml, &[]);
    support::engine::wait_subscribed(&running, "images").await;
    let total = 5;
    publish_all(
        broker.port,
        "faces/cam0",
        QoS::AtLeastOnce,
        numbered_payloads(total, 900),
    )
    .await;
    eventually(Duration::from_secs(10), "the first refusals", || {
        running.counts("store").nacked >= total as u64
    })
    .await;
    // Without the folder until the pause has grown to 2 s (after pauses of
    // 0, 0.25, 0.5 and 1 s: about five connections). Reconnecting at once
    // each time, the subscriber connected hundreds of times a second and
    // never paused.
    eventually(Duration::from_secs(20), "a pause of 2 s", || {
        running.state("images").contains("reconnecting in 2.0s")
    })
    .await;
    let connects = broker.log().matches(" as unmounted-store ").count();
    assert!(
        (2..=10).contains(&connects),
        "{connects} connections before a pause of 2 s:\n{}",
        broker.log()
    );
    std::fs::create_dir(&root).unwrap();
    eventually(Duration::from_secs(60), "every message stored", || {
        running.counts("store").acked >= total as u64
    })
    .await;
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), total);
    // The outage is said once, and its end once: not once per message per
    // redelivery.
    let root = root.display().to_string();
    let log = support::logs::init().text();
    let about = |level: &str| {
        log.lines()
            .filter(|l| l.contains(level) && l.contains(&root))
            .collect::<Vec<_>>()
    };
    let errors = about(" ERROR ");
    assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
    let back = about(" INFO ");
    assert!(
        back.iter()
            .any(|l| l.contains("the store takes objects again")),
        "{}",
        back.join("\n")
    );
    let report = running.stop().await;
    assert!(report.is_success(), "{report:?}");
}

/// `mqtt_sub` (client `client_id`, faces/# at QoS 1 from `url`) → `cos_put`
/// with content-hash keys into `backend` (the YAML under `backend:`,
/// indented for it).
fn stored_from_broker(url: &str, client_id: &str, backend: &str) -> String {
    format!(
        r#"version: 1
nodes:
  images:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: {client_id}}}
    topics: [{{filter: "faces/#", qos: 1}}]
  store:
    type: cos_put
    inputs: [images]
    key: "{{hash}}.bin"
    backend:
      {backend}
"#
    )
}
