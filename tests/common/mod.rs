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

/// The sample cases (directories of samples/ but `policies`), sorted.
pub fn sample_cases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && e.file_name() != "policies")
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    assert!(v.len() > 30, "{v:?}");
    v
}

/// The capture files of a sample case, relative to the repo root, sorted:
/// `capture.*`, or `capture-1.*`, `capture-2.*`... for rotated files.
pub fn sample_captures(case: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("samples").join(case))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("capture"))
        .map(|n| format!("samples/{case}/{n}"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "samples/{case}: no capture file");
    v
}

/// Every sample capture, relative to the repo root, sorted.
pub fn all_sample_captures() -> Vec<String> {
    let mut v: Vec<String> = sample_cases()
        .iter()
        .flat_map(|c| sample_captures(c))
        .collect();
    v.sort();
    v
}

/// Runs `sipaudit CMD ARGS` from the repo root.
pub fn sipaudit(cmd: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .current_dir(root())
        .arg(cmd)
        .args(args)
        .output()
        .expect("run sipaudit")
}

/// Asserts that a run exited 0, with its stderr and `what` otherwise.
pub fn ok(o: &Output, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
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

/// Asserts that each entry of run.json's `files` (`files`) gives the size,
/// SHA-256 and CSV record count of that file in `out`.
pub fn assert_files_described(out: &Path, files: &[serde_json::Value]) {
    use sha2::{Digest, Sha256};
    for f in files {
        let name = f["name"].as_str().unwrap();
        let bytes = std::fs::read(out.join(name)).unwrap();
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(f["sha256"], sha, "{name}");
        assert_eq!(f["bytes"], bytes.len(), "{name}");
        if name.ends_with(".csv") {
            let rows = csv::Reader::from_reader(&bytes[..]).records().count();
            assert_eq!(f["rows"], rows, "{name}");
        } else {
            // report.html and Parquet twins: no row count.
            assert!(f["rows"].is_null(), "{name}");
        }
    }
}
