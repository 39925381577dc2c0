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
    let yaml = format!(
        r#"version: 1
nodes:
  images:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: cloud-store}}
    topics: [{{filter: "faces/#", qos: 1}}]
  store:
    type: cos_put
    inputs: [images]
    key: "{{hash}}.bin"
    backend:
      s3:
        endpoint: {endpoint}
        bucket: faces
        {credentials}
"#,
        url = broker.url(),
        endpoint = store.endpoint(),
        credentials = support::storage::credentials(&store, "MQTT"),
    );
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
    let yaml = format!(
        r#"version: 1
nodes:
  images:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: unmounted-store}}
    topics: [{{filter: "faces/#", qos: 1}}]
  store:
    type: cos_put
    inputs: [images]
    key: "{{hash}}.bin"
    backend:
      fs: {{root: "{root}"}}
"#,
        url = broker.url(),
        root = root.display(),
    );
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
    // The outage itself: three seconds without the folder. Reconnecting at
    // once each time, the subscriber connected hundreds of times in it;
    // pausing 0, 0.25, 0.5, 1 and 2 s, it connects about six.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let connects = broker.log().matches(" as unmounted-store ").count();
    assert!(
        (2..=10).contains(&connects),
        "{connects} connections in 3 s:\n{}",
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
