//! summary.csv rows from the batch's counts: the rules' [`Tally`] and the
//! decoding counters, each dimension in its fixed place, values sorted by
//! their spelling (status codes by number). It formats counts; it never
//! counts a cell or decides a value.

use std::collections::BTreeMap;
use std::fmt::Display;

use crate::rules::tally::Tally;

use super::Text;
use super::rows::SummaryRow;

/// What summary.csv holds besides the [`Tally`].
pub struct BatchCounts<'a> {
    /// `total` rows, in order.
    pub totals: &'a [(&'static str, u64)],
    /// The policy's name.
    pub policy: &'a str,
    /// Messages by transport (tunnels and protocol).
    pub transport: &'a BTreeMap<String, u64>,
    /// Messages by method.
    pub method: &'a BTreeMap<String, u64>,
    /// Responses by status.
    pub status: &'a BTreeMap<u16, u64>,
    /// Anomalies by kind.
    pub anomalies: &'a BTreeMap<&'static str, u64>,
}

/// The counts of `m` by spelled value, sorted by spelling.
pub fn spelled<K: Display>(m: &BTreeMap<K, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = m.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    v.sort();
    v
}

/// Every summary.csv row, in file order.
pub fn summary_rows(t: &Tally, b: &BatchCounts<'_>) -> Vec<SummaryRow> {
    let mut rows = Vec::new();
    let mut push = |dimension: &'static str, v: Vec<(String, u64)>| {
        rows.extend(v.into_iter().map(|(value, count)| SummaryRow {
            dimension,
            value: Text(value),
            count,
        }));
    };
    let totals = b.totals.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    push("total", totals);
    push("verdict", spelled(&t.verdict));
    push("failure_verdict", spelled(&t.failure_verdict));
    push("failure_class", spelled(&t.failure_class));
    push("capability", spelled(&t.capability));
    push("ue_profile", spelled(&t.ue_profile));
    push("policy_verdict", spelled(&t.policy_verdict));
    push("policy", vec![(b.policy.to_string(), 1)]);
    push("outcome", spelled(&t.outcome));
    push("destination_class", spelled(&t.destination));
    push("flag", spelled(&t.flag));
    push("transport", spelled(b.transport));
    push("method", spelled(b.method));
    let status = b.status.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    push("status", status);
    push("anomaly", spelled(b.anomalies));
    rows
}
