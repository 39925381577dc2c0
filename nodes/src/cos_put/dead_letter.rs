//! The dead-letter directory: messages that cannot be stored, each under its
//! key with a `.error.json` beside it, so that they can be looked at and
//! replayed (a `files` source reads them back).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use flowrun_runtime::{Message, Payload};

use super::fs::FsStore;
use super::retry::{Failure, PutError};

pub struct DeadLetter {
    dir: PathBuf,
    files: Arc<FsStore>,
}

impl DeadLetter {
    pub fn new(dir: PathBuf) -> Self {
        DeadLetter {
            files: Arc::new(FsStore::new(dir.clone(), false, true)),
            dir,
        }
    }

    /// Writes `message` and why it was refused.
    pub async fn write(
        &self,
        key: &str,
        message: &Message,
        error: &PutError,
    ) -> Result<(), PutError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            PutError::new(
                Failure::Store,
                format!("cannot create {}: {e}", self.dir.display()),
            )
        })?;
        let body = match &message.payload {
            Payload::Bytes(bytes) => bytes.clone(),
            Payload::Frame(frame) => frame.data.clone(),
        };
        let why = serde_json::json!({
            "key": key,
            "error": error.text,
            "meta": message.meta,
        });
        self.files.put(key, body).await?;
        self.files
            .put(&format!("{key}.error.json"), Bytes::from(why.to_string()))
            .await
    }
}
