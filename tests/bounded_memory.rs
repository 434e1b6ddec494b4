//! Issue 16 item 4: memory is bounded whatever the input. A pcap header
//! followed by 1 GB of zeros, gzipped (a decompression bomb, or a file
//! preallocated before a crash), ends at the 10,000th zero-length record
//! with an error naming its byte offset, under 256 MB peak RSS and with a
//! small anomalies.csv; anomalies spilled to run files give the same bytes.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::root;

/// Peak RSS of the child in KB (`ru_maxrss` of exactly this child, from
/// wait4), and its exit code.
// The child is reaped by wait4, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> (i32, u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    let child = Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .current_dir(root())
        .arg("analyze")
        .args(args)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data, zero is a valid value; wait4 fills it
    // for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut ru) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    assert!(libc::WIFEXITED(status), "status {status}");
    let stderr = fs::read_to_string(&err_path).unwrap();
    (libc::WEXITSTATUS(status), ru.ru_maxrss as u64, stderr)
}

/// A pcap header (Ethernet) followed by `zeros` zero bytes, gzipped at
/// the best ratio, written as it is compressed.
fn zero_bomb(path: &Path, zeros: u64) {
    let f = fs::File::create(path).unwrap();
    let mut w =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::best());
    w.write_all(&0xa1b2_c3d4u32.to_le_bytes()).unwrap();
    for x in [2u16, 4] {
        w.write_all(&x.to_le_bytes()).unwrap();
    }
    for x in [0u32, 0, 65535, 1] {
        w.write_all(&x.to_le_bytes()).unwrap();
    }
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    w.finish().unwrap().flush().unwrap();
}

#[test]
fn a_gigabyte_of_zeros_stops_early_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("zeros.pcap.gz");
    zero_bomb(&bomb, 1 << 30);
    let gz = fs::metadata(&bomb).unwrap().len();
    assert!(gz < 8 << 20, "{gz} bytes gzipped");
    let out = dir.path().join("out");
    let (code, maxrss_kb, stderr) =
        run_measured(&["-o", out.to_str().unwrap(), bomb.to_str().unwrap()]);
    // Not read to its end: exit 1, the offset of the first empty record
    // (right after the 24-byte file header) named.
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "corrupt capture at byte offset 24 (after frame 0): 10000 zero-length records in a row"
        ),
        "{stderr}"
    );
    assert!(maxrss_kb < 256 * 1024, "peak RSS {maxrss_kb} KB");
    let anomalies = fs::read_to_string(out.join("anomalies.csv")).unwrap();
    assert!(anomalies.len() < 1 << 20, "{} bytes", anomalies.len());
    // The 9,999 empty packets delivered before the stop are one row.
    let rows: Vec<&str> = anomalies.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{anomalies}");
    assert!(
        rows[0].contains("9999 times on consecutive frames 1 to 9999"),
        "{anomalies}"
    );
    eprintln!(
        "zero bomb: {gz} bytes gzipped, peak RSS {} MB",
        maxrss_kb / 1024
    );
}

/// A capture whose every packet is damaged, in a pattern that repeats
/// every 40 frames: malformed IPv4 headers of varying length (distinct
/// details) and truncated UDP headers (runs to coalesce).
fn damaged_capture(path: &Path, packets: u32) {
    let mut p = common::build::Pcap::new(1);
    let udp = common::build::udp(5060, 5060, &[0u8; 40]);
    let ip = common::build::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 17, None, &udp);
    let full = common::build::ethernet(&[], 0x0800, &ip);
    for i in 0..packets {
        let len = 14 + (i as usize * 7) % 40;
        p.push(1_700_000_000 + i, 0, full[..len].to_vec());
    }
    fs::write(path, p.bytes()).unwrap();
}

#[test]
fn spilled_anomalies_give_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("damaged.pcap");
    damaged_capture(&cap, 3_000);
    let mut outs = Vec::new();
    for (jobs, budget) in [("1", None), ("4", Some("1000")), ("2", Some("1"))] {
        let out = dir.path().join(format!("out-{jobs}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sipaudit"));
        cmd.args(["analyze", "--jobs", jobs, "-o"])
            .arg(&out)
            .arg(&cap);
        if let Some(b) = budget {
            cmd.env("SIPAUDIT_ANOMALY_SPILL_BYTES", b);
        }
        let o = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains("anomalies.csv sorted through"),
            budget.is_some(),
            "{stderr}"
        );
        let left: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        outs.push(fs::read_to_string(out.join("anomalies.csv")).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);
    let rows = outs[0].lines().count() - 1;
    // 3,000 damaged packets; some truncated UDP headers on consecutive
    // frames are one row each.
    assert!(rows > 1_000 && rows < 3_000, "{rows} rows");
    assert!(outs[0].contains("times on consecutive frames"));
}
