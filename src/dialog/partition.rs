//! The partition key: the one function that decides which messages must be
//! tracked together, so that session tracking can run as independent
//! partitions (on the cores of one machine, or on the executors of a
//! cluster, issue "beyond one machine") and give the same sessions.
//!
//! Owns: [`partition_key`] and [`partition_of`], and the identity of a URI
//! that the key is built from (`identity_of_key`, which an initial
//! request's link keys compute from the same cut of its From and To URIs,
//! `linkkeys.rs`, and hand back through `key_of_initial`). Never tracks,
//! links or decides anything; it only names the partition of a message.
//!
//! Why every retry link stays inside one partition (rules.md §A.3): H0 and
//! H0' need the same From and To URI, H1 and H2 the same From and To URI,
//! H3 the same identities after E.164 normalisation. In each case both ends
//! have the same [`ident::index_key`] for From and for To, so the key is
//! built from those two index keys. Every message of a dialog carries the
//! same From and To URIs (RFC 3261 §12.2.1.1), swapped when the callee
//! sends: the key takes the pair unordered, so a BYE or re-INVITE from the
//! callee lands with the call. What can cross partitions: AS-leg and
//! B2BUA legs (tied by Session-ID, icid-value or X-CID while their To or
//! From changes) and batch-wide flags; those are correlated over finished
//! sessions.

use std::hash::Hasher;

use super::ident;
use crate::sip::Message;

/// The partition key of a message: a hash of the unordered pair of the
/// E.164-aware identities ([`ident::index_key`]) of its From and To URIs.
/// A message without a readable From or To URI is keyed by its Call-ID
/// alone, so the messages of one broken call stay together. Deterministic:
/// the same message gives the same key in every run, thread and machine.
pub fn partition_key(msg: &Message<'_>) -> u64 {
    match (
        msg.from_uri().and_then(identity),
        msg.to_uri().and_then(identity),
    ) {
        (Some(from), Some(to)) => of_identities(from, to),
        _ => {
            let mut h = super::stable_hasher(0x7061_7263);
            h.write(msg.call_id().unwrap_or(b""));
            h.finish()
        }
    }
}

/// The key of a message whose From and To identities ([`identity_hash`])
/// are `a` and `b`, taken as an unordered pair.
fn of_identities(a: u64, b: u64) -> u64 {
    let mut h = super::stable_hasher(0x7061_7274);
    h.write_u64(a.min(b));
    h.write_u64(a.max(b));
    h.finish()
}

/// [`partition_key`] of an initial request whose From and To URIs are both
/// readable, from their identities as the caller computed them with the
/// rest of the request's link keys ([`identity_of_key`]): the same value,
/// without cutting the two URIs once more. Each identity is remembered, so
/// that the call's later messages find it in this thread's memo.
pub(super) fn key_of_initial(from: (&str, u64), to: (&str, u64)) -> u64 {
    for (uri, value) in [from, to] {
        if uri.len() <= MEMO_KEY {
            MEMO.with(|m| {
                if let Ok(mut m) = m.try_borrow_mut() {
                    m.put(uri, value);
                }
            });
        }
    }
    of_identities(from.1, to.1)
}

/// [`partition_key`] without this thread's memo: every identity computed
/// afresh (what the initial-request path is checked against).
#[cfg(test)]
pub(super) fn partition_key_afresh(msg: &Message<'_>) -> u64 {
    match (text(msg.from_uri()), text(msg.to_uri())) {
        (Some(from), Some(to)) => of_identities(identity_hash(from), identity_hash(to)),
        _ => partition_key(msg),
    }
}

#[cfg(test)]
fn text(b: Option<&[u8]>) -> Option<&str> {
    b.and_then(|b| std::str::from_utf8(b).ok())
}

/// Which of `n` partitions (n >= 1) a key belongs to.
pub fn partition_of(key: u64, n: usize) -> usize {
    // The high bits through a multiply: uniform for any n, no modulo bias
    // worth naming for n far below 2^32.
    ((u128::from(key) * n.max(1) as u128) >> 64) as usize
}

/// [`identity_hash`]`(uri)`, `None` when `uri` is not UTF-8, through a
/// memo of this thread's recent URIs: a call's From and To come back in
/// each of its messages (about ten), and the hash costs about a thousand
/// instructions (callgrind: a sixth of building a record). Exact: a slot
/// answers only for the same bytes, so the values are [`identity_hash`]'s
/// whatever was seen before; the memo keeps only UTF-8 URIs, so a hit needs
/// no UTF-8 check.
fn identity(uri: &[u8]) -> Option<u64> {
    if uri.len() > MEMO_KEY {
        return std::str::from_utf8(uri).ok().map(identity_hash);
    }
    MEMO.with(|m| match m.try_borrow_mut() {
        Ok(mut m) => m.get(uri),
        Err(_) => std::str::from_utf8(uri).ok().map(identity_hash),
    })
}

/// Slots of the memo (direct-mapped; 128 bytes each, 256 KiB a thread).
const MEMO_SLOTS: usize = 2048;
const _: () = assert!(MEMO_SLOTS.is_power_of_two() && std::mem::size_of::<Slot>() == 128);

/// Longest URI the memo keeps.
const MEMO_KEY: usize = 118;

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = const { std::cell::RefCell::new(Memo { slots: Vec::new() }) };
}

/// One remembered URI: its bytes and its identity hash. `len` is
/// [`Slot::EMPTY`] until the slot is first written.
#[derive(Clone, Copy)]
struct Slot {
    value: u64,
    len: u8,
    key: [u8; MEMO_KEY],
}

impl Slot {
    const EMPTY: u8 = u8::MAX;

    /// Keeps `value` as the identity of the URI `b` (at most [`MEMO_KEY`]
    /// bytes).
    fn fill(&mut self, b: &[u8], value: u64) {
        self.value = value;
        self.len = b.len() as u8;
        self.key[..b.len()].copy_from_slice(b);
    }
}

struct Memo {
    slots: Vec<Slot>,
}

impl Memo {
    fn get(&mut self, b: &[u8]) -> Option<u64> {
        let slot = self.slot(b);
        if usize::from(slot.len) == b.len() && slot.key[..b.len()] == *b {
            return Some(slot.value);
        }
        let value = identity_hash(std::str::from_utf8(b).ok()?);
        slot.fill(b, value);
        Some(value)
    }

    /// Remembers that `uri` (at most [`MEMO_KEY`] bytes) has the identity
    /// `value`.
    fn put(&mut self, uri: &str, value: u64) {
        self.slot(uri.as_bytes()).fill(uri.as_bytes(), value);
    }

    /// The one slot the URI `b` can be kept in.
    fn slot(&mut self, b: &[u8]) -> &mut Slot {
        if self.slots.is_empty() {
            self.slots = vec![
                Slot {
                    value: 0,
                    len: Slot::EMPTY,
                    key: [0; MEMO_KEY],
                };
                MEMO_SLOTS
            ];
        }
        let mut h = rustc_hash::FxHasher::default();
        h.write(b);
        // The top bits of a multiplicative mix: one of MEMO_SLOTS.
        let bits = MEMO_SLOTS.trailing_zeros();
        let i = (h.finish().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize;
        &mut self.slots[i]
    }
}

/// A hash of [`ident::index_key`]`(uri)`: two URIs have equal hashes
/// exactly when their index keys are equal (up to hash collisions).
fn identity_hash(uri: &str) -> u64 {
    thread_local! {
        static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    KEY.with(|k| {
        let mut fresh = String::new();
        let mut k = k.try_borrow_mut();
        let key = k.as_deref_mut().unwrap_or(&mut fresh);
        let at = ident::uri_key_split_into(uri, key);
        identity_of_key(key, at, ident::phone_last6(uri))
    })
}

/// [`identity_hash`] of a URI from what the caller read of it: `key` its
/// [`ident::uri_key`], `at` where that key's user part ends
/// ([`ident::uri_key_split_into`]), `phone` its [`ident::phone_last6`].
///
/// Records files keep the key, so the hasher is fed exactly what the first
/// form fed it (pinned by `the_key_values_are_stable`, and tested against
/// that form): a phone number as `#` and its last 6 digits; a `user@host`
/// key as 1, the user part's length and bytes, then the host's bytes one by
/// one; any other key as 2 and its bytes one by one.
pub(super) fn identity_of_key(key: &str, at: Option<usize>, phone: Option<[u8; 6]>) -> u64 {
    let mut h = super::stable_hasher(0x6964_656e);
    let key = key.as_bytes();
    match (phone, at) {
        (Some(d), _) => {
            h.write_u8(b'#');
            h.write(&d);
        }
        (None, Some(n)) => {
            h.write_u8(1);
            h.write_usize(n);
            h.write(&key[..n]);
            for &c in &key[n + 1..] {
                h.write_u8(c);
            }
        }
        (None, None) => {
            h.write_u8(2);
            for &c in key {
                h.write_u8(c);
            }
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URIS: &[&str] = &[
        "sip:bob@Example.COM:5060;transport=udp",
        "sip:bob@example.com",
        "sips:bob@example.com",
        "<sip:bob@example.com>",
        "sip:Bob@example.com",
        "sip:bob:secret@example.com",
        "sip:example.com",
        "sip:EXAMPLE.com;lr",
        "tel:+49-170-1234567",
        "sip:01701234567@x;user=phone",
        "sip:+491701234567@a",
        "tel:+491701234567",
        "tel:+491701234568",
        "tel:12345",
        "sip:00012345@x",
        "sip:a@b?subject=x",
        "urn:service:sos",
        "URN:service:SOS",
        "sip:alice@a",
        "",
    ];

    /// [`identity_hash`] as it was first written, cutting the URI with
    /// `str` splits: the reference the key-based form is checked against.
    fn identity_hash_by_splits(uri: &str) -> u64 {
        let mut h = crate::dialog::stable_hasher(0x6964_656e);
        if let Some(d) = ident::phone_last6(uri) {
            h.write_u8(b'#');
            h.write(&d);
            return h.finish();
        }
        let uri = uri.trim().trim_start_matches('<').trim_end_matches('>');
        let rest = match uri.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("sips:") => &uri[5..],
            _ => match uri.get(..4) {
                Some(p) if p.eq_ignore_ascii_case("sip:") || p.eq_ignore_ascii_case("tel:") => {
                    &uri[4..]
                }
                _ => uri,
            },
        };
        let rest = rest.split('?').next().unwrap_or(rest);
        match rest.rsplit_once('@') {
            Some((user, hostpart)) => {
                let user = user.split(':').next().unwrap_or(user);
                h.write_u8(1);
                h.write_usize(user.len());
                h.write(user.as_bytes());
                for c in hostpart
                    .split([';', ':'])
                    .next()
                    .unwrap_or(hostpart)
                    .bytes()
                {
                    h.write_u8(c.to_ascii_lowercase());
                }
            }
            None => {
                h.write_u8(2);
                for c in rest.split(';').next().unwrap_or(rest).bytes() {
                    h.write_u8(c.to_ascii_lowercase());
                }
            }
        }
        h.finish()
    }

    proptest::proptest! {
        #[test]
        fn identity_hash_is_the_split_form(
            uri in "[ <]{0,2}(sip|SIPS|sIp|tel|Tel|urn|)[:]?[a-zA-Z0-9+;:@.?()é<> -]{0,28}[>]?"
        ) {
            proptest::prop_assert_eq!(identity_hash(&uri), identity_hash_by_splits(&uri));
        }
    }

    #[test]
    fn identity_hash_keeps_the_split_form_on_the_examples() {
        for u in URIS {
            assert_eq!(identity_hash(u), identity_hash_by_splits(u), "{u:?}");
        }
    }

    #[test]
    fn the_memo_gives_the_hash_of_each_uri() {
        // Twice over every URI (the second time from the memo), with
        // URIs that share a slot evicting each other, and one too long to
        // be kept.
        let long = format!("sip:{}@example.com", "1".repeat(MEMO_KEY));
        let mut all: Vec<String> = URIS.iter().map(|u| u.to_string()).collect();
        all.extend((0..3 * MEMO_SLOTS).map(|i| format!("sip:+49170{i:07}@ims.example")));
        all.push(long);
        for _ in 0..2 {
            for u in &all {
                assert_eq!(identity(u.as_bytes()), Some(identity_hash(u)), "{u:?}");
            }
        }
        // Bytes that are not UTF-8 have no identity, whether or not their
        // slot holds a URI.
        for bad in [&b"sip:\xff@a"[..], b"sip:+49170\xc3@ims.example"] {
            assert_eq!(identity(bad), None);
            assert_eq!(identity(bad), None);
        }
    }

    #[test]
    fn identity_hash_has_the_classes_of_index_key() {
        for a in URIS {
            for b in URIS {
                assert_eq!(
                    ident::index_key(a) == ident::index_key(b),
                    identity_hash(a) == identity_hash(b),
                    "{a:?} vs {b:?}: {:?} / {:?}",
                    ident::index_key(a),
                    ident::index_key(b)
                );
            }
        }
    }

    fn msg(text: &str) -> Vec<u8> {
        text.replace('\n', "\r\n").into_bytes()
    }

    fn key_of(bytes: &[u8]) -> u64 {
        let m = crate::sip::parse_message(bytes, crate::sip::Framing::Datagram).expect("parses");
        partition_key(&m)
    }

    #[test]
    fn the_key_is_direction_free_and_follows_e164() {
        let invite = msg(
            "INVITE sip:bob@voip.example.net SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nFrom: <sip:+491701234567@ims.example;user=phone>;tag=1\nTo: <sip:bob@voip.example.net>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
        );
        let bye = msg(
            "BYE sip:ue@a SIP/2.0\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\nFrom: <sip:bob@voip.example.net>;tag=9\nTo: <sip:+491701234567@ims.example;user=phone>;tag=1\nCall-ID: c1\nCSeq: 1 BYE\nContent-Length: 0\n\n",
        );
        let h3 = msg(
            "INVITE sip:bob@voip.example.net SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK3\nFrom: <tel:01701234567>;tag=2\nTo: <sip:bob@VOIP.example.net:5060>\nCall-ID: c2\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
        );
        let other = msg(
            "INVITE sip:bob@voip.example.net SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK4\nFrom: <sip:+491701234599@ims.example;user=phone>;tag=3\nTo: <sip:bob@voip.example.net>\nCall-ID: c3\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
        );
        assert_eq!(key_of(&invite), key_of(&bye), "callee's BYE");
        assert_eq!(key_of(&invite), key_of(&h3), "E.164 forms (H3)");
        assert_ne!(key_of(&invite), key_of(&other));
    }

    /// Records files keep the key: its values must not change with the
    /// code that computes them (these are the values of 4b245d4).
    #[test]
    fn the_key_values_are_stable() {
        let sip = msg(
            "INVITE sip:bob@Voip.Example.net SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nFrom: <sip:alice@IMS.example;user=phone>;tag=1\nTo: <sip:bob@VOIP.example.net:5060>\nCall-ID: c1\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
        );
        let e164 = msg(
            "INVITE tel:+491701234567 SIP/2.0\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\nFrom: <tel:+491701234567>;tag=1\nTo: <urn:service:sos>\nCall-ID: c2\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
        );
        assert_eq!(
            (key_of(&sip), key_of(&e164)),
            (5_959_510_437_940_367_637, 5_150_392_748_982_547_981),
            "partition_key values changed"
        );
    }

    #[test]
    fn partitions_cover_the_range() {
        assert_eq!(partition_of(0, 4), 0);
        assert_eq!(partition_of(u64::MAX, 4), 3);
        assert_eq!(partition_of(u64::MAX, 1), 0);
        assert_eq!(partition_of(7, 0), 0);
        let mut seen = [0u32; 8];
        for i in 0..8000u64 {
            let mut h = crate::dialog::stable_hasher(1);
            h.write_u64(i);
            seen[partition_of(h.finish(), 8)] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }
}
