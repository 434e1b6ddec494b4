//! The catalogue's own invariants: spellings, orders, parsing, attention.

use super::*;

// The contract's spellings are pinned in tests/catalogue.rs (an in-code
// list, and contract.md itself when present).

#[test]
fn violation_spelling() {
    assert_eq!(
        "POLICY_VIOLATION:DEST_IMS".parse::<PolicyVerdict>(),
        Ok(PolicyVerdict::Violation(Reason::DestIms))
    );
}

#[test]
fn display_and_from_str_round_trip() {
    for e in Entry::all() {
        assert!(!lookup(e.name()).is_empty());
        assert!(
            e.name()
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            e.name()
        );
    }
    for v in Verdict::ALL {
        assert_eq!(v.to_string().parse::<Verdict>(), Ok(*v));
    }
    for f in Flag::ALL {
        assert_eq!(f.to_string().parse::<Flag>(), Ok(*f));
    }
    let mut all: Vec<PolicyVerdict> = Reason::ALL
        .iter()
        .map(|r| PolicyVerdict::Violation(*r))
        .collect();
    all.extend([
        PolicyVerdict::Overblocked,
        PolicyVerdict::Undetermined,
        PolicyVerdict::Enforced,
        PolicyVerdict::Compliant,
        PolicyVerdict::RespectedByUe,
    ]);
    for p in all {
        assert_eq!(p.to_string().parse::<PolicyVerdict>(), Ok(p));
    }
    assert!("POLICY_VIOLATION".parse::<PolicyVerdict>().is_err());
    assert!(
        "POLICY_COMPLIANT:DEST_IMS"
            .parse::<PolicyVerdict>()
            .is_err()
    );
    assert!("COMPLIANT".parse::<Verdict>().is_err());
}

#[test]
fn one_severity_order_most_severe_first() {
    assert!(Verdict::SecurityDowngrade < Verdict::RetryLoop);
    assert_eq!(Verdict::ALL.iter().min(), Some(&Verdict::SecurityDowngrade));
    assert_eq!(Verdict::ALL.last(), Some(&Verdict::NotApplicable));
    let v = PolicyVerdict::Violation(Reason::DesiredListingRequired);
    assert!(v < PolicyVerdict::Overblocked);
    assert!(PolicyVerdict::Enforced < PolicyVerdict::RespectedByUe);
    assert_eq!(v.rank(), PolicyVerdict::Violation(Reason::DestIms).rank());
}

#[test]
fn attention_follows_the_orders() {
    use Verdict::*;
    assert_eq!(attention(NotApplicable, &[], None), 0);
    let viol = Some(PolicyVerdict::Violation(Reason::DestIms));
    assert_eq!(
        attention(NotApplicable, &[Flag::PolicyNotEnforced], viol),
        0
    );
    assert_eq!(attention(CompliantRelaxation, &[], None), 0);
    assert_eq!(attention(Truncated, &[], None), 0);
    assert_eq!(attention(RetryNewCallId, &[], None), 10);
    assert_eq!(attention(SecurityDowngrade, &[], None), 120);
    assert_eq!(attention(CompliantRelaxation, &[], viol), 3);
    assert_eq!(
        attention(CompliantRelaxation, &[Flag::PolicyNotEnforced], viol),
        4
    );
    assert_eq!(
        attention(CompliantRelaxation, &[], Some(PolicyVerdict::Compliant)),
        0
    );
    // Strictly monotone along the D.3 order above COMPLIANT_RELAXATION.
    let above: Vec<u32> = Verdict::ALL
        .iter()
        .take_while(|v| **v != CompliantRelaxation)
        .map(|v| attention(*v, &[], None))
        .collect();
    assert!(above.windows(2).all(|w| w[0] > w[1]), "{above:?}");
    // The policy part never lifts a session over the next verdict.
    assert!(
        attention(NoRetry, &[Flag::PolicyNotEnforced], viol)
            < attention(RetryInvalidIdentity, &[], None)
    );
}

#[test]
fn flags_with_arguments() {
    assert_eq!(Flag::NewCallId.with(&["H2", "0.8"]), "NEW_CALL_ID(H2,0.8)");
    assert_eq!(
        Flag::of_item("OVER_RELAXED(100rel)"),
        Some(Flag::OverRelaxed)
    );
    assert_eq!(Flag::of_item("R5_STRICT"), None);
}

#[test]
fn lookup_and_suggest() {
    let e = lookup("retry_loop");
    assert_eq!(
        e,
        [
            Entry::Verdict(Verdict::RetryLoop),
            Entry::Flag(Flag::RetryLoop)
        ]
    );
    assert_eq!(
        lookup("POLICY_VIOLATION:DEST_IMS"),
        [Entry::Reason(Reason::DestIms)]
    );
    assert_eq!(
        lookup("NEW_CALL_ID(H2,0.8)"),
        [Entry::Flag(Flag::NewCallId)]
    );
    assert!(lookup("NOPE").is_empty());
    assert_eq!(suggest("COMPLIANT_RELAXTION")[0], "COMPLIANT_RELAXATION");
    assert!(suggest("RELAXATION").contains(&"COMPLIANT_RELAXATION"));
    assert!(suggest("zzzzzzzzzzzzzzzz").is_empty());
}

#[test]
fn the_class_table_is_complete_and_in_order() {
    for (i, c) in CLASSES.iter().enumerate() {
        assert_eq!(c.id as usize, i);
        assert_eq!(c.id.to_string(), format!("C{:02}", i + 1));
    }
    assert_eq!(CLASSES.len(), 24);
    assert_eq!(
        class(ClassId::C11).category,
        Category::RemoteRejectsPreconditionSdp
    );
}

#[test]
fn every_entry_is_documented() {
    for e in Entry::all() {
        let d = e.doc();
        assert!(d.clause.starts_with('§'), "{}", e.name());
        assert!(
            d.meaning.ends_with('.') && d.next.ends_with('.'),
            "{}",
            e.name()
        );
    }
}
