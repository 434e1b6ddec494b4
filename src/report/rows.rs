//! The CSV row structs: the schema of every output file. Column order is the
//! field order; `../shared/docs/contract.md` fixes names and order, and new
//! columns only ever go after the listed ones. Every column says where its
//! value comes from and what an empty cell means.

use serde::Serialize;

use super::{Cell, Text};

/// messages.csv: one row per SIP message seen on the wire (with
/// `--messages`). Rows sorted by time, then file, then frame.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRow<'a> {
    /// The input path as given (or as found under a given directory).
    pub file: Cell<'a>,
    /// 1-based frame number in that file, as Wireshark numbers it; for a
    /// reassembled message the frame that completed it.
    pub frame: u64,
    /// Capture time of that frame, RFC 3339 UTC with microseconds.
    pub time: String,
    /// Source `ip:port` (`[v6]:port`).
    pub src: String,
    /// Destination `ip:port`.
    pub dst: String,
    /// `udp`, `tcp`, `sctp`, prefixed by the tunnels it was found in
    /// (`gtp/udp`, `esp/udp`, `gre/udp`, `ipip/udp`, `vxlan/udp`).
    pub transport: Cell<'a>,
    /// `request` or `response`.
    pub kind: &'static str,
    /// The request method; for a response, the CSeq method. Empty when a
    /// response has no readable CSeq.
    pub method: Cell<'a>,
    /// The status code of a response; empty for requests.
    pub status: Option<u16>,
    /// The Call-ID (`i:`); empty when missing.
    pub call_id: Cell<'a>,
    /// The CSeq number; empty when missing or unreadable.
    pub cseq: Option<u32>,
    /// The From tag; empty when absent.
    pub from_tag: Cell<'a>,
    /// The To tag; empty when absent (an initial request).
    pub to_tag: Cell<'a>,
    /// The `branch` parameter of the top Via; empty when absent.
    pub via_branch: Cell<'a>,
    /// Require option tags: lowercased, deduplicated, in order of first
    /// appearance, `;`-joined (all rows and comma items).
    pub require: Cell<'a>,
    /// Proxy-Require option tags, same format.
    pub proxy_require: Cell<'a>,
    /// Supported (`k:`) option tags, same format.
    pub supported: Cell<'a>,
    /// Unsupported option tags, same format.
    pub unsupported: Cell<'a>,
    /// Allow methods: uppercase, deduplicated, `;`-joined.
    pub allow: Cell<'a>,
    /// SDP precondition demand of the message's offer: `mandatory`,
    /// `optional`, `none`, `absent` or `unknown` (rules.md §B.3).
    pub precondition: &'static str,
    /// `true` for a retransmitted or duplicated copy (rules.md §A.2): the
    /// same transaction key (top Via branch + CSeq method), start line, CSeq,
    /// Call-ID and From tag (and To tag for a response) as a message seen in
    /// the last 32 s of capture time, across all input files; without a Via
    /// branch, only a byte-identical copy. A capture duplicate (the same
    /// packet on two legs or interfaces) is one too. `false` otherwise.
    pub retransmission: Option<bool>,
    /// The session this message belongs to. Empty until sessions are rebuilt
    /// (the sessions issue).
    pub session: Option<String>,
}

/// inputs.csv: one row per input file, the accounting of every packet
/// (`packets = sip_packets + other_packets + undecodable_packets`). Rows in
/// sorted input order.
#[derive(Debug, Clone, Serialize)]
pub struct InputRow {
    /// The input path as given (or as found under a given directory).
    pub file: Text,
    /// `pcap` or `pcapng`; empty when the content is neither.
    pub format: &'static str,
    /// `gzip`, `zstd`, or empty when not compressed.
    pub compression: &'static str,
    /// Link types of the capture's interfaces, sorted, `;`-joined
    /// (`ethernet`, `linux_sll`, `linux_sll2`, `raw`, `null`, `loop`, ...;
    /// `linktype_N` for others).
    pub link_types: String,
    /// Packet records read (equals `capinfos -c` for a file read to its end).
    pub packets: u64,
    /// Captured bytes of those packets (the sum of their captured lengths).
    pub bytes: u64,
    /// Earliest packet time; empty without packets.
    pub first_time: String,
    /// Latest packet time; empty without packets.
    pub last_time: String,
    /// Packets that carried (part of) a SIP message.
    pub sip_packets: u64,
    /// Packets decoded fine that carried no SIP (RTP, DNS, TCP, ICMP, ...).
    pub other_packets: u64,
    /// Packets that failed at some layer, each with an anomalies.csv row.
    pub undecodable_packets: u64,
    /// SIP messages found.
    pub sip_messages: u64,
    /// Why the file could not be read to its end; empty when it was.
    pub error: Text,
}

/// anomalies.csv: one row per anomaly found in the traffic, or per run of
/// identical anomalies on consecutive frames of a file (`frame` the first,
/// `detail` ending with the count and the last frame,
/// [`crate::report::anomalies::repeated_detail`]). Rows sorted by file,
/// frame, kind, detail.
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyRow {
    /// The input path.
    pub file: Text,
    /// The frame it was found in.
    pub frame: u64,
    /// Stable snake_case id (README, "Anomalies").
    pub kind: &'static str,
    /// Human-readable detail.
    pub detail: Text,
}

/// summary.csv: the counts behind the stderr summary. Rows sorted by
/// dimension (in the order below), then value.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    /// `total` (files, packets, sip_packets, ...), `transport`, `method`,
    /// `status`, `anomaly`; later issues add the verdict dimensions.
    pub dimension: &'static str,
    /// The value counted.
    pub value: Text,
    /// How many.
    pub count: u64,
}

/// sessions.csv: one row per session, an initial request and every attempt
/// linked to it as a retry (rules.md §A.1, §A.3). Rows sorted by start time,
/// then session id. Columns named `failure_*`/`retry_*` describe the
/// session's first failed attempt and the retry linked to it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow<'a> {
    /// Stable id, unique in the run: sessions are numbered from 1 in the
    /// order they are recognised in the merged timeline (a session is
    /// recognised once its first request can no longer be a retry of an
    /// earlier failure, at most 32 s of capture time after it).
    pub session: u64,
    /// The method of the initial request (INVITE, REGISTER, MESSAGE, ...);
    /// for a dialog whose start is not in the capture, the method of its
    /// first in-dialog request.
    pub method: Cell<'a>,
    /// Call-ID of the first attempt.
    pub call_id: Cell<'a>,
    /// Time of the session's first message.
    pub start: String,
    /// Time of its last message (retransmissions included).
    pub end: String,
    /// `src` of the first attempt's request.
    pub caller: String,
    /// `dst` of the first attempt's request.
    pub callee: String,
    /// From URI of the first attempt.
    pub from_uri: Cell<'a>,
    /// To URI of the first attempt.
    pub to_uri: Cell<'a>,
    /// Request-URI of the first attempt (empty for a dialog whose start is
    /// not in the capture... its first request's Request-URI otherwise).
    pub request_uri: Cell<'a>,
    /// User-Agent of the first attempt's request (Server when it has none).
    pub user_agent: Cell<'a>,
    /// Attempts: the initial request and every retry linked to it.
    pub attempts: u32,
    /// Require tags of the first attempt (the UA's own copy, rules.md §A.6).
    pub first_require: Cell<'a>,
    /// Supported tags of the first attempt.
    pub first_supported: Cell<'a>,
    /// SDP precondition demand of the first attempt's offer.
    pub first_precondition: &'static str,
    /// Status of the session's first failure: the first attempt whose final
    /// response is 3xx–6xx. Empty when no attempt failed.
    pub failure_status: Option<u16>,
    /// §C category of that failure (the rules issue; empty until then).
    pub failure_class: Cell<'a>,
    /// Unsupported tags of that failure when it is a 420.
    pub refused: Cell<'a>,
    /// Call-ID of the retry linked to that failure; empty without one.
    pub retry_call_id: Cell<'a>,
    /// How the retry was linked: `H0`, `H0'`, `H1`, `H2`, `H3`, `AS-leg`.
    pub retry_link: &'static str,
    /// Retry request time minus failure time, in milliseconds (may be
    /// slightly negative within the 50 ms skew tolerance).
    pub retry_delay_ms: Option<i64>,
    /// Require tags of the retry.
    pub retry_require: Cell<'a>,
    /// Supported tags of the retry.
    pub retry_supported: Cell<'a>,
    /// SDP precondition demand of the retry's offer; empty without retry.
    pub retry_precondition: &'static str,
    /// Session verdict (rules.md §D.3): `NOT_APPLICABLE` until the rules
    /// issue evaluates relaxations.
    pub verdict: &'static str,
    /// Session flags, `;`-joined, sorted: `AMBIGUOUS_LINK`, `MID_DIALOG`,
    /// `FORKED_MULTI_ANSWER`, `CANCEL_BEFORE_1XX`, `CANCEL_RACE_ANSWERED`,
    /// `PRACK_MISSING`, `PRACK_UNMATCHED`, the D-check, §C observation,
    /// lint and policy flags. The UE profile is not a flag (`ue_profile`).
    pub flags: Cell<'a>,
    /// `IMS`, `NON_IMS` or `UNKNOWN` (rules.md §E.2) for the first
    /// attempt's Request-URI.
    pub destination_class: &'static str,
    /// Policy verdict (rules.md §E.4): empty until the rules issue.
    pub policy_verdict: Cell<'a>,
    /// What decided the policy verdict: empty until the rules issue.
    pub policy_rule: Cell<'a>,
    /// Final status of the last attempt; empty when it has none. For a
    /// `MID_DIALOG` session (dialog start not captured), the final status
    /// of its first in-dialog request.
    pub final_status: Option<u16>,
    /// From the last attempt (rules.md §D.3): `ESTABLISHED` (a 2xx to an
    /// INVITE), `COMPLETED` (a 2xx to any other method: REGISTER, OPTIONS,
    /// SUBSCRIBE, MESSAGE, ...), `FAILED`, `CANCELLED`, `TIMEOUT` or
    /// `TRUNCATED` (always for `MID_DIALOG`).
    pub outcome: &'static str,
    /// The input file holding the first request.
    pub file: Cell<'a>,
    /// Its frame.
    pub frame: u64,
    /// Display filter showing the whole session in Wireshark (every
    /// Call-ID of the session).
    pub wireshark_filter: Cell<'a>,
    /// Added column: ids of other sessions tied to this one by Session-ID
    /// (RFC 7989), P-Charging-Vector icid-value or X-CID/X-Call-ID (B2BUA
    /// legs, rules.md §A.3 AS-leg), `;`-joined.
    pub related_sessions: String,
    /// Added column: the UE profile of rules.md §F, from the first INVITE
    /// attempt whose start is in the capture: `R5_STRICT` (precondition in
    /// Require or Proxy-Require, or Require: 100rel with a mandatory SDP
    /// demand), `R6PLUS_RELAXED` (precondition lines without that),
    /// `NO_PRECONDITION`. Empty for other methods and for a dialog whose
    /// start is not in the capture. Not in `flags`.
    pub ue_profile: &'static str,
    /// Added column: every retry link of the session in time order of the
    /// retry, `;`-joined, each `call_id:rule:confidence`: the retry N's
    /// Call-ID, the rule (`H0`, `H0'`, `H1`, `H2`, `H3`, `AS-leg`; `H0` for
    /// an in-dialog retry) and the confidence as in failures.csv
    /// `link_confidence` (at most two decimals, trailing zeros dropped: `1`,
    /// `0.9`, `0.85`, `0.8`). A Call-ID may hold `:`, never `;`: read the last
    /// two `:` fields as rule and confidence. Links whose failure has no
    /// failures.csv row (401/407, 3xx) are listed too. Empty without a
    /// link.
    pub links: Cell<'a>,
    /// Added column: how much the session needs a look, 0 = nothing to
    /// look at, higher = worse (`rules::attention`): 4 × the rank of
    /// `verdict` in the severity order of rules.md §D.3 (RETRY_NEW_CALL_ID
    /// = 1 up to SECURITY_DOWNGRADE = 12; COMPLIANT_RELAXATION and below =
    /// 0) plus the rank of `policy_verdict` (§E.4: POLICY_UNDETERMINED 1,
    /// POLICY_OVERBLOCKED 2, POLICY_VIOLATION 3, others 0). report.html
    /// lists the sessions with attention > 0, highest first.
    pub attention: u32,
}

/// failures.csv: one row per capability failure (rules.md §C kinds,
/// mid-dialog ones included) and per other failure whose linked retry
/// relaxed. Rows in sessions.csv order, then by failure time.
#[derive(Debug, Clone, Serialize)]
pub struct FailureRow<'a> {
    /// The session (sessions.csv `session`).
    pub session: u64,
    /// Call-ID of the failed request P.
    pub call_id: Cell<'a>,
    /// Frame of P (in `failure_file`'s numbering when both are in one file;
    /// P's own file is the session's or the retry chain's).
    pub request_frame: u64,
    /// The file holding the failure response F.
    pub failure_file: Cell<'a>,
    /// F's frame.
    pub failure_frame: u64,
    /// F's status.
    pub failure_status: Option<u16>,
    /// Every matching §C category, `;`-joined in C-id order.
    pub failure_class: Cell<'a>,
    /// Every matching capability, `;`-joined in C-id order.
    pub capability: Cell<'a>,
    /// Unsupported tags of a 420.
    pub refused: Cell<'a>,
    /// Who refused: Warning warn-agent, else Server/User-Agent, else F's
    /// source address.
    pub responder: Cell<'a>,
    /// Call-ID of the linked retry N; empty without one.
    pub retry_call_id: Cell<'a>,
    /// File of N.
    pub retry_file: Cell<'a>,
    /// Frame of N.
    pub retry_frame: Option<u64>,
    /// How N was linked (`H0`, `H0'`, `H1`, `H2`, `H3`, `AS-leg`; `H0` for
    /// the next request of the same method in the dialog, mid-dialog).
    pub retry_link: &'static str,
    /// Confidence of that link (rules.md §A.3).
    pub link_confidence: String,
    /// D of rules.md §D.1: tags of Require/Proxy-Require in P and not in N.
    pub dropped: Cell<'a>,
    /// K of §D.1: refused tags N still requires.
    pub kept_refused: Cell<'a>,
    /// D9: every refused tag is in N's Supported (`true`/`false`).
    pub desired_listed: Option<bool>,
    /// N's SDP precondition demand is lower than P's.
    pub sdp_relaxed: Option<bool>,
    /// The verdict of rules.md §D.3.
    pub verdict: &'static str,
    /// D-check flags (§D.2), MID_DIALOG, STEPWISE, policy flags; `;`-joined.
    pub flags: Cell<'a>,
    /// Policy verdict (rules.md §E.4); empty for NOT_APPLICABLE.
    pub policy_verdict: Cell<'a>,
    /// What decided it.
    pub policy_rule: Cell<'a>,
}

impl SessionRow<'_> {
    /// The same row, owning every cell (what report.html keeps).
    pub fn into_owned(self) -> SessionRow<'static> {
        SessionRow {
            session: self.session,
            method: self.method.into_owned(),
            call_id: self.call_id.into_owned(),
            start: self.start,
            end: self.end,
            caller: self.caller,
            callee: self.callee,
            from_uri: self.from_uri.into_owned(),
            to_uri: self.to_uri.into_owned(),
            request_uri: self.request_uri.into_owned(),
            user_agent: self.user_agent.into_owned(),
            attempts: self.attempts,
            first_require: self.first_require.into_owned(),
            first_supported: self.first_supported.into_owned(),
            first_precondition: self.first_precondition,
            failure_status: self.failure_status,
            failure_class: self.failure_class.into_owned(),
            refused: self.refused.into_owned(),
            retry_call_id: self.retry_call_id.into_owned(),
            retry_link: self.retry_link,
            retry_delay_ms: self.retry_delay_ms,
            retry_require: self.retry_require.into_owned(),
            retry_supported: self.retry_supported.into_owned(),
            retry_precondition: self.retry_precondition,
            verdict: self.verdict,
            flags: self.flags.into_owned(),
            destination_class: self.destination_class,
            policy_verdict: self.policy_verdict.into_owned(),
            policy_rule: self.policy_rule.into_owned(),
            final_status: self.final_status,
            outcome: self.outcome,
            file: self.file.into_owned(),
            frame: self.frame,
            wireshark_filter: self.wireshark_filter.into_owned(),
            related_sessions: self.related_sessions,
            ue_profile: self.ue_profile,
            links: self.links.into_owned(),
            attention: self.attention,
        }
    }
}

impl FailureRow<'_> {
    /// The same row, owning every cell (what report.html keeps).
    pub fn into_owned(self) -> FailureRow<'static> {
        FailureRow {
            session: self.session,
            call_id: self.call_id.into_owned(),
            request_frame: self.request_frame,
            failure_file: self.failure_file.into_owned(),
            failure_frame: self.failure_frame,
            failure_status: self.failure_status,
            failure_class: self.failure_class.into_owned(),
            capability: self.capability.into_owned(),
            refused: self.refused.into_owned(),
            responder: self.responder.into_owned(),
            retry_call_id: self.retry_call_id.into_owned(),
            retry_file: self.retry_file.into_owned(),
            retry_frame: self.retry_frame,
            retry_link: self.retry_link,
            link_confidence: self.link_confidence,
            dropped: self.dropped.into_owned(),
            kept_refused: self.kept_refused.into_owned(),
            desired_listed: self.desired_listed,
            sdp_relaxed: self.sdp_relaxed,
            verdict: self.verdict,
            flags: self.flags.into_owned(),
            policy_verdict: self.policy_verdict.into_owned(),
            policy_rule: self.policy_rule.into_owned(),
        }
    }
}
