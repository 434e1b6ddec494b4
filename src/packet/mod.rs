//! Packet decoding: link layer → IP (with fragment reassembly) → UDP, through
//! the tunnels IMS captures carry (GTP-U, GRE, IP-in-IP, VXLAN, ESP with NULL
//! encryption), and HEP (`hep`), found by content on any UDP or TCP port.
//!
//! In: [`RawPacket`]s of one file, in file order. Out: every UDP payload and
//! every HEP payload, as a [`Datagram`] handed to a [`Sink`], which says
//! whether it carried SIP (HEP on TCP: the directions whose data starts with
//! the HEP3 magic are framed by [`hep::Streams`] instead of reaching
//! [`Sink::stream`]); and
//! the accounting of every packet (`sip`, `other` or `undecodable`, exactly
//! one of them per packet) in [`PacketCounts`]. A packet that fails at some
//! layer is counted undecodable with one anomaly row, never an error.
//!
//! Link-type dispatch is pcap-parser's `get_packetdata`; VLAN/QinQ/MPLS/PPPoE
//! tags are stripped here; IP headers are sliced with etherparse
//! (`LaxSlicedPacket`, extension headers included); fragments are reassembled
//! with etherparse's `IpDefragBuf` inside `defrag::Defrag`, which adds the
//! timeout and the caps etherparse leaves to its user.
//!
//! It never looks inside a UDP payload beyond recognising tunnels and HEP;
//! SIP is [`crate::sip`]'s business (the sink's).

mod defrag;
pub mod hep;
mod lane;
pub mod sctp;
pub mod tcp;
mod tunnel;
pub mod ws;

use std::net::{IpAddr, SocketAddr};

use etherparse::{LaxNetSlice, LaxSlicedPacket};
use pcap_parser::Linktype;
use pcap_parser::data::{PacketData, get_packetdata};

use crate::anomaly::PacketAnomaly;
use crate::capture::RawPacket;

pub use defrag::{DefragLimits, FragKey};
pub use lane::{LaneKey, lane_key};
pub use tcp::{Reassembler, Segment, StreamEvent, TcpLimits};
pub use tunnel::{Tunnel, TunnelPath};

/// One direction of a transport conversation (a TCP connection, an SCTP
/// association): source → destination, inside the given tunnels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Tunnels the packets were found in.
    pub tunnels: TunnelPath,
    /// Sender (IP address and port).
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
}

impl FlowKey {
    /// The opposite direction.
    pub fn reverse(self) -> FlowKey {
        FlowKey {
            tunnels: self.tunnels,
            src: self.dst,
            dst: self.src,
        }
    }
}

/// `src>dst`.
impl std::fmt::Display for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}>{}", self.src, self.dst)
    }
}

/// The most TLS connections remembered at once (see `Decoder`).
pub const MAX_TLS_CONNECTIONS: usize = 65_536;

/// Whether a TCP payload is a TLS record that says "this connection is TLS":
/// a ClientHello or ServerHello handshake record on any port, or any TLS
/// record header (content type 20-23, version 3.0-3.4) when a port is 5061.
pub fn looks_like_tls(sport: u16, dport: u16, p: &[u8]) -> bool {
    if p.len() < 6 || p[1] != 3 || p[2] > 4 {
        return false;
    }
    let hello = p[0] == 22 && matches!(p[5], 1 | 2);
    hello || ((sport == 5061 || dport == 5061) && (20..=23).contains(&p[0]))
}

/// How deep tunnels may nest before a packet is given up as undecodable.
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// A UDP payload, found directly or after reassembly / decapsulation; or
/// the payload of a HEP packet (tunnels ending with [`Tunnel::Hep`]), whose
/// addresses, time and transport are those the HEP packet gives.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// Where it was seen: the frame that completed it (the last fragment for
    /// a reassembled one), that frame's capture time (for HEP: the HEP
    /// capture time when the packet has one), the UDP addresses (HEP's),
    /// the tunnels, and the transport name (`udp`, or what a HEP packet
    /// names: `udp`, `tcp`, `sctp`). `truncated`: the payload was cut short
    /// by the capture (snaplen or a length field pointing past the captured
    /// bytes).
    pub at: Origin,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// The frame a packet layer is working on, and its capture time (ns since
/// the epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct At {
    /// 1-based frame number in its file.
    pub frame: u64,
    /// Capture time of the frame.
    pub ts_ns: i64,
}

/// Where a payload carrying one message was seen: the frame that completed
/// it, that frame's time, its addresses, tunnels and transport. `Copy`:
/// the layers above pass it whole instead of copying its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The frame that completed it and its capture time (for HEP, the time
    /// the HEP packet gives).
    pub at: At,
    /// Source address.
    pub src: SocketAddr,
    /// Destination address.
    pub dst: SocketAddr,
    /// The tunnels it was found in, outermost first.
    pub tunnels: TunnelPath,
    /// `udp`, `tcp`, `sctp` or `ws`.
    pub proto: &'static str,
    /// Cut short by the capture (snaplen).
    pub truncated: bool,
}

impl Origin {
    /// A payload that a stream transport delivered on the flow `key`
    /// (never cut short: a stream with a gap has no message there).
    pub fn of_stream(key: FlowKey, proto: &'static str, frame: u64, ts_ns: i64) -> Origin {
        Origin {
            at: At { frame, ts_ns },
            src: key.src,
            dst: key.dst,
            tunnels: key.tunnels,
            proto,
            truncated: false,
        }
    }
}

/// Receives what the decoder finds.
pub trait Sink {
    /// A UDP payload. Returns `true` when it carried (part of) a SIP message,
    /// which makes every packet that carried it a `sip_packet`.
    fn datagram(&mut self, d: &Datagram<'_>) -> bool;
    /// Reassembled TCP stream data (and gaps, resets, accounting events), in
    /// stream order. Every TCP packet is counted `other` by the decoder; the
    /// sink that finds SIP in the stream moves the frames that carried it to
    /// `sip` (see [`PacketCounts::move_to_sip`]).
    fn stream(&mut self, ev: &StreamEvent<'_>) {
        let _ = ev;
    }
    /// Complete SCTP user messages and SCTP anomalies. SCTP packets are
    /// counted `other` by the decoder, like TCP ones.
    fn sctp(&mut self, ev: &sctp::SctpEvent<'_>) {
        let _ = ev;
    }
    /// An anomaly below the SIP layer.
    fn anomaly(&mut self, frame: u64, kind: PacketAnomaly, detail: String);
}

/// The accounting of one file's packets: every packet lands in exactly one
/// of the three buckets once the file is [`Decoder::finish`]ed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketCounts {
    /// Packets that carried (part of) a SIP message.
    pub sip: u64,
    /// Packets decoded fine that carried no SIP.
    pub other: u64,
    /// Packets that failed at some layer (each with an anomaly).
    pub undecodable: u64,
}

impl PacketCounts {
    /// Moves `n` packets counted `other` to `sip`: TCP segments found, once
    /// their stream was framed, to carry (part of) a SIP message.
    pub fn move_to_sip(&mut self, n: u64) {
        let n = n.min(self.other);
        self.other -= n;
        self.sip += n;
    }
}

/// Per-file decoding state: the fragment pool, the TCP reassembler and the
/// counters.
pub struct Decoder {
    defrag: defrag::Defrag,
    tcp: tcp::Reassembler,
    sctp: sctp::Reassembler,
    counts: PacketCounts,
    /// TCP connections found to carry TLS (both directions, canonical key):
    /// reported once, then not reassembled. Cleared when it reaches
    /// [`MAX_TLS_CONNECTIONS`] (a connection may then be reported again).
    tls: rustc_hash::FxHashSet<(TunnelPath, SocketAddr, SocketAddr)>,
    /// Frames that ride along with the packet being decoded: the earlier
    /// fragments of an outer datagram just reassembled. If that datagram
    /// holds an inner fragment (IP fragments inside a tunnel inside IP
    /// fragments), they are held with it in the pool; otherwise they share
    /// the datagram's fate.
    carry: Vec<u64>,
    /// HEP3 framing of the TCP directions that carry HEP.
    hep: hep::Streams,
    /// The last frame decoded (HEP streams still open end there).
    last_frame: u64,
}

/// What became of one packet (or one reassembled datagram).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Sip,
    Other,
    /// Held in the fragment pool; counted when its datagram completes or is
    /// given up.
    Pending,
    Undecodable,
}

/// An IP packet's payload (reassembled when it was fragmented) with what
/// the layers above it read from its IP header.
#[derive(Clone, Copy)]
struct IpPayload<'a> {
    /// The IP protocol number of the payload (IPv6: the last next header).
    proto: u8,
    src: IpAddr,
    dst: IpAddr,
    bytes: &'a [u8],
}

/// Everything the layers below a datagram need to know about the packet.
#[derive(Clone, Copy)]
struct Meta {
    at: At,
    truncated: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DefragLimits::default())
    }
}

impl Decoder {
    /// A decoder with the given fragment-pool limits.
    pub fn new(limits: DefragLimits) -> Self {
        Decoder {
            defrag: defrag::Defrag::new(limits),
            tcp: tcp::Reassembler::default(),
            sctp: sctp::Reassembler::default(),
            tls: rustc_hash::FxHashSet::default(),
            counts: PacketCounts::default(),
            carry: Vec::new(),
            hep: hep::Streams::default(),
            last_frame: 0,
        }
    }

    /// Decodes one packet.
    pub fn decode(&mut self, pkt: &RawPacket<'_>, sink: &mut dyn Sink) {
        self.decode_untimed(pkt, sink);
        self.tick(pkt.frame, pkt.ts_ns, sink);
    }

    /// [`Decoder::decode`] without its [`Decoder::tick`], which the caller
    /// runs next (a lane tells apart what the packet produced and what its
    /// time expired).
    pub fn decode_untimed(&mut self, pkt: &RawPacket<'_>, sink: &mut dyn Sink) {
        let meta = Meta {
            at: At {
                frame: pkt.frame,
                ts_ns: pkt.ts_ns,
            },
            truncated: (pkt.data.len() as u64) < pkt.orig_len as u64,
        };
        debug_assert!(self.carry.is_empty());
        let fate = self.link(pkt, meta, sink);
        self.count(fate, 1);
    }

    /// What follows every packet of the file, whichever decoder took it:
    /// the frame is the file's last so far, and the fragment pool and the
    /// stream reassemblers expire what `ts_ns` makes too old. A decoder that
    /// sees only some of a file's packets (a lane, `lane.rs`) is ticked for
    /// the others, so its timeouts fire exactly where one decoder's would.
    pub fn tick(&mut self, frame: u64, ts_ns: i64, sink: &mut dyn Sink) {
        self.last_frame = frame;
        for expired in self.defrag.expire(ts_ns) {
            self.give_up(expired, "timeout", sink);
        }
        let hep = &mut self.hep;
        self.tcp.expire(ts_ns, &mut |ev| route(hep, ev, sink));
        self.sctp.expire(ts_ns, &mut |ev| sink.sctp(&ev));
    }

    /// Ends the file: fragments still pending are given up. Returns the
    /// accounting.
    pub fn finish(mut self, sink: &mut dyn Sink) -> PacketCounts {
        for pending in self.defrag.drain() {
            self.give_up(pending, "end of capture", sink);
        }
        let tcp = std::mem::take(&mut self.tcp);
        let hep = &mut self.hep;
        tcp.finish(&mut |ev| route(hep, ev, sink));
        self.hep
            .finish(self.last_frame, &mut |he| hep_stream_event(he, sink));
        let sctp = std::mem::take(&mut self.sctp);
        sctp.finish(&mut |ev| sink.sctp(&ev));
        self.counts.move_to_sip(self.hep.sip_frames());
        self.counts
    }

    fn count(&mut self, fate: Fate, n: u64) {
        match fate {
            Fate::Sip => self.counts.sip += n,
            Fate::Other => self.counts.other += n,
            Fate::Undecodable => self.counts.undecodable += n,
            Fate::Pending => {}
        }
    }

    fn give_up(&mut self, g: defrag::GivenUp, why: &str, sink: &mut dyn Sink) {
        let n = g.frames.len();
        for &f in &g.frames {
            sink.anomaly(
                f,
                PacketAnomaly::DefragIncomplete,
                format!(
                    "IP datagram {} never completed ({why}; {} of its fragments seen, {} bytes held)",
                    g.key, n, g.bytes
                ),
            );
        }
        self.counts.undecodable += n as u64;
    }

    fn link(&mut self, pkt: &RawPacket<'_>, meta: Meta, sink: &mut dyn Sink) -> Fate {
        let lt = Linktype(pkt.linktype as i32);
        match get_packetdata(pkt.data, lt, pkt.data.len()) {
            Some(PacketData::L2(eth)) => self.ethernet(eth, meta, TunnelPath::default(), sink),
            Some(PacketData::L3(ethertype, l3)) => {
                self.l3(ethertype, l3, meta, TunnelPath::default(), sink)
            }
            Some(PacketData::L4(47, gre)) => self.gre(gre, meta, TunnelPath::default(), sink),
            Some(PacketData::L4(..)) => Fate::Other,
            Some(PacketData::Unsupported(_)) => {
                sink.anomaly(
                    meta.at.frame,
                    PacketAnomaly::UnsupportedLinktype,
                    format!("link type {} is not decoded", pkt.linktype),
                );
                Fate::Undecodable
            }
            None => {
                sink.anomaly(
                    meta.at.frame,
                    PacketAnomaly::TruncatedPacket,
                    format!(
                        "{} captured bytes are too few for link type {}",
                        pkt.data.len(),
                        pkt.linktype
                    ),
                );
                Fate::Undecodable
            }
        }
    }

    /// Ethernet II, with any stack of 802.1Q / 802.1ad (QinQ) tags.
    fn ethernet(&mut self, b: &[u8], meta: Meta, tun: TunnelPath, sink: &mut dyn Sink) -> Fate {
        if b.len() < 14 {
            return self.short(meta, "Ethernet header", sink);
        }
        let mut ethertype = u16::from_be_bytes([b[12], b[13]]);
        let mut off = 14;
        while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
            if b.len() < off + 4 {
                return self.short(meta, "VLAN tag", sink);
            }
            ethertype = u16::from_be_bytes([b[off + 2], b[off + 3]]);
            off += 4;
        }
        if ethertype < 0x0600 {
            // 802.3 length field: LLC/SNAP (STP, CDP, ...), never SIP.
            return Fate::Other;
        }
        self.l3(ethertype, &b[off..], meta, tun, sink)
    }

    fn l3(
        &mut self,
        ethertype: u16,
        b: &[u8],
        meta: Meta,
        tun: TunnelPath,
        sink: &mut dyn Sink,
    ) -> Fate {
        match ethertype {
            0x0800 | 0x86dd => self.ip(b, meta, tun, sink),
            // BSD NULL written in the other byte order, or an unknown protocol
            // value: look at the IP version nibble.
            0 if matches!(b.first().map(|v| v >> 4), Some(4 | 6)) => self.ip(b, meta, tun, sink),
            0x8847 | 0x8848 => {
                // MPLS: skip labels up to the bottom of the stack.
                let mut off = 0;
                loop {
                    if b.len() < off + 4 {
                        return self.short(meta, "MPLS label", sink);
                    }
                    let bos = b[off + 2] & 1 == 1;
                    off += 4;
                    if bos {
                        break;
                    }
                }
                self.ip(&b[off..], meta, tun, sink)
            }
            0x8864 => {
                // PPPoE session: 6-byte header, then a PPP protocol id.
                if b.len() < 8 {
                    return self.short(meta, "PPPoE header", sink);
                }
                match u16::from_be_bytes([b[6], b[7]]) {
                    0x0021 | 0x0057 => self.ip(&b[8..], meta, tun, sink),
                    _ => Fate::Other,
                }
            }
            _ => Fate::Other,
        }
    }

    fn short(&mut self, meta: Meta, what: &str, sink: &mut dyn Sink) -> Fate {
        sink.anomaly(
            meta.at.frame,
            PacketAnomaly::TruncatedPacket,
            format!("packet ends inside the {what}"),
        );
        Fate::Undecodable
    }

    /// IPv4 or IPv6 (extension headers included); fragments go to the pool.
    fn ip(&mut self, b: &[u8], meta: Meta, tun: TunnelPath, sink: &mut dyn Sink) -> Fate {
        let sliced = match LaxSlicedPacket::from_ip(b) {
            Ok(s) => s,
            Err(e) => {
                sink.anomaly(
                    meta.at.frame,
                    PacketAnomaly::MalformedHeader,
                    format!("IP header: {e}"),
                );
                return Fate::Undecodable;
            }
        };
        let Some(net) = &sliced.net else {
            return self.short(meta, "IP header", sink);
        };
        let Some((src, dst, frag)) = addresses_and_fragment(net) else {
            return Fate::Other;
        };
        let Some(payload) = sliced.ip_payload() else {
            return self.short(meta, "IP header", sink);
        };
        let meta = Meta {
            truncated: meta.truncated || payload.incomplete,
            ..meta
        };
        let proto = payload.ip_number.0;
        if let Some((id, offset, more)) = frag {
            let key = FragKey {
                tunnels: tun,
                src,
                dst,
                id,
                proto,
            };
            return self.fragment(key, (offset, more), payload.payload, meta, sink);
        }
        let ip = IpPayload {
            proto,
            src,
            dst,
            bytes: payload.payload,
        };
        self.ip_payload(ip, meta, tun, sink)
    }

    /// A fragment at `(offset, more fragments)` of the datagram `key`: held
    /// in the pool until its datagram is whole, then decoded.
    fn fragment(
        &mut self,
        key: FragKey,
        (offset, more): (etherparse::IpFragOffset, bool),
        bytes: &[u8],
        meta: Meta,
        sink: &mut dyn Sink,
    ) -> Fate {
        let carried = std::mem::take(&mut self.carry);
        match self.defrag.add(key, offset, more, bytes, &carried, meta.at) {
            defrag::Added::Pending => Fate::Pending,
            defrag::Added::Complete { data, frames } => {
                // The completing frame is counted by the caller; the
                // earlier fragments ride along with the datagram (held
                // with an inner fragment, or counted here with its fate).
                self.carry.extend_from_slice(&frames[..frames.len() - 1]);
                let ip = IpPayload {
                    proto: key.proto,
                    src: key.src,
                    dst: key.dst,
                    bytes: &data,
                };
                let fate = self.ip_payload(ip, meta, key.tunnels, sink);
                let earlier = std::mem::take(&mut self.carry);
                if fate == Fate::Undecodable {
                    for &f in &earlier {
                        sink.anomaly(
                            f,
                            PacketAnomaly::MalformedHeader,
                            "fragment of an undecodable datagram".into(),
                        );
                    }
                }
                self.count(fate, earlier.len() as u64);
                self.defrag.recycle(data, frames);
                fate
            }
            defrag::Added::Error { detail, frames } => {
                for &f in &frames {
                    sink.anomaly(f, PacketAnomaly::DefragError, detail.clone());
                }
                // The current frame is counted by the caller.
                self.counts.undecodable += frames.len() as u64 - 1;
                Fate::Undecodable
            }
            defrag::Added::Evicted(given_up) => {
                for g in given_up {
                    self.give_up(g, "pending-fragment cap reached", sink);
                }
                Fate::Pending
            }
        }
    }

    fn ip_payload(
        &mut self,
        ip: IpPayload<'_>,
        meta: Meta,
        tun: TunnelPath,
        sink: &mut dyn Sink,
    ) -> Fate {
        let IpPayload {
            proto,
            src,
            dst,
            bytes: b,
        } = ip;
        match proto {
            17 => self.udp(src, dst, b, meta, tun, sink),
            6 => self.tcp(src, dst, b, meta, tun, sink),
            132 => {
                let res = self
                    .sctp
                    .packet(tun, src, dst, b, meta.at, &mut |ev| sink.sctp(&ev));
                match res {
                    Ok(()) => Fate::Other,
                    Err(e) => {
                        sink.anomaly(meta.at.frame, PacketAnomaly::MalformedHeader, e.to_string());
                        Fate::Undecodable
                    }
                }
            }
            4 | 41 => match tun.push(Tunnel::IpIp) {
                Some(t) => self.ip(b, meta, t, sink),
                None => self.too_deep(meta, sink),
            },
            47 => self.gre(b, meta, tun, sink),
            50 => match tunnel::esp_null(b) {
                Some((next, inner)) => match tun.push(Tunnel::Esp) {
                    Some(t) => {
                        let ip = IpPayload {
                            proto: next,
                            src,
                            dst,
                            bytes: inner,
                        };
                        self.ip_payload(ip, meta, t, sink)
                    }
                    None => self.too_deep(meta, sink),
                },
                // Encrypted ESP: decoded fine, unreadable, not SIP we can see.
                None => Fate::Other,
            },
            _ => Fate::Other,
        }
    }

    fn too_deep(&mut self, meta: Meta, sink: &mut dyn Sink) -> Fate {
        sink.anomaly(
            meta.at.frame,
            PacketAnomaly::MalformedHeader,
            format!("tunnels nested deeper than {MAX_TUNNEL_DEPTH}"),
        );
        Fate::Undecodable
    }

    fn gre(&mut self, b: &[u8], meta: Meta, tun: TunnelPath, sink: &mut dyn Sink) -> Fate {
        let Some(t) = tun.push(Tunnel::Gre) else {
            return self.too_deep(meta, sink);
        };
        match tunnel::gre(b) {
            Ok(tunnel::Inner::Ip(inner)) => self.ip(inner, meta, t, sink),
            Ok(tunnel::Inner::Ethernet(inner)) => self.ethernet(inner, meta, t, sink),
            Ok(tunnel::Inner::NotIp) => Fate::Other,
            Err(what) => self.short(meta, what, sink),
        }
    }

    /// A TCP segment: its header is read here, its payload goes to the
    /// reassembler, whose stream events go to the sink. Counted `other` here
    /// (the sink moves SIP carriers to `sip`).
    fn tcp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        b: &[u8],
        meta: Meta,
        tun: TunnelPath,
        sink: &mut dyn Sink,
    ) -> Fate {
        if b.len() < 20 {
            return self.short(meta, "TCP header", sink);
        }
        let doff = (b[12] >> 4) as usize * 4;
        if doff < 20 || doff > b.len() {
            sink.anomaly(
                meta.at.frame,
                PacketAnomaly::MalformedHeader,
                format!("TCP data offset {doff} with {} bytes captured", b.len()),
            );
            return Fate::Undecodable;
        }
        let flags = b[13];
        let sport = u16::from_be_bytes([b[0], b[1]]);
        let dport = u16::from_be_bytes([b[2], b[3]]);
        let payload = &b[doff..];
        let (a, z) = (SocketAddr::new(src, sport), SocketAddr::new(dst, dport));
        let conn = if a <= z { (tun, a, z) } else { (tun, z, a) };
        if self.tls.contains(&conn) {
            return Fate::Other;
        }
        if looks_like_tls(sport, dport, payload) {
            if self.tls.len() >= MAX_TLS_CONNECTIONS {
                self.tls.clear();
            }
            self.tls.insert(conn);
            let detail = if sport == 5061 || dport == 5061 {
                format!("SIP over TLS on {a} <-> {z} (port 5061): the signalling cannot be read")
            } else {
                format!("TLS on {a} <-> {z}: encrypted, any SIP in it cannot be read")
            };
            sink.anomaly(meta.at.frame, PacketAnomaly::TlsEncrypted, detail);
            return Fate::Other;
        }
        let seg = Segment {
            key: FlowKey {
                tunnels: tun,
                src: SocketAddr::new(src, u16::from_be_bytes([b[0], b[1]])),
                dst: SocketAddr::new(dst, u16::from_be_bytes([b[2], b[3]])),
            },
            seq: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            ack: (flags & 0x10 != 0).then(|| u32::from_be_bytes([b[8], b[9], b[10], b[11]])),
            syn: flags & 0x02 != 0,
            fin: flags & 0x01 != 0,
            rst: flags & 0x04 != 0,
            payload: &b[doff..],
            frame: meta.at.frame,
            ts_ns: meta.at.ts_ns,
        };
        let hep = &mut self.hep;
        self.tcp.segment(&seg, &mut |ev| route(hep, ev, sink));
        Fate::Other
    }

    fn udp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        b: &[u8],
        meta: Meta,
        tun: TunnelPath,
        sink: &mut dyn Sink,
    ) -> Fate {
        let Some(u) = udp_parts(b) else {
            return self.short(meta, "UDP header", sink);
        };
        let (sport, dport, payload) = (u.sport, u.dport, u.payload);
        let truncated = meta.truncated || u.cut;
        // Tunnels on well-known UDP ports, recognised by their headers.
        if let Some((kind, inner)) = tunnel::over_udp(sport, dport, payload) {
            let Some(t) = tun.push(kind) else {
                return self.too_deep(meta, sink);
            };
            return match kind {
                Tunnel::Vxlan => self.ethernet(inner, meta, t, sink),
                _ => self.ip(inner, meta, t, sink),
            };
        }
        if hep::is_hep(payload) {
            return hep_datagram(payload, Meta { truncated, ..meta }, tun, sink);
        }
        let d = Datagram {
            at: Origin {
                at: meta.at,
                src: SocketAddr::new(src, sport),
                dst: SocketAddr::new(dst, dport),
                tunnels: tun,
                proto: "udp",
                truncated,
            },
            payload,
        };
        if sink.datagram(&d) {
            Fate::Sip
        } else {
            Fate::Other
        }
    }
}

/// A UDP header's ports and the payload it delimits.
struct UdpParts<'a> {
    sport: u16,
    dport: u16,
    payload: &'a [u8],
    /// The length field says more than the packet holds.
    cut: bool,
}

/// Splits a UDP datagram (`None`: shorter than its header). A length field
/// below 8 (e.g. 0 for jumbograms) takes what is there.
fn udp_parts(b: &[u8]) -> Option<UdpParts<'_>> {
    let h = b.get(..8)?;
    let ulen = u16::from_be_bytes([h[4], h[5]]) as usize;
    let (payload, cut) = if ulen >= 8 && ulen <= b.len() {
        (&b[8..ulen], false)
    } else {
        (&b[8..], ulen > b.len())
    };
    Some(UdpParts {
        sport: u16::from_be_bytes([h[0], h[1]]),
        dport: u16::from_be_bytes([h[2], h[3]]),
        payload,
        cut,
    })
}

/// Where a fragment goes in its datagram: (identification, offset, more
/// fragments).
type FragAt = (u32, etherparse::IpFragOffset, bool);

/// The source and destination of an IP header, and for a fragment where
/// it goes; `None` for ARP.
fn addresses_and_fragment(net: &LaxNetSlice<'_>) -> Option<(IpAddr, IpAddr, Option<FragAt>)> {
    match net {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            let frag = v4.is_payload_fragmented().then(|| {
                (
                    h.identification() as u32,
                    h.fragments_offset(),
                    h.more_fragments(),
                )
            });
            Some((
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                frag,
            ))
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            let exts = v6.extensions();
            let frag = exts
                .first_header()
                .and_then(|first| ipv6_fragment(first.0, exts.slice()));
            Some((
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                frag,
            ))
        }
        LaxNetSlice::Arp(_) => None,
    }
}

/// The fragment header among the IPv6 extension headers `exts` (the
/// first of type `first`), when it fragments the payload: (identification,
/// offset in 8-byte units, more fragments).
///
/// A bounded walk of our own: etherparse 0.21's extension iterator reads
/// past the slice when a lax parse stopped inside the extension headers
/// (found by the `decode` fuzz target; tests/fuzz_regressions.rs).
fn ipv6_fragment(first: u8, exts: &[u8]) -> Option<(u32, etherparse::IpFragOffset, bool)> {
    let (mut next, mut rest) = (first, exts);
    loop {
        let len = match next {
            44 => {
                let f = rest.get(..8)?;
                let off = u16::from_be_bytes([f[2], f[3]]);
                let (offset, more) = (off >> 3, off & 1 == 1);
                let id = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
                let offset13 = etherparse::IpFragOffset::try_new(offset).ok()?;
                return (offset != 0 || more).then_some((id, offset13, more));
            }
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => (*rest.get(1)? as usize + 1) * 8,
            // Authentication header: length in 4-byte units, minus 2.
            51 => (*rest.get(1)? as usize + 2) * 4,
            _ => return None,
        };
        next = *rest.first()?;
        rest = rest.get(len..)?;
    }
}

/// A reassembler event: the bytes, gaps and ends of HEP directions go to
/// the HEP framer (their SIP to [`Sink::datagram`]), everything else to
/// [`Sink::stream`].
fn route(hep: &mut hep::Streams, ev: StreamEvent<'_>, sink: &mut dyn Sink) {
    let out = &mut |he: hep::StreamEvent<'_, '_>| hep_stream_event(he, sink);
    match ev {
        StreamEvent::Data {
            key,
            bytes,
            frame,
            ts_ns,
            carrier,
        } if hep.claims(key, Some(bytes)) => hep.data(key, bytes, (frame, ts_ns, carrier), out),
        StreamEvent::Gap { key, frame, .. } if hep.claims(key, None) => hep.gap(key, frame, out),
        StreamEvent::Reset { key, frame } if hep.claims(key, None) => hep.end(key, frame, out),
        _ => sink.stream(&ev),
    }
}

/// What the HEP framer of a TCP direction found; `true` when it was SIP.
fn hep_stream_event(he: hep::StreamEvent<'_, '_>, sink: &mut dyn Sink) -> bool {
    match he {
        hep::StreamEvent::Packet {
            key,
            packet,
            frame,
            ts_ns,
        } => {
            let meta = Meta {
                at: At { frame, ts_ns },
                truncated: false,
            };
            deliver_hep(packet, meta, key.tunnels, sink) == Fate::Sip
        }
        hep::StreamEvent::Anomaly {
            frame,
            kind,
            detail,
        } => {
            sink.anomaly(frame, kind, detail);
            false
        }
    }
}

/// The HEP packets of one UDP payload (usually one; HEP3 packets may follow
/// each other). SIP when any carried SIP, undecodable when none could be read.
fn hep_datagram(payload: &[u8], meta: Meta, tun: TunnelPath, sink: &mut dyn Sink) -> Fate {
    let mut fate = Fate::Undecodable;
    let mut rest = payload;
    while !rest.is_empty() {
        let (kind, detail) = match hep::parse(rest) {
            Ok(p) => {
                let cut = meta.truncated && p.len == rest.len();
                let f = deliver_hep(
                    &p,
                    Meta {
                        truncated: cut,
                        ..meta
                    },
                    tun,
                    sink,
                );
                if f == Fate::Sip || fate == Fate::Undecodable {
                    fate = f;
                }
                rest = &rest[p.len.max(1).min(rest.len())..];
                continue;
            }
            Err(hep::HepError::Incomplete { needed }) => (
                PacketAnomaly::HepTruncated,
                format!(
                    "HEP3 packet of {needed} bytes with {} in the datagram{}",
                    rest.len(),
                    if meta.truncated {
                        " (cut by the capture)"
                    } else {
                        ""
                    }
                ),
            ),
            Err(hep::HepError::Invalid { reason }) => (PacketAnomaly::HepMalformed, reason.into()),
            Err(hep::HepError::NotHep) => (
                PacketAnomaly::HepMalformed,
                format!("{} bytes after the HEP packet are not HEP", rest.len()),
            ),
        };
        sink.anomaly(meta.at.frame, kind, detail);
        break;
    }
    fate
}

/// Hands the payload of one HEP packet to the sink as a [`Datagram`] with
/// the packet's addresses, transport and capture time. The packet's
/// problems are anomalies; so are, when it carried SIP, missing chunks and
/// a capture time more than 1 s away from the frame's. Packets of another
/// protocol type than SIP (RTCP reports, logs) are `Other`.
fn deliver_hep(p: &hep::Packet<'_>, meta: Meta, tun: TunnelPath, sink: &mut dyn Sink) -> Fate {
    for prob in &p.problems {
        sink.anomaly(meta.at.frame, prob.anomaly(), prob.to_string());
    }
    let Some(payload) = p.payload else {
        if !p.problems.is_empty() {
            return Fate::Undecodable;
        }
        if p.proto_type == Some(1) {
            sink.anomaly(
                meta.at.frame,
                PacketAnomaly::HepMalformed,
                "HEP packet of protocol type SIP without a payload chunk".into(),
            );
            return Fate::Undecodable;
        }
        return Fate::Other;
    };
    if p.proto_type.is_some_and(|t| t != 1) {
        return Fate::Other;
    }
    let Some(tunnels) = tun.push(Tunnel::Hep) else {
        sink.anomaly(
            meta.at.frame,
            PacketAnomaly::MalformedHeader,
            format!("tunnels nested deeper than {MAX_TUNNEL_DEPTH}"),
        );
        return Fate::Undecodable;
    };
    let unspecified = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);
    let d = Datagram {
        at: Origin {
            at: At {
                frame: meta.at.frame,
                ts_ns: p.ts_ns().unwrap_or(meta.at.ts_ns),
            },
            src: p.src().unwrap_or(unspecified),
            dst: p.dst().unwrap_or(unspecified),
            tunnels,
            proto: p.transport().unwrap_or("udp"),
            truncated: meta.truncated,
        },
        payload,
    };
    if !sink.datagram(&d) {
        return Fate::Other;
    }
    hep_notes(p, meta, sink);
    Fate::Sip
}

/// The anomalies of a HEP packet that carried SIP: missing chunks (and
/// what was used instead), and a capture time more than 1 s away from the
/// frame's.
fn hep_notes(p: &hep::Packet<'_>, meta: Meta, sink: &mut dyn Sink) {
    let missing: Vec<&str> = [
        (p.src_ip.is_none(), "source address"),
        (p.dst_ip.is_none(), "destination address"),
        (p.src_port.is_none(), "source port"),
        (p.dst_port.is_none(), "destination port"),
        (p.ts_sec.is_none(), "capture time"),
        (p.transport().is_none(), "UDP/TCP/SCTP protocol"),
    ]
    .into_iter()
    .filter_map(|(m, what)| m.then_some(what))
    .collect();
    if !missing.is_empty() {
        sink.anomaly(
            meta.at.frame,
            PacketAnomaly::HepMalformed,
            format!(
                "HEP packet without {}: 0.0.0.0:0, the frame time or udp used instead",
                missing.join(", ")
            ),
        );
    }
    if let Some(t) = p.ts_ns() {
        let skew = t - meta.at.ts_ns;
        if skew.abs() > 1_000_000_000 {
            sink.anomaly(
                meta.at.frame,
                PacketAnomaly::HepTimeSkew,
                format!(
                    "HEP capture time {} is {:.1} s {} the frame time {}; the HEP time is used",
                    crate::capture::format_rfc3339_micros(t),
                    skew.unsigned_abs() as f64 / 1e9,
                    if skew < 0 { "before" } else { "after" },
                    crate::capture::format_rfc3339_micros(meta.at.ts_ns),
                ),
            );
        }
    }
}

/// Test and tool helper: every UDP payload of a capture that starts like a
/// SIP message, with its frame number. Errors only when the file cannot be
/// read at all; a file cut short yields what was read.
pub fn collect_sip_payloads(path: &std::path::Path) -> Result<Vec<(u64, Vec<u8>)>, crate::Error> {
    struct Collect(Vec<(u64, Vec<u8>)>);
    impl Sink for Collect {
        fn datagram(&mut self, d: &Datagram<'_>) -> bool {
            let sip = crate::sip::is_sip_start(d.payload);
            if sip {
                self.0.push((d.at.at.frame, d.payload.to_vec()));
            }
            sip
        }
        fn anomaly(&mut self, _: u64, _: PacketAnomaly, _: String) {}
    }
    let mut dec = Decoder::default();
    let mut sink = Collect(Vec::new());
    let (info, err) = crate::capture::read_capture(path, |p| dec.decode(p, &mut sink));
    dec.finish(&mut sink);
    match err {
        Some(e) if info.format.is_none() => Err(e),
        _ => Ok(sink.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_is_recognised_by_hello_or_port_5061() {
        // TLS 1.2 record header + ClientHello (handshake type 1).
        let hello = [22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
        assert!(looks_like_tls(50000, 443, &hello));
        // Application data only counts on 5061.
        let appdata = [23, 3, 3, 0, 40, 0xaa, 0xbb];
        assert!(looks_like_tls(5061, 40000, &appdata));
        assert!(!looks_like_tls(8443, 40000, &appdata));
        // SIP on 5061 is not TLS.
        assert!(!looks_like_tls(5061, 5061, b"OPTIONS sip:a SIP/2.0\r\n"));
    }
}
