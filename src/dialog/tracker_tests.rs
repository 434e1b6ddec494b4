//! Tests of the session tracker on hand-built message sequences, one per
//! rules.md §A situation.

use super::record::{Capture, SipRecord};
use super::tracker::*;
use crate::sip::{Framing, parse_message};

const S: i64 = 1_000_000_000;
/// A Supported header: the capability change that makes a new Call-ID a
/// retry of a capability failure.
const SUP: &str = "Supported: precondition\r\n";
const MS: i64 = 1_000_000;

/// A message under construction.
#[derive(Clone)]
struct M {
    start: String,
    call: String,
    from: String,
    ftag: String,
    to: String,
    ttag: Option<String>,
    cseq: u32,
    method: String,
    branch: String,
    extra: String,
    body: String,
}

fn invite(call: &str, ftag: &str, cseq: u32, branch: &str) -> M {
    M {
        start: "INVITE sip:bob@example.net SIP/2.0".into(),
        call: call.into(),
        from: "sip:alice@example.org".into(),
        ftag: ftag.into(),
        to: "sip:bob@example.net".into(),
        ttag: None,
        cseq,
        method: "INVITE".into(),
        branch: branch.into(),
        extra: String::new(),
        body: String::new(),
    }
}

impl M {
    fn resp(&self, code: u16, ttag: Option<&str>) -> M {
        M {
            start: format!("SIP/2.0 {code} X"),
            ttag: ttag.map(Into::into),
            ..self.clone()
        }
    }
    fn req(&self, method: &str, cseq: u32, branch: &str) -> M {
        M {
            start: format!("{method} sip:bob@example.net SIP/2.0"),
            method: method.into(),
            cseq,
            branch: branch.into(),
            ..self.clone()
        }
    }
    fn with(mut self, f: impl FnOnce(&mut M)) -> M {
        f(&mut self);
        self
    }
    fn text(&self) -> String {
        let to_tag = self
            .ttag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        format!(
            "{}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={}\r\nFrom: <{}>;tag={}\r\nTo: <{}>{}\r\n\
Call-ID: {}\r\nCSeq: {} {}\r\n{}Content-Length: {}\r\n\r\n{}",
            self.start,
            self.branch,
            self.from,
            self.ftag,
            self.to,
            to_tag,
            self.call,
            self.cseq,
            self.method,
            self.extra,
            self.body.len(),
            self.body
        )
    }
}

/// Feeds `(time, message)` pairs in order; returns the finished sessions
/// (sorted by id), each message's session, and the anomalies.
fn run(msgs: &[(i64, M)], end: i64) -> (Vec<SessionSummary>, Vec<Option<u64>>, Vec<TrackAnomaly>) {
    let mut t: Tracker<usize> = Tracker::default();
    let (sessions, got) = feed(&mut t, msgs, end, |_, _| {});
    (sessions, got, t.take_anomalies())
}

/// Feeds `msgs` to `t`, calling `after(t, time)` after each message, and
/// ends at `end`: the finished sessions (sorted by id) and each message's
/// session.
fn feed(
    t: &mut Tracker<usize>,
    msgs: &[(i64, M)],
    end: i64,
    mut after: impl FnMut(&mut Tracker<usize>, i64),
) -> (Vec<SessionSummary>, Vec<Option<u64>>) {
    let mut got = vec![None; msgs.len()];
    let mut sessions = Vec::new();
    for (i, (ts, m)) in msgs.iter().enumerate() {
        let (src, dst) = (
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.0.2:5060".parse().unwrap(),
        );
        let rec = SipRecord::from_text(&m.text(), i as u64 + 1, *ts, src, dst);
        t.push(rec, i, |_, _| {});
        t.drain(|i, s| got[i] = s);
        after(t, *ts);
        sessions.extend(t.take_finished());
    }
    t.finish(end);
    t.drain(|i, s| got[i] = s);
    sessions.extend(t.take_finished());
    assert_eq!(t.live_counts(), (0, 0, 0), "all state dropped at the end");
    sessions.sort_by_key(|s| s.id);
    (sessions, got)
}

fn call(inv: &M, t0: i64, tag: &str) -> Vec<(i64, M)> {
    vec![
        (t0, inv.clone()),
        (t0 + MS, inv.resp(100, None)),
        (t0 + 10 * MS, inv.resp(180, Some(tag))),
        (t0 + S, inv.resp(200, Some(tag))),
        (
            t0 + S + MS,
            inv.req("ACK", inv.cseq, "z9hG4bKack")
                .with(|m| m.ttag = Some(tag.into())),
        ),
        (
            t0 + 2 * S,
            inv.req("BYE", inv.cseq + 1, "z9hG4bKbye")
                .with(|m| m.ttag = Some(tag.into())),
        ),
        (
            t0 + 2 * S + MS,
            inv.req("BYE", inv.cseq + 1, "z9hG4bKbye")
                .with(|m| m.ttag = Some(tag.into()))
                .resp(200, Some(tag)),
        ),
    ]
}

#[test]
fn plain_call_is_one_established_session() {
    let msgs = call(&invite("c1", "f1", 1, "z9hG4bK1"), 0, "t1");
    let (s, got, an) = run(&msgs, 3 * S);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].outcome, Outcome::Established);
    assert_eq!(s[0].final_status, Some(200));
    assert_eq!(s[0].attempts.len(), 1);
    assert!(got.iter().all(|g| *g == Some(s[0].id)), "{got:?}");
    assert!(an.is_empty());
}

fn failed_then(retry: M, gap: i64) -> Vec<(i64, M)> {
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let mut v = vec![
        (0, p.clone()),
        (MS, p.resp(420, Some("x"))),
        (
            2 * MS,
            p.req("ACK", 1, "z9hG4bK1")
                .with(|m| m.ttag = Some("x".into())),
        ),
    ];
    v.extend(call(&retry, MS + gap, "t2"));
    v
}

fn one_link(s: &[SessionSummary]) -> &Link {
    assert_eq!(s.len(), 1, "one session: {s:#?}");
    assert_eq!(s[0].attempts.len(), 2);
    assert_eq!(s[0].links.len(), 1);
    &s[0].links[0]
}

#[test]
fn h0_retry_same_call_id_and_tag() {
    let (s, got, _) = run(
        &failed_then(invite("c1", "f1", 2, "z9hG4bK2"), 300 * MS),
        60 * S,
    );
    let l = one_link(&s);
    assert_eq!((l.rule, l.confidence, l.from, l.to), (Rule::H0, 1.0, 0, 1));
    assert_eq!(l.max_uac_cseq, Some(1));
    assert!(got.iter().all(|g| *g == Some(s[0].id)));
    assert_eq!(s[0].outcome, Outcome::Established);
    assert_eq!(s[0].call_ids.len(), 1);
}

#[test]
fn h0_prime_h1_h2_h3_and_as_leg() {
    // A new Call-ID needs evidence of a retry: after the 420, a changed
    // capability demand.
    let relaxed = |m: &mut M| m.extra = SUP.into();
    let cases: Vec<(M, Rule, f32)> = vec![
        (invite("c1", "f9", 2, "z9hG4bK2"), Rule::H0Prime, 0.9),
        (
            invite("c2", "f1", 1, "z9hG4bK2").with(relaxed),
            Rule::H1,
            0.85,
        ),
        (
            invite("c2", "f9", 1, "z9hG4bK2").with(relaxed),
            Rule::H2,
            0.7,
        ),
        (
            invite("c2", "f9", 1, "z9hG4bK2")
                .with(|m| m.extra = format!("Subject: other\r\n{SUP}")),
            Rule::H3,
            0.5,
        ),
    ];
    for (n, rule, conf) in cases {
        let (s, _, _) = run(&failed_then(n, S), 60 * S);
        let l = one_link(&s);
        assert_eq!((l.rule, l.confidence), (rule, conf));
        assert_eq!(
            s[0].call_ids.len(),
            if rule == Rule::H0Prime { 1 } else { 2 }
        );
    }
    // E.164: tel: and a national-form SIP user name the same subscriber.
    let p = invite("c1", "f1", 1, "z9hG4bK1").with(|m| {
        m.from = "tel:+491701234567".into();
        m.start = "INVITE sip:+4930123456@example.net;user=phone SIP/2.0".into();
    });
    let n = invite("c2", "f9", 1, "z9hG4bK2").with(|m| {
        m.from = "sip:01701234567@ims.example;user=phone".into();
        m.start = "INVITE sip:030123456@example.net;user=phone SIP/2.0".into();
        m.extra = format!("Subject: x\r\n{SUP}");
    });
    let mut msgs = vec![(0, p.clone()), (MS, p.resp(420, Some("x")))];
    msgs.extend(call(&n, S, "t2"));
    let (s, _, _) = run(&msgs, 60 * S);
    assert_eq!(one_link(&s).rule, Rule::H3);
    // A B2BUA leg: another caller identity, the same Session-ID.
    let sid = "Session-ID: ab30317f1a784dc48ff824d0d3715d86\r\n";
    let p = invite("c1", "f1", 1, "z9hG4bK1").with(|m| m.extra = sid.into());
    let n = invite("c2", "f9", 1, "z9hG4bK2").with(|m| {
        m.extra = sid.into();
        m.from = "sip:ibcf@border.example".into();
    });
    let mut msgs = vec![(0, p.clone()), (MS, p.resp(420, Some("x")))];
    msgs.extend(call(&n, S, "t2"));
    let (s, _, _) = run(&msgs, 60 * S);
    let l = one_link(&s);
    assert_eq!((l.rule, l.confidence), (Rule::AsLeg, 0.9));
}

#[test]
fn windows_and_vetoes_keep_unrelated_calls_apart() {
    // H0 beyond W0 (32 s): a new session.
    let (s, _, _) = run(
        &failed_then(invite("c1", "f1", 2, "z9hG4bK2"), 40 * S),
        90 * S,
    );
    assert_eq!(s.len(), 2);
    // H1 beyond W1 (10 s).
    let (s, _, _) = run(
        &failed_then(
            invite("c2", "f1", 1, "z9hG4bK2").with(|m| m.extra = SUP.into()),
            12 * S,
        ),
        90 * S,
    );
    assert_eq!(s.len(), 2);
    // The Request-URI user part differs: vetoed...
    let other = |m: &mut M| m.start = "INVITE sip:carol@example.net SIP/2.0".into();
    let (s, _, _) = run(
        &failed_then(invite("c1", "f1", 2, "z9hG4bK2").with(other), S),
        60 * S,
    );
    assert_eq!(s.len(), 2);
    // ...except after a 3xx, whose retry targets its Contact.
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let mut msgs = vec![(0, p.clone()), (MS, p.resp(302, Some("x")))];
    msgs.extend(call(
        &invite("c1", "f1", 2, "z9hG4bK2").with(other),
        S,
        "t2",
    ));
    let (s, _, _) = run(&msgs, 60 * S);
    assert_eq!(one_link(&s).rule, Rule::H0);
    // A different method is never a retry.
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let mut msgs = vec![(0, p.clone()), (MS, p.resp(420, Some("x")))];
    let m = invite("c1", "f1", 2, "z9hG4bK2").with(|m| {
        m.method = "MESSAGE".into();
        m.start = "MESSAGE sip:bob@example.net SIP/2.0".into();
    });
    msgs.push((S, m.clone()));
    msgs.push((S + MS, m.resp(200, Some("t"))));
    let (s, _, _) = run(&msgs, 60 * S);
    assert_eq!(s.len(), 2);
}

#[test]
fn several_candidates_take_the_best() {
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let h3 = invite("c2", "f8", 1, "z9hG4bK2").with(|m| m.extra = format!("Subject: a\r\n{SUP}"));
    let h2 = invite("c3", "f9", 1, "z9hG4bK3").with(|m| m.extra = SUP.into());
    let mut msgs = vec![(0, p.clone()), (MS, p.resp(420, Some("x")))];
    msgs.push((S, h3.clone()));
    msgs.push((S + MS, h3.resp(486, Some("y"))));
    msgs.extend(call(&h2, 2 * S, "t2"));
    let (s, got, _) = run(&msgs, 90 * S);
    // P links the H2 candidate (higher confidence, though later); the H3
    // candidate keeps a session of its own. 0.7 against 0.5 is no
    // ambiguity (rules.md §J: the runner-up is not within 0.1).
    assert_eq!(s.len(), 2);
    let linked = s.iter().find(|x| x.attempts.len() == 2).unwrap();
    assert_eq!(linked.links[0].rule, Rule::H2);
    assert!(!linked.links[0].ambiguous);
    assert!(!linked.flags.contains(&Mark::AmbiguousLink));
    assert_ne!(got[2], got[0]);
    assert_eq!(got[4], got[0]);
}

/// Issue 12 item 10: AMBIGUOUS_LINK only when another eligible candidate's
/// confidence is within 0.1 of the chosen one's.
#[test]
fn ambiguous_link_only_when_the_runner_up_is_within_0_1() {
    let p =
        invite("c1", "f1", 1, "z9hG4bK1").with(|m| m.extra = "Require: precondition\r\n".into());
    let failed = vec![(0, p.clone()), (MS, p.resp(420, Some("x")))];
    let linked = |s: &[SessionSummary]| s.iter().find(|x| x.attempts.len() == 2).unwrap().clone();
    // An H0 retry (1.0) chosen over a weaker H3 request (0.5) of another
    // call: not ambiguous.
    let h3 = invite("c2", "f8", 1, "z9hG4bK2").with(|m| m.extra = "Subject: a\r\n".into());
    let mut msgs = failed.clone();
    msgs.push((S, h3.clone()));
    msgs.push((S + MS, h3.resp(486, Some("y"))));
    msgs.extend(call(&invite("c1", "f1", 2, "z9hG4bK3"), 2 * S, "t2"));
    let (s, _, _) = run(&msgs, 90 * S);
    let l = linked(&s);
    assert_eq!((l.links[0].rule, l.links[0].ambiguous), (Rule::H0, false));
    assert!(!l.flags.contains(&Mark::AmbiguousLink), "{:?}", l.flags);
    // H0' (0.9) chosen over an H1 request (0.85): ambiguous.
    let h0p = invite("c1", "f2", 2, "z9hG4bK4");
    let h1 = invite("c3", "f1", 1, "z9hG4bK5");
    let mut msgs = failed;
    msgs.extend(call(&h0p, S, "t3"));
    msgs.extend(call(&h1, 4 * S, "t4"));
    let (s, _, _) = run(&msgs, 90 * S);
    let l = linked(&s);
    assert_eq!(
        (l.links[0].rule, l.links[0].ambiguous),
        (Rule::H0Prime, true)
    );
    assert!(l.flags.contains(&Mark::AmbiguousLink));
}

#[test]
fn retransmissions_make_no_attempt_and_no_link() {
    // rules.md H13: INVITE x3, 420 x2, one ACK, then the relaxed INVITE.
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let f = p.resp(420, Some("x"));
    let mut msgs = vec![
        (0, p.clone()),
        (500 * MS, p.clone()),
        (1500 * MS, p.clone()),
        (1600 * MS, f.clone()),
        (2100 * MS, f.clone()),
        (
            2200 * MS,
            p.req("ACK", 1, "z9hG4bK1")
                .with(|m| m.ttag = Some("x".into())),
        ),
    ];
    msgs.extend(call(&invite("c1", "f1", 2, "z9hG4bK2"), 2500 * MS, "t2"));
    let mut t: Tracker<()> = Tracker::default();
    let mut repeats = Vec::new();
    for (i, (ts, m)) in msgs.iter().enumerate() {
        let text = m.text();
        let msg = parse_message(text.as_bytes(), Framing::Datagram).unwrap();
        let at = Capture {
            file: 0,
            frame: i as u64 + 1,
            seq: 0,
            ts_ns: *ts,
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "10.0.0.2:5060".parse().unwrap(),
        };
        repeats.push(t.push(SipRecord::new(&msg, at), (), |_, _| {}));
    }
    assert_eq!(&repeats[..6], &[false, true, true, false, true, false]);
    let (s, _, _) = run(&msgs, 60 * S);
    let l = one_link(&s);
    assert_eq!((l.rule, l.from, l.to), (Rule::H0, 0, 1));
}

#[test]
fn forked_early_dialogs_and_several_answers() {
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let msgs = vec![
        (0, p.clone()),
        (MS, p.resp(180, Some("a"))),
        (2 * MS, p.resp(180, Some("b"))),
        (S, p.resp(200, Some("b"))),
    ];
    let (s, got, _) = run(&msgs, 3 * S);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].attempts[0].early_tags.len(), 2);
    assert_eq!(s[0].attempts[0].confirmed_tags.len(), 1);
    assert!(!s[0].flags.contains(&Mark::ForkedMultiAnswer));
    assert!(got.iter().all(|g| g.is_some()));
    let mut two = msgs.clone();
    two.push((S + MS, p.resp(200, Some("a"))));
    let (s, _, _) = run(&two, 3 * S);
    assert!(s[0].flags.contains(&Mark::ForkedMultiAnswer));
    assert_eq!(s[0].outcome, Outcome::Established);
}

#[test]
fn cancel_and_timeouts() {
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let cancel = p.req("CANCEL", 1, "z9hG4bK1");
    let msgs = vec![
        (0, p.clone()),
        (10 * MS, cancel.clone()),
        (11 * MS, cancel.resp(200, Some("x"))),
        (12 * MS, p.resp(487, Some("x"))),
    ];
    let (s, _, _) = run(&msgs, 5 * S);
    assert_eq!(s[0].outcome, Outcome::Cancelled);
    assert!(s[0].flags.contains(&Mark::CancelBefore1xx));
    // No final response: TIMEOUT when the capture runs past Timer B...
    let (s, _, _) = run(&[(0, p.clone())], 40 * S);
    assert_eq!(s[0].outcome, Outcome::Timeout);
    // ...TRUNCATED when it ends before.
    let (s, _, _) = run(&[(0, p.clone())], 5 * S);
    assert_eq!(s[0].outcome, Outcome::Truncated);
    let (s, _, _) = run(&[(0, p.clone()), (S, p.resp(408, Some("x")))], 5 * S);
    assert_eq!(s[0].outcome, Outcome::Timeout);
}

#[test]
fn mid_dialog_without_start_is_one_truncated_session() {
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let bye = p
        .req("BYE", 5, "z9hG4bKb")
        .with(|m| m.ttag = Some("x".into()));
    let msgs = vec![(0, bye.clone()), (MS, bye.resp(200, Some("x")))];
    let (s, got, _) = run(&msgs, 5 * S);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].outcome, Outcome::Truncated);
    assert!(s[0].flags.contains(&Mark::MidDialog));
    assert_eq!(got, vec![Some(s[0].id); 2]);
}

#[test]
fn response_before_its_request_within_skew_is_repaired() {
    let p = invite("c1", "f1", 1, "z9hG4bK1");
    let msgs = vec![
        (0, p.resp(100, None)),
        (30 * MS, p.clone()),
        (S, p.resp(200, Some("t"))),
    ];
    let (s, got, an) = run(&msgs, 5 * S);
    assert_eq!(s.len(), 1);
    assert_eq!(got, vec![Some(s[0].id); 3]);
    assert_eq!(an.len(), 1);
    assert_eq!((an[0].kind, an[0].frame), ("clock_skew", 1));
    // Beyond the tolerance: an orphan, in no session.
    let msgs = vec![(0, p.resp(100, None)), (80 * MS, p.clone())];
    let (_, got, an) = run(&msgs, 5 * S);
    assert_eq!(got[0], None);
    assert_eq!(an[0].kind, "orphan_response");
}

/// Pushes `m`, captured at `ts` from 10.0.0.1 to 10.0.0.2, into `t`.
fn push_at(t: &mut Tracker<()>, ts: i64, m: &M) {
    let text = m.text();
    let msg = parse_message(text.as_bytes(), Framing::Datagram).unwrap();
    let at = Capture {
        file: 0,
        frame: 1,
        seq: 0,
        ts_ns: ts,
        src: "10.0.0.1:5060".parse().unwrap(),
        dst: "10.0.0.2:5060".parse().unwrap(),
    };
    t.push(SipRecord::new(&msg, at), (), |_, _| {});
}

#[test]
fn finished_sessions_are_dropped_as_capture_time_passes() {
    let mut t: Tracker<()> = Tracker::default();
    let mut peak = (0, 0, 0);
    let mut finished = 0;
    for c in 0..3000i64 {
        let inv = invite(&format!("c{c}"), "f", 1, &format!("z9hG4bK{c}"));
        for (ts, m) in call(&inv, c * S / 10, "t") {
            push_at(&mut t, ts, &m);
        }
        t.drain(|_, _| {});
        finished += t.take_finished().len();
        let c = t.live_counts();
        peak = (peak.0.max(c.0), peak.1.max(c.1), peak.2.max(c.2));
    }
    // 10 calls/s, each lasting 2 s and idle for 32 s before it is finalised:
    // a few hundred in flight, whatever the number of calls.
    assert!(finished > 2500, "{finished}");
    assert!(peak.0 < 400 && peak.1 < 400 && peak.2 < 3000, "{peak:?}");
}

/// The most CSeq high-water marks `Tracker` held while `calls` calls of a
/// minute arrived at 100 calls/s.
fn peak_cseq_marks(calls: i64) -> usize {
    let mut msgs = Vec::new();
    for c in 0..calls {
        let inv = invite(&format!("c{c}"), "f", 1, &format!("z9hG4bK{c}"));
        let mut one = call(&inv, c * S / 100, "t");
        // The BYE and its 200 a minute later: 6,000 calls in flight.
        for m in &mut one[5..] {
            m.0 += 58 * S;
        }
        msgs.extend(one);
    }
    msgs.sort_by_key(|m| m.0);
    let mut t: Tracker<()> = Tracker::default();
    let mut peak = 0;
    for (ts, m) in msgs {
        push_at(&mut t, ts, &m);
        t.drain(|_, _| {});
        t.take_finished();
        peak = peak.max(t.cseq_marks());
    }
    peak
}

#[test]
fn the_cseq_marks_are_bounded_by_the_window_not_the_capture() {
    // 100 calls/s of a minute each: a call's mark is live from its INVITE
    // until 64 s (W0 and the retransmission window) after its BYE, so about
    // 12,400 are live at once. The map is pruned when it has doubled since
    // the last pruning: within twice that, for 3 minutes or 12. (Pruning at
    // four times the open attempts, as before, let it reach 25,601.)
    let (short, long) = (peak_cseq_marks(18_000), peak_cseq_marks(72_000));
    eprintln!("peak CSeq marks: {short} over 3 minutes, {long} over 12");
    assert!(short <= 2 * 12_500, "{short}");
    assert!(long <= 2 * 12_500, "{long}");
}

#[test]
fn years_between_rotated_files_cost_no_work() {
    // Failed calls whose retry windows are open when the capture jumps ten
    // years ahead (files from different probes): timers fire once each,
    // nothing polls through the gap.
    let mut msgs = Vec::new();
    for c in 0..50i64 {
        let p = invite(
            &format!("c{c}"),
            &format!("f{c}"),
            1,
            &format!("z9hG4bK{c}"),
        );
        msgs.push((c * 100 * MS, p.clone()));
        msgs.push((c * 100 * MS + MS, p.resp(403, Some("x"))));
    }
    let later = 10 * 365 * 86_400 * S;
    msgs.extend(call(&invite("d", "g", 1, "z9hG4bKd"), later, "t"));
    let start = std::time::Instant::now();
    let (s, _, _) = run(&msgs, later + 10 * S);
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
    // Identical failed calls 100 ms apart (a load test): no call changes
    // anything, so none is evidence of a retry of another (issue 12 item
    // 5): 50 sessions, plus the call ten years later.
    assert_eq!(s.len(), 51);
    assert!(s.iter().all(|x| x.attempts.len() == 1));
}

#[test]
fn the_same_request_at_two_proxy_hops_is_one_attempt() {
    // The P-CSCF forwards the INVITE with its own Via on top (rules.md §A.1,
    // §A.6): same bottom (UAC) branch, another top branch. The 180 and 200
    // are captured on both hops too.
    let ue = invite("c1", "f1", 1, "z9hG4bKue");
    let hop = |m: &M| {
        m.clone().with(|m| {
            m.extra = "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKue\r\n".into();
            m.branch = "z9hG4bKpcscf".into();
        })
    };
    // The forwarded copy carries one Require tag fewer (a proxy rewrite):
    // the UA's own copy (one Via) is the one kept.
    let ue = ue.with(|m| m.extra = "Require: sec-agree\r\n".into());
    let fwd = hop(&invite("c1", "f1", 1, "z9hG4bKue"));
    let msgs = vec![
        (0, fwd.clone()),
        (MS, ue.clone()),
        (10 * MS, fwd.resp(180, Some("t"))),
        (11 * MS, ue.resp(180, Some("t"))),
        (S, fwd.resp(200, Some("t"))),
        (S + MS, ue.resp(200, Some("t"))),
    ];
    let (s, got, an) = run(&msgs, 5 * S);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].attempts.len(), 1);
    let req = &s[0].attempts[0].request;
    assert_eq!(req.via_count, 1, "the UA's own copy");
    assert_eq!(req.require().iter().next(), Some("sec-agree"));
    assert_eq!(
        (req.at.frame, req.at.ts_ns),
        (1, 0),
        "first captured copy's place"
    );
    assert!(s[0].flags.contains(&Mark::ProxyRewrite), "{:?}", s[0].flags);
    assert!(got.iter().all(|g| *g == Some(s[0].id)));
    assert!(an.is_empty(), "{an:?}");
}

#[test]
fn a_branch_refusal_then_another_branch_answering_is_no_failure() {
    // rules.md H08: captured at the forking S-CSCF.
    let ue = invite("c1", "f1", 1, "z9hG4bKue");
    let b1 = ue.clone().with(|m| {
        m.extra = "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKue\r\n".into();
        m.branch = "z9hG4bKb1".into();
    });
    let b2 = ue.clone().with(|m| {
        m.extra = "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKue\r\n".into();
        m.branch = "z9hG4bKb2".into();
    });
    let msgs = vec![
        (0, ue.clone()),
        (MS, b1.clone()),
        (2 * MS, b2.clone()),
        (10 * MS, b1.resp(420, Some("x"))),
        (S, b2.resp(200, Some("y"))),
        (S + MS, ue.resp(200, Some("y"))),
    ];
    let (s, _, _) = run(&msgs, 5 * S);
    assert_eq!(s.len(), 1);
    assert!(
        s[0].flags.contains(&Mark::ForkMixedCapability),
        "{:?}",
        s[0].flags
    );
    assert_eq!(s[0].outcome, Outcome::Established);
    assert_eq!(s[0].attempts[0].final_status(), Some(200));
}

#[test]
fn the_retry_window_follows_the_policy() {
    // An H0 retry 40 s after the failure: beyond the default W0 (32 s),
    // within a policy's window_s = 60.
    let msgs = failed_then(invite("c1", "f1", 2, "z9hG4bK2"), 40 * S);
    let (s, _, _) = run(&msgs, 120 * S);
    assert_eq!(s.len(), 2);
    let mut t: Tracker<()> = Tracker::with_window(60 * S);
    for (i, (ts, m)) in msgs.iter().enumerate() {
        let text = m.text();
        let msg = parse_message(text.as_bytes(), Framing::Datagram).unwrap();
        let at = Capture {
            file: 0,
            frame: i as u64 + 1,
            seq: 0,
            ts_ns: *ts,
            src: "10.0.0.1:5060".parse().unwrap(),
            dst: "10.0.0.2:5060".parse().unwrap(),
        };
        t.push(SipRecord::new(&msg, at), (), |_, _| {});
    }
    t.finish(120 * S);
    let s = t.take_finished();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].links[0].rule, Rule::H0);
}

/// issue 12 item 7: a far end that names one unsupported tag per 420 and
/// answers within a millisecond. Every request of the stepwise chain falls
/// within skew_tol of the second 420; its retry is the later INVITE, never
/// the earlier one.
#[test]
fn stepwise_relaxation_against_a_fast_far_end_is_one_chain() {
    let i1 = invite("c1", "f1", 10, "z9hG4bK1");
    let i2 = invite("c1", "f1", 11, "z9hG4bK2");
    let i3 = invite("c1", "f1", 12, "z9hG4bK3");
    let ack =
        |m: &M, tag: &str, b: &str| m.req("ACK", m.cseq, b).with(|a| a.ttag = Some(tag.into()));
    let us = 1_000;
    let mut msgs = vec![
        (0, i1.clone()),
        (300 * us, i1.resp(420, Some("p1"))),
        (600 * us, ack(&i1, "p1", "z9hG4bK1")),
        (900 * us, i2.clone()),
        (1_200 * us, i2.resp(420, Some("p2"))),
        (1_500 * us, ack(&i2, "p2", "z9hG4bK2")),
    ];
    msgs.extend(call(&i3, 1_800 * us, "p3"));
    let (s, got, _) = run(&msgs, 60 * S);
    assert_eq!(s.len(), 1, "one session: {s:#?}");
    assert_eq!(s[0].attempts.len(), 3);
    let links: Vec<(usize, usize, Rule)> =
        s[0].links.iter().map(|l| (l.from, l.to, l.rule)).collect();
    assert_eq!(links, vec![(0, 1, Rule::H0), (1, 2, Rule::H0)]);
    assert_eq!(s[0].outcome, Outcome::Established);
    assert!(got.iter().all(|g| *g == Some(s[0].id)));
}

/// A chain longer than `finish::SCAN_ATTEMPTS` (16): its links are found
/// through the session's map of positions instead of the scan of short
/// chains, and are the same links.
#[test]
fn a_long_stepwise_chain_keeps_every_link() {
    let us = 1_000;
    let mut msgs = Vec::new();
    let n = 20u32;
    for k in 0..n {
        let b = format!("z9hG4bK{k}");
        let i = invite("c1", "f1", 10 + k, &b);
        let t = i64::from(k) * 900 * us;
        let tag = format!("p{k}");
        msgs.push((t, i.clone()));
        msgs.push((t + 300 * us, i.resp(420, Some(&tag))));
        msgs.push((
            t + 600 * us,
            i.req("ACK", i.cseq, &b)
                .with(|a| a.ttag = Some(tag.clone())),
        ));
    }
    let last = invite("c1", "f1", 10 + n, "z9hG4bKlast");
    msgs.extend(call(&last, i64::from(n) * 900 * us, "done"));
    let (s, _, _) = run(&msgs, 60 * S);
    assert_eq!(s.len(), 1, "one session: {s:#?}");
    assert_eq!(s[0].attempts.len(), n as usize + 1);
    let links: Vec<(usize, usize, Rule)> =
        s[0].links.iter().map(|l| (l.from, l.to, l.rule)).collect();
    let want: Vec<(usize, usize, Rule)> = (0..n as usize).map(|i| (i, i + 1, Rule::H0)).collect();
    assert_eq!(links, want);
    assert_eq!(s[0].outcome, Outcome::Established);
}

/// issue 11 item 1: candidates by key. A request with many open failure
/// windows between the same identities scores a bounded number of them
/// (the most recent of each evidence group), never all.
#[test]
fn a_request_with_many_open_windows_does_bounded_candidate_work() {
    let mut t: Tracker<()> = Tracker::default();
    let (src, dst) = (
        "10.0.0.1:5060".parse().unwrap(),
        "10.0.0.2:5060".parse().unwrap(),
    );
    let mut frame = 0u64;
    let mut feed = |t: &mut Tracker<()>, ts: i64, m: &M| {
        frame += 1;
        t.push(
            SipRecord::from_text(&m.text(), frame, ts, src, dst),
            (),
            |_, _| {},
        );
    };
    let open = 1_000i64;
    for c in 0..open {
        let p = invite(
            &format!("c{c}"),
            &format!("f{c}"),
            1,
            &format!("z9hG4bK{c}"),
        )
        .with(|m| m.extra = "Require: precondition\r\n".into());
        feed(&mut t, c * MS, &p);
        feed(&mut t, c * MS + MS / 2, &p.resp(420, Some("x")));
    }
    // The same demand again: no evidence of a retry, no candidate at all.
    let before = t.link_work();
    let same =
        invite("n1", "g1", 1, "z9hG4bKn1").with(|m| m.extra = "Require: precondition\r\n".into());
    feed(&mut t, open * MS + MS, &same);
    assert_eq!(t.link_work() - before, 0);
    // A relaxed request: a candidate of the most recent windows only.
    let before = t.link_work();
    let relaxed = invite("n2", "g2", 1, "z9hG4bKn2").with(|m| m.extra = SUP.into());
    feed(&mut t, open * MS + 2 * MS, &relaxed);
    let work = t.link_work() - before;
    assert!(
        (1..=crate::dialog::windows::PER_GROUP as u64).contains(&work),
        "{work} candidates scored with {open} windows open"
    );
}

/// issue 12 item 5: after a 401/407 a new Call-ID retries the challenge
/// only with credentials for its realm; after a 3xx, only toward one of its
/// Contacts.
#[test]
fn cross_call_links_need_evidence_of_a_retry() {
    let challenge = |realm: Option<&str>, cred: Option<&str>| {
        let p = invite("c1", "f1", 1, "z9hG4bK1");
        let f = p.resp(407, Some("x")).with(|m| {
            m.extra = realm
                .map(|r| format!("Proxy-Authenticate: Digest realm=\"{r}\", nonce=\"1\"\r\n"))
                .unwrap_or_default()
        });
        let n = invite("c2", "f9", 1, "z9hG4bK2").with(|m| {
            m.extra = cred
                .map(|r| {
                    format!(
                        "Proxy-Authorization: Digest username=\"u\", realm=\"{r}\", nonce=\"1\"\r\n"
                    )
                })
                .unwrap_or_default()
        });
        let mut msgs = vec![(0, p.clone()), (MS, f)];
        msgs.extend(call(&n, S, "t2"));
        run(&msgs, 60 * S).0.len()
    };
    assert_eq!(challenge(Some("ims.example"), Some("ims.example")), 1);
    assert_eq!(challenge(Some("ims.example"), Some("other.example")), 2);
    assert_eq!(challenge(Some("ims.example"), None), 2);
    assert_eq!(challenge(None, Some("any.example")), 1);
    let redirect = |target: &str| {
        let p = invite("c1", "f1", 1, "z9hG4bK1");
        let f = p
            .resp(302, Some("x"))
            .with(|m| m.extra = "Contact: <sip:bob@new.example.net;transport=udp>\r\n".into());
        let n = invite("c2", "f9", 1, "z9hG4bK2")
            .with(|m| m.start = format!("INVITE {target} SIP/2.0"));
        let mut msgs = vec![(0, p.clone()), (MS, f)];
        msgs.extend(call(&n, S, "t2"));
        run(&msgs, 60 * S).0.len()
    };
    assert_eq!(redirect("sip:bob@new.example.net"), 1);
    assert_eq!(redirect("sip:bob@elsewhere.example.net"), 2);
}

/// issue 12 items 5 and 6: the 2xx was not captured, but its ACK (new
/// branch, the callee's tag) was, and the BYE: one ESTABLISHED session
/// with the BYE in it, no MID_DIALOG session. The same when only the
/// callee's BYE (tags swapped) shows that the call was answered.
#[test]
fn a_lost_2xx_is_inferred_from_its_ack_or_bye() {
    let inv = invite("c1", "f1", 1, "z9hG4bK1");
    let ack = inv
        .req("ACK", 1, "z9hG4bK2")
        .with(|m| m.ttag = Some("t".into()));
    let bye = inv
        .req("BYE", 2, "z9hG4bK3")
        .with(|m| m.ttag = Some("t".into()));
    let msgs = vec![
        (0, inv.clone()),
        (MS, inv.resp(100, None)),
        (S, ack),
        (2 * S, bye.clone()),
        (2 * S + MS, bye.resp(200, Some("t"))),
    ];
    let (s, got, _) = run(&msgs, 90 * S);
    assert_eq!(s.len(), 1, "{s:#?}");
    assert_eq!(
        (s[0].outcome, s[0].final_status),
        (Outcome::Established, None)
    );
    assert!(!s[0].flags.contains(&Mark::MidDialog));
    assert!(got.iter().all(|g| *g == Some(s[0].id)));
    // The callee hangs up; no ACK captured.
    let bye = M {
        start: "BYE sip:alice@example.org SIP/2.0".into(),
        from: "sip:bob@example.net".into(),
        ftag: "t".into(),
        to: "sip:alice@example.org".into(),
        ttag: Some("f1".into()),
        cseq: 7,
        method: "BYE".into(),
        branch: "z9hG4bK9".into(),
        ..inv.clone()
    };
    let msgs = vec![
        (0, inv.clone()),
        (2 * S, bye.clone()),
        (2 * S + MS, bye.resp(200, Some("f1"))),
    ];
    let (s, _, _) = run(&msgs, 90 * S);
    assert_eq!(s.len(), 1, "{s:#?}");
    assert_eq!(s[0].outcome, Outcome::Established);
}

/// issue 12 item 3: the strongest candidate wins, whichever window closes
/// first. N (same Call-ID as P1, new From tag: H0', 0.9) is also an H2
/// candidate (0.7) of P2, whose window opened earlier and so closes
/// earlier; P2 must leave N to P1.
#[test]
fn the_strongest_candidate_wins_whichever_window_closes_first() {
    let p2 = invite("c2", "f2", 1, "z9hG4bK2");
    let p1 = invite("c1", "f1", 1, "z9hG4bK1");
    let n = invite("c1", "f9", 2, "z9hG4bK3").with(|m| m.extra = SUP.into());
    let mut msgs = vec![
        (0, p2.clone()),
        (MS, p2.resp(420, Some("x2"))),
        (S, p1.clone()),
        (S + MS, p1.resp(420, Some("x1"))),
    ];
    msgs.extend(call(&n, S + 5 * MS, "t"));
    let (s, _, _) = run(&msgs, 90 * S);
    let linked = s
        .iter()
        .find(|x| x.attempts.len() == 2)
        .expect("a linked session");
    assert_eq!(linked.links[0].rule, Rule::H0Prime, "{s:#?}");
    assert_eq!(linked.call_ids.len(), 1);
    assert_eq!(linked.outcome, Outcome::Established);
    assert_eq!(s.len(), 2);
}

/// issue 11 item 2: a session whose dialog ended with an answered BYE and
/// no decision pending is written after a short grace, not after W0 of
/// silence; a BYE retransmitted after that still belongs to it.
#[test]
fn an_ended_call_is_finished_after_a_grace_not_w0() {
    let mut t: Tracker<usize> = Tracker::default();
    let (src, dst) = (
        "10.0.0.1:5060".parse().unwrap(),
        "10.0.0.2:5060".parse().unwrap(),
    );
    let inv = invite("c1", "f1", 1, "z9hG4bK1");
    let mut msgs = call(&inv, 0, "t");
    let bye = msgs[5].1.clone();
    // The BYE again 10 s later (its 200 lost beyond the capture point).
    msgs.push((12 * S, bye));
    // Unrelated traffic moves the clock on.
    let other = invite("c9", "f9", 1, "z9hG4bK9");
    msgs.push((8 * S, other));
    msgs.sort_by_key(|m| m.0);
    let mut got = vec![None; msgs.len()];
    let mut finished = Vec::new();
    let mut live_at_8s = None;
    for (i, (ts, m)) in msgs.iter().enumerate() {
        let rec = SipRecord::from_text(&m.text(), i as u64 + 1, *ts, src, dst);
        t.push(rec, i, |_, _| {});
        t.drain(|i, s| got[i] = s);
        finished.extend(t.take_finished());
        if *ts == 8 * S {
            live_at_8s = Some(finished.len());
        }
    }
    // Written 4 s after the BYE's 200 (at 2 s), long before 2 s + W0.
    assert_eq!(live_at_8s, Some(1), "the call was written by 8 s");
    t.finish(60 * S);
    t.drain(|i, s| got[i] = s);
    finished.extend(t.take_finished());
    assert_eq!(
        finished.len(),
        2,
        "no session for the late BYE: {finished:#?}"
    );
    let call_id = finished[0].id;
    let late = msgs.iter().position(|m| m.0 == 12 * S).unwrap();
    assert_eq!(got[late], Some(call_id));
}

/// [`run`] with every session that may go cold spilled after each message
/// (`dir`: where the spill files go); also returns (frozen, thawed) and
/// the write warning.
fn run_cold(
    msgs: &[(i64, M)],
    end: i64,
    dir: &std::path::Path,
) -> (Vec<SessionSummary>, Vec<Option<u64>>, (u64, u64), bool) {
    let mut t: Tracker<usize> = Tracker::default();
    t.cold_storage(dir, ".cold-test");
    let (sessions, got) = feed(&mut t, msgs, end, |t, ts| {
        t.freeze_idle(ts);
    });
    assert_eq!(t.cold_counts().0, 0, "nothing left cold");
    assert!(t.take_cold_error().is_none());
    let (_, frozen, thawed) = t.cold_counts();
    let warned = t.take_cold_warning().is_some();
    (sessions, got, (frozen, thawed), warned)
}

/// Lone INVITEs that wait, then get a 180 and a refusal that is retried
/// with a new Call-ID, a CANCEL, a retransmission, or nothing: spilled
/// after every message, the sessions, links and message assignments are
/// those of the tracker that kept them (module `cold`); and when the spill
/// files cannot be written, nothing is spilled and nothing changes.
#[test]
fn sessions_spilled_and_read_back_end_as_if_kept() {
    let a = invite("cold-a", "fa", 1, "z9hG4bKa");
    let b = invite("cold-b", "fb", 1, "z9hG4bKb").with(|m| {
        m.from = "sip:carol@example.org".into();
        m.extra = "Require: precondition\r\n".into();
    });
    let c = invite("cold-c", "fc", 1, "z9hG4bKc").with(|m| {
        m.from = "sip:carol@example.org".into();
        m.extra = SUP.into();
    });
    let d = invite("cold-d", "fd", 1, "z9hG4bKd").with(|m| m.from = "sip:dave@example.org".into());
    let e = invite("cold-e", "fe", 1, "z9hG4bKe").with(|m| m.from = "sip:erin@example.org".into());
    let msgs = vec![
        (0, a.clone()),
        (100 * MS, b.clone()),
        (200 * MS, d.clone()),
        (300 * MS, e.clone()),
        (3 * S, b.resp(180, Some("tb"))),
        (
            4 * S,
            b.resp(420, Some("tb"))
                .with(|m| m.extra = "Unsupported: precondition\r\n".into()),
        ),
        (
            4 * S + MS,
            b.req("ACK", 1, "z9hG4bKb")
                .with(|m| m.ttag = Some("tb".into())),
        ),
        (5 * S, c.clone()),
        (5 * S + 10 * MS, c.resp(200, Some("tc"))),
        (6 * S, d.req("CANCEL", 1, "z9hG4bKd")),
        (
            6 * S + MS,
            d.req("CANCEL", 1, "z9hG4bKd").resp(200, Some("td")),
        ),
        (6 * S + 2 * MS, d.resp(487, Some("td"))),
        (7 * S, e.clone()),
        (40 * S, e.resp(408, Some("te"))),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (kept, kept_got, _) = run(&msgs, 60 * S);
    let (cold, cold_got, (frozen, thawed), warned) = run_cold(&msgs, 60 * S, dir.path());
    assert_eq!(format!("{cold:?}"), format!("{kept:?}"));
    assert_eq!(cold_got, kept_got);
    assert!(
        frozen >= 4 && thawed == frozen && !warned,
        "{frozen} {thawed}"
    );
    assert!(
        kept.iter().any(|s| !s.links.is_empty()),
        "the retry is linked"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "spill files removed: {left:?}");
    let gone = dir.path().join("no-such-dir");
    let (cold, cold_got, (frozen, _), warned) = run_cold(&msgs, 60 * S, &gone);
    assert_eq!(format!("{cold:?}"), format!("{kept:?}"));
    assert_eq!(cold_got, kept_got);
    assert!(frozen == 0 && warned);
}

/// An in-dialog request stays whole only while it may be P or N of an
/// in-dialog failure (rules.md §D): a success whose method never failed
/// before it in the attempt keeps a digest; a failure, and every later
/// request of its method, keep the record; so does one that arrived while
/// an earlier request of its method was still waiting for its answer.
#[test]
fn in_dialog_requests_stay_whole_only_while_they_may_be_p_or_n() {
    let inv = invite("c1", "f1", 1, "z9hG4bK1");
    let mut msgs = call(&inv, 0, "t1");
    let bye = msgs.split_off(5);
    let req = |method: &str, cseq: u32| {
        inv.req(method, cseq, &format!("z9hG4bK{method}{cseq}"))
            .with(|m| m.ttag = Some("t1".into()))
    };
    let at = |ms: i64| S + 100 * MS + ms * MS;
    msgs.extend([
        // A success with nothing before it: released at its answer.
        (at(0), req("UPDATE", 2)),
        (at(1), req("UPDATE", 2).resp(200, Some("t1"))),
        // UPDATE 4 goes out while UPDATE 3 waits; 3 then fails, 4 succeeds:
        // 3 is P and 4 its N, both whole.
        (at(10), req("UPDATE", 3)),
        (at(11), req("UPDATE", 4)),
        (at(12), req("UPDATE", 3).resp(491, Some("t1"))),
        (at(13), req("UPDATE", 4).resp(200, Some("t1"))),
        // INFO 5 fails first; INFO 6 after it succeeds and stays whole.
        (at(20), req("INFO", 5)),
        (at(21), req("INFO", 5).resp(501, Some("t1"))),
        (at(30), req("INFO", 6)),
        (at(31), req("INFO", 6).resp(200, Some("t1"))),
    ]);
    msgs.extend(bye.into_iter().map(|(t, m)| {
        let m = m.with(|m| m.cseq = 7);
        (t, m)
    }));
    let (s, _, _) = run(&msgs, 3 * S);
    assert_eq!(s.len(), 1);
    let txns = &s[0].attempts[0].in_dialog;
    let seen: Vec<(String, u32, Option<u16>, bool)> = txns
        .iter()
        .map(|t| {
            let whole = t.request.as_ref().map(|r| TxnDigest::of(r) == t.req);
            assert_ne!(whole, Some(false), "the digest is the record's");
            (
                t.req.method.as_str().to_string(),
                t.req.cseq,
                t.final_status,
                whole.is_some(),
            )
        })
        .collect();
    let want = |m: &str, c: u32, st: u16, whole: bool| (m.to_string(), c, Some(st), whole);
    assert_eq!(
        seen,
        [
            want("UPDATE", 2, 200, false),
            want("UPDATE", 3, 491, true),
            want("UPDATE", 4, 200, true),
            want("INFO", 5, 501, true),
            want("INFO", 6, 200, true),
            want("BYE", 7, 200, false),
        ]
    );
}

/// A 2xx final response is kept as its digest (time, status, source, To
/// tag) unless it carries a Warning, whose agent the policy may read; a
/// failure stays whole (failures.csv shows it).
#[test]
fn a_success_is_kept_as_its_digest_and_a_failure_whole() {
    let plain = call(&invite("c1", "f1", 1, "z9hG4bK1"), 0, "t1");
    let (s, _, _) = run(&plain, 4 * S);
    let a = &s[0].attempts[0];
    assert!(a.final_response.is_none());
    let d = a.final_success.expect("a digest");
    assert_eq!((d.status, d.ts_ns), (200, S));
    assert_eq!(d.to_tag, tag_key(Some("t1")));
    assert_eq!(a.final_status(), Some(200));
    assert_eq!(s[0].outcome, Outcome::Established);

    let mut warned = call(&invite("c2", "f2", 1, "z9hG4bK2"), 0, "t2");
    warned[3].1.extra = "Warning: 399 scscf.home.example \"x\"\r\n".into();
    let (s, _, _) = run(&warned, 4 * S);
    let a = &s[0].attempts[0];
    assert!(a.final_success.is_none());
    let f = a.final_response.as_ref().expect("kept whole");
    assert_eq!((f.status, f.warning().is_some()), (Some(200), true));

    let inv = invite("c3", "f3", 1, "z9hG4bK3");
    let failed = [(0, inv.clone()), (MS, inv.resp(486, Some("t3")))];
    let (s, _, _) = run(&failed, 40 * S);
    let a = &s[0].attempts[0];
    assert!(a.final_success.is_none());
    assert_eq!(a.final_response.as_ref().and_then(|f| f.status), Some(486));
    assert_eq!(a.final_status(), Some(486));
}
