//! `face_track`: follows each detected face across frames and forwards
//! faces by policy, so that a person standing in front of the camera
//! becomes one crop (or a few), not one per frame.
//!
//! It sits between `haar_detect` and `gray_crop`. Each face it forwards is
//! a frame message of its own with that one box and the track metadata;
//! `gray_crop` keeps the `face` index it carries, so object keys stay what
//! they were. Faces not forwarded are acknowledged at once (filtered, not
//! lost); a track holds at most its current best face. On drain, shutdown
//! and reload the node's input ends, and open tracks are closed and flushed
//! before it returns.

mod score;
pub mod tracker;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Message, Node, NodeConfig, NodeContext, NodeError,
    OutputKind, Payload,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::frame::{keys, Frame, FRAMES};
use score::Scorer;
pub use tracker::{Emit, Settings};
use tracker::{Face, Step, Tracker};

/// The metadata key of a forwarded face's track id (`{meta.track}` in keys).
pub const TRACK: &str = "track";

/// Track ids, shared by every `face_track` instance in the process: an id
/// is unique in the run, across reloads and restarts of the node.
static TRACK_IDS: AtomicU64 = AtomicU64::new(0);

/// Assigns each detected face to a track and forwards faces by policy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaceTrackConfig {
    /// Which faces to forward: `all` (every face of a confirmed track,
    /// today's behaviour plus track metadata), `first` (one as soon as the
    /// track is confirmed), `best` (one when the track ends, the highest
    /// score: sharpness × size), `first_and_best`.
    #[serde(default)]
    pub emit: Emit,
    /// Faces a track needs before anything of it is forwarded; shorter
    /// tracks (mostly false detections) are dropped. Default: 1 under
    /// `emit: all` (every face, as without tracking), 3 otherwise.
    #[serde(default)]
    pub min_frames: Option<u32>,
    /// Frames in a row a track may go undetected and still continue; past
    /// it the track ends. At least `detect_every` − 1 of the detector.
    #[serde(default = "default_max_gap")]
    pub max_gap: u64,
    /// The least box overlap (intersection over union, 0 to 1) for a face
    /// to continue a track.
    #[serde(default = "default_min_iou")]
    pub min_iou: f64,
    /// Open tracks at most (each holds one frame); past it the least
    /// recently seen track is closed and flushed.
    #[serde(default = "default_max_tracks")]
    pub max_tracks: usize,
    /// Under `first`, `best` and `first_and_best`: send a track that lasts
    /// again every this many seconds (its best face since the last send).
    #[serde(default)]
    pub resend_every: Option<f64>,
    /// When no frame at all arrives for this many milliseconds (a detector
    /// that sends only frames with faces, in an empty room), open tracks end.
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
}

fn default_max_gap() -> u64 {
    12
}
/// The least overlap for a face to continue a track, unless a spec says.
pub(crate) const DEFAULT_MIN_IOU: f64 = 0.3;

fn default_min_iou() -> f64 {
    DEFAULT_MIN_IOU
}
fn default_max_tracks() -> usize {
    32
}
fn default_idle_ms() -> u64 {
    2000
}

impl FaceTrackConfig {
    pub fn settings(&self) -> Settings {
        let min_frames = self.min_frames.unwrap_or(match self.emit {
            Emit::All => 1,
            _ => 3,
        });
        Settings {
            emit: self.emit,
            min_frames: min_frames.max(1),
            max_gap: self.max_gap,
            min_iou: self.min_iou,
            max_tracks: self.max_tracks,
            resend_every_ms: self.resend_every.map(|s| (s * 1000.0).round() as i64),
        }
    }
}

impl NodeConfig for FaceTrackConfig {
    const TYPE: &'static str = "face_track";
    const DESCRIPTION: &'static str =
        "Follows detected faces across frames and forwards each track's faces by policy (all, first, best)";
    const INPUTS: Inputs = Inputs::Only(&[FRAMES]);
    const OUTPUT: OutputKind = OutputKind::Kind(FRAMES);

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if !(self.min_iou > 0.0 && self.min_iou <= 1.0) {
            issues.push(ConfigIssue::new(
                "min_iou",
                format!(
                    "min_iou must be more than 0 and at most 1, not {}",
                    self.min_iou
                ),
            ));
        }
        if self.max_tracks == 0 {
            issues.push(ConfigIssue::new(
                "max_tracks",
                "max_tracks must be at least 1",
            ));
        }
        if self.min_frames == Some(0) {
            issues.push(ConfigIssue::new(
                "min_frames",
                "min_frames must be at least 1",
            ));
        }
        if let Some(every) = self.resend_every {
            if !(every > 0.0 && every.is_finite()) {
                issues.push(ConfigIssue::new(
                    "resend_every",
                    format!("resend_every must be a positive number of seconds, not {every}"),
                ));
            }
        }
        if self.idle_ms == 0 {
            issues.push(ConfigIssue::new("idle_ms", "idle_ms must be at least 1"));
        }
        issues
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(FaceTrack {
            settings: self.settings(),
            idle: Duration::from_millis(self.idle_ms),
        }))
    }
}

struct FaceTrack {
    settings: Settings,
    idle: Duration,
}

impl Node for FaceTrack {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let mut tracker = Tracker::new(self.settings, &TRACK_IDS);
            let mut scorer = Some(Scorer::default());
            let mut received = 0u64;
            loop {
                let idle = tokio::time::sleep(self.idle);
                tokio::select! {
                    message = ctx.input.recv() => {
                        let Some(message) = message else { break };
                        received += 1;
                        let faces = match split(message, &mut scorer, received).await {
                            Ok(faces) => faces,
                            Err(error) => {
                                ctx.metrics.errors.inc();
                                tracing::warn!(node = %ctx.id, %error, "tracking failed");
                                continue;
                            }
                        };
                        let step = tracker.observe(faces.frame, faces.ms, faces.faces);
                        deliver(step, &ctx).await;
                    }
                    _ = idle, if tracker.open_tracks() > 0 => {
                        tracing::debug!(node = %ctx.id, "no frame for a while: open tracks end");
                        deliver(tracker.close_all(), &ctx).await;
                    }
                }
                ctx.metrics.set_state(state("open", &tracker));
            }
            // Input ended: the sources are done, or this instance is being
            // stopped (shutdown, reload). What the open tracks owe goes now.
            let open = tracker.open_tracks();
            deliver(tracker.close_all(), &ctx).await;
            tracing::debug!(node = %ctx.id, open, "flushed the open tracks");
            ctx.metrics.set_state(state("done", &tracker));
            Ok(())
        })
    }
}

/// The status word: `open=2 (1 confirmed) faces=120 tracks=4 confirmed=3`
/// (`done` instead of the open tracks once the input ended).
fn state(word: &str, tracker: &Tracker<Message>) -> String {
    let c = tracker.counts();
    let head = match word {
        "open" => format!(
            "open={} ({} confirmed)",
            tracker.open_tracks(),
            tracker.open_confirmed()
        ),
        other => other.to_owned(),
    };
    format!(
        "{head} faces={} tracks={} confirmed={}",
        c.faces, c.tracks, c.confirmed
    )
}

/// A frame's faces, ready for the tracker.
struct Faces {
    frame: u64,
    ms: i64,
    faces: Vec<Face<Message>>,
}

/// Why a message gave no faces to track (it is rejected).
#[derive(Debug, thiserror::Error)]
enum SplitError {
    #[error("a message of bytes instead of a frame")]
    NotAFrame,
    #[error(transparent)]
    Score(#[from] crate::vision::VisionError),
    #[error("the scoring thread ended abnormally: {0}")]
    ScoringThread(#[from] tokio::task::JoinError),
}

/// One message per box of `message`'s frame, each with its score, its
/// `face` index and `message`'s acknowledgement; `message` itself is
/// settled. A bad payload is rejected and its error returned.
async fn split(
    message: Message,
    scorer: &mut Option<Scorer>,
    received: u64,
) -> Result<Faces, SplitError> {
    let Some(frame) = message.payload.get::<Frame>() else {
        message.reject("face_track takes decoded frames, not bytes");
        return Err(SplitError::NotAFrame);
    };
    let frame = frame.clone();
    let for_scoring = frame.clone();
    let mut owned = scorer.take().unwrap_or_default();
    // Scoring runs OpenCV: on a blocking thread, never on the async workers.
    let scored = tokio::task::spawn_blocking(move || {
        let scores: Result<Vec<f64>, _> = for_scoring
            .detections
            .iter()
            .map(|r| owned.score(&for_scoring, *r))
            .collect();
        (scores, owned)
    })
    .await;
    let scores = match scored {
        Ok((scores, owned)) => {
            *scorer = Some(owned);
            scores.map_err(SplitError::from)
        }
        Err(e) => Err(SplitError::from(e)),
    };
    let scores = match scores {
        Ok(scores) => scores,
        Err(error) => {
            message.reject(error.to_string());
            return Err(error);
        }
    };
    let frame_no = meta_int(&message, keys::FRAME)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(received);
    let ms = meta_int(&message, keys::TIMESTAMP_MS).unwrap_or_else(crate::util::now_ms);
    let faces = frame
        .detections
        .iter()
        .zip(scores)
        .enumerate()
        .map(|(index, (rect, score))| {
            let mut one = frame.clone();
            one.detections = vec![*rect];
            let mut meta = message.meta.clone();
            meta.insert(keys::FACE.into(), (index as u64).into());
            Face {
                rect: *rect,
                score,
                item: message.derive(Payload::typed(one), meta),
            }
        })
        .collect();
    // Every face holds the frame's acknowledgement now.
    message.ack();
    Ok(Faces {
        frame: frame_no,
        ms,
        faces,
    })
}

pub(crate) fn meta_int(message: &Message, key: &str) -> Option<i64> {
    match message.meta.get(key)? {
        flowrun_runtime::MetaValue::Int(n) => Some(*n),
        other => other.to_string().parse().ok(),
    }
}

/// Forwards what the tracker emitted, with its track metadata, and
/// acknowledges what it filtered out: a face left out on purpose is
/// delivered, not lost.
async fn deliver(step: Step<Message>, ctx: &NodeContext) {
    for item in step.filtered {
        item.ack();
    }
    for emission in step.emitted {
        let mut message = emission.item;
        let meta = &mut message.meta;
        meta.insert(TRACK.into(), emission.track.into());
        meta.insert("track_frames".into(), u64::from(emission.frames).into());
        meta.insert("track_first_ms".into(), emission.first_ms.into());
        meta.insert("track_last_ms".into(), emission.last_ms.into());
        meta.insert("track_emit".into(), emission.reason.as_str().into());
        meta.insert("score".into(), emission.score.into());
        ctx.output.send(message).await;
    }
}
