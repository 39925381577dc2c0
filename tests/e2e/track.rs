//! `face_track` through the shipped specs and across a hot reload: the
//! uplink carries people, not frames, and a reload mid-video loses no one.

use std::path::Path;

use flowrun_test_support::faces::assert_gray_png;
use flowrun_test_support::flowrun::{Status, MEGAMIND};
use flowrun_test_support::mosquitto::Mosquitto;
use flowrun_test_support::s3::S3Server;

use crate::cloud::Cloud;
use crate::{BUCKET, DELIVERY, FLOWRUN, SERIAL, VIDEO};

/// The bytes of every object under `prefix`, after checking each is a gray PNG.
async fn stored_bytes(store: &S3Server, prefix: &str) -> (usize, u64) {
    let keys: Vec<String> = store
        .list(BUCKET)
        .await
        .into_iter()
        .filter(|k| k.starts_with(prefix))
        .collect();
    let mut bytes = 0;
    for key in &keys {
        let (body, _) = store.get(BUCKET, key).await;
        assert_gray_png(key, &body);
        bytes += body.len() as u64;
    }
    (keys.len(), bytes)
}

/// `TRACK=best` through the shipped edge and cloud specs: the same video
/// sent twice into one cloud, once as every face (the default) and once as
/// one crop per person each time they appear. The second must reach the
/// bucket with at most a twentieth of the objects and of the bytes, one
/// object per confirmed track.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_best_stores_one_crop_per_person_a_twentieth_of_every_face() {
    let _serial = SERIAL.lock().await;
    let rig = Cloud::start(Mosquitto::start(), S3Server::start()).await;
    let mut cloud = rig.worker("cloud-cos", 1).await;

    let mut sent = Vec::new();
    for (device, track) in [("door-all", "all"), ("door-best", "best")] {
        let mut edge = rig.edge_with(
            &format!("edge-{track}"),
            "edge-bridge.yaml",
            device,
            &[("TRACK", track.into())],
        );
        let status = edge
            .wait_until("done with the video", VIDEO, Status::edge_finished)
            .await;
        let before: u64 = sent.iter().map(|(_, faces, _)| faces).sum();
        cloud
            .wait_until("stored every face", DELIVERY, |s| {
                s.state_count("store", "stored") >= before + status.faces()
            })
            .await;
        let (end, clean) = edge.stop().await;
        assert!(clean, "edge-{track} did not exit cleanly");
        sent.push((track, end.faces(), end.state_count("track", "confirmed")));
    }
    let [(_, every_face, tracks_all), (_, best, tracks_best)] = sent[..] else {
        unreachable!()
    };
    assert!(every_face >= 100, "{sent:?}");
    // Each person seen in min_frames (3) frames or more sent exactly once.
    assert!(tracks_best >= 1 && best == tracks_best, "{sent:?}");
    // The same people were found both times (give or take a track or two:
    // the two runs are two detections of the video).
    assert!(tracks_all.abs_diff(tracks_best) <= 2, "{sent:?}");

    let (objects_all, bytes_all) = stored_bytes(&rig.store, "faces/door-all/").await;
    let (objects_best, bytes_best) = stored_bytes(&rig.store, "faces/door-best/").await;
    assert_eq!(
        (objects_all, objects_best),
        (every_face as usize, best as usize)
    );
    assert!(
        objects_best * 20 <= objects_all && bytes_best * 20 <= bytes_all,
        "TRACK=best stored {objects_best} objects, {bytes_best} B; every face: {objects_all}, {bytes_all} B"
    );
    println!(
        "TRACK=best: {objects_best} objects, {bytes_best} B; TRACK=all: {objects_all} objects, {bytes_all} B"
    );
    let (cloud_end, clean) = cloud.stop().await;
    assert!(clean, "cloud-cos did not exit cleanly");
    assert_eq!(cloud_end.state_count("store", "stored"), every_face + best);
}

/// Two trackers on the same detections, each into its own folder: `steady`
/// is left alone, `edited` is reconfigured by a save of the spec mid-video,
/// which restarts it. A track's file is named by its track id and the
/// capture times of its first and last face.
fn reload_spec(bucket: &Path, max_gap: u32) -> String {
    let mut yaml = format!(
        "version: 1\nname: track-reload\nnodes:\n  camera:\n    type: camera\n    source: {MEGAMIND}\n  \
         faces:\n    type: haar_detect\n    inputs: [{{from: camera, capacity: 4}}]\n    scale_factor: 1.3\n    min_neighbors: 5\n"
    );
    for (name, gap) in [("steady", 12), ("edited", max_gap)] {
        yaml += &format!(
            "  {name}:\n    type: face_track\n    inputs: [faces]\n    emit: best\n    max_gap: {gap}\n  \
             {name}_crops:\n    type: gray_crop\n    inputs: [{name}]\n  \
             {name}_store:\n    type: cos_put\n    inputs: [{name}_crops]\n    \
             key: \"{name}/{{meta.track}}-{{meta.track_first_ms}}-{{meta.track_last_ms}}.png\"\n    \
             backend:\n      fs:\n        root: {}\n",
            bucket.display()
        );
    }
    yaml
}

/// Each stored track's capture span, from its file name.
fn spans(folder: &Path) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = std::fs::read_dir(folder)
        .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            assert_gray_png(&path.display().to_string(), &std::fs::read(&path).unwrap());
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let fields: Vec<u64> = name.split('-').map(|n| n.parse().unwrap()).collect();
            (fields[1], fields[2])
        })
        .collect();
    spans.sort();
    spans
}

/// A reload that restarts a tracker mid-video flushes its open tracks (their
/// best face sent) before the new one starts: every appearance the steady
/// tracker sends is covered by at least one crop of the restarted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_mid_video_flushes_open_tracks_and_loses_no_appearance() {
    let _serial = SERIAL.lock().await;
    // The flush shows only if someone is in view when the spec is saved. The
    // status the test waits on is a moment old, so now and then the save
    // lands in the gap between two appearances (seen once in CI: 40 ms after
    // one ended). Such a run still checks that no appearance is lost, but
    // says nothing of the flush: it is run again, at most three times.
    for attempt in 1..=3 {
        match reload_mid_video().await {
            Reload::AcrossAnAppearance => return,
            Reload::BetweenAppearances(what) => println!("attempt {attempt}: {what}"),
        }
    }
    panic!("three saves in a row landed between two appearances");
}

/// Where [`reload_mid_video`]'s save landed.
enum Reload {
    AcrossAnAppearance,
    BetweenAppearances(String),
}

async fn reload_mid_video() -> Reload {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir(&bucket).unwrap();
    let spec = dir.path().join("track.yaml");
    std::fs::write(&spec, reload_spec(&bucket, 12)).unwrap();
    let mut flowrun = FLOWRUN.start_file("track-reload", &spec, true, &[]);
    // Mid-video: the edited tracker is following someone (a confirmed
    // track, whose best face a flush sends: a candidate below min_frames is
    // dropped by design), and the camera has frames left.
    let before = flowrun
        .wait_until("following a face", VIDEO, |s| {
            s.state("edited").contains("open=1 (1 confirmed)") && s.count("camera", "out") >= 60
        })
        .await;
    assert!(
        !before.state("camera").starts_with("end of file"),
        "{}",
        flowrun.log()
    );
    std::fs::write(&spec, reload_spec(&bucket, 11)).unwrap();
    let reload_ms = now_ms();
    let end = flowrun
        .wait_until("done with the video", VIDEO, |s| {
            s.state("camera").starts_with("end of file")
                && ["steady", "edited"].iter().all(|t| {
                    s.state(t).starts_with("done")
                        && s.state_count(&format!("{t}_store"), "stored")
                            == s.count(&format!("{t}_crops"), "out")
                })
        })
        .await;
    assert_eq!(
        flowrun.lines_with("~ edited: max_gap 12 → 11"),
        1,
        "{}",
        flowrun.log()
    );
    let steady = spans(&bucket.join("steady"));
    let edited = spans(&bucket.join("edited"));
    let overlapping = |first: u64, last: u64| -> Vec<(u64, u64)> {
        edited
            .iter()
            .filter(|(f, l)| *f <= last && first <= *l)
            .copied()
            .collect()
    };
    assert!(!steady.is_empty(), "{}", flowrun.log());
    for (first, last) in &steady {
        assert!(
            !overlapping(*first, *last).is_empty(),
            "the appearance {first}..{last} ms reached no crop after the reload: steady {steady:?}, edited {edited:?}"
        );
    }
    // The person in view at the reload was followed by the old tracker and
    // then by the new one: the old one flushed its best face before it
    // stopped (a span that ends before the reload), the new one sent the rest.
    let Some(across) = steady
        .iter()
        .find(|(first, last)| *first < reload_ms && reload_ms < *last)
    else {
        let (_, clean) = flowrun.stop().await;
        assert!(clean, "flowrun did not exit cleanly");
        return Reload::BetweenAppearances(format!(
            "no one in view at the save ({reload_ms} ms): {steady:?}"
        ));
    };
    let parts = overlapping(across.0, across.1);
    assert!(
        parts.len() >= 2 && parts.iter().any(|(_, last)| *last < reload_ms),
        "the track open at the reload ({reload_ms}) was not flushed: steady {across:?}, edited {parts:?}"
    );
    println!(
        "reload after {} frames: steady tracker {} crops, edited {} ({})",
        before.count("camera", "out"),
        steady.len(),
        edited.len(),
        end.state("edited")
    );
    let (_, clean) = flowrun.stop().await;
    assert!(clean, "flowrun did not exit cleanly");
    Reload::AcrossAnAppearance
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
