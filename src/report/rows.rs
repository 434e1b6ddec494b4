//! The CSV row structs: the schema of every output file. Column order is the
//! field order; `../shared/docs/contract.md` fixes names and order, and new
//! columns only ever go after the listed ones. Every column says where its
//! value comes from and what an empty cell means.

use serde::Serialize;

use super::Text;

/// messages.csv: one row per SIP message seen on the wire (with
/// `--messages`). Rows sorted by time, then file, then frame.
#[derive(Debug, Clone, Serialize)]
pub struct MessageRow {
    /// The input path as given (or as found under a given directory).
    pub file: Text,
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
    pub transport: String,
    /// `request` or `response`.
    pub kind: &'static str,
    /// The request method; for a response, the CSeq method. Empty when a
    /// response has no readable CSeq.
    pub method: Text,
    /// The status code of a response; empty for requests.
    pub status: Option<u16>,
    /// The Call-ID (`i:`); empty when missing.
    pub call_id: Text,
    /// The CSeq number; empty when missing or unreadable.
    pub cseq: Option<u32>,
    /// The From tag; empty when absent.
    pub from_tag: Text,
    /// The To tag; empty when absent (an initial request).
    pub to_tag: Text,
    /// The `branch` parameter of the top Via; empty when absent.
    pub via_branch: Text,
    /// Require option tags: lowercased, deduplicated, in order of first
    /// appearance, `;`-joined (all rows and comma items).
    pub require: Text,
    /// Proxy-Require option tags, same format.
    pub proxy_require: Text,
    /// Supported (`k:`) option tags, same format.
    pub supported: Text,
    /// Unsupported option tags, same format.
    pub unsupported: Text,
    /// Allow methods: uppercase, deduplicated, `;`-joined.
    pub allow: Text,
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

/// anomalies.csv: one row per anomaly found in the traffic. Rows sorted by
/// file, frame, kind.
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
