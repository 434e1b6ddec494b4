//! WebSocket deframing (RFC 6455) of one reassembled TCP direction, for SIP
//! over WebSocket (RFC 7118, transport `ws`).
//!
//! In: the in-order bytes of one TCP direction, from the reassembler's
//! [`StreamEvent::Data`](super::StreamEvent::Data) events
//! ([`Deframer::data`]), its [`StreamEvent::Gap`](super::StreamEvent::Gap)s
//! ([`Deframer::gap`]) and the end of the direction ([`Deframer::finish`],
//! on `Reset` or at the end of the capture). One [`Deframer`] per
//! direction; [`is_upgrade_request`] helps the caller decide that a
//! connection is a WebSocket one.
//! Out: [`WsEvent::Message`] for every complete text or binary message
//! (fragments joined, unmasked), [`WsEvent::Closed`] at a Close frame, and
//! [`WsEvent::Anomaly`]s with stable snake_case ids ([`ANOMALY_IDS`]),
//! attached to the carrier of the first byte concerned.
//!
//! What it never does: look inside a message (RFC 7118 puts exactly one
//! SIP message in each WebSocket message; reading it is the caller's
//! business), validate the UTF-8 of text messages, decompress
//! (`permessage-deflate`), or hold more than [`WsLimits`].
//!
//! # Handshake
//! With `handshake`, the direction first carries the HTTP opening
//! handshake: the client's `GET` request, or the server's response, which
//! must be `HTTP/1.x 101`. It is skipped up to and including the empty line
//! that ends its header section (CR LF CR LF; a bare LF line end is
//! tolerated), streaming: nothing of it is buffered. A response other than
//! 101, a direction that starts with neither a request nor a response, or
//! a header section that does not end within
//! [`WsLimits::max_handshake_bytes`] (or before the stream ends) is a
//! `ws_bad_handshake`, and the direction is not decoded further.
//!
//! # Frames
//! Frame headers (2 to 14 bytes) and payloads may be split across `Data`
//! events in any way, and one event may hold many frames. Masked payloads
//! (client to server) are unmasked; masking is accepted in either
//! direction. Control frames (ping, pong, close) may sit between the
//! fragments of a data message; ping and pong payloads are skipped.
//! Anomalies:
//! - `ws_protocol_error`: a reserved bit set (`RSV1` included: compressed
//!   `permessage-deflate` messages are not decoded), an unknown opcode, a
//!   fragmented control frame or one longer than 125 bytes, or a 64-bit
//!   length with its top bit set. Frame boundaries can no longer be
//!   trusted: the direction is not decoded further (its bytes are dropped)
//!   and the partial message, if any, is dropped with it.
//! - `ws_message_too_large`: a message beyond [`WsLimits::max_message_bytes`]
//!   (counting 8 bytes per carrying segment on top of the payload, so that
//!   a message in many tiny segments is bounded too). Known from the
//!   length field, the frame's bytes are skipped as they stream by, never
//!   buffered; a fragmented message that grows beyond the cap is dropped
//!   and its remaining fragments skipped. Decoding continues after it.
//! - `ws_orphan_continuation`: a continuation frame with no message
//!   started; it (and the fragments that follow it up to a final one) is
//!   skipped.
//! - `ws_message_interrupted`: a new text/binary frame while a fragmented
//!   message is incomplete; the partial message is dropped, the new one
//!   decoded.
//! - `ws_message_truncated`: a message (or frame) cut short by a Close
//!   frame or the end of the stream.
//! - `ws_data_after_close`: bytes after the Close frame (reported once;
//!   they are ignored).
//!
//! # Gaps
//! Frames carry no sync marker, and a payload may hold any bytes, so after
//! lost bytes there is no reliable way to find the next frame header. The
//! choice made here: a gap ends the decoding of that direction, with one
//! `ws_gap` anomaly (naming the bytes of a partial message dropped with
//! it); later bytes are dropped. A direction that already stopped (after a
//! protocol error, a bad handshake or a Close frame) reports nothing more.
//!
//! # Copies and bounds
//! A whole unmasked frame that is a whole message and lies inside one
//! `Data` event is delivered as a slice of it; a masked one is unmasked
//! into the deframer's buffer (its only copy). Messages spread over several
//! events or fragments are copied once, unmasked, into that buffer.
//! [`Deframer::buffered`] is at most `max_message_bytes` plus a partial
//! frame header (14 bytes).
//!
//! # Accounting
//! [`WsEvent::Message::new_frames`] lists the carriers (TCP segments) of
//! the message's bytes, frame headers included, that were not listed with
//! an earlier message of the same deframer, so that summing their counts
//! counts each SIP-carrying segment once. Segments that carried only the
//! handshake, control frames or dropped messages are never listed.

use std::collections::VecDeque;

use memchr::memchr;

/// Every anomaly id this module emits (in [`WsEvent::Anomaly`]).
pub const ANOMALY_IDS: &[&str] = &[
    "ws_bad_handshake",
    "ws_protocol_error",
    "ws_message_too_large",
    "ws_orphan_continuation",
    "ws_message_interrupted",
    "ws_message_truncated",
    "ws_data_after_close",
    "ws_gap",
];

/// Bookkeeping bytes charged per carrying segment of a buffered message.
const CARRIER_COST: usize = 8;

/// Longest frame header: 2 bytes, 8 of extended length, 4 of masking key.
const MAX_HEADER: usize = 14;

/// Carriers of recent messages remembered, so that a segment whose bytes
/// straddle messages is listed once.
const RECENT: usize = 16;

/// Capacity kept by the message buffer between messages.
const KEEP_CAPACITY: usize = 64 << 10;

/// Opcodes (RFC 6455 §5.2).
const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Bounds of one deframer.
#[derive(Clone, Copy, Debug)]
pub struct WsLimits {
    /// Largest message delivered, in payload bytes plus 8 per carrying TCP
    /// segment (default 1 MiB); larger ones are skipped with
    /// `ws_message_too_large`.
    pub max_message_bytes: usize,
    /// Longest HTTP handshake (request or response, up to and including its
    /// empty line) skipped at the start of a direction (default 16 KiB).
    pub max_handshake_bytes: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_message_bytes: 1 << 20,
            max_handshake_bytes: 16 << 10,
        }
    }
}

/// Whether the first bytes of a TCP direction look like the client side of
/// a WebSocket opening handshake: a `GET <target> HTTP/1.1` request line,
/// then an `Upgrade` header whose value lists the token `websocket` (header
/// names and values compared case-insensitively, CR LF or bare LF line
/// ends). `Sec-WebSocket-Protocol: sip` (RFC 7118 §4) is accepted but not
/// required: the caller finds SIP in the messages.
///
/// Returns `Some(true)` as soon as the `Upgrade` line is complete,
/// `Some(false)` when the bytes cannot be such a request (the first bytes
/// are not `GET `, the request line is not HTTP/1.1, the header section
/// ends without the header, or no decision within the default
/// [`WsLimits::max_handshake_bytes`]), and `None` when more bytes are
/// needed.
pub fn is_upgrade_request(buf: &[u8]) -> Option<bool> {
    const GET: &[u8] = b"GET ";
    let k = buf.len().min(GET.len());
    if buf[..k] != GET[..k] {
        return Some(false);
    }
    let limit = WsLimits::default().max_handshake_bytes;
    let b = &buf[..buf.len().min(limit)];
    let mut pos = 0;
    let mut first = true;
    while let Some(k) = memchr(b'\n', &b[pos..]) {
        let line = &b[pos..pos + k];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += k + 1;
        if first {
            first = false;
            let mut parts = line.split(|&c| c == b' ');
            let ok = parts.next() == Some(b"GET")
                && parts.next().is_some_and(|t| !t.is_empty())
                && parts.next() == Some(b"HTTP/1.1")
                && parts.next().is_none();
            if !ok {
                return Some(false);
            }
            continue;
        }
        if line.is_empty() {
            return Some(false);
        }
        if let Some(colon) = memchr(b':', line) {
            let is_upgrade = line[..colon].trim_ascii().eq_ignore_ascii_case(b"upgrade");
            if is_upgrade
                && line[colon + 1..]
                    .split(|&c| c == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"))
            {
                return Some(true);
            }
        }
    }
    if buf.len() >= limit {
        Some(false)
    } else {
        None
    }
}

/// What a deframer reports.
#[derive(Debug)]
pub enum WsEvent<'a> {
    /// A complete text or binary message, fragments joined and unmasked.
    Message {
        /// Opcode text (1) rather than binary (2).
        text: bool,
        /// The payload: a slice of the `Data` bytes when the message was
        /// one unmasked frame inside them, else the deframer's buffer.
        payload: &'a [u8],
        /// The frame that completed it (the `frame` of the `Data` event
        /// holding its last byte).
        frame: u64,
        /// Capture time of `frame`.
        ts_ns: i64,
        /// The carriers of its bytes (frame headers included) not listed
        /// with an earlier message of this deframer, ascending.
        new_frames: &'a [u64],
    },
    /// A Close frame was received: the direction carries no more messages.
    Closed {
        /// The frame that completed the Close frame.
        frame: u64,
    },
    /// A deframing anomaly.
    Anomaly {
        /// The frame it is attached to (the carrier of the first byte
        /// concerned, or the frame that reported a gap or an end).
        frame: u64,
        /// Stable snake_case id (see [`ANOMALY_IDS`]).
        id: &'static str,
        /// Human detail, with byte counts.
        detail: String,
    },
}

/// Output callback of a deframer.
type Out<'o> = dyn FnMut(WsEvent<'_>) + 'o;

/// Where the bytes being handled come from.
#[derive(Clone, Copy, Debug)]
struct At {
    frame: u64,
    ts_ns: i64,
    carrier: u64,
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
}

/// Parses a frame header at the start of `b`: `Ok(Some((header, its
/// length)))`, `Ok(None)` when more bytes are needed, `Err(why)` for a
/// protocol error (reported as soon as the bytes that show it are there).
fn parse_header(b: &[u8]) -> Result<Option<(Header, usize)>, String> {
    let Some(&b0) = b.first() else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(format!(
            "reserved bits {:#05b} set (no extension is decoded; RSV1 is permessage-deflate)",
            (b0 >> 4) & 7
        ));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0f;
    let control = opcode >= OP_CLOSE;
    match opcode {
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
        _ => return Err(format!("unknown opcode {opcode:#x}")),
    }
    if control && !fin {
        return Err(format!("fragmented control frame (opcode {opcode:#x})"));
    }
    let Some(&b1) = b.get(1) else {
        return Ok(None);
    };
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7f;
    if control && len7 > 125 {
        return Err(format!(
            "control frame (opcode {opcode:#x}) longer than 125 bytes"
        ));
    }
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let n = 2 + ext + if masked { 4 } else { 0 };
    if b.len() < n {
        return Ok(None);
    }
    let len = match ext {
        2 => u16::from_be_bytes([b[2], b[3]]) as u64,
        8 => {
            let l = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
            if l >> 63 != 0 {
                return Err(format!("64-bit payload length {l:#x} has its top bit set"));
            }
            l
        }
        _ => len7 as u64,
    };
    let mask = masked.then(|| b[n - 4..n].try_into().expect("4 bytes"));
    Ok(Some((
        Header {
            fin,
            opcode,
            mask,
            len,
        },
        n,
    )))
}

/// Appends `src` to `dst`, unmasked with `key` from payload offset `off`.
fn unmask_into(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], off: u64) {
    let start = dst.len();
    dst.extend_from_slice(src);
    let r = (off % 4) as usize;
    let k = [key[r], key[(r + 1) % 4], key[(r + 2) % 4], key[(r + 3) % 4]];
    for (j, b) in dst[start..].iter_mut().enumerate() {
        *b ^= k[j & 3];
    }
}

/// What becomes of a frame's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Data appended to the message being assembled.
    Keep,
    /// Data skipped (too large, orphan, or part of a dropped message).
    Skip,
    /// A control frame's payload, skipped.
    Control,
}

/// The frame whose payload is being read.
#[derive(Clone, Copy, Debug)]
struct Frame {
    kind: Kind,
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// Payload bytes still to come (never 0 while reading).
    remaining: u64,
    /// Payload bytes read so far (the masking key position).
    off: u64,
}

/// Skipping the HTTP handshake.
#[derive(Clone, Copy, Debug)]
struct Handshake {
    /// Bytes skipped so far.
    seen: usize,
    /// Its first bytes, enough to tell a request from a 101 response.
    first: [u8; 12],
    first_len: usize,
    /// Line-end state: 0 inside a line, 1 after LF, 2 after LF CR.
    eol: u8,
}

/// Where a deframer is in its direction.
#[derive(Clone, Copy, Debug)]
enum State {
    Handshake(Handshake),
    /// At a frame header (possibly partly received, in `Deframer::hdr`).
    Header,
    Payload(Frame),
    /// After a Close frame.
    Closed,
    /// Not decoding any more (bad handshake, protocol error, gap, end).
    Dead,
}

/// A data message whose final fragment has not arrived.
#[derive(Clone, Copy, Debug)]
struct Msg {
    text: bool,
    /// Being skipped (too large, or an orphan continuation).
    dropping: bool,
    /// Carrier of its first byte.
    carrier: u64,
}

/// Deframes one TCP direction (see the module documentation).
pub struct Deframer {
    limits: WsLimits,
    state: State,
    /// Partial frame header, when one is split across `Data` events.
    hdr: [u8; MAX_HEADER],
    hdr_len: usize,
    /// Carrier of the first byte of the current frame header.
    hdr_carrier: u64,
    /// `carriers.len()` when the current frame header started: what the
    /// frame added is removed if it does not belong to the message.
    mark: usize,
    /// Message in progress between fragments.
    msg: Option<Msg>,
    /// Unmasked payload of the message in progress (or the masked frame
    /// being delivered).
    buf: Vec<u8>,
    /// Carriers of the message's bytes, in stream order (consecutive
    /// repeats collapsed).
    carriers: Vec<u64>,
    /// Carriers listed with recent messages.
    recent: VecDeque<u64>,
    /// Scratch: the `new_frames` of the message being delivered.
    new: Vec<u64>,
    /// `ws_data_after_close` was reported.
    after_close: bool,
}

impl Deframer {
    /// A deframer for one direction. `handshake`: the direction starts with
    /// the HTTP opening handshake (the request from the client, the
    /// `HTTP/1.1 101` response from the server), which is skipped first;
    /// false when the capture started after the handshake.
    pub fn new(handshake: bool, limits: WsLimits) -> Self {
        Deframer {
            limits,
            state: if handshake {
                State::Handshake(Handshake {
                    seen: 0,
                    first: [0; 12],
                    first_len: 0,
                    eol: 0,
                })
            } else {
                State::Header
            },
            hdr: [0; MAX_HEADER],
            hdr_len: 0,
            hdr_carrier: 0,
            mark: 0,
            msg: None,
            buf: Vec::new(),
            carriers: Vec::new(),
            recent: VecDeque::with_capacity(RECENT),
            new: Vec::new(),
            after_close: false,
        }
    }

    /// Feeds in-order stream bytes (those of one `StreamEvent::Data`):
    /// `frame` made them deliverable at capture time `ts_ns`, `carrier` is
    /// the segment whose payload they are.
    pub fn data(
        &mut self,
        bytes: &[u8],
        frame: u64,
        ts_ns: i64,
        carrier: u64,
        out: &mut dyn FnMut(WsEvent<'_>),
    ) {
        let at = At {
            frame,
            ts_ns,
            carrier,
        };
        let mut i = 0;
        while i < bytes.len() {
            i += match self.state {
                State::Handshake(_) => self.handshake(&bytes[i..], at, out),
                State::Header => self.header(&bytes[i..], at, out),
                State::Payload(_) => self.payload(&bytes[i..], at, out),
                State::Closed => {
                    if !self.after_close {
                        self.after_close = true;
                        self.anomaly(
                            carrier,
                            "ws_data_after_close",
                            format!(
                                "{} bytes after the Close frame ignored (and any that follow)",
                                bytes.len() - i
                            ),
                            out,
                        );
                    }
                    bytes.len() - i
                }
                State::Dead => bytes.len() - i,
            };
        }
    }

    /// Bytes were lost in the stream (a `StreamEvent::Gap` at `frame`): the
    /// next frame boundary cannot be found, so the direction is not
    /// decoded further (`ws_gap`, naming the partial message dropped).
    pub fn gap(&mut self, frame: u64, out: &mut dyn FnMut(WsEvent<'_>)) {
        if matches!(self.state, State::Dead | State::Closed) {
            self.state = State::Dead;
            return;
        }
        let partial = self.partial_bytes();
        let lost = if partial > 0 {
            format!("; {partial} bytes of a partial message dropped")
        } else {
            String::new()
        };
        self.anomaly(
            frame,
            "ws_gap",
            format!(
                "bytes lost in the TCP stream: WebSocket frame boundaries cannot be \
                 recovered, the rest of this direction is not decoded{lost}"
            ),
            out,
        );
        self.stop();
    }

    /// The direction ended (a `StreamEvent::Reset` at `frame`, or the end
    /// of the capture): a partial message is reported
    /// (`ws_message_truncated`), an unfinished handshake too
    /// (`ws_bad_handshake`). The deframer decodes nothing afterwards.
    pub fn finish(&mut self, frame: u64, out: &mut dyn FnMut(WsEvent<'_>)) {
        match self.state {
            State::Handshake(hs) if hs.seen > 0 => {
                let detail = format!(
                    "the stream ended inside the HTTP handshake ({} bytes, no empty line)",
                    hs.seen
                );
                self.anomaly(frame, "ws_bad_handshake", detail, out);
            }
            State::Header | State::Payload(_) => {
                // A frame cut short (not one already being skipped), or a
                // fragmented message waiting for its final fragment.
                let cut = match self.state {
                    State::Payload(f) => f.kind != Kind::Skip,
                    _ => self.hdr_len > 0,
                };
                let waiting = self.msg.filter(|m| !m.dropping);
                if cut || waiting.is_some() {
                    self.anomaly(
                        waiting.map_or(self.hdr_carrier, |m| m.carrier),
                        "ws_message_truncated",
                        format!(
                            "a WebSocket frame or message cut short by the end of the stream \
                             ({} message bytes held)",
                            self.partial_bytes()
                        ),
                        out,
                    );
                }
            }
            _ => {}
        }
        self.stop();
    }

    /// Bytes held now: the partial message (plus 8 per carrying segment)
    /// and a partial frame header. At most `max_message_bytes` + 14.
    pub fn buffered(&self) -> usize {
        self.buf.len() + self.carriers.len() * CARRIER_COST + self.hdr_len
    }

    /// Payload bytes of a kept message in progress.
    fn partial_bytes(&self) -> usize {
        match self.msg {
            Some(m) if !m.dropping => self.buf.len(),
            _ => 0,
        }
    }

    /// Stops decoding, dropping everything held.
    fn stop(&mut self) {
        self.state = State::Dead;
        self.msg = None;
        self.hdr_len = 0;
        self.drop_message();
    }

    /// Empties the message buffer and its carriers.
    fn drop_message(&mut self) {
        self.buf.clear();
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY);
        }
        self.carriers.clear();
        self.mark = 0;
    }

    fn note_carrier(&mut self, c: u64) {
        if self.carriers.last() != Some(&c) {
            self.carriers.push(c);
        }
    }

    fn anomaly(&self, frame: u64, id: &'static str, detail: String, out: &mut Out<'_>) {
        out(WsEvent::Anomaly { frame, id, detail });
    }

    /// Skips handshake bytes; returns how many of `b` were consumed.
    fn handshake(&mut self, b: &[u8], at: At, out: &mut Out<'_>) -> usize {
        let State::Handshake(mut hs) = self.state else {
            unreachable!("called in the handshake state")
        };
        let take = (hs.first.len() - hs.first_len).min(b.len());
        hs.first[hs.first_len..hs.first_len + take].copy_from_slice(&b[..take]);
        hs.first_len += take;
        if let Some(why) = bad_first_line(&hs.first[..hs.first_len], false) {
            return self.bad_handshake(why, b.len(), at, out);
        }
        let room = self.limits.max_handshake_bytes - hs.seen;
        let scan = &b[..b.len().min(room)];
        let mut end = None;
        for (j, &c) in scan.iter().enumerate() {
            hs.eol = match (hs.eol, c) {
                (1 | 2, b'\n') => {
                    end = Some(j + 1);
                    break;
                }
                (_, b'\n') => 1,
                (1, b'\r') => 2,
                _ => 0,
            };
        }
        match end {
            Some(n) => {
                hs.seen += n;
                let first = &hs.first[..hs.first_len];
                if let Some(why) = bad_first_line(first, true) {
                    return self.bad_handshake(why, b.len(), at, out);
                }
                self.state = State::Header;
                n
            }
            None => {
                hs.seen += scan.len();
                if hs.seen >= self.limits.max_handshake_bytes {
                    let why = format!(
                        "no end of the HTTP header section within {} bytes",
                        self.limits.max_handshake_bytes
                    );
                    return self.bad_handshake(why, b.len(), at, out);
                }
                self.state = State::Handshake(hs);
                scan.len()
            }
        }
    }

    fn bad_handshake(&mut self, why: String, n: usize, at: At, out: &mut Out<'_>) -> usize {
        self.anomaly(
            at.carrier,
            "ws_bad_handshake",
            format!("{why}: the direction is not decoded"),
            out,
        );
        self.stop();
        n
    }

    /// Reads (part of) a frame header and, when it is complete, starts the
    /// frame; returns how many of `b` were consumed.
    fn header(&mut self, b: &[u8], at: At, out: &mut Out<'_>) -> usize {
        let old = self.hdr_len;
        if old == 0 {
            self.mark = self.carriers.len();
            self.hdr_carrier = at.carrier;
        }
        let parsed = if old == 0 {
            parse_header(b)
        } else {
            let mut tmp = self.hdr;
            let take = (MAX_HEADER - old).min(b.len());
            tmp[old..old + take].copy_from_slice(&b[..take]);
            parse_header(&tmp[..old + take])
        };
        match parsed {
            Err(why) => {
                let partial = self.partial_bytes();
                let lost = if partial > 0 {
                    format!("; {partial} bytes of a partial message dropped")
                } else {
                    String::new()
                };
                self.anomaly(
                    self.hdr_carrier,
                    "ws_protocol_error",
                    format!("{why}: the rest of this direction is not decoded{lost}"),
                    out,
                );
                self.stop();
                b.len()
            }
            Ok(None) => {
                debug_assert!(old + b.len() < MAX_HEADER);
                self.hdr[old..old + b.len()].copy_from_slice(b);
                self.hdr_len += b.len();
                self.note_carrier(at.carrier);
                b.len()
            }
            Ok(Some((h, n))) => {
                let used = n - old;
                self.hdr_len = 0;
                self.note_carrier(at.carrier);
                used + self.start_frame(h, &b[used..], at, out)
            }
        }
    }

    /// A frame header is complete; `rest` follows it in the current event.
    /// Returns the payload bytes consumed (all of them when the frame was
    /// delivered at once, else 0: [`Deframer::payload`] reads them).
    fn start_frame(&mut self, h: Header, rest: &[u8], at: At, out: &mut Out<'_>) -> usize {
        let kind = match h.opcode {
            OP_TEXT | OP_BINARY => match self.data_frame(&h, rest, at, out) {
                Some(kind) => kind,
                // Delivered at once.
                None => return h.len as usize,
            },
            OP_CONTINUATION => self.continuation_frame(&h, out),
            _ => {
                self.carriers.truncate(self.mark);
                Kind::Control
            }
        };
        self.state = State::Payload(Frame {
            kind,
            fin: h.fin,
            opcode: h.opcode,
            mask: h.mask,
            remaining: h.len,
            off: 0,
        });
        if h.len == 0 {
            self.end_frame(at, out);
        }
        0
    }

    /// A text or binary frame starts a message: what to do with its
    /// payload, or `None` when the whole message was in `rest` and has been
    /// delivered.
    fn data_frame(&mut self, h: &Header, rest: &[u8], at: At, out: &mut Out<'_>) -> Option<Kind> {
        let max = self.limits.max_message_bytes as u64;
        self.interrupt_message(out);
        let text = h.opcode == OP_TEXT;
        let held = (self.carriers.len() * CARRIER_COST) as u64;
        if h.len.saturating_add(held) > max {
            let why = format!(
                "a {}-byte frame exceeds the {max}-byte message cap: its bytes are skipped",
                h.len
            );
            self.skip_message(h, text, "ws_message_too_large", why, out);
            return Some(Kind::Skip);
        }
        if h.fin && h.len <= rest.len() as u64 {
            // The whole message is here: deliver it at once.
            let p = &rest[..h.len as usize];
            self.collect_new();
            let payload = match h.mask {
                None => p,
                Some(key) => {
                    unmask_into(&mut self.buf, p, key, 0);
                    &self.buf[..]
                }
            };
            out(WsEvent::Message {
                text,
                payload,
                frame: at.frame,
                ts_ns: at.ts_ns,
                new_frames: &self.new,
            });
            self.drop_message();
            return None;
        }
        self.msg = Some(Msg {
            text,
            dropping: false,
            carrier: self.hdr_carrier,
        });
        Some(Kind::Keep)
    }

    /// A frame whose bytes are skipped (anomaly `id`, `why`): the message
    /// it belongs to is dropped, and the fragments that follow it are
    /// skipped too.
    fn skip_message(
        &mut self,
        h: &Header,
        text: bool,
        id: &'static str,
        why: String,
        out: &mut Out<'_>,
    ) {
        let rest = if h.fin {
            ""
        } else {
            ", and the fragments that follow it"
        };
        self.anomaly(self.hdr_carrier, id, format!("{why}{rest}"), out);
        self.drop_message();
        self.msg = (!h.fin).then_some(Msg {
            text,
            dropping: true,
            carrier: self.hdr_carrier,
        });
    }

    /// A data frame while a fragmented message is open: that message is
    /// dropped (reported unless it was being skipped already).
    fn interrupt_message(&mut self, out: &mut Out<'_>) {
        let Some(m) = self.msg.take() else {
            return;
        };
        if !m.dropping {
            self.anomaly(
                m.carrier,
                "ws_message_interrupted",
                format!(
                    "{} bytes of a fragmented message dropped: a new data frame \
                     started before its final fragment",
                    self.buf.len()
                ),
                out,
            );
        }
        // Keep the carriers of this frame's header only (the segment that
        // ended the old fragment and started this header is listed once,
        // before `mark`).
        let mut from = self.mark;
        if from > 0 && self.carriers[from - 1] == self.hdr_carrier {
            from -= 1;
        }
        self.buf.clear();
        self.carriers.drain(..from);
        self.mark = 0;
    }

    /// A continuation frame: what to do with its payload.
    fn continuation_frame(&mut self, h: &Header, out: &mut Out<'_>) -> Kind {
        let max = self.limits.max_message_bytes as u64;
        match self.msg {
            None => {
                let why = format!(
                    "a continuation frame ({} bytes) with no message started: skipped",
                    h.len
                );
                self.skip_message(h, false, "ws_orphan_continuation", why, out);
                Kind::Skip
            }
            Some(m) if m.dropping => {
                self.carriers.truncate(self.mark);
                Kind::Skip
            }
            Some(m) => {
                let held = (self.buf.len() + self.carriers.len() * CARRIER_COST) as u64;
                if h.len.saturating_add(held) > max {
                    self.too_large(m, h.len, out);
                    Kind::Skip
                } else {
                    Kind::Keep
                }
            }
        }
    }

    /// A fragmented message grows beyond the cap: dropped, the rest of it
    /// skipped.
    fn too_large(&mut self, m: Msg, more: u64, out: &mut Out<'_>) {
        self.anomaly(
            m.carrier,
            "ws_message_too_large",
            format!(
                "a fragmented message reaches {} bytes in {} segments (plus {} bytes to \
                 come in this frame), over the {}-byte message cap: dropped, its remaining \
                 fragments skipped",
                self.buf.len(),
                self.carriers.len(),
                more,
                self.limits.max_message_bytes
            ),
            out,
        );
        self.drop_message();
        self.msg = Some(Msg {
            dropping: true,
            ..m
        });
    }

    /// Reads payload bytes of the current frame; returns how many of `b`
    /// were consumed.
    fn payload(&mut self, b: &[u8], at: At, out: &mut Out<'_>) -> usize {
        let State::Payload(mut f) = self.state else {
            unreachable!("called in the payload state")
        };
        let n = f.remaining.min(b.len() as u64) as usize;
        let chunk = &b[..n];
        if f.kind == Kind::Keep {
            self.note_carrier(at.carrier);
            let held = self.buf.len() + n + self.carriers.len() * CARRIER_COST;
            if held > self.limits.max_message_bytes {
                let m = self.msg.expect("a kept frame belongs to a message");
                self.too_large(m, f.remaining, out);
                f.kind = Kind::Skip;
            } else {
                match f.mask {
                    Some(key) => unmask_into(&mut self.buf, chunk, key, f.off),
                    None => self.buf.extend_from_slice(chunk),
                }
            }
        }
        f.remaining -= n as u64;
        f.off += n as u64;
        self.state = State::Payload(f);
        if f.remaining == 0 {
            self.end_frame(at, out);
        }
        n
    }

    /// The current frame's payload is complete.
    fn end_frame(&mut self, at: At, out: &mut Out<'_>) {
        let State::Payload(f) = self.state else {
            unreachable!("called in the payload state")
        };
        self.state = State::Header;
        match f.kind {
            Kind::Keep if f.fin => {
                let m = self.msg.take().expect("a kept frame belongs to a message");
                self.collect_new();
                out(WsEvent::Message {
                    text: m.text,
                    payload: &self.buf,
                    frame: at.frame,
                    ts_ns: at.ts_ns,
                    new_frames: &self.new,
                });
                self.drop_message();
            }
            Kind::Keep => {}
            Kind::Skip => {
                if f.fin {
                    self.msg = None;
                }
            }
            Kind::Control => {
                if f.opcode == OP_CLOSE {
                    if let Some(m) = self.msg.filter(|m| !m.dropping) {
                        self.anomaly(
                            m.carrier,
                            "ws_message_truncated",
                            format!(
                                "{} bytes of a fragmented message cut short by a Close frame",
                                self.buf.len()
                            ),
                            out,
                        );
                    }
                    out(WsEvent::Closed { frame: at.frame });
                    self.msg = None;
                    self.drop_message();
                    self.state = State::Closed;
                }
            }
        }
    }

    /// Moves the message's carriers not listed before into `new`.
    fn collect_new(&mut self) {
        self.new.clear();
        let last = self.carriers.last().copied();
        self.carriers.sort_unstable();
        self.carriers.dedup();
        for &c in &self.carriers {
            if !self.recent.contains(&c) {
                self.new.push(c);
            }
        }
        // Remember the new ones, and the last in stream order above all:
        // its segment may carry the start of the next message.
        let remember = self.new.iter().copied().chain(last);
        for c in remember {
            if !self.recent.contains(&c) {
                if self.recent.len() == RECENT {
                    self.recent.pop_front();
                }
                self.recent.push_back(c);
            }
        }
        self.carriers.clear();
        self.mark = 0;
    }
}

/// Checks the first bytes of a handshake (`complete`: the header section
/// has ended, so no more will come): `Some(why)` when they are neither the
/// start of a `GET` request nor an `HTTP/1.x 101` status line.
fn bad_first_line(first: &[u8], complete: bool) -> Option<String> {
    const GET: &[u8] = b"GET ";
    const HTTP: &[u8] = b"HTTP/";
    let is_prefix = |p: &[u8]| first[..first.len().min(p.len())] == p[..first.len().min(p.len())];
    if first.len() >= GET.len() && first.starts_with(GET) {
        return None;
    }
    if first.len() < GET.len() && is_prefix(GET) {
        return complete.then(|| "the HTTP request line is cut short".to_string());
    }
    if !is_prefix(HTTP) {
        return Some(format!(
            "`{}` starts neither an HTTP request nor a response",
            first.escape_ascii()
        ));
    }
    if first.len() < 12 {
        return complete.then(|| format!("HTTP status line `{}` cut short", first.escape_ascii()));
    }
    if &first[8..12] != b" 101" {
        return Some(format!(
            "handshake response `{}` is not 101 Switching Protocols",
            first.escape_ascii()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned copy of an event, for assertions.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        /// text, payload, frame, new_frames
        Msg(bool, Vec<u8>, u64, Vec<u64>),
        Closed(u64),
        /// frame, id
        Anomaly(u64, &'static str),
    }

    fn own(ev: WsEvent<'_>) -> Ev {
        match ev {
            WsEvent::Message {
                text,
                payload,
                frame,
                ts_ns,
                new_frames,
            } => {
                assert_eq!(
                    ts_ns,
                    frame as i64 * 1000,
                    "ts_ns is the completing frame's"
                );
                Ev::Msg(text, payload.to_vec(), frame, new_frames.to_vec())
            }
            WsEvent::Closed { frame } => Ev::Closed(frame),
            WsEvent::Anomaly { frame, id, detail } => {
                assert!(ANOMALY_IDS.contains(&id), "{id} listed");
                assert!(!detail.is_empty());
                Ev::Anomaly(frame, id)
            }
        }
    }

    /// Feeds `(bytes, frame)` chunks, the frame being its own carrier.
    fn feed(d: &mut Deframer, chunks: &[(&[u8], u64)]) -> Vec<Ev> {
        let mut evs = Vec::new();
        for &(b, f) in chunks {
            d.data(b, f, f as i64 * 1000, f, &mut |e| evs.push(own(e)));
        }
        evs
    }

    fn plain() -> Deframer {
        Deframer::new(false, WsLimits::default())
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn xor(p: &[u8], key: [u8; 4]) -> Vec<u8> {
        p.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect()
    }

    const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKhjhs8ass877\r\n\
Max-Forwards: 70\r\n\
To: <sip:bob@example.com>\r\n\
From: Alice <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>\r\n\
Content-Length: 0\r\n\r\n";

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\n\
Host: proxy.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://www.example.com\r\n\
Sec-WebSocket-Protocol: sip\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: sip\r\n\r\n";

    /// RFC 6455 §5.7: a single-frame masked text message "Hello".
    const MASKED_HELLO: &[u8] = &[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    /// RFC 6455 §5.7: a single-frame unmasked text message "Hello".
    const HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];

    fn msg(text: bool, p: &[u8], frame: u64, new: &[u64]) -> Ev {
        Ev::Msg(text, p.to_vec(), frame, new.to_vec())
    }

    #[test]
    fn handshake_request_and_101_response_are_skipped() {
        // Client: the request, then a masked frame in the same segment.
        let mut c = Deframer::new(true, WsLimits::default());
        let wire = cat(&[REQUEST, MASKED_HELLO]);
        assert_eq!(feed(&mut c, &[(&wire, 1)]), [msg(true, b"Hello", 1, &[1])]);
        // Server: the response split inside its CR LF CR LF, then a frame.
        let mut s = Deframer::new(true, WsLimits::default());
        let cut = RESPONSE.len() - 3;
        let second = cat(&[&RESPONSE[cut..], HELLO]);
        let evs = feed(&mut s, &[(&RESPONSE[..cut], 2), (&second, 3)]);
        assert_eq!(evs, [msg(true, b"Hello", 3, &[3])]);
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn handshake_response_other_than_101_stops_the_direction() {
        let mut s = Deframer::new(true, WsLimits::default());
        let wire = cat(&[
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            HELLO,
        ]);
        assert_eq!(
            feed(&mut s, &[(&wire, 4)]),
            [Ev::Anomaly(4, "ws_bad_handshake")]
        );
        assert!(feed(&mut s, &[(HELLO, 5)]).is_empty());
    }

    #[test]
    fn handshake_without_an_end_is_bounded() {
        let limits = WsLimits {
            max_handshake_bytes: 64,
            ..WsLimits::default()
        };
        let mut c = Deframer::new(true, limits);
        let evs = feed(&mut c, &[(&REQUEST[..40], 1), (&REQUEST[40..], 2)]);
        assert_eq!(evs, [Ev::Anomaly(2, "ws_bad_handshake")]);
        assert!(feed(&mut c, &[(HELLO, 3)]).is_empty());
        // Cut short by the end of the stream.
        let mut c = Deframer::new(true, WsLimits::default());
        assert!(feed(&mut c, &[(&REQUEST[..40], 1)]).is_empty());
        let mut evs = Vec::new();
        c.finish(9, &mut |e| evs.push(own(e)));
        assert_eq!(evs, [Ev::Anomaly(9, "ws_bad_handshake")]);
    }

    #[test]
    fn rfc_masked_hello_is_unmasked() {
        let mut d = plain();
        assert_eq!(
            feed(&mut d, &[(MASKED_HELLO, 1)]),
            [msg(true, b"Hello", 1, &[1])]
        );
    }

    #[test]
    fn masked_text_frame_carries_a_sip_invite() {
        assert_eq!(INVITE.len(), 0x0141);
        let key = [0x5a, 0x13, 0xc7, 0x9e];
        let wire = cat(&[&[0x81, 0xfe, 0x01, 0x41], &key, &xor(INVITE, key)]);
        let mut d = plain();
        assert_eq!(feed(&mut d, &[(&wire, 7)]), [msg(true, INVITE, 7, &[7])]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn masked_fragmented_message_over_several_chunks() {
        // A client's INVITE in three masked fragments (text, continuation,
        // final continuation), each with its own key, a masked ping between
        // the first two, and the wire cut in the middle of frame headers,
        // keys and payloads.
        let (a, rest) = INVITE.split_at(100);
        let (b, c) = rest.split_at(150);
        let (k1, k2, k3, kp) = (
            [1, 2, 3, 4],
            [0xaa, 0x55, 0x0f, 0xf0],
            [9, 8, 7, 6],
            [7, 7, 7, 7],
        );
        let wire = cat(&[
            &[0x01, 0x80 | a.len() as u8],
            &k1,
            &xor(a, k1),
            &[0x89, 0x84],
            &kp,
            &xor(b"ping", kp),
            &[0x00, 0x80 | 126],
            &(b.len() as u16).to_be_bytes(),
            &k2,
            &xor(b, k2),
            &[0x80, 0x80 | 126],
            &(c.len() as u16).to_be_bytes(),
            &k3,
            &xor(c, k3),
        ]);
        let cuts = [1, 4, 57, 110, 113, 118, 121, 200, 305, wire.len() - 3];
        let mut chunks: Vec<(&[u8], u64)> = Vec::new();
        let mut at = 0;
        for (i, &cut) in cuts.iter().chain(std::iter::once(&wire.len())).enumerate() {
            chunks.push((&wire[at..cut], i as u64 + 1));
            at = cut;
        }
        let mut d = plain();
        let evs = feed(&mut d, &chunks);
        let last = chunks.len() as u64;
        // Every chunk that carried part of the message is listed once;
        // chunk 5 (bytes 110..113) holds only the ping's key and payload.
        let carriers: Vec<u64> = (1..=last).filter(|&f| f != 5).collect();
        assert_eq!(evs, [msg(true, INVITE, last, &carriers)]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn masked_payload_split_keeps_the_key_position() {
        let key = [0x5a, 0x13, 0xc7, 0x9e];
        let wire = cat(&[&[0x81, 0xfe, 0x01, 0x41], &key, &xor(INVITE, key)]);
        let mut d = plain();
        // Splits at payload offsets 1, 6 and 203: not multiples of 4.
        let evs = feed(
            &mut d,
            &[
                (&wire[..9], 1),
                (&wire[9..14], 2),
                (&wire[14..211], 3),
                (&wire[211..], 4),
            ],
        );
        assert_eq!(evs, [msg(true, INVITE, 4, &[1, 2, 3, 4])]);
    }

    #[test]
    fn server_unmasked_frame_is_delivered_without_a_copy() {
        let wire = cat(&[&[0x81, 0x7e, 0x01, 0x41], INVITE]);
        let mut d = plain();
        let mut seen = 0;
        d.data(&wire, 3, 3000, 3, &mut |e| {
            let WsEvent::Message {
                text,
                payload,
                frame,
                new_frames,
                ..
            } = e
            else {
                panic!("{e:?}")
            };
            assert!(text);
            assert_eq!(payload, INVITE);
            assert_eq!(payload.as_ptr(), wire[4..].as_ptr(), "a slice of the input");
            assert_eq!((frame, new_frames), (3, &[3][..]));
            seen += 1;
        });
        assert_eq!(seen, 1);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn fragmented_message_with_an_interleaved_ping() {
        let wire = cat(&[
            &[0x01, 0x0a],
            b"INVITE sip",
            &[0x89, 0x04],
            b"ping",
            &[0x00, 0x0b],
            b":bob@b.com ",
            &[0x80, 0x09],
            b"SIP/2.0\r\n",
        ]);
        let want = b"INVITE sip:bob@b.com SIP/2.0\r\n";
        let mut d = plain();
        assert_eq!(feed(&mut d, &[(&wire, 5)]), [msg(true, want, 5, &[5])]);
        // The same bytes one per segment: every carrier listed once, the
        // ping's two header and four payload segments (13..=18) excepted.
        let mut d = plain();
        let chunks: Vec<(&[u8], u64)> = wire
            .iter()
            .enumerate()
            .map(|(i, b)| (std::slice::from_ref(b), i as u64 + 1))
            .collect();
        let evs = feed(&mut d, &chunks);
        let carriers: Vec<u64> = (1..=12).chain(19..=wire.len() as u64).collect();
        assert_eq!(evs, [msg(true, want, wire.len() as u64, &carriers)]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn frame_header_split_over_two_chunks() {
        // 16-bit length and masking key cut after the length's first byte.
        let key = [1, 2, 3, 4];
        let wire = cat(&[&[0x82, 0xfe, 0x01, 0x41], &key, &xor(INVITE, key)]);
        let mut d = plain();
        assert!(feed(&mut d, &[(&wire[..3], 10)]).is_empty());
        assert_eq!(d.buffered(), 3 + CARRIER_COST);
        assert_eq!(
            feed(&mut d, &[(&wire[3..], 11)]),
            [msg(false, INVITE, 11, &[10, 11])]
        );
        // A 2-byte header cut after its first byte.
        let mut d = plain();
        assert!(feed(&mut d, &[(&HELLO[..1], 12)]).is_empty());
        assert_eq!(
            feed(&mut d, &[(&HELLO[1..], 13)]),
            [msg(true, b"Hello", 13, &[12, 13])]
        );
    }

    #[test]
    fn payload_split_over_three_chunks_lists_each_carrier_once() {
        let wire = cat(&[&[0x81, 0x7e, 0x01, 0x41], INVITE, HELLO]);
        let mut d = plain();
        let mut evs = Vec::new();
        let mut push = |e: WsEvent<'_>| evs.push(own(e));
        d.data(&wire[..100], 20, 20_000, 20, &mut push);
        // The reassembler may deliver one segment in two events.
        d.data(&wire[100..200], 22, 22_000, 21, &mut push);
        d.data(&wire[200..250], 22, 22_000, 21, &mut push);
        // Segment 22 completes the INVITE and carries a whole second
        // message: listed with the first only.
        d.data(&wire[250..], 22, 22_000, 22, &mut push);
        assert_eq!(
            evs,
            [
                msg(true, INVITE, 22, &[20, 21, 22]),
                msg(true, b"Hello", 22, &[])
            ]
        );
    }

    #[test]
    fn two_frames_in_one_chunk() {
        let wire = cat(&[HELLO, MASKED_HELLO, &[0x82, 0x03, 0x00, 0xff, 0x10]]);
        let mut d = plain();
        assert_eq!(
            feed(&mut d, &[(&wire, 8)]),
            [
                msg(true, b"Hello", 8, &[8]),
                msg(true, b"Hello", 8, &[]),
                msg(false, &[0x00, 0xff, 0x10], 8, &[]),
            ]
        );
    }

    #[test]
    fn empty_message_is_delivered() {
        let mut d = plain();
        assert_eq!(
            feed(&mut d, &[(&[0x82, 0x00], 2)]),
            [msg(false, b"", 2, &[2])]
        );
    }

    #[test]
    fn sixteen_bit_length() {
        let payload: Vec<u8> = (0..=255u8).collect();
        let wire = cat(&[&[0x82, 0x7e, 0x01, 0x00], &payload]);
        let mut d = plain();
        assert_eq!(feed(&mut d, &[(&wire, 1)]), [msg(false, &payload, 1, &[1])]);
    }

    #[test]
    fn sixty_four_bit_length() {
        let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let key = [0xa1, 0xb2, 0xc3, 0xd4];
        let wire = cat(&[
            &[0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00],
            &key,
            &xor(&payload, key),
        ]);
        let mut d = plain();
        let (a, b) = wire.split_at(30_000);
        let evs = feed(&mut d, &[(a, 1), (b, 2)]);
        assert_eq!(evs, [msg(false, &payload, 2, &[1, 2])]);
    }

    /// The details of a skipped frame: why, and whether the fragments
    /// after it are skipped too.
    #[test]
    fn a_skipped_frame_says_why_and_whether_fragments_follow() {
        let details = |wire: &[u8]| {
            let mut d = plain();
            let mut got = Vec::new();
            d.data(wire, 1, 1000, 1, &mut |e| {
                if let WsEvent::Anomaly { id, detail, .. } = e {
                    got.push((id, detail));
                }
            });
            got
        };
        // A continuation (opcode 0) with nothing started, final and not.
        assert_eq!(
            details(&[0x80, 0x01, b'x']),
            [(
                "ws_orphan_continuation",
                "a continuation frame (1 bytes) with no message started: skipped".to_string()
            )]
        );
        assert_eq!(
            details(&[0x00, 0x01, b'x']),
            [(
                "ws_orphan_continuation",
                "a continuation frame (1 bytes) with no message started: skipped, and the \
                 fragments that follow it"
                    .to_string()
            )]
        );
        // A first fragment (binary, not final) over the cap.
        let cap = WsLimits::default().max_message_bytes;
        let header = [0x02, 0x7f, 0, 0, 0, 0, 0x05, 0xf5, 0xe1, 0x00];
        assert_eq!(
            details(&header),
            [(
                "ws_message_too_large",
                format!(
                    "a 100000000-byte frame exceeds the {cap}-byte message cap: its bytes are \
                     skipped, and the fragments that follow it"
                )
            )]
        );
    }

    #[test]
    fn huge_frame_is_skipped_in_a_stream_and_decoding_continues() {
        let mut d = plain();
        let cap = WsLimits::default().max_message_bytes;
        // 100 000 000 bytes announced with a 64-bit length.
        let header = [0x82, 0x7f, 0, 0, 0, 0, 0x05, 0xf5, 0xe1, 0x00];
        let mut evs = feed(&mut d, &[(&header, 1)]);
        assert_eq!(evs, [Ev::Anomaly(1, "ws_message_too_large")]);
        let chunk = vec![0x41u8; 64 << 10];
        let mut left = 100_000_000usize;
        let mut f = 2;
        while left > 0 {
            let n = left.min(chunk.len());
            d.data(&chunk[..n], f, 0, f, &mut |e| evs.push(own(e)));
            assert!(d.buffered() < cap, "{} buffered", d.buffered());
            left -= n;
            f += 1;
        }
        assert_eq!(evs.len(), 1, "{evs:?}");
        assert_eq!(feed(&mut d, &[(HELLO, f)]), [msg(true, b"Hello", f, &[f])]);
    }

    #[test]
    fn fragmented_message_over_the_cap_is_dropped() {
        let limits = WsLimits {
            max_message_bytes: 16,
            ..WsLimits::default()
        };
        let mut d = Deframer::new(false, limits);
        let wire = cat(&[
            &[0x01, 0x05],
            b"01234",
            &[0x00, 0x05],
            b"56789",
            &[0x80, 0x05],
            b"abcde",
            HELLO,
        ]);
        // 5 + 8 after the first, 10 + 8 > 16 at the second.
        assert_eq!(
            feed(&mut d, &[(&wire, 1)]),
            [
                Ev::Anomaly(1, "ws_message_too_large"),
                msg(true, b"Hello", 1, &[1])
            ]
        );
    }

    #[test]
    fn close_frame_ends_the_stream() {
        let mut d = plain();
        let wire = cat(&[HELLO, &[0x88, 0x02, 0x03, 0xe8], HELLO]);
        assert_eq!(
            feed(&mut d, &[(&wire, 3)]),
            [
                msg(true, b"Hello", 3, &[3]),
                Ev::Closed(3),
                Ev::Anomaly(3, "ws_data_after_close")
            ]
        );
        assert!(feed(&mut d, &[(HELLO, 4)]).is_empty(), "reported once");
    }

    #[test]
    fn masked_close_split_over_chunks() {
        let mut d = plain();
        let wire = [0x88, 0x82, 1, 2, 3, 4, 0x02, 0xea];
        assert!(feed(&mut d, &[(&wire[..7], 1)]).is_empty());
        assert_eq!(feed(&mut d, &[(&wire[7..], 2)]), [Ev::Closed(2)]);
    }

    #[test]
    fn reserved_bit_is_a_protocol_error_until_the_end() {
        let mut d = plain();
        let wire = cat(&[&[0xc1, 0x05], b"Hello", HELLO]);
        assert_eq!(
            feed(&mut d, &[(&wire, 6)]),
            [Ev::Anomaly(6, "ws_protocol_error")]
        );
        assert!(feed(&mut d, &[(HELLO, 7)]).is_empty());
        let mut evs = Vec::new();
        d.gap(8, &mut |e| evs.push(own(e)));
        assert!(evs.is_empty());
    }

    #[test]
    fn unknown_opcode_and_long_control_frame_are_protocol_errors() {
        for wire in [&[0x83, 0x00][..], &[0x89, 0x7e, 0x00, 0x80], &[0x09, 0x00]] {
            let mut d = plain();
            let wire = cat(&[wire, HELLO]);
            assert_eq!(
                feed(&mut d, &[(&wire, 1)]),
                [Ev::Anomaly(1, "ws_protocol_error")],
                "{wire:02x?}"
            );
        }
    }

    #[test]
    fn continuation_without_a_start_is_skipped() {
        let mut d = plain();
        let wire = cat(&[&[0x00, 0x02], b"ab", &[0x80, 0x01], b"c", HELLO]);
        assert_eq!(
            feed(&mut d, &[(&wire, 2)]),
            [
                Ev::Anomaly(2, "ws_orphan_continuation"),
                msg(true, b"Hello", 2, &[2])
            ]
        );
    }

    #[test]
    fn new_message_interrupting_a_fragmented_one() {
        let mut d = plain();
        let wire = cat(&[&[0x01, 0x02], b"ab", HELLO]);
        assert_eq!(
            feed(&mut d, &[(&wire[..3], 1), (&wire[3..], 2)]),
            [
                Ev::Anomaly(1, "ws_message_interrupted"),
                msg(true, b"Hello", 2, &[2])
            ]
        );
    }

    #[test]
    fn gap_stops_the_direction() {
        let mut d = plain();
        assert!(feed(&mut d, &[(&HELLO[..4], 1)]).is_empty());
        let mut evs = Vec::new();
        d.gap(2, &mut |e| evs.push(own(e)));
        assert_eq!(evs, [Ev::Anomaly(2, "ws_gap")]);
        assert_eq!(d.buffered(), 0);
        assert!(feed(&mut d, &[(HELLO, 3)]).is_empty());
        let mut evs = Vec::new();
        d.finish(4, &mut |e| evs.push(own(e)));
        assert!(evs.is_empty());
    }

    #[test]
    fn end_inside_a_message_is_reported() {
        let mut d = plain();
        assert!(feed(&mut d, &[(&[0x01, 0x02, b'a', b'b', 0x80], 1)]).is_empty());
        let mut evs = Vec::new();
        d.finish(5, &mut |e| evs.push(own(e)));
        assert_eq!(evs, [Ev::Anomaly(1, "ws_message_truncated")]);
        // At a frame boundary there is nothing to report.
        let mut d = plain();
        assert_eq!(feed(&mut d, &[(HELLO, 1)]).len(), 1);
        let mut evs = Vec::new();
        d.finish(5, &mut |e| evs.push(own(e)));
        assert!(evs.is_empty());
    }

    #[test]
    fn upgrade_request_from_a_browser_is_recognised() {
        let req: &[u8] = b"GET /ws HTTP/1.1\r\n\
Host: sip-ws.example.com\r\n\
Connection: keep-alive, Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
upgrade: WebSocket\r\n\
Origin: https://app.example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Protocol: sip\r\n\r\n";
        assert_eq!(is_upgrade_request(req), Some(true));
        assert_eq!(is_upgrade_request(REQUEST), Some(true));
        // Decided as soon as the Upgrade line is complete.
        let at = req.windows(9).position(|w| w == b"upgrade: ").unwrap();
        assert_eq!(is_upgrade_request(&req[..at + 9]), None);
        assert_eq!(is_upgrade_request(&req[..at + 20]), Some(true));
    }

    #[test]
    fn upgrade_request_rejects_sip_and_plain_http() {
        assert_eq!(is_upgrade_request(INVITE), Some(false));
        assert_eq!(is_upgrade_request(b"G"), None);
        assert_eq!(is_upgrade_request(b"GET"), None);
        assert_eq!(is_upgrade_request(b"GE "), Some(false));
        assert_eq!(
            is_upgrade_request(b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(false)
        );
        assert_eq!(
            is_upgrade_request(b"GET / HTTP/1.0\r\nUpgrade: websocket\r\n\r\n"),
            Some(false)
        );
        assert_eq!(
            is_upgrade_request(b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"),
            Some(false)
        );
    }

    #[test]
    fn upgrade_request_partial_needs_more() {
        assert_eq!(is_upgrade_request(b"GET /ws HTT"), None);
        assert_eq!(is_upgrade_request(&REQUEST[..40]), None);
        // Never decided within the handshake bound: not a WebSocket request.
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(WsLimits::default().max_handshake_bytes + 1, b'a');
        assert_eq!(is_upgrade_request(&long), Some(false));
    }
}
