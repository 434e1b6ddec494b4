//! The example flows of rules.md §H at the level of the rules: messages
//! built by hand, fed to the tracker, the finished session evaluated.

use super::verdict::*;
use crate::dialog::record::SipRecord;
use crate::dialog::{SessionSummary, Tracker};

const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

#[derive(Clone)]
struct M {
    call: &'static str,
    ftag: &'static str,
    ttag: Option<&'static str>,
    cseq: u32,
    method: &'static str,
    branch: String,
    status: Option<u16>,
    headers: String,
    des: Option<&'static str>,
    ruri: &'static str,
    from_ue: bool,
}

fn inv(call: &'static str, ftag: &'static str, cseq: u32) -> M {
    M {
        call,
        ftag,
        ttag: None,
        cseq,
        method: "INVITE",
        branch: format!("z9hG4bK{call}{ftag}{cseq}"),
        status: None,
        headers: String::new(),
        des: None,
        ruri: "sip:bob@voip.example.net",
        from_ue: true,
    }
}

impl M {
    fn h(mut self, h: &str) -> M {
        self.headers.push_str(h);
        self.headers.push_str("\r\n");
        self
    }
    fn des(mut self, d: &'static str) -> M {
        self.des = Some(d);
        self
    }
    fn resp(&self, code: u16, ttag: &'static str) -> M {
        M {
            status: Some(code),
            ttag: Some(ttag),
            headers: String::new(),
            des: None,
            from_ue: false,
            ..self.clone()
        }
    }
    fn ack(&self, ttag: &'static str) -> M {
        M {
            method: "ACK",
            ttag: Some(ttag),
            headers: String::new(),
            des: None,
            ..self.clone()
        }
    }
    fn in_dialog(&self, method: &'static str, cseq: u32, ttag: &'static str) -> M {
        M {
            method,
            cseq,
            ttag: Some(ttag),
            branch: format!("z9hG4bK{}{method}{cseq}", self.call),
            headers: String::new(),
            des: None,
            ..self.clone()
        }
    }
    fn text(&self) -> String {
        let body = self.des.map(|d| {
            format!(
                "v=0\r\no=ue 7 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\
a=curr:qos local none\r\na=curr:qos remote none\r\na=des:qos {d} local sendrecv\r\na=des:qos none remote sendrecv\r\n"
            )
        });
        let (ct, body) = match body {
            Some(b) => ("Content-Type: application/sdp\r\n".to_string(), b),
            None => (String::new(), String::new()),
        };
        let start = match self.status {
            Some(c) => format!("SIP/2.0 {c} X"),
            None => format!("{} {} SIP/2.0", self.method, self.ruri),
        };
        let tt = self.ttag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={}\r\nFrom: <sip:+491701234567@ims.example>;tag={}\r\n\
To: <sip:bob@voip.example.net>{tt}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n{}{ct}Content-Length: {}\r\n\r\n{body}",
            self.branch,
            self.ftag,
            self.call,
            self.cseq,
            self.method,
            self.headers,
            body.len()
        )
    }
}

fn sessions(msgs: &[(i64, M)], end: i64) -> Vec<SessionSummary> {
    let mut t: Tracker<()> = Tracker::default();
    let ue: std::net::SocketAddr = "10.0.0.1:5060".parse().unwrap();
    let net: std::net::SocketAddr = "10.0.0.2:5060".parse().unwrap();
    for (i, (ts, m)) in msgs.iter().enumerate() {
        let (src, dst) = if m.from_ue { (ue, net) } else { (net, ue) };
        let rec = SipRecord::from_text(&m.text(), i as u64 + 1, *ts, src, dst);
        t.push(rec, (), |_, _| {});
    }
    t.finish(end);
    let mut s = t.take_finished();
    s.sort_by_key(|x| x.id);
    s
}

/// The evaluation of the one session of `msgs`; the session is leaked so
/// that the evaluation, which borrows it, can be returned (a test's few KB).
fn eval_one(msgs: &[(i64, M)], end: i64) -> SessionEval<'static> {
    let s = sessions(msgs, end);
    assert_eq!(s.len(), 1, "{s:#?}");
    let s: &'static [SessionSummary] = Box::leak(s.into_boxed_slice());
    evaluate(&s[0], &Settings::default(), &|_| false)
}

fn rows<'a>(e: &'a SessionEval<'_>) -> Vec<&'a Failure<'a>> {
    e.failures.iter().filter(|f| f.row).collect()
}

fn has(f: &Failure<'_>, flag: &str) -> bool {
    f.flags.iter().any(|x| x == flag)
}

/// 420 then a retry `n` 300 ms later, answered 200.
fn retry_flow(p: M, unsup: &str, n: M) -> Vec<(i64, M)> {
    let mut f = p.resp(420, "x");
    if !unsup.is_empty() {
        f = f.h(&format!("Unsupported: {unsup}"));
    }
    vec![
        (0, p.clone()),
        (10 * MS, f),
        (11 * MS, p.ack("x")),
        (300 * MS, n.clone()),
        (900 * MS, n.resp(200, "y")),
        (901 * MS, n.ack("y")),
    ]
}

#[test]
fn h01_compliant() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .h("Supported: 100rel")
        .des("mandatory");
    let n = inv("A", "1", 11)
        .h("Supported: 100rel, precondition")
        .des("optional");
    let e = eval_one(&retry_flow(p, "precondition", n), 60 * S);
    let r = rows(&e);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].failure_class(), "REMOTE_LACKS_PRECONDITION");
    assert_eq!(r[0].verdict, "COMPLIANT_RELAXATION");
    assert!(has(r[0], "DESIRED_LISTED"), "{:?}", r[0].flags);
    assert_eq!(e.verdict, "COMPLIANT_RELAXATION");
    assert_eq!(e.ue_profile.map(|p| p.as_str()), Some("R5_STRICT"));
}

#[test]
fn h02_retry_loop() {
    let p = |c| {
        inv("A", "1", c)
            .h("Require: precondition")
            .h("Supported: 100rel")
            .des("mandatory")
    };
    let msgs = vec![
        (0, p(10)),
        (10 * MS, p(10).resp(420, "x").h("Unsupported: precondition")),
        (11 * MS, p(10).ack("x")),
        (300 * MS, p(11)),
        (
            310 * MS,
            p(11).resp(420, "x").h("Unsupported: precondition"),
        ),
        (311 * MS, p(11).ack("x")),
        (600 * MS, p(12)),
        (
            610 * MS,
            p(12).resp(420, "x").h("Unsupported: precondition"),
        ),
        (611 * MS, p(12).ack("x")),
    ];
    let e = eval_one(&msgs, 60 * S);
    let r = rows(&e);
    assert_eq!(r[0].verdict, "REPEATED_WITHOUT_RELAXATION");
    assert_eq!(r[1].verdict, "RETRY_LOOP");
    assert_eq!(e.verdict, "RETRY_LOOP");
}

#[test]
fn h03_over_relaxed() {
    let p = inv("A", "1", 10)
        .h("Require: precondition, 100rel")
        .des("mandatory");
    let n = inv("A", "1", 11).des("optional");
    let e = eval_one(&retry_flow(p, "precondition", n), 60 * S);
    let r = rows(&e);
    assert_eq!(r[0].verdict, "OVER_RELAXED");
    assert!(has(r[0], "OVER_RELAXED(100rel)"), "{:?}", r[0].flags);
}

#[test]
fn h04_dependent_drop() {
    let p = inv("A", "1", 10)
        .h("Require: 100rel, precondition")
        .des("mandatory");
    let n = inv("A", "1", 11).h("Supported: 100rel");
    let e = eval_one(&retry_flow(p, "100rel", n), 60 * S);
    let r = rows(&e);
    assert_eq!(r[0].verdict, "COMPLIANT_RELAXATION", "{:?}", r[0].flags);
    assert!(has(r[0], "DESIRED_LISTED"));
    assert!(has(r[0], "DEPENDENT_DROP(precondition)"));
}

#[test]
fn h05_no_retry_and_truncated() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .des("mandatory");
    let msgs = vec![
        (0, p.clone()),
        (10 * MS, p.resp(420, "x").h("Unsupported: precondition")),
        (11 * MS, p.ack("x")),
    ];
    let e = eval_one(&msgs, 300 * S);
    assert_eq!(rows(&e)[0].verdict, "NO_RETRY");
    // Capture ends 1 s later, but the ACK shows the UAC was done.
    let e = eval_one(&msgs, S);
    assert_eq!(rows(&e)[0].verdict, "NO_RETRY");
    assert!(has(rows(&e)[0], "RETRY_WINDOW_CUT"));
    // H17 with file 1 alone: the 420 is the last packet.
    let e = eval_one(&msgs[..2], S);
    assert_eq!(rows(&e)[0].verdict, "TRUNCATED");
}

#[test]
fn h06_new_call_id() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .des("mandatory");
    let n = inv("B", "9", 1)
        .h("Supported: precondition")
        .des("optional");
    let e = eval_one(&retry_flow(p, "precondition", n), 60 * S);
    let r = rows(&e);
    assert_eq!(r[0].verdict, "RETRY_NEW_CALL_ID", "{:?}", r[0].flags);
    assert!(has(r[0], "NEW_CALL_ID(H2,0.8)"), "{:?}", r[0].flags);
}

#[test]
fn h07_extension_required_satisfied() {
    let p = inv("A", "1", 10).h("Supported: timer");
    let n = inv("A", "1", 11).h("Supported: 100rel");
    let msgs = vec![
        (0, p.clone()),
        (10 * MS, p.resp(421, "x").h("Require: 100rel")),
        (11 * MS, p.ack("x")),
        (300 * MS, n.clone()),
        (400 * MS, n.resp(183, "y").h("Require: 100rel").h("RSeq: 1")),
        (
            410 * MS,
            n.in_dialog("PRACK", 12, "y").h("RAck: 1 11 INVITE"),
        ),
        (420 * MS, n.in_dialog("PRACK", 12, "y").resp(200, "y")),
        (900 * MS, n.resp(200, "y")),
    ];
    let e = eval_one(&msgs, 60 * S);
    let r = rows(&e);
    assert_eq!(r[0].verdict, "EXTENSION_REQUIRED_SATISFIED");
    assert_eq!(e.verdict, "EXTENSION_REQUIRED_SATISFIED");
}

#[test]
fn h09_relaxation_without_refusal() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .des("mandatory");
    let n = inv("A", "1", 11);
    let msgs = vec![
        (0, p.clone()),
        (10 * MS, p.resp(580, "x")),
        (11 * MS, p.ack("x")),
        (300 * MS, n.clone()),
        (900 * MS, n.resp(200, "y")),
    ];
    let e = eval_one(&msgs, 60 * S);
    let r = rows(&e);
    assert_eq!(r[0].failure_class(), "PRECONDITION_NOT_MET");
    assert_eq!(r[0].verdict, "RELAXATION_WITHOUT_REFUSAL");
    // Without the retry: NOT_APPLICABLE, same class, still a row (C10 is a
    // capability failure).
    let e = eval_one(&msgs[..3], 60 * S);
    assert_eq!(rows(&e)[0].verdict, "NOT_APPLICABLE");
    assert_eq!(rows(&e)[0].failure_class(), "PRECONDITION_NOT_MET");
}

#[test]
fn h12_update_refused_mid_dialog() {
    let p = inv("A", "1", 10)
        .h("Supported: precondition, 100rel")
        .h("Allow: INVITE, ACK, BYE, CANCEL, PRACK, UPDATE")
        .des("mandatory");
    let up = p.in_dialog("UPDATE", 12, "y");
    let cancel = M {
        method: "CANCEL",
        ..p.clone()
    };
    let msgs = vec![
        (0, p.clone()),
        (
            100 * MS,
            p.resp(183, "y")
                .h("Require: 100rel")
                .h("RSeq: 1")
                .h("Allow: INVITE, ACK, BYE, CANCEL, PRACK")
                .des("mandatory"),
        ),
        (
            110 * MS,
            p.in_dialog("PRACK", 11, "y").h("RAck: 1 10 INVITE"),
        ),
        (120 * MS, p.in_dialog("PRACK", 11, "y").resp(200, "y")),
        (200 * MS, up.clone()),
        (
            210 * MS,
            up.resp(405, "y")
                .h("Allow: INVITE, ACK, BYE, CANCEL, PRACK"),
        ),
        (3 * S, cancel.clone()),
        (3 * S + MS, cancel.resp(200, "y")),
        (3 * S + 2 * MS, p.resp(487, "y")),
        (3 * S + 3 * MS, p.ack("y")),
    ];
    let s = sessions(&msgs, 60 * S);
    assert_eq!(s[0].outcome, crate::dialog::Outcome::Cancelled);
    let e = evaluate(&s[0], &Settings::default(), &|_| false);
    let r = rows(&e);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].failure_class(), "REMOTE_LACKS_UPDATE");
    assert_eq!(r[0].verdict, "NOT_APPLICABLE");
    assert!(has(r[0], "MID_DIALOG"));
    assert!(e.flags.iter().any(|f| f == "REMOTE_LACKS_UPDATE_PREDICTED"));
    assert_eq!(e.verdict, "NOT_APPLICABLE");
}

#[test]
fn h13_retransmissions_are_not_repeats() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .des("mandatory");
    let f = p.resp(420, "x").h("Unsupported: precondition");
    let n = inv("A", "1", 11)
        .h("Supported: precondition")
        .des("optional");
    let msgs = vec![
        (0, p.clone()),
        (500 * MS, p.clone()),
        (1500 * MS, p.clone()),
        (1600 * MS, f.clone()),
        (2100 * MS, f.clone()),
        (2101 * MS, p.ack("x")),
        (2400 * MS, n.clone()),
        (2900 * MS, n.resp(200, "y")),
    ];
    let e = eval_one(&msgs, 60 * S);
    assert_eq!(rows(&e).len(), 1);
    assert_eq!(rows(&e)[0].verdict, "COMPLIANT_RELAXATION");
}

#[test]
fn h14_cseq_not_incremented() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .des("mandatory");
    let mut n = inv("A", "1", 10)
        .h("Supported: precondition")
        .des("optional");
    n.branch = "z9hG4bKnew".into();
    let msgs = vec![
        (0, p.clone()),
        (10 * MS, p.resp(420, "x").h("Unsupported: precondition")),
        (11 * MS, p.ack("x")),
        (300 * MS, n.clone()),
        (310 * MS, n.resp(482, "z")),
    ];
    let e = eval_one(&msgs, 60 * S);
    let r = rows(&e);
    assert_eq!(r[0].verdict, "RETRY_INVALID_IDENTITY", "{:?}", r[0].flags);
    assert!(has(r[0], "CSEQ_NOT_INCREMENTED"));
}

#[test]
fn h15_security_downgrade() {
    let reg = |c| M {
        method: "REGISTER",
        ruri: "sip:ims.example",
        ..inv("R", "1", c)
    };
    let p = reg(1)
        .h("Require: sec-agree")
        .h("Proxy-Require: sec-agree")
        .h("Security-Client: ipsec-3gpp; alg=hmac-sha-1-96; spi-c=1; spi-s=2; port-c=1; port-s=2");
    let n = reg(2);
    // No ACK: REGISTER is not INVITE.
    let mut msgs = retry_flow(p, "sec-agree", n);
    msgs.retain(|(_, m)| m.method != "ACK");
    let e = eval_one(&msgs, 60 * S);
    let r = rows(&e);
    assert!(r[0].failure_class().contains("SEC_AGREE_UNSUPPORTED"));
    assert_eq!(r[0].verdict, "SECURITY_DOWNGRADE");
}

#[test]
fn h16_inferred_relaxation() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .des("mandatory");
    let n = inv("A", "1", 11)
        .h("Supported: precondition")
        .des("optional");
    let e = eval_one(&retry_flow(p, "", n), 60 * S);
    let r = rows(&e);
    assert_eq!(r[0].failure_class(), "MALFORMED_420");
    assert_eq!(r[0].verdict, "INFERRED_RELAXATION");
}

#[test]
fn h18_reinvite_mid_dialog() {
    let p = inv("A", "1", 10);
    let re1 = p
        .in_dialog("INVITE", 11, "y")
        .h("Require: precondition")
        .des("mandatory");
    let re2 = p
        .in_dialog("INVITE", 12, "y")
        .h("Supported: precondition")
        .des("optional");
    let msgs = vec![
        (0, p.clone()),
        (100 * MS, p.resp(200, "y")),
        (101 * MS, p.ack("y")),
        (S, re1.clone()),
        (
            S + 10 * MS,
            re1.resp(420, "y").h("Unsupported: precondition"),
        ),
        (S + 11 * MS, re1.ack("y")),
        (S + 300 * MS, re2.clone()),
        (S + 400 * MS, re2.resp(200, "y")),
    ];
    let e = eval_one(&msgs, 60 * S);
    let r = rows(&e);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].verdict, "COMPLIANT_RELAXATION", "{:?}", r[0].flags);
    assert!(has(r[0], "MID_DIALOG"));
    assert!(has(r[0], "DESIRED_LISTED"));
    assert!(
        e.flags
            .iter()
            .any(|f| f == "REQUIRE_PRECONDITION_IN_MODIFICATION")
    );
}

#[test]
fn severity_order_is_the_table() {
    use crate::rules::catalogue::Verdict;
    assert_eq!(Verdict::SecurityDowngrade.rank(), 0);
    assert!(Verdict::RetryLoop < Verdict::RepeatedWithoutRelaxation);
    assert_eq!(Verdict::NotApplicable.rank(), Verdict::ALL.len() - 1);
}

#[test]
fn c21_precondition_stall_then_cancel() {
    let p = inv("A", "1", 10)
        .h("Supported: precondition, 100rel")
        .des("mandatory");
    let cancel = M {
        method: "CANCEL",
        ..p.clone()
    };
    let msgs = vec![
        (0, p.clone()),
        (100 * MS, p.resp(183, "y").des("mandatory")),
        (25 * S, cancel.clone()),
        (25 * S + MS, cancel.resp(200, "y")),
        (25 * S + 2 * MS, p.resp(487, "y")),
        (25 * S + 3 * MS, p.ack("y")),
    ];
    let e = eval_one(&msgs, 90 * S);
    let r = rows(&e);
    assert_eq!(r.len(), 1, "C21 replaces C22 and is a capability failure");
    assert_eq!(r[0].failure_class(), "PRECONDITION_STALL");
    // The caller cancelled and nothing was retried: no retry is expected.
    assert_eq!(r[0].verdict, "NOT_APPLICABLE");
    // 10 s of silence is no stall.
    let mut quick = msgs.clone();
    for m in quick.iter_mut().skip(2) {
        m.0 -= 15 * S;
    }
    assert!(rows(&eval_one(&quick, 90 * S)).is_empty());
}

#[test]
fn a_capture_without_the_ua_copy_is_vantage_network() {
    let p = inv("A", "1", 10).h("Via: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKue");
    let msgs = vec![(0, p.clone()), (S, p.resp(200, "y"))];
    let s = sessions(&msgs, 5 * S);
    let e = evaluate(&s[0], &Settings::default(), &|_| false);
    assert!(
        e.flags.iter().any(|f| f == "VANTAGE_NETWORK"),
        "{:?}",
        e.flags
    );
}

#[test]
fn d4_a_retry_sent_long_before_the_failure_is_premature() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .des("mandatory");
    let n = inv("A", "1", 11)
        .h("Supported: precondition")
        .des("optional");
    let msgs = vec![
        (0, p.clone()),
        // N leaves 400 ms before the 420 arrives: not linked.
        (100 * MS, n.clone()),
        (500 * MS, p.resp(420, "x").h("Unsupported: precondition")),
        (501 * MS, p.ack("x")),
        (900 * MS, n.resp(200, "y")),
    ];
    let s = sessions(&msgs, 60 * S);
    assert_eq!(s.len(), 2, "no link");
    let e = evaluate(&s[0], &Settings::default(), &|_| false);
    let r = rows(&e);
    assert!(has(r[0], "PREMATURE_RETRY"), "{:?}", r[0].flags);
    assert_eq!(r[0].verdict, "NO_RETRY");
}

#[test]
fn the_responder_is_the_first_hop_when_f_is_seen_at_two() {
    let p = inv("A", "1", 10).h("Require: precondition");
    let f = p
        .resp(420, "x")
        .h("Unsupported: precondition")
        .h("Server: far-end/1.0");
    let msgs = vec![(0, p.clone()), (10 * MS, f.clone()), (11 * MS, f.clone())];
    // Same source twice: one hop, attribution by Server.
    let s = sessions(&msgs, 60 * S);
    let e = evaluate(&s[0], &Settings::default(), &|_| false);
    assert_eq!(rows(&e)[0].responder, "far-end/1.0");
}

#[test]
fn g19_a_late_retry_is_a_candidate_never_a_link() {
    let p = inv("A", "1", 10)
        .h("Require: precondition")
        .des("mandatory");
    // New Call-ID, same From tag (H1), 15 s after the 420: beyond W1.
    let n = inv("B", "1", 1)
        .h("Supported: precondition")
        .des("optional");
    let msgs = vec![
        (0, p.clone()),
        (10 * MS, p.resp(420, "x").h("Unsupported: precondition")),
        (11 * MS, p.ack("x")),
        (15 * S, n.clone()),
        (15 * S + 500 * MS, n.resp(200, "y")),
    ];
    let s = sessions(&msgs, 90 * S);
    assert_eq!(s.len(), 2);
    let e = evaluate(&s[0], &Settings::default(), &|_| false);
    let r = rows(&e);
    assert!(has(r[0], "CANDIDATE_LATE_RETRY"), "{:?}", r[0].flags);
    assert_eq!(r[0].verdict, "NO_RETRY");
}

#[test]
fn a_b2bua_leg_that_dropped_precondition_is_network_interworked() {
    let sid = "Session-ID: ab30317f1a784dc48ff824d0d3715d86";
    let a = inv("A", "1", 10)
        .h("Require: precondition")
        .h(sid)
        .des("mandatory");
    // The IBCF's leg toward the Internet peer: new Call-ID, no Require.
    let b = inv("B", "9", 1).h(sid);
    let msgs = vec![
        (0, a.clone()),
        (50 * MS, b.clone()),
        (S, b.resp(200, "z")),
        (S + 10 * MS, a.resp(200, "y")),
    ];
    let s = sessions(&msgs, 60 * S);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].related, [s[1].id]);
    let ea = evaluate(&s[0], &Settings::default(), &|_| false);
    let eb = evaluate(&s[1], &Settings::default(), &|_| false);
    assert_eq!(ea.verdict, "NETWORK_INTERWORKED");
    assert!(rows(&ea).is_empty(), "no failure row");
    assert_eq!(eb.verdict, "NOT_APPLICABLE");
}

/// `fmt_conf` writes what trimming `format!("{:.2}")` writes, ties and the
/// values around them included.
#[test]
fn confidences_are_written_as_the_formatter_rounds_them() {
    let old = |c: f32| {
        let s = format!("{:.2}", c);
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let mut values: Vec<f32> = (0..=20_000).map(|i| i as f32 / 2000.0).collect();
    values.extend((0..=1000).map(|i| i as f32 * 0.005));
    values.extend([
        0.125, 0.375, 0.625, 0.875, 0.85, 0.9, 0.8, 1.0, 0.0, -0.0, 9.995, 12.5,
    ]);
    values.extend([
        -0.5,
        f32::NAN,
        f32::INFINITY,
        f32::MIN_POSITIVE,
        0.004_999_999,
    ]);
    let mut x = 0x1234_5678u32;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        values.push(f32::from_bits(x % 0x4120_0000));
    }
    for c in values {
        assert_eq!(fmt_conf(c), old(c), "{c:?}");
    }
}
