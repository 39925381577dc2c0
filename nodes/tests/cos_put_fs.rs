//! `cos_put` with the `fs` backend writing into an s3fs-fuse mount of a real
//! S3 server's bucket: the objects must appear through the S3 API.

mod support;

use std::time::Duration;

use support::s3::S3Server;
use support::s3fs::Mount;
use support::storage::{run_spec, sample_images, state};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_written_into_an_s3fs_mount_appear_through_the_s3_api() {
    let server = S3Server::start();
    server.create_bucket("mounted").await;
    let mount = match Mount::new(&server, "mounted") {
        Ok(mount) => mount,
        Err(why) => {
            eprintln!("SKIPPED: cannot mount a bucket with s3fs-fuse here: {why}");
            return;
        }
    };
    let images = sample_images();
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        r#"version: 1
name: mounted
nodes:
  images:
    type: files
    path: "{}/*.[jp][pn]g"
  store:
    type: cos_put
    inputs: [images]
    concurrency: 8
    backend:
      fs:
        root: {}
"#,
        support::storage::SAMPLE_IMAGES,
        mount.path().display()
    );
    let (report, metrics) = run_spec(dir.path(), &yaml, Duration::from_secs(180)).await;
    assert!(report.is_success(), "{report:?}");
    let store = state(&metrics, "store");
    assert!(
        store.starts_with(&format!("stored={} ", images.len())),
        "{store}"
    );

    let mut expected: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(seq, image)| {
            let ext = image.extension().unwrap().to_str().unwrap();
            format!("test{seq}.{ext}")
        })
        .collect();
    expected.sort();
    // The original's flat `test<N>.png` names: s3s-fs cannot store the
    // folder objects s3fs makes for `mkdir` (it answers 500), so folders in
    // keys are tested on a local directory (`fs` module tests). No
    // temporary part file is left behind.
    assert_eq!(server.list("mounted").await, expected);
    for (seq, image) in images.iter().enumerate() {
        let ext = image.extension().unwrap().to_str().unwrap();
        let (body, _) = server.get("mounted", &format!("test{seq}.{ext}")).await;
        assert!(body == std::fs::read(image).unwrap(), "{}", image.display());
    }
    drop(mount);
}
