//! Capability failures, relaxation verdicts and home-network policy
//! (rules.md §B–§F), evaluated on finished sessions: [`catalogue`] (every
//! name, the §C table, the reference), [`classify`] (§C), [`checks`] (§D.1–
//! §D.3 for one link), [`verdict`] (§D over a session, §B.5 lints, §F
//! profile), [`outcome`] (the §D.3 outcome words), [`policy`] (§E),
//! [`session`] (one session through all of them), [`tally`] (the batch's
//! counts) and the cross-session
//! INCONSISTENT_EXPERIENCE check of §F below.

pub mod catalogue;
pub mod checks;
pub mod classify;
pub mod outcome;
pub mod policy;
pub mod session;
pub mod tally;
pub mod verdict;
#[cfg(test)]
mod verdict_tests;

use catalogue::{DestClass, Outcome, UeProfile, Verdict};

/// What rules.md §F's ambiguous-experience check needs of one session with
/// a capability refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Experience {
    /// Session id.
    pub session: u64,
    /// Group key: subscriber, destination class, refused capabilities.
    pub key: (String, DestClass, String),
    /// What the user experienced: outcome and verdict.
    pub result: (Outcome, Verdict),
    /// What may explain a difference: visited network, access type, UE
    /// profile.
    pub context: (Option<String>, Option<String>, Option<UeProfile>),
}

/// rules.md §F `INCONSISTENT_EXPERIENCE`: the sessions of every group (same
/// subscriber, destination class and refused capability) in which the
/// outcome or verdict differs between sessions whose visited network, access
/// type or UE profile differ. Returns their ids, sorted.
pub fn inconsistent_experience(entries: &[Experience]) -> Vec<u64> {
    let mut groups = ExperienceGroups::default();
    for e in entries {
        groups.add(e.clone());
    }
    groups.inconsistent()
}

/// The §F check gathered as sessions finish: per group key, the distinct
/// (result, context) pairs seen (a handful) and the session ids (8 bytes a
/// session instead of a whole [`Experience`] with its strings: a night of
/// refusals is kept in tens of MB, not GB).
#[derive(Default)]
pub struct ExperienceGroups {
    groups: std::collections::BTreeMap<(String, DestClass, String), ExperienceGroup>,
}

/// An experience's context: visited network, access type, UE profile.
type Context = (Option<String>, Option<String>, Option<UeProfile>);

/// What [`ExperienceGroups`] keeps of one group.
#[derive(Default)]
struct ExperienceGroup {
    distinct: std::collections::BTreeSet<((Outcome, Verdict), Context)>,
    sessions: Vec<u64>,
}

impl ExperienceGroups {
    /// Adds one session's experience.
    pub fn add(&mut self, e: Experience) {
        let g = self.groups.entry(e.key).or_default();
        g.distinct.insert((e.result, e.context));
        g.sessions.push(e.session);
    }

    /// The sessions flagged, sorted ([`inconsistent_experience`]).
    pub fn inconsistent(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for g in self.groups.values() {
            // Two entries differing in both result and context exist iff two
            // distinct (result, context) pairs do: compare the distinct pairs
            // (a handful), not every pair of entries (quadratic in a group of
            // thousands of sessions of one subscriber).
            let distinct: Vec<_> = g.distinct.iter().collect();
            let inconsistent = distinct
                .iter()
                .enumerate()
                .any(|(i, a)| distinct[i + 1..].iter().any(|b| a.0 != b.0 && a.1 != b.1));
            if inconsistent {
                out.extend(g.sessions.iter().copied());
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod experience_tests {
    use super::*;

    fn e(session: u64, visited: &str, result: (Outcome, Verdict)) -> Experience {
        Experience {
            session,
            key: (
                "sip:+491701234567@ims.example".into(),
                DestClass::NonIms,
                "precondition".into(),
            ),
            result,
            context: (Some(visited.into()), None, Some(UeProfile::R5Strict)),
        }
    }

    #[test]
    fn outcome_differing_only_by_visited_network_is_flagged() {
        let ok = (Outcome::Established, Verdict::CompliantRelaxation);
        let ko = (Outcome::Failed, Verdict::NoRetry);
        let v = [
            e(1, "r5.example", ko),
            e(2, "r6.example", ok),
            e(3, "r6.example", ok),
        ];
        assert_eq!(inconsistent_experience(&v), [1, 2, 3]);
        // Same visited network: the difference is not explained by it.
        let v = [e(1, "r6.example", ko), e(2, "r6.example", ok)];
        assert!(inconsistent_experience(&v).is_empty());
        // Same result everywhere.
        let v = [e(1, "r5.example", ok), e(2, "r6.example", ok)];
        assert!(inconsistent_experience(&v).is_empty());
        // Another subscriber is another group.
        let mut other = e(2, "r6.example", ok);
        other.key.0 = "sip:someone@else".into();
        assert!(inconsistent_experience(&[e(1, "r5.example", ko), other]).is_empty());
    }
}
