#!/usr/bin/env bash
# gen-samples.sh: regenerate sipaudit's real sample captures with SIPp and tcpdump.
#
# Usage:  sudo scripts/gen-samples.sh [CASE...]        (no CASE: every case, in the order below)
#   Cases: ims-precondition-call relaxed-retry-420 sll2-any ipv6-call fragmented-invite fragmented-invite-v6
#          tcp-t1 tcp-tn udp-retrans-invite-420 cancel-487 auth-407 retry-new-callid-h2 rotated-420-retry
#          fork-two-180 skew-two-points
#          and the rules.md section H flows (one sample per example call flow, see "rules.md section H flows" below):
#          h01-r5-compliant h02-retry-loop h03-over-relaxed h04-dependent-drop h06-new-callid h07-421-100rel
#          h09-580-relaxed h13-udp-losses h14-cseq-reused-482 h16-420-no-unsupported h12-update-405-cancel
#          h18-reinvite-420 h15-sec-agree-register h11-emergency-100rel h10-policy-enforced h05-no-retry
#          h17-rotated-420 (capture-1.pcap + capture-2.pcap, split with editcap after the 420)
#          h08-fork-mixed (four SIPp: UE, a forking S-CSCF scenario, two branches)
#          h19-stepwise-fast (stepwise relaxation against a far end that answers each INVITE at once)
#   Writes samples/<case>/capture.pcap and samples/<case>/README.md; nothing else under samples/ is touched.
#   rotated-420-retry writes capture-1.pcap and capture-2.pcap instead of capture.pcap (one capture split in two);
#   skew-two-points too (one call captured at two one-way points at once, the second file's clock shifted back).
#   Environment: SA_NO_INSTALL=1 never runs apt-get (the script fails if a tool is missing).
#
# What it does, per case: a SIPp UAS (scripts/sipp/*-uas.xml) in the background, tcpdump (-U -s 0 -w) on the
# right interface, one SIPp UAC call (-m 1), then tcpdump is stopped with SIGINT, the flow in the capture is
# checked against the expected sequence of SIP messages, and the capture and its README are moved into place.
# The UDP cases added later check more: udp-retrans-invite-420 that tshark flags exactly the repeated INVITE and the
# repeated 420 (sip.resend == 1, timings chosen with 200 ms of margin: see its scenarios); auth-407 the digest response;
# retry-new-callid-h2 (two SIPp calls, -m 2 -r 1 -rp 1000 -inf) that the two INVITEs differ only as rules.md H2 allows;
# rotated-420-retry splits its one capture with editcap (-r) between the ACK of the 420 and the retried INVITE.
# fork-two-180 (a forking proxy's view from the caller: 180 with To tag fork-a, 180 and 200 with To tag fork-b) also
# checks the To tag of every message. skew-two-points runs one plain call across the veth pair with a one-way tcpdump
# on EACH end (capture point A in sagen-a keeps only what the caller sends, `src host` A; point B in sagen-b only what
# the callee sends, `src host` B), shifts point B's clock back by SKEW_S (editcap -t) and checks, on the files merged
# by timestamp (mergecap), that every response captured at B comes after its request captured at A or before it by
# less than rules.md's skew_tol (50 ms), and that at least one comes before it.
# The TCP cases (tcp-t1: one call, one connection, `sipp -t t1`; tcp-tn: 3 overlapping calls, one connection per
# call, `sipp -t tn -m 3`) run on the veth pair with checksum and segmentation offloads switched off (ethtool), so
# the capture holds the segments as they are on a 1500-byte wire, with correct TCP checksums.
# SCTP (`sipp -t s1`) has no case: SIPp is built with it, but this kernel has no SCTP (CONFIG_IP_SCTP is not set;
# socket(IPPROTO_SCTP) fails with EPROTONOSUPPORT).
#
# Where the traffic goes: ONLY to loopback addresses or to addresses inside network namespaces this script creates
# (sagen-lo: a private loopback; sagen-a / sagen-b: two namespaces joined by a veth pair, 10.99.0.0/24 and
# fd00:99::/64, which exist only inside those namespaces). Every run is bounded: sipp -m 1 (-m 3 for tcp-tn, -m 2 for
# retry-new-callid-h2) -timeout 10s -timeout_error, and every sipp and tcpdump runs under `timeout`. Namespaces and
# background processes are removed on exit (trap). Without permission to create namespaces, the loopback cases fall
# back to the host's loopback and the veth (fragment) cases fail with a clear message.
#
# Idempotent: a rerun regenerates every capture. SIP identifiers (Call-ID, tags, branches, CSeq, ports) are fixed,
# so a new capture differs from the old one only in timestamps, IP ids and checksums (TCP cases: also the random
# initial sequence numbers and timestamp values, and for tcp-tn the ephemeral TCP source ports).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIPP_SRC="$ROOT/scripts/sipp"
SAMPLES="$ROOT/samples"
ALL_CASES=(ims-precondition-call relaxed-retry-420 sll2-any ipv6-call fragmented-invite fragmented-invite-v6
    tcp-t1 tcp-tn udp-retrans-invite-420 cancel-487 auth-407 retry-new-callid-h2 rotated-420-retry
    fork-two-180 skew-two-points
    h01-r5-compliant h02-retry-loop h03-over-relaxed h04-dependent-drop h06-new-callid h07-421-100rel
    h09-580-relaxed h13-udp-losses h14-cseq-reused-482 h16-420-no-unsupported h12-update-405-cancel h18-reinvite-420
    h15-sec-agree-register h11-emergency-100rel h10-policy-enforced h05-no-retry h17-rotated-420
    h08-fork-mixed h19-stepwise-fast)
# Cases that need tshark (check of sip.resend) or editcap/mergecap (split, shift, merge of captures): package tshark
# (+ wireshark-common).
TSHARK_CASES=" udp-retrans-invite-420 rotated-420-retry skew-two-points h13-udp-losses h17-rotated-420 "

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

NEED_ETHTOOL=0 # set by main when a TCP case runs (offloads off on the veth pair)
NEED_TSHARK=0  # set by main when a case of TSHARK_CASES runs

ensure_tools() {
    local missing=() t pkgs=(sip-tester tcpdump iproute2) need=(sipp tcpdump ip ss)
    if ((NEED_ETHTOOL)); then pkgs+=(ethtool); need+=(ethtool); fi
    if ((NEED_TSHARK)); then pkgs+=(tshark); need+=(tshark editcap mergecap); fi
    for t in "${need[@]}"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if ((${#missing[@]})); then
        [[ ${SA_NO_INSTALL:-0} == 1 ]] && die "missing: ${missing[*]} (and SA_NO_INSTALL=1)"
        log "installing ${pkgs[*]} (missing: ${missing[*]})"
        apt_retry update || die "apt-get update failed"
        apt_retry install -y "${pkgs[@]}" || die "apt-get install failed"
    fi
    for t in "${need[@]}" timeout flock od; do
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
uas_calls() { # uas_calls CALLS: the UAS's -m (one more call when a case runs an extra UAC against it)
    if [[ -n ${EXTRA_UAC_XML:-} ]]; then echo $(($1 + 1)); else echo "$1"; fi
}

# run_call CASE UAS_NS UAS_IP UAC_NS UAC_IP UAS_XML UAC_XML [TRANSPORT [CALLS [UAC_ARG...]]]
# UAS in the background (bound to UAS_IP:5060), waits for its socket, then one UAC call from UAC_IP:5061.
# TRANSPORT: SIPp's -t (default u1, SIPp's own default, then no -t is given); CALLS: -m on both sides (default 1);
# UAC_ARGs: more options for the UAC only (e.g. a call rate).
run_call() {
    local case=$1 uas_ns=$2 uas_ip=$3 uac_ns=$4 uac_ip=$5 uas_xml=$6 uac_xml=$7 tp=${8:-u1} calls=${9:-1}
    shift 7; (($# == 0)) || shift; (($# == 0)) || shift
    local uac_args=("$@")
    local wd="$TMP/$case" dest uas_pid i urc=0 crc=0 ssopt=-Hlun
    if [[ $uas_ip == *:* ]]; then dest="[$uas_ip]:$UAS_PORT"; else dest="$uas_ip:$UAS_PORT"; fi
    local common=(-key sa_case "$case" -timeout "$SIPP_TIMEOUT" -timeout_error -nostdin -trace_err -trace_logs)
    if [[ $tp != u1 ]]; then
        # -max_socket: SIPp refuses to start when its default (50000) exceeds the open-files limit.
        common+=(-t "$tp" -max_socket 64)
        if [[ $tp == t* ]]; then ssopt=-Hltn; fi
    fi

    # sipp writes its trace files next to the scenario file: run copies in the work directory.
    cp "$SIPP_SRC/$uas_xml" "$SIPP_SRC/$uac_xml" "$wd/"
    cd "$wd"
    # Launched as plain commands (not through a shell function) so that $! is the `timeout` process itself:
    # the EXIT trap can then stop sipp through it.
    local uas_pre=() uac_pre=() uac_pid
    [[ -z $uas_ns ]] || uas_pre=(ip netns exec "$uas_ns")
    [[ -z $uac_ns ]] || uac_pre=(ip netns exec "$uac_ns")
    # EXTRA_UAS (set by a case, "XML:PORT" items): more SIPp UASes (one call each) on UAS_IP, started first (H08's
    # branches behind the forking proxy that the main UAS scenario plays).
    local xu x_pids=() xp
    for xu in ${EXTRA_UAS[@]+"${EXTRA_UAS[@]}"}; do
        cp "$SIPP_SRC/${xu%%:*}" "$wd/"
        timeout -k 5 "$HARD_TIMEOUT" "${uas_pre[@]+"${uas_pre[@]}"}" \
            sipp -sf "$wd/${xu%%:*}" -i "$uas_ip" -p "${xu##*:}" "${common[@]}" -m 1 \
            </dev/null >"$wd/uas-${xu##*:}.out" 2>&1 &
        x_pids+=($!)
        BG_PIDS+=($!)
        for i in $(seq 1 100); do
            [[ -n $(in_ns "$uas_ns" ss "$ssopt" "sport = :${xu##*:}") ]] && break
            sleep 0.1
        done
        [[ -n $(in_ns "$uas_ns" ss "$ssopt" "sport = :${xu##*:}") ]] || die "$case: the extra UAS ${xu%%:*} is not listening"
    done
    timeout -k 5 "$HARD_TIMEOUT" "${uas_pre[@]+"${uas_pre[@]}"}" \
        sipp -sf "$wd/$uas_xml" -i "$uas_ip" -p "$UAS_PORT" "${common[@]}" -m "$(uas_calls "$calls")" \
        </dev/null >"$wd/uas.out" 2>&1 &
    uas_pid=$!
    BG_PIDS+=("$uas_pid")
    for i in $(seq 1 100); do
        [[ -n $(in_ns "$uas_ns" ss "$ssopt" "sport = :$UAS_PORT") ]] && break
        kill -0 "$uas_pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $(in_ns "$uas_ns" ss "$ssopt" "sport = :$UAS_PORT") ]] || {
        tail -20 "$wd/uas.out" >&2; die "$case: the sipp UAS is not listening on $UAS_PORT"; }

    # The UAC runs in the background too, so that a signal to this script is handled at once (by the trap).
    timeout -k 5 "$HARD_TIMEOUT" "${uac_pre[@]+"${uac_pre[@]}"}" \
        sipp -sf "$wd/$uac_xml" -i "$uac_ip" -p "$UAC_PORT" "${common[@]}" -m "$calls" "${uac_args[@]+"${uac_args[@]}"}" \
        -cid_str "sa-$case-%u@ue.sipaudit.test" "$dest" \
        </dev/null >"$wd/uac.out" 2>&1 &
    uac_pid=$!
    BG_PIDS+=("$uac_pid")
    # EXTRA_UAC_XML (set by a case): a second, unrelated SIPp UAC on port EXTRA_UAC_PORT, one call, at the same time.
    local x_pid="" xrc=0
    if [[ -n ${EXTRA_UAC_XML:-} ]]; then
        cp "$SIPP_SRC/$EXTRA_UAC_XML" "$wd/"
        timeout -k 5 "$HARD_TIMEOUT" "${uac_pre[@]+"${uac_pre[@]}"}" \
            sipp -sf "$wd/$EXTRA_UAC_XML" -i "$uac_ip" -p "$EXTRA_UAC_PORT" \
            -key sa_case "$case" -m 1 -timeout "$SIPP_TIMEOUT" -timeout_error -nostdin -trace_err -trace_logs \
            -cid_str "sa-$case-ping-%u@monitor.sipaudit.test" "$dest" \
            </dev/null >"$wd/uac-extra.out" 2>&1 &
        x_pid=$!
        BG_PIDS+=("$x_pid")
    fi
    wait "$uac_pid" || crc=$?
    forget_pid "$uac_pid"
    if [[ -n $x_pid ]]; then
        wait "$x_pid" || xrc=$?
        forget_pid "$x_pid"
        ((xrc == 0)) || { grep -v '^\s*$' "$wd/uac-extra.out" | tail -25 >&2; die "$case: the extra SIPp UAC exited $xrc"; }
    fi
    wait "$uas_pid" || urc=$?
    forget_pid "$uas_pid"
    for xp in ${x_pids[@]+"${x_pids[@]}"}; do
        wait "$xp" || urc=$?
        forget_pid "$xp"
    done
    cd "$ROOT"
    UAC_RC=$crc
    UAS_RC=$urc
    if ((crc != 0 || urc != 0)); then
        log "$case: sipp UAC exit $crc, UAS exit $urc (0 = every call succeeded)"
        local f
        for f in "$wd"/*errors.log "$wd"/*logs.log; do [[ -f $f ]] && { log "--- $f"; tail -30 "$f" >&2; }; done
        log "--- uac.out"; grep -v '^\s*$' "$wd/uac.out" | tail -25 >&2 || true
        log "--- uas.out"; grep -v '^\s*$' "$wd/uas.out" | tail -25 >&2 || true
        for f in "$wd"/uas-*.out; do [[ -f $f ]] && { log "--- $f"; grep -v '^\s*$' "$f" | tail -25 >&2 || true; }; done
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
        start == "" && match($0, /(INVITE|ACK|BYE|CANCEL|PRACK|UPDATE|OPTIONS|REGISTER) (sip|sips|tel|urn):[^ ]* SIP\/2\.0/) {
            s = substr($0, RSTART, RLENGTH); sub(/ (sip|sips|tel|urn):.*/, "", s); start = s; next }
        start == "" && match($0, /SIP\/2\.0 [1-6][0-9][0-9] /) { start = substr($0, RSTART + 8, 3); next }
        start != "" && cseq == "" && /^CSeq: / { cseq = $2 " " $3; sub(/\r$/, "", cseq) }
        END { flush() }'
}

# sip_flow_totag FILE: as sip_flow, plus the To tag of each message ("-" when the To header has none):
# "<start> | CSeq: <n> <method> | To tag: <tag>" (unfragmented UDP: the To header is in the message's only packet).
sip_flow_totag() {
    tcpdump -nn -A -r "$1" 2>/dev/null | awk '
        function flush() { if (start != "") printf "%s | CSeq: %s | To tag: %s\n", start, cseq, (totag == "" ? "-" : totag)
                           start = ""; cseq = ""; totag = ""; seento = 0 }
        /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]+ / { flush(); next }
        start == "" && match($0, /(INVITE|ACK|BYE|CANCEL|PRACK|UPDATE|OPTIONS|REGISTER) (sip|sips|tel|urn):[^ ]* SIP\/2\.0/) {
            s = substr($0, RSTART, RLENGTH); sub(/ (sip|sips|tel|urn):.*/, "", s); start = s; next }
        start == "" && match($0, /SIP\/2\.0 [1-6][0-9][0-9] /) { start = substr($0, RSTART + 8, 3); next }
        start != "" && cseq == "" && /^CSeq: / { cseq = $2 " " $3; sub(/\r$/, "", cseq) }
        start != "" && !seento && /^(To|t): / { seento = 1; l = $0; sub(/\r$/, "", l)
            if (match(l, /;[ ]*tag=[^;>, ]+/)) { totag = substr(l, RSTART, RLENGTH); sub(/^;[ ]*tag=/, "", totag) } }
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

DECODE_RESEND=0 # 1: the README's tshark decode also shows sip.resend (set by the cases added with it)
DECODE_TOTAG=0  # 1: the README's tshark decode also shows sip.to.tag (fork-two-180)

tshark_decode() { # tshark_decode FILE [tcp]: the tshark view of the SIP messages (reassembled), if tshark is installed
    command -v tshark >/dev/null 2>&1 || return 1
    local more=()
    ((DECODE_RESEND)) && more=(-e sip.resend)
    ((DECODE_TOTAG)) && more+=(-e sip.to.tag)
    if [[ ${2:-} == tcp ]]; then
        tshark -r "$1" -o tcp.reassemble_out_of_order:TRUE -Y sip -T fields -E separator='|' \
            -e frame.number -e frame.protocols -e sip.Method -e sip.Status-Code -e sip.CSeq -e sip.Call-ID \
            "${more[@]+"${more[@]}"}" 2>/dev/null
    else
        tshark -r "$1" -Y sip -T fields -E separator='|' \
            -e frame.number -e sip.Method -e sip.Status-Code -e sip.CSeq -e sip.Call-ID "${more[@]+"${more[@]}"}" 2>/dev/null
    fi
}

decode_section() { # decode_section FILE: the README's "tshark decode" block for a UDP capture (nothing without tshark)
    local dec name
    name=$(basename "$1")
    dec=$(tshark_decode "$1") && [[ -n $dec ]] || return 0
    if ((DECODE_RESEND && DECODE_TOTAG)); then
        printf '`tshark -r %s -Y sip -T fields -e frame.number -e sip.Method' "$name"
        printf ' -e sip.Status-Code -e sip.CSeq -e sip.Call-ID -e sip.resend -e sip.to.tag`\n\n```\nframe|method|status|cseq|call-id|resend|to-tag\n'
    elif ((DECODE_RESEND)); then
        printf '`tshark -r %s -Y sip -T fields -e frame.number -e sip.Method' "$name"
        printf ' -e sip.Status-Code -e sip.CSeq -e sip.Call-ID -e sip.resend`\n\n```\nframe|method|status|cseq|call-id|resend\n'
    else
        printf '`tshark -r %s -Y sip -T fields -e frame.number -e sip.Method' "$name"
        printf ' -e sip.Status-Code -e sip.CSeq -e sip.Call-ID`\n\n```\nframe|method|status|cseq|call-id\n'
    fi
    printf '%s\n' "$dec"
    printf '```\n\n'
}

write_readme() { # write_readme CASE CAPTURE TITLE DESCRIPTION HOW [tcp]
    local case=$1 cap=$2 title=$3 desc=$4 how=$5 mode=${6:-}
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
        if [[ $mode == tcp ]]; then
            if dec=$(tshark_decode "$cap" tcp) && [[ -n $dec ]]; then
                printf '## tshark decode\n\n`tshark -r capture.pcap -o tcp.reassemble_out_of_order:TRUE -Y sip -T fields'
                printf ' -e frame.number -e frame.protocols -e sip.Method -e sip.Status-Code -e sip.CSeq -e sip.Call-ID`\n\n'
                printf '(a message is shown at the frame in which tshark completes it)\n\n'
                printf '```\nframe|protocols|method|status|cseq|call-id\n%s\n```\n\n' "$dec"
            fi
        elif dec=$(tshark_decode "$cap") && [[ -n $dec ]]; then
            printf '## tshark decode\n\n'
            decode_section "$cap"
        fi
        if [[ $mode == tcp ]]; then
            printf 'Regenerate with `sudo scripts/gen-samples.sh %s` (timestamps, TCP sequence numbers and timestamp\n' "$case"
            printf 'values change; SIP identifiers do not).\n'
        else
            printf 'Regenerate with `sudo scripts/gen-samples.sh %s` (timestamps change; identifiers do not).\n' "$case"
        fi
        printf 'Expected analyzer outputs for this capture are blessed separately.\n'
    } >"$dir/README.md"
}

publish() { # publish CASE CAPTURE: move the capture into samples/<case>/
    mkdir -p "$SAMPLES/$1"
    install -m 0644 "$2" "$SAMPLES/$1/capture.pcap"
}

# ---------------------------------------------------------------- topologies ----
LOOPBACK_CHECK="" # a function case_loopback calls as "FN CASE CAPTURE" before it publishes the capture (extra checks)

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

how_common() { # how_common CALLS: HOW_COMMON with the -m and -timeout values of this run
    local t=${HOW_COMMON/sipp -m 1 /sipp -m $1 }
    printf '%s' "${t/-timeout 10s /-timeout $SIPP_TIMEOUT }"
}

case_loopback() { # case_loopback CASE IP IFACE LINKTYPE UAS_XML UAC_XML EXPECTED TITLE DESC [CALLS [UAC_ARG...]]
    local case=$1 ip=$2 ifc=$3 lt=$4 uas=$5 uac=$6 exp=$7 title=$8 desc=$9 calls=${10:-1}
    local uac_args=("${@:11}")
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
    run_call "$case" "$ns" "$ip" "$ns" "$ip" "$uas" "$uac" u1 "$calls" "${uac_args[@]+"${uac_args[@]}"}"
    stop_capture
    [[ -n $ns ]] && ns_del "$ns"
    check_flow "$case" "$cap" "$exp"
    n=$(packet_count "$cap")
    m=$(printf '%s\n' "$exp" | wc -l)
    ((n == m)) || die "$case: $n packets in the capture, expected exactly $m (one per SIP message)"
    [[ -z $LOOPBACK_CHECK ]] || "$LOOPBACK_CHECK" "$case" "$cap"
    publish "$case" "$cap"
    local dest="$ip:$UAS_PORT" more=""
    [[ $ip == *:* ]] && dest="[$ip]:$UAS_PORT"
    # The UAC's extra options as typed from the repository root (scenario files given as scripts/sipp/...).
    ((${#uac_args[@]})) && more="${uac_args[*]//$SIPP_SRC/scripts/sipp} "
    write_readme "$case" "$SAMPLES/$case/capture.pcap" "$title" "$desc" \
"SIPp over UDP on the loopback address $ip, $where.

- UAS: \`sipp -sf scripts/sipp/$uas -key sa_case $case -i $ip -p $UAS_PORT -m $(uas_calls "$calls") -timeout $SIPP_TIMEOUT -timeout_error -nostdin\`
- UAC: \`sipp -sf scripts/sipp/$uac -key sa_case $case $more-cid_str 'sa-$case-%u@ue.sipaudit.test' -i $ip -p $UAC_PORT -m $calls -timeout $SIPP_TIMEOUT -timeout_error -nostdin $dest\`
- Capture: \`tcpdump -i $ifc${lt:+ -y $lt} -n -s 0 -U --immediate-mode -w capture.pcap 'udp port $UAS_PORT'\`
${EXTRA_UAC_README:-}
$(how_common "$calls")"
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

# ---------------------------------------------------------------- TCP cases ----
veth_no_offload() { # the kernel segments and checksums TCP itself: the capture holds what a 1500-byte wire carries
    local pair ns ifc feats
    for pair in "$NS_A:$VETH_A" "$NS_B:$VETH_B"; do
        ns=${pair%%:*} ifc=${pair#*:}
        ip netns exec "$ns" ethtool -K "$ifc" tx off tso off gso off gro off >/dev/null 2>&1 || true
        feats=$(ip netns exec "$ns" ethtool -k "$ifc")
        if grep -qE '^(tx-checksumming|tcp-segmentation-offload|generic-segmentation-offload): on' <<<"$feats"; then
            die "could not switch checksum/segmentation offloads off on $ifc"
        fi
    done
}

tcp_count() { tcpdump -nn -r "$1" "$2" 2>/dev/null | wc -l; } # tcp_count FILE FILTER: packets matching FILTER
TCP_SYN='tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn'
TCP_FIN='tcp[tcpflags] & tcp-fin != 0'
TCP_RST='tcp[tcpflags] & tcp-rst != 0'

first_request_segments() { # first_request_segments FILE: "N L1+L2+..." for the data segments UAC -> UAS that come
    # before the UAS sends any data, i.e. the segments of the first request (tcp-t1: the INVITE; UAC port fixed)
    tcpdump -nn -r "$1" 2>/dev/null | awk -v c="$V4_A.$UAC_PORT > $V4_B.$UAS_PORT:" \
        -v s="$V4_B.$UAS_PORT > $V4_A.$UAC_PORT:" '
        done { next }  # no early exit: with pipefail, tcpdump killed by SIGPIPE would fail the pipeline
        { n = 0; if (match($0, / length [0-9]+$/)) n = substr($0, RSTART + 8) + 0 }
        n > 0 && index($0, s) { done = 1; next }
        n > 0 && index($0, c) { k++; l = l (l == "" ? "" : "+") n }
        END { printf "%d %s\n", k, l }'
}

check_flow_any_order() { # check_flow_any_order CASE FILE EXPECTED: as check_flow, in any order (overlapping calls)
    local got want
    got=$(sip_flow "$2" | LC_ALL=C sort)
    want=$(printf '%s\n' "$3" | LC_ALL=C sort)
    if [[ $got != "$want" ]]; then
        log "$1: unexpected SIP messages in the capture (sorted)"
        diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") >&2 || true
        die "$1: flow check failed"
    fi
}

HOW_TCP='Each run: `sipp -t t1|tn -max_socket 64 -timeout 10s -timeout_error -nostdin` for both sides (UAS started
first, the UAC only once the UAS listens on TCP 5060), `tcpdump -U --immediate-mode -s 0 -w` started before and
stopped with SIGINT after both SIPp have exited. The script fails when either sipp exits non-zero, the SIP messages
in the capture differ from the expected ones, the number of connections (SYN) or FINs is not the expected one, or
there is any RST. Call-ID (`-cid_str sa-<case>-%u@ue.sipaudit.test`), tags, branches and CSeq numbers are fixed in
the scenarios. TCP initial sequence numbers and timestamp values are random per connection, so regenerated captures
differ in those (relative sequence numbers are the same), in timestamps, IP ids and checksums.

Offloads: on both veth ends `ethtool -K <if> tx off tso off gso off gro off`, so the kernel cuts the byte stream
into segments of at most the MSS (1460, minus 12 bytes of TCP timestamp option: 1448 bytes of payload) and computes
every checksum itself: the capture holds the segments a 1500-byte Ethernet wire would carry, with correct IP and
TCP checksums (`tcpdump -vv` reports none as incorrect).'

case_tcp() { # case_tcp CASE MODE(t1|tn)
    local case=$1 mode=$2 wd="$TMP/$1" cap n syn fin rst bad calls=1 uas_xml uac_xml exp filter
    local uac_args=() segs="" nseg=0 ex desc title closer inv_total inv_body inv_head first_seg split_at=""
    mkdir -p "$wd"
    cap="$wd/capture.pcap"
    filter="ip host $V4_A and ip host $V4_B"
    if [[ $mode == t1 ]]; then
        uas_xml=tcp-big-invite-uas.xml uac_xml=tcp-big-invite-uac.xml exp=$EXP_PLAIN
    else
        calls=3 uas_xml=tcp-calls-uas.xml uac_xml=tcp-calls-uac.xml
        # One call every 1.2 s; each lasts about 1.5 s (200 OK after 0.5 s, BYE 1 s after the ACK): they overlap.
        uac_args=(-key sa_listen_port "$UAC_PORT" -r 1 -rp 1200)
        exp=$(printf '%s\n%s\n%s' "$EXP_PLAIN" "$EXP_PLAIN" "$EXP_PLAIN")
    fi
    veth_up
    veth_no_offload
    # Captured on the UAS end of the veth pair, as the segments arrive.
    start_capture "$NS_B" "$VETH_B" "$cap" "" "$filter"
    run_call "$case" "$NS_B" "$V4_B" "$NS_A" "$V4_A" "$uas_xml" "$uac_xml" "$mode" "$calls" "${uac_args[@]}"
    stop_capture
    ns_del "$NS_A" "$NS_B"

    if [[ $mode == t1 ]]; then check_flow "$case" "$cap" "$exp"; else check_flow_any_order "$case" "$cap" "$exp"; fi
    n=$(packet_count "$cap")
    syn=$(tcp_count "$cap" "$TCP_SYN")
    fin=$(tcp_count "$cap" "$TCP_FIN")
    rst=$(tcp_count "$cap" "$TCP_RST")
    ((syn == calls)) || die "$case: $syn connection(s) opened (SYN), expected $calls"
    ((fin == 2 * syn)) || die "$case: $fin FIN segments, expected $((2 * syn)) (both directions of every connection)"
    ((rst == 0)) || die "$case: $rst RST segments"
    bad=$(tcpdump -nn -vv -r "$cap" 2>/dev/null | grep -c 'incorrect' || true)
    ((bad == 0)) || die "$case: $bad packets with an incorrect checksum (offloads not off?)"
    if [[ $mode == t1 ]]; then
        read -r nseg segs < <(first_request_segments "$cap")
        ((nseg >= 2)) || die "$case: the INVITE is in $nseg TCP segment(s), expected it to span at least two"
        # Its size, and where its header section ends (Content-Length: the INVITE's is the first in the capture).
        inv_total=$((${segs//+/ + }))
        inv_body=$(tcpdump -nn -A -r "$cap" 2>/dev/null |
            awk '!d && match($0, /Content-Length: *[0-9]+/) { v = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", v); print v; d = 1 }')
        ((inv_body > 0)) || die "$case: no Content-Length found for the INVITE"
        inv_head=$((inv_total - inv_body))
        first_seg=${segs%%+*}
        if ((first_seg < inv_head)); then
            split_at="ends inside the header section;
the second holds the rest of the headers and the whole SDP"
        else
            split_at="holds all the headers and the beginning of the SDP;
the second the rest of the SDP"
        fi
    else
        # The calls must overlap: INVITE n+1 before BYE n (in capture order).
        local inv byes
        inv=($(sip_flow "$cap" | grep -n '^INVITE ' | cut -d: -f1))
        byes=($(sip_flow "$cap" | grep -n '^BYE ' | cut -d: -f1))
        ((${#inv[@]} == 3 && ${#byes[@]} == 3 && inv[1] < byes[0] && inv[2] < byes[1])) ||
            die "$case: the calls do not overlap (INVITEs at lines ${inv[*]}, BYEs at ${byes[*]} of the SIP flow)"
    fi
    # Which side closed first: the source of the first FIN.
    if [[ $(tcpdump -nn -r "$cap" "$TCP_FIN" 2>/dev/null | awk 'NR == 1 { print $3 }') == "$V4_A".* ]]; then
        closer="the UAC closes first (FIN from $V4_A, then from $V4_B)"
    else
        closer="the UAS closes first (FIN from $V4_B, then from $V4_A)"
    fi
    publish "$case" "$cap"
    cap="$SAMPLES/$case/capture.pcap"

    local uas_cmd uac_cmd
    uas_cmd="sipp -sf scripts/sipp/$uas_xml -t $mode -max_socket 64 -key sa_case $case -i $V4_B -p $UAS_PORT -m $calls -timeout 10s -timeout_error -nostdin"
    uac_cmd="sipp -sf scripts/sipp/$uac_xml -t $mode -max_socket 64 -key sa_case $case ${uac_args[*]:+${uac_args[*]} }-cid_str 'sa-$case-%u@ue.sipaudit.test' -i $V4_A -p $UAC_PORT -m $calls -timeout 10s -timeout_error -nostdin $V4_B:$UAS_PORT"
    if [[ $mode == t1 ]]; then
        title="tcp-t1: one call over one TCP connection (sipp -t t1), the INVITE in two TCP segments"
        ex=$(tcpdump -nn -r "$cap" 2>/dev/null | awk -v s="$V4_B.$UAS_PORT > $V4_A.$UAC_PORT:" \
            '!d { print } index($0, s) && / length [1-9][0-9]*$/ { d = 1 }' | sed 's/, options \[[^]]*\]//')
        desc="A plain IMS-style audio+video call over SIP/TCP: INVITE / 100 / 180 / 200 / ACK / BYE / 200 on ONE TCP
connection from $V4_A:$UAC_PORT (SIPp connects from its -p port with \`-t t1\`) to $V4_B:$UAS_PORT,
Call-ID \`sa-$case-1@ue.sipaudit.test\`, Via \`SIP/2.0/TCP\`, \`;transport=tcp\` in Contact and the ACK/BYE Request-URIs.
The INVITE (long IMS headers, SDP with audio and video m-lines; $inv_total bytes: $inv_head of start line and
headers, $inv_body of body) is larger than one segment at MTU 1500, so it arrives in $nseg TCP segments of
$segs bytes: the first $split_at.
An analyzer must reassemble the stream (and frame the message by Content-Length) to see the INVITE.
The responses and the ACK/BYE each fit in one segment. After the call
$closer; there is no RST.

The handshake and the INVITE's segments, from \`tcpdump -nn -r capture.pcap\` (TCP options left out):

\`\`\`
$ex
\`\`\`"
    else
        title="tcp-tn: three overlapping calls, one TCP connection per call (sipp -t tn)"
        ex=$(tcpdump -nn -r "$cap" "($TCP_SYN) or ($TCP_FIN)" 2>/dev/null | awk '{ l = $1 " " $2 " " $3 " " $4 " " $5 " " $6 " " $7; sub(/,$/, "", l); print l }')
        desc="Three plain calls over SIP/TCP (\`sipp -t tn -m 3 -r 1 -rp 1200\`): SIPp opens a new TCP connection for each
call, from an ephemeral source port of $V4_A to $V4_B:$UAS_PORT, and closes it when the call ends:
$closer; there is no RST.
A call starts every 1.2 s and lasts about 1.5 s, so the calls overlap: call 2's INVITE comes before call 1's BYE,
call 3's before call 2's.
Each call: INVITE / 100 / 180 / 200 / ACK / BYE / 200, Call-IDs \`sa-$case-1@ue.sipaudit.test\` to
\`sa-$case-3@ue.sipaudit.test\`, From tags \`$case-alice<n>\`, To tags \`$case-bob<n>\`, branches
\`z9hG4bK-$case-{inv,ack,bye}<n>\` (n = 1, 2, 3). Via sent-by and Contact carry the UAC's listening port
($V4_A:$UAC_PORT, where SIPp listens), not the connection's ephemeral port, as a UA over TCP does (RFC 3261
section 18.1.1): the responses go back on the connection the request came in on. Every message fits in one segment.

The ephemeral ports are chosen by the kernel and change from one run to the next (SIP content does not).
Connections opened and closed, from \`tcpdump -nn -r capture.pcap '(SYN without ACK) or FIN'\` (first 7 fields):

\`\`\`
$ex
\`\`\`"
    fi
    write_readme "$case" "$cap" "$title" "$desc" \
"Two network namespaces created by the script, \`$NS_A\` (UAC, $V4_A) and \`$NS_B\` (UAS, $V4_B), joined by a veth
pair at MTU 1500 with static neighbour entries (no ARP). These addresses exist only inside those namespaces;
nothing leaves them.

- UAS (in $NS_B): \`$uas_cmd\`
- UAC (in $NS_A): \`$uac_cmd\`
- Capture (in $NS_B, on the UAS end of the veth pair, Ethernet): \`tcpdump -i $VETH_B -n -s 0 -U --immediate-mode -w capture.pcap '$filter'\`

$HOW_TCP" tcp
    log "$case: OK ($n packets, $syn connection(s), $fin FINs${segs:+, INVITE in $nseg segments ($segs bytes)}, link type $(linktype_name "$cap"))"
}

# ---------------------------------------------------------------- retransmissions, CANCEL, auth, retries ----
check_resend() { # check_resend CASE FILE EXPECTED: the frames tshark flags sip.resend == 1, as "frame|method|status|cseq"
    local got
    got=$(tshark -r "$2" -Y 'sip.resend == 1' -T fields -E separator='|' \
        -e frame.number -e sip.Method -e sip.Status-Code -e sip.CSeq 2>/dev/null) || die "$1: tshark failed on $2"
    if [[ $got != "$3" ]]; then
        log "$1: tshark does not flag the expected retransmissions (sip.resend == 1)"
        diff <(printf '%s\n' "$3") <(printf '%s\n' "$got") >&2 || true
        die "$1: retransmission check failed"
    fi
}

sip_message() { # sip_message FILE N: the SIP message in packet N (unfragmented UDP), one line per header line
    # tcpdump -A prints the IP and UDP headers in front of the start line: cut them off there.
    tcpdump -nn -A -r "$1" 2>/dev/null | awk -v n="$2" '
        /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]+ / { k++; first = 1; next }
        k == n { sub(/\r$/, ""); if (first) { if (!match($0, /(INVITE|ACK|BYE|CANCEL|PRACK|UPDATE|OPTIONS|REGISTER) [a-z]+:[^ ]* SIP\/2\.0|SIP\/2\.0 [1-6][0-9][0-9] /)) next
                 $0 = substr($0, RSTART); first = 0 } print }'
}

gap_ms() { # gap_ms FILE A B: milliseconds between packets A and B (1-based) of FILE
    tcpdump -tt -nn -r "$1" 2>/dev/null | awk -v a="$2" -v b="$3" \
        'NR == a { ta = $1 } NR == b { tb = $1 } END { printf "%d\n", (tb - ta) * 1000 + 0.5 }'
}

case_retrans() {
    local case=udp-retrans-invite-420 cap t_inv t_420
    DECODE_RESEND=1
    case_loopback "$case" 127.0.0.1 lo "" udp-retrans-invite-420-uas.xml udp-retrans-invite-420-uac.xml \
'INVITE | CSeq: 30 INVITE
INVITE | CSeq: 30 INVITE
100 | CSeq: 30 INVITE
420 | CSeq: 30 INVITE
420 | CSeq: 30 INVITE
ACK | CSeq: 30 ACK
INVITE | CSeq: 31 INVITE
100 | CSeq: 31 INVITE
180 | CSeq: 31 INVITE
200 | CSeq: 31 INVITE
ACK | CSeq: 31 ACK
BYE | CSeq: 32 BYE
200 | CSeq: 32 BYE' \
        "udp-retrans-invite-420: UDP retransmissions of the INVITE (Timer A) and of the 420 (Timer G), then a relaxed retry in the same Call-ID (127.0.0.1)" \
"rules.md H13 on a real SIPp exchange: an IMS UE (sip:+491701234567@ims.mnc001.mcc262.3gppnetwork.org) calls a slow
non-IMS peer, sip:bob@voip.example.net, over UDP.
Call-ID \`sa-$case-1@ue.sipaudit.test\`, From tag \`$case-ue1\` on both attempts.

- INVITE CSeq 30, branch \`z9hG4bK-$case-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`,
  SDP \`a=des:qos mandatory local sendrecv\`.
- The peer answers only after 700 ms, so the UAC retransmits the INVITE once (Timer A = T1 = 500 ms): frame 2 is
  byte for byte frame 1. (The UAS's SIPp receives the copy while it waits and drops it as a retransmission.)
- 100 Trying, then 420 Bad Extension with \`Unsupported: precondition\` (To tag \`$case-peer1\`).
- The UAC waits 700 ms before it ACKs, so the peer retransmits the 420 once (Timer G, 500 ms): frame 5 is byte for
  byte frame 4. (The UAC's SIPp drops the copy as a retransmission of the 420 it has just received.)
- ACK CSeq 30 on the INVITE's branch with the 420's To tag, 700 ms after the first 420 (the next copy would have
  come 1.5 s after it).
- 300 ms later the retry (RFC 3261 section 8.1.3.5, rules.md A.3 H0): INVITE CSeq 31, SAME Call-ID and From tag,
  new branch \`z9hG4bK-$case-inv2\`, no To tag, no Require, \`Supported: 100rel, precondition\`, SDP
  \`a=des:qos optional local sendrecv\` (same o= session id, version 2).
- 100, 180, 200 (To tag \`$case-peer2\`, SDP answer without precondition lines), ACK CSeq 31, BYE CSeq 32 / 200.

Reading by rules.md (H13, H01): one attempt plus one retry (the INVITE copy is a retransmission, same branch, not a
new attempt), retransmission counters 1 (INVITE) and 1 (420), both 420 copies in the first attempt's transaction
(A.5), COMPLIANT_RELAXATION with the flag DESIRED_LISTED. The timings leave 200 ms of margin on each side, so every run repeats exactly one INVITE and
one 420; the script checks that tshark flags exactly frames 2 and 5 with \`sip.resend == 1\`."
    cap="$SAMPLES/$case/capture.pcap"
    check_resend "$case" "$cap" '2|INVITE||30 INVITE
5||420|30 INVITE'
    cmp -s <(sip_message "$cap" 1) <(sip_message "$cap" 2) || die "$case: frame 2 is not the same INVITE as frame 1"
    cmp -s <(sip_message "$cap" 4) <(sip_message "$cap" 5) || die "$case: frame 5 is not the same 420 as frame 4"
    t_inv=$(gap_ms "$cap" 1 2)
    t_420=$(gap_ms "$cap" 4 5)
    log "$case: INVITE repeated after $t_inv ms, 420 repeated after $t_420 ms"
    ((t_inv >= 400 && t_inv <= 700 && t_420 >= 400 && t_420 <= 700)) ||
        die "$case: retransmission intervals $t_inv / $t_420 ms, expected about 500 ms"
    DECODE_RESEND=0
}

case_cancel() {
    local case=cancel-487
    DECODE_RESEND=1
    case_loopback "$case" 127.0.0.1 lo "" cancel-487-uas.xml cancel-487-uac.xml \
'INVITE | CSeq: 40 INVITE
100 | CSeq: 40 INVITE
180 | CSeq: 40 INVITE
CANCEL | CSeq: 40 CANCEL
200 | CSeq: 40 CANCEL
487 | CSeq: 40 INVITE
ACK | CSeq: 40 ACK' \
        "cancel-487: the caller cancels a ringing call: CANCEL, 200 (CANCEL), 487, ACK (UDP, 127.0.0.1)" \
"sip:alice@ue.sipaudit.test calls sip:bob@voip.example.net and gives up while it rings (RFC 3261 section 9).
Call-ID \`sa-$case-1@ue.sipaudit.test\`, From tag \`$case-alice1\`.

- INVITE CSeq 40, branch \`z9hG4bK-$case-inv1\` (SDP offer, PCMU).
- 100 Trying, 180 Ringing (To tag \`$case-peer1\`).
- 500 ms after the 180: CANCEL CSeq 40 on the SAME branch \`z9hG4bK-$case-inv1\`, with the INVITE's Request-URI,
  Call-ID, From (with tag) and To (without tag), as section 9.1 requires. A CANCEL is its own (non-INVITE)
  transaction: rules.md A.1 keys it (branch, CANCEL).
- 200 OK for the CANCEL (CSeq 40 CANCEL, To tag \`$case-peer1\`), then 487 Request Terminated for the INVITE
  (CSeq 40 INVITE, same To tag).
- ACK CSeq 40 for the 487: the INVITE's branch and the 487's To tag (section 17.1.1.3, a non-2xx ACK).

Reading by rules.md: one attempt, no retry; C22 CALLER_CANCELLED (terminal, capability checks skipped), outcome
CANCELLED; the CANCEL follows a 1xx (no CANCEL_BEFORE_1XX) and no 2xx crossed it (no CANCEL_RACE_ANSWERED); a 487
starts no retry link."
    DECODE_RESEND=0
}

case_auth() {
    local case=auth-407
    DECODE_RESEND=1
    case_loopback "$case" 127.0.0.1 lo "" auth-407-uas.xml auth-407-uac.xml \
'INVITE | CSeq: 50 INVITE
407 | CSeq: 50 INVITE
ACK | CSeq: 50 ACK
INVITE | CSeq: 51 INVITE
100 | CSeq: 51 INVITE
180 | CSeq: 51 INVITE
200 | CSeq: 51 INVITE
ACK | CSeq: 51 ACK
BYE | CSeq: 52 BYE
200 | CSeq: 52 BYE' \
        "auth-407: a proxy challenge (407), then the INVITE again with Proxy-Authorization in the same Call-ID (UDP, 127.0.0.1)" \
"sip:alice@voip.example.net calls sip:bob@voip.example.net through a proxy that wants digest credentials
(RFC 3261 section 22.3). Call-ID \`sa-$case-1@ue.sipaudit.test\`, From tag \`$case-alice1\` on both INVITEs.

- INVITE CSeq 50, branch \`z9hG4bK-$case-inv1\`, no credentials.
- 407 Proxy Authentication Required (To tag \`$case-proxy1\`) with
  \`Proxy-Authenticate: Digest realm=\"voip.example.net\", nonce=\"c2lwYXVkaXQtYXV0aC00MDctbm9uY2UtMDAwMQ\", algorithm=MD5\`
  (a fixed nonce and no qop, so the digest, computed by SIPp's \`[authentication]\`, is the same on every run).
- ACK CSeq 50 on the INVITE's branch with the 407's To tag.
- INVITE CSeq 51, SAME Call-ID and From tag, new branch \`z9hG4bK-$case-inv2\`, no To tag, with
  \`Proxy-Authorization: Digest username=\"alice\",realm=\"voip.example.net\",uri=\"sip:bob@voip.example.net\",nonce=...,response=...,algorithm=MD5\`
  (digest uri = the Request-URI, thanks to \`-auth_uri\`; password \`sipaudit-sample\`: the script recomputes the
  response from the capture and fails if it differs). Headers and SDP are otherwise those of the first INVITE.
- 100, 180, 200 (To tag \`$case-bob1\`), ACK CSeq 51 (branch \`z9hG4bK-$case-ack2\`), BYE CSeq 52 / 200.

Reading by rules.md: one session of two attempts linked by H0 (A.3) with the trigger 407 (auth); the 407 is not a
capability failure and the retry relaxes nothing (Proxy-Authorization is kept out of the diffs, G.13), so no D.3
verdict: session verdict NOT_APPLICABLE, outcome ESTABLISHED." \
        1 -auth_uri bob@voip.example.net
    check_digest "$case" "$SAMPLES/$case/capture.pcap" alice sipaudit-sample INVITE
    DECODE_RESEND=0
}

auth_param() { # auth_param NAME HEADER: the quoted value of a digest parameter
    sed -n "s/.*[ ,]$1=\"\([^\"]*\)\".*/\1/p" <<<" $2"
}

check_digest() { # check_digest CASE FILE USER PASSWORD METHOD: the (qop-less MD5) Proxy-Authorization response is right
    local hdr user realm nonce uri resp ha1 ha2 want
    hdr=$(tcpdump -nn -A -r "$2" 2>/dev/null | sed -n 's/\r$//; s/^Proxy-Authorization: //p' | head -1)
    [[ -n $hdr ]] || die "$1: no Proxy-Authorization header in the capture"
    user=$(auth_param username "$hdr") realm=$(auth_param realm "$hdr") nonce=$(auth_param nonce "$hdr")
    uri=$(auth_param uri "$hdr") resp=$(auth_param response "$hdr")
    [[ $user == "$3" && $uri == sip:bob@voip.example.net && $hdr != *qop=* ]] ||
        die "$1: unexpected Proxy-Authorization: $hdr"
    ha1=$(printf '%s' "$user:$realm:$4" | md5sum | cut -d' ' -f1)
    ha2=$(printf '%s' "$5:$uri" | md5sum | cut -d' ' -f1)
    want=$(printf '%s' "$ha1:$nonce:$ha2" | md5sum | cut -d' ' -f1)
    [[ $resp == "$want" ]] || die "$1: digest response $resp, expected $want (user $user, realm $realm, uri $uri)"
    log "$1: Proxy-Authorization digest response checked ($resp)"
}

case_h2() {
    local case=retry-new-callid-h2
    DECODE_RESEND=1
    case_loopback "$case" 127.0.0.1 lo "" retry-new-callid-h2-uas.xml retry-new-callid-h2-uac.xml \
'INVITE | CSeq: 1 INVITE
420 | CSeq: 1 INVITE
ACK | CSeq: 1 ACK
INVITE | CSeq: 1 INVITE
100 | CSeq: 1 INVITE
180 | CSeq: 1 INVITE
200 | CSeq: 1 INVITE
ACK | CSeq: 1 ACK
BYE | CSeq: 2 BYE
200 | CSeq: 2 BYE' \
        "retry-new-callid-h2: 420 (precondition), then a relaxed retry in a NEW Call-ID with a new From tag (rules.md H2; UDP, 127.0.0.1)" \
"rules.md A.3 H2 (example H06): an IMS UE (sip:+491701234567@ims.mnc001.mcc262.3gppnetwork.org;user=phone) calls a
non-IMS peer, sip:bob@voip.example.net; after a 420 it starts over as a new call instead of retrying in the same
Call-ID. SIPp runs the UAC as two calls one second apart (\`-m 2 -r 1 -rp 1000\`, one scenario; the per-call values come
from \`-inf scripts/sipp/retry-new-callid-h2.csv\`); the UAS also runs two calls (\`-m 2\`) and refuses any INVITE
whose Require lists precondition.

- Attempt 1: INVITE CSeq 1, Call-ID \`sa-$case-1@ue.sipaudit.test\`, From tag \`$case-ue1\`, branch
  \`z9hG4bK-$case-inv1\`: \`Require: precondition\`, SDP \`a=des:qos mandatory local sendrecv\`.
  420 Bad Extension with \`Unsupported: precondition\` (To tag \`$case-peer1\`), ACK CSeq 1 on the INVITE's branch.
- About 1 s later, attempt 2: INVITE CSeq 1, NEW Call-ID \`sa-$case-2@ue.sipaudit.test\`, NEW From tag
  \`$case-ue2\`, branch \`z9hG4bK-$case-inv2\`. Same Request-URI (sip:bob@voip.example.net), same From and To URIs,
  same other headers and the same SDP (o= line included: same username, session id and version); it differs
  from attempt 1 only in \`Require: precondition\` -> \`Supported: precondition\` and \`a=des:qos mandatory\` ->
  \`a=des:qos optional\` (besides Call-ID, From tag and Via branch, which H2 ignores).
- 100, 180, 200 (To tag \`$case-peer2\`, SDP answer without precondition lines), ACK CSeq 1 (branch
  \`z9hG4bK-$case-ack2\`), BYE CSeq 2 / 200.

Reading by rules.md (H06): two attempts linked by H2 with the o= bonus (confidence 0.8; not H0/H0'/H1: new Call-ID
and new tag), verdict RETRY_NEW_CALL_ID with the flag NEW_CALL_ID(H2,0.8); with require_same_call_id=true,
POLICY_VIOLATION:SAME_CALL_ID_REQUIRED." \
        2 -inf "$SIPP_SRC/retry-new-callid-h2.csv" -r 1 -rp 1000
    local cap="$SAMPLES/$case/capture.pcap" g d
    # H2's content test: the two INVITEs (frames 1 and 4) differ only in Via branch, From tag, Call-ID, the header
    # that carries precondition, the a=des strength and the Content-Length that follows from it.
    d=$(diff <(sip_message "$cap" 1) <(sip_message "$cap" 4) | sed -n 's/^[<>] //p' |
        grep -vE '^(Via|From|Call-ID|Content-Length): |^(Require|Supported): precondition$|^a=des:qos (mandatory|optional) local sendrecv$' || true)
    [[ -z $d ]] || die "$case: the two INVITEs differ in more than H2 allows: $d"
    g=$(gap_ms "$cap" 3 4)
    log "$case: the second INVITE comes $g ms after the ACK of the 420"
    ((g >= 500 && g <= 2000)) || die "$case: $g ms between the ACK and the new INVITE, expected about 1 s"
    DECODE_RESEND=0
}

# rotated-420-retry: one capture of a relaxed retry after 420, split with editcap between the ACK of the 420 and
# the retried INVITE, as a capture rotated at that point would be.
case_rotated() {
    local case=rotated-420-retry wd="$TMP/rotated-420-retry" ns cap n k f flow1 flow2 where
    local exp='INVITE | CSeq: 10 INVITE
100 | CSeq: 10 INVITE
420 | CSeq: 10 INVITE
ACK | CSeq: 10 ACK
INVITE | CSeq: 11 INVITE
100 | CSeq: 11 INVITE
180 | CSeq: 11 INVITE
200 | CSeq: 11 INVITE
ACK | CSeq: 11 ACK
BYE | CSeq: 12 BYE
200 | CSeq: 12 BYE'
    mkdir -p "$wd"
    cap="$wd/capture.pcap"
    lo_ns
    ns=$LO_NS
    if [[ -n $ns ]]; then
        where="inside a network namespace the script creates (\`ip netns add $ns\`, only \`lo\` up), so nothing else on the machine shows up in the capture"
    else
        where="on the host loopback (network namespaces were not available)"
    fi
    start_capture "$ns" lo "$cap" "" "udp port $UAS_PORT"
    run_call "$case" "$ns" 127.0.0.1 "$ns" 127.0.0.1 rotated-420-retry-uas.xml rotated-420-retry-uac.xml
    stop_capture
    [[ -n $ns ]] && ns_del "$ns"
    check_flow "$case" "$cap" "$exp"
    n=$(packet_count "$cap")
    ((n == 11)) || die "$case: $n packets in the capture, expected exactly 11 (one per SIP message)"
    # The split point: the retried INVITE (one packet per message, so its line in the flow is its frame number).
    k=$(sip_flow "$cap" | grep -n '^INVITE | CSeq: 11 INVITE$' | cut -d: -f1)
    [[ $k == 5 ]] || die "$case: the retried INVITE is frame '$k', expected 5"
    editcap -F pcap -r "$cap" "$wd/capture-1.pcap" "1-$((k - 1))" >/dev/null
    editcap -F pcap -r "$cap" "$wd/capture-2.pcap" "$k-$n" >/dev/null
    flow1=$(printf '%s\n' "$exp" | sed -n "1,$((k - 1))p")
    flow2=$(printf '%s\n' "$exp" | sed -n "$k,\$p")
    check_flow "$case (capture-1)" "$wd/capture-1.pcap" "$flow1"
    check_flow "$case (capture-2)" "$wd/capture-2.pcap" "$flow2"
    for f in capture-1.pcap capture-2.pcap; do
        [[ $(od -An -tx1 -N4 "$wd/$f" | tr -d ' ') == d4c3b2a1 ]] || die "$case: $f is not a classic (microsecond) pcap"
        [[ $(linktype_num "$wd/$f") == $(linktype_num "$cap") ]] || die "$case: $f has another link type"
    done
    # Packets and timestamps are untouched: the two parts together are the original capture.
    cmp -s <(tcpdump -tt -nn -xx -r "$cap" 2>/dev/null) \
        <(tcpdump -tt -nn -xx -r "$wd/capture-1.pcap" 2>/dev/null; tcpdump -tt -nn -xx -r "$wd/capture-2.pcap" 2>/dev/null) ||
        die "$case: capture-1 + capture-2 differ from the original capture"
    mkdir -p "$SAMPLES/$case"
    install -m 0644 "$wd/capture-1.pcap" "$SAMPLES/$case/capture-1.pcap"
    install -m 0644 "$wd/capture-2.pcap" "$SAMPLES/$case/capture-2.pcap"
    local gap
    gap=$(gap_ms "$cap" $((k - 1)) "$k")
    DECODE_RESEND=1
    write_readme_rotated "$case" "$where" "$gap" "$k" "$n"
    DECODE_RESEND=0
    log "$case: OK ($((k - 1)) + $((n - k + 1)) packets in capture-1.pcap + capture-2.pcap, link type $(linktype_name "$SAMPLES/$case/capture-1.pcap"))"
}

write_readme_rotated() { # write_readme_rotated CASE WHERE GAP_MS K N
    local case=$1 where=$2 gap=$3 k=$4 n=$5 dir="$SAMPLES/$1" f
    {
        printf '# %s: a relaxed retry after 420 in two rotated capture files (UDP, 127.0.0.1)\n\n' "$case"
        printf '%s\n\n' "rules.md H01 / H17 on a real SIPp exchange, in two files: an IMS UE
(sip:+491701234567@ims.mnc001.mcc262.3gppnetwork.org;user=phone) calls a non-IMS peer, sip:bob@voip.example.net.
Call-ID \`sa-$case-1@ue.sipaudit.test\`, From tag \`$case-ue1\` on both attempts.

- capture-1.pcap: INVITE CSeq 10, branch \`z9hG4bK-$case-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`,
  SDP \`a=des:qos mandatory local sendrecv\`; 100 Trying; 420 Bad Extension with \`Unsupported: precondition\`
  (To tag \`$case-peer1\`); ACK CSeq 10 on the INVITE's branch.
- capture-2.pcap, starting $gap ms after the ACK: the retry (RFC 3261 section 8.1.3.5, rules.md A.3 H0): INVITE
  CSeq 11, SAME Call-ID and From tag, new branch \`z9hG4bK-$case-inv2\`, no To tag, no Require,
  \`Supported: 100rel, precondition\`, SDP \`a=des:qos optional local sendrecv\` (same o= session id, version 2);
  100, 180, 200 (To tag \`$case-peer2\`), ACK CSeq 11, BYE CSeq 12 / 200.

The 420 (and its ACK) and the retry are in different files: an analyzer must merge the files by timestamp and keep
its state across the boundary (rules.md A.2) to link the retry (H0) and give COMPLIANT_RELAXATION, flag
DESIRED_LISTED. capture-1.pcap analysed alone ends just after the ACK, long before any retry window closes, so no
retry can be seen (for its variant rules.md H17 gives TRUNCATED); capture-2.pcap alone starts with an INVITE CSeq 11
whose Call-ID has no earlier attempt in that file.
Note: H17 puts the boundary between the 420 and its ACK; here it is between the ACK and the retried INVITE."
        printf '## Capture\n\n'
        for f in capture-1.pcap capture-2.pcap; do
            printf -- '- File: `%s` (classic pcap, microsecond timestamps), %s bytes, %s packets, link type %s (%s)\n' \
                "$f" "$(stat -c %s "$dir/$f")" "$(packet_count "$dir/$f")" "$(linktype_name "$dir/$f")" \
                "$(linktype_num "$dir/$f")"
        done
        printf -- '- Made: %s by `scripts/gen-samples.sh %s`\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$case"
        printf -- '- Tools: %s, %s (Debian wireshark-common %s)\n\n' "$TOOLS_LINE" \
            "$(editcap -v 2>&1 | head -1 | sed 's/ (Git .*//; s/\.$//')" \
            "$(dpkg-query -W -f='${Version}' wireshark-common 2>/dev/null || echo '?')"
        printf '## How it was made\n\n'
        printf '%s\n\n' "SIPp over UDP on the loopback address 127.0.0.1, $where. ONE capture of the whole exchange
($n packets), then split in two with editcap at the point between the ACK of the 420 and the retried INVITE (the
split is not a live tcpdump rotation: \`tcpdump -C\` counts in millions of bytes and \`-G\` in whole seconds of the
wall clock, so neither can put the boundary at a chosen message of a 7 KB exchange on every run).

- UAS: \`sipp -sf scripts/sipp/rotated-420-retry-uas.xml -key sa_case $case -i 127.0.0.1 -p $UAS_PORT -m 1 -timeout 10s -timeout_error -nostdin\`
- UAC: \`sipp -sf scripts/sipp/rotated-420-retry-uac.xml -key sa_case $case -cid_str 'sa-$case-%u@ue.sipaudit.test' -i 127.0.0.1 -p $UAC_PORT -m 1 -timeout 10s -timeout_error -nostdin 127.0.0.1:$UAS_PORT\`
- Capture: \`tcpdump -i lo -n -s 0 -U --immediate-mode -w capture.pcap 'udp port $UAS_PORT'\`
- Split (the retried INVITE is frame $k of capture.pcap):
  \`editcap -F pcap -r capture.pcap capture-1.pcap 1-$((k - 1))\` and
  \`editcap -F pcap -r capture.pcap capture-2.pcap $k-$n\`; packets and timestamps are kept as captured (the
  script checks that the two files together are byte for byte the packets of capture.pcap), frame numbers start
  again at 1 in capture-2.pcap. capture.pcap itself is not kept.

$HOW_COMMON"
        for f in capture-1.pcap capture-2.pcap; do
            printf '## %s: SIP messages (start line | CSeq), from `tcpdump -nn -A`\n\n```\n' "$f"
            sip_flow "$dir/$f"
            printf '```\n\n'
            if command -v tshark >/dev/null 2>&1; then
                printf '## %s: tshark decode\n\n' "$f"
                decode_section "$dir/$f"
            fi
        done
        printf 'Regenerate with `sudo scripts/gen-samples.sh %s` (timestamps change; identifiers do not).\n' "$case"
        printf 'Expected analyzer outputs for these captures are blessed separately.\n'
    } >"$dir/README.md"
}

# ---------------------------------------------------------------- forking, clock skew ----
# fork-two-180: the To tag of every message, checked on top of the start lines (sip_flow_totag).
EXP_FORK_TAGS='INVITE | CSeq: 60 INVITE | To tag: -
100 | CSeq: 60 INVITE | To tag: -
180 | CSeq: 60 INVITE | To tag: fork-a
180 | CSeq: 60 INVITE | To tag: fork-b
200 | CSeq: 60 INVITE | To tag: fork-b
ACK | CSeq: 60 ACK | To tag: fork-b
BYE | CSeq: 61 BYE | To tag: fork-b
200 | CSeq: 61 BYE | To tag: fork-b'

check_fork_tags() { # check_fork_tags CASE FILE (a LOOPBACK_CHECK): the flow with To tags is EXP_FORK_TAGS
    local got
    got=$(sip_flow_totag "$2")
    if [[ $got != "$EXP_FORK_TAGS" ]]; then
        log "$1: unexpected To tags in the capture"
        diff <(printf '%s\n' "$EXP_FORK_TAGS") <(printf '%s\n' "$got") >&2 || true
        die "$1: To tag check failed"
    fi
    log "$1: To tags checked (180 fork-a, 180 fork-b, 200 fork-b, ACK/BYE/200 in dialog fork-b)"
}

case_fork() {
    local case=fork-two-180 exp
    exp=$(printf '%s\n' "$EXP_FORK_TAGS" | sed 's/ | To tag: .*$//')
    DECODE_RESEND=1 DECODE_TOTAG=1 LOOPBACK_CHECK=check_fork_tags
    case_loopback "$case" 127.0.0.1 lo "" fork-two-180-uas.xml fork-two-180-uac.xml "$exp" \
        "fork-two-180: a forked INVITE: 180 from two branches (To tags fork-a, fork-b), then one 200 (UDP, 127.0.0.1)" \
"rules.md A.4 on a real SIPp exchange: sip:alice@voip.example.net calls sip:bob@voip.example.net; a forking proxy
(RFC 3261 section 16.7) rings two phones, A and B, and passes both phones' provisional responses back; phone B
answers. The capture is the caller's view: one SIPp plays the proxy and both phones (the responses carry only the
caller's Via, the proxy having removed its own; there is no Record-Route). Call-ID \`sa-$case-1@ue.sipaudit.test\`,
From tag \`$case-alice1\`, ONE INVITE.

- INVITE CSeq 60, branch \`z9hG4bK-$case-inv1\`, no To tag, SDP offer (PCMU, PCMA).
- 100 Trying (no To tag).
- 180 Ringing, To tag \`fork-a\`, Contact \`<sip:bob-a@127.0.0.1:$UAS_PORT;transport=udp>\`,
  \`Server: sipaudit-sample-phone-A/1.0\`: early dialog A.
- 200 ms later: 180 Ringing, To tag \`fork-b\`, Contact \`<sip:bob-b@127.0.0.1:$UAS_PORT;transport=udp>\`,
  \`Server: sipaudit-sample-phone-B/1.0\`: early dialog B.
- 500 ms later: 200 OK, To tag \`fork-b\`, Contact of phone B, SDP answer: dialog B is confirmed. Nothing more comes
  from branch A (the proxy cancels it on its own side, which the caller does not see).
- ACK CSeq 60 for the 2xx (new branch \`z9hG4bK-$case-ack1\`, To tag \`fork-b\`, Request-URI = phone B's Contact);
  1 s later BYE CSeq 61 (branch \`z9hG4bK-$case-bye1\`, To tag \`fork-b\`) / 200 OK (To tag \`fork-b\`).

All responses to the INVITE carry its branch: one INVITE client transaction. Both SIPp check the To tags (ereg
\`check_it\`), and the script checks the To tag of every message in the capture.

Reading by rules.md (A.1, A.4): one session with one attempt (no retry); two early dialogs, one per distinct To tag
in a 1xx (\`fork-a\`, \`fork-b\`); one confirmed dialog (\`fork-b\`); a single 2xx, so no FORKED_MULTI_ANSWER; the ACK
and the BYE belong to dialog \`fork-b\` (Call-ID, \`$case-alice1\`, \`fork-b\`). No failure: verdict NOT_APPLICABLE,
outcome ESTABLISHED, final_status 200. Early dialog \`fork-a\` never gets a final response the caller can see."
    DECODE_RESEND=0 DECODE_TOTAG=0 LOOPBACK_CHECK=""
}

# skew-two-points: one call seen at two one-way capture points (A: only the packets the caller sends; B: only the
# packets the callee sends), the second point's clock behind by SKEW_S seconds. Each message is therefore in exactly one
# file, and a response's only copy (from B) is compared with its request's only copy (from A).
# 30 ms: more than SIPp's answer time (about a millisecond here; the 100, the 180 and the 200 to the BYE are sent as
# soon as the request arrives), so those responses come before their request in the merged files, and less than
# rules.md's skew_tol (50 ms), so an analyzer repairs the order (clock_skew) instead of keeping it. The 200 to the
# INVITE is sent 500 ms after the INVITE and stays after it.
SKEW_S=0.030
SKEW_TOL_S=0.050

skew_listing() { # skew_listing FILE1 FILE2: the two files merged by timestamp, one line per SIP message:
    # "merged-frame|point(A = FILE1, B = FILE2)|time_epoch|time_relative|method|status|cseq"
    # (mergecap -I none keeps one interface per input file: interface 0 is FILE1, 1 is FILE2)
    mergecap -I none -F pcapng -w - "$1" "$2" | tshark -r - -Y sip -T fields -E separator='|' \
        -e frame.number -e frame.interface_id -e frame.time_epoch -e frame.time_relative \
        -e sip.Method -e sip.Status-Code -e sip.CSeq 2>/dev/null |
        awk -F'|' 'BEGIN { OFS = "|" } { $2 = ($2 == 0 ? "A" : ($2 == 1 ? "B" : "?" $2)); print }'
}

# skew_report LISTING: for every response captured at B, its time minus that of its request (same CSeq) captured at A,
# in ms: "merged-frame|status|cseq|minus request at A" (a response whose request is missing at A gets "?")
skew_report() {
    # Two passes over the listing: the requests first (a response from B may come before the request from A).
    awk -F'|' '
        NR == FNR { if ($5 != "" && $2 == "A" && !($7 in req)) req[$7] = $3; next }
        $6 != "" && $2 == "B" {
            if ($7 in req) printf "%s|%s|%s|%+.3f\n", $1, $6, $7, ($3 - req[$7]) * 1000
            else printf "%s|%s|%s|?\n", $1, $6, $7 }
    ' <(printf '%s\n' "$1") <(printf '%s\n' "$1")
}

# One-way views of EXP_PLAIN: what the caller sends (point A) and what the callee sends (point B).
EXP_SKEW_A='INVITE | CSeq: 1 INVITE
ACK | CSeq: 1 ACK
BYE | CSeq: 2 BYE'
EXP_SKEW_B='100 | CSeq: 1 INVITE
180 | CSeq: 1 INVITE
200 | CSeq: 1 INVITE
200 | CSeq: 2 BYE'

check_src_only() { # check_src_only CASE FILE SRC_IP: every packet in FILE is UDP sent by SRC_IP from or to port 5060
    local bad
    bad=$(tcpdump -nn -q -r "$2" 2>/dev/null | awk -v src="$3" -v port="$UAS_PORT" '
        { s = $3; d = $5; sub(/:$/, "", d)
          sip = s; sub(/\.[0-9]+$/, "", sip); sp = s; sub(/^.*\./, "", sp); dp = d; sub(/^.*\./, "", dp)
          if ($2 != "IP" || sip != src || (sp != port && dp != port) || $6 != "UDP,") print }')
    [[ -z $bad ]] || die "$1: $(basename "$2") holds packets not sent by $3 over UDP port $UAS_PORT: $bad"
}

case_skew() {
    local case=skew-two-points wd="$TMP/skew-two-points" cap_a cap_b pid_a log_a pid_b log_b n f
    local listing report order t1 t2 ok
    mkdir -p "$wd"
    cap_a="$wd/point-a.pcap" cap_b="$wd/point-b.pcap"
    veth_up
    # Two one-way taps, running at once. Point A: the caller's end of the veth pair (in sagen-a), only what the caller
    # sends; point B: the callee's end (in sagen-b), only what the callee sends.
    start_capture "$NS_A" "$VETH_A" "$cap_a" "" "src host $V4_A and udp port $UAS_PORT"
    pid_a=$TD_PID log_a=$TD_LOG
    start_capture "$NS_B" "$VETH_B" "$cap_b" "" "src host $V4_B and udp port $UAS_PORT"
    pid_b=$TD_PID log_b=$TD_LOG
    run_call "$case" "$NS_B" "$V4_B" "$NS_A" "$V4_A" basic-uas.xml basic-uac.xml
    TD_PID=$pid_b TD_LOG=$log_b
    stop_capture
    TD_PID=$pid_a TD_LOG=$log_a
    stop_capture
    ns_del "$NS_A" "$NS_B"
    # Each point holds its own direction only: A the 3 requests of the caller, B the 4 responses of the callee.
    check_flow "$case (point-a.pcap)" "$cap_a" "$EXP_SKEW_A"
    check_flow "$case (point-b.pcap)" "$cap_b" "$EXP_SKEW_B"
    n=$(packet_count "$cap_a")
    ((n == 3)) || die "$case: $n packets in point-a.pcap, expected exactly 3 (INVITE, ACK, BYE)"
    n=$(packet_count "$cap_b")
    ((n == 4)) || die "$case: $n packets in point-b.pcap, expected exactly 4 (100, 180, 200, 200)"
    check_src_only "$case" "$cap_a" "$V4_A"
    check_src_only "$case" "$cap_b" "$V4_B"
    install -m 0644 "$cap_a" "$wd/capture-1.pcap"
    editcap -F pcap -t "-$SKEW_S" "$cap_b" "$wd/capture-2.pcap" >/dev/null
    # The shift is exactly -SKEW_S on every packet, and nothing else changed.
    # (in integer microseconds: tcpdump -tt prints 6 decimals)
    local us a b skew_us
    skew_us=$(awk -v s="$SKEW_S" 'BEGIN { printf "%d", s * 1000000 + 0.5 }')
    t1=$(tcpdump -tt -nn -r "$cap_b" 2>/dev/null | awk '{ print $1 }' | tr -d .)
    t2=$(tcpdump -tt -nn -r "$wd/capture-2.pcap" 2>/dev/null | awk '{ print $1 }' | tr -d .)
    ok=0
    while read -r a b; do
        us=$((10#$a - 10#$b))
        ((us == skew_us)) || { log "$case: shifted by $us us instead of $skew_us"; ok=1; }
    done < <(paste -d' ' <(printf '%s\n' "$t1") <(printf '%s\n' "$t2"))
    ((ok == 0)) || die "$case: editcap did not shift every timestamp by -$SKEW_S s"
    cmp -s <(tcpdump -t -nn -xx -r "$cap_b" 2>/dev/null) <(tcpdump -t -nn -xx -r "$wd/capture-2.pcap" 2>/dev/null) ||
        die "$case: editcap changed packet contents"
    [[ $(od -An -tx1 -N4 "$wd/capture-1.pcap" | tr -d ' ') == d4c3b2a1 ]] || die "$case: capture-1.pcap is not a classic (microsecond) pcap"
    [[ $(od -An -tx1 -N4 "$wd/capture-2.pcap" | tr -d ' ') == d4c3b2a1 ]] || die "$case: capture-2.pcap is not a classic (microsecond) pcap"
    check_flow "$case (capture-1.pcap)" "$wd/capture-1.pcap" "$EXP_SKEW_A"
    check_flow "$case (capture-2.pcap)" "$wd/capture-2.pcap" "$EXP_SKEW_B"
    # The merged order: every response (from B) comes after its request (from A), or before it by less than skew_tol;
    # at least one comes before it; the 200 to the INVITE (sent 500 ms after it) comes after it.
    listing=$(skew_listing "$wd/capture-1.pcap" "$wd/capture-2.pcap")
    [[ $(grep -c '|A|' <<<"$listing") == 3 && $(grep -c '|B|' <<<"$listing") == 4 ]] ||
        die "$case: the merged files do not hold 3 SIP messages from A and 4 from B: $listing"
    report=$(skew_report "$listing")
    log "$case: responses captured at B (merged frame|status|cseq|ms after the request captured at A):"
    printf '%s\n' "$report" >&2
    awk -F'|' -v tol="$SKEW_TOL_S" '
        $4 == "?" { printf "merged frame %s (%s %s): its request is not in capture-1.pcap\n", $1, $2, $3; bad++; next }
        { a = $4 / 1000 }
        a < 0 && -a >= tol { printf "merged frame %s (%s %s) precedes its request by %.3f ms (>= skew_tol)\n", $1, $2, $3, -a * 1000; bad++ }
        $2 == 200 && $3 == "1 INVITE" && a <= 0 { printf "merged frame %s (200 to the INVITE) does not come after the INVITE\n", $1; bad++ }
        a < 0 { early++ }
        END { if (!early) { print "no response captured at B precedes its request captured at A"; bad++ } exit bad > 0 }
    ' <<<"$report" >&2 || die "$case: skew check failed"
    # The same check on the merged order alone: responses that come before the request of the same CSeq.
    order=$(awk -F'|' '$5 != "" && !($7 in req) { req[$7] = $1 } $6 != "" && !($7 in req) { n++ } END { print n + 0 }' <<<"$listing")
    ((order > 0)) || die "$case: in the merged file no response comes before its request"
    mkdir -p "$SAMPLES/$case"
    install -m 0644 "$wd/capture-1.pcap" "$SAMPLES/$case/capture-1.pcap"
    install -m 0644 "$wd/capture-2.pcap" "$SAMPLES/$case/capture-2.pcap"
    write_readme_skew "$case" "$listing" "$report"
    log "$case: OK (3 + 4 packets, one direction per point, point B shifted by -$SKEW_S s; $order response(s) before their request)"
}

write_readme_skew() { # write_readme_skew CASE LISTING REPORT
    local case=$1 listing=$2 report=$3 dir="$SAMPLES/$1" f ms early late
    ms=$(awk -v s="$SKEW_S" 'BEGIN { printf "%d", s * 1000 + 0.5 }')
    early=$(awk -F'|' '$4 < 0 { printf "%s%s (CSeq %s, %.3f ms before)", (n++ ? ", " : ""), $2, $3, -$4 }' <<<"$report")
    late=$(awk -F'|' '$4 >= 0 { printf "%s%s (CSeq %s, %.3f ms after)", (n++ ? ", " : ""), $2, $3, $4 }' <<<"$report")
    {
        printf '# %s: one call captured at two one-way points, the second point'"'"'s clock %s ms behind (UDP, veth)\n\n' "$case" "$ms"
        printf '%s\n\n' "rules.md A.2 (causal repair of clock skew between capture points) on a real SIPp exchange: a plain call,
INVITE / 100 / 180 / 200 / ACK / BYE / 200, from sip:alice@$V4_A:$UAC_PORT to sip:bob@$V4_B:$UAS_PORT,
Call-ID \`sa-$case-1@ue.sipaudit.test\`, From tag \`$case-alice1\`, To tag \`$case-bob1\`,
captured at the same time at TWO points of the same link, each a one-way tap that sees one direction only:

- capture-1.pcap, point A: the caller's end of the veth pair (interface \`$VETH_A\` in namespace \`$NS_A\`), only the
  packets the caller sends (\`src host $V4_A\`): INVITE, ACK, BYE. Timestamps as captured.
- capture-2.pcap, point B: the callee's end (interface \`$VETH_B\` in namespace \`$NS_B\`), only the packets the callee
  sends (\`src host $V4_B\`): 100, 180, 200 (to the INVITE), 200 (to the BYE). Every timestamp moved $SKEW_S s earlier
  (\`editcap -t -$SKEW_S\`): point B's clock is $ms ms behind point A's.

Each SIP message is in exactly one file, once: there are no duplicates and no copies of one message from two points.
Within each file the order is the true one. Each request is captured where it is sent (A) and each response where it
is sent (B), so on the wire a response follows its request by the callee's answer time plus microseconds of veth.

Merged by timestamp (rules.md A.2: one batch, stable sort), the responses the callee sends at once come before the
request they answer: $early;
each by less than skew_tol = 50 ms. The others keep their place: $late
(the 200 to the INVITE is sent 500 ms after the INVITE, so the $ms ms of skew do not move it before it; the ACK from
A also stays after that 200).

What an analyzer should conclude: one session, one attempt (one INVITE, no retry), outcome ESTABLISHED, final_status
200, verdict NOT_APPLICABLE (no failure); one confirmed dialog (To tag \`$case-bob1\`) to which the ACK and the BYE
belong. The responses that precede their request by less than skew_tol (listed above) are taken after it, each with
the anomaly \`clock_skew\` (one per response), not \`out_of_order\`; no other response is reordered and none gets an
anomaly. No retransmission and no capture duplicate: every message counts once. Note that the merged batch starts
with a response (the 100) whose request comes about $ms ms later: the repair has to look ahead by up to skew_tol."
        printf '## Capture\n\n'
        for f in capture-1.pcap capture-2.pcap; do
            printf -- '- File: `%s` (classic pcap, microsecond timestamps), %s bytes, %s packets, link type %s (%s)\n' \
                "$f" "$(stat -c %s "$dir/$f")" "$(packet_count "$dir/$f")" "$(linktype_name "$dir/$f")" \
                "$(linktype_num "$dir/$f")"
        done
        printf -- '- Made: %s by `scripts/gen-samples.sh %s`\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$case"
        printf -- '- Tools: %s, %s (Debian wireshark-common %s)\n\n' "$TOOLS_LINE" \
            "$(editcap -v 2>&1 | head -1 | sed 's/ (Git .*//; s/\.$//')" \
            "$(dpkg-query -W -f='${Version}' wireshark-common 2>/dev/null || echo '?')"
        printf '## How it was made\n\n'
        printf '%s\n\n' "Two network namespaces created by the script, \`$NS_A\` (UAC, $V4_A) and \`$NS_B\` (UAS, $V4_B), joined by a veth
pair at MTU 1500 with static neighbour entries (no ARP). These addresses exist only inside those namespaces;
nothing leaves them. Two tcpdump run during the call, one in each namespace, each keeping only what its own end sends.

- UAS (in $NS_B): \`sipp -sf scripts/sipp/basic-uas.xml -key sa_case $case -i $V4_B -p $UAS_PORT -m 1 -timeout 10s -timeout_error -nostdin\`
- UAC (in $NS_A): \`sipp -sf scripts/sipp/basic-uac.xml -key sa_case $case -cid_str 'sa-$case-%u@ue.sipaudit.test' -i $V4_A -p $UAC_PORT -m 1 -timeout 10s -timeout_error -nostdin $V4_B:$UAS_PORT\`
- Capture point A (in $NS_A): \`tcpdump -i $VETH_A -n -s 0 -U --immediate-mode -w point-a.pcap 'src host $V4_A and udp port $UAS_PORT'\`,
  kept as capture-1.pcap
- Capture point B (in $NS_B): \`tcpdump -i $VETH_B -n -s 0 -U --immediate-mode -w point-b.pcap 'src host $V4_B and udp port $UAS_PORT'\`
- Clock of point B: \`editcap -F pcap -t -$SKEW_S point-b.pcap capture-2.pcap\` (the script checks that every
  timestamp moved by exactly -$SKEW_S s and nothing else changed)
- Checks: capture-1.pcap holds exactly INVITE, ACK, BYE, all sent by $V4_A; capture-2.pcap exactly 100, 180, 200, 200,
  all sent by $V4_B. On the merged files (\`mergecap -I none -F pcapng -w - capture-1.pcap capture-2.pcap | tshark
  -r - -Y sip ...\`, below) the script fails unless every response comes after its request or before it by less
  than 50 ms, at least one comes before it, and the 200 to the INVITE comes after the INVITE.

${HOW_COMMON/regenerated captures differ only in timestamps, IP ids and checksums/regenerated captures differ only in timestamps, IP ids and checksums (the clock of capture-2.pcap is always $SKEW_S s behind)}"
        printf '## Merged by timestamp\n\n'
        printf '`mergecap -I none -F pcapng -w - capture-1.pcap capture-2.pcap | tshark -r - -Y sip -T fields -e frame.number -e frame.interface_id -e frame.time_epoch -e frame.time_relative -e sip.Method -e sip.Status-Code -e sip.CSeq`\n'
        printf '(`-I none` keeps one interface per file: interface 0 = capture-1.pcap = point A, 1 = capture-2.pcap = point B)\n\n'
        printf '```\nframe|point|time_epoch|time_relative|method|status|cseq\n%s\n```\n\n' "$listing"
        printf 'Responses (captured at B) against their request (same CSeq, captured at A), in ms\n'
        printf '(negative: the response is timestamped before the request):\n\n'
        printf '```\nmerged frame|status|cseq|minus request at A\n%s\n```\n\n' "$report"
        for f in capture-1.pcap capture-2.pcap; do
            printf '## %s: SIP messages (start line | CSeq), from `tcpdump -nn -A`\n\n```\n' "$f"
            sip_flow "$dir/$f"
            printf '```\n\n'
            printf '## %s: tshark decode\n\n' "$f"
            decode_section "$dir/$f"
        done
        printf 'Regenerate with `sudo scripts/gen-samples.sh %s` (timestamps change; identifiers and the offset do not).\n' "$case"
        printf 'Expected analyzer outputs for these captures are blessed separately.\n'
    } >"$dir/README.md"
}

# ---------------------------------------------------------------- rules.md section H flows ----
# One sample per example call flow H01-H18 of rules.md section H (docs/rules.md in the shared spec), each on SIPp
# over UDP on 127.0.0.1 in the sagen-lo namespace like the loopback cases: scripts/sipp/<case>-uac.xml plays the UE,
# scripts/sipp/<case>-uas.xml the network side. Besides the start lines, the script checks the To tag of every
# message (sip_flow_totag). No expected/ directory is written: the expected reports are blessed separately.
EXP_H_TAGS=""

check_h_tags() { # check_h_tags CASE FILE (a LOOPBACK_CHECK): the flow with To tags is EXP_H_TAGS
    local got
    got=$(sip_flow_totag "$2")
    if [[ $got != "$EXP_H_TAGS" ]]; then
        log "$1: unexpected To tags in the capture"
        diff <(printf '%s\n' "$EXP_H_TAGS") <(printf '%s\n' "$got") >&2 || true
        die "$1: To tag check failed"
    fi
    log "$1: start lines, CSeq and To tags checked"
}

case_h() { # case_h CASE TITLE DESC EXPECTED(with " | To tag: t" per line) [CALLS [UAC_ARG...]]
    local case=$1 title=$2 desc=$3 exp
    EXP_H_TAGS=$4
    exp=$(printf '%s\n' "$EXP_H_TAGS" | sed 's/ | To tag: .*$//')
    DECODE_RESEND=1 DECODE_TOTAG=1 LOOPBACK_CHECK=check_h_tags
    case_loopback "$case" 127.0.0.1 lo "" "$case-uas.xml" "$case-uac.xml" "$exp" "$title" "$desc" "${@:5}"
    DECODE_RESEND=0 DECODE_TOTAG=0 LOOPBACK_CHECK=""
}

write_policy() { # write_policy CASE < TOML: samples/<case>/policy.toml
    cat >"$SAMPLES/$1/policy.toml"
    log "$1: policy.toml written"
}

H_UE='sip:+491701234567@ims.mnc001.mcc262.3gppnetwork.org;user=phone'

case_h01() {
    local c=h01-r5-compliant
    case_h "$c" "$c: rules.md H01, a Rel-5 UE relaxes after 420 (precondition) in the same Call-ID (UDP, 127.0.0.1)" \
"rules.md section H, flow H01, on a real SIPp exchange: an IMS UE ($H_UE) calls a non-IMS (Internet) peer,
sip:bob@voip.example.net. Call-ID \`sa-$c-1@ue.sipaudit.test\` (A), From tag \`$c-ue1\` on both attempts.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`,
  \`Allow: INVITE, ACK, CANCEL, BYE, PRACK, UPDATE\`, SDP \`a=curr:qos local none\`, \`a=curr:qos remote none\`,
  \`a=des:qos mandatory local sendrecv\`, \`a=des:qos none remote sendrecv\`.
- 100 Trying; 420 Bad Extension, To tag \`$c-peer1\`, \`Unsupported: precondition\` (the peer also lists
  \`Supported: 100rel, timer, replaces\`); ACK CSeq 10 on the INVITE's branch with the 420's To tag.
- 300 ms later: INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To tag, no Require,
  \`Supported: 100rel, precondition\`, SDP \`a=des:qos optional local sendrecv\` (same o= session id, version 2).
- 100, 180, 200 (To tag \`$c-peer2\`, SDP answer without precondition lines), ACK CSeq 11, BYE CSeq 12 / 200.

rules.md H01 (quoted):

> H01 Rel-5 UE to an Internet client, compliant.
>     > INVITE cid=A ftag=1 CSeq 10; Require: precondition; Supported: 100rel; SDP des:qos mandatory local sendrecv
>     < 420 To;tag=x; Unsupported: precondition      > ACK (same branch)
>     > INVITE cid=A ftag=1 CSeq 11, new branch, no To tag; Supported: 100rel, precondition; SDP des:qos optional local sendrecv
>     < 200 → COMPLIANT_RELAXATION, flag DESIRED_LISTED; outcome ESTABLISHED; UE profile R5_STRICT (a flag). Toward an
>     Internet host (NON_IMS) the built-in default policy gives POLICY_COMPLIANT.

Expected, in short: verdict COMPLIANT_RELAXATION, flag DESIRED_LISTED, ue_profile R5_STRICT, policy verdict
POLICY_COMPLIANT (built-in default policy, destination class NON_IMS), outcome ESTABLISHED. Added to the §H flow:
100 Trying to both INVITEs, 180 Ringing before the 200, and the ACK / BYE that end the call." \
'INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: h01-r5-compliant-peer1
ACK | CSeq: 10 ACK | To tag: h01-r5-compliant-peer1
INVITE | CSeq: 11 INVITE | To tag: -
100 | CSeq: 11 INVITE | To tag: -
180 | CSeq: 11 INVITE | To tag: h01-r5-compliant-peer2
200 | CSeq: 11 INVITE | To tag: h01-r5-compliant-peer2
ACK | CSeq: 11 ACK | To tag: h01-r5-compliant-peer2
BYE | CSeq: 12 BYE | To tag: h01-r5-compliant-peer2
200 | CSeq: 12 BYE | To tag: h01-r5-compliant-peer2'
}

h_plain_retry_flow() { # h_plain_retry_flow CASE: the H01-shaped flow (420 on CSeq 10, retry CSeq 11 answered 200)
    local c=$1
    printf '%s\n' "INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 11 INVITE | To tag: -
100 | CSeq: 11 INVITE | To tag: -
180 | CSeq: 11 INVITE | To tag: $c-peer2
200 | CSeq: 11 INVITE | To tag: $c-peer2
ACK | CSeq: 11 ACK | To tag: $c-peer2
BYE | CSeq: 12 BYE | To tag: $c-peer2
200 | CSeq: 12 BYE | To tag: $c-peer2"
}

case_h02() {
    local c=h02-retry-loop
    case_h "$c" "$c: rules.md H02, the UE repeats the refused INVITE unchanged twice (three 420s) (UDP, 127.0.0.1)" \
"rules.md section H, flow H02, on a real SIPp exchange: an IMS UE ($H_UE) calls a non-IMS peer,
sip:bob@voip.example.net. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\` on all three INVITEs.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`, SDP
  \`a=des:qos mandatory local sendrecv\`; 100; 420 Bad Extension \`Unsupported: precondition\` (To tag \`$c-peer1\`);
  ACK CSeq 10 on the INVITE's branch.
- 300 ms later INVITE CSeq 11, branch \`z9hG4bK-$c-inv2\`, no To tag, otherwise identical to the first (same
  Require, Supported, SDP, o= line unchanged); 100; 420 (To tag \`$c-peer2\`); ACK CSeq 11.
- 300 ms later INVITE CSeq 12, branch \`z9hG4bK-$c-inv3\`, identical again; 100; 420 (To tag \`$c-peer3\`); ACK CSeq 12.

Decision (the flow does not say what the third INVITE gets): the peer refuses it as it refused the first two, with
another 420 Bad Extension \`Unsupported: precondition\` (a peer without precondition support answers every such
INVITE the same way), the UE ACKs it and gives up; the capture ends 0.5 s after that ACK. Each 420 has its own To
tag (a UAS picks a new tag for each new non-2xx final response outside a dialog).

rules.md H02 (quoted):

> H02 Same as H01, but the retry is identical to the first INVITE except for CSeq and branch (it keeps Require: precondition and
>     the mandatory SDP), and a second 420 follows. The UE sends a third identical INVITE with CSeq 12 → RETRY_LOOP on link 2
>     (two consecutive unchanged links, D12), REPEATED_WITHOUT_RELAXATION on link 1; session verdict RETRY_LOOP.

Expected, in short: link 1 (420 on CSeq 10 → INVITE 11) REPEATED_WITHOUT_RELAXATION, link 2 (420 on CSeq 11 →
INVITE 12) RETRY_LOOP, session verdict RETRY_LOOP; UE profile R5_STRICT. The third 420 (on CSeq 12) has no linked
retry and the capture ends well within W0 after it, but the UE's ACK to it is in the capture (rules.md D.3 item 4: NO_RETRY
with RETRY_WINDOW_CUT for that failure, my reading); outcome FAILED, final_status 420. Under the built-in default
policy the links relax nothing (X empty): POLICY_RESPECTED_BY_UE is not given, since the default policy allows the
relaxation toward NON_IMS (E.4), so the policy verdict stays empty (my reading)." \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 11 INVITE | To tag: -
100 | CSeq: 11 INVITE | To tag: -
420 | CSeq: 11 INVITE | To tag: $c-peer2
ACK | CSeq: 11 ACK | To tag: $c-peer2
INVITE | CSeq: 12 INVITE | To tag: -
100 | CSeq: 12 INVITE | To tag: -
420 | CSeq: 12 INVITE | To tag: $c-peer3
ACK | CSeq: 12 ACK | To tag: $c-peer3"
    # The three INVITEs differ only in the Via branch and the CSeq number.
    local cap="$SAMPLES/$c/capture.pcap" d
    for f in 5 9; do
        d=$(diff <(sip_message "$cap" 1) <(sip_message "$cap" "$f") | sed -n 's/^[<>] //p' | grep -vE '^(Via|CSeq): ' || true)
        [[ -z $d ]] || die "$c: INVITE frame $f differs from frame 1 in more than Via and CSeq: $d"
    done
    log "$c: the three INVITEs differ only in Via branch and CSeq"
}

case_h03() {
    local c=h03-over-relaxed
    case_h "$c" "$c: rules.md H03, 420 (precondition) and a retry that drops 100rel from Require too (UDP, 127.0.0.1)" \
"rules.md section H, flow H03, on a real SIPp exchange: an IMS UE ($H_UE) calls a non-IMS peer,
sip:bob@voip.example.net. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\` on both attempts.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition, 100rel\` (no Supported), SDP
  \`a=des:qos mandatory local sendrecv\`.
- 100; 420 Bad Extension \`Unsupported: precondition\` (To tag \`$c-peer1\`; the peer lists
  \`Supported: 100rel, timer, replaces\`); ACK CSeq 10 on the INVITE's branch.
- 300 ms later INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To tag, NO Require at
  all, \`Supported: precondition, 100rel\`, SDP \`a=des:qos optional local sendrecv\` (same o= session id, version 2).
- 100, 180, 200 (To tag \`$c-peer2\`, SDP answer without precondition lines), ACK CSeq 11, BYE CSeq 12 / 200.

rules.md H03 (quoted):

> H03 INVITE Require: precondition, 100rel → 420 Unsupported: precondition → retry has no Require at all (SDP des:qos
>     optional) → OVER_RELAXED, flag OVER_RELAXED(100rel). 100rel was not refused, and 100rel does not depend on precondition.

Expected, in short: verdict OVER_RELAXED with the flag OVER_RELAXED(100rel) (also DESIRED_LISTED: precondition is
in the retry's Supported); UE profile R5_STRICT; outcome ESTABLISHED. Policy (built-in default, NON_IMS): relaxed
set X = {precondition, 100rel}, both allowed → POLICY_COMPLIANT (my reading of E.4)." \
"$(h_plain_retry_flow "$c")"
}

case_h04() {
    local c=h04-dependent-drop
    case_h "$c" "$c: rules.md H04, 420 (100rel) and a retry without 100rel in Require and without preconditions (UDP, 127.0.0.1)" \
"rules.md section H, flow H04, on a real SIPp exchange: an IMS UE ($H_UE) calls a non-IMS peer that does not do
reliable provisional responses, sip:bob@voip.example.net. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`
on both attempts.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: 100rel, precondition\` (no Supported), SDP
  \`a=des:qos mandatory local sendrecv\`.
- 100; 420 Bad Extension \`Unsupported: 100rel\` (To tag \`$c-peer1\`; the peer lists \`Supported: timer, replaces\`);
  ACK CSeq 10 on the INVITE's branch.
- 300 ms later INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To tag, no Require,
  \`Supported: 100rel\`, and an SDP with NO precondition line at all (no a=curr / a=des; same o= session id,
  version 2): preconditions abandoned.
- 100, 180, 200 (To tag \`$c-peer2\`, SDP answer), ACK CSeq 11, BYE CSeq 12 / 200.

rules.md H04 (quoted):

> H04 INVITE Require: 100rel, precondition → 420 Unsupported: 100rel → retry has no Require, Supported: 100rel, and its SDP has
>     no precondition lines left (preconditions abandoned) → COMPLIANT_RELAXATION, flags DESIRED_LISTED and
>     DEPENDENT_DROP(precondition), by RFC 3312 §11 via the dependency closure (D.1).

Expected, in short: verdict COMPLIANT_RELAXATION, flags DESIRED_LISTED and DEPENDENT_DROP(precondition); UE profile
R5_STRICT; outcome ESTABLISHED; policy (built-in default, NON_IMS) POLICY_COMPLIANT (my reading of E.4)." \
"$(h_plain_retry_flow "$c")"
}

case_h06() {
    local c=h06-new-callid
    case_h "$c" "$c: rules.md H06, 420 (precondition) then a relaxed retry 1.4 s later in a NEW Call-ID, From tag and CSeq 1 (UDP, 127.0.0.1)" \
"rules.md section H, flow H06, on a real SIPp exchange: an IMS UE ($H_UE) calls a non-IMS peer,
sip:bob@voip.example.net; after the 420 it starts over as a new call. SIPp runs the UAC as two calls 1.4 s apart
(\`-m 2 -r 1 -rp 1400\`, one scenario; the per-call values come from \`-inf scripts/sipp/$c.csv\`); the UAS
(\`-m 2\`) refuses any INVITE whose Require lists precondition.

- Call A: INVITE CSeq 10, Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`, branch \`z9hG4bK-$c-inv1\`:
  \`Require: precondition\`, SDP \`a=des:qos mandatory local sendrecv\`. 420 Bad Extension \`Unsupported: precondition\`
  (To tag \`$c-peer1\`), ACK CSeq 10 on the INVITE's branch.
- 1.4 s after INVITE A: INVITE CSeq 1, NEW Call-ID \`sa-$c-2@ue.sipaudit.test\` (B), NEW From tag \`$c-ue9\`, branch
  \`z9hG4bK-$c-inv2\`. Same Request-URI, same From and To URIs, same other headers and the same SDP (o= line
  included: username \`-\`, session id 3967185006, version 1); it differs from INVITE A only in CSeq,
  \`Require: precondition\` -> \`Supported: precondition\` and \`a=des:qos mandatory\` -> \`a=des:qos optional\`
  (besides Call-ID, From tag and Via branch). The script checks this on the capture.
- 100, 180, 200 (To tag \`$c-peer2\`), ACK CSeq 1 (branch \`z9hG4bK-$c-ack2\`), BYE CSeq 2 / 200.

rules.md H06 (quoted):

> H06 420 Unsupported: precondition, toward a NON_IMS destination. After 1.4 s, INVITE cid=B ftag=9 with the same From and To
>     URIs, CSeq 1, precondition only in Supported, SDP des:qos optional, and the same SDP o= sess-id → RETRY_NEW_CALL_ID (H2
>     plus o-line, conf 0.8; flag NEW_CALL_ID(H2,0.8)). With require_same_call_id=true →
>     POLICY_VIOLATION:SAME_CALL_ID_REQUIRED.

Expected, in short: one session, link H2 with the o= bonus (confidence 0.8), verdict RETRY_NEW_CALL_ID with the
flag NEW_CALL_ID(H2,0.8) (and DESIRED_LISTED); UE profile R5_STRICT; outcome ESTABLISHED. Under the built-in default
policy (no policy.toml here on purpose) POLICY_COMPLIANT (my reading of E.4). The \"with require_same_call_id=true\"
variant is the same capture analysed with a policy that sets \`[relaxation] require_same_call_id = true\` (for example
samples/policies/same-call-id.toml, if present): POLICY_VIOLATION:SAME_CALL_ID_REQUIRED." \
"INVITE | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 1 INVITE | To tag: -
100 | CSeq: 1 INVITE | To tag: -
180 | CSeq: 1 INVITE | To tag: $c-peer2
200 | CSeq: 1 INVITE | To tag: $c-peer2
ACK | CSeq: 1 ACK | To tag: $c-peer2
BYE | CSeq: 2 BYE | To tag: $c-peer2
200 | CSeq: 2 BYE | To tag: $c-peer2" \
        2 -inf "$SIPP_SRC/$c.csv" -r 1 -rp 1400
    local cap="$SAMPLES/$c/capture.pcap" g d
    d=$(diff <(sip_message "$cap" 1) <(sip_message "$cap" 4) | sed -n 's/^[<>] //p' |
        grep -vE '^(Via|From|Call-ID|CSeq|Content-Length): |^(Require|Supported): precondition$|^a=des:qos (mandatory|optional) local sendrecv$' || true)
    [[ -z $d ]] || die "$c: the two INVITEs differ in more than H06 allows: $d"
    g=$(gap_ms "$cap" 1 4)
    log "$c: INVITE B comes $g ms after INVITE A"
    ((g >= 1300 && g <= 1600)) || die "$c: $g ms between the two INVITEs, expected about 1400"
}

case_h07() {
    local c=h07-421-100rel
    case_h "$c" "$c: rules.md H07, 421 (Require: 100rel), then a retry that supports 100rel: reliable 183 and PRACK (UDP, 127.0.0.1)" \
"rules.md section H, flow H07, on a real SIPp exchange: a UE ($H_UE) calls sip:bob@voip.example.net, a peer that
insists on reliable provisional responses (RFC 3261 section 21.4.16, RFC 3262). No preconditions in this flow (the SDP
offers have no a=curr / a=des lines). Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Supported: timer\` only, no Require.
- 100; 421 Extension Required with \`Require: 100rel\` (To tag \`$c-peer1\`); ACK CSeq 10 on the INVITE's branch.
- 300 ms later INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To tag,
  \`Supported: 100rel, timer\`.
- 100; 183 Session Progress (To tag \`$c-peer2\`) with \`Require: 100rel\`, \`RSeq: 1\` and the SDP answer.
- PRACK CSeq 12 with \`RAck: 1 11 INVITE\` (branch \`z9hG4bK-$c-prack1\`) / 200 OK (PRACK).
- 200 OK (INVITE, CSeq 11), ACK CSeq 11, BYE CSeq 13 / 200.

rules.md H07 (quoted):

> H07 INVITE CSeq 10 (Supported: timer only) → 421, Require: 100rel → INVITE CSeq 11 with Supported: 100rel → 183 with
>     Require: 100rel and RSeq 1 → PRACK with RAck \"1 11 INVITE\" → 200 → EXTENSION_REQUIRED_SATISFIED.

Expected, in short: verdict EXTENSION_REQUIRED_SATISFIED (failure_class REMOTE_REQUIRES_EXTENSION, capability
100rel); UE profile NO_PRECONDITION; outcome ESTABLISHED; no relaxation, so an empty policy verdict (my reading of E.4:
the reverse case gives X empty)." \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
421 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 11 INVITE | To tag: -
100 | CSeq: 11 INVITE | To tag: -
183 | CSeq: 11 INVITE | To tag: $c-peer2
PRACK | CSeq: 12 PRACK | To tag: $c-peer2
200 | CSeq: 12 PRACK | To tag: $c-peer2
200 | CSeq: 11 INVITE | To tag: $c-peer2
ACK | CSeq: 11 ACK | To tag: $c-peer2
BYE | CSeq: 13 BYE | To tag: $c-peer2
200 | CSeq: 13 BYE | To tag: $c-peer2"
}

case_h13() {
    local c=h13-udp-losses cap t12 t23 t56
    case_h "$c" "$c: rules.md H13, UDP losses: INVITE x3 (same branch), 420 x2, one ACK, then the relaxed INVITE (UDP, 127.0.0.1)" \
"rules.md section H, flow H13, on a real SIPp exchange: an IMS UE ($H_UE) calls a slow non-IMS peer,
sip:bob@voip.example.net, over UDP. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\` on both attempts.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`, SDP
  \`a=des:qos mandatory local sendrecv\`.
- The peer answers only after 1.7 s, so the UAC retransmits the INVITE twice (Timer A: T1 = 500 ms, then 1 s):
  frames 2 and 3 are byte for byte frame 1 (same branch). (The UAS's SIPp drops both copies as retransmissions.)
- 100 Trying, then 420 Bad Extension \`Unsupported: precondition\` (To tag \`$c-peer1\`).
- The UAC waits 700 ms before it ACKs, so the peer retransmits the 420 once (Timer G, 500 ms): frame 6 is byte for
  byte frame 5.
- ONE ACK CSeq 10 on the INVITE's branch with the 420's To tag.
- 300 ms later the relaxed retry: INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To
  tag, no Require, \`Supported: 100rel, precondition\`, SDP \`a=des:qos optional local sendrecv\`.
- 100, 180, 200 (To tag \`$c-peer2\`), ACK CSeq 11, BYE CSeq 12 / 200.

The timings leave 200 ms of margin on each side (next INVITE copy due at 3.5 s, next 420 copy 1.5 s after the
first), so every run repeats exactly two INVITEs and one 420; the script checks that tshark flags exactly frames 2,
3 and 6 with \`sip.resend == 1\`, that the copies are byte for byte the originals, and the intervals.

rules.md H13 (quoted):

> H13 UDP losses: INVITE ×3 (same branch), 420 ×2, one ACK, then the relaxed INVITE → exactly 1 attempt + 1 retry, retransmission
>     counters 2/1, COMPLIANT_RELAXATION (no false REPEATED).

Expected, in short: one session, exactly one attempt plus one retry (H0), retransmissions 2 (INVITE) and 1 (420),
verdict COMPLIANT_RELAXATION (flag DESIRED_LISTED, UE profile R5_STRICT), outcome ESTABLISHED; policy (built-in
default, NON_IMS) POLICY_COMPLIANT as in H01." \
"INVITE | CSeq: 10 INVITE | To tag: -
INVITE | CSeq: 10 INVITE | To tag: -
INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: $c-peer1
420 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 11 INVITE | To tag: -
100 | CSeq: 11 INVITE | To tag: -
180 | CSeq: 11 INVITE | To tag: $c-peer2
200 | CSeq: 11 INVITE | To tag: $c-peer2
ACK | CSeq: 11 ACK | To tag: $c-peer2
BYE | CSeq: 12 BYE | To tag: $c-peer2
200 | CSeq: 12 BYE | To tag: $c-peer2"
    cap="$SAMPLES/$c/capture.pcap"
    check_resend "$c" "$cap" '2|INVITE||10 INVITE
3|INVITE||10 INVITE
6||420|10 INVITE'
    cmp -s <(sip_message "$cap" 1) <(sip_message "$cap" 2) || die "$c: frame 2 is not the same INVITE as frame 1"
    cmp -s <(sip_message "$cap" 1) <(sip_message "$cap" 3) || die "$c: frame 3 is not the same INVITE as frame 1"
    cmp -s <(sip_message "$cap" 5) <(sip_message "$cap" 6) || die "$c: frame 6 is not the same 420 as frame 5"
    t12=$(gap_ms "$cap" 1 2) t23=$(gap_ms "$cap" 2 3) t56=$(gap_ms "$cap" 5 6)
    log "$c: INVITE repeated after $t12 ms and $t23 ms more, 420 repeated after $t56 ms"
    ((t12 >= 400 && t12 <= 700 && t23 >= 900 && t23 <= 1200 && t56 >= 400 && t56 <= 700)) ||
        die "$c: retransmission intervals $t12 / $t23 / $t56 ms, expected about 500 / 1000 / 500 ms"
}

case_h14() {
    local c=h14-cseq-reused-482
    case_h "$c" "$c: rules.md H14, the retry after 420 reuses CSeq 10 with a new branch and gets 482 Loop Detected (UDP, 127.0.0.1)" \
"rules.md section H, flow H14, on a real SIPp exchange: an IMS UE ($H_UE) calls a non-IMS peer,
sip:bob@voip.example.net. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\` on both INVITEs.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`, SDP
  \`a=des:qos mandatory local sendrecv\`; 100; 420 Bad Extension \`Unsupported: precondition\` (To tag
  \`$c-peer1\`); ACK CSeq 10 on the INVITE's branch.
- 300 ms later the retry, relaxed (no Require, \`Supported: 100rel, precondition\`, SDP \`a=des:qos optional local
  sendrecv\`) but with the SAME CSeq 10, a new branch \`z9hG4bK-$c-inv2\`, no To tag. It arrives while the peer's
  420 server transaction still exists (Confirmed state, Timer I = T4 = 5 s on UDP; the flow's \"within Timer H\").
- The peer treats it as a merged request (same From tag, Call-ID and CSeq as an ongoing transaction that it does
  not match, RFC 3261 section 8.2.2.2) and answers 482 Loop Detected (To tag \`$c-peer2\`); ACK CSeq 10 on the second
  INVITE's branch. The UE gives up.

rules.md H14 (quoted):

> H14 The retry reuses CSeq 10 with a new branch and arrives within Timer H → 482 Loop Detected →
>     RETRY_INVALID_IDENTITY (CSEQ_NOT_INCREMENTED).

Expected, in short: link 1 (420 → the second INVITE, H0, not a retransmission: new branch) verdict
RETRY_INVALID_IDENTITY with the flag CSEQ_NOT_INCREMENTED; the 482 is C23 CSEQ_NOT_INCREMENTED; outcome FAILED,
final_status 482; UE profile R5_STRICT." \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 10 INVITE | To tag: -
482 | CSeq: 10 INVITE | To tag: $c-peer2
ACK | CSeq: 10 ACK | To tag: $c-peer2"
    local cap="$SAMPLES/$c/capture.pcap"
    [[ $(sip_message "$cap" 1 | grep '^Via:') != $(sip_message "$cap" 5 | grep '^Via:') ]] ||
        die "$c: the second INVITE reuses the first one's branch"
    [[ $(sip_message "$cap" 5 | grep '^Via:') == $(sip_message "$cap" 7 | grep '^Via:') ]] ||
        die "$c: the ACK of the 482 is not on the second INVITE's branch"
}

case_h16() {
    local c=h16-420-no-unsupported
    case_h "$c" "$c: rules.md H16, a 420 without Unsupported, then a retry that drops precondition only (UDP, 127.0.0.1)" \
"rules.md section H, flow H16, on a real SIPp exchange: an IMS UE ($H_UE) calls a non-IMS peer,
sip:bob@voip.example.net, whose 420 is malformed. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`, SDP
  \`a=des:qos mandatory local sendrecv\`.
- 100; 420 Bad Extension (To tag \`$c-peer1\`) with NO Unsupported header (RFC 3261 section 21.4.15 says it MUST
  list the unsupported extensions; it has Supported and Allow); ACK CSeq 10 on the INVITE's branch.
- 300 ms later INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To tag; it drops
  precondition only: no Require (precondition was its only tag), \`Supported: 100rel, precondition\`, SDP
  \`a=des:qos optional local sendrecv\`.
- 100, 180, 200 (To tag \`$c-peer2\`), ACK CSeq 11, BYE CSeq 12 / 200.

Decision: the first INVITE has only precondition in Require (100rel in Supported, as in H01), so the retry that
\"dropped precondition only\" has no Require at all; the candidate set Req ∪ PReq is {precondition}.

rules.md H16 (quoted):

> H16 420 with no Unsupported header. The retry dropped precondition only → INFERRED_RELAXATION (confidence low),
>     failure_class MALFORMED_420.

Expected, in short: failure_class MALFORMED_420, verdict INFERRED_RELAXATION (confidence low); outcome ESTABLISHED;
UE profile R5_STRICT." \
"$(h_plain_retry_flow "$c")"
    sip_message "$SAMPLES/$c/capture.pcap" 3 | grep -qi '^Unsupported:' && die "$c: the 420 has an Unsupported header"
    return 0
}

case_h09() {
    local c=h09-580-relaxed
    case_h "$c" "$c: rules.md H09, 580 Precondition Failure (a=des:qos failure), then a retry without preconditions (UDP, 127.0.0.1)" \
"rules.md section H, flow H09, on a real SIPp exchange: an IMS UE ($H_UE) calls sip:bob@voip.example.net, a peer
that supports preconditions but cannot meet them (RFC 3312 section 6). Call-ID \`sa-$c-1@ue.sipaudit.test\`,
From tag \`$c-ue1\`.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`, SDP
  \`a=des:qos mandatory local sendrecv\`.
- 100; 580 Precondition Failure (To tag \`$c-peer1\`, \`Supported: 100rel, precondition, timer\`) with an SDP body
  whose media line carries \`a=des:qos failure local sendrecv\` and \`a=des:qos failure remote sendrecv\`;
  ACK CSeq 10 on the INVITE's branch.
- 300 ms later INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To tag, no Require,
  \`Supported: 100rel\`, SDP without any precondition line (no a=curr / a=des).
- 100, 180, 200 (To tag \`$c-peer2\`), ACK CSeq 11, BYE CSeq 12 / 200.

rules.md H09 (quoted):

> H09 580, whose SDP has des:qos failure → the UE retries without preconditions → RELAXATION_WITHOUT_REFUSAL
>     (failure_class PRECONDITION_NOT_MET). Without the retry: NOT_APPLICABLE, same failure_class.

Expected, in short: failure_class PRECONDITION_NOT_MET (C10), verdict RELAXATION_WITHOUT_REFUSAL; outcome
ESTABLISHED; UE profile R5_STRICT. (The \"without the retry\" variant is not in this capture.)" \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
580 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 11 INVITE | To tag: -
100 | CSeq: 11 INVITE | To tag: -
180 | CSeq: 11 INVITE | To tag: $c-peer2
200 | CSeq: 11 INVITE | To tag: $c-peer2
ACK | CSeq: 11 ACK | To tag: $c-peer2
BYE | CSeq: 12 BYE | To tag: $c-peer2
200 | CSeq: 12 BYE | To tag: $c-peer2"
}

case_h12() {
    local c=h12-update-405-cancel
    case_h "$c" "$c: rules.md H12, reliable 183 without UPDATE in Allow, UPDATE refused with 405, the UE cancels (UDP, 127.0.0.1)" \
"rules.md section H, flow H12, on a real SIPp exchange: an IMS UE ($H_UE) calls sip:bob@voip.example.net, a peer
that answers with preconditions and 100rel but does not implement UPDATE. Call-ID \`sa-$c-1@ue.sipaudit.test\`,
From tag \`$c-ue1\`.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: no Require, \`Supported: precondition, 100rel\`,
  \`Allow: INVITE, ACK, CANCEL, BYE, PRACK, UPDATE\`, SDP \`a=des:qos mandatory local sendrecv\` (IMS practice).
- 100; reliable 183 Session Progress (To tag \`$c-peer1\`): \`Require: 100rel\`, \`RSeq: 1\`,
  \`Supported: 100rel, precondition\`, \`Allow: INVITE, ACK, BYE, CANCEL, PRACK\` (no UPDATE), SDP answer WITH
  preconditions (\`a=curr:qos local none\`, \`a=curr:qos remote none\`, \`a=des:qos mandatory local sendrecv\`,
  \`a=des:qos mandatory remote sendrecv\`, \`a=conf:qos remote sendrecv\`).
- PRACK CSeq 11 (\`RAck: 1 10 INVITE\`) / 200 OK (PRACK).
- 300 ms later UPDATE CSeq 12 in the early dialog (SDP \`a=curr:qos local sendrecv\`) / 405 Method Not Allowed with
  \`Allow: INVITE, ACK, BYE, CANCEL, PRACK\`.
- 500 ms later the UE gives up: CANCEL CSeq 10 on the INVITE's branch (To without tag) / 200 OK (CANCEL, To tag
  \`$c-peer1\`); 487 Request Terminated (CSeq 10 INVITE); ACK CSeq 10 on the INVITE's branch.

rules.md H12 (quoted):

> H12 INVITE with Supported: precondition and Allow: INVITE,ACK,BYE,CANCEL,PRACK,UPDATE → reliable 183 (answer with
>     preconditions) whose Allow lacks UPDATE → PRACK 200 → UPDATE → 405 (Allow: INVITE,ACK,BYE,CANCEL,PRACK) → UE CANCEL →
>     487 → failure C14 REMOTE_LACKS_UPDATE on the UPDATE, verdict NOT_APPLICABLE (no retry is expected after a refused
>     UPDATE, and a 487 starts no link), flags MID_DIALOG and REMOTE_LACKS_UPDATE_PREDICTED (C15 on the 183); outcome
>     CANCELLED.

Expected, in short: failure C14 REMOTE_LACKS_UPDATE on the UPDATE, verdict NOT_APPLICABLE, flags MID_DIALOG and
REMOTE_LACKS_UPDATE_PREDICTED; outcome CANCELLED; UE profile R6PLUS_RELAXED (precondition only in Supported with
mandatory strength, so also the lint IMS_PROFILE_DEVIATION, B.5 L1; my reading); empty policy verdict." \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
183 | CSeq: 10 INVITE | To tag: $c-peer1
PRACK | CSeq: 11 PRACK | To tag: $c-peer1
200 | CSeq: 11 PRACK | To tag: $c-peer1
UPDATE | CSeq: 12 UPDATE | To tag: $c-peer1
405 | CSeq: 12 UPDATE | To tag: $c-peer1
CANCEL | CSeq: 10 CANCEL | To tag: -
200 | CSeq: 10 CANCEL | To tag: $c-peer1
487 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1"
    local cap="$SAMPLES/$c/capture.pcap"
    sip_message "$cap" 3 | grep -q '^Allow: INVITE, ACK, BYE, CANCEL, PRACK$' || die "$c: the 183's Allow is not the expected one"
    sip_message "$cap" 7 | grep -q '^Allow: INVITE, ACK, BYE, CANCEL, PRACK$' || die "$c: the 405's Allow is not the expected one"
}

case_h18() {
    local c=h18-reinvite-420
    case_h "$c" "$c: rules.md H18, a re-INVITE with Require: precondition gets 420, the relaxed re-INVITE gets 200 (UDP, 127.0.0.1)" \
"rules.md section H, flow H18, on a real SIPp exchange: an IMS UE ($H_UE) calls sip:bob@voip.example.net; the call is
established first, then the UE modifies the session with preconditions. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag
\`$c-ue1\`, To tag \`$c-peer1\` (one dialog throughout).

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: no Require, \`Supported: 100rel, timer\`, SDP without precondition lines;
  100, 180, 200 (To tag \`$c-peer1\`); ACK CSeq 10. The dialog is confirmed.
- 1 s later re-INVITE CSeq 11 (branch \`z9hG4bK-$c-reinv1\`, To tag \`$c-peer1\`): \`Require: precondition\`,
  \`Supported: 100rel, timer\`, SDP (o= version 2) \`a=des:qos mandatory local sendrecv\`.
- 420 Bad Extension \`Unsupported: precondition\`; ACK CSeq 11 on the re-INVITE's branch.
- 300 ms later re-INVITE CSeq 12 (new branch \`z9hG4bK-$c-reinv2\`): no Require, \`Supported: precondition, 100rel,
  timer\`, SDP (o= version 3) \`a=des:qos optional local sendrecv\`; 200 (SDP answer, version 2); ACK CSeq 12.
- 1 s later BYE CSeq 13 / 200: the dialog survived the 420.

rules.md H18 (quoted):

> H18 A re-INVITE in a confirmed dialog with Require: precondition → 420 Unsupported: precondition → re-INVITE CSeq+1 with
>     precondition in Supported only and SDP des:qos optional → COMPLIANT_RELAXATION, flags MID_DIALOG, DESIRED_LISTED and
>     REQUIRE_PRECONDITION_IN_MODIFICATION (lint L5). The dialog survives.

Expected, in short: verdict COMPLIANT_RELAXATION (in-dialog H0 link), flags MID_DIALOG, DESIRED_LISTED and
REQUIRE_PRECONDITION_IN_MODIFICATION; outcome ESTABLISHED; UE profile NO_PRECONDITION (its first INVITE has no
precondition at all; my reading of F); policy (built-in default, NON_IMS) POLICY_COMPLIANT (my reading of E.4)." \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
180 | CSeq: 10 INVITE | To tag: $c-peer1
200 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 11 INVITE | To tag: $c-peer1
420 | CSeq: 11 INVITE | To tag: $c-peer1
ACK | CSeq: 11 ACK | To tag: $c-peer1
INVITE | CSeq: 12 INVITE | To tag: $c-peer1
200 | CSeq: 12 INVITE | To tag: $c-peer1
ACK | CSeq: 12 ACK | To tag: $c-peer1
BYE | CSeq: 13 BYE | To tag: $c-peer1
200 | CSeq: 13 BYE | To tag: $c-peer1"
}

case_h15() {
    local c=h15-sec-agree-register
    case_h "$c" "$c: rules.md H15, REGISTER with sec-agree gets 420, the REGISTER retry drops sec-agree (UDP, 127.0.0.1)" \
"rules.md section H, flow H15, on a real SIPp exchange: an IMS UE registers its public identity
sip:+491701234567@ims.mnc001.mcc262.3gppnetwork.org; the P-CSCF/registrar (one SIPp UAS, \`Server:
sipaudit-sample-PCSCF/1.0\`) does not support sec-agree. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`
on both REGISTERs.

- REGISTER sip:ims.mnc001.mcc262.3gppnetwork.org CSeq 1, branch \`z9hG4bK-$c-reg1\`: \`Require: sec-agree\`,
  \`Proxy-Require: sec-agree\`, \`Supported: path, gruu, sec-agree\`,
  \`Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=3929102;spi-s=3929103;port-c=5064;port-s=5062\`,
  an initial \`Authorization\` with empty nonce and response, Expires 600000.
- 420 Bad Extension \`Unsupported: sec-agree\` (To tag \`$c-pcscf1\`). (No ACK: REGISTER is not an INVITE.)
- 300 ms later REGISTER CSeq 2, same Call-ID and From tag, new branch \`z9hG4bK-$c-reg2\`: no Require, no
  Proxy-Require, no Security-Client, \`Supported: path, gruu\`, otherwise unchanged.
- 200 OK (To tag \`$c-reg2\`, Contact with expires, P-Associated-URI, Service-Route).

Decision: the flow has no authentication challenge (a real IMS registrar would answer the first protected
REGISTER with 401 and Security-Server); the sample keeps to the flow as written, so the second REGISTER is
accepted at once.

rules.md H15 (quoted):

> H15 REGISTER with Require and Proxy-Require: sec-agree and Security-Client → 420 Unsupported: sec-agree → REGISTER CSeq+1
>     without sec-agree → 200 → SECURITY_DOWNGRADE (always reported), failure_class SEC_AGREE_UNSUPPORTED. Under the built-in
>     default policy: POLICY_VIOLATION:CAPABILITY_NOT_RELAXABLE (sec-agree is forbidden) with the flag POLICY_NOT_ENFORCED.

Expected, in short: verdict SECURITY_DOWNGRADE, failure_class SEC_AGREE_UNSUPPORTED, policy verdict (built-in
default) POLICY_VIOLATION:CAPABILITY_NOT_RELAXABLE with the flag POLICY_NOT_ENFORCED (the retry got a 2xx); outcome
COMPLETED (a 2xx final response to a method other than INVITE; issue 12)." \
"REGISTER | CSeq: 1 REGISTER | To tag: -
420 | CSeq: 1 REGISTER | To tag: $c-pcscf1
REGISTER | CSeq: 2 REGISTER | To tag: -
200 | CSeq: 2 REGISTER | To tag: $c-reg2"
}

case_h11() {
    local c=h11-emergency-100rel
    case_h "$c" "$c: rules.md H11, an emergency INVITE (urn:service:sos) gets 420 (100rel), the relaxed retry gets 200 (UDP, 127.0.0.1)" \
"rules.md section H, flow H11, on a real SIPp exchange: an IMS UE ($H_UE) makes an emergency call, Request-URI and To
\`urn:service:sos\`; the answering side (\`Server: sipaudit-sample-PSAP/1.0\`, Contact \`sip:psap@127.0.0.1:5060\`)
does not do reliable provisional responses. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`.

- INVITE urn:service:sos CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: 100rel\`, \`Supported: timer\`, SDP without
  precondition lines.
- 100; 420 Bad Extension \`Unsupported: 100rel\` (To tag \`$c-peer1\`); ACK CSeq 10 (Request-URI urn:service:sos) on
  the INVITE's branch.
- 300 ms later INVITE urn:service:sos CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To
  tag, no Require, \`Supported: 100rel, timer\`.
- 100, 180, 200 (To tag \`$c-peer2\`), ACK CSeq 11 and BYE CSeq 12 to the PSAP's Contact / 200.

Decision: no preconditions in this flow (the refusal is of 100rel only, so the retry only moves 100rel from Require
to Supported).

rules.md H11 (quoted):

> H11 An emergency INVITE to urn:service:sos gets 420 Unsupported: 100rel. The relaxed retry gets 200 → POLICY_COMPLIANT under
>     always_allow, POLICY_VIOLATION:EMERGENCY with the flag POLICY_NOT_ENFORCED under never.

Expected, in short: verdict COMPLIANT_RELAXATION (flag DESIRED_LISTED; my reading), outcome ESTABLISHED; policy
verdict POLICY_COMPLIANT under the built-in default (\`[emergency] relaxation = \"always_allow\"\`) and
POLICY_VIOLATION:EMERGENCY with the flag POLICY_NOT_ENFORCED under a policy with \`relaxation = \"never\"\` (for
example samples/policies/emergency-never.toml, if present). UE profile NO_PRECONDITION (no precondition lines;
100rel in Require without a MANDATORY demand does not make R5_STRICT; my reading of F)." \
"$(h_plain_retry_flow "$c")"
    sip_message "$SAMPLES/$c/capture.pcap" 5 | grep -q '^INVITE urn:service:sos SIP/2.0$' ||
        die "$c: the retry's Request-URI is not urn:service:sos"
}

case_h10() {
    local c=h10-policy-enforced
    case_h "$c" "$c: rules.md H10, relaxed retry toward an IMS partner after 420, rejected by the home S-CSCF with 403 (UDP, 127.0.0.1)" \
"rules.md section H, flow H10 (the POLICY_ENFORCED variant), on a real SIPp exchange: an IMS UE ($H_UE) calls
sip:bob@partner-ims.example, an IMS partner (listed in \`ims_domains\` of this directory's policy.toml, the rules.md
E.3 example policy verbatim). Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`.

- INVITE sip:bob@partner-ims.example CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`,
  \`Supported: 100rel\`, SDP \`a=des:qos mandatory local sendrecv\`.
- 100; 420 Bad Extension \`Unsupported: precondition\` (To tag \`$c-peer1\`, \`Server: sipaudit-sample-PartnerIMS/1.0\`:
  a misconfigured partner); ACK CSeq 10 on the INVITE's branch.
- 300 ms later the relaxed retry: INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To
  tag, no Require, \`Supported: 100rel, precondition\`, SDP \`a=des:qos optional local sendrecv\`.
- 100; 403 Forbidden from the home S-CSCF (To tag \`$c-scscf1\`, \`Server: sipaudit-sample-S-CSCF/1.0\`) with
  \`Warning: 399 scscf1.operator-a.example \"relaxation not allowed\"\`; ACK CSeq 11 on the retry's branch.

Decision: one SIPp UAS plays both the partner (the 420) and the home S-CSCF (the 403): everything the UE receives
comes from its next hop, 127.0.0.1:5060. The 403 is attributed to a home node by its Warning warn-agent
(scscf1.operator-a.example is in \`[home] nodes\` of the policy), not by address (127.0.0.1 is not in 10.20.0.0/16).

rules.md H10 (quoted):

> H10 Policy denies precondition relaxation toward IMS (the E.3 example policy, rule keep-qos-toward-partners). Request-URI
>     host partner-ims.example. 420 Unsupported: precondition (for example from a misconfigured partner) → relaxed retry with
>     no answer from a home node in the capture → POLICY_VIOLATION:DEST_IMS. If the home S-CSCF then answers 403 with
>     \`Warning: 399 scscf1.operator-a.example \"relaxation not allowed\"\` → POLICY_ENFORCED. If the retry gets a 2xx, or a copy
>     of it is seen past ibcf1 → POLICY_VIOLATION:DEST_IMS with the flag POLICY_NOT_ENFORCED.

Expected, in short, with \`--policy samples/$c/policy.toml\`: policy verdict POLICY_ENFORCED (rule
keep-qos-toward-partners, destination class IMS); the D.3 verdict of the 420 link is COMPLIANT_RELAXATION (flag
DESIRED_LISTED; the policy never changes it, E.4); the 403 is C19 HOME_POLICY_REJECT; outcome FAILED, final_status
403; UE profile R5_STRICT." \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
INVITE | CSeq: 11 INVITE | To tag: -
100 | CSeq: 11 INVITE | To tag: -
403 | CSeq: 11 INVITE | To tag: $c-scscf1
ACK | CSeq: 11 ACK | To tag: $c-scscf1"
    write_policy "$c" <<'EOF'
version = 1
name = "operator-a"

[home]
domains = ["ims.mnc010.mcc262.3gppnetwork.org", "operator-a.example"]
nodes   = ["scscf1.operator-a.example", "as-mmtel.operator-a.example", "10.20.0.0/16"]   # used for response attribution
border  = ["ibcf1.operator-a.example"]        # a relaxed request seen beyond these hosts has left the home network
reject_codes = [403, 421, 488, 606]            # home-node responses that count as enforcement (E.4)
reject_warning_regex = "(?i)relax|policy|precondition"   # raises C19 confidence

[destinations]
ims_domains     = ["*.3gppnetwork.org", "partner-ims.example"]
non_ims_domains = []                           # an empty list means "everything not listed as IMS"
tel_uri_class   = "unknown"                    # ims | non_ims | unknown
unknown_as      = "undetermined"               # ims | non_ims | undetermined
infer_from_signaling = true                    # E.2 steps 3-4

[relaxation]
allowed                 = true
allowed_capabilities    = ["100rel", "precondition", "UPDATE"]
forbidden_capabilities  = ["sec-agree"]
allowed_destinations    = ["non_ims"]          # ims | non_ims | unknown
max_retries             = 1
extra_droppable         = []                   # tags that may always be dropped along with a refusal (D.1 A)
window_s                = 32                   # W0 of A.3: the retry linking window, not a policy limit
require_same_call_id    = false                # true: RETRY_NEW_CALL_ID becomes a violation
require_desired_listing = false                # true: DESIRED_DROPPED becomes a violation
sdp_mode                = "ims-lenient"        # strict | ims-lenient

[emergency]
match      = ["urn:service:sos*"]
relaxation = "always_allow"                    # always_allow | never | follow_policy

[[rule]]        # ordered; the first match wins; the fields of `when` are ANDed
# a `when` value is a string, a boolean (emergency only) or a list (any-of)
# when keys: destination, capability, subscriber, origin_domain, visited_network, access_type, emergency, identity
id = "keep-qos-toward-partners"
when = { destination = "ims", capability = "precondition" }
action = "deny"
reason = "DEST_IMS"                            # optional; the default is derived from the `when` keys (below)

[[rule]]
id = "vip-never-relax"
when = { subscriber = "sip:+4915*@operator-a.example" }
action = "deny"

[[rule]]
id = "roamers-in-r5-networks"
when = { visited_network = ["r5-visited.example"], capability = "100rel" }
action = "allow"
EOF
}

case_h05() {
    local c=h05-no-retry cap g
    # 45 s of waiting: longer sipp and capture bounds for this case only.
    local SIPP_TIMEOUT=70s HARD_TIMEOUT=100 CAPTURE_TIMEOUT=150
    local EXTRA_UAC_XML=$c-ping-uac.xml EXTRA_UAC_PORT=5062
    local EXTRA_UAC_README="- Second UAC (unrelated OPTIONS ping, started with the UE's UAC, waits 45 s): \`sipp -sf scripts/sipp/$c-ping-uac.xml -key sa_case $c -cid_str 'sa-$c-ping-%u@monitor.sipaudit.test' -i 127.0.0.1 -p 5062 -m 1 -timeout $SIPP_TIMEOUT -timeout_error -nostdin 127.0.0.1:$UAS_PORT\`
"
    case_h "$c" "$c: rules.md H05, 420 (precondition) and no retry: nothing from the UE for 45 s (UDP, 127.0.0.1)" \
"rules.md section H, flow H05, on a real SIPp exchange: an IMS UE ($H_UE) calls a non-IMS peer,
sip:bob@voip.example.net, gets a 420 and gives up. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`, SDP
  \`a=des:qos mandatory local sendrecv\`; 100; 420 Bad Extension \`Unsupported: precondition\` (To tag
  \`$c-peer1\`); ACK CSeq 10 on the INVITE's branch. Then the UE sends nothing more.
- 45 s after the call started: an UNRELATED OPTIONS keep-alive from another SIPp UAC on 127.0.0.1:5062 (From
  \`sip:keepalive@monitor.sipaudit.test\`, tag \`$c-mon1\`, Call-ID \`sa-$c-ping-1@monitor.sipaudit.test\`, Request-URI
  \`sip:voip.example.net\`) / 200 OK. Its only purpose is to give the capture a later end: the capture spans about
  45 s, more than W0 = 32 s after the 420.

Decisions: (1) the later packet is an OPTIONS from another node, another Call-ID and another From (not from the
UE), so it cannot be taken for a retry (it is not an INVITE; it comes from port 5062, not the UE's 5061, on
the loopback address that every party here shares). (2) The §H text
says \"in a 5-minute capture\"; this one lasts about 45 s, which already covers W0 (32 s) after the 420: the
NO_RETRY conditions (capture extends at least W0 after F; the UE's ACK is a later message from the UAC) hold
without the flag RETRY_WINDOW_CUT. (3) policy.toml here is the \"allowed = false\" profile (\`version = 1\`,
\`[relaxation] allowed = false\`, rules.md E.3 format; every other key from the built-in default).

rules.md H05 (quoted):

> H05 420 Unsupported: precondition, then nothing for 40 s in a 5-minute capture → NO_RETRY. Policy with allowed=false →
>     POLICY_RESPECTED_BY_UE.

Expected, in short: verdict NO_RETRY (no RETRY_WINDOW_CUT); outcome FAILED, final_status 420; UE profile R5_STRICT;
with \`--policy samples/$c/policy.toml\`: POLICY_RESPECTED_BY_UE (under the built-in default policy the policy verdict
is empty: the default would allow the relaxation toward NON_IMS; my reading of E.4). The OPTIONS ping is a
separate session (COMPLETED, NOT_APPLICABLE)." \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: $c-peer1
ACK | CSeq: 10 ACK | To tag: $c-peer1
OPTIONS | CSeq: 1 OPTIONS | To tag: -
200 | CSeq: 1 OPTIONS | To tag: $c-peer-ping"
    cap="$SAMPLES/$c/capture.pcap"
    g=$(gap_ms "$cap" 3 5)
    log "$c: the OPTIONS comes $g ms after the 420"
    ((g >= 40000 && g <= 50000)) || die "$c: $g ms between the 420 and the OPTIONS, expected about 45 s"
    write_policy "$c" <<'EOF'
# rules.md H05: the "allowed = false" profile (no relaxation at all); every other key from the built-in default.
version = 1

[relaxation]
allowed = false
EOF
}

# h17-rotated-420: one capture of the H01 flow, split with editcap so that the 420 is the last packet of
# capture-1.pcap and its ACK (then the relaxed INVITE, 300 ms later) open capture-2.pcap.
case_h17() {
    local c=h17-rotated-420 wd="$TMP/h17-rotated-420" ns cap n k f where gap exp flow1 flow2
    exp=$(h_plain_retry_flow "$c" | sed 's/ | To tag: .*$//')
    EXP_H_TAGS=$(h_plain_retry_flow "$c")
    mkdir -p "$wd"
    cap="$wd/capture.pcap"
    lo_ns
    ns=$LO_NS
    if [[ -n $ns ]]; then
        where="inside a network namespace the script creates (\`ip netns add $ns\`, only \`lo\` up), so nothing else on the machine shows up in the capture"
    else
        where="on the host loopback (network namespaces were not available)"
    fi
    start_capture "$ns" lo "$cap" "" "udp port $UAS_PORT"
    run_call "$c" "$ns" 127.0.0.1 "$ns" 127.0.0.1 "$c-uas.xml" "$c-uac.xml"
    stop_capture
    [[ -n $ns ]] && ns_del "$ns"
    check_flow "$c" "$cap" "$exp"
    check_h_tags "$c" "$cap"
    n=$(packet_count "$cap")
    ((n == 11)) || die "$c: $n packets in the capture, expected exactly 11 (one per SIP message)"
    # The split point: the ACK of the 420 (one packet per message, so its line in the flow is its frame number).
    k=$(sip_flow "$cap" | grep -n '^ACK | CSeq: 10 ACK$' | cut -d: -f1)
    [[ $k == 4 ]] || die "$c: the ACK of the 420 is frame '$k', expected 4"
    editcap -F pcap -r "$cap" "$wd/capture-1.pcap" "1-$((k - 1))" >/dev/null
    editcap -F pcap -r "$cap" "$wd/capture-2.pcap" "$k-$n" >/dev/null
    flow1=$(printf '%s\n' "$exp" | sed -n "1,$((k - 1))p")
    flow2=$(printf '%s\n' "$exp" | sed -n "$k,\$p")
    check_flow "$c (capture-1)" "$wd/capture-1.pcap" "$flow1"
    check_flow "$c (capture-2)" "$wd/capture-2.pcap" "$flow2"
    [[ $(sip_flow "$wd/capture-1.pcap" | tail -1) == '420 | CSeq: 10 INVITE' ]] || die "$c: capture-1.pcap does not end with the 420"
    for f in capture-1.pcap capture-2.pcap; do
        [[ $(od -An -tx1 -N4 "$wd/$f" | tr -d ' ') == d4c3b2a1 ]] || die "$c: $f is not a classic (microsecond) pcap"
        [[ $(linktype_num "$wd/$f") == $(linktype_num "$cap") ]] || die "$c: $f has another link type"
    done
    cmp -s <(tcpdump -tt -nn -xx -r "$cap" 2>/dev/null) \
        <(tcpdump -tt -nn -xx -r "$wd/capture-1.pcap" 2>/dev/null; tcpdump -tt -nn -xx -r "$wd/capture-2.pcap" 2>/dev/null) ||
        die "$c: capture-1 + capture-2 differ from the original capture"
    gap=$(gap_ms "$cap" "$k" $((k + 1)))
    log "$c: the relaxed INVITE comes $gap ms after the ACK"
    ((gap >= 250 && gap <= 400)) || die "$c: $gap ms between the ACK and the retried INVITE, expected about 300"
    mkdir -p "$SAMPLES/$c"
    install -m 0644 "$wd/capture-1.pcap" "$SAMPLES/$c/capture-1.pcap"
    install -m 0644 "$wd/capture-2.pcap" "$SAMPLES/$c/capture-2.pcap"
    local dir="$SAMPLES/$c"
    DECODE_RESEND=1 DECODE_TOTAG=1
    {
        printf '# %s: rules.md H17, the 420 ends capture-1.pcap, its ACK and the relaxed retry open capture-2.pcap (UDP, 127.0.0.1)\n\n' "$c"
        printf '%s\n\n' "rules.md section H, flow H17, on a real SIPp exchange, in two files: an IMS UE ($H_UE) calls a
non-IMS peer, sip:bob@voip.example.net. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\` on both attempts.
The exchange is the H01 flow.

- capture-1.pcap: INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition\`, \`Supported: 100rel\`, SDP
  \`a=des:qos mandatory local sendrecv\`; 100 Trying; 420 Bad Extension \`Unsupported: precondition\` (To tag
  \`$c-peer1\`), the LAST packet of the file.
- capture-2.pcap: ACK CSeq 10 on the INVITE's branch with the 420's To tag (sent at once by the UE), then, $gap ms
  later, the relaxed retry: INVITE CSeq 11, same Call-ID and From tag, new branch \`z9hG4bK-$c-inv2\`, no To tag, no
  Require, \`Supported: 100rel, precondition\`, SDP \`a=des:qos optional local sendrecv\` (same o= session id,
  version 2); 100, 180, 200 (To tag \`$c-peer2\`), ACK CSeq 11, BYE CSeq 12 / 200.

rules.md H17 (quoted):

> H17 The 420 is the last packet of file1.pcap; its ACK and the relaxed INVITE open file2.pcap (0.3 s later) →
>     COMPLIANT_RELAXATION. file1 analysed alone → TRUNCATED (no later message from the UAC), outcome TRUNCATED.

Expected, in short: both files in one batch → COMPLIANT_RELAXATION (flag DESIRED_LISTED, UE profile R5_STRICT),
outcome ESTABLISHED, policy (built-in default, NON_IMS) POLICY_COMPLIANT as in H01; capture-1.pcap analysed alone →
verdict TRUNCATED, outcome TRUNCATED. Here file1 = capture-1.pcap and file2 = capture-2.pcap (the naming of the other
rotated sample). \"0.3 s later\": the ACK follows the 420 at once; the relaxed INVITE follows the ACK by 0.3 s."
        printf '## Capture\n\n'
        for f in capture-1.pcap capture-2.pcap; do
            printf -- '- File: `%s` (classic pcap, microsecond timestamps), %s bytes, %s packets, link type %s (%s)\n' \
                "$f" "$(stat -c %s "$dir/$f")" "$(packet_count "$dir/$f")" "$(linktype_name "$dir/$f")" \
                "$(linktype_num "$dir/$f")"
        done
        printf -- '- Made: %s by `scripts/gen-samples.sh %s`\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$c"
        printf -- '- Tools: %s, %s (Debian wireshark-common %s)\n\n' "$TOOLS_LINE" \
            "$(editcap -v 2>&1 | head -1 | sed 's/ (Git .*//; s/\.$//')" \
            "$(dpkg-query -W -f='${Version}' wireshark-common 2>/dev/null || echo '?')"
        printf '## How it was made\n\n'
        printf '%s\n\n' "SIPp over UDP on the loopback address 127.0.0.1, $where. ONE capture of the whole exchange
($n packets), then split in two with editcap between the 420 and its ACK (not a live tcpdump rotation: \`-C\` and
\`-G\` cannot put the boundary at a chosen message).

- UAS: \`sipp -sf scripts/sipp/$c-uas.xml -key sa_case $c -i 127.0.0.1 -p $UAS_PORT -m 1 -timeout $SIPP_TIMEOUT -timeout_error -nostdin\`
- UAC: \`sipp -sf scripts/sipp/$c-uac.xml -key sa_case $c -cid_str 'sa-$c-%u@ue.sipaudit.test' -i 127.0.0.1 -p $UAC_PORT -m 1 -timeout $SIPP_TIMEOUT -timeout_error -nostdin 127.0.0.1:$UAS_PORT\`
- Capture: \`tcpdump -i lo -n -s 0 -U --immediate-mode -w capture.pcap 'udp port $UAS_PORT'\`
- Split (the ACK of the 420 is frame $k of capture.pcap): \`editcap -F pcap -r capture.pcap capture-1.pcap 1-$((k - 1))\`
  and \`editcap -F pcap -r capture.pcap capture-2.pcap $k-$n\`; packets and timestamps are kept as captured (the
  script checks that the two files together are byte for byte the packets of capture.pcap, and that capture-1.pcap
  ends with the 420); frame numbers start again at 1 in capture-2.pcap. capture.pcap itself is not kept.

$(how_common 1)"
        for f in capture-1.pcap capture-2.pcap; do
            printf '## %s: SIP messages (start line | CSeq), from `tcpdump -nn -A`\n\n```\n' "$f"
            sip_flow "$dir/$f"
            printf '```\n\n'
            printf '## %s: tshark decode\n\n' "$f"
            decode_section "$dir/$f"
        done
        printf 'Regenerate with `sudo scripts/gen-samples.sh %s` (timestamps change; identifiers do not).\n' "$c"
        printf 'Expected analyzer outputs for these captures are blessed separately.\n'
    } >"$dir/README.md"
    DECODE_RESEND=0 DECODE_TOTAG=0
    log "$c: OK ($((k - 1)) + $((n - k + 1)) packets in capture-1.pcap + capture-2.pcap)"
}

case_h08() {
    local c=h08-fork-mixed
    local EXTRA_UAS=("$c-branch1-uas.xml:5070" "$c-branch2-uas.xml:5071")
    local EXTRA_UAC_README="- Branch 1 (started first): \`sipp -sf scripts/sipp/$c-branch1-uas.xml -key sa_case $c -i 127.0.0.1 -p 5070 -m 1 -timeout $SIPP_TIMEOUT -timeout_error -nostdin\`
- Branch 2 (started first): \`sipp -sf scripts/sipp/$c-branch2-uas.xml -key sa_case $c -i 127.0.0.1 -p 5071 -m 1 -timeout $SIPP_TIMEOUT -timeout_error -nostdin\`

Here the \"UAS\" line above is the forking S-CSCF (a SIPp scenario that relays with \`setdest\`), the \"UAC\" line the
UE. Every message goes through the S-CSCF (port 5060), so the capture filter \`udp port 5060\` keeps both legs.
"
    case_h "$c" "$c: rules.md H08, captured at a forking S-CSCF: branch 1 answers 420 (precondition), branch 2 183 and 200; the UE sees only the 200 (UDP, 127.0.0.1)" \
"rules.md section H, flow H08, on a real exchange of four SIPp instances on 127.0.0.1: the UE (port 5061), a
forking S-CSCF (port 5060, a SIPp scenario that plays a stateful forking proxy: it adds its Via and Record-Route,
forks, ACKs the 420 hop by hop, passes the 2xx on), branch 1 (port 5070) and branch 2 (port 5071). The capture is
taken where the S-CSCF is: it holds the UE leg and both branch legs. Call-ID \`sa-$c-1@ue.sipaudit.test\` on every
leg (a proxy keeps it), From tag \`$c-ue1\`.

- UE → S-CSCF: INVITE sip:bob@voip.example.net CSeq 10 (branch \`z9hG4bK-$c-inv1\`): \`Require: precondition\`,
  \`Supported: 100rel\`, SDP \`a=des:qos mandatory local sendrecv\`. S-CSCF → UE: 100 Trying.
- S-CSCF → branch 1: INVITE sip:bob@127.0.0.1:5070 (Via \`z9hG4bK-$c-fork1\` on top of the UE's Via, Max-Forwards
  69, \`Record-Route: <sip:127.0.0.1:5060;lr>\`, headers and SDP of the UE's INVITE); S-CSCF → branch 2: the same to
  sip:bob@127.0.0.1:5071 (Via \`z9hG4bK-$c-fork2\`).
- Branch 1 → S-CSCF (50 ms later): 420 Bad Extension \`Unsupported: precondition\` (To tag \`$c-b1\`); S-CSCF →
  branch 1: ACK (fork 1's branch, hop by hop).
- Branch 2 → S-CSCF: 100, then 183 Session Progress (To tag \`$c-b2\`) with an SDP answer WITH preconditions
  (a=curr/a=des/a=conf), then 200 OK (same SDP answer).
- S-CSCF → UE: 200 OK (To tag \`$c-b2\`, the UE's Via only). The 420 and the 183 are not passed on: the UE sees only
  the 100 and the 200.
- UE → S-CSCF → branch 2: ACK CSeq 10 (Request-URI branch 2's Contact, Route to the S-CSCF; the S-CSCF adds Via \`z9hG4bK-$c-fwd-ack1\`); 1 s later BYE CSeq 11 (S-CSCF Via \`z9hG4bK-$c-fwd-bye1\`) /
  200 back through the S-CSCF.

Decisions: (1) The §H text says the UE sees only the 200, so the S-CSCF passes neither the 420 (right: 420 loses to a
2xx, RFC 3261 section 16.7) nor the 183 (a real proxy would normally forward a 1xx; here it keeps to the text).
(2) Branch 2's 183 is not reliable: the UE put 100rel in Supported only, and an unreliable 183 needs no PRACK (a
reliable one that the UE never saw would be left unPRACKed before the 200, an error of its own, rules.md G.7).
(3) Same Call-ID on both legs (a proxy, not a B2BUA); the To tags tell the branches apart.

rules.md H08 (quoted):

> H08 A capture at the forking S-CSCF: branch 1 answers 420 Unsupported: precondition; branch 2 answers 183 with preconditions,
>     then 200. The UE sees only the 200 → flag FORK_MIXED_CAPABILITY (info), no failures.csv row, NOT_APPLICABLE for
>     relaxation.

Expected, in short: one session, one attempt, flag FORK_MIXED_CAPABILITY, no failures.csv row, verdict
NOT_APPLICABLE, outcome ESTABLISHED (final_status 200); UE profile R5_STRICT. Each request appears twice (UE leg and
branch leg, one more Via on the branch leg); the UE's own copies are the ones with one Via (rules.md A.6)." \
"INVITE | CSeq: 10 INVITE | To tag: -
100 | CSeq: 10 INVITE | To tag: -
INVITE | CSeq: 10 INVITE | To tag: -
INVITE | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: $c-b1
ACK | CSeq: 10 ACK | To tag: $c-b1
100 | CSeq: 10 INVITE | To tag: -
183 | CSeq: 10 INVITE | To tag: $c-b2
200 | CSeq: 10 INVITE | To tag: $c-b2
200 | CSeq: 10 INVITE | To tag: $c-b2
ACK | CSeq: 10 ACK | To tag: $c-b2
ACK | CSeq: 10 ACK | To tag: $c-b2
BYE | CSeq: 11 BYE | To tag: $c-b2
BYE | CSeq: 11 BYE | To tag: $c-b2
200 | CSeq: 11 BYE | To tag: $c-b2
200 | CSeq: 11 BYE | To tag: $c-b2"
    # Who sent what: the ports of each packet (UE 5061, S-CSCF 5060, branches 5070/5071).
    local got want
    got=$(tcpdump -nn -r "$SAMPLES/$c/capture.pcap" 2>/dev/null | awk '{ s = $3; d = $5; sub(/^.*\./, "", s); sub(/:$/, "", d); sub(/^.*\./, "", d); print s ">" d }' | tr '\n' ' ')
    want='5061>5060 5060>5061 5060>5070 5060>5071 5070>5060 5060>5070 5071>5060 5071>5060 5071>5060 5060>5061 5061>5060 5060>5071 5061>5060 5060>5071 5071>5060 5060>5061 '
    [[ $got == "$want" ]] || die "$c: unexpected packet directions: $got"
    log "$c: packet directions checked (UE 5061, S-CSCF 5060, branches 5070 and 5071)"
}

case_h19() {
    local c=h19-stepwise-fast
    case_h "$c" "$c: stepwise relaxation against an Internet UA that answers at once (two 420s, UDP, 127.0.0.1)" \
"rules.md §A.3 and §D.3 item 14 (STEPWISE), on a real SIPp exchange with no pause between the attempts: an IMS UE
($H_UE) calls an Internet UA, sip:bob@voip.example.net, that names only the first tag it does not support in each
420 and answers within a millisecond, with no 100 Trying. Call-ID \`sa-$c-1@ue.sipaudit.test\`, From tag \`$c-ue1\`
on every attempt.

- INVITE CSeq 10, branch \`z9hG4bK-$c-inv1\`: \`Require: precondition, 100rel\`, SDP \`a=des:qos mandatory local sendrecv\`.
- 420 (To tag \`$c-peer1\`, \`Unsupported: precondition\`); ACK CSeq 10.
- At once: INVITE CSeq 11, branch \`z9hG4bK-$c-inv2\`: \`Require: 100rel\`, \`Supported: precondition\`,
  SDP \`a=des:qos optional local sendrecv\`.
- 420 (To tag \`$c-peer2\`, \`Unsupported: 100rel\`); ACK CSeq 11.
- At once: INVITE CSeq 12, branch \`z9hG4bK-$c-inv3\`: no Require, \`Supported: 100rel, precondition\`, SDP optional.
- 200 (To tag \`$c-peer3\`), ACK CSeq 12; 200 ms later BYE CSeq 13 / 200.

The three INVITEs fall within a few milliseconds, well inside rules.md's 50 ms skew tolerance: the second 420's
retry must be INVITE CSeq 12, never the earlier INVITE CSeq 10 (a retry is always sent after the failed request).

Expected, in short: one session of three attempts, verdict COMPLIANT_RELAXATION with the flag STEPWISE (two
failures.csv rows, each linked H0 to the next INVITE), outcome ESTABLISHED." \
'INVITE | CSeq: 10 INVITE | To tag: -
420 | CSeq: 10 INVITE | To tag: h19-stepwise-fast-peer1
ACK | CSeq: 10 ACK | To tag: h19-stepwise-fast-peer1
INVITE | CSeq: 11 INVITE | To tag: -
420 | CSeq: 11 INVITE | To tag: h19-stepwise-fast-peer2
ACK | CSeq: 11 ACK | To tag: h19-stepwise-fast-peer2
INVITE | CSeq: 12 INVITE | To tag: -
200 | CSeq: 12 INVITE | To tag: h19-stepwise-fast-peer3
ACK | CSeq: 12 ACK | To tag: h19-stepwise-fast-peer3
BYE | CSeq: 13 BYE | To tag: h19-stepwise-fast-peer3
200 | CSeq: 13 BYE | To tag: h19-stepwise-fast-peer3'
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
    tcp-t1) case_tcp "$1" t1 ;;
    tcp-tn) case_tcp "$1" tn ;;
    udp-retrans-invite-420) case_retrans ;;
    cancel-487) case_cancel ;;
    auth-407) case_auth ;;
    retry-new-callid-h2) case_h2 ;;
    rotated-420-retry) case_rotated ;;
    fork-two-180) case_fork ;;
    skew-two-points) case_skew ;;
    h01-r5-compliant) case_h01 ;;
    h02-retry-loop) case_h02 ;;
    h03-over-relaxed) case_h03 ;;
    h04-dependent-drop) case_h04 ;;
    h06-new-callid) case_h06 ;;
    h07-421-100rel) case_h07 ;;
    h09-580-relaxed) case_h09 ;;
    h13-udp-losses) case_h13 ;;
    h14-cseq-reused-482) case_h14 ;;
    h16-420-no-unsupported) case_h16 ;;
    h12-update-405-cancel) case_h12 ;;
    h18-reinvite-420) case_h18 ;;
    h15-sec-agree-register) case_h15 ;;
    h11-emergency-100rel) case_h11 ;;
    h10-policy-enforced) case_h10 ;;
    h05-no-retry) case_h05 ;;
    h17-rotated-420) case_h17 ;;
    h08-fork-mixed) case_h08 ;;
    h19-stepwise-fast) case_h19 ;;
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

    for c in "${cases[@]}"; do [[ $c != tcp-* ]] || NEED_ETHTOOL=1; done
    for c in "${cases[@]}"; do [[ $TSHARK_CASES != *" $c "* ]] || NEED_TSHARK=1; done
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
