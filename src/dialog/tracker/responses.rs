//! Responses: finding the transaction a response answers, early and
//! confirmed dialogs, the final response of an attempt (which opens its
//! retry window through linking), orphans and responses held for clock
//! skew (rules.md §A.2). Never finalises a session.

use super::*;

impl<P> Tracker<P> {
    // ------------------------------------------------------------ responses

    /// The hop transaction of a response: its request was seen.
    pub(super) fn find_exact(&self, rec: &SipRecord) -> Option<(Id, TxnKind)> {
        self.txns.get(&txn_key(rec)).copied()
    }

    /// The transaction of a response, or failing that the attempt or dialog
    /// it belongs to (a response captured where its request was not).
    pub(super) fn find_txn(&self, rec: &SipRecord) -> Option<(Id, TxnKind)> {
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

    pub(super) fn response(&mut self, seq: u64, rec: SipRecord, may_hold: bool) {
        let found = if may_hold {
            self.find_exact(&rec)
        } else {
            self.find_txn(&rec)
        };
        let Some((a, kind)) = found else {
            if let Some(&sid) = self.ended.get(txn_key(&rec)) {
                self.assign_session(seq, sid);
                return;
            }
            if may_hold {
                // Perhaps its request comes a little later (clock skew
                // between capture points, rules.md §A.2).
                self.timer(rec.at.ts_ns + SKEW_NS, Timer::Held, 0);
                self.held.push_back(Held {
                    seq,
                    deadline: rec.at.ts_ns + SKEW_NS,
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
                if let Some(m) = at.more.as_deref_mut().filter(|_| status >= 200) {
                    let txns = &mut m.in_dialog;
                    let found = txns.iter().position(|t| {
                        t.req.cseq == rec.cseq
                            && t.req.method == rec.method
                            && t.final_status.is_none()
                    });
                    if let Some(i) = found {
                        txns[i].final_status = Some(status);
                        if status >= 300 {
                            txns[i].failure = Some(Box::new(rec));
                        }
                        InDialogTxn::release_settled(txns);
                    }
                }
            }
            TxnKind::Initial => self.initial_response(a, rec),
        }
    }

    /// A response to attempt `a`'s initial request: its sources and
    /// answers, then by class: an early dialog, a confirmed one, a refusal
    /// from another branch (rules.md §A.4), or the attempt's failure.
    pub(super) fn initial_response(&mut self, a: Id, rec: SipRecord) {
        let status = rec.status.unwrap_or(0);
        self.note_sources_and_answers(a, &rec, status);
        let at = self.attempts.get_mut(&a).expect("attempt");
        if (100..200).contains(&status) {
            at.got_1xx = true;
            self.provisional(a, &rec, status);
        } else if (200..300).contains(&status) {
            self.success(a, rec);
        } else if status == 420 && at.answered_by_another_branch(rec.to_tag()) {
            // A branch refused after another branch answered (§A.4).
            let slot = at.slot;
            self.flag(slot, Mark::ForkMixedCapability);
        } else if status >= 300 && !at.has_final() {
            self.first_failure(a, rec, status);
        }
    }

    /// The sources of the attempt's final response (each copy of the same
    /// one), and the digest of each distinct 1xx/2xx answer.
    fn note_sources_and_answers(&mut self, a: Id, rec: &SipRecord, status: u16) {
        let at = self.attempts.get_mut(&a).expect("attempt");
        if status >= 200 && at.same_final(rec) && !at.more().final_sources.contains(&rec.at.src) {
            push_tight(&mut at.more_mut().final_sources, rec.at.src);
        }
        if (101..300).contains(&status) {
            // The digest once: its To-tag key is what copies are compared by.
            let answer = Answer::of(rec);
            if !at.more().answers.iter().any(|x| x.same(&answer)) {
                push_tight(&mut at.more_mut().answers, answer);
            }
        }
    }

    /// A 1xx with a To tag: an early dialog (beyond 100), and its reliable
    /// provisional responses by RSeq.
    fn provisional(&mut self, a: Id, rec: &SipRecord, status: u16) {
        let (Some(ft), Some(tt)) = (rec.from_tag(), rec.to_tag()) else {
            return;
        };
        let dk = dialog_key(rec.call_id(), ft, tt);
        let at = self.attempts.get_mut(&a).expect("attempt");
        if status > 100 && !at.more().early_tags.iter().any(|x| **x == *tt) {
            push_tight(&mut at.more_mut().early_tags, tt.into());
            at.keys.push(IndexKey::Dialog(dk));
            self.dialogs.insert(dk, a);
        }
        let at = self.attempts.get_mut(&a).expect("attempt");
        if let Some(rseq) = rec.rseq {
            if !at
                .more()
                .reliable
                .iter()
                .any(|r| *r.0 == *tt && r.1 == rseq)
            {
                push_tight(&mut at.more_mut().reliable, (tt.into(), rseq, false));
            }
        }
    }

    /// A 2xx: a confirmed dialog (a second one is a forked answer), the
    /// attempt's final response unless it has a 2xx already; after a
    /// failure from another branch (§A.4) the retry window closes.
    fn success(&mut self, a: Id, rec: SipRecord) {
        let mut flags: Vec<Mark> = Vec::new();
        let is_invite = rec.method == Method::Invite;
        let at = self.attempts.get_mut(&a).expect("attempt");
        let slot = at.slot;
        if let (Some(ft), Some(tt)) = (rec.from_tag(), rec.to_tag()) {
            let dk = dialog_key(rec.call_id(), ft, tt);
            let m = at.more_mut();
            if !m.confirmed_tags.iter().any(|x| **x == *tt) {
                push_tight(&mut m.confirmed_tags, tt.into());
                if m.confirmed_tags.len() > 1 {
                    flags.push(Mark::ForkedMultiAnswer);
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
        if at.cancel_ns.is_some() && !at.has_final() {
            flags.push(Mark::CancelRaceAnswered);
        }
        let mut branch_failure = false;
        if let Some(f) = &at.final_response {
            if f.status.unwrap_or(0) >= 300 && f.to_tag() != rec.to_tag() {
                // A failure from one branch of a forking proxy, then a
                // 2xx from another (rules.md §A.4): not a failure of
                // the attempt.
                branch_failure = true;
                if f.status == Some(420) {
                    flags.push(Mark::ForkMixedCapability);
                }
            }
        }
        if at.final_is_failure_or_none() {
            at.set_success(rec);
        }
        for f in flags {
            self.flag(slot, f);
        }
        if branch_failure {
            self.close_window(a);
        }
    }

    /// The attempt's first final response, a failure: unless the caller
    /// cancelled (487, rules.md G.6), P is open for W0 and its retry window
    /// is indexed; a retry captured up to skew_tol before it is considered
    /// now (rules.md §A.3 D4).
    fn first_failure(&mut self, a: Id, rec: SipRecord, status: u16) {
        let at = self.attempts.get_mut(&a).expect("attempt");
        let fts = rec.at.ts_ns;
        at.final_response = Some(Box::new(rec));
        if status == 487 && at.cancel_ns.is_some() {
            // The caller hung up: no retry is expected (rules.md G.6).
            return;
        }
        at.p_open = true;
        let premature = self.premature_retry(a, fts);
        let at = self.attempts.get_mut(&a).expect("attempt");
        at.premature_retry = premature;
        let f = at.final_response.as_ref().expect("just set");
        let wk = self.windows.open(
            a,
            (
                at.request.call_id(),
                at.request.method.as_str(),
                at.request.link(),
            ),
            status,
            f.reply.as_deref(),
        );
        at.keys.extend(wk.into_iter().map(IndexKey::Window));
        self.timer(fts + self.w0, Timer::PClose, a);
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

    /// rules.md D4: an H0-like request sent after attempt `a`'s request but
    /// more than skew_tol before its failure (at `fts`) is not a retry of
    /// it; the failure is flagged.
    fn premature_retry(&self, a: Id, fts: i64) -> bool {
        let p = &self.attempts[&a].request;
        self.call_tag_attempts(p.call_id(), p.from_tag())
            .iter()
            .any(|&n| {
                n != a
                    && self.attempts.get(&n).is_some_and(|x| {
                        let r = &x.request;
                        r.method == p.method
                            && r.at.ts_ns > p.at.ts_ns
                            && r.at.ts_ns < fts - SKEW_NS
                            && r.cseq > p.cseq
                    })
            })
    }

    pub(super) fn orphan(&mut self, seq: u64, rec: SipRecord) {
        self.thaw_for(&rec);
        // Its request may have arrived in the meantime.
        if self.find_txn(&rec).is_some() {
            self.response(seq, rec, false);
            return;
        }
        self.assign_none(seq);
        self.anomalies.push(TrackAnomaly {
            file: rec.at.file,
            frame: rec.at.frame,
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
    pub(super) fn release_held(&mut self, req: &SipRecord) {
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
                let ms = (req.at.ts_ns - hd.rec.at.ts_ns) as f64 / 1e6;
                self.anomalies.push(TrackAnomaly {
                    file: hd.rec.at.file,
                    frame: hd.rec.at.frame,
                    kind: "clock_skew",
                    detail: format!(
                        "{} response timestamped {ms:.3} ms before its request; taken after it",
                        hd.rec.status.unwrap_or(0),
                    ),
                    related: Some((req.at.file, req.at.frame)),
                });
                self.response(hd.seq, hd.rec, false);
            } else {
                i += 1;
            }
        }
    }
}
