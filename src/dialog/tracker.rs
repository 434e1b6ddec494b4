//! The session tracker: transactions, attempts, dialogs and sessions
//! (rules.md §A.1–§A.5), rebuilt from [`SipRecord`]s fed in merged
//! capture-time order.
//!
//! Objects and what keys them (a table to check against rules.md §A.1):
//!
//! | object | key | where |
//! |---|---|---|
//! | hop transaction | Call-ID, CSeq number and method, top Via branch (RFC 2543 peers: no branch, the From tag stands in) | `txns` |
//! | attempt | Call-ID, From tag, CSeq number, method of an initial request (no To tag, not ACK/CANCEL), plus the bottom Via branch (a different UAC branch is a separate attempt, H14) | `attempt_keys` |
//! | dialog | Call-ID + {From tag, To tag}, direction-free | `dialogs` |
//! | session | a chain of attempts linked as retries (H0, H0', H1, H2, H3, AS-leg) | slots |
//!
//! Retry linking (§A.3): an attempt P whose final response F is 3xx–6xx
//! opens a window (W0 = 32 s) in which later initial requests N of the same
//! method are scored by the rules of [`Rule`]; P takes the candidate with the
//! highest confidence, then the earliest, when its window closes (at once for
//! an H0 candidate: nothing can beat it), and flags `AMBIGUOUS_LINK` when
//! another candidate's confidence was within 0.1 of the chosen one's. An N is linked at most once; it becomes the root of
//! a session of its own once no open window can still claim it.
//!
//! Memory: a session is finalised once it has been idle for W0 of capture
//! time with every attempt answered (or timed out) and no confirmed INVITE
//! dialog left open (an open one is kept until BYE, or [`DIALOG_IDLE_NS`] of
//! silence); its state is then dropped. Messages wait in a FIFO until their
//! session is known (at most about W0), so the caller gets them back in the
//! order they were fed, each with its session id.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};

use rustc_hash::FxHashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use super::ident;
use super::record::{Method, SipRecord};
use super::windows::{WinKey, Windows};
use super::{RETRANSMISSION_WINDOW_NS, Retransmissions};

/// W0 of rules.md §A.3: the H0/H0' retry window (policy `window_s`, 32 s).
pub const W0_NS: i64 = 32_000_000_000;
/// W1 of rules.md §A.3: the window of H1–H3 and AS-leg links (10 s).
pub const W1_NS: i64 = 10_000_000_000;
/// W1 for out-of-dialog MESSAGE (rules.md G.11).
pub const W1_MESSAGE_NS: i64 = 5_000_000_000;
/// `skew_tol` of rules.md §A.2: 50 ms.
pub const SKEW_NS: i64 = 50_000_000;
/// Timer B (64*T1): an INVITE without final response this long is TIMEOUT.
pub const TIMER_B_NS: i64 = 32_000_000_000;
/// A Session-ID, icid-value or X-CID value carried by this many initial
/// requests within W0 is not evidence of a B2BUA leg (it is constant, not
/// per call): it no longer relates or links sessions.
pub const CORR_MAX: usize = 8;
/// A session whose every dialog was ended by an answered BYE, with no
/// decision pending, is written this long (4 s of capture time) after its
/// last message instead of W0: copies at other hops and early
/// retransmissions still join it; later ones find it through a compact key.
pub const ENDED_GRACE_NS: i64 = 4_000_000_000;
/// How many W0 after a failure a same-Call-ID request is still flagged as
/// its late retry (CANDIDATE_LATE_RETRY, rules.md §G.19).
pub const LATE_WATCH: i64 = 10;
/// A confirmed INVITE dialog with no message for this long (2 h of capture
/// time) is given up: its BYE was not captured.
pub const DIALOG_IDLE_NS: i64 = 7_200_000_000_000;

/// How a retry was linked to the failed attempt before it (rules.md §A.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Same Call-ID and From tag.
    H0,
    /// Same Call-ID, new From tag.
    H0Prime,
    /// New Call-ID, same From URI and tag, same To URI.
    H1,
    /// New Call-ID and tag; same identities; differs only in capabilities.
    H2,
    /// Identities equal after E.164 normalisation.
    H3,
    /// B2BUA legs tied by Session-ID, icid-value or X-CID.
    AsLeg,
}

impl Rule {
    /// The report spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::H0 => "H0",
            Rule::H0Prime => "H0'",
            Rule::H1 => "H1",
            Rule::H2 => "H2",
            Rule::H3 => "H3",
            Rule::AsLeg => "AS-leg",
        }
    }

    fn window(self, method: &Method, w0: i64) -> i64 {
        match self {
            Rule::H0 | Rule::H0Prime => w0,
            _ if *method == Method::Message => W1_MESSAGE_NS,
            _ => W1_NS,
        }
    }
}

/// How a session ended (rules.md §D.3, from its last attempt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// A 2xx final response.
    Established,
    /// Any other final 3xx–6xx.
    Failed,
    /// The UAC cancelled (487, or a failure that crossed the CANCEL).
    Cancelled,
    /// A 408, or no final response although the capture runs on past
    /// Timer B.
    Timeout,
    /// No final response and the capture ends too early to say; or the
    /// dialog's start is not in the capture.
    Truncated,
}

impl Outcome {
    /// The report spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Established => "ESTABLISHED",
            Outcome::Failed => "FAILED",
            Outcome::Cancelled => "CANCELLED",
            Outcome::Timeout => "TIMEOUT",
            Outcome::Truncated => "TRUNCATED",
        }
    }
}

/// A retry link of a finished session.
#[derive(Clone, Debug)]
pub struct Link {
    /// Index of the failed attempt P in [`SessionSummary::attempts`].
    pub from: usize,
    /// Index of the retry N.
    pub to: usize,
    /// The rule that linked them.
    pub rule: Rule,
    /// Its confidence (rules.md §A.3).
    pub confidence: f32,
    /// Whether P had another candidate within 0.1 of this link's
    /// confidence (`AMBIGUOUS_LINK`).
    pub ambiguous: bool,
    /// The highest CSeq the UAC sent in N's Call-ID with N's From tag before
    /// N (rules.md §A.3 `max_uac_cseq`), for H0/H0' links.
    pub max_uac_cseq: Option<u32>,
}

/// One attempt of a finished session.
#[derive(Clone, Debug)]
pub struct AttemptSummary {
    /// The initial request, as the UA sent it (the copy with the fewest
    /// Vias, rules.md §A.6).
    pub request: SipRecord,
    /// The final response (the first one seen; 2xx preferred over nothing).
    pub final_response: Option<SipRecord>,
    /// When the UAC sent CANCEL.
    pub cancel_ns: Option<i64>,
    /// To tags of the early dialogs (1xx with a To tag), in order.
    pub early_tags: Vec<Box<str>>,
    /// To tags of 2xx responses, in order.
    pub confirmed_tags: Vec<Box<str>>,
    /// Whether the capture does not hold the dialog's start (an in-dialog
    /// request with no known dialog, rules.md §A.1).
    pub start_missing: bool,
    /// Provisional (101–199) and 2xx responses, first copy of each
    /// (status, To tag, RSeq), in order.
    pub answers: Vec<SipRecord>,
    /// Requests inside the attempt's dialogs (PRACK, UPDATE, re-INVITE,
    /// BYE, INFO, ...; not ACK), each with its final response.
    pub in_dialog: Vec<InDialogTxn>,
    /// Whether an ACK for the non-2xx final response was seen.
    pub acked_failure: bool,
    /// Sources the final response was captured from (one per hop; the
    /// first is the hop nearest the responder, rules.md §C attribution).
    pub final_sources: Vec<SocketAddr>,
    /// A later request of the same Call-ID, From tag and method was sent
    /// more than 50 ms before the final response (rules.md D4).
    pub premature_retry: bool,
    /// A request with the same identities came after the window of the
    /// rule it would have matched (rules.md G.19).
    pub late_candidate: bool,
    /// A later B2BUA leg of this request (same Session-ID, icid-value or
    /// X-CID) no longer requires precondition or 100rel, or lowered the SDP
    /// precondition demand (rules.md §A.6).
    pub leg_relaxed: bool,
}

/// One request inside a dialog, with its final response.
#[derive(Clone, Debug)]
pub struct InDialogTxn {
    /// The request (first copy).
    pub request: SipRecord,
    /// Its final response (first one).
    pub final_response: Option<SipRecord>,
}

/// A finished session, as the report and the rules need it.
#[derive(Clone, Debug)]
pub struct SessionSummary {
    /// Stable id, unique in the run (numbered in the order sessions are
    /// recognised as such, from 1).
    pub id: u64,
    /// Attempts in time order.
    pub attempts: Vec<AttemptSummary>,
    /// Retry links between them.
    pub links: Vec<Link>,
    /// First message time.
    pub start_ns: i64,
    /// Last message time.
    pub end_ns: i64,
    /// Every Call-ID of the session, in order of appearance.
    pub call_ids: Vec<Box<str>>,
    /// Session flags found while tracking (rules.md §A: `AMBIGUOUS_LINK`,
    /// `MID_DIALOG`, `FORKED_MULTI_ANSWER`, `CANCEL_BEFORE_1XX`,
    /// `CANCEL_RACE_ANSWERED`, ...), sorted.
    pub flags: BTreeSet<String>,
    /// The outcome, from the last attempt.
    pub outcome: Outcome,
    /// Its final status code.
    pub final_status: Option<u16>,
    /// Other sessions tied to this one by Session-ID, icid-value or X-CID
    /// (B2BUA legs), by id, sorted.
    pub related: Vec<u64>,
    /// Capture time the batch had reached when the session was finalised
    /// (the end of the batch for sessions still open then): how far past
    /// the session the capture is known to extend (rules.md D.3 items 4–5).
    pub observed_until: i64,
}

/// An anomaly found while tracking (written to anomalies.csv).
#[derive(Clone, Debug)]
pub struct TrackAnomaly {
    /// Input file index.
    pub file: u32,
    /// Frame.
    pub frame: u64,
    /// Stable id (`clock_skew`, `out_of_order`, `orphan_response`).
    pub kind: &'static str,
    /// Human detail.
    pub detail: String,
    /// Another message the anomaly refers to (file index, frame): for
    /// `clock_skew`, the request.
    pub related: Option<(u32, u64)>,
}

type Id = u64;

fn h<T: Hash + ?Sized>(parts: &T) -> u64 {
    let mut s = super::stable_hasher(0x7472_6163_6b65_7221);
    parts.hash(&mut s);
    s.finish()
}

struct Attempt {
    slot: Id,
    request: SipRecord,
    final_response: Option<Box<SipRecord>>,
    got_1xx: bool,
    cancel_ns: Option<i64>,
    early_tags: Vec<Box<str>>,
    confirmed_tags: Vec<Box<str>>,
    /// Confirmed INVITE dialogs not yet ended by BYE.
    open_dialogs: u32,
    start_missing: bool,
    /// Index keys registered for this attempt (removed with it).
    keys: Vec<IndexKey>,
    // --- as a failed P
    /// Window still open (P undecided).
    p_open: bool,
    candidates: Vec<(Id, Rule, f32)>,
    // --- as a retry N
    open_ps: u32,
    /// Every failed attempt that scored this one as a candidate, with its
    /// confidence: a weaker P never takes N from a stronger one still open
    /// (rules.md §A.3, issue 12 item 3).
    offers: Vec<(Id, f32)>,
    linked: Option<(Id, Rule, f32, bool)>,
    decided: bool,
    max_uac_cseq: Option<u32>,
    reliable: Vec<(Box<str>, u32, bool)>,
    answers: Vec<SipRecord>,
    in_dialog: Vec<InDialogTxn>,
    acked_failure: bool,
    /// The To tag of an ACK for a 2xx whose 2xx was not captured: the
    /// dialog was confirmed all the same (issue 12 items 5 and 6).
    acked_2xx: Option<Box<str>>,
    final_sources: Vec<SocketAddr>,
    premature_retry: bool,
    late_candidate: bool,
    leg_relaxed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum IndexKey {
    Txn(u64),
    Attempt(u64),
    Dialog(u64),
    Window(WinKey),
    Corr(u64),
    CallTag(u64),
}

struct Slot {
    parent: Option<Id>,
    session: Option<u64>,
    /// Attempts of this (root) slot.
    attempts: Vec<Id>,
    children: Vec<Id>,
    start_ns: i64,
    last_ns: i64,
    flags: BTreeSet<String>,
    call_ids: Vec<Box<str>>,
    related: BTreeSet<Id>,
    finalized: bool,
    /// Sessions whose failure this one retries too late (G.19).
    late_of: Vec<u64>,
    /// Highest queue position referring to this slot (or a child).
    max_seq: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ref {
    Pending,
    None,
    Slot(Id),
    /// A message of a session already written (a late retransmission).
    Session(u64),
}

struct Queued<P> {
    payload: P,
    slot: Ref,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Timer {
    /// Close the retry window of failed attempt P.
    PClose = 0,
    /// Check whether retry candidate N has become a root.
    Root = 1,
    /// A held response's skew allowance ran out.
    Held = 2,
    /// Check whether a session can be finalised.
    Idle = 3,
}

struct Held {
    seq: u64,
    deadline: i64,
    rec: SipRecord,
}

/// Rebuilds sessions from a merged stream of SIP records. `P` is the
/// caller's per-message payload (e.g. a messages.csv row), handed back with
/// the message's session id in feed order.
pub struct Tracker<P> {
    now: i64,
    retrans: Retransmissions,
    next_id: Id,
    next_session: u64,
    attempts: FxHashMap<Id, Box<Attempt>>,
    slots: FxHashMap<Id, Slot>,
    txns: FxHashMap<u64, (Id, TxnKind)>,
    attempt_keys: FxHashMap<u64, Vec<Id>>,
    dialogs: FxHashMap<u64, Id>,
    /// Highest CSeq sent by (Call-ID, From tag), with its last use.
    max_cseq: FxHashMap<u64, (u32, i64)>,
    /// Open retry windows, by what can link to them.
    windows: Windows,
    /// Failures of finalized sessions watched for a late retry of the same
    /// Call-ID and From tag (rules.md §G.19), up to [`LATE_WATCH`] × W0
    /// after the failure: (method, Call-ID, From tag) → (failure time,
    /// session); 16 bytes of key and value per failure.
    late_watch: FxHashMap<u64, (i64, u64)>,
    late_expiry: VecDeque<(i64, u64)>,
    /// Sessions finished early (every dialog ended by an answered BYE, no
    /// decision pending): their transaction and dialog keys, and their
    /// attempt ids, for W0 after the end, so that a late retransmission
    /// joins the written session instead of starting one, and a B2BUA leg
    /// written later still names it (16 bytes of key and value each).
    ended: FxHashMap<u64, u64>,
    ended_attempts: FxHashMap<Id, u64>,
    ended_expiry: VecDeque<(i64, u64, Id)>,
    /// `consider` calls: the candidate work done (a test hook for the
    /// O(1)-per-request property).
    link_work: u64,
    corr: FxHashMap<u64, Vec<(Id, i64)>>,
    /// Attempts by (Call-ID, From tag).
    call_tag: FxHashMap<u64, Vec<Id>>,
    recent_initial: VecDeque<(i64, Id)>,
    timers: BinaryHeap<Reverse<(i64, Timer, Id)>>,
    held: VecDeque<Held>,
    queue: VecDeque<Queued<P>>,
    queue_base: u64,
    live: BTreeSet<(i64, Id)>,
    gc: VecDeque<(u64, Id)>,
    finished: Vec<SessionSummary>,
    anomalies: Vec<TrackAnomaly>,
    /// Retransmissions seen.
    pub retransmissions: u64,
    /// W0: the H0/H0' retry window, and how long a session stays open after
    /// its last message (policy `window_s`, default [`W0_NS`]).
    w0: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TxnKind {
    Initial,
    Cancel,
    InDialog { bye: bool },
}

impl<P> Default for Tracker<P> {
    fn default() -> Self {
        Tracker {
            now: i64::MIN,
            retrans: Retransmissions::default(),
            next_id: 1,
            next_session: 1,
            attempts: FxHashMap::default(),
            slots: FxHashMap::default(),
            txns: FxHashMap::default(),
            attempt_keys: FxHashMap::default(),
            dialogs: FxHashMap::default(),
            max_cseq: FxHashMap::default(),
            windows: Windows::default(),
            late_watch: FxHashMap::default(),
            late_expiry: VecDeque::new(),
            ended: FxHashMap::default(),
            ended_attempts: FxHashMap::default(),
            ended_expiry: VecDeque::new(),
            link_work: 0,
            corr: FxHashMap::default(),
            call_tag: FxHashMap::default(),
            recent_initial: VecDeque::new(),
            timers: BinaryHeap::new(),
            held: VecDeque::new(),
            queue: VecDeque::new(),
            queue_base: 0,
            live: BTreeSet::new(),
            gc: VecDeque::new(),
            finished: Vec::new(),
            anomalies: Vec::new(),
            retransmissions: 0,
            w0: W0_NS,
        }
    }
}

fn txn_key(r: &SipRecord) -> u64 {
    match &r.top_branch() {
        Some(b) => h(&(0u8, r.call_id(), r.cseq, r.method.as_str(), &**b)),
        None => h(&(1u8, r.call_id(), r.cseq, r.method.as_str(), &r.from_tag())),
    }
}

fn attempt_key(call_id: &str, from_tag: Option<&str>, cseq: u32, m: &Method) -> u64 {
    h(&(call_id, from_tag, cseq, m.as_str()))
}

fn dialog_key(call_id: &str, a: &str, b: &str) -> u64 {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    h(&(call_id, x, y))
}

/// The correlation keys of an initial request with their AS-leg confidence
/// (Session-ID 0.9, icid-value 0.7, X-CID 0.7; rules.md §A.3).
fn corr_keys(r: &SipRecord) -> Vec<(u64, f32)> {
    r.link
        .corr
        .iter()
        .zip([0.9, 0.7, 0.7])
        .filter(|(k, _)| **k != 0)
        .map(|(k, c)| (*k, c))
        .collect()
}

/// Whether initial request `n` could be linked to a failure of `p` under any
/// rule: the same Call-ID, the same identity bucket, or a correlation value
/// in common (a cheap filter before scoring).
fn may_link(p: &SipRecord, n: &SipRecord) -> bool {
    let (a, b) = (&p.link, &n.link);
    (a.from_id == b.from_id && a.to_id == b.to_id)
        || a.corr.iter().any(|&k| k != 0 && b.corr.contains(&k))
        || p.call_id() == n.call_id()
}

/// From and To the same identities after E.164 normalisation (H3).
fn same_identities(p: &SipRecord, n: &SipRecord) -> bool {
    let (a, b) = (&p.link, &n.link);
    if a.from_id != b.from_id || a.to_id != b.to_id {
        return false;
    }
    (a.from == b.from || ident::same_identity(p.from_uri(), n.from_uri()))
        && (a.to == b.to || ident::same_identity(p.to_uri(), n.to_uri()))
}

/// Evidence that a request with a new Call-ID retries a failure with
/// `status` (issue "right in an expert's eyes", item 5): after a 401/407 it
/// carries credentials for a challenged realm; after a 3xx it targets one of
/// its Contacts; after any other failure its capability demand differs.
fn retry_evidence(
    status: u16,
    reply: Option<&super::linkkeys::ReplyKeys>,
    p: &super::linkkeys::LinkKeys,
    n: &super::linkkeys::LinkKeys,
) -> bool {
    match status {
        401 | 407 => {
            let realms = reply.map(|r| &r.realms[..]).unwrap_or(&[]);
            n.realm != 0 && (realms.is_empty() || realms.contains(&n.realm))
        }
        300..=399 => reply.is_some_and(|r| r.contacts.contains(&n.target)),
        _ => p.caps != n.caps,
    }
}

impl<P> Tracker<P> {
    /// A tracker whose W0 (rules.md §A.3, policy `window_s`) is `w0_ns`.
    pub fn with_window(w0_ns: i64) -> Self {
        Tracker {
            w0: w0_ns.max(1),
            ..Tracker::default()
        }
    }

    /// Feeds the next message in merged order with its payload. Returns
    /// whether it is a retransmission or duplicate (rules.md §A.2).
    pub fn push(
        &mut self,
        rec: SipRecord,
        mut payload: P,
        mark: impl FnOnce(&mut P, bool),
    ) -> bool {
        if rec.ts_ns > self.now {
            self.advance(rec.ts_ns);
        }
        let repeat = self.retrans.observe(rec.key, rec.ts_ns);
        self.retransmissions += repeat as u64;
        mark(&mut payload, repeat);
        let seq = self.queue_base + self.queue.len() as u64;
        self.queue.push_back(Queued {
            payload,
            slot: Ref::Pending,
        });
        self.process(seq, rec, repeat);
        repeat
    }

    /// Ends the batch at capture time `end_ns`: every open decision is taken
    /// with what was seen, every session is finalised.
    pub fn finish(&mut self, end_ns: i64) {
        self.advance(end_ns.max(self.now));
        // Held responses are orphans now.
        while let Some(hd) = self.held.pop_front() {
            self.orphan(hd.seq, hd.rec);
        }
        // Close every window, decide every root.
        let mut ps: Vec<Id> = self
            .attempts
            .iter()
            .filter(|(_, a)| a.p_open)
            .map(|(id, _)| *id)
            .collect();
        ps.sort_unstable();
        for p in ps {
            self.close_window(p);
        }
        let mut ns: Vec<Id> = self
            .attempts
            .iter()
            .filter(|(_, a)| !a.decided)
            .map(|(id, _)| *id)
            .collect();
        ns.sort_unstable();
        for n in ns {
            self.try_root(n, true);
        }
        let roots: Vec<Id> = self.live.iter().map(|&(_, s)| s).collect();
        for s in roots {
            self.finalize(s, end_ns);
        }
        self.gc_slots();
    }

    /// Hands back the payloads whose session is known, in feed order.
    pub fn drain(&mut self, mut out: impl FnMut(P, Option<u64>)) {
        while let Some(q) = self.queue.front() {
            let sid = match q.slot {
                Ref::Pending => break,
                Ref::None => None,
                Ref::Session(id) => Some(id),
                Ref::Slot(s) => match self.session_of(s) {
                    Some(id) => Some(id),
                    None => break,
                },
            };
            let q = self.queue.pop_front().expect("front exists");
            self.queue_base += 1;
            out(q.payload, sid);
        }
        self.gc_slots();
    }

    /// Sessions finished since the last call.
    pub fn take_finished(&mut self) -> Vec<SessionSummary> {
        std::mem::take(&mut self.finished)
    }

    /// Anomalies found since the last call.
    pub fn take_anomalies(&mut self) -> Vec<TrackAnomaly> {
        std::mem::take(&mut self.anomalies)
    }

    /// The earliest start among sessions not finished yet: no session
    /// finished later can start before it.
    pub fn min_live_start(&self) -> Option<i64> {
        self.live.first().map(|&(t, _)| t)
    }

    /// Candidate pairs scored so far (a test hook: the work per request
    /// stays bounded whatever the number of open windows).
    pub fn link_work(&self) -> u64 {
        self.link_work
    }

    /// Live state, for tests and memory checks: (attempts, slots, queued
    /// messages).
    pub fn live_counts(&self) -> (usize, usize, usize) {
        (self.attempts.len(), self.slots.len(), self.queue.len())
    }

    // ------------------------------------------------------------ time

    fn advance(&mut self, to: i64) {
        while let Some(&Reverse((t, kind, id))) = self.timers.peek() {
            if t > to {
                break;
            }
            self.timers.pop();
            self.now = self.now.max(t);
            match kind {
                Timer::PClose => {
                    if self.attempts.get(&id).is_some_and(|a| a.p_open) {
                        self.close_window(id);
                    }
                }
                Timer::Root => self.try_root(id, false),
                Timer::Held => {
                    while self.held.front().is_some_and(|hd| hd.deadline <= t) {
                        let hd = self.held.pop_front().expect("front exists");
                        self.orphan(hd.seq, hd.rec);
                    }
                }
                Timer::Idle => self.try_finalize(id),
            }
        }
        self.now = self.now.max(to);
        while self
            .recent_initial
            .front()
            .is_some_and(|&(t, _)| t + SKEW_NS < self.now)
        {
            self.recent_initial.pop_front();
        }
        while let Some(&(until, key, a)) = self.ended_expiry.front() {
            if until >= self.now {
                break;
            }
            self.ended_expiry.pop_front();
            self.ended.remove(&key);
            self.ended_attempts.remove(&a);
        }
        while let Some(&(until, key)) = self.late_expiry.front() {
            if until >= self.now {
                break;
            }
            self.late_expiry.pop_front();
            if self.late_watch.get(&key).is_some_and(|&(fts, _)| {
                fts.saturating_add(LATE_WATCH.saturating_mul(self.w0)) <= until
            }) {
                self.late_watch.remove(&key);
            }
        }
    }

    /// A finalized attempt's failure is watched for a late retry.
    fn watch_late(&mut self, at: &Attempt, session: u64) {
        let Some(f) = &at.final_response else {
            return;
        };
        let status = f.status.unwrap_or(0);
        if status < 300 || at.start_missing || (status == 487 && at.cancel_ns.is_some()) {
            return;
        }
        let key = late_key(&at.request);
        self.late_watch.insert(key, (f.ts_ns, session));
        let until = f.ts_ns.saturating_add(LATE_WATCH.saturating_mul(self.w0));
        self.late_expiry.push_back((until, key));
    }

    fn timer(&mut self, at: i64, kind: Timer, id: Id) {
        self.timers.push(Reverse((at, kind, id)));
    }

    // ------------------------------------------------------------ slots

    fn root_of(&self, mut s: Id) -> Id {
        while let Some(p) = self.slots.get(&s).and_then(|x| x.parent) {
            s = p;
        }
        s
    }

    fn session_of(&self, s: Id) -> Option<u64> {
        self.slots.get(&self.root_of(s)).and_then(|x| x.session)
    }

    fn new_slot(&mut self, start: i64) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        self.slots.insert(
            id,
            Slot {
                parent: None,
                session: None,
                attempts: Vec::new(),
                children: Vec::new(),
                start_ns: start,
                last_ns: start,
                flags: BTreeSet::new(),
                call_ids: Vec::new(),
                related: BTreeSet::new(),
                finalized: false,
                late_of: Vec::new(),
                max_seq: 0,
            },
        );
        self.live.insert((start, id));
        self.timer(start + self.w0, Timer::Idle, id);
        id
    }

    /// Assigns queue position `seq` to slot `s` and notes the activity.
    fn assign(&mut self, seq: u64, s: Id, rec: &SipRecord) {
        let root = self.root_of(s);
        if let Some(q) = self.queue.get_mut((seq - self.queue_base) as usize) {
            q.slot = Ref::Slot(root);
        }
        let slot = self.slots.get_mut(&root).expect("live slot");
        slot.max_seq = slot.max_seq.max(seq);
        slot.last_ns = slot.last_ns.max(rec.ts_ns);
        if !slot.call_ids.iter().any(|c| **c == *rec.call_id()) {
            slot.call_ids.push(rec.call_id().into());
        }
    }

    fn assign_session(&mut self, seq: u64, sid: u64) {
        if let Some(q) = self.queue.get_mut((seq - self.queue_base) as usize) {
            q.slot = Ref::Session(sid);
        }
    }

    fn assign_none(&mut self, seq: u64) {
        if let Some(q) = self.queue.get_mut((seq - self.queue_base) as usize) {
            q.slot = Ref::None;
        }
    }

    fn flag(&mut self, s: Id, f: &str) {
        let root = self.root_of(s);
        if let Some(slot) = self.slots.get_mut(&root) {
            slot.flags.insert(f.to_string());
        }
    }

    /// Merges slot `child`'s tree into the tree of `parent`.
    fn merge(&mut self, parent: Id, child: Id) {
        let (rp, rc) = (self.root_of(parent), self.root_of(child));
        if rp == rc {
            return;
        }
        let c = self.slots.get_mut(&rc).expect("child slot");
        c.parent = Some(rp);
        let attempts = std::mem::take(&mut c.attempts);
        let mut children = std::mem::take(&mut c.children);
        let flags = std::mem::take(&mut c.flags);
        let call_ids = std::mem::take(&mut c.call_ids);
        let related = std::mem::take(&mut c.related);
        let (start, last, max_seq) = (c.start_ns, c.last_ns, c.max_seq);
        self.live.remove(&(start, rc));
        children.push(rc);
        let p = self.slots.get_mut(&rp).expect("parent slot");
        p.attempts.extend(attempts);
        p.children.extend(children);
        p.flags.extend(flags);
        for c in call_ids {
            if !p.call_ids.contains(&c) {
                p.call_ids.push(c);
            }
        }
        p.related.extend(related);
        p.last_ns = p.last_ns.max(last);
        p.max_seq = p.max_seq.max(max_seq);
        if start < p.start_ns {
            let old = p.start_ns;
            p.start_ns = start;
            self.live.remove(&(old, rp));
            self.live.insert((start, rp));
        }
    }

    // ------------------------------------------------------------ messages

    fn process(&mut self, seq: u64, rec: SipRecord, repeat: bool) {
        if rec.is_request() {
            self.request(seq, rec, repeat);
        } else {
            self.response(seq, rec, true);
        }
    }

    fn note_cseq(&mut self, rec: &SipRecord) {
        let k = h(&(rec.call_id(), &rec.from_tag()));
        let e = self.max_cseq.entry(k).or_insert((0, rec.ts_ns));
        e.0 = e.0.max(rec.cseq);
        e.1 = rec.ts_ns;
    }

    fn request(&mut self, seq: u64, rec: SipRecord, repeat: bool) {
        match rec.method {
            Method::Ack | Method::Cancel => {
                let key = attempt_key(rec.call_id(), rec.from_tag(), rec.cseq, &Method::Invite);
                let found = self.attempt_keys.get(&key).and_then(|v| v.last().copied());
                if let Some(a) = found {
                    self.note_cseq(&rec);
                    let at = self.attempts.get_mut(&a).expect("attempt");
                    let slot = at.slot;
                    let non2xx_ack = rec.method == Method::Ack
                        && rec.top_branch().is_some()
                        && rec.top_branch() == at.request.top_branch();
                    if non2xx_ack
                        && at
                            .final_response
                            .as_ref()
                            .is_some_and(|f| f.status.unwrap_or(0) >= 300)
                    {
                        at.acked_failure = true;
                    }
                    if rec.method == Method::Ack && !non2xx_ack && at.final_response.is_none() {
                        self.ack_without_2xx(a, &rec);
                    }
                    if (non2xx_ack || rec.method == Method::Cancel)
                        && (!rec.require().is_empty() || !rec.proxy_require().is_empty())
                    {
                        // rules.md §B.5 L4.
                        self.flag(slot, "REQUIRE_IN_CANCEL_OR_ACK");
                    }
                    self.assign(seq, slot, &rec);
                    if rec.method == Method::Cancel {
                        let tk = txn_key(&rec);
                        self.txns.insert(tk, (a, TxnKind::Cancel));
                        let at = self.attempts.get_mut(&a).expect("attempt");
                        at.keys.push(IndexKey::Txn(tk));
                        if at.cancel_ns.is_none() {
                            at.cancel_ns = Some(rec.ts_ns);
                            if !at.got_1xx {
                                self.flag(slot, "CANCEL_BEFORE_1XX");
                            }
                        }
                    }
                    self.release_held(&rec);
                    return;
                }
                if rec.to_tag().is_some() {
                    self.in_dialog(seq, rec, repeat);
                } else {
                    self.assign_none(seq);
                }
            }
            _ if rec.to_tag().is_some() => self.in_dialog(seq, rec, repeat),
            _ => self.initial(seq, rec),
        }
    }

    /// Slot `s` holds a request that retries the failure of session `of`
    /// too late to be linked: flagged, and related to it.
    fn late_retry(&mut self, s: Id, of: Option<u64>) {
        self.flag(s, "CANDIDATE_LATE_RETRY");
        let root = self.root_of(s);
        if let (Some(sid), Some(slot)) = (of, self.slots.get_mut(&root)) {
            slot.late_of.push(sid);
        }
    }

    /// An ACK on a new branch with a To tag, for an INVITE whose final
    /// response was not captured: the ACK of a lost 2xx. The dialog it names
    /// is confirmed, so the BYE that follows joins this session and the
    /// attempt counts as ESTABLISHED (issue 12 items 5 and 6).
    fn ack_without_2xx(&mut self, a: Id, rec: &SipRecord) {
        let (Some(ft), Some(tt)) = (rec.from_tag(), rec.to_tag()) else {
            return;
        };
        self.confirm_lost_2xx(a, rec.call_id(), ft, tt);
    }

    /// Attempt `a` (tag `ft` of `call_id`) has a confirmed dialog with the
    /// remote tag `tt`, although its 2xx was not captured.
    fn confirm_lost_2xx(&mut self, a: Id, call_id: &str, ft: &str, tt: &str) {
        let dk = dialog_key(call_id, ft, tt);
        let at = self.attempts.get_mut(&a).expect("attempt");
        if at.acked_2xx.is_some() || at.confirmed_tags.iter().any(|x| **x == *tt) {
            return;
        }
        at.acked_2xx = Some(tt.into());
        at.confirmed_tags.push(tt.into());
        at.open_dialogs += 1;
        at.keys.push(IndexKey::Dialog(dk));
        self.dialogs.insert(dk, a);
    }

    /// A BYE of a dialog not seen, whose INVITE is in the capture without a
    /// final response (in either direction: the callee's BYE carries the
    /// tags swapped): the 2xx was lost and the BYE belongs to that session
    /// (issue 12 item 6). Registers the dialog and returns the attempt.
    fn lost_2xx_dialog(&mut self, rec: &SipRecord) -> Option<Id> {
        if rec.method != Method::Bye {
            return None;
        }
        let (ft, tt) = (rec.from_tag()?, rec.to_tag()?);
        for (mine, remote) in [(ft, tt), (tt, ft)] {
            let found = self
                .call_tag_attempts(rec.call_id(), Some(mine))
                .into_iter()
                .rev()
                .find(|x| {
                    self.attempts.get(x).is_some_and(|at| {
                        at.request.method == Method::Invite
                            && at.final_response.is_none()
                            && !at.start_missing
                            && at.request.ts_ns <= rec.ts_ns
                    })
                });
            if let Some(a) = found {
                self.confirm_lost_2xx(a, rec.call_id(), mine, remote);
                return Some(a);
            }
        }
        None
    }

    fn in_dialog(&mut self, seq: u64, rec: SipRecord, _repeat: bool) {
        let (Some(ft), Some(tt)) = (&rec.from_tag(), &rec.to_tag()) else {
            self.assign_none(seq);
            return;
        };
        let dk = dialog_key(rec.call_id(), ft, tt);
        if !self.dialogs.contains_key(&dk) {
            if let Some(&sid) = self.ended.get(&dk) {
                self.assign_session(seq, sid);
                return;
            }
        }
        let a = match self
            .dialogs
            .get(&dk)
            .copied()
            .or_else(|| self.lost_2xx_dialog(&rec))
        {
            Some(a) => a,
            None => {
                // The dialog's start is not in the capture (rules.md §A.1).
                let slot = self.new_slot(rec.ts_ns);
                let a = self.new_attempt(slot, rec.clone());
                let at = self.attempts.get_mut(&a).expect("attempt");
                at.start_missing = true;
                at.decided = true;
                at.keys.push(IndexKey::Dialog(dk));
                // Its request is also its first in-dialog transaction (below),
                // which keeps the final response (issue 12 item 8).
                self.txns.remove(&txn_key(&rec));
                if rec.method != Method::Bye {
                    at.open_dialogs = 1;
                }
                self.dialogs.insert(dk, a);
                let sid = self.next_session;
                self.next_session += 1;
                let s = self.slots.get_mut(&slot).expect("slot");
                s.session = Some(sid);
                s.flags.insert("MID_DIALOG".into());
                a
            }
        };
        if rec.method == Method::Bye
            && self.attempts.get(&a).is_some_and(|at| {
                at.final_response.is_none() && at.acked_2xx.is_none() && !at.start_missing
            })
        {
            // A BYE in a dialog whose INVITE has no final response captured:
            // the 2xx was lost (a 487 captured later still wins).
            let mine = self.attempts[&a].request.from_tag().map(str::to_string);
            let remote = if mine.as_deref() == Some(*ft) { tt } else { ft };
            if let Some(mine) = mine {
                self.confirm_lost_2xx(a, rec.call_id(), &mine, remote);
            }
        }
        self.note_cseq(&rec);
        let tk = txn_key(&rec);
        if rec.method != Method::Ack && !self.txns.contains_key(&tk) {
            let at = self.attempts.get_mut(&a).expect("attempt");
            let known = at
                .in_dialog
                .iter()
                .any(|t| t.request.cseq == rec.cseq && t.request.method == rec.method);
            if !known {
                at.in_dialog.push(InDialogTxn {
                    request: rec.clone(),
                    final_response: None,
                });
            }
        }
        self.txns.insert(
            tk,
            (
                a,
                TxnKind::InDialog {
                    bye: rec.method == Method::Bye,
                },
            ),
        );
        let at = self.attempts.get_mut(&a).expect("attempt");
        at.keys.push(IndexKey::Txn(tk));
        if rec.method == Method::Prack {
            if let Some((rseq, _, _)) = &rec.rack {
                let mut matched = false;
                for r in at.reliable.iter_mut() {
                    if *r.0 == **tt && r.1 == *rseq {
                        r.2 = true;
                        matched = true;
                    }
                }
                if !matched {
                    let slot = at.slot;
                    self.flag(slot, "PRACK_UNMATCHED");
                }
            }
        }
        let slot = self.attempts[&a].slot;
        self.assign(seq, slot, &rec);
        self.release_held(&rec);
    }

    fn new_attempt(&mut self, slot: Id, rec: SipRecord) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        let ak = attempt_key(rec.call_id(), rec.from_tag(), rec.cseq, &rec.method);
        self.attempt_keys.entry(ak).or_default().push(id);
        let tk = txn_key(&rec);
        self.txns.insert(tk, (id, TxnKind::Initial));
        let ct = h(&(rec.call_id(), &rec.from_tag()));
        self.call_tag.entry(ct).or_default().push(id);
        let s = self.slots.get_mut(&slot).expect("slot");
        s.attempts.push(id);
        self.attempts.insert(
            id,
            Box::new(Attempt {
                slot,
                request: rec,
                final_response: None,
                got_1xx: false,
                cancel_ns: None,
                early_tags: Vec::new(),
                confirmed_tags: Vec::new(),
                open_dialogs: 0,
                start_missing: false,
                keys: vec![
                    IndexKey::Attempt(ak),
                    IndexKey::Txn(tk),
                    IndexKey::CallTag(ct),
                ],
                p_open: false,
                candidates: Vec::new(),
                open_ps: 0,
                offers: Vec::new(),
                linked: None,
                decided: false,
                max_uac_cseq: None,
                reliable: Vec::new(),
                answers: Vec::new(),
                in_dialog: Vec::new(),
                acked_failure: false,
                acked_2xx: None,
                final_sources: Vec::new(),
                premature_retry: false,
                late_candidate: false,
                leg_relaxed: false,
            }),
        );
        id
    }

    fn initial(&mut self, seq: u64, rec: SipRecord) {
        let ak = attempt_key(rec.call_id(), rec.from_tag(), rec.cseq, &rec.method);
        // A copy of a known attempt: a retransmission, or the same request
        // at another hop (same UAC branch, rules.md §A.1, §A.6).
        let same = self.attempt_keys.get(&ak).and_then(|v| {
            v.iter()
                .copied()
                .find(|a| self.attempts[a].request.bottom_branch() == rec.bottom_branch())
        });
        if let Some(a) = same {
            let tk = txn_key(&rec);
            let at = self.attempts.get_mut(&a).expect("attempt");
            if !at.keys.contains(&IndexKey::Txn(tk)) {
                at.keys.push(IndexKey::Txn(tk));
            }
            let fewer_vias = rec.via_count < at.request.via_count;
            // The same request at another hop with other Require or
            // Proxy-Require: a proxy rewrote it (rules.md §A.6).
            let rewritten = rec.via_count != at.request.via_count
                && (rec.require() != at.request.require()
                    || rec.proxy_require() != at.request.proxy_require());
            let slot = at.slot;
            if rewritten {
                self.flag(slot, "PROXY_REWRITE");
            }
            self.txns.insert(tk, (a, TxnKind::Initial));
            self.assign(seq, slot, &rec);
            if fewer_vias {
                // Evaluate the UA's own copy (rules.md §A.6).
                let at = self.attempts.get_mut(&a).expect("attempt");
                let (ts, frame, file) = (at.request.ts_ns, at.request.frame, at.request.file);
                at.request = rec;
                (at.request.ts_ns, at.request.frame, at.request.file) = (ts, frame, file);
            } else {
                self.release_held(&rec);
            }
            return;
        }
        let max_before = self
            .max_cseq
            .get(&h(&(rec.call_id(), &rec.from_tag())))
            .map(|e| e.0);
        self.note_cseq(&rec);
        let ts_ns = rec.ts_ns;
        let w0 = self.w0;
        let corr = corr_keys(&rec);
        let slot = self.new_slot(ts_ns);
        self.assign(seq, slot, &rec);
        let n = self.new_attempt(slot, rec);
        self.attempts.get_mut(&n).expect("attempt").max_uac_cseq = max_before;
        // B2BUA legs: correlation keys, for AS-leg links and related sessions.
        for &(k, _) in &corr {
            let list = self.corr.entry(k).or_default();
            list.retain(|(_, t)| ts_ns - *t <= w0);
            if list.len() >= CORR_MAX {
                // Shared by too many calls to tell legs apart (a constant
                // value from a broken element): not evidence.
                continue;
            }
            let others: Vec<Id> = list.iter().map(|&(o, _)| o).collect();
            list.push((n, ts_ns));
            for other in others {
                if let Some(o) = self.attempts.get(&other) {
                    let (so, sn) = (self.root_of(o.slot), self.root_of(slot));
                    // rules.md §A.6: the later leg of a B2BUA no longer
                    // requires an IMS_CORE capability the earlier one did.
                    let relaxed = {
                        let (a, b) = (&o.request, &self.attempts[&n].request);
                        let core = |r: &SipRecord, t: &str| {
                            r.require()
                                .iter()
                                .chain(r.proxy_require().iter())
                                .any(|x| x == t)
                        };
                        ["precondition", "100rel"]
                            .iter()
                            .any(|t| core(a, t) && !core(b, t))
                            || (a.demand == crate::sip::Demand::Mandatory
                                && matches!(
                                    b.demand,
                                    crate::sip::Demand::Optional
                                        | crate::sip::Demand::NoneOnly
                                        | crate::sip::Demand::Absent
                                ))
                    };
                    if relaxed && o.request.method == self.attempts[&n].request.method {
                        if let Some(o) = self.attempts.get_mut(&other) {
                            o.leg_relaxed = true;
                        }
                    }
                    if so != sn {
                        if let Some(x) = self.slots.get_mut(&so) {
                            x.related.insert(n);
                        }
                        if let Some(x) = self.slots.get_mut(&sn) {
                            x.related.insert(other);
                        }
                    }
                }
            }
            self.attempts
                .get_mut(&n)
                .expect("attempt")
                .keys
                .push(IndexKey::Corr(k));
        }
        // G.19 for H0: a failed attempt of the same Call-ID and From tag
        // whose window has closed.
        for p in self.call_tag_attempts(
            self.attempts[&n].request.call_id(),
            self.attempts[&n].request.from_tag(),
        ) {
            let nm = self.attempts[&n].request.method.clone();
            if let Some(pa) = self.attempts.get_mut(&p) {
                if p != n
                    && !pa.p_open
                    && pa.request.method == nm
                    && pa
                        .final_response
                        .as_ref()
                        .is_some_and(|f| f.status.unwrap_or(0) >= 300 && ts_ns - f.ts_ns > w0)
                {
                    pa.late_candidate = true;
                    let pslot = pa.slot;
                    let sid = self.session_of(pslot);
                    self.late_retry(slot, sid);
                }
            }
        }
        let key = late_key(&self.attempts[&n].request);
        if let Some(&(fts, sid)) = self.late_watch.get(&key) {
            if ts_ns - fts > w0 && ts_ns - fts <= LATE_WATCH.saturating_mul(w0) {
                self.late_retry(slot, Some(sid));
            }
        }
        // Retry candidates: failed attempts with an open window.
        let mut ps: Vec<Id> = {
            let r = &self.attempts[&n].request;
            self.windows
                .candidates(r.call_id(), r.method.as_str(), &r.link)
        };
        for &(k, _) in &corr {
            if let Some(list) = self.corr.get(&k).filter(|l| l.len() < CORR_MAX) {
                for &(other, _) in list {
                    if self.attempts.get(&other).is_some_and(|a| a.p_open) && !ps.contains(&other) {
                        ps.push(other);
                    }
                }
            }
        }
        ps.sort_unstable();
        for p in ps {
            self.consider(p, n);
        }
        self.recent_initial.push_back((ts_ns, n));
        self.timer(ts_ns + SKEW_NS + 1, Timer::Root, n);
        if !self.held.is_empty() {
            let r = self.attempts[&n].request.clone();
            self.release_held(&r);
        }
    }

    /// Scores N as a retry of failed attempt P (rules.md §A.3) and records
    /// the candidate; an H0 candidate decides P at once.
    fn consider(&mut self, p: Id, n: Id) {
        self.link_work += 1;
        let (Some(pa), Some(na)) = (self.attempts.get(&p), self.attempts.get(&n)) else {
            return;
        };
        // A retry is always a request sent after P: attempt ids follow the
        // merged timeline, so N was fed after P's request. Skew repair
        // reorders a response after its request; it never makes an earlier
        // request the retry of a later failure (a fast far end answering a
        // stepwise relaxation within skew_tol, rules.md §A.3).
        if n <= p || !pa.p_open || na.linked.is_some() {
            return;
        }
        let Some(f) = &pa.final_response else {
            return;
        };
        let (pr, nr) = (&pa.request, &na.request);
        if pr.method != nr.method {
            return;
        }
        let gap = nr.ts_ns - f.ts_ns;
        if gap < -SKEW_NS {
            return;
        }
        let status = f.status.unwrap_or(0);
        let redirect = (300..400).contains(&status);
        let (lp, ln) = (&pr.link, &nr.link);
        let same_ruri_user = lp.ruri_user == ln.ruri_user
            || (lp.ruri_num != 0
                && lp.ruri_num == ln.ruri_num
                && match (
                    ident::phone_digits(pr.request_uri().unwrap_or("")),
                    ident::phone_digits(nr.request_uri().unwrap_or("")),
                ) {
                    (Some(x), Some(y)) => ident::same_number(&x, &y),
                    _ => false,
                });
        let same_uris = lp.from == ln.from && lp.to == ln.to;
        let same_call = pr.call_id() == nr.call_id();
        let same_tag = pr.from_tag() == nr.from_tag();
        // A cross-Call-ID link needs evidence that N retries P.
        let evidence = retry_evidence(status, f.reply.as_deref(), lp, ln);
        let w0 = self.w0;
        let mut best: Option<(Rule, f32)> = None;
        let mut late = false;
        let mut offer = |r: Rule, c: f32| {
            if gap > r.window(&nr.method, w0) {
                late = true;
            } else if best.is_none_or(|(_, bc)| c > bc) {
                best = Some((r, c));
            }
        };
        if same_ruri_user || redirect {
            if same_call && same_uris {
                if same_tag {
                    offer(Rule::H0, 1.0);
                } else {
                    offer(Rule::H0Prime, 0.9);
                }
            }
            if !same_call && evidence {
                if same_tag && same_uris {
                    offer(Rule::H1, 0.85);
                }
                if !same_tag && same_uris && pr.h2_fingerprint == nr.h2_fingerprint {
                    let bonus = pr.sdp_origin.is_some() && pr.sdp_origin == nr.sdp_origin;
                    offer(Rule::H2, if bonus { 0.8 } else { 0.7 });
                }
                if same_identities(pr, nr) {
                    offer(Rule::H3, 0.5);
                }
            }
        }
        if !same_call {
            for (k, c) in corr_keys(nr) {
                if lp.corr.contains(&k) {
                    offer(Rule::AsLeg, c);
                }
            }
        }
        let Some((rule, conf)) = best else {
            if late {
                // rules.md G.19: the same identities beyond the rule's
                // window: shown on P's failure, never linked.
                self.attempts.get_mut(&p).expect("attempt").late_candidate = true;
            }
            return;
        };
        self.attempts
            .get_mut(&p)
            .expect("attempt")
            .candidates
            .push((n, rule, conf));
        let na = self.attempts.get_mut(&n).expect("attempt");
        na.open_ps += 1;
        na.offers.push((p, conf));
        if rule == Rule::H0 {
            self.close_window(p);
        }
    }

    /// P's window closes: link the best unlinked candidate.
    fn close_window(&mut self, p: Id) {
        let Some(pa) = self.attempts.get_mut(&p) else {
            return;
        };
        if !pa.p_open {
            return;
        }
        pa.p_open = false;
        let cands = std::mem::take(&mut pa.candidates);
        let keys: Vec<IndexKey> = pa
            .keys
            .iter()
            .copied()
            .filter(|k| matches!(k, IndexKey::Window(_)))
            .collect();
        for k in keys {
            self.unindex(k, p);
        }
        // An N still free, and not the better candidate of another P whose
        // window is still open: the strongest link wins, whichever window
        // closes first.
        let eligible: Vec<&(Id, Rule, f32)> = cands
            .iter()
            .filter(|&&(n, _, c)| {
                self.attempts.get(&n).is_some_and(|a| {
                    a.linked.is_none()
                        && !a.offers.iter().any(|&(q, qc)| {
                            q != p && qc > c && self.attempts.get(&q).is_some_and(|x| x.p_open)
                        })
                })
            })
            .collect();
        // Highest confidence, then the earliest (candidates are in time order).
        let mut chosen: Option<(Id, Rule, f32)> = None;
        for &&(n, r, c) in &eligible {
            if chosen.is_none_or(|(_, _, bc)| c > bc) {
                chosen = Some((n, r, c));
            }
        }
        // rules.md §J: ambiguous only when another eligible candidate's
        // confidence is within 0.1 of the chosen one's (f32 slack included).
        let ambiguous = chosen.is_some_and(|(cn, _, cc)| {
            eligible
                .iter()
                .any(|&&(n, _, c)| n != cn && cc - c <= 0.1 + 1e-4)
        });
        if let Some((n, r, c)) = chosen {
            let pslot = self.attempts[&p].slot;
            let na = self.attempts.get_mut(&n).expect("attempt");
            na.linked = Some((p, r, c, ambiguous));
            na.decided = true;
            let nslot = na.slot;
            self.merge(pslot, nslot);
            if ambiguous {
                self.flag(pslot, "AMBIGUOUS_LINK");
            }
        }
        for (n, _, _) in cands {
            if let Some(na) = self.attempts.get_mut(&n) {
                na.open_ps = na.open_ps.saturating_sub(1);
                self.try_root(n, false);
            }
        }
        let slot = self.attempts[&p].slot;
        let root = self.root_of(slot);
        self.timer(self.now.max(0), Timer::Idle, root);
    }

    /// N becomes the root of its own session once nothing can claim it.
    fn try_root(&mut self, n: Id, at_end: bool) {
        let now = self.now;
        let Some(na) = self.attempts.get_mut(&n) else {
            return;
        };
        if na.decided || na.open_ps > 0 || (!at_end && now < na.request.ts_ns + SKEW_NS) {
            return;
        }
        na.decided = true;
        let slot = na.slot;
        let root = self.root_of(slot);
        let w0 = self.w0;
        let s = self.slots.get_mut(&root).expect("slot");
        if s.session.is_none() {
            s.session = Some(self.next_session);
            self.next_session += 1;
        }
        let at = self.now.max(s.last_ns + w0);
        self.timer(at, Timer::Idle, root);
    }

    /// The attempts of a Call-ID and From tag.
    fn call_tag_attempts(&self, call_id: &str, from_tag: Option<&str>) -> Vec<Id> {
        self.call_tag
            .get(&h(&(call_id, from_tag)))
            .cloned()
            .unwrap_or_default()
    }

    fn unindex(&mut self, k: IndexKey, a: Id) {
        match k {
            IndexKey::Txn(t) => {
                if self.txns.get(&t).is_some_and(|(x, _)| *x == a) {
                    self.txns.remove(&t);
                }
            }
            IndexKey::Attempt(t) => {
                if let Some(v) = self.attempt_keys.get_mut(&t) {
                    v.retain(|x| *x != a);
                    if v.is_empty() {
                        self.attempt_keys.remove(&t);
                    }
                }
            }
            IndexKey::Dialog(t) => {
                if self.dialogs.get(&t) == Some(&a) {
                    self.dialogs.remove(&t);
                }
            }
            IndexKey::Window(w) => self.windows.close(a, &[w]),
            IndexKey::CallTag(t) => {
                if let Some(v) = self.call_tag.get_mut(&t) {
                    v.retain(|x| *x != a);
                    if v.is_empty() {
                        self.call_tag.remove(&t);
                    }
                }
            }
            IndexKey::Corr(t) => {
                if let Some(v) = self.corr.get_mut(&t) {
                    v.retain(|(x, _)| *x != a);
                    if v.is_empty() {
                        self.corr.remove(&t);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ responses

    /// The hop transaction of a response: its request was seen.
    fn find_exact(&self, rec: &SipRecord) -> Option<(Id, TxnKind)> {
        self.txns.get(&txn_key(rec)).copied()
    }

    /// The transaction of a response, or failing that the attempt or dialog
    /// it belongs to (a response captured where its request was not).
    fn find_txn(&self, rec: &SipRecord) -> Option<(Id, TxnKind)> {
        if let Some(t) = self.find_exact(rec) {
            return Some(t);
        }
        // Captured at a hop where its request was not: the attempt by
        // Call-ID, From tag and CSeq.
        let ak = attempt_key(rec.call_id(), rec.from_tag(), rec.cseq, &rec.method);
        if let Some(a) = self.attempt_keys.get(&ak).and_then(|v| v.last()) {
            return Some((*a, TxnKind::Initial));
        }
        if let (Some(ft), Some(tt)) = (&rec.from_tag(), &rec.to_tag()) {
            if let Some(&a) = self.dialogs.get(&dialog_key(rec.call_id(), ft, tt)) {
                return Some((
                    a,
                    TxnKind::InDialog {
                        bye: rec.method == Method::Bye,
                    },
                ));
            }
        }
        None
    }

    fn response(&mut self, seq: u64, rec: SipRecord, may_hold: bool) {
        let found = if may_hold {
            self.find_exact(&rec)
        } else {
            self.find_txn(&rec)
        };
        let Some((a, kind)) = found else {
            if let Some(&sid) = self.ended.get(&txn_key(&rec)) {
                self.assign_session(seq, sid);
                return;
            }
            if may_hold {
                // Perhaps its request comes a little later (clock skew
                // between capture points, rules.md §A.2).
                self.timer(rec.ts_ns + SKEW_NS, Timer::Held, 0);
                self.held.push_back(Held {
                    seq,
                    deadline: rec.ts_ns + SKEW_NS,
                    rec,
                });
            } else {
                self.orphan(seq, rec);
            }
            return;
        };
        let status = rec.status.unwrap_or(0);
        let slot = self.attempts[&a].slot;
        self.assign(seq, slot, &rec);
        match kind {
            TxnKind::Cancel => {}
            TxnKind::InDialog { bye } => {
                let at = self.attempts.get_mut(&a).expect("attempt");
                if bye && status >= 200 {
                    at.open_dialogs = at.open_dialogs.saturating_sub(1);
                    if at.open_dialogs == 0 {
                        let root = self.root_of(slot);
                        let at_ns = self.now.saturating_add(ENDED_GRACE_NS.min(self.w0));
                        self.timer(at_ns, Timer::Idle, root);
                    }
                }
                let at = self.attempts.get_mut(&a).expect("attempt");
                if status >= 200 {
                    if let Some(t) = at.in_dialog.iter_mut().find(|t| {
                        t.request.cseq == rec.cseq
                            && t.request.method == rec.method
                            && t.final_response.is_none()
                    }) {
                        t.final_response = Some(rec);
                    }
                }
            }
            TxnKind::Initial => self.initial_response(a, rec),
        }
    }

    fn initial_response(&mut self, a: Id, rec: SipRecord) {
        let status = rec.status.unwrap_or(0);
        if status >= 200 {
            let at = self.attempts.get_mut(&a).expect("attempt");
            let same_final = at
                .final_response
                .as_ref()
                .is_none_or(|f| f.status == rec.status && f.to_tag() == rec.to_tag());
            if same_final && !at.final_sources.contains(&rec.src) {
                at.final_sources.push(rec.src);
            }
        }
        if (101..300).contains(&status) {
            let at = self.attempts.get_mut(&a).expect("attempt");
            if !at
                .answers
                .iter()
                .any(|x| x.status == rec.status && x.to_tag() == rec.to_tag() && x.rseq == rec.rseq)
            {
                at.answers.push(rec.clone());
            }
        }
        let is_invite = rec.method == Method::Invite;
        let dk = match (&rec.from_tag(), &rec.to_tag()) {
            (Some(ft), Some(tt)) => Some((dialog_key(rec.call_id(), ft, tt), *tt)),
            _ => None,
        };
        let at = self.attempts.get_mut(&a).expect("attempt");
        let slot = at.slot;
        let mut flags: Vec<&str> = Vec::new();
        if (100..200).contains(&status) {
            at.got_1xx = true;
            if let Some((dk, tt)) = dk {
                if status > 100 && !at.early_tags.iter().any(|x| **x == *tt) {
                    at.early_tags.push(tt.into());
                    at.keys.push(IndexKey::Dialog(dk));
                    self.dialogs.insert(dk, a);
                }
                let at = self.attempts.get_mut(&a).expect("attempt");
                if let Some(rseq) = rec.rseq {
                    if !at.reliable.iter().any(|r| *r.0 == *tt && r.1 == rseq) {
                        at.reliable.push((tt.into(), rseq, false));
                    }
                }
            }
            return;
        }
        if (200..300).contains(&status) {
            if let Some((dk, tt)) = dk {
                if !at.confirmed_tags.iter().any(|x| **x == *tt) {
                    at.confirmed_tags.push(tt.into());
                    if at.confirmed_tags.len() > 1 {
                        flags.push("FORKED_MULTI_ANSWER");
                    }
                    if is_invite {
                        at.open_dialogs += 1;
                    }
                    if !at.keys.contains(&IndexKey::Dialog(dk)) {
                        at.keys.push(IndexKey::Dialog(dk));
                    }
                    self.dialogs.insert(dk, a);
                }
            }
            let at = self.attempts.get_mut(&a).expect("attempt");
            if at.cancel_ns.is_some() && at.final_response.is_none() {
                flags.push("CANCEL_RACE_ANSWERED");
            }
            let mut branch_failure = false;
            if let Some(f) = &at.final_response {
                if f.status.unwrap_or(0) >= 300 && f.to_tag() != rec.to_tag() {
                    // A failure from one branch of a forking proxy, then a
                    // 2xx from another (rules.md §A.4): not a failure of
                    // the attempt.
                    branch_failure = true;
                    if f.status == Some(420) {
                        flags.push("FORK_MIXED_CAPABILITY");
                    }
                }
            }
            if at
                .final_response
                .as_ref()
                .is_none_or(|f| f.status.unwrap_or(0) >= 300)
            {
                at.final_response = Some(Box::new(rec));
            }
            if branch_failure {
                for f in &flags {
                    self.flag(slot, f);
                }
                self.close_window(a);
                return;
            }
        } else if status == 420
            && at.final_response.as_ref().is_some_and(|f| {
                f.status.is_some_and(|c| (200..300).contains(&c)) && f.to_tag() != rec.to_tag()
            })
        {
            // A branch refused after another branch answered (§A.4).
            flags.push("FORK_MIXED_CAPABILITY");
        } else if status >= 300 && at.final_response.is_none() {
            let fts = rec.ts_ns;
            at.final_response = Some(Box::new(rec));
            if status == 487 && at.cancel_ns.is_some() {
                // The caller hung up: no retry is expected (rules.md G.6).
                return;
            }
            at.p_open = true;
            let (p_ts, p_cseq) = (at.request.ts_ns, at.request.cseq);
            let (call, tag, method) = (
                at.request.call_id().to_string(),
                at.request.from_tag().map(str::to_string),
                at.request.method.clone(),
            );
            // rules.md D4: an H0-like request sent after P but more than
            // skew_tol before F is not a retry of it; P's failure is flagged.
            let premature = self
                .call_tag_attempts(&call, tag.as_deref())
                .iter()
                .any(|&n| {
                    n != a
                        && self.attempts.get(&n).is_some_and(|x| {
                            let r = &x.request;
                            r.method == method
                                && r.ts_ns > p_ts
                                && r.ts_ns < fts - SKEW_NS
                                && r.cseq > p_cseq
                        })
                });
            let at = self.attempts.get_mut(&a).expect("attempt");
            at.premature_retry = premature;
            let f = at.final_response.as_ref().expect("just set");
            let wk = self.windows.open(
                a,
                (
                    at.request.call_id(),
                    at.request.method.as_str(),
                    &at.request.link,
                ),
                status,
                f.reply.as_deref(),
            );
            at.keys.extend(wk.into_iter().map(IndexKey::Window));
            self.timer(fts + self.w0, Timer::PClose, a);
            // A retry captured up to skew_tol before F (rules.md §A.3 D4).
            let pr = &self.attempts[&a].request;
            let early: Vec<Id> = self
                .recent_initial
                .iter()
                .filter(|&&(t, n)| t >= fts - SKEW_NS && n > a)
                .filter(|&&(_, n)| {
                    self.attempts
                        .get(&n)
                        .is_some_and(|x| may_link(pr, &x.request))
                })
                .map(|&(_, n)| n)
                .collect();
            for n in early {
                self.consider(a, n);
            }
        }
        for f in flags {
            self.flag(slot, f);
        }
    }

    fn orphan(&mut self, seq: u64, rec: SipRecord) {
        // Its request may have arrived in the meantime.
        if self.find_txn(&rec).is_some() {
            self.response(seq, rec, false);
            return;
        }
        self.assign_none(seq);
        self.anomalies.push(TrackAnomaly {
            file: rec.file,
            frame: rec.frame,
            kind: "orphan_response",
            detail: format!(
                "{} response to {} (Call-ID {}, CSeq {}) matches no request seen",
                rec.status.unwrap_or(0),
                rec.method.as_str(),
                rec.call_id(),
                rec.cseq
            ),
            related: None,
        });
    }

    /// A request arrived: responses held for it are processed now, after it
    /// (causal repair, rules.md §A.2).
    fn release_held(&mut self, req: &SipRecord) {
        if self.held.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.held.len() {
            let hd = &self.held[i];
            let r = &hd.rec;
            let matches = r.call_id() == req.call_id()
                && r.cseq == req.cseq
                && r.method == req.method
                && self.find_exact(r).is_some();
            if matches {
                let hd = self.held.remove(i).expect("index valid");
                let ms = (req.ts_ns - hd.rec.ts_ns) as f64 / 1e6;
                self.anomalies.push(TrackAnomaly {
                    file: hd.rec.file,
                    frame: hd.rec.frame,
                    kind: "clock_skew",
                    detail: format!(
                        "{} response timestamped {ms:.3} ms before its request; taken after it",
                        hd.rec.status.unwrap_or(0),
                    ),
                    related: Some((req.file, req.frame)),
                });
                self.response(hd.seq, hd.rec, false);
            } else {
                i += 1;
            }
        }
    }

    // ------------------------------------------------------------ finalisation

    fn try_finalize(&mut self, s: Id) {
        let Some(slot) = self.slots.get(&s) else {
            return;
        };
        if slot.parent.is_some() || slot.finalized {
            return;
        }
        let now = self.now;
        let slot_last = slot.last_ns;
        let mut wait_until = slot.last_ns + self.w0;
        let mut ready = slot.session.is_some();
        for a in &slot.attempts {
            let at = &self.attempts[a];
            if at.p_open || !at.decided {
                ready = false;
            }
            if at.open_dialogs > 0 {
                wait_until = wait_until.max(slot.last_ns + DIALOG_IDLE_NS);
            }
        }
        if !ready {
            // A retry decision is pending: closing a window or deciding a
            // root arms this check again.
            return;
        }
        if self.ended_early(s) {
            // Copies of the last messages at other capture points and
            // early retransmissions still update the session.
            wait_until = slot_last.saturating_add(ENDED_GRACE_NS.min(self.w0));
        }
        if now >= wait_until {
            self.finalize(s, now);
        } else {
            self.timer(wait_until, Timer::Idle, s);
        }
    }

    /// Whether slot `s`'s session is over before its W0 of silence: it
    /// had a confirmed INVITE dialog, every dialog was ended by a BYE that
    /// got its final response, every attempt and in-dialog request has its
    /// final response, and no decision is pending. Only retransmissions can
    /// follow; they find the session through `ended`.
    fn ended_early(&self, s: Id) -> bool {
        let Some(slot) = self.slots.get(&s) else {
            return false;
        };
        let mut confirmed = false;
        for a in &slot.attempts {
            let at = &self.attempts[a];
            if at.p_open
                || !at.decided
                || at.open_dialogs > 0
                || at.start_missing
                || at.final_response.is_none()
                || at.in_dialog.iter().any(|t| t.final_response.is_none())
            {
                return false;
            }
            let bye = at.in_dialog.iter().any(|t| t.request.method == Method::Bye);
            confirmed |=
                at.request.method == Method::Invite && !at.confirmed_tags.is_empty() && bye;
        }
        confirmed
    }

    /// Remembers an early-finished session's keys for W0.
    fn remember_ended(&mut self, a: Id, keys: &[IndexKey], session: u64) {
        let until = self.now.saturating_add(self.w0);
        self.ended_attempts.insert(a, session);
        for k in keys {
            if let IndexKey::Txn(t) | IndexKey::Dialog(t) = *k {
                self.ended.insert(t, session);
                self.ended_expiry.push_back((until, t, a));
            }
        }
        self.ended_expiry.push_back((until, 0, a));
    }

    fn finalize(&mut self, s: Id, now: i64) {
        let early = self.ended_early(s);
        let Some(slot) = self.slots.get_mut(&s) else {
            return;
        };
        if slot.parent.is_some() || slot.finalized {
            return;
        }
        slot.finalized = true;
        let start = slot.start_ns;
        self.live.remove(&(start, s));
        let session = match slot.session {
            Some(x) => x,
            None => {
                let x = self.next_session;
                self.next_session += 1;
                slot.session = Some(x);
                x
            }
        };
        let ids = std::mem::take(&mut slot.attempts);
        let flags = std::mem::take(&mut slot.flags);
        let call_ids = std::mem::take(&mut slot.call_ids);
        let related_attempts = std::mem::take(&mut slot.related);
        let late_of = std::mem::take(&mut slot.late_of);
        let (end, max_seq) = (slot.last_ns, slot.max_seq);
        let mut related: Vec<u64> = related_attempts
            .iter()
            .filter_map(|a| match self.attempts.get(a) {
                Some(x) => self.session_of(x.slot),
                None => self.ended_attempts.get(a).copied(),
            })
            .chain(late_of)
            .filter(|&x| x != session)
            .collect();
        related.sort_unstable();
        related.dedup();
        let mut atts: Vec<(Id, Box<Attempt>)> = ids
            .into_iter()
            .filter_map(|a| self.attempts.remove(&a).map(|x| (a, x)))
            .collect();
        for (id, at) in &atts {
            self.watch_late(at, session);
            if early {
                self.remember_ended(*id, &at.keys, session);
            }
        }
        for (id, at) in &atts {
            for k in at.keys.clone() {
                self.unindex(k, *id);
            }
        }
        atts.sort_by_key(|(id, a)| (a.request.ts_ns, *id));
        let pos: HashMap<Id, usize> = atts
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        let mut links = Vec::new();
        for (i, (_, at)) in atts.iter().enumerate() {
            if let Some((p, rule, conf, ambiguous)) = at.linked {
                if let Some(&from) = pos.get(&p) {
                    links.push(Link {
                        from,
                        to: i,
                        rule,
                        confidence: conf,
                        ambiguous,
                        max_uac_cseq: match rule {
                            Rule::H0 | Rule::H0Prime => at.max_uac_cseq,
                            _ => None,
                        },
                    });
                }
            }
        }
        let last = atts.last().map(|(_, a)| a);
        let (outcome, final_status) = match last {
            None => (Outcome::Truncated, None),
            Some(a) => outcome_of(a, now),
        };
        let mut flags = flags;
        if atts.iter().any(|(_, a)| a.reliable.iter().any(|r| !r.2))
            && atts.iter().any(|(_, a)| a.request.method == Method::Invite)
        {
            // Not a verdict: a reliable 1xx that no PRACK acknowledged.
            flags.insert("PRACK_MISSING".into());
        }
        let attempts = atts
            .into_iter()
            .map(|(_, a)| AttemptSummary {
                request: a.request,
                final_response: a.final_response.map(|b| *b),
                cancel_ns: a.cancel_ns,
                early_tags: a.early_tags,
                confirmed_tags: a.confirmed_tags,
                start_missing: a.start_missing,
                answers: a.answers,
                in_dialog: a.in_dialog,
                acked_failure: a.acked_failure,
                final_sources: a.final_sources,
                premature_retry: a.premature_retry,
                late_candidate: a.late_candidate,
                leg_relaxed: a.leg_relaxed,
            })
            .collect();
        self.finished.push(SessionSummary {
            id: session,
            attempts,
            links,
            start_ns: start,
            end_ns: end,
            call_ids,
            flags,
            outcome,
            final_status,
            related,
            observed_until: now,
        });
        self.gc.push_back((max_seq, s));
    }

    fn gc_slots(&mut self) {
        while let Some(&(max_seq, s)) = self.gc.front() {
            if max_seq >= self.queue_base && !self.queue.is_empty() {
                break;
            }
            self.gc.pop_front();
            if let Some(slot) = self.slots.remove(&s) {
                for c in slot.children {
                    self.slots.remove(&c);
                }
            }
        }
        // Forget CSeq high-water marks of calls silent for a whole window.
        if self.max_cseq.len() > 4096 && self.max_cseq.len() > 4 * self.attempts.len() {
            let now = self.now;
            self.max_cseq
                .retain(|_, (_, t)| now - *t <= RETRANSMISSION_WINDOW_NS + self.w0);
        }
    }
}

/// The late-retry watch key of an initial request: method, Call-ID, From tag.
fn late_key(r: &SipRecord) -> u64 {
    h(&(r.method.as_str(), r.call_id(), r.from_tag()))
}

fn outcome_of(a: &Attempt, now: i64) -> (Outcome, Option<u16>) {
    if a.start_missing {
        return (Outcome::Truncated, None);
    }
    match &a.final_response {
        Some(f) => {
            let s = f.status.unwrap_or(0);
            let o = if (200..300).contains(&s) {
                Outcome::Established
            } else if a
                .cancel_ns
                .is_some_and(|c| s == 487 || c <= f.ts_ns + SKEW_NS)
            {
                Outcome::Cancelled
            } else if s == 408 {
                Outcome::Timeout
            } else {
                Outcome::Failed
            };
            (o, Some(s))
        }
        // The 2xx was lost, its ACK was captured.
        None if a.acked_2xx.is_some() => (Outcome::Established, None),
        None if now - a.request.ts_ns >= TIMER_B_NS => (Outcome::Timeout, None),
        None => (Outcome::Truncated, None),
    }
}

/// A Wireshark display filter showing every message of the given Call-IDs.
pub fn wireshark_filter(call_ids: &[Box<str>]) -> String {
    call_ids
        .iter()
        .map(|c| {
            let esc = c.replace('\\', "\\\\").replace('"', "\\\"");
            format!("sip.Call-ID == \"{esc}\"")
        })
        .collect::<Vec<_>>()
        .join(" || ")
}

impl SessionSummary {
    /// The link whose P is attempt `i`.
    pub fn link_from(&self, i: usize) -> Option<&Link> {
        self.links.iter().find(|l| l.from == i)
    }
}
