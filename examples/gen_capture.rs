//! Benchmark capture generator (used by `scripts/bench.sh`).
//!
//! Writes one reproducible classic pcap (Ethernet / IPv4, microsecond
//! timestamps) of many overlapping calls built from the SIP message texts of
//! the shipped samples (`samples/<case>/capture.pcap`, read with the
//! library's own decoder), with per-call Call-IDs, tags, branches, CSeq
//! numbers, phone numbers, addresses, SDP media ports and timing:
//!
//! | flow            | sample                  | share | transport                      |
//! |-----------------|-------------------------|-------|--------------------------------|
//! | IMS precondition| `ims-precondition-call` | 45 %  | UDP (8 % of them TCP)          |
//! | 420 + retry     | `relaxed-retry-420`     | 20 %  | UDP                            |
//! | plain call      | `sll2-any`              | 25 %  | UDP (8 % of them TCP)          |
//! | large INVITE    | `fragmented-invite`     | 10 %  | UDP, IPv4-fragmented (half TCP)|
//!
//! UDP calls get retransmissions (RFC 3261 timer A/G, T1 = 500 ms): the first
//! INVITE (6 % of calls), the final response to it (4 %), the BYE (1 %).
//! Between the ACK and the BYE each call has 0.15-0.55 s of RTP in both
//! directions (20 ms packets; PCMU 160 B or AMR-WB/EVS 34 B payloads), which
//! makes SIP about a fifth of all packets. TCP calls open a connection (SYN,
//! SYN-ACK, ACK), send each message as MSS-sized segments answered by a pure
//! ACK, and close it with FIN/ACK.
//!
//! Calls arrive as a Poisson process (120 calls/s of capture time) and are
//! generated until the file has at least `2 000 000 × scale` packets and
//! `500 MiB × scale` bytes. The same seed, scale and samples give the same
//! bytes. A `key=value` manifest (packets, sip_packets, sip_messages, ...) is
//! written beside it for the benchmark script.
//!
//! ```text
//! cargo run --release --example gen_capture -- --out F.pcap [--manifest F.txt]
//!     [--scale 1] [--seed 20261124] [--samples samples]
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use sipaudit::anomaly::PacketAnomaly;
use sipaudit::capture::read_capture;
use sipaudit::packet::{Datagram, Decoder, Sink};

const T1_NS: i64 = 500_000_000;
const MTU: usize = 1500;
const MSS: usize = 1448;
const CALLS_PER_S: f64 = 120.0;
/// 2026-01-01T00:00:00Z.
const EPOCH_NS: i64 = 1_767_225_600_000_000_000;

// ---------------------------------------------------------------- rng

/// SplitMix64: tiny, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(n);
        s
    }
}

// ---------------------------------------------------------------- templates

/// A variable part of a template message.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Var {
    CallId,
    Tag(usize),
    Branch(usize),
    UeAddr,
    PeerAddr,
    UeIp,
    PeerIp,
    SenderIp,
    Caller,
    Callee,
    /// An `icid-value` of P-Charging-Vector (per call, like the Call-ID).
    Icid(usize),
    /// A CSeq number of the template (the call adds its offset).
    CSeq(u32),
    /// `UDP` in `SIP/2.0/UDP`.
    ViaProto,
    /// `udp` in `;transport=udp`.
    TransportParam,
    /// The port of the sender's `m=audio` line.
    RtpPort,
    ContentLength,
}

#[derive(Clone, Debug)]
enum Piece {
    Lit(Vec<u8>),
    Var(Var),
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Request(String),
    /// Status code and CSeq method.
    Response(u16, String),
}

struct TMsg {
    rel_ns: i64,
    from_ue: bool,
    kind: Kind,
    head: Vec<Piece>,
    body: Vec<Piece>,
}

struct Flow {
    name: &'static str,
    msgs: Vec<TMsg>,
    n_tags: usize,
    n_icids: usize,
    n_branches: usize,
    /// RTP payload type and payload size.
    rtp_pt: u8,
    rtp_len: usize,
    rtp_clock_step: u32,
}

struct Grab(Vec<(i64, SocketAddr, SocketAddr, Vec<u8>)>);

impl Sink for Grab {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        let sip = sipaudit::sip::is_sip_start(d.payload);
        if sip {
            self.0
                .push((d.at.at.ts_ns, d.at.src, d.at.dst, d.payload.to_vec()));
        }
        sip
    }
    fn anomaly(&mut self, _: u64, _: PacketAnomaly, _: String) {}
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    memchr::memmem::find(h, n)
}

/// Splits every literal piece on `pat`, inserting `var` in its place.
fn split_on(pieces: Vec<Piece>, pat: &[u8], var: Var) -> Vec<Piece> {
    if pat.is_empty() {
        return pieces;
    }
    let mut out = Vec::with_capacity(pieces.len());
    for p in pieces {
        match p {
            Piece::Lit(mut s) => {
                while let Some(i) = find(&s, pat) {
                    if i > 0 {
                        out.push(Piece::Lit(s[..i].to_vec()));
                    }
                    out.push(Piece::Var(var));
                    s.drain(..i + pat.len());
                }
                if !s.is_empty() {
                    out.push(Piece::Lit(s));
                }
            }
            v => out.push(v),
        }
    }
    out
}

/// Values of `key` (`tag=`, `branch=`) in order of first appearance.
fn param_values(text: &[u8], key: &[u8], into: &mut Vec<Vec<u8>>) {
    let mut s = text;
    while let Some(i) = find(s, key) {
        let v = &s[i + key.len()..];
        let end = v
            .iter()
            .position(|c| b";>, \r\n\"".contains(c))
            .unwrap_or(v.len());
        let val = v[..end].to_vec();
        if !val.is_empty() && !into.contains(&val) {
            into.push(val);
        }
        s = &v[end..];
    }
}

fn header_value<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(c) = line.iter().position(|&c| c == b':') {
            if line[..c].trim_ascii().eq_ignore_ascii_case(name.as_bytes()) {
                return Some(line[c + 1..].trim_ascii());
            }
        }
    }
    None
}

/// Line pass: CSeq / RAck numbers, Content-Length, `m=audio` port.
fn line_pieces(text: &[u8], is_body: bool) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut lit = Vec::new();
    for line in text.split_inclusive(|&c| c == b'\n') {
        let lower = line.to_ascii_lowercase();
        let num_at = |skip: usize| -> Option<(usize, usize)> {
            // position and length of the first number at or after `skip`
            let s = line.iter().skip(skip).position(|c| c.is_ascii_digit())? + skip;
            let n = line[s..].iter().take_while(|c| c.is_ascii_digit()).count();
            Some((s, n))
        };
        let special = if is_body {
            if lower.starts_with(b"m=audio ") {
                num_at(8).map(|(s, n)| (s, n, Var::RtpPort))
            } else {
                None
            }
        } else if lower.starts_with(b"cseq:") {
            num_at(5).map(|(s, n)| {
                let v: u32 = std::str::from_utf8(&line[s..s + n])
                    .unwrap()
                    .parse()
                    .unwrap();
                (s, n, Var::CSeq(v))
            })
        } else if lower.starts_with(b"rack:") {
            // RAck: rseq cseq method
            num_at(5).and_then(|(s1, n1)| {
                num_at(s1 + n1).map(|(s, n)| {
                    let v: u32 = std::str::from_utf8(&line[s..s + n])
                        .unwrap()
                        .parse()
                        .unwrap();
                    (s, n, Var::CSeq(v))
                })
            })
        } else if lower.starts_with(b"content-length:") || lower.starts_with(b"l:") {
            let c = line.iter().position(|&c| c == b':').unwrap() + 1;
            let end = line.len()
                - line
                    .iter()
                    .rev()
                    .take_while(|c| c.is_ascii_whitespace())
                    .count();
            Some((c, end - c, Var::ContentLength))
        } else {
            None
        };
        match special {
            Some((s, n, v)) => {
                lit.extend_from_slice(&line[..s]);
                if v == Var::ContentLength {
                    lit.push(b' ');
                }
                out.push(Piece::Lit(std::mem::take(&mut lit)));
                out.push(Piece::Var(v));
                lit.extend_from_slice(&line[s + n..]);
            }
            None => lit.extend_from_slice(line),
        }
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    out
}

fn load_flow(path: &Path, name: &'static str) -> Flow {
    let mut dec = Decoder::default();
    let mut g = Grab(Vec::new());
    let (_, err) = read_capture(path, |p| dec.decode(p, &mut g));
    dec.finish(&mut g);
    if let Some(e) = err {
        panic!("{}: {e}", path.display());
    }
    assert!(!g.0.is_empty(), "{}: no SIP message", path.display());
    let t0 = g.0[0].0;
    let ue = g.0[0].1;
    let peer = g.0[0].2;
    let mut tags = Vec::new();
    let mut branches = Vec::new();
    let mut call_id = None;
    let mut icids = Vec::new();
    for (_, _, _, p) in &g.0 {
        param_values(p, b"icid-value=\"", &mut icids);
        param_values(p, b"icid-value=", &mut icids);
        param_values(p, b"tag=", &mut tags);
        param_values(p, b"branch=", &mut branches);
        if call_id.is_none() {
            let head_end = find(p, b"\r\n\r\n").unwrap_or(p.len());
            call_id = header_value(&p[..head_end], "call-id").map(<[u8]>::to_vec);
        }
    }
    let call_id = call_id.expect("template without Call-ID");
    let ue_ip = ue.ip().to_string();
    let peer_ip = peer.ip().to_string();
    let mut msgs = Vec::new();
    let mut rtp = None;
    for (ts, src, _, p) in &g.0 {
        let from_ue = *src == ue;
        let split = find(p, b"\r\n\r\n").map_or(p.len(), |i| i + 4);
        let (head, body) = p.split_at(split);
        let first = head.split(|&c| c == b'\r').next().unwrap();
        let first = String::from_utf8_lossy(first).into_owned();
        let cseq_method = header_value(head, "cseq")
            .and_then(|v| v.split(|&c| c == b' ').next_back())
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .unwrap_or_default();
        let kind = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
            Kind::Response(rest[..3].parse().unwrap(), cseq_method)
        } else {
            Kind::Request(first.split(' ').next().unwrap().to_string())
        };
        if rtp.is_none() {
            if let Some(i) = find(body, b"m=audio ") {
                let fmt: u8 = body[i..]
                    .split(|&c| c == b' ')
                    .nth(3)
                    .and_then(|f| {
                        let f: Vec<u8> = f.iter().copied().take_while(u8::is_ascii_digit).collect();
                        std::str::from_utf8(&f).ok()?.parse().ok()
                    })
                    .unwrap_or(0);
                rtp = Some(fmt);
            }
        }
        let tokenize = |pieces: Vec<Piece>| {
            let mut ps = pieces;
            ps = split_on(ps, ue.to_string().as_bytes(), Var::UeAddr);
            ps = split_on(ps, peer.to_string().as_bytes(), Var::PeerAddr);
            ps = split_on(ps, &call_id, Var::CallId);
            for (i, v) in icids.iter().enumerate() {
                ps = split_on(ps, v, Var::Icid(i));
            }
            for (i, t) in tags.iter().enumerate() {
                ps = split_on(ps, &[b"tag=".as_slice(), t].concat(), Var::Tag(i));
            }
            for (i, b) in branches.iter().enumerate() {
                ps = split_on(ps, &[b"branch=".as_slice(), b].concat(), Var::Branch(i));
            }
            ps = split_on(ps, b"+491701234567", Var::Caller);
            ps = split_on(ps, b"+491709876543", Var::Callee);
            ps = split_on(ps, b"SIP/2.0/UDP", Var::ViaProto);
            ps = split_on(ps, b";transport=udp", Var::TransportParam);
            if ue_ip == peer_ip {
                ps = split_on(ps, ue_ip.as_bytes(), Var::SenderIp);
            } else {
                ps = split_on(ps, ue_ip.as_bytes(), Var::UeIp);
                ps = split_on(ps, peer_ip.as_bytes(), Var::PeerIp);
            }
            ps
        };
        msgs.push(TMsg {
            rel_ns: ts - t0,
            from_ue,
            kind,
            head: tokenize(line_pieces(head, false)),
            body: tokenize(line_pieces(body, true)),
        });
    }
    let (rtp_pt, rtp_len, rtp_clock_step) = match rtp.unwrap_or(0) {
        0 => (0, 160, 160),
        8 => (8, 160, 160),
        pt => (pt, 34, 320),
    };
    Flow {
        name,
        msgs,
        n_tags: tags.len(),
        n_icids: icids.len(),
        n_branches: branches.len(),
        rtp_pt,
        rtp_len,
        rtp_clock_step,
    }
}

// ---------------------------------------------------------------- one call

struct CallVals {
    call_id: Vec<u8>,
    icids: Vec<Vec<u8>>,
    tags: Vec<Vec<u8>>,
    branches: Vec<Vec<u8>>,
    ue: SocketAddr,
    peer: SocketAddr,
    caller: Vec<u8>,
    callee: Vec<u8>,
    cseq_off: u32,
    tcp: bool,
    ue_rtp: u16,
    peer_rtp: u16,
}

fn push_var(out: &mut Vec<u8>, v: Var, c: &CallVals, from_ue: bool, body_len: usize) {
    let ip = |a: &SocketAddr| a.ip().to_string().into_bytes();
    match v {
        Var::CallId => out.extend_from_slice(&c.call_id),
        Var::Icid(i) => out.extend_from_slice(&c.icids[i]),
        Var::Tag(i) => {
            out.extend_from_slice(b"tag=");
            out.extend_from_slice(&c.tags[i]);
        }
        Var::Branch(i) => {
            out.extend_from_slice(b"branch=");
            out.extend_from_slice(&c.branches[i]);
        }
        Var::UeAddr => out.extend_from_slice(c.ue.to_string().as_bytes()),
        Var::PeerAddr => out.extend_from_slice(c.peer.to_string().as_bytes()),
        Var::UeIp => out.extend_from_slice(&ip(&c.ue)),
        Var::PeerIp => out.extend_from_slice(&ip(&c.peer)),
        Var::SenderIp => out.extend_from_slice(&ip(if from_ue { &c.ue } else { &c.peer })),
        Var::Caller => out.extend_from_slice(&c.caller),
        Var::Callee => out.extend_from_slice(&c.callee),
        Var::CSeq(n) => out.extend_from_slice((n + c.cseq_off).to_string().as_bytes()),
        Var::ViaProto => out.extend_from_slice(if c.tcp {
            b"SIP/2.0/TCP"
        } else {
            b"SIP/2.0/UDP"
        }),
        Var::TransportParam => out.extend_from_slice(if c.tcp {
            b";transport=tcp"
        } else {
            b";transport=udp"
        }),
        Var::RtpPort => {
            let p = if from_ue { c.ue_rtp } else { c.peer_rtp };
            out.extend_from_slice(p.to_string().as_bytes())
        }
        Var::ContentLength => out.extend_from_slice(body_len.to_string().as_bytes()),
    }
}

fn render(m: &TMsg, c: &CallVals) -> Vec<u8> {
    let mut body = Vec::with_capacity(2048);
    for p in &m.body {
        match p {
            Piece::Lit(s) => body.extend_from_slice(s),
            Piece::Var(v) => push_var(&mut body, *v, c, m.from_ue, 0),
        }
    }
    let mut out = Vec::with_capacity(body.len() + 1024);
    for p in &m.head {
        match p {
            Piece::Lit(s) => out.extend_from_slice(s),
            Piece::Var(v) => push_var(&mut out, *v, c, m.from_ue, body.len()),
        }
    }
    out.extend_from_slice(&body);
    out
}

// ---------------------------------------------------------------- frames

fn mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x53, o[0], o[1], o[2], o[3]]
}

fn v4(a: &SocketAddr) -> Ipv4Addr {
    match a.ip() {
        IpAddr::V4(x) => x,
        IpAddr::V6(_) => unreachable!(),
    }
}

fn ip_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for w in h.chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Ethernet + IPv4 header for an IP payload of `len` bytes.
fn eth_ip(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, frag: u16, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 20 + len);
    f.extend_from_slice(&mac(dst));
    f.extend_from_slice(&mac(src));
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + len) as u16;
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[1] = if proto == 17 { 0xb8 } else { 0x68 }; // EF / AF31, as IMS marks them
    h[2..4].copy_from_slice(&total.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = 64;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&dst.octets());
    let ck = ip_checksum(&h);
    h[10..12].copy_from_slice(&ck.to_be_bytes());
    f.extend_from_slice(&h);
    f
}

/// One UDP datagram as one frame, or as IPv4 fragments above the MTU.
fn udp_frames(src: SocketAddr, dst: SocketAddr, id: u16, payload: &[u8]) -> Vec<Vec<u8>> {
    let mut ipp = Vec::with_capacity(8 + payload.len());
    ipp.extend_from_slice(&src.port().to_be_bytes());
    ipp.extend_from_slice(&dst.port().to_be_bytes());
    ipp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    ipp.extend_from_slice(&[0, 0]); // no checksum (IPv4)
    ipp.extend_from_slice(payload);
    let (s, d) = (v4(&src), v4(&dst));
    if ipp.len() + 20 <= MTU {
        let mut f = eth_ip(s, d, 17, id, 0x4000, ipp.len());
        f.extend_from_slice(&ipp);
        return vec![f];
    }
    let step = (MTU - 20) / 8 * 8;
    let mut frames = Vec::new();
    let mut off = 0;
    while off < ipp.len() {
        let end = (off + step).min(ipp.len());
        let more = if end < ipp.len() { 0x2000 } else { 0 };
        let mut f = eth_ip(s, d, 17, id, more | (off / 8) as u16, end - off);
        f.extend_from_slice(&ipp[off..end]);
        frames.push(f);
        off = end;
    }
    frames
}

#[allow(clippy::too_many_arguments)]
fn tcp_frame(
    src: SocketAddr,
    dst: SocketAddr,
    id: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = eth_ip(v4(&src), v4(&dst), 6, id, 0x4000, 20 + payload.len());
    f.extend_from_slice(&src.port().to_be_bytes());
    f.extend_from_slice(&dst.port().to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.push(5 << 4);
    f.push(flags);
    f.extend_from_slice(&65535u16.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

// ---------------------------------------------------------------- writer

#[derive(Default)]
struct Stats {
    calls: u64,
    calls_by_flow: [u64; 4],
    tcp_calls: u64,
    packets: u64,
    frame_bytes: u64,
    file_bytes: u64,
    sip_packets: u64,
    sip_messages: u64,
    retransmissions: u64,
    rtp_packets: u64,
    tcp_packets: u64,
    fragmented_datagrams: u64,
    last_ts_ns: i64,
}

/// A frame waiting in the time-ordered heap (ordered by time, then by
/// generation order).
struct Pkt {
    ts: i64,
    seq: u64,
    sip: bool,
    data: Vec<u8>,
}

impl PartialEq for Pkt {
    fn eq(&self, o: &Self) -> bool {
        (self.ts, self.seq) == (o.ts, o.seq)
    }
}
impl Eq for Pkt {}
impl PartialOrd for Pkt {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pkt {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.ts, self.seq).cmp(&(o.ts, o.seq))
    }
}

struct Gen {
    rng: Rng,
    heap: BinaryHeap<Reverse<Pkt>>,
    /// Record bytes (header + frame) of the frames in the heap.
    pending_bytes: u64,
    seq: u64,
    ip_id: u16,
    noise: Vec<u8>,
    st: Stats,
}

impl Gen {
    fn push(&mut self, ts: i64, sip: bool, data: Vec<u8>) {
        self.seq += 1;
        self.pending_bytes += 16 + data.len() as u64;
        self.heap.push(Reverse(Pkt {
            ts,
            seq: self.seq,
            sip,
            data,
        }));
        self.st.packets += 1;
    }
    fn next_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }
    fn flush_before(&mut self, t: i64, w: &mut impl Write) -> std::io::Result<()> {
        while self.heap.peek().is_some_and(|Reverse(p)| p.ts < t) {
            let Reverse(p) = self.heap.pop().unwrap();
            let us = p.ts.div_euclid(1000);
            let len = (p.data.len() as u32).to_le_bytes();
            w.write_all(&((us / 1_000_000) as u32).to_le_bytes())?;
            w.write_all(&((us % 1_000_000) as u32).to_le_bytes())?;
            w.write_all(&len)?;
            w.write_all(&len)?;
            w.write_all(&p.data)?;
            self.pending_bytes -= 16 + p.data.len() as u64;
            self.st.file_bytes += 16 + p.data.len() as u64;
            self.st.frame_bytes += p.data.len() as u64;
            self.st.sip_packets += u64::from(p.sip);
            self.st.last_ts_ns = p.ts;
        }
        Ok(())
    }
}

/// Generates one call starting at `t0` into the heap.
fn gen_call(g: &mut Gen, flows: &[Flow], t0: i64) {
    let r = g.rng.unit();
    let fi = if r < 0.45 {
        0
    } else if r < 0.65 {
        1
    } else if r < 0.90 {
        2
    } else {
        3
    };
    let flow = &flows[fi];
    g.st.calls += 1;
    g.st.calls_by_flow[fi] += 1;
    let tcp = match fi {
        1 => false,
        3 => g.rng.chance(0.5),
        _ => g.rng.chance(0.08),
    };
    g.st.tcp_calls += u64::from(tcp);
    let rng = &mut g.rng;
    let ue_n = rng.below(1 << 14) as u32;
    let ue_ip = Ipv4Addr::new(10, 45, (ue_n >> 8) as u8, (ue_n & 0xff) as u8 | 1);
    let peer_ip = match fi {
        0 | 3 => Ipv4Addr::new(10, 10, 0, 1 + rng.below(4) as u8), // P-CSCFs
        1 => Ipv4Addr::new(198, 51, 100, 10 + rng.below(20) as u8), // Internet peers
        _ => Ipv4Addr::new(203, 0, 113, 5 + rng.below(5) as u8),   // SIP trunks
    };
    let c = CallVals {
        call_id: format!("{}@{}", rng.hex(24), ue_ip).into_bytes(),
        icids: (0..flow.n_icids)
            .map(|_| rng.hex(32).into_bytes())
            .collect(),
        tags: (0..flow.n_tags).map(|_| rng.hex(10).into_bytes()).collect(),
        branches: (0..flow.n_branches)
            .map(|_| format!("z9hG4bK{}", rng.hex(16)).into_bytes())
            .collect(),
        ue: SocketAddr::new(IpAddr::V4(ue_ip), 5061),
        peer: SocketAddr::new(IpAddr::V4(peer_ip), 5060),
        caller: format!("+49170{:07}", ue_n * 397 % 10_000_000).into_bytes(),
        callee: format!("+49171{:07}", rng.below(10_000_000)).into_bytes(),
        cseq_off: rng.below(5000) as u32,
        tcp,
        ue_rtp: 10_000 + 2 * rng.below(20_000) as u16,
        peer_rtp: 10_000 + 2 * rng.below(20_000) as u16,
    };

    // Timeline: template times, media time between ACK and BYE, retransmissions.
    let mut times: Vec<i64> = flow.msgs.iter().map(|m| m.rel_ns).collect();
    let media_ns = 150_000_000 + rng.below(400_000_000) as i64;
    let bye = flow
        .msgs
        .iter()
        .position(|m| m.kind == Kind::Request("BYE".into()));
    let mut media = None;
    if let Some(b) = bye.filter(|&b| b > 0) {
        let start = times[b - 1] + 10_000_000;
        let shift = start + media_ns + 5_000_000 - times[b];
        for t in &mut times[b..] {
            *t += shift;
        }
        media = Some((start, start + media_ns));
    }
    // (index, time) of retransmitted copies; shifting later messages by T1.
    let mut copies: Vec<(usize, i64)> = Vec::new();
    if !tcp {
        let inv = flow
            .msgs
            .iter()
            .position(|m| m.kind == Kind::Request("INVITE".into()));
        let fin = flow.msgs.iter().position(
            |m| matches!(&m.kind, Kind::Response(s, meth) if *s >= 200 && meth == "INVITE"),
        );
        let byei = bye;
        for (idx, p) in [(inv, 0.06), (fin, 0.04), (byei, 0.01)] {
            if let Some(i) = idx {
                if rng.chance(p) {
                    copies.push((i, times[i] + T1_NS));
                    for t in &mut times[i + 1..] {
                        *t += T1_NS;
                    }
                    if let Some((a, b)) = media.as_mut() {
                        if bye.is_some_and(|b| i < b) {
                            *a += T1_NS;
                            *b += T1_NS;
                        }
                    }
                }
            }
        }
    }
    let t_tcp = if tcp { 1_000_000 } else { 0 };
    let mut sends: Vec<(i64, usize, bool)> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| (t, i, false))
        .collect();
    for &(i, t) in &copies {
        // a copy keeps its place relative to the shifted ones
        sends.push((t, i, true));
    }
    sends.sort_by_key(|&(t, i, copy)| (t, i, copy));

    let rendered: Vec<Vec<u8>> = flow.msgs.iter().map(|m| render(m, &c)).collect();
    let mut tcp_state = if tcp {
        let port = 32_768 + g.rng.below(28_000) as u16;
        let ue_c = SocketAddr::new(c.ue.ip(), port);
        let isn_u = g.rng.next() as u32;
        let isn_p = g.rng.next() as u32;
        let t = t0;
        let id = g.next_id();
        g.push(t, false, tcp_frame(ue_c, c.peer, id, isn_u, 0, 0x02, &[]));
        let id = g.next_id();
        g.push(
            t + 50_000,
            false,
            tcp_frame(c.peer, ue_c, id, isn_p, isn_u + 1, 0x12, &[]),
        );
        let id = g.next_id();
        g.push(
            t + 80_000,
            false,
            tcp_frame(ue_c, c.peer, id, isn_u + 1, isn_p + 1, 0x10, &[]),
        );
        g.st.tcp_packets += 3;
        Some((ue_c, isn_u + 1, isn_p + 1))
    } else {
        None
    };
    let mut last_t = t0;
    for (rel, i, copy) in sends {
        let m = &flow.msgs[i];
        let t = t0 + t_tcp + rel;
        last_t = last_t.max(t);
        let payload = &rendered[i];
        g.st.sip_messages += 1;
        g.st.retransmissions += u64::from(copy);
        let (src, dst) = if m.from_ue {
            (c.ue, c.peer)
        } else {
            (c.peer, c.ue)
        };
        match tcp_state.as_mut() {
            None => {
                let id = g.next_id();
                let frames = udp_frames(src, dst, id, payload);
                g.st.fragmented_datagrams += u64::from(frames.len() > 1);
                for (k, f) in frames.into_iter().enumerate() {
                    g.push(t + k as i64 * 15_000, true, f);
                }
            }
            Some((ue_c, seq_u, seq_p)) => {
                let (s, d, seq, ack) = if m.from_ue {
                    (*ue_c, c.peer, seq_u, *seq_p)
                } else {
                    (c.peer, *ue_c, seq_p, *seq_u)
                };
                let mut k = 0;
                for chunk in payload.chunks(MSS) {
                    let id = g.next_id();
                    g.push(
                        t + k * 10_000,
                        true,
                        tcp_frame(s, d, id, *seq, ack, 0x18, chunk),
                    );
                    *seq = seq.wrapping_add(chunk.len() as u32);
                    k += 1;
                }
                let new_seq = *seq;
                let id = g.next_id();
                g.push(
                    t + k * 10_000 + 40_000,
                    false,
                    tcp_frame(d, s, id, ack, new_seq, 0x10, &[]),
                );
                g.st.tcp_packets += k as u64 + 1;
            }
        }
    }
    if let Some((ue_c, seq_u, seq_p)) = tcp_state {
        let t = last_t + 5_000_000;
        let id = g.next_id();
        g.push(
            t,
            false,
            tcp_frame(ue_c, c.peer, id, seq_u, seq_p, 0x11, &[]),
        );
        let id = g.next_id();
        g.push(
            t + 50_000,
            false,
            tcp_frame(c.peer, ue_c, id, seq_p, seq_u + 1, 0x11, &[]),
        );
        let id = g.next_id();
        g.push(
            t + 80_000,
            false,
            tcp_frame(ue_c, c.peer, id, seq_u + 1, seq_p + 1, 0x10, &[]),
        );
        g.st.tcp_packets += 3;
    }
    if let Some((a, b)) = media {
        for (src, dst) in [
            (
                SocketAddr::new(c.ue.ip(), c.ue_rtp),
                SocketAddr::new(c.peer.ip(), c.peer_rtp),
            ),
            (
                SocketAddr::new(c.peer.ip(), c.peer_rtp),
                SocketAddr::new(c.ue.ip(), c.ue_rtp),
            ),
        ] {
            let ssrc = g.rng.next() as u32;
            let mut seq = g.rng.next() as u16;
            let mut ts = g.rng.next() as u32;
            let mut t = t0 + t_tcp + a + g.rng.below(20_000_000) as i64;
            let mut first = true;
            while t < t0 + t_tcp + b {
                let mut rtp = Vec::with_capacity(12 + flow.rtp_len);
                rtp.push(0x80);
                rtp.push(flow.rtp_pt | if first { 0x80 } else { 0 });
                rtp.extend_from_slice(&seq.to_be_bytes());
                rtp.extend_from_slice(&ts.to_be_bytes());
                rtp.extend_from_slice(&ssrc.to_be_bytes());
                let off = (g.rng.below((g.noise.len() - flow.rtp_len) as u64)) as usize;
                rtp.extend_from_slice(&g.noise[off..off + flow.rtp_len]);
                let id = g.next_id();
                let f = udp_frames(src, dst, id, &rtp).pop().unwrap();
                g.push(t, false, f);
                g.st.rtp_packets += 1;
                seq = seq.wrapping_add(1);
                ts = ts.wrapping_add(flow.rtp_clock_step);
                t += 20_000_000 + g.rng.below(200_000) as i64 - 100_000;
                first = false;
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut manifest: Option<PathBuf> = None;
    let mut samples = PathBuf::from("samples");
    let mut scale = 1.0f64;
    let mut seed: u64 = 20_261_124;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--out" => out = Some(val().into()),
            "--manifest" => manifest = Some(val().into()),
            "--samples" => samples = val().into(),
            "--scale" => scale = val().parse().expect("--scale: a number"),
            "--seed" => seed = val().parse().expect("--seed: an integer"),
            _ => panic!("unknown argument {a} (see the file's doc comment)"),
        }
    }
    let out = out.expect("--out FILE is required");
    let flows = vec![
        load_flow(
            &samples.join("ims-precondition-call/capture.pcap"),
            "ims_precondition",
        ),
        load_flow(&samples.join("relaxed-retry-420/capture.pcap"), "retry_420"),
        load_flow(&samples.join("sll2-any/capture.pcap"), "plain"),
        load_flow(
            &samples.join("fragmented-invite/capture.pcap"),
            "large_invite",
        ),
    ];
    let min_packets = (2_000_000.0 * scale).ceil() as u64;
    let min_bytes = (500.0 * 1024.0 * 1024.0 * scale).ceil() as u64;

    let mut rng = Rng(seed);
    let noise: Vec<u8> = (0..65_536).map(|_| rng.next() as u8).collect();
    let mut g = Gen {
        rng,
        heap: BinaryHeap::new(),
        pending_bytes: 0,
        seq: 0,
        ip_id: 0,
        noise,
        st: Stats::default(),
    };
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&out)?);
    // pcap header: microsecond magic, v2.4, snaplen 262144, Ethernet.
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&[0; 8])?;
    w.write_all(&262_144u32.to_le_bytes())?;
    w.write_all(&1u32.to_le_bytes())?;
    g.st.file_bytes = 24;

    let progress = std::io::stderr().is_terminal();
    let mut t = EPOCH_NS;
    // Frames still in the heap count towards the targets (they are all
    // written at the end).
    loop {
        gen_call(&mut g, &flows, t);
        // inter-arrival: exponential
        let dt = -(1.0 - g.rng.unit()).ln() / CALLS_PER_S;
        t += (dt * 1e9) as i64 + 1;
        g.flush_before(t, &mut w)?;
        let bytes = g.st.file_bytes + g.pending_bytes;
        if g.st.packets >= min_packets && bytes >= min_bytes {
            break;
        }
        if progress && g.st.calls % 4096 == 0 {
            // cheap progress on stderr
            eprint!(
                "\rgen_capture: {} calls, {} packets, {} MB",
                g.st.calls,
                g.st.packets,
                bytes / 1_000_000
            );
        }
    }
    g.flush_before(i64::MAX, &mut w)?;
    w.flush()?;
    drop(w);
    if progress && g.st.calls >= 4096 {
        eprintln!();
    }
    let st = &g.st;
    let mut text = format!(
        "file={}\nseed={seed}\nscale={scale}\ncalls={}\n",
        out.display(),
        st.calls
    );
    for (f, n) in flows.iter().zip(st.calls_by_flow) {
        text.push_str(&format!("calls_{}={n}\n", f.name));
    }
    for (k, v) in [
        ("calls_tcp", st.tcp_calls),
        ("packets", st.packets),
        ("bytes", st.frame_bytes),
        ("file_bytes", st.file_bytes),
        ("sip_packets", st.sip_packets),
        ("sip_messages", st.sip_messages),
        ("retransmissions", st.retransmissions),
        ("rtp_packets", st.rtp_packets),
        ("tcp_packets", st.tcp_packets),
        ("fragmented_datagrams", st.fragmented_datagrams),
    ] {
        text.push_str(&format!("{k}={v}\n"));
    }
    text.push_str(&format!(
        "first_time_ns={EPOCH_NS}\nlast_time_ns={}\n",
        st.last_ts_ns
    ));
    print!("{text}");
    if let Some(m) = manifest {
        std::fs::write(m, text)?;
    }
    Ok(())
}
