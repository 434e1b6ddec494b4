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

impl Tally {
    /// Counts one finished session and its failures.csv rows.
    pub fn add(&mut self, e: &Evaluated) {
        self.sessions += 1;
        *self.outcome.entry(e.ev.outcome).or_default() += 1;
        *self.destination.entry(e.destination).or_default() += 1;
        *self.verdict.entry(e.ev.verdict).or_default() += 1;
        if let Some(p) = e.ev.ue_profile {
            *self.ue_profile.entry(p).or_default() += 1;
        }
        if let Some((p, _)) = &e.policy {
            *self.policy_verdict.entry(*p).or_default() += 1;
        }
        for f in &e.flags {
            *self.flag.entry(f.clone()).or_default() += 1;
        }
        for f in e.ev.failures.iter().filter(|f| f.row) {
            *self.failure_verdict.entry(f.verdict).or_default() += 1;
            if f.flags
                .iter()
                .any(|x| Flag::of_item(x) == Some(Flag::RetryWindowCut))
            {
                self.window_cut += 1;
            }
            let mut cats: Vec<Category> = f.classes.iter().map(|c| c.category).collect();
            cats.sort_unstable();
            cats.dedup();
            for c in cats {
                *self.failure_class.entry(c).or_default() += 1;
            }
            let mut caps: Vec<&str> = f
                .classes
                .iter()
                .flat_map(|c| c.capabilities.iter().map(String::as_str))
                .collect();
            caps.sort_unstable();
            caps.dedup();
            for c in caps {
                *self.capability.entry(c.to_string()).or_default() += 1;
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
