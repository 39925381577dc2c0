//! What `flowrun publish` and `flowrun subscribe` share: how to reach a
//! broker, from the command line, made into the same `broker:` config the
//! nodes use — so both speak `protocol: auto`, TLS and logins as a spec does.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use flowrun_nodes::mqtt::client::{EventLoop, Polled};
use flowrun_nodes::mqtt::connection::{BrokerConfig, Protocol, TlsConfig};

#[derive(Args)]
pub struct ConnectArgs {
    /// Broker URL: mqtt://host:port or mqtts://host:port.
    #[arg(long)]
    pub broker: String,
    /// MQTT version: auto, 3.1.1 or 5. auto uses 5 and, when the broker
    /// refuses it, 3.1.1 (said on stderr).
    #[arg(long, default_value = "auto")]
    pub protocol: Protocol,
    /// The client id. Default: flowrun-<command>-<process id>, with a clean
    /// session; a given id keeps a persistent session (what the broker
    /// queued for it while away is delivered).
    #[arg(long)]
    pub client_id: Option<String>,
    /// User name; the password is read from the MQTT_PASSWORD environment variable.
    #[arg(long)]
    pub username: Option<String>,
    /// CA file for mqtts:// brokers with a private certificate authority.
    #[arg(long)]
    pub ca_file: Option<String>,
    /// Seconds to wait for the broker before giving up.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

impl ConnectArgs {
    /// The `broker:` config these arguments describe, checked.
    pub fn config(&self, command: &str) -> anyhow::Result<BrokerConfig> {
        let mut config = BrokerConfig::new(&self.broker);
        config.protocol = self.protocol;
        match &self.client_id {
            Some(id) => config.client_id = Some(id.clone()),
            None => {
                config.clean_session = true;
                config.client_id = Some(format!("flowrun-{command}-{}", std::process::id()));
            }
        }
        config.username = self.username.clone();
        config.password = std::env::var("MQTT_PASSWORD").ok();
        if let Some(ca) = &self.ca_file {
            config.tls = Some(TlsConfig {
                ca_file: Some(ca.clone()),
                cert_file: None,
                key_file: None,
            });
        }
        if let Some(issue) = config.check("").first() {
            bail!("{}", issue.message);
        }
        Ok(config)
    }

    /// The words for a broker that did not answer within `--timeout`.
    pub fn no_answer(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "no answer from the broker at {} within {} s (check --broker: host, port, mqtt:// or mqtts://; and a firewall dropping packets; or raise --timeout)",
            self.broker,
            self.timeout
        )
    }

    /// Says on stderr that `auto` fell back to 3.1.1, when it did.
    pub fn note(&self, polled: &Polled, costs: &str) {
        if let Polled::Connected {
            protocol: Protocol::V311,
            ..
        } = polled
        {
            if self.protocol == Protocol::Auto {
                eprintln!(
                    "flowrun: the broker at {} speaks MQTT 3.1.1 only: connected with 3.1.1 ({costs})",
                    self.broker
                );
            }
        }
    }
}

/// Polls until the connection is up (or fails with its named cause).
pub async fn connected(eventloop: &mut EventLoop, args: &ConnectArgs) -> anyhow::Result<Polled> {
    loop {
        match eventloop.poll().await {
            Ok(polled @ Polled::Connected { .. }) => return Ok(polled),
            Ok(_) => {}
            Err(failure) => bail!("cannot connect to {}: {}", args.broker, failure.reason),
        }
    }
}

/// A relative TLS path resolves against the working directory.
pub fn resolve(path: &str) -> PathBuf {
    PathBuf::from(path)
}
