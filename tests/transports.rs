//! Transports beyond UDP on real captures: TLS is reported once per
//! connection and counted as other packets.

mod common;

use common::needs::corpus;
use common::{analyze, read_csv};

#[test]
fn tls_connections_are_reported_once_each() {
    let Some(c) = corpus() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f = c.join("wireshark-wiki/sip-tls-1.3-and-rtcp.pcap");
    let o = analyze(&["-o", dir.path().to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let anomalies = read_csv(&dir.path().join("anomalies.csv"));
    let tls: Vec<_> = anomalies
        .rows
        .iter()
        .filter(|r| r["kind"] == "tls_encrypted")
        .collect();
    // The SIP-over-TLS connection to 5061 and a second TLS connection.
    assert_eq!(tls.len(), 2, "{:?}", anomalies.rows);
    assert!(tls[0]["detail"].contains(":5061"));
    let inputs = read_csv(&dir.path().join("inputs.csv"));
    assert_eq!(inputs.rows[0]["sip_messages"], "0");
    assert_eq!(inputs.rows[0]["other_packets"], inputs.rows[0]["packets"]);
}

use common::build::*;

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];

fn eth_tcp(from_client: bool, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if from_client {
        (C, S, 40000, 5060)
    } else {
        (S, C, 5060, 40000)
    };
    ethernet(
        &[],
        0x0800,
        &ipv4(src, dst, 6, None, &tcp(sp, dp, seq, ack, flags, payload)),
    )
}

fn run(dir: &std::path::Path, p: &Pcap) -> (common::Csv, common::Csv, common::Csv) {
    let f = dir.join("t.pcap");
    std::fs::write(&f, p.bytes()).unwrap();
    let out = dir.join("out");
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
    )
}

#[test]
fn tcp_end_to_end_frames_and_accounting() {
    let dir = tempfile::tempdir().unwrap();
    let m1 = sip_options("tcp-1");
    let m2 = sip_options("tcp-2");
    let m3 = sip_options("tcp-3");
    let isn = 1000u32;
    let mut p = Pcap::new(1);
    p.push(1, 0, eth_tcp(true, isn, 0, SYN, b""));
    p.push(1, 1, eth_tcp(false, 5000, isn + 1, SYN | ACK, b""));
    p.push(1, 2, eth_tcp(true, isn + 1, 5001, ACK, b""));
    // Two messages in one segment.
    let both = [m1.clone(), m2.clone()].concat();
    p.push(2, 0, eth_tcp(true, isn + 1, 5001, ACK | PSH, &both));
    // The third message split over two segments, the second half first.
    let base = isn + 1 + both.len() as u32;
    let (h1, h2) = m3.split_at(40);
    p.push(3, 0, eth_tcp(true, base + 40, 5001, ACK | PSH, h2));
    p.push(3, 1, eth_tcp(true, base, 5001, ACK | PSH, h1));
    // A retransmission of the first half: nothing new.
    p.push(3, 2, eth_tcp(true, base, 5001, ACK | PSH, h1));
    p.push(4, 0, eth_tcp(false, 5001, base + m3.len() as u32, ACK, b""));
    let (inputs, msgs, anomalies) = run(dir.path(), &p);
    let ids: Vec<(&str, &str, &str)> = msgs
        .rows
        .iter()
        .map(|r| {
            (
                r["call_id"].as_str(),
                r["frame"].as_str(),
                r["transport"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("tcp-1", "4", "tcp"),
            ("tcp-2", "4", "tcp"),
            ("tcp-3", "6", "tcp")
        ]
    );
    let r = &inputs.rows[0];
    // Frames 4, 5, 6 carried SIP; SYN, SYN-ACK, ACK, the retransmission and the last ACK did not.
    assert_eq!(
        (
            r["packets"].as_str(),
            r["sip_packets"].as_str(),
            r["other_packets"].as_str()
        ),
        ("8", "3", "5")
    );
    assert!(anomalies.rows.is_empty(), "{:?}", anomalies.rows);
}

#[test]
fn tcp_capture_starting_mid_stream_resynchronises() {
    let dir = tempfile::tempdir().unwrap();
    let m = sip_options("mid");
    let tail = &m[30..]; // the end of a message whose start was not captured
    let mut p = Pcap::new(1);
    p.push(
        1,
        0,
        eth_tcp(
            true,
            7000,
            1,
            ACK | PSH,
            &[tail, &sip_options("whole")].concat(),
        ),
    );
    let (_, msgs, anomalies) = run(dir.path(), &p);
    assert_eq!(msgs.rows.len(), 1);
    assert_eq!(msgs.rows[0]["call_id"], "whole");
    let resync: Vec<_> = anomalies
        .rows
        .iter()
        .filter(|r| r["kind"] == "tcp_resync")
        .collect();
    assert_eq!(resync.len(), 1, "{:?}", anomalies.rows);
    assert!(
        resync[0]["detail"].contains(&format!("{} bytes", tail.len())),
        "{}",
        resync[0]["detail"]
    );
}

/// A WebSocket frame (FIN set) with the given opcode, masked when `mask` is given.
fn ws_frame(opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80 | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        v.push(m | payload.len() as u8);
    } else {
        v.push(m | 126);
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    match mask {
        Some(k) => {
            v.extend_from_slice(&k);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

#[test]
fn sip_over_websocket_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let upgrade = b"GET / HTTP/1.1\r\nHost: sip-ws.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let accept =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n";
    let req = ws_frame(1, Some([0x37, 0xfa, 0x21, 0x3d]), &sip_options("ws-1"));
    let ok = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK-ws-1\r\n\
From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b2\r\nCall-ID: ws-1\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let resp = ws_frame(1, None, ok);
    let (c, s) = (100u32, 900u32);
    let mut p = Pcap::new(1);
    p.push(1, 0, eth_tcp(true, c, 0, SYN, b""));
    p.push(1, 1, eth_tcp(false, s, c + 1, SYN | ACK, b""));
    p.push(1, 2, eth_tcp(true, c + 1, s + 1, ACK | PSH, upgrade));
    let c2 = c + 1 + upgrade.len() as u32;
    p.push(1, 3, eth_tcp(false, s + 1, c2, ACK | PSH, accept));
    let s2 = s + 1 + accept.len() as u32;
    // The masked request frame in two segments.
    let (r1, r2) = req.split_at(50);
    p.push(2, 0, eth_tcp(true, c2, s2, ACK | PSH, r1));
    p.push(2, 1, eth_tcp(true, c2 + 50, s2, ACK | PSH, r2));
    p.push(
        2,
        2,
        eth_tcp(false, s2, c2 + req.len() as u32, ACK | PSH, &resp),
    );
    let (inputs, msgs, anomalies) = run(dir.path(), &p);
    let got: Vec<(&str, &str, &str, &str)> = msgs
        .rows
        .iter()
        .map(|r| {
            (
                r["frame"].as_str(),
                r["transport"].as_str(),
                r["kind"].as_str(),
                r["call_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("6", "ws", "request", "ws-1"),
            ("7", "ws", "response", "ws-1")
        ]
    );
    assert!(anomalies.rows.is_empty(), "{:?}", anomalies.rows);
    let r = &inputs.rows[0];
    // Frames 5, 6 (request) and 7 (response) carried SIP; the handshake packets did not.
    assert_eq!(
        (r["sip_packets"].as_str(), r["other_packets"].as_str()),
        ("3", "4")
    );
}

/// An SCTP packet (common header, checksum left 0) with the given chunks.
fn sctp_packet(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&5060u16.to_be_bytes());
    v.extend_from_slice(&5060u16.to_be_bytes());
    v.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    for c in chunks {
        v.extend_from_slice(c);
    }
    v
}

/// A DATA chunk (RFC 9260 §3.3.1): B/E flags, TSN, stream 0, SSN, PPID 0.
fn data_chunk(begin: bool, end: bool, tsn: u32, ssn: u16, data: &[u8]) -> Vec<u8> {
    let flags = (begin as u8) << 1 | end as u8;
    let len = 16 + data.len();
    let mut v = vec![0, flags];
    v.extend_from_slice(&(len as u16).to_be_bytes());
    v.extend_from_slice(&tsn.to_be_bytes());
    v.extend_from_slice(&0u16.to_be_bytes());
    v.extend_from_slice(&ssn.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(data);
    v.extend(std::iter::repeat_n(0, (4 - len % 4) % 4));
    v
}

#[test]
fn sip_over_sctp_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let eth =
        |chunks: &[Vec<u8>]| ethernet(&[], 0x0800, &ipv4(C, S, 132, None, &sctp_packet(chunks)));
    let a = sip_options("sctp-a");
    let b = sip_options("sctp-b");
    let big = sip_options("sctp-frag");
    let (f1, f2) = big.split_at(100);
    let mut p = Pcap::new(1);
    // Two messages bundled in one packet.
    p.push(
        1,
        0,
        eth(&[
            data_chunk(true, true, 1, 0, &a),
            data_chunk(true, true, 2, 1, &b),
        ]),
    );
    // One message fragmented over two packets, the second fragment first.
    p.push(2, 0, eth(&[data_chunk(false, true, 4, 2, f2)]));
    p.push(2, 1, eth(&[data_chunk(true, false, 3, 2, f1)]));
    let (inputs, msgs, anomalies) = run(dir.path(), &p);
    let got: Vec<(&str, &str, &str)> = msgs
        .rows
        .iter()
        .map(|r| {
            (
                r["frame"].as_str(),
                r["transport"].as_str(),
                r["call_id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("1", "sctp", "sctp-a"),
            ("1", "sctp", "sctp-b"),
            ("3", "sctp", "sctp-frag")
        ]
    );
    assert!(anomalies.rows.is_empty(), "{:?}", anomalies.rows);
    let r = &inputs.rows[0];
    assert_eq!(
        (r["packets"].as_str(), r["sip_packets"].as_str()),
        ("3", "3")
    );
}
