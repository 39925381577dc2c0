//! The preview page in a real browser (Debian's headless Chromium) while
//! Megamind.avi plays through camera → haar_detect → gray_crop.

use std::path::{Path, PathBuf};
use std::time::Duration;

use flowrun_runtime::{validate, Engine, Metrics};
use flowrun_test_support::chromium::{self, CHROMIUM};
use flowrun_test_support::{free_port, http, wait};
use opencv::core::Vector;
use opencv::prelude::*;

use crate::common::*;

/// A plain HTTP GET: the body, when the status is 200.
fn get(port: u16, path: &str) -> Option<Vec<u8>> {
    let (head, body) = http::get(port, path, "")?;
    head.starts_with("HTTP/1.1 200").then_some(body)
}

/// The page's state once it has a frame with boxes and a face image.
fn wait_until_faces_are_shown(port: u16) -> serde_json::Value {
    wait::at_most(Duration::from_secs(60))
        .every(Duration::from_millis(100))
        .poll(|| {
            let state = get(port, "/state.json")
                .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok())?;
            (state["frame_boxes"].as_u64() > Some(0) && state["crops"].as_u64() > Some(0))
                .then_some(state)
        })
        .expect("no face shown within a minute")
}

/// The preview page on `port` in headless Chromium.
fn chromium(port: u16, profile: &Path, extra: &[&str]) -> String {
    chromium::run(&format!("http://127.0.0.1:{port}/"), profile, 4000, extra)
}

/// How many strongly green pixels a JPEG has: the drawn box outlines.
fn green_pixels(jpeg: &[u8]) -> usize {
    let image = opencv::imgcodecs::imdecode(
        &Vector::<u8>::from_slice(jpeg),
        opencv::imgcodecs::IMREAD_COLOR,
    )
    .unwrap();
    let mut count = 0;
    for y in 0..image.rows() {
        for x in 0..image.cols() {
            let p = image.at_2d::<opencv::core::Vec3b>(y, x).unwrap();
            if p[1] > 200 && p[0] < 80 && p[2] < 80 {
                count += 1;
            }
        }
    }
    count
}

/// A pipeline running on its own runtime. Dropping it, even on a failed
/// assertion, stops the pipeline and waits for it (bounded): the camera
/// loops, and its thread would otherwise keep the runtime from shutting down.
struct Running {
    runtime: Option<tokio::runtime::Runtime>,
    handle: flowrun_runtime::EngineHandle,
    task: Option<tokio::task::JoinHandle<flowrun_runtime::RunReport>>,
}

impl Running {
    fn start(plan: flowrun_runtime::Plan) -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (engine, handle) = runtime
            .block_on(async { Engine::start(plan, Metrics::new(), Duration::from_secs(10)) });
        let task = runtime.spawn(engine.run(std::future::pending()));
        Running {
            runtime: Some(runtime),
            handle,
            task: Some(task),
        }
    }

    fn stop(&mut self) -> Option<flowrun_runtime::RunReport> {
        self.handle.shutdown();
        let (runtime, task) = (self.runtime.as_ref()?, self.task.take()?);
        let report = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await })
            .ok()?
            .ok();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
        report
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_page_shows_the_frame_with_boxes_and_face_thumbnails() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run scripts/setup.sh"
    );
    let port = free_port();
    let spec = format!(
        r#"
version: 1
nodes:
  cam:
    type: camera
    source: {MEGAMIND}
    loop: true
  detect:
    type: haar_detect
    inputs: [cam]
    emit_empty: true
  track:
    type: face_track
    inputs: [detect]
  crop:
    type: gray_crop
    inputs: [track]
  view:
    type: preview
    address: 127.0.0.1:{port}
    inputs: [detect, track, crop]
"#
    );
    let checked = validate(Path::new("preview.yaml"), &spec, &catalogue(), &|_| None);
    let plan = checked.plan.expect("the spec validates");
    let mut running = Running::start(plan);

    let state = wait_until_faces_are_shown(port);
    // Frames without faces are shown too (the view does not freeze on the
    // last face), and counted apart from those with faces.
    let mut last = serde_json::Value::Null;
    let shown = wait::at_most(Duration::from_secs(60))
        .every(Duration::from_millis(100))
        .until(|| {
            last = serde_json::from_slice(&get(port, "/state.json").expect("the state is served"))
                .unwrap();
            last["frames"].as_u64() > last["with_faces"].as_u64()
        });
    assert!(shown, "no frame without faces shown: {last}");
    let frame = get(port, "/frame.jpg").expect("a frame is served");
    assert!(
        green_pixels(&frame) > 100,
        "the served frame has boxes drawn ({state})"
    );

    let profile = tempfile::tempdir().unwrap();
    let screenshot = artifact("preview.png");
    chromium(
        port,
        profile.path(),
        &[&format!("--screenshot={}", screenshot.display())],
    );
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "a screenshot was taken"
    );

    // The live frame changes as the video plays: look until one shown has boxes.
    let mut dom = String::new();
    let shown_with_boxes = (0..3).any(|_| {
        dom = chromium(port, profile.path(), &["--dump-dom"]);
        let boxes = dom
            .split("id=\"frame-boxes\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .and_then(|n| n.parse::<u32>().ok());
        boxes > Some(0)
    });
    std::fs::write(artifact("preview.html"), &dom).unwrap();
    assert!(shown_with_boxes, "a frame with boxes is shown: {dom}");
    // Through face_track, the boxes carry the ids of the people followed.
    let tracks_shown = (0..3).any(|_| {
        let text = chromium(port, profile.path(), &["--dump-dom"]);
        let shown = text
            .split("id=\"frame-tracks\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .is_some_and(|t| t.contains("tracks #"));
        if shown {
            dom = text;
        }
        shown
    });
    assert!(tracks_shown, "track ids are shown with the boxes: {dom}");
    assert!(
        dom.contains("id=\"live\"") && dom.contains("data-width=\""),
        "the live frame is loaded: {dom}"
    );
    assert!(
        dom.contains("class=\"face\""),
        "a face thumbnail is shown: {dom}"
    );

    let report = running.stop().expect("the pipeline stops within 30 s");
    assert!(report.is_success(), "{report:?}");
}
