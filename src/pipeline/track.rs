//! The tracking stage: the merged timeline tracked as [`PARTITIONS`]
//! independent partitions, in parallel, with one deterministic result.
//!
//! Owns: sending each record to the partition of its home (the [`Router`]
//! of router.rs decides the home: its partition key,
//! [`crate::dialog::partition_key`], or a B2BUA leg's first leg's), running the partitions' [`Tracker`]s batch by batch (on a rayon
//! pool from `--jobs` [`POOL_FROM_JOBS`] on; at `-j2` on a pool while no
//! session finishes, [`QUIET_COLLECTIONS`], else on this thread), numbering sessions
//! ([`Numbering`]) and merging what the partitions hand back into the one
//! order of a single tracker: messages in feed order, finished sessions with
//! their final ids. Never evaluates rules or writes a report (mod.rs does).
//!
//! Determinism: the number of partitions is fixed (not `--jobs`), each
//! partition sees its records in merged order, and batches are cut every
//! [`BATCH`] records, so what each partition does never depends on threads
//! or input order (while the pool is busy it is handed up to [`ELASTIC`]
//! batches at once, and each partition still tracks them one by one). A
//! partition's tracker hands out provisional session ids
//! (`n * PARTITIONS + index`), each logged with the capture time it was
//! handed out at; at the end of each batch every partition is advanced to
//! the batch's last time `T` ([`Tracker::advance_to`], which fires only the
//! timers the next message would), and every id handed out before `T` gets
//! its final number in the order (time, partition, order in partition).
//! Ids handed out at `T` or later wait for the next batch. So session ids
//! do not depend on how the partitions interleave, and, like one tracker's,
//! follow the capture time at which each session became known.
//!
//! Cross-partition legs: the router (router.rs) gives each record its
//! home key, its own partition key or, for a B2BUA or AS leg, the first
//! leg's; the partition is the home's. A `--partition` run of records cut
//! by `route-records` has the homes already in the records
//! ([`Tracking::routed`]) and does not route again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rayon::prelude::*;

use super::router::{RouteFacts, Router};
use super::{Feed, Finished, Payload};
use crate::dialog::{SessionSummary, SipRecord, TrackAnomaly, Tracker, partition_of};

mod end;

/// Logical partitions: fixed, so that the output is the same for every
/// `--jobs` (16: enough to balance 2–8 threads, few enough that the
/// per-partition state and merge stay small).
pub const PARTITIONS: usize = 16;

/// The `--jobs` from which the partitions run on a pool of their own.
///
/// Below it they run on the calling thread, between the routing of one
/// batch and the next. At `-j2` the other threads are the decoding thread
/// and the rules stage's: a pool of two more threads there made three
/// busy threads share two cores, and the decoding thread, which feeds all
/// of them, got about three quarters of one (`ps -L`). Paired
/// whole-process medians at `-j2`, inline against the pool: wall ×0.92
/// on tcp1000-60s and on udp200-600s (there the pool made `-j2` ×1.14
/// slower than `-j1`, inline ×1.00), ×1.00 on udp2000-60s and the
/// scanner burst; peak RSS 5 to 13 MiB lower on each
/// (docs/perf-history.md).
pub const POOL_FROM_JOBS: usize = 3;

/// At `-j2`, the partitions run on a pool of two while the rules stage has
/// nothing to do: from the first batch, and again after this many
/// collections in a row that finished no session. They come back to the
/// calling thread at the first collection that finishes one.
///
/// A session finishes no sooner than 4 s of capture time after its first
/// message, so every capture starts with the rules stage idle, and a
/// scanner burst (lone INVITEs nobody answers, every one waiting for
/// Timer B) keeps it idle until the end. There the rules stage's core is
/// free and the calling thread, routing and tracking alone, was the
/// longest path (scan10k-20s `-j2` at ac42bad: calling thread busy 100 %,
/// decoding thread about 50 %, rules stage 0 % until the capture's end).
/// Where sessions finish the rules stage takes that core, and a pool made
/// three busy threads share two (docs/DESIGN.md, tenth stop).
pub const QUIET_COLLECTIONS: u32 = 2;

/// Records routed before the partitions run (and rows are collected).
const BATCH: usize = 4096;

/// How many batches the pool may be handed at once: while one is still
/// running there, the calling thread cuts the next at [`BATCH`] records
/// ([`Cut`]) and routes on, up to this many, instead of waiting.
///
/// Where the pool is the slower side (the scanner burst at `-j2`), the
/// calling thread waited for it with a full batch, the decoding thread
/// waited for the calling thread, and when the pool's last partitions
/// kept one of its threads busy, the other core had nothing to run.
/// Routing on meanwhile keeps the decoding thread going. Each partition
/// still tracks every batch to its own last time before the next one
/// ([`Part::run`]), so it does exactly what it does one batch at a time.
/// Paired whole-process medians of 11 on scan10k-20s `-j2`: wall ×0.972,
/// peak +6 MiB (4 at once: ×0.99 against 2, +27 MiB); udp2000-60s `-j2`
/// ×0.983 (7 pairs); tcp1000-60s within noise.
const ELASTIC: usize = 2;

/// Where a batch ends inside the records handed to the pool at once: each
/// partition `i` tracks its records up to `ends[i]`, then lets time run to
/// `t` and spills sessions idle since before `freeze` ([`Part::run`]).
struct Cut {
    t: i64,
    ends: Vec<usize>,
    freeze: Option<i64>,
}

/// Sessions finalised at a time at the end of a capture
/// ([`Tracking::finish`]); `SIPAUDIT_FINISH_STEP` overrides it, 0 for all
/// at once as one tracker would (tests compare the two).
///
/// 1,024: since cold sessions are finalised without being indexed again,
/// the end of the scanner burst (200,000 open sessions) is bound by the
/// rules stage at `-j2`, and steps of 4,096 waited in its channel (4
/// steps). Against 4,096, paired medians of 7 on scan10k-20s: `-j2` wall
/// ×0.965, CPU ×0.974, peak 197 → 180 MiB; `-j1` pinned ×0.980;
/// udp2000-60s `-j2` ×1.003. 512 gave the same as 1,024.
const FINISH_STEP: usize = 1024;

/// How long a lone request must have waited before it may go cold under
/// the memory budget (2 s: a request that gets an answer at all gets its
/// first one well before).
const COLD_AGE_NS: i64 = 2_000_000_000;

/// Records per batch: [`BATCH`], or `SIPAUDIT_TRACK_BATCH` (tests run
/// small captures in many batches with it; the output does not depend on
/// it).
fn batch_size() -> usize {
    super::env_number("SIPAUDIT_TRACK_BATCH")
        .filter(|&n| n > 0)
        .unwrap_or(BATCH)
}

/// The memory budget (`--memory`): above a quarter of it (resident memory
/// of the process), each batch sends the partitions' waiting sessions idle
/// for [`COLD_AGE_NS`] to their spill files (`dialog/tracker/cold.rs`); a
/// quarter, because everything else that grows with the rate (reorder
/// windows, retransmission keys, messages waiting for their session,
/// report.html's ladders, the spilled sessions' own index and timers) keeps
/// growing after spilling starts: from half, the scanner burst at -j2
/// peaked at 260 MB (268 MB gzipped) in the benchmark; from a quarter at
/// 241-245 MB. With
/// `SIPAUDIT_COLD=always` every batch freezes whatever may go cold,
/// whatever the memory (the tests' way to show the output does not change).
struct Budget {
    bytes: u64,
    always: bool,
}

/// Resident memory of this process (Linux: /proc/self/statm, pages of 4 KiB);
/// `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn finish_step() -> Option<usize> {
    let step = super::env_number("SIPAUDIT_FINISH_STEP").unwrap_or(FINISH_STEP);
    (step > 0).then_some(step)
}

/// The tracking stage; see the module documentation.
pub struct Tracking {
    parts: Vec<Part>,
    /// `None`: the records carry their homes already ([`Tracking::routed`]).
    router: Option<Router>,
    /// Records routed to each partition since the last batch ran.
    batch: Batch,
    batched: usize,
    /// Capture time of the last record routed.
    last_ts: i64,
    /// Feed order of the next record.
    fed: u64,
    pool: Option<rayon::ThreadPool>,
    /// Threads of the pool (0: none). Below [`POOL_FROM_JOBS`] it is
    /// started when the partitions go to it and ended when they come back:
    /// a pool that sat idle kept the memory its threads had allocated from
    /// (mimalloc's heaps are per thread; 9 to 24 MiB more peak RSS on the
    /// call captures, whose first seconds ran on it).
    pool_threads: usize,
    /// The pool runs every batch (`--jobs` [`POOL_FROM_JOBS`] on); below,
    /// only while the rules stage is idle ([`QUIET_COLLECTIONS`]).
    always_pool: bool,
    /// The batch being routed goes to the pool (records wait in `batch`)
    /// rather than straight to the partitions on this thread.
    pooled: bool,
    /// Collections in a row that finished no session.
    quiet: u32,
    /// Batches run on this thread and on the pool.
    runs: [u64; 2],
    /// The batch running on the pool while the next one is routed
    /// (with a pool): the partitions come back through it, with the
    /// batch's last capture time.
    running: Option<(std::sync::mpsc::Receiver<std::thread::Result<Ran>>, i64)>,
    /// What the running batch sent back, when [`Tracking::push`] found it
    /// done before [`Tracking::wait`] asked.
    ran: Option<std::thread::Result<Ran>>,
    /// The batches cut in the records routed so far, while the pool was
    /// busy ([`ELASTIC`]).
    cuts: Vec<Cut>,
    /// Batches the pool may be handed at once ([`ELASTIC`]; tests set 1).
    elastic: usize,
    /// The pool counts as busy while it has a batch, done or not, so that
    /// batches are cut and handed over `elastic` at a time:
    /// `SIPAUDIT_TRACK_CUT=always` (the tests' way to show that the output
    /// does not change).
    always_cut: bool,
    /// The emptied batch vectors of the last batch that ran on the pool,
    /// for the next one: two sets in all, allocated once.
    spare: Option<Batch>,
    numbering: Numbering,
    /// Finished sessions waiting for a final id (theirs or a related one).
    pending: Vec<SessionSummary>,
    /// The partitions' first handed-back messages, (feed order, partition),
    /// kept between batches for its buffer ([`Tracking::messages`]).
    heads: BinaryHeap<Reverse<(u64, usize)>>,
    /// Whether messages are handed back (messages.csv or report.html).
    keep_messages: bool,
    /// Records per batch ([`batch_size`]).
    batch_size: usize,
    budget: Option<Budget>,
}

/// The records routed to one partition, in merged order.
type Routed = Vec<(SipRecord, Payload)>;

/// Records routed to each partition, in partition order.
type Batch = Vec<Routed>;

/// What a batch run on the pool hands back: the partitions, and the batch's
/// vectors, emptied.
type Ran = (Vec<Part>, Batch);

/// One partition: its tracker and what it handed back in the last batch.
struct Part {
    tracker: Tracker<Payload>,
    /// Messages handed back with their provisional session id, feed order.
    out: VecDeque<(Payload, Option<u64>)>,
    finished: Vec<SessionSummary>,
    anomalies: Vec<TrackAnomaly>,
    /// (time, provisional id) not numbered yet, in hand-out order.
    assigned: VecDeque<(i64, u64)>,
    /// Feed order of the oldest message still held by the tracker.
    front: Option<u64>,
}

impl Part {
    /// Feeds partition `i`'s records of one or more batches (none without
    /// a pool: [`Tracking::push`] fed each record at once), batch by batch:
    /// each batch's records, then time runs to its last time, what is ready
    /// is taken, and sessions idle since before its `freeze` go to the spill
    /// files.
    fn run(&mut self, i: usize, records: &mut Routed, cuts: &[Cut], keep: bool) {
        let mut records = records.drain(..);
        let mut fed = 0;
        for cut in cuts {
            for (rec, payload) in records.by_ref().take(cut.ends[i] - fed) {
                self.tracker.push(rec, payload, mark);
            }
            fed = cut.ends[i];
            self.tracker.advance_to(cut.t);
            self.take(keep);
            if let Some(before) = cut.freeze {
                self.tracker.freeze_idle(before);
            }
        }
    }

    fn take(&mut self, keep: bool) {
        let out = &mut self.out;
        self.tracker.drain(|p, sid| {
            if keep {
                out.push_back((p, sid));
            }
        });
        self.finished.append(&mut self.tracker.take_finished());
        self.anomalies.append(&mut self.tracker.take_anomalies());
        self.assigned.extend(self.tracker.take_assigned());
        self.front = self.tracker.queue_front().map(|p| p.seq);
    }
}

/// The tracking pool: `n` threads, or `None` when none can be started (the
/// partitions then run on the calling thread).
fn build_pool(n: usize) -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(crate::threads::track)
        .build()
        .ok()
}

/// Marks a message's payload with what the tracker found (rules.md §A.2).
fn mark(p: &mut Payload, repeat: bool) {
    if let Some(r) = p.row.as_mut() {
        r.retransmission = Some(repeat);
    }
    p.repeat = repeat;
}

impl Tracking {
    /// A stage with W0 `w0_ns`, on `jobs` threads.
    pub fn new(w0_ns: i64, jobs: usize, keep_messages: bool) -> Tracking {
        let always_pool = jobs >= POOL_FROM_JOBS;
        let pool_threads = if jobs >= 2 { jobs.min(PARTITIONS) } else { 0 };
        let pool = (jobs >= 2).then(|| build_pool(pool_threads)).flatten();
        Tracking {
            parts: (0..PARTITIONS)
                .map(|i| Part {
                    tracker: Tracker::partition(w0_ns, i as u32, PARTITIONS as u32),
                    out: VecDeque::new(),
                    finished: Vec::new(),
                    anomalies: Vec::new(),
                    assigned: VecDeque::new(),
                    front: None,
                })
                .collect(),
            router: Some(Router::new(w0_ns)),
            batch: (0..PARTITIONS).map(|_| Vec::new()).collect(),
            batched: 0,
            last_ts: i64::MIN,
            fed: 0,
            pooled: pool.is_some(),
            pool,
            pool_threads,
            always_pool,
            quiet: QUIET_COLLECTIONS,
            runs: [0; 2],
            running: None,
            ran: None,
            cuts: Vec::new(),
            elastic: ELASTIC,
            always_cut: std::env::var("SIPAUDIT_TRACK_CUT").is_ok_and(|v| v == "always"),
            spare: None,
            numbering: Numbering::default(),
            pending: Vec::new(),
            heads: BinaryHeap::new(),
            keep_messages,
            batch_size: batch_size(),
            budget: None,
        }
    }

    /// Keeps the run within `bytes` of memory ([`Budget`]): the partitions'
    /// spill files go to `dir` (the run's temporary directory; hidden
    /// names, removed when the run ends).
    pub fn memory_budget(&mut self, dir: &std::path::Path, bytes: u64) {
        for (i, p) in self.parts.iter_mut().enumerate() {
            p.tracker.cold_storage(dir, &format!(".sipaudit-cold-p{i}"));
        }
        self.budget = Some(Budget {
            bytes,
            always: std::env::var("SIPAUDIT_COLD").is_ok_and(|v| v == "always"),
        });
    }

    /// Waiting sessions that were kept in spill files, in total.
    pub fn cold_sessions(&self) -> u64 {
        self.parts.iter().map(|p| p.tracker.cold_counts().1).sum()
    }

    /// The first read error of a spill file (a session was lost: the run
    /// fails); write errors only stop the spilling and are printed here.
    pub fn take_cold_error(&mut self) -> Option<(std::path::PathBuf, std::io::Error)> {
        for p in &mut self.parts {
            if let Some((path, e)) = p.tracker.take_cold_warning() {
                eprintln!(
                    "sipaudit: warning: {}: cannot write: {e}; waiting sessions were kept in memory",
                    path.display()
                );
            }
        }
        self.parts
            .iter_mut()
            .find_map(|p| p.tracker.take_cold_error())
    }

    /// The records' partition keys are their homes already (a partition of
    /// records cut by `route-records`): no routing, since a partition alone
    /// cannot see the other legs the router would need.
    pub fn routed(&mut self) {
        self.router = None;
    }

    /// Feed order for the next record's payload.
    pub fn next_seq(&self) -> u64 {
        self.fed
    }

    /// A hint that `rec` is pushed a few records from now: prefetches where
    /// its partition (its own, as the router sends nearly every record)
    /// looks its retransmission key up.
    pub fn soon(&self, rec: &SipRecord) {
        if !self.pooled {
            let p = partition_of(rec.partition, PARTITIONS);
            self.parts[p].tracker.soon(rec);
        }
    }

    /// Routes the next record in merged order; returns whether a batch is
    /// ready to [`Tracking::run_batch`]: at the batch size, or while a
    /// batch is still running on the pool, when it is back or at
    /// [`ELASTIC`] times the size.
    pub fn push(&mut self, rec: SipRecord, payload: Payload) -> bool {
        debug_assert_eq!(payload.seq, self.fed);
        self.fed += 1;
        self.last_ts = self.last_ts.max(rec.at.ts_ns);
        let home = match &mut self.router {
            Some(r) => r.route(&RouteFacts::of(&rec)),
            None => rec.partition,
        };
        let p = partition_of(home, PARTITIONS);
        if self.pooled {
            self.batch[p].push((rec, payload));
        } else {
            // The batch would run on this thread anyway: the record goes to
            // its partition now, while it is in the cache. Each partition
            // sees the same pushes in the same order, and time runs on when
            // the batch does ([`Part::run`]).
            self.parts[p].tracker.push(rec, payload, mark);
        }
        self.batched += 1;
        if self.batched % self.batch_size != 0 {
            return false;
        }
        if self.pooled && self.batched < self.batch_size * self.elastic && self.pool_busy() {
            self.cuts.push(self.cut(self.last_ts));
            return false;
        }
        true
    }

    /// A batch ending here, at time `t`.
    fn cut(&self, t: i64) -> Cut {
        Cut {
            t,
            ends: self.batch.iter().map(Vec::len).collect(),
            freeze: None,
        }
    }

    /// The batches in the records routed so far, the last one ending
    /// with them, each with its memory-budget spilling decided now.
    fn take_cuts(&mut self) -> Vec<Cut> {
        let last = self.cut(self.last_ts);
        let mut cuts = std::mem::take(&mut self.cuts);
        cuts.push(last);
        let age = self.spill_age();
        for c in &mut cuts {
            c.freeze = age.map(|a| c.t.saturating_sub(a));
        }
        cuts
    }

    /// Whether a batch is running on the pool and has not sent its
    /// partitions back yet.
    fn pool_busy(&mut self) -> bool {
        let Some((rx, _)) = self.running.as_ref() else {
            return false;
        };
        if self.always_cut {
            return true;
        }
        if self.ran.is_some() {
            return false;
        }
        match rx.try_recv() {
            Ok(r) => {
                self.ran = Some(r);
                false
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => true,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => false,
        }
    }

    /// Runs the partitions over the routed records, numbers what can be
    /// numbered and hands `then` the stage to collect from.
    ///
    /// With a pool ([`POOL_FROM_JOBS`]) the batches are pipelined: this waits for
    /// the batch still running, numbers it, lets `then` collect it, and
    /// starts this one on the pool, so that the next batch is routed (and
    /// report.html's ladders are fed) while the partitions track this one.
    /// What `then` sees is what it would see right after that batch ran:
    /// the output does not change, only when it is written.
    ///
    /// Below [`POOL_FROM_JOBS`], whether the next batch goes to the pool is
    /// decided here ([`QUIET_COLLECTIONS`]); before one is routed on this
    /// thread, the one on the pool is waited for and collected.
    pub fn run_batch(&mut self, then: &mut dyn FnMut(&mut Tracking)) {
        self.runs[usize::from(self.pooled)] += 1 + self.cuts.len() as u64;
        if self.pooled {
            self.spawn_batch(then);
        } else {
            self.run_here();
            then(self);
        }
        let next = self.pool_threads > 0 && (self.always_pool || self.quiet >= QUIET_COLLECTIONS);
        if !next && self.wait() {
            then(self);
        }
        if !next && !self.always_pool {
            self.pool = None;
        } else if next && self.pool.is_none() {
            self.pool = build_pool(self.pool_threads);
        }
        self.pooled = next && self.pool.is_some();
    }

    /// [`Tracking::run_batch`] on the pool: waits for the batch still
    /// running, lets `then` collect it, and starts this one.
    fn spawn_batch(&mut self, then: &mut dyn FnMut(&mut Tracking)) {
        let keep = self.keep_messages;
        let cuts = self.take_cuts();
        let t = self.last_ts;
        self.batched = 0;
        let running = self.wait();
        if running {
            then(self);
        }
        // The routed records go to the pool; the next ones are routed into
        // the vectors of the batch that just came back.
        let fresh = match self.spare.take() {
            Some(spare) => spare,
            None => self
                .batch
                .iter()
                .map(|b| Vec::with_capacity(b.capacity()))
                .collect(),
        };
        let mut batch = std::mem::replace(&mut self.batch, fresh);
        let mut parts = std::mem::take(&mut self.parts);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let pool = self.pool.as_ref().expect("checked above");
        pool.spawn(move || {
            // A panic goes back with the partitions and is resumed on the
            // calling thread, as `install` would (rayon aborts the process
            // on a panic in a spawned job).
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                parts
                    .par_iter_mut()
                    .zip(batch.par_iter_mut())
                    .enumerate()
                    .for_each(|(i, (p, b))| p.run(i, b, &cuts, keep));
                (parts, batch)
            }));
            // The receiver lives as long as the stage; a send can fail only
            // while it unwinds from another panic.
            let _ = tx.send(ran);
        });
        self.running = Some((rx, t));
    }

    /// Waits for the batch running on the pool, if any, and numbers it;
    /// returns whether there was one.
    fn wait(&mut self) -> bool {
        let Some((rx, t)) = self.running.take() else {
            return false;
        };
        let ran = match self.ran.take() {
            Some(r) => Ok(r),
            None => rx.recv(),
        };
        (self.parts, self.spare) = match ran {
            Ok(Ok((parts, batch))) => (parts, Some(batch)),
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => unreachable!("the batch's job sends before it ends"),
        };
        self.numbering.number(&mut self.parts, Some(t));
        true
    }

    /// Runs the routed records now (in parallel on the pool from
    /// [`POOL_FROM_JOBS`] on, else on this thread) and numbers what can be
    /// numbered.
    fn run_here(&mut self) {
        let (t, keep) = (self.last_ts, self.keep_messages);
        let cuts = self.take_cuts();
        let run = |(i, (p, b)): (usize, (&mut Part, &mut Routed))| p.run(i, b, &cuts, keep);
        match self.pool.as_ref().filter(|_| self.always_pool) {
            Some(pool) => pool.install(|| {
                self.parts
                    .par_iter_mut()
                    .zip(self.batch.par_iter_mut())
                    .enumerate()
                    .for_each(run)
            }),
            None => self
                .parts
                .iter_mut()
                .zip(self.batch.iter_mut())
                .enumerate()
                .for_each(run),
        }
        self.batched = 0;
        self.numbering.number(&mut self.parts, Some(t));
    }

    /// Under the memory budget: how long a session must have been idle at
    /// the end of a batch to go to the spill files ([`Budget`]; read once
    /// for the batches handed over together); `None`: nothing goes.
    fn spill_age(&self) -> Option<i64> {
        self.budget.as_ref().and_then(|b| {
            if b.always {
                Some(0)
            } else {
                resident_bytes()
                    .is_some_and(|r| r > b.bytes / 4)
                    .then_some(COLD_AGE_NS)
            }
        })
    }

    /// Ends the batch at `end_ns` (see [`Tracker::finish`]) and hands `send`
    /// what is finished, the last time with everything.
    ///
    /// Every session still open at the end of a capture finishes now (all
    /// 200,000 of a scanner burst's unanswered INVITEs). They are finalised
    /// and handed over in steps of [`FINISH_STEP`] sessions, so that the
    /// rules stage frees each step's state before the next is built. The ids
    /// come out as in one pass: every id handed out before `end_ns` is
    /// numbered first; the rest are all handed out at `end_ns`, where the
    /// order (time, partition, order in partition) is partition after
    /// partition. When finishing hands out none (every open session has its
    /// id, as after [`Tracker::finish_prepare`] nearly always), they are
    /// numbered at once and the steps go round the partitions (end.rs);
    /// otherwise partition after partition.
    pub fn finish(
        &mut self,
        end_ns: i64,
        feed: &mut Feed,
        send: &mut dyn FnMut(Finished, &Tracking),
    ) {
        if self.wait() {
            let f = self.collect(feed, false);
            send(f, self);
        }
        self.run_here();
        let keep = self.keep_messages;
        let work = |p: &mut Part| {
            p.tracker.finish_prepare(end_ns);
            p.take(keep);
        };
        match self.pool.as_ref().filter(|_| self.always_pool) {
            Some(pool) => pool.install(|| self.parts.par_iter_mut().for_each(work)),
            None => self.parts.iter_mut().for_each(work),
        }
        self.numbering.number(&mut self.parts, Some(end_ns));
        let at_end =
            |p: &Part| p.tracker.now() == end_ns && p.assigned.iter().all(|&(t, _)| t == end_ns);
        let step = finish_step();
        if step.is_none() || !self.parts.iter().all(at_end) {
            // A tracker ran past `end_ns` (not for a capture's own end), or
            // one pass was asked for: numbered by time, as one tracker.
            for p in &mut self.parts {
                p.tracker.finish(end_ns);
                p.take(keep);
            }
            self.numbering.number(&mut self.parts, None);
            let f = self.collect(feed, true);
            return send(f, self);
        }
        let step = step.unwrap_or(usize::MAX);
        // `SIPAUDIT_FINISH_ORDER=partitions`: partition after partition
        // even so (tests compare the two orders).
        let ids_final = std::env::var("SIPAUDIT_FINISH_ORDER").map_or(true, |v| v != "partitions")
            && self
                .parts
                .iter()
                .all(|p| p.tracker.open_sessions_have_ids());
        if ids_final {
            // Finishing hands out no id: the ids of the end are numbered
            // now, in the order (partition, order in partition) of one
            // pass, and the partitions may go round by round (end.rs).
            self.numbering.number(&mut self.parts, None);
        }
        self.finish_steps(end_ns, end::Order::of(step, ids_final), feed, send);
    }

    /// Logs the (time, partition) every session id is numbered with, for
    /// [`Tracking::origin`].
    pub fn keep_origins(&mut self) {
        self.numbering.origins.get_or_insert_with(Vec::new);
    }

    /// The (capture time, partition) final id `id` was numbered with: ids
    /// are numbered in this order (with the provisional order within a
    /// partition). `None` without [`Tracking::keep_origins`].
    pub fn origin(&self, id: u64) -> Option<(i64, u32)> {
        let o = self.numbering.origins.as_ref()?;
        o.get(usize::try_from(id).ok()?.checked_sub(1)?).copied()
    }

    /// Retransmissions seen by every partition.
    pub fn retransmissions(&self) -> u64 {
        self.parts.iter().map(|p| p.tracker.retransmissions).sum()
    }

    /// Hands `feed` the messages whose session is numbered (feed order) and
    /// the anomalies, and returns the sessions whose ids are all final.
    pub fn collect(&mut self, feed: &mut Feed, all: bool) -> Finished {
        feed.poll();
        self.messages(feed);
        let mut finished = 0;
        for p in &mut self.parts {
            for a in p.anomalies.drain(..) {
                feed.anomaly(&a);
            }
            finished += p.finished.len();
            self.pending.append(&mut p.finished);
        }
        self.quiet = if finished == 0 {
            self.quiet.saturating_add(1)
        } else {
            0
        };
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for mut s in std::mem::take(&mut self.pending) {
            if self.numbering.translate(&mut s) {
                ready.push(s);
            } else {
                waiting.push(s);
            }
        }
        self.pending = waiting;
        ready.sort_unstable_by_key(|s| s.id);
        let live = self.parts.iter().filter_map(|p| p.tracker.min_live_start());
        let held = self.pending.iter().map(|s| s.start_ns);
        Finished {
            sessions: ready,
            limit: if all { None } else { live.chain(held).min() },
            all,
        }
    }

    /// Merges the partitions' handed-back messages into feed order, up to
    /// the oldest one a partition still holds or one whose session has no
    /// final id yet.
    ///
    /// Each partition's messages are in feed order already, so a heap of
    /// the partitions' first messages gives the next one (it was a scan of
    /// every partition's front per message: 550 instructions a message).
    fn messages(&mut self, feed: &mut Feed) {
        use std::collections::binary_heap::PeekMut;
        let limit = self.parts.iter().filter_map(|p| p.front).min();
        let mut heads = std::mem::take(&mut self.heads);
        heads.clear();
        heads.extend(
            self.parts
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.out.front().map(|(pl, _)| Reverse((pl.seq, i)))),
        );
        while let Some(mut top) = heads.peek_mut() {
            let Reverse((seq, i)) = *top;
            if limit.is_some_and(|l| seq >= l) {
                break;
            }
            let out = &mut self.parts[i].out;
            let sid = match out.front().and_then(|(_, s)| *s) {
                None => None,
                Some(prov) => match self.numbering.final_id(prov) {
                    Some(id) => Some(id),
                    None => break,
                },
            };
            let (payload, _) = out.pop_front().expect("front exists");
            match out.front() {
                Some((next, _)) => {
                    // Its messages.csv row was encoded on the decoding
                    // thread seconds of capture earlier, and copying it into
                    // the writer waited on memory (with `--messages` the
                    // tracking thread's largest added cost). This
                    // partition's next row is written after about one
                    // message of every other partition, time enough for its
                    // lines to arrive. udp2000-60s `--messages` (DESIGN):
                    // wall ×0.973 pinned to one core, ×0.981 at `-j2`.
                    if let Some(r) = &next.row {
                        crate::prefetch::bytes(&r.head, usize::MAX);
                    }
                    *top = Reverse((next.seq, i))
                }
                None => {
                    PeekMut::pop(top);
                }
            }
            feed.message(payload, sid);
        }
        self.heads = heads;
    }
}

/// Final session ids: 1, 2, 3… in the order (capture time handed out,
/// partition, order in partition); see the module documentation.
#[derive(Default)]
struct Numbering {
    next: u64,
    /// Per partition, the final id of provisional id `n * PARTITIONS + i`
    /// at index `n - 1` (8 bytes per session: a related session may name
    /// one finished long before).
    finals: Vec<Vec<u64>>,
    /// With [`Tracking::keep_origins`]: the (time, partition) each final id
    /// was numbered with, at index `id - 1` (`merge-reports` orders the
    /// sessions of several `--partition` runs by it).
    origins: Option<Vec<(i64, u32)>>,
}

impl Numbering {
    /// Numbers every logged id handed out before `below` (all: `None`).
    fn number(&mut self, parts: &mut [Part], below: Option<i64>) {
        if self.finals.is_empty() {
            self.finals = vec![Vec::new(); parts.len()];
            self.next = 1;
        }
        let mut due: Vec<(i64, usize, u64)> = Vec::new();
        for (i, p) in parts.iter_mut().enumerate() {
            while let Some(&(t, prov)) = p.assigned.front() {
                if below.is_some_and(|b| t >= b) {
                    break;
                }
                p.assigned.pop_front();
                due.push((t, i, prov));
            }
        }
        // Within a partition ids grow with their hand-out order, so the
        // sort keeps that order among equal times.
        due.sort_unstable();
        for (t, i, prov) in due {
            self.give(t, i, prov);
        }
    }

    /// Gives provisional id `prov` of partition `i`, handed out at `t`, the
    /// next final id.
    fn give(&mut self, t: i64, i: usize, prov: u64) {
        if let Some(o) = self.origins.as_mut() {
            o.push((t, i as u32));
        }
        let n = (prov / PARTITIONS as u64) as usize;
        let v = &mut self.finals[i];
        debug_assert_eq!(v.len() + 1, n, "provisional ids are dense");
        v.push(self.next);
        self.next += 1;
    }

    /// Numbers every id partition `i` has logged, in order (see
    /// [`Tracking::finish`] for when that is the order of [`Numbering::number`]).
    fn number_one(&mut self, part: &mut Part, i: usize) {
        for (t, prov) in part.assigned.drain(..) {
            self.give(t, i, prov);
        }
    }

    /// The final id of a provisional one, once numbered.
    fn final_id(&self, prov: u64) -> Option<u64> {
        let (n, i) = (
            (prov / PARTITIONS as u64) as usize,
            (prov % PARTITIONS as u64) as usize,
        );
        self.finals.get(i)?.get(n.checked_sub(1)?).copied()
    }

    /// Gives `s` and the sessions it names their final ids; false (and `s`
    /// unchanged) while one of them has none yet.
    fn translate(&self, s: &mut SessionSummary) -> bool {
        let Some(id) = self.final_id(s.id) else {
            return false;
        };
        let related: Option<Vec<u64>> = s.related.iter().map(|&r| self.final_id(r)).collect();
        let Some(mut related) = related else {
            return false;
        };
        related.sort_unstable();
        s.id = id;
        s.related = related;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::anomalies::AnomalyStore;

    const MS: i64 = 1_000_000;

    /// A message of call `c`: `first` is its start line, `branch` its Via
    /// branch, `cseq` its CSeq, `to_tag` whether the To header is tagged.
    fn text(first: &str, c: usize, branch: char, cseq: &str, to_tag: bool) -> String {
        let tag = if to_tag { ";tag=t" } else { "" };
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{c}{branch}\r\n\
             From: <sip:a{c}@example.org>;tag=f{c}\r\nTo: <sip:b{c}@example.net>{tag}\r\n\
             Call-ID: call-{c}\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    /// Answered calls of 1 s, one every 50 ms from `from` ms for `ms` ms
    /// (calls numbered from `c0`).
    fn calls(c0: usize, from: i64, ms: i64) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        for (i, t) in (from..from + ms).step_by(50).enumerate() {
            let c = c0 + i;
            let uri = format!("sip:b{c}@example.net SIP/2.0");
            out.push((t, text(&format!("INVITE {uri}"), c, 'i', "1 INVITE", false)));
            out.push((t + 10, text("SIP/2.0 200 OK", c, 'i', "1 INVITE", true)));
            out.push((t + 20, text(&format!("ACK {uri}"), c, 'a', "1 ACK", true)));
            out.push((t + 1000, text(&format!("BYE {uri}"), c, 'b', "2 BYE", true)));
            out.push((t + 1010, text("SIP/2.0 200 OK", c, 'b', "2 BYE", true)));
        }
        out
    }

    /// Lone INVITEs nobody answers, one every 5 ms (a scanner).
    fn scan(c0: usize, from: i64, ms: i64) -> Vec<(i64, String)> {
        (from..from + ms)
            .step_by(5)
            .enumerate()
            .map(|(i, t)| {
                let first = format!("INVITE sip:b{}@example.net SIP/2.0", c0 + i);
                (t, text(&first, c0 + i, 'i', "1 INVITE", false))
            })
            .collect()
    }

    /// Feeds `phases` (each sorted by time) in batches of `batch` records at
    /// `jobs` (with `always_cut`, handed to the pool [`ELASTIC`] at a
    /// time); the finished sessions as (id, start, Call-IDs), and the
    /// batches run here and on the pool after each phase.
    fn track(
        jobs: usize,
        phases: &[Vec<(i64, String)>],
        batch: usize,
        always_cut: bool,
    ) -> (Vec<String>, Vec<[u64; 2]>) {
        let dir = tempfile::tempdir().unwrap();
        let mut feed = Feed {
            messages: None,
            tail: Vec::new(),
            error: None,
            anomalies: AnomalyStore::new(dir.path()),
            files: vec!["f".into()],
            ladders: None,
            tracker_kinds: Default::default(),
        };
        let mut t = Tracking::new(32_000 * MS, jobs, false);
        t.batch_size = batch;
        // Without cuts, one batch at a time: which batches run where is
        // then the same in every run.
        t.always_cut = always_cut;
        t.elastic = if always_cut { ELASTIC } else { 1 };
        let mut got = Vec::new();
        let mut keep = |f: Finished| {
            got.extend(
                f.sessions
                    .iter()
                    .map(|s| format!("{} {} {:?}", s.id, s.start_ns, s.call_ids)),
            )
        };
        let mut runs = Vec::new();
        let mut frame = 0;
        for phase in phases {
            let mut phase = phase.clone();
            phase.sort_by_key(|(ms, _)| *ms);
            for (ms, m) in phase {
                frame += 1;
                if push_text(&mut t, &m, frame, ms) {
                    t.run_batch(&mut |t: &mut Tracking| keep(t.collect(&mut feed, false)));
                }
            }
            runs.push(t.runs);
        }
        t.finish(200_000 * MS, &mut feed, &mut |f, _| keep(f));
        (got, runs)
    }

    /// Routes message `m` as frame `frame` captured at `ms`; whether a
    /// batch is ready.
    fn push_text(t: &mut Tracking, m: &str, frame: u64, ms: i64) -> bool {
        let (src, dst) = (
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.0.2:5060".parse().unwrap(),
        );
        let rec = SipRecord::from_text(m, frame, ms * MS, src, dst);
        let seq = t.next_seq();
        let payload = Payload {
            seq,
            row: None,
            ladder: None,
            repeat: false,
        };
        t.push(rec, payload)
    }

    /// A batch is full at `batch_size` records, unless the one before it
    /// is still running on the pool: then it is cut there and the routing
    /// goes on, up to `ELASTIC` batches, or until the running one is back.
    #[test]
    fn batches_are_cut_while_the_pool_is_busy() {
        let mut t = Tracking::new(32_000 * MS, 2, false);
        t.batch_size = 8;
        let push = |t: &mut Tracking, i: usize| {
            let first = format!("INVITE sip:b{i}@example.net SIP/2.0");
            let m = text(&first, i, 'i', "1 INVITE", false);
            push_text(t, &m, i as u64 + 1, i as i64)
        };
        assert!(t.pooled, "-j2 starts on the pool");
        let full: Vec<bool> = (0..8).map(|i| push(&mut t, i)).collect();
        assert_eq!(
            full,
            [false, false, false, false, false, false, false, true]
        );
        assert!(t.cuts.is_empty());
        // A batch "running" that has not come back: cut at 8, full at 16.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        t.running = Some((rx, 0));
        t.batched = 0;
        let full: Vec<bool> = (8..24).map(|i| push(&mut t, i)).collect();
        assert_eq!(full.iter().filter(|&&f| f).count(), 1, "{full:?}");
        assert!(full[15], "full at 2 × 8: {full:?}");
        assert_eq!(t.cuts.len(), 1);
        assert_eq!(t.cuts[0].t, 15 * MS, "the cut's time is its last record's");
        assert_eq!(t.cuts[0].ends.iter().sum::<usize>(), 16, "8 + 8 routed");
        // It comes back: full at the next 8, without a cut.
        t.cuts.clear();
        t.batched = 0;
        let other = Tracking::new(32_000 * MS, 1, false);
        tx.send(Ok((other.parts, other.batch))).unwrap();
        let full: Vec<bool> = (24..32).map(|i| push(&mut t, i)).collect();
        assert!(full[7] && t.cuts.is_empty(), "{full:?}");
        assert!(t.wait());
        assert_eq!(t.parts.len(), PARTITIONS);
    }

    /// Batches handed to the pool several at a time give the sessions and
    /// ids of one batch at a time; only when they are collected changes.
    /// (Where a batch ends matters to the ids of this scanner burst amid
    /// calls: with batches of 16 it fails when a partition tracks the
    /// batches it is handed as one.)
    #[test]
    fn batches_cut_while_the_pool_is_busy_give_the_same_sessions() {
        let mut first = calls(0, 0, 20_000);
        first.extend(scan(10_000, 10_000, 5_000));
        let phases = [first, calls(2_000, 20_000, 10_000)];
        let (one, _) = track(1, &phases, 16, false);
        // From -j3 every batch goes to the pool.
        let (mut cut, runs) = track(3, &phases, 16, true);
        let mut one = one;
        cut.sort();
        one.sort();
        assert_eq!(cut.len(), one.len());
        assert!(cut == one, "the same sessions and ids");
        assert_eq!(runs[1][0], 0, "all on the pool: {runs:?}");
    }

    /// At `-j2` the partitions go to the pool while no session finishes
    /// (the start, and a scanner's lone INVITEs) and come back when one
    /// does, and the sessions are those of `-j1`.
    #[test]
    fn the_pool_takes_the_partitions_only_while_no_session_finishes() {
        let phases = [
            calls(0, 0, 20_000),
            scan(10_000, 20_000, 20_000),
            calls(2_000, 40_000, 20_000),
        ];
        let (one, runs1) = track(1, &phases, 64, false);
        assert_eq!(one.len(), 400 + 4_000 + 400);
        assert!(
            runs1.iter().all(|r| r[1] == 0),
            "-j1 has no pool: {runs1:?}"
        );
        let (two, runs) = track(2, &phases, 64, false);
        assert_eq!(two, one, "the same sessions, ids and order");
        // Batches (here, on the pool) in each phase.
        let [a, b, c] = [
            runs[0],
            [runs[1][0] - runs[0][0], runs[1][1] - runs[0][1]],
            [runs[2][0] - runs[1][0], runs[2][1] - runs[1][1]],
        ];
        // The first 5 s of each phase still see the last one's sessions
        // finish, or none yet; the other 15 s decide.
        assert!(
            a[1] > 0 && a[0] > 2 * a[1],
            "calls: the pool at the start: {runs:?}"
        );
        assert!(
            b[1] > 2 * b[0],
            "the scanner's INVITEs: on the pool: {runs:?}"
        );
        assert!(c[0] > 2 * c[1], "calls again: on this thread: {runs:?}");
    }
}
