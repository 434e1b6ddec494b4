#!/usr/bin/env bash
# conformance.sh - compare sipaudit's messages.csv with what tshark decodes.
#
# Usage: scripts/conformance.sh [OPTIONS] [FILES or DIRS...]
#   (default inputs: $SIPAUDIT_CORPUS, else ../shared/corpus/public, and samples/,
#   relative to the repo root)
#
# For every capture file: run `sipaudit analyze --messages -o TMP FILE`, build the
# multiset of (Call-ID, method-or-status, CSeq number) of its SIP-over-UDP messages
# (messages.csv rows whose transport ends in `udp`: udp, gtp/udp, esp/udp, ...;
# kind=request -> method, kind=response -> status), build the same multiset from
# tshark (scripts/tshark_ref.sh), and print one row per file:
#   file  tshark  sipaudit  matched  missing  extra  exceptions  status
# then the totals. Exit status: 0 when every file is OK, 1 when any FAILs,
# 2 on a usage or setup error (no binary, no tshark, no input).
#
# A file that is neither pcap nor pcapng (magic bytes, also inside gzip/zstd) must
# be rejected cleanly: exit status 1, an `error` in inputs.csv, no message rows;
# such a file is OK as `REJECTED` and its tshark messages are not compared.
#
# Exceptions (frames where tshark is demonstrably wrong) are read from
# tests/conformance_exceptions.tsv (columns: file, frame, reason; `file` matches
# the end of the input path). At an exception frame the values of tshark's and
# sipaudit's messages are not compared, but messages.csv must still hold as many
# messages at that frame as tshark decodes there - or none when the reason starts
# with "not SIP" (tshark decodes something that is not a SIP message). Built in,
# without a TSV row: SIP that tshark decodes inside an ICMP error (a quote of an
# earlier datagram, not a message on the wire) is left out of tshark's set, and a
# messages.csv row for it is an extra.
#
# Options:
#   --bin PATH          sipaudit binary (default target/release/sipaudit)
#   --transport T       udp (default) or tcp (SIP over TCP; tshark run with
#                       -o tcp.reassemble_out_of_order:TRUE)
#   -v, --verbose       list missing / extra messages with frame numbers
#   --max N             at most N details per file and kind under -v (default 20)
#   --frames            strict: the frame number is part of the compared key
#   --exceptions FILE   default tests/conformance_exceptions.tsv
#   --tshark-only       only the tshark reference counts (no sipaudit run)
#   --keep DIR          keep sipaudit's output directories under DIR
#   -j, --jobs N        files processed in parallel (default: number of cores)
#   --no-install        fail instead of installing a missing tshark
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

no_install=0
for a in "$@"; do
    [ "$a" = "--no-install" ] && no_install=1
done

if ! command -v tshark >/dev/null 2>&1; then
    if [ "$no_install" = 1 ]; then
        echo "conformance.sh: tshark is not installed (apt-get install -y tshark)" >&2
        exit 2
    fi
    echo "conformance.sh: tshark not found, installing it (apt-get install -y tshark)" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 && sudo="sudo -n"
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -q tshark >/dev/null; then
        $sudo apt-get -o DPkg::Lock::Timeout=900 update -q >/dev/null || true
        $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -q tshark >/dev/null || true
    fi
    if ! command -v tshark >/dev/null 2>&1; then
        echo "conformance.sh: could not install tshark (apt-get install -y tshark)" >&2
        exit 2
    fi
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "conformance.sh: python3 is required" >&2
    exit 2
fi

export CONFORMANCE_CWD="$PWD"
cd "$root"
export CONFORMANCE_ROOT="$root"
exec python3 - "$@" <<'PY'
import collections, concurrent.futures, csv, gzip, json, os, re, shutil
import subprocess, sys, tempfile

ROOT = os.environ["CONFORMANCE_ROOT"]
import signal
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
CWD = os.environ.get("CONFORMANCE_CWD", ROOT)

def user_path(p):
    """A path the user typed, relative to where the script was started."""
    q = os.path.normpath(os.path.join(CWD, p))
    r = os.path.relpath(q, ROOT)
    return q if r.startswith("../../") else r
DEFAULT_INPUTS = [os.environ.get("SIPAUDIT_CORPUS") or "../shared/corpus/public", "samples"]
SKIP_EXT = (".md", ".txt", ".tsv", ".csv", ".json", ".toml", ".yaml", ".yml",
            ".sh", ".py", ".rs", ".html", ".pem", ".key")
SKIP_NAMES = ("README", "LICENSE", "COPYING", "SOURCES")
PCAP_MAGICS = (b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d",
               b"\x4d\x3c\xb2\xa1")
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
LEG_REASON = ("tshark hides the second capture leg of a TCP connection (same addresses and ports inside and outside a tunnel) as a retransmission; sipaudit reports each leg")
ICMP_REASON = ("built-in: SIP quoted inside an ICMP error is a copy of an earlier "
               "datagram, not a message on the wire")

def die(msg, code=2):
    print("conformance.sh: " + msg, file=sys.stderr)
    sys.exit(code)

# ---------------------------------------------------------------- options
opts = dict(bin="target/release/sipaudit", transport="udp", verbose=False, max=20,
            frames=False, exceptions="tests/conformance_exceptions.tsv",
            tshark_only=False, keep=None, jobs=os.cpu_count() or 2)
inputs = []
argv = sys.argv[1:]
i = 0
def arg_value(name):
    global i
    i += 1
    if i >= len(argv):
        die("%s needs a value" % name)
    return argv[i]
while i < len(argv):
    a = argv[i]
    if "=" in a and a.startswith("--"):
        a, v = a.split("=", 1)
        argv.insert(i + 1, v)
    if a == "--bin":
        opts["bin"] = user_path(arg_value(a))
    elif a == "--transport":
        opts["transport"] = arg_value(a)
        if opts["transport"] not in ("udp", "tcp"):
            die("--transport takes udp or tcp")
    elif a in ("-v", "--verbose"):
        opts["verbose"] = True
    elif a == "--max":
        opts["max"] = int(arg_value(a))
    elif a == "--frames":
        opts["frames"] = True
    elif a == "--exceptions":
        opts["exceptions"] = user_path(arg_value(a))
    elif a == "--tshark-only":
        opts["tshark_only"] = True
    elif a == "--keep":
        opts["keep"] = user_path(arg_value(a))
    elif a in ("-j", "--jobs"):
        opts["jobs"] = max(1, int(arg_value(a)))
    elif a == "--no-install":
        pass
    elif a in ("-h", "--help"):
        with open(os.path.join(ROOT, "scripts", "conformance.sh")) as f:
            text = []
            for line in f.read().splitlines()[1:]:
                if not line.startswith("#"):
                    break
                text.append(line[2:])
        try:
            print("\n".join(text))
        except BrokenPipeError:
            pass
        sys.exit(0)
    elif a.startswith("-") and a != "-":
        die("unknown option %s (see --help)" % a)
    else:
        inputs.append(user_path(a))
    i += 1

explicit = bool(inputs)
if not inputs:
    inputs = DEFAULT_INPUTS

# ---------------------------------------------------------------- inputs
def is_capture_candidate(path):
    base = os.path.basename(path)
    if base.startswith("."):
        return False
    if base.lower().endswith(SKIP_EXT):
        return False
    if any(base.upper().startswith(n) for n in SKIP_NAMES):
        return False
    return True

files = []   # (path as used, display name)
for inp in inputs:
    if os.path.isdir(inp):
        top = os.path.normpath(inp)
        for dp, dns, fns in os.walk(top):
            dns.sort()
            for fn in sorted(fns):
                p = os.path.join(dp, fn)
                if is_capture_candidate(p):
                    disp = os.path.join(os.path.basename(top), os.path.relpath(p, top))
                    files.append((p, disp))
    elif os.path.isfile(inp):
        files.append((inp, inp))
    elif explicit:
        die("no such file or directory: %s" % inp)
    else:
        print("conformance.sh: note: %s does not exist, skipped" % inp, file=sys.stderr)
files.sort(key=lambda x: x[1])
if not files:
    die("no capture file found in %s" % " ".join(inputs))

if not opts["tshark_only"]:
    binary = opts["bin"]
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        die("sipaudit binary not found or not executable: %s (build it with "
            "`cargo build --release` or pass --bin PATH)" % binary)
    binary = os.path.abspath(binary)

def sniff(path):
    """pcap | pcapng | other, looking through gzip and zstd."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                head = g.read(4)
        except (OSError, EOFError):
            return "other"
    elif head == b"\x28\xb5\x2f\xfd":
        if not shutil.which("zstd"):
            die("%s is zstd-compressed and the zstd command is missing "
                "(apt-get install -y zstd)" % path)
        p = subprocess.run(["zstd", "-dcq", path], capture_output=True)
        head = p.stdout[:4]
    if head in PCAP_MAGICS:
        return "pcap"
    if head == PCAPNG_MAGIC:
        return "pcapng"
    return "other"

# ---------------------------------------------------------------- exceptions
exceptions = []   # (file suffix, frame, reason)
exc_path = opts["exceptions"]
if os.path.exists(exc_path):
    with open(exc_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.split("\t")
            if cells[:2] == ["file", "frame"]:
                continue
            if len(cells) != 3 or not cells[1].isdigit() or not cells[2].strip():
                die("%s:%d: expected `file<TAB>frame<TAB>reason`" % (exc_path, n))
            exceptions.append((cells[0].strip(), int(cells[1]), cells[2].strip()))
else:
    print("conformance.sh: note: no exceptions file %s" % exc_path, file=sys.stderr)

def exceptions_for(path):
    norm = os.path.normpath(path).replace(os.sep, "/")
    out = {}
    for suffix, frame, reason in exceptions:
        s = suffix.strip("/")
        if norm == s or norm.endswith("/" + s):
            out[frame] = reason
    return out

# ---------------------------------------------------------------- the two sides
def norm_cseq(s):
    """The CSeq number: the leading digits of the cell ("7" and "7 INVITE" both
    give 7, "007" gives 7); empty when the cell has no number."""
    m = re.match(r"\s*([0-9]+)", s or "")
    return str(int(m.group(1))) if m else ""

def unguard(s):
    """messages.csv writes a cell starting with = + - @ TAB CR with a leading '."""
    if len(s) >= 2 and s[0] == "'" and s[1] in "=+-@\t\r":
        return s[1:]
    return s

def tshark_side(path):
    p = subprocess.run(["bash", os.path.join(ROOT, "scripts", "tshark_ref.sh"),
                        "--transport", opts["transport"], "--jsonl", path],
                       capture_output=True)
    if p.returncode != 0:
        return None, p.stderr.decode("utf-8", "replace").strip()
    msgs = []
    for line in p.stdout.decode("utf-8").splitlines():
        m = json.loads(line)
        msgs.append(dict(frame=m["frame"], kind=m["kind"], key=m["key"],
                         call_id=m["call_id"], cseq=norm_cseq(m["cseq"]),
                         transport=m["transport"], flags=m["flags"]))
    return msgs, None

def sipaudit_side(path, outdir):
    p = subprocess.run([binary, "analyze", "--messages", "-o", outdir, path],
                       capture_output=True, timeout=600)
    res = dict(exit=p.returncode, stderr=p.stderr.decode("utf-8", "replace"),
               msgs=None, error=None, inputs_rows=None)
    mpath = os.path.join(outdir, "messages.csv")
    if os.path.exists(mpath):
        msgs = []
        with open(mpath, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                transport = unguard(row.get("transport", ""))
                last = transport.rsplit("/", 1)[-1]
                if last != opts["transport"]:
                    continue
                kind = unguard(row.get("kind", ""))
                key = unguard(row.get("status", "") if kind == "response"
                              else row.get("method", ""))
                try:
                    frame = int(row.get("frame", "") or 0)
                except ValueError:
                    frame = 0
                msgs.append(dict(frame=frame, kind=kind, key=key,
                                 call_id=unguard(row.get("call_id", "")),
                                 cseq=norm_cseq(unguard(row.get("cseq", ""))),
                                 transport=transport, flags=""))
        res["msgs"] = msgs
    ipath = os.path.join(outdir, "inputs.csv")
    if os.path.exists(ipath):
        with open(ipath, newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.DictReader(f))
        res["inputs_rows"] = rows
        errs = [r.get("error", "") for r in rows if r.get("error", "")]
        res["error"] = "; ".join(errs) if errs else ""
    return res

def key_of(m):
    k = (m["call_id"], m["key"], m["cseq"])
    return k + (m["frame"],) if opts["frames"] else k

def compare(ts, sa):
    """Multiset comparison; pairs equal frames first so that the leftovers name
    the right frames. Returns matched, missing (tshark msgs), extra (sipaudit msgs)."""
    tk = collections.defaultdict(list)
    sk = collections.defaultdict(list)
    for m in ts:
        tk[key_of(m)].append(m)
    for m in sa:
        sk[key_of(m)].append(m)
    matched, missing, extra = 0, [], []
    for k in set(tk) | set(sk):
        t = list(tk.get(k, []))
        s = list(sk.get(k, []))
        for m in list(t):
            for n in s:
                if n["frame"] == m["frame"]:
                    s.remove(n)
                    t.remove(m)
                    matched += 1
                    break
        pair = min(len(t), len(s))
        matched += pair
        missing += t[pair:]
        extra += s[pair:]
    missing.sort(key=lambda m: m["frame"])
    extra.sort(key=lambda m: m["frame"])
    return matched, missing, extra

def run_one(item):
    path, disp = item
    r = dict(file=path, disp=disp, fmt=sniff(path), notes=[], details=[])
    exc = exceptions_for(path)
    ts, err = tshark_side(path)
    if ts is None:
        r.update(status="FAIL", tshark=None)
        r["notes"].append("tshark failed: " + err.splitlines()[-1] if err else "tshark failed")
        return r
    # Exceptions: built-in ICMP quotes, then the TSV frames.
    applied = []
    kept = []
    for m in ts:
        if "icmp" in m["flags"].split(";"):
            applied.append((m, ICMP_REASON))
        elif m["frame"] in exc:
            applied.append((m, exc[m["frame"]]))
        else:
            kept.append(m)
    used_frames = {m["frame"] for m, _ in applied}
    r["stale"] = sorted(f for f in exc if f not in used_frames)
    r["applied"] = applied
    r["tshark"] = len(ts)
    r["exceptions"] = len(applied)
    r["tshark_exceptions"] = len(applied)  # tshark messages left out of the comparison
    if opts["tshark_only"]:
        r.update(status="-", sipaudit=None, matched=None, missing=None, extra=None)
        return r
    tmp = tempfile.mkdtemp(prefix="conformance-")
    outdir = os.path.join(tmp, "out")
    try:
        sa = sipaudit_side(path, outdir)
    except subprocess.TimeoutExpired:
        shutil.rmtree(tmp, ignore_errors=True)
        r.update(status="FAIL", sipaudit=None, matched=None, missing=None, extra=None)
        r["notes"].append("sipaudit timed out")
        return r
    if opts["keep"]:
        dst = os.path.join(opts["keep"], re.sub(r"[^A-Za-z0-9._-]+", "_", disp))
        shutil.rmtree(dst, ignore_errors=True)
        if os.path.isdir(outdir):
            shutil.copytree(outdir, dst)
    shutil.rmtree(tmp, ignore_errors=True)
    code = sa["exit"]
    crashed = code < 0 or code >= 100
    if crashed:
        r["notes"].append("sipaudit crashed (exit %d): %s" % (code, sa["stderr"].strip()[-300:]))
    if r["fmt"] == "other":
        # Must be rejected cleanly: exit 1, inputs.csv error, no messages.
        nrows = len(sa["msgs"] or [])
        ok = (code == 1 and sa["error"] and nrows == 0 and sa["stderr"].strip())
        r.update(sipaudit=nrows, matched=0, missing=0, extra=nrows, exceptions=0,
                 status="REJECTED" if ok else "FAIL")
        if ok:
            r["notes"].append("not pcap/pcapng: " + sa["error"])
        else:
            why = []
            if code != 1:
                why.append("exit %d (expected 1)" % code)
            if not sa["error"]:
                why.append("no error in inputs.csv" if sa["inputs_rows"] is not None
                           else "no inputs.csv")
            if not sa["stderr"].strip():
                why.append("nothing on stderr")
            if nrows:
                why.append("%d message rows" % nrows)
            r["notes"].append("not pcap/pcapng, not rejected cleanly: " + ", ".join(why))
        return r
    if sa["msgs"] is None:
        r.update(status="FAIL", sipaudit=None, matched=None, missing=None, extra=None)
        r["notes"].append("no messages.csv (exit %d): %s" % (code, sa["stderr"].strip()[-300:]))
        return r
    sam = [m for m in sa["msgs"] if m["frame"] not in exc]
    matched, missing, extra = compare(kept, sam)
    if opts["transport"] == "tcp":
        # Built-in exception (documented in tests/conformance_exceptions.tsv):
        # tshark keys a TCP conversation by addresses and ports only, so the
        # same connection captured on two legs (GTP-U-encapsulated and
        # decapsulated, or inside and outside ESP) is one stream to it and the
        # second leg's copy of each message is hidden as a retransmission.
        # sipaudit reports each leg's copy, as both tools do for UDP. Such an
        # extra is accepted only when tshark decoded the same message and
        # sipaudit has it on another leg (a different tunnel path) too.
        tkeys = collections.Counter(key_of(m) for m in kept)
        legs = collections.defaultdict(set)
        for m in sam:
            legs[key_of(m)].add(m["transport"])
        still = []
        for m in extra:
            k = key_of(m)
            if tkeys[k] and len(legs[k]) > 1:
                applied.append((m, LEG_REASON))
            else:
                still.append(m)
        extra = still
        r["exceptions"] = len(applied)  # shown in the table: both kinds
    # At an exception frame the values are not compared, but the messages must
    # still be there: as many as tshark decodes, or none for a "not SIP" row.
    for frame, reason in sorted(exc.items()):
        t = [m for m in ts if m["frame"] == frame]
        s = [m for m in sa["msgs"] if m["frame"] == frame]
        want = 0 if reason.lower().startswith("not sip") else len(t)
        if len(s) < want:
            missing += t[len(s):want] or t[:want - len(s)]
            r["notes"].append("exception frame %d: %d message(s) expected, %d in messages.csv"
                              % (frame, want, len(s)))
        elif len(s) > want:
            extra += s[want:]
            r["notes"].append("exception frame %d: %d message(s) expected, %d in messages.csv"
                              % (frame, want, len(s)))
    missing.sort(key=lambda m: m["frame"])
    extra.sort(key=lambda m: m["frame"])
    r.update(sipaudit=len(sa["msgs"]), matched=matched, missing=len(missing),
             extra=len(extra), missing_list=missing, extra_list=extra)
    fail = bool(missing or extra) or crashed
    if code != 0:
        if code == 1 and sa["error"]:
            r["notes"].append("exit 1: " + sa["error"])
        else:
            r["notes"].append("exit %d" % code)
        fail = True
    r["status"] = "FAIL" if fail else "OK"
    return r

# ---------------------------------------------------------------- run & report
with concurrent.futures.ThreadPoolExecutor(max_workers=opts["jobs"]) as ex:
    results = list(ex.map(run_one, files))

def fmt(v):
    return "-" if v is None else str(v)

def show(m):
    cid = json.dumps(m["call_id"], ensure_ascii=False)
    if len(cid) > 90:
        cid = cid[:87] + '..."'
    return "frame %-6d %-8s %-9s cseq=%-10s call_id=%s [%s]" % (
        m["frame"], m["kind"], m["key"], m["cseq"] or "''", cid, m["transport"])

cols = ["file", "tshark", "sipaudit", "matched", "missing", "extra", "exceptions", "status"]
w = max([len(r["disp"]) for r in results] + [4])
print("transport: %s%s" % (opts["transport"], "  (strict: frame numbers compared)" if opts["frames"] else ""))
print("%-*s  %7s %8s %7s %7s %6s %10s  %s" % (w, *cols))
tot = collections.Counter()
nfail = 0
for r in results:
    print("%-*s  %7s %8s %7s %7s %6s %10s  %s%s" % (
        w, r["disp"], fmt(r.get("tshark")), fmt(r.get("sipaudit")), fmt(r.get("matched")),
        fmt(r.get("missing")), fmt(r.get("extra")), fmt(r.get("exceptions")), r["status"],
        ("  # " + "; ".join(r["notes"])) if r["notes"] else ""))
    for k in ("tshark", "sipaudit", "matched", "missing", "extra", "exceptions"):
        if isinstance(r.get(k), int) and not (k == "sipaudit" and r["status"] == "REJECTED"):
            tot[k] += r[k]
    tot["files"] += 1
    tot[r["status"]] += 1
    if r["status"] == "FAIL":
        nfail += 1
print("%-*s  %7d %8s %7s %7s %6s %10d  %s" % (
    w, "TOTAL (%d files)" % tot["files"], tot["tshark"],
    "-" if opts["tshark_only"] else tot["sipaudit"],
    "-" if opts["tshark_only"] else tot["matched"],
    "-" if opts["tshark_only"] else tot["missing"],
    "-" if opts["tshark_only"] else tot["extra"], tot["exceptions"],
    "-" if opts["tshark_only"] else "%d OK, %d REJECTED, %d FAIL" % (tot["OK"], tot["REJECTED"], tot["FAIL"])))
if not opts["tshark_only"] and tot["tshark"]:
    cmp_total = sum((r.get("tshark") or 0) - r.get("tshark_exceptions", 0)
                    for r in results if r["status"] != "REJECTED")
    print("matched %d of %d compared tshark messages (%.2f%%), %d extra" % (
        tot["matched"], cmp_total, 100.0 * tot["matched"] / max(cmp_total, 1), tot["extra"]))

if opts["verbose"]:
    for r in results:
        for f in r.get("stale", []):
            print("note: %s: exception for frame %d not applied (no tshark SIP-over-%s "
                  "message there)" % (r["disp"], f, opts["transport"]), file=sys.stderr)

if opts["verbose"]:
    for r in results:
        lines = []
        for m, reason in r.get("applied", []):
            lines.append("  exception %s: %s" % (show(m), reason))
        n = opts["max"]
        ml = r.get("missing_list", [])
        el = r.get("extra_list", [])
        for m in ml[:n]:
            lines.append("  missing   " + show(m))
        if len(ml) > n:
            lines.append("  missing   ... %d more" % (len(ml) - n))
        for m in el[:n]:
            lines.append("  extra     " + show(m))
        if len(el) > n:
            lines.append("  extra     ... %d more" % (len(el) - n))
        if lines:
            print("\n%s (%s)" % (r["disp"], r["status"]))
            print("\n".join(lines))

sys.exit(1 if nfail else 0)
PY
