//! An image-directory source gives, per photo, what OpenCV finds in it.

use flowrun_nodes::frame::Frame;
use opencv::objdetect::CascadeClassifier;

use crate::common::*;

/// Photos with faces (messi5) and without; graf3.png and starry_night.jpg
/// hold what the cascade takes for faces.
const PHOTOS: [&str; 7] = [
    "graf3.png",
    "messi5.jpg",
    "baboon.jpg",
    "fruits.jpg",
    "home.jpg",
    "starry_night.jpg",
    "HappyFish.jpg",
];

#[test]
fn still_images_give_the_boxes_opencv_gives() {
    let dir = tempfile::tempdir().unwrap();
    for photo in PHOTOS {
        std::os::unix::fs::symlink(format!("{DATA}/{photo}"), dir.path().join(photo)).unwrap();
    }
    let spec = format!(
        r#"
version: 1
nodes:
  cam:
    type: camera
    source: {}
  detect:
    type: haar_detect
    inputs: [{{from: cam, overflow: block}}]
    scale_factor: 1.1
    min_neighbors: 3
    emit_empty: true
  out:
    type: collect
    key: stills
    inputs: [detect]
"#,
        dir.path().display()
    );
    let (report, got) = run(&spec, "stills");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(got.len(), PHOTOS.len());
    let mut classifier = CascadeClassifier::new(FRONTAL_FACE).unwrap();
    let mut faces_in_messi = 0;
    let mut without_faces = 0;
    for g in &got {
        let path = g.meta["path"].to_string();
        let Some(frame) = g.payload.get::<Frame>() else {
            panic!("frames")
        };
        let image = opencv::imgcodecs::imread(&path, opencv::imgcodecs::IMREAD_COLOR).unwrap();
        // These photos' faces are small: the original's 1.3 / 5 finds none.
        let expected = opencv_boxes_with(&mut classifier, &image, 1.0, 1.1, 3);
        assert_eq!(sorted(frame.detections.clone()), expected, "{path}");
        if path.ends_with("messi5.jpg") {
            faces_in_messi = expected.len();
        }
        if expected.is_empty() {
            without_faces += 1;
        }
    }
    assert!(faces_in_messi > 0, "messi5.jpg has faces");
    assert!(without_faces > 0, "some photos have none");
}
