//! The map and reduce steps over message records (issue "beyond one
//! machine", docs/records.md).
//!
//! - [`extract_records`] (`sipaudit extract-records`): each input capture
//!   decoded as `analyze` decodes it, its messages written in file order to
//!   `<out>/<input file name>.records.parquet` with what its reports need
//!   besides ([`FileFacts`]). No state crosses inputs: every input can be
//!   extracted on another machine.
//! - [`run_records`] (`sipaudit analyze --records`): records files read
//!   back as the inputs of a batch, through the same merge, tracker, rules
//!   and reports as `analyze` (`write_reports_from`), optionally keeping
//!   one partition of the messages only.
//!
//! Owns: output naming, the map step's threads, and the conversion between
//! `FileResult` and [`FileFacts`]. Never decodes Parquet itself
//! ([`crate::records`] does) and never tracks sessions by itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

use super::anomalies::AnomalyStore;
use super::extsort::Row;
use super::routes::Routes;
use super::{
    Config, Counters, FileResult, Found, Input, RunSummary, Source, Threads, inputs_to_analyse,
    process_file, run_staged, write_reports_from,
};
use crate::capture;
use crate::dialog::partition_of;
use crate::error::{Error, ErrorKind};
use crate::packet::TunnelPath;
use crate::records::schema::SUFFIX;
use crate::records::write::RecordsWriter;
use crate::records::{FileFacts, StoredAnomaly, read};
use crate::report::Text;
use crate::report::rows::InputRow;

/// Messages handed from a file's decoding thread to its writer at a time.
const BATCH: usize = 4096;

/// The records file name of each input: `<file name>.records.parquet`; when
/// inputs in different directories share a file name, each of them gets
/// `.<the first 8 hex digits of the SHA-256 of its path as named>` before
/// `.records.parquet`, so no two inputs of a run write the same file.
pub fn output_names(inputs: &[Input]) -> Vec<String> {
    let base = |i: &Input| {
        i.path
            .file_name()
            .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned())
    };
    let names: Vec<String> = inputs.iter().map(base).collect();
    names
        .iter()
        .zip(inputs)
        .map(|(n, i)| {
            if names.iter().filter(|m| *m == n).count() == 1 {
                format!("{n}{SUFFIX}")
            } else {
                let h = Sha256::digest(i.display.as_bytes());
                let hex: String = h[..4].iter().map(|b| format!("{b:02x}")).collect();
                format!("{n}.{hex}{SUFFIX}")
            }
        })
        .collect()
}

fn output(path: &Path, source: std::io::Error) -> Error {
    ErrorKind::Output {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// A directory removed with what it holds when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `sipaudit extract-records`: writes the records file of every input of
/// `cfg.inputs` into `out` (created if missing). Inputs are extracted one
/// after the other, each on two threads (decoding, writing) plus
/// `--jobs` - 2 digest helpers. Unreadable inputs are reported like
/// `analyze` does ([`RunSummary::failed_files`]) and still get a file (with
/// the messages read before the error).
pub fn extract_records(cfg: &Config, out: &Path) -> Result<RunSummary, Error> {
    let start = Instant::now();
    let inputs = inputs_to_analyse(&cfg.inputs)?;
    std::fs::create_dir_all(out).map_err(|e| output(out, e))?;
    let tmp = TempDir(out.join(format!(".sipaudit-records-{}.tmp", std::process::id())));
    std::fs::create_dir_all(&tmp.0).map_err(|e| output(&tmp.0, e))?;
    let threads = Threads::of(cfg, 0, 2);
    let mut summary = RunSummary::default();
    for (input, name) in inputs.iter().zip(output_names(&inputs)) {
        let r = extract_one(input, &out.join(&name), threads, &tmp.0)?;
        if r.failed {
            eprintln!("sipaudit: error: {}", r.error);
            summary.failed_files.push(r.file.clone());
        }
        summary.files += 1;
        summary.packets += r.packets;
        summary.sip_packets += r.sip_packets;
        summary.other_packets += r.other_packets;
        summary.undecodable_packets += r.undecodable_packets;
        summary.sip_messages += r.sip_messages;
        summary.bytes += r.bytes;
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Decodes `input` and writes its records to `dest` (through a file in
/// `tmp`, renamed when complete).
fn extract_one(
    input: &Input,
    dest: &Path,
    threads: Threads,
    tmp: &Path,
) -> Result<FileFacts, Error> {
    let first_packet_ns = capture::first_timestamp(&input.path);
    let store = AnomalyStore::new(tmp);
    let part = tmp.join(dest.file_name().unwrap_or_default());
    let mut w = RecordsWriter::create(&part, &input.display)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Found>>(4);
    let (result, written) = std::thread::scope(|s| {
        let store = &store;
        let h = crate::threads::scoped(s, crate::threads::FILE, move || {
            let mut batch = Vec::with_capacity(BATCH);
            let wants = super::digest::Wants::default();
            let r = process_file(input, 0, None, &wants, threads, store, None, &mut |f| {
                batch.push(f);
                if batch.len() == BATCH {
                    // A send fails only when the writer stopped on an error.
                    let _ = tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                }
            });
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            r
        });
        let mut written = Ok(());
        for b in rx {
            for f in &b {
                written = w.push(&f.rec, f.rec.partition);
                if written.is_err() {
                    break;
                }
            }
            if written.is_err() {
                break;
            }
        }
        let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (r, written)
    });
    written?;
    let anomalies = store.take_rows().map_err(|e| output(tmp, e))?;
    let facts = facts_of(result, first_packet_ns, anomalies);
    w.finish(&facts)?;
    std::fs::rename(&part, dest).map_err(|e| output(dest, e))?;
    Ok(facts)
}

/// The facts of a decoded input.
fn facts_of(r: FileResult, first_packet_ns: Option<i64>, anomalies: Vec<Row>) -> FileFacts {
    let i = r.input;
    let mut transport = std::collections::BTreeMap::new();
    for ((t, p), v) in r.counters.transport {
        *transport.entry(format!("{t}{p}")).or_default() += v;
    }
    FileFacts {
        file: i.file.0,
        format: i.format.into(),
        compression: i.compression.into(),
        link_types: i.link_types,
        packets: i.packets,
        bytes: i.bytes,
        first_time: i.first_time,
        last_time: i.last_time,
        sip_packets: i.sip_packets,
        other_packets: i.other_packets,
        undecodable_packets: i.undecodable_packets,
        sip_messages: i.sip_messages,
        error: i.error.0,
        failed: r.failed,
        first_packet_ns,
        last_packet_ns: r.last_packet_ns,
        transport,
        method: r.counters.method,
        status: r.counters.status,
        anomalies: anomalies
            .into_iter()
            .map(|a| StoredAnomaly {
                first: a.first,
                last: a.last,
                count: a.count,
                kind: a.kind.into(),
                detail: a.detail,
            })
            .collect(),
        sipaudit_version: env!("CARGO_PKG_VERSION").into(),
    }
}

/// An id of the reports (anomaly kind, transport name) read from a records
/// file, as the `&'static str` the reports keep: each distinct id is
/// allocated once per process (ids are few; [`check_facts`] refuses
/// anything that does not look like one).
fn intern(s: &str) -> &'static str {
    static IDS: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut g = IDS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = g.get(s) {
        return k;
    }
    let k: &'static str = Box::leak(s.to_string().into_boxed_str());
    g.insert(k);
    k
}

/// The inputs.csv spelling of `v` among `known`.
fn known(v: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().copied().find(|k| *k == v)
}

const FORMATS: &[&str] = &["pcap", "pcapng", ""];
const COMPRESSIONS: &[&str] = &["", "gzip", "zstd"];

/// Checks what [`file_result`] and [`intern`] rely on.
fn check_facts(path: &Path, f: &FileFacts) -> Result<(), Error> {
    let id = |s: &str, extra: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || extra.as_bytes().contains(&b)
            })
    };
    let bad = if known(&f.format, FORMATS).is_none() {
        Some(format!("unknown format {:?}", f.format))
    } else if known(&f.compression, COMPRESSIONS).is_none() {
        Some(format!("unknown compression {:?}", f.compression))
    } else if let Some(a) = f.anomalies.iter().find(|a| !id(&a.kind, "_")) {
        Some(format!("not an anomaly id: {:?}", a.kind))
    } else {
        f.transport
            .keys()
            .find(|t| !id(t, "_/"))
            .map(|t| format!("not a transport name: {t:?}"))
    };
    match bad {
        Some(detail) => Err(ErrorKind::Records {
            path: path.to_path_buf(),
            detail,
        }
        .into()),
        None => Ok(()),
    }
}

/// The [`FileResult`] the decoding of the input of `f` gave.
fn file_result(f: &FileFacts) -> FileResult {
    let input = InputRow {
        file: Text(f.file.clone()),
        format: known(&f.format, FORMATS).unwrap_or(""),
        compression: known(&f.compression, COMPRESSIONS).unwrap_or(""),
        link_types: f.link_types.clone(),
        packets: f.packets,
        bytes: f.bytes,
        first_time: f.first_time.clone(),
        last_time: f.last_time.clone(),
        sip_packets: f.sip_packets,
        other_packets: f.other_packets,
        undecodable_packets: f.undecodable_packets,
        sip_messages: f.sip_messages,
        error: Text(f.error.clone()),
    };
    // A transport is counted under its name as written: on an empty tunnel
    // path, the name is the whole `transport` value.
    let transport = f
        .transport
        .iter()
        .map(|(k, v)| ((TunnelPath::default(), intern(k)), *v))
        .collect();
    FileResult {
        input,
        last_packet_ns: f.last_packet_ns,
        counters: Counters {
            transport,
            method: f.method.clone(),
            status: f.status.clone(),
        },
        failed: f.failed,
    }
}

/// The records files named: files as named, directories searched
/// (recursively, sorted) for `*.records.parquet`.
fn records_paths(named: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in named {
        if p.is_dir() {
            for i in super::expand_inputs(std::slice::from_ref(p)) {
                if i.display.ends_with(SUFFIX) {
                    out.push(i.path);
                }
            }
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(ErrorKind::NoInput {
            missing: Vec::new(),
            empty_dirs: named.to_vec(),
        }
        .into());
    }
    Ok(out)
}

/// Opens every records file named, in the order of the inputs they hold
/// (as `analyze` orders its inputs).
pub(super) fn open_all(named: &[PathBuf]) -> Result<Vec<read::Opened>, Error> {
    let mut opened = records_paths(named)?
        .iter()
        .map(|p| read::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    for o in &opened {
        check_facts(&o.path, &o.facts)?;
    }
    opened.sort_by(|a, b| (&a.facts.file, &a.path).cmp(&(&b.facts.file, &b.path)));
    if let Some(w) = opened
        .windows(2)
        .find(|w| w[0].facts.file == w[1].facts.file)
    {
        return Err(ErrorKind::Records {
            path: w[1].path.clone(),
            detail: format!(
                "holds the records of {}, as does {}",
                w[1].facts.file,
                w[0].path.display()
            ),
        }
        .into());
    }
    Ok(opened)
}

/// `sipaudit analyze --records`: the reports of `analyze` on the captures
/// the records files of `cfg.inputs` were extracted from, keeping only the
/// messages of partition `K` of `N` when `partition` is `Some((K, N))`
/// (every input's packet accounting is kept whole: summary.csv counts
/// packets per input, not per partition). With `routes` (`route-records`
/// over the whole batch), a message belongs to the partition of its home,
/// and the homes are tracked as they are.
pub fn run_records(
    cfg: &Config,
    partition: Option<(usize, usize)>,
    routes: Option<&Path>,
) -> Result<RunSummary, Error> {
    // A partition's run also logs what `merge-reports` needs.
    let cfg = &Config {
        partition_log: partition,
        routed: routes.is_some(),
        ..cfg.clone()
    };
    let opened = open_all(&cfg.inputs)?;
    let routes = match routes {
        Some(p) => Some(load_routes(cfg, p, &opened)?),
        None => None,
    };
    let (inputs, files) = inputs_of(&opened);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let keep = |k: u64| partition.is_none_or(|(p, n)| partition_of(k, n) == p);
    // The home of row (frame, seq, key) of input i, when it is kept.
    let select = |i: usize, frame: u64, seq: u32, key: u64| {
        let home = match &routes {
            Some((r, index)) => r.home(index[i], frame, seq, key),
            None => key,
        };
        keep(home).then_some(home)
    };
    let produce = |i: usize,
                   store: &AnomalyStore,
                   _: &super::digest::Wants,
                   _: &AtomicBool,
                   emit: &mut (dyn FnMut(Found) + Send)| {
        let select = |f, s, k| select(i, f, s, k);
        if let Err(e) = produce_file(&opened[i], i as u32, store, &select, emit) {
            failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }
        file_result(&opened[i].facts)
    };
    let src = Source {
        inputs: &inputs,
        first_ts: opened.iter().map(|o| o.facts.first_packet_ns).collect(),
        produce: &produce,
    };
    run_staged(cfg, &files, |staged| {
        let s = write_reports_from(staged, &src)?;
        match failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(s),
        }
    })
}

/// The routes of `route-records` at `path`, checked against the policy's
/// W0 and the inputs `opened`, with each input's index in them.
fn load_routes(
    cfg: &Config,
    path: &Path,
    opened: &[read::Opened],
) -> Result<(Routes, Vec<u32>), Error> {
    let w0 = i64::try_from(cfg.policy.window_ns()).unwrap_or(i64::MAX);
    let names: Vec<String> = opened.iter().map(|o| o.facts.file.clone()).collect();
    Routes::load_for(path, w0, &names)
}

/// The inputs as the reports name them (the captures the records came
/// from) and as the run reads them (the records files).
fn inputs_of(opened: &[read::Opened]) -> (Vec<Input>, Vec<Input>) {
    let inputs = opened
        .iter()
        .map(|o| Input {
            display: o.facts.file.clone(),
            path: o.path.clone(),
        })
        .collect();
    let files = opened
        .iter()
        .map(|o| Input {
            display: o.path.to_string_lossy().into_owned(),
            path: o.path.clone(),
        })
        .collect();
    (inputs, files)
}

/// Input `i`, opened as `o`: its stored anomalies into `store`, then every
/// record that `select` keeps to `emit`. Records carry no ladder styles of
/// their own (`Wants`): the ladder store takes them from the records it is
/// handed.
fn produce_file(
    o: &read::Opened,
    i: u32,
    store: &AnomalyStore,
    select: &dyn Fn(u64, u32, u64) -> Option<u64>,
    emit: &mut (dyn FnMut(Found) + Send),
) -> Result<(), Error> {
    store.add_rows(
        i,
        o.facts.anomalies.iter().map(|a| Row {
            file: i,
            first: a.first,
            last: a.last,
            count: a.count,
            kind: intern(&a.kind),
            detail: a.detail.clone(),
        }),
    );
    read::read(&o.path, i, select, &mut |rec| {
        // `tcp` only orders the TCP segments of per-session pcaps, which
        // records cannot give (no --pcap-dir with --records).
        emit(Found {
            rec,
            tcp: false,
            ladder: None,
            row: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(p: &str) -> Input {
        Input {
            display: p.into(),
            path: p.into(),
        }
    }

    #[test]
    fn names_are_the_file_name_unless_two_inputs_share_it() {
        let n = output_names(&[input("a/x.pcap"), input("b/x.pcap"), input("b/y.pcap")]);
        assert_eq!(n[2], "y.pcap.records.parquet");
        assert!(
            n[0].starts_with("x.pcap.") && n[0].ends_with(SUFFIX),
            "{n:?}"
        );
        assert_ne!(n[0], n[1]);
        assert_eq!(n[0].len(), "x.pcap.".len() + 8 + SUFFIX.len());
        // Deterministic.
        assert_eq!(
            n,
            output_names(&[input("a/x.pcap"), input("b/x.pcap"), input("b/y.pcap")])
        );
    }

    #[test]
    fn facts_with_unknown_spellings_are_refused() {
        let ok = FileFacts {
            format: "pcap".into(),
            ..FileFacts::default()
        };
        assert!(check_facts(Path::new("r"), &ok).is_ok());
        let mut f = ok.clone();
        f.format = "tar".into();
        assert!(check_facts(Path::new("r"), &f).is_err());
        let mut f = ok.clone();
        f.anomalies.push(StoredAnomaly {
            first: 1,
            last: 1,
            count: 1,
            kind: "Not An Id".into(),
            detail: String::new(),
        });
        let e = check_facts(Path::new("r.records.parquet"), &f).unwrap_err();
        assert!(e.to_string().contains("r.records.parquet"), "{e}");
        assert_eq!(intern("tcp_gap"), intern(&String::from("tcp_gap")));
    }
}
