//! Headless Debian `chromium` for the tests that render `/_orchestrate` in a real browser:
//! `--dump-dom` for the DOM after layout, `--screenshot` for an artifact a person can look at.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where test artifacts go: `target/test-artifacts/` of the workspace.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Debian's `chromium` (or `chromium-browser`) on the `PATH`.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// `chromium`, or `None` after saying loudly that the browser test of `what` is skipped; with
/// `CI=true` a missing browser fails the test instead.
pub fn chromium_or_skip(what: &str) -> Option<PathBuf> {
    if let Some(found) = chromium() {
        return Some(found);
    }
    let message = format!(
        "`chromium` is not installed, so {what} was not rendered in a browser; \
         install it with `apt-get install -y chromium` (scripts/test does)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("\n!!!!!!!!!! SKIPPED: {message} !!!!!!!!!!\n");
    None
}

/// Runs headless chromium with `action` (e.g. `--dump-dom`) on `url`, in a fresh profile,
/// killing it after a minute. Returns its standard output.
pub fn run_chromium(chromium: &Path, action: &[String], url: &str) -> String {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = std::env::temp_dir().join(format!("orchestrate-chromium-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&profile).unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(action)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium {action:?} {url} did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium {action:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A screenshot of `url` at `width`×`height` saved as `path`, checked to be a rendered PNG.
pub fn screenshot(chromium: &Path, url: &str, path: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(path);
    run_chromium(
        chromium,
        &[format!("--screenshot={}", path.display()), format!("--window-size={width},{height}")],
        url,
    );
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("no screenshot at {path:?}: {e}"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{path:?} is not a rendered PNG");
}
