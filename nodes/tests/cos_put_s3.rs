//! `cos_put` with the `s3` backend against a real S3 server (s3s-fs) on
//! loopback, run by the real engine from YAML specs.

mod support;

use std::time::{Duration, Instant};

use flowrun_test_support::wait;
use support::s3::S3Server;
use support::storage::{credentials, run_spec, sample_images, state, SAMPLE_IMAGES};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_hundreds_of_real_images_byte_identical_with_their_content_type() {
    let server = S3Server::start();
    server.create_bucket("faces").await;
    let images = sample_images();
    assert!(images.len() > 80, "expected opencv-doc's sample images");
    let dir = tempfile::tempdir().unwrap();
    // Six sources over the same images give more than 500 objects, and
    // check that `{source}` keeps them apart.
    let sources = ["cam0", "cam1", "cam2", "cam3", "cam4", "cam5"];
    let mut yaml = String::from("version: 1\nname: images\nnodes:\n");
    for source in sources {
        yaml.push_str(&format!(
            "  {source}:\n    type: files\n    path: \"{SAMPLE_IMAGES}/*.[jp][pn]g\"\n"
        ));
    }
    yaml.push_str(&format!(
        r#"  store:
    type: cos_put
    inputs: [{inputs}]
    key: "{{source}}/{{prefix}}{{seq}}.{{ext}}"
    backend:
      s3:
        endpoint: {endpoint}
        bucket: faces
        {credentials}
"#,
        inputs = sources.join(", "),
        endpoint = server.endpoint(),
        credentials = credentials(&server, "IMAGES"),
    ));
    let started = Instant::now();
    let (report, metrics) = run_spec(dir.path(), &yaml, Duration::from_secs(120)).await;
    assert!(report.is_success(), "{report:?}");
    let total = sources.len() * images.len();
    eprintln!("{total} images stored in {:?}", started.elapsed());
    assert_eq!(metrics.node("store").snapshot().acked, total as u64);
    assert!(
        state(&metrics, "store").starts_with(&format!("stored={total} retried=0")),
        "{}",
        state(&metrics, "store")
    );

    let mut expected: Vec<String> = Vec::new();
    for source in sources {
        for (seq, image) in images.iter().enumerate() {
            let ext = image.extension().unwrap().to_str().unwrap();
            expected.push(format!("{source}/test{seq}.{ext}"));
        }
    }
    expected.sort();
    assert_eq!(server.list("faces").await, expected);
    for source in ["cam0", "cam5"] {
        for (seq, image) in images.iter().enumerate() {
            let ext = image.extension().unwrap().to_str().unwrap();
            let (body, content_type) = server
                .get("faces", &format!("{source}/test{seq}.{ext}"))
                .await;
            assert!(body == std::fs::read(image).unwrap(), "{}", image.display());
            let want = if ext == "png" {
                "image/png"
            } else {
                "image/jpeg"
            };
            assert_eq!(content_type.as_deref(), Some(want), "{}", image.display());
        }
    }
    let head = server
        .client()
        .head_object()
        .bucket("faces")
        .key("cam3/test0.jpg")
        .send()
        .await
        .unwrap();
    let meta = head.metadata().unwrap();
    assert_eq!(meta.get("source").map(String::as_str), Some("cam3"));
    assert_eq!(meta.get("seq").map(String::as_str), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_the_store_loses_nothing_and_duplicates_nothing() {
    let mut server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let count = 1000;
    let yaml = format!(
        r#"version: 1
name: outage
nodes:
  source:
    type: generate
    count: {count}
    size: 9000
    interval_ms: 4
    require_ack: true
  store:
    type: cos_put
    inputs: [source]
    retry: {{ initial_ms: 50, max_ms: 1000 }}
    backend:
      s3:
        endpoint: {endpoint}
        bucket: outage
        create_bucket: true
        connect_timeout_ms: 500
        request_timeout_ms: 2000
        {credentials}
"#,
        endpoint = server.endpoint(),
        credentials = credentials(&server, "OUTAGE"),
    );
    let run = {
        let dir = dir.path().to_path_buf();
        tokio::spawn(async move { run_spec(&dir, &yaml, Duration::from_secs(120)).await })
    };
    // Take the store away once a good part of the stream is stored.
    let stored = wait::at_most(Duration::from_secs(60))
        .every(Duration::from_millis(50))
        .poll_async(|| async {
            let listed = server.try_list("outage").await.unwrap_or_default();
            (listed.len() >= 200).then_some(())
        })
        .await;
    assert!(stored.is_some(), "nothing was stored");
    server.stop();
    // The outage itself: five seconds with the store gone, not a wait for anything.
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.resume();

    let (report, metrics) = run.await.unwrap();
    assert!(report.is_success(), "{report:?}");
    let stored = server.list("outage").await;
    let mut expected: Vec<String> = (0..count).map(|n| format!("test{n}.bin")).collect();
    expected.sort();
    assert_eq!(stored, expected, "every message once");
    let (body, _) = server.get("outage", "test999.bin").await;
    assert_eq!(body.len(), 9000);
    let store = state(&metrics, "store");
    assert!(store.starts_with("stored=1000 "), "{store}");
    assert!(
        !store.contains("retried=0 "),
        "the outage was retried: {store}"
    );
    assert_eq!(metrics.node("store").snapshot().nacked, 0);
}

/// A one-message pipeline into `backend`, whose outcome the test inspects.
async fn one_message(backend: &str, extra: &str) -> (flowrun_runtime::RunReport, String) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"version: 1
name: one
nodes:
  source:
    type: generate
    count: 1
    text: hello
    require_ack: true
    on_failure: stop
  store:
    type: cos_put
    inputs: [source]
{extra}    backend:
{backend}"#
    );
    let (report, metrics) = run_spec(dir.path(), &yaml, Duration::from_secs(60)).await;
    (report, state(&metrics, "store"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_clear_error_and_the_message_is_not_acknowledged() {
    let server = S3Server::start();
    server.create_bucket("bkt").await;
    std::env::set_var("FLOWRUN_TEST_WRONG_ID", "nobody");
    std::env::set_var("FLOWRUN_TEST_WRONG_SECRET", "flowrun-secret-wrong-value");
    let backend = format!(
        "      s3:\n        endpoint: {}\n        bucket: bkt\n        access_key_id_env: FLOWRUN_TEST_WRONG_ID\n        secret_access_key_env: FLOWRUN_TEST_WRONG_SECRET\n",
        server.endpoint()
    );
    let (report, store) = one_message(&backend, "").await;
    assert_eq!(
        report.failures.get("source").map(String::as_str),
        Some("1 of 1 messages were not delivered")
    );
    let at = format!("cannot store s3://bkt/test0.txt at {}: ", server.endpoint());
    assert!(store.contains(&at), "{store}");
    assert!(store.contains("HTTP 403"), "{store}");
    assert!(
        store.contains("check the access key id and secret"),
        "{store}"
    );
    assert!(
        !store.contains("flowrun-secret-wrong-value"),
        "no secret in errors"
    );
    assert!(server.list("bkt").await.is_empty());

    // Wired to a folder through the `dead_letter` port, the refusal is kept
    // there with its reason, and the message is acknowledged.
    let dead = tempfile::tempdir().unwrap();
    let with_dead_letters = format!(
        "{backend}  dead:\n    type: cos_put\n    inputs: [store.dead_letter]\n    \
         key: \"{{meta.dead_letter_key}}\"\n    backend:\n      \
         fs: {{root: \"{}\", metadata_file: true}}\n",
        dead.path().display()
    );
    let (report, store) = one_message(&with_dead_letters, "").await;
    assert!(
        report.is_success(),
        "dead-lettered is acknowledged: {report:?}"
    );
    assert!(store.contains("dead_lettered=1"), "{store}");
    assert_eq!(
        std::fs::read(dead.path().join("test0.txt")).unwrap(),
        b"hello"
    );
    let why: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dead.path().join("test0.txt.meta.json")).unwrap())
            .unwrap();
    let reason = why["dead_letter_reason"].as_str().unwrap();
    assert!(reason.contains("HTTP 403"), "{why}");
    assert_eq!(why["source"], "source");
    assert!(server.list("bkt").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_stops_the_node_at_start_with_a_clear_error() {
    let server = S3Server::start();
    let backend = format!(
        "      s3:\n        endpoint: {}\n        bucket: nowhere\n        {}\n",
        server.endpoint(),
        credentials(&server, "MISSING")
    );
    let (report, store) = one_message(&backend, "    on_failure: stop\n").await;
    let expected = format!(
        "the bucket nowhere does not exist at {} (create it, or set `create_bucket: true`)",
        server.endpoint()
    );
    assert_eq!(report.failures.get("store"), Some(&expected), "{report:?}");
    assert_eq!(store, format!("failed: {expected}"));
    assert!(
        server.try_list("nowhere").await.is_err(),
        "nothing created it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_retried_then_given_back_with_a_clear_error() {
    let port = support::s3::free_port();
    std::env::set_var("FLOWRUN_TEST_UNREACHABLE_ID", "id");
    std::env::set_var(
        "FLOWRUN_TEST_UNREACHABLE_SECRET",
        "flowrun-secret-unreachable",
    );
    let backend = format!(
        "      s3:\n        endpoint: http://127.0.0.1:{port}\n        bucket: bkt\n        access_key_id_env: FLOWRUN_TEST_UNREACHABLE_ID\n        secret_access_key_env: FLOWRUN_TEST_UNREACHABLE_SECRET\n"
    );
    let extra = "    retry: { initial_ms: 50, max_ms: 200, give_up_after_s: 1 }\n";
    let started = Instant::now();
    let (report, store) = one_message(&backend, extra).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        report.failures.get("source").map(String::as_str),
        Some("1 of 1 messages were not delivered")
    );
    assert!(
        store.contains(&format!(
            "cannot store s3://bkt/test0.txt at http://127.0.0.1:{port}: "
        )),
        "{store}"
    );
    // One cause in words, not the SDK's chain of wrappers and debug dumps.
    assert!(
        store.contains(&format!(
            "cannot store s3://bkt/test0.txt at http://127.0.0.1:{port}: \
             connection refused (is the S3 endpoint up, and is `endpoint` right?)"
        )),
        "{store}"
    );
    assert!(
        !store.contains("ConnectorError") && !store.contains("Os {"),
        "{store}"
    );
    assert!(!store.contains("retried=0 "), "{store}");
}

#[test]
fn missing_credentials_are_named_by_the_check_and_when_the_node_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = r#"version: 1
name: nokeys
nodes:
  source:
    type: generate
    count: 1
  store:
    type: cos_put
    inputs: [source]
    backend:
      s3:
        endpoint: http://127.0.0.1:1
        bucket: b
        access_key_id_env: FLOWRUN_TEST_NEVER_SET_ID
"#;
    let path = dir.path().join("spec.yaml");
    // The check refuses it, located at the key that names the variable
    // (and at the `s3` block for the secret's default name).
    let checked = flowrun_runtime::validate(&path, yaml, &flowrun_nodes::catalogue(), &|_| None);
    assert!(checked.plan.is_none());
    let errors: Vec<String> = checked.errors().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains(
            "spec.yaml:12:9: error: `backend.s3.secret_access_key_env` of node `store`: \
             reads the S3 secret access key from the environment variable `AWS_SECRET_ACCESS_KEY`, \
             which is not set"
        ),
        "{errors:#?}"
    );
    assert!(
        errors[1].contains(
            "spec.yaml:14:28: error: `backend.s3.access_key_id_env` of node `store`: \
             reads the S3 access key id from the environment variable `FLOWRUN_TEST_NEVER_SET_ID`, \
             which is not set"
        ),
        "{errors:#?}"
    );
    // With the variables there for the check and gone when it runs, the
    // node still says which one.
    let env = |name: &str| Some(format!("{name}-value"));
    let checked = flowrun_runtime::validate(&path, yaml, &flowrun_nodes::catalogue(), &env);
    let plan = checked.plan.expect("the spec itself is valid");
    let node = plan.nodes.iter().find(|n| n.id == "store").unwrap();
    let error = node
        .built
        .build(&flowrun_runtime::BuildContext {
            id: "store".into(),
            spec_dir: dir.path().into(),
            state_dir: dir.path().into(),
        })
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        "store: the access key id is read from the environment variable FLOWRUN_TEST_NEVER_SET_ID, which is not set"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_keys_turn_redeliveries_into_overwrites() {
    let server = S3Server::start();
    server.create_bucket("once").await;
    let images = sample_images();
    let dir = tempfile::tempdir().unwrap();
    // Two sources deliver every image: what a redelivery after an outage does.
    let yaml = format!(
        r#"version: 1
name: once
nodes:
  first:
    type: files
    path: "{SAMPLE_IMAGES}/*.[jp][pn]g"
  again:
    type: files
    path: "{SAMPLE_IMAGES}/*.[jp][pn]g"
  store:
    type: cos_put
    inputs: [first, again]
    key: "faces/{{hash:32}}.{{ext}}"
    backend:
      s3:
        endpoint: {endpoint}
        bucket: once
        {credentials}
"#,
        endpoint = server.endpoint(),
        credentials = credentials(&server, "ONCE"),
    );
    let (report, metrics) = run_spec(dir.path(), &yaml, Duration::from_secs(120)).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        metrics.node("store").snapshot().acked,
        2 * images.len() as u64
    );
    let mut distinct: Vec<Vec<u8>> = images.iter().map(|p| std::fs::read(p).unwrap()).collect();
    distinct.sort();
    distinct.dedup();
    let stored = server.list("once").await;
    assert_eq!(
        stored.len(),
        distinct.len(),
        "one object per distinct image"
    );
    for key in &stored {
        let (body, _) = server.get("once", key).await;
        assert!(distinct.contains(&body), "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_crops_from_the_vision_nodes_are_stored_byte_identical_as_png() {
    let server = S3Server::start();
    server.create_bucket("faces").await;
    let dir = tempfile::tempdir().unwrap();
    let copies = dir.path().join("copies");
    // Two cameras on the same video give well over 500 faces; the crops go
    // both to the S3 store and to a local directory, to compare bytes.
    let mut yaml = String::from("version: 1\nname: crops\nnodes:\n");
    for cam in ["cam0", "cam1"] {
        yaml.push_str(&format!(
            "  {cam}:\n    type: camera\n    source: {SAMPLE_IMAGES}/Megamind.avi\n    realtime: false\n"
        ));
    }
    yaml.push_str(&format!(
        r#"  faces:
    type: haar_detect
    inputs: [{{from: cam0, overflow: block}}, {{from: cam1, overflow: block}}]
  crops:
    type: gray_crop
    inputs: [faces]
  store:
    type: cos_put
    inputs: [crops]
    key: "{{source}}/{{frame}}-{{face}}.{{ext}}"
    backend:
      s3:
        endpoint: {endpoint}
        bucket: faces
        {credentials}
  copy:
    type: cos_put
    inputs: [crops]
    key: "{{source}}/{{frame}}-{{face}}.{{ext}}"
    backend:
      fs:
        root: {copies}
"#,
        endpoint = server.endpoint(),
        credentials = credentials(&server, "CROPS"),
        copies = copies.display(),
    ));
    std::fs::create_dir_all(&copies).unwrap();
    let (report, metrics) = run_spec(dir.path(), &yaml, Duration::from_secs(300)).await;
    assert!(report.is_success(), "{report:?}");
    let faces = metrics.node("crops").snapshot().sent;
    assert!(
        faces >= 500,
        "expected 500+ faces from two passes of Megamind.avi, got {faces}"
    );
    let keys = server.list("faces").await;
    assert_eq!(keys.len() as u64, faces, "one object per face");
    for key in &keys {
        let (body, content_type) = server.get("faces", key).await;
        assert_eq!(content_type.as_deref(), Some("image/png"), "{key}");
        assert!(body.starts_with(b"\x89PNG\r\n\x1a\n"), "{key} is a PNG");
        // Colour type 0 (grayscale) in the IHDR chunk.
        assert_eq!(body[25], 0, "{key} is a grayscale PNG");
        let copy = std::fs::read(copies.join(key)).unwrap();
        assert!(body == copy, "{key} differs from the crop gray_crop made");
    }
}
