//! A finished session through the whole rule set: §C/§D
//! ([`verdict::evaluate`]), the destination class of §E.2 and the policy
//! verdicts of §E.4 for each link, and the session's policy verdict.

use crate::dialog::{SessionSummary, SipRecord};

use super::catalogue::{Category, ClassId, Flag, PolicyVerdict};
use super::classify;
use super::policy::{DestClass, DestSignals, LinkContext, Policy};
use super::verdict::{self, SessionEval, Settings};

/// Everything the reports need of one evaluated session.
#[derive(Debug)]
pub struct Evaluated {
    /// §C/§D results, with the policy verdict of each failure filled.
    pub ev: SessionEval,
    /// §E.2 class of the first attempt's Request-URI.
    pub destination: DestClass,
    /// The session's policy verdict and rule (most severe link), if any.
    pub policy: Option<(PolicyVerdict, String)>,
    /// Policy flags (POLICY_NOT_ENFORCED).
    pub policy_flags: Vec<Flag>,
}

impl Evaluated {
    /// The session's attention rank (sessions.csv `attention`,
    /// [`super::catalogue::attention`]): its verdict, its policy flags and
    /// its policy verdict.
    pub fn attention(&self) -> u32 {
        super::catalogue::attention(
            self.ev.verdict,
            &self.policy_flags,
            self.policy.as_ref().map(|p| p.0),
        )
    }
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
    p.is_home_node(f.src.ip(), classify::warn_agent(f.warning()))
}

fn host_of(uri: &str) -> Option<String> {
    let key = crate::dialog::ident::uri_key(uri);
    key.rsplit_once('@').map(|(_, h)| h.to_string())
}

/// Evaluates `s` under `policy`.
pub fn evaluate_session(s: &SessionSummary, p: &Policy) -> Evaluated {
    let st = settings(p);
    let mut ev = verdict::evaluate(s, &st, &|f: &SipRecord| {
        home_node(p, f) && f.status.is_some_and(|c| p.reject_code(c))
    });
    let first = s.attempts.first().map(|a| &a.request);
    let signals = DestSignals {
        ims_signature: s.attempts.iter().any(|a| {
            a.answers
                .iter()
                .any(|r| r.require().contains("100rel") && r.has_precondition_lines)
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
    let destination = first.map_or(DestClass::Unknown, |r| {
        p.destination(r.request_uri().unwrap_or(""), r.to_uri(), &signals)
            .0
    });
    let mut best: Option<(PolicyVerdict, String)> = None;
    let mut flags: Vec<Flag> = Vec::new();
    for f in ev.failures.iter_mut().filter(|f| f.row) {
        let n_final = f.retry.as_ref().and_then(|n| {
            s.attempts
                .iter()
                .find(|a| a.request.ts_ns == n.ts_ns && a.request.frame == n.frame)
                .and_then(|a| a.final_response.as_ref())
        });
        let home_rejected = n_final.is_some_and(|nf| {
            let req: Vec<&str> = nf.require().iter().collect();
            p.is_home_rejection(home_node(p, nf), nf.status.unwrap_or(0), &req, &f.x)
        });
        let passed = n_final.is_some_and(|nf| nf.status.is_some_and(|c| (200..300).contains(&c)))
            || f.retry.as_ref().is_some_and(|n| {
                let hosts: Vec<&str> = n.via_hosts().collect();
                p.is_border(n.src.ip(), &hosts)
            });
        let req = &f.request;
        let subscriber = (!req.subscriber().is_empty()).then(|| req.subscriber().to_string());
        let ctx = LinkContext {
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
        };
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
        // The most severe link (§E.4 order, the reason ignored); the first
        // of equally severe ones.
        if let Some(v) = out.verdict
            && best.as_ref().is_none_or(|b| v.rank() < b.0.rank())
        {
            best = Some((v, out.rule.clone()));
        }
        f.policy_verdict = out.verdict;
        f.policy_rule = out.rule;
    }
    Evaluated {
        ev,
        destination,
        policy: best,
        policy_flags: flags,
    }
}
