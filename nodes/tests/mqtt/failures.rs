//! Every connection failure named for what happened, with the setting to
//! check, never rumqttc's bare "Timeout" for an answer the peer did give:
//! nothing listening, a name that does not resolve, a TLS client at a plain
//! port, and a peer that accepts TCP and never answers (a real timeout,
//! said as such). Wrong passwords and certificates: auth_tls.rs, interop.rs.

use std::time::Duration;

use crate::mqtt::interop::producer;
use crate::mqtt::roundtrip::relay_with;
use crate::support::engine;
use crate::support::mosquitto::{eventually, free_port, Mosquitto};

/// Runs a producer against `url` and returns its status once the first
/// connection failed.
async fn first_failure(url: &str, limit: Duration) -> String {
    let running = engine::start(&producer(url, "", 1), &[]);
    eventually(limit, "a failure in the status", || {
        running.state("pub").starts_with("disconnected")
    })
    .await;
    let state = running.state("pub");
    running.stop().await;
    assert!(!state.contains("Timeout"), "{state}");
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_named() {
    let url = format!("mqtt://127.0.0.1:{}", free_port());
    let state = first_failure(&url, Duration::from_secs(10)).await;
    assert!(
        state.contains(
            "connection refused: nothing listens at the broker's address and port (check `url`"
        ),
        "{state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_that_does_not_resolve_is_named() {
    // .invalid never resolves (RFC 6761).
    let state = first_failure(
        "mqtt://no-such-broker.invalid:1883",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        state.contains("the broker's host name does not resolve"),
        "{state}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plain_port_is_named() {
    let broker = Mosquitto::start();
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let state = first_failure(&url, Duration::from_secs(10)).await;
    assert!(state.contains("TLS handshake failed"), "{state}");
    assert!(state.contains("check the port"), "{state}");
}

/// A peer that takes the TCP connection and says nothing: under `auto` both
/// versions wait for their CONNACK (5 s each), then the status says that
/// nothing answered and what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_a_named_timeout() {
    // Never accepted: the kernel completes the handshake (the backlog), and
    // nothing is ever read or written.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mqtt://{}", silent.local_addr().unwrap());
    let state = first_failure(&url, Duration::from_secs(20)).await;
    assert!(
        state.contains("no answer from the broker within 5 s of connecting (check `url`"),
        "{state}"
    );
    drop(silent);
}

/// A broker that goes away under a connected node (stopped, restarted, the
/// link cut): the status says the broker closed the connection, in the same
/// words as at connect time, not rumqttc's "Mqtt state: Io error: Custom
/// { kind: … }". The retry is slow here so that the words stay long enough
/// to be read before the next attempt's "connection refused".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_goes_away_is_named() {
    for (protocol, client) in [("3.1.1", "gone-v3"), ("5", "gone-v5")] {
        let mut broker = Mosquitto::start();
        // relay_with appends this to the client id's `relay-sub`.
        let broker_extra = format!(
            r#"-{client}, protocol: "{protocol}", reconnect_min_ms: 30000, reconnect_max_ms: 30000"#
        );
        let relay = engine::start(&relay_with(&broker.url(), &broker_extra, 1, 1), &[]);
        engine::wait_subscribed(&relay, "sub").await;
        broker.stop();
        eventually(Duration::from_secs(20), "the drop in the status", || {
            relay.state("sub").starts_with("disconnected")
        })
        .await;
        let state = relay.state("sub");
        assert!(
            state.starts_with("disconnected (the broker closed the connection ("),
            "MQTT {protocol}: {state}"
        );
        assert!(!state.contains("Mqtt state"), "MQTT {protocol}: {state}");
        relay.stop().await;
    }
}
