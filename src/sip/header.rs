//! Header names and lazy header iteration.
//!
//! In: a header name, or the header block of a scanned message. Out:
//! [`HeaderId`]s, [`Header`] rows and comma-list items, as slices of the
//! message. Names are matched case-insensitively, length first, and compact
//! forms (RFC 3261 §7.3.3 and the extensions that define one) map to the
//! full header. It never allocates and never interprets header values
//! beyond the comma split.

use super::scan::{self, CommaItems, Row, Scan};

macro_rules! header_ids {
    ($( $(#[$m:meta])* $id:ident = $name:literal $(, $compact:literal)? ; )*) => {
        /// A header this crate knows by name; everything else is
        /// [`HeaderId::Other`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum HeaderId {
            $( $(#[$m])* $id, )*
            /// Any header not listed above.
            Other,
        }

        /// Canonical spellings, indexed by `HeaderId as usize`.
        const NAMES: &[&str] = &[$($name,)*];

        /// Compact form letter → header (RFC 3261 §7.3.3 and extensions).
        #[inline]
        fn compact(b: u8) -> HeaderId {
            match b.to_ascii_lowercase() {
                $($( $compact => HeaderId::$id, )?)*
                _ => HeaderId::Other,
            }
        }

        impl HeaderId {
            /// All known headers (without [`HeaderId::Other`]), in
            /// declaration order.
            pub const ALL: &'static [HeaderId] = &[$(HeaderId::$id,)*];

            /// The compact form letter, if the header has one.
            pub fn compact_form(self) -> Option<u8> {
                match self {
                    $($( HeaderId::$id => Some($compact), )?)*
                    _ => None,
                }
            }
        }
    };
}

header_ids! {
    /// `Call-ID` (`i`).
    CallId = "Call-ID", b'i';
    /// `From` (`f`).
    From = "From", b'f';
    /// `To` (`t`).
    To = "To", b't';
    /// `Via` (`v`).
    Via = "Via", b'v';
    /// `CSeq`.
    CSeq = "CSeq";
    /// `Content-Length` (`l`).
    ContentLength = "Content-Length", b'l';
    /// `Content-Type` (`c`).
    ContentType = "Content-Type", b'c';
    /// `Content-Encoding` (`e`).
    ContentEncoding = "Content-Encoding", b'e';
    /// `Content-Disposition`.
    ContentDisposition = "Content-Disposition";
    /// `Require`.
    Require = "Require";
    /// `Proxy-Require`.
    ProxyRequire = "Proxy-Require";
    /// `Supported` (`k`).
    Supported = "Supported", b'k';
    /// `Unsupported`.
    Unsupported = "Unsupported";
    /// `Allow`.
    Allow = "Allow";
    /// `Allow-Events` (`u`).
    AllowEvents = "Allow-Events", b'u';
    /// `RSeq` (RFC 3262).
    RSeq = "RSeq";
    /// `RAck` (RFC 3262).
    RAck = "RAck";
    /// `User-Agent`.
    UserAgent = "User-Agent";
    /// `Server`.
    Server = "Server";
    /// `Warning`.
    Warning = "Warning";
    /// `Contact` (`m`).
    Contact = "Contact", b'm';
    /// `Max-Forwards`.
    MaxForwards = "Max-Forwards";
    /// `Session-ID` (RFC 7989).
    SessionId = "Session-ID";
    /// `P-Charging-Vector` (RFC 7315).
    PChargingVector = "P-Charging-Vector";
    /// `Reason` (RFC 3326).
    Reason = "Reason";
    /// `Route`.
    Route = "Route";
    /// `Record-Route`.
    RecordRoute = "Record-Route";
    /// `Path` (RFC 3327).
    Path = "Path";
    /// `Service-Route` (RFC 3608).
    ServiceRoute = "Service-Route";
    /// `P-Asserted-Identity` (RFC 3325).
    PAssertedIdentity = "P-Asserted-Identity";
    /// `P-Preferred-Identity` (RFC 3325).
    PPreferredIdentity = "P-Preferred-Identity";
    /// `P-Access-Network-Info` (RFC 7315).
    PAccessNetworkInfo = "P-Access-Network-Info";
    /// `P-Called-Party-ID` (RFC 7315).
    PCalledPartyId = "P-Called-Party-ID";
    /// `P-Asserted-Service` (RFC 6050).
    PAssertedService = "P-Asserted-Service";
    /// `P-Preferred-Service` (RFC 6050).
    PPreferredService = "P-Preferred-Service";
    /// `Security-Client` (RFC 3329).
    SecurityClient = "Security-Client";
    /// `Security-Server` (RFC 3329).
    SecurityServer = "Security-Server";
    /// `Security-Verify` (RFC 3329).
    SecurityVerify = "Security-Verify";
    /// `Subject` (`s`).
    Subject = "Subject", b's';
    /// `Event` (`o`, RFC 6665).
    Event = "Event", b'o';
    /// `Refer-To` (`r`, RFC 3515).
    ReferTo = "Refer-To", b'r';
    /// `Referred-By` (`b`, RFC 3892).
    ReferredBy = "Referred-By", b'b';
    /// `Session-Expires` (`x`, RFC 4028).
    SessionExpires = "Session-Expires", b'x';
    /// `Min-SE` (RFC 4028).
    MinSe = "Min-SE";
    /// `Identity` (`y`, RFC 8224).
    Identity = "Identity", b'y';
    /// `Accept-Contact` (`a`, RFC 3841).
    AcceptContact = "Accept-Contact", b'a';
    /// `Reject-Contact` (`j`, RFC 3841).
    RejectContact = "Reject-Contact", b'j';
    /// `Request-Disposition` (`d`, RFC 3841).
    RequestDisposition = "Request-Disposition", b'd';
    /// `Expires`.
    Expires = "Expires";
    /// `Retry-After`.
    RetryAfter = "Retry-After";
    /// `Privacy` (RFC 3323).
    Privacy = "Privacy";
    /// `Accept`.
    Accept = "Accept";
    /// `Authorization`.
    Authorization = "Authorization";
    /// `Proxy-Authorization`.
    ProxyAuthorization = "Proxy-Authorization";
    /// `WWW-Authenticate`.
    WwwAuthenticate = "WWW-Authenticate";
    /// `Proxy-Authenticate`.
    ProxyAuthenticate = "Proxy-Authenticate";
    /// `P-Served-User` (RFC 5502).
    PServedUser = "P-Served-User";
    /// `P-Visited-Network-ID` (RFC 7315).
    PVisitedNetworkId = "P-Visited-Network-ID";
    /// `X-CID` (vendor call correlation, rules.md §A.3).
    XCid = "X-CID";
    /// `X-Call-ID` (vendor call correlation, rules.md §A.3).
    XCallId = "X-Call-ID";
}

/// Number of [`HeaderId`] values, [`HeaderId::Other`] included.
pub(crate) const HEADER_COUNT: usize = HeaderId::Other as usize + 1;

/// Hash of a header name of two or more bytes, ASCII case folded. The
/// constants were chosen so that every known name gets its own bucket;
/// [`BUCKETS`] fails the build if that stops being true.
#[inline]
const fn bucket(name: &[u8]) -> usize {
    let n = name.len();
    (n.wrapping_mul(2) + fold(name[0]) * 21 + fold(name[n - 1]) * 11 + fold(name[1]) * 3) & 255
}

/// ASCII case folding for hashing only (it also maps some punctuation onto
/// control bytes; the full comparison afterwards is exact).
#[inline]
const fn fold(b: u8) -> usize {
    (b | 0x20) as usize
}

/// `BUCKETS[bucket(name)]` is the index into [`NAMES`] of the only known
/// name that can be `name` (`u8::MAX`: none).
static BUCKETS: [u8; 256] = {
    let mut t = [u8::MAX; 256];
    let mut i = 0;
    while i < NAMES.len() {
        let h = bucket(NAMES[i].as_bytes());
        assert!(t[h] == u8::MAX, "two header names share a bucket");
        t[h] = i as u8;
        i += 1;
    }
    t
};

/// Each known name, ASCII-lowercased and zero-padded to [`scan::WORDS`]
/// little-endian words (the names of more than 24 bytes, if any, never
/// match the fast path and fall back to [`scan::eq_fold`]).
static PADDED: [[u64; scan::WORDS]; NAMES.len()] = {
    let mut t = [[0u64; scan::WORDS]; NAMES.len()];
    let mut i = 0;
    while i < NAMES.len() {
        let b = NAMES[i].as_bytes();
        let mut k = 0;
        while k < b.len() && k < 8 * scan::WORDS {
            t[i][k / 8] |= (b[k].to_ascii_lowercase() as u64) << (8 * (k % 8));
            k += 1;
        }
        i += 1;
    }
    t
};

/// `MASKS[n]` keeps the first `n` bytes of [`scan::WORDS`] words.
static MASKS: [[u64; scan::WORDS]; 8 * scan::WORDS + 1] = {
    let mut t = [[0u64; scan::WORDS]; 8 * scan::WORDS + 1];
    let mut n = 0;
    while n <= 8 * scan::WORDS {
        let mut k = 0;
        while k < n {
            t[n][k / 8] |= 0xff << (8 * (k % 8));
            k += 1;
        }
        n += 1;
    }
    t
};

/// The header named by the `n` bytes at `buf[start..]`: [`HeaderId::from_name`]
/// with a branch-light comparison when 24 bytes are readable there.
#[inline]
pub(crate) fn id_at(buf: &[u8], start: usize, n: usize) -> HeaderId {
    if !(2..=8 * scan::WORDS).contains(&n) {
        return HeaderId::from_name(&buf[start..start + n]);
    }
    let Some(w) = scan::load_words(buf, start) else {
        return HeaderId::from_name(&buf[start..start + n]);
    };
    let ix = usize::from(BUCKETS[bucket(&buf[start..start + n])]);
    let (Some(known), Some(name)) = (PADDED.get(ix), NAMES.get(ix)) else {
        return HeaderId::Other;
    };
    let m = &MASKS[n];
    let diff = ((scan::lower8(w[0]) & m[0]) ^ known[0])
        | ((scan::lower8(w[1]) & m[1]) ^ known[1])
        | ((scan::lower8(w[2]) & m[2]) ^ known[2]);
    if diff == 0 && name.len() == n {
        HeaderId::ALL[ix]
    } else {
        HeaderId::Other
    }
}

impl HeaderId {
    /// The header a wire name denotes (case-insensitive; compact forms
    /// mapped), or [`HeaderId::Other`].
    #[inline]
    pub fn from_name(name: &[u8]) -> HeaderId {
        let n = name.len();
        if n == 1 {
            return compact(name[0]);
        }
        if n == 0 {
            return HeaderId::Other;
        }
        let ix = usize::from(BUCKETS[bucket(name)]);
        match NAMES.get(ix) {
            Some(known) if scan::eq_fold(name, known.as_bytes()) => HeaderId::ALL[ix],
            _ => HeaderId::Other,
        }
    }

    /// The canonical spelling (e.g. `Call-ID`, `CSeq`); empty for
    /// [`HeaderId::Other`].
    pub fn canonical_name(self) -> &'static str {
        NAMES.get(self as usize).copied().unwrap_or("")
    }
}

/// One header row of a message, as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// Which header this is (compact forms mapped).
    pub id: HeaderId,
    /// The name as written on the wire (e.g. `i`, `call-id`).
    pub name: &'a [u8],
    /// The value, trimmed of leading and trailing LWS. It may contain
    /// folded line breaks (CR LF / LF followed by SP or HTAB).
    pub value: &'a [u8],
}

/// Header rows of a header block, in wire order. Malformed rows (no colon,
/// a name that is not a token) are skipped; the scanner reports them as
/// [`bad_header_line`](super::SipAnomaly::BadHeaderLine).
#[derive(Clone, Debug)]
pub struct Headers<'a> {
    /// The header block: header rows only, ending before the blank line.
    block: &'a [u8],
    pos: usize,
    /// Stop after the row that starts at this offset.
    last: usize,
}

impl<'a> Headers<'a> {
    /// Rows of `block` from offset `first` up to and including the row that
    /// starts at `last`.
    pub(crate) fn new(block: &'a [u8], first: usize, last: usize) -> Self {
        Headers {
            block,
            pos: first,
            last,
        }
    }

    /// No rows at all.
    pub(crate) fn empty() -> Self {
        Headers {
            block: &[],
            pos: 0,
            last: 0,
        }
    }
}

/// Classifies a row: its header id and name, or `None` when malformed.
#[inline]
pub(crate) fn classify<'a>(buf: &'a [u8], row: &Row) -> Option<(HeaderId, &'a [u8])> {
    let name = scan::row_name(buf, row)?;
    let id = id_at(buf, row.start, name.len());
    if id == HeaderId::Other && !scan::is_token(name) {
        return None;
    }
    Some((id, name))
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        while self.pos <= self.last {
            let Scan::Row(row) = scan::scan_row(self.block, self.pos) else {
                self.pos = usize::MAX;
                return None;
            };
            self.pos = if row.next > row.start {
                row.next
            } else {
                usize::MAX
            };
            if let Some((id, name)) = classify(self.block, &row) {
                return Some(Header {
                    id,
                    name,
                    value: scan::row_value(self.block, &row),
                });
            }
        }
        None
    }
}

/// The items of one list header across all its rows (RFC 3261 §7.3.1):
/// comma-split outside quotes and `<>`, trimmed, empty items dropped.
#[derive(Clone, Debug)]
pub struct ListItems<'a> {
    /// Items of the current row.
    items: CommaItems<'a>,
    /// The rows still to read (filtered by `id`).
    rows: Headers<'a>,
    id: HeaderId,
    /// The first row of `rows` was already split into `items`.
    skip_first: bool,
}

impl<'a> ListItems<'a> {
    /// Items of the rows of `id` in `rows`, the first row's value being
    /// `first` when known.
    pub(crate) fn new(first: Option<&'a [u8]>, rows: Headers<'a>, id: HeaderId) -> Self {
        ListItems {
            items: CommaItems::new(first.unwrap_or_default()),
            rows,
            id,
            skip_first: first.is_some(),
        }
    }
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if let Some(item) = self.items.next() {
                return Some(item);
            }
            if std::mem::take(&mut self.skip_first) {
                self.rows.next()?;
            }
            let id = self.id;
            let h = self.rows.by_ref().find(|h| h.id == id)?;
            self.items = CommaItems::new(h.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_name_maps_back() {
        for &id in HeaderId::ALL {
            let name = id.canonical_name();
            assert_eq!(HeaderId::from_name(name.as_bytes()), id, "{name}");
            let lower = name.to_ascii_lowercase();
            assert_eq!(HeaderId::from_name(lower.as_bytes()), id, "{name}");
        }
    }

    #[test]
    fn compact_forms_map_to_full_headers() {
        let pairs: &[(u8, HeaderId)] = &[
            (b'i', HeaderId::CallId),
            (b'f', HeaderId::From),
            (b't', HeaderId::To),
            (b'v', HeaderId::Via),
            (b'm', HeaderId::Contact),
            (b'l', HeaderId::ContentLength),
            (b'c', HeaderId::ContentType),
            (b'k', HeaderId::Supported),
            (b's', HeaderId::Subject),
            (b'e', HeaderId::ContentEncoding),
            (b'o', HeaderId::Event),
            (b'u', HeaderId::AllowEvents),
            (b'r', HeaderId::ReferTo),
            (b'b', HeaderId::ReferredBy),
            (b'x', HeaderId::SessionExpires),
            (b'y', HeaderId::Identity),
            (b'a', HeaderId::AcceptContact),
            (b'j', HeaderId::RejectContact),
            (b'd', HeaderId::RequestDisposition),
        ];
        for &(c, id) in pairs {
            assert_eq!(HeaderId::from_name(&[c]), id);
            assert_eq!(HeaderId::from_name(&[c.to_ascii_uppercase()]), id);
            assert_eq!(id.compact_form(), Some(c));
        }
        assert_eq!(HeaderId::from_name(b"z"), HeaderId::Other);
    }

    #[test]
    fn id_at_agrees_with_from_name() {
        let mut names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
        names.extend(
            [
                "X-Foo",
                "Call-IE",
                "Call-ID2",
                "Via",
                "vIa",
                "CALL\rID",
                "Cal1-ID",
                "P-Access-Network-Inf0",
            ]
            .map(String::from),
        );
        for name in names {
            for case in [
                name.clone(),
                name.to_ascii_uppercase(),
                name.to_ascii_lowercase(),
            ] {
                let padded = format!("{case}: value with enough bytes after it");
                let b = padded.as_bytes();
                assert_eq!(
                    id_at(b, 0, case.len()),
                    HeaderId::from_name(case.as_bytes()),
                    "{case}"
                );
                assert_eq!(
                    id_at(case.as_bytes(), 0, case.len()),
                    HeaderId::from_name(case.as_bytes())
                );
            }
        }
    }

    #[test]
    fn unknown_and_near_miss_names_are_other() {
        assert_eq!(HeaderId::from_name(b"X-Custom"), HeaderId::Other);
        assert_eq!(HeaderId::from_name(b"Call-IDs"), HeaderId::Other);
        assert_eq!(HeaderId::from_name(b""), HeaderId::Other);
        assert_eq!(HeaderId::Other.canonical_name(), "");
    }
}
