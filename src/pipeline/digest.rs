//! The per-message half of decoding a file, and the workers that run it in
//! parallel with the packet half.
//!
//! Reading a file is sequential by nature: packets in order through IP
//! reassembly, TCP/SCTP/WebSocket state and SIP framing, and each SIP
//! message found is scanned right away (whether a packet is SIP is part of
//! its accounting). What comes next does not depend on any other message:
//! the counters of summary.csv, the message's anomalies, its
//! [`SipRecord`] (a third of the decoding CPU), with report.html its
//! ladder summary's style and Call-ID (`styles.rs`: taken while the text is
//! at hand) and, with `--messages`, its messages.csv row. That is
//! [`Digest::message`].
//!
//! With helpers ([`Pool`]), the file's thread copies each message's bytes
//! into a batch and hands full batches round-robin to the helper threads,
//! which scan the bytes again and digest them; a batch begun while every
//! helper's queue is full the file's thread digests itself instead of
//! waiting. Batches are passed on in the order they were begun (a helper's
//! in the order it got them), so the records leave in exactly the order
//! the file's thread found the messages, and the output is the same
//! whoever digested which batch, with any number of helpers, or none
//! (`--jobs 1`: digested inline).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use crate::anomaly::PacketAnomaly;
use crate::capture::ts::update_rfc3339_micros;
use crate::dialog::{Capture, SipRecord};
use crate::report::Cell;
use crate::report::rows::MessageRow;
use crate::sip::{self, Framing, Message, StartLine};

use super::anomalies::{AnomalyBuf, AnomalyStore};
use super::html::LadderPre;
use super::styles::{StyleCache, Styles};
use super::{Counters, Found, PendingRow};
use crate::packet::Origin;

/// Messages per batch handed to a helper: 512, or `SIPAUDIT_DIGEST_BATCH`
/// (tests use a tiny value so that small files still go round the helpers).
fn batch_size() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        super::env_number("SIPAUDIT_DIGEST_BATCH")
            .filter(|&n| n > 0)
            .unwrap_or(512)
    })
}

/// Batches queued per helper before the file's thread waits.
const QUEUE: usize = 2;

/// What the run wants of each message besides its record.
#[derive(Clone, Default)]
pub(super) struct Wants {
    /// Its messages.csv row (`--messages`).
    pub rows: bool,
    /// report.html's ladders: the run's style table, for the message's
    /// [`LadderPre`].
    pub styles: Option<std::sync::Arc<Styles>>,
}

/// What digesting messages accumulates besides the records: merged over the
/// file's thread and its helpers at the end of the file.
pub(super) struct Digest {
    file: String,
    file_idx: u32,
    want_rows: bool,
    /// With report.html: this thread's view of the run's ladder styles.
    styles: Option<StyleCache>,
    /// Handed to the run's anomaly store as they come (never all held).
    anomalies: AnomalyBuf,
    pub(super) sip_messages: u64,
    pub(super) counters: Counters,
    scratch: String,
    /// The row being encoded (reused; each row keeps an exact copy).
    row_buf: Vec<u8>,
    /// The row's time, source and destination cells, kept row to row.
    cells: RowCells,
    /// The column of the last distinct single-row values of the lists the
    /// record does not keep (Allow; Supported and Proxy-Require of a
    /// response), most recent first ([`LIST_MEMO`] of them): a network's
    /// user agents send a handful of such lists, and normalising one (case,
    /// dedup, `;`) cost 1,400 instructions a row.
    list_memo: Vec<(sip::Case, Vec<u8>, String)>,
}

/// The time, source and destination cells of messages.csv rows, kept from
/// row to row: consecutive messages mostly share their capture second, and
/// a link carries a few addresses, so most rows rewrite only the
/// microseconds (formatting all three was about 1,400 instructions a row,
/// callgrind).
#[derive(Default)]
struct RowCells {
    /// Time, source, destination.
    text: [String; 3],
    /// The capture second the time cell holds.
    second: Option<i64>,
    /// The addresses the source and destination cells hold.
    addrs: [Option<SocketAddr>; 2],
}

impl RowCells {
    /// The three cells of a message seen as `at`, taken out (the row gives
    /// them back).
    fn take(&mut self, at: &Origin) -> [String; 3] {
        let [mut time, mut src, mut dst] = std::mem::take(&mut self.text);
        update_rfc3339_micros(at.at.ts_ns, &mut time, &mut self.second);
        let [held_src, held_dst] = self.addrs;
        addr_cell(&mut src, held_src, at.src, (&dst, held_dst));
        addr_cell(&mut dst, held_dst, at.dst, (&src, Some(at.src)));
        self.addrs = [Some(at.src), Some(at.dst)];
        [time, src, dst]
    }
}

/// Makes `cell`, which holds the text of `held`, the text of `a`: as it is,
/// copied from `other` when that holds `a`, or written.
fn addr_cell(
    cell: &mut String,
    held: Option<SocketAddr>,
    a: SocketAddr,
    other: (&str, Option<SocketAddr>),
) {
    // An empty cell holds nothing (a row that was not given back).
    if held == Some(a) && !cell.is_empty() {
        return;
    }
    if other.1 == Some(a) && !other.0.is_empty() {
        cell.clear();
        cell.push_str(other.0);
    } else {
        crate::report::addr_text_into(&a, cell);
    }
}

/// Distinct list values remembered per digesting thread.
const LIST_MEMO: usize = 16;

impl Digest {
    pub(super) fn new(
        file: &str,
        file_idx: u32,
        wants: &Wants,
        anomalies: &AnomalyStore,
    ) -> Digest {
        Digest {
            file: file.to_string(),
            file_idx,
            want_rows: wants.rows,
            styles: wants.styles.clone().map(StyleCache::new),
            anomalies: anomalies.buf(file_idx),
            sip_messages: 0,
            counters: Counters::default(),
            scratch: String::new(),
            row_buf: Vec::new(),
            cells: Default::default(),
            list_memo: Vec::new(),
        }
    }

    pub(super) fn add_anomaly(&mut self, frame: u64, kind: &'static str, detail: String) {
        self.anomalies.push(frame, kind, detail);
    }

    /// Adds the counters `other` accumulated (its anomalies went to the
    /// store).
    pub(super) fn absorb(&mut self, other: Digest) {
        self.sip_messages += other.sip_messages;
        for (k, v) in other.counters.transport {
            *self.counters.transport.entry(k).or_default() += v;
        }
        for (k, v) in other.counters.method {
            *self.counters.method.entry(k).or_default() += v;
        }
        for (k, v) in other.counters.status {
            *self.counters.status.entry(k).or_default() += v;
        }
    }

    /// The column of a list whose one row is `raw`: what `write_tag_list`
    /// makes of it with `case`, remembered (see `list_memo`).
    fn list_of(&mut self, raw: &[u8], case: sip::Case) -> &str {
        let memo = &mut self.list_memo;
        match memo.iter().position(|(c, k, _)| *c == case && k == raw) {
            Some(i) => memo[..=i].rotate_right(1),
            None => {
                let mut text = String::new();
                sip::write_tag_list(&mut text, sip::CommaItems::new(raw), case);
                if memo.len() == LIST_MEMO {
                    memo.pop();
                }
                memo.insert(0, (case, raw.to_vec(), text));
            }
        }
        &memo[0].2
    }

    /// Counts and digests one message seen as `at`, `seq`-th of its frame.
    pub(super) fn message(&mut self, at: &Origin, seq: u32, msg: &Message<'_>) -> Found {
        self.count(at, msg);
        let rec = SipRecord::new(msg, Capture::of(self.file_idx, seq, at));
        let tcp = matches!(at.proto, "tcp" | "ws");
        let ladder = self.styles.as_mut().map(|s| LadderPre::of(&rec, s));
        let row = self.want_rows.then(|| self.row(at, msg, &rec));
        Found {
            rec,
            tcp,
            ladder,
            row,
        }
    }

    /// summary.csv's counts of a message (transport, method or status) and
    /// its anomalies.
    fn count(&mut self, at: &Origin, msg: &Message<'_>) {
        self.sip_messages += 1;
        *self
            .counters
            .transport
            .entry((at.tunnels, at.proto))
            .or_default() += 1;
        match msg.start() {
            StartLine::Request { method, .. } => {
                let m = String::from_utf8_lossy(method);
                if let Some(c) = self.counters.method.get_mut(m.as_ref()) {
                    *c += 1;
                } else {
                    self.counters.method.insert(m.into_owned(), 1);
                }
            }
            StartLine::Response { code, .. } => *self.counters.status.entry(code).or_default() += 1,
        }
        for a in msg.anomalies() {
            self.add_anomaly(at.at.frame, a.id(), a.to_string());
        }
        if at.truncated {
            self.add_anomaly(
                at.at.frame,
                PacketAnomaly::TruncatedPacket.id(),
                "SIP message cut short by the capture".into(),
            );
        }
    }

    /// The five tag lists of messages.csv (Require, Proxy-Require,
    /// Supported, Unsupported, Allow), back to back in the reused buffer
    /// `tags`, and where each is. The record extracted the option tags once
    /// (the same normaliser, `,`-joined): Require and Unsupported always,
    /// Proxy-Require and Supported of a request; the others are read here.
    fn tag_lists(
        &mut self,
        msg: &Message<'_>,
        rec: &SipRecord,
        tags: &mut String,
    ) -> [(usize, usize); 5] {
        tags.clear();
        let mut spans = [(0usize, 0usize); 5];
        let request = msg.is_request();
        for (k, (id, kept)) in [
            (sip::HeaderId::Require, Some(rec.require())),
            (
                sip::HeaderId::ProxyRequire,
                request.then(|| rec.proxy_require()),
            ),
            (sip::HeaderId::Supported, request.then(|| rec.supported())),
            (sip::HeaderId::Unsupported, Some(rec.unsupported())),
            (sip::HeaderId::Allow, None),
        ]
        .into_iter()
        .enumerate()
        {
            let start = tags.len();
            match kept {
                Some(t) => {
                    for (i, tag) in t.iter().enumerate() {
                        if i > 0 {
                            tags.push(';');
                        }
                        tags.push_str(tag);
                    }
                }
                None => {
                    let case = match id {
                        sip::HeaderId::Allow => sip::Case::Upper,
                        _ => sip::Case::Lower,
                    };
                    match msg.header_single(id) {
                        Some(raw) => tags.push_str(self.list_of(raw, case)),
                        None => sip::write_tag_list(tags, msg.list(id), case),
                    }
                }
            }
            spans[k] = (start, tags.len());
        }
        spans
    }

    /// The message's messages.csv row up to its last two columns, which the
    /// tracker's thread appends ([`PendingRow`]).
    fn row(&mut self, at: &Origin, msg: &Message<'_>, rec: &SipRecord) -> PendingRow {
        let mut tags = std::mem::take(&mut self.scratch);
        let spans = self.tag_lists(msg, rec, &mut tags);
        let tag = |k: usize| Cell::str(&tags[spans[k].0..spans[k].1]);
        let transport = if at.tunnels == Default::default() {
            Cell::str(at.proto)
        } else {
            Cell(format!("{}{}", at.tunnels, at.proto).into())
        };
        let [time, src, dst] = self.cells.take(at);
        let row = MessageRow {
            file: Cell::str(&self.file),
            frame: at.at.frame,
            time,
            src,
            dst,
            transport,
            kind: if msg.is_request() {
                "request"
            } else {
                "response"
            },
            method: Cell::opt(msg.method()),
            status: msg.status(),
            // The record holds these already, as the same lossy text
            // (reading them again scanned the header parameters twice).
            call_id: Cell::str(rec.call_id()),
            cseq: msg.cseq().map(|(n, _)| n),
            from_tag: Cell::str(rec.from_tag().unwrap_or_default()),
            to_tag: Cell::str(rec.to_tag().unwrap_or_default()),
            via_branch: Cell::str(rec.top_branch().unwrap_or_default()),
            require: tag(0),
            proxy_require: tag(1),
            supported: tag(2),
            unsupported: tag(3),
            allow: tag(4),
            // The record located the SDP and read its demand already.
            precondition: rec.demand.as_str(),
            retransmission: None,
            session: None,
        };
        let mut buf = std::mem::take(&mut self.row_buf);
        buf.clear();
        crate::report::message_csv::encode(&row, &mut buf);
        self.cells.text = [row.time, row.src, row.dst];
        self.scratch = tags;
        // The two trailing columns are empty here; the tracker's thread
        // appends them (PendingRow).
        debug_assert!(buf.ends_with(b",,\n"));
        // An exact copy: the row waits, with every message of its session,
        // until the tracker knows that session. A 384-byte buffer per row
        // (rows are about 250 bytes) peaked 14 MiB higher at -j2 on the
        // 2,000 calls/s capture (258.3 -> 244.0 MiB, CPU x1.00).
        let head = buf[..buf.len().saturating_sub(2)].into();
        self.row_buf = buf;
        PendingRow {
            head,
            retransmission: None,
        }
    }
}

/// One message waiting for a helper: where it was seen and its bytes
/// (`start..end` of the batch's buffer).
struct Job {
    at: Origin,
    seq: u32,
    framing: Framing,
    start: usize,
    end: usize,
}

#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    bytes: Vec<u8>,
}

/// The records of a batch's messages, scanned again from its bytes (the
/// file's thread scanned them already: the same bytes and framing scan the
/// same way).
fn digest_batch(d: &mut Digest, b: &Batch) -> Vec<Found> {
    let mut out = Vec::with_capacity(b.jobs.len());
    for j in &b.jobs {
        if let Ok(m) = sip::parse_message(&b.bytes[j.start..j.end], j.framing) {
            out.push(d.message(&j.at, j.seq, &m));
        }
    }
    out
}

/// Helper threads digesting one file's messages (module doc).
pub(super) struct Pool<'s> {
    to: Vec<SyncSender<Batch>>,
    from: Vec<Receiver<Vec<Found>>>,
    handles: Vec<ScopedJoinHandle<'s, Digest>>,
    cur: Batch,
    /// A batch the file's thread digests itself, because every helper had
    /// a full queue when it began ([`Pool::push`]).
    local: Option<Vec<Found>>,
    /// Batches in the order they were begun, each sent to a helper or
    /// digested here; their records leave in this order.
    order: std::collections::VecDeque<Pending>,
    /// Batches sent to helpers, and collected from them (or given up with
    /// a helper that is gone).
    sent: u64,
    collected: u64,
    /// Helpers that are gone (a panic): sent nothing more.
    gone: Vec<bool>,
    /// The helper the next batch goes to.
    next: usize,
    /// Tests: every other batch is digested here, whether the helpers are
    /// full or not (`SIPAUDIT_DIGEST_LOCAL=alternate`), so that small
    /// captures take both ways; `flip`: this batch is one of those.
    alternate: bool,
    flip: bool,
    /// A borrowed helper: given back once this is set ([`Pool::until`]).
    until: Option<&'s AtomicBool>,
}

/// A batch begun and not yet passed on.
enum Pending {
    /// Sent to this helper.
    Helper(usize),
    /// Digested on the file's thread.
    Done(Vec<Found>),
}

/// Batches digested on the file's thread that may wait behind a helper's
/// before the file's thread waits too.
const LOCAL_AHEAD: usize = 4;

impl<'s> Pool<'s> {
    /// Starts `n` (≥ 1) helpers for the file `file` (index `file_idx`).
    pub(super) fn spawn<'env>(
        scope: &'s Scope<'s, 'env>,
        n: usize,
        file: &str,
        file_idx: u32,
        wants: &Wants,
        anomalies: &AnomalyStore,
    ) -> Pool<'s> {
        let mut pool = Pool {
            to: Vec::with_capacity(n),
            from: Vec::with_capacity(n),
            handles: Vec::with_capacity(n),
            cur: Batch::default(),
            local: None,
            order: std::collections::VecDeque::new(),
            sent: 0,
            collected: 0,
            gone: vec![false; n.max(1)],
            next: 0,
            alternate: std::env::var("SIPAUDIT_DIGEST_LOCAL").is_ok_and(|v| v == "alternate"),
            flip: false,
            until: None,
        };
        for _ in 0..n.max(1) {
            let (tx, rx) = sync_channel::<Batch>(QUEUE);
            let (rtx, rrx): (Sender<Vec<Found>>, _) = channel();
            let mut d = Digest::new(file, file_idx, wants, anomalies);
            pool.handles.push(crate::threads::scoped(
                scope,
                crate::threads::DIGEST,
                move || {
                    for b in rx {
                        if rtx.send(digest_batch(&mut d, &b)).is_err() {
                            break;
                        }
                    }
                    d
                },
            ));
            pool.to.push(tx);
            pool.from.push(rrx);
        }
        pool
    }

    /// Makes the pool a borrowed one, to be given back (finished) once
    /// `flag` is set.
    pub(super) fn until(mut self, flag: &'s AtomicBool) -> Pool<'s> {
        self.until = Some(flag);
        self
    }

    /// Whether a borrowed pool is to be given back now.
    pub(super) fn given_back(&self) -> bool {
        self.until.is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// Queues one message; full batches go to the next helper, and results
    /// are passed to `emit` in order as they come back. A batch begun while
    /// every helper has a full queue is digested here, with `own` (the
    /// file's thread's digest), instead of waiting for a helper: the file's
    /// thread and the helpers share the work in whatever proportion keeps
    /// both busy, and the records still leave in file order.
    pub(super) fn push(
        &mut self,
        at: &Origin,
        seq: u32,
        msg: &Message<'_>,
        framing: Framing,
        own: &mut Digest,
        emit: &mut dyn FnMut(Found),
    ) {
        if self.cur.jobs.is_empty() && self.local.is_none() && self.begin_local() {
            self.local = Some(Vec::with_capacity(batch_size()));
        }
        if let Some(local) = self.local.as_mut() {
            local.push(own.message(at, seq, msg));
            if local.len() >= batch_size() {
                let done = self.local.take().expect("present");
                self.order.push_back(Pending::Done(done));
                self.pass_on(emit);
            }
            return;
        }
        let bytes = msg.as_bytes();
        let start = self.cur.bytes.len();
        self.cur.bytes.extend_from_slice(bytes);
        self.cur.jobs.push(Job {
            at: *at,
            seq,
            framing,
            start,
            end: start + bytes.len(),
        });
        if self.cur.jobs.len() >= batch_size() {
            self.dispatch(own, emit);
        }
    }

    /// Whether the batch about to begin is digested here: every helper has
    /// a full queue's worth of batches (or is gone), or it is this thread's
    /// turn under `SIPAUDIT_DIGEST_LOCAL=alternate`.
    fn begin_local(&mut self) -> bool {
        let live = self.gone.iter().filter(|g| !**g).count() as u64;
        let full = self.sent - self.collected >= live * (QUEUE as u64 + 1);
        self.flip = self.alternate && !self.flip;
        full || self.flip
    }

    /// Sends the current batch to the next helper that is not gone; with
    /// none, digests it here (its messages scanned again from its bytes).
    fn dispatch(&mut self, own: &mut Digest, emit: &mut dyn FnMut(Found)) {
        if self.cur.jobs.is_empty() {
            return;
        }
        // Begun only while a helper had room (`begin_local`), so nothing
        // is waited for here.
        let mut b = std::mem::take(&mut self.cur);
        for _ in 0..self.to.len() {
            let k = self.next;
            self.next = (k + 1) % self.to.len();
            if self.gone[k] {
                continue;
            }
            match self.to[k].send(b) {
                Ok(()) => {
                    self.sent += 1;
                    self.order.push_back(Pending::Helper(k));
                    self.pass_on(emit);
                    return;
                }
                Err(back) => {
                    self.gone[k] = true;
                    b = back.0;
                }
            }
        }
        self.order.push_back(Pending::Done(digest_batch(own, &b)));
        self.pass_on(emit);
    }

    /// Passes on every batch that is ready, in order; waits for the oldest
    /// when too many digested here wait behind it.
    fn pass_on(&mut self, emit: &mut dyn FnMut(Found)) {
        while self.collect_next(false, emit) {}
        while self.order.len() > self.to.len() * (QUEUE + 1) + LOCAL_AHEAD {
            if !self.collect_next(true, emit) {
                break;
            }
        }
    }

    /// Passes the oldest batch's results to `emit`; `wait`: block until a
    /// helper's are there. Returns whether a batch was passed on (or given
    /// up with a helper that is gone).
    fn collect_next(&mut self, wait: bool, emit: &mut dyn FnMut(Found)) -> bool {
        let found = match self.order.front_mut() {
            None => return false,
            Some(Pending::Done(v)) => std::mem::take(v),
            Some(&mut Pending::Helper(k)) => {
                let got = if wait {
                    self.from[k].recv().ok()
                } else {
                    self.from[k].try_recv().ok()
                };
                match got {
                    Some(v) => {
                        self.collected += 1;
                        v
                    }
                    None if wait => {
                        // Helper `k` is gone (it panicked): the batches it
                        // had are lost with it; the others keep their order.
                        self.gone[k] = true;
                        let before = self.order.len();
                        self.order
                            .retain(|p| !matches!(p, Pending::Helper(x) if *x == k));
                        self.collected += (before - self.order.len()) as u64;
                        return true;
                    }
                    None => return false,
                }
            }
        };
        self.order.pop_front();
        for f in found {
            emit(f);
        }
        true
    }

    /// Ends the file: flushes, collects everything in order, and returns
    /// the helpers' digests.
    pub(super) fn finish(mut self, own: &mut Digest, emit: &mut dyn FnMut(Found)) -> Vec<Digest> {
        if let Some(done) = self.local.take() {
            self.order.push_back(Pending::Done(done));
        }
        self.dispatch(own, emit);
        while self.collect_next(true, emit) {}
        drop(self.to);
        self.handles
            .into_iter()
            .filter_map(|h| h.join().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remembered list column is what normalising the value gives, in
    /// its case, for values seen again, in any order, the same value in
    /// both cases, and after others pushed them out of the memo.
    #[test]
    fn a_remembered_list_column_is_the_normalised_value() {
        let dir = tempfile::tempdir().unwrap();
        let store = AnomalyStore::new(dir.path());
        let mut d = Digest::new("f", 0, &Wants::default(), &store);
        let values: Vec<String> = (0..12)
            .map(|i| format!("INVITE, ack, Bye,invite , M{i}, UPDATE,,prack"))
            .chain(["".to_string(), " , ".to_string(), "x".to_string()])
            .collect();
        for round in 0..3 {
            for v in values.iter().chain(values.iter().rev().step_by(round + 1)) {
                for case in [sip::Case::Upper, sip::Case::Lower] {
                    let mut want = String::new();
                    sip::write_tag_list(&mut want, sip::CommaItems::new(v.as_bytes()), case);
                    assert_eq!(d.list_of(v.as_bytes(), case), want, "{v:?} {case:?}");
                }
            }
        }
        assert_eq!(d.list_memo.len(), LIST_MEMO);
        assert_eq!(
            d.list_of(b"invite, ack, invite", sip::Case::Upper),
            "INVITE;ACK",
            "deduplicated, uppercased"
        );
        assert_eq!(
            d.list_of(b"invite, ack, invite", sip::Case::Lower),
            "invite;ack",
            "the same value, lowercased"
        );
    }
}
