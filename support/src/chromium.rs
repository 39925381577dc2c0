//! Debian's headless Chromium on the pages flowrun serves (the preview,
//! the gallery): what a user's browser shows once the page's scripts ran.

use std::path::Path;
use std::process::Command;

/// Where `scripts/setup.sh` installs it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Loads `url` with its own `profile` folder, gives the page's scripts
/// `budget_ms` of virtual time, and returns what Chromium printed (the
/// DOM with `--dump-dom` in `extra`); fails if Chromium failed.
pub fn run(url: &str, profile: &Path, budget_ms: u32, extra: &[&str]) -> String {
    let output = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,1000",
        ])
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs (scripts/setup.sh installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
