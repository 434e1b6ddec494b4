//! One sentence per verdict, policy verdict and flag: what report.html says
//! beside a session. The sentence is the rule catalogue's ("what it means
//! for the call", docs/reference.md); this file only picks the entry a cell
//! names. It decides nothing.

use crate::rules::catalogue::{Entry, PolicyKind, lookup};

/// What a §D.3 verdict or §E.4 policy verdict (`POLICY_VIOLATION:REASON`
/// included) means, in one sentence.
pub fn verdict(v: &str) -> &'static str {
    let violation = PolicyKind::Violation.as_str();
    let name = if v.starts_with(violation) {
        violation
    } else {
        v
    };
    pick(name, |e| matches!(e, Entry::Verdict(_) | Entry::Policy(_)))
}

/// What a sessions.csv flag (arguments in parentheses ignored) means, in
/// one sentence.
pub fn flag(f: &str) -> &'static str {
    pick(f, |e| matches!(e, Entry::Flag(_) | Entry::Category(_)))
}

/// The meaning of the first entry named `name` that `want` accepts (then of
/// any entry of that name).
fn pick(name: &str, want: impl Fn(&Entry) -> bool) -> &'static str {
    let entries = lookup(name);
    entries
        .iter()
        .find(|e| want(e))
        .or(entries.first())
        .map_or("See docs/reference.md.", |e| e.doc().meaning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_its_catalogue_sentence() {
        assert!(verdict("COMPLIANT_RELAXATION").contains("dropped exactly what was refused"));
        assert_eq!(
            verdict("POLICY_VIOLATION:RELAXATION_FORBIDDEN"),
            verdict(PolicyKind::Violation.as_str())
        );
        assert_ne!(flag("OVER_RELAXED(100rel)"), "See docs/reference.md.");
        assert_eq!(flag("NOT_A_FLAG"), "See docs/reference.md.");
    }
}
