//! Session tracking in partitions (src/pipeline/track.rs): a B2BUA leg
//! whose From/To pair lands in another partition is still linked as an
//! AS-leg retry, and a capture of many calls (retries, AS-legs, timeouts,
//! retransmissions, more records than one batch, longer than W0) gives the
//! same reports for every `--jobs` and input order.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{analyze, build, read_csv};
use sipaudit::dialog::{partition_key, partition_of};
use sipaudit::pipeline::PARTITIONS;

const T0: u32 = 1_700_000_000;

/// A UDP packet between the two test hosts at `ms` after T0.
fn push(cap: &mut build::Pcap, ms: u64, to_callee: bool, payload: &[u8]) {
    let (s, d) = if to_callee {
        ([10, 0, 0, 1], [10, 0, 0, 2])
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1])
    };
    let l3 = build::ipv4(s, d, 17, None, &build::udp(5060, 5060, payload));
    let (sec, usec) = ((ms / 1000) as u32, ((ms % 1000) * 1000) as u32);
    cap.push(T0 + sec, usec, build::ethernet(&[], 0x0800, &l3));
}

/// One SIP message; `from`/`to` are URIs, tags optional.
struct Msg<'a> {
    start: &'a str,
    call: &'a str,
    branch: &'a str,
    from: (&'a str, &'a str),
    to: (&'a str, &'a str),
    cseq: &'a str,
    extra: &'a str,
}

impl Msg<'_> {
    fn bytes(&self) -> Vec<u8> {
        let tag = |t: &str| {
            if t.is_empty() {
                String::new()
            } else {
                format!(";tag={t}")
            }
        };
        format!(
            "{}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{}\r\nMax-Forwards: 70\r\n\
From: <{}>{}\r\nTo: <{}>{}\r\nCall-ID: {}\r\nCSeq: {}\r\n\
Contact: <sip:ue@10.0.0.1:5060>\r\n{}Content-Length: 0\r\n\r\n",
            self.start,
            self.branch,
            self.from.0,
            tag(self.from.1),
            self.to.0,
            tag(self.to.1),
            self.call,
            self.cseq,
            self.extra
        )
        .into_bytes()
    }

    fn resp(&self, status: &str, to_tag: &str, extra: &str) -> Vec<u8> {
        Msg {
            start: status,
            to: (self.to.0, to_tag),
            extra,
            ..*self
        }
        .bytes()
    }
}

fn partition_of_pair(from: &str, to: &str) -> usize {
    let m = Msg {
        start: "INVITE sip:x@y SIP/2.0",
        call: "k",
        branch: "k",
        from: (from, "f"),
        to: (to, ""),
        cseq: "1 INVITE",
        extra: "",
    }
    .bytes();
    let msg = sipaudit::sip::parse_message(&m, sipaudit::sip::Framing::Datagram).unwrap();
    partition_of(partition_key(&msg), PARTITIONS)
}

const SID: &str = "Session-ID: ab30317f1a784dc48ff824d0d3715d86\r\n";
const UNSUP: &str = "Unsupported: precondition\r\n";

/// A failed leg and its B2BUA leg (another From and To, the same
/// Session-ID) that succeeds, at `t` ms.
fn as_leg_pair(cap: &mut build::Pcap, t: u64, i: usize, p_from: &str, n_from: &str, sid: &str) {
    let callee = "sip:bob@voip.example.net";
    let (c1, c2) = (format!("as{i}-1"), format!("as{i}-2"));
    let (b1, b2) = (format!("as{i}a"), format!("as{i}b"));
    let extra = format!("Require: precondition\r\n{sid}");
    let p = Msg {
        start: "INVITE sip:bob@voip.example.net SIP/2.0",
        call: &c1,
        branch: &b1,
        from: (p_from, "f1"),
        to: (callee, ""),
        cseq: "1 INVITE",
        extra: &extra,
    };
    push(cap, t, true, &p.bytes());
    push(
        cap,
        t + 10,
        false,
        &p.resp("SIP/2.0 420 Bad Extension", "t1", UNSUP),
    );
    let ack = Msg {
        start: "ACK sip:bob@voip.example.net SIP/2.0",
        cseq: "1 ACK",
        to: (callee, "t1"),
        ..p
    };
    push(cap, t + 20, true, &ack.bytes());
    let n = Msg {
        start: "INVITE sip:carol@voip.example.net SIP/2.0",
        call: &c2,
        branch: &b2,
        from: (n_from, "f9"),
        to: ("sip:carol@voip.example.net", ""),
        cseq: "1 INVITE",
        extra: sid,
    };
    push(cap, t + 500, true, &n.bytes());
    push(cap, t + 510, false, &n.resp("SIP/2.0 200 OK", "t2", ""));
    let ack = Msg {
        start: "ACK sip:carol@voip.example.net SIP/2.0",
        cseq: "1 ACK",
        to: (n.to.0, "t2"),
        branch: &format!("{b2}x"),
        ..n
    };
    push(cap, t + 520, true, &ack.bytes());
    // The callee hangs up: From and To swapped (the same pair key).
    let bye = Msg {
        start: "BYE sip:ue@10.0.0.1:5060 SIP/2.0",
        branch: &format!("{b2}y"),
        from: (n.to.0, "t2"),
        to: (n.from.0, "f9"),
        cseq: "1 BYE",
        extra: "",
        ..n
    };
    push(cap, t + 900, false, &bye.bytes());
    push(cap, t + 910, true, &bye.resp("SIP/2.0 200 OK", "f9", ""));
}

fn run(out: &Path, jobs: &str, inputs: &[&Path]) -> PathBuf {
    run_stepped(out, jobs, inputs, None)
}

/// [`run`], with the sessions open at the end finalised `step` at a time
/// (`SIPAUDIT_FINISH_STEP`, src/pipeline/track.rs) when given.
fn run_stepped(out: &Path, jobs: &str, inputs: &[&Path], step: Option<&str>) -> PathBuf {
    let mut args = vec!["--messages", "-j", jobs, "-o", out.to_str().unwrap()];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"));
    cmd.current_dir(common::root()).arg("analyze").args(&args);
    if let Some(n) = step {
        cmd.env("SIPAUDIT_FINISH_STEP", n);
    }
    let o = cmd.output().expect("run sipaudit");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.to_path_buf()
}

const REPORTS: [&str; 5] = [
    "sessions.csv",
    "failures.csv",
    "messages.csv",
    "anomalies.csv",
    "summary.csv",
];

fn assert_same(outs: &[PathBuf]) {
    for r in REPORTS {
        let first = fs::read(outs[0].join(r)).unwrap();
        for o in &outs[1..] {
            assert!(
                first == fs::read(o.join(r)).unwrap(),
                "{r} differs between {} and {}",
                outs[0].display(),
                o.display()
            );
        }
    }
}

#[test]
fn an_as_leg_in_another_partition_is_linked_at_every_jobs() {
    let p_from = "sip:+491701234567@ims.example";
    // A B2BUA leg whose From/To pair lands in another partition.
    let n_from = (0..100)
        .map(|k| format!("sip:ibcf{k}@border.example"))
        .find(|n| {
            partition_of_pair(n, "sip:carol@voip.example.net")
                != partition_of_pair(p_from, "sip:bob@voip.example.net")
        })
        .expect("some pair lands elsewhere");
    let mut cap = build::Pcap::new(1);
    as_leg_pair(&mut cap, 0, 0, p_from, &n_from, SID);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asleg.pcap");
    fs::write(&path, cap.bytes()).unwrap();
    let outs: Vec<PathBuf> = ["1", "2", "3"]
        .iter()
        .map(|j| run(&dir.path().join(format!("j{j}")), j, &[&path]))
        .collect();
    assert_same(&outs);
    let s = read_csv(&outs[0].join("sessions.csv"));
    assert_eq!(s.rows.len(), 1, "both legs are one session");
    let row = &s.rows[0];
    assert_eq!(row["retry_link"], "AS-leg");
    assert_eq!(row["retry_call_id"], "as0-2");
    assert_eq!(row["outcome"], "ESTABLISHED");
    let m = read_csv(&outs[0].join("messages.csv"));
    assert_eq!(m.rows.len(), 8);
    assert!(m.rows.iter().all(|r| r["session"] == "1"), "every message");
}

/// `calls` calls of four kinds, one every 40 ms, each from its own
/// subscriber: a 420 and a relaxed retry in the same Call-ID; a plain call
/// the callee ends; an AS-leg pair; an unanswered INVITE retransmitted.
/// Call `i` goes to file `i % files`.
/// `n` unanswered INVITEs of distinct callers (so of many partitions), all
/// at `ms`: they are still undecided when the capture ends there, so every
/// partition hands out session ids at the capture's end.
fn tail_capture(dir: &Path, ms: u64, n: usize) -> PathBuf {
    let mut cap = build::Pcap::new(1);
    for i in 0..n {
        let from = format!("sip:+4930{i:08}@ims.example");
        let call = format!("tail{i}");
        let m = Msg {
            start: "INVITE sip:bob@voip.example.net SIP/2.0",
            call: &call,
            branch: "t",
            from: (&from, "f"),
            to: ("sip:bob@voip.example.net", ""),
            cseq: "1 INVITE",
            extra: "",
        };
        push(&mut cap, ms, true, &m.bytes());
    }
    let p = dir.join("tail.pcap");
    fs::write(&p, cap.bytes()).unwrap();
    p
}

fn busy_capture(dir: &Path, calls: usize, files: usize) -> Vec<PathBuf> {
    let mut caps: Vec<build::Pcap> = (0..files).map(|_| build::Pcap::new(1)).collect();
    let callee = "sip:bob@voip.example.net";
    for i in 0..calls {
        let cap = &mut caps[i % files];
        let t = i as u64 * 40;
        let from = format!("sip:+4917{i:08}@ims.example");
        let call = format!("busy{i}");
        let inv = |branch: &'static str, cseq: &'static str, extra: &'static str| Msg {
            start: "INVITE sip:bob@voip.example.net SIP/2.0",
            call: "",
            branch,
            from: ("", "f"),
            to: (callee, ""),
            cseq,
            extra,
        };
        match i % 4 {
            0 => {
                let mut p = inv("a", "1 INVITE", "Require: precondition\r\n");
                (p.call, p.from.0) = (&call, &from);
                push(cap, t, true, &p.bytes());
                push(
                    cap,
                    t + 5,
                    false,
                    &p.resp("SIP/2.0 420 Bad Extension", "x", UNSUP),
                );
                let ack = Msg {
                    start: "ACK sip:bob@voip.example.net SIP/2.0",
                    cseq: "1 ACK",
                    to: (callee, "x"),
                    ..p
                };
                push(cap, t + 8, true, &ack.bytes());
                let mut n = inv("b", "2 INVITE", "Supported: precondition\r\n");
                (n.call, n.from.0) = (&call, &from);
                push(cap, t + 300, true, &n.bytes());
                push(cap, t + 310, false, &n.resp("SIP/2.0 200 OK", "y", ""));
                let ack = Msg {
                    start: "ACK sip:bob@voip.example.net SIP/2.0",
                    branch: "c",
                    cseq: "2 ACK",
                    to: (callee, "y"),
                    ..n
                };
                push(cap, t + 320, true, &ack.bytes());
            }
            1 => {
                let mut p = inv("a", "1 INVITE", "");
                (p.call, p.from.0) = (&call, &from);
                push(cap, t, true, &p.bytes());
                push(cap, t + 5, false, &p.resp("SIP/2.0 180 Ringing", "y", ""));
                push(cap, t + 50, false, &p.resp("SIP/2.0 200 OK", "y", ""));
                let ack = Msg {
                    start: "ACK sip:bob@voip.example.net SIP/2.0",
                    branch: "c",
                    cseq: "1 ACK",
                    to: (callee, "y"),
                    ..p
                };
                push(cap, t + 60, true, &ack.bytes());
                let bye = Msg {
                    start: "BYE sip:ue@10.0.0.1:5060 SIP/2.0",
                    branch: "d",
                    from: (callee, "y"),
                    to: (&from, "f"),
                    cseq: "1 BYE",
                    ..p
                };
                push(cap, t + 2000, false, &bye.bytes());
                push(cap, t + 2010, true, &bye.resp("SIP/2.0 200 OK", "f", ""));
            }
            2 => {
                let sid = format!("Session-ID: {i:032x}\r\n");
                let n_from = format!("sip:ibcf{i}@border.example");
                as_leg_pair(cap, t, i, &from, &n_from, &sid);
            }
            _ => {
                let mut p = inv("a", "1 INVITE", "");
                (p.call, p.from.0) = (&call, &from);
                push(cap, t, true, &p.bytes());
                push(cap, t + 500, true, &p.bytes());
            }
        }
    }
    caps.iter()
        .enumerate()
        .map(|(k, c)| {
            // Packets of one call interleave with the next calls': sort.
            let mut c = build::Pcap {
                records: c.records.clone(),
                ..build::Pcap::new(1)
            };
            c.records.sort_by_key(|r| r.0);
            let p = dir.join(format!("busy-{k}.pcap"));
            fs::write(&p, c.bytes()).unwrap();
            p
        })
        .collect()
}

#[test]
fn many_calls_give_the_same_reports_for_any_jobs_and_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let calls = 2000;
    let files = busy_capture(dir.path(), calls, 2);
    let (a, b) = (files[0].as_path(), files[1].as_path());
    let outs = vec![
        run(&dir.path().join("j1"), "1", &[a, b]),
        run(&dir.path().join("j2"), "2", &[a, b]),
        run(&dir.path().join("j4-rev"), "4", &[b, a]),
        run(&dir.path().join("j2-rev"), "2", &[b, a]),
    ];
    assert_same(&outs);
    let s = read_csv(&outs[0].join("sessions.csv"));
    assert_eq!(s.rows.len(), calls, "one session per call");
    let links = |rule: &str| s.rows.iter().filter(|r| r["retry_link"] == rule).count();
    assert_eq!(links("H0"), calls / 4);
    assert_eq!(links("AS-leg"), calls / 4);
    let ids: Vec<u64> = s
        .rows
        .iter()
        .map(|r| r["session"].parse().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=calls as u64).collect::<Vec<_>>(), "ids 1..=N");
    let m = read_csv(&outs[0].join("messages.csv"));
    assert!(m.rows.iter().all(|r| !r["session"].is_empty()));
}

/// Runs `analyze --messages -j JOBS` on `input` into `dir/name`, laned
/// (`SIPAUDIT_LANES=on`, rounds of 97 packets) or never (`off`).
fn run_lanes(dir: &Path, name: &str, jobs: &str, laned: bool, input: &Path) -> PathBuf {
    let out = dir.join(name);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .current_dir(common::root())
        .env("SIPAUDIT_LANES", if laned { "on" } else { "off" })
        .env("SIPAUDIT_LANE_ROUND", "97")
        .args(["analyze", "--messages", "--no-html", "-j", jobs, "-o"])
        .arg(&out)
        .arg(input)
        .output()
        .expect("run sipaudit");
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}: {}",
        input.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The reports of `input` laned at each of `jobs` equal one decoder's
/// (inputs.csv included); returns the one decoder's output directory.
fn assert_lanes_match(dir: &Path, input: &Path, jobs: &[&str]) -> PathBuf {
    let mut outs = vec![run_lanes(dir, "one", "1", false, input)];
    for j in jobs {
        outs.push(run_lanes(dir, &format!("lanes-j{j}"), j, true, input));
    }
    for r in REPORTS.iter().chain(["inputs.csv"].iter()) {
        let first = fs::read(outs[0].join(r)).unwrap();
        for o in &outs[1..] {
            assert!(
                first == fs::read(o.join(r)).unwrap(),
                "{}: {r} differs laned ({})",
                input.display(),
                o.display()
            );
        }
    }
    for o in &outs[1..] {
        fs::remove_dir_all(o).unwrap();
    }
    outs.remove(0)
}

/// One large file is decoded in lanes (src/pipeline/lanes.rs: plain UDP
/// spread over 4 decoders, everything stateful in one), in rounds; the
/// reports equal those of one decoder for every `--jobs`: the busy capture
/// as one file, and samples with TCP, IPv6 fragments and retransmissions.
/// (It fails when stateful packets are dealt like plain UDP.)
#[test]
fn one_large_file_decoded_in_lanes_gives_the_reports_of_one_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let busy = busy_capture(dir.path(), 2000, 1).remove(0);
    let one = assert_lanes_match(dir.path(), &busy, &["1", "2", "4"]);
    let s = read_csv(&one.join("sessions.csv"));
    assert_eq!(s.rows.len(), 2000, "one session per call");
    fs::remove_dir_all(one).unwrap();
    // The records files (frame, sequence and every field) too.
    let records = |lanes: &str| {
        let out = dir.path().join(format!("records-{lanes}"));
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"))
            .env("SIPAUDIT_LANES", lanes)
            .env("SIPAUDIT_LANE_ROUND", "97")
            .args(["extract-records", "-j", "2", "-o"])
            .arg(&out)
            .arg(&busy)
            .output()
            .expect("run sipaudit");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        fs::read(out.join("busy-0.pcap.records.parquet")).unwrap()
    };
    assert!(records("on") == records("off"), "records differ laned");
    let root = common::root();
    for case in ["tcp-tn", "fragmented-invite-v6", "udp-retrans-invite-420"] {
        let input = root.join("samples").join(case).join("capture.pcap");
        let one = assert_lanes_match(dir.path(), &input, &["1", "2", "4"]);
        fs::remove_dir_all(one).unwrap();
    }
}

/// Every sample capture, and every capture of the public corpus (tunnels,
/// SCTP, WebSocket, HEP, damaged files; skipped with a note without it),
/// gives the same reports laned as with one decoder.
#[test]
fn every_sample_and_corpus_capture_reads_the_same_in_lanes() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = samples_and_corpus();
    for input in &inputs {
        let one = assert_lanes_match(dir.path(), input, &["1", "3"]);
        fs::remove_dir_all(one).unwrap();
    }
}

/// Every sample capture and every capture of the public corpus (when it
/// is there; skipped with a note otherwise), sorted.
fn samples_and_corpus() -> Vec<PathBuf> {
    let root = common::root();
    let mut inputs: Vec<PathBuf> = common::all_sample_captures()
        .iter()
        .map(|c| root.join(c))
        .collect();
    if let Some(corpus) = common::needs::corpus() {
        let mut stack = vec![corpus];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_none_or(|x| x != "md") {
                    inputs.push(p);
                }
            }
        }
    }
    inputs.sort();
    inputs
}

/// At the end of a capture the sessions still open are finalised a step at
/// a time, partition after partition (`Tracking::finish`); session ids
/// handed out then must come out as in one pass, whatever the step, jobs or
/// input order.
#[test]
fn sessions_open_at_the_end_are_numbered_alike_for_any_finish_step() {
    let dir = tempfile::tempdir().unwrap();
    let calls = 400;
    let files = busy_capture(dir.path(), calls, 2);
    let tail = tail_capture(dir.path(), calls as u64 * 40 + 3000, 64);
    let (a, b, t) = (files[0].as_path(), files[1].as_path(), tail.as_path());
    let outs = vec![
        run_stepped(&dir.path().join("j1-one-pass"), "1", &[a, b, t], Some("0")),
        run(&dir.path().join("j1"), "1", &[a, b, t]),
        run_stepped(&dir.path().join("j2-step1"), "2", &[a, b, t], Some("1")),
        run_stepped(&dir.path().join("j1-step7"), "1", &[t, b, a], Some("7")),
    ];
    assert_same(&outs);
    let s = read_csv(&outs[0].join("sessions.csv"));
    assert_eq!(s.rows.len(), calls + 64);
    let ids: std::collections::BTreeSet<u64> = (0..64)
        .map(|i| {
            let from = format!("sip:+4930{i:08}@ims.example");
            let r = s
                .rows
                .iter()
                .find(|r| r["from_uri"] == from)
                .expect("tail row");
            r["session"].parse().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 64, "one session per tail INVITE");
}

fn sipaudit(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .args(args)
        .output()
        .expect("run sipaudit")
}

/// `merge-reports` over the partition runs of N = `n` of the records in
/// `rec` (docs/records.md "Merging partitions").
fn merged(dir: &Path, rec: &Path, n: usize) -> std::process::Output {
    merged_routed(dir, rec, n, None)
}

/// [`merged`], the partitions cut by the routes file `routes`.
fn merged_routed(dir: &Path, rec: &Path, n: usize, routes: Option<&Path>) -> std::process::Output {
    let dirs: Vec<String> = (0..n)
        .map(|k| {
            let out = dir.join(format!("p{n}-{k}"));
            let kn = format!("{k}/{n}");
            let mut args = vec![
                "--records",
                "--no-html",
                "--partition",
                &kn,
                "-o",
                out.to_str().unwrap(),
                rec.to_str().unwrap(),
            ];
            if let Some(r) = routes {
                args.extend(["--routes", r.to_str().unwrap()]);
            }
            let o = analyze(&args);
            assert_eq!(o.status.code(), Some(0), "{kn}");
            out.to_str().unwrap().to_string()
        })
        .collect();
    let out = dir.join(format!("merged-{n}"));
    let mut args = vec!["merge-reports", "-o", out.to_str().unwrap()];
    args.extend(dirs.iter().map(String::as_str));
    sipaudit(&args)
}

#[test]
fn merge_reports_refuses_an_as_leg_split_between_partitions() {
    let p_from = "sip:+491701234567@ims.example";
    let key = |from: &str, to: &str| {
        let m = format!(
            "INVITE sip:x@y SIP/2.0\r\nFrom: <{from}>;tag=f\r\nTo: <{to}>\r\nCall-ID: k\r\nCSeq: 1 INVITE\r\n\r\n"
        );
        let msg =
            sipaudit::sip::parse_message(m.as_bytes(), sipaudit::sip::Framing::Datagram).unwrap();
        partition_key(&msg)
    };
    let first = key(p_from, "sip:bob@voip.example.net");
    // A B2BUA leg whose pair is in the other half (N = 2).
    let n_from = (0..100)
        .map(|k| format!("sip:ibcf{k}@border.example"))
        .find(|n| partition_of(key(n, "sip:carol@voip.example.net"), 2) != partition_of(first, 2))
        .expect("some pair lands in the other half");
    let mut cap = build::Pcap::new(1);
    as_leg_pair(&mut cap, 0, 0, p_from, &n_from, SID);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("asleg.pcap");
    fs::write(&path, cap.bytes()).unwrap();
    let rec = dir.path().join("rec");
    let o = sipaudit(&[
        "extract-records",
        "-o",
        rec.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let full = run(&dir.path().join("full"), "1", &[&path]);
    // One partition: the legs are tracked together, the merge is exact.
    assert_eq!(merged(dir.path(), &rec, 1).status.code(), Some(0));
    for r in ["sessions.csv", "failures.csv", "summary.csv"] {
        assert_eq!(
            fs::read(full.join(r)).unwrap(),
            fs::read(dir.path().join("merged-1").join(r)).unwrap(),
            "{r}"
        );
    }
    // Two: the legs are in different partitions; merging them would give
    // two sessions where analyze gives one, so the merge refuses.
    let o = merged(dir.path(), &rec, 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("B2BUA/AS leg") && err.contains("p2-"), "{err}");
    assert!(
        !dir.path().join("merged-2").exists() || !dir.path().join("merged-2/sessions.csv").exists()
    );
}

/// With routes decided over the whole batch (`route-records`), every
/// B2BUA/AS leg is in the partition of the first leg's home: the partitions
/// merge into the reports of one run for any N, including N that do not
/// divide the 16 tracking partitions, on a batch of two rotated files whose
/// AS-leg pairs (one call in four) land all over the partitions.
#[test]
fn routed_partitions_merge_into_the_reports_of_one_run_for_any_n() {
    let dir = tempfile::tempdir().unwrap();
    let calls = 400;
    let files = busy_capture(dir.path(), calls, 2);
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let full = run(&dir.path().join("full"), "2", &refs);
    let rec = dir.path().join("rec");
    let mut args = vec!["extract-records", "-o", rec.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    assert_eq!(sipaudit(&args).status.code(), Some(0));
    let routes = dir.path().join("routes.tsv");
    let o = sipaudit(&[
        "route-records",
        "-o",
        routes.to_str().unwrap(),
        rec.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // Every AS-leg pair whose legs have different homes moves its second
    // leg (8 messages a pair, the 5 of the second leg move).
    let moved = fs::read_to_string(&routes)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("sipaudit-routes") && !l.starts_with("input\t"))
        .count();
    assert_eq!(moved, calls / 4 * 5, "{err}");
    for n in [2, 3, 5, 32] {
        let o = merged_routed(dir.path(), &rec, n, Some(&routes));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "N = {n}: {err}");
        for r in ["sessions.csv", "failures.csv", "summary.csv"] {
            assert_eq!(
                fs::read_to_string(full.join(r)).unwrap(),
                fs::read_to_string(dir.path().join(format!("merged-{n}")).join(r)).unwrap(),
                "N = {n}: {r}"
            );
        }
    }
    // Without the routes, N = 2 splits AS-leg pairs and is refused.
    let o = merged(dir.path(), &rec, 2);
    assert_eq!(o.status.code(), Some(2));
}

/// `n` calls, one every 50 ms, each of one of five kinds that leave the
/// INVITE waiting alone for seconds (so that it may go cold under the
/// memory budget) before something of it comes: never answered (a
/// scanner's); answered after 3 s (180, 200, ACK, BYE); cancelled after 3
/// s; retransmitted after 4 s, then refused; a B2BUA leg with another
/// Call-ID and the same Session-ID after 3 s.
fn waiting_capture(dir: &Path, n: usize) -> PathBuf {
    let mut ev: Vec<(u64, usize, bool, Vec<u8>)> = Vec::new();
    let callee = "sip:bob@voip.example.net";
    for i in 0..n {
        let t = i as u64 * 50;
        let (from, call, branch) = (
            format!("sip:+4915{i:08}@ims.example"),
            format!("wait{i}"),
            format!("w{i}"),
        );
        let sid = format!("Session-ID: {:032x}\r\n", 0xabc0_0000 + i);
        let inv = Msg {
            start: "INVITE sip:bob@voip.example.net SIP/2.0",
            call: &call,
            branch: &branch,
            from: (&from, "f"),
            to: (callee, ""),
            cseq: "1 INVITE",
            extra: if i % 5 == 4 { &sid } else { "" },
        };
        let mut e = |ms: u64, up: bool, b: Vec<u8>| ev.push((ms, ev.len(), up, b));
        e(t, true, inv.bytes());
        match i % 5 {
            1 => {
                e(t + 3000, false, inv.resp("SIP/2.0 180 Ringing", "x", ""));
                e(t + 5000, false, inv.resp("SIP/2.0 200 OK", "x", ""));
                // The caller's in-dialog requests: ACK, then BYE.
                let (ack_branch, bye_branch) = (format!("{branch}a"), format!("{branch}b"));
                let in_dialog = |start, cseq, branch| Msg {
                    start,
                    cseq,
                    to: (callee, "x"),
                    branch,
                    ..inv
                };
                let ack = in_dialog("ACK sip:ue@10.0.0.2:5060 SIP/2.0", "1 ACK", &ack_branch);
                e(t + 5010, true, ack.bytes());
                let bye = in_dialog("BYE sip:ue@10.0.0.2:5060 SIP/2.0", "2 BYE", &bye_branch);
                e(t + 6000, true, bye.bytes());
                e(t + 6010, false, bye.resp("SIP/2.0 200 OK", "x", ""));
            }
            2 => {
                let cancel = Msg {
                    start: "CANCEL sip:bob@voip.example.net SIP/2.0",
                    cseq: "1 CANCEL",
                    ..inv
                };
                e(t + 3000, true, cancel.bytes());
                e(t + 3010, false, cancel.resp("SIP/2.0 200 OK", "x", ""));
                e(
                    t + 3020,
                    false,
                    inv.resp("SIP/2.0 487 Request Terminated", "x", ""),
                );
            }
            3 => {
                e(t + 4000, true, inv.bytes());
                e(t + 9000, false, inv.resp("SIP/2.0 486 Busy Here", "x", ""));
            }
            4 => {
                let (c2, b2, f2) = (
                    format!("leg{i}"),
                    format!("l{i}"),
                    format!("sip:as{i}@as.example"),
                );
                let leg = Msg {
                    start: "INVITE sip:carol@voip.example.net SIP/2.0",
                    call: &c2,
                    branch: &b2,
                    from: (&f2, "g"),
                    to: ("sip:carol@voip.example.net", ""),
                    ..inv
                };
                e(t + 3000, true, leg.bytes());
                e(t + 3010, false, leg.resp("SIP/2.0 200 OK", "y", ""));
            }
            _ => {}
        }
    }
    ev.sort_by_key(|&(ms, k, _, _)| (ms, k));
    let mut cap = build::Pcap::new(1);
    for (ms, _, up, b) in &ev {
        push(&mut cap, *ms, *up, b);
    }
    let p = dir.join("waiting.pcap");
    fs::write(&p, cap.bytes()).unwrap();
    p
}

/// Runs `analyze` with report.html and messages.csv and the environment
/// `env`; returns the output directory and stderr.
fn run_env(out: &Path, jobs: &str, env: &[(&str, &str)], input: &Path) -> (PathBuf, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .current_dir(common::root())
        .envs(env.iter().copied())
        .args(["analyze", "--messages", "-j", jobs, "-o"])
        .arg(out)
        .arg(input)
        .output()
        .expect("run sipaudit");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{}: {err}",
        input.display()
    );
    (out.to_path_buf(), err)
}

/// Spilling forced on every batch of 7 records.
const COLD: [(&str, &str); 2] = [("SIPAUDIT_COLD", "always"), ("SIPAUDIT_TRACK_BATCH", "7")];

fn assert_reports_equal(a: &Path, b: &Path, what: &str) {
    for r in REPORTS.iter().chain(&["inputs.csv", "report.html"]) {
        assert!(
            fs::read(a.join(r)).unwrap() == fs::read(b.join(r)).unwrap(),
            "{what}: {r} differs ({})",
            b.display()
        );
    }
}

/// The memory budget (`--memory`, src/dialog/tracker/cold.rs) changes no
/// byte: with spilling forced on every batch, each kind of call that waits
/// and then gets an answer, a CANCEL, a retransmission, a refusal or a
/// B2BUA leg by Session-ID is read back first and ends as without it, at
/// -j1, -j2 and -j3 (the partitions on the tracking pool). (It fails when
/// a Call-ID or Session-ID does not bring a spilled session back.)
#[test]
fn sessions_spilled_under_the_memory_budget_give_the_same_reports() {
    let dir = tempfile::tempdir().unwrap();
    let cap = waiting_capture(dir.path(), 500);
    let (base, _) = run_env(&dir.path().join("base"), "1", &[], &cap);
    for j in ["1", "2", "3"] {
        let (cold, err) = run_env(&dir.path().join(format!("cold-j{j}")), j, &COLD, &cap);
        assert_reports_equal(&base, &cold, "waiting calls");
        let spilled: u64 = err
            .lines()
            .find_map(|l| l.trim().strip_prefix("memory budget: "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(spilled >= 400, "sessions spilled: {spilled}\n{err}");
    }
    let s = read_csv(&base.join("sessions.csv"));
    let outcomes = |o: &str| s.rows.iter().filter(|r| r["outcome"] == o).count();
    assert_eq!(outcomes("ESTABLISHED"), 200, "answered, and B2BUA pairs");
    assert_eq!(outcomes("CANCELLED"), 100);
    assert_eq!(outcomes("FAILED"), 100);
    let related = s.rows.iter().filter(|r| !r["related_sessions"].is_empty());
    // One row of each pair names the other: the second leg stays open
    // (no BYE) until the end, when the first is no longer held.
    assert_eq!(related.count(), 100, "each B2BUA pair is related");
}

/// The same on every sample and every corpus capture, spilling forced.
/// Batches handed to the tracking pool two at a time while it is busy
/// (src/pipeline/track.rs, `ELASTIC`) change no byte: with batches of 7
/// records, each handed over with the next whenever the pool has one, at
/// -j2 and -j3, the busy and waiting captures and every sample and corpus
/// capture read as with one batch at a time at -j1. (The unit test
/// `batches_cut_while_the_pool_is_busy_give_the_same_sessions` in
/// src/pipeline/track.rs is the one that fails when a partition tracks
/// the batches it is handed as one; these reports do not show it.)
#[test]
fn batches_handed_to_the_pool_together_give_the_same_reports() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = busy_capture(dir.path(), 400, 1);
    inputs.push(waiting_capture(dir.path(), 200));
    inputs.extend(samples_and_corpus());
    let batch = [("SIPAUDIT_TRACK_BATCH", "7")];
    let cut = [
        ("SIPAUDIT_TRACK_BATCH", "7"),
        ("SIPAUDIT_TRACK_CUT", "always"),
    ];
    for input in &inputs {
        let (base, _) = run_env(&dir.path().join("base"), "1", &batch, input);
        for j in ["2", "3"] {
            let (two, _) = run_env(&dir.path().join("cut"), j, &cut, input);
            let what = format!("{} at -j{j}, batches cut", input.display());
            assert_reports_equal(&base, &two, &what);
            fs::remove_dir_all(two).unwrap();
        }
        fs::remove_dir_all(base).unwrap();
    }
}

#[test]
fn every_sample_and_corpus_capture_reads_the_same_with_sessions_spilled() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = samples_and_corpus();
    for input in &inputs {
        let (base, _) = run_env(&dir.path().join("base"), "1", &[], input);
        let (cold, _) = run_env(&dir.path().join("cold"), "1", &COLD, input);
        assert_reports_equal(&base, &cold, &input.display().to_string());
        fs::remove_dir_all(base).unwrap();
        fs::remove_dir_all(cold).unwrap();
    }
}
