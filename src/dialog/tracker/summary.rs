//! What the tracker hands over: finished sessions ([`SessionSummary`]) with
//! their attempts, links and anomalies, the rule and outcome names, and the
//! Wireshark filter of a session. Plain data; never tracks anything.

use super::*;

/// How a retry was linked to the failed attempt before it (rules.md §A.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Same Call-ID and From tag.
    H0,
    /// Same Call-ID, new From tag.
    H0Prime,
    /// New Call-ID, same From URI and tag, same To URI.
    H1,
    /// New Call-ID and tag; same identities; differs only in capabilities.
    H2,
    /// Identities equal after E.164 normalisation.
    H3,
    /// B2BUA legs tied by Session-ID, icid-value or X-CID.
    AsLeg,
}

impl Rule {
    /// The report spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::H0 => "H0",
            Rule::H0Prime => "H0'",
            Rule::H1 => "H1",
            Rule::H2 => "H2",
            Rule::H3 => "H3",
            Rule::AsLeg => "AS-leg",
        }
    }

    pub(super) fn window(self, method: &Method, w0: i64) -> i64 {
        match self {
            Rule::H0 | Rule::H0Prime => w0,
            _ if *method == Method::Message => W1_MESSAGE_NS,
            _ => W1_NS,
        }
    }
}

/// How a session ended (rules.md §D.3, from its last attempt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// A 2xx final response.
    Established,
    /// Any other final 3xx–6xx.
    Failed,
    /// The UAC cancelled (487, or a failure that crossed the CANCEL).
    Cancelled,
    /// A 408, or no final response although the capture runs on past
    /// Timer B.
    Timeout,
    /// No final response and the capture ends too early to say; or the
    /// dialog's start is not in the capture.
    Truncated,
}

/// A session mark the tracker sets while it rebuilds sessions (rules.md §A,
/// §G). The dialog layer sits left of the rules: the report spelling and the
/// meaning of each mark are the rules catalogue's (`rules::catalogue::Flag`,
/// one flag per mark, mapped there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mark {
    /// P had another candidate within 0.1 of the chosen link's confidence
    /// (§A.3).
    AmbiguousLink,
    /// A same-identity request came after the window of the rule it would
    /// have matched (§G.19).
    CandidateLateRetry,
    /// The UAC sent CANCEL before any provisional response (§A.5).
    CancelBefore1xx,
    /// A 2xx crossed the CANCEL (§A.5).
    CancelRaceAnswered,
    /// One fork refused a capability another fork accepted (§A.4).
    ForkMixedCapability,
    /// Several forks answered 2xx (§A.4).
    ForkedMultiAnswer,
    /// A failure inside a dialog, or a dialog begun before the capture
    /// (§A.1).
    MidDialog,
    /// A reliable provisional response was never PRACKed (§G.7).
    PrackMissing,
    /// A PRACK acknowledged no reliable provisional response (§G.7).
    PrackUnmatched,
    /// A proxy changed Require or Proxy-Require between hops (§A.6).
    ProxyRewrite,
    /// Require or Proxy-Require in a CANCEL or a non-2xx ACK (§B.5 L4).
    RequireInCancelOrAck,
}

/// A retry link of a finished session.
#[derive(Clone, Debug)]
pub struct Link {
    /// Index of the failed attempt P in [`SessionSummary::attempts`].
    pub from: usize,
    /// Index of the retry N.
    pub to: usize,
    /// The rule that linked them.
    pub rule: Rule,
    /// Its confidence (rules.md §A.3).
    pub confidence: f32,
    /// Whether P had another candidate within 0.1 of this link's
    /// confidence (`AMBIGUOUS_LINK`).
    pub ambiguous: bool,
    /// The highest CSeq the UAC sent in N's Call-ID with N's From tag before
    /// N (rules.md §A.3 `max_uac_cseq`), for H0/H0' links.
    pub max_uac_cseq: Option<u32>,
}

/// One attempt of a finished session.
#[derive(Clone, Debug)]
pub struct AttemptSummary {
    /// The initial request, as the UA sent it (the copy with the fewest
    /// Vias, rules.md §A.6).
    pub request: SipRecord,
    /// The final response (the first one seen; 2xx preferred over nothing)
    /// when it is kept whole: a failure (F of rules.md §C-§D, shown in
    /// failures.csv) or a success with a Warning header. Any other success
    /// is [`AttemptSummary::final_success`].
    pub final_response: Option<SipRecord>,
    /// The final response when it is a success kept as its digest.
    pub final_success: Option<SuccessFinal>,
    /// When the UAC sent CANCEL.
    pub cancel_ns: Option<i64>,
    /// To tags of the early dialogs (1xx with a To tag), in order.
    pub early_tags: Vec<Box<str>>,
    /// To tags of 2xx responses, in order.
    pub confirmed_tags: Vec<Box<str>>,
    /// Whether the capture does not hold the dialog's start (an in-dialog
    /// request with no known dialog, rules.md §A.1).
    pub start_missing: bool,
    /// Provisional (101–199) and 2xx responses, first copy of each
    /// (status, To tag, RSeq), in order: what the rules read of them
    /// ([`Answer`]), not the messages.
    pub answers: Vec<Answer>,
    /// Requests inside the attempt's dialogs (PRACK, UPDATE, re-INVITE,
    /// BYE, INFO, ...; not ACK), each with its final response.
    pub in_dialog: Vec<InDialogTxn>,
    /// Whether an ACK for the non-2xx final response was seen.
    pub acked_failure: bool,
    /// Sources the final response was captured from (one per hop; the
    /// first is the hop nearest the responder, rules.md §C attribution).
    pub final_sources: Vec<SocketAddr>,
    /// A later request of the same Call-ID, From tag and method was sent
    /// more than 50 ms before the final response (rules.md D4).
    pub premature_retry: bool,
    /// A request with the same identities came after the window of the
    /// rule it would have matched (rules.md G.19).
    pub late_candidate: bool,
    /// A later B2BUA leg of this request (same Session-ID, icid-value or
    /// X-CID) no longer requires precondition or 100rel, or lowered the SDP
    /// precondition demand (rules.md §A.6).
    pub leg_relaxed: bool,
}

/// The key a digest holds for a From or To tag (`None` hashes too): the
/// digests compare tags through it.
pub fn tag_key(tag: Option<&str>) -> u64 {
    h(&tag)
}

/// One request inside a dialog, with its final response.
///
/// Of the request, the rules and the tracker read what [`TxnDigest`] holds,
/// except where it is P or N of an in-dialog failure (rules.md §D: a failed
/// request, and the next request of its method after it): failures.csv
/// shows both whole. So the record is kept whole only while the transaction
/// may still be one of them, and dropped once it cannot
/// ([`InDialogTxn::release_settled`]): a call in flight keeps a digest of
/// about 100 bytes per PRACK, UPDATE or BYE instead of a record of 328 and
/// its text.
#[derive(Clone, Debug)]
pub struct InDialogTxn {
    /// What every reader reads of the request.
    pub req: TxnDigest,
    /// The request (first copy), whole while it may be P or N; `None` once
    /// it succeeded and no earlier request of its method in the attempt
    /// failed or is still waiting for its final response.
    pub request: Option<Box<SipRecord>>,
    /// The status of its final response (the first one); `None` while none
    /// was seen.
    pub final_status: Option<u16>,
    /// That final response when it failed (3xx-6xx): F of the in-dialog
    /// failure. A success (most: 200 to PRACK, UPDATE, BYE) keeps only its
    /// status: nothing else of it is read. Boxed: a transaction without
    /// one (nearly all) spends 8 bytes on it instead of a record's 328.
    pub failure: Option<Box<SipRecord>>,
}

impl InDialogTxn {
    /// A new transaction of request `rec`, kept whole.
    pub fn new(rec: SipRecord) -> InDialogTxn {
        InDialogTxn {
            req: TxnDigest::of(&rec),
            request: Some(Box::new(rec)),
            final_status: None,
            failure: None,
        }
    }

    /// Drops the whole request of every transaction of `txns` (one
    /// attempt's, in order) that can be neither P nor N of an in-dialog
    /// failure any more: it succeeded (so it is not P), and every earlier
    /// request of its method succeeded too (so it is no failure's N: N is
    /// the next request of P's method after P). Called after each final
    /// response; a transaction still waiting, or failed, keeps its record.
    pub fn release_settled(txns: &mut [InDialogTxn]) {
        for j in 0..txns.len() {
            let (before, rest) = txns.split_at_mut(j);
            let t = &mut rest[0];
            if t.request.is_none() || !t.succeeded() {
                continue;
            }
            let open = before
                .iter()
                .any(|k| k.req.method == t.req.method && !k.succeeded());
            if !open {
                t.request = None;
            }
        }
    }

    /// Whether its final response was seen and is not a failure.
    fn succeeded(&self) -> bool {
        self.final_status.is_some_and(|s| s < 300)
    }

    /// The request whole: present for P and N of every in-dialog failure
    /// (see [`InDialogTxn::release_settled`]; a debug build asserts it).
    /// `None` only if that invariant were broken: the rules then skip the
    /// in-dialog unit of that P or N rather than stop the run.
    pub fn whole(&self) -> Option<&SipRecord> {
        debug_assert!(
            self.request.is_some(),
            "an in-dialog failure's P and N keep their requests whole"
        );
        self.request.as_deref()
    }
}

impl AttemptSummary {
    /// The status of the final response, whole or digested.
    pub fn final_status(&self) -> Option<u16> {
        self.final_response
            .as_ref()
            .map(|f| f.status.unwrap_or(0))
            .or(self.final_success.map(|s| s.status))
    }
}

/// What is read of a 2xx final response without a Warning header, in full:
/// its time and status (the outcome, rules.md §A.1; timers), its To tag
/// (a later branch's refusal, §A.4) and its source (§E.4 step 3: N's final
/// response from a home node; the Warning agent that could name one is
/// absent, and Require is read only for a 421). Kept instead of the
/// message, whose record and text are about 500 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SuccessFinal {
    /// Capture time, ns.
    pub ts_ns: i64,
    /// Source address.
    pub src: SocketAddr,
    /// The status code (2xx).
    pub status: u16,
    /// Hash of the To tag ([`tag_key`]).
    pub to_tag: u64,
}

impl SuccessFinal {
    /// The digest of `r` when it is a 2xx without a Warning header: what
    /// may replace it as an attempt's final response.
    pub fn of(r: &SipRecord) -> Option<SuccessFinal> {
        let status = r.status.filter(|s| (200..300).contains(s))?;
        r.warning().is_none().then(|| SuccessFinal {
            ts_ns: r.at.ts_ns,
            src: r.at.src,
            status,
            to_tag: tag_key(r.to_tag()),
        })
    }
}

/// What the rules and the tracker read of an in-dialog request, in full:
/// its time, source, method, CSeq and From tag (max_uac_cseq of rules.md
/// §A.3, D.3 item 4's later UAC message, C21's stall, the tracker's
/// matching of responses and BYE), the RSeq its RAck names (C18's
/// unPRACKed reliable 1xx) and its precondition use (lints L5, L6). A rule
/// that needs more of an in-dialog request adds it here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnDigest {
    /// Capture time, ns.
    pub ts_ns: i64,
    /// Source address.
    pub src: SocketAddr,
    /// The method.
    pub method: Method,
    /// The CSeq number.
    pub cseq: u32,
    /// Hash of the From tag ([`tag_key`]).
    pub from_tag: u64,
    /// The RSeq named by a PRACK's RAck.
    pub rack_rseq: Option<u32>,
    /// Whether Require lists precondition.
    pub require_precondition: bool,
    /// Whether its SDP has a=des/curr/conf at session level.
    pub session_level_precondition: bool,
}

impl TxnDigest {
    /// The digest of request `r`.
    pub fn of(r: &SipRecord) -> TxnDigest {
        TxnDigest {
            ts_ns: r.at.ts_ns,
            src: r.at.src,
            method: r.method.clone(),
            cseq: r.cseq,
            from_tag: tag_key(r.from_tag()),
            rack_rseq: r.rack.as_ref().map(|x| x.0),
            require_precondition: r.require().contains("precondition"),
            session_level_precondition: r.session_level_precondition,
        }
    }
}

/// What is kept of a 1xx/2xx answer to an initial request while its
/// session is open, and handed to the rules: a digest of 32 bytes instead of
/// the message (a record of 328 bytes and its text, about 700 bytes for a
/// 200 OK with SDP; a call keeps two or three answers).
///
/// Its readers are, in full: lints L3 (`RSEQ_INCONSISTENT`: status, RSeq,
/// Require: 100rel) and C21's stall (status, time) and C18's unPRACKed
/// reliable 1xx (RSeq) in `rules::verdict`; the observation rows C13, C15
/// and C17 of rules.md §C (SDP, precondition lines, Allow, status, RSeq) in
/// `rules::classify`; the IMS signature of §E.2 (Require: 100rel with
/// precondition lines) in `rules::session`; and the tracker, which keeps
/// one copy per (status, To tag, RSeq). A rule that needs more of an
/// answer adds it here. Failure responses are kept whole: their text goes
/// into failures.csv.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Capture time, ns.
    pub ts_ns: i64,
    /// Hash of the To tag (`None` hashes too): one copy is kept per
    /// (status, To tag, RSeq).
    pub to_tag: u64,
    /// RSeq of a reliable provisional response.
    pub rseq: Option<u32>,
    /// The status code.
    pub status: u16,
    /// Whether Require lists 100rel.
    pub require_100rel: bool,
    /// Whether it carries an SDP body (decodable or not).
    pub has_sdp: bool,
    /// Whether its SDP has any a=des/curr/conf line.
    pub has_precondition_lines: bool,
    /// Whether an Allow header is present.
    pub has_allow: bool,
    /// Whether Allow lists UPDATE.
    pub allow_update: bool,
}

impl Answer {
    /// The digest of response `r`.
    pub fn of(r: &SipRecord) -> Answer {
        Answer {
            ts_ns: r.at.ts_ns,
            to_tag: tag_key(r.to_tag()),
            rseq: r.rseq,
            status: r.status.unwrap_or(0),
            require_100rel: r.require().contains("100rel"),
            has_sdp: r.has_sdp,
            has_precondition_lines: r.has_precondition_lines,
            has_allow: r.has_allow,
            allow_update: r.allow_update,
        }
    }

    /// Whether `other` is a copy of the same answer: same status, To tag
    /// and RSeq.
    pub fn same(&self, other: &Answer) -> bool {
        (self.status, self.to_tag, self.rseq) == (other.status, other.to_tag, other.rseq)
    }
}

const _: () = assert!(
    std::mem::size_of::<Answer>() == 32,
    "Answer's doc says 32 bytes"
);

/// A finished session, as the report and the rules need it.
#[derive(Clone, Debug)]
pub struct SessionSummary {
    /// Stable id, unique in the run (numbered in the order sessions are
    /// recognised as such, from 1).
    pub id: u64,
    /// Attempts in time order.
    pub attempts: Vec<AttemptSummary>,
    /// Retry links between them.
    pub links: Vec<Link>,
    /// First message time.
    pub start_ns: i64,
    /// Last message time.
    pub end_ns: i64,
    /// Every Call-ID of the session, in order of appearance.
    pub call_ids: Vec<Box<str>>,
    /// Session marks found while tracking (rules.md §A), as [`Mark`]s.
    pub flags: BTreeSet<Mark>,
    /// The outcome, from the last attempt.
    pub outcome: Outcome,
    /// Its final status code.
    pub final_status: Option<u16>,
    /// Other sessions tied to this one by Session-ID, icid-value or X-CID
    /// (B2BUA legs), by id, sorted.
    pub related: Vec<u64>,
    /// Capture time the batch had reached when the session was finalised
    /// (the end of the batch for sessions still open then): how far past
    /// the session the capture is known to extend (rules.md D.3 items 4–5).
    pub observed_until: i64,
}

/// An anomaly found while tracking (written to anomalies.csv).
#[derive(Clone, Debug)]
pub struct TrackAnomaly {
    /// Input file index.
    pub file: u32,
    /// Frame.
    pub frame: u64,
    /// Stable id (`clock_skew`, `out_of_order`, `orphan_response`).
    pub kind: &'static str,
    /// Human detail.
    pub detail: String,
    /// Another message the anomaly refers to (file index, frame): for
    /// `clock_skew`, the request.
    pub related: Option<(u32, u64)>,
}

/// A Wireshark display filter showing every message of the given Call-IDs.
pub fn wireshark_filter(call_ids: &[Box<str>]) -> String {
    // One String per row (this runs for every sessions.csv row): each
    // Call-ID quoted, its `\\` and `"` escaped with a backslash.
    let mut out = String::with_capacity(call_ids.iter().map(|c| c.len() + 22).sum());
    for (i, c) in call_ids.iter().enumerate() {
        if i > 0 {
            out.push_str(" || ");
        }
        out.push_str("sip.Call-ID == \"");
        // Whole runs between the characters to escape (most Call-IDs have
        // none): a char-by-char push was 2.4 % of the rules thread at the
        // end of the scanner burst.
        let mut rest = &c[..];
        while let Some(i) = memchr::memchr2(b'\\', b'"', rest.as_bytes()) {
            out.push_str(&rest[..i]);
            out.push('\\');
            out.push_str(&rest[i..=i]);
            rest = &rest[i + 1..];
        }
        out.push_str(rest);
        out.push('"');
    }
    out
}

impl SessionSummary {
    /// The link whose P is attempt `i`.
    pub fn link_from(&self, i: usize) -> Option<&Link> {
        self.links.iter().find(|l| l.from == i)
    }
}

#[cfg(test)]
mod tests {
    use super::wireshark_filter;

    #[test]
    fn the_filter_quotes_and_escapes_each_call_id() {
        assert_eq!(wireshark_filter(&[]), "");
        assert_eq!(
            wireshark_filter(&["a@h".into(), r#"b"\c"#.into()]),
            r#"sip.Call-ID == "a@h" || sip.Call-ID == "b\"\\c""#
        );
        // Escapes at both ends and side by side.
        assert_eq!(
            wireshark_filter(&[r#""\\""#.into()]),
            r#"sip.Call-ID == "\"\\\\\"""#
        );
    }
}
