#!/usr/bin/env bash
# Memory-flatness benchmark (the sessions issue): peak RSS of `sipaudit analyze` when the number of
# finished calls grows 10x at the same call rate (so the same number of calls in flight).
#
# usage: scripts/bench-rss.sh [--base S] [--out DIR] [--seed N]
#
#   --base S   scale of the small capture (default 0.25: >= 500,000 packets, about 10,600 calls over
#              90 s of capture time, long enough for the calls in flight to reach their steady state:
#              a call is held for its duration plus the 32 s retry window);
#              the large one is 10 x S. Captures are made by examples/gen_capture.rs (120 calls/s of
#              capture time, Poisson arrivals, each call lasting a few seconds), cached in DIR under
#              the same names and keys as scripts/bench.sh uses (capture-s<S>.pcap), so either script
#              reuses the other's files.
#   --out DIR  where captures and results go (default target/bench)
#
# Runs sipaudit -j 1 on both captures, without and with --messages, each under /usr/bin/time -v,
# checks that all sessions were written, prints a table (also DIR/rss-s<S>.md) with sessions,
# SIP messages, wall time and peak RSS, and the ratio large/small. Exits 1 when a ratio exceeds 1.5.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=0.25
OUT=target/bench
SEED=20261124
while [ $# -gt 0 ]; do
  case "$1" in
    --base) BASE=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-rss.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
done
log() { printf '[bench-rss] %s\n' "$*" >&2; }
if [ ! -x /usr/bin/time ]; then
  log "installing time"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cargo build --release --quiet --bin sipaudit --example gen_capture
SIPAUDIT=target/release/sipaudit
GEN=target/release/examples/gen_capture
SAMPLES=(ims-precondition-call relaxed-retry-420 sll2-any fragmented-invite)
BIG=$(awk -v s="$BASE" 'BEGIN { printf "%g", s * 10 }')

capture() { # scale -> path (generated when missing or stale; same key as bench.sh)
  local scale=$1 cap=$OUT/capture-s$1.pcap key
  key=$( {
    echo "seed=$SEED scale=$scale"
    sha256sum examples/gen_capture.rs
    for s in "${SAMPLES[@]}"; do sha256sum "samples/$s/capture.pcap"; done
  } | sha256sum | cut -d' ' -f1)
  if [ ! -f "$cap" ] || [ "$(cat "$OUT/capture-s$scale.key" 2>/dev/null)" != "$key" ]; then
    log "generating $cap"
    rm -f "$cap" "$cap.gz" "$OUT/capture-s$scale.key"
    "$GEN" --samples samples --scale "$scale" --seed "$SEED" --out "$cap.tmp" \
      --manifest "$OUT/capture-s$scale.manifest" >/dev/null
    mv "$cap.tmp" "$cap"
    echo "$key" >"$OUT/capture-s$scale.key"
  fi
  echo "$cap"
}

SMALL_CAP=$(capture "$BASE")
BIG_CAP=$(capture "$BIG")
TABLE=$OUT/rss-s$BASE.md
declare -A RSS
{
  echo "| capture | options | sessions | SIP messages | wall s | peak RSS MB |"
  echo "|---|---|---:|---:|---:|---:|"
} >"$TABLE"
for opt in "" "--messages"; do
  for cap in "$SMALL_CAP" "$BIG_CAP"; do
    o=$(mktemp -d "$OUT/rss-run.XXXXXX")
    /usr/bin/time -v -o "$o/time" "$SIPAUDIT" analyze -j 1 $opt -o "$o" "$cap" 2>"$o/stderr" >/dev/null
    rss_kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$o/time")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { print $2 }' "$o/time")
    sessions=$(($(wc -l <"$o/sessions.csv") - 1))
    msgs=$(awk -F, '$1 == "total" && $2 == "sip_messages" { print $3 }' "$o/summary.csv")
    want=$(awk -F, '$1 == "total" && $2 == "sessions" { print $3 }' "$o/summary.csv")
    [ "$sessions" = "$want" ] || { log "sessions.csv has $sessions rows, summary says $want"; exit 1; }
    RSS["$opt|$cap"]=$rss_kb
    printf '| %s | -j 1 %s | %d | %d | %s | %.1f |\n' "$(basename "$cap")" "$opt" "$sessions" "$msgs" \
      "$wall" "$(awk -v k="$rss_kb" 'BEGIN { print k / 1024 }')" >>"$TABLE"
    rm -rf "$o"
  done
done
fail=0
for opt in "" "--messages"; do
  r=$(awk -v a="${RSS["$opt|$BIG_CAP"]}" -v b="${RSS["$opt|$SMALL_CAP"]}" 'BEGIN { printf "%.2f", a / b }')
  echo "" >>"$TABLE"
  echo "peak RSS ratio 10x / 1x (-j 1 $opt): $r (limit 1.5)" >>"$TABLE"
  awk -v r="$r" 'BEGIN { exit !(r > 1.5) }' && fail=1
done
cat "$TABLE"
exit $fail
