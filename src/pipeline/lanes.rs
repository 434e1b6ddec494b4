//! Decoding one large file on several cores (issue 11): its packets are
//! dealt to a fixed number of *lanes*, each a [`Decoder`] with its own SIP
//! framing and digest, and the lanes' records are merged back into the
//! order one decoder would have produced them in.
//!
//! - **Placement** ([`crate::packet::lane_key`]): every packet that may
//!   touch decoder state (fragments, TCP, SCTP, tunnels) goes to lane 0,
//!   which so decodes them exactly as one decoder would; a plain UDP
//!   datagram, decoded from its own bytes, goes to lane `frame % LANES`
//!   (UDP signalling, the usual probe capture, uses every lane).
//! - **Time**: lane 0 is *ticked* ([`Decoder::tick`]) for every packet of
//!   the file that another lane takes, so fragment and stream timeouts
//!   fire after the same packet as in one decoder (the other lanes hold no
//!   state to expire).
//! - **Order**: the file is read in rounds of [`round_packets`] packets;
//!   the lanes run a round (on the threads `--jobs` leaves for decoding,
//!   `Threads` in mod.rs), each keeping its
//!   records with their place (`2 × frame` for what decoding the packet
//!   produced, `2 × frame + 1` for what its time expired); the round's
//!   records leave by (place, lane). What is left at the end of the file
//!   leaves lane after lane.
//! - **Sequence**: the merged records are numbered within their frame
//!   again (`seq`), as one decoder numbers them in the order it finds them.
//!
//! **The same records as one decoder, in the same order.** Lane 0 decodes
//! every stateful packet and is ticked with every time, as one decoder
//! would; a plain UDP datagram changes no decoder state, so which lane
//! decodes it changes nothing but where its record is made. Only the owner
//! of a packet emits at its decoding place, only lane 0 (the one with
//! state) at tick places and at the end of the file, so ordering by place
//! gives one decoder's order exactly, and renumbering gives its sequence
//! numbers. Whether a file is laned is therefore free to depend on the
//! threads there are ([`use_lanes`]): the output does not. Every sample and
//! public corpus capture writes the same reports laned and not
//! (`tests/partitions.rs`).
//!
//! It owns the lanes and their rounds; it never decides what a packet is.

use crate::capture::{self, RawPacket};
use crate::error::Error;
use crate::packet::{Decoder, LaneKey, PacketCounts, lane_key};
use crate::sip;

use super::anomalies::AnomalyStore;
use super::{Emit, FileResult, FileSink, Found, Input, Out, Span, digest, file_result};

/// Lanes per laned file: fixed, so that the output does not depend on
/// `--jobs`.
pub(super) const LANES: usize = 4;

/// The lane of every packet that may touch decoder state.
const SHARED: usize = 0;

/// Packets per round: 4,096, or `SIPAUDIT_LANE_ROUND` (tests use small
/// rounds so that small captures still span many).
fn round_packets() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        super::env_number("SIPAUDIT_LANE_ROUND")
            .filter(|&n| n > 0)
            .unwrap_or(4_096)
    })
}

/// Captured bytes per round at most (a round of jumbo frames stays small).
const ROUND_BYTES: usize = 16 << 20;

/// Files shorter than this on disk take one decoder: their rounds would be
/// too few to share (a gzipped SIP capture is about a twentieth of its
/// pcap, so 1 MiB of it is a probe's rotated file all the same).
const LANE_MIN_BYTES: u64 = 1 << 20;

/// Whether `input` is decoded in lanes on `threads` threads: when it is at
/// least [`LANE_MIN_BYTES`] long and at least two threads can run lanes.
/// `SIPAUDIT_LANES=on` lanes every file and `off` none (tests compare the
/// two; the output is the same).
pub(super) fn use_lanes(input: &Input, threads: usize) -> bool {
    match std::env::var("SIPAUDIT_LANES").as_deref() {
        Ok("on") => true,
        Ok("off") => false,
        _ => {
            threads >= 2
                && std::fs::metadata(&input.path)
                    .is_ok_and(|m| m.is_file() && m.len() >= LANE_MIN_BYTES)
        }
    }
}

/// Numbers the merged records within their frame, as `Out::message` numbers
/// one decoder's: the first message of a frame is 0, the next 1, ...
struct Renumber<'e> {
    last: (u64, u32),
    emit: &'e mut (dyn FnMut(Found) + Send),
}

impl Renumber<'_> {
    fn emit(&mut self, mut f: Found) {
        let frame = f.rec.at.frame;
        let seq = if self.last.0 == frame {
            self.last.1 + 1
        } else {
            0
        };
        self.last = (frame, seq);
        f.rec.at.seq = seq;
        (self.emit)(f);
    }
}

/// One packet of a round: its bytes are `data[start..end]` of the round.
struct Entry {
    frame: u64,
    ts_ns: i64,
    linktype: u32,
    orig_len: u32,
    start: usize,
    end: usize,
    lane: usize,
}

/// Packets read and not yet decoded, with the lane each goes to.
#[derive(Default)]
struct Round {
    data: Vec<u8>,
    packets: Vec<Entry>,
    /// The indices of each lane's packets (the shared lane walks them all).
    own: [Vec<u32>; LANES],
}

impl Round {
    fn push(&mut self, p: &RawPacket<'_>, lane: usize) {
        let start = self.data.len();
        self.data.extend_from_slice(p.data);
        self.packets.push(Entry {
            frame: p.frame,
            ts_ns: p.ts_ns,
            linktype: p.linktype,
            orig_len: p.orig_len,
            start,
            end: self.data.len(),
            lane,
        });
        self.own[lane].push((self.packets.len() - 1) as u32);
    }

    fn full(&self) -> bool {
        self.packets.len() >= round_packets() || self.data.len() >= ROUND_BYTES
    }

    fn clear(&mut self) {
        self.data.clear();
        self.packets.clear();
        self.own.iter_mut().for_each(Vec::clear);
    }
}

/// One lane: a decoder and its sink, keeping its records.
struct Lane {
    dec: Decoder,
    sink: FileSink<'static>,
}

impl Lane {
    fn new(input: &Input, file_idx: u32, wants: &digest::Wants, store: &AnomalyStore) -> Lane {
        Lane {
            dec: Decoder::default(),
            sink: FileSink {
                framers: sip::stream::Framers::default(),
                ws: rustc_hash::FxHashMap::default(),
                out: Out {
                    digest: digest::Digest::new(&input.display, file_idx, wants, store),
                    last_frame: (0, 0),
                    emit: Emit::Keep {
                        at: 0,
                        found: Vec::new(),
                    },
                    stream_sip_frames: 0,
                },
            },
        }
    }

    /// Sets the place of what is found next.
    fn place(&mut self, at: u64) {
        if let Emit::Keep { at: a, .. } = &mut self.sink.out.emit {
            *a = at;
        }
    }

    /// Decodes this lane's packets of the round; the shared lane is also
    /// ticked for every other packet (the other lanes never hold state:
    /// a tick has nothing to expire in them).
    fn run(&mut self, me: usize, round: &Round) {
        if me == SHARED {
            for e in &round.packets {
                self.packet(me, e, &round.data);
            }
        } else {
            for &i in &round.own[me] {
                self.packet(me, &round.packets[i as usize], &round.data);
            }
        }
    }

    /// One packet of the round: decoded when it is this lane's, and its
    /// time ticked.
    fn packet(&mut self, me: usize, e: &Entry, data: &[u8]) {
        if e.lane == me {
            self.place(e.frame.saturating_mul(2));
            let p = RawPacket {
                frame: e.frame,
                ts_ns: e.ts_ns,
                linktype: e.linktype,
                orig_len: e.orig_len,
                data: &data[e.start..e.end],
            };
            self.dec.decode_untimed(&p, &mut self.sink);
        }
        self.place(e.frame.saturating_mul(2).saturating_add(1));
        self.dec.tick(e.frame, e.ts_ns, &mut self.sink);
    }

    fn take(&mut self) -> Vec<(u64, Found)> {
        match &mut self.sink.out.emit {
            Emit::Keep { found, .. } => std::mem::take(found),
            Emit::To { .. } => Vec::new(),
        }
    }

    /// Ends the file for this lane (as `read_file` ends one decoder):
    /// its records are kept, its counts and digest returned.
    fn finish(self, packets: u64) -> (Vec<(u64, Found)>, PacketCounts, digest::Digest) {
        let (counts, out) = self.sink.end_file(self.dec, packets);
        let found = match out.emit {
            Emit::Keep { found, .. } => found,
            Emit::To { .. } => Vec::new(),
        };
        (found, counts, out.digest)
    }
}

/// Runs one round on up to `threads` threads (lane `i` on thread
/// `i % threads`), then passes its records on by (place, lane).
fn run_round(lanes: &mut [Lane], round: &Round, threads: usize, out: &mut Renumber<'_>) {
    if threads <= 1 {
        for (i, l) in lanes.iter_mut().enumerate() {
            l.run(i, round);
        }
    } else {
        let mut groups: Vec<Vec<(usize, &mut Lane)>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, l) in lanes.iter_mut().enumerate() {
            groups[i % threads].push((i, l));
        }
        std::thread::scope(|s| {
            let mut groups = groups.into_iter();
            let mine = groups.next().unwrap_or_default();
            for g in groups {
                crate::threads::scoped(s, crate::threads::LANE, move || {
                    for (i, l) in g {
                        l.run(i, round);
                    }
                });
            }
            for (i, l) in mine {
                l.run(i, round);
            }
        });
    }
    let kept: Vec<Vec<(u64, Found)>> = lanes.iter_mut().map(Lane::take).collect();
    merge_places(kept, out);
}

/// Passes the lanes' records on by (place, lane); each lane's are in
/// place order already.
fn merge_places(kept: Vec<Vec<(u64, Found)>>, out: &mut Renumber<'_>) {
    let mut heads: Vec<_> = kept.into_iter().map(|v| v.into_iter().peekable()).collect();
    loop {
        let next = heads
            .iter_mut()
            .enumerate()
            .filter_map(|(i, h)| h.peek().map(|(at, _)| (*at, i)))
            .min();
        let Some((_, i)) = next else {
            break;
        };
        if let Some((_, f)) = heads[i].next() {
            out.emit(f);
        }
    }
}

/// Reads `input` and decodes it in lanes on up to `threads` threads,
/// passing its records to `emit` in file order (module doc).
pub(super) fn read_file(
    input: &Input,
    file_idx: u32,
    progress: Option<&capture::ByteCounter>,
    wants: &digest::Wants,
    store: &AnomalyStore,
    threads: usize,
    emit: &mut (dyn FnMut(Found) + Send),
) -> FileResult {
    let threads = threads.clamp(1, LANES);
    let mut out = Renumber { last: (0, 0), emit };
    let mut lanes: Vec<Lane> = (0..LANES)
        .map(|_| Lane::new(input, file_idx, wants, store))
        .collect();
    let mut round = Round::default();
    let mut span = Span {
        bytes: 0,
        first: i64::MAX,
        last: i64::MIN,
    };
    let (info, err): (capture::CaptureInfo, Option<Error>) =
        capture::read_capture_counted(&input.path, progress, |p| {
            span.bytes += p.data.len() as u64;
            span.first = span.first.min(p.ts_ns);
            span.last = span.last.max(p.ts_ns);
            let lane = match lane_key(p.linktype, p.data) {
                LaneKey::Any => (p.frame % LANES as u64) as usize,
                LaneKey::Shared => SHARED,
            };
            round.push(p, lane);
            if round.full() {
                run_round(&mut lanes, &round, threads, &mut out);
                round.clear();
            }
        });
    run_round(&mut lanes, &round, threads, &mut out);
    let mut counts = PacketCounts::default();
    let mut total: Option<digest::Digest> = None;
    for lane in lanes {
        let (found, c, d) = lane.finish(info.packets);
        for (_, f) in found {
            out.emit(f);
        }
        counts.sip += c.sip;
        counts.other += c.other;
        counts.undecodable += c.undecodable;
        match total.as_mut() {
            Some(t) => t.absorb(d),
            None => total = Some(d),
        }
    }
    let digest =
        total.unwrap_or_else(|| digest::Digest::new(&input.display, file_idx, wants, store));
    file_result(input, &info, err, span, counts, digest)
}
