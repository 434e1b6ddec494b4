//! The Parquet twins of the CSV reports (`analyze --format csv,parquet`):
//! each finished CSV report of [`parquet_schema::TABLES`] is read back and
//! written as Parquet, typed by that table, zstd-compressed.
//!
//! Streaming the finished CSV keeps one source of truth for every value
//! (the row structs and their CSV encoding, including the flags added at
//! the end of a batch) and bounds memory to one batch of [`BATCH_ROWS`]
//! rows, whatever the report's size. A CSV cell that does not read as its
//! column's type is an output error naming the file, row and column (a bug:
//! the CSV writers and the table disagree); never a silent null.
//!
//! This module never decides a value and never writes a CSV.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::output_error;
use super::parquet_schema::{self, ColType, Table, list_item, parse_time_ns};
use crate::error::Error;

/// Rows per Arrow batch: the memory bound of a conversion.
pub const BATCH_ROWS: usize = 65_536;
/// Rows per Parquet row group (a reader's unit of streaming).
pub const ROW_GROUP_ROWS: usize = 131_072;

/// Writes the Parquet twin of every report of [`parquet_schema::TABLES`]
/// present in `dir` (messages.csv only exists with `--messages`). Returns
/// the names written.
pub fn write_twins(dir: &Path) -> Result<Vec<&'static str>, Error> {
    let mut written = Vec::new();
    for t in parquet_schema::TABLES {
        if dir.join(t.csv).is_file() {
            convert(dir, t)?;
            written.push(t.parquet);
        }
    }
    Ok(written)
}

/// The properties of every file: zstd, row groups of [`ROW_GROUP_ROWS`].
fn properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

/// An error about the output file `path` (an I/O error or invalid data).
fn data_error(path: &Path, what: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    output_error(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, what),
    )
}

/// Converts `dir/<t.csv>` to `dir/<t.parquet>`.
fn convert(dir: &Path, t: &Table) -> Result<(), Error> {
    let (csv_path, pq_path) = (dir.join(t.csv), dir.join(t.parquet));
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(&csv_path)
        .map_err(|e| data_error(&csv_path, e))?;
    let mut records = r.records();
    let header = records
        .next()
        .transpose()
        .map_err(|e| data_error(&csv_path, e))?;
    let names = t.names();
    if header
        .as_ref()
        .is_none_or(|h| !h.iter().eq(names.iter().copied()))
    {
        return Err(data_error(
            &csv_path,
            format!("header differs from the Parquet schema table: expected {names:?}"),
        ));
    }
    let file = File::create(&pq_path).map_err(|e| output_error(&pq_path, e))?;
    let schema = t.schema();
    let mut w = ArrowWriter::try_new(file, schema.clone(), Some(properties()))
        .map_err(|e| data_error(&pq_path, e))?;
    let mut cols: Vec<Column> = t.columns.iter().map(|(_, ty)| Column::new(*ty)).collect();
    let mut pending = 0usize;
    for (row, rec) in records.enumerate() {
        let rec = rec.map_err(|e| data_error(&csv_path, e))?;
        if rec.len() != cols.len() {
            let msg = format!(
                "row {}: {} cells, {} columns",
                row + 1,
                rec.len(),
                cols.len()
            );
            return Err(data_error(&csv_path, msg));
        }
        for ((col, cell), (name, _)) in cols.iter_mut().zip(rec.iter()).zip(t.columns) {
            col.push(cell).map_err(|why| {
                data_error(&csv_path, format!("row {}, column {name}: {why}", row + 1))
            })?;
        }
        pending += 1;
        if pending == BATCH_ROWS {
            write_batch(&mut w, &schema, &mut cols, &pq_path)?;
            pending = 0;
        }
    }
    if pending > 0 {
        write_batch(&mut w, &schema, &mut cols, &pq_path)?;
    }
    w.close().map_err(|e| data_error(&pq_path, e))?;
    Ok(())
}

/// Writes the rows gathered in `cols` as one batch and empties them.
fn write_batch(
    w: &mut ArrowWriter<File>,
    schema: &Arc<arrow_schema::Schema>,
    cols: &mut [Column],
    path: &Path,
) -> Result<(), Error> {
    let arrays: Vec<ArrayRef> = cols.iter_mut().map(Column::finish).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| data_error(path, e))?;
    w.write(&batch).map_err(|e| data_error(path, e))
}

/// One column being gathered, by its [`ColType`].
enum Column {
    Text(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampNanosecondBuilder),
    TextList(ListBuilder<StringBuilder>),
    IntList(ListBuilder<Int64Builder>),
}

impl Column {
    fn new(t: ColType) -> Column {
        match t {
            ColType::Text => Column::Text(StringBuilder::new()),
            ColType::Int => Column::Int(Int64Builder::new()),
            ColType::Float => Column::Float(Float64Builder::new()),
            ColType::Bool => Column::Bool(BooleanBuilder::new()),
            ColType::Time => Column::Time(TimestampNanosecondBuilder::new().with_timezone("UTC")),
            ColType::TextList => Column::TextList(
                ListBuilder::new(StringBuilder::new()).with_field(list_item(DataType::Utf8)),
            ),
            ColType::IntList => Column::IntList(
                ListBuilder::new(Int64Builder::new()).with_field(list_item(DataType::Int64)),
            ),
        }
    }

    /// Appends one CSV cell (empty: null, or an empty list).
    fn push(&mut self, cell: &str) -> Result<(), String> {
        let empty = cell.is_empty();
        match self {
            Column::Text(b) => b.append_option((!empty).then_some(cell)),
            Column::Int(b) => b.append_option(opt(cell, parse_int)?),
            Column::Float(b) => b.append_option(opt(cell, |c| c.parse().ok())?),
            Column::Bool(b) => b.append_option(opt(cell, parse_bool)?),
            Column::Time(b) => b.append_option(opt(cell, parse_time_ns)?),
            Column::TextList(b) => {
                for item in items(cell) {
                    b.values().append_value(item);
                }
                b.append(true);
            }
            Column::IntList(b) => {
                for item in items(cell) {
                    let v = parse_int(item).ok_or_else(|| format!("{item:?} is not an integer"))?;
                    b.values().append_value(v);
                }
                b.append(true);
            }
        }
        Ok(())
    }

    /// The gathered values as an array; the column starts empty again.
    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Text(b) => Arc::new(b.finish()),
            Column::Int(b) => Arc::new(b.finish()),
            Column::Float(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Time(b) => Arc::new(b.finish()),
            Column::TextList(b) => Arc::new(b.finish()),
            Column::IntList(b) => Arc::new(b.finish()),
        }
    }
}

/// `None` for an empty cell, else the parsed value (an error when it does
/// not parse).
fn opt<T>(cell: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, String> {
    if cell.is_empty() {
        return Ok(None);
    }
    parse(cell)
        .map(Some)
        .ok_or_else(|| format!("{cell:?} does not read as the column's type"))
}

fn parse_int(s: &str) -> Option<i64> {
    s.parse().ok()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The items of a `;`-joined cell (none for an empty cell).
fn items(cell: &str) -> impl Iterator<Item = &str> {
    cell.split(';').filter(|i| !i.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_their_types() {
        let mut c = Column::new(ColType::Int);
        assert!(c.push("420").is_ok() && c.push("").is_ok());
        assert!(c.push("420.0").is_err());
        let mut c = Column::new(ColType::Bool);
        assert!(c.push("true").is_ok() && c.push("").is_ok());
        assert!(c.push("yes").is_err());
        let mut c = Column::new(ColType::IntList);
        assert!(c.push("3;17").is_ok() && c.push("").is_ok());
        assert!(c.push("3;x").is_err());
        let mut c = Column::new(ColType::Time);
        assert!(c.push("2026-11-24T06:58:36.123456Z").is_ok());
        assert!(c.push("yesterday").is_err());
    }

    #[test]
    fn list_cells_split_on_semicolons() {
        let got: Vec<&str> = items("a;b;;c").collect();
        assert_eq!(got, ["a", "b", "c"]);
        assert_eq!(items("").count(), 0);
    }
}
