//! Publishes handed to the client, matched to the broker's acknowledgements.
//!
//! rumqttc does not say which request became which packet id, so the items
//! handed over are kept in order: the next new packet id the event loop
//! reports belongs to the oldest item not yet numbered. A packet id already
//! known is a resend after a reconnect.

use std::collections::{HashMap, VecDeque};

use super::client::Event;

/// What was handed over and not yet acknowledged: messages (`mqtt_pub`,
/// `mqtt_bridge`) or spool keys (`mqtt_pub` with a spool).
pub struct Outstanding<T> {
    /// Handed over, no packet id seen yet: oldest first.
    unnumbered: VecDeque<T>,
    /// Sent with a packet id, waiting for PUBACK / PUBCOMP.
    numbered: HashMap<u16, T>,
}

/// How the broker settled a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Acknowledged at QoS 1/2, written at QoS 0.
    Taken,
    /// Taken, but no subscriber matched it (MQTT 5).
    Unheard,
    /// Refused, for this reason (MQTT 5).
    Refused(String),
    /// Never sent: larger than the broker accepts (MQTT 5). Sending it
    /// again would never succeed.
    TooLarge(String),
}

impl<T> Default for Outstanding<T> {
    fn default() -> Self {
        Outstanding {
            unnumbered: VecDeque::new(),
            numbered: HashMap::new(),
        }
    }
}

impl<T> Outstanding<T> {
    pub fn len(&self) -> usize {
        self.unnumbered.len() + self.numbered.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An item just handed to the client.
    pub fn push(&mut self, item: T) {
        self.unnumbered.push_back(item);
    }

    /// The item this event settles, and how.
    pub fn on_event(&mut self, event: &Event) -> Option<(T, Settled)> {
        match event {
            Event::Sent { pkid: 0 } => self
                .unnumbered
                .pop_front()
                .map(|item| (item, Settled::Taken)),
            Event::Sent { pkid } if !self.numbered.contains_key(pkid) => {
                if let Some(item) = self.unnumbered.pop_front() {
                    self.numbered.insert(*pkid, item);
                }
                None
            }
            Event::Acked { pkid } => self
                .numbered
                .remove(pkid)
                .map(|item| (item, Settled::Taken)),
            Event::Unheard { pkid } => self
                .numbered
                .remove(pkid)
                .map(|item| (item, Settled::Unheard)),
            Event::Refused { pkid, reason } => self
                .numbered
                .remove(pkid)
                .map(|item| (item, Settled::Refused(reason.clone()))),
            // rumqttc takes publishes in the order they were handed over, and
            // every one before this got its packet id already.
            Event::TooLarge { reason } => self
                .unnumbered
                .pop_front()
                .map(|item| (item, Settled::TooLarge(reason.clone()))),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_packet_ids_in_order_and_ignores_resends() {
        let mut out = Outstanding::default();
        out.push("a");
        out.push("b");
        out.push("c");
        assert_eq!(out.on_event(&Event::Sent { pkid: 1 }), None);
        assert_eq!(out.on_event(&Event::Sent { pkid: 2 }), None);
        assert_eq!(out.on_event(&Event::Sent { pkid: 3 }), None);
        // After a reconnect rumqttc resends 1: it stays "a".
        assert_eq!(out.on_event(&Event::Sent { pkid: 1 }), None);
        assert_eq!(
            out.on_event(&Event::Acked { pkid: 2 }),
            Some(("b", Settled::Taken))
        );
        assert_eq!(
            out.on_event(&Event::Acked { pkid: 1 }),
            Some(("a", Settled::Taken))
        );
        let refused = Event::Refused {
            pkid: 3,
            reason: "NotAuthorized".into(),
        };
        assert_eq!(
            out.on_event(&refused),
            Some(("c", Settled::Refused("NotAuthorized".into())))
        );
        out.push("d");
        assert_eq!(out.on_event(&Event::Sent { pkid: 4 }), None);
        assert_eq!(
            out.on_event(&Event::Unheard { pkid: 4 }),
            Some(("d", Settled::Unheard))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_publish_dropped_as_too_large_does_not_shift_the_packet_ids() {
        let mut out = Outstanding::default();
        out.push("a");
        out.push("big");
        out.push("c");
        assert_eq!(out.on_event(&Event::Sent { pkid: 1 }), None);
        let too_large = Event::TooLarge {
            reason: "over".into(),
        };
        assert_eq!(
            out.on_event(&too_large),
            Some(("big", Settled::TooLarge("over".into())))
        );
        assert_eq!(out.on_event(&Event::Sent { pkid: 2 }), None);
        assert_eq!(
            out.on_event(&Event::Acked { pkid: 2 }),
            Some(("c", Settled::Taken))
        );
        assert_eq!(
            out.on_event(&Event::Acked { pkid: 1 }),
            Some(("a", Settled::Taken))
        );
        assert!(out.is_empty());
    }
}
