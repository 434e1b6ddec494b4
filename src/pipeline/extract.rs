//! Per-session pcaps (`sipaudit extract`, `analyze --pcap-dir`): for each
//! selected session, every frame that carried any of its SIP messages, from
//! every input, in capture-time order, with the original bytes and
//! timestamps. Owns the frame selection and the pcap/pcapng writing; the
//! messages come from the run's messages.csv.
//!
//! Which frames carried a message: the frame that completed it (messages.csv
//! `file`, `frame`); for an IP datagram in fragments, every fragment of it
//! (same addresses, protocol and IP id, up to 30 s before); over TCP, every
//! segment with payload of that direction of the connection after the frame
//! that completed the previous message in that direction, up to this one.
//! Link layers read: Ethernet (VLAN, QinQ), Linux SLL and SLL2, raw IP, BSD
//! NULL/LOOP; frames of other link layers contribute only the completing
//! frame. With `--media`, also the session's RTP and RTCP (which packets:
//! media.rs).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use etherparse::{LaxNetSlice, LaxSlicedPacket};

use crate::capture::read_capture;
use crate::error::{Error, ErrorKind};

/// A message of messages.csv as the selection needs it.
#[derive(Clone, Debug)]
pub struct MsgRef {
    /// Input index.
    pub file: u32,
    /// Completing frame.
    pub frame: u64,
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// TCP segments of this direction after this frame and up to `frame`
    /// may carry the message (the frame of the previous message in that
    /// direction); `None` when not over TCP.
    pub tcp_after: Option<u64>,
    /// Its session, when any.
    pub session: Option<u64>,
}

/// One direction of a connection in one input file.
type Direction = (u32, SocketAddr, SocketAddr);

/// What identifies the fragments of one IP datagram.
type FragKey = (IpAddr, IpAddr, u32);

/// What one packet is, as far as the selection cares.
struct L3 {
    src: IpAddr,
    dst: IpAddr,
    frag: Option<u32>,
    /// TCP ports when it is an unfragmented TCP segment with payload.
    tcp: Option<(u16, u16)>,
    /// UDP ports when it is an unfragmented UDP datagram.
    udp: Option<(u16, u16)>,
}

/// The IP packet inside a link-layer frame.
fn ip_of(linktype: u32, d: &[u8]) -> Option<&[u8]> {
    match linktype {
        1 => {
            let mut off = 12;
            let mut et = u16::from_be_bytes([*d.get(off)?, *d.get(off + 1)?]);
            while matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                off += 4;
                et = u16::from_be_bytes([*d.get(off)?, *d.get(off + 1)?]);
            }
            matches!(et, 0x0800 | 0x86dd).then(|| d.get(off + 2..))?
        }
        113 => d.get(16..),
        276 => d.get(20..),
        101 | 12 | 14 | 228 | 229 => Some(d),
        0 | 108 => d.get(4..),
        _ => None,
    }
}

fn l3(linktype: u32, d: &[u8]) -> Option<L3> {
    let s = LaxSlicedPacket::from_ip(ip_of(linktype, d)?).ok()?;
    let (src, dst, frag) = match s.net.as_ref()? {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let frag = v4
                .is_payload_fragmented()
                .then_some(u32::from(h.identification()));
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                frag,
            )
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let mut frag = None;
            for ext in v6.extensions().clone().into_iter() {
                if let etherparse::Ipv6ExtensionSlice::Fragment(f) = ext {
                    if f.is_fragmenting_payload() {
                        frag = Some(f.identification());
                    }
                    break;
                }
            }
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                frag,
            )
        }
        LaxNetSlice::Arp(_) => return None,
    };
    let p = s.ip_payload()?;
    let b = p.payload;
    let tcp = (frag.is_none() && p.ip_number.0 == 6 && b.len() >= 20)
        .then(|| {
            let off = usize::from(b[12] >> 4) * 4;
            (b.len() > off).then(|| {
                (
                    u16::from_be_bytes([b[0], b[1]]),
                    u16::from_be_bytes([b[2], b[3]]),
                )
            })
        })
        .flatten();
    let udp = (frag.is_none() && p.ip_number.0 == 17 && b.len() >= 8).then(|| {
        (
            u16::from_be_bytes([b[0], b[1]]),
            u16::from_be_bytes([b[2], b[3]]),
        )
    });
    Some(L3 {
        src,
        dst,
        frag,
        tcp,
        udp,
    })
}

/// The frames of each selected session: (file, frame) → sessions.
pub fn select_frames(
    inputs: &[PathBuf],
    msgs: &[MsgRef],
    wanted: &BTreeSet<u64>,
) -> HashMap<(u32, u64), Vec<u64>> {
    let mut out: HashMap<(u32, u64), Vec<u64>> = HashMap::new();
    let mut add = |k: (u32, u64), sid: u64| {
        let v = out.entry(k).or_default();
        if !v.contains(&sid) {
            v.push(sid);
        }
    };
    // Direction → (after this frame, up to this frame, session).
    let mut tcp_ranges: HashMap<Direction, Vec<(u64, u64, u64)>> = HashMap::new();
    let mut direct: HashMap<(u32, u64), Vec<u64>> = HashMap::new();
    for m in msgs {
        let dir = (m.file, m.src, m.dst);
        let Some(sid) = m.session.filter(|s| wanted.contains(s)) else {
            continue;
        };
        add((m.file, m.frame), sid);
        direct.entry((m.file, m.frame)).or_default().push(sid);
        if let Some(lo) = m.tcp_after {
            tcp_ranges.entry(dir).or_default().push((lo, m.frame, sid));
        }
    }
    // Only the files that hold a message of a wanted session are read (none
    // when no session is wanted).
    let holding: BTreeSet<u32> = direct.keys().map(|k| k.0).collect();
    for (fi, path) in inputs.iter().enumerate() {
        let fi = fi as u32;
        if !holding.contains(&fi) {
            continue;
        }
        // Fragments seen so far: key → (frames, last time).
        let mut frags: HashMap<FragKey, Vec<(u64, i64)>> = HashMap::new();
        let _ = read_capture(path, |p| {
            let Some(l) = l3(p.linktype, p.data) else {
                return;
            };
            if let Some(id) = l.frag {
                let v = frags.entry((l.src, l.dst, id)).or_default();
                v.retain(|&(_, t)| p.ts_ns - t <= 30_000_000_000);
                v.push((p.frame, p.ts_ns));
                if let Some(sids) = direct.get(&(fi, p.frame)) {
                    for &(f, _) in v.iter() {
                        for &s in sids {
                            add((fi, f), s);
                        }
                    }
                }
            }
            if let Some((sp, dp)) = l.tcp {
                let dir = (fi, SocketAddr::new(l.src, sp), SocketAddr::new(l.dst, dp));
                if let Some(rs) = tcp_ranges.get(&dir) {
                    for &(lo, hi, sid) in rs {
                        if lo < p.frame && p.frame <= hi {
                            add((fi, p.frame), sid);
                        }
                    }
                }
            }
        });
    }
    out
}

/// One frame kept for a session's pcap.
struct Kept {
    ts_ns: i64,
    file: u32,
    frame: u64,
    linktype: u32,
    orig_len: u32,
    data: Vec<u8>,
}

impl Kept {
    /// A copy of packet `p` of input `file`.
    fn of(file: u32, p: &crate::capture::RawPacket<'_>) -> Kept {
        Kept {
            ts_ns: p.ts_ns,
            file,
            frame: p.frame,
            linktype: p.linktype,
            orig_len: p.orig_len,
            data: p.data.to_vec(),
        }
    }
}

/// Writes `DIR/<session>.pcap` for every session of `frames` (with
/// `media`, plus its RTP and RTCP: media.rs): returns the sessions written.
pub fn write_pcaps(
    inputs: &[PathBuf],
    frames: &HashMap<(u32, u64), Vec<u64>>,
    dir: &Path,
    media: bool,
) -> Result<Vec<u64>, Error> {
    let mut per: BTreeMap<u64, Vec<Kept>> = BTreeMap::new();
    let holding: BTreeSet<u32> = frames.keys().map(|k| k.0).collect();
    for (fi, path) in inputs.iter().enumerate() {
        let fi = fi as u32;
        if !holding.contains(&fi) {
            continue;
        }
        let _ = read_capture(path, |p| {
            if let Some(sids) = frames.get(&(fi, p.frame)) {
                for &s in sids {
                    per.entry(s).or_default().push(Kept::of(fi, p));
                }
            }
        });
    }
    if media {
        add_media(inputs, frames, &mut per);
    }
    std::fs::create_dir_all(dir).map_err(|e| out_err(dir, e))?;
    let mut written = Vec::new();
    for (sid, mut v) in per {
        v.sort_by_key(|k| (k.ts_ns, k.file, k.frame));
        let path = dir.join(format!("{sid}.pcap"));
        let bytes = encode(&v);
        let mut f = std::fs::File::create(&path).map_err(|e| out_err(&path, e))?;
        f.write_all(&bytes).map_err(|e| out_err(&path, e))?;
        written.push(sid);
    }
    Ok(written)
}

/// The media of each session of `per` (its SIP frames), from the SDP
/// those frames carry.
fn session_media(per: &BTreeMap<u64, Vec<Kept>>) -> BTreeMap<u64, super::media::Media> {
    let mut out = BTreeMap::new();
    for (&sid, kept) in per {
        let mut m = super::media::Media {
            from: kept.iter().map(|k| k.ts_ns).min().unwrap_or(0),
            to: kept.iter().map(|k| k.ts_ns).max().unwrap_or(0) + super::media::MEDIA_TAIL_NS,
            ..Default::default()
        };
        let files: BTreeSet<u32> = kept.iter().map(|k| k.file).collect();
        for f in files {
            let mut of_file: Vec<&Kept> = kept.iter().filter(|k| k.file == f).collect();
            of_file.sort_by_key(|k| k.frame);
            m.endpoints
                .extend(super::media::endpoints_of_frames(of_file.iter().map(|k| {
                    crate::capture::RawPacket {
                        frame: k.frame,
                        ts_ns: k.ts_ns,
                        linktype: k.linktype,
                        orig_len: k.orig_len,
                        data: &k.data,
                    }
                })));
        }
        if !m.endpoints.is_empty() {
            out.insert(sid, m);
        }
    }
    out
}

/// Adds to each session of `per` the UDP packets of every input that are
/// its media (media.rs), besides the frames already kept.
fn add_media(
    inputs: &[PathBuf],
    frames: &HashMap<(u32, u64), Vec<u64>>,
    per: &mut BTreeMap<u64, Vec<Kept>>,
) {
    let media = session_media(per);
    // Endpoint → the sessions that name it.
    let mut by_end: HashMap<SocketAddr, Vec<u64>> = HashMap::new();
    for (&sid, m) in &media {
        for e in &m.endpoints {
            by_end.entry(*e).or_default().push(sid);
        }
    }
    if by_end.is_empty() {
        return;
    }
    for (fi, path) in inputs.iter().enumerate() {
        let fi = fi as u32;
        let _ = read_capture(path, |p| {
            let Some(l) = l3(p.linktype, p.data) else {
                return;
            };
            let Some((sp, dp)) = l.udp else {
                return;
            };
            let (src, dst) = (SocketAddr::new(l.src, sp), SocketAddr::new(l.dst, dp));
            let Some(sids) = by_end.get(&src) else {
                return;
            };
            let sip = frames.get(&(fi, p.frame));
            for sid in sids {
                if media[sid].takes(p.ts_ns, &src, &dst) && !sip.is_some_and(|v| v.contains(sid)) {
                    per.entry(*sid).or_default().push(Kept::of(fi, p));
                }
            }
        });
    }
}

fn out_err(path: &Path, source: std::io::Error) -> Error {
    ErrorKind::Output {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// A nanosecond pcap when every frame has one link type, else pcapng with
/// one interface per link type (nanosecond resolution).
fn encode(frames: &[Kept]) -> Vec<u8> {
    let types: BTreeSet<u32> = frames.iter().map(|k| k.linktype).collect();
    let mut b = Vec::new();
    if types.len() <= 1 {
        let lt = types.first().copied().unwrap_or(1);
        b.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&262_144u32.to_le_bytes());
        b.extend_from_slice(&lt.to_le_bytes());
        for k in frames {
            let (s, ns) = (
                k.ts_ns.div_euclid(1_000_000_000),
                k.ts_ns.rem_euclid(1_000_000_000),
            );
            b.extend_from_slice(&(s as u32).to_le_bytes());
            b.extend_from_slice(&(ns as u32).to_le_bytes());
            b.extend_from_slice(&(k.data.len() as u32).to_le_bytes());
            b.extend_from_slice(&k.orig_len.max(k.data.len() as u32).to_le_bytes());
            b.extend_from_slice(&k.data);
        }
        return b;
    }
    let block = |b: &mut Vec<u8>, ty: u32, body: &[u8]| {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&[0; 3][..pad]);
        b.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut b, 0x0a0d_0d0a, &shb);
    let ifaces: Vec<u32> = types.into_iter().collect();
    for &lt in &ifaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&(lt as u16).to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&262_144u32.to_le_bytes());
        // if_tsresol = 9 (nanoseconds), then opt_endofopt.
        idb.extend_from_slice(&9u16.to_le_bytes());
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&[9, 0, 0, 0]);
        idb.extend_from_slice(&[0; 4]);
        block(&mut b, 1, &idb);
    }
    for k in frames {
        let iface = ifaces.iter().position(|&t| t == k.linktype).unwrap_or(0) as u32;
        let ts = k.ts_ns as u64;
        let mut epb = Vec::new();
        epb.extend_from_slice(&iface.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(k.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&k.orig_len.max(k.data.len() as u32).to_le_bytes());
        epb.extend_from_slice(&k.data);
        epb.extend_from_slice(&[0; 3][..(4 - k.data.len() % 4) % 4]);
        block(&mut b, 6, &epb);
    }
    b
}

/// The messages of a messages.csv, with file names mapped to input
/// indexes by `files` (inputs.csv order).
pub fn read_messages(path: &Path, files: &[String]) -> Result<Vec<MsgRef>, Error> {
    let err = |d: String| -> Error {
        ErrorKind::Report {
            path: path.to_path_buf(),
            detail: d,
        }
        .into()
    };
    let mut r = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let h = r.headers().map_err(|e| err(e.to_string()))?.clone();
    let col = |n: &str| h.iter().position(|c| c == n);
    let (Some(cf), Some(cfr), Some(cs), Some(cd), Some(ct), Some(cse)) = (
        col("file"),
        col("frame"),
        col("src"),
        col("dst"),
        col("transport"),
        col("session"),
    ) else {
        return Err(err("not a messages.csv".into()));
    };
    let mut out = Vec::new();
    let mut prev: HashMap<Direction, u64> = HashMap::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        let g = |i: usize| rec.get(i).unwrap_or("");
        let Some(file) = files.iter().position(|f| f == g(cf)) else {
            continue;
        };
        let (Ok(src), Ok(dst)) = (g(cs).parse(), g(cd).parse()) else {
            continue;
        };
        let frame = g(cfr).parse().unwrap_or(0);
        let tcp_after = g(ct)
            .ends_with("tcp")
            .then(|| prev.insert((file as u32, src, dst), frame).unwrap_or(0));
        out.push(MsgRef {
            file: file as u32,
            frame,
            src,
            dst,
            tcp_after,
            session: g(cse).parse().ok(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_and_pcapng_headers() {
        let k = |lt| Kept {
            ts_ns: 1_700_000_000_123_456_789,
            file: 0,
            frame: 1,
            linktype: lt,
            orig_len: 3,
            data: vec![1, 2, 3],
        };
        let b = encode(&[k(1), k(1)]);
        assert_eq!(&b[..4], &0xa1b2_3c4du32.to_le_bytes());
        assert_eq!(b.len(), 24 + 2 * (16 + 3));
        let b = encode(&[k(1), k(101)]);
        assert_eq!(&b[..4], &0x0a0d_0d0au32.to_le_bytes());
        assert_eq!(b.len() % 4, 0);
    }
}

/// Which sessions `sipaudit extract` writes.
#[derive(Clone, Debug)]
pub enum Selection {
    /// These session ids.
    Sessions(Vec<u64>),
    /// Every session with at least this attention.
    AttentionMin(u32),
    /// Every session with one of these verdicts.
    Verdicts(Vec<String>),
}

/// The sessions of sessions.csv in `dir` that `sel` picks.
pub fn selected_sessions(dir: &Path, sel: &Selection) -> Result<BTreeSet<u64>, Error> {
    let path = dir.join("sessions.csv");
    let rows = crate::report::flow::read_report(&path)?;
    let get = |r: &HashMap<String, String>, k: &str| r.get(k).cloned().unwrap_or_default();
    let ranked: Vec<(u32, u64, String)> = rows
        .iter()
        .map(|r| {
            (
                get(r, "attention").parse().unwrap_or(0),
                get(r, "session").parse().unwrap_or(0),
                get(r, "verdict"),
            )
        })
        .collect();
    Ok(match sel {
        Selection::Sessions(ids) => ranked
            .iter()
            .map(|x| x.1)
            .filter(|id| ids.contains(id))
            .collect(),
        Selection::AttentionMin(n) => ranked.iter().filter(|x| x.0 >= *n).map(|x| x.1).collect(),
        Selection::Verdicts(v) => ranked
            .iter()
            .filter(|x| v.contains(&x.2))
            .map(|x| x.1)
            .collect(),
    })
}

/// Writes the pcaps of the sessions `sel` picks among the reports in
/// `reports` (messages.csv, sessions.csv, inputs.csv of a run over
/// `inputs`) into `pcap_dir`. Returns the sessions written.
pub fn pcaps_from_reports(
    inputs: &[PathBuf],
    reports: &Path,
    sel: &Selection,
    pcap_dir: &Path,
    media: bool,
) -> Result<Vec<u64>, Error> {
    let wanted = selected_sessions(reports, sel)?;
    let files: Vec<String> = crate::report::flow::read_report(&reports.join("inputs.csv"))?
        .iter()
        .map(|r| r.get("file").cloned().unwrap_or_default())
        .collect();
    let paths: Vec<PathBuf> = super::inputs_to_analyse(inputs)?
        .into_iter()
        .map(|i| i.path)
        .collect();
    let msgs = read_messages(&reports.join("messages.csv"), &files)?;
    let frames = select_frames(&paths, &msgs, &wanted);
    write_pcaps(&paths, &frames, pcap_dir, media)
}

/// `analyze --pcap-dir`: the pcaps of report.html's table sessions, from
/// the messages the run kept for their ladders (no messages.csv needed).
pub(crate) fn table_pcaps(
    paths: &[PathBuf],
    sessions: &[crate::report::html::HtmlSession],
    pcap_dir: &Path,
) -> Result<Vec<u64>, Error> {
    let mut msgs = Vec::new();
    for s in sessions {
        for m in &s.msgs {
            let (Ok(src), Ok(dst)) = (m.src.parse(), m.dst.parse()) else {
                continue;
            };
            msgs.push(MsgRef {
                file: m.file,
                frame: m.frame,
                src,
                dst,
                // The transport is not kept: a UDP message's direction
                // carries no TCP segment.
                tcp_after: Some(m.prev_frame),
                session: Some(s.row.session),
            });
        }
    }
    let wanted = sessions.iter().map(|s| s.row.session).collect();
    let frames = select_frames(paths, &msgs, &wanted);
    write_pcaps(paths, &frames, pcap_dir, false)
}

/// `sipaudit extract`: analyses `cfg.inputs` (reports in a scratch
/// directory under `out`, removed afterwards) and writes
/// `out/<session>.pcap` for the sessions `sel` picks (with `media`, each
/// with its RTP and RTCP: media.rs).
pub fn extract(
    cfg: &super::Config,
    sel: &Selection,
    out: &Path,
    media: bool,
) -> Result<(super::RunSummary, Vec<u64>), Error> {
    let scratch = out.join(".sipaudit-extract");
    let run_cfg = super::Config {
        out_dir: scratch.clone(),
        messages: true,
        html: None,
        pcap_dir: None,
        ..cfg.clone()
    };
    let summary = super::run(&run_cfg)?;
    let written = pcaps_from_reports(&cfg.inputs, &scratch, sel, out, media);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok((summary, written?))
}
