//! The partition key: the one function that decides which messages must be
//! tracked together, so that session tracking can run as independent
//! partitions (on the cores of one machine, or on the executors of a
//! cluster, issue "beyond one machine") and give the same sessions.
//!
//! Owns: [`partition_key`] and [`partition_of`]. Never tracks, links or
//! decides anything; it only names the partition of a message.
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
    match (text(msg.from_uri()), text(msg.to_uri())) {
        (Some(from), Some(to)) => {
            let (a, b) = (identity(from), identity(to));
            let mut h = super::stable_hasher(0x7061_7274);
            h.write_u64(a.min(b));
            h.write_u64(a.max(b));
            h.finish()
        }
        _ => {
            let mut h = super::stable_hasher(0x7061_7263);
            h.write(msg.call_id().unwrap_or(b""));
            h.finish()
        }
    }
}

fn text(b: Option<&[u8]>) -> Option<&str> {
    b.and_then(|b| std::str::from_utf8(b).ok())
}

/// Which of `n` partitions (n >= 1) a key belongs to.
pub fn partition_of(key: u64, n: usize) -> usize {
    // The high bits through a multiply: uniform for any n, no modulo bias
    // worth naming for n far below 2^32.
    ((u128::from(key) * n.max(1) as u128) >> 64) as usize
}

/// [`identity_hash`]`(uri)`, through a memo of this thread's recent URIs:
/// a call's From and To come back in each of its messages (about ten), and
/// the hash costs about a thousand instructions (callgrind: a sixth of
/// building a record). Exact: a slot answers only for the same bytes, so
/// the values are [`identity_hash`]'s whatever was seen before.
fn identity(uri: &str) -> u64 {
    if uri.len() > MEMO_KEY {
        return identity_hash(uri);
    }
    MEMO.with(|m| match m.try_borrow_mut() {
        Ok(mut m) => m.get(uri),
        Err(_) => identity_hash(uri),
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
}

struct Memo {
    slots: Vec<Slot>,
}

impl Memo {
    fn get(&mut self, uri: &str) -> u64 {
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
        let b = uri.as_bytes();
        let mut h = rustc_hash::FxHasher::default();
        h.write(b);
        // The top bits of a multiplicative mix: one of MEMO_SLOTS.
        let bits = MEMO_SLOTS.trailing_zeros();
        let i = (h.finish().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize;
        let slot = &mut self.slots[i];
        if usize::from(slot.len) == b.len() && slot.key[..b.len()] == *b {
            return slot.value;
        }
        let value = identity_hash(uri);
        slot.value = value;
        slot.len = b.len() as u8;
        slot.key[..b.len()].copy_from_slice(b);
        value
    }
}

/// A hash of [`ident::index_key`]`(uri)` computed without building the
/// String: two URIs have equal hashes exactly when their index keys are
/// equal (up to hash collisions).
fn identity_hash(uri: &str) -> u64 {
    let mut h = super::stable_hasher(0x6964_656e);
    match ident::phone_last6(uri) {
        Some(d) => {
            h.write_u8(b'#');
            h.write(&d);
        }
        None => feed_uri_key(uri, &mut h),
    }
    h.finish()
}

/// Feeds [`ident::uri_key`]`(uri)` into `h`, in pieces: the user part as
/// written, then the host lowercased (or the lowercased rest of a URI
/// without `@`). Not [`ident::uri_key_into`] into a buffer: that would feed
/// the hasher other calls, and records files keep this key's values (pinned
/// by `the_key_values_are_stable`).
fn feed_uri_key(uri: &str, h: &mut impl Hasher) {
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
    let lower = |s: &str, h: &mut dyn Hasher| {
        for c in s.bytes() {
            h.write_u8(c.to_ascii_lowercase());
        }
    };
    match rest.rsplit_once('@') {
        Some((user, hostpart)) => {
            let user = user.split(':').next().unwrap_or(user);
            h.write_u8(1);
            h.write_usize(user.len());
            h.write(user.as_bytes());
            lower(hostpart.split([';', ':']).next().unwrap_or(hostpart), h);
        }
        None => {
            h.write_u8(2);
            lower(rest.split(';').next().unwrap_or(rest), h);
        }
    }
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
                assert_eq!(identity(u), identity_hash(u), "{u:?}");
            }
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
