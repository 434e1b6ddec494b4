#!/usr/bin/env python3
"""A deterministic batch of rotated captures for the Spark test (tests/spark.rs):
SIP calls over UDP written to one pcap, then cut every --rotate seconds with
`editcap -i` (Wireshark's wireshark-common), as a probe rotates its files.
Calls start every 250 ms; retries, retransmissions and hang-ups seconds later
fall in later files. Five kinds, by call number:
  0  INVITE Require: precondition -> 420 Unsupported: precondition -> ACK ->
     retry in the same Call-ID (CSeq 2, Supported: precondition) 2 s later ->
     180 -> 200 -> ACK -> BYE 3 s later -> 200
  1  the same 420, retried 1.5 s later with a new Call-ID -> 200 -> ACK ->
     BYE 2 s later -> 200
  2  INVITE -> 180 -> 200 -> ACK -> BYE from the callee 10 s later -> 200
  3  INVITE never answered, retransmitted after 0.5, 1.5, 3.5 and 7.5 s
  4  INVITE -> 486 Busy Here -> ACK
  5  an AS-leg pair: INVITE Require: precondition with a Session-ID -> 420
     -> ACK, then 400 ms later a B2BUA leg (another From, the same
     Session-ID) -> 200 -> ACK -> BYE from the callee 2 s later -> 200. Its
     legs have different partition keys: route-records moves the second.
Usage: gen_rotated.py --out DIR [--calls 480] [--rotate 5]
Writes DIR/rot_*.pcap (and nothing else) and prints their number.
"""

import argparse
import os
import struct
import subprocess
import sys
import tempfile

T0 = 1_700_000_000
UE, PEER = bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1])


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src, dst, payload):
    udp = struct.pack("!HHHH", 5060, 5060, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00"
    return eth + ip + udp


def msg(start, call, branch, frm, to, cseq, extra=""):
    return (
        f"{start}\r\nVia: SIP/2.0/UDP 10.1.0.1:5060;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n"
        f"From: <{frm[0]}>;tag={frm[1]}\r\nTo: <{to[0]}>{';tag=' + to[1] if to[1] else ''}\r\n"
        f"Call-ID: {call}\r\nCSeq: {cseq}\r\nContact: <sip:ue@10.1.0.1:5060>\r\n{extra}"
        f"Content-Length: 0\r\n\r\n"
    ).encode()


def call(i, t):
    """The packets of call `i` starting at `t` ms: (ms, to_peer, bytes)."""
    ue = f"sip:+4917{i:07d}@ims.example"
    callee = f"sip:+4930{i % 97:07d}@voip.example"
    ruri = f"INVITE {callee} SIP/2.0"
    c, f, b = f"c{i}@gen", (ue, f"f{i}"), f"g{i}"
    out = []

    def resp(ms, status, cseq, tag, extra="", call_id=c, branch=b):
        out.append((ms, False, msg(f"SIP/2.0 {status}", call_id, branch, f, (callee, tag), cseq, extra)))

    kind = i % 6
    if kind in (0, 1):
        out.append((t, True, msg(ruri, c, b, f, (callee, ""), "1 INVITE", "Require: precondition\r\n")))
        resp(t + 20, "420 Bad Extension", "1 INVITE", f"t{i}", "Unsupported: precondition\r\n")
        out.append((t + 30, True, msg(f"ACK {callee} SIP/2.0", c, b, f, (callee, f"t{i}"), "1 ACK")))
        if kind == 0:
            r, c2, b2, cseq, bye = t + 2000, c, b + "r", 2, 3000
        else:
            r, c2, b2, cseq, bye = t + 1500, f"c{i}b@gen", b + "n", 1, 2000
        out.append((r, True, msg(ruri, c2, b2, f, (callee, ""), f"{cseq} INVITE", "Supported: precondition\r\n")))
        if kind == 0:
            resp(r + 40, "180 Ringing", f"{cseq} INVITE", f"u{i}", call_id=c2, branch=b2)
        resp(r + 900, "200 OK", f"{cseq} INVITE", f"u{i}", call_id=c2, branch=b2)
        ack = msg(f"ACK {callee} SIP/2.0", c2, b2 + "a", f, (callee, f"u{i}"), f"{cseq} ACK")
        out.append((r + 910, True, ack))
        by = msg(f"BYE {callee} SIP/2.0", c2, b2 + "y", f, (callee, f"u{i}"), f"{cseq + 1} BYE")
        out.append((r + 910 + bye, True, by))
        resp(r + 930 + bye, "200 OK", f"{cseq + 1} BYE", f"u{i}", call_id=c2, branch=b2 + "y")
    elif kind == 2:
        out.append((t, True, msg(ruri, c, b, f, (callee, ""), "1 INVITE")))
        resp(t + 50, "180 Ringing", "1 INVITE", f"t{i}")
        resp(t + 3000, "200 OK", "1 INVITE", f"t{i}")
        out.append((t + 3010, True, msg(f"ACK {callee} SIP/2.0", c, b + "a", f, (callee, f"t{i}"), "1 ACK")))
        bye = msg("BYE sip:ue@10.1.0.1:5060 SIP/2.0", c, b + "y", (callee, f"t{i}"), (ue, f[1]), "1 BYE")
        out.append((t + 13010, False, bye))
        ok = msg("SIP/2.0 200 OK", c, b + "y", (callee, f"t{i}"), (ue, f[1]), "1 BYE")
        out.append((t + 13030, True, ok))
    elif kind == 3:
        inv = msg(ruri, c, b, f, (callee, ""), "1 INVITE")
        out.extend((t + d, True, inv) for d in (0, 500, 1500, 3500, 7500))
    elif kind == 5:
        sid = f"Session-ID: {i:032x}\r\n"
        out.append((t, True, msg(ruri, c, b, f, (callee, ""), "1 INVITE", "Require: precondition\r\n" + sid)))
        resp(t + 20, "420 Bad Extension", "1 INVITE", f"t{i}", "Unsupported: precondition\r\n")
        out.append((t + 30, True, msg(f"ACK {callee} SIP/2.0", c, b, f, (callee, f"t{i}"), "1 ACK")))
        leg, c2, b2 = (f"sip:ibcf{i}@border.example", f"n{i}"), f"c{i}n@gen", b + "n"
        out.append((t + 400, True, msg(ruri, c2, b2, leg, (callee, ""), "1 INVITE", sid)))
        ok = msg("SIP/2.0 200 OK", c2, b2, leg, (callee, f"u{i}"), "1 INVITE")
        out.append((t + 900, False, ok))
        out.append((t + 910, True, msg(f"ACK {callee} SIP/2.0", c2, b2 + "a", leg, (callee, f"u{i}"), "1 ACK")))
        bye = msg("BYE sip:ue@10.1.0.1:5060 SIP/2.0", c2, b2 + "y", (callee, f"u{i}"), leg, "1 BYE")
        out.append((t + 2910, False, bye))
        out.append((t + 2930, True, msg("SIP/2.0 200 OK", c2, b2 + "y", (callee, f"u{i}"), leg, "1 BYE")))
    else:
        out.append((t, True, msg(ruri, c, b, f, (callee, ""), "1 INVITE")))
        resp(t + 300, "486 Busy Here", "1 INVITE", f"t{i}")
        out.append((t + 310, True, msg(f"ACK {callee} SIP/2.0", c, b, f, (callee, f"t{i}"), "1 ACK")))
    return out


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--calls", type=int, default=480)
    p.add_argument("--rotate", type=int, default=5)
    a = p.parse_args(argv)
    pkts = []
    for i in range(a.calls):
        for n, (ms, to_peer, data) in enumerate(call(i, i * 250)):
            # Ties broken by call and message order: deterministic.
            pkts.append((ms, i, n, frame(UE, PEER, data) if to_peer else frame(PEER, UE, data)))
    pkts.sort(key=lambda x: x[:3])
    os.makedirs(a.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        full = os.path.join(tmp, "full.pcap")
        with open(full, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for ms, _, _, data in pkts:
                f.write(struct.pack("<IIII", T0 + ms // 1000, (ms % 1000) * 1000, len(data), len(data)))
                f.write(data)
        subprocess.run(["editcap", "-i", str(a.rotate), full, os.path.join(a.out, "rot.pcap")], check=True)
    files = sorted(x for x in os.listdir(a.out) if x.startswith("rot_"))
    print(len(files))


if __name__ == "__main__":
    main(sys.argv[1:])
