//! The tracker's side of the reports ([`Feed`]): each message handed back
//! with its session, in feed order, becomes its messages.csv row and its
//! report.html ladder entry; the tracker's anomalies go to the anomaly
//! store. Also what the tracker hands the rules stage ([`Finished`]). Never
//! evaluates a rule and never writes sessions.csv.

use std::collections::BTreeMap;

use super::anomalies::AnomalyStore;
use super::decode::PendingRow;
use super::html;
use crate::dialog::{SessionSummary, TrackAnomaly};
use crate::error::Error;
use crate::report::RawCsv;

/// What the tracker carries for each message until it knows its session:
/// the messages.csv row (with `--messages`) and the ladder summary (with
/// report.html).
pub(super) struct Payload {
    /// Position in the merged timeline (the order messages.csv keeps).
    pub(super) seq: u64,
    pub(super) row: Option<PendingRow>,
    /// Slot in the ladder store.
    pub(super) ladder: Option<u32>,
    /// The tracker found it a retransmission (drawn faint in the ladder).
    pub(super) repeat: bool,
}

/// The tracker's side of the reports: messages.csv, written in feed order
/// as the tracker releases each message with its session, and the
/// tracker's anomalies.
pub(super) struct Feed {
    pub(super) messages: Option<RawCsv>,
    pub(super) tail: Vec<u8>,
    pub(super) error: Option<Error>,
    /// The tracker's anomalies go here (file index, frame).
    pub(super) anomalies: AnomalyStore,
    /// Input names by index, for the detail of a related message.
    pub(super) files: Vec<String>,
    /// The messages of the sessions report.html may show.
    pub(super) ladders: Option<html::LadderStore>,
    /// The tracker's anomalies by kind (the partition log keeps them apart
    /// from the decoding's).
    pub(super) tracker_kinds: BTreeMap<&'static str, u64>,
}

/// What the tracker hands the rules stage at each collection: the sessions
/// it finished, in order, and how far rows may be written.
pub(super) struct Finished {
    pub(super) sessions: Vec<SessionSummary>,
    /// Start of the earliest live session (`None`: none live).
    pub(super) limit: Option<i64>,
    /// End of the batch: write everything.
    pub(super) all: bool,
}

impl Feed {
    /// Lets the ladder store learn which sessions report.html keeps.
    pub(super) fn poll(&mut self) {
        if let Some(l) = self.ladders.as_mut() {
            l.poll();
        }
    }

    /// A message handed back by the tracking stage with its session, in
    /// feed order: its messages.csv row and its ladder entry.
    pub(super) fn message(&mut self, p: Payload, sid: Option<u64>) {
        if let (Some(l), Some(slot)) = (self.ladders.as_mut(), p.ladder) {
            if p.repeat {
                l.set_retransmission(slot, true);
            }
            l.message(sid, slot);
        }
        if let (Some(row), Some(w)) = (p.row, self.messages.as_mut()) {
            // The last two columns, known only now (rows.rs order): a bool
            // and a number, which CSV never quotes, written as the row
            // encoder writes them (every golden messages.csv holds both
            // kinds). A row encoder per message was 1.3 % of the run.
            self.tail.clear();
            self.tail.extend_from_slice(match row.retransmission {
                Some(true) => b"true,",
                Some(false) => b"false,",
                None => b",",
            });
            if let Some(id) = sid {
                crate::report::message_csv::number_into(&mut self.tail, id);
            }
            self.tail.push(b'\n');
            if self.error.is_none() {
                if let Err(e) = w.raw(&row.head).and_then(|()| w.raw(&self.tail)) {
                    self.error = Some(e);
                }
            }
        }
    }

    /// A tracker anomaly.
    pub(super) fn anomaly(&mut self, a: &TrackAnomaly) {
        *self.tracker_kinds.entry(a.kind).or_default() += 1;
        let detail = tracker_detail(a, &self.files);
        self.anomalies.buf(a.file).push(a.frame, a.kind, detail);
    }
}

/// The detail of a tracker anomaly, with the message it refers to named.
pub(super) fn tracker_detail(a: &TrackAnomaly, files: &[String]) -> String {
    match a.related {
        Some((f, frame)) => format!(
            "{} (request: {} frame {frame})",
            a.detail,
            files.get(f as usize).map_or("?", |s| s.as_str())
        ),
        None => a.detail.clone(),
    }
}
