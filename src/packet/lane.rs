//! Which packets of one file must meet in the same [`super::Decoder`]: the
//! key that lets one large file be decoded by several decoders ("lanes",
//! `pipeline/lanes.rs`) with the result of one.
//!
//! A decoder keeps state between packets for IP fragments, TCP and SCTP
//! connections, the WebSocket and HEP framing of TCP directions, and
//! whatever travels inside a tunnel, keyed by the tunnel kinds and the inner
//! addresses (not the outer ones: the same flow captured inside two tunnels
//! meets in one state). Every packet that may touch such state is
//! [`LaneKey::Shared`]: all of them go to one decoder, which so sees them
//! exactly as it would alone. A plain UDP datagram that is not a fragment
//! and carries no tunnel (SIP, RTP, HEP over UDP) is decoded from its own
//! bytes alone and may go anywhere ([`LaneKey::Any`]); so may every packet
//! that never reaches the IP layer. The walk down to UDP is the decoder's
//! own (`get_packetdata`, the VLAN/MPLS/PPPoE stripping, etherparse's lax IP
//! slice, [`super::udp_parts`], [`super::tunnel::over_udp`]), so the two
//! cannot disagree about what a packet is.
//!
//! It decides placement only; it never decodes, counts or reports.

use etherparse::{LaxNetSlice, LaxSlicedPacket};
use pcap_parser::Linktype;
use pcap_parser::data::{PacketData, get_packetdata};

use super::{ipv6_fragment, tunnel, udp_parts};

/// Where a packet may be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneKey {
    /// Anywhere: the packet's decoding reads no state of other packets.
    Any,
    /// With every other `Shared` packet of the file, in one decoder.
    Shared,
}

/// The lane key of one captured packet (module doc).
pub fn lane_key(linktype: u32, data: &[u8]) -> LaneKey {
    match get_packetdata(data, Linktype(linktype as i32), data.len()) {
        Some(PacketData::L2(eth)) => ethernet(eth),
        Some(PacketData::L3(ethertype, l3)) => l3_key(ethertype, l3),
        Some(PacketData::L4(47, _)) => LaneKey::Shared,
        _ => LaneKey::Any,
    }
}

/// Ethernet II with any stack of VLAN tags (as `Decoder::ethernet`).
fn ethernet(b: &[u8]) -> LaneKey {
    let Some(t) = b.get(12..14) else {
        return LaneKey::Any;
    };
    let mut ethertype = u16::from_be_bytes([t[0], t[1]]);
    let mut off = 14;
    while matches!(ethertype, 0x8100 | 0x88a8 | 0x9100 | 0x9200) {
        let Some(t) = b.get(off + 2..off + 4) else {
            return LaneKey::Any;
        };
        ethertype = u16::from_be_bytes([t[0], t[1]]);
        off += 4;
    }
    if ethertype < 0x0600 {
        return LaneKey::Any;
    }
    l3_key(ethertype, &b[off..])
}

/// The layer-3 dispatch of `Decoder::l3`.
fn l3_key(ethertype: u16, b: &[u8]) -> LaneKey {
    match ethertype {
        0x0800 | 0x86dd => ip(b),
        0 if matches!(b.first().map(|v| v >> 4), Some(4 | 6)) => ip(b),
        0x8847 | 0x8848 => {
            let mut off = 0;
            loop {
                let Some(label) = b.get(off..off + 4) else {
                    return LaneKey::Any;
                };
                off += 4;
                if label[2] & 1 == 1 {
                    break;
                }
            }
            ip(&b[off..])
        }
        0x8864 => match b.get(6..8).map(|p| u16::from_be_bytes([p[0], p[1]])) {
            Some(0x0021 | 0x0057) => ip(&b[8..]),
            _ => LaneKey::Any,
        },
        _ => LaneKey::Any,
    }
}

/// An IP packet: `Any` only for an unfragmented UDP datagram without a
/// tunnel inside.
fn ip(b: &[u8]) -> LaneKey {
    let Ok(sliced) = LaxSlicedPacket::from_ip(b) else {
        return LaneKey::Any;
    };
    let fragmented = match &sliced.net {
        Some(LaxNetSlice::Ipv4(v4)) => v4.is_payload_fragmented(),
        Some(LaxNetSlice::Ipv6(v6)) => {
            let exts = v6.extensions();
            exts.first_header()
                .and_then(|first| ipv6_fragment(first.0, exts.slice()))
                .is_some()
        }
        _ => return LaneKey::Any,
    };
    let Some(payload) = sliced.ip_payload() else {
        return LaneKey::Any;
    };
    if fragmented {
        return LaneKey::Shared;
    }
    if payload.ip_number.0 != 17 {
        // TCP, SCTP, tunnels by protocol number, and what the decoder
        // counts as other: only the stateful ones need sharing, but one
        // rule for all keeps the walk short.
        return LaneKey::Shared;
    }
    match udp_parts(payload.payload) {
        Some(u) if tunnel::over_udp(u.sport, u.dport, u.payload).is_some() => LaneKey::Shared,
        _ => LaneKey::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet frame with an IPv4 header (protocol `proto`, the given
    /// fragment field) and `l4` after it.
    fn eth_ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        p.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 1]);
        p.extend_from_slice(&frag.to_be_bytes());
        p.extend_from_slice(&[64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(l4);
        p
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let len = (8 + payload.len()) as u16;
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&len.to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    #[test]
    fn plain_udp_goes_anywhere_and_stateful_packets_are_shared() {
        let sip = udp(5060, 5060, b"OPTIONS sip:a SIP/2.0\r\n\r\n");
        assert_eq!(lane_key(1, &eth_ipv4(A, B, 17, 0, &sip)), LaneKey::Any);
        let tcp = [0u8; 20];
        assert_eq!(lane_key(1, &eth_ipv4(A, B, 6, 0, &tcp)), LaneKey::Shared);
        // UDP fragments (more fragments set; a later one without a UDP
        // header) are reassembled in the shared decoder.
        assert_eq!(
            lane_key(1, &eth_ipv4(A, B, 17, 0x2000, &sip)),
            LaneKey::Shared
        );
        assert_eq!(
            lane_key(1, &eth_ipv4(B, A, 17, 0x0001, &[0; 8])),
            LaneKey::Shared
        );
        // SCTP and GRE keep state too.
        assert_eq!(
            lane_key(1, &eth_ipv4(A, B, 132, 0, &[0; 12])),
            LaneKey::Shared
        );
        assert_eq!(
            lane_key(1, &eth_ipv4(A, B, 47, 0, &[0; 4])),
            LaneKey::Shared
        );
        // A UDP header cut short is the decoder's anomaly, stateless.
        assert_eq!(lane_key(1, &eth_ipv4(A, B, 17, 0, &[0; 4])), LaneKey::Any);
    }

    #[test]
    fn udp_tunnels_are_kept_together() {
        // VXLAN on 4789 with its flags byte: the decoder looks inside.
        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        vx.extend_from_slice(&[0u8; 14]);
        let pkt = eth_ipv4(A, B, 17, 0, &udp(40000, 4789, &vx));
        assert_eq!(lane_key(1, &pkt), LaneKey::Shared);
    }

    #[test]
    fn what_never_reaches_ip_goes_anywhere() {
        assert_eq!(lane_key(1, &[0u8; 5]), LaneKey::Any);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        assert_eq!(lane_key(1, &arp), LaneKey::Any);
        assert_eq!(lane_key(9999, &[0u8; 40]), LaneKey::Any);
    }
}
