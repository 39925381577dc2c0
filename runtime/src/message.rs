//! What flows along the edges: a payload, metadata and an acknowledgement.
//!
//! Payloads are cheap to clone (`Bytes` and frames are reference-counted), so
//! a fan-out or a hop between nodes never copies the data.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::Serialize;

use crate::ack::{Ack, AckStatus};

/// The kind of payload a port carries; validation matches outputs to inputs by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum PayloadKind {
    /// Encoded bytes: an image file, an MQTT payload, an object.
    Bytes,
    /// A decoded image with its detections, passed between vision nodes
    /// without re-encoding.
    Frame,
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadKind::Bytes => "bytes",
            PayloadKind::Frame => "frames",
        })
    }
}

/// Pixel layout of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 8-bit blue, green, red: OpenCV's native colour layout.
    Bgr8,
    /// 8-bit grayscale.
    Gray8,
}

impl PixelFormat {
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Bgr8 => 3,
            PixelFormat::Gray8 => 1,
        }
    }
}

/// A rectangle in pixel coordinates: a detected face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// A decoded image, rows packed without padding, plus what was found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub data: Bytes,
    pub detections: Vec<Rect>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Bytes(Bytes),
    Frame(Frame),
}

impl Payload {
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Bytes(_) => PayloadKind::Bytes,
            Payload::Frame(_) => PayloadKind::Frame,
        }
    }

    /// Size of the payload's data in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Bytes(b) => b.len(),
            Payload::Frame(f) => f.data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

/// Metadata keys that several node types read or write. A node may add its
/// own keys; these are the ones others can rely on.
pub mod keys {
    /// The MQTT topic a message came from or goes to.
    pub const TOPIC: &str = "topic";
    /// The id of the node (or the camera / device name) that produced it.
    pub const SOURCE: &str = "source";
    /// A per-source sequence number.
    pub const SEQ: &str = "seq";
    /// The index of the video frame it comes from.
    pub const FRAME: &str = "frame";
    /// The index of the face within its frame.
    pub const FACE: &str = "face";
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

    /// A new message made from this one (a face cut from a frame): its source
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
