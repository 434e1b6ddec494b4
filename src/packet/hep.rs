//! HEP, the Homer Encapsulation Protocol that capture agents (captagent,
//! heplify, Kamailio/OpenSIPS siptrace, FreeSWITCH, rtpengine) use to send
//! copies of SIP to a collector: version 3 (EEP, the `HEP3` chunk format)
//! and the fixed headers of versions 1 and 2.
//!
//! In: bytes of a UDP payload ([`parse`]), or the in-order bytes of a TCP
//! direction ([`Streams`], which frames HEP3 packets: several per segment,
//! or one split over several). Out: [`Packet`]s that borrow the input, with
//! the original addresses, ports, transport, capture time, protocol type
//! and payload, and the [`Problem`]s met on the way; for streams,
//! [`StreamEvent`]s and anomalies with stable ids (`hep_*`, see
//! [`ANOMALY_IDS`]).
//!
//! HEP3 (sipcapture's HEP3 rev. 12): `HEP3`, a 16-bit total length (header
//! included), then chunks: 16-bit vendor id, 16-bit type, 16-bit length
//! (its 6-byte header included), data; all big-endian. Vendor 0 types used
//! here: 1 IP family (2 IPv4, 10 IPv6), 2 IP protocol (17 UDP, 6 TCP, 132
//! SCTP), 3/4 IPv4 source/destination, 5/6 IPv6 source/destination, 7/8
//! source/destination port, 9/10 capture time seconds/microseconds, 11
//! protocol type (1 = SIP), 12 capture agent id, 15 payload, 16 compressed
//! payload (not decoded). Other types (auth key 14, correlation id 17, ...)
//! and every chunk of another vendor are skipped by their length.
//!
//! HEP1/2 (Kamailio's `struct hep_hdr`): version (1 or 2), header length
//! (16 for IPv4, 40 for IPv6), family, IP protocol, source and destination
//! port (big-endian), the two addresses; HEP2 then has the capture time (its
//! seconds and microseconds in the sender's byte order, little-endian on
//! every agent seen, then a 16-bit capture id and 2 bytes of padding). The
//! payload is the rest of the datagram: HEP1/2 only carry SIP, and have no
//! length, so they are recognised on UDP only, and only when the header is
//! consistent and the payload starts with a letter.
//!
//! Bounds: every length is checked against the bytes that remain before it
//! is used. A chunk whose length is below 6 or runs past the packet stops
//! the walk (what was read before it is kept); a chunk of a fixed-size type
//! with another size is ignored; both are [`Problem`]s, never panics or
//! errors. A stream direction buffers at most one packet (64 KiB), all
//! directions together at most [`Streams::MAX_BUFFERED`].
//!
//! What it never does: look inside the payload (SIP is the sink's
//! business), decompress, authenticate (the auth key is skipped), or decide
//! what a missing chunk means (the decoder does).

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use rustc_hash::FxHashMap;

use super::FlowKey;
use crate::anomaly::PacketAnomaly;

/// Every anomaly id HEP decoding emits.
pub const ANOMALY_IDS: &[&str] = &[
    "hep_malformed",
    "hep_truncated",
    "hep_resync",
    "hep_unsupported",
    "hep_time_skew",
];

/// The HEP3 magic.
pub const MAGIC: &[u8; 4] = b"HEP3";

/// Why [`parse`] returned no packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HepError {
    /// The bytes do not start like a HEP packet.
    NotHep,
    /// A HEP3 header announcing `needed` bytes, more than there are.
    Incomplete {
        /// The packet's total length.
        needed: usize,
    },
    /// A HEP3 header that cannot be framed (total length below 6).
    Invalid {
        /// What is wrong.
        reason: &'static str,
    },
}

/// A defect met inside a packet that was still read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A chunk length below its 6-byte header: the walk stops there.
    ChunkTooShort {
        /// Offset of the chunk in the packet.
        offset: usize,
        /// Its type.
        kind: u16,
        /// Its length field.
        len: u16,
    },
    /// A chunk running past the packet's end: the walk stops there.
    ChunkOverrun {
        /// Offset of the chunk in the packet.
        offset: usize,
        /// Its type.
        kind: u16,
        /// Its length field.
        len: u16,
        /// Bytes left in the packet from its start.
        left: usize,
    },
    /// A chunk of a fixed-size type with another size: ignored.
    BadSize {
        /// Its type.
        kind: u16,
        /// Its data bytes.
        size: usize,
    },
    /// A microseconds value of a million or more: ignored.
    BadMicros(u32),
    /// Fewer than 6 bytes left after the last chunk.
    Trailing(usize),
    /// A compressed payload (chunk 16): not decoded.
    Compressed,
}

impl Problem {
    /// The anomaly this problem is reported as.
    pub fn anomaly(self) -> PacketAnomaly {
        match self {
            Problem::Compressed => PacketAnomaly::HepUnsupported,
            _ => PacketAnomaly::HepMalformed,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Problem::ChunkTooShort { offset, kind, len } => write!(
                f,
                "HEP3 chunk type {kind} at byte {offset} has length {len}, below its 6-byte \
                 header: the chunks after it are not read"
            ),
            Problem::ChunkOverrun {
                offset,
                kind,
                len,
                left,
            } => write!(
                f,
                "HEP3 chunk type {kind} at byte {offset} has length {len} but only {left} bytes \
                 are left in the packet: it and the chunks after it are not read"
            ),
            Problem::BadSize { kind, size } => write!(
                f,
                "HEP3 chunk type {kind} has {size} data bytes, not the size of its type: ignored"
            ),
            Problem::BadMicros(us) => {
                write!(
                    f,
                    "HEP capture time microseconds {us} is not below 1000000: ignored"
                )
            }
            Problem::Trailing(n) => write!(f, "{n} bytes after the last HEP3 chunk"),
            Problem::Compressed => f.write_str("compressed HEP3 payload (chunk 16): not decoded"),
        }
    }
}

/// At most this many problems are kept per packet (the walk stops at the
/// first structural one, so only size problems can repeat).
const MAX_PROBLEMS: usize = 8;

/// One HEP packet, borrowing the bytes it was read from. Fields are `None`
/// when their chunk is absent (or was ignored as a [`Problem`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packet<'a> {
    /// 1, 2 or 3.
    pub version: u8,
    /// Bytes of the input the packet occupies.
    pub len: usize,
    /// IP family (2 IPv4, 10 IPv6).
    pub family: Option<u8>,
    /// IP protocol of the captured packet (17 UDP, 6 TCP, 132 SCTP).
    pub ip_proto: Option<u8>,
    /// Original source address.
    pub src_ip: Option<IpAddr>,
    /// Original destination address.
    pub dst_ip: Option<IpAddr>,
    /// Original source port.
    pub src_port: Option<u16>,
    /// Original destination port.
    pub dst_port: Option<u16>,
    /// Capture time, seconds.
    pub ts_sec: Option<u32>,
    /// Capture time, microseconds.
    pub ts_usec: Option<u32>,
    /// What the payload is (1 = SIP; HEP1/2 always SIP).
    pub proto_type: Option<u8>,
    /// Capture agent id.
    pub capture_id: Option<u32>,
    /// The captured payload.
    pub payload: Option<&'a [u8]>,
    /// Defects met while reading it (at most 8).
    pub problems: Vec<Problem>,
}

impl Packet<'_> {
    /// Original source as a socket address, when both chunks are there.
    pub fn src(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.src_ip?, self.src_port?))
    }

    /// Original destination as a socket address.
    pub fn dst(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.dst_ip?, self.dst_port?))
    }

    /// Capture time in ns since the epoch, when the seconds are there.
    pub fn ts_ns(&self) -> Option<i64> {
        Some(self.ts_sec? as i64 * 1_000_000_000 + self.ts_usec.unwrap_or(0) as i64 * 1_000)
    }

    /// The captured packet's transport name: `udp`, `tcp` or `sctp`
    /// (`None` when the protocol chunk is absent or names another one).
    pub fn transport(&self) -> Option<&'static str> {
        match self.ip_proto? {
            17 => Some("udp"),
            6 => Some("tcp"),
            132 => Some("sctp"),
            _ => None,
        }
    }

    fn problem(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        }
    }
}

/// Whether `b` starts like a HEP packet: the HEP3 magic, or a consistent
/// HEP1/2 header followed by a payload that starts with a letter.
pub fn is_hep(b: &[u8]) -> bool {
    b.starts_with(MAGIC) || v12_header(b).is_some()
}

/// Reads the HEP packet at the front of `b` (HEP3: exactly its total
/// length; HEP1/2: the rest of `b`).
pub fn parse(b: &[u8]) -> Result<Packet<'_>, HepError> {
    if b.starts_with(MAGIC) {
        return parse_v3(b);
    }
    match v12_header(b) {
        Some(hdr_len) => Ok(parse_v12(b, hdr_len)),
        None => Err(HepError::NotHep),
    }
}

/// The total length of the HEP3 packet at the front of `b`: `Ok(None)`
/// while fewer than its 6 header bytes are there.
pub fn v3_len(b: &[u8]) -> Result<Option<usize>, HepError> {
    let n = b.len().min(4);
    if b[..n] != MAGIC[..n] {
        return Err(HepError::NotHep);
    }
    if b.len() < 6 {
        return Ok(None);
    }
    let total = u16::from_be_bytes([b[4], b[5]]) as usize;
    if total < 6 {
        return Err(HepError::Invalid {
            reason: "HEP3 total length below its 6-byte header",
        });
    }
    Ok(Some(total))
}

fn parse_v3(b: &[u8]) -> Result<Packet<'_>, HepError> {
    let total = match v3_len(b)? {
        Some(t) if t <= b.len() => t,
        Some(t) => return Err(HepError::Incomplete { needed: t }),
        None => return Err(HepError::Incomplete { needed: 6 }),
    };
    let mut p = Packet {
        version: 3,
        len: total,
        ..Packet::default()
    };
    let mut off = 6;
    while off < total {
        let left = total - off;
        if left < 6 {
            p.problem(Problem::Trailing(left));
            break;
        }
        let be16 = |i: usize| u16::from_be_bytes([b[off + i], b[off + i + 1]]);
        let (vendor, kind, len) = (be16(0), be16(2), be16(4));
        if len < 6 {
            p.problem(Problem::ChunkTooShort {
                offset: off,
                kind,
                len,
            });
            break;
        }
        if len as usize > left {
            p.problem(Problem::ChunkOverrun {
                offset: off,
                kind,
                len,
                left,
            });
            break;
        }
        if vendor == 0 {
            chunk(&mut p, kind, &b[off + 6..off + len as usize]);
        }
        off += len as usize;
    }
    Ok(p)
}

/// Reads one vendor-0 chunk into `p`.
fn chunk<'a>(p: &mut Packet<'a>, kind: u16, d: &'a [u8]) {
    let size_ok = match kind {
        1 | 2 | 11 => d.len() == 1,
        3 | 4 => d.len() == 4,
        5 | 6 => d.len() == 16,
        7 | 8 => d.len() == 2,
        9 | 10 | 12 => d.len() == 4,
        _ => true,
    };
    if !size_ok {
        p.problem(Problem::BadSize {
            kind,
            size: d.len(),
        });
        return;
    }
    let be32 = || u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let v4 = || IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3]));
    let v6 = || IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(d).unwrap_or([0; 16])));
    match kind {
        1 => p.family = Some(d[0]),
        2 => p.ip_proto = Some(d[0]),
        3 => p.src_ip = Some(v4()),
        4 => p.dst_ip = Some(v4()),
        5 => p.src_ip = Some(v6()),
        6 => p.dst_ip = Some(v6()),
        7 => p.src_port = Some(u16::from_be_bytes([d[0], d[1]])),
        8 => p.dst_port = Some(u16::from_be_bytes([d[0], d[1]])),
        9 => p.ts_sec = Some(be32()),
        10 if be32() >= 1_000_000 => p.problem(Problem::BadMicros(be32())),
        10 => p.ts_usec = Some(be32()),
        11 => p.proto_type = Some(d[0]),
        12 => p.capture_id = Some(be32()),
        15 => p.payload = Some(d),
        16 => p.problem(Problem::Compressed),
        _ => {}
    }
}

/// The header length of a consistent HEP1/2 header at the front of `b`
/// (the time header included for HEP2), when its payload starts with a
/// letter.
fn v12_header(b: &[u8]) -> Option<usize> {
    let (&version, rest) = b.split_first()?;
    let &[hp_l, family, proto, ..] = rest else {
        return None;
    };
    let ip_len = match (family, hp_l) {
        (2, 16) => 16,
        (10, 40) => 40,
        _ => return None,
    };
    let hdr = match version {
        1 => ip_len,
        2 => ip_len + 12,
        _ => return None,
    };
    let starts_like_text = b.get(hdr).is_some_and(|c| c.is_ascii_alphabetic());
    (matches!(proto, 6 | 17 | 132) && starts_like_text).then_some(hdr)
}

fn parse_v12(b: &[u8], hdr: usize) -> Packet<'_> {
    let be16 = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let le32 = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (src_ip, dst_ip) = if b[2] == 2 {
        let a = |i: usize| IpAddr::V4(Ipv4Addr::new(b[i], b[i + 1], b[i + 2], b[i + 3]));
        (a(8), a(12))
    } else {
        let a = |i: usize| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[i..i + 16]);
            IpAddr::V6(Ipv6Addr::from(o))
        };
        (a(8), a(24))
    };
    let mut p = Packet {
        version: b[0],
        len: b.len(),
        family: Some(b[2]),
        ip_proto: Some(b[3]),
        src_ip: Some(src_ip),
        dst_ip: Some(dst_ip),
        src_port: Some(be16(4)),
        dst_port: Some(be16(6)),
        proto_type: Some(1),
        payload: Some(&b[hdr..]),
        ..Packet::default()
    };
    if p.version == 2 {
        let t = b[1] as usize;
        p.ts_sec = Some(le32(t));
        match le32(t + 4) {
            us if us < 1_000_000 => p.ts_usec = Some(us),
            us => p.problem(Problem::BadMicros(us)),
        }
        p.capture_id = Some(u16::from_le_bytes([b[t + 8], b[t + 9]]) as u32);
    }
    p
}

/// What [`Streams`] reports for a HEP direction.
#[derive(Debug)]
pub enum StreamEvent<'a, 'p> {
    /// A whole HEP3 packet.
    Packet {
        /// The direction it came on.
        key: FlowKey,
        /// The packet.
        packet: &'p Packet<'a>,
        /// The frame whose bytes completed it.
        frame: u64,
        /// Capture time of `frame`.
        ts_ns: i64,
    },
    /// A framing anomaly.
    Anomaly {
        /// The frame it is attached to.
        frame: u64,
        /// Its kind.
        kind: PacketAnomaly,
        /// Human detail with byte counts.
        detail: String,
    },
}

/// One HEP direction of a TCP connection.
#[derive(Default)]
struct Dir {
    /// Bytes of a packet split over `Data` events (or, while hunting, up
    /// to 3 bytes that may start the magic).
    buf: Vec<u8>,
    /// Carriers of `buf`'s bytes (consecutive repeats collapsed).
    carriers: Vec<u64>,
    /// Looking for the next `HEP3` after a gap or a bad packet.
    hunting: bool,
    /// Bytes skipped by the current hunt.
    skipped: u64,
    /// Carriers already counted as SIP carriers.
    counted: VecDeque<u64>,
}

/// Carriers remembered per direction, so that a segment holding several
/// SIP-carrying packets is counted once.
const RECENT: usize = 16;

/// Where a direction's bytes came from.
#[derive(Clone, Copy)]
struct At {
    frame: u64,
    ts_ns: i64,
    carrier: u64,
}

/// Output callback: returns whether the packet carried SIP.
type Out<'o> = dyn for<'a, 'p> FnMut(StreamEvent<'a, 'p>) -> bool + 'o;

/// HEP3 framing of the TCP directions that carry it (found by the magic at
/// the start of a `Data` event). Bounds: one packet (at most 65,535 bytes)
/// per direction, [`Streams::MAX_BUFFERED`] in all.
#[derive(Default)]
pub struct Streams {
    dirs: FxHashMap<FlowKey, Dir>,
    buffered: usize,
    sip_frames: u64,
}

impl Streams {
    /// Bytes all directions together may hold in split packets.
    pub const MAX_BUFFERED: usize = 64 << 20;

    /// Whether `key` is a HEP direction; a direction becomes one when its
    /// `Data` starts with the HEP3 magic (`data` is that `Data`'s bytes).
    pub fn claims(&mut self, key: FlowKey, data: Option<&[u8]>) -> bool {
        if self.dirs.contains_key(&key) {
            return true;
        }
        let starts = data.is_some_and(|d| d.starts_with(MAGIC) && matches!(v3_len(d), Ok(Some(_))));
        if starts {
            self.dirs.insert(key, Dir::default());
        }
        starts
    }

    /// TCP segments found to carry (part of) a SIP-carrying packet, each
    /// counted once.
    pub fn sip_frames(&self) -> u64 {
        self.sip_frames
    }

    /// In-order bytes of a claimed direction.
    pub fn data(
        &mut self,
        key: FlowKey,
        bytes: &[u8],
        (frame, ts_ns, carrier): (u64, i64, u64),
        out: &mut Out<'_>,
    ) {
        let Some(mut d) = self.dirs.remove(&key) else {
            return;
        };
        let at = At {
            frame,
            ts_ns,
            carrier,
        };
        self.buffered -= d.buf.len();
        let mut rest = bytes;
        while !rest.is_empty() {
            if d.buf.is_empty() {
                let n = self.step(&mut d, key, rest, &[carrier], at, out);
                if n == 0 {
                    d.buf.extend_from_slice(rest);
                    d.carriers.push(carrier);
                    break;
                }
                rest = &rest[n..];
            } else {
                let take = need(&d).min(rest.len()).max(1);
                d.buf.extend_from_slice(&rest[..take]);
                if d.carriers.last() != Some(&carrier) {
                    d.carriers.push(carrier);
                }
                rest = &rest[take..];
                self.drain_buf(&mut d, key, at, out);
            }
        }
        self.buffered += d.buf.len();
        if self.buffered > Self::MAX_BUFFERED && !d.buf.is_empty() {
            let n = d.buf.len();
            self.buffered -= n;
            drop_partial(
                &mut d,
                at.carrier,
                out,
                &format!(
                    "{n} bytes of a split HEP packet dropped: the HEP buffers of all streams exceed {} MiB",
                    Self::MAX_BUFFERED >> 20
                ),
            );
        }
        self.dirs.insert(key, d);
    }

    /// Bytes were lost in a claimed direction: a partial packet is dropped
    /// and the next `HEP3` is looked for.
    pub fn gap(&mut self, key: FlowKey, frame: u64, out: &mut Out<'_>) {
        if let Some(d) = self.dirs.get_mut(&key) {
            self.buffered -= d.buf.len();
            if !d.hunting && !d.buf.is_empty() {
                let n = d.buf.len();
                drop_partial(
                    d,
                    frame,
                    out,
                    &format!("{n} bytes of a HEP packet dropped: bytes lost in the TCP stream"),
                );
            }
            d.buf.clear();
            d.carriers.clear();
            d.hunting = true;
        }
    }

    /// A claimed direction ended (reset, or the end of the capture).
    pub fn end(&mut self, key: FlowKey, frame: u64, out: &mut Out<'_>) {
        let Some(mut d) = self.dirs.remove(&key) else {
            return;
        };
        self.buffered -= d.buf.len();
        if d.hunting {
            let n = d.skipped + d.buf.len() as u64;
            if n > 0 {
                out(StreamEvent::Anomaly {
                    frame,
                    kind: PacketAnomaly::HepResync,
                    detail: format!(
                        "{n} bytes skipped at the end of a HEP stream: no HEP3 header found"
                    ),
                });
            }
        } else if !d.buf.is_empty() {
            let n = d.buf.len();
            drop_partial(
                &mut d,
                frame,
                out,
                &format!("the TCP stream ended inside a HEP packet ({n} bytes held)"),
            );
        }
    }

    /// Ends every direction, in a fixed order.
    pub fn finish(&mut self, frame: u64, out: &mut Out<'_>) {
        let mut keys: Vec<FlowKey> = self.dirs.keys().copied().collect();
        keys.sort_by_key(|k| (k.src, k.dst));
        for k in keys {
            self.end(k, frame, out);
        }
    }

    /// Frames what `d.buf` holds, keeping what is still incomplete.
    fn drain_buf(&mut self, d: &mut Dir, key: FlowKey, at: At, out: &mut Out<'_>) {
        let buf = std::mem::take(&mut d.buf);
        let carriers = std::mem::take(&mut d.carriers);
        let mut off = 0;
        while off < buf.len() {
            let n = self.step(d, key, &buf[off..], &carriers, at, out);
            if n == 0 {
                break;
            }
            off += n;
        }
        d.buf = buf;
        d.buf.drain(..off);
        d.carriers = carriers;
        if d.buf.is_empty() {
            d.carriers.clear();
        } else if off > 0 {
            d.carriers.retain(|&c| c == at.carrier);
            if d.carriers.is_empty() {
                d.carriers.push(at.carrier);
            }
        }
    }

    /// Frames one unit at the front of `b`: a packet, a bad header, or
    /// hunted bytes. Returns the bytes consumed, 0 when more are needed.
    fn step(
        &mut self,
        d: &mut Dir,
        key: FlowKey,
        b: &[u8],
        carriers: &[u64],
        at: At,
        out: &mut Out<'_>,
    ) -> usize {
        if d.hunting {
            let n = hunt(d, b, at, out);
            if d.hunting || n > 0 {
                return n;
            }
            // The magic is at the front: read the packet now.
        }
        match parse_v3(b) {
            Ok(packet) => {
                let sip = out(StreamEvent::Packet {
                    key,
                    packet: &packet,
                    frame: at.frame,
                    ts_ns: at.ts_ns,
                });
                if sip {
                    self.count(d, carriers);
                }
                packet.len
            }
            Err(HepError::Incomplete { .. }) => 0,
            Err(e) => {
                let why = match e {
                    HepError::Invalid { reason } => reason,
                    _ => "no HEP3 header where the next packet should start",
                };
                out(StreamEvent::Anomaly {
                    frame: carriers.first().copied().unwrap_or(at.carrier),
                    kind: PacketAnomaly::HepMalformed,
                    detail: format!("{why}: looking for the next HEP3 header"),
                });
                d.hunting = true;
                d.skipped = 1;
                1
            }
        }
    }

    fn count(&mut self, d: &mut Dir, carriers: &[u64]) {
        for &c in carriers {
            if !d.counted.contains(&c) {
                if d.counted.len() == RECENT {
                    d.counted.pop_front();
                }
                d.counted.push_back(c);
                self.sip_frames += 1;
            }
        }
    }
}

/// Bytes still needed to complete the unit in `d.buf` (at least 1).
fn need(d: &Dir) -> usize {
    if d.hunting {
        return usize::MAX;
    }
    match v3_len(&d.buf) {
        Ok(Some(total)) => total.saturating_sub(d.buf.len()).max(1),
        Ok(None) => 6 - d.buf.len(),
        Err(_) => 1,
    }
}

/// Skips to the next `HEP3` in `b` (keeping up to 3 bytes that may start
/// it); reports the skipped bytes when it is found.
fn hunt(d: &mut Dir, b: &[u8], at: At, out: &mut Out<'_>) -> usize {
    match memchr::memmem::find(b, MAGIC) {
        Some(0) => {
            d.hunting = false;
            if d.skipped > 0 {
                out(StreamEvent::Anomaly {
                    frame: at.carrier,
                    kind: PacketAnomaly::HepResync,
                    detail: format!("{} bytes skipped to the next HEP3 header", d.skipped),
                });
            }
            d.skipped = 0;
            0
        }
        Some(k) => {
            d.skipped += k as u64;
            k
        }
        None => {
            let k = b.len().saturating_sub(3);
            d.skipped += k as u64;
            k
        }
    }
}

/// Drops `d`'s partial packet with a `hep_truncated` anomaly and hunts.
fn drop_partial(d: &mut Dir, frame: u64, out: &mut Out<'_>, detail: &str) {
    out(StreamEvent::Anomaly {
        frame: d.carriers.first().copied().unwrap_or(frame),
        kind: PacketAnomaly::HepTruncated,
        detail: detail.to_string(),
    });
    d.buf.clear();
    d.carriers.clear();
    d.hunting = true;
    d.skipped = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A HEP3 packet from (vendor, type, data) chunks.
    fn hep3(chunks: &[(u16, u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (vendor, kind, data) in chunks {
            body.extend_from_slice(&vendor.to_be_bytes());
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&((data.len() + 6) as u16).to_be_bytes());
            body.extend_from_slice(data);
        }
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&((body.len() + 6) as u16).to_be_bytes());
        v.extend_from_slice(&body);
        v
    }

    const SIP: &[u8] = b"OPTIONS sip:b@x SIP/2.0\r\n\r\n";

    fn sip_packet(payload: &[u8]) -> Vec<u8> {
        hep3(&[
            (0, 15, payload),
            (0x1234, 1, b"vendor data"),
            (0, 8, &5060u16.to_be_bytes()),
            (0, 4, &[10, 0, 0, 2]),
            (0, 1, &[2]),
            (0, 2, &[6]),
            (0, 3, &[10, 0, 0, 1]),
            (0, 7, &40000u16.to_be_bytes()),
            (0, 9, &1_700_000_000u32.to_be_bytes()),
            (0, 10, &250_000u32.to_be_bytes()),
            (0, 11, &[1]),
            (0, 12, &2001u32.to_be_bytes()),
            (0, 14, b"secret"),
            (0, 17, b"corr-1"),
        ])
    }

    #[test]
    fn hep3_chunks_in_any_order_vendor_chunks_skipped() {
        let b = sip_packet(SIP);
        let p = parse(&b).unwrap();
        assert_eq!(p.version, 3);
        assert_eq!(p.len, b.len());
        assert_eq!(p.src(), Some("10.0.0.1:40000".parse().unwrap()));
        assert_eq!(p.dst(), Some("10.0.0.2:5060".parse().unwrap()));
        assert_eq!(p.transport(), Some("tcp"));
        assert_eq!(p.ts_ns(), Some(1_700_000_000_250_000_000));
        assert_eq!((p.proto_type, p.capture_id), (Some(1), Some(2001)));
        assert_eq!(p.payload, Some(SIP));
        assert!(p.problems.is_empty(), "{:?}", p.problems);
    }

    #[test]
    fn hep3_ipv6_addresses() {
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let z: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let b = hep3(&[
            (0, 5, &a.octets()),
            (0, 6, &z.octets()),
            (0, 7, &[0x13, 0xc4]),
            (0, 8, &[0x13, 0xc4]),
            (0, 15, SIP),
        ]);
        let p = parse(&b).unwrap();
        assert_eq!(p.src(), Some("[2001:db8::1]:5060".parse().unwrap()));
        assert_eq!(p.dst(), Some("[2001:db8::2]:5060".parse().unwrap()));
        assert_eq!(p.ts_ns(), None);
    }

    #[test]
    fn a_chunk_that_overruns_stops_the_walk_and_keeps_what_came_before() {
        let mut b = sip_packet(SIP);
        // The vendor chunk (right after the payload chunk) claims 60000 bytes.
        let at = 6 + 6 + SIP.len() + 4;
        b[at..at + 2].copy_from_slice(&60000u16.to_be_bytes());
        let p = parse(&b).unwrap();
        assert_eq!(p.payload, Some(SIP));
        assert_eq!(p.src(), None, "chunks after the liar are not read");
        assert!(matches!(
            p.problems[..],
            [Problem::ChunkOverrun {
                kind: 1,
                len: 60000,
                ..
            }]
        ));
        // The payload chunk itself lies: no payload.
        let mut b = sip_packet(SIP);
        let n = b.len() as u16;
        b[10..12].copy_from_slice(&n.to_be_bytes());
        let p = parse(&b).unwrap();
        assert_eq!(p.payload, None);
        assert!(matches!(
            p.problems[..],
            [Problem::ChunkOverrun { kind: 15, .. }]
        ));
    }

    #[test]
    fn short_chunks_bad_sizes_and_trailing_bytes_are_problems() {
        let mut b = hep3(&[(0, 15, SIP), (0, 7, &[1, 2, 3]), (0, 9, &[0, 0, 0, 1])]);
        b.extend_from_slice(&[0, 0, 0]);
        let total = b.len() as u16;
        b[4..6].copy_from_slice(&total.to_be_bytes());
        let p = parse(&b).unwrap();
        assert_eq!(p.src_port, None);
        assert_eq!(p.ts_sec, Some(1));
        assert_eq!(
            p.problems,
            vec![Problem::BadSize { kind: 7, size: 3 }, Problem::Trailing(3)]
        );
        let mut b = hep3(&[(0, 15, SIP), (0, 9, &[0, 0, 0, 1])]);
        let at = 6 + 6 + SIP.len() + 4;
        b[at..at + 2].copy_from_slice(&2u16.to_be_bytes());
        let p = parse(&b).unwrap();
        assert_eq!((p.payload, p.ts_sec), (Some(SIP), None));
        assert!(matches!(
            p.problems[..],
            [Problem::ChunkTooShort { len: 2, .. }]
        ));
        let b = hep3(&[
            (0, 15, SIP),
            (0, 10, &2_000_000u32.to_be_bytes()),
            (0, 16, b"x"),
        ]);
        let p = parse(&b).unwrap();
        assert_eq!(
            p.problems,
            vec![Problem::BadMicros(2_000_000), Problem::Compressed]
        );
    }

    #[test]
    fn need_more_bytes_is_not_invalid() {
        let b = sip_packet(SIP);
        assert_eq!(
            parse(&b[..b.len() - 1]),
            Err(HepError::Incomplete { needed: b.len() })
        );
        assert_eq!(parse(b"HEP3"), Err(HepError::Incomplete { needed: 6 }));
        assert!(matches!(
            parse(b"HEP3\x00\x05"),
            Err(HepError::Invalid { .. })
        ));
        assert_eq!(parse(b"OPTIONS sip:x SIP/2.0"), Err(HepError::NotHep));
        assert_eq!(parse(b""), Err(HepError::NotHep));
        assert_eq!(v3_len(b"HE"), Ok(None));
        assert_eq!(v3_len(b"HX"), Err(HepError::NotHep));
    }

    fn hep2(v6: bool) -> Vec<u8> {
        let mut v = vec![2, if v6 { 40 } else { 16 }, if v6 { 10 } else { 2 }, 17];
        v.extend_from_slice(&5060u16.to_be_bytes());
        v.extend_from_slice(&5062u16.to_be_bytes());
        if v6 {
            v.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
            v.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        } else {
            v.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        }
        v.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        v.extend_from_slice(&7u32.to_le_bytes());
        v.extend_from_slice(&[0x34, 0x12, 0, 0]);
        v.extend_from_slice(SIP);
        v
    }

    #[test]
    fn hep2_fixed_header_ipv4_and_ipv6() {
        let b = hep2(false);
        assert!(is_hep(&b));
        let p = parse(&b).unwrap();
        assert_eq!(p.version, 2);
        assert_eq!(p.src(), Some("192.0.2.1:5060".parse().unwrap()));
        assert_eq!(p.dst(), Some("192.0.2.2:5062".parse().unwrap()));
        assert_eq!(p.ts_ns(), Some(1_700_000_000_000_007_000));
        assert_eq!((p.capture_id, p.transport()), (Some(0x1234), Some("udp")));
        assert_eq!(p.payload, Some(SIP));
        let b6 = hep2(true);
        let p = parse(&b6).unwrap();
        assert_eq!(p.dst(), Some("[2001:db8::2]:5062".parse().unwrap()));
        assert_eq!(p.payload, Some(SIP));
        // HEP1: no time header.
        let mut b = hep2(false);
        b[0] = 1;
        b.drain(16..28);
        let p = parse(&b).unwrap();
        assert_eq!((p.version, p.ts_ns(), p.payload), (1, None, Some(SIP)));
    }

    #[test]
    fn hep2_is_recognised_only_with_a_consistent_header() {
        let mut b = hep2(false);
        b[1] = 40; // IPv6 length with the IPv4 family
        assert!(!is_hep(&b));
        let mut b = hep2(false);
        b[3] = 1; // ICMP
        assert!(!is_hep(&b));
        let mut b = hep2(false);
        b[28] = 0x80; // payload not text (RTP-like)
        assert!(!is_hep(&b));
        assert!(!is_hep(&b[..20]));
        for n in 0..28 {
            assert!(!is_hep(&hep2(false)[..n]), "{n} bytes");
        }
    }

    type Seen = (Vec<(u64, Vec<u8>)>, Vec<(u64, &'static str, String)>);

    /// Feeds `events` (bytes, frame) to one direction; returns the payloads
    /// of the packets (with their frame), the anomalies and the SIP frames.
    fn feed(events: &[(&[u8], u64)], gap_before: Option<usize>) -> (Seen, u64) {
        let key = FlowKey {
            tunnels: Default::default(),
            src: "10.0.0.1:1000".parse().unwrap(),
            dst: "10.0.0.2:9060".parse().unwrap(),
        };
        let mut s = Streams::default();
        let mut seen: Seen = Default::default();
        let mut out = |e: StreamEvent<'_, '_>| match e {
            StreamEvent::Packet { packet, frame, .. } => {
                seen.0
                    .push((frame, packet.payload.unwrap_or_default().to_vec()));
                true
            }
            StreamEvent::Anomaly {
                frame,
                kind,
                detail,
            } => {
                seen.1.push((frame, kind.id(), detail));
                false
            }
        };
        // Claimed by the magic at the start of the direction.
        assert!(!s.claims(key, Some(b"HEP3\x00\x05")));
        assert!(s.claims(key, Some(b"HEP3\x00\x06")));
        for (i, (b, frame)) in events.iter().enumerate() {
            if gap_before == Some(i) {
                s.gap(key, *frame, &mut out);
            }
            s.data(key, b, (*frame, 0, *frame), &mut out);
        }
        s.finish(99, &mut out);
        assert_eq!(s.buffered, 0);
        let n = s.sip_frames();
        (seen, n)
    }

    #[test]
    fn stream_several_packets_per_segment_and_one_split_over_three() {
        let a = sip_packet(b"A sip:a SIP/2.0\r\n\r\n");
        let b = sip_packet(b"B sip:b SIP/2.0\r\n\r\n");
        let c = sip_packet(b"C sip:c SIP/2.0\r\n\r\n");
        let mut seg1 = a.clone();
        seg1.extend_from_slice(&b);
        seg1.extend_from_slice(&c[..3]); // split inside the magic
        let seg2 = &c[3..20];
        let seg3 = &c[20..];
        let ((pk, an), n) = feed(&[(&seg1, 1), (seg2, 2), (seg3, 3)], None);
        let frames: Vec<u64> = pk.iter().map(|p| p.0).collect();
        assert_eq!(frames, [1, 1, 3]);
        assert_eq!(pk[2].1, b"C sip:c SIP/2.0\r\n\r\n");
        assert!(an.is_empty(), "{an:?}");
        assert_eq!(n, 3, "each carrying segment counted once");
    }

    #[test]
    fn stream_any_split_gives_the_same_packets() {
        let mut all = Vec::new();
        for i in 0..4u8 {
            all.extend_from_slice(&sip_packet(&[b'M', b' ', b'0' + i]));
        }
        let whole = feed(&[(&all, 1)], None).0;
        for cut in [1, 2, 5, 7, 13, 64] {
            let parts: Vec<(&[u8], u64)> = all
                .chunks(cut)
                .enumerate()
                .map(|(i, c)| (c, i as u64 + 1))
                .collect();
            let (pk, an) = feed(&parts, None).0;
            let payloads: Vec<_> = pk.iter().map(|p| &p.1).collect();
            let expected: Vec<_> = whole.0.iter().map(|p| &p.1).collect();
            assert_eq!(payloads, expected, "chunks of {cut}");
            assert!(an.is_empty());
        }
    }

    #[test]
    fn stream_gap_drops_the_partial_packet_and_resyncs_at_the_next_magic() {
        let a = sip_packet(b"A sip:a SIP/2.0\r\n\r\n");
        let b = sip_packet(b"B sip:b SIP/2.0\r\n\r\n");
        let mut tail = b"junk".to_vec();
        tail.extend_from_slice(&b);
        let ((pk, an), _) = feed(&[(&a[..30], 1), (&tail, 2)], Some(1));
        assert_eq!(pk.len(), 1);
        assert_eq!(pk[0].1, b"B sip:b SIP/2.0\r\n\r\n");
        let kinds: Vec<_> = an.iter().map(|a| a.1).collect();
        assert_eq!(kinds, ["hep_truncated", "hep_resync"], "{an:?}");
        assert!(an[1].2.starts_with("4 bytes skipped"), "{an:?}");
    }

    #[test]
    fn stream_bad_header_and_cut_end_are_anomalies() {
        let a = sip_packet(b"A sip:a SIP/2.0\r\n\r\n");
        let mut bytes = a.clone();
        bytes.extend_from_slice(b"HEP3\x00\x01garbage");
        bytes.extend_from_slice(&a[..10]);
        let ((pk, an), _) = feed(&[(&bytes, 1)], None);
        assert_eq!(pk.len(), 1);
        let kinds: Vec<_> = an.iter().map(|a| a.1).collect();
        assert_eq!(
            kinds,
            ["hep_malformed", "hep_resync", "hep_truncated"],
            "{an:?}"
        );
    }
}
