//! `sipaudit flow OUTDIR SESSION`: the ladder of one session as
//! fixed-width text, read back from the reports of an earlier run
//! (messages.csv for the messages, sessions.csv, failures.csv and
//! inputs.csv for the session, its marks and the file numbering). Owns the
//! reading of those files; the drawing is [`super::ladder::text`]. It never
//! reads a capture.

use std::collections::HashMap;
use std::path::Path;

use super::ladder::{self, LadderMsg};
use super::rows::FailureRow;
use super::{Cell, needs_guard};
use crate::error::{Error, ErrorKind};

type Rows = Vec<HashMap<String, String>>;

fn report_error(path: &Path, detail: impl Into<String>) -> Error {
    ErrorKind::Report {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
    .into()
}

/// A report as rows of column → value, the formula guard taken off.
pub fn read_report(path: &Path) -> Result<Rows, Error> {
    read(path)
}

fn read(path: &Path) -> Result<Rows, Error> {
    let mut r = csv::Reader::from_path(path).map_err(|e| report_error(path, e.to_string()))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| report_error(path, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| report_error(path, e.to_string()))?;
        let row = header
            .iter()
            .cloned()
            .zip(rec.iter().map(unguard))
            .collect();
        rows.push(row);
    }
    Ok(rows)
}

/// A cell as it was before the formula-injection guard.
fn unguard(s: &str) -> String {
    match s.strip_prefix('\'') {
        Some(rest) if needs_guard(rest) => rest.to_string(),
        _ => s.to_string(),
    }
}

fn get<'a>(r: &'a HashMap<String, String>, k: &str) -> &'a str {
    r.get(k).map_or("", String::as_str)
}

/// The text ladder of session `session` in the reports of `dir`; `colour`
/// adds ANSI colours. Errors name the file: no messages.csv (the run was
/// made without `--messages`) or no such session.
pub fn flow(dir: &Path, session: u64, colour: bool) -> Result<String, Error> {
    let mpath = dir.join("messages.csv");
    if !mpath.exists() {
        return Err(report_error(
            &mpath,
            "not found: `sipaudit flow` draws the messages of messages.csv; \
             run `sipaudit analyze --messages` to write it (report.html has every \
             ladder of the sessions needing attention without it)",
        ));
    }
    let spath = dir.join("sessions.csv");
    let sid = session.to_string();
    let srow = read(&spath)?
        .into_iter()
        .find(|r| get(r, "session") == sid)
        .ok_or_else(|| report_error(&spath, format!("no session {session}")))?;
    let files: Vec<String> = read(&dir.join("inputs.csv"))?
        .iter()
        .map(|r| get(r, "file").to_string())
        .collect();
    let index = |f: &str| files.iter().position(|x| x == f).map(|i| i as u32);
    let mut msgs = messages(&mpath, &sid, &index)?;
    // messages.csv has no User-Agent; sessions.csv has the caller's.
    if let Some(first) = msgs.first_mut().filter(|m| m.src == get(&srow, "caller")) {
        first.agent = get(&srow, "user_agent").to_string();
    }
    let failures: Vec<FailureRow> = read(&dir.join("failures.csv"))?
        .iter()
        .filter(|r| get(r, "session") == sid)
        .map(failure_row)
        .collect();
    let marks = ladder::marks(&failures, index);
    let mut out = format!(
        "session {session}: {} {}  verdict {}  policy {}  outcome {}\nCall-ID {}  attention {}\nflags {}\nfilter {}\n\n",
        get(&srow, "method"),
        get(&srow, "request_uri"),
        get(&srow, "verdict"),
        get(&srow, "policy_verdict"),
        get(&srow, "outcome"),
        get(&srow, "call_id"),
        get(&srow, "attention"),
        get(&srow, "flags"),
        get(&srow, "wireshark_filter"),
    );
    out.push_str(&ladder::text(&msgs, &marks, colour));
    Ok(out)
}

/// The messages.csv rows of session `sid`, in file order.
fn messages(
    path: &Path,
    sid: &str,
    index: &dyn Fn(&str) -> Option<u32>,
) -> Result<Vec<LadderMsg>, Error> {
    let mut out = Vec::new();
    for r in read(path)? {
        if get(&r, "session") != sid {
            continue;
        }
        out.push(LadderMsg {
            file: index(get(&r, "file")).unwrap_or(u32::MAX),
            frame: get(&r, "frame").parse().unwrap_or(0),
            ts_ns: parse_time(get(&r, "time"))
                .ok_or_else(|| report_error(path, format!("bad time {:?}", get(&r, "time"))))?,
            src: get(&r, "src").into(),
            dst: get(&r, "dst").into(),
            method: get(&r, "method").into(),
            status: get(&r, "status").parse().ok(),
            cseq: get(&r, "cseq").parse().ok(),
            call_id: get(&r, "call_id").into(),
            require: get(&r, "require").into(),
            proxy_require: get(&r, "proxy_require").into(),
            supported: get(&r, "supported").into(),
            unsupported: get(&r, "unsupported").into(),
            precondition: get(&r, "precondition").into(),
            agent: String::new(),
            retransmission: get(&r, "retransmission") == "true",
            prev_frame: 0,
        });
    }
    Ok(out)
}

/// `2026-11-24T06:58:36.123456Z` → ns since the epoch (the reports' one
/// time format).
fn parse_time(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 27 || b[26] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, s, us) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..26)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000 + us) * 1_000)
}

fn failure_row(r: &HashMap<String, String>) -> FailureRow<'static> {
    let t = |k: &str| Cell::owned(get(r, k).to_string());
    FailureRow {
        session: get(r, "session").parse().unwrap_or(0),
        call_id: t("call_id"),
        request_frame: get(r, "request_frame").parse().unwrap_or(0),
        failure_file: t("failure_file"),
        failure_frame: get(r, "failure_frame").parse().unwrap_or(0),
        failure_status: get(r, "failure_status").parse().ok(),
        failure_class: t("failure_class"),
        capability: t("capability"),
        refused: t("refused"),
        responder: t("responder"),
        retry_call_id: t("retry_call_id"),
        retry_file: t("retry_file"),
        retry_frame: get(r, "retry_frame").parse().ok(),
        retry_link: rule(get(r, "retry_link")),
        link_confidence: get(r, "link_confidence").to_string(),
        dropped: t("dropped"),
        kept_refused: t("kept_refused"),
        desired_listed: None,
        sdp_relaxed: None,
        verdict: verdict(get(r, "verdict")),
        flags: t("flags"),
        policy_verdict: t("policy_verdict"),
        policy_rule: t("policy_rule"),
    }
}

/// The static spelling of a link rule read back.
fn rule(s: &str) -> &'static str {
    ["H0", "H0'", "H1", "H2", "H3", "AS-leg"]
        .into_iter()
        .find(|r| *r == s)
        .unwrap_or("")
}

/// The static spelling of a verdict read back.
fn verdict(s: &str) -> &'static str {
    s.parse::<crate::rules::catalogue::Verdict>()
        .map_or("", crate::rules::catalogue::Verdict::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_as_written() {
        for ns in [0i64, 1_764_000_000_123_456_000, 951_782_400_000_001_000] {
            let t = crate::capture::format_rfc3339_micros(ns);
            assert_eq!(parse_time(&t), Some(ns), "{t}");
        }
        assert_eq!(parse_time("2026-11-24 06:58:36"), None);
    }

    #[test]
    fn guarded_cells_read_back() {
        assert_eq!(unguard("'=1+1"), "=1+1");
        assert_eq!(unguard("'abc"), "'abc");
        assert_eq!(unguard("x"), "x");
    }
}
