//! Library errors: typed, and every one names the file it is about.
//!
//! Protocol anomalies (a malformed SIP header, an IP fragment overlap, ...) are
//! *not* errors: they are data, see [`crate::anomaly`]. An [`Error`] means an
//! input or output file could not be used (fully).

use std::path::PathBuf;

/// A library error. The kind says what went wrong; `Display` names the file.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    kind: ErrorKind,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The kind of this error, taken out.
    pub fn into_kind(self) -> ErrorKind {
        self.kind
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error { kind }
    }
}

/// What went wrong, with the context needed to find it (file, byte offset,
/// frame number).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{}: empty file (0 bytes)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The content is neither pcap nor pcapng (also after decompression).
    #[error("{}: not a pcap or pcapng capture (starts with {magic})", path.display())]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// The first bytes, in hex, to help identify the format.
        magic: String,
    },
    /// The capture ends in the middle of a record: every packet before it was
    /// read.
    #[error("{}: truncated record at byte offset {offset} (after frame {frame}): file ends {missing} bytes early{}",
        path.display(), if *compressed { " (offset in the decompressed stream)" } else { "" })]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Byte offset of the incomplete record.
        offset: u64,
        /// The last frame read completely.
        frame: u64,
        /// How many bytes were still expected (0 when unknown).
        missing: u64,
        /// Whether `offset` counts decompressed bytes.
        compressed: bool,
    },
    /// A record announces a length that cannot be right; reading the file
    /// stops there rather than allocate it.
    #[error("{}: implausible record length {len} at byte offset {offset} (after frame {frame}; limit {limit}){}",
        path.display(), if *compressed { " (offset in the decompressed stream)" } else { "" })]
    RecordTooLarge {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The last frame read completely.
        frame: u64,
        /// The length the record announced.
        len: u64,
        /// The largest length accepted there.
        limit: u64,
        /// Whether `offset` counts decompressed bytes.
        compressed: bool,
    },
    /// The capture structure is corrupt at this point.
    #[error("{}: corrupt capture at byte offset {offset} (after frame {frame}): {detail}{}",
        path.display(), if *compressed { " (offset in the decompressed stream)" } else { "" })]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad block or record.
        offset: u64,
        /// The last frame read completely.
        frame: u64,
        /// What was wrong.
        detail: String,
        /// Whether `offset` counts decompressed bytes.
        compressed: bool,
    },
    /// An output file could not be created or written.
    #[error("{}: cannot write: {source}", path.display())]
    Output {
        /// The output file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A report of an earlier run (`sipaudit flow`, `extract`) cannot be
    /// used: missing, unreadable, or without what the command needs.
    #[error("{}: {detail}", path.display())]
    Report {
        /// The report file or output directory.
        path: PathBuf,
        /// What is wrong, and what to do.
        detail: String,
    },
    /// A records file (`extract-records`, docs/records.md) cannot be used:
    /// not Parquet, another schema version, or a column missing or of
    /// another type.
    #[error("{}: records file: {detail}", path.display())]
    Records {
        /// The records file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An input of `merge-reports` is not the output of a `--partition`
    /// run, or does not fit with the others (docs/records.md).
    #[error("{}: merge-reports: {detail}", path.display())]
    MergeInput {
        /// The partition's output directory (or its file).
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Nothing can be analysed: no named path exists, and the named
    /// directories hold no file. Checked before anything is written.
    #[error("nothing to analyse: {}", no_input(missing, empty_dirs))]
    NoInput {
        /// Named paths that do not exist.
        missing: Vec<PathBuf>,
        /// Named directories with no file in them (recursively).
        empty_dirs: Vec<PathBuf>,
    },
    /// `--out` names an existing file that is not a directory.
    #[error("{}: cannot use as the output directory: not a directory", path.display())]
    OutputNotADirectory {
        /// The path given to `--out`.
        path: PathBuf,
    },
    /// The output directory does not exist and cannot be created.
    #[error("{}: cannot create the output directory: {source}", path.display())]
    OutputDirCreate {
        /// The path given to `--out`.
        path: PathBuf,
        /// The error from creating it (or a parent).
        source: std::io::Error,
    },
    /// The output directory exists but no file can be created in it.
    #[error("{}: the output directory is not writable (creating a file in it: {source})", path.display())]
    OutputDirNotWritable {
        /// The path given to `--out`.
        path: PathBuf,
        /// The error from creating a file in it.
        source: std::io::Error,
    },
}

/// The reasons of [`ErrorKind::NoInput`], one per named path.
fn no_input(missing: &[PathBuf], empty_dirs: &[PathBuf]) -> String {
    let missing = missing
        .iter()
        .map(|p| format!("{}: no such file or directory", p.display()));
    let empty = empty_dirs
        .iter()
        .map(|d| format!("no input files found in {}", d.display()));
    missing.chain(empty).collect::<Vec<_>>().join("; ")
}
