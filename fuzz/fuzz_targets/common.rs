//! Shared by the fuzz targets: a cursor that reads a structured input out of
//! the fuzzer's bytes (running out of bytes reads zeros / empty slices), and
//! a per-process scratch path for the targets that need a file.
#![allow(dead_code)]

use std::path::PathBuf;

/// Reads small integers and slices from the front of the input.
pub struct Cursor<'a> {
    pub rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Cursor { rest: data }
    }
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
    pub fn u8(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, r)) => {
                self.rest = r;
                b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.rest.len());
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        a
    }
}

/// True for gzip and zstd input. The capture and pipeline targets skip it:
/// fuzzing through them explores the (instrumented) upstream decompressor,
/// which is fuzzed by its own project, and a few KB of mutated deflate
/// costs milliseconds to inflate, so the run would spend nearly all its
/// executions there instead of in our readers. Our side of compressed
/// input (magic detection, the read-ahead thread, decompression bombs) is
/// pinned by tests/formats.rs and tests/bounded_memory.rs.
pub fn compressed(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b]) || data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

/// A file path private to this process and target.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::var_os("SIPAUDIT_FUZZ_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("sipaudit-fuzz-{}-{name}", std::process::id()))
}
