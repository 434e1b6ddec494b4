//! The retransmission window's table: each message key seen within the
//! window, with the capture time it was last seen, in one flat table whose
//! place for a key is known before the key is looked up, so that it can be
//! prefetched a few messages ahead ([`Seen::prefetch`]).
//!
//! Owns the table, its growth and its rebuilds. Never decides what a key is
//! or how long the window is.
//!
//! Why not a hash map with an expiry queue (the `KeyRing` this replaced):
//! at 2,000 calls/s the window holds 600,000 keys, and the lookup of each
//! new message's key missed the caches on a place that the map computes
//! inside the lookup. Here the place is `key & mask` (the keys are hashes
//! already), open addressing with linear probing over 16-byte slots.
//!
//! Time is the table's clock: the latest capture time observed. A message
//! that arrives with an earlier time (later than the merge's reorder
//! window allows) is seen at the clock's time, as the expiry queue this
//! replaced saw it: it expired keys when a later message's own time was
//! more than the window past theirs. So a key is a repeat when the clock
//! has moved at most the window since its last sighting, and an expired key
//! stays expired: a lookup passes over it and an insertion of another key
//! takes its slot. When the slots ever used reach three quarters of the
//! table, it is rebuilt with only the live keys at 30–60 % load (larger as
//! the traffic grows; like the map it replaced, it does not shrink while
//! new keys take the slots of expired ones). A rebuild follows at least a
//! seventh of the table's insertions into empty slots, so its cost per
//! message is O(1) amortised.

/// One slot: a key and the clock when it was last seen ([`EMPTY`]: never
/// used since the last rebuild).
#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u64,
    last: i64,
}

/// The `last` of a slot never used. A sighting at exactly this time (about
/// the year 1677) counts as 1 ns later.
const EMPTY: i64 = i64::MIN;

/// The smallest table (slots).
const MIN_SLOTS: usize = 1024;

/// See the module documentation.
#[derive(Debug)]
pub struct Seen {
    /// A power of two of slots.
    slots: Vec<Slot>,
    /// Slots not [`EMPTY`]: live or expired keys.
    used: usize,
    /// The window (ns): a key is live while `clock - last <= window`.
    window: i64,
    /// The latest capture time observed.
    clock: i64,
}

impl Seen {
    /// An empty table for a window of `window` ns.
    pub fn new(window: i64) -> Self {
        Seen {
            slots: vec![
                Slot {
                    key: 0,
                    last: EMPTY
                };
                MIN_SLOTS
            ],
            used: 0,
            window,
            clock: EMPTY + 1,
        }
    }

    fn home(&self, key: u64) -> usize {
        key as usize & (self.slots.len() - 1)
    }

    /// Prefetches the slots where a lookup of `key` starts: the line of its
    /// first slot and the line four slots on (at least its first five).
    pub fn prefetch(&self, key: u64) {
        let i = self.home(key);
        crate::prefetch::value(&self.slots[i]);
        if let Some(next) = self.slots.get(i + 4) {
            crate::prefetch::value(next);
        }
    }

    /// Whether `key` was last seen at most the window before the clock,
    /// once the clock has moved on to `ts` (if later); the clock becomes
    /// its last sighting.
    pub fn observe(&mut self, key: u64, ts: i64) -> bool {
        self.clock = self.clock.max(ts);
        let now = self.clock;
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        let mut expired = None;
        while self.slots[i].last != EMPTY {
            let s = &mut self.slots[i];
            let live = now.saturating_sub(s.last) <= self.window;
            if s.key == key {
                s.last = now;
                return live;
            }
            if !live && expired.is_none() {
                expired = Some(i);
            }
            i = (i + 1) & mask;
        }
        // Not in the table: the first expired slot on the way, or the empty
        // one that ended the search.
        let at = expired.unwrap_or(i);
        self.slots[at] = Slot { key, last: now };
        if expired.is_none() {
            self.used += 1;
            if self.used * 4 > self.slots.len() * 3 {
                self.rebuild();
            }
        }
        false
    }

    /// Keys live at the clock (a pass over the table: for tests and
    /// counts).
    pub fn live(&self) -> usize {
        let (clock, window) = (self.clock, self.window);
        self.slots
            .iter()
            .filter(|s| s.live_at(clock, window))
            .count()
    }

    /// Puts the live keys in a new table at 30–60 % load.
    fn rebuild(&mut self) {
        let live = self.live();
        let len = (live * 5 / 3 + 1).next_power_of_two().max(MIN_SLOTS);
        let old = std::mem::replace(
            &mut self.slots,
            vec![
                Slot {
                    key: 0,
                    last: EMPTY
                };
                len
            ],
        );
        let mask = len - 1;
        for s in old
            .into_iter()
            .filter(|s| s.live_at(self.clock, self.window))
        {
            let mut i = s.key as usize & mask;
            while self.slots[i].last != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
        self.used = live;
    }
}

impl Slot {
    /// Whether the slot holds a key seen at most `window` before `clock`.
    fn live_at(&self, clock: i64, window: i64) -> bool {
        self.last != EMPTY && clock.saturating_sub(self.last) <= window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many keys, sighted at pseudo-random gaps around the window, so that
    /// the table is rebuilt and grows, and expired slots are taken over: it
    /// answers as a map of last sightings would, holds its keys at most at
    /// three quarters' load, and does not grow while the keys it holds
    /// expire and new ones take their slots.
    #[test]
    fn answers_as_a_map_of_last_sightings_through_rebuilds() {
        let window = 20_000;
        let mut seen = Seen::new(window);
        let mut last: std::collections::HashMap<u64, i64> = Default::default();
        let (mut x, mut t) = (0x9e37_79b9_7f4a_7c15u64, 0i64);
        let (mut busy, mut after_new) = (0, 0);
        for round in 0..300_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Busy (5,000 keys), then a new key every 200 ns (about 100
            // live, in the expired keys' slots), then 50 keys again and
            // again.
            let (k, dt) = match round / 100_000 {
                0 => ((x >> 20) % 5_000, x % 3),
                1 => (1_000_000 + round, 200),
                _ => ((x >> 20) % 50, x % 3),
            };
            t += dt as i64;
            // Keys whose low bits collide, so that probes run long.
            let key = k.wrapping_mul(0x2545_f491_4f6c_dd1d) & !0xff | (k & 3);
            let want = last.insert(key, t).is_some_and(|s| t - s <= window);
            assert_eq!(seen.observe(key, t), want, "round {round}");
            assert!(seen.used * 4 <= seen.slots.len() * 3);
            if round == 99_999 {
                busy = seen.slots.len();
            }
            if round == 199_999 {
                after_new = seen.slots.len();
            }
        }
        let live = last.values().filter(|&&s| t - s <= window).count();
        assert_eq!(seen.live(), live);
        assert!(busy >= 8_192, "it grew: {busy}");
        assert_eq!(after_new, busy, "100,000 new keys, few at a time");
    }

    /// Times that go back (records later than the merge's reorder window
    /// keep their own time): the answers are those of the expiry queue this
    /// table replaced (a `KeyRing` of sightings, expired from its front
    /// while the current time is more than the window past them), also
    /// through rebuilds and expired slots taken over.
    #[test]
    fn answers_as_the_expiry_queue_did_when_times_go_back() {
        use crate::dialog::keyring::KeyRing;
        let window = 5_000;
        let mut seen = Seen::new(window);
        let mut ring: KeyRing<i64> = KeyRing::default();
        let (mut x, mut t) = (0x2545_f491_4f6c_dd1du64, 100_000i64);
        for round in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly forward; one time in 16 back by up to twice the window.
            let ts = if x % 16 == 0 {
                t - ((x >> 8) % (2 * window as u64)) as i64
            } else {
                t += ((x >> 8) % 8) as i64;
                t
            };
            let k = (x >> 24) % 3_000;
            let key = k.wrapping_mul(0x9e37_79b9_7f4a_7c15) & !0xff | (k & 3);
            while let Some(&(_, s)) = ring.front() {
                if ts.saturating_sub(s) <= window {
                    break;
                }
                ring.pop_front();
            }
            let want = ring.push(key, ts);
            assert_eq!(seen.observe(key, ts), want, "round {round}");
        }
    }
}
