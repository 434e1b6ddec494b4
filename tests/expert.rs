//! Sessions on real public captures as an IMS expert reads them (issue
//! "right in an expert's eyes"): each test names the capture of the public
//! corpus and the reading it must give.

mod common;

use std::collections::BTreeMap;

use common::needs::corpus;
use common::{analyze, read_csv};

/// Runs `analyze` on one corpus capture; returns the sessions.csv rows
/// (`None` after the skip note when the corpus is missing).
fn sessions_of(rel: &str) -> Option<Vec<BTreeMap<String, String>>> {
    let cap = corpus()?.join(rel);
    let out = tempfile::tempdir().unwrap();
    let o = analyze(&["-o", out.path().to_str().unwrap(), cap.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    Some(
        read_csv(&out.path().join("sessions.csv"))
            .rows
            .into_iter()
            .map(|r| r.into_iter().collect())
            .collect(),
    )
}

/// Item 5: a sipp load test of identical, independent calls, 1,148 of them
/// answered 403. Nothing in a later call is evidence that it retries an
/// earlier one: no chain. Calls whose 2xx was not captured but whose ACK or
/// BYE was are ESTABLISHED (item 5), and their BYE joins them (item 6).
#[test]
fn a_load_test_of_identical_calls_is_no_retry_chain() {
    let Some(s) = sessions_of("sipnab/sipp-branch-scenario.pcapng") else {
        return;
    };
    let most = s
        .iter()
        .map(|r| r["attempts"].parse::<u32>().unwrap())
        .max();
    assert_eq!(most, Some(1), "a session of several attempts");
    let failed_403 = s
        .iter()
        .filter(|r| r["outcome"] == "FAILED" && r["final_status"] == "403")
        .count();
    assert_eq!(failed_403, 1148);
    assert!(
        !s.iter()
            .any(|r| r["flags"].split(';').any(|f| f == "MID_DIALOG")),
        "a BYE of a call whose INVITE is in the capture made a MID_DIALOG session"
    );
    // Calls 2 and 36 (each after a REGISTER of the same Call-ID): INVITE,
    // no final response, BYE answered 200.
    for call in ["2-4461@127.0.1.1", "36-4461@127.0.1.1"] {
        let rows: Vec<_> = s
            .iter()
            .filter(|r| r["call_id"] == call && r["method"] == "INVITE")
            .collect();
        assert_eq!(rows.len(), 1, "{call}: one session");
        assert_eq!(rows[0]["outcome"], "ESTABLISHED", "{call}");
        assert_eq!(
            rows[0]["final_status"], "",
            "{call}: the 2xx was not captured"
        );
    }
}
