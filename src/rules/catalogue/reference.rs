//! The user reference generated from the catalogue: docs/reference.md
//! ([`markdown`]) and one entry of it (`sipaudit explain NAME`,
//! [`entry_text`]). It owns the layout of the reference; the words come from
//! [`super::names`] and [`super::classes`].

use std::fmt::Write as _;

use super::{
    CLASSES, Capability, Category, DestClass, Entry, Flag, Kind, Outcome, PolicyKind, Reason,
    UeProfile, Verdict, verdict_attention,
};

/// What kind of name an entry is, as the reference says it.
fn kind_word(e: Entry) -> &'static str {
    match e {
        Entry::Verdict(_) => "verdict (`verdict` column)",
        Entry::Flag(_) => "flag (`flags` column)",
        Entry::Category(_) => "failure class (`failure_class` column; C13, C15, C17 in `flags`)",
        Entry::Policy(_) => "policy verdict (`policy_verdict` column)",
        Entry::Reason(_) => "POLICY_VIOLATION reason (`policy_verdict` column)",
        Entry::Outcome(_) => "outcome (`outcome` column)",
        Entry::UeProfile(_) => "UE profile (`ue_profile` column)",
        Entry::DestClass(_) => "destination class (`destination_class` column)",
    }
}

/// The severity line of an entry.
fn severity(e: Entry) -> String {
    match e {
        Entry::Verdict(v) => format!(
            "{} of {} in the §D.3 order (1 = most severe); attention {}",
            v.rank() + 1,
            Verdict::ALL.len(),
            10 * verdict_attention(v)
        ),
        Entry::Policy(p) => format!(
            "{} of {} in the §E.4 order (1 = most severe)",
            p.rank() + 1,
            PolicyKind::ALL.len()
        ),
        Entry::Reason(_) => "as POLICY_VIOLATION (1 of 6 in the §E.4 order)".into(),
        Entry::Category(c) => class_line(c),
        Entry::Flag(_) => "none: a flag never changes the verdict".into(),
        Entry::Outcome(_) | Entry::UeProfile(_) | Entry::DestClass(_) => {
            "none: it describes the call, it is not a finding".into()
        }
    }
}

/// For a failure category: its C-id, kind, capability and confidence.
fn class_line(c: Category) -> String {
    let Some(row) = CLASSES.iter().find(|r| {
        r.category == c
            || (c == Category::Malformed421 && r.category == Category::RemoteRequiresExtension)
    }) else {
        return String::new();
    };
    let kind = match row.kind {
        Kind::Refusal => "a refusal: a relaxed retry is expected",
        Kind::Reverse => "the reverse case: a retry offering more is expected",
        Kind::NonRefusal => "a capability failure: no retry expected",
        Kind::Observation => "an observation on a 1xx/2xx, not a failure",
        Kind::NotCapability => "not a capability failure (a row only when the retry relaxes)",
    };
    let cap = match row.capability {
        Capability::Fixed(t) => t.to_string(),
        Capability::Tags => "the tags found".into(),
        Capability::Nothing(_) => "none".into(),
    };
    format!(
        "{}, {kind}; capability {cap}; confidence {}",
        row.id, row.confidence
    )
}

/// One entry as Markdown (a `###` heading and four lines).
pub fn entry_text(e: Entry) -> String {
    let d = e.doc();
    let mut s = String::new();
    let _ = writeln!(s, "### {}", e.name());
    let _ = writeln!(s, "- What: {}, rules.md {}", kind_word(e), d.clause);
    let _ = writeln!(s, "- Severity: {}", severity(e));
    let _ = writeln!(s, "- Meaning: {}", d.meaning);
    let _ = writeln!(s, "- Next: {}", d.next);
    s
}

fn section(out: &mut String, title: &str, intro: &str, entries: Vec<Entry>) {
    let _ = writeln!(out, "## {title}\n\n{intro}\n");
    for e in entries {
        let _ = writeln!(out, "{}", entry_text(e));
    }
}

/// docs/reference.md: every verdict, flag, failure class, policy verdict,
/// reason, outcome, UE profile and destination class.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# sipaudit reference: verdicts, flags, failure classes, policy verdicts, outcomes\n\n\
         Generated from the rule catalogue (src/rules/catalogue/); do not edit: regenerate with\n\
         `sipaudit explain --all > docs/reference.md` (or `BLESS=1 cargo test --test reference`).\n\
         `sipaudit explain NAME` prints one entry. Clauses cite rules.md, the domain specification\n\
         the rules implement. `attention` (sessions.csv) is 10 × the verdict's attention plus the\n\
         policy part: POLICY_VIOLATION 3 (4 with POLICY_NOT_ENFORCED), POLICY_OVERBLOCKED 2,\n\
         POLICY_UNDETERMINED 1, others 0; a NOT_APPLICABLE session is 0.\n\n",
    );
    section(
        &mut out,
        "Verdicts",
        "One per failure (failures.csv) and the most severe per session (sessions.csv), in severity order.",
        Verdict::ALL.iter().map(|x| Entry::Verdict(*x)).collect(),
    );
    section(
        &mut out,
        "Policy verdicts",
        "Beside the verdict, never changing it; the session takes the most severe, in this order.",
        PolicyKind::ALL.iter().map(|x| Entry::Policy(*x)).collect(),
    );
    section(
        &mut out,
        "POLICY_VIOLATION reasons",
        "Written after the colon: `POLICY_VIOLATION:DEST_IMS`.",
        Reason::ALL.iter().map(|x| Entry::Reason(*x)).collect(),
    );
    section(
        &mut out,
        "Flags",
        "`;`-joined in the `flags` cells; some carry arguments, e.g. `NEW_CALL_ID(H2,0.8)`.",
        Flag::ALL.iter().map(|x| Entry::Flag(*x)).collect(),
    );
    section(
        &mut out,
        "Failure classes",
        "The `failure_class` cell lists every matching class in C-id order.",
        Category::ALL.iter().map(|x| Entry::Category(*x)).collect(),
    );
    section(
        &mut out,
        "Outcomes",
        "How the session ended, from its last attempt.",
        Outcome::ALL.iter().map(|x| Entry::Outcome(*x)).collect(),
    );
    section(
        &mut out,
        "UE profiles",
        "From the session's first INVITE.",
        UeProfile::ALL
            .iter()
            .map(|x| Entry::UeProfile(*x))
            .collect(),
    );
    section(
        &mut out,
        "Destination classes",
        "Of the first attempt's Request-URI.",
        DestClass::ALL
            .iter()
            .map(|x| Entry::DestClass(*x))
            .collect(),
    );
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}
