//! What a message carries: encoded bytes, or a typed value that some node
//! types exchange and the engine never looks into.
//!
//! The set of payload kinds is open. The engine itself only knows bytes; a
//! node crate declares its own kinds (decoded images, say) as
//! [`PayloadKind`] constants and its values by implementing
//! [`PayloadValue`]. Validation matches outputs to inputs by kind; nothing in
//! the engine matches on what a kind is.
//!
//! Why `Any` behind an `Arc` rather than a generic message type or an enum:
//! an enum has to name every kind, so each new kind would be an engine
//! change; a generic `Message<T>` would make every edge, queue and node
//! signature generic over a type the engine does not care about, and a
//! graph mixes kinds anyway. A reference-counted `dyn Any` keeps a message
//! one concrete type, makes a fan-out one reference count whatever the value
//! holds, and lets the crate that owns a type get it back, checked, with
//! [`Payload::get`]. The price is a downcast where a node reads its input,
//! which is cheap next to any work done on the value.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

/// The kind of payload a port carries; validation matches outputs to inputs
/// by it. A kind is its name (how errors, `flowrun nodes` and `print` spell
/// it) plus what the engine should know about moving it. Declare each kind
/// once, as a constant of the crate that owns its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayloadKind {
    name: &'static str,
    queue_capacity: Option<usize>,
}

impl PayloadKind {
    /// Encoded bytes: an image file, an MQTT payload, an object. The one kind
    /// the engine knows, because it is the one every system outside the
    /// graph speaks.
    ///
    /// Spelled like the variant of the closed enum this type replaced, so
    /// that code written against it (`PayloadKind::Bytes`) still reads and
    /// compiles the same.
    #[allow(non_upper_case_globals)]
    pub const Bytes: PayloadKind = PayloadKind::new("bytes");

    /// A kind named `name` (plural, lower case: "bytes", "images").
    pub const fn new(name: &'static str) -> Self {
        PayloadKind {
            name,
            queue_capacity: None,
        }
    }

    /// The kind, with inputs fed by it holding `capacity` messages unless the
    /// spec says otherwise: for values so large that a deep queue of them is
    /// memory and latency, not throughput.
    pub const fn with_queue_capacity(self, capacity: usize) -> Self {
        PayloadKind {
            queue_capacity: Some(capacity),
            ..self
        }
    }

    pub fn name(self) -> &'static str {
        self.name
    }

    /// The default capacity of an input fed this kind, if it has its own
    /// (see [`PayloadKind::with_queue_capacity`]).
    pub fn queue_capacity(self) -> Option<usize> {
        self.queue_capacity
    }
}

impl fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Serialize for PayloadKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name)
    }
}

/// A value that travels as a typed payload. Implemented by the node crate
/// that owns the type, which also declares its [`PayloadKind`].
pub trait PayloadValue: Any + Send + Sync {
    /// The kind every value of this type is.
    const KIND: PayloadKind;

    /// Size of the value's data in bytes, for counts and `print`'s `size`.
    fn size(&self) -> usize;
}

/// What the engine keeps of a [`PayloadValue`]: object-safe (a trait with
/// an associated constant is not), with the `Any` views a downcast needs.
trait Erased: Send + Sync {
    fn size(&self) -> usize;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: PayloadValue> Erased for T {
    fn size(&self) -> usize {
        PayloadValue::size(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// A typed value the engine carries without interpreting it. Cloning it
/// clones a reference, never the value.
#[derive(Clone)]
pub struct TypedPayload {
    kind: PayloadKind,
    value: Arc<dyn Erased>,
}

impl TypedPayload {
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    pub fn size(&self) -> usize {
        self.value.size()
    }
}

impl fmt::Debug for TypedPayload {
    /// The kind and size only: the engine cannot see into the value, and its
    /// data (megabytes of pixels, say) is no use in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedPayload")
            .field("kind", &self.kind.name)
            .field("size", &self.size())
            .finish()
    }
}

impl PartialEq for TypedPayload {
    /// Two typed payloads are equal when they share one value (a fan-out's
    /// copies): the engine cannot compare what it cannot see.
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && Arc::ptr_eq(&self.value, &other.value)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Bytes(Bytes),
    /// A value of a kind some node crate declared.
    Typed(TypedPayload),
}

impl Payload {
    /// A payload holding `value`, of kind `T::KIND`.
    pub fn typed<T: PayloadValue>(value: T) -> Payload {
        Payload::Typed(TypedPayload {
            kind: T::KIND,
            value: Arc::new(value),
        })
    }

    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Bytes(_) => PayloadKind::Bytes,
            Payload::Typed(typed) => typed.kind,
        }
    }

    /// The value, if this payload holds a `T`.
    pub fn get<T: PayloadValue>(&self) -> Option<&T> {
        match self {
            Payload::Typed(typed) => typed.value.as_any().downcast_ref(),
            Payload::Bytes(_) => None,
        }
    }

    /// The value to change, if this payload holds a `T`: in place when this
    /// message is its only holder, else on a copy that replaces it here, so
    /// that other messages sharing the value never see the change.
    pub fn get_mut<T: PayloadValue + Clone>(&mut self) -> Option<&mut T> {
        let Payload::Typed(typed) = self else {
            return None;
        };
        if Arc::get_mut(&mut typed.value).is_none() {
            let copy: T = typed.value.as_any().downcast_ref::<T>()?.clone();
            typed.value = Arc::new(copy);
        }
        Arc::get_mut(&mut typed.value)?.as_any_mut().downcast_mut()
    }

    /// Size of the payload's data in bytes.
    pub fn len(&self) -> usize {
        match self {
            Payload::Bytes(b) => b.len(),
            Payload::Typed(typed) => typed.size(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind declared outside the engine, as a node crate would.
    #[derive(Debug, Clone, PartialEq)]
    struct Reading(Vec<u8>);

    impl PayloadValue for Reading {
        const KIND: PayloadKind = PayloadKind::new("readings").with_queue_capacity(2);
        fn size(&self) -> usize {
            self.0.len()
        }
    }

    #[test]
    fn a_kind_prints_and_serializes_as_its_name() {
        assert_eq!(PayloadKind::Bytes.to_string(), "bytes");
        assert_eq!(Reading::KIND.to_string(), "readings");
        assert_eq!(
            serde_json::to_value(Reading::KIND).unwrap(),
            serde_json::json!("readings")
        );
        assert_eq!(Reading::KIND.queue_capacity(), Some(2));
        assert_eq!(PayloadKind::Bytes.queue_capacity(), None);
    }

    #[test]
    fn a_typed_payload_is_shared_on_clone_and_read_back_by_type() {
        let payload = Payload::typed(Reading(vec![1, 2, 3]));
        assert_eq!(payload.kind(), Reading::KIND);
        assert_eq!(payload.len(), 3);
        let copy = payload.clone();
        assert_eq!(copy, payload);
        assert!(std::ptr::eq(
            copy.get::<Reading>().unwrap(),
            payload.get::<Reading>().unwrap()
        ));
        assert!(Payload::Bytes(Bytes::new()).get::<Reading>().is_none());
    }

    #[test]
    fn changing_a_shared_value_changes_only_this_copy() {
        let original = Payload::typed(Reading(vec![1]));
        let mut changed = original.clone();
        changed.get_mut::<Reading>().unwrap().0.push(2);
        assert_eq!(original.get::<Reading>(), Some(&Reading(vec![1])));
        assert_eq!(changed.get::<Reading>(), Some(&Reading(vec![1, 2])));
        // Alone now: changed in place.
        let before: *const Reading = changed.get::<Reading>().unwrap();
        changed.get_mut::<Reading>().unwrap().0.push(3);
        assert!(std::ptr::eq(before, changed.get::<Reading>().unwrap()));
    }
}
