//! Capability failures, relaxation verdicts and home-network policy
//! (rules.md §B–§F), evaluated on finished sessions. So far: the
//! destination class of rules.md §E.2 under the built-in default policy.

pub mod classify;
pub mod policy;
pub mod session;
pub mod verdict;
#[cfg(test)]
mod verdict_tests;

use crate::dialog::ident;

/// rules.md §E.2 under the built-in default policy (`ims_domains =
/// ["*.3gppnetwork.org"]`, `non_ims_domains = []`, `tel_uri_class =
/// "unknown"`): the host of the Request-URI (for a `tel:` Request-URI, of
/// the To URI when that is a SIP URI) under `3gppnetwork.org` is `IMS`, any
/// other SIP host `NON_IMS`; a URI without a usable host is `UNKNOWN`.
/// (Steps 3–4, inference from signalling, come with the rules issue.)
pub fn destination_class(request_uri: &str, to_uri: &str) -> &'static str {
    let host = sip_host(request_uri).or_else(|| {
        if request_uri
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("tel:")
        {
            sip_host(to_uri)
        } else {
            None
        }
    });
    match host {
        Some(h) if h == "3gppnetwork.org" || h.ends_with(".3gppnetwork.org") => "IMS",
        Some(_) => "NON_IMS",
        None => "UNKNOWN",
    }
}

/// The lowercased host of a `sip:`/`sips:` URI.
fn sip_host(uri: &str) -> Option<String> {
    let u = uri.trim().trim_start_matches('<');
    let lower = u.to_ascii_lowercase();
    if !(lower.starts_with("sip:") || lower.starts_with("sips:")) {
        return None;
    }
    let key = ident::uri_key(u);
    let host = key.rsplit_once('@').map(|(_, h)| h).unwrap_or(&key);
    let host = host
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or(host);
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_destination_classes() {
        assert_eq!(
            destination_class(
                "sip:+4930123@ims.mnc001.mcc262.3gppnetwork.org;user=phone",
                ""
            ),
            "IMS"
        );
        assert_eq!(destination_class("sip:bob@voip.example.net", ""), "NON_IMS");
        assert_eq!(
            destination_class("sips:bob@Example.COM:5061", ""),
            "NON_IMS"
        );
        assert_eq!(destination_class("tel:+4930123", "tel:+4930123"), "UNKNOWN");
        assert_eq!(
            destination_class("tel:+4930123", "sip:x@ims.3gppnetwork.org"),
            "IMS"
        );
        assert_eq!(destination_class("urn:service:sos", ""), "UNKNOWN");
    }
}
