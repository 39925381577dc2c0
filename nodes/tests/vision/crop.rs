//! gray_crop's bytes are OpenCV's own encoding of the same gray region.

use flowrun_runtime::Payload;
use opencv::core::{Mat, Rect, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

use crate::common::*;

const FRAMES: usize = 30;

fn meta_i32(got: &Got, key: &str) -> i32 {
    got.meta[key].to_string().parse().unwrap()
}

#[test]
fn crops_are_byte_identical_to_opencv_imencode_of_the_gray_region() {
    let rest = "  crop:\n    type: gray_crop\n    inputs: [detect]\n  out:\n    type: collect\n    key: crops\n    inputs: [crop]";
    let spec = megamind_spec(FRAMES, "    workers: 2", rest);
    let (report, got) = run(&spec, "crops");
    assert!(report.is_success(), "{report:?}");
    assert!(got.len() >= FRAMES / 2, "{} crops", got.len());
    let frames = megamind_frames(FRAMES);
    for g in &got {
        let Payload::Bytes(bytes) = &g.payload else {
            panic!("bytes")
        };
        assert_eq!(g.meta["content_type"].to_string(), "image/png");
        let frame = &frames[frame_index(g)];
        let region = Rect::new(
            meta_i32(g, "box_x"),
            meta_i32(g, "box_y"),
            meta_i32(g, "box_width"),
            meta_i32(g, "box_height"),
        );
        let mut gray = Mat::default();
        imgproc::cvt_color(frame, &mut gray, imgproc::COLOR_BGR2GRAY, 0).unwrap();
        let cut = Mat::roi(&gray, region).unwrap();
        let mut expected = Vector::<u8>::new();
        imgcodecs::imencode(".png", &cut, &mut expected, &Vector::new()).unwrap();
        assert_eq!(
            bytes.as_ref(),
            expected.as_slice(),
            "frame {} face {}",
            frame_index(g),
            g.meta["face"]
        );
    }
}

#[test]
fn margin_resize_and_jpeg_give_fixed_size_jpegs_inside_the_frame() {
    let rest = "  crop:\n    type: gray_crop\n    inputs: [detect]\n    margin: 0.5\n    resize: [64, 48]\n    format: jpeg\n    quality: 80\n  out:\n    type: collect\n    key: jpegs\n    inputs: [crop]";
    let spec = megamind_spec(10, "    workers: 1", rest);
    let (report, got) = run(&spec, "jpegs");
    assert!(report.is_success(), "{report:?}");
    assert!(!got.is_empty());
    let frames = megamind_frames(10);
    for g in &got {
        let Payload::Bytes(bytes) = &g.payload else {
            panic!("bytes")
        };
        assert_eq!(g.meta["content_type"].to_string(), "image/jpeg");
        let decoded = imgcodecs::imdecode(
            &Vector::<u8>::from_slice(bytes),
            imgcodecs::IMREAD_UNCHANGED,
        )
        .unwrap();
        assert_eq!(
            (decoded.cols(), decoded.rows(), decoded.channels()),
            (64, 48, 1)
        );
        let (x, y) = (meta_i32(g, "box_x"), meta_i32(g, "box_y"));
        let (w, h) = (meta_i32(g, "box_width"), meta_i32(g, "box_height"));
        let frame = &frames[frame_index(g)];
        assert!(
            x >= 0 && y >= 0 && x + w <= frame.cols() && y + h <= frame.rows(),
            "{x} {y} {w} {h}"
        );
    }
}
