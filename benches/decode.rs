//! Packet decoding throughput: `capture::read_capture` + `packet::Decoder`
//! with a trivial `Sink` (it only asks `sip::is_sip_start`, as the real sink
//! does first, and counts), in packets per second.
//!
//! The capture is built in memory, then written to a temporary file (the
//! reader takes a path): every SIP message of the four samples
//! `scripts/bench.sh` builds its capture from (`ims-precondition-call`,
//! `relaxed-retry-420`, `sll2-any`, `fragmented-invite`) over
//! Ethernet/IPv4/UDP (IPv4 fragments above the 1500-byte MTU), four RTP
//! packets (PCMU, 20 ms) after each, so SIP is about a fifth of the packets
//! as in `scripts/bench.sh`, repeated with new addresses to 20,000 packets
//! (≈ 5 MB). Three benchmarks:
//! - `read`: the capture reader alone (pcap records, no decoding),
//! - `read+decode`: link/IP/UDP decoding, defrag, tunnel checks, the sink,
//! - `read+decode/gzip`: the same from a gzip copy.
//!
//! `SIPAUDIT_BENCH_CAPTURE=path` benchmarks that file instead, as group
//! `decode_file` (for example `target/bench/capture-s1.pcap` from
//! `scripts/bench.sh`; 10 samples, no gzip variant).
//!
//! Run: `cargo bench --bench decode` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sipaudit::anomaly::PacketAnomaly;
use sipaudit::capture::read_capture;
use sipaudit::packet::{Datagram, Decoder, Sink};

const PACKETS: usize = 20_000;
const MTU: usize = 1500;

/// The trivial sink: SIP or not by the start line, and counters.
#[derive(Default)]
struct Count {
    datagrams: u64,
    sip: u64,
    payload_bytes: u64,
    anomalies: u64,
}

impl Sink for Count {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        self.datagrams += 1;
        self.payload_bytes += d.payload.len() as u64;
        let sip = sipaudit::sip::is_sip_start(d.payload);
        self.sip += u64::from(sip);
        sip
    }
    fn anomaly(&mut self, _: u64, _: PacketAnomaly, _: String) {
        self.anomalies += 1;
    }
}

fn ip_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet/IPv4/UDP frames of one datagram (IPv4 fragments above the MTU).
fn udp_frames(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), id: u16, payload: &[u8]) -> Vec<Vec<u8>> {
    let mut udp = Vec::with_capacity(8 + payload.len());
    udp.extend_from_slice(&src.1.to_be_bytes());
    udp.extend_from_slice(&dst.1.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let step = (MTU - 20) / 8 * 8;
    let mut frames = Vec::new();
    let mut off = 0;
    while off < udp.len() {
        let end = if udp.len() + 20 <= MTU {
            udp.len()
        } else {
            (off + step).min(udp.len())
        };
        let frag = if end < udp.len() { 0x2000 } else { 0 } | (off / 8) as u16;
        let frag = if udp.len() + 20 <= MTU { 0x4000 } else { frag };
        let mut f = Vec::with_capacity(34 + end - off);
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&((20 + end - off) as u16).to_be_bytes());
        h[4..6].copy_from_slice(&id.to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[8] = 64;
        h[9] = 17;
        h[12..16].copy_from_slice(&src.0.octets());
        h[16..20].copy_from_slice(&dst.0.octets());
        let ck = ip_checksum(&h);
        h[10..12].copy_from_slice(&ck.to_be_bytes());
        f.extend_from_slice(&h);
        f.extend_from_slice(&udp[off..end]);
        frames.push(f);
        off = end;
    }
    frames
}

/// The in-memory capture as a classic pcap (microsecond timestamps).
fn build_capture() -> (Vec<u8>, usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A fixed list, so samples added later do not change the mix.
    let cases = [
        "ims-precondition-call",
        "relaxed-retry-420",
        "sll2-any",
        "fragmented-invite",
    ]
    .map(|c| root.join("samples").join(c).join("capture.pcap"));
    let mut sip: Vec<Vec<u8>> = Vec::new();
    for c in &cases {
        let found = sipaudit::packet::collect_sip_payloads(c).expect("sample capture");
        sip.extend(found.into_iter().map(|(_, p)| p));
    }
    assert!(!sip.is_empty(), "no SIP message in samples/*/capture.pcap");

    let mut pcap = Vec::with_capacity(6 << 20);
    pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&262_144u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes());
    let mut n = 0usize;
    let mut ts_us: u64 = 1_767_225_600_000_000;
    let mut id: u16 = 0;
    let record = |pcap: &mut Vec<u8>, frame: &[u8], ts_us: u64| {
        pcap.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        pcap.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        pcap.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        pcap.extend_from_slice(frame);
    };
    let rtp_payload: Vec<u8> = (0..160u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    'outer: for round in 0u32.. {
        for (i, msg) in sip.iter().enumerate() {
            let k = round.wrapping_mul(7919).wrapping_add(i as u32);
            let ue = Ipv4Addr::new(10, 45, (k >> 8) as u8, k as u8);
            let pcscf = Ipv4Addr::new(10, 10, 0, 1 + (k % 4) as u8);
            id = id.wrapping_add(1);
            for f in udp_frames((ue, 5061), (pcscf, 5060), id, msg) {
                record(&mut pcap, &f, ts_us);
                ts_us += 50;
                n += 1;
            }
            for r in 0..4u16 {
                let mut rtp = vec![0x80, 0x00];
                rtp.extend_from_slice(&(k as u16).wrapping_add(r).to_be_bytes());
                rtp.extend_from_slice(&(k.wrapping_mul(160) + u32::from(r) * 160).to_be_bytes());
                rtp.extend_from_slice(&k.to_be_bytes());
                rtp.extend_from_slice(&rtp_payload);
                id = id.wrapping_add(1);
                let (a, b) = if r % 2 == 0 {
                    ((ue, 40_000), (pcscf, 50_000))
                } else {
                    ((pcscf, 50_000), (ue, 40_000))
                };
                for f in udp_frames(a, b, id, &rtp) {
                    record(&mut pcap, &f, ts_us);
                    ts_us += 50;
                    n += 1;
                }
            }
            if n >= PACKETS {
                break 'outer;
            }
        }
    }
    (pcap, n)
}

fn decode_file(path: &Path) -> (u64, Count) {
    let mut dec = Decoder::default();
    let mut sink = Count::default();
    let (info, err) = read_capture(path, |p| dec.decode(p, &mut sink));
    assert!(err.is_none(), "{}: {err:?}", path.display());
    let counts = dec.finish(&mut sink);
    black_box(counts);
    (info.packets, sink)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (plain, gz, packets, sample_size) = match std::env::var_os("SIPAUDIT_BENCH_CAPTURE") {
        Some(p) => {
            let p = PathBuf::from(p);
            let (n, _) = decode_file(&p);
            (p, None, n as usize, 10)
        }
        None => {
            let (bytes, n) = build_capture();
            let plain = dir.path().join("decode.pcap");
            std::fs::write(&plain, &bytes).expect("write capture");
            let gz = dir.path().join("decode.pcap.gz");
            let mut enc = flate2::write::GzEncoder::new(
                std::fs::File::create(&gz).expect("create gzip"),
                flate2::Compression::default(),
            );
            enc.write_all(&bytes).expect("gzip");
            enc.finish().expect("gzip");
            (plain, Some(gz), n, 50)
        }
    };
    // Sanity: every packet read, none undecodable, SIP found.
    let (n, sink) = decode_file(&plain);
    assert_eq!(n as usize, packets);
    assert_eq!(sink.anomalies, 0, "the bench capture decodes cleanly");
    assert!(sink.sip > 0);

    // A file of one's own gets its own group, so criterion never compares it
    // with the built-in capture's history.
    let group = if gz.is_none() {
        "decode_file"
    } else {
        "decode"
    };
    let mut g = c.benchmark_group(group);
    g.sample_size(sample_size);
    g.throughput(Throughput::Elements(packets as u64));
    g.bench_function("read", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            let (info, _) = read_capture(&plain, |p| bytes += p.data.len());
            black_box((info.packets, bytes))
        })
    });
    g.bench_function("read+decode", |b| {
        b.iter(|| black_box(decode_file(&plain).1.sip))
    });
    if let Some(gz) = &gz {
        g.bench_function("read+decode/gzip", |b| {
            b.iter(|| black_box(decode_file(gz).1.sip))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
