//! The per-message record the dialog stage works on: everything rules.md §A
//! (and later §B–§E) needs from one SIP message, owned and compact, built
//! once from a parsed [`Message`] while its bytes are still at hand.

use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use crate::sip::{Demand, HeaderId, Message, StartLine};

use super::TxnKey;

/// A SIP method. The common ones are variants (cheap to compare); any other
/// token is kept as written (methods are case-sensitive, RFC 3261 §7.1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    /// INVITE.
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// REGISTER.
    Register,
    /// OPTIONS.
    Options,
    /// PRACK (RFC 3262).
    Prack,
    /// UPDATE (RFC 3311).
    Update,
    /// SUBSCRIBE.
    Subscribe,
    /// NOTIFY.
    Notify,
    /// MESSAGE.
    Message,
    /// REFER.
    Refer,
    /// INFO.
    Info,
    /// PUBLISH.
    Publish,
    /// Any other token, as written.
    Other(Box<str>),
}

impl Method {
    /// The method named by `token`.
    pub fn from_bytes(token: &[u8]) -> Method {
        match token {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"MESSAGE" => Method::Message,
            b"REFER" => Method::Refer,
            b"INFO" => Method::Info,
            b"PUBLISH" => Method::Publish,
            other => Method::Other(String::from_utf8_lossy(other).into()),
        }
    }

    /// The token as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Info => "INFO",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

/// A set of option tags as the record keeps them: lowercased (rules.md
/// §B.2), deduplicated, in order of first appearance, stored comma-joined in
/// the record's text (a token never contains a comma). Two sets are equal
/// when they hold the same tags in the same order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tags<'a>(&'a str);

impl<'a> Tags<'a> {
    /// The tags, in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.0.split(',').filter(|t| !t.is_empty())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `tag` (lowercase) is in the set.
    pub fn contains(&self, tag: &str) -> bool {
        self.iter().any(|t| t == tag)
    }

    /// The tags as kept, `,`-joined.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The tags joined with `sep`.
    pub fn join(&self, sep: &str) -> String {
        if sep == "," {
            return self.0.to_string();
        }
        self.0.replace(',', sep)
    }
}

/// A byte range of [`SipRecord`]'s text; `start == u32::MAX`: absent.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        end: 0,
    };
}

/// The text fields of a record, indexing its span table, in the order
/// [`SipRecord::build`] appends them (the packed table relies on it: each
/// field starts where the previous one ends).
#[derive(Clone, Copy)]
#[repr(usize)]
enum F {
    CallId,
    FromTag,
    ToTag,
    RequestUri,
    TopBranch,
    Require,
    Unsupported,
    UserAgent,
    Warning,
    Reason,
    FromUri,
    ToUri,
    BottomBranch,
    ProxyRequire,
    Supported,
    SessionId,
    Icid,
    XCid,
    Subscriber,
    VisitedNetwork,
    AccessType,
    ViaHosts,
}

/// Number of [`F`] fields.
const FIELDS: usize = F::ViaHosts as usize + 1;

/// The names of the text fields, in the record's order: the order of
/// [`SipRecord::text_field`] and [`SipRecord::from_stored_text`] (records
/// files name their columns so, docs/records.md).
pub const TEXT_FIELDS: [&str; FIELDS] = [
    "call_id",
    "from_tag",
    "to_tag",
    "request_uri",
    "top_branch",
    "require",
    "unsupported",
    "user_agent",
    "warning",
    "reason",
    "from_uri",
    "to_uri",
    "bottom_branch",
    "proxy_require",
    "supported",
    "session_id",
    "icid",
    "x_cid",
    "subscriber",
    "visited_network",
    "access_type",
    "via_hosts",
];

/// Where each [`F`] field is in a record's text, compactly (48 bytes
/// instead of 176 of `[Span; FIELDS]`): the end of every field as a `u16`
/// and a presence bit each, a field starting where the one before it in
/// [`F`] order ends. A text longer than 65,535 bytes, or fields not back to
/// back, keep the full table in a box instead.
#[derive(Clone, Debug)]
enum Spans {
    Packed { ends: [u16; FIELDS], present: u32 },
    Wide(Box<[Span; FIELDS]>),
}

impl Spans {
    fn pack(spans: &[Span; FIELDS], text_len: usize) -> Spans {
        if text_len > usize::from(u16::MAX) {
            return Spans::Wide(Box::new(*spans));
        }
        let (mut ends, mut present, mut at) = ([0u16; FIELDS], 0u32, 0u32);
        for (i, s) in spans.iter().enumerate() {
            if s.start != u32::MAX {
                if s.start != at {
                    return Spans::Wide(Box::new(*spans));
                }
                at = s.end;
                present |= 1 << i;
            }
            ends[i] = at as u16;
        }
        Spans::Packed { ends, present }
    }

    fn get(&self, i: usize) -> Option<(usize, usize)> {
        match self {
            Spans::Packed { ends, present } => (present & (1 << i) != 0).then(|| {
                let start = if i == 0 { 0 } else { ends[i - 1] };
                (usize::from(start), usize::from(ends[i]))
            }),
            Spans::Wide(t) => {
                let s = t[i];
                (s.start != u32::MAX).then_some((s.start as usize, s.end as usize))
            }
        }
    }
}

/// The status code of a response (`None` for a request), and the request
/// method or, for a response, the CSeq method.
fn status_and_method(msg: &Message<'_>) -> (Option<u16>, Method) {
    match msg.start() {
        StartLine::Request { method, .. } => (None, Method::from_bytes(method)),
        StartLine::Response { code, .. } => (
            Some(code),
            Method::from_bytes(msg.cseq().map(|(_, m)| m).unwrap_or(b"")),
        ),
    }
}

/// The Via entries: how many, the top one and the bottom one.
struct Vias<'m> {
    count: usize,
    top: Option<&'m [u8]>,
    bottom: Option<&'m [u8]>,
}

impl<'m> Vias<'m> {
    fn of(msg: &Message<'m>) -> Vias<'m> {
        let mut v = Vias {
            count: 0,
            top: None,
            bottom: None,
        };
        for via in msg.list(HeaderId::Via) {
            if v.count == 0 {
                v.top = Some(via);
            }
            v.bottom = Some(via);
            v.count += 1;
        }
        v
    }
}

/// What the record keeps of the SDP body, from one walk of its
/// precondition lines (the body is located once; `Message::precondition`
/// would do it again).
struct SdpFacts<'m> {
    /// The message carries an SDP body (decodable or not).
    present: bool,
    /// The decodable SDP.
    bytes: Option<&'m [u8]>,
    demand: Demand,
    /// An a=des/curr/conf line at session level.
    session_level: bool,
    /// Any a=des/curr/conf line.
    any_lines: bool,
    /// An `a=des` with strength `failure` or `unknown`.
    failure: bool,
}

impl<'m> SdpFacts<'m> {
    fn of(msg: &Message<'m>) -> SdpFacts<'m> {
        let mut f = match msg.sdp() {
            // The demand is set from the precondition lines below.
            crate::sip::SdpBody::Sdp(s) => SdpFacts::none(true, Some(s), Demand::Absent),
            crate::sip::SdpBody::Undecodable => SdpFacts::none(true, None, Demand::Unknown),
            crate::sip::SdpBody::None => SdpFacts::none(false, None, Demand::Absent),
        };
        let Some(s) = f.bytes else {
            return f;
        };
        let mut des = crate::sip::sdp::DemandOf::default();
        for l in crate::sip::sdp::precondition_lines(s) {
            if let (crate::sip::sdp::PreconditionKind::Des, Some(st)) = (l.kind, l.strength) {
                des.add(st);
            }
            f.any_lines = true;
            f.session_level |= l.media.is_none();
            f.failure |= matches!(
                l.strength,
                Some(crate::sip::sdp::Strength::Failure | crate::sip::sdp::Strength::Unknown)
            );
        }
        f.demand = des.demand();
        f
    }

    fn none(present: bool, bytes: Option<&'m [u8]>, demand: Demand) -> SdpFacts<'m> {
        SdpFacts {
            present,
            bytes,
            demand,
            session_level: false,
            any_lines: false,
            failure: false,
        }
    }
}

/// The agent's name: User-Agent of a request, Server of a response, each
/// falling back on the other.
fn user_agent<'m>(msg: &Message<'m>, request: bool) -> Option<&'m [u8]> {
    if request {
        msg.header(HeaderId::UserAgent)
            .or_else(|| msg.header(HeaderId::Server))
    } else {
        msg.header(HeaderId::Server)
            .or_else(|| msg.header(HeaderId::UserAgent))
    }
}

/// The text fields every message is read for, in field order; `keys` are
/// the tags and top branch, read once for the record and its key.
fn put_text(b: &mut TextBuilder<'_>, msg: &Message<'_>, keys: &super::KeyParts<'_>, request: bool) {
    b.put(F::CallId, msg.call_id());
    b.put(F::FromTag, keys.from_tag);
    b.put(F::ToTag, keys.to_tag);
    b.put(F::RequestUri, msg.request_uri());
    b.put(F::TopBranch, keys.top_branch);
    b.put_tags(F::Require, msg.list(HeaderId::Require));
    b.put_tags(F::Unsupported, msg.list(HeaderId::Unsupported));
    b.put(F::UserAgent, user_agent(msg, request));
    b.put(F::Warning, msg.header(HeaderId::Warning));
    b.put(F::Reason, msg.header(HeaderId::Reason));
}

/// The text fields only requests are read for (identities, the bottom
/// Via's branch, correlation values, access facts), in field order.
fn put_request_text(b: &mut TextBuilder<'_>, msg: &Message<'_>, bottom_via: Option<&[u8]>) {
    b.put(F::FromUri, msg.from_uri());
    b.put(F::ToUri, msg.to_uri());
    b.put(F::BottomBranch, bottom_via.and_then(crate::sip::via_branch));
    b.put_tags(F::ProxyRequire, msg.list(HeaderId::ProxyRequire));
    b.put_tags(F::Supported, msg.list(HeaderId::Supported));
    b.put_lower(
        F::SessionId,
        msg.header(HeaderId::SessionId).and_then(|v| {
            let v = v.split(|&b| b == b';').next().unwrap_or(v).trim_ascii();
            (!v.is_empty()).then_some(v)
        }),
    );
    b.put(
        F::Icid,
        msg.header(HeaderId::PChargingVector).and_then(icid_value),
    );
    b.put(
        F::XCid,
        msg.header(HeaderId::XCid)
            .or_else(|| msg.header(HeaderId::XCallId))
            .filter(|v| !v.is_empty()),
    );
    b.put(
        F::Subscriber,
        msg.header(HeaderId::PServedUser)
            .or_else(|| msg.header(HeaderId::PAssertedIdentity))
            .map(|v| crate::sip::name_addr(v).0)
            .or_else(|| msg.from_uri()),
    );
    b.put(F::VisitedNetwork, msg.header(HeaderId::PVisitedNetworkId));
    b.put(
        F::AccessType,
        msg.header(HeaderId::PAccessNetworkInfo)
            .map(|v| v.split(|&b| b == b';').next().unwrap_or(v).trim_ascii()),
    );
    b.put_list(F::ViaHosts, msg.list(HeaderId::Via), via_host);
}

/// Builds a record's text: every field appended to one buffer, reused from
/// one message to the next, then checked as UTF-8 once and copied into the
/// record in one allocation. SIP text is ASCII nearly always; when the check
/// fails the record is built again with `lossy` set, each field's invalid
/// UTF-8 replaced as it is appended.
struct TextBuilder<'s> {
    text: &'s mut Vec<u8>,
    spans: [Span; FIELDS],
    lossy: bool,
}

impl TextBuilder<'_> {
    fn begin(&mut self) -> usize {
        self.text.len()
    }

    fn end(&mut self, f: F, start: usize) {
        self.spans[f as usize] = Span {
            start: start as u32,
            end: self.text.len() as u32,
        };
    }

    /// Appends `v` (invalid UTF-8 replaced) as field `f`.
    fn put(&mut self, f: F, v: Option<&[u8]>) {
        if let Some(v) = v {
            let s = self.begin();
            self.push(v);
            self.end(f, s);
        }
    }

    /// Appends `v` (in the `lossy` pass with invalid UTF-8 replaced).
    fn push(&mut self, v: &[u8]) {
        if self.lossy {
            self.text
                .extend_from_slice(String::from_utf8_lossy(v).as_bytes());
        } else {
            self.text.extend_from_slice(v);
        }
    }

    /// Appends `v` lowercased as field `f`.
    fn put_lower(&mut self, f: F, v: Option<&[u8]>) {
        if let Some(v) = v {
            let s = self.begin();
            self.push(v);
            self.text[s..].make_ascii_lowercase();
            self.end(f, s);
        }
    }

    /// Appends the lowercased, deduplicated tag set of `items` as `f`
    /// (the reports' normaliser, [`crate::sip::push_tag_list`], joined with
    /// `,`).
    fn put_tags<'m>(&mut self, f: F, items: impl Iterator<Item = &'m [u8]>) {
        let s = self.begin();
        crate::sip::push_tag_list(self.text, items, crate::sip::Case::Lower, b',');
        if self.lossy {
            let t = String::from_utf8_lossy(&self.text[s..]).into_owned();
            self.text.truncate(s);
            self.text.extend_from_slice(t.as_bytes());
        }
        self.end(f, s);
    }

    /// Appends the items of `items`, each mapped by `map` and lowercased,
    /// comma-joined, as `f`; absent when there are none.
    fn put_list<'m>(
        &mut self,
        f: F,
        items: impl Iterator<Item = &'m [u8]>,
        map: impl Fn(&'m [u8]) -> &'m [u8],
    ) {
        let s = self.begin();
        let mut any = false;
        for it in items {
            if any {
                self.text.push(b',');
            }
            let t = self.text.len();
            self.push(map(it));
            self.text[t..].make_ascii_lowercase();
            any = true;
        }
        if any {
            self.end(f, s);
        }
    }
}

thread_local! {
    /// The text buffer [`SipRecord::new`] builds in, kept between messages.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(1024));
}

/// One SIP message as the dialog stage sees it.
///
/// Its strings (Call-ID, tags, URIs, option tags, ...) live in one text
/// buffer, allocated once per message; the accessors borrow from it.
#[derive(Clone, Debug)]
pub struct SipRecord {
    /// Where it was captured: input file, frame, position in the frame,
    /// capture time and addresses.
    pub at: Capture,
    /// Retransmission key (rules.md §A.2).
    pub key: TxnKey,
    /// The partition key ([`super::partition::partition_key`]): computed
    /// once here, where the message is at hand; tracking routes by it.
    pub partition: u64,
    /// The status code of a response; `None` for a request.
    pub status: Option<u16>,
    /// The request method, or for a response the CSeq method.
    pub method: Method,
    /// The CSeq number (0 when missing).
    pub cseq: u32,
    /// Number of Via entries.
    pub via_count: u16,
    /// Whether Allow lists UPDATE (method tokens are case-sensitive, RFC 3261
    /// §25.1): the only method the rules look for (rules.md C14, C15, D9, L2).
    pub allow_update: bool,
    /// Whether an Allow header is present.
    pub has_allow: bool,
    /// SDP precondition demand (rules.md §B.3).
    pub demand: Demand,
    /// Whether the message carries an SDP body (decodable or not).
    pub has_sdp: bool,
    /// Hash of the SDP `o=` username and session id (rules.md §A.3 H2 bonus);
    /// initial requests only.
    pub sdp_origin: Option<u64>,
    /// Fingerprint of everything H2 compares (rules.md §A.3): the message
    /// without per-request values, capability headers and SDP precondition
    /// lines. Initial requests only (0 otherwise).
    pub h2_fingerprint: u64,
    /// RSeq of a reliable provisional response.
    pub rseq: Option<u32>,
    /// RAck of a PRACK: (rseq, cseq, method).
    pub rack: Option<(u32, u32, Method)>,
    /// Hash of the SDP m-lines without their ports (media, protocol, formats):
    /// equal for the same streams and codecs (rules.md D11); requests only.
    pub sdp_media: Option<u64>,
    /// Whether the SDP has a=des/curr/conf at session level (lint L6).
    pub session_level_precondition: bool,
    /// Whether the SDP has any a=des/curr/conf line (an answer "with
    /// preconditions").
    pub has_precondition_lines: bool,
    /// An `a=des` with strength `failure` or `unknown` (rules.md C10).
    pub precondition_failure: bool,
    /// What retry linking compares, hashed once: initial requests only
    /// (boxed so that every other record, most of those kept, spends 8
    /// bytes on it instead of 96); read through [`SipRecord::link`].
    link: Option<Box<super::linkkeys::LinkKeys>>,
    /// Contacts of a 3xx, realms of a 401/407 (retry evidence); `None` for
    /// every other message.
    pub reply: Option<Box<super::linkkeys::ReplyKeys>>,
    /// The hop transaction key (Call-ID, CSeq number and method, top Via
    /// branch; without a branch the From tag): what the tracker indexes
    /// transactions by, hashed with the record (on the decoding thread) so
    /// that the tracker can prefetch its place a few messages ahead. Read
    /// through [`SipRecord::hop_key`]; whoever changes those fields after
    /// the record is built calls [`SipRecord::refresh_hop_key`].
    hop: u64,
    /// Every text field, back to back.
    text: Box<str>,
    /// Where each [`F`] field is in `text`.
    spans: Spans,
}

/// Where a message was captured: what the record needs besides the message.
#[derive(Clone, Copy, Debug)]
pub struct Capture {
    /// Index of the input file.
    pub file: u32,
    /// Frame number.
    pub frame: u64,
    /// Position among the messages of that frame.
    pub seq: u32,
    /// Capture time, ns.
    pub ts_ns: i64,
    /// Source address.
    pub src: SocketAddr,
    /// Destination address.
    pub dst: SocketAddr,
}

impl Capture {
    /// The message found in input `file` as the `seq`-th completed by the
    /// frame of `at`.
    pub fn of(file: u32, seq: u32, at: &crate::packet::Origin) -> Capture {
        Capture {
            file,
            frame: at.at.frame,
            seq,
            ts_ns: at.at.ts_ns,
            src: at.src,
            dst: at.dst,
        }
    }
}

impl SipRecord {
    /// Builds the record of `msg`, captured as `at`.
    pub fn new(msg: &Message<'_>, at: Capture) -> SipRecord {
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut buf) => SipRecord::build(msg, at, &mut buf, false),
            Err(_) => SipRecord::build(msg, at, &mut Vec::new(), false),
        })
    }

    fn build(msg: &Message<'_>, at: Capture, text: &mut Vec<u8>, lossy: bool) -> SipRecord {
        text.clear();
        let mut b = TextBuilder {
            text,
            spans: [Span::NONE; FIELDS],
            lossy,
        };
        let (status, method) = status_and_method(msg);
        let sdp = SdpFacts::of(msg);
        // What only requests (or only initial requests) are read for: left
        // out of responses, which are most messages (hot path).
        let request = status.is_none();
        // Read once: the record and the retransmission key both need them.
        let (from_tag, to_tag) = (msg.from_tag(), msg.to_tag());
        let vias = Vias::of(msg);
        let top_branch = vias.top.and_then(crate::sip::via_branch);
        let initial = request && to_tag.is_none();
        let keys = super::KeyParts {
            from_tag,
            to_tag,
            top_branch,
        };
        put_text(&mut b, msg, &keys, request);
        if request {
            put_request_text(&mut b, msg, vias.bottom);
        }
        let spans = b.spans;
        let text: Box<str> = match std::str::from_utf8(text) {
            Ok(t) => Box::from(t),
            // Invalid UTF-8 in some field (rare): again, replacing it.
            Err(_) if !lossy => return SipRecord::build(msg, at, text, true),
            // Not reached: every byte of the lossy pass is valid UTF-8.
            Err(_) => String::from_utf8_lossy(text).into(),
        };
        // An initial request's link keys and partition key come from the
        // same cuts of its From and To URIs; any other message has only
        // the partition key.
        let (link, partition) = if initial {
            let (l, p) = super::linkkeys::LinkKeys::of_initial(msg, sdp.demand as u8);
            (Some(Box::new(l)), p)
        } else {
            (None, super::partition::partition_key(msg))
        };
        SipRecord {
            at,
            hop: 0,
            key: TxnKey::of_parts(msg, &keys),
            partition,
            status,
            method,
            cseq: msg.cseq().map(|(n, _)| n).unwrap_or(0),
            via_count: vias.count.min(u16::MAX as usize) as u16,
            allow_update: msg.list(HeaderId::Allow).any(|m| m == b"UPDATE"),
            has_allow: msg.header(HeaderId::Allow).is_some(),
            demand: sdp.demand,
            has_sdp: sdp.present,
            sdp_origin: if initial {
                sdp.bytes.and_then(sdp_origin)
            } else {
                None
            },
            h2_fingerprint: if initial {
                h2_fingerprint(msg, sdp.bytes)
            } else {
                0
            },
            rseq: msg.header(HeaderId::RSeq).and_then(parse_u32),
            rack: msg
                .header(HeaderId::RAck)
                .filter(|_| request)
                .and_then(parse_rack),
            sdp_media: if request {
                sdp.bytes.map(sdp_media)
            } else {
                None
            },
            session_level_precondition: sdp.session_level,
            has_precondition_lines: sdp.any_lines,
            precondition_failure: sdp.failure,
            link,
            reply: status
                .filter(|c| (300..400).contains(c) || *c == 401 || *c == 407)
                .map(|c| Box::new(super::linkkeys::ReplyKeys::of_response(msg, c))),
            spans: Spans::pack(&spans, text.len()),
            text,
        }
        .with_hop_key()
    }

    fn get(&self, f: F) -> Option<&str> {
        self.text_field(f as usize)
    }

    /// Prefetches what the record holds on the heap: its text and its link
    /// and reply keys ([`crate::prefetch`]), for a record read soon.
    pub fn prefetch_heap(&self) {
        crate::prefetch::bytes(self.text.as_bytes(), 8);
        if let Some(l) = &self.link {
            crate::prefetch::value(&**l);
        }
        if let Some(r) = &self.reply {
            crate::prefetch::value(&**r);
        }
    }

    /// The `i`-th text field of [`TEXT_FIELDS`] as the record holds it
    /// (`None`: absent; tag sets and Via hosts comma-joined).
    pub fn text_field(&self, i: usize) -> Option<&str> {
        if i >= FIELDS {
            return None;
        }
        self.spans.get(i).map(|(a, b)| &self.text[a..b])
    }

    /// The link keys as held: `None` but for an initial request.
    pub fn link_keys(&self) -> Option<&super::linkkeys::LinkKeys> {
        self.link.as_deref()
    }

    /// A record holding `texts` (by [`TEXT_FIELDS`] index, as
    /// [`SipRecord::text_field`] gives them) and `link` (as
    /// [`SipRecord::link_keys`] gives it), every public field zero, empty
    /// or `false` for the caller to set: a record rebuilt from a records
    /// file, without the message. Having set the CSeq and method, the
    /// caller calls [`SipRecord::refresh_hop_key`].
    pub fn from_stored_text(
        texts: &[Option<&str>; FIELDS],
        link: Option<super::linkkeys::LinkKeys>,
    ) -> SipRecord {
        // Sized up front: a grown String shrunk into a Box may keep its
        // larger block (the allocator reallocates in place).
        let mut text = String::with_capacity(texts.iter().flatten().map(|t| t.len()).sum());
        let mut spans = [Span::NONE; FIELDS];
        for (i, t) in texts.iter().enumerate() {
            if let Some(t) = t {
                let start = text.len() as u32;
                text.push_str(t);
                spans[i] = Span {
                    start,
                    end: text.len() as u32,
                };
            }
        }
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        SipRecord {
            at: Capture {
                file: 0,
                frame: 0,
                seq: 0,
                ts_ns: 0,
                src: unspecified,
                dst: unspecified,
            },
            key: TxnKey::from_raw(0),
            hop: 0,
            status: None,
            method: Method::Other("".into()),
            cseq: 0,
            via_count: 0,
            allow_update: false,
            has_allow: false,
            demand: Demand::Absent,
            has_sdp: false,
            sdp_origin: None,
            h2_fingerprint: 0,
            rseq: None,
            rack: None,
            sdp_media: None,
            session_level_precondition: false,
            has_precondition_lines: false,
            precondition_failure: false,
            link: link.map(Box::new),
            reply: None,
            partition: 0,
            spans: Spans::pack(&spans, text.len()),
            text: text.into_boxed_str(),
        }
        .with_hop_key()
    }

    /// The hop transaction key (see the field `hop`).
    pub fn hop_key(&self) -> u64 {
        self.hop
    }

    /// Computes the hop transaction key again from the Call-ID, CSeq,
    /// method, top Via branch and From tag: for a caller that set them
    /// after [`SipRecord::from_stored_text`].
    pub fn refresh_hop_key(&mut self) {
        self.hop = self.hop_of();
    }

    /// Whether the hop key is that of the record's fields as they are
    /// (for debug assertions).
    pub fn hop_key_is_current(&self) -> bool {
        self.hop == self.hop_of()
    }

    fn with_hop_key(mut self) -> SipRecord {
        self.refresh_hop_key();
        self
    }

    fn hop_of(&self) -> u64 {
        let mut s = super::stable_hasher(super::TRACKER_KEY_SEED);
        match self.top_branch() {
            Some(b) => (0u8, self.call_id(), self.cseq, self.method.as_str(), b).hash(&mut s),
            None => {
                let tag = self.from_tag();
                (1u8, self.call_id(), self.cseq, self.method.as_str(), &tag).hash(&mut s)
            }
        }
        s.finish()
    }

    /// What retry linking compares (all zero but for an initial request).
    pub fn link(&self) -> &super::linkkeys::LinkKeys {
        self.link.as_deref().unwrap_or(&super::linkkeys::NO_LINK)
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        self.status.is_none()
    }

    /// The Call-ID (empty when missing).
    pub fn call_id(&self) -> &str {
        self.get(F::CallId).unwrap_or_default()
    }

    /// From tag.
    pub fn from_tag(&self) -> Option<&str> {
        self.get(F::FromTag)
    }

    /// To tag.
    pub fn to_tag(&self) -> Option<&str> {
        self.get(F::ToTag)
    }

    /// From URI (as written, without the display name and parameters);
    /// requests only (empty in a response, like the other request-only
    /// fields below: the rules read them on requests).
    pub fn from_uri(&self) -> &str {
        self.get(F::FromUri).unwrap_or_default()
    }

    /// To URI; requests only.
    pub fn to_uri(&self) -> &str {
        self.get(F::ToUri).unwrap_or_default()
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&str> {
        self.get(F::RequestUri)
    }

    /// Branch of the top Via (this hop's transaction).
    pub fn top_branch(&self) -> Option<&str> {
        self.get(F::TopBranch)
    }

    /// Branch of the bottom Via (the originating UAC's transaction);
    /// requests only.
    pub fn bottom_branch(&self) -> Option<&str> {
        self.get(F::BottomBranch)
    }

    /// Require tags.
    pub fn require(&self) -> Tags<'_> {
        Tags(self.get(F::Require).unwrap_or_default())
    }

    /// Proxy-Require tags; requests only.
    pub fn proxy_require(&self) -> Tags<'_> {
        Tags(self.get(F::ProxyRequire).unwrap_or_default())
    }

    /// Supported tags; requests only.
    pub fn supported(&self) -> Tags<'_> {
        Tags(self.get(F::Supported).unwrap_or_default())
    }

    /// Unsupported tags.
    pub fn unsupported(&self) -> Tags<'_> {
        Tags(self.get(F::Unsupported).unwrap_or_default())
    }

    /// User-Agent of a request, Server of a response (either as fallback).
    pub fn user_agent(&self) -> Option<&str> {
        self.get(F::UserAgent)
    }

    /// Session-ID (RFC 7989), lowercased, without parameters. This and the
    /// fields down to `access_type` and `via_hosts` are read for requests
    /// only (they describe what a UA or B2BUA asked for).
    pub fn session_id(&self) -> Option<&str> {
        self.get(F::SessionId)
    }

    /// `icid-value` of P-Charging-Vector.
    pub fn icid(&self) -> Option<&str> {
        self.get(F::Icid)
    }

    /// X-CID or X-Call-ID header value.
    pub fn x_cid(&self) -> Option<&str> {
        self.get(F::XCid)
    }

    /// The first Warning value (`code agent "text"`).
    pub fn warning(&self) -> Option<&str> {
        self.get(F::Warning)
    }

    /// The Reason header value.
    pub fn reason(&self) -> Option<&str> {
        self.get(F::Reason)
    }

    /// Who the request is for, for policy `subscriber` (rules.md §E.3):
    /// P-Served-User, else P-Asserted-Identity, else the From URI.
    pub fn subscriber(&self) -> &str {
        self.get(F::Subscriber).unwrap_or_default()
    }

    /// P-Visited-Network-ID.
    pub fn visited_network(&self) -> Option<&str> {
        self.get(F::VisitedNetwork)
    }

    /// The access-type token of P-Access-Network-Info.
    pub fn access_type(&self) -> Option<&str> {
        self.get(F::AccessType)
    }

    /// Hosts of the Via sent-by of every entry, top first, lowercased.
    pub fn via_hosts(&self) -> impl Iterator<Item = &str> {
        self.get(F::ViaHosts).into_iter().flat_map(|s| s.split(','))
    }
}

/// The host of a Via entry's sent-by (`SIP/2.0/UDP host:port;params`).
fn via_host(v: &[u8]) -> &[u8] {
    let v = v.split(|&b| b == b';').next().unwrap_or(v).trim_ascii();
    let sent_by = v
        .iter()
        .rposition(|b| b.is_ascii_whitespace())
        .map_or(v, |i| &v[i + 1..]);
    if let Some(rest) = sent_by.strip_prefix(b"[") {
        return rest.split(|&b| b == b']').next().unwrap_or(rest);
    }
    sent_by.split(|&b| b == b':').next().unwrap_or(sent_by)
}

/// Hash of the m-lines with the port left out.
fn sdp_media(sdp: &[u8]) -> u64 {
    let mut h = hasher();
    for l in lines(sdp).filter(|l| l.starts_with(b"m=")) {
        let mut f = l[2..].split(|&b| b == b' ');
        let media = f.next();
        let _port = f.next();
        media.hash(&mut h);
        for rest in f {
            rest.hash(&mut h);
        }
    }
    h.finish()
}

fn parse_u32(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v.trim_ascii()).ok()?.parse().ok()
}

/// `RAck: 1 314 INVITE`.
fn parse_rack(v: &[u8]) -> Option<(u32, u32, Method)> {
    let s = std::str::from_utf8(v).ok()?;
    let mut it = s.split_ascii_whitespace();
    let rseq = it.next()?.parse().ok()?;
    let cseq = it.next()?.parse().ok()?;
    let m = it.next()?;
    Some((rseq, cseq, Method::from_bytes(m.as_bytes())))
}

/// The `icid-value` parameter of a P-Charging-Vector value.
pub(super) fn icid_value(v: &[u8]) -> Option<&[u8]> {
    for p in v.split(|&b| b == b';') {
        let p = p.trim_ascii();
        if p.len() > 11 && p[..11].eq_ignore_ascii_case(b"icid-value=") {
            let val = p[11..].trim_ascii();
            let val = val.strip_prefix(b"\"").unwrap_or(val);
            let val = val.strip_suffix(b"\"").unwrap_or(val);
            if !val.is_empty() {
                return Some(val);
            }
        }
    }
    None
}

/// The lines of an SDP body, each without its `\n` and one `\r` before
/// it: the pieces of `b.split(|&c| c == b'\n')` (an empty last piece
/// after a final `\n` included), found with memchr. A byte-by-byte split
/// was a third of [`SipRecord::build`]'s own time: it runs over the body
/// of every request up to three times (m-lines, `o=`, the H2 fingerprint).
fn lines(b: &[u8]) -> Lines<'_> {
    Lines { rest: Some(b) }
}

/// [`lines`]' iterator.
struct Lines<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let line = match memchr::memchr(b'\n', rest) {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                &rest[..i]
            }
            None => {
                self.rest = None;
                rest
            }
        };
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// Hash of the `o=` username and session id.
fn sdp_origin(sdp: &[u8]) -> Option<u64> {
    let o = lines(sdp).find(|l| l.starts_with(b"o="))?;
    let mut f = o[2..].split(|&b| b == b' ');
    let user = f.next()?;
    let sess = f.next()?;
    let mut h = hasher();
    user.hash(&mut h);
    sess.hash(&mut h);
    Some(h.finish())
}

fn hasher() -> impl Hasher {
    super::stable_hasher(0x6832_6670_7369_7061)
}

/// Headers whose values change from one request to the next, or that carry
/// the capabilities a retry is allowed to change: left out of the H2
/// comparison (rules.md §A.3 H2). From and To count by their URI only.
fn h2_ignored(id: HeaderId, name: &[u8]) -> bool {
    use HeaderId as H;
    matches!(
        id,
        H::Via
            | H::CallId
            | H::CSeq
            | H::MaxForwards
            | H::ContentLength
            | H::PChargingVector
            | H::Require
            | H::ProxyRequire
            | H::Supported
            | H::Allow
            | H::SessionId
    ) || [
        &b"Authorization"[..],
        b"Proxy-Authorization",
        b"Date",
        b"Timestamp",
    ]
    .iter()
    .any(|n| n.eq_ignore_ascii_case(name))
}

/// The H2 fingerprint (see [`SipRecord::h2_fingerprint`]).
fn h2_fingerprint(msg: &Message<'_>, sdp: Option<&[u8]>) -> u64 {
    let mut h = hasher();
    if let StartLine::Request { method, uri } = msg.start() {
        method.hash(&mut h);
        uri.hash(&mut h);
    }
    for hd in msg.header_rows() {
        if h2_ignored(hd.id, hd.name) {
            continue;
        }
        match hd.id {
            HeaderId::From => (0u8, msg.from_uri()).hash(&mut h),
            HeaderId::To => (1u8, msg.to_uri()).hash(&mut h),
            HeaderId::Other => (hd.name.to_ascii_lowercase(), hd.value).hash(&mut h),
            id => (id, hd.value).hash(&mut h),
        }
    }
    match sdp {
        Some(s) => {
            for l in lines(s) {
                if l.starts_with(b"o=")
                    || l.starts_with(b"a=des:")
                    || l.starts_with(b"a=curr:")
                    || l.starts_with(b"a=conf:")
                {
                    continue;
                }
                l.hash(&mut h);
            }
        }
        None => msg.body().hash(&mut h),
    }
    h.finish()
}

/// Test builder: the record of the SIP message `text` (parsed as a
/// datagram; it must parse) seen at `ts_ns` in frame `frame` of file 0.
/// The [`Demand`] values by their code in a spill file.
const DEMAND_CODES: [Demand; 5] = [
    Demand::Mandatory,
    Demand::Optional,
    Demand::NoneOnly,
    Demand::Absent,
    Demand::Unknown,
];

impl SipRecord {
    /// Appends the whole record to `out` (the cold-session spill file,
    /// `tracker/cold.rs`): [`SipRecord::decode`] gives back an equal one.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        use super::codec::Put;
        let mut p = Put(out);
        let at = &self.at;
        p.u32(at.file);
        p.u64(at.frame);
        p.u32(at.seq);
        p.i64(at.ts_ns);
        p.addr(at.src);
        p.addr(at.dst);
        p.u64(self.key.raw());
        p.u64(self.partition);
        p.opt_u32(self.status.map(u32::from));
        p.str(self.method.as_str());
        p.u32(self.cseq);
        p.u16(self.via_count);
        let flags = [
            self.allow_update,
            self.has_allow,
            self.has_sdp,
            self.session_level_precondition,
            self.has_precondition_lines,
            self.precondition_failure,
        ];
        p.u8(flags.iter().rev().fold(0, |acc, &b| acc << 1 | u8::from(b)));
        p.u8(DEMAND_CODES
            .iter()
            .position(|d| *d == self.demand)
            .unwrap_or(3) as u8);
        p.opt_u64(self.sdp_origin);
        p.u64(self.h2_fingerprint);
        p.opt_u32(self.rseq);
        match &self.rack {
            None => p.u8(0),
            Some((r, c, m)) => {
                p.u8(1);
                p.u32(*r);
                p.u32(*c);
                p.str(m.as_str());
            }
        }
        p.opt_u64(self.sdp_media);
        put_link(&mut p, self.link.as_deref());
        put_reply(&mut p, self.reply.as_deref());
        p.str(&self.text);
        for i in 0..FIELDS {
            let (a, b) = self
                .spans
                .get(i)
                .map_or((u32::MAX, 0), |(a, b)| (a as u32, b as u32));
            p.u32(a);
            p.u32(b);
        }
    }

    /// A record written by [`SipRecord::encode`], from the front of `g`;
    /// `None` when the bytes do not hold one.
    pub(crate) fn decode(g: &mut super::codec::Get<'_>) -> Option<SipRecord> {
        let at = get_capture(g)?;
        let key = TxnKey::from_raw(g.u64()?);
        let partition = g.u64()?;
        let status = match g.opt_u32()? {
            Some(s) => Some(u16::try_from(s).ok()?),
            None => None,
        };
        let method = Method::from_bytes(g.str()?.as_bytes());
        let cseq = g.u32()?;
        let via_count = g.u16()?;
        let flags = g.u8()?;
        let bit = |i: u8| flags & (1 << i) != 0;
        let demand = *DEMAND_CODES.get(usize::from(g.u8()?))?;
        let sdp_origin = g.opt_u64()?;
        let h2_fingerprint = g.u64()?;
        let rseq = g.opt_u32()?;
        let rack = match g.u8()? {
            0 => None,
            1 => Some((g.u32()?, g.u32()?, Method::from_bytes(g.str()?.as_bytes()))),
            _ => return None,
        };
        let sdp_media = g.opt_u64()?;
        let link = get_link(g)?;
        let reply = get_reply(g)?;
        let (text, spans) = get_text(g)?;
        Some(
            SipRecord {
                at,
                hop: 0,
                key,
                partition,
                status,
                method,
                cseq,
                via_count,
                allow_update: bit(0),
                has_allow: bit(1),
                demand,
                has_sdp: bit(2),
                sdp_origin,
                h2_fingerprint,
                rseq,
                rack,
                sdp_media,
                session_level_precondition: bit(3),
                has_precondition_lines: bit(4),
                precondition_failure: bit(5),
                link,
                reply,
                spans,
                text,
            }
            .with_hop_key(),
        )
    }
}

/// The link keys of an initial request, or their absence.
fn put_link(p: &mut super::codec::Put<'_>, link: Option<&super::linkkeys::LinkKeys>) {
    let Some(l) = link else {
        return p.u8(0);
    };
    p.u8(1);
    for v in [
        l.from,
        l.to,
        l.from_id,
        l.to_id,
        l.ruri_user,
        l.ruri_num,
        l.target,
        l.caps,
        l.realm,
    ]
    .iter()
    .chain(&l.corr)
    {
        p.u64(*v);
    }
}

/// The retry evidence of a 3xx, 401 or 407, or its absence.
fn put_reply(p: &mut super::codec::Put<'_>, reply: Option<&super::linkkeys::ReplyKeys>) {
    let Some(r) = reply else {
        return p.u8(0);
    };
    p.u8(1);
    for list in [&r.contacts, &r.realms] {
        p.u32(list.len() as u32);
        list.iter().for_each(|&v| p.u64(v));
    }
}

/// [`Capture`] as [`SipRecord::encode`] writes it.
fn get_capture(g: &mut super::codec::Get<'_>) -> Option<Capture> {
    Some(Capture {
        file: g.u32()?,
        frame: g.u64()?,
        seq: g.u32()?,
        ts_ns: g.i64()?,
        src: g.addr()?,
        dst: g.addr()?,
    })
}

/// [`put_link`]'s bytes read back: `None` when they hold no link keys.
fn get_link(g: &mut super::codec::Get<'_>) -> Option<Option<Box<super::linkkeys::LinkKeys>>> {
    match g.u8()? {
        0 => Some(None),
        1 => {
            let mut v = [0u64; 12];
            for x in &mut v {
                *x = g.u64()?;
            }
            Some(Some(Box::new(super::linkkeys::LinkKeys {
                from: v[0],
                to: v[1],
                from_id: v[2],
                to_id: v[3],
                ruri_user: v[4],
                ruri_num: v[5],
                target: v[6],
                caps: v[7],
                realm: v[8],
                corr: [v[9], v[10], v[11]],
            })))
        }
        _ => None,
    }
}

/// [`put_reply`]'s bytes read back.
fn get_reply(g: &mut super::codec::Get<'_>) -> Option<Option<Box<super::linkkeys::ReplyKeys>>> {
    match g.u8()? {
        0 => Some(None),
        1 => {
            let mut lists: [Vec<u64>; 2] = Default::default();
            for list in &mut lists {
                let n = g.u32()? as usize;
                for _ in 0..n {
                    list.push(g.u64()?);
                }
            }
            let [contacts, realms] = lists;
            Some(Some(Box::new(super::linkkeys::ReplyKeys {
                contacts: contacts.into(),
                realms: realms.into(),
            })))
        }
        _ => None,
    }
}

/// The text and its field spans, checked to lie within it.
fn get_text(g: &mut super::codec::Get<'_>) -> Option<(Box<str>, Spans)> {
    let text: Box<str> = g.str()?.into();
    let mut spans = [Span::NONE; FIELDS];
    for s in &mut spans {
        *s = Span {
            start: g.u32()?,
            end: g.u32()?,
        };
        let present = s.start != u32::MAX;
        if present && (s.start > s.end || s.end as usize > text.len()) {
            return None;
        }
    }
    let spans = Spans::pack(&spans, text.len());
    Some((text, spans))
}

#[cfg(test)]
impl SipRecord {
    pub(crate) fn from_text(
        text: &str,
        frame: u64,
        ts_ns: i64,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> SipRecord {
        let msg = crate::sip::parse_message(text.as_bytes(), crate::sip::Framing::Datagram)
            .expect("a test message parses");
        SipRecord::new(
            &msg,
            Capture {
                file: 0,
                frame,
                seq: 0,
                ts_ns,
                src,
                dst,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(text: &str) -> SipRecord {
        let addr: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
        SipRecord::from_text(&text.replace('\n', "\r\n"), 1, 0, addr, addr)
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP Proxy.Example.com:5060;branch=z9hG4bKtop, SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bKbottom
From: <sip:alice@example.com>;tag=ft1
To: <sip:bob@example.com>
Call-ID: cid-1
CSeq: 1 INVITE
Require: Precondition, 100rel,precondition
Supported: timer
Proxy-Require: sec-agree
Session-ID: ABCDEF0123456789ABCDEF0123456789;remote=0
P-Charging-Vector: icid-value=\"icid-7\";orig-ioi=home
X-Call-ID: xc-9
P-Served-User: <sip:served@example.com>;sescase=orig
P-Visited-Network-ID: visited.example
P-Access-Network-Info: 3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=001
Content-Length: 0

";

    #[test]
    fn text_fields_of_a_request() {
        let r = rec(INVITE);
        assert_eq!(r.call_id(), "cid-1");
        assert_eq!(r.from_tag(), Some("ft1"));
        assert_eq!(r.to_tag(), None);
        assert_eq!(r.from_uri(), "sip:alice@example.com");
        assert_eq!(r.to_uri(), "sip:bob@example.com");
        assert_eq!(r.request_uri(), Some("sip:bob@example.com"));
        assert_eq!(r.top_branch(), Some("z9hG4bKtop"));
        assert_eq!(r.bottom_branch(), Some("z9hG4bKbottom"));
        // Lowercased, deduplicated, first-appearance order.
        assert_eq!(
            r.require().iter().collect::<Vec<_>>(),
            ["precondition", "100rel"]
        );
        assert!(r.require().contains("100rel"));
        assert_eq!(r.require().join(";"), "precondition;100rel");
        assert_eq!(r.supported().iter().collect::<Vec<_>>(), ["timer"]);
        assert_eq!(r.proxy_require().iter().collect::<Vec<_>>(), ["sec-agree"]);
        assert!(r.unsupported().is_empty());
        assert_eq!(r.session_id(), Some("abcdef0123456789abcdef0123456789"));
        assert_eq!(r.icid(), Some("icid-7"));
        assert_eq!(r.x_cid(), Some("xc-9"));
        assert_eq!(r.subscriber(), "sip:served@example.com");
        assert_eq!(r.visited_network(), Some("visited.example"));
        assert_eq!(r.access_type(), Some("3GPP-E-UTRAN-FDD"));
        assert_eq!(
            r.via_hosts().collect::<Vec<_>>(),
            ["proxy.example.com", "2001:db8::1"]
        );
        assert_eq!(r.via_count, 2);
    }

    #[test]
    fn responses_leave_request_fields_empty() {
        let r = rec("SIP/2.0 420 Bad Extension
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKtop
From: <sip:alice@example.com>;tag=ft1
To: <sip:bob@example.com>;tag=tt2
Call-ID: cid-1
CSeq: 1 INVITE
Unsupported: precondition
Server: Peer/1.0
Supported: timer
Content-Length: 0

");
        assert_eq!(r.status, Some(420));
        assert_eq!(r.to_tag(), Some("tt2"));
        assert_eq!(r.unsupported().iter().collect::<Vec<_>>(), ["precondition"]);
        assert_eq!(r.user_agent(), Some("Peer/1.0"));
        assert!(r.supported().is_empty());
        assert_eq!(r.from_uri(), "");
        assert_eq!(r.subscriber(), "");
        assert_eq!(r.via_hosts().count(), 0);
        assert_eq!(r.request_uri(), None);
        assert!(r.link.is_none());
        assert_eq!(*r.link(), super::super::linkkeys::LinkKeys::default());
        assert!(rec(INVITE).link.is_some());
        assert_ne!(
            *rec(INVITE).link(),
            super::super::linkkeys::LinkKeys::default()
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_in_its_field_only() {
        let mut raw =
            b"OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\nCall-ID: c\r\n\
CSeq: 1 OPTIONS\r\nUser-Agent: UA-"
                .to_vec();
        raw.extend_from_slice(b"\xff\xfe-1\r\nSupported: Timer\r\nContent-Length: 0\r\n\r\n");
        let msg = crate::sip::parse_message(&raw, crate::sip::Framing::Datagram).expect("parses");
        let addr: SocketAddr = "192.0.2.1:5060".parse().expect("addr");
        let r = SipRecord::new(
            &msg,
            Capture {
                file: 0,
                frame: 1,
                seq: 0,
                ts_ns: 0,
                src: addr,
                dst: addr,
            },
        );
        assert_eq!(r.user_agent(), Some("UA-\u{fffd}\u{fffd}-1"));
        assert_eq!(r.call_id(), "c");
        assert_eq!(r.from_tag(), Some("a"));
        assert_eq!(r.supported().iter().collect::<Vec<_>>(), ["timer"]);
    }

    #[test]
    fn a_text_beyond_u16_keeps_wide_spans() {
        let long = "u".repeat(70_000);
        let r = rec(&INVITE.replace(
            "Content-Length: 0",
            &format!("User-Agent: {long}\nWarning: 399 h \"w\"\nContent-Length: 0"),
        ));
        assert!(matches!(r.spans, Spans::Wide(_)));
        assert_eq!(r.user_agent(), Some(long.as_str()));
        assert_eq!(r.warning(), Some("399 h \"w\""));
        assert_eq!(r.reason(), None);
        assert_eq!(r.access_type(), Some("3GPP-E-UTRAN-FDD"));
        assert!(matches!(rec(INVITE).spans, Spans::Packed { .. }));
    }

    /// A record rebuilt from its text fields and link keys gives the same
    /// fields, packed or wide.
    fn assert_rebuilds(r: &SipRecord) {
        let texts: [Option<&str>; FIELDS] = std::array::from_fn(|i| r.text_field(i));
        let b = SipRecord::from_stored_text(&texts, r.link_keys().copied());
        for (i, name) in TEXT_FIELDS.iter().enumerate() {
            assert_eq!(b.text_field(i), r.text_field(i), "{name}");
        }
        assert_eq!(b.text_field(FIELDS), None);
        assert_eq!(b.link(), r.link());
        assert_eq!(b.link_keys().is_some(), r.link_keys().is_some());
        assert_eq!(b.require(), r.require());
        assert_eq!(
            b.via_hosts().collect::<Vec<_>>(),
            r.via_hosts().collect::<Vec<_>>()
        );
        assert_eq!(
            matches!(b.spans, Spans::Packed { .. }),
            matches!(r.spans, Spans::Packed { .. })
        );
    }

    #[test]
    fn stored_text_rebuilds_the_record() {
        assert_rebuilds(&rec(INVITE));
        let long = "u".repeat(70_000);
        assert_rebuilds(&rec(&INVITE.replace(
            "Content-Length: 0",
            &format!("User-Agent: {long}\nContent-Length: 0"),
        )));
        assert_rebuilds(&rec("SIP/2.0 180 Ringing
Via: SIP/2.0/UDP h;branch=z9hG4bK1
From: <sip:alice@example.com>;tag=a
To: <sip:bob@example.com>;tag=b
Call-ID: c
CSeq: 1 INVITE
Reason:
Content-Length: 0

"));
    }

    #[test]
    fn the_record_carries_its_partition_key() {
        let text = INVITE.replace('\n', "\r\n");
        let msg = crate::sip::parse_message(text.as_bytes(), crate::sip::Framing::Datagram)
            .expect("parses");
        assert_eq!(rec(INVITE).partition, super::super::partition_key(&msg));
        assert_ne!(rec(INVITE).partition, 0);
    }

    #[test]
    fn record_size_is_pinned() {
        // A regression here costs memory on every held message.
        assert_eq!(std::mem::size_of::<Spans>(), 56);
        assert_eq!(std::mem::size_of::<SipRecord>(), 328);
    }

    #[test]
    fn present_but_empty_differs_from_absent() {
        let r = rec("OPTIONS sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP h;branch=z9hG4bK1
From: <sip:alice@example.com>;tag=a
To: <sip:bob@example.com>
Call-ID: c
CSeq: 1 OPTIONS
Reason:
Content-Length: 0

");
        assert_eq!(r.reason(), Some(""));
        assert_eq!(r.warning(), None);
        // A clone shares nothing but is equal field by field.
        let c = r.clone();
        assert_eq!(c.call_id(), "c");
        assert_eq!(c.reason(), Some(""));
    }

    #[test]
    fn a_record_reads_back_from_its_spill_encoding_equal() {
        let resp = "SIP/2.0 302 Moved
Via: SIP/2.0/UDP p.example.com;branch=z9hG4bKtop
From: <sip:alice@example.com>;tag=ft1
To: <sip:bob@example.com>;tag=tt
Call-ID: cid-1
CSeq: 1 INVITE
Contact: <sip:bob@elsewhere.example>
RSeq: 9
Content-Length: 0

";
        let prack = "PRACK sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP p.example.com;branch=z9hG4bKpr
From: <sip:alice@example.com>;tag=ft1
To: <sip:bob@example.com>;tag=tt
Call-ID: cid-1
CSeq: 2 PRACK
RAck: 9 1 INVITE
Content-Length: 0

";
        let mut v6 = rec(INVITE);
        v6.at.src = "[2001:db8::7]:5070".parse().unwrap();
        v6.at.frame = 77;
        v6.at.ts_ns = -3;
        for r in [rec(INVITE), rec(resp), rec(prack), v6] {
            let mut b = Vec::new();
            r.encode(&mut b);
            let back = SipRecord::decode(&mut super::super::codec::Get(&b)).expect("decodes");
            assert_eq!(format!("{back:?}"), format!("{r:?}"));
            for cut in [0, 1, b.len() / 2, b.len() - 1] {
                assert!(SipRecord::decode(&mut super::super::codec::Get(&b[..cut])).is_none());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn lines_are_the_split_form(body in "[a=\r\n x]{0,40}") {
            let b = body.as_bytes();
            let split: Vec<&[u8]> = b
                .split(|&c| c == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .collect();
            proptest::prop_assert_eq!(lines(b).collect::<Vec<_>>(), split);
        }
    }
}
