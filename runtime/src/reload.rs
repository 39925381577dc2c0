//! Watching a spec file for changes of its content.
//!
//! What users do to a spec, and what the watch must make of it:
//!
//! - Editors save by writing a temporary file and renaming it over the spec
//!   (vim, VS Code, `sed -i`), which replaces the inode a watch on the file
//!   would hold: so the spec's *directory* is watched, and events are kept
//!   only when they name the spec.
//! - Kubernetes mounts a ConfigMap as `spec.yaml -> ..data/spec.yaml`, and
//!   updates it by renaming a new `..data` symlink over the old one: the
//!   symlinks on the way to the file are watched too ([`Watched`]), and the
//!   directory of the file they lead to.
//! - Reading the spec — `cat`, `cp` from it, `flowrun check`, flowrun's own
//!   re-read after a change — produces inotify `OPEN`/`CLOSE_NOWRITE`
//!   events. Those are dropped: they are what made an endless reload storm
//!   once (each re-read fired the next event). So are changes of metadata
//!   alone (`touch`, `chmod`).
//! - Several events of one save are debounced into one notification; and
//!   since a save may still leave the content as it was, [`SpecFile`]
//!   compares the bytes with the last ones read before anything is reloaded.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, AccessMode, ModifyKind};
use notify_debouncer_full::notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use tokio::sync::mpsc;

/// How long events must stay quiet before a change is reported. Short, as
/// the reload deadline is 100 ms from save to live graph.
pub const DEBOUNCE: Duration = Duration::from_millis(20);

/// Symlinks followed at most on the way to the spec, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// A running watch; dropping it stops watching.
pub struct SpecWatcher {
    debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
    spec: PathBuf,
    watched: Arc<Mutex<Watched>>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {source}")]
    Notify {
        path: PathBuf,
        #[source]
        source: notify_debouncer_full::notify::Error,
    },
}

/// The paths whose changes can change what reading the spec gives: the
/// spec itself, every symlink met on the way to its file, and that file;
/// and the directories holding them, which are the ones watched.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Watched {
    pub paths: BTreeSet<PathBuf>,
    pub dirs: BTreeSet<PathBuf>,
}

impl Watched {
    /// Follows `spec` through its symlinks (its own and its directories'),
    /// as far as they exist now.
    pub fn of(spec: &Path) -> Watched {
        let mut watched = Watched::default();
        let mut current = lexical(&std::path::absolute(spec).unwrap_or_else(|_| spec.into()));
        for _ in 0..MAX_LINKS {
            watched.add(&current);
            // The first symlink on the way, from the root down.
            let link = current
                .ancestors()
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .find(|a| a.parent().is_some() && is_symlink(a))
                .map(Path::to_path_buf);
            let Some(link) = link else { break };
            let Ok(target) = std::fs::read_link(&link) else {
                break;
            };
            watched.add(&link);
            let rest = current.strip_prefix(&link).unwrap_or(Path::new(""));
            let base = link.parent().unwrap_or(Path::new("/"));
            current = lexical(&base.join(target).join(rest));
        }
        watched
    }

    fn add(&mut self, path: &Path) {
        if let Some(dir) = path.parent() {
            self.dirs.insert(dir.to_path_buf());
        }
        self.paths.insert(path.to_path_buf());
    }

    /// Whether an event on `path` can change the spec's content.
    fn concerns(&self, path: &Path) -> bool {
        self.paths.contains(path) || self.paths.contains(&lexical(path))
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// `a/./b/../c` → `a/c`, without touching the file system (a symlink's
/// target is relative to the link's directory, not to where `..` leads
/// through other links).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether an event of this kind can change a file's content. Reads
/// (open, close after reading) and metadata-only changes cannot.
fn may_change_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Any | EventKind::Other => true,
    }
}

/// Watches `spec`; each change that may have changed its content (or a
/// burst of them) sends one `()` on the returned channel. Changes that
/// arrive while one is pending are merged.
pub fn watch(spec: &Path) -> Result<(SpecWatcher, mpsc::Receiver<()>), WatchError> {
    let watched = Arc::new(Mutex::new(Watched::default()));
    let (tx, rx) = mpsc::channel(1);
    let filter = watched.clone();
    let debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        let Ok(watched) = filter.lock() else { return };
        let touches_spec = events
            .iter()
            .filter(|e| may_change_content(&e.kind))
            .flat_map(|e| e.paths.iter())
            .any(|p| watched.concerns(p));
        if touches_spec {
            // Full means a reload is already pending and will read the newest file.
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| WatchError::Notify {
        path: spec.to_path_buf(),
        source,
    })?;
    let mut watcher = SpecWatcher {
        debouncer,
        spec: spec.to_path_buf(),
        watched,
    };
    watcher.refresh()?;
    Ok((watcher, rx))
}

impl SpecWatcher {
    /// Follows the spec's symlinks again (a ConfigMap update points
    /// `..data` at a new directory) and watches what they lead to now.
    /// Directories that are gone are no longer watched; the spec's own
    /// directory must stay watchable.
    pub fn refresh(&mut self) -> Result<(), WatchError> {
        let now = Watched::of(&self.spec);
        let Ok(mut watched) = self.watched.lock() else {
            return Ok(());
        };
        if *watched == now {
            return Ok(());
        }
        let spec = lexical(&std::path::absolute(&self.spec).unwrap_or_else(|_| self.spec.clone()));
        let own_dir = spec.parent().map(Path::to_path_buf);
        for dir in watched.dirs.difference(&now.dirs) {
            let _ = self.debouncer.unwatch(dir);
        }
        for dir in now.dirs.difference(&watched.dirs) {
            match self.debouncer.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {}
                // A directory a symlink leads to may vanish between the
                // look and the watch; the next change looks again.
                Err(_) if Some(dir) != own_dir.as_ref() => {}
                Err(source) => {
                    return Err(WatchError::Notify {
                        path: dir.clone(),
                        source,
                    })
                }
            }
        }
        *watched = now;
        Ok(())
    }
}

/// What reading the spec again found, against the last content read.
#[derive(Debug, PartialEq, Eq)]
pub enum Reread {
    /// New content, to check and apply.
    Changed(String),
    /// The same bytes as last time: nothing to do.
    Same,
    /// No file there (deleted, or between a delete and its re-creation).
    Missing,
    /// An empty file: a save caught between its truncation and its write.
    Empty,
    /// The file cannot be read, or is not UTF-8.
    Unreadable(String),
}

/// The spec file's content as last read, to tell real changes from saves,
/// touches and reads that leave it as it was.
#[derive(Debug)]
pub struct SpecFile {
    path: PathBuf,
    last: Option<Vec<u8>>,
}

impl SpecFile {
    pub fn new(path: &Path) -> SpecFile {
        SpecFile {
            path: path.to_path_buf(),
            last: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file: its text when it differs from the last read.
    pub fn reread(&mut self) -> Reread {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Reread::Missing,
            Err(e) => return Reread::Unreadable(e.to_string()),
        };
        if bytes.is_empty() {
            return Reread::Empty;
        }
        if self.last.as_ref() == Some(&bytes) {
            return Reread::Same;
        }
        match String::from_utf8(bytes.clone()) {
            Ok(text) => {
                self.last = Some(bytes);
                Reread::Changed(text)
            }
            Err(_) => {
                self.last = Some(bytes);
                Reread::Unreadable("the file is not UTF-8 text".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_metadata_changes_do_not_count() {
        use notify_debouncer_full::notify::event::{CreateKind, DataChange, MetadataKind};
        assert!(!may_change_content(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!may_change_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!may_change_content(&EventKind::Modify(
            ModifyKind::Metadata(MetadataKind::Any)
        )));
        assert!(may_change_content(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(may_change_content(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(may_change_content(&EventKind::Create(CreateKind::File)));
    }

    #[test]
    fn follows_configmap_style_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("..v1")).unwrap();
        std::fs::write(root.join("..v1/spec.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("..v1", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/spec.yaml", root.join("spec.yaml")).unwrap();
        let watched = Watched::of(&root.join("spec.yaml"));
        let root = lexical(&std::path::absolute(root).unwrap());
        for path in ["spec.yaml", "..data", "..data/spec.yaml", "..v1/spec.yaml"] {
            assert!(
                watched.paths.contains(&root.join(path)),
                "{path} in {watched:?}"
            );
        }
        assert!(watched.dirs.contains(&root.join("..v1")));
        assert!(!watched.concerns(&root.join("other.yaml")));
    }

    #[test]
    fn rereads_report_only_new_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spec.yaml");
        let mut file = SpecFile::new(&path);
        assert_eq!(file.reread(), Reread::Missing);
        std::fs::write(&path, "").unwrap();
        assert_eq!(file.reread(), Reread::Empty);
        std::fs::write(&path, "a").unwrap();
        assert_eq!(file.reread(), Reread::Changed("a".into()));
        assert_eq!(file.reread(), Reread::Same);
        std::fs::write(&path, "b").unwrap();
        assert_eq!(file.reread(), Reread::Changed("b".into()));
    }
}
