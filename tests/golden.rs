//! Golden sample tests: each `samples/<case>/` holds a real capture and the
//! expected reports; the output of `sipaudit analyze --messages` on that
//! capture must match byte for byte. Only the explicit bless step
//! (`BLESS=1 cargo test --profile test-release --test golden`, or `scripts/bless.sh`)
//! rewrites the expected files.

mod common;

use std::fs;

use common::{analyze, root};

/// Every sample case. The guard test below fails on a samples/ directory
/// that is not listed here, so no case is silently left out.
const CASES: &[&str] = &[
    "auth-407",
    "cancel-487",
    "fork-two-180",
    "fragmented-invite",
    "fragmented-invite-v6",
    "h01-r5-compliant",
    "h02-retry-loop",
    "h03-over-relaxed",
    "h04-dependent-drop",
    "h05-no-retry",
    "h06-new-callid",
    "h07-421-100rel",
    "h08-fork-mixed",
    "h09-580-relaxed",
    "h10-policy-enforced",
    "h11-emergency-100rel",
    "h12-update-405-cancel",
    "h13-udp-losses",
    "h14-cseq-reused-482",
    "h15-sec-agree-register",
    "h16-420-no-unsupported",
    "h17-rotated-420",
    "h18-reinvite-420",
    "h19-stepwise-fast",
    "ims-precondition-call",
    "ipv6-call",
    "relaxed-retry-420",
    "retry-new-callid-h2",
    "rotated-420-retry",
    "skew-two-points",
    "sll2-any",
    "tcp-t1",
    "tcp-tn",
    "udp-retrans-invite-420",
];

/// The reports compared for every case.
const REPORTS: &[&str] = &[
    "sessions.csv",
    "failures.csv",
    "messages.csv",
    "inputs.csv",
    "anomalies.csv",
    "summary.csv",
];

fn run_case(name: &str) {
    let case = root().join("samples").join(name);
    let caps = common::sample_captures(name);
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["--messages", "-j", "1", "-o", out.path().to_str().unwrap()];
    // A case may carry its home policy (rules.md §E.3).
    let policy = format!("samples/{name}/policy.toml");
    if case.join("policy.toml").exists() {
        args.extend(["--policy", policy.as_str()]);
    }
    args.extend(caps.iter().map(String::as_str));
    let o = analyze(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let expected = case.join("expected");
    let bless = std::env::var_os("BLESS").is_some();
    if bless {
        fs::create_dir_all(&expected).unwrap();
    }
    // report.html (no run time in it) is compared for the H samples, the
    // rules.md §H call flows: their ladders are the issue-13 golden.
    let html: &[&str] = if name.starts_with('h') {
        &["report.html"]
    } else {
        &[]
    };
    for r in REPORTS.iter().chain(html) {
        let got = fs::read(out.path().join(r)).unwrap();
        let want_path = expected.join(r);
        if bless {
            fs::write(&want_path, &got).unwrap();
            continue;
        }
        let want = fs::read(&want_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run the bless step to create it)",
                want_path.display()
            )
        });
        if got != want {
            panic!(
                "{name}/{r} differs from the expected output\n--- expected\n{}\n--- got\n{}",
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            );
        }
    }
}

#[test]
fn every_sample_directory_is_a_listed_case() {
    let mut dirs: Vec<String> = fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir() && e.file_name() != "policies")
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert_eq!(dirs, CASES, "samples/ and CASES must list the same cases");
}

macro_rules! golden {
    ($($fn_name:ident => $case:expr,)*) => {
        $(#[test] fn $fn_name() { run_case($case); })*
    };
}

golden! {
    auth_407 => "auth-407",
    cancel_487 => "cancel-487",
    fork_two_180 => "fork-two-180",
    fragmented_invite => "fragmented-invite",
    fragmented_invite_v6 => "fragmented-invite-v6",
    h01_r5_compliant => "h01-r5-compliant",
    h02_retry_loop => "h02-retry-loop",
    h03_over_relaxed => "h03-over-relaxed",
    h04_dependent_drop => "h04-dependent-drop",
    h05_no_retry => "h05-no-retry",
    h06_new_callid => "h06-new-callid",
    h07_421_100rel => "h07-421-100rel",
    h08_fork_mixed => "h08-fork-mixed",
    h09_580_relaxed => "h09-580-relaxed",
    h10_policy_enforced => "h10-policy-enforced",
    h11_emergency_100rel => "h11-emergency-100rel",
    h12_update_405_cancel => "h12-update-405-cancel",
    h13_udp_losses => "h13-udp-losses",
    h14_cseq_reused_482 => "h14-cseq-reused-482",
    h15_sec_agree_register => "h15-sec-agree-register",
    h16_420_no_unsupported => "h16-420-no-unsupported",
    h17_rotated_420 => "h17-rotated-420",
    h18_reinvite_420 => "h18-reinvite-420",
    h19_stepwise_fast => "h19-stepwise-fast",
    ims_precondition_call => "ims-precondition-call",
    ipv6_call => "ipv6-call",
    relaxed_retry_420 => "relaxed-retry-420",
    retry_new_callid_h2 => "retry-new-callid-h2",
    rotated_420_retry => "rotated-420-retry",
    skew_two_points => "skew-two-points",
    sll2_any => "sll2-any",
    tcp_t1 => "tcp-t1",
    tcp_tn => "tcp-tn",
    udp_retrans_invite_420 => "udp-retrans-invite-420",
}

#[test]
fn expected_messages_contain_every_sample_message() {
    // Not a tautology check of the bless step: every case's expected
    // messages.csv must hold at least one request and one response, so a
    // blessed empty output would be caught here.
    for name in CASES {
        let p = root()
            .join("samples")
            .join(name)
            .join("expected/messages.csv");
        let csv = common::read_csv(&p);
        assert!(
            csv.rows.iter().any(|r| r["kind"] == "request"),
            "{name}: no request"
        );
        assert!(
            csv.rows.iter().any(|r| r["kind"] == "response"),
            "{name}: no response"
        );
    }
}
