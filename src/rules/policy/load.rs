//! Loading a policy file (rules.md §E.3): the TOML text deserialized into
//! the serde model of schema.rs (which validates each value), merged over
//! the built-in default, the rules checked across keys; every error with
//! its file, line and key label (found from the error's span). The
//! built-in default is the same text parsed once. It never evaluates.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use toml::de::{DeTable, DeValue};

use serde::Deserialize;
use toml::Spanned;

use super::model::{EmergencyMode, Policy, PolicyError, Rule, When};
use super::schema::{Destinations, File, Home, List, RawRule, Relaxation};
use super::{BUILTIN_TOML, DestClass, Reason, WHEN_KEYS};

impl Policy {
    /// The built-in default policy of rules.md §E.3 ([`BUILTIN_TOML`]).
    pub fn builtin() -> Policy {
        static BUILTIN: OnceLock<Policy> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                Parser::new(BUILTIN_TOML, "builtin-default", "builtin-default", None)
                    .run()
                    .expect("the built-in policy of rules.md §E.3 is valid")
            })
            .clone()
    }

    /// Read and validate a policy file. `name` defaults to the file name
    /// without its extension; errors name the path as given.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: file.clone(),
            line: 0,
            key: String::new(),
            message: format!("cannot read the policy file: {e}"),
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone());
        Parser::new(&text, &file, &stem, Some(&Policy::builtin())).run()
    }

    /// Validate policy text. `default_name` is the `name` when the text has
    /// none, and the file name that errors carry.
    pub fn parse(text: &str, default_name: &str) -> Result<Policy, PolicyError> {
        Parser::new(text, default_name, default_name, Some(&Policy::builtin())).run()
    }
}

// ---------------------------------------------------------------------------
// The parser: TOML syntax, then the serde model of schema.rs, then the
// checks across keys; every error gets its line and key label.

pub(super) struct Parser<'t> {
    text: &'t str,
    file: String,
    default_name: String,
    base: Option<&'t Policy>,
}

/// Where and what: an error before it gets the file name and line.
pub(super) struct Err0 {
    span: Range<usize>,
    key: String,
    message: String,
}

fn err(span: Range<usize>, key: &str, message: impl Into<String>) -> Err0 {
    Err0 {
        span,
        key: key.to_string(),
        message: message.into(),
    }
}

/// One key of the document: its path (array items add nothing), the spans
/// of the key and of its value, and whether the value is a table.
struct Located {
    path: Vec<String>,
    key: Range<usize>,
    value: Range<usize>,
    table: bool,
}

/// Every key of the document, depth first.
fn locate_all(t: &DeTable<'_>, path: &[String], out: &mut Vec<Located>) {
    for (k, v) in t.iter() {
        let mut p = path.to_vec();
        p.push(k.get_ref().to_string());
        let table = matches!(v.get_ref(), DeValue::Table(_));
        out.push(Located {
            path: p.clone(),
            key: k.span(),
            value: v.span(),
            table,
        });
        match v.get_ref() {
            DeValue::Table(inner) => locate_all(inner, &p, out),
            DeValue::Array(a) => {
                for item in a.iter() {
                    if let DeValue::Table(inner) = item.get_ref() {
                        out.push(Located {
                            path: p.clone(),
                            key: item.span(),
                            value: item.span(),
                            table: true,
                        });
                        locate_all(inner, &p, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The path of the table whose span is exactly `span` (a missing key is
/// reported on its table); the root when none is.
fn locate_table(root: &DeTable<'_>, span: &Range<usize>) -> Vec<String> {
    let mut all = Vec::new();
    locate_all(root, &[], &mut all);
    all.into_iter()
        .filter(|l| l.table && l.value == *span)
        .max_by_key(|l| l.path.len())
        .map(|l| l.path)
        .unwrap_or_default()
}

/// The deepest key whose name or value holds the span: its path and
/// whether its value is a table; the root when none does.
fn locate(root: &DeTable<'_>, span: &Range<usize>) -> (Vec<String>, bool) {
    let mut all = Vec::new();
    locate_all(root, &[], &mut all);
    let holds = |r: &Range<usize>| r.start <= span.start && span.end <= r.end.max(r.start + 1);
    all.into_iter()
        .filter(|l| holds(&l.key) || holds(&l.value))
        .max_by_key(|l| l.path.len())
        .map(|l| (l.path, l.table))
        .unwrap_or_default()
}

/// The label of a key path: `version`, `[relaxation] sdp_mode`,
/// `[[rule]] when.capability`, `[[rule]]`, `[bogus]` (an unknown table).
fn label(path: &[String], table: bool) -> String {
    match path {
        [] => String::new(),
        [t] if t == "rule" => "[[rule]]".into(),
        [t] if table => format!("[{t}]"),
        [k] => k.clone(),
        [t, rest @ ..] if t == "rule" => format!("[[rule]] {}", rest.join(".")),
        [t, rest @ ..] => format!("[{t}] {}", rest.join(".")),
    }
}

/// A serde error as an [`Err0`]: the key from the span, serde's wording of
/// an unknown or missing key turned into the policy file's.
fn from_serde(root: &DeTable<'_>, e: &toml::de::Error) -> Err0 {
    let span = e.span().unwrap_or(0..0);
    let (path, table) = locate(root, &span);
    let msg = e.message().to_string();
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let mut path = locate_table(root, &span);
        path.push(field.to_string());
        let hint = match field {
            "version" => "missing (`version = 1` is required)",
            "id" => "missing (every rule needs a unique id)",
            "action" => "missing (allow or deny)",
            _ => "missing",
        };
        return err(span, &label(&path, false), hint);
    }
    if msg.starts_with("unknown field `") {
        let expected = msg.split_once(", expected ").map_or("", |(_, x)| x);
        let what = if path.len() == 1 && table {
            "table"
        } else {
            "key"
        };
        let message = format!("unknown {what} (expected {})", expected.replace('`', ""));
        return err(span, &label(&path, table && path.len() == 1), message);
    }
    err(span, &label(&path, false), msg)
}

impl<'t> Parser<'t> {
    fn new(text: &'t str, file: &str, default_name: &str, base: Option<&'t Policy>) -> Self {
        Parser {
            text,
            file: file.to_string(),
            default_name: default_name.to_string(),
            base,
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        let end = (0..=end)
            .rev()
            .find(|i| self.text.is_char_boundary(*i))
            .unwrap_or(0);
        self.text[..end].bytes().filter(|b| *b == b'\n').count() + 1
    }

    fn run(&self) -> Result<Policy, PolicyError> {
        let root = DeTable::parse(self.text).map_err(|e| {
            let line = e.span().map(|s| self.line_of(s.start)).unwrap_or(1);
            let msg = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            PolicyError {
                file: self.file.clone(),
                line,
                key: "TOML syntax".into(),
                message: msg,
            }
        })?;
        let located = |e: Err0| PolicyError {
            file: self.file.clone(),
            line: self.line_of(e.span.start),
            key: e.key,
            message: e.message,
        };
        let file = File::deserialize(toml::de::Deserializer::from(root.clone()));
        // serde stops at the first error in visiting order (document order,
        // tables included); the checks across keys are made on their own so
        // that the earliest error in the file is the one reported.
        let mut errors = across_keys(root.get_ref());
        if let Err(e) = &file {
            errors.push(from_serde(root.get_ref(), e));
            errors.extend(each_table(&root));
        }
        if let Some(e) = errors.into_iter().min_by_key(|e| e.span.start) {
            return Err(located(e));
        }
        Ok(self.build(file.expect("no error")))
    }

    /// The policy: the base with every key the file sets.
    fn build(&self, f: File) -> Policy {
        let mut p = match self.base {
            Some(b) => b.clone(),
            None => placeholder(),
        };
        p.name = f.name.map_or_else(|| self.default_name.clone(), |n| n.0);
        if let Some(h) = f.home {
            set_home(&mut p, h);
        }
        if let Some(d) = f.destinations {
            set_destinations(&mut p, d);
        }
        if let Some(r) = f.relaxation {
            set_relaxation(&mut p, r);
        }
        if let Some(e) = f.emergency {
            set(&mut p.emergency_match, e.matches, |l| {
                l.0.into_iter().map(|g| g.0).collect()
            });
            set(&mut p.emergency_mode, e.relaxation, |w| w.0);
        }
        if let Some(r) = f.rule {
            p.rules = r.0.into_iter().map(|r| rule(r.into_inner())).collect();
        }
        p
    }
}

/// Overwrite a field with a given value.
fn set<T, V>(field: &mut T, value: Option<V>, f: impl FnOnce(V) -> T) {
    if let Some(v) = value {
        *field = f(v);
    }
}

fn strings<T>(l: List<T>, f: impl Fn(T) -> String) -> Vec<String> {
    l.0.into_iter().map(f).collect()
}

fn set_home(p: &mut Policy, h: Home) {
    set(&mut p.domains, h.domains, |l| strings(l, |d| d.0));
    if let Some(l) = h.nodes {
        (p.nodes, p.node_entries) = l.0.into_iter().map(|n| (n.0, n.1)).unzip();
    }
    if let Some(l) = h.border {
        (p.border, p.border_entries) = l.0.into_iter().map(|n| (n.0, n.1)).unzip();
    }
    set(&mut p.reject_codes, h.reject_codes, |c| c.0);
    set(&mut p.reject_warning_regex, h.reject_warning_regex, |r| r.0);
}

fn set_destinations(p: &mut Policy, d: Destinations) {
    set(&mut p.ims_domains, d.ims_domains, |l| strings(l, |g| g.0));
    set(&mut p.non_ims_domains, d.non_ims_domains, |l| {
        strings(l, |g| g.0)
    });
    set(&mut p.tel_uri_class, d.tel_uri_class, |w| w.0.0);
    set(&mut p.unknown_as, d.unknown_as, |w| w.0.0);
    set(&mut p.infer_from_signaling, d.infer_from_signaling, |b| b);
}

fn set_relaxation(p: &mut Policy, r: Relaxation) {
    set(&mut p.allowed, r.allowed, |b| b);
    set(&mut p.allowed_capabilities, r.allowed_capabilities, |l| {
        strings(l, |t| t.0)
    });
    set(
        &mut p.forbidden_capabilities,
        r.forbidden_capabilities,
        |l| strings(l, |t| t.0),
    );
    set(&mut p.allowed_destinations, r.allowed_destinations, |l| {
        let mut out: Vec<DestClass> = Vec::new();
        for c in l.0.into_iter().map(|w| w.0) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    });
    set(&mut p.max_retries, r.max_retries, |c| c.0);
    set(&mut p.extra_droppable, r.extra_droppable, |l| {
        strings(l, |t| t.0)
    });
    set(&mut p.window_s, r.window_s, |s| s.0);
    set(&mut p.require_same_call_id, r.require_same_call_id, |b| b);
    set(
        &mut p.require_desired_listing,
        r.require_desired_listing,
        |b| b,
    );
    set(&mut p.sdp_strict, r.sdp_mode, |w| w.0.0);
}

/// The errors that no single value shows: a missing `version` (reported
/// at the top of the file), a reason on an allow rule, a duplicate rule id.
/// Each `[[rule]]` is deserialized on its own; one that fails is left to
/// the whole file's deserialization.
fn across_keys(root: &DeTable<'_>) -> Vec<Err0> {
    let mut errors = Vec::new();
    if !root.contains_key("version") {
        errors.push(err(0..0, "version", "missing (`version = 1` is required)"));
    }
    let Some(DeValue::Array(items)) = root.get("rule").map(|v| v.get_ref()) else {
        return errors;
    };
    let mut ids: Vec<String> = Vec::new();
    for item in items.iter() {
        let de = toml::de::ValueDeserializer::from(item.clone());
        let Ok(r) = RawRule::deserialize(de) else {
            continue;
        };
        let id = r.id.get_ref().0.clone();
        if r.action.0.0
            && let Some(reason) = &r.reason
        {
            errors.push(err(
                reason.span(),
                "[[rule]] reason",
                format!("rule {id:?} allows: only a deny rule has a reason"),
            ));
        } else if ids.contains(&id) {
            errors.push(err(
                r.id.span(),
                "[[rule]] id",
                format!("duplicate rule id {id:?}"),
            ));
        } else {
            ids.push(id);
        }
    }
    errors
}

/// The first error of each top-level key deserialized alone (with
/// `version`): a table split over the file (`[relaxation]` … `[home]` …
/// `[relaxation.x]`) is visited as one, so the whole file's first error in
/// visiting order may not be its earliest.
fn each_table(root: &Spanned<DeTable<'_>>) -> Vec<Err0> {
    let version = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "version");
    let mut errors = Vec::new();
    for (k, v) in root.get_ref().iter() {
        let mut alone = DeTable::new();
        if let Some((vk, vv)) = version {
            alone.insert(vk.clone(), vv.clone());
        }
        alone.insert(k.clone(), v.clone());
        let de = toml::de::Deserializer::from(Spanned::new(root.span(), alone));
        if let Err(e) = File::deserialize(de) {
            errors.push(from_serde(root.get_ref(), &e));
        }
    }
    errors
}

/// A rule whose keys were checked by [`across_keys`].
fn rule(r: RawRule) -> Rule {
    let allow = r.action.0.0;
    let (when, emergency) = match r.when {
        Some(w) => {
            let e = w.emergency;
            (w.conditions(), e)
        }
        None => (Vec::new(), None),
    };
    let derived = derived_reason(&when, emergency);
    let reason = (!allow).then(|| r.reason.map_or(derived, |x| x.into_inner().0));
    Rule {
        id: r.id.into_inner().0,
        when,
        emergency,
        allow,
        reason,
    }
}

/// The starting point for parsing the built-in text itself (which sets
/// every key); never seen by users.
pub(super) fn placeholder() -> Policy {
    Policy {
        name: String::new(),
        domains: Vec::new(),
        nodes: Vec::new(),
        node_entries: Vec::new(),
        border: Vec::new(),
        border_entries: Vec::new(),
        reject_codes: Vec::new(),
        reject_warning_regex: regex::Regex::new("$^").expect("valid"),
        ims_domains: Vec::new(),
        non_ims_domains: Vec::new(),
        tel_uri_class: DestClass::Unknown,
        unknown_as: None,
        infer_from_signaling: false,
        allowed: false,
        allowed_capabilities: Vec::new(),
        forbidden_capabilities: Vec::new(),
        allowed_destinations: Vec::new(),
        max_retries: 0,
        extra_droppable: Vec::new(),
        window_s: 32.0,
        require_same_call_id: false,
        require_desired_listing: false,
        sdp_strict: false,
        emergency_match: Vec::new(),
        emergency_mode: EmergencyMode::AlwaysAllow,
        rules: Vec::new(),
    }
}

/// A deny rule's default reason: from the first `when` key present, in
/// [`WHEN_KEYS`] order (rules.md §E.3).
fn derived_reason(when: &[(When, Vec<String>)], emergency: Option<bool>) -> Reason {
    let first = WHEN_KEYS.iter().find(|k| {
        (**k == "emergency" && emergency.is_some()) || when.iter().any(|(w, _)| w.key() == **k)
    });
    match first.copied() {
        Some("destination") => Reason::DestIms,
        Some("capability") => Reason::CapabilityNotRelaxable,
        Some("subscriber") => Reason::Subscriber,
        Some("origin_domain" | "visited_network" | "access_type") => Reason::Origin,
        Some("emergency") => Reason::Emergency,
        Some("identity") => Reason::SameCallIdRequired,
        _ => Reason::RelaxationForbidden,
    }
}
