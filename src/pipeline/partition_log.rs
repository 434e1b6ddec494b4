//! The partition log (`partition.jsonl`, docs/records.md): what an
//! `analyze --records --partition K/N` run writes for `merge-reports`
//! ([`super::merge_reports`]). JSON lines: a header (partition, batch,
//! policy, versions), one line per finished session as it finishes (its
//! rows as CSV cells, its flagged twin, the time and tracking partition its
//! id was numbered with, its §F data and correlation values) and a trailer,
//! written last (a log without one is from a run that did not end).
//!
//! Owns: the log's format and its writer. Never merges (merge_reports.rs)
//! and never decides anything about a session: it records what the rules
//! stage decided.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Config, Input, PARTITIONS};
use crate::dialog::SessionSummary;
use crate::error::{Error, ErrorKind};
use crate::report;
use crate::report::rows::{FailureRow, SessionRow};
use crate::rules::Experience;

/// The log's file name in a `--partition` run's output directory.
pub const LOG_NAME: &str = "partition.jsonl";
/// The log's `format` value.
pub const LOG_FORMAT: &str = "sipaudit.partition";
/// `MAJOR.MINOR`: a minor version only adds fields; a reader refuses
/// another major.
pub const LOG_VERSION: &str = "1.0";

/// The first line of a log: what must agree between the partitions.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// [`LOG_FORMAT`].
    pub format: String,
    /// [`LOG_VERSION`].
    pub version: String,
    /// The sipaudit that wrote it.
    pub sipaudit_version: String,
    /// K of `--partition K/N`.
    pub partition: usize,
    /// N.
    pub partitions: usize,
    /// Tracking partitions of the run (`pipeline::PARTITIONS`).
    pub tracking_partitions: usize,
    /// The policy's name.
    pub policy: String,
    /// W0 of the policy, ns.
    pub w0_ns: i64,
    /// The batch's inputs, as the reports name them, in order.
    pub inputs: Vec<String>,
    /// Cut by `--routes` (every B2BUA/AS leg the router ties is in the
    /// partition of the first leg's home). Absent in logs of 1.0.
    #[serde(default)]
    pub routed: bool,
}

/// One finished session of a partition.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its id in the partition's reports.
    pub id: u64,
    /// Capture time its id was numbered at.
    pub t: i64,
    /// Tracking partition it was numbered in.
    pub p: u32,
    /// Start time (the row order).
    pub start: i64,
    /// Ids (in this partition) of its related sessions.
    pub related: Vec<u64>,
    /// Its sessions.csv cells.
    pub row: Vec<String>,
    /// The cells with INCONSISTENT_EXPERIENCE, for a session that may get it.
    pub twin: Option<Vec<String>>,
    /// Its failures.csv rows' cells.
    pub failures: Vec<Vec<String>>,
    /// What rules.md §F INCONSISTENT_EXPERIENCE needs of it.
    pub experience: Option<ExperienceText>,
    /// Correlation values (Session-ID, icid-value, X-CID hashes) of its
    /// initial requests, with their times.
    pub corr: Vec<(u64, i64)>,
}

/// [`Experience`] in its report spellings.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ExperienceText {
    /// Subscriber (the §F group key's first part).
    pub subscriber: String,
    /// Destination class.
    pub destination: String,
    /// Refused capabilities.
    pub refused: String,
    /// Outcome.
    pub outcome: String,
    /// Session verdict.
    pub verdict: String,
    /// Visited network.
    pub visited: Option<String>,
    /// Access type.
    pub access: Option<String>,
    /// UE profile.
    pub ue_profile: Option<String>,
}

/// The last line of a log.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// Session lines.
    pub sessions: u64,
    /// Sessions given INCONSISTENT_EXPERIENCE within the partition.
    pub inconsistent: u64,
    /// The tracker's anomalies by kind (summary.csv's `anomaly` counts
    /// also hold the decoding's, the same in every partition).
    pub tracker_anomalies: BTreeMap<String, u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LineOut<'a> {
    Header(&'a Header),
    Session(&'a Entry),
    End(&'a Trailer),
}

/// A line of the log, as read.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    /// The first line.
    Header(Header),
    /// A finished session.
    Session(Box<Entry>),
    /// The last line.
    End(Trailer),
}

/// The log of a `--partition` run, written as sessions finish.
pub struct PartitionLog {
    w: BufWriter<File>,
    path: PathBuf,
}

pub(super) fn output(path: &Path, source: std::io::Error) -> Error {
    ErrorKind::Output {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

impl PartitionLog {
    /// Creates the log of partition `(K, N)` in `cfg.out_dir`.
    pub fn create(
        cfg: &Config,
        (k, n): (usize, usize),
        inputs: &[Input],
    ) -> Result<PartitionLog, Error> {
        let path = cfg.out_dir.join(LOG_NAME);
        let f = File::create(&path).map_err(|e| output(&path, e))?;
        let mut log = PartitionLog {
            w: BufWriter::with_capacity(1 << 16, f),
            path,
        };
        log.line(&LineOut::Header(&Header {
            format: LOG_FORMAT.into(),
            version: LOG_VERSION.into(),
            sipaudit_version: env!("CARGO_PKG_VERSION").into(),
            partition: k,
            partitions: n,
            tracking_partitions: PARTITIONS,
            policy: cfg.policy.name().to_string(),
            w0_ns: i64::try_from(cfg.policy.window_ns()).unwrap_or(i64::MAX),
            inputs: inputs.iter().map(|i| i.display.clone()).collect(),
            routed: cfg.routed,
        }))?;
        Ok(log)
    }

    fn line(&mut self, l: &LineOut<'_>) -> Result<(), Error> {
        serde_json::to_writer(&mut self.w, l)
            .map_err(std::io::Error::other)
            .and_then(|()| self.w.write_all(b"\n"))
            .map_err(|e| output(&self.path, e))
    }

    /// Appends a finished session.
    pub fn session(&mut self, e: &Entry) -> Result<(), Error> {
        self.line(&LineOut::Session(e))
    }

    /// Writes the trailer and closes the log.
    pub fn finish(mut self, t: &Trailer) -> Result<(), Error> {
        self.line(&LineOut::End(t))?;
        self.w.flush().map_err(|e| output(&self.path, e))
    }
}

/// A row's CSV cells, as sessions.csv or failures.csv would hold them.
fn cells<R: Serialize>(row: &R) -> Vec<String> {
    let mut b = Vec::new();
    report::encode(row, &mut b);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(b.as_slice());
    let mut rec = csv::StringRecord::new();
    // A row encoded in memory is one well-formed record.
    let _ = r.read_record(&mut rec);
    rec.iter().map(str::to_string).collect()
}

/// The log entry of finished session `s` (numbered at `origin`) with its
/// rows and its §F data.
pub fn entry(
    s: &SessionSummary,
    origin: (i64, u32),
    row: &SessionRow,
    twin: Option<&SessionRow>,
    frows: &[FailureRow],
    exp: Option<&Experience>,
) -> Entry {
    let corr = s
        .attempts
        .iter()
        .flat_map(|a| {
            let ts = a.request.at.ts_ns;
            a.request
                .link()
                .corr
                .into_iter()
                .filter(|&k| k != 0)
                .map(move |k| (k, ts))
        })
        .collect();
    Entry {
        id: s.id,
        t: origin.0,
        p: origin.1,
        start: s.start_ns,
        related: s.related.clone(),
        row: cells(row),
        twin: twin.map(cells),
        failures: frows.iter().map(cells).collect(),
        experience: exp.map(|e| ExperienceText {
            subscriber: e.key.0.clone(),
            destination: e.key.1.as_str().into(),
            refused: e.key.2.clone(),
            outcome: e.result.0.as_str().into(),
            verdict: e.result.1.as_str().into(),
            visited: e.context.0.clone(),
            access: e.context.1.clone(),
            ue_profile: e.context.2.map(|p| p.as_str().to_string()),
        }),
        corr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_round_trips() {
        let e = Entry {
            id: 3,
            t: 5,
            p: 7,
            start: 1,
            related: vec![2],
            row: vec!["3".into(), "a,b".into()],
            twin: None,
            failures: vec![],
            experience: None,
            corr: vec![(9, 1)],
        };
        let s = serde_json::to_string(&LineOut::Session(&e)).unwrap();
        match serde_json::from_str::<Line>(&s).unwrap() {
            Line::Session(b) => assert_eq!(*b, e),
            _ => panic!("not a session line"),
        }
    }
}
