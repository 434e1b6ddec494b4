//! One input file decoded into the messages the batch-wide stages take
//! ([`Found`]): packets through the [`Decoder`], TCP streams through the SIP
//! framers, WebSocket and SCTP messages, each SIP message digested into its
//! record (on this thread or on digest helpers), and the file's row of
//! inputs.csv with its counters ([`FileResult`]). Never tracks sessions and
//! never writes a report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use super::anomalies::AnomalyStore;
use super::html;
use super::{Config, Input, digest, jobs_of, lanes, merge};
use crate::anomaly::PacketAnomaly;
use crate::capture::{self, format_rfc3339_micros};
use crate::dialog::SipRecord;
use crate::error::Error;
use crate::packet::sctp::SctpEvent;
use crate::packet::ws::{self, WsEvent};
use crate::packet::{
    Datagram, Decoder, FlowKey, Origin, PacketCounts, Sink, StreamEvent, TunnelPath,
};
use crate::report::Text;
use crate::report::rows::InputRow;
use crate::sip::stream::FramerEvent;
use crate::sip::{self, Framing, Message};

/// Everything one file produced.
pub(super) struct FileResult {
    pub(super) input: InputRow,
    /// Capture time of the file's last packet, SIP or not (`None`: no
    /// packet): the batch ends at the latest of these (rules.md §D.3, §G.21).
    pub(super) last_packet_ns: Option<i64>,
    pub(super) counters: Counters,
    pub(super) failed: bool,
}

/// Per-file counters for summary.csv.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) transport: rustc_hash::FxHashMap<(TunnelPath, &'static str), u64>,
    pub(super) method: BTreeMap<String, u64>,
    pub(super) status: BTreeMap<u16, u64>,
}

/// One SIP message as the batch-wide stages need it: the dialog stage's
/// record, and its messages.csv row (only with `--messages`).
pub(super) struct Found {
    pub(super) rec: SipRecord,
    /// Came over a TCP stream (plain or WebSocket): report.html's ladder
    /// notes where its segments start.
    pub(super) tcp: bool,
    /// Only with report.html: what its ladder takes from the text (absent
    /// for records read back; the ladder store takes it then).
    pub(super) ladder: Option<html::LadderPre>,
    /// Only with `--messages`.
    pub(super) row: Option<PendingRow>,
}

/// A messages.csv row encoded on the thread that found the message, up to
/// its last two columns (`retransmission`, `session`), which the tracker
/// decides: no per-field strings cross threads, and the tracker's thread only
/// appends bytes.
pub(super) struct PendingRow {
    /// Every column before `retransmission`, each followed by its comma.
    pub(super) head: Box<[u8]>,
    pub(super) retransmission: Option<bool>,
}

impl merge::Timed for Found {
    fn order(&self) -> (i64, u64, u32) {
        (self.rec.at.ts_ns, self.rec.at.frame, self.rec.at.seq)
    }
}

/// The per-file sink: SIP framing of TCP streams (`framers`) and everything
/// that turns messages and anomalies into rows (`out`). Two fields so both
/// can be borrowed at once in the framers' callback.
pub(super) struct FileSink<'a> {
    pub(super) framers: sip::stream::Framers,
    /// TCP directions that carry WebSocket (RFC 7118): their bytes go
    /// through a deframer instead of the SIP framers.
    pub(super) ws: rustc_hash::FxHashMap<FlowKey, ws::Deframer>,
    pub(super) out: Out<'a>,
}

pub(super) struct Out<'a> {
    /// Counters, anomalies and records of the messages digested on this
    /// thread (all of them without helpers).
    pub(super) digest: digest::Digest,
    /// Frame of the last message, and how many messages it completed.
    pub(super) last_frame: (u64, u32),
    /// Where the records go.
    pub(super) emit: Emit<'a>,
    /// TCP segments and SCTP packets found to carry (part of) a SIP message
    /// (directly, in WebSocket frames, or in SCTP user messages): counted
    /// `other` by the decoder, moved to `sip` at the end of the file.
    pub(super) stream_sip_frames: u64,
}

/// Where a file's records go: straight on (with digest helpers or not),
/// or kept with their place in the file for the lanes' merge (`lanes.rs`).
pub(super) enum Emit<'a> {
    To {
        emit: &'a mut (dyn FnMut(Found) + Send),
        /// Helpers digesting messages in parallel (`--jobs` > 3), or one
        /// borrowed until the merge begins ([`process_file`]).
        /// Boxed: the enum's other variant is small.
        pool: Option<Box<digest::Pool<'a>>>,
    },
    Keep {
        /// The place in the file being decoded (`lanes::Place`).
        at: u64,
        found: Vec<(u64, Found)>,
    },
}

impl Out<'_> {
    pub(super) fn add_anomaly(&mut self, frame: u64, kind: &'static str, detail: String) {
        self.digest.add_anomaly(frame, kind, detail);
    }

    /// A SIP message scanned with `framing`: digested here or by a helper.
    pub(super) fn message(&mut self, at: &Origin, msg: &Message<'_>, framing: Framing) {
        let seq = if self.last_frame.0 == at.at.frame {
            self.last_frame.1 + 1
        } else {
            0
        };
        self.last_frame = (at.at.frame, seq);
        match &mut self.emit {
            Emit::To {
                emit,
                pool: Some(p),
            } => {
                p.push(at, seq, msg, framing, &mut self.digest, *emit);
                if p.given_back() {
                    self.give_back();
                }
            }
            Emit::To { emit, pool: None } => emit(self.digest.message(at, seq, msg)),
            Emit::Keep { at: place, found } => {
                found.push((*place, self.digest.message(at, seq, msg)));
            }
        }
    }

    /// Ends a helper pool's part (a borrowed helper's, or the pool's at the
    /// end of a file): every message it took leaves first, in order, and
    /// its counters join this thread's.
    fn give_back(&mut self) {
        if let Emit::To { emit, pool } = &mut self.emit {
            if let Some(p) = pool.take() {
                for d in p.finish(&mut self.digest, *emit) {
                    self.digest.absorb(d);
                }
            }
        }
    }

    /// What the SIP framer of a TCP stream produced.
    pub(super) fn framed(&mut self, ev: FramerEvent<'_>) {
        match ev {
            FramerEvent::Message(f) => {
                self.stream_sip_frames += f.new_frames.len() as u64;
                let at = Origin::of_stream(f.key, "tcp", f.frame, f.ts_ns);
                match f.parse() {
                    Ok(msg) => self.message(&at, &msg, f.framing()),
                    Err(e) => self.add_anomaly(
                        f.frame,
                        PacketAnomaly::SipStartInvalid.id(),
                        format!("framed TCP message does not parse: {e}"),
                    ),
                }
            }
            FramerEvent::Anomaly {
                frame, id, detail, ..
            } => self.add_anomaly(frame, id, detail),
        }
    }

    /// A whole message delivered by a transport that frames messages itself
    /// (an SCTP user message, RFC 4168; a WebSocket message, RFC 7118): SIP
    /// when it starts like SIP, one SIP message per transport message.
    /// `new_frames` are the packets that carried it and were not counted yet.
    pub(super) fn transport_message(&mut self, at: Origin, bytes: &[u8], new_frames: usize) {
        if !sip::is_sip_start(bytes) {
            return;
        }
        self.stream_sip_frames += new_frames as u64;
        let (frame, proto) = (at.at.frame, at.proto);
        match sip::parse_message(bytes, Framing::Datagram) {
            Ok(msg) => self.message(&at, &msg, Framing::Datagram),
            Err(e) => self.add_anomaly(
                frame,
                PacketAnomaly::SipStartInvalid.id(),
                format!("{proto} message does not parse as SIP: {e}"),
            ),
        }
    }

    /// An SCTP event: a user message or an anomaly.
    pub(super) fn sctp_event(&mut self, ev: &SctpEvent<'_>) {
        match *ev {
            SctpEvent::Message {
                key,
                bytes,
                frame,
                ts_ns,
                new_frames,
                ..
            } => self.transport_message(
                Origin::of_stream(key, "sctp", frame, ts_ns),
                bytes,
                new_frames.len(),
            ),
            SctpEvent::Anomaly {
                frame,
                id,
                ref detail,
            } => self.add_anomaly(frame, id, detail.clone()),
        }
    }

    /// What the WebSocket deframer of a TCP direction produced.
    pub(super) fn ws_event(&mut self, key: FlowKey, ev: WsEvent<'_>) {
        match ev {
            WsEvent::Message {
                payload,
                frame,
                ts_ns,
                new_frames,
                ..
            } => self.transport_message(
                Origin::of_stream(key, "ws", frame, ts_ns),
                payload,
                new_frames.len(),
            ),
            WsEvent::Closed { .. } => {}
            WsEvent::Anomaly { frame, id, detail } => self.add_anomaly(frame, id, detail),
        }
    }
}

impl<'a> FileSink<'a> {
    /// Ends a file of `packets` packets: what the decoder, the SIP framers
    /// and the WebSocket deframers still hold is flushed (the deframers in a
    /// fixed order). Returns the packet accounting, stream frames moved to
    /// SIP, and what the messages went to.
    pub(super) fn end_file(mut self, dec: Decoder, packets: u64) -> (PacketCounts, Out<'a>) {
        let mut counts = dec.finish(&mut self);
        let FileSink {
            framers,
            ws,
            mut out,
        } = self;
        framers.finish(&mut |fe| out.framed(fe));
        let mut open: Vec<_> = ws.into_iter().collect();
        open.sort_by_key(|(k, _)| (k.src, k.dst));
        for (key, mut d) in open {
            d.finish(packets, &mut |we| out.ws_event(key, we));
        }
        counts.move_to_sip(out.stream_sip_frames);
        (counts, out)
    }
}

impl Sink for FileSink<'_> {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        // Not SIP unless its start line is; once it is, a datagram always
        // parses (everything after the start line is recorded as anomalies).
        let out = &mut self.out;
        sip::with_datagram(d.payload, |msg| out.message(&d.at, msg, Framing::Datagram)).is_some()
    }

    fn stream(&mut self, ev: &StreamEvent<'_>) {
        let out = &mut self.out;
        match *ev {
            StreamEvent::Anomaly {
                frame,
                id,
                ref detail,
                ..
            }
            | StreamEvent::Dropped {
                frame,
                id,
                ref detail,
                ..
            } => {
                out.add_anomaly(frame, id, detail.clone());
            }
            StreamEvent::Duplicate { .. } => {}
            StreamEvent::Data {
                key,
                bytes,
                frame,
                ts_ns,
                carrier,
            } => {
                if !self.ws.contains_key(&key)
                    && bytes.starts_with(b"GET ")
                    && ws::is_upgrade_request(bytes) == Some(true)
                {
                    // The client's opening handshake: both directions are
                    // WebSocket from here on (the server's starts with 101).
                    let limits = ws::WsLimits::default();
                    self.ws.insert(key, ws::Deframer::new(true, limits));
                    self.ws
                        .insert(key.reverse(), ws::Deframer::new(true, limits));
                }
                match self.ws.get_mut(&key) {
                    Some(d) => d.data(bytes, frame, ts_ns, carrier, &mut |we| {
                        out.ws_event(key, we)
                    }),
                    None => self.framers.event(ev, &mut |fe| out.framed(fe)),
                }
            }
            StreamEvent::Gap { key, frame, .. } => match self.ws.get_mut(&key) {
                Some(d) => d.gap(frame, &mut |we| out.ws_event(key, we)),
                None => self.framers.event(ev, &mut |fe| out.framed(fe)),
            },
            StreamEvent::Reset { key, frame } => {
                if let Some(mut d) = self.ws.remove(&key) {
                    d.finish(frame, &mut |we| out.ws_event(key, we));
                }
                self.framers.event(ev, &mut |fe| out.framed(fe));
            }
        }
    }

    fn sctp(&mut self, ev: &SctpEvent<'_>) {
        self.out.sctp_event(ev);
    }

    fn anomaly(&mut self, frame: u64, kind: PacketAnomaly, detail: String) {
        self.out.add_anomaly(frame, kind.id(), detail);
    }
}

pub(super) fn linktype_name(lt: u32) -> String {
    match lt {
        0 => "null".into(),
        1 => "ethernet".into(),
        101 => "raw".into(),
        108 => "loop".into(),
        113 => "linux_sll".into(),
        228 => "ipv4".into(),
        229 => "ipv6".into(),
        239 => "nflog".into(),
        276 => "linux_sll2".into(),
        n => format!("linktype_{n}"),
    }
}

/// The threads that decode one file: a large file's lanes (`lanes.rs`), or
/// the digest helpers of the file's thread (`digest.rs`).
#[derive(Clone, Copy)]
pub(super) struct Threads {
    /// Threads the lanes of a laned file run on.
    pub(super) lanes: usize,
    /// Digest helpers beside the file's thread otherwise.
    pub(super) helpers: usize,
    /// Without helpers: whether a file's thread may borrow one while the
    /// merge has not begun handing records on ([`process_file`]).
    pub(super) start_helper: bool,
}

impl Threads {
    /// `--jobs` shared out: `kept` threads stay with the work after
    /// decoding (tracking and the rules in `analyze`: 1; writing in
    /// `extract-records`: 0, it is light) and the rest run lanes; helpers
    /// come after `beside` threads. On 2 cores `analyze -j2` so decodes on
    /// one thread: its tracking already has the other core, and lanes there
    /// measured 9 % slower (docs/perf-history.md). Only while the merge
    /// has not begun is that core free: a file's thread borrows a helper
    /// then (`start_helper`).
    pub(super) fn of(cfg: &Config, kept: usize, beside: usize) -> Threads {
        let jobs = jobs_of(cfg);
        let helpers = jobs.saturating_sub(beside).min(MAX_HELPERS);
        Threads {
            lanes: jobs.saturating_sub(kept).max(1),
            helpers,
            start_helper: jobs >= 2 && helpers == 0,
        }
    }
}

/// Decodes `input`, emitting its messages in file order.
///
/// `begun`: set by the consumer once the merge hands records on. Until
/// then the threads that track sessions wait for the merge's reorder window
/// to fill (2 s of capture: a tenth of a 20 s scanner burst), so a file's
/// thread without helpers borrows one ([`Threads::start_helper`]) and gives
/// it back at the first message after `begun` is set. Which messages the
/// helper digests changes nothing in the output (`digest.rs`).
#[allow(clippy::too_many_arguments)]
pub(super) fn process_file(
    input: &Input,
    file_idx: u32,
    progress: Option<&capture::ByteCounter>,
    wants: &digest::Wants,
    threads: Threads,
    store: &AnomalyStore,
    begun: Option<&AtomicBool>,
    emit: &mut (dyn FnMut(Found) + Send),
) -> FileResult {
    if lanes::use_lanes(input, threads.lanes) {
        return lanes::read_file(input, file_idx, progress, wants, store, threads.lanes, emit);
    }
    let helpers = threads.helpers;
    let borrow = begun.filter(|b| threads.start_helper && !b.load(Ordering::Relaxed));
    std::thread::scope(|scope| {
        let spawn = |n| digest::Pool::spawn(scope, n, &input.display, file_idx, wants, store);
        let pool = if helpers > 0 {
            Some(spawn(helpers))
        } else {
            borrow.map(|b| spawn(1).until(b))
        };
        read_file(input, file_idx, progress, wants, store, pool, emit)
    })
}

/// [`process_file`] on this thread, with `pool` digesting messages (or not).
pub(super) fn read_file<'a>(
    input: &Input,
    file_idx: u32,
    progress: Option<&capture::ByteCounter>,
    wants: &digest::Wants,
    store: &AnomalyStore,
    pool: Option<digest::Pool<'a>>,
    emit: &'a mut (dyn FnMut(Found) + Send),
) -> FileResult {
    let mut dec = Decoder::default();
    let mut sink = FileSink {
        framers: sip::stream::Framers::default(),
        ws: rustc_hash::FxHashMap::default(),
        out: Out {
            digest: digest::Digest::new(&input.display, file_idx, wants, store),
            last_frame: (0, 0),
            emit: Emit::To {
                emit,
                pool: pool.map(Box::new),
            },
            stream_sip_frames: 0,
        },
    };
    let mut bytes = 0u64;
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    let (info, err) = capture::read_capture_counted(&input.path, progress, |p| {
        bytes += p.data.len() as u64;
        first = first.min(p.ts_ns);
        last = last.max(p.ts_ns);
        dec.decode(p, &mut sink);
    });
    let (counts, mut out) = sink.end_file(dec, info.packets);
    out.give_back();
    let span = Span { bytes, first, last };
    file_result(input, &info, err, span, counts, out.digest)
}

/// What the reading of a file measured besides the packets: captured bytes,
/// first and last capture time.
pub(super) struct Span {
    pub(super) bytes: u64,
    pub(super) first: i64,
    pub(super) last: i64,
}

/// The file's summary row and counters, from the reader's figures and the
/// decoding's (merged over its lanes or helpers).
pub(super) fn file_result(
    input: &Input,
    info: &capture::CaptureInfo,
    err: Option<Error>,
    span: Span,
    counts: PacketCounts,
    digest: digest::Digest,
) -> FileResult {
    let Span { bytes, first, last } = span;
    debug_assert_eq!(counts.sip + counts.other + counts.undecodable, info.packets);
    let has_packets = info.packets > 0;
    let input_row = InputRow {
        file: Text(input.display.clone()),
        format: info.format.map(|f| f.as_str()).unwrap_or(""),
        compression: info.compression.as_str(),
        link_types: info
            .link_types
            .iter()
            .map(|&l| linktype_name(l))
            .collect::<Vec<_>>()
            .join(";"),
        packets: info.packets,
        bytes,
        first_time: if has_packets {
            format_rfc3339_micros(first)
        } else {
            String::new()
        },
        last_time: if has_packets {
            format_rfc3339_micros(last)
        } else {
            String::new()
        },
        sip_packets: counts.sip,
        other_packets: counts.other,
        undecodable_packets: counts.undecodable,
        sip_messages: digest.sip_messages,
        error: Text(err.as_ref().map(|e| e.to_string()).unwrap_or_default()),
    };
    FileResult {
        input: input_row,
        last_packet_ns: has_packets.then_some(last),
        counters: digest.counters,
        failed: err.is_some(),
    }
}

/// Most helper threads per file being read.
pub(super) const MAX_HELPERS: usize = 8;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{FlowKey, Origin};

    /// 2,000 UDP messages of three kinds, with repeated frames (two
    /// messages in one datagram number 0 and 1 within their frame).
    fn messages() -> Vec<(Origin, Vec<u8>)> {
        let key = FlowKey {
            tunnels: Default::default(),
            src: "192.0.2.1:5060".parse().unwrap(),
            dst: "198.51.100.2:5060".parse().unwrap(),
        };
        (0..2000u64)
            .map(|i| {
                let frame = 1 + i - i / 3;
                let at = Origin::of_stream(key, "udp", frame, 1_000_000 * i as i64);
                let text = match i % 3 {
                    0 => format!(
                        "INVITE sip:b@example.net SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{i}\r\n\
                         From: <sip:a@example.com>;tag=f{i}\r\nTo: <sip:b@example.net>\r\n\
                         Call-ID: c{i}\r\nCSeq: 1 INVITE\r\nRequire: precondition\r\n\
                         Content-Length: 0\r\n\r\n"
                    ),
                    1 => format!(
                        "SIP/2.0 420 Bad Extension\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{i}\r\n\
                         From: <sip:a@example.com>;tag=f{i}\r\nTo: <sip:b@example.net>;tag=t{i}\r\n\
                         Call-ID: c{i}\r\nCSeq: 1 INVITE\r\nUnsupported: precondition\r\n\
                         Content-Length: 0\r\n\r\n"
                    ),
                    _ => format!(
                        "OPTIONS sip:b@example.net SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{i}\r\n\
                         From: <sip:a@example.com>;tag=f{i}\r\nTo: <sip:b@example.net>\r\n\
                         Call-ID: c{i}\r\nCSeq: 2 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                    ),
                };
                (at, text.into_bytes())
            })
            .collect()
    }

    /// What a file's messages gave: each record's place, Call-ID and
    /// messages.csv row, in emitting order; the messages counted and the
    /// counts by method and status.
    type Digested = (
        Vec<(u64, u32, String, Vec<u8>)>,
        u64,
        Vec<(String, u64)>,
        Vec<(u16, u64)>,
    );

    /// Digests `msgs` as `Out::message` does, with a borrowed helper given
    /// back once the `give_back_at`-th message has been pushed (`None`:
    /// no helper), and the pool finished at the end as `read_file` does.
    fn digest_all(msgs: &[(Origin, Vec<u8>)], give_back_at: Option<usize>) -> Digested {
        let dir = tempfile::tempdir().unwrap();
        let store = AnomalyStore::new(dir.path());
        let wants = digest::Wants {
            rows: true,
            styles: None,
        };
        let flag = AtomicBool::new(false);
        let mut got = Vec::new();
        let mut emit = |f: Found| {
            let row = f.row.map(|r| r.head.to_vec()).unwrap_or_default();
            got.push((
                f.rec.at.frame,
                f.rec.at.seq,
                f.rec.call_id().to_string(),
                row,
            ));
        };
        let digest = std::thread::scope(|scope| {
            let pool = give_back_at
                .map(|_| digest::Pool::spawn(scope, 1, "f", 0, &wants, &store).until(&flag));
            let mut out = Out {
                digest: digest::Digest::new("f", 0, &wants, &store),
                last_frame: (0, 0),
                emit: Emit::To {
                    emit: &mut emit,
                    pool: pool.map(Box::new),
                },
                stream_sip_frames: 0,
            };
            for (i, (at, bytes)) in msgs.iter().enumerate() {
                if give_back_at == Some(i) {
                    flag.store(true, Ordering::Relaxed);
                }
                let m = sip::parse_message(bytes, Framing::Datagram).unwrap();
                out.message(at, &m, Framing::Datagram);
            }
            out.give_back();
            out.digest
        });
        let method = digest.counters.method.into_iter().collect();
        let status = digest.counters.status.into_iter().collect();
        (got, digest.sip_messages, method, status)
    }

    /// A helper borrowed at the start of a file and given back part way
    /// (after its first batches, in the middle of one, or never) leaves
    /// the same records, in the same order, with the same rows and counts,
    /// as digesting every message on the file's thread.
    #[test]
    fn a_borrowed_helper_given_back_mid_file_changes_nothing() {
        let msgs = messages();
        let inline = digest_all(&msgs, None);
        assert_eq!(inline.0.len(), 2000);
        assert_eq!(inline.1, 2000);
        assert!(inline.0.iter().all(|r| !r.3.is_empty()), "rows wanted");
        for at in [0, 1, 700, 1025, 1999, 5000] {
            let borrowed = digest_all(&msgs, Some(at));
            assert!(borrowed == inline, "given back at message {at}");
        }
    }
}
