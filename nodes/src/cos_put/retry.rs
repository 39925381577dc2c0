//! How a failed put is judged, and how long to wait before the next try.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

/// What a failure means for the message that met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// May pass by itself (connection refused, timeout, 5xx, throttling):
    /// try again later, keeping the message unacknowledged meanwhile.
    Transient,
    /// The store refuses every message (bad credentials, no such bucket):
    /// retrying cannot help until the spec or the store is fixed, but the
    /// message itself is fine, so its source should keep it.
    Store,
    /// This message can never be stored (invalid key, too large).
    Message,
}

/// A failed put: its kind and a sentence naming bucket (or root) and key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{text}")]
pub struct PutError {
    pub failure: Failure,
    pub text: String,
}

impl PutError {
    pub fn new(failure: Failure, text: impl Into<String>) -> Self {
        PutError {
            failure,
            text: text.into(),
        }
    }
}

/// Retry timing for transient failures.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// First wait after a transient failure, in milliseconds. Default 100.
    #[serde(default = "default_initial_ms")]
    pub initial_ms: u64,
    /// The wait doubles after each failure up to this many milliseconds.
    /// Default 5000.
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
    /// Give a message up (fail it back to its source for redelivery) after
    /// retrying it this many seconds. Leave it out to retry until the node
    /// stops, which is what keeps QoS 1 messages safe through an outage.
    #[serde(default)]
    pub give_up_after_s: Option<u64>,
}

fn default_initial_ms() -> u64 {
    100
}

fn default_max_ms() -> u64 {
    5000
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_ms: default_initial_ms(),
            max_ms: default_max_ms(),
            give_up_after_s: None,
        }
    }
}

impl RetryConfig {
    /// The wait before try number `attempt + 1` (after `attempt` failures,
    /// from 1): exponential, capped, with "equal jitter" — half fixed, half
    /// random — so that many puts failing together do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(32);
        let full = self
            .initial_ms
            .saturating_mul(1u64 << exponent)
            .min(self.max_ms.max(1));
        let half = full / 2;
        Duration::from_millis(half + fastrand::u64(0..=full - half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let retry = RetryConfig::default();
        for _ in 0..100 {
            let first = retry.backoff(1).as_millis();
            assert!((50..=100).contains(&first), "{first}");
            let third = retry.backoff(3).as_millis();
            assert!((200..=400).contains(&third), "{third}");
            let late = retry.backoff(40).as_millis();
            assert!((2500..=5000).contains(&late), "{late}");
        }
    }
}
