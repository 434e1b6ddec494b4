//! The binary's allocator: mimalloc, and how long it keeps freed memory
//! before returning it to the OS. Owns only the allocator choice and its
//! options; the library never depends on it.
//!
//! mimalloc instead of the system allocator: every SIP message record is
//! allocated on a decoding thread and freed on the merging one, which with
//! glibc malloc serialises both threads on its arena locks (a fifth of the
//! run in futex waits, measured with perf on the bench capture).
//!
//! Purge delay: by default mimalloc returns freed memory to the OS about a
//! second after it is freed. The tracker frees and re-allocates the same
//! amount continuously (finished sessions out, new ones in), so each page
//! went back to the OS and was faulted in again, zeroed by the kernel (as a
//! 2 MB transparent huge page where mimalloc asks for them): 17 % of a run
//! on the 2,000 calls/s capture was `clear_page_erms` (perf). Keeping freed
//! memory for 10 s cut the page faults of that run from about 1,800 to
//! about 440 and its system time from 0.25 s to 0.07 s; peak RSS is the
//! same, since the memory is reused, not added. `MIMALLOC_PURGE_DELAY` in
//! the environment still decides when it is set.

/// The process allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Milliseconds mimalloc keeps freed memory before it purges it.
const PURGE_DELAY_MS: std::os::raw::c_long = 10_000;

/// `mi_option_purge_delay` of `mimalloc.h` (the 16th option, in v2 and v3
/// alike), which the Rust bindings do not name; the test below checks that
/// this option has mimalloc's documented default, 1000 ms.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies the options above; call first thing in `main`.
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` only stores an integer option; mimalloc
    // documents it as callable at any time, from any thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_index_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads an integer option.
        #[allow(unsafe_code)]
        let v = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(v, 1000, "option 15 is not mimalloc's purge delay");
    }
}
