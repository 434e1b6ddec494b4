//! Capture reading: the bytes of a whole file (pcap, pcapng, gzip, zstd, or
//! anything else), read to its end or to the error that stops it.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if common::compressed(data) {
        return;
    }
    let path = common::scratch("capture");
    std::fs::write(&path, data).unwrap();
    let mut n = 0u64;
    let (info, _err) = sipaudit::capture::read_capture(&path, |p| {
        n += 1;
        assert_eq!(p.frame, n);
    });
    assert_eq!(info.packets, n);
    let _ = sipaudit::capture::first_timestamp(&path);
});
