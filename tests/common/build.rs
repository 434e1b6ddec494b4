//! A small capture builder for tests: pcap (any magic, either byte order) and
//! pcapng (sections, interfaces with options, EPB/SPB), plus packet builders
//! for Ethernet/VLAN/SLL/SLL2/NULL, IPv4/IPv6 (fragments included) and UDP.

/// A pcap file.
pub struct Pcap {
    pub big_endian: bool,
    pub nanos: bool,
    pub linktype: u32,
    pub snaplen: u32,
    pub records: Vec<(u64, Vec<u8>)>, // (ts in the file's units: sec<<32 | frac), data
}

impl Pcap {
    pub fn new(linktype: u32) -> Self {
        Pcap {
            big_endian: false,
            nanos: false,
            linktype,
            snaplen: 65535,
            records: Vec::new(),
        }
    }
    pub fn push(&mut self, sec: u32, frac: u32, data: Vec<u8>) {
        self.records
            .push((((sec as u64) << 32) | frac as u64, data));
    }
    pub fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if self.big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if self.big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        w32(&mut v, if self.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, self.snaplen);
        w32(&mut v, self.linktype);
        for (ts, d) in &self.records {
            w32(&mut v, (ts >> 32) as u32);
            w32(&mut v, *ts as u32);
            w32(&mut v, d.len() as u32);
            w32(&mut v, d.len() as u32);
            v.extend_from_slice(d);
        }
        v
    }
}

/// A pcapng file built block by block.
pub struct PcapNg {
    pub big_endian: bool,
    pub out: Vec<u8>,
}

impl PcapNg {
    pub fn new(big_endian: bool) -> Self {
        PcapNg {
            big_endian,
            out: Vec::new(),
        }
    }
    fn u32b(&self, x: u32) -> [u8; 4] {
        if self.big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }
    fn u16b(&self, x: u16) -> [u8; 2] {
        if self.big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }
    fn block(&mut self, ty: u32, body: &[u8]) {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&self.u32b(ty));
        b.extend_from_slice(&self.u32b(len));
        b.extend_from_slice(body);
        b.extend(std::iter::repeat_n(0, pad));
        b.extend_from_slice(&self.u32b(len));
        self.out.extend_from_slice(&b);
    }
    /// A new section (resets the interfaces).
    pub fn section(&mut self) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(0x1a2b_3c4d));
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&(-1i64).to_le_bytes());
        self.block(0x0a0d_0d0a, &body);
        self
    }
    /// An interface; `tsresol` / `tsoffset` options when given.
    pub fn interface(
        &mut self,
        linktype: u16,
        tsresol: Option<u8>,
        tsoffset: Option<i64>,
    ) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(linktype));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b(0)); // snaplen 0 = unlimited
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.u16b(9));
            body.extend_from_slice(&self.u16b(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            body.extend_from_slice(&self.u16b(14));
            body.extend_from_slice(&self.u16b(8));
            let b = if self.big_endian {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            };
            body.extend_from_slice(&b);
        }
        if tsresol.is_some() || tsoffset.is_some() {
            body.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        }
        self.block(1, &body);
        self
    }
    pub fn epb(&mut self, if_id: u32, ts_units: u64, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(if_id));
        body.extend_from_slice(&self.u32b((ts_units >> 32) as u32));
        body.extend_from_slice(&self.u32b(ts_units as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        body.extend(std::iter::repeat_n(0, (4 - data.len() % 4) % 4));
        self.block(6, &body);
        self
    }
    pub fn spb(&mut self, data: &[u8]) -> &mut Self {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(3, &body);
        self
    }
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(payload);
    v
}

/// An IPv4 packet (no options); `frag` = (id, offset in 8-byte units, more fragments).
pub fn ipv4(
    src: [u8; 4],
    dst: [u8; 4],
    proto: u8,
    frag: Option<(u16, u16, bool)>,
    payload: &[u8],
) -> Vec<u8> {
    let (id, off, mf) = frag.unwrap_or((1, 0, false));
    let flags_off = (if mf { 0x2000 } else { 0 }) | off;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&flags_off.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    let sum = checksum(&v);
    v[10..12].copy_from_slice(&sum.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv6 packet; `frag` = (id, offset in 8-byte units, more) adds a fragment header;
/// `hop_by_hop` adds an (empty, padded) hop-by-hop options header first.
pub fn ipv6(
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    frag: Option<(u32, u16, bool)>,
    hop_by_hop: bool,
    payload: &[u8],
) -> Vec<u8> {
    let mut ext = Vec::new();
    let mut next = proto;
    if let Some((id, off, mf)) = frag {
        let mut f = vec![next, 0];
        f.extend_from_slice(&((off << 3) | mf as u16).to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        ext = f;
        next = 44;
    }
    if hop_by_hop {
        let mut h = vec![next, 0, 1, 4, 0, 0, 0, 0]; // PadN
        h.extend_from_slice(&ext);
        ext = h;
        next = 0;
    }
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&((ext.len() + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&ext);
    v.extend_from_slice(payload);
    v
}

/// Ethernet II with the given VLAN tags (tpid, vid), outermost first.
pub fn ethernet(tags: &[(u16, u16)], ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    for (tpid, vid) in tags {
        v.extend_from_slice(&tpid.to_be_bytes());
        v.extend_from_slice(&vid.to_be_bytes());
    }
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(l3);
    v
}

/// Linux cooked capture v1 (16-byte header).
pub fn sll(ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(l3);
    v
}

/// Linux cooked capture v2 (20-byte header).
pub fn sll2(ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(&[0, 0]); // reserved
    v.extend_from_slice(&1u32.to_be_bytes()); // ifindex
    v.extend_from_slice(&1u16.to_be_bytes()); // ARPHRD_ETHER
    v.extend_from_slice(&[0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    v.extend_from_slice(l3);
    v
}

/// BSD NULL/LOOP header (address family 2 = IPv4) in the given byte order.
pub fn null(big_endian: bool, l3: &[u8]) -> Vec<u8> {
    let mut v = if big_endian {
        2u32.to_be_bytes()
    } else {
        2u32.to_le_bytes()
    }
    .to_vec();
    v.extend_from_slice(l3);
    v
}

pub fn sip_options(call_id: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-{call_id}\r\n\
From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// TCP flags.
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const PSH: u8 = 0x08;

/// A TCP segment (20-byte header, no options; checksum left 0).
pub fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[5 << 4, flags]);
    v.extend_from_slice(&65535u16.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}
