//! Errors at the edges of a run (issue 16 item 5): when nothing can be
//! analysed (no named input exists, a directory holds no file) or `--out`
//! cannot hold the reports, the run exits 2 with one line on stderr that
//! names the path, before any file is written. A missing path beside an
//! existing input stays exit 1.

mod common;

use std::fs;
use std::path::Path;

use common::{analyze, read_csv};

const GOOD: &str = "samples/ims-precondition-call/capture.pcap";

/// Exit 2 with exactly one stderr line, which contains every `needles`.
fn assert_exit_2_naming(o: &std::process::Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks `{n}`: {stderr}");
    }
}

#[test]
fn a_single_missing_input_is_exit_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = analyze(&["-o", out.to_str().unwrap(), "/nonexistent/capture.pcap"]);
    assert_exit_2_naming(
        &o,
        &[
            "sipaudit: nothing to analyse",
            "/nonexistent/capture.pcap: no such file or directory",
        ],
    );
    assert!(!out.exists(), "the output directory was created");
}

#[test]
fn a_missing_input_beside_an_existing_one_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = analyze(&[
        "-o",
        out.to_str().unwrap(),
        GOOD,
        "/nonexistent/capture.pcap",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/capture.pcap"), "{stderr}");
    let inputs = read_csv(&out.join("inputs.csv"));
    let missing = inputs
        .rows
        .iter()
        .find(|r| r["file"] == "/nonexistent/capture.pcap")
        .expect("a row for the missing file");
    assert!(!missing["error"].is_empty());
}

#[test]
fn an_empty_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir_all(empty.join("sub")).unwrap();
    let out = dir.path().join("out");
    let o = analyze(&["-o", out.to_str().unwrap(), empty.to_str().unwrap()]);
    let want = format!("no input files found in {}", empty.display());
    assert_exit_2_naming(&o, &[&want]);
    assert!(!out.exists(), "the output directory was created");
}

#[test]
fn missing_inputs_and_empty_directories_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("gone.pcap");
    let out = dir.path().join("out");
    let o = analyze(&[
        "-o",
        out.to_str().unwrap(),
        empty.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    let want_dir = format!("no input files found in {}", empty.display());
    let want_file = format!("{}: no such file or directory", missing.display());
    assert_exit_2_naming(&o, &[&want_dir, &want_file]);
}

/// /proc exists, but no file can be created in it: the message says so,
/// about the directory, not about the first report.
#[cfg(target_os = "linux")]
#[test]
fn out_in_proc_is_not_writable() {
    let o = analyze(&["-o", "/proc", GOOD]);
    assert_exit_2_naming(&o, &["/proc: the output directory is not writable"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains(".csv"), "{stderr}");
}

#[test]
fn out_below_a_file_cannot_be_created() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"x").unwrap();
    let out = blocker.join("sub");
    let o = analyze(&["-o", out.to_str().unwrap(), GOOD]);
    let want = format!("{}: cannot create the output directory", out.display());
    assert_exit_2_naming(&o, &[&want]);
}

#[test]
fn out_naming_a_file_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("README.md");
    fs::write(&file, b"# keep me\n").unwrap();
    let o = analyze(&["-o", file.to_str().unwrap(), GOOD]);
    let want = format!(
        "{}: cannot use as the output directory: not a directory",
        file.display()
    );
    assert_exit_2_naming(&o, &[&want]);
    assert_eq!(fs::read(&file).unwrap(), b"# keep me\n");
    assert_only(dir.path(), &["README.md"]);
}

/// The directory holds exactly `names` (nothing was written beside them).
fn assert_only(dir: &Path, names: &[&str]) {
    let mut got: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, names);
}
