//! SIP message framing on reassembled TCP byte streams.
//!
//! In: the [`StreamEvent`]s of [`crate::packet::tcp::Reassembler`] for one
//! file (`Data`, `Gap` and `Reset` are used; the others are the caller's),
//! then [`Framers::finish`] at the end of the file.
//! Out: [`FramerEvent::Message`] for every complete SIP message, as a
//! [`Framed`] slice with the frame that completed it (Wireshark's
//! convention: the frame whose arrival made the last byte deliverable) and
//! every frame that carried part of it; and [`FramerEvent::Anomaly`]s with
//! stable snake_case ids ([`ANOMALY_IDS`]).
//!
//! Framing (RFC 3261 §18.3): a message is its start line, its header
//! section up to the empty line, and Content-Length (or `l:`) body bytes.
//! CR/LF keep-alives between messages (RFC 5626) are skipped silently. A
//! message without a usable Content-Length runs up to the next line that
//! is a SIP start line (or to a gap, the end of the connection or of the
//! capture); it is emitted with [`Framed::no_content_length`] set and, when
//! the header is absent, an anomaly `missing_content_length`.
//!
//! Resynchronisation: at the start of a stream, after a gap and after a
//! bad start line, the framer looks for the next line that
//! [`is_sip_start`] accepts. Skipped bytes are reported as `tcp_resync`
//! with their count when the start line is found (not when they were only
//! CR/LF), or when the stream ends after it had carried SIP; a stream that
//! never showed a SIP start line produces nothing at all, so non-SIP TCP
//! traffic may be fed through without noise. Bytes of a message cut short
//! by a gap or an end are reported as `sip_message_truncated`.
//!
//! Bounds: a stream buffers at most [`FramerLimits::per_stream_bytes`]
//! (unconsumed bytes plus 32 bytes per carrying segment); a message that
//! cannot complete within it (a header that never ends, a Content-Length
//! too large, too many tiny segments) is dropped with
//! `sip_buffer_overflow` (byte count) and the stream resynchronises. All
//! streams together buffer at most [`FramerLimits::global_bytes`]; beyond
//! it the largest buffers are dropped the same way until 7/8 of the cap.
//!
//! Zero-copy: messages that lie whole inside one `Data` event are slices of
//! it; only a message spread over several events is copied (once) into the
//! stream's buffer. It never parses a message beyond finding its end (the
//! caller does, with [`Framed::parse`]), never looks at TCP, and never
//! keeps state across files.
//!
//! Accounting: [`Framed::frames`] lists every frame that carried part of
//! the message; [`Framed::new_frames`] those not listed by an earlier
//! message of the same [`Framers`]. Summing `new_frames.len()` counts each
//! SIP-carrying segment exactly once; every other TCP segment with payload
//! carried no SIP (keep-alives, skipped bytes, retransmissions).

use std::collections::VecDeque;

use memchr::memchr;

use super::{
    Framing, Message, SipAnomaly, SipError, head_content_length, is_sip_start, keepalive_len,
    parse_message,
};
use crate::packet::tcp::{FlowKey, StreamEvent};

/// Every anomaly id this module emits.
pub const ANOMALY_IDS: &[&str] = &[
    "tcp_resync",
    "missing_content_length",
    "sip_buffer_overflow",
    "sip_message_truncated",
];

/// Bookkeeping bytes charged per buffered carrying segment.
const SPAN_COST: usize = 32;

/// Bounds of the framers (per input file).
#[derive(Clone, Copy, Debug)]
pub struct FramerLimits {
    /// Bytes one stream direction may buffer while a message is incomplete
    /// (default 1 MiB; a message larger than this is dropped).
    pub per_stream_bytes: usize,
    /// Bytes all streams together may buffer (default 128 MiB; with the
    /// reassembler's 128 MiB out-of-order cap, 256 MiB in all).
    pub global_bytes: usize,
}

impl Default for FramerLimits {
    fn default() -> Self {
        FramerLimits {
            per_stream_bytes: 1 << 20,
            global_bytes: 128 << 20,
        }
    }
}

/// One complete SIP message framed from a stream.
#[derive(Clone, Copy, Debug)]
pub struct Framed<'a> {
    /// The direction it was sent in.
    pub key: FlowKey,
    /// The message bytes, body included.
    pub bytes: &'a [u8],
    /// The frame that completed it.
    pub frame: u64,
    /// Capture time of that frame, ns since the epoch.
    pub ts_ns: i64,
    /// Every frame that carried part of it, ascending.
    pub frames: &'a [u64],
    /// The frames of `frames` not listed by any earlier message, ascending.
    pub new_frames: &'a [u64],
    /// No usable Content-Length: the message was delimited by the next
    /// start line (or a gap or end), so its body is everything after the
    /// header section.
    pub no_content_length: bool,
}

impl<'a> Framed<'a> {
    /// How to parse [`Framed::bytes`]: [`Framing::Stream`] when the
    /// message was delimited by its Content-Length (`Message::len()` is
    /// then all of the bytes), [`Framing::Datagram`] when it was delimited
    /// by what followed it (so that the body is kept; the framer has
    /// already reported the missing Content-Length).
    pub fn framing(&self) -> Framing {
        if self.no_content_length {
            Framing::Datagram
        } else {
            Framing::Stream
        }
    }

    /// Scans the message with [`parse_message`] and [`Framed::framing`].
    pub fn parse(&self) -> Result<Message<'a>, SipError> {
        parse_message(self.bytes, self.framing())
    }
}

/// What the framers report.
#[derive(Debug)]
pub enum FramerEvent<'a> {
    /// A complete message.
    Message(Framed<'a>),
    /// A framing anomaly.
    Anomaly {
        /// The stream direction.
        key: FlowKey,
        /// The frame it is attached to (the first byte concerned).
        frame: u64,
        /// Stable snake_case id (see [`ANOMALY_IDS`]).
        id: &'static str,
        /// Human detail, with the byte count.
        detail: String,
    },
}

/// Output callback of the framers.
type Out<'o> = dyn FnMut(FramerEvent<'_>) + 'o;

/// Per-file framing state: one framer per stream direction, the global
/// cap, and the frames already reported.
pub struct Framers {
    limits: FramerLimits,
    streams: rustc_hash::FxHashMap<FlowKey, StreamFramer>,
    next_id: u64,
    /// Sum of the streams' `buffered()`.
    buffered: usize,
    scratch: Scratch,
}

impl Default for Framers {
    fn default() -> Self {
        Self::new(FramerLimits::default())
    }
}

impl Framers {
    /// No streams yet.
    pub fn new(limits: FramerLimits) -> Self {
        Framers {
            limits,
            streams: rustc_hash::FxHashMap::default(),
            next_id: 0,
            buffered: 0,
            scratch: Scratch::default(),
        }
    }

    /// Feeds one reassembler event (`Data`, `Gap`, `Reset`; others are
    /// ignored).
    pub fn event(&mut self, ev: &StreamEvent<'_>, out: &mut dyn FnMut(FramerEvent<'_>)) {
        let cap = self.limits.per_stream_bytes;
        match *ev {
            StreamEvent::Data {
                key,
                bytes,
                frame,
                ts_ns,
                carrier,
            } => {
                let next_id = &mut self.next_id;
                let f = self.streams.entry(key).or_insert_with(|| {
                    *next_id += 1;
                    StreamFramer::new(key, *next_id)
                });
                let before = f.buffered();
                let span = Span {
                    end: 0,
                    carrier,
                    arrival: frame,
                    ts_ns,
                };
                f.data(bytes, span, cap, &mut self.scratch, out);
                self.buffered = self.buffered - before + f.buffered();
                if self.buffered > self.limits.global_bytes {
                    self.enforce_global(out);
                }
            }
            StreamEvent::Gap { key, .. } => {
                if let Some(f) = self.streams.get_mut(&key) {
                    let before = f.buffered();
                    f.end("a gap in the TCP stream", &mut self.scratch, out);
                    self.buffered -= before - f.buffered();
                }
            }
            StreamEvent::Reset { key, .. } => {
                if let Some(mut f) = self.streams.remove(&key) {
                    self.buffered -= f.buffered();
                    f.end("the end of the TCP stream", &mut self.scratch, out);
                }
            }
            StreamEvent::Duplicate { .. }
            | StreamEvent::Dropped { .. }
            | StreamEvent::Anomaly { .. } => {}
        }
    }

    /// Ends the file: messages delimited by their end are emitted, partial
    /// ones reported.
    pub fn finish(mut self, out: &mut dyn FnMut(FramerEvent<'_>)) {
        let mut all: Vec<StreamFramer> = self.streams.drain().map(|(_, f)| f).collect();
        all.sort_unstable_by_key(|f| f.id);
        for mut f in all {
            f.end("the end of the capture", &mut self.scratch, out);
        }
    }

    /// Bytes buffered now, all streams together (unconsumed bytes plus
    /// per-segment bookkeeping).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Stream directions with state now.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// The largest single stream buffer (tests check it against the cap).
    #[cfg(test)]
    pub(crate) fn max_stream_buffered(&self) -> usize {
        self.streams
            .values()
            .map(|f| f.buf.capacity().max(f.buffered()))
            .max()
            .unwrap_or(0)
    }

    /// Drops the largest buffers until 7/8 of the global cap.
    fn enforce_global(&mut self, out: &mut Out<'_>) {
        let target = self.limits.global_bytes / 8 * 7;
        let mut all: Vec<(usize, u64, FlowKey)> = self
            .streams
            .iter()
            .map(|(k, f)| (f.buffered(), f.id, *k))
            .filter(|e| e.0 > 0)
            .collect();
        all.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, k) in all {
            if self.buffered <= target {
                break;
            }
            let f = self.streams.get_mut(&k).expect("listed above");
            let before = f.buffered();
            f.overflow("the global framing cap", &mut self.scratch, out);
            self.buffered -= before - f.buffered();
        }
    }
}

/// Reused per-message lists.
#[derive(Default)]
struct Scratch {
    frames: Vec<u64>,
    new: Vec<u64>,
    counted: FrameSet,
}

/// The frames already listed by a message: one bit per frame number.
#[derive(Default)]
struct FrameSet {
    words: Vec<u64>,
}

impl FrameSet {
    /// Adds `f`; true when it was not there.
    fn insert(&mut self, f: u64) -> bool {
        let (w, bit) = ((f / 64) as usize, 1u64 << (f % 64));
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let new = self.words[w] & bit == 0;
        self.words[w] |= bit;
        new
    }
}

/// The bytes of one `Data` event: up to stream offset `end`.
#[derive(Clone, Copy, Debug)]
struct Span {
    end: u64,
    carrier: u64,
    arrival: u64,
    ts_ns: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// At a message boundary (both `None`), or inside a message whose
    /// start line ends at `line_end` and whose body starts at `body_start`
    /// (offsets from the message start).
    Sync {
        line_end: Option<usize>,
        body_start: Option<usize>,
        /// Total length, once Content-Length is known.
        need: Option<usize>,
    },
    /// The header section ended without a usable Content-Length: the
    /// message runs to the next start line.
    NoCl {
        body_start: usize,
        /// Content-Length was absent (not merely malformed).
        missing: bool,
    },
    /// Looking for a start line; `at_line_start` when the next byte begins
    /// a line.
    Resync { at_line_start: bool },
}

const SYNC: Mode = Mode::Sync {
    line_end: None,
    body_start: None,
    need: None,
};

/// What a framing step did: consumed some bytes and goes on, or consumed
/// some and waits for more bytes.
enum Step {
    On(usize),
    Wait(usize),
}

/// One stream direction.
struct StreamFramer {
    key: FlowKey,
    id: u64,
    /// Unconsumed bytes when a message spans several events.
    buf: Vec<u8>,
    /// Stream offset of the first unconsumed byte.
    base: u64,
    /// Stream offset after the last byte received.
    total: u64,
    /// Carriers of the bytes from `base` on.
    spans: VecDeque<Span>,
    mode: Mode,
    /// Where the incremental search resumes, from `base`.
    scan: usize,
    /// A SIP start line was seen in this stream.
    synced: bool,
    /// Skipped bytes not yet reported.
    skipped: u64,
    skipped_junk: bool,
    skip_frame: u64,
}

impl StreamFramer {
    fn new(key: FlowKey, id: u64) -> Self {
        StreamFramer {
            key,
            id,
            buf: Vec::new(),
            base: 0,
            total: 0,
            spans: VecDeque::new(),
            mode: Mode::Resync {
                at_line_start: true,
            },
            scan: 0,
            synced: false,
            skipped: 0,
            skipped_junk: false,
            skip_frame: 0,
        }
    }

    fn buffered(&self) -> usize {
        self.buf.len() + self.spans.len() * SPAN_COST
    }

    /// Whether `remaining` unconsumed bytes reach the cap.
    fn over(&self, remaining: usize, cap: usize) -> bool {
        remaining + self.spans.len() * SPAN_COST >= cap
    }

    fn data(
        &mut self,
        bytes: &[u8],
        mut span: Span,
        cap: usize,
        sc: &mut Scratch,
        out: &mut Out<'_>,
    ) {
        if bytes.is_empty() {
            return;
        }
        self.total += bytes.len() as u64;
        span.end = self.total;
        self.spans.push_back(span);
        let mut input = bytes;
        while !input.is_empty() {
            if self.buf.is_empty() {
                // Zero-copy: frame straight from the event.
                let n = self.process(input, cap, sc, out);
                self.buf.extend_from_slice(&input[n..]);
                break;
            }
            let room = cap.saturating_sub(self.buffered());
            let take = room.min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
            let mut buf = std::mem::take(&mut self.buf);
            let mut n = self.process(&buf, cap, sc, out);
            if n == 0 && take == 0 {
                // `process` always makes progress at the cap; should it
                // ever not, drop the buffer rather than loop.
                n = self.drop_overflow(&buf, "an incomplete message at", cap, out);
            }
            buf.drain(..n);
            self.buf = buf;
        }
        if self.buf.is_empty() && self.buf.capacity() > 64 << 10 {
            self.buf = Vec::new();
        }
    }

    /// Frames what it can from `view` (the unconsumed bytes, starting at
    /// stream offset `base`); returns the bytes consumed. What is left is
    /// below the cap.
    ///
    /// One step per [`Mode`]: each looks at the unconsumed bytes `b`, may
    /// change the mode, and says how many bytes it consumed and whether
    /// framing goes on ([`Step`]).
    fn process(&mut self, view: &[u8], cap: usize, sc: &mut Scratch, out: &mut Out<'_>) -> usize {
        let mut pos = 0;
        loop {
            let b = &view[pos..];
            let step = match self.mode {
                Mode::Resync { at_line_start } => self.resync(b, at_line_start, cap, out),
                Mode::Sync { line_end: None, .. } => self.start_line(b, cap, out),
                Mode::Sync {
                    line_end: Some(le),
                    body_start: None,
                    ..
                } => self.header_section(b, le, cap, out),
                Mode::Sync { need: Some(n), .. } => self.body(b, n, cap, sc, out),
                Mode::Sync { need: None, .. } => unreachable!("need is set with body_start"),
                Mode::NoCl {
                    body_start,
                    missing,
                } => self.body_to_next_start(b, body_start, missing, cap, sc, out),
            };
            match step {
                Step::On(n) => pos += n,
                Step::Wait(n) => return pos + n,
            }
        }
    }

    /// Looking for a start line: skips every line that is not one.
    fn resync(&mut self, b: &[u8], at_line_start: bool, cap: usize, out: &mut Out<'_>) -> Step {
        match memchr(b'\n', &b[self.scan..]) {
            Some(i) => {
                let lf = self.scan + i;
                self.scan = 0;
                if at_line_start && is_sip_start(&b[..=lf]) {
                    self.report_skip(true, out);
                    self.synced = true;
                    self.mode = SYNC;
                    return Step::On(0);
                }
                self.skip(&b[..=lf]);
                self.mode = Mode::Resync {
                    at_line_start: true,
                };
                Step::On(lf + 1)
            }
            None => {
                let hopeless = !at_line_start
                    || self.over(b.len(), cap)
                    || matches!(
                        parse_message(b, Framing::Stream),
                        Err(SipError::Invalid { .. })
                    );
                if hopeless && !b.is_empty() {
                    // No start line can begin in these bytes.
                    self.skip(b);
                    self.scan = 0;
                    self.mode = Mode::Resync {
                        at_line_start: false,
                    };
                    Step::Wait(b.len())
                } else {
                    self.scan = b.len();
                    Step::Wait(0)
                }
            }
        }
    }

    /// At a message boundary: skips keep-alives and checks the start line.
    fn start_line(&mut self, b: &[u8], cap: usize, out: &mut Out<'_>) -> Step {
        let k = keepalive_len(b);
        if k > 0 {
            self.consume(k);
            return Step::On(k);
        }
        if b.is_empty() {
            return Step::Wait(0);
        }
        match memchr(b'\n', &b[self.scan..]) {
            Some(i) => {
                let lf = self.scan + i;
                if is_sip_start(&b[..=lf]) {
                    self.synced = true;
                    self.scan = lf;
                    self.mode = Mode::Sync {
                        line_end: Some(lf),
                        body_start: None,
                        need: None,
                    };
                } else {
                    self.scan = 0;
                    self.mode = Mode::Resync {
                        at_line_start: true,
                    };
                }
                Step::On(0)
            }
            None => {
                if matches!(
                    parse_message(b, Framing::Stream),
                    Err(SipError::Invalid { .. })
                ) {
                    self.scan = 0;
                    self.mode = Mode::Resync {
                        at_line_start: true,
                    };
                    return Step::On(0);
                }
                if self.over(b.len(), cap) {
                    return Step::On(self.drop_overflow(b, "a start line longer than", cap, out));
                }
                self.scan = b.len();
                Step::Wait(0)
            }
        }
    }

    /// After the start line (ending at `le`): finds the end of the header
    /// section and the message length from Content-Length.
    fn header_section(&mut self, b: &[u8], le: usize, cap: usize, out: &mut Out<'_>) -> Step {
        let bs = match find_blank(b, self.scan) {
            Ok(bs) => bs,
            Err(resume) => {
                self.scan = resume;
                if self.over(b.len(), cap) {
                    return Step::On(self.drop_overflow(
                        b,
                        "a header section longer than",
                        cap,
                        out,
                    ));
                }
                return Step::Wait(0);
            }
        };
        let Some((content_length, bad)) = head_content_length(&b[..bs]) else {
            // Cannot happen: the start line was accepted.
            self.scan = 0;
            self.mode = Mode::Resync {
                at_line_start: false,
            };
            return Step::On(0);
        };
        match content_length {
            Some(n) if bs.saturating_add(n) > cap => {
                self.anomaly(
                    self.carrier_at_base(),
                    "sip_buffer_overflow",
                    format!(
                        "Content-Length {n} makes a message of {} bytes, over the {cap}-byte framing cap: skipped",
                        bs.saturating_add(n)
                    ),
                    out,
                );
                // Skip it by resynchronising after its start line.
                self.skip(&b[..=le]);
                self.scan = 0;
                self.mode = Mode::Resync {
                    at_line_start: true,
                };
                Step::On(le + 1)
            }
            Some(n) => {
                self.mode = Mode::Sync {
                    line_end: Some(le),
                    body_start: Some(bs),
                    need: Some(bs + n),
                };
                Step::On(0)
            }
            None => {
                self.scan = bs;
                self.mode = Mode::NoCl {
                    body_start: bs,
                    missing: !bad,
                };
                Step::On(0)
            }
        }
    }

    /// The message is `n` bytes long: emits it once they are all here.
    fn body(
        &mut self,
        b: &[u8],
        n: usize,
        cap: usize,
        sc: &mut Scratch,
        out: &mut Out<'_>,
    ) -> Step {
        if b.len() >= n {
            self.emit(&b[..n], false, false, sc, out);
            return Step::On(n);
        }
        if self.over(b.len(), cap) {
            return Step::On(self.drop_overflow(
                b,
                "a message split into too many segments for",
                cap,
                out,
            ));
        }
        Step::Wait(0)
    }

    /// A message without a usable Content-Length: it runs to the next line
    /// that is a start line; at the cap its header section is emitted and
    /// the endless body dropped.
    fn body_to_next_start(
        &mut self,
        b: &[u8],
        body_start: usize,
        missing: bool,
        cap: usize,
        sc: &mut Scratch,
        out: &mut Out<'_>,
    ) -> Step {
        // `scan` is a line start at or after the body.
        let mut ls = self.scan;
        let found = loop {
            match memchr(b'\n', &b[ls..]) {
                Some(i) if is_sip_start(&b[ls..=ls + i]) => break Some(ls),
                Some(i) => ls += i + 1,
                None => break None,
            }
        };
        self.scan = ls;
        if let Some(end) = found {
            self.emit(&b[..end], true, missing, sc, out);
            return Step::On(end);
        }
        if !self.over(b.len(), cap) {
            return Step::Wait(0);
        }
        // Keep the header section, drop the endless body.
        let at_line_start = ls == b.len();
        self.emit(&b[..body_start], true, missing, sc, out);
        let rest = &b[body_start..];
        self.anomaly(
            self.carrier_at_base(),
            "sip_buffer_overflow",
            format!(
                "{} bytes after a message without Content-Length dropped (over the {cap}-byte framing cap)",
                rest.len()
            ),
            out,
        );
        self.consume(rest.len());
        self.scan = 0;
        self.mode = Mode::Resync { at_line_start };
        Step::Wait(b.len())
    }

    /// Drops the unconsumed bytes `b` of an incomplete message that reached
    /// the cap; returns their count.
    fn drop_overflow(&mut self, b: &[u8], what: &str, cap: usize, out: &mut Out<'_>) -> usize {
        self.anomaly(
            self.carrier_at_base(),
            "sip_buffer_overflow",
            format!(
                "{} bytes dropped: {what} the {cap}-byte framing cap",
                b.len()
            ),
            out,
        );
        self.consume(b.len());
        self.scan = 0;
        self.mode = Mode::Resync {
            at_line_start: b.last() == Some(&b'\n'),
        };
        b.len()
    }

    /// The stream ended (or has a gap): emits or reports what is buffered
    /// and starts resynchronising.
    fn end(&mut self, why: &str, sc: &mut Scratch, out: &mut Out<'_>) {
        let buf = std::mem::take(&mut self.buf);
        let mut b = &buf[..];
        match self.mode {
            Mode::NoCl { missing, .. } => {
                self.emit(b, true, missing, sc, out);
            }
            Mode::Sync { .. } => {
                let k = keepalive_len(b);
                self.consume(k);
                b = &b[k..];
                if !b.is_empty() {
                    self.anomaly(
                        self.carrier_at_base(),
                        "sip_message_truncated",
                        format!("{} bytes of a SIP message cut short by {why}", b.len()),
                        out,
                    );
                    self.consume(b.len());
                }
            }
            Mode::Resync { .. } => {
                self.skip(b);
            }
        }
        self.report_skip(false, out);
        self.spans.clear();
        self.base = self.total;
        self.scan = 0;
        self.mode = Mode::Resync {
            at_line_start: true,
        };
        self.buf = buf;
        self.buf.clear();
    }

    /// Drops what is buffered to meet the global cap.
    fn overflow(&mut self, why: &str, sc: &mut Scratch, out: &mut Out<'_>) {
        let buf = std::mem::take(&mut self.buf);
        match self.mode {
            Mode::NoCl { missing, .. } if !buf.is_empty() => {
                self.emit(&buf, true, missing, sc, out)
            }
            Mode::Resync { .. } => self.skip(&buf),
            _ if !buf.is_empty() => {
                self.anomaly(
                    self.carrier_at_base(),
                    "sip_buffer_overflow",
                    format!(
                        "{} bytes of an incomplete SIP message dropped ({why})",
                        buf.len()
                    ),
                    out,
                );
                self.consume(buf.len());
            }
            _ => {}
        }
        // Keep the span of bytes not yet appended, if any.
        while self.spans.front().is_some_and(|s| s.end <= self.base) {
            self.spans.pop_front();
        }
        self.scan = 0;
        self.mode = Mode::Resync {
            at_line_start: buf.last().is_none_or(|&c| c == b'\n'),
        };
        self.buf = Vec::new();
    }

    /// Emits the message `m` (the first unconsumed bytes) and consumes it.
    fn emit(&mut self, m: &[u8], no_cl: bool, missing: bool, sc: &mut Scratch, out: &mut Out<'_>) {
        if m.is_empty() {
            return;
        }
        let end = self.base + m.len() as u64;
        sc.frames.clear();
        sc.new.clear();
        let mut last = None;
        for s in &self.spans {
            sc.frames.push(s.carrier);
            last = Some(*s);
            if s.end >= end {
                break;
            }
        }
        let last = last.expect("unconsumed bytes have a span");
        sc.frames.sort_unstable();
        sc.frames.dedup();
        for &f in &sc.frames {
            if sc.counted.insert(f) {
                sc.new.push(f);
            }
        }
        out(FramerEvent::Message(Framed {
            key: self.key,
            bytes: m,
            frame: last.arrival,
            ts_ns: last.ts_ns,
            frames: &sc.frames,
            new_frames: &sc.new,
            no_content_length: no_cl,
        }));
        if missing {
            self.anomaly(
                last.arrival,
                "missing_content_length",
                SipAnomaly::MissingContentLength.description().to_string()
                    + "; framed up to the next start line",
                out,
            );
        }
        self.consume(m.len());
        self.scan = 0;
        self.mode = SYNC;
    }

    /// Skips bytes while resynchronising.
    fn skip(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        if self.skipped == 0 {
            self.skip_frame = self.carrier_at_base();
        }
        self.skipped += b.len() as u64;
        self.skipped_junk |= b.iter().any(|&c| c != b'\r' && c != b'\n');
        self.consume(b.len());
    }

    /// Reports the skipped bytes: always when `found` (a start line
    /// follows), else only when the stream had carried SIP.
    fn report_skip(&mut self, found: bool, out: &mut Out<'_>) {
        if self.skipped_junk && (found || self.synced) {
            let how = if found {
                "to resynchronise at a SIP start line"
            } else {
                "without finding a SIP start line"
            };
            self.anomaly(
                self.skip_frame,
                "tcp_resync",
                format!("{} bytes skipped {how}", self.skipped),
                out,
            );
        }
        self.skipped = 0;
        self.skipped_junk = false;
    }

    fn consume(&mut self, n: usize) {
        self.base += n as u64;
        while self.spans.front().is_some_and(|s| s.end <= self.base) {
            self.spans.pop_front();
        }
    }

    fn carrier_at_base(&self) -> u64 {
        self.spans.front().map_or(0, |s| s.carrier)
    }

    fn anomaly(&self, frame: u64, id: &'static str, detail: String, out: &mut Out<'_>) {
        out(FramerEvent::Anomaly {
            key: self.key,
            frame,
            id,
            detail,
        });
    }
}

/// Finds the empty line that ends a header section, looking at the line
/// ends from `from` (an LF or a line start): `Ok(body start)`, or
/// `Err(where to resume)` when it is not (yet) there. Agrees with the
/// scanner: a line is empty when it is a bare LF or CR LF.
fn find_blank(b: &[u8], from: usize) -> Result<usize, usize> {
    let mut i = from;
    loop {
        let Some(k) = memchr(b'\n', &b[i..]) else {
            return Err(b.len());
        };
        let lf = i + k;
        match (b.get(lf + 1), b.get(lf + 2)) {
            (Some(b'\n'), _) => return Ok(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Ok(lf + 3),
            (None, _) | (Some(b'\r'), None) => return Err(lf),
            _ => i = lf + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TunnelPath;
    use crate::packet::tcp::{Reassembler, Segment, TcpLimits};
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Msg {
        bytes: Vec<u8>,
        frame: u64,
        frames: Vec<u64>,
        new_frames: Vec<u64>,
        no_cl: bool,
    }

    #[derive(Default, Debug)]
    struct Seen {
        msgs: Vec<Msg>,
        /// (frame, id, detail) from both layers.
        anomalies: Vec<(u64, &'static str, String)>,
        dups: Vec<u64>,
        gaps: Vec<u64>,
    }

    impl Seen {
        fn tcp(&mut self, ev: &StreamEvent<'_>) {
            match ev {
                StreamEvent::Anomaly {
                    frame, id, detail, ..
                }
                | StreamEvent::Dropped {
                    frame, id, detail, ..
                } => self.anomalies.push((*frame, id, detail.clone())),
                StreamEvent::Duplicate { frame, .. } => self.dups.push(*frame),
                StreamEvent::Gap { missing, .. } => self.gaps.push(*missing),
                _ => {}
            }
        }

        fn framer(&mut self, ev: FramerEvent<'_>) {
            match ev {
                FramerEvent::Message(m) => {
                    // The lead parses it again: it must be one whole message.
                    let parsed = m.parse().expect("a SIP message");
                    assert_eq!(
                        parsed.len(),
                        m.bytes.len(),
                        "framing agrees with the scanner"
                    );
                    self.msgs.push(Msg {
                        bytes: m.bytes.to_vec(),
                        frame: m.frame,
                        frames: m.frames.to_vec(),
                        new_frames: m.new_frames.to_vec(),
                        no_cl: m.no_content_length,
                    });
                }
                FramerEvent::Anomaly {
                    frame, id, detail, ..
                } => self.anomalies.push((frame, id, detail)),
            }
        }

        fn ids(&self) -> Vec<&'static str> {
            self.anomalies.iter().map(|a| a.1).collect()
        }

        fn bodies(&self) -> Vec<Vec<u8>> {
            self.msgs.iter().map(|m| m.bytes.clone()).collect()
        }
    }

    struct H {
        r: Reassembler,
        f: Framers,
        seen: Seen,
    }

    impl H {
        fn new() -> H {
            H::with(TcpLimits::default(), FramerLimits::default())
        }

        fn with(t: TcpLimits, f: FramerLimits) -> H {
            H {
                r: Reassembler::new(t),
                f: Framers::new(f),
                seen: Seen::default(),
            }
        }

        fn feed(&mut self, s: Segment<'_>) {
            let H { r, f, seen } = self;
            r.segment(&s, &mut |ev| {
                seen.tcp(&ev);
                f.event(&ev, &mut |fe| seen.framer(fe));
            });
            r.expire(s.ts_ns, &mut |ev| {
                seen.tcp(&ev);
                f.event(&ev, &mut |fe| seen.framer(fe));
            });
        }

        fn data(&mut self, seq: u32, payload: &[u8], frame: u64) {
            self.feed(seg(seq, payload, frame));
        }

        fn syn(&mut self, isn: u32, frame: u64) {
            self.feed(Segment {
                syn: true,
                ..seg(isn, b"", frame)
            });
        }

        fn finish(self) -> Seen {
            let H { r, mut f, mut seen } = self;
            r.finish(&mut |ev| {
                seen.tcp(&ev);
                f.event(&ev, &mut |fe| seen.framer(fe));
            });
            f.finish(&mut |fe| seen.framer(fe));
            seen
        }
    }

    fn key() -> FlowKey {
        FlowKey {
            tunnels: TunnelPath::default(),
            src: "192.0.2.1:45000".parse().unwrap(),
            dst: "192.0.2.2:5060".parse().unwrap(),
        }
    }

    fn seg(seq: u32, payload: &[u8], frame: u64) -> Segment<'_> {
        Segment {
            key: key(),
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

    /// A request with Content-Length and `body`.
    fn req(call: &str, body: &str) -> Vec<u8> {
        format!(
            "INVITE sip:bob@example.com SIP/2.0\r\n\
             Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{call}\r\n\
             From: <sip:alice@example.com>;tag=a1\r\n\
             To: <sip:bob@example.com>\r\n\
             Call-ID: {call}\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\
             \r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    /// A response with the compact `l:` form.
    fn resp(call: &str, body: &str) -> Vec<u8> {
        format!(
            "SIP/2.0 200 OK\r\n\
             v: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{call}\r\n\
             f: <sip:alice@example.com>;tag=a1\r\n\
             t: <sip:bob@example.com>;tag=b2\r\n\
             i: {call}\r\n\
             CSeq: 1 INVITE\r\n\
             l: {}\r\n\
             \r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn two_messages_in_one_segment() {
        let (a, b) = (req("c1", SDP), resp("c1", ""));
        let mut h = H::new();
        h.syn(1000, 1);
        h.data(1001, &cat(&[&a, &b]), 2);
        let s = h.finish();
        assert_eq!(s.bodies(), [a, b]);
        assert_eq!(s.msgs[0].frame, 2);
        assert_eq!(s.msgs[1].frame, 2);
        assert_eq!(s.msgs[0].new_frames, [2]);
        assert_eq!(s.msgs[1].frames, [2]);
        assert!(s.msgs[1].new_frames.is_empty(), "frame 2 counted once");
        assert_eq!(s.ids(), Vec::<&str>::new());
    }

    #[test]
    fn whole_messages_in_one_event_are_not_copied() {
        let a = req("c1", SDP);
        let mut f = Framers::default();
        let mut ptr = None;
        f.event(
            &StreamEvent::Data {
                key: key(),
                bytes: &a,
                frame: 1,
                ts_ns: 0,
                carrier: 1,
            },
            &mut |e| {
                if let FramerEvent::Message(m) = e {
                    ptr = Some(m.bytes.as_ptr());
                }
            },
        );
        assert_eq!(ptr, Some(a.as_ptr()));
        assert_eq!(f.buffered_bytes(), 0);
    }

    #[test]
    fn one_message_over_three_segments_completes_in_the_last() {
        let a = req("c1", SDP);
        let (p1, rest) = a.split_at(50);
        let (p2, p3) = rest.split_at(120);
        let mut h = H::new();
        h.syn(0, 1);
        h.data(1, p1, 2);
        h.data(51, p2, 3);
        assert!(h.seen.msgs.is_empty());
        h.data(171, p3, 4);
        let s = h.finish();
        assert_eq!(s.bodies(), [a]);
        assert_eq!(s.msgs[0].frame, 4);
        assert_eq!(s.msgs[0].frames, [2, 3, 4]);
        assert_eq!(s.msgs[0].new_frames, [2, 3, 4]);
    }

    #[test]
    fn out_of_order_split_completes_in_the_filling_frame() {
        let a = req("c1", SDP);
        let (p1, p2) = a.split_at(90);
        let mut h = H::new();
        h.syn(500, 1);
        h.data(501 + 90, p2, 2);
        assert!(h.seen.msgs.is_empty());
        h.data(501, p1, 3);
        let s = h.finish();
        assert_eq!(s.bodies(), [a]);
        assert_eq!(s.msgs[0].frame, 3);
        assert_eq!(s.msgs[0].frames, [2, 3]);
        assert!(s.anomalies.is_empty());
    }

    #[test]
    fn retransmission_yields_no_duplicate_message() {
        let (a, b) = (req("c1", SDP), req("c2", ""));
        let mut h = H::new();
        h.syn(0, 1);
        h.data(1, &a, 2);
        h.data(1, &a, 3);
        let (b1, b2) = b.split_at(10);
        h.data(1 + a.len() as u32, b1, 4);
        // Overlapping retransmission: old bytes plus the rest.
        h.data(1 + a.len() as u32, &b, 5);
        let s = h.finish();
        assert_eq!(s.bodies(), [a, b.clone()]);
        assert_eq!(s.dups, [3]);
        assert_eq!(s.msgs[1].frames, [4, 5]);
        assert_eq!(b2.len(), b.len() - 10);
    }

    #[test]
    fn conflicting_overlap_keeps_the_first_copy() {
        let a = req("c1", SDP);
        let (p1, p2) = a.split_at(100);
        let mut bad = p2.to_vec();
        bad[5] ^= 0x20;
        let mut h = H::new();
        h.syn(0, 1);
        h.data(101, p2, 2);
        h.data(101, &bad, 3);
        h.data(1, p1, 4);
        let s = h.finish();
        assert_eq!(s.bodies(), [a]);
        assert_eq!(s.ids(), ["tcp_overlap_conflict"]);
        assert_eq!(s.anomalies[0].0, 3);
    }

    #[test]
    fn mid_stream_start_resynchronises_at_the_next_start_line() {
        let (a, b) = (req("c1", SDP), req("c2", ""));
        // The capture begins inside `a`: its last 70 bytes, then `b`.
        let tail = &a[a.len() - 70..];
        let mut h = H::new();
        h.data(123_456, &cat(&[tail, &b[..40]]), 7);
        h.data(123_456 + 110, &b[40..], 8);
        let s = h.finish();
        assert_eq!(s.bodies(), [b]);
        assert_eq!(s.msgs[0].frames, [7, 8]);
        assert_eq!(s.ids(), ["tcp_resync"]);
        assert_eq!(s.anomalies[0].0, 7);
        assert!(
            s.anomalies[0].2.starts_with("70 bytes skipped"),
            "{:?}",
            s.anomalies
        );
    }

    #[test]
    fn unfilled_gap_loses_one_message_and_recovers_the_next() {
        let (a, b, c) = (req("c1", SDP), req("c2", SDP), resp("c2", ""));
        let (b1, b2) = b.split_at(60);
        let mut h = H::new();
        h.syn(0, 1);
        let mut seq = 1u32;
        h.data(seq, &a, 2);
        seq += a.len() as u32;
        h.data(seq, b1, 3);
        seq += b1.len() as u32;
        // b2 is never captured.
        seq += b2.len() as u32;
        h.data(seq, &c, 5);
        // The receiver acknowledges everything.
        let ack = Segment {
            key: key().reverse(),
            ack: Some(seq + c.len() as u32),
            ..seg(9999, b"", 6)
        };
        h.feed(ack);
        let s = h.finish();
        assert_eq!(s.bodies(), [a, c]);
        assert_eq!(s.gaps, [b2.len() as u64]);
        assert_eq!(s.msgs[1].frame, 5);
        let ids = s.ids();
        assert_eq!(ids, ["tcp_gap", "sip_message_truncated"]);
        assert!(
            s.anomalies[0]
                .2
                .starts_with(&format!("{} bytes never captured", b2.len()))
        );
        assert_eq!(s.anomalies[0].0, 6);
        assert_eq!(s.anomalies[1].0, 3);
        assert!(s.anomalies[1].2.starts_with("60 bytes"));
    }

    #[test]
    fn unfilled_gap_at_end_of_capture_still_recovers_what_follows() {
        let (a, b, c) = (req("c1", SDP), req("c2", SDP), req("c3", ""));
        let mut h = H::new();
        h.syn(0, 1);
        h.data(1, &a, 2);
        // `b` lost whole; `c` waits behind the gap until the end.
        h.data(1 + (a.len() + b.len()) as u32, &c, 4);
        assert_eq!(h.seen.msgs.len(), 1);
        let s = h.finish();
        assert_eq!(s.bodies(), [a, c]);
        assert_eq!(s.gaps, [b.len() as u64]);
        assert_eq!(s.ids(), ["tcp_gap"], "the gap fell on a message boundary");
    }

    #[test]
    fn endless_header_stays_within_the_caps() {
        const CAP: usize = 1 << 20;
        let mut h = H::new();
        h.syn(7, 1);
        let line = cat(&[b"X-Pad: ", &[b'p'; 1016], b"\r\n"]);
        let mut chunk: Vec<u8> = Vec::with_capacity(64 << 10);
        while chunk.len() + line.len() <= 64 << 10 {
            chunk.extend_from_slice(&line);
        }
        let first = cat(&[b"INVITE sip:bob@example.com SIP/2.0\r\n", &chunk]);
        let mut seq = 8u32;
        let mut fed = 0usize;
        let mut frame = 2;
        while fed < 100_000_000 {
            let p = if frame == 2 { &first[..] } else { &chunk[..] };
            h.data(seq, p, frame);
            seq = seq.wrapping_add(p.len() as u32);
            fed += p.len();
            frame += 1;
            assert!(h.r.held_bytes() <= TcpLimits::default().per_direction_ooo_bytes);
            assert!(h.f.buffered_bytes() <= CAP, "{}", h.f.buffered_bytes());
            assert!(h.f.max_stream_buffered() <= 2 * CAP);
        }
        let overflow = &h.seen.anomalies[0];
        assert_eq!(overflow.1, "sip_buffer_overflow");
        assert_eq!(overflow.0, 2, "attached to the message's first frame");
        assert!(
            overflow
                .2
                .ends_with("a header section longer than the 1048576-byte framing cap"),
            "{overflow:?}"
        );
        assert!(h.seen.msgs.is_empty());
        // The stream recovers at the next real message.
        let a = req("after", SDP);
        h.data(seq, &cat(&[b"\r\n", &a]), frame);
        let s = h.finish();
        assert_eq!(s.bodies(), [a]);
        assert_eq!(s.ids(), ["sip_buffer_overflow", "tcp_resync"]);
    }

    #[test]
    fn sequence_wrap_inside_a_message() {
        let (a, b) = (req("c1", SDP), req("c2", SDP));
        let isn = u32::MAX - 100;
        let mut h = H::new();
        h.syn(isn, 1);
        let all = cat(&[&a, &b]);
        // Segments of 64 bytes, the wrap falls inside `a`.
        let mut seq = isn.wrapping_add(1);
        for (i, p) in all.chunks(64).enumerate() {
            h.data(seq, p, 2 + i as u64);
            seq = seq.wrapping_add(p.len() as u32);
        }
        let s = h.finish();
        assert_eq!(s.bodies(), [a, b]);
        assert!(s.anomalies.is_empty());
    }

    #[test]
    fn syn_after_fin_on_a_reused_4_tuple_is_a_new_connection() {
        let (a, b) = (req("c1", SDP), req("c2", ""));
        let mut h = H::new();
        h.syn(100, 1);
        h.feed(Segment {
            fin: true,
            ..seg(101, &a, 2)
        });
        h.feed(Segment {
            key: key().reverse(),
            fin: true,
            ack: Some(101 + a.len() as u32 + 1),
            ..seg(7000, b"", 3)
        });
        h.syn(555_555, 4);
        let (b1, b2) = b.split_at(30);
        h.data(555_556, b1, 5);
        h.data(555_556 + 30, b2, 6);
        let s = h.finish();
        assert_eq!(s.bodies(), [a, b]);
        assert_eq!(s.msgs[1].frames, [5, 6]);
        assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
    }

    #[test]
    fn crlf_keepalives_between_messages_are_skipped_silently() {
        let (a, b) = (req("c1", SDP), resp("c1", SDP));
        let mut h = H::new();
        h.syn(0, 1);
        let stream = [&b"\r\n\r\n"[..], &a, b"\r\n", b"\r\n\r\n", &b, b"\r\n\r\n"];
        let mut seq = 1;
        for (i, p) in stream.iter().enumerate() {
            h.data(seq, p, 2 + i as u64);
            seq += p.len() as u32;
        }
        let s = h.finish();
        assert_eq!(s.bodies(), [a, b]);
        assert!(s.anomalies.is_empty());
        let sip: Vec<u64> = s.msgs.iter().flat_map(|m| m.frames.clone()).collect();
        assert_eq!(sip, [3, 6], "keep-alive segments carry no SIP");
    }

    #[test]
    fn message_without_content_length_ends_at_the_next_start_line() {
        let nocl = b"MESSAGE sip:bob@example.com SIP/2.0\r\n\
                     Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKx\r\n\
                     From: <sip:alice@example.com>;tag=a1\r\n\
                     To: <sip:bob@example.com>\r\n\
                     Call-ID: m1\r\n\
                     CSeq: 2 MESSAGE\r\n\
                     \r\n\
                     hello\r\n";
        let b = req("c2", SDP);
        let mut h = H::new();
        h.syn(0, 1);
        h.data(1, &nocl[..], 2);
        assert!(h.seen.msgs.is_empty(), "waits for what follows");
        h.data(1 + nocl.len() as u32, &b, 3);
        let s = h.finish();
        assert_eq!(s.bodies(), [nocl.to_vec(), b]);
        assert!(s.msgs[0].no_cl);
        assert!(!s.msgs[1].no_cl);
        assert_eq!(s.msgs[0].frame, 2, "completed by its last byte's frame");
        assert_eq!(s.ids(), ["missing_content_length"]);
        let framed = Framed {
            key: key(),
            bytes: &s.msgs[0].bytes,
            frame: 2,
            ts_ns: 0,
            frames: &[],
            new_frames: &[],
            no_content_length: true,
        };
        assert_eq!(framed.parse().unwrap().body(), b"hello\r\n");
    }

    #[test]
    fn message_without_content_length_at_the_end_of_the_stream() {
        let nocl = b"SIP/2.0 100 Trying\r\nCall-ID: x\r\n\r\n";
        let mut h = H::new();
        h.syn(0, 1);
        h.feed(Segment {
            fin: true,
            ..seg(1, &nocl[..], 2)
        });
        let s = h.finish();
        assert_eq!(s.bodies(), [nocl.to_vec()]);
        assert_eq!(s.ids(), ["missing_content_length"]);
    }

    #[test]
    fn garbage_between_messages_is_a_resync_with_its_byte_count() {
        let (a, b) = (req("c1", SDP), req("c2", ""));
        let mut h = H::new();
        h.syn(0, 1);
        // Keep-alives before the junk are not counted as skipped.
        let junk = b"\r\n\r\n\x16\x03\x01 binary junk\r\nmore junk\r\n";
        h.data(1, &cat(&[&a, junk, &b]), 2);
        let s = h.finish();
        assert_eq!(s.bodies(), [a, b]);
        assert_eq!(s.ids(), ["tcp_resync"]);
        assert!(
            s.anomalies[0].2.starts_with("28 bytes skipped"),
            "{:?}",
            s.anomalies
        );
    }

    #[test]
    fn content_length_beyond_the_cap_is_skipped() {
        let big = b"INVITE sip:b@example.com SIP/2.0\r\nCall-ID: x\r\nContent-Length: 99999999\r\n\r\nsome body\r\n";
        let b = req("c2", "");
        let mut h = H::new();
        h.syn(0, 1);
        h.data(1, &cat(&[big, &b]), 2);
        let s = h.finish();
        assert_eq!(s.bodies(), [b]);
        assert_eq!(s.ids(), ["sip_buffer_overflow", "tcp_resync"]);
    }

    #[test]
    fn a_stream_without_sip_is_silent() {
        let mut h = H::new();
        h.syn(0, 1);
        h.data(1, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2);
        h.data(28, &[0u8; 3000], 3);
        let s = h.finish();
        assert!(s.msgs.is_empty());
        assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
        assert_eq!(h_streams_after_reset(), 0);
    }

    /// A Reset frees the stream's framer.
    fn h_streams_after_reset() -> usize {
        let mut f = Framers::default();
        let data = StreamEvent::Data {
            key: key(),
            bytes: b"INVITE sip:x SIP/2.0\r\n",
            frame: 1,
            ts_ns: 0,
            carrier: 1,
        };
        f.event(&data, &mut |_| {});
        assert_eq!(f.streams(), 1);
        f.event(
            &StreamEvent::Reset {
                key: key(),
                frame: 2,
            },
            &mut |_| {},
        );
        f.streams()
    }

    #[test]
    fn global_framing_cap_drops_the_biggest_buffers() {
        let limits = FramerLimits {
            per_stream_bytes: 1 << 20,
            global_bytes: 64 << 10,
        };
        let mut f = Framers::new(limits);
        let mut overflows = 0;
        let head = b"INVITE sip:x SIP/2.0\r\nX: ";
        for port in 0..100u16 {
            let mut k = key();
            k.src.set_port(2000 + port);
            for i in 0..3u64 {
                let pad = [b'y'; 4000];
                let bytes: &[u8] = if i == 0 { head } else { &pad };
                f.event(
                    &StreamEvent::Data {
                        key: k,
                        bytes,
                        frame: port as u64 * 10 + i,
                        ts_ns: 0,
                        carrier: port as u64 * 10 + i,
                    },
                    &mut |e| {
                        if let FramerEvent::Anomaly {
                            id: "sip_buffer_overflow",
                            ..
                        } = e
                        {
                            overflows += 1;
                        }
                    },
                );
                assert!(f.buffered_bytes() <= 64 << 10);
            }
        }
        assert!(overflows > 0);
    }

    /// A stream of messages: requests and compact responses with bodies
    /// of various sizes, keep-alives between some.
    fn messages() -> impl Strategy<Value = (Vec<Vec<u8>>, Vec<u8>)> {
        prop::collection::vec((0usize..400, any::<bool>(), 0usize..3), 1..12).prop_map(|spec| {
            let mut msgs = Vec::new();
            let mut stream = Vec::new();
            for (i, (body, is_req, ka)) in spec.into_iter().enumerate() {
                let call = format!("call{i}");
                let body: String = "b".repeat(body);
                let m = if is_req {
                    req(&call, &body)
                } else {
                    resp(&call, &body)
                };
                stream.extend(std::iter::repeat_n(&b"\r\n"[..], ka).flatten());
                stream.extend_from_slice(&m);
                msgs.push(m);
            }
            (msgs, stream)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_segmentation_and_reordering_yield_every_message_in_order(
            (msgs, stream) in messages(),
            cuts in prop::collection::vec(1usize..200, 1..400),
            swaps in prop::collection::vec((0usize..1000, 1usize..4), 0..40),
            dups in prop::collection::vec(0usize..1000, 0..10),
            isn in prop_oneof![Just(u32::MAX - 300), any::<u32>()],
        ) {
            // Cut the stream into segments.
            let mut segs: Vec<(u32, Vec<u8>)> = Vec::new();
            let (mut at, mut c) = (0usize, 0usize);
            while at < stream.len() {
                let n = cuts[c % cuts.len()].min(stream.len() - at);
                segs.push((isn.wrapping_add(1).wrapping_add(at as u32), stream[at..at + n].to_vec()));
                at += n;
                c += 1;
            }
            // Reorder within a window of 3, and retransmit a few.
            for &(i, d) in &swaps {
                let i = i % segs.len();
                let j = (i + d).min(segs.len() - 1);
                segs.swap(i, j);
            }
            for &i in &dups {
                let i = i % segs.len();
                let s = segs[i].clone();
                segs.insert((i + 2).min(segs.len()), s);
            }
            let mut h = H::new();
            h.syn(isn, 1);
            // Which frame first delivered each stream byte (the first copy).
            let mut first = vec![0u64; stream.len()];
            for (n, (seq, p)) in segs.iter().enumerate() {
                let frame = 2 + n as u64;
                let off = seq.wrapping_sub(isn.wrapping_add(1)) as usize;
                for b in &mut first[off..off + p.len()] {
                    if *b == 0 {
                        *b = frame;
                    }
                }
                h.data(*seq, p, frame);
            }
            let s = h.finish();
            prop_assert_eq!(s.bodies(), msgs.clone());
            prop_assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
            // Accounting: the frames listed are exactly the first copies of
            // message bytes; each is new exactly once.
            let mut expect = std::collections::BTreeSet::new();
            let mut at = 0;
            for m in &msgs {
                let start = at + stream[at..].windows(m.len()).position(|w| w == &m[..]).unwrap();
                expect.extend(first[start..start + m.len()].iter().copied());
                at = start + m.len();
            }
            let listed: std::collections::BTreeSet<u64> =
                s.msgs.iter().flat_map(|m| m.frames.clone()).collect();
            prop_assert_eq!(&listed, &expect);
            let new: Vec<u64> = s.msgs.iter().flat_map(|m| m.new_frames.clone()).collect();
            prop_assert_eq!(new.len(), expect.len());
            for m in &s.msgs {
                prop_assert!(m.frames.contains(&m.frame) || m.frame > *m.frames.iter().max().unwrap());
            }
        }
    }
}
