//! messages.csv `retransmission` against tshark's `sip.resend`, per corpus
//! file (rules.md §A.2; the sessions issue).
//!
//! tshark 4.0 (`packet-sip.c`, `sip_is_packet_resend`) keys a resend by
//! (Call-ID, source and destination address and port) and compares with the
//! previous message of that key only; it never flags a 1xx, an ACK or a
//! CANCEL, nor anything that is not over UDP. sipaudit follows rules.md §A.2:
//! the same transaction key, start line, CSeq, body (and To tag and RSeq for
//! a response) as a message seen within 32 s, wherever it was captured. So
//! every frame tshark flags must be flagged by sipaudit, and every frame
//! sipaudit flags beyond tshark must have one of these reasons, checked
//! here from the messages themselves:
//! - `1xx`: a provisional response (tshark flags final responses only);
//! - `ack-cancel`: an ACK or a CANCEL (excluded by tshark);
//! - `not-udp`: SIP over TCP/SCTP/WebSocket (tshark checks UDP only; here
//!   the second capture leg of a TCP connection, which tshark hides);
//! - `other-leg`: a copy of a message seen earlier on another address pair
//!   (a device relaying it unchanged, or another capture point), which
//!   tshark keys apart.
//!
//! The per-file counts are pinned too, so a change in either direction
//! fails.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::Command;

use common::needs::{corpus, tool};
use common::{analyze, read_csv};

/// (file, sipaudit `retransmission=true` count, tshark `sip.resend` count).
/// Every other corpus file has 0 and 0.
const EXPECTED: &[(&str, usize, usize)] = &[
    ("wireshark-wiki/aaa.pcap", 14, 4),
    ("wireshark-wiki/T38.pcap", 7, 3),
    ("wireshark-wiki/h223-over-rtp.pcap.gz", 1, 1),
    ("wireshark-wiki/1filtered.cap", 2, 1),
    ("ndpi/FAX-Call-t38-CA-TDM-SIP-FB-1.pcap", 46, 14),
    ("nokia-pcaptoparquet/51_esp_sip.pcapng.gz", 71, 28),
    ("open5gs/ipsec_to_ipsec_call.pcapng", 45, 30),
    ("open5gs/nonipsec_reg.pcapng", 24, 20),
    ("open5gs/volte.pcapng", 16, 10),
    ("sngrep/ipv6frag.pcap", 1, 1),
    ("sipnab/b2bua-asterisk.pcapng", 2, 1),
    ("snort3-demo/SIP_Eyebeam2Eyebeam_Video_Audio.pcap", 42, 42),
];

fn tshark_resends(path: &str) -> HashSet<u64> {
    let o = Command::new("tshark")
        .args([
            "-n",
            "-r",
            path,
            "-o",
            "esp.enable_null_encryption_decode_heuristic:TRUE",
        ])
        .args([
            "-Y",
            "sip.resend == 1",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .env("WIRESHARK_CONFIG_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .expect("run tshark");
    assert!(o.status.success(), "tshark failed on {path}");
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn retransmission_agrees_with_tshark_resend_with_every_difference_explained() {
    let (Some(root), true) = (corpus(), tool("tshark")) else {
        return;
    };
    let expected: BTreeMap<&str, (usize, usize)> =
        EXPECTED.iter().map(|&(f, a, b)| (f, (a, b))).collect();
    let mut files: Vec<String> = Vec::new();
    for e in walk(&root) {
        let rel = e
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel != "SOURCES.md" && !rel.ends_with("cr_ss101.cap") {
            files.push(rel);
        }
    }
    assert_eq!(files.len(), 54);
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for rel in &files {
        let path = root.join(rel);
        let dir = tempfile::tempdir().unwrap();
        let o = analyze(&[
            "--messages",
            "-o",
            dir.path().to_str().unwrap(),
            path.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{rel}");
        let msgs = read_csv(&dir.path().join("messages.csv")).rows;
        let ours: Vec<_> = msgs
            .iter()
            .filter(|m| m["retransmission"] == "true")
            .collect();
        assert!(
            msgs.iter()
                .all(|m| m["retransmission"] == "true" || m["retransmission"] == "false")
        );
        let (want_ours, want_tshark) = expected.get(rel.as_str()).copied().unwrap_or((0, 0));
        let theirs = tshark_resends(path.to_str().unwrap());
        assert_eq!(theirs.len(), want_tshark, "{rel}: tshark sip.resend count");
        assert_eq!(
            ours.len(),
            want_ours,
            "{rel}: sipaudit retransmission count"
        );
        let our_frames: HashSet<u64> = ours.iter().map(|m| m["frame"].parse().unwrap()).collect();
        for f in &theirs {
            assert!(
                our_frames.contains(f),
                "{rel}: tshark flags frame {f}, sipaudit does not"
            );
        }
        for m in &ours {
            let frame: u64 = m["frame"].parse().unwrap();
            if theirs.contains(&frame) && m["transport"].ends_with("udp") {
                continue;
            }
            let status: Option<u16> = m["status"].parse().ok();
            let reason = if !m["transport"].ends_with("udp") {
                "not-udp"
            } else if status.is_some_and(|s| s < 200) {
                "1xx"
            } else if status.is_none() && (m["method"] == "ACK" || m["method"] == "CANCEL") {
                "ack-cancel"
            } else if msgs.iter().any(|e| {
                e["retransmission"] == "false"
                    && e["call_id"] == m["call_id"]
                    && e["cseq"] == m["cseq"]
                    && e["method"] == m["method"]
                    && e["status"] == m["status"]
                    && (&e["src"], &e["dst"]) != (&m["src"], &m["dst"])
            }) {
                "other-leg"
            } else {
                panic!(
                    "{rel}: frame {frame} is flagged by sipaudit only, with no known reason: {m:?}"
                );
            };
            *reasons.entry(reason).or_default() += 1;
        }
    }
    // 1xx 29, ACK/CANCEL 39, other-leg 14 over UDP; 34 TCP second-leg copies.
    let got: Vec<(&str, usize)> = reasons.into_iter().collect();
    assert_eq!(
        got,
        vec![
            ("1xx", 29),
            ("ack-cancel", 39),
            ("not-udp", 34),
            ("other-leg", 14)
        ]
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A message in one rotated file and its retransmission in the next are one
/// timeline: the copy is flagged whatever order the files are named in.
#[test]
fn retransmission_across_rotated_files_in_either_order() {
    use common::build::*;
    let dir = tempfile::tempdir().unwrap();
    let pkt = || {
        ethernet(
            &[],
            0x0800,
            &ipv4(
                [10, 0, 0, 1],
                [10, 0, 0, 2],
                17,
                None,
                &udp(5060, 5060, &sip_options("rot")),
            ),
        )
    };
    let mut a = Pcap::new(1);
    a.push(1000, 0, pkt());
    let mut b = Pcap::new(1);
    b.push(1000, 500_000, pkt()); // Timer A: 500 ms later, next file
    // Names that sort against capture time: the later file sorts first.
    let (fa, fb) = (
        dir.path().join("z-first.pcap"),
        dir.path().join("a-second.pcap"),
    );
    std::fs::write(&fa, a.bytes()).unwrap();
    std::fs::write(&fb, b.bytes()).unwrap();
    let (sa, sb) = (fa.to_str().unwrap(), fb.to_str().unwrap());
    let mut outputs = Vec::new();
    for (name, order) in [("fwd", [sa, sb]), ("rev", [sb, sa])] {
        let out = dir.path().join(name);
        let o = analyze(&[
            "--messages",
            "-o",
            out.to_str().unwrap(),
            order[0],
            order[1],
        ]);
        assert_eq!(o.status.code(), Some(0));
        let msgs = read_csv(&out.join("messages.csv")).rows;
        let got: Vec<(&str, &str)> = msgs
            .iter()
            .map(|m| (m["file"].as_str(), m["retransmission"].as_str()))
            .collect();
        assert_eq!(got, vec![(sa, "false"), (sb, "true")], "{name}");
        outputs.push(std::fs::read(out.join("messages.csv")).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
}
