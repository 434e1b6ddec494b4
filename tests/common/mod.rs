//! Shared helpers for the integration tests: run the binary, read CSVs;
//! `needs` has the skip for tests that need the public corpus or a tool.
#![allow(dead_code)]

pub mod build;
pub mod needs;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repo root (cargo runs integration tests from there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
