//! rules.md §D: relaxation checks D1–D12 and the verdicts of §D.3, per
//! failure of a finished session, and the session verdict; §B.5 lints and
//! the §F UE profile.
//!
//! `evaluate_failure` walks the items of §D.3 top-down exactly as numbered
//! there (items 1–14, then the reverse case and network interworking);
//! [`SEVERITY`] is the session order.

use crate::dialog::record::Method;
use crate::dialog::tracker::{Rule, W0_NS};
use crate::dialog::{SessionSummary, SipRecord, Tags};
use crate::sip::Demand;

use super::classify::{self, Context, Kind, Match};

/// rules.md §D.3, high to low: the session verdict is the first of these
/// that any of its failures has.
pub const SEVERITY: &[&str] = &[
    "SECURITY_DOWNGRADE",
    "RETRY_LOOP",
    "REPEATED_WITHOUT_RELAXATION",
    "EXTENSION_REQUIRED_UNSATISFIED",
    "PARTIAL_RELAXATION",
    "RELAXATION_WITHOUT_REFUSAL",
    "OVER_RELAXED",
    "SDP_NOT_RELAXED",
    "RETRY_INVALID_IDENTITY",
    "NO_RETRY",
    "INFERRED_RELAXATION",
    "RETRY_NEW_CALL_ID",
    "COMPLIANT_RELAXATION",
    "EXTENSION_REQUIRED_SATISFIED",
    "NETWORK_INTERWORKED",
    "TRUNCATED",
    "NOT_APPLICABLE",
];

/// Position of a verdict in [`SEVERITY`] (0 = most severe).
pub fn severity(v: &str) -> usize {
    SEVERITY
        .iter()
        .position(|x| *x == v)
        .unwrap_or(SEVERITY.len())
}

/// What §D needs from the home policy (rules.md §E.3 `[relaxation]`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// `window_s` as ns (W0).
    pub window_ns: i64,
    /// `max_retries` (D12).
    pub max_retries: u32,
    /// `extra_droppable` (D.1 A), lowercased.
    pub extra_droppable: Vec<String>,
    /// `sdp_mode = "strict"` (D.3 item 10).
    pub strict_sdp: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window_ns: W0_NS,
            max_retries: 2,
            extra_droppable: Vec::new(),
            strict_sdp: false,
        }
    }
}

/// One failure of a session, evaluated (a failures.csv row when `row`).
#[derive(Clone, Debug)]
pub struct Failure {
    /// Index of P's attempt in the session.
    pub attempt: usize,
    /// P is an in-dialog request (re-INVITE, UPDATE, PRACK, ...).
    pub mid_dialog: bool,
    /// The failed request P (the UA's own copy).
    pub request: SipRecord,
    /// The failure response F.
    pub failure: SipRecord,
    /// The linked retry N.
    pub retry: Option<SipRecord>,
    /// How N was linked, with its confidence.
    pub link: Option<(Rule, f32)>,
    /// Matching §C rows, in C-id order.
    pub classes: Vec<Match>,
    /// Unsupported tags of a 420.
    pub refused: Vec<String>,
    /// U of D.1 (refused, or inferred).
    pub u: Vec<String>,
    /// X of D.1 (relaxed set).
    pub x: Vec<String>,
    /// D of D.1 (dropped), with a retry.
    pub dropped: Vec<String>,
    /// K of D.1 (kept refused), with a retry.
    pub kept: Vec<String>,
    /// D9, with a retry and U ≠ ∅.
    pub desired_listed: Option<bool>,
    /// Demand(N) < Demand(P), with a retry.
    pub sdp_relaxed: Option<bool>,
    /// The D.3 verdict.
    pub verdict: &'static str,
    /// D flags and MID_DIALOG, in evaluation order.
    pub flags: Vec<String>,
    /// Who refused (rules.md §C attribution).
    pub responder: String,
    /// Whether it is a failures.csv row.
    pub row: bool,
    /// The link's position among the session's capability links (1-based).
    pub retry_count: u32,
    /// Policy verdict (E.4), filled by the caller.
    pub policy_verdict: Option<String>,
    /// Policy rule (E.4), filled by the caller.
    pub policy_rule: String,
}

impl Failure {
    /// The §C categories, `;`-joined in C-id order.
    pub fn failure_class(&self) -> String {
        let mut v: Vec<&str> = Vec::new();
        for c in &self.classes {
            if !v.contains(&c.category) {
                v.push(c.category);
            }
        }
        v.join(";")
    }

    /// The §C capabilities, `;`-joined in C-id order, without repeats.
    pub fn capability(&self) -> String {
        let mut v: Vec<&str> = Vec::new();
        for c in &self.classes {
            for t in &c.capabilities {
                if !v.contains(&t.as_str()) {
                    v.push(t);
                }
            }
        }
        v.join(";")
    }

    fn kind(&self) -> Option<Kind> {
        let kinds: Vec<Kind> = self.classes.iter().map(|c| c.class.kind).collect();
        [
            Kind::Refusal,
            Kind::Reverse,
            Kind::NonRefusal,
            Kind::NotCapability,
        ]
        .into_iter()
        .find(|k| kinds.contains(k))
    }

    fn has_class(&self, id: &str) -> bool {
        self.classes.iter().any(|c| c.class.id == id)
    }
}

fn set(tags: Tags<'_>) -> Vec<String> {
    tags.iter().map(|t| t.to_string()).collect()
}

fn union(a: Tags<'_>, b: Tags<'_>) -> Vec<String> {
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
fn lower(n: Demand, p: Demand) -> bool {
    matches!((rank(n), rank(p)), (Some(a), Some(b)) if a < b)
}

const IMS_CORE: &[&str] = &["precondition", "100rel", "update"];

/// T_stall of rules.md C21 (20 s).
pub const T_STALL_NS: i64 = 20_000_000_000;

/// The D.1 sets and D.2 checks of a link (P, F, N), then the D.3 verdict.
#[allow(clippy::too_many_arguments)]
fn evaluate_failure(
    f: &mut Failure,
    n: Option<&SipRecord>,
    max_uac_cseq: Option<u32>,
    loop_prev_unchanged: bool,
    chain_has_421: bool,
    cancelled: bool,
    later_uac_message: bool,
    observed_until: i64,
    st: &Settings,
) {
    let p = &f.request;
    let pre = union(p.require(), p.proxy_require());
    let refused: Vec<String> = f
        .failure
        .unsupported()
        .iter()
        .map(|t| t.to_string())
        .collect();
    let mut u: Vec<String> = refused
        .iter()
        .filter(|t| pre.contains(t))
        .cloned()
        .collect();
    let kind = f.kind();
    let refusal = kind == Some(Kind::Refusal);
    let reverse = kind == Some(Kind::Reverse);
    if !refusal {
        u.clear();
    }
    f.refused = if f.failure.status == Some(420) {
        refused.clone()
    } else {
        Vec::new()
    };
    let mut flags: Vec<String> = Vec::new();
    if f.mid_dialog {
        flags.push("MID_DIALOG".into());
    }
    let Some(n) = n else {
        f.u = u;
        // Items 1-5 without N (and the reverse case's 4-5).
        let cut = observed_until - f.failure.ts_ns < st.window_ns;
        f.verdict = if (!refusal && !reverse) || cancelled {
            "NOT_APPLICABLE"
        } else if !cut || later_uac_message {
            if cut {
                flags.push("RETRY_WINDOW_CUT".into());
            }
            "NO_RETRY"
        } else {
            "TRUNCATED"
        };
        f.flags = flags;
        return;
    };
    let post = union(n.require(), n.proxy_require());
    let dropped: Vec<String> = pre.iter().filter(|t| !post.contains(t)).cloned().collect();
    let sdp_relaxed = lower(n.demand, p.demand);
    let mut x = dropped.clone();
    if sdp_relaxed && !x.iter().any(|t| t == "precondition") {
        x.push("precondition".into());
    }
    // Inferred U (D.1).
    let no_usable_tag = f.has_class("C06") || (f.has_class("C07") && u.is_empty());
    let inferred = no_usable_tag || f.has_class("C11");
    if no_usable_tag {
        u = x.clone();
    } else if f.has_class("C11") {
        u = vec!["precondition".into()];
    }
    let kept: Vec<String> = u.iter().filter(|t| post.contains(t)).cloned().collect();
    // Dependency closure: dep(100rel) = dep(UPDATE) = {precondition}, counted
    // only when N stops using preconditions altogether.
    let dep_applies = u.iter().any(|t| t == "100rel" || t == "update")
        && !post.iter().any(|t| t == "precondition")
        && n.demand == Demand::Absent;
    let mut allowed = u.clone();
    let mut dep_drop = Vec::new();
    if dep_applies && !allowed.iter().any(|t| t == "precondition") {
        allowed.push("precondition".into());
        if dropped.iter().any(|t| t == "precondition") {
            dep_drop.push("precondition".to_string());
        }
    }
    allowed.extend(st.extra_droppable.iter().cloned());
    // D1
    let (rule, conf) = f.link.unwrap_or((Rule::H0, 1.0));
    if rule != Rule::H0 {
        flags.push(format!("NEW_CALL_ID({},{})", rule.as_str(), fmt_conf(conf)));
    }
    // D2, D3
    let mut identity_error = false;
    if matches!(rule, Rule::H0 | Rule::H0Prime) {
        if let Some(max) = max_uac_cseq {
            if n.cseq > max + 1 {
                flags.push("CSEQ_GAP".into());
            } else if n.cseq <= max {
                flags.push("CSEQ_NOT_INCREMENTED".into());
                identity_error = true;
            }
        }
        if !f.mid_dialog && n.bottom_branch().is_some() && n.bottom_branch() == p.bottom_branch() {
            flags.push("BRANCH_REUSED".into());
            identity_error = true;
        }
    }
    // D5
    let d5 = if kept.is_empty() {
        None
    } else if kept.len() == u.len() {
        Some("NOT_RELAXED")
    } else {
        Some("PARTIAL")
    };
    if let Some(d) = d5 {
        flags.push(d.into());
    }
    // D6
    let extra: Vec<String> = dropped
        .iter()
        .filter(|t| !allowed.contains(t))
        .cloned()
        .collect();
    if !extra.is_empty() {
        flags.push(format!("OVER_RELAXED({})", extra.join(",")));
    }
    if !dep_drop.is_empty() {
        flags.push(format!("DEPENDENT_DROP({})", dep_drop.join(",")));
    }
    // D7
    let shuffled = u.iter().any(|t| {
        let in_req = |r: &SipRecord| r.require().contains(t);
        let in_preq = |r: &SipRecord| r.proxy_require().contains(t);
        (in_req(p) && in_preq(n) && !in_req(n)) || (in_preq(p) && in_req(n) && !in_preq(n))
    });
    if shuffled {
        flags.push("TAG_SHUFFLED".into());
    }
    // D8
    let added: Vec<String> = n
        .require()
        .iter()
        .filter(|t| !p.require().contains(t))
        .map(|t| t.to_string())
        .collect();
    if !added.is_empty() && !chain_has_421 && !f.has_class("C08") {
        flags.push("NEW_REQUIREMENT_ADDED".into());
    }
    // D9
    let desired_listed = (!u.is_empty()).then(|| {
        u.iter()
            .all(|t| n.supported().contains(t) || (t == "update" && n.allow_update))
    });
    match desired_listed {
        Some(true) => flags.push("DESIRED_LISTED".into()),
        Some(false) => flags.push("DESIRED_DROPPED".into()),
        None => {}
    }
    // D10
    let mut sdp_not_relaxed = false;
    let mut sdp_over_relaxed = false;
    if u.iter().any(|t| t == "precondition") {
        if n.demand == Demand::Mandatory {
            sdp_not_relaxed = true;
        }
    } else if !allowed.iter().any(|t| t == "precondition") && sdp_relaxed {
        sdp_over_relaxed = true;
    }
    if sdp_not_relaxed {
        flags.push("SDP_NOT_RELAXED".into());
    }
    if sdp_over_relaxed {
        flags.push("SDP_OVER_RELAXED".into());
    }
    // D11
    if p.sdp_media.is_some() && n.sdp_media.is_some() && p.sdp_media != n.sdp_media {
        flags.push("MEDIA_CHANGED".into());
    }
    // D12 (limit): the caller counts links; loop: unchanged after unchanged.
    let unchanged = p.require() == n.require()
        && p.proxy_require() == n.proxy_require()
        && p.demand == n.demand;
    let retry_loop = unchanged && loop_prev_unchanged;
    if retry_loop {
        flags.push("RETRY_LOOP".into());
    }
    if f.retry_count > st.max_retries {
        flags.push("RETRY_LIMIT_EXCEEDED".into());
    }
    let drops_core = dropped.iter().any(|t| IMS_CORE.contains(&t.as_str()));
    let relaxes = drops_core || sdp_relaxed;
    // D.3, top-down.
    f.verdict = if dropped.iter().any(|t| t == "sec-agree") {
        "SECURITY_DOWNGRADE"
    } else if rule == Rule::AsLeg {
        "NETWORK_INTERWORKED"
    } else if reverse {
        if retry_loop {
            "RETRY_LOOP"
        } else {
            let ok = if f.has_class("C09") {
                post.iter().any(|t| t == "sec-agree")
            } else if f.classes.iter().any(|c| c.category == "MALFORMED_421") {
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
                "EXTENSION_REQUIRED_SATISFIED"
            } else {
                "EXTENSION_REQUIRED_UNSATISFIED"
            }
        }
    } else if !refusal && !relaxes {
        "NOT_APPLICABLE"
    } else if !refusal {
        "RELAXATION_WITHOUT_REFUSAL"
    } else if retry_loop {
        "RETRY_LOOP"
    } else if (!u.is_empty() && kept.len() == u.len())
        || (f.has_class("C11") && n.demand == p.demand)
        || (no_usable_tag && x.is_empty())
    {
        "REPEATED_WITHOUT_RELAXATION"
    } else if !kept.is_empty() {
        "PARTIAL_RELAXATION"
    } else if !extra.is_empty() || sdp_over_relaxed {
        "OVER_RELAXED"
    } else if sdp_not_relaxed && st.strict_sdp {
        "SDP_NOT_RELAXED"
    } else if identity_error {
        "RETRY_INVALID_IDENTITY"
    } else if inferred && !x.is_empty() {
        "INFERRED_RELAXATION"
    } else if rule != Rule::H0 {
        "RETRY_NEW_CALL_ID"
    } else {
        "COMPLIANT_RELAXATION"
    };
    f.u = u;
    f.x = x;
    f.dropped = dropped;
    f.kept = kept;
    f.desired_listed = desired_listed;
    f.sdp_relaxed = Some(sdp_relaxed);
    f.flags = flags;
}

/// A confidence as written in flags and CSV (`0.8`, `1`).
pub fn fmt_conf(c: f32) -> String {
    let s = format!("{:.2}", c);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A session's evaluation: its failures and the flags it adds.
#[derive(Clone, Debug, Default)]
pub struct SessionEval {
    /// Every evaluated failure, in time order of F; `row` marks the
    /// failures.csv rows.
    pub failures: Vec<Failure>,
    /// The session verdict.
    pub verdict: &'static str,
    /// Observation and lint flags (rules.md §B.5, §C).
    pub flags: Vec<String>,
    /// The UE profile (§F), for INVITE sessions: sessions.csv `ue_profile`,
    /// never a flag.
    pub ue_profile: Option<&'static str>,
    /// The session outcome word (§D.3, [`super::outcome`]).
    pub outcome: &'static str,
    /// The final status that goes with it.
    pub final_status: Option<u16>,
}

/// Who refused (rules.md §C attribution): with F captured at two or more
/// hops, the source of its first copy (the hop nearest the responder); else
/// the Warning warn-agent, else the Server (or User-Agent) value, else the
/// `src` of F.
fn responder(f: &SipRecord, hops: &[std::net::SocketAddr]) -> String {
    if hops.len() >= 2 {
        return hops[0].to_string();
    }
    if let Some(a) = classify::warn_agent(f.warning()) {
        return a.to_string();
    }
    if let Some(s) = f.user_agent() {
        return s.to_string();
    }
    f.src.to_string()
}

/// Evaluates every failure of a finished session (rules.md §C, §D) and the
/// session-level flags (§B.5, §F). `home_reject` tells whether a response
/// comes from a home node with a status in `reject_codes` (C19).
pub fn evaluate(
    s: &SessionSummary,
    st: &Settings,
    home_reject: &dyn Fn(&SipRecord) -> bool,
) -> SessionEval {
    let mut out = SessionEval::default();
    let mut flags: Vec<String> = Vec::new();
    // Units: out-of-dialog failures (P = attempt, N = its linked retry) and
    // in-dialog ones (N = the next request of the same method in the dialog).
    struct Unit<'a> {
        attempt: usize,
        mid: bool,
        p: &'a SipRecord,
        f: &'a SipRecord,
        n: Option<&'a SipRecord>,
        link: Option<(Rule, f32)>,
        max_uac: Option<u32>,
        relaxed_retry: bool,
    }
    let mut units: Vec<Unit> = Vec::new();
    let chain_has_421 = s.attempts.iter().any(|a| {
        a.final_response
            .as_ref()
            .is_some_and(|f| f.status == Some(421))
    });
    for (i, a) in s.attempts.iter().enumerate() {
        let incoming = s.links.iter().find(|l| l.to == i);
        if let Some(f) = a
            .final_response
            .as_ref()
            .filter(|f| f.status.unwrap_or(0) >= 300)
        {
            let link = s.link_from(i);
            let n = link.map(|l| &s.attempts[l.to].request);
            // max_uac_cseq: the UAC's highest CSeq in P's Call-ID and tag
            // before N (requests of the attempt and of its dialogs).
            let max_uac = n.map(|n| {
                let mut m = 0;
                for b in &s.attempts {
                    if b.request.call_id() == a.request.call_id()
                        && b.request.from_tag() == a.request.from_tag()
                        && b.request.ts_ns < n.ts_ns
                    {
                        m = m.max(b.request.cseq);
                        for t in &b.in_dialog {
                            if t.request.from_tag() == a.request.from_tag()
                                && t.request.ts_ns < n.ts_ns
                            {
                                m = m.max(t.request.cseq);
                            }
                        }
                    }
                }
                m
            });
            units.push(Unit {
                attempt: i,
                mid: false,
                p: &a.request,
                f,
                n,
                link: link.map(|l| (l.rule, l.confidence)),
                max_uac,
                relaxed_retry: incoming.is_some(),
            });
        }
        for (k, t) in a.in_dialog.iter().enumerate() {
            let Some(f) = t
                .final_response
                .as_ref()
                .filter(|f| f.status.unwrap_or(0) >= 300)
            else {
                continue;
            };
            if matches!(t.request.method, Method::Bye | Method::Cancel) {
                continue;
            }
            let n = a.in_dialog[k + 1..].iter().map(|x| &x.request).find(|x| {
                x.method == t.request.method
                    && x.from_tag() == t.request.from_tag()
                    && x.ts_ns - f.ts_ns >= -crate::dialog::tracker::SKEW_NS
                    && x.ts_ns - f.ts_ns <= st.window_ns
            });
            let max_uac = n.map(|n| {
                let mut m = if a.request.from_tag() == t.request.from_tag() {
                    a.request.cseq
                } else {
                    0
                };
                for x in &a.in_dialog {
                    if x.request.from_tag() == t.request.from_tag() && x.request.ts_ns < n.ts_ns {
                        m = m.max(x.request.cseq);
                    }
                }
                m
            });
            units.push(Unit {
                attempt: i,
                mid: true,
                p: &t.request,
                f,
                n,
                link: n.map(|_| (Rule::H0, 1.0)),
                max_uac,
                relaxed_retry: false,
            });
        }
    }
    units.sort_by_key(|u| (u.f.ts_ns, u.attempt));
    let mut prev_unchanged = false;
    let mut links = 0u32;
    for u in &units {
        let a = &s.attempts[u.attempt];
        let cancelled = !u.mid
            && a.cancel_ns
                .is_some_and(|c| c <= u.f.ts_ns + crate::dialog::tracker::SKEW_NS);
        let unpracked = a.answers.iter().any(|r| {
            r.rseq.is_some()
                && !a.in_dialog.iter().any(|t| {
                    t.request.method == Method::Prack
                        && t.request.rack.as_ref().is_some_and(|x| Some(x.0) == r.rseq)
                })
        });
        let repeats_cseq = u.attempt > 0
            && s.attempts[..u.attempt].iter().any(|b| {
                b.request.call_id() == u.p.call_id()
                    && b.request.cseq == u.p.cseq
                    && b.request.bottom_branch() != u.p.bottom_branch()
            });
        // C21: an early dialog with preconditions and no UPDATE (or a=curr
        // progress) for T_stall before the CANCEL or timeout.
        let stalled = !u.mid
            && !matches!(u.p.demand, Demand::Absent | Demand::Unknown)
            && a.answers
                .iter()
                .find(|r| r.status.is_some_and(|c| (180..200).contains(&c)))
                .is_some_and(|first| {
                    let progress = a.in_dialog.iter().any(|t| {
                        t.request.method == Method::Update && t.request.ts_ns > first.ts_ns
                    });
                    !progress && u.f.ts_ns - first.ts_ns >= T_STALL_NS
                });
        let cx = Context {
            cancelled,
            unpracked_reliable: unpracked,
            repeats_cseq,
            home_reject_of_relaxed: u.relaxed_retry && home_reject(u.f),
            stalled,
        };
        let classes = classify::classify(u.p, u.f, cx);
        let mut f = Failure {
            attempt: u.attempt,
            mid_dialog: u.mid,
            request: u.p.clone(),
            failure: u.f.clone(),
            retry: u.n.cloned(),
            link: u.link,
            responder: responder(u.f, if u.mid { &[] } else { &a.final_sources }),
            classes,
            refused: Vec::new(),
            u: Vec::new(),
            x: Vec::new(),
            dropped: Vec::new(),
            kept: Vec::new(),
            desired_listed: None,
            sdp_relaxed: None,
            verdict: "NOT_APPLICABLE",
            flags: Vec::new(),
            row: false,
            retry_count: 0,
            policy_verdict: None,
            policy_rule: String::new(),
        };
        let capability_failure = f.classes.iter().any(|c| {
            matches!(
                c.class.kind,
                Kind::Refusal | Kind::Reverse | Kind::NonRefusal
            )
        });
        let relaxes = u.n.is_some_and(|n| {
            let post = union(n.require(), n.proxy_require());
            u.p.require()
                .iter()
                .chain(u.p.proxy_require().iter())
                .any(|t| IMS_CORE.contains(&t) && !post.iter().any(|x| x == t))
                || lower(n.demand, u.p.demand)
        });
        // D12 and E.4 count the capability links (and relaxing ones).
        if u.n.is_some() && (capability_failure || relaxes) {
            links += 1;
            f.retry_count = links;
        }
        let later_uac = a.acked_failure
            || s.attempts
                .iter()
                .any(|b| b.request.src == u.p.src && b.request.ts_ns > u.f.ts_ns)
            || a.in_dialog
                .iter()
                .any(|t| t.request.src == u.p.src && t.request.ts_ns > u.f.ts_ns);
        evaluate_failure(
            &mut f,
            u.n,
            u.max_uac,
            prev_unchanged,
            chain_has_421,
            cancelled,
            later_uac,
            s.observed_until,
            st,
        );
        prev_unchanged = match u.n {
            Some(n) => {
                u.p.require() == n.require()
                    && u.p.proxy_require() == n.proxy_require()
                    && u.p.demand == n.demand
            }
            None => false,
        };
        if !u.mid && a.premature_retry {
            f.flags.push("PREMATURE_RETRY".into());
        }
        if !u.mid && a.late_candidate && u.n.is_none() {
            f.flags.push("CANDIDATE_LATE_RETRY".into());
        }
        f.row = capability_failure || relaxes;
        out.failures.push(f);
    }
    // STEPWISE: a chain of several links, every one compliant.
    let compliant: Vec<usize> = out
        .failures
        .iter()
        .enumerate()
        .filter(|(_, f)| f.row && f.retry.is_some())
        .map(|(i, _)| i)
        .collect();
    if compliant.len() > 1
        && compliant
            .iter()
            .all(|&i| out.failures[i].verdict == "COMPLIANT_RELAXATION")
    {
        for &i in &compliant {
            out.failures[i].flags.push("STEPWISE".into());
        }
    }
    // Observations (C13, C15, C17), lints (B.5); the profile (F) is a column.
    for a in &s.attempts {
        for id in classify::observations(&a.request, &a.answers) {
            let c = classify::class(id);
            flags.push(c.category.to_string());
        }
        lints(&a.request, &a.answers, &a.in_dialog, &mut flags);
    }
    out.ue_profile = s
        .attempts
        .iter()
        .find(|a| a.request.method == Method::Invite && !a.start_missing)
        .map(|a| ue_profile(&a.request));
    // G.20: no copy of the first request as the UA sent it (one Via): the
    // capture was taken inside the network.
    if s.attempts.first().is_some_and(|a| a.request.via_count > 1) {
        flags.push("VANTAGE_NETWORK".into());
    }
    flags.sort();
    flags.dedup();
    out.flags = flags;
    (out.outcome, out.final_status) = super::outcome::outcome(s, &out.failures);
    out.verdict = out
        .failures
        .iter()
        .filter(|f| f.row)
        .map(|f| f.verdict)
        .min_by_key(|v| severity(v))
        .unwrap_or_else(|| {
            // rules.md §D.3: no 420 reached the UE, but a B2BUA leg dropped
            // IMS_CORE requirements: the network did the relaxation.
            if s.attempts.iter().any(|a| a.leg_relaxed) {
                "NETWORK_INTERWORKED"
            } else {
                "NOT_APPLICABLE"
            }
        });
    out
}

/// rules.md §B.5 L1–L3, L5, L6 (L4 is flagged by the tracker, which sees
/// ACK and CANCEL).
fn lints(
    p: &SipRecord,
    answers: &[SipRecord],
    in_dialog: &[crate::dialog::tracker::InDialogTxn],
    flags: &mut Vec<String>,
) {
    let has = |v: &Tags<'_>, t: &str| v.contains(t);
    if p.method == Method::Invite {
        if p.demand == Demand::Mandatory && !has(&p.require(), "precondition") {
            flags.push("IMS_PROFILE_DEVIATION".into());
        }
        let uses = !matches!(p.demand, Demand::Absent | Demand::Unknown);
        if uses
            && ((!has(&p.supported(), "100rel") && !has(&p.require(), "100rel"))
                || (p.has_allow && !p.allow_update))
        {
            flags.push("PRECONDITION_PREREQ_MISSING".into());
        }
    }
    for a in answers {
        let reliable = has(&a.require(), "100rel");
        if a.status.is_some_and(|s| (101..200).contains(&s)) && (reliable != a.rseq.is_some()) {
            flags.push("RSEQ_INCONSISTENT".into());
        }
    }
    for t in in_dialog {
        let r = &t.request;
        if matches!(r.method, Method::Invite | Method::Update | Method::Prack)
            && has(&r.require(), "precondition")
        {
            flags.push("REQUIRE_PRECONDITION_IN_MODIFICATION".into());
        }
    }
    if p.session_level_precondition
        || in_dialog
            .iter()
            .any(|t| t.request.session_level_precondition)
    {
        flags.push("SESSION_LEVEL_PRECONDITION".into());
    }
}

/// rules.md §F: the UE profile of a session's first INVITE.
pub fn ue_profile(p: &SipRecord) -> &'static str {
    let has = |v: &Tags<'_>, t: &str| v.contains(t);
    if has(&p.require(), "precondition")
        || has(&p.proxy_require(), "precondition")
        || (has(&p.require(), "100rel") && p.demand == Demand::Mandatory)
    {
        "R5_STRICT"
    } else if !matches!(p.demand, Demand::Absent) {
        "R6PLUS_RELAXED"
    } else {
        "NO_PRECONDITION"
    }
}
