//! Issue 16 item 1: the reports in the output directory are replaced all at
//! once at the end of a run. A killed run, or one that runs out of disk
//! space, leaves the previous reports byte for byte and no partial file
//! with a report's name; a run removes the reports of sipaudit's names it
//! did not write and nothing else; run.json describes every file written.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{analyze, needs};

const SAMPLE: &str = "samples/h02-retry-loop/capture.pcap";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sipaudit"));
    c.current_dir(common::root()).arg("analyze");
    c
}

/// A gzipped pcap of `pairs` OPTIONS transactions (request and 200 OK,
/// each its own Call-ID), written as it is generated.
fn big_capture(path: &Path, pairs: u32) {
    let f = fs::File::create(path).unwrap();
    let mut w =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
    for x in [2u16, 4] {
        w.write_all(&x.to_le_bytes()).unwrap();
    }
    for x in [0u32, 0, 65535, 1] {
        w.write_all(&x.to_le_bytes()).unwrap();
    }
    for i in 0..pairs {
        let head = format!(
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{i}\r\n\
             From: <sip:alice@example.com>;tag=a{i}\r\n"
        );
        let tail = format!(
            "Call-ID: kill-{i}@example.com\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let req = format!(
            "OPTIONS sip:bob@example.com SIP/2.0\r\n{head}To: <sip:bob@example.com>\r\n{tail}"
        );
        let rsp = format!("SIP/2.0 200 OK\r\n{head}To: <sip:bob@example.com>;tag=b{i}\r\n{tail}");
        for (k, sip) in [req, rsp].iter().enumerate() {
            let udp = common::build::udp(5060, 5060, sip.as_bytes());
            let ip = common::build::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, None, &udp);
            let frame = common::build::ethernet(&[], 0x0800, &ip);
            let ms = u64::from(i) * 2 + k as u64;
            let rec = [
                (1_700_000_000 + ms / 1000) as u32,
                ((ms % 1000) * 1000) as u32,
                frame.len() as u32,
                frame.len() as u32,
            ];
            for x in rec {
                w.write_all(&x.to_le_bytes()).unwrap();
            }
            w.write_all(&frame).unwrap();
        }
    }
    w.finish().unwrap().flush().unwrap();
}

/// Every entry of `dir`: file name → content (`None` for a directory).
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let content = e
                .file_type()
                .unwrap()
                .is_file()
                .then(|| fs::read(e.path()).unwrap());
            (e.file_name().to_string_lossy().into_owned(), content)
        })
        .collect()
}

fn assert_ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The previous reports and `extra` (names of directories allowed beside
/// them), and nothing else.
fn assert_unchanged(out: &Path, before: &BTreeMap<String, Option<Vec<u8>>>, extra: &[String]) {
    let mut now = snapshot(out);
    for name in extra {
        assert_eq!(now.remove(name), Some(None), "{name}: a directory");
    }
    assert_eq!(now.len(), before.len(), "entries: {:?}", now.keys());
    for (name, content) in before {
        assert!(now.get(name) == Some(content), "{name} changed");
    }
}

/// (a) SIGKILL at about half of the run (messages.csv in the temporary
/// directory at half its final size): the previous reports are intact, no
/// file with a report's name appeared; the next run removes the temporary
/// directory the killed one left.
#[test]
fn a_killed_run_leaves_the_previous_reports() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("big.pcap.gz");
    big_capture(&input, 100_000);
    let out = dir.path().join("out");
    let input_s = input.to_str().unwrap();
    let out_s = out.to_str().unwrap();
    assert_ok(&analyze(&["--messages", "-o", out_s, input_s]));
    let before = snapshot(&out);
    let full = before["messages.csv"].as_ref().unwrap().len() as u64;
    assert!(full > 20_000_000, "messages.csv {full} bytes");

    let mut child = bin()
        .args(["--messages", "--jobs", "2", "-o", out_s, input_s])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stage_name = format!("{}{}", sipaudit::pipeline::STAGING_PREFIX, child.id());
    let partial = out.join(&stage_name).join("messages.csv");
    let t0 = Instant::now();
    let killed_at = loop {
        let size = fs::metadata(&partial).map(|m| m.len()).unwrap_or(0);
        if size >= full / 2 {
            child.kill().unwrap();
            break size;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("the run ended ({s:?}) before half of messages.csv was written");
        }
        assert!(t0.elapsed() < Duration::from_secs(300));
        std::thread::sleep(Duration::from_millis(2));
    };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(
        killed_at < full,
        "killed before the end: {killed_at} of {full}"
    );
    assert_unchanged(&out, &before, std::slice::from_ref(&stage_name));

    // The next run (other input, no --messages) cleans up after it.
    assert_ok(&analyze(&["-o", out_s, SAMPLE]));
    let now = snapshot(&out);
    assert!(!now.contains_key(&stage_name), "{:?}", now.keys());
    assert!(!now.contains_key("messages.csv"));
}

/// Runs `mount ARGS`; whether it worked.
fn mount(args: &[&str]) -> bool {
    Command::new("mount")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// (b) The disk fills up during the run (-o on a 64 KB tmpfs): exit 2 with
/// the file and the reason named, the previous reports intact, nothing
/// else left.
#[test]
fn a_full_disk_leaves_the_previous_reports() {
    if !is_root() {
        needs::skip("needs root to mount a 64 KB tmpfs (CI runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    fs::create_dir(&mnt).unwrap();
    let m = mnt.to_str().unwrap();
    if !mount(&["-t", "tmpfs", "-o", "size=64k", "tmpfs", m]) {
        needs::skip("`mount -t tmpfs` failed (needs CAP_SYS_ADMIN)");
        return;
    }
    let _guard = Tmpfs(mnt.clone());
    assert_ok(&analyze(&["-o", m, SAMPLE]));
    fs::write(mnt.join("notes.txt"), "mine\n").unwrap();
    let before = snapshot(&mnt);
    assert!(before.contains_key("sessions.csv") && before.contains_key("run.json"));

    let input = dir.path().join("big.pcap.gz");
    big_capture(&input, 2_000);
    let o = analyze(&["--messages", "-o", m, input.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains(&format!("{m}/")) && !stderr.contains(".sipaudit-tmp"),
        "names the report in the output directory: {stderr}"
    );
    assert_unchanged(&mnt, &before, &[]);
}

/// (c) A run without --messages removes the messages.csv of an earlier
/// one, and touches no file of another name.
#[test]
fn a_run_without_messages_leaves_no_messages_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = out.to_str().unwrap();
    assert_ok(&analyze(&["--messages", "-o", o, SAMPLE]));
    assert!(out.join("messages.csv").is_file());
    fs::write(out.join("messages.csv.bak"), "mine\n").unwrap();
    fs::create_dir(out.join("report.html.d")).unwrap();
    assert_ok(&analyze(&["-o", o, SAMPLE]));
    let now = snapshot(&out);
    let names: Vec<&str> = now.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "anomalies.csv",
            "failures.csv",
            "inputs.csv",
            "messages.csv.bak",
            "report.html",
            "report.html.d",
            "run.json",
            "sessions.csv",
            "summary.csv"
        ]
    );
    assert_eq!(now["messages.csv.bak"].as_deref(), Some(&b"mine\n"[..]));
}

/// (d) run.json lists every file written, with its size, row count and
/// SHA-256, and describes the run.
#[test]
fn run_json_describes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = analyze(&["--messages", "-o", out.to_str().unwrap(), SAMPLE]);
    assert_ok(&o);
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(m["manifest_version"], 1);
    assert_eq!(m["sipaudit_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["policy"], "builtin-default");
    let cmd: Vec<&str> = m["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd[1..3], ["analyze", "--messages"]);
    assert_eq!(cmd.last(), Some(&SAMPLE));
    let input = &m["inputs"][0];
    assert_eq!(input["path"], SAMPLE);
    let size = fs::metadata(common::root().join(SAMPLE)).unwrap().len();
    assert_eq!(input["bytes"], size);
    assert!(input["mtime"].as_str().unwrap().ends_with('Z'));
    assert!(m["start"].as_str().unwrap() <= m["end"].as_str().unwrap());

    let files = m["files"].as_array().unwrap();
    let mut listed: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    listed.push("run.json");
    listed.sort_unstable();
    let on_disk: Vec<String> = snapshot(&out).into_keys().collect();
    assert_eq!(listed, on_disk);
    common::assert_files_described(&out, files);
    let rows_of = |n: &str| files.iter().find(|f| f["name"] == n).unwrap()["rows"].clone();
    assert_eq!(rows_of("messages.csv"), 12);
    assert_eq!(rows_of("sessions.csv"), 1);
}
