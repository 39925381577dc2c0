//! The `fs` backend: objects as files under a directory, typically the
//! mount point of a bucket mounted with s3fs-fuse.
//!
//! Each object is written to a hidden temporary name beside its final one
//! and renamed into place, so a reader (or s3fs, which uploads on close)
//! never sees a half-written object under its real key.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use schemars::JsonSchema;
use serde::Deserialize;

use super::retry::{Failure, PutError};

/// The longest file name most filesystems (and s3fs) accept, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// Where the `fs` backend writes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsConfig {
    /// The directory objects are written under (a bucket's s3fs mount
    /// point, or any directory). Relative to the spec's directory. It must
    /// exist: a missing mount must not silently fill the local disk.
    pub root: String,
    /// Flush each object (and its folder) to stable storage before
    /// acknowledging it. Slower; on s3fs the upload already happens on close.
    /// Default false.
    #[serde(default)]
    pub fsync: bool,
    /// Write to a hidden temporary name and rename it into place, so no
    /// half-written object is ever visible under its key. Default true.
    /// On s3fs a rename is a server-side copy and a delete under the
    /// folder's lock: `false` writes in place, several times faster, but
    /// s3fs shows an empty object under the key until the write is closed.
    #[serde(default = "default_atomic")]
    pub atomic: bool,
    /// Also write each message's metadata, as JSON, to `<key>.meta.json`
    /// beside its object (what the `s3` backend keeps as `x-amz-meta-*`):
    /// for a folder of dead letters, where `dead_letter_reason` says why
    /// each was refused. Default false.
    #[serde(default)]
    pub metadata_file: bool,
}

fn default_atomic() -> bool {
    true
}

pub struct FsStore {
    root: PathBuf,
    fsync: bool,
    atomic: bool,
    /// Makes temporary names unique among this process's concurrent writes.
    counter: AtomicU64,
}

impl FsStore {
    pub fn new(root: PathBuf, fsync: bool, atomic: bool) -> Self {
        FsStore {
            root,
            fsync,
            atomic,
            counter: AtomicU64::new(0),
        }
    }

    pub fn describe(&self) -> String {
        self.root.display().to_string()
    }

    /// The file an object is written to.
    pub fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    /// Writes `body` as `key` (already sanitised: relative, no `..`).
    pub async fn put(self: &Arc<Self>, key: &str, body: Bytes) -> Result<(), PutError> {
        let store = self.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || store.put_blocking(&key, &body))
            .await
            .map_err(|e| PutError::new(Failure::Transient, format!("write task failed: {e}")))?
    }

    fn put_blocking(&self, key: &str, body: &[u8]) -> Result<(), PutError> {
        if !self.root.is_dir() {
            return Err(PutError::new(
                Failure::Store,
                format!(
                    "cannot store {key}: the root {} is not a directory (is the bucket mounted?)",
                    self.root.display()
                ),
            ));
        }
        if let Some(long) = key.split('/').find(|s| s.len() > MAX_NAME_BYTES) {
            return Err(PutError::new(
                Failure::Message,
                format!(
                    "cannot store {key} under {}: `{long}` is longer than the {MAX_NAME_BYTES} bytes a file name may have",
                    self.root.display()
                ),
            ));
        }
        let path = self.root.join(key);
        let fail = |what: &str, error: std::io::Error| {
            PutError::new(
                classify(&error),
                format!(
                    "cannot store {key} under {}: {what}: {error}",
                    self.root.display()
                ),
            )
        };
        let parent = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|e| fail("cannot create its folder", e))?;
        if self.atomic {
            self.write_and_rename(&path, parent, body)
                .map_err(|e| fail("cannot write it", e))?;
        } else {
            write_file(&path, body, self.fsync).map_err(|e| fail("cannot write it", e))?;
        }
        if self.fsync {
            sync_dir(parent).map_err(|e| fail("cannot sync its folder", e))?;
        }
        Ok(())
    }

    fn write_and_rename(&self, path: &Path, parent: &Path, body: &[u8]) -> std::io::Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let temporary = parent.join(format!(".{name}.{}-{n}.part", std::process::id()));
        let written = write_file(&temporary, body, self.fsync)
            .and_then(|()| std::fs::rename(&temporary, path));
        if written.is_err() {
            // Best effort: a leftover hidden part file is harmless.
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }
}

fn write_file(path: &Path, body: &[u8], fsync: bool) -> std::io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    file.write_all(body)?;
    if fsync {
        file.sync_all()?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Which IO errors may pass by themselves. A FUSE mount whose server is
/// down reports plain IO errors, so anything not known to be about this
/// object or this configuration is retried.
fn classify(error: &std::io::Error) -> Failure {
    match error.kind() {
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => Failure::Store,
        ErrorKind::InvalidInput
        | ErrorKind::FileTooLarge
        | ErrorKind::NotADirectory
        | ErrorKind::IsADirectory => Failure::Message,
        _ => Failure::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_through_a_temporary_name_and_creates_folders() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsStore::new(dir.path().to_path_buf(), true, true));
        store
            .put("a/b/test0.png", Bytes::from_static(b"png"))
            .await
            .unwrap();
        store
            .put("a/b/test0.png", Bytes::from_static(b"again"))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a/b/test0.png")).unwrap(),
            b"again"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["test0.png"], "no part file is left behind");
    }

    #[tokio::test]
    async fn a_missing_root_is_a_store_failure_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("not-mounted");
        let store = Arc::new(FsStore::new(root.clone(), false, true));
        let error = store.put("k", Bytes::new()).await.unwrap_err();
        assert_eq!(error.failure, Failure::Store);
        assert!(error.text.contains(&root.display().to_string()), "{error}");
        assert!(!root.exists());
    }

    #[tokio::test]
    async fn a_key_under_a_file_is_a_message_failure() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"").unwrap();
        let store = Arc::new(FsStore::new(dir.path().to_path_buf(), false, false));
        let error = store.put("f/k", Bytes::new()).await.unwrap_err();
        assert!(error.text.contains("cannot store f/k"), "{error}");
    }
}
