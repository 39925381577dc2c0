//! `protocol: auto` against two real brokers: RabbitMQ 3.10 (MQTT 3.1.1
//! only: it closes an MQTT 5 connection without a CONNACK) and mosquitto 2
//! (MQTT 5); a wrong password named after the fallback. The other failures
//! are in failures.rs.

use std::time::Duration;

use crate::mqtt::roundtrip::{producer_spec, relay_with};
use crate::support::engine;
use crate::support::logs;
use crate::support::mosquitto::{collect, eventually, Mosquitto};
use crate::support::rabbitmq::RabbitMq;

/// in/# → mqtt_sub → mqtt_pub → out/#, publishing at QoS 1; every broker
/// connection at the default protocol.
fn relay(url: &str, qos: u8) -> String {
    relay_with(url, "", qos, 1)
}

/// [`producer_spec`] of `count` 9 KB messages, reconnecting quickly;
/// `broker_extra` adds broker settings (`, protocol: "5"`).
pub fn producer(url: &str, broker_extra: &str, count: usize) -> String {
    let broker = format!(
        r#"url: "{url}", client_id: producer, reconnect_min_ms: 50, reconnect_max_ms: 200{broker_extra}"#
    );
    producer_spec(&broker, count, 9216, "")
}

/// Runs the relay and the producer against `url`; every message must
/// arrive on out/#, once per topic at least. `port` is the broker's, for
/// the collector (a plain 3.1.1 client, which both brokers speak).
async fn carries_every_message(url: &str, port: u16, qos: u8, count: usize) -> engine::Running {
    let out = collect(port, "collector", "out/#").await;
    let relay = engine::start(&relay(url, qos), &[]);
    engine::wait_subscribed(&relay, "sub").await;
    let report = engine::start(&producer(url, "", count), &[])
        .finished(Duration::from_secs(60))
        .await;
    assert!(report.is_success(), "{report:?}");
    eventually(Duration::from_secs(30), "every message relayed", || {
        out.topics().len() >= count
    })
    .await;
    let want: Vec<String> = {
        let mut want: Vec<String> = (0..count).map(|i| format!("out/{i}")).collect();
        want.sort();
        want
    };
    let mut got = out.topics();
    got.dedup();
    assert_eq!(got, want);
    relay
}

/// The log lines about the broker at `url` (its port is unique to a test).
fn lines_about(url: &str) -> Vec<String> {
    logs::init()
        .text()
        .lines()
        .filter(|line| line.contains(url))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_against_rabbitmq_negotiates_3_1_1_and_carries_every_message() {
    let broker = RabbitMq::start();
    let url = broker.url();
    // QoS 2 asked: RabbitMQ grants 1, which the status says.
    let relay = carries_every_message(&url, broker.port, 2, 50).await;
    let state = relay.state("sub");
    assert_eq!(state, "subscribed in/# (qos 1, 2 asked)");
    let report = relay.stop().await;
    assert!(report.is_success(), "{report:?}");

    let lines = lines_about(&url);
    let fell_back = lines
        .iter()
        .filter(|l| l.contains("speaks MQTT 3.1.1 only"))
        .count();
    // Once per connection: the relay's two and the producer's one, and
    // one more per reconnect if any.
    let connections = lines
        .iter()
        .filter(|l| l.contains("connected to the broker"))
        .count();
    assert!(connections >= 3, "{lines:#?}");
    assert_eq!(fell_back, connections, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("protocol=3.1.1")),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("Timeout")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_against_mosquitto_negotiates_5() {
    let broker = Mosquitto::start();
    let url = broker.url();
    let relay = carries_every_message(&url, broker.port, 1, 50).await;
    let report = relay.stop().await;
    assert!(report.is_success(), "{report:?}");
    // mosquitto logs each client's protocol: p5 is MQTT 5.
    let log = broker.log();
    for client in ["relay-sub", "relay-pub", "producer"] {
        assert!(log.contains(&format!("as {client} (p5")), "{client}: {log}");
    }
    let lines = lines_about(&url);
    assert!(
        !lines.iter().any(|l| l.contains("3.1.1 only")),
        "{lines:#?}"
    );
}

/// A broker replaced in place (RabbitMQ, then mosquitto on the same port)
/// gets MQTT 5 on the next connection; what the 3.1.1 connection had not
/// sent or not had acknowledged goes out over 5 (the version switch carries it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_negotiates_afresh_when_the_broker_changes() {
    const COUNT: usize = 60;
    // mosquitto first, only to keep the collector's persistent session (and
    // its subscription) for when it is back.
    let mut mosquitto = Mosquitto::start();
    let port = mosquitto.port;
    let out = collect(port, "collector", "in/#").await;
    tokio::task::block_in_place(|| mosquitto.stop());
    let rabbit = tokio::task::block_in_place(|| RabbitMq::start_on(port));
    let url = rabbit.url();
    let running = engine::start(
        &producer(&url, "", COUNT).replace(
            "require_ack: true",
            "require_ack: true\n    interval_ms: 100",
        ),
        &[],
    );
    eventually(Duration::from_secs(20), "publishing over 3.1.1", || {
        running.state("pub").contains("over MQTT 3.1.1") && running.counts("pub").sent >= 5
    })
    .await;
    tokio::task::block_in_place(|| {
        drop(rabbit);
        mosquitto.restart();
    });
    let report = running.finished(Duration::from_secs(60)).await;
    assert!(
        report.is_success(),
        "every message acknowledged by a broker: {report:?}"
    );
    let log = mosquitto.log();
    assert!(log.contains("as producer (p5"), "{log}");
    // The last ones were published after the switch, through mosquitto.
    eventually(Duration::from_secs(20), "the last message", || {
        out.topics().contains(&format!("in/{}", COUNT - 1))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_5_against_rabbitmq_fails_naming_the_protocol() {
    let broker = RabbitMq::start();
    let running = engine::start(&producer(&broker.url(), ", protocol: \"5\"", 1), &[]);
    eventually(Duration::from_secs(20), "a failure in the status", || {
        running.state("pub").starts_with("disconnected")
    })
    .await;
    let state = running.state("pub");
    assert!(state.contains("does not speak MQTT 5"), "{state}");
    assert!(state.contains("set `protocol: auto`"), "{state}");
    assert!(!state.contains("Timeout"), "{state}");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_on_rabbitmq_is_named_after_the_fallback() {
    let broker = RabbitMq::start();
    let running = engine::start(
        &producer(
            &broker.url(),
            ", username: guest, password: \"${MQTT_PASSWORD}\"",
            1,
        ),
        &[("MQTT_PASSWORD", "not-the-password")],
    );
    eventually(Duration::from_secs(20), "a refusal in the status", || {
        running.state("pub").contains("refused the connection")
    })
    .await;
    let state = running.state("pub");
    assert!(
        state.contains(
            "bad user name or password (CONNACK code 0x04): check `username` and `password`"
        ),
        "{state}"
    );
    running.stop().await;
}

/// `require_subscribers` over a connection `auto` fell back to 3.1.1 cannot
/// work: the spec runs, a WARN and the node's status say what is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_subscribers_over_a_fallback_is_lost_loudly_not_fatally() {
    let broker = RabbitMq::start();
    let url = broker.url();
    let out = collect(broker.port, "collector", "in/#").await;
    let spec = producer(&url, "", 5).replace(
        "    topic: \"in/{seq}\"",
        "    topic: \"in/{seq}\"\n    require_subscribers: true",
    );
    assert!(spec.contains("require_subscribers: true"), "{spec}");
    let running = engine::start(&spec, &[]);
    eventually(Duration::from_secs(20), "the loss in the status", || {
        running.state("pub").contains("require_subscribers lost")
    })
    .await;
    let report = running.finished(Duration::from_secs(20)).await;
    assert!(report.is_success(), "{report:?}");
    eventually(Duration::from_secs(10), "5 messages", || out.len() >= 5).await;
    let warned = logs::init()
        .text()
        .contains("require_subscribers is lost on this MQTT 3.1.1 connection");
    assert!(warned);
}

/// The bridge from mosquitto (MQTT 5) to RabbitMQ (3.1.1, after the
/// fallback) carries what mosquitto's own bridge carries between two
/// mosquittos (bridge.rs): each side its own version, the remote dropping
/// its own echoes itself (no "no local" over 3.1.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_from_mosquitto_to_rabbitmq_carries_what_mosquittos_bridge_carries() {
    use crate::mqtt::bridge::{exercise, expected, flowrun_spec};
    let remote = RabbitMq::start();
    let local = Mosquitto::start();
    let bridge = engine::start(&flowrun_spec(&local.url(), &remote.url()), &[]);
    let seen = exercise(local.port, remote.port).await;
    assert_eq!(seen, expected());
    assert!(bridge.stop().await.is_success());
    let log = local.log();
    assert!(log.contains("(p5"), "the local side speaks 5: {log}");
    let lines = lines_about(&remote.url());
    assert!(
        lines.iter().any(|l| l.contains("speaks MQTT 3.1.1 only")),
        "{lines:#?}"
    );
}
