//! Build script: names the git commit in `--version` (`SIPAUDIT_COMMIT`),
//! `unknown` outside a git checkout (a source tarball).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SIPAUDIT_COMMIT={commit}");
    // Rebuild when HEAD moves (a checkout, a commit on the branch).
    for f in ["HEAD"] {
        if let Some(p) = git(&["rev-parse", "--git-path", f]) {
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    if let Some(r) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &r]) {
            if std::path::Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
