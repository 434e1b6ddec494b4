//! Software prefetch: a hint that some memory is read soon, so that its
//! cache lines are on their way before the read. A shared leaf. A record
//! waits 2 s of capture time in the merge's reorder window (about 38,000 of
//! them at 2,000 calls/s) and has left the caches when the tracking thread
//! takes it, on whichever core: the two hottest instructions of that thread
//! at `-j2` on udp2000-60s were first loads of a record (`pipeline::merge`
//! now prefetches them a few records ahead; report.html's ladder slots, the
//! messages.csv rows and the retransmission window's slots are prefetched
//! the same way).
//!
//! Owns nothing but the hint; it never reads the memory into the program and
//! never faults, whatever the address.

/// Cache line size assumed.
const LINE: usize = 64;

/// Prefetches the lines of `b`, `max_lines` at most.
pub fn bytes(b: &[u8], max_lines: usize) {
    for line in b.chunks(LINE).take(max_lines) {
        line_of(line.as_ptr());
    }
}

/// Prefetches the lines of `*v` itself (not what it points to).
pub fn value<T>(v: &T) {
    let p = (v as *const T).cast::<u8>();
    let mut off = 0;
    while off < std::mem::size_of::<T>() {
        line_of(p.wrapping_add(off));
        off += LINE;
    }
}

fn line_of(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is a hint: it reads nothing into the program
        // and never faults, whatever the address; SSE is part of the x86_64
        // baseline.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p.cast())
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
