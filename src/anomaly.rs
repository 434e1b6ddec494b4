//! Protocol anomalies found in the traffic: data, never errors.
//!
//! Every anomaly has a stable snake_case id (written to `anomalies.csv`, the
//! `anomaly` dimension of `summary.csv`, and documented in the README). Ids are
//! never renamed; new ones may be added.

use std::fmt;

/// An anomaly kind below the SIP layer (SIP-level kinds come from
/// [`crate::sip::SipAnomaly`] and are written with their own ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum PacketAnomaly {
    /// The captured bytes end inside a header (caplen too small, or a header
    /// length field points past the captured data).
    TruncatedPacket,
    /// The link type is not one sipaudit decodes.
    UnsupportedLinktype,
    /// A link, network or transport header is malformed.
    MalformedHeader,
    /// Conflicting or inconsistent IP fragments (etherparse `IpDefragError`).
    DefragError,
    /// IP fragments whose datagram never completed (timeout, end of file, or
    /// evicted by the pending-fragment caps).
    DefragIncomplete,
    /// A UDP payload that starts like SIP but whose start line is invalid.
    SipStartInvalid,
    /// A TCP connection carries TLS (port 5061 or a ClientHello/ServerHello):
    /// reported once per connection; its packets are `other_packets`.
    TlsEncrypted,
    /// A HEP packet with a malformed header or chunk (`packet::hep`).
    HepMalformed,
    /// A HEP packet cut short (by the capture, a TCP gap, or the end of a
    /// stream).
    HepTruncated,
    /// Bytes of a HEP TCP stream skipped to find the next HEP3 header.
    HepResync,
    /// A HEP feature not decoded (compressed payload).
    HepUnsupported,
    /// A HEP capture time more than 1 s away from the frame's time.
    HepTimeSkew,
}

impl PacketAnomaly {
    /// The stable id written to the reports.
    pub fn id(self) -> &'static str {
        match self {
            PacketAnomaly::TruncatedPacket => "truncated_packet",
            PacketAnomaly::UnsupportedLinktype => "unsupported_linktype",
            PacketAnomaly::MalformedHeader => "malformed_header",
            PacketAnomaly::DefragError => "defrag_error",
            PacketAnomaly::DefragIncomplete => "defrag_incomplete",
            PacketAnomaly::SipStartInvalid => "sip_parse_error",
            PacketAnomaly::TlsEncrypted => "tls_encrypted",
            PacketAnomaly::HepMalformed => "hep_malformed",
            PacketAnomaly::HepTruncated => "hep_truncated",
            PacketAnomaly::HepResync => "hep_resync",
            PacketAnomaly::HepUnsupported => "hep_unsupported",
            PacketAnomaly::HepTimeSkew => "hep_time_skew",
        }
    }
}

impl fmt::Display for PacketAnomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}
