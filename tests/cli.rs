//! Command-line behaviour: exit status, bad inputs in a batch, determinism.

mod common;

use std::fs;
use std::process::Command;

use common::needs::{corpus, tool};
use common::{analyze, read_csv, root};

const GOOD: &str = "samples/ims-precondition-call/capture.pcap";

#[test]
fn bad_files_in_a_batch_are_named_and_the_good_one_is_analysed() {
    if !tool("editcap") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = fs::read(root().join(GOOD)).unwrap();
    // A truncated copy: the last record loses its final 10 bytes.
    fs::write(d.join("truncated.pcap"), &good[..good.len() - 10]).unwrap();
    // Garbage: deterministic pseudo-random bytes.
    let garbage: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(d.join("garbage.bin"), garbage).unwrap();
    fs::write(d.join("empty.pcap"), b"").unwrap();
    // A Microsoft Network Monitor 2 file made from the good capture.
    let st = Command::new("editcap")
        .args(["-F", "netmon2"])
        .arg(root().join(GOOD))
        .arg(d.join("netmon.cap"))
        .status()
        .unwrap();
    assert!(st.success(), "editcap -F netmon2 failed");

    let out = d.join("out");
    let o = analyze(&[
        "--messages",
        "-o",
        out.to_str().unwrap(),
        GOOD,
        d.join("truncated.pcap").to_str().unwrap(),
        d.join("garbage.bin").to_str().unwrap(),
        d.join("empty.pcap").to_str().unwrap(),
        d.join("netmon.cap").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {stderr}");
    for bad in ["truncated.pcap", "garbage.bin", "empty.pcap", "netmon.cap"] {
        assert!(stderr.contains(bad), "stderr does not name {bad}: {stderr}");
    }
    assert!(
        stderr.contains("byte offset"),
        "the truncation names its byte offset: {stderr}"
    );

    let inputs = read_csv(&out.join("inputs.csv"));
    assert_eq!(inputs.rows.len(), 5);
    let by_name = |n: &str| {
        inputs
            .rows
            .iter()
            .find(|r| r["file"].ends_with(n))
            .unwrap()
            .clone()
    };
    let g = by_name(GOOD);
    assert_eq!(g["error"], "");
    let t = by_name("truncated.pcap");
    assert!(
        t["error"].contains("truncated record at byte offset"),
        "{}",
        t["error"]
    );
    // Every packet before the cut is kept.
    let gp: u64 = g["packets"].parse().unwrap();
    let tp: u64 = t["packets"].parse().unwrap();
    assert_eq!(tp, gp - 1);
    for n in ["garbage.bin", "empty.pcap", "netmon.cap"] {
        let r = by_name(n);
        assert!(!r["error"].is_empty(), "{n} has no error");
        assert_eq!(r["packets"], "0");
    }
    // The good capture is fully analysed: its messages are all there.
    let msgs = read_csv(&out.join("messages.csv"));
    let from_good = msgs.rows.iter().filter(|r| r["file"] == GOOD).count() as u64;
    assert_eq!(from_good.to_string(), g["sip_messages"]);
    assert!(from_good > 0);
}

#[test]
fn huge_record_length_stops_the_file_with_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut good = fs::read(root().join(GOOD)).unwrap();
    // Corrupt the first record's caplen (offset 24 + 8) to 2 GB.
    let le = good[0] == 0xd4; // little-endian magic d4 c3 b2 a1
    let v: u32 = 0x8000_0000;
    let b = if le { v.to_le_bytes() } else { v.to_be_bytes() };
    good[32..36].copy_from_slice(&b);
    let f = dir.path().join("huge.pcap");
    fs::write(&f, good).unwrap();
    let out = dir.path().join("out");
    let o = analyze(&["-o", out.to_str().unwrap(), f.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("implausible record length 2147483648 at byte offset 24"),
        "{stderr}"
    );
}

#[test]
fn output_is_identical_for_any_jobs_and_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let Some(c) = corpus() else { return };
    let a = c.join("sngrep").to_string_lossy().into_owned();
    let b = c.join("open5gs").to_string_lossy().into_owned();
    let samples = common::all_sample_captures();
    let fwd: Vec<&str> = samples.iter().map(String::as_str).collect();
    let rev: Vec<&str> = fwd.iter().rev().copied().collect();
    let mut j1 = vec!["-j", "1", &a, &b];
    j1.extend(&fwd);
    let mut j2 = vec!["-j", "2", &a, &b];
    j2.extend(&fwd);
    let mut j4 = vec!["-j", "4", &a, &b];
    j4.extend(&fwd);
    let mut r = vec!["-j", "2"];
    r.extend(&rev);
    r.extend([b.as_str(), a.as_str()]);
    // -j5: the rules thread and two helpers digesting each file's messages
    // (src/pipeline/digest.rs); batches of two messages send every file
    // round them. -j4 has the rules thread and one helper; -j1 neither;
    // -j2 the rules thread, and a helper that each file's thread borrows
    // until the merge begins (src/pipeline/decode.rs has the test of a
    // helper given back part way through a file).
    let mut j5 = vec!["-j", "5", &a, &b];
    j5.extend(&fwd);
    // The same with every other batch digested on the file's thread
    // (SIPAUDIT_DIGEST_LOCAL=alternate), as when the helpers are full.
    let j5local = j5.clone();
    // The tracking partitions (src/pipeline/track.rs) run on one thread
    // with -j1 and on a pool of N with -jN; tests/partitions.rs has the
    // same check on a capture of 2,000 calls.
    let runs: [(&str, Vec<&str>); 6] = [
        ("j1", j1),
        ("j2", j2),
        ("j4", j4),
        ("rev", r),
        ("j5", j5),
        ("j5local", j5local),
    ];
    let mut outputs = Vec::new();
    for (name, args) in &runs {
        let out = dir.path().join(name);
        let mut all = vec!["--messages", "-o", out.to_str().unwrap()];
        all.extend(args.iter().copied());
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"))
            .current_dir(root())
            .arg("analyze")
            .args(&all)
            .env(
                "SIPAUDIT_DIGEST_BATCH",
                if name.starts_with("j5") { "2" } else { "512" },
            )
            .env(
                "SIPAUDIT_DIGEST_LOCAL",
                if *name == "j5local" { "alternate" } else { "" },
            )
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        outputs.push(out);
    }
    for r in [
        "sessions.csv",
        "failures.csv",
        "messages.csv",
        "inputs.csv",
        "anomalies.csv",
        "summary.csv",
    ] {
        let first = fs::read(outputs[0].join(r)).unwrap();
        assert!(first.len() > 100, "{r} is suspiciously small");
        for o in &outputs[1..] {
            assert_eq!(
                first,
                fs::read(o.join(r)).unwrap(),
                "{r} differs in {}",
                o.display()
            );
        }
    }
}

/// The other exit-2 cases (no input exists, a bad `--out`) are in
/// tests/edge_errors.rs.
#[test]
fn usage_errors_are_exit_2() {
    assert_eq!(analyze(&[]).status.code(), Some(2), "no INPUT");
    assert_eq!(
        analyze(&["--progress", "sometimes", GOOD]).status.code(),
        Some(2)
    );
}

/// Sessions held back by a long-lived one are spilled to sorted run files
/// and merged at the end (src/pipeline/spill.rs): with a spill limit of one
/// row the reports are byte for byte those of an in-memory run, and no run
/// file is left behind.
#[test]
fn spilled_session_rows_give_the_same_reports() {
    let dir = tempfile::tempdir().unwrap();
    let Some(c) = corpus() else { return };
    // The whole corpus: its calls without BYE stay live to the end and hold
    // every later session back.
    let inputs = [c.to_string_lossy().into_owned()];
    let mut outs = Vec::new();
    for (name, spill) in [("mem", None), ("spill", Some("1"))] {
        let out = dir.path().join(name);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"));
        cmd.current_dir(root())
            .args(["analyze", "-o", out.to_str().unwrap()])
            .args(&inputs);
        if let Some(n) = spill {
            // Spilled from the rules thread (--jobs 3), in memory inline.
            cmd.env("SIPAUDIT_SPILL_ROWS", n).args(["-j", "3"]);
        } else {
            cmd.args(["-j", "1"]);
        }
        let o = cmd.output().unwrap();
        // The corpus holds SOURCES.md and a NetXRay file: exit 1.
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.contains("sorted run files"),
            spill.is_some(),
            "the spilled run goes through run files, the other does not: {stderr}"
        );
        outs.push(out);
    }
    for r in ["sessions.csv", "failures.csv", "summary.csv"] {
        let a = fs::read(outs[0].join(r)).unwrap();
        assert!(a.len() > 200, "{r}");
        for o in &outs[1..] {
            assert_eq!(a, fs::read(o.join(r)).unwrap(), "{r} of {}", o.display());
        }
    }
    let leftovers: Vec<_> = fs::read_dir(&outs[1])
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".sipaudit"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// At the end of a capture every open session is finalised in steps of
/// `SIPAUDIT_FINISH_STEP` sessions, round by round over the partitions or
/// (`SIPAUDIT_FINISH_ORDER=partitions`) partition after partition, each
/// step handed to the rules stage before the next (src/pipeline/track.rs
/// `Tracking::finish`, track/end.rs). With a step of one session, on the
/// whole corpus (whose calls without BYE are open at its end), the reports
/// are byte for byte those of finishing all at once (step 0), at another
/// `--jobs`, in either order.
#[test]
fn finishing_open_sessions_in_steps_gives_the_same_reports() {
    let dir = tempfile::tempdir().unwrap();
    let Some(c) = corpus() else { return };
    let mut outs = Vec::new();
    for (name, step, jobs, order) in [
        ("one", "0", "1", "rounds"),
        ("steps", "1", "2", "rounds"),
        ("partitions", "1", "2", "partitions"),
    ] {
        let out = dir.path().join(name);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"));
        cmd.current_dir(root())
            .args(["analyze", "--messages", "--no-html", "-j", jobs, "-o"])
            .arg(&out)
            .arg(&c);
        cmd.env("SIPAUDIT_FINISH_STEP", step);
        cmd.env("SIPAUDIT_FINISH_ORDER", order);
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        outs.push(out);
    }
    let open_at_end = fs::read_to_string(outs[0].join("sessions.csv"))
        .unwrap()
        .lines()
        .filter(|l| l.contains(",TRUNCATED,"))
        .count();
    assert!(open_at_end >= 5, "sessions open at the end: {open_at_end}");
    for r in [
        "sessions.csv",
        "failures.csv",
        "summary.csv",
        "messages.csv",
    ] {
        let a = fs::read(outs[0].join(r)).unwrap();
        assert!(a.len() > 200, "{r}");
        for o in &outs[1..] {
            assert_eq!(a, fs::read(o.join(r)).unwrap(), "{r} of {}", o.display());
        }
    }
}

/// With a rules thread (`-j2`), the tracking thread evaluates and encodes
/// sessions itself while it has time to spare (src/pipeline/slack.rs), and
/// once the capture has ended while the rules stage's channel is full
/// (src/pipeline/stage.rs `RulesStage::send`); `SIPAUDIT_SEND_PREPARED`
/// makes it do so for every session (`always`) or for none while the
/// capture is read (`never`), whatever the timing. On the corpus and every
/// sample, finished in steps of one session, the reports of each are byte
/// for byte those of `-j1`, which has no rules thread.
#[test]
fn sessions_prepared_by_the_tracking_thread_give_the_same_reports() {
    let dir = tempfile::tempdir().unwrap();
    let Some(c) = corpus() else { return };
    let samples: Vec<_> = fs::read_dir(root().join("samples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .flat_map(|e| fs::read_dir(e.path()).into_iter().flatten())
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("capture.pcap"))
        })
        .collect();
    assert!(samples.len() >= 10, "samples: {}", samples.len());
    let mut outs = Vec::new();
    let runs = [
        ("j1", "1", None),
        ("j2", "2", Some("always")),
        ("j2n", "2", Some("never")),
    ];
    for (name, jobs, prepared) in runs {
        let out = dir.path().join(name);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"));
        cmd.current_dir(root())
            .args(["analyze", "-j", jobs, "-o"])
            .arg(&out)
            .arg(&c)
            .args(&samples)
            .env("SIPAUDIT_FINISH_STEP", "1");
        if let Some(p) = prepared {
            cmd.env("SIPAUDIT_SEND_PREPARED", p);
        }
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        outs.push(out);
    }
    for r in ["sessions.csv", "failures.csv", "summary.csv", "report.html"] {
        let a = fs::read(outs[0].join(r)).unwrap();
        assert!(a.len() > 200, "{r}");
        for o in &outs[1..] {
            assert_eq!(a, fs::read(o.join(r)).unwrap(), "{r} of {}", o.display());
        }
    }
}

/// `--progress always` with stderr not a terminal (a pipe here) prints
/// plain lines of bytes read: at least the final one, which names the
/// inputs' total size (compressed bytes for a compressed file); `never`
/// and `auto` (not a terminal) print none.
#[test]
fn progress_always_prints_bytes_of_the_total_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let plain = fs::read(root().join(GOOD)).unwrap();
    let gz = dir.path().join("copy.pcap.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut e, &plain).unwrap();
    fs::write(&gz, e.finish().unwrap()).unwrap();
    let total = plain.len() as u64 + fs::metadata(&gz).unwrap().len();
    let out = dir.path().join("out");
    let args = |mode: &'static str| {
        vec![
            "--progress".to_string(),
            mode.to_string(),
            "-o".to_string(),
            out.to_str().unwrap().to_string(),
            GOOD.to_string(),
            gz.to_str().unwrap().to_string(),
        ]
    };
    let run = |mode| {
        let a = args(mode);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = analyze(&a);
        assert_eq!(o.status.code(), Some(0));
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let stderr = run("always");
    let want = format!(
        "sipaudit: read {} of {} (100 %)",
        indicatif::HumanBytes(total),
        indicatif::HumanBytes(total)
    );
    let last = stderr
        .lines()
        .rfind(|l| l.starts_with("sipaudit: read "))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    assert!(last.starts_with(&want), "{last} / {want}");
    assert!(last.contains("/s, in "), "{last}");
    for mode in ["never", "auto"] {
        assert!(!run(mode).contains("sipaudit: read "), "{mode}");
    }
}
