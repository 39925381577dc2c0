//! The tracker's pure logic: which detection continues which track, and
//! which faces a policy forwards. No OpenCV and no clock here, so that it is
//! deterministic and tested on its own: the same detections always give the
//! same tracks.
//!
//! Matching is greedy on box overlap (intersection over union), best pair
//! first, ties broken by track age then detection index. A track that goes
//! unmatched for more than `max_gap` frame numbers is closed. No motion
//! model: at 24 fps a face moves a fraction of its width between frames, so
//! overlap alone carries it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::frame::Rect;
use schemars::JsonSchema;
use serde::Deserialize;

/// Which faces of a track are forwarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Emit {
    // Every face of every confirmed track, with its track metadata.
    #[default]
    All,
    // One face per track, as soon as the track is confirmed (`min_frames`).
    First,
    // One face per track when it ends: the one with the highest score.
    Best,
    // The confirming face at once, and the best when the track ends (unless
    // that is the same face).
    FirstAndBest,
}

/// How the tracker matches and what it forwards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub emit: Emit,
    /// Faces a track needs before anything of it is forwarded.
    pub min_frames: u32,
    /// Frames in a row a track may go unseen and still continue.
    pub max_gap: u64,
    /// The least box overlap (IoU) for a detection to continue a track.
    pub min_iou: f64,
    /// Open tracks at most; past it the least recently seen one is closed.
    pub max_tracks: usize,
    /// Send a confirmed track again after this long (ms of capture time).
    pub resend_every_ms: Option<i64>,
}

/// One detection handed to the tracker, with what it carries along.
pub struct Face<T> {
    pub rect: Rect,
    pub score: f64,
    pub item: T,
}

/// Why a face was forwarded: the `track_emit` metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    All,
    First,
    Best,
    Resend,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::All => "all",
            Reason::First => "first",
            Reason::Best => "best",
            Reason::Resend => "resend",
        }
    }
}

/// A face to forward, with its track's facts at that moment.
#[derive(Debug)]
pub struct Emission<T> {
    pub item: T,
    pub track: u64,
    pub frames: u32,
    pub first_ms: i64,
    pub last_ms: i64,
    pub score: f64,
    pub reason: Reason,
}

/// What one step gives back: every item handed in comes out exactly once,
/// here or in a later step, either forwarded or filtered.
#[derive(Debug)]
pub struct Step<T> {
    pub emitted: Vec<Emission<T>>,
    pub filtered: Vec<T>,
}

impl<T> Default for Step<T> {
    fn default() -> Self {
        Step {
            emitted: Vec::new(),
            filtered: Vec::new(),
        }
    }
}

struct Held<T> {
    item: T,
    score: f64,
    frame: u64,
}

struct Track<T> {
    id: u64,
    rect: Rect,
    last_frame: u64,
    first_ms: i64,
    last_ms: i64,
    frames: u32,
    /// The best face so far (since the last resend): the only one held.
    best: Option<Held<T>>,
    first_sent_frame: Option<u64>,
    last_sent_ms: Option<i64>,
}

impl<T> Track<T> {
    /// Seen in `min_frames` frames: a person followed, not a candidate.
    fn confirmed(&self, settings: &Settings) -> bool {
        self.frames >= settings.min_frames
    }
}

/// Tracks faces across frames.
pub struct Tracker<T> {
    settings: Settings,
    /// Open tracks, oldest first.
    tracks: Vec<Track<T>>,
    ids: &'static AtomicU64,
    counts: Counts,
}

/// What a tracker has seen, for the node's status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Faces handed in.
    pub faces: u64,
    /// Tracks opened.
    pub tracks: u64,
    /// Tracks that reached `min_frames`.
    pub confirmed: u64,
}

/// Box overlap: the intersection's area over the union's.
pub fn iou(a: Rect, b: Rect) -> f64 {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (a.x + a.width).min(b.x + b.width);
    let y1 = (a.y + a.height).min(b.y + b.height);
    let inter = f64::from((x1 - x0).max(0)) * f64::from((y1 - y0).max(0));
    let area = |r: Rect| f64::from(r.width.max(0)) * f64::from(r.height.max(0));
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

impl<T: Clone> Tracker<T> {
    /// `ids` numbers the tracks: shared by every instance in the process, so
    /// a track id is unique in the run, across reloads and restarts.
    pub fn new(settings: Settings, ids: &'static AtomicU64) -> Self {
        Tracker {
            settings,
            tracks: Vec::new(),
            ids,
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn open_tracks(&self) -> usize {
        self.tracks.len()
    }

    /// The open tracks that reached `min_frames`: people being followed,
    /// whose best face a flush would send (the others are still candidates).
    pub fn open_confirmed(&self) -> usize {
        self.tracks
            .iter()
            .filter(|t| t.confirmed(&self.settings))
            .count()
    }

    /// The faces detected in frame number `frame`, captured at `ms`.
    pub fn observe(&mut self, frame: u64, ms: i64, faces: Vec<Face<T>>) -> Step<T> {
        let mut step = Step::default();
        self.counts.faces += faces.len() as u64;
        self.expire(frame, &mut step);
        let matched = self.assign(&faces);
        let mut fresh = Vec::new();
        for (face, slot) in faces.into_iter().zip(matched) {
            match slot {
                Some(index) => self.update(index, frame, ms, face, &mut step),
                None => fresh.push(face),
            }
        }
        for face in fresh {
            if self.tracks.len() >= self.settings.max_tracks.max(1) {
                self.evict(&mut step);
            }
            self.counts.tracks += 1;
            self.tracks.push(Track {
                id: self.ids.fetch_add(1, Ordering::Relaxed),
                rect: face.rect,
                last_frame: frame,
                first_ms: ms,
                last_ms: ms,
                frames: 0,
                best: None,
                first_sent_frame: None,
                last_sent_ms: None,
            });
            let index = self.tracks.len() - 1;
            self.update(index, frame, ms, face, &mut step);
        }
        step
    }

    /// Closes every open track, forwarding what its policy still owes.
    pub fn close_all(&mut self) -> Step<T> {
        let mut step = Step::default();
        for track in std::mem::take(&mut self.tracks) {
            self.close(track, &mut step);
        }
        step
    }

    fn expire(&mut self, frame: u64, step: &mut Step<T>) {
        let max_gap = self.settings.max_gap;
        let (ended, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.tracks)
            .into_iter()
            .partition(|t| frame.saturating_sub(t.last_frame).saturating_sub(1) > max_gap);
        self.tracks = open;
        for track in ended {
            self.close(track, step);
        }
    }

    /// The open track each face continues, if any: greedy, best overlap first.
    fn assign(&self, faces: &[Face<T>]) -> Vec<Option<usize>> {
        let mut pairs = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            for (f, face) in faces.iter().enumerate() {
                let overlap = iou(track.rect, face.rect);
                if overlap >= self.settings.min_iou && overlap > 0.0 {
                    pairs.push((overlap, t, f));
                }
            }
        }
        // Highest overlap first; among equals the older track, then the
        // earlier face, so the result never depends on iteration accidents.
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut taken = vec![false; self.tracks.len()];
        let mut matched = vec![None; faces.len()];
        for (_, t, f) in pairs {
            if !taken[t] && matched[f].is_none() {
                taken[t] = true;
                matched[f] = Some(t);
            }
        }
        matched
    }

    fn update(&mut self, index: usize, frame: u64, ms: i64, face: Face<T>, step: &mut Step<T>) {
        let settings = self.settings;
        let track = &mut self.tracks[index];
        track.rect = face.rect;
        track.last_frame = frame;
        track.last_ms = ms;
        track.frames += 1;
        let confirmed = track.confirmed(&settings);
        let just_confirmed = track.frames == settings.min_frames.max(1);
        if just_confirmed {
            self.counts.confirmed += 1;
        }
        let resend_due = confirmed
            && settings
                .resend_every_ms
                .is_some_and(|every| ms - track.last_sent_ms.unwrap_or(track.first_ms) >= every);
        match settings.emit {
            Emit::All if confirmed => emit(track, face.item, face.score, Reason::All, step),
            Emit::All => step.filtered.push(face.item),
            Emit::First if just_confirmed => {
                track.first_sent_frame = Some(frame);
                emit(track, face.item, face.score, Reason::First, step);
            }
            Emit::First if resend_due => emit(track, face.item, face.score, Reason::Resend, step),
            Emit::First => step.filtered.push(face.item),
            Emit::Best | Emit::FirstAndBest => {
                if settings.emit == Emit::FirstAndBest && just_confirmed {
                    track.first_sent_frame = Some(frame);
                    emit(track, face.item.clone(), face.score, Reason::First, step);
                }
                offer(track, face, frame, step);
                if resend_due && track.first_sent_frame != Some(frame) {
                    if let Some(held) = track.best.take() {
                        emit(track, held.item, held.score, Reason::Resend, step);
                    }
                }
            }
        }
    }

    /// Closes the least recently seen track (the oldest among equals).
    fn evict(&mut self, step: &mut Step<T>) {
        let oldest = self
            .tracks
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| (t.last_frame, t.id))
            .map(|(i, _)| i);
        if let Some(index) = oldest {
            let track = self.tracks.remove(index);
            self.close(track, step);
        }
    }

    fn close(&self, mut track: Track<T>, step: &mut Step<T>) {
        let Some(held) = track.best.take() else {
            return;
        };
        let owed = matches!(self.settings.emit, Emit::Best | Emit::FirstAndBest)
            && track.confirmed(&self.settings)
            && track.first_sent_frame != Some(held.frame);
        if owed {
            emit(&mut track, held.item, held.score, Reason::Best, step);
        } else {
            step.filtered.push(held.item);
        }
    }
}

/// Keeps `face` if it beats the held best; whichever loses is filtered.
fn offer<T>(track: &mut Track<T>, face: Face<T>, frame: u64, step: &mut Step<T>) {
    match &track.best {
        Some(held) if held.score >= face.score => step.filtered.push(face.item),
        _ => {
            let previous = track.best.replace(Held {
                item: face.item,
                score: face.score,
                frame,
            });
            if let Some(previous) = previous {
                step.filtered.push(previous.item);
            }
        }
    }
}

fn emit<T>(track: &mut Track<T>, item: T, score: f64, reason: Reason, step: &mut Step<T>) {
    track.last_sent_ms = Some(track.last_ms);
    step.emitted.push(Emission {
        item,
        track: track.id,
        frames: track.frames,
        first_ms: track.first_ms,
        last_ms: track.last_ms,
        score,
        reason,
    });
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
