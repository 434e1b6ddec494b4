//! sessions.csv and failures.csv rows from finished, evaluated sessions.
//! It formats what the rules decided ([`Evaluated`]): it never chooses a
//! flag, a verdict, a policy cell or a rank.

use crate::capture::format_rfc3339_micros;
use crate::dialog::record::SipRecord;
use crate::dialog::tracker::wireshark_filter;
use crate::dialog::{Rule, SessionSummary, Tags};
use crate::rules::catalogue::UeProfile;
use crate::rules::session::Evaluated;
use crate::rules::verdict::{Failure, SessionEval, fmt_conf};

use super::Text;
use super::rows::{FailureRow, SessionRow};

fn tags(t: &Tags<'_>) -> Text {
    Text(t.join(";"))
}

fn strings(t: &[String]) -> Text {
    Text(t.join(";"))
}

/// The sessions.csv row of `e`, the evaluation of `s`; `files` are the
/// input display names by index.
pub fn session_row(s: &SessionSummary, e: &Evaluated, files: &[String]) -> SessionRow {
    let ev = &e.ev;
    let first: Option<&SipRecord> = s.attempts.first().map(|a| &a.request);
    // The session's first failure: its earliest failures.csv row.
    let failure: Option<&Failure> = ev.failures.iter().find(|f| f.row);
    let f = failure.map(|x| &x.failure);
    let retry = failure.and_then(|x| x.retry.as_ref());
    let text = |v: Option<&str>| Text(v.unwrap_or("").to_string());
    SessionRow {
        session: s.id,
        method: text(first.map(|r| r.method.as_str())),
        call_id: text(first.map(|r| r.call_id())),
        start: format_rfc3339_micros(s.start_ns),
        end: format_rfc3339_micros(s.end_ns),
        caller: first
            .map(|r| super::addr_text(&r.at.src))
            .unwrap_or_default(),
        callee: first
            .map(|r| super::addr_text(&r.at.dst))
            .unwrap_or_default(),
        from_uri: text(first.map(|r| r.from_uri())),
        to_uri: text(first.map(|r| r.to_uri())),
        request_uri: text(first.and_then(|r| r.request_uri())),
        user_agent: text(first.and_then(|r| r.user_agent())),
        attempts: s.attempts.len() as u32,
        first_require: first.map(|r| tags(&r.require())).unwrap_or_default(),
        first_supported: first.map(|r| tags(&r.supported())).unwrap_or_default(),
        first_precondition: first.map(|r| r.demand.as_str()).unwrap_or(""),
        failure_status: f.and_then(|f| f.status),
        failure_class: Text(failure.map(|x| x.failure_class()).unwrap_or_default()),
        refused: failure.map(|x| strings(&x.refused)).unwrap_or_default(),
        retry_call_id: text(retry.map(|r| r.call_id())),
        retry_link: failure
            .and_then(|x| x.retry.as_ref().and(x.link))
            .map(|l| l.0.as_str())
            .unwrap_or(""),
        retry_delay_ms: match (retry, f) {
            (Some(n), Some(f)) => Some((n.at.ts_ns - f.at.ts_ns).div_euclid(1_000_000)),
            _ => None,
        },
        retry_require: retry.map(|r| tags(&r.require())).unwrap_or_default(),
        retry_supported: retry.map(|r| tags(&r.supported())).unwrap_or_default(),
        retry_precondition: retry.map(|r| r.demand.as_str()).unwrap_or(""),
        verdict: ev.verdict.as_str(),
        flags: strings(&e.flags),
        destination_class: e.destination.as_str(),
        policy_verdict: Text(
            e.policy
                .as_ref()
                .map(|v| v.0.to_string())
                .unwrap_or_default(),
        ),
        policy_rule: Text(e.policy.as_ref().map(|v| v.1.clone()).unwrap_or_default()),
        final_status: ev.final_status,
        outcome: ev.outcome.as_str(),
        file: text(
            first
                .and_then(|r| files.get(r.at.file as usize))
                .map(|s| s.as_str()),
        ),
        frame: first.map(|r| r.at.frame).unwrap_or(0),
        wireshark_filter: Text(wireshark_filter(&s.call_ids)),
        related_sessions: s
            .related
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(";"),
        ue_profile: ev.ue_profile.map_or("", UeProfile::as_str),
        links: links(s, ev),
        attention: e.attention,
    }
}

/// The `flags` cell of a session given a batch-wide flag
/// ([`Evaluated::flags_with`]): its twin row is its row with this cell
/// instead (one cell, not a copy of the row's dozen strings).
pub fn flags_cell(flags: &[String]) -> Text {
    strings(flags)
}

/// `row` with its `flags` cell replaced by `flags`.
pub fn with_flags(row: &SessionRow, flags: &Text) -> SessionRow {
    SessionRow {
        flags: flags.clone(),
        ..row.clone()
    }
}

/// sessions.csv `links`: every retry link as `call_id:rule:confidence` (the
/// retry's Call-ID), in time order of the retries: the links between the
/// session's attempts and the in-dialog retries (a re-INVITE after a 420).
fn links(s: &SessionSummary, ev: &SessionEval) -> Text {
    let item = |n: &SipRecord, rule: Rule, conf: f32| {
        let key = (n.at.ts_ns, n.at.file, n.at.frame);
        (
            key,
            format!("{}:{}:{}", n.call_id(), rule.as_str(), fmt_conf(conf)),
        )
    };
    let mut v: Vec<_> = s
        .links
        .iter()
        .map(|l| item(&s.attempts[l.to].request, l.rule, l.confidence))
        .collect();
    v.extend(ev.failures.iter().filter(|f| f.mid_dialog).filter_map(|f| {
        let (rule, conf) = f.link?;
        Some(item(f.retry.as_ref()?, rule, conf))
    }));
    v.sort();
    Text(v.into_iter().map(|x| x.1).collect::<Vec<_>>().join(";"))
}

/// The failures.csv rows of a session.
pub fn failure_rows(s: &SessionSummary, ev: &SessionEval, files: &[String]) -> Vec<FailureRow> {
    let file = |r: &SipRecord| Text(files.get(r.at.file as usize).cloned().unwrap_or_default());
    ev.failures
        .iter()
        .filter(|x| x.row)
        .map(|x| {
            let n = x.retry.as_ref();
            let with_n = |v: Text| if n.is_some() { v } else { Text::default() };
            FailureRow {
                session: s.id,
                call_id: Text(x.request.call_id().to_string()),
                request_frame: x.request.at.frame,
                failure_file: file(&x.failure),
                failure_frame: x.failure.at.frame,
                failure_status: x.failure.status,
                failure_class: Text(x.failure_class()),
                capability: Text(x.capability()),
                refused: strings(&x.refused),
                responder: Text(x.responder.clone()),
                retry_call_id: Text(n.map(|n| n.call_id().to_string()).unwrap_or_default()),
                retry_file: n.map(file).unwrap_or_default(),
                retry_frame: n.map(|n| n.at.frame),
                retry_link: n.and(x.link).map(|l| l.0.as_str()).unwrap_or(""),
                link_confidence: n.and(x.link).map(|l| fmt_conf(l.1)).unwrap_or_default(),
                dropped: with_n(strings(&x.dropped)),
                kept_refused: with_n(strings(&x.kept)),
                desired_listed: n.and(x.desired_listed),
                sdp_relaxed: n.and(x.sdp_relaxed),
                verdict: x.verdict.as_str(),
                flags: Text(x.flags.join(";")),
                policy_verdict: Text(x.policy_verdict.map(|v| v.to_string()).unwrap_or_default()),
                policy_rule: Text(x.policy_rule.clone()),
            }
        })
        .collect()
}
