//! A finished session through the whole rule set: §C/§D
//! ([`verdict::evaluate`]), the destination class of §E.2 and the policy
//! verdicts of §E.4 for each link, and the session's policy verdict. It
//! also makes every per-session decision the reports show: the `flags`
//! items, the policy cell (empty for NOT_APPLICABLE), the attention rank
//! and the session's part in §F's batch-wide INCONSISTENT_EXPERIENCE check.
//! It never formats a cell.

use crate::dialog::{SessionSummary, SipRecord};

use super::Experience;
use super::catalogue::{Category, ClassId, DestClass, Flag, Kind, PolicyVerdict};
use super::classify;
use super::policy::{DestSignals, LinkContext, Policy};
use super::verdict::{self, SessionEval, Settings};

/// Everything the reports need of one evaluated session.
#[derive(Debug)]
pub struct Evaluated<'s> {
    /// §C/§D results, with the policy verdict of each failure filled.
    pub ev: SessionEval<'s>,
    /// §E.2 class of the first attempt's Request-URI.
    pub destination: DestClass,
    /// The session's policy verdict and rule (most severe link) as
    /// sessions.csv shows them: `None` without one, and always for a
    /// NOT_APPLICABLE session (contract.md).
    pub policy: Option<(PolicyVerdict, String)>,
    /// Policy flags (POLICY_NOT_ENFORCED).
    pub policy_flags: Vec<Flag>,
    /// The `flags` items: the tracker's marks, the flags of the failures.csv
    /// rows, the session's observations and lints, the policy flags; sorted,
    /// without repeats. A batch-wide flag (INCONSISTENT_EXPERIENCE) is added
    /// in its sorted place where the rows are written.
    pub flags: Vec<String>,
    /// The attention rank ([`super::catalogue::attention`]).
    pub attention: u32,
    /// What §F's INCONSISTENT_EXPERIENCE check needs, for a session with a
    /// capability refusal; `None` otherwise (it can never get the flag).
    pub experience: Option<Experience>,
}

/// §D settings from the policy's `[relaxation]` table.
pub fn settings(p: &Policy) -> Settings {
    Settings {
        window_ns: i64::try_from(p.window_ns()).unwrap_or(i64::MAX),
        max_retries: p.max_retries(),
        extra_droppable: p
            .extra_droppable()
            .iter()
            .map(|t| t.to_ascii_lowercase())
            .collect(),
        strict_sdp: p.sdp_mode_strict(),
    }
}

fn home_node(p: &Policy, f: &SipRecord) -> bool {
    p.is_home_node(f.at.src.ip(), classify::warn_agent(f.warning()))
}

fn host_of(uri: &str) -> Option<String> {
    let key = crate::dialog::ident::uri_key(uri);
    key.rsplit_once('@').map(|(_, h)| h.to_string())
}

/// Evaluates `s` under `policy`.
pub fn evaluate_session<'s>(s: &'s SessionSummary, p: &Policy) -> Evaluated<'s> {
    let st = settings(p);
    let mut ev = verdict::evaluate(s, &st, &|f: &SipRecord| {
        home_node(p, f) && f.status.is_some_and(|c| p.reject_code(c))
    });
    let destination = destination(s, &ev, p);
    let (best, policy_flags) = link_policies(s, &mut ev, destination, p);
    let policy = best.filter(|_| ev.verdict != super::catalogue::Verdict::NotApplicable);
    let attention =
        super::catalogue::attention(ev.verdict, &policy_flags, policy.as_ref().map(|x| x.0));
    Evaluated {
        flags: session_flags(s, &ev, &policy_flags),
        experience: experience(s, &ev, destination),
        ev,
        destination,
        policy,
        policy_flags,
        attention,
    }
}

/// §E.2: the destination class of the first attempt's Request-URI, with
/// the session's IMS signals.
fn destination(s: &SessionSummary, ev: &SessionEval, p: &Policy) -> DestClass {
    let signals = DestSignals {
        ims_signature: s.attempts.iter().any(|a| {
            a.answers
                .iter()
                .any(|r| r.require_100rel && r.has_precondition_lines)
        }),
        refused_core: ev.failures.iter().any(|f| {
            f.classes
                .iter()
                .any(|c| matches!(c.class.id, ClassId::C01 | ClassId::C02))
        }) || ev
            .flags
            .iter()
            .any(|f| f == Category::PreconditionIgnored.as_str()),
    };
    s.attempts.first().map_or(DestClass::Unknown, |a| {
        let r = &a.request;
        p.destination(r.request_uri().unwrap_or(""), r.to_uri(), &signals)
            .0
    })
}

/// §E.4 for every failures.csv link of the session: fills each failure's
/// policy verdict, rule and policy flags; returns the session's policy
/// verdict (the most severe link, the reason ignored; the first of equally
/// severe ones) and its policy flags.
fn link_policies(
    s: &SessionSummary,
    ev: &mut SessionEval,
    destination: DestClass,
    p: &Policy,
) -> (Option<(PolicyVerdict, String)>, Vec<Flag>) {
    let mut best: Option<(PolicyVerdict, String)> = None;
    let mut flags: Vec<Flag> = Vec::new();
    for f in ev.failures.iter_mut().filter(|f| f.row) {
        let ctx = link_context(s, f, destination, p);
        let out = p.evaluate(&ctx);
        for fl in &out.flags {
            let name = fl.to_string();
            if !f.flags.contains(&name) {
                f.flags.push(name);
            }
            if !flags.contains(fl) {
                flags.push(*fl);
            }
        }
        if let Some(v) = out.verdict
            && best.as_ref().is_none_or(|b| v.rank() < b.0.rank())
        {
            best = Some((v, out.rule.clone()));
        }
        f.policy_verdict = out.verdict;
        f.policy_rule = out.rule;
    }
    (best, flags)
}

/// What §E.4 needs of one link.
fn link_context(
    s: &SessionSummary,
    f: &verdict::Failure,
    destination: DestClass,
    p: &Policy,
) -> LinkContext {
    let first = s.attempts.first().map(|a| &a.request);
    let n_attempt = f.retry.as_ref().and_then(|n| {
        s.attempts
            .iter()
            .find(|a| a.request.at.ts_ns == n.at.ts_ns && a.request.at.frame == n.at.frame)
    });
    let n_final = n_attempt.and_then(|a| a.final_response.as_ref());
    // A success kept as its digest has no Warning (whose agent could name
    // a home node) and, not being a 421, no Require to read.
    let n_success = n_attempt.and_then(|a| a.final_success);
    let home_rejected = n_final.is_some_and(|nf| {
        let req: Vec<&str> = nf.require().iter().collect();
        p.is_home_rejection(home_node(p, nf), nf.status.unwrap_or(0), &req, &f.x)
    }) || n_success.is_some_and(|ns| {
        p.is_home_rejection(p.is_home_node(ns.src.ip(), None), ns.status, &[], &f.x)
    });
    let passed = n_final.is_some_and(|nf| nf.status.is_some_and(|c| (200..300).contains(&c)))
        || n_success.is_some()
        || f.retry.as_ref().is_some_and(|n| {
            let hosts: Vec<&str> = n.via_hosts().collect();
            p.is_border(n.at.src.ip(), &hosts)
        });
    let req = &f.request;
    let subscriber = (!req.subscriber().is_empty()).then(|| req.subscriber().to_string());
    LinkContext {
        relaxed: f.x.clone(),
        refused: f.u.clone(),
        verdict: f.verdict,
        destination,
        origin_domain: subscriber.as_deref().and_then(host_of),
        subscriber,
        visited_network: req.visited_network().map(str::to_string),
        access_type: req.access_type().map(str::to_string),
        emergency: first.is_some_and(|r| p.is_emergency(r.request_uri().unwrap_or(""))),
        same_call_id: f.link.is_none_or(|l| l.0 == crate::dialog::Rule::H0),
        retry_count: f.retry_count.max(1),
        desired_dropped: f.desired_listed == Some(false),
        home_rejected,
        passed,
    }
}

/// The `flags` items of a session (see [`Evaluated::flags`]).
fn session_flags(s: &SessionSummary, ev: &SessionEval, policy: &[Flag]) -> Vec<String> {
    let mut flags: Vec<String> = s.flags.iter().map(|m| Flag::from(*m).to_string()).collect();
    for x in ev.failures.iter().filter(|x| x.row) {
        flags.extend(x.flags.iter().cloned());
    }
    flags.extend(ev.flags.iter().cloned());
    flags.extend(policy.iter().map(Flag::to_string));
    flags.sort();
    flags.dedup();
    flags
}

/// The session's part in §F's INCONSISTENT_EXPERIENCE check: only sessions
/// with a capability refusal among their failures.csv rows take part,
/// grouped by subscriber, destination class and the refused capabilities.
fn experience(s: &SessionSummary, ev: &SessionEval, destination: DestClass) -> Option<Experience> {
    let refused: Vec<String> = ev
        .failures
        .iter()
        .filter(|f| f.row && f.classes.iter().any(|c| c.class.kind == Kind::Refusal))
        .map(|f| f.capability())
        .collect();
    let r = &s.attempts.first()?.request;
    (!refused.is_empty()).then(|| Experience {
        session: s.id,
        key: (r.subscriber().to_string(), destination, refused.join(";")),
        result: (ev.outcome, ev.verdict),
        context: (
            r.visited_network().map(str::to_string),
            r.access_type().map(str::to_string),
            ev.ue_profile,
        ),
    })
}
