//! Starting the kernel's writeback of a large report while it is written
//! ([`Writeback`]), so that the `fsync` that puts the file on disk at the
//! end waits for its last few MiB instead of the whole file.
//!
//! Every report is put on disk before it is renamed into place (a crash
//! leaves the old report or the whole new one). Without this, a 300 MB
//! messages.csv was flushed to the device only by that `fsync`, on the
//! calling thread, while both cores idled: 145 ms of wall time on
//! udp2000-60s, 37 ms for the scanner's sessions.csv (strace, twelfth stop).
//! With it the device writes while the run computes.
//!
//! Once a range's writeback has had two more steps' time, it waits for it
//! (usually done by then) and drops its pages from the page cache. The
//! cache then holds the last few steps of a report, not the whole of it, and
//! the pages freed are reused for the next steps. Fresh pages are what the
//! copy into the cache paid for: on this project's benchmark machine (a
//! virtual machine that hands freed memory back to its host) a page never
//! touched, or touched and freed seconds before, costs the host's fault on
//! first touch. Writing 437 MB in 256 KiB writes took 2.1–2.7 s of system
//! time while the cache grew, 0.06–0.24 s with the drop (three runs each,
//! same machine, one after the other); on udp2000-60s `--messages`, the
//! copy (`copy_folio_from_iter_atomic`) was half of what the option added.
//! The report is read back only when sessions.csv is edited at the end
//! (`RawCsv::finish_edited`), which then reads from the device.
//!
//! It owns when writeback starts and which written pages leave the cache;
//! it never changes a byte of what is written. The `fsync` in
//! [`super::RawCsv::finish`] waits for the last steps.

use std::fs::File;
use std::io::Write;

/// Bytes written between two starts of writeback: large enough that the
/// calls cost nothing, small enough that little is left for the `fsync`.
const STEP: u64 = 8 << 20;

/// Bytes written after a range before its pages are dropped (two steps):
/// by then its writeback has usually finished, so waiting for it is free.
const LAG: u64 = 2 * STEP;

/// A file whose written bytes are handed to the kernel's writeback every
/// `STEP` bytes (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: it starts the
/// writes and returns). Elsewhere than on Linux it is the file alone.
pub struct Writeback {
    file: File,
    /// Bytes written so far.
    written: u64,
    /// Bytes whose writeback has been started.
    started: u64,
    /// Bytes whose pages were dropped from the page cache.
    dropped: u64,
}

impl Writeback {
    /// Wraps a file opened for writing at offset 0.
    pub fn new(file: File) -> Writeback {
        Writeback {
            file,
            written: 0,
            started: 0,
            dropped: 0,
        }
    }

    /// The file.
    pub fn into_inner(self) -> File {
        self.file
    }

    /// Starts the writeback of everything written since the last start,
    /// and drops the pages of what was started [`LAG`] bytes before.
    /// Hints: a file system that refuses them is written back by `fsync`,
    /// and pages not dropped stay cached.
    fn start(&mut self) {
        let upto = self.started.saturating_sub(LAG);
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd = self.file.as_raw_fd();
            let range = |from: u64, to: u64| (from as i64, (to - from) as i64);
            let (from, len) = range(self.started, self.written);
            // SAFETY (both blocks): system calls on a file descriptor this
            // struct owns and keeps open; they read and write no memory of
            // ours. Their results are ignored: they are hints (above).
            #[allow(unsafe_code)]
            let _ = unsafe { libc::sync_file_range(fd, from, len, libc::SYNC_FILE_RANGE_WRITE) };
            if upto > self.dropped {
                let (from, len) = range(self.dropped, upto);
                let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                #[allow(unsafe_code)]
                let _ = unsafe {
                    libc::sync_file_range(fd, from, len, wait);
                    libc::posix_fadvise(fd, from, len, libc::POSIX_FADV_DONTNEED)
                };
            }
        }
        self.dropped = self.dropped.max(upto);
        self.started = self.written;
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= STEP {
            self.start();
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Writeback starts every 8 MiB, pages are dropped 16 MiB behind the
    /// range just started, and the file holds exactly what was written.
    #[test]
    fn the_file_holds_exactly_what_was_written_across_many_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let mut w = Writeback::new(File::create(&path).unwrap());
        let n = 1_000_003u64;
        let chunk: Vec<u8> = (0..=255u8).cycle().take(n as usize).collect();
        for _ in 0..20 {
            w.write_all(&chunk).unwrap();
        }
        assert_eq!(w.written, 20 * n);
        // Started after the 9th and the 18th write: the first two writes
        // that reached 8 MiB since the last start.
        assert_eq!(w.started, 18 * n);
        // Nothing was started 16 MiB before either start.
        assert_eq!(w.dropped, 0);
        for _ in 0..20 {
            w.write_all(&chunk).unwrap();
        }
        // Started after the 27th and the 36th: the second of these drops
        // what was written LAG before the range it was called at.
        assert_eq!(w.started, 36 * n);
        assert_eq!(w.dropped, 27 * n - LAG);
        let f = w.into_inner();
        f.sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 40 * chunk.len());
        assert!(back.chunks(chunk.len()).all(|c| c == chunk.as_slice()));
    }
}
