//! The rules stage: finished sessions evaluated (rules.md §B–§F), counted
//! for summary.csv and written to sessions.csv and failures.csv in start
//! order (through `spill`), with INCONSISTENT_EXPERIENCE decided at the end
//! of the batch; on the tracking thread or on a thread of its own
//! ([`RulesStage`]). Never tracks a message.

use std::path::PathBuf;

use super::feed::Finished;
use super::{env_number, html, partition_log, priority, spill, track};
use crate::dialog::SessionSummary;
use crate::error::{Error, ErrorKind};
use crate::report::sessions::{failure_rows, flags_cell, session_row, with_flags};
use crate::report::{self, RawCsv};
use crate::rules;

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
    pub(super) policy: std::sync::Arc<rules::policy::Policy>,
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
        tx: std::sync::mpsc::SyncSender<(Finished, Origins)>,
        handle: std::thread::ScopedJoinHandle<'s, Reports>,
    },
}

impl<'s> RulesStage<'s> {
    pub(super) fn new<'env>(
        reports: Reports,
        scope: Option<&'s std::thread::Scope<'s, 'env>>,
    ) -> RulesStage<'s> {
        match scope {
            None => RulesStage::Inline(Box::new(reports)),
            Some(sc) => {
                let (tx, rx) = std::sync::mpsc::sync_channel::<(Finished, Origins)>(4);
                let mut reports = reports;
                let handle = sc.spawn(move || {
                    priority::sink_thread();
                    for (f, o) in rx {
                        reports.sessions(f, o);
                    }
                    reports
                });
                RulesStage::Thread { tx, handle }
            }
        }
    }

    /// Hands `f` to the rules stage, with the numbering origin of each of
    /// its sessions when `tracking` keeps them (partition log).
    pub(super) fn send(&mut self, f: Finished, tracking: &track::Tracking) {
        let o: Origins = f.sessions.iter().map(|s| tracking.origin(s.id)).collect();
        match self {
            RulesStage::Inline(r) => r.sessions(f, o),
            RulesStage::Thread { tx, .. } => {
                // A send fails only when the stage panicked; join reports it.
                let _ = tx.send((f, o));
            }
        }
    }

    pub(super) fn finish(self) -> Reports {
        match self {
            RulesStage::Inline(r) => *r,
            RulesStage::Thread { tx, handle } => {
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
        let e = rules::session::evaluate_session(s, &self.policy);
        self.tally.add(&e);
        let mut row = session_row(s, &e, &self.files);
        let frows = failure_rows(s, &e.ev, &self.files);
        let flag = rules::catalogue::Flag::InconsistentExperience;
        // The twin differs from the row in its flags cell only.
        let twin_flags = e
            .experience
            .is_some()
            .then(|| flags_cell(&e.flags_with(flag)));
        if let Some(h) = self.html.as_mut() {
            let times: Vec<i64> =
                e.ev.failures
                    .iter()
                    .filter(|f| f.row)
                    .map(|f| f.failure.at.ts_ns)
                    .collect();
            h.session(&row, twin_flags.as_ref(), &frows, &times);
        }
        if let (Some(log), Some(o)) = (self.log.as_mut(), origin) {
            let twin = twin_flags.as_ref().map(|f| with_flags(&row, f));
            let entry =
                partition_log::entry(s, o, &row, twin.as_ref(), &frows, e.experience.as_ref());
            if let Err(err) = log.session(&entry) {
                self.keep(Err(err));
            }
        }
        if let Some(x) = e.experience {
            self.experience.add(x);
        }
        let mut rows = spill::Rows {
            session: Vec::new(),
            flagged: None,
            failures: Vec::new(),
        };
        report::encode(&row, &mut rows.session);
        // The row is not read after this: it becomes its twin.
        rows.flagged = twin_flags.map(|f| {
            row.flags = f;
            let mut b = Vec::new();
            report::encode(&row, &mut b);
            b
        });
        for f in &frows {
            report::encode(f, &mut rows.failures);
        }
        if let Some(w) = self.waiting.as_mut() {
            w.insert((s.start_ns, s.id), rows);
        }
    }

    /// Evaluates finished sessions and writes the rows no live session can
    /// precede any more; at the end of the batch, all of them, with
    /// INCONSISTENT_EXPERIENCE (rules.md §F) on the sessions that get it.
    pub(super) fn sessions(&mut self, fin: Finished, origins: Origins) {
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
