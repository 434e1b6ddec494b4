//! Sessions of the golden samples, checked against what each sample's
//! README says an analyzer must conclude (independent of the blessed files:
//! golden.rs checks that the output does not change, this file that it is
//! right), and the rotated-file merge whatever the files' names and order.

mod common;

use std::fs;

use common::{analyze, read_csv, root};

/// (case, sessions, attempts of the first, failure_status, retry_link,
/// outcome, final_status, clock_skew anomalies)
type Expect = (
    &'static str,
    usize,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    usize,
);
const EXPECT: &[Expect] = &[
    // A 407 and a 487 after CANCEL are not capability failures (rules.md
    // §C): no failures.csv row, so the failure_* and retry_* columns, which
    // describe the session's first failures.csv row, stay empty.
    ("auth-407", 1, "2", "", "", "ESTABLISHED", "200", 0),
    ("cancel-487", 1, "1", "", "", "CANCELLED", "487", 0),
    ("fork-two-180", 1, "1", "", "", "ESTABLISHED", "200", 0),
    ("fragmented-invite", 1, "1", "", "", "ESTABLISHED", "200", 0),
    (
        "fragmented-invite-v6",
        1,
        "1",
        "",
        "",
        "ESTABLISHED",
        "200",
        0,
    ),
    (
        "ims-precondition-call",
        1,
        "1",
        "",
        "",
        "ESTABLISHED",
        "200",
        0,
    ),
    ("ipv6-call", 1, "1", "", "", "ESTABLISHED", "200", 0),
    (
        "relaxed-retry-420",
        1,
        "2",
        "420",
        "H0",
        "ESTABLISHED",
        "200",
        0,
    ),
    (
        "retry-new-callid-h2",
        1,
        "2",
        "420",
        "H2",
        "ESTABLISHED",
        "200",
        0,
    ),
    (
        "rotated-420-retry",
        1,
        "2",
        "420",
        "H0",
        "ESTABLISHED",
        "200",
        0,
    ),
    ("skew-two-points", 1, "1", "", "", "ESTABLISHED", "200", 3),
    ("sll2-any", 1, "1", "", "", "ESTABLISHED", "200", 0),
    ("tcp-t1", 1, "1", "", "", "ESTABLISHED", "200", 0),
    ("tcp-tn", 3, "1", "", "", "ESTABLISHED", "200", 0),
    (
        "udp-retrans-invite-420",
        1,
        "2",
        "420",
        "H0",
        "ESTABLISHED",
        "200",
        0,
    ),
];

#[test]
fn every_sample_session_is_what_its_readme_says() {
    for &(case, n, attempts, failure, link, outcome, fin, skew) in EXPECT {
        let dir = root().join("samples").join(case).join("expected");
        let s = read_csv(&dir.join("sessions.csv"));
        assert_eq!(s.rows.len(), n, "{case}: sessions");
        for r in &s.rows {
            assert_eq!(r["attempts"], attempts, "{case}: attempts");
            assert_eq!(r["failure_status"], failure, "{case}: failure_status");
            assert_eq!(r["retry_link"], link, "{case}: retry_link");
            assert_eq!(r["outcome"], outcome, "{case}: outcome");
            assert_eq!(r["final_status"], fin, "{case}: final_status");
            if failure.is_empty() {
                assert_eq!(r["verdict"], "NOT_APPLICABLE", "{case}: verdict");
            }
            assert!(
                r["wireshark_filter"].starts_with("sip.Call-ID == \""),
                "{case}: filter"
            );
            if link.is_empty() {
                assert_eq!(r["retry_call_id"], "", "{case}");
            } else {
                assert!(!r["retry_delay_ms"].is_empty(), "{case}: retry delay");
            }
        }
        // Every message of the sample belongs to a session, and the
        // session ids are those of sessions.csv.
        let m = read_csv(&dir.join("messages.csv"));
        let ids: Vec<&str> = s.rows.iter().map(|r| r["session"].as_str()).collect();
        for r in &m.rows {
            assert!(ids.contains(&r["session"].as_str()), "{case}: {r:?}");
        }
        let a = read_csv(&dir.join("anomalies.csv"));
        let got = a.rows.iter().filter(|r| r["kind"] == "clock_skew").count();
        assert_eq!(got, skew, "{case}: clock_skew anomalies");
    }
}

#[test]
fn h2_retry_is_one_session_with_both_call_ids() {
    let dir = root().join("samples/retry-new-callid-h2/expected");
    let s = read_csv(&dir.join("sessions.csv"));
    let r = &s.rows[0];
    assert_eq!(r["call_id"], "sa-retry-new-callid-h2-1@ue.sipaudit.test");
    assert_eq!(
        r["retry_call_id"],
        "sa-retry-new-callid-h2-2@ue.sipaudit.test"
    );
    assert_eq!(r["refused"], "precondition");
    assert_eq!(r["retry_supported"], "precondition");
    assert_eq!(r["retry_precondition"], "optional");
    assert_eq!(
        r["wireshark_filter"],
        "sip.Call-ID == \"sa-retry-new-callid-h2-1@ue.sipaudit.test\" || \
sip.Call-ID == \"sa-retry-new-callid-h2-2@ue.sipaudit.test\""
    );
}

#[test]
fn udp_retransmissions_are_marked_and_make_no_attempt() {
    let dir = root().join("samples/udp-retrans-invite-420/expected");
    let m = read_csv(&dir.join("messages.csv"));
    let re: Vec<&str> = m
        .rows
        .iter()
        .filter(|r| r["retransmission"] == "true")
        .map(|r| r["frame"].as_str())
        .collect();
    assert_eq!(re, ["2", "5"], "the repeated INVITE and the repeated 420");
}

/// The 420 and its retry in two rotated files: the same sessions whatever
/// the files are called and whatever order they are named in, including
/// names whose sorted order is the reverse of their time order.
#[test]
fn rotated_files_in_either_order_and_naming() {
    let case = root().join("samples/rotated-420-retry");
    let tmp = tempfile::tempdir().unwrap();
    // Later file first in name order.
    let (early, late) = (
        tmp.path().join("z-early.pcap"),
        tmp.path().join("a-late.pcap"),
    );
    fs::copy(case.join("capture-1.pcap"), &early).unwrap();
    fs::copy(case.join("capture-2.pcap"), &late).unwrap();
    let mut outputs = Vec::new();
    for (k, order) in [[&early, &late], [&late, &early]].iter().enumerate() {
        let out = tmp.path().join(format!("out{k}"));
        let mut args = vec!["-o", out.to_str().unwrap()];
        args.extend(order.iter().map(|p| p.to_str().unwrap()));
        let o = analyze(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s = read_csv(&out.join("sessions.csv"));
        assert_eq!(s.rows.len(), 1);
        assert_eq!(s.rows[0]["attempts"], "2");
        assert_eq!(s.rows[0]["retry_link"], "H0");
        assert!(s.rows[0]["file"].ends_with("z-early.pcap"));
        outputs.push(fs::read(out.join("sessions.csv")).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    // The samples' own names, in reverse order: the blessed output.
    let out = tmp.path().join("out-rev");
    let o = analyze(&[
        "--messages",
        "-o",
        out.to_str().unwrap(),
        "samples/rotated-420-retry/capture-2.pcap",
        "samples/rotated-420-retry/capture-1.pcap",
    ]);
    assert_eq!(o.status.code(), Some(0));
    for f in ["sessions.csv", "messages.csv"] {
        assert_eq!(
            fs::read(out.join(f)).unwrap(),
            fs::read(case.join("expected").join(f)).unwrap(),
            "{f}"
        );
    }
}
