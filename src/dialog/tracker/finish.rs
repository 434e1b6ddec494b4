//! Finishing sessions: when a session may be finalised (idle for W0, or
//! early after answered BYEs), its outcome, the summary handed to the rules,
//! and the tombstones that let late retransmissions join a written session.
//! Never links attempts.

use super::*;

impl<P> Tracker<P> {
    // ------------------------------------------------------------ finalisation

    pub(super) fn try_finalize(&mut self, s: Id) {
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
    pub(super) fn ended_early(&self, s: Id) -> bool {
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
                || !at.has_final()
                || at.more().in_dialog.iter().any(|t| t.final_status.is_none())
            {
                return false;
            }
            let m = at.more();
            let bye = m.in_dialog.iter().any(|t| t.req.method == Method::Bye);
            confirmed |= at.request.method == Method::Invite && !m.confirmed_tags.is_empty() && bye;
        }
        confirmed
    }

    /// Remembers an early-finished session's keys for W0.
    pub(super) fn remember_ended(&mut self, a: Id, keys: &[IndexKey], session: u64) {
        let until = self.now.saturating_add(self.w0);
        self.ended_attempts.insert(a, session);
        for k in keys {
            if let IndexKey::Txn(t) | IndexKey::Dialog(t) = *k {
                self.ended.push(t, session);
            }
        }
        self.ended_expiry.push_back((until, a, self.ended.end()));
    }

    /// Finishes root slot `s` at `now`: its session id (new if it has
    /// none), its attempts taken out of every index in capture order with
    /// their links, its outcome, flags and related sessions, handed out as a
    /// [`SessionSummary`].
    pub(super) fn finalize(&mut self, s: Id, now: i64) {
        let early = self.ended_early(s);
        let Some(slot) = self.slots.get_mut(&s) else {
            return;
        };
        if slot.parent.is_some() || slot.finalized {
            return;
        }
        slot.finalized = true;
        let (start, had) = (slot.start_ns, slot.session);
        self.live.remove(&(start, s));
        let session = match had {
            Some(x) => x,
            None => self.new_session_id(),
        };
        let slot = self.slots.get_mut(&s).expect("slot");
        slot.session = Some(session);
        let ids = std::mem::take(&mut slot.attempts);
        // Children stay: gc_slots drops them with the slot.
        let (mut flags, related_attempts, late_of) = match slot.more.as_mut() {
            Some(m) => (
                std::mem::take(&mut m.flags),
                std::mem::take(&mut m.related),
                std::mem::take(&mut m.late_of),
            ),
            None => Default::default(),
        };
        let call_ids = std::mem::take(&mut slot.call_ids).into_vec();
        let (end, max_seq) = (slot.last_ns, slot.max_seq);
        let related = self.related_sessions(&related_attempts, late_of, session);
        let atts = self.take_attempts(ids, session, early);
        let links = links_of(&atts);
        let (outcome, final_status) = match atts.last() {
            None => (Outcome::Truncated, None),
            Some((_, a)) => outcome_of(a, now),
        };
        if prack_missing(&atts) {
            // Not a verdict: a reliable 1xx that no PRACK acknowledged.
            flags.insert(Mark::PrackMissing);
        }
        self.finished.push(SessionSummary {
            id: session,
            attempts: atts.into_iter().map(|(_, a)| attempt_summary(a)).collect(),
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

    /// The sessions related to `session`: those of its related attempts
    /// (live, or ended and remembered) and those it may late-retry, sorted,
    /// without itself.
    fn related_sessions<I: IntoIterator<Item = u64>>(
        &self,
        related_attempts: &std::collections::BTreeSet<Id>,
        late_of: I,
        session: u64,
    ) -> Vec<u64> {
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
        related
    }

    /// Takes attempts `ids` of `session` out of the tracker and every index
    /// (their failures watched for late retries, and when the session ended
    /// early, their keys remembered), in capture order.
    fn take_attempts(
        &mut self,
        ids: Vec<Id>,
        session: u64,
        early: bool,
    ) -> Vec<(Id, Box<Attempt>)> {
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
            for &k in &at.keys {
                self.unindex(k, *id);
            }
        }
        atts.sort_by_key(|(id, a)| (a.request.at.ts_ns, *id));
        atts
    }
}

/// Sessions of up to this many attempts find a link's source by a scan
/// instead of a map built for the session.
const SCAN_ATTEMPTS: usize = 16;

/// The retry links between a session's attempts (in capture order), by
/// their positions.
fn links_of(atts: &[(Id, Box<Attempt>)]) -> Vec<Link> {
    if atts.iter().all(|(_, a)| a.linked.is_none()) {
        // Most sessions: one attempt, or none linked.
        return Vec::new();
    }
    let map: Option<HashMap<Id, usize>> = (atts.len() > SCAN_ATTEMPTS).then(|| {
        atts.iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect()
    });
    let position = |p: Id| match &map {
        Some(m) => m.get(&p).copied(),
        None => atts.iter().position(|(id, _)| *id == p),
    };
    let mut links = Vec::new();
    for (i, (_, at)) in atts.iter().enumerate() {
        if let Some((p, rule, conf, ambiguous)) = at.linked {
            if let Some(from) = position(p) {
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
    links
}

/// An INVITE session with a reliable 1xx that no PRACK acknowledged.
fn prack_missing(atts: &[(Id, Box<Attempt>)]) -> bool {
    atts.iter()
        .any(|(_, a)| a.more().reliable.iter().any(|r| !r.2))
        && atts.iter().any(|(_, a)| a.request.method == Method::Invite)
}

/// What the rules read of a finished attempt.
fn attempt_summary(a: Box<Attempt>) -> AttemptSummary {
    let m = a.more.map(|m| *m).unwrap_or_default();
    AttemptSummary {
        request: a.request,
        final_response: a.final_response.map(|b| *b),
        final_success: m.success,
        cancel_ns: a.cancel_ns,
        early_tags: m.early_tags,
        confirmed_tags: m.confirmed_tags,
        start_missing: a.start_missing,
        answers: m.answers,
        in_dialog: m.in_dialog,
        acked_failure: a.acked_failure,
        final_sources: m.final_sources,
        premature_retry: a.premature_retry,
        late_candidate: a.late_candidate,
        leg_relaxed: a.leg_relaxed,
    }
}

pub(super) fn outcome_of(a: &Attempt, now: i64) -> (Outcome, Option<u16>) {
    if a.start_missing {
        return (Outcome::Truncated, None);
    }
    if let Some(s) = a.more().success {
        return (Outcome::Established, Some(s.status));
    }
    match &a.final_response {
        Some(f) => {
            let s = f.status.unwrap_or(0);
            let o = if (200..300).contains(&s) {
                Outcome::Established
            } else if a
                .cancel_ns
                .is_some_and(|c| s == 487 || c <= f.at.ts_ns + SKEW_NS)
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
        None if a.more().acked_2xx.is_some() => (Outcome::Established, None),
        None if now - a.request.at.ts_ns >= TIMER_B_NS => (Outcome::Timeout, None),
        None => (Outcome::Truncated, None),
    }
}
