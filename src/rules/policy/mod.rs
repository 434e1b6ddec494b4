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

mod destination;
mod evaluate;
mod load;
mod model;
mod print;
mod schema;

pub use super::catalogue::{DestClass, PolicyVerdict, Reason};
pub use destination::glob_match;
pub use model::{Confidence, DestSignals, LinkContext, Policy, PolicyError, PolicyOutcome};
#[cfg(test)]
use std::net::IpAddr;

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
pub const EXAMPLE_TOML: &str = include_str!("../../../samples/policies/annotated-example.toml");

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

#[cfg(test)]
mod tests;
