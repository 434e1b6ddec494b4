//! report.html (issue 13): written by every analyze run unless `--no-html`,
//! self-contained, and wire text cannot inject markup.

mod common;

use common::{analyze, build};

/// A NO_RETRY session whose User-Agent, Server and Call-ID carry markup.
fn hostile_capture(dir: &std::path::Path) -> std::path::PathBuf {
    let mut cap = build::Pcap::new(1);
    let call = "\"><svg onload=alert(1)>x@h";
    let sip = |start: &str, ttag: &str, method: &str, extra: &str| {
        let tt = if ttag.is_empty() {
            String::new()
        } else {
            format!(";tag={ttag}")
        };
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
From: <sip:alice@ims.example>;tag=f\r\nTo: <sip:bob@voip.example.net>{tt}\r\nCall-ID: {call}\r\n\
CSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    let msgs = [
        (
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            sip(
                "INVITE sip:bob@voip.example.net SIP/2.0",
                "",
                "INVITE",
                "User-Agent: <script>alert('ua')</script>\r\nRequire: precondition\r\n",
            ),
        ),
        (
            [10, 0, 0, 2],
            [10, 0, 0, 1],
            sip(
                "SIP/2.0 420 Bad Extension",
                "x",
                "INVITE",
                "Server: \"><svg onload=alert(2)>\r\nUnsupported: precondition\r\n",
            ),
        ),
        (
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            sip("ACK sip:bob@voip.example.net SIP/2.0", "x", "ACK", ""),
        ),
    ];
    for (i, (s, d, m)) in msgs.iter().enumerate() {
        let l3 = build::ipv4(*s, *d, 17, None, &build::udp(5060, 5060, m));
        cap.push(
            1_700_000_000 + i as u32,
            0,
            build::ethernet(&[], 0x0800, &l3),
        );
    }
    // 40 s more traffic: the caller was done (NO_RETRY, attention > 0).
    let l3 = build::ipv4(
        [10, 0, 0, 3],
        [10, 0, 0, 4],
        17,
        None,
        &build::udp(4000, 4000, b"x"),
    );
    cap.push(1_700_000_045, 0, build::ethernet(&[], 0x0800, &l3));
    let path = dir.join("hostile.pcap");
    std::fs::write(&path, cap.bytes()).unwrap();
    path
}

#[test]
fn hostile_header_values_do_not_inject_markup() {
    let dir = tempfile::tempdir().unwrap();
    let cap = hostile_capture(dir.path());
    let out = dir.path().join("out");
    let o = analyze(&["-o", out.to_str().unwrap(), cap.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s = common::read_csv(&out.join("sessions.csv"));
    assert_eq!(s.rows[0]["verdict"], "NO_RETRY");
    assert_ne!(s.rows[0]["attention"], "0");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "a script element in the page");
    assert!(!lower.contains("<svg onload"), "an injected svg element");
    // No tag of the page carries an event handler: every `<...>` is ours.
    for tag in lower
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap())
    {
        assert!(!tag.contains("onload"), "an injected attribute in <{tag}>");
    }
    assert!(
        html.contains("&lt;script&gt;alert('ua')&lt;/script&gt;"),
        "the UA is shown, escaped"
    );
    assert!(
        html.contains("&quot;&gt;&lt;svg onload=alert(1)&gt;x@h"),
        "the Call-ID is shown, escaped"
    );
    // Self-contained: nothing is fetched.
    for needle in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!lower.contains(needle), "{needle}");
    }
}

#[test]
fn no_html_skips_and_removes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = analyze(&[
        "-o",
        out.to_str().unwrap(),
        "samples/h05-no-retry/capture.pcap",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.join("report.html").exists());
    let o = analyze(&[
        "--no-html",
        "-o",
        out.to_str().unwrap(),
        "samples/h05-no-retry/capture.pcap",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        !out.join("report.html").exists(),
        "a stale report.html stays"
    );
}

#[test]
fn html_sessions_limits_the_ladders_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = vec!["--html-sessions", "1", "-o", out.to_str().unwrap()];
    let caps = [
        "samples/h02-retry-loop/capture.pcap",
        "samples/h03-over-relaxed/capture.pcap",
        "samples/h05-no-retry/capture.pcap",
    ];
    args.extend(caps);
    let o = analyze(&args);
    assert_eq!(o.status.code(), Some(0));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("class=\"session\"").count(), 1);
    assert!(html.contains("3 sessions need attention"), "{html}");
    assert!(html.contains("2 more are in sessions.csv"));
    // The worst one: RETRY_LOOP.
    assert!(html.contains("RETRY_LOOP (attention"));
}

/// The page is the same bytes for any `-j` (the table's sessions and their
/// messages do not depend on the order sessions finish in).
#[test]
fn report_is_the_same_for_any_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let caps = [
        "samples/h02-retry-loop/capture.pcap",
        "samples/h03-over-relaxed/capture.pcap",
        "samples/h05-no-retry/capture.pcap",
        "samples/h17-rotated-420/capture-1.pcap",
        "samples/h17-rotated-420/capture-2.pcap",
    ];
    let mut pages = Vec::new();
    for j in ["1", "4"] {
        let out = dir.path().join(j);
        let mut args = vec!["-j", j, "--html-sessions", "2", "-o", out.to_str().unwrap()];
        args.extend(caps);
        assert_eq!(analyze(&args).status.code(), Some(0));
        pages.push(std::fs::read(out.join("report.html")).unwrap());
    }
    assert!(
        pages[0] == pages[1],
        "report.html differs between -j1 and -j4"
    );
}
