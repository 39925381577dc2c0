//! The edge spool of `mqtt_pub`: messages that are not yet acknowledged by
//! the broker, on disk in a redb database, so that what was captured while
//! the link was down survives a `kill -9` or a power cut.
//!
//! A message is acknowledged upstream once its insert is committed with
//! redb's immediate durability (fsync); it is removed after the broker's
//! PUBACK. Removals commit with eventual durability: a removal lost in a
//! crash only means the message is sent once more (at least once).

use std::path::Path;

use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use schemars::JsonSchema;
use serde::Deserialize;

/// Key: arrival order. Value: topic length (2 bytes, big endian), topic, payload.
const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("spool");

/// `spool:` on `mqtt_pub`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory of the spool database (created if missing); relative to the spec.
    pub dir: String,
    /// Most bytes of payload kept; when full the node takes no more input
    /// (backpressure). Default 1 GiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    1 << 30
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("cannot create the spool directory {0}: {1}")]
    Dir(String, std::io::Error),
    #[error("spool database: {0}")]
    Db(String),
}

fn db_error<E: std::fmt::Display>(error: E) -> SpoolError {
    SpoolError::Db(error.to_string())
}

/// One spooled message.
#[derive(Debug, Clone, PartialEq)]
pub struct Spooled {
    pub key: u64,
    pub topic: String,
    pub payload: Vec<u8>,
}

pub struct Spool {
    db: Database,
    next_key: u64,
    bytes: u64,
}

impl Spool {
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(|e| SpoolError::Dir(dir.display().to_string(), e))?;
        let db = Database::create(dir.join("spool.redb")).map_err(db_error)?;
        let mut spool = Spool {
            db,
            next_key: 0,
            bytes: 0,
        };
        let txn = spool.db.begin_write().map_err(db_error)?;
        txn.open_table(TABLE).map_err(db_error)?;
        txn.commit().map_err(db_error)?;
        let read = spool.db.begin_read().map_err(db_error)?;
        let table = read.open_table(TABLE).map_err(db_error)?;
        for entry in table.iter().map_err(db_error)? {
            let (key, value) = entry.map_err(db_error)?;
            spool.next_key = key.value() + 1;
            spool.bytes += value.value().len() as u64;
        }
        Ok(spool)
    }

    /// The key the next appended message gets.
    pub fn next_key(&self) -> u64 {
        self.next_key
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn count(&self) -> Result<u64, SpoolError> {
        let read = self.db.begin_read().map_err(db_error)?;
        read.open_table(TABLE)
            .map_err(db_error)?
            .len()
            .map_err(db_error)
    }

    /// Stores `(topic, payload)` pairs durably, in order.
    pub fn append(&mut self, batch: &[(String, bytes::Bytes)]) -> Result<(), SpoolError> {
        let txn = self.db.begin_write().map_err(db_error)?;
        let mut added = 0u64;
        {
            let mut table = txn.open_table(TABLE).map_err(db_error)?;
            for (i, (topic, payload)) in batch.iter().enumerate() {
                let mut value = Vec::with_capacity(2 + topic.len() + payload.len());
                value.extend_from_slice(&(topic.len() as u16).to_be_bytes());
                value.extend_from_slice(topic.as_bytes());
                value.extend_from_slice(payload);
                table
                    .insert(self.next_key + i as u64, value.as_slice())
                    .map_err(db_error)?;
                added += value.len() as u64;
            }
        }
        txn.commit().map_err(db_error)?;
        self.next_key += batch.len() as u64;
        self.bytes += added;
        Ok(())
    }

    /// Up to `n` messages from `from` on, in order.
    pub fn read(&self, from: u64, n: usize) -> Result<Vec<Spooled>, SpoolError> {
        let read = self.db.begin_read().map_err(db_error)?;
        let table = read.open_table(TABLE).map_err(db_error)?;
        let mut out = Vec::new();
        for entry in table.range(from..).map_err(db_error)?.take(n) {
            let (key, value) = entry.map_err(db_error)?;
            let value = value.value();
            let split = value
                .get(..2)
                .map(|len| 2 + usize::from(u16::from_be_bytes([len[0], len[1]])))
                .filter(|&end| end <= value.len())
                .ok_or_else(|| SpoolError::Db(format!("entry {} is damaged", key.value())))?;
            out.push(Spooled {
                key: key.value(),
                topic: String::from_utf8_lossy(&value[2..split]).into_owned(),
                payload: value[split..].to_vec(),
            });
        }
        Ok(out)
    }

    /// Removes messages the broker acknowledged.
    pub fn remove(&mut self, keys: &[u64]) -> Result<(), SpoolError> {
        let mut txn = self.db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Eventual);
        let mut removed = 0u64;
        {
            let mut table = txn.open_table(TABLE).map_err(db_error)?;
            for key in keys {
                if let Some(value) = table.remove(key).map_err(db_error)? {
                    removed += value.value().len() as u64;
                }
            }
        }
        txn.commit().map_err(db_error)?;
        self.bytes = self.bytes.saturating_sub(removed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        spool
            .append(&[
                ("a/1".into(), bytes::Bytes::from_static(b"one")),
                ("a/2".into(), bytes::Bytes::from_static(b"two")),
            ])
            .unwrap();
        spool.remove(&[0]).unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path()).unwrap();
        let held = spool.read(0, 10).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(
            (
                held[0].key,
                held[0].topic.as_str(),
                held[0].payload.as_slice()
            ),
            (1, "a/2", &b"two"[..])
        );
        spool
            .append(&[("a/3".into(), bytes::Bytes::from_static(b"three"))])
            .unwrap();
        assert_eq!(spool.read(0, 10).unwrap().last().unwrap().key, 2);
        assert_eq!(spool.count().unwrap(), 2);
    }
}
