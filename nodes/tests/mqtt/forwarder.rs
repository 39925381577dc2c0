//! The forwarder spec (mqtt_sub on the edge broker → mqtt_pub to the cloud
//! broker) carries a QoS 1 burst with nothing lost, also across a cloud outage.

use std::time::Duration;

use rumqttc::QoS;

use super::roundtrip::wait_subscribed;
use crate::support::engine;
use crate::support::mosquitto::{collect, eventually, numbered_payloads, publish_all, Mosquitto};

const COUNT: usize = 5000;
const SIZE: usize = 9 * 1024;

fn forwarder_spec(edge: &str, cloud: &str) -> String {
    format!(
        r#"
version: 1
name: forwarder
nodes:
  edge:
    type: mqtt_sub
    broker: {{url: "{edge}", client_id: forwarder-sub}}
    topics: [{{filter: image, qos: 1}}]
  cloud:
    type: mqtt_pub
    inputs: [edge]
    broker: {{url: "{cloud}", client_id: forwarder-pub, reconnect_max_ms: 1000}}
    topic: "{{topic}}"
    qos: 1
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_carries_5000_qos1_messages_none_lost() {
    let edge = Mosquitto::start();
    let cloud = Mosquitto::start();
    let out = collect(cloud.port, "cloud-collector", "image").await;
    let running = engine::start(&forwarder_spec(&edge.url(), &cloud.url()), &[]);
    wait_subscribed(&running, "edge").await;

    publish_all(
        edge.port,
        "image",
        QoS::AtLeastOnce,
        numbered_payloads(COUNT, SIZE),
    )
    .await;
    eventually(Duration::from_secs(120), "5000 distinct messages", || {
        out.counts().len() == COUNT
    })
    .await;
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_loses_nothing_when_the_cloud_broker_is_down_for_5s() {
    let edge = Mosquitto::start();
    let mut cloud = Mosquitto::start();
    let out = collect(cloud.port, "cloud-collector", "image").await;
    let running = engine::start(&forwarder_spec(&edge.url(), &cloud.url()), &[]);
    wait_subscribed(&running, "edge").await;

    let producer = tokio::spawn(publish_all(
        edge.port,
        "image",
        QoS::AtLeastOnce,
        numbered_payloads(COUNT, SIZE),
    ));
    eventually(Duration::from_secs(60), "the stream to start", || {
        out.len() >= 1000
    })
    .await;
    tokio::task::block_in_place(|| cloud.stop());
    // The outage itself: what the link must ride out.
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::task::block_in_place(|| cloud.restart());

    producer.await.unwrap();
    eventually(Duration::from_secs(120), "5000 distinct messages", || {
        out.counts().len() == COUNT
    })
    .await;
    assert!(running.stop().await.is_success());
}
