//! The SDP scan: finding SDP in a body (content types, multipart) and the
//! precondition attributes in it. The first byte picks the content type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipaudit::sip::sdp::precondition_lines;
use sipaudit::sip::{find_sdp, precondition_demand};

const TYPES: [Option<&[u8]>; 5] = [
    None,
    Some(b"application/sdp"),
    Some(b"multipart/mixed;boundary=b1"),
    Some(b"multipart/related; boundary=\"x y\""),
    Some(b"text/plain"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let ct = TYPES[sel as usize % TYPES.len()];
    let ce: Option<&[u8]> = if sel & 0x80 != 0 { Some(b"gzip") } else { None };
    let _ = find_sdp(ct, ce, body);
    let _ = precondition_demand(body);
    for l in precondition_lines(body) {
        let _ = l;
    }
});
