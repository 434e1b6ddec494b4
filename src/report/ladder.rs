//! The call ladder of one session: hosts as columns, one arrow per SIP
//! message, drawn as SVG (report.html) or as fixed-width text
//! (`sipaudit flow`). Owns the per-message summary a ladder needs
//! ([`LadderMsg`]) and both drawings; it never decides anything about the
//! session (the marks come from its failures.csv rows).
//!
//! Every text here may come from the wire: the SVG is built with maud,
//! which escapes text and attribute values by construction.

use maud::{Markup, html};

use super::rows::FailureRow;
use crate::dialog::SipRecord;

/// One SIP message as a ladder draws it (messages.csv has the same
/// fields, bar the agent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LadderMsg {
    /// Input file index (into the run's file names).
    pub file: u32,
    /// Frame in that file.
    pub frame: u64,
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: i64,
    /// `ip:port` of the sender.
    pub src: String,
    /// `ip:port` of the receiver.
    pub dst: String,
    /// Request method, or the CSeq method of a response.
    pub method: String,
    /// Status of a response.
    pub status: Option<u16>,
    /// CSeq number.
    pub cseq: Option<u32>,
    /// Call-ID.
    pub call_id: String,
    /// Require tags, `;`-joined.
    pub require: String,
    /// Proxy-Require tags, `;`-joined.
    pub proxy_require: String,
    /// Supported tags, `;`-joined.
    pub supported: String,
    /// Unsupported tags, `;`-joined.
    pub unsupported: String,
    /// SDP precondition demand (`mandatory`, `optional`, `none`, `absent`,
    /// `unknown`).
    pub precondition: String,
    /// User-Agent of a request, Server of a response (empty when absent).
    pub agent: String,
    /// A retransmission or capture duplicate (rules.md §A.2).
    pub retransmission: bool,
    /// Frame of the previous message from `src` to `dst` in the same file
    /// (0: none): where this message's TCP segments may start (per-session
    /// pcaps). Set by the caller.
    pub prev_frame: u64,
}

/// The compact form of a [`LadderMsg`] that a run holds for every message
/// of every open session until the session's rank is known (most are then
/// dropped): hosts as [`HostRef`]s, the [`LadderStyle`] as an id into the
/// run's table, and one allocation, the Call-ID's buffer. 80 bytes plus the
/// Call-ID, against eleven `String`s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LadderRec {
    frame: u64,
    ts_ns: i64,
    /// See [`LadderMsg::prev_frame`].
    pub prev_frame: u64,
    /// The sender.
    pub src: HostRef,
    /// The receiver.
    pub dst: HostRef,
    file: u32,
    /// CSeq number, 0 when absent.
    cseq: u32,
    /// Style id (the caller's table).
    style: u32,
    /// Status of a response, [`NO_STATUS`] for a request.
    status: u16,
    /// [`Demand`] as its index in [`DEMANDS`].
    demand: u8,
    /// See [`LadderMsg::retransmission`].
    pub retransmission: bool,
    /// Its Call-ID; a slab slot reused for another message keeps this
    /// buffer ([`LadderRec::fill`]).
    call_id: String,
}

/// An `ip:port` in 8 bytes: an IPv4 address and port inline (bit 63
/// clear), or with bit 63 set the index of an IPv6 one in the caller's
/// table. A scanner's thousands of sources then need no table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HostRef(u64);

const V6_BIT: u64 = 1 << 63;

impl HostRef {
    /// `a` inline when IPv4; else `v6_id()` (called only then) names it.
    pub fn new(a: std::net::SocketAddr, v6_id: impl FnOnce() -> u32) -> HostRef {
        match a {
            std::net::SocketAddr::V4(v4) => {
                HostRef(u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port()))
            }
            std::net::SocketAddr::V6(_) => HostRef(V6_BIT | u64::from(v6_id())),
        }
    }

    /// The address back, looking IPv6 ones up in `v6`.
    pub fn addr(self, v6: &[std::net::SocketAddr]) -> std::net::SocketAddr {
        if self.0 & V6_BIT != 0 {
            return v6[(self.0 & u64::from(u32::MAX)) as usize];
        }
        let ip = std::net::Ipv4Addr::from_bits((self.0 >> 16) as u32);
        std::net::SocketAddr::from((ip, self.0 as u16))
    }
}

/// [`LadderRec::status`] of a request.
const NO_STATUS: u16 = u16::MAX;

use crate::sip::Demand;

const DEMANDS: [Demand; 5] = [
    Demand::Mandatory,
    Demand::Optional,
    Demand::NoneOnly,
    Demand::Absent,
    Demand::Unknown,
];

/// What many messages of a run share, interned once per run: the method,
/// the four option-tag lists (as the record keeps them, `,`-joined) and the
/// agent.
pub struct LadderStyle;

/// A style as the caller interns it: its six fields ([`LadderStyle::of`]).
pub type StyleFields = [Box<str>; 6];

impl LadderStyle {
    /// The six fields of `r`, as [`LadderStyle::hash`] and
    /// [`LadderStyle::matches`] take them.
    pub fn of(r: &SipRecord) -> [&str; 6] {
        [
            r.method.as_str(),
            r.require().as_str(),
            r.proxy_require().as_str(),
            r.supported().as_str(),
            r.unsupported().as_str(),
            r.user_agent().unwrap_or(""),
        ]
    }

    /// A hash of a style's fields (to find it without comparing every
    /// interned one).
    pub fn hash(fields: &[&str; 6]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        fields.hash(&mut h);
        h.finish()
    }

    /// The fields kept, to intern.
    pub fn keep(fields: &[&str; 6]) -> StyleFields {
        fields.map(Box::from)
    }

    /// Whether `kept` is the style of these fields.
    pub fn matches(kept: &StyleFields, fields: &[&str; 6]) -> bool {
        kept.iter()
            .zip(fields)
            .all(|(k, f)| same_bytes(k.as_bytes(), f.as_bytes()))
    }
}

/// `a == b`, eight bytes at a time: these fields are short, and the
/// library `memcmp` on them (what `==` calls, even for the last few bytes)
/// stalled on its masked vector loads: 3.3 % of the samples of a `-j1` run
/// on udp2000-60s, in that one instruction, against 0.1 % for this.
/// Whole-process CPU ×0.986 (paired medians; within the noise).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    if n < 8 {
        // Folded into one word (a loop of byte compares would become a
        // `memcmp` call again).
        let fold = |s: &[u8]| s.iter().fold(0u64, |w, &x| w << 8 | u64::from(x));
        return fold(a) == fold(b);
    }
    // Whole words, then the last eight bytes (overlapping the last word).
    (0..n - 8).step_by(8).all(|i| word(a, i) == word(b, i)) && word(a, n - 8) == word(b, n - 8)
}

impl LadderRec {
    /// The summary of a record whose sender and receiver are `src` and
    /// `dst` and whose style has id `style` (`retransmission` and
    /// `prev_frame` are set by the caller).
    pub fn of(r: &SipRecord, src: HostRef, dst: HostRef, style: u32) -> LadderRec {
        let mut m = LadderRec::default();
        m.fill(r, src, dst, style);
        m
    }

    /// Overwrites every field with [`LadderRec::of`]'s, reusing the Call-ID
    /// buffer: the store's slots are reused message after message, so the
    /// steady state allocates nothing (a `Box<str>` per message, allocated
    /// where the record was built and freed here, cost 4 % of the tracking
    /// thread in `mi_free` alone).
    pub fn fill(&mut self, r: &SipRecord, src: HostRef, dst: HostRef, style: u32) {
        self.frame = r.at.frame;
        self.ts_ns = r.at.ts_ns;
        self.prev_frame = 0;
        self.file = r.at.file;
        self.cseq = r.cseq;
        self.src = src;
        self.dst = dst;
        self.style = style;
        self.status = r.status.unwrap_or(NO_STATUS);
        self.demand = DEMANDS.iter().position(|d| *d == r.demand).unwrap_or(4) as u8;
        self.retransmission = false;
        self.call_id.clear();
        self.call_id.push_str(r.call_id());
    }

    /// Prefetches its Call-ID buffer, which [`LadderRec::fill`] writes next
    /// ([`crate::prefetch`]).
    pub fn prefetch_text(&self) {
        crate::prefetch::bytes(self.call_id.as_bytes(), 2);
    }

    /// Its style id.
    pub fn style(&self) -> u32 {
        self.style
    }

    /// The full summary, looking IPv6 hosts up in `v6`; `style` is its
    /// style as interned.
    pub fn expand(&self, v6: &[std::net::SocketAddr], style: &StyleFields) -> LadderMsg {
        let [
            method,
            require,
            proxy_require,
            supported,
            unsupported,
            agent,
        ] = style.each_ref().map(|f| &**f);
        let tags = |t: &str| t.replace(',', ";");
        LadderMsg {
            file: self.file,
            frame: self.frame,
            ts_ns: self.ts_ns,
            src: super::addr_text(&self.src.addr(v6)),
            dst: super::addr_text(&self.dst.addr(v6)),
            method: method.to_string(),
            status: (self.status != NO_STATUS).then_some(self.status),
            cseq: (self.cseq > 0).then_some(self.cseq),
            call_id: self.call_id.to_string(),
            require: tags(require),
            proxy_require: tags(proxy_require),
            supported: tags(supported),
            unsupported: tags(unsupported),
            precondition: DEMANDS[self.demand as usize].as_str().to_string(),
            agent: agent.to_string(),
            retransmission: self.retransmission,
            prev_frame: self.prev_frame,
        }
    }
}

impl LadderMsg {
    /// `INVITE` or `420 INVITE`.
    pub fn label(&self) -> String {
        match self.status {
            Some(s) => format!("{s} {}", self.method),
            None => self.method.clone(),
        }
    }

    /// The capability signals on the message: option tags and the SDP
    /// demand, empty ones left out.
    pub fn signals(&self) -> String {
        let mut v = Vec::new();
        for (name, tags) in [
            ("Req", &self.require),
            ("PReq", &self.proxy_require),
            ("Sup", &self.supported),
            ("Unsup", &self.unsupported),
        ] {
            if !tags.is_empty() {
                v.push(format!("{name}: {}", tags.replace(';', ",")));
            }
        }
        if !matches!(self.precondition.as_str(), "" | "absent") {
            v.push(format!("SDP precondition: {}", self.precondition));
        }
        v.join("  ")
    }

    fn is_failure(&self) -> bool {
        self.status.is_some_and(|s| s >= 300)
    }
}

/// What a ladder marks on a message: the failures and retries of the
/// session's failures.csv rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkKind {
    /// A failure response F.
    Failure,
    /// A retry N.
    Retry,
}

/// A mark on the message captured at (file, frame).
#[derive(Debug, Clone)]
pub struct Mark {
    /// Input file index.
    pub file: u32,
    /// Frame.
    pub frame: u64,
    /// Failure or retry.
    pub kind: MarkKind,
    /// What to say: the failure class and refused tags, or the link rule,
    /// its confidence and what the retry dropped.
    pub text: String,
}

/// The marks of a session's failures.csv rows; `file_index` maps a file
/// name to its index.
pub fn marks(rows: &[FailureRow], file_index: impl Fn(&str) -> Option<u32>) -> Vec<Mark> {
    let mut out = Vec::new();
    for r in rows {
        if let Some(file) = file_index(&r.failure_file.0) {
            let mut text = format!("failure: {}", r.failure_class.0);
            if !r.refused.0.is_empty() {
                text.push_str(&format!(", refused {}", r.refused.0));
            }
            out.push(Mark {
                file,
                frame: r.failure_frame,
                kind: MarkKind::Failure,
                text,
            });
        }
        if let (Some(frame), Some(file)) = (r.retry_frame, file_index(&r.retry_file.0)) {
            let mut text = format!("retry {} ({})", r.retry_link, r.link_confidence);
            if !r.dropped.0.is_empty() {
                text.push_str(&format!(", dropped {}", r.dropped.0));
            }
            text.push_str(&format!(": {}", r.verdict));
            out.push(Mark {
                file,
                frame,
                kind: MarkKind::Retry,
                text,
            });
        }
    }
    out
}

/// The mark of message `m`, if any (a failure mark only on a failure
/// response, a retry mark only on a request).
fn mark_of<'a>(m: &LadderMsg, marks: &'a [Mark]) -> Option<&'a Mark> {
    marks.iter().find(|k| {
        k.file == m.file
            && k.frame == m.frame
            && !m.retransmission
            && match k.kind {
                MarkKind::Failure => m.is_failure(),
                MarkKind::Retry => m.status.is_none(),
            }
    })
}

/// The hosts of a ladder in order of first appearance, each with the first
/// agent (User-Agent or Server) it sent.
pub fn hosts(msgs: &[LadderMsg]) -> Vec<(String, String)> {
    let mut hosts: Vec<(String, String)> = Vec::new();
    for m in msgs {
        for (addr, agent) in [(&m.src, &m.agent), (&m.dst, &String::new())] {
            match hosts.iter_mut().find(|h| &h.0 == addr) {
                Some(h) if h.1.is_empty() => h.1 = agent.clone(),
                Some(_) => {}
                None => hosts.push((addr.clone(), agent.clone())),
            }
        }
    }
    hosts
}

/// Seconds since the first message, `+1.234s`.
fn rel(ts: i64, t0: i64) -> String {
    let ms = (ts - t0).div_euclid(1_000_000);
    format!("+{}.{:03}s", ms / 1000, ms % 1000)
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

const COL_W: i64 = 240;
const LEFT: i64 = 70;
const TOP: i64 = 64;
const ROW_H: i64 = 50;

/// The ladder as an SVG element. Every arrow is a `<g class="msg">` with
/// `data-file` and `data-frame`, in message order.
pub fn svg(msgs: &[LadderMsg], marks: &[Mark]) -> Markup {
    let hosts = hosts(msgs);
    let x = |addr: &str| {
        let i = hosts.iter().position(|h| h.0 == addr).unwrap_or(0) as i64;
        LEFT + COL_W / 2 + i * COL_W
    };
    let width = LEFT + COL_W * hosts.len().max(1) as i64;
    let height = TOP + ROW_H * msgs.len() as i64 + 20;
    let t0 = msgs.first().map_or(0, |m| m.ts_ns);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="ladder" width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) font-family="sans-serif" font-size="11" {
            @for (i, (addr, agent)) in hosts.iter().enumerate() {
                @let cx = LEFT + COL_W / 2 + i as i64 * COL_W;
                rect x=(cx - COL_W / 2 + 6) y="4" width=(COL_W - 12) height="40" rx="4"
                    fill="#eef2f7" stroke="#8899aa" {}
                text x=(cx) y="20" text-anchor="middle" font-weight="bold" { (addr) }
                text x=(cx) y="36" text-anchor="middle" fill="#445" { (clip(agent, 38)) }
                line x1=(cx) y1="44" x2=(cx) y2=(height - 4) stroke="#bbb" stroke-dasharray="4 3" {}
            }
            @for (i, m) in msgs.iter().enumerate() {
                @let y = TOP + 18 + i as i64 * ROW_H;
                @let (x1, x2) = (x(&m.src), x(&m.dst));
                @let mark = mark_of(m, marks);
                @let colour = match (mark.map(|k| &k.kind), m.is_failure()) {
                    (Some(MarkKind::Failure), _) | (None, true) => "#c0392b",
                    (Some(MarkKind::Retry), _) => "#1e7d32",
                    _ => "#234",
                };
                @let dir = if x2 >= x1 { 1 } else { -1 };
                @let mid = if x1 == x2 { x1 + 40 } else { (x1 + x2) / 2 };
                g class=(if m.retransmission { "msg retrans" } else { "msg" })
                    data-file=(m.file) data-frame=(m.frame)
                    opacity=(if m.retransmission { "0.35" } else { "1" }) {
                    title { (format!("frame {} · Call-ID {}", m.frame, m.call_id)) }
                    text x="4" y=(y + 4) fill="#667" { (rel(m.ts_ns, t0)) }
                    @if x1 == x2 {
                        path d=(format!("M{x1} {y} h30 v10 h-30")) fill="none" stroke=(colour) stroke-width="1.5" {}
                    } @else {
                        line x1=(x1) y1=(y) x2=(x2 - dir * 6) y2=(y) stroke=(colour) stroke-width="1.5" {}
                        polygon points=(format!("{x2},{y} {},{} {},{}", x2 - dir * 8, y - 4, x2 - dir * 8, y + 4))
                            fill=(colour) {}
                    }
                    text x=(mid) y=(y - 5) text-anchor="middle" fill=(colour) font-weight="bold" {
                        (m.label())
                        @if let Some(c) = m.cseq { " · CSeq " (c) }
                        @if m.retransmission { " (retransmission)" }
                    }
                    text x=(mid) y=(y + 13) text-anchor="middle" fill="#345" { (clip(&m.signals(), 70)) }
                    @if let Some(k) = mark {
                        text x=(mid) y=(y + 26) text-anchor="middle" fill=(colour) font-style="italic" {
                            (clip(&k.text, 80))
                        }
                    }
                }
            }
        }
    }
}

/// Width of a host's lane in [`text`].
const LANE: usize = 26;

/// The ladder as fixed-width text, one message per line: the host legend,
/// then `time  lanes  label  signals  mark`. With `colour`, failures are
/// red, retries green and retransmissions dim (ANSI).
pub fn text(msgs: &[LadderMsg], marks: &[Mark], colour: bool) -> String {
    let hosts = hosts(msgs);
    let mut out = String::new();
    for (i, (addr, agent)) in hosts.iter().enumerate() {
        out.push_str(format!("{}  {addr}  {agent}", lane_name(i)).trim_end());
        out.push('\n');
    }
    out.push('\n');
    let t0 = msgs.first().map_or(0, |m| m.ts_ns);
    let mut head = format!("{:>10} ", "");
    for i in 0..hosts.len() {
        head.push_str(&centre(&lane_name(i), LANE));
    }
    out.push_str(head.trim_end());
    out.push('\n');
    for m in msgs {
        let col = |a: &str| hosts.iter().position(|h| h.0 == a).unwrap_or(0);
        let (lanes, label) = arrow(m, hosts.len(), col(&m.src), col(&m.dst));
        let mut line = format!("{:>10} {lanes}", rel(m.ts_ns, t0));
        let line_end = line.trim_end().len();
        line.truncate(line_end);
        for extra in [label, m.signals()] {
            if !extra.is_empty() {
                line.push_str("  ");
                line.push_str(&extra);
            }
        }
        out.push_str(&finish_line(line, m, mark_of(m, marks), colour));
        out.push('\n');
    }
    out
}

/// The lanes of `n` hosts with message `m`'s arrow from lane `a` to lane
/// `b`, its label written on the arrow when there is room; and the label
/// when there is not (it then follows the lanes).
fn arrow(m: &LadderMsg, n: usize, a: usize, b: usize) -> (String, String) {
    const W: usize = LANE;
    let mut lanes: Vec<char> = (0..n * W)
        .map(|p| if p % W == W / 2 { '|' } else { ' ' })
        .collect();
    let (ca, cb) = (a * W + W / 2, b * W + W / 2);
    let (lo, hi) = (ca.min(cb), ca.max(cb));
    if ca == cb {
        // Sent to its own address (a proxy looping a request back to
        // itself): a loop beside the lane, as the SVG draws it; the label
        // follows the lanes.
        lanes[ca + 1..ca + 4].copy_from_slice(&['<', '-', '+']);
    } else {
        for c in &mut lanes[lo + 1..hi] {
            *c = '-';
        }
        if cb > ca {
            lanes[cb - 1] = '>';
        } else {
            lanes[cb + 1] = '<';
        }
    }
    let mut label = m.label();
    if let Some(c) = m.cseq {
        label.push_str(&format!(" ({c})"));
    }
    if hi > lo + 4 {
        let room = hi - lo - 3;
        let l: Vec<char> = clip(&label, room).chars().collect();
        let start = lo + 2 + (room - l.len()) / 2;
        lanes[start..start + l.len()].copy_from_slice(&l);
        label.clear();
    }
    (lanes.iter().collect(), label)
}

/// `line` with message `m`'s mark and retransmission note after it, in
/// its ANSI colour when `colour` asks for one.
fn finish_line(mut line: String, m: &LadderMsg, mark: Option<&Mark>, colour: bool) -> String {
    if let Some(k) = mark {
        line.push_str("  <= ");
        line.push_str(&k.text);
    }
    if m.retransmission {
        line.push_str("  [retransmission]");
    }
    let code = match (mark.map(|k| &k.kind), m.is_failure(), m.retransmission) {
        (_, _, true) => "2",
        (Some(MarkKind::Retry), _, _) => "32",
        (Some(MarkKind::Failure), _, _) | (None, true, _) => "31",
        _ => "",
    };
    if colour && !code.is_empty() {
        line = format!("\x1b[{code}m{line}\x1b[0m");
    }
    line
}

/// `A`, `B`, ... `Z`, then `H27`, `H28`, ...
fn lane_name(i: usize) -> String {
    if i < 26 {
        char::from(b'A' + i as u8).to_string()
    } else {
        format!("H{}", i + 1)
    }
}

fn centre(s: &str, w: usize) -> String {
    let n = s.chars().count().min(w);
    let left = (w - n) / 2;
    format!("{}{}{}", " ".repeat(left), s, " ".repeat(w - n - left))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `same_bytes` is `==`, for every length around its word size
        /// and for slices that differ in one byte anywhere.
        #[test]
        fn same_bytes_is_equality(
            a in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            flip in proptest::option::of((0usize..40, 1u8..=255)),
        ) {
            let mut b = a.clone();
            if let Some((i, x)) = flip.filter(|&(i, _)| i < b.len()) {
                b[i] ^= x;
            }
            proptest::prop_assert_eq!(same_bytes(&a, &b), a == b);
            proptest::prop_assert_eq!(same_bytes(&a, &a[..a.len() / 2]), a.is_empty());
        }
    }

    fn msg(src: &str, dst: &str, method: &str, status: Option<u16>, frame: u64) -> LadderMsg {
        LadderMsg {
            frame,
            ts_ns: frame as i64 * 1_000_000,
            src: src.into(),
            dst: dst.into(),
            method: method.into(),
            status,
            cseq: Some(1),
            precondition: "absent".into(),
            ..LadderMsg::default()
        }
    }

    #[test]
    fn a_compact_record_expands_to_the_full_summary() {
        let a: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let b: std::net::SocketAddr = "[2001:db8::2]:5080".parse().unwrap();
        let text = "INVITE sip:b@y SIP/2.0\r\nCall-ID: cid-é\r\nCSeq: 7 INVITE\r\n\
            Require: precondition\r\nProxy-Require: sec-agree\r\nSupported: 100rel, timer\r\n\
            User-Agent: 3:<script>:\r\n\r\n";
        let rec = SipRecord::from_text(text, 9, 5_000, a, b);
        let (ha, hb) = (HostRef::new(a, || unreachable!()), HostRef::new(b, || 0));
        assert_eq!((ha.addr(&[]), hb.addr(&[b])), (a, b));
        let mut c = LadderRec::of(&rec, ha, hb, 0);
        c.retransmission = true;
        c.prev_frame = 4;
        let key = LadderStyle::keep(&LadderStyle::of(&rec));
        assert!(LadderStyle::matches(&key, &LadderStyle::of(&rec)));
        let m = c.expand(&[b], &key);
        let want = LadderMsg {
            file: 0,
            frame: 9,
            ts_ns: 5_000,
            src: "192.0.2.1:5060".into(),
            dst: "[2001:db8::2]:5080".into(),
            method: "INVITE".into(),
            status: None,
            cseq: Some(7),
            call_id: "cid-é".into(),
            require: "precondition".into(),
            proxy_require: "sec-agree".into(),
            supported: "100rel;timer".into(),
            unsupported: String::new(),
            precondition: "absent".into(),
            agent: "3:<script>:".into(),
            retransmission: true,
            prev_frame: 4,
        };
        assert_eq!(m, want);
        assert_eq!(std::mem::size_of::<LadderRec>(), 80);
        let resp = "SIP/2.0 420 Bad Extension\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\n\
            Unsupported: precondition\r\nServer: s\r\n\r\n";
        let rec = SipRecord::from_text(resp, 10, 6_000, b, a);
        assert!(!LadderStyle::matches(&key, &LadderStyle::of(&rec)));
        let key = LadderStyle::keep(&LadderStyle::of(&rec));
        let m = LadderRec::of(&rec, hb, ha, 0).expand(&[b], &key);
        assert_eq!(
            (m.status, m.unsupported.as_str()),
            (Some(420), "precondition")
        );
        assert_eq!(
            (m.src.as_str(), m.agent.as_str()),
            ("[2001:db8::2]:5080", "s")
        );
    }

    #[test]
    fn hostile_wire_text_is_escaped_in_the_svg() {
        let mut m = msg("1.1.1.1:5060", "2.2.2.2:5060", "INVITE", None, 1);
        m.agent = "<script>alert(1)</script>".into();
        m.call_id = "\"><svg onload=alert(2)>".into();
        m.require = "<b>".into();
        let s = svg(&[m], &[]).into_string();
        assert!(!s.contains("<script>"), "{s}");
        assert!(!s.contains("<svg onload"), "{s}");
        assert!(!s.contains("<b>"), "{s}");
        assert!(s.contains("&lt;script&gt;"));
    }

    #[test]
    fn arrows_follow_message_order_and_marks_land_on_their_message() {
        let msgs = vec![
            msg("a:1", "b:2", "INVITE", None, 1),
            msg("b:2", "a:1", "INVITE", Some(420), 2),
            msg("a:1", "b:2", "INVITE", None, 3),
        ];
        let marks = vec![
            Mark {
                file: 0,
                frame: 2,
                kind: MarkKind::Failure,
                text: "failure: REMOTE_LACKS_PRECONDITION".into(),
            },
            Mark {
                file: 0,
                frame: 3,
                kind: MarkKind::Retry,
                text: "retry H0 (1)".into(),
            },
        ];
        let s = svg(&msgs, &marks).into_string();
        let frames: Vec<&str> = s
            .split("data-frame=\"")
            .skip(1)
            .map(|x| x.split('"').next().unwrap())
            .collect();
        assert_eq!(frames, ["1", "2", "3"]);
        assert!(s.contains("failure: REMOTE_LACKS_PRECONDITION"));
        let t = text(&msgs, &marks, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A  a:1");
        assert!(
            lines[4].contains("-INVITE (1)-") && lines[4].contains('>'),
            "{t}"
        );
        assert!(
            lines[5].contains('<') && lines[5].contains("<= failure"),
            "{t}"
        );
        assert!(lines[6].contains("<= retry H0 (1)"), "{t}");
        assert!(!t.contains('\x1b'));
        assert!(text(&msgs, &marks, true).contains("\x1b[31m"));
    }

    /// A message sent to its own address (six sessions of the public
    /// corpus have one) is a loop beside its lane, with the label after the
    /// lanes; `flow` used to panic on it (a lane range from 66 to 65).
    #[test]
    fn a_message_to_its_own_address_is_a_loop_beside_its_lane() {
        let msgs = vec![
            msg("a:1", "b:2", "REGISTER", None, 1),
            msg("b:2", "b:2", "REGISTER", None, 2),
            msg("b:2", "a:1", "REGISTER", Some(200), 3),
        ];
        let t = text(&msgs, &[], false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 7, "{t}");
        assert!(lines[5].ends_with("|<-+  REGISTER (1)"), "{t}");
        assert!(!lines[5].contains("-->"), "{t}");
        assert!(lines[6].contains("|<---200 REGISTER (1)-----|"), "{t}");
        let s = svg(&msgs, &[]).into_string();
        assert!(s.contains("h30 v10 h-30"), "the SVG's loop");
    }
}
