#!/usr/bin/env python3
"""Builds the seed corpus of one fuzz target from capture files (samples/ and
the public corpus), at run time; scripts/fuzz.sh calls it. Nothing it writes is
committed (fuzz/corpus is ignored).

usage: seeds.py TARGET OUTDIR CAPTURE...

capture, pipeline: the capture files themselves (pipeline: the small ones).
decode: each classic pcap re-encoded as the decode target reads it.
sip_scan, sdp_scan, tcp_stream, hep, sctp: the SIP messages found in UDP
payloads (Ethernet/SLL/raw IP, VLAN tags, IPv4/IPv6), as raw text, SDP bodies,
TCP segment sequences, HEP3 packets and SCTP DATA packets.
"""
import gzip
import hashlib
import os
import struct
import sys

LINKTYPES = [1, 101, 113, 276, 0, 108, 228, 229, 239, 12]
SIP_START = (b"SIP/2.0 ", b"INVITE ", b"ACK ", b"BYE ", b"CANCEL ", b"OPTIONS ", b"REGISTER ",
             b"PRACK ", b"UPDATE ", b"SUBSCRIBE ", b"NOTIFY ", b"MESSAGE ", b"INFO ", b"REFER ",
             b"PUBLISH ")


def pcap_records(path):
    """(linktype, [(ts_sec, data)]) of a classic pcap (gzip allowed), else None."""
    try:
        raw = open(path, "rb").read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    if len(raw) < 24:
        return None
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None
    linktype = struct.unpack(e + "I", raw[20:24])[0] & 0x0FFFFFFF
    recs, off = [], 24
    while off + 16 <= len(raw):
        sec, _, incl, _ = struct.unpack(e + "IIII", raw[off:off + 16])
        data = raw[off + 16:off + 16 + incl]
        if len(data) < incl:
            break
        recs.append((sec, data))
        off += 16 + incl
    return linktype, recs


def l3_of(linktype, d):
    if linktype == 1:
        et, off = struct.unpack(">H", d[12:14])[0] if len(d) >= 14 else 0, 14
        while et in (0x8100, 0x88A8) and len(d) >= off + 4:
            et, off = struct.unpack(">H", d[off + 2:off + 4])[0], off + 4
        return d[off:] if et in (0x0800, 0x86DD) else None
    if linktype == 113:
        return d[16:]
    if linktype == 276:
        return d[20:]
    if linktype in (101, 228, 229):
        return d
    return None


def udp_payload(l3):
    if not l3:
        return None
    if l3[0] >> 4 == 4:
        ihl = (l3[0] & 15) * 4
        if len(l3) < ihl + 8 or l3[9] != 17 or struct.unpack(">H", l3[6:8])[0] & 0x3FFF:
            return None
        return l3[ihl + 8:]
    if l3[0] >> 4 == 6 and len(l3) >= 48 and l3[6] == 17:
        return l3[48:]
    return None


def sip_messages(captures):
    seen = set()
    for path in captures:
        pr = pcap_records(path)
        if not pr:
            continue
        for _, d in pr[1]:
            p = udp_payload(l3_of(pr[0], d))
            if p and p.startswith(SIP_START) and p not in seen:
                seen.add(p)
                yield p


def hep3(payload):
    def chunk(kind, data):
        return struct.pack(">HHH", 0, kind, len(data) + 6) + data
    body = (chunk(1, b"\x02") + chunk(2, b"\x11") + chunk(3, bytes([10, 0, 0, 1]))
            + chunk(4, bytes([10, 0, 0, 2])) + chunk(7, b"\x13\xc4") + chunk(8, b"\x13\xc4")
            + chunk(9, struct.pack(">I", 1700000000)) + chunk(10, struct.pack(">I", 5))
            + chunk(11, b"\x01") + chunk(12, struct.pack(">I", 2001)) + chunk(15, payload))
    return b"HEP3" + struct.pack(">H", len(body) + 6) + body


def segments(msgs, ctl=0x40, piece=None):
    out = b""
    stream = b"".join(msgs)
    piece = piece or max(1, len(stream))
    for i in range(0, len(stream), piece):
        s = stream[i:i + piece]
        out += bytes([ctl]) + struct.pack(">H", len(s)) + s
    return out


def sctp_data(payload, tsn):
    chunk = struct.pack(">BBHIHHI", 0, 3, 16 + len(payload), tsn, 0, tsn & 0xFFFF, 0) + payload
    chunk += b"\x00" * (-len(chunk) % 4)
    pkt = struct.pack(">HHII", 5060, 5060, 1, 0) + chunk
    return b"\x00" + struct.pack(">H", len(pkt)) + pkt


def seeds(target, captures):
    if target in ("capture", "pipeline"):
        limit = 64 << 10 if target == "pipeline" else 1 << 20
        for path in captures:
            if os.path.getsize(path) <= limit:
                yield open(path, "rb").read()
        return
    if target == "decode":
        for path in captures:
            pr = pcap_records(path)
            if pr and pr[0] in LINKTYPES and pr[1]:
                out, last = bytes([LINKTYPES.index(pr[0])]), pr[1][0][0]
                for sec, d in pr[1][:200]:
                    step = max(0, min(255, (sec - last) * 4))
                    last = sec
                    out += bytes([step]) + struct.pack(">H", len(d)) + d
                yield out
        return
    msgs = list(sip_messages(captures))
    for i, m in enumerate(msgs):
        if target == "sip_scan":
            yield m
        elif target == "sdp_scan" and b"\r\n\r\nv=" in m:
            yield b"\x01" + m.split(b"\r\n\r\n", 1)[1]
        elif target == "hep":
            yield hep3(m)
            yield bytes([64]) + hep3(m) + hep3(m)
        elif target == "sctp":
            yield sctp_data(m, i + 1)
    if target == "tcp_stream":
        for i in range(0, len(msgs), 4):
            group = msgs[i:i + 4]
            yield b"\x00" + segments(group)
            yield b"\x00" + segments(group, piece=100)
            yield b"\x03" + segments([hep3(m) for m in group], piece=300)


def main():
    target, outdir, captures = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(outdir, exist_ok=True)
    n = 0
    for s in seeds(target, captures):
        name = hashlib.sha1(s).hexdigest()
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(s)
        n += 1
    print(f"{n} seeds for {target} in {outdir}")


main()
