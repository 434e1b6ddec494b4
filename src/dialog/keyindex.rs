//! A map from 64-bit message keys (hashes already) to small values, whose
//! place for a key is known before the lookup ([`KeyIndex`]), so that the
//! tracker can prefetch it a few messages ahead ([`KeyIndex::prefetch`]):
//! the tracker's transaction index, which every response and every request
//! looks up.
//!
//! Owns the table, its growth and the removal of entries. Never computes a
//! key and never decides when an entry goes.
//!
//! Why not a hash map: hashbrown computes a key's place inside the lookup
//! and gives no address to prefetch, and at 2,000 calls/s the index holds
//! tens of thousands of keys, far more than the caches, so each lookup
//! missed on its control bytes (the hottest lines of `Tracker::request`
//! and `Tracker::unindex`). Here a key's first slot is `key & mask`, open
//! addressing with linear probing over slots of the key and its value,
//! at most half full; a removal shifts the entries after it back
//! (no tombstones), so a lookup's probe stays short. Key 0 marks an empty
//! slot, so a key 0 is stored as `ZERO` (one more way for two hashes to
//! collide, at 2^-64; a collision makes two keys one, never a crash).

/// The smallest table (slots).
const MIN_SLOTS: usize = 64;

/// What a key of 0 is stored as.
const ZERO: u64 = 0x9e37_79b9_7f4a_7c15;

fn norm(key: u64) -> u64 {
    if key == 0 { ZERO } else { key }
}

/// See the module documentation.
#[derive(Debug)]
pub struct KeyIndex<V> {
    /// A power of two of slots; key 0: empty.
    slots: Vec<(u64, V)>,
    /// Slots in use.
    len: usize,
}

impl<V: Copy + Default> Default for KeyIndex<V> {
    fn default() -> Self {
        KeyIndex {
            slots: vec![(0, V::default()); MIN_SLOTS],
            len: 0,
        }
    }
}

impl<V: Copy + Default> KeyIndex<V> {
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// Where a lookup of `key` starts.
    fn home(&self, key: u64) -> usize {
        key as usize & self.mask()
    }

    /// The slot holding `key` (already normalised), if any.
    fn find(&self, key: u64) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(key);
        loop {
            match self.slots[i].0 {
                0 => return None,
                k if k == key => return Some(i),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &u64) -> Option<&V> {
        self.find(norm(*key)).map(|i| &self.slots[i].1)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &u64) -> Option<&mut V> {
        self.find(norm(*key)).map(|i| &mut self.slots[i].1)
    }

    /// Whether `key` is held.
    pub fn contains_key(&self, key: &u64) -> bool {
        self.find(norm(*key)).is_some()
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets the value of `key`, returning the one it replaces.
    pub fn insert(&mut self, key: u64, value: V) -> Option<V> {
        let key = norm(key);
        if let Some(i) = self.find(key) {
            return Some(std::mem::replace(&mut self.slots[i].1, value));
        }
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.put(key, value);
        self.len += 1;
        None
    }

    /// Removes `key`, shifting back the entries after it whose probe
    /// passed its slot.
    pub fn remove(&mut self, key: &u64) -> Option<V> {
        let mut hole = self.find(norm(*key))?;
        let value = self.slots[hole].1;
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let k = self.slots[j].0;
            if k == 0 {
                break;
            }
            // The entry at j may fill the hole when its home is not
            // cyclically in (hole, j].
            let home = self.home(k);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = (0, V::default());
        self.len -= 1;
        Some(value)
    }

    /// Hints that `key` is looked up soon: the line of its first slot and
    /// the next one.
    pub fn prefetch(&self, key: u64) {
        let i = self.home(norm(key));
        crate::prefetch::value(&self.slots[i]);
        if let Some(next) = self.slots.get(i + 2) {
            crate::prefetch::value(next);
        }
    }

    /// Puts a key known to be absent in its first empty slot.
    fn put(&mut self, key: u64, value: V) {
        let mask = self.mask();
        let mut i = self.home(key);
        while self.slots[i].0 != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (key, value);
    }

    /// Doubles the table.
    fn grow(&mut self) {
        let len = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, vec![(0, V::default()); len]);
        for (k, v) in old {
            if k != 0 {
                self.put(k, v);
            }
        }
    }
}

impl<V: Copy + Default> std::ops::Index<&u64> for KeyIndex<V> {
    type Output = V;

    /// The value of `key`; panics when there is none, as a map's index
    /// does.
    fn index(&self, key: &u64) -> &V {
        self.get(key).expect("no entry for key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Keys whose low bits collide in runs, so that probes are long and
    /// removals shift entries back across the table's end.
    fn key(k: u64) -> u64 {
        (k.wrapping_mul(0x2545_f491_4f6c_dd1d) & !0x3f) | (k & 1)
    }

    #[test]
    fn answers_as_a_map_through_growth_and_removals() {
        let mut index = KeyIndex::<u32>::default();
        let mut model: HashMap<u64, u32> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = key(x % 3_000);
            match x % 5 {
                0 | 1 => assert_eq!(index.insert(k, round), model.insert(k, round)),
                2 | 3 => assert_eq!(index.remove(&k), model.remove(&k)),
                _ => {
                    assert_eq!(index.get(&k), model.get(&k));
                    assert_eq!(index.contains_key(&k), model.contains_key(&k));
                }
            }
            assert_eq!(index.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(index.get(k), Some(v));
        }
        // At most half full.
        assert!(index.len() * 2 <= index.slots.len());
    }

    #[test]
    fn key_zero_is_a_key() {
        let mut index = KeyIndex::<u8>::default();
        assert_eq!(index.get(&0), None);
        index.insert(0, 7);
        assert_eq!(index.get(&0), Some(&7));
        *index.get_mut(&0).expect("held") = 8;
        assert_eq!(index.remove(&0), Some(8));
        assert!(index.is_empty());
    }

    #[test]
    fn a_removal_at_the_end_of_the_table_keeps_the_wrapped_probe() {
        // Three keys homed at the last slot: two of them wrap to the start.
        let mut index = KeyIndex::<u8>::default();
        let last = (MIN_SLOTS - 1) as u64;
        let (a, b, c) = (last, last + 1024, last + 2048);
        index.insert(a, 1);
        index.insert(b, 2);
        index.insert(c, 3);
        // A key homed at slot 0, displaced by the wrapped ones.
        index.insert(4096, 4);
        assert_eq!(index.remove(&a), Some(1));
        assert_eq!(
            (index.get(&b), index.get(&c), index.get(&4096)),
            (Some(&2), Some(&3), Some(&4))
        );
        assert_eq!(index.remove(&b), Some(2));
        assert_eq!((index.get(&c), index.get(&4096)), (Some(&3), Some(&4)));
    }
}
