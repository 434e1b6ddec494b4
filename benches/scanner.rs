//! The SIP scanner on the hot path, on a ≈1.7 KB IMS INVITE with SDP
//! preconditions and on a 200 OK (literal messages in `benches/data/`, CRLF
//! line ends, shared with the unit tests):
//! - `is_sip_start` (run on every UDP payload),
//! - `parse`: `parse_message` alone,
//! - `parse+ids`: plus method/status, Call-ID, CSeq, tags and top branch
//!   (the fields crates.md compares rsip on),
//! - `parse+fields`: plus every other `messages.csv` field: the
//!   Require/Proxy-Require/Supported/Unsupported/Allow lists written as the
//!   report does, and the SDP precondition demand.
//!
//! Run: `cargo bench --bench scanner` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sipaudit::sip::{self, Case, Framing, HeaderId, Message};

const IMS_INVITE: &[u8] = include_bytes!("data/ims_invite.txt");
const OK200: &[u8] = include_bytes!("data/ok200.txt");

/// The `messages.csv` fields the pipeline reads from a message, written
/// into reused buffers as the report writer does.
#[derive(Default)]
struct Fields {
    lists: String,
}

/// The identity fields alone (what crates.md measured rsip on): method or
/// status, Call-ID, CSeq, From/To tags, top Via branch.
fn ids(msg: &Message<'_>) -> usize {
    let mut n = 0;
    n += usize::from(msg.is_request());
    n += msg.method().map_or(0, <[u8]>::len);
    n += usize::from(msg.status().unwrap_or(0));
    n += msg.call_id().map_or(0, <[u8]>::len);
    n += msg.cseq().map_or(0, |(c, m)| c as usize + m.len());
    n += msg.from_tag().map_or(0, <[u8]>::len);
    n += msg.to_tag().map_or(0, <[u8]>::len);
    n += msg.top_via_branch().map_or(0, <[u8]>::len);
    n
}

/// Every `messages.csv` field the scanner provides.
fn extract(msg: &Message<'_>, f: &mut Fields) -> usize {
    let mut n = ids(msg);
    for (id, case) in [
        (HeaderId::Require, Case::Lower),
        (HeaderId::ProxyRequire, Case::Lower),
        (HeaderId::Supported, Case::Lower),
        (HeaderId::Unsupported, Case::Lower),
        (HeaderId::Allow, Case::Upper),
    ] {
        f.lists.clear();
        sip::write_tag_list(&mut f.lists, msg.list(id), case);
        n += f.lists.len();
    }
    n += msg.precondition().as_str().len();
    n += msg.anomalies().count();
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("scanner");
    for (name, msg) in [("ims_invite", IMS_INVITE), ("ok200", OK200)] {
        g.throughput(Throughput::Bytes(msg.len() as u64));
        g.bench_function(format!("{name}/is_sip_start"), |b| {
            b.iter(|| sip::is_sip_start(black_box(msg)))
        });
        g.bench_function(format!("{name}/parse"), |b| {
            b.iter(|| sip::parse_message(black_box(msg), Framing::Datagram).map(|m| m.len()))
        });
        g.bench_function(format!("{name}/parse+ids"), |b| {
            b.iter(|| {
                let m = sip::parse_message(black_box(msg), Framing::Datagram).expect("valid SIP");
                ids(&m)
            })
        });
        let mut fields = Fields::default();
        g.bench_function(format!("{name}/parse+fields"), |b| {
            b.iter(|| {
                let m = sip::parse_message(black_box(msg), Framing::Datagram).expect("valid SIP");
                extract(&m, &mut fields)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
