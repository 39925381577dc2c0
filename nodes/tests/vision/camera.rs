//! The camera's pacing, looping, metadata and overflow policy, on Megamind.avi.

use std::time::{Duration, Instant};

use flowrun_nodes::frame::Frame;

use crate::common::*;

fn camera_spec(key: &str, camera: &str, input: &str) -> String {
    format!(
        "version: 1\nnodes:\n  cam:\n    type: camera\n    source: {MEGAMIND}\n{camera}\n  out:\n    type: collect\n    key: {key}\n    inputs: [{input}]\n"
    )
}

#[test]
fn frames_carry_their_index_size_source_and_time() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let spec = camera_spec(
        "meta",
        "    realtime: false\n    max_frames: 5",
        "{from: cam, overflow: block}",
    );
    let (report, got) = run(&spec, "meta");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        got.iter().map(frame_index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    for g in &got {
        let Some(frame) = g.payload.get::<Frame>() else {
            panic!("frames")
        };
        assert_eq!((frame.width, frame.height), (720, 528));
        assert_eq!(g.meta["width"].to_string(), "720");
        assert_eq!(g.meta["height"].to_string(), "528");
        assert_eq!(g.meta["source"].to_string(), "cam");
        assert_eq!(g.meta["uri"].to_string(), MEGAMIND);
        let at: i64 = g.meta["timestamp_ms"].to_string().parse().unwrap();
        assert!(at >= before, "{at} >= {before}");
    }
}

#[test]
fn realtime_paces_a_file_at_its_own_rate() {
    let spec = camera_spec(
        "paced",
        "    max_frames: 13",
        "{from: cam, overflow: block}",
    );
    let started = Instant::now();
    let (report, got) = run(&spec, "paced");
    let took = started.elapsed();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(got.len(), 13);
    // 12 intervals of 1/23.976 s: half a second.
    assert!(took >= Duration::from_millis(490), "{took:?}");
}

#[test]
fn an_fps_cap_spaces_frames_read_as_fast_as_possible() {
    let spec = camera_spec(
        "capped",
        "    realtime: false\n    fps: 40\n    max_frames: 11",
        "{from: cam, overflow: block}",
    );
    let started = Instant::now();
    let (report, got) = run(&spec, "capped");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(got.len(), 11);
    assert!(
        started.elapsed() >= Duration::from_millis(245),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn loop_starts_the_file_over() {
    let spec = camera_spec(
        "looped",
        "    realtime: false\n    loop: true\n    max_frames: 300",
        "{from: cam, overflow: block}",
    );
    let (report, got) = run(&spec, "looped");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        got.iter().map(frame_index).collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
}

/// The camera's default edge policy: a slow consumer loses the oldest
/// frames, counted, rather than the camera building a backlog.
#[test]
fn a_slow_detector_drops_the_oldest_frames_and_counts_them() {
    let spec = format!(
        "version: 1\nnodes:\n  cam:\n    type: camera\n    source: {MEGAMIND}\n    realtime: false\n    max_frames: 200\n  detect:\n    type: haar_detect\n    workers: 1\n    emit_empty: true\n    inputs: [cam]\n  out:\n    type: collect\n    key: dropping\n    inputs: [detect]\n"
    );
    let (report, got, metrics) = run_counted(&spec, "dropping");
    assert!(report.is_success(), "{report:?}");
    let dropped = metrics.node("detect").snapshot().dropped;
    assert!(
        dropped > 0,
        "decoding outpaces detection: some frames are dropped"
    );
    assert_eq!(
        got.len() as u64 + dropped,
        200,
        "every frame is either detected or counted as dropped"
    );
    let indices: Vec<usize> = got.iter().map(frame_index).collect();
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "what is kept stays in order"
    );
    assert_eq!(indices.last(), Some(&199), "the newest frame is kept");
}

/// Serves Megamind.avi over HTTP to each of the first `connections`
/// clients, then stops accepting: a stream that ends after one play.
fn serve_video(connections: usize) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let video = std::fs::read(MEGAMIND).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: video/x-msvideo\r\nContent-Length: {}\r\n\r\n",
                video.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|_| stream.write_all(&video));
        }
    });
    port
}

/// A stream that ends is a live source that dropped: it is reopened, and
/// the reopening is counted.
#[test]
fn a_stream_that_ends_is_reopened_and_counted() {
    let port = serve_video(20);
    let spec = format!(
        "version: 1\nnodes:\n  cam:\n    type: camera\n    source: http://127.0.0.1:{port}/Megamind.avi\n    reconnect_ms: 100\n    max_frames: 300\n  out:\n    type: collect\n    key: stream\n    inputs: [{{from: cam, overflow: block}}]\n"
    );
    let (report, got, metrics) = run_counted(&spec, "stream");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        got.iter().map(frame_index).collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
    assert!(
        metrics.node("cam").snapshot().errors >= 1,
        "the reopening is counted"
    );
}
