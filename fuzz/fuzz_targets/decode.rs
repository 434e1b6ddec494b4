//! Packet decoding from the link layer up: a link type, then packets (each
//! a time step and a 16-bit length), through the decoder (fragments,
//! tunnels, TCP/SCTP reassembly, HEP) into a sink that scans the SIP it
//! finds and frames TCP streams. Checks the accounting.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sipaudit::anomaly::PacketAnomaly;
use sipaudit::capture::RawPacket;
use sipaudit::packet::sctp::SctpEvent;
use sipaudit::packet::{Datagram, Decoder, Sink, StreamEvent};
use sipaudit::sip::stream::{FramerEvent, Framers};
use sipaudit::sip::{Framing, is_sip_start, parse_message};

const LINKTYPES: [u32; 10] = [1, 101, 113, 276, 0, 108, 228, 229, 239, 12];

struct S {
    framers: Framers,
    sip: u64,
}

impl Sink for S {
    fn datagram(&mut self, d: &Datagram<'_>) -> bool {
        let ok = is_sip_start(d.payload) && parse_message(d.payload, Framing::Datagram).is_ok();
        self.sip += ok as u64;
        ok
    }
    fn stream(&mut self, ev: &StreamEvent<'_>) {
        self.framers.event(ev, &mut |fe| {
            if let FramerEvent::Message(f) = fe {
                let _ = f.parse();
            }
        });
    }
    fn sctp(&mut self, ev: &SctpEvent<'_>) {
        if let SctpEvent::Message { bytes, .. } = ev {
            let _ = parse_message(bytes, Framing::Datagram);
        }
    }
    fn anomaly(&mut self, _: u64, _: PacketAnomaly, detail: String) {
        assert!(!detail.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = common::Cursor::new(data);
    let linktype = LINKTYPES[c.u8() as usize % LINKTYPES.len()];
    let mut dec = Decoder::default();
    let mut sink = S {
        framers: Framers::default(),
        sip: 0,
    };
    let mut frame = 0u64;
    let mut ts = 1_700_000_000_000_000_000i64;
    while !c.is_empty() {
        ts += c.u8() as i64 * 250_000_000;
        let len = c.u16() as usize;
        let bytes = c.take(len);
        frame += 1;
        let pkt = RawPacket {
            frame,
            ts_ns: ts,
            linktype,
            orig_len: bytes.len() as u32,
            data: bytes,
        };
        dec.decode(&pkt, &mut sink);
    }
    let counts = dec.finish(&mut sink);
    assert_eq!(counts.sip + counts.other + counts.undecodable, frame);
});
