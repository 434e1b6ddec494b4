//! Locating the SDP in a SIP body (rules.md §B.2).
//!
//! In: a message's Content-Type and Content-Encoding values and its body.
//! Out: the SDP bytes (the whole body, or an `application/sdp` part of a
//! `multipart/*` body), "no SDP", or "undecodable". It never decompresses or
//! decodes anything and never allocates; nested multiparts are followed a
//! few levels deep only.

use memchr::{memchr, memmem};

use super::header::HeaderId;
use super::scan::{self, CommaItems, Scan};

/// Where the SDP of a body is, if it can be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpBody<'a> {
    /// The body holds no SDP (empty, another media type, or a multipart
    /// without an `application/sdp` part).
    None,
    /// The SDP bytes.
    Sdp(&'a [u8]),
    /// The body may hold SDP but cannot be read: a Content-Encoding other
    /// than `identity`, a base64 / quoted-printable part, a multipart
    /// without a usable boundary.
    Undecodable,
}

/// How deep nested multiparts are followed.
const MAX_DEPTH: u8 = 4;

/// What a Content-Type names, as far as SDP is concerned.
enum Media<'a> {
    Sdp,
    /// `multipart/*` with its parameters (after the subtype).
    Multipart(&'a [u8]),
    Other,
}

fn media(content_type: &[u8]) -> Media<'_> {
    let ct = scan::trim_lws(content_type);
    let (mt, params) = match memchr(b';', ct) {
        Some(i) => (&ct[..i], &ct[i..]),
        None => (ct, &ct[ct.len()..]),
    };
    let Some(slash) = memchr(b'/', mt) else {
        return Media::Other;
    };
    let ty = scan::trim_lws(&mt[..slash]);
    let sub = scan::trim_lws(&mt[slash + 1..]);
    if ty.eq_ignore_ascii_case(b"application") && sub.eq_ignore_ascii_case(b"sdp") {
        Media::Sdp
    } else if ty.eq_ignore_ascii_case(b"multipart") {
        Media::Multipart(params)
    } else {
        Media::Other
    }
}

/// Whether a Content-Encoding value is absent or only `identity`.
fn identity_encoding(content_encoding: Option<&[u8]>) -> bool {
    content_encoding.is_none_or(|v| CommaItems::new(v).all(|c| c.eq_ignore_ascii_case(b"identity")))
}

/// Whether a Content-Transfer-Encoding (MIME parts) leaves bytes as they are.
fn plain_transfer_encoding(cte: Option<&[u8]>) -> bool {
    cte.is_none_or(|v| {
        let v = scan::trim_lws(v);
        v.eq_ignore_ascii_case(b"7bit")
            || v.eq_ignore_ascii_case(b"8bit")
            || v.eq_ignore_ascii_case(b"binary")
    })
}

/// Finds the SDP of a body.
///
/// - An empty body has none.
/// - A Content-Type naming neither `application/sdp` nor `multipart/*` has
///   none, whatever its encoding.
/// - A body with SDP or multipart content (or no Content-Type) whose
///   Content-Encoding is not `identity` is [`SdpBody::Undecodable`].
/// - Without Content-Type the body is SDP only if it starts with `v=0`.
/// - A multipart body yields its first `application/sdp` part (parts are
///   scanned in order, nested multiparts followed); `Undecodable` if no
///   part is SDP but one could not be read, or if there is no boundary.
pub fn find_sdp<'a>(
    content_type: Option<&[u8]>,
    content_encoding: Option<&[u8]>,
    body: &'a [u8],
) -> SdpBody<'a> {
    find(content_type, content_encoding, None, body, MAX_DEPTH)
}

fn find<'a>(
    content_type: Option<&[u8]>,
    content_encoding: Option<&[u8]>,
    transfer_encoding: Option<&[u8]>,
    body: &'a [u8],
    depth: u8,
) -> SdpBody<'a> {
    if body.is_empty() {
        return SdpBody::None;
    }
    let media = match content_type {
        Some(ct) => media(ct),
        None => Media::Sdp,
    };
    if let Media::Other = media {
        return SdpBody::None;
    }
    if !identity_encoding(content_encoding) || !plain_transfer_encoding(transfer_encoding) {
        return SdpBody::Undecodable;
    }
    match media {
        Media::Sdp if content_type.is_some() || body.starts_with(b"v=0") => SdpBody::Sdp(body),
        Media::Multipart(params) if depth > 0 => match scan::param(params, b"boundary") {
            Some(b) => multipart(body, unquote(b), depth - 1),
            None => SdpBody::Undecodable,
        },
        Media::Multipart(_) => SdpBody::Undecodable,
        Media::Sdp | Media::Other => SdpBody::None,
    }
}

fn unquote(v: &[u8]) -> &[u8] {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// The next delimiter line `--boundary` at or after `from`: (offset of its
/// `--`, offset just after the boundary).
fn next_delimiter(body: &[u8], from: usize, boundary: &[u8]) -> Option<(usize, usize)> {
    let mut from = from;
    while from < body.len() {
        let p = from + memmem::find(&body[from..], boundary)?;
        if p >= 2 && &body[p - 2..p] == b"--" && (p == 2 || body[p - 3] == b'\n') {
            return Some((p - 2, p + boundary.len()));
        }
        from = p + 1;
    }
    None
}

fn multipart<'a>(body: &'a [u8], boundary: &[u8], depth: u8) -> SdpBody<'a> {
    if boundary.is_empty() {
        return SdpBody::Undecodable;
    }
    let Some((_, mut after)) = next_delimiter(body, 0, boundary) else {
        return SdpBody::Undecodable;
    };
    let mut undecodable = false;
    loop {
        if body[after..].starts_with(b"--") {
            break; // close delimiter
        }
        let Some(eol) = memchr(b'\n', &body[after..]) else {
            break;
        };
        let part_start = after + eol + 1;
        let next = next_delimiter(body, part_start, boundary);
        let mut part_end = next.map_or(body.len(), |(d, _)| d);
        // The CR LF before a delimiter belongs to the delimiter.
        if next.is_some() && part_end > part_start && body[part_end - 1] == b'\n' {
            part_end -= 1;
            if part_end > part_start && body[part_end - 1] == b'\r' {
                part_end -= 1;
            }
        }
        match part(&body[part_start..part_end], depth) {
            SdpBody::Sdp(s) => return SdpBody::Sdp(s),
            SdpBody::Undecodable => undecodable = true,
            SdpBody::None => {}
        }
        match next {
            Some((_, a)) => after = a,
            None => break,
        }
    }
    if undecodable {
        SdpBody::Undecodable
    } else {
        SdpBody::None
    }
}

/// One MIME part: its headers, then a blank line, then its content.
fn part(p: &[u8], depth: u8) -> SdpBody<'_> {
    let mut content_type = None;
    let mut content_encoding = None;
    let mut transfer_encoding = None;
    let mut pos = 0;
    let content = loop {
        match scan::scan_row(p, pos) {
            Scan::Blank { next, .. } => break &p[next..],
            Scan::End => return SdpBody::None,
            Scan::Row(row) => {
                if let Some(name) = scan::row_name(p, &row) {
                    let value = scan::row_value(p, &row);
                    match HeaderId::from_name(name) {
                        HeaderId::ContentType => content_type = Some(value),
                        HeaderId::ContentEncoding => content_encoding = Some(value),
                        HeaderId::Other
                            if name.eq_ignore_ascii_case(b"content-transfer-encoding") =>
                        {
                            transfer_encoding = Some(value);
                        }
                        _ => {}
                    }
                }
                pos = row.next;
            }
        }
    };
    find(
        content_type,
        content_encoding,
        transfer_encoding,
        content,
        depth,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"--unique-boundary-1\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\n\
m=audio 1 RTP/AVP 0\r\n\
\r\n\
--unique-boundary-1\r\n\
Content-Type: application/ISUP;version=nxv3;base=etsi121\r\n\
Content-Disposition: signal;handling=optional\r\n\
\r\n\
\x01\x00\x49\x00\x00\x03\x02\x00\x07\x04\x10\x00\x33\x63\x21\x43\x00\x00\x03\r\n\
--unique-boundary-1--\r\n";

    #[test]
    fn sdp_part_of_multipart_mixed() {
        let ct = b"multipart/mixed; boundary=\"unique-boundary-1\"";
        assert_eq!(
            find_sdp(Some(ct), None, MIXED),
            SdpBody::Sdp(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n")
        );
    }

    #[test]
    fn multipart_without_boundary_is_undecodable() {
        assert_eq!(
            find_sdp(Some(b"multipart/mixed"), None, MIXED),
            SdpBody::Undecodable
        );
    }

    #[test]
    fn multipart_without_sdp_part_has_none() {
        let body = b"--b\r\nContent-Type: application/isup\r\n\r\nxx\r\n--b--\r\n";
        assert_eq!(
            find_sdp(Some(b"multipart/mixed;boundary=b"), None, body),
            SdpBody::None
        );
    }

    #[test]
    fn base64_sdp_part_is_undecodable() {
        let body = b"--b\r\nContent-Type: application/sdp\r\n\
Content-Transfer-Encoding: base64\r\n\r\ndj0w\r\n--b--\r\n";
        assert_eq!(
            find_sdp(Some(b"multipart/mixed;boundary=b"), None, body),
            SdpBody::Undecodable
        );
    }

    #[test]
    fn gzip_sdp_is_undecodable() {
        assert_eq!(
            find_sdp(Some(b"application/sdp"), Some(b"gzip"), b"\x1f\x8b\x08"),
            SdpBody::Undecodable
        );
        assert_eq!(
            find_sdp(Some(b"application/sdp"), Some(b"Identity"), b"v=0\r\n"),
            SdpBody::Sdp(b"v=0\r\n")
        );
    }

    #[test]
    fn untyped_body_is_sdp_only_with_v0() {
        assert_eq!(find_sdp(None, None, b"v=0\r\n"), SdpBody::Sdp(b"v=0\r\n"));
        assert_eq!(find_sdp(None, None, b"hello"), SdpBody::None);
    }

    #[test]
    fn other_media_type_has_none() {
        assert_eq!(
            find_sdp(Some(b"text/plain"), Some(b"gzip"), b"v=0"),
            SdpBody::None
        );
    }
}
