//! The copies a bridge expects back. With a `both` entry, what the bridge
//! publishes on one side matches its own subscription there and comes
//! straight back (MQTT 3.1.1 has no "no local" flag): the bridge notes each
//! such publish by side, topic and payload, and drops the copy when it
//! arrives, once.
//!
//! Hashing the payload (an image, kilobytes) is the costly part, so it is
//! done only for a topic on which an echo is expected.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// Per side, per topic: how many copies of each payload (by hash) are due.
#[derive(Default)]
pub(super) struct Echoes {
    expected: [HashMap<String, HashMap<u64, u32>>; 2],
}

fn payload_hash(payload: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    payload.hash(&mut hasher);
    hasher.finish()
}

impl Echoes {
    /// A copy of `payload` is due back on `side`'s `topic`.
    pub(super) fn note(&mut self, side: usize, topic: &str, payload: &[u8]) {
        *self.expected[side]
            .entry(topic.to_owned())
            .or_default()
            .entry(payload_hash(payload))
            .or_insert(0) += 1;
    }

    /// Whether this message, received on `side`, is a due copy; if so it
    /// is no longer due.
    pub(super) fn take(&mut self, side: usize, topic: &str, payload: &[u8]) -> bool {
        let Some(due) = self.expected[side].get_mut(topic) else {
            return false;
        };
        let hash = payload_hash(payload);
        let Some(count) = due.get_mut(&hash) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            due.remove(&hash);
            if due.is_empty() {
                self.expected[side].remove(topic);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Echoes;

    #[test]
    fn each_expected_copy_is_taken_once_on_its_side_and_topic() {
        let mut echoes = Echoes::default();
        echoes.note(1, "a/b", b"face");
        echoes.note(1, "a/b", b"face");
        assert!(!echoes.take(0, "a/b", b"face"), "other side");
        assert!(!echoes.take(1, "a/c", b"face"), "other topic");
        assert!(!echoes.take(1, "a/b", b"other"), "other payload");
        assert!(echoes.take(1, "a/b", b"face"));
        assert!(echoes.take(1, "a/b", b"face"));
        assert!(!echoes.take(1, "a/b", b"face"), "both copies already taken");
        assert!(echoes.expected[1].is_empty(), "nothing left behind");
    }
}
