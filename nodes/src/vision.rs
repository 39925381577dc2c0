//! What the vision node types share: moving frames between the catalogue's
//! [`Frame`] ([`crate::frame`]) and OpenCV's `Mat`, and their error type.
//!
//! Frames travel between nodes decoded (packed rows, no padding), so a hop
//! costs one reference count, never an encode.

pub use crate::frame::{Frame, PixelFormat, Rect};
use bytes::Bytes;
use flowrun_runtime::ConfigIssue;
use opencv::boxed_ref::BoxedRef;
use opencv::core::{Mat, Vec3b, Vector};
use opencv::imgcodecs;
use opencv::prelude::*;

/// Why a vision step failed.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("OpenCV: {0}")]
    OpenCv(#[from] opencv::Error),
    #[error("{0}")]
    Input(String),
}

/// The `quality` issue of a node that encodes JPEG, if any: OpenCV takes
/// 1 to 100.
pub fn check_jpeg_quality(quality: u8) -> Option<ConfigIssue> {
    (!(1..=100).contains(&quality)).then(|| {
        ConfigIssue::new(
            "quality",
            format!("quality must be between 1 and 100, not {quality}"),
        )
    })
}

/// What `imencode` takes to write a JPEG of `quality`.
pub fn jpeg_params(quality: u8) -> Vector<i32> {
    Vector::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, i32::from(quality)])
}

/// A view of `frame`'s pixels as a `Mat`, without copying them.
pub fn frame_mat(frame: &Frame) -> Result<BoxedRef<'_, Mat>, VisionError> {
    let rows = i32::try_from(frame.height).map_err(|_| too_big(frame))?;
    let cols = i32::try_from(frame.width).map_err(|_| too_big(frame))?;
    let expected = frame.height as usize * frame.width as usize * frame.format.channels();
    if frame.data.len() != expected {
        return Err(VisionError::Input(format!(
            "a {}×{} frame with {} bytes of pixels instead of {expected}",
            frame.width,
            frame.height,
            frame.data.len()
        )));
    }
    Ok(match frame.format {
        PixelFormat::Bgr8 => Mat::new_rows_cols_with_bytes::<Vec3b>(rows, cols, &frame.data)?,
        PixelFormat::Gray8 => Mat::new_rows_cols_with_bytes::<u8>(rows, cols, &frame.data)?,
    })
}

fn too_big(frame: &Frame) -> VisionError {
    VisionError::Input(format!(
        "a {}×{} frame is larger than OpenCV takes",
        frame.width, frame.height
    ))
}

/// A frame holding a copy of `mat`'s pixels (8-bit BGR or gray).
pub fn mat_frame(mat: &Mat) -> Result<Frame, VisionError> {
    let format = match mat.typ() {
        t if t == opencv::core::CV_8UC3 => PixelFormat::Bgr8,
        t if t == opencv::core::CV_8UC1 => PixelFormat::Gray8,
        other => {
            return Err(VisionError::Input(format!(
                "an image of OpenCV type {other}: only 8-bit BGR or gray is supported"
            )))
        }
    };
    let data = if mat.is_continuous() {
        Bytes::copy_from_slice(mat.data_bytes()?)
    } else {
        Bytes::copy_from_slice(mat.try_clone()?.data_bytes()?)
    };
    Ok(Frame {
        width: u32::try_from(mat.cols()).unwrap_or(0),
        height: u32::try_from(mat.rows()).unwrap_or(0),
        format,
        data,
        detections: Vec::new(),
    })
}

pub fn to_cv_rect(r: Rect) -> opencv::core::Rect {
    opencv::core::Rect::new(r.x, r.y, r.width, r.height)
}

pub fn from_cv_rect(r: opencv::core::Rect) -> Rect {
    Rect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_through_a_mat() {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8).collect();
        let frame = Frame {
            width: 4,
            height: 3,
            format: PixelFormat::Bgr8,
            data: Bytes::from(data),
            detections: Vec::new(),
        };
        let mat = frame_mat(&frame).unwrap();
        assert_eq!((mat.cols(), mat.rows(), mat.channels()), (4, 3, 3));
        assert_eq!(
            *mat.at_2d::<Vec3b>(1, 2).unwrap(),
            Vec3b::from([18, 19, 20])
        );
        let back = mat_frame(&mat.try_clone().unwrap()).unwrap();
        assert_eq!(back, frame);
    }

    #[test]
    fn a_frame_whose_data_does_not_match_its_size_is_refused() {
        let frame = Frame {
            width: 4,
            height: 3,
            format: PixelFormat::Gray8,
            data: Bytes::from_static(b"short"),
            detections: Vec::new(),
        };
        assert!(matches!(frame_mat(&frame), Err(VisionError::Input(_))));
    }
}
