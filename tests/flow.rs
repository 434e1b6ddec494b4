//! `sipaudit flow OUTDIR SESSION` (issue 13): the text ladder of a session
//! from the reports of an `analyze --messages` run.

mod common;

use std::process::Command;

use common::analyze;

fn flow(out: &std::path::Path, session: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .args(["flow", out.to_str().unwrap(), session])
        .output()
        .unwrap()
}

#[test]
fn flow_draws_every_message_of_the_session_in_order_with_its_marks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = analyze(&[
        "--messages",
        "-o",
        out.to_str().unwrap(),
        "samples/h09-580-relaxed/capture.pcap",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = flow(&out, "1");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "colour when stdout is not a terminal"
    );
    assert!(
        text.contains("verdict RELAXATION_WITHOUT_REFUSAL"),
        "{text}"
    );
    assert!(
        text.contains("A  127.0.0.1:5061  sipaudit-sample-UE/1.0 (SIPp)"),
        "{text}"
    );
    // One line per message, in messages.csv order.
    let m = common::read_csv(&out.join("messages.csv"));
    let want: Vec<String> = m
        .rows
        .iter()
        .filter(|r| r["session"] == "1")
        .map(|r| match r["status"].as_str() {
            "" => format!("{} ({})", r["method"], r["cseq"]),
            s => format!("{s} {} ({})", r["method"], r["cseq"]),
        })
        .collect();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("s  ")).collect();
    assert_eq!(lines.len(), want.len(), "{text}");
    for (l, w) in lines.iter().zip(&want) {
        assert!(l.contains(w.as_str()), "{l:?} should show {w:?}");
    }
    let failure = lines.iter().find(|l| l.contains("580 INVITE")).unwrap();
    assert!(
        failure.contains("<= failure: PRECONDITION_NOT_MET"),
        "{failure}"
    );
    assert!(
        failure.contains("|<-"),
        "the 580 goes back to the caller: {failure}"
    );
    let retry = lines.iter().find(|l| l.contains("INVITE (11)-")).unwrap();
    assert!(
        retry.contains("<= retry H0 (1), dropped precondition"),
        "{retry}"
    );
    assert!(retry.contains("->|"), "{retry}");
}

#[test]
fn flow_without_messages_csv_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = analyze(&[
        "-o",
        out.to_str().unwrap(),
        "samples/h05-no-retry/capture.pcap",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = flow(&out, "1");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("messages.csv") && err.contains("--messages"),
        "{err}"
    );
    let o = analyze(&[
        "--messages",
        "-o",
        out.to_str().unwrap(),
        "samples/h05-no-retry/capture.pcap",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = flow(&out, "99");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no session 99"));
}
