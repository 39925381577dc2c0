//! "Where are my faces?": a small page listing the most recent objects of a
//! `cos_put` node's bucket, each shown through a presigned GET URL — so a
//! private bucket stays private (the page never proxies the bytes, and the
//! links expire), and the browser fetches from the store itself. Served by
//! `flowrun gallery SPEC`, on loopback unless told otherwise, like the
//! preview page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::s3::{MissingCredential, S3Store};
use super::{Backend, CosPutConfig};

const PAGE: &str = include_str!("gallery.html");

/// Why a gallery cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("not a cos_put config: {0}")]
    Config(#[from] serde_json::Error),
    #[error("the gallery needs the `s3` backend (a folder can be browsed as it is)")]
    NotS3,
    #[error(transparent)]
    Store(#[from] MissingCredential),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// How the gallery lists.
#[derive(Debug, Clone)]
pub struct GallerySettings {
    /// The most recent objects shown, at most.
    pub count: usize,
    /// How long a presigned link stays valid.
    pub expires: Duration,
}

/// One object on the page.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Shown {
    pub key: String,
    pub size: i64,
    /// Last modified, in ms since the epoch.
    pub modified_ms: i64,
    /// A presigned GET URL.
    pub url: String,
}

struct Gallery {
    store: S3Store,
    bucket: String,
    settings: GallerySettings,
}

#[derive(Deserialize)]
struct Filter {
    #[serde(default)]
    prefix: String,
}

/// Serves the gallery of the `cos_put` node whose (interpolated) config is
/// `config` on `listen`; credentials are read from the environment as the
/// node reads them. Returns the bound address and the server task.
pub async fn serve(
    config: &serde_json::Value,
    listen: SocketAddr,
    settings: GallerySettings,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), GalleryError> {
    let config: CosPutConfig = serde_json::from_value(config.clone())?;
    let Backend::S3(s3) = &config.backend else {
        return Err(GalleryError::NotS3);
    };
    let store = S3Store::new(s3, |name| std::env::var(name).ok())?;
    let gallery = Arc::new(Gallery {
        store,
        bucket: s3.bucket.clone(),
        settings,
    });
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/recent.json", get(recent))
        .with_state(gallery);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| GalleryError::Listen(listen, e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| GalleryError::Listen(listen, e))?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the gallery stopped");
        }
    });
    Ok((bound, task))
}

async fn recent(
    State(gallery): State<Arc<Gallery>>,
    Query(filter): Query<Filter>,
) -> impl IntoResponse {
    let settings = &gallery.settings;
    match gallery
        .store
        .recent(&filter.prefix, settings.count, settings.expires)
        .await
    {
        Ok(shown) => Json(serde_json::json!({
            "bucket": gallery.bucket,
            "prefix": filter.prefix,
            "objects": shown,
        }))
        .into_response(),
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}
