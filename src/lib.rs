//! sipaudit: an offline SIP trace analyzer.
//!
//! Data flows one way, and each module uses only the modules to its left:
//!
//! ```text
//! capture → packet → sip → (dialog → rules, later issues) → report
//!   files    link/IP   zero-copy    transactions,   CSV rows
//!   records  defrag    scanner      sessions,
//!            UDP       + SDP        verdicts
//! ```
//!
//! [`records`] stores the dialog stage's input (one row per SIP message) in
//! Parquet and reads it back: it uses `dialog` and `sip` only.
//! [`pipeline`] connects the stages and starts their threads (besides it,
//! only `capture`'s decompression read-ahead and the binary's progress
//! display start one, each through [`threads`], which names them);
//! [`anomaly`], [`error`], [`blocks`], [`prefetch`] and [`threads`] are shared
//! leaves. The binary (`src/main.rs`) only parses the command line, calls
//! [`pipeline::run`] and owns the exit status.
#![deny(missing_docs, unsafe_code)]

pub mod anomaly;
pub mod blocks;
pub mod error;
pub mod prefetch;
pub mod threads;

pub mod capture;
pub mod packet;
pub mod sip;

pub mod dialog;

pub mod rules;

pub mod report;

pub mod records;

pub mod pipeline;

pub use error::{Error, ErrorKind};
