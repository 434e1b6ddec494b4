//! Cold sessions: the memory budget's spill of waiting state (issue 11
//! item 2, `--memory`).
//!
//! Owns: which sessions may go cold, writing them to spill files in the
//! run's temporary directory, the small index that finds them again, and
//! reading them back exactly as they were. A cold session is a lone
//! request that only waits: one attempt, no response, no retry window, no
//! link or candidate, no flag or related session, idle since before the
//! caller's bound (a scanner's INVITE waiting for Timer B; an OPTIONS or
//! REGISTER nobody answered). Nothing can reach such a session but
//!
//! - a message with its Call-ID (every transaction, attempt, Call-ID/From
//!   tag and dialog key the tracker looks up includes the Call-ID),
//! - a new initial request sharing one of its correlation values
//!   (Session-ID, icid-value, X-CID: B2BUA legs),
//! - one of its timers, and the end of the capture,
//!
//! so the tracker brings it back (`thaw_*`) before any of these is handled,
//! and every decision is the one it would have taken with the session in
//! memory: the reports do not depend on what went cold or when
//! (tests/partitions.rs and the tracker tests compare byte for byte with
//! freezing forced on every batch). Its index keys are put back as they
//! were: a session is only frozen when it is alone under each of them.
//!
//! Never decides anything about a session, and never writes a report.
//!
//! Files: `<stem>-<n>.tmp`, segments of [`SEGMENT_BYTES`] written in
//! order; a segment is deleted once every session in it was read back
//! (sessions go cold and come back roughly in time order, so old segments
//! empty). The last one is written through a buffer of [`WRITE_BUFFER`].
//! Memory kept per cold session: its place, its Call-ID and correlation
//! keys in the index, and its timers (about 100 bytes, against about
//! 1.5 KB in memory).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::*;
use crate::dialog::codec::{Get, Put};

/// Bytes per spill segment file.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Bytes read at a time from a segment.
const READ_AHEAD: u64 = 256 << 10;

/// Bytes buffered before the current segment is written (one buffer per
/// partition, allocated once at this size plus one session).
const WRITE_BUFFER: usize = 128 << 10;

/// Where a cold session is: segment, offset, length.
#[derive(Clone, Copy)]
struct Loc {
    seg: u64,
    off: u64,
    len: u32,
    /// Its session id (a queued message of it still needs it).
    session: u64,
}

struct Segment {
    /// `None` once deleted.
    file: Option<File>,
    path: PathBuf,
    /// Bytes written to the file (the rest of the last segment is in the
    /// buffer).
    written: u64,
    /// Sessions in it not read back yet.
    live: u32,
}

/// The cold store of one tracker; see the module documentation.
pub(super) struct Cold {
    dir: PathBuf,
    stem: String,
    /// Segments from `first` on, in order; the last is written to.
    segs: VecDeque<Segment>,
    first: u64,
    /// Bytes of the last segment not written yet.
    buf: Vec<u8>,
    /// Read-ahead: bytes of segment `ra_seg` from offset `ra_off` (cold
    /// sessions come back roughly in the order they went, so one read
    /// serves hundreds).
    ra: Vec<u8>,
    ra_seg: u64,
    ra_off: u64,
    /// Cold sessions by slot id (ids hashed in order, `idmap.rs`: at the
    /// end every one comes back in start order).
    at: IdMap<Loc>,
    /// Slot of each cold attempt (timers name attempts too).
    attempt_slot: IdMap<Id>,
    /// Cold slots by Call-ID hash, and by correlation value.
    by_call: FxHashMap<u64, Ids>,
    by_corr: FxHashMap<u64, Ids>,
    /// (start, slot) of every cold session, as `live` keys them.
    order: BTreeSet<(i64, Id)>,
    /// Where the next freezing scan of `live` goes on.
    cursor: Option<(i64, Id)>,
    /// The first read error: a session is lost, the caller fails the run.
    error: Option<(PathBuf, std::io::Error)>,
    /// The first write error: freezing stops, sessions stay in memory.
    warning: Option<(PathBuf, std::io::Error)>,
    /// No more freezing (a write failed).
    stopped: bool,
    /// Bytes per segment ([`SEGMENT_BYTES`]; tests use less).
    segment_bytes: u64,
    /// Sessions frozen and read back, in total.
    pub frozen: u64,
    pub thawed: u64,
}

/// The cold index key of a Call-ID.
fn call_key(call_id: &str) -> u64 {
    h(&(b'c', call_id))
}

impl Cold {
    pub(super) fn new(dir: &Path, stem: &str) -> Cold {
        Cold {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            segs: VecDeque::new(),
            first: 0,
            buf: Vec::new(),
            ra: Vec::new(),
            ra_seg: u64::MAX,
            ra_off: 0,
            at: IdMap::default(),
            attempt_slot: IdMap::default(),
            by_call: FxHashMap::default(),
            by_corr: FxHashMap::default(),
            order: BTreeSet::new(),
            cursor: None,
            error: None,
            warning: None,
            stopped: false,
            segment_bytes: SEGMENT_BYTES,
            frozen: 0,
            thawed: 0,
        }
    }

    /// A read failed (`fatal`) or a write did (freezing stops).
    fn fail(&mut self, path: PathBuf, e: std::io::Error, fatal: bool) {
        self.stopped = true;
        let to = if fatal {
            &mut self.error
        } else {
            &mut self.warning
        };
        if to.is_none() {
            *to = Some((path, e));
        }
    }

    /// The segment to append to (a new one when the last is full).
    fn tail(&mut self) -> Option<u64> {
        let full = self
            .segs
            .back()
            .is_none_or(|s| s.written + self.buf.len() as u64 >= self.segment_bytes);
        if full {
            self.flush();
            // A last segment already read back whole is not needed any more.
            if let Some(s) = self.segs.back_mut().filter(|s| s.live == 0) {
                if s.file.take().is_some() {
                    let _ = std::fs::remove_file(&s.path);
                }
            }
            let n = self.first + self.segs.len() as u64;
            let path = self.dir.join(format!("{}-{n}.tmp", self.stem));
            match File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
            {
                Ok(f) => self.segs.push_back(Segment {
                    file: Some(f),
                    path,
                    written: 0,
                    live: 0,
                }),
                Err(e) => {
                    self.fail(path, e, false);
                    return None;
                }
            }
        }
        (!self.stopped).then(|| self.first + self.segs.len() as u64 - 1)
    }

    /// Writes the buffer to the last segment.
    fn flush(&mut self) {
        if self.buf.is_empty() || self.stopped {
            return;
        }
        let Some(seg) = self.segs.back_mut() else {
            return;
        };
        let r = match seg.file.as_mut() {
            Some(f) => f.write_all(&self.buf),
            None => Ok(()),
        };
        match r {
            Ok(()) => {
                seg.written += self.buf.len() as u64;
                self.buf.clear();
            }
            // The buffer is kept: what it holds is still read from it.
            Err(e) => {
                let p = seg.path.clone();
                self.fail(p, e, false);
            }
        }
    }

    /// Stores `blob` for slot `s`; `false` when writing has stopped.
    fn store(&mut self, s: Id, session: u64, blob: &[u8]) -> bool {
        let Some(seg) = self.tail() else {
            return false;
        };
        let back = self.segs.back_mut().expect("tail segment");
        let loc = Loc {
            seg,
            off: back.written + self.buf.len() as u64,
            len: blob.len() as u32,
            session,
        };
        back.live += 1;
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(WRITE_BUFFER + 4096);
        }
        self.buf.extend_from_slice(blob);
        self.at.insert(s, loc);
        if self.buf.len() >= WRITE_BUFFER {
            self.flush();
        }
        true
    }

    /// Reads back and forgets the blob of slot `s`.
    fn load(&mut self, s: Id) -> Option<Vec<u8>> {
        let loc = self.at.remove(&s)?;
        let i = (loc.seg - self.first) as usize;
        let last = i + 1 == self.segs.len();
        let seg = &mut self.segs[i];
        let mut out = vec![0; loc.len as usize];
        if last && loc.off >= seg.written {
            let at = (loc.off - seg.written) as usize;
            out.copy_from_slice(&self.buf[at..at + loc.len as usize]);
        } else {
            let (start, end) = (loc.off, loc.off + u64::from(loc.len));
            let cached = self.ra_seg == loc.seg
                && start >= self.ra_off
                && end <= self.ra_off + self.ra.len() as u64;
            if !cached {
                let f = seg.file.as_mut()?;
                let n = (end - start).max(READ_AHEAD).min(seg.written - start);
                self.ra.resize(n as usize, 0);
                let r = f
                    .seek(SeekFrom::Start(start))
                    .and_then(|_| f.read_exact(&mut self.ra))
                    // Appends go on at the end of the file.
                    .and_then(|_| f.seek(SeekFrom::End(0)).map(|_| ()));
                if let Err(e) = r {
                    let p = seg.path.clone();
                    self.ra_seg = u64::MAX;
                    self.fail(p, e, true);
                    return None;
                }
                (self.ra_seg, self.ra_off) = (loc.seg, start);
            }
            let at = (start - self.ra_off) as usize;
            out.copy_from_slice(&self.ra[at..at + loc.len as usize]);
        }
        let seg = &mut self.segs[i];
        seg.live -= 1;
        if seg.live == 0 && !last {
            seg.file = None;
            let _ = std::fs::remove_file(&seg.path);
        }
        while self.segs.front().is_some_and(|s| s.file.is_none()) {
            self.segs.pop_front();
            self.first += 1;
        }
        Some(out)
    }
}

impl Drop for Cold {
    fn drop(&mut self) {
        for s in &mut self.segs {
            if s.file.take().is_some() {
                let _ = std::fs::remove_file(&s.path);
            }
        }
    }
}

fn txn_kind_code(k: TxnKind) -> u8 {
    match k {
        TxnKind::Initial => 0,
        TxnKind::Cancel => 1,
        TxnKind::InDialog { bye: false } => 2,
        TxnKind::InDialog { bye: true } => 3,
    }
}

fn txn_kind_of(c: u8) -> Option<TxnKind> {
    Some(match c {
        0 => TxnKind::Initial,
        1 => TxnKind::Cancel,
        2 => TxnKind::InDialog { bye: false },
        3 => TxnKind::InDialog { bye: true },
        _ => return None,
    })
}

/// A session read back: its slot and attempt.
struct Thawed {
    slot: Slot,
    a: Id,
    attempt: Box<Attempt>,
    /// Transaction keys with their kind; correlation keys with their time.
    txns: Vec<(u64, TxnKind)>,
    corr: Vec<(u64, i64)>,
}

impl<P> Tracker<P> {
    /// Lets this tracker spill waiting sessions to files `<stem>-<n>.tmp`
    /// in `dir` when [`Tracker::freeze_idle`] asks (module `cold`).
    pub fn cold_storage(&mut self, dir: &Path, stem: &str) {
        self.cold = Some(Box::new(Cold::new(dir, stem)));
    }

    /// Sessions held cold now, frozen in total, read back in total.
    pub fn cold_counts(&self) -> (usize, u64, u64) {
        self.cold
            .as_ref()
            .map_or((0, 0, 0), |c| (c.at.len(), c.frozen, c.thawed))
    }

    /// The first read error of the spill files (the file and what
    /// failed): a session was lost.
    pub fn take_cold_error(&mut self) -> Option<(PathBuf, std::io::Error)> {
        self.cold.as_mut().and_then(|c| c.error.take())
    }

    /// The first write error of the spill files: freezing stopped there,
    /// and nothing was lost.
    pub fn take_cold_warning(&mut self) -> Option<(PathBuf, std::io::Error)> {
        self.cold.as_mut().and_then(|c| c.warning.take())
    }

    /// Whether a session went cold and was not read back yet.
    pub(super) fn cold_session(&self, s: Id) -> Option<u64> {
        self.cold.as_ref()?.at.get(&s).map(|l| l.session)
    }

    /// The earliest start among cold sessions.
    pub(super) fn cold_first(&self) -> Option<(i64, Id)> {
        self.cold.as_ref()?.order.first().copied()
    }

    /// Cold sessions after `from` in start order, at most `max`.
    pub(super) fn cold_after(&self, from: Option<(i64, Id)>, max: usize) -> Vec<(i64, Id)> {
        match self.cold.as_ref() {
            Some(c) => after(&c.order, from).take(max).copied().collect(),
            None => Vec::new(),
        }
    }

    /// Writes out every session that may go cold and has been idle since
    /// before `before`, scanning `live` in start order from where the last
    /// call stopped. Returns how many went cold.
    pub fn freeze_idle(&mut self, before: i64) -> usize {
        let Some(cold) = self.cold.as_ref() else {
            return 0;
        };
        if cold.stopped {
            return 0;
        }
        // Never within the reach of `recent_initial` (SKEW_NS).
        let before = before.min(self.now.saturating_sub(2 * SKEW_NS));
        let from = cold.cursor;
        let scan: Vec<(i64, Id)> = after(&self.live, from)
            .take_while(|&&(t, _)| t < before)
            .copied()
            .collect();
        let mut n = 0;
        let mut blob = Vec::new();
        for &(start, s) in &scan {
            if let Some(a) = self.coldable(s, before) {
                blob.clear();
                self.encode_cold(s, a, &mut blob);
                let session = self.slots[&s].session.expect("coldable has a session");
                let cold = self.cold.as_mut().expect("cold store");
                if !cold.store(s, session, &blob) {
                    break;
                }
                self.drop_cold(start, s, a);
                n += 1;
            }
        }
        if let Some(c) = self.cold.as_mut() {
            c.cursor = scan.last().copied().or(from);
            c.frozen += n as u64;
        }
        n
    }

    /// The attempt of slot `s` when the session may go cold.
    fn coldable(&self, s: Id, before: i64) -> Option<Id> {
        let slot = self.slots.get(&s)?;
        if slot.parent.is_some()
            || slot.finalized
            || slot.session.is_none()
            || slot.more.is_some()
            || slot.attempts.len() != 1
            || slot.last_ns >= before
        {
            return None;
        }
        let a = slot.attempts[0];
        let at = self.attempts.get(&a)?;
        if at.more.is_some()
            || at.has_final()
            || at.p_open
            || at.open_ps != 0
            || at.linked.is_some()
            || !at.decided
            || at.open_dialogs != 0
            || at.slot != s
        {
            return None;
        }
        let alone = |k: &IndexKey| match *k {
            IndexKey::Txn(t) => self.txns.get(&t).is_some_and(|&(x, _)| x == a),
            IndexKey::Attempt(t) => self.attempt_keys.get(&t).is_some_and(|v| **v == [a]),
            IndexKey::CallTag(t) => self.call_tag.get(&t).is_some_and(|v| **v == [a]),
            IndexKey::Corr(t) => self
                .corr
                .get(&t)
                .is_some_and(|v| v.len() == 1 && v[0].0 == a),
            IndexKey::Dialog(_) | IndexKey::Window(_) => false,
        };
        at.keys.iter().all(alone).then_some(a)
    }

    fn encode_cold(&self, s: Id, a: Id, out: &mut Vec<u8>) {
        let slot = &self.slots[&s];
        let at = &self.attempts[&a];
        let mut p = Put(out);
        p.u64(slot.session.unwrap_or(0));
        p.i64(slot.start_ns);
        p.i64(slot.last_ns);
        p.u64(slot.max_seq);
        p.u32(slot.call_ids.len() as u32);
        for c in slot.call_ids.iter() {
            p.str(c);
        }
        p.u64(a);
        let bools = [
            at.got_1xx,
            at.start_missing,
            at.acked_failure,
            at.premature_retry,
            at.late_candidate,
            at.leg_relaxed,
        ];
        p.u8(bools.iter().rev().fold(0, |acc, &b| acc << 1 | u8::from(b)));
        p.opt_i64(at.cancel_ns);
        p.opt_u32(at.max_uac_cseq);
        p.u32(at.keys.len() as u32);
        for k in &at.keys {
            match *k {
                IndexKey::Txn(t) => {
                    p.u8(0);
                    p.u64(t);
                    p.u8(txn_kind_code(self.txns[&t].1));
                }
                IndexKey::Attempt(t) => {
                    p.u8(1);
                    p.u64(t);
                }
                IndexKey::CallTag(t) => {
                    p.u8(2);
                    p.u64(t);
                }
                IndexKey::Corr(t) => {
                    p.u8(3);
                    p.u64(t);
                    p.i64(self.corr[&t][0].1);
                }
                IndexKey::Dialog(_) | IndexKey::Window(_) => unreachable!("not coldable"),
            }
        }
        at.request.encode(out);
    }

    /// Takes the frozen session out of memory and indexes it as cold.
    fn drop_cold(&mut self, start: i64, s: Id, a: Id) {
        let slot = self.slots.remove(&s).expect("slot");
        let at = self.attempts.remove(&a).expect("attempt");
        self.live.remove(&(start, s));
        for k in &at.keys {
            self.unindex(*k, a);
        }
        let cold = self.cold.as_mut().expect("cold store");
        cold.attempt_slot.insert(a, s);
        cold.order.insert((start, s));
        for c in slot.call_ids.iter() {
            cold.by_call.entry(call_key(c)).or_default().push(s);
        }
        for k in &at.keys {
            if let IndexKey::Corr(t) = *k {
                cold.by_corr.entry(t).or_default().push(s);
            }
        }
    }

    fn decode_cold(s: Id, blob: &[u8]) -> Option<Thawed> {
        let mut g = Get(blob);
        let session = g.u64()?;
        let (start_ns, last_ns, max_seq) = (g.i64()?, g.i64()?, g.u64()?);
        let mut call_ids: Few<Box<str>> = Few::default();
        for _ in 0..g.u32()? {
            call_ids.push(g.str()?.into());
        }
        let a = g.u64()?;
        let b = g.u8()?;
        let bit = |i: u8| b & (1 << i) != 0;
        let cancel_ns = g.opt_i64()?;
        let max_uac_cseq = g.opt_u32()?;
        let (mut keys, mut txns, mut corr) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..g.u32()? {
            let (kind, t) = (g.u8()?, g.u64()?);
            keys.push(match kind {
                0 => {
                    txns.push((t, txn_kind_of(g.u8()?)?));
                    IndexKey::Txn(t)
                }
                1 => IndexKey::Attempt(t),
                2 => IndexKey::CallTag(t),
                3 => {
                    corr.push((t, g.i64()?));
                    IndexKey::Corr(t)
                }
                _ => return None,
            });
        }
        let request = SipRecord::decode(&mut g)?;
        let slot = Slot {
            parent: None,
            session: Some(session),
            attempts: vec![a],
            start_ns,
            last_ns,
            call_ids,
            finalized: false,
            max_seq,
            more: None,
        };
        let attempt = Box::new(Attempt {
            slot: s,
            request,
            final_response: None,
            got_1xx: bit(0),
            cancel_ns,
            open_dialogs: 0,
            start_missing: bit(1),
            keys,
            p_open: false,
            open_ps: 0,
            linked: None,
            decided: true,
            max_uac_cseq,
            acked_failure: bit(2),
            premature_retry: bit(3),
            late_candidate: bit(4),
            leg_relaxed: bit(5),
            more: None,
        });
        Some(Thawed {
            slot,
            a,
            attempt,
            txns,
            corr,
        })
    }

    /// Brings slot `s` back when it is cold.
    pub(super) fn thaw_slot(&mut self, s: Id) {
        let Some(t) = self.read_cold(s) else {
            return;
        };
        let cold = self.cold.as_mut().expect("read from it");
        for c in t.slot.call_ids.iter() {
            remove_from(&mut cold.by_call, call_key(c), s);
        }
        for &(k, _) in &t.corr {
            remove_from(&mut cold.by_corr, k, s);
        }
        let a = t.a;
        for (k, kind) in t.txns {
            self.txns.insert(k, (a, kind));
        }
        for &(k, ts) in &t.corr {
            self.corr.entry(k).or_default().push((a, ts));
        }
        for k in &t.attempt.keys {
            match *k {
                IndexKey::Attempt(x) => self.attempt_keys.entry(x).or_default().push(a),
                IndexKey::CallTag(x) => self.call_tag.entry(x).or_default().push(a),
                _ => {}
            }
        }
        self.live.insert((t.slot.start_ns, s));
        self.slots.insert(s, t.slot);
        self.attempts.insert(a, t.attempt);
    }

    /// Brings back slot `s`, when it is cold, only to be finalised at once
    /// at the end of the capture ([`Tracker::finish_some`]): its slot and
    /// attempt, without its index keys. Those keys were its own (a session
    /// goes cold only when alone under each) and finalising takes them out
    /// again, and nothing looks for them after the end: the scanner burst's
    /// 200,000 INVITEs were each put in five maps and taken out at once.
    /// Its Call-ID and correlation keys stay in the cold index, pointing at
    /// a session no longer there (a lookup of one finds nothing to load).
    pub(super) fn thaw_to_finish(&mut self, s: Id) {
        if let Some(t) = self.read_cold(s) {
            self.slots.insert(s, t.slot);
            self.attempts.insert(t.a, t.attempt);
        }
    }

    /// Reads cold slot `s` back and takes it out of the order of cold
    /// sessions and the attempts' map (a read that fails is the run's
    /// error, and the session is lost).
    fn read_cold(&mut self, s: Id) -> Option<Thawed> {
        let cold = self.cold.as_mut()?;
        let blob = cold.load(s)?;
        cold.thawed += 1;
        let Some(t) = Self::decode_cold(s, &blob) else {
            let path = cold.dir.join(&cold.stem);
            cold.fail(
                path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, "cold session unreadable"),
                true,
            );
            return None;
        };
        cold.attempt_slot.remove(&t.a);
        cold.order.remove(&(t.slot.start_ns, s));
        Some(t)
    }

    /// Brings back the session of slot or attempt `id` when it is cold.
    pub(super) fn thaw_id(&mut self, id: Id) {
        let Some(cold) = self.cold.as_ref() else {
            return;
        };
        let s = match cold.attempt_slot.get(&id) {
            Some(&s) => s,
            None if cold.at.contains_key(&id) => id,
            None => return,
        };
        self.thaw_slot(s);
    }

    /// Brings back every cold session `rec` could reach: those of its
    /// Call-ID, and those sharing one of its correlation values.
    pub(super) fn thaw_for(&mut self, rec: &SipRecord) {
        let Some(cold) = self.cold.as_ref() else {
            return;
        };
        if cold.at.is_empty() {
            return;
        }
        let mut slots: Vec<Id> = cold
            .by_call
            .get(&call_key(rec.call_id()))
            .map(|v| v.to_vec())
            .unwrap_or_default();
        for &k in rec.link().corr.iter().filter(|&&k| k != 0) {
            if let Some(v) = cold.by_corr.get(&k) {
                slots.extend(v.iter().copied());
            }
        }
        slots.sort_unstable();
        slots.dedup();
        for s in slots {
            self.thaw_slot(s);
        }
    }
}

fn remove_from(map: &mut FxHashMap<u64, Ids>, k: u64, s: Id) {
    if let Some(v) = map.get_mut(&k) {
        v.retain(|&x| x != s);
        if v.is_empty() {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    /// Blobs stored over many small segments come back equal in any order;
    /// a segment is deleted once read back whole (the last one too, when a
    /// new one starts), and nothing is left after the store is dropped.
    #[test]
    fn segments_roll_over_read_back_and_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cold::new(dir.path(), ".t");
        c.segment_bytes = 4096;
        let blob = |i: u64| -> Vec<u8> { (0..(100 + i % 300)).map(|k| (i + k) as u8).collect() };
        for i in 0..2000 {
            assert!(c.store(i, i * 7, &blob(i)));
        }
        let made = c.first + c.segs.len() as u64;
        assert!(made > 50, "segments: {made}");
        // Read back out of order: every third first, then the rest.
        for i in (0..2000).step_by(3) {
            assert_eq!(c.load(i).unwrap(), blob(i), "blob {i}");
        }
        for i in (0..2000).filter(|i| i % 3 != 0) {
            assert_eq!(c.load(i).unwrap(), blob(i), "blob {i}");
        }
        assert!(c.load(5).is_none(), "read back once");
        assert!(files(dir.path()) <= 1, "read segments deleted");
        assert!(c.error.is_none() && c.warning.is_none());
        // A full last segment already read back goes when the next starts.
        assert!(c.store(9000, 1, &vec![1; 5000]));
        assert_eq!(c.load(9000).unwrap(), vec![1; 5000]);
        assert!(c.store(9001, 1, &[2; 10]));
        assert_eq!(files(dir.path()), 1);
        drop(c);
        assert_eq!(files(dir.path()), 0);
    }
}
