//! IPv4/IPv6 fragment reassembly with bounds.
//!
//! etherparse's `IpDefragBuf` puts the fragments of one datagram together
//! (overlap and end-conflict checks included); this pool around it adds what
//! etherparse leaves to its user: a capture-time timeout, a cap on pending
//! datagrams and a cap on pending bytes, so a flood of fragments that never
//! complete cannot grow memory without bound. Every frame that went into a
//! datagram is remembered, so each packet is accounted for exactly once.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;

use etherparse::defrag::IpDefragBuf;
use etherparse::{IpFragOffset, IpNumber};

use super::TunnelPath;

/// Bounds of the fragment pool (per input file).
#[derive(Clone, Copy, Debug)]
pub struct DefragLimits {
    /// Datagrams waiting for fragments at once (default 4096).
    pub max_datagrams: usize,
    /// Payload bytes held at once (default 32 MiB).
    pub max_bytes: usize,
    /// Capture-time age after which an incomplete datagram is given up
    /// (default 30 s, Linux's `ipfrag_time`).
    pub timeout_ns: i64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_datagrams: 4096,
            max_bytes: 32 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// What identifies one IP datagram's fragments (RFC 791 / RFC 8200), plus the
/// tunnels around them so inner and outer fragments never mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Tunnels the fragments were found in.
    pub tunnels: TunnelPath,
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// The protocol carried.
    pub proto: u8,
}

impl fmt::Display for FragKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}>{} id=0x{:x} proto={}",
            self.src, self.dst, self.id, self.proto
        )
    }
}

/// A datagram given up before it completed.
#[derive(Debug)]
pub struct GivenUp {
    /// Which datagram.
    pub key: FragKey,
    /// The frames of the fragments seen.
    pub frames: Vec<u64>,
    /// The payload bytes they held.
    pub bytes: usize,
}

/// The result of adding one fragment.
pub enum Added {
    /// The datagram is still incomplete.
    Pending,
    /// The datagram is complete: its payload, and every frame that carried
    /// part of it (the current one last).
    Complete {
        /// The reassembled IP payload.
        data: Vec<u8>,
        /// Frames of all its fragments.
        frames: Vec<u64>,
    },
    /// The fragment conflicts with the others: the datagram is dropped.
    Error {
        /// What etherparse reported.
        detail: String,
        /// Frames of all its fragments, the current one included.
        frames: Vec<u64>,
    },
    /// The fragment is pending, and older datagrams were given up to stay
    /// within the caps.
    Evicted(Vec<GivenUp>),
}

struct Entry {
    buf: IpDefragBuf,
    seq: u64,
    first_ts: i64,
    frames: Vec<u64>,
    bytes: usize,
}

/// The pool.
pub struct Defrag {
    limits: DefragLimits,
    map: rustc_hash::FxHashMap<FragKey, Entry>,
    /// Datagrams in arrival order (stale ones are skipped lazily).
    order: VecDeque<(FragKey, u64)>,
    next_seq: u64,
    bytes: usize,
    spare: Vec<Vec<u8>>,
}

impl Defrag {
    /// An empty pool.
    pub fn new(limits: DefragLimits) -> Self {
        Defrag {
            limits,
            map: rustc_hash::FxHashMap::default(),
            order: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            spare: Vec::new(),
        }
    }

    /// Adds one fragment of `key`'s datagram, carried by `frame` and by the
    /// earlier frames `carried` (the other fragments of an outer datagram
    /// whose reassembly produced this fragment; empty otherwise).
    pub fn add(
        &mut self,
        key: FragKey,
        offset: IpFragOffset,
        more: bool,
        payload: &[u8],
        carried: &[u64],
        at: super::At,
    ) -> Added {
        let (frame, ts) = (at.frame, at.ts_ns);
        if !self.map.contains_key(&key) {
            let data = self.spare.pop().unwrap_or_default();
            let buf = IpDefragBuf::new(IpNumber(key.proto), data, Vec::new());
            let seq = self.next_seq;
            self.next_seq += 1;
            self.map.insert(
                key,
                Entry {
                    buf,
                    seq,
                    first_ts: ts,
                    frames: Vec::new(),
                    bytes: 0,
                },
            );
            self.order.push_back((key, seq));
        }
        let entry = self.map.get_mut(&key).expect("inserted above");
        entry.frames.extend_from_slice(carried);
        entry.frames.push(frame);
        if let Err(e) = entry.buf.add(offset, more, payload) {
            let entry = self.remove(&key);
            return Added::Error {
                detail: format!("IP datagram {key}: {e}"),
                frames: entry.frames,
            };
        }
        entry.bytes += payload.len();
        self.bytes += payload.len();
        if entry.buf.is_complete() {
            let entry = self.remove(&key);
            let (data, _) = entry.buf.take_bufs();
            return Added::Complete {
                data,
                frames: entry.frames,
            };
        }
        let mut evicted = Vec::new();
        while self.map.len() > self.limits.max_datagrams || self.bytes > self.limits.max_bytes {
            match self.pop_oldest() {
                Some(g) => evicted.push(g),
                None => break,
            }
        }
        if evicted.is_empty() {
            Added::Pending
        } else {
            Added::Evicted(evicted)
        }
    }

    /// Gives up the datagrams older than the timeout at capture time `now`.
    pub fn expire(&mut self, now: i64) -> Vec<GivenUp> {
        let mut out = Vec::new();
        while let Some(&(key, seq)) = self.order.front() {
            match self.map.get(&key) {
                Some(e) if e.seq == seq => {
                    if now.saturating_sub(e.first_ts) <= self.limits.timeout_ns {
                        break;
                    }
                    self.order.pop_front();
                    let e = self.remove(&key);
                    out.push(GivenUp {
                        key,
                        frames: e.frames,
                        bytes: e.bytes,
                    });
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        out
    }

    /// Gives up everything still pending, oldest first.
    pub fn drain(&mut self) -> Vec<GivenUp> {
        let mut out = Vec::new();
        while let Some(g) = self.pop_oldest() {
            out.push(g);
        }
        out
    }

    /// Returns a finished datagram's buffer for reuse.
    pub fn recycle(&mut self, mut data: Vec<u8>, _frames: Vec<u64>) {
        if self.spare.len() < 16 {
            data.clear();
            self.spare.push(data);
        }
    }

    /// Datagrams currently pending.
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        self.map.len()
    }

    fn pop_oldest(&mut self) -> Option<GivenUp> {
        while let Some((key, seq)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                let e = self.remove(&key);
                return Some(GivenUp {
                    key,
                    frames: e.frames,
                    bytes: e.bytes,
                });
            }
        }
        None
    }

    fn remove(&mut self, key: &FragKey) -> Entry {
        let e = self.map.remove(key).expect("entry present");
        self.bytes -= e.bytes;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(frame: u64, ts_ns: i64) -> super::super::At {
        super::super::At { frame, ts_ns }
    }

    fn key(id: u32) -> FragKey {
        FragKey {
            tunnels: TunnelPath::default(),
            src: "10.0.0.1".parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            id,
            proto: 17,
        }
    }

    fn off(units: u16) -> IpFragOffset {
        IpFragOffset::try_new(units).unwrap()
    }

    #[test]
    fn two_fragments_complete_in_any_order() {
        let mut d = Defrag::new(DefragLimits::default());
        assert!(matches!(
            d.add(key(1), off(1), false, &[2; 8], &[], at(2, 0)),
            Added::Pending
        ));
        match d.add(key(1), off(0), true, &[1; 8], &[], at(3, 1)) {
            Added::Complete { data, frames } => {
                assert_eq!(data, [[1u8; 8], [2u8; 8]].concat());
                assert_eq!(frames, vec![2, 3]);
            }
            _ => panic!("expected completion"),
        }
        assert_eq!(d.pending(), 0);
        assert_eq!(d.bytes, 0);
    }

    #[test]
    fn conflicting_end_is_an_error_naming_every_frame() {
        let mut d = Defrag::new(DefragLimits::default());
        assert!(matches!(
            d.add(key(1), off(2), false, &[0; 8], &[], at(1, 0)),
            Added::Pending
        ));
        match d.add(key(1), off(3), false, &[0; 8], &[], at(2, 0)) {
            Added::Error { frames, .. } => assert_eq!(frames, vec![1, 2]),
            _ => panic!("expected a conflict"),
        }
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn datagram_cap_evicts_the_oldest() {
        let limits = DefragLimits {
            max_datagrams: 2,
            ..DefragLimits::default()
        };
        let mut d = Defrag::new(limits);
        for id in 0..2 {
            assert!(matches!(
                d.add(key(id), off(0), true, &[0; 8], &[], at(id as u64 + 1, 0)),
                Added::Pending
            ));
        }
        match d.add(key(9), off(0), true, &[0; 8], &[], at(3, 0)) {
            Added::Evicted(g) => {
                assert_eq!(g.len(), 1);
                assert_eq!(g[0].key, key(0));
                assert_eq!(g[0].frames, vec![1]);
            }
            _ => panic!("expected an eviction"),
        }
        assert_eq!(d.pending(), 2);
    }

    #[test]
    fn flood_of_never_completed_fragments_stays_within_caps() {
        let limits = DefragLimits {
            max_datagrams: 100,
            max_bytes: 64 * 1024,
            timeout_ns: 1_000_000_000,
        };
        let mut d = Defrag::new(limits);
        let mut given_up = 0usize;
        for i in 0..100_000u32 {
            let ts = i as i64 * 1_000; // 1 µs apart
            if let Added::Evicted(g) =
                d.add(key(i), off(0), true, &[0; 1024], &[], at(i as u64 + 1, ts))
            {
                given_up += g.iter().map(|g| g.frames.len()).sum::<usize>();
            }
            given_up += d.expire(ts).iter().map(|g| g.frames.len()).sum::<usize>();
            assert!(d.pending() <= 100);
            assert!(d.bytes <= 64 * 1024);
        }
        given_up += d.drain().iter().map(|g| g.frames.len()).sum::<usize>();
        assert_eq!(given_up, 100_000, "every fragment is accounted for");
    }

    #[test]
    fn timeout_gives_up_old_datagrams() {
        let mut d = Defrag::new(DefragLimits::default());
        assert!(matches!(
            d.add(key(1), off(0), true, &[0; 8], &[], at(1, 0)),
            Added::Pending
        ));
        assert!(d.expire(29_000_000_000).is_empty());
        let g = d.expire(31_000_000_000);
        assert_eq!(g.len(), 1);
        assert_eq!(d.pending(), 0);
    }
}
