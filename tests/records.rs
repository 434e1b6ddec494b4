//! Message records (`extract-records`, `analyze --records`; docs/records.md):
//! captures → records → analyze gives the golden reports byte for byte on
//! every sample; partitions split the sessions without losing or doubling
//! one; inputs with the same file name get distinct records files; an
//! unknown schema major version is refused naming the file; DuckDB reads
//! the records and counts the SIP messages of summary.csv.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{analyze, needs, ok, read_csv, root, sipaudit};

/// Runs `sipaudit extract-records ARGS` from the repo root.
/// The golden reports the records path must reproduce.
const SAME: &[&str] = &[
    "sessions.csv",
    "failures.csv",
    "summary.csv",
    "inputs.csv",
    "anomalies.csv",
];

#[test]
fn records_round_trip_gives_the_golden_reports_of_every_sample() {
    for case in common::sample_cases() {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("rec");
        let caps = common::sample_captures(&case);
        let mut args = vec!["-o", rec.to_str().unwrap()];
        args.extend(caps.iter().map(String::as_str));
        ok(&sipaudit("extract-records", &args), &case);
        let n = fs::read_dir(&rec).unwrap().count();
        assert_eq!(n, caps.len(), "{case}: one records file per capture");
        let policy = format!("samples/{case}/policy.toml");
        let has_policy = root().join(&policy).exists();
        for jobs in ["1", "2", "3"] {
            let out = dir.path().join(format!("out-{jobs}"));
            let mut args = vec!["--records", "-j", jobs, "-o", out.to_str().unwrap()];
            if has_policy {
                args.extend(["--policy", policy.as_str()]);
            }
            args.push(rec.to_str().unwrap());
            ok(&analyze(&args), &case);
            let expected = root().join("samples").join(&case).join("expected");
            let html: &[&str] = if case.starts_with('h') {
                &["report.html"]
            } else {
                &[]
            };
            for r in SAME.iter().chain(html) {
                let got = fs::read(out.join(r)).unwrap();
                let want = fs::read(expected.join(r)).unwrap();
                assert!(
                    got == want,
                    "{case}/{r} (-j{jobs}) differs from the golden output\n--- expected\n{}\n--- got\n{}",
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                );
            }
        }
    }
}

/// Every sample capture as one batch, extracted into `rec`.
fn extract_all_samples(rec: &Path) -> Vec<String> {
    let caps: Vec<String> = common::sample_cases()
        .iter()
        .flat_map(|c| common::sample_captures(c))
        .collect();
    let mut args = vec!["-o", rec.to_str().unwrap()];
    args.extend(caps.iter().map(String::as_str));
    ok(&sipaudit("extract-records", &args), "all samples");
    caps
}

/// The `call_id` cells of sessions.csv in `dir`, sorted.
fn call_ids(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = read_csv(&dir.join("sessions.csv"))
        .rows
        .iter()
        .map(|r| r["call_id"].clone())
        .collect();
    v.sort();
    v
}

#[test]
fn same_file_names_get_distinct_records_and_the_batch_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let caps = extract_all_samples(&rec);
    let names: Vec<String> = fs::read_dir(&rec)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), caps.len(), "{names:?}");
    assert!(names.iter().all(|n| n.ends_with(".records.parquet")));
    assert!(names.iter().any(|n| n.starts_with("capture.pcap.")));
    // The whole batch: records and captures give the same reports.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut args = vec!["-j", "2", "--no-html", "-o", a.to_str().unwrap()];
    args.extend(caps.iter().map(String::as_str));
    ok(&analyze(&args), "analyze");
    let args = [
        "--records",
        "-j",
        "2",
        "--no-html",
        "-o",
        b.to_str().unwrap(),
        rec.to_str().unwrap(),
    ];
    ok(&analyze(&args), "analyze --records");
    for r in SAME {
        assert!(
            fs::read(a.join(r)).unwrap() == fs::read(b.join(r)).unwrap(),
            "{r} differs"
        );
    }
}

#[test]
fn partitions_split_the_sessions_without_loss_or_double() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    extract_all_samples(&rec);
    let all = dir.path().join("all");
    let r = rec.to_str().unwrap();
    ok(
        &analyze(&["--records", "--no-html", "-o", all.to_str().unwrap(), r]),
        "all",
    );
    let whole = call_ids(&all);
    let mut parts = Vec::new();
    let mut non_empty = 0;
    for k in 0..3 {
        let out = dir.path().join(format!("p{k}"));
        let p = format!("{k}/3");
        ok(
            &analyze(&[
                "--records",
                "--no-html",
                "--partition",
                &p,
                "-o",
                out.to_str().unwrap(),
                r,
            ]),
            &p,
        );
        let ids = call_ids(&out);
        non_empty += usize::from(!ids.is_empty());
        parts.extend(ids);
    }
    parts.sort();
    assert_eq!(
        parts, whole,
        "sessions of the partitions = sessions of the batch"
    );
    assert!(non_empty >= 2, "the key spreads the samples' calls");
    for bad in ["3/3", "1", "a/2", "0/0"] {
        let o = analyze(&["--records", "--partition", bad, "-o", "x", r]);
        assert_eq!(o.status.code(), Some(2), "--partition {bad}");
    }
}

/// `src` with the schema version in its metadata replaced by `version`.
fn with_version(src: &Path, dst: &Path, version: &str) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::metadata::KeyValue;
    let b = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(src).unwrap()).unwrap();
    let kv: Vec<KeyValue> = b
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .filter(|e| e.key.starts_with("sipaudit."))
        .cloned()
        .collect();
    let schema = b.schema().clone();
    let mut w = ArrowWriter::try_new(fs::File::create(dst).unwrap(), schema, None).unwrap();
    for batch in b.build().unwrap() {
        w.write(&batch.unwrap()).unwrap();
    }
    for mut e in kv {
        if e.key == "sipaudit.records.version" {
            e.value = Some(version.into());
        }
        w.append_key_value_metadata(e);
    }
    w.close().unwrap();
}

#[test]
fn another_major_version_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let caps = common::sample_captures("h17-rotated-420");
    let mut args = vec!["-o", rec.to_str().unwrap()];
    args.extend(caps.iter().map(String::as_str));
    ok(&sipaudit("extract-records", &args), "extract");
    let src = rec.join("capture-1.pcap.records.parquet");
    // A later minor version reads; the reports are unchanged.
    let minor = dir.path().join("minor");
    fs::create_dir(&minor).unwrap();
    with_version(&src, &minor.join("capture-1.pcap.records.parquet"), "1.7");
    fs::copy(
        rec.join("capture-2.pcap.records.parquet"),
        minor.join("capture-2.pcap.records.parquet"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    ok(
        &analyze(&["--records", "-o", o, minor.to_str().unwrap()]),
        "minor",
    );
    let want = root().join("samples/h17-rotated-420/expected/sessions.csv");
    assert_eq!(
        fs::read(out.join("sessions.csv")).unwrap(),
        fs::read(want).unwrap()
    );
    // Another major: exit 2, the file and the version named.
    let bad: PathBuf = dir.path().join("v2.records.parquet");
    with_version(&src, &bad, "2.0");
    let r = analyze(&["--records", "-o", o, bad.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(bad.to_str().unwrap()) && err.contains("schema version 2.0"),
        "{err}"
    );
    // Not a records file at all.
    let r = analyze(&[
        "--records",
        "-o",
        o,
        "samples/h17-rotated-420/capture-1.pcap",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("capture-1.pcap: records file"));
}

/// What the DuckDB script counts in the records.
const DUCKDB_SCRIPT: &str = r#"
import json, sys, duckdb
con = duckdb.connect()
glob = sys.argv[1] + "/*.records.parquet"
rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall()[0][0]
by_file = dict(con.execute(f"SELECT file, count(*) FROM read_parquet('{glob}') GROUP BY 1").fetchall())
types = {c: t for c, t, *_ in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{glob}')").fetchall()}
print(json.dumps({"rows": rows, "by_file": by_file, "types": types}))
"#;

#[test]
fn duckdb_counts_the_sip_messages_of_summary_csv() {
    let ok_duckdb = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok_duckdb {
        needs::skip(
            "needs python3 with the duckdb package; install it with `python3 -m pip install duckdb`",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec");
    let caps = extract_all_samples(&rec);
    let out = dir.path().join("out");
    let mut args = vec!["--no-html", "-o", out.to_str().unwrap()];
    args.extend(caps.iter().map(String::as_str));
    ok(&analyze(&args), "analyze");
    let o = Command::new("python3")
        .args(["-c", DUCKDB_SCRIPT, rec.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let summary = read_csv(&out.join("summary.csv"));
    let total = summary
        .rows
        .iter()
        .find(|r| r["dimension"] == "total" && r["value"] == "sip_messages")
        .unwrap()["count"]
        .parse::<u64>()
        .unwrap();
    assert!(total > 100);
    assert_eq!(got["rows"], total);
    let inputs = read_csv(&out.join("inputs.csv"));
    let want: BTreeMap<String, u64> = inputs
        .rows
        .iter()
        .filter(|r| r["sip_messages"] != "0")
        .map(|r| (r["file"].clone(), r["sip_messages"].parse().unwrap()))
        .collect();
    let by_file: BTreeMap<String, u64> = got["by_file"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(by_file, want);
    assert_eq!(got["types"]["partition_key"], "UBIGINT");
    assert_eq!(got["types"]["ts_ns"], "BIGINT");
    assert_eq!(got["types"]["status"], "USMALLINT");
    assert_eq!(got["types"]["reply_contacts"], "UBIGINT[]");
}

#[test]
fn unreadable_inputs_keep_their_errors_through_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = root().join("samples/h17-rotated-420/capture-2.pcap");
    let bytes = fs::read(root().join("samples/h17-rotated-420/capture-1.pcap")).unwrap();
    fs::write(d.join("cut.pcap"), &bytes[..bytes.len() - 7]).unwrap();
    fs::write(d.join("junk.pcap"), b"garbage\n").unwrap();
    fs::write(d.join("empty.pcap"), b"").unwrap();
    let caps: Vec<String> = ["cut.pcap", "junk.pcap", "empty.pcap"]
        .iter()
        .map(|n| d.join(n).to_string_lossy().into_owned())
        .chain([good.to_string_lossy().into_owned()])
        .collect();
    let rec = d.join("rec");
    let mut args = vec!["-o", rec.to_str().unwrap()];
    args.extend(caps.iter().map(String::as_str));
    let o = sipaudit("extract-records", &args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(fs::read_dir(&rec).unwrap().count(), 4, "a file per input");
    let (a, b) = (d.join("a"), d.join("b"));
    let mut args = vec!["--no-html", "-o", a.to_str().unwrap()];
    args.extend(caps.iter().map(String::as_str));
    let oa = analyze(&args);
    let ob = analyze(&[
        "--records",
        "--no-html",
        "-o",
        b.to_str().unwrap(),
        rec.to_str().unwrap(),
    ]);
    assert_eq!(oa.status.code(), Some(1));
    assert_eq!(ob.status.code(), Some(1));
    let errors = |o: &Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("sipaudit: error:"))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        errors(&oa).len(),
        3,
        "{}",
        String::from_utf8_lossy(&oa.stderr)
    );
    assert_eq!(errors(&oa), errors(&ob));
    for r in SAME {
        assert!(
            fs::read(a.join(r)).unwrap() == fs::read(b.join(r)).unwrap(),
            "{r} differs"
        );
    }
}
