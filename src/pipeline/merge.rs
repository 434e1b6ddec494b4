//! A streaming, deterministic k-way merge of per-file record streams: all the
//! files of a batch become one timeline in capture-time order, without any
//! file being held in memory whole.
//!
//! Each file is decoded sequentially by a *producer* (a closure given by the
//! caller, run on a thread of its own) that emits records in **file order**.
//! Timestamps inside one file are mostly, not strictly, increasing. The merged
//! records are handed to a *consumer* closure on the calling thread.
//!
//! # Ordering
//!
//! 1. **Per file, a reorder buffer** (a min-heap on `(ts, frame, seq)`, ties
//!    broken by arrival) holds every record until the newest timestamp seen so
//!    far in that file is *more than* `reorder_window_ns` past it
//!    (`newest - ts > window`); everything left is released, in heap order, at
//!    the end of the file. This gives the file's *release sequence*. A record
//!    that arrives at most `window` behind the file's newest timestamp so far
//!    ("within the window") is released in time order; so, when every record of
//!    a file is within the window, its release sequence is sorted by
//!    `(ts, frame, seq)`.
//! 2. **Merge time.** Each released record gets a merge time
//!    `m = max(ts, m of the previous released record of that file, floor)`,
//!    where `floor = first_ts - window` for a file with a `first_ts` hint and
//!    `i64::MIN` for a file without one. A record released *out* of order (it
//!    arrived more than `window` late, or it is earlier than the floor) is not
//!    dropped: it keeps its own timestamp in `T` but is merged at the merge time
//!    of the record released just before it in its file (or at the floor) —
//!    it comes out late, at a place fixed by the file contents alone.
//! 3. **Across files**, the output is the concatenation of the release
//!    sequences in file-index order, **stably sorted by `(m, file index)`**.
//!    Within a file, merge times never decrease, so this is also what a k-way
//!    merge popping the smallest `(m, file index)` head produces, which is how
//!    it is computed.
//!
//! **Guarantee.** When every record of every file is within the window and no
//! earlier than its file's `first_ts - window`, then `m = ts` for all of them
//! and the output is exactly the records sorted by `(ts, file index, frame,
//! seq)`. Otherwise it is still a pure function of the inputs (the records in
//! file order, the hints and the window): identical whatever `prefetch`,
//! `batch`, `channel_batches` and thread timing are. The tests check the
//! threaded merge against a single-threaded implementation of the definition
//! above, written independently of it (`reference` in the tests).
//!
//! # Opening files
//!
//! Files are *needed* in the order of `(floor, file index)`; files without a
//! hint have the floor `i64::MIN`, so they are needed first (they may still
//! produce records, and their producer's result is wanted anyway). A file is
//! made part of the merge (its head is fetched) before the merge emits any
//! record whose `(m, file)` is above the file's `(floor, file)`; no record of
//! the file can be below that, since every merge time of a file is at least
//! its floor. So a file is always opened before the merge passes its
//! `first_ts` hint (by `window`, even). Up to `prefetch` files beyond the
//! needed ones are started ahead, in the same order, so decoding overlaps; a
//! started file only fills its channel and waits. Prefetching changes when
//! threads start, never which heads the merger compares: the merger looks at a
//! file only once it is needed.
//!
//! # Threads and deadlock freedom
//!
//! Every started file has its own thread (`std::thread::scope`), its own
//! reorder buffer (on that thread) and its own bounded channel
//! (`std::sync::mpsc::sync_channel` of `channel_batches` messages of up to
//! `batch` records). A producer blocks only on its own channel; the merger
//! blocks only on the channel of a needed file, whose producer is running and
//! either sends or ends (dropping its sender). So no cycle of waits exists,
//! whatever `prefetch` is (0 included). Every file becomes needed before the
//! merge ends, so every channel is drained and every thread joined.
//!
//! A producer that panics drops its sender; the merger notices when it reaches
//! that file's end of stream, joins the thread and resumes the panic on the
//! calling thread (records of that file received before the panic have been
//! consumed by then). If the consumer panics (or a producer panic is being
//! propagated), the receivers are dropped, producers still running discard
//! what they emit until their `produce` returns, and the panic propagates once
//! they are joined. Files not yet started are never started.
//!
//! # Memory
//!
//! Per started, unfinished file: at most `channel_batches + 2` batches of
//! `batch` records (the channel, the batch being filled, the batch being
//! merged) plus the reorder buffer, which holds the records within `window`
//! of the file's newest timestamp. Started files are the needed files whose
//! stream has not ended plus at most `prefetch` more, so memory is
//! O(files open × (channel_batches × batch + window contents)), not O(input).
//! The merger itself keeps a few words per input file.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::mem;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{self, ScopedJoinHandle};

use crate::blocks::Blocks;

/// A record with a place on the capture timeline.
pub trait Timed {
    /// `(capture time in ns since the epoch, frame number in its file,
    /// sequence number within the frame)`: the order within one file.
    fn order(&self) -> (i64, u64, u32);
}

/// How many records behind the one consumed the merge hands its consumer a
/// record as `soon`, for the consumer to prefetch what consuming it reads
/// (its heap parts, its retransmission slot); the merge prefetches the
/// record's own lines twice as far ahead, so that the consumer finds them
/// in the cache.
const AHEAD: usize = 4;

/// Tuning of [`merge`]. None of these changes the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergeOptions {
    /// How far (ns) a record may arrive behind the newest timestamp of its
    /// file and still come out in time order. Negative values count as 0.
    /// Default 2 s.
    pub reorder_window_ns: i64,
    /// Records per channel message (0 counts as 1). Default 1024.
    pub batch: usize,
    /// Messages each file's channel holds before its producer blocks
    /// (0: every send waits for the merger). Default 8.
    pub channel_batches: usize,
    /// Files that may be decoding ahead of need (the caller passes `--jobs`);
    /// 0 starts a file only when the merge needs it. Default 1.
    pub prefetch: usize,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions {
            reorder_window_ns: 2_000_000_000,
            batch: 1024,
            channel_batches: 8,
            prefetch: 1,
        }
    }
}

/// Merges the record streams of `first_ts.len()` files into one timeline
/// (see the module documentation for the exact order).
///
/// - `first_ts[i]`: file `i`'s hint, the timestamp of its first packet
///   ([`crate::capture::first_timestamp`]); `None` when it has no packets or
///   is unreadable (the file is then run first).
/// - `produce(i, emit)`: decodes file `i` on a thread of its own, calling
///   `emit(record)` in file order, and returns the file's result.
/// - `consume(i, record, soon)`: called on the calling thread for every
///   record of every file, in merged order; `soon` is the record a few
///   places behind it in the same file's buffer (when the file has one
///   decoded), consumed later, for prefetching what its consumption reads.
///
/// Returns the producers' results in file-index order. A panic in a producer
/// or in `consume` propagates to the caller.
pub fn merge<T, R, P, C>(
    first_ts: &[Option<i64>],
    opts: &MergeOptions,
    produce: P,
    mut consume: C,
) -> Vec<R>
where
    T: Timed + Send,
    R: Send,
    P: Fn(usize, &mut (dyn FnMut(T) + Send)) -> R + Sync,
    C: FnMut(usize, T, Option<&T>),
{
    let window = opts.reorder_window_ns.max(0);
    let mut plan = Plan::new(first_ts, window);
    let produce = &produce;
    thread::scope(|s| {
        let mut files = Files::new(first_ts.len());
        // Heads of the needed files whose stream has not ended: (m, file).
        let mut heads: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
        loop {
            while let Some(j) = plan.next_needed(heads.peek().map(|r| r.0)) {
                while let Some(i) = plan.next_to_start(opts.prefetch) {
                    files.start(s, i, plan.floors[i], window, opts, produce);
                }
                if let Some(m) = files.head(j) {
                    heads.push(Reverse((m, j)));
                }
            }
            let Some(Reverse((_, f))) = heads.pop() else {
                break;
            };
            let (_, rec) = files.cur[f].pop_front().expect("a head was fetched");
            let next = &files.cur[f];
            if let Some((_, r)) = next.get(2 * AHEAD) {
                crate::prefetch::value(r);
            }
            consume(f, rec, next.get(AHEAD).map(|(_, r)| r));
            if let Some(m) = files.head(f) {
                heads.push(Reverse((m, f)));
            }
        }
        files
            .result
            .into_iter()
            .map(|r| r.expect("every file is needed and joined before the merge ends"))
            .collect()
    })
}

/// Which file the merge needs next, and which files are started: files
/// become needed in the order of their floors, and each needed file starts
/// with up to `prefetch` files after it.
struct Plan {
    /// Each file's floor: its first timestamp less the window.
    floors: Vec<i64>,
    /// The order in which files become needed (and are started).
    need_order: Vec<usize>,
    /// Prefix of `need_order` with a thread.
    started: usize,
    /// Prefix of `need_order` in the merge.
    needed: usize,
}

impl Plan {
    fn new(first_ts: &[Option<i64>], window: i64) -> Plan {
        let floors: Vec<i64> = first_ts
            .iter()
            .map(|h| h.map_or(i64::MIN, |t| t.saturating_sub(window)))
            .collect();
        let mut need_order: Vec<usize> = (0..floors.len()).collect();
        need_order.sort_by_key(|&i| (floors[i], i));
        Plan {
            floors,
            need_order,
            started: 0,
            needed: 0,
        }
    }

    /// The next file the merge needs, given the smallest head `(m, file)`
    /// of the files in it: one whose floor comes before that head (every
    /// remaining file when there is no head).
    fn next_needed(&mut self, head: Option<(i64, usize)>) -> Option<usize> {
        let j = *self.need_order.get(self.needed)?;
        if head.is_some_and(|h| (self.floors[j], j) >= h) {
            return None;
        }
        self.needed += 1;
        Some(j)
    }

    /// The next file to start: the needed ones, and `prefetch` beyond them.
    fn next_to_start(&mut self, prefetch: usize) -> Option<usize> {
        let want = self
            .needed
            .saturating_add(prefetch)
            .min(self.need_order.len());
        (self.started < want).then(|| {
            self.started += 1;
            self.need_order[self.started - 1]
        })
    }
}

/// One channel message: records with their merge times, in release order.
/// Emptied by the merger and sent back, so that a file's batches are
/// allocated once (`channel_batches` + 2 of them), not one per message.
type Batch<T> = VecDeque<(i64, T)>;

/// The merger's side of every file (indexed by file).
struct Files<'scope, T, R> {
    /// Receiving end while the file is started and its stream not ended.
    rx: Vec<Option<Receiver<Batch<T>>>>,
    /// Where emptied batches go back to the file's producer.
    back: Vec<Option<SyncSender<Batch<T>>>>,
    handle: Vec<Option<ScopedJoinHandle<'scope, R>>>,
    result: Vec<Option<R>>,
    /// The batch being merged: `(merge time, record)`.
    cur: Vec<Batch<T>>,
}

impl<'scope, T: Send + 'scope, R: Send + 'scope> Files<'scope, T, R> {
    fn new(n: usize) -> Self {
        Files {
            rx: (0..n).map(|_| None).collect(),
            back: (0..n).map(|_| None).collect(),
            handle: (0..n).map(|_| None).collect(),
            result: (0..n).map(|_| None).collect(),
            cur: (0..n).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Starts file `i`'s producer on a thread of its own: its records go
    /// through a reorder buffer of `window` above `floor`, in batches.
    fn start<'env, P>(
        &mut self,
        s: &'scope thread::Scope<'scope, 'env>,
        i: usize,
        floor: i64,
        window: i64,
        opts: &MergeOptions,
        produce: &'scope P,
    ) where
        P: Fn(usize, &mut (dyn FnMut(T) + Send)) -> R + Sync,
        T: Timed,
    {
        let (tx, rx) = sync_channel(opts.channel_batches);
        // Emptied batches go back to be filled again.
        let (back_tx, back) = sync_channel(opts.channel_batches + 1);
        let batch = opts.batch.max(1);
        let h = crate::threads::scoped(s, crate::threads::FILE, move || {
            let mut out = Batches {
                tx,
                back,
                buf: VecDeque::with_capacity(batch),
                batch,
                closed: false,
            };
            let mut reorder = Reorder::new(window, floor);
            let r = produce(i, &mut |rec| reorder.push(rec, &mut out));
            reorder.finish(&mut out);
            out.flush();
            drop(out); // end of stream, before the result is returned
            r
        });
        self.rx[i] = Some(rx);
        self.back[i] = Some(back_tx);
        self.handle[i] = Some(h);
    }
}

impl<T, R> Files<'_, T, R> {
    /// The merge time of file `i`'s next record, waiting for a batch if
    /// needed; `None` at the end of its stream, when its producer has been
    /// joined (its result stored, or its panic resumed here).
    fn head(&mut self, i: usize) -> Option<i64> {
        loop {
            if let Some(&(m, _)) = self.cur[i].front() {
                return Some(m);
            }
            let batch = self.rx[i].as_ref()?.recv();
            match batch {
                Ok(b) => {
                    let empty = mem::replace(&mut self.cur[i], b);
                    if let Some(back) = self.back[i].as_ref().filter(|_| empty.capacity() > 0) {
                        // Full or gone: the producer allocates instead.
                        let _ = back.try_send(empty);
                    }
                }
                Err(_) => {
                    self.rx[i] = None;
                    self.back[i] = None;
                    let h = self.handle[i].take().expect("a started file has a thread");
                    match h.join() {
                        Ok(r) => self.result[i] = Some(r),
                        Err(payload) => std::panic::resume_unwind(payload),
                    }
                    return None;
                }
            }
        }
    }
}

/// Nanoseconds the decoding threads have waited, in total, for room in their
/// channel to the merge: the time the merge's consumer was the longest path
/// ([`blocked_ns`]). One per process; only a decision reads it.
static BLOCKED_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long the decoding threads have waited for the merge's consumer so
/// far (process-wide; measured only when a channel was full).
pub fn blocked_ns() -> u64 {
    BLOCKED_NS.load(std::sync::atomic::Ordering::Relaxed)
}

/// The producer's side of a file's channel: records in batches.
struct Batches<T> {
    tx: SyncSender<Batch<T>>,
    /// Emptied batches from the merger.
    back: Receiver<Batch<T>>,
    buf: Batch<T>,
    batch: usize,
    /// The merger has gone (it is unwinding): discard everything.
    closed: bool,
}

impl<T> Batches<T> {
    fn push(&mut self, m: i64, rec: T) {
        if self.closed {
            return;
        }
        self.buf.push_back((m, rec));
        if self.buf.len() >= self.batch {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.closed || self.buf.is_empty() {
            return;
        }
        let next = self
            .back
            .try_recv()
            .unwrap_or_else(|_| VecDeque::with_capacity(self.batch));
        let full = mem::replace(&mut self.buf, next);
        let sent = match self.tx.try_send(full) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(full)) => {
                let t0 = std::time::Instant::now();
                let r = self.tx.send(full);
                let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                BLOCKED_NS.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
                r.map_err(|_| ())
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(()),
        };
        if sent.is_err() {
            self.closed = true;
        }
    }
}

/// A record waiting in a reorder buffer.
struct Held<T> {
    /// `(ts, frame, seq, arrival)`: unique within a file.
    key: (i64, u64, u32, u64),
    rec: T,
}

/// Records per block of the reorder buffer: at 2,000 calls/s a file's 2 s
/// window holds about 38,000 records of some 390 bytes, and one ring buffer
/// grown by a quarter at a time copied about five times that while the
/// window first filled (7 % of a 10 s capture's run, on the file's thread
/// while every other thread waited for it), then kept its largest size to
/// the end.
const BLOCK: usize = 1024;

/// One file's reorder buffer and merge-time clock (module doc, steps 1–2).
///
/// The held records are kept sorted by key in ring buffers rather than a
/// binary heap: a file is nearly in time order, so almost every record is
/// appended at the back and released from the front, each moved once in and
/// once out (a heap moves a record log n times, and records are large).
struct Reorder<T> {
    held: Blocks<Held<T>, BLOCK>,
    window: i64,
    newest: i64,
    arrivals: u64,
    /// Merge time of the last released record (the floor before any).
    last_m: i64,
}

impl<T: Timed> Reorder<T> {
    fn new(window: i64, floor: i64) -> Self {
        Reorder {
            held: Blocks::default(),
            window,
            newest: i64::MIN,
            arrivals: 0,
            last_m: floor,
        }
    }

    /// Takes the next record in file order; releases what the window allows.
    fn push(&mut self, rec: T, out: &mut Batches<T>) {
        let (ts, frame, seq) = rec.order();
        self.newest = self.newest.max(ts);
        let key = (ts, frame, seq, self.arrivals);
        self.arrivals += 1;
        // Keys are unique (arrival), so the position is exact.
        self.held.insert(Held { key, rec }, |a, b| a.key < b.key);
        // `newest - ts > window`, without overflow (when `newest - window`
        // saturates at i64::MIN nothing is old enough).
        let limit = self.newest.saturating_sub(self.window);
        while self.held.front().is_some_and(|h| h.key.0 < limit) {
            let h = self.held.pop_front().expect("checked");
            self.release(h, out);
        }
    }

    /// End of file: releases everything held, in order.
    fn finish(&mut self, out: &mut Batches<T>) {
        while let Some(h) = self.held.pop_front() {
            self.release(h, out);
        }
    }

    fn release(&mut self, h: Held<T>, out: &mut Batches<T>) {
        self.last_m = self.last_m.max(h.key.0);
        out.push(self.last_m, h.rec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtOrd};
    use std::time::Duration;

    const S: i64 = 1_000_000_000;

    /// Merged output: (file index, record).
    type Merged = Vec<(usize, Rec)>;
    /// A generated file: `(ts, frame, seq)` records, a time offset, the kind
    /// of hint.
    type RawFile = (Vec<(i64, u64, u32)>, i64, u8);

    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Rec {
        ts: i64,
        frame: u64,
        seq: u32,
        /// Unique per test input, to tell equal-keyed records apart.
        id: u64,
    }

    impl Timed for Rec {
        fn order(&self) -> (i64, u64, u32) {
            (self.ts, self.frame, self.seq)
        }
    }

    /// Records from `(ts, frame, seq)` triples, ids `base..`.
    fn recs(base: u64, v: &[(i64, u64, u32)]) -> Vec<Rec> {
        v.iter()
            .enumerate()
            .map(|(k, &(ts, frame, seq))| Rec {
                ts,
                frame,
                seq,
                id: base + k as u64,
            })
            .collect()
    }

    /// One record per frame, frames numbered from 1, at the given times.
    fn at(base: u64, ts: &[i64]) -> Vec<Rec> {
        let v: Vec<_> = ts
            .iter()
            .enumerate()
            .map(|(k, &t)| (t, k as u64 + 1, 0))
            .collect();
        recs(base, &v)
    }

    fn hints_of(files: &[Vec<Rec>]) -> Vec<Option<i64>> {
        files.iter().map(|f| f.first().map(|r| r.ts)).collect()
    }

    fn opts(window: i64, batch: usize, channel_batches: usize, prefetch: usize) -> MergeOptions {
        MergeOptions {
            reorder_window_ns: window,
            batch,
            channel_batches,
            prefetch,
        }
    }

    /// A deterministic scramble, for timing jitter.
    fn mix(a: u64, b: u64) -> u64 {
        let mut x = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_add(0x632b_e59b_d9b4_e019);
        x ^= x >> 29;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^ (x >> 32)
    }

    /// Runs the threaded merge; `jitter` makes producers yield or sleep at
    /// pseudo-random points (seeded by `seed`). Returns the output and the
    /// per-file results (file index, count emitted).
    fn run(
        files: &[Vec<Rec>],
        hints: &[Option<i64>],
        o: &MergeOptions,
        jitter: Option<u64>,
    ) -> (Merged, Vec<(usize, usize)>) {
        let mut out = Vec::new();
        let res = merge(
            hints,
            o,
            |i, emit| {
                for (k, r) in files[i].iter().enumerate() {
                    if let Some(seed) = jitter {
                        match mix(seed ^ i as u64, k as u64) % 64 {
                            0 => thread::sleep(Duration::from_micros(50)),
                            1..=4 => thread::yield_now(),
                            _ => {}
                        }
                    }
                    emit(r.clone());
                }
                (i, files[i].len())
            },
            |i, r, _| out.push((i, r)),
        );
        (out, res)
    }

    /// The reorder buffer by its definition, independently of `Reorder`: a
    /// record is released once `newest - ts > window` (exact arithmetic), the
    /// smallest `(ts, frame, seq, arrival)` first; the rest at the end.
    fn naive_release(recs: &[Rec], window: i64) -> Vec<Rec> {
        let mut held: Vec<(usize, Rec)> = Vec::new();
        let mut out = Vec::new();
        let mut newest: Option<i64> = None;
        let key = |(a, r): &(usize, Rec)| (r.ts, r.frame, r.seq, *a);
        for (a, r) in recs.iter().enumerate() {
            newest = Some(newest.map_or(r.ts, |n| n.max(r.ts)));
            held.push((a, r.clone()));
            let old_enough = |r: &Rec| newest.unwrap() as i128 - r.ts as i128 > window as i128;
            while let Some(k) = (0..held.len())
                .min_by_key(|&k| key(&held[k]))
                .filter(|&k| old_enough(&held[k].1))
            {
                out.push(held.remove(k).1);
            }
        }
        held.sort_by_key(key);
        out.extend(held.into_iter().map(|(_, r)| r));
        out
    }

    /// The merged order by its definition (module doc): release sequences,
    /// merge times, then a stable sort of the concatenation by (m, file).
    fn reference(files: &[Vec<Rec>], hints: &[Option<i64>], window: i64) -> Vec<(usize, Rec)> {
        let window = window.max(0);
        let mut all = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let mut m = hints[i].map_or(i64::MIN, |h| h.saturating_sub(window));
            for r in naive_release(f, window) {
                m = m.max(r.ts);
                all.push((m, i, r));
            }
        }
        all.sort_by_key(|(m, i, _)| (*m, *i));
        all.into_iter().map(|(_, i, r)| (i, r)).collect()
    }

    fn sorted_by_ts(files: &[Vec<Rec>]) -> Vec<(usize, Rec)> {
        let mut all: Vec<(usize, Rec)> = files
            .iter()
            .enumerate()
            .flat_map(|(i, f)| f.iter().map(move |r| (i, r.clone())))
            .collect();
        all.sort_by_key(|(i, r)| (r.ts, *i, r.frame, r.seq));
        all
    }

    fn ids(v: &[(usize, Rec)]) -> Vec<(usize, u64)> {
        v.iter().map(|(i, r)| (*i, r.id)).collect()
    }

    #[test]
    fn reorder_within_window_restores_time_order() {
        let w = 2 * S;
        // 10.0, 11.5, 10.5 (1 s late), 12.0, 11.9, 13.0 — all within 2 s.
        let f = at(
            0,
            &[
                10 * S,
                11 * S + S / 2,
                10 * S + S / 2,
                12 * S,
                12 * S - S / 10,
                13 * S,
            ],
        );
        let files = vec![f];
        let hints = hints_of(&files);
        let (out, res) = run(&files, &hints, &opts(w, 2, 1, 1), None);
        let ts: Vec<i64> = out.iter().map(|(_, r)| r.ts).collect();
        let mut sorted = ts.clone();
        sorted.sort();
        assert_eq!(ts, sorted);
        assert_eq!(res, vec![(0, 6)]);
        assert_eq!(out, reference(&files, &hints, w));
    }

    #[test]
    fn records_beyond_the_window_come_out_late_not_dropped() {
        let w = S;
        // File 0: 10, 20, 22, then 12 (10 s late: beyond the window, and 20
        // has been released already), 23.
        let f0 = at(0, &[10 * S, 20 * S, 22 * S, 12 * S, 23 * S]);
        // File 1: 15, 20.5.
        let f1 = at(100, &[15 * S, 20 * S + S / 2]);
        let files = vec![f0, f1];
        let hints = hints_of(&files);
        let (out, _) = run(&files, &hints, &opts(w, 1, 0, 0), None);
        // The late 12 s record is merged at the merge time of the record
        // released before it (20 s): after file 1's 15 s and before 20.5 s.
        assert_eq!(
            ids(&out),
            vec![(0, 0), (1, 100), (0, 1), (0, 3), (1, 101), (0, 2), (0, 4)]
        );
        assert_eq!(out[3].1.ts, 12 * S);
        assert_eq!(out, reference(&files, &hints, w));
        // A record beyond the window that is not later than anything released
        // yet still comes out in time order: 10, 20, then 12 while 20 is held.
        let g = vec![at(200, &[10 * S, 20 * S, 12 * S])];
        let (out, _) = run(&g, &hints_of(&g), &opts(w, 1, 0, 0), None);
        assert_eq!(ids(&out), vec![(0, 200), (0, 202), (0, 201)]);
    }

    #[test]
    fn late_record_before_anything_released_comes_out_first_in_its_file() {
        // 100 s then 1 s, window 2 s: the 1 s record is released at once
        // (100 - 1 > 2), before 100 s, but merged no earlier than the floor
        // (hint 100 s - 2 s = 98 s).
        let w = 2 * S;
        let f0 = at(0, &[100 * S, S]);
        let f1 = at(10, &[50 * S, 99 * S]);
        let files = vec![f0, f1];
        let hints = hints_of(&files);
        let (out, _) = run(&files, &hints, &opts(w, 4, 1, 1), None);
        assert_eq!(ids(&out), vec![(1, 10), (0, 1), (1, 11), (0, 0)]);
        assert_eq!(out, reference(&files, &hints, w));
    }

    #[test]
    fn ties_break_on_file_then_frame_then_seq() {
        let t = 5 * S;
        // File 1 emits its frame 2 before frame 1 (same timestamp), and
        // seq 1 before seq 0 within frame 3.
        let f0 = recs(0, &[(t, 7, 0), (t, 7, 1)]);
        let f1 = recs(10, &[(t, 2, 0), (t, 1, 0), (t, 3, 1), (t, 3, 0)]);
        let files = vec![f1.clone(), f0.clone()];
        let (out, _) = run(&files, &hints_of(&files), &opts(S, 1024, 8, 4), None);
        assert_eq!(
            ids(&out),
            vec![(0, 11), (0, 10), (0, 13), (0, 12), (1, 0), (1, 1)]
        );
    }

    #[test]
    fn rotated_files_merge_in_time_order_in_either_naming_order() {
        // Two rotated files of one probe, overlapping by a second, and a third
        // capture point interleaved with both.
        let a = at(0, &(0..300).map(|k| k * S / 10).collect::<Vec<_>>()); // 0..30 s
        let b = at(
            1000,
            &(0..300).map(|k| 29 * S + k * S / 10).collect::<Vec<_>>(),
        ); // 29..59 s
        let c = at(
            2000,
            &(0..600).map(|k| k * S / 10 + S / 20).collect::<Vec<_>>(),
        );
        for files in [
            vec![a.clone(), b.clone(), c.clone()],
            vec![b.clone(), c.clone(), a.clone()],
        ] {
            let hints = hints_of(&files);
            for p in [0, 1, 3] {
                let (out, res) = run(&files, &hints, &opts(2 * S, 16, 2, p), None);
                assert_eq!(out, sorted_by_ts(&files), "prefetch {p}");
                let counts: Vec<usize> = res.iter().map(|r| r.1).collect();
                assert_eq!(counts, files.iter().map(Vec::len).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn empty_files_and_files_without_hints() {
        let w = 2 * S;
        let files = vec![
            at(0, &[5 * S, 6 * S]),
            Vec::new(),              // hint None, emits nothing
            at(10, &[S, 7 * S]),     // hint None (unreadable header?), emits anyway
            Vec::new(),              // a hint, but emits nothing (no SIP)
            at(20, &[4 * S, 5 * S]), // hint far later than its records
        ];
        let hints = vec![Some(5 * S), None, None, Some(3 * S), Some(60 * S)];
        for p in [0, 1, 2, 5, 100] {
            let (out, res) = run(&files, &hints, &opts(w, 1, 0, p), Some(p as u64));
            assert_eq!(out, reference(&files, &hints, w), "prefetch {p}");
            assert_eq!(res, vec![(0, 2), (1, 0), (2, 2), (3, 0), (4, 2)]);
        }
        // File 4's records are clamped to its floor (58 s): last.
        let (out, _) = run(&files, &hints, &MergeOptions::default(), None);
        assert_eq!(
            ids(&out),
            vec![(2, 10), (0, 0), (0, 1), (2, 11), (4, 20), (4, 21)]
        );
        // No file at all.
        let none: Vec<Vec<Rec>> = Vec::new();
        let (out, res) = run(&none, &[], &MergeOptions::default(), None);
        assert!(out.is_empty() && res.is_empty());
    }

    /// Many files, thousands of records each, tiny channels: producers really
    /// block; the output is the same for every prefetch, batch and timing.
    #[test]
    fn identical_output_for_every_prefetch_batch_and_timing() {
        let w = 2 * S;
        let nfiles = 7;
        let files: Vec<Vec<Rec>> = (0..nfiles)
            .map(|i| {
                let mut t = (i as i64 % 3) * 20 * S; // overlapping ranges
                let mut v = Vec::new();
                for k in 0..3000u64 {
                    let r = mix(i as u64, k);
                    t += (r % 50_000_000) as i64;
                    let ts = match r % 97 {
                        0 => t - 5 * S,                           // beyond the window
                        1..=20 => t - (r >> 20) as i64 % (2 * S), // within it
                        _ => t,
                    };
                    let frame = k / 2 + 1;
                    v.push((ts, frame, (k % 2) as u32));
                }
                recs(i as u64 * 100_000, &v)
            })
            .collect();
        let mut hints = hints_of(&files);
        hints[5] = None;
        let want = reference(&files, &hints, w);
        assert_eq!(want.len(), nfiles * 3000);
        for (p, b, c) in [
            (1, 1024, 8),
            (8, 1024, 8),
            (nfiles, 3, 1),
            (0, 1, 0),
            (2, 64, 0),
        ] {
            for seed in [None, Some(1), Some(2)] {
                let (out, res) = run(&files, &hints, &opts(w, b, c, p), seed);
                assert!(
                    out == want,
                    "prefetch {p} batch {b} channel {c} seed {seed:?}"
                );
                assert_eq!(res, (0..nfiles).map(|i| (i, 3000)).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn files_are_opened_before_the_merge_passes_their_hint() {
        let w = S;
        // Rotated, non-overlapping files named in reverse time order.
        let files: Vec<Vec<Rec>> = (0..6)
            .map(|i| {
                let start = (5 - i) as i64 * 100 * S;
                at(
                    i as u64 * 1000,
                    &(0..50).map(|k| start + k * S).collect::<Vec<_>>(),
                )
            })
            .collect();
        let hints = hints_of(&files);
        for prefetch in [0usize, 1, 2] {
            let started: Vec<AtomicBool> = (0..6).map(|_| AtomicBool::new(false)).collect();
            let max_ahead = AtomicUsize::new(0);
            merge(
                &hints,
                &opts(w, 4, 1, prefetch),
                |i, emit| {
                    started[i].store(true, AtOrd::SeqCst);
                    for r in &files[i] {
                        emit(r.clone());
                    }
                },
                |f, r: Rec, _| {
                    for (j, h) in hints.iter().enumerate() {
                        if (h.unwrap() - w, j) < (r.ts, f) {
                            assert!(
                                started[j].load(AtOrd::SeqCst),
                                "file {j} not open at {}",
                                r.ts
                            );
                        }
                    }
                    // Files needed so far: those whose (floor, index) is at or
                    // below this record; everything else started is ahead.
                    let needed = hints
                        .iter()
                        .enumerate()
                        .filter(|&(j, h)| (h.unwrap() - w, j) <= (r.ts, f))
                        .count();
                    let running = started.iter().filter(|s| s.load(AtOrd::SeqCst)).count();
                    max_ahead.fetch_max(running - needed, AtOrd::SeqCst);
                },
            );
            assert!(
                max_ahead.load(AtOrd::SeqCst) <= prefetch,
                "prefetch {prefetch}"
            );
        }
    }

    fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    }

    /// Runs `f` on another thread; fails the test if it takes over 60 s.
    fn within_a_minute<F: FnOnce() + Send + 'static>(f: F) -> std::thread::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let r = catch_unwind(AssertUnwindSafe(f));
            let _ = tx.send(r);
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("merge hung")
    }

    #[test]
    fn producer_panic_propagates_instead_of_hanging() {
        for prefetch in [0, 1, 4] {
            let r = within_a_minute(move || {
                let files: Vec<Vec<Rec>> = (0..4)
                    .map(|i| {
                        at(
                            i * 10_000,
                            &(0..5000).map(|k| k as i64 * 1000).collect::<Vec<_>>(),
                        )
                    })
                    .collect();
                let hints = hints_of(&files);
                merge(
                    &hints,
                    &opts(S, 8, 1, prefetch),
                    |i, emit| {
                        for (k, r) in files[i].iter().enumerate() {
                            if i == 2 && k == 1234 {
                                panic!("decoder exploded");
                            }
                            emit(r.clone());
                        }
                    },
                    |_, _, _| {},
                );
            });
            let p = r.expect_err("the panic must reach the caller");
            assert_eq!(panic_message(&*p), "decoder exploded");
        }
    }

    #[test]
    fn consumer_panic_propagates_and_blocked_producers_finish() {
        let r = within_a_minute(|| {
            let files: Vec<Vec<Rec>> = (0..5)
                .map(|i| {
                    at(
                        i * 10_000,
                        &(0..5000).map(|k| k as i64 * 1000).collect::<Vec<_>>(),
                    )
                })
                .collect();
            let hints = hints_of(&files);
            let mut seen = 0;
            merge(
                &hints,
                &opts(S, 4, 1, 5),
                |i, emit| {
                    for r in &files[i] {
                        emit(r.clone());
                    }
                },
                |_, _: Rec, _| {
                    seen += 1;
                    if seen == 777 {
                        panic!("consumer gave up");
                    }
                },
            );
        });
        assert_eq!(
            panic_message(&*r.expect_err("must panic")),
            "consumer gave up"
        );
    }

    #[test]
    fn results_come_back_in_file_order_whatever_finishes_first() {
        let files: Vec<Vec<Rec>> = (0..5).map(|i| at(i * 10, &[i as i64 * S])).collect();
        let res = merge(
            &hints_of(&files),
            &opts(S, 1, 1, 5),
            |i, emit| {
                thread::sleep(Duration::from_millis(10 * (5 - i as u64)));
                emit(files[i][0].clone());
                format!("file {i}")
            },
            |_, _, _| {},
        );
        assert_eq!(res, (0..5).map(|i| format!("file {i}")).collect::<Vec<_>>());
    }

    /// A file's records in file order: a random walk with small steps back
    /// (within the window) and occasional big ones (beyond it); several
    /// records per frame; sometimes equal timestamps and keys.
    fn file_strategy(window: i64) -> impl Strategy<Value = Vec<(i64, u64, u32)>> {
        prop::collection::vec((0u8..100, 0i64..=3 * window.max(1), 0u8..3), 0..120).prop_map(
            move |steps| {
                let mut t = 0i64;
                let mut frame = 1u64;
                let mut seq = 0u32;
                steps
                    .into_iter()
                    .map(|(kind, d, next)| {
                        let ts = match kind {
                            0..=59 => {
                                t += d / 3;
                                t
                            }
                            60..=84 => t - d / 3 % (window + 1), // within the window
                            85..=94 => t - d - window - 1,       // beyond it
                            _ => t,                              // duplicate time
                        };
                        let r = (ts, frame, seq);
                        if next == 0 {
                            seq += 1;
                        } else {
                            frame += 1;
                            seq = 0;
                        }
                        r
                    })
                    .collect()
            },
        )
    }

    fn case_strategy() -> impl Strategy<Value = (i64, Vec<RawFile>, MergeOptions)> {
        (0i64..=50).prop_flat_map(|window| {
            (
                Just(window),
                // Per file: records, a start offset, and the hint kind.
                prop::collection::vec((file_strategy(window), -200i64..200, 0u8..4), 0..6),
                (1usize..6, 0usize..3, 0usize..7).prop_map(move |(b, c, p)| opts(window, b, c, p)),
            )
        })
    }

    fn build(raw: &[RawFile]) -> (Vec<Vec<Rec>>, Vec<Option<i64>>) {
        let files: Vec<Vec<Rec>> = raw
            .iter()
            .enumerate()
            .map(|(i, (v, off, _))| {
                let v: Vec<_> = v.iter().map(|&(t, f, s)| (t + off, f, s)).collect();
                recs(i as u64 * 1000, &v)
            })
            .collect();
        let hints = raw
            .iter()
            .zip(&files)
            .map(|((_, off, kind), f)| match kind {
                0 => None,
                1 => Some(off - 77), // a hint that is not the first record
                _ => f.first().map(|r| r.ts),
            })
            .collect();
        (files, hints)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// The threaded merge equals the definition, for any data, hints,
        /// window and tuning.
        #[test]
        fn prop_merge_equals_reference((window, raw, o) in case_strategy(), seed in any::<u64>()) {
            let (files, hints) = build(&raw);
            let want = reference(&files, &hints, window);
            let (out, res) = run(&files, &hints, &o, Some(seed));
            prop_assert_eq!(&out, &want);
            let (out1, _) = run(&files, &hints, &opts(window, 1024, 8, 1), None);
            prop_assert_eq!(&out1, &want);
            prop_assert_eq!(res, files.iter().enumerate().map(|(i, f)| (i, f.len())).collect::<Vec<_>>());
        }

        /// When every record is within the window and not before its file's
        /// hint minus the window, the output is simply sorted by
        /// (ts, file, frame, seq).
        #[test]
        fn prop_in_window_data_is_sorted(
            window in 0i64..40,
            raw in prop::collection::vec(
                (prop::collection::vec((0i64..30, 0i64..=40, any::<bool>()), 0..150), -100i64..100),
                0..5,
            ),
            prefetch in 0usize..6,
            batch in 1usize..9,
        ) {
            let files: Vec<Vec<Rec>> = raw
                .iter()
                .enumerate()
                .map(|(i, (steps, start))| {
                    let mut newest = *start;
                    let mut v = Vec::new();
                    for (k, &(step, back, same_frame)) in steps.iter().enumerate() {
                        newest += step;
                        let ts = if k == 0 { newest } else { newest - back % (window + 1) };
                        let frame = if same_frame { (k as u64).max(1) } else { k as u64 + 1 };
                        v.push((ts, frame, k as u32));
                    }
                    recs(i as u64 * 1000, &v)
                })
                .collect();
            let hints = hints_of(&files);
            let (out, _) = run(&files, &hints, &opts(window, batch, 1, prefetch), None);
            prop_assert_eq!(out, sorted_by_ts(&files));
        }
    }
}
