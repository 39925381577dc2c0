//! The embedded broker: clients use it like any broker; a busy port is a clear error.

use std::time::Duration;

use crate::support::engine;
use crate::support::mosquitto::{collect, eventually, wait_for_port};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let out = collect(port, "embedded-collector", "faces/#").await;
    let yaml = format!(
        r#"
version: 1
name: produce
nodes:
  gen:
    type: generate
    count: 10
    size: 9000
    require_ack: true
  pub:
    type: mqtt_pub
    inputs: [gen]
    broker: {{url: "mqtt://127.0.0.1:{port}"}}
    topic: "faces/{{seq}}"
"#
    );
    let report = engine::start(&yaml, &[])
        .finished(Duration::from_secs(20))
        .await;
    assert!(report.is_success(), "{report:?}");
    eventually(Duration::from_secs(20), "10 messages", || out.len() == 10).await;
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
