//! The policy file as serde types (rules.md §E.3): one derived struct per
//! table, `deny_unknown_fields` everywhere, and the domain checks of each
//! value (globs, addresses and CIDR blocks, regexes, codes, words, the
//! version) in the value's own `Deserialize`. It owns the shape of the file
//! and the message of a bad value; it never names a line (load.rs does) and
//! never merges into a [`super::Policy`].

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

use super::DestClass;
use super::model::{EmergencyMode, NodeEntry, When};
use crate::rules::catalogue::Reason;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct File {
    /// Checked while deserializing; nothing to keep.
    #[serde(rename = "version")]
    pub(super) _version: Version,
    pub(super) name: Option<Name>,
    pub(super) home: Option<Home>,
    pub(super) destinations: Option<Destinations>,
    pub(super) relaxation: Option<Relaxation>,
    pub(super) emergency: Option<Emergency>,
    pub(super) rule: Option<Rules>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([home])")]
pub(super) struct Home {
    pub(super) domains: Option<List<Domain>>,
    pub(super) nodes: Option<List<Node>>,
    pub(super) border: Option<List<Node>>,
    pub(super) reject_codes: Option<Codes>,
    pub(super) reject_warning_regex: Option<Regex>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([destinations])")]
pub(super) struct Destinations {
    pub(super) ims_domains: Option<List<HostGlob>>,
    pub(super) non_ims_domains: Option<List<HostGlob>>,
    pub(super) tel_uri_class: Option<Word<TelClass>>,
    pub(super) unknown_as: Option<Word<UnknownAs>>,
    pub(super) infer_from_signaling: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([relaxation])")]
pub(super) struct Relaxation {
    pub(super) allowed: Option<bool>,
    pub(super) allowed_capabilities: Option<List<CapTag>>,
    pub(super) forbidden_capabilities: Option<List<CapTag>>,
    pub(super) allowed_destinations: Option<List<TelClass>>,
    pub(super) max_retries: Option<Count>,
    pub(super) extra_droppable: Option<List<DropTag>>,
    pub(super) window_s: Option<Seconds>,
    pub(super) require_same_call_id: Option<bool>,
    pub(super) require_desired_listing: Option<bool>,
    pub(super) sdp_mode: Option<Word<SdpMode>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([emergency])")]
pub(super) struct Emergency {
    #[serde(rename = "match")]
    pub(super) matches: Option<List<UriGlob>>,
    pub(super) relaxation: Option<Word<EmergencyMode>>,
}

/// One `[[rule]]`; the checks across keys (a reason on an allow rule,
/// duplicate ids) need the spans and are made by load.rs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table ([[rule]])")]
pub(super) struct RawRule {
    pub(super) id: Spanned<Name>,
    pub(super) when: Option<WhenTable>,
    pub(super) action: Word<Action>,
    pub(super) reason: Option<Spanned<Word<Reason>>>,
}

/// A rule's `when` inline table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an inline table")]
pub(super) struct WhenTable {
    pub(super) destination: Option<Patterns<DestWord>>,
    pub(super) capability: Option<Patterns<Pattern>>,
    pub(super) subscriber: Option<Patterns<Pattern>>,
    pub(super) origin_domain: Option<Patterns<Pattern>>,
    pub(super) visited_network: Option<Patterns<Pattern>>,
    pub(super) access_type: Option<Patterns<Pattern>>,
    pub(super) emergency: Option<bool>,
    pub(super) identity: Option<Patterns<IdentityWord>>,
}

impl WhenTable {
    /// The string-valued conditions in [`super::WHEN_KEYS`] order.
    pub(super) fn conditions(self) -> Vec<(When, Vec<String>)> {
        let pats = |p: Option<Patterns<Pattern>>| p.map(|p| p.0.into_iter().map(|x| x.0).collect());
        let words =
            |p: Option<Patterns<DestWord>>| p.map(|p| p.0.into_iter().map(|x| x.0).collect());
        let ids =
            |p: Option<Patterns<IdentityWord>>| p.map(|p| p.0.into_iter().map(|x| x.0).collect());
        [
            (When::Destination, words(self.destination)),
            (When::Capability, pats(self.capability)),
            (When::Subscriber, pats(self.subscriber)),
            (When::OriginDomain, pats(self.origin_domain)),
            (When::VisitedNetwork, pats(self.visited_network)),
            (When::AccessType, pats(self.access_type)),
            (When::Identity, ids(self.identity)),
        ]
        .into_iter()
        .filter_map(|(w, p)| p.map(|p| (w, p)))
        .collect()
    }
}

// ---------------------------------------------------------------------------
// Scalars with their checks.

/// `version`: an integer, and 1.
pub(super) struct Version;

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let one = |n| match n {
            1 => Ok(n),
            _ => Err(format!("{n} is not supported (must be 1)")),
        };
        d.deserialize_any(IntVisitor("an integer", one))
            .map(|_| Version)
    }
}

/// `[relaxation] max_retries`: a non-negative integer.
pub(super) struct Count(pub(super) u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fits = |n| match u32::try_from(n) {
            Ok(_) => Ok(n),
            Err(_) => Err(format!("{n} is not a non-negative integer")),
        };
        let n = d.deserialize_any(IntVisitor("an integer (0 or more)", fits))?;
        Ok(Count(n as u32))
    }
}

/// `[relaxation] window_s`: positive seconds, at most a year.
pub(super) struct Seconds(pub(super) f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = d.deserialize_any(NumberVisitor)?;
        if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 * 365.0 {
            Ok(Seconds(secs))
        } else {
            Err(de::Error::custom(
                "must be a positive number of seconds (at most a year)",
            ))
        }
    }
}

/// An integer, what it must be, and its check (made inside the visitor so
/// that the error carries the value's span).
struct IntVisitor(&'static str, fn(i64) -> Result<i64, String>);

impl Visitor<'_> for IntVisitor {
    type Value = i64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        (self.1)(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        let v = i64::try_from(v).map_err(|_| E::custom("integer out of range"))?;
        self.visit_i64(v)
    }
}

struct NumberVisitor;

impl Visitor<'_> for NumberVisitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
}

/// `[home] reject_codes`: SIP status codes.
pub(super) struct Codes(pub(super) Vec<u16>);

impl<'de> Deserialize<'de> for Codes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Code(u16);
        impl<'de> Deserialize<'de> for Code {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let code = |n| match n {
                    100..=699 => Ok(n),
                    _ => Err(format!("{n} is not a SIP status code (100-699)")),
                };
                let n = d.deserialize_any(IntVisitor("an integer (a status code)", code))?;
                Ok(Code(n as u16))
            }
        }
        let v: Vec<Code> =
            d.deserialize_seq(SeqVisitor("an array of status codes", PhantomData))?;
        Ok(Codes(v.into_iter().map(|c| c.0).collect()))
    }
}

/// `[home] reject_warning_regex`.
pub(super) struct Regex(pub(super) regex::Regex);

impl<'de> Deserialize<'de> for Regex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex::Regex::new(&s).map(Regex).map_err(|e| {
            let m = e.to_string();
            let last = m.lines().rev().map(str::trim).find(|l| !l.is_empty());
            de::Error::custom(format!(
                "{s:?} is not a valid regular expression: {}",
                last.unwrap_or("invalid")
            ))
        })
    }
}

// ---------------------------------------------------------------------------
// Strings checked by a parse function: list items, words, patterns.

/// A string value checked and converted by [`Item::parse`].
pub(super) trait Item: Sized {
    /// The value, or what is wrong with `s`.
    fn parse(s: &str) -> Result<Self, String>;
}

/// A single string value (not in a list) checked by [`Item::parse`].
pub(super) struct Word<T>(pub(super) T);

impl<'de, T: Item> Deserialize<'de> for Word<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrVisitor("a string", PhantomData))
            .map(Word)
    }
}

/// An item of an array of strings.
struct Elem<T>(T);

impl<'de, T: Item> Deserialize<'de> for Elem<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrVisitor("a string (in an array of strings)", PhantomData))
            .map(Elem)
    }
}

/// An array of strings, each checked by [`Item::parse`].
pub(super) struct List<T>(pub(super) Vec<T>);

impl<'de, T: Item> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v: Vec<Elem<T>> = d.deserialize_seq(SeqVisitor("an array of strings", PhantomData))?;
        Ok(List(v.into_iter().map(|e| e.0).collect()))
    }
}

/// A `when` value: one pattern or an array of them.
pub(super) struct Patterns<T>(pub(super) Vec<T>);

impl<'de, T: Item> Deserialize<'de> for Patterns<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Item> Visitor<'de> for V<T> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<T>, E> {
                T::parse(s).map(|t| vec![t]).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
                let v: Vec<Elem<T>> = SeqVisitor("", PhantomData).visit_seq(seq)?;
                Ok(v.into_iter().map(|e| e.0).collect())
            }
        }
        d.deserialize_any(V(PhantomData)).map(Patterns)
    }
}

/// A string checked by [`Item::parse`] inside the visitor, so that the
/// error carries the item's span, not its array's.
struct StrVisitor<T>(&'static str, PhantomData<T>);

impl<T: Item> Visitor<'_> for StrVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        T::parse(s).map_err(E::custom)
    }
}

struct SeqVisitor<T>(&'static str, PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SeqVisitor<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(x) = seq.next_element()? {
            out.push(x);
        }
        Ok(out)
    }
}

/// `[[rule]]`: an array of tables, each with its span.
pub(super) struct Rules(pub(super) Vec<Spanned<RawRule>>);

impl<'de> Deserialize<'de> for Rules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(SeqVisitor("an array of tables ([[rule]])", PhantomData))
            .map(Rules)
    }
}

fn one_of<T>(s: &str, names: &[&str]) -> Result<T, String> {
    Err(format!("{s:?} is not one of {}", names.join(", ")))
}

/// `name` and `[[rule]] id`: any string but an empty one.
pub(super) struct Name(pub(super) String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(de::Error::custom("must not be empty"));
        }
        Ok(Name(s))
    }
}

/// `[home] domains`: a domain, optionally `*.`-prefixed; lowercased.
pub(super) struct Domain(pub(super) String);

impl Item for Domain {
    fn parse(s: &str) -> Result<Self, String> {
        let d = s.trim().trim_start_matches("*.");
        if !valid_host(d, false) {
            return Err(format!("{s:?} is not a domain name"));
        }
        Ok(Domain(s.trim().to_ascii_lowercase()))
    }
}

/// `[home] nodes` / `border`: the trimmed text and its entry.
pub(super) struct Node(pub(super) String, pub(super) NodeEntry);

impl Item for Node {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(Node(s.trim().to_string(), parse_node(s)?))
    }
}

/// `[destinations] ims_domains` / `non_ims_domains`; lowercased.
pub(super) struct HostGlob(pub(super) String);

impl Item for HostGlob {
    fn parse(s: &str) -> Result<Self, String> {
        if !valid_host(s.trim(), true) {
            return Err(format!("{s:?} is not a host glob (e.g. \"*.example.org\")"));
        }
        Ok(HostGlob(s.trim().to_ascii_lowercase()))
    }
}

/// `[relaxation] allowed_capabilities` / `forbidden_capabilities`.
pub(super) struct CapTag(pub(super) String);

impl Item for CapTag {
    fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t != "*" && !is_token(t) {
            return Err(format!("{s:?} is not an option tag, UPDATE or \"*\""));
        }
        Ok(CapTag(t.to_string()))
    }
}

/// `[relaxation] extra_droppable`; lowercased.
pub(super) struct DropTag(pub(super) String);

impl Item for DropTag {
    fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if !is_token(t) || t == "*" {
            return Err(format!("{s:?} is not an option tag"));
        }
        Ok(DropTag(t.to_ascii_lowercase()))
    }
}

/// `[emergency] match`.
pub(super) struct UriGlob(pub(super) String);

impl Item for UriGlob {
    fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t.chars().any(char::is_whitespace) {
            return Err(format!("{s:?} is not a Request-URI glob"));
        }
        Ok(UriGlob(t.to_string()))
    }
}

/// `tel_uri_class` and `allowed_destinations`: ims, non_ims, unknown.
pub(super) struct TelClass(pub(super) DestClass);

impl Item for TelClass {
    fn parse(s: &str) -> Result<Self, String> {
        DestClass::from_policy_name(s)
            .map(TelClass)
            .map_or_else(|| one_of(s, &["ims", "non_ims", "unknown"]), Ok)
    }
}

/// `unknown_as`: ims, non_ims, or undetermined (`None`).
pub(super) struct UnknownAs(pub(super) Option<DestClass>);

impl Item for UnknownAs {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "ims" => Ok(UnknownAs(Some(DestClass::Ims))),
            "non_ims" => Ok(UnknownAs(Some(DestClass::NonIms))),
            "undetermined" => Ok(UnknownAs(None)),
            _ => one_of(s, &["ims", "non_ims", "undetermined"]),
        }
    }
}

/// `sdp_mode`: `strict` (true) or `ims-lenient`.
pub(super) struct SdpMode(pub(super) bool);

impl Item for SdpMode {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "strict" => Ok(SdpMode(true)),
            "ims-lenient" => Ok(SdpMode(false)),
            _ => one_of(s, &["strict", "ims-lenient"]),
        }
    }
}

impl Item for EmergencyMode {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "always_allow" => Ok(EmergencyMode::AlwaysAllow),
            "never" => Ok(EmergencyMode::Never),
            "follow_policy" => Ok(EmergencyMode::FollowPolicy),
            _ => one_of(s, &EmergencyMode::NAMES),
        }
    }
}

/// `[[rule]] action`: `allow` (true) or `deny`.
pub(super) struct Action(pub(super) bool);

impl Item for Action {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Action(true)),
            "deny" => Ok(Action(false)),
            _ => one_of(s, &["allow", "deny"]),
        }
    }
}

impl Item for Reason {
    fn parse(s: &str) -> Result<Self, String> {
        s.parse::<Reason>().or_else(|_| {
            let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
            one_of(s, &names)
        })
    }
}

/// A `when` pattern: trimmed, not empty.
pub(super) struct Pattern(pub(super) String);

impl Item for Pattern {
    fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("an empty pattern matches nothing".into());
        }
        Ok(Pattern(t.to_string()))
    }
}

/// A pattern that must be one of some words (lowercased).
fn word(s: &str, words: &[&str]) -> Result<String, String> {
    let t = Pattern::parse(s)?.0.to_ascii_lowercase();
    if words.contains(&t.as_str()) {
        Ok(t)
    } else {
        Err(format!("{s:?} is not one of {}", words.join(", ")))
    }
}

/// `when.destination`: ims, non_ims, unknown.
pub(super) struct DestWord(pub(super) String);

impl Item for DestWord {
    fn parse(s: &str) -> Result<Self, String> {
        word(s, &["ims", "non_ims", "unknown"]).map(DestWord)
    }
}

/// `when.identity`: same_call_id, new_call_id.
pub(super) struct IdentityWord(pub(super) String);

impl Item for IdentityWord {
    fn parse(s: &str) -> Result<Self, String> {
        word(s, &["same_call_id", "new_call_id"]).map(IdentityWord)
    }
}

// ---------------------------------------------------------------------------
// Addresses, hosts and tokens.

pub(super) fn parse_node(s: &str) -> Result<NodeEntry, String> {
    let t = s.trim();
    if let Some((addr, len)) = t.split_once('/') {
        let ip: std::net::IpAddr = addr
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
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
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
