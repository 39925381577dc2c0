//! The opt-in content check: which payloads `cos_put` may store at all.
//!
//! A bucket of face crops should hold only whole images. The type is taken
//! from the bytes, never from what the publisher claims, and an image must
//! be complete: a PNG's chunks must have lengths that fit and correct CRCs,
//! from `IHDR` to a final `IEND`; a JPEG must run from its start marker,
//! through well-formed segments, to an end marker. A cut-off upload (a
//! publisher that lost its connection, a truncated file) is refused like a
//! payload that is no image at all.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The formats the check can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Format {
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
}

impl Format {
    fn mime(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
        }
    }
}

/// Why a payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the payload is empty")]
    Empty,
    #[error("the payload is {size} bytes, over `max_object_bytes` ({limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("the payload is not one of the accepted types ({accepted}); it looks like {found}")]
    NotAccepted {
        accepted: String,
        found: &'static str,
    },
    #[error("the payload is a damaged or truncated {format}: {why}")]
    Damaged { format: &'static str, why: Damage },
}

/// Where an image stops being whole; `byte`s are offsets into the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("it ends before its IEND chunk")]
    NoIend,
    #[error("its first chunk is `{0}`, not IHDR")]
    NotIhdrFirst(String),
    #[error("chunk `{chunk}` claims {length} bytes but only {left} remain")]
    ChunkCut {
        chunk: String,
        length: usize,
        left: usize,
    },
    #[error("chunk `{0}` has a wrong CRC")]
    WrongCrc(String),
    #[error("{0} bytes follow its IEND chunk")]
    AfterIend(usize),
    #[error("no segment marker at byte {0}")]
    NoMarker(usize),
    #[error("it ends before any image data")]
    NoImageData,
    #[error("it ends inside the segment at byte {0}")]
    SegmentCut(usize),
    #[error("the segment at byte {byte} claims {length} bytes that are not there")]
    SegmentTooLong { byte: usize, length: usize },
    #[error("it has no end-of-image marker (FF D9) at its end")]
    NoEnd,
}

impl Refusal {
    /// The event the refusal is counted under
    /// (`flowrun_node_events_total{event="refused_…"}`).
    pub fn event(&self) -> &'static str {
        match self {
            Refusal::Empty => "refused_empty",
            Refusal::TooLarge { .. } => "refused_too_large",
            Refusal::NotAccepted { .. } => "refused_type",
            Refusal::Damaged { .. } => "refused_damaged",
        }
    }

    pub const EVENTS: [&'static str; 4] = [
        "refused_empty",
        "refused_too_large",
        "refused_type",
        "refused_damaged",
    ];
}

/// The check as configured: no limits when both are unset.
#[derive(Debug, Clone, Default)]
pub struct ContentCheck {
    pub accept: Vec<Format>,
    pub max_bytes: Option<usize>,
}

impl ContentCheck {
    pub fn is_off(&self) -> bool {
        self.accept.is_empty() && self.max_bytes.is_none()
    }

    pub fn check(&self, body: &[u8]) -> Result<(), Refusal> {
        if let Some(limit) = self.max_bytes {
            if body.len() > limit {
                return Err(Refusal::TooLarge {
                    size: body.len(),
                    limit,
                });
            }
        }
        if self.accept.is_empty() {
            return Ok(());
        }
        if body.is_empty() {
            return Err(Refusal::Empty);
        }
        let format = self
            .accept
            .iter()
            .copied()
            .find(|f| looks_like(*f, body))
            .ok_or_else(|| Refusal::NotAccepted {
                accepted: self
                    .accept
                    .iter()
                    .map(|f| f.mime())
                    .collect::<Vec<_>>()
                    .join(", "),
                found: crate::util::sniff_content_type(body),
            })?;
        let complete = match format {
            Format::Png => png_complete(body),
            Format::Jpeg => jpeg_complete(body),
        };
        complete.map_err(|why| Refusal::Damaged {
            format: format.mime(),
            why,
        })
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn looks_like(format: Format, body: &[u8]) -> bool {
    match format {
        Format::Png => body.starts_with(PNG_SIGNATURE),
        Format::Jpeg => body.starts_with(&[0xFF, 0xD8, 0xFF]),
    }
}

/// Walks the chunks: each length must fit, each CRC match; `IHDR` first,
/// `IEND` last and nothing after it.
fn png_complete(body: &[u8]) -> Result<(), Damage> {
    let mut rest = &body[PNG_SIGNATURE.len()..];
    let mut first = true;
    loop {
        let Some((header, after)) = rest.split_first_chunk::<8>() else {
            return Err(Damage::NoIend);
        };
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = &header[4..8];
        let name = String::from_utf8_lossy(kind).into_owned();
        if first && kind != b"IHDR" {
            return Err(Damage::NotIhdrFirst(name));
        }
        first = false;
        if after.len() < length + 4 {
            return Err(Damage::ChunkCut {
                chunk: name,
                length,
                left: after.len().saturating_sub(4),
            });
        }
        let (data, after) = after.split_at(length);
        let (crc, after) = after.split_at(4);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(kind);
        hasher.update(data);
        if hasher.finalize().to_be_bytes() != crc {
            return Err(Damage::WrongCrc(name));
        }
        if kind == b"IEND" {
            return match after.len() {
                0 => Ok(()),
                n => Err(Damage::AfterIend(n)),
            };
        }
        rest = after;
    }
}

/// Walks the marker segments up to the scan, then requires the end marker
/// as the last two bytes (the entropy-coded data between has no lengths).
fn jpeg_complete(body: &[u8]) -> Result<(), Damage> {
    let mut at = 2;
    loop {
        let Some(&[0xFF, marker]) = body.get(at..at + 2) else {
            return Err(Damage::NoMarker(at));
        };
        match marker {
            // Fill bytes before a marker.
            0xFF => at += 1,
            0xD9 => return Err(Damage::NoImageData),
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                let Some(&[high, low]) = body.get(at + 2..at + 4) else {
                    return Err(Damage::SegmentCut(at));
                };
                let length = usize::from(u16::from_be_bytes([high, low]));
                if length < 2 || at + 2 + length > body.len() {
                    return Err(Damage::SegmentTooLong { byte: at, length });
                }
                at += 2 + length;
                if marker == 0xDA {
                    break;
                }
            }
        }
    }
    if body.ends_with(&[0xFF, 0xD9]) && body.len() >= at + 2 {
        Ok(())
    } else {
        Err(Damage::NoEnd)
    }
}

// The test images are encoded with OpenCV: a build without `vision` has none.
#[cfg(all(test, feature = "vision"))]
mod tests {
    use super::*;

    fn encoded(ext: &str) -> Vec<u8> {
        use opencv::prelude::VectorToVec;
        let image = opencv::core::Mat::new_rows_cols_with_default(
            8,
            8,
            opencv::core::CV_8UC1,
            opencv::core::Scalar::all(90.0),
        )
        .unwrap();
        let mut out = opencv::core::Vector::<u8>::new();
        opencv::imgcodecs::imencode(ext, &image, &mut out, &opencv::core::Vector::new()).unwrap();
        out.to_vec()
    }

    fn png() -> Vec<u8> {
        encoded(".png")
    }

    fn jpeg() -> Vec<u8> {
        encoded(".jpg")
    }

    fn images_only() -> ContentCheck {
        ContentCheck {
            accept: vec![Format::Png, Format::Jpeg],
            max_bytes: Some(1 << 20),
        }
    }

    #[test]
    fn whole_images_pass() {
        assert_eq!(images_only().check(&png()), Ok(()));
        assert_eq!(images_only().check(&jpeg()), Ok(()));
    }

    #[test]
    fn each_kind_of_bad_payload_is_refused_with_its_reason() {
        let check = images_only();
        let png = png();
        let jpeg = jpeg();
        let event = |body: &[u8]| check.check(body).unwrap_err().event();
        assert_eq!(event(b""), "refused_empty");
        assert_eq!(event(b"hello, not an image"), "refused_type");
        assert_eq!(event(&vec![0x89; (1 << 20) + 1]), "refused_too_large");
        // Cut anywhere after the signature: a damaged PNG, never a pass.
        for cut in PNG_SIGNATURE.len()..png.len() {
            assert_eq!(event(&png[..cut]), "refused_damaged", "cut at {cut}");
        }
        for cut in 3..jpeg.len() - 1 {
            assert_eq!(event(&jpeg[..cut]), "refused_damaged", "cut at {cut}");
        }
        let mut flipped = png.clone();
        flipped[40] ^= 0x01;
        assert_eq!(event(&flipped), "refused_damaged");
        let mut trailing = png.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(event(&trailing), "refused_damaged");
    }

    #[test]
    fn reasons_say_what_is_wrong() {
        let png = png();
        let text = images_only().check(&png[..png.len() - 6]).unwrap_err();
        assert!(
            text.to_string().contains("damaged or truncated image/png"),
            "{text}"
        );
        let mut trailing = png.clone();
        trailing.extend_from_slice(b"junk");
        let refusal = images_only().check(&trailing).unwrap_err();
        assert_eq!(
            refusal,
            Refusal::Damaged {
                format: "image/png",
                why: Damage::AfterIend(4),
            }
        );
        assert!(refusal
            .to_string()
            .ends_with(": 4 bytes follow its IEND chunk"));
        let only_png = ContentCheck {
            accept: vec![Format::Png],
            max_bytes: None,
        };
        let text = only_png.check(&jpeg()).unwrap_err().to_string();
        assert!(
            text.contains("(image/png)") && text.contains("looks like image/jpeg"),
            "{text}"
        );
    }

    #[test]
    fn no_settings_take_everything() {
        let check = ContentCheck::default();
        assert!(check.is_off());
        assert_eq!(check.check(b""), Ok(()));
        assert_eq!(check.check(b"text"), Ok(()));
    }
}
