//! The tracker's timer queue: pending timers handed back least first, in
//! exactly the order a binary heap of the same keys gives them.
//!
//! Owns: the order of pending timers. Never decides what a timer does, and
//! never looks inside a key beyond comparing it.
//!
//! Why not a heap alone: nearly every timer is armed at a fixed offset from
//! the capture time of the message that arms it (W0 after a session starts,
//! the skew allowance after an initial request, the grace after a BYE's
//! answer), and messages come in capture-time order, so the timers of one
//! offset arrive already sorted. Each such run is kept in a FIFO of its own
//! ([`RUNS`] of them; a key joins the run whose last key is the greatest
//! one not above it), and the few keys that fit no run go to a heap. The
//! least pending key is then the least of the runs' fronts and the heap's
//! top. At 2,000 calls/s each of the 16 partitions holds about 15,000
//! timers, and a heap of them paid a cache miss per level on every pop
//! (`BinaryHeap::pop` was 2.7 % of a `-j1` run); a run is read front to
//! back, and on that capture no key went to the heap.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::blocks::Blocks;

/// FIFOs of sorted keys: one per offset in use, with room to spare.
const RUNS: usize = 8;

/// Keys per block of a run (6 KiB of 24-byte keys). A run is a
/// [`Blocks`] rather than one growing buffer: deques that doubled left
/// their outgrown buffers behind, and the runs of 16 partitions peaked
/// about 9 MiB above the single heap they replace.
const BLOCK: usize = 256;

/// Sorted keys, front first.
type Run<K> = Blocks<K, BLOCK>;

/// Pending keys, least first; see the module documentation.
pub(super) struct TimerQueue<K> {
    runs: [Run<K>; RUNS],
    /// Each run's first and last key, side by side: a push compares every
    /// run's last key and a pop every run's first, and reading them from
    /// the runs' blocks goes through two headers to a third cache line a
    /// run (`pop_until` 45 M -> 31 M instructions on the first 60 s of
    /// udp200-600s, callgrind).
    fronts: [Option<K>; RUNS],
    backs: [Option<K>; RUNS],
    /// Keys that fit no run.
    heap: BinaryHeap<Reverse<K>>,
}

/// Where the least pending key is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Source {
    Run(usize),
    Heap,
}

impl<K: Ord + Copy> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            runs: std::array::from_fn(|_| Run::default()),
            fronts: [None; RUNS],
            backs: [None; RUNS],
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord + Copy> TimerQueue<K> {
    /// Adds a key.
    pub fn push(&mut self, k: K) {
        let mut best: Option<(usize, K)> = None;
        let mut empty = None;
        for (i, back) in self.backs.iter().enumerate() {
            match *back {
                Some(b) if b <= k && best.is_none_or(|(_, bb)| b > bb) => best = Some((i, b)),
                None if empty.is_none() => empty = Some(i),
                _ => {}
            }
        }
        match best.map(|(i, _)| i).or(empty) {
            // At the back of run `i`: its last key is not above `k`.
            Some(i) => {
                self.runs[i].push_back(k);
                self.backs[i] = Some(k);
                self.fronts[i] = self.fronts[i].or(Some(k));
            }
            None => self.heap.push(Reverse(k)),
        }
    }

    /// Removes and returns the least key when it is not above `limit`.
    pub fn pop_until(&mut self, limit: &K) -> Option<K> {
        let (src, k) = self.least()?;
        if k > *limit {
            return None;
        }
        match src {
            Source::Run(i) => {
                let k = self.runs[i].pop_front();
                self.fronts[i] = self.runs[i].front().copied();
                if self.fronts[i].is_none() {
                    self.backs[i] = None;
                }
                k
            }
            Source::Heap => self.heap.pop().map(|Reverse(k)| k),
        }
    }

    /// The least pending key, left in place.
    pub fn peek(&self) -> Option<K> {
        self.least().map(|(_, k)| k)
    }

    /// Pending keys.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.runs.iter().map(Run::len).sum::<usize>() + self.heap.len()
    }

    fn least(&self) -> Option<(Source, K)> {
        let mut least = self.heap.peek().map(|&Reverse(k)| (Source::Heap, k));
        for (i, front) in self.fronts.iter().enumerate() {
            match *front {
                Some(f) if least.is_none_or(|(_, l)| f < l) => least = Some((Source::Run(i), f)),
                _ => {}
            }
        }
        least
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Drains both queues up to `limit`, comparing every key.
    fn drain_both(
        q: &mut TimerQueue<(i64, u8, u64)>,
        h: &mut BinaryHeap<Reverse<(i64, u8, u64)>>,
        limit: (i64, u8, u64),
    ) -> Result<(), TestCaseError> {
        loop {
            let want = match h.peek() {
                Some(&Reverse(k)) if k <= limit => h.pop().map(|Reverse(k)| k),
                _ => None,
            };
            prop_assert_eq!(q.pop_until(&limit), want);
            if want.is_none() {
                return Ok(());
            }
        }
    }

    proptest! {
        /// Any interleaving of pushes and pops gives the keys in the order
        /// a binary heap gives them: offsets from a clock that mostly runs
        /// forward, with jitter, ties and keys that fit no run.
        #[test]
        fn pops_in_heap_order(
            steps in proptest::collection::vec(
                (0i64..5, 0usize..6, 0u8..4, 0u64..20, any::<bool>()),
                1..1200,
            ),
        ) {
            const OFFSETS: [i64; 6] = [0, 3, 40, 41, 1_000, -7];
            let mut q = TimerQueue::default();
            let mut h = BinaryHeap::new();
            let mut now = 0i64;
            for (dt, off, kind, id, pop) in steps {
                now += dt;
                let k = (now + OFFSETS[off], kind, id);
                q.push(k);
                h.push(Reverse(k));
                prop_assert_eq!(q.len(), h.len());
                if pop {
                    drain_both(&mut q, &mut h, (now, u8::MAX, u64::MAX))?;
                }
            }
            drain_both(&mut q, &mut h, (i64::MAX, u8::MAX, u64::MAX))?;
            prop_assert_eq!(q.len(), 0);
        }
    }

    #[test]
    fn sorted_runs_stay_out_of_the_heap() {
        // Two offsets interleaved: two runs, nothing in the heap.
        let mut q = TimerQueue::default();
        for t in 0..(3 * BLOCK as i64 + 7) {
            q.push((t + 32, 0u8, t as u64));
            q.push((t + 4, 3u8, t as u64));
        }
        assert_eq!(q.heap.len(), 0);
        assert_eq!(q.len(), 2 * (3 * BLOCK + 7));
        let mut last = None;
        while let Some(k) = q.pop_until(&(i64::MAX, u8::MAX, u64::MAX)) {
            assert!(last.is_none_or(|l| l <= k));
            last = Some(k);
        }
    }
}
