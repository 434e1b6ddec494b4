//! sessions.csv and failures.csv in session start order with bounded
//! memory.
//!
//! Sessions finish out of start order (a long call holds back every session
//! that started after it), so finished rows wait in a start-ordered buffer
//! until no live session can start earlier. A buffer that grows past
//! `limit` rows (a long-lived dialog, a capture whose BYEs are elsewhere) is
//! written to a sorted run file next to the reports; from then on every
//! row goes through runs, and the end of the batch merges them (an external
//! merge sort). The bytes written are the same either way.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The sort key of a session row: start time, then session id.
pub type Key = (i64, u64);

/// Where rows are written: a session row and its failure rows, encoded.
pub type Sink<'a> = dyn FnMut(&[u8], &[u8]) -> io::Result<()> + 'a;

/// Rows waiting for their place; see the module documentation.
pub struct SortedRows {
    dir: PathBuf,
    limit: usize,
    waiting: BTreeMap<Key, (Vec<u8>, Vec<u8>)>,
    runs: Vec<PathBuf>,
}

impl SortedRows {
    /// A buffer that spills to `dir` when it holds `limit` rows.
    pub fn new(dir: &Path, limit: usize) -> SortedRows {
        SortedRows {
            dir: dir.to_path_buf(),
            limit: limit.max(1),
            waiting: BTreeMap::new(),
            runs: Vec::new(),
        }
    }

    /// Adds a session's encoded sessions.csv row and failures.csv rows.
    pub fn insert(&mut self, key: Key, session: Vec<u8>, failures: Vec<u8>) {
        self.waiting.insert(key, (session, failures));
    }

    /// Writes the rows that start before `below` (all with `None`), unless
    /// runs are in use; spills when the buffer is over its limit.
    pub fn flush(&mut self, below: Option<i64>, out: &mut Sink<'_>) -> io::Result<()> {
        if self.runs.is_empty() {
            while let Some(e) = self.waiting.first_entry() {
                if below.is_some_and(|l| e.key().0 >= l) {
                    break;
                }
                let (s, f) = e.remove();
                out(&s, &f)?;
            }
        }
        if self.waiting.len() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes everything left, in order, merging the runs; removes them.
    pub fn finish(mut self, out: &mut Sink<'_>) -> io::Result<()> {
        if self.runs.is_empty() {
            return self.flush(None, out);
        }
        self.spill()?;
        let mut readers: Vec<BufReader<File>> = self
            .runs
            .iter()
            .map(|p| File::open(p).map(|f| BufReader::with_capacity(1 << 16, f)))
            .collect::<io::Result<_>>()?;
        let mut heads: Vec<Option<(Vec<u8>, Vec<u8>)>> = Vec::with_capacity(readers.len());
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            match read_entry(r)? {
                Some((k, s, f)) => {
                    heap.push(Reverse((k, i)));
                    heads.push(Some((s, f)));
                }
                None => heads.push(None),
            }
        }
        while let Some(Reverse((_, i))) = heap.pop() {
            let (s, f) = heads[i].take().expect("head of a live run");
            out(&s, &f)?;
            if let Some((k, s, f)) = read_entry(&mut readers[i])? {
                heap.push(Reverse((k, i)));
                heads[i] = Some((s, f));
            }
        }
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    }

    /// Run files written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        let path = self
            .dir
            .join(format!(".sipaudit-sessions-run-{}.tmp", self.runs.len()));
        let mut w = BufWriter::with_capacity(1 << 16, File::create(&path)?);
        for ((start, id), (s, f)) in std::mem::take(&mut self.waiting) {
            w.write_all(&start.to_le_bytes())?;
            w.write_all(&id.to_le_bytes())?;
            w.write_all(&(s.len() as u64).to_le_bytes())?;
            w.write_all(&(f.len() as u64).to_le_bytes())?;
            w.write_all(&s)?;
            w.write_all(&f)?;
        }
        w.flush()?;
        self.runs.push(path);
        Ok(())
    }
}

impl Drop for SortedRows {
    fn drop(&mut self) {
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
    }
}

type Entry = (Key, Vec<u8>, Vec<u8>);

fn read_entry(r: &mut impl Read) -> io::Result<Option<Entry>> {
    let mut b = [0u8; 8];
    match r.read_exact(&mut b) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let start = i64::from_le_bytes(b);
    r.read_exact(&mut b)?;
    let id = u64::from_le_bytes(b);
    r.read_exact(&mut b)?;
    let ls = u64::from_le_bytes(b) as usize;
    r.read_exact(&mut b)?;
    let lf = u64::from_le_bytes(b) as usize;
    let mut s = vec![0; ls];
    r.read_exact(&mut s)?;
    let mut f = vec![0; lf];
    r.read_exact(&mut f)?;
    Ok(Some(((start, id), s, f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: usize, keys: &[(i64, u64)], below_after: &[Option<i64>]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = SortedRows::new(dir.path(), limit);
        let mut out = Vec::new();
        for (i, &k) in keys.iter().enumerate() {
            rows.insert(
                k,
                format!("s{}\n", k.1).into_bytes(),
                format!("f{}\n", k.1).into_bytes(),
            );
            rows.flush(below_after[i], &mut |s, f| {
                out.extend_from_slice(s);
                out.extend_from_slice(f);
                Ok(())
            })
            .unwrap();
        }
        let spilled = rows.runs();
        rows.finish(&mut |s, f| {
            out.extend_from_slice(s);
            out.extend_from_slice(f);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "runs removed"
        );
        if limit < keys.len() {
            assert!(spilled > 0 || below_after.iter().all(|b| b.is_none()));
        }
        out
    }

    #[test]
    fn spilled_runs_merge_to_the_same_bytes() {
        // A long session (start 0) stays live: nothing can be written until
        // the end; later sessions finish in scrambled order.
        let keys: Vec<(i64, u64)> = (1..200u64)
            .map(|i| (((i * 37) % 199) as i64 + 1, i))
            .collect();
        let below: Vec<Option<i64>> = keys.iter().map(|_| Some(0)).collect();
        let all_in_memory = run(usize::MAX, &keys, &below);
        for limit in [1, 2, 7, 50] {
            assert_eq!(run(limit, &keys, &below), all_in_memory, "limit {limit}");
        }
        let mut sorted = keys.clone();
        sorted.sort();
        let want: Vec<u8> = sorted
            .iter()
            .flat_map(|k| format!("s{}\nf{}\n", k.1, k.1).into_bytes())
            .collect();
        assert_eq!(all_in_memory, want);
    }
}
