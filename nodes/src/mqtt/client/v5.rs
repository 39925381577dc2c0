//! MQTT 5 through rumqttc's `v5` client.
//!
//! rumqttc 0.24 does not report a PUBACK/PUBREC whose reason code says
//! "refused" (≥ 0x80) as an event: it ends the connection with an error that
//! names no packet id. [`Loop`] therefore keeps the packet ids in flight and,
//! on such an error, names the ones that are neither resent nor
//! acknowledged: those the broker refused.
//!
//! It does pass on a PUBACK/PUBREC saying "no matching subscribers" (0x10,
//! a success code); [`Loop`] reports that publish as [`Event::Unheard`]
//! (at QoS 2 once its PUBCOMP arrives).

use std::collections::HashSet;

use rumqttc::v5::mqttbytes::v5::{
    Filter, LastWill, Packet, PubAckReason, PubRecReason, Publish as RawPublish, PublishProperties,
    SubscribeReasonCode,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{
    AsyncClient, ConnectionError, Event as RawEvent, EventLoop, MqttOptions, Request, StateError,
};
use rumqttc::Outgoing;

use super::{
    describe, AckToken, Cause, ClientError, Event, Failure, Polled, Publish, Received, Settings,
    SubscribeRefused, Subscribing, Will,
};
use crate::mqtt::connection::Protocol;
use crate::mqtt::Qos;

/// What 5 alone is told; [`super::Options::new`] adds the rest.
pub(super) fn options(s: &Settings) -> MqttOptions {
    let mut options = MqttOptions::new(s.client_id.clone(), s.host.clone(), s.port);
    let max_packet = u32::try_from(s.max_packet_bytes).unwrap_or(u32::MAX);
    options
        .set_keep_alive(s.keepalive)
        .set_clean_start(s.clean_session)
        // Sent as the CONNECT property: the broker does not send this client
        // a packet it would refuse (3.1.1 cannot say so, and the connection dies).
        .set_max_packet_size(Some(max_packet))
        .set_outgoing_inflight_upper_limit(s.inflight);
    if !s.clean_session {
        // In MQTT 5 a session ends with the connection unless it has an
        // expiry interval; u32::MAX means "never expires".
        let mut properties = options.connect_properties().unwrap_or_default();
        properties.session_expiry_interval = Some(u32::MAX);
        options.set_connect_properties(properties);
    }
    options
}

pub(super) fn will(will: Will) -> LastWill {
    LastWill::new(will.topic, will.payload, qos(will.qos), will.retain, None)
}

fn qos(qos: Qos) -> QoS {
    match qos {
        Qos::AtMostOnce => QoS::AtMostOnce,
        Qos::AtLeastOnce => QoS::AtLeastOnce,
        Qos::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn from_qos(qos: QoS) -> Qos {
    match qos {
        QoS::AtMostOnce => Qos::AtMostOnce,
        QoS::AtLeastOnce => Qos::AtLeastOnce,
        QoS::ExactlyOnce => Qos::ExactlyOnce,
    }
}

fn properties(publish: &Publish) -> Option<PublishProperties> {
    (!publish.user_properties.is_empty()).then(|| PublishProperties {
        user_properties: publish.user_properties.clone(),
        ..Default::default()
    })
}

pub(super) fn try_publish(client: &AsyncClient, publish: Publish) -> Result<(), ClientError> {
    let result = match properties(&publish) {
        Some(props) => client.try_publish_with_properties(
            publish.topic,
            qos(publish.qos),
            publish.retain,
            publish.payload,
            props,
        ),
        None => client.try_publish(
            publish.topic,
            qos(publish.qos),
            publish.retain,
            publish.payload,
        ),
    };
    result.map_err(|e| ClientError(e.to_string()))
}

pub(super) async fn publish(client: &AsyncClient, publish: Publish) -> Result<(), ClientError> {
    let result = match properties(&publish) {
        Some(props) => {
            client
                .publish_with_properties(
                    publish.topic,
                    qos(publish.qos),
                    publish.retain,
                    publish.payload,
                    props,
                )
                .await
        }
        None => {
            client
                .publish(
                    publish.topic,
                    qos(publish.qos),
                    publish.retain,
                    publish.payload,
                )
                .await
        }
    };
    result.map_err(|e| ClientError(e.to_string()))
}

pub(super) fn try_subscribe(
    client: &AsyncClient,
    filters: &[(String, Qos)],
    how: Subscribing,
) -> Result<(), ClientError> {
    let as_bridge = how == Subscribing::AsBridge;
    client
        .try_subscribe_many(filters.iter().map(|(f, q)| {
            let mut filter = Filter::new(f.clone(), qos(*q));
            filter.nolocal = as_bridge;
            filter.preserve_retain = as_bridge;
            filter
        }))
        .map_err(|e| ClientError(e.to_string()))
}

pub(super) fn try_ack(client: &AsyncClient, token: AckToken) -> Result<(), ClientError> {
    let mut publish = RawPublish::new("", qos(token.qos), Vec::new(), None);
    publish.pkid = token.pkid;
    client
        .try_ack(&publish)
        .map_err(|e| ClientError(e.to_string()))
}

/// rumqttc's v5 event loop and the packet ids of the publishes in flight.
pub struct Loop {
    inner: EventLoop,
    in_flight: HashSet<u16>,
    /// QoS 2 publishes whose PUBREC said "no matching subscribers".
    unheard: HashSet<u16>,
}

impl Loop {
    pub(super) fn new(inner: EventLoop) -> Box<Loop> {
        Box::new(Loop {
            inner,
            in_flight: HashSet::new(),
            unheard: HashSet::new(),
        })
    }

    pub(super) fn clean(&mut self) {
        self.inner.clean();
    }

    /// Requests to send on the next connection (after [`Loop::clean`]).
    pub(super) fn pending(&mut self) -> &mut std::collections::VecDeque<Request> {
        &mut self.inner.pending
    }

    /// The next step; `connecting`: no CONNACK came yet on this connection.
    pub(super) async fn poll(&mut self, connecting: bool) -> Result<Polled, Failure> {
        match self.inner.poll().await {
            Ok(event) => Ok(self.normalize(event)),
            Err(error) => {
                let refused = match &error {
                    ConnectionError::MqttState(StateError::PubAckFail { reason }) => {
                        self.refused(pub_ack_words(*reason))
                    }
                    ConnectionError::MqttState(StateError::PubRecFail { reason }) => {
                        self.refused(pub_rec_words(*reason))
                    }
                    ConnectionError::MqttState(StateError::OutgoingPacketTooLarge {
                        pkt_size,
                        max,
                    }) => vec![Event::TooLarge {
                        reason: format!(
                            "a {pkt_size}-byte publish is over the {max} bytes the broker accepts (the maximum packet size it announced): not sent"
                        ),
                    }],
                    _ => Vec::new(),
                };
                let (reason, cause) = describe(&error, connecting);
                Err(Failure {
                    reason,
                    refused,
                    cause,
                })
            }
        }
    }

    fn normalize(&mut self, event: RawEvent) -> Polled {
        match event {
            RawEvent::Incoming(Packet::ConnAck(ack)) => Polled::Connected {
                session_present: ack.session_present,
                protocol: Protocol::V5,
            },
            RawEvent::Incoming(Packet::Publish(p)) => {
                let qos = from_qos(p.qos);
                Polled::Event(Event::Received(Box::new(Received {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload,
                    qos,
                    retain: p.retain,
                    dup: p.dup,
                    user_properties: p.properties.map(|p| p.user_properties).unwrap_or_default(),
                    ack: AckToken { qos, pkid: p.pkid },
                })))
            }
            RawEvent::Incoming(Packet::PubAck(ack)) => {
                self.in_flight.remove(&ack.pkid);
                Polled::Event(if ack.reason == PubAckReason::NoMatchingSubscribers {
                    Event::Unheard { pkid: ack.pkid }
                } else {
                    Event::Acked { pkid: ack.pkid }
                })
            }
            RawEvent::Incoming(Packet::PubRec(rec)) => {
                if rec.reason == PubRecReason::NoMatchingSubscribers {
                    self.unheard.insert(rec.pkid);
                }
                Polled::Nothing
            }
            RawEvent::Incoming(Packet::PubComp(comp)) => {
                self.in_flight.remove(&comp.pkid);
                Polled::Event(if self.unheard.remove(&comp.pkid) {
                    Event::Unheard { pkid: comp.pkid }
                } else {
                    Event::Acked { pkid: comp.pkid }
                })
            }
            RawEvent::Incoming(Packet::SubAck(ack)) => Polled::Event(Event::Subscribed(
                ack.return_codes.iter().map(suback).collect(),
            )),
            RawEvent::Outgoing(Outgoing::Publish(pkid)) => {
                if pkid != 0 {
                    self.in_flight.insert(pkid);
                }
                Polled::Event(Event::Sent { pkid })
            }
            _ => Polled::Nothing,
        }
    }

    /// After a refused PUBACK/PUBREC ended the connection: the packet ids
    /// in flight that rumqttc neither kept to resend nor still has an
    /// acknowledgement queued for.
    fn refused(&mut self, reason: &str) -> Vec<Event> {
        let mut alive: HashSet<u16> = self
            .inner
            .pending
            .iter()
            .filter_map(|request| match request {
                Request::Publish(p) => Some(p.pkid),
                Request::PubRel(r) => Some(r.pkid),
                _ => None,
            })
            .collect();
        alive.extend(self.inner.state.events.iter().filter_map(|e| match e {
            RawEvent::Incoming(Packet::PubAck(a)) => Some(a.pkid),
            RawEvent::Incoming(Packet::PubComp(c)) => Some(c.pkid),
            _ => None,
        }));
        let gone: Vec<u16> = self
            .in_flight
            .iter()
            .copied()
            .filter(|pkid| !alive.contains(pkid))
            .collect();
        gone.into_iter()
            .map(|pkid| {
                self.in_flight.remove(&pkid);
                Event::Refused {
                    pkid,
                    reason: format!("the broker refused the publish: {reason}"),
                }
            })
            .collect()
    }
}

/// A connection error in words a user can act on, and its kind.
fn describe(error: &ConnectionError, connecting: bool) -> (String, Cause) {
    let text = match error {
        ConnectionError::ConnectionRefused(code) => return describe::refused_v5(*code),
        ConnectionError::Io(io) => return describe::io(io, connecting, true),
        ConnectionError::Tls(tls) => return describe::tls(tls),
        // rumqttc's one timeout: the connect (TCP, TLS, CONNACK).
        ConnectionError::Timeout(_) => return describe::timeout(true),
        ConnectionError::MqttState(StateError::AwaitPingResp) => describe::SILENT.to_owned(),
        // Reading and writing on an open connection fail inside rumqttc's
        // state, not as its connect-time `Io`: the same words for both.
        ConnectionError::MqttState(StateError::Io(io)) => {
            return describe::io(io, connecting, true)
        }
        ConnectionError::MqttState(StateError::Unsolicited(pkid)) => describe::unsolicited(*pkid),
        ConnectionError::MqttState(StateError::Deserialization(e)) => describe::malformed(e),
        ConnectionError::NotConnAck(packet) => {
            return (
                format!("the broker answered the CONNECT with {packet:?}, not a CONNACK"),
                Cause::ClosedBeforeConnAck,
            )
        }
        ConnectionError::MqttState(StateError::PubAckFail { reason }) => {
            format!(
                "the broker refused a publish: {}; reconnecting",
                pub_ack_words(*reason)
            )
        }
        ConnectionError::MqttState(StateError::PubRecFail { reason }) => {
            format!(
                "the broker refused a publish: {}; reconnecting",
                pub_rec_words(*reason)
            )
        }
        ConnectionError::MqttState(StateError::SubFail { reason }) => {
            format!("the broker refused the subscription: {reason:?}")
        }
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code,
            reason_string,
        }) => format!(
            "the broker disconnected: {reason_code:?}{}",
            reason_string
                .as_ref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default()
        ),
        other => other.to_string(),
    };
    (text, Cause::Other)
}

/// A PUBACK reason code as MQTT 5 names it, with its number, since broker
/// logs and documentation give the number.
fn pub_ack_words(reason: PubAckReason) -> &'static str {
    match reason {
        PubAckReason::Success => "success (0x00)",
        PubAckReason::NoMatchingSubscribers => "no matching subscribers (0x10)",
        PubAckReason::UnspecifiedError => "unspecified error (0x80)",
        PubAckReason::ImplementationSpecificError => "implementation specific error (0x83)",
        PubAckReason::NotAuthorized => "not authorized (0x87)",
        PubAckReason::TopicNameInvalid => "topic name invalid (0x90)",
        PubAckReason::PacketIdentifierInUse => "packet identifier in use (0x91)",
        PubAckReason::QuotaExceeded => "quota exceeded (0x97)",
        PubAckReason::PayloadFormatInvalid => "payload format invalid (0x99)",
    }
}

/// A SUBACK code: the QoS granted, or the refusal with its number and
/// rumqttc's name for it.
fn suback(code: &SubscribeReasonCode) -> Result<Qos, SubscribeRefused> {
    use SubscribeReasonCode as C;
    let (code, name) = match code {
        C::Success(qos) => return Ok(from_qos(*qos)),
        // rumqttc reads 0x80 as `Unspecified`; `Failure` is what it writes.
        C::Failure => (0x80, "Failure"),
        C::Unspecified => (0x80, "Unspecified"),
        C::ImplementationSpecific => (0x83, "ImplementationSpecific"),
        C::NotAuthorized => (0x87, "NotAuthorized"),
        C::TopicFilterInvalid => (0x8F, "TopicFilterInvalid"),
        C::PkidInUse => (0x91, "PkidInUse"),
        C::QuotaExceeded => (0x97, "QuotaExceeded"),
        C::SharedSubscriptionsNotSupported => (0x9E, "SharedSubscriptionsNotSupported"),
        C::SubscriptionIdNotSupported => (0xA1, "SubscriptionIdNotSupported"),
        C::WildcardSubscriptionsNotSupported => (0xA2, "WildcardSubscriptionsNotSupported"),
    };
    Err(SubscribeRefused::Reason { code, name })
}

/// A PUBREC reason code: the same codes as PUBACK's.
fn pub_rec_words(reason: PubRecReason) -> &'static str {
    pub_ack_words(match reason {
        PubRecReason::Success => PubAckReason::Success,
        PubRecReason::NoMatchingSubscribers => PubAckReason::NoMatchingSubscribers,
        PubRecReason::UnspecifiedError => PubAckReason::UnspecifiedError,
        PubRecReason::ImplementationSpecificError => PubAckReason::ImplementationSpecificError,
        PubRecReason::NotAuthorized => PubAckReason::NotAuthorized,
        PubRecReason::TopicNameInvalid => PubAckReason::TopicNameInvalid,
        PubRecReason::PacketIdentifierInUse => PubAckReason::PacketIdentifierInUse,
        PubRecReason::QuotaExceeded => PubAckReason::QuotaExceeded,
        PubRecReason::PayloadFormatInvalid => PubAckReason::PayloadFormatInvalid,
    })
}
