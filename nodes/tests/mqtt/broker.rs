//! The embedded broker: clients use it like any broker; a busy port is a clear error.

use std::time::Duration;

use flowrun_nodes::mqtt::client::Received;
use tokio::sync::mpsc::UnboundedReceiver;

use super::roundtrip::{generate_spec, producer_spec, relay_spec};
use crate::support::engine;
use crate::support::mosquitto::{collect, eventually, free_port, subscribe_v5, wait_for_port};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_carries_messages() {
    let port = free_port();
    let broker = engine::start(
        &format!("version: 1\nname: embedded\nnodes:\n  broker:\n    type: mqtt_broker\n    listen: \"127.0.0.1:{port}\"\n"),
        &[],
    );
    tokio::task::block_in_place(|| wait_for_port(port, Duration::from_secs(10)));
    assert_eq!(
        broker.state("broker"),
        format!("listening on 127.0.0.1:{port}")
    );
    let out = collect(port, "embedded-collector", "in/#").await;
    let yaml = producer_spec(&format!(r#"url: "mqtt://127.0.0.1:{port}""#), 10, 9000, "");
    let report = engine::start(&yaml, &[])
        .finished(Duration::from_secs(20))
        .await;
    assert!(report.is_success(), "{report:?}");
    eventually(Duration::from_secs(20), "10 messages", || out.len() == 10).await;
    assert!(broker.stop().await.is_success());
}

/// An embedded broker speaking MQTT 5 on a free port, and its URL.
async fn start_v5_broker() -> (engine::Running, String) {
    let port = free_port();
    let broker = engine::start(
        &format!("version: 1\nname: embedded-v5\nnodes:\n  broker:\n    type: mqtt_broker\n    listen: \"127.0.0.1:{port}\"\n    protocol: \"5\"\n"),
        &[],
    );
    tokio::task::block_in_place(|| wait_for_port(port, Duration::from_secs(10)));
    (broker, format!("mqtt://127.0.0.1:{port}"))
}

/// The next `count` messages, sorted by topic; each waited for at most 20 s.
async fn receive(out: &mut UnboundedReceiver<Received>, count: usize) -> Vec<Received> {
    let mut messages = Vec::new();
    while messages.len() < count {
        let message = tokio::time::timeout(Duration::from_secs(20), out.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {count} messages arrived", messages.len()))
            .expect("the subscriber is gone");
        messages.push(message);
    }
    messages.sort_by(|a, b| a.topic.cmp(&b.topic));
    messages
}

/// `out/0` … `out/{count - 1}`, sorted as text.
fn numbered_topics(count: usize) -> Vec<String> {
    let mut topics: Vec<String> = (0..count).map(|i| format!("out/{i}")).collect();
    topics.sort();
    topics
}

/// generate → v5 mqtt_pub → the embedded broker speaking 5 → v5 mqtt_sub →
/// v5 mqtt_pub → the broker → a v5 subscriber: 9 KiB payloads at QoS 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_v5_broker_round_trips_9kb_at_qos1() {
    let (broker, url) = start_v5_broker().await;
    let mut out = subscribe_v5(&url, "out/#").await;
    let relay = engine::start(&relay_spec(&url, "5", 1), &[]);
    engine::wait_subscribed(&relay, "sub").await;
    let (size, count) = (9 * 1024, 20);
    let report = engine::start(&generate_spec(&url, "5", 1, size, count), &[])
        .finished(Duration::from_secs(30))
        .await;
    assert!(report.is_success(), "{report:?}");
    let messages = receive(&mut out, count).await;
    let expected: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    for message in &messages {
        assert!(
            message.payload == expected,
            "payload on {} differs",
            message.topic
        );
    }
    let topics: Vec<String> = messages.into_iter().map(|m| m.topic).collect();
    assert_eq!(topics, numbered_topics(count));
    assert!(relay.stop().await.is_success());
    assert!(broker.stop().await.is_success());
}

/// A v5 mqtt_sub stopped, 50 QoS 1 messages published, the subscriber back
/// with the same client id: the embedded broker kept its session, all 50 arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_v5_broker_keeps_a_persistent_session() {
    let (broker, url) = start_v5_broker().await;
    let mut out = subscribe_v5(&url, "out/#").await;
    let relay = relay_spec(&url, "5", 1);
    let first = engine::start(&relay, &[]);
    engine::wait_subscribed(&first, "sub").await;
    assert!(first.stop().await.is_success());
    let count = 50;
    let report = engine::start(&generate_spec(&url, "5", 1, 64, count), &[])
        .finished(Duration::from_secs(30))
        .await;
    assert!(report.is_success(), "{report:?}");
    let second = engine::start(&relay, &[]);
    let topics: Vec<String> = receive(&mut out, count)
        .await
        .into_iter()
        .map(|m| m.topic)
        .collect();
    assert_eq!(topics, numbered_topics(count));
    assert!(second.stop().await.is_success());
    assert!(broker.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let yaml = format!(
        "version: 1\nname: busy\nnodes:\n  broker:\n    type: mqtt_broker\n    listen: \"127.0.0.1:{port}\"\n    on_failure: stop\n"
    );
    let report = engine::start(&yaml, &[])
        .finished(Duration::from_secs(10))
        .await;
    let error = report
        .failures
        .get("broker")
        .expect("the broker node failed");
    assert_eq!(
        error,
        &format!("cannot listen on 127.0.0.1:{port}: the port is already in use (another broker running?)")
    );
}
