//! `mqtt_broker`: an MQTT broker inside the flowrun process (rumqttd), so
//! that the demo needs nothing installed.
//!
//! Its limits: one MQTT version per listener (3.1.1 or 5, and over 5 no
//! reason codes, session expiry or client limits: docs/mqtt.md), sessions
//! and queues in memory only (lost when flowrun stops), no authentication.
//! Real deployments point the other nodes at mosquitto or a clustered
//! broker instead.
//!
//! rumqttd's `Broker::start` blocks and cannot be stopped, so the broker gets
//! a thread of its own for the life of the process. A reload or restart of
//! the node finds the broker it started still listening and keeps it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

use flowrun_runtime::{
    BuildContext, ConfigIssue, ExternalLink, Inputs, Node, NodeConfig, NodeContext, NodeError,
    OutputKind,
};
use futures::future::BoxFuture;
use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};
use schemars::JsonSchema;
use serde::Deserialize;

use super::connection::Protocol;

/// Runs an in-process MQTT broker (memory only) for demos and tests.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttBrokerConfig {
    /// Address to listen on. Default `127.0.0.1:1883`; `0.0.0.0:1883` for
    /// other machines.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// MQTT version the listener speaks: `"3.1.1"` (the default) or `"5"`;
    /// one, not both (not `auto`: a listener speaks one version; clients
    /// on `protocol: auto` negotiate it).
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    /// Largest payload accepted, in bytes. Default 16 MiB.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    /// Unacknowledged QoS 1/2 messages per client. Default 100.
    #[serde(default = "default_inflight")]
    pub max_inflight: usize,
    /// Clients at once. Default 1000.
    #[serde(default = "default_connections")]
    pub max_connections: usize,
}

// Clients default to `auto`; a listener has to pick one version.
fn default_protocol() -> Protocol {
    Protocol::V311
}

fn default_listen() -> String {
    "127.0.0.1:1883".into()
}
fn default_max_payload() -> usize {
    16 * 1024 * 1024
}
fn default_inflight() -> usize {
    100
}
fn default_connections() -> usize {
    1000
}

impl NodeConfig for MqttBrokerConfig {
    const TYPE: &'static str = "mqtt_broker";
    const DESCRIPTION: &'static str =
        "Runs an MQTT broker (3.1.1 or 5) inside flowrun (memory only): a demo needs nothing installed";
    const INPUTS: Inputs = Inputs::None;
    const OUTPUT: OutputKind = OutputKind::None;

    /// The broker it is: specs that connect to `mqtt://<listen>` meet it.
    fn links(&self) -> Vec<ExternalLink> {
        vec![ExternalLink {
            system: format!("mqtt://{}", self.listen),
            inbound: false,
            label: "serves".into(),
        }]
    }

    fn check(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if self.protocol == Protocol::Auto {
            issues.push(
                ConfigIssue::new("protocol", "a broker listens with one MQTT version")
                    .hint("\"3.1.1\" or \"5\""),
            );
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            issues.push(
                ConfigIssue::new("listen", format!("`{}` is not an address", self.listen))
                    .hint("e.g. 127.0.0.1:1883"),
            );
        }
        if self.max_inflight == 0 || self.max_connections == 0 || self.max_payload_bytes == 0 {
            issues.push(ConfigIssue::new(
                "max_inflight",
                "limits must be at least 1",
            ));
        }
        issues
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        let listen = self
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("bad listen address `{}`: {e}", self.listen))?;
        Ok(Box::new(MqttBroker {
            config: self.clone(),
            listen,
        }))
    }
}

struct MqttBroker {
    config: MqttBrokerConfig,
    listen: SocketAddr,
}

/// Brokers this process started, by address: rumqttd cannot be stopped.
fn running() -> &'static Mutex<HashSet<SocketAddr>> {
    static RUNNING: OnceLock<Mutex<HashSet<SocketAddr>>> = OnceLock::new();
    RUNNING.get_or_init(Default::default)
}

fn rumqttd_config(config: &MqttBrokerConfig, listen: SocketAddr) -> Config {
    let name = match config.protocol {
        Protocol::V311 | Protocol::Auto => "v4",
        Protocol::V5 => "v5",
    };
    let server = ServerSettings {
        name: name.into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: config.max_payload_bytes,
            max_inflight_count: config.max_inflight,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        router: RouterConfig {
            max_connections: config.max_connections,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: (config.protocol != Protocol::V5).then(|| listener(name, server.clone())),
        v5: (config.protocol == Protocol::V5).then(|| listener(name, server)),
        ..Default::default()
    }
}

fn listener(name: &str, server: ServerSettings) -> HashMap<String, ServerSettings> {
    HashMap::from([(name.to_owned(), server)])
}

/// Starts the broker on its own thread, unless this process already runs one there.
fn start(config: &MqttBrokerConfig, listen: SocketAddr) -> Result<bool, NodeError> {
    let mut brokers = running().lock().map_err(|_| "broker registry poisoned")?;
    if brokers.contains(&listen) {
        return Ok(false);
    }
    // rumqttd only logs a failed bind from its own thread; bind first to
    // turn a busy port into an error the user sees.
    std::net::TcpListener::bind(listen).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "cannot listen on {listen}: the port is already in use (another broker running?)"
            )
        } else {
            format!("cannot listen on {listen}: {e}")
        }
    })?;
    let mut broker = rumqttd::Broker::new(rumqttd_config(config, listen));
    std::thread::Builder::new()
        .name(format!("mqtt-broker-{listen}"))
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(%listen, "the embedded MQTT broker stopped: {error}");
            }
        })?;
    brokers.insert(listen);
    Ok(true)
}

impl Node for MqttBroker {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            if start(&self.config, self.listen)? {
                tracing::info!(node = %ctx.id, listen = %self.listen, "embedded MQTT broker listening");
            }
            ctx.metrics
                .set_state(format!("listening on {}", self.listen));
            ctx.stopping().await;
            Ok(())
        })
    }
}
