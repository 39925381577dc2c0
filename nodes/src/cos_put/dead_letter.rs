//! The `dead_letter` output port: every message `cos_put` refuses — by its
//! `accept` list or `max_object_bytes`, for a key it cannot make, or because
//! the store refuses it for good (HTTP 403) — leaves on this port with the
//! reason and the key in its metadata, so that the graph decides what
//! happens to it: an `mqtt_pub` publishes it for alerting or replay, a
//! second `cos_put` keeps it in a folder (`metadata_file: true` writes the
//! reason beside it).
//!
//! ```yaml
//! refused:
//!   type: mqtt_pub
//!   inputs: [store.dead_letter]
//!   broker: {url: "mqtt://127.0.0.1:1883"}
//!   topic: "dead/store/{dead_letter_key}"
//!   user_properties: [dead_letter_reason]
//! ```
//!
//! The message keeps its acknowledgement: its source hears the outcome once
//! the port's consumer settled it. With nothing wired to the port a refused
//! message is counted and nacked, as it always was.

use flowrun_runtime::{Message, MetaValue, OutputKind, OutputPort, PayloadKind};

use super::retry::PutError;

/// The port's name, as inputs write it: `store.dead_letter`.
pub const PORT: &str = "dead_letter";
/// The metadata key holding why the message was refused.
pub const REASON: &str = "dead_letter_reason";
/// The metadata key holding the object key it would have been stored under.
pub const KEY: &str = "dead_letter_key";

/// `cos_put`'s named outputs.
pub const PORTS: &[OutputPort] = &[OutputPort {
    name: PORT,
    kind: OutputKind::Kind(PayloadKind::Bytes),
    description: "each message it refuses (accept, max_object_bytes, a bad key, a store's refusal), with `dead_letter_reason` and `dead_letter_key` in its metadata",
}];

/// Writes why `message` was refused, and its key, into its metadata.
pub fn mark(message: &mut Message, key: &str, error: &PutError) {
    message
        .meta
        .insert(REASON.to_owned(), MetaValue::from(error.text.as_str()));
    message.meta.insert(KEY.to_owned(), MetaValue::from(key));
}
