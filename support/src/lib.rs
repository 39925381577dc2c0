//! What flowrun's integration tests share, as a crate of its own (a
//! dev-dependency, never published) instead of files included by path.
//!
//! - [`wait`]: bounded waits on an event — a port open, a message arrived,
//!   a file written, a process ended — in place of fixed sleeps.

pub mod wait;
