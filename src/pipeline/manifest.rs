//! `run.json`, the manifest of a run: which sipaudit, which command line,
//! which inputs (size and modification time), which policy, when, and every
//! file written with its size, row count and SHA-256, so that a report that
//! was changed or replaced since is detectable.
//!
//! It describes the files already written in the run's temporary directory
//! (reading them back) and writes `run.json` beside them; it never writes
//! or changes a report.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::capture::format_rfc3339_micros;
use crate::error::{Error, ErrorKind};
use crate::report::written::{ContentDigest, Written};

use super::Input;
use super::out_dir::MANIFEST_NAME;

/// The layout version of `run.json`.
pub const MANIFEST_VERSION: u32 = 1;

/// The content of `run.json` (README, "run.json").
#[derive(Debug, Serialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub manifest_version: u32,
    /// The version of sipaudit that wrote it.
    pub sipaudit_version: &'static str,
    /// The process's arguments, the program first.
    pub command_line: Vec<String>,
    /// The policy's name (`builtin-default` without `--policy`).
    pub policy: String,
    /// When the run started and when its reports were complete (RFC 3339
    /// UTC, microseconds).
    pub start: String,
    /// See `start`.
    pub end: String,
    /// The input files, in the order of inputs.csv.
    pub inputs: Vec<InputFile>,
    /// Inputs that could not be read to their end (their error is in
    /// inputs.csv).
    pub files_with_errors: Vec<String>,
    /// The files written, by name, `run.json` itself excepted.
    pub files: Vec<Written>,
}

impl Manifest {
    /// The manifest of this process's run, started at `started` and ending
    /// now.
    pub fn of_run(
        policy: String,
        started: SystemTime,
        inputs: Vec<InputFile>,
        files_with_errors: Vec<String>,
        files: Vec<Written>,
    ) -> Manifest {
        Manifest {
            manifest_version: MANIFEST_VERSION,
            sipaudit_version: env!("CARGO_PKG_VERSION"),
            command_line: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            policy,
            start: system_time_text(started),
            end: system_time_text(SystemTime::now()),
            inputs,
            files_with_errors,
            files,
        }
    }
}

/// One input file as it was when the run started.
#[derive(Debug, Serialize)]
pub struct InputFile {
    /// As named on the command line, or found under a named directory.
    pub path: String,
    /// Size in bytes (`null` when it could not be read).
    pub bytes: Option<u64>,
    /// Last modification (`null` when unknown).
    pub mtime: Option<String>,
}

/// The inputs as they are now (metadata read from the file system).
pub fn input_files(inputs: &[Input]) -> Vec<InputFile> {
    inputs
        .iter()
        .map(|i| {
            let meta = std::fs::metadata(&i.path).ok();
            InputFile {
                path: i.display.clone(),
                bytes: meta.as_ref().map(|m| m.len()),
                mtime: meta.and_then(|m| m.modified().ok()).map(system_time_text),
            }
        })
        .collect()
}

/// `t` in RFC 3339 UTC with microseconds, like every time in the reports.
pub fn system_time_text(t: SystemTime) -> String {
    let ns = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    };
    format_rfc3339_micros(ns)
}

/// Describes each of `names` in `dir`: as `known` says for a file
/// described while it was written, else by reading it back (one thread per
/// file).
pub fn describe_files(
    dir: &Path,
    names: &[String],
    known: &[Written],
) -> Result<Vec<Written>, Error> {
    /// A file's description: known, or being read on a thread.
    enum Description<'s> {
        Known(Written),
        Reading(std::thread::ScopedJoinHandle<'s, Result<Written, Error>>),
    }
    std::thread::scope(|s| {
        let descriptions: Vec<_> = names
            .iter()
            .filter(|n| *n != MANIFEST_NAME)
            .map(|n| match known.iter().find(|k| &k.name == n) {
                Some(k) => Description::Known(k.clone()),
                None => Description::Reading(crate::threads::scoped(
                    s,
                    crate::threads::HASH,
                    move || describe_file(&dir.join(n), n),
                )),
            })
            .collect();
        descriptions
            .into_iter()
            .map(|d| match d {
                Description::Known(w) => Ok(w),
                Description::Reading(h) => {
                    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
                }
            })
            .collect()
    })
}

fn describe_file(path: &Path, name: &str) -> Result<Written, Error> {
    let err = |source| -> Error {
        ErrorKind::Output {
            path: path.to_path_buf(),
            source,
        }
        .into()
    };
    let mut f = File::open(path).map_err(err)?;
    let mut digest = ContentDigest::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        };
        digest.feed(&buf[..n]);
    }
    // On disk before it is renamed into place (a crash then leaves the old
    // file or the whole new one).
    f.sync_all().map_err(err)?;
    Ok(digest.finish(name))
}

/// Writes `m` as `dir/run.json` (pretty JSON, one line end at the end).
pub fn write(dir: &Path, m: &Manifest) -> Result<(), Error> {
    let path = dir.join(MANIFEST_NAME);
    let err = |source| -> Error {
        ErrorKind::Output {
            path: path.clone(),
            source,
        }
        .into()
    };
    let mut w = BufWriter::new(File::create(&path).map_err(err)?);
    serde_json::to_writer_pretty(&mut w, m).map_err(|e| err(e.into()))?;
    w.write_all(b"\n").map_err(err)?;
    w.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_size_rows_and_sha256() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x.csv"), "h\n1\n2\n").unwrap();
        std::fs::write(d.path().join("r.html"), "abc").unwrap();
        let got = describe_files(d.path(), &["r.html".into(), "x.csv".into()], &[]).unwrap();
        assert_eq!(got[0].rows, None);
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            got[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!((got[1].bytes, got[1].rows), (6, Some(2)));
    }

    #[test]
    fn a_file_described_as_it_was_written_is_not_read_back() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x.csv"), "h\n1\n2\n").unwrap();
        std::fs::write(d.path().join("y.csv"), "h\n1\n").unwrap();
        let known = Written {
            name: "x.csv".into(),
            bytes: 6,
            rows: Some(2),
            sha256: "as written".into(),
        };
        let got = describe_files(d.path(), &["x.csv".into(), "y.csv".into()], &[known]).unwrap();
        assert_eq!(got[0].sha256, "as written");
        assert_eq!((got[1].bytes, got[1].rows), (4, Some(1)));
    }

    #[test]
    fn times_are_rfc3339_micros() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_500_000);
        assert_eq!(system_time_text(t), "1970-01-01T00:00:01.500000Z");
    }
}
