//! The effective policy printed back as TOML (`sipaudit policy check`):
//! every key with its value, every rule with its effective reason. It
//! never validates.

use std::fmt::Write as _;

use super::WHEN_KEYS;
use super::model::{Policy, Rule, unknown_as_name};

impl Policy {
    // -----------------------------------------------------------------------
    // Printing.

    /// The effective policy as TOML: every key with its value (the omitted
    /// ones filled in from the built-in default), every rule with its
    /// effective reason. Parses back to an equal policy.
    pub fn to_toml(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "version = 1");
        let _ = writeln!(o, "name = {}", s(&self.name));
        self.home_toml(&mut o);
        self.destinations_toml(&mut o);
        self.relaxation_toml(&mut o);
        let _ = writeln!(o, "\n[emergency]");
        let _ = writeln!(o, "match = {}", list(&self.emergency_match));
        let _ = writeln!(o, "relaxation = {}", s(self.emergency_mode.name()));
        for r in &self.rules {
            rule_toml(r, &mut o);
        }
        o
    }

    /// The `[home]` table.
    fn home_toml(&self, w: &mut String) {
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
    }

    /// The `[destinations]` table.
    fn destinations_toml(&self, w: &mut String) {
        let _ = writeln!(w, "\n[destinations]");
        let _ = writeln!(w, "ims_domains = {}", list(&self.ims_domains));
        let _ = writeln!(w, "non_ims_domains = {}", list(&self.non_ims_domains));
        let _ = writeln!(w, "tel_uri_class = {}", s(self.tel_uri_class.policy_name()));
        let _ = writeln!(w, "unknown_as = {}", s(unknown_as_name(self.unknown_as)));
        let _ = writeln!(w, "infer_from_signaling = {}", self.infer_from_signaling);
    }

    /// The `[relaxation]` table.
    fn relaxation_toml(&self, w: &mut String) {
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
        let mode = if self.sdp_strict {
            "strict"
        } else {
            "ims-lenient"
        };
        let _ = writeln!(w, "sdp_mode = {}", s(mode));
    }
}

/// One `[[rule]]` table: its id, its conditions in [`WHEN_KEYS`] order, its
/// action and, for a deny, its reason.
fn rule_toml(r: &Rule, w: &mut String) {
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

/// A TOML string.
fn s(v: &str) -> String {
    toml::Value::String(v.to_string()).to_string()
}

/// A TOML array of strings.
fn list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|x| s(x)).collect();
    format!("[{}]", items.join(", "))
}
