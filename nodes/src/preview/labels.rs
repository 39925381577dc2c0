//! Track ids on the live frame's boxes. `face_track` sends each face it
//! follows as a message of its own (one box, its `track` id); the live
//! frames come straight from the detector, a little ahead of them. So a
//! box is labelled with the track whose latest box overlaps it most — faces
//! move little between two frames — among tracks seen in the last moments.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::frame::Rect;

use crate::face_track::tracker::iou;

/// A track not seen for this long labels nothing: it has ended.
const FORGET: Duration = Duration::from_secs(2);
/// The least overlap for a box to take a track's id: `face_track`'s default.
const MIN_IOU: f64 = crate::face_track::DEFAULT_MIN_IOU;

#[derive(Default)]
pub struct Labels {
    latest: HashMap<u64, (Rect, Instant)>,
}

impl Labels {
    /// A tracked face: track `track` was last seen at `rect`.
    pub fn note(&mut self, track: u64, rect: Rect) {
        self.latest.insert(track, (rect, Instant::now()));
    }

    /// The track id of each of `boxes`, one track per box at most, the
    /// largest overlaps first.
    pub fn label(&mut self, boxes: &[Rect]) -> Vec<Option<u64>> {
        self.latest.retain(|_, (_, seen)| seen.elapsed() < FORGET);
        let mut pairs: Vec<(f64, usize, u64)> = Vec::new();
        for (index, rect) in boxes.iter().enumerate() {
            for (track, (last, _)) in &self.latest {
                let overlap = iou(*rect, *last);
                if overlap >= MIN_IOU {
                    pairs.push((overlap, index, *track));
                }
            }
        }
        // Largest overlap first; ties by box, then track, so labels are stable.
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut labels = vec![None; boxes.len()];
        let mut taken = Vec::new();
        for (_, index, track) in pairs {
            if labels[index].is_none() && !taken.contains(&track) {
                labels[index] = Some(track);
                taken.push(track);
            }
        }
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: i32) -> Rect {
        Rect {
            x,
            y: 10,
            width: 40,
            height: 40,
        }
    }

    #[test]
    fn each_box_takes_the_track_it_overlaps_most_once() {
        let mut labels = Labels::default();
        labels.note(7, rect(0));
        labels.note(8, rect(100));
        // A box that moved a little, one far from every track, and a second
        // box near track 7 that must not take it too.
        assert_eq!(
            labels.label(&[rect(4), rect(300), rect(8), rect(102)]),
            vec![Some(7), None, None, Some(8)]
        );
    }
}
