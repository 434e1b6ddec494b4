//! The typed schema of the Parquet twins of the CSV reports: for each report
//! that has one, every column in CSV order with its Parquet (Arrow) type,
//! and how a CSV cell reads as that type. The one place that decides types;
//! README ("Typed reports") documents the same table.
//!
//! It never reads or writes a file (`parquet.rs` does). Column names and
//! order are the CSV headers' ([`super::SESSIONS_HEADER`] and the others);
//! a test holds each table equal to its header, so a new CSV column must get
//! a line here.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, TimeUnit};

/// How a CSV cell becomes a Parquet value. An empty cell is null for the
/// scalar types and an empty list for the list types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// `string` (UTF-8): the cell exactly as in the CSV, formula guard `'`
    /// included.
    Text,
    /// `int64`: a decimal integer (ids, frames, counts, status codes,
    /// milliseconds).
    Int,
    /// `double`: a decimal number (`link_confidence`).
    Float,
    /// `boolean`: `true` or `false`.
    Bool,
    /// `timestamp[ns, tz=UTC]`: RFC 3339 UTC as the CSV writes it
    /// (`2026-11-24T06:58:36.123456Z`).
    Time,
    /// `list<string>`: the `;`-joined items of the cell, in order.
    TextList,
    /// `list<int64>`: the `;`-joined integers of the cell, in order.
    IntList,
}

use ColType::{Bool, Float, Int, IntList, Text, TextList, Time};

/// One report with a Parquet twin: the CSV it is read from, the Parquet file
/// it becomes, and its columns.
#[derive(Debug)]
pub struct Table {
    /// The CSV report's file name.
    pub csv: &'static str,
    /// The Parquet file's name.
    pub parquet: &'static str,
    /// Every column, in the CSV's order.
    pub columns: &'static [(&'static str, ColType)],
}

/// sessions.csv as sessions.parquet.
pub const SESSIONS: Table = Table {
    csv: "sessions.csv",
    parquet: "sessions.parquet",
    columns: &[
        ("session", Int),
        ("method", Text),
        ("call_id", Text),
        ("start", Time),
        ("end", Time),
        ("caller", Text),
        ("callee", Text),
        ("from_uri", Text),
        ("to_uri", Text),
        ("request_uri", Text),
        ("user_agent", Text),
        ("attempts", Int),
        ("first_require", TextList),
        ("first_supported", TextList),
        ("first_precondition", Text),
        ("failure_status", Int),
        ("failure_class", TextList),
        ("refused", TextList),
        ("retry_call_id", Text),
        ("retry_link", Text),
        ("retry_delay_ms", Int),
        ("retry_require", TextList),
        ("retry_supported", TextList),
        ("retry_precondition", Text),
        ("verdict", Text),
        ("flags", TextList),
        ("destination_class", Text),
        ("policy_verdict", Text),
        ("policy_rule", Text),
        ("final_status", Int),
        ("outcome", Text),
        ("file", Text),
        ("frame", Int),
        ("wireshark_filter", Text),
        ("related_sessions", IntList),
        ("ue_profile", Text),
        ("links", TextList),
        ("attention", Int),
    ],
};

/// failures.csv as failures.parquet.
pub const FAILURES: Table = Table {
    csv: "failures.csv",
    parquet: "failures.parquet",
    columns: &[
        ("session", Int),
        ("call_id", Text),
        ("request_frame", Int),
        ("failure_file", Text),
        ("failure_frame", Int),
        ("failure_status", Int),
        ("failure_class", TextList),
        ("capability", TextList),
        ("refused", TextList),
        ("responder", Text),
        ("retry_call_id", Text),
        ("retry_file", Text),
        ("retry_frame", Int),
        ("retry_link", Text),
        ("link_confidence", Float),
        ("dropped", TextList),
        ("kept_refused", TextList),
        ("desired_listed", Bool),
        ("sdp_relaxed", Bool),
        ("verdict", Text),
        ("flags", TextList),
        ("policy_verdict", Text),
        ("policy_rule", Text),
    ],
};

/// messages.csv (with `--messages`) as messages.parquet.
pub const MESSAGES: Table = Table {
    csv: "messages.csv",
    parquet: "messages.parquet",
    columns: &[
        ("file", Text),
        ("frame", Int),
        ("time", Time),
        ("src", Text),
        ("dst", Text),
        ("transport", Text),
        ("kind", Text),
        ("method", Text),
        ("status", Int),
        ("call_id", Text),
        ("cseq", Int),
        ("from_tag", Text),
        ("to_tag", Text),
        ("via_branch", Text),
        ("require", TextList),
        ("proxy_require", TextList),
        ("supported", TextList),
        ("unsupported", TextList),
        ("allow", TextList),
        ("precondition", Text),
        ("retransmission", Bool),
        ("session", Int),
    ],
};

/// summary.csv as summary.parquet.
pub const SUMMARY: Table = Table {
    csv: "summary.csv",
    parquet: "summary.parquet",
    columns: &[("dimension", Text), ("value", Text), ("count", Int)],
};

/// Every report with a Parquet twin.
pub const TABLES: [&Table; 4] = [&SESSIONS, &FAILURES, &MESSAGES, &SUMMARY];

impl ColType {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Text => DataType::Utf8,
            Int => DataType::Int64,
            Float => DataType::Float64,
            Bool => DataType::Boolean,
            Time => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            TextList => DataType::List(list_item(DataType::Utf8)),
            IntList => DataType::List(list_item(DataType::Int64)),
        }
    }
}

/// The item field of a list column: items are never null.
pub fn list_item(t: DataType) -> Arc<Field> {
    Arc::new(Field::new_list_field(t, false))
}

impl Table {
    /// The Arrow schema: scalar columns nullable (an empty cell), list
    /// columns not (an empty cell is an empty list).
    pub fn schema(&self) -> Arc<Schema> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, t)| {
                let nullable = !matches!(t, TextList | IntList);
                Field::new(*name, t.data_type(), nullable)
            })
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// The column names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.columns.iter().map(|(n, _)| *n).collect()
    }
}

/// Parses the RFC 3339 UTC time the CSV reports write
/// (`YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`) to nanoseconds since the epoch; `None`
/// for anything else.
pub fn parse_time_ns(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b.last() != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = b.get(r)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| d.iter().fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0')))
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let frac = &b[19..b.len() - 1];
    let nanos = match frac {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
            num(20..20 + digits.len())? * 10i64.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_the_csv_headers() {
        assert_eq!(SESSIONS.names(), super::super::SESSIONS_HEADER);
        assert_eq!(FAILURES.names(), super::super::FAILURES_HEADER);
        assert_eq!(MESSAGES.names(), super::super::MESSAGES_HEADER);
        assert_eq!(SUMMARY.names(), super::super::SUMMARY_HEADER);
    }

    #[test]
    fn times_parse_to_nanoseconds() {
        assert_eq!(parse_time_ns("1970-01-01T00:00:00.000000Z"), Some(0));
        assert_eq!(
            parse_time_ns("2026-11-24T06:58:36.123456Z"),
            Some(1_795_503_516_123_456_000)
        );
        assert_eq!(
            parse_time_ns("2000-02-29T23:59:59.5Z"),
            Some(951_868_799_500_000_000)
        );
        assert_eq!(parse_time_ns("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        for bad in [
            "",
            "2026-11-24 06:58:36Z",
            "2026-11-24T06:58:36.123456",
            "2026-13-24T06:58:36Z",
            "2026-11-24T06:58:36.Z",
            "2026-11-24T06:58:36.1234567890Z",
            "2026-11-24T06:5x:36Z",
        ] {
            assert_eq!(parse_time_ns(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times_round_trip_the_capture_formatter() {
        for ns in [
            0i64,
            1_795_503_516_123_456_000,
            -86_400_000_000,
            4_102_444_800_000_000_000,
        ] {
            let s = crate::capture::format_rfc3339_micros(ns);
            assert_eq!(parse_time_ns(&s), Some(ns), "{s}");
        }
    }
}
