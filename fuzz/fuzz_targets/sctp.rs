//! SCTP reassembly: a sequence of SCTP packets (common header and chunks),
//! each in one direction or the other, then the expiry and the end.
#![no_main]

mod common;

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use sipaudit::packet::{At, TunnelPath};
use sipaudit::packet::sctp::{Reassembler, SctpEvent};
use sipaudit::sip::{Framing, parse_message};

fn out(ev: SctpEvent<'_>) {
    if let SctpEvent::Message { bytes, .. } = ev {
        let _ = parse_message(bytes, Framing::Datagram);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = common::Cursor::new(data);
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let z: IpAddr = "10.0.0.2".parse().unwrap();
    let mut r = Reassembler::default();
    let mut ts = 1_700_000_000_000_000_000i64;
    let mut frame = 0;
    while !c.is_empty() {
        let ctl = c.u8();
        let len = c.u16() as usize % 4096;
        let b = c.take(len);
        frame += 1;
        ts += (ctl >> 4) as i64 * 5_000_000_000;
        let (s, d) = if ctl & 1 == 0 { (a, z) } else { (z, a) };
        let at = At { frame, ts_ns: ts };
        let _ = r.packet(TunnelPath::default(), s, d, b, at, &mut out);
        r.expire(ts, &mut out);
    }
    r.finish(&mut out);
});
