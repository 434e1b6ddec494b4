//! Every input the fuzzers (fuzz/, scripts/fuzz.sh) found to crash, hang or
//! exhaust memory, kept as a regression test: the input bytes (inline or in
//! tests/data/fuzz/) go through the same code as the fuzz target, and what
//! sipaudit makes of them is checked.

use sipaudit::anomaly::PacketAnomaly;
use sipaudit::capture::RawPacket;
use sipaudit::packet::{Datagram, Decoder, PacketCounts, Sink};

/// The link types of the `decode` fuzz target, picked by its first byte.
const LINKTYPES: [u32; 10] = [1, 101, 113, 276, 0, 108, 228, 229, 239, 12];

#[derive(Default)]
struct Seen {
    anomalies: Vec<(u64, &'static str)>,
    datagrams: u64,
}

impl Sink for Seen {
    fn datagram(&mut self, _: &Datagram<'_>) -> bool {
        self.datagrams += 1;
        false
    }
    fn anomaly(&mut self, frame: u64, kind: PacketAnomaly, _: String) {
        self.anomalies.push((frame, kind.id()));
    }
}

/// Decodes packets given as (link type, bytes), as the decoder of a file would.
fn decode(packets: &[(u32, &[u8])]) -> (PacketCounts, Seen) {
    let mut dec = Decoder::default();
    let mut seen = Seen::default();
    for (i, (linktype, data)) in packets.iter().enumerate() {
        let pkt = RawPacket {
            frame: i as u64 + 1,
            ts_ns: 1_700_000_000_000_000_000 + i as i64,
            linktype: *linktype,
            orig_len: data.len() as u32,
            data,
        };
        dec.decode(&pkt, &mut seen);
    }
    let counts = dec.finish(&mut seen);
    (counts, seen)
}

/// The `decode` target's input format: a link-type byte, then packets of a
/// time-step byte, a 16-bit length and the bytes.
fn decode_target_input(data: &[u8]) -> Vec<(u32, &[u8])> {
    let linktype = LINKTYPES[data[0] as usize % LINKTYPES.len()];
    let mut rest = &data[1..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = match rest {
            [_, a, b, ..] => u16::from_be_bytes([*a, *b]) as usize,
            _ => 0,
        };
        let body = &rest[3.min(rest.len())..];
        let n = len.min(body.len());
        out.push((linktype, &body[..n]));
        rest = &body[n..];
    }
    out
}

/// decode, crash-2bdb053e: etherparse 0.21's IPv6 extension-header iterator
/// read past its slice (an unchecked `get_unchecked`) when a lax parse had
/// stopped inside the extension headers; the decoder now walks them itself.
#[test]
fn decode_ipv6_extension_headers_cut_short() {
    let data = include_bytes!("data/fuzz/decode-ipv6-ext-overrun.bin");
    let packets = decode_target_input(data);
    let (counts, seen) = decode(&packets);
    assert_eq!(
        counts.sip + counts.other + counts.undecodable,
        packets.len() as u64
    );
    assert_eq!(counts.undecodable as usize, seen.anomalies.len());
    // The smallest such packet: raw IPv6 whose hop-by-hop header names a
    // destination-options header that is not there.
    let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 0, 64];
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    v6.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
    // It carries no transport header to read: other, as before the fix when
    // the iterator happened to stop.
    let (counts, seen) = decode(&[(229, &v6)]);
    assert_eq!(
        (counts.undecodable, counts.other, seen.datagrams),
        (0, 1, 0)
    );
    assert!(seen.anomalies.is_empty(), "{:?}", seen.anomalies);
    // The walk still finds a fragment header behind hop-by-hop options.
    let mut frag = v6[..40].to_vec();
    frag[4..6].copy_from_slice(&24u16.to_be_bytes());
    frag.extend_from_slice(&[44, 0, 1, 4, 0, 0, 0, 0]);
    frag.extend_from_slice(&[17, 0, 0, 1, 0, 0, 0, 7]); // offset 0, more, id 7
    frag.extend_from_slice(&[0x13, 0xc4, 0x13, 0xc4, 0, 16, 0, 0]);
    let (counts, seen) = decode(&[(229, &frag)]);
    assert_eq!(seen.anomalies, [(1, "defrag_incomplete")]);
    assert_eq!(counts.undecodable, 1);
}

/// The `capture` target's hang (a 27 KB mutated gzip pcapng spun for 20
/// minutes): an enhanced packet block whose captured length (7,753) is
/// larger than its own block length (1,100), followed by more of the file.
/// The parser waits for the rest of the packet, the buffer is full of the
/// blocks after it, and a refill brings nothing. The reader must stop with
/// an error naming the offset, not ask again forever. Built here in its
/// smallest form: one such block, then 1 MiB of padding blocks.
#[test]
fn capture_block_shorter_than_its_packet_is_an_error() {
    let le = |v: u32| v.to_le_bytes();
    let mut f = Vec::new();
    // Section header block: type, length 28, byte-order magic, v1.0, section length -1.
    for w in [
        0x0A0D_0D0Au32,
        28,
        0x1A2B_3C4D,
        0x0000_0001,
        0xFFFF_FFFF,
        0xFFFF_FFFF,
        28,
    ] {
        f.extend_from_slice(&le(w));
    }
    // Interface description block: Ethernet, snaplen 65535.
    for w in [1u32, 20, 1, 65535, 20] {
        f.extend_from_slice(&le(w));
    }
    let epb = f.len();
    // Enhanced packet block of 36 bytes that claims 1,000 captured bytes.
    for w in [6u32, 36, 0, 0, 0, 1000, 1000, 0xdead_beef, 36] {
        f.extend_from_slice(&le(w));
    }
    // Then 1 MiB of well-formed padding: custom blocks of 4 KiB.
    while f.len() < epb + (1 << 20) {
        f.extend_from_slice(&le(0x0000_0BAD));
        f.extend_from_slice(&le(4096));
        f.extend_from_slice(&le(32473)); // private enterprise number
        f.resize(f.len() + 4096 - 16, 0);
        f.extend_from_slice(&le(4096));
    }
    let dir = std::env::temp_dir().join(format!("sipaudit-fuzzreg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("short-epb.pcapng");
    std::fs::write(&path, &f).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.clone();
    std::thread::spawn(move || {
        let (info, err) = sipaudit::capture::read_capture(&p, |_| {});
        let _ = tx.send((info.packets, err.map(|e| e.to_string())));
    });
    let (packets, err) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the reader returns (it spun before the fix)");
    assert_eq!(packets, 0);
    let err = err.expect("an error");
    assert!(
        err.contains("short-epb.pcapng") && err.contains(&format!("offset {epb}")),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// fuzz/capture, 2026-12-04: a pcapng section header, then a block of type
/// 0x80000001 (process information) whose length field says 9. pcap-parser
/// 0.17 checks that length only against its own 4-byte header and then
/// computes `9 - 12`: a panic where overflow checks are on (the fuzz build,
/// `cargo test` without `--release`), a wrapped length where they are off.
/// The reader now refuses the length before the parser sees it.
#[test]
fn capture_block_length_below_twelve_is_refused_before_parsing() {
    const CRASHER: [u8; 91] = [
        0x0a, 0x0d, 0x0d, 0x0a, 0x48, 0x00, 0x00, 0x00, 0x4d, 0x3c, 0x2b, 0x1a, 0x01, 0x00, 0x00,
        0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03, 0x00, 0x16, 0x00, 0x6f, 0x69,
        0x6e, 0x75, 0x78, 0x20, 0x33, 0x2e, 0x33, 0x2e, 0x30, 0x2d, 0x35, 0x37, 0x2d, 0x67, 0x65,
        0x6e, 0x65, 0x72, 0x69, 0x63, 0x00, 0x00, 0x04, 0x00, 0x08, 0x00, 0x6d, 0x65, 0x72, 0x67,
        0x65, 0x63, 0x80, 0x00, 0xff, 0xff, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
        0x80, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x14, 0x00, 0x00, 0xa0, 0x01, 0x00,
        0x00,
    ];
    let dir = std::env::temp_dir().join(format!("sipaudit-fuzzreg-pib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pib-length-9.pcapng");
    std::fs::write(&path, CRASHER).unwrap();
    let (info, err) = sipaudit::capture::read_capture(&path, |_| {});
    assert_eq!(info.packets, 0);
    let err = err.expect("an error").to_string();
    assert!(
        err.contains("pib-length-9.pcapng")
            && err.contains("byte offset 72")
            && err.contains("invalid block length 9"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// fuzz/pipeline, 2026-12-04: a pcapng file (a public capture, mutated)
/// whose third REGISTER has a timestamp of 2^64 - 1 microseconds. It was
/// kept as i64::MAX ns (the year 2262), and the tracker's `start + W0`
/// overflowed: a panic where overflow checks are on, a timer in 1677
/// where they are off. Capture times are now clamped to 2^62 - 1 ns (the
/// year 2116, `capture::ts::MAX_TS_NS`), which leaves room for every
/// window.
#[test]
fn a_pcapng_time_at_the_end_of_i64_is_clamped_before_tracking() {
    let input = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz/pipeline-pcapng-time-max.pcapng");
    let dir = std::env::temp_dir().join(format!("sipaudit-fuzzreg-ts-{}", std::process::id()));
    let cfg = sipaudit::pipeline::Config {
        inputs: vec![input],
        out_dir: dir.clone(),
        jobs: Some(1),
        messages: true,
        ..Default::default()
    };
    let summary = sipaudit::pipeline::run(&cfg).expect("the run completes");
    assert_eq!(summary.sessions, 3);
    let sessions = std::fs::read_to_string(dir.join("sessions.csv")).unwrap();
    let starts: Vec<&str> = sessions
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    assert_eq!(
        starts,
        [
            "2022-02-22T07:46:35.292160Z",
            "2022-02-22T07:51:35.444452Z",
            "2116-02-20T23:53:38.427387Z"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
