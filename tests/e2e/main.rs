//! End to end, as a user runs it: the shipped specs as separate `flowrun`
//! processes, real mosquitto brokers and a real S3 server (s3s-fs) on
//! loopback, opencv-doc's Megamind.avi as the camera. What is checked is
//! what the user sees: one grayscale PNG in the bucket per face the edge
//! detected, under a key made of the face's identity.
//!
//! The tests run one at a time: each runs face detection on a 2-core
//! machine, and running them together would only make each slower.

mod cloud;
mod demo;
mod rabbit;
mod track;

use std::time::Duration;

use cloud::Cloud;
use flowrun_test_support::faces::{assert_gray_png, assert_one_object_per_face};
use flowrun_test_support::flowrun::{Binary, Flowrun, Status, MEGAMIND};
use flowrun_test_support::mosquitto::Mosquitto;
use flowrun_test_support::s3::S3Server;
use flowrun_test_support::{s3fs, wait};

/// The binary under test (see `flowrun_test_support::flowrun`).
const FLOWRUN: Binary = Binary::at(env!("CARGO_BIN_EXE_flowrun"));

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The 11 s video through detection, with room for a loaded machine.
const VIDEO: Duration = Duration::from_secs(120);
/// Faces on their way from the edge to the bucket after the video ended.
const DELIVERY: Duration = Duration::from_secs(60);

const BUCKET: &str = "faces";

fn edge_env(device: &str, edge: &Mosquitto, cloud: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CAMERA", MEGAMIND.into()),
        // Every frame searched, however loaded the machine: the shipped
        // default drops frames when detection falls behind (a live
        // camera's freshest faces), and fewer faces would weaken what the
        // tests count on.
        ("CAMERA_OVERFLOW", "block".into()),
        ("DEVICE_ID", device.into()),
        ("EDGE_BROKER", edge.url()),
        ("CLOUD_BROKER", cloud.to_owned()),
    ]
}

/// Starts specs/cloud-fs.yaml storing into the folder `bucket`, and waits
/// until it has subscribed.
async fn start_cloud_fs(name: &str, broker: &str, bucket: &std::path::Path) -> Flowrun {
    let env = [
        ("CLOUD_BROKER", broker.to_owned()),
        ("BUCKET_DIR", bucket.display().to_string()),
        ("WORKER_ID", "1".into()),
    ];
    FLOWRUN.start_cloud(name, "cloud-fs.yaml", &env).await
}

/// Waits until the edge has put every face of the video on its broker:
/// how many faces it detected.
async fn run_edge(edge: &mut Flowrun) -> u64 {
    let status = edge
        .wait_until("done with the video", VIDEO, Status::edge_finished)
        .await;
    let faces = status.faces();
    // Megamind.avi shows a face in most of its 270 frames.
    assert!(faces >= 100, "only {faces} faces detected:\n{}", edge.log());
    faces
}

/// Checks every object of the bucket: `faces` of them, one per face, each a
/// grayscale PNG stored as such.
async fn assert_bucket_holds_faces(store: &S3Server, prefix: &str, faces: u64) {
    let keys = store.list(BUCKET).await;
    assert_one_object_per_face(prefix, &keys, faces);
    for key in &keys {
        let (body, content_type) = store.get(BUCKET, key).await;
        assert_gray_png(key, &body);
        assert_eq!(content_type.as_deref(), Some("image/png"), "{key}");
    }
}

/// Each object of `keys` carries where and when its face was captured —
/// read from its topic by the cloud, not the cloud's own clock — and when
/// the cloud received it.
async fn assert_capture_metadata(store: &S3Server, device: &str, keys: &[String]) {
    for key in keys {
        // faces/<device>/<camera>/<capture ms>-<frame>-<face>.png
        let name = key.rsplit('/').next().unwrap().trim_end_matches(".png");
        let fields: Vec<&str> = name.split('-').collect();
        let head = store
            .client()
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        let meta = head.metadata().cloned().unwrap_or_default();
        let get = |name: &str| meta.get(name).cloned().unwrap_or_default();
        assert_eq!(
            (
                get("device"),
                get("source"),
                get("timestamp_ms"),
                get("frame"),
                get("face")
            ),
            (
                device.to_owned(),
                "camera".to_owned(),
                fields[0].to_owned(),
                fields[1].to_owned(),
                fields[2].to_owned()
            ),
            "{key}: {meta:?}"
        );
        let captured: u64 = get("timestamp_ms").parse().unwrap();
        let received: u64 = get("received_ms").parse().unwrap();
        assert!(
            received >= captured,
            "{key}: received before captured: {meta:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_bridge_and_cloud_cos_store_each_face_once_as_a_gray_png() {
    let _serial = SERIAL.lock().await;
    let rig = Cloud::start(Mosquitto::start(), S3Server::start()).await;
    let store = &rig.store;
    let mut cloud = rig.worker("cloud-cos", 1).await;
    let mut edge = rig.edge("edge-bridge", "edge-bridge.yaml", "door-1");
    let faces = run_edge(&mut edge).await;
    cloud
        .wait_until("stored every face", DELIVERY, |s| {
            s.state_count("store", "stored") >= faces
        })
        .await;
    assert_bucket_holds_faces(store, "faces/door-1/camera/", faces).await;
    assert_capture_metadata(store, "door-1", &store.list(BUCKET).await).await;
    // "Where are my faces?": the status names the last object, with its URL.
    let state = cloud.status().state("store").to_owned();
    assert!(
        state.contains(&format!(" last=s3://{BUCKET}/faces/door-1/camera/"))
            && state.contains(&format!(
                "({}/{BUCKET}/faces/door-1/camera/",
                store.endpoint()
            )),
        "{state}"
    );

    let (edge_end, clean) = edge.stop().await;
    assert!(clean, "edge-bridge did not exit cleanly");
    assert_eq!(edge_end.faces(), faces);
    let (cloud_end, clean) = cloud.stop().await;
    assert!(clean, "cloud-cos did not exit cleanly");
    // Stored once each: no face came twice, none was retried.
    assert_eq!(cloud_end.state_count("store", "stored"), faces);
    assert_eq!(cloud_end.count("faces", "out"), faces);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_forwarder_and_cloud_fs_store_each_face_once_through_an_s3fs_mount() {
    let _serial = SERIAL.lock().await;
    let store = S3Server::start();
    store.create_bucket(BUCKET).await;
    let mount = match s3fs::Mount::new(&store, BUCKET) {
        Ok(mount) => mount,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a bucket with s3fs-fuse here: {why}");
            return;
        }
    };
    let edge_broker = Mosquitto::start();
    let cloud_broker = Mosquitto::start();

    let mut cloud = start_cloud_fs("cloud-fs", &cloud_broker.url(), &mount.path()).await;
    let mut edge = FLOWRUN.start(
        "edge-forwarder",
        "edge-forwarder.yaml",
        &edge_env("door-2", &edge_broker, &cloud_broker.url()),
    );
    let faces = run_edge(&mut edge).await;
    cloud
        .wait_until("stored every face", DELIVERY, |s| {
            s.state_count("store", "stored") >= faces
        })
        .await;
    // Through the S3 API, not the mount: what s3fs uploaded.
    assert_bucket_holds_faces(&store, "faces_door-2_camera_", faces).await;

    let (edge_end, clean) = edge.stop().await;
    assert!(clean, "edge-forwarder did not exit cleanly");
    // The forwarder took each face from the edge broker once and had each
    // acknowledged by the cloud broker.
    assert_eq!(edge_end.count("from_edge", "out"), faces);
    assert_eq!(edge_end.count("to_cloud", "ack"), faces);
    let (cloud_end, clean) = cloud.stop().await;
    assert!(clean, "cloud-fs did not exit cleanly");
    assert_eq!(cloud_end.state_count("store", "stored"), faces);
    drop(mount);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_cloud_workers_on_one_shared_subscription_store_each_face_once() {
    let _serial = SERIAL.lock().await;
    let rig = Cloud::start(Mosquitto::start(), S3Server::start()).await;
    let mut workers = Vec::new();
    for worker in 1..=3 {
        workers.push(
            rig.worker(&format!("cloud-cos worker {worker}"), worker)
                .await,
        );
    }
    let mut edge = rig.edge("edge-bridge", "edge-bridge.yaml", "door-3");
    let faces = run_edge(&mut edge).await;
    let stored = |workers: &[Flowrun]| -> u64 {
        workers
            .iter()
            .map(|w| w.status().state_count("store", "stored"))
            .sum()
    };
    let all = wait::at_most(DELIVERY)
        .every(Duration::from_millis(50))
        .until_async(|| stored(&workers) >= faces)
        .await;
    assert!(
        all,
        "the workers stored {} of {faces} faces after {DELIVERY:?}",
        stored(&workers)
    );
    assert_bucket_holds_faces(&rig.store, "faces/door-3/camera/", faces).await;
    let (_, clean) = edge.stop().await;
    assert!(clean, "edge-bridge did not exit cleanly");

    let mut shares = Vec::new();
    for worker in workers {
        let (end, clean) = worker.stop().await;
        assert!(clean, "a worker did not exit cleanly");
        shares.push(end.state_count("store", "stored"));
    }
    // Each face went to exactly one worker, and the work was shared.
    assert_eq!(shares.iter().sum::<u64>(), faces, "{shares:?}");
    assert!(
        shares.iter().all(|&n| n > 0),
        "a worker got nothing: {shares:?}"
    );
}
