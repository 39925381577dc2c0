//! `haar_detect`: finds faces (or eyes, plates…) in frames with an OpenCV
//! Haar cascade, on a pool of worker threads, and sends the frames on in
//! their original order with their boxes.

mod cascade;
mod detector;
mod pool;

pub use cascade::{resolve as resolve_cascade, CascadeError};
pub use detector::{Detector, Params};

use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Node, NodeConfig, NodeContext, NodeError, OutputKind,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::frame::FRAMES;

/// Runs a Haar cascade on every frame and attaches the boxes found.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HaarDetectConfig {
    /// A cascade name from the opencv-data package (`frontalface_default`,
    /// `frontalface_alt2`, `eye`, `profileface`, …) or a path to a cascade
    /// `.xml` file (relative to the spec's directory).
    #[serde(default = "default_cascade")]
    pub cascade: String,
    /// How much the image shrinks between detection passes; more than 1.
    /// Smaller finds more, slower.
    #[serde(default = "default_scale_factor")]
    pub scale_factor: f64,
    /// How many overlapping hits a box needs to be kept; more rejects more.
    /// Default: 5 (the original's) at full resolution; with `detect_scale`
    /// below 1, 5 × `detect_scale` rounded up (3 at 0.5), since a downscaled
    /// face is covered by fewer window positions and so collects fewer hits.
    #[serde(default)]
    pub min_neighbors: Option<u32>,
    /// The smallest box to look for, `[width, height]` in frame pixels.
    #[serde(default)]
    pub min_size: Option<[u32; 2]>,
    /// The largest box to look for, `[width, height]` in frame pixels.
    #[serde(default)]
    pub max_size: Option<[u32; 2]>,
    /// Equalize the gray image's histogram before detecting (helps in poor light).
    #[serde(default)]
    pub equalize_hist: bool,
    /// Detect on the gray image scaled by this factor (0 < scale ≤ 1), then
    /// map the boxes back to full resolution: 0.5 is about three times faster.
    #[serde(default = "default_detect_scale")]
    pub detect_scale: f64,
    /// Threads detecting in parallel, each with its own classifier; frames
    /// still leave in their original order. Default: the number of cores.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Also send on frames in which nothing was found.
    #[serde(default)]
    pub emit_empty: bool,
    /// Detect on every Nth frame only (1: every frame); the others are
    /// acknowledged and not sent on. A `face_track` after it bridges the
    /// gap (its `max_gap` at least N − 1), so the detector's CPU drops
    /// about N-fold where faces move slowly.
    #[serde(default = "default_detect_every")]
    pub detect_every: u32,
}

fn default_detect_every() -> u32 {
    1
}

fn default_cascade() -> String {
    "frontalface_default".into()
}

fn default_scale_factor() -> f64 {
    1.3
}

/// The original's `min_neighbors`, at full resolution.
const FULL_RESOLUTION_MIN_NEIGHBORS: f64 = 5.0;

fn default_detect_scale() -> f64 {
    1.0
}

/// Workers beyond this only cost memory.
const MAX_WORKERS: usize = 64;

impl HaarDetectConfig {
    pub fn params(&self) -> Params {
        Params {
            scale_factor: self.scale_factor,
            min_neighbors: self.min_neighbors(),
            min_size: self.min_size,
            max_size: self.max_size,
            equalize_hist: self.equalize_hist,
            detect_scale: self.detect_scale,
        }
    }

    /// On Megamind.avi at `detect_scale` 0.5, keeping the full-resolution 5
    /// finds 77.6% of the faces found at full resolution (IoU ≥ 0.5); the
    /// scaled-down 3 finds 91.5%, at the same cost.
    fn min_neighbors(&self) -> i32 {
        match self.min_neighbors {
            Some(n) => i32::try_from(n).unwrap_or(i32::MAX),
            None => (FULL_RESOLUTION_MIN_NEIGHBORS * self.detect_scale.clamp(0.0, 1.0))
                .ceil()
                .max(1.0) as i32,
        }
    }

    fn worker_count(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
        })
    }
}

impl NodeConfig for HaarDetectConfig {
    const TYPE: &'static str = "haar_detect";
    const DESCRIPTION: &'static str =
        "Finds faces (or other objects) in frames with an OpenCV Haar cascade";
    const INPUTS: Inputs = Inputs::Only(&[FRAMES]);
    const OUTPUT: OutputKind = OutputKind::Kind(FRAMES);

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if !cascade::is_path(&self.cascade) {
            if let Err(error) = cascade::resolve(&self.cascade, std::path::Path::new("")) {
                issues.push(
                    ConfigIssue::new("cascade", error.to_string())
                        .hint("use one of the names listed, or a path to an .xml cascade"),
                );
            }
        }
        if !(self.scale_factor > 1.0 && self.scale_factor.is_finite()) {
            issues.push(
                ConfigIssue::new(
                    "scale_factor",
                    format!(
                        "scale_factor must be more than 1 (each pass shrinks the image by it), not {}",
                        self.scale_factor
                    ),
                )
                .hint("1.1 finds more, 1.3 (the default) is faster"),
            );
        }
        if !(self.detect_scale > 0.0 && self.detect_scale <= 1.0) {
            issues.push(ConfigIssue::new(
                "detect_scale",
                format!(
                    "detect_scale must be more than 0 and at most 1, not {}",
                    self.detect_scale
                ),
            ));
        }
        if let (Some([min_w, min_h]), Some([max_w, max_h])) = (self.min_size, self.max_size) {
            if min_w > max_w || min_h > max_h {
                issues.push(ConfigIssue::new(
                    "max_size",
                    format!(
                        "max_size [{max_w}, {max_h}] is smaller than min_size [{min_w}, {min_h}]"
                    ),
                ));
            }
        }
        if self.detect_every == 0 {
            issues.push(ConfigIssue::new(
                "detect_every",
                "detect_every must be at least 1 (every frame)",
            ));
        }
        if let Some(workers) = self.workers {
            if workers == 0 || workers > MAX_WORKERS {
                issues.push(ConfigIssue::new(
                    "workers",
                    format!("workers must be between 1 and {MAX_WORKERS}, not {workers}"),
                ));
            }
        }
        issues
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let path = cascade::resolve(&self.cascade, &ctx.spec_dir)?;
        // Every worker's classifier is loaded here, so that a bad cascade is
        // the build's error rather than a worker's.
        let detectors = (0..self.worker_count())
            .map(|_| Detector::load(&path, self.params()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(HaarDetect {
            detectors,
            emit_empty: self.emit_empty,
            detect_every: u64::from(self.detect_every.max(1)),
        }))
    }
}

struct HaarDetect {
    detectors: Vec<Detector>,
    emit_empty: bool,
    detect_every: u64,
}

impl Node for HaarDetect {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(pool::run(
            self.detectors,
            pool::Options {
                emit_empty: self.emit_empty,
                detect_every: self.detect_every,
            },
            ctx,
        ))
    }
}
