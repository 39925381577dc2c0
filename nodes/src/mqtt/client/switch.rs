//! Requests carried from one version's event loop to the other's when
//! `auto` changes the version of a connection: publishes keep their packet
//! id and DUP flag (the broker's session knows them by it), acknowledgements
//! their packet id. What the other version cannot say is left out (MQTT 5
//! properties over 3.1.1; "no local" and "retain as published", which a
//! bridge over 3.1.1 replaces with its own echo filter). Pings are not
//! carried: the new loop sends its own.

use rumqttc::v5::mqttbytes::v5 as m5;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::Request as Request5;
use rumqttc::{QoS, Request};

fn qos_to_v3(qos: QoS5) -> QoS {
    match qos {
        QoS5::AtMostOnce => QoS::AtMostOnce,
        QoS5::AtLeastOnce => QoS::AtLeastOnce,
        QoS5::ExactlyOnce => QoS::ExactlyOnce,
    }
}

fn qos_to_v5(qos: QoS) -> QoS5 {
    match qos {
        QoS::AtMostOnce => QoS5::AtMostOnce,
        QoS::AtLeastOnce => QoS5::AtLeastOnce,
        QoS::ExactlyOnce => QoS5::ExactlyOnce,
    }
}

/// An MQTT 5 request as 3.1.1's, if 3.1.1 has it.
pub(super) fn to_v3(request: Request5) -> Option<Request> {
    Some(match request {
        Request5::Publish(p) => Request::Publish(rumqttc::Publish {
            dup: p.dup,
            qos: qos_to_v3(p.qos),
            retain: p.retain,
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            pkid: p.pkid,
            payload: p.payload,
        }),
        Request5::PubAck(a) => Request::PubAck(rumqttc::PubAck::new(a.pkid)),
        Request5::PubRec(r) => Request::PubRec(rumqttc::PubRec::new(r.pkid)),
        Request5::PubComp(c) => Request::PubComp(rumqttc::PubComp::new(c.pkid)),
        Request5::PubRel(r) => Request::PubRel(rumqttc::PubRel::new(r.pkid)),
        Request5::Subscribe(s) => {
            let mut subscribe = rumqttc::Subscribe::new_many(
                s.filters
                    .into_iter()
                    .map(|f| rumqttc::SubscribeFilter::new(f.path, qos_to_v3(f.qos))),
            );
            subscribe.pkid = s.pkid;
            Request::Subscribe(subscribe)
        }
        Request5::Unsubscribe(u) => {
            let mut unsubscribe = rumqttc::Unsubscribe::new(String::new());
            unsubscribe.topics = u.filters;
            unsubscribe.pkid = u.pkid;
            Request::Unsubscribe(unsubscribe)
        }
        Request5::Disconnect => Request::Disconnect(rumqttc::Disconnect),
        Request5::PingReq | Request5::PingResp | Request5::SubAck(_) | Request5::UnsubAck(_) => {
            return None
        }
    })
}

/// A 3.1.1 request as MQTT 5's.
pub(super) fn to_v5(request: Request) -> Option<Request5> {
    Some(match request {
        Request::Publish(p) => {
            let mut publish = m5::Publish::new(p.topic, qos_to_v5(p.qos), p.payload, None);
            publish.dup = p.dup;
            publish.retain = p.retain;
            publish.pkid = p.pkid;
            Request5::Publish(publish)
        }
        Request::PubAck(a) => Request5::PubAck(m5::PubAck::new(a.pkid, None)),
        Request::PubRec(r) => Request5::PubRec(m5::PubRec::new(r.pkid, None)),
        Request::PubComp(c) => Request5::PubComp(m5::PubComp::new(c.pkid, None)),
        Request::PubRel(r) => Request5::PubRel(m5::PubRel::new(r.pkid, None)),
        Request::Subscribe(s) => {
            let mut subscribe = m5::Subscribe::new_many(
                s.filters
                    .into_iter()
                    .map(|f| m5::Filter::new(f.path, qos_to_v5(f.qos))),
                None,
            );
            subscribe.pkid = s.pkid;
            Request5::Subscribe(subscribe)
        }
        Request::Unsubscribe(u) => {
            let mut unsubscribe = m5::Unsubscribe::new(String::new(), None);
            unsubscribe.filters = u.topics;
            unsubscribe.pkid = u.pkid;
            Request5::Unsubscribe(unsubscribe)
        }
        Request::Disconnect(_) => Request5::Disconnect,
        Request::PingReq(_) | Request::PingResp(_) | Request::SubAck(_) | Request::UnsubAck(_) => {
            return None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_keeps_its_packet_id_and_dup_flag_both_ways() {
        let mut publish = rumqttc::Publish::new("faces/a", QoS::AtLeastOnce, vec![1, 2, 3]);
        publish.pkid = 42;
        publish.dup = true;
        let Some(Request5::Publish(v5)) = to_v5(Request::Publish(publish.clone())) else {
            panic!("a publish stays a publish");
        };
        assert_eq!(
            (v5.pkid, v5.dup, &v5.topic[..]),
            (42, true, &b"faces/a"[..])
        );
        let Some(Request::Publish(back)) = to_v3(Request5::Publish(v5)) else {
            panic!("a publish stays a publish");
        };
        assert_eq!(back, publish);
        assert!(to_v3(Request5::PingReq).is_none());
    }
}
