//! `sipaudit merge-reports`: the reports of the `analyze --records
//! --partition K/N` runs of one batch (one output directory per K) merged
//! into the reports `analyze` gives on the whole batch (docs/records.md,
//! "Merging partitions"; docs/DESIGN.md, "Scale-out").
//!
//! The merge reads only the partitions' logs (`pipeline::partition_log`), the partitions' summary.csv and
//! inputs.csv. It numbers every session as one run would (by the time and
//! tracking partition it was numbered at, then its order in its
//! partition), orders the rows by start then id (through
//! [`super::spill::SortedRows`], so memory stays bounded), decides
//! INCONSISTENT_EXPERIENCE over every partition's sessions, and adds up
//! summary.csv. It refuses what it cannot merge exactly: B2BUA/AS legs
//! whose correlation values cross partitions (without `--routes`; with
//! them, only legs the router left apart that met in one tracker of one
//! run), and sessions of two partitions numbered at the same instant in
//! one tracking partition.
//!
//! Owns: the merge. Never tracks sessions or
//! evaluates a rule (rules::inconsistent_experience decides the batch-wide
//! flag).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::partition_log::{
    Entry, ExperienceText, Header, LOG_FORMAT, LOG_NAME, LOG_VERSION, Line, Trailer, output,
};
use super::{Input, PARTITIONS, manifest, out_dir, spill};
use crate::error::{Error, ErrorKind};
use crate::report::rows::SummaryRow;
use crate::report::{self, RawCsv, Text};
use crate::rules::Experience;

fn bad(path: &Path, detail: impl Into<String>) -> Error {
    ErrorKind::MergeInput {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
    .into()
}

/// One partition's output directory.
struct Part {
    dir: PathBuf,
    log: PathBuf,
    header: Header,
    trailer: Trailer,
}

/// Streams the session entries of `p`'s log.
fn entries(p: &Part, each: &mut dyn FnMut(Entry) -> Result<(), Error>) -> Result<(), Error> {
    let f = File::open(&p.log).map_err(|e| bad(&p.log, e.to_string()))?;
    for (n, line) in BufReader::with_capacity(1 << 16, f).lines().enumerate() {
        let line = line.map_err(|e| bad(&p.log, e.to_string()))?;
        if let Line::Session(e) = parse(&p.log, n, &line)? {
            each(*e)?;
        }
    }
    Ok(())
}

fn parse(path: &Path, n: usize, line: &str) -> Result<Line, Error> {
    serde_json::from_str(line).map_err(|e| bad(path, format!("line {}: {e}", n + 1)))
}

/// Opens a partition directory (or its log file): header and trailer.
fn open(dir: &Path) -> Result<Part, Error> {
    let log = if dir.is_dir() {
        dir.join(LOG_NAME)
    } else {
        dir.to_path_buf()
    };
    let dir = log.parent().map_or_else(PathBuf::new, Path::to_path_buf);
    let f = File::open(&log).map_err(|e| {
        bad(
            &log,
            format!("{e} (not the output of `analyze --records --partition K/N`?)"),
        )
    })?;
    let (mut header, mut trailer) = (None, None);
    for (n, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| bad(&log, e.to_string()))?;
        if n == 0 {
            let first: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| bad(&log, format!("line 1: {e}")))?;
            check_version(&log, &first)?;
        }
        trailer = None;
        match parse(&log, n, &line)? {
            Line::Header(h) if n == 0 => header = Some(h),
            Line::Header(_) => return Err(bad(&log, format!("line {}: a second header", n + 1))),
            Line::Session(_) => {}
            Line::End(t) => trailer = Some(t),
        }
    }
    let header = header.ok_or_else(|| bad(&log, "empty log"))?;
    let trailer =
        trailer.ok_or_else(|| bad(&log, "the log has no trailer: the run did not end"))?;
    Ok(Part {
        dir,
        log,
        header,
        trailer,
    })
}

/// Refuses another format or major version before the header is decoded.
fn check_version(log: &Path, first: &serde_json::Value) -> Result<(), Error> {
    let h = &first["header"];
    if h["format"] != LOG_FORMAT {
        return Err(bad(log, format!("not a {LOG_FORMAT} log")));
    }
    let v = h["version"].as_str().unwrap_or("");
    let major = |v: &str| v.split('.').next().unwrap_or("").to_string();
    if major(v) != major(LOG_VERSION) {
        return Err(bad(
            log,
            format!("log version {v} is not readable by this sipaudit (reads {LOG_VERSION})"),
        ));
    }
    Ok(())
}

/// Checks that `parts` are the N partitions of one batch, each once, and
/// sorts them by K.
fn check_parts(parts: &mut [Part]) -> Result<(), Error> {
    let first = parts
        .first()
        .ok_or_else(|| bad(Path::new("."), "no input"))?;
    let h0 = Header {
        partition: 0,
        ..first.header.clone()
    };
    let d0 = first.dir.clone();
    for p in parts.iter() {
        let h = Header {
            partition: 0,
            ..p.header.clone()
        };
        let differs = [
            (h.partitions != h0.partitions, "the number of partitions N"),
            (h.policy != h0.policy || h.w0_ns != h0.w0_ns, "the policy"),
            (
                h.sipaudit_version != h0.sipaudit_version,
                "the sipaudit version",
            ),
            (h.version != h0.version, "the log version"),
            (h.inputs != h0.inputs, "the inputs"),
            (h.routed != h0.routed, "whether routes cut the partitions"),
            (
                h.tracking_partitions != h0.tracking_partitions,
                "the tracking partitions",
            ),
        ];
        if let Some((_, what)) = differs.iter().find(|d| d.0) {
            return Err(bad(
                &p.dir,
                format!("{what} differs from {}'s", d0.display()),
            ));
        }
    }
    parts.sort_by_key(|p| p.header.partition);
    for w in parts.windows(2) {
        if w[0].header.partition == w[1].header.partition {
            return Err(bad(
                &w[1].dir,
                format!(
                    "partition {}/{} again (also {})",
                    w[1].header.partition,
                    h0.partitions,
                    w[0].dir.display()
                ),
            ));
        }
    }
    let n = h0.partitions;
    if let Some(k) = (0..n).find(|&k| parts.get(k).is_none_or(|p| p.header.partition != k)) {
        return Err(bad(
            &d0,
            format!(
                "partition {k}/{n} is missing ({} of {n} given)",
                parts.len()
            ),
        ));
    }
    Ok(())
}

/// What the merge wrote.
#[derive(Debug, Default)]
pub struct Merged {
    /// Partitions merged.
    pub partitions: usize,
    /// Sessions (sessions.csv rows).
    pub sessions: u64,
    /// Wall-clock time.
    pub elapsed: std::time::Duration,
}

/// `sipaudit merge-reports -o OUT DIR...` (module documentation); with
/// `parquet`, also the Parquet twins.
pub fn merge_reports(dirs: &[PathBuf], out: &Path, parquet: bool) -> Result<Merged, Error> {
    let start = Instant::now();
    let started = std::time::SystemTime::now();
    let mut parts = dirs
        .iter()
        .map(|d| open(d))
        .collect::<Result<Vec<_>, _>>()?;
    check_parts(&mut parts)?;
    let ids = number(&parts)?;
    out_dir::prepare_out_dir(out)?;
    let staging = out_dir::Staging::create(out)?;
    let (inconsistent, described) =
        write_rows(&parts, &ids, staging.path()).map_err(|e| staging.unstage(e))?;
    let sessions = ids.iter().map(|v| v.len() as u64).sum();
    write_summary(&parts, inconsistent, sessions, staging.path())
        .and_then(|()| copy_inputs(&parts, staging.path()))
        .map_err(|e| staging.unstage(e))?;
    if parquet {
        report::parquet::write_twins(staging.path()).map_err(|e| staging.unstage(e))?;
    }
    let logs: Vec<Input> = parts
        .iter()
        .map(|p| Input {
            display: p.log.to_string_lossy().into_owned(),
            path: p.log.clone(),
        })
        .collect();
    let files = manifest::describe_files(staging.path(), &staging.files()?, &described)
        .map_err(|e| staging.unstage(e))?;
    let m = manifest::Manifest::of_run(
        parts[0].header.policy.clone(),
        started,
        manifest::input_files(&logs),
        Vec::new(),
        files,
    );
    manifest::write(staging.path(), &m).map_err(|e| staging.unstage(e))?;
    staging.commit()?;
    Ok(Merged {
        partitions: parts.len(),
        sessions,
        elapsed: start.elapsed(),
    })
}

/// The final id of every session, by partition and local id - 1: sessions
/// are numbered by (time, tracking partition) as one run numbers them, and
/// within one tracking partition in their local order. Refuses the two
/// cases that order cannot decide: one tracking partition numbering
/// sessions of two partitions at the same instant, and correlation values
/// (B2BUA/AS legs) shared by partitions within W0.
fn number(parts: &[Part]) -> Result<Vec<Vec<u64>>, Error> {
    let mut keys: Vec<(i64, u32, usize, u64)> = Vec::new();
    // (value, tracking partition when routed, time, partition).
    let routed = parts.iter().all(|p| p.header.routed);
    let mut corr: Vec<((u64, u32), i64, usize)> = Vec::new();
    for (k, p) in parts.iter().enumerate() {
        let mut n = 0u64;
        entries(p, &mut |e| {
            n += 1;
            keys.push((e.t, e.p, k, e.id));
            let tp = if routed { e.p } else { 0 };
            corr.extend(e.corr.iter().map(|&(v, ts)| ((v, tp), ts, k)));
            Ok(())
        })?;
        if n != p.trailer.sessions {
            return Err(bad(
                &p.log,
                format!("{n} sessions, the trailer says {}", p.trailer.sessions),
            ));
        }
    }
    keys.sort_unstable();
    if let Some(w) = keys
        .windows(2)
        .find(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1) && w[0].2 != w[1].2)
    {
        return Err(bad(
            &parts[w[1].2].dir,
            format!(
                "tracking partition {} numbered sessions of {} and of this partition at the same instant: \
                 their order is not recorded (use N dividing {PARTITIONS})",
                w[0].1,
                parts[w[0].2].dir.display()
            ),
        ));
    }
    check_corr(parts, &mut corr)?;
    let mut ids: Vec<Vec<u64>> = parts
        .iter()
        .map(|p| vec![0; p.trailer.sessions as usize])
        .collect();
    for (g, &(_, _, k, id)) in keys.iter().enumerate() {
        let slot = usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| ids[k].get_mut(i))
            .ok_or_else(|| bad(&parts[k].log, format!("session id {id} out of range")))?;
        *slot = g as u64 + 1;
    }
    Ok(ids)
}

/// Refuses correlation values seen in two partitions within W0: one run
/// may have tracked those legs together (router.rs, "sticky union"). When
/// every partition was cut by routes, the legs the router ties are in one
/// partition already, and a value only matters within one tracking
/// partition (`corr` is keyed by it then): two legs the router left apart
/// meet in one tracker of one run only when their homes fall in the same
/// tracking partition.
fn check_corr(parts: &[Part], corr: &mut [((u64, u32), i64, usize)]) -> Result<(), Error> {
    let w0 = parts[0].header.w0_ns;
    corr.sort_unstable();
    // Per value, in time order: the latest entry, and the latest one of
    // another partition than it; an entry's nearest earlier entry of
    // another partition is one of them (one pass, whatever the value's count).
    let mut last: Option<((u64, u32), i64, usize)> = None;
    let mut other: Option<(i64, usize)> = None;
    for &(v, ts, k) in corr.iter() {
        if last.is_none_or(|l| l.0 != v) {
            (last, other) = (Some((v, ts, k)), None);
            continue;
        }
        let (_, lts, lk) = last.expect("same value");
        let near = if lk != k { Some((lts, lk)) } else { other };
        if let Some((_, ak)) = near.filter(|&(ats, _)| ts.saturating_sub(ats) <= w0) {
            return Err(bad(
                &parts[k].dir,
                format!(
                    "a B2BUA/AS leg correlation (Session-ID, icid-value or X-CID) is shared with {} \
                     within W0: one run tracks such legs together, a merge of partitions cannot \
                     (docs/records.md)",
                    parts[ak].dir.display()
                ),
            ));
        }
        if lk != k {
            other = Some((lts, lk));
        }
        last = Some((v, ts, k));
    }
    Ok(())
}

/// Column of `name` in `header`.
fn column(header: &[&str], name: &str) -> usize {
    header
        .iter()
        .position(|h| *h == name)
        .expect("a report column of the contract")
}

/// Writes sessions.csv and failures.csv into `dir` with final ids, in
/// start order, INCONSISTENT_EXPERIENCE decided over every partition;
/// returns how many sessions got it, and the two files described.
fn write_rows(
    parts: &[Part],
    ids: &[Vec<u64>],
    dir: &Path,
) -> Result<(u64, Vec<report::written::Written>), Error> {
    let mut sorted = spill::SortedRows::new(dir, super::spill_rows());
    let mut exp: Vec<Experience> = Vec::new();
    let mut sink = |_: &[u8], _: &[u8]| Ok(());
    for (k, p) in parts.iter().enumerate() {
        let gid = |id: u64| ids[k].get((id as usize).wrapping_sub(1)).copied();
        entries(p, &mut |e| {
            let g = gid(e.id)
                .ok_or_else(|| bad(&p.log, format!("session id {} out of range", e.id)))?;
            if let Some(x) = &e.experience {
                exp.push(experience(&p.log, g, x)?);
            }
            let start = e.start;
            sorted.insert((start, g), renumbered(e, g, &gid));
            // Writes nothing (every start is later); spills when over limit.
            sorted
                .flush(Some(i64::MIN), &mut sink)
                .map_err(|e| output(dir, e))
        })?;
    }
    let inconsistent = crate::rules::inconsistent_experience(&exp);
    let described = write_sorted(dir, sorted, &inconsistent)?;
    Ok((inconsistent.len() as u64, described))
}

/// The rows of logged session `e` under its final id `g`, its related
/// sessions' ids mapped by `gid` (those of another partition dropped),
/// encoded.
fn renumbered(e: Entry, g: u64, gid: &dyn Fn(u64) -> Option<u64>) -> spill::Rows {
    let s_id = column(report::SESSIONS_HEADER, "session");
    let s_rel = column(report::SESSIONS_HEADER, "related_sessions");
    let f_id = column(report::FAILURES_HEADER, "session");
    let mut related: Vec<u64> = e.related.iter().filter_map(|&r| gid(r)).collect();
    related.sort_unstable();
    let related = related
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(";");
    let fix = |mut c: Vec<String>| {
        c[s_id] = g.to_string();
        c[s_rel].clone_from(&related);
        encoded(&c)
    };
    let mut failures = Vec::new();
    for mut f in e.failures {
        f[f_id] = g.to_string();
        report::encode(&f, &mut failures);
    }
    spill::Rows {
        session: fix(e.row),
        flagged: e.twin.map(fix),
        failures,
    }
}

/// sessions.csv and failures.csv from the rows of `sorted` (every row
/// waited for the end: `flush` wrote none), the sessions of `inconsistent`
/// flagged; the two files described.
fn write_sorted(
    dir: &Path,
    sorted: spill::SortedRows,
    inconsistent: &[u64],
) -> Result<Vec<report::written::Written>, Error> {
    let mut sessions = RawCsv::create(dir, "sessions.csv", report::SESSIONS_HEADER)?;
    let mut failures = RawCsv::create(dir, "failures.csv", report::FAILURES_HEADER)?;
    let mut err = None;
    let twins = sorted
        .finish(
            &|id| inconsistent.binary_search(&id).is_ok(),
            &mut |s, f| {
                if err.is_none() {
                    err = sessions.raw(s).and_then(|()| failures.raw(f)).err();
                }
                Ok(())
            },
        )
        .map_err(|e| output(dir, e))?;
    if let Some(e) = err {
        return Err(e);
    }
    // No twins, since no row was written before the end; the shared
    // ending all the same.
    Ok(vec![
        super::finish_sessions(sessions, twins, inconsistent)?,
        failures.finish()?,
    ])
}

fn encoded(cells: &[String]) -> Vec<u8> {
    let mut b = Vec::new();
    report::encode(&cells, &mut b);
    b
}

/// The [`Experience`] of session `g` read back from its spellings.
fn experience(log: &Path, g: u64, x: &ExperienceText) -> Result<Experience, Error> {
    fn p<T: std::str::FromStr<Err = crate::rules::catalogue::UnknownName>>(
        log: &Path,
        what: &str,
        v: &str,
    ) -> Result<T, Error> {
        v.parse().map_err(|e| bad(log, format!("{what}: {e}")))
    }
    Ok(Experience {
        session: g,
        key: (
            x.subscriber.clone(),
            p(log, "destination", &x.destination)?,
            x.refused.clone(),
        ),
        result: (
            p(log, "outcome", &x.outcome)?,
            p(log, "verdict", &x.verdict)?,
        ),
        context: (
            x.visited.clone(),
            x.access.clone(),
            match &x.ue_profile {
                Some(u) => Some(p(log, "ue_profile", u)?),
                None => None,
            },
        ),
    })
}

/// summary.csv's dimensions in file order (report::summary::summary_rows).
const DIMENSIONS: &[&str] = &[
    "total",
    "verdict",
    "failure_verdict",
    "failure_class",
    "capability",
    "ue_profile",
    "policy_verdict",
    "policy",
    "outcome",
    "destination_class",
    "flag",
    "transport",
    "method",
    "status",
    "anomaly",
];

/// Dimensions counted over the batch's inputs: the same in every partition.
const PER_INPUT: &[&str] = &["policy", "transport", "method", "status"];

/// Totals counted over the inputs (the others, `retransmissions` and
/// `sessions`, over each partition's messages).
const INPUT_TOTALS: &[&str] = &[
    "files",
    "files_with_errors",
    "packets",
    "sip_packets",
    "other_packets",
    "undecodable_packets",
    "sip_messages",
];

type Counts = Vec<(String, String, u64)>;

fn read_summary(p: &Part) -> Result<Counts, Error> {
    let path = p.dir.join("summary.csv");
    let mut r = csv::Reader::from_path(&path).map_err(|e| bad(&path, e.to_string()))?;
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| bad(&path, e.to_string()))?;
        let count = rec
            .get(2)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad(&path, format!("not a count: {rec:?}")))?;
        out.push((rec[0].to_string(), rec[1].to_string(), count));
    }
    Ok(out)
}

/// summary.csv of the whole batch from the partitions' (module docs).
fn write_summary(
    parts: &[Part],
    inconsistent: u64,
    sessions: u64,
    dir: &Path,
) -> Result<(), Error> {
    let all: Vec<Counts> = parts.iter().map(read_summary).collect::<Result<_, _>>()?;
    let mut dims: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    let flag = crate::rules::catalogue::Flag::InconsistentExperience.to_string();
    for (k, counts) in all.iter().enumerate() {
        let tracker = &parts[k].trailer.tracker_anomalies;
        for (d, v, n) in counts {
            let dim = *DIMENSIONS.iter().find(|x| *x == d).ok_or_else(|| {
                bad(
                    &parts[k].dir.join("summary.csv"),
                    format!("unknown dimension {d}"),
                )
            })?;
            let once =
                PER_INPUT.contains(&dim) || (dim == "total" && INPUT_TOTALS.contains(&v.as_str()));
            // The decoding's anomalies are in every partition's counts; the
            // tracker's only in their own.
            let n = match dim {
                "anomaly" if k > 0 => tracker.get(v).copied().unwrap_or(0),
                "flag" if *v == flag => 0,
                _ if once && k > 0 => 0,
                _ => *n,
            };
            *dims.entry(dim).or_default().entry(v.clone()).or_default() += n;
        }
    }
    if inconsistent > 0 {
        dims.entry("flag").or_default().insert(flag, inconsistent);
    }
    let mut rows = Vec::new();
    for &dim in DIMENSIONS {
        let Some(m) = dims.get(dim) else { continue };
        let order: Vec<(String, u64)> =
            if dim == "total" || dim == "status" || PER_INPUT.contains(&dim) {
                // Kept in partition 0's order (totals in a fixed order, status
                // codes by number).
                all[0]
                    .iter()
                    .filter(|(d, _, _)| d == dim)
                    .map(|(_, v, _)| (v.clone(), m[v]))
                    .collect()
            } else {
                m.iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(v, n)| (v.clone(), *n))
                    .collect()
            };
        rows.extend(order.into_iter().map(|(v, n)| SummaryRow {
            dimension: dim,
            count: if dim == "total" && v == "sessions" {
                sessions
            } else {
                n
            },
            value: Text(v),
        }));
    }
    report::write_csv(dir, "summary.csv", &rows, report::SUMMARY_HEADER)
}

/// inputs.csv: the same in every partition (each keeps every input's
/// accounting whole); refused when they differ.
fn copy_inputs(parts: &[Part], dir: &Path) -> Result<(), Error> {
    let read = |p: &Part| {
        let path = p.dir.join("inputs.csv");
        std::fs::read(&path).map_err(|e| bad(&path, e.to_string()))
    };
    let first = read(&parts[0])?;
    for p in &parts[1..] {
        if read(p)? != first {
            return Err(bad(
                &p.dir.join("inputs.csv"),
                format!("differs from {}'s", parts[0].dir.display()),
            ));
        }
    }
    let path = dir.join("inputs.csv");
    std::fs::write(&path, first).map_err(|e| output(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_follow_the_summary_order() {
        // Every dimension summary_rows writes, in its order.
        let t = crate::rules::tally::Tally::default();
        let (tr, me, st) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let an = BTreeMap::new();
        let rows = report::summary::summary_rows(
            &t,
            &report::summary::BatchCounts {
                totals: &[("files", 1)],
                policy: "p",
                transport: &tr,
                method: &me,
                status: &st,
                anomalies: &an,
            },
        );
        let seen: Vec<&str> = rows.iter().map(|r| r.dimension).collect();
        let mut pos = seen.iter().map(|d| DIMENSIONS.iter().position(|x| x == d));
        assert!(pos.clone().all(|p| p.is_some()), "{seen:?}");
        let pos: Vec<usize> = pos.by_ref().flatten().collect();
        assert!(pos.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    }

    fn part(k: usize) -> Part {
        Part {
            dir: PathBuf::from(format!("p{k}")),
            log: PathBuf::from(format!("p{k}/{LOG_NAME}")),
            header: Header {
                format: LOG_FORMAT.into(),
                version: LOG_VERSION.into(),
                sipaudit_version: String::new(),
                partition: k,
                partitions: 2,
                tracking_partitions: PARTITIONS,
                policy: String::new(),
                w0_ns: 10,
                inputs: Vec::new(),
                routed: false,
            },
            trailer: Trailer {
                sessions: 0,
                inconsistent: 0,
                tracker_anomalies: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn cells_are_encoded_as_the_reports_encode_them() {
        let row = vec!["3".to_string(), "a,b".into(), String::new()];
        assert_eq!(encoded(&row), b"3,\"a,b\",\n");
    }

    #[test]
    fn a_correlation_value_of_two_partitions_within_w0_is_refused() {
        let parts = [part(0), part(1)];
        // Value 7 many times in partition 0, once in 1, 11 ns after the
        // last of 0: apart. Value 9 in both, 10 ns apart: refused.
        let mut apart: Vec<((u64, u32), i64, usize)> = (0..1000).map(|t| ((7, 0), t, 0)).collect();
        apart.push(((7, 0), 1010, 1));
        apart.push(((8, 0), 0, 1));
        apart.push(((8, 0), 1, 1));
        assert!(check_corr(&parts, &mut apart).is_ok());
        let mut near = apart.clone();
        near.extend([
            ((9, 0), 100, 1),
            ((9, 0), 50, 0),
            ((9, 0), 110, 1),
            ((9, 0), 100, 0),
        ]);
        let e = check_corr(&parts, &mut near).unwrap_err().to_string();
        assert!(e.contains("p0") && e.contains("p1"), "{e}");
        // Entries of one partition in a row after the other partition's.
        let mut behind = vec![
            ((5, 0), 0, 1),
            ((5, 0), 3, 0),
            ((5, 0), 4, 0),
            ((5, 0), 9, 0),
        ];
        assert!(check_corr(&parts, &mut behind).is_err());
        let mut far = vec![((5, 0), 0, 1), ((5, 0), 11, 0), ((5, 0), 12, 0)];
        assert!(check_corr(&parts, &mut far).is_ok());
        // Cut by routes, the value is keyed by tracking partition too: in
        // two tracking partitions, no tracker of one run saw both.
        let mut two_trackers = vec![((9, 3), 100, 1), ((9, 4), 100, 0)];
        assert!(check_corr(&parts, &mut two_trackers).is_ok());
    }
}
