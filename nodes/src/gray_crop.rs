//! `gray_crop`: cuts every detected box out of its frame, in grayscale, and
//! encodes it as an image — one message per face, as the original script
//! published them.

use bytes::Bytes;
use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Message, Node, NodeConfig, NodeContext, NodeError,
    OutputKind, Payload, PayloadKind,
};
use futures::future::BoxFuture;
use opencv::core::{Mat, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::frame::{keys, Frame, PixelFormat, Rect, FRAMES};
use crate::vision::{check_jpeg_quality, frame_mat, jpeg_params, to_cv_rect, VisionError};

/// Crops each box of a frame, converts it to gray and encodes it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrayCropConfig {
    /// Widen each box by this fraction of its size on every side (0.2 adds a
    /// fifth), cut to the frame's edges.
    #[serde(default)]
    pub margin: f64,
    /// Scale every crop to `[width, height]` pixels; leave out to keep the
    /// box's own size.
    #[serde(default)]
    pub resize: Option<[u32; 2]>,
    /// The image format: `png` (lossless, the default) or `jpeg`.
    #[serde(default)]
    pub format: ImageFormat,
    /// JPEG quality, 1 to 100.
    #[serde(default = "default_quality")]
    pub quality: u8,
}

/// How a crop is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    #[default]
    Png,
    Jpeg,
}

impl ImageFormat {
    fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => ".png",
            ImageFormat::Jpeg => ".jpg",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
        }
    }
}

fn default_quality() -> u8 {
    90
}

impl NodeConfig for GrayCropConfig {
    const TYPE: &'static str = "gray_crop";
    const DESCRIPTION: &'static str =
        "Cuts each detected box out of its frame in grayscale and encodes it (PNG or JPEG)";
    const INPUTS: Inputs = Inputs::Only(&[FRAMES]);
    const OUTPUT: OutputKind = OutputKind::Kind(PayloadKind::Bytes);

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if !(0.0..=2.0).contains(&self.margin) {
            issues.push(ConfigIssue::new(
                "margin",
                format!(
                    "margin must be between 0 and 2 (a fraction of the box), not {}",
                    self.margin
                ),
            ));
        }
        if let Some([w, h]) = self.resize {
            if w == 0 || h == 0 || w > 8192 || h > 8192 {
                issues.push(ConfigIssue::new(
                    "resize",
                    format!("resize [{w}, {h}]: each side must be between 1 and 8192"),
                ));
            }
        }
        issues.extend(check_jpeg_quality(self.quality));
        issues
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(GrayCrop {
            cropper: Cropper::new(self)?,
        }))
    }
}

/// Turns boxes into encoded gray images, reusing its buffers.
pub struct Cropper {
    margin: f64,
    resize: Option<Size>,
    format: ImageFormat,
    params: Vector<i32>,
    gray: Mat,
    resized: Mat,
}

impl Cropper {
    pub fn new(config: &GrayCropConfig) -> Result<Cropper, VisionError> {
        let params = match config.format {
            ImageFormat::Png => Vector::new(),
            ImageFormat::Jpeg => jpeg_params(config.quality),
        };
        Ok(Cropper {
            margin: config.margin,
            resize: config.resize.map(|[w, h]| Size::new(w as i32, h as i32)),
            format: config.format,
            params,
            gray: Mat::default(),
            resized: Mat::default(),
        })
    }

    /// The region cut for `face`: widened by the margin, inside the frame.
    pub fn region(&self, face: Rect, frame: &Frame) -> Rect {
        let dx = (f64::from(face.width) * self.margin).round() as i32;
        let dy = (f64::from(face.height) * self.margin).round() as i32;
        let x0 = (face.x - dx).clamp(0, frame.width as i32);
        let y0 = (face.y - dy).clamp(0, frame.height as i32);
        let x1 = (face.x + face.width + dx).clamp(x0, frame.width as i32);
        let y1 = (face.y + face.height + dy).clamp(y0, frame.height as i32);
        Rect {
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
        }
    }

    /// The encoded gray image of `region` of `frame`.
    pub fn encode(&mut self, frame: &Frame, region: Rect) -> Result<Bytes, VisionError> {
        if region.width <= 0 || region.height <= 0 {
            return Err(VisionError::Input(format!(
                "the box {region:?} has no pixels inside the frame"
            )));
        }
        let view = frame_mat(frame)?;
        let cut = Mat::roi(&view, to_cv_rect(region))?;
        // Converting only the cut is pixel for pixel what cutting the
        // converted frame gives, at a fraction of the work.
        match frame.format {
            PixelFormat::Bgr8 => {
                imgproc::cvt_color(&cut, &mut self.gray, imgproc::COLOR_BGR2GRAY, 0)?
            }
            PixelFormat::Gray8 => cut.copy_to(&mut self.gray)?,
        }
        let image = match self.resize {
            Some(size) => {
                let shrinking = size.width < region.width && size.height < region.height;
                let interpolation = if shrinking {
                    imgproc::INTER_AREA
                } else {
                    imgproc::INTER_LINEAR
                };
                imgproc::resize(&self.gray, &mut self.resized, size, 0.0, 0.0, interpolation)?;
                &self.resized
            }
            None => &self.gray,
        };
        let mut encoded = Vector::<u8>::new();
        if !imgcodecs::imencode(self.format.extension(), image, &mut encoded, &self.params)? {
            return Err(VisionError::Input(format!(
                "OpenCV could not encode a {}×{} crop",
                image.cols(),
                image.rows()
            )));
        }
        Ok(Bytes::from(encoded.to_vec()))
    }

    /// One message per box of `message`'s frame, each carrying `message`'s
    /// acknowledgement, so the frame's source hears back once all are settled.
    pub fn crops(&mut self, message: &Message) -> Result<Vec<Message>, VisionError> {
        let Some(frame) = message.payload.get::<Frame>() else {
            return Err(VisionError::Input(
                "gray_crop takes decoded frames, not bytes".into(),
            ));
        };
        let mut out = Vec::with_capacity(frame.detections.len());
        for (index, face) in frame.detections.iter().enumerate() {
            let region = self.region(*face, frame);
            let bytes = self.encode(frame, region)?;
            let mut meta = message.meta.clone();
            // A frame of one face from `face_track` already says which face
            // of its frame it is: keep that, so keys stay unique per frame.
            let keep = frame.detections.len() == 1 && meta.contains_key(keys::FACE);
            if !keep {
                meta.insert(keys::FACE.into(), (index as u64).into());
            }
            meta.insert(keys::CONTENT_TYPE.into(), self.format.content_type().into());
            meta.insert("box_x".into(), i64::from(region.x).into());
            meta.insert("box_y".into(), i64::from(region.y).into());
            meta.insert("box_width".into(), i64::from(region.width).into());
            meta.insert("box_height".into(), i64::from(region.height).into());
            meta.remove("width");
            meta.remove("height");
            out.push(message.derive(Payload::Bytes(bytes), meta));
        }
        Ok(out)
    }
}

struct GrayCrop {
    cropper: Cropper,
}

impl Node for GrayCrop {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let mut cropper = self.cropper;
            // Encoding blocks: the whole loop runs on a thread of its own.
            tokio::task::spawn_blocking(move || {
                let mut ctx = ctx;
                while let Some(message) = ctx.input.blocking_recv() {
                    match cropper.crops(&message) {
                        Ok(crops) => {
                            for crop in crops {
                                ctx.output.blocking_send(crop);
                            }
                            message.ack();
                        }
                        Err(error) => {
                            ctx.metrics.errors.inc();
                            tracing::warn!(node = %ctx.id, %error, "crop failed");
                            message.reject(error.to_string());
                        }
                    }
                }
            })
            .await
            .map_err(|e| format!("the crop thread ended abnormally: {e}"))?;
            Ok(())
        })
    }
}
