//! rules.md §D over a finished session: it finds the failures (out of
//! dialog: P and its linked retry; in dialog: the next request of the same
//! method), evaluates each with [`super::checks`], and gives the session
//! verdict (the most severe, [`Verdict`]'s order), the §B.5 lints and the
//! §F UE profile.

use crate::dialog::record::Method;
use crate::dialog::tracker::{Answer, AttemptSummary, InDialogTxn, Rule, SKEW_NS, W0_NS, tag_key};
use crate::dialog::{SessionSummary, SipRecord, Tags};
use crate::sip::Demand;

use super::catalogue::{Category, ClassId, Flag, Kind, Outcome, PolicyVerdict, UeProfile, Verdict};
use super::checks::{self, Chain, IMS_CORE};
use super::classify::{self, Context, Match};

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
pub struct Failure<'s> {
    /// Index of P's attempt in the session.
    pub attempt: usize,
    /// P is an in-dialog request (re-INVITE, UPDATE, PRACK, ...).
    pub mid_dialog: bool,
    /// The failed request P (the UA's own copy).
    pub request: &'s SipRecord,
    /// The failure response F.
    pub failure: &'s SipRecord,
    /// The linked retry N.
    pub retry: Option<&'s SipRecord>,
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
    pub verdict: Verdict,
    /// D flags and MID_DIALOG, in evaluation order.
    pub flags: Vec<String>,
    /// Who refused (rules.md §C attribution).
    pub responder: String,
    /// Whether it is a failures.csv row.
    pub row: bool,
    /// The link's position among the session's capability links (1-based).
    pub retry_count: u32,
    /// Policy verdict (E.4), filled by the caller.
    pub policy_verdict: Option<PolicyVerdict>,
    /// Policy rule (E.4), filled by the caller.
    pub policy_rule: String,
}

impl Failure<'_> {
    /// The §C categories, `;`-joined in C-id order.
    pub fn failure_class(&self) -> String {
        let mut v: Vec<&str> = Vec::new();
        for c in &self.classes {
            if !v.contains(&c.category.as_str()) {
                v.push(c.category.as_str());
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

    /// How the failure counts for §D.3: the first of refusal, reverse,
    /// non-refusal, not-capability among its classes.
    pub fn kind(&self) -> Option<Kind> {
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

    /// One of its classes is `id`.
    pub fn has_class(&self, id: ClassId) -> bool {
        self.classes.iter().any(|c| c.class.id == id)
    }
}

/// T_stall of rules.md C21 (20 s).
pub const T_STALL_NS: i64 = 20_000_000_000;

/// A confidence as written in flags and CSV (`0.8`, `1`): rounded to two
/// decimals as `format!("{:.2}")` rounds (half to even on the exact value),
/// trailing zeros dropped.
pub fn fmt_conf(c: f32) -> String {
    // The exact value times 100: an f32 has 24 significant bits, times 100
    // needs at most 31, so the f64 product is exact and rounding it is
    // rounding the decimal expansion (without the float formatter, 0.5 % of
    // a run).
    let hundredths = (f64::from(c) * 100.0).round_ties_even();
    if c.is_sign_negative() || !(0.0..1000.0).contains(&hundredths) {
        // Not a confidence: as the formatter writes it.
        let s = format!("{:.2}", c);
        return s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let n = hundredths as u64;
    let (int, frac) = (n / 100, n % 100);
    match frac {
        0 => int.to_string(),
        f if f % 10 == 0 => format!("{int}.{}", f / 10),
        f => format!("{int}.{f:02}"),
    }
}

/// A session's evaluation: its failures and the flags it adds.
#[derive(Clone, Debug)]
pub struct SessionEval<'s> {
    /// Every evaluated failure, in time order of F; `row` marks the
    /// failures.csv rows.
    pub failures: Vec<Failure<'s>>,
    /// The session verdict.
    pub verdict: Verdict,
    /// Observation and lint flags (rules.md §B.5, §C).
    pub flags: Vec<String>,
    /// The UE profile (§F), for INVITE sessions: sessions.csv `ue_profile`,
    /// never a flag.
    pub ue_profile: Option<UeProfile>,
    /// The session outcome (§D.3, [`super::outcome`]).
    pub outcome: Outcome,
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
    f.at.src.to_string()
}

/// One failure to evaluate: out of dialog (P = an attempt, N = its linked
/// retry) or in dialog (N = the next request of the same method in the
/// dialog).
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

/// A final failure response (3xx–6xx).
fn failed(f: &Option<SipRecord>) -> Option<&SipRecord> {
    f.as_ref().filter(|f| f.status.unwrap_or(0) >= 300)
}

/// max_uac_cseq of rules.md §A.3 for attempt `a` and its retry `n`: the
/// UAC's highest CSeq in P's Call-ID and tag before N (requests of the
/// attempts and of their dialogs).
fn max_uac_out_of_dialog(s: &SessionSummary, a: &AttemptSummary, n: &SipRecord) -> u32 {
    let mut m = 0;
    let tag = tag_key(a.request.from_tag());
    let same = |r: &SipRecord| r.from_tag() == a.request.from_tag() && r.at.ts_ns < n.at.ts_ns;
    for b in s
        .attempts
        .iter()
        .filter(|b| b.request.call_id() == a.request.call_id() && same(&b.request))
    {
        m = m.max(b.request.cseq);
        for t in b
            .in_dialog
            .iter()
            .filter(|t| t.req.from_tag == tag && t.req.ts_ns < n.at.ts_ns)
        {
            m = m.max(t.req.cseq);
        }
    }
    m
}

/// The out-of-dialog unit of attempt `i`, when its final response failed.
fn out_of_dialog_unit(s: &SessionSummary, i: usize) -> Option<Unit<'_>> {
    let a = &s.attempts[i];
    let f = failed(&a.final_response)?;
    let link = s.link_from(i);
    let n = link.map(|l| &s.attempts[l.to].request);
    Some(Unit {
        attempt: i,
        mid: false,
        p: &a.request,
        f,
        n,
        link: link.map(|l| (l.rule, l.confidence)),
        max_uac: n.map(|n| max_uac_out_of_dialog(s, a, n)),
        relaxed_retry: s.links.iter().any(|l| l.to == i),
    })
}

/// The in-dialog units of attempt `i`: each failed in-dialog request other
/// than BYE and CANCEL, with the next request of its method within W0.
fn in_dialog_units<'a>(s: &'a SessionSummary, i: usize, st: &Settings) -> Vec<Unit<'a>> {
    let a = &s.attempts[i];
    let mut out = Vec::new();
    for (k, t) in a.in_dialog.iter().enumerate() {
        let Some(f) = t.failure.as_deref() else {
            continue;
        };
        if matches!(t.req.method, Method::Bye | Method::Cancel) {
            continue;
        }
        // P and N keep their records (a unit whose P or N had lost it is
        // skipped, not given another retry).
        let Some(p) = t.whole() else {
            continue;
        };
        let tag = t.req.from_tag;
        let next = a.in_dialog[k + 1..].iter().find(|x| {
            x.req.method == t.req.method
                && x.req.from_tag == tag
                && x.req.ts_ns - f.at.ts_ns >= -SKEW_NS
                && x.req.ts_ns - f.at.ts_ns <= st.window_ns
        });
        let n = match next.map(InDialogTxn::whole) {
            None => None,
            Some(Some(n)) => Some(n),
            Some(None) => continue,
        };
        let max_uac = n.map(|n| {
            let first = if tag_key(a.request.from_tag()) == tag {
                a.request.cseq
            } else {
                0
            };
            a.in_dialog
                .iter()
                .filter(|x| x.req.from_tag == tag && x.req.ts_ns < n.at.ts_ns)
                .fold(first, |m, x| m.max(x.req.cseq))
        });
        out.push(Unit {
            attempt: i,
            mid: true,
            p,
            f,
            n,
            link: n.map(|_| (Rule::H0, 1.0)),
            max_uac,
            relaxed_retry: false,
        });
    }
    out
}

/// Every failure of the session, in time order of F.
fn units<'a>(s: &'a SessionSummary, st: &Settings) -> Vec<Unit<'a>> {
    let mut out = Vec::new();
    for i in 0..s.attempts.len() {
        out.extend(out_of_dialog_unit(s, i));
        out.extend(in_dialog_units(s, i, st));
    }
    out.sort_by_key(|u| (u.f.at.ts_ns, u.attempt));
    out
}

/// C21: an early dialog with preconditions and no UPDATE (or a=curr
/// progress) for T_stall before the CANCEL or timeout.
fn stalled(a: &AttemptSummary, u: &Unit<'_>) -> bool {
    if u.mid || matches!(u.p.demand, Demand::Absent | Demand::Unknown) {
        return false;
    }
    let Some(first) = a.answers.iter().find(|r| (180..200).contains(&r.status)) else {
        return false;
    };
    let progress = a
        .in_dialog
        .iter()
        .any(|t| t.req.method == Method::Update && t.req.ts_ns > first.ts_ns);
    !progress && u.f.at.ts_ns - first.ts_ns >= T_STALL_NS
}

/// What classification needs of a unit besides P and F (rules.md §C).
fn context(s: &SessionSummary, u: &Unit<'_>, home_reject: &dyn Fn(&SipRecord) -> bool) -> Context {
    let a = &s.attempts[u.attempt];
    let unpracked = a.answers.iter().any(|r| {
        r.rseq.is_some()
            && !a.in_dialog.iter().any(|t| {
                t.req.method == Method::Prack
                    && t.req.rack_rseq.is_some()
                    && t.req.rack_rseq == r.rseq
            })
    });
    let repeats_cseq = s.attempts[..u.attempt].iter().any(|b| {
        b.request.call_id() == u.p.call_id()
            && b.request.cseq == u.p.cseq
            && b.request.bottom_branch() != u.p.bottom_branch()
    });
    Context {
        cancelled: !u.mid && a.cancel_ns.is_some_and(|c| c <= u.f.at.ts_ns + SKEW_NS),
        unpracked_reliable: unpracked,
        repeats_cseq,
        home_reject_of_relaxed: u.relaxed_retry && home_reject(u.f),
        stalled: stalled(a, u),
    }
}

/// A linked N drops an IMS_CORE tag of P or relaxes the SDP (D.3 item 3).
fn relaxes(u: &Unit<'_>) -> bool {
    u.n.is_some_and(|n| {
        let post = checks::union(n.require(), n.proxy_require());
        u.p.require()
            .iter()
            .chain(u.p.proxy_require().iter())
            .any(|t| IMS_CORE.contains(&t) && !post.iter().any(|x| x == t))
            || checks::lower(n.demand, u.p.demand)
    })
}

/// The capture holds a message from the UAC after F (D.3 item 4).
fn later_uac_message(s: &SessionSummary, u: &Unit<'_>) -> bool {
    let a = &s.attempts[u.attempt];
    let later = |r: &SipRecord| r.at.src == u.p.at.src && r.at.ts_ns > u.f.at.ts_ns;
    a.acked_failure
        || s.attempts.iter().any(|b| later(&b.request))
        || a.in_dialog
            .iter()
            .any(|t| t.req.src == u.p.at.src && t.req.ts_ns > u.f.at.ts_ns)
}

fn new_failure<'s>(u: &Unit<'s>, a: &AttemptSummary, classes: Vec<Match>) -> Failure<'s> {
    Failure {
        attempt: u.attempt,
        mid_dialog: u.mid,
        request: u.p,
        failure: u.f,
        retry: u.n,
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
        verdict: Verdict::NotApplicable,
        flags: Vec::new(),
        row: false,
        retry_count: 0,
        policy_verdict: None,
        policy_rule: String::new(),
    }
}

/// STEPWISE: a chain of several links, every one compliant.
fn mark_stepwise(failures: &mut [Failure]) {
    let linked: Vec<usize> = failures
        .iter()
        .enumerate()
        .filter(|(_, f)| f.row && f.retry.is_some())
        .map(|(i, _)| i)
        .collect();
    if linked.len() > 1
        && linked
            .iter()
            .all(|&i| failures[i].verdict == Verdict::CompliantRelaxation)
    {
        for &i in &linked {
            failures[i].flags.push(Flag::Stepwise.to_string());
        }
    }
}

/// Observations (C13, C15, C17), lints (B.5) and VANTAGE_NETWORK (G.20),
/// sorted and deduplicated.
fn session_flags(s: &SessionSummary) -> Vec<String> {
    let mut flags: Vec<String> = Vec::new();
    for a in &s.attempts {
        let obs: Vec<Category> = classify::observations(&a.request, &a.answers);
        flags.extend(obs.iter().map(Category::to_string));
        lints(&a.request, &a.answers, &a.in_dialog, &mut flags);
    }
    // G.20: no copy of the first request as the UA sent it (one Via): the
    // capture was taken inside the network.
    if s.attempts.first().is_some_and(|a| a.request.via_count > 1) {
        flags.push(Flag::VantageNetwork.to_string());
    }
    flags.sort();
    flags.dedup();
    flags
}

/// The session verdict: the most severe of its failures.csv rows; with
/// none, NETWORK_INTERWORKED when a B2BUA leg dropped IMS_CORE requirements
/// although no 420 reached the UE (rules.md §D.3), else NOT_APPLICABLE.
fn session_verdict(s: &SessionSummary, failures: &[Failure]) -> Verdict {
    failures
        .iter()
        .filter(|f| f.row)
        .map(|f| f.verdict)
        .min()
        .unwrap_or(if s.attempts.iter().any(|a| a.leg_relaxed) {
            Verdict::NetworkInterworked
        } else {
            Verdict::NotApplicable
        })
}

/// Evaluates every failure of a finished session (rules.md §C, §D) and the
/// session-level flags (§B.5, §F). `home_reject` tells whether a response
/// comes from a home node with a status in `reject_codes` (C19).
pub fn evaluate<'s>(
    s: &'s SessionSummary,
    st: &Settings,
    home_reject: &dyn Fn(&SipRecord) -> bool,
) -> SessionEval<'s> {
    let has_421 = s.attempts.iter().any(|a| {
        a.final_response
            .as_ref()
            .is_some_and(|f| f.status == Some(421))
    });
    let mut failures = Vec::new();
    let mut prev_unchanged = false;
    let mut links = 0u32;
    for u in units(s, st) {
        let a = &s.attempts[u.attempt];
        let cx = context(s, &u, home_reject);
        let mut f = new_failure(&u, a, classify::classify(u.p, u.f, cx));
        let capability_failure = f.classes.iter().any(|c| {
            matches!(
                c.class.kind,
                Kind::Refusal | Kind::Reverse | Kind::NonRefusal
            )
        });
        let relaxes = relaxes(&u);
        // D12 and E.4 count the capability links (and relaxing ones).
        if u.n.is_some() && (capability_failure || relaxes) {
            links += 1;
            f.retry_count = links;
        }
        let chain = Chain {
            max_uac_cseq: u.max_uac,
            prev_unchanged,
            has_421,
            cancelled: cx.cancelled,
            later_uac_message: later_uac_message(s, &u),
            observed_until: s.observed_until,
        };
        checks::evaluate_failure(&mut f, u.n, chain, st);
        prev_unchanged = u.n.is_some_and(|n| checks::unchanged(u.p, n));
        if !u.mid && a.premature_retry {
            f.flags.push(Flag::PrematureRetry.to_string());
        }
        if !u.mid && a.late_candidate && u.n.is_none() {
            f.flags.push(Flag::CandidateLateRetry.to_string());
        }
        f.row = capability_failure || relaxes;
        failures.push(f);
    }
    mark_stepwise(&mut failures);
    let ue_profile = s
        .attempts
        .iter()
        .find(|a| a.request.method == Method::Invite && !a.start_missing)
        .map(|a| ue_profile(&a.request));
    let (outcome, final_status) = super::outcome::outcome(s, &failures);
    SessionEval {
        verdict: session_verdict(s, &failures),
        flags: session_flags(s),
        ue_profile,
        outcome,
        final_status,
        failures,
    }
}

/// rules.md §B.5 L1–L3, L5, L6 (L4 is flagged by the tracker, which sees
/// ACK and CANCEL).
fn lints(
    p: &SipRecord,
    answers: &[Answer],
    in_dialog: &[crate::dialog::tracker::InDialogTxn],
    flags: &mut Vec<String>,
) {
    let has = |v: &Tags<'_>, t: &str| v.contains(t);
    if p.method == Method::Invite {
        if p.demand == Demand::Mandatory && !has(&p.require(), "precondition") {
            flags.push(Flag::ImsProfileDeviation.to_string());
        }
        let uses = !matches!(p.demand, Demand::Absent | Demand::Unknown);
        if uses
            && ((!has(&p.supported(), "100rel") && !has(&p.require(), "100rel"))
                || (p.has_allow && !p.allow_update))
        {
            flags.push(Flag::PreconditionPrereqMissing.to_string());
        }
    }
    for a in answers {
        if (101..200).contains(&a.status) && (a.require_100rel != a.rseq.is_some()) {
            flags.push(Flag::RseqInconsistent.to_string());
        }
    }
    for t in in_dialog {
        let r = &t.req;
        if matches!(r.method, Method::Invite | Method::Update | Method::Prack)
            && r.require_precondition
        {
            flags.push(Flag::RequirePreconditionInModification.to_string());
        }
    }
    if p.session_level_precondition || in_dialog.iter().any(|t| t.req.session_level_precondition) {
        flags.push(Flag::SessionLevelPrecondition.to_string());
    }
}

/// rules.md §F: the UE profile of a session's first INVITE.
pub fn ue_profile(p: &SipRecord) -> UeProfile {
    let has = |v: &Tags<'_>, t: &str| v.contains(t);
    if has(&p.require(), "precondition")
        || has(&p.proxy_require(), "precondition")
        || (has(&p.require(), "100rel") && p.demand == Demand::Mandatory)
    {
        UeProfile::R5Strict
    } else if !matches!(p.demand, Demand::Absent) {
        UeProfile::R6plusRelaxed
    } else {
        UeProfile::NoPrecondition
    }
}
