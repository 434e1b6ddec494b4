//! rules.md §D for one failure: the sets of §D.1 ([`sets`]), the checks
//! D1–D12 of §D.2 as a table of named functions over one [`Link`]
//! ([`CHECKS`]), and the verdict of §D.3 walked top-down ([`verdict`]).
//!
//! It owns the evaluation of one link (P, F, N). It never builds links or
//! walks sessions ([`super::verdict`] does), and never reads the policy
//! beyond [`Settings`].

use crate::dialog::tracker::Rule;
use crate::dialog::{SipRecord, Tags};
use crate::sip::Demand;

use super::catalogue::{Category, ClassId, Flag, Kind, Verdict};
use super::verdict::{Failure, Settings, fmt_conf};

/// IMS_CORE of rules.md §B.2 (lowercased; UPDATE is a method).
pub const IMS_CORE: &[&str] = &["precondition", "100rel", "update"];

fn set(tags: Tags<'_>) -> Vec<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

/// a ∪ b, in order of first appearance.
pub fn union(a: Tags<'_>, b: Tags<'_>) -> Vec<String> {
    let mut v = set(a);
    for t in b.iter() {
        if !v.iter().any(|x| x == t) {
            v.push(t.to_string());
        }
    }
    v
}

fn rank(d: Demand) -> Option<u8> {
    match d {
        Demand::Mandatory => Some(3),
        Demand::Optional => Some(2),
        Demand::NoneOnly => Some(1),
        Demand::Absent => Some(0),
        Demand::Unknown => None,
    }
}

/// Demand(N) lower than Demand(P) (B.3 order; Unknown compares with nothing).
pub fn lower(n: Demand, p: Demand) -> bool {
    matches!((rank(n), rank(p)), (Some(a), Some(b)) if a < b)
}

fn contains(v: &[String], t: &str) -> bool {
    v.iter().any(|x| x == t)
}

/// The sets of rules.md §D.1 for a link (P, F, N).
#[derive(Clone, Debug, Default)]
pub struct Sets {
    /// Req(P) ∪ PReq(P).
    pub pre: Vec<String>,
    /// Req(N) ∪ PReq(N).
    pub post: Vec<String>,
    /// U: refused (or inferred).
    pub u: Vec<String>,
    /// D: dropped.
    pub dropped: Vec<String>,
    /// X: relaxed (D, plus precondition when the SDP was relaxed).
    pub x: Vec<String>,
    /// K: kept refused.
    pub kept: Vec<String>,
    /// A: allowed drops.
    pub allowed: Vec<String>,
    /// The allowed drops that come from dep'(U).
    pub dep_drop: Vec<String>,
    /// Demand(N) < Demand(P).
    pub sdp_relaxed: bool,
    /// F named no usable refused tag (C06, or C07 with U = ∅).
    pub no_usable_tag: bool,
    /// U was inferred (no usable tag, or C11).
    pub inferred: bool,
}

/// U before N is known: the Unsupported tags of F that P required; empty
/// for a non-refusal.
pub fn refused_u(f: &Failure) -> Vec<String> {
    if f.kind() != Some(Kind::Refusal) {
        return Vec::new();
    }
    let pre = union(f.request.require(), f.request.proxy_require());
    f.failure
        .unsupported()
        .iter()
        .filter(|t| contains(&pre, t))
        .map(str::to_string)
        .collect()
}

/// rules.md §D.1: the sets of the link (P, F, N), U inferred when F names
/// no usable tag, and the dependency closure.
pub fn sets(f: &Failure, n: &SipRecord, st: &Settings) -> Sets {
    let p = &f.request;
    let pre = union(p.require(), p.proxy_require());
    let post = union(n.require(), n.proxy_require());
    let dropped: Vec<String> = pre
        .iter()
        .filter(|t| !contains(&post, t))
        .cloned()
        .collect();
    let sdp_relaxed = lower(n.demand, p.demand);
    let mut x = dropped.clone();
    if sdp_relaxed && !contains(&x, "precondition") {
        x.push("precondition".into());
    }
    let mut u = refused_u(f);
    let no_usable_tag = f.has_class(ClassId::C06) || (f.has_class(ClassId::C07) && u.is_empty());
    let inferred = no_usable_tag || f.has_class(ClassId::C11);
    if no_usable_tag {
        u = x.clone();
    } else if f.has_class(ClassId::C11) {
        u = vec!["precondition".into()];
    }
    let kept: Vec<String> = u.iter().filter(|t| contains(&post, t)).cloned().collect();
    // Dependency closure: dep(100rel) = dep(UPDATE) = {precondition}, counted
    // only when N stops using preconditions altogether.
    let dep_applies = u.iter().any(|t| t == "100rel" || t == "update")
        && !contains(&post, "precondition")
        && n.demand == Demand::Absent;
    let mut allowed = u.clone();
    let mut dep_drop = Vec::new();
    if dep_applies && !contains(&allowed, "precondition") {
        allowed.push("precondition".into());
        if contains(&dropped, "precondition") {
            dep_drop.push("precondition".to_string());
        }
    }
    allowed.extend(st.extra_droppable.iter().cloned());
    Sets {
        pre,
        post,
        u,
        dropped,
        x,
        kept,
        allowed,
        dep_drop,
        sdp_relaxed,
        no_usable_tag,
        inferred,
    }
}

/// What the checks of one link need besides P, N and the sets: the chain it
/// sits in.
#[derive(Clone, Copy, Debug, Default)]
pub struct Chain {
    /// The UAC's highest CSeq in P's Call-ID and From tag before N (A.3).
    pub max_uac_cseq: Option<u32>,
    /// The link before this one repeated P unchanged (D12).
    pub prev_unchanged: bool,
    /// A 421 in the chain justifies a new requirement (D8).
    pub has_421: bool,
    /// F crossed a CANCEL from the UAC (D.3 item 2).
    pub cancelled: bool,
    /// The capture holds a later message from the UAC (D.3 item 4).
    pub later_uac_message: bool,
    /// The end of the capture (ns).
    pub observed_until: i64,
}

/// One capability link (P, F, N) as the checks of §D.2 see it.
pub struct Link<'a> {
    /// The failure (P, F, the classes).
    pub f: &'a Failure<'a>,
    /// The retry N.
    pub n: &'a SipRecord,
    /// The §D.1 sets.
    pub s: &'a Sets,
    /// How N was linked, with its confidence (H0 when in-dialog).
    pub rule: Rule,
    /// The link confidence.
    pub conf: f32,
    /// The chain around it.
    pub chain: Chain,
    /// The §D settings.
    pub st: &'a Settings,
}

impl Link<'_> {
    fn p(&self) -> &SipRecord {
        self.f.request
    }
}

/// What the checks found: the flags in evaluation order, and the results
/// §D.3 reads.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// The D flags, in check order.
    pub flags: Vec<String>,
    /// D2 (CSEQ_NOT_INCREMENTED) or D3 failed.
    pub identity_error: bool,
    /// D6: the drops not allowed.
    pub extra: Vec<String>,
    /// D9, when U ≠ ∅.
    pub desired_listed: Option<bool>,
    /// D10 failed with SDP_NOT_RELAXED.
    pub sdp_not_relaxed: bool,
    /// D10 failed with SDP_OVER_RELAXED.
    pub sdp_over_relaxed: bool,
    /// D12 failed with RETRY_LOOP.
    pub retry_loop: bool,
}

impl Findings {
    fn flag(&mut self, f: Flag) {
        self.flags.push(f.to_string());
    }
}

/// A check of rules.md §D.2.
pub type Check = fn(&Link<'_>, &mut Findings);

/// rules.md §D.2, in table order. D4 (the linking window) is applied when
/// links are made (the dialog tracker); its flag PREMATURE_RETRY is added
/// by [`super::verdict::evaluate`].
#[rustfmt::skip]
pub const CHECKS: &[(&str, Check)] = &[
    ("D1",  d1_same_call_id),
    ("D2",  d2_cseq_plus_one),
    ("D3",  d3_new_branch),
    ("D5",  d5_refused_removed),
    ("D6",  d6_drops_allowed),
    ("D7",  d7_not_shuffled),
    ("D8",  d8_no_new_requirement),
    ("D9",  d9_desired_listed),
    ("D10", d10_sdp_relaxed),
    ("D11", d11_same_media),
    ("D12", d12_retries),
];

/// D1: the link rule is H0; otherwise NEW_CALL_ID(rule,confidence).
pub fn d1_same_call_id(l: &Link<'_>, out: &mut Findings) {
    if l.rule != Rule::H0 {
        let conf = fmt_conf(l.conf);
        out.flags
            .push(Flag::NewCallId.with(&[l.rule.as_str(), &conf]));
    }
}

fn same_call_id_rule(l: &Link<'_>) -> bool {
    matches!(l.rule, Rule::H0 | Rule::H0Prime)
}

/// D2 (H0 and H0' only): N.CSeq = max_uac_cseq + 1.
pub fn d2_cseq_plus_one(l: &Link<'_>, out: &mut Findings) {
    let Some(max) = l.chain.max_uac_cseq.filter(|_| same_call_id_rule(l)) else {
        return;
    };
    if l.n.cseq > max + 1 {
        out.flag(Flag::CseqGap);
    } else if l.n.cseq <= max {
        out.flag(Flag::CseqNotIncremented);
        out.identity_error = true;
    }
}

/// D3 (H0 and H0' only, out of dialog): N's UAC branch differs from P's.
pub fn d3_new_branch(l: &Link<'_>, out: &mut Findings) {
    let (p, n) = (l.p(), l.n);
    if same_call_id_rule(l)
        && !l.f.mid_dialog
        && n.bottom_branch().is_some()
        && n.bottom_branch() == p.bottom_branch()
    {
        out.flag(Flag::BranchReused);
        out.identity_error = true;
    }
}

/// D5: K = ∅; K = U gives NOT_RELAXED, otherwise PARTIAL.
pub fn d5_refused_removed(l: &Link<'_>, out: &mut Findings) {
    if l.s.kept.is_empty() {
        return;
    }
    out.flag(if l.s.kept.len() == l.s.u.len() {
        Flag::NotRelaxed
    } else {
        Flag::Partial
    });
}

/// D6: D ⊆ A; extra drops give OVER_RELAXED(tags); the dependent drops
/// DEPENDENT_DROP(tags).
pub fn d6_drops_allowed(l: &Link<'_>, out: &mut Findings) {
    out.extra =
        l.s.dropped
            .iter()
            .filter(|t| !contains(&l.s.allowed, t))
            .cloned()
            .collect();
    if !out.extra.is_empty() {
        out.flags.push(Flag::OverRelaxed.with(&out.extra));
    }
    if !l.s.dep_drop.is_empty() {
        out.flags.push(Flag::DependentDrop.with(&l.s.dep_drop));
    }
}

/// D7: no refused tag moves between Require and Proxy-Require.
pub fn d7_not_shuffled(l: &Link<'_>, out: &mut Findings) {
    let (p, n) = (l.p(), l.n);
    let shuffled = l.s.u.iter().any(|t| {
        let in_req = |r: &SipRecord| r.require().contains(t);
        let in_preq = |r: &SipRecord| r.proxy_require().contains(t);
        (in_req(p) && in_preq(n) && !in_req(n)) || (in_preq(p) && in_req(n) && !in_preq(n))
    });
    if shuffled {
        out.flag(Flag::TagShuffled);
    }
}

/// D8: Req(N) \ Req(P) = ∅, unless a 421 in the chain justifies it.
pub fn d8_no_new_requirement(l: &Link<'_>, out: &mut Findings) {
    let p = l.p();
    let added = l.n.require().iter().any(|t| !p.require().contains(t));
    if added && !l.chain.has_421 && !l.f.has_class(ClassId::C08) {
        out.flag(Flag::NewRequirementAdded);
    }
}

/// D9: U ⊆ Sup(N) ("set to desired"): DESIRED_LISTED or DESIRED_DROPPED.
pub fn d9_desired_listed(l: &Link<'_>, out: &mut Findings) {
    let n = l.n;
    out.desired_listed = (!l.s.u.is_empty()).then(|| {
        l.s.u
            .iter()
            .all(|t| n.supported().contains(t) || (t == "update" && n.allow_update))
    });
    match out.desired_listed {
        Some(true) => out.flag(Flag::DesiredListed),
        Some(false) => out.flag(Flag::DesiredDropped),
        None => {}
    }
}

/// D10: precondition ∈ U: Demand(N) ≠ MANDATORY; precondition ∉ A: the SDP
/// not relaxed.
pub fn d10_sdp_relaxed(l: &Link<'_>, out: &mut Findings) {
    if contains(&l.s.u, "precondition") {
        out.sdp_not_relaxed = l.n.demand == Demand::Mandatory;
    } else {
        out.sdp_over_relaxed = !contains(&l.s.allowed, "precondition") && l.s.sdp_relaxed;
    }
    if out.sdp_not_relaxed {
        out.flag(Flag::SdpNotRelaxed);
    }
    if out.sdp_over_relaxed {
        out.flag(Flag::SdpOverRelaxed);
    }
}

/// D11: the m-lines and codec set of N equal P's (informational).
pub fn d11_same_media(l: &Link<'_>, out: &mut Findings) {
    let (p, n) = (l.p(), l.n);
    if p.sdp_media.is_some() && n.sdp_media.is_some() && p.sdp_media != n.sdp_media {
        out.flag(Flag::MediaChanged);
    }
}

/// Whether N repeats P's (Req, PReq, Demand) unchanged (D12).
pub fn unchanged(p: &SipRecord, n: &SipRecord) -> bool {
    p.require() == n.require() && p.proxy_require() == n.proxy_require() && p.demand == n.demand
}

/// D12: a link unchanged after an unchanged one is RETRY_LOOP; more links
/// than max_retries is RETRY_LIMIT_EXCEEDED (the caller counts them).
pub fn d12_retries(l: &Link<'_>, out: &mut Findings) {
    out.retry_loop = unchanged(l.p(), l.n) && l.chain.prev_unchanged;
    if out.retry_loop {
        out.flag(Flag::RetryLoop);
    }
    if l.f.retry_count > l.st.max_retries {
        out.flag(Flag::RetryLimitExceeded);
    }
}

/// rules.md §D.3 items 1–5 without N (the reverse case's 4–5 too), with
/// the flag RETRY_WINDOW_CUT.
pub fn verdict_without_retry(f: &Failure, chain: &Chain, st: &Settings) -> (Verdict, Vec<Flag>) {
    let kind = f.kind();
    let expects_retry = matches!(kind, Some(Kind::Refusal | Kind::Reverse));
    let cut = chain.observed_until - f.failure.at.ts_ns < st.window_ns;
    if !expects_retry || chain.cancelled {
        (Verdict::NotApplicable, Vec::new())
    } else if !cut {
        (Verdict::NoRetry, Vec::new())
    } else if chain.later_uac_message {
        (Verdict::NoRetry, vec![Flag::RetryWindowCut])
    } else {
        (Verdict::Truncated, Vec::new())
    }
}

/// The reverse case of §D.3 (C08, C09) once items 1 and 6 did not match:
/// N offers what the 421's Require (or the 494) asked for.
fn reverse_verdict(l: &Link<'_>) -> Verdict {
    let (p, n, f) = (l.p(), l.n, l.f);
    let ok = if f.has_class(ClassId::C09) {
        contains(&l.s.post, "sec-agree")
    } else if f
        .classes
        .iter()
        .any(|c| c.category == Category::Malformed421)
    {
        n.require()
            .iter()
            .chain(n.supported().iter())
            .any(|t| !p.require().contains(t) && !p.supported().contains(t))
    } else {
        f.failure.require().iter().all(|t| {
            n.supported()
                .iter()
                .chain(n.require().iter())
                .any(|x| x == t)
        })
    };
    if ok {
        Verdict::ExtensionRequiredSatisfied
    } else {
        Verdict::ExtensionRequiredUnsatisfied
    }
}

/// rules.md §D.3 with N, top-down: item 1, network relaxation, the reverse
/// case, then items 2–3 and 6–14.
pub fn verdict(l: &Link<'_>, d: &Findings) -> Verdict {
    let (s, f) = (l.s, l.f);
    let kind = f.kind();
    let refusal = kind == Some(Kind::Refusal);
    let relaxes = s.dropped.iter().any(|t| IMS_CORE.contains(&t.as_str())) || s.sdp_relaxed;
    if contains(&s.dropped, "sec-agree") {
        Verdict::SecurityDowngrade
    } else if l.rule == Rule::AsLeg {
        Verdict::NetworkInterworked
    } else if kind == Some(Kind::Reverse) {
        if d.retry_loop {
            Verdict::RetryLoop
        } else {
            reverse_verdict(l)
        }
    } else if !refusal {
        if relaxes {
            Verdict::RelaxationWithoutRefusal
        } else {
            Verdict::NotApplicable
        }
    } else {
        refusal_verdict(l, d)
    }
}

/// rules.md §D.3 items 6–14 for a refusal.
fn refusal_verdict(l: &Link<'_>, d: &Findings) -> Verdict {
    let (s, f, p, n) = (l.s, l.f, l.p(), l.n);
    if d.retry_loop {
        Verdict::RetryLoop
    } else if (!s.u.is_empty() && s.kept.len() == s.u.len())
        || (f.has_class(ClassId::C11) && n.demand == p.demand)
        || (s.no_usable_tag && s.x.is_empty())
    {
        Verdict::RepeatedWithoutRelaxation
    } else if !s.kept.is_empty() {
        Verdict::PartialRelaxation
    } else if !d.extra.is_empty() || d.sdp_over_relaxed {
        Verdict::OverRelaxed
    } else if d.sdp_not_relaxed && l.st.strict_sdp {
        Verdict::SdpNotRelaxed
    } else if d.identity_error {
        Verdict::RetryInvalidIdentity
    } else if s.inferred && !s.x.is_empty() {
        Verdict::InferredRelaxation
    } else if l.rule != Rule::H0 {
        Verdict::RetryNewCallId
    } else {
        Verdict::CompliantRelaxation
    }
}

/// The D.1 sets, the D.2 checks and the D.3 verdict of failure `f` with its
/// retry `n` (or none), written into `f`.
pub fn evaluate_failure(f: &mut Failure, n: Option<&SipRecord>, chain: Chain, st: &Settings) {
    f.refused = if f.failure.status == Some(420) {
        set(f.failure.unsupported())
    } else {
        Vec::new()
    };
    let mut flags: Vec<String> = Vec::new();
    if f.mid_dialog {
        flags.push(Flag::MidDialog.to_string());
    }
    let Some(n) = n else {
        f.u = refused_u(f);
        let (v, more) = verdict_without_retry(f, &chain, st);
        f.verdict = v;
        flags.extend(more.iter().map(Flag::to_string));
        f.flags = flags;
        return;
    };
    let s = sets(f, n, st);
    let (rule, conf) = f.link.unwrap_or((Rule::H0, 1.0));
    let link = Link {
        f,
        n,
        s: &s,
        rule,
        conf,
        chain,
        st,
    };
    let mut d = Findings::default();
    for (_, check) in CHECKS {
        check(&link, &mut d);
    }
    let v = verdict(&link, &d);
    flags.append(&mut d.flags);
    f.verdict = v;
    f.desired_listed = d.desired_listed;
    f.sdp_relaxed = Some(s.sdp_relaxed);
    f.flags = flags;
    f.u = s.u;
    f.x = s.x;
    f.dropped = s.dropped;
    f.kept = s.kept;
}
