//! The session outcome of rules.md §D.3, as amended after review (§J): the
//! `outcome` word and `final_status` of sessions.csv, taken from the last
//! attempt as the tracker left it ([`Outcome`]), the request's method and
//! the failures' verdicts. The tracker says what happened on the wire; this
//! module names it: a 2xx is ESTABLISHED for INVITE and COMPLETED for any
//! other method.

use crate::dialog::tracker::AttemptSummary;
use crate::dialog::{self, Method, SessionSummary};

use super::catalogue::{Outcome, Verdict};
use super::verdict::Failure;

/// The `outcome` word and `final_status` of a session whose failures are
/// `failures` (in time order of F).
pub fn outcome(s: &SessionSummary, failures: &[Failure]) -> (Outcome, Option<u16>) {
    let last = s.attempts.last();
    let final_status = s.final_status.or_else(|| last.and_then(mid_dialog_final));
    // TRUNCATED also when the last failure's verdict is TRUNCATED: the
    // capture ends before a retry could be seen.
    let word = if failures
        .last()
        .is_some_and(|f| f.verdict == Verdict::Truncated)
    {
        Outcome::Truncated
    } else {
        match s.outcome {
            dialog::Outcome::Established
                if last.is_some_and(|a| a.request.method != Method::Invite) =>
            {
                Outcome::Completed
            }
            dialog::Outcome::Established => Outcome::Established,
            dialog::Outcome::Failed => Outcome::Failed,
            dialog::Outcome::Cancelled => Outcome::Cancelled,
            dialog::Outcome::Timeout => Outcome::Timeout,
            dialog::Outcome::Truncated => Outcome::Truncated,
        }
    };
    (word, final_status)
}

/// A dialog whose start is not in the capture (MID_DIALOG) stays TRUNCATED
/// (rules.md §A.1), but the final response its first request got is shown:
/// the tracker keeps that request as the attempt's first in-dialog
/// transaction.
fn mid_dialog_final(a: &AttemptSummary) -> Option<u16> {
    if !a.start_missing {
        return None;
    }
    a.in_dialog
        .iter()
        .find(|t| t.req.cseq == a.request.cseq && t.req.method == a.request.method)
        .and_then(|t| t.final_status)
}
