//! The Parquet twins of the reports (`analyze --format csv,parquet`): read
//! back with the parquet crate, each has its CSV's columns in order, the
//! declared types, the same rows, and every value equal to its CSV cell;
//! DuckDB (the Python package) reads them and counts what summary.csv
//! counts; a run without `parquet` removes the stale ones.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use common::{analyze, needs, read_csv};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sipaudit::report::parquet_schema::{ColType, TABLES};

/// `analyze --messages --format csv,parquet` on every sample capture.
fn analyze_samples(out: &Path) {
    let caps = common::all_sample_captures();
    let o = out.to_str().unwrap();
    let mut args = vec!["--messages", "--format", "csv,parquet", "-o", o];
    args.extend(caps.iter().map(String::as_str));
    let r = analyze(&args);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

fn read_parquet(path: &Path) -> (arrow_schema::SchemaRef, Vec<RecordBatch>) {
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let b = ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
    let schema = b.schema().clone();
    let batches = b.build().unwrap().map(Result::unwrap).collect();
    (schema, batches)
}

/// A Parquet value written back as its CSV cell.
fn cell_text(a: &ArrayRef, i: usize) -> String {
    if a.is_null(i) {
        return String::new();
    }
    match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().value(i).to_string(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Float64 => a.as_primitive::<Float64Type>().value(i).to_string(),
        DataType::Boolean => a.as_boolean().value(i).to_string(),
        DataType::Timestamp(_, _) => sipaudit::capture::format_rfc3339_micros(
            a.as_primitive::<TimestampNanosecondType>().value(i),
        ),
        DataType::List(_) => {
            let items = a.as_list::<i32>().value(i);
            let texts: Vec<String> = (0..items.len()).map(|j| cell_text(&items, j)).collect();
            texts.join(";")
        }
        t => panic!("unexpected type {t}"),
    }
}

#[test]
fn parquet_twins_equal_the_csv_reports() {
    let out = tempfile::tempdir().unwrap();
    analyze_samples(out.path());
    for t in TABLES {
        let (schema, batches) = read_parquet(&out.path().join(t.parquet));
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let csv = read_csv(&out.path().join(t.csv));
        assert_eq!(names, csv.header, "{}: columns", t.parquet);
        for (f, (_, ty)) in schema.fields().iter().zip(t.columns) {
            assert_eq!(
                f.data_type(),
                &ty.data_type(),
                "{}: {}",
                t.parquet,
                f.name()
            );
        }
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, csv.rows.len(), "{}: rows", t.parquet);
        assert!(rows > 0, "{}: no rows to compare", t.parquet);
        let mut r = 0;
        for b in &batches {
            for i in 0..b.num_rows() {
                for (c, name) in names.iter().enumerate() {
                    let got = cell_text(b.column(c), i);
                    assert_eq!(
                        got,
                        csv.rows[r][*name],
                        "{} row {} column {name}",
                        t.parquet,
                        r + 1
                    );
                }
                r += 1;
            }
        }
    }
    // The declared types, spot-checked by name (README, "Typed reports").
    let ty = |table: &str, col: &str| {
        let t = TABLES.iter().find(|t| t.parquet == table).unwrap();
        t.columns.iter().find(|(n, _)| *n == col).unwrap().1
    };
    assert_eq!(ty("sessions.parquet", "failure_status"), ColType::Int);
    assert_eq!(ty("sessions.parquet", "start"), ColType::Time);
    assert_eq!(ty("sessions.parquet", "flags"), ColType::TextList);
    assert_eq!(ty("sessions.parquet", "related_sessions"), ColType::IntList);
    assert_eq!(ty("failures.parquet", "desired_listed"), ColType::Bool);
    assert_eq!(ty("messages.parquet", "retransmission"), ColType::Bool);
}

#[test]
fn parquet_files_are_listed_and_removed_when_not_written() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let cap = "samples/h17-rotated-420/capture-1.pcap";
    let r = analyze(&["--format", "csv,parquet", "-o", o, cap]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let listed = |dir: &Path| -> Vec<String> {
        let m: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("run.json")).unwrap()).unwrap();
        let files = m["files"].as_array().unwrap();
        files
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let names = listed(out.path());
    for n in ["sessions.parquet", "failures.parquet", "summary.parquet"] {
        assert!(
            names.iter().any(|x| x == n),
            "{n} not in run.json: {names:?}"
        );
        assert!(out.path().join(n).is_file(), "{n}");
    }
    // Without --messages there is no messages.csv, so no twin.
    assert!(!out.path().join("messages.parquet").exists());
    // The same output directory without parquet: the twins go.
    let r = analyze(&["-o", o, cap]);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    for n in ["sessions.parquet", "failures.parquet", "summary.parquet"] {
        assert!(!out.path().join(n).exists(), "stale {n} left");
    }
    assert!(listed(out.path()).iter().all(|n| !n.ends_with(".parquet")));
}

#[test]
fn parquet_output_is_deterministic() {
    let cap = "samples/h17-rotated-420/capture-1.pcap";
    let run = || -> Vec<Vec<u8>> {
        let out = tempfile::tempdir().unwrap();
        let o = out.path().to_str().unwrap();
        let r = analyze(&["--messages", "--format", "parquet,csv", "-o", o, cap]);
        assert_eq!(
            r.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&r.stderr)
        );
        TABLES
            .iter()
            .map(|t| fs::read(out.path().join(t.parquet)).unwrap())
            .collect()
    };
    assert!(run() == run(), "two runs wrote different Parquet bytes");
}

#[test]
fn format_without_csv_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let o = out.path().to_str().unwrap();
    let r = analyze(&[
        "--format",
        "parquet",
        "-o",
        o,
        "samples/auth-407/capture.pcap",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("must include csv"));
    assert!(!out.path().join("sessions.csv").exists());
    let r = analyze(&[
        "--format",
        "csv,xlsx",
        "-o",
        o,
        "samples/auth-407/capture.pcap",
    ]);
    assert_eq!(r.status.code(), Some(2));
}

/// What the DuckDB script reads from the Parquet reports.
const DUCKDB_SCRIPT: &str = r#"
import json, sys, duckdb
d = sys.argv[1]
con = duckdb.connect()
def q(sql):
    return con.execute(sql.replace("DIR", d)).fetchall()
out = {
    "sessions": q("SELECT count(*) FROM 'DIR/sessions.parquet'")[0][0],
    "verdict": dict(q("SELECT verdict, count(*) FROM 'DIR/sessions.parquet' GROUP BY 1")),
    "outcome": dict(q("SELECT outcome, count(*) FROM 'DIR/sessions.parquet' GROUP BY 1")),
    "failure_verdict": dict(q("SELECT verdict, count(*) FROM 'DIR/failures.parquet' GROUP BY 1")),
    "flag": dict(q("SELECT f, count(*) FROM (SELECT unnest(flags) AS f FROM 'DIR/sessions.parquet') GROUP BY 1")),
    "sip_messages": q("SELECT count(*) FROM 'DIR/messages.parquet'")[0][0],
    "retransmissions": q("SELECT count(*) FROM 'DIR/messages.parquet' WHERE retransmission")[0][0],
    "summary": {f"{a}|{b}": c for a, b, c in q("SELECT dimension, value, count FROM 'DIR/summary.parquet'")},
    "types": {f"{t}.{c}": ty for t in ["sessions", "failures", "messages"]
              for c, ty, *_ in q(f"DESCRIBE SELECT * FROM 'DIR/{t}.parquet'")},
}
print(json.dumps(out))
"#;

/// `python3` with the `duckdb` package, or `None` after the skip note.
fn python_with_duckdb() -> Option<PathBuf> {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        needs::skip(
            "needs python3 with the duckdb package; install it with `python3 -m pip install duckdb`",
        );
        return None;
    }
    Some(PathBuf::from("python3"))
}

#[test]
fn duckdb_reads_the_counts_of_summary_csv() {
    let Some(python) = python_with_duckdb() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    analyze_samples(out.path());
    let o = Command::new(python)
        .args(["-c", DUCKDB_SCRIPT, out.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    let summary = read_csv(&out.path().join("summary.csv"));
    let mut by_dim: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in &summary.rows {
        let count: u64 = r["count"].parse().unwrap();
        by_dim
            .entry(r["dimension"].clone())
            .or_default()
            .insert(r["value"].clone(), count);
        // summary.parquet holds the same rows.
        let key = format!("{}|{}", r["dimension"], r["value"]);
        assert_eq!(got["summary"][&key], count, "summary.parquet {key}");
    }
    assert_eq!(
        got["summary"].as_object().unwrap().len(),
        summary.rows.len()
    );
    let as_map = |v: &serde_json::Value| -> BTreeMap<String, u64> {
        let m = v.as_object().unwrap();
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect()
    };
    assert_eq!(got["sessions"], by_dim["total"]["sessions"]);
    assert_eq!(got["sip_messages"], by_dim["total"]["sip_messages"]);
    assert_eq!(got["retransmissions"], by_dim["total"]["retransmissions"]);
    for dim in ["verdict", "outcome", "failure_verdict", "flag"] {
        assert_eq!(as_map(&got[dim]), by_dim[dim], "{dim} counts");
    }
    // Typed, not text or float (pandas read the CSV's 420 as 420.0).
    let types = &got["types"];
    assert_eq!(types["sessions.failure_status"], "BIGINT");
    assert_eq!(types["failures.failure_status"], "BIGINT");
    // DuckDB 2 keeps the nanoseconds (TIMESTAMPTZ_NS); DuckDB 1 reads them as
    // microseconds with the time zone.
    let start = types["sessions.start"].as_str().unwrap();
    assert!(
        ["TIMESTAMPTZ_NS", "TIMESTAMP WITH TIME ZONE"].contains(&start),
        "sessions.start: {start}"
    );
    assert_eq!(types["sessions.flags"], "VARCHAR[]");
    assert_eq!(types["sessions.related_sessions"], "BIGINT[]");
    assert_eq!(types["failures.desired_listed"], "BOOLEAN");
    assert_eq!(types["messages.retransmission"], "BOOLEAN");
}
