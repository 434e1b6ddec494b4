//! The rule catalogue: every name a report can hold, as types, and the §C
//! class table. It is the single source of the spellings (the CSV values),
//! of the severity orders (declaration order, `Ord`) and of the user
//! reference (docs/reference.md, `sipaudit explain`).
//!
//! - [`names`]: verdicts (§D.3, most severe first), flags, failure
//!   categories (§C), policy verdict kinds and reasons (§E.4), outcomes, UE
//!   profiles (§F) and destination classes (§E.2).
//! - [`classes`]: the §C table, one row per line.
//! - [`mod@reference`]: the reference text generated from both.
//!
//! It never evaluates a session: the rules modules do, with these types.

pub mod classes;
pub mod names;
pub mod reference;

use std::fmt;
use std::str::FromStr;

pub use classes::{CLASSES, Capability, Class, ClassId, Kind, Trigger, class};
pub use names::{
    Category, DestClass, Doc, Flag, Outcome, PolicyKind, Reason, UeProfile, UnknownName, Verdict,
};

impl Flag {
    /// The flag written with arguments: `NAME(a,b)` (rules.md §D.2: comma
    /// separated, no spaces).
    pub fn with<S: AsRef<str>>(self, args: &[S]) -> String {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        format!("{}({})", self.as_str(), args.join(","))
    }

    /// The flag named by a `flags` cell item, with or without arguments:
    /// `OVER_RELAXED(100rel)` gives [`Flag::OverRelaxed`]. Observation
    /// categories (§C) and UE profiles written as flags are not flags.
    pub fn of_item(item: &str) -> Option<Flag> {
        let name = item.split('(').next().unwrap_or(item);
        name.parse().ok()
    }
}

impl DestClass {
    /// The policy file's spelling: `ims`, `non_ims`, `unknown`.
    pub fn policy_name(self) -> &'static str {
        match self {
            DestClass::Ims => "ims",
            DestClass::NonIms => "non_ims",
            DestClass::Unknown => "unknown",
        }
    }

    /// The class named by its policy-file spelling.
    pub fn from_policy_name(s: &str) -> Option<DestClass> {
        DestClass::ALL
            .iter()
            .copied()
            .find(|c| c.policy_name() == s)
    }
}

/// A policy verdict of rules.md §E.4, with the reason of a violation as a
/// typed field. `Ord` is the session order, most severe first (a violation
/// of any reason before POLICY_OVERBLOCKED); [`PolicyVerdict::rank`]
/// ignores the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyVerdict {
    /// `POLICY_VIOLATION:<REASON>`.
    Violation(Reason),
    /// `POLICY_OVERBLOCKED`.
    Overblocked,
    /// `POLICY_UNDETERMINED`.
    Undetermined,
    /// `POLICY_ENFORCED`.
    Enforced,
    /// `POLICY_COMPLIANT`.
    Compliant,
    /// `POLICY_RESPECTED_BY_UE`.
    RespectedByUe,
}

impl PolicyVerdict {
    /// The kind, without the reason.
    pub fn kind(self) -> PolicyKind {
        match self {
            PolicyVerdict::Violation(_) => PolicyKind::Violation,
            PolicyVerdict::Overblocked => PolicyKind::Overblocked,
            PolicyVerdict::Undetermined => PolicyKind::Undetermined,
            PolicyVerdict::Enforced => PolicyKind::Enforced,
            PolicyVerdict::Compliant => PolicyKind::Compliant,
            PolicyVerdict::RespectedByUe => PolicyKind::RespectedByUe,
        }
    }

    /// The §E.4 severity position (0 = most severe), the reason ignored.
    pub fn rank(self) -> usize {
        self.kind().rank()
    }
}

impl fmt::Display for PolicyVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyVerdict::Violation(r) => write!(f, "{}:{r}", PolicyKind::Violation),
            v => f.write_str(v.kind().as_str()),
        }
    }
}

impl FromStr for PolicyVerdict {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let bad = || UnknownName(s.to_string());
        let (kind, reason) = match s.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (s, None),
        };
        Ok(
            match (kind.parse::<PolicyKind>().map_err(|_| bad())?, reason) {
                (PolicyKind::Violation, Some(r)) => PolicyVerdict::Violation(r.parse()?),
                (_, Some(_)) | (PolicyKind::Violation, None) => return Err(bad()),
                (PolicyKind::Overblocked, None) => PolicyVerdict::Overblocked,
                (PolicyKind::Undetermined, None) => PolicyVerdict::Undetermined,
                (PolicyKind::Enforced, None) => PolicyVerdict::Enforced,
                (PolicyKind::Compliant, None) => PolicyVerdict::Compliant,
                (PolicyKind::RespectedByUe, None) => PolicyVerdict::RespectedByUe,
            },
        )
    }
}

/// The §D.3 verdicts that need no look: the relaxation went as RFC 3261 and
/// 23.228 ask, or no relaxation verdict applies. Every verdict above
/// [`Verdict::CompliantRelaxation`] in the severity order needs one.
pub fn verdict_attention(v: Verdict) -> u32 {
    let fine = Verdict::CompliantRelaxation.rank();
    fine.saturating_sub(v.rank()) as u32
}

/// The policy part of [`attention`]: a violation (worse when nobody
/// enforced it), then an over-blocking network, then an undecidable policy;
/// the other policy verdicts are what the policy intends.
pub fn policy_attention(p: Option<PolicyVerdict>, not_enforced: bool) -> u32 {
    match p.map(PolicyVerdict::kind) {
        Some(PolicyKind::Violation) => 3 + u32::from(not_enforced),
        Some(PolicyKind::Overblocked) => 2,
        Some(PolicyKind::Undetermined) => 1,
        _ => 0,
    }
}

/// A session's attention rank (contract.md `attention`): 0 = nothing to
/// look at, higher = worse.
///
/// `10 × v + p`, where `v` is the §D.3 verdict's height above
/// COMPLIANT_RELAXATION in the severity order (0 for COMPLIANT_RELAXATION,
/// EXTENSION_REQUIRED_SATISFIED, NETWORK_INTERWORKED, TRUNCATED and
/// NOT_APPLICABLE; 1 for RETRY_NEW_CALL_ID, … 12 for SECURITY_DOWNGRADE),
/// and `p` the policy part (0–4, [`policy_attention`]): POLICY_VIOLATION 3,
/// or 4 with the flag POLICY_NOT_ENFORCED; POLICY_OVERBLOCKED 2;
/// POLICY_UNDETERMINED 1; the others 0. So the D.3 order decides first, and
/// the policy verdict orders sessions of one D.3 verdict; a compliant
/// relaxation that the policy forbids still gets a look (3 or 4). A
/// NOT_APPLICABLE session is 0 whatever `policy` says (its policy_verdict
/// cell is always empty, contract.md).
pub fn attention(verdict: Verdict, flags: &[Flag], policy: Option<PolicyVerdict>) -> u32 {
    if verdict == Verdict::NotApplicable {
        return 0;
    }
    let not_enforced = flags.contains(&Flag::PolicyNotEnforced);
    10 * verdict_attention(verdict) + policy_attention(policy, not_enforced)
}

/// One named entry of the catalogue, for `sipaudit explain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A §D.3 verdict.
    Verdict(Verdict),
    /// A flag.
    Flag(Flag),
    /// A §C failure category.
    Category(Category),
    /// A §E.4 policy verdict kind.
    Policy(PolicyKind),
    /// A POLICY_VIOLATION reason.
    Reason(Reason),
    /// A session outcome.
    Outcome(Outcome),
    /// A UE profile.
    UeProfile(UeProfile),
    /// A destination class.
    DestClass(DestClass),
}

impl Entry {
    /// Every entry, in reference order.
    pub fn all() -> Vec<Entry> {
        let mut v: Vec<Entry> = Verdict::ALL.iter().map(|x| Entry::Verdict(*x)).collect();
        v.extend(Flag::ALL.iter().map(|x| Entry::Flag(*x)));
        v.extend(Category::ALL.iter().map(|x| Entry::Category(*x)));
        v.extend(PolicyKind::ALL.iter().map(|x| Entry::Policy(*x)));
        v.extend(Reason::ALL.iter().map(|x| Entry::Reason(*x)));
        v.extend(Outcome::ALL.iter().map(|x| Entry::Outcome(*x)));
        v.extend(UeProfile::ALL.iter().map(|x| Entry::UeProfile(*x)));
        v.extend(DestClass::ALL.iter().map(|x| Entry::DestClass(*x)));
        v
    }

    /// The CSV spelling.
    pub fn name(self) -> &'static str {
        match self {
            Entry::Verdict(x) => x.as_str(),
            Entry::Flag(x) => x.as_str(),
            Entry::Category(x) => x.as_str(),
            Entry::Policy(x) => x.as_str(),
            Entry::Reason(x) => x.as_str(),
            Entry::Outcome(x) => x.as_str(),
            Entry::UeProfile(x) => x.as_str(),
            Entry::DestClass(x) => x.as_str(),
        }
    }

    /// The reference text.
    pub fn doc(self) -> Doc {
        match self {
            Entry::Verdict(x) => x.doc(),
            Entry::Flag(x) => x.doc(),
            Entry::Category(x) => x.doc(),
            Entry::Policy(x) => x.doc(),
            Entry::Reason(x) => x.doc(),
            Entry::Outcome(x) => x.doc(),
            Entry::UeProfile(x) => x.doc(),
            Entry::DestClass(x) => x.doc(),
        }
    }
}

/// The entries named `name` (a CSV spelling, case-insensitive; a flag's
/// arguments and a violation's `:REASON` are ignored). One name can be
/// several things (RETRY_LOOP is a verdict and a flag).
pub fn lookup(name: &str) -> Vec<Entry> {
    let n = name.trim().to_ascii_uppercase();
    let n = n.split('(').next().unwrap_or(&n);
    let n = n.strip_prefix("POLICY_VIOLATION:").unwrap_or(n);
    Entry::all().into_iter().filter(|e| e.name() == n).collect()
}

/// Names close to an unknown `name`, best first (at most five): the ones
/// that contain it or share most of its words, or are a few edits away.
pub fn suggest(name: &str) -> Vec<&'static str> {
    let n = name.trim().to_ascii_uppercase();
    let words: Vec<&str> = n.split(['_', '-', ' ']).filter(|w| !w.is_empty()).collect();
    let mut scored: Vec<(usize, &'static str)> = Vec::new();
    for e in Entry::all() {
        let cand = e.name();
        let shared = words.iter().filter(|w| cand.contains(**w)).count();
        let dist = edit_distance(&n, cand);
        let score = if cand.contains(n.as_str()) && !n.is_empty() {
            0
        } else if dist <= 3 {
            1 + dist
        } else if shared > 0 {
            10 + words.len() - shared
        } else {
            continue;
        };
        if !scored.iter().any(|(_, c)| *c == cand) {
            scored.push((score, cand));
        }
    }
    scored.sort();
    scored.into_iter().take(5).map(|(_, c)| c).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests;

/// The catalogue flag of each session mark of the tracker (the dialog layer
/// cannot name the catalogue; this table is where its marks get their
/// spelling and meaning).
impl From<crate::dialog::Mark> for Flag {
    #[rustfmt::skip]
    fn from(m: crate::dialog::Mark) -> Flag {
        use crate::dialog::Mark as M;
        match m {
            M::AmbiguousLink        => Flag::AmbiguousLink,
            M::CandidateLateRetry   => Flag::CandidateLateRetry,
            M::CancelBefore1xx      => Flag::CancelBefore1xx,
            M::CancelRaceAnswered   => Flag::CancelRaceAnswered,
            M::ForkMixedCapability  => Flag::ForkMixedCapability,
            M::ForkedMultiAnswer    => Flag::ForkedMultiAnswer,
            M::MidDialog            => Flag::MidDialog,
            M::PrackMissing         => Flag::PrackMissing,
            M::PrackUnmatched       => Flag::PrackUnmatched,
            M::ProxyRewrite         => Flag::ProxyRewrite,
            M::RequireInCancelOrAck => Flag::RequireInCancelOrAck,
        }
    }
}
