//! `extract --media`: which UDP packets are a session's RTP and RTCP.
//!
//! The endpoints come from the SDP of the session's own SIP messages, read
//! back from the frames that carried them and decoded as the run decodes
//! them (IP reassembly; TCP streams framed into messages): for every `m=`
//! line with a port other than 0, its address (`c=` of the media, else of
//! the session) and port for RTP, and `a=rtcp` (port, and address when
//! given) or else port + 1 for RTCP. A UDP packet is taken when both its
//! ends are endpoints of the session and it was captured between the
//! session's first SIP frame and its last plus [`MEDIA_TAIL_NS`]. Both
//! ends, not either: the next call often reuses one side's port (a gateway's
//! fixed media port), and its RTP must not land in this session's pcap.
//! Owns that choice and the SDP reading for it; it never writes a file
//! (extract.rs does).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use crate::capture::RawPacket;
use crate::packet::{Datagram, Decoder, Sink, StreamEvent};
use crate::sip::stream::{FramerEvent, Framers};
use crate::sip::{Framing, SdpBody, parse_message};

/// How long after a session's last SIP frame its media is still taken.
pub const MEDIA_TAIL_NS: i64 = 3_000_000_000;

/// A media block being read: its port, its own `c=` address, its
/// `a=rtcp` (port, address).
type Block = (u16, Option<IpAddr>, Option<(u16, Option<IpAddr>)>);

/// The RTP and RTCP endpoints an SDP body names.
pub fn sdp_endpoints(sdp: &[u8]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    let mut session_addr: Option<IpAddr> = None;
    let mut block: Option<Block> = None;
    let close = |b: &mut Option<Block>, session: Option<IpAddr>, out: &mut Vec<SocketAddr>| {
        if let Some((port, addr, rtcp)) = b.take() {
            let Some(addr) = addr.or(session) else {
                return;
            };
            out.push(SocketAddr::new(addr, port));
            let (rport, raddr) = rtcp.unwrap_or((port.wrapping_add(1), None));
            out.push(SocketAddr::new(raddr.unwrap_or(addr), rport));
        }
    };
    for line in sdp.split(|&b| b == b'\n') {
        let line = std::str::from_utf8(line)
            .unwrap_or("")
            .trim_end_matches('\r');
        if let Some(m) = line.strip_prefix("m=") {
            close(&mut block, session_addr, &mut out);
            let port = m.split(' ').nth(1).and_then(|p| p.split('/').next());
            if let Some(port) = port.and_then(|p| p.parse::<u16>().ok()).filter(|&p| p != 0) {
                block = Some((port, None, None));
            }
        } else if let Some(c) = line.strip_prefix("c=") {
            let addr = connection_addr(c);
            match block.as_mut() {
                Some(b) => b.1 = addr.or(b.1),
                None => session_addr = addr.or(session_addr),
            }
        } else if let (Some(r), Some(b)) = (line.strip_prefix("a=rtcp:"), block.as_mut()) {
            let mut it = r.split(' ');
            if let Some(port) = it.next().and_then(|p| p.trim().parse::<u16>().ok()) {
                let addr = it.nth(2).and_then(|a| a.trim().parse().ok());
                b.2 = Some((port, addr));
            }
        }
    }
    close(&mut block, session_addr, &mut out);
    out
}

/// The address of a `c=` value (`IN IP4 10.0.0.1`, `IN IP6 ::1`, a
/// multicast `/ttl` suffix dropped).
fn connection_addr(c: &str) -> Option<IpAddr> {
    let a = c.split(' ').nth(2)?;
    a.split('/').next()?.trim().parse().ok()
}

/// Collects the endpoints of every SIP message the decoder finds.
struct SdpSink {
    framers: Framers,
    endpoints: BTreeSet<SocketAddr>,
}

impl SdpSink {
    fn message(endpoints: &mut BTreeSet<SocketAddr>, bytes: &[u8], framing: Framing) {
        if let Ok(m) = parse_message(bytes, framing) {
            if let SdpBody::Sdp(s) = m.sdp() {
                endpoints.extend(sdp_endpoints(s));
            }
        }
    }
}

impl Sink for SdpSink {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        SdpSink::message(&mut self.endpoints, d.payload, Framing::Datagram);
        true
    }

    fn stream(&mut self, ev: &StreamEvent<'_>) {
        let endpoints = &mut self.endpoints;
        self.framers.event(ev, &mut |fe| {
            if let FramerEvent::Message(f) = fe {
                SdpSink::message(endpoints, f.bytes, f.framing());
            }
        });
    }

    fn anomaly(&mut self, _: u64, _: crate::anomaly::PacketAnomaly, _: String) {}
}

/// The media endpoints of the SIP messages carried by `frames`: the frames
/// one session kept from one input file, in frame order.
pub fn endpoints_of_frames<'a>(
    frames: impl Iterator<Item = RawPacket<'a>>,
) -> BTreeSet<SocketAddr> {
    let mut dec = Decoder::default();
    let mut sink = SdpSink {
        framers: Framers::default(),
        endpoints: BTreeSet::new(),
    };
    for p in frames {
        dec.decode(&p, &mut sink);
    }
    dec.finish(&mut sink);
    let SdpSink {
        framers,
        mut endpoints,
    } = sink;
    framers.finish(&mut |fe| {
        if let FramerEvent::Message(f) = fe {
            SdpSink::message(&mut endpoints, f.bytes, f.framing());
        }
    });
    endpoints
}

/// One session's media: its endpoints and the time span its media is taken
/// in.
#[derive(Debug, Clone, Default)]
pub struct Media {
    /// RTP and RTCP endpoints.
    pub endpoints: BTreeSet<SocketAddr>,
    /// First SIP frame, ns.
    pub from: i64,
    /// Last SIP frame plus [`MEDIA_TAIL_NS`].
    pub to: i64,
}

impl Media {
    /// Whether a UDP packet from `src` to `dst` captured at `ts` is this
    /// session's media.
    pub fn takes(&self, ts: i64, src: &SocketAddr, dst: &SocketAddr) -> bool {
        (self.from..=self.to).contains(&ts)
            && self.endpoints.contains(src)
            && self.endpoints.contains(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rtp_and_rtcp_endpoints_of_an_offer() {
        let sdp = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 7000/2 RTP/AVP 96\r\nc=IN IP4 10.0.0.2\r\na=rtcp:7100 IN IP4 10.0.0.3\r\n\
m=audio 0 RTP/AVP 8\r\n\
m=audio 8000 RTP/AVP 8\r\nc=IN IP6 2001:db8::5\r\na=rtcp:8005\r\n";
        assert_eq!(
            sdp_endpoints(sdp),
            [
                sa("10.0.0.1:6000"),
                sa("10.0.0.1:6001"),
                sa("10.0.0.2:7000"),
                sa("10.0.0.3:7100"),
                sa("[2001:db8::5]:8000"),
                sa("[2001:db8::5]:8005"),
            ]
        );
        assert!(
            sdp_endpoints(b"v=0\nm=audio 5000 RTP/AVP 0\n").is_empty(),
            "no c="
        );
    }

    #[test]
    fn a_packet_is_taken_when_both_ends_are_endpoints_within_the_span() {
        let m = Media {
            endpoints: [sa("10.0.0.1:6000"), sa("10.0.0.2:4000")].into(),
            from: 10,
            to: 20,
        };
        assert!(m.takes(15, &sa("10.0.0.2:4000"), &sa("10.0.0.1:6000")));
        assert!(!m.takes(21, &sa("10.0.0.2:4000"), &sa("10.0.0.1:6000")));
        assert!(!m.takes(15, &sa("10.0.0.2:4002"), &sa("10.0.0.1:6000")));
    }
}
