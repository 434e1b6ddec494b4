//! Unit tests of rules.md §E: the policy file, destination classification,
//! every policy verdict, and the §H examples that involve a policy.

use super::*;

const E3: &str = include_str!("../../../samples/policies/e3-example.toml");

fn pol(text: &str) -> Policy {
    Policy::parse(text, "test").unwrap_or_else(|e| panic!("{e}"))
}

fn e3() -> Policy {
    pol(E3)
}

fn perr(text: &str) -> PolicyError {
    match Policy::parse(text, "p.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

fn tags(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

/// A link that relaxed `x` toward `dest`, H0, first link, no evidence.
fn link(verdict: &str, dest: DestClass, x: &[&str]) -> LinkContext {
    let mut c = LinkContext::new(verdict.parse().unwrap(), dest);
    c.relaxed = tags(x);
    c.refused = tags(x);
    c
}

fn out(verdict: &str, rule: &str, flags: &[&str]) -> PolicyOutcome {
    PolicyOutcome {
        verdict: Some(verdict.parse().unwrap()),
        rule: rule.to_string(),
        flags: flags.iter().map(|f| f.parse().unwrap()).collect(),
    }
}

// The keys of each table of rules.md §E.3.
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

const NONE: &[&str] = &[];
const NE: &[&str] = &["POLICY_NOT_ENFORCED"];

// ---------------------------------------------------------------------------
// The policy file.

#[test]
fn builtin_is_the_e3_default() {
    let p = Policy::builtin();
    assert_eq!(p.name(), "builtin-default");
    assert_eq!(p.window_ns(), 32_000_000_000);
    assert_eq!(p.max_retries(), 2);
    assert!(p.extra_droppable().is_empty());
    assert!(!p.sdp_mode_strict());
    assert!(p.infer_from_signaling());
    assert!(p.reject_code(403) && p.reject_code(421) && p.reject_code(488) && p.reject_code(606));
    assert!(!p.reject_code(404));
    assert!(p.reject_text_matches("Relaxation not allowed"));
    assert!(!p.reject_text_matches("busy"));
    assert!(p.rules.is_empty());
    assert_eq!(Policy::default(), p);
}

#[test]
fn builtin_text_sets_every_key() {
    // The built-in text is parsed over a placeholder: every key must be in
    // it, so parsing it over itself changes nothing and printing it gives
    // every key of E.3.
    let p = Policy::builtin();
    let t = p.to_toml();
    for key in HOME_KEYS
        .iter()
        .chain(DEST_KEYS.iter())
        .chain(RELAX_KEYS.iter())
        .chain(EMERGENCY_KEYS.iter())
    {
        assert!(
            BUILTIN_TOML
                .lines()
                .any(|l| l.starts_with(&format!("{key} "))),
            "{key} missing from the built-in text"
        );
        assert!(
            t.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "{key}"
        );
    }
    assert_eq!(pol(&t), p);
}

#[test]
fn only_version_is_required_and_omitted_keys_are_the_builtin() {
    let p = Policy::parse("version = 1\n", "mine").unwrap();
    assert_eq!(p.name(), "mine");
    let mut b = Policy::builtin();
    b.name = "mine".into();
    assert_eq!(p, b);
    let p = pol("version = 1\nname = \"x\"\n[relaxation]\nmax_retries = 5\n");
    assert_eq!(p.name(), "x");
    assert_eq!(p.max_retries(), 5);
    assert_eq!(p.allowed_capabilities, vec!["*".to_string()]);
}

#[test]
fn e3_example_parses_with_its_rules() {
    let p = e3();
    assert_eq!(p.name(), "operator-a");
    assert_eq!(p.max_retries(), 1);
    let ids: Vec<&str> = p.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "keep-qos-toward-partners",
            "vip-never-relax",
            "roamers-in-r5-networks"
        ]
    );
    assert_eq!(p.rules[0].reason.unwrap(), "DEST_IMS");
    assert_eq!(p.rules[1].reason.unwrap(), "SUBSCRIBER"); // derived from `subscriber`
    assert!(p.rules[2].allow);
}

#[test]
fn to_toml_round_trips() {
    for text in [
        E3,
        EXAMPLE_TOML,
        BUILTIN_TOML,
        "version = 1\n[relaxation]\nwindow_s = 2.5\n[[rule]]\nid=\"e\"\nwhen={emergency=false, identity=\"new_call_id\", access_type=[\"3GPP-*\",\"IEEE-802.11\"]}\naction=\"deny\"\n",
    ] {
        let p = pol(text);
        let again = pol(&p.to_toml());
        assert_eq!(again.to_toml(), p.to_toml());
        assert_eq!(again.rules, p.rules);
    }
    assert_eq!(
        pol("version = 1\n[relaxation]\nwindow_s = 2.5\n").window_ns(),
        2_500_000_000
    );
}

#[test]
fn example_is_the_e3_example_with_comments() {
    let a = pol(EXAMPLE_TOML);
    let b = e3();
    assert_eq!(a, b);
    assert_eq!(a.rules, b.rules);
}

#[test]
fn default_reasons_follow_the_when_key_order() {
    let cases = [
        ("{}", "RELAXATION_FORBIDDEN"),
        ("{ capability = \"x\", destination = \"ims\" }", "DEST_IMS"),
        (
            "{ subscriber = \"a\", capability = \"x\" }",
            "CAPABILITY_NOT_RELAXABLE",
        ),
        (
            "{ subscriber = \"a\", origin_domain = \"b\" }",
            "SUBSCRIBER",
        ),
        ("{ origin_domain = \"b\" }", "ORIGIN"),
        ("{ visited_network = \"b\", emergency = true }", "ORIGIN"),
        ("{ access_type = \"b\" }", "ORIGIN"),
        (
            "{ emergency = true, identity = \"new_call_id\" }",
            "EMERGENCY",
        ),
        ("{ identity = \"new_call_id\" }", "SAME_CALL_ID_REQUIRED"),
    ];
    for (when, reason) in cases {
        let p = pol(&format!(
            "version = 1\n[[rule]]\nid = \"r\"\nwhen = {when}\naction = \"deny\"\n"
        ));
        assert_eq!(p.rules[0].reason.unwrap(), reason, "{when}");
    }
    let p = pol("version = 1\n[[rule]]\nid = \"r\"\naction = \"deny\"\n");
    assert_eq!(p.rules[0].reason.unwrap(), "RELAXATION_FORBIDDEN");
    let p = pol(
        "version = 1\n[[rule]]\nid = \"r\"\nwhen = { capability = \"x\" }\naction = \"deny\"\nreason = \"ORIGIN\"\n",
    );
    assert_eq!(p.rules[0].reason.unwrap(), "ORIGIN");
}

/// Broken policies: text, the line and key of the error, and part of its
/// message.
const BROKEN: &[(&str, usize, &str, &str)] = &[
    ("name = \"x\"\n", 1, "version", "missing"),
    ("version = 2\n", 1, "version", "must be 1"),
    ("version = \"1\"\n", 1, "version", "expected an integer"),
    (
        "version = 1\n\n[relaxation]\nsdp_mode = \"lax\"\n",
        4,
        "[relaxation] sdp_mode",
        "\"lax\" is not one of strict, ims-lenient",
    ),
    (
        "version = 1\n[bogus]\nx = 1\n",
        2,
        "[bogus]",
        "unknown table",
    ),
    ("version = 1\nbogus = 1\n", 2, "bogus", "unknown key"),
    (
        "version = 1\n[home]\nnodes = []\nnode = []\n",
        4,
        "[home] node",
        "unknown key",
    ),
    (
        "version = 1\n[relaxation]\nallowed = \"yes\"\n",
        3,
        "[relaxation] allowed",
        "expected a boolean",
    ),
    (
        "version = 1\n[relaxation]\nmax_retries = -1\n",
        3,
        "[relaxation] max_retries",
        "non-negative",
    ),
    (
        "version = 1\n[relaxation]\nwindow_s = 0\n",
        3,
        "[relaxation] window_s",
        "positive",
    ),
    (
        "version = 1\n[relaxation]\nallowed_destinations = [\"non_ims\",\n  \"internet\"]\n",
        4,
        "[relaxation] allowed_destinations",
        "\"internet\"",
    ),
    (
        "version = 1\n[relaxation]\nallowed_capabilities = [\"100rel\", 3]\n",
        3,
        "[relaxation] allowed_capabilities",
        "array of strings",
    ),
    (
        "version = 1\n[relaxation]\nforbidden_capabilities = [\"sec agree\"]\n",
        3,
        "[relaxation] forbidden_capabilities",
        "not an option tag",
    ),
    (
        "version = 1\n[destinations]\ntel_uri_class = \"IMS\"\n",
        3,
        "[destinations] tel_uri_class",
        "not one of ims, non_ims, unknown",
    ),
    (
        "version = 1\n[destinations]\nunknown_as = \"unknown\"\n",
        3,
        "[destinations] unknown_as",
        "not one of ims, non_ims, undetermined",
    ),
    (
        "version = 1\n[destinations]\nims_domains = [\"a b.example\"]\n",
        3,
        "[destinations] ims_domains",
        "not a host glob",
    ),
    (
        "version = 1\n[home]\nnodes = [\"10.0.0.0/33\"]\n",
        3,
        "[home] nodes",
        "CIDR",
    ),
    (
        "version = 1\n[home]\nborder = [\"10.0.0.300\"]\n",
        3,
        "[home] border",
        "IP address",
    ),
    (
        "version = 1\n[home]\nreject_codes = [403, 99]\n",
        3,
        "[home] reject_codes",
        "status code",
    ),
    (
        "version = 1\n[home]\nreject_warning_regex = \"(unclosed\"\n",
        3,
        "[home] reject_warning_regex",
        "regular expression",
    ),
    (
        "version = 1\n[emergency]\nrelaxation = \"sometimes\"\n",
        3,
        "[emergency] relaxation",
        "always_allow, never, follow_policy",
    ),
    (
        "version = 1\n[emergency]\nmatch = \"urn:service:sos*\"\n",
        3,
        "[emergency] match",
        "array of strings",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\naction = \"deny\"\n[[rule]]\nid = \"a\"\naction = \"allow\"\n",
        6,
        "[[rule]] id",
        "duplicate rule id \"a\"",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\naction = \"block\"\n",
        4,
        "[[rule]] action",
        "not one of allow, deny",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\naction = \"deny\"\nreason = \"NOPE\"\n",
        5,
        "[[rule]] reason",
        "not one of RELAXATION_FORBIDDEN",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\naction = \"allow\"\nreason = \"DEST_IMS\"\n",
        5,
        "[[rule]] reason",
        "only a deny rule",
    ),
    (
        "version = 1\n\n[[rule]]\nwhen = {}\naction = \"deny\"\n",
        3,
        "[[rule]] id",
        "missing",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\n",
        2,
        "[[rule]] action",
        "missing",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\nwhen = { color = \"red\" }\naction = \"deny\"\n",
        4,
        "[[rule]] when.color",
        "unknown key",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\nwhen = { destination = \"internet\" }\naction = \"deny\"\n",
        4,
        "[[rule]] when.destination",
        "not one of ims, non_ims, unknown",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\nwhen = { emergency = \"yes\" }\naction = \"deny\"\n",
        4,
        "[[rule]] when.emergency",
        "expected a boolean",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\nwhen = { capability = true }\naction = \"deny\"\n",
        4,
        "[[rule]] when.capability",
        "a string or an array",
    ),
    (
        "version = 1\n[[rule]]\nid = \"a\"\nwhen = { identity = \"h0\" }\naction = \"deny\"\n",
        4,
        "[[rule]] when.identity",
        "same_call_id, new_call_id",
    ),
    (
        "version = 1\n[rule]\nid = \"a\"\n",
        2,
        "[[rule]]",
        "array of tables",
    ),
    (
        "version = 1\n[relaxation]\nallowed = true\nallowed = false\n",
        4,
        "TOML syntax",
        "",
    ),
    ("version = 1\nname = \"unterminated\n", 2, "TOML syntax", ""),
];

/// Each broken policy gives its line and key.
#[test]
fn errors_name_line_and_key() {
    let cases = BROKEN;
    let mut wrong = Vec::new();
    for (text, line, key, msg) in cases {
        let e = perr(text);
        if (e.line, e.key.as_str()) != (*line, *key) || !e.message.contains(msg) {
            wrong.push(format!("{text:?} gave {e}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    for (text, line, key, msg) in cases {
        let e = perr(text);
        assert_eq!((e.line, e.key.as_str()), (*line, *key), "{text:?} gave {e}");
        assert!(e.message.contains(msg), "{text:?} gave {e}");
        assert_eq!(e.file, "p.toml");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("p.toml:{line}: {key}: ")),
            "{shown}"
        );
        assert!(!shown.contains('\n'), "{shown}");
    }
}

#[test]
fn the_first_error_in_file_order_is_reported() {
    // Tables are visited in key order; the report is the earliest line.
    let e = perr(
        "version = 1\n[relaxation]\nsdp_mode = \"x\"\n[emergency]\nrelaxation = \"y\"\n[destinations]\nunknown_as = \"z\"\n",
    );
    assert_eq!(e.line, 3);
}

#[test]
fn errors_across_keys_and_split_tables_come_in_file_order() {
    // A reason on an allow rule (line 8) before a bad value (line 10).
    let e = perr(
        "version = 1\n[[rule]]\nid = \"a\"\naction = \"deny\"\n[[rule]]\nid = \"b\"\naction = \"allow\"\nreason = \"ORIGIN\"\n[relaxation]\nsdp_mode = \"x\"\n",
    );
    assert_eq!((e.line, e.key.as_str()), (8, "[[rule]] reason"), "{e}");
    // [relaxation] split around [home]: the [home] error (line 5) is earlier.
    let e = perr(
        "version = 1\n[relaxation]\nallowed = true\n[home]\nnodes = [\"x y\"]\n[relaxation.z]\n",
    );
    assert_eq!((e.line, e.key.as_str()), (5, "[home] nodes"), "{e}");
    // A missing version comes first, whatever else is wrong.
    let e = perr("name = 3\n[home]\nx = 1\n");
    assert_eq!((e.line, e.key.as_str()), (1, "version"), "{e}");
    // A list item's error names the item's line.
    let e = perr("version = 1\n[home]\nreject_codes = [403,\n 700]\n");
    assert_eq!((e.line, e.key.as_str()), (4, "[home] reject_codes"), "{e}");
    // A wrong type says what was expected.
    let e = perr("version = 1\nhome = 3\n");
    assert_eq!((e.line, e.key.as_str()), (2, "home"), "{e}");
    assert!(e.message.contains("expected a table ([home])"), "{e}");
}

#[test]
fn load_names_the_file_and_uses_its_stem() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("operator-b.toml");
    std::fs::write(&f, "version = 1\n").unwrap();
    assert_eq!(Policy::load(&f).unwrap().name(), "operator-b");
    std::fs::write(&f, "version = 1\n\n[relaxation]\nsdp_mode = \"lax\"\n").unwrap();
    let e = Policy::load(&f).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4: [relaxation] sdp_mode: \"lax\" is not one of strict, ims-lenient",
            f.display()
        )
    );
    let e = Policy::load(&dir.path().join("missing.toml")).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.to_string().contains("cannot read"), "{e}");
}

// ---------------------------------------------------------------------------
// rules.md §E.2.

#[test]
fn destination_builtin_steps_1_and_2() {
    let p = Policy::builtin();
    let s = DestSignals::default();
    let d = |r: &str, t: &str| p.destination(r, t, &s);
    use Confidence::*;
    use DestClass::*;
    assert_eq!(d("sip:bob@example.com", ""), (NonIms, High));
    assert_eq!(
        d("sip:bob@ims.mnc010.mcc262.3gppnetwork.org;user=phone", ""),
        (Ims, High)
    );
    assert_eq!(
        d("SIPS:Bob@IMS.MNC001.MCC001.3GPPNETWORK.ORG:5061", ""),
        (Ims, High)
    );
    assert_eq!(
        d("<sip:+491701234567@ims.mnc001.mcc262.3gppnetwork.org>", ""),
        (Ims, High)
    );
    // `*.x` is every host under x, not x itself.
    assert_eq!(d("sip:bob@3gppnetwork.org", ""), (NonIms, High));
    assert_eq!(d("sip:bob@evil3gppnetwork.org", ""), (NonIms, High));
    // tel: → the To URI when it is SIP.
    assert_eq!(
        d("tel:+4930123", "sip:+4930123@ims.mnc1.mcc2.3gppnetwork.org"),
        (Ims, High)
    );
    assert_eq!(
        d("tel:+4930123", "<sip:+4930123@example.net>"),
        (NonIms, High)
    );
    // tel: without a SIP To → tel_uri_class (unknown) → step 5.
    assert_eq!(d("tel:+4930123", "tel:+4930123"), (Unknown, Low));
    // urn: → unknown.
    assert_eq!(d("urn:service:sos", "urn:service:sos"), (Unknown, Low));
}

#[test]
fn destination_steps_3_to_5_only_with_inference() {
    let p = Policy::builtin();
    let ims = DestSignals {
        ims_signature: true,
        refused_core: true,
    };
    let refused = DestSignals {
        ims_signature: false,
        refused_core: true,
    };
    assert_eq!(
        p.destination("tel:+1", "tel:+1", &ims),
        (DestClass::Ims, Confidence::Medium)
    );
    assert_eq!(
        p.destination("tel:+1", "tel:+1", &refused),
        (DestClass::NonIms, Confidence::Medium)
    );
    // A SIP host is decided by step 1 (empty non_ims_domains matches every host).
    assert_eq!(
        p.destination("sip:a@b.example", "", &ims),
        (DestClass::NonIms, Confidence::High)
    );
    let off = pol("version = 1\n[destinations]\ninfer_from_signaling = false\n");
    assert_eq!(
        off.destination("tel:+1", "tel:+1", &ims),
        (DestClass::Unknown, Confidence::Low)
    );
    // A listed non_ims_domains: an unlisted host goes on to steps 3-5.
    let listed = pol(
        "version = 1\n[destinations]\nnon_ims_domains = [\"*.example.com\", \"EXAMPLE.NET\"]\n",
    );
    assert_eq!(
        listed.destination("sip:a@x.example.com", "", &ims),
        (DestClass::NonIms, Confidence::High)
    );
    assert_eq!(
        listed.destination("sip:a@example.net", "", &ims),
        (DestClass::NonIms, Confidence::High)
    );
    assert_eq!(
        listed.destination("sip:a@other.org", "", &ims),
        (DestClass::Ims, Confidence::Medium)
    );
    assert_eq!(
        listed.destination("sip:a@other.org", "", &DestSignals::default()),
        (DestClass::Unknown, Confidence::Low)
    );
    // tel_uri_class decides step 2.
    let tel = pol("version = 1\n[destinations]\ntel_uri_class = \"ims\"\n");
    assert_eq!(
        tel.destination("tel:+1;phone-context=x", "tel:+1", &refused),
        (DestClass::Ims, Confidence::High)
    );
    assert_eq!(
        tel.destination("tel:+1", "sip:+1@example.org", &refused),
        (DestClass::NonIms, Confidence::High)
    );
}

/// Issue 12 item 12: an incoming INVITE to the UE's contact address or a
/// P-CSCF OPTIONS keep-alive names an IP literal, which says nothing about
/// the network behind it: UNKNOWN (then steps 3-5), never NON_IMS by the
/// empty `non_ims_domains`; IMS when the address is a home node.
#[test]
fn destination_ip_literal_is_unknown_unless_home_node() {
    use Confidence::*;
    use DestClass::*;
    let s = DestSignals::default();
    let p = Policy::builtin();
    assert_eq!(p.destination("sip:10.20.1.7:5060", "", &s), (Unknown, Low));
    assert_eq!(
        p.destination("sip:+491701234567@192.0.2.10:5060;transport=udp", "", &s),
        (Unknown, Low)
    );
    assert_eq!(
        p.destination("sip:[2001:db8::1]:5060", "", &s),
        (Unknown, Low)
    );
    assert_eq!(
        p.destination("tel:+4930123", "sip:+4930123@192.0.2.10", &s),
        (Unknown, Low)
    );
    // Signalling evidence (steps 3-4) still decides.
    let refused = DestSignals {
        ims_signature: false,
        refused_core: true,
    };
    assert_eq!(
        p.destination("sip:10.20.1.7:5060", "", &refused),
        (NonIms, Medium)
    );
    // A home node (an address or a CIDR block of `[home] nodes`) is IMS.
    let home = pol("version = 1\n[home]\nnodes = [\"10.20.0.0/16\", \"2001:db8::1\"]\n");
    assert_eq!(home.destination("sip:10.20.1.7:5060", "", &s), (Ims, High));
    assert_eq!(home.destination("sip:u@[2001:db8::1]", "", &s), (Ims, High));
    assert_eq!(home.destination("sip:10.21.1.7", "", &s), (Unknown, Low));
    // A host name is still decided by step 1.
    assert_eq!(
        home.destination("sip:bob@example.com", "", &s),
        (NonIms, High)
    );
}

#[test]
fn e3_example_destinations() {
    let p = e3();
    let s = DestSignals::default();
    assert_eq!(
        p.destination("sip:bob@partner-ims.example", "", &s).0,
        DestClass::Ims
    );
    assert_eq!(
        p.destination("sip:bob@Partner-IMS.example", "", &s).0,
        DestClass::Ims
    );
    assert_eq!(
        p.destination("sip:bob@sub.partner-ims.example", "", &s).0,
        DestClass::NonIms
    );
}

#[test]
fn unknown_as_maps_unknown_for_policy_checks() {
    assert_eq!(
        Policy::builtin().policy_class(DestClass::Unknown),
        DestClass::Unknown
    );
    assert_eq!(
        Policy::builtin().policy_class(DestClass::Ims),
        DestClass::Ims
    );
    let p = pol("version = 1\n[destinations]\nunknown_as = \"non_ims\"\n");
    assert_eq!(p.policy_class(DestClass::Unknown), DestClass::NonIms);
    let p = pol("version = 1\n[destinations]\nunknown_as = \"ims\"\n");
    assert_eq!(p.policy_class(DestClass::Unknown), DestClass::Ims);
    assert_eq!(p.policy_class(DestClass::NonIms), DestClass::NonIms);
}

#[test]
fn emergency_request_uris() {
    let p = Policy::builtin();
    assert!(p.is_emergency("urn:service:sos"));
    assert!(p.is_emergency("urn:service:sos.police"));
    assert!(p.is_emergency("<URN:Service:SOS>"));
    assert!(p.is_emergency("sip:112@ims.example;sos"));
    assert!(p.is_emergency("sip:+49112;phone-context=x@ims.example;user=phone;SOS=1"));
    assert!(p.is_emergency("tel:112;sos"));
    assert!(!p.is_emergency("sip:sos@ims.example"));
    assert!(!p.is_emergency("sip:bob@ims.example;user=phone"));
    assert!(!p.is_emergency("urn:service:counseling"));
    let p = pol("version = 1\n[emergency]\nmatch = [\"sip:112@*\", \"tel:11?\"]\n");
    assert!(p.is_emergency("sip:112@x.example"));
    assert!(!p.is_emergency("urn:service:sos"));
    assert!(p.is_emergency("sip:911@x;sos"));
}

#[test]
fn globs() {
    assert!(glob_match(
        "*.3gppnetwork.org",
        "ims.mnc1.mcc2.3gppnetwork.org"
    ));
    assert!(!glob_match("*.3gppnetwork.org", "3gppnetwork.org"));
    assert!(glob_match(
        "sip:+4915*@operator-a.example",
        "SIP:+4915123@Operator-A.example"
    ));
    assert!(!glob_match(
        "sip:+4915*@operator-a.example",
        "sip:+4916123@operator-a.example"
    ));
    assert!(glob_match("*", ""));
    assert!(glob_match("a*b*c", "aXXbYYc"));
    assert!(!glob_match("a*b*c", "aXXbYY"));
    assert!(glob_match("3GPP-E-UTRAN*", "3gpp-e-utran-fdd"));
    // Non-ASCII goes through full Unicode lowercasing.
    assert!(glob_match("*.MÜNCHEN.example", "sip.münchen.EXAMPLE"));
    assert!(!glob_match("*.münchen.example", "sip.munchen.example"));
}

/// The allocation-free ASCII path answers as the Unicode path does, on
/// every pattern and text of up to 4 units of a small alphabet with case,
/// dots and stars.
#[test]
fn ascii_globs_match_as_unicode_ones() {
    // The same pattern and text with one non-ASCII unit appended to both:
    // it can only match itself, at the end, so the answer is the same, and
    // it takes the Unicode path.
    let unicode = |p: &str, t: &str| glob_match(&format!("{p}é"), &format!("{t}é"));
    let alphabet = ["a", "A", "b", "*", "."];
    let mut words = vec![String::new()];
    for _ in 0..4 {
        let longer: Vec<String> = words
            .iter()
            .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
            .collect();
        words.extend(longer);
        words.sort();
        words.dedup();
    }
    let texts: Vec<&String> = words.iter().filter(|w| !w.contains('*')).collect();
    let mut checked = 0;
    for p in &words {
        for t in &texts {
            assert_eq!(glob_match(p, t), unicode(p, t), "{p:?} {t:?}");
            checked += 1;
        }
    }
    assert!(checked > 100_000, "{checked}");
}

// ---------------------------------------------------------------------------
// Attribution.

#[test]
fn home_nodes_border_and_rejection() {
    let p = e3();
    let home: IpAddr = "10.20.3.4".parse().unwrap();
    let away: IpAddr = "192.0.2.1".parse().unwrap();
    assert!(p.is_home_node(home, None));
    assert!(p.is_home_node("::ffff:10.20.0.1".parse().unwrap(), None));
    assert!(!p.is_home_node(away, None));
    assert!(p.is_home_node(away, Some("scscf1.operator-a.example")));
    assert!(p.is_home_node(away, Some("SCSCF1.operator-a.example:5060")));
    assert!(p.is_home_node(away, Some("pcscf.operator-a.example")));
    assert!(p.is_home_node(away, Some("operator-a.example")));
    assert!(p.is_home_node(away, Some("x.ims.mnc010.mcc262.3gppnetwork.org")));
    assert!(!p.is_home_node(away, Some("xoperator-a.example")));
    assert!(!p.is_home_node(away, Some("partner-ims.example")));
    assert!(p.is_home_node(away, Some("10.20.9.9")));
    assert!(p.is_border(away, &["ibcf1.operator-a.example:5060"]));
    assert!(p.is_border(away, &["a.example", "IBCF1.OPERATOR-A.EXAMPLE"]));
    assert!(!p.is_border(away, &["scscf1.operator-a.example"]));
    let b = pol(
        "version = 1\n[home]\nborder = [\"198.51.100.0/24\", \"2001:db8::/32\", \"[2001:db9::1]\"]\n",
    );
    assert!(b.is_border("198.51.100.7".parse().unwrap(), &[]));
    assert!(b.is_border("2001:db8:1::5".parse().unwrap(), &[]));
    assert!(b.is_border(away, &["[2001:db9::1]:5060"]));
    assert!(!b.is_border(away, &[]));
    // Under the built-in policy nothing is a home node or a border.
    let d = Policy::builtin();
    assert!(!d.is_home_node(home, Some("scscf1.operator-a.example")));
    assert!(!d.is_border(home, &["ibcf1.operator-a.example"]));
    // 421 counts only when its Require lists a relaxed tag.
    let x = tags(&["100rel"]);
    assert!(p.is_home_rejection(true, 403, &[], &x));
    assert!(!p.is_home_rejection(false, 403, &[], &x));
    assert!(!p.is_home_rejection(true, 480, &[], &x));
    assert!(p.is_home_rejection(true, 421, &["100REL"], &x));
    assert!(!p.is_home_rejection(true, 421, &["timer"], &x));
}

// ---------------------------------------------------------------------------
// rules.md §E.4: every verdict.

#[test]
fn compliant_by_the_defaults() {
    let p = Policy::builtin();
    let c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["precondition"]);
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
}

#[test]
fn not_applicable_is_empty_and_no_relaxation_is_empty() {
    let p = pol("version = 1\n[relaxation]\nallowed = false\n");
    let c = link("NOT_APPLICABLE", DestClass::NonIms, &["precondition"]);
    assert_eq!(p.evaluate(&c), PolicyOutcome::default());
    let mut c = link("TRUNCATED", DestClass::NonIms, &[]);
    c.refused = tags(&["precondition"]);
    assert_eq!(p.evaluate(&c), PolicyOutcome::default());
    let mut c = link("EXTENSION_REQUIRED_SATISFIED", DestClass::NonIms, &[]);
    c.refused = tags(&["100rel"]);
    assert_eq!(p.evaluate(&c), PolicyOutcome::default());
    // NO_RETRY under a policy that allows: nothing withheld → empty.
    let mut c = link("NO_RETRY", DestClass::NonIms, &[]);
    c.refused = tags(&["precondition"]);
    assert_eq!(Policy::builtin().evaluate(&c), PolicyOutcome::default());
    // NO_RETRY with nothing refused (U = ∅) → empty.
    let c = link("NO_RETRY", DestClass::NonIms, &[]);
    assert_eq!(p.evaluate(&c), PolicyOutcome::default());
}

#[test]
fn violation_relaxation_forbidden() {
    let p = pol("version = 1\n[relaxation]\nallowed = false\n");
    let mut c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["precondition"]);
    let v = "POLICY_VIOLATION:RELAXATION_FORBIDDEN";
    assert_eq!(p.evaluate(&c), out(v, "relaxation.allowed", NONE));
    c.passed = true;
    assert_eq!(p.evaluate(&c), out(v, "relaxation.allowed", NE));
}

#[test]
fn violation_dest_ims() {
    let p = Policy::builtin();
    let mut c = link("COMPLIANT_RELAXATION", DestClass::Ims, &["100rel"]);
    let v = "POLICY_VIOLATION:DEST_IMS";
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.allowed_destinations", NONE)
    );
    c.passed = true;
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.allowed_destinations", NE)
    );
    // unknown_as = ims: an unknown destination counts as IMS.
    let p = pol("version = 1\n[destinations]\nunknown_as = \"ims\"\n");
    let c = link("COMPLIANT_RELAXATION", DestClass::Unknown, &["100rel"]);
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.allowed_destinations", NONE)
    );
}

#[test]
fn violation_capability_not_relaxable() {
    let p = Policy::builtin();
    let mut c = link("SECURITY_DOWNGRADE", DestClass::NonIms, &["sec-agree"]);
    let v = "POLICY_VIOLATION:CAPABILITY_NOT_RELAXABLE";
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.forbidden_capabilities", NONE)
    );
    c.passed = true;
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.forbidden_capabilities", NE)
    );
    // Not in allowed_capabilities (compared case-insensitively).
    let p = pol(include_str!("../../../samples/policies/100rel-only.toml"));
    let c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["precondition"]);
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.allowed_capabilities", NONE)
    );
    let c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["100REL"]);
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
    // forbidden wins over allowed.
    let p = pol("version = 1\n[relaxation]\nallowed_capabilities = [\"sec-agree\"]\n");
    let c = link("SECURITY_DOWNGRADE", DestClass::NonIms, &["sec-agree"]);
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.forbidden_capabilities", NONE)
    );
    // UPDATE is a capability like a tag.
    let e = e3();
    let c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["UPDATE"]);
    assert_eq!(e.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
    let c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["timer"]);
    assert_eq!(
        e.evaluate(&c),
        out(v, "relaxation.allowed_capabilities", NONE)
    );
}

#[test]
fn violation_subscriber() {
    let p = e3();
    let mut c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["100rel"]);
    c.subscriber = Some("<sip:+491501234@operator-a.example>".into());
    let v = "POLICY_VIOLATION:SUBSCRIBER";
    assert_eq!(p.evaluate(&c), out(v, "vip-never-relax", NONE));
    c.passed = true;
    assert_eq!(p.evaluate(&c), out(v, "vip-never-relax", NE));
    // Another subscriber, or none shown: the defaults decide.
    c.subscriber = Some("sip:+491601234@operator-a.example".into());
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
    c.subscriber = None;
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
}

#[test]
fn violation_origin() {
    let text = "version = 1\n[[rule]]\nid = \"no-wifi\"\nwhen = { access_type = [\"IEEE-802.11*\", \"3GPP-WLAN\"] }\naction = \"deny\"\n[[rule]]\nid = \"no-foreign\"\nwhen = { origin_domain = \"*.foreign.example\" }\naction = \"deny\"\n";
    let p = pol(text);
    let v = "POLICY_VIOLATION:ORIGIN";
    let mut c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["precondition"]);
    c.access_type = Some("IEEE-802.11a".into());
    assert_eq!(p.evaluate(&c), out(v, "no-wifi", NONE));
    c.passed = true;
    assert_eq!(p.evaluate(&c), out(v, "no-wifi", NE));
    c.access_type = Some("3GPP-E-UTRAN-FDD".into());
    c.passed = false;
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
    c.origin_domain = Some("ims.Foreign.example".into());
    assert_eq!(p.evaluate(&c), out(v, "no-foreign", NONE));
}

#[test]
fn violation_emergency_and_emergency_always_allow() {
    let never = pol(include_str!(
        "../../../samples/policies/emergency-never.toml"
    ));
    let mut c = link("COMPLIANT_RELAXATION", DestClass::Unknown, &["100rel"]);
    c.emergency = true;
    let v = "POLICY_VIOLATION:EMERGENCY";
    assert_eq!(never.evaluate(&c), out(v, "emergency", NONE));
    c.passed = true;
    assert_eq!(never.evaluate(&c), out(v, "emergency", NE));
    // always_allow: allowed whatever the defaults say, limits skipped.
    let p = pol(
        "version = 1\n[relaxation]\nallowed = false\nmax_retries = 0\nrequire_same_call_id = true\n",
    );
    c.passed = false;
    c.same_call_id = false;
    c.retry_count = 3;
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "emergency", NONE));
    // A rule with `emergency` in its `when`, under follow_policy.
    let p = pol(
        "version = 1\n[emergency]\nrelaxation = \"follow_policy\"\n[[rule]]\nid = \"sos\"\nwhen = { emergency = true }\naction = \"deny\"\n",
    );
    assert_eq!(p.evaluate(&c), out(v, "sos", NONE));
    c.emergency = false;
    c.retry_count = 1;
    c.destination = DestClass::NonIms;
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
}

#[test]
fn violation_retry_limit() {
    let p = e3(); // max_retries = 1
    let mut c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["100rel"]);
    c.retry_count = 2;
    let v = "POLICY_VIOLATION:RETRY_LIMIT";
    assert_eq!(p.evaluate(&c), out(v, "relaxation.max_retries", NONE));
    c.passed = true;
    assert_eq!(p.evaluate(&c), out(v, "relaxation.max_retries", NE));
    c.retry_count = 1;
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
}

#[test]
fn violation_same_call_id_required() {
    let p = pol(include_str!("../../../samples/policies/same-call-id.toml"));
    let mut c = link("RETRY_NEW_CALL_ID", DestClass::NonIms, &["precondition"]);
    c.same_call_id = false;
    let v = "POLICY_VIOLATION:SAME_CALL_ID_REQUIRED";
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.require_same_call_id", NONE)
    );
    c.passed = true;
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.require_same_call_id", NE)
    );
    c.same_call_id = true;
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
    // The identity `when` key.
    let p = pol(
        "version = 1\n[[rule]]\nid = \"h0-only\"\nwhen = { identity = \"new_call_id\" }\naction = \"deny\"\n",
    );
    c.same_call_id = false;
    c.passed = false;
    assert_eq!(p.evaluate(&c), out(v, "h0-only", NONE));
}

#[test]
fn violation_desired_listing_required() {
    let p = pol("version = 1\n[relaxation]\nrequire_desired_listing = true\n");
    let mut c = link("COMPLIANT_RELAXATION", DestClass::NonIms, &["precondition"]);
    c.desired_dropped = true;
    let v = "POLICY_VIOLATION:DESIRED_LISTING_REQUIRED";
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.require_desired_listing", NONE)
    );
    c.passed = true;
    assert_eq!(
        p.evaluate(&c),
        out(v, "relaxation.require_desired_listing", NE)
    );
    c.desired_dropped = false;
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
}

#[test]
fn limits_apply_in_order_and_only_to_allowed_links() {
    let p = pol(
        "version = 1\n[relaxation]\nmax_retries = 0\nrequire_same_call_id = true\nrequire_desired_listing = true\n",
    );
    let mut c = link("RETRY_NEW_CALL_ID", DestClass::NonIms, &["100rel"]);
    c.same_call_id = false;
    c.desired_dropped = true;
    assert_eq!(
        p.evaluate(&c).verdict.map(|v| v.to_string()).as_deref(),
        Some("POLICY_VIOLATION:RETRY_LIMIT")
    );
    // A denied tag is reported, not the limits.
    c.destination = DestClass::Ims;
    assert_eq!(
        p.evaluate(&c).verdict.map(|v| v.to_string()).as_deref(),
        Some("POLICY_VIOLATION:DEST_IMS")
    );
    // An undetermined link does not reach the limits either.
    c.destination = DestClass::Unknown;
    assert_eq!(
        p.evaluate(&c).verdict.map(|v| v.to_string()).as_deref(),
        Some("POLICY_UNDETERMINED")
    );
}

#[test]
fn enforced_and_overblocked() {
    let p = Policy::builtin();
    let mut c = link("COMPLIANT_RELAXATION", DestClass::Ims, &["precondition"]);
    c.home_rejected = true;
    c.passed = false;
    assert_eq!(
        p.evaluate(&c),
        out("POLICY_ENFORCED", "relaxation.allowed_destinations", NONE)
    );
    c.destination = DestClass::NonIms;
    assert_eq!(
        p.evaluate(&c),
        out("POLICY_OVERBLOCKED", "relaxation", NONE)
    );
}

#[test]
fn undetermined() {
    let p = Policy::builtin();
    let mut c = link(
        "COMPLIANT_RELAXATION",
        DestClass::Unknown,
        &["precondition"],
    );
    assert_eq!(
        p.evaluate(&c),
        out(
            "POLICY_UNDETERMINED",
            "relaxation.allowed_destinations",
            NONE
        )
    );
    c.home_rejected = true;
    assert_eq!(
        p.evaluate(&c).verdict.map(|v| v.to_string()).as_deref(),
        Some("POLICY_UNDETERMINED")
    );
    // "unknown" listed → allowed.
    let p = pol(include_str!("../../../samples/policies/100rel-only.toml"));
    let c = link("COMPLIANT_RELAXATION", DestClass::Unknown, &["100rel"]);
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
    // unknown_as = non_ims → allowed.
    let p = pol("version = 1\n[destinations]\nunknown_as = \"non_ims\"\n");
    let c = link("COMPLIANT_RELAXATION", DestClass::Unknown, &["100rel"]);
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
    // A denied tag beats an undetermined one, whatever their order.
    let p = Policy::builtin();
    let c = link(
        "OVER_RELAXED",
        DestClass::Unknown,
        &["precondition", "sec-agree"],
    );
    assert_eq!(
        p.evaluate(&c),
        out(
            "POLICY_VIOLATION:CAPABILITY_NOT_RELAXABLE",
            "relaxation.forbidden_capabilities",
            NONE
        )
    );
}

#[test]
fn first_denied_tag_gives_reason_and_rule() {
    let p = e3();
    // precondition toward IMS: keep-qos-toward-partners; 100rel: not in the
    // rules, allowed capability, but IMS is not an allowed destination.
    let c = link("OVER_RELAXED", DestClass::Ims, &["100rel", "precondition"]);
    assert_eq!(
        p.evaluate(&c),
        out(
            "POLICY_VIOLATION:DEST_IMS",
            "relaxation.allowed_destinations",
            NONE
        )
    );
    let c = link("OVER_RELAXED", DestClass::Ims, &["precondition", "100rel"]);
    assert_eq!(
        p.evaluate(&c),
        out(
            "POLICY_VIOLATION:DEST_IMS",
            "keep-qos-toward-partners",
            NONE
        )
    );
}

#[test]
fn rules_decide_before_defaults_and_first_match_wins() {
    let p = e3();
    // roamers-in-r5-networks allows 100rel toward IMS from a listed visited network.
    let mut c = link("COMPLIANT_RELAXATION", DestClass::Ims, &["100rel"]);
    c.visited_network = Some("R5-Visited.example".into());
    assert_eq!(
        p.evaluate(&c),
        out("POLICY_COMPLIANT", "roamers-in-r5-networks", NONE)
    );
    // Not shown: no match → the defaults (IMS not allowed).
    c.visited_network = None;
    assert_eq!(p.evaluate(&c).rule, "relaxation.allowed_destinations");
    // The VIP rule comes before the roamers rule.
    c.visited_network = Some("r5-visited.example".into());
    c.subscriber = Some("sip:+4915777@operator-a.example".into());
    assert_eq!(
        p.evaluate(&c),
        out("POLICY_VIOLATION:SUBSCRIBER", "vip-never-relax", NONE)
    );
}

#[test]
fn respected_by_ue() {
    let p = pol(include_str!("../../../samples/policies/no-relaxation.toml"));
    for verdict in ["NO_RETRY", "REPEATED_WITHOUT_RELAXATION", "RETRY_LOOP"] {
        let mut c = link(verdict, DestClass::NonIms, &[]);
        c.refused = tags(&["precondition"]);
        assert_eq!(
            p.evaluate(&c),
            out("POLICY_RESPECTED_BY_UE", "relaxation.allowed", NONE),
            "{verdict}"
        );
    }
    // X := U under the builtin: sec-agree refused, not retried.
    let mut c = link("NO_RETRY", DestClass::NonIms, &[]);
    c.refused = tags(&["sec-agree"]);
    assert_eq!(
        Policy::builtin().evaluate(&c),
        out(
            "POLICY_RESPECTED_BY_UE",
            "relaxation.forbidden_capabilities",
            NONE
        )
    );
    // Undetermined under X := U is not a denial.
    let mut c = link("NO_RETRY", DestClass::Unknown, &[]);
    c.refused = tags(&["precondition"]);
    assert_eq!(Policy::builtin().evaluate(&c), PolicyOutcome::default());
}

#[test]
fn severity_order() {
    let order = [
        "POLICY_VIOLATION:DEST_IMS",
        "POLICY_OVERBLOCKED",
        "POLICY_UNDETERMINED",
        "POLICY_ENFORCED",
        "POLICY_COMPLIANT",
        "POLICY_RESPECTED_BY_UE",
    ];
    let parsed: Vec<PolicyVerdict> = order.iter().map(|v| v.parse().unwrap()).collect();
    for w in parsed.windows(2) {
        assert!(w[0].rank() < w[1].rank(), "{} before {}", w[0], w[1]);
    }
    let a: PolicyVerdict = "POLICY_VIOLATION:RETRY_LIMIT".parse().unwrap();
    let b: PolicyVerdict = "POLICY_VIOLATION:EMERGENCY".parse().unwrap();
    assert_eq!(a.rank(), b.rank());
}

// ---------------------------------------------------------------------------
// rules.md §H examples that involve a policy.

/// H01: a compliant relaxation toward an Internet host under the built-in
/// policy.
#[test]
fn h01_builtin_non_ims_is_compliant() {
    let p = Policy::builtin();
    let (class, conf) = p.destination(
        "sip:bob@internet.example",
        "sip:bob@internet.example",
        &DestSignals::default(),
    );
    assert_eq!((class, conf), (DestClass::NonIms, Confidence::High));
    let mut c = link("COMPLIANT_RELAXATION", class, &["precondition"]);
    c.passed = true; // the retry got 200
    assert_eq!(p.evaluate(&c), out("POLICY_COMPLIANT", "relaxation", NONE));
}

/// H05: NO_RETRY after a 420 Unsupported: precondition, policy allowed=false.
#[test]
fn h05_no_retry_with_relaxation_forbidden_is_respected_by_ue() {
    let p = pol("version = 1\n[relaxation]\nallowed = false\n");
    let mut c = link("NO_RETRY", DestClass::NonIms, &[]);
    c.refused = tags(&["precondition"]);
    assert_eq!(
        p.evaluate(&c),
        out("POLICY_RESPECTED_BY_UE", "relaxation.allowed", NONE)
    );
}

/// H06: a new-Call-ID retry (H2) toward a NON_IMS destination with
/// require_same_call_id = true.
#[test]
fn h06_new_call_id_with_require_same_call_id() {
    let p = pol(include_str!("../../../samples/policies/same-call-id.toml"));
    let mut c = link("RETRY_NEW_CALL_ID", DestClass::NonIms, &["precondition"]);
    c.same_call_id = false;
    assert_eq!(
        p.evaluate(&c).verdict.map(|v| v.to_string()).as_deref(),
        Some("POLICY_VIOLATION:SAME_CALL_ID_REQUIRED")
    );
    // Under the built-in policy the same link is compliant.
    assert_eq!(
        Policy::builtin()
            .evaluate(&c)
            .verdict
            .map(|v| v.to_string())
            .as_deref(),
        Some("POLICY_COMPLIANT")
    );
}

/// H10: the E.3 example policy, host partner-ims.example, precondition
/// relaxed: violation; home 403 → enforced; 2xx or past ibcf1 → violation +
/// POLICY_NOT_ENFORCED.
#[test]
fn h10_keep_qos_toward_partners() {
    let p = e3();
    let (class, _) = p.destination(
        "sip:carol@partner-ims.example",
        "sip:carol@partner-ims.example",
        &DestSignals::default(),
    );
    assert_eq!(class, DestClass::Ims);
    let mut c = link("COMPLIANT_RELAXATION", class, &["precondition"]);
    let rule = "keep-qos-toward-partners";
    assert_eq!(p.evaluate(&c), out("POLICY_VIOLATION:DEST_IMS", rule, NONE));
    // The home S-CSCF answers 403 with Warning: 399 scscf1.operator-a.example.
    let from_home = p.is_home_node(
        "203.0.113.9".parse().unwrap(),
        Some("scscf1.operator-a.example"),
    );
    assert!(p.reject_text_matches("relaxation not allowed"));
    c.home_rejected = p.is_home_rejection(from_home, 403, &[], &c.relaxed);
    assert!(c.home_rejected);
    assert_eq!(p.evaluate(&c), out("POLICY_ENFORCED", rule, NONE));
    // The retry got a 2xx.
    c.home_rejected = false;
    c.passed = true;
    assert_eq!(p.evaluate(&c), out("POLICY_VIOLATION:DEST_IMS", rule, NE));
    // A copy seen past ibcf1.
    assert!(p.is_border(
        "198.51.100.1".parse().unwrap(),
        &["ibcf1.operator-a.example"]
    ));
}

/// H11: an emergency INVITE to urn:service:sos, 100rel relaxed, retry 200.
#[test]
fn h11_emergency() {
    let builtin = Policy::builtin();
    let uri = "urn:service:sos";
    assert!(builtin.is_emergency(uri));
    let (class, _) = builtin.destination(uri, uri, &DestSignals::default());
    let mut c = link("COMPLIANT_RELAXATION", class, &["100rel"]);
    c.emergency = true;
    c.passed = true;
    assert_eq!(
        builtin.evaluate(&c),
        out("POLICY_COMPLIANT", "emergency", NONE)
    );
    let never = pol("version = 1\n[emergency]\nrelaxation = \"never\"\n");
    assert_eq!(
        never.evaluate(&c),
        out("POLICY_VIOLATION:EMERGENCY", "emergency", NE)
    );
}

/// H15: REGISTER drops sec-agree after a 420, 200 → under the built-in
/// policy a violation that was not enforced.
#[test]
fn h15_sec_agree_under_builtin() {
    let p = Policy::builtin();
    let (class, _) = p.destination(
        "sip:ims.mnc001.mcc001.3gppnetwork.org",
        "sip:alice@ims.mnc001.mcc001.3gppnetwork.org",
        &DestSignals::default(),
    );
    assert_eq!(class, DestClass::Ims);
    let mut c = link("SECURITY_DOWNGRADE", class, &["sec-agree"]);
    c.passed = true;
    assert_eq!(
        p.evaluate(&c),
        out(
            "POLICY_VIOLATION:CAPABILITY_NOT_RELAXABLE",
            "relaxation.forbidden_capabilities",
            NE
        )
    );
}
