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
//! about 440 and its system time from 0.25 s to 0.07 s. That was with
//! arenas committed eagerly (below); since they are committed as used, the
//! 10 s only kept freed pages resident: on the 60 s capture at 2,000
//! calls/s, mimalloc's default of 1 s peaks 20 MiB lower at -j2 (279.7 ->
//! 259.3 MiB) with CPU x0.99. 100 ms peaks lower again, for no measurable
//! CPU: against 1 s, 259.4 -> 237.6 MiB at -j2 on that capture, and on
//! the scanner burst 236.0 -> 213.6 MiB with CPU x0.99 (paired
//! whole-process medians of 5 and 3). Shorter costs CPU where sessions come
//! and go fastest: on the scanner burst 30 ms costs CPU x1.07, and 0
//! (purge at once) x1.18, though 0 peaks at 221.5 MiB on the 2,000
//! calls/s capture.
//! `MIMALLOC_PURGE_DELAY` in the environment still decides when it is set.
//!
//! Arena commit: on Linux mimalloc commits each arena it reserves eagerly,
//! so the kernel backs it with 2 MB transparent huge pages that it zeroes
//! whole on their first touch, and pages touched once stay resident. With
//! eager commit off, memory is committed as it is used, in small pages:
//! peak RSS on the 2,000 calls/s capture 266 -> 229 MB at -j2 and 247 ->
//! 227 MB at -j1, on the scanner burst 423 -> 364 MB, system time about
//! halved, user time unchanged within noise (docs/perf-history.md).
//! `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still decides when set.
//!
//! Exit: by default mimalloc's exit hook walks the main thread's heap and
//! frees what it still holds, which a process that is about to end has no
//! use for (the OS takes the memory back at once). On the scanner burst
//! that walk was about 17 ms of serial work after the last report was
//! written (0.6 % of the run's CPU samples, `mi_process_done`). With
//! `destroy_on_exit` at 2 the hook returns at once (mimalloc v3's
//! `_mi_auto_process_done`). `MIMALLOC_DESTROY_ON_EXIT` in the environment
//! still decides when set.

/// The process allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Milliseconds mimalloc keeps freed memory before it purges it.
const PURGE_DELAY_MS: std::os::raw::c_long = 100;

/// `mi_option_purge_delay` of `mimalloc.h` (the 16th option, in v2 and v3
/// alike), which the Rust bindings do not name; the test below checks that
/// this option has mimalloc's documented default, 1000 ms.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// `mi_option_arena_eager_commit` (the 5th option; default 2: eager where
/// the OS overcommits, i.e. on Linux), also checked by the test below.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// `mi_option_destroy_on_exit` (the 23rd option; default 0), between
/// options whose defaults the test below checks: 10 before it, 1 GiB in
/// KiB after it.
const MI_OPTION_DESTROY_ON_EXIT: libmimalloc_sys::mi_option_t = 22;

/// `destroy_on_exit` above 1: mimalloc's exit hook does nothing.
const SKIP_EXIT_HOOK: std::os::raw::c_long = 2;

/// Runs [`tune`] while the binary is loaded, before the Rust runtime's
/// first allocation reserves mimalloc's first arena (an option set later
/// applies only to arenas reserved later: setting the arena commit from
/// `main` left the peak RSS unchanged). `.init_array.00101`: before the
/// constructors of default priority, mimalloc's own among them.
/// Not in unit tests, so that they see mimalloc's defaults.
#[cfg(all(target_os = "linux", not(test)))]
#[used]
#[unsafe(link_section = ".init_array.00101")]
static TUNE_AT_LOAD: extern "C" fn() = {
    extern "C" fn at_load() {
        tune();
    }
    at_load
};

/// Applies the options above (at load on Linux; `main` calls it too, which
/// changes nothing when it ran already).
pub fn tune() {
    let set = |name: &str, option, value| {
        if std::env::var_os(name).is_some() {
            return;
        }
        // SAFETY: `mi_option_set` only stores an integer option; mimalloc
        // documents it as callable at any time, from any thread.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(option, value);
        }
    };
    set(
        "MIMALLOC_PURGE_DELAY",
        MI_OPTION_PURGE_DELAY,
        PURGE_DELAY_MS,
    );
    set(
        "MIMALLOC_ARENA_EAGER_COMMIT",
        MI_OPTION_ARENA_EAGER_COMMIT,
        0,
    );
    set(
        "MIMALLOC_DESTROY_ON_EXIT",
        MI_OPTION_DESTROY_ON_EXIT,
        SKIP_EXIT_HOOK,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_indices_are_the_purge_delay_the_arena_commit_and_the_exit() {
        // SAFETY: reads an integer option.
        #[allow(unsafe_code)]
        let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            let v = get(super::MI_OPTION_PURGE_DELAY);
            assert_eq!(v, 1000, "option 15 is not mimalloc's purge delay");
        }
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            let v = get(super::MI_OPTION_ARENA_EAGER_COMMIT);
            assert_eq!(v, 2, "option 4 is not mimalloc's arena eager commit");
        }
        if std::env::var_os("MIMALLOC_DESTROY_ON_EXIT").is_none() {
            let i = super::MI_OPTION_DESTROY_ON_EXIT;
            assert_eq!(get(i), 0, "option 22 is not mimalloc's destroy on exit");
            assert_eq!(get(i - 1), 10, "option 21 is not the segment reclaim");
            assert_eq!(get(i + 1), 1 << 20, "option 23 is not the arena reserve");
        }
    }
}
