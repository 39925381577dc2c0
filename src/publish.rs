//! `flowrun publish`: sends one payload (a file or a text) to a broker, `count`
//! times, and says through the exit code whether the broker acknowledged
//! every copy — what the original's one-shot test script did. Over MQTT 5 a
//! copy the broker refuses (a PUBACK reason code ≥ 0x80) is a failure, and
//! copies that reached no subscriber (0x10) are a warning.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use flowrun_nodes::mqtt::client::{Event, Polled, Publish};
use flowrun_nodes::mqtt::connection::Protocol;

use crate::connect::{resolve, ConnectArgs};
use flowrun_nodes::mqtt::Qos;

#[derive(Args)]
pub struct PublishArgs {
    /// How to reach the broker. Over MQTT 5 a refusal (e.g. by the broker's
    /// ACL) fails with its reason, and "no matching subscribers" is warned
    /// about.
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to publish on.
    #[arg(long)]
    topic: String,
    /// 0, 1 or 2. At 1 and 2 the exit code says whether the broker acknowledged.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Publish the contents of this file (`-`: standard input).
    #[arg(long, conflicts_with = "message", required_unless_present = "message")]
    file: Option<PathBuf>,
    /// Publish this text.
    #[arg(long)]
    message: Option<String>,
    /// How many copies to publish.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Milliseconds between copies (a steady load); 0 sends them back to back.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    interval: u64,
    /// An MQTT 5 user property to send with the message; repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = user_property)]
    user_property: Vec<(String, String)>,
    /// Ask the broker to retain the message.
    #[arg(long)]
    retain: bool,
}

pub fn run(args: PublishArgs) -> anyhow::Result<std::process::ExitCode> {
    let payload = match (&args.file, &args.message) {
        (Some(path), _) if path.as_os_str() == "-" => {
            let mut payload = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut payload)
                .context("cannot read standard input")?;
            payload
        }
        (Some(path), _) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        (None, Some(text)) => text.clone().into_bytes(),
        (None, None) => bail!("give --file or --message"),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    // The load's own length does not count against the broker's timeout.
    let pacing = Duration::from_millis(args.interval.saturating_mul(args.count));
    let limit = Duration::from_secs(args.connect.timeout) + pacing;
    let outcome = runtime.block_on(async {
        tokio::time::timeout(limit, publish(&args, payload))
            .await
            .unwrap_or_else(|_| Err(args.connect.no_answer()))
    })?;
    if outcome.unheard > 0 {
        eprintln!(
            "flowrun: warning: {} of {} copies on `{}` reached no subscriber (the broker took them: no matching subscribers, 0x10)",
            outcome.unheard, args.count, args.topic
        );
    }
    println!(
        "published {} of {} on `{}`",
        outcome.acked, args.count, args.topic
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn user_property(text: &str) -> anyhow::Result<(String, String)> {
    text.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| anyhow::anyhow!("`{text}` is not KEY=VALUE"))
}

/// What the broker answered.
struct Outcome {
    /// Copies the broker took.
    acked: u64,
    /// Of those, copies it said no subscriber matched (MQTT 5 only).
    unheard: u64,
}

/// Publishes every copy and waits for the broker's acknowledgements.
async fn publish(args: &PublishArgs, payload: Vec<u8>) -> anyhow::Result<Outcome> {
    if !args.user_property.is_empty() && args.connect.protocol == Protocol::V311 {
        bail!("--user-property needs MQTT 5 (--protocol auto or 5): 3.1.1 has no user properties");
    }
    let config = args.connect.config("publish")?;
    config
        .check_fits(&args.topic, &args.user_property, payload.len())
        .map_err(anyhow::Error::msg)?;
    let options = config.options("publish", resolve)?;
    let (client, mut eventloop) = options.start(100);
    let qos = Qos::try_from(args.qos).map_err(anyhow::Error::msg)?;
    let publish = Publish {
        topic: args.topic.clone(),
        payload: payload.into(),
        qos,
        retain: args.retain,
        user_properties: args.user_property.clone(),
    };
    let count = args.count;
    let interval = Duration::from_millis(args.interval);
    let sender = tokio::spawn(async move {
        for copy in 0..count {
            if copy > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            client.publish(publish.clone()).await?;
        }
        Ok::<_, flowrun_nodes::mqtt::client::ClientError>(client)
    });
    let mut outcome = Outcome {
        acked: 0,
        unheard: 0,
    };
    while outcome.acked < args.count {
        match eventloop.poll().await {
            Ok(Polled::Event(Event::Acked { .. } | Event::Sent { pkid: 0 })) => outcome.acked += 1,
            Ok(Polled::Event(Event::Unheard { .. })) => {
                outcome.acked += 1;
                outcome.unheard += 1;
            }
            Ok(polled @ Polled::Connected { .. }) => {
                args.connect
                    .note(&polled, "no refusal reasons, no user properties");
            }
            Ok(_) => {}
            // A refusal also ends the connection: its own reason says more.
            Err(failure) => match failure.refused.first() {
                Some(Event::Refused { reason, .. } | Event::TooLarge { reason }) => {
                    bail!("{reason}")
                }
                _ => bail!(
                    "cannot publish to {}: {}",
                    args.connect.broker,
                    failure.reason
                ),
            },
        }
    }
    let client = sender.await??;
    // Let the broker close the session cleanly; the copies are already acknowledged.
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
    Ok(outcome)
}
