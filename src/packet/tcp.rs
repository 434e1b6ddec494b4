//! TCP stream reassembly with bounds: per connection and direction, the
//! payload bytes in sequence order.
//!
//! In: the TCP [`Segment`]s of one file, in file order (sequence and
//! acknowledgment numbers, SYN/FIN/RST, payload, the addresses and tunnels
//! as a [`FlowKey`]); [`Reassembler::expire`] with the capture time after
//! each packet; [`Reassembler::finish`] at the end of the file.
//! Out: [`StreamEvent`]s through a callback, in the order things happen:
//! in-order [`StreamEvent::Data`]; [`StreamEvent::Gap`] for bytes that will
//! never arrive; [`StreamEvent::Reset`] when a direction's stream ends or a
//! new connection replaces it; the accounting of segments that delivered
//! nothing ([`StreamEvent::Duplicate`], [`StreamEvent::Dropped`]); and
//! [`StreamEvent::Anomaly`]s with stable snake_case ids ([`ANOMALY_IDS`]).
//!
//! What it never does: look inside the payload (framing SIP messages is
//! `sip::stream`'s job), hold more than its caps, or lose a byte silently:
//! every byte it gives up is a `Gap` with an anomaly, every segment is
//! accounted for.
//!
//! # Sequence numbers
//! Compared with `wrapping_sub` as `i32`, so wrap-around is transparent;
//! internally each direction counts a 64-bit stream offset from 0. A stream
//! starts after the SYN's ISN, or, without a SYN (capture started
//! mid-stream), at the first sequence number seen. A segment more than
//! 1 GiB away from the expected sequence number restarts the direction
//! (`tcp_seq_jump`).
//!
//! # Retransmissions and overlaps
//! The first copy of a byte wins. A segment whose bytes were all seen is a
//! [`StreamEvent::Duplicate`]; one that overlaps held (out-of-order) bytes
//! with different content is a `tcp_overlap_conflict`. Bytes already
//! delivered are not kept (the in-order path is zero-copy), so a
//! retransmission of delivered bytes is not compared, only ignored.
//!
//! # Gaps: when a missing range is given up
//! Out-of-order segments wait for the missing bytes before them. The
//! missing range is declared lost ([`StreamEvent::Gap`] plus a `tcp_gap`
//! anomaly with the byte count and reason), and what follows it is
//! delivered, when:
//! - the held bytes of the direction exceed
//!   [`TcpLimits::per_direction_ooo_bytes`] (oldest gaps first, until
//!   within the cap), or all directions together exceed
//!   [`TcpLimits::global_bytes`] (the directions holding the most are
//!   flushed until 7/8 of the cap);
//! - the peer acknowledges bytes past the gap (the receiver has them, the
//!   capture missed them) and held bytes or a FIN follow it (without that
//!   evidence the acknowledgment may just have been captured before the
//!   data);
//! - the connection is reset (RST), replaced (SYN with a new ISN), evicted,
//!   or idle for [`TcpLimits::idle_timeout_ns`] (missing bytes before a
//!   seen FIN included);
//! - the first missing range is older than [`TcpLimits::gap_timeout_ns`] of
//!   capture time (checked by [`Reassembler::expire`], which sweeps every
//!   quarter of the smaller timeout);
//! - the file ends ([`Reassembler::finish`]; missing bytes before a seen
//!   FIN included).
//!
//! A FIN alone declares nothing: retransmissions of missing data commonly
//! follow it. The direction ends (a `Reset`) once the bytes up to the FIN
//! are delivered.
//!
//! # Connections
//! Both directions of a 4-tuple (plus tunnels) share a connection. A SYN
//! with a different ISN on a known connection starts a new one: the old
//! directions are flushed and reset (anomaly `tcp_unexpected_syn` unless
//! the old connection had ended with FIN/RST or was idle). After an idle
//! period, a segment that does not continue the stream restarts the
//! direction. At most [`TcpLimits::max_connections`] are tracked; beyond
//! that the least recently active eighth is evicted.
//!
//! # Accounting
//! Every segment with payload ends in exactly one of: its new bytes are
//! delivered in `Data` events naming it as `carrier` (one or more events;
//! one if its bytes arrived in order); it carried nothing new (`Duplicate`);
//! its bytes were refused (`Dropped`, with an anomaly id). The one
//! exception: bytes held beyond a FIN are `Dropped` when the direction
//! closes even if other bytes of the same segment were delivered. Segments
//! without payload (pure ACKs, SYN, FIN) produce no accounting event.

use std::collections::BTreeMap;
use std::net::SocketAddr;

pub use super::FlowKey;
use super::TunnelPath;

/// Sequence distance beyond which a segment is not part of the stream
/// being followed (a new incarnation, or garbage).
const MAX_JUMP: i64 = 1 << 30;

/// Bookkeeping bytes charged per held piece on top of its payload, so that
/// a flood of tiny segments cannot exceed the caps through overhead.
const PIECE_COST: usize = 64;

/// Every anomaly id this module emits (in [`StreamEvent::Anomaly`] and
/// [`StreamEvent::Dropped`]).
pub const ANOMALY_IDS: &[&str] = &[
    "tcp_gap",
    "tcp_overlap_conflict",
    "tcp_unexpected_syn",
    "tcp_seq_jump",
    "tcp_late_segment",
    "tcp_rst_payload",
    "tcp_data_after_fin",
    "tcp_connection_evicted",
];

/// Bounds of the reassembler (per input file).
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Out-of-order bytes held per direction (default 1 MiB); each held
    /// piece is charged 64 bytes of overhead on top of its payload.
    pub per_direction_ooo_bytes: usize,
    /// Out-of-order bytes held across all connections (default 128 MiB;
    /// with `sip::stream`'s 128 MiB framing cap, 256 MiB in all).
    pub global_bytes: usize,
    /// Capture-time age after which the first missing range before held
    /// data is declared lost (default 30 s).
    pub gap_timeout_ns: i64,
    /// Capture-time silence after which a connection's state is dropped
    /// (default 300 s); a SYN after that starts a new connection without
    /// an anomaly.
    pub idle_timeout_ns: i64,
    /// Connections tracked at once (default 262 144).
    pub max_connections: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            per_direction_ooo_bytes: 1 << 20,
            global_bytes: 128 << 20,
            gap_timeout_ns: 30_000_000_000,
            idle_timeout_ns: 300_000_000_000,
            max_connections: 1 << 18,
        }
    }
}

/// One TCP segment, as decoded from a packet.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Its direction.
    pub key: FlowKey,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number, when the ACK flag is set.
    pub ack: Option<u32>,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// The TCP payload.
    pub payload: &'a [u8],
    /// The frame that carried it.
    pub frame: u64,
    /// Capture time of that frame, ns since the epoch.
    pub ts_ns: i64,
}

/// What the reassembler reports.
#[derive(Debug)]
pub enum StreamEvent<'a> {
    /// In-order bytes of one direction, all carried by segment `carrier`.
    /// `frame`/`ts_ns` is the segment whose arrival made them deliverable:
    /// the carrier itself for in-order data, the segment that filled the
    /// gap for data released from the out-of-order queue, and the carrier
    /// again for data released because the gap before it was given up.
    Data {
        /// The direction.
        key: FlowKey,
        /// The bytes (borrowed from the segment or the queue).
        bytes: &'a [u8],
        /// The frame that made them deliverable.
        frame: u64,
        /// Capture time of `frame`.
        ts_ns: i64,
        /// The frame whose payload the bytes are.
        carrier: u64,
    },
    /// `missing` bytes of this direction will never arrive (always after a
    /// `tcp_gap` anomaly saying why): the framer must resynchronise.
    Gap {
        /// The direction.
        key: FlowKey,
        /// Bytes lost.
        missing: u64,
        /// The frame at which the loss was decided.
        frame: u64,
    },
    /// This direction's stream ended (FIN reached, RST, idle, eviction, or
    /// a new connection on the same addresses): framer state resets.
    Reset {
        /// The direction.
        key: FlowKey,
        /// The frame at which it was decided.
        frame: u64,
    },
    /// A segment with payload that carried no new byte (retransmission).
    Duplicate {
        /// The direction.
        key: FlowKey,
        /// The segment's frame.
        frame: u64,
    },
    /// A segment whose payload was refused, with the anomaly saying why.
    Dropped {
        /// The direction.
        key: FlowKey,
        /// The segment's frame.
        frame: u64,
        /// Stable snake_case anomaly id.
        id: &'static str,
        /// Human detail.
        detail: String,
    },
    /// An anomaly (bytes lost, conflicting overlap, ...).
    Anomaly {
        /// The direction it concerns.
        key: FlowKey,
        /// The frame it is attached to.
        frame: u64,
        /// Stable snake_case anomaly id.
        id: &'static str,
        /// Human detail.
        detail: String,
    },
}

/// Both directions of a connection: the lower address is "direction 0".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ConnKey {
    tunnels: TunnelPath,
    lo: SocketAddr,
    hi: SocketAddr,
}

impl ConnKey {
    /// The connection of `k`, and the index of `k`'s direction in it.
    fn of(k: &FlowKey) -> (ConnKey, usize) {
        if k.src <= k.dst {
            let c = ConnKey {
                tunnels: k.tunnels,
                lo: k.src,
                hi: k.dst,
            };
            (c, 0)
        } else {
            let c = ConnKey {
                tunnels: k.tunnels,
                lo: k.dst,
                hi: k.src,
            };
            (c, 1)
        }
    }

    fn flow(&self, d: usize) -> FlowKey {
        let (src, dst) = if d == 0 {
            (self.lo, self.hi)
        } else {
            (self.hi, self.lo)
        };
        FlowKey {
            tunnels: self.tunnels,
            src,
            dst,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing seen yet.
    Fresh,
    /// Following the stream.
    Open,
    /// Ended by FIN or RST; later bytes at or after the end reopen it.
    Closed,
}

/// Out-of-order bytes waiting for the gap before them.
struct Held {
    data: Vec<u8>,
    frame: u64,
    ts_ns: i64,
}

/// One direction's state.
struct Dir {
    phase: Phase,
    /// The SYN's sequence number, when seen.
    isn: Option<u32>,
    /// Sequence number of the next byte expected.
    next: u32,
    /// Stream offset of the next byte expected.
    off: u64,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    /// Out-of-order pieces by stream offset; never overlapping, all at or
    /// after `off`.
    held: BTreeMap<u64, Held>,
    /// Payload plus [`PIECE_COST`] per piece.
    held_bytes: usize,
    /// When the current first gap was first seen.
    hole_since: i64,
    /// The most recent range declared lost, to recognise late segments.
    last_gap: Option<(u64, u64)>,
    last_frame: u64,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            phase: Phase::Fresh,
            isn: None,
            next: 0,
            off: 0,
            fin: None,
            held: BTreeMap::new(),
            held_bytes: 0,
            hole_since: 0,
            last_gap: None,
            last_frame: 0,
        }
    }

    /// Starts following a stream whose next byte is `next`.
    fn open(&mut self, next: u32, isn: Option<u32>) {
        debug_assert!(self.held.is_empty());
        self.phase = Phase::Open;
        self.isn = isn;
        self.next = next;
        self.off = 0;
        self.fin = None;
        self.last_gap = None;
    }
}

struct Conn {
    id: u64,
    last_ts: i64,
    dirs: [Dir; 2],
}

/// Buffers and totals shared by all connections.
struct Pool {
    held_total: usize,
    spare: Vec<Vec<u8>>,
    /// [`TcpLimits::per_direction_ooo_bytes`].
    per_direction_cap: usize,
}

impl Pool {
    fn buffer(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut v = self.spare.pop().unwrap_or_default();
        v.extend_from_slice(bytes);
        v
    }

    fn recycle(&mut self, mut v: Vec<u8>) {
        if self.spare.len() < 64 && v.capacity() <= 64 << 10 {
            v.clear();
            self.spare.push(v);
        }
    }
}

/// Output callback of the reassembler.
type Out<'o> = dyn FnMut(StreamEvent<'_>) + 'o;

/// Per-file TCP reassembly state: the connection table and its caps.
pub struct Reassembler {
    limits: TcpLimits,
    conns: rustc_hash::FxHashMap<ConnKey, Conn>,
    next_id: u64,
    next_sweep: Option<i64>,
    pool: Pool,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(TcpLimits::default())
    }
}

impl Reassembler {
    /// An empty reassembler with the given limits.
    pub fn new(limits: TcpLimits) -> Self {
        Reassembler {
            limits,
            conns: rustc_hash::FxHashMap::default(),
            next_id: 0,
            next_sweep: None,
            pool: Pool {
                held_total: 0,
                spare: Vec::new(),
                per_direction_cap: limits.per_direction_ooo_bytes,
            },
        }
    }

    /// Feeds one segment; calls `out` with what became deliverable, in
    /// stream order, and with the accounting and anomalies.
    pub fn segment(&mut self, seg: &Segment<'_>, out: &mut dyn FnMut(StreamEvent<'_>)) {
        let (ck, d) = ConnKey::of(&seg.key);
        if !self.conns.contains_key(&ck) {
            self.open_conn(ck, seg, out);
        }
        let conn = self.conns.get_mut(&ck).expect("inserted above");
        let idle = seg.ts_ns.saturating_sub(conn.last_ts) > self.limits.idle_timeout_ns;
        conn.last_ts = conn.last_ts.max(seg.ts_ns);
        let keys = [ck.flow(0), ck.flow(1)];
        let pool = &mut self.pool;
        if seg.rst {
            reset(conn, d, keys, pool, seg, out);
            return;
        }
        if seg.syn && conn.dirs[d].isn != Some(seg.seq) {
            syn(conn, d, keys, pool, seg, idle, out);
        }
        let [a, b] = &mut conn.dirs;
        let (dir, other) = if d == 0 { (a, b) } else { (b, a) };
        dir.last_frame = seg.frame;
        let data_seq = if seg.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        if !seg.payload.is_empty() || seg.fin {
            data(dir, keys[d], pool, seg, data_seq, idle, out);
        }
        if let Some(ack) = seg.ack {
            acked(other, keys[1 - d], pool, seg.frame, ack, out);
        }
        self.enforce_global(seg.frame, out);
    }

    /// A connection for `ck`, first seen in `seg`; when the table is full,
    /// the least recently active eighth of the connections goes first.
    fn open_conn(&mut self, ck: ConnKey, seg: &Segment<'_>, out: &mut Out<'_>) {
        if self.conns.len() >= self.limits.max_connections.max(1) {
            self.evict(seg, out);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            ck,
            Conn {
                id,
                last_ts: seg.ts_ns,
                dirs: [Dir::new(), Dir::new()],
            },
        );
    }

    /// Capture-time housekeeping, to call after each packet: gives up gaps
    /// older than the gap timeout and drops connections idle longer than
    /// the idle timeout (flushing and resetting their directions). Cheap:
    /// it looks at the table only every quarter of the smaller timeout.
    pub fn expire(&mut self, now_ns: i64, out: &mut dyn FnMut(StreamEvent<'_>)) {
        let interval = (self.limits.gap_timeout_ns.min(self.limits.idle_timeout_ns) / 4).max(1);
        match self.next_sweep {
            None => {
                self.next_sweep = Some(now_ns.saturating_add(interval));
                return;
            }
            Some(t) if now_ns < t => return,
            Some(_) => self.next_sweep = Some(now_ns.saturating_add(interval)),
        }
        let mut idle: Vec<(u64, ConnKey)> = Vec::new();
        let mut stale: Vec<(u64, ConnKey)> = Vec::new();
        for (k, c) in &self.conns {
            if now_ns.saturating_sub(c.last_ts) > self.limits.idle_timeout_ns {
                idle.push((c.id, *k));
            } else if c.dirs.iter().any(|d| {
                !d.held.is_empty()
                    && now_ns.saturating_sub(d.hole_since) > self.limits.gap_timeout_ns
            }) {
                stale.push((c.id, *k));
            }
        }
        idle.sort_unstable_by_key(|e| e.0);
        stale.sort_unstable_by_key(|e| e.0);
        for (_, ck) in stale {
            let conn = self.conns.get_mut(&ck).expect("listed above");
            for (i, dir) in conn.dirs.iter_mut().enumerate() {
                if dir.held.is_empty()
                    || now_ns.saturating_sub(dir.hole_since) <= self.limits.gap_timeout_ns
                {
                    continue;
                }
                let first = *dir.held.keys().next().expect("not empty");
                let frame = dir.last_frame;
                skip_to(
                    dir,
                    ck.flow(i),
                    &mut self.pool,
                    first,
                    frame,
                    "gap timeout",
                    out,
                );
                dir.hole_since = now_ns;
                close_if_fin(dir, ck.flow(i), &mut self.pool, frame, out);
            }
        }
        for (_, ck) in idle {
            let mut conn = self.conns.remove(&ck).expect("listed above");
            for (i, dir) in conn.dirs.iter_mut().enumerate() {
                let frame = dir.last_frame;
                end_dir(dir, ck.flow(i), &mut self.pool, frame, "idle timeout", out);
            }
        }
    }

    /// Ends the file: every gap still open is given up and the held bytes
    /// after it are delivered (no `Reset` is sent: the caller ends its
    /// framers itself).
    pub fn finish(mut self, out: &mut dyn FnMut(StreamEvent<'_>)) {
        let mut all: Vec<(u64, ConnKey)> = self.conns.iter().map(|(k, c)| (c.id, *k)).collect();
        all.sort_unstable_by_key(|e| e.0);
        for (_, ck) in all {
            let conn = self.conns.get_mut(&ck).expect("listed above");
            for (i, dir) in conn.dirs.iter_mut().enumerate() {
                let frame = dir.last_frame;
                flush(
                    dir,
                    ck.flow(i),
                    &mut self.pool,
                    frame,
                    "end of capture",
                    out,
                );
            }
        }
    }

    /// Out-of-order bytes held now (payload plus per-piece overhead), all
    /// connections together.
    pub fn held_bytes(&self) -> usize {
        self.pool.held_total
    }

    /// Connections tracked now.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// The largest per-direction held amount (tests check it against the
    /// cap).
    #[cfg(test)]
    pub(crate) fn max_dir_held(&self) -> usize {
        self.conns
            .values()
            .flat_map(|c| c.dirs.iter().map(|d| d.held_bytes))
            .max()
            .unwrap_or(0)
    }

    /// Flushes the directions holding the most until the global cap is
    /// met with some room (7/8 of it).
    fn enforce_global(&mut self, frame: u64, out: &mut Out<'_>) {
        if self.pool.held_total <= self.limits.global_bytes {
            return;
        }
        let target = self.limits.global_bytes / 8 * 7;
        let mut dirs: Vec<(usize, u64, usize, ConnKey)> = self
            .conns
            .iter()
            .flat_map(|(k, c)| {
                c.dirs
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| d.held_bytes > 0)
                    .map(move |(i, d)| (d.held_bytes, c.id, i, *k))
            })
            .collect();
        // Most held first; ties by connection age.
        dirs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        for (_, _, i, ck) in dirs {
            if self.pool.held_total <= target {
                break;
            }
            let conn = self.conns.get_mut(&ck).expect("listed above");
            let dir = &mut conn.dirs[i];
            flush(
                dir,
                ck.flow(i),
                &mut self.pool,
                frame,
                "global out-of-order cap reached",
                out,
            );
            close_if_fin(dir, ck.flow(i), &mut self.pool, frame, out);
        }
    }

    /// Drops the least recently active eighth of the connections.
    fn evict(&mut self, seg: &Segment<'_>, out: &mut Out<'_>) {
        let mut all: Vec<(i64, u64, ConnKey)> = self
            .conns
            .iter()
            .map(|(k, c)| (c.last_ts, c.id, *k))
            .collect();
        all.sort_unstable_by_key(|e| (e.0, e.1));
        let n = (all.len() / 8).max(1);
        for &(_, _, ck) in &all[..n] {
            let mut conn = self.conns.remove(&ck).expect("listed above");
            for (i, dir) in conn.dirs.iter_mut().enumerate() {
                end_dir(
                    dir,
                    ck.flow(i),
                    &mut self.pool,
                    seg.frame,
                    "connection table full",
                    out,
                );
            }
        }
        out(StreamEvent::Anomaly {
            key: seg.key,
            frame: seg.frame,
            id: "tcp_connection_evicted",
            detail: format!(
                "{n} least recently active TCP connections dropped (table cap {})",
                self.limits.max_connections
            ),
        });
    }
}

/// The payload (and FIN) part of a segment, for its direction.
fn data(
    dir: &mut Dir,
    key: FlowKey,
    pool: &mut Pool,
    seg: &Segment<'_>,
    data_seq: u32,
    idle: bool,
    out: &mut Out<'_>,
) {
    let len = seg.payload.len();
    match dir.phase {
        Phase::Fresh => dir.open(data_seq, None),
        Phase::Closed => {
            let rel = data_seq.wrapping_sub(dir.next) as i32 as i64;
            if len > 0 && rel >= 0 {
                // Bytes after the end: a new stream we did not see start.
                dir.open(data_seq, None);
            } else {
                if len > 0 {
                    out(StreamEvent::Duplicate {
                        key,
                        frame: seg.frame,
                    });
                }
                return;
            }
        }
        Phase::Open => {}
    }
    let mut rel = data_seq.wrapping_sub(dir.next) as i32 as i64;
    if rel.abs() > MAX_JUMP || (idle && rel != 0 && len > 0) {
        if !idle {
            out(StreamEvent::Anomaly {
                key,
                frame: seg.frame,
                id: "tcp_seq_jump",
                detail: format!(
                    "sequence number {data_seq} is {rel} bytes from the expected {}: stream restarted",
                    dir.next
                ),
            });
        }
        let reason = if idle {
            "stream resumed elsewhere after idle"
        } else {
            "sequence jump"
        };
        end_dir(dir, key, pool, seg.frame, reason, out);
        dir.open(data_seq, None);
        rel = 0;
    }
    let start = dir.off as i64 + rel;
    let end = start + len as i64;
    if len > 0 {
        segment_bytes(dir, key, pool, seg, start, end, out);
    }
    if seg.fin {
        let f = end.max(0) as u64;
        dir.fin = Some(dir.fin.map_or(f, |old| old.min(f)));
    }
    close_if_fin(dir, key, pool, seg.frame, out);
}

/// Places the payload bytes `[start, end)` (stream offsets, `start` may be
/// negative) of an open direction: delivers, holds, or reports them.
fn segment_bytes(
    dir: &mut Dir,
    key: FlowKey,
    pool: &mut Pool,
    seg: &Segment<'_>,
    start: i64,
    end: i64,
    out: &mut Out<'_>,
) {
    let off = dir.off as i64;
    if end <= off {
        return already_passed(dir, key, seg, start, end, out);
    }
    let mut s = start.max(off) as u64;
    let Some(e) = clip_at_fin(dir, key, seg, s, end as u64, out) else {
        return;
    };
    let bytes = |a: u64, z: u64| slice_at(seg, start, a, z);
    let was_empty = dir.held.is_empty();
    let mut direct = false;
    if s == dir.off {
        // In order: deliver straight from the segment up to the first held
        // piece (all of it when nothing is held: the fast path).
        let direct_end = dir.held.keys().next().map_or(e, |&k| k.min(e));
        if direct_end > s {
            out(StreamEvent::Data {
                key,
                bytes: bytes(s, direct_end),
                frame: seg.frame,
                ts_ns: seg.ts_ns,
                carrier: seg.frame,
            });
            advance(dir, direct_end - s);
            s = direct_end;
            direct = true;
        }
        if s == e {
            deliver_ready(dir, key, pool, Some((seg.frame, seg.ts_ns)), out);
            if !dir.held.is_empty() {
                dir.hole_since = seg.ts_ns;
            }
            return;
        }
    }
    // Out of order, or overlapping held pieces: hold the new parts, the
    // first copy of every byte wins.
    let (new_parts, conflict) = new_parts(dir, s, e, &bytes);
    if let Some((at, n, first)) = conflict {
        out(StreamEvent::Anomaly {
            key,
            frame: seg.frame,
            id: "tcp_overlap_conflict",
            detail: format!(
                "{n} bytes at stream offset {at} differ from the copy of frame {first}; the first copy is kept"
            ),
        });
    }
    if new_parts.is_empty() && !direct {
        // Nothing new and nothing was delivered directly above.
        out(StreamEvent::Duplicate {
            key,
            frame: seg.frame,
        });
        return;
    }
    for (a, z) in new_parts {
        hold(dir, pool, seg, bytes(a, z), a);
    }
    let before = dir.off;
    deliver_ready(dir, key, pool, Some((seg.frame, seg.ts_ns)), out);
    if was_empty || dir.off != before {
        dir.hole_since = seg.ts_ns;
    }
    within_cap(dir, key, pool, seg, out);
}

/// Bytes `[a, z)` of the segment whose payload starts at stream offset
/// `start`.
fn slice_at<'p>(seg: &Segment<'p>, start: i64, a: u64, z: u64) -> &'p [u8] {
    &seg.payload[(a as i64 - start) as usize..(z as i64 - start) as usize]
}

/// Bytes `[start, end)` wholly before the expected position: late (their
/// range was given up) or a duplicate.
fn already_passed(
    dir: &Dir,
    key: FlowKey,
    seg: &Segment<'_>,
    start: i64,
    end: i64,
    out: &mut Out<'_>,
) {
    let late = start < 0
        || dir
            .last_gap
            .is_some_and(|(a, b)| start < b as i64 && end > a as i64);
    if late {
        out(StreamEvent::Dropped {
            key,
            frame: seg.frame,
            id: "tcp_late_segment",
            detail: format!(
                "{} bytes arrived after their range was given up (stream start or a declared gap)",
                end - start
            ),
        });
    } else {
        out(StreamEvent::Duplicate {
            key,
            frame: seg.frame,
        });
    }
}

/// The end of bytes `[s, e)` once those after the FIN are cut off (with an
/// anomaly); `None` when all of them are (dropped).
fn clip_at_fin(
    dir: &Dir,
    key: FlowKey,
    seg: &Segment<'_>,
    s: u64,
    e: u64,
    out: &mut Out<'_>,
) -> Option<u64> {
    let Some(f) = dir.fin else {
        return Some(e);
    };
    if s >= f {
        out(StreamEvent::Dropped {
            key,
            frame: seg.frame,
            id: "tcp_data_after_fin",
            detail: format!("{} bytes after the FIN", e - s),
        });
        return None;
    }
    if e > f {
        out(StreamEvent::Anomaly {
            key,
            frame: seg.frame,
            id: "tcp_data_after_fin",
            detail: format!("{} bytes after the FIN ignored", e - f),
        });
        return Some(f);
    }
    Some(e)
}

/// A held byte range that a new copy contradicts: (stream offset, length,
/// frame of the held copy).
type Conflict = (u64, u64, u64);

/// The parts `[a, z)` of `[s, e)` not held yet, and the first held byte
/// range that the new copy contradicts.
fn new_parts<'p>(
    dir: &Dir,
    s: u64,
    e: u64,
    bytes: &dyn Fn(u64, u64) -> &'p [u8],
) -> (Vec<(u64, u64)>, Option<Conflict>) {
    let mut parts: Vec<(u64, u64)> = Vec::new();
    let mut conflict: Option<Conflict> = None;
    let mut cur = s;
    let lo = dir
        .held
        .range(..=s)
        .next_back()
        .map_or(s, |(&k, h)| if k + h.data.len() as u64 > s { k } else { s });
    for (&k, h) in dir.held.range(lo..e) {
        let pe = k + h.data.len() as u64;
        if k > cur {
            parts.push((cur, k.min(e)));
        }
        let (oa, oz) = (k.max(s), pe.min(e));
        if oa < oz && conflict.is_none() {
            let held = &h.data[(oa - k) as usize..(oz - k) as usize];
            if held != bytes(oa, oz) {
                conflict = Some((oa, oz - oa, h.frame));
            }
        }
        cur = cur.max(pe);
        if cur >= e {
            break;
        }
    }
    if cur < e {
        parts.push((cur, e));
    }
    (parts, conflict)
}

/// Holds `data`, the bytes at stream offset `at`, until the bytes before
/// them come.
fn hold(dir: &mut Dir, pool: &mut Pool, seg: &Segment<'_>, data: &[u8], at: u64) {
    let data = pool.buffer(data);
    let cost = data.len() + PIECE_COST;
    dir.held_bytes += cost;
    pool.held_total += cost;
    dir.held.insert(
        at,
        Held {
            data,
            frame: seg.frame,
            ts_ns: seg.ts_ns,
        },
    );
}

/// Per-direction cap: gives up the oldest gaps until within it.
fn within_cap(dir: &mut Dir, key: FlowKey, pool: &mut Pool, seg: &Segment<'_>, out: &mut Out<'_>) {
    while dir.held_bytes > pool.per_direction_cap {
        let first = *dir.held.keys().next().expect("held bytes imply pieces");
        skip_to(
            dir,
            key,
            pool,
            first,
            seg.frame,
            "out-of-order buffer full",
            out,
        );
        dir.hole_since = seg.ts_ns;
    }
}

/// Moves the expected position `n` bytes on.
fn advance(dir: &mut Dir, n: u64) {
    dir.off += n;
    dir.next = dir.next.wrapping_add(n as u32);
}

/// Delivers the held pieces that now continue the stream. `arrival` is the
/// segment that made them deliverable; `None` reports each piece with its
/// own frame (after a gap was given up).
fn deliver_ready(
    dir: &mut Dir,
    key: FlowKey,
    pool: &mut Pool,
    arrival: Option<(u64, i64)>,
    out: &mut Out<'_>,
) {
    while let Some(entry) = dir.held.first_entry() {
        if *entry.key() != dir.off {
            debug_assert!(*entry.key() > dir.off);
            break;
        }
        let h = entry.remove();
        let cost = h.data.len() + PIECE_COST;
        dir.held_bytes -= cost;
        pool.held_total -= cost;
        advance(dir, h.data.len() as u64);
        let (frame, ts_ns) = arrival.unwrap_or((h.frame, h.ts_ns));
        out(StreamEvent::Data {
            key,
            bytes: &h.data,
            frame,
            ts_ns,
            carrier: h.frame,
        });
        pool.recycle(h.data);
    }
}

/// Gives up every missing range before stream offset `target`, delivering
/// the held pieces in between and after.
fn skip_to(
    dir: &mut Dir,
    key: FlowKey,
    pool: &mut Pool,
    target: u64,
    frame: u64,
    reason: &str,
    out: &mut Out<'_>,
) {
    while dir.off < target {
        let hole_end = match dir.held.keys().next() {
            Some(&k) if k == dir.off => {
                deliver_ready(dir, key, pool, None, out);
                continue;
            }
            Some(&k) => k.min(target),
            None => target,
        };
        let missing = hole_end - dir.off;
        out(StreamEvent::Anomaly {
            key,
            frame,
            id: "tcp_gap",
            detail: format!("{missing} bytes never captured ({reason})"),
        });
        out(StreamEvent::Gap {
            key,
            missing,
            frame,
        });
        dir.last_gap = Some((dir.off, hole_end));
        advance(dir, missing);
    }
    deliver_ready(dir, key, pool, None, out);
}

/// Gives up every gap of the direction (up to its FIN when one was seen)
/// and delivers all it holds.
fn flush(
    dir: &mut Dir,
    key: FlowKey,
    pool: &mut Pool,
    frame: u64,
    reason: &str,
    out: &mut Out<'_>,
) {
    if dir.phase != Phase::Open {
        return;
    }
    let held_end = dir
        .held
        .last_key_value()
        .map_or(dir.off, |(&k, h)| k + h.data.len() as u64);
    let end = held_end.max(dir.fin.unwrap_or(0));
    if end > dir.off {
        skip_to(dir, key, pool, end, frame, reason, out);
    }
}

/// Ends the direction's stream: flushes it and reports the end.
/// A RST (`seg`, in direction `d`): its payload is dropped, and both
/// directions of `conn` end.
fn reset(
    conn: &mut Conn,
    d: usize,
    keys: [FlowKey; 2],
    pool: &mut Pool,
    seg: &Segment<'_>,
    out: &mut Out<'_>,
) {
    if !seg.payload.is_empty() {
        out(StreamEvent::Dropped {
            key: keys[d],
            frame: seg.frame,
            id: "tcp_rst_payload",
            detail: format!("{} payload bytes on a RST ignored", seg.payload.len()),
        });
    }
    for (i, dir) in conn.dirs.iter_mut().enumerate() {
        end_dir(dir, keys[i], pool, seg.frame, "connection reset", out);
    }
}

/// A SYN with an ISN that direction `d` of `conn` does not have: on a
/// connection already under way (or closed on the other side) it starts a
/// new connection on the same addresses, ending both directions (an
/// anomaly unless the old one had ended or was idle); then direction `d`
/// opens at the ISN.
fn syn(
    conn: &mut Conn,
    d: usize,
    keys: [FlowKey; 2],
    pool: &mut Pool,
    seg: &Segment<'_>,
    idle: bool,
    out: &mut Out<'_>,
) {
    let [a, b] = &conn.dirs;
    let (this, other) = if d == 0 { (a, b) } else { (b, a) };
    if this.phase != Phase::Fresh || other.phase == Phase::Closed {
        let ended = this.phase == Phase::Closed || other.phase == Phase::Closed;
        if !ended && !idle {
            out(StreamEvent::Anomaly {
                key: keys[d],
                frame: seg.frame,
                id: "tcp_unexpected_syn",
                detail: format!(
                    "SYN with a new ISN {} on an open connection: taken as a new connection",
                    seg.seq
                ),
            });
        }
        for (i, dir) in conn.dirs.iter_mut().enumerate() {
            end_dir(dir, keys[i], pool, seg.frame, "new connection", out);
            *dir = Dir::new();
        }
    }
    conn.dirs[d].open(seg.seq.wrapping_add(1), Some(seg.seq));
}

fn end_dir(
    dir: &mut Dir,
    key: FlowKey,
    pool: &mut Pool,
    frame: u64,
    reason: &str,
    out: &mut Out<'_>,
) {
    flush(dir, key, pool, frame, reason, out);
    if dir.phase == Phase::Open {
        out(StreamEvent::Reset { key, frame });
        dir.phase = Phase::Closed;
    }
}

/// Closes the direction once the bytes up to its FIN are delivered;
/// whatever is held beyond the FIN is dropped.
fn close_if_fin(dir: &mut Dir, key: FlowKey, pool: &mut Pool, frame: u64, out: &mut Out<'_>) {
    let Some(f) = dir.fin else { return };
    if dir.phase != Phase::Open || dir.off < f {
        return;
    }
    while let Some((_, h)) = dir.held.pop_first() {
        let cost = h.data.len() + PIECE_COST;
        dir.held_bytes -= cost;
        pool.held_total -= cost;
        out(StreamEvent::Dropped {
            key,
            frame: h.frame,
            id: "tcp_data_after_fin",
            detail: format!("{} bytes after the FIN", h.data.len()),
        });
        pool.recycle(h.data);
    }
    dir.phase = Phase::Closed;
    out(StreamEvent::Reset { key, frame });
}

/// The peer acknowledged up to `ack` in direction `dir`: bytes before it
/// that were never captured are given up, when something after them (held
/// bytes or the FIN) shows that they were sent. Without such evidence the
/// acknowledgment may just have been captured before the data it
/// acknowledges, so nothing is declared.
fn acked(dir: &mut Dir, key: FlowKey, pool: &mut Pool, frame: u64, ack: u32, out: &mut Out<'_>) {
    if dir.phase != Phase::Open {
        return;
    }
    let rel = ack.wrapping_sub(dir.next) as i32 as i64;
    if rel <= 0 || rel > MAX_JUMP {
        return;
    }
    let held_end = dir
        .held
        .last_key_value()
        .map(|(&k, h)| k + h.data.len() as u64);
    // The FIN takes one sequence number, after the last data byte.
    let Some(evidence) = held_end.max(dir.fin) else {
        return;
    };
    let target = (dir.off + rel as u64).min(evidence);
    if target > dir.off {
        skip_to(
            dir,
            key,
            pool,
            target,
            frame,
            "acknowledged by the peer but not captured",
            out,
        );
        close_if_fin(dir, key, pool, frame, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned copy of an event, for assertions.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        /// bytes, frame, carrier
        Data(Vec<u8>, u64, u64),
        /// missing, frame
        Gap(u64, u64),
        Reset(u64),
        Dup(u64),
        Dropped(u64, &'static str),
        Anomaly(u64, &'static str, String),
    }

    fn own(ev: StreamEvent<'_>) -> Ev {
        match ev {
            StreamEvent::Data {
                bytes,
                frame,
                carrier,
                ..
            } => Ev::Data(bytes.to_vec(), frame, carrier),
            StreamEvent::Gap { missing, frame, .. } => Ev::Gap(missing, frame),
            StreamEvent::Reset { frame, .. } => Ev::Reset(frame),
            StreamEvent::Duplicate { frame, .. } => Ev::Dup(frame),
            StreamEvent::Dropped { frame, id, .. } => Ev::Dropped(frame, id),
            StreamEvent::Anomaly {
                frame, id, detail, ..
            } => Ev::Anomaly(frame, id, detail),
        }
    }

    fn client() -> FlowKey {
        FlowKey {
            tunnels: TunnelPath::default(),
            src: "10.0.0.1:40000".parse().unwrap(),
            dst: "10.0.0.2:5060".parse().unwrap(),
        }
    }

    fn seg(seq: u32, payload: &[u8], frame: u64) -> Segment<'_> {
        Segment {
            key: client(),
            seq,
            ack: None,
            syn: false,
            fin: false,
            rst: false,
            payload,
            frame,
            ts_ns: frame as i64 * 1_000_000,
        }
    }

    fn feed(r: &mut Reassembler, s: Segment<'_>) -> Vec<Ev> {
        let mut evs = Vec::new();
        r.segment(&s, &mut |e| evs.push(own(e)));
        evs
    }

    /// The delivered bytes, concatenated.
    fn bytes(evs: &[Ev]) -> Vec<u8> {
        evs.iter()
            .flat_map(|e| match e {
                Ev::Data(b, ..) => b.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    fn ids(evs: &[Ev]) -> Vec<&'static str> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Anomaly(_, id, _) | Ev::Dropped(_, id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn in_order_payload_is_delivered_from_the_input_slice() {
        let mut r = Reassembler::default();
        let payload = b"hello".to_vec();
        let mut seen = None;
        r.segment(&seg(100, &payload, 1), &mut |e| {
            if let StreamEvent::Data {
                bytes,
                frame,
                carrier,
                ..
            } = e
            {
                seen = Some((bytes.as_ptr(), bytes.len(), frame, carrier));
            }
        });
        assert_eq!(seen, Some((payload.as_ptr(), 5, 1, 1)), "zero-copy");
        assert_eq!(r.held_bytes(), 0);
        // And the next one continues the stream.
        assert_eq!(
            feed(&mut r, seg(105, b" world", 2)),
            [Ev::Data(b" world".to_vec(), 2, 2)]
        );
    }

    #[test]
    fn out_of_order_segment_waits_for_the_gap_and_is_released_by_the_filler() {
        let mut r = Reassembler::default();
        assert!(feed(&mut r, seg(1000, b"AAAA", 1)).len() == 1);
        // Segment 3 before segment 2.
        assert_eq!(feed(&mut r, seg(1008, b"CCCC", 2)), []);
        assert_eq!(r.held_bytes(), 4 + PIECE_COST);
        assert_eq!(
            feed(&mut r, seg(1004, b"BBBB", 3)),
            [
                Ev::Data(b"BBBB".to_vec(), 3, 3),
                Ev::Data(b"CCCC".to_vec(), 3, 2),
            ]
        );
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn retransmission_is_a_duplicate_and_partial_overlap_delivers_only_the_new_bytes() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"abcdef", 1));
        assert_eq!(feed(&mut r, seg(0, b"abcdef", 2)), [Ev::Dup(2)]);
        assert_eq!(feed(&mut r, seg(2, b"cd", 3)), [Ev::Dup(3)]);
        assert_eq!(
            feed(&mut r, seg(4, b"efgh", 4)),
            [Ev::Data(b"gh".to_vec(), 4, 4)]
        );
        // A retransmission of held bytes is a duplicate too.
        assert_eq!(feed(&mut r, seg(20, b"xy", 5)), []);
        assert_eq!(feed(&mut r, seg(20, b"xy", 6)), [Ev::Dup(6)]);
    }

    #[test]
    fn conflicting_overlap_keeps_the_first_copy_with_an_anomaly() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"0123", 1));
        assert_eq!(feed(&mut r, seg(8, b"89ab", 2)), []);
        // Same range, different bytes, and two new bytes after it.
        let evs = feed(&mut r, seg(8, b"XXXXcd", 3));
        assert_eq!(ids(&evs), ["tcp_overlap_conflict"]);
        assert!(
            matches!(&evs[0], Ev::Anomaly(3, _, d) if d.contains("4 bytes") && d.contains("frame 2"))
        );
        // The in-order conflicting copy loses against the held one, too:
        // its first 4 bytes are delivered, the held copies follow.
        let evs = feed(&mut r, seg(4, b"4567YY", 4));
        assert_eq!(ids(&evs), ["tcp_overlap_conflict"]);
        assert_eq!(bytes(&evs), b"456789abcd");
        assert!(evs.contains(&Ev::Data(b"89ab".to_vec(), 4, 2)));
        assert!(evs.contains(&Ev::Data(b"cd".to_vec(), 4, 3)));
        assert_eq!(feed(&mut r, seg(4, b"4567", 5)), [Ev::Dup(5)]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Reassembler::default();
        let isn = u32::MAX - 3;
        let mut s = seg(isn, b"", 1);
        s.syn = true;
        assert_eq!(feed(&mut r, s), []);
        // Data starts at isn + 1 = MAX - 2; the second segment starts past 0.
        assert_eq!(feed(&mut r, seg(6, b"6789", 3)), []);
        let evs = feed(&mut r, seg(u32::MAX - 2, b"abc012345", 2));
        assert_eq!(bytes(&evs), b"abc0123456789");
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn fin_then_syn_with_a_new_isn_is_a_new_connection() {
        let mut r = Reassembler::default();
        let mut s = seg(100, b"", 1);
        s.syn = true;
        feed(&mut r, s);
        let mut s = seg(101, b"one", 2);
        s.fin = true;
        assert_eq!(
            feed(&mut r, s),
            [Ev::Data(b"one".to_vec(), 2, 2), Ev::Reset(2)]
        );
        // A retransmission after the close is a duplicate.
        assert_eq!(feed(&mut r, seg(101, b"one", 3)), [Ev::Dup(3)]);
        let mut s = seg(5000, b"", 4);
        s.syn = true;
        assert_eq!(feed(&mut r, s), [], "no anomaly after FIN");
        assert_eq!(
            feed(&mut r, seg(5001, b"two", 5)),
            [Ev::Data(b"two".to_vec(), 5, 5)]
        );
    }

    #[test]
    fn syn_with_a_new_isn_on_an_open_connection_resets_it_with_an_anomaly() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(100, b"abc", 1));
        let mut s = seg(9000, b"", 2);
        s.syn = true;
        let evs = feed(&mut r, s);
        assert_eq!(ids(&evs), ["tcp_unexpected_syn"]);
        assert!(evs.contains(&Ev::Reset(2)));
        // A retransmitted SYN (same ISN) changes nothing.
        let mut s = seg(9000, b"", 3);
        s.syn = true;
        assert_eq!(feed(&mut r, s), []);
        assert_eq!(
            feed(&mut r, seg(9001, b"x", 4)),
            [Ev::Data(b"x".to_vec(), 4, 4)]
        );
    }

    #[test]
    fn out_of_order_fin_closes_once_the_gap_fills() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"ab", 1));
        let mut s = seg(4, b"ef", 2);
        s.fin = true;
        assert_eq!(feed(&mut r, s), []);
        assert_eq!(
            feed(&mut r, seg(2, b"cd", 3)),
            [
                Ev::Data(b"cd".to_vec(), 3, 3),
                Ev::Data(b"ef".to_vec(), 3, 2),
                Ev::Reset(3)
            ]
        );
    }

    #[test]
    fn rst_gives_up_the_gap_and_resets_both_directions() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"ab", 1));
        let mut back = seg(70, b"ok", 2);
        back.key = client().reverse();
        feed(&mut r, back);
        feed(&mut r, seg(10, b"kl", 3));
        let mut s = seg(12, b"", 4);
        s.rst = true;
        let evs = feed(&mut r, s);
        assert_eq!(
            evs,
            [
                Ev::Anomaly(
                    4,
                    "tcp_gap",
                    "8 bytes never captured (connection reset)".into()
                ),
                Ev::Gap(8, 4),
                Ev::Data(b"kl".to_vec(), 3, 3),
                Ev::Reset(4),
                Ev::Reset(4),
            ]
        );
        assert_eq!(r.held_bytes(), 0);
    }

    #[test]
    fn ack_past_a_gap_declares_it_lost() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"ab", 1));
        feed(&mut r, seg(6, b"gh", 2));
        let mut ack = seg(500, b"", 3);
        ack.key = client().reverse();
        ack.ack = Some(4); // Only up to the gap start + 2: part of it.
        let evs = feed(&mut r, ack);
        assert_eq!(evs[1], Ev::Gap(2, 3));
        let mut ack = seg(500, b"", 4);
        ack.key = client().reverse();
        ack.ack = Some(8);
        let evs = feed(&mut r, ack);
        assert_eq!(evs[1], Ev::Gap(2, 4));
        assert_eq!(evs[2], Ev::Data(b"gh".to_vec(), 2, 2));
        // A late copy of the lost bytes is dropped as late, not a duplicate.
        assert_eq!(
            feed(&mut r, seg(4, b"ef", 5)),
            [Ev::Dropped(5, "tcp_late_segment")]
        );
    }

    #[test]
    fn ack_without_later_data_declares_nothing() {
        // The ACK is captured before the data it acknowledges.
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"ab", 1));
        let mut ack = seg(500, b"", 2);
        ack.key = client().reverse();
        ack.ack = Some(6);
        assert_eq!(feed(&mut r, ack), []);
        assert_eq!(
            feed(&mut r, seg(2, b"cdef", 3)),
            [Ev::Data(b"cdef".to_vec(), 3, 3)]
        );
    }

    #[test]
    fn lost_tail_before_a_fin_is_a_gap() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"ab", 1));
        let mut fin = seg(6, b"", 2);
        fin.fin = true;
        assert_eq!(feed(&mut r, fin), []);
        let mut ack = seg(500, b"", 3);
        ack.key = client().reverse();
        ack.ack = Some(7); // Data and FIN acknowledged.
        let evs = feed(&mut r, ack);
        assert_eq!(evs[1..], [Ev::Gap(4, 3), Ev::Reset(3)]);
        // Without the ACK, the end of the capture declares it.
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"ab", 1));
        let mut fin = seg(6, b"", 2);
        fin.fin = true;
        feed(&mut r, fin);
        let mut evs = Vec::new();
        r.finish(&mut |e| evs.push(own(e)));
        assert_eq!(evs[1], Ev::Gap(4, 2));
    }

    #[test]
    fn rst_on_an_unseen_direction_does_not_close_it() {
        let mut r = Reassembler::default();
        let mut rst = seg(0x9000_0000, b"", 1);
        rst.rst = true;
        assert_eq!(feed(&mut r, rst), []);
        assert_eq!(
            feed(&mut r, seg(5, b"ab", 2)),
            [Ev::Data(b"ab".to_vec(), 2, 2)]
        );
    }

    #[test]
    fn mid_stream_start_takes_the_first_sequence_number_and_earlier_bytes_are_late() {
        let mut r = Reassembler::default();
        assert_eq!(
            feed(&mut r, seg(7777, b"xyz", 1)),
            [Ev::Data(b"xyz".to_vec(), 1, 1)]
        );
        assert_eq!(
            feed(&mut r, seg(7770, b"abc", 2)),
            [Ev::Dropped(2, "tcp_late_segment")]
        );
    }

    #[test]
    fn sequence_jump_restarts_the_direction() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"ab", 1));
        let evs = feed(&mut r, seg(0x8000_0000, b"cd", 2));
        assert_eq!(ids(&evs), ["tcp_seq_jump"]);
        assert_eq!(evs[1], Ev::Reset(2));
        assert_eq!(evs[2], Ev::Data(b"cd".to_vec(), 2, 2));
    }

    #[test]
    fn gap_timeout_and_idle_timeout_via_expire() {
        let limits = TcpLimits {
            gap_timeout_ns: 10,
            idle_timeout_ns: 100,
            ..TcpLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut evs = Vec::new();
        let at = |r: &mut Reassembler, s: Segment<'_>, ts: i64, evs: &mut Vec<Ev>| {
            let s = Segment { ts_ns: ts, ..s };
            r.segment(&s, &mut |e| evs.push(own(e)));
            r.expire(ts, &mut |e| evs.push(own(e)));
        };
        at(&mut r, seg(0, b"ab", 1), 0, &mut evs);
        at(&mut r, seg(4, b"ef", 2), 1, &mut evs);
        assert_eq!(bytes(&evs), b"ab");
        // The sweep runs every 10/4 ns; the gap is older than 10 at ts 14.
        at(&mut r, seg(2, b"", 3), 14, &mut evs);
        assert!(evs.contains(&Ev::Gap(2, 3)), "{evs:?}");
        assert_eq!(bytes(&evs), b"abef");
        assert_eq!(r.connections(), 1);
        evs.clear();
        r.expire(200, &mut |e| evs.push(own(e)));
        assert_eq!(evs, [Ev::Reset(3)]);
        assert_eq!(r.connections(), 0);
    }

    #[test]
    fn finish_gives_up_open_gaps_and_delivers_what_follows() {
        let mut r = Reassembler::default();
        feed(&mut r, seg(0, b"ab", 1));
        feed(&mut r, seg(5, b"fg", 2));
        let mut evs = Vec::new();
        r.finish(&mut |e| evs.push(own(e)));
        assert_eq!(
            evs,
            [
                Ev::Anomaly(
                    2,
                    "tcp_gap",
                    "3 bytes never captured (end of capture)".into()
                ),
                Ev::Gap(3, 2),
                Ev::Data(b"fg".to_vec(), 2, 2),
            ]
        );
    }

    #[test]
    fn out_of_order_flood_stays_within_the_direction_cap() {
        let limits = TcpLimits {
            per_direction_ooo_bytes: 256 << 10,
            ..TcpLimits::default()
        };
        let mut r = Reassembler::new(limits);
        // 21 MB in 1400-byte segments; every 200th segment is never
        // captured, so the queue fills up to the cap again and again.
        let chunk = vec![b'x'; 1400];
        let (mut delivered, mut lost, mut gaps) = (0u64, 0u64, 0);
        let mut count = |e: StreamEvent<'_>| match e {
            StreamEvent::Data { bytes, .. } => delivered += bytes.len() as u64,
            StreamEvent::Gap { missing, .. } => {
                lost += missing;
                gaps += 1
            }
            _ => {}
        };
        for i in 0..15_000u64 {
            if i % 200 == 100 {
                continue;
            }
            let seq = (i as u32) * 1400;
            r.segment(&seg(seq, &chunk, i + 1), &mut count);
            assert!(r.max_dir_held() <= 256 << 10);
            assert!(r.held_bytes() <= 256 << 10);
        }
        r.finish(&mut count);
        assert_eq!((lost, gaps), (75 * 1400, 75));
        assert_eq!(delivered, (15_000 - 75) * 1400, "nothing else lost");
    }

    #[test]
    fn global_cap_flushes_the_biggest_holder() {
        let limits = TcpLimits {
            global_bytes: 10_000,
            ..TcpLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let chunk = [b'z'; 1000];
        for c in 0..20u16 {
            let mut s = seg(0, b"a", c as u64 * 100);
            s.key.src.set_port(1000 + c);
            feed(&mut r, s);
            for i in 0..3u32 {
                let mut s = seg(10 + i * 1000, &chunk, c as u64 * 100 + 1 + i as u64);
                s.key.src.set_port(1000 + c);
                r.segment(&s, &mut |_| {});
                assert!(r.held_bytes() <= 10_000);
            }
        }
    }

    #[test]
    fn connection_table_cap_evicts_the_least_recent() {
        let limits = TcpLimits {
            max_connections: 16,
            ..TcpLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut evicted = 0;
        for c in 0..100u16 {
            let mut s = seg(0, b"a", c as u64);
            s.key.src.set_port(1000 + c);
            r.segment(&s, &mut |e| {
                if let StreamEvent::Anomaly {
                    id: "tcp_connection_evicted",
                    ..
                } = e
                {
                    evicted += 1
                }
            });
            assert!(r.connections() <= 16);
        }
        assert!(evicted > 0);
    }

    #[test]
    fn every_payload_segment_is_accounted_for() {
        // Random-ish traffic: in order, out of order, duplicates, gaps.
        let mut r = Reassembler::new(TcpLimits {
            per_direction_ooo_bytes: 4096,
            ..TcpLimits::default()
        });
        let mut x = 0x2545f491u32;
        let mut rnd = move |n: u32| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x % n
        };
        let data = [b'q'; 64];
        let mut carriers = std::collections::HashSet::new();
        let mut other = std::collections::HashSet::new();
        let mut sent = 0;
        for frame in 1..5000u64 {
            let seq = 1_000_000u32.wrapping_add(rnd(40_000));
            let len = 1 + rnd(63) as usize;
            sent += 1;
            r.segment(&seg(seq, &data[..len], frame), &mut |e| match e {
                StreamEvent::Data { carrier, .. } => {
                    carriers.insert(carrier);
                }
                StreamEvent::Duplicate { frame, .. } | StreamEvent::Dropped { frame, .. } => {
                    assert!(other.insert(frame), "reported twice");
                }
                _ => {}
            });
        }
        r.finish(&mut |e| {
            if let StreamEvent::Data { carrier, .. } = e {
                carriers.insert(carrier);
            }
        });
        assert!(carriers.is_disjoint(&other));
        assert_eq!(carriers.len() + other.len(), sent);
    }
}
