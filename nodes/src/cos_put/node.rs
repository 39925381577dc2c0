//! The running `cos_put` node: up to `concurrency` puts in flight, each
//! retried while it fails transiently, each message settled only once its
//! object is stored (or set aside).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use flowrun_runtime::{
    keys, Counter, Message, Node, NodeContext, NodeError, NodeMetrics, Output, Payload,
};
use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::content::{ContentCheck, Refusal};
use super::dead_letter;
use super::fs::FsStore;
use super::key::{KeyInput, KeyTemplate};
use super::retry::{Failure, PutError};
use super::s3::S3Store;
use super::CosPutConfig;

/// The backend a node writes to.
pub enum Store {
    S3 {
        store: Arc<S3Store>,
        /// The region to create the bucket in, when it should be created.
        create_bucket: Option<String>,
    },
    Fs {
        store: Arc<FsStore>,
        /// Whether each object gets a `<key>.meta.json` beside it.
        metadata_file: bool,
    },
}

impl Store {
    fn describe(&self) -> String {
        match self {
            Store::S3 { store, .. } => store.describe(),
            Store::Fs { store, .. } => store.describe(),
        }
    }

    /// Where the object under `key` is, for a person to find it.
    fn location(&self, key: &str) -> String {
        match self {
            Store::S3 { store, .. } => store.location(key),
            Store::Fs { store, .. } => store.location(key),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        content_type: &str,
        message: &Message,
        metadata: &HashMap<String, String>,
    ) -> Result<(), PutError> {
        match self {
            Store::S3 { store, .. } => store.put(key, body, content_type, metadata.clone()).await,
            Store::Fs {
                store,
                metadata_file,
            } => {
                store.put(key, body).await?;
                if !metadata_file {
                    return Ok(());
                }
                // All of it, not only the `metadata` list: a file has no
                // header size limit, and a dead letter's reason is in it.
                let meta = serde_json::to_vec_pretty(&message.meta).map_err(|e| {
                    PutError::new(
                        Failure::Message,
                        format!("cannot encode the metadata of {key}: {e}"),
                    )
                })?;
                store
                    .put(&format!("{key}.meta.json"), Bytes::from(meta))
                    .await
            }
        }
    }
}

pub struct CosPut {
    config: CosPutConfig,
    template: KeyTemplate,
    content: ContentCheck,
    store: Store,
}

impl CosPut {
    pub fn new(
        config: CosPutConfig,
        template: KeyTemplate,
        content: ContentCheck,
        store: Store,
    ) -> Self {
        CosPut {
            config,
            template,
            content,
            store,
        }
    }
}

/// What every in-flight put shares.
struct Shared {
    config: CosPutConfig,
    template: KeyTemplate,
    content: ContentCheck,
    store: Store,
    /// Where refused messages go when a node takes the `dead_letter` port.
    output: Output,
    metrics: Arc<NodeMetrics>,
    stop: CancellationToken,
    /// `{seq}` for messages that carry none.
    counter: AtomicU64,
    /// Exported as `flowrun_node_events_total{event="stored"|…}`; they
    /// count across restarts, as the node's other counters do.
    stored: Counter,
    retried: Counter,
    dead_lettered: Counter,
    /// One per [`Refusal`] event, when the content check is on.
    refused: Vec<(&'static str, Counter)>,
    /// The last transient failure, shown until the next success.
    trouble: Mutex<Option<String>>,
    /// The store failed (down, refusing, not mounted) and has not taken an
    /// object since: its failures are logged once, not once per message
    /// per attempt.
    store_down: AtomicBool,
    /// Where the last object stored is ("where are my faces?").
    last: Mutex<Option<String>>,
}

impl Node for CosPut {
    fn run(self: Box<Self>, mut ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let this = *self;
            let shared = Arc::new(Shared {
                output: ctx.output.clone(),
                config: this.config,
                template: this.template,
                refused: if this.content.is_off() {
                    Vec::new()
                } else {
                    Refusal::EVENTS
                        .iter()
                        .map(|event| (*event, ctx.metrics.event(event)))
                        .collect()
                },
                content: this.content,
                store: this.store,
                metrics: ctx.metrics.clone(),
                stop: ctx.stop_token(),
                counter: AtomicU64::new(0),
                stored: ctx.metrics.event("stored"),
                retried: ctx.metrics.event("retried"),
                dead_lettered: ctx.metrics.event("dead_lettered"),
                trouble: Mutex::new(None),
                store_down: AtomicBool::new(false),
                last: Mutex::new(None),
            });
            shared.prepare().await?;
            shared.show_state();
            tracing::info!(node = %ctx.id, store = %shared.store.describe(), "storing objects");
            let permits = Arc::new(Semaphore::new(shared.config.concurrency.max(1)));
            let mut puts = JoinSet::new();
            loop {
                let permit = permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| "the put limiter closed")?;
                let Some(message) = ctx.input.recv().await else {
                    break;
                };
                let shared = shared.clone();
                puts.spawn(async move {
                    shared.handle(message).await;
                    drop(permit);
                });
                while puts.try_join_next().is_some() {}
            }
            while puts.join_next().await.is_some() {}
            Ok(())
        })
    }
}

impl Shared {
    /// Creates the bucket when asked to (retrying while the store is
    /// unreachable: puts cannot succeed before), else checks that it exists
    /// (once: an unreachable store is the puts' business, retried per message).
    async fn prepare(&self) -> Result<(), NodeError> {
        let Store::S3 {
            store,
            create_bucket,
        } = &self.store
        else {
            return Ok(());
        };
        let Some(region) = create_bucket else {
            return match store.check_bucket().await {
                Err(error) if error.failure != Failure::Transient => self.failed(error),
                _ => Ok(()),
            };
        };
        let mut attempt = 0;
        loop {
            match store.create_bucket(region).await {
                Ok(()) => return Ok(()),
                Err(error) if error.failure == Failure::Transient => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "cannot create the bucket yet; retrying");
                    self.metrics.set_state(format!("retrying: {error}"));
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.retry.backoff(attempt)) => {}
                        _ = self.stop.cancelled() => return Ok(()),
                    }
                }
                Err(error) => return self.failed(error),
            }
        }
    }

    fn failed(&self, error: PutError) -> Result<(), NodeError> {
        self.metrics.set_state(format!("failed: {error}"));
        Err(error.into())
    }

    async fn handle(&self, message: Message) {
        let Payload::Bytes(body) = &message.payload else {
            message.reject("cos_put stores encoded bytes, and this message holds a frame");
            return;
        };
        let body = body.clone();
        let content_type = self.content_type(&message, &body);
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let input = KeyInput {
            prefix: &self.config.prefix,
            counter: n,
            content_type: &content_type,
            now_ms: crate::util::now_ms(),
        };
        let key = match self.template.render(&message, &input) {
            Ok(key) => key,
            Err(error) => {
                let error = PutError::new(
                    Failure::Message,
                    format!(
                        "cannot make a key for a message to {}: {error}",
                        self.store.describe()
                    ),
                );
                let fallback = format!("unkeyed/{}-{n}", input.now_ms);
                return self.give_up(message, &fallback, error).await;
            }
        };
        if let Err(refusal) = self.content.check(&body) {
            if let Some((_, counter)) = self.refused.iter().find(|(e, _)| *e == refusal.event()) {
                counter.inc();
            }
            let error = PutError::new(Failure::Message, format!("not stored: {refusal}"));
            return self.give_up(message, &key, error).await;
        }
        let metadata = self.user_metadata(&message);
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let error = match self
                .store
                .put(&key, body.clone(), &content_type, &message, &metadata)
                .await
            {
                Ok(()) => {
                    self.stored.inc();
                    let location = self.store.location(&key);
                    tracing::debug!(%location, "stored");
                    if let Ok(mut last) = self.last.lock() {
                        *last = Some(location);
                    }
                    if self.store_down.swap(false, Ordering::Relaxed) {
                        tracing::info!(store = %self.store.describe(), "the store takes objects again");
                    }
                    self.clear_trouble();
                    message.ack();
                    return;
                }
                Err(error) if error.failure == Failure::Transient => error,
                Err(error) => return self.give_up(message, &key, error).await,
            };
            attempt += 1;
            let limit = self.config.retry.give_up_after_s;
            if limit.is_some_and(|s| started.elapsed().as_secs() >= s) {
                tracing::error!(%error, attempt, "giving the message back after retrying");
                self.metrics.errors.inc();
                message.fail(error.text);
                return;
            }
            self.retried.inc();
            if self.store_went_down() {
                tracing::warn!(%error, attempt, "put failed; retrying (until the store takes an object again, further failures are logged at debug level)");
            } else {
                tracing::debug!(%error, attempt, "put failed; retrying");
            }
            self.set_trouble(format!("retrying: {error}"));
            tokio::select! {
                _ = tokio::time::sleep(self.config.retry.backoff(attempt)) => {}
                _ = self.stop.cancelled() => {
                    message.fail(format!("stopped before it was stored: {error}"));
                    return;
                }
            }
        }
    }

    /// A message that cannot be stored: sent on the `dead_letter` port when
    /// a node takes it — with its acknowledgement, which that node settles —
    /// else nacked.
    async fn give_up(&self, mut message: Message, key: &str, error: PutError) {
        self.metrics.errors.inc();
        if self.output.is_connected(Some(dead_letter::PORT)) {
            // Handled by the graph: a warning, not an error, in the log.
            tracing::warn!(%error, port = dead_letter::PORT, "message not stored; sent on");
            dead_letter::mark(&mut message, key, &error);
            self.output.send_to(dead_letter::PORT, message).await;
            self.dead_lettered.inc();
            self.show_state();
            return;
        }
        if error.failure == Failure::Message {
            tracing::error!(%error, "message not stored");
        } else if self.store_went_down() {
            tracing::error!(%error, "message not stored (until the store takes an object again, further failures are logged at debug level)");
        } else {
            tracing::debug!(%error, "message not stored (the store is still failing)");
        }
        self.set_trouble(error.text.clone());
        match error.failure {
            Failure::Message => message.reject(error.text),
            Failure::Store | Failure::Transient => message.fail(error.text),
        }
    }

    fn content_type(&self, message: &Message, body: &[u8]) -> String {
        self.config
            .content_type
            .clone()
            .or_else(|| message.meta_text(keys::CONTENT_TYPE))
            .unwrap_or_else(|| crate::util::sniff_content_type(body).to_owned())
    }

    /// The allowed metadata, as printable ASCII (what HTTP headers carry).
    fn user_metadata(&self, message: &Message) -> HashMap<String, String> {
        self.config
            .metadata
            .iter()
            .filter_map(|name| {
                let value = message.meta_text(name)?;
                let value = value
                    .chars()
                    .map(|c| {
                        if c.is_ascii_graphic() || c == ' ' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                Some((name.to_ascii_lowercase(), value))
            })
            .collect()
    }

    /// Marks the store as failing; whether that is news (it had taken the
    /// last object, or none was tried yet), so worth a log line above debug.
    fn store_went_down(&self) -> bool {
        !self.store_down.swap(true, Ordering::Relaxed)
    }

    fn set_trouble(&self, text: String) {
        if let Ok(mut slot) = self.trouble.lock() {
            *slot = Some(text);
        }
        self.show_state();
    }

    fn clear_trouble(&self) {
        if let Ok(mut slot) = self.trouble.lock() {
            *slot = None;
        }
        self.show_state();
    }

    /// The node's counters in its state word: stored, retried, dead-lettered,
    /// and the current trouble if any.
    fn show_state(&self) {
        let mut state = format!(
            "stored={} retried={} dead_lettered={}",
            self.stored.get(),
            self.retried.get(),
            self.dead_lettered.get(),
        );
        if let Some(last) = self.last.lock().ok().and_then(|l| l.clone()) {
            state.push_str(" last=");
            state.push_str(&last);
        }
        if let Some(trouble) = self.trouble.lock().ok().and_then(|t| t.clone()) {
            state.push_str("; ");
            state.push_str(&trouble);
        }
        self.metrics.set_state(state);
    }
}
