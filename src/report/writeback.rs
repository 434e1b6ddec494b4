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
//! It owns when writeback starts; it never changes a byte of what is
//! written, and never waits for the device (the `fsync` does, in
//! [`super::RawCsv::finish`]).

use std::fs::File;
use std::io::Write;

/// Bytes written between two starts of writeback: large enough that the
/// calls cost nothing, small enough that little is left for the `fsync`.
const STEP: u64 = 8 << 20;

/// A file whose written bytes are handed to the kernel's writeback every
/// [`STEP`] bytes (`sync_file_range(SYNC_FILE_RANGE_WRITE)`: it starts the
/// writes and returns). Elsewhere than on Linux it is the file alone.
pub struct Writeback {
    file: File,
    /// Bytes written so far.
    written: u64,
    /// Bytes whose writeback has been started.
    started: u64,
}

impl Writeback {
    /// Wraps a file opened for writing at offset 0.
    pub fn new(file: File) -> Writeback {
        Writeback {
            file,
            written: 0,
            started: 0,
        }
    }

    /// The file.
    pub fn into_inner(self) -> File {
        self.file
    }

    /// Starts the writeback of everything written since the last start.
    /// A hint: a file system that refuses it is written back by `fsync`.
    fn start(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (from, len) = (self.started as i64, (self.written - self.started) as i64);
            // SAFETY: a system call on a file descriptor this struct owns
            // and keeps open; it reads and writes no memory of ours. Its
            // result is ignored: it is a hint, and `fsync` writes back
            // whatever it did not.
            #[allow(unsafe_code)]
            let _ = unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    from,
                    len,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
        }
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

    #[test]
    fn the_file_holds_exactly_what_was_written_across_many_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let mut w = Writeback::new(File::create(&path).unwrap());
        let chunk: Vec<u8> = (0..=255u8).cycle().take(1_000_003).collect();
        for _ in 0..20 {
            w.write_all(&chunk).unwrap();
        }
        assert_eq!(w.written, 20 * 1_000_003);
        // Started after the 9th and the 18th write: the first two writes
        // that reached 8 MiB since the last start.
        assert_eq!(w.started, 18 * 1_000_003);
        let f = w.into_inner();
        f.sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 20 * chunk.len());
        assert!(back.chunks(chunk.len()).all(|c| c == chunk.as_slice()));
    }
}
