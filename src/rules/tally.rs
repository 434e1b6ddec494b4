//! The batch's counts for summary.csv and the run summary: one accumulator
//! that counts the typed values of each evaluated session as it finishes
//! (never by splitting a written cell). It owns the counting, never a
//! spelling or an order of the report: its maps give each count with its
//! catalogue value, and the report spells and sorts them.

use std::collections::BTreeMap;

use super::catalogue::{Category, DestClass, Flag, Outcome, PolicyVerdict, UeProfile, Verdict};
use super::session::Evaluated;

/// Counts over the sessions of a batch.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Sessions (sessions.csv rows).
    pub sessions: u64,
    /// Sessions by outcome.
    pub outcome: BTreeMap<Outcome, u64>,
    /// Sessions by destination class.
    pub destination: BTreeMap<DestClass, u64>,
    /// Sessions by verdict.
    pub verdict: BTreeMap<Verdict, u64>,
    /// Sessions by UE profile (sessions with one).
    pub ue_profile: BTreeMap<UeProfile, u64>,
    /// Sessions by policy verdict, as sessions.csv shows it.
    pub policy_verdict: BTreeMap<PolicyVerdict, u64>,
    /// Sessions by `flags` item (with its arguments).
    pub flag: BTreeMap<String, u64>,
    /// failures.csv rows by verdict.
    pub failure_verdict: BTreeMap<Verdict, u64>,
    /// failures.csv rows by §C category (each category once per row).
    pub failure_class: BTreeMap<Category, u64>,
    /// failures.csv rows by capability (each once per row).
    pub capability: BTreeMap<String, u64>,
    /// failures.csv rows flagged RETRY_WINDOW_CUT (rules.md §D.3 item 4).
    pub window_cut: u64,
}

/// What [`Tally::add`] counts of one evaluated session, owned: taken where
/// the session is evaluated (which may be another thread, and the
/// evaluation borrows the session), counted where its rows are written.
#[derive(Debug)]
pub struct Counted {
    /// The session's outcome.
    outcome: Outcome,
    /// Its destination class.
    destination: DestClass,
    /// Its verdict.
    verdict: Verdict,
    /// Its UE profile, if it has one.
    ue_profile: Option<UeProfile>,
    /// Its policy verdict as sessions.csv shows it.
    policy_verdict: Option<PolicyVerdict>,
    /// Its `flags` items.
    flags: Vec<String>,
    /// One per failures.csv row.
    rows: Vec<RowCounted>,
}

/// What [`Tally::add`] counts of one failures.csv row.
#[derive(Debug)]
struct RowCounted {
    /// The row's verdict.
    verdict: Verdict,
    /// Flagged RETRY_WINDOW_CUT.
    window_cut: bool,
    /// Each category once, sorted.
    categories: Vec<Category>,
    /// Each capability once, sorted.
    capabilities: Vec<String>,
}

impl Counted {
    /// What is counted of `e` (its flags taken, the rest copied).
    pub fn of(e: &mut Evaluated<'_>) -> Counted {
        let rows = e
            .ev
            .failures
            .iter()
            .filter(|f| f.row)
            .map(|f| {
                let mut categories: Vec<Category> = f.classes.iter().map(|c| c.category).collect();
                categories.sort_unstable();
                categories.dedup();
                let mut caps: Vec<&str> = f
                    .classes
                    .iter()
                    .flat_map(|c| c.capabilities.iter().map(String::as_str))
                    .collect();
                caps.sort_unstable();
                caps.dedup();
                RowCounted {
                    verdict: f.verdict,
                    window_cut: f
                        .flags
                        .iter()
                        .any(|x| Flag::of_item(x) == Some(Flag::RetryWindowCut)),
                    categories,
                    capabilities: caps.into_iter().map(str::to_string).collect(),
                }
            })
            .collect();
        Counted {
            outcome: e.ev.outcome,
            destination: e.destination,
            verdict: e.ev.verdict,
            ue_profile: e.ev.ue_profile,
            policy_verdict: e.policy.as_ref().map(|p| p.0),
            flags: std::mem::take(&mut e.flags),
            rows,
        }
    }
}

impl Tally {
    /// Counts one finished session and its failures.csv rows.
    pub fn add(&mut self, c: Counted) {
        self.sessions += 1;
        *self.outcome.entry(c.outcome).or_default() += 1;
        *self.destination.entry(c.destination).or_default() += 1;
        *self.verdict.entry(c.verdict).or_default() += 1;
        if let Some(p) = c.ue_profile {
            *self.ue_profile.entry(p).or_default() += 1;
        }
        if let Some(p) = c.policy_verdict {
            *self.policy_verdict.entry(p).or_default() += 1;
        }
        for f in c.flags {
            *self.flag.entry(f).or_default() += 1;
        }
        for r in c.rows {
            *self.failure_verdict.entry(r.verdict).or_default() += 1;
            if r.window_cut {
                self.window_cut += 1;
            }
            for x in r.categories {
                *self.failure_class.entry(x).or_default() += 1;
            }
            for x in r.capabilities {
                *self.capability.entry(x).or_default() += 1;
            }
        }
    }

    /// Counts a batch-wide flag given to `n` sessions at the end
    /// (INCONSISTENT_EXPERIENCE, rules.md §F).
    pub fn add_flag(&mut self, f: Flag, n: u64) {
        if n > 0 {
            *self.flag.entry(f.to_string()).or_default() += n;
        }
    }
}
