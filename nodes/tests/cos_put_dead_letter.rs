//! `cos_put`'s `dead_letter` port against real mosquitto and s3s-fs: a
//! message the store refuses for good (HTTP 403, wrong keys) leaves on the
//! port, which an `mqtt_pub` publishes with the reason as an MQTT 5 user
//! property; its QoS 1 source is acknowledged once that publish was,
//! instead of redelivering it forever.

mod support;

use std::time::Duration;

use rumqttc::QoS;
use support::mosquitto::{eventually, numbered_payloads, publish_all, subscribe_v5, Mosquitto};
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
    backend:
      s3:
        endpoint: {endpoint}
        bucket: faces
        access_key_id_env: FLOWRUN_TEST_DL_ID
        secret_access_key_env: FLOWRUN_TEST_DL_SECRET
  dead:
    type: mqtt_pub
    inputs: [store.dead_letter]
    broker: {{url: "{url}", client_id: cloud-store-dl-pub}}
    topic: "dead/store/{{dead_letter_key}}"
    user_properties: [dead_letter_reason, dead_letter_key, topic]
"#,
        url = broker.url(),
        endpoint = store.endpoint(),
    );
    let mut dead = subscribe_v5(&broker.url(), "dead/store/#").await;
    let running = support::engine::start(&yaml, &[]);
    support::engine::wait_subscribed(&running, "images").await;

    let total = 3;
    let payloads = numbered_payloads(total, 9000);
    publish_all(
        broker.port,
        "faces/cam0",
        QoS::AtLeastOnce,
        payloads.clone(),
    )
    .await;
    let mut messages = Vec::new();
    while messages.len() < total {
        let message = tokio::time::timeout(Duration::from_secs(60), dead.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} dead letters arrived", messages.len()))
            .expect("the dead-letter subscriber runs");
        messages.push(message);
    }
    eventually(
        Duration::from_secs(10),
        "every message acknowledged",
        || running.counts("dead").acked >= total as u64,
    )
    .await;

    for (n, payload) in payloads.iter().enumerate() {
        let topic = format!("dead/store/test{n}.txt");
        let letter = messages
            .iter()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("no dead letter on {topic}"));
        assert_eq!(
            &letter.payload[..],
            &payload[..],
            "the payload itself, on {topic}"
        );
        let property = |name: &str| {
            letter
                .user_properties
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no `{name}` on {topic}: {:?}", letter.user_properties))
        };
        assert_eq!(property("dead_letter_key"), format!("test{n}.txt"));
        let error = property("dead_letter_reason");
        assert!(error.contains("s3://faces/test"), "{error}");
        assert!(error.contains("HTTP 403"), "{error}");
        assert!(
            !error.contains("flowrun-secret-wrong-value"),
            "no secret: {error}"
        );
        assert_eq!(property("topic"), "faces/cam0");
    }
    assert!(dead.try_recv().is_err(), "each once");
    // The store hands each message on; the publisher settles it.
    let counts = running.counts("store");
    assert_eq!((counts.received, counts.nacked), (total as u64, 0));
    let counts = running.counts("dead");
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
