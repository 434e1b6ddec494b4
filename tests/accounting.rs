//! Packet accounting on the whole public corpus: every packet is counted
//! once (`packets = sip_packets + other_packets + undecodable_packets`), and
//! `packets` equals `capinfos -c` for every file read to its end; the two
//! files that are not pcap/pcapng are rejected cleanly.

mod common;

use std::process::Command;

use common::needs::{corpus, tool};
use common::{analyze, read_csv};

fn capinfos_count(path: &str) -> Option<u64> {
    let o = Command::new("capinfos")
        .args(["-c", "-M", "-T", "-r"])
        .arg(path)
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    // Tab-separated: file name, packet count.
    let s = String::from_utf8_lossy(&o.stdout);
    s.lines().last()?.rsplit('\t').next()?.trim().parse().ok()
}

#[test]
fn corpus_packets_add_up_and_match_capinfos() {
    // Both checked, so a skip names everything that is missing.
    let (Some(c), true) = (corpus(), tool("capinfos")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let o = analyze(&["-o", dir.path().to_str().unwrap(), c.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{stderr}");
    let inputs = read_csv(&dir.path().join("inputs.csv"));
    let captures: Vec<_> = inputs
        .rows
        .iter()
        .filter(|r| !r["file"].ends_with("SOURCES.md"))
        .collect();
    assert_eq!(captures.len(), 55, "the corpus has 55 captures");
    let mut rejected = Vec::new();
    for r in &captures {
        let n = |k: &str| -> u64 { r[k].parse().unwrap() };
        assert_eq!(
            n("packets"),
            n("sip_packets") + n("other_packets") + n("undecodable_packets"),
            "{}: packets do not add up",
            r["file"]
        );
        if r["format"].is_empty() {
            rejected.push(r["file"].clone());
            assert!(!r["error"].is_empty());
            continue;
        }
        assert_eq!(r["error"], "", "{} was not read to its end", r["file"]);
        let want = capinfos_count(&r["file"])
            .unwrap_or_else(|| panic!("capinfos failed on {}", r["file"]));
        assert_eq!(n("packets"), want, "{}: packets vs capinfos -c", r["file"]);
    }
    // cr_ss101.cap is NetXRay/Sniffer; the stderr names every rejected file.
    assert!(
        rejected.iter().any(|f| f.ends_with("cr_ss101.cap")),
        "{rejected:?}"
    );
    for f in &rejected {
        assert!(stderr.contains(f.as_str()), "stderr does not name {f}");
    }
    assert_eq!(
        o.status.code(),
        Some(1),
        "some corpus inputs are not captures"
    );
}
