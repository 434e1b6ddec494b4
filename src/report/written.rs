//! What run.json says of a file written: its size, its CSV records after
//! the header, its SHA-256. Owns the digest of a byte stream fed in pieces
//! ([`ContentDigest`]) and a writer that digests what passes through it
//! ([`Digesting`]), so that the largest reports are described as they are
//! written instead of read back. Never decides what a file holds, and never
//! writes run.json (`pipeline::manifest` does).

use std::io::Write;

use sha2::{Digest, Sha256};

/// A file described: run.json's `files` entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    /// File name in the output directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// CSV records after the header (`None` for a file that is not CSV).
    pub rows: Option<u64>,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

/// Size, CSV records and SHA-256 of bytes fed in pieces of any size.
#[derive(Default)]
pub struct ContentDigest {
    hasher: Sha256,
    records: CsvRecords,
    bytes: u64,
}

impl ContentDigest {
    /// Adds the next bytes.
    pub fn feed(&mut self, b: &[u8]) {
        self.hasher.update(b);
        self.records.feed(b);
        self.bytes += b.len() as u64;
    }

    /// The description of everything fed, as file `name` (rows counted
    /// only for a `.csv` name).
    pub fn finish(self, name: &str) -> Written {
        let sha256 = self
            .hasher
            .finalize()
            .iter()
            .fold(String::new(), |mut s, b| {
                use std::fmt::Write as _;
                let _ = write!(s, "{b:02x}");
                s
            });
        Written {
            name: name.to_string(),
            bytes: self.bytes,
            rows: name.ends_with(".csv").then(|| self.records.data_rows()),
            sha256,
        }
    }
}

/// A writer that digests every byte it passes on to `W`.
pub struct Digesting<W> {
    inner: W,
    digest: ContentDigest,
}

impl<W: Write> Digesting<W> {
    /// Passes writes on to `inner`.
    pub fn new(inner: W) -> Digesting<W> {
        Digesting {
            inner,
            digest: ContentDigest::default(),
        }
    }

    /// The writer, and the digest of what was written through it.
    pub fn into_parts(self) -> (W, ContentDigest) {
        (self.inner, self.digest)
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Only what `inner` took is digested (a short write is retried
        // with the rest).
        let n = self.inner.write(buf)?;
        self.digest.feed(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Counts the records of RFC 4180 CSV fed in pieces: line ends outside
/// quoted fields (a `""` inside one toggles twice).
#[derive(Default)]
struct CsvRecords {
    in_quotes: bool,
    ends: u64,
    /// A record has begun since the last line end.
    open: bool,
}

impl CsvRecords {
    fn feed(&mut self, b: &[u8]) {
        let mut after = 0;
        for i in memchr::memchr2_iter(b'"', b'\n', b) {
            if b[i] == b'"' {
                self.in_quotes = !self.in_quotes;
                self.open = true;
            } else if !self.in_quotes {
                self.ends += 1;
                self.open = false;
            }
            after = i + 1;
        }
        self.open = self.open || b.len() > after;
    }

    /// Records after the header.
    fn data_rows(&self) -> u64 {
        (self.ends + u64::from(self.open)).saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(chunks: &[&str]) -> u64 {
        let mut r = CsvRecords::default();
        for c in chunks {
            r.feed(c.as_bytes());
        }
        r.data_rows()
    }

    #[test]
    fn counts_records_not_lines() {
        assert_eq!(rows(&["a,b\n"]), 0);
        assert_eq!(rows(&["a,b\n1,2\n3,4\n"]), 2);
        assert_eq!(rows(&["a,b\n1,\"x\ny\"\n3,4\n"]), 2);
        assert_eq!(rows(&["a,b\n1,\"x\"", "\"\ny\"\n3,4"]), 2);
        assert_eq!(rows(&["a,b\n1,\"", "\n\"\n"]), 1);
        assert_eq!(rows(&[""]), 0);
        assert_eq!(rows(&["a,b\n1,2"]), 1);
        assert_eq!(rows(&["a,b\n1,2\n", "3"]), 2);
        assert_eq!(rows(&["a,b\n1,2\n", ""]), 1);
    }

    #[test]
    fn a_digesting_writer_describes_what_it_passed_on() {
        let text = b"a,b\n1,\"x\ny\"\n3,4\n";
        let mut w = Digesting::new(Vec::new());
        for piece in text.chunks(5) {
            w.write_all(piece).unwrap();
        }
        let (out, d) = w.into_parts();
        assert_eq!(out, text);
        let mut whole = ContentDigest::default();
        whole.feed(text);
        let (a, b) = (d.finish("x.csv"), whole.finish("x.csv"));
        assert_eq!(a, b);
        assert_eq!((a.bytes, a.rows), (16, Some(2)));
        // sha256sum of the same 16 bytes.
        assert_eq!(
            a.sha256,
            "43ed736a805c6c8445860007e589bb7840948ec19e66f9267c32693f73b7bbdb"
        );
    }
}
