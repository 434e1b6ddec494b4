//! Reports: CSV writers for the row structs of [`rows`], and their Parquet
//! twins ([`parquet`]). Nothing here decides
//! anything; it only formats rows it is given (RFC 4180, UTF-8, `\n`).
//!
//! Every text cell taken from the wire goes through [`Text`], which applies
//! the formula-injection guard of the contract: a cell starting with `=`,
//! `+`, `-`, `@`, tab or carriage return gets a leading `'`.

pub mod anomalies;
pub mod flow;
pub mod html;
pub mod ladder;
pub mod message_csv;
pub mod parquet;
pub mod parquet_schema;
pub mod rows;
pub mod sessions;
pub mod summary;
pub mod writeback;
pub mod written;

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// A text cell, written with the formula-injection guard.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(pub String);

impl Text {
    /// A cell from raw wire bytes (invalid UTF-8 is replaced).
    pub fn from_bytes(b: &[u8]) -> Text {
        Text(String::from_utf8_lossy(b).into_owned())
    }
    /// A cell from optional raw bytes (empty when absent).
    pub fn opt(b: Option<&[u8]>) -> Text {
        b.map(Text::from_bytes).unwrap_or_default()
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(s)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(s.to_string())
    }
}

/// `ip:port` (`[v6]:port`) as `SocketAddr`'s `Display` writes it, without
/// the formatting machinery for IPv4 (every messages.csv row has two).
pub fn addr_text(a: &std::net::SocketAddr) -> String {
    let mut s = String::with_capacity(21);
    addr_text_into(a, &mut s);
    s
}

/// [`addr_text`]`(a)` written into `s` (cleared first), so that a caller
/// building a row per message reuses one String.
pub fn addr_text_into(a: &std::net::SocketAddr, s: &mut String) {
    s.clear();
    match a {
        std::net::SocketAddr::V4(v4) => {
            // Into a stack buffer with the one integer writer: one row of
            // messages.csv writes two of these, and five `decimal` calls with
            // their UTF-8 checks each cost about 570 instructions an address
            // (callgrind, --messages over TCP).
            let mut b = [0u8; 21];
            let mut n = 0;
            let mut put = |bytes: &[u8]| {
                b[n..n + bytes.len()].copy_from_slice(bytes);
                n += bytes.len();
            };
            for (i, o) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    put(b".");
                }
                put(decimal_bytes(u64::from(o), &mut [0; 20]));
            }
            put(b":");
            put(decimal_bytes(u64::from(v4.port()), &mut [0; 20]));
            s.push_str(std::str::from_utf8(&b[..n]).unwrap_or_default());
        }
        v6 => {
            use std::fmt::Write as _;
            let _ = write!(s, "{v6}");
        }
    }
}

/// `v` in decimal, written at the end of `buf`: the one integer writer of
/// the hand-encoded cells (addresses here, messages.csv's numbers in `message_csv`),
/// without the formatting machinery or a UTF-8 check.
pub(crate) fn decimal_bytes(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Whether a cell needs the leading `'`.
pub fn needs_guard(s: &str) -> bool {
    matches!(
        s.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_guarded(&self.0, s)
    }
}

/// A text cell borrowed from what it describes, written exactly like
/// [`Text`]: the rows of messages.csv, sessions.csv and failures.csv are
/// built without a `String` per field (a cell owns its text only when it
/// was joined or formatted for the row).
#[derive(Debug, Clone, Default)]
pub struct Cell<'a>(pub std::borrow::Cow<'a, str>);

impl<'a> Cell<'a> {
    /// A cell from optional raw bytes (empty when absent; invalid UTF-8
    /// replaced, the only case that copies).
    pub fn opt(b: Option<&'a [u8]>) -> Cell<'a> {
        Cell(b.map(String::from_utf8_lossy).unwrap_or_default())
    }

    /// A cell borrowing `s`.
    pub fn str(s: &'a str) -> Cell<'a> {
        Cell(std::borrow::Cow::Borrowed(s))
    }

    /// A cell owning `s` (a value built for the row: a join, a number).
    pub fn owned(s: String) -> Cell<'a> {
        Cell(std::borrow::Cow::Owned(s))
    }

    /// The same cell, owning its text (what outlives the row's sources).
    pub fn into_owned(self) -> Cell<'static> {
        Cell(std::borrow::Cow::Owned(self.0.into_owned()))
    }
}

impl Serialize for Cell<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_guarded(&self.0, s)
    }
}

/// A text cell with the leading `'` when [`needs_guard`] says so.
fn serialize_guarded<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    if needs_guard(v) {
        s.serialize_str(&format!("'{v}"))
    } else {
        s.serialize_str(v)
    }
}

/// The CSV dialect of every report: RFC 4180, `\n` line ends, the header
/// written by the caller.
fn csv_writer<W: Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(w)
}

fn output_error(path: &Path, source: std::io::Error) -> Error {
    ErrorKind::Output {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

fn create_file(dir: &Path, name: &str) -> Result<(std::path::PathBuf, BufWriter<File>), Error> {
    let (path, file) = open_new(dir, name)?;
    Ok((path, BufWriter::with_capacity(1 << 20, file)))
}

/// Creates `dir/name` (truncated when it exists).
fn open_new(dir: &Path, name: &str) -> Result<(std::path::PathBuf, File), Error> {
    let path = dir.join(name);
    let file = File::create(&path).map_err(|e| output_error(&path, e))?;
    Ok((path, file))
}

/// Writes `rows` (header first) to `dir/name`.
pub fn write_csv<R: Serialize>(
    dir: &Path,
    name: &str,
    rows: &[R],
    header: &[&str],
) -> Result<(), Error> {
    let mut w = CsvStream::create(dir, name, header)?;
    for r in rows {
        w.row(r)?;
    }
    w.finish()
}

/// A CSV file written row by row (header first): messages.csv, too large
/// to hold, and the small reports through [`write_csv`].
pub struct CsvStream {
    path: std::path::PathBuf,
    w: csv::Writer<BufWriter<File>>,
}

impl CsvStream {
    /// Creates `dir/name` and writes the header.
    pub fn create(dir: &Path, name: &str, header: &[&str]) -> Result<CsvStream, Error> {
        let (path, file) = create_file(dir, name)?;
        let mut w = csv_writer(file);
        w.write_record(header)
            .map_err(|e| output_error(&path, e.into()))?;
        Ok(CsvStream { path, w })
    }

    /// Writes one row.
    pub fn row<R: Serialize>(&mut self, r: &R) -> Result<(), Error> {
        self.w
            .serialize(r)
            .map_err(|e| output_error(&self.path, e.into()))
    }

    /// Flushes and closes the file.
    pub fn finish(self) -> Result<(), Error> {
        let path = self.path;
        let inner = self
            .w
            .into_inner()
            .map_err(|e| output_error(&path, e.into_error()))?;
        inner
            .into_inner()
            .map_err(|e| output_error(&path, e.into_error()))?
            .flush()
            .map_err(|e| output_error(&path, e))
    }
}

/// A CSV file written from rows already encoded by [`encode`] (header
/// first): sessions.csv and failures.csv, whose rows wait encoded in memory
/// or in run files before they are written (`pipeline::spill`), and
/// messages.csv, whose rows are encoded where each message is found.
pub struct RawCsv {
    path: std::path::PathBuf,
    name: String,
    /// Digested as it is written: run.json describes the file without
    /// reading it back (messages.csv can be many gigabytes). Written back
    /// to the device as it grows ([`writeback`]).
    w: BufWriter<written::Digesting<writeback::Writeback>>,
    /// Bytes of the header row.
    header_len: u64,
}

impl RawCsv {
    /// Creates `dir/name` and writes the header.
    pub fn create(dir: &Path, name: &str, header: &[&str]) -> Result<RawCsv, Error> {
        let (path, file) = open_new(dir, name)?;
        let file = writeback::Writeback::new(file);
        let w = BufWriter::with_capacity(1 << 20, written::Digesting::new(file));
        let mut h = Vec::new();
        encode(&header, &mut h);
        let mut r = RawCsv {
            path,
            name: name.to_string(),
            w,
            header_len: h.len() as u64,
        };
        r.raw(&h)?;
        Ok(r)
    }

    /// Appends encoded rows.
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.w
            .write_all(bytes)
            .map_err(|e| output_error(&self.path, e))
    }

    /// Flushes the file, puts it on disk (a crash then leaves the old
    /// report or the whole new one), and describes what was written.
    pub fn finish(self) -> Result<written::Written, Error> {
        let path = self.path;
        let (file, digest) = self
            .w
            .into_inner()
            .map_err(|e| output_error(&path, e.into_error()))?
            .into_parts();
        file.into_inner()
            .sync_all()
            .map_err(|e| output_error(&path, e))?;
        Ok(digest.finish(&self.name))
    }

    /// [`RawCsv::finish`] after one pass of `edit` over the rows: it reads
    /// the rows as written (after the header) and writes the rows the file
    /// is to hold. The file is replaced by the edited copy, described as
    /// edited.
    pub fn finish_edited(
        self,
        edit: &mut dyn FnMut(&mut dyn Read, &mut dyn Write) -> std::io::Result<()>,
    ) -> Result<written::Written, Error> {
        let path = self.path;
        let fail = |e| output_error(&path, e);
        // Flushed and closed; its digest is of the rows before the edit.
        self.w.into_inner().map_err(|e| fail(e.into_error()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let (copy, out) = open_new(dir, &format!(".{}.edited.tmp", self.name))?;
        let out = writeback::Writeback::new(out);
        let mut to = BufWriter::with_capacity(1 << 20, written::Digesting::new(out));
        let mut from = std::io::BufReader::with_capacity(1 << 20, File::open(&path).map_err(fail)?);
        std::io::copy(&mut (&mut from).take(self.header_len), &mut to)
            .and_then(|_| edit(&mut from, &mut to))
            .map_err(|e| output_error(&copy, e))?;
        let (out, digest) = to
            .into_inner()
            .map_err(|e| output_error(&copy, e.into_error()))?
            .into_parts();
        out.into_inner()
            .sync_all()
            .map_err(|e| output_error(&copy, e))?;
        std::fs::rename(&copy, &path).map_err(fail)?;
        Ok(digest.finish(&self.name))
    }
}

/// One row encoded exactly as [`CsvStream::row`] writes it (RFC 4180,
/// `\n`), appended to `out`.
///
/// Rows are encoded on the hot path (every messages.csv row, every session),
/// so each thread keeps one writer and its buffer instead of building a
/// `csv::Writer` (and its 8 KiB buffer) per row. It is `flexible` because it
/// serves rows of every report; the field-count check is the reports' row
/// types, not the writer's.
pub fn encode<R: Serialize>(r: &R, out: &mut Vec<u8>) {
    /// A `Write` into a buffer the thread keeps beside its writer.
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    type Encoder = (
        csv::Writer<Shared>,
        std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
    );
    thread_local! {
        static ENCODER: std::cell::RefCell<Encoder> = {
            let buf = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let w = csv::WriterBuilder::new()
                .has_headers(false)
                .flexible(true)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Shared(buf.clone()));
            std::cell::RefCell::new((w, buf))
        };
    }
    ENCODER.with(|e| {
        let (w, buf) = &mut *e.borrow_mut();
        w.serialize(r)
            .expect("serialising a row into memory cannot fail");
        w.flush().expect("flushing into memory cannot fail");
        let mut b = buf.borrow_mut();
        out.extend_from_slice(&b);
        b.clear();
    });
}

/// Column names of messages.csv (contract order).
pub const MESSAGES_HEADER: &[&str] = &[
    "file",
    "frame",
    "time",
    "src",
    "dst",
    "transport",
    "kind",
    "method",
    "status",
    "call_id",
    "cseq",
    "from_tag",
    "to_tag",
    "via_branch",
    "require",
    "proxy_require",
    "supported",
    "unsupported",
    "allow",
    "precondition",
    "retransmission",
    "session",
];
/// Column names of sessions.csv (contract order, then added columns).
pub const SESSIONS_HEADER: &[&str] = &[
    "session",
    "method",
    "call_id",
    "start",
    "end",
    "caller",
    "callee",
    "from_uri",
    "to_uri",
    "request_uri",
    "user_agent",
    "attempts",
    "first_require",
    "first_supported",
    "first_precondition",
    "failure_status",
    "failure_class",
    "refused",
    "retry_call_id",
    "retry_link",
    "retry_delay_ms",
    "retry_require",
    "retry_supported",
    "retry_precondition",
    "verdict",
    "flags",
    "destination_class",
    "policy_verdict",
    "policy_rule",
    "final_status",
    "outcome",
    "file",
    "frame",
    "wireshark_filter",
    "related_sessions",
    "ue_profile",
    "links",
    "attention",
];
/// Column names of failures.csv (contract order).
pub const FAILURES_HEADER: &[&str] = &[
    "session",
    "call_id",
    "request_frame",
    "failure_file",
    "failure_frame",
    "failure_status",
    "failure_class",
    "capability",
    "refused",
    "responder",
    "retry_call_id",
    "retry_file",
    "retry_frame",
    "retry_link",
    "link_confidence",
    "dropped",
    "kept_refused",
    "desired_listed",
    "sdp_relaxed",
    "verdict",
    "flags",
    "policy_verdict",
    "policy_rule",
];
/// Column names of inputs.csv.
pub const INPUTS_HEADER: &[&str] = &[
    "file",
    "format",
    "compression",
    "link_types",
    "packets",
    "bytes",
    "first_time",
    "last_time",
    "sip_packets",
    "other_packets",
    "undecodable_packets",
    "sip_messages",
    "error",
];
/// Column names of anomalies.csv.
pub const ANOMALIES_HEADER: &[&str] = &["file", "frame", "kind", "detail"];
/// Column names of summary.csv.
pub const SUMMARY_HEADER: &[&str] = &["dimension", "value", "count"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_bytes_are_what_display_writes() {
        for v in [0, 7, 9, 10, 99, 100, 65_535, 4_294_967_295, u64::MAX] {
            assert_eq!(decimal_bytes(v, &mut [0; 20]), v.to_string().as_bytes());
        }
    }

    #[test]
    fn addr_text_is_display() {
        for a in [
            "0.0.0.0:0",
            "10.45.38.193:5061",
            "255.255.255.255:65535",
            "1.2.3.4:80",
            "[2001:db8::1]:5060",
            "[::ffff:10.0.0.1]:5060",
        ] {
            let sa: std::net::SocketAddr = a.parse().unwrap();
            assert_eq!(addr_text(&sa), sa.to_string());
            assert_eq!(addr_text(&sa), a);
        }
    }

    proptest::proptest! {
        #[test]
        fn every_ipv4_address_and_port_is_display(ip in proptest::prelude::any::<u32>(), port in proptest::prelude::any::<u16>()) {
            let sa = std::net::SocketAddr::from((std::net::Ipv4Addr::from(ip), port));
            let mut s = String::from("left over");
            addr_text_into(&sa, &mut s);
            proptest::prop_assert_eq!(s, sa.to_string());
        }
    }

    #[test]
    fn formula_injection_guard() {
        for s in ["=1+1", "+x", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(needs_guard(s), "{s:?}");
        }
        for s in ["", "abc", "1=1", " =x"] {
            assert!(!needs_guard(s), "{s:?}");
        }
        let mut w = csv::Writer::from_writer(vec![]);
        w.serialize((Text("=cmd|' /C calc'!A0".into()), Text("ok".into())))
            .unwrap();
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(out, "'=cmd|' /C calc'!A0,ok\n");
    }
}
