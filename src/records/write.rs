//! Writes one records file: rows appended one [`SipRecord`] at a time,
//! flushed as a row group every [`ROW_GROUP_ROWS`] rows (memory is one
//! row group, whatever the input), zstd-compressed, the schema version and
//! the input's [`FileFacts`] in the footer's key-value metadata.
//!
//! Never decides a value: every cell is a field of the record as the
//! dialog stage built it.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::FileFacts;
use super::schema::{self, FACTS_KEY, ROW_GROUP_ROWS, SCHEMA_VERSION, VERSION_KEY};
use crate::dialog::SipRecord;
use crate::dialog::record::TEXT_FIELDS;
use crate::error::{Error, ErrorKind};

/// The column builders, one per schema column.
#[derive(Default)]
struct Cols {
    file: StringBuilder,
    frame: UInt64Builder,
    seq: UInt32Builder,
    ts_ns: Int64Builder,
    partition_key: UInt64Builder,
    src_ip: StringBuilder,
    src_port: UInt16Builder,
    dst_ip: StringBuilder,
    dst_port: UInt16Builder,
    txn_key: UInt64Builder,
    status: UInt16Builder,
    method: StringBuilder,
    cseq: UInt32Builder,
    via_count: UInt16Builder,
    allow_update: BooleanBuilder,
    has_allow: BooleanBuilder,
    demand: StringBuilder,
    has_sdp: BooleanBuilder,
    sdp_origin: UInt64Builder,
    h2_fingerprint: UInt64Builder,
    rseq: UInt32Builder,
    rack_rseq: UInt32Builder,
    rack_cseq: UInt32Builder,
    rack_method: StringBuilder,
    sdp_media: UInt64Builder,
    session_level_precondition: BooleanBuilder,
    has_precondition_lines: BooleanBuilder,
    precondition_failure: BooleanBuilder,
    link: [UInt64Builder; 12],
    contacts: ListBuilder<UInt64Builder>,
    realms: ListBuilder<UInt64Builder>,
    text: Vec<StringBuilder>,
}

impl Cols {
    fn push(&mut self, file: &str, r: &SipRecord, part: u64) {
        self.file.append_value(file);
        self.frame.append_value(r.at.frame);
        self.seq.append_value(r.at.seq);
        self.ts_ns.append_value(r.at.ts_ns);
        self.partition_key.append_value(part);
        let _ = write!(self.src_ip, "{}", r.at.src.ip());
        self.src_ip.append_value("");
        self.src_port.append_value(r.at.src.port());
        let _ = write!(self.dst_ip, "{}", r.at.dst.ip());
        self.dst_ip.append_value("");
        self.dst_port.append_value(r.at.dst.port());
        self.txn_key.append_value(r.key.raw());
        self.status.append_option(r.status);
        self.method.append_value(r.method.as_str());
        self.cseq.append_value(r.cseq);
        self.via_count.append_value(r.via_count);
        self.allow_update.append_value(r.allow_update);
        self.has_allow.append_value(r.has_allow);
        self.demand.append_value(r.demand.as_str());
        self.has_sdp.append_value(r.has_sdp);
        self.sdp_origin.append_option(r.sdp_origin);
        self.h2_fingerprint.append_value(r.h2_fingerprint);
        self.rseq.append_option(r.rseq);
        self.rack_rseq.append_option(r.rack.as_ref().map(|x| x.0));
        self.rack_cseq.append_option(r.rack.as_ref().map(|x| x.1));
        self.rack_method
            .append_option(r.rack.as_ref().map(|x| x.2.as_str()));
        self.sdp_media.append_option(r.sdp_media);
        self.session_level_precondition
            .append_value(r.session_level_precondition);
        self.has_precondition_lines
            .append_value(r.has_precondition_lines);
        self.precondition_failure
            .append_value(r.precondition_failure);
        let link = r.link_keys().map(|k| {
            [
                k.from,
                k.to,
                k.from_id,
                k.to_id,
                k.ruri_user,
                k.ruri_num,
                k.target,
                k.caps,
                k.realm,
                k.corr[0],
                k.corr[1],
                k.corr[2],
            ]
        });
        for (i, b) in self.link.iter_mut().enumerate() {
            b.append_option(link.map(|l| l[i]));
        }
        match &r.reply {
            Some(k) => {
                self.contacts.values().append_slice(&k.contacts);
                self.contacts.append(true);
                self.realms.values().append_slice(&k.realms);
                self.realms.append(true);
            }
            None => {
                self.contacts.append(false);
                self.realms.append(false);
            }
        }
        if self.text.is_empty() {
            self.text = TEXT_FIELDS.iter().map(|_| StringBuilder::new()).collect();
        }
        for (i, b) in self.text.iter_mut().enumerate() {
            b.append_option(r.text_field(i));
        }
    }

    /// The arrays of the rows pushed, in schema order; the builders are
    /// empty afterwards.
    fn finish(&mut self) -> Vec<ArrayRef> {
        use std::sync::Arc;
        let mut v: Vec<ArrayRef> = vec![
            Arc::new(self.file.finish()),
            Arc::new(self.frame.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.ts_ns.finish()),
            Arc::new(self.partition_key.finish()),
            Arc::new(self.src_ip.finish()),
            Arc::new(self.src_port.finish()),
            Arc::new(self.dst_ip.finish()),
            Arc::new(self.dst_port.finish()),
            Arc::new(self.txn_key.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.method.finish()),
            Arc::new(self.cseq.finish()),
            Arc::new(self.via_count.finish()),
            Arc::new(self.allow_update.finish()),
            Arc::new(self.has_allow.finish()),
            Arc::new(self.demand.finish()),
            Arc::new(self.has_sdp.finish()),
            Arc::new(self.sdp_origin.finish()),
            Arc::new(self.h2_fingerprint.finish()),
            Arc::new(self.rseq.finish()),
            Arc::new(self.rack_rseq.finish()),
            Arc::new(self.rack_cseq.finish()),
            Arc::new(self.rack_method.finish()),
            Arc::new(self.sdp_media.finish()),
            Arc::new(self.session_level_precondition.finish()),
            Arc::new(self.has_precondition_lines.finish()),
            Arc::new(self.precondition_failure.finish()),
        ];
        v.extend(
            self.link
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        v.push(Arc::new(self.contacts.finish()));
        v.push(Arc::new(self.realms.finish()));
        if self.text.is_empty() {
            self.text = TEXT_FIELDS.iter().map(|_| StringBuilder::new()).collect();
        }
        v.extend(
            self.text
                .iter_mut()
                .map(|b| Arc::new(b.finish()) as ArrayRef),
        );
        v
    }
}

/// A records file being written.
pub struct RecordsWriter {
    path: PathBuf,
    file: String,
    w: ArrowWriter<File>,
    cols: Cols,
    pending: usize,
    rows: u64,
}

fn records_error(path: &Path, detail: impl std::fmt::Display) -> Error {
    ErrorKind::Records {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
    .into()
}

impl RecordsWriter {
    /// Creates `path` for the records of the input named `file`.
    pub fn create(path: &Path, file: &str) -> Result<RecordsWriter, Error> {
        let f = File::create(path).map_err(|source| ErrorKind::Output {
            path: path.to_path_buf(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let w = ArrowWriter::try_new(f, schema::schema(), Some(props))
            .map_err(|e| records_error(path, e))?;
        Ok(RecordsWriter {
            path: path.to_path_buf(),
            file: file.to_string(),
            w,
            cols: Cols::default(),
            pending: 0,
            rows: 0,
        })
    }

    /// Appends the row of `r` with partition key `part`.
    pub fn push(&mut self, r: &SipRecord, part: u64) -> Result<(), Error> {
        self.cols.push(&self.file, r, part);
        self.pending += 1;
        self.rows += 1;
        if self.pending == ROW_GROUP_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.pending == 0 {
            return Ok(());
        }
        let batch = RecordBatch::try_new(schema::schema(), self.cols.finish())
            .map_err(|e| records_error(&self.path, e))?;
        self.pending = 0;
        self.w
            .write(&batch)
            .map_err(|e| records_error(&self.path, e))?;
        // One row group per batch: a reader streams them one at a time.
        self.w.flush().map_err(|e| records_error(&self.path, e))
    }

    /// Rows appended so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the last rows and the footer with `facts`.
    pub fn finish(mut self, facts: &FileFacts) -> Result<(), Error> {
        self.flush()?;
        let json = serde_json::to_string(facts).map_err(|e| records_error(&self.path, e))?;
        self.w.append_key_value_metadata(KeyValue::new(
            VERSION_KEY.to_string(),
            SCHEMA_VERSION.to_string(),
        ));
        self.w
            .append_key_value_metadata(KeyValue::new(FACTS_KEY.to_string(), json));
        self.w.close().map_err(|e| records_error(&self.path, e))?;
        Ok(())
    }
}
