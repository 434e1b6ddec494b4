//! The end of a batch: the order in which the sessions still open are
//! finished, step by step.
//!
//! Owns: that order ([`Order`], [`Schedule`]) and the loop that follows it.
//! Never finishes a session itself (the trackers do) and never numbers one
//! differently: the order is chosen so that the ids come out as in one pass
//! (see [`Tracking::finish`]).
//!
//! Why rounds: finished partition after partition, the rows of the end come
//! in 16 runs, each over the whole capture's start times. sessions.csv's
//! order (by start) then holds every row until the last partition is
//! finished; past its limit (32,768 rows) it spills them to run files and
//! merges them at the end. A scanner burst ends with 200,000 sessions open.
//! When finishing hands out no session id, the order of the steps cannot
//! change an id, and the partitions go round by round: a step of each in
//! turn, so they advance together through the start times and the rows
//! reach sessions.csv nearly in its order. Paired whole-process medians on
//! the scanner burst (docs/perf-history.md): peak RSS −27 MiB at
//! `-j1` and `-j2`, `-j2` wall ×0.92.
//!
//! Tried and not kept: the partitions finished on helper threads while
//! this thread hands the steps over (`-j2`). The end is CPU-bound on two
//! cores (the rules stage's thread is busy throughout), and the helpers
//! only shared the cores: wall ×0.98 against ×0.92 here.

use super::{PARTITIONS, Tracking};
use crate::pipeline::{Feed, Finished};

/// The order in which the open sessions of the end are finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Order {
    /// Partition after partition, this many sessions a step: needed when
    /// finishing may hand out ids, whose numbers follow the partition order.
    Partitions(usize),
    /// A step of this many sessions from every partition with some left,
    /// round after round: the partitions advance together through the
    /// start times.
    Rounds(usize),
}

impl Order {
    /// The order of the end for steps of `step` sessions: rounds of a
    /// share of it from each partition when `ids_final` (finishing hands out
    /// no id), else partition after partition.
    pub(super) fn of(step: usize, ids_final: bool) -> Order {
        if ids_final {
            Order::Rounds((step / PARTITIONS).max(1))
        } else {
            Order::Partitions(step)
        }
    }

    /// Sessions per step.
    fn max(self) -> usize {
        match self {
            Order::Partitions(m) | Order::Rounds(m) => m,
        }
    }
}

/// Which partition's step comes next, in an [`Order`].
struct Schedule {
    order: Order,
    /// Partitions with sessions left, ascending.
    active: Vec<usize>,
    /// Position in `active` of the next step's partition.
    at: usize,
}

impl Schedule {
    fn new(order: Order, parts: impl Iterator<Item = usize>) -> Schedule {
        Schedule {
            order,
            active: parts.collect(),
            at: 0,
        }
    }

    /// The partition of the next step; `None` once all are finished.
    fn current(&self) -> Option<usize> {
        self.active.get(self.at).copied()
    }

    /// The current partition made its step and has `more` sessions left;
    /// returns whether what is finished is handed over before the next step
    /// (between the steps of a partition, or after a round).
    fn advance(&mut self, more: bool) -> bool {
        match (self.order, more) {
            (_, false) => {
                self.active.remove(self.at);
            }
            (Order::Partitions(_), true) => return true,
            (Order::Rounds(_), true) => self.at += 1,
        }
        if self.at < self.active.len() {
            return false;
        }
        self.at = 0;
        matches!(self.order, Order::Rounds(_)) && !self.active.is_empty()
    }
}

impl Tracking {
    /// Finishes the open sessions in `order`, numbering each step's ids
    /// and handing `send` what is finished between steps, and everything
    /// at the end.
    pub(super) fn finish_steps(
        &mut self,
        end_ns: i64,
        order: Order,
        feed: &mut Feed,
        send: &mut dyn FnMut(Finished, &Tracking),
    ) {
        let keep = self.keep_messages;
        let mut sched = Schedule::new(order, 0..self.parts.len());
        while let Some(i) = sched.current() {
            let more = self.parts[i].tracker.finish_some(end_ns, order.max());
            self.parts[i].take(keep);
            self.numbering.number_one(&mut self.parts[i], i);
            if sched.advance(more) {
                let f = self.collect(feed, false);
                send(f, self);
            }
        }
        let f = self.collect(feed, true);
        send(f, self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The steps of a schedule over partitions with `left` steps each:
    /// (partition, handed over after it).
    fn steps(order: Order, left: &mut [usize]) -> Vec<(usize, bool)> {
        let mut s = Schedule::new(order, 0..left.len());
        let mut out = Vec::new();
        while let Some(i) = s.current() {
            left[i] -= 1;
            out.push((i, s.advance(left[i] > 0)));
        }
        out
    }

    #[test]
    fn partitions_go_one_after_another_and_rounds_together() {
        let p = steps(Order::Partitions(1), &mut [2, 1, 3]);
        assert_eq!(
            p,
            [
                (0, true),
                (0, false),
                (1, false),
                (2, true),
                (2, true),
                (2, false)
            ]
        );
        let r = steps(Order::Rounds(1), &mut [2, 1, 3]);
        assert_eq!(
            r,
            [
                (0, false),
                (1, false),
                (2, true),
                (0, false),
                (2, true),
                (2, false)
            ]
        );
    }

    #[test]
    fn rounds_take_a_share_of_the_step_and_partitions_all_of_it() {
        assert_eq!(Order::of(4096, true), Order::Rounds(4096 / PARTITIONS));
        assert_eq!(Order::of(1, true), Order::Rounds(1));
        assert_eq!(Order::of(4096, false), Order::Partitions(4096));
    }
}
