//! Retry linking (rules.md §A.3): the evidence a new Call-ID needs, scoring
//! candidates of open failure windows (found by key, never by scan),
//! closing windows, making an unclaimed retry a root, B2BUA correlation keys
//! and the late-retry watch (§G.19). The rule table with windows and
//! confidences is [`super::Rule`]. Never writes a session.

use super::*;

impl<P> Tracker<P> {
    /// A finalized attempt's failure is watched for a late retry.
    pub(super) fn watch_late(&mut self, at: &Attempt, session: u64) {
        let Some(f) = &at.final_response else {
            return;
        };
        let status = f.status.unwrap_or(0);
        if status < 300 || at.start_missing || (status == 487 && at.cancel_ns.is_some()) {
            return;
        }
        let key = late_key(&at.request);
        self.late_watch.insert(key, (f.at.ts_ns, session));
        let until =
            f.at.ts_ns
                .saturating_add(LATE_WATCH.saturating_mul(self.w0));
        self.late_expiry.push_back((until, key));
    }

    /// Slot `s` holds a request that retries the failure of session `of`
    /// too late to be linked: flagged, and related to it.
    pub(super) fn late_retry(&mut self, s: Id, of: Option<u64>) {
        self.flag(s, Mark::CandidateLateRetry);
        let root = self.root_of(s);
        if let (Some(sid), Some(slot)) = (of, self.slots.get_mut(&root)) {
            slot.more_mut().late_of.push(sid);
        }
    }

    /// Scores N as a retry of failed attempt P (rules.md §A.3) and records
    /// the candidate; an H0 candidate decides P at once.
    pub(super) fn consider(&mut self, p: Id, n: Id) {
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
        let gap = nr.at.ts_ns - f.at.ts_ns;
        if gap < -SKEW_NS {
            return;
        }
        let (best, late) = score_retry(pr, nr, f, gap, self.w0);
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
            .more_mut()
            .candidates
            .push((n, rule, conf));
        let na = self.attempts.get_mut(&n).expect("attempt");
        na.open_ps += 1;
        na.more_mut().offers.push((p, conf));
        if rule == Rule::H0 {
            self.close_window(p);
        }
    }

    /// P's window closes: link the best unlinked candidate.
    pub(super) fn close_window(&mut self, p: Id) {
        let Some(pa) = self.attempts.get_mut(&p) else {
            return;
        };
        if !pa.p_open {
            return;
        }
        pa.p_open = false;
        let cands = pa
            .more
            .as_mut()
            .map(|m| std::mem::take(&mut m.candidates))
            .unwrap_or_default();
        let keys: Vec<IndexKey> = pa
            .keys
            .iter()
            .copied()
            .filter(|k| matches!(k, IndexKey::Window(_)))
            .collect();
        for k in keys {
            self.unindex(k, p);
        }
        let eligible = self.eligible(p, &cands);
        let chosen = choose(&eligible);
        if let Some((n, r, c, ambiguous)) = chosen {
            let pslot = self.attempts[&p].slot;
            let na = self.attempts.get_mut(&n).expect("attempt");
            na.linked = Some((p, r, c, ambiguous));
            na.decided = true;
            let nslot = na.slot;
            self.merge(pslot, nslot);
            if ambiguous {
                self.flag(pslot, Mark::AmbiguousLink);
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

    /// The candidates of `p`'s window that may still be linked to it: an N
    /// still free, and not the better candidate of another P whose window
    /// is still open (the strongest link wins, whichever window closes
    /// first).
    fn eligible(&self, p: Id, cands: &[(Id, Rule, f32)]) -> Vec<(Id, Rule, f32)> {
        cands
            .iter()
            .filter(|&&(n, _, c)| {
                self.attempts.get(&n).is_some_and(|a| {
                    a.linked.is_none()
                        && !a.more().offers.iter().any(|&(q, qc)| {
                            q != p && qc > c && self.attempts.get(&q).is_some_and(|x| x.p_open)
                        })
                })
            })
            .copied()
            .collect()
    }

    /// N becomes the root of its own session once nothing can claim it.
    pub(super) fn try_root(&mut self, n: Id, at_end: bool) {
        let now = self.now;
        let Some(na) = self.attempts.get_mut(&n) else {
            return;
        };
        if na.decided || na.open_ps > 0 || (!at_end && now < na.request.at.ts_ns + SKEW_NS) {
            return;
        }
        na.decided = true;
        let slot = na.slot;
        let root = self.root_of(slot);
        let w0 = self.w0;
        if self.slots.get(&root).expect("slot").session.is_none() {
            let id = self.new_session_id();
            self.slots.get_mut(&root).expect("slot").session = Some(id);
        }
        let s = &self.slots[&root];
        let at = self.now.max(s.last_ns + w0);
        self.timer(at, Timer::Idle, root);
    }

    /// The attempts of a Call-ID and From tag (a copy: nearly always one,
    /// kept inline).
    pub(super) fn call_tag_attempts(&self, call_id: &str, from_tag: Option<&str>) -> Ids {
        self.call_tag
            .get(&h(&(call_id, from_tag)))
            .cloned()
            .unwrap_or_default()
    }
}

/// The best rule by which request `nr`, sent `gap` ns after failure `f` of
/// request `pr`, retries it (rules.md §A.3: H0–H3, and AS-leg by
/// correlation value), with its confidence; and whether some rule matched
/// only beyond its window (rules.md G.19).
fn score_retry(
    pr: &SipRecord,
    nr: &SipRecord,
    f: &SipRecord,
    gap: i64,
    w0: i64,
) -> (Option<(Rule, f32)>, bool) {
    let status = f.status.unwrap_or(0);
    let redirect = (300..400).contains(&status);
    let (lp, ln) = (pr.link(), nr.link());
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
    (best, late)
}

/// The correlation keys of an initial request with their AS-leg confidence
/// (Session-ID 0.9, icid-value 0.7, X-CID 0.7; rules.md §A.3).
pub(super) fn corr_keys(r: &SipRecord) -> Vec<(u64, f32)> {
    r.link()
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
pub(super) fn may_link(p: &SipRecord, n: &SipRecord) -> bool {
    let (a, b) = (p.link(), n.link());
    (a.from_id == b.from_id && a.to_id == b.to_id)
        || a.corr.iter().any(|&k| k != 0 && b.corr.contains(&k))
        || p.call_id() == n.call_id()
}

/// From and To the same identities after E.164 normalisation (H3).
pub(super) fn same_identities(p: &SipRecord, n: &SipRecord) -> bool {
    let (a, b) = (p.link(), n.link());
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
pub(super) fn retry_evidence(
    status: u16,
    reply: Option<&crate::dialog::linkkeys::ReplyKeys>,
    p: &crate::dialog::linkkeys::LinkKeys,
    n: &crate::dialog::linkkeys::LinkKeys,
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

/// The candidate a closing window links: the highest confidence, then the
/// earliest (candidates are in time order); and whether the link is
/// ambiguous (rules.md §J: another eligible candidate's confidence is
/// within 0.1 of the chosen one's, f32 slack included).
fn choose(eligible: &[(Id, Rule, f32)]) -> Option<(Id, Rule, f32, bool)> {
    let mut chosen: Option<(Id, Rule, f32)> = None;
    for &(n, r, c) in eligible {
        if chosen.is_none_or(|(_, _, bc)| c > bc) {
            chosen = Some((n, r, c));
        }
    }
    let (cn, cr, cc) = chosen?;
    let ambiguous = eligible
        .iter()
        .any(|&(n, _, c)| n != cn && cc - c <= 0.1 + 1e-4);
    Some((cn, cr, cc, ambiguous))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_candidate_wins_then_the_earliest_and_near_ties_are_ambiguous() {
        assert_eq!(choose(&[]), None);
        let one = [(7, Rule::H1, 0.8)];
        assert_eq!(choose(&one), Some((7, Rule::H1, 0.8, false)));
        // Equal confidence: the earliest; within 0.1 of it: ambiguous.
        let tie = [(3, Rule::H2, 0.6), (4, Rule::H1, 0.6)];
        assert_eq!(choose(&tie), Some((3, Rule::H2, 0.6, true)));
        let near = [(3, Rule::H2, 0.55), (4, Rule::H1, 0.65)];
        assert_eq!(choose(&near), Some((4, Rule::H1, 0.65, true)));
        let apart = [(3, Rule::H2, 0.5), (4, Rule::H1, 0.9)];
        assert_eq!(choose(&apart), Some((4, Rule::H1, 0.9, false)));
    }
}
