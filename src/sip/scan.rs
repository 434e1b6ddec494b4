//! Byte-level building blocks of the SIP scanner: header rows, LWS
//! trimming, RFC 3261 tokens, comma lists, `;` parameters and name-addr
//! values.
//!
//! In: byte slices taken from a message. Out: sub-slices or offsets of those
//! same slices. It never allocates, never copies, never panics on any input
//! (every index is bounds-checked by construction), and knows nothing about
//! which header means what.

use memchr::{memchr, memchr2, memchr3};

/// Distances up to which a word-at-a-time loop beats a `memchr` call (its
/// setup costs a few ns per call).
const SHORT: usize = 32;

/// RFC 3261 §25.1 `token` characters:
/// `alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"`.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        b += 1;
    }
    t
};

/// Whether `b` may appear in an RFC 3261 token.
#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[b as usize]
}

/// Whether `s` is a non-empty RFC 3261 token.
#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_byte(b))
}

/// Linear white space, including the CR and LF of a folded line.
#[inline]
pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `s` without leading and trailing LWS (SP, HTAB, CR, LF).
#[inline]
pub fn trim_lws(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut z = s.len();
    while a < z && is_lws(s[a]) {
        a += 1;
    }
    while z > a && is_lws(s[z - 1]) {
        z -= 1;
    }
    &s[a..z]
}

macro_rules! short_find {
    ($(#[$m:meta])* $name:ident, $long:ident, $($n:ident),+) => {
        $(#[$m])*
        #[inline]
        pub(crate) fn $name($($n: u8,)+ s: &[u8]) -> Option<usize> {
            const LSB: u64 = 0x0101_0101_0101_0101;
            let mut i = 0;
            // A word at a time (no branch per byte) over the first SHORT
            // bytes, then memchr.
            while i + 8 <= s.len() {
                if i >= SHORT {
                    return $long($($n,)+ &s[i..]).map(|k| k + i);
                }
                let w = load8(s, i);
                let z = 0 $(| zero_bytes(w ^ (LSB * u64::from($n))))+;
                if z != 0 {
                    return Some(i + (z.trailing_zeros() / 8) as usize);
                }
                i += 8;
            }
            s[i..].iter().position(|&b| $(b == $n)||+).map(|k| k + i)
        }
    };
}

short_find!(
    /// `memchr` for needles that are usually near.
    find1, memchr, a
);
short_find!(
    /// `memchr2` for needles that are usually near.
    find2, memchr2, a, b
);
short_find!(
    /// `memchr3` for needles that are usually near.
    find3, memchr3, a, b, c
);

/// ASCII-lowercases the eight bytes of `x` at once (bytes >= 0x80 are left
/// alone).
#[inline]
pub(crate) fn lower8(x: u64) -> u64 {
    const LSB: u64 = 0x0101_0101_0101_0101;
    const MSB: u64 = 0x8080_8080_8080_8080;
    let h = x & !MSB;
    // High bit of each byte: >= 'A', and > 'Z' (no carries: h <= 0x7f).
    let ge_a = h + LSB * (0x80 - b'A' as u64);
    let gt_z = h + LSB * (0x80 - b'Z' as u64 - 1);
    let upper = ge_a & !gt_z & !x & MSB;
    x | (upper >> 2)
}

/// The high bit of each byte of `v` that is zero (exact: no false
/// positives from borrows).
#[inline]
pub(crate) fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((v & LOW7) + LOW7) | v | LOW7)
}

/// Bytes read at once by the word-wise fast paths ([`find_colon`],
/// [`HeaderId`](super::HeaderId) lookup).
pub(crate) const WORDS: usize = 3;

/// The first [`WORDS`] little-endian words at `at`, if `s` has them.
#[inline]
pub(crate) fn load_words(s: &[u8], at: usize) -> Option<[u64; WORDS]> {
    if at + 8 * WORDS > s.len() {
        return None;
    }
    Some([load8(s, at), load8(s, at + 8), load8(s, at + 16)])
}

/// Offset of the first `:` in `buf[pos..end]`. Header names are short: the
/// first 24 bytes are searched a word at a time, without a branch per byte.
#[inline]
fn find_colon(buf: &[u8], pos: usize, end: usize) -> Option<usize> {
    const COLONS: u64 = 0x0101_0101_0101_0101 * b':' as u64;
    let Some(w) = load_words(buf, pos) else {
        return buf[pos..end]
            .iter()
            .position(|&b| b == b':')
            .map(|i| pos + i);
    };
    let mut base = 0;
    for word in w {
        let z = zero_bytes(word ^ COLONS);
        if z != 0 {
            let at = pos + base + (z.trailing_zeros() / 8) as usize;
            return (at < end).then_some(at);
        }
        base += 8;
    }
    let from = pos + 8 * WORDS;
    if from >= end {
        return None;
    }
    find1(b':', &buf[from..end]).map(|i| from + i)
}

#[inline]
pub(crate) fn load8(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(b)
}

#[inline]
fn load4(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(b))
}

/// ASCII case-insensitive equality, eight bytes at a time (the last load
/// overlaps the previous one instead of looping over a remainder).
#[inline]
pub(crate) fn eq_fold(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 4 {
        return a.eq_ignore_ascii_case(b);
    }
    if n < 8 {
        return lower8(load4(a, 0)) == lower8(load4(b, 0))
            && lower8(load4(a, n - 4)) == lower8(load4(b, n - 4));
    }
    let mut i = 0;
    while i + 8 < n {
        if lower8(load8(a, i)) != lower8(load8(b, i)) {
            return false;
        }
        i += 8;
    }
    lower8(load8(a, n - 8)) == lower8(load8(b, n - 8))
}

/// One header row: a header line plus its folded continuation lines.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Row {
    /// Offset of the first byte of the row.
    pub start: usize,
    /// Offset of the first `:` on the row's first line, if any.
    pub colon: Option<usize>,
    /// End of the row's content: before the CR LF / LF of its last line.
    pub end: usize,
    /// Offset of the line after the row.
    pub next: usize,
}

/// What [`scan_row`] found at a position.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scan {
    /// A header row (which may be malformed: no colon, bad name).
    Row(Row),
    /// The empty line that ends the header section, at `at`; the body
    /// starts at `next`.
    Blank { at: usize, next: usize },
    /// End of the buffer: nothing, or only a lone CR, is left.
    End,
}

/// Offset of the end of a line's content and of the next line, for the line
/// starting at `pos`. `None` for the LF offset when the line is not
/// terminated.
#[inline]
fn line_at(buf: &[u8], pos: usize) -> (usize, Option<usize>) {
    // A line ends at CR LF, a bare LF, or a bare CR (as in Wireshark). A CR
    // that is the last byte may still be followed by its LF (stream framing):
    // the line is then not terminated yet.
    match memchr2(b'\r', b'\n', &buf[pos..]) {
        Some(i) => {
            let at = pos + i;
            if buf[at] == b'\n' {
                (at, Some(at))
            } else if at + 1 == buf.len() {
                (at, None)
            } else if buf[at + 1] == b'\n' {
                (at, Some(at + 1))
            } else {
                (at, Some(at))
            }
        }
        None => (buf.len(), None),
    }
}

/// Reads the header row (or the blank line) that starts at `pos`.
///
/// Lines end in CR LF or a bare LF. A line starting with SP or HTAB
/// continues the row (RFC 3261 §7.3.1 folding). The blank line is only
/// reported when its LF is present, so that a stream reader never mistakes
/// a lone trailing CR for the end of the header section.
pub(crate) fn scan_row(buf: &[u8], pos: usize) -> Scan {
    if pos >= buf.len() {
        return Scan::End;
    }
    let (mut end, lf) = line_at(buf, pos);
    if end == pos {
        return match lf {
            Some(lf) => Scan::Blank {
                at: pos,
                next: lf + 1,
            },
            None => Scan::End,
        };
    }
    let colon = find_colon(buf, pos, end);
    let mut next = lf.map_or(buf.len(), |lf| lf + 1);
    while next < buf.len() && matches!(buf[next], b' ' | b'\t') {
        let (e, lf) = line_at(buf, next);
        end = e;
        next = lf.map_or(buf.len(), |lf| lf + 1);
    }
    Scan::Row(Row {
        start: pos,
        colon,
        end,
        next,
    })
}

/// The name of a row (before the colon, trailing SP/HTAB removed), or
/// `None` when the row has no colon or an empty name. The caller checks
/// that an unrecognised name is a token.
#[inline]
pub(crate) fn row_name<'a>(buf: &'a [u8], row: &Row) -> Option<&'a [u8]> {
    let colon = row.colon?;
    let mut z = colon;
    while z > row.start && matches!(buf[z - 1], b' ' | b'\t') {
        z -= 1;
    }
    let name = &buf[row.start..z];
    if name.is_empty() { None } else { Some(name) }
}

/// The trimmed value of a row that has a colon.
#[inline]
pub(crate) fn row_value<'a>(buf: &'a [u8], row: &Row) -> &'a [u8] {
    let (a, z) = row_value_span(buf, row);
    &buf[a..z]
}

/// The offsets of [`row_value`] in `buf`.
#[inline]
pub(crate) fn row_value_span(buf: &[u8], row: &Row) -> (usize, usize) {
    match row.colon {
        Some(c) if c < row.end => {
            let mut a = c + 1;
            let mut z = row.end;
            while a < z && is_lws(buf[a]) {
                a += 1;
            }
            while z > a && is_lws(buf[z - 1]) {
                z -= 1;
            }
            (a, z)
        }
        _ => (row.end, row.end),
    }
}

/// Offset just after the quoted string whose opening `"` is at `open`
/// (backslash escapes honoured), or `s.len()` when it is not closed.
#[inline]
pub(crate) fn skip_quoted(s: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < s.len() {
        match find2(b'"', b'\\', &s[i..]) {
            None => return s.len(),
            Some(k) => {
                let j = i + k;
                if s[j] == b'"' {
                    return j + 1;
                }
                i = j + 2;
            }
        }
    }
    s.len()
}

/// The items of a comma list (RFC 3261 §7.3.1): split on commas outside
/// double quotes and `<>`, each item trimmed of LWS (folding included),
/// empty items dropped.
#[derive(Clone, Debug)]
pub struct CommaItems<'a> {
    rest: &'a [u8],
}

impl<'a> CommaItems<'a> {
    /// Splits `value`.
    pub fn new(value: &'a [u8]) -> Self {
        CommaItems { rest: value }
    }
}

impl<'a> Iterator for CommaItems<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let s = self.rest;
            // Fast path for option-tag and method lists: LWS, a token, then
            // a comma or the end.
            let a = s.iter().position(|&b| !is_lws(b)).unwrap_or(s.len());
            let z = a + s[a..]
                .iter()
                .position(|&b| !is_token_byte(b))
                .unwrap_or(s.len() - a);
            if z > a && (z == s.len() || s[z] == b',') {
                self.rest = s.get(z + 1..).unwrap_or_default();
                return Some(&s[a..z]);
            }
            let mut i = 0;
            let cut = loop {
                match find3(b',', b'"', b'<', &s[i.min(s.len())..]) {
                    None => break s.len(),
                    Some(k) => {
                        let j = i + k;
                        match s[j] {
                            b',' => break j,
                            b'"' => i = skip_quoted(s, j),
                            _ => i = find1(b'>', &s[j + 1..]).map_or(s.len(), |k| j + k + 2),
                        }
                    }
                }
            };
            let item = trim_lws(&s[..cut]);
            self.rest = if cut < s.len() { &s[cut + 1..] } else { &[] };
            if !item.is_empty() {
                return Some(item);
            }
        }
        None
    }
}

/// The value of the `;`-parameter `name` (case-insensitive) in `params`,
/// trimmed, with `Some(b"")` for a parameter without `=`. `params` is the
/// text after the URI or sent-by (its leading `;` optional). Quoted values
/// are returned with their quotes.
pub fn param<'a>(params: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let mut rest = params;
    while !rest.is_empty() {
        // Find the end of this parameter: the next `;` outside quotes.
        let mut i = 0;
        let cut = loop {
            match find2(b';', b'"', &rest[i.min(rest.len())..]) {
                None => break rest.len(),
                Some(k) => {
                    let j = i + k;
                    if rest[j] == b';' {
                        break j;
                    }
                    i = skip_quoted(rest, j);
                }
            }
        };
        let p = &rest[..cut];
        rest = if cut < rest.len() {
            &rest[cut + 1..]
        } else {
            &[]
        };
        let (pname, pvalue) = match find1(b'=', p) {
            Some(e) => (trim_lws(&p[..e]), trim_lws(&p[e + 1..])),
            None => (trim_lws(p), &p[p.len()..]),
        };
        if pname.eq_ignore_ascii_case(name) {
            return Some(pvalue);
        }
    }
    None
}

/// Splits a name-addr or addr-spec value (From, To, Contact, P-Asserted-
/// Identity item, ...) into the URI and the header parameters after it.
///
/// `"Display, Name" <sip:a@b;lr>;tag=x` gives (`sip:a@b;lr`, `;tag=x`);
/// `sip:a@b;tag=x` gives (`sip:a@b`, `;tag=x`). Quoted display names may
/// contain `<`, `;` and `,`.
pub fn name_addr(value: &[u8]) -> (&[u8], &[u8]) {
    let v = trim_lws(value);
    let mut i = 0;
    while i < v.len() {
        match find2(b'<', b'"', &v[i..]) {
            None => break,
            Some(k) => {
                let j = i + k;
                if v[j] == b'"' {
                    i = skip_quoted(v, j);
                    continue;
                }
                let inner = &v[j + 1..];
                return match find1(b'>', inner) {
                    Some(c) => (trim_lws(&inner[..c]), &inner[c + 1..]),
                    None => (trim_lws(inner), &[]),
                };
            }
        }
    }
    // addr-spec: header parameters start at the first `;`.
    match find1(b';', v) {
        Some(s) => (trim_lws(&v[..s]), &v[s..]),
        None => (v, &[]),
    }
}

/// Parses an unsigned decimal of at most `max_digits` digits, surrounded by
/// nothing (the caller trims).
#[inline]
pub(crate) fn parse_decimal(s: &[u8], max_digits: usize) -> Option<u64> {
    if s.is_empty() || s.len() > max_digits {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

/// Parses a CSeq value `1*DIGIT LWS Method` into (number, method,
/// well-formed). The number is kept even when the method after it is not a
/// token (as Wireshark does): `well-formed` is then false, and the method is
/// the trimmed rest as it stands. `None` when there is no number followed by
/// LWS.
pub(crate) fn parse_cseq(value: &[u8]) -> Option<(u32, &[u8], bool)> {
    let v = trim_lws(value);
    let digits = v.iter().take_while(|b| b.is_ascii_digit()).count();
    let num = parse_decimal(&v[..digits], 10)?;
    let num = u32::try_from(num).ok()?;
    let rest = &v[digits..];
    if rest.first().is_some_and(|&b| !is_lws(b)) {
        return None;
    }
    let method = trim_lws(rest);
    Some((num, method, is_token(method)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(v: &[u8]) -> Vec<&[u8]> {
        CommaItems::new(v).collect()
    }

    #[test]
    fn eq_fold_matches_std_on_every_length() {
        let base = b"P-Access-Network-Info-Xyz@[`{";
        for n in 0..base.len() {
            let a = &base[..n];
            let upper = a.to_ascii_uppercase();
            let lower = a.to_ascii_lowercase();
            assert!(eq_fold(a, &upper) && eq_fold(&lower, a), "{n}");
            for i in 0..n {
                let mut c = upper.clone();
                for d in [0x20u8, 0x01, 0x80] {
                    c[i] ^= d;
                    assert_eq!(eq_fold(a, &c), a.eq_ignore_ascii_case(&c), "{n} {i} {d}");
                    c[i] ^= d;
                }
            }
        }
    }

    #[test]
    fn short_finds_agree_with_memchr() {
        let hay: Vec<u8> = (0..80u8).map(|i| b'a' + (i % 23)).collect();
        for n in 0..hay.len() {
            for at in 0..n {
                let mut h = hay[..n].to_vec();
                h[at] = b';';
                assert_eq!(find1(b';', &h), memchr(b';', &h));
                assert_eq!(find2(b'"', b';', &h), memchr2(b'"', b';', &h));
                h[at / 2] = b'<';
                assert_eq!(find3(b',', b';', b'<', &h), memchr3(b',', b';', b'<', &h));
            }
            assert_eq!(find1(b';', &hay[..n]), None);
        }
    }

    #[test]
    fn comma_items_skip_quotes_brackets_and_empties() {
        let v = b"\"Doe, J\" <sip:a@b;x=\"1,2\">, <sip:c@d>,, tel:+1 ,";
        assert_eq!(
            items(v),
            vec![
                &b"\"Doe, J\" <sip:a@b;x=\"1,2\">"[..],
                b"<sip:c@d>",
                b"tel:+1"
            ]
        );
    }

    #[test]
    fn comma_items_trim_folding() {
        assert_eq!(
            items(b"100rel,\r\n  timer ,\tpath"),
            vec![&b"100rel"[..], b"timer", b"path"]
        );
    }

    #[test]
    fn comma_items_unclosed_quote_is_one_item() {
        assert_eq!(items(b"\"a, b"), vec![&b"\"a, b"[..]]);
        assert_eq!(items(b"<a, b"), vec![&b"<a, b"[..]]);
    }

    #[test]
    fn param_is_case_insensitive_and_quote_aware() {
        let p = b";x=\"a;tag=no\" ; TAG = abc ;lr";
        assert_eq!(param(p, b"tag"), Some(&b"abc"[..]));
        assert_eq!(param(p, b"lr"), Some(&b""[..]));
        assert_eq!(param(p, b"maddr"), None);
    }

    #[test]
    fn name_addr_with_quoted_display_name() {
        let (uri, params) = name_addr(b" \"Bob <the, man>\" <sip:bob@[2001:db8::1]:5060;lr>;tag=9");
        assert_eq!(uri, b"sip:bob@[2001:db8::1]:5060;lr");
        assert_eq!(param(params, b"tag"), Some(&b"9"[..]));
    }

    #[test]
    fn name_addr_addr_spec_params_belong_to_header() {
        let (uri, params) = name_addr(b"sip:alice@example.com;tag=1928");
        assert_eq!(uri, b"sip:alice@example.com");
        assert_eq!(params, b";tag=1928");
    }

    #[test]
    fn cseq_parses_number_and_method() {
        assert_eq!(
            parse_cseq(b" 314159  INVITE "),
            Some((314159, &b"INVITE"[..], true))
        );
        assert_eq!(parse_cseq(b"1INVITE"), None);
        assert_eq!(parse_cseq(b"99999999999 INVITE"), None);
        assert_eq!(parse_cseq(b"INVITE 1"), None);
        assert_eq!(parse_cseq(b"\x11 INVITE"), None);
        // The number survives a broken method (fuzzed captures; tshark agrees).
        assert_eq!(parse_cseq(b"1 IN VITE"), Some((1, &b"IN VITE"[..], false)));
        assert_eq!(
            parse_cseq(b"1 INV\xe8TE"),
            Some((1, &b"INV\xe8TE"[..], false))
        );
        assert_eq!(parse_cseq(b"7"), Some((7, &b""[..], false)));
    }

    #[test]
    fn scan_row_follows_folding_and_bare_lf() {
        let buf = b"Subject: a\r\n b\n\tc\nX: y\r\n\r\nbody";
        let Scan::Row(r) = scan_row(buf, 0) else {
            panic!("row expected")
        };
        assert_eq!(row_value(buf, &r), b"a\r\n b\n\tc");
        let Scan::Row(r2) = scan_row(buf, r.next) else {
            panic!("row expected")
        };
        assert_eq!(row_name(buf, &r2), Some(&b"X"[..]));
        let Scan::Blank { next, .. } = scan_row(buf, r2.next) else {
            panic!("blank expected")
        };
        assert_eq!(&buf[next..], b"body");
    }

    #[test]
    fn lone_cr_at_end_is_not_a_blank_line() {
        assert!(matches!(scan_row(b"\r", 0), Scan::End));
    }
}
