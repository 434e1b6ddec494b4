//! Transactions, dialogs and sessions (rules.md §A), rebuilt from SIP
//! messages taken in capture-time order across the whole batch.
//!
//! In: one [`TxnKey`] per SIP message, in merged capture-time order (stable
//! on file, then frame). Out, so far: whether each message is a
//! retransmission or a capture duplicate of an earlier one (rules.md §A.2),
//! the `retransmission` column of messages.csv. Dialogs and sessions are the
//! rest of the sessions issue.
//!
//! What it never does: parse SIP (it gets keys built by the pipeline from
//! [`crate::sip::Message`]s) or hold state for longer than a transaction can
//! live: keys are forgotten [`RETRANSMISSION_WINDOW_NS`] after they were last
//! seen, so memory follows the traffic of the last 32 s, not the input size.

pub(crate) mod codec;
pub(crate) mod few;
pub mod ident;
pub mod idslab;
pub mod keyindex;
pub mod keyring;
pub mod linkkeys;
pub mod partition;
pub mod record;
pub mod seen;
pub mod tracker;
#[cfg(test)]
mod tracker_tests;
pub mod windows;

pub use partition::{partition_key, partition_of};
pub use record::{Capture, Method, SipRecord, Tags};
pub use tracker::{Mark, Outcome, Rule, SessionSummary, TrackAnomaly, Tracker};

use std::hash::{Hash, Hasher};

use crate::sip::{HeaderId, Message, StartLine};

/// How long a transaction key is remembered after it was last seen:
/// 64*T1 = 32 s, the lifetime of a transaction (Timer B/F, RFC 3261 §17).
pub const RETRANSMISSION_WINDOW_NS: i64 = 32_000_000_000;

/// The seed of the tracker's index keys (transactions, attempts, dialogs):
/// the record hashes its hop transaction key with it too, so that key is
/// the one the tracker computed itself before.
pub(crate) const TRACKER_KEY_SEED: u64 = 0x7472_6163_6b65_7221;

/// The hasher of every 64-bit identity the dialog stage derives from message
/// text (retransmission keys, index keys, fingerprints): foldhash's
/// quality variant with a fixed seed, so equal input gives equal keys in
/// every run and thread, and fast on the hot path (SipHash-2-4 was 9 % of
/// the profile). `seed` separates the uses. Not collision-resistant against
/// crafted input; a collision makes two keys one, never a crash.
pub(crate) fn stable_hasher(seed: u64) -> impl std::hash::Hasher {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(seed).build_hasher()
}

/// What makes two copies of a message "the same message" (rules.md §A.2):
/// the transaction key (top Via branch + CSeq method), the start line, the
/// CSeq, the body, and for responses the To tag and RSeq; the Call-ID and
/// From tag too, so that
/// branches reused across calls by broken UAs do not collide. Without a Via
/// branch (RFC 2543 peers, malformed messages) only a byte-identical copy
/// matches. Stored as a 64-bit hash: the window holds few enough keys that
/// a collision is negligible, and nothing is allocated per message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxnKey(u64);

impl TxnKey {
    /// The key as stored in a records file (`records`).
    pub fn raw(self) -> u64 {
        self.0
    }

    /// The key stored as [`TxnKey::raw`].
    pub fn from_raw(v: u64) -> TxnKey {
        TxnKey(v)
    }

    /// The key of a parsed message.
    pub fn of(msg: &Message<'_>) -> TxnKey {
        TxnKey::of_parts(
            msg,
            &KeyParts {
                from_tag: msg.from_tag(),
                to_tag: msg.to_tag(),
                top_branch: msg.top_via_branch(),
            },
        )
    }

    /// [`TxnKey::of`] with the parts the caller has already read from the
    /// message (the record builder reads them anyway).
    pub(crate) fn of_parts(msg: &Message<'_>, p: &KeyParts<'_>) -> TxnKey {
        let mut h = stable_hasher(0x7369_7061_7564_6974);
        match msg.start() {
            StartLine::Request { method, uri } => {
                0u8.hash(&mut h);
                method.hash(&mut h);
                uri.hash(&mut h);
            }
            StartLine::Response { code, .. } => {
                1u8.hash(&mut h);
                code.hash(&mut h);
                // Lowercased on the stack: hashes as the `Option<Vec<u8>>`
                // it was (one allocation per response before).
                let mut low = [0u8; 64];
                match p.to_tag {
                    Some(t) if t.len() <= low.len() => {
                        let low = &mut low[..t.len()];
                        low.copy_from_slice(t);
                        low.make_ascii_lowercase();
                        Some(&*low).hash(&mut h);
                    }
                    t => t.map(|t| t.to_ascii_lowercase()).hash(&mut h),
                }
                msg.header(HeaderId::RSeq).hash(&mut h);
            }
        }
        msg.call_id().hash(&mut h);
        p.from_tag.hash(&mut h);
        msg.cseq().hash(&mut h);
        // A second 183 of the same early dialog that now carries SDP is a new
        // message, not a copy: the body must match too.
        msg.body().hash(&mut h);
        match p.top_branch {
            Some(b) => b.hash(&mut h),
            None => msg.as_bytes().hash(&mut h),
        }
        TxnKey(h.finish())
    }
}

/// What [`TxnKey::of_parts`] reads besides the message's start line, Call-ID,
/// CSeq, RSeq and body.
pub(crate) struct KeyParts<'a> {
    /// The From tag.
    pub from_tag: Option<&'a [u8]>,
    /// The To tag.
    pub to_tag: Option<&'a [u8]>,
    /// The top Via branch.
    pub top_branch: Option<&'a [u8]>,
}

/// Recognises retransmissions and capture duplicates in a time-ordered
/// stream of messages: each key seen within the window once, with its last
/// sighting, in a [`seen::Seen`] table whose slot for a key the caller can
/// prefetch a few messages ahead.
pub struct Retransmissions {
    seen: seen::Seen,
}

impl Default for Retransmissions {
    fn default() -> Self {
        Retransmissions {
            seen: seen::Seen::new(RETRANSMISSION_WINDOW_NS),
        }
    }
}

impl Retransmissions {
    /// Whether the message with this key, captured at `ts_ns`, repeats one
    /// seen within the window, on the clock of the latest capture time
    /// observed (a message later than the merge's reorder window allows
    /// counts at that time; [`seen::Seen`]).
    pub fn observe(&mut self, key: TxnKey, ts_ns: i64) -> bool {
        self.seen.observe(key.0, ts_ns)
    }

    /// Prefetches where [`Retransmissions::observe`] looks `key` up.
    pub fn prefetch(&self, key: TxnKey) {
        self.seen.prefetch(key.0);
    }

    /// Keys currently remembered (a pass over the table).
    pub fn len(&self) -> usize {
        self.seen.live()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{Framing, parse_message};

    fn key(raw: &str) -> TxnKey {
        TxnKey::of(&parse_message(raw.as_bytes(), Framing::Datagram).unwrap())
    }

    const INVITE: &str = "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=f\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn request_retransmission_is_recognised_and_a_new_transaction_is_not() {
        let mut r = Retransmissions::default();
        assert!(!r.observe(key(INVITE), 0));
        assert!(
            r.observe(key(INVITE), 500_000_000),
            "Timer A retransmission"
        );
        // The retry: same Call-ID and From tag, CSeq + 1, new branch.
        let retry = INVITE
            .replace("z9hG4bK1", "z9hG4bK2")
            .replace("1 INVITE", "2 INVITE");
        assert!(!r.observe(key(&retry), 600_000_000));
        // The same request forwarded by a proxy: another top Via branch.
        let hop = INVITE.replace("Via: SIP", "Via: SIP/2.0/UDP p;branch=z9hG4bKp\r\nVia: SIP");
        assert!(!r.observe(key(&hop), 700_000_000));
    }

    #[test]
    fn responses_differ_by_status_and_to_tag() {
        let resp = |code: &str, tag: &str| {
            format!(
                "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=f\r\n\
To: <sip:b@x>;tag={tag}\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let mut r = Retransmissions::default();
        assert!(!r.observe(key(&resp("180", "t1")), 0));
        assert!(!r.observe(key(&resp("180", "t2")), 1), "a second fork");
        assert!(!r.observe(key(&resp("420", "t1")), 2));
        assert!(r.observe(key(&resp("420", "t1")), 500_000_000), "Timer G");
    }

    #[test]
    fn keys_are_forgotten_after_the_window() {
        let mut r = Retransmissions::default();
        assert!(!r.observe(key(INVITE), 0));
        assert!(r.observe(key(INVITE), RETRANSMISSION_WINDOW_NS));
        // 32 s after the last sighting: a new message, not a retransmission.
        assert!(!r.observe(key(INVITE), 2 * RETRANSMISSION_WINDOW_NS + 1));
        let other = INVITE.replace("Call-ID: c", "Call-ID: d");
        r.observe(key(&other), 4 * RETRANSMISSION_WINDOW_NS);
        assert_eq!(r.len(), 1, "only the recent key is held");
    }

    #[test]
    fn without_a_branch_only_identical_bytes_match() {
        let no_branch = INVITE.replace(";branch=z9hG4bK1", "");
        let mut r = Retransmissions::default();
        assert!(!r.observe(key(&no_branch), 0));
        assert!(r.observe(key(&no_branch), 1));
        let changed = no_branch.replace("Content-Length: 0", "Content-Length:  0");
        assert!(!r.observe(key(&changed), 2));
    }

    #[test]
    fn the_window_answers_as_a_map_of_last_sightings_would() {
        // Few keys, many sightings at pseudo-random gaps around the window:
        // a repeat is a key last seen at most 32 s before, whatever was
        // forgotten in between.
        let mut r = Retransmissions::default();
        let mut last: std::collections::HashMap<u64, i64> = Default::default();
        let (mut x, mut t) = (0x9e37_79b9_7f4a_7c15u64, 0i64);
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += (x % 4_000_000_000) as i64;
            let k = x % 37;
            let want = last
                .insert(k, t)
                .is_some_and(|s| t - s <= RETRANSMISSION_WINDOW_NS);
            assert_eq!(
                r.observe(TxnKey(k.wrapping_mul(0x2545_f491_4f6c_dd1d)), t),
                want
            );
        }
        let live = last
            .values()
            .filter(|&&s| t - s <= RETRANSMISSION_WINDOW_NS)
            .count();
        assert_eq!(r.len(), live, "forgotten exactly when out of the window");
    }
}
