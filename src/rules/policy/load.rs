//! Loading a policy file (rules.md §E.3): the TOML text walked key by key,
//! each value validated (globs, addresses, regexes, codes, the version),
//! every error with its file, line and key; the built-in default is the
//! same text parsed once. It never evaluates.

use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::{EmergencyMode, NodeEntry, Policy, PolicyError, Rule, When};
use super::{BUILTIN_TOML, DestClass, Reason, WHEN_KEYS};

pub(super) fn parse_node(s: &str) -> Result<NodeEntry, String> {
    let t = s.trim();
    if let Some((addr, len)) = t.split_once('/') {
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not a valid CIDR block (bad address)"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len: u8 =
            len.parse().ok().filter(|l| *l <= max).ok_or_else(|| {
                format!("{s:?} is not a valid CIDR block (prefix length 0-{max})")
            })?;
        return Ok(NodeEntry::Net(ip, len));
    }
    let bare = t.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let len = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(NodeEntry::Net(ip, len));
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') || t.contains(':') {
        return Err(format!("{s:?} is not a valid IP address"));
    }
    if !valid_host(t, false) {
        return Err(format!(
            "{s:?} is not an IP address, a CIDR block or a host name"
        ));
    }
    Ok(NodeEntry::Host(t.to_ascii_lowercase()))
}

pub(super) fn valid_host(s: &str, glob: bool) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '.' | '_')
                || (glob && matches!(c, '*' | ':' | '[' | ']'))
        })
}

pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
}

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
// The validating parser.

pub(super) type Table<'i> = DeTable<'i>;
pub(super) type Val<'i> = Spanned<DeValue<'i>>;

pub(super) struct Parser<'t> {
    text: &'t str,
    file: String,
    default_name: String,
    base: Option<&'t Policy>,
}

/// Where and what: an error before it gets the file name.
pub(super) struct Err0 {
    span: Range<usize>,
    key: String,
    message: String,
}

pub(super) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(super) fn err(span: Range<usize>, key: &str, message: impl Into<String>) -> Err0 {
    Err0 {
        span,
        key: key.to_string(),
        message: message.into(),
    }
}

pub(super) fn wrong_type(v: &Val<'_>, key: &str, want: &str) -> Err0 {
    err(
        v.span(),
        key,
        format!("expected {want}, found {}", type_name(v.get_ref())),
    )
}

pub(super) fn one_of(v: &Val<'_>, key: &str, got: &str, allowed: &[&str]) -> Err0 {
    err(
        v.span(),
        key,
        format!("{got:?} is not one of {}", allowed.join(", ")),
    )
}

pub(super) fn get_str<'v>(v: &'v Val<'_>, key: &str) -> Result<&'v str, Err0> {
    match v.get_ref() {
        DeValue::String(s) => Ok(s.as_ref()),
        _ => Err(wrong_type(v, key, "a string")),
    }
}

pub(super) fn get_bool(v: &Val<'_>, key: &str) -> Result<bool, Err0> {
    match v.get_ref() {
        DeValue::Boolean(b) => Ok(*b),
        _ => Err(wrong_type(v, key, "a boolean (true or false)")),
    }
}

pub(super) fn get_int(v: &Val<'_>, key: &str) -> Result<i64, Err0> {
    match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| err(v.span(), key, "integer out of range")),
        _ => Err(wrong_type(v, key, "an integer")),
    }
}

/// A list of strings, each with its span.
pub(super) fn get_str_list<'v>(
    v: &'v Val<'_>,
    key: &str,
) -> Result<Vec<(&'v str, Range<usize>)>, Err0> {
    let DeValue::Array(a) = v.get_ref() else {
        return Err(wrong_type(v, key, "an array of strings"));
    };
    a.iter()
        .map(|item| match item.get_ref() {
            DeValue::String(s) => Ok((s.as_ref(), item.span())),
            _ => Err(err(
                item.span(),
                key,
                format!(
                    "expected an array of strings, found {} in it",
                    type_name(item.get_ref())
                ),
            )),
        })
        .collect()
}

pub(super) const TABLES: [&str; 5] = ["home", "destinations", "relaxation", "emergency", "rule"];
pub(super) const HOME_KEYS: [&str; 5] = [
    "domains",
    "nodes",
    "border",
    "reject_codes",
    "reject_warning_regex",
];
pub(super) const DEST_KEYS: [&str; 5] = [
    "ims_domains",
    "non_ims_domains",
    "tel_uri_class",
    "unknown_as",
    "infer_from_signaling",
];
pub(super) const RELAX_KEYS: [&str; 10] = [
    "allowed",
    "allowed_capabilities",
    "forbidden_capabilities",
    "allowed_destinations",
    "max_retries",
    "extra_droppable",
    "window_s",
    "require_same_call_id",
    "require_desired_listing",
    "sdp_mode",
];
pub(super) const EMERGENCY_KEYS: [&str; 2] = ["match", "relaxation"];
pub(super) const RULE_KEYS: [&str; 4] = ["id", "when", "action", "reason"];

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
        self.build(root.get_ref(), root.span())
            .map_err(|e| PolicyError {
                file: self.file.clone(),
                line: self.line_of(e.span.start),
                key: e.key,
                message: e.message,
            })
    }

    /// Validate every key and build the policy. The first error in file
    /// order is reported, whatever the order in which tables are visited.
    fn build(&self, root: &Table<'_>, root_span: Range<usize>) -> Result<Policy, Err0> {
        let mut errors: Vec<Err0> = Vec::new();
        let mut p = match self.base {
            Some(b) => b.clone(),
            None => placeholder(),
        };
        p.name = self.default_name.clone();
        let mut seen_version = false;
        for (k, v) in root.iter() {
            let key = k.get_ref().as_ref();
            let res = match key {
                "version" => {
                    seen_version = true;
                    get_int(v, "version").and_then(|n| {
                        if n == 1 {
                            Ok(())
                        } else {
                            Err(err(
                                v.span(),
                                "version",
                                format!("{n} is not supported (must be 1)"),
                            ))
                        }
                    })
                }
                "name" => get_str(v, "name").and_then(|s| {
                    if s.trim().is_empty() {
                        Err(err(v.span(), "name", "must not be empty"))
                    } else {
                        p.name = s.to_string();
                        Ok(())
                    }
                }),
                "home" => self.table(v, "home", &HOME_KEYS, &mut errors, |k, v, e| {
                    self.home_key(&mut p, k, v, e)
                }),
                "destinations" => {
                    self.table(v, "destinations", &DEST_KEYS, &mut errors, |k, v, e| {
                        self.dest_key(&mut p, k, v, e)
                    })
                }
                "relaxation" => self.table(v, "relaxation", &RELAX_KEYS, &mut errors, |k, v, e| {
                    self.relax_key(&mut p, k, v, e)
                }),
                "emergency" => {
                    self.table(v, "emergency", &EMERGENCY_KEYS, &mut errors, |k, v, e| {
                        self.emergency_key(&mut p, k, v, e)
                    })
                }
                "rule" => self.rules(v, &mut p, &mut errors),
                other => {
                    let expected = format!("{}, [[rule]]", TABLES[..4].join(", "));
                    Err(if matches!(v.get_ref(), DeValue::Table(_)) {
                        err(
                            k.span(),
                            &format!("[{other}]"),
                            format!("unknown table (expected one of {expected})"),
                        )
                    } else {
                        err(
                            k.span(),
                            other,
                            format!("unknown key (expected version, name or a table: {expected})"),
                        )
                    })
                }
            };
            if let Err(e) = res {
                errors.push(e);
            }
        }
        if !seen_version {
            errors.push(err(
                root_span.start..root_span.start,
                "version",
                "missing (`version = 1` is required)",
            ));
        }
        if let Some(e) = errors.into_iter().min_by_key(|e| e.span.start) {
            return Err(e);
        }
        Ok(p)
    }

    /// Visit the keys of a table, refusing unknown ones; each key's error is
    /// collected so that the earliest one wins.
    fn table(
        &self,
        v: &Val<'_>,
        name: &str,
        keys: &[&str],
        errors: &mut Vec<Err0>,
        mut each: impl FnMut(&str, &Val<'_>, &str) -> Result<(), Err0>,
    ) -> Result<(), Err0> {
        let DeValue::Table(t) = v.get_ref() else {
            return Err(wrong_type(v, name, &format!("a table [{name}]")));
        };
        for (k, val) in t.iter() {
            let key = k.get_ref().as_ref();
            let label = format!("[{name}] {key}");
            if !keys.contains(&key) {
                errors.push(err(
                    k.span(),
                    &label,
                    format!("unknown key (expected one of {})", keys.join(", ")),
                ));
                continue;
            }
            if let Err(e) = each(key, val, &label) {
                errors.push(e);
            }
        }
        Ok(())
    }

    fn home_key(&self, p: &mut Policy, k: &str, v: &Val<'_>, label: &str) -> Result<(), Err0> {
        match k {
            "domains" => {
                let mut out = Vec::new();
                for (s, span) in get_str_list(v, label)? {
                    let d = s.trim().trim_start_matches("*.");
                    if !valid_host(d, false) {
                        return Err(err(span, label, format!("{s:?} is not a domain name")));
                    }
                    out.push(s.trim().to_ascii_lowercase());
                }
                p.domains = out;
            }
            "nodes" | "border" => {
                let mut raw = Vec::new();
                let mut entries = Vec::new();
                for (s, span) in get_str_list(v, label)? {
                    entries.push(parse_node(s).map_err(|m| err(span, label, m))?);
                    raw.push(s.trim().to_string());
                }
                if k == "nodes" {
                    p.nodes = raw;
                    p.node_entries = entries;
                } else {
                    p.border = raw;
                    p.border_entries = entries;
                }
            }
            "reject_codes" => {
                let DeValue::Array(a) = v.get_ref() else {
                    return Err(wrong_type(v, label, "an array of status codes"));
                };
                let mut codes = Vec::new();
                for item in a.iter() {
                    let n = get_int(item, label)?;
                    if !(100..=699).contains(&n) {
                        return Err(err(
                            item.span(),
                            label,
                            format!("{n} is not a SIP status code (100-699)"),
                        ));
                    }
                    codes.push(n as u16);
                }
                p.reject_codes = codes;
            }
            "reject_warning_regex" => {
                let s = get_str(v, label)?;
                p.reject_warning_regex = regex::Regex::new(s).map_err(|e| {
                    let m = e.to_string();
                    let last = m.lines().rev().map(str::trim).find(|l| !l.is_empty());
                    err(
                        v.span(),
                        label,
                        format!(
                            "{s:?} is not a valid regular expression: {}",
                            last.unwrap_or("invalid")
                        ),
                    )
                })?;
            }
            _ => unreachable!("checked against HOME_KEYS"),
        }
        Ok(())
    }

    fn dest_key(&self, p: &mut Policy, k: &str, v: &Val<'_>, label: &str) -> Result<(), Err0> {
        match k {
            "ims_domains" | "non_ims_domains" => {
                let mut out = Vec::new();
                for (s, span) in get_str_list(v, label)? {
                    if !valid_host(s.trim(), true) {
                        return Err(err(
                            span,
                            label,
                            format!("{s:?} is not a host glob (e.g. \"*.example.org\")"),
                        ));
                    }
                    out.push(s.trim().to_ascii_lowercase());
                }
                if k == "ims_domains" {
                    p.ims_domains = out;
                } else {
                    p.non_ims_domains = out;
                }
            }
            "tel_uri_class" => {
                let s = get_str(v, label)?;
                p.tel_uri_class = DestClass::from_policy_name(s)
                    .ok_or_else(|| one_of(v, label, s, &["ims", "non_ims", "unknown"]))?;
            }
            "unknown_as" => {
                let s = get_str(v, label)?;
                p.unknown_as = match s {
                    "ims" => Some(DestClass::Ims),
                    "non_ims" => Some(DestClass::NonIms),
                    "undetermined" => None,
                    _ => return Err(one_of(v, label, s, &["ims", "non_ims", "undetermined"])),
                };
            }
            "infer_from_signaling" => p.infer_from_signaling = get_bool(v, label)?,
            _ => unreachable!("checked against DEST_KEYS"),
        }
        Ok(())
    }

    fn relax_key(&self, p: &mut Policy, k: &str, v: &Val<'_>, label: &str) -> Result<(), Err0> {
        let caps = |v: &Val<'_>| -> Result<Vec<String>, Err0> {
            let mut out = Vec::new();
            for (s, span) in get_str_list(v, label)? {
                let t = s.trim();
                if t != "*" && !is_token(t) {
                    return Err(err(
                        span,
                        label,
                        format!("{s:?} is not an option tag, UPDATE or \"*\""),
                    ));
                }
                out.push(t.to_string());
            }
            Ok(out)
        };
        match k {
            "allowed" => p.allowed = get_bool(v, label)?,
            "allowed_capabilities" => p.allowed_capabilities = caps(v)?,
            "forbidden_capabilities" => p.forbidden_capabilities = caps(v)?,
            "allowed_destinations" => {
                let mut out = Vec::new();
                for (s, span) in get_str_list(v, label)? {
                    let c = DestClass::from_policy_name(s).ok_or_else(|| {
                        err(
                            span.clone(),
                            label,
                            format!("{s:?} is not one of ims, non_ims, unknown"),
                        )
                    })?;
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
                p.allowed_destinations = out;
            }
            "max_retries" => {
                let n = get_int(v, label)?;
                p.max_retries = u32::try_from(n).map_err(|_| {
                    err(
                        v.span(),
                        label,
                        format!("{n} is not a non-negative integer"),
                    )
                })?;
            }
            "extra_droppable" => {
                let mut out = Vec::new();
                for (s, span) in get_str_list(v, label)? {
                    let t = s.trim();
                    if !is_token(t) || t == "*" {
                        return Err(err(span, label, format!("{s:?} is not an option tag")));
                    }
                    out.push(t.to_ascii_lowercase());
                }
                p.extra_droppable = out;
            }
            "window_s" => {
                let secs = match v.get_ref() {
                    DeValue::Integer(_) => get_int(v, label)? as f64,
                    DeValue::Float(f) => f.as_str().parse::<f64>().unwrap_or(f64::NAN),
                    _ => return Err(wrong_type(v, label, "a number of seconds")),
                };
                if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0 * 365.0) {
                    return Err(err(
                        v.span(),
                        label,
                        "must be a positive number of seconds (at most a year)",
                    ));
                }
                p.window_s = secs;
            }
            "require_same_call_id" => p.require_same_call_id = get_bool(v, label)?,
            "require_desired_listing" => p.require_desired_listing = get_bool(v, label)?,
            "sdp_mode" => {
                let s = get_str(v, label)?;
                p.sdp_strict = match s {
                    "strict" => true,
                    "ims-lenient" => false,
                    _ => return Err(one_of(v, label, s, &["strict", "ims-lenient"])),
                };
            }
            _ => unreachable!("checked against RELAX_KEYS"),
        }
        Ok(())
    }

    fn emergency_key(&self, p: &mut Policy, k: &str, v: &Val<'_>, label: &str) -> Result<(), Err0> {
        match k {
            "match" => {
                let mut out = Vec::new();
                for (s, span) in get_str_list(v, label)? {
                    let t = s.trim();
                    if t.is_empty() || t.chars().any(char::is_whitespace) {
                        return Err(err(span, label, format!("{s:?} is not a Request-URI glob")));
                    }
                    out.push(t.to_string());
                }
                p.emergency_match = out;
            }
            "relaxation" => {
                let s = get_str(v, label)?;
                p.emergency_mode = match s {
                    "always_allow" => EmergencyMode::AlwaysAllow,
                    "never" => EmergencyMode::Never,
                    "follow_policy" => EmergencyMode::FollowPolicy,
                    _ => return Err(one_of(v, label, s, &EmergencyMode::NAMES)),
                };
            }
            _ => unreachable!("checked against EMERGENCY_KEYS"),
        }
        Ok(())
    }

    fn rules(&self, v: &Val<'_>, p: &mut Policy, errors: &mut Vec<Err0>) -> Result<(), Err0> {
        let DeValue::Array(a) = v.get_ref() else {
            return Err(wrong_type(v, "[[rule]]", "an array of tables ([[rule]])"));
        };
        let mut rules: Vec<Rule> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for item in a.iter() {
            match self.rule(item) {
                Ok((r, id_span)) => {
                    if ids.contains(&r.id) {
                        errors.push(err(
                            id_span,
                            "[[rule]] id",
                            format!("duplicate rule id {:?}", r.id),
                        ));
                    } else {
                        ids.push(r.id.clone());
                        rules.push(r);
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        p.rules = rules;
        Ok(())
    }

    fn rule(&self, item: &Val<'_>) -> Result<(Rule, Range<usize>), Err0> {
        let DeValue::Table(t) = item.get_ref() else {
            return Err(wrong_type(item, "[[rule]]", "a table"));
        };
        let mut errors: Vec<Err0> = Vec::new();
        let mut id: Option<(String, Range<usize>)> = None;
        let mut when: Vec<(When, Vec<String>)> = Vec::new();
        let mut emergency: Option<bool> = None;
        let mut action: Option<bool> = None;
        let mut reason: Option<(Reason, Range<usize>)> = None;
        for (k, v) in t.iter() {
            let key = k.get_ref().as_ref();
            let label = format!("[[rule]] {key}");
            let res: Result<(), Err0> = (|| {
                match key {
                    "id" => {
                        let s = get_str(v, &label)?;
                        if s.trim().is_empty() {
                            return Err(err(v.span(), &label, "must not be empty"));
                        }
                        id = Some((s.to_string(), v.span()));
                    }
                    "action" => {
                        let s = get_str(v, &label)?;
                        action = Some(match s {
                            "allow" => true,
                            "deny" => false,
                            _ => return Err(one_of(v, &label, s, &["allow", "deny"])),
                        });
                    }
                    "reason" => {
                        let s = get_str(v, &label)?;
                        let r = s.parse::<Reason>().map_err(|_| {
                            let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
                            one_of(v, &label, s, &names)
                        })?;
                        reason = Some((r, v.span()));
                    }
                    "when" => when_table(v, &label, &mut when, &mut emergency)?,
                    _ => {
                        return Err(err(
                            k.span(),
                            &label,
                            format!("unknown key (expected one of {})", RULE_KEYS.join(", ")),
                        ));
                    }
                }
                Ok(())
            })();
            if let Err(e) = res {
                errors.push(e);
            }
        }
        if let Some(e) = errors.into_iter().min_by_key(|e| e.span.start) {
            return Err(e);
        }
        let at = item.span();
        let Some((id, id_span)) = id else {
            return Err(err(
                at,
                "[[rule]] id",
                "missing (every rule needs a unique id)",
            ));
        };
        let Some(allow) = action else {
            return Err(err(
                at,
                "[[rule]] action",
                format!("missing in rule {id:?} (allow or deny)"),
            ));
        };
        if allow && let Some((_, span)) = reason {
            return Err(err(
                span,
                "[[rule]] reason",
                format!("rule {id:?} allows: only a deny rule has a reason"),
            ));
        }
        when.sort_by_key(|(w, _)| WHEN_KEYS.iter().position(|k| *k == w.key()));
        let derived = derived_reason(&when, emergency);
        let reason = (!allow).then(|| reason.map(|(r, _)| r).unwrap_or(derived));
        Ok((
            Rule {
                id,
                when,
                emergency,
                allow,
                reason,
            },
            id_span,
        ))
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

/// A rule's `when` inline table: each key's patterns (a string or a list),
/// `emergency` a boolean.
fn when_table(
    v: &Val<'_>,
    label: &str,
    when: &mut Vec<(When, Vec<String>)>,
    emergency: &mut Option<bool>,
) -> Result<(), Err0> {
    let DeValue::Table(w) = v.get_ref() else {
        return Err(wrong_type(v, label, "an inline table"));
    };
    for (wk, wv) in w.iter() {
        let wkey = wk.get_ref().as_ref();
        let wlabel = format!("[[rule]] when.{wkey}");
        if wkey == "emergency" {
            *emergency = Some(get_bool(wv, &wlabel)?);
            continue;
        }
        let Some(which) = When::from_key(wkey) else {
            return Err(err(
                wk.span(),
                &wlabel,
                format!("unknown key (expected one of {})", WHEN_KEYS.join(", ")),
            ));
        };
        when.push((which, when_patterns(which, wv, &wlabel)?));
    }
    Ok(())
}

/// The patterns of one `when` key, trimmed; destination and identity values
/// checked against their words and lowercased.
fn when_patterns(which: When, wv: &Val<'_>, wlabel: &str) -> Result<Vec<String>, Err0> {
    let pats: Vec<(String, Range<usize>)> = match wv.get_ref() {
        DeValue::String(s) => vec![(s.to_string(), wv.span())],
        DeValue::Array(_) => get_str_list(wv, wlabel)?
            .into_iter()
            .map(|(s, r)| (s.to_string(), r))
            .collect(),
        _ => {
            return Err(wrong_type(wv, wlabel, "a string or an array of strings"));
        }
    };
    let mut out = Vec::new();
    for (s, span) in pats {
        let t = s.trim().to_string();
        if t.is_empty() {
            return Err(err(span, wlabel, "an empty pattern matches nothing"));
        }
        let words: &[&str] = match which {
            When::Destination => &["ims", "non_ims", "unknown"],
            When::Identity => &["same_call_id", "new_call_id"],
            _ => {
                out.push(t);
                continue;
            }
        };
        let l = t.to_ascii_lowercase();
        if !words.contains(&l.as_str()) {
            return Err(err(
                span,
                wlabel,
                format!("{s:?} is not one of {}", words.join(", ")),
            ));
        }
        out.push(l);
    }
    Ok(out)
}
