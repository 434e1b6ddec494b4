//! The progress display of `sipaudit analyze` on stderr: bytes read over
//! all inputs (compressed bytes for compressed files) against their total
//! size, with rate and ETA. On a terminal an indicatif bar; otherwise (with
//! `--progress always`) a plain line every few seconds and one at the end.
//! Owns the drawing only: the capture reader counts the bytes
//! (`Config::progress`); it never reads a file itself.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, HumanDuration, ProgressBar, ProgressStyle};
use sipaudit::capture::ByteCounter;

/// How often the bar is redrawn from the counter.
const BAR_TICK: Duration = Duration::from_millis(150);
/// How often a plain line is printed when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(3);

/// A running display; [`Display::finish`] ends it.
pub struct Display {
    stop: Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts the display of `counter` against `total` bytes: a bar when
/// `terminal`, else plain lines.
pub fn start(total: u64, counter: ByteCounter, terminal: bool) -> Display {
    let (stop, rx) = std::sync::mpsc::channel();
    let thread = sipaudit::threads::detached(sipaudit::threads::PROGRESS, move || {
        if terminal {
            bar(total, &counter, &rx);
        } else {
            lines(total, &counter, &rx);
        }
    });
    Display { stop, thread }
}

impl Display {
    /// Stops the display (a bar is cleared, plain lines end with the
    /// final count).
    pub fn finish(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Waits `every`; false once the display is to stop.
fn wait(rx: &Receiver<()>, every: Duration) -> bool {
    matches!(rx.recv_timeout(every), Err(RecvTimeoutError::Timeout))
}

fn bar(total: u64, counter: &ByteCounter, rx: &Receiver<()>) {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} ({elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        bar.set_position(counter.load(Ordering::Relaxed));
        if !wait(rx, BAR_TICK) {
            break;
        }
    }
    bar.finish_and_clear();
}

fn lines(total: u64, counter: &ByteCounter, rx: &Receiver<()>) {
    let start = Instant::now();
    let mut more = true;
    while more {
        more = wait(rx, LINE_EVERY);
        let done = counter.load(Ordering::Relaxed);
        eprintln!("{}", line(done, total, start.elapsed(), !more));
    }
}

/// `sipaudit: read 12.00 MiB of 48.00 MiB (25 %), 4.00 MiB/s, ETA 9 seconds`;
/// at the end the elapsed time instead of the ETA.
fn line(done: u64, total: u64, elapsed: Duration, end: bool) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = done as f64 / secs;
    let pct = (done as f64 * 100.0 / total.max(1) as f64).min(100.0);
    let tail = if end {
        format!("in {}", HumanDuration(elapsed))
    } else if rate > 0.0 {
        let left = total.saturating_sub(done) as f64 / rate;
        format!("ETA {}", HumanDuration(Duration::from_secs_f64(left)))
    } else {
        "ETA unknown".to_string()
    };
    format!(
        "sipaudit: read {} of {} ({pct:.0} %), {}/s, {tail}",
        HumanBytes(done),
        HumanBytes(total),
        HumanBytes(rate as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_names_bytes_total_rate_and_eta() {
        let l = line(12 << 20, 48 << 20, Duration::from_secs(3), false);
        assert_eq!(
            l,
            "sipaudit: read 12.00 MiB of 48.00 MiB (25 %), 4.00 MiB/s, ETA 9 seconds"
        );
        let l = line(48 << 20, 48 << 20, Duration::from_secs(12), true);
        assert!(l.contains("(100 %)") && l.ends_with("in 12 seconds"), "{l}");
    }
}
