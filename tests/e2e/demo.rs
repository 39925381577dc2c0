//! The two demos as a user starts them: `scripts/demo.sh` (the whole
//! pipeline in one process, on its embedded defaults) and
//! specs/mqtt-demo.yaml.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use flowrun_test_support::faces::{assert_gray_png, assert_one_object_per_face};
use flowrun_test_support::flowrun::repository;
use flowrun_test_support::s3::free_port;
use flowrun_test_support::wait;

use crate::{DELIVERY, FLOWRUN, SERIAL};

/// What a run of scripts/demo.sh printed.
struct DemoRun {
    exit: ExitStatus,
    out: String,
    err: String,
}

/// Runs scripts/demo.sh with the built binary (no set-up, no release
/// build) into `bucket`, the preview on `preview`, plus `env`; the script
/// may take `timeout` (its DEMO_TIMEOUT), the test 30 s more.
async fn run_demo(bucket: &Path, preview: &str, env: &[(&str, &str)], timeout: u64) -> DemoRun {
    let mut command = Command::new("bash");
    command
        .arg(repository().join("scripts/demo.sh"))
        .env("FLOWRUN", FLOWRUN.path())
        .env("MQTT_PORT", free_port().to_string())
        .env("PREVIEW_ADDRESS", preview)
        .env("BUCKET_DIR", bucket)
        .env("DEMO_TIMEOUT", timeout.to_string())
        .env_remove("CAMERA")
        .env_remove("CAMERA_OVERFLOW")
        .env_remove("DEVICE_ID")
        .env_remove("TRACK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.envs(env.iter().copied());
    let mut demo = command.spawn().unwrap();
    let mut stdout = demo.stdout.take().unwrap();
    let mut stderr = demo.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let limit = Duration::from_secs(timeout + 30);
    let exit = wait::at_most(limit)
        .every(Duration::from_millis(100))
        .poll_async(|| std::future::ready(demo.try_wait().unwrap()))
        .await;
    let Some(exit) = exit else {
        // SIGTERM, so that the script's exit trap stops flowrun too.
        let _ = Command::new("kill")
            .args(["-TERM", &demo.id().to_string()])
            .status();
        let _ = demo.wait();
        panic!("the demo did not end within {limit:?}");
    };
    DemoRun {
        exit,
        out: out.join().unwrap(),
        err: err.join().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_alone_and_ends_with_its_summary() {
    let _serial = SERIAL.lock().await;
    let bucket = tempfile::tempdir().unwrap();
    let preview = format!("127.0.0.1:{}", free_port());
    let DemoRun { exit, out, err } = run_demo(bucket.path(), &preview, &[], 150).await;
    assert!(exit.success(), "the demo failed:\n{out}\n{err}");

    // It says where to look…
    let bucket_dir = bucket.path().display().to_string();
    assert!(
        out.contains(&format!("demo: live view at http://{preview}/")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "faces are stored as PNG files under {bucket_dir}/faces/"
        )),
        "{out}"
    );
    // …and ends with what it did.
    let summary = out.lines().last().unwrap_or_default();
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    // At the default TRACK=all every face found is sent, as the original did.
    let expected = |frames, faces, tracks| {
        format!(
            "demo: done: {frames} frames, {faces} faces found in {tracks} tracks, {faces} sent (TRACK=all), \
             {faces} objects stored in {bucket_dir} ({faces} PNG files there in all)"
        )
    };
    let (frames, faces, tracks) = (numbers[0], numbers[1], numbers[2]);
    assert_eq!(summary, expected(frames, faces, tracks), "{out}");
    assert!((1..faces).contains(&tracks), "{summary}");
    assert_eq!(frames, 270);
    assert!(faces >= 100, "{summary}");

    let folder = bucket.path().join("faces/demo/camera");
    let mut keys: Vec<String> = std::fs::read_dir(&folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|e| {
            format!(
                "faces/demo/camera/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    keys.sort();
    assert_one_object_per_face("faces/demo/camera/", &keys, faces);
    for key in &keys {
        assert_gray_png(key, &std::fs::read(bucket.path().join(key)).unwrap());
    }
}

/// A mistyped CAMERA, and a camera device that is not there: the demo
/// names the camera's trouble as soon as the status shows it, once, rather
/// than only the last status at its timeout — for the device, with what to
/// do about it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_names_a_missing_camera_at_once() {
    let _serial = SERIAL.lock().await;
    let video = "/tmp/flowrun-no-such-video/Megamid.avi";
    // No machine running the tests has 98 cameras.
    let device = "/dev/video97";
    for (camera, said) in [
        (video, format!("camera source {video} does not exist")),
        (
            device,
            format!("camera source {device}: there is no {device} — is a camera plugged in?"),
        ),
    ] {
        let bucket = tempfile::tempdir().unwrap();
        let preview = format!("127.0.0.1:{}", free_port());
        let DemoRun { exit, out, err } =
            run_demo(bucket.path(), &preview, &[("CAMERA", camera)], 8).await;
        assert!(!exit.success(), "{out}\n{err}");
        let said = format!("demo: camera: restarting: {said}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(&said)).collect();
        assert_eq!(lines.len(), 1, "{out}\n{err}");
        if camera == device {
            assert!(lines[0].contains("compose `devices:`"), "{}", lines[0]);
        }
        // Said while the demo waits, not only in its last words.
        assert!(err.find(&said) < err.find("not finished after"), "{err}");
    }
}

/// specs/mqtt-demo.yaml, MQTT with nothing installed, from start to Ctrl-C:
/// every message arrives, and the log has no WARN or ERROR line — the
/// clients do not report the spec's own broker as absent while it starts,
/// and the broker does not report the clients leaving as errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mqtt_demo_starts_and_stops_without_a_warning() {
    let _serial = SERIAL.lock().await;
    let spec = repository().join("specs/mqtt-demo.yaml");
    let env = [("MQTT_PORT", free_port().to_string())];
    let mut demo = FLOWRUN.start_file("mqtt-demo", &spec, false, &env);
    demo.wait_until("every message printed", DELIVERY, |s| {
        s.count("show", "in") >= 10
    })
    .await;
    let (end, clean, log) = demo.stop_with_log().await;
    assert!(clean, "it did not exit cleanly:\n{log}");
    assert_eq!(end.count("show", "in"), 10, "{log}");
    let noisy: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(noisy.is_empty(), "{}", noisy.join("\n"));
}
