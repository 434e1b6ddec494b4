#!/usr/bin/env bash
# End-to-end throughput and memory benchmark of `sipaudit analyze` against tshark.
#
# usage: scripts/bench.sh [--scale N] [--out DIR] [--seed S] [--repeat R] [--no-tshark]
#
#   --scale N    capture size: at least N x 2,000,000 packets and N x 500 MiB (default 1;
#                fractions such as 0.1 work for a quick look; 10 for the RSS-flatness run)
#   --out DIR    where captures, run outputs and the results table go (default target/bench)
#   --seed S     generator seed (default 20261124)
#   --repeat R   runs of each sipaudit configuration; the table shows the median (default 3)
#   --no-tshark  skip the tshark reference run (about 35 s and 1.5 GB per scale unit)
#                --scale 10 --repeat 1 --no-tshark takes about 5 min here (gzip alone 100 s)
#
# 1. Installs what it needs (apt-get: time, tshark, gzip), builds sipaudit and the generator
#    (examples/gen_capture.rs) in release mode.
# 2. Generates, once, DIR/capture-s<N>.pcap and its gzip copy: many overlapping calls built from
#    the SIP message texts of samples/*/capture.pcap (IMS precondition calls, 420 + relaxed retry,
#    plain calls, large fragmented INVITEs, some calls over TCP, UDP retransmissions) with RTP
#    between them, so SIP is about a fifth of the packets. The files are reused while the seed,
#    the scale, the generator source and the sample captures are unchanged
#    (DIR/capture-s<N>.key holds their hash; DIR/capture-s<N>.manifest the generator's counts).
# 3. Runs sipaudit analyze -j1 / -j2, with and without --messages, on the plain and the gzip file
#    (--repeat times each), then once `tshark -n -r F -Y sip -T fields` with the ten fields of the
#    issue (output to /dev/null), each under /usr/bin/time -v, and prints a table (also written to
#    DIR/results-s<N>.md): wall s and CPU s (user+sys; medians over the repeats), packets/s,
#    SIP packets/s, MB/s (of the uncompressed pcap, also for the gzip input), speed-up over tshark
#    (tshark wall / run wall), peak RSS MB (largest over the repeats), and the RSS above a run on a
#    tiny sample divided by the number of SIP messages (bytes held per message).
# Each sipaudit run's packet, SIP-packet and SIP-message counts are checked against the manifest.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SCALE=1
OUT=target/bench
SEED=20261124
TSHARK=1
REPEAT=3
while [ $# -gt 0 ]; do
  case "$1" in
    --scale) SCALE=${2:?--scale needs a value}; shift 2 ;;
    --out) OUT=${2:?--out needs a value}; shift 2 ;;
    --seed) SEED=${2:?--seed needs a value}; shift 2 ;;
    --repeat) REPEAT=${2:?--repeat needs a value}; shift 2 ;;
    --no-tshark) TSHARK=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$REPEAT" in
  '' | *[!0-9]* | 0) echo "bench.sh: --repeat must be a positive integer, not '$REPEAT'" >&2; exit 2 ;;
esac
if ! awk -v s="$SCALE" 'BEGIN { exit !(s + 0 > 0) }'; then
  echo "bench.sh: --scale must be a positive number, not '$SCALE'" >&2
  exit 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf '[bench] %s\n' "$*" >&2; }

# ------------------------------------------------------------------ tools
SUDO=
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "bench.sh: $* missing and no apt-get to install it" >&2
    exit 1
  fi
  if [ "$APT_UPDATED" = 0 ]; then
    $SUDO apt-get update -qq
    APT_UPDATED=1
  fi
  log "installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
[ -x /usr/bin/time ] || apt_install time
command -v gzip >/dev/null || apt_install gzip
if [ "$TSHARK" = 1 ] && ! command -v tshark >/dev/null; then apt_install tshark; fi
command -v cargo >/dev/null || { echo "bench.sh: cargo not found (a Rust toolchain is needed)" >&2; exit 1; }

# ------------------------------------------------------------------ build
log "building sipaudit and the generator (release)"
cargo build --release --quiet --bin sipaudit --example gen_capture
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
SIPAUDIT=$TARGET_DIR/release/sipaudit
GEN=$TARGET_DIR/release/examples/gen_capture

# ------------------------------------------------------------------ capture (cached)
SAMPLES=(ims-precondition-call relaxed-retry-420 sll2-any fragmented-invite)
CAP=$OUT/capture-s$SCALE.pcap
GZ=$CAP.gz
MANIFEST=$OUT/capture-s$SCALE.manifest
KEYFILE=$OUT/capture-s$SCALE.key
KEY=$( {
  echo "seed=$SEED scale=$SCALE"
  sha256sum examples/gen_capture.rs
  for s in "${SAMPLES[@]}"; do sha256sum "samples/$s/capture.pcap"; done
} | sha256sum | cut -d' ' -f1)
if [ -f "$CAP" ] && [ -f "$GZ" ] && [ -f "$MANIFEST" ] && [ "$(cat "$KEYFILE" 2>/dev/null)" = "$KEY" ]; then
  log "reusing $CAP (+ .gz)"
else
  rm -f "$CAP" "$GZ" "$MANIFEST" "$KEYFILE"
  need_mb=$(awk -v s="$SCALE" 'BEGIN { printf "%d", s * 500 * 1.05 * 1.4 + 100 }')
  free_mb=$(df -Pm "$OUT" | awk 'NR == 2 { print $4 }')
  if [ "$free_mb" -lt "$need_mb" ]; then
    echo "bench.sh: $OUT has ${free_mb} MB free, the capture and its gzip copy need about ${need_mb} MB" >&2
    exit 1
  fi
  log "generating $CAP (scale $SCALE, seed $SEED)"
  t0=$(date +%s.%N)
  "$GEN" --samples samples --scale "$SCALE" --seed "$SEED" --out "$CAP.tmp" --manifest "$MANIFEST.tmp" >/dev/null
  t1=$(date +%s.%N)
  log "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "generated in %.1f s", b - a }'); gzip copy"
  gzip -c -6 "$CAP.tmp" >"$GZ.tmp"
  t2=$(date +%s.%N)
  log "$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "gzipped in %.1f s", b - a }')"
  sed -i "s|^file=.*|file=$CAP|" "$MANIFEST.tmp"
  mv "$CAP.tmp" "$CAP"
  mv "$GZ.tmp" "$GZ"
  mv "$MANIFEST.tmp" "$MANIFEST"
  echo "$KEY" >"$KEYFILE"
fi
mf() { sed -n "s/^$1=//p" "$MANIFEST"; }
PACKETS=$(mf packets)
SIP_PACKETS=$(mf sip_packets)
SIP_MESSAGES=$(mf sip_messages)
FILE_BYTES=$(stat -c %s "$CAP")
GZ_BYTES=$(stat -c %s "$GZ")
log "$(printf 'capture: %s packets (%s SIP = %.1f %%), %s SIP messages, %.1f MB pcap, %.1f MB gzip; %s calls (%s over TCP)' \
  "$PACKETS" "$SIP_PACKETS" "$(awk -v a="$SIP_PACKETS" -v b="$PACKETS" 'BEGIN { print 100 * a / b }')" \
  "$SIP_MESSAGES" "$(awk -v b="$FILE_BYTES" 'BEGIN { print b / 1e6 }')" \
  "$(awk -v b="$GZ_BYTES" 'BEGIN { print b / 1e6 }')" "$(mf calls)" "$(mf calls_tcp)")"

# ------------------------------------------------------------------ runs
RUNS=$OUT/runs-s$SCALE
rm -rf "$RUNS"
mkdir -p "$RUNS"
RESULTS=$RUNS/results.tsv
: >"$RESULTS"
FAILED=0

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_case NAME REPEAT CMD...: REPEAT timed runs (each line in RUNS/all-runs.tsv); the median
# wall and CPU time and the largest peak RSS go to RESULTS. stdout to RUNS/<slug>.stdout unless
# STDOUT_NULL=1.
run_case() {
  local name=$1 repeat=$2 slug rc t0 t1 i wall rss cpu walls=() cpus=() maxrss=0 worst=0
  shift 2
  slug=$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_')
  for ((i = 1; i <= repeat; i++)); do
    if [ "$repeat" -gt 1 ]; then log "run: $name [$i/$repeat]"; else log "run: $name"; fi
    rc=0
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
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$i" "$wall" "$cpu" "${rss:-0}" "$rc" >>"$RUNS/all-runs.tsv"
    walls+=("$wall")
    cpus+=("$cpu")
    [ "${rss:-0}" -gt "$maxrss" ] && maxrss=${rss:-0}
    if [ "$rc" != 0 ]; then
      log "  FAILED (exit $rc): see $RUNS/$slug.stderr"
      FAILED=1
      worst=$rc
    fi
  done
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$(median "${walls[@]}")" "$(median "${cpus[@]}")" "$maxrss" "$worst" >>"$RESULTS"
}

# Checks one sipaudit run's inputs.csv against the manifest.
check_counts() {
  local dir=$1 got
  got=$(awk -F, 'NR == 2 { print $5, $9, $12 }' "$dir/inputs.csv" 2>/dev/null || true)
  if [ "$got" != "$PACKETS $SIP_PACKETS $SIP_MESSAGES" ]; then
    log "  COUNT MISMATCH in $dir/inputs.csv: packets/sip_packets/sip_messages '$got', generator says '$PACKETS $SIP_PACKETS $SIP_MESSAGES'"
    FAILED=1
  fi
}

cat "$CAP" "$GZ" >/dev/null # warm the page cache: every run reads from memory

# Baseline: a tiny sample, for the RSS that does not depend on the input.
"/usr/bin/time" -v -o "$RUNS/baseline.time" "$SIPAUDIT" analyze -j1 --progress never \
  -o "$RUNS/out-baseline" samples/sll2-any/capture.pcap >/dev/null 2>&1
BASE_RSS=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$RUNS/baseline.time")

for input in pcap gzip; do
  f=$CAP
  [ "$input" = gzip ] && f=$GZ
  for j in 1 2; do
    for m in "" --messages; do
      name="sipaudit -j$j${m:+ $m} ($input)"
      dir=$RUNS/out-$input-j$j${m:+-messages}
      run_case "$name" "$REPEAT" "$SIPAUDIT" analyze -j"$j" $m --progress never -o "$dir" "$f"
      check_counts "$dir"
    done
  done
done
# Same reports whatever -j (and summary.csv whatever the input form).
for input in pcap gzip; do
  for m in "" -messages; do
    d1=$RUNS/out-$input-j1$m d2=$RUNS/out-$input-j2$m
    for csv in summary.csv anomalies.csv ${m:+messages.csv}; do
      cmp -s "$d1/$csv" "$d2/$csv" || { log "  $d2/$csv differs from $d1/$csv"; FAILED=1; }
    done
    cmp -s "$d1/summary.csv" "$RUNS/out-pcap-j1/summary.csv" ||
      { log "  $d1/summary.csv differs from $RUNS/out-pcap-j1/summary.csv"; FAILED=1; }
  done
done

# messages.csv is large (about 0.35 KB per SIP message) and was compared above: drop it.
rm -f "$RUNS"/out-*/messages.csv

if [ "$TSHARK" = 1 ]; then
  STDOUT_NULL=1 run_case "tshark -Y sip -T fields (pcap)" 1 tshark -n -r "$CAP" -Y sip -T fields \
    -e frame.time_epoch -e ip.src -e ip.dst -e sip.Call-ID -e sip.CSeq -e sip.Method \
    -e sip.Status-Code -e sip.Require -e sip.Supported -e sip.Unsupported
fi

# ------------------------------------------------------------------ table
TSHARK_WALL=$(awk -F'\t' '/^tshark/ { print $2 }' "$RESULTS")
TABLE=$OUT/results-s$SCALE.md
{
  printf '# sipaudit benchmark, scale %s (%s)\n\n' "$SCALE" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf -- '- capture: `%s`: %s packets, %s SIP packets (%.1f %%), %s SIP messages, %.1f MB (gzip %.1f MB); seed %s\n' \
    "$CAP" "$PACKETS" "$SIP_PACKETS" "$(awk -v a="$SIP_PACKETS" -v b="$PACKETS" 'BEGIN { print 100 * a / b }')" \
    "$SIP_MESSAGES" "$(awk -v b="$FILE_BYTES" 'BEGIN { print b / 1e6 }')" "$(awk -v b="$GZ_BYTES" 'BEGIN { print b / 1e6 }')" "$SEED"
  printf -- '- machine: %s cores, %s; sipaudit %s (git %s%s)\n' "$(nproc)" \
    "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" \
    "$("$SIPAUDIT" --version | cut -d' ' -f2)" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$(git diff --quiet HEAD -- src 2>/dev/null || echo ', src modified')"
  [ "$TSHARK" = 1 ] && printf -- '- tshark: %s\n' "$(tshark --version 2>/dev/null | head -1)"
  printf -- '- wall and CPU s: median of %s run(s) for sipaudit, 1 run for tshark; peak RSS: largest of the runs\n' "$REPEAT"
  printf -- '- MB/s counts the uncompressed pcap bytes (also for gzip input); RSS/msg = (peak RSS - %s MB baseline on a tiny sample) / SIP messages\n\n' \
    "$(awk -v r="$BASE_RSS" 'BEGIN { printf "%.1f", r * 1024 / 1e6 }')"
  printf '| run | wall s | CPU s | packets/s | SIP packets/s | MB/s | x tshark | peak RSS MB | RSS B/SIP msg |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  while IFS=$'\t' read -r name wall cpu rss rc; do
    awk -v name="$name" -v wall="$wall" -v cpu="$cpu" -v rss="$rss" -v rc="$rc" -v p="$PACKETS" \
      -v sp="$SIP_PACKETS" -v sm="$SIP_MESSAGES" -v fb="$FILE_BYTES" -v tw="$TSHARK_WALL" -v base="$BASE_RSS" '
      BEGIN {
        ratio = (tw == "") ? "-" : sprintf("%.1f", tw / wall)
        per = (name ~ /^tshark/) ? "-" : sprintf("%.0f", (rss - base) * 1024 / sm)
        if (rc != 0) name = name " FAILED(" rc ")"
        printf "| %s | %.2f | %.2f | %.0f | %.0f | %.1f | %s | %.0f | %s |\n",
          name, wall, cpu, p / wall, sp / wall, fb / 1e6 / wall, ratio, rss * 1024 / 1e6, per
      }'
  done <"$RESULTS"
} >"$TABLE"
cat "$TABLE"
echo
echo "(table: $TABLE; per-run /usr/bin/time -v output and stderr: $RUNS)"
if [ "$FAILED" != 0 ]; then
  echo "bench.sh: some runs failed or disagreed (see the log above)" >&2
  exit 1
fi
