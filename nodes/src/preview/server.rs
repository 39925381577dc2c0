//! The preview's web page: the last annotated frame, the last faces and the
//! counters, from the state the node keeps.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;

const PAGE: &str = include_str!("page.html");

/// What the page shows. Written by the node, read by the server.
#[derive(Default)]
pub struct Shown {
    pub node: String,
    /// The last annotated frame, JPEG, and its frame count.
    pub frame: Option<(u64, Bytes)>,
    /// How many boxes are drawn on that frame.
    pub frame_boxes: usize,
    /// The track ids written on that frame's boxes (with `face_track`).
    pub frame_tracks: Vec<u64>,
    /// The last face images: id, content type, bytes; newest last.
    pub faces: VecDeque<(u64, String, Bytes)>,
    pub frames: u64,
    pub with_faces: u64,
    pub boxes: u64,
    pub crops: u64,
}

pub type Shared = Arc<Mutex<Shown>>;

pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/state.json", get(state))
        .route("/frame.jpg", get(frame))
        .route("/face/{id}", get(face))
        .with_state(shared)
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Shown> {
    // The state is only ever replaced whole: a panic cannot leave it torn.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn image(content_type: String, bytes: Bytes) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response()
}

async fn state(State(shared): State<Shared>) -> Response {
    let body = {
        let shown = lock(&shared);
        serde_json::json!({
            "node": shown.node,
            "frame": shown.frame.as_ref().map(|(n, _)| *n),
            "frame_boxes": shown.frame_boxes,
            "frame_tracks": shown.frame_tracks,
            "faces": shown.faces.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
            "frames": shown.frames,
            "with_faces": shown.with_faces,
            "boxes": shown.boxes,
            "crops": shown.crops,
        })
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn frame(State(shared): State<Shared>) -> Response {
    match lock(&shared).frame.clone() {
        Some((_, jpeg)) => image("image/jpeg".into(), jpeg),
        None => (StatusCode::NOT_FOUND, "no frame yet").into_response(),
    }
}

async fn face(State(shared): State<Shared>, Path(id): Path<u64>) -> Response {
    let found = lock(&shared)
        .faces
        .iter()
        .find(|(n, _, _)| *n == id)
        .map(|(_, content_type, bytes)| (content_type.clone(), bytes.clone()));
    match found {
        Some((content_type, bytes)) => image(content_type, bytes),
        None => (StatusCode::NOT_FOUND, "no such face (any more)").into_response(),
    }
}
