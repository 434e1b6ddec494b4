//! Transports beyond UDP on real captures: TLS is reported once per
//! connection and counted as other packets.

mod common;

use common::{analyze, corpus, read_csv};

#[test]
fn tls_connections_are_reported_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let f = corpus().join("wireshark-wiki/sip-tls-1.3-and-rtcp.pcap");
    let o = analyze(&["-o", dir.path().to_str().unwrap(), f.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let anomalies = read_csv(&dir.path().join("anomalies.csv"));
    let tls: Vec<_> = anomalies
        .rows
        .iter()
        .filter(|r| r["kind"] == "tls_encrypted")
        .collect();
    // The SIP-over-TLS connection to 5061 and a second TLS connection.
    assert_eq!(tls.len(), 2, "{:?}", anomalies.rows);
    assert!(tls[0]["detail"].contains(":5061"));
    let inputs = read_csv(&dir.path().join("inputs.csv"));
    assert_eq!(inputs.rows[0]["sip_messages"], "0");
    assert_eq!(inputs.rows[0]["other_packets"], inputs.rows[0]["packets"]);
}
