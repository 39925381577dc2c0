//! The `frames` payload kind: decoded images and what was found in them,
//! passed between the vision node types without re-encoding, and the
//! metadata keys that say where in a video a message comes from.
//!
//! The engine carries a [`Frame`] as a typed payload it does not look into
//! ([`flowrun_runtime::payload`]); this module declares the kind and the
//! type. It needs no OpenCV, so that node types built without the `vision`
//! feature (`cos_put`'s key templates) can still name a frame and a face;
//! [`crate::vision`] moves frames to and from OpenCV.

use bytes::Bytes;
use flowrun_runtime::{PayloadKind, PayloadValue};
use serde::Serialize;

/// Default capacity of an input fed decoded frames (about 1 MiB each at
/// 640×480): enough to ride out a hiccup, not a backlog.
pub const DEFAULT_FRAME_CAPACITY: usize = 4;

/// Decoded images with their detections. Spelled "frames" wherever kinds
/// are printed (errors, `flowrun nodes`, `print`).
pub const FRAMES: PayloadKind =
    PayloadKind::new("frames").with_queue_capacity(DEFAULT_FRAME_CAPACITY);

/// Metadata keys of the vision node types, beside the engine's
/// ([`flowrun_runtime::keys`]).
pub mod keys {
    // The engine's keys too, so a vision node type reads all it uses from one place.
    pub use flowrun_runtime::keys::*;

    /// The index of the video frame it comes from.
    pub const FRAME: &str = "frame";
    /// The index of the face within its frame.
    pub const FACE: &str = "face";
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
/// Cloning it shares the pixels (`Bytes`) and copies only the detections.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub data: Bytes,
    pub detections: Vec<Rect>,
}

impl PayloadValue for Frame {
    const KIND: PayloadKind = FRAMES;

    fn size(&self) -> usize {
        self.data.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowrun_runtime::Payload;

    #[test]
    fn a_frame_travels_as_the_frames_kind_without_copying_its_pixels() {
        let frame = Frame {
            width: 2,
            height: 1,
            format: PixelFormat::Gray8,
            data: Bytes::from_static(&[1, 2]),
            detections: Vec::new(),
        };
        let payload = Payload::typed(frame.clone());
        assert_eq!(payload.kind(), FRAMES);
        assert_eq!(payload.kind().to_string(), "frames");
        assert_eq!(payload.len(), 2);
        let fanned_out = payload.clone();
        let (a, b) = (payload.get::<Frame>(), fanned_out.get::<Frame>());
        assert_eq!(a, Some(&frame));
        assert_eq!(a.map(|f| f.data.as_ptr()), b.map(|f| f.data.as_ptr()));
    }
}
