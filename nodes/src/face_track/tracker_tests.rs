//! The tracker on made-up detections: items are `(frame, face index)`.

use std::sync::atomic::AtomicU64;

use super::*;

fn settings(emit: Emit) -> Settings {
    Settings {
        emit,
        min_frames: 3,
        max_gap: 2,
        min_iou: 0.3,
        max_tracks: 8,
        resend_every_ms: None,
    }
}

fn rect(x: i32, y: i32) -> Rect {
    Rect {
        x,
        y,
        width: 100,
        height: 100,
    }
}

type Item = (u64, usize);

/// Feeds `frames` (each a list of (x, score)), then closes; returns what
/// was emitted and what was filtered, in order.
fn feed(tracker: &mut Tracker<Item>, frames: &[Vec<(i32, f64)>]) -> Step<Item> {
    let mut all = Step::default();
    for (n, faces) in frames.iter().enumerate() {
        let faces = faces
            .iter()
            .enumerate()
            .map(|(i, &(x, score))| Face {
                rect: rect(x, 0),
                score,
                item: (n as u64, i),
            })
            .collect();
        let step = tracker.observe(n as u64, 1000 + 40 * n as i64, faces);
        all.emitted.extend(step.emitted);
        all.filtered.extend(step.filtered);
    }
    let step = tracker.close_all();
    all.emitted.extend(step.emitted);
    all.filtered.extend(step.filtered);
    all
}

fn ids() -> &'static AtomicU64 {
    Box::leak(Box::new(AtomicU64::new(0)))
}

/// One face drifting right for 6 frames, another for 2 (too short).
fn two_people() -> Vec<Vec<(i32, f64)>> {
    vec![
        vec![(0, 1.0), (500, 9.0)],
        vec![(5, 3.0), (505, 9.0)],
        vec![(10, 2.0)],
        vec![(15, 7.0)],
        vec![(20, 4.0)],
        vec![(25, 1.0)],
    ]
}

fn accounted(step: &Step<Item>) -> Vec<Item> {
    let mut items: Vec<Item> = step
        .emitted
        .iter()
        .map(|e| e.item)
        .chain(step.filtered.iter().copied())
        .collect();
    items.sort();
    items
}

#[test]
fn every_face_comes_out_once_forwarded_or_filtered_under_every_policy() {
    for emit in [Emit::All, Emit::First, Emit::Best] {
        let step = feed(&mut Tracker::new(settings(emit), ids()), &two_people());
        let mut expected: Vec<Item> = two_people()
            .iter()
            .enumerate()
            .flat_map(|(n, faces)| (0..faces.len()).map(move |i| (n as u64, i)))
            .collect();
        expected.sort();
        assert_eq!(accounted(&step), expected, "{emit:?}");
    }
}

#[test]
fn all_forwards_every_face_of_a_confirmed_track() {
    let step = feed(&mut Tracker::new(settings(Emit::All), ids()), &two_people());
    let frames: Vec<u64> = step.emitted.iter().map(|e| e.item.0).collect();
    // The short track never reaches 3 frames; the long one from its third.
    assert_eq!(frames, [2, 3, 4, 5]);
    assert!(step
        .emitted
        .iter()
        .all(|e| e.track == step.emitted[0].track));
    assert_eq!(step.emitted[3].frames, 6);
}

#[test]
fn first_sends_the_confirming_face() {
    let step = feed(
        &mut Tracker::new(settings(Emit::First), ids()),
        &two_people(),
    );
    assert_eq!(step.emitted.len(), 1);
    assert_eq!(step.emitted[0].item, (2, 0));
    assert_eq!(step.emitted[0].reason, Reason::First);
    assert_eq!(step.emitted[0].frames, 3);
}

#[test]
fn best_sends_the_highest_score_when_the_track_ends() {
    let step = feed(
        &mut Tracker::new(settings(Emit::Best), ids()),
        &two_people(),
    );
    assert_eq!(step.emitted.len(), 1, "the 2-frame track is not confirmed");
    let best = &step.emitted[0];
    assert_eq!((best.item, best.score, best.frames), ((3, 0), 7.0, 6));
    assert_eq!((best.first_ms, best.last_ms), (1000, 1200));
    assert_eq!(best.reason, Reason::Best);
}

#[test]
fn first_and_best_sends_both_unless_they_are_the_same_face() {
    let step = feed(
        &mut Tracker::new(settings(Emit::FirstAndBest), ids()),
        &two_people(),
    );
    let sent: Vec<Item> = step.emitted.iter().map(|e| e.item).collect();
    assert_eq!(sent, [(2, 0), (3, 0)]);
    let same = vec![
        vec![(0, 1.0)],
        vec![(0, 1.0)],
        vec![(0, 5.0)],
        vec![(0, 1.0)],
    ];
    let step = feed(
        &mut Tracker::new(settings(Emit::FirstAndBest), ids()),
        &same,
    );
    assert_eq!(step.emitted.len(), 1, "the first is the best: sent once");
}

#[test]
fn a_gap_longer_than_max_gap_starts_a_new_track() {
    let frames = vec![
        vec![(0, 1.0)],
        vec![(0, 1.0)],
        vec![(0, 1.0)],
        vec![],
        vec![],
        vec![(0, 1.0)], // a gap of 2 missed frames: same track
        vec![],
        vec![],
        vec![],
        vec![(0, 1.0)], // a gap of 3: a new track
    ];
    let step = feed(&mut Tracker::new(settings(Emit::All), ids()), &frames);
    let sent: Vec<(u64, u64)> = step.emitted.iter().map(|e| (e.item.0, e.track)).collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].1, sent[1].1, "frame 5 continues the track");
    assert_eq!(sent[1].0, 5);
    // Frame 9 starts a track of its own, which never reaches min_frames.
    assert!(step.filtered.contains(&(9, 0)));
}

#[test]
fn max_tracks_closes_the_least_recently_seen_track_and_flushes_it() {
    let mut s = settings(Emit::Best);
    s.max_tracks = 2;
    s.min_frames = 1;
    s.max_gap = 100;
    let frames = [vec![(0, 1.0)], vec![(300, 2.0)], vec![(600, 3.0)]];
    let mut tracker = Tracker::new(s, ids());
    let mut emitted = Vec::new();
    for (n, faces) in frames.iter().enumerate() {
        let faces = faces
            .iter()
            .map(|&(x, score)| Face {
                rect: rect(x, 0),
                score,
                item: (n as u64, 0),
            })
            .collect();
        emitted.extend(tracker.observe(n as u64, 0, faces).emitted);
        assert!(tracker.open_tracks() <= 2);
    }
    assert_eq!(emitted.len(), 1, "the first track was closed to make room");
    assert_eq!(emitted[0].item, (0, 0));
}

#[test]
fn greedy_matching_pairs_each_face_with_its_own_track() {
    let frames = vec![
        vec![(0, 1.0), (60, 1.0)],
        vec![(62, 1.0), (2, 1.0)], // listed in the other order
        vec![(4, 1.0), (64, 1.0)],
    ];
    let mut s = settings(Emit::All);
    s.min_frames = 1;
    let step = feed(&mut Tracker::new(s, ids()), &frames);
    let track_of = |item: Item| {
        step.emitted
            .iter()
            .find(|e| e.item == item)
            .map(|e| e.track)
    };
    assert_eq!(track_of((0, 0)), track_of((1, 1)));
    assert_eq!(track_of((0, 1)), track_of((1, 0)));
    assert_eq!(track_of((1, 1)), track_of((2, 0)));
    assert_ne!(track_of((0, 0)), track_of((0, 1)));
}

#[test]
fn resend_every_sends_a_long_track_again() {
    let mut s = settings(Emit::Best);
    s.resend_every_ms = Some(80);
    let frames: Vec<Vec<(i32, f64)>> = (0..6).map(|n| vec![(0, f64::from(n))]).collect();
    let step = feed(&mut Tracker::new(s, ids()), &frames);
    let reasons: Vec<Reason> = step.emitted.iter().map(|e| e.reason).collect();
    // Confirmed at frame 2 (80 ms in): the best so far is resent; again at
    // frame 4 (80 ms later); the rest is sent when the track ends.
    assert_eq!(reasons, [Reason::Resend, Reason::Resend, Reason::Best]);
    let items: Vec<Item> = step.emitted.iter().map(|e| e.item).collect();
    assert_eq!(items, [(2, 0), (4, 0), (5, 0)]);
}

#[test]
fn iou_of_boxes() {
    assert_eq!(iou(rect(0, 0), rect(0, 0)), 1.0);
    assert_eq!(iou(rect(0, 0), rect(200, 0)), 0.0);
    assert!((iou(rect(0, 0), rect(50, 0)) - 1.0 / 3.0).abs() < 1e-9);
}
