//! sessions.csv row contents decided after the expert review of issue 12,
//! on real captures (../shared/corpus/public) and the golden samples:
//! C13 only with precondition in Supported (item 2), outcome words that fit
//! the method (item 8), the UE profile in its own column (item 9), every
//! retry link in `links` (item 11), IP-literal Request-URIs (item 12).

mod common;

use std::collections::BTreeMap;

use common::needs::corpus;
use common::{Csv, analyze, read_csv, root};

/// sessions.csv of `sipaudit analyze` on `inputs` (paths from the repo root).
fn sessions(inputs: &[&str]) -> Csv {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["-j", "1", "-o", out.path().to_str().unwrap()];
    args.extend(inputs);
    let o = analyze(&args);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    read_csv(&out.path().join("sessions.csv"))
}

/// A capture of the public corpus; `None` after the skip note when the
/// corpus is missing (the test then returns).
fn public(path: &str) -> Option<String> {
    let p = corpus()?.join(path);
    assert!(p.is_file(), "{} is missing", p.display());
    Some(p.to_string_lossy().into_owned())
}

fn sample(case: &str) -> String {
    root()
        .join("samples")
        .join(case)
        .join("capture.pcap")
        .to_string_lossy()
        .into_owned()
}

fn flags(r: &BTreeMap<&str, &str>) -> Vec<String> {
    r["flags"].split(';').map(String::from).collect()
}

fn row(csv: &Csv, i: usize) -> BTreeMap<&str, &str> {
    csv.rows[i]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Item 2: the incoming INVITEs of 51_esp_sip carry `Supported: 100rel`
/// and `a=des:qos mandatory`; their answers have no precondition lines.
/// Precondition is in neither Supported nor Require, so rules.md C13
/// (PRECONDITION_IGNORED, "only in Sup") does not apply, and nothing infers
/// NON_IMS from it.
#[test]
fn r12_item2_c13_needs_precondition_in_supported() {
    let Some(capture) = public("nokia-pcaptoparquet/51_esp_sip.pcapng.gz") else {
        return;
    };
    let s = sessions(&[&capture]);
    assert_eq!(s.rows.len(), 7);
    for i in 0..s.rows.len() {
        let r = row(&s, i);
        assert_eq!((r["method"], r["first_supported"]), ("INVITE", "100rel"));
        assert_eq!(r["first_precondition"], "mandatory");
        assert!(
            !flags(&r).contains(&"PRECONDITION_IGNORED".to_string()),
            "session {}: {}",
            r["session"],
            r["flags"]
        );
        assert_ne!(
            r["destination_class"], "NON_IMS",
            "session {}",
            r["session"]
        );
    }
    // A real C13 stays: the iPhone offers precondition in Supported and the
    // far end answers without it.
    let Some(capture) = public("arkime/gtp-iphone.pcap") else {
        return;
    };
    let s = sessions(&[&capture]);
    let ignored: Vec<_> = (0..s.rows.len())
        .map(|i| row(&s, i))
        .filter(|r| flags(r).contains(&"PRECONDITION_IGNORED".to_string()))
        .map(|r| (r["method"].to_string(), r["first_supported"].to_string()))
        .collect();
    assert_eq!(
        ignored,
        [(
            "INVITE".to_string(),
            "100rel;path;precondition;replaces;timer".to_string()
        )]
    );
}

/// Item 8: a 2xx to a method other than INVITE is COMPLETED; ESTABLISHED
/// stays for INVITE.
#[test]
fn r12_item8_completed_for_non_invite_2xx() {
    let Some(capture) = public("open5gs/nonipsec_reg.pcapng") else {
        return;
    };
    let s = sessions(&[&capture]);
    let got: Vec<(String, String, String)> = (0..s.rows.len())
        .map(|i| row(&s, i))
        .map(|r| {
            (
                r["method"].to_string(),
                r["final_status"].to_string(),
                r["outcome"].to_string(),
            )
        })
        .collect();
    let want = [
        ("REGISTER", "200", "COMPLETED"),
        ("SUBSCRIBE", "200", "COMPLETED"),
        ("OPTIONS", "200", "COMPLETED"),
    ];
    for w in want {
        let w = (w.0.to_string(), w.1.to_string(), w.2.to_string());
        assert!(got.contains(&w), "{w:?} not in {got:?}");
    }
    let s = sessions(&[&sample("h15-sec-agree-register")]);
    assert_eq!(
        (&*s.rows[0]["method"], &*s.rows[0]["outcome"]),
        ("REGISTER", "COMPLETED")
    );
    let s = sessions(&[&sample("ipv6-call")]);
    assert_eq!(
        (&*s.rows[0]["method"], &*s.rows[0]["outcome"]),
        ("INVITE", "ESTABLISHED")
    );
}

/// Item 8: the BYEs of calls whose INVITE is not in the capture are
/// MID_DIALOG sessions (outcome TRUNCATED, rules.md §A.1); each got its 200,
/// which `final_status` shows.
#[test]
fn r12_item8_final_status_of_mid_dialog_sessions() {
    let Some(capture) = public("wireshark-wiki/filenameGRE199-fax-iz-InLife-G711-OK.cap") else {
        return;
    };
    let s = sessions(&[&capture]);
    let mid: Vec<(String, String, String)> = (0..s.rows.len())
        .map(|i| row(&s, i))
        .filter(|r| flags(r).contains(&"MID_DIALOG".to_string()))
        .map(|r| {
            (
                r["method"].to_string(),
                r["final_status"].to_string(),
                r["outcome"].to_string(),
            )
        })
        .collect();
    let want = (
        "BYE".to_string(),
        "200".to_string(),
        "TRUNCATED".to_string(),
    );
    assert_eq!(mid, vec![want; 4]);
}

/// Item 9: the UE profile is a column of its own (after `related_sessions`,
/// contract.md last section), never a flag; empty for non-INVITE sessions.
#[test]
fn r12_item9_ue_profile_column_not_flags() {
    let profiles = ["R5_STRICT", "R6PLUS_RELAXED", "NO_PRECONDITION"];
    let Some(capture) = public("arkime/gtp-iphone.pcap") else {
        return;
    };
    let s = sessions(&[&capture]);
    let at = s
        .header
        .iter()
        .position(|h| h == "related_sessions")
        .unwrap();
    assert_eq!(s.header.get(at + 1).map(String::as_str), Some("ue_profile"));
    let mut invites = 0;
    for i in 0..s.rows.len() {
        let r = row(&s, i);
        for p in profiles {
            assert!(!flags(&r).contains(&p.to_string()), "{}", r["flags"]);
        }
        if r["method"] == "INVITE" {
            invites += 1;
            assert_eq!(r["ue_profile"], "R6PLUS_RELAXED");
        } else {
            assert_eq!(r["ue_profile"], "", "{}", r["method"]);
        }
    }
    assert_eq!(invites, 1);
    let s = sessions(&[&sample("h01-r5-compliant")]);
    assert_eq!(s.rows[0]["ue_profile"], "R5_STRICT");
    assert!(!s.rows[0]["flags"].contains("R5_STRICT"));
}

/// Item 11: `links` holds every retry link as `call_id:rule:confidence` in
/// time order, the links without a failures.csv row (a 407 challenge)
/// included.
#[test]
fn r12_item11_links_column() {
    let s = sessions(&[&sample("auth-407")]);
    let at = s.header.iter().position(|h| h == "ue_profile").unwrap();
    assert_eq!(s.header.get(at + 1).map(String::as_str), Some("links"));
    assert_eq!(
        s.header.get(at + 2).map(String::as_str),
        Some("attention"),
        "attention follows links (contract.md, last section)"
    );
    let r = &s.rows[0];
    assert_eq!(r["failure_status"], "", "a 407 has no failures.csv row");
    assert_eq!(r["links"], "sa-auth-407-1@ue.sipaudit.test:H0:1");
    let s = sessions(&[&sample("retry-new-callid-h2")]);
    assert_eq!(
        s.rows[0]["links"],
        "sa-retry-new-callid-h2-2@ue.sipaudit.test:H2:0.8"
    );
    let s = sessions(&[&sample("h02-retry-loop")]);
    assert_eq!(
        s.rows[0]["links"],
        "sa-h02-retry-loop-1@ue.sipaudit.test:H0:1;sa-h02-retry-loop-1@ue.sipaudit.test:H0:1"
    );
    // An in-dialog retry (a re-INVITE after a 420) is a link too.
    let s = sessions(&[&sample("h18-reinvite-420")]);
    assert_eq!(
        s.rows[0]["links"],
        "sa-h18-reinvite-420-1@ue.sipaudit.test:H0:1"
    );
    // A session without retry has none.
    let s = sessions(&[&sample("ipv6-call")]);
    assert_eq!(s.rows[0]["links"], "");
}

/// Item 12: a Request-URI whose host is an IP address (an INVITE to a UE's
/// contact, a keep-alive to a node) is UNKNOWN under the built-in policy,
/// never NON_IMS by the empty `non_ims_domains`.
#[test]
fn r12_item12_ip_request_uri_is_unknown() {
    let s = sessions(&[&sample("tcp-tn")]);
    assert_eq!(s.rows.len(), 3);
    for r in &s.rows {
        assert_eq!(r["request_uri"], "sip:bob@10.99.0.2:5060;transport=tcp");
        assert_eq!(r["destination_class"], "UNKNOWN");
    }
    let Some(capture) = public("nokia-pcaptoparquet/51_esp_sip.pcapng.gz") else {
        return;
    };
    let s = sessions(&[&capture]);
    for r in &s.rows {
        assert_eq!(r["request_uri"], "sip:313340000002274@10.55.252.83:6100");
        assert_eq!(r["destination_class"], "UNKNOWN");
    }
}

/// Issue 13: `attention` ranks sessions by the §D.3 verdict, then the §E.4
/// policy verdict; 0 for a session with nothing to look at.
#[test]
fn r13_attention_column() {
    let rank = |case: &str| {
        let s = sessions(&[&sample(case)]);
        s.rows
            .iter()
            .map(|r| r["attention"].parse::<u32>().unwrap())
            .max()
            .unwrap()
    };
    // A successful call and a compliant relaxation need no look.
    assert_eq!(rank("ipv6-call"), 0);
    assert_eq!(rank("h01-r5-compliant"), 0);
    // RETRY_LOOP outranks NO_RETRY, which outranks RETRY_NEW_CALL_ID.
    let (lp, nr, nc) = (
        rank("h02-retry-loop"),
        rank("h05-no-retry"),
        rank("retry-new-callid-h2"),
    );
    assert!(lp > nr && nr > nc && nc > 0, "{lp} {nr} {nc}");
}
