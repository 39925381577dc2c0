//! The running `mqtt_bridge`: two [`Side`]s and the loop between them.

use std::path::PathBuf;
use std::sync::Arc;

use flowrun_runtime::{Counter, Message, Metadata, Node, NodeContext, NodeError, Outcome, Payload};
use futures::future::BoxFuture;

use super::super::client::{Event, Options, Publish, Received, SubscribeRefused, Subscribing};
use super::super::connection::{BrokerUrl, Protocol};
use super::super::echoes::Echoes;
use super::super::inbound::{Held, InboundAcks};
use super::super::link::{Link, LinkEvent, EVENTS};
use super::super::outstanding::Outstanding;
use super::super::subscriptions::{send_requests, Subscriptions};
use super::super::unheard::{self, Unheard};
use super::super::Qos;
use super::side::{Forwarded, Side};
use super::{MqttBridgeConfig, LOCAL, REMOTE};

pub(super) struct MqttBridge {
    pub(super) config: MqttBridgeConfig,
    pub(super) options: [Options; 2],
    pub(super) status: String,
    /// Where each side records what it subscribed.
    pub(super) state_dir: PathBuf,
}

/// Room for publishes and acks on their way to a connection task; they are
/// bounded by `buffer` (publishes) and the brokers' in-flight windows
/// (acks), and the channel grows as it fills.
const REQUESTS: usize = 1 << 16;

/// What woke the bridge up.
enum Step {
    Stop,
    Event(usize, Option<LinkEvent>),
    Settled(usize, (Held, Outcome)),
    Again(usize, Vec<Forwarded>),
}

/// A bridge at work.
struct Running {
    node: MqttBridge,
    ctx: NodeContext,
    sides: [Side; 2],
    echoes: Echoes,
    /// The `too_large` event: messages one broker sent that the other cannot take.
    too_large: Counter,
}

impl Node for MqttBridge {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let sides = [self.side(LOCAL, &ctx), self.side(REMOTE, &ctx)];
            let too_large = ctx.metrics.event("too_large");
            let mut running = Running {
                node: *self,
                ctx,
                sides,
                echoes: Echoes::default(),
                too_large,
            };
            loop {
                match running.next().await {
                    Step::Stop => return Ok(()),
                    Step::Event(_, None) => return Err("an MQTT connection task ended".into()),
                    Step::Event(from, Some(event)) => running.on_event(from, event)?,
                    Step::Settled(side, settled) => {
                        let side = &mut running.sides[side];
                        side.acks.settle(settled, &side.link, &running.ctx.id);
                    }
                    Step::Again(side, again) => {
                        for forwarded in again {
                            running.sides[side].publish(forwarded)?;
                        }
                    }
                }
            }
        })
    }
}

impl MqttBridge {
    fn side(&self, side: usize, ctx: &NodeContext) -> Side {
        let broker = self.config.broker(side);
        let filters = self
            .config
            .topics
            .iter()
            .filter(|t| t.direction.from(side))
            .map(|t| (t.filter(side), t.qos))
            .collect();
        let name = format!(
            "{}-{}",
            ctx.id,
            if side == LOCAL { "local" } else { "remote" }
        );
        let subscriptions = match BrokerUrl::parse(&broker.url) {
            Ok(url) => Subscriptions::new(
                filters,
                None,
                Some(&self.state_dir),
                (&url.host, url.port),
                &broker.client_id(&name),
                &ctx.id,
            ),
            // Not reached: the URL was parsed when the node was built.
            Err(_) => Subscriptions::new(filters, None, None, ("", 0), &name, &ctx.id),
        };
        Side {
            echoes_back: broker.protocol != Protocol::V5,
            link: Link::start(
                self.options[side].clone(),
                broker,
                &ctx.id,
                Arc::clone(&ctx.metrics),
                REQUESTS,
                EVENTS,
            ),
            acks: InboundAcks::default(),
            outstanding: Outstanding::default(),
            unheard: Unheard::new(broker, ctx.metrics.event(unheard::EVENT), &ctx.id),
            subscriptions,
            subscribed: false,
        }
    }
}

impl Running {
    /// Waits for whatever happens first. A side whose messages would go to
    /// a full side is not read: its broker keeps them meanwhile.
    async fn next(&mut self) -> Step {
        let buffer = self.node.config.buffer;
        let read_local = Side::may_read(&self.sides[LOCAL], &self.sides[REMOTE], buffer);
        let read_remote = Side::may_read(&self.sides[REMOTE], &self.sides[LOCAL], buffer);
        let [local, remote] = &mut self.sides;
        tokio::select! {
            _ = self.ctx.stopping() => Step::Stop,
            event = local.link.events.recv(), if read_local => Step::Event(LOCAL, event),
            event = remote.link.events.recv(), if read_remote => Step::Event(REMOTE, event),
            settled = local.acks.next() => Step::Settled(LOCAL, settled),
            settled = remote.acks.next() => Step::Settled(REMOTE, settled),
            again = local.unheard.due() => Step::Again(LOCAL, again),
            again = remote.unheard.due() => Step::Again(REMOTE, again),
        }
    }

    fn on_event(&mut self, from: usize, event: LinkEvent) -> Result<(), NodeError> {
        match event {
            LinkEvent::Connected {
                session_present,
                protocol,
            } => self.on_connected(from, session_present, protocol),
            LinkEvent::Disconnected => {
                self.sides[from].acks.new_connection();
                if from == REMOTE {
                    self.status(false)?;
                }
                Ok(())
            }
            LinkEvent::Packet(Event::Received(publish)) => self.on_received(from, *publish),
            LinkEvent::Packet(Event::Subscribed(codes)) => {
                self.on_suback(from, &codes);
                Ok(())
            }
            LinkEvent::Packet(event) => {
                self.sides[from].on_publish_event(&event, &self.too_large, &self.ctx);
                Ok(())
            }
        }
    }

    fn on_connected(
        &mut self,
        from: usize,
        session_present: bool,
        protocol: Protocol,
    ) -> Result<(), NodeError> {
        let guarded = self
            .node
            .config
            .topics
            .iter()
            .any(|t| t.require_subscribers && t.targets().contains(&from));
        let ctx = &self.ctx;
        let side = &mut self.sides[from];
        // Under `auto`, each connection has its own version.
        side.echoes_back = protocol != Protocol::V5;
        side.acks.new_connection();
        side.unheard
            .connected(protocol, guarded, &ctx.metrics, &ctx.id);
        let requests = side.subscriptions.on_connect(session_present, protocol);
        send_requests(&side.link, &requests, Subscribing::AsBridge, &ctx.id)?;
        if !side.subscriptions.is_pending() {
            side.subscribed = true;
        }
        self.ready_once_subscribed();
        if from == REMOTE {
            self.status(true)?;
        }
        Ok(())
    }

    fn on_suback(&mut self, from: usize, codes: &[Result<Qos, SubscribeRefused>]) {
        let ctx = &self.ctx;
        let subscriptions = &mut self.sides[from].subscriptions;
        for (filter, reason) in subscriptions.on_suback(codes) {
            ctx.metrics.errors.inc();
            tracing::error!(node = %ctx.id, %filter, "the broker refused the subscription: {reason}");
        }
        let side = if from == LOCAL { "local" } else { "remote" };
        tracing::info!(node = %ctx.id, side, "{}", subscriptions.state());
        self.sides[from].subscribed = true;
        self.ready_once_subscribed();
    }

    fn ready_once_subscribed(&self) {
        if self.sides.iter().all(|s| s.subscribed) {
            self.ctx.ready();
        }
    }

    /// A message from `from`: forwarded to the other side, or acknowledged
    /// at once when it is an echo or no entry carries it, or rejected when
    /// the other broker could never take it.
    fn on_received(&mut self, from: usize, publish: Received) -> Result<(), NodeError> {
        self.ctx.metrics.received.inc();
        let ack = self.sides[from].acks.track(&publish);
        let message = Message::with_ack(
            Payload::Bytes(publish.payload.clone()),
            Metadata::new(),
            ack,
        );
        if self.echoes.take(from, &publish.topic, &publish.payload) {
            message.ack();
            return Ok(());
        }
        let config = &self.node.config;
        let Some((topic, qos, require_subscribers)) = config.route(from, &publish.topic) else {
            message.ack();
            return Ok(());
        };
        let to = 1 - from;
        let fits =
            config
                .broker(to)
                .check_fits(&topic, &publish.user_properties, publish.payload.len());
        if let Err(why) = fits {
            self.too_large.inc();
            self.ctx.metrics.errors.inc();
            let reason = format!("{why} of the broker it goes to: not forwarded");
            tracing::warn!(node = %self.ctx.id, "{reason}");
            message.reject(reason);
            return Ok(());
        }
        // The copy we publish comes back if the other side also subscribes
        // to its topic, unless it speaks MQTT 5 ("no local"): drop it then.
        if self.sides[to].echoes_back && config.route(to, &topic).is_some() {
            self.echoes.note(to, &topic, &publish.payload);
        }
        let forwarded = Forwarded {
            message,
            publish: Publish {
                topic,
                payload: publish.payload,
                qos,
                retain: publish.retain,
                user_properties: publish.user_properties,
            },
            require_subscribers,
        };
        self.sides[to].publish(forwarded)
    }

    /// Publishes the bridge's state, retained: `1` on both sides once the
    /// remote is connected, `0` on the local side when it is not (the remote
    /// has the last will for that).
    fn status(&mut self, up: bool) -> Result<(), NodeError> {
        let state = if up { "1" } else { "0" };
        let targets: &[usize] = if up { &[LOCAL, REMOTE] } else { &[LOCAL] };
        for &side in targets {
            let publish = Publish {
                topic: self.node.status.clone(),
                payload: state.into(),
                qos: Qos::AtLeastOnce,
                retain: true,
                user_properties: Vec::new(),
            };
            let message = Message::new(Payload::Bytes(publish.payload.clone()), Metadata::new());
            self.sides[side].publish(Forwarded {
                message,
                publish,
                require_subscribers: false,
            })?;
        }
        Ok(())
    }
}
