//! Password authentication (a wrong password is a clear, retried error that
//! never shows the password) and TLS with certificates made by the test:
//! server-only, a client certificate the broker requires, a wrong CA refused
//! with an error that says what to check.

use std::time::Duration;

use super::roundtrip::producer_spec;
use crate::support::engine;
use crate::support::logs::{self, secret};
use crate::support::mosquitto::{collect, eventually, free_port, run, Mosquitto, Options};

/// Five 9,000-byte messages to `url`, reconnecting quickly; `extra` adds
/// broker settings (`, username: edge`).
fn producer(url: &str, extra: &str) -> String {
    let broker = format!(r#"url: "{url}", reconnect_min_ms: 50, reconnect_max_ms: 200{extra}"#);
    producer_spec(&broker, 5, 9000, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_auth_wrong_password_is_clear_and_never_logged() {
    let logs = logs::init();
    let right_password = secret("right-horse-battery");
    let wrong_password = secret("wrong-staple-9431");
    let dir = tempfile::tempdir().unwrap();
    run(
        "mosquitto_passwd",
        &["-b", "-c", "passwd", "edge", &right_password],
        dir.path(),
    );
    let broker = Mosquitto::start_with(Options {
        extra: format!("password_file {}/passwd", dir.path().display()),
        deny_anonymous: true,
        ..Options::default()
    });
    let credentials = r#", username: edge, password: "${MQTT_PASSWORD}""#;
    let spec = producer(&broker.url(), credentials);

    let wrong = engine::start(&spec, &[("MQTT_PASSWORD", &wrong_password)]);
    eventually(Duration::from_secs(10), "a refused connection", || {
        wrong.state("pub").contains("refused the connection")
    })
    .await;
    let state = wrong.state("pub");
    assert!(
        state.contains("not authorized") || state.contains("bad user name or password"),
        "{state}"
    );
    // mosquitto 2 speaks MQTT 5 (`auto`): its reason code, and what to check.
    assert!(state.contains("(CONNACK code 0x8"), "{state}");
    assert!(state.contains("check `username` and `password`"), "{state}");
    eventually(Duration::from_secs(10), "retries", || {
        logs.text().matches("refused the connection").count() >= 3
    })
    .await;
    drop(wrong);

    let right = engine::start(&spec, &[("MQTT_PASSWORD", &right_password)]);
    let report = right.finished(Duration::from_secs(20)).await;
    assert!(report.is_success(), "{report:?}");

    let text = logs.text();
    assert!(!text.contains(&wrong_password), "the password was logged");
    assert!(!text.contains(&right_password), "the password was logged");
}

/// A self-signed CA `{name}.crt`/`{name}.key` in `d`.
fn make_ca(d: &std::path::Path, name: &str) {
    let (key, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.crt"),
        format!("/CN=flowrun-test-{name}"),
    );
    run(
        "openssl",
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &crt,
            "-days", "1", "-subj", &subj,
        ],
        d,
    );
}

/// `{name}.crt`/`{name}.key` for `cn`, signed by `ca`, with `ext` (openssl
/// extension lines) when given.
fn make_cert(d: &std::path::Path, ca: &str, name: &str, cn: &str, ext: &str) {
    let (key, csr, crt, subj) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("/CN={cn}"),
    );
    run(
        "openssl",
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj,
        ],
        d,
    );
    let ext_file = format!("{name}.cnf");
    std::fs::write(d.join(&ext_file), ext).unwrap();
    let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_crt,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "1",
            "-extfile",
            &ext_file,
        ],
        d,
    );
}

/// A CA and a broker certificate for 127.0.0.1 in `d`; a TLS mosquitto using
/// them (plus `extra` lines), with a plain listener for the collector.
fn tls_broker(d: &std::path::Path, extra: &str) -> (Mosquitto, u16) {
    make_ca(d, "ca");
    make_cert(
        d,
        "ca",
        "server",
        "127.0.0.1",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    );
    let plain_port = free_port();
    let broker = Mosquitto::start_with(Options {
        extra: format!(
            "cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n{extra}listener {plain_port} 127.0.0.1\n",
            d = d.display()
        ),
        ..Options::default()
    });
    crate::support::mosquitto::wait_for_port(plain_port, Duration::from_secs(10));
    (broker, plain_port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_with_a_test_ca() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    let (broker, plain_port) = tls_broker(d, "");
    let out = collect(plain_port, "tls-collector", "in/#").await;
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let tls = format!(", tls: {{ca_file: \"{}/ca.crt\"}}", d.display());
    let running = engine::start(&producer(&url, &tls), &[]);
    let report = running.finished(Duration::from_secs(20)).await;
    assert!(report.is_success(), "{report:?}");
    eventually(Duration::from_secs(10), "5 messages over TLS", || {
        out.len() == 5
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_accepted_and_a_wrong_ca_refused_clearly() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    let (broker, plain_port) = tls_broker(d, "require_certificate true\n");
    make_cert(
        d,
        "ca",
        "client",
        "flowrun-client",
        "extendedKeyUsage=clientAuth\n",
    );
    make_ca(d, "other-ca");
    let out = collect(plain_port, "mtls-collector", "in/#").await;
    let url = format!("mqtts://127.0.0.1:{}", broker.port);

    // With the client certificate: every message arrives.
    let tls = format!(
        ", tls: {{ca_file: \"{d}/ca.crt\", cert_file: \"{d}/client.crt\", key_file: \"{d}/client.key\"}}",
        d = d.display()
    );
    let running = engine::start(&producer(&url, &tls), &[]);
    let report = running.finished(Duration::from_secs(20)).await;
    assert!(report.is_success(), "{report:?}");
    eventually(
        Duration::from_secs(10),
        "5 messages over mutual TLS",
        || out.len() == 5,
    )
    .await;

    // Trusting another CA: the broker's certificate is refused, the status
    // says what to check, and nothing is sent.
    let tls = format!(
        ", tls: {{ca_file: \"{d}/other-ca.crt\", cert_file: \"{d}/client.crt\", key_file: \"{d}/client.key\"}}",
        d = d.display()
    );
    let running = engine::start(&producer(&url, &tls), &[]);
    eventually(Duration::from_secs(10), "a TLS error in the status", || {
        running.state("pub").contains("TLS handshake failed")
    })
    .await;
    let state = running.state("pub");
    assert!(state.contains("tls.ca_file"), "{state}");
    assert!(state.contains("not signed by a CA we trust"), "{state}");
    running.stop().await;

    // Without the client certificate the broker requires: said so.
    let tls = format!(", tls: {{ca_file: \"{d}/ca.crt\"}}", d = d.display());
    let running = engine::start(&producer(&url, &tls), &[]);
    eventually(Duration::from_secs(10), "a failure in the status", || {
        running.state("pub").starts_with("disconnected")
    })
    .await;
    let state = running.state("pub");
    assert!(state.contains("client certificate"), "{state}");
    running.stop().await;
    assert_eq!(out.len(), 5);
}
