//! The policy model (rules.md §E.3): the validated [`Policy`] with every key
//! resolved, its rules, node entries and modes; the link context and
//! outcome of §E.4; the error that names file, line and key. It owns the
//! types and their accessors; it never parses, matches or prints.

use std::fmt;
use std::net::IpAddr;

use super::{DestClass, PolicyVerdict, Reason};
use crate::rules::catalogue::{Flag, Verdict};

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
pub(super) enum EmergencyMode {
    AlwaysAllow,
    Never,
    FollowPolicy,
}

impl EmergencyMode {
    pub(super) const NAMES: [&'static str; 3] = ["always_allow", "never", "follow_policy"];
    pub(super) fn name(self) -> &'static str {
        match self {
            EmergencyMode::AlwaysAllow => "always_allow",
            EmergencyMode::Never => "never",
            EmergencyMode::FollowPolicy => "follow_policy",
        }
    }
}

/// `[destinations] unknown_as`: `None` = undetermined.
pub(super) fn unknown_as_name(c: Option<DestClass>) -> &'static str {
    match c {
        None => "undetermined",
        Some(c) => c.policy_name(),
    }
}

/// An IP, CIDR or host entry of `[home] nodes` / `border`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NodeEntry {
    /// An address or CIDR block (an address is a block of full length).
    Net(IpAddr, u8),
    /// A host name, lowercased.
    Host(String),
}

impl NodeEntry {
    pub(super) fn contains(&self, ip: IpAddr) -> bool {
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
    pub(super) fn matches_host(&self, host: &str) -> bool {
        match self {
            NodeEntry::Host(h) => h.eq_ignore_ascii_case(host),
            NodeEntry::Net(..) => host.parse::<IpAddr>().is_ok_and(|ip| self.contains(ip)),
        }
    }
}

/// A `[[rule]]` (rules.md §E.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Rule {
    pub(super) id: String,
    /// `when` conditions in [`WHEN_KEYS`] order.
    pub(super) when: Vec<(When, Vec<String>)>,
    /// `when.emergency`.
    pub(super) emergency: Option<bool>,
    pub(super) allow: bool,
    /// The effective reason of a deny rule (given or derived); `None` for
    /// an allow rule.
    pub(super) reason: Option<Reason>,
}

/// A string-valued `when` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum When {
    Destination,
    Capability,
    Subscriber,
    OriginDomain,
    VisitedNetwork,
    AccessType,
    Identity,
}

impl When {
    pub(super) fn key(self) -> &'static str {
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
}

/// A home-network policy (rules.md §E.3), validated and with every key
/// resolved. Cheap to share: the pipeline holds it in an `Arc`.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(super) name: String,
    // [home]
    pub(super) domains: Vec<String>,
    pub(super) nodes: Vec<String>,
    pub(super) node_entries: Vec<NodeEntry>,
    pub(super) border: Vec<String>,
    pub(super) border_entries: Vec<NodeEntry>,
    pub(super) reject_codes: Vec<u16>,
    pub(super) reject_warning_regex: regex::Regex,
    // [destinations]
    pub(super) ims_domains: Vec<String>,
    pub(super) non_ims_domains: Vec<String>,
    pub(super) tel_uri_class: DestClass,
    pub(super) unknown_as: Option<DestClass>,
    pub(super) infer_from_signaling: bool,
    // [relaxation]
    pub(super) allowed: bool,
    pub(super) allowed_capabilities: Vec<String>,
    pub(super) forbidden_capabilities: Vec<String>,
    pub(super) allowed_destinations: Vec<DestClass>,
    pub(super) max_retries: u32,
    pub(super) extra_droppable: Vec<String>,
    pub(super) window_s: f64,
    pub(super) require_same_call_id: bool,
    pub(super) require_desired_listing: bool,
    pub(super) sdp_strict: bool,
    // [emergency]
    pub(super) emergency_match: Vec<String>,
    pub(super) emergency_mode: EmergencyMode,
    pub(super) rules: Vec<Rule>,
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

impl Policy {
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
}
