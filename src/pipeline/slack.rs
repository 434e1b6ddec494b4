//! Whether the calling thread has time to spare while the capture is read:
//! the rules stage's sender asks, collection by collection, who evaluates
//! and encodes the finished sessions (`stage::RulesStage::send`).
//!
//! At `-j2` three threads share two cores: the decoding thread, the calling
//! thread (merge, routing, tracking) and the rules stage's thread. Where the
//! decoding thread is the longest path (200 calls/s), handing the sessions to
//! a third thread only adds hand-over: preparing every one on the calling
//! thread gave udp200-600s wall ×0.956 and CPU ×0.969. Where the calling
//! thread is the longest path (2,000 calls/s), preparing there costs wall
//! ×1.082 on udp2000-60s. The sign of which is the longest path: the
//! decoding threads wait for room in their channel to the merge
//! ([`super::merge::blocked_ns`]) only when the calling thread is behind
//! them. So the calling thread prepares once [`CALM_WINDOWS`] windows of
//! [`WINDOW`] in a row had the decoding threads waiting less than
//! [`BUSY_PER_MILLE`] of the window, and stops at the first window that had
//! more.
//!
//! The decision changes only which thread does the work: a session's rows
//! are the same wherever they are prepared, and the stage writes them in the
//! same order (tests force each path with `SIPAUDIT_SEND_PREPARED=always` or
//! `never`). It never reads a session.

use std::time::{Duration, Instant};

/// The wall time over which the decoding threads' waiting is measured.
pub(super) const WINDOW: Duration = Duration::from_millis(200);

/// The share of [`WINDOW`] (per mille) the decoding threads must have waited
/// for the calling thread for that window to count as busy. Measured on
/// the benchmark's captures (`SIPAUDIT_SLACK=trace`): they waited about 1–2 %
/// of the run at 200 calls/s, 3–6 % over TCP at 1,000 calls/s, and 9–15 % at
/// 2,000 calls/s.
pub(super) const BUSY_PER_MILLE: u64 = 50;

/// Calm windows in a row before the calling thread prepares sessions. With
/// one, a capture whose calling thread is the longest path had a calm window
/// now and then and prepared the next collections (12 of 256 on
/// udp2000-60s); with two, none.
pub(super) const CALM_WINDOWS: u32 = 2;

/// The decision and the measure it was taken from.
pub(super) struct Slack {
    since: Instant,
    blocked_then: u64,
    spare: bool,
    /// Calm windows in a row, up to now.
    calm: u32,
    /// Collections prepared on the calling thread, and sent unprepared
    /// (`SIPAUDIT_SLACK=trace` prints them at the end).
    pub(super) counts: (u64, u64),
}

impl Slack {
    /// Starts measuring at `now`, when the decoding threads had waited
    /// `blocked` nanoseconds in total.
    pub(super) fn new(now: Instant, blocked: u64) -> Slack {
        Slack {
            since: now,
            blocked_then: blocked,
            spare: false,
            calm: 0,
            counts: (0, 0),
        }
    }

    /// Whether the calling thread has time to spare, given the clock and the
    /// total the decoding threads have waited for it so far. The answer
    /// changes at most once per [`WINDOW`].
    pub(super) fn spare(&mut self, now: Instant, blocked: u64) -> bool {
        let wall = now.saturating_duration_since(self.since);
        if wall >= WINDOW {
            if busy(blocked.saturating_sub(self.blocked_then), wall) {
                self.calm = 0;
            } else {
                self.calm = self.calm.saturating_add(1);
            }
            self.spare = self.calm >= CALM_WINDOWS;
            self.since = now;
            self.blocked_then = blocked;
        }
        if self.spare {
            self.counts.0 += 1;
        } else {
            self.counts.1 += 1;
        }
        self.spare
    }
}

/// Whether `blocked` nanoseconds of waiting within `wall` make it busy.
fn busy(blocked: u64, wall: Duration) -> bool {
    let wall = u64::try_from(wall.as_nanos()).unwrap_or(u64::MAX);
    u128::from(blocked) * 1000 >= u128::from(wall) * u128::from(BUSY_PER_MILLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_is_a_share_of_the_window() {
        let w = Duration::from_millis(100);
        assert!(busy(5_000_000, w));
        assert!(!busy(4_999_999, w));
        assert!(!busy(0, w));
    }

    #[test]
    fn prepares_after_calm_windows_and_stops_at_a_busy_one() {
        let t0 = Instant::now();
        let mut s = Slack::new(t0, 1_000);
        let busy_share = WINDOW.as_nanos() as u64 / 10;
        // Within the first window: no decision yet (send unprepared).
        assert!(!s.spare(t0 + WINDOW / 4, 1_000 + busy_share));
        // One calm window is not enough, the second is.
        let mut t = t0;
        let blocked = 1_000;
        for calm in 1..=CALM_WINDOWS {
            t += WINDOW;
            assert_eq!(s.spare(t, blocked), calm >= CALM_WINDOWS, "calm {calm}");
        }
        // The decision holds within a window, whatever the waiting.
        assert!(s.spare(t + WINDOW / 2, blocked + busy_share));
        // A busy window: back to sending at once.
        t += WINDOW;
        assert!(!s.spare(t, blocked + busy_share));
        // And calm windows again before preparing.
        t += WINDOW;
        assert!(!s.spare(t, blocked + busy_share));
        t += WINDOW;
        assert!(s.spare(t, blocked + busy_share));
        assert_eq!(s.counts.0 + s.counts.1, 7);
    }
}
