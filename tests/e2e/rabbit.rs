//! The shipped specs, unchanged, with RabbitMQ 3.10 as the cloud broker: a
//! broker that speaks MQTT 3.1.1 only and has no shared subscriptions, as
//! many a user already runs. `protocol: auto` falls back to 3.1.1, `share:`
//! subscribes the plain filter and says so, and every face is stored.

use flowrun_test_support::faces::assert_one_object_per_face;
use flowrun_test_support::mosquitto::Mosquitto;
use flowrun_test_support::rabbitmq::RabbitMq;
use flowrun_test_support::s3::S3Server;

use crate::cloud::Cloud;
use crate::{
    assert_bucket_holds_faces, edge_env, run_edge, start_cloud_fs, BUCKET, DELIVERY, FLOWRUN,
    SERIAL,
};

/// The warning `share:` gives over a 3.1.1 connection.
const NOT_SHARED: &str = "cannot be asked for, so the plain filters are subscribed";
/// The warning of a connection that fell back to 3.1.1.
const FELL_BACK: &str = "speaks MQTT 3.1.1 only";

fn start_rabbit() -> RabbitMq {
    tokio::task::block_in_place(RabbitMq::start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_bridge_and_cloud_cos_store_each_face_once_through_rabbitmq() {
    let _serial = SERIAL.lock().await;
    let rig = Cloud::start(start_rabbit(), S3Server::start()).await;
    let store = &rig.store;
    let mut cloud = rig.worker("rabbit-cloud-cos", 1).await;
    let mut edge = rig.edge("rabbit-edge-bridge", "edge-bridge.yaml", "door-7");
    let faces = run_edge(&mut edge).await;
    cloud
        .wait_until("stored every face", DELIVERY, |s| {
            s.state_count("store", "stored") >= faces
        })
        .await;
    assert_bucket_holds_faces(store, "faces/door-7/camera/", faces).await;
    // Over 3.1.1 too: read from the topic, not from MQTT 5 properties.
    crate::assert_capture_metadata(store, "door-7", &store.list(BUCKET).await).await;
    // Both said what they negotiated, and what it costs.
    assert!(cloud.lines_with(FELL_BACK) >= 1, "{}", cloud.log());
    assert_eq!(cloud.lines_with(NOT_SHARED), 1, "{}", cloud.log());
    assert!(edge.lines_with(FELL_BACK) >= 1, "{}", edge.log());
    for process in [&cloud, &edge] {
        let log = process.log();
        let timeouts: Vec<&str> = log
            .lines()
            .filter(|l| (l.contains(" WARN ") || l.contains(" ERROR ")) && l.contains("Timeout"))
            .collect();
        assert!(timeouts.is_empty(), "{timeouts:#?}");
    }

    let (_, clean) = edge.stop().await;
    assert!(clean, "edge-bridge did not exit cleanly");
    let (cloud_end, clean) = cloud.stop().await;
    assert!(clean, "cloud-cos did not exit cleanly");
    assert_eq!(cloud_end.state_count("store", "stored"), faces);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_forwarder_and_cloud_fs_store_each_face_once_through_rabbitmq() {
    let _serial = SERIAL.lock().await;
    let edge_broker = Mosquitto::start();
    let cloud_broker = start_rabbit();
    let bucket = tempfile::tempdir().unwrap();

    let mut cloud = start_cloud_fs("rabbit-cloud-fs", &cloud_broker.url(), bucket.path()).await;
    let mut edge = FLOWRUN.start(
        "rabbit-edge-forwarder",
        "edge-forwarder.yaml",
        &edge_env("door-8", &edge_broker, &cloud_broker.url()),
    );
    let faces = run_edge(&mut edge).await;
    cloud
        .wait_until("stored every face", DELIVERY, |s| {
            s.state_count("store", "stored") >= faces
        })
        .await;
    let mut keys: Vec<String> = std::fs::read_dir(bucket.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    keys.sort();
    assert_one_object_per_face("faces_door-8_camera_", &keys, faces);

    let (edge_end, clean) = edge.stop().await;
    assert!(clean, "edge-forwarder did not exit cleanly");
    assert_eq!(edge_end.count("to_cloud", "ack"), faces);
    let (cloud_end, clean) = cloud.stop().await;
    assert!(clean, "cloud-fs did not exit cleanly");
    assert_eq!(cloud_end.state_count("store", "stored"), faces);
}

/// Two workers of one group on a broker without shared subscriptions: each
/// receives every face (both warn), and the identity keys make the second
/// copy an overwrite — every face in the bucket once, nothing lost, each
/// face put twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cloud_workers_on_rabbitmq_store_every_face_with_repeats_as_overwrites() {
    let _serial = SERIAL.lock().await;
    let rig = Cloud::start(start_rabbit(), S3Server::start_with_request_log(true)).await;
    let store = &rig.store;
    let mut workers = Vec::new();
    for worker in 1..=2 {
        workers.push(
            rig.worker(&format!("rabbit-cloud-cos-{worker}"), worker)
                .await,
        );
    }
    let mut edge = rig.edge("rabbit-edge-bridge-2", "edge-bridge.yaml", "door-9");
    let faces = run_edge(&mut edge).await;
    for worker in &mut workers {
        worker
            .wait_until("stored every face", DELIVERY, |s| {
                s.state_count("store", "stored") >= faces
            })
            .await;
        assert_eq!(worker.lines_with(NOT_SHARED), 1, "{}", worker.log());
    }
    assert_bucket_holds_faces(store, "faces/door-9/camera/", faces).await;
    let puts = store.puts(BUCKET);
    assert_eq!(puts.len() as u64, faces);
    assert!(
        puts.values().all(|&n| n == 2),
        "each face put once per worker: {puts:?}"
    );

    let (_, clean) = edge.stop().await;
    assert!(clean, "edge-bridge did not exit cleanly");
    for worker in workers {
        let (_, clean) = worker.stop().await;
        assert!(clean, "a worker did not exit cleanly");
    }
}

/// The cloud broker (RabbitMQ) restarted mid-stream, where over MQTT 3.1.1
/// `require_subscribers` cannot hold a face that reached no worker. The
/// worker's persistent session is a durable queue in RabbitMQ, which the
/// restart keeps, and the bridge holds what the broker has not
/// acknowledged: the figure printed is what was lost (0 when this passes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_broker_restarted_mid_stream_over_3_1_1_loses_no_face() {
    let _serial = SERIAL.lock().await;
    let mut rig = Cloud::start(start_rabbit(), S3Server::start()).await;
    let mut cloud = rig.worker("rabbit-restart-cloud-cos", 1).await;
    let mut edge = rig.edge("rabbit-restart-edge-bridge", "edge-bridge.yaml", "door-6");
    cloud
        .wait_until("some faces stored", crate::VIDEO, |s| {
            s.state_count("store", "stored") >= 30
        })
        .await;
    tokio::task::block_in_place(|| rig.broker.restart());
    let faces = run_edge(&mut edge).await;
    // Bounded, without failing: the figure is printed either way.
    let _ = flowrun_test_support::wait::at_most(DELIVERY)
        .every(std::time::Duration::from_millis(100))
        .until_async(|| cloud.status().state_count("store", "stored") >= faces)
        .await;
    let stored = cloud.status().state_count("store", "stored");
    let keys = rig.store.list(BUCKET).await;
    println!(
        "RABBITMQ-RESTART faces={faces} stored={stored} objects={} lost={}",
        keys.len(),
        faces.saturating_sub(keys.len() as u64)
    );
    assert_one_object_per_face("faces/door-6/camera/", &keys, faces);

    let (_, clean) = edge.stop().await;
    assert!(clean, "edge-bridge did not exit cleanly");
    let (_, clean) = cloud.stop().await;
    assert!(clean, "cloud-cos did not exit cleanly");
}

/// flowrun's own broker (`mqtt_broker`, rumqttd) speaking MQTT 3.1.1 only,
/// as the cloud broker: the shipped specs fall back to 3.1.1 and store
/// every face.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_bridge_and_cloud_cos_store_each_face_once_through_flowruns_own_3_1_1_broker() {
    let _serial = SERIAL.lock().await;
    let port = flowrun_test_support::s3::free_port();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("cloud-broker.yaml");
    std::fs::write(
        &spec,
        format!(
            "version: 1\nname: cloud-broker\nnodes:\n  broker:\n    type: mqtt_broker\n    listen: 127.0.0.1:{port}\n    protocol: \"3.1.1\"\n"
        ),
    )
    .unwrap();
    let broker = FLOWRUN.start_file("rumqttd-311", &spec, false, &[]);
    flowrun_test_support::mosquitto::wait_for_port(port, std::time::Duration::from_secs(30));
    let rig = Cloud::start(format!("mqtt://127.0.0.1:{port}"), S3Server::start()).await;
    let mut cloud = rig.worker("rumqttd-cloud-cos", 1).await;
    let mut edge = rig.edge("rumqttd-edge-bridge", "edge-bridge.yaml", "door-5");
    let faces = run_edge(&mut edge).await;
    cloud
        .wait_until("stored every face", DELIVERY, |s| {
            s.state_count("store", "stored") >= faces
        })
        .await;
    assert_bucket_holds_faces(&rig.store, "faces/door-5/camera/", faces).await;
    assert!(cloud.lines_with(FELL_BACK) >= 1, "{}", cloud.log());
    let (_, clean) = edge.stop().await;
    assert!(clean, "edge-bridge did not exit cleanly");
    let (cloud_end, clean) = cloud.stop().await;
    assert!(clean, "cloud-cos did not exit cleanly");
    assert_eq!(cloud_end.state_count("store", "stored"), faces);
    // The port probe above and the clients that left were no errors of
    // the broker's (rumqttd logs each as one). Its refusals of the
    // clients' MQTT 5 CONNECTs (before they fell back) are.
    let (_, clean, log) = broker.stop_with_log().await;
    assert!(clean, "the broker did not exit cleanly");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.iter().all(|l| l.contains("InvalidProtocolLevel(5)")),
        "{}",
        errors.join("\n")
    );
}
