//! One Haar detector: a cascade classifier and the buffers it reuses. One
//! per thread: OpenCV's `CascadeClassifier` is `Send`, not `Sync`.

use std::path::Path;

use crate::frame::{Frame, PixelFormat, Rect};
use opencv::core::{Mat, Size, Vector};
use opencv::imgproc;
use opencv::objdetect::CascadeClassifier;
use opencv::prelude::*;

use crate::vision::{frame_mat, from_cv_rect, VisionError};

/// `detectMultiScale`'s settings, plus the downscale applied before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub scale_factor: f64,
    pub min_neighbors: i32,
    pub min_size: Option<[u32; 2]>,
    pub max_size: Option<[u32; 2]>,
    pub equalize_hist: bool,
    pub detect_scale: f64,
}

pub struct Detector {
    classifier: CascadeClassifier,
    params: Params,
    gray: Mat,
    small: Mat,
    equalized: Mat,
}

impl Detector {
    pub fn load(path: &Path, params: Params) -> Result<Detector, VisionError> {
        let classifier = CascadeClassifier::new(&path.to_string_lossy())?;
        if classifier.empty()? {
            return Err(VisionError::Input(format!(
                "{} is not a Haar cascade OpenCV can load",
                path.display()
            )));
        }
        Ok(Detector {
            classifier,
            params,
            gray: Mat::default(),
            small: Mat::default(),
            equalized: Mat::default(),
        })
    }

    /// The boxes found in `frame`, in its full-resolution coordinates.
    pub fn detect(&mut self, frame: &Frame) -> Result<Vec<Rect>, VisionError> {
        let Detector {
            classifier,
            params,
            gray,
            small,
            equalized,
        } = self;
        let view = frame_mat(frame)?;
        let mut image: &Mat = match frame.format {
            PixelFormat::Gray8 => {
                view.copy_to(gray)?;
                gray
            }
            PixelFormat::Bgr8 => {
                imgproc::cvt_color(&view, gray, imgproc::COLOR_BGR2GRAY, 0)?;
                gray
            }
        };
        let scale = params.detect_scale;
        if scale < 1.0 {
            // As `cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)`.
            imgproc::resize(
                image,
                small,
                Size::default(),
                scale,
                scale,
                imgproc::INTER_AREA,
            )?;
            image = small;
        }
        if params.equalize_hist {
            imgproc::equalize_hist(image, equalized)?;
            image = equalized;
        }
        let mut found = Vector::<opencv::core::Rect>::new();
        classifier.detect_multi_scale(
            image,
            &mut found,
            params.scale_factor,
            params.min_neighbors,
            0,
            scaled_size(params.min_size, scale),
            scaled_size(params.max_size, scale),
        )?;
        Ok(found
            .iter()
            .map(|r| clamp(unscale(from_cv_rect(r), scale), frame))
            .collect())
    }
}

/// A size limit in full-resolution pixels, in the detection image's; an
/// empty size is OpenCV's "no limit".
fn scaled_size(size: Option<[u32; 2]>, scale: f64) -> Size {
    size.map(|[w, h]| {
        Size::new(
            (f64::from(w) * scale).round() as i32,
            (f64::from(h) * scale).round() as i32,
        )
    })
    .unwrap_or_default()
}

fn unscale(r: Rect, scale: f64) -> Rect {
    if scale >= 1.0 {
        return r;
    }
    let f = |v: i32| (f64::from(v) / scale).round() as i32;
    Rect {
        x: f(r.x),
        y: f(r.y),
        width: f(r.width),
        height: f(r.height),
    }
}

/// `r` cut to the frame, since rounding up from a downscaled image can step
/// a pixel over its edge.
fn clamp(r: Rect, frame: &Frame) -> Rect {
    let (fw, fh) = (frame.width as i32, frame.height as i32);
    let x = r.x.clamp(0, fw);
    let y = r.y.clamp(0, fh);
    Rect {
        x,
        y,
        width: r.width.min(fw - x),
        height: r.height.min(fh - y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn boxes_found_on_a_downscaled_image_map_back_inside_the_frame() {
        let frame = Frame {
            width: 100,
            height: 80,
            format: PixelFormat::Gray8,
            data: Bytes::from(vec![0u8; 8000]),
            detections: Vec::new(),
        };
        let r = Rect {
            x: 30,
            y: 20,
            width: 20,
            height: 21,
        };
        let back = clamp(unscale(r, 0.5), &frame);
        assert_eq!(
            back,
            Rect {
                x: 60,
                y: 40,
                width: 40,
                height: 40
            }
        );
        assert_eq!(scaled_size(Some([31, 30]), 0.5), Size::new(16, 15));
        assert_eq!(scaled_size(None, 0.5), Size::default());
    }
}
