//! The Spark job (scripts/spark/sipaudit_spark.py, README "Running on
//! Spark") for real: PySpark in local mode (`local[2]`), 4 partitions, on
//! every shipped sample plus a batch of rotated captures generated here
//! (scripts/spark/gen_rotated.py: calls every 250 ms cut every 5 s by
//! editcap, retries and hang-ups in later files than their failures). Its
//! sessions.csv, failures.csv, summary.csv and inputs.csv are byte for byte
//! those of `sipaudit analyze` on the same captures, and DuckDB reads the
//! counts of its summary.csv from its Parquet reports.
//!
//! Needs python3 with pyspark (and its pyarrow), a Java runtime, editcap
//! and duckdb: skipped with a `SKIPPED:` note without them (a failure
//! under SIPAUDIT_REQUIRE_ALL=1; .ci/run installs them).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{analyze, needs, ok, read_csv, root};

/// The spark-submit of the installed pyspark, or `None` after the skip.
fn spark_submit() -> Option<PathBuf> {
    let o = Command::new("python3")
        .args([
            "-c",
            "import os, pyspark, pyarrow, duckdb; print(os.path.join(os.path.dirname(pyspark.__file__), 'bin', 'spark-submit'))",
        ])
        .output();
    let java = Command::new("java").arg("-version").output();
    match (o, java) {
        (Ok(o), Ok(j)) if o.status.success() && j.status.success() => {
            let p = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            p.exists().then_some(p).or_else(|| {
                needs::skip("pyspark has no bin/spark-submit");
                None
            })
        }
        _ => {
            needs::skip(
                "needs python3 with pyspark[sql] and duckdb (`python3 -m pip install 'pyspark[sql]' duckdb`) \
                 and a Java runtime (`apt-get install -y openjdk-17-jre-headless`)",
            );
            None
        }
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_spark_job_gives_the_reports_of_analyze() {
    let Some(submit) = spark_submit() else {
        return;
    };
    if !needs::tool("editcap") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rot = dir.path().join("rotated");
    let o = Command::new("python3")
        .arg(root().join("scripts/spark/gen_rotated.py"))
        .args(["--out", s(&rot)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut inputs: Vec<String> = common::all_sample_captures()
        .iter()
        .map(|c| root().join(c).to_string_lossy().into_owned())
        .collect();
    let mut rotated: Vec<String> = fs::read_dir(&rot)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    rotated.sort();
    assert!(rotated.len() >= 20, "{} rotated captures", rotated.len());
    inputs.extend(rotated);
    let list = dir.path().join("inputs.txt");
    fs::write(&list, inputs.join("\n") + "\n").unwrap();

    let full = dir.path().join("analyze");
    let mut args = vec!["--no-html", "-o", s(&full)];
    args.extend(inputs.iter().map(String::as_str));
    ok(&analyze(&args), "analyze");

    // The default shuffle (records files per input and partition) at N=4,
    // and one Spark row per message at N=3.
    for (shuffle, n) in [("chunks", "4"), ("rows", "3")] {
        let out = dir.path().join(format!("spark-{shuffle}"));
        let work = dir.path().join(format!("work-{shuffle}"));
        let started = Instant::now();
        let o = Command::new(&submit)
            .args(["--master", "local[2]", "--conf", "spark.ui.enabled=false"])
            .arg(root().join("scripts/spark/sipaudit_spark.py"))
            .args([
                "--binary",
                env!("CARGO_BIN_EXE_sipaudit"),
                "--shuffle",
                shuffle,
            ])
            .args([
                "--inputs",
                s(&list),
                "--partitions",
                n,
                "--format",
                "csv,parquet",
            ])
            .args(["--out", s(&out), "--work", s(&work)])
            .output()
            .unwrap();
        let wall = started.elapsed();
        assert!(
            o.status.success(),
            "spark-submit: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // Shown with --nocapture: the wall time of the local-mode run.
        println!(
            "spark local[2] --shuffle {shuffle}: {} inputs, {n} partitions, {:.1} s wall",
            inputs.len(),
            wall.as_secs_f64()
        );
        for r in ["sessions.csv", "failures.csv", "summary.csv", "inputs.csv"] {
            let (a, b) = (
                fs::read(full.join(r)).unwrap(),
                fs::read(out.join(r)).unwrap(),
            );
            assert!(
                a == b,
                "{r}: the Spark job (--shuffle {shuffle}) differs from analyze"
            );
        }
        duckdb_counts(&out);
    }
    let out = dir.path().join("spark-chunks");
    // Retries whose failure is in another file, and every partition busy.
    let f = read_csv(&out.join("failures.csv"));
    let crossing = f
        .rows
        .iter()
        .filter(|r| !r["retry_file"].is_empty() && r["retry_file"] != r["failure_file"])
        .count();
    assert!(crossing >= 20, "{crossing} retries cross files");
    // AS-leg pairs (gen_rotated.py kind 5) whose legs have other partition
    // keys: route-records moved their second legs, the merge linked them.
    let s = read_csv(&out.join("sessions.csv"));
    let as_legs = s
        .rows
        .iter()
        .filter(|r| r["retry_link"] == "AS-leg")
        .count();
    assert_eq!(as_legs, 80, "one AS-leg link per kind-5 call");
    for shuffle in ["chunks", "rows"] {
        let routes =
            fs::read_to_string(dir.path().join(format!("work-{shuffle}/routes.tsv"))).unwrap();
        let moved = routes
            .lines()
            .filter(|l| !l.starts_with("sipaudit-routes") && !l.starts_with("input\t"))
            .count();
        assert_eq!(
            moved,
            80 * 5,
            "{shuffle}: the 5 messages of each second leg moved"
        );
    }
    for k in 0..4 {
        let p = dir
            .path()
            .join(format!("work-chunks/partition-{k:05}/sessions.csv"));
        assert!(read_csv(&p).rows.len() > 10, "partition {k}");
    }
}

/// DuckDB reads the merged Parquet reports with the counts of summary.csv.
fn duckdb_counts(out: &Path) {
    let script = r#"
import json, sys, duckdb
d = sys.argv[1]
q = lambda sql: duckdb.sql(sql.replace("DIR", d)).fetchall()
print(json.dumps({
    "sessions": q("SELECT count(*) FROM 'DIR/sessions.parquet'")[0][0],
    "failures": q("SELECT count(*) FROM 'DIR/failures.parquet'")[0][0],
    "outcome": dict(q("SELECT outcome, count(*) FROM 'DIR/sessions.parquet' GROUP BY 1")),
}))
"#;
    let o = Command::new("python3")
        .args(["-c", script, s(out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let summary = read_csv(&out.join("summary.csv"));
    let count = |dim: &str, v: &str| -> u64 {
        summary
            .rows
            .iter()
            .filter(|r| r["dimension"] == dim && (v.is_empty() || r["value"] == v))
            .map(|r| r["count"].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(got["sessions"], count("total", "sessions"));
    assert_eq!(got["failures"], count("failure_verdict", ""));
    for (outcome, n) in got["outcome"].as_object().unwrap() {
        assert_eq!(n.as_u64().unwrap(), count("outcome", outcome), "{outcome}");
    }
}
