//! Requests: hop transactions of requests, initial requests as attempts
//! (rules.md §A.1), in-dialog requests and the dialogs they belong to
//! (including ACK/BYE evidence of a lost 2xx), and the highest CSeq per
//! Call-ID and From tag. Hands each initial request to linking; never
//! scores a link itself.

use super::*;

impl<P> Tracker<P> {
    // ------------------------------------------------------------ messages

    pub(super) fn process(&mut self, seq: u64, rec: SipRecord, repeat: bool) {
        self.thaw_for(&rec);
        if rec.is_request() {
            self.request(seq, rec, repeat);
        } else {
            self.response(seq, rec, true);
        }
    }

    pub(super) fn note_cseq(&mut self, rec: &SipRecord) {
        let k = h(&(rec.call_id(), &rec.from_tag()));
        let e = self.max_cseq.entry(k).or_insert((0, rec.at.ts_ns));
        e.0 = e.0.max(rec.cseq);
        e.1 = rec.at.ts_ns;
    }

    pub(super) fn request(&mut self, seq: u64, rec: SipRecord, repeat: bool) {
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
                    if rec.method == Method::Ack && !non2xx_ack && !at.has_final() {
                        self.ack_without_2xx(a, &rec);
                    }
                    if (non2xx_ack || rec.method == Method::Cancel)
                        && (!rec.require().is_empty() || !rec.proxy_require().is_empty())
                    {
                        // rules.md §B.5 L4.
                        self.flag(slot, Mark::RequireInCancelOrAck);
                    }
                    self.assign(seq, slot, &rec);
                    if rec.method == Method::Cancel {
                        let tk = txn_key(&rec);
                        self.txns.insert(tk, (a, TxnKind::Cancel));
                        let at = self.attempts.get_mut(&a).expect("attempt");
                        at.keys.push(IndexKey::Txn(tk));
                        if at.cancel_ns.is_none() {
                            at.cancel_ns = Some(rec.at.ts_ns);
                            if !at.got_1xx {
                                self.flag(slot, Mark::CancelBefore1xx);
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

    /// An ACK on a new branch with a To tag, for an INVITE whose final
    /// response was not captured: the ACK of a lost 2xx. The dialog it names
    /// is confirmed, so the BYE that follows joins this session and the
    /// attempt counts as ESTABLISHED (issue 12 items 5 and 6).
    pub(super) fn ack_without_2xx(&mut self, a: Id, rec: &SipRecord) {
        let (Some(ft), Some(tt)) = (rec.from_tag(), rec.to_tag()) else {
            return;
        };
        self.confirm_lost_2xx(a, rec.call_id(), ft, tt);
    }

    /// Attempt `a` (tag `ft` of `call_id`) has a confirmed dialog with the
    /// remote tag `tt`, although its 2xx was not captured.
    pub(super) fn confirm_lost_2xx(&mut self, a: Id, call_id: &str, ft: &str, tt: &str) {
        let dk = dialog_key(call_id, ft, tt);
        let at = self.attempts.get_mut(&a).expect("attempt");
        let m = at.more();
        if m.acked_2xx.is_some() || m.confirmed_tags.iter().any(|x| **x == *tt) {
            return;
        }
        let m = at.more_mut();
        m.acked_2xx = Some(tt.into());
        push_tight(&mut m.confirmed_tags, tt.into());
        at.open_dialogs += 1;
        at.keys.push(IndexKey::Dialog(dk));
        self.dialogs.insert(dk, a);
    }

    /// A BYE of a dialog not seen, whose INVITE is in the capture without a
    /// final response (in either direction: the callee's BYE carries the
    /// tags swapped): the 2xx was lost and the BYE belongs to that session
    /// (issue 12 item 6). Registers the dialog and returns the attempt.
    pub(super) fn lost_2xx_dialog(&mut self, rec: &SipRecord) -> Option<Id> {
        if rec.method != Method::Bye {
            return None;
        }
        let (ft, tt) = (rec.from_tag()?, rec.to_tag()?);
        for (mine, remote) in [(ft, tt), (tt, ft)] {
            let found = self
                .call_tag_attempts(rec.call_id(), Some(mine))
                .iter()
                .copied()
                .rev()
                .find(|x| {
                    self.attempts.get(x).is_some_and(|at| {
                        at.request.method == Method::Invite
                            && !at.has_final()
                            && !at.start_missing
                            && at.request.at.ts_ns <= rec.at.ts_ns
                    })
                });
            if let Some(a) = found {
                self.confirm_lost_2xx(a, rec.call_id(), mine, remote);
                return Some(a);
            }
        }
        None
    }

    /// An in-dialog request: found by its dialog (or a remembered ended
    /// one, or a dialog whose 2xx was lost), or the start of a dialog whose
    /// beginning is not in the capture; a new transaction keeps its request.
    pub(super) fn in_dialog(&mut self, seq: u64, rec: SipRecord, _repeat: bool) {
        let (Some(ft), Some(tt)) = (&rec.from_tag(), &rec.to_tag()) else {
            self.assign_none(seq);
            return;
        };
        let dk = dialog_key(rec.call_id(), ft, tt);
        if !self.dialogs.contains_key(&dk) {
            if let Some(&sid) = self.ended.get(dk) {
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
            None => self.start_missing(&rec, dk),
        };
        if rec.method == Method::Bye {
            self.bye_after_lost_2xx(a, &rec, ft, tt);
        }
        self.note_cseq(&rec);
        // A new in-dialog transaction keeps its request: moved in below,
        // after its last read here (nothing before that reads `in_dialog`).
        let keep = self.index_in_dialog(a, &rec);
        if rec.method == Method::Prack {
            self.match_prack(a, &rec, tt);
        }
        let slot = self.attempts[&a].slot;
        self.assign(seq, slot, &rec);
        if keep {
            self.keep_in_dialog(a, rec);
        } else {
            self.release_held(&rec);
        }
    }

    /// Indexes in-dialog request `rec`'s transaction under attempt `a`;
    /// whether it is a new transaction whose request is to be kept (not an
    /// ACK, not one already known).
    fn index_in_dialog(&mut self, a: Id, rec: &SipRecord) -> bool {
        let tk = txn_key(rec);
        let keep = rec.method != Method::Ack
            && !self.txns.contains_key(&tk)
            && !self.attempts[&a]
                .more()
                .in_dialog
                .iter()
                .any(|t| t.req.cseq == rec.cseq && t.req.method == rec.method);
        self.txns.insert(
            tk,
            (
                a,
                TxnKind::InDialog {
                    bye: rec.method == Method::Bye,
                },
            ),
        );
        self.attempts
            .get_mut(&a)
            .expect("attempt")
            .keys
            .push(IndexKey::Txn(tk));
        keep
    }

    /// Keeps new in-dialog transaction `rec` in attempt `a`, then releases
    /// the responses held for it (a held response may answer it, so the
    /// transaction is kept first).
    fn keep_in_dialog(&mut self, a: Id, rec: SipRecord) {
        let (request, then) = if self.held.is_empty() {
            (rec, None)
        } else {
            (rec.clone(), Some(rec))
        };
        let at = self.attempts.get_mut(&a).expect("attempt");
        push_tight(&mut at.more_mut().in_dialog, InDialogTxn::new(request));
        if let Some(rec) = then {
            self.release_held(&rec);
        }
    }

    /// A dialog (key `dk`) whose start is not in the capture (rules.md
    /// §A.1): a new attempt and session for in-dialog request `rec`, flagged
    /// MID_DIALOG.
    fn start_missing(&mut self, rec: &SipRecord, dk: u64) -> Id {
        let slot = self.new_slot(rec.at.ts_ns);
        let a = self.new_attempt(slot, rec.clone());
        let at = self.attempts.get_mut(&a).expect("attempt");
        at.start_missing = true;
        at.decided = true;
        at.keys.push(IndexKey::Dialog(dk));
        // Its request is also its first in-dialog transaction (in_dialog),
        // which keeps the final response (issue 12 item 8).
        self.txns.remove(&txn_key(rec));
        if rec.method != Method::Bye {
            at.open_dialogs = 1;
        }
        self.dialogs.insert(dk, a);
        let sid = self.new_session_id();
        let s = self.slots.get_mut(&slot).expect("slot");
        s.session = Some(sid);
        s.more_mut().flags.insert(Mark::MidDialog);
        a
    }

    /// A BYE (tags `ft`, `tt`) in a dialog of attempt `a` whose INVITE has
    /// no final response captured: the 2xx was lost (a 487 captured later
    /// still wins).
    fn bye_after_lost_2xx(&mut self, a: Id, rec: &SipRecord, ft: &str, tt: &str) {
        let lost = self.attempts.get(&a).is_some_and(|at| {
            !at.has_final() && at.more().acked_2xx.is_none() && !at.start_missing
        });
        if !lost {
            return;
        }
        let mine = self.attempts[&a].request.from_tag().map(str::to_string);
        let remote = if mine.as_deref() == Some(ft) { tt } else { ft };
        if let Some(mine) = mine {
            self.confirm_lost_2xx(a, rec.call_id(), &mine, remote);
        }
    }

    /// A PRACK acknowledges the reliable provisional response of attempt
    /// `a` from To tag `tt` with the RSeq of its RAck; one that matches none
    /// is flagged.
    fn match_prack(&mut self, a: Id, rec: &SipRecord, tt: &str) {
        let Some((rseq, _, _)) = &rec.rack else {
            return;
        };
        let at = self.attempts.get_mut(&a).expect("attempt");
        let mut matched = false;
        for r in at.more.iter_mut().flat_map(|m| m.reliable.iter_mut()) {
            if *r.0 == *tt && r.1 == *rseq {
                r.2 = true;
                matched = true;
            }
        }
        if !matched {
            let slot = at.slot;
            self.flag(slot, Mark::PrackUnmatched);
        }
    }

    pub(super) fn new_attempt(&mut self, slot: Id, rec: SipRecord) -> Id {
        let id = self.next_attempt;
        self.next_attempt += ID_STEP;
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
                open_dialogs: 0,
                start_missing: false,
                keys: vec![
                    IndexKey::Attempt(ak),
                    IndexKey::Txn(tk),
                    IndexKey::CallTag(ct),
                ],
                p_open: false,
                open_ps: 0,
                linked: None,
                decided: false,
                max_uac_cseq: None,
                acked_failure: false,
                premature_retry: false,
                late_candidate: false,
                leg_relaxed: false,
                more: None,
            }),
        );
        id
    }

    /// An initial request: a copy of a known attempt, or a new attempt in
    /// a new slot, related to its B2BUA legs, watched for late retries and
    /// linked to the failed attempts it may retry.
    pub(super) fn initial(&mut self, seq: u64, rec: SipRecord) {
        let ak = attempt_key(rec.call_id(), rec.from_tag(), rec.cseq, &rec.method);
        // A copy of a known attempt: a retransmission, or the same request
        // at another hop (same UAC branch, rules.md §A.1, §A.6).
        let same = self.attempt_keys.get(&ak).and_then(|v| {
            v.iter()
                .copied()
                .find(|a| self.attempts[a].request.bottom_branch() == rec.bottom_branch())
        });
        if let Some(a) = same {
            return self.copy_of_attempt(seq, a, rec);
        }
        let max_before = self
            .max_cseq
            .get(&h(&(rec.call_id(), &rec.from_tag())))
            .map(|e| e.0);
        self.note_cseq(&rec);
        let ts_ns = rec.at.ts_ns;
        let corr = corr_keys(&rec);
        let slot = self.new_slot(ts_ns);
        self.assign(seq, slot, &rec);
        let n = self.new_attempt(slot, rec);
        self.attempts.get_mut(&n).expect("attempt").max_uac_cseq = max_before;
        for &(k, _) in &corr {
            self.relate_legs(n, slot, k, ts_ns);
        }
        self.watch_late_retry(n, slot, ts_ns);
        self.link_candidates(n, &corr);
        self.recent_initial.push_back((ts_ns, n));
        self.timer(ts_ns + SKEW_NS + 1, Timer::Root, n);
        if !self.held.is_empty() {
            let r = self.attempts[&n].request.clone();
            self.release_held(&r);
        }
    }

    /// `rec` is a copy of attempt `a`'s request: its transaction key joins
    /// the attempt's; a copy at another hop with other Require or
    /// Proxy-Require is a proxy's rewrite, and the copy with the fewest Vias
    /// (the UA's own, rules.md §A.6) is the one evaluated.
    fn copy_of_attempt(&mut self, seq: u64, a: Id, rec: SipRecord) {
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
            self.flag(slot, Mark::ProxyRewrite);
        }
        self.txns.insert(tk, (a, TxnKind::Initial));
        self.assign(seq, slot, &rec);
        if fewer_vias {
            // Evaluate the UA's own copy (rules.md §A.6).
            let at = self.attempts.get_mut(&a).expect("attempt");
            let (ts, frame, file) = (at.request.at.ts_ns, at.request.at.frame, at.request.at.file);
            at.request = rec;
            (at.request.at.ts_ns, at.request.at.frame, at.request.at.file) = (ts, frame, file);
        } else {
            self.release_held(&rec);
        }
    }

    /// B2BUA legs: the new attempt `n` (in `slot`) shares correlation value
    /// `k` with the attempts that carried it within W0. Each such pair of
    /// sessions is related, and an earlier leg is marked when the later one
    /// no longer requires what it did (rules.md §A.6).
    fn relate_legs(&mut self, n: Id, slot: Id, k: u64, ts_ns: i64) {
        let w0 = self.w0;
        let list = self.corr.entry(k).or_default();
        list.retain(|(_, t)| ts_ns - *t <= w0);
        if list.len() >= CORR_MAX {
            // Shared by too many calls to tell legs apart (a constant
            // value from a broken element): not evidence.
            return;
        }
        let others: Vec<Id> = list.iter().map(|&(o, _)| o).collect();
        list.push((n, ts_ns));
        for other in others {
            let Some(o) = self.attempts.get(&other) else {
                continue;
            };
            let (so, sn) = (self.root_of(o.slot), self.root_of(slot));
            let new = &self.attempts[&n].request;
            if leg_relaxed(&o.request, new) && o.request.method == new.method {
                if let Some(o) = self.attempts.get_mut(&other) {
                    o.leg_relaxed = true;
                }
            }
            if so != sn {
                if let Some(x) = self.slots.get_mut(&so) {
                    x.more_mut().related.insert(n);
                }
                if let Some(x) = self.slots.get_mut(&sn) {
                    x.more_mut().related.insert(other);
                }
            }
        }
        self.attempts
            .get_mut(&n)
            .expect("attempt")
            .keys
            .push(IndexKey::Corr(k));
    }

    /// G.19: the new attempt `n` (in `slot`) may retry a failure whose
    /// window has closed: one of the same Call-ID and From tag, or one
    /// watched by its late key for LATE_WATCH × W0.
    fn watch_late_retry(&mut self, n: Id, slot: Id, ts_ns: i64) {
        let w0 = self.w0;
        for &p in self
            .call_tag_attempts(
                self.attempts[&n].request.call_id(),
                self.attempts[&n].request.from_tag(),
            )
            .iter()
        {
            let nm = self.attempts[&n].request.method.clone();
            if let Some(pa) = self.attempts.get_mut(&p) {
                if p != n
                    && !pa.p_open
                    && pa.request.method == nm
                    && pa
                        .final_response
                        .as_ref()
                        .is_some_and(|f| f.status.unwrap_or(0) >= 300 && ts_ns - f.at.ts_ns > w0)
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
    }

    /// Retry candidates of the new attempt `n`: failed attempts with an
    /// open window, found by its link keys and by its correlation values
    /// `corr`, each considered once in id order.
    fn link_candidates(&mut self, n: Id, corr: &[(u64, f32)]) {
        let mut ps: Vec<Id> = {
            let r = &self.attempts[&n].request;
            self.windows
                .candidates(r.call_id(), r.method.as_str(), r.link())
        };
        for &(k, _) in corr {
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
    }
}

/// rules.md §A.6: the later leg `b` of a B2BUA no longer requires an
/// IMS_CORE capability the earlier leg `a` did (an option tag in Require or
/// Proxy-Require, or mandatory SDP preconditions).
fn leg_relaxed(a: &SipRecord, b: &SipRecord) -> bool {
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
}
