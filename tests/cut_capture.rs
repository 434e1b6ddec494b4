//! Issue 16 item 6: no confident verdict on a cut capture. Failures
//! followed by less than the retry window of capture carry
//! RETRY_WINDOW_CUT (rules.md §D.3 item 4), and the stderr summary counts
//! them on a line of their own so that nobody reads NO_RETRY as certain.

mod common;

use common::{analyze, read_csv, root};

/// failures.csv rows of a sample's expected output flagged RETRY_WINDOW_CUT.
fn expected_cut(case: &str) -> usize {
    let f = read_csv(&root().join(format!("samples/{case}/expected/failures.csv")));
    f.rows
        .iter()
        .filter(|r| r["flags"].split(';').any(|x| x == "RETRY_WINDOW_CUT"))
        .count()
}

fn stderr_lines(args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vec!["-o", dir.path().to_str().unwrap()];
    a.extend_from_slice(args);
    let o = analyze(&a);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    stderr.lines().map(str::to_string).collect()
}

fn cut_lines(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|l| l.contains("of capture after them"))
        .collect()
}

#[test]
fn a_capture_ending_inside_the_retry_window_says_so() {
    let n = expected_cut("h02-retry-loop");
    assert!(n > 0, "the sample ends inside a retry window");
    let lines = stderr_lines(&["samples/h02-retry-loop/capture.pcap"]);
    let want = format!(
        "  {n} failures had less than 32 s of capture after them: their retry may be missing"
    );
    assert_eq!(cut_lines(&lines), [&want], "{lines:#?}");
}

#[test]
fn the_line_names_the_policy_window() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("w10.toml");
    std::fs::write(&policy, "version = 1\n[relaxation]\nwindow_s = 10\n").unwrap();
    let lines = stderr_lines(&[
        "--policy",
        policy.to_str().unwrap(),
        "samples/h02-retry-loop/capture.pcap",
    ]);
    let got = cut_lines(&lines);
    assert_eq!(got.len(), 1, "{lines:#?}");
    assert!(got[0].contains(" less than 10 s of capture"), "{}", got[0]);
}

#[test]
fn no_line_without_such_failures() {
    // A NO_RETRY that is certain (the capture runs on past the window),
    // and samples with no failure at all.
    for case in ["h05-no-retry", "relaxed-retry-420", "cancel-487"] {
        assert_eq!(expected_cut(case), 0, "{case}");
        let lines = stderr_lines(&[&format!("samples/{case}/capture.pcap")]);
        assert!(cut_lines(&lines).is_empty(), "{case}: {lines:#?}");
    }
}
