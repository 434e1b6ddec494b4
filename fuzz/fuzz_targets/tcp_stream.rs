//! The TCP stream machinery: a sequence of segments (direction, flags,
//! sequence jumps, payload) through the reassembler, then through one
//! framer chosen by the first byte: SIP framing, WebSocket deframing (with
//! or without the HTTP handshake) or HEP3 framing.
#![no_main]

mod common;

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use rustc_hash::FxHashMap;
use sipaudit::packet::hep::{self, Streams};
use sipaudit::packet::tcp::Reassembler;
use sipaudit::packet::ws::{Deframer, WsLimits};
use sipaudit::packet::{FlowKey, Segment, StreamEvent, TunnelPath};
use sipaudit::sip::stream::{FramerEvent, Framers};

enum Framer {
    Sip(Framers),
    Ws(FxHashMap<FlowKey, Deframer>, bool),
    Hep(Streams),
}

fn hep_out(e: hep::StreamEvent<'_, '_>) -> bool {
    matches!(e, hep::StreamEvent::Packet { packet, .. } if packet.payload.is_some())
}

impl Framer {
    fn event(&mut self, ev: &StreamEvent<'_>) {
        match self {
            Framer::Sip(f) => f.event(ev, &mut |fe| {
                if let FramerEvent::Message(m) = fe {
                    let _ = m.parse();
                }
            }),
            Framer::Ws(dirs, handshake) => match *ev {
                StreamEvent::Data {
                    key,
                    bytes,
                    frame,
                    ts_ns,
                    carrier,
                } => dirs
                    .entry(key)
                    .or_insert_with(|| Deframer::new(*handshake, WsLimits::default()))
                    .data(bytes, frame, ts_ns, carrier, &mut |_| {}),
                StreamEvent::Gap { key, frame, .. } => {
                    if let Some(d) = dirs.get_mut(&key) {
                        d.gap(frame, &mut |_| {});
                    }
                }
                StreamEvent::Reset { key, frame } => {
                    if let Some(mut d) = dirs.remove(&key) {
                        d.finish(frame, &mut |_| {});
                    }
                }
                _ => {}
            },
            Framer::Hep(s) => match *ev {
                StreamEvent::Data {
                    key,
                    bytes,
                    frame,
                    ts_ns,
                    carrier,
                } if s.claims(key, Some(bytes)) => {
                    s.data(key, bytes, (frame, ts_ns, carrier), &mut hep_out)
                }
                StreamEvent::Gap { key, frame, .. } if s.claims(key, None) => {
                    s.gap(key, frame, &mut hep_out)
                }
                StreamEvent::Reset { key, frame } if s.claims(key, None) => {
                    s.end(key, frame, &mut hep_out)
                }
                _ => {}
            },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = common::Cursor::new(data);
    let mut framer = match c.u8() % 4 {
        0 => Framer::Sip(Framers::default()),
        1 => Framer::Ws(FxHashMap::default(), true),
        2 => Framer::Ws(FxHashMap::default(), false),
        _ => Framer::Hep(Streams::default()),
    };
    let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let z: SocketAddr = "10.0.0.2:5060".parse().unwrap();
    let mut next = [1000u32, 9000u32];
    let mut r = Reassembler::default();
    let mut ts = 1_700_000_000_000_000_000i64;
    let mut frame = 0u64;
    while !c.is_empty() {
        let ctl = c.u8();
        let dir = (ctl & 1) as usize;
        let delta = if ctl & 0x30 == 0x30 {
            (c.u8() as i8 as i32) * 16
        } else {
            0
        };
        let len = c.u16() as usize % 2048;
        let payload = c.take(len);
        frame += 1;
        ts += ((ctl >> 6) as i64) * 10_000_000_000;
        let (src, dst) = if dir == 0 { (a, z) } else { (z, a) };
        let seq = next[dir].wrapping_add(delta as u32);
        let seg = Segment {
            key: FlowKey {
                tunnels: TunnelPath::default(),
                src,
                dst,
            },
            seq,
            ack: (ctl & 0x40 != 0).then_some(next[1 - dir]),
            syn: ctl & 0x02 != 0,
            fin: ctl & 0x04 != 0,
            rst: ctl & 0x08 != 0,
            payload,
            frame,
            ts_ns: ts,
        };
        next[dir] = seq
            .wrapping_add(payload.len() as u32)
            .wrapping_add(seg.syn as u32);
        r.segment(&seg, &mut |ev| framer.event(&ev));
        r.expire(ts, &mut |ev| framer.event(&ev));
    }
    r.finish(&mut |ev| framer.event(&ev));
    match &mut framer {
        Framer::Sip(f) => std::mem::take(f).finish(&mut |_| {}),
        Framer::Hep(s) => s.finish(frame, &mut hep_out),
        Framer::Ws(..) => {}
    }
});
