//! Bounded waits. A test that needs something to have happened asks for it
//! again and again until it has, or a limit passes: never a fixed sleep,
//! which is either too short on a loaded machine or wastes time on an idle
//! one.
//!
//! ```
//! use std::time::Duration;
//! use flowrun_test_support::wait::{at_most, until};
//!
//! let start = std::time::Instant::now();
//! until(Duration::from_secs(5), "50 ms to pass", || start.elapsed() >= Duration::from_millis(50));
//! let answer = at_most(Duration::from_secs(1)).poll(|| Some(42));
//! assert_eq!(answer, Some(42));
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is asked again unless [`Wait::every`] says otherwise.
pub const POLL: Duration = Duration::from_millis(20);

/// A wait of at most `limit`, asking every `every`.
#[derive(Debug, Clone, Copy)]
#[must_use = "a wait does nothing until polled"]
pub struct Wait {
    limit: Duration,
    every: Duration,
}

/// A wait of at most `limit`, asking every [`POLL`].
pub fn at_most(limit: Duration) -> Wait {
    Wait { limit, every: POLL }
}

impl Wait {
    /// Asks every `every` instead: for a check that costs (a LIST, a
    /// `docker inspect`) or that must not be asked too often.
    pub fn every(self, every: Duration) -> Wait {
        Wait { every, ..self }
    }

    /// Blocks until `check` gives a value, asking every `every`; `None`
    /// once `limit` passed.
    pub fn poll<T>(self, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + self.limit;
        loop {
            if let Some(value) = check() {
                return Some(value);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(self.every);
        }
    }

    /// Blocks until `done` holds; whether it did within `limit`.
    pub fn until(self, mut done: impl FnMut() -> bool) -> bool {
        self.poll(|| done().then_some(())).is_some()
    }

    /// Awaits `check()` again and again until it gives a value; `None` once
    /// `limit` passed. For a check that is itself async (an HTTP request).
    pub async fn poll_async<T, F>(self, mut check: impl FnMut() -> F) -> Option<T>
    where
        F: Future<Output = Option<T>>,
    {
        // tokio's clock, so that a test with the clock paused waits in its time.
        let deadline = tokio::time::Instant::now() + self.limit;
        loop {
            if let Some(value) = check().await {
                return Some(value);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(self.every).await;
        }
    }

    /// Waits, without blocking the runtime, until `done` holds; whether it
    /// did within `limit`.
    pub async fn until_async(self, mut done: impl FnMut() -> bool) -> bool {
        self.poll_async(|| std::future::ready(done().then_some(())))
            .await
            .is_some()
    }
}

/// Blocks until `done` holds; panics naming `what` after `limit`.
pub fn until(limit: Duration, what: &str, done: impl FnMut() -> bool) {
    assert!(
        at_most(limit).until(done),
        "timed out after {limit:?}: {what}"
    );
}

/// Waits until `done` holds; panics naming `what` after `limit`.
pub async fn eventually(limit: Duration, what: &str, done: impl FnMut() -> bool) {
    assert!(
        at_most(limit).until_async(done).await,
        "timed out after {limit:?}: {what}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_after_the_limit() {
        let start = Instant::now();
        assert!(!at_most(Duration::from_millis(60)).until(|| false));
        assert!(start.elapsed() >= Duration::from_millis(60));
    }

    #[tokio::test]
    async fn awaits_an_async_check() {
        let mut asked = 0;
        let found = at_most(Duration::from_secs(5))
            .every(Duration::from_millis(1))
            .poll_async(|| {
                asked += 1;
                let now = asked;
                async move { (now == 3).then_some(now) }
            })
            .await;
        assert_eq!(found, Some(3));
    }
}
