//! An external sort of anomaly rows: rows are held in memory up to a byte
//! budget, then written as a sorted run file; the end merges the runs. The
//! order is a function given at creation, so one row type serves both
//! passes of anomalies.csv (`anomalies.rs`).
//!
//! It owns its run files (removed when done or dropped) and nothing else:
//! it never decides what a row means.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// One anomalies.csv row in the making: the same anomaly (kind and detail)
/// on the frames `first..=last` of one file, `count` times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Input file index.
    pub file: u32,
    /// First frame.
    pub first: u64,
    /// Last frame.
    pub last: u64,
    /// How many anomalies the row stands for.
    pub count: u64,
    /// Stable id.
    pub kind: &'static str,
    /// Human detail.
    pub detail: String,
}

impl Row {
    /// Roughly what the row costs in memory.
    fn weight(&self) -> usize {
        64 + self.detail.len()
    }
}

/// The order of a sort.
pub type Order = fn(&Row, &Row) -> Ordering;

/// Rows sorted with bounded memory (module doc).
pub struct Sorter {
    dir: PathBuf,
    tag: &'static str,
    order: Order,
    budget: usize,
    held: usize,
    rows: Vec<Row>,
    runs: Vec<PathBuf>,
    /// Every kind written to a run file, to give rows read back their
    /// `&'static str`.
    kinds: Vec<&'static str>,
}

impl Sorter {
    /// A sorter that spills to `dir` (files `.sipaudit-<tag>-run-N.tmp`)
    /// when its rows weigh more than `budget` bytes.
    pub fn new(dir: &Path, tag: &'static str, order: Order, budget: usize) -> Sorter {
        Sorter {
            dir: dir.to_path_buf(),
            tag,
            order,
            budget: budget.max(1),
            held: 0,
            rows: Vec::new(),
            runs: Vec::new(),
            kinds: Vec::new(),
        }
    }

    /// Adds a row, spilling when over budget.
    pub fn push(&mut self, r: Row) -> io::Result<()> {
        self.held += r.weight();
        self.rows.push(r);
        if self.held > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Run files written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Passes every row to `out` in order, then removes the run files.
    pub fn finish(mut self, out: &mut dyn FnMut(Row) -> io::Result<()>) -> io::Result<()> {
        if self.runs.is_empty() {
            let order = self.order;
            let mut rows = std::mem::take(&mut self.rows);
            rows.sort_by(order);
            return rows.into_iter().try_for_each(out);
        }
        self.spill()?;
        let mut readers: Vec<BufReader<File>> = self
            .runs
            .iter()
            .map(|p| File::open(p).map(|f| BufReader::with_capacity(1 << 14, f)))
            .collect::<io::Result<_>>()?;
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (src, r) in readers.iter_mut().enumerate() {
            if let Some(row) = read_row(r, &self.kinds)? {
                heap.push(Head {
                    row,
                    src,
                    order: self.order,
                });
            }
        }
        while let Some(Head { row, src, order }) = heap.pop() {
            if let Some(next) = read_row(&mut readers[src], &self.kinds)? {
                heap.push(Head {
                    row: next,
                    src,
                    order,
                });
            }
            out(row)?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(format!(
            ".sipaudit-{}-run-{}.tmp",
            self.tag,
            self.runs.len()
        ));
        self.runs.push(path.clone());
        let mut rows = std::mem::take(&mut self.rows);
        self.held = 0;
        rows.sort_by(self.order);
        let mut w = BufWriter::with_capacity(1 << 16, File::create(&path)?);
        for r in &rows {
            if !self.kinds.contains(&r.kind) {
                self.kinds.push(r.kind);
            }
            write_row(&mut w, r)?;
        }
        w.flush()
    }
}

impl Drop for Sorter {
    fn drop(&mut self) {
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A run's current row in the merge; the heap pops the least in `order`
/// (ties: the earlier run, so the merge is stable).
struct Head {
    row: Row,
    src: usize,
    order: Order,
}

impl Ord for Head {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.order)(&o.row, &self.row).then(o.src.cmp(&self.src))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for Head {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Head {}

fn write_row(w: &mut impl Write, r: &Row) -> io::Result<()> {
    w.write_all(&r.file.to_le_bytes())?;
    w.write_all(&r.first.to_le_bytes())?;
    w.write_all(&r.last.to_le_bytes())?;
    w.write_all(&r.count.to_le_bytes())?;
    w.write_all(&(r.kind.len() as u32).to_le_bytes())?;
    w.write_all(r.kind.as_bytes())?;
    w.write_all(&(r.detail.len() as u64).to_le_bytes())?;
    w.write_all(r.detail.as_bytes())
}

fn read_row(r: &mut impl Read, kinds: &[&'static str]) -> io::Result<Option<Row>> {
    let mut b4 = [0u8; 4];
    match r.read_exact(&mut b4) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let file = u32::from_le_bytes(b4);
    let mut u64s = [0u64; 3];
    for v in &mut u64s {
        let mut b = [0u8; 8];
        r.read_exact(&mut b)?;
        *v = u64::from_le_bytes(b);
    }
    r.read_exact(&mut b4)?;
    let mut kind = vec![0u8; u32::from_le_bytes(b4) as usize];
    r.read_exact(&mut kind)?;
    let kind = kinds
        .iter()
        .find(|k| k.as_bytes() == kind.as_slice())
        .copied()
        .ok_or_else(|| io::Error::other("run file holds an unknown anomaly kind"))?;
    let mut b8 = [0u8; 8];
    r.read_exact(&mut b8)?;
    let mut detail = vec![0u8; u64::from_le_bytes(b8) as usize];
    r.read_exact(&mut detail)?;
    let detail = String::from_utf8(detail).map_err(io::Error::other)?;
    Ok(Some(Row {
        file,
        first: u64s[0],
        last: u64s[1],
        count: u64s[2],
        kind,
        detail,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_first(a: &Row, b: &Row) -> Ordering {
        (a.first, a.kind, &a.detail).cmp(&(b.first, b.kind, &b.detail))
    }

    fn sorted(budget: usize, rows: &[Row]) -> (Vec<Row>, usize) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Sorter::new(dir.path(), "t", by_first, budget);
        for r in rows {
            s.push(r.clone()).unwrap();
        }
        let runs = s.runs();
        let mut out = Vec::new();
        s.finish(&mut |r| {
            out.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        (out, runs)
    }

    #[test]
    fn spilled_and_in_memory_sorts_agree() {
        let kinds = ["b_kind", "a_kind", "c_kind"];
        let rows: Vec<Row> = (0..500u64)
            .map(|i| Row {
                file: 0,
                first: (i * 7919) % 113,
                last: (i * 7919) % 113,
                count: 1 + i % 3,
                kind: kinds[(i % 3) as usize],
                detail: format!("d{}", i % 5),
            })
            .collect();
        let (all, runs) = sorted(usize::MAX, &rows);
        assert_eq!(runs, 0);
        assert!(all.windows(2).all(|w| by_first(&w[0], &w[1]).is_le()));
        for budget in [1, 100, 5_000] {
            let (got, runs) = sorted(budget, &rows);
            assert!(runs > 1, "budget {budget}");
            assert_eq!(got, all, "budget {budget}");
        }
    }
}
