//! `flowrun publish` against a real mosquitto: the exit code says whether the
//! broker acknowledged.

#[path = "../nodes/tests/support/mosquitto.rs"]
#[allow(dead_code)]
mod mosquitto;

use std::process::Command;
use std::time::Duration;

use mosquitto::{collect, eventually, Mosquitto};

fn flowrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowrun"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_a_file_and_exits_0_when_acknowledged() {
    let broker = Mosquitto::start();
    let out = collect(broker.port, "publish-collector", "image").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("face.png");
    std::fs::write(&file, vec![7u8; 9000]).unwrap();
    let output = tokio::task::block_in_place(|| {
        flowrun()
            .args([
                "publish",
                "--broker",
                &broker.url(),
                "--topic",
                "image",
                "--count",
                "3",
                "--file",
            ])
            .arg(&file)
            .output()
            .unwrap()
    });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "published 3 of 3 on `image`"
    );
    eventually(Duration::from_secs(10), "3 messages", || out.len() == 3).await;
    assert!(out.messages().iter().all(|(_, p)| p == &vec![7u8; 9000]));
}

#[test]
fn exits_1_when_no_broker_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = flowrun()
        .args([
            "publish",
            "--broker",
            &format!("mqtt://127.0.0.1:{port}"),
            "--topic",
            "t",
            "--message",
            "hi",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "flowrun: nothing listens at the broker address (connection refused)"
    );
}
