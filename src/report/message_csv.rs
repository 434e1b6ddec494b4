//! messages.csv rows encoded by hand: the one row written for every message
//! of a capture (with `--messages`), on the thread that decodes, which at
//! `-j2` is the longest path. Through serde and the csv crate a row cost
//! about 360 ns, most of it per-field dispatch.
//!
//! Owns: [`encode`], byte for byte what [`super::encode`] writes for a
//! [`MessageRow`] (the reports' CSV dialect: RFC 4180 quoting only where a
//! field holds `,` `"` CR or LF, `\n` line ends, the leading `'` of
//! [`super::needs_guard`] on text cells), which a proptest holds. Never
//! decides what a column holds: `rows.rs` does.
//!
//! Also [`number_into`], with which the tracking thread appends the `session`
//! column.

use super::Cell;
use super::rows::MessageRow;

/// Appends `row` to `out`, terminated by `\n`, exactly as
/// [`super::encode`]`(row, out)` would.
pub fn encode(r: &MessageRow<'_>, out: &mut Vec<u8>) {
    // A column added to the row struct changes the test's row builder,
    // and the proptest then fails until the column is written here.
    // Straight-line: a loop over the columns as an enum was ×1.02 slower
    // over the whole run (`-j2 --messages`, udp200-600s).
    cell(out, &r.file);
    out.push(b',');
    number_opt(out, Some(r.frame));
    for s in [&r.time, &r.src, &r.dst] {
        out.push(b',');
        plain(out, s);
    }
    out.push(b',');
    cell(out, &r.transport);
    out.push(b',');
    plain(out, r.kind);
    out.push(b',');
    cell(out, &r.method);
    out.push(b',');
    number_opt(out, r.status.map(u64::from));
    out.push(b',');
    cell(out, &r.call_id);
    out.push(b',');
    number_opt(out, r.cseq.map(u64::from));
    for c in [
        &r.from_tag,
        &r.to_tag,
        &r.via_branch,
        &r.require,
        &r.proxy_require,
        &r.supported,
        &r.unsupported,
        &r.allow,
    ] {
        out.push(b',');
        cell(out, c);
    }
    let retransmission = match r.retransmission {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    };
    for s in [
        r.precondition,
        retransmission,
        r.session.as_deref().unwrap_or_default(),
    ] {
        out.push(b',');
        plain(out, s);
    }
    out.push(b'\n');
}

/// An integer column: empty when absent.
fn number_opt(out: &mut Vec<u8>, n: Option<u64>) {
    if let Some(n) = n {
        number_into(out, n);
    }
}

/// A text cell: guarded like `Cell`'s `Serialize`, then quoted if needed.
fn cell(out: &mut Vec<u8>, c: &Cell<'_>) {
    let v = c.0.as_bytes();
    let guard = super::needs_guard(&c.0);
    if needs_quotes(v) {
        out.push(b'"');
        if guard {
            out.push(b'\'');
        }
        quoted(out, v);
        out.push(b'"');
    } else {
        if guard {
            out.push(b'\'');
        }
        out.extend_from_slice(v);
    }
}

/// A text field written as it is (no guard), quoted if needed.
fn plain(out: &mut Vec<u8>, s: &str) {
    let v = s.as_bytes();
    if needs_quotes(v) {
        out.push(b'"');
        quoted(out, v);
        out.push(b'"');
    } else {
        out.extend_from_slice(v);
    }
}

/// The csv crate's "necessary" quoting for a `\n`-terminated dialect: a
/// delimiter, a quote, CR or LF anywhere in the field.
///
/// Eight bytes at a time: a word has a byte equal to `b` when `w ^ b…b`
/// has a zero byte, which `(x - 0x01…01) & !x & 0x80…80` tells exactly.
/// The byte loop was half of a text cell's cost.
fn needs_quotes(v: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let has = |w: u64, b: u8| {
        let x = w ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS != 0
    };
    let mut words = v.chunks_exact(8);
    for c in &mut words {
        let w = u64::from_ne_bytes(c.try_into().expect("eight bytes"));
        if has(w, b',') | has(w, b'"') | has(w, b'\r') | has(w, b'\n') {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
}

/// `v` with each `"` doubled.
fn quoted(out: &mut Vec<u8>, v: &[u8]) {
    for part in v.split_inclusive(|&b| b == b'"') {
        out.extend_from_slice(part);
        if part.last() == Some(&b'"') {
            out.push(b'"');
        }
    }
}

/// `v` in decimal, as the csv crate writes an integer.
pub fn number_into(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(super::decimal_bytes(v, &mut [0; 20]));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        // Empty, plain, or with every byte that quoting or the guard reads.
        "([=+@\\t\\r-]?[a-zA-Z0-9 ;:.,\"\\r\\n'é-]{0,12})?"
    }

    fn row_from(
        t: &[String],
        n: (u64, Option<u16>, Option<u32>),
        flags: (Option<bool>, bool),
    ) -> MessageRow<'_> {
        let c = |i: usize| Cell::str(&t[i]);
        MessageRow {
            file: c(0),
            frame: n.0,
            time: t[1].clone(),
            src: t[2].clone(),
            dst: t[3].clone(),
            transport: c(4),
            kind: if flags.1 { "request" } else { "response" },
            method: c(5),
            status: n.1,
            call_id: c(6),
            cseq: n.2,
            from_tag: c(7),
            to_tag: c(8),
            via_branch: c(9),
            require: c(10),
            proxy_require: c(11),
            supported: c(12),
            unsupported: c(13),
            allow: c(14),
            precondition: "mandatory",
            retransmission: flags.0,
            session: flags.1.then(|| t[15].clone()),
        }
    }

    proptest! {
        #[test]
        fn rows_are_what_the_csv_crate_writes(
            t in proptest::collection::vec(text(), 16),
            frame in any::<u64>(),
            status in proptest::option::of(any::<u16>()),
            cseq in proptest::option::of(any::<u32>()),
            retransmission in proptest::option::of(any::<bool>()),
            request in any::<bool>(),
        ) {
            let row = row_from(&t, (frame, status, cseq), (retransmission, request));
            let (mut want, mut got) = (Vec::new(), Vec::new());
            crate::report::encode(&row, &mut want);
            encode(&row, &mut got);
            prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
        }
    }

    proptest! {
        /// The word-at-a-time test says what a byte loop says, for any
        /// bytes at any position.
        #[test]
        fn needs_quotes_is_the_byte_test(v in proptest::collection::vec(any::<u8>(), 0..40)) {
            let want = v.iter().any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'));
            prop_assert_eq!(needs_quotes(&v), want);
        }
    }

    #[test]
    fn a_quoted_guarded_cell() {
        let t: Vec<String> = (0..16)
            .map(|i| {
                if i == 6 {
                    "=a,\"b\"".into()
                } else {
                    String::new()
                }
            })
            .collect();
        let row = row_from(&t, (0, None, None), (None, false));
        let mut got = Vec::new();
        encode(&row, &mut got);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            ",0,,,,,response,,,\"'=a,\"\"b\"\"\",,,,,,,,,,mandatory,,\n"
        );
    }
}
