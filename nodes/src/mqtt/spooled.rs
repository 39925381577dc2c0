//! `mqtt_pub` with a spool: input → disk (acknowledged once durable) →
//! broker (removed from disk once acknowledged), in arrival order.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flowrun_runtime::{Message, NodeContext, NodeError};
use futures::FutureExt;

use super::client::Publish;
use super::link::{Link, LinkEvent, EVENTS};
use super::outstanding::{Outstanding, Settled};
use super::publish::{prepare, MqttPub};
use super::spool::{Spool, SpoolError};

/// Most input messages written to the spool in one transaction (one fsync).
const BATCH: usize = 256;

type Shared = Arc<Mutex<Spool>>;

/// Runs `f` on the spool off the async threads: redb reads and fsyncs block.
async fn with_spool<R: Send + 'static>(
    spool: &Shared,
    f: impl FnOnce(&mut Spool) -> Result<R, SpoolError> + Send + 'static,
) -> Result<R, NodeError> {
    let spool = Arc::clone(spool);
    tokio::task::spawn_blocking(move || {
        let mut spool = spool
            .lock()
            .map_err(|_| SpoolError::Db("spool lock poisoned".into()))?;
        f(&mut spool)
    })
    .await
    .map_err(|e| format!("spool task: {e}"))?
    .map_err(Into::into)
}

pub(super) async fn run(
    node: MqttPub,
    dir: PathBuf,
    mut ctx: NodeContext,
) -> Result<(), NodeError> {
    let max_bytes = node.config.spool.as_ref().map_or(u64::MAX, |s| s.max_bytes);
    let opened = tokio::task::spawn_blocking(move || Spool::open(&dir))
        .await
        .map_err(|e| format!("spool task: {e}"))??;
    let (held, mut bytes, mut end) = (opened.count()?, opened.bytes(), opened.next_key());
    if held > 0 {
        tracing::info!(node = %ctx.id, held, bytes, "spool holds messages from an earlier run: sending them first");
    }
    let spool: Shared = Arc::new(Mutex::new(opened));
    let buffer = node.config.buffer;
    let mut link = Link::start(
        node.options.clone(),
        &node.config.broker,
        &ctx.id,
        Arc::clone(&ctx.metrics),
        buffer,
        EVENTS,
    );
    let mut outstanding: Outstanding<u64> = Outstanding::default();
    let mut cursor = 0u64;
    let mut input_done = false;
    loop {
        if cursor < end && outstanding.len() < buffer {
            let want = buffer - outstanding.len();
            let entries = with_spool(&spool, move |s| s.read(cursor, want)).await?;
            for entry in entries {
                let publish = Publish {
                    topic: entry.topic,
                    payload: entry.payload.into(),
                    qos: node.config.qos,
                    retain: node.config.retain,
                    user_properties: Vec::new(),
                };
                link.client
                    .try_publish(publish)
                    .map_err(|e| format!("cannot hand a message to the MQTT client: {e}"))?;
                outstanding.push(entry.key);
                cursor = entry.key + 1;
            }
        }
        if input_done && outstanding.is_empty() && cursor >= end {
            return Ok(());
        }
        tokio::select! {
            event = link.events.recv() => match event {
                Some(LinkEvent::Packet(event)) => {
                    let mut sent = Vec::new();
                    let mut settle = |event: &_| {
                        // A publish the broker refused (MQTT 5) leaves the
                        // spool too: it would be refused again on every resend.
                        if let Some((key, outcome)) = outstanding.on_event(event) {
                            if let Settled::Refused(reason) | Settled::TooLarge(reason) = outcome {
                                ctx.metrics.errors.inc();
                                tracing::warn!(node = %ctx.id, "{reason}: dropped from the spool");
                            }
                            sent.push(key);
                        }
                    };
                    settle(&event);
                    // Take whatever else is already waiting, to remove in one transaction.
                    while let Some(Some(LinkEvent::Packet(event))) = link.events.recv().now_or_never() {
                        settle(&event);
                    }
                    if !sent.is_empty() {
                        ctx.metrics.sent.inc_by(sent.len() as u64);
                        bytes = with_spool(&spool, move |s| s.remove(&sent).map(|_| s.bytes())).await?;
                    }
                }
                Some(LinkEvent::Connected { .. } | LinkEvent::Disconnected) => {}
                None => return Err("the MQTT connection task ended".into()),
            },
            message = ctx.input.recv(), if !input_done && bytes < max_bytes => {
                let Some(first) = message else {
                    input_done = true;
                    continue;
                };
                let mut messages = vec![first];
                while messages.len() < BATCH {
                    match ctx.input.recv().now_or_never() {
                        Some(Some(message)) => messages.push(message),
                        Some(None) => {
                            input_done = true;
                            break;
                        }
                        None => break,
                    }
                }
                let mut accepted: Vec<Message> = Vec::new();
                let mut batch: Vec<(String, Bytes)> = Vec::new();
                for message in messages {
                    match prepare(&message, &node.config, &node.topic, &ctx) {
                        Ok(publish) => {
                            batch.push((publish.topic, publish.payload));
                            accepted.push(message);
                        }
                        Err(reason) => message.reject(reason),
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                match with_spool(&spool, move |s| s.append(&batch).map(|_| (s.bytes(), s.next_key()))).await {
                    Ok((now, next)) => {
                        (bytes, end) = (now, next);
                        accepted.into_iter().for_each(Message::ack);
                    }
                    Err(error) => {
                        let reason = format!("cannot spool: {error}");
                        for message in accepted {
                            message.fail(reason.clone());
                        }
                        return Err(reason.into());
                    }
                }
                ctx.metrics.set_state(format!("spool: {} messages pending", end - cursor + outstanding.len() as u64));
            }
        }
    }
}
