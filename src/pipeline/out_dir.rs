//! The output directory: made ready before any report is written, and
//! replaced all at once at the end of a run.
//!
//! [`prepare_out_dir`] creates `--out` if missing and shows that it accepts a
//! new file, so that a bad `--out` is one clear error naming it (exit 2)
//! rather than a failure on the first report.
//!
//! [`Staging`] is where a run writes: a directory `.sipaudit-tmp-<pid>`
//! inside `--out` (the same file system, so a rename moves a file into
//! place). Nothing in `--out` changes until [`Staging::commit`]: a run that
//! fails, or is killed, leaves the previous reports as they were. The commit
//! removes the old `run.json`, renames each new report into place, removes
//! the reports of sipaudit's own names ([`REPORT_NAMES`]) that this run did
//! not write, and moves the new `run.json` in last: a `run.json` in `--out`
//! always describes the files beside it. A temporary directory left by a
//! killed run is removed by the next run into the same directory, once its
//! process is gone.
//!
//! This module never writes a report itself and never touches a file of
//! another name.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};

/// The files a run may write into the output directory (contract.md, "Files
/// in the output directory" and its additions). Only these are ever
/// removed from it.
pub const REPORT_NAMES: &[&str] = &[
    "sessions.csv",
    "failures.csv",
    "messages.csv",
    "inputs.csv",
    "anomalies.csv",
    "summary.csv",
    "sessions.parquet",
    "failures.parquet",
    "messages.parquet",
    "summary.parquet",
    "report.html",
    // The log of an `analyze --records --partition` run (merge_reports.rs).
    "partition.jsonl",
    MANIFEST_NAME,
];

/// The manifest of the run, moved into place last.
pub const MANIFEST_NAME: &str = "run.json";

/// The name of a run's temporary directory, before the process id.
pub const STAGING_PREFIX: &str = ".sipaudit-tmp-";

/// Creates `dir` if needed and checks that a file can be created in it (a
/// probe file, removed at once). Errors: [`ErrorKind::OutputNotADirectory`],
/// [`ErrorKind::OutputDirCreate`], [`ErrorKind::OutputDirNotWritable`].
pub fn prepare_out_dir(dir: &Path) -> Result<(), Error> {
    let path = dir.to_path_buf();
    if dir.exists() && !dir.is_dir() {
        return Err(ErrorKind::OutputNotADirectory { path }.into());
    }
    if let Err(source) = std::fs::create_dir_all(dir) {
        return Err(ErrorKind::OutputDirCreate { path, source }.into());
    }
    let probe = dir.join(format!(".sipaudit-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(ErrorKind::OutputDirNotWritable { path, source }.into()),
    }
}

/// A run's temporary directory inside the output directory (module doc).
/// Dropped without [`Staging::commit`], it is removed with what it holds.
#[derive(Debug)]
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
}

impl Staging {
    /// Removes the temporary directories of runs that are gone, then creates
    /// this run's. `out` must exist ([`prepare_out_dir`]).
    pub fn create(out: &Path) -> Result<Staging, Error> {
        remove_stale(out);
        let dir = out.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        // Left by an earlier process with this id: it is not running.
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).map_err(|source| ErrorKind::OutputDirNotWritable {
            path: out.to_path_buf(),
            source,
        })?;
        Ok(Staging {
            out: out.to_path_buf(),
            dir,
        })
    }

    /// Where the run writes its reports.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The names of the files written so far, sorted (hidden ones, such as
    /// a sort's run files, are not reports and never listed).
    pub fn files(&self) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(|e| self.output_error(&self.dir, e))?;
        for e in rd {
            let e = e.map_err(|e| self.output_error(&self.dir, e))?;
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if !hidden && e.file_type().is_ok_and(|t| t.is_file()) {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Moves every file written into the output directory (module doc for
    /// the order) and removes the reports this run did not write.
    pub fn commit(self) -> Result<(), Error> {
        let written = self.files()?;
        let manifest = self.out.join(MANIFEST_NAME);
        remove_file_if_present(&manifest).map_err(|e| self.output_error(&manifest, e))?;
        for name in written.iter().filter(|n| *n != MANIFEST_NAME) {
            self.move_into_place(name)?;
        }
        for name in REPORT_NAMES {
            if !written.iter().any(|w| w == name) {
                let p = self.out.join(name);
                if fs::symlink_metadata(&p).is_ok_and(|m| m.is_file()) {
                    fs::remove_file(&p).map_err(|e| self.output_error(&p, e))?;
                }
            }
        }
        if written.iter().any(|w| w == MANIFEST_NAME) {
            self.move_into_place(MANIFEST_NAME)?;
        }
        // The renames reach the disk (best effort: not every file system
        // syncs a directory).
        if let Ok(d) = fs::File::open(&self.out) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// An output error about a path in the temporary directory, told about
    /// the file it stands for in the output directory.
    pub fn unstage(&self, e: Error) -> Error {
        match e.into_kind() {
            ErrorKind::Output { path, source } => {
                let path = match path.strip_prefix(&self.dir) {
                    Ok(rest) => self.out.join(rest),
                    Err(_) => path,
                };
                ErrorKind::Output { path, source }.into()
            }
            other => other.into(),
        }
    }

    fn move_into_place(&self, name: &str) -> Result<(), Error> {
        let to = self.out.join(name);
        fs::rename(self.dir.join(name), &to).map_err(|e| self.output_error(&to, e))
    }

    fn output_error(&self, path: &Path, source: std::io::Error) -> Error {
        ErrorKind::Output {
            path: path.to_path_buf(),
            source,
        }
        .into()
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn remove_file_if_present(p: &Path) -> std::io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the temporary directories in `out` whose process is gone (best
/// effort: one that cannot be removed stays, and is tried again next run).
fn remove_stale(out: &Path) {
    let Ok(rd) = fs::read_dir(out) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STAGING_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && pid != std::process::id() && process_gone(pid, &e.path()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Whether the process that made `dir` has ended: `/proc/<pid>` is gone
/// (Linux). Without `/proc`, a directory untouched for a day counts as
/// abandoned.
fn process_gone(pid: u32, dir: &Path) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return !proc.join(pid.to_string()).exists();
    }
    fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_replaces_reports_and_removes_the_unwritten() {
        let out = tempfile::tempdir().unwrap();
        for (n, b) in [
            ("sessions.csv", "old"),
            ("messages.csv", "old"),
            ("run.json", "old"),
            ("notes.txt", "mine"),
        ] {
            fs::write(out.path().join(n), b).unwrap();
        }
        let s = Staging::create(out.path()).unwrap();
        fs::write(s.path().join("sessions.csv"), "new").unwrap();
        fs::write(s.path().join("run.json"), "{}").unwrap();
        s.commit().unwrap();
        assert_eq!(names(out.path()), ["notes.txt", "run.json", "sessions.csv"]);
        assert_eq!(
            fs::read_to_string(out.path().join("sessions.csv")).unwrap(),
            "new"
        );
        assert_eq!(
            fs::read_to_string(out.path().join("notes.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn dropped_staging_leaves_the_directory_as_it_was() {
        let out = tempfile::tempdir().unwrap();
        fs::write(out.path().join("sessions.csv"), "old").unwrap();
        let s = Staging::create(out.path()).unwrap();
        fs::write(s.path().join("sessions.csv"), "partial").unwrap();
        drop(s);
        assert_eq!(names(out.path()), ["sessions.csv"]);
        assert_eq!(
            fs::read_to_string(out.path().join("sessions.csv")).unwrap(),
            "old"
        );
    }

    #[test]
    fn stale_directories_of_gone_processes_are_removed() {
        let out = tempfile::tempdir().unwrap();
        // No process has id u32::MAX - 1 (above pid_max); /proc/1 exists.
        let gone = out.path().join(format!("{STAGING_PREFIX}{}", u32::MAX - 1));
        let alive = out.path().join(format!("{STAGING_PREFIX}1"));
        let other = out.path().join(".sipaudit-tmp-x");
        for d in [&gone, &alive, &other] {
            fs::create_dir(d).unwrap();
            fs::write(d.join("sessions.csv"), "partial").unwrap();
        }
        let s = Staging::create(out.path()).unwrap();
        drop(s);
        assert_eq!(names(out.path()), [".sipaudit-tmp-1", ".sipaudit-tmp-x"]);
    }

    #[test]
    fn errors_name_the_final_file() {
        let out = tempfile::tempdir().unwrap();
        let s = Staging::create(out.path()).unwrap();
        let e: Error = ErrorKind::Output {
            path: s.path().join("sessions.csv"),
            source: std::io::Error::other("disk full"),
        }
        .into();
        let msg = s.unstage(e).to_string();
        assert_eq!(
            msg,
            format!(
                "{}: cannot write: disk full",
                out.path().join("sessions.csv").display()
            )
        );
    }
}
