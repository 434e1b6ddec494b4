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

/// A set of option tags: lowercased (rules.md §B.2), deduplicated, in order
/// of first appearance.
pub type Tags = Vec<Box<str>>;

fn tag_set<'a>(items: impl Iterator<Item = &'a [u8]>) -> Tags {
    let mut out: Tags = Vec::new();
    for it in items {
        let t = String::from_utf8_lossy(it).to_ascii_lowercase();
        if !out.iter().any(|x| **x == *t) {
            out.push(t.into());
        }
    }
    out
}

fn owned(b: Option<&[u8]>) -> Option<Box<str>> {
    b.map(|b| String::from_utf8_lossy(b).into())
}

/// One SIP message as the dialog stage sees it.
#[derive(Clone, Debug)]
pub struct SipRecord {
    /// Index of the input file in the sorted input list.
    pub file: u32,
    /// 1-based frame number in that file (the frame that completed it).
    pub frame: u64,
    /// Position of the message among those completed by the same frame.
    pub seq: u32,
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: i64,
    /// Source address.
    pub src: SocketAddr,
    /// Destination address.
    pub dst: SocketAddr,
    /// Retransmission key (rules.md §A.2).
    pub key: TxnKey,
    /// The status code of a response; `None` for a request.
    pub status: Option<u16>,
    /// The request method, or for a response the CSeq method.
    pub method: Method,
    /// The Call-ID (empty when missing).
    pub call_id: Box<str>,
    /// The CSeq number (0 when missing).
    pub cseq: u32,
    /// From tag.
    pub from_tag: Option<Box<str>>,
    /// To tag.
    pub to_tag: Option<Box<str>>,
    /// From URI (as written, without the display name and parameters);
    /// requests only (empty in a response, like the other request-only
    /// fields below: the rules read them on requests).
    pub from_uri: Box<str>,
    /// To URI; requests only.
    pub to_uri: Box<str>,
    /// The Request-URI of a request.
    pub request_uri: Option<Box<str>>,
    /// Branch of the top Via (this hop's transaction).
    pub top_branch: Option<Box<str>>,
    /// Branch of the bottom Via (the originating UAC's transaction); requests
    /// only.
    pub bottom_branch: Option<Box<str>>,
    /// Number of Via entries.
    pub via_count: u16,
    /// Require tags.
    pub require: Tags,
    /// Proxy-Require tags; requests only.
    pub proxy_require: Tags,
    /// Supported tags; requests only.
    pub supported: Tags,
    /// Unsupported tags.
    pub unsupported: Tags,
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
    pub rack: Option<(u32, u32, Box<str>)>,
    /// User-Agent of a request, Server of a response (either as fallback).
    pub user_agent: Option<Box<str>>,
    /// Session-ID (RFC 7989), lowercased, without parameters. This and the
    /// fields down to `access_type`, `sdp_media` and `via_hosts` are read
    /// for requests only (they describe what a UA or B2BUA asked for).
    pub session_id: Option<Box<str>>,
    /// `icid-value` of P-Charging-Vector.
    pub icid: Option<Box<str>>,
    /// X-CID or X-Call-ID header value.
    pub x_cid: Option<Box<str>>,
    /// The first Warning value (`code agent "text"`).
    pub warning: Option<Box<str>>,
    /// The Reason header value.
    pub reason: Option<Box<str>>,
    /// Who the request is for, for policy `subscriber` (rules.md §E.3):
    /// P-Served-User, else P-Asserted-Identity, else the From URI.
    pub subscriber: Box<str>,
    /// P-Visited-Network-ID.
    pub visited_network: Option<Box<str>>,
    /// The access-type token of P-Access-Network-Info.
    pub access_type: Option<Box<str>>,
    /// Hash of the SDP m-lines without their ports (media, protocol, formats):
    /// equal for the same streams and codecs (rules.md D11).
    pub sdp_media: Option<u64>,
    /// Whether the SDP has a=des/curr/conf at session level (lint L6).
    pub session_level_precondition: bool,
    /// Whether the SDP has any a=des/curr/conf line (an answer "with
    /// preconditions").
    pub has_precondition_lines: bool,
    /// An `a=des` with strength `failure` or `unknown` (rules.md C10).
    pub precondition_failure: bool,
    /// Hosts of the Via sent-by of every entry, top first.
    pub via_hosts: Vec<Box<str>>,
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

impl SipRecord {
    /// Builds the record of `msg`, captured as `at`.
    pub fn new(msg: &Message<'_>, at: Capture) -> SipRecord {
        let (status, method) = match msg.start() {
            StartLine::Request { method, .. } => (None, Method::from_bytes(method)),
            StartLine::Response { code, .. } => (
                Some(code),
                Method::from_bytes(msg.cseq().map(|(_, m)| m).unwrap_or(b"")),
            ),
        };
        let sdp = msg.sdp();
        let (has_sdp, sdp_bytes) = match sdp {
            crate::sip::SdpBody::Sdp(s) => (true, Some(s)),
            crate::sip::SdpBody::Undecodable => (true, None),
            crate::sip::SdpBody::None => (false, None),
        };
        // What only requests (or only initial requests) are read for: left
        // out of responses, which are most messages (hot path).
        let request = status.is_none();
        let initial = request && msg.to_tag().is_none();
        let req = |v: Option<&[u8]>| if request { owned(v) } else { None };
        let (mut session_level, mut any_lines, mut failure) = (false, false, false);
        if let Some(s) = sdp_bytes {
            for l in crate::sip::sdp::precondition_lines(s) {
                any_lines = true;
                session_level |= l.media.is_none();
                failure |= matches!(
                    l.strength,
                    Some(crate::sip::sdp::Strength::Failure | crate::sip::sdp::Strength::Unknown)
                );
            }
        }
        let ua = if status.is_some() {
            msg.header(HeaderId::Server)
                .or_else(|| msg.header(HeaderId::UserAgent))
        } else {
            msg.header(HeaderId::UserAgent)
                .or_else(|| msg.header(HeaderId::Server))
        };
        SipRecord {
            file: at.file,
            frame: at.frame,
            seq: at.seq,
            ts_ns: at.ts_ns,
            src: at.src,
            dst: at.dst,
            key: TxnKey::of(msg),
            status,
            method,
            call_id: owned(msg.call_id()).unwrap_or_default(),
            cseq: msg.cseq().map(|(n, _)| n).unwrap_or(0),
            from_tag: owned(msg.from_tag()),
            to_tag: owned(msg.to_tag()),
            from_uri: req(msg.from_uri()).unwrap_or_default(),
            to_uri: req(msg.to_uri()).unwrap_or_default(),
            request_uri: owned(msg.request_uri()),
            top_branch: owned(msg.top_via_branch()),
            bottom_branch: req(msg.bottom_via_branch()),
            via_count: msg.via_count().min(u16::MAX as usize) as u16,
            require: tag_set(msg.list(HeaderId::Require)),
            proxy_require: if request {
                tag_set(msg.list(HeaderId::ProxyRequire))
            } else {
                Tags::new()
            },
            supported: if request {
                tag_set(msg.list(HeaderId::Supported))
            } else {
                Tags::new()
            },
            unsupported: tag_set(msg.list(HeaderId::Unsupported)),
            allow_update: msg.list(HeaderId::Allow).any(|m| m == b"UPDATE"),
            has_allow: msg.header(HeaderId::Allow).is_some()
                || msg.values(HeaderId::Allow).next().is_some(),
            demand: msg.precondition(),
            has_sdp,
            sdp_origin: if initial {
                sdp_bytes.and_then(sdp_origin)
            } else {
                None
            },
            h2_fingerprint: if initial {
                h2_fingerprint(msg, sdp_bytes)
            } else {
                0
            },
            rseq: msg.header(HeaderId::RSeq).and_then(parse_u32),
            rack: msg
                .header(HeaderId::RAck)
                .filter(|_| request)
                .and_then(parse_rack),
            user_agent: owned(ua),
            session_id: msg
                .header(HeaderId::SessionId)
                .filter(|_| request)
                .and_then(|v| {
                    let v = v.split(|&b| b == b';').next().unwrap_or(v).trim_ascii();
                    (!v.is_empty()).then(|| String::from_utf8_lossy(v).to_ascii_lowercase().into())
                }),
            icid: msg
                .header(HeaderId::PChargingVector)
                .filter(|_| request)
                .and_then(icid_value),
            x_cid: if request {
                owned(
                    msg.header_named(b"X-CID")
                        .or_else(|| msg.header_named(b"X-Call-ID"))
                        .filter(|v| !v.is_empty()),
                )
            } else {
                None
            },
            warning: owned(msg.header(HeaderId::Warning)),
            reason: owned(msg.header(HeaderId::Reason)),
            subscriber: if request {
                owned(
                    msg.header_named(b"P-Served-User")
                        .or_else(|| msg.header(HeaderId::PAssertedIdentity))
                        .map(|v| crate::sip::name_addr(v).0),
                )
                .or_else(|| owned(msg.from_uri()))
                .unwrap_or_default()
            } else {
                Box::default()
            },
            visited_network: req(msg.header_named(b"P-Visited-Network-ID")),
            access_type: msg
                .header(HeaderId::PAccessNetworkInfo)
                .filter(|_| request)
                .map(|v| {
                    let t = v.split(|&b| b == b';').next().unwrap_or(v).trim_ascii();
                    String::from_utf8_lossy(t).into()
                }),
            sdp_media: if request {
                sdp_bytes.map(sdp_media)
            } else {
                None
            },
            session_level_precondition: session_level,
            has_precondition_lines: any_lines,
            precondition_failure: failure,
            via_hosts: if request {
                msg.list(HeaderId::Via)
                    .map(|v| {
                        String::from_utf8_lossy(via_host(v))
                            .to_ascii_lowercase()
                            .into()
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        self.status.is_none()
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
fn parse_rack(v: &[u8]) -> Option<(u32, u32, Box<str>)> {
    let s = std::str::from_utf8(v).ok()?;
    let mut it = s.split_ascii_whitespace();
    let rseq = it.next()?.parse().ok()?;
    let cseq = it.next()?.parse().ok()?;
    let m = it.next()?;
    Some((rseq, cseq, m.into()))
}

/// The `icid-value` parameter of a P-Charging-Vector value.
fn icid_value(v: &[u8]) -> Option<Box<str>> {
    for p in v.split(|&b| b == b';') {
        let p = p.trim_ascii();
        if p.len() > 11 && p[..11].eq_ignore_ascii_case(b"icid-value=") {
            let val = p[11..].trim_ascii();
            let val = val.strip_prefix(b"\"").unwrap_or(val);
            let val = val.strip_suffix(b"\"").unwrap_or(val);
            if !val.is_empty() {
                return Some(String::from_utf8_lossy(val).into());
            }
        }
    }
    None
}

fn lines(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
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
    #[allow(deprecated)]
    std::hash::SipHasher::new_with_keys(0x6832_6670, 0x7369_7061)
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
    for hd in msg.headers() {
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
