//! anomalies.csv with bounded memory, whatever the input.
//!
//! Every thread that finds anomalies (a file's reader, its digest helpers,
//! the session tracker) adds them through an [`AnomalyBuf`], which joins an
//! anomaly to the previous one when it repeats it on the same or the next
//! frame, and hands them in batches to the shared [`AnomalyStore`]. The
//! store sorts them by file, kind, detail and frame with an external sort
//! (`extsort.rs`, spilling to run files in the run's temporary directory),
//! so that every run of identical anomalies on consecutive frames of a file
//! becomes one row, however the threads cut it; a second sort puts the rows
//! in the report's order (file, frame, kind, detail). Memory is the sorts'
//! budget, not the number of anomalies, and the output is the same for any
//! number of threads.
//!
//! It writes anomalies.csv and nothing else.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{Error, ErrorKind};
use crate::report::anomalies::repeated_detail;
use crate::report::rows::AnomalyRow;
use crate::report::{self, CsvStream, Text};

use super::extsort::{Row, Sorter};

/// Anomalies a buffer holds before handing them to the store.
const BATCH: usize = 1024;

/// Bytes of rows each sort holds in memory before spilling: 32 MiB, or
/// `SIPAUDIT_ANOMALY_SPILL_BYTES` (tests use a tiny value).
fn budget() -> usize {
    super::env_number("SIPAUDIT_ANOMALY_SPILL_BYTES").unwrap_or(32 << 20)
}

/// The grouping order: a file's identical anomalies together, by frame.
fn by_anomaly(a: &Row, b: &Row) -> Ordering {
    (a.file, a.kind, &a.detail, a.first).cmp(&(b.file, b.kind, &b.detail, b.first))
}

/// The report's order.
fn by_frame(a: &Row, b: &Row) -> Ordering {
    (a.file, a.first, a.kind, &a.detail, a.last, a.count)
        .cmp(&(b.file, b.first, b.kind, &b.detail, b.last, b.count))
}

/// Where every anomaly of a run goes (module doc). Cloning shares it.
#[derive(Clone)]
pub struct AnomalyStore(Arc<Mutex<Inner>>);

struct Inner {
    sorter: Option<Sorter>,
    error: Option<std::io::Error>,
}

/// Figures of the anomalies written.
#[derive(Debug, Default)]
pub struct Written {
    /// Anomalies by kind (rows standing for several count each one).
    pub by_kind: BTreeMap<&'static str, u64>,
    /// Run files the first sort went through.
    pub spill_runs: usize,
}

impl AnomalyStore {
    /// A store spilling to `dir`.
    pub fn new(dir: &Path) -> AnomalyStore {
        let sorter = Sorter::new(dir, "anomalies", by_anomaly, budget());
        AnomalyStore(Arc::new(Mutex::new(Inner {
            sorter: Some(sorter),
            error: None,
        })))
    }

    /// A buffer for the anomalies of input file `file`.
    pub fn buf(&self, file: u32) -> AnomalyBuf {
        AnomalyBuf {
            store: self.clone(),
            file,
            rows: Vec::new(),
        }
    }

    fn add(&self, rows: &mut Vec<Row>) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Inner { sorter, error } = &mut *g;
        for r in rows.drain(..) {
            if error.is_some() {
                break;
            }
            if let Some(s) = sorter.as_mut() {
                if let Err(e) = s.push(r) {
                    *error = Some(e);
                }
            }
        }
        rows.clear();
    }

    /// Every anomaly held, as rows in the grouping order (a run on
    /// consecutive frames possibly in pieces: [`AnomalyStore::write`] joins
    /// them), for a records file. The store takes nothing afterwards.
    pub fn take_rows(&self) -> std::io::Result<Vec<Row>> {
        let (sorter, error) = {
            let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            (g.sorter.take(), g.error.take())
        };
        if let Some(e) = error {
            return Err(e);
        }
        let sorter = sorter.ok_or_else(|| std::io::Error::other("anomalies taken twice"))?;
        let mut rows = Vec::new();
        sorter.finish(&mut |r| {
            rows.push(r);
            Ok(())
        })?;
        Ok(rows)
    }

    /// Adds `rows` (of [`AnomalyStore::take_rows`] in an earlier run) as
    /// anomalies of input `file`.
    pub fn add_rows(&self, file: u32, rows: impl IntoIterator<Item = Row>) {
        let mut v: Vec<Row> = rows
            .into_iter()
            .map(|mut r| {
                r.file = file;
                r
            })
            .collect();
        self.add(&mut v);
    }

    /// Writes `dir/anomalies.csv` (`files`: the input names by index).
    /// Every [`AnomalyBuf`] must be dropped or flushed before.
    pub fn write(&self, dir: &Path, files: &[String]) -> Result<Written, Error> {
        let io_err = |source| -> Error {
            ErrorKind::Output {
                path: dir.join("anomalies.csv"),
                source,
            }
            .into()
        };
        let (sorter, error) = {
            let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            (g.sorter.take(), g.error.take())
        };
        if let Some(e) = error {
            return Err(io_err(e));
        }
        let Some(first) = sorter else {
            return Err(io_err(std::io::Error::other("anomalies written twice")));
        };
        let mut written = Written {
            spill_runs: first.runs(),
            ..Written::default()
        };
        let mut rows = Sorter::new(dir, "anomaly-rows", by_frame, budget());
        let mut open: Option<Row> = None;
        first
            .finish(&mut |r| {
                *written.by_kind.entry(r.kind).or_default() += r.count;
                match open.as_mut() {
                    Some(o) if continues(o, &r) => {
                        o.last = o.last.max(r.last);
                        o.count += r.count;
                        Ok(())
                    }
                    _ => match open.replace(r) {
                        Some(done) => rows.push(done),
                        None => Ok(()),
                    },
                }
            })
            .map_err(io_err)?;
        if let Some(done) = open {
            rows.push(done).map_err(io_err)?;
        }
        let mut w = CsvStream::create(dir, "anomalies.csv", report::ANOMALIES_HEADER)?;
        let mut failed = None;
        rows.finish(&mut |r| {
            let row = AnomalyRow {
                file: Text(files.get(r.file as usize).cloned().unwrap_or_default()),
                frame: r.first,
                kind: r.kind,
                detail: Text(repeated_detail(&r.detail, r.count, r.first, r.last)),
            };
            if let Err(e) = w.row(&row) {
                failed = Some(e);
                return Err(std::io::Error::other("anomalies.csv"));
            }
            Ok(())
        })
        .map_err(|e| failed.take().unwrap_or_else(|| io_err(e)))?;
        w.finish()?;
        Ok(written)
    }
}

/// Whether `next` (after `open` in the grouping order) extends its run:
/// the same anomaly of the same file, on a frame of the run or the next.
fn continues(open: &Row, next: &Row) -> bool {
    open.file == next.file
        && open.kind == next.kind
        && open.detail == next.detail
        && next.first <= open.last.saturating_add(1)
}

/// One thread's anomalies of one file on their way to the store (module
/// doc); what it holds is handed over when it is dropped.
pub struct AnomalyBuf {
    store: AnomalyStore,
    file: u32,
    rows: Vec<Row>,
}

impl AnomalyBuf {
    /// Adds one anomaly found in `frame`.
    pub fn push(&mut self, frame: u64, kind: &'static str, detail: String) {
        if let Some(last) = self.rows.last_mut() {
            if last.kind == kind
                && (frame == last.last || frame == last.last + 1)
                && last.detail == detail
            {
                last.last = frame;
                last.count += 1;
                return;
            }
        }
        if self.rows.len() >= BATCH {
            self.flush();
        }
        self.rows.push(Row {
            file: self.file,
            first: frame,
            last: frame,
            count: 1,
            kind,
            detail,
        });
    }

    /// Hands what is held to the store.
    pub fn flush(&mut self) {
        if !self.rows.is_empty() {
            self.store.add(&mut self.rows);
        }
    }
}

impl Drop for AnomalyBuf {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_of(budget_env: bool, feed: &dyn Fn(&AnomalyStore)) -> (String, Written) {
        let dir = tempfile::tempdir().unwrap();
        let store = AnomalyStore::new(dir.path());
        if budget_env {
            // A tiny budget: every row spills (set through the sorter).
            let mut g = store.0.lock().unwrap();
            g.sorter = Some(Sorter::new(dir.path(), "anomalies", by_anomaly, 1));
        }
        feed(&store);
        let w = store
            .write(dir.path(), &["a.pcap".into(), "b.pcap".into()])
            .unwrap();
        let csv = std::fs::read_to_string(dir.path().join("anomalies.csv")).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["anomalies.csv"], "run files removed");
        (csv, w)
    }

    /// Two kinds interleaved on frames 1..=5 of file 0 (found by two
    /// threads, each cutting the runs differently), one gap, one on file 1.
    fn feed(store: &AnomalyStore, split: bool) {
        let mut a = store.buf(0);
        let mut b = store.buf(0);
        for f in 1..=5u64 {
            let t = if split && f % 2 == 0 { &mut b } else { &mut a };
            t.push(f, "truncated_packet", "zero-length record".into());
            t.push(f, "tcp_gap", "gap".into());
        }
        a.push(9, "truncated_packet", "zero-length record".into());
        store.buf(1).push(3, "tcp_gap", "gap".into());
    }

    #[test]
    fn runs_of_identical_anomalies_are_one_row() {
        let want = "file,frame,kind,detail\n\
            a.pcap,1,tcp_gap,gap (5 times on consecutive frames 1 to 5)\n\
            a.pcap,1,truncated_packet,zero-length record (5 times on consecutive frames 1 to 5)\n\
            a.pcap,9,truncated_packet,zero-length record\n\
            b.pcap,3,tcp_gap,gap\n";
        for split in [false, true] {
            for tiny in [false, true] {
                let (csv, w) = csv_of(tiny, &|s| feed(s, split));
                assert_eq!(csv, want, "split {split} tiny budget {tiny}");
                assert_eq!(w.by_kind["truncated_packet"], 6);
                assert_eq!(w.by_kind["tcp_gap"], 6);
                assert_eq!(w.spill_runs > 0, tiny);
            }
        }
    }
}
