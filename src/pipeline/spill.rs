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
//! with the flag ([`Rows::flagged`]). A row in its place is written at once
//! all the same, and its flagged twin goes to a side file with the row's
//! place ([`Twins`]). Most batches flag no session, and their reports are
//! then final as written; otherwise the end copies sessions.csv once,
//! putting each flagged twin in place of its row ([`Twins::apply`]). So
//! memory holds only the rows a live session may still precede, however
//! long the batch, and a batch without the flag never reads a report back
//! (the first design sent every row after the first possible twin to a
//! tail file that the end copied into both reports: on a minute at 2,000
//! calls/s, 96 MB read back and hashed in 0.13 s while every other thread
//! had finished; without it `-j2` takes ×0.97 the wall time).
//!
//! Owns the order of the rows and their spilling; never encodes a row
//! (the caller does) and never opens a report (the caller's sink and
//! `report::RawCsv` do).

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
    /// The flagged twins of rows already written (module documentation).
    twins: Option<Twins>,
    /// Bytes of session rows written so far: the place of the next.
    written: u64,
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
            twins: None,
            written: 0,
        }
    }

    /// Adds a session's encoded rows.
    pub fn insert(&mut self, key: Key, rows: Rows) {
        self.bytes += rows.weight();
        if let Some(old) = self.waiting.insert(key, rows) {
            self.bytes -= old.weight();
        }
    }

    /// Writes the rows that start before `below` (all with `None`) to `out`,
    /// unless runs are in use, keeping their flagged twins aside; spills
    /// when the buffer is over its limit.
    pub fn flush(&mut self, below: Option<i64>, out: &mut Sink<'_>) -> io::Result<()> {
        while !self.held
            && let Some(e) = self.waiting.first_entry()
        {
            if below.is_some_and(|l| e.key().0 >= l) {
                break;
            }
            let ((_, id), r) = e.remove_entry();
            self.bytes -= r.weight();
            if let Some(twin) = &r.flagged {
                if self.twins.is_none() {
                    self.twins = Some(Twins::create(&self.dir)?);
                }
                let twins = self.twins.as_mut().expect("just made");
                twins.push(id, self.written, &r.session, twin)?;
            }
            self.written += r.session.len() as u64;
            out(&r.session, &r.failures)?;
        }
        if self.waiting.len() >= self.limit || self.bytes >= BYTE_LIMIT {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes everything left, in order, merging the runs, with the flagged
    /// twin of the sessions `flagged` names; removes the runs. Returns the
    /// twins of the rows written before (`None` when there are none): the
    /// caller applies them to what `out` wrote when `flagged` names any.
    pub fn finish(
        mut self,
        flagged: &dyn Fn(u64) -> bool,
        out: &mut Sink<'_>,
    ) -> io::Result<Option<Twins>> {
        let mut write = |(_, id): Key, r: Rows| match r.flagged {
            Some(twin) if flagged(id) => out(&twin, &r.failures),
            _ => out(&r.session, &r.failures),
        };
        let twins = match self.twins.take() {
            Some(t) => Some(t.close()?),
            None => None,
        };
        // Every row written precedes every row still waiting or spilled.
        if self.runs.is_empty() {
            for (k, r) in std::mem::take(&mut self.waiting) {
                write(k, r)?;
            }
            return Ok(twins);
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
        self.remove_runs()?;
        Ok(twins)
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
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The flagged twins of session rows written before the batch-wide flags
/// were known, each with the place of its row among the rows written
/// (bytes after the header), in that order; kept in a side file, removed
/// when dropped.
///
/// A twin is kept as what it changes in its row: the bytes that replace
/// the row's between a common head and a common tail (its flags cell,
/// about 30 bytes, where the whole twin was about 370). The side file is
/// read only when a session is flagged, and the pages it is written to
/// are new ones each time: on udp2000-60s it was 45 MB of them, 4.3 MB now.
/// Any twin is kept exactly, whatever it changes.
pub struct Twins {
    path: PathBuf,
    w: Option<BufWriter<File>>,
    count: u64,
}

impl Twins {
    fn create(dir: &Path) -> io::Result<Twins> {
        let path = dir.join(".sipaudit-sessions-twins.tmp");
        let w = BufWriter::with_capacity(1 << 16, File::create(&path)?);
        Ok(Twins {
            path,
            w: Some(w),
            count: 0,
        })
    }

    /// Session `id`'s `row` was written at `at`; `twin` is its flagged
    /// form, kept as: the length of the head the two share, the length of
    /// the tail they share after it, and the twin's bytes between.
    fn push(&mut self, id: u64, at: u64, row: &[u8], twin: &[u8]) -> io::Result<()> {
        let head = row.iter().zip(twin).take_while(|(a, b)| a == b).count();
        let tail = row[head..]
            .iter()
            .rev()
            .zip(twin[head..].iter().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let mid = &twin[head..twin.len() - tail];
        let w = self.w.as_mut().expect("open until closed");
        for v in [
            id,
            at,
            row.len() as u64,
            head as u64,
            tail as u64,
            mid.len() as u64,
        ] {
            w.write_all(&v.to_le_bytes())?;
        }
        self.count += 1;
        w.write_all(mid)
    }

    fn close(mut self) -> io::Result<Twins> {
        if let Some(mut w) = self.w.take() {
            w.flush()?;
        }
        Ok(self)
    }

    /// How many rows have a twin.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no row has a twin (never: a `Twins` exists from the first).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Copies the rows as written, read from `from` (after the header), to
    /// `to`, with the twin of every session `flagged` names in place of its
    /// row; returns how many rows were replaced.
    pub fn apply(
        &self,
        flagged: &dyn Fn(u64) -> bool,
        from: &mut dyn Read,
        to: &mut dyn Write,
    ) -> io::Result<u64> {
        let mut side = BufReader::with_capacity(1 << 16, File::open(&self.path)?);
        let (mut pos, mut replaced) = (0u64, 0u64);
        let mut row = Vec::new();
        for _ in 0..self.count {
            let mut v = [0u64; 6];
            for x in &mut v {
                *x = read_u64(&mut side)?;
            }
            let [id, at, len, head, tail, n] = v;
            let mid = read_bytes(&mut side, n)?;
            if !flagged(id) {
                continue;
            }
            copy_exact(from, to, at - pos)?;
            row.clear();
            copy_exact(from, &mut row, len)?;
            let bad = || io::Error::new(io::ErrorKind::InvalidData, "a twin longer than its row");
            let (head, tail) = (head as usize, tail as usize);
            let rest = row
                .get(head..)
                .filter(|r| r.len() >= tail)
                .ok_or_else(bad)?;
            to.write_all(&row[..head])?;
            to.write_all(&mid)?;
            to.write_all(&rest[rest.len() - tail..])?;
            pos = at + len;
            replaced += 1;
        }
        io::copy(from, to)?;
        Ok(replaced)
    }
}

impl Drop for Twins {
    fn drop(&mut self) {
        self.w = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Copies exactly `n` bytes (an error when `from` ends first).
fn copy_exact(from: &mut dyn Read, to: &mut dyn Write, n: u64) -> io::Result<()> {
    let copied = io::copy(&mut from.take(n), to)?;
    if copied < n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "sessions.csv is shorter than the rows written",
        ));
    }
    Ok(())
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

    /// Session `id`'s rows; every third one has a flagged twin (longer than
    /// its row, so that a twin put at a wrong place shows).
    fn rows(id: u64) -> Rows {
        Rows {
            session: format!("s{id}\n").into_bytes(),
            flagged: (id % 3 == 0).then(|| format!("s{id}+flag\n").into_bytes()),
            failures: format!("f{id}\n").into_bytes(),
        }
    }

    /// Sessions with an id divisible by 6 get the flag.
    fn flagged(id: u64) -> bool {
        id % 6 == 0
    }

    /// What the two reports hold: sessions.csv's rows, failures.csv's.
    #[derive(Debug, Default, PartialEq)]
    struct Written {
        sessions: Vec<u8>,
        failures: Vec<u8>,
    }

    impl Written {
        fn sink(&mut self) -> impl FnMut(&[u8], &[u8]) -> io::Result<()> + '_ {
            |s, f| {
                self.sessions.extend_from_slice(s);
                self.failures.extend_from_slice(f);
                Ok(())
            }
        }

        /// The end of the batch: the remaining rows, then the twins of the
        /// rows written before put in place (as `pipeline` does to
        /// sessions.csv).
        fn finish(&mut self, sorted: SortedRows, flagged: &dyn Fn(u64) -> bool) -> u64 {
            let twins = sorted.finish(flagged, &mut self.sink()).unwrap();
            let Some(t) = twins else { return 0 };
            let mut patched = Vec::new();
            let n = t
                .apply(flagged, &mut &self.sessions[..], &mut patched)
                .unwrap();
            self.sessions = patched;
            n
        }
    }

    /// A twin kept as its change to its row comes back exactly, whatever
    /// it changes: a cell longer, shorter, the first byte, the last, every
    /// byte, nothing; rows without a twin or not flagged stay as written.
    #[test]
    fn twins_kept_as_changes_come_back_exactly() {
        let cases: [(&str, &str); 7] = [
            ("a,b,,c\n", "a,b,INCONSISTENT_EXPERIENCE,c\n"),
            ("a,b,X;Y,c\n", "a,b,X,c\n"),
            ("abc\n", "xbc\n"),
            ("abc\n", "abcd"),
            ("abc\n", "zz\r\n"),
            ("abab\n", "abab\n"),
            ("aa\n", "aaaa\n"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut t = Twins::create(dir.path()).unwrap();
        let (mut written, mut want) = (Vec::new(), Vec::new());
        for (id, (row, twin)) in cases.iter().enumerate() {
            let at = written.len() as u64;
            written.extend_from_slice(row.as_bytes());
            t.push(id as u64, at, row.as_bytes(), twin.as_bytes())
                .unwrap();
            want.extend_from_slice(twin.as_bytes());
            // A row without a twin between.
            written.extend_from_slice(b"plain\n");
            want.extend_from_slice(b"plain\n");
        }
        let t = t.close().unwrap();
        let mut out = Vec::new();
        let n = t.apply(&|_| true, &mut &written[..], &mut out).unwrap();
        assert_eq!(n, cases.len() as u64);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(want).unwrap()
        );
        let mut same = Vec::new();
        assert_eq!(
            t.apply(&|_| false, &mut &written[..], &mut same).unwrap(),
            0
        );
        assert_eq!(same, written);
    }

    fn run(limit: usize, keys: &[(i64, u64)], below_after: &[Option<i64>]) -> Written {
        let dir = tempfile::tempdir().unwrap();
        let mut sorted = SortedRows::new(dir.path(), limit);
        let mut out = Written::default();
        for (i, &k) in keys.iter().enumerate() {
            sorted.insert(k, rows(k.1));
            sorted.flush(below_after[i], &mut out.sink()).unwrap();
        }
        let spilled = sorted.runs();
        out.finish(sorted, &flagged);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "runs and twins removed"
        );
        if limit < keys.len() {
            assert!(spilled > 0 || below_after.iter().all(|b| b.is_none()));
        }
        out
    }

    fn want(keys: &[(i64, u64)], flagged: &dyn Fn(u64) -> bool) -> Written {
        let mut sorted = keys.to_vec();
        sorted.sort();
        let mut w = Written::default();
        for &(_, id) in &sorted {
            let plus = if flagged(id) { "+flag" } else { "" };
            w.sessions.extend(format!("s{id}{plus}\n").bytes());
            w.failures.extend(format!("f{id}\n").bytes());
        }
        w
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
        assert_eq!(all_in_memory, want(&keys, &flagged));
    }

    /// Sessions 1..20 finishing in start order with nothing live, each
    /// flushed as it comes: every row goes out at once, twins or not.
    fn in_order(dir: &Path) -> (Vec<(i64, u64)>, SortedRows, Written) {
        let keys: Vec<(i64, u64)> = (1..20u64).map(|i| (i as i64, i)).collect();
        let mut sorted = SortedRows::new(dir, usize::MAX);
        let mut out = Written::default();
        for &k in &keys {
            sorted.insert(k, rows(k.1));
            sorted.flush(None, &mut out.sink()).unwrap();
        }
        (keys, sorted, out)
    }

    #[test]
    fn rows_in_their_place_are_written_at_once_and_their_twins_put_in_at_the_end() {
        // The end puts the flagged twins (sessions 6, 12, 18) in place of
        // their rows.
        let dir = tempfile::tempdir().unwrap();
        let (keys, sorted, mut out) = in_order(dir.path());
        assert_eq!(out, want(&keys, &|_| false), "every row written unflagged");
        assert!(
            sorted.waiting.is_empty() && sorted.bytes == 0,
            "nothing waits in memory"
        );
        assert_eq!(out.finish(sorted, &flagged), 3);
        assert_eq!(out, want(&keys, &flagged));
        let below: Vec<Option<i64>> = keys.iter().map(|_| None).collect();
        for limit in [1, 4] {
            assert_eq!(
                run(limit, &keys, &below),
                want(&keys, &flagged),
                "limit {limit}"
            );
        }
    }

    #[test]
    fn a_batch_that_flags_nothing_keeps_its_rows_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, sorted, mut out) = in_order(dir.path());
        let twins = sorted.finish(&|_| false, &mut out.sink()).unwrap();
        assert_eq!(
            twins.as_ref().map(Twins::len),
            Some(6),
            "sessions 3, 6, .., 18"
        );
        drop(twins);
        assert_eq!(out, want(&keys, &|_| false));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn written_rows_and_spilled_runs_give_the_same_bytes() {
        // Rows are written at once (session 3 may get the flag) until a
        // long session starting at 40 stays live: later rows, finishing in
        // scrambled order, wait and spill; the end merges the runs and puts
        // the twins of the rows written before in place.
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
            assert_eq!(
                run(limit, &keys, &below),
                want(&keys, &flagged),
                "limit {limit}"
            );
        }
    }
}
