//! flowrun's mqtt_bridge against mosquitto's own bridge: equivalent configs,
//! the same traffic, the same messages on the same topics.

use std::time::Duration;

use flowrun_test_support::wait;
use rumqttc::QoS;

use crate::support::engine;
use crate::support::mosquitto::{
    bridged_all_before, collect, eventually, numbered_payloads, probe_until, publish_all,
    Collected, Mosquitto, Options,
};

/// mosquitto.conf `topic` lines and the same entries for mqtt_bridge.
const MOSQUITTO_TOPICS: &str = "topic sensors/# out 1 edge/ cloud/\n\
                                topic cmd/# in 1 local/ remote/\n\
                                topic chat/# both 1\n";

pub fn flowrun_spec(local: &str, remote: &str) -> String {
    format!(
        r#"
version: 1
name: bridge
nodes:
  bridge:
    type: mqtt_bridge
    local: {{url: "{local}"}}
    remote: {{url: "{remote}"}}
    status_topic: status/bridge
    topics:
      - {{pattern: "sensors/#", direction: out, qos: 1, local_prefix: edge/, remote_prefix: cloud/}}
      - {{pattern: "cmd/#", direction: in, qos: 1, local_prefix: local/, remote_prefix: remote/}}
      - {{pattern: "chat/#", direction: both, qos: 1}}
"#
    )
}

/// Sorted (topic, payload) pairs.
type Seen = Vec<(String, String)>;

/// Sorted (topic, payload) of what arrived, without probes and status messages.
fn seen(collected: &Collected) -> Seen {
    let mut seen: Vec<(String, String)> = collected
        .messages()
        .into_iter()
        .filter(|(topic, _)| !topic.contains("probe") && !topic.starts_with("status/"))
        .map(|(topic, payload)| (topic, String::from_utf8(payload).unwrap()))
        .collect();
    seen.sort();
    seen
}

/// Waits until the bridge carries each direction, then sends the traffic and
/// returns what each broker saw: (local, remote).
/// `local` and `remote` are the brokers' ports.
pub async fn exercise(local: u16, remote: u16) -> (Seen, Seen) {
    let at_local = collect(local, "local-collector", "#").await;
    let at_remote = collect(remote, "remote-collector", "#").await;
    let ready = || {
        let (l, r) = (at_local.messages(), at_remote.messages());
        let has = |m: &[(String, Vec<u8>)], t: &str| m.iter().any(|(topic, _)| topic == t);
        has(&r, "cloud/sensors/probe")
            && has(&l, "local/cmd/probe")
            && has(&r, "chat/probe-l")
            && has(&l, "chat/probe-r")
    };
    // Probe until every direction is up: the bridges connect and subscribe
    // on their own time.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "the bridge never carried the probes"
        );
        for (port, topic) in [
            (local, "edge/sensors/probe"),
            (remote, "remote/cmd/probe"),
            (local, "chat/probe-l"),
            (remote, "chat/probe-r"),
        ] {
            publish_all(port, topic, QoS::AtLeastOnce, vec![b"p".to_vec()]).await;
        }
        // Half a second for this round's probes, then another round.
        let _ = wait::at_most(Duration::from_millis(500))
            .until_async(&ready)
            .await;
    }
    // Probes that land late are no matter: `seen` leaves them out.

    let traffic_local = [
        ("edge/sensors/t1", "s1"),
        ("edge/sensors/x/y", "s2"),
        ("edge/other", "o1"),
        ("chat/l", "cl"),
        ("local/cmd/z", "lz"),
    ];
    let traffic_remote = [
        ("remote/cmd/go", "c1"),
        ("cloud/sensors/q", "rq"),
        ("chat/r", "cr"),
        ("sensors/zz", "rz"),
    ];
    for (topic, payload) in traffic_local {
        publish_all(
            local,
            topic,
            QoS::AtLeastOnce,
            vec![payload.as_bytes().to_vec()],
        )
        .await;
    }
    for (topic, payload) in traffic_remote {
        publish_all(
            remote,
            topic,
            QoS::AtLeastOnce,
            vec![payload.as_bytes().to_vec()],
        )
        .await;
    }
    eventually(Duration::from_secs(15), "the bridged traffic", || {
        seen(&at_local).len() >= 7 && seen(&at_remote).len() >= 7
    })
    .await;
    // An echo loop or a duplicate would cross before a marker sent after it.
    bridged_all_before(remote, "chat/probe-r", &at_local, Duration::from_secs(10)).await;
    bridged_all_before(local, "chat/probe-l", &at_remote, Duration::from_secs(10)).await;
    (seen(&at_local), seen(&at_remote))
}

pub fn expected() -> (Seen, Seen) {
    let pairs = |list: &[(&str, &str)]| {
        let mut v: Vec<(String, String)> = list
            .iter()
            .map(|(t, p)| (t.to_string(), p.to_string()))
            .collect();
        v.sort();
        v
    };
    (
        pairs(&[
            ("edge/sensors/t1", "s1"),
            ("edge/sensors/x/y", "s2"),
            ("edge/other", "o1"),
            ("chat/l", "cl"),
            ("local/cmd/z", "lz"),
            ("local/cmd/go", "c1"),
            ("chat/r", "cr"),
        ]),
        pairs(&[
            ("remote/cmd/go", "c1"),
            ("cloud/sensors/q", "rq"),
            ("chat/r", "cr"),
            ("sensors/zz", "rz"),
            ("cloud/sensors/t1", "s1"),
            ("cloud/sensors/x/y", "s2"),
            ("chat/l", "cl"),
        ]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flowrun_bridge_carries_what_mosquittos_bridge_carries() {
    let remote = Mosquitto::start();
    let local = Mosquitto::start_with(Options {
        extra: format!(
            "connection cloud\naddress 127.0.0.1:{}\nclientid mosquitto-bridge\ncleansession false\n{MOSQUITTO_TOPICS}",
            remote.port
        ),
        ..Options::default()
    });
    let by_mosquitto = exercise(local.port, remote.port).await;
    drop((local, remote));

    let remote = Mosquitto::start();
    let local = Mosquitto::start();
    let bridge = engine::start(&flowrun_spec(&local.url(), &remote.url()), &[]);
    let by_flowrun = exercise(local.port, remote.port).await;

    assert_eq!(by_mosquitto, expected());
    assert_eq!(by_flowrun, by_mosquitto);
    assert!(bridge.stop().await.is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_publishes_its_state_retained() {
    let mut remote = Mosquitto::start();
    let local = Mosquitto::start();
    let bridge = engine::start(&flowrun_spec(&local.url(), &remote.url()), &[]);
    let status = collect(local.port, "status-watcher", "status/bridge").await;
    eventually(Duration::from_secs(10), "state 1", || {
        status.messages().last().is_some_and(|(_, p)| p == b"1")
    })
    .await;
    tokio::task::block_in_place(|| remote.stop());
    eventually(Duration::from_secs(10), "state 0", || {
        status.messages().last().is_some_and(|(_, p)| p == b"0")
    })
    .await;
    tokio::task::block_in_place(|| remote.restart());
    eventually(Duration::from_secs(10), "state 1 again", || {
        status.messages().last().is_some_and(|(_, p)| p == b"1")
    })
    .await;
    assert!(bridge.stop().await.is_success());
}

/// A message larger than the destination's `max_packet_bytes` (and than the
/// source's) is taken from the source, refused with a count and a log line
/// and not forwarded; the connections stay up, so what follows still flows
/// (handing it on, or refusing it on arrival, would fail a connection the
/// broker then redelivers it on: a reconnect loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_refuses_an_oversize_message_and_keeps_forwarding() {
    let remote = Mosquitto::start();
    let local = Mosquitto::start();
    let out = collect(remote.port, "oversize-watcher", "faces/#").await;
    let yaml = format!(
        r#"
version: 1
name: oversize
nodes:
  link:
    type: mqtt_bridge
    local: {{url: "{}", client_id: oversize-local, max_packet_bytes: 65536}}
    remote: {{url: "{}", client_id: oversize-remote, max_packet_bytes: 65536}}
    topics: [{{pattern: "faces/#", direction: out, qos: 1}}]
"#,
        local.url(),
        remote.url()
    );
    let bridge = engine::start(&yaml, &[]);
    // "connected" is not enough: a message published before the bridge's
    // subscription reached the local broker is not the bridge's to take.
    probe_until(
        local.port,
        "faces/probe",
        b"probe",
        Duration::from_secs(20),
        "the bridge never carried a probe",
        || {
            out.messages()
                .iter()
                .any(|(topic, _)| topic == "faces/probe")
        },
    )
    .await;
    publish_all(
        local.port,
        "faces/big",
        QoS::AtLeastOnce,
        vec![vec![7; 100_000]],
    )
    .await;
    publish_all(
        local.port,
        "faces/small",
        QoS::AtLeastOnce,
        numbered_payloads(3, 10),
    )
    .await;
    let small = || {
        let messages = out.messages();
        messages.iter().filter(|(t, _)| t == "faces/small").count()
    };
    eventually(Duration::from_secs(20), "the 3 small messages", || {
        small() >= 3
    })
    .await;
    assert!(out
        .messages()
        .iter()
        .all(|(topic, _)| topic == "faces/small" || topic == "faces/probe"));
    let counts = bridge.counts("link");
    assert_eq!(counts.errors, 1, "{counts:?}");
    assert_eq!(counts.nacked, 0, "{counts:?}");
    for (broker, client) in [(&local, "oversize-local"), (&remote, "oversize-remote")] {
        let connects = broker.log().matches(&format!(" as {client} ")).count();
        assert_eq!(connects, 1, "{client} connected once:\n{}", broker.log());
    }
    assert!(bridge.stop().await.is_success());
}
