//! What flows along the edges: a payload, metadata and an acknowledgement.
//!
//! Payloads are cheap to clone (bytes and typed values are
//! reference-counted), so a fan-out or a hop between nodes never copies the
//! data; see [`crate::payload`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::ack::{Ack, AckStatus};
pub use crate::payload::{Payload, PayloadKind, PayloadValue, TypedPayload};

/// A metadata value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MetaValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for MetaValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetaValue::Text(s) => f.write_str(s),
            MetaValue::Int(n) => write!(f, "{n}"),
            MetaValue::Float(x) => write!(f, "{x}"),
            MetaValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for MetaValue {
    fn from(s: &str) -> Self {
        MetaValue::Text(s.to_owned())
    }
}
impl From<String> for MetaValue {
    fn from(s: String) -> Self {
        MetaValue::Text(s)
    }
}
impl From<i64> for MetaValue {
    fn from(n: i64) -> Self {
        MetaValue::Int(n)
    }
}
impl From<u64> for MetaValue {
    fn from(n: u64) -> Self {
        MetaValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
impl From<f64> for MetaValue {
    fn from(x: f64) -> Self {
        MetaValue::Float(x)
    }
}
impl From<bool> for MetaValue {
    fn from(b: bool) -> Self {
        MetaValue::Bool(b)
    }
}

/// Metadata keys that node types of any domain read or write. A node crate
/// adds its own (where in a video an image comes from, say) beside its
/// payload kinds; these are the ones every node can rely on.
pub mod keys {
    /// The MQTT topic a message came from or goes to.
    pub const TOPIC: &str = "topic";
    /// The id of the node (or the camera / device name) that produced it.
    pub const SOURCE: &str = "source";
    /// A per-source sequence number.
    pub const SEQ: &str = "seq";
    /// MIME type of an encoded payload (`image/png`, `image/jpeg`, …).
    pub const CONTENT_TYPE: &str = "content_type";
    /// Capture or creation time, milliseconds since the Unix epoch.
    pub const TIMESTAMP_MS: &str = "timestamp_ms";
}

/// Key → value facts about a message: topic, sequence, source, timestamps,
/// box, content type… Ordered so that printed metadata is stable.
pub type Metadata = BTreeMap<String, MetaValue>;

/// A message on an edge. Each clone carries its own acknowledgement handle:
/// settle every clone (or let it drop, which counts as a failure).
#[derive(Debug, Clone)]
pub struct Message {
    pub payload: Payload,
    pub meta: Metadata,
    ack: Ack,
}

impl Message {
    /// A message whose source needs no acknowledgement.
    pub fn new(payload: Payload, meta: Metadata) -> Self {
        Message {
            payload,
            meta,
            ack: Ack::untracked(),
        }
    }

    /// A message carrying `ack`, from [`Ack::tracked`] or [`crate::OrderedAcks::track`].
    pub fn with_ack(payload: Payload, meta: Metadata, ack: Ack) -> Self {
        Message { payload, meta, ack }
    }

    /// A new message made from this one (a crop cut from an image): its source
    /// is acknowledged only when this message and everything derived from it
    /// are.
    pub fn derive(&self, payload: Payload, meta: Metadata) -> Message {
        Message {
            payload,
            meta,
            ack: self.ack.clone(),
        }
    }

    /// The message reached its destination (or was deliberately filtered out).
    pub fn ack(self) {
        self.ack.settle(AckStatus::Delivered, None);
    }

    /// The message can never be handled (bad payload): do not redeliver it.
    pub fn reject(self, reason: impl Into<String>) {
        self.ack.settle(AckStatus::Rejected, Some(reason.into()));
    }

    /// Handling failed in a way that may pass: the source should redeliver it.
    pub fn fail(self, reason: impl Into<String>) {
        self.ack.settle(AckStatus::Failed, Some(reason.into()));
    }

    /// The metadata value under `key`, as text.
    pub fn meta_text(&self, key: &str) -> Option<String> {
        self.meta.get(key).map(ToString::to_string)
    }

    pub(crate) fn ack_mut(&mut self) -> &mut Ack {
        &mut self.ack
    }
}
