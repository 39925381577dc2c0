//! Hostile payloads and topics on a subscribed topic, through real
//! mosquitto into a real S3 server (s3s-fs): `mqtt_sub → cos_put` with
//! `accept: [image/png, image/jpeg]` and `max_object_bytes`. The whole
//! images are stored; text, a truncated PNG, an empty payload and a 20 MB
//! payload (over the subscriber's 16 MiB `max_packet_bytes`) are each
//! counted and sent on the `dead_letter` port with their reason, into a
//! folder (a second `cos_put` with `metadata_file`); a topic with `..` levels
//! cannot make a key that climbs; a publisher sending a topic that is not
//! UTF-8 is cut off by the broker. The pipeline runs on through all of it.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use opencv::core::{Mat, Scalar, Vector, CV_8UC1};
use opencv::prelude::VectorToVec;
use rumqttc::QoS;
use support::mosquitto::{eventually, publish_all, Mosquitto};
use support::s3::S3Server;

fn encoded(ext: &str, shade: f64) -> Vec<u8> {
    let image = Mat::new_rows_cols_with_default(24, 24, CV_8UC1, Scalar::all(shade)).unwrap();
    let mut out = Vector::<u8>::new();
    opencv::imgcodecs::imencode(ext, &image, &mut out, &Vector::new()).unwrap();
    out.to_vec()
}

/// An MQTT 3.1.1 remaining length.
fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return;
        }
    }
}

fn packet(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// Connects with raw packets and publishes (QoS 0) on a topic whose bytes
/// are not UTF-8, which no MQTT client library lets one do. Returns whether
/// the broker then closed the connection.
fn publish_raw_topic(port: u16, topic: &[u8]) -> bool {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let client_id = b"raw-bad-topic";
    let mut connect = b"\x00\x04MQTT\x04\x02\x00\x3c".to_vec();
    connect.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    connect.extend_from_slice(client_id);
    socket.write_all(&packet(0x10, &connect)).unwrap();
    let mut connack = [0u8; 4];
    socket.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
    let mut publish = (topic.len() as u16).to_be_bytes().to_vec();
    publish.extend_from_slice(topic);
    publish.extend_from_slice(b"payload on a bad topic");
    socket.write_all(&packet(0x30, &publish)).unwrap();
    let mut rest = [0u8; 16];
    matches!(socket.read(&mut rest), Ok(0) | Err(_))
}

/// Every file under `dir`, by its path relative to `dir`.
fn files_under(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                found.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_counted_and_dead_lettered_and_good_ones_stored() {
    let broker = Mosquitto::start();
    let store = S3Server::start();
    store.create_bucket("faces").await;
    let dead = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"version: 1
nodes:
  images:
    type: mqtt_sub
    broker: {{url: "{url}", client_id: bad-input-store}}
    topics: [{{filter: "faces/#", qos: 1}}]
  store:
    type: cos_put
    inputs: [images]
    key: "{{topic}}/{{hash:12}}.{{ext}}"
    accept: [image/png, image/jpeg]
    max_object_bytes: 1048576
    backend:
      s3:
        endpoint: {endpoint}
        bucket: faces
        {credentials}
  refused:
    type: cos_put
    inputs: [store.dead_letter]
    # The same template as the store's: each dead letter under the key it
    # would have had (`{{meta.dead_letter_key}}` flattens its folders).
    key: "{{topic}}/{{hash:12}}.{{ext}}"
    backend:
      fs: {{root: "{dead}", metadata_file: true}}
"#,
        url = broker.url(),
        dead = dead.path().display(),
        endpoint = store.endpoint(),
        credentials = support::storage::credentials(&store, "BAD_INPUT"),
    );
    let running = support::engine::start(&yaml, &[]);
    support::engine::wait_subscribed(&running, "images").await;

    let png = encoded(".png", 40.0);
    let jpeg = encoded(".jpg", 200.0);
    let mut huge = png.clone();
    huge.resize(20 << 20, 0);
    let bad: [(&str, Vec<u8>, &str); 4] = [
        (
            "faces/text",
            b"not an image at all".to_vec(),
            "not one of the accepted types",
        ),
        (
            "faces/truncated",
            png[..png.len() - 20].to_vec(),
            "damaged or truncated image/png",
        ),
        ("faces/empty", Vec::new(), "the payload is empty"),
        ("faces/huge", huge, "over `max_object_bytes` (1048576)"),
    ];
    publish_all(
        broker.port,
        "faces/cam0",
        QoS::AtLeastOnce,
        vec![png.clone()],
    )
    .await;
    for (topic, payload, _) in &bad {
        publish_all(broker.port, topic, QoS::AtLeastOnce, vec![payload.clone()]).await;
    }
    assert!(
        publish_raw_topic(broker.port, b"faces/\xff\xfe/x"),
        "mosquitto closes a connection that sends a topic that is not UTF-8"
    );
    publish_all(
        broker.port,
        "faces/../../etc",
        QoS::AtLeastOnce,
        vec![png.clone()],
    )
    .await;
    publish_all(
        broker.port,
        "faces/cam1",
        QoS::AtLeastOnce,
        vec![jpeg.clone()],
    )
    .await;

    let total = 3 + bad.len() as u64;
    // Stored ones are settled by the store, refused ones by the node
    // taking its dead letters.
    let settled = || running.counts("store").acked + running.counts("refused").acked;
    eventually(Duration::from_secs(60), "every message settled", || {
        settled() >= total
    })
    .await;

    let keys = store.list("faces").await;
    assert_eq!(keys.len(), 3, "the three whole images: {keys:?}");
    for key in &keys {
        assert!(!key.split('/').any(|s| s == ".."), "no `..` segment: {key}");
    }
    assert!(
        keys.iter().any(|k| k.starts_with("faces/__/__/etc/")),
        "{keys:?}"
    );
    assert!(keys
        .iter()
        .any(|k| k.starts_with("faces/cam0/") && k.ends_with(".png")));
    assert!(keys
        .iter()
        .any(|k| k.starts_with("faces/cam1/") && k.ends_with(".jpg")));

    let letters = files_under(dead.path());
    assert_eq!(letters.len(), 2 * bad.len(), "{:?}", letters.keys());
    for (topic, payload, reason) in &bad {
        let (name, why) = letters
            .iter()
            .find(|(name, _)| {
                name.starts_with(&format!("{topic}/")) && name.ends_with(".meta.json")
            })
            .unwrap_or_else(|| panic!("no reason for {topic}: {:?}", letters.keys()));
        let why: serde_json::Value = serde_json::from_slice(why).unwrap();
        let error = why["dead_letter_reason"].as_str().unwrap();
        assert!(error.contains(reason), "{topic}: {error}");
        assert_eq!(why["topic"], *topic);
        assert_eq!(
            why["dead_letter_key"].as_str(),
            name.strip_suffix(".meta.json")
        );
        let body = &letters[name.trim_end_matches(".meta.json")];
        assert_eq!(
            body.len(),
            payload.len(),
            "{topic}: the payload itself is kept"
        );
    }

    let node = running.metrics.node("store");
    for event in [
        "refused_type",
        "refused_damaged",
        "refused_empty",
        "refused_too_large",
    ] {
        assert_eq!(node.event(event).get(), 1, "{event}");
    }
    assert_eq!(node.event("dead_lettered").get(), bad.len() as u64);
    let (store_counts, refused) = (running.counts("store"), running.counts("refused"));
    assert_eq!(
        (
            store_counts.acked + refused.acked,
            store_counts.nacked + refused.nacked
        ),
        (total, 0)
    );
    assert_eq!(refused.acked, bad.len() as u64, "each refusal kept once");
    assert_eq!(
        running.counts("images").sent,
        total,
        "nothing from the bad topic"
    );
    assert!(
        running.state("images").contains("subscribed"),
        "{}",
        running.state("images")
    );
    let report = running.stop().await;
    assert!(report.is_success(), "{report:?}");
}
