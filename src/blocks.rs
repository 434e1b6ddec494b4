//! A sorted sequence kept in fixed blocks of `N` elements (each a ring
//! buffer), so that it grows and shrinks without moving what it holds: a
//! single buffer grown by doubling or by a quarter copies everything it
//! holds at each growth and keeps its largest size to the end (and several
//! such buffers leave their outgrown ones behind in the allocator). Empty
//! blocks are kept for reuse, two at most. Never holds an empty block.
//!
//! Owns only the order and storage of its elements; what sorts before what
//! is the caller's. A shared leaf: the merge's reorder buffer
//! (`pipeline::merge`, records) and the tracker's timer runs
//! (`dialog::tracker::timers`, keys) both keep one.

use std::collections::VecDeque;

/// See the module documentation.
pub struct Blocks<H, const N: usize> {
    blocks: VecDeque<VecDeque<H>>,
    spare: Vec<VecDeque<H>>,
}

impl<H, const N: usize> Default for Blocks<H, N> {
    fn default() -> Self {
        Blocks {
            blocks: VecDeque::new(),
            spare: Vec::new(),
        }
    }
}

impl<H, const N: usize> Blocks<H, N> {
    fn block(&mut self) -> VecDeque<H> {
        self.spare
            .pop()
            .unwrap_or_else(|| VecDeque::with_capacity(N))
    }

    /// Inserts `h` after every element `before` it (`before(a, b)`: a
    /// sorts before b); at the back, where almost every insert goes, in
    /// O(1).
    pub fn insert(&mut self, h: H, before: impl Fn(&H, &H) -> bool) {
        let last = self.blocks.back().and_then(VecDeque::back);
        if last.is_none_or(|l| before(l, &h)) {
            return self.push_back(h);
        }
        // The first block whose last element does not sort before `h`
        // (there is one: the last block's).
        let mut i = self
            .blocks
            .partition_point(|b| b.back().is_some_and(|l| before(l, &h)));
        if self.blocks[i].len() == N {
            // Full: split in two halves rather than grow it.
            let mut upper = self.block();
            upper.extend(self.blocks[i].drain(N / 2..));
            self.blocks.insert(i + 1, upper);
            if self.blocks[i].back().is_some_and(|l| before(l, &h)) {
                i += 1;
            }
        }
        let b = &mut self.blocks[i];
        let at = b.partition_point(|x| before(x, &h));
        b.insert(at, h);
    }

    /// Appends `h`, which the caller knows sorts after every element (a
    /// timer run: the queue picked the run by its last key).
    pub fn push_back(&mut self, h: H) {
        if self.blocks.back().is_none_or(|b| b.len() == N) {
            let b = self.block();
            self.blocks.push_back(b);
        }
        self.blocks.back_mut().expect("just ensured").push_back(h);
    }

    /// The first element.
    pub fn front(&self) -> Option<&H> {
        self.blocks.front().and_then(VecDeque::front)
    }

    /// The last element.
    pub fn back(&self) -> Option<&H> {
        self.blocks.back().and_then(VecDeque::back)
    }

    /// Removes the first element.
    pub fn pop_front(&mut self) -> Option<H> {
        let b = self.blocks.front_mut()?;
        let h = b.pop_front();
        if b.is_empty() {
            let b = self.blocks.pop_front().expect("front exists");
            if self.spare.len() < 2 {
                self.spare.push(b);
            }
        }
        h
    }

    /// Elements held.
    pub fn len(&self) -> usize {
        self.blocks.iter().map(VecDeque::len).sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOCK: usize = 64;

    /// Blocks stay sorted through back inserts, inserts into full blocks
    /// (splits) and pops, against a sorted vector; emptied blocks are
    /// reused, two at most kept.
    #[test]
    fn blocks_keep_order_through_splits_and_pops() {
        let mut b: Blocks<u64, BLOCK> = Blocks::default();
        let mut want: Vec<u64> = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly in order, one in four anywhere in the last ~3 blocks.
            let v = if x % 4 == 0 {
                (i * 16).saturating_sub(x % (3 * BLOCK as u64 * 16))
            } else {
                i * 16
            } * 8
                + i % 8;
            b.insert(v, |a, c| a < c);
            let at = want.partition_point(|&w| w < v);
            want.insert(at, v);
            if x % 3 == 0 {
                assert_eq!(b.pop_front(), (!want.is_empty()).then(|| want.remove(0)));
            }
            assert_eq!(b.front(), want.first());
            assert_eq!(b.back(), want.last());
            assert_eq!(b.len(), want.len());
        }
        assert!(b.blocks.iter().all(|k| !k.is_empty() && k.len() <= BLOCK));
        assert!(b.blocks.len() > 3, "more than a few blocks were in use");
        while let Some(v) = b.pop_front() {
            assert_eq!(v, want.remove(0));
        }
        assert!(want.is_empty() && b.is_empty());
        assert!(b.spare.len() <= 2);
        assert!(b.spare.iter().all(|k| k.capacity() >= BLOCK));
    }
}
