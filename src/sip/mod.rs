//! Zero-copy SIP message scanner: the hot path between packets and dialogs.
//!
//! In: the bytes of a UDP payload ([`Framing::Datagram`]) or the front of a
//! reassembled TCP byte stream ([`Framing::Stream`]). Out: a [`Message`]
//! that borrows those bytes and answers the questions the analyzer asks
//! (start line, Call-ID, CSeq, tags, Via branches, option-tag lists,
//! Content-Length, body, SDP precondition demand) plus the
//! [`SipAnomaly`]s it noticed, or a [`SipError`].
//!
//! Only an invalid start line is an error ([`SipError::Invalid`]); on a
//! stream, a message not yet complete is [`SipError::Incomplete`].
//! Everything after the start line is best-effort: malformed header lines,
//! missing mandatory headers and Content-Length disagreements are recorded
//! as anomalies and the message is returned with what could be read.
//!
//! A datagram is parsed by [`with_datagram`], which lends the message to a
//! closure where it was built (no copy of the 1.5 KB `Message` on return).
//!
//! What it never does: allocate while parsing (one pass with `memchr` over
//! the header block records, per known header, where its first and last
//! rows are, and the first value of the headers read for every message;
//! list accessors re-scan that range lazily), copy bytes, decode
//! compressed or encoded bodies, keep state across messages, or know about
//! transactions and dialogs (`dialog` does). Line ends may be CR LF or a bare
//! LF; folded lines (RFC 3261 §7.3.1) belong to the header value; header
//! names are case-insensitive and compact forms are mapped (see
//! [`HeaderId`]).

mod anomaly;
mod body;
mod header;
mod scan;
pub mod sdp;
mod start;
pub mod stream;
mod taglist;

#[cfg(test)]
mod tests;

pub use anomaly::SipAnomaly;
pub use body::{SdpBody, find_sdp};
pub use header::{Header, HeaderId, Headers, ListItems};
pub use scan::{CommaItems, name_addr, param, trim_lws};
pub use sdp::{Demand, precondition_demand};
pub use start::StartLine;
pub use taglist::{Case, push_tag_list, write_tag_list};

use anomaly::AnomalySet;
use header::HEADER_COUNT;
use scan::Scan;
use start::StartError;

/// How the message was delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// The buffer is one whole message (UDP, SCTP chunk, WebSocket frame).
    Datagram,
    /// The buffer is the front of a byte stream (TCP): the message ends
    /// after its header section and Content-Length body bytes.
    Stream,
}

/// Why [`parse_message`] returned no message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SipError {
    /// Stream framing only: the header section or the Content-Length body
    /// is not complete yet.
    Incomplete,
    /// Not a SIP message (the start line is not SIP).
    Invalid {
        /// Byte offset in the buffer where it went wrong.
        offset: usize,
        /// What was expected there.
        reason: &'static str,
    },
}

impl std::fmt::Display for SipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SipError::Incomplete => f.write_str("incomplete SIP message"),
            SipError::Invalid { offset, reason } => {
                write!(f, "not a SIP message: {reason} at byte {offset}")
            }
        }
    }
}

impl std::error::Error for SipError {}

/// Cheap check: does `buf` begin with a SIP request line (`METHOD SP
/// Request-URI SP SIP/2.0` then CR LF, LF or the end of `buf`) or status
/// line (`SIP/2.0 SP 3DIGIT [SP reason]`)? METHOD is any RFC 3261 token,
/// the Request-URI must have a scheme, the version compares
/// case-insensitively. Rejects STUN, RTP, CRLF keep-alives, HTTP and
/// anything whose first line is not followed by `SIP/2.0`. Looks at the
/// first line only.
pub fn is_sip_start(buf: &[u8]) -> bool {
    sip_start(buf).is_some()
}

/// The start line at the front of `buf` when [`is_sip_start`] accepts it.
fn sip_start(buf: &[u8]) -> Option<start::Start<'_>> {
    // Most datagrams of a capture are RTP (first byte 0x80 or so): no start
    // line begins with a byte that is not a token character (a method, or
    // the S of SIP/2.0), so they are turned away without a line scan.
    if !buf.first().is_some_and(|&b| scan::is_token_byte(b)) {
        return None;
    }
    start::parse(buf).ok()
}

/// Number of CR and LF bytes at the front of `buf`: the RFC 5626 keep-alives
/// (`CRLF` pong, `CRLFCRLF` ping) a stream reader skips before
/// [`parse_message`].
pub fn keepalive_len(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count()
}

/// First and last row of one known header, as offsets into the header
/// block.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    first: u32,
    last: u32,
}

const _: () = assert!(HEADER_COUNT <= 64, "presence bits are a u64");

/// Headers whose first value is kept by the scan: every known one. (It was
/// those up to `Allow`, the ones read for every message; a record reads
/// about three more of those after it, each a re-scan of its row that cost
/// more than keeping every span: callgrind, 2026-12-05.)
const HOT: usize = HeaderId::Other as usize;

/// Header rows the scan keeps for [`Message::header_rows`]: more than an
/// IMS INVITE has (about 30). A message with more rows is scanned again.
const KEPT_ROWS: usize = 40;

/// A well-formed header row as the scan found it: offsets in the header
/// block of its start, its colon and the end of its content, and its id.
#[derive(Clone, Copy, Debug)]
struct RowAt {
    start: u32,
    colon: u32,
    end: u32,
    id: HeaderId,
}

const NO_ROW: RowAt = RowAt {
    start: 0,
    colon: 0,
    end: 0,
    id: HeaderId::Other,
};

/// A value span in the header block.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    end: u32,
}

/// A scanned SIP message borrowing the buffer it was read from.
///
/// Built by [`parse_message`]; every accessor returns slices of that
/// buffer.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// The message bytes, body included (`len()` of them).
    buf: &'a [u8],
    start: StartLine<'a>,
    /// The header rows: from the line after the start line up to (not
    /// including) the blank line.
    head: &'a [u8],
    body: &'a [u8],
    /// From and To: the URI and the non-empty `tag` parameter of the first
    /// row, split once here (every record reads them two to four times).
    from: Option<Addr<'a>>,
    to: Option<Addr<'a>>,
    /// What the scan of the header rows found, kept where it was filled:
    /// the message is built around it, not copied out of it (about 1.5 KB,
    /// four copies a message before; callgrind, 2026-12-07).
    h: Head<'a>,
}

/// A From or To value split: its URI and its `tag` parameter.
#[derive(Clone, Copy, Debug)]
struct Addr<'a> {
    uri: &'a [u8],
    tag: Option<&'a [u8]>,
}

/// Parses one SIP message at the front of `buf`.
///
/// - [`Framing::Datagram`]: the message is all of `buf`. The body is what
///   follows the blank line, cut to Content-Length when that is smaller
///   (anomaly [`SipAnomaly::ContentLengthMismatch`], also when it is
///   larger). Without a blank line the headers run to the end
///   ([`SipAnomaly::MissingHeaderEnd`]).
/// - [`Framing::Stream`]: [`SipError::Incomplete`] until the blank line and
///   Content-Length body bytes are there; without Content-Length the body is
///   empty ([`SipAnomaly::MissingContentLength`]). [`Message::len`] is the
///   number of bytes consumed. The caller bounds how much it buffers: a
///   huge Content-Length stays `Incomplete`.
///
/// Only a start line that is not SIP gives [`SipError::Invalid`] (in
/// datagram framing also a truncated one); everything else is recorded as
/// anomalies.
pub fn parse_message(buf: &[u8], framing: Framing) -> Result<Message<'_>, SipError> {
    // Offsets are kept as u32; nothing SIP comes near 4 GiB.
    let buf = &buf[..buf.len().min(u32::MAX as usize)];
    let stream = framing == Framing::Stream;
    let st = start_line(buf, stream)?;
    let mut msg = Message::at_start(buf, st);
    msg.scan(framing)?;
    Ok(msg)
}

/// `f` of a datagram's SIP message, or `None` when [`is_sip_start`] would
/// reject the datagram: the same as that check followed by
/// [`parse_message`] in [`Framing::Datagram`] (which cannot fail once the
/// start line is SIP), with the start line parsed once instead of twice,
/// and the message lent where it was built (a `Message` is about 1.5 KB:
/// returning one costs a copy or two).
pub fn with_datagram<'b, R>(buf: &'b [u8], f: impl FnOnce(&Message<'b>) -> R) -> Option<R> {
    let buf = &buf[..buf.len().min(u32::MAX as usize)];
    let st = sip_start(buf)?;
    let mut msg = Message::at_start(buf, st);
    msg.scan(Framing::Datagram).ok()?;
    Some(f(&msg))
}

impl<'a> Message<'a> {
    /// A message of `buf` whose start line is `st` and whose header rows are
    /// not scanned yet.
    fn at_start(buf: &'a [u8], st: start::Start<'a>) -> Message<'a> {
        Message {
            buf,
            start: st.line,
            head: &[],
            body: &[],
            from: None,
            to: None,
            h: Head::new(st.next),
        }
    }

    /// Scans the header rows and frames the body (`self.buf` is all the
    /// bytes there are).
    fn scan(&mut self, framing: Framing) -> Result<(), SipError> {
        let buf = self.buf;
        let stream = framing == Framing::Stream;
        let head_start = self.h.head_start;
        let head = &mut self.h;
        let mut pos = head_start;
        let (head_end, body_start) = loop {
            match scan::scan_row(buf, pos) {
                Scan::Blank { at, next } => break (at, next),
                Scan::End => {
                    if stream {
                        return Err(SipError::Incomplete);
                    }
                    head.anomalies.insert(SipAnomaly::MissingHeaderEnd);
                    break (buf.len(), buf.len());
                }
                Scan::Row(row) => {
                    head.row(buf, &row);
                    pos = row.next;
                }
            }
        };
        let avail = buf.len() - body_start;
        let (body_len, msg_len) = match (framing, head.content_length) {
            (Framing::Datagram, Some(cl)) => {
                if cl != avail {
                    head.anomalies.insert(SipAnomaly::ContentLengthMismatch);
                }
                (cl.min(avail), buf.len())
            }
            (Framing::Datagram, None) => (avail, buf.len()),
            (Framing::Stream, Some(cl)) => {
                if cl > avail {
                    return Err(SipError::Incomplete);
                }
                (cl, body_start + cl)
            }
            (Framing::Stream, None) => {
                if !head.anomalies.contains(SipAnomaly::BadContentLength) {
                    head.anomalies.insert(SipAnomaly::MissingContentLength);
                }
                (0, body_start)
            }
        };
        self.buf = &buf[..msg_len];
        self.head = &buf[head_start..head_end];
        self.body = &buf[body_start..body_start + body_len];
        self.from = self.addr(HeaderId::From);
        self.to = self.addr(HeaderId::To);
        self.check_mandatory();
        Ok(())
    }
}

/// The start line at the front of `buf`: in stream framing `Incomplete`
/// until it is terminated.
fn start_line(buf: &[u8], stream: bool) -> Result<start::Start<'_>, SipError> {
    let st = match start::parse(buf) {
        Ok(st) => st,
        Err(StartError::Truncated) if stream => return Err(SipError::Incomplete),
        Err(StartError::Truncated) => {
            return Err(SipError::Invalid {
                offset: buf.len(),
                reason: "truncated start line",
            });
        }
        Err(StartError::Invalid { offset, reason }) => {
            return Err(SipError::Invalid { offset, reason });
        }
    };
    if stream && !st.terminated {
        return Err(SipError::Incomplete);
    }
    Ok(st)
}

/// What [`parse_message`] learns from the header rows, one row at a time
/// (offsets relative to the first header row).
#[derive(Clone, Debug)]
struct Head<'a> {
    head_start: usize,
    anomalies: AnomalySet,
    /// Bit `id` set: header `id` is present.
    present: u64,
    slots: [Slot; HEADER_COUNT],
    hot: [Span; HOT],
    content_length: Option<usize>,
    cseq: Option<(u32, &'a [u8])>,
    kept: [RowAt; KEPT_ROWS],
    n_kept: usize,
}

impl<'a> Head<'a> {
    fn new(head_start: usize) -> Head<'a> {
        Head {
            head_start,
            anomalies: AnomalySet::default(),
            present: 0,
            slots: [Slot::default(); HEADER_COUNT],
            hot: [Span::default(); HOT],
            content_length: None,
            cseq: None,
            kept: [NO_ROW; KEPT_ROWS],
            n_kept: 0,
        }
    }

    /// One header row: kept, classified, and its first value read for the
    /// headers the message decodes at once.
    #[inline]
    fn row(&mut self, buf: &'a [u8], row: &scan::Row) {
        let head_start = self.head_start;
        let class = header::classify(buf, row);
        if let (Some((id, _)), Some(colon)) = (class, row.colon) {
            if let Some(k) = self.kept.get_mut(self.n_kept) {
                *k = RowAt {
                    start: (row.start - head_start) as u32,
                    colon: (colon - head_start) as u32,
                    end: (row.end - head_start) as u32,
                    id,
                };
            }
            self.n_kept += 1;
        }
        match class {
            None => self.anomalies.insert(SipAnomaly::BadHeaderLine),
            Some((HeaderId::Other, _)) => {}
            Some((id, _)) => {
                let bit = 1u64 << (id as u8);
                let rel = (row.start - head_start) as u32;
                if self.present & bit == 0 {
                    self.present |= bit;
                    self.slots[id as usize].first = rel;
                    self.first_value(buf, row, id);
                }
                self.slots[id as usize].last = rel;
            }
        }
    }

    /// The first row of header `id`: its value span, and CSeq or
    /// Content-Length read.
    #[inline]
    fn first_value(&mut self, buf: &'a [u8], row: &scan::Row, id: HeaderId) {
        if let Some(h) = self.hot.get_mut(id as usize) {
            let (a, z) = scan::row_value_span(buf, row);
            *h = Span {
                start: (a - self.head_start) as u32,
                end: (z - self.head_start) as u32,
            };
        }
        match id {
            HeaderId::CSeq => {
                let parsed = scan::parse_cseq(scan::row_value(buf, row));
                self.cseq = parsed.map(|(n, m, _)| (n, m));
                if !parsed.is_some_and(|(_, _, ok)| ok) {
                    self.anomalies.insert(SipAnomaly::BadCseq);
                }
            }
            HeaderId::ContentLength => {
                let bad;
                (self.content_length, bad) = content_length_value(scan::row_value(buf, row));
                if bad {
                    self.anomalies.insert(SipAnomaly::BadContentLength);
                }
            }
            _ => {}
        }
    }
}

/// A Content-Length value as [`parse_message`] reads it: the length, and
/// whether it is malformed ([`SipAnomaly::BadContentLength`]).
fn content_length_value(v: &[u8]) -> (Option<usize>, bool) {
    let n = scan::parse_decimal(v, 10).and_then(|n| usize::try_from(n).ok());
    (n, n.is_none())
}

/// What [`parse_message`] would read as the Content-Length of the message
/// whose start line and header rows begin `head`: its value, and whether
/// its first Content-Length row is malformed; `None` when the start line is
/// not SIP. The stream framer needs only this of a message's header
/// section to know where the message ends; a whole parse there cost as much
/// as the parse of the framed message itself (each about a tenth of the
/// decoding thread over TCP).
pub fn head_content_length(head: &[u8]) -> Option<(Option<usize>, bool)> {
    let head = &head[..head.len().min(u32::MAX as usize)];
    let st = start::parse(head).ok()?;
    let mut pos = st.next;
    loop {
        match scan::scan_row(head, pos) {
            Scan::Blank { .. } | Scan::End => return Some((None, false)),
            Scan::Row(row) => {
                if let Some((HeaderId::ContentLength, _)) = header::classify(head, &row) {
                    return Some(content_length_value(scan::row_value(head, &row)));
                }
                pos = row.next;
            }
        }
    }
}

impl<'a> Message<'a> {
    fn check_mandatory(&mut self) {
        if self.call_id().is_none() {
            self.h.anomalies.insert(SipAnomaly::MissingCallId);
        }
        if !self.has(HeaderId::CSeq) {
            self.h.anomalies.insert(SipAnomaly::MissingCseq);
        }
        if !self.has(HeaderId::From) {
            self.h.anomalies.insert(SipAnomaly::MissingFrom);
        }
        if !self.has(HeaderId::To) {
            self.h.anomalies.insert(SipAnomaly::MissingTo);
        }
        if !self.has(HeaderId::Via) {
            self.h.anomalies.insert(SipAnomaly::MissingVia);
        }
        if let (StartLine::Request { method, .. }, Some((_, m))) = (self.start, self.h.cseq) {
            if method != m {
                self.h.anomalies.insert(SipAnomaly::CseqMethodMismatch);
            }
        }
    }

    /// The start line.
    pub fn start(&self) -> StartLine<'a> {
        self.start
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, or for a response the CSeq method.
    pub fn method(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => self.h.cseq.map(|(_, m)| m),
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The Call-ID (first row, trimmed), `None` when missing or empty.
    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.header(HeaderId::CallId).filter(|v| !v.is_empty())
    }

    /// The CSeq number and method, `None` when missing or malformed.
    pub fn cseq(&self) -> Option<(u32, &'a [u8])> {
        self.h.cseq
    }

    /// The `tag` parameter of From (outside the `<>` URI).
    pub fn from_tag(&self) -> Option<&'a [u8]> {
        self.from.and_then(|a| a.tag)
    }

    /// The `tag` parameter of To (outside the `<>` URI).
    pub fn to_tag(&self) -> Option<&'a [u8]> {
        self.to.and_then(|a| a.tag)
    }

    /// The URI of From: inside `<>`, or the addr-spec before its
    /// parameters.
    pub fn from_uri(&self) -> Option<&'a [u8]> {
        self.from.map(|a| a.uri)
    }

    /// The URI of To: inside `<>`, or the addr-spec before its parameters.
    pub fn to_uri(&self) -> Option<&'a [u8]> {
        self.to.map(|a| a.uri)
    }

    /// The first row of From or To, split into URI and non-empty tag.
    fn addr(&self, id: HeaderId) -> Option<Addr<'a>> {
        let (uri, params) = name_addr(self.header(id)?);
        Some(Addr {
            uri,
            tag: param(params, b"tag").filter(|t| !t.is_empty()),
        })
    }

    /// Number of Via entries across all Via rows and commas.
    pub fn via_count(&self) -> usize {
        self.list(HeaderId::Via).count()
    }

    /// The `branch` of the topmost Via entry.
    pub fn top_via_branch(&self) -> Option<&'a [u8]> {
        self.list(HeaderId::Via).next().and_then(via_branch)
    }

    /// The `branch` of the bottommost Via entry (the originating UAC's).
    pub fn bottom_via_branch(&self) -> Option<&'a [u8]> {
        self.list(HeaderId::Via).last().and_then(via_branch)
    }

    /// The value of a known header that has exactly one row; `None` when
    /// it has none or several (then read it with [`Message::list`]).
    pub fn header_single(&self, id: HeaderId) -> Option<&'a [u8]> {
        let s = self.h.slots.get(id as usize)?;
        if self.has(id) && s.first == s.last {
            self.header(id)
        } else {
            None
        }
    }

    /// Every well-formed header row, in wire order.
    pub fn headers(&self) -> Headers<'a> {
        Headers::new(self.head, 0, self.head.len())
    }

    /// What [`Message::headers`] yields, from the rows the scan kept
    /// (without scanning the header block again) when it kept them all.
    pub fn header_rows(&self) -> impl Iterator<Item = Header<'a>> + '_ {
        let (kept, again) = if self.h.n_kept <= KEPT_ROWS {
            (&self.h.kept[..self.h.n_kept], None)
        } else {
            (&self.h.kept[..0], Some(self.headers()))
        };
        let head = self.head;
        kept.iter()
            .map(move |r| {
                let row = scan::Row {
                    start: r.start as usize,
                    colon: Some(r.colon as usize),
                    end: r.end as usize,
                    next: r.end as usize,
                };
                Header {
                    id: r.id,
                    name: scan::row_name(head, &row).unwrap_or_default(),
                    value: scan::row_value(head, &row),
                }
            })
            .chain(again.into_iter().flatten())
    }

    fn has(&self, id: HeaderId) -> bool {
        id != HeaderId::Other && self.h.present & (1u64 << (id as u8)) != 0
    }

    /// The rows of one known header (none for [`HeaderId::Other`]).
    fn rows(&self, id: HeaderId) -> Headers<'a> {
        if !self.has(id) {
            return Headers::empty();
        }
        let s = self.h.slots[id as usize];
        Headers::new(self.head, s.first as usize, s.last as usize)
    }

    /// The value of the first row of a known header, trimmed; `None` when
    /// absent and always for [`HeaderId::Other`] (use
    /// [`Message::header_named`]).
    pub fn header(&self, id: HeaderId) -> Option<&'a [u8]> {
        if !self.has(id) {
            return None;
        }
        match self.h.hot.get(id as usize) {
            Some(s) => Some(&self.head[s.start as usize..s.end as usize]),
            None => self.rows(id).next().map(|h| h.value),
        }
    }

    /// The values of every row of a known header, in wire order, not split
    /// at commas.
    pub fn values(&self, id: HeaderId) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.rows(id).filter(move |h| h.id == id).map(|h| h.value)
    }

    /// The items of a list header across all its rows: comma-split outside
    /// quotes and `<>`, LWS (folding included) trimmed, empty items dropped
    /// (RFC 3261 §7.3.1).
    pub fn list(&self, id: HeaderId) -> ListItems<'a> {
        if (id as usize) < HOT && self.has(id) {
            let s = self.h.slots[id as usize];
            // One row: its value is all there is; no re-scan.
            let rest = if s.first == s.last {
                Headers::empty()
            } else {
                self.rows(id)
            };
            ListItems::new(self.header(id), rest, id)
        } else {
            ListItems::new(None, self.rows(id), id)
        }
    }

    /// The value of the first row whose name equals `name`
    /// (case-insensitive; a known name or compact form finds its header in
    /// either spelling).
    pub fn header_named(&self, name: &[u8]) -> Option<&'a [u8]> {
        match HeaderId::from_name(name) {
            HeaderId::Other => self
                .headers()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| h.value),
            id => self.header(id),
        }
    }

    /// The Content-Length value, `None` when absent or malformed.
    pub fn content_length(&self) -> Option<usize> {
        self.h.content_length
    }

    /// The body (see [`parse_message`] for how it is delimited).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Bytes of the whole message, body included: all of a datagram, or
    /// what a stream reader consumes.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Always false: a message has at least a start line.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The whole message (`len()` bytes).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The anomalies noticed while scanning, in [`SipAnomaly`] declaration
    /// order.
    pub fn anomalies(&self) -> impl Iterator<Item = SipAnomaly> + use<> {
        self.h.anomalies.iter()
    }

    /// Whether anomaly `a` was noticed.
    pub fn has_anomaly(&self, a: SipAnomaly) -> bool {
        self.h.anomalies.contains(a)
    }

    /// Where the SDP of the body is (see [`find_sdp`]).
    pub fn sdp(&self) -> SdpBody<'a> {
        find_sdp(
            self.header(HeaderId::ContentType),
            self.header(HeaderId::ContentEncoding),
            self.body,
        )
    }

    /// The precondition [`Demand`] of this message's SDP (rules.md §B.3):
    /// `Unknown` when the body cannot be decoded, `Absent` without SDP.
    /// Whether that SDP is an offer is for the caller to know.
    pub fn precondition(&self) -> Demand {
        match self.sdp() {
            SdpBody::Sdp(s) => precondition_demand(s),
            SdpBody::None => Demand::Absent,
            SdpBody::Undecodable => Demand::Unknown,
        }
    }
}

/// The `branch` parameter of one Via entry (`SIP/2.0/UDP host;branch=...`).
pub fn via_branch(via: &[u8]) -> Option<&[u8]> {
    let semi = scan::find1(b';', via)?;
    // The usual Via has `branch=` right after its first `;`: then the value
    // runs to the next `;`, as `param` would find it when no quote comes
    // first (a quote takes the general path).
    let first = &via[semi + 1..];
    if first.len() >= 7 && first[..7].eq_ignore_ascii_case(b"branch=") {
        let v = &first[7..];
        match scan::find2(b';', b'"', v) {
            Some(k) if v[k] == b'"' => {}
            end => {
                let b = trim_lws(&v[..end.unwrap_or(v.len())]);
                return (!b.is_empty()).then_some(b);
            }
        }
    }
    param(&via[semi..], b"branch").filter(|b| !b.is_empty())
}
