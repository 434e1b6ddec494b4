//! The pipeline: inputs → per-file decoding (in parallel, [`merge`]) → one
//! capture-time timeline → session tracking in partitions (`track`) and the
//! rules → CSV files (sessions in start order through [`spill`]).
//!
//! Each file is decoded by its own [`Decoder`] on a thread of the merge; the
//! merged order depends only on the data, the timeline is tracked as a fixed
//! number of partitions (in parallel from `--jobs` 3 on) merged back into one
//! deterministic order, and every report is ordered before it is written,
//! so the output bytes are the same for every `--jobs` value and every
//! order in which the inputs were named.

mod anomalies;
mod digest;
pub mod extract;
mod extsort;
mod html;
mod inputs;
mod lanes;
mod manifest;
mod media;
pub mod merge;
pub mod merge_reports;
mod out_dir;
mod partition_log;
mod priority;
pub mod records;
pub mod router;
pub mod routes;
pub mod spill;
mod styles;
mod track;
pub use track::PARTITIONS;

pub use inputs::{Input, expand_inputs, inputs_to_analyse};
pub use out_dir::{REPORT_NAMES, STAGING_PREFIX, prepare_out_dir};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::anomaly::PacketAnomaly;
use crate::capture::{self, format_rfc3339_micros};
use crate::dialog::{SessionSummary, SipRecord, TrackAnomaly};

use crate::error::{Error, ErrorKind};
use crate::packet::sctp::SctpEvent;
use crate::packet::ws::{self, WsEvent};
use crate::packet::{
    Datagram, Decoder, FlowKey, Origin, PacketCounts, Sink, StreamEvent, TunnelPath,
};
use crate::report::rows::InputRow;
use crate::report::sessions::{failure_rows, flags_cell, session_row, with_flags};
use crate::report::{self, RawCsv, Text};
use crate::rules;
use crate::sip::stream::FramerEvent;
use crate::sip::{self, Framing, Message};
use anomalies::AnomalyStore;

/// What to run: built once from the command line, then read-only.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Files and directories, as the user named them.
    pub inputs: Vec<PathBuf>,
    /// Output directory.
    pub out_dir: PathBuf,
    /// Worker threads (`None`: all cores).
    pub jobs: Option<usize>,
    /// Also write messages.csv.
    pub messages: bool,
    /// Also write the Parquet twins of sessions, failures, messages and
    /// summary (`--format csv,parquet`, [`report::parquet`]).
    pub parquet: bool,
    /// Bytes read from the input files so far, added to as they are read
    /// (compressed bytes for compressed files): the progress display.
    pub progress: Option<capture::ByteCounter>,
    /// The home-network policy (rules.md §E): `--policy FILE`, or the
    /// built-in default ([`crate::rules::policy::Policy::builtin`], also
    /// `Default::default()`) without it. Besides the policy verdicts it sets
    /// W0 (`window_ns`), `max_retries`, `extra_droppable` and `sdp_mode`.
    pub policy: std::sync::Arc<crate::rules::policy::Policy>,
    /// Write report.html with the ladders of at most this many sessions
    /// (`--html-sessions`, default 500); `None`: no report.html
    /// (`--no-html`, and the library default).
    pub html: Option<usize>,
    /// Sessions of the table when report.html is not written but
    /// `pcap_dir` is (`--no-html --pcap-dir`; 0: 500).
    pub table: usize,
    /// `--pcap-dir`: where the per-session pcaps of report.html's sessions
    /// go (written by the caller after the run, `extract.rs`); report.html
    /// links to them.
    pub pcap_dir: Option<PathBuf>,
    /// Where the reports end up when `out_dir` is the run's temporary
    /// directory (set by [`run`]): report.html's links are relative to it.
    pub report_dir: Option<PathBuf>,
    /// `analyze --records --partition K/N`: also write the log
    /// `merge-reports` merges the partitions' reports from
    /// ([`partition_log`], [`merge_reports`]).
    pub partition_log: Option<(usize, usize)>,
    /// The records carry their homes (`--routes`, routes.rs): tracking
    /// takes them as they are instead of routing again.
    pub routed: bool,
    /// The memory budget in bytes (`--memory`; `None`: none, the library
    /// default): above a quarter of it, waiting sessions go to spill files in
    /// `out_dir` ([`track::Tracking::memory_budget`]).
    pub memory: Option<u64>,
}

/// The figures of a finished run (for the stderr summary).
#[derive(Debug, Default)]
pub struct RunSummary {
    /// The reports described as they were written (run.json takes them
    /// from here instead of reading them back).
    pub described: Vec<report::written::Written>,
    /// Input files.
    pub files: u64,
    /// Files that could not be read to their end.
    pub failed_files: Vec<String>,
    /// Packet accounting over all files.
    pub packets: u64,
    /// Packets that carried SIP.
    pub sip_packets: u64,
    /// Packets that carried no SIP.
    pub other_packets: u64,
    /// Packets that failed to decode.
    pub undecodable_packets: u64,
    /// SIP messages.
    pub sip_messages: u64,
    /// SIP messages that repeat an earlier one (retransmissions and capture
    /// duplicates, rules.md §A.2).
    pub retransmissions: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Sessions (sessions.csv rows).
    pub sessions: u64,
    /// Sessions by outcome.
    pub outcomes: Vec<(String, u64)>,
    /// Sessions by verdict.
    pub verdicts: Vec<(String, u64)>,
    /// failures.csv rows by verdict.
    pub failure_verdicts: Vec<(String, u64)>,
    /// failures.csv rows flagged RETRY_WINDOW_CUT: less than the retry
    /// window of capture after the failure (rules.md §D.3 item 4).
    pub window_cut_failures: u64,
    /// Sorted run files sessions.csv went through (long-lived sessions held
    /// many finished ones back; `pipeline::spill`).
    pub spill_runs: usize,
    /// Waiting sessions kept in spill files for a while under the memory
    /// budget (`--memory`).
    pub cold_sessions: u64,
    /// Anomalies by kind.
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Sorted run files the anomalies went through (0: all in memory).
    pub anomaly_spill_runs: usize,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// Everything one file produced.
struct FileResult {
    input: InputRow,
    /// Capture time of the file's last packet, SIP or not (`None`: no
    /// packet): the batch ends at the latest of these (rules.md §D.3, §G.21).
    last_packet_ns: Option<i64>,
    counters: Counters,
    failed: bool,
}

/// Per-file counters for summary.csv.
#[derive(Default)]
struct Counters {
    transport: rustc_hash::FxHashMap<(TunnelPath, &'static str), u64>,
    method: BTreeMap<String, u64>,
    status: BTreeMap<u16, u64>,
}

/// One SIP message as the batch-wide stages need it: the dialog stage's
/// record, and its messages.csv row (only with `--messages`).
struct Found {
    rec: SipRecord,
    /// Came over a TCP stream (plain or WebSocket): report.html's ladder
    /// notes where its segments start.
    tcp: bool,
    /// Only with report.html: what its ladder takes from the text (absent
    /// for records read back; the ladder store takes it then).
    ladder: Option<html::LadderPre>,
    /// Only with `--messages`.
    row: Option<PendingRow>,
}

/// A messages.csv row encoded on the thread that found the message, up to
/// its last two columns (`retransmission`, `session`), which the tracker
/// decides: no per-field strings cross threads, and the tracker's thread only
/// appends bytes.
struct PendingRow {
    /// Every column before `retransmission`, each followed by its comma.
    head: Box<[u8]>,
    retransmission: Option<bool>,
}

impl merge::Timed for Found {
    fn order(&self) -> (i64, u64, u32) {
        (self.rec.at.ts_ns, self.rec.at.frame, self.rec.at.seq)
    }
}

/// What the tracker carries for each message until it knows its session:
/// the messages.csv row (with `--messages`) and the ladder summary (with
/// report.html).
struct Payload {
    /// Position in the merged timeline (the order messages.csv keeps).
    seq: u64,
    row: Option<PendingRow>,
    /// Slot in the ladder store.
    ladder: Option<u32>,
    /// The tracker found it a retransmission (drawn faint in the ladder).
    repeat: bool,
}

/// The per-file sink: SIP framing of TCP streams (`framers`) and everything
/// that turns messages and anomalies into rows (`out`). Two fields so both
/// can be borrowed at once in the framers' callback.
struct FileSink<'a> {
    framers: sip::stream::Framers,
    /// TCP directions that carry WebSocket (RFC 7118): their bytes go
    /// through a deframer instead of the SIP framers.
    ws: rustc_hash::FxHashMap<FlowKey, ws::Deframer>,
    out: Out<'a>,
}

struct Out<'a> {
    /// Counters, anomalies and records of the messages digested on this
    /// thread (all of them without helpers).
    digest: digest::Digest,
    /// Frame of the last message, and how many messages it completed.
    last_frame: (u64, u32),
    /// Where the records go.
    emit: Emit<'a>,
    /// TCP segments and SCTP packets found to carry (part of) a SIP message
    /// (directly, in WebSocket frames, or in SCTP user messages): counted
    /// `other` by the decoder, moved to `sip` at the end of the file.
    stream_sip_frames: u64,
}

/// Where a file's records go: straight on (with digest helpers or not),
/// or kept with their place in the file for the lanes' merge (`lanes.rs`).
enum Emit<'a> {
    To {
        emit: &'a mut (dyn FnMut(Found) + Send),
        /// Helpers digesting messages in parallel (`--jobs` > 3).
        pool: Option<digest::Pool<'a>>,
    },
    Keep {
        /// The place in the file being decoded ([`lanes::Place`]).
        at: u64,
        found: Vec<(u64, Found)>,
    },
}

impl Out<'_> {
    fn add_anomaly(&mut self, frame: u64, kind: &'static str, detail: String) {
        self.digest.add_anomaly(frame, kind, detail);
    }

    /// A SIP message scanned with `framing`: digested here or by a helper.
    fn message(&mut self, at: &Origin, msg: &Message<'_>, framing: Framing) {
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
            } => p.push(at, seq, framing, msg.as_bytes(), *emit),
            Emit::To { emit, pool: None } => emit(self.digest.message(at, seq, msg)),
            Emit::Keep { at: place, found } => {
                found.push((*place, self.digest.message(at, seq, msg)));
            }
        }
    }

    /// What the SIP framer of a TCP stream produced.
    fn framed(&mut self, ev: FramerEvent<'_>) {
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
    fn transport_message(&mut self, at: Origin, bytes: &[u8], new_frames: usize) {
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
    fn sctp_event(&mut self, ev: &SctpEvent<'_>) {
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
    fn ws_event(&mut self, key: FlowKey, ev: WsEvent<'_>) {
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
    fn end_file(mut self, dec: Decoder, packets: u64) -> (PacketCounts, Out<'a>) {
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
        if !sip::is_sip_start(d.payload) {
            return false;
        }
        match sip::parse_message(d.payload, Framing::Datagram) {
            Ok(msg) => {
                self.out.message(&d.at, &msg, Framing::Datagram);
                true
            }
            Err(e) => {
                let detail = match e {
                    sip::SipError::Invalid { offset, reason } => {
                        format!("invalid SIP at byte {offset}: {reason}")
                    }
                    sip::SipError::Incomplete => "incomplete SIP message".into(),
                };
                self.out
                    .add_anomaly(d.at.at.frame, PacketAnomaly::SipStartInvalid.id(), detail);
                false
            }
        }
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

fn linktype_name(lt: u32) -> String {
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
struct Threads {
    /// Threads the lanes of a laned file run on.
    lanes: usize,
    /// Digest helpers beside the file's thread otherwise.
    helpers: usize,
}

impl Threads {
    /// `--jobs` shared out: `kept` threads stay with the work after
    /// decoding (tracking and the rules in `analyze`: 1; writing in
    /// `extract-records`: 0, it is light) and the rest run lanes; helpers
    /// come after `beside` threads. On 2 cores `analyze -j2` so decodes on
    /// one thread: its tracking already has the other core, and lanes there
    /// measured 9 % slower (docs/perf-history.md).
    fn of(cfg: &Config, kept: usize, beside: usize) -> Threads {
        let jobs = jobs_of(cfg);
        Threads {
            lanes: jobs.saturating_sub(kept).max(1),
            helpers: jobs.saturating_sub(beside).min(MAX_HELPERS),
        }
    }
}

fn process_file(
    input: &Input,
    file_idx: u32,
    progress: Option<&capture::ByteCounter>,
    wants: &digest::Wants,
    threads: Threads,
    store: &AnomalyStore,
    emit: &mut (dyn FnMut(Found) + Send),
) -> FileResult {
    if lanes::use_lanes(input, threads.lanes) {
        return lanes::read_file(input, file_idx, progress, wants, store, threads.lanes, emit);
    }
    let helpers = threads.helpers;
    std::thread::scope(|scope| {
        let pool = (helpers > 0)
            .then(|| digest::Pool::spawn(scope, helpers, &input.display, file_idx, wants, store));
        read_file(input, file_idx, progress, wants, store, pool, emit)
    })
}

/// [`process_file`] on this thread, with `pool` digesting messages (or not).
fn read_file<'a>(
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
            emit: Emit::To { emit, pool },
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
    if let Emit::To {
        emit,
        pool: Some(p),
    } = std::mem::replace(
        &mut out.emit,
        Emit::Keep {
            at: 0,
            found: Vec::new(),
        },
    ) {
        for d in p.finish(emit) {
            out.digest.absorb(d);
        }
    }
    let span = Span { bytes, first, last };
    file_result(input, &info, err, span, counts, out.digest)
}

/// What the reading of a file measured besides the packets: captured bytes,
/// first and last capture time.
struct Span {
    bytes: u64,
    first: i64,
    last: i64,
}

/// The file's summary row and counters, from the reader's figures and the
/// decoding's (merged over its lanes or helpers).
fn file_result(
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

/// Where the merged timeline's consumer writes: messages.csv (optional),
/// sessions.csv through a reorder buffer (rows sorted by start, then id),
/// and the session counts for summary.csv.
struct Reports {
    files: Vec<String>,
    sessions: RawCsv,
    failures: RawCsv,
    /// Finished sessions (with their failures.csv rows), encoded, waiting
    /// for every earlier-starting one (spilled to run files when many).
    waiting: Option<spill::SortedRows>,
    policy: std::sync::Arc<rules::policy::Policy>,
    out_dir: PathBuf,
    /// Run files the session rows went through (0: all in memory).
    spill_runs: usize,
    error: Option<Error>,
    /// The counts of summary.csv, by typed value.
    tally: rules::tally::Tally,
    /// Sessions with a capability refusal, for INCONSISTENT_EXPERIENCE.
    experience: rules::ExperienceGroups,
    /// The sessions given INCONSISTENT_EXPERIENCE (known when the last rows
    /// are written), sorted.
    inconsistent: Vec<u64>,
    /// The flagged twins of the session rows written before the flag was
    /// decided (`spill::Twins`), put in place when sessions.csv is finished.
    twins: Option<spill::Twins>,
    /// The rows report.html may show.
    html: Option<html::RowStore>,
    /// `--partition`: the log for `merge-reports`.
    log: Option<partition_log::PartitionLog>,
}

/// The tracker's side of the reports: messages.csv, written in feed order
/// as the tracker releases each message with its session, and the
/// tracker's anomalies.
struct Feed {
    messages: Option<RawCsv>,
    tail: Vec<u8>,
    error: Option<Error>,
    /// The tracker's anomalies go here (file index, frame).
    anomalies: AnomalyStore,
    /// Input names by index, for the detail of a related message.
    files: Vec<String>,
    /// The messages of the sessions report.html may show.
    ladders: Option<html::LadderStore>,
    /// The tracker's anomalies by kind (the partition log keeps them apart
    /// from the decoding's).
    tracker_kinds: BTreeMap<&'static str, u64>,
}

/// What the tracker hands the rules stage at each collection: the sessions
/// it finished, in order, and how far rows may be written.
struct Finished {
    sessions: Vec<SessionSummary>,
    /// Start of the earliest live session (`None`: none live).
    limit: Option<i64>,
    /// End of the batch: write everything.
    all: bool,
}

impl Feed {
    /// Lets the ladder store learn which sessions report.html keeps.
    fn poll(&mut self) {
        if let Some(l) = self.ladders.as_mut() {
            l.poll();
        }
    }

    /// A message handed back by the tracking stage with its session, in
    /// feed order: its messages.csv row and its ladder entry.
    fn message(&mut self, p: Payload, sid: Option<u64>) {
        if let (Some(l), Some(slot)) = (self.ladders.as_mut(), p.ladder) {
            if p.repeat {
                l.set_retransmission(slot, true);
            }
            l.message(sid, slot);
        }
        if let (Some(row), Some(w)) = (p.row, self.messages.as_mut()) {
            // The last two columns, known only now (rows.rs order): a bool
            // and a number, which CSV never quotes, written as the row
            // encoder writes them (every golden messages.csv holds both
            // kinds). A row encoder per message was 1.3 % of the run.
            self.tail.clear();
            self.tail.extend_from_slice(match row.retransmission {
                Some(true) => b"true,",
                Some(false) => b"false,",
                None => b",",
            });
            if let Some(id) = sid {
                crate::report::message_csv::number_into(&mut self.tail, id);
            }
            self.tail.push(b'\n');
            if self.error.is_none() {
                if let Err(e) = w.raw(&row.head).and_then(|()| w.raw(&self.tail)) {
                    self.error = Some(e);
                }
            }
        }
    }

    /// A tracker anomaly.
    fn anomaly(&mut self, a: &TrackAnomaly) {
        *self.tracker_kinds.entry(a.kind).or_default() += 1;
        let detail = tracker_detail(a, &self.files);
        self.anomalies.buf(a.file).push(a.frame, a.kind, detail);
    }
}

/// The (time, tracking partition) each finished session was numbered with
/// (all `None` unless a partition log is written).
type Origins = Vec<Option<(i64, u32)>>;

/// Where finished sessions are evaluated and written: on this thread, or on
/// a thread of their own that receives them in order (`--jobs` > 1), at a
/// lower priority than the threads that feed it (priority.rs).
enum RulesStage<'s> {
    Inline(Box<Reports>),
    Thread {
        tx: std::sync::mpsc::SyncSender<(Finished, Origins)>,
        handle: std::thread::ScopedJoinHandle<'s, Reports>,
    },
}

impl<'s> RulesStage<'s> {
    fn new<'env>(
        reports: Reports,
        scope: Option<&'s std::thread::Scope<'s, 'env>>,
    ) -> RulesStage<'s> {
        match scope {
            None => RulesStage::Inline(Box::new(reports)),
            Some(sc) => {
                let (tx, rx) = std::sync::mpsc::sync_channel::<(Finished, Origins)>(4);
                let mut reports = reports;
                let handle = sc.spawn(move || {
                    priority::sink_thread();
                    for (f, o) in rx {
                        reports.sessions(f, o);
                    }
                    reports
                });
                RulesStage::Thread { tx, handle }
            }
        }
    }

    /// Hands `f` to the rules stage, with the numbering origin of each of
    /// its sessions when `tracking` keeps them (partition log).
    fn send(&mut self, f: Finished, tracking: &track::Tracking) {
        let o: Origins = f.sessions.iter().map(|s| tracking.origin(s.id)).collect();
        match self {
            RulesStage::Inline(r) => r.sessions(f, o),
            RulesStage::Thread { tx, .. } => {
                // A send fails only when the stage panicked; join reports it.
                let _ = tx.send((f, o));
            }
        }
    }

    fn finish(self) -> Reports {
        match self {
            RulesStage::Inline(r) => *r,
            RulesStage::Thread { tx, handle } => {
                drop(tx);
                handle
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
        }
    }
}

/// The number in environment variable `name`, when set and a number: the
/// knobs tests use to run small inputs through many batches, rounds or
/// spills (each caller documents its own).
pub(crate) fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Finished sessions held in memory before they are spilled to run files
/// (about 1 KB each): 100,000, or under a memory budget (`--memory`) as
/// many as an eighth of it holds (32,768 for 256 MB).
/// `SIPAUDIT_SPILL_ROWS` overrides it (tests use a tiny value to exercise
/// the external merge).
fn spill_rows_within(budget: Option<u64>) -> usize {
    let cap = budget.map_or(100_000, |b| (b / 8 / 1024).clamp(1024, 100_000) as usize);
    env_number("SIPAUDIT_SPILL_ROWS").unwrap_or(cap)
}

/// [`spill_rows_within`] without a budget.
fn spill_rows() -> usize {
    spill_rows_within(None)
}

impl Reports {
    fn keep(&mut self, r: Result<(), Error>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    /// Evaluates a finished session, counts it and queues its rows: with a
    /// twin flagged INCONSISTENT_EXPERIENCE when it may get that flag.
    fn session(&mut self, s: &SessionSummary, origin: Option<(i64, u32)>) {
        let e = rules::session::evaluate_session(s, &self.policy);
        self.tally.add(&e);
        let mut row = session_row(s, &e, &self.files);
        let frows = failure_rows(s, &e.ev, &self.files);
        let flag = rules::catalogue::Flag::InconsistentExperience;
        // The twin differs from the row in its flags cell only.
        let twin_flags = e
            .experience
            .is_some()
            .then(|| flags_cell(&e.flags_with(flag)));
        if let Some(h) = self.html.as_mut() {
            let times: Vec<i64> =
                e.ev.failures
                    .iter()
                    .filter(|f| f.row)
                    .map(|f| f.failure.at.ts_ns)
                    .collect();
            h.session(&row, twin_flags.as_ref(), &frows, &times);
        }
        if let (Some(log), Some(o)) = (self.log.as_mut(), origin) {
            let twin = twin_flags.as_ref().map(|f| with_flags(&row, f));
            let entry =
                partition_log::entry(s, o, &row, twin.as_ref(), &frows, e.experience.as_ref());
            if let Err(err) = log.session(&entry) {
                self.keep(Err(err));
            }
        }
        if let Some(x) = e.experience {
            self.experience.add(x);
        }
        let mut rows = spill::Rows {
            session: Vec::new(),
            flagged: None,
            failures: Vec::new(),
        };
        report::encode(&row, &mut rows.session);
        // The row is not read after this: it becomes its twin.
        rows.flagged = twin_flags.map(|f| {
            row.flags = f;
            let mut b = Vec::new();
            report::encode(&row, &mut b);
            b
        });
        for f in &frows {
            report::encode(f, &mut rows.failures);
        }
        if let Some(w) = self.waiting.as_mut() {
            w.insert((s.start_ns, s.id), rows);
        }
    }

    /// Evaluates finished sessions and writes the rows no live session can
    /// precede any more; at the end of the batch, all of them, with
    /// INCONSISTENT_EXPERIENCE (rules.md §F) on the sessions that get it.
    fn sessions(&mut self, fin: Finished, origins: Origins) {
        let Finished {
            sessions: finished,
            limit,
            all,
        } = fin;
        // By value: each session's state is freed as soon as its rows are
        // built (at the end of a capture every open session finishes at
        // once: 200,000 on the scanner burst).
        for (i, s) in finished.into_iter().enumerate() {
            self.session(&s, origins.get(i).copied().flatten());
        }
        let (sessions, failures) = (&mut self.sessions, &mut self.failures);
        let mut err = None;
        let mut out = |s: &[u8], f: &[u8]| -> std::io::Result<()> {
            if err.is_none() {
                if let Err(e) = sessions.raw(s).and_then(|_| failures.raw(f)) {
                    err = Some(e);
                }
            }
            Ok(())
        };
        let r = match (all, self.waiting.as_mut()) {
            (_, None) => Ok(()),
            (false, Some(w)) => w.flush(limit, &mut out),
            (true, Some(_)) => {
                let w = self.waiting.take().expect("present");
                self.spill_runs = w.runs();
                self.inconsistent = self.experience.inconsistent();
                let ids = &self.inconsistent;
                w.finish(&|id| ids.binary_search(&id).is_ok(), &mut out)
                    .map(|twins| self.twins = twins)
            }
        };
        if let Some(e) = err {
            self.keep(Err(e));
        }
        if let Err(source) = r {
            self.keep(Err(ErrorKind::Output {
                path: self.out_dir.clone(),
                source,
            }
            .into()));
        }
    }
}

/// The detail of a tracker anomaly, with the message it refers to named.
fn tracker_detail(a: &TrackAnomaly, files: &[String]) -> String {
    match a.related {
        Some((f, frame)) => format!(
            "{} (request: {} frame {frame})",
            a.detail,
            files.get(f as usize).map_or("?", |s| s.as_str())
        ),
        None => a.detail.clone(),
    }
}

/// Finishes sessions.csv: as written, unless a row written before the
/// batch-wide flags were known has a twin that `inconsistent` (sorted)
/// names; then the file is copied once with those twins in place.
fn finish_sessions(
    sessions: RawCsv,
    twins: Option<spill::Twins>,
    inconsistent: &[u64],
) -> Result<report::written::Written, Error> {
    match twins {
        Some(t) if !inconsistent.is_empty() => {
            let flagged = |id: u64| inconsistent.binary_search(&id).is_ok();
            sessions.finish_edited(&mut |from, to| t.apply(&flagged, from, to).map(|_| ()))
        }
        _ => sessions.finish(),
    }
}

/// Most helper threads per file being read.
const MAX_HELPERS: usize = 8;

/// Runs one batch and writes the reports. Errors only for what stops the
/// whole run (the output directory); unreadable inputs are reported in
/// inputs.csv and [`RunSummary::failed_files`].
///
/// The files are decoded in parallel (one thread per file being read, at
/// most `--jobs` ahead of need) and merged into one capture-time timeline
/// ([`merge::merge`]); the partitions of `track::Tracking` rebuild
/// sessions from it, and rows are written as soon as they are final, so memory
/// follows the traffic in flight, not the input size.
///
/// The reports are written into a temporary directory inside the output
/// directory and moved into place at the end with `run.json`, the
/// manifest (`out_dir::Staging`): a run that fails or is killed leaves
/// the previous reports as they were.
pub fn run(cfg: &Config) -> Result<RunSummary, Error> {
    // Both checked before any file is written: first that something can be
    // analysed, then that the reports can be written.
    let inputs = inputs_to_analyse(&cfg.inputs)?;
    run_staged(cfg, &inputs, |staged| write_reports(staged, &inputs))
}

/// [`run`] once its inputs are known: `write` writes the reports into the
/// temporary directory of the configuration it is given.
fn run_staged(
    cfg: &Config,
    inputs: &[Input],
    write: impl FnOnce(&Config) -> Result<RunSummary, Error>,
) -> Result<RunSummary, Error> {
    let start = Instant::now();
    let started = std::time::SystemTime::now();
    prepare_out_dir(&cfg.out_dir)?;
    let input_files = manifest::input_files(inputs);
    let staging = out_dir::Staging::create(&cfg.out_dir)?;
    // Everything below writes into the temporary directory.
    let staged = Config {
        out_dir: staging.path().to_path_buf(),
        report_dir: Some(cfg.out_dir.clone()),
        ..cfg.clone()
    };
    let mut summary = write(&staged).map_err(|e| staging.unstage(e))?;
    if cfg.parquet {
        report::parquet::write_twins(staging.path()).map_err(|e| staging.unstage(e))?;
    }
    let files = manifest::describe_files(staging.path(), &staging.files()?, &summary.described)
        .map_err(|e| staging.unstage(e))?;
    let m = manifest::Manifest::of_run(
        cfg.policy.name().to_string(),
        started,
        input_files,
        summary.failed_files.clone(),
        files,
    );
    manifest::write(staging.path(), &m).map_err(|e| staging.unstage(e))?;
    staging.commit()?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// `--jobs`, or every core.
fn jobs_of(cfg: &Config) -> usize {
    cfg.jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Emits input `i`'s messages in file order (its anomalies into the store),
/// each with what the run wants of it besides its record ([`digest::Wants`]),
/// and returns its result.
type Produce<'a> = dyn Fn(usize, &AnomalyStore, &digest::Wants, &mut (dyn FnMut(Found) + Send)) -> FileResult
    + Sync
    + 'a;

/// Where a batch's messages come from: the captures, decoded (`analyze`),
/// or records files read back (`analyze --records`, `records.rs`).
struct Source<'a> {
    /// The inputs by index (display names: the reports name inputs so).
    inputs: &'a [Input],
    /// Each input's first packet time (the merge's hint).
    first_ts: Vec<Option<i64>>,
    /// Produces the messages of each input.
    produce: &'a Produce<'a>,
}

/// [`run`] without the temporary directory: writes every report into
/// `cfg.out_dir`.
fn write_reports(cfg: &Config, inputs: &[Input]) -> Result<RunSummary, Error> {
    // Helpers: see the thread plan in write_reports_from.
    let threads = Threads::of(cfg, 1, 3);
    let produce = |i: usize,
                   store: &AnomalyStore,
                   wants: &digest::Wants,
                   emit: &mut (dyn FnMut(Found) + Send)| {
        process_file(
            &inputs[i],
            i as u32,
            cfg.progress.as_ref(),
            wants,
            threads,
            store,
            emit,
        )
    };
    let src = Source {
        inputs,
        first_ts: inputs
            .iter()
            .map(|i| capture::first_timestamp(&i.path))
            .collect(),
        produce: &produce,
    };
    write_reports_from(cfg, &src)
}

/// Tracks sessions over the messages of `src` and writes every report into
/// `cfg.out_dir`.
fn write_reports_from(cfg: &Config, src: &Source<'_>) -> Result<RunSummary, Error> {
    let start = Instant::now();
    let inputs = src.inputs;
    let jobs = jobs_of(cfg);
    let first_ts = &src.first_ts;
    // --jobs N: one thread reads and decodes each file (or records file),
    // this one routes the timeline to the tracking partitions and, for
    // N < 3, runs them too (track.rs: from N = 3 on they run on a pool of N
    // threads, one batch behind the routing); for N > 1 finished sessions
    // are evaluated and written on a thread of their own (RulesStage); with
    // N > 2 a file of 1 MiB or more is decoded in lanes on N - 1 threads
    // (lanes.rs); a smaller one gets N - 3 helpers digesting its messages
    // (digest.rs).
    let opts = merge::MergeOptions {
        prefetch: jobs,
        ..merge::MergeOptions::default()
    };
    let mut feed = Feed {
        messages: if cfg.messages {
            Some(RawCsv::create(
                &cfg.out_dir,
                "messages.csv",
                report::MESSAGES_HEADER,
            )?)
        } else {
            None
        },
        tail: Vec::new(),
        error: None,
        anomalies: AnomalyStore::new(&cfg.out_dir),
        files: inputs.iter().map(|i| i.display.clone()).collect(),
        ladders: None,
        tracker_kinds: BTreeMap::new(),
    };
    let store = feed.anomalies.clone();
    let mut html_rows = None;
    let table = cfg.html.or(cfg.pcap_dir.as_ref().map(|_| match cfg.table {
        0 => 500,
        n => n,
    }));
    let mut wants = digest::Wants {
        rows: cfg.messages,
        styles: None,
    };
    if let Some(n) = table {
        let (rows, ladders) = html::stores(n);
        html_rows = Some(rows);
        wants.styles = Some(ladders.styles());
        feed.ladders = Some(ladders);
    }
    let reports = Reports {
        files: inputs.iter().map(|i| i.display.clone()).collect(),
        sessions: RawCsv::create(&cfg.out_dir, "sessions.csv", report::SESSIONS_HEADER)?,
        failures: RawCsv::create(&cfg.out_dir, "failures.csv", report::FAILURES_HEADER)?,
        waiting: Some(spill::SortedRows::new(
            &cfg.out_dir,
            spill_rows_within(cfg.memory),
        )),
        out_dir: cfg.out_dir.clone(),
        spill_runs: 0,
        policy: cfg.policy.clone(),
        error: None,
        tally: rules::tally::Tally::default(),
        experience: rules::ExperienceGroups::default(),
        inconsistent: Vec::new(),
        twins: None,
        html: html_rows,
        log: match cfg.partition_log {
            Some(kn) => Some(partition_log::PartitionLog::create(cfg, kn, inputs)?),
            None => None,
        },
    };
    let input_paths: Vec<PathBuf> = inputs.iter().map(|i| i.path.clone()).collect();
    let mut tracking = track::Tracking::new(
        i64::try_from(cfg.policy.window_ns()).unwrap_or(i64::MAX),
        jobs,
        cfg.messages || feed.ladders.is_some(),
    );
    if cfg.partition_log.is_some() {
        tracking.keep_origins();
    }
    if cfg.routed {
        tracking.routed();
    }
    if let Some(bytes) = cfg.memory {
        tracking.memory_budget(&cfg.out_dir, bytes);
    }
    let mut last_ts = i64::MIN;
    let (results, mut reports) = std::thread::scope(|scope| {
        let mut stage = RulesStage::new(reports, (jobs > 1).then_some(scope));
        let results = merge::merge(
            first_ts,
            &opts,
            |i, emit| (src.produce)(i, &store, &wants, emit),
            |_, found: Found| {
                last_ts = last_ts.max(found.rec.at.ts_ns);
                let ladders = &mut feed.ladders;
                let payload = Payload {
                    seq: tracking.next_seq(),
                    ladder: ladders
                        .as_mut()
                        .map(|l| l.summary(&found.rec, found.ladder, found.tcp)),
                    repeat: false,
                    row: found.row,
                };
                if tracking.push(found.rec, payload) {
                    tracking.run_batch(&mut |t| {
                        let f = t.collect(&mut feed, false);
                        stage.send(f, t);
                    });
                }
            },
        );
        // The capture ends at its last packet, not its last SIP message:
        // Timer B, the retry window and TRUNCATED are measured against it.
        let end = results
            .iter()
            .filter_map(|r: &FileResult| r.last_packet_ns)
            .fold(last_ts, i64::max);
        tracking.finish(end, &mut feed, &mut |f, t| stage.send(f, t));
        (results, stage.finish())
    });

    let mut summary = RunSummary {
        files: results.len() as u64,
        retransmissions: tracking.retransmissions(),
        sessions: reports.tally.sessions,
        cold_sessions: tracking.cold_sessions(),
        ..RunSummary::default()
    };
    let mut inputs_rows = Vec::with_capacity(results.len());
    let mut transport: BTreeMap<String, u64> = BTreeMap::new();
    let mut method: BTreeMap<String, u64> = BTreeMap::new();
    let mut status: BTreeMap<u16, u64> = BTreeMap::new();
    for r in results {
        if r.failed {
            // Printed here, in sorted input order, not from the workers.
            eprintln!("sipaudit: error: {}", r.input.error.0);
            summary.failed_files.push(r.input.file.0.clone());
        }
        summary.packets += r.input.packets;
        summary.sip_packets += r.input.sip_packets;
        summary.other_packets += r.input.other_packets;
        summary.undecodable_packets += r.input.undecodable_packets;
        summary.sip_messages += r.input.sip_messages;
        summary.bytes += r.input.bytes;
        for (k, v) in r.counters.transport {
            *transport.entry(format!("{}{}", k.0, k.1)).or_default() += v;
        }
        for (k, v) in r.counters.method {
            *method.entry(k).or_default() += v;
        }
        for (k, v) in r.counters.status {
            *status.entry(k).or_default() += v;
        }
        inputs_rows.push(r.input);
    }

    if let Some((path, source)) = tracking.take_cold_error() {
        return Err(ErrorKind::Output { path, source }.into());
    }
    if let Some(e) = feed.error.take().or_else(|| reports.error.take()) {
        return Err(e);
    }
    if let Some(w) = feed.messages.take() {
        summary.described.push(w.finish()?);
    }
    summary.spill_runs = reports.spill_runs;
    let Reports {
        sessions,
        failures,
        mut tally,
        inconsistent,
        twins,
        html: mut html_rows,
        files: reports_files,
        log,
        ..
    } = reports;
    if let Some(log) = log {
        log.finish(&partition_log::Trailer {
            sessions: summary.sessions,
            inconsistent: inconsistent.len() as u64,
            tracker_anomalies: feed
                .tracker_kinds
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        })?;
    }
    summary
        .described
        .push(finish_sessions(sessions, twins, &inconsistent)?);
    summary.described.push(failures.finish()?);
    if let Some(h) = html_rows.as_mut() {
        for &id in &inconsistent {
            h.use_flagged(id);
        }
    }
    tally.add_flag(
        rules::catalogue::Flag::InconsistentExperience,
        inconsistent.len() as u64,
    );
    summary.window_cut_failures = tally.window_cut;
    summary.verdicts = report::summary::spelled(&tally.verdict);
    summary.failure_verdicts = report::summary::spelled(&tally.failure_verdict);
    summary.outcomes = report::summary::spelled(&tally.outcome);
    report::write_csv(
        &cfg.out_dir,
        "inputs.csv",
        &inputs_rows,
        report::INPUTS_HEADER,
    )?;
    let written = store.write(&cfg.out_dir, &feed.files)?;
    summary.anomalies = written.by_kind;
    summary.anomaly_spill_runs = written.spill_runs;

    let totals = [
        ("files", summary.files),
        ("files_with_errors", summary.failed_files.len() as u64),
        ("packets", summary.packets),
        ("sip_packets", summary.sip_packets),
        ("other_packets", summary.other_packets),
        ("undecodable_packets", summary.undecodable_packets),
        ("sip_messages", summary.sip_messages),
        ("retransmissions", summary.retransmissions),
        ("sessions", summary.sessions),
    ];
    let srows = report::summary::summary_rows(
        &tally,
        &report::summary::BatchCounts {
            totals: &totals,
            policy: cfg.policy.name(),
            transport: &transport,
            method: &method,
            status: &status,
            anomalies: &summary.anomalies,
        },
    );
    report::write_csv(&cfg.out_dir, "summary.csv", &srows, report::SUMMARY_HEADER)?;
    if let (Some(rows), Some(ladders)) = (html_rows, feed.ladders.take()) {
        html::write(
            &cfg.out_dir,
            rows,
            ladders,
            &html::RunFacts {
                inputs: &inputs_rows,
                totals: &totals,
                summary: &srows,
                policy: cfg.policy.name(),
                files: &reports_files,
                pcap_dir: cfg.pcap_dir.as_deref(),
                report_dir: cfg.report_dir.as_deref().unwrap_or(&cfg.out_dir),
                paths: &input_paths,
            },
            cfg.html.is_some(),
        )?;
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}
