//! `cos_put`: stores every message as an object — through an S3-compatible
//! API (IBM Cloud Object Storage, AWS, MinIO) or as files under a directory
//! such as an s3fs-fuse mount of the bucket — and acknowledges a message only
//! once its object is stored.
//!
//! ```yaml
//! store:
//!   type: cos_put
//!   inputs: [faces]
//!   key: "{prefix}{seq}.{ext}"       # test0.png, test1.png… (the original's names)
//!   backend:
//!     s3:
//!       endpoint: https://s3.eu-de.cloud-object-storage.appdomain.cloud
//!       region: eu-de
//!       bucket: faces
//! ```
//!
//! **Exactly-once objects from at-least-once delivery.** A QoS 1 source may
//! deliver a message twice (after a reconnect, a restart, an outage). With a
//! key made only from the message's identity — `{source}/{frame}-{face}.{ext}`,
//! or `{hash}.{ext}` — the second delivery overwrites the same object with
//! the same bytes instead of adding a copy, so the bucket holds each message
//! exactly once. Keys from `{seq}` (when the source numbers per run) or
//! `{time}` do not have that property.
//!
//! Failures: see [`retry::Failure`]. Transient ones are retried with backoff
//! while the message stays unacknowledged; the others leave on the
//! `dead_letter` output port with the reason ([`dead_letter`]) when a node
//! takes it (`inputs: [store.dead_letter]`), else the message is nacked —
//! rejected when it can never be stored, failed (for redelivery) when the
//! store refuses everything.

pub mod content;
pub mod dead_letter;
pub mod fs;
pub mod gallery;
pub mod key;
mod node;
pub mod retry;
pub mod s3;

use std::sync::Arc;

use flowrun_runtime::{
    BuildContext, ConfigIssue, EnvVar, ExternalLink, Inputs, Node, NodeConfig, NodeError,
    OutputKind, OutputPort, PayloadKind,
};
use schemars::JsonSchema;
use serde::Deserialize;

use self::content::{ContentCheck, Format};
use self::fs::{FsConfig, FsStore};
use self::key::KeyTemplate;
use self::node::{CosPut, Store};
use self::retry::RetryConfig;
use self::s3::{S3Config, S3Store};

/// Stores each message's bytes as an object; acknowledges it once stored.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CosPutConfig {
    /// Where objects go: `s3` (an S3-compatible API) or `fs` (a directory,
    /// typically a bucket mounted with s3fs-fuse).
    pub backend: Backend,
    /// The object key template. Fields: `{prefix}`, `{seq}`, `{ext}`,
    /// `{topic}` (levels become folders), `{topic.N}`, `{source}`,
    /// `{frame}`, `{face}`, `{time:%Y/%m/%d/%H%M%S.%3f}` (UTC),
    /// `{hash}` / `{hash:N}` (SHA-256 of the payload), `{meta.NAME}`.
    /// Keys built only from a message's identity (`{source}/{frame}-{face}`,
    /// `{hash}`) make redeliveries overwrite instead of duplicate. Default
    /// `{prefix}{seq}.{ext}`, the original's `test<N>.png`.
    #[serde(default = "default_key")]
    pub key: String,
    /// The value of `{prefix}`. Default `test`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The content type stored with each object. Default: the message's
    /// `content_type` metadata, else sniffed from the payload (PNG, JPEG).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Metadata keys sent as object user metadata (`x-amz-meta-*`, `s3`
    /// backend only). Default: topic, source, seq, frame, face, timestamp_ms.
    #[serde(default = "default_metadata")]
    pub metadata: Vec<String>,
    /// Store only whole files of these types: `image/png`, `image/jpeg`.
    /// The type is read from the bytes, not from what the publisher
    /// claims, and an image must be complete (a PNG's chunks and CRCs up
    /// to `IEND`, a JPEG's segments up to its end marker). Anything else
    /// (other data, an empty or truncated payload) is refused: counted as
    /// `refused_type`, `refused_empty` or `refused_damaged`, then sent to
    /// the `dead_letter` port with the reason (or rejected). Default: any payload.
    #[serde(default)]
    pub accept: Vec<Format>,
    /// Refuse payloads larger than this, in bytes (counted as
    /// `refused_too_large`, then handled as `accept` refusals are).
    /// Default: no limit.
    #[serde(default)]
    pub max_object_bytes: Option<usize>,
    /// How many puts may be in flight at once. Default 16.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How transient failures are retried.
    #[serde(default)]
    pub retry: RetryConfig,
}

/// Where the objects go.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Backend {
    /// Put through an S3-compatible API.
    S3(S3Config),
    /// Write files under a directory.
    Fs(FsConfig),
}

fn default_key() -> String {
    "{prefix}{seq}.{ext}".into()
}
fn default_prefix() -> String {
    "test".into()
}
fn default_metadata() -> Vec<String> {
    use crate::frame::keys;
    [
        keys::TOPIC,
        keys::SOURCE,
        keys::SEQ,
        keys::FRAME,
        keys::FACE,
        keys::TIMESTAMP_MS,
    ]
    .map(String::from)
    .to_vec()
}
fn default_concurrency() -> usize {
    16
}

impl NodeConfig for CosPutConfig {
    const TYPE: &'static str = "cos_put";
    const DESCRIPTION: &'static str =
        "Stores each message as an object (S3 API or a mounted bucket); acks once stored";
    const INPUTS: Inputs = Inputs::Only(&[PayloadKind::Bytes]);
    const OUTPUT: OutputKind = OutputKind::None;
    const PORTS: &'static [OutputPort] = dead_letter::PORTS;

    fn environment(&self) -> Vec<EnvVar> {
        let Backend::S3(s3) = &self.backend else {
            return Vec::new();
        };
        let var = |key: &str, name: &str, what: &str, required: bool| EnvVar {
            field: format!("backend.s3.{key}"),
            name: name.to_owned(),
            what: what.to_owned(),
            required,
        };
        vec![
            var(
                "access_key_id_env",
                &s3.access_key_id_env,
                "the S3 access key id",
                true,
            ),
            var(
                "secret_access_key_env",
                &s3.secret_access_key_env,
                "the S3 secret access key",
                true,
            ),
            var(
                "session_token_env",
                &s3.session_token_env,
                "an S3 session token",
                false,
            ),
        ]
    }

    fn links(&self) -> Vec<ExternalLink> {
        let system = match &self.backend {
            Backend::S3(s3) => match &s3.endpoint {
                Some(endpoint) => format!("s3://{} at {endpoint}", s3.bucket),
                None => format!("s3://{}", s3.bucket),
            },
            Backend::Fs(fs) => format!("folder {}", fs.root),
        };
        vec![ExternalLink {
            system,
            inbound: false,
            label: self.key.clone(),
        }]
    }

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if let Err(error) = KeyTemplate::parse(&self.key) {
            issues.push(
                ConfigIssue::new("key", format!("not a valid key template: {error}"))
                    .hint("fields look like `{seq}`; write `{{` for a literal brace"),
            );
        }
        for (i, name) in self.metadata.iter().enumerate() {
            let header_safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if name.is_empty() || !name.chars().all(header_safe) {
                issues.push(ConfigIssue::new(
                    format!("metadata.{i}"),
                    format!(
                        "`{name}` cannot be an HTTP header name: use letters, digits, `-` and `_`"
                    ),
                ));
            }
        }
        if self.max_object_bytes == Some(0) {
            issues.push(ConfigIssue::new("max_object_bytes", "must be at least 1"));
        }
        if self.concurrency == 0 {
            issues.push(ConfigIssue::new("concurrency", "must be at least 1"));
        }
        if self.retry.initial_ms == 0 || self.retry.max_ms < self.retry.initial_ms {
            issues.push(ConfigIssue::new(
                "retry.max_ms",
                "retry waits must be positive, with `max_ms` at least `initial_ms`",
            ));
        }
        match &self.backend {
            Backend::S3(s3) => {
                if s3.bucket.is_empty() {
                    issues.push(ConfigIssue::new("backend.s3.bucket", "must not be empty"));
                }
                if let Some(endpoint) = &s3.endpoint {
                    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                        issues.push(
                            ConfigIssue::new(
                                "backend.s3.endpoint",
                                format!("`{endpoint}` is not an http:// or https:// URL"),
                            )
                            .hint("for IBM COS: https://s3.<region>.cloud-object-storage.appdomain.cloud"),
                        );
                    }
                }
            }
            Backend::Fs(fs) => {
                if fs.root.is_empty() {
                    issues.push(ConfigIssue::new("backend.fs.root", "must not be empty"));
                }
            }
        }
        issues
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let template = KeyTemplate::parse(&self.key).map_err(|e| format!("key: {e}"))?;
        let store = match &self.backend {
            Backend::S3(s3) => Store::S3 {
                store: Arc::new(
                    S3Store::new(s3, |name| std::env::var(name).ok())
                        .map_err(|e| format!("{}: {e}", ctx.id))?,
                ),
                create_bucket: s3.create_bucket.then(|| s3.region.clone()),
            },
            Backend::Fs(fs) => Store::Fs {
                store: Arc::new(FsStore::new(ctx.resolve(&fs.root), fs.fsync, fs.atomic)),
                metadata_file: fs.metadata_file,
            },
        };
        let content = ContentCheck {
            accept: self.accept.clone(),
            max_bytes: self.max_object_bytes,
        };
        Ok(Box::new(CosPut::new(
            self.clone(),
            template,
            content,
            store,
        )))
    }
}

#[cfg(test)]
mod tests;
