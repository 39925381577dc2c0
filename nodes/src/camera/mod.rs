//! `camera`: a source of video frames — a capture device, a stream, a video
//! file, or still images — decoded by OpenCV on a thread of its own.
//!
//! Frames leave decoded ([`crate::frame::Frame`], BGR). The camera's
//! output edges drop the oldest frame when detection falls behind, so a live
//! source never builds a backlog; those drops are counted on the receiver.

mod capture;
mod source;

pub use source::{DeviceId, Source, SourceError};

use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Node, NodeConfig, NodeContext, NodeError, OutputKind,
    Overflow,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::frame::FRAMES;

/// Reads frames from a device, a stream, a video file or still images.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// What to read: a device index (`0`) or path (`/dev/video0`), a video
    /// file, a stream URL (`rtsp://…`, `http://…`), or a directory or glob of
    /// still images (`frames/*.jpg`). Relative paths resolve against the
    /// spec's directory.
    pub source: SourceSpec,
    /// At most this many frames per second; frames read faster are skipped
    /// for devices and streams, and waited for with files and images.
    #[serde(default)]
    pub fps: Option<f64>,
    /// Files only: pace frames at the file's own frame rate (`true`), or
    /// read as fast as downstream takes them (`false`; give the next node's
    /// input `overflow: block`, or the default `drop_oldest` drops frames).
    #[serde(default = "yes")]
    pub realtime: bool,
    /// Files and images: start over at the end instead of ending.
    #[serde(default, rename = "loop")]
    pub repeat: bool,
    /// Devices only: the capture width to ask for (the driver picks the
    /// nearest it supports).
    #[serde(default)]
    pub width: Option<u32>,
    /// Devices only: the capture height to ask for.
    #[serde(default)]
    pub height: Option<u32>,
    /// Milliseconds before reopening a device or stream that dropped; the
    /// wait doubles after each failed try, up to `reconnect_max_ms`.
    #[serde(default = "default_reconnect_ms")]
    pub reconnect_ms: u64,
    /// The longest wait between reopening tries, in milliseconds.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u64,
    /// End after this many frames (for trials and benchmarks); leave out to
    /// read until the source ends.
    #[serde(default)]
    pub max_frames: Option<u64>,
}

/// A device index, or a path, URL or pattern.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SourceSpec {
    /// A capture device index.
    Index(u32),
    /// A device path, stream URL, video file, directory or glob.
    Text(String),
}

impl SourceSpec {
    fn text(&self) -> String {
        match self {
            SourceSpec::Index(i) => i.to_string(),
            SourceSpec::Text(t) => t.clone(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_reconnect_ms() -> u64 {
    500
}

fn default_reconnect_max_ms() -> u64 {
    10_000
}

impl NodeConfig for CameraConfig {
    const TYPE: &'static str = "camera";
    const DESCRIPTION: &'static str =
        "Reads video frames from a device, a stream, a video file or still images (OpenCV)";
    const INPUTS: Inputs = Inputs::None;
    const OUTPUT: OutputKind = OutputKind::Kind(FRAMES);
    const OUTPUT_OVERFLOW: Overflow = Overflow::DropOldest;

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if let SourceSpec::Text(text) = &self.source {
            if text.trim().is_empty() {
                issues.push(ConfigIssue::new("source", "the source is empty").hint(
                    "give a device index (0), a video file, a stream URL or an image directory",
                ));
            }
        }
        if let Some(fps) = self.fps {
            if !(fps > 0.0 && fps.is_finite()) {
                issues.push(ConfigIssue::new(
                    "fps",
                    format!("fps must be a positive number, not {fps}"),
                ));
            }
        }
        if self.reconnect_ms == 0 {
            issues.push(
                ConfigIssue::new("reconnect_ms", "a zero wait would retry in a busy loop")
                    .hint("use 100 or more"),
            );
        }
        if self.reconnect_max_ms < self.reconnect_ms {
            issues.push(ConfigIssue::new(
                "reconnect_max_ms",
                format!(
                    "the longest wait ({} ms) is shorter than the first ({} ms)",
                    self.reconnect_max_ms, self.reconnect_ms
                ),
            ));
        }
        if self.max_frames == Some(0) {
            issues.push(ConfigIssue::new(
                "max_frames",
                "0 frames would read nothing",
            ));
        }
        issues
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let source = Source::parse(&self.source.text(), &ctx.spec_dir)?;
        // Open now, so that a source that cannot be read is the build's error.
        let capture = match &source {
            Source::Images(_) => None,
            other => Some(other.open(self.width, self.height)?),
        };
        Ok(Box::new(Camera {
            config: self.clone(),
            source,
            capture,
        }))
    }
}

struct Camera {
    config: CameraConfig,
    source: Source,
    capture: Option<opencv::videoio::VideoCapture>,
}

impl Node for Camera {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let runtime = tokio::runtime::Handle::current();
            let reader = capture::Reader::new(self.config, self.source, self.capture, ctx, runtime);
            tokio::task::spawn_blocking(move || reader.run())
                .await
                .map_err(|e| format!("the capture thread ended abnormally: {e}"))??;
            Ok(())
        })
    }
}
