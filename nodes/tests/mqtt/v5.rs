//! The MQTT nodes speaking MQTT 5 (`protocol: "5"`) to mosquitto: round
//! trips, user properties, persistent and shared sessions, a bridge, and a
//! publish the broker refuses.

use std::time::Duration;

use rumqttc::QoS;

use super::forwarder::carries;
use super::roundtrip::round_trip_over;
use super::sessions::Version;
use crate::support::engine;
use crate::support::mosquitto::{
    bridged_all_before, collect, eventually, numbered_payloads, probe_until, publish_all,
    publish_with, Collected, Mosquitto, Options,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_round_trip_qos1_9kb() {
    round_trip_over("5", 1, 9 * 1024, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_round_trip_qos2_9kb() {
    round_trip_over("5", 2, 9 * 1024, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_round_trip_qos1_2mb() {
    round_trip_over("5", 1, 2 * 1024 * 1024, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_round_trip_qos2_2mb() {
    round_trip_over("5", 2, 2 * 1024 * 1024, 3).await;
}

/// generate's `source` metadata → mqtt_pub user property → broker →
/// mqtt_sub metadata → a topic made from it downstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_properties_travel_from_pub_metadata_to_sub_metadata() {
    let (broker, out) = Mosquitto::start_collecting("out/#").await;
    let url = broker.url();
    let relay = format!(
        r#"
version: 1
name: props-relay
nodes:
  sub:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: props-sub, protocol: "5"}}
    topics: [{{filter: "props/#"}}]
  fwd:
    type: mqtt_pub
    inputs: [sub]
    broker: {{url: "{url}", client_id: props-fwd}}
    topic: "out/{{source}}/{{topic_level_1}}"
"#
    );
    let relay = engine::start(&relay, &[]);
    engine::wait_subscribed(&relay, "sub").await;
    let produce = format!(
        r#"
version: 1
name: props-produce
nodes:
  cam7:
    type: generate
    count: 5
    size: 64
    require_ack: true
  pub:
    type: mqtt_pub
    inputs: [cam7]
    broker: {{url: "{url}", client_id: props-pub, protocol: 5}}
    topic: "props/{{seq}}"
    user_properties: [source]
"#
    );
    let report = engine::start(&produce, &[])
        .finished(Duration::from_secs(30))
        .await;
    assert!(report.is_success(), "{report:?}");
    eventually(Duration::from_secs(20), "5 relayed messages", || {
        out.len() >= 5
    })
    .await;
    assert_eq!(
        out.topics(),
        (0..5).map(|i| format!("out/cam7/{i}")).collect::<Vec<_>>()
    );
    assert!(relay.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_persistent_session_delivers_what_was_published_while_down() {
    super::sessions::persistent_session_delivers(Version {
        settings: r#", protocol: "5""#,
        prefix: "v5-",
    })
    .await;
}

/// With a receive maximum of 20 per worker, as a cloud worker would set it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_shared_subscription_spreads_messages_exactly_once() {
    super::sessions::shared_subscription_spreads(Version {
        settings: r#", protocol: "5", inflight: 20"#,
        prefix: "v5-",
    })
    .await;
}

/// A 3.1.1 edge broker bridged to a cloud broker over MQTT 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_with_a_v5_remote_carries_1000_qos1_messages() {
    let spec = |edge: &Mosquitto, cloud: &Mosquitto| {
        format!(
            r#"
version: 1
name: bridge-v5
nodes:
  link:
    type: mqtt_bridge
    local: {{url: "{edge}", client_id: bridge-v5-local}}
    remote: {{url: "{cloud}", client_id: bridge-v5-remote, protocol: "5"}}
    topics: [{{pattern: image, direction: out, qos: 1}}]
"#,
            edge = edge.url(),
            cloud = cloud.url()
        )
    };
    carries(spec, true, (1000, 1024), Duration::from_secs(60)).await;
}

/// mosquitto answers a v5 publish its ACL denies with PUBACK "not
/// authorized": that message is failed, the others are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_the_broker_refuses_is_not_acknowledged() {
    let broker = Mosquitto::start_with(Options {
        acl: Some("topic read #\ntopic write good/#\n".into()),
        ..Options::default()
    });
    let out = collect(broker.port, "collector", "#").await;
    let url = broker.url();
    let yaml = format!(
        r#"
version: 1
name: refused
nodes:
  bad:
    type: generate
    count: 1
    size: 10
  good:
    type: generate
    count: 3
    size: 10
    require_ack: true
  pub:
    type: mqtt_pub
    inputs: [bad, good]
    broker: {{url: "{url}", protocol: "5"}}
    topic: "{{source}}/{{seq}}"
"#
    );
    let running = engine::start(&yaml, &[]);
    eventually(Duration::from_secs(20), "3 acknowledged, 1 refused", || {
        let counts = running.counts("pub");
        counts.errors == 1 && counts.sent == 3
    })
    .await;
    assert_eq!(running.counts("pub").nacked, 1);
    let report = running.finished(Duration::from_secs(20)).await;
    assert!(report.is_success(), "{report:?}");
    // The refusal ends the connection (rumqttc 0.24), so a publish in
    // flight with it may be delivered twice: QoS 1 is at least once.
    let topics = || {
        let mut topics = out.topics();
        topics.dedup();
        topics
    };
    eventually(Duration::from_secs(10), "the 3 good messages", || {
        topics().len() >= 3
    })
    .await;
    assert_eq!(topics(), ["good/0", "good/1", "good/2"]);
}

/// A subscriber takes a message larger than its `max_packet_bytes` (the
/// limit of what it sends) instead of having the broker drop it unseen:
/// the sinks decide what is too large, and can set it aside with a reason.
/// What follows still flows, on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_subscriber_takes_a_message_over_its_max_packet_bytes() {
    let (broker, out) = Mosquitto::start_collecting("out/#").await;
    let url = broker.url();
    let yaml = format!(
        r#"
version: 1
name: small-packets
nodes:
  sub:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: small-sub, protocol: "5", max_packet_bytes: 65536}}
    topics: [{{filter: "in/#"}}]
  fwd:
    type: mqtt_pub
    inputs: [sub]
    broker: {{url: "{url}", client_id: small-fwd}}
    topic: "out/{{topic_level_1}}"
"#
    );
    let running = engine::start(&yaml, &[]);
    engine::wait_subscribed(&running, "sub").await;
    publish_all(
        broker.port,
        "in/big",
        QoS::AtLeastOnce,
        vec![vec![7; 100_000]],
    )
    .await;
    publish_all(
        broker.port,
        "in/small",
        QoS::AtLeastOnce,
        numbered_payloads(3, 10),
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the large and the 3 small messages",
        || out.len() >= 4,
    )
    .await;
    assert_eq!(
        out.topics(),
        ["out/big", "out/small", "out/small", "out/small"]
    );
    assert!(
        running.state("sub").starts_with("subscribed"),
        "{}",
        running.state("sub")
    );
    assert!(running.stop().await.is_success());
}

/// The forwarder spec with MQTT 5 on both brokers: a 5,000-message burst at
/// QoS 1, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_forwarder_carries_5000_qos1_messages_none_lost() {
    let spec = |edge: &Mosquitto, cloud: &Mosquitto| {
        format!(
            r#"
version: 1
name: forwarder-v5
nodes:
  edge:
    type: mqtt_sub
    broker: {{url: "{edge}", client_id: forwarder-v5-sub, protocol: "5"}}
    topics: [{{filter: image, qos: 1}}]
  cloud:
    type: mqtt_pub
    inputs: [edge]
    broker: {{url: "{cloud}", client_id: forwarder-v5-pub, protocol: "5"}}
    topic: "{{topic}}"
    qos: 1
"#,
            edge = edge.url(),
            cloud = cloud.url()
        )
    };
    carries(spec, false, (5000, 9 * 1024), Duration::from_secs(120)).await;
}

/// A publish larger than the maximum packet size the broker announced is
/// set aside with a count and a reason; the ones after it are acknowledged
/// as their own (rumqttc drops it without a packet id, so matching the
/// broker's acknowledgements to messages must skip it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_over_the_brokers_maximum_packet_size_is_set_aside() {
    let broker = Mosquitto::start_with(Options {
        extra: "max_packet_size 65536".into(),
        ..Options::default()
    });
    let out = collect(broker.port, "collector", "#").await;
    let url = broker.url();
    let yaml = format!(
        r#"
version: 1
name: too-large
nodes:
  big:
    type: generate
    count: 1
    size: 100000
  good:
    type: generate
    count: 3
    size: 10
    require_ack: true
  pub:
    type: mqtt_pub
    inputs: [big, good]
    broker: {{url: "{url}", protocol: "5", reconnect_min_ms: 50}}
    topic: "{{source}}/{{seq}}"
"#
    );
    let running = engine::start(&yaml, &[]);
    eventually(
        Duration::from_secs(20),
        "3 acknowledged, 1 set aside",
        || {
            let counts = running.counts("pub");
            counts.errors == 1 && counts.sent == 3
        },
    )
    .await;
    let report = running.finished(Duration::from_secs(20)).await;
    assert!(report.is_success(), "{report:?}");
    eventually(Duration::from_secs(10), "the 3 good messages", || {
        out.len() >= 3
    })
    .await;
    let mut topics = out.topics();
    topics.dedup();
    assert_eq!(topics, ["good/0", "good/1", "good/2"]);
}

/// How many copies of `payload` on `topic` a collector saw.
fn copies(collected: &Collected, topic: &str, payload: &[u8]) -> usize {
    collected
        .messages()
        .iter()
        .filter(|(t, p)| t == topic && p == payload)
        .count()
}

/// A bridge whose sides speak MQTT 5 subscribes as a bridge: a retained
/// message stays retained on the other side ("retain as published": over
/// 3.1.1 a broker clears the flag on what it forwards to a subscriber), so a
/// subscriber that comes later still gets it; and what the bridge publishes
/// on one side does not come back to it ("no local"), so `both` entries
/// carry each message once each way with no payload bookkeeping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v5_bridge_keeps_retained_messages_retained_and_hears_no_echo() {
    let local = Mosquitto::start();
    let remote = Mosquitto::start();
    let at_local = collect(local.port, "local-watcher", "chat/#").await;
    let at_remote = collect(remote.port, "remote-watcher", "chat/#").await;
    let yaml = format!(
        r#"
version: 1
name: bridge-v5-both
nodes:
  link:
    type: mqtt_bridge
    local: {{url: "{}", client_id: both-local, protocol: "5"}}
    remote: {{url: "{}", client_id: both-remote, protocol: "5"}}
    topics: [{{pattern: "chat/#", direction: both, qos: 1}}]
"#,
        local.url(),
        remote.url()
    );
    let bridge = engine::start(&yaml, &[]);
    for (from, seen, topic) in [
        (&local, &at_remote, "chat/probe-out"),
        (&remote, &at_local, "chat/probe-in"),
    ] {
        probe_until(
            from.port,
            topic,
            b"probe",
            Duration::from_secs(15),
            "the bridge never carried a probe across",
            || copies(seen, topic, b"probe") > 0,
        )
        .await;
    }

    publish_with(
        local.port,
        "chat/door",
        QoS::AtLeastOnce,
        true,
        vec![b"open".to_vec()],
    )
    .await;
    publish_all(
        remote.port,
        "chat/reply",
        QoS::AtLeastOnce,
        vec![b"ok".to_vec()],
    )
    .await;
    eventually(Duration::from_secs(10), "both carried across", || {
        copies(&at_remote, "chat/door", b"open") == 1 && copies(&at_local, "chat/reply", b"ok") == 1
    })
    .await;
    let late = collect(remote.port, "late-watcher", "chat/door").await;
    eventually(Duration::from_secs(10), "the retained message", || {
        copies(&late, "chat/door", b"open") == 1
    })
    .await;
    // An echo of either message would cross before a marker sent after it.
    bridged_all_before(
        remote.port,
        "chat/probe-in",
        &at_local,
        Duration::from_secs(10),
    )
    .await;
    bridged_all_before(
        local.port,
        "chat/probe-out",
        &at_remote,
        Duration::from_secs(10),
    )
    .await;
    for (seen, topic, payload) in [
        (&at_local, "chat/door", &b"open"[..]),
        (&at_remote, "chat/door", b"open"),
        (&at_local, "chat/reply", b"ok"),
        (&at_remote, "chat/reply", b"ok"),
    ] {
        assert_eq!(
            copies(seen, topic, payload),
            1,
            "{topic} {:?}",
            seen.messages()
        );
    }
    assert!(bridge.stop().await.is_success());
}
