//! The pipeline: inputs → per-file decoding (in parallel, [`merge`]) → one
//! capture-time timeline → session tracking in partitions (`track`) and the
//! rules → CSV files (sessions in start order through [`spill`]).
//!
//! Each file is decoded by its own `Decoder` on a thread of the merge
//! (`decode`); the merged order depends only on the data, the timeline is tracked as a fixed
//! number of partitions (in parallel from `--jobs` 3 on) merged back into one
//! deterministic order, and every report is ordered before it is written,
//! so the output bytes are the same for every `--jobs` value and every
//! order in which the inputs were named.
//!
//! This file owns the run: its configuration and summary, the temporary
//! output directory, the threads of a batch (`track_timeline`) and the
//! summaries written at its end (inputs.csv, summary.csv, report.html). The
//! tracker's side of the reports is `feed` (messages.csv, ladders), the
//! rules stage `stage` (sessions.csv, failures.csv). It never parses a
//! packet and never evaluates a rule.

mod anomalies;
mod decode;
mod digest;
pub mod extract;
mod extsort;
mod feed;
mod html;
mod inputs;
mod lanes;
mod manifest;
mod media;
pub mod merge;
pub mod merge_reports;
mod out_dir;
mod partition_log;
mod priority;
pub mod records;
pub mod router;
pub mod routes;
mod slack;
pub mod spill;
mod stage;
mod styles;
mod track;
pub use track::PARTITIONS;

pub use inputs::{Input, expand_inputs, inputs_to_analyse};
pub use out_dir::{REPORT_NAMES, STAGING_PREFIX, prepare_out_dir};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::capture;
use crate::error::{Error, ErrorKind};
use crate::report::rows::InputRow;
use crate::report::{self, RawCsv};
use crate::rules;
use anomalies::AnomalyStore;
use decode::{
    Counters, Emit, FileResult, FileSink, Found, Out, PendingRow, Span, Threads, file_result,
    process_file,
};
use feed::{Feed, Finished, Payload};
use stage::{Reports, RulesStage, finish_sessions, spill_rows, spill_rows_within};

/// What to run: built once from the command line, then read-only.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Files and directories, as the user named them.
    pub inputs: Vec<PathBuf>,
    /// Output directory.
    pub out_dir: PathBuf,
    /// Worker threads (`None`: all cores).
    pub jobs: Option<usize>,
    /// Also write messages.csv.
    pub messages: bool,
    /// Also write the Parquet twins of sessions, failures, messages and
    /// summary (`--format csv,parquet`, [`report::parquet`]).
    pub parquet: bool,
    /// Bytes read from the input files so far, added to as they are read
    /// (compressed bytes for compressed files): the progress display.
    pub progress: Option<capture::ByteCounter>,
    /// The home-network policy (rules.md §E): `--policy FILE`, or the
    /// built-in default ([`crate::rules::policy::Policy::builtin`], also
    /// `Default::default()`) without it. Besides the policy verdicts it sets
    /// W0 (`window_ns`), `max_retries`, `extra_droppable` and `sdp_mode`.
    pub policy: std::sync::Arc<crate::rules::policy::Policy>,
    /// Write report.html with the ladders of at most this many sessions
    /// (`--html-sessions`, default 500); `None`: no report.html
    /// (`--no-html`, and the library default).
    pub html: Option<usize>,
    /// Sessions of the table when report.html is not written but
    /// `pcap_dir` is (`--no-html --pcap-dir`; 0: 500).
    pub table: usize,
    /// `--pcap-dir`: where the per-session pcaps of report.html's sessions
    /// go (written by the caller after the run, `extract.rs`); report.html
    /// links to them.
    pub pcap_dir: Option<PathBuf>,
    /// Where the reports end up when `out_dir` is the run's temporary
    /// directory (set by [`run`]): report.html's links are relative to it.
    pub report_dir: Option<PathBuf>,
    /// `analyze --records --partition K/N`: also write the log
    /// `merge-reports` merges the partitions' reports from
    /// (`partition_log`, [`merge_reports`]).
    pub partition_log: Option<(usize, usize)>,
    /// The records carry their homes (`--routes`, routes.rs): tracking
    /// takes them as they are instead of routing again.
    pub routed: bool,
    /// The memory budget in bytes (`--memory`; `None`: none, the library
    /// default): above a quarter of it, waiting sessions go to spill files in
    /// `out_dir` (`track::Tracking::memory_budget`).
    pub memory: Option<u64>,
}

/// The figures of a finished run (for the stderr summary).
#[derive(Debug, Default)]
pub struct RunSummary {
    /// The reports described as they were written (run.json takes them
    /// from here instead of reading them back).
    pub described: Vec<report::written::Written>,
    /// Input files.
    pub files: u64,
    /// Files that could not be read to their end.
    pub failed_files: Vec<String>,
    /// Packet accounting over all files.
    pub packets: u64,
    /// Packets that carried SIP.
    pub sip_packets: u64,
    /// Packets that carried no SIP.
    pub other_packets: u64,
    /// Packets that failed to decode.
    pub undecodable_packets: u64,
    /// SIP messages.
    pub sip_messages: u64,
    /// SIP messages that repeat an earlier one (retransmissions and capture
    /// duplicates, rules.md §A.2).
    pub retransmissions: u64,
    /// Captured bytes.
    pub bytes: u64,
    /// Sessions (sessions.csv rows).
    pub sessions: u64,
    /// Sessions by outcome.
    pub outcomes: Vec<(String, u64)>,
    /// Sessions by verdict.
    pub verdicts: Vec<(String, u64)>,
    /// failures.csv rows by verdict.
    pub failure_verdicts: Vec<(String, u64)>,
    /// failures.csv rows flagged RETRY_WINDOW_CUT: less than the retry
    /// window of capture after the failure (rules.md §D.3 item 4).
    pub window_cut_failures: u64,
    /// Sorted run files sessions.csv went through (long-lived sessions held
    /// many finished ones back; `pipeline::spill`).
    pub spill_runs: usize,
    /// Waiting sessions kept in spill files for a while under the memory
    /// budget (`--memory`).
    pub cold_sessions: u64,
    /// Anomalies by kind.
    pub anomalies: BTreeMap<&'static str, u64>,
    /// Sorted run files the anomalies went through (0: all in memory).
    pub anomaly_spill_runs: usize,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// The number in environment variable `name`, when set and a number: the
/// knobs tests use to run small inputs through many batches, rounds or
/// spills (each caller documents its own).
pub(crate) fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Runs one batch and writes the reports. Errors only for what stops the
/// whole run (the output directory); unreadable inputs are reported in
/// inputs.csv and [`RunSummary::failed_files`].
///
/// The files are decoded in parallel (one thread per file being read, at
/// most `--jobs` ahead of need) and merged into one capture-time timeline
/// ([`merge::merge`]); the partitions of `track::Tracking` rebuild
/// sessions from it, and rows are written as soon as they are final, so memory
/// follows the traffic in flight, not the input size.
///
/// The reports are written into a temporary directory inside the output
/// directory and moved into place at the end with `run.json`, the
/// manifest (`out_dir::Staging`): a run that fails or is killed leaves
/// the previous reports as they were.
pub fn run(cfg: &Config) -> Result<RunSummary, Error> {
    // Both checked before any file is written: first that something can be
    // analysed, then that the reports can be written.
    let inputs = inputs_to_analyse(&cfg.inputs)?;
    run_staged(cfg, &inputs, |staged| write_reports(staged, &inputs))
}

/// [`run`] once its inputs are known: `write` writes the reports into the
/// temporary directory of the configuration it is given.
fn run_staged(
    cfg: &Config,
    inputs: &[Input],
    write: impl FnOnce(&Config) -> Result<RunSummary, Error>,
) -> Result<RunSummary, Error> {
    let start = Instant::now();
    let started = std::time::SystemTime::now();
    prepare_out_dir(&cfg.out_dir)?;
    let input_files = manifest::input_files(inputs);
    let staging = out_dir::Staging::create(&cfg.out_dir)?;
    // Everything below writes into the temporary directory.
    let staged = Config {
        out_dir: staging.path().to_path_buf(),
        report_dir: Some(cfg.out_dir.clone()),
        ..cfg.clone()
    };
    let mut summary = write(&staged).map_err(|e| staging.unstage(e))?;
    if cfg.parquet {
        report::parquet::write_twins(staging.path()).map_err(|e| staging.unstage(e))?;
    }
    let files = manifest::describe_files(staging.path(), &staging.files()?, &summary.described)
        .map_err(|e| staging.unstage(e))?;
    let m = manifest::Manifest::of_run(
        cfg.policy.name().to_string(),
        started,
        input_files,
        summary.failed_files.clone(),
        files,
    );
    manifest::write(staging.path(), &m).map_err(|e| staging.unstage(e))?;
    staging.commit()?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// `--jobs`, or every core.
fn jobs_of(cfg: &Config) -> usize {
    cfg.jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

/// Emits input `i`'s messages in file order (its anomalies into the store),
/// each with what the run wants of it besides its record ([`digest::Wants`]),
/// and returns its result.
/// `begun` is set once the merge hands records on (`decode::process_file`
/// borrows a helper until then).
type Produce<'a> = dyn Fn(
        usize,
        &AnomalyStore,
        &digest::Wants,
        &AtomicBool,
        &mut (dyn FnMut(Found) + Send),
    ) -> FileResult
    + Sync
    + 'a;

/// Where a batch's messages come from: the captures, decoded (`analyze`),
/// or records files read back (`analyze --records`, `records.rs`).
struct Source<'a> {
    /// The inputs by index (display names: the reports name inputs so).
    inputs: &'a [Input],
    /// Each input's first packet time (the merge's hint).
    first_ts: Vec<Option<i64>>,
    /// Produces the messages of each input.
    produce: &'a Produce<'a>,
}

/// [`run`] without the temporary directory: writes every report into
/// `cfg.out_dir`.
fn write_reports(cfg: &Config, inputs: &[Input]) -> Result<RunSummary, Error> {
    // Helpers: see the thread plan in track_timeline.
    let threads = Threads::of(cfg, 1, 3);
    let produce = |i: usize,
                   store: &AnomalyStore,
                   wants: &digest::Wants,
                   begun: &AtomicBool,
                   emit: &mut (dyn FnMut(Found) + Send)| {
        process_file(
            &inputs[i],
            i as u32,
            cfg.progress.as_ref(),
            wants,
            threads,
            store,
            Some(begun),
            emit,
        )
    };
    let src = Source {
        inputs,
        first_ts: inputs
            .iter()
            .map(|i| capture::first_timestamp(&i.path))
            .collect(),
        produce: &produce,
    };
    write_reports_from(cfg, &src)
}

/// Tracks sessions over the messages of `src` and writes every report into
/// `cfg.out_dir`.
fn write_reports_from(cfg: &Config, src: &Source<'_>) -> Result<RunSummary, Error> {
    let start = Instant::now();
    let jobs = jobs_of(cfg);
    let Outputs {
        mut feed,
        reports,
        wants,
    } = Outputs::open(cfg, src.inputs)?;
    let mut tracking = tracking_for(cfg, jobs, cfg.messages || feed.ladders.is_some());
    let (results, mut reports) =
        track_timeline(src, jobs, &wants, &mut feed, &mut tracking, reports);
    let mut summary = RunSummary {
        files: results.len() as u64,
        retransmissions: tracking.retransmissions(),
        sessions: reports.tally.sessions,
        cold_sessions: tracking.cold_sessions(),
        ..RunSummary::default()
    };
    let figures = InputFigures::of(results, &mut summary);
    if let Some((path, source)) = tracking.take_cold_error() {
        return Err(ErrorKind::Output { path, source }.into());
    }
    if let Some(e) = feed.error.take().or_else(|| reports.error.take()) {
        return Err(e);
    }
    std::thread::scope(|s| {
        // Dropping the tracker deletes its spill files, the kernel freeing
        // their cached pages (about 10 ms for the scanner burst's): with a
        // second thread, beside the writing of the last reports.
        if jobs > 1 {
            crate::threads::scoped(s, crate::threads::FREE, move || drop(tracking));
        } else {
            drop(tracking);
        }
        if let Some(w) = feed.messages.take() {
            summary.described.push(w.finish()?);
        }
        let closed = close_rows(reports, &feed, &mut summary)?;
        write_summaries(cfg, src.inputs, &figures, closed, feed, &mut summary)
    })?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// What a batch writes to while its timeline is tracked.
struct Outputs {
    /// The tracker's side: messages.csv, report.html's ladders, anomalies.
    feed: Feed,
    /// The rules stage's side: sessions.csv, failures.csv, the tallies.
    reports: Reports,
    /// What the decoding threads make of each message besides its record.
    wants: digest::Wants,
}

impl Outputs {
    /// Creates messages.csv (with `--messages`), the anomaly store,
    /// sessions.csv and failures.csv with their headers, report.html's
    /// stores (when it or `--pcap-dir` has a table) and the partition log.
    fn open(cfg: &Config, inputs: &[Input]) -> Result<Outputs, Error> {
        let files: Vec<String> = inputs.iter().map(|i| i.display.clone()).collect();
        let mut feed = Feed {
            messages: if cfg.messages {
                Some(RawCsv::create(
                    &cfg.out_dir,
                    "messages.csv",
                    report::MESSAGES_HEADER,
                )?)
            } else {
                None
            },
            tail: Vec::new(),
            error: None,
            anomalies: AnomalyStore::new(&cfg.out_dir),
            files: files.clone(),
            ladders: None,
            tracker_kinds: BTreeMap::new(),
        };
        let mut html_rows = None;
        let table = cfg.html.or(cfg.pcap_dir.as_ref().map(|_| match cfg.table {
            0 => 500,
            n => n,
        }));
        let mut wants = digest::Wants {
            rows: cfg.messages,
            styles: None,
        };
        if let Some(n) = table {
            let (rows, ladders) = html::stores(n);
            html_rows = Some(rows);
            wants.styles = Some(ladders.styles());
            feed.ladders = Some(ladders);
        }
        let reports = Reports {
            files,
            sessions: RawCsv::create(&cfg.out_dir, "sessions.csv", report::SESSIONS_HEADER)?,
            failures: RawCsv::create(&cfg.out_dir, "failures.csv", report::FAILURES_HEADER)?,
            waiting: Some(spill::SortedRows::new(
                &cfg.out_dir,
                spill_rows_within(cfg.memory),
            )),
            out_dir: cfg.out_dir.clone(),
            spill_runs: 0,
            policy: cfg.policy.clone(),
            error: None,
            tally: rules::tally::Tally::default(),
            experience: rules::ExperienceGroups::default(),
            inconsistent: Vec::new(),
            twins: None,
            html: html_rows,
            log: match cfg.partition_log {
                Some(kn) => Some(partition_log::PartitionLog::create(cfg, kn, inputs)?),
                None => None,
            },
        };
        Ok(Outputs {
            feed,
            reports,
            wants,
        })
    }
}

/// The tracking stage of a run: W0 from the policy, its pool from `--jobs`,
/// and what the configuration asks of it.
fn tracking_for(cfg: &Config, jobs: usize, keep_messages: bool) -> track::Tracking {
    let mut tracking = track::Tracking::new(
        i64::try_from(cfg.policy.window_ns()).unwrap_or(i64::MAX),
        jobs,
        keep_messages,
    );
    if cfg.partition_log.is_some() {
        tracking.keep_origins();
    }
    if cfg.routed {
        tracking.routed();
    }
    if let Some(bytes) = cfg.memory {
        tracking.memory_budget(&cfg.out_dir, bytes);
    }
    tracking
}

/// Merges the messages of `src` into one capture-time timeline, tracks it
/// in batches and hands what finishes to the rules stage; returns every
/// file's result and the reports the stage wrote.
///
/// --jobs N: one thread reads and decodes each file (or records file),
/// this one routes the timeline to the tracking partitions and, for
/// N < 3, runs them too (track.rs: from N = 3 on they run on a pool of N
/// threads, one batch behind the routing; at N = 2 on a pool of 2 while no
/// session finishes); for N > 1 finished sessions
/// are evaluated and written on a thread of their own (`RulesStage`); with
/// N > 2 a file of 1 MiB or more is decoded in lanes on N - 1 threads
/// (lanes.rs); a smaller one gets N - 3 helpers digesting its messages
/// (digest.rs).
fn track_timeline(
    src: &Source<'_>,
    jobs: usize,
    wants: &digest::Wants,
    feed: &mut Feed,
    tracking: &mut track::Tracking,
    reports: Reports,
) -> (Vec<FileResult>, Reports) {
    let opts = merge::MergeOptions {
        prefetch: jobs,
        ..merge::MergeOptions::default()
    };
    let store = feed.anomalies.clone();
    let mut last_ts = i64::MIN;
    let begun = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut stage = RulesStage::new(reports, (jobs > 1).then_some(scope));
        let results = merge::merge(
            &src.first_ts,
            &opts,
            |i, emit| (src.produce)(i, &store, wants, &begun, emit),
            |_, found: Found, soon: Option<&Found>| {
                if last_ts == i64::MIN {
                    begun.store(true, Ordering::Relaxed);
                }
                if let Some(s) = soon {
                    s.rec.prefetch_heap();
                    tracking.soon(&s.rec);
                }
                last_ts = last_ts.max(found.rec.at.ts_ns);
                let payload = Payload {
                    seq: tracking.next_seq(),
                    ladder: feed
                        .ladders
                        .as_mut()
                        .map(|l| l.summary(&found.rec, found.ladder, found.tcp)),
                    repeat: false,
                    row: found.row,
                };
                if tracking.push(found.rec, payload) {
                    tracking.run_batch(&mut |t| {
                        let f = t.collect(feed, false);
                        stage.send(f, t);
                    });
                }
            },
        );
        // The capture ends at its last packet, not its last SIP message:
        // Timer B, the retry window and TRUNCATED are measured against it.
        let end = results
            .iter()
            .filter_map(|r: &FileResult| r.last_packet_ns)
            .fold(last_ts, i64::max);
        stage.capture_ended();
        tracking.finish(end, feed, &mut |f, t| stage.send(f, t));
        (results, stage.finish())
    })
}

/// What the inputs' results add up to: inputs.csv's rows and summary.csv's
/// counts by transport, method and status (the run's totals go into the
/// run's summary).
struct InputFigures {
    rows: Vec<InputRow>,
    transport: BTreeMap<String, u64>,
    method: BTreeMap<String, u64>,
    status: BTreeMap<u16, u64>,
}

impl InputFigures {
    /// Adds up `results` (in input order) into `summary` and the figures;
    /// prints the error of each file that could not be read to its end.
    fn of(results: Vec<FileResult>, summary: &mut RunSummary) -> InputFigures {
        let mut f = InputFigures {
            rows: Vec::with_capacity(results.len()),
            transport: BTreeMap::new(),
            method: BTreeMap::new(),
            status: BTreeMap::new(),
        };
        for r in results {
            if r.failed {
                // Printed here, in sorted input order, not from the workers.
                eprintln!("sipaudit: error: {}", r.input.error.0);
                summary.failed_files.push(r.input.file.0.clone());
            }
            summary.packets += r.input.packets;
            summary.sip_packets += r.input.sip_packets;
            summary.other_packets += r.input.other_packets;
            summary.undecodable_packets += r.input.undecodable_packets;
            summary.sip_messages += r.input.sip_messages;
            summary.bytes += r.input.bytes;
            for (k, v) in r.counters.transport {
                *f.transport.entry(format!("{}{}", k.0, k.1)).or_default() += v;
            }
            for (k, v) in r.counters.method {
                *f.method.entry(k).or_default() += v;
            }
            for (k, v) in r.counters.status {
                *f.status.entry(k).or_default() += v;
            }
            f.rows.push(r.input);
        }
        f
    }
}

/// What the rules stage leaves once its files are closed.
struct Closed {
    /// The counts of summary.csv, INCONSISTENT_EXPERIENCE included.
    tally: rules::tally::Tally,
    /// The rows report.html may show, flagged ones chosen.
    html: Option<html::RowStore>,
    /// Input names by index.
    files: Vec<String>,
}

/// Closes the rules stage's files: the partition log, sessions.csv (with
/// the flagged twins put in place) and failures.csv, each described in
/// `summary` with the verdict and outcome counts.
fn close_rows(reports: Reports, feed: &Feed, summary: &mut RunSummary) -> Result<Closed, Error> {
    summary.spill_runs = reports.spill_runs;
    let Reports {
        sessions,
        failures,
        mut tally,
        inconsistent,
        twins,
        html: mut html_rows,
        files,
        log,
        ..
    } = reports;
    if let Some(log) = log {
        log.finish(&partition_log::Trailer {
            sessions: summary.sessions,
            inconsistent: inconsistent.len() as u64,
            tracker_anomalies: feed
                .tracker_kinds
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        })?;
    }
    summary
        .described
        .push(finish_sessions(sessions, twins, &inconsistent)?);
    summary.described.push(failures.finish()?);
    if let Some(h) = html_rows.as_mut() {
        for &id in &inconsistent {
            h.use_flagged(id);
        }
    }
    tally.add_flag(
        rules::catalogue::Flag::InconsistentExperience,
        inconsistent.len() as u64,
    );
    summary.window_cut_failures = tally.window_cut;
    summary.verdicts = report::summary::spelled(&tally.verdict);
    summary.failure_verdicts = report::summary::spelled(&tally.failure_verdict);
    summary.outcomes = report::summary::spelled(&tally.outcome);
    Ok(Closed {
        tally,
        html: html_rows,
        files,
    })
}

/// Writes inputs.csv, anomalies.csv, summary.csv and report.html.
fn write_summaries(
    cfg: &Config,
    inputs: &[Input],
    figures: &InputFigures,
    closed: Closed,
    mut feed: Feed,
    summary: &mut RunSummary,
) -> Result<(), Error> {
    report::write_csv(
        &cfg.out_dir,
        "inputs.csv",
        &figures.rows,
        report::INPUTS_HEADER,
    )?;
    let written = feed.anomalies.write(&cfg.out_dir, &feed.files)?;
    summary.anomalies = written.by_kind;
    summary.anomaly_spill_runs = written.spill_runs;
    let totals = [
        ("files", summary.files),
        ("files_with_errors", summary.failed_files.len() as u64),
        ("packets", summary.packets),
        ("sip_packets", summary.sip_packets),
        ("other_packets", summary.other_packets),
        ("undecodable_packets", summary.undecodable_packets),
        ("sip_messages", summary.sip_messages),
        ("retransmissions", summary.retransmissions),
        ("sessions", summary.sessions),
    ];
    let srows = report::summary::summary_rows(
        &closed.tally,
        &report::summary::BatchCounts {
            totals: &totals,
            policy: cfg.policy.name(),
            transport: &figures.transport,
            method: &figures.method,
            status: &figures.status,
            anomalies: &summary.anomalies,
        },
    );
    report::write_csv(&cfg.out_dir, "summary.csv", &srows, report::SUMMARY_HEADER)?;
    if let (Some(rows), Some(ladders)) = (closed.html, feed.ladders.take()) {
        let paths: Vec<PathBuf> = inputs.iter().map(|i| i.path.clone()).collect();
        html::write(
            &cfg.out_dir,
            rows,
            ladders,
            &html::RunFacts {
                inputs: &figures.rows,
                totals: &totals,
                summary: &srows,
                policy: cfg.policy.name(),
                files: &closed.files,
                pcap_dir: cfg.pcap_dir.as_deref(),
                report_dir: cfg.report_dir.as_deref().unwrap_or(&cfg.out_dir),
                paths: &paths,
            },
            cfg.html.is_some(),
        )?;
    }
    Ok(())
}
