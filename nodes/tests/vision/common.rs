//! A collecting sink, a way to run a spec through the engine, and OpenCV
//! called directly as the reference.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use flowrun_nodes::frame::Rect;
use flowrun_runtime::{
    validate, BuildContext, Catalogue, Engine, Inputs, Metadata, Metrics, Node, NodeConfig,
    NodeContext, NodeError, OutputKind, Payload, RunReport,
};
use futures::future::BoxFuture;
use opencv::core::{Mat, Size, Vector};
use opencv::objdetect::CascadeClassifier;
use opencv::prelude::*;
use opencv::{imgproc, videoio};
use schemars::JsonSchema;
use serde::Deserialize;

pub const DATA: &str = "/usr/share/doc/opencv-doc/examples/data";
pub const MEGAMIND: &str = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
pub const FRONTAL_FACE: &str =
    "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";

/// What a `collect` sink received.
pub struct Got {
    pub meta: Metadata,
    pub payload: Payload,
}

static SINKS: LazyLock<Mutex<HashMap<String, Vec<Got>>>> = LazyLock::new(Default::default);

/// A test-only sink: keeps every message under its `key`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CollectConfig {
    key: String,
}

impl NodeConfig for CollectConfig {
    const TYPE: &'static str = "collect";
    const DESCRIPTION: &'static str = "Keeps messages for a test";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::None;

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(Collect(self.key.clone())))
    }
}

struct Collect(String);

impl Node for Collect {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            while let Some(message) = ctx.input.recv().await {
                let got = Got {
                    meta: message.meta.clone(),
                    payload: message.payload.clone(),
                };
                SINKS
                    .lock()
                    .unwrap()
                    .entry(self.0.clone())
                    .or_default()
                    .push(got);
                message.ack();
            }
            Ok(())
        })
    }
}

pub fn catalogue() -> Catalogue {
    let mut catalogue = flowrun_nodes::catalogue();
    catalogue.register::<CollectConfig>();
    catalogue
}

/// Runs `yaml` until its sources end and it drains; returns the report and
/// what the `collect` sink with `key` received.
pub fn run(yaml: &str, key: &str) -> (RunReport, Vec<Got>) {
    let (report, got, _) = run_counted(yaml, key);
    (report, got)
}

/// `run`, also giving every node's counters.
pub fn run_counted(yaml: &str, key: &str) -> (RunReport, Vec<Got>, Metrics) {
    let checked = validate(
        Path::new("/tmp/vision-test.yaml"),
        yaml,
        &catalogue(),
        &|_| None,
    );
    let Some(plan) = checked.plan else {
        let text: Vec<String> = checked
            .diagnostics
            .iter()
            .map(ToString::to_string)
            .collect();
        panic!("the spec does not validate:\n{}", text.join("\n"));
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let metrics = Metrics::new();
    let report = runtime.block_on(async {
        let (engine, _handle) = Engine::start(plan, metrics.clone(), Duration::from_secs(10));
        tokio::time::timeout(Duration::from_secs(240), engine.run(std::future::pending()))
            .await
            .expect("the pipeline ends within 4 minutes")
    });
    let got = SINKS.lock().unwrap().remove(key).unwrap_or_default();
    (report, got, metrics)
}

/// What the `collect` sink with `key` received so far (taken away).
pub fn take(key: &str) -> Vec<Got> {
    SINKS.lock().unwrap().remove(key).unwrap_or_default()
}

/// The `frame` metadata of a message.
pub fn frame_index(got: &Got) -> usize {
    got.meta["frame"].to_string().parse().unwrap()
}

/// Boxes in a stable order: OpenCV's order may follow its thread timing.
pub fn sorted(mut boxes: Vec<Rect>) -> Vec<Rect> {
    boxes.sort_by_key(|r| (r.x, r.y, r.width, r.height));
    boxes
}

/// What the original script did, on one BGR image: gray, optionally
/// downscaled, `detectMultiScale(gray, 1.3, 5)`, boxes back at full size.
pub fn opencv_boxes(classifier: &mut CascadeClassifier, bgr: &Mat, scale: f64) -> Vec<Rect> {
    opencv_boxes_with(classifier, bgr, scale, 1.3, 5)
}

/// `opencv_boxes` with other `detectMultiScale` settings.
pub fn opencv_boxes_with(
    classifier: &mut CascadeClassifier,
    bgr: &Mat,
    scale: f64,
    scale_factor: f64,
    min_neighbors: i32,
) -> Vec<Rect> {
    let mut gray = Mat::default();
    imgproc::cvt_color(bgr, &mut gray, imgproc::COLOR_BGR2GRAY, 0).unwrap();
    if scale < 1.0 {
        let mut small = Mat::default();
        imgproc::resize(
            &gray,
            &mut small,
            Size::default(),
            scale,
            scale,
            imgproc::INTER_AREA,
        )
        .unwrap();
        gray = small;
    }
    let mut found = Vector::<opencv::core::Rect>::new();
    classifier
        .detect_multi_scale(
            &gray,
            &mut found,
            scale_factor,
            min_neighbors,
            0,
            Size::default(),
            Size::default(),
        )
        .unwrap();
    let back = |v: i32| (f64::from(v) / scale).round() as i32;
    sorted(
        found
            .iter()
            .map(|r| Rect {
                x: back(r.x),
                y: back(r.y),
                width: back(r.width),
                height: back(r.height),
            })
            .collect(),
    )
}

/// The first `n` frames of Megamind.avi, decoded by OpenCV.
pub fn megamind_frames(n: usize) -> Vec<Mat> {
    let mut capture = videoio::VideoCapture::from_file(MEGAMIND, videoio::CAP_ANY).unwrap();
    assert!(capture.is_opened().unwrap());
    let mut frames = Vec::new();
    for _ in 0..n {
        let mut frame = Mat::default();
        if !capture.read(&mut frame).unwrap() || frame.empty() {
            break;
        }
        frames.push(frame);
    }
    frames
}

/// OpenCV's own boxes for the first `n` frames of Megamind.avi.
pub fn megamind_reference(n: usize, scale: f64) -> Vec<Vec<Rect>> {
    let mut classifier = CascadeClassifier::new(FRONTAL_FACE).unwrap();
    megamind_frames(n)
        .iter()
        .map(|frame| opencv_boxes(&mut classifier, frame, scale))
        .collect()
}

/// A spec reading Megamind.avi as fast as detection goes (no frame dropped).
pub fn megamind_spec(frames: usize, detect: &str, rest: &str) -> String {
    format!(
        r#"
version: 1
nodes:
  cam:
    type: camera
    source: {MEGAMIND}
    realtime: false
    max_frames: {frames}
  detect:
    type: haar_detect
    inputs: [{{from: cam, overflow: block}}]
{detect}
{rest}
"#
    )
}
