//! The scheduling priority of the pipeline's own threads. Owns only that;
//! never decides what a thread does or when it runs.
//!
//! With `--jobs` > 1, finished sessions are evaluated and written on a
//! thread of their own, the rules stage (mod.rs, `RulesStage`): the last
//! stage of the pipeline, which only consumes. At `-j2` on two cores it
//! shares them with the two threads that feed it (decoding, and the
//! calling thread's routing and tracking), and the kernel gave the three
//! equal shares, so a producer on the critical path waited while the sink
//! ran. Below them (nice +5: about a third of their weight to the kernel's
//! fair scheduler) it runs when they wait; its queue is bounded (4
//! batches), so when it falls behind they block on it and it gets the
//! cores. Nothing waits on it for long, and it never starves: a lower
//! weight is a smaller share, not none.
//!
//! Paired whole-process medians at `-j2`, nice +5 against none (7 pairs
//! each): wall ×0.955 on udp2000-60s, ×0.981 on udp200-600s, ×0.985 on
//! tcp1000-60s, ×1.007 on the scanner burst (CPU ×0.99–1.01); peak RSS +8,
//! +14, +3 and 0 MiB (the queue is fuller). Nice +10 was slower than +5 on
//! udp2000-60s (×1.03). docs/perf-history.md.
//!
//! Linux only: there a thread's nice value is its own (NPTL). Elsewhere
//! `nice` may lower the whole process, so nothing is done.

/// How much lower the rules stage runs than the threads that feed it.
const SINK_NICE: i32 = 5;

/// Lowers the calling thread's priority to a sink's (see the module
/// documentation). Best effort: a refusal changes no output, only timing.
pub(super) fn sink_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `nice` only changes the calling thread's nice value (on
        // Linux the nice value is per thread, and glibc's and musl's
        // `nice` set it through `setpriority(PRIO_PROCESS, 0, ..)`, where
        // 0 is the calling thread); it touches no memory of ours. Its
        // result is ignored: raising a nice value is always allowed, and
        // a failure would only leave the thread at its priority.
        #[allow(unsafe_code)]
        let _ = unsafe { libc::nice(SINK_NICE) };
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The nice value of thread `tid`, from /proc (field 19 of `stat`,
    /// after the parenthesised command name).
    fn nice_of(tid: i64) -> i64 {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        after
            .split(' ')
            .nth(16)
            .expect("nice")
            .parse()
            .expect("number")
    }

    fn tid() -> i64 {
        // SAFETY: gettid has no preconditions and touches no memory.
        #[allow(unsafe_code)]
        let t = unsafe { libc::gettid() };
        i64::from(t)
    }

    #[test]
    fn only_the_calling_thread_is_lowered() {
        let me = tid();
        let before = nice_of(me);
        let lowered = std::thread::spawn(|| {
            let t = tid();
            let was = nice_of(t);
            super::sink_thread();
            (was, nice_of(t))
        })
        .join()
        .expect("joins");
        assert_eq!(lowered.1, (lowered.0 + super::SINK_NICE as i64).min(19));
        assert_eq!(
            nice_of(me),
            before,
            "the spawning thread keeps its priority"
        );
    }
}
