//! `mqtt_pub` with a spool: input → disk (acknowledged once durable) →
//! broker (removed from disk once acknowledged), in arrival order.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use flowrun_runtime::{Message, NodeContext, NodeError};
use futures::FutureExt;

use super::client::{Event, Publish};
use super::link::{Link, LinkEvent};
use super::outgoing::Outgoing;
use super::outstanding::{Outstanding, Settled};
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

/// A spooled `mqtt_pub` at work.
struct Spooled {
    out: Outgoing,
    spool: Shared,
    link: Link,
    /// Spooled messages handed to the connection, by spool key.
    outstanding: Outstanding<u64>,
    /// The spool key to send next.
    cursor: u64,
    /// The spool key the next message will get.
    end: u64,
    /// What the spool holds, and may hold at most (`spool.max_bytes`).
    bytes: u64,
    max_bytes: u64,
    input_done: bool,
}

pub(super) async fn run(
    out: Outgoing,
    dir: PathBuf,
    max_bytes: u64,
    mut ctx: NodeContext,
) -> Result<(), NodeError> {
    let mut node = Spooled::open(out, dir, max_bytes, &ctx).await?;
    loop {
        node.send_from_spool().await?;
        if node.input_done && node.outstanding.is_empty() && node.cursor >= node.end {
            return Ok(());
        }
        tokio::select! {
            event = node.link.events.recv() => match event {
                Some(LinkEvent::Packet(event)) => node.on_packet(&event, &ctx).await?,
                Some(LinkEvent::Connected { .. } | LinkEvent::Disconnected) => {}
                None => return Err("the MQTT connection task ended".into()),
            },
            message = ctx.input.recv(), if !node.input_done && node.bytes < node.max_bytes => {
                match message {
                    Some(first) => node.take_input(first, &mut ctx).await?,
                    None => node.input_done = true,
                }
            }
        }
    }
}

impl Spooled {
    async fn open(
        out: Outgoing,
        dir: PathBuf,
        max_bytes: u64,
        ctx: &NodeContext,
    ) -> Result<Spooled, NodeError> {
        let opened = tokio::task::spawn_blocking(move || Spool::open(&dir))
            .await
            .map_err(|e| format!("spool task: {e}"))??;
        let (held, bytes, end) = (opened.count()?, opened.bytes(), opened.next_key());
        if held > 0 {
            tracing::info!(node = %ctx.id, held, bytes, "spool holds messages from an earlier run: sending them first");
        }
        let link = out.connect(ctx);
        Ok(Spooled {
            out,
            spool: Arc::new(Mutex::new(opened)),
            link,
            outstanding: Outstanding::default(),
            cursor: 0,
            end,
            bytes,
            max_bytes,
            input_done: false,
        })
    }

    /// Hands the connection what the spool holds beyond the cursor, up to `buffer` outstanding.
    async fn send_from_spool(&mut self) -> Result<(), NodeError> {
        let buffer = self.out.buffer;
        if self.cursor >= self.end || self.outstanding.len() >= buffer {
            return Ok(());
        }
        let (cursor, want) = (self.cursor, buffer - self.outstanding.len());
        let entries = with_spool(&self.spool, move |s| s.read(cursor, want)).await?;
        for entry in entries {
            let publish = Publish {
                topic: entry.topic,
                payload: entry.payload.into(),
                qos: self.out.qos,
                retain: self.out.retain,
                user_properties: Vec::new(),
            };
            self.link
                .client
                .try_publish(publish)
                .map_err(|e| format!("cannot hand a message to the MQTT client: {e}"))?;
            self.outstanding.push(entry.key);
            self.cursor = entry.key + 1;
        }
        Ok(())
    }

    /// The broker answered: what it settled leaves the spool, together
    /// with whatever else is already waiting, in one transaction.
    async fn on_packet(&mut self, event: &Event, ctx: &NodeContext) -> Result<(), NodeError> {
        let mut sent = Vec::new();
        let outstanding = &mut self.outstanding;
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
        settle(event);
        while let Some(Some(LinkEvent::Packet(event))) = self.link.events.recv().now_or_never() {
            settle(&event);
        }
        if !sent.is_empty() {
            ctx.metrics.sent.inc_by(sent.len() as u64);
            self.bytes =
                with_spool(&self.spool, move |s| s.remove(&sent).map(|_| s.bytes())).await?;
        }
        Ok(())
    }

    /// Spools `first` and whatever input is already waiting (up to
    /// [`BATCH`]) in one transaction, and acknowledges them once durable.
    async fn take_input(&mut self, first: Message, ctx: &mut NodeContext) -> Result<(), NodeError> {
        let mut messages = vec![first];
        while messages.len() < BATCH {
            match ctx.input.recv().now_or_never() {
                Some(Some(message)) => messages.push(message),
                Some(None) => {
                    self.input_done = true;
                    break;
                }
                None => break,
            }
        }
        let mut accepted: Vec<Message> = Vec::new();
        let mut batch: Vec<(String, Bytes)> = Vec::new();
        for message in messages {
            match self.out.prepare(&message, ctx) {
                Ok(publish) => {
                    batch.push((publish.topic, publish.payload));
                    accepted.push(message);
                }
                Err(reason) => message.reject(reason.to_string()),
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        let appended = with_spool(&self.spool, move |s| {
            s.append(&batch).map(|_| (s.bytes(), s.next_key()))
        });
        match appended.await {
            Ok((bytes, end)) => {
                (self.bytes, self.end) = (bytes, end);
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
        let pending = self.end - self.cursor + self.outstanding.len() as u64;
        ctx.metrics
            .set_state(format!("spool: {pending} messages pending"));
        Ok(())
    }
}
