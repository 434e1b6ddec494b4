//! `sipaudit extract` and `analyze --pcap-dir` (issue 13): each session's
//! pcap holds exactly that session's SIP messages as tshark reads them, over
//! rotated files, TCP and a fragmented INVITE (IPv4 and IPv6).

mod common;

use std::path::Path;
use std::process::Command;

use common::{analyze, needs, read_csv, root};

/// (Call-ID, CSeq) of every SIP message tshark finds in `pcap`, sorted.
fn tshark_messages(pcap: &Path) -> Vec<(String, String)> {
    let o = Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap(), "-Y", "sip"])
        .args(["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=|"])
        .args(["-e", "sip.Call-ID", "-e", "sip.CSeq"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut v = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let mut f = line.split('\t');
        let ids = f.next().unwrap_or("");
        let cseqs = f.next().unwrap_or("");
        for (id, cseq) in ids.split('|').zip(cseqs.split('|')) {
            v.push((id.to_string(), cseq.to_string()));
        }
    }
    v.sort();
    v
}

/// (Call-ID, CSeq) of the session's messages.csv rows, sorted.
fn csv_messages(out: &Path, session: &str) -> Vec<(String, String)> {
    let m = read_csv(&out.join("messages.csv"));
    let mut v: Vec<(String, String)> = m
        .rows
        .iter()
        .filter(|r| r["session"] == session)
        .map(|r| {
            (
                r["call_id"].clone(),
                format!("{} {}", r["cseq"], r["method"]),
            )
        })
        .collect();
    v.sort();
    v
}

fn check_case(case: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let pcaps = dir.path().join("pcaps");
    let caps = common::sample_captures(case);
    let mut args = vec!["--messages", "-o", out.to_str().unwrap()];
    args.extend(caps.iter().map(String::as_str));
    assert_eq!(analyze(&args).status.code(), Some(0), "{case}");
    let sessions = read_csv(&out.join("sessions.csv"));
    let ids: Vec<String> = sessions.rows.iter().map(|r| r["session"].clone()).collect();
    let ids = ids.join(",");
    let o = Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .current_dir(root())
        .args(["extract", "-o", pcaps.to_str().unwrap(), "--session", &ids])
        .args(&caps)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for r in &sessions.rows {
        let sid = &r["session"];
        let want = csv_messages(&out, sid);
        let got = tshark_messages(&pcaps.join(format!("{sid}.pcap")));
        assert!(!want.is_empty(), "{case} session {sid}");
        assert_eq!(got, want, "{case} session {sid}");
    }
}

#[test]
fn extract_rotated_set() {
    if needs::tool("tshark") {
        check_case("rotated-420-retry");
    }
}

#[test]
fn extract_tcp_sessions() {
    if needs::tool("tshark") {
        check_case("tcp-t1");
        check_case("tcp-tn");
    }
}

#[test]
fn extract_fragmented_invite() {
    if needs::tool("tshark") {
        check_case("fragmented-invite");
        check_case("fragmented-invite-v6");
    }
}

/// `analyze --pcap-dir` writes the pcaps of report.html's sessions, links
/// them, and leaves no messages.csv when `--messages` was not given.
#[test]
fn analyze_pcap_dir_writes_the_table_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let pcaps = out.join("pcaps");
    let o = analyze(&[
        "-o",
        out.to_str().unwrap(),
        "--pcap-dir",
        pcaps.to_str().unwrap(),
        "samples/h05-no-retry/capture.pcap",
        "samples/h01-r5-compliant/capture.pcap",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.join("messages.csv").exists());
    let s = read_csv(&out.join("sessions.csv"));
    let mut want: Vec<String> = s
        .rows
        .iter()
        .filter(|r| r["attention"] != "0")
        .map(|r| format!("{}.pcap", r["session"]))
        .collect();
    want.sort();
    let mut got: Vec<String> = std::fs::read_dir(&pcaps)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains(&format!("href=\"pcaps/{}\"", want[0])),
        "{html}"
    );
}

/// `analyze --pcap-dir` (from the messages the run keeps) and `extract`
/// (from messages.csv) write the same bytes for the same sessions.
#[test]
fn pcap_dir_and_extract_agree() {
    let dir = tempfile::tempdir().unwrap();
    let caps = [
        "samples/h02-retry-loop/capture.pcap",
        "samples/h03-over-relaxed/capture.pcap",
        "samples/h09-580-relaxed/capture.pcap",
        "samples/h17-rotated-420/capture-1.pcap",
        "samples/h17-rotated-420/capture-2.pcap",
    ];
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut args = vec![
        "-o".to_string(),
        dir.path().join("out").to_str().unwrap().to_string(),
    ];
    args.extend(["--pcap-dir".to_string(), a.to_str().unwrap().to_string()]);
    args.extend(caps.iter().map(|c| c.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(analyze(&args).status.code(), Some(0));
    let o = Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .current_dir(root())
        .args(["extract", "--attention-min", "1", "-o", b.to_str().unwrap()])
        .args(caps)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let list = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    assert!(!list(&a).is_empty());
    assert_eq!(list(&a), list(&b));
    for f in list(&a) {
        assert!(
            std::fs::read(a.join(&f)).unwrap() == std::fs::read(b.join(&f)).unwrap(),
            "{f:?} differs"
        );
    }
}

/// One field list per packet tshark finds in `pcap` with `filter`.
fn tshark_rows(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<String> {
    let mut c = Command::new("tshark");
    c.args(["-r", pcap.to_str().unwrap(), "-Y", filter, "-T", "fields"]);
    for f in fields {
        c.args(["-e", f]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `extract --media` on a public capture of two SIPp calls with RTP, whose
/// second call reuses the first one's media port on one side: the first
/// session's pcap holds its SIP messages plus exactly the UDP packets
/// between the endpoints its SDP offer and answer name (as tshark reads the
/// SDP of the original), RTP of the second call left out; without
/// `--media`, the SIP alone.
#[test]
fn extract_media_takes_exactly_the_negotiated_rtp() {
    let Some(corpus) = needs::corpus() else {
        return;
    };
    if !needs::tool("tshark") {
        return;
    }
    let cap = corpus.join("wireshark-wiki/sip-rtp-g711.pcap");
    let dir = tempfile::tempdir().unwrap();
    let call = "sip.Call-ID == \"1-1966@10.0.2.20\"";
    // The endpoints (c= address, m= port; RTCP on port + 1) of its SDP.
    let mut ends = Vec::new();
    for row in tshark_rows(
        &cap,
        &format!("{call} && sdp"),
        &["sdp.connection_info.address", "sdp.media.port"],
    ) {
        let (addr, port) = row.split_once('\t').unwrap();
        let port: u16 = port.parse().unwrap();
        ends.push(format!("{addr}:{port}"));
        ends.push(format!("{addr}:{}", port + 1));
    }
    assert_eq!(ends.len(), 4, "an offer and an answer: {ends:?}");
    let fields = [
        "frame.time_epoch",
        "ip.src",
        "udp.srcport",
        "ip.dst",
        "udp.dstport",
    ];
    let mut want: Vec<String> = tshark_rows(&cap, "udp", &fields)
        .into_iter()
        .filter(|r| {
            let f: Vec<&str> = r.split('\t').collect();
            let (src, dst) = (format!("{}:{}", f[1], f[2]), format!("{}:{}", f[3], f[4]));
            ends.contains(&src) && ends.contains(&dst)
        })
        .collect();
    let rtp = want.len();
    want.extend(tshark_rows(&cap, call, &fields));
    want.sort();
    let run = |media: bool, out: &Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sipaudit"));
        c.args(["extract", "--session", "1", "-o", out.to_str().unwrap()]);
        if media {
            c.arg("--media");
        }
        let o = c.arg(&cap).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let mut got = tshark_rows(&out.join("1.pcap"), "", &fields);
        got.sort();
        got
    };
    let got = run(true, &dir.path().join("media"));
    assert!(rtp > 400, "the call's RTP: {rtp} packets");
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    let sip_only = run(false, &dir.path().join("sip"));
    assert_eq!(sip_only, tshark_rows(&cap, call, &fields));
    // The second call's RTP (to the same 10.0.2.20:6000) was in the capture.
    let other = tshark_rows(&cap, "udp.srcport == 28102 && udp.dstport == 6000", &fields);
    assert!(!other.is_empty() && other.iter().all(|r| !got.contains(r)));
}
