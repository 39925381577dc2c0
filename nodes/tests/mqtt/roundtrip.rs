//! pub → sub round trips at every QoS, with image-sized and large payloads,
//! and a payload over the packet limit refused without losing the link.

use std::time::Duration;

use crate::support::engine;
use crate::support::mosquitto::{eventually, Mosquitto};

/// A graph that forwards everything under `in/` to `out/` through mqtt_sub
/// and mqtt_pub, so a message crosses both node types.
/// `protocol` is the MQTT version every node uses.
pub fn relay_spec(url: &str, protocol: &str, qos: u8) -> String {
    relay_with(url, &format!(r#", protocol: "{protocol}""#), qos, qos)
}

/// [`relay_spec`] subscribing at `qos` and publishing at `pub_qos`;
/// `broker` adds settings to both connections (`, protocol: "5"`).
pub fn relay_with(url: &str, broker: &str, qos: u8, pub_qos: u8) -> String {
    format!(
        r#"
version: 1
name: relay
nodes:
  sub:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: relay-sub{broker}}}
    topics: [{{filter: "in/#", qos: {qos}}}]
  fwd:
    type: mqtt_pub
    inputs: [sub]
    broker: {{url: "{url}", client_id: relay-pub{broker}}}
    topic: "out/{{topic_level_1}}"
    qos: {pub_qos}
"#
    )
}

/// generate → mqtt_pub: `count` messages of `size` bytes on `in/<seq>`,
/// the graph ending once the broker acknowledged each (`require_ack`).
/// `broker` is the node's broker settings, the entries of a YAML flow
/// mapping (`url: "…", client_id: producer`); `publish`, further lines of
/// the mqtt_pub node (`    qos: 1\n`). Every test that only needs
/// messages put into a broker uses it.
pub fn producer_spec(broker: &str, count: usize, size: usize, publish: &str) -> String {
    format!(
        r#"
version: 1
name: produce
nodes:
  gen:
    type: generate
    count: {count}
    size: {size}
    require_ack: true
  pub:
    type: mqtt_pub
    inputs: [gen]
    broker: {{{broker}}}
    topic: "in/{{seq}}"
{publish}"#
    )
}

/// [`producer_spec`] with every connection speaking `protocol`, at `qos`.
pub fn generate_spec(url: &str, protocol: &str, qos: u8, size: usize, count: usize) -> String {
    let broker = format!(r#"url: "{url}", client_id: producer, protocol: "{protocol}""#);
    producer_spec(&broker, count, size, &format!("    qos: {qos}\n"))
}

async fn round_trip(qos: u8, size: usize, count: usize) {
    round_trip_over("3.1.1", qos, size, count).await;
}

/// generate → mqtt_pub → broker → mqtt_sub → mqtt_pub → broker → collector,
/// every node speaking `protocol`.
pub async fn round_trip_over(protocol: &str, qos: u8, size: usize, count: usize) {
    let (broker, out) = Mosquitto::start_collecting("out/#").await;
    let relay = engine::start(&relay_spec(&broker.url(), protocol, qos), &[]);
    engine::wait_subscribed(&relay, "sub").await;

    let produce = engine::start(
        &generate_spec(&broker.url(), protocol, qos, size, count),
        &[],
    );
    let report = produce.finished(Duration::from_secs(60)).await;
    assert!(report.is_success(), "{report:?}");

    eventually(Duration::from_secs(60), "every message relayed", || {
        out.len() >= count
    })
    .await;
    let expected: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut topics: Vec<String> = out
        .messages()
        .into_iter()
        .map(|(topic, payload)| {
            assert!(payload == expected, "payload on {topic} differs");
            topic
        })
        .collect();
    topics.sort();
    topics.dedup();
    let mut want: Vec<String> = (0..count).map(|i| format!("out/{i}")).collect();
    want.sort();
    assert_eq!(topics, want);
    let report = relay.stop().await;
    assert!(report.is_success(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_qos0_9kb() {
    round_trip(0, 9 * 1024, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_qos1_9kb() {
    round_trip(1, 9 * 1024, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_qos2_9kb() {
    round_trip(2, 9 * 1024, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_qos0_2mb() {
    round_trip(0, 2 * 1024 * 1024, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_qos1_2mb() {
    round_trip(1, 2 * 1024 * 1024, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_qos2_2mb() {
    round_trip(2, 2 * 1024 * 1024, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_message_is_refused_and_the_link_stays_up() {
    let (broker, out) = Mosquitto::start_collecting("in/#").await;
    let url = broker.url();
    let yaml = format!(
        r#"
version: 1
name: oversize
nodes:
  big:
    type: generate
    count: 1
    size: 2000000
  small:
    type: generate
    count: 3
    size: 100
    require_ack: true
  pub:
    type: mqtt_pub
    inputs: [big, small]
    broker: {{url: "{url}", max_packet_bytes: 1048576}}
    topic: "in/{{source}}-{{seq}}"
"#
    );
    let running = engine::start(&yaml, &[]);
    eventually(Duration::from_secs(20), "the small messages", || {
        out.len() == 3
    })
    .await;
    // The broker's PUBACKs may reach mqtt_pub after the collector got the messages.
    eventually(
        Duration::from_secs(20),
        "3 acknowledged, the big one refused",
        || {
            let counts = running.counts("pub");
            counts.errors == 1 && counts.sent == 3
        },
    )
    .await;
    let pub_counts = running.counts("pub");
    assert_eq!(running.state("pub"), "connected");
    assert_eq!(pub_counts.nacked, 1);
    let report = running.finished(Duration::from_secs(20)).await;
    assert!(report.is_success(), "{report:?}");
}
