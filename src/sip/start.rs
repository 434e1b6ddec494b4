//! The SIP start line (RFC 3261 §7.1, §7.2).
//!
//! In: the first bytes of a datagram or stream. Out: a [`StartLine`] and the
//! offset of the next line, or where and why the bytes are not (or not yet)
//! a SIP start line. This is the only place that decides "is it SIP": it
//! never looks past the first line, and never allocates.

use memchr::{memchr, memchr2};

use super::scan::{find3, is_token_byte};

/// The first line of a SIP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// The method token as written (methods are case-sensitive).
        method: &'a [u8],
        /// The Request-URI as written (`sip:`, `sips:`, `tel:`, `urn:`,
        /// ...).
        uri: &'a [u8],
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// The 3-digit status code (100-699).
        code: u16,
        /// The reason phrase, possibly empty.
        reason: &'a [u8],
    },
}

/// Why a start line was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartError {
    /// The bytes end before the start line does, and are a valid prefix of
    /// one.
    Truncated,
    /// Not a SIP start line.
    Invalid { offset: usize, reason: &'static str },
}

/// A parsed start line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start<'a> {
    pub line: StartLine<'a>,
    /// Offset of the first header line.
    pub next: usize,
    /// Whether the line ended in LF (false: it ran to the end of `buf`).
    pub terminated: bool,
}

const VERSION: &[u8] = b"SIP/2.0";

fn invalid<T>(offset: usize, reason: &'static str) -> Result<T, StartError> {
    Err(StartError::Invalid { offset, reason })
}

/// Checks `SIP/2.0` (case-insensitive) at `at`.
fn version(buf: &[u8], at: usize) -> Result<usize, StartError> {
    let avail = &buf[at.min(buf.len())..];
    let n = avail.len().min(VERSION.len());
    if !avail[..n].eq_ignore_ascii_case(&VERSION[..n]) {
        return invalid(at, "expected SIP/2.0");
    }
    if n < VERSION.len() {
        return Err(StartError::Truncated);
    }
    Ok(at + VERSION.len())
}

/// The end of a start line whose last token ended at `at`: optional SP/HTAB,
/// then LF or CR LF, or the end of `buf`. Returns (next line, terminated).
fn line_end(buf: &[u8], mut at: usize, what: &'static str) -> Result<(usize, bool), StartError> {
    while at < buf.len() && matches!(buf[at], b' ' | b'\t') {
        at += 1;
    }
    match buf.get(at) {
        None => Ok((at, false)),
        Some(b'\n') => Ok((at + 1, true)),
        Some(b'\r') => match buf.get(at + 1) {
            None => Ok((at + 1, false)),
            Some(b'\n') => Ok((at + 2, true)),
            // A bare CR ends the line (as in Wireshark).
            Some(_) => Ok((at + 1, true)),
        },
        Some(_) => invalid(at, what),
    }
}

/// Whether `uri` (which holds no SP, CR or LF) starts with `scheme ":"`.
fn uri_ok(uri: &[u8], complete: bool) -> Result<(), &'static str> {
    let scheme = uri
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')));
    match scheme {
        Some(0) => Err("Request-URI has no scheme"),
        Some(i) if uri[i] == b':' && uri[0].is_ascii_alphabetic() => Ok(()),
        Some(_) => Err("Request-URI has no scheme"),
        None if !complete && uri.first().is_none_or(|b| b.is_ascii_alphabetic()) => Ok(()),
        None => Err("Request-URI has no scheme"),
    }
}

fn request(buf: &[u8]) -> Result<Start<'_>, StartError> {
    let m = buf
        .iter()
        .position(|&b| !is_token_byte(b))
        .unwrap_or(buf.len());
    if m == buf.len() {
        return Err(StartError::Truncated);
    }
    if m == 0 {
        return invalid(0, "not a SIP request or status line");
    }
    if buf[m] != b' ' {
        return invalid(m, "expected SP after method");
    }
    let u = m + 1;
    let Some(e) = find3(b' ', b'\r', b'\n', &buf[u..]).map(|i| u + i) else {
        return match uri_ok(&buf[u..], false) {
            Ok(()) => Err(StartError::Truncated),
            Err(r) => invalid(u, r),
        };
    };
    if buf[e] != b' ' {
        return invalid(e, "expected SP after Request-URI");
    }
    let uri = &buf[u..e];
    if uri.is_empty() {
        return invalid(u, "empty Request-URI");
    }
    if let Err(r) = uri_ok(uri, true) {
        return invalid(u, r);
    }
    let v = version(buf, e + 1)?;
    let (next, terminated) = line_end(buf, v, "expected line end after SIP/2.0")?;
    Ok(Start {
        line: StartLine::Request {
            method: &buf[..m],
            uri,
        },
        next,
        terminated,
    })
}

fn response(buf: &[u8]) -> Result<Start<'_>, StartError> {
    let mut p = version(buf, 0)?;
    match buf.get(p) {
        None => return Err(StartError::Truncated),
        Some(b' ') => {}
        Some(_) => return invalid(p, "expected SP after SIP/2.0"),
    }
    while buf.get(p) == Some(&b' ') {
        p += 1;
    }
    let mut code: u16 = 0;
    for i in 0..3 {
        match buf.get(p + i) {
            None => return Err(StartError::Truncated),
            Some(d) if d.is_ascii_digit() && (i > 0 || (b'1'..=b'6').contains(d)) => {
                code = code * 10 + u16::from(d - b'0');
            }
            Some(_) => return invalid(p + i, "status code is not 3 digits 100-699"),
        }
    }
    p += 3;
    let (reason, next, terminated) = match buf.get(p) {
        None => (&buf[p..], p, false),
        Some(b' ') | Some(b'\t') => match memchr2(b'\r', b'\n', &buf[p..]) {
            Some(i) => {
                let (next, terminated) = line_end(buf, p + i, "expected LF after CR")?;
                (&buf[p + 1..p + i], next, terminated)
            }
            None => (&buf[p + 1..], buf.len(), false),
        },
        Some(b'\r') | Some(b'\n') => {
            let (next, terminated) = line_end(buf, p, "expected LF after CR")?;
            (&buf[p..p], next, terminated)
        }
        Some(_) => return invalid(p, "status code is not 3 digits 100-699"),
    };
    Ok(Start {
        line: StartLine::Response {
            code,
            reason: super::scan::trim_lws(reason),
        },
        next,
        terminated,
    })
}

/// Parses the start line at the beginning of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Result<Start<'_>, StartError> {
    if buf.is_empty() {
        return Err(StartError::Truncated);
    }
    // A NUL byte in the first line means this is not SIP but something that
    // quotes it (Wireshark's packet-sip.c makes the same call).
    let eol = memchr2(b'\r', b'\n', buf).unwrap_or(buf.len());
    if let Some(i) = memchr(0, &buf[..eol]) {
        return invalid(i, "NUL byte in the start line");
    }
    let n = buf.len().min(4);
    if buf[..n].eq_ignore_ascii_case(&VERSION[..n]) && n == 4 {
        response(buf)
    } else {
        request(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(buf: &[u8]) -> Option<StartLine<'_>> {
        parse(buf).ok().map(|s| s.line)
    }

    #[test]
    fn request_with_tel_uri() {
        assert_eq!(
            line(b"INVITE tel:+15551234567 SIP/2.0\r\n"),
            Some(StartLine::Request {
                method: b"INVITE",
                uri: b"tel:+15551234567"
            })
        );
    }

    #[test]
    fn request_with_ipv6_sips_uri_lowercase_version() {
        assert_eq!(
            line(b"OPTIONS sips:[2001:db8::1]:5061;transport=tcp sip/2.0\n"),
            Some(StartLine::Request {
                method: b"OPTIONS",
                uri: b"sips:[2001:db8::1]:5061;transport=tcp"
            })
        );
    }

    #[test]
    fn extension_method_is_any_token() {
        assert!(line(b"X-FOO.bar sip:a@b SIP/2.0\r\n").is_some());
    }

    #[test]
    fn response_codes_must_be_three_digits() {
        assert_eq!(
            line(b"SIP/2.0 183 Session Progress\r\n"),
            Some(StartLine::Response {
                code: 183,
                reason: b"Session Progress"
            })
        );
        assert!(line(b"SIP/2.0 20 OK\r\n").is_none());
        assert!(line(b"SIP/2.0 2000 OK\r\n").is_none());
        assert!(line(b"SIP/2.0 099 Odd\r\n").is_none());
        assert!(line(b"SIP/2.0 700 Odd\r\n").is_none());
    }

    #[test]
    fn response_without_reason() {
        assert_eq!(
            line(b"SIP/2.0 200\r\nX: y"),
            Some(StartLine::Response {
                code: 200,
                reason: b""
            })
        );
    }

    #[test]
    fn truncated_prefixes() {
        for p in [
            &b"INV"[..],
            b"INVITE sip:a",
            b"INVITE sip:a SIP/2",
            b"SIP/2.0 1",
            b"SIP",
        ] {
            assert_eq!(parse(p).err(), Some(StartError::Truncated), "{p:?}");
        }
    }

    #[test]
    fn unterminated_complete_line() {
        let s = parse(b"BYE sip:a SIP/2.0").unwrap();
        assert!(!s.terminated);
        assert_eq!(s.next, 17);
    }
}
