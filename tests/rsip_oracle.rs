//! Differential test: our zero-copy scanner against rsip 0.4 as an oracle.
//!
//! For every message rsip accepts, both must agree on the method (request)
//! or status and CSeq method (response), Call-ID, CSeq number and method,
//! From tag, To tag and top Via branch. Messages rsip rejects are skipped
//! and counted (crates.md lists what it cannot parse: compact forms, tel:
//! URIs, IPv6 hosts, folding, LF-only, extension methods). The messages are
//! the literals below plus every SIP payload of every capture under
//! `shared/corpus/public/` (recursive) and `samples/` (if present).
//!
//! Fields are compared one by one: a header rsip cannot type (an IPv6 or
//! tel: URI in From, say) skips that field only, counted with rsip's
//! reason. Where rsip is known to be wrong, [`rsip_quirk`] says so
//! explicitly; nothing is loosened wholesale.

mod common;

use std::path::{Path, PathBuf};

use rsip::prelude::*;
use sipaudit::sip::{self, Framing, Message};

/// The compared fields, in order.
const FIELDS: [&str; 6] = [
    "start",
    "call_id",
    "cseq",
    "from_tag",
    "to_tag",
    "top_branch",
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Our answers, in [`FIELDS`] order. `start` is the request method, or
/// `<status> <CSeq method>` for a response.
fn ours(m: &Message<'_>) -> [Option<String>; 6] {
    let start = match m.status() {
        Some(code) => format!("{code} {}", m.method().map(text).unwrap_or_default()),
        None => m.method().map(text).unwrap_or_default(),
    };
    [
        Some(start),
        m.call_id().map(text),
        m.cseq().map(|(n, meth)| format!("{n} {}", text(meth))),
        m.from_tag().map(text),
        m.to_tag().map(text),
        m.top_via_branch().map(text),
    ]
}

/// rsip's answer for one field: `Ok(value)` when rsip could read the
/// header (`Ok(None)`: absent), `Err(why)` when it could not type it. Such
/// fields are skipped and counted, like rejected messages.
type Theirs = Result<Option<String>, String>;

fn err(e: rsip::Error) -> String {
    let s = format!("{e:?}");
    s.chars().take(60).collect()
}

/// rsip's answers in [`FIELDS`] order, or why it rejected the message.
fn theirs(buf: &[u8]) -> Result<[Theirs; 6], String> {
    let msg = rsip::SipMessage::try_from(buf).map_err(err)?;
    // A header rsip does not find is absent for it (a compact form, which
    // rsip does not know, is handled by `rsip_quirk`).
    let cseq = match msg.cseq_header() {
        Ok(h) => h.typed().map(Some).map_err(err),
        Err(_) => Ok(None),
    };
    let start = match (&msg, &cseq) {
        (rsip::SipMessage::Request(r), _) => Ok(Some(r.method().to_string())),
        (rsip::SipMessage::Response(r), Ok(c)) => Ok(Some(format!(
            "{} {}",
            r.status_code().code(),
            c.as_ref().map(|c| c.method.to_string()).unwrap_or_default()
        ))),
        (rsip::SipMessage::Response(_), Err(e)) => Err(e.clone()),
    };
    let call_id = Ok(msg
        .call_id_header()
        .ok()
        .map(|h| h.value().trim().to_string())
        .filter(|v| !v.is_empty()));
    let cseq = cseq.map(|c| c.map(|c| format!("{} {}", c.seq, c.method)));
    let from_tag = match msg.from_header() {
        Ok(h) => h.tag().map(|t| t.map(|t| t.to_string())).map_err(err),
        Err(_) => Ok(None),
    };
    let to_tag = match msg.to_header() {
        Ok(h) => h.tag().map(|t| t.map(|t| t.to_string())).map_err(err),
        Err(_) => Ok(None),
    };
    let top_branch = match msg.via_header() {
        Ok(h) => h
            .typed()
            .map(|v| v.branch().map(|b| b.to_string()))
            .map_err(err),
        Err(_) => Ok(None),
    };
    Ok([start, call_id, cseq, from_tag, to_tag, top_branch])
}

/// Known rsip limitations, applied to rsip's answers before comparing.
/// Each is narrow, explicit and counted as a skip with its reason.
fn rsip_quirk(m: &Message<'_>, theirs: &mut [Theirs; 6]) {
    // Without a CR LF CR LF ending the header section (a truncated or
    // fuzzed datagram: our anomaly missing_header_end; or one that ends it
    // with a bare LF, which we tolerate), rsip keeps only the first header
    // row and reports every other header as absent, where we read the
    // headers to the end of the section. Every header-derived field is
    // rsip's guess then; only a request's method is still comparable.
    let crlfcrlf = m.as_bytes().windows(4).any(|w| w == b"\r\n\r\n");
    if m.has_anomaly(sip::SipAnomaly::MissingHeaderEnd) || !crlfcrlf {
        let first = if m.is_request() { 1 } else { 0 };
        for t in &mut theirs[first..] {
            *t = Err("no header end: rsip reads one header row".into());
        }
        return;
    }
    // rsip does not know compact header forms (crates.md): for it a
    // message using `i:`, `f:`, `t:` or `v:` simply lacks that header.
    for h in m.headers().filter(|h| h.name.len() == 1) {
        let field = match h.id {
            sip::HeaderId::CallId => 1,
            sip::HeaderId::From => 3,
            sip::HeaderId::To => 4,
            sip::HeaderId::Via => 5,
            _ => continue,
        };
        theirs[field] = Err("rsip does not know compact forms".into());
    }
}

#[derive(Default)]
struct Tally {
    /// Messages rsip parsed.
    accepted: usize,
    /// Messages rsip rejected (skipped).
    rejected: usize,
    /// Messages with at least one field compared.
    compared: usize,
    /// Per field: comparisons made, and how many had a value (guards
    /// against agreeing on `None` only).
    per_field: [(usize, usize); 6],
    /// Why rsip rejected a message or could not type a field, with counts.
    skips: std::collections::BTreeMap<String, usize>,
    mismatches: Vec<String>,
}

impl Tally {
    fn check(&mut self, origin: &str, buf: &[u8]) {
        let Ok(m) = sip::parse_message(buf, Framing::Datagram) else {
            // is_sip_start accepted it (corpus) or it is a literal that must
            // parse: either way our scanner must return a message.
            self.mismatches
                .push(format!("{origin}: our scanner rejected it"));
            return;
        };
        let mut expected = match theirs(buf) {
            Ok(f) => f,
            Err(why) => {
                self.rejected += 1;
                *self.skips.entry(format!("message: {why}")).or_default() += 1;
                return;
            }
        };
        self.accepted += 1;
        rsip_quirk(&m, &mut expected);
        let got = ours(&m);
        let mut any = false;
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            let e = match e {
                Ok(e) => e,
                Err(why) => {
                    *self
                        .skips
                        .entry(format!("{}: {why}", FIELDS[i]))
                        .or_default() += 1;
                    continue;
                }
            };
            any = true;
            self.per_field[i].0 += 1;
            self.per_field[i].1 += usize::from(g.is_some());
            if g != e {
                self.mismatches
                    .push(format!("{origin}: {}: ours {g:?}, rsip {e:?}", FIELDS[i]));
            }
        }
        self.compared += usize::from(any);
    }

    fn report(&self, what: &str) {
        eprintln!(
            "{what}: rsip accepted {}, rejected {}; compared {}; mismatches {}",
            self.accepted,
            self.rejected,
            self.compared,
            self.mismatches.len()
        );
        for (f, (n, some)) in FIELDS.iter().zip(self.per_field) {
            eprintln!("{what}:   {f}: compared {n} ({some} with a value)");
        }
        for (why, n) in &self.skips {
            eprintln!("{what}:   skipped {n}: {why}");
        }
    }
}

const IMS_INVITE: &str = "INVITE sip:+15551234567@ims.mnc001.mcc001.3gppnetwork.org;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK3f1c8a2e7d;rport\r\n\
Max-Forwards: 70\r\n\
Route: <sip:10.0.0.1:5060;lr>\r\n\
From: \"Alice\" <sip:+15550001111@ims.mnc001.mcc001.3gppnetwork.org>;tag=7a3f1e90\r\n\
To: <sip:+15551234567@ims.mnc001.mcc001.3gppnetwork.org;user=phone>\r\n\
Call-ID: a84b4c76e66710@10.0.0.9\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:+15550001111@10.0.0.9:5060>;+sip.instance=\"<urn:gsma:imei:35891234-567890-0>\";+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"\r\n\
P-Preferred-Identity: <sip:+15550001111@ims.mnc001.mcc001.3gppnetwork.org>\r\n\
P-Access-Network-Info: 3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=0010100010019B01\r\n\
Supported: 100rel,precondition,timer\r\n\
Require: precondition\r\n\
Allow: INVITE,ACK,OPTIONS,CANCEL,BYE,UPDATE,INFO,PRACK\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 162\r\n\
\r\n\
v=0\r\n\
o=- 1 1 IN IP4 10.0.0.9\r\n\
s=-\r\n\
c=IN IP4 10.0.0.9\r\n\
t=0 0\r\n\
m=audio 49152 RTP/AVP 116\r\n\
a=curr:qos local none\r\n\
a=curr:qos remote none\r\n\
a=des:qos mandatory local sendrecv\r\n";

const SESSION_PROGRESS: &str = "SIP/2.0 183 Session Progress\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK3f1c8a2e7d;rport=5060\r\n\
From: \"Alice\" <sip:+15550001111@ims.example.org>;tag=7a3f1e90\r\n\
To: <sip:+15551234567@ims.example.org;user=phone>;tag=b2c4\r\n\
Call-ID: a84b4c76e66710@10.0.0.9\r\n\
CSeq: 1 INVITE\r\n\
Require: 100rel\r\n\
RSeq: 1\r\n\
Contact: <sip:10.0.0.7:5060>\r\n\
Content-Length: 0\r\n\
\r\n";

const PRACK: &str = "PRACK sip:10.0.0.7:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKprack1\r\n\
From: <sip:+15550001111@ims.example.org>;tag=7a3f1e90\r\n\
To: <sip:+15551234567@ims.example.org>;tag=b2c4\r\n\
Call-ID: a84b4c76e66710@10.0.0.9\r\n\
CSeq: 2 PRACK\r\n\
RAck: 1 1 INVITE\r\n\
Content-Length: 0\r\n\
\r\n";

const UPDATE: &str = "UPDATE sip:10.0.0.7:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKupd1\r\n\
From: <sip:+15550001111@ims.example.org>;tag=7a3f1e90\r\n\
To: <sip:+15551234567@ims.example.org>;tag=b2c4\r\n\
Call-ID: a84b4c76e66710@10.0.0.9\r\n\
CSeq: 3 UPDATE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\
\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKupd1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKp2\r\n\
From: <sip:+15550001111@ims.example.org>;tag=7a3f1e90\r\n\
To: <sip:+15551234567@ims.example.org>;tag=b2c4\r\n\
Call-ID: a84b4c76e66710@10.0.0.9\r\n\
CSeq: 3 UPDATE\r\n\
Content-Length: 0\r\n\
\r\n";

const BAD_EXTENSION: &str = "SIP/2.0 420 Bad Extension\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK420\r\n\
From: \"Bob\" <sip:bob@example.org>;tag=f1\r\n\
To: <sip:carol@example.org>;tag=t420\r\n\
Call-ID: 420-test@example.org\r\n\
CSeq: 10 INVITE\r\n\
Unsupported: precondition, 100rel\r\n\
Content-Length: 0\r\n\
\r\n";

const REGISTER: &str = "REGISTER sip:ims.example.org SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKreg1\r\n\
Max-Forwards: 70\r\n\
From: <sip:+15550001111@ims.example.org>;tag=reg7\r\n\
To: <sip:+15550001111@ims.example.org>\r\n\
Call-ID: reg-1@10.0.0.9\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:10.0.0.9:5060>;expires=600000\r\n\
Require: sec-agree\r\n\
Proxy-Require: sec-agree\r\n\
Supported: path, gruu\r\n\
Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2;port-c=5062;port-s=5064\r\n\
Content-Length: 0\r\n\
\r\n";

/// Messages rsip cannot read in full (crates.md): each is rejected, or has
/// fields skipped, and the rest still agrees.
const RSIP_LIMITS: &[&str] = &[
    // Compact forms.
    "OPTIONS sip:bob@example.org SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKc\r\n\
f: <sip:a@example.org>;tag=1\r\nt: <sip:bob@example.org>\r\ni: compact@x\r\nCSeq: 1 OPTIONS\r\n\
l: 0\r\n\r\n",
    // tel: Request-URI.
    "INVITE tel:+15551234567 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKt\r\n\
From: <sip:a@example.org>;tag=1\r\nTo: <tel:+15551234567>\r\nCall-ID: tel@x\r\nCSeq: 1 INVITE\r\n\
Content-Length: 0\r\n\r\n",
    // Extension method.
    "FOOBAR sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n\
From: <sip:a@example.org>;tag=1\r\nTo: <sip:bob@example.org>\r\nCall-ID: ext@x\r\nCSeq: 1 FOOBAR\r\n\
Content-Length: 0\r\n\r\n",
    // Bracketed IPv6 hosts.
    "BYE sip:bob@[2001:db8::1]:5060 SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::2]:5060;branch=z9hG4bK6\r\n\
From: <sip:a@[2001:db8::2]>;tag=a6\r\nTo: <sip:bob@[2001:db8::1]>;tag=b6\r\nCall-ID: v6@x\r\n\
CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
    // LF-only line ends.
    "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKlf\nFrom: <sip:a@example.org>;tag=1\n\
To: <sip:bob@example.org>;tag=2\nCall-ID: lf@x\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
    // Datagram cut before the end of its headers.
    "SIP/2.0 100 Trying\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKcut\r\nCall-ID: cut@x\r\nCSeq: 1 INV",
];

#[test]
fn literal_messages_agree_with_rsip() {
    let realistic = [
        ("ims_invite", IMS_INVITE),
        ("183", SESSION_PROGRESS),
        ("prack", PRACK),
        ("update", UPDATE),
        ("200", OK),
        ("420", BAD_EXTENSION),
        ("register", REGISTER),
    ];
    let mut t = Tally::default();
    for (name, msg) in realistic {
        t.check(name, msg.as_bytes());
    }
    t.report("literals");
    assert!(t.mismatches.is_empty(), "{}", t.mismatches.join("\n"));
    assert!(
        t.skips.is_empty(),
        "rsip must read every realistic literal in full"
    );
    for (f, (n, _)) in FIELDS.iter().zip(t.per_field) {
        assert_eq!(n, realistic.len(), "{f} must be compared on every literal");
    }
}

#[test]
fn rsip_limits_are_skipped_not_compared() {
    let mut t = Tally::default();
    for (i, msg) in RSIP_LIMITS.iter().enumerate() {
        let before = t.skips.values().sum::<usize>();
        t.check(&format!("rsip_limit_{i}"), msg.as_bytes());
        let after = t.skips.values().sum::<usize>();
        assert!(
            after > before,
            "rsip_limit_{i}: rsip read it all, move it to the literals"
        );
    }
    t.report("rsip-limits");
    assert!(t.mismatches.is_empty(), "{}", t.mismatches.join("\n"));
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            captures(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn looks_like_capture(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    read.is_ok()
        && matches!(
            magic,
            [0xa1, 0xb2, 0xc3, 0xd4]
                | [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0x0a, 0x0d, 0x0d, 0x0a]
                | [0x1f, 0x8b, _, _]
                | [0x28, 0xb5, 0x2f, 0xfd]
        )
}

#[test]
fn corpus_messages_agree_with_rsip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(corpus) = common::needs::corpus() else {
        return;
    };
    let mut files = Vec::new();
    captures(&corpus, &mut files);
    captures(&root.join("samples"), &mut files);
    let mut t = Tally::default();
    let mut unreadable = Vec::new();
    for f in &files {
        let Ok(payloads) = sipaudit::packet::collect_sip_payloads(f) else {
            unreadable.push(f.display().to_string());
            continue;
        };
        for (frame, payload) in payloads {
            t.check(&format!("{}#{frame}", f.display()), &payload);
        }
    }
    eprintln!(
        "corpus: {} files, {} not captures",
        files.len(),
        unreadable.len()
    );
    // Files that are not captures (expected reports, READMEs, a NetXRay
    // file) are skipped; one that starts like a pcap, pcapng, gzip or zstd
    // file must be readable.
    let bad: Vec<_> = unreadable
        .iter()
        .filter(|f| looks_like_capture(Path::new(f)))
        .collect();
    assert!(bad.is_empty(), "unreadable captures: {bad:?}");
    t.report("corpus");
    assert!(
        t.mismatches.is_empty(),
        "{} mismatches:\n{}",
        t.mismatches.len(),
        t.mismatches.join("\n")
    );
    assert!(
        t.compared > 100,
        "too few messages compared: {}",
        t.compared
    );
}
