//! The SIP scanner: one buffer as a datagram and as the front of a stream,
//! with every accessor the analyzer uses (header lists, tags, SDP).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipaudit::sip::{
    Case, Framing, HeaderId, SipError, is_sip_start, keepalive_len, parse_message, write_tag_list,
};

fn touch(m: &sipaudit::sip::Message<'_>, len: usize) {
    assert!(m.len() <= len);
    let _ = (
        m.start(),
        m.method(),
        m.status(),
        m.request_uri(),
        m.call_id(),
        m.cseq(),
    );
    let _ = (
        m.from_tag(),
        m.to_tag(),
        m.from_uri(),
        m.to_uri(),
        m.via_count(),
    );
    let _ = (
        m.top_via_branch(),
        m.bottom_via_branch(),
        m.content_length(),
        m.body(),
    );
    for h in m.headers() {
        let _ = h;
    }
    let mut out = String::new();
    for &id in HeaderId::ALL {
        let _ = m.header(id);
        for v in m.values(id) {
            let _ = v;
        }
        write_tag_list(&mut out, m.list(id), Case::Lower);
    }
    let _ = m.header_named(b"x-custom");
    let _ = m.anomalies().count();
    let _ = m.sdp();
    let _ = m.precondition();
}

fuzz_target!(|data: &[u8]| {
    let _ = is_sip_start(data);
    let k = keepalive_len(data);
    assert!(k <= data.len());
    if let Ok(m) = parse_message(data, Framing::Datagram) {
        touch(&m, data.len());
    }
    match parse_message(&data[k..], Framing::Stream) {
        Ok(m) => touch(&m, data.len() - k),
        Err(SipError::Invalid { offset, .. }) => assert!(offset <= data.len()),
        Err(SipError::Incomplete) => {}
    }
});
