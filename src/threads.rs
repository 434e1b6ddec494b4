//! Named threads: every thread the run starts carries a name that says
//! which stage it runs, so that `top -H`, `ps -L`, `perf report --sort
//! comm` and a debugger tell the stages apart (the kernel keeps the first
//! 15 bytes). A shared leaf, like `prefetch`.
//!
//! Owns the names and the spawning; never decides how many threads run or
//! what they do.

use std::thread::{Builder, JoinHandle, Scope, ScopedJoinHandle};

/// A capture file's decoding thread (read, decode, parse, digest, reorder).
pub const FILE: &str = "sipaudit-file";
/// A digest helper of a file's thread.
pub const DIGEST: &str = "sipaudit-digest";
/// The rules stage: rules, rows, CSV writing.
pub const RULES: &str = "sipaudit-rules";
/// Decompression ahead of a gzip or zstd capture's decoding.
pub const UNPACK: &str = "sipaudit-unpack";
/// A lane of one large file decoded in lanes.
pub const LANE: &str = "sipaudit-lane";
/// Frees the tracker's state (and deletes its spill files) at the end.
pub const FREE: &str = "sipaudit-free";
/// Reads a report back to describe it (size, rows, SHA-256) in run.json.
pub const HASH: &str = "sipaudit-hash";
/// Draws the progress bar or lines.
pub const PROGRESS: &str = "sipaudit-prog";

/// The name of tracking pool thread `i`.
pub fn track(i: usize) -> String {
    format!("sipaudit-trk-{i}")
}

/// Spawns `f` on a thread of scope `s` named `name`. Panics, as
/// `Scope::spawn` does, when the OS cannot start a thread.
pub fn scoped<'scope, 'env, F, T>(
    s: &'scope Scope<'scope, 'env>,
    name: &str,
    f: F,
) -> ScopedJoinHandle<'scope, T>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    Builder::new()
        .name(name.to_owned())
        .spawn_scoped(s, f)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}

/// Spawns `f` on a detached thread named `name`. Panics, as
/// `std::thread::spawn` does, when the OS cannot start a thread.
pub fn detached<F, T>(name: &str, f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name fits the kernel's 15 bytes, so none is cut, and the names
    /// differ there.
    #[test]
    fn every_name_fits_the_kernel_and_is_distinct() {
        let names = [
            FILE,
            DIGEST,
            RULES,
            UNPACK,
            LANE,
            FREE,
            HASH,
            PROGRESS,
            &track(0),
            &track(7),
        ];
        for n in names {
            assert!(n.len() <= 15, "{n} is longer than 15 bytes");
        }
        let set: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(set.len(), names.len());
    }

    /// The name is the thread's own.
    #[test]
    fn a_scoped_thread_carries_its_name() {
        let got = std::thread::scope(|s| {
            scoped(s, RULES, || {
                std::thread::current().name().map(str::to_owned)
            })
            .join()
            .unwrap()
        });
        assert_eq!(got.as_deref(), Some(RULES));
        let got = detached(UNPACK, || std::thread::current().name().map(str::to_owned));
        assert_eq!(got.join().unwrap().as_deref(), Some(UNPACK));
    }
}
