//! rules.md §C: failure classification. The table is
//! [`crate::rules::catalogue::CLASSES`], one row per C-id; this module holds
//! the condition of each row (one function per Pattern cell) and walks the
//! table: [`classify`] for a failure response, [`observations`] for the
//! 1xx/2xx answers.

use crate::dialog::record::Method;
use crate::dialog::tracker::Answer;
use crate::dialog::{SipRecord, Tags};
use crate::sip::Demand;

pub use super::catalogue::{CLASSES, Capability, Category, Class, ClassId, Kind, Trigger, class};

/// One matched row with the capabilities it names.
#[derive(Clone, Debug)]
pub struct Match {
    /// The row.
    pub class: &'static Class,
    /// Category as reported (MALFORMED_421 for a 421 without Require).
    pub category: Category,
    /// Capabilities this row contributes.
    pub capabilities: Vec<String>,
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

/// What a row's condition sees: P, the failure (or answer) F, the context,
/// and for the observation rows every answer to P.
pub struct Facts<'a> {
    /// The request P.
    pub p: &'a SipRecord,
    /// The failure response F (for an observation row: one answer).
    pub f: Reply<'a>,
    /// What classification needs besides P and F.
    pub cx: Context,
    /// Every 1xx/2xx answer to P (observation rows only).
    pub answers: &'a [Answer],
}

/// F as a row reads it: a failure response whole, or for the observation
/// rows (C13, C15, C17) what the tracker keeps of a 1xx/2xx answer
/// ([`Answer`]). An answer keeps no Unsupported, Warning or Require list
/// (only whether Require names 100rel): they read as empty there, and only
/// failure rows read them.
#[derive(Clone, Copy, Debug)]
pub enum Reply<'a> {
    /// A failure response (3xx-6xx).
    Failure(&'a SipRecord),
    /// An answer's digest.
    Answer(&'a Answer),
}

impl<'a> Reply<'a> {
    /// The status code.
    pub fn status(&self) -> Option<u16> {
        match self {
            Reply::Failure(f) => f.status,
            Reply::Answer(a) => Some(a.status),
        }
    }

    /// Unsupported's option tags (failures only).
    pub fn unsupported(&self) -> Tags<'a> {
        match self {
            Reply::Failure(f) => f.unsupported(),
            Reply::Answer(_) => Tags::default(),
        }
    }

    /// Require's option tags (failures only: C08's 421).
    pub fn require(&self) -> Tags<'a> {
        match self {
            Reply::Failure(f) => f.require(),
            Reply::Answer(_) => Tags::default(),
        }
    }

    /// The Warning value (failures only).
    pub fn warning(&self) -> Option<&'a str> {
        match self {
            Reply::Failure(f) => f.warning(),
            Reply::Answer(_) => None,
        }
    }

    /// RSeq.
    pub fn rseq(&self) -> Option<u32> {
        match self {
            Reply::Failure(f) => f.rseq,
            Reply::Answer(a) => a.rseq,
        }
    }

    /// Whether it carries an SDP body.
    pub fn has_sdp(&self) -> bool {
        match self {
            Reply::Failure(f) => f.has_sdp,
            Reply::Answer(a) => a.has_sdp,
        }
    }

    /// Whether its SDP has any a=des/curr/conf line.
    pub fn has_precondition_lines(&self) -> bool {
        match self {
            Reply::Failure(f) => f.has_precondition_lines,
            Reply::Answer(a) => a.has_precondition_lines,
        }
    }

    /// Whether an Allow header is present.
    pub fn has_allow(&self) -> bool {
        match self {
            Reply::Failure(f) => f.has_allow,
            Reply::Answer(a) => a.has_allow,
        }
    }

    /// Whether Allow lists UPDATE.
    pub fn allow_update(&self) -> bool {
        match self {
            Reply::Failure(f) => f.allow_update,
            Reply::Answer(a) => a.allow_update,
        }
    }
}

impl Facts<'_> {
    fn unsup_where(&self, keep: impl Fn(&str) -> bool) -> Option<Vec<String>> {
        let v: Vec<String> = self
            .f
            .unsupported()
            .iter()
            .filter(|t| keep(t))
            .map(str::to_string)
            .collect();
        (!v.is_empty()).then_some(v)
    }

    /// Precondition is in use: the offer has precondition lines, or an
    /// answer does.
    fn offer_has_preconditions(&self) -> bool {
        matches!(
            self.p.demand,
            Demand::Mandatory | Demand::Optional | Demand::NoneOnly
        )
    }
}

fn hit(b: bool) -> Option<Vec<String>> {
    b.then(Vec::new)
}

/// C09, C10, C24: the status alone decides.
pub fn always(_: &Facts<'_>) -> Option<Vec<String>> {
    Some(Vec::new())
}

/// C01: Unsupported contains precondition; precondition was in Req.
pub fn c01_precondition(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(has(&x.f.unsupported(), "precondition") && has(&x.p.require(), "precondition"))
}

/// C02: Unsupported contains 100rel; 100rel was in Req.
pub fn c02_100rel(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(has(&x.f.unsupported(), "100rel") && has(&x.p.require(), "100rel"))
}

/// C03: the refused tag was only in PReq.
pub fn c03_proxy_only(x: &Facts<'_>) -> Option<Vec<String>> {
    let (req, preq) = (x.p.require(), x.p.proxy_require());
    x.unsup_where(|t| has(&preq, t) && !has(&req, t))
}

/// C04: Unsupported contains sec-agree.
pub fn c04_sec_agree(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(has(&x.f.unsupported(), "sec-agree"))
}

/// C05: other required tags refused (timer, replaces, gruu, ...).
pub fn c05_other(x: &Facts<'_>) -> Option<Vec<String>> {
    let req = x.p.require();
    x.unsup_where(|t| has(&req, t) && !matches!(t, "precondition" | "100rel" | "sec-agree"))
}

/// C06: no Unsupported, or an empty one.
pub fn c06_no_unsupported(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(x.f.unsupported().is_empty())
}

/// C07: Unsupported lists tags absent from Req ∪ PReq.
pub fn c07_not_required(x: &Facts<'_>) -> Option<Vec<String>> {
    let (req, preq) = (x.p.require(), x.p.proxy_require());
    x.unsup_where(|t| !has(&req, t) && !has(&preq, t))
}

/// C08: a 421; its Require names the tags (none: MALFORMED_421).
pub fn c08_required(x: &Facts<'_>) -> Option<Vec<String>> {
    Some(x.f.require().iter().map(str::to_string).collect())
}

/// C11: a Warning 306/307 naming des, curr, conf or qos.
pub fn c11_warning(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(warning_names_precondition(x.f.warning()))
}

/// C12: no precondition evidence in the Warning.
pub fn c12_no_warning(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(!warning_names_precondition(x.f.warning()))
}

/// C13: an answer without precondition lines to an offer with them,
/// precondition only desired (in Supported, not required). An offer whose
/// request names precondition nowhere says nothing of what the answerer
/// ignored.
pub fn c13_ignored(x: &Facts<'_>) -> Option<Vec<String>> {
    let p = x.p;
    let in_req = has(&p.require(), "precondition") || has(&p.proxy_require(), "precondition");
    let only_in_sup = has(&p.supported(), "precondition") && !in_req;
    hit(x.offer_has_preconditions()
        && only_in_sup
        && x.f.has_sdp()
        && !x.f.has_precondition_lines())
}

/// C14: 405 or 501 to an UPDATE.
pub fn c14_update(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(x.p.method == Method::Update && matches!(x.f.status(), Some(405 | 501)))
}

/// C15: an Allow without UPDATE while preconditions are in use.
pub fn c15_allow_no_update(x: &Facts<'_>) -> Option<Vec<String>> {
    let in_use = x.offer_has_preconditions() || x.answers.iter().any(|a| a.has_precondition_lines);
    hit(in_use && x.f.has_allow() && !x.f.allow_update())
}

/// C16: 405/501/481 to a PRACK.
pub fn c16_prack(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(x.p.method == Method::Prack)
}

/// C17: Require: 100rel answered by an unreliable 18x.
pub fn c17_unreliable(x: &Facts<'_>) -> Option<Vec<String>> {
    let s = x.f.status().unwrap_or(0);
    hit(has(&x.p.require(), "100rel") && (180..200).contains(&s) && x.f.rseq().is_none())
}

/// C18: a 5xx to an INVITE after a reliable 1xx never PRACKed.
pub fn c18_unpracked(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(x.p.method == Method::Invite && x.cx.unpracked_reliable)
}

/// C19: a home node's reject of a relaxed request; the relaxed tags are
/// the IMS tags P still offers.
pub fn c19_home_reject(x: &Facts<'_>) -> Option<Vec<String>> {
    x.cx.home_reject_of_relaxed.then(|| {
        x.p.supported()
            .iter()
            .filter(|t| *t == "precondition" || *t == "100rel")
            .map(str::to_string)
            .collect()
    })
}

/// C20: a 408, unless the attempt stalled (C21).
pub fn c20_not_stalled(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(!x.cx.stalled)
}

/// C21: a 408, or a 487 after the UAC's CANCEL, ending a stalled early
/// dialog (in place of C20 or C22).
pub fn c21_stalled(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(x.cx.stalled && (x.f.status() == Some(408) || x.cx.cancelled))
}

/// C22: a 487 after the UAC's CANCEL, unless the attempt stalled (C21).
pub fn c22_cancelled(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(x.cx.cancelled && !x.cx.stalled)
}

/// C23: P repeats the CSeq of the attempt before it with a new branch.
pub fn c23_repeats_cseq(x: &Facts<'_>) -> Option<Vec<String>> {
    hit(x.cx.repeats_cseq)
}

fn matched(row: &'static Class, x: &Facts<'_>, tags: Vec<String>) -> Match {
    let capabilities = match row.capability {
        Capability::Fixed(t) => vec![t.to_string()],
        Capability::Tags => tags,
        Capability::Nothing(_) => Vec::new(),
    };
    // rules.md §C: a 421 without Require has the category MALFORMED_421.
    let category = if row.id == ClassId::C08 && x.f.require().is_empty() {
        Category::Malformed421
    } else {
        row.category
    };
    Match {
        class: row,
        category,
        capabilities,
    }
}

/// The §C rows that failure response `f` to request `p` matches, in C-id
/// order (rules.md §C: one F can match several rows).
pub fn classify(p: &SipRecord, f: &SipRecord, cx: Context) -> Vec<Match> {
    let status = f.status.unwrap_or(0);
    let x = Facts {
        p,
        f: Reply::Failure(f),
        cx,
        answers: &[],
    };
    CLASSES
        .iter()
        .filter(|row| row.trigger.fires(status))
        .filter_map(|row| (row.condition)(&x).map(|tags| matched(row, &x, tags)))
        .collect()
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

/// The observation classes C13, C15, C17 on the 1xx/2xx answers (from 180
/// on) to an INVITE (rules.md §C: written to the session's flags), in C-id
/// order.
pub fn observations(p: &SipRecord, answers: &[Answer]) -> Vec<Category> {
    let mut out = Vec::new();
    if p.method != Method::Invite {
        return out;
    }
    for a in answers.iter().filter(|a| a.status >= 180) {
        let x = Facts {
            p,
            f: Reply::Answer(a),
            cx: Context::default(),
            answers,
        };
        for row in CLASSES.iter().filter(|r| r.trigger == Trigger::Answer) {
            if (row.condition)(&x).is_some() {
                out.push(row.category);
            }
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

    fn ids(v: &[Match]) -> Vec<String> {
        v.iter().map(|x| x.class.id.to_string()).collect()
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
            (ClassId::C08, Category::RemoteRequiresExtension)
        );
        assert_eq!(x[0].capabilities, ["100rel"]);
        let x = classify(&inv, &resp(421, "INVITE", ""), cx);
        assert_eq!(x[0].category, Category::Malformed421);
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
        assert_eq!(
            observations(&p, &[Answer::of(&a)]),
            [
                Category::PreconditionIgnored,
                Category::RemoteLacksUpdatePredicted,
                Category::RemoteViolates100rel
            ]
        );
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
        let answer = Answer::of(&answer);
        assert!(observations(&p, &[answer]).is_empty());
        let p = msg(
            "INVITE sip:b@x SIP/2.0",
            "",
            "Supported: 100rel, precondition\r\n",
            body(des),
        );
        assert_eq!(observations(&p, &[answer]), [Category::PreconditionIgnored]);
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
