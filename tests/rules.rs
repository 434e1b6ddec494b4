//! rules.md §H: every example-flow sample (samples/hNN-*) gives exactly
//! the verdicts, flags and policy verdicts the flow states. Checked on the
//! blessed expected files (golden.rs checks those equal a fresh run) so the
//! expectations here are independent of the bless step.

mod common;

use std::fs;

use common::{read_csv, root};

/// One expected failures.csv row: status, failure_class, verdict, flags
/// that must be present, policy verdict.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
);

/// (case, session verdict, session flags that must be present,
/// policy_verdict, outcome, failures.csv rows in order)
type Case = (
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
    &'static [Row],
);

const CASES: &[Case] = &[
    (
        "h01-r5-compliant",
        "COMPLIANT_RELAXATION",
        &["DESIRED_LISTED"],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "REMOTE_LACKS_PRECONDITION",
            "COMPLIANT_RELAXATION",
            &["DESIRED_LISTED"],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h02-retry-loop",
        "RETRY_LOOP",
        &["RETRY_LOOP"],
        "",
        "FAILED",
        &[
            (
                "420",
                "REMOTE_LACKS_PRECONDITION",
                "REPEATED_WITHOUT_RELAXATION",
                &["NOT_RELAXED"],
                "",
            ),
            (
                "420",
                "REMOTE_LACKS_PRECONDITION",
                "RETRY_LOOP",
                &["RETRY_LOOP"],
                "",
            ),
            // The sample's UAS refuses the third INVITE too, and the UE
            // gives up (it ACKs): NO_RETRY (README of the sample).
            ("420", "REMOTE_LACKS_PRECONDITION", "NO_RETRY", &[], ""),
        ],
    ),
    (
        "h03-over-relaxed",
        "OVER_RELAXED",
        &["OVER_RELAXED(100rel)"],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "REMOTE_LACKS_PRECONDITION",
            "OVER_RELAXED",
            &["OVER_RELAXED(100rel)"],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h04-dependent-drop",
        "COMPLIANT_RELAXATION",
        &["DESIRED_LISTED", "DEPENDENT_DROP(precondition)"],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "REMOTE_LACKS_100REL",
            "COMPLIANT_RELAXATION",
            &["DESIRED_LISTED", "DEPENDENT_DROP(precondition)"],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h06-new-callid",
        "RETRY_NEW_CALL_ID",
        &["NEW_CALL_ID(H2,0.8)"],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "REMOTE_LACKS_PRECONDITION",
            "RETRY_NEW_CALL_ID",
            &["NEW_CALL_ID(H2,0.8)"],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h07-421-100rel",
        "EXTENSION_REQUIRED_SATISFIED",
        &[],
        "",
        "ESTABLISHED",
        &[(
            "421",
            "REMOTE_REQUIRES_EXTENSION",
            "EXTENSION_REQUIRED_SATISFIED",
            &[],
            "",
        )],
    ),
    (
        "h09-580-relaxed",
        "RELAXATION_WITHOUT_REFUSAL",
        &[],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "580",
            "PRECONDITION_NOT_MET",
            "RELAXATION_WITHOUT_REFUSAL",
            &[],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h13-udp-losses",
        "COMPLIANT_RELAXATION",
        &[],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "REMOTE_LACKS_PRECONDITION",
            "COMPLIANT_RELAXATION",
            &[],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h14-cseq-reused-482",
        "RETRY_INVALID_IDENTITY",
        &["CSEQ_NOT_INCREMENTED"],
        "POLICY_COMPLIANT",
        "FAILED",
        &[(
            "420",
            "REMOTE_LACKS_PRECONDITION",
            "RETRY_INVALID_IDENTITY",
            &["CSEQ_NOT_INCREMENTED"],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h16-420-no-unsupported",
        "INFERRED_RELAXATION",
        &[],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "MALFORMED_420",
            "INFERRED_RELAXATION",
            &[],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h05-no-retry",
        "NO_RETRY",
        &[],
        // Its policy.toml: [relaxation] allowed = false.
        "POLICY_RESPECTED_BY_UE",
        "FAILED",
        &[(
            "420",
            "REMOTE_LACKS_PRECONDITION",
            "NO_RETRY",
            &[],
            "POLICY_RESPECTED_BY_UE",
        )],
    ),
    (
        "h10-policy-enforced",
        "COMPLIANT_RELAXATION",
        &["DESIRED_LISTED"],
        // Its policy.toml: the rules.md §E.3 example (keep-qos-toward-partners).
        "POLICY_ENFORCED",
        "FAILED",
        &[
            (
                "420",
                "REMOTE_LACKS_PRECONDITION",
                "COMPLIANT_RELAXATION",
                &[],
                "POLICY_ENFORCED",
            ),
            // The home S-CSCF's 403 to the relaxed retry: C19, no retry
            // expected after it.
            ("403", "HOME_POLICY_REJECT", "NOT_APPLICABLE", &[], ""),
        ],
    ),
    (
        "h11-emergency-100rel",
        "COMPLIANT_RELAXATION",
        &[],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "REMOTE_LACKS_100REL",
            "COMPLIANT_RELAXATION",
            &[],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h12-update-405-cancel",
        "NOT_APPLICABLE",
        &["MID_DIALOG", "REMOTE_LACKS_UPDATE_PREDICTED"],
        "",
        "CANCELLED",
        &[(
            "405",
            "REMOTE_LACKS_UPDATE",
            "NOT_APPLICABLE",
            &["MID_DIALOG"],
            "",
        )],
    ),
    (
        "h15-sec-agree-register",
        "SECURITY_DOWNGRADE",
        &["POLICY_NOT_ENFORCED"],
        "POLICY_VIOLATION:CAPABILITY_NOT_RELAXABLE",
        // A 2xx to a REGISTER (issue 12 item 8).
        "COMPLETED",
        &[(
            "420",
            "SEC_AGREE_UNSUPPORTED",
            "SECURITY_DOWNGRADE",
            &["POLICY_NOT_ENFORCED"],
            "POLICY_VIOLATION:CAPABILITY_NOT_RELAXABLE",
        )],
    ),
    (
        "h18-reinvite-420",
        "COMPLIANT_RELAXATION",
        &[
            "MID_DIALOG",
            "DESIRED_LISTED",
            "REQUIRE_PRECONDITION_IN_MODIFICATION",
        ],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "REMOTE_LACKS_PRECONDITION",
            "COMPLIANT_RELAXATION",
            &["MID_DIALOG"],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h17-rotated-420",
        "COMPLIANT_RELAXATION",
        &["DESIRED_LISTED"],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[(
            "420",
            "REMOTE_LACKS_PRECONDITION",
            "COMPLIANT_RELAXATION",
            &[],
            "POLICY_COMPLIANT",
        )],
    ),
    (
        "h08-fork-mixed",
        "NOT_APPLICABLE",
        &["FORK_MIXED_CAPABILITY"],
        "",
        "ESTABLISHED",
        // Branch 1's 420 at the forking S-CSCF is no failure of the attempt.
        &[],
    ),
    (
        // A far end that names one refused tag per 420 and answers at once:
        // each 420 is linked to the next INVITE, never to an earlier one.
        "h19-stepwise-fast",
        "COMPLIANT_RELAXATION",
        &["STEPWISE", "DESIRED_LISTED"],
        "POLICY_COMPLIANT",
        "ESTABLISHED",
        &[
            (
                "420",
                "REMOTE_LACKS_PRECONDITION",
                "COMPLIANT_RELAXATION",
                &["STEPWISE"],
                "POLICY_COMPLIANT",
            ),
            (
                "420",
                "REMOTE_LACKS_100REL",
                "COMPLIANT_RELAXATION",
                &["STEPWISE"],
                "POLICY_COMPLIANT",
            ),
        ],
    ),
];

fn has_flag(cell: &str, f: &str) -> bool {
    cell.split(';').any(|x| x == f)
}

#[test]
fn every_h_flow_gives_the_verdicts_of_rules_md() {
    for &(case, verdict, flags, policy, outcome, failures) in CASES {
        let dir = root().join("samples").join(case).join("expected");
        let s = read_csv(&dir.join("sessions.csv"));
        // h05 also holds an unrelated OPTIONS ping that extends the capture
        // past the retry window (its README): a second session.
        let sessions = if case == "h05-no-retry" { 2 } else { 1 };
        assert_eq!(s.rows.len(), sessions, "{case}: sessions");
        let r = &s.rows[0];
        assert_eq!(r["verdict"], verdict, "{case}: verdict");
        for f in flags {
            assert!(
                has_flag(&r["flags"], f),
                "{case}: flag {f} in {}",
                r["flags"]
            );
        }
        assert_eq!(r["policy_verdict"], policy, "{case}: policy_verdict");
        assert_eq!(r["outcome"], outcome, "{case}: outcome");
        // rules.md §F: the UE profile is a column of its own (issue 12 item 9).
        if matches!(case, "h01-r5-compliant" | "h05-no-retry") {
            assert_eq!(r["ue_profile"], "R5_STRICT", "{case}: ue_profile");
        }
        let f = read_csv(&dir.join("failures.csv"));
        assert_eq!(f.rows.len(), failures.len(), "{case}: failures.csv rows");
        for (got, want) in f.rows.iter().zip(failures.iter()) {
            let (status, class, v, fl, pv) = *want;
            assert_eq!(got["failure_status"], status, "{case}");
            assert_eq!(got["failure_class"], class, "{case}");
            assert_eq!(got["verdict"], v, "{case}");
            for x in fl {
                assert!(
                    has_flag(&got["flags"], x),
                    "{case}: {x} in {}",
                    got["flags"]
                );
            }
            assert_eq!(got["policy_verdict"], pv, "{case}: failure policy_verdict");
        }
    }
}

#[test]
fn every_h_sample_is_checked_here() {
    let mut dirs: Vec<String> = fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('h') && n.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .collect();
    dirs.sort();
    let listed: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    for d in &dirs {
        assert!(
            listed.contains(&d.as_str()),
            "{d} has no expectation in tests/rules.rs"
        );
    }
}

use common::build;

/// rules.md §F: one subscriber calls the same Internet peer from two
/// visited networks; under the one from the Rel-5 network the UE gives up
/// after the 420, under the other it relaxes and the call is set up: both
/// sessions get INCONSISTENT_EXPERIENCE, a third subscriber's does not.
#[test]
fn inconsistent_experience_across_visited_networks() {
    let msg = |start: &str,
               call: &str,
               ftag: &str,
               ttag: &str,
               cseq: u32,
               method: &str,
               extra: &str,
               from: &str| {
        let tt = if ttag.is_empty() {
            String::new()
        } else {
            format!(";tag={ttag}")
        };
        // An ACK for a non-2xx reuses the INVITE's branch.
        let txn = if method == "ACK" { "INVITE" } else { method };
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call}{cseq}{txn}\r\n\
From: <sip:{from}@ims.example>;tag={ftag}\r\nTo: <sip:bob@voip.example.net>{tt}\r\nCall-ID: {call}\r\n\
CSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    let inv = "INVITE sip:bob@voip.example.net SIP/2.0";
    let mut cap = build::Pcap::new(1);
    // Calls 20 s apart (beyond the 10 s H1-H3 window: separate sessions),
    // messages of a call 1 s apart.
    // Calls 20 s apart (beyond the 10 s H1-H3 window: separate sessions),
    // messages of a call 1 s apart.
    let t = std::cell::Cell::new(0u32);
    let send = |up: bool, payload: Vec<u8>, cap: &mut build::Pcap| {
        let (s, d) = if up {
            ([10, 0, 0, 1], [10, 0, 0, 2])
        } else {
            ([10, 0, 0, 2], [10, 0, 0, 1])
        };
        let l3 = build::ipv4(s, d, 17, None, &build::udp(5060, 5060, &payload));
        t.set(t.get() + 1);
        cap.push(
            1_700_000_000 + t.get(),
            0,
            build::ethernet(&[], 0x0800, &l3),
        );
    };
    for (call, visited, relax, from) in [
        ("a", "r5.example", false, "alice"),
        ("b", "r6.example", true, "alice"),
        ("c", "r6.example", false, "carol"),
    ] {
        t.set(t.get().next_multiple_of(20));
        let pvni = format!("Require: precondition\r\nP-Visited-Network-ID: {visited}\r\n");
        send(
            true,
            msg(inv, call, "f", "", 1, "INVITE", &pvni, from),
            &mut cap,
        );
        send(
            false,
            msg(
                "SIP/2.0 420 Bad Extension",
                call,
                "f",
                "x",
                1,
                "INVITE",
                "Unsupported: precondition\r\n",
                from,
            ),
            &mut cap,
        );
        send(
            true,
            msg(
                "ACK sip:bob@voip.example.net SIP/2.0",
                call,
                "f",
                "x",
                1,
                "ACK",
                "",
                from,
            ),
            &mut cap,
        );
        if relax {
            let sup = format!("Supported: precondition\r\nP-Visited-Network-ID: {visited}\r\n");
            let call2 = format!("{call}2");
            send(
                true,
                msg(inv, call, "f", "", 2, "INVITE", &sup, from),
                &mut cap,
            );
            send(
                false,
                msg("SIP/2.0 200 OK", call, "f", "y", 2, "INVITE", "", from),
                &mut cap,
            );
            let _ = call2;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.pcap");
    fs::write(&f, cap.bytes()).unwrap();
    let out = dir.path().join("out");
    let o = common::analyze(&[
        "--messages",
        "-o",
        out.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    if std::env::var_os("SA_KEEP").is_some() {
        let _ = fs::copy(out.join("messages.csv"), "/tmp/ie-messages.csv");
        let _ = fs::copy(&f, "/tmp/ie.pcap");
    }
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = read_csv(&out.join("sessions.csv"));
    let flagged: Vec<(&str, &str, bool)> = s
        .rows
        .iter()
        .map(|r| {
            (
                r["call_id"].as_str(),
                r["verdict"].as_str(),
                has_flag(&r["flags"], "INCONSISTENT_EXPERIENCE"),
            )
        })
        .collect();
    assert_eq!(
        flagged,
        [
            ("a", "NO_RETRY", true),
            ("b", "COMPLIANT_RELAXATION", true),
            ("c", "NO_RETRY", false)
        ]
    );
    let summary = fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(
        summary.contains("flag,INCONSISTENT_EXPERIENCE,2\n"),
        "{summary}"
    );
    // Tracked one record per batch, session a (ended 32 s before the
    // capture) is written before the flag is decided, and its flagged twin
    // is put in its place at the end: the same bytes, and run.json
    // describes the file as it ended up.
    let one = dir.path().join("one-record-batches");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .env("SIPAUDIT_TRACK_BATCH", "1")
        .args(["analyze", "-o", one.to_str().unwrap(), f.to_str().unwrap()])
        .output()
        .unwrap();
    common::ok(&o, "one-record batches");
    for name in ["sessions.csv", "failures.csv"] {
        assert_eq!(
            fs::read(one.join(name)).unwrap(),
            fs::read(out.join(name)).unwrap(),
            "{name}"
        );
    }
    let run: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(one.join("run.json")).unwrap()).unwrap();
    common::assert_files_described(&one, run["files"].as_array().unwrap());
    let left: Vec<_> = fs::read_dir(&one)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().starts_with('.')),
        "no temporary file left: {left:?}"
    );
}

/// rules.md H17: file 1 alone ends with the 420: TRUNCATED, outcome
/// TRUNCATED; both files, in either order: COMPLIANT_RELAXATION (the
/// golden case).
#[test]
fn h17_first_file_alone_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = common::analyze(&[
        "-o",
        out.to_str().unwrap(),
        "samples/h17-rotated-420/capture-1.pcap",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let s = read_csv(&out.join("sessions.csv"));
    assert_eq!(s.rows.len(), 1);
    assert_eq!(s.rows[0]["verdict"], "TRUNCATED");
    assert_eq!(s.rows[0]["outcome"], "TRUNCATED");
    let out2 = dir.path().join("out2");
    let o = common::analyze(&[
        "-o",
        out2.to_str().unwrap(),
        "samples/h17-rotated-420/capture-2.pcap",
        "samples/h17-rotated-420/capture-1.pcap",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let s = read_csv(&out2.join("sessions.csv"));
    assert_eq!(s.rows[0]["verdict"], "COMPLIANT_RELAXATION");
}

fn run_with_policy(case: &str, policy: &str) -> common::Csv {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = vec!["--policy", policy, "-o", out.to_str().unwrap()];
    let caps = common::sample_captures(case);
    args.extend(caps.iter().map(String::as_str));
    let o = common::analyze(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    read_csv(&out.join("sessions.csv"))
}

/// The policy variants §H names for its flows, on the same captures.
#[test]
fn h_flows_under_their_policy_variants() {
    // H06 with require_same_call_id = true.
    let s = run_with_policy("h06-new-callid", "samples/policies/same-call-id.toml");
    assert_eq!(s.rows[0]["verdict"], "RETRY_NEW_CALL_ID");
    assert_eq!(
        s.rows[0]["policy_verdict"],
        "POLICY_VIOLATION:SAME_CALL_ID_REQUIRED"
    );
    // H11 under [emergency] relaxation = "never".
    let s = run_with_policy(
        "h11-emergency-100rel",
        "samples/policies/emergency-never.toml",
    );
    assert_eq!(s.rows[0]["policy_verdict"], "POLICY_VIOLATION:EMERGENCY");
    assert!(has_flag(&s.rows[0]["flags"], "POLICY_NOT_ENFORCED"));
    // H05 under the built-in default: NO_RETRY, no relaxation withheld.
    let s = run_with_policy("h05-no-retry", "samples/policies/e3-example.toml");
    assert_eq!(s.rows[0]["verdict"], "NO_RETRY");
}
