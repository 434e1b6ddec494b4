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
//! Also [`number`], with which the tracking thread appends the `session`
//! column.

use super::Cell;
use super::rows::MessageRow;

/// Appends `row` to `out`, terminated by `\n`, exactly as
/// [`super::encode`]`(row, out)` would.
pub fn encode(row: &MessageRow<'_>, out: &mut Vec<u8>) {
    // Destructured without `..`: a column added to the row struct is a
    // compile error here until it is written.
    let MessageRow {
        file,
        frame,
        time,
        src,
        dst,
        transport,
        kind,
        method,
        status,
        call_id,
        cseq,
        from_tag,
        to_tag,
        via_branch,
        require,
        proxy_require,
        supported,
        unsupported,
        allow,
        precondition,
        retransmission,
        session,
    } = row;
    cell(out, file);
    out.push(b',');
    number(out, *frame);
    out.push(b',');
    plain(out, time);
    out.push(b',');
    plain(out, src);
    out.push(b',');
    plain(out, dst);
    out.push(b',');
    cell(out, transport);
    out.push(b',');
    plain(out, kind);
    out.push(b',');
    cell(out, method);
    out.push(b',');
    if let Some(s) = status {
        number(out, u64::from(*s));
    }
    out.push(b',');
    cell(out, call_id);
    out.push(b',');
    if let Some(c) = cseq {
        number(out, u64::from(*c));
    }
    for c in [
        from_tag,
        to_tag,
        via_branch,
        require,
        proxy_require,
        supported,
        unsupported,
        allow,
    ] {
        out.push(b',');
        cell(out, c);
    }
    out.push(b',');
    plain(out, precondition);
    out.push(b',');
    if let Some(r) = retransmission {
        out.extend_from_slice(if *r { b"true" } else { b"false" });
    }
    out.push(b',');
    if let Some(s) = session {
        plain(out, s);
    }
    out.push(b'\n');
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
fn needs_quotes(v: &[u8]) -> bool {
    v.iter().any(|&b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
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
pub fn number(out: &mut Vec<u8>, mut v: u64) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&d[i..]);
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
