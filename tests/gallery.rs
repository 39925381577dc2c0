//! "Where are my faces?" — `flowrun gallery` on a cloud spec, against a real
//! S3 server (s3s-fs) with a private bucket, looked at in a real browser:
//! the most recent objects under a prefix, each shown through a presigned
//! link the browser fetches from the store itself.

use flowrun_test_support::{chromium, http, s3};

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use s3::{free_port, S3Server};

const SAMPLES: &str = "/usr/share/doc/opencv-doc/examples/data";

/// GET `path_and_query` on `port`: the status line and the body.
fn get(port: u16, path_and_query: &str) -> Option<(String, Vec<u8>)> {
    let (head, body) = http::get(port, path_and_query, "")?;
    Some((http::status_line(&head).to_owned(), body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gallery_shows_the_newest_faces_through_presigned_links() {
    let store = S3Server::start();
    store.create_bucket("faces").await;
    let image = std::fs::read(format!("{SAMPLES}/messi5.jpg")).unwrap();
    let client = store.client();
    for key in [
        "faces/door-1/camera/1-0-0.jpg",
        "faces/door-1/camera/2-0-0.jpg",
        "other/x.jpg",
    ] {
        client
            .put_object()
            .bucket("faces")
            .key(key)
            .content_type("image/jpeg")
            .body(image.clone().into())
            .send()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("cloud.yaml");
    std::fs::write(
        &spec,
        format!(
            "version: 1\nnodes:\n  faces: {{type: generate, count: 1}}\n  store:\n    type: cos_put\n    inputs: [faces]\n    backend:\n      s3: {{endpoint: \"{}\", bucket: faces}}\n",
            store.endpoint()
        ),
    )
    .unwrap();
    let port = free_port();
    let mut gallery = Command::new(env!("CARGO_BIN_EXE_flowrun"))
        .arg("gallery")
        .arg(&spec)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("AWS_ACCESS_KEY_ID", &store.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &store.secret_key)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(gallery.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with(&format!("gallery of `store`: http://127.0.0.1:{port}/")),
        "{line}"
    );

    // The listing: under the prefix only, newest first, presigned.
    let (status, body) = get(port, "/recent.json?prefix=faces/").expect("the gallery answers");
    assert!(status.contains(" 200 "), "{status}");
    let listing: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let objects = listing["objects"].as_array().unwrap();
    let keys: Vec<&str> = objects.iter().map(|o| o["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "faces/door-1/camera/2-0-0.jpg",
            "faces/door-1/camera/1-0-0.jpg"
        ]
    );
    let url = objects[0]["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");

    // The link works without credentials; the object itself does not.
    let s3_port: u16 = store
        .endpoint()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let signed = url.split_once(&format!("127.0.0.1:{s3_port}")).unwrap().1;
    let (status, bytes) = get(s3_port, signed).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(bytes, image);
    let unsigned = signed.split('?').next().unwrap();
    let (status, _) = get(s3_port, unsigned).unwrap();
    assert!(
        !status.contains(" 200 "),
        "a private bucket answered {status}"
    );

    // In a real browser: both images under the prefix load.
    let profile = tempfile::tempdir().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let dom = loop {
        let url = format!("http://127.0.0.1:{port}/?prefix=faces/");
        let dom = chromium::run(&url, profile.path(), 5000, &["--dump-dom"]);
        if dom.matches("data-width=\"").count() == 2 || Instant::now() > deadline {
            break dom;
        }
    };
    assert_eq!(dom.matches("class=\"face\"").count(), 2, "{dom}");
    assert_eq!(
        dom.matches("data-width=\"").count(),
        2,
        "images not loaded: {dom}"
    );
    assert!(dom.contains("2 objects, newest first"), "{dom}");
    assert!(!dom.contains("other/x.jpg"), "{dom}");
    let _ = gallery.kill();
    let _ = gallery.wait();
}
