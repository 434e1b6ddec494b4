//! The output directory, made ready before any report is written: created
//! if missing, and shown to accept a new file, so that a bad `--out` is one
//! clear error naming it (exit 2) rather than a failure on the first report.

use std::path::Path;

use crate::error::{Error, ErrorKind};

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
