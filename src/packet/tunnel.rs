//! Tunnels that carry IMS signalling: GTP-U (S1-U/N3), GRE (incl. PPP over
//! GRE), IP-in-IP, VXLAN, and ESP with NULL encryption (integrity-only IPsec
//! on Gm). Pure functions over `&[u8]`.

use std::fmt;

/// One tunnel layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tunnel {
    /// GTP-U G-PDU (UDP 2152).
    Gtp,
    /// GRE (IP protocol 47).
    Gre,
    /// IPv4/IPv6 in IP (protocols 4 and 41).
    IpIp,
    /// VXLAN (UDP 4789).
    Vxlan,
    /// ESP with NULL encryption (protocol 50).
    Esp,
    /// HEP (Homer Encapsulation Protocol) v1-v3, found by content.
    Hep,
}

impl Tunnel {
    /// The name used in the `transport` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Tunnel::Gtp => "gtp",
            Tunnel::Gre => "gre",
            Tunnel::IpIp => "ipip",
            Tunnel::Vxlan => "vxlan",
            Tunnel::Esp => "esp",
            Tunnel::Hep => "hep",
        }
    }
}

/// The tunnels around a packet, outermost first (at most
/// [`super::MAX_TUNNEL_DEPTH`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TunnelPath {
    layers: [Option<Tunnel>; super::MAX_TUNNEL_DEPTH],
}

impl TunnelPath {
    /// This path with one more (inner) layer, `None` when too deep.
    pub fn push(self, t: Tunnel) -> Option<TunnelPath> {
        let mut out = self;
        let slot = out.layers.iter_mut().find(|l| l.is_none())?;
        *slot = Some(t);
        Some(out)
    }

    /// The layers, outermost first.
    pub fn iter(&self) -> impl Iterator<Item = Tunnel> + '_ {
        self.layers.iter().map_while(|l| *l)
    }

    /// Whether there is no tunnel.
    pub fn is_empty(&self) -> bool {
        self.layers[0].is_none()
    }
}

/// Writes the `transport` prefix, e.g. `gtp/esp/` (nothing when empty).
impl fmt::Display for TunnelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in self.iter() {
            write!(f, "{}/", t.as_str())?;
        }
        Ok(())
    }
}

/// What a GRE packet carries.
pub enum Inner<'a> {
    /// An IPv4 or IPv6 packet.
    Ip(&'a [u8]),
    /// An Ethernet frame (transparent Ethernet bridging).
    Ethernet(&'a [u8]),
    /// Something else (keep-alives, other PPP protocols, ...).
    NotIp,
}

/// Parses a GRE header (RFC 2784/2890, and version 1 "enhanced GRE" of
/// RFC 2637 used by PPTP), including PPP inside it.
pub fn gre(b: &[u8]) -> Result<Inner<'_>, &'static str> {
    if b.len() < 4 {
        return Err("GRE header");
    }
    let flags = u16::from_be_bytes([b[0], b[1]]);
    let proto = u16::from_be_bytes([b[2], b[3]]);
    let version = flags & 0x7;
    if flags & 0x4000 != 0 && version == 0 {
        // Source routing (RFC 1701): deprecated, not seen in practice.
        return Ok(Inner::NotIp);
    }
    let mut off = 4;
    if flags & 0x8000 != 0 {
        off += 4; // checksum + reserved
    }
    if flags & 0x2000 != 0 {
        off += 4; // key (or payload length + call id in version 1)
    }
    if flags & 0x1000 != 0 {
        off += 4; // sequence number
    }
    if version == 1 && flags & 0x0080 != 0 {
        off += 4; // acknowledgment number
    }
    if b.len() < off {
        return Err("GRE header");
    }
    let p = &b[off..];
    Ok(match proto {
        0x0800 | 0x86dd => Inner::Ip(p),
        0x6558 => Inner::Ethernet(p),
        0x880b => ppp(p),
        _ => Inner::NotIp,
    })
}

/// PPP (RFC 1661), optionally with the address/control bytes and a
/// compressed protocol field (RFC 1661 §6.5/§6.6).
fn ppp(p: &[u8]) -> Inner<'_> {
    let p = p.strip_prefix(&[0xff, 0x03]).unwrap_or(p);
    let (proto, rest) = match p {
        [a, rest @ ..] if a & 1 == 1 => (*a as u16, rest),
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest),
        _ => return Inner::NotIp,
    };
    match proto {
        0x21 | 0x57 => Inner::Ip(rest),
        _ => Inner::NotIp,
    }
}

/// Recognises a tunnel carried over UDP, by port and header: GTP-U on 2152
/// (a G-PDU whose payload is IP) and VXLAN on 4789.
pub fn over_udp(sport: u16, dport: u16, p: &[u8]) -> Option<(Tunnel, &[u8])> {
    if sport == 2152 || dport == 2152 {
        if let Some(inner) = gtp_u(p) {
            return Some((Tunnel::Gtp, inner));
        }
    }
    if (dport == 4789 || sport == 4789) && p.len() >= 8 + 14 && p[0] & 0x08 != 0 {
        return Some((Tunnel::Vxlan, &p[8..]));
    }
    None
}

/// The IP packet inside a GTP-U G-PDU (3GPP TS 29.281 §5).
fn gtp_u(b: &[u8]) -> Option<&[u8]> {
    if b.len() < 8 {
        return None;
    }
    let flags = b[0];
    // Version 1, protocol type GTP, message type 255 (G-PDU).
    if flags >> 5 != 1 || flags & 0x10 == 0 || b[1] != 0xff {
        return None;
    }
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    let end = (8 + len).min(b.len());
    let mut off = 8;
    if flags & 0x07 != 0 {
        if b.len() < 12 {
            return None;
        }
        let mut next = b[11];
        off = 12;
        while next != 0 {
            let ext_len = *b.get(off)? as usize * 4;
            if ext_len == 0 || off + ext_len > end {
                return None;
            }
            next = b[off + ext_len - 1];
            off += ext_len;
        }
    }
    let inner = b.get(off..end)?;
    matches!(inner.first().map(|v| v >> 4), Some(4 | 6)).then_some(inner)
}

/// The payload of an ESP packet with NULL encryption (RFC 4303, RFC 2410),
/// found heuristically as Wireshark's `esp.enable_null_encryption_decode_heuristic`
/// does: for each usual ICV length, the trailer (padding 1, 2, 3..., pad
/// length, next header) must be consistent and the next header's own length
/// must match. Returns (next header, payload); `None` for encrypted ESP.
pub fn esp_null(b: &[u8]) -> Option<(u8, &[u8])> {
    const ICV_LENS: [usize; 5] = [12, 16, 0, 8, 32];
    if b.len() < 8 + 2 {
        return None;
    }
    let body = &b[8..];
    for icv in ICV_LENS {
        if body.len() < icv + 2 {
            continue;
        }
        let end = body.len() - icv;
        let next = body[end - 1];
        let pad = body[end - 2] as usize;
        if end < 2 + pad {
            continue;
        }
        let pad_bytes = &body[end - 2 - pad..end - 2];
        if !pad_bytes
            .iter()
            .enumerate()
            .all(|(i, &v)| v as usize == i + 1)
        {
            continue;
        }
        let inner = &body[..end - 2 - pad];
        let consistent = match next {
            17 => {
                inner.len() >= 8 && u16::from_be_bytes([inner[4], inner[5]]) as usize == inner.len()
            }
            6 => {
                inner.len() >= 20 && {
                    let doff = (inner[12] >> 4) as usize * 4;
                    (20..=inner.len()).contains(&doff)
                }
            }
            4 => {
                inner.len() >= 20 && inner[0] >> 4 == 4 && {
                    u16::from_be_bytes([inner[2], inner[3]]) as usize == inner.len()
                }
            }
            41 => {
                inner.len() >= 40 && inner[0] >> 4 == 6 && {
                    u16::from_be_bytes([inner[4], inner[5]]) as usize + 40 == inner.len()
                }
            }
            _ => false,
        };
        if consistent {
            return Some((next, inner));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(payload: &[u8]) -> Vec<u8> {
        let len = (8 + payload.len()) as u16;
        let mut v = vec![0x13, 0xc4, 0x13, 0xc4];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn esp_null_with_96_bit_icv() {
        let inner = udp(b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        let mut p = vec![0, 0, 0, 1, 0, 0, 0, 7];
        p.extend_from_slice(&inner);
        p.extend_from_slice(&[1, 2, 2, 17]); // pad 1 2, pad len 2, next UDP
        p.extend_from_slice(&[0xaa; 12]);
        let (next, got) = esp_null(&p).expect("NULL ESP recognised");
        assert_eq!(next, 17);
        assert_eq!(got, &inner[..]);
    }

    #[test]
    fn encrypted_esp_is_not_recognised() {
        let p: Vec<u8> = (0..200u32).map(|i| (i * 37 % 251) as u8).collect();
        assert!(esp_null(&p).is_none());
    }

    #[test]
    fn gtp_u_with_extension_header() {
        let ip = [
            0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        let mut g = vec![0x34, 0xff];
        let len = (4 + 4 + ip.len()) as u16;
        g.extend_from_slice(&len.to_be_bytes());
        g.extend_from_slice(&[0, 0, 0, 1]); // TEID
        g.extend_from_slice(&[0, 0, 0, 0x85]); // seq, npdu, next ext = PDU session container
        g.extend_from_slice(&[1, 0x10, 0x01, 0]); // ext len 1 (4 bytes), ..., next 0
        g.extend_from_slice(&ip);
        let (t, inner) = over_udp(2152, 2152, &g).expect("GTP-U");
        assert_eq!(t, Tunnel::Gtp);
        assert_eq!(inner, &ip[..]);
    }

    #[test]
    fn gtp_control_messages_are_not_tunnels() {
        let g = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(over_udp(2152, 2152, &g).is_none());
    }

    #[test]
    fn gre_ppp_ipv4() {
        // Enhanced GRE (v1) with K and S, PPP with address/control, IPv4.
        let mut b = vec![0x30, 0x01, 0x88, 0x0b, 0, 4, 0, 1, 0, 0, 0, 9];
        b.extend_from_slice(&[0xff, 0x03, 0x00, 0x21, 0x45]);
        match gre(&b) {
            Ok(Inner::Ip(ip)) => assert_eq!(ip, &[0x45]),
            _ => panic!("expected IP in PPP in GRE"),
        }
    }

    #[test]
    fn tunnel_path_display_and_depth() {
        let mut p = TunnelPath::default();
        assert_eq!(p.to_string(), "");
        p = p.push(Tunnel::Gtp).unwrap().push(Tunnel::Esp).unwrap();
        assert_eq!(p.to_string(), "gtp/esp/");
        p = p.push(Tunnel::Gre).unwrap().push(Tunnel::IpIp).unwrap();
        assert!(p.push(Tunnel::Gre).is_none());
    }
}
