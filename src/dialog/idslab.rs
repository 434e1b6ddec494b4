//! A map from the tracker's ids to its attempts and slots, kept as a slab
//! indexed by id ([`IdSlab`]): the tracker numbers what it creates in steps
//! (its slots 2, 4, 6…, its attempts 1, 3, 5…)
//! and mostly finishes it in about that order, so the live ids fill a
//! window that moves forwards, and an id's entry is found by subtraction,
//! not by hashing.
//!
//! Why: the tracker's timers and its finishing look an id up for every
//! message, and at 2,000 calls/s the tables hold tens of thousands of
//! entries, far more than the caches. A hash map pays a miss on its
//! control bytes and another on the bucket before the value; here the
//! entry's address is known from the id alone, so a caller can prefetch
//! the entry it reads next ([`IdSlab::prefetch`]).
//!
//! Owns the window and the ids that fell out of it. Never assigns ids, and
//! never decides when an entry goes: its user inserts and removes.
//!
//! Ids below the window (a call that lasts while thousands start after
//! it, or a cold session put back) live in a hash map beside it: once the
//! window is longer than `SPARSE` times its live entries plus `SLACK`,
//! its oldest entries move to that map (`IdSlab::trim`). So the window
//! holds at most four holes per live entry (plus 4,096): bounded by the
//! live entries, though a hole costs as much as an entry (120 bytes for a
//! slot, 8 for a boxed attempt), and like a map the window keeps its
//! largest capacity. An id of another kind (not `step` apart from the
//! others) is never found, as in a map.

use std::collections::VecDeque;
use std::ops::Index;

use rustc_hash::FxHashMap;

/// The window is trimmed once it is longer than this many times the live
/// entries in it (plus [`SLACK`]).
const SPARSE: usize = 4;
/// Holes always allowed in the window, whatever the live entries.
const SLACK: usize = 4096;

/// See the module documentation.
#[derive(Debug)]
pub struct IdSlab<T> {
    /// The ids held differ by multiples of `1 << shift` (the step).
    shift: u32,
    /// The id of `window[0]`.
    base: u64,
    /// Entries of ids `base`, `base + step`, … (`window.len()` of them);
    /// `None` is a hole.
    window: VecDeque<Option<T>>,
    /// Entries in `window` that are not holes.
    in_window: usize,
    /// Entries whose id is below `base`.
    below: FxHashMap<u64, T>,
}

impl<T> Default for IdSlab<T> {
    fn default() -> Self {
        IdSlab::with_step(1)
    }
}

impl<T> IdSlab<T> {
    /// An empty slab for ids that differ by multiples of `step`, a power
    /// of two (a kind of id numbered `step` apart: no hole for the ids of
    /// other kinds).
    pub fn with_step(step: u64) -> Self {
        assert!(step.is_power_of_two(), "a slab's step is a power of two");
        IdSlab {
            shift: step.trailing_zeros(),
            base: 0,
            window: VecDeque::new(),
            in_window: 0,
            below: FxHashMap::default(),
        }
    }

    /// Where `id` is in the window (`None`: below it, or not of this
    /// slab's kind, which then goes to `below` and is found there only).
    fn place(&self, id: u64) -> Option<usize> {
        let d = id.checked_sub(self.base)?;
        if d & ((1 << self.shift) - 1) != 0 {
            return None;
        }
        Some(usize::try_from(d >> self.shift).unwrap_or(usize::MAX))
    }

    /// The entry of `id`.
    pub fn get(&self, id: &u64) -> Option<&T> {
        match self.place(*id) {
            Some(i) => self.window.get(i)?.as_ref(),
            None => self.below.get(id),
        }
    }

    /// The entry of `id`, to change.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut T> {
        match self.place(*id) {
            Some(i) => self.window.get_mut(i)?.as_mut(),
            None => self.below.get_mut(id),
        }
    }

    /// Sets the entry of `id`, returning the one it replaces.
    pub fn insert(&mut self, id: u64, value: T) -> Option<T> {
        if self.window.is_empty() && id >= self.base {
            // Nothing in the window: it starts at this id.
            self.base = id;
        }
        let Some(mut i) = self.place(id) else {
            return self.below.insert(id, value);
        };
        if i >= self.window.len() && i > SPARSE * (self.in_window + 1) + SLACK {
            // Far past the window (ids handed out but never inserted here):
            // what it holds goes below, and the window starts at this id,
            // instead of growing by the gap.
            let (base, step) = (self.base, 1u64 << self.shift);
            for (k, e) in (0u64..).zip(self.window.drain(..)) {
                if let Some(v) = e {
                    self.below.insert(base + k * step, v);
                }
            }
            self.in_window = 0;
            self.base = id;
            i = 0;
        }
        if i >= self.window.len() {
            self.window.resize_with(i + 1, || None);
        }
        let old = self.window[i].replace(value);
        if old.is_none() {
            self.in_window += 1;
        }
        self.trim();
        old
    }

    /// Removes the entry of `id`.
    pub fn remove(&mut self, id: &u64) -> Option<T> {
        let Some(i) = self.place(*id) else {
            return self.below.remove(id);
        };
        let old = self.window.get_mut(i)?.take();
        if old.is_some() {
            self.in_window -= 1;
            self.trim();
        }
        old
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.in_window + self.below.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry with its id, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        let window = (self.base..)
            .step_by(1 << self.shift)
            .zip(&self.window)
            .filter_map(|(id, e)| Some((id, e.as_ref()?)));
        window.chain(self.below.iter().map(|(&id, v)| (id, v)))
    }

    /// Hints that the entry of `id` is read soon: its place in the window
    /// (for a boxed value, the pointer only); nothing for an id below it.
    pub fn prefetch(&self, id: u64) {
        if let Some(e) = self.place(id).and_then(|i| self.window.get(i)) {
            crate::prefetch::value(e);
        }
    }

    /// Drops the holes at the window's front, and moves its oldest entries
    /// below it while it is mostly holes. Each id leaves the front once, so
    /// this is O(1) amortised per insertion and removal.
    fn trim(&mut self) {
        while self.window.len() > SPARSE * self.in_window + SLACK
            || self.window.front().is_some_and(Option::is_none)
        {
            let Some(front) = self.window.pop_front() else {
                break;
            };
            if let Some(v) = front {
                self.in_window -= 1;
                self.below.insert(self.base, v);
            }
            self.base += 1 << self.shift;
        }
    }
}

impl<T> Index<&u64> for IdSlab<T> {
    type Output = T;

    /// The entry of `id`; panics when there is none, as a map's index does.
    fn index(&self, id: &u64) -> &T {
        self.get(id).expect("no entry for id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Drives the slab and a BTreeMap with the same operations.
    fn check(ops: &[(bool, u64)]) {
        let mut slab = IdSlab::default();
        let mut model = BTreeMap::new();
        for &(insert, id) in ops {
            if insert {
                assert_eq!(slab.insert(id, id * 10), model.insert(id, id * 10));
            } else {
                assert_eq!(slab.remove(&id), model.remove(&id));
            }
            assert_eq!(slab.len(), model.len());
        }
        for id in 0..ops.iter().map(|o| o.1).max().unwrap_or(0) + 2 {
            assert_eq!(slab.get(&id), model.get(&id), "id {id}");
        }
        let mut all: Vec<(u64, &u64)> = slab.iter().collect();
        all.sort_unstable();
        assert!(all.iter().copied().eq(model.iter().map(|(&k, v)| (k, v))));
    }

    #[test]
    fn agrees_with_a_map_in_order_out_of_order_and_below_the_window() {
        // In order, removed in order: the window moves forwards.
        let mut ops: Vec<(bool, u64)> = (1..100).map(|i| (true, i)).collect();
        ops.extend((1..50).map(|i| (false, i)));
        // Put back below the window (a cold session thawed), then removed.
        ops.extend([(true, 3), (true, 7), (false, 3), (true, 200), (false, 7)]);
        check(&ops);
    }

    #[test]
    fn a_long_lived_entry_does_not_hold_the_window_open() {
        let mut slab = IdSlab::default();
        slab.insert(1, ());
        for id in 2..100_000 {
            slab.insert(id, ());
            slab.remove(&id);
        }
        assert_eq!(slab.len(), 1);
        assert!(slab.get(&1).is_some());
        // The window holds at most SPARSE times its live entries plus SLACK.
        assert!(slab.window.len() <= SPARSE + SLACK, "{}", slab.window.len());
        assert_eq!(slab.remove(&1), Some(()));
        assert!(slab.is_empty());
    }

    #[test]
    fn ids_in_steps_leave_no_holes_for_the_other_kind() {
        let mut slab = IdSlab::with_step(2);
        for id in (1..2_000).step_by(2) {
            slab.insert(id, id);
        }
        assert_eq!(slab.window.len(), 1_000);
        for id in (1..1_000).step_by(2) {
            assert_eq!(slab.remove(&id), Some(id));
        }
        assert_eq!(slab.window.len(), 500);
        assert_eq!(slab.get(&1_001), Some(&1_001));
        // An id of the other kind is not its neighbour's.
        assert_eq!(slab.get(&1_002), None);
        assert_eq!(slab.remove(&1_002), None);
        slab.insert(1_004, 4);
        assert_eq!(
            (slab.get(&1_003), slab.get(&1_004)),
            (Some(&1_003), Some(&4))
        );
        assert_eq!(slab.remove(&1_004), Some(4));
        slab.insert(3, 3); // below the window
        let mut all: Vec<u64> = slab.iter().map(|(id, _)| id).collect();
        all.sort_unstable();
        assert_eq!(all.len(), 501);
        assert_eq!((all[0], all[1], all[500]), (3, 1_001, 1_999));
    }

    #[test]
    fn a_gap_in_the_ids_starts_a_new_window() {
        let mut slab = IdSlab::default();
        slab.insert(1, 1);
        slab.insert(2, 2);
        slab.insert(10_000_000, 3);
        assert!(slab.window.len() <= 2, "{}", slab.window.len());
        assert_eq!(
            (slab.get(&1), slab.get(&2), slab.get(&10_000_000)),
            (Some(&1), Some(&2), Some(&3))
        );
        assert_eq!(slab.len(), 3);
        check(&[
            (true, 5),
            (true, 9_000_000),
            (true, 6),
            (false, 5),
            (false, 9_000_000),
        ]);
    }

    #[test]
    fn random_operations_agree_with_a_map() {
        // A fixed pseudo-random walk: mostly new ids, removals of any live one.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = 1;
        let mut live: Vec<u64> = Vec::new();
        let mut ops = Vec::new();
        for _ in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 != 0 || live.is_empty() {
                ops.push((true, next));
                live.push(next);
                next += 1 + x % 3;
            } else {
                let i = (x as usize / 3) % live.len();
                ops.push((false, live.swap_remove(i)));
            }
        }
        check(&ops);
    }
}
