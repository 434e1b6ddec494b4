//! Destination classification (rules.md §E.2), emergency detection and the
//! home-node and border attribution of §E.3 `[home]`, with the URI and host
//! matching they need. It never decides a policy verdict.

use std::net::IpAddr;

use super::DestClass;
use super::model::{Confidence, DestSignals, Policy};

// ---------------------------------------------------------------------------
// Matching helpers.

/// A case-insensitive glob: `*` matches any run of characters (also empty);
/// every other character matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    // ASCII (the shipped policies' patterns, almost every host and URI):
    // compared byte by byte, nothing allocated. Every session is classified
    // (§E.2), and the lowercased copies were 1.3 % of a run.
    if pattern.is_ascii() && text.is_ascii() {
        return glob(
            pattern.as_bytes(),
            text.as_bytes(),
            u8::eq_ignore_ascii_case,
        );
    }
    let p: Vec<char> = pattern.chars().flat_map(char::to_lowercase).collect();
    let t: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    glob(&p, &t, |a, b| a == b)
}

/// [`glob_match`] over units that `same` compares: `*` in the pattern
/// matches any run of them.
fn glob<C: Copy + PartialEq + From<u8>>(p: &[C], t: &[C], same: impl Fn(&C, &C) -> bool) -> bool {
    let star = C::from(b'*');
    let (mut pi, mut ti) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == star {
            back = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && same(&p[pi], &t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = back {
            pi = sp + 1;
            ti = st + 1;
            back = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == star)
}

/// Strip a display name and angle brackets: `"Bob" <sip:b@x>;tag=1` → `sip:b@x`.
pub(super) fn bare_uri(s: &str) -> &str {
    let s = s.trim();
    match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => s[a + 1..b].trim(),
        _ => s,
    }
}

/// The lowercased host of a `sip:`/`sips:` URI (IPv6 without brackets).
pub(super) fn sip_host(uri: &str) -> Option<String> {
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

pub(super) fn scheme_is(uri: &str, scheme: &str) -> bool {
    let u = bare_uri(uri);
    u.find(':')
        .is_some_and(|i| u[..i].trim().eq_ignore_ascii_case(scheme))
}

/// A host (possibly `host:port` or `[v6]:port`) without port and brackets,
/// lowercased.
pub(super) fn bare_host(h: &str) -> String {
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

pub(super) fn under_domain(host: &str, domain: &str) -> bool {
    let d = domain.trim_start_matches("*.").trim_end_matches('.');
    !d.is_empty()
        && (host.eq_ignore_ascii_case(d)
            || (host.len() > d.len()
                && host.as_bytes()[host.len() - d.len() - 1] == b'.'
                && host[host.len() - d.len()..].eq_ignore_ascii_case(d)))
}

impl Policy {
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
}
