//! SIP inside HEP (v2 and v3) on UDP and TCP, on captures built here: chunks
//! in unusual order, vendor chunks, chunks that lie about their length, HEP2,
//! several HEP packets per TCP segment and one split over segments. Checked
//! against what was put in (addresses, times, transports, anomalies,
//! accounting) and against tshark: the (frame, Call-ID, CSeq) multiset of
//! messages.csv must equal the one tshark's SIP dissector finds through the
//! HEP dissector of `tests/data/hep.lua` (Debian's tshark 4.0 has no HEP
//! dissector; a tshark that has one uses its own).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::build::*;
use common::needs::tool;
use common::{Csv, analyze, read_csv, root};

const AGENT: [u8; 4] = [192, 0, 2, 10];
const COLLECTOR: [u8; 4] = [192, 0, 2, 20];
/// Frame times: second `T0 + i` for frame `i + 1`.
const T0: u32 = 1_700_000_000;

fn chunk(v: &mut Vec<u8>, vendor: u16, kind: u16, data: &[u8]) {
    v.extend_from_slice(&vendor.to_be_bytes());
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&((data.len() + 6) as u16).to_be_bytes());
    v.extend_from_slice(data);
}

fn hep3_from(body: &[u8]) -> Vec<u8> {
    let mut v = b"HEP3".to_vec();
    v.extend_from_slice(&((body.len() + 6) as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// What one HEP packet says.
struct Hep<'a> {
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    proto: u8,
    sec: u32,
    usec: u32,
    ptype: u8,
    payload: &'a [u8],
}

/// HEP3 with the chunks in an unusual order (payload first, time before
/// addresses) and with chunks a collector must skip: a vendor chunk, the
/// auth key, a correlation id, an unknown vendor-0 type.
fn hep3(h: &Hep<'_>) -> Vec<u8> {
    let mut b = Vec::new();
    chunk(&mut b, 0, 15, h.payload);
    chunk(&mut b, 0x0b2a, 3, b"vendor-specific");
    chunk(&mut b, 0, 10, &h.usec.to_be_bytes());
    chunk(&mut b, 0, 9, &h.sec.to_be_bytes());
    chunk(&mut b, 0, 14, b"myhep");
    chunk(&mut b, 0, 8, &h.dst.1.to_be_bytes());
    chunk(&mut b, 0, 4, &h.dst.0);
    chunk(&mut b, 0, 1, &[2]);
    chunk(&mut b, 0, 3, &h.src.0);
    chunk(&mut b, 0, 7, &h.src.1.to_be_bytes());
    chunk(&mut b, 0, 2, &[h.proto]);
    chunk(&mut b, 0, 11, &[h.ptype]);
    chunk(&mut b, 0, 12, &2001u32.to_be_bytes());
    chunk(&mut b, 0, 17, b"corr-id@x");
    chunk(&mut b, 0, 99, b"unknown type");
    hep3_from(&b)
}

/// HEP2 (IPv4): Kamailio's fixed header, then the time in little-endian.
fn hep2(h: &Hep<'_>) -> Vec<u8> {
    let mut v = vec![2, 16, 2, h.proto];
    v.extend_from_slice(&h.src.1.to_be_bytes());
    v.extend_from_slice(&h.dst.1.to_be_bytes());
    v.extend_from_slice(&h.src.0);
    v.extend_from_slice(&h.dst.0);
    v.extend_from_slice(&h.sec.to_le_bytes());
    v.extend_from_slice(&h.usec.to_le_bytes());
    v.extend_from_slice(&[0xd1, 0x07, 0, 0]);
    v.extend_from_slice(h.payload);
    v
}

fn request(method: &str, call_id: &str, cseq: u32) -> Vec<u8> {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{call_id}-{cseq}\r\n\
From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn response(code: u16, call_id: &str, cseq: u32, method: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 {code} Whatever\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{call_id}-{cseq}\r\n\
From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\nCall-ID: {call_id}\r\n\
CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

const UE: [u8; 4] = [10, 0, 0, 1];
const PCSCF: [u8; 4] = [10, 0, 0, 2];

fn msg<'a>(payload: &'a [u8], frame: u32, off_ms: i64, proto: u8, forward: bool) -> Hep<'a> {
    let t = (T0 as i64 + frame as i64 - 1) * 1000 + off_ms;
    let (src, dst) = if forward {
        ((UE, 40000), (PCSCF, 5060))
    } else {
        ((PCSCF, 5060), (UE, 40000))
    };
    Hep {
        src,
        dst,
        proto,
        sec: (t / 1000) as u32,
        usec: (t % 1000) as u32 * 1000,
        ptype: 1,
        payload,
    }
}

fn udp_frame(p: &mut Pcap, dport: u16, payload: &[u8]) {
    let i = p.records.len() as u32;
    p.push(
        T0 + i,
        0,
        ethernet(
            &[],
            0x0800,
            &ipv4(AGENT, COLLECTOR, 17, None, &udp(9999, dport, payload)),
        ),
    );
}

fn run(dir: &Path, name: &str, p: &Pcap) -> (Csv, Csv, Csv, std::path::PathBuf) {
    let f = dir.join(name);
    std::fs::write(&f, p.bytes()).unwrap();
    let out = dir.join(format!("{name}.out"));
    let o = analyze(&[
        "--messages",
        "-o",
        out.to_str().unwrap(),
        f.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (
        read_csv(&out.join("inputs.csv")),
        read_csv(&out.join("messages.csv")),
        read_csv(&out.join("anomalies.csv")),
        f,
    )
}

/// The UDP capture: one frame per case.
fn udp_capture() -> Pcap {
    let mut p = Pcap::new(1);
    let inv = request("INVITE", "hep-udp-1", 1);
    let trying = response(100, "hep-udp-1", 1, "INVITE");
    let opt = request("OPTIONS", "hep-udp-2", 7);
    let bye = request("BYE", "hep-udp-1", 2);
    let ok = response(200, "hep-udp-1", 2, "BYE");
    // 1: HEP3, chunks in unusual order, vendor chunks, 200 ms after the frame.
    udp_frame(&mut p, 9060, &hep3(&msg(&inv, 1, 200, 17, true)));
    // 2: HEP3 of a TCP-captured message, 5 s before the frame time.
    udp_frame(&mut p, 9060, &hep3(&msg(&trying, 2, -5000, 6, false)));
    // 3: a chunk after the payload lies about its length: SIP still read.
    let mut liar = hep3(&msg(&opt, 3, 0, 17, true));
    let at = 6 + 6 + opt.len() + 4;
    liar[at..at + 2].copy_from_slice(&4000u16.to_be_bytes());
    udp_frame(&mut p, 9060, &liar);
    // 4: the payload chunk lies about its length: nothing recoverable.
    let mut liar = hep3(&msg(&bye, 4, 0, 17, true));
    liar[10..12].copy_from_slice(&5000u16.to_be_bytes());
    udp_frame(&mut p, 9060, &liar);
    // 5: HEP2 on another port (found by content).
    udp_frame(&mut p, 9062, &hep2(&msg(&ok, 5, 30, 17, false)));
    // 6: HEP3 carrying an RTCP report (protocol type 5): no SIP.
    let mut rtcp = msg(b"{\"type\":200}", 6, 0, 17, true);
    rtcp.ptype = 5;
    udp_frame(&mut p, 9060, &hep3(&rtcp));
    // 7: HEP3 cut by its datagram (length beyond it).
    let cut = hep3(&msg(&bye, 7, 0, 17, true));
    udp_frame(&mut p, 9060, &cut[..cut.len() - 10]);
    // 8: two HEP3 packets in one datagram.
    let mut two = hep3(&msg(&bye, 8, 0, 17, true));
    two.extend_from_slice(&hep3(&msg(&ok, 8, 1, 17, false)));
    udp_frame(&mut p, 9060, &two);
    p
}

fn rows_of<'a>(c: &'a Csv, col: &str) -> Vec<&'a str> {
    c.rows.iter().map(|r| r[col].as_str()).collect()
}

#[test]
fn hep_over_udp_gives_the_inner_sip_with_hep_addresses_times_and_transport() {
    let dir = tempfile::tempdir().unwrap();
    let (inputs, messages, anomalies, _) = run(dir.path(), "udp.pcap", &udp_capture());
    // In time order: frame 2's HEP time is 5 s before its frame's.
    assert_eq!(rows_of(&messages, "frame"), ["2", "1", "3", "5", "8", "8"]);
    assert_eq!(
        rows_of(&messages, "transport"),
        [
            "hep/tcp", "hep/udp", "hep/udp", "hep/udp", "hep/udp", "hep/udp"
        ]
    );
    assert_eq!(messages.rows[1]["src"], "10.0.0.1:40000");
    assert_eq!(messages.rows[1]["dst"], "10.0.0.2:5060");
    assert_eq!(messages.rows[0]["src"], "10.0.0.2:5060");
    // The HEP capture time, not the frame time.
    assert_eq!(messages.rows[1]["time"], "2023-11-14T22:13:20.200000Z");
    assert_eq!(messages.rows[0]["time"], "2023-11-14T22:13:16.000000Z");
    assert_eq!(messages.rows[3]["time"], "2023-11-14T22:13:24.030000Z");
    assert_eq!(rows_of(&messages, "cseq"), ["1", "1", "7", "2", "2", "2"]);
    // The orphan responses of frames 2 and 5 are the dialog stage's (their
    // requests came later or were lost in frame 4); the HEP ones:
    let hep: Vec<_> = anomalies
        .rows
        .iter()
        .filter(|r| r["kind"].starts_with("hep_"))
        .collect();
    let an: Vec<(&str, &str)> = hep
        .iter()
        .map(|r| (r["frame"].as_str(), r["kind"].as_str()))
        .collect();
    assert_eq!(
        an,
        [
            ("2", "hep_time_skew"),
            ("3", "hep_malformed"),
            ("3", "hep_malformed"),
            ("4", "hep_malformed"),
            ("7", "hep_truncated"),
        ],
        "{:?}",
        anomalies.rows
    );
    assert!(hep[0]["detail"].contains("5.0 s before the frame time"));
    // Frame 3: the liar, then the chunks not read because of it.
    let details: Vec<&str> = hep.iter().map(|r| r["detail"].as_str()).collect();
    assert!(
        details[1..3]
            .iter()
            .any(|d| d.contains("chunk type 3 at byte")),
        "{details:?}"
    );
    assert!(
        details[1..3]
            .iter()
            .any(|d| d.contains("without source address")),
        "{details:?}"
    );
    assert_eq!(messages.rows[2]["src"], "0.0.0.0:0");
    assert!(details[3].contains("chunk type 15"), "{details:?}");
    let i = &inputs.rows[0];
    assert_eq!(
        (
            &*i["sip_packets"],
            &*i["other_packets"],
            &*i["undecodable_packets"]
        ),
        ("5", "1", "2")
    );
    assert_eq!(i["sip_messages"], "6");
}

/// The TCP capture: HEP3 on TCP 9061, several packets per segment, one
/// split over two segments, one over three.
fn tcp_capture() -> (Pcap, Vec<Vec<u8>>) {
    let msgs: Vec<Vec<u8>> = (1..=6)
        .map(|i| request("MESSAGE", &format!("hep-tcp-{i}"), i))
        .collect();
    let heps: Vec<Vec<u8>> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| hep3(&msg(m, [4, 4, 5, 5, 8, 8][i], 0, 6, i % 2 == 0)))
        .collect();
    let segs: Vec<Vec<u8>> = vec![
        // Segment 1: packets 1 and 2 whole, the first 40 bytes of 3.
        [&heps[0][..], &heps[1], &heps[2][..40]].concat(),
        // Segment 2: the rest of 3, packet 4 whole.
        [&heps[2][40..], &heps[3][..]].concat(),
        // Segments 3-5: packet 5 in three pieces (split inside the magic and
        // inside a chunk), the last one with packet 6.
        heps[4][..3].to_vec(),
        heps[4][3..100].to_vec(),
        [&heps[4][100..], &heps[5][..]].concat(),
    ];
    let mut p = Pcap::new(1);
    let frame = |p: &mut Pcap, seq: u32, ack: u32, flags: u8, payload: &[u8], up: bool| {
        let i = p.records.len() as u32;
        let (s, d, sp, dp) = if up {
            (AGENT, COLLECTOR, 33000, 9061)
        } else {
            (COLLECTOR, AGENT, 9061, 33000)
        };
        let t = tcp(sp, dp, seq, ack, flags, payload);
        p.push(T0 + i, 0, ethernet(&[], 0x0800, &ipv4(s, d, 6, None, &t)));
    };
    frame(&mut p, 1000, 0, SYN, &[], true);
    frame(&mut p, 5000, 1001, SYN | ACK, &[], false);
    frame(&mut p, 1001, 5001, ACK, &[], true);
    let mut seq = 1001;
    for s in &segs {
        frame(&mut p, seq, 5001, ACK | PSH, s, true);
        seq += s.len() as u32;
    }
    (p, msgs)
}

#[test]
fn hep_over_tcp_is_framed_across_and_within_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (p, _) = tcp_capture();
    let (inputs, messages, anomalies, _) = run(dir.path(), "tcp.pcap", &p);
    assert_eq!(
        rows_of(&messages, "call_id"),
        [
            "hep-tcp-1",
            "hep-tcp-2",
            "hep-tcp-3",
            "hep-tcp-4",
            "hep-tcp-5",
            "hep-tcp-6"
        ]
    );
    // Packets 1-2 in frame 4, 3 completed by frame 5 with 4, 5-6 in frame 8.
    assert_eq!(rows_of(&messages, "frame"), ["4", "4", "5", "5", "8", "8"]);
    assert!(
        rows_of(&messages, "transport")
            .iter()
            .all(|t| *t == "hep/tcp")
    );
    assert!(anomalies.rows.is_empty(), "{:?}", anomalies.rows);
    let i = &inputs.rows[0];
    // Every segment with payload carried SIP; the handshake did not.
    assert_eq!((&*i["sip_packets"], &*i["other_packets"]), ("5", "3"));
}

/// `(frame, Call-ID, CSeq number)` of every SIP message tshark finds in `f`.
fn tshark_messages(f: &Path, decode_as: &[&str]) -> BTreeMap<(u64, String, String), usize> {
    let native = Command::new("tshark")
        .args(["-G", "protocols"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.ends_with("\thep"))
        })
        .unwrap_or(false);
    let mut cmd = Command::new("tshark");
    if !native {
        cmd.arg("-X").arg(format!(
            "lua_script:{}",
            root().join("tests/data/hep.lua").display()
        ));
    }
    cmd.arg("-r").arg(f);
    for d in decode_as {
        cmd.args(["-d", d]);
    }
    cmd.args([
        "-Y",
        "sip",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
    ]);
    cmd.args([
        "-e",
        "frame.number",
        "-e",
        "sip.Call-ID",
        "-e",
        "sip.CSeq.seq",
    ]);
    let o = cmd.output().expect("run tshark");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut set = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let frame: u64 = cols[0].parse().unwrap();
        let ids: Vec<&str> = cols[1].split('|').collect();
        let seqs: Vec<&str> = cols[2].split('|').collect();
        assert_eq!(ids.len(), seqs.len(), "{line}");
        for (id, seq) in ids.iter().zip(&seqs) {
            *set.entry((frame, id.to_string(), seq.to_string()))
                .or_default() += 1;
        }
    }
    set
}

fn ours(messages: &Csv) -> BTreeMap<(u64, String, String), usize> {
    let mut set = BTreeMap::new();
    for r in &messages.rows {
        let k = (
            r["frame"].parse().unwrap(),
            r["call_id"].clone(),
            r["cseq"].clone(),
        );
        *set.entry(k).or_default() += 1;
    }
    set
}

#[test]
fn hep_messages_equal_tsharks_over_udp_and_tcp() {
    if !tool("tshark") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, messages, _, f) = run(dir.path(), "udp.pcap", &udp_capture());
    let theirs = tshark_messages(&f, &["udp.port==9060,hep", "udp.port==9062,hep"]);
    assert_eq!(ours(&messages), theirs);
    assert_eq!(theirs.values().sum::<usize>(), 6);
    let (p, _) = tcp_capture();
    let (_, messages, _, f) = run(dir.path(), "tcp.pcap", &p);
    let theirs = tshark_messages(&f, &["tcp.port==9061,hep"]);
    assert_eq!(ours(&messages), theirs);
    assert_eq!(theirs.values().sum::<usize>(), 6);
}
