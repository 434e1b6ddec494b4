//! Reads a records file back: its footer ([`open`]: the schema version,
//! refused unless this build's major, and the input's [`FileFacts`]), then
//! its rows, one row group at a time, each rebuilt into the [`SipRecord`]
//! the dialog stage built from the message ([`read`]).
//!
//! Never decodes a capture; never guesses a value: a missing column, a
//! cell of another type or an unreadable value is an error naming the file.

use std::fs::File;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use arrow_array::{
    Array, BooleanArray, Int64Array, ListArray, RecordBatch, StringArray, UInt16Array, UInt32Array,
    UInt64Array,
};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::FileFacts;
use super::schema::{FACTS_KEY, LINK_COLUMNS, MAJOR, REPLY_COLUMNS, VERSION_KEY, major_of};
use crate::capture::ts::plausible_ns;
use crate::dialog::linkkeys::{LinkKeys, ReplyKeys};
use crate::dialog::record::TEXT_FIELDS;
use crate::dialog::{Method, SipRecord, TxnKey};
use crate::error::{Error, ErrorKind};
use crate::sip::Demand;

/// Rows decoded at a time: a fraction of a row group, so that the reduce
/// step holds little more than the merge's buffers.
const READ_BATCH_ROWS: usize = 8192;

/// A records file whose footer was read.
#[derive(Clone, Debug)]
pub struct Opened {
    /// The records file.
    pub path: PathBuf,
    /// The input it holds the records of.
    pub facts: FileFacts,
    /// Rows (SIP messages).
    pub rows: u64,
}

fn err(path: &Path, detail: impl std::fmt::Display) -> Error {
    ErrorKind::Records {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
    .into()
}

/// The reader of `path` and its facts, after the version check.
fn builder(path: &Path) -> Result<(ParquetRecordBatchReaderBuilder<File>, FileFacts), Error> {
    let f = File::open(path).map_err(|source| ErrorKind::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f)
        .map_err(|e| err(path, format!("not a readable Parquet file: {e}")))?;
    let kv = b.metadata().file_metadata().key_value_metadata();
    let get = |k: &str| {
        kv.and_then(|kv| kv.iter().find(|e| e.key == k))
            .and_then(|e| e.value.clone())
    };
    let version = get(VERSION_KEY).ok_or_else(|| {
        err(
            path,
            format!("no {VERSION_KEY} in the file metadata (not written by extract-records)"),
        )
    })?;
    if major_of(&version) != Some(MAJOR) {
        return Err(err(
            path,
            format!(
                "schema version {version} is not readable by this sipaudit (reads {MAJOR}.x; docs/records.md)"
            ),
        ));
    }
    let json =
        get(FACTS_KEY).ok_or_else(|| err(path, format!("no {FACTS_KEY} in the file metadata")))?;
    let facts: FileFacts =
        serde_json::from_str(&json).map_err(|e| err(path, format!("{FACTS_KEY}: {e}")))?;
    Ok((b, facts))
}

/// Reads the footer of `path`.
pub fn open(path: &Path) -> Result<Opened, Error> {
    let (b, facts) = builder(path)?;
    let rows = u64::try_from(b.metadata().file_metadata().num_rows()).unwrap_or(0);
    Ok(Opened {
        path: path.to_path_buf(),
        facts,
        rows,
    })
}

/// Reads every row of `path` that `select(frame, seq, partition key)`
/// keeps, in file order, as the record of input `file_idx`, and passes it
/// to `each` with the partition key `select` returned (its home) in
/// `SipRecord::partition`.
pub fn read(
    path: &Path,
    file_idx: u32,
    select: &dyn Fn(u64, u32, u64) -> Option<u64>,
    each: &mut dyn FnMut(SipRecord),
) -> Result<(), Error> {
    let (b, _) = builder(path)?;
    let reader = b
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| err(path, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| err(path, e))?;
        let cols = Columns::of(&batch, path)?;
        for i in 0..batch.num_rows() {
            let (frame, seq) = (cols.frame.value(i), cols.seq.value(i));
            if let Some(home) = select(frame, seq, cols.partition_key.value(i)) {
                let mut rec = cols.record(i, file_idx, path)?;
                rec.partition = home;
                each(rec);
            }
        }
    }
    Ok(())
}

/// What routing reads of a row (`route-records`; pipeline/router.rs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingRow {
    /// Frame number in the input.
    pub frame: u64,
    /// Message number within the frame.
    pub seq: u32,
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// The message's own partition key.
    pub partition_key: u64,
    /// A request (no status).
    pub request: bool,
    /// Method (of the CSeq for a response).
    pub method: Method,
    /// Session-ID, icid-value and X-CID hashes, 0 when absent.
    pub corr: [u64; 3],
}

/// The columns [`read_routing`] reads: a records file cut down to them
/// (with the file metadata kept) is enough for it.
pub const ROUTING_COLUMNS: [&str; 9] = [
    "frame",
    "seq",
    "ts_ns",
    "partition_key",
    "status",
    "method",
    "link_session_id",
    "link_icid",
    "link_x_cid",
];

/// Reads the routing columns of every row of `path`, in file order.
pub fn read_routing(path: &Path, each: &mut dyn FnMut(RoutingRow)) -> Result<(), Error> {
    let (b, _) = builder(path)?;
    let arrow = b.schema().clone();
    let mut roots = Vec::new();
    for name in ROUTING_COLUMNS {
        match arrow.index_of(name) {
            Ok(i) => roots.push(i),
            Err(_) => return Err(err(path, format!("no column {name}"))),
        }
    }
    let mask = ProjectionMask::roots(b.parquet_schema(), roots);
    let reader = b
        .with_projection(mask)
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| err(path, e))?;
    for batch in reader {
        let batch = batch.map_err(|e| err(path, e))?;
        let frame: &UInt64Array = col(&batch, "frame", path)?;
        let seq: &UInt32Array = col(&batch, "seq", path)?;
        let ts: &Int64Array = col(&batch, "ts_ns", path)?;
        let key: &UInt64Array = col(&batch, "partition_key", path)?;
        let status: &UInt16Array = col(&batch, "status", path)?;
        let method: &StringArray = col(&batch, "method", path)?;
        let corr: [&UInt64Array; 3] = [
            col(&batch, "link_session_id", path)?,
            col(&batch, "link_icid", path)?,
            col(&batch, "link_x_cid", path)?,
        ];
        for i in 0..batch.num_rows() {
            each(RoutingRow {
                frame: frame.value(i),
                seq: seq.value(i),
                ts_ns: plausible_ns(ts.value(i)),
                partition_key: key.value(i),
                request: status.is_null(i),
                method: Method::from_bytes(method.value(i).as_bytes()),
                corr: corr.map(|c| opt(c, i, |i| c.value(i)).unwrap_or(0)),
            });
        }
    }
    Ok(())
}

/// The typed columns of one batch.
struct Columns<'b> {
    frame: &'b UInt64Array,
    seq: &'b UInt32Array,
    ts_ns: &'b Int64Array,
    partition_key: &'b UInt64Array,
    src_ip: &'b StringArray,
    src_port: &'b UInt16Array,
    dst_ip: &'b StringArray,
    dst_port: &'b UInt16Array,
    txn_key: &'b UInt64Array,
    status: &'b UInt16Array,
    method: &'b StringArray,
    cseq: &'b UInt32Array,
    via_count: &'b UInt16Array,
    allow_update: &'b BooleanArray,
    has_allow: &'b BooleanArray,
    demand: &'b StringArray,
    has_sdp: &'b BooleanArray,
    sdp_origin: &'b UInt64Array,
    h2_fingerprint: &'b UInt64Array,
    rseq: &'b UInt32Array,
    rack_rseq: &'b UInt32Array,
    rack_cseq: &'b UInt32Array,
    rack_method: &'b StringArray,
    sdp_media: &'b UInt64Array,
    session_level_precondition: &'b BooleanArray,
    has_precondition_lines: &'b BooleanArray,
    precondition_failure: &'b BooleanArray,
    link: Vec<&'b UInt64Array>,
    reply: [&'b ListArray; 2],
    text: Vec<&'b StringArray>,
}

fn col<'b, T: 'static>(b: &'b RecordBatch, name: &str, path: &Path) -> Result<&'b T, Error> {
    let c = b
        .column_by_name(name)
        .ok_or_else(|| err(path, format!("no column {name}")))?;
    c.as_any().downcast_ref::<T>().ok_or_else(|| {
        err(
            path,
            format!("column {name} is {}, not the schema's type", c.data_type()),
        )
    })
}

fn opt<T, A: Array>(a: &A, i: usize, v: impl Fn(usize) -> T) -> Option<T> {
    (!a.is_null(i)).then(|| v(i))
}

fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    (!a.is_null(i)).then(|| a.value(i))
}

fn demand_of(s: &str) -> Option<Demand> {
    Some(match s {
        "mandatory" => Demand::Mandatory,
        "optional" => Demand::Optional,
        "none" => Demand::NoneOnly,
        "absent" => Demand::Absent,
        "unknown" => Demand::Unknown,
        _ => return None,
    })
}

impl<'b> Columns<'b> {
    fn of(b: &'b RecordBatch, p: &Path) -> Result<Columns<'b>, Error> {
        Ok(Columns {
            frame: col(b, "frame", p)?,
            seq: col(b, "seq", p)?,
            ts_ns: col(b, "ts_ns", p)?,
            partition_key: col(b, "partition_key", p)?,
            src_ip: col(b, "src_ip", p)?,
            src_port: col(b, "src_port", p)?,
            dst_ip: col(b, "dst_ip", p)?,
            dst_port: col(b, "dst_port", p)?,
            txn_key: col(b, "txn_key", p)?,
            status: col(b, "status", p)?,
            method: col(b, "method", p)?,
            cseq: col(b, "cseq", p)?,
            via_count: col(b, "via_count", p)?,
            allow_update: col(b, "allow_update", p)?,
            has_allow: col(b, "has_allow", p)?,
            demand: col(b, "demand", p)?,
            has_sdp: col(b, "has_sdp", p)?,
            sdp_origin: col(b, "sdp_origin", p)?,
            h2_fingerprint: col(b, "h2_fingerprint", p)?,
            rseq: col(b, "rseq", p)?,
            rack_rseq: col(b, "rack_rseq", p)?,
            rack_cseq: col(b, "rack_cseq", p)?,
            rack_method: col(b, "rack_method", p)?,
            sdp_media: col(b, "sdp_media", p)?,
            session_level_precondition: col(b, "session_level_precondition", p)?,
            has_precondition_lines: col(b, "has_precondition_lines", p)?,
            precondition_failure: col(b, "precondition_failure", p)?,
            link: LINK_COLUMNS
                .iter()
                .map(|n| col(b, n, p))
                .collect::<Result<_, _>>()?,
            reply: [col(b, REPLY_COLUMNS[0], p)?, col(b, REPLY_COLUMNS[1], p)?],
            text: TEXT_FIELDS
                .iter()
                .map(|n| col(b, n, p))
                .collect::<Result<_, _>>()?,
        })
    }

    fn addr(ip: &StringArray, port: &UInt16Array, i: usize, p: &Path) -> Result<SocketAddr, Error> {
        let a: IpAddr = ip
            .value(i)
            .parse()
            .map_err(|_| err(p, format!("not an IP address: {:?}", ip.value(i))))?;
        Ok(SocketAddr::new(a, port.value(i)))
    }

    fn link(&self, i: usize) -> Option<LinkKeys> {
        let l = &self.link;
        if l[0].is_null(i) {
            return None;
        }
        let v = |k: usize| l[k].value(i);
        Some(LinkKeys {
            from: v(0),
            to: v(1),
            from_id: v(2),
            to_id: v(3),
            ruri_user: v(4),
            ruri_num: v(5),
            target: v(6),
            caps: v(7),
            realm: v(8),
            corr: [v(9), v(10), v(11)],
        })
    }

    fn reply(&self, i: usize, p: &Path) -> Result<Option<Box<ReplyKeys>>, Error> {
        if self.reply[0].is_null(i) {
            return Ok(None);
        }
        let list = |k: usize| -> Result<Box<[u64]>, Error> {
            let v = self.reply[k].value(i);
            let a = v
                .as_any()
                .downcast_ref::<UInt64Array>()
                .ok_or_else(|| err(p, format!("{} items are not uint64", REPLY_COLUMNS[k])))?;
            Ok(a.values().to_vec().into_boxed_slice())
        };
        Ok(Some(Box::new(ReplyKeys {
            contacts: list(0)?,
            realms: list(1)?,
        })))
    }

    /// The record of row `i`.
    fn record(&self, i: usize, file: u32, p: &Path) -> Result<SipRecord, Error> {
        let texts: [Option<&str>; TEXT_FIELDS.len()] =
            std::array::from_fn(|k| opt_str(self.text[k], i));
        let mut r = SipRecord::from_stored_text(&texts, self.link(i));
        r.at.file = file;
        r.at.frame = self.frame.value(i);
        r.at.seq = self.seq.value(i);
        r.at.ts_ns = plausible_ns(self.ts_ns.value(i));
        r.at.src = Self::addr(self.src_ip, self.src_port, i, p)?;
        r.at.dst = Self::addr(self.dst_ip, self.dst_port, i, p)?;
        r.key = TxnKey::from_raw(self.txn_key.value(i));
        r.status = opt(self.status, i, |i| self.status.value(i));
        r.method = Method::from_bytes(self.method.value(i).as_bytes());
        r.cseq = self.cseq.value(i);
        r.via_count = self.via_count.value(i);
        r.allow_update = self.allow_update.value(i);
        r.has_allow = self.has_allow.value(i);
        r.demand = demand_of(self.demand.value(i))
            .ok_or_else(|| err(p, format!("unknown demand {:?}", self.demand.value(i))))?;
        r.has_sdp = self.has_sdp.value(i);
        r.sdp_origin = opt(self.sdp_origin, i, |i| self.sdp_origin.value(i));
        r.h2_fingerprint = self.h2_fingerprint.value(i);
        r.rseq = opt(self.rseq, i, |i| self.rseq.value(i));
        r.rack = opt(self.rack_rseq, i, |i| {
            (
                self.rack_rseq.value(i),
                self.rack_cseq.value(i),
                Method::from_bytes(opt_str(self.rack_method, i).unwrap_or("").as_bytes()),
            )
        });
        r.sdp_media = opt(self.sdp_media, i, |i| self.sdp_media.value(i));
        r.session_level_precondition = self.session_level_precondition.value(i);
        r.has_precondition_lines = self.has_precondition_lines.value(i);
        r.precondition_failure = self.precondition_failure.value(i);
        r.reply = self.reply(i, p)?;
        r.refresh_hop_key();
        Ok(r)
    }
}
