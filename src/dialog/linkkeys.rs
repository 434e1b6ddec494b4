//! The identities retry linking compares (rules.md §A.3), reduced once per
//! message to fixed-size hashes, so that a new initial request finds its
//! candidates by key and scores them without building a String.
//!
//! Owns: [`LinkKeys`] (initial requests: URI keys, E.164 buckets, the
//! Request-URI user, the capability demand, the credentials' realm, the
//! correlation values) and [`ReplyKeys`] (3xx Contact targets, 401/407
//! challenge realms). An initial request's partition key is read off the
//! same cuts of its From and To URIs ([`LinkKeys::of_initial`]; the key
//! itself is `partition.rs`'s). Never decides a link: the tracker does,
//! with these.

use std::hash::{Hash, Hasher};

use super::ident;
use crate::sip::{HeaderId, Message, StartLine};

/// What an initial request offers to retry linking. Each field is a hash;
/// 0 means "absent".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkKeys {
    /// [`ident::uri_key`] of the From URI ("same From URI", H0–H2).
    pub from: u64,
    /// [`ident::uri_key`] of the To URI.
    pub to: u64,
    /// [`ident::index_key`] of the From URI: the bucket of every URI that can
    /// be the same identity after E.164 normalisation (H3).
    pub from_id: u64,
    /// [`ident::index_key`] of the To URI.
    pub to_id: u64,
    /// The Request-URI's user part.
    pub ruri_user: u64,
    /// The last 6 digits of the Request-URI user as a phone number (0: not
    /// a number): a necessary condition of "the same number".
    pub ruri_num: u64,
    /// [`ident::uri_key`] of the Request-URI (matched against a 3xx Contact).
    pub target: u64,
    /// The capability demand: Require, Proxy-Require and Supported as sorted
    /// sets, and the SDP precondition demand. A retry after a capability
    /// failure changes it (issue "right in an expert's eyes", item 5).
    pub caps: u64,
    /// The realm of the credentials carried (Authorization or
    /// Proxy-Authorization); `NO_REALM` with credentials whose realm cannot
    /// be read; 0 without credentials.
    pub realm: u64,
    /// Session-ID, P-Charging-Vector icid-value, X-CID/X-Call-ID (AS-leg).
    pub corr: [u64; 3],
}

/// The keys of a message that is not an initial request: all absent
/// ([`LinkKeys::default`], as a constant to borrow).
pub static NO_LINK: LinkKeys = LinkKeys {
    from: 0,
    to: 0,
    from_id: 0,
    to_id: 0,
    ruri_user: 0,
    ruri_num: 0,
    target: 0,
    caps: 0,
    realm: 0,
    corr: [0; 3],
};

/// A realm hash standing for "credentials whose realm was not readable".
pub const NO_REALM: u64 = 1;

/// What a failure response offers to retry linking.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyKeys {
    /// [`ident::uri_key`] of every Contact of a 3xx.
    pub contacts: Box<[u64]>,
    /// The realms challenged by a 401/407 (WWW-/Proxy-Authenticate).
    pub realms: Box<[u64]>,
}

fn hash_of<T: Hash + ?Sized>(salt: u8, v: &T) -> u64 {
    let mut h = super::stable_hasher(0x6c69_6e6b_6b65_7973);
    (salt, v).hash(&mut h);
    h.finish().max(2)
}

fn readable(b: Option<&[u8]>) -> Option<&str> {
    b.and_then(|b| std::str::from_utf8(b).ok())
}

fn text(b: Option<&[u8]>) -> &str {
    b.and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
}

/// Buffers [`LinkKeys::of_request`] reuses on each thread: every key is
/// hashed, so its text never needs an allocation of its own.
#[derive(Default)]
struct Scratch {
    /// A URI key or index key being built.
    key: String,
    /// Lowercased option tags (or a Session-ID), back to back.
    bytes: Vec<u8>,
    /// Where each tag is in `bytes`.
    spans: Vec<(u32, u32)>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

impl Scratch {
    /// `hash_of(salt, f(uri))`, with the key built in the reused buffer.
    fn key(&mut self, salt: u8, uri: &str, f: fn(&str, &mut String)) -> u64 {
        f(uri, &mut self.key);
        hash_of(salt, self.key.as_str())
    }

    /// Feeds `h` what hashing the tags as a `Vec<Vec<u8>>`, lowercased,
    /// sorted and deduplicated, feeds it (its length, then each tag's
    /// length and bytes), so the value is the one records files hold.
    fn tag_set<'a>(&mut self, it: impl Iterator<Item = &'a [u8]>, h: &mut impl Hasher) {
        let (bytes, spans) = (&mut self.bytes, &mut self.spans);
        bytes.clear();
        spans.clear();
        for t in it {
            let a = bytes.len() as u32;
            bytes.extend(t.iter().map(u8::to_ascii_lowercase));
            spans.push((a, bytes.len() as u32));
        }
        let bytes = &*bytes;
        let tag = |&(a, b): &(u32, u32)| &bytes[a as usize..b as usize];
        spans.sort_unstable_by(|x, y| tag(x).cmp(tag(y)));
        spans.dedup_by(|x, y| tag(x) == tag(y));
        h.write_usize(spans.len());
        for s in spans.iter() {
            let t = tag(s);
            h.write_usize(t.len());
            h.write(t);
        }
    }

    /// The keys of one From or To URI, from one cut of it: its
    /// [`ident::uri_key`] hashed as `from`/`to`, its [`ident::index_key`]
    /// (the same key, or a phone number's last 6 digits) hashed as
    /// `from_id`/`to_id`, and the partition key's identity of it.
    fn identity(&mut self, uri: &str) -> UriKeys {
        let at = ident::uri_key_split_into(uri, &mut self.key);
        let phone = ident::phone_last6(uri);
        let key = hash_of(0, self.key.as_str());
        let id = match phone {
            Some(d) => hash_of(1, ident::number_key(&d).as_str()),
            None => hash_of(1, self.key.as_str()),
        };
        UriKeys {
            key,
            id,
            partition: super::partition::identity_of_key(&self.key, at, phone),
        }
    }

    /// `v` lowercased, in the reused buffer.
    fn lower(&mut self, v: &[u8]) -> &[u8] {
        self.bytes.clear();
        self.bytes.extend(v.iter().map(u8::to_ascii_lowercase));
        &self.bytes
    }
}

/// What [`Scratch::identity`] derives from one URI.
struct UriKeys {
    /// `hash_of(0, uri_key)`.
    key: u64,
    /// `hash_of(1, index_key)`.
    id: u64,
    /// The partition key's identity of the URI.
    partition: u64,
}

impl LinkKeys {
    /// The keys of an initial request `msg` whose SDP demand is `demand`.
    pub fn of_request(msg: &Message<'_>, demand: u8) -> LinkKeys {
        Self::of_initial(msg, demand).0
    }

    /// [`LinkKeys::of_request`], and the request's partition key
    /// ([`super::partition_key`]) read off the same cuts of its From and To
    /// URIs: an initial request needs both, and each URI was read up to
    /// five times for them (its URI key; its index key's user part and key;
    /// its identity's user part and key), where this reads
    /// it twice.
    pub fn of_initial(msg: &Message<'_>, demand: u8) -> (LinkKeys, u64) {
        SCRATCH.with(|sc| match sc.try_borrow_mut() {
            Ok(mut sc) => Self::of_request_with(msg, demand, &mut sc),
            Err(_) => Self::of_request_with(msg, demand, &mut Scratch::default()),
        })
    }

    fn of_request_with(msg: &Message<'_>, demand: u8, sc: &mut Scratch) -> (LinkKeys, u64) {
        let (from_uri, to_uri) = (readable(msg.from_uri()), readable(msg.to_uri()));
        let (from, to) = (
            sc.identity(from_uri.unwrap_or("")),
            sc.identity(to_uri.unwrap_or("")),
        );
        let partition = match (from_uri, to_uri) {
            (Some(f), Some(t)) => {
                super::partition::key_of_initial((f, from.partition), (t, to.partition))
            }
            // Keyed by its Call-ID: the partition key's own rule.
            _ => super::partition_key(msg),
        };
        (Self::rest_of(msg, demand, sc, &from, &to), partition)
    }

    /// The keys besides the From and To URIs' (`from`, `to`).
    fn rest_of(
        msg: &Message<'_>,
        demand: u8,
        sc: &mut Scratch,
        from: &UriKeys,
        to: &UriKeys,
    ) -> LinkKeys {
        let ruri = match msg.start() {
            StartLine::Request { uri, .. } => text(Some(uri)),
            StartLine::Response { .. } => "",
        };
        let caps = {
            let mut h = super::stable_hasher(0x6361_7073);
            sc.tag_set(msg.list(HeaderId::Require), &mut h);
            sc.tag_set(msg.list(HeaderId::ProxyRequire), &mut h);
            sc.tag_set(msg.list(HeaderId::Supported), &mut h);
            demand.hash(&mut h);
            h.finish()
        };
        let cred = msg
            .header(HeaderId::Authorization)
            .or_else(|| msg.header(HeaderId::ProxyAuthorization));
        let corr = |v: Option<&[u8]>, salt: u8| {
            v.filter(|v| !v.is_empty())
                .map(|v| hash_of(salt, v))
                .unwrap_or(0)
        };
        LinkKeys {
            from: from.key,
            to: to.key,
            from_id: from.id,
            to_id: to.id,
            ruri_user: hash_of(2, ident::user_part(ruri)),
            ruri_num: ident::phone_last6(ruri)
                .map(|d| hash_of(3, std::str::from_utf8(&d).unwrap_or_default()))
                .unwrap_or(0),
            target: sc.key(0, ruri, ident::uri_key_into),
            caps,
            realm: cred.map_or(0, |v| auth_realm(v).map_or(NO_REALM, |r| hash_of(4, r))),
            corr: [
                corr(session_id(msg).map(|v| sc.lower(v)), 5),
                corr(
                    msg.header(HeaderId::PChargingVector)
                        .and_then(super::record::icid_value),
                    6,
                ),
                corr(
                    msg.header(HeaderId::XCid)
                        .or_else(|| msg.header(HeaderId::XCallId)),
                    7,
                ),
            ],
        }
    }
}

impl ReplyKeys {
    /// The keys of a final response `msg` with status `code`: empty but for
    /// a 3xx or a 401/407.
    pub fn of_response(msg: &Message<'_>, code: u16) -> ReplyKeys {
        match code {
            300..=399 => ReplyKeys {
                contacts: msg
                    .list(HeaderId::Contact)
                    .map(|c| hash_of(0, &ident::uri_key(text(Some(crate::sip::name_addr(c).0)))))
                    .collect(),
                realms: Box::default(),
            },
            401 | 407 => ReplyKeys {
                contacts: Box::default(),
                realms: msg
                    .values(HeaderId::WwwAuthenticate)
                    .chain(msg.values(HeaderId::ProxyAuthenticate))
                    .filter_map(auth_realm)
                    .map(|r| hash_of(4, r))
                    .collect(),
            },
            _ => ReplyKeys::default(),
        }
    }
}

/// The `realm` parameter of a Digest challenge or credentials, unquoted.
pub fn auth_realm(v: &[u8]) -> Option<&[u8]> {
    let mut rest = v;
    while let Some(i) = memchr::memmem::find(&rest.to_ascii_lowercase(), b"realm") {
        let before_ok = i == 0 || matches!(rest[i - 1], b' ' | b',' | b'\t');
        let after = rest[i + 5..].trim_ascii_start();
        if before_ok && after.first() == Some(&b'=') {
            let val = after[1..].trim_ascii_start();
            return Some(match val.strip_prefix(b"\"") {
                Some(q) => &q[..memchr::memchr(b'"', q).unwrap_or(q.len())],
                None => {
                    let end = val
                        .iter()
                        .position(|&b| b == b',' || b.is_ascii_whitespace())
                        .unwrap_or(val.len());
                    &val[..end]
                }
            });
        }
        rest = &rest[i + 5..];
    }
    None
}

fn session_id<'a>(msg: &Message<'a>) -> Option<&'a [u8]> {
    msg.header(HeaderId::SessionId)
        .map(|v| v.split(|&b| b == b';').next().unwrap_or(v).trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`LinkKeys::of_request`] as it was written with a String per key:
    /// the values records files hold, which the buffer form must keep.
    fn of_request_by_strings(msg: &Message<'_>, demand: u8) -> LinkKeys {
        fn sorted_tags<'a>(it: impl Iterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
            let mut v: Vec<Vec<u8>> = it.map(|t| t.to_ascii_lowercase()).collect();
            v.sort_unstable();
            v.dedup();
            v
        }
        let (from, to) = (text(msg.from_uri()), text(msg.to_uri()));
        let ruri = match msg.start() {
            StartLine::Request { uri, .. } => text(Some(uri)),
            StartLine::Response { .. } => "",
        };
        let mut h = crate::dialog::stable_hasher(0x6361_7073);
        sorted_tags(msg.list(HeaderId::Require)).hash(&mut h);
        sorted_tags(msg.list(HeaderId::ProxyRequire)).hash(&mut h);
        sorted_tags(msg.list(HeaderId::Supported)).hash(&mut h);
        demand.hash(&mut h);
        let sid = session_id(msg).map(<[u8]>::to_ascii_lowercase);
        LinkKeys {
            from: hash_of(0, &ident::uri_key(from)),
            to: hash_of(0, &ident::uri_key(to)),
            from_id: hash_of(1, &ident::index_key(from)),
            to_id: hash_of(1, &ident::index_key(to)),
            ruri_user: hash_of(2, ident::user_part(ruri)),
            ruri_num: ident::phone_digits(ruri)
                .map(|d| hash_of(3, &d[d.len() - 6..]))
                .unwrap_or(0),
            target: hash_of(0, &ident::uri_key(ruri)),
            caps: h.finish(),
            realm: 0,
            corr: [
                sid.filter(|v| !v.is_empty())
                    .map_or(0, |v| hash_of(5, &v[..])),
                0,
                0,
            ],
        }
    }

    proptest::proptest! {
        /// An initial request's partition key, read off its link keys'
        /// cuts, is the partition key computed afresh, and what the memo
        /// then holds gives it too.
        #[test]
        fn an_initial_requests_partition_key_is_the_partition_key(
            from in "(sip:|sips:|tel:|SIP:|urn:|)[+]?[a-zA-Z0-9+;:@.()é?= -]{0,24}",
            to in "(sip:|sips:|tel:|Tel:|)[+0]?[a-zA-Z0-9+;:@.()?=-]{0,24}",
            bracket in proptest::bool::ANY,
        ) {
            let (l, r) = if bracket { ("<", ">") } else { ("", "") };
            let text = format!(
                "INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: {l}{from}{r};tag=1\r\nTo: {l}{to}{r}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            );
            let m = crate::sip::parse_message(text.as_bytes(), crate::sip::Framing::Datagram);
            proptest::prop_assert!(m.is_ok(), "{text:?} does not parse");
            let m = m.unwrap();
            let (keys, p) = LinkKeys::of_initial(&m, 0);
            // Against the identities computed afresh, not through the memo
            // that `of_initial` has just filled.
            proptest::prop_assert_eq!(p, crate::dialog::partition::partition_key_afresh(&m));
            proptest::prop_assert_eq!(keys, of_request_by_strings(&m, 0));
        }
    }

    #[test]
    fn an_unreadable_from_or_to_keys_the_initial_request_by_its_call_id() {
        let invite = |from: &[u8], to: &[u8], call_id: &str| {
            let mut t =
                b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <".to_vec();
            t.extend_from_slice(from);
            t.extend_from_slice(b">;tag=1\r\nTo: <");
            t.extend_from_slice(to);
            t.extend_from_slice(b">\r\nCall-ID: ");
            t.extend_from_slice(call_id.as_bytes());
            t.extend_from_slice(b"\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
            t
        };
        let bad: &[u8] = b"sip:\xff\xfe@b";
        for (from, to) in [(&b"sip:a@b"[..], bad), (bad, &b"sip:a@b"[..])] {
            let (c, d) = (invite(from, to, "c"), invite(from, to, "d"));
            let parse =
                |t| crate::sip::parse_message(t, crate::sip::Framing::Datagram).expect("parses");
            let (m, m2) = (parse(&c), parse(&d));
            let (_, p) = LinkKeys::of_initial(&m, 0);
            assert_eq!(p, crate::dialog::partition::partition_key_afresh(&m));
            assert_ne!(p, LinkKeys::of_initial(&m2, 0).1, "keyed by the Call-ID");
        }
    }

    #[test]
    fn the_buffer_form_keeps_the_string_form_values() {
        let invites = [
            "INVITE sip:+49-170-1234567@Ims.Example;user=phone SIP/2.0\r\nFrom: <sip:Alice@IMS.example:5060;transport=udp>;tag=1\r\nTo: <tel:01701234567>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nRequire: Precondition, 100rel\r\nSupported: timer, 100REL, timer, path\r\nProxy-Require: sec-agree\r\nSession-ID: AbCdEf0123;remote=x\r\nContent-Length: 0\r\n\r\n",
            "INVITE sips:bob@voip.example.net?x=1 SIP/2.0\r\nFrom: \"A\" <sips:+441234567890@h>;tag=2\r\nTo: sip:bob@VOIP.example.net\r\nCall-ID: d\r\nCSeq: 1 INVITE\r\nSupported:\r\nContent-Length: 0\r\n\r\n",
            "INVITE urn:service:sos SIP/2.0\r\nFrom: <tel:+1-(650)-555.0100;npdi>;tag=3\r\nTo: <urn:service:sos>\r\nCall-ID: e\r\nCSeq: 1 INVITE\r\nRequire: b, a, B\r\nContent-Length: 0\r\n\r\n",
        ];
        for text in invites {
            let m = crate::sip::parse_message(text.as_bytes(), crate::sip::Framing::Datagram)
                .expect("parses");
            for demand in [0, 3] {
                assert_eq!(
                    LinkKeys::of_request(&m, demand),
                    of_request_by_strings(&m, demand),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn realms_quoted_or_not() {
        assert_eq!(
            auth_realm(b"Digest username=\"a\", realm=\"ims.example\", nonce=\"x\""),
            Some(&b"ims.example"[..])
        );
        assert_eq!(
            auth_realm(b"Digest realm=x.org,nonce=1"),
            Some(&b"x.org"[..])
        );
        assert_eq!(auth_realm(b"Digest REALM = \"A\""), Some(&b"A"[..]));
        assert_eq!(auth_realm(b"Digest opaque=\"xrealm=no\""), None);
        assert_eq!(auth_realm(b"Digest nonce=1"), None);
    }
}
