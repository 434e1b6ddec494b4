//! A first-in, first-out ring of `(key, value)` entries that a key finds:
//! what the tracker keeps of ended calls for W0 (their tombstones). The
//! retransmission window, which looks a key up for every message, has a
//! table of its own whose slots can be prefetched (`dialog::seen`).
//!
//! Owns the ring and its index. Never decides when an entry is old: its
//! users pop the front when their window says so.
//!
//! Why not a map beside an expiry queue: that holds each key twice (the
//! map's slot and the queue's entry) and the map's slot is 16 bytes or
//! more. Here each entry is held once, in the ring, and the index is a
//! hashbrown `HashTable` of 4-byte places (plus its control byte), hashed
//! by the key itself: the keys are hashes already.

use std::collections::VecDeque;

/// See the module documentation.
#[derive(Debug)]
pub struct KeyRing<V> {
    /// Entries, oldest first.
    ring: VecDeque<(u64, V)>,
    /// Entries popped from the front so far: `ring[i]` is at place
    /// `dropped + i`.
    dropped: u64,
    /// The place of each key's latest entry, as its low 32 bits (a ring
    /// never holds 2^32 entries).
    latest: hashbrown::HashTable<u32>,
}

impl<V> Default for KeyRing<V> {
    fn default() -> Self {
        KeyRing {
            ring: VecDeque::new(),
            dropped: 0,
            latest: hashbrown::HashTable::new(),
        }
    }
}

impl<V> KeyRing<V> {
    /// Appends an entry, which `key` finds from now on; returns whether
    /// `key` found an entry before.
    pub fn push(&mut self, key: u64, value: V) -> bool {
        let place = self.end() as u32;
        let (ring, dropped) = (&self.ring, self.dropped as u32);
        let key_at = |p: &u32| ring[p.wrapping_sub(dropped) as usize].0;
        let found = match self.latest.find_mut(key, |p| key_at(p) == key) {
            Some(p) => {
                *p = place;
                true
            }
            None => {
                self.latest.insert_unique(key, place, key_at);
                false
            }
        };
        // Grown by a quarter, not doubled: a window's ring can be one of
        // the largest buffers of a run (the retransmission window's held
        // 600,000 entries at 2,000 calls/s when it was one), and doubling
        // would leave up to half of it unused.
        if self.ring.len() == self.ring.capacity() {
            self.ring.reserve_exact((self.ring.len() / 4).max(64));
        }
        self.ring.push_back((key, value));
        found
    }

    /// The value of `key`'s latest entry.
    pub fn get(&self, key: u64) -> Option<&V> {
        let p = self.latest.find(key, |p| self.at(*p).0 == key)?;
        Some(&self.at(*p).1)
    }

    /// The oldest entry.
    pub fn front(&self) -> Option<&(u64, V)> {
        self.ring.front()
    }

    /// Removes the oldest entry; its key finds nothing any more, unless it
    /// was pushed again since.
    pub fn pop_front(&mut self) -> Option<(u64, V)> {
        let (key, value) = self.ring.pop_front()?;
        let place = self.dropped as u32;
        if let Ok(e) = self.latest.find_entry(key, |&p| p == place) {
            e.remove();
        }
        self.dropped += 1;
        Some((key, value))
    }

    /// The place of the oldest entry (entries ever popped).
    pub fn start(&self) -> u64 {
        self.dropped
    }

    /// The place the next entry gets (entries ever pushed).
    pub fn end(&self) -> u64 {
        self.dropped + self.ring.len() as u64
    }

    /// Keys that find an entry.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    /// Whether no key finds an entry.
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    fn at(&self, place: u32) -> &(u64, V) {
        &self.ring[place.wrapping_sub(self.dropped as u32) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_finds_its_latest_entry_until_that_one_is_popped() {
        let mut r = KeyRing::default();
        assert!(!r.push(7, "a"));
        assert!(!r.push(9, "b"));
        assert!(r.push(7, "c"));
        assert_eq!((r.get(7), r.get(9), r.len()), (Some(&"c"), Some(&"b"), 2));
        assert_eq!(r.pop_front(), Some((7, "a")));
        assert_eq!(r.get(7), Some(&"c"), "pushed again since");
        assert_eq!(r.pop_front(), Some((9, "b")));
        assert_eq!((r.get(9), r.len(), r.end()), (None, 1, 3));
        assert_eq!(r.pop_front(), Some((7, "c")));
        assert!(r.is_empty() && r.get(7).is_none() && r.pop_front().is_none());
    }
}
