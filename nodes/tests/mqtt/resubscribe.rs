//! Subscriptions follow the spec: a filter edited out of the spec stops
//! being delivered — live, on reload, and after a restart with the new
//! spec — although the persistent session (fixed client id) that the
//! broker keeps still holds the old one; a QoS edit takes the new QoS; and
//! what is published to the filters kept meanwhile all arrives.

use std::time::Duration;

use rumqttc::QoS;

use crate::support::engine;
use crate::support::mosquitto::{
    collect, eventually, numbered_payloads, probe_until, publish_all, Collected, Mosquitto,
};

const LIMIT: Duration = Duration::from_secs(20);

/// mqtt_sub on `filters` → mqtt_pub to `out/<topic>`, with a fixed client id.
fn forwarder(url: &str, client: &str, filters: &[(&str, u8)]) -> String {
    let topics: Vec<String> = filters
        .iter()
        .map(|(f, q)| format!("{{filter: \"{f}\", qos: {q}}}"))
        .collect();
    format!(
        r#"
version: 1
nodes:
  sub:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: {client}}}
    topics: [{topics}]
  fwd:
    type: mqtt_pub
    inputs: [sub]
    broker: {{url: "{url}", client_id: {client}-fwd}}
    topic: "out/{{topic_level_0}}/{{topic_level_1}}"
"#,
        topics = topics.join(", ")
    )
}

async fn wait_state(running: &engine::Running, node: &str, state: &str) {
    eventually(LIMIT, &format!("`{node}` to be `{state}`"), || {
        running.state(node) == state
    })
    .await;
}

/// Publishes `first` then `second` on one connection, waits for `second`
/// to come out, and says whether `first` came out too: the subscriber
/// gets them in order, so had `first` been delivered it would be out first.
async fn delivered_before(broker: &Mosquitto, out: &Collected, first: &str, second: &str) -> bool {
    publish_all(
        broker.port,
        first,
        QoS::AtLeastOnce,
        vec![b"first".to_vec()],
    )
    .await;
    publish_all(
        broker.port,
        second,
        QoS::AtLeastOnce,
        vec![b"second".to_vec()],
    )
    .await;
    let second_out = format!("out/{second}");
    eventually(LIMIT, &format!("{second} forwarded"), || {
        out.topics().contains(&second_out)
    })
    .await;
    out.topics().contains(&format!("out/{first}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_renamed_in_the_spec_stops_being_delivered_live_and_after_a_restart() {
    let broker = Mosquitto::start();
    let url = broker.url();
    let out = collect(broker.port, "collector", "out/#").await;
    let client = "resub-rename";

    let running = engine::start(
        &forwarder(&url, client, &[("kept/#", 1), ("alpha/#", 1)]),
        &[],
    );
    wait_state(
        &running,
        "sub",
        "subscribed alpha/# (qos 1), kept/# (qos 1)",
    )
    .await;
    assert!(delivered_before(&broker, &out, "alpha/1", "kept/1").await);

    // Live: alpha → beta, while 300 messages go to the kept filter.
    let stream = tokio::spawn(publish_all(
        broker.port,
        "kept/stream",
        QoS::AtLeastOnce,
        numbered_payloads(300, 32),
    ));
    let edited = engine::plan(
        &forwarder(&url, client, &[("kept/#", 1), ("beta/#", 1)]),
        &[],
    );
    let mut report = running.handle.reload(edited).await.expect("engine running");
    // The reload is applied once the broker confirmed the new filters.
    assert!(report.ready(LIMIT).await.is_empty(), "never ready");
    assert_eq!(
        running.state("sub"),
        "subscribed beta/# (qos 1), kept/# (qos 1)"
    );
    assert!(
        report
            .details()
            .iter()
            .any(|l| l.contains("topics[1].filter alpha/# → beta/#")),
        "{:?}",
        report.details()
    );
    wait_state(&running, "sub", "subscribed beta/# (qos 1), kept/# (qos 1)").await;
    assert!(
        !delivered_before(&broker, &out, "alpha/2", "beta/2").await,
        "alpha/# is still delivered after it was edited out of the spec"
    );
    stream.await.unwrap();
    eventually(LIMIT, "every message to the kept filter", || {
        out.topics()
            .iter()
            .filter(|t| *t == "out/kept/stream")
            .count()
            >= 300
    })
    .await;
    assert!(running.stop().await.is_success());

    // Restarted with a new spec: the kept session still holds beta/#.
    let restarted = engine::start(
        &forwarder(&url, client, &[("kept/#", 1), ("gamma/#", 1)]),
        &[],
    );
    wait_state(
        &restarted,
        "sub",
        "subscribed gamma/# (qos 1), kept/# (qos 1)",
    )
    .await;
    assert!(
        !delivered_before(&broker, &out, "beta/3", "gamma/3").await,
        "beta/# is still delivered after a restart with a spec without it"
    );

    // A QoS edit, live: subscribed again at the new QoS.
    let edited = engine::plan(
        &forwarder(&url, client, &[("kept/#", 1), ("gamma/#", 2)]),
        &[],
    );
    restarted
        .handle
        .reload(edited)
        .await
        .expect("engine running");
    wait_state(
        &restarted,
        "sub",
        "subscribed gamma/# (qos 2), kept/# (qos 1)",
    )
    .await;
    assert!(restarted.stop().await.is_success());
    let stream: Vec<_> = out
        .messages()
        .into_iter()
        .filter(|(topic, _)| topic == "out/kept/stream")
        .collect();
    let distinct: std::collections::HashSet<_> =
        stream.iter().map(|(_, payload)| payload.clone()).collect();
    assert_eq!(distinct.len(), 300, "a message to the kept filter was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_topic_renamed_live_stops_being_bridged() {
    let edge = Mosquitto::start();
    let (cloud, out) = Mosquitto::start_collecting("#").await;
    let bridge = |pattern: &str| {
        format!(
            r#"
version: 1
nodes:
  link:
    type: mqtt_bridge
    local: {{url: "{}", client_id: resub-bridge-local}}
    remote: {{url: "{}", client_id: resub-bridge-remote}}
    topics:
      - {{pattern: "{pattern}", qos: 1, remote_prefix: "out/"}}
"#,
            edge.url(),
            cloud.url()
        )
    };
    let running = engine::start(&bridge("alpha/#"), &[]);
    // A bridge's subscription shows only by carrying something.
    probe_until(
        edge.port,
        "alpha/probe",
        b"a",
        LIMIT,
        "alpha/# bridged",
        || out.topics().contains(&"out/alpha/probe".to_owned()),
    )
    .await;
    let edited = engine::plan(&bridge("beta/#"), &[]);
    running.handle.reload(edited).await.expect("engine running");
    // Published before every probe, on the same broker: had alpha/# still
    // been bridged, it would have come out before the first probe that did.
    publish_all(
        edge.port,
        "alpha/after",
        QoS::AtLeastOnce,
        vec![b"a".to_vec()],
    )
    .await;
    probe_until(
        edge.port,
        "beta/probe",
        b"b",
        LIMIT,
        "beta/# bridged after the edit",
        || out.topics().contains(&"out/beta/probe".to_owned()),
    )
    .await;
    assert!(
        !out.topics().contains(&"out/alpha/after".to_owned()),
        "alpha/# is still bridged after it was edited out of the spec"
    );
    assert!(running.stop().await.is_success());
}
