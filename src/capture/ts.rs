//! Timestamps: pcapng units to integer nanoseconds, and RFC 3339 output.

/// The latest (and, negated, the earliest) capture time sipaudit keeps,
/// ns since the epoch: 2^62 - 1, in the year 2116, after every classic
/// pcap time (2106). Later pcapng times are clamped to it, so that a time
/// plus any window or timer of the tracker (at most a year), and the
/// difference of two times, fit in an i64 (fuzz/pipeline found a pcapng
/// time near i64::MAX overflowing `start + W0`).
pub const MAX_TS_NS: i64 = (1 << 62) - 1;

/// `ts` clamped to [-[`MAX_TS_NS`], [`MAX_TS_NS`]].
pub fn plausible_ns(ts: i64) -> i64 {
    ts.clamp(-MAX_TS_NS, MAX_TS_NS)
}

/// Converts a pcapng timestamp (`units` in the interface's resolution) to
/// nanoseconds since the epoch. `tsresol` is the raw `if_tsresol` byte: bit 7
/// clear means 10^-n seconds, set means 2^-n seconds (pcap-parser's
/// `ts_resolution()` returns `None` for the latter, crates.md); `tsoffset` is
/// `if_tsoffset` in seconds. Saturates at ±[`MAX_TS_NS`] instead of
/// overflowing.
pub fn pcapng_ts_ns(units: u64, tsresol: u8, tsoffset: i64) -> i64 {
    let n = (tsresol & 0x7f) as u32;
    let ns: i128 = if tsresol & 0x80 == 0 {
        if n <= 9 {
            units as i128 * 10i128.pow(9 - n)
        } else if n <= 38 {
            units as i128 / 10i128.pow(n - 9)
        } else {
            0
        }
    } else if n < 127 {
        ((units as i128) * 1_000_000_000) >> n
    } else {
        0
    };
    let total = ns + tsoffset as i128 * 1_000_000_000;
    total.clamp(-MAX_TS_NS as i128, MAX_TS_NS as i128) as i64
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC with microseconds,
/// e.g. `2026-11-24T06:58:36.123456Z` (truncated toward the past).
pub fn format_rfc3339_micros(ts_ns: i64) -> String {
    let mut s = String::with_capacity(27);
    format_rfc3339_micros_into(ts_ns, &mut s);
    s
}

/// [`format_rfc3339_micros`]`(ts_ns)` written into `out` (cleared first),
/// so that a caller building a row per message reuses one String.
pub fn format_rfc3339_micros_into(ts_ns: i64, out: &mut String) {
    let micros = ts_ns.div_euclid(1_000);
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    // Written digit by digit: this runs for every messages.csv row, and
    // format! with padding was a tenth of the row's cost. An i64 of
    // nanoseconds spans the years 1677-2262: always four digits.
    let mut b = [0u8; 27];
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, m.into());
    put(8, 2, d.into());
    put(11, 2, (sod / 3600) as u64);
    put(14, 2, ((sod / 60) % 60) as u64);
    put(17, 2, (sod % 60) as u64);
    put(20, 6, frac as u64);
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ] {
        b[i] = c;
    }
    // Every byte written above is an ASCII digit or separator.
    out.clear();
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// [`format_rfc3339_micros_into`] for times that mostly share their second
/// with the one before: when `*second` says that `out` holds the text of a
/// time in the same second, only the microseconds are rewritten. A
/// messages.csv row is written per message, thousands a second.
pub fn update_rfc3339_micros(ts_ns: i64, out: &mut String, second: &mut Option<i64>) {
    let micros = ts_ns.div_euclid(1_000);
    let sec = micros.div_euclid(1_000_000);
    if *second != Some(sec) || out.len() != 27 {
        format_rfc3339_micros_into(ts_ns, out);
        *second = Some(sec);
        return;
    }
    let mut frac = micros.rem_euclid(1_000_000) as u64;
    let mut b = [0u8; 6];
    for d in b.iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    out.truncate(20);
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
    out.push('Z');
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Updating in place writes what formatting afresh writes, for any
        /// sequence of times (same second, the next, backwards, negative).
        #[test]
        fn updating_a_time_in_place_is_formatting_it(
            start in -(1i64 << 40)..(1i64 << 40),
            steps in proptest::collection::vec(-2_000_000_000i64..2_000_000_000, 1..40),
        ) {
            let (mut out, mut second) = (String::new(), None);
            let mut t = start * 1_000;
            for step in steps {
                t += step / 3;
                update_rfc3339_micros(t, &mut out, &mut second);
                proptest::prop_assert_eq!(&out, &format_rfc3339_micros(t));
            }
        }
    }

    #[test]
    fn microsecond_resolution_is_default() {
        assert_eq!(pcapng_ts_ns(1_500_000, 6, 0), 1_500_000_000);
    }

    #[test]
    fn nanosecond_resolution() {
        assert_eq!(pcapng_ts_ns(1_234_567_891, 9, 0), 1_234_567_891);
    }

    #[test]
    fn power_of_two_resolution() {
        // 0x94 = 2^-20 s per unit: 2^20 units = 1 s.
        assert_eq!(pcapng_ts_ns(1 << 20, 0x94, 0), 1_000_000_000);
        assert_eq!(pcapng_ts_ns(3 << 19, 0x94, 0), 1_500_000_000);
    }

    #[test]
    fn tsoffset_is_added_in_seconds() {
        assert_eq!(pcapng_ts_ns(0, 6, 1_000), 1_000_000_000_000);
    }

    #[test]
    fn rfc3339_format() {
        assert_eq!(format_rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2026-11-24T06:58:36.123456Z
        let ns = 1_795_503_516_123_456_789;
        assert_eq!(format_rfc3339_micros(ns), "2026-11-24T06:58:36.123456Z");
        assert_eq!(format_rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
        // leap day
        assert_eq!(
            format_rfc3339_micros(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        // The ends of the i64 range.
        assert_eq!(
            format_rfc3339_micros(i64::MIN),
            "1677-09-21T00:12:43.145224Z"
        );
        assert_eq!(
            format_rfc3339_micros(i64::MAX),
            "2262-04-11T23:47:16.854775Z"
        );
    }
}
