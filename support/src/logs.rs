//! Every log line of a test binary, at DEBUG: kept in memory for the tests
//! that assert on them, and written under `target/test-logs/`, where
//! `scripts/scan-logs.sh` fails the suite if any test secret (a value with
//! [`SECRET_MARK`] in it) shows up in a log line.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// In every password and secret key the tests use, so that the scan can
/// recognise them in any log without a list of values.
pub const SECRET_MARK: &str = "flowrun-secret";

/// A secret value for the tests, recognisable by the log scan.
pub fn secret(name: &str) -> String {
    format!("{SECRET_MARK}-{name}")
}

/// `target/test-logs/`.
pub fn dir() -> PathBuf {
    let dir = crate::target_dir().join("test-logs");
    std::fs::create_dir_all(&dir).expect("target/test-logs is writable");
    dir
}

/// A new log file: `<prefix>-<binary>-<pid>-<n>.log`.
pub fn file(prefix: &str) -> (PathBuf, File) {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let exe = std::env::current_exe().expect("the test binary's path");
    let binary = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = dir().join(format!("{prefix}-{binary}-{}-{n}.log", std::process::id()));
    let file = File::create(&path).expect("a log file in target/test-logs");
    (path, file)
}

#[derive(Clone)]
pub struct Logs {
    memory: Arc<Mutex<Vec<u8>>>,
    file: Arc<Mutex<File>>,
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.memory.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.memory.lock().unwrap().extend_from_slice(buf);
        self.file.lock().unwrap().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.lock().unwrap().flush()
    }
}

/// Installs the binary's log subscriber (once) and returns its logs.
pub fn init() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs {
            memory: Arc::default(),
            file: Arc::new(Mutex::new(file("nodes").1)),
        };
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .init();
        logs
    })
}
