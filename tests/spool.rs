//! The edge spool of mqtt_pub survives `kill -9`: with the cloud broker down,
//! 1,000 messages are captured, flowrun is killed with SIGKILL and started
//! again, the broker comes back → all 1,000 arrive, in order.

use flowrun_test_support::mosquitto;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use mosquitto::{collect, eventually, Mosquitto};

fn spec(port: u16) -> String {
    format!(
        r#"
version: 1
name: spooled
nodes:
  gen:
    type: generate
    count: ${{COUNT}}
    size: 9000
    require_ack: true
  pub:
    type: mqtt_pub
    inputs: [gen]
    broker: {{url: "mqtt://127.0.0.1:{port}", client_id: spool-pub, reconnect_min_ms: 50, reconnect_max_ms: 500}}
    topic: "faces/{{seq}}"
    spool: {{dir: spool}}
"#
    )
}

fn flowrun(spec: &std::path::Path, count: u32) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_flowrun"))
        .args(["run", "--no-watch", "--status-interval", "0.1"])
        .arg(spec)
        .env("COUNT", count.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_survives_sigkill_and_delivers_everything_in_order() {
    let mut cloud = Mosquitto::start();
    tokio::task::block_in_place(|| cloud.stop());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spooled.yaml");
    std::fs::write(&path, spec(cloud.port)).unwrap();

    let mut first = flowrun(&path, 1000);
    let (lines_tx, lines) = mpsc::channel();
    let stderr = first.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let spooled = tokio::task::block_in_place(|| loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("[done: 1000 sent]") => break true,
            Ok(_) => {}
            Err(_) => break false,
        }
    });
    assert!(
        spooled,
        "the 1000 messages were never acknowledged into the spool"
    );
    first.kill().unwrap();
    first.wait().unwrap();

    tokio::task::block_in_place(|| cloud.restart());
    let out = collect(cloud.port, "spool-collector", "faces/#").await;
    let mut second = flowrun(&path, 0);
    eventually(
        Duration::from_secs(60),
        "1000 messages from the spool",
        || {
            let topics: std::collections::HashSet<String> =
                out.messages().into_iter().map(|(topic, _)| topic).collect();
            topics.len() >= 1000
        },
    )
    .await;
    let status = tokio::task::block_in_place(|| second.wait()).unwrap();
    assert!(status.success());

    let mut first_seen = Vec::new();
    for (topic, _) in out.messages() {
        let n: u32 = topic.trim_start_matches("faces/").parse().unwrap();
        if !first_seen.contains(&n) {
            first_seen.push(n);
        }
    }
    assert_eq!(first_seen, (0..1000).collect::<Vec<u32>>());
}
