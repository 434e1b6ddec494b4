//! What a CLI is expected to ship (issue 13 item 5): `--version` naming the
//! git commit, shell completions and a man page from the clap definitions.

use std::process::Command;

fn sipaudit(args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

#[test]
fn version_names_the_commit() {
    let (ok, v) = sipaudit(&["--version"]);
    assert!(ok);
    assert!(
        v.starts_with(&format!("sipaudit {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(h) = head.ok().filter(|h| h.status.success()) {
        let h = String::from_utf8_lossy(&h.stdout).trim().to_string();
        assert!(v.contains(&h), "{v} does not name HEAD {h}");
    }
}

#[test]
fn completions_and_man_page_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let (ok, s) = sipaudit(&["completions", shell]);
        assert!(ok, "{shell}");
        for word in ["analyze", "extract", "flow", "pcap-dir", "html-sessions"] {
            assert!(s.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (ok, man) = sipaudit(&["man"]);
    assert!(ok);
    assert!(man.contains(".TH sipaudit 1"), "{man}");
    assert!(man.contains("extract") && man.contains("completions"));
    assert!(!sipaudit(&["completions", "cmd.exe"]).0);
}
