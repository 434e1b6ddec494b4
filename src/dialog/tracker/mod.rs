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
//! Files, one concern each: this one holds the state types, the public API
//! and what the timers do; `timers` (the order they fire in), `requests`
//! (transactions, attempts, in-dialog requests), `responses` (matching
//! responses, dialogs, final responses), `linking` (retry windows and
//! candidates, B2BUA keys, late retries), `slots` (sessions as slots, their
//! ids and index keys) and `finish` (finalising sessions and their
//! summaries).
//!
//! Memory: a session is finalised once it has been idle for W0 of capture
//! time with every attempt answered (or timed out) and no confirmed INVITE
//! dialog left open (an open one is kept until BYE, or [`DIALOG_IDLE_NS`] of
//! silence); its state is then dropped. Messages wait in a FIFO until their
//! session is known (at most about W0), so the caller gets them back in the
//! order they were fed, each with its session id.

use std::collections::{BTreeSet, HashMap, VecDeque};

use rustc_hash::FxHashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

use crate::dialog::few::Few;
use crate::dialog::ident;
use crate::dialog::idslab::IdSlab;
use crate::dialog::keyindex::KeyIndex;
use crate::dialog::keyring::KeyRing;
use crate::dialog::record::{Method, SipRecord};
use crate::dialog::windows::{WinKey, Windows};
use crate::dialog::{RETRANSMISSION_WINDOW_NS, Retransmissions};

mod cold;
mod finish;
mod idmap;
mod linking;
mod requests;
mod responses;
mod slots;
mod summary;
mod timers;

pub use summary::*;

use idmap::IdMap;
use linking::*;

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

type Id = u64;

/// Slot and attempt ids are numbered this far apart (see `next_slot`).
const ID_STEP: u64 = 2;

fn h<T: Hash + ?Sized>(parts: &T) -> u64 {
    let mut s = crate::dialog::stable_hasher(crate::dialog::TRACKER_KEY_SEED);
    parts.hash(&mut s);
    s.finish()
}

struct Attempt {
    slot: Id,
    request: SipRecord,
    final_response: Option<Box<SipRecord>>,
    got_1xx: bool,
    cancel_ns: Option<i64>,
    /// Confirmed INVITE dialogs not yet ended by BYE.
    open_dialogs: u32,
    start_missing: bool,
    /// Index keys registered for this attempt (removed with it).
    keys: Vec<IndexKey>,
    // --- as a failed P
    /// Window still open (P undecided).
    p_open: bool,
    // --- as a retry N
    open_ps: u32,
    linked: Option<(Id, Rule, f32, bool)>,
    decided: bool,
    max_uac_cseq: Option<u32>,
    acked_failure: bool,
    premature_retry: bool,
    late_candidate: bool,
    leg_relaxed: bool,
    /// What an answered, linked or in-dialog attempt adds; `None` until
    /// first written (an unanswered INVITE, as a scanner sends, never needs
    /// it): 8 bytes instead of about 200 per attempt.
    more: Option<Box<AttemptMore>>,
}

/// Appends `x` growing a short vector by one element at a time: the lists
/// of an attempt (answers, in-dialog transactions, tags, sources) hold one
/// to three items, and a vector's first growth reserves four (2,560 bytes
/// for the one BYE transaction of most calls, 1,920 of them unused);
/// beyond eight it grows as usual.
fn push_tight<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() && v.len() < 8 {
        v.reserve_exact(1);
    }
    v.push(x);
}

/// The parts of an [`Attempt`] most attempts never fill.
#[derive(Default)]
struct AttemptMore {
    early_tags: Vec<Box<str>>,
    confirmed_tags: Vec<Box<str>>,
    /// As a failed P: the candidates scored.
    candidates: Vec<(Id, Rule, f32)>,
    /// As a retry N: every failed attempt that scored this one as a
    /// candidate, with its confidence: a weaker P never takes N from a
    /// stronger one still open (rules.md §A.3, issue 12 item 3).
    offers: Vec<(Id, f32)>,
    reliable: Vec<(Box<str>, u32, bool)>,
    answers: Vec<Answer>,
    in_dialog: Vec<InDialogTxn>,
    /// The To tag of an ACK for a 2xx whose 2xx was not captured: the
    /// dialog was confirmed all the same (issue 12 items 5 and 6).
    acked_2xx: Option<Box<str>>,
    final_sources: Vec<SocketAddr>,
    /// The final response when it is a success kept as its digest
    /// ([`SuccessFinal::of`]); `final_response` is then `None`.
    success: Option<SuccessFinal>,
}

/// What [`Attempt::more`] reads as while nothing was written.
static NO_MORE: AttemptMore = AttemptMore {
    early_tags: Vec::new(),
    confirmed_tags: Vec::new(),
    candidates: Vec::new(),
    offers: Vec::new(),
    reliable: Vec::new(),
    answers: Vec::new(),
    in_dialog: Vec::new(),
    acked_2xx: None,
    final_sources: Vec::new(),
    success: None,
};

impl Attempt {
    /// Whether a final response was seen (kept whole or as a digest).
    fn has_final(&self) -> bool {
        self.final_response.is_some() || self.more().success.is_some()
    }

    /// Whether the final response so far is a success (or there is none):
    /// a 2xx then replaces it.
    fn final_is_failure_or_none(&self) -> bool {
        self.more().success.is_none()
            && self
                .final_response
                .as_ref()
                .is_none_or(|f| f.status.unwrap_or(0) >= 300)
    }

    /// Whether `r` is a copy of the final response (same status and To
    /// tag), or there is none yet.
    fn same_final(&self, r: &SipRecord) -> bool {
        match (&self.final_response, self.more().success) {
            (Some(f), _) => f.status == r.status && f.to_tag() == r.to_tag(),
            (None, Some(s)) => Some(s.status) == r.status && s.to_tag == tag_key(r.to_tag()),
            (None, None) => true,
        }
    }

    /// Whether the final response is a success with another To tag than
    /// `tag`.
    fn answered_by_another_branch(&self, tag: Option<&str>) -> bool {
        match (&self.final_response, self.more().success) {
            (Some(f), _) => f.status.is_some_and(|c| (200..300).contains(&c)) && f.to_tag() != tag,
            (None, Some(s)) => s.to_tag != tag_key(tag),
            (None, None) => false,
        }
    }

    /// Makes `rec`, a 2xx, the final response: as its digest when that is
    /// all that is read of it.
    fn set_success(&mut self, rec: SipRecord) {
        match SuccessFinal::of(&rec) {
            Some(s) => {
                self.final_response = None;
                self.more_mut().success = Some(s);
            }
            None => self.final_response = Some(Box::new(rec)),
        }
    }

    /// The rarely filled parts (empty until written).
    fn more(&self) -> &AttemptMore {
        self.more.as_deref().unwrap_or(&NO_MORE)
    }

    /// The rarely filled parts, allocated on first use.
    fn more_mut(&mut self) -> &mut AttemptMore {
        self.more.get_or_insert_with(Box::default)
    }
}

/// The attempts under one index key.
type Ids = Few<Id>;

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
    start_ns: i64,
    last_ns: i64,
    call_ids: Few<Box<str>>,
    finalized: bool,
    /// Highest queue position referring to this slot (or a child).
    max_seq: u64,
    /// What a flagged, merged or related session adds; `None` until first
    /// written: 8 bytes instead of 96 per slot.
    more: Option<Box<SlotMore>>,
}

/// The parts of a [`Slot`] most slots never fill.
#[derive(Default)]
struct SlotMore {
    children: Vec<Id>,
    flags: BTreeSet<Mark>,
    related: BTreeSet<Id>,
    /// Sessions whose failure this one retries too late (G.19).
    late_of: Vec<u64>,
}

impl Slot {
    /// The rarely filled parts, allocated on first use.
    fn more_mut(&mut self) -> &mut SlotMore {
        self.more.get_or_insert_with(Box::default)
    }
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

/// Ordered as declared (ties at one time fire in this order); `Idle` stays
/// the last ([`Tracker::advance`] relies on it).
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
    /// The next slot's id: slots are numbered 2, 4, 6…
    next_slot: Id,
    /// The next attempt's id: attempts are numbered 1, 3, 5…, so that an
    /// id names one slot or one attempt, and each kind's slab
    /// ([`IdSlab`]) has no holes for the other kind's ids.
    next_attempt: Id,
    next_session: u64,
    attempts: IdSlab<Box<Attempt>>,
    slots: IdSlab<Slot>,
    txns: KeyIndex<(Id, TxnKind)>,
    attempt_keys: FxHashMap<u64, Ids>,
    dialogs: FxHashMap<u64, Id>,
    /// Highest CSeq sent by (Call-ID, From tag), with its last use.
    max_cseq: FxHashMap<u64, (u32, i64)>,
    /// How many entries `max_cseq` kept at its last pruning.
    max_cseq_kept: usize,
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
    ended: KeyRing<u64>,
    /// The sessions of those attempts, by attempt id: a slab, because
    /// attempts end in about the order their ids were handed out, so each
    /// insertion and removal lands beside the last instead of at a random
    /// place of a hash table that W0 of ended attempts makes larger than
    /// the caches.
    ended_attempts: IdSlab<u64>,
    /// (until, attempt, end of its keys in `ended`), one per attempt.
    ended_expiry: VecDeque<(i64, Id, u64)>,
    /// `consider` calls: the candidate work done (a test hook for the
    /// O(1)-per-request property).
    link_work: u64,
    corr: FxHashMap<u64, Vec<(Id, i64)>>,
    /// Attempts by (Call-ID, From tag).
    call_tag: FxHashMap<u64, Ids>,
    recent_initial: VecDeque<(i64, Id)>,
    timers: timers::TimerQueue<(i64, Timer, Id)>,
    held: VecDeque<Held>,
    queue: VecDeque<Queued<P>>,
    queue_base: u64,
    live: BTreeSet<(i64, Id)>,
    /// Where [`Tracker::finish_some`] goes on (the last root it took).
    finish_from: Option<(i64, Id)>,
    gc: VecDeque<(u64, Id)>,
    finished: Vec<SessionSummary>,
    anomalies: Vec<TrackAnomaly>,
    /// Retransmissions seen.
    pub retransmissions: u64,
    /// W0: the H0/H0' retry window, and how long a session stays open after
    /// its last message (policy `window_s`, default [`W0_NS`]).
    w0: i64,
    /// Session ids are `n * id_stride + id_offset` for n = 1, 2, …: one
    /// tracker numbers 1, 2, 3…; partition `i` of `k` gets ids of its own
    /// (`k`, `i`), which the caller renumbers ([`Tracker::partition`]).
    id_stride: u64,
    id_offset: u64,
    /// With a partition: (capture time, id) of every session id handed out
    /// since the last [`Tracker::take_assigned`], in order.
    assigned: Option<Vec<(i64, u64)>>,
    /// Sessions spilled under the memory budget (module `cold`); `None`
    /// until [`Tracker::cold_storage`].
    cold: Option<Box<cold::Cold>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum TxnKind {
    #[default]
    Initial,
    Cancel,
    InDialog {
        bye: bool,
    },
}

impl<P> Default for Tracker<P> {
    fn default() -> Self {
        Tracker {
            now: i64::MIN,
            retrans: Retransmissions::default(),
            next_slot: 2,
            next_attempt: 1,
            next_session: 1,
            attempts: IdSlab::with_step(ID_STEP),
            slots: IdSlab::with_step(ID_STEP),
            txns: KeyIndex::default(),
            attempt_keys: FxHashMap::default(),
            dialogs: FxHashMap::default(),
            max_cseq: FxHashMap::default(),
            max_cseq_kept: 0,
            windows: Windows::default(),
            late_watch: FxHashMap::default(),
            late_expiry: VecDeque::new(),
            ended: KeyRing::default(),
            ended_attempts: IdSlab::with_step(ID_STEP),
            ended_expiry: VecDeque::new(),
            link_work: 0,
            corr: FxHashMap::default(),
            call_tag: FxHashMap::default(),
            recent_initial: VecDeque::new(),
            timers: timers::TimerQueue::default(),
            held: VecDeque::new(),
            queue: VecDeque::new(),
            queue_base: 0,
            live: BTreeSet::new(),
            finish_from: None,
            gc: VecDeque::new(),
            finished: Vec::new(),
            anomalies: Vec::new(),
            retransmissions: 0,
            w0: W0_NS,
            id_stride: 1,
            id_offset: 0,
            assigned: None,
            cold: None,
        }
    }
}

/// The entries of `set` after `from` (from the first when `None`), in order.
fn after(
    set: &BTreeSet<(i64, Id)>,
    from: Option<(i64, Id)>,
) -> std::collections::btree_set::Range<'_, (i64, Id)> {
    let lower = match from {
        None => std::ops::Bound::Unbounded,
        Some(k) => std::ops::Bound::Excluded(k),
    };
    set.range((lower, std::ops::Bound::Unbounded))
}

fn txn_key(r: &SipRecord) -> u64 {
    debug_assert!(
        r.hop_key_is_current(),
        "a record's fields changed after its hop key"
    );
    r.hop_key()
}

fn attempt_key(call_id: &str, from_tag: Option<&str>, cseq: u32, m: &Method) -> u64 {
    h(&(call_id, from_tag, cseq, m.as_str()))
}

fn dialog_key(call_id: &str, a: &str, b: &str) -> u64 {
    let (x, y) = if a <= b { (a, b) } else { (b, a) };
    h(&(call_id, x, y))
}

impl<P> Tracker<P> {
    /// A tracker whose W0 (rules.md §A.3, policy `window_s`) is `w0_ns`.
    pub fn with_window(w0_ns: i64) -> Self {
        Tracker {
            w0: w0_ns.max(1),
            ..Tracker::default()
        }
    }

    /// Partition `index` of `count` (`pipeline::track`): W0 is `w0_ns`, and
    /// session ids are provisional, `n * count + index`, each logged with the
    /// capture time it was handed out at ([`Tracker::take_assigned`]) so
    /// that the caller can number the sessions of every partition in one
    /// deterministic order.
    pub fn partition(w0_ns: i64, index: u32, count: u32) -> Self {
        Tracker {
            id_stride: u64::from(count.max(1)),
            id_offset: u64::from(index),
            assigned: Some(Vec::new()),
            ..Tracker::with_window(w0_ns)
        }
    }

    /// The (capture time, provisional id) of each session id handed out
    /// since the last call, in order (empty unless [`Tracker::partition`]).
    pub fn take_assigned(&mut self) -> Vec<(i64, u64)> {
        self.assigned
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Lets capture time run to `t` without a message: the timers due by
    /// then fire, exactly as they would before the next message at or after
    /// `t`. After it every id handed out later has a time of at least `t`.
    pub fn advance_to(&mut self, t: i64) {
        if t > self.now {
            self.advance(t);
        }
    }

    /// The payload of the oldest message not handed back yet.
    pub fn queue_front(&self) -> Option<&P> {
        self.queue.front().map(|q| &q.payload)
    }

    /// A new session id (see `id_stride`).
    fn new_session_id(&mut self) -> u64 {
        let id = self.next_session * self.id_stride + self.id_offset;
        self.next_session += 1;
        if let Some(log) = self.assigned.as_mut() {
            log.push((self.now, id));
        }
        id
    }

    /// A hint that `rec` is pushed a few messages from now: prefetches
    /// where its retransmission key and its hop transaction are looked up.
    pub fn soon(&self, rec: &SipRecord) {
        self.retrans.prefetch(rec.key);
        self.txns.prefetch(rec.hop_key());
    }

    /// Feeds the next message in merged order with its payload. Returns
    /// whether it is a retransmission or duplicate (rules.md §A.2).
    pub fn push(
        &mut self,
        rec: SipRecord,
        mut payload: P,
        mark: impl FnOnce(&mut P, bool),
    ) -> bool {
        if rec.at.ts_ns > self.now {
            self.advance(rec.at.ts_ns);
        }
        let repeat = self.retrans.observe(rec.key, rec.at.ts_ns);
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
        self.finish_prepare(end_ns);
        while self.finish_some(end_ns, usize::MAX) {}
        self.gc_slots();
    }

    /// The first step of [`Tracker::finish`]: time runs to `end_ns`, held
    /// responses become orphans, every window closes and every root is
    /// decided. Sessions are then finalised by [`Tracker::finish_some`].
    pub fn finish_prepare(&mut self, end_ns: i64) {
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
            .map(|(id, _)| id)
            .collect();
        ps.sort_unstable();
        for p in ps {
            self.close_window(p);
        }
        let mut ns: Vec<Id> = self
            .attempts
            .iter()
            .filter(|(_, a)| !a.decided)
            .map(|(id, _)| id)
            .collect();
        ns.sort_unstable();
        for n in ns {
            self.try_root(n, true);
        }
        self.finish_from = None;
    }

    /// Finalises up to `max` of the sessions still open after
    /// [`Tracker::finish_prepare`], in start order, first dropping the state
    /// of those finished before whose messages have been drained (so that
    /// the end of a capture with many open sessions, e.g. a scanner burst,
    /// hands them over in bounded steps instead of all at once). Returns
    /// whether some remain. Finalising in steps gives exactly what one pass
    /// gives: each session's summary depends only on its own state and on
    /// sessions finalised before it.
    pub fn finish_some(&mut self, end_ns: i64, max: usize) -> bool {
        self.gc_slots();
        let from = self.finish_from;
        let mut roots: Vec<(i64, Id)> = after(&self.live, from).take(max).copied().collect();
        // Cold sessions take their place in start order (read back first).
        let cold = self.cold_after(from, max);
        if !cold.is_empty() {
            roots.extend(cold.iter().copied());
            roots.sort_unstable();
            roots.truncate(max);
            for &(_, s) in &roots {
                self.thaw_to_finish(s);
            }
        }
        for &(_, s) in &roots {
            self.finalize(s, end_ns);
        }
        self.finish_from = roots.last().copied().or(from);
        after(&self.live, self.finish_from).next().is_some()
            || !self.cold_after(self.finish_from, 1).is_empty()
    }

    /// Whether every session still open has its id (true after
    /// [`Tracker::finish_prepare`] unless a root was left undecided), so
    /// that finishing them hands out none: then the order in which the
    /// partitions are finished cannot change any id. Cold sessions always
    /// have theirs.
    pub fn open_sessions_have_ids(&self) -> bool {
        self.live.iter().all(|(_, s)| {
            self.slots
                .get(s)
                .is_none_or(|x| x.parent.is_some() || x.finalized || x.session.is_some())
        })
    }

    /// Capture time as far as this tracker has run.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// Hands back the payloads whose session is known, in feed order.
    pub fn drain(&mut self, mut out: impl FnMut(P, Option<u64>)) {
        while let Some(q) = self.queue.front() {
            let sid = match q.slot {
                Ref::Pending => break,
                Ref::None => None,
                Ref::Session(id) => Some(id),
                Ref::Slot(s) => match self.session_of(s).or_else(|| self.cold_session(s)) {
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
        let live = self.live.first().map(|&(t, _)| t);
        let cold = self.cold_first().map(|(t, _)| t);
        live.into_iter().chain(cold).min()
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

    /// How many (Call-ID, From tag) CSeq high-water marks are remembered
    /// (a test hook: bounded by the calls heard from in the last window).
    pub fn cseq_marks(&self) -> usize {
        self.max_cseq.len()
    }

    // ------------------------------------------------------------ time

    fn advance(&mut self, to: i64) {
        // Every timer due by `to`: `Idle` is the greatest kind, `Id::MAX`
        // the greatest id.
        while let Some((t, kind, id)) = self.timers.pop_until(&(to, Timer::Idle, Id::MAX)) {
            self.now = self.now.max(t);
            self.prefetch_timer();
            self.thaw_id(id);
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
        while let Some(&(until, a, end)) = self.ended_expiry.front() {
            if until >= self.now {
                break;
            }
            self.ended_expiry.pop_front();
            while self.ended.start() < end {
                self.ended.pop_front();
            }
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

    /// Hints that the next timer's slot or attempt is read soon: timers
    /// come in time order, not in the order their sessions were touched,
    /// so that state has left the caches (the slabs give its place from
    /// the id alone: a slot itself; for an attempt, the pointer to it).
    /// The next timer may be due after this `advance`; then the hint is
    /// early, never wrong.
    fn prefetch_timer(&self) {
        match self.timers.peek() {
            Some((_, Timer::Idle, s)) => self.slots.prefetch(s),
            Some((_, Timer::PClose | Timer::Root, a)) => self.attempts.prefetch(a),
            Some((_, Timer::Held, _)) | None => {}
        }
    }

    fn timer(&mut self, at: i64, kind: Timer, id: Id) {
        self.timers.push((at, kind, id));
    }
}

/// The late-retry watch key of an initial request: method, Call-ID, From tag.
fn late_key(r: &SipRecord) -> u64 {
    h(&(r.method.as_str(), r.call_id(), r.from_tag()))
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn retained_state_sizes_are_pinned() {
        // Kept per open attempt and per session: a regression here is paid
        // for every call in flight.
        use std::mem::size_of;
        assert_eq!(
            (size_of::<Attempt>(), size_of::<Slot>(), size_of::<Ids>()),
            (432, 120, 24)
        );
    }

    #[test]
    fn ids_grow_and_shrink() {
        let mut v = Ids::default();
        assert!(v.is_empty());
        v.push(7);
        assert!(matches!(v, Few::One(7)));
        v.push(9);
        assert_eq!(&*v, &[7, 9]);
        v.retain(|&x| x != 7);
        assert_eq!(v.last(), Some(&9));
        let mut one = Ids::default();
        one.push(3);
        one.retain(|&x| x != 3);
        assert!(one.is_empty());
        one.push(4);
        assert_eq!(&*one, &[4]);
        assert_eq!(one.into_vec(), vec![4]);
    }
}
