//! Capture formats and link/network layers, on captures built in the test:
//! every pcap magic and byte order, pcapng sections/interfaces/resolutions,
//! gzip and zstd, VLAN/QinQ, SLL/SLL2, NULL, IPv6 extension headers, IPv4
//! and IPv6 fragment reassembly, truncation.

mod common;

use std::io::Write;
use std::path::Path;

use common::build::*;
use sipaudit::capture::{Compression, Format, read_capture};
use sipaudit::packet::collect_sip_payloads;
use sipaudit::pipeline::{Config, run};

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

fn eth_sip(call_id: &str) -> Vec<u8> {
    ethernet(
        &[],
        0x0800,
        &ipv4(A, B, 17, None, &udp(5060, 5060, &sip_options(call_id))),
    )
}

/// (frame, ts_ns, linktype) of every packet, and the error if any.
fn packets(
    path: &Path,
) -> (
    Vec<(u64, i64, u32)>,
    Option<String>,
    sipaudit::capture::CaptureInfo,
) {
    let mut v = Vec::new();
    let (info, err) = read_capture(path, |p| v.push((p.frame, p.ts_ns, p.linktype)));
    (v, err.map(|e| e.to_string()), info)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn call_ids(path: &Path) -> Vec<(u64, String)> {
    collect_sip_payloads(path)
        .unwrap()
        .into_iter()
        .map(|(f, p)| {
            let m = sipaudit::sip::parse_message(&p, sipaudit::sip::Framing::Datagram).unwrap();
            (
                f,
                String::from_utf8_lossy(m.call_id().unwrap()).into_owned(),
            )
        })
        .collect()
}

#[test]
fn pcap_every_magic_and_byte_order() {
    let dir = tempfile::tempdir().unwrap();
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let mut p = Pcap::new(1);
            p.big_endian = big_endian;
            p.nanos = nanos;
            let frac = if nanos { 123_456_789 } else { 123_456 };
            p.push(1_795_503_516, frac, eth_sip("c1"));
            p.push(1_795_503_517, 0, eth_sip("c2"));
            let f = write(dir.path(), "x.pcap", &p.bytes());
            let (pk, err, info) = packets(&f);
            assert_eq!(err, None);
            assert_eq!(info.format, Some(Format::Pcap));
            let want_ns = 1_795_503_516_000_000_000 + if nanos { 123_456_789 } else { 123_456_000 };
            assert_eq!(
                pk,
                vec![(1, want_ns, 1), (2, 1_795_503_517_000_000_000, 1)],
                "be={big_endian} ns={nanos}"
            );
            assert_eq!(call_ids(&f), vec![(1, "c1".into()), (2, "c2".into())]);
        }
    }
}

#[test]
fn pcapng_sections_interfaces_and_resolutions() {
    let dir = tempfile::tempdir().unwrap();
    let raw = ipv4(A, B, 17, None, &udp(5060, 5060, &sip_options("raw")));
    let mut ng = PcapNg::new(false);
    ng.section()
        .interface(1, None, None) // if 0: Ethernet, microseconds
        .interface(101, Some(9), Some(100)) // if 1: raw IP, nanoseconds, +100 s
        .epb(0, 1_500_000, &eth_sip("s1-eth"))
        .epb(1, 2_000_000_007, &raw)
        .spb(&eth_sip("s1-spb"));
    // A second section, big-endian, whose interface 0 is raw IP at 2^-20 s.
    ng.big_endian = true;
    ng.section()
        .interface(101, Some(0x94), None)
        .epb(0, 3 << 19, &raw);
    let f = write(dir.path(), "x.pcapng", &ng.out);
    let (pk, err, info) = packets(&f);
    assert_eq!(err, None);
    assert_eq!(info.format, Some(Format::PcapNg));
    assert_eq!(
        pk,
        vec![
            (1, 1_500_000_000, 1),
            (2, 102_000_000_007, 101),
            (3, 0, 1), // SPB: interface 0, no timestamp
            (4, 1_500_000_000, 101),
        ]
    );
    assert_eq!(
        info.link_types.iter().copied().collect::<Vec<_>>(),
        vec![1, 101]
    );
    let ids: Vec<String> = call_ids(&f).into_iter().map(|x| x.1).collect();
    assert_eq!(ids, ["s1-eth", "raw", "s1-spb", "raw"]);
}

#[test]
fn gzip_and_zstd_are_detected_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Pcap::new(1);
    for i in 0..50 {
        p.push(1000 + i, 0, eth_sip(&format!("c{i}")));
    }
    let plain = p.bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    // Names that lie about the content.
    let fp = write(dir.path(), "a.gz", &plain);
    let fg = write(dir.path(), "b.pcap", &gz);
    let fz = write(dir.path(), "c.pcapng", &zst);
    let (base, e0, i0) = packets(&fp);
    assert_eq!((e0, i0.compression), (None, Compression::None));
    for (f, c) in [(fg, Compression::Gzip), (fz, Compression::Zstd)] {
        let (pk, err, info) = packets(&f);
        assert_eq!(err, None);
        assert_eq!(info.compression, c);
        assert_eq!(info.format, Some(Format::Pcap));
        assert_eq!(pk, base);
        assert_eq!(call_ids(&f).len(), 50);
    }
}

#[test]
fn link_layers_vlan_qinq_sll_sll2_null_and_ipv6_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let l3 = ipv4(A, B, 17, None, &udp(5062, 5070, &sip_options("x")));
    let src6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let dst6 = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let v6 = ipv6(
        src6,
        dst6,
        17,
        None,
        true,
        &udp(5060, 5060, &sip_options("v6")),
    );
    let cases: Vec<(u32, Vec<u8>)> = vec![
        (1, ethernet(&[(0x8100, 10)], 0x0800, &l3)),
        (1, ethernet(&[(0x88a8, 100), (0x8100, 10)], 0x0800, &l3)),
        (1, ethernet(&[(0x8100, 100), (0x8100, 10)], 0x0800, &l3)),
        (113, sll(0x0800, &l3)),
        (276, sll2(0x0800, &l3)),
        (0, null(false, &l3)),
        (0, null(true, &l3)),
        (101, v6.clone()),
        (1, ethernet(&[], 0x86dd, &v6)),
    ];
    for (i, (lt, data)) in cases.into_iter().enumerate() {
        let mut p = Pcap::new(lt);
        p.push(1, 0, data);
        let f = write(dir.path(), &format!("l{i}.pcap"), &p.bytes());
        assert_eq!(call_ids(&f).len(), 1, "case {i} (linktype {lt})");
    }
}

fn run_one(dir: &Path, f: &Path) -> (common::Csv, common::Csv, common::Csv) {
    let out = dir.join("out");
    let cfg = Config {
        inputs: vec![f.to_path_buf()],
        out_dir: out.clone(),
        jobs: Some(1),
        messages: true,
        parquet: false,
        progress: None,
        policy: Default::default(),
        html: None,
        pcap_dir: None,
        report_dir: None,
        partition_log: None,
        routed: false,
        table: 0,
        memory: None,
    };
    run(&cfg).unwrap();
    (
        common::read_csv(&out.join("inputs.csv")),
        common::read_csv(&out.join("messages.csv")),
        common::read_csv(&out.join("anomalies.csv")),
    )
}

#[test]
fn ipv4_fragments_out_of_order_are_reassembled() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = sip_options("frag4");
    // Pad the message with a long header so it needs three fragments.
    let pad = format!("X-Pad: {}\r\n", "p".repeat(2500));
    let at = big.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    big.splice(at..at, pad.into_bytes());
    let dgram = udp(5060, 5060, &big);
    let chunks: Vec<&[u8]> = dgram.chunks(1232).collect(); // multiples of 8
    assert_eq!(chunks.len(), 3);
    let frag = |i: usize| {
        let off = (i * 1232 / 8) as u16;
        ethernet(
            &[],
            0x0800,
            &ipv4(A, B, 17, Some((77, off, i + 1 < chunks.len())), chunks[i]),
        )
    };
    let mut p = Pcap::new(1);
    p.push(1, 0, frag(2));
    p.push(2, 0, frag(0));
    p.push(3, 0, eth_sip("other"));
    p.push(4, 0, frag(1));
    let f = write(dir.path(), "f.pcap", &p.bytes());
    let (inputs, msgs, anomalies) = run_one(dir.path(), &f);
    let r = &inputs.rows[0];
    assert_eq!(
        (
            r["packets"].as_str(),
            r["sip_packets"].as_str(),
            r["sip_messages"].as_str()
        ),
        ("4", "4", "2")
    );
    let m = msgs
        .rows
        .iter()
        .find(|m| m["call_id"] == "frag4")
        .expect("reassembled message");
    assert_eq!(m["frame"], "4", "the frame that completed it");
    assert!(anomalies.rows.is_empty());
}

#[test]
fn ipv6_fragments_are_reassembled_and_lone_fragments_accounted() {
    let dir = tempfile::tempdir().unwrap();
    let s = [0xfd, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let d = [0xfd, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let dgram = udp(5060, 5060, &sip_options("frag6"));
    let (a, b) = dgram.split_at(64);
    let mut p = Pcap::new(101);
    p.push(1, 0, ipv6(s, d, 17, Some((9, 0, true)), false, a));
    p.push(2, 0, ipv6(s, d, 17, Some((9, 8, false)), false, b));
    // A first fragment whose rest never comes.
    p.push(3, 0, ipv6(s, d, 17, Some((10, 0, true)), false, a));
    let f = write(dir.path(), "f6.pcap", &p.bytes());
    let (inputs, msgs, anomalies) = run_one(dir.path(), &f);
    let r = &inputs.rows[0];
    assert_eq!(
        (
            r["packets"].as_str(),
            r["sip_packets"].as_str(),
            r["undecodable_packets"].as_str()
        ),
        ("3", "2", "1")
    );
    assert_eq!(msgs.rows.len(), 1);
    assert_eq!(msgs.rows[0]["frame"], "2");
    assert_eq!(msgs.rows[0]["src"], "[fd00:9900::1]:5060");
    assert_eq!(anomalies.rows.len(), 1);
    assert_eq!(anomalies.rows[0]["kind"], "defrag_incomplete");
    assert_eq!(anomalies.rows[0]["frame"], "3");
}

#[test]
fn truncated_last_record_keeps_every_packet_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Pcap::new(1);
    for i in 0..3 {
        p.push(i, 0, eth_sip(&format!("t{i}")));
    }
    let bytes = p.bytes();
    let f = write(dir.path(), "t.pcap", &bytes[..bytes.len() - 5]);
    let (pk, err, _) = packets(&f);
    assert_eq!(pk.len(), 2);
    let err = err.expect("an error");
    let rec3 = 24 + 2 * (16 + eth_sip("t0").len());
    assert!(
        err.contains(&format!(
            "truncated record at byte offset {rec3} (after frame 2)"
        )),
        "{err}"
    );
    // Also inside gzip: the offset is in the decompressed stream.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes[..bytes.len() - 5]).unwrap();
    let f = write(dir.path(), "t.pcap.gz", &gz.finish().unwrap());
    let (pk, err, _) = packets(&f);
    assert_eq!(pk.len(), 2);
    assert!(err.unwrap().contains("decompressed"));
}

#[test]
fn pcapng_huge_block_length_is_an_error_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let mut ng = PcapNg::new(false);
    ng.section()
        .interface(1, None, None)
        .epb(0, 1, &eth_sip("ok"));
    let good_len = ng.out.len();
    ng.epb(0, 2, &eth_sip("bad"));
    // Claim a 1 GB block.
    ng.out[good_len + 4..good_len + 8].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let f = write(dir.path(), "h.pcapng", &ng.out);
    let (pk, err, _) = packets(&f);
    assert_eq!(pk.len(), 1);
    let err = err.unwrap();
    assert!(
        err.contains(&format!(
            "implausible record length 1073741824 at byte offset {good_len}"
        )),
        "{err}"
    );
}

#[test]
fn stun_keepalives_and_rtp_are_other_packets() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Pcap::new(1);
    let mut stun = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    for payload in [
        b"\r\n\r\n".to_vec(),
        b"\r\n".to_vec(),
        stun,
        vec![0x80, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    ] {
        p.push(
            1,
            0,
            ethernet(
                &[],
                0x0800,
                &ipv4(A, B, 17, None, &udp(5060, 5060, &payload)),
            ),
        );
    }
    let f = write(dir.path(), "o.pcap", &p.bytes());
    let (inputs, msgs, _) = run_one(dir.path(), &f);
    assert_eq!(inputs.rows[0]["other_packets"], "4");
    assert_eq!(msgs.rows.len(), 0);
}

/// GTP-U header (G-PDU, no optional fields) around an inner IP packet.
fn gtp(inner: &[u8]) -> Vec<u8> {
    let mut g = vec![0x30, 0xff];
    g.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    g.extend_from_slice(&[0, 0, 0, 7]);
    g.extend_from_slice(inner);
    g
}

#[test]
fn inner_fragments_inside_reassembled_outer_fragments_are_all_accounted() {
    // Regression (open5gs/ipsec_to_ipsec_call.pcapng frame 18): an outer
    // IPv4 datagram, itself fragmented, carries GTP-U with the first fragment
    // of an inner datagram; the inner second fragment comes in another packet.
    let dir = tempfile::tempdir().unwrap();
    let ue = [192, 168, 101, 2];
    let pcscf = [10, 4, 128, 21];
    let mut big = sip_options("nested");
    let pad = format!("X-Pad: {}\r\n", "q".repeat(1600));
    let at = big.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 2;
    big.splice(at..at, pad.into_bytes());
    let inner_dgram = udp(5060, 5060, &big);
    let (i1, i2) = inner_dgram.split_at(1480);
    let inner_f1 = ipv4(ue, pcscf, 17, Some((0x55, 0, true)), i1);
    let inner_f2 = ipv4(ue, pcscf, 17, Some((0x55, 185, false)), i2);
    // Outer packet 1 (GTP + inner fragment 1) is itself fragmented in two.
    let outer1 = udp(2152, 2152, &gtp(&inner_f1));
    let (o1a, o1b) = outer1.split_at(1000);
    let mut p = Pcap::new(1);
    p.push(
        1,
        0,
        ethernet(&[], 0x0800, &ipv4(A, B, 17, Some((9, 0, true)), o1a)),
    );
    p.push(
        2,
        0,
        ethernet(&[], 0x0800, &ipv4(A, B, 17, Some((9, 125, false)), o1b)),
    );
    p.push(
        3,
        0,
        ethernet(
            &[],
            0x0800,
            &ipv4(A, B, 17, None, &udp(2152, 2152, &gtp(&inner_f2))),
        ),
    );
    let f = write(dir.path(), "nested.pcap", &p.bytes());
    let (inputs, msgs, anomalies) = run_one(dir.path(), &f);
    let r = &inputs.rows[0];
    assert_eq!(
        (r["packets"].as_str(), r["sip_packets"].as_str()),
        ("3", "3"),
        "{anomalies:?}",
        anomalies = anomalies.rows
    );
    assert_eq!(msgs.rows.len(), 1);
    assert_eq!(msgs.rows[0]["transport"], "gtp/udp");
    assert_eq!(msgs.rows[0]["frame"], "3");
}
