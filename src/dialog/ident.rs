//! Identity normalisation for retry linking (rules.md §A.3): URI keys for
//! "same From/To URI", the Request-URI user part, and E.164 comparison of
//! phone numbers for H3.

/// A URI without its scheme's `sip:`/`sips:` distinction, parameters,
/// headers and port, host lowercased: `user@host` (or the number of a
/// `tel:` URI). Two URIs that differ only in those parts are "the same URI"
/// for linking.
pub fn uri_key(uri: &str) -> String {
    let mut out = String::new();
    uri_key_into(uri, &mut out);
    out
}

/// [`uri_key`]`(uri)` written into `out` (cleared first), so that a caller
/// that only hashes the key reuses one buffer instead of allocating (an
/// initial request's Request-URI key, `linkkeys`).
pub fn uri_key_into(uri: &str, out: &mut String) {
    uri_key_split_into(uri, out);
}

/// [`uri_key_into`], telling where the key's user part ends: `Some(n)` for
/// a `user@host` key whose user part is `out[..n]` (the `@` is at `n`; the
/// user part may hold an `@` of its own), `None` for a key without one. A
/// caller that hashes the user part and the host apart (the partition key's
/// identity) reads them off the one key instead of cutting the URI again.
pub fn uri_key_split_into(uri: &str, out: &mut String) -> Option<usize> {
    out.clear();
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let scheme = |p: &[u8]| {
        uri.as_bytes()
            .get(..p.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(p))
    };
    // The prefixes are ASCII, so the index after one is a char boundary;
    // so is every position memchr finds below (`?`, `@`, `:`, `;` are
    // ASCII). One pass of memchr per cut, where `str::split` with char
    // patterns cost about 1,600 instructions a key (callgrind); tested
    // against the `format!` form.
    let rest = if scheme(b"sips:") {
        &uri[5..]
    } else if scheme(b"sip:") || scheme(b"tel:") {
        &uri[4..]
    } else {
        uri
    };
    let rest = before_any(rest, b'?', b'?');
    let at = match memchr::memrchr(b'@', rest.as_bytes()) {
        Some(at) => {
            let (user, hostpart) = (&rest[..at], &rest[at + 1..]);
            out.push_str(before_any(user, b':', b':')); // user:password
            let n = out.len();
            out.push('@');
            out.push_str(before_any(hostpart, b';', b':'));
            Some(n)
        }
        None => {
            out.push_str(before_any(rest, b';', b';'));
            None
        }
    };
    let lower_from = at.map_or(0, |n| n + 1);
    out[lower_from..].make_ascii_lowercase();
    at
}

/// The user part of a URI (`bob` of `sip:bob@x`, the number of
/// `tel:+49...`), empty when it has none.
pub fn user_part(uri: &str) -> &str {
    // Every message's partition key reads the user parts of From and To
    // (`partition::partition_key`), so this is one pass of memchr over
    // bytes: `:`, `;` and `@` are ASCII, so each position found is a char
    // boundary. Tested against the split-based form it replaced.
    let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
    let Some(i) = memchr::memchr(b':', uri.as_bytes()) else {
        return "";
    };
    let (scheme, rest) = (&uri[..i], &uri[i + 1..]);
    if scheme.eq_ignore_ascii_case("tel") {
        return before_any(rest, b';', b';');
    }
    if !(scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")) {
        return "";
    }
    match memchr::memrchr(b'@', rest.as_bytes()) {
        // `user:password` and `user;params`: up to the first of either.
        Some(at) => before_any(&rest[..at], b':', b';'),
        None => "",
    }
}

/// `s` up to the first `a` or `b` (ASCII), or all of it.
fn before_any(s: &str, a: u8, b: u8) -> &str {
    match memchr::memchr2(a, b, s.as_bytes()) {
        Some(j) => &s[..j],
        None => s,
    }
}

/// The digits of a phone number in `uri` (a `tel:` URI, or a SIP user part
/// made of digits, an optional leading `+` and visual separators `-.()` ),
/// with leading zeros (trunk or international prefix) removed; `None` when
/// the user part is not a number of at least 6 digits.
pub fn phone_digits(uri: &str) -> Option<String> {
    let user = user_part(uri);
    let user = user.strip_prefix('+').unwrap_or(user);
    let mut digits = String::with_capacity(user.len());
    for c in user.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return None,
        }
    }
    let d = digits.trim_start_matches('0');
    (d.len() >= 6).then(|| d.to_string())
}

/// Whether two numbers (from [`phone_digits`]) name the same subscriber:
/// one is a suffix of the other, so `+49 1701234567` (international form)
/// and `01701234567` (national form) match — a comparison of the national
/// significant number that needs no country-code table.
pub fn same_number(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 6 && long.ends_with(short)
}

/// The index key under which candidates for H0–H3 are looked up: a phone
/// number's last 6 digits, else the [`uri_key`]. Two URIs that can match
/// under any rule have the same key.
pub fn index_key(uri: &str) -> String {
    let mut out = String::new();
    index_key_into(uri, &mut out);
    out
}

/// [`index_key`]`(uri)` written into `out` (cleared first), allocating
/// nothing once `out` has grown to the longest key.
pub fn index_key_into(uri: &str, out: &mut String) {
    match phone_last6(uri) {
        Some(d) => {
            out.clear();
            out.push_str(number_key(&d).as_str());
        }
        None => uri_key_into(uri, out),
    }
}

/// The [`index_key`] of a phone number whose last 6 digits are `d`
/// ([`phone_last6`]): `#` and the digits, on the stack.
pub fn number_key(d: &[u8; 6]) -> NumberKey {
    let mut k = [b'#'; 7];
    k[1..].copy_from_slice(d);
    NumberKey(k)
}

/// What [`number_key`] gives: `#` and 6 ASCII digits.
pub struct NumberKey([u8; 7]);

impl NumberKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        // `#` and digits are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The last 6 digits of [`phone_digits`]`(uri)`, when it has them, without
/// building the String: every message's partition key and every initial
/// request's link keys read it.
pub fn phone_last6(uri: &str) -> Option<[u8; 6]> {
    let user = user_part(uri);
    let user = user.strip_prefix('+').unwrap_or(user);
    let mut ring = [0u8; 6];
    let (mut n, mut significant) = (0usize, false);
    for c in user.bytes() {
        match c {
            b'0'..=b'9' => {
                // Leading zeros are not part of the number.
                significant |= c != b'0';
                if significant {
                    ring[n % 6] = c;
                    n += 1;
                }
            }
            b'-' | b'.' | b'(' | b')' | b' ' => {}
            _ => return None,
        }
    }
    (n >= 6).then(|| std::array::from_fn(|i| ring[(n + i) % 6]))
}

/// Whether two URIs are the same identity after E.164 normalisation (H3).
pub fn same_identity(a: &str, b: &str) -> bool {
    match (phone_digits(a), phone_digits(b)) {
        (Some(x), Some(y)) => same_number(&x, &y),
        _ => uri_key(a) == uri_key(b),
    }
}

#[cfg(test)]
mod tests {

    /// [`user_part`] as it was written with `str` splits: the reference
    /// the memchr form is checked against.
    fn user_part_by_splits(uri: &str) -> &str {
        let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
        let rest = match uri.find(':') {
            Some(i)
                if uri[..i].eq_ignore_ascii_case("sip")
                    || uri[..i].eq_ignore_ascii_case("sips") =>
            {
                &uri[i + 1..]
            }
            Some(i) if uri[..i].eq_ignore_ascii_case("tel") => {
                let r = &uri[i + 1..];
                return r.split(';').next().unwrap_or(r);
            }
            _ => return "",
        };
        match rest.rsplit_once('@') {
            Some((user, _)) => {
                let user = user.split(':').next().unwrap_or(user);
                user.split(';').next().unwrap_or(user)
            }
            None => "",
        }
    }

    proptest::proptest! {
        #[test]
        fn user_part_is_the_split_form(
            uri in "[ <]{0,2}(sip|SIPS|tel|Tel|urn|)[:]?[a-z0-9+;:@.é<> -]{0,24}[>]?"
        ) {
            proptest::prop_assert_eq!(user_part(&uri), user_part_by_splits(&uri));
        }
    }

    /// [`uri_key`] as it was written with `format!`: the reference the
    /// buffer form is checked against.
    fn uri_key_by_format(uri: &str) -> String {
        let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
        let lower = uri.to_ascii_lowercase();
        let rest = if lower.starts_with("sips:") {
            &uri[5..]
        } else if lower.starts_with("sip:") || lower.starts_with("tel:") {
            &uri[4..]
        } else {
            uri
        };
        let rest = rest.split(['?']).next().unwrap_or(rest);
        match rest.rsplit_once('@') {
            Some((user, hostpart)) => {
                let user = user.split(':').next().unwrap_or(user);
                let host = hostpart.split([';', ':']).next().unwrap_or(hostpart);
                format!("{user}@{}", host.to_ascii_lowercase())
            }
            None => rest
                .split([';'])
                .next()
                .unwrap_or(rest)
                .to_ascii_lowercase(),
        }
    }

    proptest::proptest! {
        #[test]
        fn uri_key_is_the_format_form(
            uri in "[ <]{0,2}(sip|SIPS|sIp|tel|Tel|urn|)[:]?[a-zA-Z0-9+;:@.?é<> -]{0,24}[>]?"
        ) {
            proptest::prop_assert_eq!(uri_key(&uri), uri_key_by_format(&uri));
        }

        #[test]
        fn phone_last6_is_the_tail_of_phone_digits(
            uri in "(sip:|tel:|SIP:)[+]?[0-9() .a-]{0,16}(@x|;p=1|)"
        ) {
            let want = phone_digits(&uri).map(|d| d[d.len() - 6..].to_string());
            let got = phone_last6(&uri).map(|d| String::from_utf8(d.to_vec()).unwrap());
            proptest::prop_assert_eq!(got, want);
        }
    }

    use super::*;

    #[test]
    fn uri_keys_ignore_parameters_port_and_host_case() {
        assert_eq!(
            uri_key("sip:bob@Example.COM:5060;transport=udp"),
            "bob@example.com"
        );
        assert_eq!(uri_key("sips:bob@example.com"), "bob@example.com");
        assert_eq!(uri_key("tel:+4917012345;phone-context=x"), "+4917012345");
        assert_ne!(
            uri_key("sip:Bob@x"),
            uri_key("sip:bob@x"),
            "user part is case-sensitive"
        );
    }

    #[test]
    fn user_parts() {
        assert_eq!(
            user_part("sip:+491701234567@ims.example;user=phone"),
            "+491701234567"
        );
        assert_eq!(user_part("tel:+491701234567;npdi"), "+491701234567");
        assert_eq!(user_part("sip:example.com"), "");
        assert_eq!(user_part("urn:service:sos"), "");
    }

    #[test]
    fn e164_national_and_international_forms_match() {
        assert!(same_identity(
            "tel:+49-170-1234567",
            "sip:01701234567@x;user=phone"
        ));
        assert!(same_identity("sip:+491701234567@a", "tel:+491701234567"));
        assert!(!same_identity("tel:+491701234567", "tel:+491701234568"));
        assert!(!same_identity("sip:alice@a", "sip:bob@a"));
        assert_eq!(
            index_key("tel:+491701234567"),
            index_key("sip:01701234567@x")
        );
    }
}
