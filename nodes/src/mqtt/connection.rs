//! The broker connection every MQTT node shares: its config (`broker:` in a
//! spec) and the rumqttc options made from it. [`super::link`] runs it.

use std::time::Duration;

use flowrun_runtime::ConfigIssue;
use rumqttc::{TlsConfiguration, Transport};
use schemars::JsonSchema;
use serde::Deserialize;

use super::client::{Options, Settings, Will};

/// How to reach a broker. Secrets come from the environment: write
/// `password: ${MQTT_PASSWORD}`, never the password itself.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://host:port` (default port 1883) or `mqtts://host:port` for TLS
    /// (default port 8883).
    pub url: String,
    /// MQTT version: `auto` (the default), `"3.1.1"` or `"5"`. `auto`
    /// connects with 5 and, when the broker refuses it (it speaks 3.1.1
    /// only: RabbitMQ before 3.13, mosquitto 1.4, …), at once again with
    /// 3.1.1, logging which broker and what that costs; every new
    /// connection negotiates afresh. 5 adds refusals with reasons (a
    /// publish the broker refuses is failed, not acknowledged), user
    /// properties (`mqtt_pub`'s `user_properties`, `mqtt_sub`'s metadata),
    /// "no matching subscribers" (`require_subscribers`), a receive maximum
    /// (`inflight`) and the packet limit told to the broker
    /// (`max_packet_bytes`; a subscriber tells MQTT's own limit, see below).
    #[serde(default)]
    pub protocol: Protocol,
    /// The client id. Default: `flowrun-<node id>`. Keep it fixed (and unique
    /// per broker) for a persistent session to survive restarts.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Seconds between keepalive pings. Default 30.
    #[serde(default = "default_keepalive")]
    pub keepalive_secs: u64,
    /// Start a new session on every connect, dropping what the broker kept
    /// for this client id. Default false: a persistent session, so the broker
    /// queues QoS 1/2 messages while the client is away.
    #[serde(default)]
    pub clean_session: bool,
    /// User name for password authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, from the environment (`${MQTT_PASSWORD}`). Never logged.
    #[serde(default)]
    pub password: Option<String>,
    /// TLS files, for `mqtts://` URLs.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Largest MQTT packet sent or accepted, in bytes. Default 16 MiB: room
    /// for images (rumqttc's own default of 10 KiB is not). A message that
    /// would not fit is refused and counted, the connection is kept. With
    /// protocol 5 the broker is told, and does not send larger packets.
    /// `mqtt_sub` takes any size MQTT allows, so that its sinks can set an
    /// oversize message aside with a reason instead of losing it unseen.
    #[serde(default = "default_max_packet")]
    pub max_packet_bytes: usize,
    /// QoS 1/2 publishes sent and not yet acknowledged at once. Default 100.
    /// With protocol 5 it is also the receive maximum: how many QoS 1/2
    /// messages the broker sends before this client acknowledged them.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
    /// Reconnect backoff: first wait, in milliseconds. Default 250.
    #[serde(default = "default_backoff_min")]
    pub reconnect_min_ms: u64,
    /// Reconnect backoff: longest wait, in milliseconds. Default 30000.
    #[serde(default = "default_backoff_max")]
    pub reconnect_max_ms: u64,
    /// Last will: what the broker publishes when this client goes away (a
    /// crash, a cut link, and also flowrun stopping or reloading the node:
    /// it closes without DISCONNECT, so "offline" is always announced). On
    /// `mqtt_bridge`'s remote, the bridge's own `0` state is the will.
    #[serde(default)]
    pub will: Option<WillConfig>,
}

/// The MQTT protocol version: as configured (any of the three), or as
/// negotiated with a broker (`V311` or `V5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "ProtocolName")]
pub enum Protocol {
    /// MQTT 5 where the broker speaks it, else 3.1.1.
    #[default]
    Auto,
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.
    V5,
}

/// How a version may be written: `"3.1.1"`, `"5"`, `5`, or MQTT's protocol
/// level (4 for 3.1.1).
#[derive(Deserialize)]
#[serde(untagged)]
enum ProtocolName {
    Number(u64),
    Float(f64),
    Text(String),
}

impl TryFrom<ProtocolName> for Protocol {
    type Error = UnknownProtocol;
    fn try_from(name: ProtocolName) -> Result<Self, UnknownProtocol> {
        let text = match name {
            ProtocolName::Number(n) => n.to_string(),
            ProtocolName::Float(x) => x.to_string(),
            ProtocolName::Text(t) => t,
        };
        text.parse()
    }
}

/// A `protocol:` that names no version flowrun speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol `{0}` is not supported: use auto (the default), \"3.1.1\" or \"5\"")]
pub struct UnknownProtocol(pub String);

/// The same words as the spec's `protocol:`, for command-line options.
impl std::str::FromStr for Protocol {
    type Err = UnknownProtocol;
    fn from_str(text: &str) -> Result<Self, UnknownProtocol> {
        match text.trim() {
            "auto" => Ok(Protocol::Auto),
            "3.1.1" | "4" => Ok(Protocol::V311),
            "5" | "5.0" => Ok(Protocol::V5),
            other => Err(UnknownProtocol(other.to_owned())),
        }
    }
}

impl JsonSchema for Protocol {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Protocol".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "MQTT version: auto (default: 5, or 3.1.1 when the broker speaks only that), \"3.1.1\" or \"5\".",
            "enum": ["auto", "3.1.1", "5", 5]
        })
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Auto => "auto",
            Protocol::V311 => "3.1.1",
            Protocol::V5 => "5",
        })
    }
}

/// A last will message.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WillConfig {
    /// Topic of the will, without wildcards.
    pub topic: String,
    /// Payload text. Default empty.
    #[serde(default)]
    pub payload: String,
    /// 0, 1 or 2. Default 1.
    #[serde(default)]
    pub qos: super::Qos,
    /// Keep it as the topic's retained message. Default false.
    #[serde(default)]
    pub retain: bool,
}

/// TLS files for an `mqtts://` broker. Without `ca_file` the system's roots are used.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the certificate authority that signed the broker's certificate.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM client certificate, for brokers that require one (with `key_file`).
    #[serde(default)]
    pub cert_file: Option<String>,
    /// PEM private key of `cert_file`.
    #[serde(default)]
    pub key_file: Option<String>,
}

fn default_keepalive() -> u64 {
    30
}
fn default_max_packet() -> usize {
    16 * 1024 * 1024
}
fn default_inflight() -> u16 {
    100
}
fn default_backoff_min() -> u64 {
    250
}
fn default_backoff_max() -> u64 {
    30_000
}

// Written by hand so that the password can never reach a log line through `{:?}`.
impl std::fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The largest packet MQTT can frame: a 256 MiB remaining length plus its header.
pub const MQTT_MAX_PACKET: usize = 256 << 20;

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("bad broker URL `{url}`: {reason}")]
    Url { url: String, reason: BadUrl },
    #[error("cannot read {what} `{path}`: {source}")]
    File {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
}

/// What is wrong with a broker URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadUrl {
    #[error("expected mqtt://host:port or mqtts://host:port")]
    NoScheme,
    #[error("unknown scheme `{0}`: use mqtt:// or mqtts://")]
    Scheme(String),
    #[error("only host and port belong in the URL (credentials go in `username`/`password`)")]
    NotHostAndPort,
    #[error("`{0}` is not a port number")]
    Port(String),
    #[error("no host")]
    NoHost,
}

/// A payload too large for `max_packet_bytes` once the publish's own
/// bytes are counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload of {len} bytes on `{topic}` is over the {limit} bytes that fit `max_packet_bytes` ({max_packet_bytes})")]
pub struct TooLarge {
    pub len: usize,
    pub topic: String,
    /// The largest payload that fits.
    pub limit: usize,
    pub max_packet_bytes: usize,
}

/// A broker address taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerUrl {
    pub fn parse(url: &str) -> Result<BrokerUrl, BadUrl> {
        let (scheme, rest) = url.split_once("://").ok_or(BadUrl::NoScheme)?;
        let tls = match scheme {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => return Err(BadUrl::Scheme(other.to_owned())),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '@']) {
            return Err(BadUrl::NotHostAndPort);
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| BadUrl::Port(port.to_owned()))?;
                (host, port)
            }
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(BadUrl::NoHost);
        }
        Ok(BrokerUrl {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl BrokerConfig {
    /// A config for `url` with every other field at its default.
    pub fn new(url: impl Into<String>) -> Self {
        BrokerConfig {
            url: url.into(),
            protocol: Protocol::default(),
            client_id: None,
            keepalive_secs: default_keepalive(),
            clean_session: false,
            username: None,
            password: None,
            tls: None,
            max_packet_bytes: default_max_packet(),
            inflight: default_inflight(),
            reconnect_min_ms: default_backoff_min(),
            reconnect_max_ms: default_backoff_max(),
            will: None,
        }
    }

    /// Semantic checks; `prefix` is where this config sits in the node (`broker`).
    pub fn check(&self, prefix: &str) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let field = |name: &str| format!("{prefix}.{name}");
        match BrokerUrl::parse(&self.url) {
            Ok(url) if !url.tls && self.tls.is_some() => issues.push(
                ConfigIssue::new(field("tls"), "`tls` is set but the URL is not mqtts://")
                    .hint("use mqtts://host:8883"),
            ),
            Ok(_) => {}
            Err(reason) => issues.push(
                ConfigIssue::new(field("url"), format!("bad broker URL: {reason}"))
                    .hint("e.g. mqtt://localhost:1883"),
            ),
        }
        if self.password.is_some() && self.username.is_none() {
            issues.push(ConfigIssue::new(
                field("password"),
                "a password needs a `username`",
            ));
        }
        if self.keepalive_secs > u64::from(u16::MAX) {
            issues.push(ConfigIssue::new(
                field("keepalive_secs"),
                format!("at most {} seconds", u16::MAX),
            ));
        }
        if self.max_packet_bytes < 1024 || self.max_packet_bytes > 256 * 1024 * 1024 {
            issues.push(ConfigIssue::new(
                field("max_packet_bytes"),
                "between 1 KiB and 256 MiB (MQTT's own limit)",
            ));
        }
        if self.inflight == 0 {
            issues.push(ConfigIssue::new(field("inflight"), "at least 1"));
        }
        if self.reconnect_min_ms == 0 || self.reconnect_min_ms > self.reconnect_max_ms {
            issues.push(ConfigIssue::new(
                field("reconnect_min_ms"),
                "must be > 0 and ≤ `reconnect_max_ms`",
            ));
        }
        if let Some(will) = &self.will {
            if will.topic.is_empty() || will.topic.contains(['#', '+']) {
                issues.push(ConfigIssue::new(
                    field("will.topic"),
                    "a will topic is a plain topic: not empty, no `#` or `+`",
                ));
            }
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                issues.push(ConfigIssue::new(
                    field("tls"),
                    "`cert_file` and `key_file` go together",
                ));
            }
        }
        issues
    }

    /// The client id: `client_id`, else `flowrun-<default>`.
    pub fn client_id(&self, default: &str) -> String {
        self.client_id
            .clone()
            .unwrap_or_else(|| format!("flowrun-{default}"))
    }

    /// `url`, taken apart.
    pub fn broker_url(&self) -> Result<BrokerUrl, ConnectError> {
        BrokerUrl::parse(&self.url).map_err(|reason| ConnectError::Url {
            url: self.url.clone(),
            reason,
        })
    }

    /// rumqttc options; relative TLS paths resolve with `resolve`.
    pub fn options(
        &self,
        default_client_id: &str,
        resolve: impl Fn(&str) -> std::path::PathBuf,
    ) -> Result<Options, ConnectError> {
        let url = self.broker_url()?;
        let client_id = self.client_id(default_client_id);
        let mut settings = Settings {
            client_id,
            host: url.host,
            port: url.port,
            keepalive: Duration::from_secs(self.keepalive_secs.max(5)),
            clean_session: self.clean_session,
            max_packet_bytes: self.max_packet_bytes,
            inflight: self.inflight,
            credentials: self
                .username
                .clone()
                .map(|user| (user, self.password.clone().unwrap_or_default())),
            transport: None,
            will: self.will.as_ref().map(|will| Will {
                topic: will.topic.clone(),
                payload: will.payload.clone().into(),
                qos: will.qos,
                retain: will.retain,
            }),
        };
        if url.tls {
            let read = |what: &'static str, path: &str| {
                std::fs::read(resolve(path)).map_err(|source| ConnectError::File {
                    what,
                    path: path.to_owned(),
                    source,
                })
            };
            let tls = self.tls.clone().unwrap_or(TlsConfig {
                ca_file: None,
                cert_file: None,
                key_file: None,
            });
            let client_auth = match (&tls.cert_file, &tls.key_file) {
                (Some(cert), Some(key)) => {
                    Some((read("client certificate", cert)?, read("client key", key)?))
                }
                _ => None,
            };
            let transport = match &tls.ca_file {
                Some(ca) => Transport::tls_with_config(TlsConfiguration::Simple {
                    ca: read("CA file", ca)?,
                    alpn: None,
                    client_auth,
                }),
                None => Transport::tls_with_default_config(),
            };
            settings.transport = Some(transport);
        }
        Ok(Options::new(settings, self.protocol))
    }

    /// [`BrokerConfig::options`] for a connection that receives and
    /// acknowledges each message once it is handled (`mqtt_sub`, each side
    /// of `mqtt_bridge`): at most `inflight` unacknowledged at once. It
    /// takes what the broker sends up to MQTT's own limit: a message over
    /// `max_packet_bytes` is refused where it is handled (counted, logged)
    /// instead of failing the connection it came on, which the broker would
    /// redeliver it on, again and again.
    pub fn receiving_options(
        &self,
        default_client_id: &str,
        resolve: impl Fn(&str) -> std::path::PathBuf,
    ) -> Result<Options, ConnectError> {
        let mut options = self.options(default_client_id, resolve)?;
        options
            .set_manual_acks(true)
            .set_receive_maximum(self.inflight)
            .set_max_packet_sizes(MQTT_MAX_PACKET, self.max_packet_bytes);
        Ok(options)
    }

    /// `Err(why)` when a payload of `len` bytes on `topic`, with these user
    /// properties, would not fit a packet of `max_packet_bytes`. Handing such
    /// a publish to the client would fail the connection and have it resent
    /// after every reconnect: a disconnect loop.
    pub fn check_fits(
        &self,
        topic: &str,
        user_properties: &[(String, String)],
        len: usize,
    ) -> Result<(), TooLarge> {
        let limit = self.max_payload(topic, user_properties);
        if len > limit {
            return Err(TooLarge {
                len,
                topic: topic.to_owned(),
                limit,
                max_packet_bytes: self.max_packet_bytes,
            });
        }
        Ok(())
    }

    /// Largest payload that fits a publish on `topic` with these user
    /// properties under `max_packet_bytes`.
    fn max_payload(&self, topic: &str, user_properties: &[(String, String)]) -> usize {
        // Fixed header (≤ 5), topic length prefix (2), packet id (2).
        let mut overhead = topic.len() + 9;
        // Under `auto` the connection may be either: count MQTT 5's larger
        // overhead, which fits both.
        if self.protocol != Protocol::V311 {
            // Properties length (≤ 4), then per property: id (1) and two
            // length-prefixed strings.
            overhead += 4 + user_properties
                .iter()
                .map(|(k, v)| 5 + k.len() + v.len())
                .sum::<usize>();
        }
        self.max_packet_bytes.saturating_sub(overhead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_with_default_ports() {
        assert_eq!(
            BrokerUrl::parse("mqtt://localhost").unwrap(),
            BrokerUrl {
                host: "localhost".into(),
                port: 1883,
                tls: false
            }
        );
        assert_eq!(BrokerUrl::parse("mqtts://broker:9000").unwrap().port, 9000);
        assert_eq!(BrokerUrl::parse("mqtts://broker").unwrap().port, 8883);
        assert!(BrokerUrl::parse("http://x").is_err());
        assert!(BrokerUrl::parse("mqtt://u:p@x").is_err());
        assert!(BrokerUrl::parse("mqtt://x:99999").is_err());
    }

    #[test]
    fn protocol_names() {
        let parse = |json: &str| serde_json::from_str::<Protocol>(json).map_err(|e| e.to_string());
        assert_eq!(parse("\"auto\""), Ok(Protocol::Auto));
        assert_eq!(parse("\"3.1.1\""), Ok(Protocol::V311));
        assert_eq!(parse("4"), Ok(Protocol::V311));
        assert_eq!(parse("5"), Ok(Protocol::V5));
        assert_eq!(parse("\"5\""), Ok(Protocol::V5));
        assert_eq!(parse("5.0"), Ok(Protocol::V5));
        assert!(parse("3.1")
            .unwrap_err()
            .contains("use auto (the default), \"3.1.1\""));
        assert!(parse("\"v6\"").unwrap_err().contains("protocol `v6`"));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let mut config = BrokerConfig::new("mqtt://x");
        config.username = Some("edge".into());
        config.password = Some("s3cret".into());
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
