//! Message-level tests of the scanner, on literal wire bytes: one behaviour
//! per test.

use super::*;

const IMS_INVITE: &[u8] = include_bytes!("../../benches/data/ims_invite.txt");
const OK200: &[u8] = include_bytes!("../../benches/data/ok200.txt");

fn dgram(buf: &[u8]) -> Message<'_> {
    parse_message(buf, Framing::Datagram).expect("a SIP message")
}

fn list<'a>(m: &Message<'a>, id: HeaderId) -> Vec<&'a [u8]> {
    m.list(id).collect()
}

fn anomalies(m: &Message<'_>) -> Vec<&'static str> {
    m.anomalies().map(|a| a.id()).collect()
}

#[test]
fn ims_invite_fields() {
    let m = dgram(IMS_INVITE);
    assert!(m.is_request());
    assert_eq!(m.method(), Some(&b"INVITE"[..]));
    assert_eq!(m.status(), None);
    assert_eq!(
        m.request_uri(),
        Some(&b"tel:+15551234567;phone-context=ims.mnc001.mcc001.3gppnetwork.org"[..])
    );
    assert_eq!(m.call_id(), Some(&b"a84b4c76e66710@2001:db8:a::9"[..]));
    assert_eq!(m.cseq(), Some((1, &b"INVITE"[..])));
    assert_eq!(m.from_tag(), Some(&b"7a3f1e90"[..]));
    assert_eq!(m.to_tag(), None);
    assert_eq!(m.top_via_branch(), Some(&b"z9hG4bK3f1c8a2e7d"[..]));
    assert_eq!(m.via_count(), 1);
    assert_eq!(
        list(&m, HeaderId::Require),
        [&b"precondition"[..], b"sec-agree"]
    );
    assert_eq!(m.precondition(), Demand::Mandatory);
    assert_eq!(m.content_length(), Some(m.body().len()));
    assert_eq!(m.len(), IMS_INVITE.len());
    assert_eq!(anomalies(&m), Vec::<&str>::new());
}

#[test]
fn ok200_fields() {
    let m = dgram(OK200);
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.method(), Some(&b"INVITE"[..]));
    assert_eq!(m.to_tag(), Some(&b"93810874"[..]));
    assert_eq!(m.header(HeaderId::Server), Some(&b"Acme-AS/2.3"[..]));
    assert_eq!(m.precondition(), Demand::Absent);
    assert!(m.body().is_empty());
    assert_eq!(anomalies(&m), Vec::<&str>::new());
}

#[test]
fn compact_headers_i_k_l_v() {
    let buf = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKc1\r\n\
f: <sip:alice@example.com>;tag=a1\r\n\
t: <sip:bob@example.com>\r\n\
i: compact-1@192.0.2.1\r\n\
CSeq: 7 OPTIONS\r\n\
k: 100rel, Timer\r\n\
l: 4\r\n\
\r\n\
abcd";
    let m = dgram(buf);
    assert_eq!(m.call_id(), Some(&b"compact-1@192.0.2.1"[..]));
    assert_eq!(m.top_via_branch(), Some(&b"z9hG4bKc1"[..]));
    assert_eq!(m.from_tag(), Some(&b"a1"[..]));
    assert_eq!(list(&m, HeaderId::Supported), [&b"100rel"[..], b"Timer"]);
    assert_eq!(m.content_length(), Some(4));
    assert_eq!(m.body(), b"abcd");
    let names: Vec<_> = m.headers().map(|h| (h.id, h.name)).collect();
    assert_eq!(names[0], (HeaderId::Via, &b"v"[..]));
    assert_eq!(anomalies(&m), Vec::<&str>::new());
}

#[test]
fn tel_request_uri() {
    let m = dgram(b"INVITE tel:+4930123456 SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n");
    assert_eq!(
        m.start(),
        StartLine::Request {
            method: b"INVITE",
            uri: b"tel:+4930123456"
        }
    );
}

#[test]
fn sips_request_uri() {
    let m = dgram(b"BYE sips:bob@example.com;transport=tls SIP/2.0\r\n\r\n");
    assert_eq!(
        m.request_uri(),
        Some(&b"sips:bob@example.com;transport=tls"[..])
    );
}

#[test]
fn bracketed_ipv6_hosts() {
    let buf = b"MESSAGE sip:[2001:db8::1]:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::2]:5062;branch=z9hG4bK6;received=2001:db8::99\r\n\
From: <sip:alice@[2001:db8::2]:5062>;tag=f6\r\n\
To: sip:bob@[2001:db8::1]\r\n\r\n";
    let m = dgram(buf);
    assert_eq!(m.request_uri(), Some(&b"sip:[2001:db8::1]:5060"[..]));
    assert_eq!(m.top_via_branch(), Some(&b"z9hG4bK6"[..]));
    assert_eq!(m.from_uri(), Some(&b"sip:alice@[2001:db8::2]:5062"[..]));
    assert_eq!(m.to_uri(), Some(&b"sip:bob@[2001:db8::1]"[..]));
    assert_eq!(m.from_tag(), Some(&b"f6"[..]));
}

#[test]
fn folded_lines_belong_to_the_value() {
    let buf = b"INVITE sip:b@example.com SIP/2.0\r\n\
Subject: I know you're there,\r\n\
\x20  pick up the phone\r\n\
Supported: 100rel,\r\n\
\ttimer\r\n\
Call-ID: fold-1\r\n\r\n";
    let m = dgram(buf);
    assert_eq!(
        m.header(HeaderId::Subject),
        Some(&b"I know you're there,\r\n   pick up the phone"[..])
    );
    assert_eq!(list(&m, HeaderId::Supported), [&b"100rel"[..], b"timer"]);
    assert_eq!(m.call_id(), Some(&b"fold-1"[..]));
}

#[test]
fn lf_only_line_ends() {
    let buf = b"SIP/2.0 180 Ringing\n\
Via: SIP/2.0/UDP h;branch=z9hG4bKlf\n\
To: <sip:b@h>;tag=t1\n\
Call-ID: lf-only\n\
CSeq: 2 INVITE\n\
Content-Length: 3\n\
\n\
abc";
    let m = dgram(buf);
    assert_eq!(m.status(), Some(180));
    assert_eq!(m.call_id(), Some(&b"lf-only"[..]));
    assert_eq!(m.to_tag(), Some(&b"t1"[..]));
    assert_eq!(m.body(), b"abc");
    assert!(!m.has_anomaly(SipAnomaly::ContentLengthMismatch));
}

#[test]
fn space_before_colon() {
    let m = dgram(b"ACK sip:b@h SIP/2.0\r\nCall-ID  \t: sp-1\r\nCSeq : 1 ACK\r\n\r\n");
    assert_eq!(m.call_id(), Some(&b"sp-1"[..]));
    assert_eq!(m.cseq(), Some((1, &b"ACK"[..])));
}

#[test]
fn require_rows_commas_trailing_comma_and_odd_case() {
    let buf = b"INVITE sip:b@h SIP/2.0\r\n\
Require: 100Rel,\r\n\
Supported: timer\r\n\
require: precondition , ,\r\n\
REQUIRE: Precondition\r\n\r\n";
    let m = dgram(buf);
    assert_eq!(
        list(&m, HeaderId::Require),
        [&b"100Rel"[..], b"precondition", b"Precondition"]
    );
    let mut out = String::new();
    write_tag_list(&mut out, m.list(HeaderId::Require), Case::Lower);
    assert_eq!(out, "100rel;precondition");
    assert_eq!(m.header(HeaderId::Require), Some(&b"100Rel,"[..]));
    let rows: Vec<_> = m.values(HeaderId::Require).collect();
    assert_eq!(rows.len(), 3);
}

#[test]
fn empty_supported_has_no_items() {
    let m = dgram(b"OPTIONS sip:b@h SIP/2.0\r\nSupported:\r\nAllow: invite, Ack\r\n\r\n");
    assert_eq!(m.header(HeaderId::Supported), Some(&b""[..]));
    assert_eq!(m.list(HeaderId::Supported).count(), 0);
    let mut out = String::new();
    write_tag_list(&mut out, m.list(HeaderId::Allow), Case::Upper);
    assert_eq!(out, "INVITE;ACK");
}

#[test]
fn quoted_display_names_with_commas() {
    let buf = b"INVITE sip:b@h SIP/2.0\r\n\
From: \"Doe, John <boss>\" <sip:john@h;lr>;TAG=j0hn\r\n\
To: \"Smith, Ann\" <sip:ann@h>\r\n\
Contact: \"A, B\" <sip:ab@h>, <sip:c@h;x=\"1,2\">\r\n\r\n";
    let m = dgram(buf);
    assert_eq!(m.from_uri(), Some(&b"sip:john@h;lr"[..]));
    assert_eq!(m.from_tag(), Some(&b"j0hn"[..]));
    assert_eq!(m.to_uri(), Some(&b"sip:ann@h"[..]));
    assert_eq!(
        list(&m, HeaderId::Contact),
        [&b"\"A, B\" <sip:ab@h>"[..], b"<sip:c@h;x=\"1,2\">"]
    );
}

#[test]
fn tag_inside_uri_brackets_is_not_the_header_tag() {
    let m = dgram(
        b"INVITE sip:b@h SIP/2.0\r\nFrom: <sip:a@h;tag=uri>;tag=hdr\r\nTo: <sip:b@h;tag=x>\r\n\r\n",
    );
    assert_eq!(m.from_tag(), Some(&b"hdr"[..]));
    assert_eq!(m.to_tag(), None);
}

#[test]
fn via_rows_and_commas_are_counted() {
    let buf = b"SIP/2.0 100 Trying\r\n\
Via: SIP/2.0/UDP p1;branch=z9hG4bKtop, SIP/2.0/UDP p2;branch=z9hG4bKmid\r\n\
CSeq: 1 INVITE\r\n\
v: SIP/2.0/TCP [2001:db8::5];received=192.0.2.9;branch=z9hG4bKbottom\r\n\r\n";
    let m = dgram(buf);
    assert_eq!(m.via_count(), 3);
    assert_eq!(m.top_via_branch(), Some(&b"z9hG4bKtop"[..]));
    assert_eq!(m.bottom_via_branch(), Some(&b"z9hG4bKbottom"[..]));
}

const MULTIPART: &[u8] = b"INVITE sip:+4930123@h;user=phone SIP/2.0\r\n\
Call-ID: mp-1\r\n\
Content-Type: multipart/mixed;boundary=unique-boundary-1\r\n\
MIME-Version: 1.0\r\n\
\r\n\
--unique-boundary-1\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=des:qos optional local sendrecv\r\n\
\r\n\
--unique-boundary-1\r\n\
Content-Type: application/ISUP;version=itu-t92+\r\n\
Content-Disposition: signal;handling=optional\r\n\
\r\n\
\x01\x00\x49\x00\x00\x03\x02\x00\x07\x04\x10\x00\x33\x63\x21\x43\x00\x00\x03\x06\x0d\x03\x80\x90\xa2\x07\x03\x10\x03\x63\x53\x00\x10\x0a\x07\x03\x10\x27\x80\x88\x03\x00\x00\x89\x8b\x0e\x95\x1e\x1e\x1e\x06\x26\x05\x0d\xf5\x01\x06\x10\x04\x00\r\n\
--unique-boundary-1--\r\n";

#[test]
fn multipart_mixed_sdp_and_isup() {
    let m = dgram(MULTIPART);
    let SdpBody::Sdp(sdp) = m.sdp() else {
        panic!("SDP part expected, got {:?}", m.sdp())
    };
    assert!(sdp.starts_with(b"v=0\r\n"));
    assert!(sdp.ends_with(b"sendrecv\r\n"));
    assert_eq!(m.precondition(), Demand::Optional);
}

fn with_body(content_type: Option<&str>, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut v = b"INVITE sip:b@h SIP/2.0\r\nCall-ID: d-1\r\n".to_vec();
    if let Some(ct) = content_type {
        v.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
    }
    v.extend_from_slice(extra.as_bytes());
    v.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn demand_mandatory() {
    let b = with_body(
        Some("application/sdp"),
        "",
        b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=des:qos mandatory local sendrecv\r\n",
    );
    assert_eq!(dgram(&b).precondition(), Demand::Mandatory);
}

#[test]
fn demand_optional() {
    let b = with_body(
        Some("Application/SDP"),
        "",
        b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=des:qos optional e2e sendrecv\r\n",
    );
    assert_eq!(dgram(&b).precondition(), Demand::Optional);
}

#[test]
fn demand_none_only() {
    let b = with_body(
        Some("application/sdp"),
        "",
        b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=des:qos none local sendrecv\r\n",
    );
    assert_eq!(dgram(&b).precondition(), Demand::NoneOnly);
}

#[test]
fn demand_absent_without_des_lines() {
    let b = with_body(
        Some("application/sdp"),
        "",
        b"v=0\r\nm=audio 1 RTP/AVP 0\r\n",
    );
    assert_eq!(dgram(&b).precondition(), Demand::Absent);
}

#[test]
fn demand_absent_without_body() {
    assert_eq!(
        dgram(&with_body(None, "", b"")).precondition(),
        Demand::Absent
    );
}

#[test]
fn demand_unknown_with_gzip_content_encoding() {
    let b = with_body(
        Some("application/sdp"),
        "Content-Encoding: gzip\r\n",
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00",
    );
    assert_eq!(dgram(&b).precondition(), Demand::Unknown);
}

#[test]
fn demand_unknown_with_compact_e_gzip() {
    let b = with_body(Some("application/sdp"), "e: gzip\r\n", b"\x1f\x8b\x08");
    assert_eq!(dgram(&b).precondition(), Demand::Unknown);
}

#[test]
fn untyped_body_starting_with_v0_is_sdp() {
    let b = with_body(
        None,
        "",
        b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=des:qos none e2e send\r\n",
    );
    assert_eq!(dgram(&b).precondition(), Demand::NoneOnly);
    let b = with_body(None, "", b"hello");
    assert_eq!(dgram(&b).precondition(), Demand::Absent);
}

#[test]
fn datagram_content_length_smaller_than_body() {
    let buf = b"MESSAGE sip:b@h SIP/2.0\r\nl: 2\r\n\r\nhello";
    let m = dgram(buf);
    assert_eq!(m.body(), b"he");
    assert_eq!(m.len(), buf.len());
    assert!(m.has_anomaly(SipAnomaly::ContentLengthMismatch));
}

#[test]
fn datagram_content_length_larger_than_body() {
    let m = dgram(b"MESSAGE sip:b@h SIP/2.0\r\nContent-Length: 99\r\n\r\nhello");
    assert_eq!(m.body(), b"hello");
    assert_eq!(m.content_length(), Some(99));
    assert!(m.has_anomaly(SipAnomaly::ContentLengthMismatch));
}

#[test]
fn datagram_without_content_length_takes_the_rest() {
    let m = dgram(b"MESSAGE sip:b@h SIP/2.0\r\n\r\nhello");
    assert_eq!(m.body(), b"hello");
    assert_eq!(m.content_length(), None);
    assert!(!m.has_anomaly(SipAnomaly::ContentLengthMismatch));
}

#[test]
fn datagram_bad_content_length_is_ignored() {
    let m = dgram(b"MESSAGE sip:b@h SIP/2.0\r\nContent-Length: 1x\r\n\r\nhello");
    assert_eq!(m.body(), b"hello");
    assert!(m.has_anomaly(SipAnomaly::BadContentLength));
}

#[test]
fn datagram_without_blank_line_runs_headers_to_the_end() {
    let m = dgram(b"BYE sip:b@h SIP/2.0\r\nCall-ID: x\r\nCSeq: 2 BYE");
    assert!(m.has_anomaly(SipAnomaly::MissingHeaderEnd));
    assert_eq!(m.cseq(), Some((2, &b"BYE"[..])));
    assert!(m.body().is_empty());
}

#[test]
fn missing_mandatory_headers_are_anomalies() {
    let m = dgram(b"OPTIONS sip:b@h SIP/2.0\r\n\r\n");
    assert_eq!(
        anomalies(&m),
        [
            "missing_call_id",
            "missing_cseq",
            "missing_from",
            "missing_to",
            "missing_via"
        ]
    );
}

#[test]
fn bad_header_line_is_skipped() {
    let m = dgram(
        b"OPTIONS sip:b@h SIP/2.0\r\nthis is no header\r\nBad Name: x\r\nCall-ID: ok\r\n\r\n",
    );
    assert!(m.has_anomaly(SipAnomaly::BadHeaderLine));
    assert_eq!(m.call_id(), Some(&b"ok"[..]));
    assert_eq!(m.headers().count(), 1);
}

#[test]
fn bad_cseq_is_an_anomaly() {
    let m = dgram(b"OPTIONS sip:b@h SIP/2.0\r\nCSeq: OPTIONS\r\n\r\n");
    assert!(m.has_anomaly(SipAnomaly::BadCseq));
    assert_eq!(m.cseq(), None);
}

#[test]
fn cseq_method_mismatch_is_an_anomaly() {
    let m = dgram(b"PRACK sip:b@h SIP/2.0\r\nCSeq: 2 INVITE\r\n\r\n");
    assert!(m.has_anomaly(SipAnomaly::CseqMethodMismatch));
}

#[test]
fn header_named_finds_other_and_compact() {
    let m = dgram(b"INVITE sip:b@h SIP/2.0\r\nX-Foo: bar\r\ni: cid\r\n\r\n");
    assert_eq!(m.header_named(b"x-foo"), Some(&b"bar"[..]));
    assert_eq!(m.header_named(b"Call-ID"), Some(&b"cid"[..]));
    assert_eq!(m.header_named(b"I"), Some(&b"cid"[..]));
    assert_eq!(m.header_named(b"x-bar"), None);
    assert_eq!(m.header(HeaderId::Other), None);
}

#[test]
fn stream_incomplete_then_complete() {
    let full: &[u8] = b"MESSAGE sip:b@h SIP/2.0\r\nCall-ID: s-1\r\nContent-Length: 5\r\n\r\nhello";
    for cut in 0..full.len() {
        assert_eq!(
            parse_message(&full[..cut], Framing::Stream).err(),
            Some(SipError::Incomplete),
            "cut at {cut}"
        );
    }
    let m = parse_message(full, Framing::Stream).expect("complete");
    assert_eq!(m.len(), full.len());
    assert_eq!(m.body(), b"hello");
}

#[test]
fn stream_back_to_back_messages() {
    let a: &[u8] = b"OPTIONS sip:b@h SIP/2.0\r\nCall-ID: one\r\nl: 3\r\n\r\nxyz";
    let b: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: two\r\nContent-Length: 0\r\n\r\n";
    let mut stream = a.to_vec();
    stream.extend_from_slice(b);
    stream.extend_from_slice(b"SIP/2.0 18");
    let m1 = parse_message(&stream, Framing::Stream).unwrap();
    assert_eq!(m1.len(), a.len());
    assert_eq!(m1.body(), b"xyz");
    let rest = &stream[m1.len()..];
    let m2 = parse_message(rest, Framing::Stream).unwrap();
    assert_eq!(m2.len(), b.len());
    assert_eq!(m2.call_id(), Some(&b"two"[..]));
    assert_eq!(
        parse_message(&rest[m2.len()..], Framing::Stream).err(),
        Some(SipError::Incomplete)
    );
}

#[test]
fn stream_without_content_length_has_empty_body() {
    let buf = b"BYE sip:b@h SIP/2.0\r\nCall-ID: x\r\n\r\nSIP/2.0 200 OK\r\n";
    let m = parse_message(buf, Framing::Stream).unwrap();
    assert!(m.body().is_empty());
    assert_eq!(m.len(), 35);
    assert!(m.has_anomaly(SipAnomaly::MissingContentLength));
}

#[test]
fn stream_keepalives_are_skipped_by_the_caller() {
    let buf = b"\r\n\r\nOPTIONS sip:b@h SIP/2.0\r\nl: 0\r\n\r\n";
    assert!(matches!(
        parse_message(buf, Framing::Stream),
        Err(SipError::Invalid { offset: 0, .. })
    ));
    let k = keepalive_len(buf);
    assert_eq!(k, 4);
    assert!(parse_message(&buf[k..], Framing::Stream).is_ok());
}

#[test]
fn invalid_stun_binding_request() {
    let stun = b"\x00\x01\x00\x00\x21\x12\xa4\x42\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
    assert!(!is_sip_start(stun));
    assert_eq!(
        parse_message(stun, Framing::Datagram).err(),
        Some(SipError::Invalid {
            offset: 0,
            reason: "NUL byte in the start line"
        })
    );
}

#[test]
fn nul_in_the_start_line_is_not_sip() {
    // Fuzzed 200 OK with a NUL in the reason phrase (tshark: not SIP).
    assert!(!is_sip_start(b"SIP/2.0 200 O\x00K\r\nCall-ID: a\r\n\r\n"));
    assert!(!is_sip_start(b"REGISTER sip:a\x00b SIP/2.0\r\n"));
    // A NUL after the first line does not matter here.
    assert!(is_sip_start(b"SIP/2.0 200 OK\r\nX: \x00\r\n\r\n"));
}

#[test]
fn bare_cr_ends_a_line() {
    let m = parse_message(
        b"BYE sip:b@x SIP/2.0\rVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c1\r\nCSeq: 1 BYE\r\x0bContent-Length: 0\r\n\r\n",
        Framing::Datagram,
    )
    .unwrap();
    assert_eq!(m.call_id(), Some(&b"c1"[..]));
    assert_eq!(m.top_via_branch(), Some(&b"z9hG4bK1"[..]));
    assert_eq!(m.cseq(), Some((1, &b"BYE"[..])));
}

#[test]
fn cseq_number_survives_a_broken_method() {
    let m = parse_message(
        b"SIP/2.0 200 OK\r\nCall-ID: c1\r\nCSeq: 2 /EGIS\xaaER\r\n\r\n",
        Framing::Datagram,
    )
    .unwrap();
    assert_eq!(m.cseq().map(|c| c.0), Some(2));
    assert!(m.has_anomaly(SipAnomaly::BadCseq));
}

#[test]
fn invalid_rtp() {
    let rtp = b"\x80\x00\x12\x34\x00\x00\x00\xa0\xde\xad\xbe\xef\xff\xff";
    assert!(!is_sip_start(rtp));
}

#[test]
fn invalid_http_status_line() {
    let http = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    assert!(!is_sip_start(http));
    assert!(matches!(
        parse_message(http, Framing::Datagram),
        Err(SipError::Invalid { offset: 4, .. })
    ));
}

#[test]
fn invalid_http_request() {
    assert!(!is_sip_start(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(!is_sip_start(b"GET http://x/ HTTP/1.1\r\n\r\n"));
}

#[test]
fn invalid_yahooref_without_sip_version() {
    let y = b"YAHOOREF sip:x 1.0\r\n\r\n";
    assert!(!is_sip_start(y));
    assert!(matches!(
        parse_message(y, Framing::Datagram),
        Err(SipError::Invalid { offset: 15, .. })
    ));
}

#[test]
fn invalid_crlf_keepalive() {
    assert!(!is_sip_start(b"\r\n\r\n"));
    assert!(!is_sip_start(b"\r\n"));
    assert!(!is_sip_start(b""));
    assert!(parse_message(b"\r\n\r\n", Framing::Datagram).is_err());
}

#[test]
fn response_code_must_be_three_digits() {
    assert!(is_sip_start(b"SIP/2.0 420 Bad Extension\r\n"));
    assert!(is_sip_start(b"sip/2.0 603 Decline\r\n"));
    assert!(!is_sip_start(b"SIP/2.0 42 Bad Extension\r\n"));
    assert!(!is_sip_start(b"SIP/2.0 4200 Bad Extension\r\n"));
    assert!(!is_sip_start(b"SIP/2.0 4x0 Bad Extension\r\n"));
    assert!(!is_sip_start(b"SIP/2.1 200 OK\r\n"));
    let m =
        dgram(b"SIP/2.0 420 Bad Extension\r\nUnsupported: precondition\r\nCSeq: 1 INVITE\r\n\r\n");
    assert_eq!(m.status(), Some(420));
    assert_eq!(
        m.start(),
        StartLine::Response {
            code: 420,
            reason: b"Bad Extension"
        }
    );
    assert_eq!(list(&m, HeaderId::Unsupported), [&b"precondition"[..]]);
}

#[test]
fn sip_start_accepts_lowercase_version_and_any_method_token() {
    assert!(is_sip_start(b"INVITE sip:b@h sip/2.0\r\n"));
    assert!(is_sip_start(b"NOTIFY sip:b@h SIP/2.0\n"));
    assert!(is_sip_start(b"FOO-BAR sip:b@h SIP/2.0\r\n"));
    assert!(!is_sip_start(b"INVITE sip:b@h SIP/2.0 extra\r\n"));
    assert!(!is_sip_start(b"INVITE  sip:b@h SIP/2.0\r\n"));
    assert!(!is_sip_start(b"INVITE nouri SIP/2.0\r\n"));
}

#[test]
fn datagram_truncated_start_line_is_invalid() {
    assert!(matches!(
        parse_message(b"INVITE sip:b@h SIP/2", Framing::Datagram),
        Err(SipError::Invalid {
            offset: 20,
            reason: "truncated start line"
        })
    ));
}

#[test]
fn error_display() {
    let e = SipError::Invalid {
        offset: 3,
        reason: "expected SP after method",
    };
    assert_eq!(
        e.to_string(),
        "not a SIP message: expected SP after method at byte 3"
    );
    assert_eq!(SipAnomaly::MissingVia.to_string(), "no Via");
}

mod prop {
    use super::super::*;
    use proptest::prelude::*;

    fn sipish() -> impl Strategy<Value = Vec<u8>> {
        let pieces = prop::collection::vec(
            prop_oneof![
                Just(&b"INVITE sip:a@b SIP/2.0\r\n"[..]),
                Just(&b"SIP/2.0 200 OK\r\n"[..]),
                Just(&b"Via: SIP/2.0/UDP h;branch=z9hG4bK1, x\r\n"[..]),
                Just(&b"From: \"a,\\\"b\" <sip:a;tag=1>;tag=2\r\n"[..]),
                Just(&b"l: 5\r\n"[..]),
                Just(&b"Content-Length: 99999999999\r\n"[..]),
                Just(&b"Content-Type: multipart/mixed;boundary=b\r\n"[..]),
                Just(&b"--b\r\n"[..]),
                Just(&b"Content-Type: application/sdp\r\n"[..]),
                Just(&b"a=des:qos mandatory e2e sendrecv\r\n"[..]),
                Just(&b"\r\n"[..]),
                Just(&b"\n"[..]),
                Just(&b" \t"[..]),
                Just(&b":"[..]),
                Just(&b"\""[..]),
                Just(&b"<"[..]),
                Just(&b";"[..]),
                Just(&b","[..]),
            ],
            0..24,
        );
        (pieces, prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(p, tail)| {
            let mut v = p.concat();
            v.extend_from_slice(&tail);
            v
        })
    }

    fn exercise(buf: &[u8]) {
        // The first-byte shortcut of is_sip_start never changes its answer.
        assert_eq!(is_sip_start(buf), super::super::start::parse(buf).is_ok());
        // with_datagram is that check then the datagram parse, in one.
        let both = is_sip_start(buf)
            .then(|| parse_message(buf, Framing::Datagram).ok())
            .flatten()
            .map(|m| format!("{m:?}"));
        assert_eq!(super::super::with_datagram(buf, |m| format!("{m:?}")), both);
        for framing in [Framing::Datagram, Framing::Stream] {
            if let Ok(m) = parse_message(buf, framing) {
                assert!(m.len() <= buf.len());
                assert!(!m.is_empty());
                let _ = (
                    m.call_id(),
                    m.cseq(),
                    m.from_tag(),
                    m.to_tag(),
                    m.from_uri(),
                );
                let _ = (m.via_count(), m.top_via_branch(), m.bottom_via_branch());
                let _ = (m.headers().count(), m.list(HeaderId::Require).count());
                // The kept rows are the rows a second scan finds.
                assert_eq!(
                    m.header_rows().collect::<Vec<_>>(),
                    m.headers().collect::<Vec<_>>()
                );
                // The framer's Content-Length is the parse's.
                if framing == Framing::Datagram {
                    assert_eq!(
                        head_content_length(buf),
                        Some((
                            m.content_length(),
                            m.has_anomaly(SipAnomaly::BadContentLength)
                        ))
                    );
                }
                let _ = (m.precondition(), m.anomalies().count(), m.body().len());
                let mut s = String::new();
                write_tag_list(&mut s, m.list(HeaderId::Supported), Case::Lower);
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(buf in prop::collection::vec(any::<u8>(), 0..512)) {
            exercise(&buf);
        }

        #[test]
        fn never_panics_on_sip_like_bytes(buf in sipish()) {
            exercise(&buf);
        }

        #[test]
        fn never_panics_on_cut_messages(cut in 0usize..2000, flip in 0usize..2000, byte in any::<u8>()) {
            let src = super::IMS_INVITE;
            let mut buf = src[..cut.min(src.len())].to_vec();
            if let Some(b) = buf.get_mut(flip) {
                *b = byte;
            }
            exercise(&buf);
        }

        /// `via_branch`'s shortcut for a leading `branch=` gives what the
        /// general parameter parser gives.
        #[test]
        fn via_branch_is_the_branch_param(pieces in prop::collection::vec(prop_oneof![
            Just(&b"SIP/2.0/UDP h:5060"[..]),
            Just(&b";"[..]),
            Just(&b"branch="[..]),
            Just(&b"BRANCH="[..]),
            Just(&b"branch"[..]),
            Just(&b"z9hG4bK1"[..]),
            Just(&b"\"x;y\""[..]),
            Just(&b"\""[..]),
            Just(&b" "[..]),
            Just(&b"\t"[..]),
            Just(&b"="[..]),
            Just(&b"rport"[..]),
        ], 0..10)) {
            let via = pieces.concat();
            let reference = crate::sip::scan::find1(b';', &via).and_then(|semi| {
                crate::sip::param(&via[semi..], b"branch").filter(|b| !b.is_empty())
            });
            prop_assert_eq!(crate::sip::via_branch(&via), reference);
        }
    }
}
