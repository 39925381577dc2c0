//! `flowrun publish` against a real mosquitto: the exit code says whether the
//! broker acknowledged.

use flowrun_test_support::mosquitto;
use flowrun_test_support::rabbitmq;

use std::process::{Command, Output};
use std::time::Duration;

use flowrun_nodes::mqtt::Qos;
use flowrun_test_support::wait;
use mosquitto::{eventually, subscribe_v5, Mosquitto, Options};

fn flowrun() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flowrun"))
}

fn publish(args: &[&str]) -> Output {
    flowrun().arg("publish").args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_a_file_and_exits_0_when_acknowledged() {
    let (broker, out) = Mosquitto::start_collecting("image").await;
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
    let port = flowrun_test_support::free_port();
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
        format!("flowrun: cannot publish to mqtt://127.0.0.1:{port}: connection refused: nothing listens at the broker's address and port (check `url`, and that the broker runs)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_publish_arrives_byte_exact_with_its_user_properties() {
    let broker = Mosquitto::start();
    let mut received = subscribe_v5(&broker.url(), "image").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("face.png");
    let payload: Vec<u8> = (0..9000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &payload).unwrap();
    let output = tokio::task::block_in_place(|| {
        publish(&[
            "--broker",
            &broker.url(),
            "--topic",
            "image",
            "--protocol",
            "5",
            "--user-property",
            "source=cam7",
            "--user-property",
            "frame=12",
            "--file",
            file.to_str().unwrap(),
        ])
    });
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    let message = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the subscriber received nothing")
        .unwrap();
    assert_eq!(message.qos, Qos::AtLeastOnce);
    assert_eq!(message.payload, payload);
    assert_eq!(
        message.user_properties,
        [
            ("source".to_owned(), "cam7".to_owned()),
            ("frame".to_owned(), "12".to_owned())
        ]
    );
}

#[test]
fn v5_publish_the_acl_refuses_exits_1_with_the_reason() {
    let broker = Mosquitto::start_with(Options {
        acl: Some("topic read #\ntopic write good/#\n".into()),
        ..Options::default()
    });
    let output = publish(&[
        "--broker",
        &broker.url(),
        "--topic",
        "bad/1",
        "--protocol",
        "5",
        "--message",
        "hi",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "flowrun: the broker refused the publish: not authorized (0x87)"
    );
}

#[test]
fn v5_publish_no_one_subscribed_to_exits_0_with_a_warning() {
    let broker = Mosquitto::start();
    let output = publish(&[
        "--broker",
        &broker.url(),
        "--topic",
        "nobody",
        "--protocol",
        "5",
        "--count",
        "2",
        "--message",
        "hi",
    ]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "flowrun: warning: 2 of 2 copies on `nobody` reached no subscriber (the broker took them: no matching subscribers, 0x10)"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "published 2 of 2 on `nobody`"
    );
}

#[test]
fn user_properties_need_protocol_5() {
    let output = publish(&[
        "--broker",
        "mqtt://127.0.0.1:1",
        "--protocol",
        "3.1.1",
        "--topic",
        "t",
        "--user-property",
        "a=b",
        "--message",
        "hi",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "flowrun: --user-property needs MQTT 5 (--protocol auto or 5): 3.1.1 has no user properties"
    );
}

/// RabbitMQ 3.10 speaks MQTT 3.1.1 only: the default `auto` publishes with
/// 3.1.1 and says so; `--protocol 5` exits 1 naming MQTT 5, not "Timeout".
#[test]
fn against_a_3_1_1_only_broker_auto_falls_back_and_5_is_named() {
    let broker = rabbitmq::RabbitMq::start();
    let url = broker.url();
    let base = ["--broker", &url, "--topic", "faces/1", "--message", "hi"];
    let auto = publish(&[&base[..], &["--count", "3"]].concat());
    let stderr = String::from_utf8_lossy(&auto.stderr);
    assert!(auto.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&auto.stdout).trim(),
        "published 3 of 3 on `faces/1`"
    );
    assert!(stderr.contains("speaks MQTT 3.1.1 only"), "{stderr}");

    let pinned = publish(&[&base[..], &["--protocol", "5"]].concat());
    let stderr = String::from_utf8_lossy(&pinned.stderr);
    assert_eq!(pinned.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not speak MQTT 5"), "{stderr}");
    assert!(!stderr.contains("Timeout"), "{stderr}");
}

/// `flowrun subscribe` prints what arrives and saves the payloads; with
/// `flowrun publish --file -` (stdin), `--count` and `--interval` it is the
/// mosquitto_sub / mosquitto_pub pair, on flowrun's own connection code.
#[test]
fn subscribe_prints_and_saves_what_publish_sends_from_stdin() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;

    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let mut subscriber = flowrun()
        .args(["subscribe", "--broker", &broker.url(), "--topic", "sub/#"])
        .args(["--count", "3", "--save-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Publish only once the subscription is confirmed.
    let mut stderr = BufReader::new(subscriber.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "flowrun: subscribed sub/# (qos 1)");

    let mut publisher = flowrun()
        .args(["publish", "--broker", &broker.url(), "--topic", "sub/a/b"])
        .args(["--count", "3", "--interval", "20", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    publisher.stdin.take().unwrap().write_all(b"hello").unwrap();
    let published = publisher.wait_with_output().unwrap();
    assert!(published.status.success());

    // `--count 3`: it ends by itself (bounded by the test harness's wait).
    wait::until(Duration::from_secs(20), "subscribe to end after 3", || {
        subscriber.try_wait().unwrap().is_some()
    });
    let mut stdout = String::new();
    subscriber
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(stdout, "sub/a/b 5 bytes qos=1\n".repeat(3));
    assert_eq!(std::fs::read(dir.path().join("sub_a_b")).unwrap(), b"hello");
}
