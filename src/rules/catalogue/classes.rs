//! The failure classes of rules.md §C as one table, one row per line, to
//! be read line by line against the rules.md table: id, category, kind,
//! capability, trigger status, condition (a function of
//! [`crate::rules::classify`]) and confidence (shown in the reference).
//!
//! It owns the table; it never classifies (that is
//! [`crate::rules::classify::classify`], which walks these rows).

use std::fmt;

use super::names::Category;
use crate::rules::classify::{self as c, Facts};

/// A C-id of rules.md §C.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum ClassId {
    C01,
    C02,
    C03,
    C04,
    C05,
    C06,
    C07,
    C08,
    C09,
    C10,
    C11,
    C12,
    C13,
    C14,
    C15,
    C16,
    C17,
    C18,
    C19,
    C20,
    C21,
    C22,
    C23,
    C24,
}

impl fmt::Display for ClassId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C{:02}", *self as usize + 1)
    }
}

/// What a class of failure means for the relaxation verdicts (rules.md §C
/// "Kinds of rows").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// C01–C07, C11: D.3 expects a relaxed retry.
    Refusal,
    /// C08, C09: the remote requires more (the reverse case of D.3).
    Reverse,
    /// C10, C14, C16, C18, C19, C21: capability failures, no retry expected.
    NonRefusal,
    /// C13, C15, C17: written to the session's flags, not failures.
    Observation,
    /// C12, C20, C22, C23, C24: chain links or terminal states; a row only
    /// when a linked retry relaxes.
    NotCapability,
}

/// The Capability cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capability {
    /// A fixed capability.
    Fixed(&'static str),
    /// "tag", "listed", "X", "the relaxed tags": the tags the condition
    /// found.
    Tags,
    /// "unknown", "none", "n/a": adds nothing.
    Nothing(&'static str),
}

/// The response (or answer) that a row looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A final response with one of these statuses.
    Status(&'static [u16]),
    /// A final response in this range of statuses (inclusive).
    Range(u16, u16),
    /// Any final failure (the condition decides).
    AnyFailure,
    /// A 1xx/2xx answer to an INVITE (the observation rows).
    Answer,
}

impl Trigger {
    /// Whether a final status `s` fires this trigger.
    pub fn fires(self, s: u16) -> bool {
        match self {
            Trigger::Status(list) => list.contains(&s),
            Trigger::Range(a, b) => (a..=b).contains(&s),
            Trigger::AnyFailure => s >= 300,
            Trigger::Answer => false,
        }
    }
}

/// A row's condition: `None` when it does not match, else the tags it
/// contributes (used when the capability is [`Capability::Tags`]).
pub type Condition = fn(&Facts<'_>) -> Option<Vec<String>>;

/// One row of rules.md §C.
#[derive(Debug)]
pub struct Class {
    /// The C-id.
    pub id: ClassId,
    /// The category (the upper-case identifier opening the Category cell).
    pub category: Category,
    /// How it counts for the verdicts.
    pub kind: Kind,
    /// The Capability cell.
    pub capability: Capability,
    /// The status (or answer) it looks at.
    pub trigger: Trigger,
    /// The rest of the Pattern cell, as a function.
    pub condition: Condition,
    /// The Confidence cell, verbatim.
    pub confidence: &'static str,
}

use Capability::{Fixed, Nothing, Tags};
use Category as K;
use ClassId::*;
use Kind::*;
use Trigger::{Range, Status};

const ANSWER: Trigger = Trigger::Answer;
const ANY: Trigger = Trigger::AnyFailure;

macro_rules! row {
    ($id:ident, $cat:ident, $kind:ident, $cap:expr, $trig:expr, $cond:expr, $conf:literal) => {
        Class {
            id: $id,
            category: K::$cat,
            kind: $kind,
            capability: $cap,
            trigger: $trig,
            condition: $cond,
            confidence: $conf,
        }
    };
}

/// rules.md §C, in C-id order.
#[rustfmt::skip]
pub const CLASSES: &[Class] = &[
    //   id   category                      kind           capability              trigger                condition                  confidence
    row!(C01, RemoteLacksPrecondition,      Refusal,       Fixed("precondition"),  Status(&[420]),        c::c01_precondition,       "high"),
    row!(C02, RemoteLacks100rel,            Refusal,       Fixed("100rel"),        Status(&[420]),        c::c02_100rel,             "high"),
    row!(C03, ProxyLacksExtension,          Refusal,       Tags,                   Status(&[420]),        c::c03_proxy_only,         "high"),
    row!(C04, SecAgreeUnsupported,          Refusal,       Fixed("sec-agree"),     Status(&[420]),        c::c04_sec_agree,          "high"),
    row!(C05, RemoteLacksOtherExtension,    Refusal,       Tags,                   Status(&[420]),        c::c05_other,              "high"),
    row!(C06, Malformed420,                 Refusal,       Nothing("unknown"),     Status(&[420]),        c::c06_no_unsupported,     "low"),
    row!(C07, Inconsistent420,              Refusal,       Tags,                   Status(&[420]),        c::c07_not_required,       "medium"),
    row!(C08, RemoteRequiresExtension,      Reverse,       Tags,                   Status(&[421]),        c::c08_required,           "high"),
    row!(C09, SecAgreeRequired,             Reverse,       Fixed("sec-agree"),     Status(&[494]),        c::always,                 "high"),
    row!(C10, PreconditionNotMet,           NonRefusal,    Fixed("precondition"),  Status(&[580]),        c::always,                 "high"),
    row!(C11, RemoteRejectsPreconditionSdp, Refusal,       Fixed("precondition"),  Status(&[488, 606]),   c::c11_warning,            "medium"),
    row!(C12, MediaNegotiationFailure,      NotCapability, Nothing("none"),        Status(&[488, 606]),   c::c12_no_warning,         "n/a"),
    row!(C13, PreconditionIgnored,          Observation,   Fixed("precondition"),  ANSWER,                c::c13_ignored,            "medium-high"),
    row!(C14, RemoteLacksUpdate,            NonRefusal,    Fixed("UPDATE"),        Status(&[405, 501]),   c::c14_update,             "high"),
    row!(C15, RemoteLacksUpdatePredicted,   Observation,   Fixed("UPDATE"),        ANSWER,                c::c15_allow_no_update,    "medium"),
    row!(C16, PrackFailure,                 NonRefusal,    Fixed("100rel"),        Status(&[405, 501, 481]), c::c16_prack,           "high / medium"),
    row!(C17, RemoteViolates100rel,         Observation,   Fixed("100rel"),        ANSWER,                c::c17_unreliable,         "high"),
    row!(C18, PrackTimeout,                 NonRefusal,    Fixed("100rel"),        Range(500, 599),       c::c18_unpracked,          "medium"),
    row!(C19, HomePolicyReject,             NonRefusal,    Tags,                   ANY,                   c::c19_home_reject,        "high with matching text, medium without"),
    row!(C20, NoFinalResponse,              NotCapability, Nothing("none"),        Status(&[408]),        c::c20_not_stalled,        "n/a"),
    row!(C21, PreconditionStall,            NonRefusal,    Fixed("precondition"),  Status(&[408, 487]),   c::c21_stalled,            "low"),
    row!(C22, CallerCancelled,              NotCapability, Nothing("none"),        Status(&[487]),        c::c22_cancelled,          "n/a"),
    row!(C23, CseqNotIncremented,           NotCapability, Nothing("n/a"),         Status(&[482]),        c::c23_repeats_cseq,       "high"),
    row!(C24, SessionIntervalTooSmall,      NotCapability, Nothing("timer"),       Status(&[422]),        c::always,                 "high"),
];

/// The row of a C-id.
pub fn class(id: ClassId) -> &'static Class {
    &CLASSES[id as usize]
}
