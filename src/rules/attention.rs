//! The `attention` rank of a session (sessions.csv, report.html): how much a
//! session needs a person's look, from its §D.3 verdict and its §E.4 policy
//! verdict. Owns only that ranking; it never evaluates a session.
//!
//! One function on purpose: the typed rule catalogue may replace it.

use super::policy;
use super::verdict::{SEVERITY, severity};

/// The first verdict of [`SEVERITY`] that needs no look:
/// COMPLIANT_RELAXATION and everything below it (EXTENSION_REQUIRED_SATISFIED,
/// NETWORK_INTERWORKED, TRUNCATED, NOT_APPLICABLE) rank 0 on their own.
const FIRST_QUIET: &str = "COMPLIANT_RELAXATION";

/// The attention rank: 0 = nothing to look at, higher = worse.
///
/// Ordered by the §D.3 session verdict first (its severity order, from
/// RETRY_NEW_CALL_ID = 1 up to SECURITY_DOWNGRADE = 12), then by the §E.4
/// policy verdict (POLICY_UNDETERMINED +1, POLICY_OVERBLOCKED +2,
/// POLICY_VIOLATION +3; ENFORCED, COMPLIANT and RESPECTED_BY_UE add
/// nothing): `attention = 4 * verdict_rank + policy_rank`. A compliant
/// relaxation that the policy forbids therefore ranks 3, above nothing and
/// below every verdict that is itself a finding.
pub fn attention(verdict: &str, policy_verdict: &str) -> u32 {
    let quiet = severity(FIRST_QUIET);
    let v = quiet.saturating_sub(severity(verdict).min(SEVERITY.len())) as u32;
    // policy::severity: 6 violation, 5 overblocked, 4 undetermined, lower
    // ones are expected behaviour.
    let p = u32::from(policy::severity(policy_verdict).saturating_sub(3));
    4 * v + p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_verdicts_rank_zero() {
        for v in [
            "COMPLIANT_RELAXATION",
            "EXTENSION_REQUIRED_SATISFIED",
            "NETWORK_INTERWORKED",
            "TRUNCATED",
            "NOT_APPLICABLE",
            "",
        ] {
            assert_eq!(attention(v, ""), 0, "{v}");
            assert_eq!(attention(v, "POLICY_COMPLIANT"), 0, "{v}");
        }
    }

    #[test]
    fn follows_the_severity_order_then_the_policy() {
        let ranked: Vec<u32> = SEVERITY.iter().map(|v| attention(v, "")).collect();
        assert!(ranked.windows(2).all(|w| w[0] >= w[1]), "{ranked:?}");
        assert_eq!(attention("SECURITY_DOWNGRADE", ""), 48);
        assert_eq!(attention("RETRY_NEW_CALL_ID", ""), 4);
        assert_eq!(
            attention("COMPLIANT_RELAXATION", "POLICY_VIOLATION:DEST_IMS"),
            3
        );
        assert_eq!(attention("NO_RETRY", "POLICY_OVERBLOCKED"), 4 * 3 + 2);
        assert!(attention("NO_RETRY", "POLICY_VIOLATION:X") > attention("NO_RETRY", ""));
        assert!(
            attention("RETRY_NEW_CALL_ID", "")
                > attention("COMPLIANT_RELAXATION", "POLICY_VIOLATION:X")
        );
        assert_eq!(attention("NO_RETRY", "POLICY_RESPECTED_BY_UE"), 12);
    }
}
