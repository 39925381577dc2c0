//! What a user sees when a source or a parameter is wrong.

use std::path::Path;

use flowrun_runtime::validate;

use crate::common::*;

fn failing_camera(source: &str, key: &str) -> String {
    let spec = format!(
        r#"
version: 1
nodes:
  cam:
    type: camera
    source: {source}
    on_failure: stop
  out:
    type: collect
    key: {key}
    inputs: [cam]
"#
    );
    let (report, _) = run(&spec, key);
    report
        .failures
        .get("cam")
        .cloned()
        .expect("the camera fails")
}

#[test]
fn a_missing_file_is_named() {
    let error = failing_camera("/no/such/clip.avi", "missing");
    assert_eq!(error, "camera source /no/such/clip.avi does not exist");
}

#[test]
fn a_file_that_is_not_a_video_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.mp4");
    std::fs::write(&path, "these are notes, not a video\n".repeat(50)).unwrap();
    let error = failing_camera(&path.display().to_string(), "not-video");
    assert_eq!(
        error,
        format!(
            "camera source {} could not be opened as a video: OpenCV's backends cannot read it (is it a video file, a device, a stream?)",
            path.display()
        )
    );
}

fn diagnostics(detect: &str) -> Vec<String> {
    let spec = format!(
        "version: 1\nnodes:\n  cam:\n    type: camera\n    source: {MEGAMIND}\n  detect:\n    type: haar_detect\n    inputs: [cam]\n{detect}\n  out:\n    type: collect\n    key: x\n    inputs: [detect]\n"
    );
    let checked = validate(Path::new("spec.yaml"), &spec, &catalogue(), &|_| None);
    assert!(checked.plan.is_none(), "the spec is refused");
    checked.errors().map(ToString::to_string).collect()
}

#[test]
fn an_unknown_cascade_is_located_and_lists_the_names() {
    let errors = diagnostics("    cascade: frontal_face");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("spec.yaml:9:14: error: `cascade` of node `detect`: unknown cascade `frontal_face`; the cascades found in /usr/share/opencv4/haarcascades are: eye, "),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("frontalface_default"), "{}", errors[0]);
}

#[test]
fn a_scale_factor_of_one_is_located() {
    let errors = diagnostics("    scale_factor: 1.0\n    detect_scale: 0");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("spec.yaml:9:19: error: `scale_factor` of node `detect`: scale_factor must be more than 1"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("spec.yaml:10:19: error: `detect_scale` of node `detect`: detect_scale must be more than 0 and at most 1, not 0"),
        "{}",
        errors[1]
    );
}
