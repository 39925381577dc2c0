//! One MQTT client for both protocol versions, so that the nodes are written
//! once: rumqttc has a separate client for 3.1.1 ([`v3`]) and for 5
//! ([`v5`]); this module hides which one runs behind flowrun's own types.
//!
//! - [`Options`]: connection options made from a `broker:` config;
//! - [`Client`]: publish, subscribe, acknowledge a received message;
//! - [`EventLoop`]: yields [`Polled`] items (connected, [`Event`]s) or a
//!   [`Failure`] that ends the connection. Under `protocol: auto` it
//!   negotiates the version on every new connection ([`eventloop`]), and
//!   the [`Client`] handle follows it.

mod describe;
mod eventloop;
mod switch;
mod v3;
mod v5;

use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;

pub use eventloop::EventLoop;

use super::connection::Protocol;
use super::Qos;

/// Everything a connection needs, whatever the protocol version.
#[derive(Clone)]
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

/// Connection options for both protocol versions: under `auto` the event
/// loop may need either, on any connection.
#[derive(Clone)]
pub struct Options {
    protocol: Protocol,
    v3: Box<rumqttc::MqttOptions>,
    v5: Box<rumqttc::v5::MqttOptions>,
}

impl Options {
    pub(crate) fn new(settings: Settings, protocol: Protocol) -> Options {
        let mut options = Options {
            protocol,
            v3: Box::new(v3::options(&settings)),
            v5: Box::new(v5::options(&settings)),
        };
        // What both versions take alike is set here, once for both.
        if let Some((user, password)) = settings.credentials {
            options.v3.set_credentials(user.clone(), password.clone());
            options.v5.set_credentials(user, password);
        }
        if let Some(transport) = settings.transport {
            options.v3.set_transport(transport.clone());
            options.v5.set_transport(transport);
        }
        if let Some(will) = settings.will {
            options.set_last_will(will);
        }
        options
    }

    /// The configured version (`Auto` included).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Received QoS 1/2 messages are acknowledged only by [`Client::try_ack`].
    pub fn set_manual_acks(&mut self, manual: bool) -> &mut Self {
        self.v3.set_manual_acks(manual);
        self.v5.set_manual_acks(manual);
        self
    }

    pub fn set_last_will(&mut self, will: Will) -> &mut Self {
        self.v3.set_last_will(v3::will(will.clone()));
        self.v5.set_last_will(v5::will(will));
        self
    }

    /// MQTT 5: how many QoS 1/2 messages the broker may send before this
    /// client acknowledged them. 3.1.1 has no such setting (the broker's
    /// own `max_inflight_messages` applies).
    pub fn set_receive_maximum(&mut self, most: u16) -> &mut Self {
        self.v5.set_receive_maximum(Some(most.max(1)));
        self
    }

    /// The largest packet taken from the broker, beside `outgoing` for the
    /// largest sent (over MQTT 5 the first is also told to the broker).
    pub fn set_max_packet_sizes(&mut self, incoming: usize, outgoing: usize) -> &mut Self {
        self.v3.set_max_packet_size(incoming, outgoing);
        self.v5
            .set_max_packet_size(Some(u32::try_from(incoming).unwrap_or(u32::MAX)));
        self
    }

    /// A client and the event loop that must be polled for it to work;
    /// `requests` bounds the requests waiting for the event loop.
    pub fn start(self, requests: usize) -> (Client, EventLoop) {
        // `auto` starts as 5: the first connection tries it first.
        let first = if self.protocol == Protocol::V311 {
            Protocol::V311
        } else {
            Protocol::V5
        };
        let (active, inner) = self.open(first, requests);
        let client = Client {
            shared: Arc::new(RwLock::new(Shared {
                generation: 0,
                active,
            })),
        };
        (
            client.clone(),
            EventLoop::new(self, requests, inner, client),
        )
    }

    /// Over TLS 1.3 a broker refuses a client certificate (or its absence)
    /// after the handshake, by closing the connection: what else a
    /// connection closed before its CONNACK may mean.
    fn tls_hint(&self) -> &'static str {
        use rumqttc::{TlsConfiguration, Transport};
        match self.v3.transport() {
            Transport::Tls(TlsConfiguration::Simple {
                client_auth: None, ..
            })
            | Transport::Tls(TlsConfiguration::Rustls(_)) => {
                "; over TLS, also what a broker that requires a client certificate does when none is sent (set `tls.cert_file` and `tls.key_file`)"
            }
            Transport::Tls(_) => {
                "; over TLS, also what a broker does with a client certificate it does not accept (check `tls.cert_file`: signed by the CA the broker trusts)"
            }
            _ => "",
        }
    }

    /// A rumqttc client and event loop of `version` (`V311` or `V5`).
    fn open(&self, version: Protocol, requests: usize) -> (Active, eventloop::Inner) {
        if version == Protocol::V5 {
            let (client, eventloop) = rumqttc::v5::AsyncClient::new((*self.v5).clone(), requests);
            (
                Active::V5(client),
                eventloop::Inner::V5(v5::Loop::new(eventloop)),
            )
        } else {
            let (client, eventloop) = rumqttc::AsyncClient::new((*self.v3).clone(), requests);
            (
                Active::V3(client),
                eventloop::Inner::V3(Box::new(eventloop)),
            )
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
    Subscribed(Vec<Result<Qos, SubscribeRefused>>),
}

/// Why the broker refused one filter of a SUBSCRIBE (its SUBACK code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeRefused {
    /// MQTT 3.1.1's one failure code (0x80), which gives no reason.
    #[error("refused")]
    Failure,
    /// An MQTT 5 reason code (≥ 0x80) and its name, as the logs have
    /// always given it (`NotAuthorized`, `QuotaExceeded`, …).
    #[error("{name}")]
    Reason { code: u8, name: &'static str },
}

/// One step of the event loop.
#[derive(Debug)]
pub enum Polled {
    Connected {
        session_present: bool,
        /// The version this connection speaks (`V311` or `V5`).
        protocol: Protocol,
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
    /// What kind of failure, for `auto` to decide whether to try 3.1.1.
    pub(crate) cause: Cause,
}

/// Failures that, on an MQTT 5 CONNECT, may mean "the broker speaks 3.1.1
/// only", and the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// CONNACK "unacceptable / unsupported protocol version" (0x01, 0x84).
    VersionRefused,
    /// The broker closed the connection, or answered something that is no
    /// CONNACK of this version, before any CONNACK: what a 3.1.1-only broker
    /// does with a CONNECT it cannot parse.
    ClosedBeforeConnAck,
    /// No CONNACK within the connect timeout.
    Timeout,
    /// TCP connection refused: nothing listens at the address (yet).
    NothingListens,
    /// Anything else: not a matter of version.
    Other,
}

impl Failure {
    fn new(reason: String, cause: Cause) -> Failure {
        Failure {
            reason,
            refused: Vec::new(),
            cause,
        }
    }
}

/// A request the client could not queue (the event loop is gone or full).
#[derive(Debug, thiserror::Error)]
#[error("the MQTT client cannot take the request: {0}")]
pub struct ClientError(String);

/// A handle to send requests with; cheap to clone. It stays valid when
/// `auto` moves the connection to the other protocol version: the event
/// loop then swaps the rumqttc client inside ([`EventLoop`]).
#[derive(Clone)]
pub struct Client {
    shared: Arc<RwLock<Shared>>,
}

/// The rumqttc client of the version the connection speaks now, and how
/// many times it was swapped (a request that raced a swap is sent again).
struct Shared {
    generation: u64,
    active: Active,
}

#[derive(Clone)]
enum Active {
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
    /// The active client and its generation. A lock is held only to copy
    /// them, never across an await: the event loop takes it to swap.
    fn current(&self) -> (u64, Active) {
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        (shared.generation, shared.active.clone())
    }

    fn generation(&self) -> u64 {
        self.current().0
    }

    /// Makes `active` the client requests go to from now on.
    fn replace(&self, active: Active) {
        let mut shared = self.shared.write().unwrap_or_else(PoisonError::into_inner);
        shared.generation += 1;
        shared.active = active;
    }

    /// Runs a request that does not wait under the lock, so that no swap
    /// happens half-way: it lands in the old client before the swap (whose
    /// requests the swap carries over) or in the new one after.
    fn now<T>(&self, request: impl FnOnce(&Active) -> T) -> T {
        let shared = self.shared.read().unwrap_or_else(PoisonError::into_inner);
        request(&shared.active)
    }

    /// Queues a publish without waiting.
    pub fn try_publish(&self, publish: Publish) -> Result<(), ClientError> {
        self.now(|active| active.try_publish(publish))
    }

    /// Queues a publish, waiting for room.
    pub async fn publish(&self, publish: Publish) -> Result<(), ClientError> {
        loop {
            let (generation, active) = self.current();
            match active.publish(publish.clone()).await {
                // The client was swapped while this waited and its event
                // loop is gone: send it through the new one.
                Err(_) if self.generation() != generation => continue,
                result => return result,
            }
        }
    }

    /// Subscribes to `(filter, qos)` pairs in one SUBSCRIBE.
    pub fn try_subscribe(
        &self,
        filters: &[(String, Qos)],
        how: Subscribing,
    ) -> Result<(), ClientError> {
        self.now(|active| active.try_subscribe(filters, how))
    }

    /// Unsubscribes from each filter.
    pub fn try_unsubscribe(&self, filters: &[String]) -> Result<(), ClientError> {
        self.now(|active| active.try_unsubscribe(filters))
    }

    /// Queues the acknowledgement of a received message (with manual acks).
    pub fn try_ack(&self, token: AckToken) -> Result<(), ClientError> {
        self.now(|active| active.try_ack(token))
    }

    /// Asks for a clean DISCONNECT.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        let (_, active) = self.current();
        match active {
            Active::V3(c) => c.disconnect().await.map_err(|e| ClientError(e.to_string())),
            Active::V5(c) => c.disconnect().await.map_err(|e| ClientError(e.to_string())),
        }
    }
}

impl Active {
    fn try_publish(&self, publish: Publish) -> Result<(), ClientError> {
        match self {
            Active::V3(c) => {
                let (topic, qos, retain, payload) = v3::parts(publish);
                c.try_publish(topic, qos, retain, payload)
                    .map_err(|e| ClientError(e.to_string()))
            }
            Active::V5(c) => v5::try_publish(c, publish),
        }
    }

    async fn publish(&self, publish: Publish) -> Result<(), ClientError> {
        match self {
            Active::V3(c) => {
                let (topic, qos, retain, payload) = v3::parts(publish);
                c.publish(topic, qos, retain, payload)
                    .await
                    .map_err(|e| ClientError(e.to_string()))
            }
            Active::V5(c) => v5::publish(c, publish).await,
        }
    }

    fn try_subscribe(
        &self,
        filters: &[(String, Qos)],
        how: Subscribing,
    ) -> Result<(), ClientError> {
        match self {
            Active::V3(c) => c
                .try_subscribe_many(
                    filters
                        .iter()
                        .map(|(f, q)| rumqttc::SubscribeFilter::new(f.clone(), (*q).into())),
                )
                .map_err(|e| ClientError(e.to_string())),
            Active::V5(c) => v5::try_subscribe(c, filters, how),
        }
    }

    /// Unsubscribes from each filter (one UNSUBSCRIBE each, as rumqttc sends them).
    fn try_unsubscribe(&self, filters: &[String]) -> Result<(), ClientError> {
        for filter in filters {
            match self {
                Active::V3(c) => c
                    .try_unsubscribe(filter.clone())
                    .map_err(|e| ClientError(e.to_string()))?,
                Active::V5(c) => c
                    .try_unsubscribe(filter.clone())
                    .map_err(|e| ClientError(e.to_string()))?,
            }
        }
        Ok(())
    }

    fn try_ack(&self, token: AckToken) -> Result<(), ClientError> {
        match self {
            Active::V3(c) => {
                let mut publish = rumqttc::Publish::new("", token.qos.into(), Vec::new());
                publish.pkid = token.pkid;
                c.try_ack(&publish).map_err(|e| ClientError(e.to_string()))
            }
            Active::V5(c) => v5::try_ack(c, token),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::mqtt::connection::{BrokerConfig, Protocol};

    #[test]
    fn v5_options_carry_the_connect_properties() {
        let mut config = BrokerConfig::new("mqtt://localhost");
        config.protocol = Protocol::V5;
        config.max_packet_bytes = 65536;
        let mut options = config
            .options("node", |p| std::path::PathBuf::from(p))
            .unwrap();
        options.set_receive_maximum(7);
        let properties = options.v5.connect_properties().unwrap();
        assert_eq!(properties.receive_maximum, Some(7));
        assert_eq!(properties.max_packet_size, Some(65536));
        // A persistent session by default: it must not end with the connection.
        assert_eq!(properties.session_expiry_interval, Some(u32::MAX));
    }
}
