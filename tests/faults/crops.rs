//! Real face crops for the producer: cut once per test run out of the
//! first frames of Megamind.avi by flowrun itself (camera → haar_detect →
//! gray_crop → files), the same PNGs the shipped edge publishes.

use std::time::Duration;

use tokio::sync::OnceCell;

use crate::flowrun::{Flowrun, MEGAMIND};

/// Frames read from the video: about 70 faces.
const FRAMES: u32 = 40;

static CROPS: OnceCell<Vec<Vec<u8>>> = OnceCell::const_new();

/// The crops, each a grayscale PNG of one face.
pub async fn crops() -> &'static [Vec<u8>] {
    CROPS.get_or_init(cut).await
}

async fn cut() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crops");
    std::fs::create_dir(&out).unwrap();
    let spec = dir.path().join("crops.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"version: 1
name: crops
nodes:
  camera:
    type: camera
    source: {MEGAMIND}
    realtime: false
    max_frames: {FRAMES}
  faces:
    type: haar_detect
    inputs: [{{from: camera, overflow: block}}]
  crops:
    type: gray_crop
    inputs: [faces]
    format: png
  store:
    type: cos_put
    inputs: [crops]
    key: "{{frame}}-{{face}}.{{ext}}"
    backend: {{fs: {{root: crops}}}}
"#
        ),
    )
    .unwrap();
    let cutter = Flowrun::start_file("crops", &spec, false, &[]);
    let (end, clean) = cutter.wait_for_exit(Duration::from_secs(60)).await;
    assert!(clean, "cutting the crops failed");
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let crops: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert_eq!(crops.len() as u64, end.state_count("store", "stored"));
    assert!(crops.len() >= 20, "only {} faces cut", crops.len());
    for (file, crop) in files.iter().zip(&crops) {
        crate::faces::assert_gray_png(&file.display().to_string(), crop);
    }
    crops
}
