//! `require_subscribers`: over MQTT 5 a cloud broker answers a publish no
//! one subscribes to with "no matching subscribers". With the setting the
//! link (forwarder or bridge) holds such a message unacknowledged and
//! publishes it again until a subscriber shows up: none is lost. What it
//! holds counts against its `buffer`, so a cloud without subscribers does
//! not move the edge's backlog into the link's memory.

use std::time::Duration;

use rumqttc::QoS;

use crate::support::engine;
use crate::support::mosquitto::{
    collect, eventually, numbered_payloads, publish_all, Collected, Mosquitto,
};

const FACES: usize = 20;
/// The link's `buffer`: fewer than the faces, so that some wait at the edge.
const BUFFER: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarder_holds_faces_until_the_cloud_has_a_subscriber() {
    held_until_subscribed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_holds_faces_until_the_cloud_has_a_subscriber() {
    held_until_subscribed(true).await;
}

async fn held_until_subscribed(bridge: bool) {
    let edge = Mosquitto::start();
    let cloud = Mosquitto::start();
    let cloud_side = format!(
        r#"{{url: "{}", client_id: link-cloud, protocol: "5", reconnect_min_ms: 100, reconnect_max_ms: 500}}"#,
        cloud.url()
    );
    let (yaml, node) = if bridge {
        let yaml = format!(
            r#"
version: 1
name: held-bridge
nodes:
  link:
    type: mqtt_bridge
    buffer: {BUFFER}
    local: {{url: "{edge}", client_id: link-edge}}
    remote: {cloud_side}
    topics:
      - {{pattern: "faces/#", direction: out, qos: 1, require_subscribers: true}}
      - {{pattern: probe, direction: out, qos: 1}}
"#,
            edge = edge.url()
        );
        (yaml, "link")
    } else {
        let yaml = format!(
            r#"
version: 1
name: held-forwarder
nodes:
  from_edge:
    type: mqtt_sub
    broker: {{url: "{edge}", client_id: link-edge}}
    topics: [{{filter: "faces/#", qos: 1}}, {{filter: probe, qos: 1}}]
  to_cloud:
    type: mqtt_pub
    inputs: [from_edge]
    broker: {cloud_side}
    topic: "{{topic}}"
    qos: 1
    buffer: {BUFFER}
    require_subscribers: true
"#,
            edge = edge.url()
        );
        (yaml, "to_cloud")
    };
    let running = engine::start(&yaml, &[]);
    let probes = link_up(&edge, &cloud).await;
    let held = running.metrics.node(node).event("no_subscribers");

    publish_all(
        edge.port,
        "faces/door-1",
        QoS::AtLeastOnce,
        numbered_payloads(FACES, 1024),
    )
    .await;
    // Each face reached the cloud broker, which had no subscriber for it,
    // and was held rather than acknowledged to the edge broker.
    eventually(Duration::from_secs(20), "every face held", || {
        held.get() >= FACES as u64
    })
    .await;
    let forwarded_before = running.counts(node).sent;
    // Held faces are published again, with backoff, and held again.
    eventually(Duration::from_secs(20), "faces published again", || {
        held.get() >= 2 * FACES as u64
    })
    .await;
    assert_eq!(
        running.counts(node).sent,
        forwarded_before,
        "a face no one received was acknowledged"
    );
    let faces_taken = running.counts(node).received - probes.len() as u64;
    assert!(
        faces_taken <= BUFFER as u64,
        "the link took {faces_taken} faces from the edge while no one subscribed"
    );

    let out = collect(cloud.port, "cloud-worker", "faces/#").await;
    eventually(Duration::from_secs(30), "every face at the cloud", || {
        out.counts().len() == FACES
    })
    .await;
    assert!(running.stop().await.is_success());
}

/// The link carries a probe (a topic without the setting) to a collector,
/// which it returns: it sees every probe the link took.
async fn link_up(edge: &Mosquitto, cloud: &Mosquitto) -> Collected {
    let probes: Collected = collect(cloud.port, "probe-collector", "probe").await;
    eventually(Duration::from_secs(15), "the link carries a probe", || {
        if probes.len() > 0 {
            return true;
        }
        let port = edge.port;
        tokio::spawn(async move {
            publish_all(port, "probe", QoS::AtLeastOnce, vec![b"probe".to_vec()]).await
        });
        false
    })
    .await;
    probes
}
