//! Where messages that cannot be stored go: a directory (each under its key
//! with a `.error.json` beside it, so that they can be looked at and
//! replayed — a `files` source reads them back) or an MQTT topic
//! ([`super::dead_letter_topic`]).

use std::path::PathBuf;
use std::sync::Arc;

use crate::mqtt::client::Options;
use bytes::Bytes;
use flowrun_runtime::{Message, Payload};

use super::dead_letter_topic::{DeadLetterTopic, TopicPublisher};
use super::fs::FsStore;
use super::retry::{Failure, PutError};

/// The destination as configured; started with the node. Boxed: a broker's
/// settings are large and the directory form is the common one.
pub enum Target {
    Dir(PathBuf),
    Topic(Box<(DeadLetterTopic, Options)>),
}

pub enum DeadLetter {
    Dir { dir: PathBuf, files: Arc<FsStore> },
    Topic(Box<TopicPublisher>),
}

impl DeadLetter {
    /// Opens `target`; a topic's connection starts here (`node` names it in logs).
    pub fn start(target: Target, node: &str) -> Self {
        match target {
            Target::Dir(dir) => DeadLetter::Dir {
                files: Arc::new(FsStore::new(dir.clone(), false, true)),
                dir,
            },
            Target::Topic(topic) => {
                let (config, options) = *topic;
                DeadLetter::Topic(Box::new(TopicPublisher::start(&config, options, node)))
            }
        }
    }

    /// Writes `message` and why it was refused.
    pub async fn write(
        &self,
        key: &str,
        message: &Message,
        error: &PutError,
    ) -> Result<(), PutError> {
        let body = match &message.payload {
            Payload::Bytes(bytes) => bytes.clone(),
            // Not fed to cos_put: validation lets only bytes in.
            Payload::Typed(_) => Bytes::new(),
        };
        let why = Bytes::from(
            serde_json::json!({
                "key": key,
                "error": error.text,
                "meta": message.meta,
            })
            .to_string(),
        );
        match self {
            DeadLetter::Dir { dir, files } => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| {
                    PutError::new(
                        Failure::Store,
                        format!("cannot create {}: {e}", dir.display()),
                    )
                })?;
                files.put(key, body).await?;
                files.put(&format!("{key}.error.json"), why).await
            }
            DeadLetter::Topic(topic) => topic.write(key, body, why).await,
        }
    }
}
