//! Maps keyed by the tracker's ids, hashed so that neighbouring ids land in
//! neighbouring buckets: the cold store's index (`cold.rs`).
//!
//! Ids are handed out in capture order, sessions go cold roughly in that
//! order, and at the end of a capture every cold session is read back in
//! start order. With a mixing hash each of those lookups lands anywhere in
//! the table, one cache miss each (on the scanner burst's end, removing
//! 180,000 sessions from the two maps was a third of reading them back);
//! with [`IdHasher`] the bucket is the id's low bits, so lookups close in
//! time share cache lines. The hash's top seven bits, which the table keeps
//! as each bucket's tag to skip other keys without reading them, are still
//! mixed. scan10k-20s `-j2`: x0.960 wall, CPU x0.965 (9 pairs).
//!
//! Tried and not kept for the tracker's own maps by id (slots, attempts,
//! ended attempts): CPU x0.99 on udp2000-60s, but 4 MiB more at the peak.
//! Removing ids in order from runs of full buckets leaves tombstones, and a
//! table full of them grows at half load instead of seven eighths.
//!
//! Owns only the hash of an id; it never decides what is kept.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A hash map from an id.
pub(super) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// The table's tag bits: the top seven of the hash.
const TAG: u64 = 0x7f << 57;

/// Hashes one `u64`: its low 57 bits as they are, the top 7 mixed from the
/// whole id (a multiplication by an odd constant, whose top bits depend on
/// every bit of the id).
#[derive(Default, Clone, Copy)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mixed = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (self.0 & !TAG) | (mixed & TAG)
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; anything else still hashes.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Consecutive ids hash to consecutive buckets and spread over the
    /// tags; a map keyed by them answers as any map does through inserts
    /// and removals of a sliding window of ids.
    #[test]
    fn neighbouring_ids_hash_to_neighbouring_buckets() {
        let b = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1_000u64..1_256).map(|i| b.hash_one(i)).collect();
        for w in hashes.windows(2) {
            assert_eq!((w[1] & !TAG) - (w[0] & !TAG), 1);
        }
        let tags: std::collections::BTreeSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(tags.len() > 100, "tags: {}", tags.len());
        let mut m: IdMap<u64> = IdMap::default();
        let mut want = std::collections::BTreeMap::new();
        for i in 0..200_000u64 {
            let id = i * 3 + (i % 7);
            m.insert(id, i);
            want.insert(id, i);
            if i >= 5_000 {
                let old = (i - 5_000) * 3 + ((i - 5_000) % 7);
                assert_eq!(m.remove(&old), want.remove(&old));
            }
        }
        assert_eq!(m.len(), want.len());
        for (k, v) in &want {
            assert_eq!(m.get(k), Some(v));
        }
        assert_eq!(m.get(&1), None);
    }
}
