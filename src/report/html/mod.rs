//! report.html: one self-contained page (no network, no external script or
//! font) with the run, its charts, the sessions that need attention (worst
//! first) and the ladder of each. Owns the page layout; it is given every
//! count and row, and decides nothing. Rendered with maud, which escapes
//! every text and attribute by construction: wire text cannot inject markup.

pub mod charts;
pub mod reasons;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::ladder::{self, LadderMsg};
use super::rows::{FailureRow, InputRow, SessionRow};

/// A session of the attention table, with what its ladder needs.
#[derive(Debug, Clone)]
pub struct HtmlSession {
    /// Its sessions.csv row.
    pub row: SessionRow<'static>,
    /// Its failures.csv rows.
    pub failures: Vec<FailureRow<'static>>,
    /// Its messages in capture order (retransmissions included).
    pub msgs: Vec<LadderMsg>,
}

/// Everything the page shows.
pub struct HtmlRun<'a> {
    /// inputs.csv rows.
    pub inputs: &'a [InputRow],
    /// The totals of summary.csv (`files`, `packets`, ...).
    pub totals: &'a [(&'static str, u64)],
    /// The policy's name.
    pub policy: &'a str,
    /// Session verdict counts.
    pub verdicts: Vec<(String, u64)>,
    /// Failure class counts (failures.csv).
    pub failure_classes: Vec<(String, u64)>,
    /// Session policy verdict counts.
    pub policy_verdicts: Vec<(String, u64)>,
    /// Failures per minute since the epoch.
    pub failure_minutes: &'a std::collections::BTreeMap<i64, u64>,
    /// The sessions of the table, worst first.
    pub sessions: &'a [HtmlSession],
    /// Sessions with attention > 0 in all (the table shows at most
    /// `--html-sessions` of them).
    pub needing: u64,
    /// Input display names, by index.
    pub files: &'a [String],
    /// Where the per-session pcaps are, relative to the report (with
    /// `--pcap-dir`).
    pub pcap_dir: Option<String>,
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;padding:2px 6px;\
font-size:13px;text-align:left;vertical-align:top}th{background:#eef2f7}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart svg{max-width:100%;height:auto}\
.session{border-top:2px solid #8899aa;margin-top:2em;padding-top:.5em}\
.ladder-wrap{overflow-x:auto}code{background:#f4f4f4;padding:1px 3px;word-break:break-all}\
.att{font-weight:bold;color:#c0392b}";

/// The whole page.
pub fn render(run: &HtmlRun<'_>) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "sipaudit report" }
                style { (STYLE) }
            }
            body {
                h1 { "sipaudit report" }
                (run_section(run))
                (chart_section(run))
                (table_section(run))
                @for s in run.sessions {
                    (session_section(s, run))
                }
            }
        }
    };
    page.into_string()
}

fn run_section(run: &HtmlRun<'_>) -> Markup {
    html! {
        h2 { "The run" }
        p { "Policy: " b { (run.policy) } }
        table {
            tr { @for (k, _) in run.totals { th { (k) } } }
            tr { @for (_, v) in run.totals { td { (v) } } }
        }
        details open[run.inputs.len() <= 3] {
        summary { (run.inputs.len()) " input files" }
        table {
            tr { th { "input" } th { "format" } th { "packets" } th { "SIP packets" }
                 th { "other" } th { "undecodable" } th { "SIP messages" } th { "first" }
                 th { "last" } th { "error" } }
            @for i in run.inputs {
                tr { td { (i.file.0) } td { (i.format) " " (i.compression) } td { (i.packets) }
                     td { (i.sip_packets) } td { (i.other_packets) } td { (i.undecodable_packets) }
                     td { (i.sip_messages) } td { (i.first_time) } td { (i.last_time) }
                     td { (i.error.0) } }
            }
        }
        }
    }
}

fn chart(svg: Option<String>, empty: &str) -> Markup {
    html! {
        div class="chart" {
            @match svg {
                // plotters' own SVG of report vocabulary (never wire text).
                Some(s) => (PreEscaped(s)),
                None => p { (empty) },
            }
        }
    }
}

fn chart_section(run: &HtmlRun<'_>) -> Markup {
    let (unit, buckets) = charts::buckets(run.failure_minutes);
    html! {
        h2 { "Verdicts and failures" }
        div class="charts" {
            (chart(charts::bars("Session verdicts (rules.md §D.3)", &run.verdicts), "No sessions."))
            (chart(charts::bars("Failure classes (failures.csv)", &run.failure_classes), "No capability failure."))
            (chart(charts::bars("Policy verdicts (rules.md §E.4)", &run.policy_verdicts), "No policy verdict."))
            (chart(charts::timeline(&format!("Capability failures per {unit}"), &buckets), "No failures over time."))
        }
    }
}

fn table_section(run: &HtmlRun<'_>) -> Markup {
    let shown = run.sessions.len() as u64;
    html! {
        h2 { "Sessions that need attention" }
        @if run.needing == 0 {
            p { "No session needs attention (every attention is 0)." }
        } @else {
            p { (run.needing) " sessions need attention; worst first (sessions.csv "
                code { "attention" } ", then session id)."
                @if run.needing > shown {
                    " The " (shown) " worst are shown; " (run.needing - shown)
                    " more are in sessions.csv (--html-sessions raises the limit)."
                } }
            table {
                tr { th { "attention" } th { "session" } th { "method" } th { "start" } th { "caller" }
                     th { "callee" } th { "verdict" } th { "policy verdict" } th { "failure" }
                     th { "outcome" } }
                @for s in run.sessions {
                    @let r = &s.row;
                    tr { td class="att" { (r.attention) }
                         td { a href=(format!("#s{}", r.session)) { (r.session) } }
                         td { (r.method.0) } td { (r.start) } td { (r.caller) } td { (r.callee) }
                         td { (r.verdict) } td { (r.policy_verdict.0) }
                         td { (r.failure_status.map(|s| s.to_string()).unwrap_or_default()) " " (r.failure_class.0) }
                         td { (r.outcome) } }
                }
            }
        }
    }
}

fn session_section(s: &HtmlSession, run: &HtmlRun<'_>) -> Markup {
    let r = &s.row;
    let file_index = |name: &str| run.files.iter().position(|f| f == name).map(|i| i as u32);
    let marks = ladder::marks(&s.failures, file_index);
    let flags: Vec<&str> = r.flags.0.split(';').filter(|f| !f.is_empty()).collect();
    html! {
        div class="session" id=(format!("s{}", r.session)) {
            h3 { "Session " (r.session) ": " (r.method.0) " " (r.verdict)
                 " (attention " (r.attention) ")" }
            p { "Call-ID " code { (r.call_id.0) } " · from " code { (r.from_uri.0) }
                " to " code { (r.to_uri.0) } " · " (r.outcome) }
            ul {
                li { b { (r.verdict) } ": " (reasons::verdict(r.verdict)) }
                @if !r.policy_verdict.0.is_empty() {
                    li { b { (r.policy_verdict.0) } " (" (r.policy_rule.0) "): "
                         (reasons::verdict(&r.policy_verdict.0)) }
                }
                @for f in &flags {
                    li { b { (f) } ": " (reasons::flag(f)) }
                }
            }
            p { "Wireshark filter: " code { (r.wireshark_filter.0) } }
            @if let Some(d) = &run.pcap_dir {
                p { "Packets: " a href=(format!("{d}/{}.pcap", r.session)) { (format!("{d}/{}.pcap", r.session)) } }
            }
            div class="ladder-wrap" { (ladder::svg(&s.msgs, &marks)) }
        }
    }
}
