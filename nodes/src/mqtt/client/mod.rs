//! One MQTT client for both protocol versions, so that the nodes are written
//! once: rumqttc has a separate client for 3.1.1 ([`v3`]) and for 5
//! ([`v5`]); this module hides which one runs behind flowrun's own types.
//!
//! - [`Options`]: connection options made from a `broker:` config;
//! - [`Client`]: publish, subscribe, acknowledge a received message;
//! - [`EventLoop`]: yields [`Polled`] items (connected, [`Event`]s) or a
//!   [`Failure`] that ends the connection.

mod v3;
mod v5;

use bytes::Bytes;

use super::Qos;

/// Everything a connection needs, whatever the protocol version.
pub(crate) struct Settings {
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub keepalive: std::time::Duration,
    pub clean_session: bool,
    pub max_packet_bytes: usize,
    pub inflight: u16,
    pub credentials: Option<(String, String)>,
    pub transport: Option<rumqttc::Transport>,
    pub will: Option<Will>,
}

/// A last will.
#[derive(Debug, Clone)]
pub struct Will {
    pub topic: String,
    pub payload: Bytes,
    pub qos: Qos,
    pub retain: bool,
}

/// Connection options for either protocol version.
#[derive(Clone)]
pub enum Options {
    V3(Box<rumqttc::MqttOptions>),
    V5(Box<rumqttc::v5::MqttOptions>),
}

impl Options {
    pub(crate) fn new(settings: Settings, v5: bool) -> Options {
        if v5 {
            Options::V5(Box::new(v5::options(settings)))
        } else {
            Options::V3(Box::new(v3::options(settings)))
        }
    }

    /// Received QoS 1/2 messages are acknowledged only by [`Client::try_ack`].
    pub fn set_manual_acks(&mut self, manual: bool) -> &mut Self {
        match self {
            Options::V3(o) => {
                o.set_manual_acks(manual);
            }
            Options::V5(o) => {
                o.set_manual_acks(manual);
            }
        }
        self
    }

    pub fn set_last_will(&mut self, will: Will) -> &mut Self {
        match self {
            Options::V3(o) => {
                o.set_last_will(v3::will(will));
            }
            Options::V5(o) => {
                o.set_last_will(v5::will(will));
            }
        }
        self
    }

    /// MQTT 5: how many QoS 1/2 messages the broker may send before this
    /// client acknowledged them. 3.1.1 has no such setting (the broker's
    /// own `max_inflight_messages` applies).
    pub fn set_receive_maximum(&mut self, most: u16) -> &mut Self {
        if let Options::V5(o) = self {
            o.set_receive_maximum(Some(most.max(1)));
        }
        self
    }

    /// The largest packet taken from the broker, beside `outgoing` for the
    /// largest sent (over MQTT 5 the first is also told to the broker).
    pub fn set_max_packet_sizes(&mut self, incoming: usize, outgoing: usize) -> &mut Self {
        match self {
            Options::V3(o) => {
                o.set_max_packet_size(incoming, outgoing);
            }
            Options::V5(o) => {
                o.set_max_packet_size(Some(u32::try_from(incoming).unwrap_or(u32::MAX)));
            }
        }
        self
    }

    /// A client and the event loop that must be polled for it to work;
    /// `requests` bounds the requests waiting for the event loop.
    pub fn start(self, requests: usize) -> (Client, EventLoop) {
        match self {
            Options::V3(o) => {
                let (client, eventloop) = rumqttc::AsyncClient::new(*o, requests);
                (Client::V3(client), EventLoop::V3(Box::new(eventloop)))
            }
            Options::V5(o) => {
                let (client, eventloop) = rumqttc::v5::AsyncClient::new(*o, requests);
                (Client::V5(client), EventLoop::V5(v5::Loop::new(eventloop)))
            }
        }
    }
}

/// A message to publish.
#[derive(Debug, Clone)]
pub struct Publish {
    pub topic: String,
    pub payload: Bytes,
    pub qos: Qos,
    pub retain: bool,
    /// MQTT 5 user properties; not sent over 3.1.1.
    pub user_properties: Vec<(String, String)>,
}

/// What acknowledging a received message takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckToken {
    pub qos: Qos,
    pub pkid: u16,
}

/// A message the broker delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub topic: String,
    pub payload: Bytes,
    pub qos: Qos,
    pub retain: bool,
    /// The broker is delivering it again (MQTT's DUP flag).
    pub dup: bool,
    /// MQTT 5 user properties, in the order sent; empty over 3.1.1.
    pub user_properties: Vec<(String, String)>,
    pub ack: AckToken,
}

/// What happened on a connection, in flowrun's terms.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A publish was written with this packet id; 0 at QoS 0, where being
    /// written is all there is to wait for.
    Sent { pkid: u16 },
    /// The broker took the publish with this packet id (PUBACK at QoS 1,
    /// PUBCOMP at QoS 2).
    Acked { pkid: u16 },
    /// The broker took the publish with this packet id but no subscriber
    /// matched its topic (MQTT 5 reason code 0x10 on the PUBACK / PUBREC):
    /// it reached no one.
    Unheard { pkid: u16 },
    /// The broker refused the publish with this packet id (an MQTT 5
    /// reason code ≥ 0x80: not authorized, quota exceeded, …).
    Refused { pkid: u16, reason: String },
    /// The oldest publish not yet sent is larger than the broker accepts
    /// (the maximum packet size of its MQTT 5 CONNACK): the client dropped
    /// it without a packet id.
    TooLarge { reason: String },
    /// A message arrived.
    Received(Box<Received>),
    /// The answer to a subscribe: per filter, the QoS granted or why not.
    Subscribed(Vec<Result<Qos, String>>),
}

/// One step of the event loop.
#[derive(Debug)]
pub enum Polled {
    Connected {
        session_present: bool,
    },
    Event(Event),
    /// Pings, acknowledgements sent: nothing a node acts on.
    Nothing,
}

/// Why the connection ended, in words a user can act on. `refused` lists
/// publishes the broker refused with it (rumqttc 0.24 ends an MQTT 5
/// connection on a failure reason code instead of reporting it).
#[derive(Debug)]
pub struct Failure {
    pub reason: String,
    pub refused: Vec<Event>,
}

/// A request the client could not queue (the event loop is gone or full).
#[derive(Debug, thiserror::Error)]
#[error("the MQTT client cannot take the request: {0}")]
pub struct ClientError(String);

/// A handle to send requests with; cheap to clone.
#[derive(Clone)]
pub enum Client {
    V3(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// How a subscription takes what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribing {
    /// As any client does.
    Plainly,
    /// As a bridge, over MQTT 5 ("no local" and "retain as published"):
    /// not what this same connection publishes, and each message's retain
    /// flag as its publisher set it, so that a retained message stays
    /// retained where the bridge publishes it. MQTT 3.1.1 has neither
    /// flag: there it is [`Subscribing::Plainly`].
    AsBridge,
}

impl Client {
    /// Queues a publish without waiting.
    pub fn try_publish(&self, publish: Publish) -> Result<(), ClientError> {
        match self {
            Client::V3(c) => c
                .try_publish(
                    publish.topic,
                    publish.qos.into(),
                    publish.retain,
                    publish.payload,
                )
                .map_err(|e| ClientError(e.to_string())),
            Client::V5(c) => v5::try_publish(c, publish),
        }
    }

    /// Queues a publish, waiting for room.
    pub async fn publish(&self, publish: Publish) -> Result<(), ClientError> {
        match self {
            Client::V3(c) => c
                .publish(
                    publish.topic,
                    publish.qos.into(),
                    publish.retain,
                    publish.payload,
                )
                .await
                .map_err(|e| ClientError(e.to_string())),
            Client::V5(c) => v5::publish(c, publish).await,
        }
    }

    /// Subscribes to `(filter, qos)` pairs in one SUBSCRIBE.
    pub fn try_subscribe(
        &self,
        filters: &[(String, Qos)],
        how: Subscribing,
    ) -> Result<(), ClientError> {
        match self {
            Client::V3(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|(f, q)| rumqttc::SubscribeFilter::new(f.clone(), (*q).into())),
                )
                .map_err(|e| ClientError(e.to_string())),
            Client::V5(c) => v5::try_subscribe(c, filters, how),
        }
    }

    /// Unsubscribes from each filter (one UNSUBSCRIBE each, as rumqttc sends them).
    pub fn try_unsubscribe(&self, filters: &[String]) -> Result<(), ClientError> {
        for filter in filters {
            match self {
                Client::V3(c) => c
                    .try_unsubscribe(filter.clone())
                    .map_err(|e| ClientError(e.to_string()))?,
                Client::V5(c) => c
                    .try_unsubscribe(filter.clone())
                    .map_err(|e| ClientError(e.to_string()))?,
            }
        }
        Ok(())
    }

    /// Queues the acknowledgement of a received message (with manual acks).
    pub fn try_ack(&self, token: AckToken) -> Result<(), ClientError> {
        match self {
            Client::V3(c) => {
                let mut publish = rumqttc::Publish::new("", token.qos.into(), Vec::new());
                publish.pkid = token.pkid;
                c.try_ack(&publish).map_err(|e| ClientError(e.to_string()))
            }
            Client::V5(c) => v5::try_ack(c, token),
        }
    }

    /// Asks for a clean DISCONNECT.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        match self {
            Client::V3(c) => c.disconnect().await.map_err(|e| ClientError(e.to_string())),
            Client::V5(c) => c.disconnect().await.map_err(|e| ClientError(e.to_string())),
        }
    }
}

/// The event loop of either version; must be polled continuously.
pub enum EventLoop {
    V3(Box<rumqttc::EventLoop>),
    V5(Box<v5::Loop>),
}

impl EventLoop {
    /// The next step; after a [`Failure`], polling again reconnects.
    pub async fn poll(&mut self) -> Result<Polled, Failure> {
        match self {
            EventLoop::V3(l) => v3::poll(l).await,
            EventLoop::V5(l) => l.poll().await,
        }
    }

    /// Drops the network connection; unacknowledged publishes are resent
    /// on the next connection.
    pub fn clean(&mut self) {
        match self {
            EventLoop::V3(l) => l.clean(),
            EventLoop::V5(l) => l.clean(),
        }
    }
}

const BAD_PASSWORD: &str = "the broker refused the connection: bad user name or password (check `username` and `password`)";
const NOT_AUTHORIZED: &str =
    "the broker refused the connection: not authorized (check `username` and `password`)";
const BAD_CLIENT_ID: &str =
    "the broker refused the connection: client id rejected (check `client_id`)";

fn describe_io(io: &std::io::Error) -> String {
    if io.kind() == std::io::ErrorKind::ConnectionRefused {
        "nothing listens at the broker address (connection refused)".into()
    } else {
        format!("I/O: {io}")
    }
}

// rustls' own words ("invalid peer certificate: UnknownIssuer") do not say
// which setting to look at.
fn describe_tls(tls: &rumqttc::TlsError) -> String {
    format!(
        "TLS handshake failed: {tls} (check `tls.ca_file`: the CA that signed the broker's certificate; and `tls.cert_file`/`key_file` if the broker requires a client certificate)"
    )
}

#[cfg(test)]
mod tests {
    use crate::mqtt::connection::{BrokerConfig, Protocol};

    use super::Options;

    #[test]
    fn v5_options_carry_the_connect_properties() {
        let mut config = BrokerConfig::new("mqtt://localhost");
        config.protocol = Protocol::V5;
        config.max_packet_bytes = 65536;
        let mut options = config
            .options("node", |p| std::path::PathBuf::from(p))
            .unwrap();
        options.set_receive_maximum(7);
        let Options::V5(v5) = options else {
            panic!("protocol 5 makes v5 options");
        };
        let properties = v5.connect_properties().unwrap();
        assert_eq!(properties.receive_maximum, Some(7));
        assert_eq!(properties.max_packet_size, Some(65536));
        // A persistent session by default: it must not end with the connection.
        assert_eq!(properties.session_expiry_interval, Some(u32::MAX));
    }
}
