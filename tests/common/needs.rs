//! What some tests need from outside the repository, and the skip when it is
//! missing: the public corpus (`SIPAUDIT_CORPUS=DIR`, default
//! `../shared/corpus/public`, relative paths from the repository root) and
//! Wireshark's command-line tools (tshark; capinfos and editcap from
//! `wireshark-common`).
//!
//! A test without what it needs returns early after writing one line
//! `SKIPPED: <binary>::<test>: <what is missing and how to get it>` to the
//! process's stderr. The line goes to the file descriptor, not through
//! `eprintln!`, so the test harness does not capture it: `cargo test` shows
//! it beside the test's `ok`. With `SIPAUDIT_REQUIRE_ALL=1` (set by `.ci/run`)
//! the same condition fails the test instead, so CI cannot skip anything.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// The environment variable that names the public corpus.
pub const CORPUS_VAR: &str = "SIPAUDIT_CORPUS";
/// The environment variable that turns every skip into a failure.
pub const REQUIRE_VAR: &str = "SIPAUDIT_REQUIRE_ALL";

/// Where the public corpus is expected (it may be missing).
pub fn corpus_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os(CORPUS_VAR) {
        Some(d) if !d.is_empty() => root.join(d),
        _ => root.join("../shared/corpus/public"),
    }
}

/// The public corpus, or `None` after the skip note (a failure under
/// `SIPAUDIT_REQUIRE_ALL=1`).
pub fn corpus() -> Option<PathBuf> {
    let d = corpus_dir();
    if d.is_dir() {
        return Some(d);
    }
    skip(&corpus_missing());
    None
}

/// What a skip for want of the corpus says: where it was looked for, and how
/// to name it.
pub fn corpus_missing() -> String {
    format!(
        "needs the public corpus, not found at {}; run with {CORPUS_VAR}=DIR \
         (default ../shared/corpus/public)",
        corpus_dir().display()
    )
}

/// Whether `tool` (tshark, capinfos, editcap) runs; `false` after the skip
/// note naming its Debian package.
pub fn tool(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        let package = match tool {
            "tshark" | "chromium" => tool,
            _ => "wireshark-common",
        };
        skip(&format!(
            "needs `{tool}`, not found on PATH; install it with `apt-get install -y {package}`"
        ));
    }
    ok
}

/// Writes the skip note, or panics with it under `SIPAUDIT_REQUIRE_ALL=1`.
pub fn skip(reason: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    let line = format!("SKIPPED: {}::{test}: {reason}", env!("CARGO_CRATE_NAME"));
    if std::env::var_os(REQUIRE_VAR).is_some_and(|v| v == "1") {
        panic!("{line} ({REQUIRE_VAR}=1 forbids skipping)");
    }
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
