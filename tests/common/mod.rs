//! Shared helpers for the integration tests: run the binary, read CSVs.
#![allow(dead_code)]

pub mod build;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repo root (cargo runs integration tests from there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The public corpus beside the repo (`../shared/corpus/public`).
pub fn corpus() -> PathBuf {
    let p = root().join("../shared/corpus/public");
    assert!(
        p.is_dir(),
        "{} is missing: the tests need ../shared beside the repo",
        p.display()
    );
    p
}

/// Runs `sipaudit analyze ARGS` from the repo root.
pub fn analyze(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .current_dir(root())
        .arg("analyze")
        .args(args)
        .output()
        .expect("run sipaudit")
}

/// A CSV file as header + rows of name → value maps.
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<HashMap<String, String>>,
}

pub fn read_csv(path: &Path) -> Csv {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect();
    Csv { header, rows }
}

/// Whether a tool from Wireshark's packages is installed; the tests that need
/// one fail (never skip) without it, naming the package to install.
pub fn require_tool(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is required for this test: apt-get install -y tshark (CI's .ci/run installs it)"
    );
}
