#!/usr/bin/env bash
# gen-samples.sh: regenerate sipaudit's real sample captures with SIPp and tcpdump.
#
# Usage:  sudo scripts/gen-samples.sh [CASE...]        (no CASE: every case, in the order below)
#   Cases: ims-precondition-call relaxed-retry-420 sll2-any ipv6-call fragmented-invite fragmented-invite-v6
#   Writes samples/<case>/capture.pcap and samples/<case>/README.md; nothing else under samples/ is touched.
#   Environment: SA_NO_INSTALL=1 never runs apt-get (the script fails if a tool is missing).
#
# What it does, per case: a SIPp UAS (scripts/sipp/*-uas.xml) in the background, tcpdump (-U -s 0 -w) on the
# right interface, one SIPp UAC call (-m 1), then tcpdump is stopped with SIGINT, the flow in the capture is
# checked against the expected sequence of SIP messages, and the capture and its README are moved into place.
#
# Where the traffic goes: ONLY to loopback addresses or to addresses inside network namespaces this script creates
# (sagen-lo: a private loopback; sagen-a / sagen-b: two namespaces joined by a veth pair, 10.99.0.0/24 and
# fd00:99::/64, which exist only inside those namespaces). Every run is bounded: sipp -m 1 -timeout 10s
# -timeout_error, and every sipp and tcpdump runs under `timeout`. Namespaces and background processes are removed
# on exit (trap). Without permission to create namespaces, the loopback cases fall back to the host's loopback and
# the veth (fragment) cases fail with a clear message.
#
# Idempotent: a rerun regenerates every capture. SIP identifiers (Call-ID, tags, branches, CSeq, ports) are fixed,
# so a new capture differs from the old one only in timestamps, IP ids and checksums.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIPP_SRC="$ROOT/scripts/sipp"
SAMPLES="$ROOT/samples"
ALL_CASES=(ims-precondition-call relaxed-retry-420 sll2-any ipv6-call fragmented-invite fragmented-invite-v6)

UAS_PORT=5060
UAC_PORT=5061
SIPP_TIMEOUT=10s   # sipp's own global timeout (with -timeout_error: a timeout is a failure)
HARD_TIMEOUT=40    # seconds: outer `timeout` around every sipp
CAPTURE_TIMEOUT=90 # seconds: outer `timeout` around every tcpdump

NS_LO=sagen-lo
NS_A=sagen-a
NS_B=sagen-b
VETH_A=sagen-va
VETH_B=sagen-vb
MAC_A=02:53:41:00:00:01
MAC_B=02:53:41:00:00:02
V4_A=10.99.0.1
V4_B=10.99.0.2
V6_A=fd00:99::1
V6_B=fd00:99::2

log() { printf '[gen-samples] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- privileges, tools ----
if [[ $EUID -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E bash "${BASH_SOURCE[0]}" "$@"
    fi
    die "needs root (network namespaces, packet capture) and sudo is not available"
fi

apt_retry() { # apt-get with retries: another apt/dpkg may hold the lock (e.g. an install running in the background)
    local try
    for try in $(seq 1 30); do
        if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=60 "$@"; then
            return 0
        fi
        log "apt-get $1 failed (attempt $try/30; apt/dpkg may be locked), retrying in 10 s"
        sleep 10
    done
    return 1
}

ensure_tools() {
    local missing=() t
    for t in sipp tcpdump ip ss; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if ((${#missing[@]})); then
        [[ ${SA_NO_INSTALL:-0} == 1 ]] && die "missing: ${missing[*]} (and SA_NO_INSTALL=1)"
        log "installing sip-tester tcpdump iproute2 (missing: ${missing[*]})"
        apt_retry update || die "apt-get update failed"
        apt_retry install -y sip-tester tcpdump iproute2 || die "apt-get install failed"
    fi
    for t in sipp tcpdump ip ss timeout flock od; do
        command -v "$t" >/dev/null 2>&1 || die "$t not found after install"
    done
}

# ---------------------------------------------------------------- state and cleanup ----
BG_PIDS=()   # background processes this script started (timeout wrappers of sipp and tcpdump)
MY_NETNS=()  # namespaces this script created
TMP=""
KEEP_TMP=0

cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM
    for pid in "${BG_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${BG_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    for ns in "${MY_NETNS[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    if [[ -n $TMP && -d $TMP ]]; then
        if ((rc != 0 || KEEP_TMP)); then
            log "logs kept in $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

forget_pid() { # drop one pid from BG_PIDS once it has been waited for
    local p keep=()
    for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    BG_PIDS=("${keep[@]+"${keep[@]}"}")
}

in_ns() { # in_ns NS CMD...  (NS empty: the host's own namespace)
    local ns=$1; shift
    if [[ -n $ns ]]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

ns_add() {
    # Names are this script's own (sagen-*); one left behind by a killed run is removed first.
    ip netns del "$1" 2>/dev/null || true
    ip netns add "$1"
    MY_NETNS+=("$1")
    ip -n "$1" link set lo up
}

ns_del() {
    local ns keep=()
    for ns in "$@"; do ip netns del "$ns" 2>/dev/null || true; done
    for ns in "${MY_NETNS[@]}"; do
        [[ " $* " == *" $ns "* ]] || keep+=("$ns")
    done
    MY_NETNS=("${keep[@]+"${keep[@]}"}")
}

NETNS_OK=0
probe_netns() {
    if ns_add sagen-probe 2>/dev/null && ip netns exec sagen-probe true 2>/dev/null; then
        NETNS_OK=1
    else
        log "WARNING: cannot create network namespaces here; loopback cases use the host's loopback," \
            "the fragment cases will fail"
    fi
    ns_del sagen-probe
}

# ---------------------------------------------------------------- capture ----
TD_PID=""
TD_LOG=""

start_capture() { # start_capture NS IFACE OUTFILE LINKTYPE(or "") FILTER
    local ns=$1 ifc=$2 out=$3 lt=$4 filter=$5 i
    local ytype=()
    [[ -n $lt ]] && ytype=(-y "$lt")
    TD_LOG="$out.tcpdump.log"
    rm -f "$out"
    if [[ -n $ns ]]; then
        timeout -s INT -k 5 "$CAPTURE_TIMEOUT" ip netns exec "$ns" \
            tcpdump -i "$ifc" "${ytype[@]+"${ytype[@]}"}" -n -s 0 -U --immediate-mode -Z root -w "$out" "$filter" \
            </dev/null >"$TD_LOG" 2>&1 &
    else
        timeout -s INT -k 5 "$CAPTURE_TIMEOUT" \
            tcpdump -i "$ifc" "${ytype[@]+"${ytype[@]}"}" -n -s 0 -U --immediate-mode -Z root -w "$out" "$filter" \
            </dev/null >"$TD_LOG" 2>&1 &
    fi
    TD_PID=$!
    BG_PIDS+=("$TD_PID")
    for i in $(seq 1 100); do
        grep -q 'listening on' "$TD_LOG" 2>/dev/null && break
        kill -0 "$TD_PID" 2>/dev/null || { cat "$TD_LOG" >&2; die "tcpdump did not start"; }
        sleep 0.1
    done
    grep -q 'listening on' "$TD_LOG" || { cat "$TD_LOG" >&2; die "tcpdump not ready after 10 s"; }
    sleep 1
}

stop_capture() {
    local i rc=0
    sleep 0.5   # let the last packets reach the capture
    kill -INT "$TD_PID" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$TD_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$TD_PID" 2>/dev/null && kill -TERM "$TD_PID" 2>/dev/null
    wait "$TD_PID" || rc=$?
    forget_pid "$TD_PID"
    ((rc == 0)) || { cat "$TD_LOG" >&2; die "tcpdump exited with $rc"; }
    grep -q '^0 packets dropped by kernel' "$TD_LOG" || { cat "$TD_LOG" >&2; die "tcpdump dropped packets"; }
}

# ---------------------------------------------------------------- sipp ----
# run_call CASE UAS_NS UAS_IP UAC_NS UAC_IP UAS_XML UAC_XML
# UAS in the background (bound to UAS_IP:5060), waits for its socket, then one UAC call from UAC_IP:5061.
run_call() {
    local case=$1 uas_ns=$2 uas_ip=$3 uac_ns=$4 uac_ip=$5 uas_xml=$6 uac_xml=$7
    local wd="$TMP/$case" dest uas_pid i urc=0 crc=0
    if [[ $uas_ip == *:* ]]; then dest="[$uas_ip]:$UAS_PORT"; else dest="$uas_ip:$UAS_PORT"; fi
    local common=(-key sa_case "$case" -m 1 -timeout "$SIPP_TIMEOUT" -timeout_error -nostdin -trace_err -trace_logs)

    # sipp writes its trace files next to the scenario file: run copies in the work directory.
    cp "$SIPP_SRC/$uas_xml" "$SIPP_SRC/$uac_xml" "$wd/"
    cd "$wd"
    # Launched as plain commands (not through a shell function) so that $! is the `timeout` process itself:
    # the EXIT trap can then stop sipp through it.
    local uas_pre=() uac_pre=() uac_pid
    [[ -z $uas_ns ]] || uas_pre=(ip netns exec "$uas_ns")
    [[ -z $uac_ns ]] || uac_pre=(ip netns exec "$uac_ns")
    timeout -k 5 "$HARD_TIMEOUT" "${uas_pre[@]+"${uas_pre[@]}"}" \
        sipp -sf "$wd/$uas_xml" -i "$uas_ip" -p "$UAS_PORT" "${common[@]}" \
        </dev/null >"$wd/uas.out" 2>&1 &
    uas_pid=$!
    BG_PIDS+=("$uas_pid")
    for i in $(seq 1 100); do
        [[ -n $(in_ns "$uas_ns" ss -Hlun "sport = :$UAS_PORT") ]] && break
        kill -0 "$uas_pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $(in_ns "$uas_ns" ss -Hlun "sport = :$UAS_PORT") ]] || {
        tail -20 "$wd/uas.out" >&2; die "$case: the sipp UAS is not listening on $UAS_PORT"; }

    # The UAC runs in the background too, so that a signal to this script is handled at once (by the trap).
    timeout -k 5 "$HARD_TIMEOUT" "${uac_pre[@]+"${uac_pre[@]}"}" \
        sipp -sf "$wd/$uac_xml" -i "$uac_ip" -p "$UAC_PORT" "${common[@]}" \
        -cid_str "sa-$case-%u@ue.sipaudit.test" "$dest" \
        </dev/null >"$wd/uac.out" 2>&1 &
    uac_pid=$!
    BG_PIDS+=("$uac_pid")
    wait "$uac_pid" || crc=$?
    forget_pid "$uac_pid"
    wait "$uas_pid" || urc=$?
    forget_pid "$uas_pid"
    cd "$ROOT"
    UAC_RC=$crc
    UAS_RC=$urc
    if ((crc != 0 || urc != 0)); then
        log "$case: sipp UAC exit $crc, UAS exit $urc (0 = every call succeeded)"
        local f
        for f in "$wd"/*errors.log "$wd"/*logs.log; do [[ -f $f ]] && { log "--- $f"; tail -30 "$f" >&2; }; done
        log "--- uac.out"; grep -v '^\s*$' "$wd/uac.out" | tail -25 >&2 || true
        log "--- uas.out"; grep -v '^\s*$' "$wd/uas.out" | tail -25 >&2 || true
        die "$case: a SIPp scenario failed"
    fi
}

# ---------------------------------------------------------------- checks ----
# sip_flow FILE: one line per packet that starts a SIP message: "<start> | CSeq: <n> <method>".
# The start line of a fragmented message is in its first fragment, so this needs no reassembly.
sip_flow() {
    tcpdump -nn -A -r "$1" 2>/dev/null | awk '
        function flush() { if (start != "") printf "%s | CSeq: %s\n", start, cseq; start = ""; cseq = "" }
        /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]+ / { flush(); next }
        start == "" && match($0, /(INVITE|ACK|BYE|CANCEL|PRACK|UPDATE|OPTIONS|REGISTER) (sip|sips|tel):[^ ]* SIP\/2\.0/) {
            s = substr($0, RSTART, RLENGTH); sub(/ (sip|sips|tel):.*/, "", s); start = s; next }
        start == "" && match($0, /SIP\/2\.0 [1-6][0-9][0-9] /) { start = substr($0, RSTART + 8, 3); next }
        start != "" && cseq == "" && /^CSeq: / { cseq = $2 " " $3; sub(/\r$/, "", cseq) }
        END { flush() }'
}

packet_count() { tcpdump -nn -r "$1" 2>/dev/null | wc -l; }

linktype_name() { tcpdump -r "$1" 2>&1 >/dev/null | sed -n 's/.*link-type \([^ ]*\) .*/\1/p' | head -1; }
linktype_num() { od -An -tu4 -j20 -N4 "$1" | tr -d ' '; }

check_flow() { # check_flow CASE FILE EXPECTED(one "<start> | CSeq: n M" per line)
    local got
    got=$(sip_flow "$2")
    if [[ $got != "$3" ]]; then
        log "$1: unexpected SIP flow in the capture"
        diff <(printf '%s\n' "$3") <(printf '%s\n' "$got") >&2 || true
        die "$1: flow check failed"
    fi
}

# ---------------------------------------------------------------- README ----
SIPP_VERSION=""
TOOLS_LINE=""

tshark_decode() { # the tshark view of the SIP messages (reassembled), if tshark is installed
    command -v tshark >/dev/null 2>&1 || return 1
    tshark -r "$1" -Y sip -T fields -E separator='|' \
        -e frame.number -e sip.Method -e sip.Status-Code -e sip.CSeq -e sip.Call-ID 2>/dev/null
}

write_readme() { # write_readme CASE CAPTURE TITLE DESCRIPTION HOW
    local case=$1 cap=$2 title=$3 desc=$4 how=$5
    local dir="$SAMPLES/$case" lt ltn n bytes dec
    lt=$(linktype_name "$cap")
    ltn=$(linktype_num "$cap")
    n=$(packet_count "$cap")
    bytes=$(stat -c %s "$cap")
    {
        printf '# %s\n\n' "$title"
        printf '%s\n\n' "$desc"
        printf '## Capture\n\n'
        printf -- '- File: `%s` (classic pcap, microsecond timestamps), %s bytes, %s packets\n' \
            "$(basename "$cap")" "$bytes" "$n"
        printf -- '- Link type: %s (%s)\n' "$lt" "$ltn"
        printf -- '- Made: %s by `scripts/gen-samples.sh %s`\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$case"
        printf -- '- Tools: %s\n\n' "$TOOLS_LINE"
        printf '## How it was made\n\n%s\n\n' "$how"
        printf '## SIP messages (start line | CSeq), from `tcpdump -nn -A`\n\n```\n'
        sip_flow "$cap"
        printf '```\n\n'
        if dec=$(tshark_decode "$cap") && [[ -n $dec ]]; then
            printf '## tshark decode\n\n`tshark -r capture.pcap -Y sip -T fields -e frame.number -e sip.Method'
            printf ' -e sip.Status-Code -e sip.CSeq -e sip.Call-ID`\n\n```\nframe|method|status|cseq|call-id\n'
            printf '%s\n' "$dec"
            printf '```\n\n'
        fi
        printf 'Regenerate with `sudo scripts/gen-samples.sh %s` (timestamps change; identifiers do not).\n' "$case"
        printf 'Expected analyzer outputs for this capture are blessed separately.\n'
    } >"$dir/README.md"
}

publish() { # publish CASE CAPTURE: move the capture into samples/<case>/
    mkdir -p "$SAMPLES/$1"
    install -m 0644 "$2" "$SAMPLES/$1/capture.pcap"
}

# ---------------------------------------------------------------- topologies ----
LO_NS=""
lo_ns() { # sets LO_NS, the namespace for loopback cases ("" = host loopback when namespaces are not available)
    if ((NETNS_OK)); then
        ns_add "$NS_LO"
        LO_NS=$NS_LO
    else
        [[ -z $(ss -Hlun "sport = :$UAS_PORT or sport = :$UAC_PORT") ]] ||
            die "host loopback fallback: UDP $UAS_PORT or $UAC_PORT is already in use"
        LO_NS=""
    fi
}

veth_up() { # two namespaces joined by a veth pair at MTU 1500, static neighbours (no ARP/ND in the capture)
    ((NETNS_OK)) || die "network namespaces are not available here; the fragment cases need two of them"
    ns_add "$NS_A"
    ns_add "$NS_B"
    ip link add "$VETH_A" netns "$NS_A" address "$MAC_A" mtu 1500 type veth \
        peer name "$VETH_B" netns "$NS_B" address "$MAC_B" mtu 1500
    ip -n "$NS_A" addr add "$V4_A/24" dev "$VETH_A"
    ip -n "$NS_B" addr add "$V4_B/24" dev "$VETH_B"
    ip -n "$NS_A" -6 addr add "$V6_A/64" dev "$VETH_A" nodad
    ip -n "$NS_B" -6 addr add "$V6_B/64" dev "$VETH_B" nodad
    ip -n "$NS_A" link set "$VETH_A" up
    ip -n "$NS_B" link set "$VETH_B" up
    ip -n "$NS_A" neigh replace "$V4_B" lladdr "$MAC_B" dev "$VETH_A" nud permanent
    ip -n "$NS_B" neigh replace "$V4_A" lladdr "$MAC_A" dev "$VETH_B" nud permanent
    ip -n "$NS_A" -6 neigh replace "$V6_B" lladdr "$MAC_B" dev "$VETH_A" nud permanent
    ip -n "$NS_B" -6 neigh replace "$V6_A" lladdr "$MAC_A" dev "$VETH_B" nud permanent
}

# ---------------------------------------------------------------- cases ----
EXP_PLAIN='INVITE | CSeq: 1 INVITE
100 | CSeq: 1 INVITE
180 | CSeq: 1 INVITE
200 | CSeq: 1 INVITE
ACK | CSeq: 1 ACK
BYE | CSeq: 2 BYE
200 | CSeq: 2 BYE'

HOW_COMMON='Each run: `sipp -m 1 -timeout 10s -timeout_error -nostdin` for both sides (UAS started first, the UAC
only once the UAS socket is bound), `tcpdump -U --immediate-mode -s 0 -w` started before and stopped with SIGINT
after the call; the script fails when either sipp exits non-zero or the SIP flow in the capture differs from the
expected one. Call-ID (`-cid_str sa-<case>-%u@ue.sipaudit.test`), tags, branches and CSeq numbers are fixed in the
scenarios, so regenerated captures differ only in timestamps, IP ids and checksums.

UDP checksums: the kernel leaves the checksum of an unfragmented UDP datagram to "the hardware" on lo and veth
(CHECKSUM_PARTIAL), so `tcpdump -vv` reports `bad udp cksum` for those packets, as in any capture taken on the
sending host (on lo this cannot be switched off). Fragmented datagrams carry a correct checksum.'

case_loopback() { # case_loopback CASE IP IFACE LINKTYPE UAS_XML UAC_XML EXPECTED TITLE DESC
    local case=$1 ip=$2 ifc=$3 lt=$4 uas=$5 uac=$6 exp=$7 title=$8 desc=$9
    local wd="$TMP/$case" ns cap n m where
    mkdir -p "$wd"
    cap="$wd/capture.pcap"
    lo_ns
    ns=$LO_NS
    if [[ -n $ns ]]; then
        where="inside a network namespace the script creates (\`ip netns add $ns\`, only \`lo\` up), so nothing else on the machine shows up in the capture"
    else
        where="on the host loopback (network namespaces were not available)"
    fi
    start_capture "$ns" "$ifc" "$cap" "$lt" "udp port $UAS_PORT"
    run_call "$case" "$ns" "$ip" "$ns" "$ip" "$uas" "$uac"
    stop_capture
    [[ -n $ns ]] && ns_del "$ns"
    check_flow "$case" "$cap" "$exp"
    n=$(packet_count "$cap")
    m=$(printf '%s\n' "$exp" | wc -l)
    ((n == m)) || die "$case: $n packets in the capture, expected exactly $m (one per SIP message)"
    publish "$case" "$cap"
    local dest="$ip:$UAS_PORT"
    [[ $ip == *:* ]] && dest="[$ip]:$UAS_PORT"
    write_readme "$case" "$SAMPLES/$case/capture.pcap" "$title" "$desc" \
"SIPp over UDP on the loopback address $ip, $where.

- UAS: \`sipp -sf scripts/sipp/$uas -key sa_case $case -i $ip -p $UAS_PORT -m 1 -timeout 10s -timeout_error -nostdin\`
- UAC: \`sipp -sf scripts/sipp/$uac -key sa_case $case -cid_str 'sa-$case-%u@ue.sipaudit.test' -i $ip -p $UAC_PORT -m 1 -timeout 10s -timeout_error -nostdin $dest\`
- Capture: \`tcpdump -i $ifc${lt:+ -y $lt} -n -s 0 -U --immediate-mode -w capture.pcap 'udp port $UAS_PORT'\`

$HOW_COMMON"
    log "$case: OK ($n packets, link type $(linktype_name "$SAMPLES/$case/capture.pcap"))"
}

case_fragmented() { # case_fragmented CASE FAMILY(4|6)
    local case=$1 fam=$2 wd="$TMP/$1" cap ip_a ip_b filter n frags
    mkdir -p "$wd"
    cap="$wd/capture.pcap"
    if [[ $fam == 4 ]]; then
        ip_a=$V4_A ip_b=$V4_B filter="ip host $V4_A and ip host $V4_B"
    else
        ip_a=$V6_A ip_b=$V6_B filter="ip6 host $V6_A and ip6 host $V6_B"
    fi
    veth_up
    # Captured on the UAS end of the veth pair: the fragments as they arrive, before reassembly.
    start_capture "$NS_B" "$VETH_B" "$cap" "" "$filter"
    run_call "$case" "$NS_B" "$ip_b" "$NS_A" "$ip_a" big-invite-uas.xml big-invite-uac.xml
    stop_capture
    ns_del "$NS_A" "$NS_B"
    check_flow "$case" "$cap" "$EXP_PLAIN"
    n=$(packet_count "$cap")
    if [[ $fam == 4 ]]; then
        frags=$(tcpdump -nn -v -r "$cap" 2>/dev/null | grep -cE 'offset [1-9][0-9]*, flags \[[^]]*\]|flags \[\+\]' || true)
    else
        frags=$(tcpdump -nn -v -r "$cap" 2>/dev/null | grep -c 'frag (' || true)
    fi
    ((frags >= 2)) || die "$case: no IP fragments in the capture"
    ((n > 7)) || die "$case: expected more packets than SIP messages (fragments), got $n"
    publish "$case" "$cap"
    local v=IPv4 ex
    [[ $fam == 6 ]] && v=IPv6
    if [[ $fam == 4 ]]; then
        ex=$(tcpdump -nn -v -r "$cap" 2>/dev/null | grep -E 'flags \[\+\]|offset [1-9]' | head -4 | cut -c1-150)
    else
        ex=$(tcpdump -nn -v -r "$cap" 2>/dev/null | grep 'frag (' | head -4 | cut -c1-150)
    fi
    local dest="$ip_b:$UAS_PORT"
    [[ $fam == 6 ]] && dest="[$ip_b]:$UAS_PORT"
    write_readme "$case" "$SAMPLES/$case/capture.pcap" \
        "$case: an INVITE of about 3 KB, IP-fragmented over $v" \
"A plain IMS-style multimedia call whose INVITE (long headers, SDP with audio, video and text m-lines, about 3 KB)
does not fit the 1500-byte MTU, so the sending kernel splits it into $v fragments$( [[ $fam == 6 ]] && printf ' (Fragment extension header)' ).
Flow: INVITE (fragmented) / 100 / 180 / 200 / ACK / BYE / 200, Call-ID \`sa-$case-1@ue.sipaudit.test\`.
An analyzer must reassemble the fragments to see the INVITE; the responses are single packets.

Fragments seen by \`tcpdump -nn -v -r capture.pcap\` (first lines):

\`\`\`
$ex
\`\`\`" \
"Two network namespaces created by the script, \`$NS_A\` (UAC, $ip_a) and \`$NS_B\` (UAS, $ip_b), joined by a veth
pair at MTU 1500 with static neighbour entries (no ARP / neighbour discovery). These addresses exist only inside
those namespaces; nothing leaves them.

- UAS (in $NS_B): \`sipp -sf scripts/sipp/big-invite-uas.xml -key sa_case $case -i $ip_b -p $UAS_PORT -m 1 -timeout 10s -timeout_error -nostdin\`
- UAC (in $NS_A): \`sipp -sf scripts/sipp/big-invite-uac.xml -key sa_case $case -cid_str 'sa-$case-%u@ue.sipaudit.test' -i $ip_a -p $UAC_PORT -m 1 -timeout 10s -timeout_error -nostdin $dest\`
- Capture (in $NS_B, on the UAS end of the veth pair, Ethernet): \`tcpdump -i $VETH_B -n -s 0 -U --immediate-mode -w capture.pcap '$filter'\`
  (filtered by host, not by port, so that the non-first fragments, which carry no UDP header, are kept)

$HOW_COMMON"
    log "$case: OK ($n packets, $frags fragment lines, link type $(linktype_name "$SAMPLES/$case/capture.pcap"))"
}

run_case() {
    case $1 in
    ims-precondition-call)
        case_loopback "$1" 127.0.0.1 lo "" ims-precondition-uas.xml ims-precondition-uac.xml \
'INVITE | CSeq: 10 INVITE
100 | CSeq: 10 INVITE
183 | CSeq: 10 INVITE
PRACK | CSeq: 11 PRACK
200 | CSeq: 11 PRACK
UPDATE | CSeq: 12 UPDATE
200 | CSeq: 12 UPDATE
180 | CSeq: 10 INVITE
200 | CSeq: 10 INVITE
ACK | CSeq: 10 ACK
BYE | CSeq: 13 BYE
200 | CSeq: 13 BYE' \
        "ims-precondition-call: IMS call with preconditions, 100rel/PRACK and UPDATE (UDP, 127.0.0.1)" \
"An IMS originating UE (sip:+491701234567@ims.mnc001.mcc262.3gppnetwork.org;user=phone) calls
sip:+491709876543@ims.mnc001.mcc262.3gppnetwork.org;user=phone. Call-ID \`sa-ims-precondition-call-1@ue.sipaudit.test\`.

- INVITE CSeq 10: \`Require: precondition\`, \`Supported: 100rel, timer\`, \`Allow: INVITE, ACK, CANCEL, BYE, PRACK, UPDATE\`,
  P-Asserted-Identity, P-Access-Network-Info, P-Charging-Vector, ICSI (MMTel) in Contact/Accept-Contact,
  Session-Expires; SDP (AMR-WB) with \`a=curr:qos local none\`, \`a=curr:qos remote none\`,
  \`a=des:qos mandatory local sendrecv\`, \`a=des:qos none remote sendrecv\`.
- 100 Trying; 183 Session Progress with \`Require: 100rel\`, \`RSeq: 1\` and the SDP answer with \`a=conf:qos remote sendrecv\`.
- PRACK CSeq 11 (\`RAck: 1 10 INVITE\`) / 200 OK (PRACK).
- UPDATE CSeq 12 (SDP \`a=curr:qos local sendrecv\`, precondition in Supported only) / 200 OK (UPDATE, both sides reserved).
- 180 Ringing, 200 OK (INVITE), ACK CSeq 10, BYE CSeq 13 / 200 OK. A successful call with no capability failure."
        ;;
    relaxed-retry-420)
        case_loopback "$1" 127.0.0.1 lo "" relaxed-retry-420-uas.xml relaxed-retry-420-uac.xml \
'INVITE | CSeq: 20 INVITE
100 | CSeq: 20 INVITE
420 | CSeq: 20 INVITE
ACK | CSeq: 20 ACK
INVITE | CSeq: 21 INVITE
100 | CSeq: 21 INVITE
180 | CSeq: 21 INVITE
200 | CSeq: 21 INVITE
ACK | CSeq: 21 ACK
BYE | CSeq: 22 BYE
200 | CSeq: 22 BYE' \
        "relaxed-retry-420: 420 Bad Extension (precondition), then a relaxed retry in the same Call-ID (UDP, 127.0.0.1)" \
"An IMS UE (sip:+491701234567@ims.mnc001.mcc262.3gppnetwork.org) calls a non-IMS Internet peer, sip:bob@voip.example.net.
Call-ID \`sa-relaxed-retry-420-1@ue.sipaudit.test\`, From tag \`relaxed-retry-420-ue1\` on both attempts.

- INVITE CSeq 20, branch \`z9hG4bK-relaxed-retry-420-inv1\`: \`Require: precondition, 100rel\`, no Supported,
  SDP \`a=des:qos mandatory local sendrecv\`.
- 100 Trying; 420 Bad Extension with \`Unsupported: precondition\` (the peer also lists \`Supported: 100rel, timer, replaces\`);
  ACK CSeq 20 on the INVITE's branch with the 420's To tag.
- 300 ms later the retry (RFC 3261 section 8.1.3.5): INVITE CSeq 21, SAME Call-ID and From tag, new branch
  \`z9hG4bK-relaxed-retry-420-inv2\`, no To tag, no Require, \`Supported: precondition, 100rel\`, SDP
  \`a=des:qos optional local sendrecv\` (same o= session id, version 2).
- 100, 180, 200 (SDP answer without precondition lines, a new To tag), ACK CSeq 21, BYE CSeq 22 / 200.

Note for the expected outputs: only precondition was refused, but the retry also moved 100rel from Require to
Supported. rules.md H03 describes exactly this flow (retry with no Require at all after Unsupported: precondition)
as OVER_RELAXED with the flag OVER_RELAXED(100rel); H01 is the variant whose first INVITE has 100rel in Supported."
        ;;
    sll2-any)
        local lt=""
        # Ask for LINUX_SLL2 explicitly where libpcap offers it on "any" (libpcap >= 1.10 also defaults to it).
        local dlts
        dlts=$(tcpdump -L -i any 2>&1 || true)
        [[ $dlts != *LINUX_SLL2* ]] || lt=LINUX_SLL2
        case_loopback "$1" 127.0.0.1 any "$lt" basic-uas.xml basic-uac.xml "$EXP_PLAIN" \
            "sll2-any: a plain call captured with tcpdump -i any (LINUX_SLL2)" \
"A plain SIP call over UDP on 127.0.0.1, captured on the pseudo-interface \`any\`, so every packet has a Linux cooked
capture v2 header (LINUX_SLL2, link type 276: protocol, interface index, ARPHRD type, packet type, address) instead
of an Ethernet header. Flow: INVITE / 100 / 180 / 200 / ACK / BYE / 200, Call-ID \`sa-sll2-any-1@ue.sipaudit.test\`.
$( [[ $lt == LINUX_SLL2 ]] && printf '%s' 'tcpdump was given `-y LINUX_SLL2` (offered by this libpcap for `any`).' || printf '%s' 'This libpcap does not offer LINUX_SLL2 for `any`: see the link type below.')"
        local got
        got=$(linktype_num "$SAMPLES/$1/capture.pcap")
        [[ $got == 276 ]] || log "WARNING: sll2-any: link type is $got, not 276 (LINUX_SLL2)"
        ;;
    ipv6-call)
        case_loopback "$1" ::1 lo "" basic-uas.xml basic-uac.xml "$EXP_PLAIN" \
            "ipv6-call: a plain call over IPv6 loopback ([::1])" \
"A plain SIP call over UDP on the IPv6 loopback: \`sipp -i ::1\` on both sides and the UAC sends to \`[::1]:5060\`.
SIPp writes \`[::1]\` in Via, Contact, From/To and the Request-URI, and \`c=IN IP6 ::1\` in SDP.
Flow: INVITE / 100 / 180 / 200 / ACK / BYE / 200, Call-ID \`sa-ipv6-call-1@ue.sipaudit.test\`."
        ;;
    fragmented-invite) case_fragmented "$1" 4 ;;
    fragmented-invite-v6) case_fragmented "$1" 6 ;;
    *) die "unknown case '$1' (cases: ${ALL_CASES[*]})" ;;
    esac
}

# ---------------------------------------------------------------- main ----
main() {
    local cases=("$@") c
    ((${#cases[@]})) || cases=("${ALL_CASES[@]}")
    for c in "${cases[@]}"; do
        [[ " ${ALL_CASES[*]} " == *" $c "* ]] || die "unknown case '$c' (cases: ${ALL_CASES[*]})"
    done

    ensure_tools
    local lockf=/run/lock/sipaudit-gen-samples.lock
    [[ -d /run/lock && -w /run/lock ]] || lockf=/tmp/sipaudit-gen-samples.lock
    exec 9>"$lockf"
    flock -w 600 9 || die "another gen-samples.sh is running"

    TMP=$(mktemp -d /tmp/sipaudit-gen-samples.XXXXXX)
    SIPP_VERSION=$({ sipp -v 2>&1 || true; } | grep -o 'SIPp v[^ ]*' | head -1 | sed 's/\.$//')
    TOOLS_LINE="$SIPP_VERSION (Debian sip-tester $(dpkg-query -W -f='${Version}' sip-tester 2>/dev/null || echo '?')), $(tcpdump --version 2>&1 | head -1), $(tcpdump --version 2>&1 | sed -n 2p), kernel $(uname -r)"
    probe_netns
    log "$TOOLS_LINE"
    mkdir -p "$SAMPLES"
    for c in "${cases[@]}"; do
        log "== $c"
        run_case "$c"
    done
    log "done: ${cases[*]}"
}

main "$@"
