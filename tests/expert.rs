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

/// Item 1: the capture ends at its last packet, not at its last SIP
/// message. A 420 with no retry, then 45 s of RTP-like UDP, is NO_RETRY /
/// FAILED (the retry window was fully captured), not TRUNCATED; an
/// unanswered INVITE followed by 40 s of other traffic is TIMEOUT.
#[test]
fn the_capture_ends_at_its_last_packet() {
    use common::build;
    let mut cap = build::Pcap::new(1);
    let push = |cap: &mut build::Pcap, sec: u32, sport: u16, dport: u16, payload: &[u8]| {
        let (s, d) = if sport == 5060 && dport == 5060 {
            ([10, 0, 0, 1], [10, 0, 0, 2])
        } else {
            ([10, 0, 0, 3], [10, 0, 0, 4])
        };
        let l3 = build::ipv4(s, d, 17, None, &build::udp(sport, dport, payload));
        cap.push(1_700_000_000 + sec, 0, build::ethernet(&[], 0x0800, &l3));
    };
    let sip = |start: &str, call: &str, ttag: &str, method: &str, extra: &str| {
        let tt = if ttag.is_empty() {
            String::new()
        } else {
            format!(";tag={ttag}")
        };
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call}\r\n\
From: <sip:alice@ims.example>;tag=f\r\nTo: <sip:bob@voip.example.net>{tt}\r\nCall-ID: {call}\r\n\
CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    let inv = "INVITE sip:bob@voip.example.net SIP/2.0";
    push(
        &mut cap,
        0,
        5060,
        5060,
        &sip(inv, "a", "", "INVITE", "Require: precondition\r\n"),
    );
    let refusal = sip(
        "SIP/2.0 420 Bad Extension",
        "a",
        "x",
        "INVITE",
        "Unsupported: precondition\r\n",
    );
    push(&mut cap, 1, 5060, 5060, &refusal);
    push(
        &mut cap,
        1,
        5060,
        5060,
        &sip("ACK sip:bob@voip.example.net SIP/2.0", "a", "x", "ACK", ""),
    );
    // Another call (another callee: no retry of the first), never answered.
    let other = "INVITE sip:carol@voip.example.net SIP/2.0";
    push(&mut cap, 2, 5060, 5060, &sip(other, "b", "", "INVITE", ""));
    // 45 s of media after the last SIP message.
    for sec in 3..48 {
        let rtp = [
            0x80u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xd5, 0xd5, 0xd5, 0xd5,
        ];
        push(&mut cap, sec, 40000, 40002, &rtp);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("end.pcap");
    std::fs::write(&path, cap.bytes()).unwrap();
    let out = dir.path().join("out");
    let o = analyze(&["-o", out.to_str().unwrap(), path.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = read_csv(&out.join("sessions.csv")).rows;
    let by = |call: &str| s.iter().find(|r| r["call_id"] == call).unwrap().clone();
    assert_eq!(by("a")["verdict"], "NO_RETRY");
    assert_eq!(by("a")["outcome"], "FAILED");
    assert_eq!(by("b")["outcome"], "TIMEOUT");
}

/// Item 4: a late retry is flagged whatever the failure. In
/// wireshark-wiki/aaa.pcap, Call-ID 85216695-42dcdb1d@192.168.1.2 gets a
/// 407 and the same Call-ID answers the challenge 32.5 s later, after the
/// first session was written: the second session carries
/// CANDIDATE_LATE_RETRY and names the first in related_sessions.
#[test]
fn a_late_retry_is_flagged_whatever_the_failure() {
    let Some(s) = sessions_of("wireshark-wiki/aaa.pcap") else {
        return;
    };
    let rows: Vec<_> = s
        .iter()
        .filter(|r| r["call_id"] == "85216695-42dcdb1d@192.168.1.2")
        .collect();
    assert_eq!(rows.len(), 2, "two sessions: the retry is beyond W0");
    assert_eq!(rows[0]["final_status"], "407");
    assert!(
        rows[1]["flags"]
            .split(';')
            .any(|f| f == "CANDIDATE_LATE_RETRY"),
        "{}",
        rows[1]["flags"]
    );
    assert_eq!(rows[1]["related_sessions"], rows[0]["session"]);
}
