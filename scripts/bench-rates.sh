#!/usr/bin/env bash
# Benchmark of real rates: `sipaudit analyze` on real SIPp captures at high call rates, beside tshark and sngrep.
#
# usage: sudo scripts/bench-rates.sh [--quick] [--only NAME]... [--repeat R] [--out DIR] [--perf] [--regen]
#                                    [--no-tshark] [--no-sngrep] [--runs LIST] [--table-only]
#                                    [--tool-timeout S] [--gen-nice N] [--bin PATH]
#
#   --quick      shorter captures for a smoke run: udp2000 10 s, udp200 60 s, tcp1000 10 s, scan10k 5 s
#                (their files have other names, so the full captures are kept)
#   --only NAME  one capture only (repeatable): udp2000 udp200 tcp1000 scan10k
#   --repeat R   runs of each sipaudit configuration; the table shows the median wall / CPU time and the
#                largest peak RSS (default 1; tshark and sngrep run once)
#   --out DIR    captures, run outputs and the table (default target/bench-rates)
#   --perf       also `perf record -g` the -j1 run on udp2000 and print its top 10 symbols and its
#                samples by thread (DIR/runs/udp2000-<secs>s/perf-top.txt, perf-threads.txt; Debian
#                linux-perf)
#   --regen      generate the captures again even when the cached ones match
#   --no-tshark, --no-sngrep   skip those reference runs
#   --runs LIST  the sipaudit configurations to time, a quoted list of j1 j2 j1gz j2gz j2m j1c0 (default: all;
#                j1gz/j2gz: gzip input, j2m: -j2 --messages, j1c0: taskset -c 0 -j1)
#   --table-only  no generation and no runs: print the table of what DIR/runs holds (e.g. after runs of single
#                captures with --only)
#   --tool-timeout S  tshark and sngrep are killed after S seconds (default 600; the table says when)
#   --gen-nice N  niceness of SIPp and tcpdump while a capture is generated (default 0; e.g. -10 gives the
#                open-loop generator priority over other work of the same scheduling group; on this shared machine
#                -10 did not make 2,000 calls/s reachable). The timed runs are not reniced.
#   --bin PATH   time this sipaudit binary instead of building one (e.g. the PGO build of
#                scripts/build-pgo.sh); the table names it
#   Time: generation is about 14 min the first time (udp200 alone is 10 min of traffic). On 2 shared cores,
#   udp2000 (at 800 calls/s, 456 k packets) took 20 min with --perf (tshark killed at 600 s), tcp1000 25 min
#   with --tool-timeout 300, udp200 with --runs "j1 j2 j2gz" --tool-timeout 120 15 min; a quiet machine is faster.
#
# Captures (generated once with real SIPp and tcpdump, cached: DIR/<name>-<secs>s.key holds a hash of the
# scenarios, the parameters and the SIPp version; DIR/<name>-<secs>s.manifest what was measured on the file):
#   udp2000  2,000 calls/s for 60 s over UDP: two SIPp UAC/UAS pairs at 1,000 calls/s each, one UE address
#            (127.0.1.1, ports 5061/5063) and one peer address (127.0.2.1, ports 5060/5062), one media address per
#            side. Half the calls are the "relax" flow (scripts/sipp/rates-relax-*.xml: INVITE Require:
#            precondition, SDP des:qos mandatory -> 420 Unsupported: precondition -> ACK -> retry INVITE, same
#            Call-ID, CSeq + 1, Supported: precondition, des:qos optional -> 200 -> ACK -> BYE -> 200), half the
#            "ims" flow (scripts/sipp/rates-ims-*.xml: INVITE with preconditions -> 183 Require: 100rel, RSeq ->
#            PRACK/200 -> UPDATE/200 -> 180 -> 200 -> ACK -> BYE/200). INVITEs are IMS-sized (about 1.4-1.5 KB:
#            P-Asserted-Identity, P-Access-Network-Info, P-Charging-Vector, ICSI in Contact and Accept-Contact,
#            Session-Expires, an AMR-WB SDP). Each call has its own From user, +4917<call number> (the same in
#            both INVITEs of a relax call), as a probe sees many subscribers on one address pair.
#   udp200   the same flows at 200 calls/s for 600 s (flatness in duration).
#   tcp1000  the same flows at 1,000 calls/s for 60 s over TCP, one connection per pair (sipp -t t1), on a
#            loopback with a 1500-byte MTU and checksum / segmentation offloads off, so the segments are those of a
#            1500-byte wire, and an 80 Mbit/s token bucket (tc tbf) on it, so that TCP packs several SIP messages
#            into many segments (counted and shown; without the bucket SIPp's TCP_NODELAY sends nearly every message
#            in segments of its own).
#   scan10k  a scanner burst: 10,000 INVITEs/s for 20 s, each with a new Call-ID, none answered: 8 SIPp instances
#            on 127.0.3.1-8, one UDP socket per call (sipp -t un: a new source port per INVITE), sent to
#            127.0.2.1:5099 where nothing listens (only UDP is captured, not the ICMP errors).
#   The generator measures on each capture (one tcpdump -A pass): calls (initial INVITEs) and calls/s over the span
#   of the initial INVITEs, packets, bytes, duration, SIP messages, INVITE sizes, TCP segments carrying two or more
#   SIP messages, distinct source addresses and ports; and keeps SIPp's own counts (failed calls, retransmissions).
#   If SIPp cannot keep the rate on this machine, the table header says what the capture really has.
#
# Where the traffic goes: ONLY inside network namespaces this script creates (sarates-<name>, with nothing but their
# own loopback), so no packet leaves them and nothing else on the machine is captured. Every sipp and tcpdump runs
# under `timeout`; sipp calls are bounded by -m. Namespaces and background processes are removed on exit.
#
# Runs (each under /usr/bin/time -v, into an emptied output directory after a `sync`, and with the page cache warmed
# before each run: a kernel that pages out idle page cache, as DAMON does on some VMs, would otherwise charge a
# re-read from disk to the run, 2.6 s of system time for the 935 MB udp2000-60s against 0.2 s from memory; and
# without the `sync` the writeback of the runs before, up to 400 MB each with --messages, was charged to the next,
# 0.4-1.7 s of system time): release `sipaudit analyze` -j1 and -j2 on the
# plain and the gzip file, -j2 --messages, `taskset -c 0` -j1 (one core: the scaling figure), then
# `tshark -n -r F -Y sip -T fields -e frame.number -e sip.Call-ID ...` to /dev/null and `sngrep -N -q -I F`
# (headless; -l set above the number of calls so it keeps every dialog), both under `timeout 600` (the table says
# when one was killed). The table (also DIR/results-rates.md) has, per run: wall s, CPU s (user + sys), packets per
# wall second, packets per CPU second, peak RSS MB, and the verdict counts of sessions.csv (verdict / outcome).
# Needs root (namespaces, capture); installs what it needs with apt-get (sip-tester tcpdump tshark sngrep time gzip
# iproute2 ethtool, and linux-perf for --perf).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "bench-rates.sh: needs root (network namespaces, packet capture)" >&2
  exit 1
fi

QUICK=0
ONLY=()
REPEAT=1
OUT=target/bench-rates
PERF=0
REGEN=0
TSHARK=1
SNGREP=1
TOOL_TIMEOUT=600
GEN_NICE=0
TABLE_ONLY=0
BIN=
RUN_SET=" j1 j2 j1gz j2gz j2m j1c0 "
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; shift ;;
    --only) ONLY+=("${2:?--only needs a capture name}"); shift 2 ;;
    --repeat) REPEAT=${2:?--repeat needs a value}; shift 2 ;;
    --out) OUT=${2:?--out needs a value}; shift 2 ;;
    --perf) PERF=1; shift ;;
    --regen) REGEN=1; shift ;;
    --no-tshark) TSHARK=0; shift ;;
    --no-sngrep) SNGREP=0; shift ;;
    --table-only) TABLE_ONLY=1; shift ;;
    --runs) RUN_SET=" ${2:?--runs needs a list} "; shift 2 ;;
    --tool-timeout) TOOL_TIMEOUT=${2:?--tool-timeout needs a value}; shift 2 ;;
    --gen-nice) GEN_NICE=${2:?--gen-nice needs a value}; shift 2 ;;
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-rates.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$REPEAT" "$TOOL_TIMEOUT"; do
  case "$v" in
    '' | *[!0-9]* | 0) echo "bench-rates.sh: --repeat and --tool-timeout take positive integers, not '$v'" >&2; exit 2 ;;
  esac
done
case "$GEN_NICE" in
  -[0-9] | -1[0-9] | [0-9] | 1[0-9]) ;;
  *) echo "bench-rates.sh: --gen-nice takes -19..19, not '$GEN_NICE'" >&2; exit 2 ;;
esac
ALL=(udp2000 udp200 tcp1000 scan10k)
CAPS=()
if [ ${#ONLY[@]} -gt 0 ]; then
  for c in "${ONLY[@]}"; do
    case " ${ALL[*]} " in *" $c "*) CAPS+=("$c") ;; *) echo "bench-rates.sh: unknown capture '$c' (${ALL[*]})" >&2; exit 2 ;; esac
  done
else
  CAPS=("${ALL[@]}")
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf '[bench-rates] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------------------------ tools
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "$* missing and no apt-get to install it"
  if [ "$APT_UPDATED" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 update -qq
    APT_UPDATED=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq "$@" >/dev/null
}
need_pkgs=()
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v gzip >/dev/null || need_pkgs+=(gzip)
command -v sipp >/dev/null || need_pkgs+=(sip-tester)
command -v tcpdump >/dev/null || need_pkgs+=(tcpdump)
command -v ip >/dev/null || need_pkgs+=(iproute2)
command -v ethtool >/dev/null || need_pkgs+=(ethtool)
{ command -v tshark >/dev/null && command -v capinfos >/dev/null; } || need_pkgs+=(tshark)
command -v sngrep >/dev/null || need_pkgs+=(sngrep)
if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then need_pkgs+=(linux-perf); fi
[ ${#need_pkgs[@]} -eq 0 ] || apt_install "${need_pkgs[@]}"
for t in sipp tcpdump ip ethtool tshark capinfos sngrep taskset timeout gzip; do
  command -v "$t" >/dev/null || die "$t not found"
done
command -v cargo >/dev/null || die "cargo not found (a Rust toolchain is needed)"

# ------------------------------------------------------------------ build
if [ -z "$BIN" ]; then
  log "building sipaudit (release)"
  cargo build --release --quiet --bin sipaudit
fi
# What was built, read now: a commit made during a long run must not be named in the table.
BUILT_FROM="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ', src modified')"
[ "$TABLE_ONLY" = 0 ] || BUILT_FROM="$BUILT_FROM; --table-only: the runs may come from an earlier build"
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
SIPAUDIT=${TARGET_DIR:-$ROOT/target}/release/sipaudit
if [ -n "$BIN" ]; then
  SIPAUDIT=$(realpath "$BIN")
  BUILT_FROM="$BUILT_FROM; binary $SIPAUDIT"
fi
[ -x "$SIPAUDIT" ] || die "no $SIPAUDIT after the build"

# ------------------------------------------------------------------ generation
GEN_VERSION=3 # bump when the way captures are generated changes (invalidates the cached captures)
SIPP_DIR=$ROOT/scripts/sipp
UE_IP=127.0.1.1
PEER_IP=127.0.2.1
SIPP_VERSION=$({ sipp -v 2>&1 || true; } | grep -o 'SIPp v[^ ]*' | head -1 | sed 's/\.$//')

BG_PIDS=()
MY_NS=()
WORK=""
cleanup() {
  local rc=$? pid ns
  trap - EXIT INT TERM
  for pid in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BG_PIDS[@]+"${BG_PIDS[@]}"}"; do wait "$pid" 2>/dev/null || true; done
  for ns in "${MY_NS[@]+"${MY_NS[@]}"}"; do ip netns del "$ns" 2>/dev/null || true; done
  [ -z "$WORK" ] || rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
WORK=$(mktemp -d /tmp/sipaudit-bench-rates.XXXXXX)

# cap_params NAME: sets TRANSPORT, RATE (calls/s, all UACs together), DUR (s) and FLOWS for a capture.
cap_params() {
  case "$1" in
    udp2000) TRANSPORT=udp; RATE=2000; DUR=60; [ "$QUICK" = 0 ] || DUR=10 ;;
    udp200) TRANSPORT=udp; RATE=200; DUR=600; [ "$QUICK" = 0 ] || DUR=60 ;;
    tcp1000) TRANSPORT=tcp; RATE=1000; DUR=60; [ "$QUICK" = 0 ] || DUR=10 ;;
    scan10k) TRANSPORT=udp; RATE=10000; DUR=20; [ "$QUICK" = 0 ] || DUR=5 ;;
  esac
  TARGET_RATE=$RATE
}

# Waits until something listens on PORT (udp or tcp) in namespace NS.
wait_listen() {
  local ns=$1 proto=$2 port=$3 i opt=-Hlun
  [ "$proto" = tcp ] && opt=-Hltn
  for i in $(seq 1 100); do
    [ -n "$(ip netns exec "$ns" ss "$opt" "sport = :$port")" ] && return 0
    sleep 0.1
  done
  die "nothing listens on $proto port $port in $ns"
}

# sipp_final FILE FIELD: a counter from the last statistics screen of a sipp log.
sipp_final() { awk -v f="$2" 'index($0, f) == 3 { split($0, a, "|"); v = a[3] } END { gsub(/ /, "", v); print v + 0 }' "$1"; }
# sipp_retrans FILE: the sum of the Retrans column of the last message screen of a sipp log.
sipp_retrans() {
  awk '/Messages  Retrans/ { s = 0; on = 1; next } on && /(---->|<----)/ { n = split($0, a, " +"); for (i = 1; i <= n; i++) if (a[i] ~ /^(<-+|-+>)$/) { s += a[i + 2] } }
       /^ *$/ && on { on = 0; last = s } END { print (on ? s : last) + 0 }' "$1"
}

# stop_pids PID...: stops background `timeout ... sipp` wrappers this script started: SIGTERM, then after 3 s
# SIGKILL to what is left of each one and of its own children (SIPp may take its time over a SIGTERM).
stop_pids() {
  local pid i left
  [ $# -gt 0 ] || return 0
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for i in $(seq 1 30); do
    left=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ "$left" = 1 ] || break
    sleep 0.1
  done
  for pid in "$@"; do
    if kill -0 "$pid" 2>/dev/null; then
      pkill -KILL -P "$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

generate() {
  local name=$1 base=$2
  local ns=sarates-$name wd=$WORK/$name td_pid i uacs=() uases=() pid fail=0
  local cap=$base.pcap
  mkdir -p "$wd"
  cp "$SIPP_DIR"/rates-*.xml "$wd/"
  ip netns del "$ns" 2>/dev/null || true
  ip netns add "$ns"
  MY_NS+=("$ns")
  ip -n "$ns" link set lo up
  # Software checksums, so the capture has the checksums a wire would carry.
  ip netns exec "$ns" ethtool -K lo tx off >/dev/null 2>&1 || true
  if [ "$TRANSPORT" = tcp ]; then
    ip -n "$ns" link set lo mtu 1500
    ip netns exec "$ns" ethtool -K lo tx off tso off gso off gro off >/dev/null 2>&1 || true
    # SIPp sets TCP_NODELAY, and on an idle loopback nearly every SIP message leaves in segments of its own
    # (measured: 930 of 656,286 segments held two messages). A token bucket on the namespace's loopback (80 Mbit/s,
    # about 1.5 times what 1,000 calls/s need) makes the senders queue a little, as on a loaded link, and TCP
    # then packs several messages into a segment. The manifest counts those segments.
    ip netns exec "$ns" tc qdisc add dev lo root tbf rate 80mbit burst 4500 latency 100ms ||
      log "$name: WARNING: no tbf qdisc here; expect about one SIP message per segment"
  fi
  local filter=udp
  [ "$TRANSPORT" = tcp ] && filter=tcp
  rm -f "$cap.tmp"
  timeout -s INT -k 10 $((DUR + 180)) ip netns exec "$ns" \
    nice -n "$GEN_NICE" tcpdump -i lo -n -s 0 -B 262144 -w "$cap.tmp" "$filter" </dev/null >"$wd/tcpdump.log" 2>&1 &
  td_pid=$!
  BG_PIDS+=("$td_pid")
  for i in $(seq 1 100); do
    grep -q 'listening on' "$wd/tcpdump.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q 'listening on' "$wd/tcpdump.log" || { cat "$wd/tcpdump.log" >&2; die "tcpdump did not start"; }
  sleep 1
  local hard=$((DUR + 120)) common=(-nostdin -skip_rlimit -buff_size 4194304)
  cd "$wd"
  if [ "$name" = scan10k ]; then
    local k per=$((RATE / 8))
    for k in 1 2 3 4 5 6 7 8; do
      timeout -k 5 "$hard" ip netns exec "$ns" nice -n "$GEN_NICE" sipp -sf rates-scan-uac.xml -key fl "s$k-" \
        -cid_str "rates-scan-%u-%p@scanner.invalid" -t un -nr -i "127.0.3.$k" \
        -r "$per" -rp 1000 -m $((per * DUR)) -l 100000 "${common[@]}" "$PEER_IP:5099" \
        </dev/null >"$wd/uac-$k.out" 2>&1 &
      uacs+=($!)
      BG_PIDS+=($!)
    done
  else
    local t=u1 per=$((RATE / 2)) calls
    calls=$((per * DUR))
    [ "$TRANSPORT" = tcp ] && t=t1
    local flow port
    for flow in relax:5060 ims:5062; do
      port=${flow#*:}
      timeout -k 5 "$hard" ip netns exec "$ns" nice -n "$GEN_NICE" sipp -sf "rates-${flow%%:*}-uas.xml" -key fl "${flow%%:*}-p" \
        -t "$t" -i "$PEER_IP" -p "$port" -m "$calls" "${common[@]}" </dev/null >"$wd/uas-${flow%%:*}.out" 2>&1 &
      uases+=($!)
      BG_PIDS+=($!)
      wait_listen "$ns" "$TRANSPORT" "$port"
    done
    for flow in relax:5060:5061:rx ims:5062:5063:im; do
      IFS=: read -r f port lport tag <<<"$flow"
      timeout -k 5 "$hard" ip netns exec "$ns" nice -n "$GEN_NICE" sipp -sf "rates-$f-uac.xml" -key fl "$tag" \
        -cid_str "rates-$tag-%u-%p@ue.sipaudit.test" -t "$t" -i "$UE_IP" -p "$lport" \
        -r "$per" -rp 1000 -m "$calls" -l 200000 "${common[@]}" "$PEER_IP:$port" \
        </dev/null >"$wd/uac-$f.out" 2>&1 &
      uacs+=($!)
      BG_PIDS+=($!)
    done
  fi
  cd "$ROOT"
  log "$name: SIPp running ($RATE calls/s for $DUR s, $TRANSPORT)"
  # Watchdog: a receiver that cannot keep up shows as UDP receive-buffer drops (RcvbufErrors) in the namespace; then
  # SIPp retransmits, which loads it more. Past 1 % of the datagrams, this attempt is given up (return 3) and the
  # caller tries a lower rate. The scanner's INVITEs have no receiver and are not watched.
  local t=0 alive snmp
  while :; do
    alive=0
    for pid in "${uacs[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 1 ] || break
    sleep 2
    t=$((t + 2))
    if [ "$name" != scan10k ] && [ "$TRANSPORT" = udp ] && [ "$t" -ge 6 ]; then
      snmp=$(ip netns exec "$ns" awk '/^Udp:/ && $2 ~ /^[0-9]+$/ { print $2, $6 }' /proc/net/snmp)
      if awk -v s="$snmp" 'BEGIN { split(s, a, " "); exit !(a[2] * 100 > a[1] + a[2] && a[2] > 1000) }'; then
        log "$name: overloaded after $t s at $RATE calls/s (UDP InDatagrams / RcvbufErrors: $snmp): giving up this rate"
        stop_pids "${uacs[@]}" "${uases[@]+"${uases[@]}"}"
        kill -INT "$td_pid" 2>/dev/null || true
        wait "$td_pid" 2>/dev/null || true
        BG_PIDS=()
        ip netns del "$ns" 2>/dev/null || true
        rm -f "$cap.tmp"
        return 3
      fi
    fi
  done
  for pid in "${uacs[@]}"; do wait "$pid" || { log "$name: a SIPp UAC exited with $? (see its log below)"; fail=1; }; done
  sleep 3
  stop_pids "${uases[@]+"${uases[@]}"}"
  sleep 0.5
  kill -INT "$td_pid" 2>/dev/null || true
  wait "$td_pid" || true
  BG_PIDS=()
  snmp=$(ip netns exec "$ns" awk '/^Udp:/ && $2 ~ /^[0-9]+$/ { print $2, $6 }' /proc/net/snmp)
  ip netns del "$ns" 2>/dev/null || true
  grep -q '^0 packets dropped by kernel' "$wd/tcpdump.log" || { cat "$wd/tcpdump.log" >&2; die "$name: tcpdump dropped packets"; }
  # SIPp's own view: failed calls and retransmissions (a loaded machine shows here first).
  local succ=0 failed=0 retrans=0 f
  for f in "$wd"/uac-*.out; do
    succ=$((succ + $(sipp_final "$f" 'Successful call')))
    failed=$((failed + $(sipp_final "$f" 'Failed call')))
    retrans=$((retrans + $(sipp_retrans "$f")))
  done
  if [ "$fail" != 0 ] || [ "$failed" != 0 ]; then
    for f in "$wd"/uac-*.out; do log "--- $f"; tail -45 "$f" >&2; done
    log "$name: WARNING: SIPp reports $failed failed call(s); the capture is kept and described as it is"
  fi
  {
    echo "name=$name"
    echo "transport=$TRANSPORT"
    echo "target_cps=$TARGET_RATE"
    echo "target_duration_s=$DUR"
    echo "sipp=$SIPP_VERSION"
    echo "sipp_successful_calls=$succ"
    echo "sipp_failed_calls=$failed"
    echo "sipp_retransmissions=$retrans"
    echo "udp_in_datagrams_rcvbuf_errors=${snmp:-0 0}"
    echo "attempted_cps=$RATE"
  } >"$base.manifest.tmp"
  mv "$cap.tmp" "$cap"
}

# describe CAP MANIFEST: measures the capture (one tcpdump -A pass, capinfos) and appends to the manifest.
describe() {
  local cap=$1 mf=$2
  tcpdump -nn -tt -q -A -r "$cap" 2>/dev/null | awk '
    function endpkt() {
      if (!np) return
      if (len > 0) seg++
      if (msgs >= 2) multi++
      nmsg += msgs
      if (inv && isudp) {
        ninv++; invb += len
        if (imin == "" || len < imin) imin = len
        if (len > imax) imax = len
        if (!ti0) ti0 = ts
        ti1 = ts
      }
      if (init) { calls += init; if (!tc0) tc0 = ts; tc1 = ts; if (cid != "") ids[cid] = 1 }
      if (inv && isudp && cid != "") sids[cid] = 1
    }
    /^[0-9]+\.[0-9]+ IP6? / {
      endpkt()
      np++; ts = $1; msgs = 0; inv = 0; init = 0; len = 0; cid = ""
      isudp = index($0, ": UDP,") > 0
      if (match($0, /(length|tcp) [0-9]+$/)) { split(substr($0, RSTART), a, " "); len = a[2] + 0 }
      src = $3; srcs[src] = 1; sub(/\.[0-9]+$/, "", src); addrs[src] = 1
      next
    }
    {
      msgs += gsub(/Content-Length: /, "&")
      if (index($0, "INVITE sip:")) inv = 1
      if (index($0, "Require: precondition")) init++
      if (index($0, "Call-ID: ") == 1) cid = substr($0, 10)
    }
    END {
      endpkt()
      ns = 0; for (s in srcs) ns++
      na = 0; for (s in addrs) na++
      if (calls == 0) { calls = ninv; tc0 = ti0; tc1 = ti1; for (c in sids) ids[c] = 1 }
      nid = 0; for (c in ids) nid++
      span = tc1 - tc0
      # calls: initial INVITE packets (retransmissions included); call_ids: their distinct Call-IDs
      printf "calls=%d\ncall_ids=%d\ncall_span_s=%.3f\ncalls_per_s=%.1f\n", calls, nid, span, (span > 0) ? nid / span : 0
      printf "sip_messages=%d\nudp_invites=%d\n", nmsg, ninv
      printf "invite_ip_payload_bytes_min=%d\ninvite_ip_payload_bytes_avg=%.0f\ninvite_ip_payload_bytes_max=%d\n", imin, (ninv ? invb / ninv : 0), imax
      printf "segments_with_payload=%d\npackets_with_2plus_messages=%d\n", seg, multi
      printf "source_addresses=%d\nsource_address_ports=%d\n", na, ns
    }' >>"$mf"
  capinfos -M -c -d -u "$cap" | awk -F': *' '
    /^Number of packets/ { print "packets=" $2 }
    /^Data size/ { v = $2; sub(/ .*/, "", v); print "bytes=" v }
    /^Capture duration/ { v = $2; sub(/ .*/, "", v); print "duration_s=" v }' >>"$mf"
  echo "file_bytes=$(stat -c %s "$cap")" >>"$mf"
}

ensure_capture() { # ensure_capture NAME: sets CAP, GZ, MANIFEST
  local name=$1 base key
  cap_params "$name"
  base=$OUT/$name-${DUR}s
  CAP=$base.pcap GZ=$base.pcap.gz MANIFEST=$base.manifest
  key=$( {
    echo "gen=$GEN_VERSION name=$name transport=$TRANSPORT rate=$RATE dur=$DUR sipp=$SIPP_VERSION"
    [ "$TRANSPORT" != tcp ] || echo "tcp: tbf 80mbit"
    sha256sum "$SIPP_DIR"/rates-*.xml | awk '{ print $1 }'
  } | sha256sum | cut -d' ' -f1)
  if [ "$REGEN" = 0 ] && [ -f "$CAP" ] && [ -f "$GZ" ] && [ -f "$MANIFEST" ] && [ "$(cat "$base.key" 2>/dev/null)" = "$key" ]; then
    log "$name: reusing $CAP (+ .gz)"
    return
  fi
  rm -f "$CAP" "$GZ" "$MANIFEST" "$base.key"
  local free_mb
  free_mb=$(df -Pm "$OUT" | awk 'NR == 2 { print $4 }')
  [ "$free_mb" -gt $((RATE * DUR * 25 / 1000 + 500)) ] || die "$OUT has only $free_mb MB free"
  log "$name: generating $CAP ($RATE calls/s, $DUR s, $TRANSPORT)"
  # When this machine cannot carry the rate (see the watchdog in generate), try 3/4 of it, and so on, down to 1/4
  # of the target: the table header and the manifest say what the capture really has.
  local target=$TARGET_RATE rc
  while :; do
    rc=0
    generate "$name" "$base" || rc=$?
    [ "$rc" = 3 ] || break
    RATE=$((RATE * 3 / 4 / 100 * 100))
    [ "$RATE" -ge $((target / 4)) ] || die "$name: this machine cannot carry even $((target / 4)) calls/s now"
    log "$name: trying again at $RATE calls/s"
  done
  [ "$rc" = 0 ] || exit "$rc"
  log "$name: measuring the capture"
  describe "$CAP" "$MANIFEST.tmp"
  echo "file=$CAP" >>"$MANIFEST.tmp"
  log "$name: gzip copy"
  gzip -c -6 "$CAP" >"$GZ.tmp"
  mv "$GZ.tmp" "$GZ"
  echo "gz_bytes=$(stat -c %s "$GZ")" >>"$MANIFEST.tmp"
  mv "$MANIFEST.tmp" "$MANIFEST"
  echo "$key" >"$base.key"
  log "$name: $(tr '\n' ' ' <"$MANIFEST")"
}

# ------------------------------------------------------------------ runs
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_case NAME REPEAT DIR CMD...: REPEAT timed runs; the median wall and CPU time, the largest peak RSS, the worst
# exit status and the verdict counts of DIR/sessions.csv (DIR "-": none) go to RESULTS.
# stdout goes to /dev/null when STDOUT_NULL=1.
run_case() {
  local name=$1 repeat=$2 dir=$3 slug rc t0 t1 i wall rss cpu walls=() cpus=() maxrss=0 worst=0 verdicts=-
  shift 3
  slug=$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_')
  for ((i = 1; i <= repeat; i++)); do
    if [ "$repeat" -gt 1 ]; then log "run: $name [$i/$repeat]"; else log "run: $name"; fi
    rc=0
    [ "$dir" = - ] || rm -rf "$dir"
    # No run pays for the writeback of the ones before: each wrote up to 400 MB (with --messages) that the
    # kernel writes to disk over the next seconds.
    sync
    cat "$CAP" "$GZ" >/dev/null # from memory, whatever the kernel paged out since the last run
    t0=$(date +%s.%N)
    if [ "${STDOUT_NULL:-0}" = 1 ]; then
      /usr/bin/time -v -o "$RUNS/$slug.time" "$@" >/dev/null 2>"$RUNS/$slug.stderr" || rc=$?
    else
      /usr/bin/time -v -o "$RUNS/$slug.time" "$@" >"$RUNS/$slug.stdout" 2>"$RUNS/$slug.stderr" || rc=$?
    fi
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$RUNS/$slug.time")
    cpu=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$RUNS/$slug.time")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$CAPNAME" "$name" "$i" "$wall" "$cpu" "${rss:-0}" >>"$RUNS/all-runs.tsv"
    walls+=("$wall")
    cpus+=("$cpu")
    [ "${rss:-0}" -gt "$maxrss" ] && maxrss=${rss:-0}
    if [ "$rc" != 0 ]; then
      log "  exit $rc: see $RUNS/$slug.stderr"
      worst=$rc
    fi
  done
  if [ "$dir" != - ] && [ -f "$dir/sessions.csv" ]; then verdicts=$(verdict_counts "$dir/sessions.csv"); fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$CAPNAME" "$name" "$(median "${walls[@]}")" "$(median "${cpus[@]}")" \
    "$maxrss" "$worst" "$verdicts" >>"$RESULTS"
}

# verdict_counts SESSIONS_CSV: "VERDICT n, ...; OUTCOME n, ..." from the verdict and outcome columns (by header name).
verdict_counts() {
  awk -F, '
    NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "verdict") v = i; if ($i == "outcome") o = i }; next }
    { if (v) cv[$v]++; if (o) co[$o]++ }
    function join(c,   k, s, n, keys, i, j, t) {
      n = 0; for (k in c) keys[++n] = k
      for (i = 2; i <= n; i++) { t = keys[i]; for (j = i - 1; j > 0 && keys[j] > t; j--) keys[j + 1] = keys[j]; keys[j + 1] = t }
      s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? ", " : "") keys[i] " " c[keys[i]]
      return s
    }
    END { printf "%s; %s", join(cv), join(co) }' "$1"
}

mf() { sed -n "s/^$1=//p" "$2"; }

# Each capture has its own run directory, DIR/runs/<name>-<secs>s (emptied when that capture is run again), with
# results.tsv (one line per configuration), all-runs.tsv (every repeat), the /usr/bin/time -v outputs, the sipaudit
# reports and, for udp2000 with --perf, perf.data and perf-top.txt. The table shows every capture of ALL that has one.
[ "$TABLE_ONLY" = 0 ] || CAPS=()
for CAPNAME in "${CAPS[@]+"${CAPS[@]}"}"; do
  ensure_capture "$CAPNAME"
  RUNS=$OUT/runs/$CAPNAME-${DUR}s
  rm -rf "$RUNS"
  mkdir -p "$RUNS"
  RESULTS=$RUNS/results.tsv
  : >"$RESULTS"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$RUNS/started"
  cut -d' ' -f1-3 /proc/loadavg >"$RUNS/loadavg"
  o=$RUNS/out
  mkdir -p "$o"
  want() { case "$RUN_SET" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
  want j1 && run_case "sipaudit -j1 (pcap)" "$REPEAT" "$o/j1" "$SIPAUDIT" analyze -j1 --progress never -o "$o/j1" "$CAP"
  want j2 && run_case "sipaudit -j2 (pcap)" "$REPEAT" "$o/j2" "$SIPAUDIT" analyze -j2 --progress never -o "$o/j2" "$CAP"
  want j1gz && run_case "sipaudit -j1 (gzip)" "$REPEAT" "$o/j1gz" "$SIPAUDIT" analyze -j1 --progress never -o "$o/j1gz" "$GZ"
  want j2gz && run_case "sipaudit -j2 (gzip)" "$REPEAT" "$o/j2gz" "$SIPAUDIT" analyze -j2 --progress never -o "$o/j2gz" "$GZ"
  want j2m && run_case "sipaudit -j2 --messages (pcap)" "$REPEAT" "$o/j2m" "$SIPAUDIT" analyze -j2 --messages --progress never -o "$o/j2m" "$CAP"
  rm -f "$o/j2m/messages.csv" # large; the run is timed for its writing, not kept
  want j1c0 && run_case "taskset -c 0 sipaudit -j1 (pcap)" "$REPEAT" "$o/j1c0" taskset -c 0 "$SIPAUDIT" analyze -j1 --progress never -o "$o/j1c0" "$CAP"
  # Same sessions whatever -j, the input form (the file column names the .gz: compared without it) and --messages.
  first=""
  for d in j1 j2 j1gz j2gz j2m j1c0; do
    [ -f "$o/$d/sessions.csv" ] || continue
    [ -n "$first" ] || { first=$d; continue; }
    cmp -s <(sed 's/\.pcap\.gz,/.pcap,/' "$o/$first/sessions.csv") <(sed 's/\.pcap\.gz,/.pcap,/' "$o/$d/sessions.csv") ||
      log "  WARNING: $CAPNAME: $d/sessions.csv differs from $first/sessions.csv"
  done
  if [ "$PERF" = 1 ] && [ "$CAPNAME" = udp2000 ]; then
    log "run: perf record -g sipaudit -j1 (pcap)"
    cat "$CAP" >/dev/null # from memory, as every timed run
    if perf record -g -o "$RUNS/perf.data" -- "$SIPAUDIT" analyze -j1 --progress never -o "$o/perf" "$CAP" \
      >"$RUNS/perf-record.log" 2>&1; then
      perf report -i "$RUNS/perf.data" --no-children --stdio --sort symbol -g none 2>/dev/null |
        awk '!/^#/ && !/^ *$/ { sub(/[ \t-]*$/, ""); if (++n <= 10) print }' >"$RUNS/perf-top.txt"
      # The same samples by thread: each stage's thread is named (src/threads.rs).
      perf report -i "$RUNS/perf.data" --no-children --stdio --sort comm -g none 2>/dev/null |
        awk '!/^#/ && !/^ *$/ { sub(/[ \t-]*$/, ""); print }' >"$RUNS/perf-threads.txt"
    else
      log "perf record failed: see $RUNS/perf-record.log"
    fi
  fi
  if [ "$TSHARK" = 1 ]; then
    STDOUT_NULL=1 run_case "tshark -Y sip -T fields (pcap)" 1 - timeout "$TOOL_TIMEOUT" tshark -n -r "$CAP" -Y sip -T fields \
      -e frame.number -e frame.time_epoch -e ip.src -e ip.dst -e sip.Call-ID -e sip.CSeq -e sip.Method \
      -e sip.Status-Code -e sip.Require -e sip.Supported -e sip.Unsupported
  fi
  if [ "$SNGREP" = 1 ]; then
    STDOUT_NULL=1 run_case "sngrep -N -q -I (pcap)" 1 - timeout "$TOOL_TIMEOUT" sngrep -N -q -l $(($(mf calls "$MANIFEST") * 2 + 1000)) \
      -I "$CAP"
  fi
  echo "$TOOL_TIMEOUT" >"$RUNS/tool_timeout"
  echo "$QUICK" >"$RUNS/quick"
done

# ------------------------------------------------------------------ table
TABLE=$OUT/results-rates.md
{
  printf '# sipaudit benchmark of real rates (table written %s)\n\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf -- '- machine: %s cores, %s, shared (load average before each capture'"'"'s runs in its header); sipaudit %s (git %s%s)\n' "$(nproc)" \
    "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" \
    "$("$SIPAUDIT" --version | cut -d' ' -f2)" "$BUILT_FROM" ""
  printf -- '- %s; %s; %s\n' "$SIPP_VERSION" "$(tshark --version 2>/dev/null | awk 'NR == 1')" "$(sngrep -V 2>/dev/null | awk 'NR == 1')"
  printf -- '- wall and CPU s (user + sys): median of %s run(s) for sipaudit, 1 run for tshark and sngrep; peak RSS: largest of the runs\n' "$REPEAT"
  printf -- '- pkt/s = packets / wall s; pkt/CPU-s = packets / CPU s (a killed run did not read the whole file: "< " marks an upper bound); verdicts: counts of the verdict and outcome columns of sessions.csv\n'
  for rd in $(for c in "${ALL[@]}"; do ls -d "$OUT/runs/$c"-*s 2>/dev/null | sort -t- -k2 -rn; done); do
    [ -f "$rd/results.tsv" ] && [ -f "$rd/quick" ] || continue
    CAPNAME=$(basename "$rd")
    m=$OUT/$CAPNAME.manifest
    [ -f "$m" ] || continue
    cps=$(mf calls_per_s "$m")
    if [ "$(mf transport "$m")" = tcp ]; then
      # Over TCP a header can straddle two segments, so the text count of initial INVITEs is short: the rate is
      # SIPp's number of calls over the span of the INVITEs seen.
      cps=$(awk -v a="$(mf sipp_successful_calls "$m")" -v b="$(mf sipp_failed_calls "$m")" -v s="$(mf call_span_s "$m")" \
        'BEGIN { printf "%.1f", (s > 0) ? (a + b) / s : 0 }')
    fi
    printf '\n## %s: %s calls/s achieved (target %s), %s, %s s%s\n\n' "$CAPNAME" "$cps" "$(mf target_cps "$m")" \
      "$(mf transport "$m" | tr '[:lower:]' '[:upper:]')" "$(mf duration_s "$m")" "$([ "$(cat "$rd/quick")" = 1 ] && echo ' (--quick)')"
    printf -- '- runs started %s, load average then %s\n' "$(cat "$rd/started")" "$(cat "$rd/loadavg")"
    printf -- '- `%s`: %s packets, %s bytes of packets (%.1f MB file, gzip %.1f MB), %s s; %s calls over %s s, %s SIP messages\n' \
      "$(basename "$(mf file "$m")")" "$(mf packets "$m")" "$(mf bytes "$m")" "$(awk -v b="$(mf file_bytes "$m")" 'BEGIN { print b / 1e6 }')" \
      "$(awk -v b="$(mf gz_bytes "$m")" 'BEGIN { print b / 1e6 }')" "$(mf duration_s "$m")" \
      "$(if [ "$(mf transport "$m")" = tcp ]; then echo "$(($(mf sipp_successful_calls "$m") + $(mf sipp_failed_calls "$m"))) (SIPp's count)";
         else mf call_ids "$m" | grep . || mf calls "$m"; fi)" \
      "$(mf call_span_s "$m")" "$(mf sip_messages "$m")"
    if [ "$(mf transport "$m")" = udp ]; then
      printf -- '- INVITE (IP payload: UDP header + SIP) min / avg / max: %s / %s / %s bytes; average packet %.0f bytes\n' \
        "$(mf invite_ip_payload_bytes_min "$m")" "$(mf invite_ip_payload_bytes_avg "$m")" "$(mf invite_ip_payload_bytes_max "$m")" \
        "$(awk -v b="$(mf bytes "$m")" -v p="$(mf packets "$m")" 'BEGIN { print b / p }')"
    else
      printf -- '- %s TCP segments with payload for %s SIP messages (%.2f messages per segment); %s segments hold two or more messages (counted by Content-Length headers)\n' \
        "$(mf segments_with_payload "$m")" "$(mf sip_messages "$m")" \
        "$(awk -v a="$(mf sip_messages "$m")" -v b="$(mf segments_with_payload "$m")" 'BEGIN { print (b ? a / b : 0) }')" \
        "$(mf packets_with_2plus_messages "$m")"
    fi
    asked=$(mf attempted_cps "$m")
    asked=${asked:-$(mf target_cps "$m")}
    printf -- '- %s source address(es), %s source address:port pairs; SIPp: %s calls/s asked%s, %s successful, %s failed calls, %s retransmissions\n\n' \
      "$(mf source_addresses "$m")" "$(mf source_address_ports "$m")" "$asked" \
      "$([ "$asked" != "$(mf target_cps "$m")" ] && echo ' (higher rates overloaded this machine: UDP receive-buffer drops)')" \
      "$(mf sipp_successful_calls "$m")" "$(mf sipp_failed_calls "$m")" "$(mf sipp_retransmissions "$m")"
    printf '| run | wall s | CPU s | pkt/s | pkt/CPU-s | peak RSS MB | verdicts; outcomes |\n'
    printf '|---|---:|---:|---:|---:|---:|---|\n'
    P=$(mf packets "$m")
    awk -F'\t' -v p="$P" -v to="$(cat "$rd/tool_timeout")" '
      {
        name = $2; rc = $6
        if (rc == 124) name = name " **killed at " to " s**"
        else if (rc != 0) name = name " FAILED(" rc ")"
        # a killed run read only part of the file: its rates are upper bounds
        lt = (rc == 124) ? "< " : ""
        printf "| %s | %.2f | %.2f | %s%.0f | %s | %.0f | %s |\n", name, $3, $4, lt, p / $3,
          ($4 > 0 ? sprintf("%s%.0f", lt, p / $4) : "-"), $5 * 1024 / 1e6, $7
      }' "$rd/results.tsv"
    if [ -s "$rd/perf-top.txt" ]; then
      printf '\nperf: top 10 symbols of `sipaudit analyze -j1` on %s (perf record -g; perf report --no-children --sort symbol):\n\n```\n' "$CAPNAME"
      cat "$rd/perf-top.txt"
      printf '```\n'
    fi
    if [ -s "$rd/perf-threads.txt" ]; then
      printf '\nperf: the same samples by thread (perf report --sort comm; sipaudit = the calling thread):\n\n```\n'
      cat "$rd/perf-threads.txt"
      printf '```\n'
    fi
  done
} >"$TABLE"
cat "$TABLE"
echo
echo "(table: $TABLE; manifests: $OUT/*.manifest; per-run /usr/bin/time -v output and stderr: $OUT/runs/<capture>)"
