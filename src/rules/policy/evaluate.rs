//! The per-link policy evaluation of rules.md §E.4: a pure function of a
//! [`LinkContext`]: emergency, `[[rule]]`s, `[relaxation]` defaults, limits,
//! then the enforcement evidence. It never loads or prints.

use super::destination::{bare_uri, glob_match};
use super::model::{EmergencyMode, LinkContext, Policy, PolicyOutcome, Rule, When};
use super::{DestClass, PolicyVerdict, Reason};
use crate::rules::catalogue::{Flag, Verdict};

/// How §E.4 step 2 decided a link (or a tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    Allow(String),
    Deny(Reason, String),
    Undetermined(String),
}

pub(super) fn cap_in(list: &[String], tag: &str) -> bool {
    list.iter().any(|c| c == "*" || c.eq_ignore_ascii_case(tag))
}

impl Policy {
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
}
