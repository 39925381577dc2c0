//! MQTT 3.1.1 through rumqttc's default client.

use bytes::Bytes;
use rumqttc::{
    ConnectionError, Event as RawEvent, Incoming, LastWill, MqttOptions, Outgoing,
    SubscribeReasonCode,
};

use super::{
    describe, AckToken, Event, Failure, Polled, Publish, Received, Settings, SubscribeRefused, Will,
};
use crate::mqtt::connection::Protocol;

/// What 3.1.1 alone is told; [`super::Options::new`] adds the rest.
pub(super) fn options(s: &Settings) -> MqttOptions {
    let mut options = MqttOptions::new(s.client_id.clone(), s.host.clone(), s.port);
    options
        .set_keep_alive(s.keepalive)
        .set_clean_session(s.clean_session)
        .set_max_packet_size(s.max_packet_bytes, s.max_packet_bytes)
        .set_inflight(s.inflight);
    options
}

/// What rumqttc's 3.1.1 client publishes: topic, QoS, retain flag and
/// payload (3.1.1 has no user properties).
pub(super) fn parts(publish: Publish) -> (String, rumqttc::QoS, bool, Bytes) {
    (
        publish.topic,
        publish.qos.into(),
        publish.retain,
        publish.payload,
    )
}

pub(super) fn will(will: Will) -> LastWill {
    LastWill::new(will.topic, will.payload, will.qos.into(), will.retain)
}

/// The next step; `connecting`: no CONNACK came yet on this connection.
pub(super) async fn poll(
    eventloop: &mut rumqttc::EventLoop,
    connecting: bool,
) -> Result<Polled, Failure> {
    let event = eventloop.poll().await.map_err(|error| {
        let (reason, cause) = describe(&error, connecting);
        Failure::new(reason, cause)
    })?;
    Ok(match event {
        RawEvent::Incoming(Incoming::ConnAck(ack)) => Polled::Connected {
            session_present: ack.session_present,
            protocol: Protocol::V311,
        },
        RawEvent::Incoming(Incoming::Publish(p)) => {
            let qos = p.qos.into();
            Polled::Event(Event::Received(Box::new(Received {
                topic: p.topic,
                payload: p.payload,
                qos,
                retain: p.retain,
                dup: p.dup,
                user_properties: Vec::new(),
                ack: AckToken { qos, pkid: p.pkid },
            })))
        }
        RawEvent::Incoming(Incoming::PubAck(ack)) => Polled::Event(Event::Acked { pkid: ack.pkid }),
        RawEvent::Incoming(Incoming::PubComp(comp)) => {
            Polled::Event(Event::Acked { pkid: comp.pkid })
        }
        RawEvent::Incoming(Incoming::SubAck(ack)) => Polled::Event(Event::Subscribed(
            ack.return_codes
                .iter()
                .map(|code| match code {
                    SubscribeReasonCode::Success(qos) => Ok((*qos).into()),
                    SubscribeReasonCode::Failure => Err(SubscribeRefused::Failure),
                })
                .collect(),
        )),
        RawEvent::Outgoing(Outgoing::Publish(pkid)) => Polled::Event(Event::Sent { pkid }),
        _ => Polled::Nothing,
    })
}

/// A connection error in words a user can act on, and its kind.
fn describe(error: &ConnectionError, connecting: bool) -> (String, super::Cause) {
    match error {
        ConnectionError::ConnectionRefused(code) => describe::refused_v3(*code),
        ConnectionError::Io(io) => describe::io(io, connecting, false),
        ConnectionError::Tls(tls) => describe::tls(tls),
        ConnectionError::NetworkTimeout => describe::timeout(false),
        ConnectionError::NotConnAck(packet) => (
            format!("the broker answered the CONNECT with {packet:?}, not a CONNACK"),
            super::Cause::ClosedBeforeConnAck,
        ),
        ConnectionError::MqttState(rumqttc::StateError::AwaitPingResp) => {
            (describe::SILENT.to_owned(), super::Cause::Other)
        }
        // Reading and writing on an open connection fail inside rumqttc's
        // state, not as its connect-time `Io`: the same words for both.
        ConnectionError::MqttState(rumqttc::StateError::Io(io)) => {
            describe::io(io, connecting, false)
        }
        ConnectionError::MqttState(rumqttc::StateError::Unsolicited(pkid)) => {
            (describe::unsolicited(*pkid), super::Cause::Other)
        }
        ConnectionError::MqttState(rumqttc::StateError::Deserialization(e)) => {
            (describe::malformed(e), super::Cause::Other)
        }
        ConnectionError::FlushTimeout => (
            "the broker took no data for a while: writing to it timed out".to_owned(),
            super::Cause::Other,
        ),
        other => (other.to_string(), super::Cause::Other),
    }
}
