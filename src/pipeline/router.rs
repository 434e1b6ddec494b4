//! Routing: which key each record is tracked under, its *home*. Its own
//! partition key ([`crate::dialog::partition_key`]), or, for a B2BUA or
//! AS leg, the home of the first leg it is tied to (the "sticky union").
//! The tracking partition is `partition_of(home, PARTITIONS)` in one run,
//! and the partition of a scale-out run is `partition_of(home, N)`: every
//! record that one tracker must see together has the same home, so it lands
//! in the same partition for every N.
//!
//! Owns: [`Router`] (the sequential decision over the merged timeline) and
//! [`RouteFacts`] (the few fields of a record it reads: time, key, whether
//! it is a request that can tie legs, correlation values). Never tracks a
//! session and never reads a report; `route-records` (routes.rs) runs the
//! same router over records so that partitions can be cut before the
//! shuffle.
//!
//! The sticky union: an AS-leg link (rules.md §A.3) or a B2BUA relation
//! ties two initial requests by a Session-ID, icid-value or X-CID while
//! their From/To pairs differ, i.e. their partition keys differ. The router
//! sees every record first: it remembers each correlation value of a
//! request with the home it went to, for W0 (the window of B2BUA relations;
//! AS-leg's W1 is shorter), and a later request carrying a remembered value
//! of another home moves its whole From/To pair (its responses, ACK, BYE,
//! retries: the same pair key) to that home from then on, until the pair
//! has been silent for [`DIALOG_IDLE_NS`]. The tracker of that home then
//! sees both legs and links or relates them exactly as one tracker would.
//! Corner cases, by design:
//! - a value carried by [`CORR_MAX`] or more requests within W0 is not
//!   evidence (the tracker ignores it too): no union;
//! - a pair is moved at most once while its move lives: a second value
//!   pointing elsewhere is not followed (that AS-leg link is lost);
//! - of several values of one request, the first remembered one in the
//!   order Session-ID, icid-value, X-CID (highest confidence first) wins;
//! - a pair moved while another call of the same pair is in flight at its
//!   own home splits that call: its later messages follow the move. It
//!   needs two calls between the same From and To at once, one of them a
//!   B2BUA leg; the messages still reach messages.csv in order.
//!
//! Homes are keys, not partition numbers: a leg moves whenever the first
//! leg's home differs from its own, even when both fall in the same one of
//! the tracking partitions (moving it there changes nothing for one run), so
//! that the union holds for any number of scale-out partitions.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use crate::dialog::few::Few;
use crate::dialog::tracker::{CORR_MAX, DIALOG_IDLE_NS};
use crate::dialog::{Method, SipRecord};

/// What the router reads of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteFacts {
    /// Capture time (ns since the epoch).
    pub ts: i64,
    /// The record's own partition key.
    pub key: u64,
    /// A request other than ACK and CANCEL: its correlation values can tie
    /// legs.
    pub ties: bool,
    /// Session-ID, icid-value, X-CID hashes (0: absent).
    pub corr: [u64; 3],
}

impl RouteFacts {
    /// The facts of a tracked record.
    pub fn of(rec: &SipRecord) -> RouteFacts {
        RouteFacts {
            ts: rec.at.ts_ns,
            key: rec.partition,
            ties: rec.is_request() && !matches!(rec.method, Method::Ack | Method::Cancel),
            corr: rec.link().corr,
        }
    }
}

/// Decides the home of each record in merged order (module documentation).
pub struct Router {
    w0: i64,
    /// Correlation value → home and the times it was seen (within W0, at
    /// most [`CORR_MAX`], oldest first). Nearly every value is seen once (a
    /// call's icid-value or Session-ID): [`Few`] keeps that time inline
    /// (a `VecDeque` allocated 32 bytes for it, about 100,000 of them live
    /// at 2,000 calls/s).
    corr: FxHashMap<u64, (u64, Few<i64>)>,
    corr_expiry: VecDeque<(i64, u64)>,
    /// Moved pairs: partition key → (home, last message).
    moved: FxHashMap<u64, (u64, i64)>,
    moved_expiry: VecDeque<(i64, u64)>,
}

impl Router {
    /// A router that remembers correlation values for `w0` ns (W0).
    pub fn new(w0: i64) -> Router {
        Router {
            w0: w0.max(1),
            corr: FxHashMap::default(),
            corr_expiry: VecDeque::new(),
            moved: FxHashMap::default(),
            moved_expiry: VecDeque::new(),
        }
    }

    /// The home of the next record in merged order.
    pub fn route(&mut self, rec: &RouteFacts) -> u64 {
        let now = rec.ts;
        self.expire(now);
        let key = rec.key;
        let moved = self.moved.get_mut(&key).map(|(h, last)| {
            *last = now;
            *h
        });
        let mut home = moved.unwrap_or(key);
        if !rec.ties || rec.corr.iter().all(|&k| k == 0) {
            return home;
        }
        if let Some(h) = self.target(rec).filter(|&h| h != home && moved.is_none()) {
            self.moved.insert(key, (h, now));
            self.moved_expiry
                .push_back((now.saturating_add(DIALOG_IDLE_NS), key));
            home = h;
        }
        self.remember(rec, home);
        home
    }

    /// The home of the first remembered value of `rec` (highest confidence
    /// first), unless the value is too common to be evidence.
    fn target(&mut self, rec: &RouteFacts) -> Option<u64> {
        let mut target = None;
        for &k in rec.corr.iter().filter(|&&k| k != 0) {
            if let Some((h, times)) = self.corr.get_mut(&k) {
                while times.first().is_some_and(|&t| rec.ts - t > self.w0) {
                    times.pop_front();
                }
                if times.len() < CORR_MAX && !times.is_empty() && target.is_none() {
                    target = Some(*h);
                }
            }
        }
        target
    }

    /// Counts the values of `rec`; a value seen first here gets `home`.
    fn remember(&mut self, rec: &RouteFacts, home: u64) {
        for &k in rec.corr.iter().filter(|&&k| k != 0) {
            let (_, times) = self.corr.entry(k).or_insert_with(|| (home, Few::default()));
            // The latest CORR_MAX times tell whether it is too common.
            times.push(rec.ts);
            if times.len() > CORR_MAX {
                times.pop_front();
            }
            self.corr_expiry
                .push_back((rec.ts.saturating_add(self.w0), k));
        }
    }

    /// Forgets values not seen for W0 and pairs silent for
    /// [`DIALOG_IDLE_NS`].
    fn expire(&mut self, now: i64) {
        while let Some(&(until, k)) = self.corr_expiry.front() {
            if until >= now {
                break;
            }
            self.corr_expiry.pop_front();
            if self
                .corr
                .get(&k)
                .is_some_and(|(_, t)| t.last().is_none_or(|&last| now - last > self.w0))
            {
                self.corr.remove(&k);
            }
        }
        while let Some(&(until, k)) = self.moved_expiry.front() {
            if until >= now {
                break;
            }
            self.moved_expiry.pop_front();
            if let Some(&(_, last)) = self.moved.get(&k) {
                let again = last.saturating_add(DIALOG_IDLE_NS);
                if again < now {
                    self.moved.remove(&k);
                } else {
                    self.moved_expiry.push_back((again, k));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn rec(method: &str, from: &str, to: &str, to_tag: &str, extra: &str, ts: i64) -> SipRecord {
        let start = if method.starts_with("SIP/") {
            method.to_string()
        } else {
            format!("{method} sip:x@example.net SIP/2.0")
        };
        let cseq = if method.starts_with("SIP/") {
            "INVITE"
        } else {
            method
        };
        let text = format!(
            "{start}\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK{ts}\r\nFrom: <{from}>;tag=f\r\nTo: <{to}>{to_tag}\r\n\
Call-ID: {from}{to}\r\nCSeq: 1 {cseq}\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        let a: std::net::SocketAddr = "192.0.2.1:5060".parse().expect("addr");
        SipRecord::from_text(&text, 1, ts, a, a)
    }

    const SID: &str = "Session-ID: ab30317f1a784dc48ff824d0d3715d86\r\n";

    fn route(r: &mut Router, rec: &SipRecord) -> u64 {
        r.route(&RouteFacts::of(rec))
    }

    #[test]
    fn a_b2bua_leg_follows_the_first_leg_with_its_pair() {
        let mut r = Router::new(32 * S);
        let first = rec("INVITE", "sip:a@a.example", "sip:b@b.example", "", SID, 0);
        let p = route(&mut r, &first);
        assert_eq!(p, first.partition);
        let other = "sip:leg@b.example";
        let leg = rec("INVITE", other, "sip:c@c.example", "", SID, S);
        assert_eq!(route(&mut r, &leg), p, "the leg joins the first");
        // Its responses and the callee's BYE carry the same pair.
        let ok = rec(
            "SIP/2.0 200 OK",
            other,
            "sip:c@c.example",
            ";tag=t",
            "",
            2 * S,
        );
        assert_eq!(route(&mut r, &ok), p);
        let bye = rec("BYE", "sip:c@c.example", other, ";tag=f", "", 3 * S);
        assert_eq!(route(&mut r, &bye), p, "direction-free");
        // After 2 h of silence the pair goes home.
        let later = rec(
            "INVITE",
            other,
            "sip:c@c.example",
            "",
            "",
            3 * S + DIALOG_IDLE_NS + S,
        );
        assert_ne!(route(&mut r, &later), p);
    }

    #[test]
    fn no_union_beyond_w0_or_for_a_common_value() {
        let mut r = Router::new(32 * S);
        let first = rec("INVITE", "sip:a@a.example", "sip:b@b.example", "", SID, 0);
        let p = route(&mut r, &first);
        let other = "sip:leg@b.example";
        let late = rec("INVITE", other, "sip:c@c.example", "", SID, 40 * S);
        assert_ne!(route(&mut r, &late), p, "W0 has passed");

        let mut r = Router::new(32 * S);
        let p = route(&mut r, &first);
        for k in 1..CORR_MAX {
            // Same pair as the first: no move, but the value is counted.
            let again = rec(
                "INVITE",
                "sip:a@a.example",
                "sip:b@b.example",
                "",
                SID,
                k as i64,
            );
            assert_eq!(route(&mut r, &again), p);
        }
        let leg = rec("INVITE", other, "sip:c@c.example", "", SID, S);
        assert_ne!(
            route(&mut r, &leg),
            p,
            "a value seen CORR_MAX times is no evidence"
        );
    }
}
