//! The policy command line (contract.md `--policy`, rules.md §E.3): broken
//! policy files exit 2 with one line naming the line and key; the sample
//! policies and the annotated example pass `policy check`; the summary names
//! the policy in force.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sipaudit"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run sipaudit")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn check(path: &Path) -> Output {
    run(&["policy", "check", path.to_str().unwrap()])
}

/// (file name, content, line, key, part of the message)
const BROKEN: &[(&str, &str, usize, &str, &str)] = &[
    (
        "sdp-mode.toml",
        "version = 1\nname = \"x\"\n\n[relaxation]\nallowed = true\nsdp_mode = \"lax\"\n",
        6,
        "[relaxation] sdp_mode",
        "\"lax\" is not one of strict, ims-lenient",
    ),
    (
        "no-version.toml",
        "name = \"x\"\n[relaxation]\nallowed = true\n",
        1,
        "version",
        "missing",
    ),
    (
        "version-2.toml",
        "\n\nversion = 2\n",
        3,
        "version",
        "must be 1",
    ),
    (
        "unknown-table.toml",
        "version = 1\n\n[relaxations]\nallowed = false\n",
        3,
        "[relaxations]",
        "unknown table",
    ),
    (
        "unknown-key.toml",
        "version = 1\n[home]\nnodes = []\nreject_code = [403]\n",
        4,
        "[home] reject_code",
        "unknown key",
    ),
    (
        "wrong-type.toml",
        "version = 1\n[relaxation]\nmax_retries = \"2\"\n",
        3,
        "[relaxation] max_retries",
        "expected an integer",
    ),
    (
        "bad-cidr.toml",
        "version = 1\n[home]\nnodes = [\n  \"scscf1.example\",\n  \"10.20.0.0/40\",\n]\n",
        5,
        "[home] nodes",
        "CIDR",
    ),
    (
        "bad-regex.toml",
        "version = 1\n[home]\nreject_warning_regex = \"relax(\"\n",
        3,
        "[home] reject_warning_regex",
        "regular expression",
    ),
    (
        "bad-glob.toml",
        "version = 1\n[destinations]\nims_domains = [\"ims example.org\"]\n",
        3,
        "[destinations] ims_domains",
        "host glob",
    ),
    (
        "dup-rule.toml",
        "version = 1\n[[rule]]\nid = \"r\"\naction = \"deny\"\n\n[[rule]]\nid = \"r\"\naction = \"allow\"\n",
        7,
        "[[rule]] id",
        "duplicate rule id",
    ),
    (
        "bad-action.toml",
        "version = 1\n[[rule]]\nid = \"r\"\naction = \"reject\"\n",
        4,
        "[[rule]] action",
        "not one of allow, deny",
    ),
    (
        "bad-reason.toml",
        "version = 1\n[[rule]]\nid = \"r\"\naction = \"deny\"\nreason = \"DEST_NON_IMS\"\n",
        5,
        "[[rule]] reason",
        "DEST_NON_IMS",
    ),
    (
        "bad-when.toml",
        "version = 1\n[[rule]]\nid = \"r\"\nwhen = { destination = \"ims\", imsi = \"1\" }\naction = \"deny\"\n",
        4,
        "[[rule]] when.imsi",
        "unknown key",
    ),
    (
        "syntax.toml",
        "version = 1\n[relaxation]\nallowed = tru\n",
        3,
        "TOML syntax",
        "",
    ),
];

#[test]
fn broken_policies_exit_2_with_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let capture = root().join("samples/auth-407/capture.pcap");
    for (name, text, line, key, msg) in BROKEN {
        let f = dir.path().join(name);
        std::fs::write(&f, text).unwrap();
        let want = format!("{}:{line}: {key}: ", f.display());
        // `policy check`
        let o = check(&f);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&want), "{name}: want {want:?} in {err:?}");
        assert!(err.contains(msg), "{name}: want {msg:?} in {err:?}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: one line: {err:?}"
        );
        assert!(o.stdout.is_empty(), "{name}");
        // `analyze --policy`: refused before any input is read.
        let out = dir.path().join(format!("out-{name}"));
        let o = run(&[
            "analyze",
            "--policy",
            f.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            capture.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&want), "{name}: want {want:?} in {err:?}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{name}: one line: {err:?}"
        );
        assert!(!out.exists(), "{name}: nothing written");
    }
}

#[test]
fn missing_policy_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("nope.toml");
    let o = check(&f);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.toml"), "{}", stderr(&o));
    let o = run(&[
        "analyze",
        "--policy",
        f.to_str().unwrap(),
        "-o",
        dir.path().join("out").to_str().unwrap(),
        root()
            .join("samples/auth-407/capture.pcap")
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.toml"), "{}", stderr(&o));
}

#[test]
fn sample_policies_pass_check_and_print_the_effective_policy() {
    let dir = root().join("samples/policies");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    for want in [
        "e3-example.toml",
        "no-relaxation.toml",
        "same-call-id.toml",
        "emergency-never.toml",
        "100rel-only.toml",
    ] {
        assert!(names.iter().any(|p| p.ends_with(want)), "{want} missing");
    }
    let tmp = tempfile::tempdir().unwrap();
    for f in &names {
        let o = check(f);
        assert_eq!(o.status.code(), Some(0), "{}: {}", f.display(), stderr(&o));
        let printed = stdout(&o);
        for key in [
            "version = 1",
            "name = ",
            "[home]",
            "reject_codes = ",
            "[destinations]",
            "unknown_as = ",
            "[relaxation]",
            "max_retries = ",
            "window_s = ",
            "sdp_mode = ",
            "[emergency]",
            "relaxation = ",
        ] {
            assert!(printed.contains(key), "{}: {key} not printed", f.display());
        }
        // The printed policy is itself valid and prints the same.
        let again = tmp.path().join(f.file_name().unwrap());
        std::fs::write(&again, &printed).unwrap();
        let o2 = check(&again);
        assert_eq!(o2.status.code(), Some(0), "{}", stderr(&o2));
        assert_eq!(stdout(&o2), printed, "{}", f.display());
    }
}

#[test]
fn check_fills_in_the_builtin_defaults_and_the_file_stem() {
    let o = check(&root().join("samples/policies/no-relaxation.toml"));
    let printed = stdout(&o);
    assert!(printed.contains("name = \"no-relaxation\""), "{printed}");
    assert!(printed.contains("allowed = false"), "{printed}");
    assert!(printed.contains("max_retries = 2"), "{printed}");
    assert!(
        printed.contains("allowed_capabilities = [\"*\"]"),
        "{printed}"
    );
    assert!(
        printed.contains("ims_domains = [\"*.3gppnetwork.org\"]"),
        "{printed}"
    );
    let o = check(&root().join("samples/policies/e3-example.toml"));
    let printed = stdout(&o);
    assert!(printed.contains("name = \"operator-a\""), "{printed}");
    assert!(
        printed.contains("id = \"keep-qos-toward-partners\""),
        "{printed}"
    );
    assert!(printed.contains("reason = \"SUBSCRIBER\""), "{printed}");
}

#[test]
fn example_passes_check_and_equals_the_e3_example() {
    let o = run(&["policy", "example"]);
    assert_eq!(o.status.code(), Some(0));
    let example = stdout(&o);
    assert!(
        example
            .lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            > 20
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("operator-a.toml");
    std::fs::write(&f, &example).unwrap();
    let o = check(&f);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e3 = check(&root().join("samples/policies/e3-example.toml"));
    assert_eq!(stdout(&o), stdout(&e3));
}

#[test]
fn summary_names_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let capture = root().join("samples/auth-407/capture.pcap");
    let o = run(&[
        "analyze",
        "--progress",
        "never",
        "-o",
        dir.path().join("a").to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("policy: builtin-default"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "analyze",
        "--progress",
        "never",
        "--policy",
        root()
            .join("samples/policies/no-relaxation.toml")
            .to_str()
            .unwrap(),
        "-o",
        dir.path().join("b").to_str().unwrap(),
        capture.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("policy: no-relaxation"),
        "{}",
        stderr(&o)
    );
}
