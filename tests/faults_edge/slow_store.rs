//! Scenario 8: a slow store under a burst. s3s-fs behind a proxy that holds
//! each response 200 ms; 2,000 real faces published to the cloud broker at
//! once; the shipped cloud-cos takes them. Nothing may be lost, the cloud
//! flowrun's memory must stay bounded, and the backlog must wait in the
//! broker, not in flowrun. cloud-cos reaches its broker through a counting
//! proxy too, so that the test sees how many faces it took off the broker.

use std::time::{Duration, Instant};

use flowrun_test_support::wait;

use crate::report::Figures;
use crate::rss;
use crate::{bucket_keys, start_cloud, wait_for_keys, BUCKET, FLOWRUN, SERIAL, START};
use flowrun_test_support::crops::{self, name};
use flowrun_test_support::mosquitto::{collect, Mosquitto, Options};
use flowrun_test_support::proxy::Proxy;
use flowrun_test_support::s3::S3Server;

const DEVICE: &str = "door-8";
const BURST: usize = 2_000;
const STORE_DELAY: Duration = Duration::from_millis(200);
/// cloud-cos.yaml's queue between `faces` and `store` (the default input
/// capacity) and `store`'s puts in flight (cos_put's default concurrency).
const EDGE_CAPACITY: u64 = 64;
const PUTS_IN_FLIGHT: u64 = 16;
/// The face `faces` is handing over: counted as sent while it waits for
/// room in the queue.
const HANDING_OVER: u64 = 1;
/// Received messages the subscriber's connection task may hold for the
/// node (`RECEIVED` in nodes/src/mqtt/subscribe.rs).
const LINK_EVENTS: u64 = 16;
/// Allocator arenas, 16 HTTP connections and their buffers: room that does
/// not depend on how many faces are waiting.
const SLACK_MIB: u64 = 32;
/// 2,000 puts 16 at a time at ≥ 200 ms each is ≥ 25 s; room for a loaded machine.
const DRAIN: Duration = Duration::from_secs(180);

/// files → mqtt_pub at QoS 1, as fast as the broker acknowledges.
fn burst_spec(dir: &std::path::Path) -> String {
    let path = dir.join("burst.yaml");
    std::fs::write(
        &path,
        r#"version: 1
name: burst
nodes:
  faces: {type: files, path: "${FACES_DIR}"}
  publish:
    type: mqtt_pub
    inputs: [faces]
    broker: {url: "${CLOUD_BROKER}", client_id: "${DEVICE_ID}-burst"}
    topic: faces/${DEVICE_ID}/{file_name}
    qos: 1
"#,
    )
    .unwrap();
    path.display().to_string()
}

/// Where each face's PUBLISH packet ends in the stream the broker sends
/// cloud-cos, in bytes: faces go out in name order, `c-00000` first.
fn publish_packet_ends(faces: &[Vec<u8>]) -> Vec<u64> {
    let topic = format!("faces/{DEVICE}/{}", name("c", 0)).len() as u64;
    let mut end = 0;
    (0..BURST)
        .map(|i| {
            // Topic length, topic, packet id, payload…
            let remaining = 2 + topic + 2 + faces[i % faces.len()].len() as u64;
            // …after the packet type and the remaining length's varint.
            let varint = (1..).find(|n| remaining < 1 << (7 * n)).unwrap();
            end += 1 + varint + remaining;
            end
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_under_a_burst_keeps_the_backlog_in_the_broker() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    crops::write_numbered(FLOWRUN, &dir.path().join("faces"), "c", BURST).await;
    let largest = crops::faces(FLOWRUN)
        .await
        .iter()
        .map(Vec::len)
        .max()
        .unwrap() as u64;
    let published = publish_packet_ends(crops::faces(FLOWRUN).await);
    let cloud_broker = Mosquitto::start_with(Options {
        // $SYS figures every second: the broker's own count of messages held.
        extra: "sys_interval 1".into(),
        ..Options::default()
    });
    let store = S3Server::start();
    store.create_bucket(BUCKET).await;
    let slow = Proxy::start(store.port, STORE_DELAY).await;
    let counted = Proxy::start(cloud_broker.port, Duration::ZERO).await;
    let cloud = start_cloud(counted.url("mqtt"), slow.url("http"), &store).await;
    let taken_before = counted.delivered();
    let baseline_kib = rss::kib(cloud.pid(), "VmRSS");
    let held_by_broker = collect(
        cloud_broker.port,
        "sys-observer-8",
        "$SYS/broker/store/messages/count",
    )
    .await;

    let mut burst = FLOWRUN.start(
        "burst",
        &burst_spec(dir.path()),
        &[
            ("FACES_DIR", dir.path().join("faces").display().to_string()),
            ("CLOUD_BROKER", cloud_broker.url()),
            ("DEVICE_ID", DEVICE.to_string()),
        ],
    );
    let done = format!("done: {BURST} files");
    burst
        .wait_until("the broker took the burst", START, |s| {
            s.state("faces") == done && s.count("publish", "ack") == BURST as u64
        })
        .await;
    let accepted = Instant::now();

    // While the store drains the backlog: how many faces are inside the
    // cloud flowrun's graph (taken from the broker, not yet stored).
    let mut in_graph_max = 0;
    let mut taken_max = 0;
    let mut stored = 0;
    let drained = wait::at_most(DRAIN)
        .every(Duration::from_millis(100))
        .until_async(|| {
            let status = cloud.status();
            in_graph_max = in_graph_max.max(
                status
                    .count("faces", "out")
                    .saturating_sub(status.count("store", "ack")),
            );
            let taken = published.partition_point(|&end| end <= counted.delivered() - taken_before);
            taken_max = taken_max.max((taken as u64).saturating_sub(status.count("store", "ack")));
            stored = status.state_count("store", "stored");
            stored >= BURST as u64
        })
        .await;
    assert!(
        drained,
        "stored {stored} of {BURST} after {DRAIN:?}:\n{}",
        cloud.log()
    );
    let drained = accepted.elapsed();
    let peak_kib = rss::kib(cloud.pid(), "VmHWM");
    let expected = (0..BURST)
        .map(|i| format!("faces/{DEVICE}/{}.png", name("c", i)))
        .collect();
    wait_for_keys(&store, &expected, Duration::from_secs(10)).await;
    let (_, clean) = burst.stop().await;
    assert!(clean, "the burst publisher did not exit cleanly");
    let (cloud_end, clean) = cloud.stop().await;
    assert!(clean, "cloud-cos did not exit cleanly");
    let keys = bucket_keys(&store).await;
    let broker_peak: u64 = held_by_broker
        .messages()
        .iter()
        .filter_map(|(_, count)| std::str::from_utf8(count).ok()?.trim().parse().ok())
        .max()
        .unwrap_or(0);

    let figures = Figures {
        scenario: "8-slow-store-200ms-burst",
        sent: BURST as u64,
        stored: keys.len() as u64,
        lost: (BURST - keys.len()) as u64,
        duplicated: cloud_end
            .state_count("store", "stored")
            .saturating_sub(keys.len() as u64),
        recover_ms: drained.as_millis(),
        extra: vec![
            ("peak_rss_mib", format!("{:.1}", rss::mib(peak_kib))),
            ("baseline_rss_mib", format!("{:.1}", rss::mib(baseline_kib))),
            ("in_graph_max", in_graph_max.to_string()),
            ("broker_store_peak", broker_peak.to_string()),
            ("taken_not_stored_max", taken_max.to_string()),
            ("largest_face_kib", (largest / 1024).to_string()),
        ],
    };
    println!("{figures}");
    assert_eq!(figures.lost, 0, "{figures}");
    // The graph's queues stay within their configured bounds…
    assert!(
        in_graph_max <= EDGE_CAPACITY + PUTS_IN_FLIGHT + HANDING_OVER,
        "the graph held {in_graph_max} faces: more than its queue and puts in flight\n{figures}"
    );
    // …most of the burst stayed in the broker until there was room: what
    // cloud-cos took beyond them is what the loopback sockets buffer…
    assert!(
        taken_max < BURST as u64 / 2,
        "cloud-cos took the whole burst off the broker\n{figures}"
    );
    // …and memory: at most every fixed window full of the largest
    // face, whatever the size of the backlog in the broker.
    let window = LINK_EVENTS + EDGE_CAPACITY + PUTS_IN_FLIGHT + HANDING_OVER;
    let bound_kib = window * largest / 1024 + SLACK_MIB * 1024;
    assert!(
        peak_kib.saturating_sub(baseline_kib) <= bound_kib,
        "cloud-cos grew by {:.1} MiB under the burst, more than {:.1} MiB\n{figures}",
        rss::mib(peak_kib.saturating_sub(baseline_kib)),
        rss::mib(bound_kib)
    );
}
