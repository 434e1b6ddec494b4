//! What the scanner noticed about a message that it could still read.
//!
//! In: nothing but the scanner's findings. Out: [`SipAnomaly`] values with
//! stable snake_case ids (they are `anomalies.csv` `kind`s and must never be
//! renamed), kept per message as a bitset. It never decides how severe an
//! anomaly is.

macro_rules! anomalies {
    ($( $(#[$m:meta])* $v:ident = $id:literal, $text:literal; )*) => {
        /// A protocol oddity in a SIP message that was nevertheless parsed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum SipAnomaly {
            $( $(#[$m])* $v, )*
        }

        impl SipAnomaly {
            /// Every anomaly, in declaration order.
            pub const ALL: &'static [SipAnomaly] = &[$(SipAnomaly::$v,)*];

            /// The stable snake_case id (the `kind` in `anomalies.csv`).
            pub fn id(&self) -> &'static str {
                match self {
                    $( SipAnomaly::$v => $id, )*
                }
            }

            /// A one-line human description (the `detail` of an
            /// `anomalies.csv` row when there is nothing more specific).
            pub fn description(&self) -> &'static str {
                match self {
                    $( SipAnomaly::$v => $text, )*
                }
            }
        }

        impl std::fmt::Display for SipAnomaly {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.description())
            }
        }
    };
}

anomalies! {
    /// Content-Length disagrees with the bytes present after the header
    /// section of a datagram (more, or fewer).
    ContentLengthMismatch = "content_length_mismatch", "Content-Length differs from the body bytes present";
    /// A stream-framed message has no Content-Length (RFC 3261 §18.3:
    /// mandatory on streams); its body is taken as empty.
    MissingContentLength = "missing_content_length", "no Content-Length on a stream transport; body taken as empty";
    /// The header section has no terminating empty line; the headers run
    /// to the end of the datagram.
    MissingHeaderEnd = "missing_header_end", "no empty line after the headers";
    /// A header line with no colon or a name that is not a token; it was
    /// skipped.
    BadHeaderLine = "bad_header_line", "header line without a colon or with an invalid name (skipped)";
    /// No (non-empty) Call-ID.
    MissingCallId = "missing_call_id", "no Call-ID";
    /// No CSeq.
    MissingCseq = "missing_cseq", "no CSeq";
    /// A CSeq that is not `number method`.
    BadCseq = "bad_cseq", "CSeq is not 'number method'";
    /// No From.
    MissingFrom = "missing_from", "no From";
    /// No To.
    MissingTo = "missing_to", "no To";
    /// No Via.
    MissingVia = "missing_via", "no Via";
    /// A Content-Length that is not a decimal number; it was ignored.
    BadContentLength = "bad_content_length", "Content-Length is not a decimal number (ignored)";
    /// A request whose CSeq method differs from its request-line method
    /// (RFC 3261 §8.1.1.5).
    CseqMethodMismatch = "cseq_method_mismatch", "CSeq method differs from the request method";
}

/// A set of [`SipAnomaly`] values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AnomalySet(u32);

impl AnomalySet {
    /// Adds `a`.
    #[inline]
    pub(crate) fn insert(&mut self, a: SipAnomaly) {
        self.0 |= 1 << (a as u32);
    }

    /// Whether `a` is in the set.
    #[inline]
    pub(crate) fn contains(self, a: SipAnomaly) -> bool {
        self.0 & (1 << (a as u32)) != 0
    }

    /// The members, in declaration order.
    pub(crate) fn iter(self) -> impl Iterator<Item = SipAnomaly> {
        SipAnomaly::ALL
            .iter()
            .copied()
            .filter(move |&a| self.contains(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for a in SipAnomaly::ALL {
            let id = a.id();
            assert!(seen.insert(id), "duplicate id {id}");
            assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert!(SipAnomaly::ALL.len() <= 32, "AnomalySet is a u32");
    }

    #[test]
    fn set_keeps_declaration_order() {
        let mut s = AnomalySet::default();
        s.insert(SipAnomaly::MissingVia);
        s.insert(SipAnomaly::ContentLengthMismatch);
        assert!(s.contains(SipAnomaly::MissingVia));
        assert!(!s.contains(SipAnomaly::MissingTo));
        let v: Vec<_> = s.iter().collect();
        assert_eq!(
            v,
            [SipAnomaly::ContentLengthMismatch, SipAnomaly::MissingVia]
        );
    }
}
