//! Watching a spec file for changes.
//!
//! Editors save by writing a temporary file and renaming it over the spec,
//! which replaces the inode a file watch would hold: so the spec's *parent
//! directory* is watched, and events are filtered to the spec's name. Bursts
//! of events from one save are debounced into one notification.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};
use tokio::sync::mpsc;

/// How long events must stay quiet before a change is reported. Short, as
/// the reload deadline is 100 ms from save to live graph.
pub const DEBOUNCE: Duration = Duration::from_millis(20);

/// A running watch; dropping it stops watching.
pub struct SpecWatcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
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

/// Watches `spec`; each change (or burst of changes) sends one `()` on the
/// returned channel. Changes that arrive while one is pending are merged.
pub fn watch(spec: &Path) -> Result<(SpecWatcher, mpsc::Receiver<()>), WatchError> {
    let spec = std::path::absolute(spec).unwrap_or_else(|_| spec.to_path_buf());
    let dir = spec
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = spec.file_name().map(|n| n.to_owned());
    let (tx, rx) = mpsc::channel(1);
    let mut debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
        let Ok(events) = result else { return };
        let touches_spec = events
            .iter()
            .flat_map(|e| e.paths.iter())
            .any(|p| p.file_name() == name.as_deref());
        if touches_spec {
            // Full means a reload is already pending and will read the newest file.
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| WatchError::Notify {
        path: dir.clone(),
        source,
    })?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|source| WatchError::Notify {
            path: dir.clone(),
            source,
        })?;
    Ok((
        SpecWatcher {
            _debouncer: debouncer,
        },
        rx,
    ))
}
