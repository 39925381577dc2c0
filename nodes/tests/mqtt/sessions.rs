//! Persistent sessions and shared subscriptions.

use std::time::Duration;

use rumqttc::QoS;

use crate::support::engine;
use crate::support::mosquitto::{
    eventually, numbered_payloads, probe_until, publish_all, Mosquitto,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_delivers_what_was_published_while_down() {
    persistent_session_delivers(V3).await;
}

/// `broker:` settings (after the client id) and client id prefix of one protocol version.
pub struct Version {
    pub settings: &'static str,
    pub prefix: &'static str,
}

const V3: Version = Version {
    settings: "",
    prefix: "",
};

/// Subscriber stopped, 200 QoS 1 messages published, subscriber back with
/// the same client id: all 200 arrive.
pub async fn persistent_session_delivers(version: Version) {
    let Version { settings, prefix } = version;
    let (broker, out) = Mosquitto::start_collecting("out/#").await;
    let url = broker.url();
    let yaml = format!(
        r#"
version: 1
name: persistent
nodes:
  sub:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: {prefix}persistent-sub{settings}}}
    topics: [{{filter: "in/#"}}]
  fwd:
    type: mqtt_pub
    inputs: [sub]
    broker: {{url: "{url}", client_id: {prefix}persistent-fwd{settings}}}
    topic: "out/{{topic_level_1}}"
"#
    );
    let first = engine::start(&yaml, &[]);
    engine::wait_subscribed(&first, "sub").await;
    assert!(first.stop().await.is_success());

    publish_all(
        broker.port,
        "in/offline",
        QoS::AtLeastOnce,
        numbered_payloads(200, 64),
    )
    .await;

    let second = engine::start(&yaml, &[]);
    eventually(Duration::from_secs(30), "all 200 messages", || {
        out.counts().len() == 200
    })
    .await;
    assert!(second.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_spreads_messages_exactly_once() {
    shared_subscription_spreads(V3).await;
}

/// Three workers on `$share/g/…` take 3,000 messages: together all of them
/// exactly once, each some.
pub async fn shared_subscription_spreads(version: Version) {
    let Version { settings, prefix } = version;
    let (broker, out) = Mosquitto::start_collecting("out/#").await;
    let url = broker.url();
    let sub = |n: u8| {
        format!(
            "  w{n}:\n    type: mqtt_sub\n    broker: {{url: \"{url}\", client_id: {prefix}worker-{n}{settings}}}\n    topics: [{{filter: \"$share/g/jobs/#\"}}]\n"
        )
    };
    let yaml = format!(
        "version: 1\nname: shared\nnodes:\n{}{}{}  fwd:\n    type: mqtt_pub\n    inputs: [w1, w2, w3]\n    broker: {{url: \"{url}\", client_id: {prefix}shared-fwd{settings}}}\n    topic: out/all\n",
        sub(1),
        sub(2),
        sub(3)
    );
    let running = engine::start(&yaml, &[]);
    for worker in ["w1", "w2", "w3"] {
        engine::wait_subscribed(&running, worker).await;
    }
    publish_all(
        broker.port,
        "jobs/all",
        QoS::AtLeastOnce,
        numbered_payloads(3000, 64),
    )
    .await;
    eventually(Duration::from_secs(60), "3000 messages", || {
        out.len() >= 3000
    })
    .await;
    let counts = out.counts();
    assert_eq!(counts.len(), 3000);
    assert!(counts.values().all(|&n| n == 1), "a message arrived twice");
    let per_worker: Vec<u64> = ["w1", "w2", "w3"]
        .iter()
        .map(|w| running.counts(w).sent)
        .collect();
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
    assert_eq!(per_worker.iter().sum::<u64>(), 3000);
    assert!(running.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_is_published_when_the_node_vanishes() {
    let (broker, wills) = Mosquitto::start_collecting("status/#").await;
    let url = broker.url();
    let yaml = format!(
        r#"
version: 1
name: will
nodes:
  sub:
    type: mqtt_sub
    broker:
      url: "{url}"
      will: {{topic: status/edge, payload: offline, retain: true}}
    topics: [{{filter: "in/#"}}]
"#
    );
    let running = engine::start(&yaml, &[]);
    engine::wait_subscribed(&running, "sub").await;
    assert_eq!(wills.len(), 0);
    // Stopping drops the connection without a DISCONNECT, like a crash would.
    assert!(running.stop().await.is_success());
    eventually(Duration::from_secs(10), "the will", || wills.len() == 1).await;
    assert_eq!(
        wills.messages()[0],
        ("status/edge".to_string(), b"offline".to_vec())
    );
}

/// mosquitto (2.0.11) forgets a persistent session's shared subscriptions
/// when it restarts, yet reports the session as present: without
/// subscribing again, nothing published after the restart would arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_subscription_receives_again_after_a_broker_restart() {
    let (mut broker, out) = Mosquitto::start_collecting("out/#").await;
    let url = broker.url();
    let yaml = format!(
        r#"
version: 1
name: shared-restart
nodes:
  sub:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: shared-restart-sub, reconnect_max_ms: 500}}
    topics: [{{filter: "$share/g/jobs/#", qos: 1}}]
  fwd:
    type: mqtt_pub
    inputs: [sub]
    broker: {{url: "{url}", client_id: shared-restart-fwd, reconnect_max_ms: 500}}
    topic: out/all
"#
    );
    let running = engine::start(&yaml, &[]);
    engine::wait_subscribed(&running, "sub").await;
    tokio::task::block_in_place(|| broker.restart());

    // Published until one arrives: those before the node subscribed again
    // have no subscriber, as the broker sees it.
    probe_until(
        broker.port,
        "jobs/after",
        b"after",
        Duration::from_secs(20),
        "nothing published after the restart arrived",
        || out.len() > 0,
    )
    .await;
    assert!(running.stop().await.is_success());
}
