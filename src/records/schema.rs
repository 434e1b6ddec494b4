//! The columns of a records file and the schema version (docs/records.md
//! describes each column; this is the one place that lists them).
//!
//! Owns: [`SCHEMA_VERSION`], the metadata keys and [`schema`]. Never reads
//! or writes a file.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::dialog::record::TEXT_FIELDS;

/// The schema version, `MAJOR.MINOR`: a reader accepts every minor version
/// of its major (added columns) and refuses another major.
pub const SCHEMA_VERSION: &str = "1.0";
/// The major version this build reads.
pub const MAJOR: u32 = 1;
/// Metadata key of the schema version.
pub const VERSION_KEY: &str = "sipaudit.records.version";
/// Metadata key of the input's [`super::FileFacts`] (JSON).
pub const FACTS_KEY: &str = "sipaudit.records.input";
/// Rows per row group (and per Arrow batch when writing).
pub const ROW_GROUP_ROWS: usize = 65_536;
/// What records files are named: `<input file name>.records.parquet`.
pub const SUFFIX: &str = ".records.parquet";

/// The link-key columns, in [`crate::dialog::linkkeys::LinkKeys`] field
/// order (`corr` as its three values).
pub const LINK_COLUMNS: [&str; 12] = [
    "link_from",
    "link_to",
    "link_from_id",
    "link_to_id",
    "link_ruri_user",
    "link_ruri_num",
    "link_target",
    "link_caps",
    "link_realm",
    "link_session_id",
    "link_icid",
    "link_x_cid",
];

/// The fixed columns before the link keys: name, type, nullable.
const HEAD: &[(&str, DataType, bool)] = &[
    ("file", DataType::Utf8, false),
    ("frame", DataType::UInt64, false),
    ("seq", DataType::UInt32, false),
    ("ts_ns", DataType::Int64, false),
    ("partition_key", DataType::UInt64, false),
    ("src_ip", DataType::Utf8, false),
    ("src_port", DataType::UInt16, false),
    ("dst_ip", DataType::Utf8, false),
    ("dst_port", DataType::UInt16, false),
    ("txn_key", DataType::UInt64, false),
    ("status", DataType::UInt16, true),
    ("method", DataType::Utf8, false),
    ("cseq", DataType::UInt32, false),
    ("via_count", DataType::UInt16, false),
    ("allow_update", DataType::Boolean, false),
    ("has_allow", DataType::Boolean, false),
    ("demand", DataType::Utf8, false),
    ("has_sdp", DataType::Boolean, false),
    ("sdp_origin", DataType::UInt64, true),
    ("h2_fingerprint", DataType::UInt64, false),
    ("rseq", DataType::UInt32, true),
    ("rack_rseq", DataType::UInt32, true),
    ("rack_cseq", DataType::UInt32, true),
    ("rack_method", DataType::Utf8, true),
    ("sdp_media", DataType::UInt64, true),
    ("session_level_precondition", DataType::Boolean, false),
    ("has_precondition_lines", DataType::Boolean, false),
    ("precondition_failure", DataType::Boolean, false),
];

/// The list columns after the link keys (`reply` of the record).
pub const REPLY_COLUMNS: [&str; 2] = ["reply_contacts", "reply_realms"];

fn u64_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::UInt64, true)))
}

/// The schema of every records file of [`SCHEMA_VERSION`]: the head
/// columns, the link keys, the reply lists, then the text fields
/// ([`TEXT_FIELDS`]).
pub fn schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let mut f: Vec<Field> = HEAD
            .iter()
            .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
            .collect();
        f.extend(
            LINK_COLUMNS
                .iter()
                .map(|n| Field::new(*n, DataType::UInt64, true)),
        );
        f.extend(
            REPLY_COLUMNS
                .iter()
                .map(|n| Field::new(*n, u64_list(), true)),
        );
        f.extend(
            TEXT_FIELDS
                .iter()
                .map(|n| Field::new(*n, DataType::Utf8, true)),
        );
        Arc::new(Schema::new(f))
    })
    .clone()
}

/// The major version of a `MAJOR.MINOR` text (`None`: not one).
pub fn major_of(v: &str) -> Option<u32> {
    let (major, minor) = v.split_once('.')?;
    minor.parse::<u32>().ok()?;
    major.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_unique() {
        let s = schema();
        let mut names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
        assert_eq!(n, HEAD.len() + 12 + 2 + TEXT_FIELDS.len());
    }

    #[test]
    fn versions() {
        assert_eq!(major_of(SCHEMA_VERSION), Some(MAJOR));
        assert_eq!(major_of("2.13"), Some(2));
        assert_eq!(major_of("1"), None);
        assert_eq!(major_of("x.1"), None);
    }
}
