//! What report.html needs from a run, kept with bounded memory: the
//! `--html-sessions` worst sessions by attention (ties: lower session id),
//! their rows ([`RowStore`], on the rules stage) and their messages
//! ([`LadderStore`], on the tracker's thread). Both keep the same top N,
//! so the result does not depend on the order sessions finish in; the rules
//! stage tells the tracker's side each session's attention so that
//! messages of sessions that cannot make the table are dropped early.
//! Never renders anything (report::html does).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, Sender};

use crate::report::html::HtmlSession;
use crate::report::ladder::{HostRef, LadderRec};

use super::styles::{StyleCache, Styles};
use crate::report::Cell;
use crate::report::rows::{FailureRow, SessionRow};

/// The N best (attention, session) pairs: highest attention, then lowest id.
struct TopN {
    cap: usize,
    set: BTreeSet<(Reverse<u32>, u64)>,
}

impl TopN {
    /// Offers a session: `Ok(evicted)` when it is kept (possibly pushing
    /// out another), `Err(())` when it does not make the table.
    fn offer(&mut self, attention: u32, sid: u64) -> Result<Option<u64>, ()> {
        if attention == 0 || self.cap == 0 {
            return Err(());
        }
        self.set.insert((Reverse(attention), sid));
        if self.set.len() > self.cap {
            let worst = self.set.pop_last().expect("non-empty").1;
            return if worst == sid {
                Err(())
            } else {
                Ok(Some(worst))
            };
        }
        Ok(None)
    }
}

/// A session's rows as report.html may keep them: owned, because they
/// outlive the session they were built from.
pub(crate) struct KeptRows {
    pub row: SessionRow<'static>,
    /// The row's flags cell with INCONSISTENT_EXPERIENCE, when the session
    /// may get that flag.
    pub flagged: Option<Cell<'static>>,
    pub failures: Vec<FailureRow<'static>>,
}

/// The rows of the table's sessions (rules stage side).
pub(crate) struct RowStore {
    top: TopN,
    rows: BTreeMap<u64, (SessionRow<'static>, Vec<FailureRow<'static>>)>,
    /// The rows of kept sessions that may get INCONSISTENT_EXPERIENCE, with
    /// it.
    flagged: BTreeMap<u64, Cell<'static>>,
    /// Sessions with attention > 0.
    pub needing: u64,
    /// Capability failures (failures.csv rows) per minute since the epoch.
    pub failure_minutes: BTreeMap<i64, u64>,
    /// (session, attention) of the sessions taken since the last
    /// [`RowStore::hand_over`]: sent to the tracker side a collection at a
    /// time, not one channel message per session (at `-j2` each send and
    /// receive crosses threads: 200,000 of them at the end of the scanner
    /// burst).
    pending: Vec<(u64, u32)>,
    tx: Sender<Vec<(u64, u32)>>,
}

/// What a message's ladder summary takes from its text, taken by the
/// thread that found the message ([`LadderPre::of`]): its style's id.
pub(crate) struct LadderPre {
    style: u32,
}

impl LadderPre {
    /// `rec`'s, its style interned through `styles`.
    pub fn of(rec: &crate::dialog::SipRecord, styles: &mut StyleCache) -> LadderPre {
        LadderPre {
            style: styles.id(rec),
        }
    }
}

/// The messages of the table's sessions (tracker side). Every message of
/// the run gets a slot in one slab until its session is known not to make
/// the table (then the next sweep frees it): no allocation per message (a
/// slot reused keeps its Call-ID buffer), and the text that many messages
/// share (hosts, method, tags, agent) kept once.
pub(crate) struct LadderStore {
    top: TopN,
    /// Slots: a record and the next slot of its session (or of the free
    /// list); [`NONE`] ends a chain.
    slots: Vec<(LadderRec, u32)>,
    free: u32,
    /// Each slot's session ([`PENDING`] until it is known, [`FREE`] on the
    /// free list). A dropped session's slots are not walked and freed one
    /// by one (a cache miss each: `drop_session` was 2.4 % of a `-j1` run);
    /// [`LadderStore::sweep`] reclaims them in one pass over this array when
    /// the free list runs dry.
    owner: Vec<u64>,
    /// The slab's length at which the next sweep may run.
    sweep_at: usize,
    /// The least growth of the slab between two sweeps.
    sweep_min: usize,
    /// First and last slot of each held session.
    held: rustc_hash::FxHashMap<u64, (u32, u32)>,
    /// The run's IPv6 hosts (`ip:port`), by id ([`HostRef`]).
    hosts: Vec<std::net::SocketAddr>,
    host_ids: rustc_hash::FxHashMap<std::net::SocketAddr, u32>,
    /// This thread's cache of the run's styles (`styles.rs`), for the
    /// records that come without a [`LadderPre`].
    styles: StyleCache,
    /// One bit per session id: its messages are not wanted.
    gone: Vec<u64>,
    /// Last message frame per TCP direction (file, src, dst): each TCP
    /// message's `prev_frame`.
    last: rustc_hash::FxHashMap<(u32, HostRef, HostRef), u64>,
    rx: Receiver<Vec<(u64, u32)>>,
}

/// The end of a slot chain.
const NONE: u32 = u32::MAX;

/// [`LadderStore::owner`] of a slot whose session is not known yet.
const PENDING: u64 = u64::MAX;
/// [`LadderStore::owner`] of a slot on the free list.
const FREE: u64 = u64::MAX - 1;

/// The two halves for a run keeping `cap` sessions.
pub(crate) fn stores(cap: usize) -> (RowStore, LadderStore) {
    let (tx, rx) = std::sync::mpsc::channel();
    let top = || TopN {
        cap,
        set: BTreeSet::new(),
    };
    (
        RowStore {
            top: top(),
            rows: BTreeMap::new(),
            flagged: BTreeMap::new(),
            needing: 0,
            failure_minutes: BTreeMap::new(),
            pending: Vec::new(),
            tx,
        },
        LadderStore {
            top: top(),
            slots: Vec::new(),
            free: NONE,
            owner: Vec::new(),
            sweep_at: 0,
            sweep_min: 1024,
            held: Default::default(),
            hosts: Vec::new(),
            host_ids: Default::default(),
            styles: StyleCache::new(std::sync::Arc::new(Styles::default())),
            gone: Vec::new(),
            last: Default::default(),
            rx,
        },
    )
}

impl RowStore {
    /// A finished session `sid` with attention `att` and the times of
    /// its failures.csv rows; `kept`: its rows, owned (given whenever
    /// `att` > 0, the only sessions the table may show).
    pub fn session(&mut self, sid: u64, att: u32, times: &[i64], kept: Option<KeptRows>) {
        for t in times {
            *self
                .failure_minutes
                .entry(t.div_euclid(60_000_000_000))
                .or_default() += 1;
        }
        // The tracker side learns it whatever the outcome, at the next
        // hand-over.
        self.pending.push((sid, att));
        if att > 0 {
            self.needing += 1;
        }
        // `kept` comes with every session of attention > 0, the only ones
        // the table takes.
        debug_assert_eq!(kept.is_some(), att > 0);
        let Some(k) = kept else { return };
        if let Ok(evicted) = self.top.offer(att, sid) {
            if let Some(e) = evicted {
                self.rows.remove(&e);
                self.flagged.remove(&e);
            }
            self.rows.insert(sid, (k.row, k.failures));
            if let Some(f) = k.flagged {
                self.flagged.insert(sid, f);
            }
        }
    }

    /// Session `sid` got INCONSISTENT_EXPERIENCE (known only at the end of
    /// the batch): a kept row becomes its flagged twin.
    pub fn use_flagged(&mut self, sid: u64) {
        if let (Some((r, _)), Some(f)) = (self.rows.get_mut(&sid), self.flagged.remove(&sid)) {
            r.flags = f;
        }
    }

    /// Sends the attention of the sessions taken since the last call to the
    /// tracker side ([`LadderStore::poll`]), in the order they were taken.
    /// When they arrive changes no report: the tracker side only frees the
    /// messages of sessions that will not make the table sooner or later.
    pub fn hand_over(&mut self) {
        if !self.pending.is_empty() {
            // It may have ended already: then nothing listens.
            let _ = self.tx.send(std::mem::take(&mut self.pending));
        }
    }

    /// The table, worst first, with the messages `ladders` kept.
    pub fn finish(mut self, mut ladders: LadderStore) -> Vec<HtmlSession> {
        self.hand_over();
        ladders.poll();
        self.top
            .set
            .iter()
            .filter_map(|&(_, sid)| {
                let (row, failures) = self.rows.get(&sid)?.clone();
                let msgs = ladders.take(sid);
                Some(HtmlSession {
                    row,
                    failures,
                    msgs,
                })
            })
            .collect()
    }
}

impl LadderStore {
    fn is_gone(&self, sid: u64) -> bool {
        self.gone
            .get((sid / 64) as usize)
            .is_some_and(|w| w & (1 << (sid % 64)) != 0)
    }

    /// Puts `slot` on the free list. Its record stays as it is: the next
    /// [`LadderStore::summary`] overwrites all of it and reuses its Call-ID
    /// buffer.
    fn release(&mut self, slot: u32) {
        self.slots[slot as usize].1 = self.free;
        self.owner[slot as usize] = FREE;
        self.free = slot;
    }

    /// Frees every slot of a dropped session, in one pass over `owner` (8
    /// bytes a slot). A sweep is paid for by what follows it: when it freed
    /// a sixteenth of the slab or more, the next one runs as soon as those
    /// are used up; otherwise only once the slab has grown by a sixteenth
    /// (at least `sweep_min` slots). Slots of dropped sessions waiting for
    /// a sweep are then at most about a sixteenth of the slab (a quarter
    /// held 10 MiB more at the peak of udp2000-60s; a sixteenth costs a
    /// few dozen sweeps of a few MB a run).
    fn sweep(&mut self) {
        let mut freed = 0;
        for i in 0..self.owner.len() {
            let o = self.owner[i];
            if o != PENDING && o != FREE && self.is_gone(o) {
                self.release(i as u32);
                freed += 1;
            }
        }
        let n = self.slots.len();
        self.sweep_at = if freed >= n / 16 && freed > 0 {
            n
        } else {
            n + (n / 16).max(self.sweep_min)
        };
    }

    /// Session `sid` cannot make the table: its chain is forgotten (its
    /// slots go at the next sweep) and its later messages are not kept.
    fn drop_session(&mut self, sid: u64) {
        self.held.remove(&sid);
        let i = (sid / 64) as usize;
        if self.gone.len() <= i {
            self.gone.resize(i + 1, 0);
        }
        self.gone[i] |= 1 << (sid % 64);
    }

    /// Takes the attention of the sessions evaluated since the last call.
    pub fn poll(&mut self) {
        while let Ok(batch) = self.rx.try_recv() {
            for (sid, att) in batch {
                match self.top.offer(att, sid) {
                    Ok(Some(e)) => self.drop_session(e),
                    Ok(None) => {}
                    Err(()) => self.drop_session(sid),
                }
            }
        }
    }

    fn host(&mut self, a: std::net::SocketAddr) -> HostRef {
        HostRef::new(a, || {
            *self.host_ids.entry(a).or_insert_with(|| {
                self.hosts.push(a);
                (self.hosts.len() - 1) as u32
            })
        })
    }

    /// The run's style table, for the threads that find the messages.
    pub fn styles(&self) -> std::sync::Arc<Styles> {
        self.styles.table().clone()
    }

    /// Files the ladder summary of a record, in capture order (every
    /// message of the run passes here; `pre`: what the thread that found
    /// it took from its text, taken here when absent; `tcp`: it came over a
    /// TCP stream): the slot to hand to [`LadderStore::message`].
    pub fn summary(
        &mut self,
        rec: &crate::dialog::SipRecord,
        pre: Option<LadderPre>,
        tcp: bool,
    ) -> u32 {
        let (src, dst) = (self.host(rec.at.src), self.host(rec.at.dst));
        let style = match pre {
            Some(p) => p.style,
            None => self.styles.id(rec),
        };
        if self.free == NONE && self.slots.len() >= self.sweep_at {
            self.sweep();
        }
        let slot = if self.free != NONE {
            let slot = self.free;
            let s = &mut self.slots[slot as usize];
            self.free = s.1;
            s.0.fill(rec, src, dst, style);
            s.1 = NONE;
            self.prefetch_free();
            slot
        } else {
            self.slots.push((LadderRec::of(rec, src, dst, style), NONE));
            self.owner.push(PENDING);
            (self.slots.len() - 1) as u32
        };
        self.owner[slot as usize] = PENDING;
        if tcp {
            self.slots[slot as usize].0.prev_frame = self
                .last
                .insert((rec.at.file, src, dst), rec.at.frame)
                .unwrap_or(0);
        }
        slot
    }

    /// Prefetches what the next two [`LadderStore::summary`] calls take
    /// from the free list: the next slot's Call-ID buffer and owner entry,
    /// and the slot after it (whose link is read at the next call). Freed
    /// slots lie anywhere in the slab, long out of the cache: taking one
    /// and filling it waited on memory (`LadderStore::summary` and
    /// `LadderRec::fill` were 14 % of the tracking thread's samples at
    /// `-j2` on udp2000-60s, mostly on their first loads).
    fn prefetch_free(&self) {
        let Some((next, after)) = self.slots.get(self.free as usize) else {
            return;
        };
        next.prefetch_text();
        crate::prefetch::value(&self.owner[self.free as usize]);
        if let Some(s) = self.slots.get(*after as usize) {
            crate::prefetch::value(s);
        }
    }

    /// Marks the message in `slot` a retransmission (or not).
    pub fn set_retransmission(&mut self, slot: u32, repeat: bool) {
        self.slots[slot as usize].0.retransmission = repeat;
    }

    /// The message in `slot`, released by the tracker with its session
    /// (`None`: it has none, and is not shown).
    pub fn message(&mut self, sid: Option<u64>, slot: u32) {
        let Some(sid) = sid.filter(|&s| !self.is_gone(s)) else {
            self.release(slot);
            return;
        };
        self.owner[slot as usize] = sid;
        match self.held.get_mut(&sid) {
            Some((_, tail)) => {
                let prev = std::mem::replace(tail, slot);
                self.slots[prev as usize].1 = slot;
            }
            None => {
                self.held.insert(sid, (slot, slot));
            }
        }
    }

    /// The messages of session `sid`, in the order they came, expanded.
    fn take(&mut self, sid: u64) -> Vec<crate::report::ladder::LadderMsg> {
        let mut out = Vec::new();
        let Some((head, _)) = self.held.remove(&sid) else {
            return out;
        };
        let mut slot = head;
        while slot != NONE {
            let (rec, next) = &self.slots[slot as usize];
            out.push(rec.expand(&self.hosts, &self.styles.table().fields(rec.style())));
            let here = slot;
            slot = *next;
            self.release(here);
        }
        out
    }
}

/// What the page shows of the run besides the sessions.
pub(crate) struct RunFacts<'a> {
    pub inputs: &'a [crate::report::rows::InputRow],
    pub totals: &'a [(&'static str, u64)],
    pub summary: &'a [crate::report::rows::SummaryRow],
    pub policy: &'a str,
    pub files: &'a [String],
    pub pcap_dir: Option<&'a std::path::Path>,
    /// The directory report.html ends up in (its links are relative to it).
    pub report_dir: &'a std::path::Path,
    /// The input paths to open, by index.
    pub paths: &'a [std::path::PathBuf],
}

/// The name of the report in the output directory.
pub(crate) const REPORT: &str = "report.html";

/// Writes report.html (unless `html` is false) and the per-session pcaps of
/// its table (with `pcap_dir`).
pub(crate) fn write(
    dir: &std::path::Path,
    rows: RowStore,
    ladders: LadderStore,
    facts: &RunFacts<'_>,
    html: bool,
) -> Result<(), crate::Error> {
    let needing = rows.needing;
    let minutes = rows.failure_minutes.clone();
    let sessions = rows.finish(ladders);
    if let Some(pd) = facts.pcap_dir {
        super::extract::table_pcaps(facts.paths, &sessions, pd)?;
    }
    if !html {
        // An earlier report.html is removed when the run's reports are
        // moved into place (out_dir.rs: sipaudit's own names not written).
        return Ok(());
    }
    let dim = |d: &str| -> Vec<(String, u64)> {
        facts
            .summary
            .iter()
            .filter(|r| r.dimension == d)
            .map(|r| (r.value.0.clone(), r.count))
            .collect()
    };
    // Bars are drawn bottom-up: the least severe verdict first, so the
    // most severe is on top.
    let mut verdicts = dim("verdict");
    verdicts.sort_by_key(|(v, _)| {
        std::cmp::Reverse(
            v.parse::<crate::rules::catalogue::Verdict>()
                .map_or(usize::MAX, crate::rules::catalogue::Verdict::rank),
        )
    });
    let page = crate::report::html::render(&crate::report::html::HtmlRun {
        inputs: facts.inputs,
        totals: facts.totals,
        policy: facts.policy,
        verdicts,
        failure_classes: dim("failure_class"),
        policy_verdicts: dim("policy_verdict"),
        failure_minutes: &minutes,
        sessions: &sessions,
        needing,
        files: facts.files,
        pcap_dir: facts.pcap_dir.map(|p| link_base(facts.report_dir, p)),
    });
    let path = dir.join(REPORT);
    std::fs::write(&path, page).map_err(|source| {
        crate::ErrorKind::Output {
            path: path.clone(),
            source,
        }
        .into()
    })
}

/// How report.html (in `dir`) names the pcap directory: relative when it
/// is inside `dir`, else as given (absolute when given absolute).
fn link_base(dir: &std::path::Path, pcaps: &std::path::Path) -> String {
    match pcaps.strip_prefix(dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        Ok(_) => ".".into(),
        Err(_) => std::path::absolute(pcaps)
            .unwrap_or_else(|_| pcaps.to_path_buf())
            .display()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_n_keeps_the_worst_then_lowest_ids_whatever_the_order() {
        let offers = [(3, 5), (0, 1), (7, 9), (3, 2), (7, 4), (1, 3)];
        let mut a = TopN {
            cap: 3,
            set: BTreeSet::new(),
        };
        let mut b = TopN {
            cap: 3,
            set: BTreeSet::new(),
        };
        for &(att, sid) in &offers {
            let _ = a.offer(att, sid);
        }
        for &(att, sid) in offers.iter().rev() {
            let _ = b.offer(att, sid);
        }
        let ids = |t: &TopN| t.set.iter().map(|x| x.1).collect::<Vec<_>>();
        assert_eq!(ids(&a), [4, 9, 2]);
        assert_eq!(ids(&a), ids(&b));
    }

    #[test]
    fn messages_of_dropped_sessions_are_not_held_and_slots_are_reused() {
        let (_rows, mut l) = stores(1);
        // Sweep whenever the free list is empty.
        l.sweep_min = 1;
        let a: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let text = "OPTIONS sip:x@y SIP/2.0\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let rec = crate::dialog::SipRecord::from_text(text, 1, 0, a, a);
        for sid in [1, 2, 1, 2] {
            let slot = l.summary(&rec, None, false);
            l.message(Some(sid), slot);
        }
        let orphan = l.summary(&rec, None, false);
        l.message(None, orphan);
        assert_eq!(l.free, orphan);
        l.top.offer(5, 2).unwrap();
        // Session 1 is evaluated with attention 0: its messages go.
        l.drop_session(1);
        let slot = l.summary(&rec, None, false);
        l.message(Some(1), slot);
        assert!(!l.held.contains_key(&1));
        assert_eq!(l.slots.len(), 5, "freed slots are reused");
        // Session 1's two slots come back at the sweep, not one by one.
        assert_eq!(l.owner.iter().filter(|&&o| o == 1).count(), 2);
        let again: Vec<u32> = (0..3).map(|_| l.summary(&rec, None, false)).collect();
        assert_eq!(l.slots.len(), 5, "swept slots are reused: {again:?}");
        assert!(again.contains(&0) && again.contains(&2));
        for s in again {
            l.message(None, s);
        }
        let msgs = l.take(2);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (msgs[0].method.as_str(), msgs[0].call_id.as_str()),
            ("OPTIONS", "c")
        );
        assert_eq!(l.styles.table().len(), 1);
        assert!(
            l.hosts.is_empty() && l.last.is_empty(),
            "IPv4 UDP: no tables"
        );
    }
}
