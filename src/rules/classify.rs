//! rules.md §C: failure classification. [`CLASSES`] is the table of
//! rules.md §C, one row per C-id, to be read line by line against it;
//! [`classify`] decides which rows a failure response matches.

use crate::dialog::record::Method;
use crate::dialog::{SipRecord, Tags};

/// What a class of failure means for the relaxation verdicts (rules.md §C
/// "Kinds of rows").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// C01–C07, C11: D.3 expects a relaxed retry.
    Refusal,
    /// C08, C09: the remote requires more (the reverse case of D.3).
    Reverse,
    /// C10, C14, C16, C18, C19, C21: capability failures, no retry expected.
    NonRefusal,
    /// C13, C15, C17: written to the session's flags, not failures.
    Observation,
    /// C12, C20, C22, C23, C24: chain links or terminal states; a row only
    /// when a linked retry relaxes.
    NotCapability,
}

/// One row of rules.md §C.
#[derive(Debug)]
pub struct Class {
    /// The C-id.
    pub id: &'static str,
    /// The category (the upper-case identifier opening the Category cell).
    pub category: &'static str,
    /// How it counts for the verdicts.
    pub kind: Kind,
    /// The Capability cell: a fixed capability, or `None` for "tag",
    /// "listed", "X" (the tags themselves) and for "unknown", "none", "n/a"
    /// (which add nothing; see [`Class::tags`]).
    pub capability: Option<&'static str>,
    /// Whether the Capability cell names tags ("tag", "listed", "X").
    pub tags: bool,
    /// The Confidence cell.
    pub confidence: &'static str,
}

macro_rules! class {
    ($id:literal, $cat:literal, $kind:ident, $cap:expr, $tags:literal, $conf:literal) => {
        Class {
            id: $id,
            category: $cat,
            kind: Kind::$kind,
            capability: $cap,
            tags: $tags,
            confidence: $conf,
        }
    };
}

/// rules.md §C, in C-id order.
pub const CLASSES: &[Class] = &[
    class!(
        "C01",
        "REMOTE_LACKS_PRECONDITION",
        Refusal,
        Some("precondition"),
        false,
        "high"
    ),
    class!(
        "C02",
        "REMOTE_LACKS_100REL",
        Refusal,
        Some("100rel"),
        false,
        "high"
    ),
    class!("C03", "PROXY_LACKS_EXTENSION", Refusal, None, true, "high"),
    class!(
        "C04",
        "SEC_AGREE_UNSUPPORTED",
        Refusal,
        Some("sec-agree"),
        false,
        "high"
    ),
    class!(
        "C05",
        "REMOTE_LACKS_OTHER_EXTENSION",
        Refusal,
        None,
        true,
        "high"
    ),
    class!("C06", "MALFORMED_420", Refusal, None, false, "low"),
    class!("C07", "INCONSISTENT_420", Refusal, None, true, "medium"),
    class!(
        "C08",
        "REMOTE_REQUIRES_EXTENSION",
        Reverse,
        None,
        true,
        "high"
    ),
    class!(
        "C09",
        "SEC_AGREE_REQUIRED",
        Reverse,
        Some("sec-agree"),
        false,
        "high"
    ),
    class!(
        "C10",
        "PRECONDITION_NOT_MET",
        NonRefusal,
        Some("precondition"),
        false,
        "high"
    ),
    class!(
        "C11",
        "REMOTE_REJECTS_PRECONDITION_SDP",
        Refusal,
        Some("precondition"),
        false,
        "medium"
    ),
    class!(
        "C12",
        "MEDIA_NEGOTIATION_FAILURE",
        NotCapability,
        None,
        false,
        "n/a"
    ),
    class!(
        "C13",
        "PRECONDITION_IGNORED",
        Observation,
        Some("precondition"),
        false,
        "medium-high"
    ),
    class!(
        "C14",
        "REMOTE_LACKS_UPDATE",
        NonRefusal,
        Some("UPDATE"),
        false,
        "high"
    ),
    class!(
        "C15",
        "REMOTE_LACKS_UPDATE_PREDICTED",
        Observation,
        Some("UPDATE"),
        false,
        "medium"
    ),
    class!(
        "C16",
        "PRACK_FAILURE",
        NonRefusal,
        Some("100rel"),
        false,
        "high"
    ),
    class!(
        "C17",
        "REMOTE_VIOLATES_100REL",
        Observation,
        Some("100rel"),
        false,
        "high"
    ),
    class!(
        "C18",
        "PRACK_TIMEOUT",
        NonRefusal,
        Some("100rel"),
        false,
        "medium"
    ),
    class!(
        "C19",
        "HOME_POLICY_REJECT",
        NonRefusal,
        None,
        true,
        "medium"
    ),
    class!(
        "C20",
        "NO_FINAL_RESPONSE",
        NotCapability,
        None,
        false,
        "n/a"
    ),
    class!(
        "C21",
        "PRECONDITION_STALL",
        NonRefusal,
        Some("precondition"),
        false,
        "low"
    ),
    class!("C22", "CALLER_CANCELLED", NotCapability, None, false, "n/a"),
    class!(
        "C23",
        "CSEQ_NOT_INCREMENTED",
        NotCapability,
        None,
        false,
        "high"
    ),
    class!(
        "C24",
        "SESSION_INTERVAL_TOO_SMALL",
        NotCapability,
        None,
        false,
        "high"
    ),
];

/// The row of a C-id.
pub fn class(id: &str) -> &'static Class {
    CLASSES.iter().find(|c| c.id == id).expect("known C-id")
}

/// One matched row with the capabilities it names.
#[derive(Clone, Debug)]
pub struct Match {
    /// The row.
    pub class: &'static Class,
    /// Category as reported (MALFORMED_421 for a 421 without Require).
    pub category: &'static str,
    /// Capabilities this row contributes.
    pub capabilities: Vec<String>,
}

fn m(id: &str, caps: Vec<String>) -> Match {
    let c = class(id);
    let mut capabilities = caps;
    if let Some(fixed) = c.capability {
        capabilities = vec![fixed.to_string()];
    }
    Match {
        class: c,
        category: c.category,
        capabilities,
    }
}

fn has(tags: &Tags<'_>, t: &str) -> bool {
    tags.contains(t)
}

/// What classification needs besides P and F.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context {
    /// The UAC cancelled P before F.
    pub cancelled: bool,
    /// P had a reliable 1xx that no PRACK acknowledged (C18).
    pub unpracked_reliable: bool,
    /// P repeats the CSeq of the attempt before it with a new branch (C23).
    pub repeats_cseq: bool,
    /// P was itself a relaxed retry and F comes from a home node with a
    /// status in `reject_codes` (C19).
    pub home_reject_of_relaxed: bool,
    /// Early dialog with preconditions and no progress for T_stall (C21).
    pub stalled: bool,
}

/// The §C rows that failure response `f` to request `p` matches, in C-id
/// order (rules.md §C: one F can match several rows).
pub fn classify(p: &SipRecord, f: &SipRecord, cx: Context) -> Vec<Match> {
    let status = f.status.unwrap_or(0);
    let mut out = Vec::new();
    let req = &p.require();
    let preq = &p.proxy_require();
    match status {
        420 => {
            if f.unsupported().is_empty() {
                out.push(m("C06", Vec::new()));
            }
            let unsup = &f.unsupported();
            if has(unsup, "precondition") && has(req, "precondition") {
                out.push(m("C01", Vec::new()));
            }
            if has(unsup, "100rel") && has(req, "100rel") {
                out.push(m("C02", Vec::new()));
            }
            let proxy_only: Vec<String> = unsup
                .iter()
                .filter(|t| has(preq, t) && !has(req, t))
                .map(|t| t.to_string())
                .collect();
            if !proxy_only.is_empty() {
                out.push(m("C03", proxy_only));
            }
            if has(unsup, "sec-agree") {
                out.push(m("C04", Vec::new()));
            }
            let other: Vec<String> = unsup
                .iter()
                .filter(|t| has(req, t) && !matches!(*t, "precondition" | "100rel" | "sec-agree"))
                .map(|t| t.to_string())
                .collect();
            if !other.is_empty() {
                out.push(m("C05", other));
            }
            let listed: Vec<String> = unsup
                .iter()
                .filter(|t| !has(req, t) && !has(preq, t))
                .map(|t| t.to_string())
                .collect();
            if !listed.is_empty() {
                out.push(m("C07", listed));
            }
        }
        421 => {
            let mut x = m("C08", f.require().iter().map(|t| t.to_string()).collect());
            if f.require().is_empty() {
                x.category = "MALFORMED_421";
            }
            out.push(x);
        }
        494 => out.push(m("C09", Vec::new())),
        580 => out.push(m("C10", Vec::new())),
        488 | 606 => {
            if warning_names_precondition(f.warning()) {
                out.push(m("C11", Vec::new()));
            } else {
                out.push(m("C12", Vec::new()));
            }
        }
        405 | 501 if p.method == Method::Update => out.push(m("C14", Vec::new())),
        405 | 501 | 481 if p.method == Method::Prack => out.push(m("C16", Vec::new())),
        500..=599 if p.method == Method::Invite && cx.unpracked_reliable => {
            out.push(m("C18", Vec::new()))
        }
        408 => out.push(m(if cx.stalled { "C21" } else { "C20" }, Vec::new())),
        487 if cx.cancelled => out.push(m(if cx.stalled { "C21" } else { "C22" }, Vec::new())),
        482 if cx.repeats_cseq => out.push(m("C23", Vec::new())),
        422 => out.push(m("C24", Vec::new())),
        _ => {}
    }
    if cx.home_reject_of_relaxed {
        let caps = p
            .supported()
            .iter()
            .map(|t| t.to_string())
            .filter(|t| t == "precondition" || t == "100rel")
            .collect();
        out.push(m("C19", caps));
        out.sort_by_key(|x| x.class.id);
    }
    out
}

/// rules.md C11: a Warning 306/307 whose text names des, curr, conf or qos.
pub fn warning_names_precondition(w: Option<&str>) -> bool {
    let Some(w) = w else { return false };
    let code = w.trim_start().split(' ').next().unwrap_or("");
    if code != "306" && code != "307" {
        return false;
    }
    let text = w.to_ascii_lowercase();
    ["des", "curr", "conf", "qos"]
        .iter()
        .any(|k| text.contains(k))
}

/// The warn-agent host of a Warning value (`399 host "text"`).
pub fn warn_agent(w: Option<&str>) -> Option<&str> {
    let w = w?;
    let mut it = w.split_whitespace();
    it.next()?;
    let agent = it.next()?;
    let host = agent.split(':').next().unwrap_or(agent);
    (!host.is_empty() && !host.starts_with('"')).then_some(host)
}

/// The observation classes C13, C15, C17 on the 1xx/2xx answers to an
/// INVITE (rules.md §C: written to the session's flags).
pub fn observations(p: &SipRecord, answers: &[SipRecord]) -> Vec<&'static str> {
    let mut out = Vec::new();
    if p.method != Method::Invite {
        return out;
    }
    let offer_has = matches!(
        p.demand,
        crate::sip::Demand::Mandatory | crate::sip::Demand::Optional | crate::sip::Demand::NoneOnly
    );
    let pre_in_req = has(&p.require(), "precondition") || has(&p.proxy_require(), "precondition");
    let pre_only_in_sup = has(&p.supported(), "precondition") && !pre_in_req;
    let in_use = offer_has || answers.iter().any(|a| a.has_precondition_lines);
    for a in answers
        .iter()
        .filter(|a| a.status.is_some_and(|s| s >= 180))
    {
        // C13: an answer without precondition lines to an offer with them,
        // precondition only desired: offered in Supported, not required. An
        // offer whose request names precondition nowhere says nothing of what
        // the answerer ignored.
        if offer_has && pre_only_in_sup && a.has_sdp && !a.has_precondition_lines {
            out.push("C13");
        }
        // C15: Allow without UPDATE while preconditions are in use.
        if in_use && a.has_allow && !a.allow_update {
            out.push("C15");
        }
        // C17: Require: 100rel answered by an unreliable 18x.
        if has(&p.require(), "100rel")
            && a.status.is_some_and(|s| (180..200).contains(&s))
            && a.rseq.is_none()
        {
            out.push("C17");
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(text: &str) -> SipRecord {
        let (a, b) = (
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.0.2:5060".parse().unwrap(),
        );
        SipRecord::from_text(text, 1, 0, a, b)
    }

    fn req(method: &str, extra: &str) -> SipRecord {
        rec(&format!(
            "{method} sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=f\r\n\
To: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        ))
    }

    fn resp(code: u16, method: &str, extra: &str) -> SipRecord {
        rec(&format!(
            "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=f\r\n\
To: <sip:b@x>;tag=t\r\nCall-ID: c\r\nCSeq: 1 {method}\r\n{extra}Content-Length: 0\r\n\r\n"
        ))
    }

    fn ids(v: &[Match]) -> Vec<&str> {
        v.iter().map(|x| x.class.id).collect()
    }

    #[test]
    fn the_table_is_complete_and_in_order() {
        let ids: Vec<&str> = CLASSES.iter().map(|c| c.id).collect();
        let want: Vec<String> = (1..=24).map(|i| format!("C{i:02}")).collect();
        assert_eq!(ids, want);
    }

    #[test]
    fn four_twenty_rows() {
        let p = req(
            "INVITE",
            "Require: precondition, 100rel, timer\r\nProxy-Require: sec-agree, foo\r\n",
        );
        let cx = Context::default();
        let f = resp(420, "INVITE", "Unsupported: precondition, 100rel\r\n");
        assert_eq!(ids(&classify(&p, &f, cx)), ["C01", "C02"]);
        let f = resp(420, "INVITE", "Unsupported: foo\r\n");
        let x = classify(&p, &f, cx);
        assert_eq!(ids(&x), ["C03"]);
        assert_eq!(x[0].capabilities, ["foo"]);
        let f = resp(420, "INVITE", "Unsupported: sec-agree\r\n");
        assert_eq!(ids(&classify(&p, &f, cx)), ["C03", "C04"]);
        let f = resp(420, "INVITE", "Unsupported: timer\r\n");
        assert_eq!(ids(&classify(&p, &f, cx)), ["C05"]);
        let f = resp(420, "INVITE", "");
        assert_eq!(ids(&classify(&p, &f, cx)), ["C06"]);
        let f = resp(420, "INVITE", "Unsupported: gruu, precondition\r\n");
        let x = classify(&p, &f, cx);
        assert_eq!(ids(&x), ["C01", "C07"]);
        assert_eq!(x[1].capabilities, ["gruu"]);
    }

    #[test]
    fn other_statuses() {
        let inv = req("INVITE", "");
        let cx = Context::default();
        let x = classify(&inv, &resp(421, "INVITE", "Require: 100rel\r\n"), cx);
        assert_eq!(
            (x[0].class.id, x[0].category),
            ("C08", "REMOTE_REQUIRES_EXTENSION")
        );
        assert_eq!(x[0].capabilities, ["100rel"]);
        let x = classify(&inv, &resp(421, "INVITE", ""), cx);
        assert_eq!(x[0].category, "MALFORMED_421");
        assert_eq!(ids(&classify(&inv, &resp(494, "INVITE", ""), cx)), ["C09"]);
        assert_eq!(ids(&classify(&inv, &resp(580, "INVITE", ""), cx)), ["C10"]);
        let w = "Warning: 306 proxy.example \"attribute a=des not understood\"\r\n";
        assert_eq!(ids(&classify(&inv, &resp(488, "INVITE", w), cx)), ["C11"]);
        assert_eq!(ids(&classify(&inv, &resp(606, "INVITE", ""), cx)), ["C12"]);
        let up = req("UPDATE", "");
        assert_eq!(ids(&classify(&up, &resp(405, "UPDATE", ""), cx)), ["C14"]);
        assert_eq!(ids(&classify(&up, &resp(501, "UPDATE", ""), cx)), ["C14"]);
        let pr = req("PRACK", "");
        assert_eq!(ids(&classify(&pr, &resp(481, "PRACK", ""), cx)), ["C16"]);
        let unpracked = Context {
            unpracked_reliable: true,
            ..cx
        };
        assert_eq!(
            ids(&classify(&inv, &resp(500, "INVITE", ""), unpracked)),
            ["C18"]
        );
        assert!(classify(&inv, &resp(500, "INVITE", ""), cx).is_empty());
        let home = Context {
            home_reject_of_relaxed: true,
            ..cx
        };
        assert_eq!(
            ids(&classify(&inv, &resp(403, "INVITE", ""), home)),
            ["C19"]
        );
        assert_eq!(ids(&classify(&inv, &resp(408, "INVITE", ""), cx)), ["C20"]);
        let stalled = Context {
            stalled: true,
            ..cx
        };
        assert_eq!(
            ids(&classify(&inv, &resp(408, "INVITE", ""), stalled)),
            ["C21"]
        );
        let cancelled = Context {
            cancelled: true,
            ..cx
        };
        assert_eq!(
            ids(&classify(&inv, &resp(487, "INVITE", ""), cancelled)),
            ["C22"]
        );
        let rep = Context {
            repeats_cseq: true,
            ..cx
        };
        assert_eq!(ids(&classify(&inv, &resp(482, "INVITE", ""), rep)), ["C23"]);
        assert_eq!(ids(&classify(&inv, &resp(422, "INVITE", ""), cx)), ["C24"]);
        assert!(classify(&inv, &resp(486, "INVITE", ""), cx).is_empty());
    }

    #[test]
    fn observation_classes() {
        let sdp = |des: &str| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n{des}"
            )
        };
        let with_body = |head: String, body: String| {
            let head = head.replace(
                "Content-Length: 0\r\n\r\n",
                &format!(
                    "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            );
            rec(&head)
        };
        let inv_text = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=f\r\n\
To: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nSupported: precondition\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n";
        let p = with_body(
            inv_text.into(),
            sdp("a=des:qos mandatory local sendrecv\r\n"),
        );
        let ans = "SIP/2.0 183 X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=f\r\n\
To: <sip:b@x>;tag=t\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nAllow: INVITE, ACK\r\nContent-Length: 0\r\n\r\n";
        let a = with_body(ans.into(), sdp(""));
        assert_eq!(observations(&p, &[a]), ["C13", "C15", "C17"]);
    }

    #[test]
    fn c13_needs_precondition_in_supported() {
        // Issue 12 item 2 (51_esp_sip): an incoming INVITE with
        // `Supported: 100rel` and `a=des:qos mandatory`, answered without
        // precondition lines. Precondition is in neither Supported nor
        // Require, so rules.md C13 ("only in Sup") does not match.
        let sdp =
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n";
        let body = |extra: &str| format!("{sdp}{extra}");
        let msg = |start: &str, to_tag: &str, hdrs: &str, body: String| {
            rec(&format!(
                "{start}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=f\r\n\
To: <sip:b@x>{to_tag}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{hdrs}\
Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ))
        };
        let des = "a=des:qos mandatory local sendrecv\r\n";
        let answer = msg("SIP/2.0 183 X", ";tag=t", "", body(""));
        let p = msg(
            "INVITE sip:b@x SIP/2.0",
            "",
            "Supported: 100rel\r\n",
            body(des),
        );
        assert!(observations(&p, std::slice::from_ref(&answer)).is_empty());
        let p = msg(
            "INVITE sip:b@x SIP/2.0",
            "",
            "Supported: 100rel, precondition\r\n",
            body(des),
        );
        assert_eq!(observations(&p, &[answer]), ["C13"]);
    }

    #[test]
    fn warning_parts() {
        assert!(warning_names_precondition(Some(
            "307 p \"a=curr:qos unknown\""
        )));
        assert!(!warning_names_precondition(Some("399 p \"a=curr\"")));
        assert_eq!(
            warn_agent(Some(
                "399 scscf1.operator-a.example \"relaxation not allowed\""
            )),
            Some("scscf1.operator-a.example")
        );
    }
}
