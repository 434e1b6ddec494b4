//! The home-network policy of rules.md §E: the policy file (§E.3: format,
//! defaults, validation with the line and key of every error), destination
//! classification (§E.2), the per-link policy evaluation (§E.4, a pure
//! function of a [`LinkContext`]) and the home-node attribution helpers that
//! the evidence of §E.4 step 3 needs.
//!
//! The built-in default policy is the TOML text of rules.md §E.3
//! ([`BUILTIN_TOML`]), parsed like any file: it is the single source of every
//! default, and a file's omitted keys take their values from it.
//!
//! ```
//! use sipaudit::rules::policy::{DestClass, DestSignals, LinkContext, Policy};
//! let p = Policy::builtin();
//! let (class, _) = p.destination("sip:bob@example.com", "sip:bob@example.com", &DestSignals::default());
//! assert_eq!(class, DestClass::NonIms);
//! # use sipaudit::rules::catalogue::{PolicyVerdict, Verdict};
//! let mut ctx = LinkContext::new(Verdict::CompliantRelaxation, class);
//! ctx.relaxed = vec!["precondition".into()];
//! assert_eq!(p.evaluate(&ctx).verdict, Some(PolicyVerdict::Compliant));
//! ```

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The built-in default policy, verbatim from rules.md §E.3. Used without
/// `--policy`, and the source of every key a policy file omits.
pub const BUILTIN_TOML: &str = r#"version = 1
name = "builtin-default"

[home]
domains = []
nodes   = []
border  = []
reject_codes = [403, 421, 488, 606]
reject_warning_regex = "(?i)relax|policy|precondition"

[destinations]
ims_domains     = ["*.3gppnetwork.org"]
non_ims_domains = []
tel_uri_class   = "unknown"
unknown_as      = "undetermined"
infer_from_signaling = true

[relaxation]
allowed                 = true
allowed_capabilities    = ["*"]
forbidden_capabilities  = ["sec-agree"]
allowed_destinations    = ["non_ims"]
max_retries             = 2
extra_droppable         = []
window_s                = 32
require_same_call_id    = false
require_desired_listing = false
sdp_mode                = "ims-lenient"

[emergency]
match      = ["urn:service:sos*"]
relaxation = "always_allow"
"#;

/// The annotated example policy printed by `sipaudit policy example`: the
/// example of rules.md §E.3 with a comment on every key.
pub const EXAMPLE_TOML: &str = include_str!("../../samples/policies/annotated-example.toml");

pub use super::catalogue::{DestClass, PolicyVerdict, Reason};
use super::catalogue::{Flag, Verdict};

/// The `when` keys of a `[[rule]]`, in the order that derives a deny rule's
/// default reason (rules.md §E.3).
pub const WHEN_KEYS: [&str; 8] = [
    "destination",
    "capability",
    "subscriber",
    "origin_domain",
    "visited_network",
    "access_type",
    "emergency",
    "identity",
];

/// Why a policy file was refused: the file, the 1-based line and the key
/// (rules.md §E.3; the contract's exit status 2). `Display` gives the one
/// line the CLI prints, e.g.
/// `policy.toml:14: [relaxation] sdp_mode: "lax" is not one of strict, ims-lenient`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file as the user named it (or the name given to [`Policy::parse`]).
    pub file: String,
    /// 1-based line of the offending key or value; 0 when the file could not
    /// be read at all.
    pub line: usize,
    /// The key, with its table: `version`, `[relaxation] sdp_mode`,
    /// `[[rule]] when.capability`, or `TOML syntax` for a parse error.
    pub key: String,
    /// What is wrong, on one line.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.key, self.message
            )
        }
    }
}

impl std::error::Error for PolicyError {}

/// The confidence of a destination class (rules.md §E.2: high for the
/// configured lists, steps 1–2; medium for inference from signalling, steps
/// 3–4; low for the step-5 fallback to UNKNOWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confidence {
    /// Steps 1–2: the configured domain lists or `tel_uri_class`.
    High,
    /// Steps 3–4: inferred from the remote's signalling.
    Medium,
    /// Step 5: nothing decided.
    Low,
}

impl Confidence {
    /// `high`, `medium` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        }
    }
}

/// What the remote's signalling showed, for steps 3–4 of rules.md §E.2
/// (used only with `infer_from_signaling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestSignals {
    /// The remote's responses show an IMS signature (P-Charging-Vector with
    /// term-ioi, P-Asserted-Service or an ICSI in Contact or Accept-Contact,
    /// Require: 100rel with precondition lines in the answer): step 3.
    pub ims_signature: bool,
    /// The remote refused precondition or 100rel (C01/C02) or ignored
    /// preconditions (C13): step 4.
    pub refused_core: bool,
}

/// `[emergency] relaxation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmergencyMode {
    AlwaysAllow,
    Never,
    FollowPolicy,
}

impl EmergencyMode {
    const NAMES: [&'static str; 3] = ["always_allow", "never", "follow_policy"];
    fn name(self) -> &'static str {
        match self {
            EmergencyMode::AlwaysAllow => "always_allow",
            EmergencyMode::Never => "never",
            EmergencyMode::FollowPolicy => "follow_policy",
        }
    }
}

/// `[destinations] unknown_as`: `None` = undetermined.
fn unknown_as_name(c: Option<DestClass>) -> &'static str {
    match c {
        None => "undetermined",
        Some(c) => c.policy_name(),
    }
}

/// An IP, CIDR or host entry of `[home] nodes` / `border`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NodeEntry {
    /// An address or CIDR block (an address is a block of full length).
    Net(IpAddr, u8),
    /// A host name, lowercased.
    Host(String),
}

impl NodeEntry {
    fn contains(&self, ip: IpAddr) -> bool {
        let NodeEntry::Net(net, len) = self else {
            return false;
        };
        let ip = match (net, ip) {
            (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                u32::from(*n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                u128::from(*n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// Does a host (a name or an address literal, as written in a Via or a
    /// Warning) equal this entry?
    fn matches_host(&self, host: &str) -> bool {
        match self {
            NodeEntry::Host(h) => h.eq_ignore_ascii_case(host),
            NodeEntry::Net(..) => host.parse::<IpAddr>().is_ok_and(|ip| self.contains(ip)),
        }
    }
}

fn parse_node(s: &str) -> Result<NodeEntry, String> {
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

fn valid_host(s: &str, glob: bool) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '.' | '_')
                || (glob && matches!(c, '*' | ':' | '[' | ']'))
        })
}

/// A `[[rule]]` (rules.md §E.3).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    id: String,
    /// `when` conditions in [`WHEN_KEYS`] order.
    when: Vec<(When, Vec<String>)>,
    /// `when.emergency`.
    emergency: Option<bool>,
    allow: bool,
    /// The effective reason of a deny rule (given or derived); `None` for
    /// an allow rule.
    reason: Option<Reason>,
}

/// A string-valued `when` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Destination,
    Capability,
    Subscriber,
    OriginDomain,
    VisitedNetwork,
    AccessType,
    Identity,
}

impl When {
    fn key(self) -> &'static str {
        match self {
            When::Destination => "destination",
            When::Capability => "capability",
            When::Subscriber => "subscriber",
            When::OriginDomain => "origin_domain",
            When::VisitedNetwork => "visited_network",
            When::AccessType => "access_type",
            When::Identity => "identity",
        }
    }
    fn from_key(k: &str) -> Option<When> {
        Some(match k {
            "destination" => When::Destination,
            "capability" => When::Capability,
            "subscriber" => When::Subscriber,
            "origin_domain" => When::OriginDomain,
            "visited_network" => When::VisitedNetwork,
            "access_type" => When::AccessType,
            "identity" => When::Identity,
            _ => return None,
        })
    }
}

/// A home-network policy (rules.md §E.3), validated and with every key
/// resolved. Cheap to share: the pipeline holds it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Policy {
    name: String,
    // [home]
    domains: Vec<String>,
    nodes: Vec<String>,
    node_entries: Vec<NodeEntry>,
    border: Vec<String>,
    border_entries: Vec<NodeEntry>,
    reject_codes: Vec<u16>,
    reject_warning_regex: regex::Regex,
    // [destinations]
    ims_domains: Vec<String>,
    non_ims_domains: Vec<String>,
    tel_uri_class: DestClass,
    unknown_as: Option<DestClass>,
    infer_from_signaling: bool,
    // [relaxation]
    allowed: bool,
    allowed_capabilities: Vec<String>,
    forbidden_capabilities: Vec<String>,
    allowed_destinations: Vec<DestClass>,
    max_retries: u32,
    extra_droppable: Vec<String>,
    window_s: f64,
    require_same_call_id: bool,
    require_desired_listing: bool,
    sdp_strict: bool,
    // [emergency]
    emergency_match: Vec<String>,
    emergency_mode: EmergencyMode,
    rules: Vec<Rule>,
}

impl PartialEq for Policy {
    fn eq(&self, o: &Self) -> bool {
        self.to_toml() == o.to_toml()
    }
}

impl Default for Policy {
    /// The built-in default policy.
    fn default() -> Self {
        Policy::builtin()
    }
}

/// The context of one capability link for [`Policy::evaluate`] (rules.md
/// §E.4 step 1). The caller extracts it from the session; the evaluation is
/// a pure function of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkContext {
    /// X of rules.md §D.1: the relaxed tags, lowercased, in their order of
    /// first appearance in P; `UPDATE` for the method.
    pub relaxed: Vec<String>,
    /// U of rules.md §D.1 (the refused tags, inferred U included): used as
    /// X for POLICY_RESPECTED_BY_UE when X is empty.
    pub refused: Vec<String>,
    /// The link's rules.md §D.3 verdict.
    pub verdict: Verdict,
    /// The rules.md §E.2 class of P's Request-URI, before `unknown_as`
    /// (the evaluation applies it).
    pub destination: DestClass,
    /// P-Served-User, else P-Asserted-Identity, else the From URI (a bare
    /// URI; `None` when the capture shows none).
    pub subscriber: Option<String>,
    /// The host of the subscriber URI.
    pub origin_domain: Option<String>,
    /// P-Visited-Network-ID.
    pub visited_network: Option<String>,
    /// The access-type token of P-Access-Network-Info (e.g. `3GPP-E-UTRAN-FDD`).
    pub access_type: Option<String>,
    /// P is an emergency request ([`Policy::is_emergency`] of its Request-URI).
    pub emergency: bool,
    /// The link is H0 (same Call-ID and From tag).
    pub same_call_id: bool,
    /// The link's 1-based position among the session's capability links.
    pub retry_count: u32,
    /// Check D9 failed (DESIRED_DROPPED).
    pub desired_dropped: bool,
    /// Evidence (§E.4 step 3): the final response to N came from a home node
    /// with a status in `reject_codes` (a 421 only when its Require lists a
    /// tag of X; see [`Policy::is_home_rejection`]).
    pub home_rejected: bool,
    /// Evidence (§E.4 step 3): N got a 2xx, or a copy of N (or of its B2BUA
    /// leg) was seen beyond `border`.
    pub passed: bool,
}

impl LinkContext {
    /// A context with the given verdict and destination class, nothing
    /// relaxed or refused, no context value shown, not emergency, an H0
    /// link, retry count 1 and no evidence.
    pub fn new(verdict: Verdict, destination: DestClass) -> Self {
        LinkContext {
            relaxed: Vec::new(),
            refused: Vec::new(),
            verdict,
            destination,
            subscriber: None,
            origin_domain: None,
            visited_network: None,
            access_type: None,
            emergency: false,
            same_call_id: true,
            retry_count: 1,
            desired_dropped: false,
            home_rejected: false,
            passed: false,
        }
    }
}

/// The policy verdict of one link (rules.md §E.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyOutcome {
    /// The policy verdict, or `None` (an empty policy_verdict).
    pub verdict: Option<PolicyVerdict>,
    /// What decided it (the `policy_rule` column): a `[[rule]]` id,
    /// `emergency`, a `[relaxation]` key such as
    /// `relaxation.allowed_destinations`, or `relaxation` for an allow by the
    /// defaults. Empty with an empty verdict.
    pub rule: String,
    /// `POLICY_NOT_ENFORCED` for a violation that passed; otherwise empty.
    pub flags: Vec<Flag>,
}

/// How §E.4 step 2 decided a link (or a tag).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Allow(String),
    Deny(Reason, String),
    Undetermined(String),
}

// ---------------------------------------------------------------------------
// Matching helpers.

/// A case-insensitive glob: `*` matches any run of characters (also empty);
/// every other character matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Strip a display name and angle brackets: `"Bob" <sip:b@x>;tag=1` → `sip:b@x`.
fn bare_uri(s: &str) -> &str {
    let s = s.trim();
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim(),
        _ => s,
    }
}

/// The lowercased host of a `sip:`/`sips:` URI (IPv6 without brackets).
fn sip_host(uri: &str) -> Option<String> {
    let u = bare_uri(uri);
    let colon = u.find(':')?;
    let scheme = &u[..colon];
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return None;
    }
    let rest = &u[colon + 1..];
    let rest = rest.split('?').next().unwrap_or(rest);
    let hostport = match rest.rfind('@') {
        Some(i) => &rest[i + 1..],
        None => rest,
    };
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else {
        hostport.split([';', ':']).next().unwrap_or(hostport)
    };
    let host = host.trim().trim_end_matches('.');
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn scheme_is(uri: &str, scheme: &str) -> bool {
    let u = bare_uri(uri);
    u.find(':')
        .is_some_and(|i| u[..i].trim().eq_ignore_ascii_case(scheme))
}

/// A host (possibly `host:port` or `[v6]:port`) without port and brackets,
/// lowercased.
fn bare_host(h: &str) -> String {
    let h = h.trim();
    let h = if let Some(v6) = h.strip_prefix('[') {
        v6.split(']').next().unwrap_or(v6)
    } else if h.matches(':').count() == 1 {
        h.split(':').next().unwrap_or(h)
    } else {
        h
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn under_domain(host: &str, domain: &str) -> bool {
    let d = domain.trim_start_matches("*.").trim_end_matches('.');
    !d.is_empty()
        && (host.eq_ignore_ascii_case(d)
            || (host.len() > d.len()
                && host.as_bytes()[host.len() - d.len() - 1] == b'.'
                && host[host.len() - d.len()..].eq_ignore_ascii_case(d)))
}

fn cap_in(list: &[String], tag: &str) -> bool {
    list.iter().any(|c| c == "*" || c.eq_ignore_ascii_case(tag))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
}

impl Policy {
    // -----------------------------------------------------------------------
    // Loading.

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

    /// The policy's `name` (`builtin-default` for the built-in one).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `[relaxation] window_s` (W0 of rules.md §A.3) in nanoseconds.
    pub fn window_ns(&self) -> u64 {
        (self.window_s * 1e9).round() as u64
    }

    /// `[relaxation] max_retries` (D12, RETRY_LIMIT).
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// `[relaxation] extra_droppable` (rules.md §D.1 A), lowercased.
    pub fn extra_droppable(&self) -> &[String] {
        &self.extra_droppable
    }

    /// `[relaxation] sdp_mode` is `strict` (rules.md §D.3 item 10).
    pub fn sdp_mode_strict(&self) -> bool {
        self.sdp_strict
    }

    /// `[destinations] infer_from_signaling` (rules.md §E.2 steps 3–4): when
    /// false, [`DestSignals`] are ignored and need not be computed.
    pub fn infer_from_signaling(&self) -> bool {
        self.infer_from_signaling
    }

    // -----------------------------------------------------------------------
    // rules.md §E.2.

    /// The destination class of P's Request-URI (rules.md §E.2 steps 1–5),
    /// with its confidence. `to_uri` is used for a `tel:` Request-URI when it
    /// is a SIP or SIPS URI; `signals` only with `infer_from_signaling`. A
    /// host that is an IP address is IMS when it is a home node (`[home]
    /// nodes`), and otherwise skips step 1 (§J): UNKNOWN unless the signals
    /// decide.
    pub fn destination(
        &self,
        request_uri: &str,
        to_uri: &str,
        signals: &DestSignals,
    ) -> (DestClass, Confidence) {
        // Step 1 (and the host to use for step 2).
        let host = sip_host(request_uri).or_else(|| {
            if scheme_is(request_uri, "tel") {
                sip_host(to_uri)
            } else {
                None
            }
        });
        let ip = host.as_deref().and_then(|h| h.parse::<IpAddr>().ok());
        match (host, ip) {
            // An IP literal names no network (rules.md §J on §E.2): a home
            // node is IMS; any other address goes on to steps 3-5 and is
            // never NON_IMS by an empty `non_ims_domains`.
            (Some(_), Some(ip)) => {
                if self.is_home_node(ip, None) {
                    return (DestClass::Ims, Confidence::High);
                }
            }
            (Some(h), None) => {
                if self.ims_domains.iter().any(|g| glob_match(g, &h)) {
                    return (DestClass::Ims, Confidence::High);
                }
                if self.non_ims_domains.is_empty()
                    || self.non_ims_domains.iter().any(|g| glob_match(g, &h))
                {
                    return (DestClass::NonIms, Confidence::High);
                }
            }
            (None, _) => {
                // Step 2.
                if scheme_is(request_uri, "tel") && self.tel_uri_class != DestClass::Unknown {
                    return (self.tel_uri_class, Confidence::High);
                }
            }
        }
        // Steps 3-4.
        if self.infer_from_signaling {
            if signals.ims_signature {
                return (DestClass::Ims, Confidence::Medium);
            }
            if signals.refused_core {
                return (DestClass::NonIms, Confidence::Medium);
            }
        }
        (DestClass::Unknown, Confidence::Low)
    }

    /// The class used for policy checks: `unknown_as` applied to UNKNOWN
    /// (rules.md §E.2 step 5). UNKNOWN stays UNKNOWN with `undetermined`.
    pub fn policy_class(&self, class: DestClass) -> DestClass {
        match class {
            DestClass::Unknown => self.unknown_as.unwrap_or(DestClass::Unknown),
            c => c,
        }
    }

    /// Is this Request-URI an emergency one: it matches an `[emergency]
    /// match` glob (case-insensitive), or it carries the `sos` URI parameter.
    pub fn is_emergency(&self, request_uri: &str) -> bool {
        let u = bare_uri(request_uri);
        if self.emergency_match.iter().any(|g| glob_match(g, u)) {
            return true;
        }
        let no_headers = u.split('?').next().unwrap_or(u);
        let params = match no_headers.rfind('@') {
            Some(i) => &no_headers[i + 1..],
            None => no_headers,
        };
        params.split(';').skip(1).any(|p| {
            p.split('=')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("sos"))
        })
    }

    // -----------------------------------------------------------------------
    // Attribution (rules.md §E.3 [home]).

    /// A response comes from a home node: its source address matches an IP
    /// or CIDR entry of `nodes`, or the host of its Warning warn-agent
    /// equals a host entry of `nodes` or lies under a `domains` entry.
    pub fn is_home_node(&self, src: IpAddr, warn_agent_host: Option<&str>) -> bool {
        if self.node_entries.iter().any(|e| e.contains(src)) {
            return true;
        }
        let Some(h) = warn_agent_host else {
            return false;
        };
        let h = bare_host(h);
        if h.is_empty() {
            return false;
        }
        self.node_entries.iter().any(|e| e.matches_host(&h))
            || self.domains.iter().any(|d| under_domain(&h, d))
    }

    /// A copy of a request has left the home network: its source address or
    /// any Via sent-by host (with or without port) matches a `border` entry.
    pub fn is_border(&self, src: IpAddr, via_hosts: &[&str]) -> bool {
        self.border_entries.iter().any(|e| e.contains(src))
            || via_hosts.iter().any(|v| {
                let h = bare_host(v);
                !h.is_empty() && self.border_entries.iter().any(|e| e.matches_host(&h))
            })
    }

    /// The status is one of `[home] reject_codes`.
    pub fn reject_code(&self, status: u16) -> bool {
        self.reject_codes.contains(&status)
    }

    /// `[home] reject_warning_regex` matches the text (a Warning's text;
    /// raises C19 confidence only).
    pub fn reject_text_matches(&self, text: &str) -> bool {
        self.reject_warning_regex.is_match(text)
    }

    /// The home-rejected evidence of rules.md §E.4 step 3 for N's final
    /// response: from a home node (see [`Policy::is_home_node`]), with a
    /// status in `reject_codes`, and for a 421 only when its Require lists a
    /// tag of X (`relaxed`; compared case-insensitively).
    pub fn is_home_rejection(
        &self,
        from_home_node: bool,
        status: u16,
        require_421: &[&str],
        relaxed: &[String],
    ) -> bool {
        from_home_node
            && self.reject_code(status)
            && (status != 421
                || require_421
                    .iter()
                    .any(|r| relaxed.iter().any(|x| x.eq_ignore_ascii_case(r.trim()))))
    }

    // -----------------------------------------------------------------------
    // rules.md §E.4.

    /// The policy verdict of one link (rules.md §E.4). Empty for a
    /// NOT_APPLICABLE link; with X = ∅, POLICY_RESPECTED_BY_UE when the
    /// verdict is NO_RETRY, REPEATED_WITHOUT_RELAXATION or RETRY_LOOP and
    /// steps 1–2 with X := U deny (step 2d included, with the context as
    /// given), else empty.
    pub fn evaluate(&self, ctx: &LinkContext) -> PolicyOutcome {
        if ctx.verdict == Verdict::NotApplicable {
            return PolicyOutcome::default();
        }
        if ctx.relaxed.is_empty() {
            if matches!(
                ctx.verdict,
                Verdict::NoRetry | Verdict::RepeatedWithoutRelaxation | Verdict::RetryLoop
            ) && !ctx.refused.is_empty()
                && let Decision::Deny(_, rule) = self.decide_link(&ctx.refused, ctx)
            {
                return PolicyOutcome {
                    verdict: Some(PolicyVerdict::RespectedByUe),
                    rule,
                    flags: Vec::new(),
                };
            }
            return PolicyOutcome::default();
        }
        match self.decide_link(&ctx.relaxed, ctx) {
            Decision::Allow(rule) => PolicyOutcome {
                verdict: Some(if ctx.home_rejected {
                    PolicyVerdict::Overblocked
                } else {
                    PolicyVerdict::Compliant
                }),
                rule,
                flags: Vec::new(),
            },
            Decision::Deny(reason, rule) => {
                if ctx.home_rejected {
                    PolicyOutcome {
                        verdict: Some(PolicyVerdict::Enforced),
                        rule,
                        flags: Vec::new(),
                    }
                } else {
                    PolicyOutcome {
                        verdict: Some(PolicyVerdict::Violation(reason)),
                        rule,
                        flags: if ctx.passed {
                            vec![Flag::PolicyNotEnforced]
                        } else {
                            Vec::new()
                        },
                    }
                }
            }
            Decision::Undetermined(rule) => PolicyOutcome {
                verdict: Some(PolicyVerdict::Undetermined),
                rule,
                flags: Vec::new(),
            },
        }
    }

    /// §E.4 step 2 for a set of tags: each tag by a → b → c; the link is
    /// denied by its first denied tag, else undetermined, else allowed (the
    /// first tag's rule), then the limits of d unless the emergency allowed.
    fn decide_link(&self, tags: &[String], ctx: &LinkContext) -> Decision {
        let class = self.policy_class(ctx.destination);
        let mut first_undetermined: Option<String> = None;
        let mut first_allow: Option<String> = None;
        for x in tags {
            match self.decide_tag(x, class, ctx) {
                Decision::Deny(r, rule) => return Decision::Deny(r, rule),
                Decision::Undetermined(rule) => {
                    first_undetermined.get_or_insert(rule);
                }
                Decision::Allow(rule) => {
                    first_allow.get_or_insert(rule);
                }
            }
        }
        if let Some(rule) = first_undetermined {
            return Decision::Undetermined(rule);
        }
        let rule = first_allow.unwrap_or_else(|| "relaxation".into());
        // d. Limits, for a link allowed by b or c (an emergency allowed by
        // always_allow skips them).
        if ctx.emergency && self.emergency_mode == EmergencyMode::AlwaysAllow {
            return Decision::Allow(rule);
        }
        if ctx.retry_count > self.max_retries {
            return Decision::Deny(Reason::RetryLimit, "relaxation.max_retries".into());
        }
        if self.require_same_call_id && !ctx.same_call_id {
            return Decision::Deny(
                Reason::SameCallIdRequired,
                "relaxation.require_same_call_id".into(),
            );
        }
        if self.require_desired_listing && ctx.desired_dropped {
            return Decision::Deny(
                Reason::DesiredListingRequired,
                "relaxation.require_desired_listing".into(),
            );
        }
        Decision::Allow(rule)
    }

    fn decide_tag(&self, x: &str, class: DestClass, ctx: &LinkContext) -> Decision {
        // a. Emergency.
        if ctx.emergency {
            match self.emergency_mode {
                EmergencyMode::AlwaysAllow => return Decision::Allow("emergency".into()),
                EmergencyMode::Never => {
                    return Decision::Deny(Reason::Emergency, "emergency".into());
                }
                EmergencyMode::FollowPolicy => {}
            }
        }
        // b. The [[rule]]s in order.
        for r in &self.rules {
            if self.rule_matches(r, x, class, ctx) {
                return if r.allow {
                    Decision::Allow(r.id.clone())
                } else {
                    Decision::Deny(
                        r.reason.unwrap_or(Reason::RelaxationForbidden),
                        r.id.clone(),
                    )
                };
            }
        }
        // c. The [relaxation] defaults.
        if !self.allowed {
            return Decision::Deny(Reason::RelaxationForbidden, "relaxation.allowed".into());
        }
        if cap_in(&self.forbidden_capabilities, x) {
            return Decision::Deny(
                Reason::CapabilityNotRelaxable,
                "relaxation.forbidden_capabilities".into(),
            );
        }
        if !cap_in(&self.allowed_capabilities, x) {
            return Decision::Deny(
                Reason::CapabilityNotRelaxable,
                "relaxation.allowed_capabilities".into(),
            );
        }
        if !self.allowed_destinations.contains(&class) {
            let rule = "relaxation.allowed_destinations".to_string();
            return if class == DestClass::Unknown {
                Decision::Undetermined(rule)
            } else {
                Decision::Deny(Reason::DestIms, rule)
            };
        }
        Decision::Allow("relaxation".into())
    }

    fn rule_matches(&self, r: &Rule, x: &str, class: DestClass, ctx: &LinkContext) -> bool {
        if let Some(e) = r.emergency
            && e != ctx.emergency
        {
            return false;
        }
        r.when.iter().all(|(key, pats)| {
            let value: Option<&str> = match key {
                When::Destination => Some(class.policy_name()),
                When::Capability => Some(x),
                When::Subscriber => ctx.subscriber.as_deref().map(bare_uri),
                When::OriginDomain => ctx.origin_domain.as_deref(),
                When::VisitedNetwork => ctx.visited_network.as_deref(),
                When::AccessType => ctx.access_type.as_deref(),
                When::Identity => Some(if ctx.same_call_id {
                    "same_call_id"
                } else {
                    "new_call_id"
                }),
            };
            let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
                return false;
            };
            pats.iter().any(|p| glob_match(p, v))
        })
    }

    // -----------------------------------------------------------------------
    // Printing.

    /// The effective policy as TOML: every key with its value (the omitted
    /// ones filled in from the built-in default), every rule with its
    /// effective reason. Parses back to an equal policy.
    pub fn to_toml(&self) -> String {
        fn s(v: &str) -> String {
            toml::Value::String(v.to_string()).to_string()
        }
        fn list(v: &[String]) -> String {
            let items: Vec<String> = v.iter().map(|x| s(x)).collect();
            format!("[{}]", items.join(", "))
        }
        let mut o = String::new();
        let w = &mut o;
        use std::fmt::Write as _;
        let _ = writeln!(w, "version = 1");
        let _ = writeln!(w, "name = {}", s(&self.name));
        let _ = writeln!(w, "\n[home]");
        let _ = writeln!(w, "domains = {}", list(&self.domains));
        let _ = writeln!(w, "nodes = {}", list(&self.nodes));
        let _ = writeln!(w, "border = {}", list(&self.border));
        let codes: Vec<String> = self.reject_codes.iter().map(u16::to_string).collect();
        let _ = writeln!(w, "reject_codes = [{}]", codes.join(", "));
        let _ = writeln!(
            w,
            "reject_warning_regex = {}",
            s(self.reject_warning_regex.as_str())
        );
        let _ = writeln!(w, "\n[destinations]");
        let _ = writeln!(w, "ims_domains = {}", list(&self.ims_domains));
        let _ = writeln!(w, "non_ims_domains = {}", list(&self.non_ims_domains));
        let _ = writeln!(w, "tel_uri_class = {}", s(self.tel_uri_class.policy_name()));
        let _ = writeln!(w, "unknown_as = {}", s(unknown_as_name(self.unknown_as)));
        let _ = writeln!(w, "infer_from_signaling = {}", self.infer_from_signaling);
        let _ = writeln!(w, "\n[relaxation]");
        let _ = writeln!(w, "allowed = {}", self.allowed);
        let _ = writeln!(
            w,
            "allowed_capabilities = {}",
            list(&self.allowed_capabilities)
        );
        let _ = writeln!(
            w,
            "forbidden_capabilities = {}",
            list(&self.forbidden_capabilities)
        );
        let dests: Vec<String> = self
            .allowed_destinations
            .iter()
            .map(|d| d.policy_name().to_string())
            .collect();
        let _ = writeln!(w, "allowed_destinations = {}", list(&dests));
        let _ = writeln!(w, "max_retries = {}", self.max_retries);
        let _ = writeln!(w, "extra_droppable = {}", list(&self.extra_droppable));
        if self.window_s.fract() == 0.0 && self.window_s < 1e15 {
            let _ = writeln!(w, "window_s = {}", self.window_s as u64);
        } else {
            let _ = writeln!(w, "window_s = {:?}", self.window_s);
        }
        let _ = writeln!(w, "require_same_call_id = {}", self.require_same_call_id);
        let _ = writeln!(
            w,
            "require_desired_listing = {}",
            self.require_desired_listing
        );
        let _ = writeln!(
            w,
            "sdp_mode = {}",
            s(if self.sdp_strict {
                "strict"
            } else {
                "ims-lenient"
            })
        );
        let _ = writeln!(w, "\n[emergency]");
        let _ = writeln!(w, "match = {}", list(&self.emergency_match));
        let _ = writeln!(w, "relaxation = {}", s(self.emergency_mode.name()));
        for r in &self.rules {
            let _ = writeln!(w, "\n[[rule]]");
            let _ = writeln!(w, "id = {}", s(&r.id));
            let mut when: Vec<String> = Vec::new();
            for k in WHEN_KEYS {
                if k == "emergency" {
                    if let Some(e) = r.emergency {
                        when.push(format!("emergency = {e}"));
                    }
                } else if let Some((_, pats)) = r.when.iter().find(|(w, _)| w.key() == k) {
                    if let [one] = pats.as_slice() {
                        when.push(format!("{k} = {}", s(one)));
                    } else {
                        when.push(format!("{k} = {}", list(pats)));
                    }
                }
            }
            if when.is_empty() {
                let _ = writeln!(w, "when = {{}}");
            } else {
                let _ = writeln!(w, "when = {{ {} }}", when.join(", "));
            }
            match r.reason.filter(|_| !r.allow) {
                None => {
                    let _ = writeln!(w, "action = \"allow\"");
                }
                Some(reason) => {
                    let _ = writeln!(w, "action = \"deny\"");
                    let _ = writeln!(w, "reason = {}", s(reason.as_str()));
                }
            }
        }
        o
    }
}

// ---------------------------------------------------------------------------
// The validating parser.

type Table<'i> = DeTable<'i>;
type Val<'i> = Spanned<DeValue<'i>>;

struct Parser<'t> {
    text: &'t str,
    file: String,
    default_name: String,
    base: Option<&'t Policy>,
}

/// Where and what: an error before it gets the file name.
struct Err0 {
    span: Range<usize>,
    key: String,
    message: String,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
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

fn err(span: Range<usize>, key: &str, message: impl Into<String>) -> Err0 {
    Err0 {
        span,
        key: key.to_string(),
        message: message.into(),
    }
}

fn wrong_type(v: &Val<'_>, key: &str, want: &str) -> Err0 {
    err(
        v.span(),
        key,
        format!("expected {want}, found {}", type_name(v.get_ref())),
    )
}

fn one_of(v: &Val<'_>, key: &str, got: &str, allowed: &[&str]) -> Err0 {
    err(
        v.span(),
        key,
        format!("{got:?} is not one of {}", allowed.join(", ")),
    )
}

fn get_str<'v>(v: &'v Val<'_>, key: &str) -> Result<&'v str, Err0> {
    match v.get_ref() {
        DeValue::String(s) => Ok(s.as_ref()),
        _ => Err(wrong_type(v, key, "a string")),
    }
}

fn get_bool(v: &Val<'_>, key: &str) -> Result<bool, Err0> {
    match v.get_ref() {
        DeValue::Boolean(b) => Ok(*b),
        _ => Err(wrong_type(v, key, "a boolean (true or false)")),
    }
}

fn get_int(v: &Val<'_>, key: &str) -> Result<i64, Err0> {
    match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| err(v.span(), key, "integer out of range")),
        _ => Err(wrong_type(v, key, "an integer")),
    }
}

/// A list of strings, each with its span.
fn get_str_list<'v>(v: &'v Val<'_>, key: &str) -> Result<Vec<(&'v str, Range<usize>)>, Err0> {
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

const TABLES: [&str; 5] = ["home", "destinations", "relaxation", "emergency", "rule"];
const HOME_KEYS: [&str; 5] = [
    "domains",
    "nodes",
    "border",
    "reject_codes",
    "reject_warning_regex",
];
const DEST_KEYS: [&str; 5] = [
    "ims_domains",
    "non_ims_domains",
    "tel_uri_class",
    "unknown_as",
    "infer_from_signaling",
];
const RELAX_KEYS: [&str; 10] = [
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
const EMERGENCY_KEYS: [&str; 2] = ["match", "relaxation"];
const RULE_KEYS: [&str; 4] = ["id", "when", "action", "reason"];

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
                    "when" => {
                        let DeValue::Table(w) = v.get_ref() else {
                            return Err(wrong_type(v, &label, "an inline table"));
                        };
                        for (wk, wv) in w.iter() {
                            let wkey = wk.get_ref().as_ref();
                            let wlabel = format!("[[rule]] when.{wkey}");
                            if wkey == "emergency" {
                                emergency = Some(get_bool(wv, &wlabel)?);
                                continue;
                            }
                            let Some(which) = When::from_key(wkey) else {
                                return Err(err(
                                    wk.span(),
                                    &wlabel,
                                    format!(
                                        "unknown key (expected one of {})",
                                        WHEN_KEYS.join(", ")
                                    ),
                                ));
                            };
                            let pats: Vec<(String, Range<usize>)> = match wv.get_ref() {
                                DeValue::String(s) => vec![(s.to_string(), wv.span())],
                                DeValue::Array(_) => get_str_list(wv, &wlabel)?
                                    .into_iter()
                                    .map(|(s, r)| (s.to_string(), r))
                                    .collect(),
                                _ => {
                                    return Err(wrong_type(
                                        wv,
                                        &wlabel,
                                        "a string or an array of strings",
                                    ));
                                }
                            };
                            let mut out = Vec::new();
                            for (s, span) in pats {
                                let t = s.trim().to_string();
                                if t.is_empty() {
                                    return Err(err(
                                        span,
                                        &wlabel,
                                        "an empty pattern matches nothing",
                                    ));
                                }
                                match which {
                                    When::Destination => {
                                        let l = t.to_ascii_lowercase();
                                        if DestClass::from_policy_name(&l).is_none() {
                                            return Err(err(
                                                span,
                                                &wlabel,
                                                format!(
                                                    "{s:?} is not one of ims, non_ims, unknown"
                                                ),
                                            ));
                                        }
                                        out.push(l);
                                    }
                                    When::Identity => {
                                        let l = t.to_ascii_lowercase();
                                        if l != "same_call_id" && l != "new_call_id" {
                                            return Err(err(
                                                span,
                                                &wlabel,
                                                format!(
                                                    "{s:?} is not one of same_call_id, new_call_id"
                                                ),
                                            ));
                                        }
                                        out.push(l);
                                    }
                                    _ => out.push(t),
                                }
                            }
                            when.push((which, out));
                        }
                    }
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
        let derived = {
            let first = WHEN_KEYS.iter().find(|k| {
                (**k == "emergency" && emergency.is_some())
                    || when.iter().any(|(w, _)| w.key() == **k)
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
        };
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
fn placeholder() -> Policy {
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

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
