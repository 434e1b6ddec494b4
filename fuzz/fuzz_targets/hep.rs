//! HEP: the packet parser on the whole input, then the HEP3 stream framer
//! on the input cut into pieces (the first byte gives the piece size; a
//! piece size of 0 also declares a gap before the second piece).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipaudit::packet::FlowKey;
use sipaudit::packet::hep::{self, Streams};

fuzz_target!(|data: &[u8]| {
    let _ = hep::is_hep(data);
    if let Ok(p) = hep::parse(data) {
        assert!(p.len <= data.len());
        let _ = (p.src(), p.dst(), p.ts_ns(), p.transport());
        for pr in &p.problems {
            let _ = pr.to_string();
        }
    }
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let key = FlowKey {
        tunnels: Default::default(),
        src: "10.0.0.1:1000".parse().unwrap(),
        dst: "10.0.0.2:9060".parse().unwrap(),
    };
    let mut s = Streams::default();
    let mut out = |e: hep::StreamEvent<'_, '_>| match e {
        hep::StreamEvent::Packet { packet, .. } => packet.payload.is_some(),
        hep::StreamEvent::Anomaly { .. } => false,
    };
    let piece = (sel as usize).max(1);
    for (i, chunk) in rest.chunks(piece).enumerate() {
        if sel == 0 && i == 1 {
            s.gap(key, i as u64, &mut out);
        }
        if s.claims(key, Some(chunk)) {
            s.data(key, chunk, (i as u64 + 1, 0, i as u64 + 1), &mut out);
        }
    }
    s.finish(99, &mut out);
});
