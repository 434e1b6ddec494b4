//! The inputs of a run: the paths named on the command line, directories
//! expanded, and the check that something among them can be analysed.

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind};

/// One input file, after expansion of directories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Input {
    /// The path as the user gave it, or as found under a given directory.
    pub display: String,
    /// The path to open.
    pub path: PathBuf,
}

/// Expands directories (recursively, sorted by name) and sorts and
/// de-duplicates the resulting list, so naming order never matters. A path
/// that does not exist stays in the list: reading it reports the error.
pub fn expand_inputs(inputs: &[PathBuf]) -> Vec<Input> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(Input {
                display: p.to_string_lossy().into_owned(),
                path: p.clone(),
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

fn walk(dir: &Path, out: &mut Vec<Input>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        out.push(Input {
            display: dir.to_string_lossy().into_owned(),
            path: dir.to_path_buf(),
        });
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.is_file() {
            out.push(Input {
                display: p.to_string_lossy().into_owned(),
                path: p,
            });
        }
    }
}

/// [`expand_inputs`], or [`ErrorKind::NoInput`] when nothing could be
/// analysed: every named path is missing, or a directory with no file in it
/// (naming each). A missing path beside one that exists stays in the list
/// (an unreadable input: exit 1, its error in inputs.csv).
pub fn inputs_to_analyse(named: &[PathBuf]) -> Result<Vec<Input>, Error> {
    let inputs = expand_inputs(named);
    if inputs.iter().any(|i| !is_missing(&i.path)) {
        return Ok(inputs);
    }
    let (mut empty_dirs, mut missing): (Vec<PathBuf>, Vec<PathBuf>) =
        named.iter().cloned().partition(|p| p.is_dir());
    missing.sort();
    missing.dedup();
    empty_dirs.sort();
    empty_dirs.dedup();
    Err(ErrorKind::NoInput {
        missing,
        empty_dirs,
    }
    .into())
}

/// Whether nothing is at `p` (an unreadable path exists: reading it says why).
fn is_missing(p: &Path) -> bool {
    matches!(std::fs::metadata(p), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}
