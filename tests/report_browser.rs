//! report.html as a person sees it (issue 13): headless Chromium opens the
//! report of a sample, screenshots its top and one ladder, logs no console
//! error, and the ladder's arrows are in messages.csv order. Needs
//! `chromium` (skips with a note without it; `.ci/run` installs it).

mod common;

use std::path::Path;
use std::process::Command;

use common::{analyze, needs};

/// Runs headless Chromium on `url` with `args`: (stdout, stderr).
fn chromium(dir: &Path, url: &str, args: &[&str]) -> (String, String) {
    let o = Command::new("chromium")
        .current_dir(dir)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .arg(url)
        .output()
        .expect("run chromium");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Console messages in Chromium's log (`INFO:CONSOLE:<line>] "text"`,
/// whatever their level: the report has no script, so any message is an
/// error of the page, e.g. a blocked or failed load) and uncaught
/// exceptions.
fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG\r\n\x1a\n"))
}

#[test]
fn report_opens_in_chromium_with_ladders_in_message_order() {
    if !needs::tool("chromium") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = analyze(&[
        "--messages",
        "-o",
        out.to_str().unwrap(),
        "samples/h09-580-relaxed/capture.pcap",
        "samples/h02-retry-loop/capture.pcap",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let url = format!("file://{}", out.join("report.html").display());

    // The check below sees a console error when there is one.
    let bad = dir.path().join("bad.html");
    std::fs::write(&bad, "<script>console.error('boom')</script>").unwrap();
    let (_, log) = chromium(
        dir.path(),
        &format!("file://{}", bad.display()),
        &["--dump-dom"],
    );
    assert!(
        !console_errors(&log).is_empty(),
        "the console check is blind:\n{log}"
    );

    // The top of the report, and no console error.
    let top = dir.path().join("top.png");
    let shot = format!("--screenshot={}", top.display());
    let (_, log) = chromium(dir.path(), &url, &[&shot, "--window-size=1280,1000"]);
    assert!(is_png(&top), "no screenshot of the report");
    assert!(console_errors(&log).is_empty(), "{log}");

    // The DOM as Chromium built it: the first ladder's arrows.
    let (dom, log) = chromium(dir.path(), &url, &["--dump-dom"]);
    assert!(console_errors(&log).is_empty(), "{log}");
    let start = dom
        .find("<div class=\"session\" id=\"s")
        .expect("a ladder section");
    let sid: String = dom[start + 26..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let end = dom[start + 1..]
        .find("<div class=\"session\"")
        .map_or(dom.len(), |e| start + 1 + e);
    let section = &dom[start..end];
    let frames: Vec<String> = section
        .split("data-frame=\"")
        .skip(1)
        .map(|x| x.split('"').next().unwrap().to_string())
        .collect();
    let files: Vec<String> = section
        .split("data-file=\"")
        .skip(1)
        .map(|x| x.split('"').next().unwrap().to_string())
        .collect();
    let m = common::read_csv(&out.join("messages.csv"));
    let inputs = common::read_csv(&out.join("inputs.csv"));
    let index = |f: &str| {
        inputs
            .rows
            .iter()
            .position(|r| r["file"] == f)
            .unwrap()
            .to_string()
    };
    let want: Vec<(String, String)> = m
        .rows
        .iter()
        .filter(|r| r["session"] == sid)
        .map(|r| (index(&r["file"]), r["frame"].clone()))
        .collect();
    let got: Vec<(String, String)> = files.into_iter().zip(frames).collect();
    assert!(want.len() > 3, "session {sid}: {want:?}");
    assert_eq!(got, want, "session {sid}: arrows not in messages.csv order");

    // One ladder on its own (the SVG is a standalone document).
    let svg_start = section.find("<svg").unwrap();
    let svg_end = section.find("</svg>").unwrap() + 6;
    let ladder = dir.path().join("ladder.svg");
    std::fs::write(&ladder, &section[svg_start..svg_end]).unwrap();
    let png = dir.path().join("ladder.png");
    let shot = format!("--screenshot={}", png.display());
    let (_, log) = chromium(
        dir.path(),
        &format!("file://{}", ladder.display()),
        &[&shot, "--window-size=800,700"],
    );
    assert!(is_png(&png), "no screenshot of the ladder");
    assert!(console_errors(&log).is_empty(), "{log}");
}
