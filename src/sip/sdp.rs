//! SDP precondition attributes (RFC 3312 §5, rules.md §B.3).
//!
//! In: the bytes of one SDP body (already located and decodable; see
//! [`find_sdp`](super::body::find_sdp)). Out: the `a=des`, `a=curr` and
//! `a=conf` lines with the index of the m-line they belong to, and the
//! precondition [`Demand`] of the body. Pure functions over `&[u8]`: they
//! never allocate, never decide whether the SDP is an offer or an answer
//! (that needs the dialog), and skip lines that do not fit the RFC 3312
//! grammar instead of failing.

use memchr::memchr;

use super::scan::trim_lws;

/// The precondition demand of an SDP offer (rules.md §B.3).
///
/// Order for comparisons: `Mandatory > Optional > NoneOnly > Absent`;
/// `Unknown` is outside that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Demand {
    /// At least one `a=des` with strength `mandatory`.
    Mandatory,
    /// No mandatory strength, at least one `optional`.
    Optional,
    /// `a=des` lines present, and every strength is `none`.
    NoneOnly,
    /// No precondition demand: no `a=des` line, no SDP, no offer.
    Absent,
    /// The body could not be decoded (Content-Encoding, transfer encoding,
    /// a multipart without boundary).
    Unknown,
}

impl Demand {
    /// The report spelling: `mandatory`, `optional`, `none`, `absent` or
    /// `unknown` (contract.md `precondition`).
    pub fn as_str(self) -> &'static str {
        match self {
            Demand::Mandatory => "mandatory",
            Demand::Optional => "optional",
            Demand::NoneOnly => "none",
            Demand::Absent => "absent",
            Demand::Unknown => "unknown",
        }
    }
}

/// Which precondition attribute a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PreconditionKind {
    /// `a=des`: desired status.
    Des,
    /// `a=curr`: current status.
    Curr,
    /// `a=conf`: confirmed status.
    Conf,
}

/// The strength tag of an `a=des` line (RFC 3312 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strength {
    /// `mandatory`.
    Mandatory,
    /// `optional`.
    Optional,
    /// `none`.
    None,
    /// `failure`: a party reports that the precondition failed.
    Failure,
    /// `unknown`: a party does not know the precondition type.
    Unknown,
}

impl Strength {
    /// Parses a strength tag, case-insensitively.
    pub fn parse(tag: &[u8]) -> Option<Strength> {
        Some(match tag.len() {
            4 if tag.eq_ignore_ascii_case(b"none") => Strength::None,
            7 if tag.eq_ignore_ascii_case(b"failure") => Strength::Failure,
            7 if tag.eq_ignore_ascii_case(b"unknown") => Strength::Unknown,
            8 if tag.eq_ignore_ascii_case(b"optional") => Strength::Optional,
            9 if tag.eq_ignore_ascii_case(b"mandatory") => Strength::Mandatory,
            _ => return None,
        })
    }
}

/// One `a=des`, `a=curr` or `a=conf` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreconditionLine<'a> {
    /// `None` at session level (before the first `m=`), else the 0-based
    /// index of the m-line the attribute follows.
    pub media: Option<usize>,
    /// Which attribute.
    pub kind: PreconditionKind,
    /// The precondition type as written (`qos`, `sec`, `conn`, ...).
    pub precondition_type: &'a [u8],
    /// The strength (`a=des` only).
    pub strength: Option<Strength>,
    /// The status type as written (`e2e`, `local`, `remote`).
    pub status: &'a [u8],
    /// The direction tag as written (`none`, `send`, `recv`, `sendrecv`).
    pub direction: &'a [u8],
}

/// Iterator over the precondition lines of an SDP body; see
/// [`precondition_lines`].
#[derive(Clone, Debug)]
pub struct PreconditionLines<'a> {
    rest: &'a [u8],
    media: Option<usize>,
}

/// The `a=des`, `a=curr` and `a=conf` lines of `sdp`, in order, each with
/// its m-line index. Attribute names and tokens are matched
/// case-insensitively; SP/HTAB runs separate tokens; lines with too few
/// tokens or an unknown `a=des` strength are skipped.
pub fn precondition_lines(sdp: &[u8]) -> PreconditionLines<'_> {
    PreconditionLines {
        rest: sdp,
        media: None,
    }
}

/// Splits off the next SP/HTAB-separated token of `s`.
fn token<'a>(s: &mut &'a [u8]) -> Option<&'a [u8]> {
    let t = *s;
    let a = t.iter().position(|&b| b != b' ' && b != b'\t')?;
    let t = &t[a..];
    let z = t
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(t.len());
    *s = &t[z..];
    Some(&t[..z])
}

fn parse_line(
    value: &[u8],
    kind: PreconditionKind,
    media: Option<usize>,
) -> Option<PreconditionLine<'_>> {
    let mut v = value;
    let precondition_type = token(&mut v)?;
    let strength = match kind {
        PreconditionKind::Des => Some(Strength::parse(token(&mut v)?)?),
        PreconditionKind::Curr | PreconditionKind::Conf => None,
    };
    let status = token(&mut v)?;
    let direction = token(&mut v)?;
    Some(PreconditionLine {
        media,
        kind,
        precondition_type,
        strength,
        status,
        direction,
    })
}

impl<'a> Iterator for PreconditionLines<'a> {
    type Item = PreconditionLine<'a>;

    fn next(&mut self) -> Option<PreconditionLine<'a>> {
        while !self.rest.is_empty() {
            let (line, rest) = match memchr(b'\n', self.rest) {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &self.rest[self.rest.len()..]),
            };
            self.rest = rest;
            if line.len() < 2 || line[1] != b'=' {
                continue;
            }
            match line[0] {
                b'm' | b'M' => {
                    self.media = Some(self.media.map_or(0, |m| m + 1));
                }
                b'a' | b'A' => {
                    let attr = &line[2..];
                    let kind = if attr.len() > 4 && attr[..4].eq_ignore_ascii_case(b"des:") {
                        (PreconditionKind::Des, &attr[4..])
                    } else if attr.len() > 5 && attr[..5].eq_ignore_ascii_case(b"curr:") {
                        (PreconditionKind::Curr, &attr[5..])
                    } else if attr.len() > 5 && attr[..5].eq_ignore_ascii_case(b"conf:") {
                        (PreconditionKind::Conf, &attr[5..])
                    } else {
                        continue;
                    };
                    if let Some(p) = parse_line(trim_lws(kind.1), kind.0, self.media) {
                        return Some(p);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// The precondition [`Demand`] of an SDP body: `Mandatory` if any `a=des`
/// strength (session or media level) is mandatory, else `Optional` if any
/// is optional, else `NoneOnly` if there were `a=des` lines with strength
/// `none`, else `Absent`. `failure` and `unknown` strengths are evidence,
/// not demand (rules.md §B.3), and count as no line at all.
pub fn precondition_demand(sdp: &[u8]) -> Demand {
    let mut d = DemandOf::default();
    for strength in des_strengths(sdp) {
        if strength == Strength::Mandatory {
            return Demand::Mandatory;
        }
        d.add(strength);
    }
    d.demand()
}

/// [`precondition_demand`] folded over the strengths of `a=des` lines one
/// at a time, for a caller that walks [`precondition_lines`] anyway (a
/// record does: the same lines, `tests::fast_demand_agrees_with_line_walk`).
#[derive(Clone, Copy, Debug, Default)]
pub struct DemandOf {
    mandatory: bool,
    optional: bool,
    none: bool,
}

impl DemandOf {
    /// Counts the strength of one `a=des` line.
    pub fn add(&mut self, s: Strength) {
        match s {
            Strength::Mandatory => self.mandatory = true,
            Strength::Optional => self.optional = true,
            Strength::None => self.none = true,
            Strength::Failure | Strength::Unknown => {}
        }
    }

    /// The demand of the strengths counted.
    pub fn demand(&self) -> Demand {
        if self.mandatory {
            Demand::Mandatory
        } else if self.optional {
            Demand::Optional
        } else if self.none {
            Demand::NoneOnly
        } else {
            Demand::Absent
        }
    }
}

/// The strengths of the well-formed `a=des` lines, found without walking
/// every line: each `d`/`D` is a candidate, checked for `a=` at the start
/// of its line and `es:` after it. Same lines as [`precondition_lines`]
/// with [`PreconditionKind::Des`].
fn des_strengths(sdp: &[u8]) -> impl Iterator<Item = Strength> + '_ {
    memchr::memchr2_iter(b'd', b'D', sdp).filter_map(move |p| {
        let at_line_start = p >= 2
            && sdp[p - 1] == b'='
            && matches!(sdp[p - 2], b'a' | b'A')
            && (p == 2 || sdp[p - 3] == b'\n');
        let rest = sdp.get(p + 1..)?;
        if !at_line_start || rest.len() < 3 || !rest[..3].eq_ignore_ascii_case(b"es:") {
            return None;
        }
        let rest = &rest[3..];
        let line = match memchr(b'\n', rest) {
            Some(e) => &rest[..e],
            None => rest,
        };
        parse_line(trim_lws(line), PreconditionKind::Des, None)?.strength
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &[u8] = b"v=0\r\n\
o=- 1 1 IN IP6 2001:db8::1\r\n\
s=-\r\n\
c=IN IP6 2001:db8::1\r\n\
t=0 0\r\n\
a=des:qos optional e2e send\r\n\
m=audio 49152 RTP/AVP 97\r\n\
a=curr:qos local none\r\n\
a=curr:qos remote none\r\n\
a=des:qos mandatory local sendrecv\r\n\
a=des:qos none remote sendrecv\r\n\
m=video 49154 RTP/AVP 98\r\n\
a=CONF:qos remote sendrecv\r\n";

    #[test]
    fn lines_carry_their_m_line_index() {
        let v: Vec<_> = precondition_lines(SDP)
            .map(|l| (l.media, l.kind, l.strength, l.status))
            .collect();
        assert_eq!(
            v,
            [
                (
                    None,
                    PreconditionKind::Des,
                    Some(Strength::Optional),
                    &b"e2e"[..]
                ),
                (Some(0), PreconditionKind::Curr, None, b"local"),
                (Some(0), PreconditionKind::Curr, None, b"remote"),
                (
                    Some(0),
                    PreconditionKind::Des,
                    Some(Strength::Mandatory),
                    b"local"
                ),
                (
                    Some(0),
                    PreconditionKind::Des,
                    Some(Strength::None),
                    b"remote"
                ),
                (Some(1), PreconditionKind::Conf, None, b"remote"),
            ]
        );
    }

    #[test]
    fn mandatory_wins() {
        assert_eq!(precondition_demand(SDP), Demand::Mandatory);
    }

    #[test]
    fn optional_beats_none() {
        let sdp = b"v=0\nm=audio 1 RTP/AVP 0\na=des:qos none local sendrecv\n\
a=des:qos OPTIONAL remote sendrecv\n";
        assert_eq!(precondition_demand(sdp), Demand::Optional);
    }

    #[test]
    fn none_only() {
        let sdp = b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=des:qos none local sendrecv\r\n\
a=des:qos none remote sendrecv\r\n";
        assert_eq!(precondition_demand(sdp), Demand::NoneOnly);
    }

    #[test]
    fn curr_without_des_is_absent() {
        let sdp = b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=curr:qos local none\r\n";
        assert_eq!(precondition_demand(sdp), Demand::Absent);
    }

    #[test]
    fn failure_strength_is_evidence_not_demand() {
        let sdp = b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=des:qos failure e2e sendrecv\r\n";
        assert_eq!(precondition_demand(sdp), Demand::Absent);
        assert_eq!(precondition_lines(sdp).count(), 1);
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let sdp = b"a=des:qos mandatory local\r\na=des:qos strong e2e send\r\na=des:\r\n";
        assert_eq!(precondition_lines(sdp).count(), 0);
        assert_eq!(precondition_demand(sdp), Demand::Absent);
    }

    #[test]
    fn leading_whitespace_is_not_an_attribute_line() {
        let sdp = b"v=0\r\n a=des:qos mandatory e2e sendrecv\r\n";
        assert_eq!(precondition_lines(sdp).count(), 0);
        assert_eq!(precondition_demand(sdp), Demand::Absent);
    }

    #[test]
    fn uppercase_attribute_and_tokens() {
        let sdp = b"m=audio 1 RTP/AVP 0\nA=DES:QOS MANDATORY LOCAL SENDRECV";
        assert_eq!(precondition_demand(sdp), Demand::Mandatory);
        assert_eq!(
            precondition_lines(sdp).next().map(|l| l.media),
            Some(Some(0))
        );
    }

    /// The demand from the `d`-candidate scan, recomputed from
    /// [`precondition_lines`].
    fn demand_by_lines(sdp: &[u8]) -> Demand {
        let des: Vec<_> = precondition_lines(sdp)
            .filter(|l| l.kind == PreconditionKind::Des)
            .filter_map(|l| l.strength)
            .collect();
        if des.contains(&Strength::Mandatory) {
            Demand::Mandatory
        } else if des.contains(&Strength::Optional) {
            Demand::Optional
        } else if des.contains(&Strength::None) {
            Demand::NoneOnly
        } else {
            Demand::Absent
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_demand_agrees_with_line_walk(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just("a=des:qos mandatory e2e sendrecv"),
                    proptest::strategy::Just("a=DES:qos optional local send"),
                    proptest::strategy::Just("a=des:qos none remote recv"),
                    proptest::strategy::Just("a=des:qos failure e2e sendrecv"),
                    proptest::strategy::Just("a=des:qos bogus e2e sendrecv"),
                    proptest::strategy::Just("a=des:qos mandatory"),
                    proptest::strategy::Just(" a=des:qos mandatory e2e sendrecv"),
                    proptest::strategy::Just("xa=des:qos mandatory e2e sendrecv"),
                    proptest::strategy::Just("a=curr:qos local none"),
                    proptest::strategy::Just("m=audio 1 RTP/AVP 0"),
                    proptest::strategy::Just("a=sendrecv"),
                    proptest::strategy::Just("d=des:"),
                ],
                0..8,
            ),
            crlf in proptest::bool::ANY,
        ) {
            let sdp = lines.join(if crlf { "\r\n" } else { "\n" });
            proptest::prop_assert_eq!(precondition_demand(sdp.as_bytes()), demand_by_lines(sdp.as_bytes()));
        }
    }

    #[test]
    fn as_str_spellings() {
        let all = [
            (Demand::Mandatory, "mandatory"),
            (Demand::Optional, "optional"),
            (Demand::NoneOnly, "none"),
            (Demand::Absent, "absent"),
            (Demand::Unknown, "unknown"),
        ];
        for (d, s) in all {
            assert_eq!(d.as_str(), s);
        }
    }
}
