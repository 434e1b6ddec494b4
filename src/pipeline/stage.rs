//! The rules stage: finished sessions evaluated (rules.md §B–§F), counted
//! for summary.csv and written to sessions.csv and failures.csv in start
//! order (through `spill`), with INCONSISTENT_EXPERIENCE decided at the end
//! of the batch; on the tracking thread or on a thread of its own
//! ([`RulesStage`]). A session's evaluation and encoded rows ([`prepare`])
//! depend on nothing but the session, the policy and the file names, so
//! the tracking thread does them itself while it has time to spare
//! (`slack`), and once the capture has ended while the stage's thread is
//! behind; counting and writing stay on the stage's thread, in order. Never
//! tracks a message.

use std::path::PathBuf;
use std::sync::Arc;

use super::feed::Finished;
use super::{env_number, html, merge, partition_log, priority, slack, spill, track};
use crate::dialog::SessionSummary;
use crate::error::{Error, ErrorKind};
use crate::report::rows::{FailureRow, SessionRow};
use crate::report::sessions::{failure_rows, flags_cell_with, session_row, with_flags};
use crate::report::{self, Cell, RawCsv};
use crate::rules;
use crate::rules::policy::Policy;

/// Where the merged timeline's consumer writes: messages.csv (optional),
/// sessions.csv through a reorder buffer (rows sorted by start, then id),
/// and the session counts for summary.csv.
pub(super) struct Reports {
    pub(super) files: Vec<String>,
    pub(super) sessions: RawCsv,
    pub(super) failures: RawCsv,
    /// Finished sessions (with their failures.csv rows), encoded, waiting
    /// for every earlier-starting one (spilled to run files when many).
    pub(super) waiting: Option<spill::SortedRows>,
    pub(super) policy: Arc<Policy>,
    pub(super) out_dir: PathBuf,
    /// Run files the session rows went through (0: all in memory).
    pub(super) spill_runs: usize,
    pub(super) error: Option<Error>,
    /// The counts of summary.csv, by typed value.
    pub(super) tally: rules::tally::Tally,
    /// Sessions with a capability refusal, for INCONSISTENT_EXPERIENCE.
    pub(super) experience: rules::ExperienceGroups,
    /// The sessions given INCONSISTENT_EXPERIENCE (known when the last rows
    /// are written), sorted.
    pub(super) inconsistent: Vec<u64>,
    /// The flagged twins of the session rows written before the flag was
    /// decided (`spill::Twins`), put in place when sessions.csv is finished.
    pub(super) twins: Option<spill::Twins>,
    /// The rows report.html may show.
    pub(super) html: Option<html::RowStore>,
    /// `--partition`: the log for `merge-reports`.
    pub(super) log: Option<partition_log::PartitionLog>,
}

/// The (time, tracking partition) each finished session was numbered with
/// (all `None` unless a partition log is written).
pub(super) type Origins = Vec<Option<(i64, u32)>>;

/// Where finished sessions are evaluated and written: on this thread, or on
/// a thread of their own that receives them in order (`--jobs` > 1), at a
/// lower priority than the threads that feed it (priority.rs).
pub(super) enum RulesStage<'s> {
    Inline(Box<Reports>),
    Thread {
        tx: std::sync::mpsc::SyncSender<Message>,
        handle: std::thread::ScopedJoinHandle<'s, Reports>,
        /// What [`prepare`] reads, when the sending thread may prepare
        /// sessions (not with a partition log, which reads the sessions
        /// themselves).
        prep: Option<Prep>,
        /// `SIPAUDIT_SEND_PREPARED`: `always` prepares every session on the
        /// sending thread, `never` none while the capture is read (whatever
        /// [`slack::Slack`] says), so that tests cover each path whatever
        /// the timing.
        forced: Option<bool>,
        /// The capture has ended ([`RulesStage::capture_ended`]).
        ended: bool,
        /// While the capture is read: whether the decoding threads, not
        /// this thread, are the longest path, so that this thread prepares
        /// the sessions itself (slack.rs).
        slack: slack::Slack,
    },
}

/// What the rules stage's thread receives: a batch, the numbering origins
/// of its sessions, and its last sessions as the sending thread prepared
/// them, last first (taken out of the batch's `sessions`).
type Message = (Finished, Origins, Vec<Prepared>);

/// What [`prepare`] reads besides the session: the policy, the file names,
/// and whether report.html is written.
type Prep = (Arc<Policy>, Vec<String>, bool);

/// Sessions the sending thread prepares at a time while the rules stage's
/// channel is full.
const PREPARE_CHUNK: usize = 16;

/// Prepares up to `n` of the sessions of `msg` not prepared yet, from the
/// last.
fn prepare_tail(msg: &mut Message, n: usize, (policy, files, keep): &Prep) {
    for _ in 0..n {
        let Some(s) = msg.0.sessions.pop() else { break };
        msg.2.push(prepare(&s, policy, files, *keep));
    }
}

impl<'s> RulesStage<'s> {
    pub(super) fn new<'env>(
        reports: Reports,
        scope: Option<&'s std::thread::Scope<'s, 'env>>,
    ) -> RulesStage<'s> {
        match scope {
            None => RulesStage::Inline(Box::new(reports)),
            Some(sc) => {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Message>(4);
                let prep = reports.log.is_none().then(|| {
                    (
                        reports.policy.clone(),
                        reports.files.clone(),
                        reports.html.is_some(),
                    )
                });
                let mut reports = reports;
                let handle = crate::threads::scoped(sc, crate::threads::RULES, move || {
                    priority::sink_thread();
                    for (f, o, p) in rx {
                        reports.sessions(f, o, p);
                    }
                    reports
                });
                let forced = match std::env::var("SIPAUDIT_SEND_PREPARED").as_deref() {
                    Ok("always") => Some(true),
                    Ok("never") => Some(false),
                    _ => None,
                };
                RulesStage::Thread {
                    tx,
                    handle,
                    prep,
                    forced,
                    ended: false,
                    slack: slack::Slack::new(std::time::Instant::now(), merge::blocked_ns()),
                }
            }
        }
    }

    /// The capture has been read to its end: from now on, [`Self::send`]
    /// prepares sessions while the stage's thread is behind.
    pub(super) fn capture_ended(&mut self) {
        if let RulesStage::Thread { ended, .. } = self {
            *ended = true;
        }
    }

    /// Hands `f` to the rules stage, with the numbering origin of each of
    /// its sessions when `tracking` keeps them (partition log).
    ///
    /// While the capture is read, this thread prepares (evaluates and
    /// encodes) every session of `f` itself when it has time to spare: when
    /// the decoding threads, not this one, are the longest path
    /// ([`slack::Slack`]). The stage then only counts and writes them, in
    /// the same order.
    ///
    /// Once the capture has ended, while the stage's thread is behind (its
    /// channel is full), this thread prepares the batch's sessions itself,
    /// from the last, a few at a time, instead of waiting. Every open session
    /// finishes then, and the two threads have the cores to themselves.
    /// Not before: while the capture is read, a full channel means the
    /// stage's thread (at a lower priority) yields to the decoding thread,
    /// and preparing here only adds work beside it (udp200-600s `-j2`
    /// ×1.042 wall when it did).
    pub(super) fn send(&mut self, f: Finished, tracking: &track::Tracking) {
        let o: Origins = f.sessions.iter().map(|s| tracking.origin(s.id)).collect();
        match self {
            RulesStage::Inline(r) => r.sessions(f, o, Vec::new()),
            RulesStage::Thread {
                tx,
                prep,
                forced,
                ended,
                slack,
                ..
            } => {
                let mut msg = (f, o, Vec::new());
                if let Some(p) = prep.as_ref() {
                    let now = match *forced {
                        Some(f) => f,
                        None => {
                            !*ended
                                && !msg.0.sessions.is_empty()
                                && slack.spare(std::time::Instant::now(), merge::blocked_ns())
                        }
                    };
                    if now {
                        prepare_tail(&mut msg, usize::MAX, p);
                    }
                }
                let prep = prep.as_ref().filter(|_| *ended);
                // A send fails only when the stage panicked; join reports it.
                while let Err(std::sync::mpsc::TrySendError::Full(m)) = tx.try_send(msg) {
                    msg = m;
                    match prep.filter(|_| !msg.0.sessions.is_empty()) {
                        Some(p) => prepare_tail(&mut msg, PREPARE_CHUNK, p),
                        None => {
                            let _ = tx.send(msg);
                            break;
                        }
                    }
                }
            }
        }
    }

    pub(super) fn finish(self) -> Reports {
        match self {
            RulesStage::Inline(r) => *r,
            RulesStage::Thread {
                tx, handle, slack, ..
            } => {
                if std::env::var("SIPAUDIT_SLACK").is_ok_and(|v| v == "trace") {
                    eprintln!(
                        "sipaudit: sessions prepared on the calling thread in {} collections, sent \
                         unprepared in {}; the decoding threads waited {:.3} s for it",
                        slack.counts.0,
                        slack.counts.1,
                        merge::blocked_ns() as f64 / 1e9
                    );
                }
                drop(tx);
                handle
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            }
        }
    }
}

/// Finished sessions held in memory before they are spilled to run files
/// (about 1 KB each): 100,000, or under a memory budget (`--memory`) as
/// many as an eighth of it holds (32,768 for 256 MB).
/// `SIPAUDIT_SPILL_ROWS` overrides it (tests use a tiny value to exercise
/// the external merge).
pub(super) fn spill_rows_within(budget: Option<u64>) -> usize {
    let cap = budget.map_or(100_000, |b| (b / 8 / 1024).clamp(1024, 100_000) as usize);
    env_number("SIPAUDIT_SPILL_ROWS").unwrap_or(cap)
}

/// [`spill_rows_within`] without a budget.
pub(super) fn spill_rows() -> usize {
    spill_rows_within(None)
}

impl Reports {
    pub(super) fn keep(&mut self, r: Result<(), Error>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    /// Evaluates a finished session, counts it and queues its rows: with a
    /// twin flagged INCONSISTENT_EXPERIENCE when it may get that flag.
    pub(super) fn session(&mut self, s: &SessionSummary, origin: Option<(i64, u32)>) {
        let mut logged = Ok(());
        let log = self.log.as_mut().zip(origin);
        let keep = self.html.is_some();
        let p = prepare_with(s, &self.policy, &self.files, keep, |b, e| {
            if let Some((log, o)) = log {
                let twin = b.twin_flags.as_ref().map(|f| with_flags(&b.row, f));
                let entry = partition_log::entry(
                    s,
                    o,
                    &b.row,
                    twin.as_ref(),
                    &b.frows,
                    e.experience.as_ref(),
                );
                logged = log.session(&entry);
            }
        });
        if let Err(err) = logged {
            self.keep(Err(err));
        }
        self.take(p);
    }

    /// Counts a prepared session and queues its rows, in the order the
    /// sessions come: what [`Reports::session`] does after [`prepare`].
    fn take(&mut self, p: Prepared) {
        let Prepared {
            key,
            counted,
            experience,
            attention,
            times,
            rows,
            kept,
        } = p;
        self.tally.add(counted);
        if let Some(h) = self.html.as_mut() {
            h.session(key.1, attention, &times, kept);
        }
        if let Some(x) = experience {
            self.experience.add(x);
        }
        if let Some(w) = self.waiting.as_mut() {
            w.insert(key, rows);
        }
    }

    /// Evaluates finished sessions and writes the rows no live session can
    /// precede any more; at the end of the batch, all of them, with
    /// INCONSISTENT_EXPERIENCE (rules.md §F) on the sessions that get it.
    /// `prepared`: the batch's last sessions, already prepared by the
    /// sending thread, last first ([`RulesStage::send`]).
    pub(super) fn sessions(&mut self, fin: Finished, origins: Origins, prepared: Vec<Prepared>) {
        let Finished {
            sessions: finished,
            limit,
            all,
        } = fin;
        // By value: each session's state is freed as soon as its rows are
        // built (at the end of a capture every open session finishes at
        // once: 200,000 on the scanner burst).
        for (i, s) in finished.into_iter().enumerate() {
            self.session(&s, origins.get(i).copied().flatten());
        }
        for p in prepared.into_iter().rev() {
            self.take(p);
        }
        if let Some(h) = self.html.as_mut() {
            h.hand_over();
        }
        let (sessions, failures) = (&mut self.sessions, &mut self.failures);
        let mut err = None;
        let mut out = |s: &[u8], f: &[u8]| -> std::io::Result<()> {
            if err.is_none() {
                if let Err(e) = sessions.raw(s).and_then(|_| failures.raw(f)) {
                    err = Some(e);
                }
            }
            Ok(())
        };
        let r = match (all, self.waiting.as_mut()) {
            (_, None) => Ok(()),
            (false, Some(w)) => w.flush(limit, &mut out),
            (true, Some(_)) => {
                let w = self.waiting.take().expect("present");
                self.spill_runs = w.runs();
                self.inconsistent = self.experience.inconsistent();
                let ids = &self.inconsistent;
                w.finish(&|id| ids.binary_search(&id).is_ok(), &mut out)
                    .map(|twins| self.twins = twins)
            }
        };
        if let Some(e) = err {
            self.keep(Err(e));
        }
        if let Err(source) = r {
            self.keep(Err(ErrorKind::Output {
                path: self.out_dir.clone(),
                source,
            }
            .into()));
        }
    }
}

/// A finished session evaluated, its rows built and encoded: the part of
/// the rules stage that reads nothing but the session, the policy and the
/// file names, so that either thread can do it. The rows themselves are
/// not kept (their cells borrow from the session), only their encoding,
/// and an owned copy when report.html is written and the session needs
/// attention (the only rows it may show).
pub(super) struct Prepared {
    key: spill::Key,
    /// What summary.csv counts of the session.
    counted: rules::tally::Counted,
    /// Its part in INCONSISTENT_EXPERIENCE.
    experience: Option<rules::Experience>,
    /// sessions.csv `attention`.
    attention: u32,
    /// The times of the failures that have a failures.csv row.
    times: Vec<i64>,
    /// The encoded rows, the twin included.
    rows: spill::Rows,
    /// The rows, owned, when `attention` > 0 and report.html is written.
    kept: Option<html::KeptRows>,
}

/// A session's rows, borrowing from the session and its evaluation.
struct Built<'a> {
    row: SessionRow<'a>,
    /// The flags cell of the row's INCONSISTENT_EXPERIENCE twin, when the
    /// session may get that flag.
    twin_flags: Option<Cell<'a>>,
    frows: Vec<FailureRow<'a>>,
}

/// The rows of session `s`, evaluated as `e`.
fn build<'a>(
    s: &'a SessionSummary,
    e: &'a rules::session::Evaluated<'_>,
    files: &'a [String],
) -> Built<'a> {
    let flag = rules::catalogue::Flag::InconsistentExperience;
    Built {
        row: session_row(s, e, files),
        // The twin differs from the row in its flags cell only.
        twin_flags: e
            .experience
            .is_some()
            .then(|| flags_cell_with(&e.flags, &flag.to_string())),
        frows: failure_rows(s, &e.ev, files),
    }
}

/// Evaluates session `s` and builds and encodes its rows ([`Prepared`]).
/// `keep`: report.html is written (it may keep rows with attention).
pub(super) fn prepare(
    s: &SessionSummary,
    policy: &Policy,
    files: &[String],
    keep: bool,
) -> Prepared {
    prepare_with(s, policy, files, keep, |_, _| {})
}

/// [`prepare`], showing the rows to `look` before they are encoded (the
/// partition log reads them).
fn prepare_with(
    s: &SessionSummary,
    policy: &Policy,
    files: &[String],
    keep: bool,
    look: impl FnOnce(&Built<'_>, &rules::session::Evaluated<'_>),
) -> Prepared {
    let mut e = rules::session::evaluate_session(s, policy);
    let b = build(s, &e, files);
    look(&b, &e);
    let (rows, attention, kept) = encode(b, keep);
    let times =
        e.ev.failures
            .iter()
            .filter(|f| f.row)
            .map(|f| f.failure.at.ts_ns)
            .collect();
    Prepared {
        key: (s.start_ns, s.id),
        experience: e.experience.take(),
        counted: rules::tally::Counted::of(&mut e),
        attention,
        times,
        rows,
        kept,
    }
}

/// The encoding of rows `b`, its attention, and the rows owned when `keep`
/// (report.html is written) and the attention is above 0.
fn encode(b: Built<'_>, keep: bool) -> (spill::Rows, u32, Option<html::KeptRows>) {
    let Built {
        mut row,
        twin_flags,
        frows,
    } = b;
    let mut rows = spill::Rows {
        session: Vec::new(),
        flagged: None,
        failures: Vec::new(),
    };
    report::encode(&row, &mut rows.session);
    for f in &frows {
        report::encode(f, &mut rows.failures);
    }
    // The twin: the row with its flags cell swapped, then swapped back.
    let twin_flags = twin_flags.map(|f| {
        let own = std::mem::replace(&mut row.flags, f);
        let mut t = Vec::new();
        report::encode(&row, &mut t);
        rows.flagged = Some(t);
        std::mem::replace(&mut row.flags, own)
    });
    let attention = row.attention;
    let kept = (keep && attention > 0).then(|| html::KeptRows {
        row: row.into_owned(),
        flagged: twin_flags.map(Cell::into_owned),
        failures: frows.into_iter().map(FailureRow::into_owned).collect(),
    });
    (rows, attention, kept)
}

/// Finishes sessions.csv: as written, unless a row written before the
/// batch-wide flags were known has a twin that `inconsistent` (sorted)
/// names; then the file is copied once with those twins in place.
pub(super) fn finish_sessions(
    sessions: RawCsv,
    twins: Option<spill::Twins>,
    inconsistent: &[u64],
) -> Result<report::written::Written, Error> {
    match twins {
        Some(t) if !inconsistent.is_empty() => {
            let flagged = |id: u64| inconsistent.binary_search(&id).is_ok();
            sessions.finish_edited(&mut |from, to| t.apply(&flagged, from, to).map(|_| ()))
        }
        _ => sessions.finish(),
    }
}
