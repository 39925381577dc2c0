//! Real face crops for the fault tests' producers, more faces than one pass
//! of the video holds: every face flowrun finds in Megamind.avi, cut out as
//! a grayscale PNG by the same nodes as the shipped edge specs, made once
//! and kept under cargo's `target/tmp` (shared by tests/faults and
//! tests/faults_edge).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::flowrun::{Binary, MEGAMIND};

static CROPS: tokio::sync::OnceCell<Vec<Vec<u8>>> = tokio::sync::OnceCell::const_new();

/// The crops, as PNG bytes, in frame order; made by `flowrun` the first
/// time (one binary per test crate: later calls get the same crops).
pub async fn faces(flowrun: Binary) -> &'static [Vec<u8>] {
    CROPS.get_or_init(|| load(flowrun)).await
}

async fn load(flowrun: Binary) -> Vec<Vec<u8>> {
    // What cargo gives integration tests as `CARGO_TARGET_TMPDIR`.
    let dir = crate::target_dir().join("tmp/megamind-faces");
    if !dir.join("complete").exists() {
        make(flowrun, &dir).await;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 100,
        "only {} face crops in {}",
        files.len(),
        dir.display()
    );
    let crops: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    for (file, crop) in files.iter().zip(&crops) {
        crate::faces::assert_gray_png(&file.display().to_string(), crop);
    }
    crops
}

/// Runs camera → haar_detect → gray_crop → cos_put (a folder) over the
/// whole video, every frame (no realtime pacing, no dropped frames).
async fn make(flowrun: Binary, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let spec = dir.join("crops.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"version: 1
name: crops
nodes:
  camera: {{type: camera, source: "{MEGAMIND}", realtime: false}}
  faces:
    type: haar_detect
    inputs: [{{from: camera, capacity: 4, overflow: block}}]
    cascade: frontalface_default
    scale_factor: 1.3
    min_neighbors: 5
  crops: {{type: gray_crop, inputs: [{{from: faces, capacity: 4}}], format: png}}
  store:
    type: cos_put
    inputs: [crops]
    key: "{{frame}}-{{face}}.{{ext}}"
    backend: {{fs: {{root: "{}"}}}}
"#,
            dir.display()
        ),
    )
    .unwrap();
    let cutter = flowrun.start_file("crops", &spec, false, &[]);
    let (_, clean) = cutter.wait_for_exit(Duration::from_secs(180)).await;
    assert!(clean, "making face crops failed");
    std::fs::write(dir.join("complete"), "").unwrap();
}

/// Writes `count` faces into `dir` as `<prefix>-00000`, `<prefix>-00001`…
/// (no extension: the name becomes the topic's last level), cycling through
/// the crops.
pub async fn write_numbered(flowrun: Binary, dir: &Path, prefix: &str, count: usize) {
    let faces = faces(flowrun).await;
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        std::fs::write(dir.join(name(prefix, i)), &faces[i % faces.len()]).unwrap();
    }
}

/// The name [`write_numbered`] gives face `i`.
pub fn name(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i:05}")
}
