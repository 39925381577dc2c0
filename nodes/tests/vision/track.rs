//! face_track on Megamind.avi, through the real engine, detector and
//! cropper: every policy in one run, fed by the same detections, so each
//! policy's crops can be matched with the `all` branch's tracks by their
//! frame and face index.

use std::collections::{BTreeMap, BTreeSet};

use flowrun_runtime::Payload;

use crate::common::*;

const MIN_FRAMES: usize = 3;
const POLICIES: [&str; 3] = ["first", "best", "first_and_best"];

fn spec() -> String {
    let mut yaml = format!(
        "version: 1\nnodes:\n  cam:\n    type: camera\n    source: {MEGAMIND}\n    realtime: false\n  faces:\n    type: haar_detect\n    inputs: [{{from: cam, overflow: block}}]\n"
    );
    // `all` forwards every face (min_frames 1), so its crops give each
    // track's every face, score and length.
    yaml +=
        "  t_all:\n    type: face_track\n    emit: all\n    min_frames: 1\n    inputs: [faces]\n";
    for policy in POLICIES {
        yaml += &format!(
            "  t_{policy}:\n    type: face_track\n    emit: {policy}\n    min_frames: {MIN_FRAMES}\n    inputs: [faces]\n"
        );
    }
    for policy in std::iter::once("all").chain(POLICIES) {
        yaml += &format!(
            "  c_{policy}:\n    type: gray_crop\n    inputs: [t_{policy}]\n  out_{policy}:\n    type: collect\n    key: track-{policy}\n    inputs: [c_{policy}]\n"
        );
    }
    yaml
}

fn int(got: &Got, key: &str) -> u64 {
    got.meta[key].to_string().parse().unwrap()
}

fn score(got: &Got) -> f64 {
    got.meta["score"].to_string().parse().unwrap()
}

fn bytes(got: &[Got]) -> usize {
    got.iter().map(|g| g.payload.len()).sum()
}

#[test]
fn every_policy_sends_every_track_and_best_sends_its_highest_score() {
    let yaml = spec();
    let (report, _, _) = run_counted(&yaml, "none");
    assert!(report.is_success(), "{report:?}");
    let mut got: BTreeMap<&str, Vec<Got>> = BTreeMap::new();
    for policy in std::iter::once("all").chain(POLICIES) {
        got.insert(policy, take(&format!("track-{policy}")));
    }
    let all = &got["all"];
    assert!(
        all.len() > 200,
        "Megamind.avi has ~295 faces: {}",
        all.len()
    );
    assert!(all.iter().all(|g| matches!(g.payload, Payload::Bytes(_))));
    // Each face of `all`, by (frame, face), gives its track.
    let mut track_of = BTreeMap::new();
    let mut faces_of: BTreeMap<u64, Vec<&Got>> = BTreeMap::new();
    for g in all {
        let at = (int(g, "frame"), int(g, "face"));
        assert!(
            track_of.insert(at, int(g, "track")).is_none(),
            "{at:?} once"
        );
        faces_of.entry(int(g, "track")).or_default().push(g);
    }
    let long: BTreeSet<u64> = faces_of
        .iter()
        .filter(|(_, faces)| faces.len() >= MIN_FRAMES)
        .map(|(t, _)| *t)
        .collect();
    assert!(!long.is_empty());
    println!(
        "face_track on Megamind.avi: {} faces, {} tracks, {} of ≥{MIN_FRAMES} frames; all: {} crops, {} bytes",
        all.len(),
        faces_of.len(),
        long.len(),
        all.len(),
        bytes(all)
    );
    for policy in POLICIES {
        let crops = &got[policy];
        let tracks: BTreeSet<u64> = crops
            .iter()
            .map(|g| track_of[&(int(g, "frame"), int(g, "face"))])
            .collect();
        assert_eq!(tracks, long, "{policy}: every long track, and only those");
        println!(
            "  {policy}: {} crops ({:.1}% of all), {} bytes ({:.1}%)",
            crops.len(),
            100.0 * crops.len() as f64 / all.len() as f64,
            bytes(crops),
            100.0 * bytes(crops) as f64 / bytes(all) as f64
        );
    }
    let best = &got["best"];
    assert_eq!(best.len(), long.len(), "best: one crop per track");
    for g in best {
        let track = track_of[&(int(g, "frame"), int(g, "face"))];
        let highest = faces_of[&track]
            .iter()
            .map(|f| score(f))
            .fold(f64::MIN, f64::max);
        assert_eq!(score(g), highest, "best sends its track's highest score");
        assert_eq!(int(g, "track_frames") as usize, faces_of[&track].len());
    }
}

/// `detect_every: N` detects on every Nth frame; the tracker bridges the
/// frames between, and still finds the tracks (all of them at 2).
#[test]
fn detecting_every_second_frame_still_finds_the_tracks() {
    let mut yaml = format!(
        "version: 1\nnodes:\n  cam:\n    type: camera\n    source: {MEGAMIND}\n    realtime: false\n"
    );
    for n in 1..=3 {
        yaml += &format!(
            "  d{n}:\n    type: haar_detect\n    detect_every: {n}\n    inputs: [{{from: cam, overflow: block}}]\n  t{n}:\n    type: face_track\n    emit: best\n    min_frames: 2\n    inputs: [d{n}]\n  out{n}:\n    type: collect\n    key: every-{n}\n    inputs: [t{n}]\n"
        );
    }
    let (report, _, metrics) = run_counted(&yaml, "none");
    assert!(report.is_success(), "{report:?}");
    let tracks: Vec<usize> = (1..=3).map(|n| take(&format!("every-{n}")).len()).collect();
    let detected: Vec<u64> = (1..=3)
        .map(|n| metrics.node(&format!("d{n}")).snapshot().sent)
        .collect();
    println!("detect_every 1, 2, 3: tracks {tracks:?}; frames sent on with faces {detected:?}");
    assert!(tracks[0] > 0);
    assert!(
        tracks[1] * 10 >= tracks[0] * 9,
        "detect_every 2 finds at least 90% of the tracks: {tracks:?}"
    );
    assert!(detected[1] * 2 <= detected[0] + 1, "{detected:?}");
}
