//! Sessions as slots: the root slot of each session, its child slots (retry
//! attempts merged into it), the session id a queued message gets, session
//! flags, and the index keys an attempt registered (removed with it).
//! Never decides a link or a verdict: it only records what linking and
//! finishing decided.

use super::*;

impl<P> Tracker<P> {
    // ------------------------------------------------------------ slots

    pub(super) fn root_of(&self, mut s: Id) -> Id {
        while let Some(p) = self.slots.get(&s).and_then(|x| x.parent) {
            s = p;
        }
        s
    }

    pub(super) fn session_of(&self, s: Id) -> Option<u64> {
        self.slots.get(&self.root_of(s)).and_then(|x| x.session)
    }

    pub(super) fn new_slot(&mut self, start: i64) -> Id {
        let id = self.next_slot;
        self.next_slot += ID_STEP;
        self.slots.insert(
            id,
            Slot {
                parent: None,
                session: None,
                attempts: Vec::new(),
                start_ns: start,
                last_ns: start,
                call_ids: Few::default(),
                finalized: false,
                max_seq: 0,
                more: None,
            },
        );
        self.live.insert((start, id));
        self.timer(start + self.w0, Timer::Idle, id);
        id
    }

    /// Assigns queue position `seq` to slot `s` and notes the activity.
    pub(super) fn assign(&mut self, seq: u64, s: Id, rec: &SipRecord) {
        let root = self.root_of(s);
        if let Some(q) = self.queue.get_mut((seq - self.queue_base) as usize) {
            q.slot = Ref::Slot(root);
        }
        let slot = self.slots.get_mut(&root).expect("live slot");
        slot.max_seq = slot.max_seq.max(seq);
        slot.last_ns = slot.last_ns.max(rec.at.ts_ns);
        if !slot.call_ids.iter().any(|c| **c == *rec.call_id()) {
            slot.call_ids.push(rec.call_id().into());
        }
    }

    pub(super) fn assign_session(&mut self, seq: u64, sid: u64) {
        if let Some(q) = self.queue.get_mut((seq - self.queue_base) as usize) {
            q.slot = Ref::Session(sid);
        }
    }

    pub(super) fn assign_none(&mut self, seq: u64) {
        if let Some(q) = self.queue.get_mut((seq - self.queue_base) as usize) {
            q.slot = Ref::None;
        }
    }

    pub(super) fn flag(&mut self, s: Id, f: Mark) {
        let root = self.root_of(s);
        if let Some(slot) = self.slots.get_mut(&root) {
            slot.more_mut().flags.insert(f);
        }
    }

    /// Merges slot `child`'s tree into the tree of `parent`.
    pub(super) fn merge(&mut self, parent: Id, child: Id) {
        let (rp, rc) = (self.root_of(parent), self.root_of(child));
        if rp == rc {
            return;
        }
        let c = self.slots.get_mut(&rc).expect("child slot");
        c.parent = Some(rp);
        let attempts = std::mem::take(&mut c.attempts);
        // The child keeps its late_of (read on roots only), as before.
        let (mut children, flags, related) = match c.more.as_mut() {
            Some(m) => (
                std::mem::take(&mut m.children),
                std::mem::take(&mut m.flags),
                std::mem::take(&mut m.related),
            ),
            None => Default::default(),
        };
        let call_ids = std::mem::take(&mut c.call_ids);
        let (start, last, max_seq) = (c.start_ns, c.last_ns, c.max_seq);
        self.live.remove(&(start, rc));
        children.push(rc);
        let p = self.slots.get_mut(&rp).expect("parent slot");
        p.attempts.extend(attempts);
        let pm = p.more_mut();
        pm.children.extend(children);
        pm.flags.extend(flags);
        pm.related.extend(related);
        for c in call_ids.into_vec() {
            if !p.call_ids.contains(&c) {
                p.call_ids.push(c);
            }
        }
        p.last_ns = p.last_ns.max(last);
        p.max_seq = p.max_seq.max(max_seq);
        if start < p.start_ns {
            let old = p.start_ns;
            p.start_ns = start;
            self.live.remove(&(old, rp));
            self.live.insert((start, rp));
        }
    }

    pub(super) fn unindex(&mut self, k: IndexKey, a: Id) {
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

    pub(super) fn gc_slots(&mut self) {
        while let Some(&(max_seq, s)) = self.gc.front() {
            if max_seq >= self.queue_base && !self.queue.is_empty() {
                break;
            }
            self.gc.pop_front();
            if let Some(slot) = self.slots.remove(&s) {
                for c in slot.more.map(|m| m.children).unwrap_or_default() {
                    self.slots.remove(&c);
                }
            }
        }
        // Forget CSeq high-water marks of calls silent for a whole window
        // (a link that reads one is within W0 of the call's last request,
        // so when this runs never changes a report). It runs when the map
        // has doubled since the last time: amortised O(1) per request, and
        // the map stays within twice the calls heard from in the window,
        // however long the capture (it used to wait for four times the open
        // attempts, which grew with the calls closed early).
        if self.max_cseq.len() > 4096 && self.max_cseq.len() > 2 * self.max_cseq_kept {
            let now = self.now;
            self.max_cseq
                .retain(|_, (_, t)| now - *t <= RETRANSMISSION_WINDOW_NS + self.w0);
            self.max_cseq_kept = self.max_cseq.len();
        }
    }
}
