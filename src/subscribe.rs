//! `flowrun subscribe`: mosquitto_sub's job with flowrun's connection code
//! (`protocol: auto`, TLS, logins from the environment, every failure
//! named). One line per message on stdout — topic, size, QoS, flags and
//! MQTT 5 user properties — and, with `--save-dir`, each payload as a file
//! named after its topic. Ends after `--count` messages.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use flowrun_nodes::mqtt::client::{Event, Polled, Received, Subscribing};
use flowrun_nodes::mqtt::Qos;

use crate::connect::{connected, resolve, ConnectArgs};

#[derive(Args)]
pub struct SubscribeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// A topic filter to subscribe to (`faces/#`); repeatable.
    #[arg(long = "topic", required = true)]
    topics: Vec<String>,
    /// The highest QoS to receive with: 0, 1 or 2.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Exit after this many messages (default: run until interrupted).
    #[arg(long)]
    count: Option<u64>,
    /// Also write each payload into this folder, named after its topic
    /// (`/` as `_`); a repeated topic overwrites.
    #[arg(long, value_name = "DIR")]
    save_dir: Option<PathBuf>,
}

pub fn run(args: SubscribeArgs) -> anyhow::Result<std::process::ExitCode> {
    if let Some(dir) = &args.save_dir {
        if !dir.is_dir() {
            bail!("--save-dir {}: no such folder", dir.display());
        }
    }
    let qos = Qos::try_from(args.qos).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(subscribe(&args, qos))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn subscribe(args: &SubscribeArgs, qos: Qos) -> anyhow::Result<()> {
    let connect = &args.connect;
    let options = connect.config("subscribe")?.options("subscribe", resolve)?;
    let (client, mut eventloop) = options.start(100);
    let limit = Duration::from_secs(connect.timeout);
    let polled = tokio::time::timeout(limit, connected(&mut eventloop, connect))
        .await
        .map_err(|_| connect.no_answer())??;
    connect.note(&polled, "no user properties");
    let filters: Vec<(String, Qos)> = args.topics.iter().map(|t| (t.clone(), qos)).collect();
    client.try_subscribe(&filters, Subscribing::Plainly)?;
    let mut received = 0u64;
    let mut stdout = std::io::stdout().lock();
    while args.count.is_none_or(|count| received < count) {
        let polled = match eventloop.poll().await {
            Ok(polled) => polled,
            Err(failure) => bail!(
                "the connection to {} failed: {}",
                connect.broker,
                failure.reason
            ),
        };
        match polled {
            Polled::Event(Event::Subscribed(codes)) => {
                for ((filter, asked), code) in filters.iter().zip(&codes) {
                    match code {
                        Ok(granted) => eprintln!(
                            "flowrun: subscribed {filter} (qos {}{})",
                            u8::from(*granted),
                            if granted != asked {
                                ", less than asked"
                            } else {
                                ""
                            }
                        ),
                        Err(reason) => {
                            bail!("the broker refused the subscription to {filter}: {reason}")
                        }
                    }
                }
            }
            Polled::Event(Event::Received(message)) => {
                received += 1;
                writeln!(stdout, "{}", describe(&message))?;
                stdout.flush()?;
                if let Some(dir) = &args.save_dir {
                    save(dir, &message)?;
                }
            }
            // A reconnect after a dropped connection: subscribe again.
            Polled::Connected {
                session_present, ..
            } if !session_present => {
                client.try_subscribe(&filters, Subscribing::Plainly)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// `faces/door-1/cam/1-2-0 9123 bytes qos=1 retain k=v`
fn describe(message: &Received) -> String {
    let mut line = format!(
        "{} {} bytes qos={}",
        message.topic,
        message.payload.len(),
        u8::from(message.qos)
    );
    if message.retain {
        line.push_str(" retain");
    }
    if message.dup {
        line.push_str(" redelivered");
    }
    for (key, value) in &message.user_properties {
        line.push_str(&format!(" {key}={value}"));
    }
    line
}

fn save(dir: &Path, message: &Received) -> anyhow::Result<()> {
    let name: String = message
        .topic
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    // `.` and `..` would name the folder or its parent.
    let name = if name.trim_matches('.').is_empty() {
        format!("_{name}")
    } else {
        name
    };
    let path = dir.join(name);
    std::fs::write(&path, &message.payload)
        .with_context(|| format!("cannot write {}", path.display()))
}
