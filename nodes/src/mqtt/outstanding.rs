//! Publishes handed to rumqttc, matched to the broker's acknowledgements.
//!
//! rumqttc does not say which request became which packet id, so the items
//! handed over are kept in order: the next new packet id the event loop
//! reports belongs to the oldest item not yet numbered. A packet id already
//! known is a resend after a reconnect.

use std::collections::{HashMap, VecDeque};

use rumqttc::{Event, Incoming, Outgoing};

/// What was handed over and not yet acknowledged: messages (`mqtt_pub`,
/// `mqtt_bridge`) or spool keys (`mqtt_pub` with a spool).
pub struct Outstanding<T> {
    /// Handed over, no packet id seen yet: oldest first.
    unnumbered: VecDeque<T>,
    /// Sent with a packet id, waiting for PUBACK / PUBCOMP.
    numbered: HashMap<u16, T>,
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

    /// The item this event settles: acknowledged by the broker at QoS 1/2,
    /// written at QoS 0.
    pub fn on_event(&mut self, event: Event) -> Option<T> {
        match event {
            Event::Outgoing(Outgoing::Publish(0)) => self.unnumbered.pop_front(),
            Event::Outgoing(Outgoing::Publish(pkid)) if !self.numbered.contains_key(&pkid) => {
                if let Some(item) = self.unnumbered.pop_front() {
                    self.numbered.insert(pkid, item);
                }
                None
            }
            Event::Incoming(Incoming::PubAck(ack)) => self.numbered.remove(&ack.pkid),
            Event::Incoming(Incoming::PubComp(comp)) => self.numbered.remove(&comp.pkid),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::PubAck;

    #[test]
    fn matches_packet_ids_in_order_and_ignores_resends() {
        let mut out = Outstanding::default();
        out.push("a");
        out.push("b");
        assert_eq!(out.on_event(Event::Outgoing(Outgoing::Publish(1))), None);
        assert_eq!(out.on_event(Event::Outgoing(Outgoing::Publish(2))), None);
        // After a reconnect rumqttc resends 1: it stays "a".
        assert_eq!(out.on_event(Event::Outgoing(Outgoing::Publish(1))), None);
        assert_eq!(
            out.on_event(Event::Incoming(Incoming::PubAck(PubAck::new(2)))),
            Some("b")
        );
        assert_eq!(
            out.on_event(Event::Incoming(Incoming::PubAck(PubAck::new(1)))),
            Some("a")
        );
        assert!(out.is_empty());
    }
}
