//! SCTP user-message reassembly (RFC 9260), for SIP over SCTP (RFC 4168):
//! the DATA chunks, and the I-DATA chunks of RFC 8260, of each association
//! direction are put back together into user messages.
//!
//! In: the SCTP packets of one file (common header + chunks, the payload of
//! IP protocol 132), in file order, each with its addresses, tunnels, frame
//! and capture time ([`Reassembler::packet`]); [`Reassembler::expire`] with
//! the capture time after each packet; [`Reassembler::finish`] at the end of
//! the file.
//! Out: through a callback, every complete user message
//! ([`SctpEvent::Message`]: direction, stream, PPID, bytes, the frame that
//! completed it and the frames that carried it) and anomalies
//! ([`SctpEvent::Anomaly`], stable snake_case ids in [`ANOMALY_IDS`]). A
//! packet whose common header or chunk layout is broken is an
//! [`SctpError`]: the caller counts it undecodable. The layout is checked
//! before anything else, so such a packet changes no state and emits
//! nothing.
//!
//! What it never does: verify the CRC32c checksum (often offloaded, so
//! wrong in captures); look inside a message (whether it is SIP is the
//! caller's business, by content: messages of every PPID are delivered
//! with their PPID, since SIP uses PPID 0, "unspecified", per RFC 4168 §5);
//! hold back a complete message for SSN order (messages are delivered as
//! they complete); hold more than its caps; or give up a fragment
//! silently.
//!
//! # Chunks
//! After the 12-byte common header (ports, verification tag, checksum),
//! chunks follow, each padded to 4 bytes (a missing pad after the last one
//! is tolerated). A chunk length below 4 or past the end of the packet,
//! 1 to 3 stray bytes after the last chunk, or a DATA (16 bytes), I-DATA
//! (20) or INIT / INIT ACK (20) chunk shorter than its fixed part is
//! malformed. DATA (type 0) and I-DATA (type 64) carry user data; INIT and
//! INIT ACK are read for their initiate tag; every other chunk (SACK,
//! HEARTBEAT, COOKIE ECHO, ...) is skipped. A DATA chunk without user data
//! is ignored with `sctp_empty_data`.
//!
//! # Fragments
//! A chunk with both B and E set is a whole message, delivered as a slice
//! of the packet (zero-copy). Otherwise it is copied and held:
//! - DATA: the fragments of a message have consecutive TSNs (RFC 9260
//!   §6.9). Runs of consecutive TSNs with the same stream, the same U flag
//!   and, for ordered messages, the same SSN are joined (a run never
//!   continues past an E or before a B); a run from a B to an E is the
//!   message, in TSN order. Unordered (U) fragments are joined by TSN alone
//!   (their SSN means nothing).
//! - I-DATA: fragments are grouped by stream, U flag and message id (MID)
//!   and ordered by fragment sequence number (FSN; the B fragment carries
//!   the PPID in that field and is FSN 0); the message is complete when
//!   FSN 0 through the E fragment's FSN are all present.
//!
//! Fragments may arrive in any order. The message is delivered when its
//! last missing fragment arrives; that frame is the completing one.
//!
//! # Duplicates
//! Each direction remembers the last [`TSN_WINDOW`] TSNs it accepted (TSNs
//! compared in serial-number arithmetic, so wrap-around is transparent). A
//! chunk whose TSN was seen (a retransmission) is ignored; one older than
//! the window is ignored with `sctp_stale_tsn` (it could be new data,
//! reordered further than any real sender's window). A direction that
//! carried no data for 5 timeouts and holds nothing is forgotten, TSNs
//! included.
//!
//! # Associations
//! Directions are keyed by tunnels and addresses ([`AssocKey`]). Each
//! remembers the verification tag of its packets that carry data. A new
//! association on the same addresses clears the direction's partial
//! messages (`sctp_reassembly_dropped`) and its TSN history, when
//! - an INIT or INIT ACK announces an initiate tag different from the one
//!   the opposite direction carries (an association restart), or
//! - a packet with data carries a different verification tag (the INIT was
//!   not captured).
//!
//! # Bounds
//! Held fragments are charged their bytes plus their bookkeeping (160
//! bytes per fragment, 1 KiB per partial message). When a
//! direction holds more than [`SctpLimits::max_pending_bytes_per_assoc`],
//! or all of them together more than [`SctpLimits::global_bytes`], the
//! oldest partial messages (of the direction, or of all) are dropped until
//! within the cap; a partial message older than [`SctpLimits::timeout_ns`]
//! of capture time is dropped by [`Reassembler::expire`]; beyond
//! [`SctpLimits::max_associations`] directions, the least recently active
//! eighth is forgotten. Each drop is one `sctp_reassembly_dropped` anomaly
//! naming the partial message, its bytes and its frames, attached to its
//! earliest frame.
//!
//! # Accounting
//! Every packet that is not an [`SctpError`] decoded fine: the caller
//! counts it `other`, and moves to `sip` the frames of
//! [`SctpEvent::Message::new_frames`] of the messages it finds to be SIP.
//! Each frame is listed in the `new_frames` of at most one message of the
//! file (the first delivered that lists it), so summing `new_frames.len()`
//! counts each frame once. A frame in no message's `new_frames` carried no
//! complete message: only other chunks, retransmissions, or fragments
//! dropped with an anomaly. (A frame carrying parts of two messages is
//! claimed by the first delivered even when only the other one is SIP;
//! SIP associations carry SIP only, so this is not expected to matter.)
//! Frames are the callers' numbers: when the packet was an IP datagram
//! reassembled from fragments, its other fragments are the caller's to
//! account for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use super::TunnelPath;

/// Every anomaly id this module emits.
pub const ANOMALY_IDS: &[&str] = &[
    "sctp_reassembly_dropped",
    "sctp_empty_data",
    "sctp_stale_tsn",
];

/// How many of the most recent TSNs of a direction are remembered to
/// recognise retransmissions.
pub const TSN_WINDOW: i64 = 1024;

/// Bookkeeping bytes charged per held fragment on top of its data (its map
/// entry, buffer header and frame reference), so that a flood of tiny
/// fragments cannot exceed the caps through overhead.
const FRAG_COST: usize = 160;

/// Bookkeeping bytes charged per partial message (its fragment map's first
/// node and its entries in the age and lookup maps).
const PARTIAL_COST: usize = 1024;

/// A direction that carried no data for this many times
/// [`SctpLimits::timeout_ns`] (and holds nothing) is forgotten.
const IDLE_FACTOR: i64 = 5;

/// Frames listed by name in a drop anomaly's detail.
const LISTED_FRAMES: usize = 16;

const CHUNK_DATA: u8 = 0;
const CHUNK_INIT: u8 = 1;
const CHUNK_INIT_ACK: u8 = 2;
const CHUNK_I_DATA: u8 = 64;

const FLAG_E: u8 = 0x01;
const FLAG_B: u8 = 0x02;
const FLAG_U: u8 = 0x04;

/// Bounds of the reassembler (per input file).
#[derive(Clone, Copy, Debug)]
pub struct SctpLimits {
    /// Bytes one association direction may hold in partial messages
    /// (default 1 MiB: data, plus 160 bytes per fragment and 1 KiB per
    /// partial message); also bounds the largest message it can
    /// reassemble.
    pub max_pending_bytes_per_assoc: usize,
    /// Bytes all directions together may hold (default 64 MiB).
    pub global_bytes: usize,
    /// Capture-time age (since its first fragment) after which a partial
    /// message is dropped (default 60 s, RFC 9260's default RTO.Max, so a
    /// fragment retransmitted after the longest backoff still completes
    /// it). A direction that carried no data for 5 times as long is
    /// forgotten.
    pub timeout_ns: i64,
    /// Association directions tracked at once (default 65 536; each costs
    /// about 400 bytes besides what it holds).
    pub max_associations: usize,
}

impl Default for SctpLimits {
    fn default() -> Self {
        SctpLimits {
            max_pending_bytes_per_assoc: 1 << 20,
            global_bytes: 64 << 20,
            timeout_ns: 60_000_000_000,
            max_associations: 1 << 16,
        }
    }
}

/// One direction of an SCTP association: the same key as a TCP direction.
pub type AssocKey = super::FlowKey;

/// What the reassembler reports.
#[derive(Debug)]
pub enum SctpEvent<'a> {
    /// A complete user message.
    Message {
        /// The direction it was sent in.
        key: AssocKey,
        /// Its stream.
        stream_id: u16,
        /// Its payload protocol identifier (0 = unspecified, which SIP
        /// uses; the value of the B fragment for a fragmented message).
        ppid: u32,
        /// The message (a slice of the packet when it was not fragmented).
        bytes: &'a [u8],
        /// The frame that completed it.
        frame: u64,
        /// Capture time of that frame, ns since the epoch.
        ts_ns: i64,
        /// Every frame that carried a fragment of it, ascending.
        frames: &'a [u64],
        /// The frames of `frames` not listed by any earlier message,
        /// ascending: summing their counts counts each frame once.
        new_frames: &'a [u64],
    },
    /// An anomaly (partial message dropped, chunk ignored).
    Anomaly {
        /// The frame it is attached to.
        frame: u64,
        /// Stable snake_case id, one of [`ANOMALY_IDS`].
        id: &'static str,
        /// Human detail.
        detail: String,
    },
}

/// A packet that is not a well-formed SCTP packet (the caller counts it
/// undecodable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct SctpError {
    kind: SctpErrorKind,
}

impl SctpError {
    /// What is wrong.
    pub fn kind(&self) -> &SctpErrorKind {
        &self.kind
    }
}

/// What is wrong with a malformed SCTP packet. Offsets count from the start
/// of the common header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SctpErrorKind {
    /// Fewer bytes than the 12-byte common header.
    #[error("sctp packet of {len} bytes is shorter than the 12-byte common header")]
    ShortHeader {
        /// Bytes present.
        len: usize,
    },
    /// 1 to 3 bytes after the last chunk, too few for a chunk header.
    #[error("sctp packet has {len} stray bytes at offset {offset}, too few for a chunk")]
    TrailingBytes {
        /// Where they start.
        offset: usize,
        /// How many.
        len: usize,
    },
    /// A chunk length below 4 or past the end of the packet.
    #[error(
        "sctp chunk type {chunk_type} at offset {offset} has length {length} with {available} bytes left"
    )]
    BadChunkLength {
        /// Where the chunk starts.
        offset: usize,
        /// Its type.
        chunk_type: u8,
        /// Its length field.
        length: u16,
        /// Bytes from the chunk start to the end of the packet.
        available: usize,
    },
    /// A DATA, I-DATA, INIT or INIT ACK chunk shorter than its fixed part.
    #[error(
        "sctp chunk type {chunk_type} at offset {offset} has length {length}, below its minimum {min}"
    )]
    ShortChunk {
        /// Where the chunk starts.
        offset: usize,
        /// Its type.
        chunk_type: u8,
        /// Its length field.
        length: u16,
        /// The length of its fixed part.
        min: u16,
    },
}

impl From<SctpErrorKind> for SctpError {
    fn from(kind: SctpErrorKind) -> Self {
        SctpError { kind }
    }
}

/// One chunk: its type, flags and value (the bytes after the 4-byte chunk
/// header, up to its length, without padding).
struct Chunk<'a> {
    ty: u8,
    flags: u8,
    value: &'a [u8],
}

/// The chunks of a packet, from `off` on; yields an error (once) for a
/// malformed one and stops there.
struct Chunks<'a> {
    b: &'a [u8],
    off: usize,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Chunk<'a>, SctpError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (b, off) = (self.b, self.off);
        if off >= b.len() {
            return None;
        }
        let available = b.len() - off;
        // Whatever happens, this is the last call unless the chunk is fine.
        self.off = b.len();
        if available < 4 {
            return Some(Err(SctpErrorKind::TrailingBytes {
                offset: off,
                len: available,
            }
            .into()));
        }
        let (ty, flags) = (b[off], b[off + 1]);
        let length = u16::from_be_bytes([b[off + 2], b[off + 3]]);
        let len = length as usize;
        if len < 4 || len > available {
            return Some(Err(SctpErrorKind::BadChunkLength {
                offset: off,
                chunk_type: ty,
                length,
                available,
            }
            .into()));
        }
        let min = match ty {
            CHUNK_DATA => 16,
            CHUNK_I_DATA | CHUNK_INIT | CHUNK_INIT_ACK => 20,
            _ => 4,
        };
        if length < min {
            return Some(Err(SctpErrorKind::ShortChunk {
                offset: off,
                chunk_type: ty,
                length,
                min,
            }
            .into()));
        }
        self.off = (off + len.next_multiple_of(4)).min(b.len());
        Some(Ok(Chunk {
            ty,
            flags,
            value: &b[off + 4..off + len],
        }))
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The last [`TSN_WINDOW`] TSNs of a direction, on a 64-bit line (the
/// "extended" TSN, unwrapped by serial-number arithmetic).
struct TsnWindow {
    /// Extended TSN of the highest TSN seen.
    top: i64,
    /// That TSN as sent.
    raw: u32,
    /// Bit `ext mod TSN_WINDOW` is set when `ext` was seen.
    bits: [u64; TSN_WINDOW as usize / 64],
}

enum Seen {
    New(i64),
    Duplicate,
    Stale,
}

impl TsnWindow {
    fn new(tsn: u32) -> TsnWindow {
        TsnWindow {
            // Far from 0, so that extended TSNs stay positive.
            top: 1 << 40,
            raw: tsn,
            bits: [0; TSN_WINDOW as usize / 64],
        }
    }

    fn slot(ext: i64) -> (usize, u64) {
        let i = ext.rem_euclid(TSN_WINDOW) as usize;
        (i / 64, 1 << (i % 64))
    }

    /// Records `tsn`; says whether it is new (with its extended value).
    fn see(&mut self, tsn: u32) -> Seen {
        let ext = self.top + tsn.wrapping_sub(self.raw) as i32 as i64;
        if ext > self.top {
            if ext - self.top >= TSN_WINDOW {
                self.bits = [0; TSN_WINDOW as usize / 64];
            } else {
                for x in self.top + 1..=ext {
                    let (w, m) = Self::slot(x);
                    self.bits[w] &= !m;
                }
            }
            self.top = ext;
            self.raw = tsn;
        } else if ext <= self.top - TSN_WINDOW {
            return Seen::Stale;
        }
        let (w, m) = Self::slot(ext);
        if self.bits[w] & m != 0 {
            return Seen::Duplicate;
        }
        self.bits[w] |= m;
        Seen::New(ext)
    }
}

/// A held fragment.
struct Frag {
    data: Vec<u8>,
    frame: u64,
    tsn: u32,
    ppid: u32,
    b: bool,
    e: bool,
}

/// What ties the fragments of one message together besides the stream and
/// the U flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// DATA: the SSN for an ordered message, none for an unordered one.
    Data { ssn: Option<u16> },
    /// I-DATA: the message id.
    IData { mid: u32 },
}

/// The fields of a DATA (RFC 9260 §3.3.1) or I-DATA (RFC 8260 §2.1) chunk.
struct DataChunk<'c> {
    /// Beginning and end of a user message, unordered delivery.
    b: bool,
    e: bool,
    unordered: bool,
    tsn: u32,
    stream: u16,
    kind: Kind,
    /// Payload protocol identifier (0 for an I-DATA chunk that is not the
    /// first fragment).
    ppid: u32,
    /// Fragment sequence number of an I-DATA chunk (0 for the first).
    fsn: u32,
    data: &'c [u8],
}

impl<'c> DataChunk<'c> {
    fn of(c: &Chunk<'c>) -> DataChunk<'c> {
        let v = c.value;
        let (b, e, unordered) = (
            c.flags & FLAG_B != 0,
            c.flags & FLAG_E != 0,
            c.flags & FLAG_U != 0,
        );
        let (tsn, stream) = (be32(v, 0), be16(v, 4));
        let (kind, ppid, fsn, data) = if c.ty == CHUNK_DATA {
            let ssn = (!unordered).then(|| be16(v, 6));
            (Kind::Data { ssn }, be32(v, 8), 0, &v[12..])
        } else {
            let field = be32(v, 12);
            let (ppid, fsn) = if b { (field, 0) } else { (0, field) };
            (Kind::IData { mid: be32(v, 8) }, ppid, fsn, &v[16..])
        };
        DataChunk {
            b,
            e,
            unordered,
            tsn,
            stream,
            kind,
            ppid,
            fsn,
            data,
        }
    }
}

/// A partial message: fragments by extended TSN (DATA; always a run of
/// consecutive TSNs) or by FSN (I-DATA).
struct Partial {
    /// Age order (the oldest constituent's, after a merge).
    seq: u64,
    stream: u16,
    unordered: bool,
    kind: Kind,
    frags: BTreeMap<i64, Frag>,
    /// Charged bytes: data plus [`FRAG_COST`] per fragment plus
    /// [`PARTIAL_COST`].
    charged: usize,
    first_ts: i64,
}

impl Partial {
    fn same_message(&self, o: &Partial) -> bool {
        self.stream == o.stream && self.unordered == o.unordered && self.kind == o.kind
    }

    fn first(&self) -> (i64, &Frag) {
        let (k, f) = self.frags.first_key_value().expect("never empty");
        (*k, f)
    }

    fn last(&self) -> (i64, &Frag) {
        let (k, f) = self.frags.last_key_value().expect("never empty");
        (*k, f)
    }

    /// From a B to an E with nothing missing in between.
    fn complete(&self) -> bool {
        let ((fk, f), (lk, l)) = (self.first(), self.last());
        f.b && l.e && lk - fk + 1 == self.frags.len() as i64
    }

    /// Moves `o`'s fragments into `self`.
    fn absorb(&mut self, o: Partial) {
        self.seq = self.seq.min(o.seq);
        self.first_ts = self.first_ts.min(o.first_ts);
        self.charged += o.charged;
        self.frags.extend(o.frags);
    }

    fn data_bytes(&self) -> usize {
        self.frags.values().map(|f| f.data.len()).sum()
    }
}

/// One direction's state.
struct Dir {
    /// Verification tag of its packets with data.
    vtag: Option<u32>,
    tsns: Option<TsnWindow>,
    /// Partial messages by age.
    partials: BTreeMap<u64, Partial>,
    /// DATA partials: first extended TSN → seq.
    runs: BTreeMap<i64, u64>,
    /// I-DATA partials: (stream, unordered, MID) → seq.
    imsgs: HashMap<(u16, bool, u32), u64>,
    /// Charged bytes held.
    held: usize,
    /// Packet count when data last arrived (LRU order).
    last_tick: u64,
    last_ts: i64,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            vtag: None,
            tsns: None,
            partials: BTreeMap::new(),
            runs: BTreeMap::new(),
            imsgs: HashMap::new(),
            held: 0,
            last_tick: 0,
            last_ts: i64::MIN,
        }
    }

    fn index(&mut self, p: &Partial) {
        match p.kind {
            Kind::Data { .. } => {
                self.runs.insert(p.first().0, p.seq);
            }
            Kind::IData { mid } => {
                self.imsgs.insert((p.stream, p.unordered, mid), p.seq);
            }
        }
    }

    /// Takes a partial out of the direction's maps and the global age
    /// order; its bytes stay charged.
    fn detach(&mut self, seq: u64, sh: &mut Shared) -> Partial {
        let p = self.partials.remove(&seq).expect("partial present");
        match p.kind {
            Kind::Data { .. } => {
                self.runs.remove(&p.first().0);
            }
            Kind::IData { mid } => {
                self.imsgs.remove(&(p.stream, p.unordered, mid));
            }
        }
        sh.order.remove(&seq);
        p
    }

    fn attach(&mut self, key: AssocKey, p: Partial, sh: &mut Shared) -> u64 {
        let seq = p.seq;
        self.index(&p);
        sh.order.insert(seq, key);
        self.partials.insert(seq, p);
        seq
    }

    /// Takes a partial out for good, uncharging its bytes (its frames stay
    /// referenced until [`Shared::release`]).
    fn remove(&mut self, seq: u64, sh: &mut Shared) -> Partial {
        let p = self.detach(seq, sh);
        self.held -= p.charged;
        sh.held_total -= p.charged;
        p
    }

    /// Holds the one-fragment partial `p`, joined with the partials it
    /// continues; returns the seq of the result, or `None` when `p`'s
    /// fragment is already held (an I-DATA retransmission).
    fn insert(&mut self, key: AssocKey, p: Partial, sh: &mut Shared) -> Option<u64> {
        let (k, f) = p.first();
        let mut joined = Vec::new();
        match p.kind {
            Kind::Data { .. } => {
                if let Some((_, &s)) = self.runs.range(..k).next_back() {
                    let l = &self.partials[&s];
                    let (lk, lf) = l.last();
                    if lk == k - 1 && l.same_message(&p) && !lf.e && !f.b {
                        joined.push(s);
                    }
                }
                if let Some(&s) = self.runs.get(&(k + 1)) {
                    let r = &self.partials[&s];
                    if r.same_message(&p) && !r.first().1.b && !f.e {
                        joined.push(s);
                    }
                }
            }
            Kind::IData { mid } => {
                if let Some(&s) = self.imsgs.get(&(p.stream, p.unordered, mid)) {
                    if self.partials[&s].frags.contains_key(&k) {
                        return None;
                    }
                    joined.push(s);
                }
            }
        }
        self.held += p.charged;
        sh.held_total += p.charged;
        *sh.frame_refs.entry(f.frame).or_insert(0) += 1;
        let mut all: Vec<Partial> = joined.into_iter().map(|s| self.detach(s, sh)).collect();
        all.push(p);
        // The largest absorbs the others (no quadratic copying).
        let big = (0..all.len())
            .max_by_key(|&i| all[i].frags.len())
            .expect("not empty");
        let mut merged = all.swap_remove(big);
        // The absorbed partials' own bookkeeping is gone.
        let freed = all.len() * PARTIAL_COST;
        for o in all {
            merged.absorb(o);
        }
        merged.charged -= freed;
        self.held -= freed;
        sh.held_total -= freed;
        Some(self.attach(key, merged, sh))
    }
}

/// State shared by all directions: the age order, the byte total and the
/// frame bookkeeping for [`SctpEvent::Message::new_frames`].
struct Shared {
    /// Every partial message by seq (age), with its direction.
    order: BTreeMap<u64, AssocKey>,
    next_seq: u64,
    held_total: usize,
    /// Frame → held fragments it carried.
    frame_refs: HashMap<u64, u32>,
    /// Frames listed by a message that still have held fragments.
    reported: HashSet<u64>,
    /// The frame being decoded, and whether a message listed it.
    cur_frame: Option<u64>,
    cur_reported: bool,
}

impl Shared {
    fn is_reported(&self, f: u64) -> bool {
        self.reported.contains(&f) || (self.cur_frame == Some(f) && self.cur_reported)
    }

    /// Fills `new` with the frames of `frames` not reported yet, and marks
    /// them all reported. Call before [`Shared::release`].
    fn report(&mut self, frames: &[u64], new: &mut Vec<u64>) {
        for &f in frames {
            if !self.is_reported(f) {
                new.push(f);
            }
            if self.cur_frame == Some(f) {
                self.cur_reported = true;
            } else {
                // Held fragments reference it (this message's at least);
                // `release` forgets it once none do.
                self.reported.insert(f);
            }
        }
    }

    /// Forgets the fragments of a partial taken out.
    fn release(&mut self, p: &Partial) {
        for f in p.frags.values() {
            let n = self.frame_refs.get_mut(&f.frame).expect("referenced");
            *n -= 1;
            if *n == 0 {
                self.frame_refs.remove(&f.frame);
                self.reported.remove(&f.frame);
            }
        }
    }
}

/// Reused buffers for reassembled messages.
#[derive(Default)]
struct Scratch {
    bytes: Vec<u8>,
    frames: Vec<u64>,
    new: Vec<u64>,
}

/// Output callback of the reassembler.
type Out<'o> = dyn FnMut(SctpEvent<'_>) + 'o;

/// Per-file SCTP reassembly state: the association directions, their
/// partial messages and the caps.
pub struct Reassembler {
    limits: SctpLimits,
    dirs: HashMap<AssocKey, Dir>,
    sh: Shared,
    tick: u64,
    next_sweep: Option<i64>,
    scratch: Scratch,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(SctpLimits::default())
    }
}

impl Reassembler {
    /// An empty reassembler with the given limits.
    pub fn new(limits: SctpLimits) -> Self {
        Reassembler {
            limits,
            dirs: HashMap::new(),
            sh: Shared {
                order: BTreeMap::new(),
                next_seq: 0,
                held_total: 0,
                frame_refs: HashMap::new(),
                reported: HashSet::new(),
                cur_frame: None,
                cur_reported: false,
            },
            tick: 0,
            next_sweep: None,
            scratch: Scratch::default(),
        }
    }

    /// Feeds one SCTP packet: `payload` is the common header and chunks,
    /// carried by IP protocol 132 from `src_ip` to `dst_ip` inside
    /// `tunnels`. Calls `out` for every message it completes (in chunk
    /// order) and for anomalies. An error means the packet is malformed
    /// (the caller counts it undecodable); nothing was emitted or changed
    /// then.
    pub fn packet(
        &mut self,
        tunnels: TunnelPath,
        src_ip: IpAddr,
        dst_ip: IpAddr,
        payload: &[u8],
        at: super::At,
        out: &mut Out<'_>,
    ) -> Result<(), SctpError> {
        let (frame, ts_ns) = (at.frame, at.ts_ns);
        if payload.len() < 12 {
            return Err(SctpErrorKind::ShortHeader { len: payload.len() }.into());
        }
        for c in (Chunks {
            b: payload,
            off: 12,
        }) {
            c?;
        }
        let key = AssocKey {
            tunnels,
            src: SocketAddr::new(src_ip, be16(payload, 0)),
            dst: SocketAddr::new(dst_ip, be16(payload, 2)),
        };
        let vtag = be32(payload, 4);
        self.tick += 1;
        if self.sh.cur_frame != Some(frame) {
            self.sh.cur_frame = Some(frame);
            self.sh.cur_reported = false;
        }
        let mut entered = false;
        for c in (Chunks {
            b: payload,
            off: 12,
        })
        .flatten()
        {
            match c.ty {
                CHUNK_DATA | CHUNK_I_DATA => {
                    if !entered {
                        self.enter(key, vtag, frame, ts_ns, out);
                        entered = true;
                    }
                    self.data(key, &c, frame, ts_ns, out);
                }
                CHUNK_INIT | CHUNK_INIT_ACK => {
                    self.init(key.reverse(), be32(c.value, 0), c.ty, frame, out);
                }
                _ => {}
            }
        }
        if self.sh.cur_reported && self.sh.frame_refs.contains_key(&frame) {
            self.sh.reported.insert(frame);
        }
        Ok(())
    }

    /// Capture-time housekeeping, to call after each packet: drops the
    /// partial messages older than the timeout, and forgets directions
    /// that hold nothing and carried no data for 5 timeouts (checked every
    /// quarter timeout).
    pub fn expire(&mut self, now_ns: i64, out: &mut Out<'_>) {
        let timeout = self.limits.timeout_ns;
        while let Some((&seq, &key)) = self.sh.order.first_key_value() {
            let p = &self.dirs[&key].partials[&seq];
            if now_ns.saturating_sub(p.first_ts) <= timeout {
                break;
            }
            let why = format!("not completed within {}", secs(timeout));
            self.drop_partial(key, seq, &why, out);
        }
        let interval = (timeout / 4).max(1);
        match self.next_sweep {
            Some(t) if now_ns < t => return,
            _ => self.next_sweep = Some(now_ns.saturating_add(interval)),
        }
        let idle = timeout.saturating_mul(IDLE_FACTOR);
        self.dirs
            .retain(|_, d| !d.partials.is_empty() || now_ns.saturating_sub(d.last_ts) <= idle);
    }

    /// Ends the file: every partial message still held is dropped, oldest
    /// first.
    pub fn finish(mut self, out: &mut Out<'_>) {
        while let Some((&seq, &key)) = self.sh.order.first_key_value() {
            self.drop_partial(key, seq, "end of capture", out);
        }
    }

    /// Bytes held now (data plus bookkeeping), all directions together.
    pub fn held_bytes(&self) -> usize {
        self.sh.held_total
    }

    /// Association directions tracked now.
    pub fn associations(&self) -> usize {
        self.dirs.len()
    }

    /// Checks the bookkeeping: charges, age order, frame references.
    #[cfg(test)]
    fn check(&self) {
        let mut refs: HashMap<u64, u32> = HashMap::new();
        let mut total = 0;
        for (k, d) in &self.dirs {
            let mut held = 0;
            for (seq, p) in &d.partials {
                assert_eq!(p.seq, *seq);
                assert_eq!(self.sh.order.get(seq), Some(k));
                let n = p.frags.len();
                assert_eq!(p.charged, p.data_bytes() + n * FRAG_COST + PARTIAL_COST);
                if let Kind::Data { .. } = p.kind {
                    assert_eq!(d.runs.get(&p.first().0), Some(seq));
                    assert_eq!(p.last().0 - p.first().0 + 1, n as i64, "contiguous");
                }
                for f in p.frags.values() {
                    *refs.entry(f.frame).or_insert(0) += 1;
                }
                held += p.charged;
            }
            assert_eq!(d.runs.len() + d.imsgs.len(), d.partials.len());
            assert_eq!(d.held, held);
            total += held;
        }
        assert_eq!(self.sh.held_total, total);
        assert_eq!(
            self.sh.order.len(),
            self.dirs.values().map(|d| d.partials.len()).sum::<usize>()
        );
        assert_eq!(self.sh.frame_refs, refs);
        assert!(self.sh.reported.iter().all(|f| refs.contains_key(f)));
    }

    /// Finds or creates the direction of a packet with data; a different
    /// verification tag starts a new association.
    fn enter(&mut self, key: AssocKey, vtag: u32, frame: u64, ts_ns: i64, out: &mut Out<'_>) {
        if !self.dirs.contains_key(&key) {
            if self.dirs.len() >= self.limits.max_associations.max(1) {
                self.evict(frame, out);
            }
            self.dirs.insert(key, Dir::new());
        }
        let tick = self.tick;
        let dir = self.dirs.get_mut(&key).expect("inserted above");
        dir.last_tick = tick;
        dir.last_ts = dir.last_ts.max(ts_ns);
        match dir.vtag {
            Some(v) if v != vtag => {
                let why = format!(
                    "verification tag changed from 0x{v:08x} to 0x{vtag:08x} at frame {frame}"
                );
                self.clear(key, &why, out);
            }
            _ => {}
        }
        self.dirs.get_mut(&key).expect("present").vtag = Some(vtag);
    }

    /// An INIT or INIT ACK sent against direction `rev`, announcing the
    /// tag `rev`'s packets will carry.
    fn init(&mut self, rev: AssocKey, tag: u32, ty: u8, frame: u64, out: &mut Out<'_>) {
        let Some(dir) = self.dirs.get_mut(&rev) else {
            return;
        };
        match dir.vtag {
            Some(v) if v != tag => {
                let name = if ty == CHUNK_INIT { "INIT" } else { "INIT ACK" };
                let why = format!("association restart: {name} with a new tag at frame {frame}");
                self.clear(rev, &why, out);
            }
            _ => {}
        }
        self.dirs.get_mut(&rev).expect("present").vtag = Some(tag);
    }

    /// Drops a direction's partial messages and TSN history.
    fn clear(&mut self, key: AssocKey, why: &str, out: &mut Out<'_>) {
        while let Some(&seq) = self.dirs[&key].partials.keys().next() {
            self.drop_partial(key, seq, why, out);
        }
        self.dirs.get_mut(&key).expect("present").tsns = None;
    }

    /// Forgets the least recently active eighth of the directions.
    fn evict(&mut self, frame: u64, out: &mut Out<'_>) {
        let mut lru: Vec<(u64, AssocKey)> =
            self.dirs.iter().map(|(k, d)| (d.last_tick, *k)).collect();
        let n = (lru.len() / 8).max(1);
        lru.select_nth_unstable_by_key(n - 1, |e| e.0);
        lru.truncate(n);
        lru.sort_unstable_by_key(|e| e.0);
        let why = format!(
            "association table full ({} directions) at frame {frame}",
            self.limits.max_associations
        );
        for (_, k) in lru {
            self.clear(k, &why, out);
            self.dirs.remove(&k);
        }
    }

    /// One DATA or I-DATA chunk of direction `key` (which exists).
    fn data(&mut self, key: AssocKey, c: &Chunk<'_>, frame: u64, ts_ns: i64, out: &mut Out<'_>) {
        let d = DataChunk::of(c);
        if d.data.is_empty() {
            out(SctpEvent::Anomaly {
                frame,
                id: "sctp_empty_data",
                detail: format!(
                    "{key} stream {} TSN {}: chunk without user data, ignored",
                    d.stream, d.tsn
                ),
            });
            return;
        }
        let Some(ext) = self.new_tsn(key, &d, frame, out) else {
            return;
        };
        if d.b && d.e {
            let frames = [frame];
            let is_new = !self.sh.is_reported(frame);
            self.sh.cur_reported = true;
            out(SctpEvent::Message {
                key,
                stream_id: d.stream,
                ppid: d.ppid,
                bytes: d.data,
                frame,
                ts_ns,
                frames: &frames,
                new_frames: if is_new { &frames } else { &[] },
            });
            return;
        }
        let seq = self.sh.next_seq;
        self.sh.next_seq += 1;
        let at = match d.kind {
            Kind::Data { .. } => ext,
            Kind::IData { .. } => d.fsn as i64,
        };
        let p = Partial {
            seq,
            stream: d.stream,
            unordered: d.unordered,
            kind: d.kind,
            frags: BTreeMap::from([(
                at,
                Frag {
                    data: d.data.to_vec(),
                    frame,
                    tsn: d.tsn,
                    ppid: d.ppid,
                    b: d.b,
                    e: d.e,
                },
            )]),
            charged: d.data.len() + FRAG_COST + PARTIAL_COST,
            first_ts: ts_ns,
        };
        let dir = self.dirs.get_mut(&key).expect("entered");
        let Some(seq) = dir.insert(key, p, &mut self.sh) else {
            return;
        };
        if dir.partials[&seq].complete() {
            self.deliver(key, seq, frame, ts_ns, out);
            return;
        }
        self.within_caps(key, frame, out);
    }

    /// The extended TSN of chunk `d` when it is new in its direction's
    /// window; `None` for a duplicate or one too far behind (reported).
    fn new_tsn(
        &mut self,
        key: AssocKey,
        d: &DataChunk<'_>,
        frame: u64,
        out: &mut Out<'_>,
    ) -> Option<i64> {
        let dir = self.dirs.get_mut(&key).expect("entered");
        let seen = match &mut dir.tsns {
            None => {
                let mut w = TsnWindow::new(d.tsn);
                let s = w.see(d.tsn);
                dir.tsns = Some(w);
                s
            }
            Some(w) => w.see(d.tsn),
        };
        match seen {
            Seen::New(ext) => Some(ext),
            Seen::Duplicate => None,
            Seen::Stale => {
                out(SctpEvent::Anomaly {
                    frame,
                    id: "sctp_stale_tsn",
                    detail: format!(
                        "{key} stream {} TSN {}: more than {TSN_WINDOW} TSNs behind the highest seen, ignored",
                        d.stream, d.tsn
                    ),
                });
                None
            }
        }
    }

    /// The per-association and global caps on held fragments: the oldest
    /// partial messages are dropped until within them.
    fn within_caps(&mut self, key: AssocKey, frame: u64, out: &mut Out<'_>) {
        let cap = self.limits.max_pending_bytes_per_assoc;
        while self.dirs[&key].held > cap {
            let seq = *self.dirs[&key].partials.keys().next().expect("holds bytes");
            let why = format!("per-association cap of {cap} bytes reached at frame {frame}");
            self.drop_partial(key, seq, &why, out);
        }
        let cap = self.limits.global_bytes;
        while self.sh.held_total > cap {
            let (&seq, &k) = self.sh.order.first_key_value().expect("holds bytes");
            let why = format!("global cap of {cap} bytes reached at frame {frame}");
            self.drop_partial(k, seq, &why, out);
        }
    }

    /// Emits the complete partial message `seq` of `key`.
    fn deliver(&mut self, key: AssocKey, seq: u64, frame: u64, ts_ns: i64, out: &mut Out<'_>) {
        let p = self
            .dirs
            .get_mut(&key)
            .expect("present")
            .remove(seq, &mut self.sh);
        let sc = &mut self.scratch;
        sc.bytes.clear();
        sc.frames.clear();
        sc.new.clear();
        for f in p.frags.values() {
            sc.bytes.extend_from_slice(&f.data);
            sc.frames.push(f.frame);
        }
        sc.frames.sort_unstable();
        sc.frames.dedup();
        self.sh.report(&sc.frames, &mut sc.new);
        self.sh.release(&p);
        out(SctpEvent::Message {
            key,
            stream_id: p.stream,
            ppid: p.first().1.ppid,
            bytes: &sc.bytes,
            frame,
            ts_ns,
            frames: &sc.frames,
            new_frames: &sc.new,
        });
    }

    /// Drops the partial message `seq` of `key` with an anomaly.
    fn drop_partial(&mut self, key: AssocKey, seq: u64, why: &str, out: &mut Out<'_>) {
        let p = self
            .dirs
            .get_mut(&key)
            .expect("present")
            .remove(seq, &mut self.sh);
        self.sh.release(&p);
        let mut frames: Vec<u64> = p.frags.values().map(|f| f.frame).collect();
        frames.sort_unstable();
        frames.dedup();
        let tsn = p.first().1.tsn;
        let what = match p.kind {
            Kind::Data { ssn: Some(ssn) } => format!("SSN {ssn}, from TSN {tsn}"),
            Kind::Data { ssn: None } => format!("unordered, from TSN {tsn}"),
            Kind::IData { mid } if p.unordered => format!("I-DATA unordered MID {mid}"),
            Kind::IData { mid } => format!("I-DATA MID {mid}"),
        };
        let mut list = frames
            .iter()
            .take(LISTED_FRAMES)
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if frames.len() > LISTED_FRAMES {
            list += &format!(" and {} more", frames.len() - LISTED_FRAMES);
        }
        out(SctpEvent::Anomaly {
            frame: frames[0],
            id: "sctp_reassembly_dropped",
            detail: format!(
                "{key} stream {} ({what}): partial message dropped ({why}): {} fragments, {} bytes, frames {list}",
                p.stream,
                p.frags.len(),
                p.data_bytes(),
            ),
        });
    }
}

/// A duration for anomaly details.
fn secs(ns: i64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{} s", ns / 1_000_000_000)
    } else if ns % 1_000_000 == 0 {
        format!("{} ms", ns / 1_000_000)
    } else {
        format!("{ns} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::At;

    /// An owned [`SctpEvent`], for comparisons.
    #[derive(Debug, PartialEq)]
    enum Ev {
        Msg {
            stream: u16,
            ppid: u32,
            bytes: Vec<u8>,
            frame: u64,
            frames: Vec<u64>,
            new: Vec<u64>,
        },
        Anomaly(u64, &'static str, String),
    }

    fn own(e: SctpEvent<'_>) -> Ev {
        match e {
            SctpEvent::Message {
                stream_id,
                ppid,
                bytes,
                frame,
                frames,
                new_frames,
                ..
            } => Ev::Msg {
                stream: stream_id,
                ppid,
                bytes: bytes.to_vec(),
                frame,
                frames: frames.to_vec(),
                new: new_frames.to_vec(),
            },
            SctpEvent::Anomaly { frame, id, detail } => Ev::Anomaly(frame, id, detail),
        }
    }

    fn msg(stream: u16, ppid: u32, bytes: &[u8], frame: u64, frames: &[u64], new: &[u64]) -> Ev {
        Ev::Msg {
            stream,
            ppid,
            bytes: bytes.to_vec(),
            frame,
            frames: frames.to_vec(),
            new: new.to_vec(),
        }
    }

    fn ids(evs: &[Ev]) -> Vec<&'static str> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Anomaly(_, id, _) => Some(*id),
                _ => None,
            })
            .collect()
    }

    const B: u8 = FLAG_B;
    const E: u8 = FLAG_E;
    const U: u8 = FLAG_U;
    const BE: u8 = FLAG_B | FLAG_E;

    /// A chunk: type, flags, length, value, padding.
    fn chunk(ty: u8, flags: u8, value: &[u8]) -> Vec<u8> {
        let len = 4 + value.len();
        let mut c = vec![ty, flags];
        c.extend_from_slice(&(len as u16).to_be_bytes());
        c.extend_from_slice(value);
        c.resize(len.next_multiple_of(4), 0);
        c
    }

    fn data(flags: u8, tsn: u32, stream: u16, ssn: u16, ppid: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = tsn.to_be_bytes().to_vec();
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&ssn.to_be_bytes());
        v.extend_from_slice(&ppid.to_be_bytes());
        v.extend_from_slice(payload);
        chunk(CHUNK_DATA, flags, &v)
    }

    /// `ppid_fsn` is the PPID for a B fragment, the FSN otherwise.
    fn idata(flags: u8, tsn: u32, stream: u16, mid: u32, ppid_fsn: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = tsn.to_be_bytes().to_vec();
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&mid.to_be_bytes());
        v.extend_from_slice(&ppid_fsn.to_be_bytes());
        v.extend_from_slice(payload);
        chunk(CHUNK_I_DATA, flags, &v)
    }

    /// INIT or INIT ACK: initiate tag, a_rwnd, streams, initial TSN.
    fn init(ty: u8, tag: u32) -> Vec<u8> {
        let mut v = tag.to_be_bytes().to_vec();
        v.extend_from_slice(&65535u32.to_be_bytes());
        v.extend_from_slice(&[0, 10, 0, 10]);
        v.extend_from_slice(&1u32.to_be_bytes());
        chunk(ty, 0, &v)
    }

    fn sack(cum_tsn: u32) -> Vec<u8> {
        let mut v = cum_tsn.to_be_bytes().to_vec();
        v.extend_from_slice(&65535u32.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 0]);
        chunk(3, 0, &v)
    }

    /// A packet 5060 → 5060 (checksum left 0: never verified).
    fn pkt(vtag: u32, chunks: &[Vec<u8>]) -> Vec<u8> {
        let mut p = vec![0x13, 0xc4, 0x13, 0xc4];
        p.extend_from_slice(&vtag.to_be_bytes());
        p.extend_from_slice(&[0; 4]);
        for c in chunks {
            p.extend_from_slice(c);
        }
        p
    }

    const A: &str = "10.0.0.1";
    const Z: &str = "10.0.0.2";

    /// Feeds a packet from `src` to `dst` at frame `frame` (1 ms apart).
    fn feed_from(
        r: &mut Reassembler,
        src: &str,
        dst: &str,
        p: &[u8],
        frame: u64,
    ) -> Result<Vec<Ev>, SctpError> {
        let mut evs = Vec::new();
        r.packet(
            TunnelPath::default(),
            src.parse().unwrap(),
            dst.parse().unwrap(),
            p,
            At {
                frame,
                ts_ns: frame as i64 * 1_000_000,
            },
            &mut |e| evs.push(own(e)),
        )?;
        Ok(evs)
    }

    fn feed(r: &mut Reassembler, p: &[u8], frame: u64) -> Vec<Ev> {
        feed_from(r, A, Z, p, frame).expect("well-formed")
    }

    fn finish(r: Reassembler) -> Vec<Ev> {
        let mut evs = Vec::new();
        r.finish(&mut |e| evs.push(own(e)));
        evs
    }

    #[test]
    fn two_data_chunks_in_one_packet_are_two_zero_copy_messages() {
        #[rustfmt::skip]
        let p: &[u8] = &[
            0x13, 0xc4, 0x13, 0xc4, 0x00, 0x00, 0xab, 0xcd, 0x00, 0x00, 0x00, 0x00,
            // DATA B+E, length 23: TSN 1, stream 0, SSN 0, PPID 0, "OPTIONS", 1 pad.
            0x00, 0x03, 0x00, 0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, b'O', b'P', b'T', b'I', b'O', b'N', b'S', 0x00,
            // DATA B+E, length 19: TSN 2, stream 1, SSN 0, PPID 5, "BYE", 1 pad.
            0x00, 0x03, 0x00, 0x13, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x05, b'B', b'Y', b'E', 0x00,
        ];
        let mut r = Reassembler::default();
        let mut evs = Vec::new();
        let range = p.as_ptr_range();
        r.packet(
            TunnelPath::default(),
            A.parse().unwrap(),
            Z.parse().unwrap(),
            p,
            At { frame: 7, ts_ns: 0 },
            &mut |e| {
                if let SctpEvent::Message { bytes, key, .. } = &e {
                    assert!(range.contains(&bytes.as_ptr()), "zero-copy");
                    assert_eq!(key.src, "10.0.0.1:5060".parse().unwrap());
                }
                evs.push(own(e))
            },
        )
        .unwrap();
        assert_eq!(
            evs,
            [
                msg(0, 0, b"OPTIONS", 7, &[7], &[7]),
                msg(1, 5, b"BYE", 7, &[7], &[]),
            ]
        );
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn message_in_three_fragments_completes_at_the_last_frame() {
        let mut r = Reassembler::default();
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(B, 10, 2, 4, 0, b"INVITE ")]), 1),
            []
        );
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(0, 11, 2, 4, 0, b"sip:bob ")]), 2),
            []
        );
        assert!(r.held_bytes() > 0);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(E, 12, 2, 4, 0, b"SIP/2.0")]), 3),
            [msg(
                2,
                0,
                b"INVITE sip:bob SIP/2.0",
                3,
                &[1, 2, 3],
                &[1, 2, 3]
            )]
        );
        assert_eq!(r.held_bytes(), 0);
        assert_eq!(finish(r), []);
    }

    #[test]
    fn fragments_out_of_order_are_joined_in_tsn_order() {
        let mut r = Reassembler::default();
        assert_eq!(feed(&mut r, &pkt(1, &[data(E, 12, 0, 0, 0, b"cc")]), 1), []);
        assert_eq!(feed(&mut r, &pkt(1, &[data(B, 10, 0, 0, 0, b"aa")]), 2), []);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(0, 11, 0, 0, 0, b"bb")]), 3),
            [msg(0, 0, b"aabbcc", 3, &[1, 2, 3], &[1, 2, 3])]
        );
    }

    #[test]
    fn retransmitted_fragments_and_messages_are_ignored() {
        let mut r = Reassembler::default();
        feed(&mut r, &pkt(1, &[data(B, 10, 0, 0, 0, b"aa")]), 1);
        assert_eq!(feed(&mut r, &pkt(1, &[data(B, 10, 0, 0, 0, b"aa")]), 2), []);
        feed(&mut r, &pkt(1, &[data(0, 11, 0, 0, 0, b"bb")]), 3);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(E, 12, 0, 0, 0, b"cc")]), 4),
            [msg(0, 0, b"aabbcc", 4, &[1, 3, 4], &[1, 3, 4])]
        );
        // A late copy of a fragment of the delivered message holds nothing.
        assert_eq!(feed(&mut r, &pkt(1, &[data(0, 11, 0, 0, 0, b"bb")]), 5), []);
        assert_eq!(r.held_bytes(), 0);
        // A whole message, retransmitted, is delivered once.
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(BE, 13, 0, 1, 0, b"ACK")]), 6),
            [msg(0, 0, b"ACK", 6, &[6], &[6])]
        );
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(BE, 13, 0, 1, 0, b"ACK")]), 7),
            []
        );
        assert_eq!(finish(r), []);
    }

    #[test]
    fn unordered_fragments_join_by_consecutive_tsns_whatever_their_ssn() {
        let mut r = Reassembler::default();
        // The SSN of unordered fragments is meaningless: here it differs.
        feed(&mut r, &pkt(1, &[data(U | B, 20, 3, 9, 0, b"un")]), 1);
        feed(&mut r, &pkt(1, &[data(U | E, 22, 3, 3, 0, b"ed")]), 2);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(U, 21, 3, 0, 0, b"order")]), 3),
            [msg(3, 0, b"unordered", 3, &[1, 2, 3], &[1, 2, 3])]
        );
        // A message starts at its B and ends at its E, even next to the
        // held end (TSN 24) or start (TSN 31) of another message.
        feed(&mut r, &pkt(1, &[data(U | E, 24, 3, 0, 0, b"lost B")]), 4);
        feed(&mut r, &pkt(1, &[data(U | B, 25, 3, 0, 0, b"x")]), 5);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(U | E, 26, 3, 0, 0, b"y")]), 6),
            [msg(3, 0, b"xy", 6, &[5, 6], &[5, 6])]
        );
        feed(&mut r, &pkt(1, &[data(U | B, 31, 3, 0, 0, b"p")]), 7);
        feed(&mut r, &pkt(1, &[data(U | E, 30, 3, 0, 0, b"lost B")]), 8);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(U | E, 32, 3, 0, 0, b"q")]), 9),
            [msg(3, 0, b"pq", 9, &[7, 9], &[7, 9])]
        );
        assert_eq!(ids(&finish(r)), ["sctp_reassembly_dropped"; 2]);
    }

    #[test]
    fn ordered_fragments_of_different_ssns_or_streams_never_join() {
        let mut r = Reassembler::default();
        feed(&mut r, &pkt(1, &[data(B, 30, 0, 1, 0, b"a")]), 1);
        assert_eq!(feed(&mut r, &pkt(1, &[data(E, 31, 0, 2, 0, b"b")]), 2), []);
        feed(&mut r, &pkt(1, &[data(B, 40, 0, 5, 0, b"c")]), 3);
        assert_eq!(feed(&mut r, &pkt(1, &[data(E, 41, 1, 5, 0, b"d")]), 4), []);
        // An ordered B next to an unordered E: different messages too.
        feed(&mut r, &pkt(1, &[data(B, 50, 0, 6, 0, b"e")]), 5);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(U | E, 51, 0, 6, 0, b"f")]), 6),
            []
        );
        assert_eq!(ids(&finish(r)), ["sctp_reassembly_dropped"; 6]);
    }

    #[test]
    fn idata_messages_interleave_and_join_by_fsn() {
        let mut r = Reassembler::default();
        let p = pkt(
            1,
            &[idata(B, 1, 1, 0, 0, b"ab"), idata(B, 2, 2, 0, 7, b"xy")],
        );
        assert_eq!(feed(&mut r, &p, 1), []);
        assert_eq!(feed(&mut r, &pkt(1, &[idata(E, 3, 1, 0, 2, b"ef")]), 2), []);
        assert_eq!(
            feed(&mut r, &pkt(1, &[idata(E, 4, 2, 0, 1, b"z")]), 3),
            [msg(2, 7, b"xyz", 3, &[1, 3], &[1, 3])]
        );
        // A retransmission (same TSN) changes nothing, nor does another
        // copy of a held FSN (the first copy wins).
        let p = pkt(
            1,
            &[idata(E, 3, 1, 0, 2, b"ef"), idata(E, 10, 1, 0, 2, b"XX")],
        );
        assert_eq!(feed(&mut r, &p, 4), []);
        assert_eq!(
            feed(&mut r, &pkt(1, &[idata(0, 5, 1, 0, 1, b"cd")]), 5),
            [msg(1, 0, b"abcdef", 5, &[1, 2, 5], &[2, 5])]
        );
        // Unordered MIDs are a space of their own.
        feed(&mut r, &pkt(1, &[idata(B, 6, 1, 0, 0, b"o")]), 6);
        feed(&mut r, &pkt(1, &[idata(U | B, 7, 1, 0, 0, b"u1")]), 7);
        assert_eq!(
            feed(&mut r, &pkt(1, &[idata(U | E, 8, 1, 0, 1, b"u2")]), 8),
            [msg(1, 0, b"u1u2", 8, &[7, 8], &[7, 8])]
        );
        assert_eq!(
            feed(&mut r, &pkt(1, &[idata(E, 9, 1, 0, 1, b"k")]), 9),
            [msg(1, 0, b"ok", 9, &[6, 9], &[6, 9])]
        );
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn sack_bundled_with_data_is_skipped() {
        let mut r = Reassembler::default();
        let p = pkt(1, &[sack(99), data(BE, 100, 0, 0, 0, b"MESSAGE")]);
        assert_eq!(feed(&mut r, &p, 1), [msg(0, 0, b"MESSAGE", 1, &[1], &[1])]);
        // A SACK alone (and a HEARTBEAT) produce nothing.
        let hb = chunk(4, 0, &[0, 1, 0, 8, 1, 2, 3, 4]);
        assert_eq!(feed(&mut r, &pkt(1, &[sack(100), hb]), 2), []);
    }

    #[test]
    fn malformed_packets_are_errors_that_change_nothing() {
        let mut r = Reassembler::default();
        let good = data(BE, 1, 0, 0, 0, b"hello");
        let kind = |p: &[u8], r: &mut Reassembler| feed_from(r, A, Z, p, 1).unwrap_err().kind;
        // Chunk length below 4, after a good DATA chunk.
        let mut p = pkt(1, std::slice::from_ref(&good));
        p.extend_from_slice(&[3, 0, 0, 3]);
        assert_eq!(
            kind(&p, &mut r),
            SctpErrorKind::BadChunkLength {
                offset: 12 + good.len(),
                chunk_type: 3,
                length: 3,
                available: 4
            }
        );
        // Chunk length past the end.
        let mut p = pkt(1, std::slice::from_ref(&good));
        p.extend_from_slice(&[0, 3, 0, 40, 0, 0, 0, 2]);
        assert!(matches!(
            kind(&p, &mut r),
            SctpErrorKind::BadChunkLength { length: 40, .. }
        ));
        // Stray bytes, a DATA chunk shorter than its header, a short header.
        let mut p = pkt(1, std::slice::from_ref(&good));
        p.extend_from_slice(&[0, 0]);
        assert!(matches!(
            kind(&p, &mut r),
            SctpErrorKind::TrailingBytes { len: 2, .. }
        ));
        let p = pkt(1, &[chunk(CHUNK_DATA, BE, &[0; 8])]);
        assert!(matches!(
            kind(&p, &mut r),
            SctpErrorKind::ShortChunk { min: 16, .. }
        ));
        assert_eq!(
            kind(&[0; 11], &mut r),
            SctpErrorKind::ShortHeader { len: 11 }
        );
        // The good chunk was never taken: its TSN is not a duplicate now.
        assert_eq!(
            feed(&mut r, &pkt(1, &[good]), 2),
            [msg(0, 0, b"hello", 2, &[2], &[2])]
        );
        // A header alone is fine: no chunks.
        assert_eq!(feed(&mut r, &pkt(1, &[]), 3), []);
        let e = feed_from(&mut r, A, Z, &[0; 11], 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sctp packet of 11 bytes is shorter than the 12-byte common header"
        );
    }

    #[test]
    fn data_without_user_data_is_an_anomaly() {
        let mut r = Reassembler::default();
        let p = pkt(1, &[data(BE, 1, 0, 0, 0, b"")]);
        assert_eq!(ids(&feed(&mut r, &p, 1)), ["sctp_empty_data"]);
    }

    #[test]
    fn a_frame_is_new_in_one_message_only() {
        let mut r = Reassembler::default();
        // Frame 1: a whole message Y, then the start of X.
        let p = pkt(1, &[data(BE, 1, 1, 0, 0, b"y"), data(B, 2, 0, 0, 0, b"x1")]);
        assert_eq!(feed(&mut r, &p, 1), [msg(1, 0, b"y", 1, &[1], &[1])]);
        // Frame 2: the end of X, then the start of W.
        let p = pkt(1, &[data(E, 3, 0, 0, 0, b"x2"), data(B, 4, 2, 0, 0, b"w1")]);
        assert_eq!(feed(&mut r, &p, 2), [msg(0, 0, b"x1x2", 2, &[1, 2], &[2])]);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(E, 5, 2, 0, 0, b"w2")]), 3),
            [msg(2, 0, b"w1w2", 3, &[2, 3], &[3])]
        );
    }

    #[test]
    fn tsns_wrap_around() {
        let mut r = Reassembler::default();
        feed(&mut r, &pkt(1, &[data(B, u32::MAX, 0, 0, 0, b"a")]), 1);
        feed(&mut r, &pkt(1, &[data(E, 1, 0, 0, 0, b"c")]), 2);
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(0, 0, 0, 0, 0, b"b")]), 3),
            [msg(0, 0, b"abc", 3, &[1, 2, 3], &[1, 2, 3])]
        );
    }

    #[test]
    fn tsn_older_than_the_window_is_stale() {
        let mut r = Reassembler::default();
        feed(&mut r, &pkt(1, &[data(BE, 5000, 0, 0, 0, b"a")]), 1);
        let late = 5000 - TSN_WINDOW as u32;
        assert_eq!(
            ids(&feed(&mut r, &pkt(1, &[data(BE, late, 0, 0, 0, b"b")]), 2)),
            ["sctp_stale_tsn"]
        );
        assert_eq!(
            feed(&mut r, &pkt(1, &[data(BE, late + 1, 0, 0, 0, b"c")]), 3),
            [msg(0, 0, b"c", 3, &[3], &[3])]
        );
    }

    #[test]
    fn init_with_a_new_tag_clears_partial_state() {
        let mut r = Reassembler::default();
        feed(&mut r, &pkt(0x1111, &[data(B, 100, 0, 0, 0, b"old")]), 1);
        // The peer retransmits an INIT with the tag A→Z already carries:
        // nothing happens.
        assert_eq!(
            feed_from(&mut r, Z, A, &pkt(0, &[init(CHUNK_INIT, 0x1111)]), 2).unwrap(),
            []
        );
        // The peer restarts with a new tag: the partial message is gone.
        let evs = feed_from(&mut r, Z, A, &pkt(0, &[init(CHUNK_INIT, 0x2222)]), 3).unwrap();
        assert_eq!(ids(&evs), ["sctp_reassembly_dropped"]);
        let Ev::Anomaly(frame, _, detail) = &evs[0] else {
            panic!()
        };
        assert_eq!(*frame, 1);
        assert!(detail.contains("association restart: INIT"), "{detail}");
        assert!(
            detail.contains("1 fragments, 3 bytes, frames 1"),
            "{detail}"
        );
        assert_eq!(r.held_bytes(), 0);
        // The next TSN does not complete the old message, and the TSN
        // history is fresh: TSN 100 is new again.
        assert_eq!(
            feed(&mut r, &pkt(0x2222, &[data(E, 101, 0, 0, 0, b"x")]), 4),
            []
        );
        assert_eq!(
            feed(&mut r, &pkt(0x2222, &[data(BE, 100, 1, 0, 0, b"new")]), 5),
            [msg(1, 0, b"new", 5, &[5], &[5])]
        );
        assert_eq!(ids(&finish(r)), ["sctp_reassembly_dropped"]);
    }

    #[test]
    fn init_ack_with_a_new_tag_clears_the_opposite_direction_too() {
        let mut r = Reassembler::default();
        feed(&mut r, &pkt(0x1111, &[data(B, 100, 0, 0, 0, b"old")]), 1);
        let p = pkt(0, &[init(CHUNK_INIT_ACK, 0x3333)]);
        let evs = feed_from(&mut r, Z, A, &p, 2).unwrap();
        assert_eq!(ids(&evs), ["sctp_reassembly_dropped"]);
        // An INIT in the other direction concerns Z→A, not A→Z.
        feed(&mut r, &pkt(0x3333, &[data(B, 7, 0, 0, 0, b"k")]), 3);
        assert_eq!(feed(&mut r, &pkt(0, &[init(CHUNK_INIT, 0x9999)]), 4), []);
        assert!(r.held_bytes() > 0);
    }

    #[test]
    fn new_verification_tag_without_init_clears_partial_state() {
        let mut r = Reassembler::default();
        feed(&mut r, &pkt(1, &[data(B, 100, 0, 0, 0, b"old")]), 1);
        let evs = feed(&mut r, &pkt(2, &[data(BE, 100, 0, 0, 0, b"new")]), 2);
        assert_eq!(evs.len(), 2);
        assert_eq!(ids(&evs), ["sctp_reassembly_dropped"]);
        assert_eq!(evs[1], msg(0, 0, b"new", 2, &[2], &[2]));
    }

    #[test]
    fn partial_messages_time_out() {
        let mut r = Reassembler::new(SctpLimits {
            timeout_ns: 1_000_000_000,
            ..SctpLimits::default()
        });
        feed(&mut r, &pkt(1, &[data(B, 1, 0, 0, 0, b"a")]), 1);
        let mut evs = Vec::new();
        r.expire(900_000_000, &mut |e| evs.push(own(e)));
        assert_eq!(evs, []);
        r.expire(1_100_000_000, &mut |e| evs.push(own(e)));
        assert_eq!(ids(&evs), ["sctp_reassembly_dropped"]);
        let Ev::Anomaly(1, _, detail) = &evs[0] else {
            panic!()
        };
        assert!(detail.contains("not completed within 1 s"), "{detail}");
        assert_eq!(r.held_bytes(), 0);
        // Idle directions holding nothing are forgotten.
        assert_eq!(r.associations(), 1);
        r.expire(10_000_000_000, &mut |e| evs.push(own(e)));
        assert_eq!(r.associations(), 0);
    }

    #[test]
    fn flood_of_unfinished_fragments_stays_within_the_caps_and_every_frame_is_dropped_once() {
        let limits = SctpLimits {
            max_pending_bytes_per_assoc: 16 << 10,
            global_bytes: 40 << 10,
            ..SctpLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let chunk = [b'x'; 1000];
        let mut dropped = Vec::new();
        let mut during = 0;
        let n = 5000u64;
        let mut reasons = HashSet::new();
        for frame in 1..=n {
            // Half of the fragments from one sender, so that both caps bind.
            let src = format!("10.0.1.{}", if frame % 2 == 0 { 0 } else { frame % 3 + 1 });
            // B-only fragments of ordered messages (new SSN each): never end.
            let p = pkt(1, &[data(B, frame as u32 * 2, 0, frame as u16, 0, &chunk)]);
            let mut out = |e: SctpEvent<'_>| match e {
                SctpEvent::Anomaly {
                    frame,
                    id: "sctp_reassembly_dropped",
                    detail,
                } => {
                    dropped.push(frame);
                    reasons.insert(detail.contains("per-association cap of 16384 bytes"));
                }
                e => panic!("unexpected {e:?}"),
            };
            r.packet(
                TunnelPath::default(),
                src.parse().unwrap(),
                Z.parse().unwrap(),
                &p,
                At { frame, ts_ns: 0 },
                &mut out,
            )
            .unwrap();
            assert!(r.held_bytes() <= 40 << 10);
            if frame % 97 == 0 {
                r.check();
            }
            for d in r.dirs.values() {
                assert!(d.held <= 16 << 10);
            }
        }
        assert_eq!(reasons.len(), 2, "both caps bind");
        during += dropped.len();
        assert!(during >= n as usize - 40, "drops happen along the way");
        r.finish(&mut |e| match e {
            SctpEvent::Anomaly { frame, .. } => dropped.push(frame),
            e => panic!("unexpected {e:?}"),
        });
        dropped.sort_unstable();
        assert_eq!(dropped, (1..=n).collect::<Vec<_>>(), "each frame once");
    }

    #[test]
    fn association_table_cap_forgets_the_least_recent() {
        let mut r = Reassembler::new(SctpLimits {
            max_associations: 8,
            ..SctpLimits::default()
        });
        let mut dropped = 0;
        for i in 0..20u64 {
            let src = format!("10.0.2.{i}");
            let p = pkt(1, &[data(B, 1, 0, 0, 0, b"a")]);
            let evs = feed_from(&mut r, &src, Z, &p, i + 1).unwrap();
            dropped += ids(&evs).len();
            assert!(r.associations() <= 8);
        }
        assert_eq!(dropped, 12);
        assert_eq!(ids(&finish(r)).len(), 8);
    }

    /// A xorshift32 generator: the random tests' fixed, repeatable choices.
    struct XorShift(u32);

    impl XorShift {
        /// The next value below `n`.
        fn below(&mut self, n: u32) -> u32 {
            let x = &mut self.0;
            *x ^= *x << 13;
            *x ^= *x >> 17;
            *x ^= *x << 5;
            *x % n
        }
    }

    /// Random traffic: messages of 1 to 4 fragments on 3 streams (DATA
    /// ordered and unordered, or interleaved I-DATA), TSNs in sequence;
    /// chunks sent 1 to 3 per packet, shuffled a little, some twice, some
    /// never. Every message delivered is one that was sent, once; every
    /// frame a message lists is new in exactly one message.
    fn random_traffic(interleaved: bool) {
        let mut rnd = XorShift(0x2545f491);
        let (sent, mut chunks) = random_chunks(interleaved, &mut rnd);
        for i in 0..chunks.len() - 1 {
            if rnd.below(4) == 0 {
                chunks.swap(i, i + 1);
            }
        }
        let mut r = Reassembler::new(SctpLimits {
            max_pending_bytes_per_assoc: 16 << 10,
            ..SctpLimits::default()
        });
        let (mut listed, mut new) = (HashSet::new(), Vec::new());
        let mut delivered = HashSet::new();
        let mut out = |e: SctpEvent<'_>| {
            if let SctpEvent::Message {
                ppid,
                bytes,
                frames,
                new_frames,
                ..
            } = e
            {
                assert_eq!(bytes, sent[ppid as usize], "message {ppid}");
                assert!(delivered.insert(ppid), "message {ppid} delivered twice");
                listed.extend(frames.iter().copied());
                new.extend_from_slice(new_frames);
            }
        };
        send_lossy(&mut r, &chunks, &mut rnd, &mut out);
        r.finish(&mut |_| {});
        let unique: HashSet<u64> = new.iter().copied().collect();
        assert_eq!(unique.len(), new.len(), "no frame is new twice");
        assert_eq!(unique, listed, "every listed frame is new once");
        assert!(delivered.len() > sent.len() / 2, "{}", delivered.len());
    }

    /// 3,000 messages of 1 to 4 fragments on 3 streams, in TSN order:
    /// the bytes of each message, and the chunks that carry them. With
    /// `interleaved`, up to 3 messages are sent at once, as I-DATA.
    fn random_chunks(interleaved: bool, rnd: &mut XorShift) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut sent: Vec<Vec<u8>> = Vec::new();
        // (id, stream, unordered, fragment, fragments): a message being sent.
        let mut active: Vec<(u32, u16, bool, u32, u32)> = Vec::new();
        let mut chunks = Vec::new();
        let mut tsn = 7u32;
        while sent.len() < 3000 || !active.is_empty() {
            if sent.len() < 3000
                && (active.is_empty() || (interleaved && active.len() < 3 && rnd.below(2) == 0))
            {
                let id = sent.len() as u32;
                sent.push(Vec::new());
                active.push((
                    id,
                    rnd.below(3) as u16,
                    rnd.below(3) == 0,
                    0,
                    1 + rnd.below(4),
                ));
            }
            let a = if interleaved {
                rnd.below(active.len() as u32) as usize
            } else {
                0
            };
            let (id, stream, unordered, i, n) = active[a];
            let mut flags = if unordered { U } else { 0 };
            if i == 0 {
                flags |= B;
            }
            if i == n - 1 {
                flags |= E;
            }
            let part = format!("<{id}.{i}>").into_bytes();
            sent[id as usize].extend_from_slice(&part);
            chunks.push(if interleaved {
                let field = if i == 0 { id } else { i };
                idata(flags, tsn, stream, id, field, &part)
            } else {
                data(flags, tsn, stream, id as u16, id, &part)
            });
            tsn = tsn.wrapping_add(1);
            if i + 1 == n {
                active.swap_remove(a);
            } else {
                active[a].3 += 1;
            }
        }
        (sent, chunks)
    }

    /// Sends `chunks` 1 to 3 per packet, one packet a frame; a tenth of
    /// the packets lose their last chunk, and a tenth carry again the chunk
    /// sent five before. Checks the reassembler after every packet.
    fn send_lossy(
        r: &mut Reassembler,
        chunks: &[Vec<u8>],
        rnd: &mut XorShift,
        out: &mut dyn FnMut(SctpEvent<'_>),
    ) {
        let (src, dst) = (A.parse().unwrap(), Z.parse().unwrap());
        let (mut frame, mut i) = (0, 0);
        while i < chunks.len() {
            let k = (1 + rnd.below(3) as usize).min(chunks.len() - i);
            let mut group: Vec<Vec<u8>> = chunks[i..i + k].to_vec();
            if rnd.below(10) == 0 {
                group.pop(); // lost
            }
            if rnd.below(10) == 0 {
                group.push(chunks[i.saturating_sub(5)].clone()); // retransmitted
            }
            i += k;
            frame += 1;
            let p = pkt(1, &group);
            r.packet(
                TunnelPath::default(),
                src,
                dst,
                &p,
                At { frame, ts_ns: 0 },
                out,
            )
            .unwrap();
            r.check();
        }
    }

    #[test]
    fn random_data_traffic_is_reassembled_and_counted_once() {
        random_traffic(false);
    }

    #[test]
    fn random_idata_traffic_is_reassembled_and_counted_once() {
        random_traffic(true);
    }
}
