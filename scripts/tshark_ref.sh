#!/usr/bin/env bash
# tshark_ref.sh - the tshark reference set of SIP messages of capture files.
#
# Usage: scripts/tshark_ref.sh [--transport udp|tcp|all] [--jsonl] FILE...
#
# Prints one line per SIP message that tshark decodes, in frame order:
#   file  frame  transport  kind  key  call_id  cseq  stack  flags
# (tab-separated; with --jsonl one JSON object per line instead, the form
# scripts/conformance.sh reads).
#   transport  sipaudit-style label: the tunnels the message was found in, then
#              its transport (udp, gtp/udp, esp/udp, gtp/esp/udp, gre/udp,
#              ipip/udp, icmp/udp, tcp, ...)
#   kind       request | response
#   key        the method of a request, the status code of a response
#   cseq       the CSeq number as tshark decodes it (sip.CSeq.seq)
#   stack      tshark's layers below SIP (e.g. sll/ip/udp/gtp/ip/esp/udp)
#   flags      ;-joined: frag (IP reassembly completed in this frame),
#              icmp (quoted in an ICMP error), malformed, resend (sip.resend),
#              multi-call-id, multi-cseq
#
# The tshark invocation (exactly what is run, per file):
#   tshark -n -r FILE -o esp.enable_null_encryption_decode_heuristic:TRUE
#          -o ip.defragment:TRUE -o ipv6.defragment:TRUE
#          -o tcp.desegment_tcp_streams:TRUE [-o tcp.reassemble_out_of_order:TRUE]
#          --enable-heuristic sip_udp --enable-heuristic sip_tcp
#          -Y sip -T json -J "frame ip ipv6 sip"
# with WIRESHARK_CONFIG_DIR pointing at an empty directory so that a user's
# preferences cannot change the result. `-J "frame ip ipv6 sip"` keeps every other
# layer as a {"filtered": NAME} placeholder, in order, which is what gives the
# protocol stack of each SIP message even when a frame carries several.
# `-T fields` is NOT used: with several SIP messages in a frame (TCP) its
# per-field aggregation loses which Call-ID goes with which CSeq.
# tshark (4.0) reads gzip-compressed captures itself; zstd-compressed ones are
# decompressed to a temporary file first (frame numbers are unchanged).
set -euo pipefail

if ! command -v tshark >/dev/null 2>&1; then
    echo "tshark_ref.sh: tshark not found (apt-get install -y tshark)" >&2
    exit 2
fi

exec python3 - "$@" <<'PY'
import json, os, subprocess, sys, tempfile
import signal
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head

def usage(msg=None):
    if msg:
        print("tshark_ref.sh: " + msg, file=sys.stderr)
    print("usage: scripts/tshark_ref.sh [--transport udp|tcp|all] [--jsonl] FILE...", file=sys.stderr)
    sys.exit(2)

# Layers that make a tunnel, as named in sipaudit's transport column.
TUNNELS = {
    "gtp": "gtp", "esp": "esp", "gre": "gre", "icmp": "icmp", "icmpv6": "icmp",
    "vxlan": "vxlan", "geneve": "geneve", "l2tp": "l2tp", "teredo": "teredo",
    "ah": "ah", "erspan": "erspan", "mpls": None, "vlan": None,
    "ieee8021ad": None, "pppoes": None, "ppp": None, "sll": None,
}
TRANSPORTS = ("udp", "tcp", "sctp")

def pairs(v):
    return isinstance(v, list) and (not v or isinstance(v[0], tuple))

def get(tree, key):
    for k, v in tree:
        if k == key:
            return v
    return None

def find(tree, key, out, skip=("sip.msg_body",)):
    """All values of `key` in a layer tree, not looking inside the body
    (a message/sipfrag or message/sip body is not this message's header)."""
    for k, v in tree:
        if k == key:
            out.append(v)
        if k in skip:
            continue
        if pairs(v):
            find(v, key, out, skip)
    return out

def label(stack):
    """sipaudit-style transport label from tshark's layer names."""
    out = []
    ips = 0
    prev = None
    for name in stack:
        if name in ("ip", "ipv6"):
            # IP directly inside IP (IP-in-IP, 6in4, 4in6): a tunnel.
            if prev in ("ip", "ipv6"):
                out.append("ipip")
            ips += 1
        elif TUNNELS.get(name):
            out.append(TUNNELS[name])
        prev = name
    last = stack[-1] if stack else "?"
    return "/".join(out + [last])

def tshark_json(path, transport):
    env = dict(os.environ)
    cfg = tempfile.mkdtemp(prefix="tshark-cfg-")
    env["WIRESHARK_CONFIG_DIR"] = cfg
    cmd = ["tshark", "-n", "-r", path,
           "-o", "esp.enable_null_encryption_decode_heuristic:TRUE",
           "-o", "ip.defragment:TRUE", "-o", "ipv6.defragment:TRUE",
           "-o", "tcp.desegment_tcp_streams:TRUE"]
    if transport in ("tcp", "all"):
        cmd += ["-o", "tcp.reassemble_out_of_order:TRUE"]
    cmd += ["--enable-heuristic", "sip_udp", "--enable-heuristic", "sip_tcp",
            "-Y", "sip", "-T", "json", "-J", "frame ip ipv6 sip"]
    p = subprocess.run(cmd, capture_output=True, env=env)
    os.rmdir(cfg)
    err = p.stderr.decode("utf-8", "replace")
    err = "\n".join(l for l in err.splitlines() if "Running as user" not in l)
    if p.returncode != 0 and not p.stdout.strip():
        raise RuntimeError("tshark failed on %s (exit %d): %s" % (path, p.returncode, err.strip()))
    if not p.stdout.strip():
        return [], err
    return json.loads(p.stdout, object_pairs_hook=lambda x: x), err

def messages(path, transport="udp"):
    """Yield one dict per SIP message tshark decodes in `path`."""
    src = path
    tmp = None
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"\x28\xb5\x2f\xfd":  # zstd: tshark 4.0 cannot read it
        fd, tmp = tempfile.mkstemp(prefix="tshark-ref-", suffix=".pcap")
        os.close(fd)
        with open(tmp, "wb") as out:
            subprocess.run(["zstd", "-dcq", path], stdout=out, check=True)
        src = tmp
    try:
        pkts, err = tshark_json(src, transport)
    finally:
        if tmp:
            os.unlink(tmp)
    for pkt in pkts:
        layers = get(get(pkt, "_source"), "layers")
        frame = get(layers, "frame")
        num = int(get(frame, "frame.number"))
        stack = []
        frag = False
        malformed = any(k == "_ws.malformed" for k, _ in layers)
        for k, v in layers:
            if k == "frame" or "." in k:   # tcp.segments, _ws.malformed, ...
                continue
            if k != "sip":
                stack.append(k)
                if k in ("ip", "ipv6") and pairs(v) and (
                        find(v, "ip.fragment", []) or find(v, "ipv6.fragment", [])):
                    frag = True   # this frame completed an IP reassembly
                continue
            # One SIP message (a frame may hold several: TCP, or nested).
            if stack and stack[-1] in ("icmp", "icmpv6"):
                # The datagram quoted in an ICMP error is dissected inside the
                # icmp tree, which -J leaves out: take the rest of the stack
                # from frame.protocols (an ICMP error quotes one datagram).
                protos = (get(frame, "frame.protocols") or "").split(":")
                if stack[-1] in protos:
                    rest = protos[protos.index(stack[-1]) + 1:]
                    if "sip" in rest:
                        rest = rest[:rest.index("sip")]
                    stack.extend(x for x in rest if x != "ethertype")
            last = stack[-1] if stack else "?"
            lab = label(stack)
            if transport != "all" and last != transport:
                continue
            meth = find(v, "sip.Method", [])
            status = find(v, "sip.Status-Code", [])
            cid = find(v, "sip.Call-ID", [])
            seq = find(v, "sip.CSeq.seq", [])
            flags = []
            if frag:
                flags.append("frag")
            if "icmp" in stack or "icmpv6" in stack:
                flags.append("icmp")
            if malformed or find(v, "_ws.malformed", [], skip=()):
                flags.append("malformed")
            if "1" in find(v, "sip.resend", []):
                flags.append("resend")
            if len(cid) > 1:
                flags.append("multi-call-id")
            if len(seq) > 1:
                flags.append("multi-cseq")
            if meth:
                kind, key = "request", meth[0]
            elif status:
                kind, key = "response", status[0]
            else:
                kind, key = "unknown", ""
            yield {
                "file": path, "frame": num, "transport": lab, "kind": kind,
                "key": key, "call_id": cid[0] if cid else "",
                "cseq": seq[0] if seq else "", "stack": "/".join(stack),
                "flags": ";".join(flags),
            }

def main(argv):
    transport = "udp"
    jsonl = False
    files = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--transport":
            i += 1
            if i >= len(argv) or argv[i] not in ("udp", "tcp", "all"):
                usage("--transport takes udp, tcp or all")
            transport = argv[i]
        elif a.startswith("--transport="):
            transport = a.split("=", 1)[1]
            if transport not in ("udp", "tcp", "all"):
                usage("--transport takes udp, tcp or all")
        elif a == "--jsonl":
            jsonl = True
        elif a in ("-h", "--help"):
            usage()
        elif a.startswith("-"):
            usage("unknown option " + a)
        else:
            files.append(a)
        i += 1
    if not files:
        usage("no input file")
    for f in files:
        if not os.path.isfile(f):
            usage("not a file: " + f)
    out = sys.stdout
    for f in files:
        for m in messages(f, transport):
            if jsonl:
                out.write(json.dumps(m, ensure_ascii=False) + "\n")
            else:
                cells = [m["file"], str(m["frame"]), m["transport"], m["kind"], m["key"],
                         m["call_id"], m["cseq"], m["stack"], m["flags"]]
                out.write("\t".join(c.replace("\\", "\\\\").replace("\t", "\\t")
                                    .replace("\r", "\\r").replace("\n", "\\n") for c in cells) + "\n")

if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BrokenPipeError:
        pass
PY
