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
//!
//! A batch-wide flag (rules.md §F INCONSISTENT_EXPERIENCE) is known only at
//! the end: a session that may get it comes with its row already encoded
//! with the flag ([`Rows::flagged`]). From that row on, rows that are in
//! their place are appended, in order, to one *tail* file instead of the
//! reports, and [`SortedRows::finish`] copies the tail into the reports,
//! writing the flagged twin of the sessions it is told to. So memory holds
//! only the rows a live session may still precede, however long the batch
//! (before, every row after the first refusal waited in memory up to the
//! spill limit: 32 MB more on a 10-minute capture than on a 1-minute one at
//! the same rate); no report is read back.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The sort key of a session row: start time, then session id.
pub type Key = (i64, u64);

/// Where rows are written: a session row and its failure rows, encoded.
pub type Sink<'a> = dyn FnMut(&[u8], &[u8]) -> io::Result<()> + 'a;

/// Bytes of waiting rows held in memory before they are spilled, whatever
/// the row limit.
const BYTE_LIMIT: usize = 32 << 20;

/// One session's encoded rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rows {
    /// The sessions.csv row.
    pub session: Vec<u8>,
    /// The same row with the batch-wide flag, for a session that may get
    /// it (written instead of `session` when [`SortedRows::finish`] is told
    /// so).
    pub flagged: Option<Vec<u8>>,
    /// Its failures.csv rows.
    pub failures: Vec<u8>,
}

impl Rows {
    fn weight(&self) -> usize {
        64 + self.session.len() + self.failures.len() + self.flagged.as_ref().map_or(0, Vec::len)
    }
}

/// Rows waiting for their place; see the module documentation.
pub struct SortedRows {
    dir: PathBuf,
    limit: usize,
    waiting: BTreeMap<Key, Rows>,
    /// Bytes of `waiting`.
    bytes: usize,
    /// Runs are in use: every row waits for `finish`'s merge.
    held: bool,
    runs: Vec<PathBuf>,
    /// Rows in their place from the first with a flagged twin on, in
    /// order (see the module documentation).
    tail: Option<(PathBuf, BufWriter<File>)>,
}

impl SortedRows {
    /// A buffer that spills to `dir` when it holds `limit` rows.
    pub fn new(dir: &Path, limit: usize) -> SortedRows {
        SortedRows {
            dir: dir.to_path_buf(),
            limit: limit.max(1),
            waiting: BTreeMap::new(),
            bytes: 0,
            held: false,
            runs: Vec::new(),
            tail: None,
        }
    }

    /// Adds a session's encoded rows.
    pub fn insert(&mut self, key: Key, rows: Rows) {
        self.bytes += rows.weight();
        if let Some(old) = self.waiting.insert(key, rows) {
            self.bytes -= old.weight();
        }
    }

    /// Writes the rows that start before `below` (all with `None`), unless
    /// runs are in use: to `out` up to the first with a flagged twin, from
    /// there on to the tail file; spills when the buffer is over its limit.
    pub fn flush(&mut self, below: Option<i64>, out: &mut Sink<'_>) -> io::Result<()> {
        while !self.held
            && let Some(e) = self.waiting.first_entry()
        {
            if below.is_some_and(|l| e.key().0 >= l) {
                break;
            }
            if self.tail.is_none() && e.get().flagged.is_some() {
                let path = self.dir.join(".sipaudit-sessions-tail.tmp");
                let w = BufWriter::with_capacity(1 << 16, File::create(&path)?);
                self.tail = Some((path, w));
            }
            let (k, r) = e.remove_entry();
            self.bytes -= r.weight();
            match self.tail.as_mut() {
                Some((_, w)) => write_entry(w, k, &r)?,
                None => out(&r.session, &r.failures)?,
            }
        }
        if self.waiting.len() >= self.limit || self.bytes >= BYTE_LIMIT {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes everything left, in order, merging the runs, with the flagged
    /// twin of the sessions `flagged` names; removes the runs.
    pub fn finish(mut self, flagged: &dyn Fn(u64) -> bool, out: &mut Sink<'_>) -> io::Result<()> {
        let mut write = |(_, id): Key, r: Rows| match r.flagged {
            Some(twin) if flagged(id) => out(&twin, &r.failures),
            _ => out(&r.session, &r.failures),
        };
        let spilled = !self.runs.is_empty();
        if let Some((path, mut w)) = self.tail.take() {
            w.flush()?;
            drop(w);
            // Sorted, and in the runs' format: merged as one of them, or
            // copied when there are none (every tail row precedes every
            // row still waiting).
            self.runs.push(path);
        }
        if !spilled {
            for p in &self.runs {
                let mut r = BufReader::with_capacity(1 << 16, File::open(p)?);
                while let Some((k, rows)) = read_entry(&mut r)? {
                    write(k, rows)?;
                }
            }
            for (k, r) in std::mem::take(&mut self.waiting) {
                write(k, r)?;
            }
            return self.remove_runs();
        }
        self.spill()?;
        let mut readers: Vec<BufReader<File>> = self
            .runs
            .iter()
            .map(|p| File::open(p).map(|f| BufReader::with_capacity(1 << 16, f)))
            .collect::<io::Result<_>>()?;
        let mut heads: Vec<Option<Rows>> = Vec::with_capacity(readers.len());
        let mut heap = BinaryHeap::new();
        for (i, r) in readers.iter_mut().enumerate() {
            match read_entry(r)? {
                Some((k, rows)) => {
                    heap.push(Reverse((k, i)));
                    heads.push(Some(rows));
                }
                None => heads.push(None),
            }
        }
        while let Some(Reverse((k, i))) = heap.pop() {
            let rows = heads[i].take().expect("head of a live run");
            write(k, rows)?;
            if let Some((k, rows)) = read_entry(&mut readers[i])? {
                heap.push(Reverse((k, i)));
                heads[i] = Some(rows);
            }
        }
        self.remove_runs()
    }

    fn remove_runs(&mut self) -> io::Result<()> {
        for p in self.runs.drain(..) {
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
        self.bytes = 0;
        self.held = true;
        for (k, r) in std::mem::take(&mut self.waiting) {
            write_entry(&mut w, k, &r)?;
        }
        w.flush()?;
        self.runs.push(path);
        Ok(())
    }
}

impl Drop for SortedRows {
    fn drop(&mut self) {
        for p in self.runs.iter().chain(self.tail.as_ref().map(|(p, _)| p)) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Appends one session's rows in the runs' format (read by [`read_entry`]).
fn write_entry(w: &mut impl Write, (start, id): Key, r: &Rows) -> io::Result<()> {
    // A twin's length is written plus one: 0 is no twin.
    let twin = r.flagged.as_deref();
    w.write_all(&start.to_le_bytes())?;
    w.write_all(&id.to_le_bytes())?;
    w.write_all(&(r.session.len() as u64).to_le_bytes())?;
    w.write_all(&(r.failures.len() as u64).to_le_bytes())?;
    w.write_all(&twin.map_or(0, |t| t.len() as u64 + 1).to_le_bytes())?;
    w.write_all(&r.session)?;
    w.write_all(&r.failures)?;
    w.write_all(twin.unwrap_or_default())
}

type Entry = (Key, Rows);

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_bytes(r: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
    let mut v = vec![0; len as usize];
    r.read_exact(&mut v)?;
    Ok(v)
}

fn read_entry(r: &mut impl Read) -> io::Result<Option<Entry>> {
    let mut b = [0u8; 8];
    match r.read_exact(&mut b) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let start = i64::from_le_bytes(b);
    let id = read_u64(r)?;
    let (ls, lf, lt) = (read_u64(r)?, read_u64(r)?, read_u64(r)?);
    let session = read_bytes(r, ls)?;
    let failures = read_bytes(r, lf)?;
    let flagged = match lt {
        0 => None,
        n => Some(read_bytes(r, n - 1)?),
    };
    Ok(Some((
        (start, id),
        Rows {
            session,
            flagged,
            failures,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Session `id`'s rows; every third one has a flagged twin.
    fn rows(id: u64) -> Rows {
        Rows {
            session: format!("s{id}\n").into_bytes(),
            flagged: (id % 3 == 0).then(|| format!("s{id}+\n").into_bytes()),
            failures: format!("f{id}\n").into_bytes(),
        }
    }

    /// Sessions with an id divisible by 6 get the flag.
    fn flagged(id: u64) -> bool {
        id % 6 == 0
    }

    fn run(limit: usize, keys: &[(i64, u64)], below_after: &[Option<i64>]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let mut sorted = SortedRows::new(dir.path(), limit);
        let mut out = Vec::new();
        let mut sink = |s: &[u8], f: &[u8]| {
            out.extend_from_slice(s);
            out.extend_from_slice(f);
            Ok(())
        };
        for (i, &k) in keys.iter().enumerate() {
            sorted.insert(k, rows(k.1));
            sorted.flush(below_after[i], &mut sink).unwrap();
        }
        let spilled = sorted.runs();
        sorted.finish(&flagged, &mut sink).unwrap();
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

    fn want(keys: &[(i64, u64)]) -> Vec<u8> {
        let mut sorted = keys.to_vec();
        sorted.sort();
        sorted
            .iter()
            .flat_map(|&(_, id)| {
                let plus = if flagged(id) { "+" } else { "" };
                format!("s{id}{plus}\nf{id}\n").into_bytes()
            })
            .collect()
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
        assert_eq!(all_in_memory, want(&keys));
    }

    #[test]
    fn rows_flow_out_until_a_flagged_twin_then_wait_for_the_flags() {
        // Sessions finish in start order and nothing is live: every row
        // could go out at once, but session 3 may get the flag, so it and
        // every later row wait for the end.
        let keys: Vec<(i64, u64)> = (1..20u64).map(|i| (i as i64, i)).collect();
        let dir = tempfile::tempdir().unwrap();
        let mut sorted = SortedRows::new(dir.path(), usize::MAX);
        let mut out = Vec::new();
        for &k in &keys {
            sorted.insert(k, rows(k.1));
            sorted
                .flush(None, &mut |s, f| {
                    out.extend_from_slice(s);
                    out.extend_from_slice(f);
                    Ok(())
                })
                .unwrap();
        }
        assert_eq!(out, b"s1\nf1\ns2\nf2\n");
        assert!(
            sorted.waiting.is_empty() && sorted.bytes == 0,
            "rows in their place wait on disk, not in memory"
        );
        sorted
            .finish(&flagged, &mut |s, f| {
                out.extend_from_slice(s);
                out.extend_from_slice(f);
                Ok(())
            })
            .unwrap();
        assert_eq!(out, want(&keys));
        let below: Vec<Option<i64>> = keys.iter().map(|_| None).collect();
        for limit in [1, 4] {
            assert_eq!(run(limit, &keys, &below), want(&keys), "limit {limit}");
        }
    }

    #[test]
    fn a_tail_and_spilled_runs_merge_to_the_same_bytes() {
        // Rows flow into the tail (session 3 may get the flag) until a long
        // session starting at 40 stays live: later rows, finishing in
        // scrambled order, wait and spill; the end merges tail and runs.
        let keys: Vec<(i64, u64)> = (1..120u64)
            .map(|i| match i {
                1..40 => (i as i64, i),
                _ => (((i * 37) % 80) as i64 + 41, i),
            })
            .collect();
        let below: Vec<Option<i64>> = keys
            .iter()
            .map(|&(t, _)| Some(if t < 40 { t + 1 } else { 40 }))
            .collect();
        for limit in [1, 3, 10, usize::MAX] {
            assert_eq!(run(limit, &keys, &below), want(&keys), "limit {limit}");
        }
    }
}
