//! Conformance against tshark: every SIP-over-UDP message that tshark decodes in the
//! public corpus (`../shared/corpus/public`) and in `samples/` must be in
//! messages.csv with the same (Call-ID, method or status, CSeq number), and nothing
//! more; captures that are neither pcap nor pcapng must be rejected cleanly.
//!
//! The comparison itself is `scripts/conformance.sh` (run it by hand for the
//! per-file table, `-v` for the missing / extra frames); this test runs it on the
//! binary under test and fails when any file fails. The frames where tshark is
//! demonstrably wrong are listed, with the reason, in
//! `tests/conformance_exceptions.tsv`.
//!
//! Without tshark or the corpus the comparison skips with a `SKIPPED:` note
//! (tests/common/needs.rs); CI sets `SIPAUDIT_REQUIRE_ALL=1`, which makes
//! that a failure, so the comparison always runs there.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

use common::needs::{corpus, tool};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tshark_version() -> Option<String> {
    let out = Command::new("tshark").arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next().unwrap_or("tshark").to_string())
}

fn run_conformance(transport: &str) {
    let (Some(corpus), true) = (corpus(), tool("tshark")) else {
        return;
    };
    let version = tshark_version().expect("tshark --version");
    let out = Command::new("bash")
        .arg("scripts/conformance.sh")
        .arg("--no-install")
        .arg("-v")
        .args(["--transport", transport])
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_sipaudit"))
        .arg(&corpus)
        .arg("samples")
        .current_dir(repo())
        .output()
        .expect("cannot run bash scripts/conformance.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{transport} conformance with {version} failed (exit {:?}); `scripts/conformance.sh -v \
         --transport {transport}` prints this table and the missing / extra frames:\n{stdout}\n{stderr}",
        out.status.code()
    );
    // The summary line must show a real comparison, not an empty one.
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("matched "))
        .expect("summary line");
    assert!(summary.contains("(100.00%), 0 extra"), "{summary}");
    let matched: u64 = summary.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        matched > if transport == "udp" { 10_000 } else { 70 },
        "{summary}"
    );
    println!("{version}\n{stdout}\n{stderr}");
}

#[test]
fn messages_csv_matches_tshark_over_udp() {
    run_conformance("udp");
}

/// tshark runs with `-o tcp.reassemble_out_of_order:TRUE` in this mode.
#[test]
fn messages_csv_matches_tshark_over_tcp() {
    run_conformance("tcp");
}

/// The exceptions file is read by scripts/conformance.sh; check its form here too, so
/// that a malformed or stale row is caught even where tshark is missing. Without the
/// corpus, the rows naming a corpus file are checked for form only (a skip note says so).
#[test]
fn conformance_exceptions_are_well_formed() {
    let corpus = common::needs::corpus_dir();
    let have_corpus = corpus.is_dir();
    let mut unchecked = 0;
    let path = repo().join("tests/conformance_exceptions.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut header_seen = false;
    let mut seen = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split('\t').collect();
        if !header_seen {
            assert_eq!(
                cells,
                ["file", "frame", "reason"],
                "{}:{n}: the first row must be the header `file<TAB>frame<TAB>reason`",
                path.display()
            );
            header_seen = true;
            continue;
        }
        assert_eq!(
            cells.len(),
            3,
            "{}:{n}: expected 3 tab-separated cells",
            path.display()
        );
        let (file, frame, reason) = (cells[0], cells[1], cells[2]);
        let frame: u64 = frame
            .parse()
            .unwrap_or_else(|_| panic!("{}:{n}: frame `{frame}` is not a number", path.display()));
        assert!(
            frame >= 1,
            "{}:{n}: frames are numbered from 1",
            path.display()
        );
        assert!(
            reason.trim().len() >= 20,
            "{}:{n}: give the reason tshark is wrong there, precisely",
            path.display()
        );
        let exists = [corpus.join(file), repo().join(file)]
            .iter()
            .any(|p| p.is_file());
        if !exists && !have_corpus {
            unchecked += 1;
        } else {
            assert!(
                exists,
                "{}:{n}: {file} is neither in {} nor in the repo",
                path.display(),
                corpus.display()
            );
        }
        assert!(
            seen.insert((file.to_string(), frame)),
            "{}:{n}: duplicate row",
            path.display()
        );
    }
    assert!(header_seen, "{}: no header row", path.display());
    if unchecked > 0 {
        common::needs::skip(&format!(
            "checking that the {unchecked} files named outside the repo exist {}",
            common::needs::corpus_missing()
        ));
    }
}
