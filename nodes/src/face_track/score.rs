//! How good a face crop is, to choose the one a track sends under `best`.
//!
//! score = variance of the Laplacian of the gray box × the box's area.
//!
//! The Laplacian responds to edges; its variance is the standard blur
//! measure (Pech-Pacheco et al., 2000): a face caught mid-motion or out of
//! focus has soft edges and a low variance. The variance is a per-pixel
//! average, so on its own it favours a small box (a far face squeezed into
//! few pixels has strong edges per pixel). Multiplying by the area turns it
//! into the box's total edge energy: how much detail the crop holds in all.
//! That prefers a sharp face and, between two equally sharp ones, the larger
//! (nearer) one, which is what a person looking at the bucket wants.

use crate::frame::{Frame, PixelFormat, Rect};
use opencv::core::{Mat, Scalar};
use opencv::prelude::*;
use opencv::{core, imgproc};

use crate::vision::{frame_mat, to_cv_rect, VisionError};

/// Reuses its buffers between boxes.
#[derive(Default)]
pub struct Scorer {
    gray: Mat,
    laplacian: Mat,
}

impl Scorer {
    /// The score of `face` in `frame` (the box cut to the frame first).
    pub fn score(&mut self, frame: &Frame, face: Rect) -> Result<f64, VisionError> {
        let r = inside(face, frame);
        if r.width <= 0 || r.height <= 0 {
            return Ok(0.0);
        }
        let view = frame_mat(frame)?;
        let cut = Mat::roi(&view, to_cv_rect(r))?;
        match frame.format {
            PixelFormat::Bgr8 => {
                imgproc::cvt_color(&cut, &mut self.gray, imgproc::COLOR_BGR2GRAY, 0)?
            }
            PixelFormat::Gray8 => cut.copy_to(&mut self.gray)?,
        }
        imgproc::laplacian(
            &self.gray,
            &mut self.laplacian,
            core::CV_64F,
            1,
            1.0,
            0.0,
            core::BORDER_DEFAULT,
        )?;
        let (mut mean, mut stddev) = (Scalar::default(), Scalar::default());
        core::mean_std_dev_def(&self.laplacian, &mut mean, &mut stddev)?;
        let variance = stddev[0] * stddev[0];
        Ok(variance * f64::from(r.width) * f64::from(r.height))
    }
}

fn inside(r: Rect, frame: &Frame) -> Rect {
    let (fw, fh) = (frame.width as i32, frame.height as i32);
    let x = r.x.clamp(0, fw);
    let y = r.y.clamp(0, fh);
    Rect {
        x,
        y,
        width: (r.x + r.width).min(fw) - x,
        height: (r.y + r.height).min(fh) - y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn frame(data: Vec<u8>) -> Frame {
        Frame {
            width: 20,
            height: 20,
            format: PixelFormat::Gray8,
            data: Bytes::from(data),
            detections: Vec::new(),
        }
    }

    #[test]
    fn a_sharp_box_scores_higher_than_a_flat_one_and_size_counts() {
        let checker: Vec<u8> = (0..400)
            .map(|i| if (i % 20 + i / 20) % 2 == 0 { 0 } else { 255 })
            .collect();
        let sharp = frame(checker);
        let flat = frame(vec![128; 400]);
        let mut scorer = Scorer::default();
        let whole = Rect {
            x: 0,
            y: 0,
            width: 20,
            height: 20,
        };
        let half = Rect {
            x: 0,
            y: 0,
            width: 10,
            height: 20,
        };
        let s = scorer.score(&sharp, whole).unwrap();
        assert!(s > 0.0);
        assert_eq!(scorer.score(&flat, whole).unwrap(), 0.0);
        assert!(scorer.score(&sharp, half).unwrap() < s);
        let outside = Rect {
            x: 30,
            y: 30,
            width: 5,
            height: 5,
        };
        assert_eq!(scorer.score(&sharp, outside).unwrap(), 0.0);
    }
}
