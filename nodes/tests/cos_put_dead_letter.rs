//! `cos_put`'s dead-letter topic against real mosquitto and s3s-fs: a
//! message the store refuses for good (HTTP 403, wrong keys) is published
//! with the reason to the dead-letter topic, and its QoS 1 source is
//! acknowledged instead of redelivering it forever.

mod support;

use std::time::Duration;

use rumqttc::QoS;
use support::mosquitto::{collect, eventually, numbered_payloads, publish_all, Mosquitto};
use support::s3::S3Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_lands_on_the_dead_letter_topic_with_its_reason_and_is_acknowledged() {
    let broker = Mosquitto::start();
    let store = S3Server::start();
    store.create_bucket("faces").await;
    std::env::set_var("FLOWRUN_TEST_DL_ID", "nobody");
    std::env::set_var("FLOWRUN_TEST_DL_SECRET", "flowrun-secret-wrong-value");
    let yaml = format!(
        r#"version: 1
nodes:
  images:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: cloud-store-dl}}
    topics: [{{filter: "faces/#", qos: 1}}]
  store:
    type: cos_put
    inputs: [images]
    dead_letter_topic:
      broker: {{url: "{url}"}}
      topic: dead/store
    backend:
      s3:
        endpoint: {endpoint}
        bucket: faces
        access_key_id_env: FLOWRUN_TEST_DL_ID
        secret_access_key_env: FLOWRUN_TEST_DL_SECRET
"#,
        url = broker.url(),
        endpoint = store.endpoint(),
    );
    let dead = collect(broker.port, "dead-letter-watcher", "dead/store/#").await;
    let running = support::engine::start(&yaml, &[]);
    eventually(Duration::from_secs(20), "the subscription", || {
        running.state("images").contains("subscribed")
    })
    .await;

    let total = 3;
    let payloads = numbered_payloads(total, 9000);
    publish_all(
        broker.port,
        "faces/cam0",
        QoS::AtLeastOnce,
        payloads.clone(),
    )
    .await;
    eventually(Duration::from_secs(60), "every message set aside", || {
        dead.len() >= 2 * total
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "every message acknowledged",
        || running.counts("store").acked >= total as u64,
    )
    .await;

    let messages = dead.messages();
    for (n, payload) in payloads.iter().enumerate() {
        let topic = format!("dead/store/test{n}.txt");
        let (_, body) = messages
            .iter()
            .find(|(t, _)| *t == topic)
            .unwrap_or_else(|| panic!("no dead letter on {topic}: {messages:?}"));
        assert_eq!(body, payload, "the payload itself, on {topic}");
        let (_, why) = messages
            .iter()
            .find(|(t, _)| *t == format!("{topic}/error"))
            .unwrap_or_else(|| panic!("no reason on {topic}/error"));
        let why: serde_json::Value = serde_json::from_slice(why).unwrap();
        assert_eq!(why["key"], format!("test{n}.txt"));
        let error = why["error"].as_str().unwrap();
        assert!(error.contains("s3://faces/test"), "{error}");
        assert!(error.contains("HTTP 403"), "{error}");
        assert!(
            !error.contains("flowrun-secret-wrong-value"),
            "no secret: {error}"
        );
        assert_eq!(why["meta"]["topic"], "faces/cam0");
    }
    assert_eq!(messages.len(), 2 * total, "each once: {messages:?}");
    let counts = running.counts("store");
    assert_eq!((counts.acked, counts.nacked), (total as u64, 0));
    assert!(
        running.state("store").contains("dead_lettered=3"),
        "{}",
        running.state("store")
    );
    assert!(store.list("faces").await.is_empty(), "nothing stored");
    let report = running.stop().await;
    assert!(report.is_success(), "{report:?}");
}
