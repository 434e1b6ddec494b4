//! sessions.csv rows from finished sessions.

use crate::capture::format_rfc3339_micros;
use crate::dialog::SessionSummary;
use crate::dialog::record::SipRecord;
use crate::dialog::tracker::wireshark_filter;
use crate::rules::destination_class;

use super::Text;
use super::rows::SessionRow;

fn tags(t: &[Box<str>]) -> Text {
    Text(t.join(";"))
}

/// The sessions.csv row of `s`; `files` are the input display names by
/// index.
pub fn session_row(s: &SessionSummary, files: &[String]) -> SessionRow {
    let first: Option<&SipRecord> = s.attempts.first().map(|a| &a.request);
    let failure = s.first_failure();
    let f = failure.and_then(|i| s.attempts[i].final_response.as_ref());
    let link = failure.and_then(|i| s.link_from(i));
    let retry = link.map(|l| &s.attempts[l.to].request);
    let text = |v: Option<&str>| Text(v.unwrap_or("").to_string());
    SessionRow {
        session: s.id,
        method: text(first.map(|r| r.method.as_str())),
        call_id: text(first.map(|r| &*r.call_id)),
        start: format_rfc3339_micros(s.start_ns),
        end: format_rfc3339_micros(s.end_ns),
        caller: first.map(|r| r.src.to_string()).unwrap_or_default(),
        callee: first.map(|r| r.dst.to_string()).unwrap_or_default(),
        from_uri: text(first.map(|r| &*r.from_uri)),
        to_uri: text(first.map(|r| &*r.to_uri)),
        request_uri: text(first.and_then(|r| r.request_uri.as_deref())),
        user_agent: text(first.and_then(|r| r.user_agent.as_deref())),
        attempts: s.attempts.len() as u32,
        first_require: first.map(|r| tags(&r.require)).unwrap_or_default(),
        first_supported: first.map(|r| tags(&r.supported)).unwrap_or_default(),
        first_precondition: first.map(|r| r.demand.as_str()).unwrap_or(""),
        failure_status: f.and_then(|f| f.status),
        failure_class: Text::default(),
        refused: f
            .filter(|f| f.status == Some(420))
            .map(|f| tags(&f.unsupported))
            .unwrap_or_default(),
        retry_call_id: text(retry.map(|r| &*r.call_id)),
        retry_link: link.map(|l| l.rule.as_str()).unwrap_or(""),
        retry_delay_ms: match (retry, f) {
            (Some(n), Some(f)) => Some((n.ts_ns - f.ts_ns).div_euclid(1_000_000)),
            _ => None,
        },
        retry_require: retry.map(|r| tags(&r.require)).unwrap_or_default(),
        retry_supported: retry.map(|r| tags(&r.supported)).unwrap_or_default(),
        retry_precondition: retry.map(|r| r.demand.as_str()).unwrap_or(""),
        verdict: "NOT_APPLICABLE",
        flags: Text(s.flags.iter().cloned().collect::<Vec<_>>().join(";")),
        destination_class: first
            .map(|r| destination_class(r.request_uri.as_deref().unwrap_or(""), &r.to_uri))
            .unwrap_or("UNKNOWN"),
        policy_verdict: Text::default(),
        policy_rule: Text::default(),
        final_status: s.final_status,
        outcome: s.outcome.as_str(),
        file: text(
            first
                .and_then(|r| files.get(r.file as usize))
                .map(|s| s.as_str()),
        ),
        frame: first.map(|r| r.frame).unwrap_or(0),
        wireshark_filter: Text(wireshark_filter(&s.call_ids)),
        related_sessions: s
            .related
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(";"),
    }
}
