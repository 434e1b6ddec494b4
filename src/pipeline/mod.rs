//! The pipeline: inputs → per-file decoding (in parallel) → merged,
//! sorted rows → CSV files. The only module that uses rayon.
//!
//! Each file is decoded by its own [`Decoder`] on a rayon worker; results come
//! back in sorted-input order (`collect` on an indexed parallel iterator keeps
//! order), and every report is sorted before it is written, so the output
//! bytes are the same for every `--jobs` value and every order in which the
//! inputs were named.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::anomaly::PacketAnomaly;
use crate::capture::{self, format_rfc3339_micros};
use crate::dialog::{Retransmissions, TxnKey};
use crate::error::{Error, ErrorKind};
use crate::packet::sctp::SctpEvent;
use crate::packet::ws::{self, WsEvent};
use crate::packet::{Datagram, Decoder, FlowKey, PacketCounts, Sink, StreamEvent, TunnelPath};
use crate::report::rows::{AnomalyRow, InputRow, MessageRow, SummaryRow};
use crate::report::{self, Text};
use crate::sip::stream::FramerEvent;
use crate::sip::{self, Framing, Message, StartLine};

/// What to run: built once from the command line, then read-only.
#[derive(Debug, Clone)]
pub struct Config {
    /// Files and directories, as the user named them.
    pub inputs: Vec<PathBuf>,
    /// Output directory.
    pub out_dir: PathBuf,
    /// Worker threads (`None`: all cores).
    pub jobs: Option<usize>,
    /// Also write messages.csv.
    pub messages: bool,
    /// Called after each file is decoded (progress display).
    pub on_file_done: Option<fn()>,
}

/// One input file, after expansion of directories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Input {
    /// The path as the user gave it, or as found under a given directory.
    pub display: String,
    /// The path to open.
    pub path: PathBuf,
}

/// The figures of a finished run (for the stderr summary).
#[derive(Debug, Default)]
pub struct RunSummary {
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
    /// Anomalies by kind.
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// Expands directories (recursively, sorted by name) and sorts and
/// de-duplicates the resulting list, so naming order never matters. A path
/// that does not exist stays in the list: reading it reports the error.
pub fn expand_inputs(inputs: &[PathBuf]) -> Vec<Input> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(Input {
                display: p.to_string_lossy().into_owned(),
                path: p.clone(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

fn walk(dir: &Path, out: &mut Vec<Input>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        out.push(Input {
            display: dir.to_string_lossy().into_owned(),
            path: dir.to_path_buf(),
        });
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(Input {
                display: p.to_string_lossy().into_owned(),
                path: p,
            });
        }
    }
}

/// Everything one file produced.
struct FileResult {
    input: InputRow,
    messages: Vec<Found>,
    anomalies: Vec<AnomalyRow>,
    counters: Counters,
    failed: bool,
}

/// Per-file counters for summary.csv.
#[derive(Default)]
struct Counters {
    transport: HashMap<(TunnelPath, &'static str), u64>,
    method: BTreeMap<String, u64>,
    status: BTreeMap<u16, u64>,
}

/// One SIP message as the batch-wide stages need it: capture time, frame,
/// its transaction key, and its messages.csv row (only with `--messages`).
struct Found {
    ts_ns: i64,
    frame: u64,
    key: TxnKey,
    /// Boxed: a `MessageRow` is ~440 bytes, and without `--messages` this
    /// record must stay small (it is held for every message of the batch).
    row: Option<Box<MessageRow>>,
}

/// Where one SIP message was seen: what its messages.csv row needs besides
/// the message itself.
struct Seen {
    frame: u64,
    ts_ns: i64,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    tunnels: TunnelPath,
    /// `udp`, `tcp`, `sctp` or `ws`.
    proto: &'static str,
    /// Cut short by the capture (snaplen).
    truncated: bool,
}

/// The per-file sink: SIP framing of TCP streams (`framers`) and everything
/// that turns messages and anomalies into rows (`out`). Two fields so both
/// can be borrowed at once in the framers' callback.
struct FileSink<'a> {
    framers: sip::stream::Framers,
    /// TCP directions that carry WebSocket (RFC 7118): their bytes go
    /// through a deframer instead of the SIP framers.
    ws: HashMap<FlowKey, ws::Deframer>,
    out: Out<'a>,
}

struct Out<'a> {
    file: &'a str,
    want_rows: bool,
    messages: Vec<Found>,
    anomalies: Vec<AnomalyRow>,
    sip_messages: u64,
    /// TCP segments and SCTP packets found to carry (part of) a SIP message
    /// (directly, in WebSocket frames, or in SCTP user messages): counted
    /// `other` by the decoder, moved to `sip` at the end of the file.
    stream_sip_frames: u64,
    counters: Counters,
    scratch: String,
}

impl Out<'_> {
    fn add_anomaly(&mut self, frame: u64, kind: &'static str, detail: String) {
        self.anomalies.push(AnomalyRow {
            file: Text(self.file.to_string()),
            frame,
            kind,
            detail: Text(detail),
        });
    }

    fn tags(&mut self, msg: &Message<'_>, id: sip::HeaderId, case: sip::Case) -> Text {
        self.scratch.clear();
        sip::write_tag_list(&mut self.scratch, msg.list(id), case);
        Text(self.scratch.clone())
    }

    fn message(&mut self, at: &Seen, msg: &Message<'_>) {
        self.sip_messages += 1;
        let method_bytes = msg.method();
        *self
            .counters
            .transport
            .entry((at.tunnels, at.proto))
            .or_default() += 1;
        match msg.start() {
            StartLine::Request { method, .. } => {
                let m = String::from_utf8_lossy(method);
                if let Some(c) = self.counters.method.get_mut(m.as_ref()) {
                    *c += 1;
                } else {
                    self.counters.method.insert(m.into_owned(), 1);
                }
            }
            StartLine::Response { code, .. } => *self.counters.status.entry(code).or_default() += 1,
        }
        for a in msg.anomalies() {
            self.add_anomaly(at.frame, a.id(), a.to_string());
        }
        if at.truncated {
            self.add_anomaly(
                at.frame,
                PacketAnomaly::TruncatedPacket.id(),
                "SIP message cut short by the capture".into(),
            );
        }
        let key = TxnKey::of(msg);
        if !self.want_rows {
            self.messages.push(Found {
                ts_ns: at.ts_ns,
                frame: at.frame,
                key,
                row: None,
            });
            return;
        }
        let row = MessageRow {
            file: Text(self.file.to_string()),
            frame: at.frame,
            time: format_rfc3339_micros(at.ts_ns),
            src: at.src.to_string(),
            dst: at.dst.to_string(),
            transport: format!("{}{}", at.tunnels, at.proto),
            kind: if msg.is_request() {
                "request"
            } else {
                "response"
            },
            method: Text::opt(method_bytes),
            status: msg.status(),
            call_id: Text::opt(msg.call_id()),
            cseq: msg.cseq().map(|(n, _)| n),
            from_tag: Text::opt(msg.from_tag()),
            to_tag: Text::opt(msg.to_tag()),
            via_branch: Text::opt(msg.top_via_branch()),
            require: self.tags(msg, sip::HeaderId::Require, sip::Case::Lower),
            proxy_require: self.tags(msg, sip::HeaderId::ProxyRequire, sip::Case::Lower),
            supported: self.tags(msg, sip::HeaderId::Supported, sip::Case::Lower),
            unsupported: self.tags(msg, sip::HeaderId::Unsupported, sip::Case::Lower),
            allow: self.tags(msg, sip::HeaderId::Allow, sip::Case::Upper),
            precondition: msg.precondition().as_str(),
            retransmission: None,
            session: None,
        };
        self.messages.push(Found {
            ts_ns: at.ts_ns,
            frame: at.frame,
            key,
            row: Some(Box::new(row)),
        });
    }

    /// What the SIP framer of a TCP stream produced.
    fn framed(&mut self, ev: FramerEvent<'_>) {
        match ev {
            FramerEvent::Message(f) => {
                self.stream_sip_frames += f.new_frames.len() as u64;
                let at = Seen {
                    frame: f.frame,
                    ts_ns: f.ts_ns,
                    src: f.key.src,
                    dst: f.key.dst,
                    tunnels: f.key.tunnels,
                    proto: "tcp",
                    truncated: false,
                };
                match f.parse() {
                    Ok(msg) => self.message(&at, &msg),
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
    #[allow(clippy::too_many_arguments)]
    fn transport_message(
        &mut self,
        proto: &'static str,
        tunnels: TunnelPath,
        src: std::net::SocketAddr,
        dst: std::net::SocketAddr,
        bytes: &[u8],
        frame: u64,
        ts_ns: i64,
        new_frames: usize,
    ) {
        if !sip::is_sip_start(bytes) {
            return;
        }
        self.stream_sip_frames += new_frames as u64;
        let at = Seen {
            frame,
            ts_ns,
            src,
            dst,
            tunnels,
            proto,
            truncated: false,
        };
        match sip::parse_message(bytes, Framing::Datagram) {
            Ok(msg) => self.message(&at, &msg),
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
                "sctp",
                key.tunnels,
                key.src,
                key.dst,
                bytes,
                frame,
                ts_ns,
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
                "ws",
                key.tunnels,
                key.src,
                key.dst,
                payload,
                frame,
                ts_ns,
                new_frames.len(),
            ),
            WsEvent::Closed { .. } => {}
            WsEvent::Anomaly { frame, id, detail } => self.add_anomaly(frame, id, detail),
        }
    }
}

impl Sink for FileSink<'_> {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        if !sip::is_sip_start(d.payload) {
            return false;
        }
        match sip::parse_message(d.payload, Framing::Datagram) {
            Ok(msg) => {
                let at = Seen {
                    frame: d.frame,
                    ts_ns: d.ts_ns,
                    src: d.src,
                    dst: d.dst,
                    tunnels: d.tunnels,
                    proto: "udp",
                    truncated: d.truncated,
                };
                self.out.message(&at, &msg);
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
                    .add_anomaly(d.frame, PacketAnomaly::SipStartInvalid.id(), detail);
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

fn process_file(input: &Input, want_rows: bool) -> FileResult {
    let mut dec = Decoder::default();
    let mut sink = FileSink {
        framers: sip::stream::Framers::default(),
        ws: HashMap::new(),
        out: Out {
            file: &input.display,
            want_rows,
            messages: Vec::new(),
            anomalies: Vec::new(),
            sip_messages: 0,
            stream_sip_frames: 0,
            counters: Counters::default(),
            scratch: String::new(),
        },
    };
    let mut bytes = 0u64;
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    let (info, err) = capture::read_capture(&input.path, |p| {
        bytes += p.data.len() as u64;
        first = first.min(p.ts_ns);
        last = last.max(p.ts_ns);
        dec.decode(p, &mut sink);
    });
    let mut counts: PacketCounts = dec.finish(&mut sink);
    let FileSink {
        framers,
        ws,
        mut out,
    } = sink;
    framers.finish(&mut |fe| out.framed(fe));
    // Deframers still open at the end of the file, in a fixed order.
    let mut open: Vec<_> = ws.into_iter().collect();
    open.sort_by_key(|(k, _)| (k.src, k.dst));
    for (key, mut d) in open {
        d.finish(info.packets, &mut |we| out.ws_event(key, we));
    }
    counts.move_to_sip(out.stream_sip_frames);
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
        sip_messages: out.sip_messages,
        error: Text(err.as_ref().map(|e| e.to_string()).unwrap_or_default()),
    };
    FileResult {
        input: input_row,
        messages: out.messages,
        anomalies: out.anomalies,
        counters: out.counters,
        failed: err.is_some(),
    }
}

/// Runs one batch and writes the reports. Errors only for what stops the
/// whole run (the output directory); unreadable inputs are reported in
/// inputs.csv and [`RunSummary::failed_files`].
pub fn run(cfg: &Config) -> Result<RunSummary, Error> {
    let start = Instant::now();
    std::fs::create_dir_all(&cfg.out_dir).map_err(|source| ErrorKind::Output {
        path: cfg.out_dir.clone(),
        source,
    })?;
    let inputs = expand_inputs(&cfg.inputs);
    let work = || -> Vec<FileResult> {
        inputs
            .par_iter()
            .map(|i| {
                let r = process_file(i, cfg.messages);
                if let Some(f) = cfg.on_file_done {
                    f();
                }
                r
            })
            .collect()
    };
    let results = match cfg.jobs {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .map(|pool| pool.install(work))
            .unwrap_or_else(|_| work()),
        None => work(),
    };

    let mut summary = RunSummary {
        files: results.len() as u64,
        ..RunSummary::default()
    };
    // One allocation for the batch's records (growing by doubling would
    // hold up to twice the records at the peak).
    let mut messages = Vec::with_capacity(results.iter().map(|r| r.messages.len()).sum());
    let mut anomalies = Vec::new();
    let mut inputs_rows = Vec::with_capacity(results.len());
    let mut transport: BTreeMap<String, u64> = BTreeMap::new();
    let mut method: BTreeMap<String, u64> = BTreeMap::new();
    let mut status: BTreeMap<u16, u64> = BTreeMap::new();
    for (idx, r) in results.into_iter().enumerate() {
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
        for a in &r.anomalies {
            *summary.anomalies.entry(a.kind).or_default() += 1;
        }
        for (k, v) in r.counters.transport {
            *transport.entry(format!("{}{}", k.0, k.1)).or_default() += v;
        }
        for (k, v) in r.counters.method {
            *method.entry(k).or_default() += v;
        }
        for (k, v) in r.counters.status {
            *status.entry(k).or_default() += v;
        }
        messages.extend(r.messages.into_iter().map(|m| (idx, m)));
        let mut a = r.anomalies;
        a.sort_by(|x, y| (x.frame, x.kind, &x.detail).cmp(&(y.frame, y.kind, &y.detail)));
        anomalies.extend(a);
        inputs_rows.push(r.input);
    }

    // One timeline for the batch: capture time, then file, then frame (the
    // sort is stable, so messages of one frame keep their wire order).
    messages.sort_by_key(|(idx, m)| (m.ts_ns, *idx, m.frame));
    let mut retrans = Retransmissions::default();
    let mut rows = Vec::with_capacity(if cfg.messages { messages.len() } else { 0 });
    for (_, m) in messages {
        let repeat = retrans.observe(m.key, m.ts_ns);
        summary.retransmissions += repeat as u64;
        if let Some(mut row) = m.row {
            row.retransmission = Some(repeat);
            rows.push(*row);
        }
    }
    if cfg.messages {
        report::write_csv(&cfg.out_dir, "messages.csv", &rows, report::MESSAGES_HEADER)?;
    }
    report::write_csv(
        &cfg.out_dir,
        "inputs.csv",
        &inputs_rows,
        report::INPUTS_HEADER,
    )?;
    report::write_csv(
        &cfg.out_dir,
        "anomalies.csv",
        &anomalies,
        report::ANOMALIES_HEADER,
    )?;

    let mut srows = Vec::new();
    let totals = [
        ("files", summary.files),
        ("files_with_errors", summary.failed_files.len() as u64),
        ("packets", summary.packets),
        ("sip_packets", summary.sip_packets),
        ("other_packets", summary.other_packets),
        ("undecodable_packets", summary.undecodable_packets),
        ("sip_messages", summary.sip_messages),
        ("retransmissions", summary.retransmissions),
    ];
    for (k, v) in totals {
        srows.push(SummaryRow {
            dimension: "total",
            value: k.into(),
            count: v,
        });
    }
    for (k, v) in transport {
        srows.push(SummaryRow {
            dimension: "transport",
            value: Text(k),
            count: v,
        });
    }
    for (k, v) in method {
        srows.push(SummaryRow {
            dimension: "method",
            value: Text(k),
            count: v,
        });
    }
    for (k, v) in status {
        srows.push(SummaryRow {
            dimension: "status",
            value: Text(k.to_string()),
            count: v,
        });
    }
    for (k, v) in &summary.anomalies {
        srows.push(SummaryRow {
            dimension: "anomaly",
            value: (*k).into(),
            count: *v,
        });
    }
    report::write_csv(&cfg.out_dir, "summary.csv", &srows, report::SUMMARY_HEADER)?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}
