//! `preview`: a small web page showing what the pipeline sees — the last
//! frame with its boxes drawn, the last faces cut out, and the counters —
//! as the original showed the annotated video in an X11 window.
//!
//! It takes frames (from `camera` or `haar_detect`) and encoded images (from
//! `gray_crop`) on any number of inputs, and serves them on a loopback
//! address by default. The page polls a small JSON state and fetches a new
//! JPEG only when there is one.

mod labels;
mod server;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Message, Node, NodeConfig, NodeContext, NodeError,
    OutputKind, Payload,
};
use futures::future::BoxFuture;
use opencv::core::{Mat, Scalar, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::frame::{keys, Frame, PixelFormat};
use crate::vision::{check_jpeg_quality, frame_mat, jpeg_params, to_cv_rect, VisionError};
use labels::Labels;
use server::{Shared, Shown};

/// Serves a live view of frames with their boxes, and the last faces.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewConfig {
    /// The address to serve the page on. Loopback by default: the page
    /// shows camera images, so opening it wider is a deliberate choice.
    #[serde(default = "default_address")]
    pub address: String,
    /// How many of the last face images to show.
    #[serde(default = "default_faces")]
    pub faces: usize,
    /// At most this many frames per second are drawn and encoded for the page.
    #[serde(default = "default_max_fps")]
    pub max_fps: f64,
    /// JPEG quality of the live frame, 1 to 100.
    #[serde(default = "default_quality")]
    pub quality: u8,
}

fn default_address() -> String {
    "127.0.0.1:8090".into()
}

fn default_faces() -> usize {
    12
}

fn default_max_fps() -> f64 {
    10.0
}

fn default_quality() -> u8 {
    80
}

/// How long open page connections may hold up the preview's end.
const SERVER_GRACE: Duration = Duration::from_secs(2);

impl NodeConfig for PreviewConfig {
    const TYPE: &'static str = "preview";
    const DESCRIPTION: &'static str =
        "Serves a web page with the live frame, its boxes, the last faces and the counters";
    const INPUTS: Inputs = Inputs::Any;
    const OUTPUT: OutputKind = OutputKind::None;

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if let Err(error) = self.address.parse::<SocketAddr>() {
            issues.push(
                ConfigIssue::new("address", format!("not an address and port: {error}"))
                    .hint("for example 127.0.0.1:8090"),
            );
        }
        if self.faces == 0 || self.faces > 256 {
            issues.push(ConfigIssue::new(
                "faces",
                format!("faces must be between 1 and 256, not {}", self.faces),
            ));
        }
        if !(self.max_fps > 0.0 && self.max_fps <= 120.0) {
            issues.push(ConfigIssue::new(
                "max_fps",
                format!(
                    "max_fps must be more than 0 and at most 120, not {}",
                    self.max_fps
                ),
            ));
        }
        issues.extend(check_jpeg_quality(self.quality));
        issues
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let address = self
            .address
            .parse::<SocketAddr>()
            .map_err(|e| format!("preview address {}: {e}", self.address))?;
        Ok(Box::new(Preview {
            address,
            config: self.clone(),
        }))
    }
}

struct Preview {
    address: SocketAddr,
    config: PreviewConfig,
}

impl Node for Preview {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(self.address)
                .await
                .map_err(|e| format!("preview cannot listen on {}: {e}", self.address))?;
            let url = format!("http://{}/", listener.local_addr()?);
            tracing::info!(node = %ctx.id, %url, "preview page");
            ctx.metrics.set_state(format!("serving {url}"));
            let shared: Shared = Arc::new(Mutex::new(Shown {
                node: ctx.id.clone(),
                ..Shown::default()
            }));
            let server_stop = CancellationToken::new();
            let server = tokio::spawn(
                axum::serve(listener, server::router(shared.clone()))
                    .with_graceful_shutdown(server_stop.clone().cancelled_owned())
                    .into_future(),
            );
            let config = self.config;
            let shown = shared.clone();
            let fed = tokio::task::spawn_blocking(move || feed(ctx, &config, &shown)).await;
            server_stop.cancel();
            let mut server = server;
            if tokio::time::timeout(SERVER_GRACE, &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
            fed.map_err(|e| format!("the preview thread ended abnormally: {e}"))?;
            Ok(())
        })
    }
}

/// Takes messages until the inputs end, updating what the page shows.
fn feed(mut ctx: NodeContext, config: &PreviewConfig, shared: &Shared) {
    let period = Duration::from_secs_f64(1.0 / config.max_fps);
    let mut last_drawn: Option<Instant> = None;
    let mut next_face = 0u64;
    let mut labels = Labels::default();
    while let Some(message) = ctx.input.blocking_recv() {
        match (
            &message.payload,
            message.payload.get::<Frame>(),
            tracked(&message),
        ) {
            // A face `face_track` follows: it names a box, it is not a frame.
            (_, Some(frame), Some(track)) => {
                if let Some(rect) = frame.detections.first() {
                    labels.note(track, *rect);
                }
            }
            (_, Some(frame), None) => {
                let due = last_drawn.is_none_or(|t| t.elapsed() >= period);
                // Boxes are labelled only on a frame that is drawn: below
                // the camera's rate most frames are counted, not shown.
                let drawn = if due {
                    last_drawn = Some(Instant::now());
                    let tracks = labels.label(&frame.detections);
                    match annotate(frame, &tracks, config.quality) {
                        Ok(jpeg) => Some((jpeg, tracks)),
                        Err(error) => {
                            ctx.metrics.errors.inc();
                            tracing::warn!(node = %ctx.id, %error, "cannot draw a frame");
                            None
                        }
                    }
                } else {
                    None
                };
                let mut shown = lock(shared);
                shown.frames += 1;
                shown.boxes += frame.detections.len() as u64;
                if !frame.detections.is_empty() {
                    shown.with_faces += 1;
                }
                if let Some((jpeg, tracks)) = drawn {
                    shown.frame = Some((shown.frames, jpeg));
                    shown.frame_boxes = frame.detections.len();
                    shown.frame_tracks = tracks.into_iter().flatten().collect();
                }
            }
            (Payload::Bytes(bytes), None, _) => {
                let content_type = content_type(&message, bytes);
                if content_type.starts_with("image/") {
                    let mut shown = lock(shared);
                    shown.crops += 1;
                    shown
                        .faces
                        .push_back((next_face, content_type, bytes.clone()));
                    next_face += 1;
                    while shown.faces.len() > config.faces {
                        shown.faces.pop_front();
                    }
                }
            }
            // A kind of another node crate: nothing this page can show.
            (Payload::Typed(_), None, _) => {}
        }
        message.ack();
    }
}

/// The track id `face_track` gave this face, if it came from one.
fn tracked(message: &Message) -> Option<u64> {
    let track = crate::face_track::meta_int(message, crate::face_track::TRACK)?;
    u64::try_from(track).ok()
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Shown> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn content_type(message: &Message, bytes: &Bytes) -> String {
    message
        .meta_text(keys::CONTENT_TYPE)
        .unwrap_or_else(|| crate::util::sniff_content_type(bytes).to_owned())
}

/// Box outlines: green, as the original drew them.
fn green() -> Scalar {
    Scalar::new(0.0, 255.0, 0.0, 0.0)
}

/// `frame` as a JPEG, with its boxes drawn and each box's track id, where
/// `tracks` (one per box) has one, written above it.
pub fn annotate(frame: &Frame, tracks: &[Option<u64>], quality: u8) -> Result<Bytes, VisionError> {
    let view = frame_mat(frame)?;
    let mut canvas = Mat::default();
    match frame.format {
        PixelFormat::Bgr8 => view.copy_to(&mut canvas)?,
        PixelFormat::Gray8 => imgproc::cvt_color(&view, &mut canvas, imgproc::COLOR_GRAY2BGR, 0)?,
    }
    let thickness = (frame.width as i32 / 320).max(2);
    for (index, face) in frame.detections.iter().enumerate() {
        imgproc::rectangle(
            &mut canvas,
            to_cv_rect(*face),
            green(),
            thickness,
            imgproc::LINE_8,
            0,
        )?;
        if let Some(track) = tracks.get(index).copied().flatten() {
            let scale = f64::from(thickness) / 2.0;
            let above = (face.y - 4 * thickness).max(12 * thickness);
            imgproc::put_text(
                &mut canvas,
                &format!("#{track}"),
                opencv::core::Point::new(face.x, above),
                imgproc::FONT_HERSHEY_SIMPLEX,
                scale,
                green(),
                thickness,
                imgproc::LINE_AA,
                false,
            )?;
        }
    }
    let mut jpeg = Vector::<u8>::new();
    imgcodecs::imencode(".jpg", &canvas, &mut jpeg, &jpeg_params(quality))?;
    Ok(Bytes::from(jpeg.to_vec()))
}
