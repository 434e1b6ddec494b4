//! Capture reading: pcap / pcapng files, plain or gzip/zstd-compressed, into
//! a stream of [`RawPacket`]s with integer-nanosecond timestamps.
//!
//! In: a file path. Out: every packet record, in file order, numbered from 1
//! as Wireshark numbers frames, handed to a callback; plus a [`CaptureInfo`]
//! and, when the file could not be read to its end, the [`Error`] that
//! stopped it (every packet before that point has been delivered).
//!
//! The format is detected from the content, never from the name. The readers
//! are pcap-parser's streaming readers; around them this module adds what
//! pcap-parser leaves to its user (see `../shared/docs/crates.md`): its own
//! pcapng interface table (link type, `if_tsresol` including power-of-two
//! resolutions, `if_tsoffset`, reset at every section), record-length sanity
//! checks *before* any buffer grows, and byte offsets for every error.
//!
//! It never decodes packet contents: that is [`crate::packet`].

pub mod ts;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::ops::ControlFlow;
use std::path::Path;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use crate::error::{Error, ErrorKind};

pub use ts::format_rfc3339_micros;

/// The largest captured length accepted for one packet (Wireshark's
/// `WTAP_MAX_PACKET_SIZE_STANDARD`). A record announcing more ends the file
/// with [`ErrorKind::RecordTooLarge`].
pub const MAX_PACKET_LEN: u32 = 262_144;
/// The largest pcapng block accepted (a packet of [`MAX_PACKET_LEN`] plus
/// generous room for options).
pub const MAX_BLOCK_LEN: u32 = MAX_PACKET_LEN + 65_536;
const INITIAL_BUFFER: usize = 256 * 1024;

/// The container format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// libpcap, any of its magics (micro/nanosecond, either byte order,
    /// "modified").
    Pcap,
    /// pcapng.
    PcapNg,
}

impl Format {
    /// The name written to inputs.csv.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pcap => "pcap",
            Format::PcapNg => "pcapng",
        }
    }
}

/// The compression around the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Not compressed.
    #[default]
    None,
    /// gzip (any number of members).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The name written to inputs.csv (empty for none).
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// One packet record as stored in the capture.
#[derive(Clone, Copy, Debug)]
pub struct RawPacket<'a> {
    /// 1-based packet number in the file (Wireshark's frame number).
    pub frame: u64,
    /// Capture time, nanoseconds since the Unix epoch (UTC).
    pub ts_ns: i64,
    /// The link type of the interface the packet was captured on.
    pub linktype: u32,
    /// Length of the packet on the wire (may exceed `data.len()`).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// What was learnt about a file while reading it.
#[derive(Clone, Debug, Default)]
pub struct CaptureInfo {
    /// The container format, `None` when the file is not a capture.
    pub format: Option<Format>,
    /// The compression found around it.
    pub compression: Compression,
    /// Every link type seen (pcap header or pcapng interfaces), sorted.
    pub link_types: BTreeSet<u32>,
    /// Size of the file on disk.
    pub file_bytes: u64,
    /// Packets delivered.
    pub packets: u64,
}

/// Reads the capture at `path`, calling `on_packet` for every packet record in
/// file order. Returns what was learnt and, if the file could not be read to
/// its end, the error that stopped it.
pub fn read_capture(
    path: &Path,
    on_packet: impl FnMut(&RawPacket<'_>),
) -> (CaptureInfo, Option<Error>) {
    read_capture_counted(path, None, on_packet)
}

/// Bytes read from input files, shared with whoever shows progress.
pub type ByteCounter = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// [`read_capture`], adding to `counter` every byte read from the file
/// itself as it is read (the compressed bytes of a compressed file), so
/// that it ends at the file's size when the file is read to its end.
pub fn read_capture_counted(
    path: &Path,
    counter: Option<&ByteCounter>,
    mut on_packet: impl FnMut(&RawPacket<'_>),
) -> (CaptureInfo, Option<Error>) {
    let mut info = CaptureInfo::default();
    let err = read_inner(path, counter, &mut info, &mut |pkt| {
        on_packet(pkt);
        ControlFlow::Continue(())
    })
    .err();
    (info, err)
}

/// The capture time (nanoseconds since the Unix epoch, as
/// [`RawPacket::ts_ns`]) of the first packet record of the file at `path`, in
/// file order (not the earliest timestamp of the file).
///
/// The format and compression are detected from the content exactly as
/// [`read_capture`] does, and reading stops at the first packet record: only
/// the file header and the first record are decoded (plus what the buffered
/// readers fetch ahead, at most a few hundred KiB). `None` when the file is not
/// a capture, cannot be read, or has no packet record before its end or before
/// the first error (a damaged first record included).
pub fn first_timestamp(path: &Path) -> Option<i64> {
    let mut info = CaptureInfo::default();
    let mut first = None;
    // Any error after the first packet cannot happen (reading stops there);
    // an error before it means there is no first timestamp to give.
    let _ = read_inner(path, None, &mut info, &mut |pkt| {
        first = Some(pkt.ts_ns);
        ControlFlow::Break(())
    });
    first
}

fn io_err(path: &Path, source: io::Error) -> Error {
    ErrorKind::Io {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// A reader that adds the bytes it reads to a [`ByteCounter`].
struct Counting<R> {
    inner: R,
    counter: ByteCounter,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// A reader whose source is read on another thread, a few blocks ahead
/// (decompression overlaps packet decoding). Bounded: at most
/// `READ_AHEAD_BLOCKS` blocks of `READ_AHEAD_BLOCK` bytes wait. Dropping it
/// stops the thread at its next block.
struct ReadAhead {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    block: Vec<u8>,
    pos: usize,
    done: bool,
}

const READ_AHEAD_BLOCK: usize = 256 * 1024;
const READ_AHEAD_BLOCKS: usize = 4;

impl ReadAhead {
    fn spawn(mut src: impl Read + Send + 'static) -> ReadAhead {
        let (tx, rx) = std::sync::mpsc::sync_channel(READ_AHEAD_BLOCKS);
        crate::threads::detached(crate::threads::UNPACK, move || {
            loop {
                let mut buf = vec![0u8; READ_AHEAD_BLOCK];
                let mut n = 0;
                let res = loop {
                    match src.read(&mut buf[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => {
                            n += k;
                            if n == buf.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let end = n == 0;
                if n > 0 && tx.send(Ok(buf)).is_err() {
                    return;
                }
                if let Err(e) = res {
                    let _ = tx.send(Err(e));
                    return;
                }
                if end || n < READ_AHEAD_BLOCK {
                    // End of stream (a short block is only ever the last).
                    return;
                }
            }
        });
        ReadAhead {
            rx,
            block: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.block = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.block.len() - self.pos);
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads up to `n` bytes (fewer only at end of stream).
fn read_prefix(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn hex_prefix(b: &[u8]) -> String {
    if b.is_empty() {
        return "nothing".into();
    }
    b.iter()
        .take(8)
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

fn is_pcap_magic(m: &[u8]) -> bool {
    if m.len() < 4 {
        return false;
    }
    let le = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
    let be = u32::from_be_bytes([m[0], m[1], m[2], m[3]]);
    const MAGICS: [u32; 3] = [0xa1b2_c3d4, 0xa1b2_3c4d, 0xa1b2_cd34];
    MAGICS.contains(&le) || MAGICS.contains(&be)
}

/// Reads the capture, handing every packet to `on_packet` until it answers
/// [`ControlFlow::Break`] (which ends the read early, without an error).
fn read_inner(
    path: &Path,
    counter: Option<&ByteCounter>,
    info: &mut CaptureInfo,
    on_packet: &mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
) -> Result<(), Error> {
    let mut file = File::open(path).map_err(|e| io_err(path, e))?;
    info.file_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let outer = read_prefix(&mut file, 4).map_err(|e| io_err(path, e))?;
    if outer.is_empty() {
        return Err(ErrorKind::Empty {
            path: path.to_path_buf(),
        }
        .into());
    }
    let raw: Box<dyn Read + Send> = match counter {
        Some(c) => {
            c.fetch_add(outer.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let file = Counting {
                inner: file,
                counter: c.clone(),
            };
            Box::new(io::Cursor::new(outer.clone()).chain(file))
        }
        None => Box::new(io::Cursor::new(outer.clone()).chain(file)),
    };
    // Decompression runs on a thread of its own, ahead of the decoding.
    let mut stream: Box<dyn Read> = if outer.starts_with(&GZIP_MAGIC) {
        info.compression = Compression::Gzip;
        Box::new(ReadAhead::spawn(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(INITIAL_BUFFER, raw),
        )))
    } else if outer.starts_with(&ZSTD_MAGIC) {
        info.compression = Compression::Zstd;
        Box::new(ReadAhead::spawn(
            zstd::stream::read::Decoder::new(raw).map_err(|e| io_err(path, e))?,
        ))
    } else {
        raw
    };
    let compressed = info.compression != Compression::None;
    // pcap-parser's constructors parse the file header from a single read():
    // hand them a prefix big enough for any sane header.
    let magic = read_prefix(&mut stream, INITIAL_BUFFER / 4).map_err(|e| io_err(path, e))?;
    let format = if magic.starts_with(&PCAPNG_MAGIC) {
        Format::PcapNg
    } else if is_pcap_magic(&magic) {
        Format::Pcap
    } else {
        return Err(ErrorKind::NotACapture {
            path: path.to_path_buf(),
            magic: hex_prefix(&magic),
        }
        .into());
    };
    info.format = Some(format);
    let stream: Box<dyn Read> = Box::new(io::Cursor::new(magic).chain(stream));
    let mut ctx = Ctx {
        path,
        compressed,
        info,
        on_packet,
        empty_run: (0, 0),
        dry_refills: 0,
    };
    match format {
        Format::Pcap => ctx.read_pcap(stream),
        Format::PcapNg => ctx.read_pcapng(stream),
    }
}

/// One pcapng interface, as the Interface Description Block declared it.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    /// The `if_tsresol` option byte (default 6 = microseconds).
    tsresol: u8,
    /// The `if_tsoffset` option, seconds.
    tsoffset: i64,
}

struct Ctx<'p, 'i, 'f> {
    path: &'p Path,
    compressed: bool,
    info: &'i mut CaptureInfo,
    on_packet: &'f mut dyn FnMut(&RawPacket<'_>) -> ControlFlow<()>,
    /// Zero-length records in a row so far, and the offset of the first.
    empty_run: (u32, usize),
    /// Refills in a row that brought no byte while the parser wanted more.
    /// The first is the normal end of the file (pcap-parser learns there
    /// that the stream is exhausted and says so next time); a second means
    /// the parser will never be satisfied and asking again would spin: a
    /// block shorter than the packet it declares fills the buffer with its
    /// successors while the parser waits for the rest of the packet.
    dry_refills: u32,
}

/// Zero-length records in a row after which a file is taken to hold no
/// more packets (zero fill after a crash, a decompression bomb): reading
/// stops with [`ErrorKind::Corrupt`] at the first of them.
pub const MAX_EMPTY_RECORDS: u32 = 10_000;

/// What to do after a reader reported something other than a block.
enum Next {
    Again,
    Done,
}

impl Ctx<'_, '_, '_> {
    /// Hands the packet of the record at `offset` to the callback; `Break`
    /// means stop reading now. The [`MAX_EMPTY_RECORDS`]-th zero-length
    /// record in a row is an error instead.
    fn deliver(
        &mut self,
        offset: usize,
        ts_ns: i64,
        linktype: u32,
        orig_len: u32,
        data: &[u8],
    ) -> Result<ControlFlow<()>, Error> {
        if data.is_empty() {
            if self.empty_run.0 == 0 {
                self.empty_run.1 = offset;
            }
            self.empty_run.0 += 1;
            if self.empty_run.0 >= MAX_EMPTY_RECORDS {
                let detail = format!(
                    "{MAX_EMPTY_RECORDS} zero-length records in a row from here: \
                     the rest is not packets (zero fill?)"
                );
                // Named after the last frame before the run: its records
                // were delivered (as empty packets) but are not data.
                return Err(ErrorKind::Corrupt {
                    path: self.path.to_path_buf(),
                    offset: self.empty_run.1 as u64,
                    frame: self.info.packets - u64::from(self.empty_run.0 - 1),
                    detail,
                    compressed: self.compressed,
                }
                .into());
            }
        } else {
            self.empty_run.0 = 0;
        }
        self.info.packets += 1;
        let pkt = RawPacket {
            frame: self.info.packets,
            ts_ns,
            linktype,
            orig_len,
            data,
        };
        Ok((self.on_packet)(&pkt))
    }

    fn too_large(&self, offset: usize, len: u64, limit: u64) -> Error {
        ErrorKind::RecordTooLarge {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            frame: self.info.packets,
            len,
            limit,
            compressed: self.compressed,
        }
        .into()
    }

    fn corrupt(&self, offset: usize, detail: String) -> Error {
        ErrorKind::Corrupt {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            frame: self.info.packets,
            detail,
            compressed: self.compressed,
        }
        .into()
    }

    fn truncated(&self, offset: usize, missing: u64) -> Error {
        ErrorKind::Truncated {
            path: self.path.to_path_buf(),
            offset: offset as u64,
            frame: self.info.packets,
            missing,
            compressed: self.compressed,
        }
        .into()
    }

    /// Handles a reader error that is not a block. `needed` is the length of
    /// the record at the head of the buffer, if its header could be read: it
    /// is checked (and the buffer grown for it) before anything is read.
    fn on_reader_error<R: PcapReaderIterator + ?Sized>(
        &mut self,
        reader: &mut R,
        kind: ReaderErr,
        needed: Option<Result<usize, Error>>,
    ) -> Result<Next, Error> {
        let offset = reader.consumed();
        match kind {
            ReaderErr::Eof => Ok(Next::Done),
            ReaderErr::Incomplete => {
                let mut want = None;
                if let Some(n) = needed {
                    // The record is known to be within the limits: make room
                    // for it (a no-op when the buffer is already big enough).
                    let n = n?;
                    want = Some(n);
                    if n + 64 > INITIAL_BUFFER {
                        reader.grow(n + INITIAL_BUFFER);
                    }
                }
                let before = reader.data().len();
                reader.refill().map_err(|_| self.read_error(offset))?;
                if reader.data().len() > before {
                    self.dry_refills = 0;
                } else {
                    self.dry_refills += 1;
                    if self.dry_refills > 1 {
                        return Err(match want {
                            Some(n) if n > before => self.truncated(offset, (n - before) as u64),
                            _ => self.corrupt(
                                offset,
                                "packet longer than the block that holds it".into(),
                            ),
                        });
                    }
                }
                Ok(Next::Again)
            }
            ReaderErr::UnexpectedEof => {
                let have = reader.data().len() as u64;
                let missing = match needed {
                    Some(Ok(n)) => (n as u64).saturating_sub(have),
                    Some(Err(e)) => return Err(e),
                    None => 0,
                };
                Err(self.truncated(offset, missing))
            }
            ReaderErr::Parse(detail) => {
                if let Some(Err(e)) = needed {
                    return Err(e);
                }
                Err(self.corrupt(offset, detail))
            }
            ReaderErr::Read => Err(self.read_error(offset)),
        }
    }

    fn read_error(&self, offset: usize) -> Error {
        // pcap-parser drops the io::Error (crates.md); the decompressors are
        // the usual source (corrupt gzip/zstd stream).
        self.corrupt(
            offset,
            if self.compressed {
                "read error in the compressed stream (corrupt or cut compressed data)".into()
            } else {
                "read error".into()
            },
        )
    }

    fn read_pcap(&mut self, stream: Box<dyn Read>) -> Result<(), Error> {
        let mut reader = match LegacyPcapReader::new(INITIAL_BUFFER, stream) {
            Ok(r) => r,
            Err(PcapError::Incomplete(_)) | Err(PcapError::UnexpectedEof) => {
                return Err(self.truncated(0, 0));
            }
            Err(e) => return Err(self.corrupt(0, format!("bad pcap file header: {e}"))),
        };
        let mut head = PcapHead::default();
        loop {
            let pos = reader.consumed();
            let kind = match reader.next() {
                Ok((consumed, block)) => {
                    match block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            head = PcapHead {
                                big_endian: h.is_bigendian(),
                                snaplen: h.snaplen,
                                linktype: h.network.0 as u32,
                                nanos: h.is_nanosecond_precision(),
                            };
                            self.info.link_types.insert(head.linktype);
                        }
                        PcapBlockOwned::Legacy(b) => {
                            if self.pcap_record(pos, &head, &b)?.is_break() {
                                return Ok(());
                            }
                        }
                        PcapBlockOwned::NG(_) => {}
                    }
                    // Without shifting: the buffer moves its unread tail (part of one
                    // record) to the front at the next refill, instead of moving up
                    // to half its size each time the read position passes the
                    // middle (about half of every file was copied once so).
                    reader.consume_noshift(consumed);
                    continue;
                }
                Err(e) => ReaderErr::from(&e),
            };
            let needed = self.pcap_needed(reader.data(), reader.consumed(), &head);
            match self.on_reader_error(&mut reader, kind, needed)? {
                Next::Again => continue,
                Next::Done => return Ok(()),
            }
        }
    }

    /// Delivers pcap record `b` at offset `pos`, refused when it captured
    /// more than the file's snaplen allows.
    fn pcap_record(
        &mut self,
        pos: usize,
        head: &PcapHead,
        b: &pcap_parser::LegacyPcapBlock<'_>,
    ) -> Result<ControlFlow<()>, Error> {
        let limit = record_limit(head.snaplen);
        if b.caplen > limit {
            return Err(self.too_large(pos, b.caplen as u64, limit as u64));
        }
        let frac = if head.nanos {
            b.ts_usec as i64
        } else {
            b.ts_usec as i64 * 1_000
        };
        let ts = b.ts_sec as i64 * 1_000_000_000 + frac;
        self.deliver(pos, ts, head.linktype, b.origlen, b.data)
    }

    /// The bytes the record at the head of buffer `d` (at offset `at`)
    /// needs, from its header's captured length; `None` before its header
    /// is buffered, an error when the length is over the limit.
    fn pcap_needed(&self, d: &[u8], at: usize, head: &PcapHead) -> Option<Result<usize, Error>> {
        (d.len() >= 16).then(|| {
            let b = [d[8], d[9], d[10], d[11]];
            let caplen = if head.big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            };
            let limit = record_limit(head.snaplen);
            if caplen > limit {
                Err(self.too_large(at, caplen as u64, limit as u64))
            } else {
                Ok(16 + caplen as usize)
            }
        })
    }

    fn read_pcapng(&mut self, stream: Box<dyn Read>) -> Result<(), Error> {
        let mut reader = match PcapNGReader::new(INITIAL_BUFFER, stream) {
            Ok(r) => r,
            Err(PcapError::Incomplete(_)) | Err(PcapError::UnexpectedEof) => {
                return Err(self.truncated(0, 0));
            }
            Err(e) => {
                return Err(self.corrupt(0, format!("bad pcapng section header: {e}")));
            }
        };
        let mut section = Section::default();
        loop {
            let off = reader.consumed();
            // pcap-parser 0.17 subtracts 12 from a block length it has only
            // checked against its own (smaller) header size: a length of
            // 4..11 overflows there (fuzz/capture found it). Such a block
            // is refused here, before the parser sees it.
            if let Some(len) = ng_block_len(reader.data(), section.big_endian)
                && (len < 12 || len % 4 != 0)
            {
                return Err(self.corrupt(off, format!("invalid block length {len}")));
            }
            let kind = match reader.next() {
                Ok((consumed, block)) => {
                    if self.ng_block(off, block, &mut section)?.is_break() {
                        return Ok(());
                    }
                    reader.consume_noshift(consumed);
                    continue;
                }
                Err(e) => ReaderErr::from(&e),
            };
            let needed = self.ng_needed(reader.data(), reader.consumed(), section.big_endian);
            match self.on_reader_error(&mut reader, kind, needed)? {
                Next::Again => continue,
                Next::Done => return Ok(()),
            }
        }
    }

    /// One pcapng block at byte `off`: a section or interface declared, or
    /// a packet delivered.
    fn ng_block(
        &mut self,
        off: usize,
        block: PcapBlockOwned<'_>,
        section: &mut Section,
    ) -> Result<ControlFlow<()>, Error> {
        match block {
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                section.big_endian = shb.big_endian();
                section.ifaces.clear();
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                let iface = Interface {
                    linktype: idb.linktype.0 as u32,
                    snaplen: idb.snaplen,
                    tsresol: idb.if_tsresol,
                    tsoffset: idb.if_tsoffset,
                };
                self.info.link_types.insert(iface.linktype);
                section.ifaces.push(iface);
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let Some(iface) = section.ifaces.get(epb.if_id as usize).copied() else {
                    return Err(self.corrupt(
                        off,
                        format!(
                            "enhanced packet block for interface {} but only {} declared",
                            epb.if_id,
                            section.ifaces.len()
                        ),
                    ));
                };
                let limit = record_limit(iface.snaplen);
                if epb.caplen > limit {
                    return Err(self.too_large(off, epb.caplen as u64, limit as u64));
                }
                let units = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                let ts = ts::pcapng_ts_ns(units, iface.tsresol, iface.tsoffset);
                let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                return self.deliver(off, ts, iface.linktype, epb.origlen, data);
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                // An SPB implies interface 0; its captured length is
                // min(origlen, snaplen) (pcap-parser's `truncated()`
                // answers the opposite, crates.md), and it has no
                // timestamp: Wireshark shows 0.
                let Some(iface) = section.ifaces.first().copied() else {
                    return Err(
                        self.corrupt(off, "simple packet block before any interface".into())
                    );
                };
                let mut caplen = spb.origlen as usize;
                if iface.snaplen != 0 {
                    caplen = caplen.min(iface.snaplen as usize);
                }
                let data = &spb.data[..caplen.min(spb.data.len())];
                return self.deliver(off, 0, iface.linktype, spb.origlen, data);
            }
            PcapBlockOwned::NG(Block::Unknown(ub)) if ub.block_type == 2 => {
                return self.obsolete_packet(off, ub.data, section);
            }
            _ => {}
        }
        Ok(ControlFlow::Continue(()))
    }

    /// An Obsolete Packet Block (pcapng draft §4.5 / appendix): interface
    /// id u16, drops u16, ts high, ts low, caplen, origlen, data.
    fn obsolete_packet(
        &mut self,
        off: usize,
        d: &[u8],
        section: &Section,
    ) -> Result<ControlFlow<()>, Error> {
        if d.len() < 20 {
            return Err(self.corrupt(off, "short obsolete packet block".into()));
        }
        let big_endian = section.big_endian;
        let rd32 = |o: usize| {
            let b = [d[o], d[o + 1], d[o + 2], d[o + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let ifid = if big_endian {
            u16::from_be_bytes([d[0], d[1]])
        } else {
            u16::from_le_bytes([d[0], d[1]])
        };
        let Some(iface) = section.ifaces.get(ifid as usize).copied() else {
            return Err(self.corrupt(off, "packet block for an undeclared interface".into()));
        };
        let units = ((rd32(4) as u64) << 32) | rd32(8) as u64;
        let caplen = rd32(12) as usize;
        let origlen = rd32(16);
        let data = &d[20..(20 + caplen).min(d.len())];
        let ts = ts::pcapng_ts_ns(units, iface.tsresol, iface.tsoffset);
        self.deliver(off, ts, iface.linktype, origlen, data)
    }

    /// After a reader error at byte `consumed`: the length of the block
    /// buffered at `d`, once its header is, or why it cannot be read.
    fn ng_needed(
        &self,
        d: &[u8],
        consumed: usize,
        big_endian: bool,
    ) -> Option<Result<usize, Error>> {
        (d.len() >= 12).then(|| {
            let len = ng_block_len(d, big_endian).unwrap_or(0);
            if len > MAX_BLOCK_LEN {
                Err(self.too_large(consumed, len as u64, MAX_BLOCK_LEN as u64))
            } else if len < 12 || len % 4 != 0 {
                Err(self.corrupt(consumed, format!("invalid block length {len}")))
            } else {
                Ok(len as usize)
            }
        })
    }
}

/// What a pcap file header declares: byte order, snaplen, link type and
/// timestamp precision.
#[derive(Default)]
struct PcapHead {
    big_endian: bool,
    snaplen: u32,
    linktype: u32,
    nanos: bool,
}

/// What a pcapng section has declared so far: its byte order and its
/// interfaces.
#[derive(Default)]
struct Section {
    big_endian: bool,
    ifaces: Vec<Interface>,
}

/// The total length a pcapng block declares, once the bytes that give it
/// (and, for a section header, its byte order) are buffered.
fn ng_block_len(d: &[u8], big_endian: bool) -> Option<u32> {
    if d.len() < 8 {
        return None;
    }
    let is_shb = d[..4] == PCAPNG_MAGIC;
    // A section header carries its own byte order.
    let be = if is_shb {
        if d.len() < 12 {
            return None;
        }
        d[8..12] == [0x1a, 0x2b, 0x3c, 0x4d]
    } else {
        big_endian
    };
    let b = [d[4], d[5], d[6], d[7]];
    Some(if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    })
}

/// The reader's errors, detached from the buffer they borrow.
enum ReaderErr {
    Eof,
    Incomplete,
    UnexpectedEof,
    Read,
    Parse(String),
}

impl From<&PcapError<&[u8]>> for ReaderErr {
    fn from(e: &PcapError<&[u8]>) -> Self {
        match e {
            PcapError::Eof => ReaderErr::Eof,
            PcapError::Incomplete(_) | PcapError::BufferTooSmall => ReaderErr::Incomplete,
            PcapError::UnexpectedEof => ReaderErr::UnexpectedEof,
            PcapError::ReadError => ReaderErr::Read,
            PcapError::HeaderNotRecognized => ReaderErr::Parse("block not recognised".into()),
            PcapError::NomError(_, k) | PcapError::OwnedNomError(_, k) => {
                ReaderErr::Parse(format!("unparseable block ({k:?})"))
            }
        }
    }
}

/// The largest plausible captured length for an interface with this snaplen.
fn record_limit(snaplen: u32) -> u32 {
    if snaplen == 0 {
        MAX_PACKET_LEN
    } else {
        snaplen.min(MAX_PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {

    /// A source that hands out `data` in odd-sized pieces, then fails.
    struct Dribble {
        data: Vec<u8>,
        pos: usize,
        fail_at_end: bool,
    }

    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.pos == self.data.len() {
                return if self.fail_at_end {
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "corrupt deflate",
                    ))
                } else {
                    Ok(0)
                };
            }
            let n = out.len().min(7919).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn read_ahead_delivers_every_byte_then_the_error() {
        let data: Vec<u8> = (0..3 * READ_AHEAD_BLOCK + 12345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for fail in [false, true] {
            let mut r = ReadAhead::spawn(Dribble {
                data: data.clone(),
                pos: 0,
                fail_at_end: fail,
            });
            let mut got = Vec::new();
            let res = r.read_to_end(&mut got);
            assert_eq!(got, data, "fail={fail}");
            assert_eq!(res.is_err(), fail);
            if fail {
                assert_eq!(res.unwrap_err().kind(), io::ErrorKind::InvalidData);
            }
        }
        // Dropped early: the thread stops (nothing to assert but no hang).
        let mut r = ReadAhead::spawn(Dribble {
            data,
            pos: 0,
            fail_at_end: false,
        });
        let mut b = [0u8; 10];
        r.read_exact(&mut b).unwrap();
        drop(r);
    }
    use super::*;
    use std::io::Write;

    /// A little-endian pcap file header; `nanos` picks the nanosecond magic.
    fn pcap_header(nanos: bool) -> Vec<u8> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        let mut v = magic.to_le_bytes().to_vec();
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&4u16.to_le_bytes());
        v.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        v.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        v.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
        v.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        v
    }

    fn pcap_record(v: &mut Vec<u8>, sec: u32, frac: u32, data: &[u8]) {
        v.extend_from_slice(&sec.to_le_bytes());
        v.extend_from_slice(&frac.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
    }

    /// A pcapng file: section header, one Ethernet interface (microsecond
    /// resolution), and one enhanced packet block per `(ts_us, data)`.
    fn pcapng(packets: &[(u64, &[u8])]) -> Vec<u8> {
        fn block(v: &mut Vec<u8>, kind: u32, body: &[u8]) {
            let mut body = body.to_vec();
            while body.len() % 4 != 0 {
                body.push(0);
            }
            let len = 12 + body.len() as u32;
            v.extend_from_slice(&kind.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
            v.extend_from_slice(&body);
            v.extend_from_slice(&len.to_le_bytes());
        }
        let mut v = Vec::new();
        let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        block(&mut v, 0x0a0d_0d0a, &shb);
        let mut idb = 1u16.to_le_bytes().to_vec();
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&0u32.to_le_bytes());
        block(&mut v, 1, &idb);
        for &(ts_us, data) in packets {
            let mut epb = 0u32.to_le_bytes().to_vec();
            epb.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
            epb.extend_from_slice(&(ts_us as u32).to_le_bytes());
            epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
            epb.extend_from_slice(&(data.len() as u32).to_le_bytes());
            epb.extend_from_slice(data);
            block(&mut v, 6, &epb);
        }
        v
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Two packets, the second one earlier than the first.
    fn two_packets(nanos: bool) -> Vec<u8> {
        let mut v = pcap_header(nanos);
        pcap_record(&mut v, 1_700_000_010, 123_456, &[0u8; 60]);
        pcap_record(&mut v, 1_700_000_000, 5, &[1u8; 60]);
        v
    }

    #[test]
    fn first_timestamp_is_the_first_record_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let micro = write(&dir, "micro.pcap", &two_packets(false));
        let nano = write(&dir, "nano.pcap", &two_packets(true));
        assert_eq!(
            first_timestamp(&micro),
            Some(1_700_000_010 * 1_000_000_000 + 123_456_000)
        );
        assert_eq!(
            first_timestamp(&nano),
            Some(1_700_000_010 * 1_000_000_000 + 123_456)
        );
        // The same value read_capture reports for frame 1, and read_capture
        // still reads every packet.
        let mut seen = Vec::new();
        let (info, err) = read_capture(&micro, |p| seen.push((p.frame, p.ts_ns)));
        assert!(err.is_none());
        assert_eq!(info.packets, 2);
        assert_eq!(seen[0], (1, first_timestamp(&micro).unwrap()));
        assert_eq!(seen[1].1, 1_700_000_000 * 1_000_000_000 + 5_000);
    }

    #[test]
    fn the_byte_counter_ends_at_the_file_size_compressed_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let plain = two_packets(false);
        for (name, bytes) in [
            ("p.pcap", plain.clone()),
            ("g.pcap.gz", gzip(&plain)),
            ("z.pcap.zst", zstd::encode_all(&plain[..], 3).unwrap()),
        ] {
            let path = write(&dir, name, &bytes);
            let counter = ByteCounter::default();
            let (info, err) = read_capture_counted(&path, Some(&counter), |_| {});
            assert!(err.is_none() && info.packets == 2, "{name}");
            let n = counter.load(std::sync::atomic::Ordering::Relaxed);
            assert_eq!(n, bytes.len() as u64, "{name}");
        }
    }

    #[test]
    fn first_timestamp_of_compressed_and_pcapng_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = two_packets(false);
        let want = Some(1_700_000_010 * 1_000_000_000 + 123_456_000);
        // Misleading names: detection is by content.
        let gz = write(&dir, "a.zst", &gzip(&plain));
        let zst = write(&dir, "b.gz", &zstd::encode_all(&plain[..], 3).unwrap());
        assert_eq!(first_timestamp(&gz), want);
        assert_eq!(first_timestamp(&zst), want);
        let ng = pcapng(&[(1_700_000_020_000_001, &[2u8; 42]), (5, &[3u8; 42])]);
        let ng_path = write(&dir, "c.pcap", &ng);
        assert_eq!(first_timestamp(&ng_path), Some(1_700_000_020_000_001_000));
        let ng_gz = write(&dir, "d", &gzip(&ng));
        assert_eq!(first_timestamp(&ng_gz), Some(1_700_000_020_000_001_000));
    }

    #[test]
    fn first_timestamp_stops_at_the_first_record() {
        let dir = tempfile::tempdir().unwrap();
        // The second record is cut short: read_capture reports the file as
        // truncated, but the first timestamp is known before that.
        let mut v = two_packets(false);
        v.truncate(v.len() - 10);
        let p = write(&dir, "cut.pcap", &v);
        let (info, err) = read_capture(&p, |_| {});
        assert_eq!(info.packets, 1);
        assert!(err.is_some());
        assert_eq!(
            first_timestamp(&p),
            Some(1_700_000_010 * 1_000_000_000 + 123_456_000)
        );
        // A huge file whose first record is at its start: the call does not
        // need to read it all (checked by its answer, with a garbage tail that
        // read_capture would reject).
        let mut big = pcap_header(false);
        pcap_record(&mut big, 7, 8, &[0u8; 100]);
        big.extend(std::iter::repeat_n(0xffu8, 4 << 20));
        let p = write(&dir, "big.pcap", &big);
        assert!(read_capture(&p, |_| {}).1.is_some());
        assert_eq!(first_timestamp(&p), Some(7_000_008_000));
    }

    #[test]
    fn a_run_of_zero_length_records_ends_the_file_at_its_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = two_packets(false);
        let start = v.len();
        // Short of the limit, zero-length records are packets; the next
        // real one resets the count.
        pcap_record(&mut v, 1, 0, &[]);
        pcap_record(&mut v, 1, 0, &[7u8; 42]);
        let zeros_at = v.len();
        v.extend(std::iter::repeat_n(
            0u8,
            16 * MAX_EMPTY_RECORDS as usize + 4096,
        ));
        for (name, bytes) in [("z.pcap", v.clone()), ("z.pcap.gz", gzip(&v))] {
            let p = write(&dir, name, &bytes);
            let (info, err) = read_capture(&p, |_| {});
            assert_eq!(info.packets, 4 + u64::from(MAX_EMPTY_RECORDS) - 1);
            let msg = err.expect("an error").to_string();
            assert!(
                msg.contains(&format!(
                    "corrupt capture at byte offset {zeros_at} (after frame 4)"
                )),
                "{msg}"
            );
            assert!(msg.contains("10000 zero-length records in a row"), "{msg}");
        }
        assert!(zeros_at > start);
    }

    #[test]
    fn first_timestamp_none_without_packets() {
        let dir = tempfile::tempdir().unwrap();
        let header_only = write(&dir, "h.pcap", &pcap_header(false));
        let ng_empty = write(&dir, "h.pcapng", &pcapng(&[]));
        let empty = write(&dir, "empty.pcap", b"");
        let text = write(&dir, "readme.pcap", b"not a capture at all\n");
        let gz_text = write(&dir, "x.gz", &gzip(b"not a capture either"));
        let mut bad_first = pcap_header(false);
        bad_first.extend_from_slice(&[0u8; 8]);
        bad_first.extend_from_slice(&u32::MAX.to_le_bytes()); // implausible caplen
        bad_first.extend_from_slice(&[0u8; 40]);
        let bad_first = write(&dir, "bad.pcap", &bad_first);
        for p in [&header_only, &ng_empty, &empty, &text, &gz_text, &bad_first] {
            assert_eq!(first_timestamp(p), None, "{}", p.display());
        }
        assert_eq!(first_timestamp(&dir.path().join("missing.pcap")), None);
        assert_eq!(first_timestamp(dir.path()), None);
    }
}
