//! `files`: a source that reads files — a directory, one file, or a glob —
//! and sends each file's bytes as one message, in name order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use flowrun_runtime::{
    BuildContext, ConfigIssue, Inputs, Message, Metadata, Node, NodeConfig, NodeContext, NodeError,
    OutputKind, Payload, PayloadKind,
};
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;

/// Reads the files at `path` and emits one message per file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// A directory (its files, not its subdirectories), a file, or a glob
    /// such as `images/*.png`. Relative to the spec's directory.
    pub path: String,
    /// Milliseconds between files; 0 sends as fast as downstream takes them.
    #[serde(default)]
    pub interval_ms: u64,
    /// Start over after the last file instead of ending.
    #[serde(default, rename = "loop")]
    pub repeat: bool,
}

impl NodeConfig for FilesConfig {
    const TYPE: &'static str = "files";
    const DESCRIPTION: &'static str =
        "Reads files (a directory, a file or a glob) and emits each as one message";
    const INPUTS: Inputs = Inputs::None;
    const OUTPUT: OutputKind = OutputKind::Kind(PayloadKind::Bytes);

    fn check(&self) -> Vec<ConfigIssue> {
        match glob::Pattern::new(&self.path) {
            Ok(_) => Vec::new(),
            Err(error) => vec![ConfigIssue::new(
                "path",
                format!("not a valid path or glob: {error}"),
            )],
        }
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Node>, NodeError> {
        Ok(Box::new(Files {
            pattern: ctx.resolve(&self.path),
            config: self.clone(),
        }))
    }
}

struct Files {
    pattern: PathBuf,
    config: FilesConfig,
}

/// The files `pattern` names, sorted.
fn list(pattern: &Path) -> Result<Vec<PathBuf>, NodeError> {
    if pattern.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(pattern)
            .map_err(|e| format!("cannot list {}: {e}", pattern.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        return Ok(files);
    }
    let text = pattern.to_string_lossy();
    let mut files: Vec<PathBuf> = glob::glob(&text)
        .map_err(|e| format!("bad glob {text}: {e}"))?
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no files match {text}").into());
    }
    Ok(files)
}

impl Node for Files {
    fn run(self: Box<Self>, ctx: NodeContext) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let files = list(&self.pattern)?;
            let mut ticker = (self.config.interval_ms > 0)
                .then(|| tokio::time::interval(Duration::from_millis(self.config.interval_ms)));
            let mut seq = 0u64;
            loop {
                for file in &files {
                    if let Some(ticker) = ticker.as_mut() {
                        tokio::select! {
                            _ = ticker.tick() => {}
                            _ = ctx.stopping() => return Ok(()),
                        }
                    } else if ctx.is_stopping() {
                        return Ok(());
                    }
                    let data = tokio::fs::read(file)
                        .await
                        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                    let mut meta = Metadata::new();
                    meta.insert("seq".into(), seq.into());
                    meta.insert("source".into(), ctx.id.clone().into());
                    meta.insert("path".into(), file.display().to_string().into());
                    if let Some(name) = file.file_name() {
                        meta.insert(
                            "file_name".into(),
                            name.to_string_lossy().into_owned().into(),
                        );
                    }
                    meta.insert(
                        "content_type".into(),
                        crate::util::sniff_content_type(&data).into(),
                    );
                    meta.insert("timestamp_ms".into(), crate::util::now_ms().into());
                    ctx.output
                        .send(Message::new(Payload::Bytes(Bytes::from(data)), meta))
                        .await;
                    seq += 1;
                }
                if !self.config.repeat {
                    ctx.metrics.set_state(format!("done: {seq} files"));
                    return Ok(());
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_a_directory_and_a_glob_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.png", "a.png", "c.txt"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let all = list(dir.path()).unwrap();
        let names: Vec<_> = all
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.png", "b.png", "c.txt"]);
        let pngs = list(&dir.path().join("*.png")).unwrap();
        assert_eq!(pngs.len(), 2);
        let none = list(&dir.path().join("*.jpg")).unwrap_err();
        assert!(none.to_string().starts_with("no files match"), "{none}");
    }
}
