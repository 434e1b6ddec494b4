//! The rule catalogue (src/rules/catalogue) against the documents it
//! implements and the code that uses it (issue 15 items 1, 2 and 6):
//! - every verdict, flag, class, policy verdict and outcome spelling of
//!   contract.md is a catalogue name (an in-code list, and the file itself
//!   when ../shared/docs is present);
//! - rules.md's §C class table, §D.3 severity list, §E.4 policy order and
//!   reasons equal the catalogue, row by row (skipped without the file);
//! - no verdict or flag spelling is written as a string outside the
//!   catalogue (the grep of issue 15);
//! - docs/reference.md is the catalogue's reference, up to date
//!   (`BLESS=1` rewrites it), and `sipaudit explain` prints its entries.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::needs;
use sipaudit::rules::catalogue::{
    self, CLASSES, Capability, Kind, PolicyKind, Reason, Trigger, Verdict, reference,
};

/// Every upper-case spelling contract.md names, as written there.
const CONTRACT: &[&str] = &[
    "AMBIGUOUS_LINK",
    "CANCELLED",
    "COMPLETED",
    "ESTABLISHED",
    "FAILED",
    "FORK_MIXED_CAPABILITY",
    "IMS",
    "INCONSISTENT_EXPERIENCE",
    "MID_DIALOG",
    "NON_IMS",
    "NOT_APPLICABLE",
    "NO_PRECONDITION",
    "POLICY_COMPLIANT",
    "POLICY_ENFORCED",
    "POLICY_NOT_ENFORCED",
    "POLICY_OVERBLOCKED",
    "POLICY_RESPECTED_BY_UE",
    "POLICY_UNDETERMINED",
    "POLICY_VIOLATION",
    "PROXY_REWRITE",
    "R5_STRICT",
    "R6PLUS_RELAXED",
    "RELAXATION_WITHOUT_REFUSAL",
    "REMOTE_LACKS_100REL",
    "REMOTE_LACKS_PRECONDITION",
    "TIMEOUT",
    "TRUNCATED",
    "UNKNOWN",
];

/// Upper-case words of contract.md that are command-line placeholders.
const CLI_PLACEHOLDERS: &[&str] = &["INPUT"];

fn shared_doc(name: &str) -> Option<String> {
    let p = common::root().join("../shared/docs").join(name);
    match std::fs::read_to_string(&p) {
        Ok(t) => Some(t),
        Err(_) => {
            needs::skip(&format!(
                "needs {}, not found (the project's shared documents)",
                p.display()
            ));
            None
        }
    }
}

/// The upper-case identifiers in backticks (`NAME`, `NAME:<REASON>`).
fn backticked_names(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in text.split('`').skip(1).step_by(2) {
        for item in part.split(';') {
            let name = item.split(':').next().unwrap_or(item);
            let upper = name.len() > 2
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if upper && !CLI_PLACEHOLDERS.contains(&name) && !out.iter().any(|o| o == name) {
                out.push(name.to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn contract_spellings_are_catalogue_names() {
    for name in CONTRACT {
        assert!(
            !catalogue::lookup(name).is_empty(),
            "{name} (contract.md) is not in the catalogue"
        );
    }
    let Some(contract) = shared_doc("contract.md") else {
        return;
    };
    let found = backticked_names(&contract);
    assert_eq!(
        found, CONTRACT,
        "contract.md names these upper-case values; update CONTRACT and the catalogue"
    );
}

/// The cells of the markdown table rows whose first cell is `<prefix><digits>`.
fn table_rows<'a>(text: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    text.lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect::<Vec<_>>()
        })
        .filter(|cells| {
            cells[0]
                .strip_prefix(prefix)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .collect()
}

fn leading_identifier(cell: &str) -> &str {
    let end = cell
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(cell.len());
    &cell[..end]
}

/// The capability cell as the catalogue models it.
fn capability_of(cell: &str) -> String {
    match cell {
        "tag" | "listed" | "X" | "the relaxed tags" => "Tags".into(),
        "unknown" | "none" | "n/a" => format!("Nothing({cell})"),
        c => format!("Fixed({})", c.split(" (").next().unwrap_or(c)),
    }
}

/// Where the catalogue knowingly differs from the §C cell, and why (the
/// output is the contract; changing it is another issue's decision).
const CAPABILITY_DIVERGENCES: &[(&str, &str)] = &[
    // failures.csv writes `precondition` for C21 (never `UPDATE`).
    ("C21", "Fixed(precondition)"),
    // failures.csv writes no capability for C24 (a chain link).
    ("C24", "Nothing(timer)"),
];

fn model_capability(c: Capability) -> String {
    match c {
        Capability::Fixed(t) => format!("Fixed({t})"),
        Capability::Tags => "Tags".into(),
        Capability::Nothing(w) => format!("Nothing({w})"),
    }
}

/// Whether the Pattern cell names the trigger.
fn pattern_names_trigger(pattern: &str, t: Trigger) -> bool {
    match t {
        Trigger::Status(codes) => codes.iter().all(|c| pattern.contains(&c.to_string())),
        Trigger::Range(a, _) => pattern.contains(&format!("{}xx", a / 100)),
        Trigger::AnyFailure => pattern.contains("reject_codes"),
        Trigger::Answer => pattern.contains("18x"),
    }
}

#[test]
fn rules_md_class_table_equals_the_catalogue() {
    let Some(rules) = shared_doc("rules.md") else {
        return;
    };
    let rows = table_rows(&rules, "C");
    assert_eq!(
        rows.len(),
        CLASSES.len(),
        "rules.md §C has {} rows",
        rows.len()
    );
    for (row, class) in rows.iter().zip(CLASSES) {
        let [id, pattern, category, capability, confidence] = row[..] else {
            panic!("rules.md §C row has {} cells: {row:?}", row.len());
        };
        let ours = (
            class.id.to_string(),
            class.category.as_str(),
            model_capability(class.capability),
            class.confidence,
        );
        let mut theirs = (
            id.to_string(),
            leading_identifier(category),
            capability_of(capability),
            confidence,
        );
        if let Some((_, cap)) = CAPABILITY_DIVERGENCES.iter().find(|(i, _)| *i == id) {
            theirs.2 = cap.to_string();
        }
        assert_eq!(ours, theirs, "rules.md §C row differs: {row:?}");
        if id != "C21" {
            // C21's trigger (the 408 or 487 that ends a stall) is in the
            // prose under the table, not in its Pattern cell.
            assert!(
                pattern_names_trigger(pattern, class.trigger),
                "{id}: trigger {:?} is not in the Pattern cell {pattern:?}",
                class.trigger
            );
        }
    }
}

/// The C-ids named in `text`: `C01`, ranges `C01-C07`.
fn class_ids(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let words: Vec<&str> = text
        .split(|c: char| c == ',' || c.is_whitespace() || c == ';' || c == '.')
        .filter(|w| !w.is_empty())
        .collect();
    let num = |w: &str| w.strip_prefix('C').and_then(|n| n.parse::<u8>().ok());
    for w in words {
        match w.split_once('-') {
            Some((a, b)) => {
                if let (Some(a), Some(b)) = (num(a), num(b)) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(num(w)),
        }
    }
    out.sort_unstable();
    out
}

/// The text between `from` and the next `to`.
fn between<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let start = text.find(from).expect(from) + from.len();
    let rest = &text[start..];
    &rest[..rest.find(to).expect(to)]
}

#[test]
fn rules_md_kinds_of_rows_equal_the_catalogue() {
    let Some(rules) = shared_doc("rules.md") else {
        return;
    };
    let rules = rules.split_whitespace().collect::<Vec<_>>().join(" ");
    let capability = class_ids(between(&rules, "- Capability failures:", ". Each"));
    let refusal = class_ids(between(&rules, "expects a relaxed retry, are", ";"));
    let reverse = class_ids(between(
        &rules,
        "are C01-C07 and C11;",
        "are the reverse case",
    ));
    let non_refusal: Vec<u8> = capability
        .iter()
        .copied()
        .filter(|c| !refusal.contains(c) && !reverse.contains(c))
        .collect();
    let observation = class_ids(between(&rules, "- Observations on 1xx/2xx responses:", "."));
    let not_capability = class_ids(between(&rules, "- Not capability failures:", "("));
    let ours = |k: Kind| -> Vec<u8> {
        CLASSES
            .iter()
            .filter(|c| c.kind == k)
            .map(|c| c.id as u8 + 1)
            .collect()
    };
    assert_eq!(ours(Kind::Refusal), refusal, "rules.md §C refusals differ");
    assert_eq!(
        ours(Kind::Reverse),
        reverse,
        "rules.md §C reverse case differs"
    );
    assert_eq!(
        ours(Kind::NonRefusal),
        non_refusal,
        "rules.md §C non-refusals differ"
    );
    assert_eq!(
        ours(Kind::Observation),
        observation,
        "rules.md §C observations differ"
    );
    assert_eq!(
        ours(Kind::NotCapability),
        not_capability,
        "rules.md §C not-capability rows differ"
    );
}

/// The comma-separated upper-case names after `marker` up to the next
/// period.
fn list_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    let start = text.find(marker).expect(marker) + marker.len();
    let rest = &text[start..];
    let end = rest.find('.').unwrap_or(rest.len());
    rest[..end]
        .split(',')
        .map(|w| leading_identifier(w.trim()))
        .collect()
}

#[test]
fn rules_md_severity_orders_equal_the_catalogue() {
    let Some(rules) = shared_doc("rules.md") else {
        return;
    };
    let rules = rules.replace('\n', " ");
    let d3 = list_after(&rules, "Severity, high to low:");
    let ours: Vec<&str> = Verdict::ALL.iter().map(|v| v.as_str()).collect();
    assert_eq!(d3, ours, "rules.md §D.3 severity list differs");
    let e4 = list_after(&rules, "the session takes the most severe in this order:");
    let e4: Vec<&str> = e4.into_iter().map(|w| w.trim_end_matches(' ')).collect();
    let ours: Vec<&str> = PolicyKind::ALL.iter().map(|v| v.as_str()).collect();
    assert_eq!(e4, ours, "rules.md §E.4 policy order differs");
    let start = rules.find("POLICY_VIOLATION:{").expect("reasons") + "POLICY_VIOLATION:{".len();
    let end = start + rules[start..].find('}').expect("}");
    let reasons: Vec<&str> = rules[start..end].split('|').map(str::trim).collect();
    let ours: Vec<&str> = Reason::ALL.iter().map(|v| v.as_str()).collect();
    assert_eq!(reasons, ours, "rules.md §E.4 reasons differ");
}

/// SIP methods, environment variables: upper-case strings that name no
/// verdict or flag.
const NOT_CATALOGUE: &[&str] = &[
    "INVITE",
    "CANCEL",
    "REGISTER",
    "OPTIONS",
    "UPDATE",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "PUBLISH",
    // clap value names in usage text
    "OUTDIR",
    "RECORDS",
    "SESSION",
    "VERDICT",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The non-test code of a file: without its `#[cfg(test)]` items (an
/// inline module is cut to its matching brace; blank lines keep the line
/// numbers).
fn code_part(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let semi = item.find(';').unwrap_or(item.len());
        let end = match item.find('{') {
            Some(open) if open < semi => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (i, c) in item[open..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = open + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            _ => (semi + 1).min(item.len()),
        };
        out.extend(std::iter::repeat_n('\n', item[..end].matches('\n').count()));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// `"NAME` string literals of six or more upper-case characters (the grep
/// of issue 15: `grep -rn '"[A-Z][A-Z_]\{5,\}' src/`).
fn upper_literals(code: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for (i, _) in line.match_indices('"') {
            let word: String = line[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            let starts_upper = word.starts_with(|c: char| c.is_ascii_uppercase());
            if starts_upper && word.len() >= 6 {
                out.push((n + 1, word));
            }
        }
    }
    out
}

#[test]
fn no_verdict_or_flag_literal_outside_the_catalogue() {
    let root = common::root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut bad = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let test_file = rel.ends_with("_tests.rs") || rel.ends_with("/tests.rs");
        if rel.starts_with("src/rules/catalogue/") || test_file {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (line, word) in upper_literals(&code_part(&text)) {
            let named = !catalogue::lookup(&word).is_empty();
            // Environment variables: ours, the allocator's, Cargo's.
            let env_var = ["SIPAUDIT_", "MIMALLOC_", "CARGO_"]
                .iter()
                .any(|p| word.starts_with(p));
            if named || !(NOT_CATALOGUE.contains(&word.as_str()) || env_var) {
                bad.push(format!("{rel}:{line}: \"{word}\""));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "upper-case literals outside the catalogue (use its types):\n{}",
        bad.join("\n")
    );
}

#[test]
fn reference_md_is_up_to_date() {
    let path = common::root().join("docs/reference.md");
    let want = format!("{}\n", reference::markdown());
    if std::env::var_os("BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/reference.md is out of date: regenerate it with \
         `sipaudit explain --all > docs/reference.md` or `BLESS=1 cargo test --test catalogue`"
    );
    for e in catalogue::Entry::all() {
        assert!(
            have.contains(&format!("### {}\n", e.name())),
            "{}",
            e.name()
        );
    }
}

fn explain(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sipaudit"))
        .arg("explain")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn explain_prints_one_entry_or_suggests() {
    let o = explain(&["COMPLIANT_RELAXATION"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("### COMPLIANT_RELAXATION\n"), "{out}");
    assert!(
        out.contains("§D.3 item 14") && out.contains("13 of 17"),
        "{out}"
    );
    // A name that is a verdict and a flag prints both entries.
    let o = explain(&["retry_loop"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("### RETRY_LOOP").count(), 2, "{out}");
    // Flag arguments and violation reasons are understood.
    assert_eq!(explain(&["NEW_CALL_ID(H2,0.8)"]).status.code(), Some(0));
    assert_eq!(
        explain(&["POLICY_VIOLATION:DEST_IMS"]).status.code(),
        Some(0)
    );
    let o = explain(&["COMPLIANT_RELAXTION"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("COMPLIANT_RELAXATION"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let o = explain(&["--all"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{}\n", reference::markdown())
    );
}

/// `text` with the contents of comments, string and character literals
/// blanked (newlines kept), so that braces, parentheses and commas left are
/// code. Lifetimes (`'a`) are code.
fn mask_literals(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        let end = if rest.starts_with(b"//") {
            i + rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())
        } else if rest.starts_with(b"/*") {
            i + text[i..].find("*/").map_or(rest.len(), |e| e + 2)
        } else if !ident_before && (rest.starts_with(b"r\"") || rest.starts_with(b"r#")) {
            let hashes = rest[1..].iter().take_while(|&&c| c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let open = 2 + hashes;
            i + open
                + text[i + open..]
                    .find(&close)
                    .map_or(rest.len(), |e| e + close.len())
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            i + j + 1
        } else if rest[0] == b'\'' && rest.get(1) == Some(&b'\\') {
            i + 2
                + rest[2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(0, |e| e + 1)
        } else if rest[0] == b'\'' && rest.get(2) == Some(&b'\'') {
            i + 3
        } else {
            i + 1
        };
        if end > i + 1 {
            blank(&mut out, i, end.min(b.len()));
        }
        i = end.max(i + 1);
    }
    out
}

/// Every `fn` with a body in masked code: (line, name, body lines,
/// parameters besides `self`).
fn functions(code: &[u8]) -> Vec<(usize, String, usize, usize)> {
    let text = String::from_utf8_lossy(code);
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("fn ") {
        let start = from + at;
        from = start + 3;
        let word_before = start > 0 && {
            let c = code[start - 1];
            c.is_ascii_alphanumeric() || c == b'_'
        };
        let name: String = text[from..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = text[from..].find('(').map(|p| from + p) else {
            break;
        };
        if word_before || name.is_empty() || text[from + name.len()..open].contains(['{', ';']) {
            continue;
        }
        // The parameter list: commas at depth one, `->` not a closer.
        // (`pending`: text since the last comma, so a trailing comma adds
        // nothing.)
        let (mut depth, mut n, mut close, mut pending) = (0i32, 0usize, open, false);
        for (k, &c) in code.iter().enumerate().skip(open) {
            match c {
                b'>' if code[k - 1] == b'-' => {}
                b'(' | b'[' | b'{' | b'<' => depth += 1,
                b')' | b']' | b'}' | b'>' => depth -= 1,
                b',' if depth == 1 => {
                    n += 1;
                    pending = false;
                    continue;
                }
                _ => {}
            }
            if depth == 0 {
                close = k;
                break;
            }
            pending |= k > open && !c.is_ascii_whitespace();
        }
        n += usize::from(pending);
        let first = text[open + 1..close].split(',').next().unwrap_or("");
        if first.trim_end().ends_with("self") {
            n = n.saturating_sub(1);
        }
        // The body, unless the item ends with `;` first (a declaration).
        let body = match (text[close..].find('{'), text[close..].find(';')) {
            (Some(b), Some(s)) if s < b => continue,
            (Some(b), _) => close + b,
            (None, _) => continue,
        };
        let mut depth = 0usize;
        let mut end = body;
        for (k, &c) in code.iter().enumerate().skip(body) {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let line = text[..start].matches('\n').count() + 1;
        let lines = text[body..=end].matches('\n').count() + 1;
        out.push((line, name, lines, n));
    }
    out
}

/// Issue 15's done-when: no function in src/rules or src/report (tests
/// included) is longer than 120 lines or takes more than 6 parameters.
#[test]
fn rules_and_report_functions_fit_on_a_screen() {
    let root = common::root();
    let mut files = Vec::new();
    rust_files(&root.join("src/rules"), &mut files);
    rust_files(&root.join("src/report"), &mut files);
    files.sort();
    let mut bad = Vec::new();
    let mut seen = 0;
    for f in &files {
        let code = mask_literals(&std::fs::read_to_string(f).unwrap());
        for (line, name, lines, params) in functions(&code) {
            seen += 1;
            if lines > 120 || params > 6 {
                let rel = f.strip_prefix(&root).unwrap().display();
                bad.push(format!(
                    "{rel}:{line}: {name}: {lines} lines, {params} parameters"
                ));
            }
        }
    }
    assert!(seen > 300, "the scanner found only {seen} functions");
    assert!(
        bad.is_empty(),
        "too long or too many parameters:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_function_scanner_measures_what_it_should() {
    let src = r#"
fn short(a: u8, b: Vec<(u8, u8)>, f: &dyn Fn(u8, u8) -> u8) -> u8 {
    let s = "{ not a brace";
    let c = '{';
    // }
    a
}
impl X {
    pub fn method<'a>(&'a self, x: u8,) -> &'a u8 {
        /* { */
        &self.0
    }
    fn decl(&self);
}
"#;
    let got = functions(&mask_literals(src));
    assert_eq!(
        got,
        [
            (2, "short".to_string(), 6, 3),
            (9, "method".to_string(), 4, 1)
        ]
    );
}
