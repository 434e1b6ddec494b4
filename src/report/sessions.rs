//! sessions.csv and failures.csv rows from finished, evaluated sessions.
//! It formats what the rules decided ([`Evaluated`]): it never chooses a
//! flag, a verdict, a policy cell or a rank.

use crate::capture::format_rfc3339_micros;
use crate::dialog::record::SipRecord;
use crate::dialog::tracker::wireshark_filter;
use crate::dialog::{Rule, SessionSummary, Tags};
use crate::rules::catalogue::{PolicyVerdict, UeProfile};
use crate::rules::session::Evaluated;
use crate::rules::verdict::{Failure, SessionEval, fmt_conf};

use super::Cell;
use super::rows::{FailureRow, SessionRow};

/// A tag set as a cell, `;`-joined: borrowed when it has at most one tag.
fn tags<'a>(t: &Tags<'a>) -> Cell<'a> {
    if t.as_str().contains(',') {
        Cell::owned(t.join(";"))
    } else {
        Cell::str(t.as_str())
    }
}

/// Strings as a cell, `;`-joined: borrowed when there is at most one.
fn strings(t: &[String]) -> Cell<'_> {
    match t {
        [] => Cell::str(""),
        [one] => Cell::str(one),
        _ => Cell::owned(t.join(";")),
    }
}

/// A policy verdict as a cell: its static name, unless a violation's reason
/// is written after it.
fn policy_cell(v: Option<PolicyVerdict>) -> Cell<'static> {
    match v {
        None => Cell::str(""),
        Some(v @ PolicyVerdict::Violation(_)) => Cell::owned(v.to_string()),
        Some(v) => Cell::str(v.kind().as_str()),
    }
}

/// The sessions.csv row of `e`, the evaluation of `s`; `files` are the
/// input display names by index. Its text cells borrow from all three
/// (none is copied unless joined or formatted).
pub fn session_row<'a>(
    s: &'a SessionSummary,
    e: &'a Evaluated,
    files: &'a [String],
) -> SessionRow<'a> {
    let ev = &e.ev;
    let first: Option<&SipRecord> = s.attempts.first().map(|a| &a.request);
    // The session's first failure: its earliest failures.csv row.
    let failure: Option<&Failure> = ev.failures.iter().find(|f| f.row);
    let f = failure.map(|x| &x.failure);
    let retry = failure.and_then(|x| x.retry.as_ref());
    let text = |v: Option<&'a str>| Cell::str(v.unwrap_or(""));
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
        failure_class: Cell::owned(failure.map(|x| x.failure_class()).unwrap_or_default()),
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
        policy_verdict: policy_cell(e.policy.as_ref().map(|v| v.0)),
        policy_rule: Cell::str(e.policy.as_ref().map_or("", |v| v.1.as_str())),
        final_status: ev.final_status,
        outcome: ev.outcome.as_str(),
        file: text(
            first
                .and_then(|r| files.get(r.at.file as usize))
                .map(|s| s.as_str()),
        ),
        frame: first.map(|r| r.at.frame).unwrap_or(0),
        wireshark_filter: Cell::owned(wireshark_filter(&s.call_ids)),
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

/// The `flags` cell of a session given a batch-wide flag: `flags` (sorted,
/// [`Evaluated::flags`]) with `extra` added in its sorted place unless it is
/// there, `;`-joined. Its twin row is its row with this cell instead (one
/// cell, not a copy of the row's dozen strings).
pub fn flags_cell_with(flags: &[String], extra: &str) -> Cell<'static> {
    let at = flags.binary_search_by(|f| f.as_str().cmp(extra));
    let mut out =
        String::with_capacity(flags.iter().map(|f| f.len() + 1).sum::<usize>() + extra.len());
    let mut first = true;
    let mut put = |f: &str| {
        if !std::mem::take(&mut first) {
            out.push(';');
        }
        out.push_str(f);
    };
    match at {
        Ok(_) => flags.iter().for_each(|f| put(f)),
        Err(i) => {
            flags[..i].iter().for_each(|f| put(f));
            put(extra);
            flags[i..].iter().for_each(|f| put(f));
        }
    }
    Cell::owned(out)
}

/// `row` with its `flags` cell replaced by `flags`.
pub fn with_flags<'a>(row: &SessionRow<'a>, flags: &Cell<'a>) -> SessionRow<'a> {
    SessionRow {
        flags: flags.clone(),
        ..row.clone()
    }
}

/// sessions.csv `links`: every retry link as `call_id:rule:confidence` (the
/// retry's Call-ID), in time order of the retries: the links between the
/// session's attempts and the in-dialog retries (a re-INVITE after a 420).
fn links<'a>(s: &SessionSummary, ev: &SessionEval) -> Cell<'a> {
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
    Cell::owned(v.into_iter().map(|x| x.1).collect::<Vec<_>>().join(";"))
}

/// The failures.csv rows of a session.
pub fn failure_rows<'a>(
    s: &SessionSummary,
    ev: &'a SessionEval,
    files: &'a [String],
) -> Vec<FailureRow<'a>> {
    let file = |r: &SipRecord| Cell::str(files.get(r.at.file as usize).map_or("", |f| f.as_str()));
    ev.failures
        .iter()
        .filter(|x| x.row)
        .map(|x| {
            let n = x.retry;
            let with_n = |v: Cell<'a>| if n.is_some() { v } else { Cell::str("") };
            FailureRow {
                session: s.id,
                call_id: Cell::str(x.request.call_id()),
                request_frame: x.request.at.frame,
                failure_file: file(x.failure),
                failure_frame: x.failure.at.frame,
                failure_status: x.failure.status,
                failure_class: Cell::owned(x.failure_class()),
                capability: Cell::owned(x.capability()),
                refused: strings(&x.refused),
                responder: Cell::str(&x.responder),
                retry_call_id: Cell::str(n.map_or("", |n| n.call_id())),
                retry_file: n.map_or(Cell::str(""), file),
                retry_frame: n.map(|n| n.at.frame),
                retry_link: n.and(x.link).map(|l| l.0.as_str()).unwrap_or(""),
                link_confidence: n.and(x.link).map(|l| fmt_conf(l.1)).unwrap_or_default(),
                dropped: with_n(strings(&x.dropped)),
                kept_refused: with_n(strings(&x.kept)),
                desired_listed: n.and(x.desired_listed),
                sdp_relaxed: n.and(x.sdp_relaxed),
                verdict: x.verdict.as_str(),
                flags: strings(&x.flags),
                policy_verdict: policy_cell(x.policy_verdict),
                policy_rule: Cell::str(&x.policy_rule),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The twin's flags cell is the flags with the batch-wide flag inserted
    /// in its sorted place (once), then joined.
    #[test]
    fn a_flag_added_to_the_cell_takes_its_sorted_place() {
        let names = ["AMBIGUOUS_LINK", "MID_DIALOG", "PRACK_MISSING", "ZZ"];
        for n in 0..=names.len() {
            let flags: Vec<String> = names[..n].iter().map(|s| s.to_string()).collect();
            for extra in ["INCONSISTENT_EXPERIENCE", "AMBIGUOUS_LINK", "A", "ZZZ", ""] {
                let mut want: Vec<&str> = names[..n].to_vec();
                if !want.contains(&extra) {
                    want.push(extra);
                    want.sort_unstable();
                }
                assert_eq!(
                    flags_cell_with(&flags, extra).0,
                    want.join(";"),
                    "{flags:?} + {extra}"
                );
            }
        }
    }
}
