//! The event loop of a connection, and `protocol: auto`'s negotiation.
//!
//! Under `auto` every new connection (the first, and each after a
//! disconnect) is tried with MQTT 5 first. When the broker refuses it the
//! way a 3.1.1-only broker does (CONNACK "unacceptable / unsupported
//! protocol version", the connection closed before any CONNACK, or no
//! CONNACK at all), the same connection is tried again at once with 3.1.1,
//! without the reconnect backoff. A broker upgraded in place thus gets 5
//! after its restart.
//!
//! A version other than the one the loop runs is tried on a fresh rumqttc
//! event loop (a candidate). Only once the candidate is connected does it
//! replace the old loop: the [`Client`] handle is swapped to the
//! candidate's client, and what the old loop still held (publishes not
//! acknowledged, requests not yet read) is carried over ([`super::switch`]),
//! so a version switch loses nothing, and a failed try moves nothing.

use super::{describe, switch, v3, v5, Active, Cause, Client, Failure, Options, Polled};
use crate::mqtt::connection::Protocol;

/// A rumqttc event loop of one version.
pub(super) enum Inner {
    V3(Box<rumqttc::EventLoop>),
    V5(Box<v5::Loop>),
}

impl Inner {
    fn version(&self) -> Protocol {
        match self {
            Inner::V3(_) => Protocol::V311,
            Inner::V5(_) => Protocol::V5,
        }
    }

    async fn poll(&mut self, connecting: bool) -> Result<Polled, Failure> {
        match self {
            Inner::V3(l) => v3::poll(l, connecting).await,
            Inner::V5(l) => l.poll(connecting).await,
        }
    }

    fn clean(&mut self) {
        match self {
            Inner::V3(l) => l.clean(),
            Inner::V5(l) => l.clean(),
        }
    }

    /// Moves every request `from` holds into this loop's queue, first.
    fn adopt(&mut self, from: &mut Inner) {
        // Everything sent and not acknowledged, and every request still in
        // the channel, into `pending`.
        from.clean();
        match (self, from) {
            (Inner::V3(to), Inner::V3(from)) => to.pending.append(&mut from.pending),
            (Inner::V5(to), Inner::V5(from)) => to.pending().append(from.pending()),
            (Inner::V3(to), Inner::V5(from)) => to
                .pending
                .extend(from.pending().drain(..).filter_map(switch::to_v3)),
            (Inner::V5(to), Inner::V3(from)) => to
                .pending()
                .extend(from.pending.drain(..).filter_map(switch::to_v5)),
        }
    }
}

/// The event loop of a connection; must be polled continuously.
pub struct EventLoop {
    options: Options,
    requests: usize,
    inner: Inner,
    client: Client,
    /// Whether a CONNACK came since the last failure: if not, the next poll
    /// connects, and negotiates.
    connected: bool,
}

impl EventLoop {
    pub(super) fn new(options: Options, requests: usize, inner: Inner, client: Client) -> Self {
        EventLoop {
            options,
            requests,
            inner,
            client,
            connected: false,
        }
    }

    /// The next step; after a [`Failure`], polling again reconnects.
    pub async fn poll(&mut self) -> Result<Polled, Failure> {
        if self.connected {
            let polled = self.inner.poll(false).await;
            self.connected = polled.is_ok();
            return polled;
        }
        let polled = match self.options.protocol {
            Protocol::V311 => self.connect(Protocol::V311).await,
            Protocol::V5 => self.connect(Protocol::V5).await,
            Protocol::Auto => self.negotiate().await,
        };
        self.connected = polled.is_ok();
        polled.map_err(|mut failure| {
            if failure.cause == Cause::ClosedBeforeConnAck {
                failure.reason.push_str(self.options.tls_hint());
            }
            failure
        })
    }

    /// MQTT 5, or 3.1.1 at once when the broker refused 5 the way a
    /// 3.1.1-only broker does.
    async fn negotiate(&mut self) -> Result<Polled, Failure> {
        let refused = match self.connect(Protocol::V5).await {
            Err(failure)
                if matches!(
                    failure.cause,
                    Cause::VersionRefused | Cause::ClosedBeforeConnAck | Cause::Timeout
                ) =>
            {
                failure
            }
            done => return done,
        };
        tracing::debug!(reason = %refused.reason, "MQTT 5 refused: trying 3.1.1");
        match self.connect(Protocol::V311).await {
            // Nothing answered either version: a timeout, said once and as such.
            Err(failure) if failure.cause == Cause::Timeout => {
                let (reason, cause) = describe::timeout(false);
                Err(Failure::new(reason, cause))
            }
            other => other,
        }
    }

    /// Connects with `version`, on the running loop if it is of that
    /// version, else on a candidate that replaces it once connected.
    async fn connect(&mut self, version: Protocol) -> Result<Polled, Failure> {
        if self.inner.version() == version {
            return self.inner.poll(true).await;
        }
        let (active, mut candidate) = self.options.open(version, self.requests);
        let polled = candidate.poll(true).await?;
        self.switch(active, candidate);
        Ok(polled)
    }

    fn switch(&mut self, active: Active, mut candidate: Inner) {
        // Swapped first: a request made after this goes to the candidate,
        // one made before is in the old loop, which `adopt` empties.
        self.client.replace(active);
        candidate.adopt(&mut self.inner);
        self.inner = candidate;
    }

    /// Drops the network connection; unacknowledged publishes are resent
    /// on the next connection, which negotiates afresh.
    pub fn clean(&mut self) {
        self.inner.clean();
        self.connected = false;
    }
}
