//! Message records in Parquet (issue "beyond one machine", docs/records.md):
//! one file per input capture, one row per SIP message holding every field
//! of the dialog stage's [`crate::dialog::SipRecord`] plus where it was seen and its
//! partition key, and in the file's key-value metadata what the input's
//! reports need besides the messages ([`FileFacts`]: its inputs.csv row,
//! its summary.csv counters, its decoding anomalies).
//!
//! Owns: the schema and its version ([`schema`]), writing a records file
//! ([`write::RecordsWriter`]) and reading one back into records
//! ([`read::open`], [`read::read`]). Never decodes a capture and never
//! tracks sessions: the pipeline does both (`pipeline::records`).

pub mod read;
pub mod schema;
pub mod write;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What an input's reports need besides its messages: stored as JSON in
/// the file metadata under [`schema::FACTS_KEY`] (docs/records.md,
/// "File metadata").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFacts {
    /// The input as the user named it (inputs.csv `file`; the reports name
    /// the input so).
    pub file: String,
    /// inputs.csv `format`.
    pub format: String,
    /// inputs.csv `compression`.
    pub compression: String,
    /// inputs.csv `link_types`.
    pub link_types: String,
    /// inputs.csv `packets`.
    pub packets: u64,
    /// inputs.csv `bytes`.
    pub bytes: u64,
    /// inputs.csv `first_time`.
    pub first_time: String,
    /// inputs.csv `last_time`.
    pub last_time: String,
    /// inputs.csv `sip_packets`.
    pub sip_packets: u64,
    /// inputs.csv `other_packets`.
    pub other_packets: u64,
    /// inputs.csv `undecodable_packets`.
    pub undecodable_packets: u64,
    /// inputs.csv `sip_messages` (also the number of rows).
    pub sip_messages: u64,
    /// inputs.csv `error`: why the capture was not read to its end.
    pub error: String,
    /// Whether the capture was not read to its end.
    pub failed: bool,
    /// Time of the capture's first packet (ns; the merge's hint).
    pub first_packet_ns: Option<i64>,
    /// Time of the capture's latest packet, SIP or not (ns): the batch ends
    /// at the latest of these.
    pub last_packet_ns: Option<i64>,
    /// summary.csv `transport` counts of this input.
    pub transport: BTreeMap<String, u64>,
    /// summary.csv `method` counts.
    pub method: BTreeMap<String, u64>,
    /// summary.csv `status` counts.
    pub status: BTreeMap<u16, u64>,
    /// The anomalies found decoding the capture (anomalies.csv rows before
    /// their final merge; the tracker's are found again by the reduce).
    pub anomalies: Vec<StoredAnomaly>,
    /// The sipaudit version that wrote the file.
    pub sipaudit_version: String,
}

/// One anomaly, or a run of identical ones on consecutive frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnomaly {
    /// First frame.
    pub first: u64,
    /// Last frame.
    pub last: u64,
    /// How many anomalies it stands for.
    pub count: u64,
    /// The stable id (anomalies.csv `kind`).
    pub kind: String,
    /// The detail.
    pub detail: String,
}
