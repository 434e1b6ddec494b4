//! `sipaudit merge-reports` (docs/records.md "Merging partitions"): the
//! reports of `analyze --records --partition K/N` for every K, merged, are
//! byte for byte those of `analyze` on the captures, for every golden
//! sample and for the batch of all of them, at N = 1, 2, 4 (and 3, 8, 16
//! on the batch); inputs that do not fit together are refused naming the
//! directory.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{analyze, ok, read_csv, root, sipaudit};

/// The merged reports must equal these of analyze.
const SAME: &[&str] = &["sessions.csv", "failures.csv", "summary.csv", "inputs.csv"];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs every partition of `n` over the records in `rec` into
/// `dir/p<n>-<k>`; returns the directories.
fn partitions(dir: &Path, rec: &Path, n: usize, policy: Option<&str>) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let out = dir.join(format!("p{n}-{k}"));
            let kn = format!("{k}/{n}");
            let mut args = vec!["--records", "--no-html", "--partition", &kn, "-o", s(&out)];
            if let Some(p) = policy {
                args.extend(["--policy", p]);
            }
            args.push(s(rec));
            ok(&analyze(&args), &kn);
            out
        })
        .collect()
}

fn merge(out: &Path, dirs: &[PathBuf]) -> Output {
    let mut args = vec!["-o", s(out)];
    args.extend(dirs.iter().map(|d| s(d)));
    sipaudit("merge-reports", &args)
}

fn assert_same(want: &Path, got: &Path, what: &str) {
    for r in SAME {
        let (a, b) = (
            fs::read(want.join(r)).unwrap(),
            fs::read(got.join(r)).unwrap(),
        );
        assert!(
            a == b,
            "{what}: {r} differs\n--- analyze\n{}\n--- merge-reports\n{}",
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
    }
}

/// Extracts `caps` into `dir/rec` and runs analyze on them into
/// `dir/full`.
fn prepare(dir: &Path, caps: &[String], policy: Option<&str>) -> (PathBuf, PathBuf) {
    let rec = dir.join("rec");
    let mut args = vec!["-o", s(&rec)];
    args.extend(caps.iter().map(String::as_str));
    ok(&sipaudit("extract-records", &args), "extract-records");
    let full = dir.join("full");
    let mut args = vec!["--no-html", "-o", s(&full)];
    if let Some(p) = policy {
        args.extend(["--policy", p]);
    }
    args.extend(caps.iter().map(String::as_str));
    ok(&analyze(&args), "analyze");
    (rec, full)
}

#[test]
fn merged_partitions_give_the_reports_of_every_sample() {
    for case in common::sample_cases() {
        let dir = tempfile::tempdir().unwrap();
        let policy = format!("samples/{case}/policy.toml");
        let policy = root().join(&policy).exists().then_some(policy.as_str());
        let (rec, full) = prepare(dir.path(), &common::sample_captures(&case), policy);
        for n in [1, 2, 4] {
            let dirs = partitions(dir.path(), &rec, n, policy);
            let out = dir.path().join(format!("merged-{n}"));
            ok(&merge(&out, &dirs), &case);
            assert_same(&full, &out, &format!("{case} N={n}"));
        }
    }
}

/// Sessions.csv rows of a report directory.
fn sessions(dir: &Path) -> usize {
    read_csv(&dir.join("sessions.csv")).rows.len()
}

/// The INCONSISTENT_EXPERIENCE count of a summary.csv.
fn inconsistent(dir: &Path) -> u64 {
    read_csv(&dir.join("summary.csv"))
        .rows
        .iter()
        .find(|r| r["dimension"] == "flag" && r["value"] == "INCONSISTENT_EXPERIENCE")
        .map_or(0, |r| r["count"].parse().unwrap())
}

#[test]
fn merged_partitions_of_a_multi_file_batch_give_its_reports() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, full) = prepare(dir.path(), &common::all_sample_captures(), None);
    let batch_flag = inconsistent(&full);
    assert!(
        batch_flag > 0,
        "the batch has INCONSISTENT_EXPERIENCE sessions"
    );
    for n in [1, 2, 3, 4, 8, 16] {
        let dirs = partitions(dir.path(), &rec, n, None);
        // The merge has work to do: sessions in several partitions, and a
        // batch-wide flag no partition decides alone.
        let busy = dirs.iter().filter(|d| sessions(d) > 0).count();
        assert!(n == 1 || busy > 1, "N={n}: sessions in {busy} partition(s)");
        if n == 4 {
            let local: u64 = dirs.iter().map(|d| inconsistent(d)).sum();
            assert_ne!(local, batch_flag, "N=4: the flag crosses partitions");
        }
        let out = dir.path().join(format!("merged-{n}"));
        ok(&merge(&out, &dirs), &format!("N={n}"));
        assert_same(&full, &out, &format!("batch N={n}"));
        // run.json describes the merged reports (sessions.csv and
        // failures.csv as they were written, the others read back).
        let m: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join("run.json")).unwrap()).unwrap();
        let files = m["files"].as_array().unwrap();
        assert!(files.iter().any(|f| f["name"] == "sessions.csv"));
        common::assert_files_described(&out, files);
    }
    // With --format parquet the twins are written too.
    let dirs: Vec<PathBuf> = (0..2).map(|k| dir.path().join(format!("p2-{k}"))).collect();
    let out = dir.path().join("merged-parquet");
    let mut args = vec!["-o", s(&out), "--format", "csv,parquet"];
    args.extend(dirs.iter().map(|d| s(d)));
    ok(&sipaudit("merge-reports", &args), "parquet");
    assert!(out.join("sessions.parquet").exists());
}

#[test]
fn inputs_that_do_not_fit_together_are_refused_naming_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let caps = common::sample_captures("auth-407");
    let (rec, full) = prepare(dir.path(), &caps, None);
    let two = partitions(dir.path(), &rec, 2, None);
    let four = partitions(dir.path(), &rec, 4, None);
    let refused = |dirs: &[PathBuf], named: &Path, says: &str| {
        let o = merge(&dir.path().join("bad"), dirs);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(s(named)) && err.contains(says), "{err}");
        assert!(!dir.path().join("bad/sessions.csv").exists());
    };
    refused(&four[..3], &four[0], "partition 3/4 is missing");
    refused(
        &[two[0].clone(), four[1].clone()],
        &four[1],
        "number of partitions N differs",
    );
    refused(
        &[two[0].clone(), two[0].clone()],
        &two[0],
        "partition 0/2 again",
    );
    // A plain analyze directory has no partition log.
    refused(
        std::slice::from_ref(&full),
        &full.join("partition.jsonl"),
        "--partition",
    );
    // A log cut short (the run did not end) has no trailer.
    let log = fs::read_to_string(two[1].join("partition.jsonl")).unwrap();
    let cut: Vec<&str> = log.lines().collect();
    fs::write(
        two[1].join("partition.jsonl"),
        cut[..cut.len() - 1].join("\n") + "\n",
    )
    .unwrap();
    refused(&two, &two[1].join("partition.jsonl"), "no trailer");
    // Another policy.
    let other = dir.path().join("other");
    ok(
        &analyze(&[
            "--records",
            "--no-html",
            "--partition",
            "1/2",
            "--policy",
            "samples/policies/no-relaxation.toml",
            "-o",
            s(&other),
            s(&rec),
        ]),
        "policy",
    );
    refused(&[two[0].clone(), other.clone()], &other, "policy differs");
}
