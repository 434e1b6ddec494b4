#!/usr/bin/env bash
# A profile-guided (PGO) release build of sipaudit, for hosts that run big batches. It is optional. The plain
# `cargo build --release` stays the reference build: the tests, CI and the quick start use that one.
#
# usage: scripts/build-pgo.sh [--out DIR] [--scale N] [--seed S]
#
#   --out DIR    where the training capture, the profiles and the two builds go (default target/pgo)
#   --scale N    size of the generated training capture, as for scripts/bench.sh (default 0.1: about
#                200,000 packets)
#   --seed S     the generator's seed (default 7; scripts/bench.sh uses another)
#
# 1. Installs rustup's llvm-tools component if it is missing. It gives the llvm-profdata of the
#    toolchain's own LLVM, and a profile must be merged by the same LLVM that reads it.
# 2. Builds sipaudit instrumented (-Cprofile-generate) in DIR/gen, and the capture generator
#    (examples/gen_capture.rs).
# 3. Trains only on what the repository ships, never on a benchmark's capture:
#    - every samples/*/capture.pcap*, at -j1, at -j2 --messages, and at -j2 with every waiting session
#      sent to the spill files (SIPAUDIT_COLD=always), so that the path a scanner burst takes is trained;
#    - a capture that the generator builds from those samples (many overlapping calls, some over TCP,
#      RTP between them), at -j1, at -j2, and gzipped at -j2.
# 4. Merges the profiles (llvm-profdata merge) and builds sipaudit with -Cprofile-use in DIR/use. Then it
#    checks that the reports of that build on every sample equal the training build's, byte for byte.
# The last line printed is the path of the built binary. It took 20 minutes here from nothing built (three
# builds of the whole dependency tree: instrumented, the generator's, and with the profile; each
# RUSTFLAGS needs its own), 12 once the generator was built; the training runs take under a minute.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

OUT=target/pgo
SCALE=0.1
SEED=7
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?--out needs a value}; shift 2 ;;
    --scale) SCALE=${2:?--scale needs a value}; shift 2 ;;
    --seed) SEED=${2:?--seed needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-pgo.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
if ! awk -v s="$SCALE" 'BEGIN { exit !(s + 0 > 0) }'; then
  echo "build-pgo.sh: --scale must be a positive number, not '$SCALE'" >&2
  exit 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

log() { printf '[pgo] %s\n' "$*" >&2; }

# ------------------------------------------------------------------ tools
command -v cargo >/dev/null || { echo "build-pgo.sh: cargo not found (a Rust toolchain is needed)" >&2; exit 1; }
SYSROOT=$(rustc --print sysroot)
HOST=$(rustc -vV | sed -n 's/^host: //p')
PROFDATA=$SYSROOT/lib/rustlib/$HOST/bin/llvm-profdata
if [ ! -x "$PROFDATA" ]; then
  command -v rustup >/dev/null ||
    { echo "build-pgo.sh: $PROFDATA is missing and there is no rustup to add llvm-tools" >&2; exit 1; }
  log "adding rustup's llvm-tools component"
  rustup component add llvm-tools >&2 ||
    { echo "build-pgo.sh: rustup could not add llvm-tools (needed for llvm-profdata)" >&2; exit 1; }
fi
[ -x "$PROFDATA" ] || { echo "build-pgo.sh: no llvm-profdata at $PROFDATA after adding llvm-tools" >&2; exit 1; }
command -v gzip >/dev/null || { echo "build-pgo.sh: gzip not found" >&2; exit 1; }

# ------------------------------------------------------------------ instrumented build
PROFILES=$OUT/profiles
rm -rf "$PROFILES"
mkdir -p "$PROFILES"
log "building sipaudit instrumented (DIR/gen) and the generator"
RUSTFLAGS="-Cprofile-generate=$PROFILES" CARGO_TARGET_DIR=$OUT/gen \
  cargo build --release --quiet --bin sipaudit
# The generator is an ordinary release build, in the project's own target directory (as scripts/bench.sh
# builds it), so that a tree already built reuses it.
cargo build --release --quiet --example gen_capture
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
GEN=${TARGET_DIR:-$ROOT/target}/release/examples/gen_capture
GEN_BIN=$OUT/gen/release/sipaudit

# ------------------------------------------------------------------ training
TRAIN=$OUT/train-s$SCALE-seed$SEED.pcap
if [ ! -f "$TRAIN" ] || [ ! -f "$TRAIN.gz" ]; then
  log "generating the training capture (scale $SCALE, seed $SEED)"
  "$GEN" --samples samples --scale "$SCALE" --seed "$SEED" --out "$TRAIN.tmp" --manifest "$OUT/train.manifest" >/dev/null
  gzip -c -6 "$TRAIN.tmp" >"$TRAIN.gz.tmp"
  mv "$TRAIN.tmp" "$TRAIN"
  mv "$TRAIN.gz.tmp" "$TRAIN.gz"
fi
mapfile -t SAMPLE_CAPS < <(ls samples/*/capture.pcap* | sort)
RUNS=$OUT/runs
rm -rf "$RUNS"
mkdir -p "$RUNS"
# analyze exits 1 when a capture holds a finding and 2 on an error: only 2 or worse stops the training.
train() {
  local name=$1
  shift
  local rc=0
  "$GEN_BIN" analyze --progress never -o "$RUNS/$name" "$@" >/dev/null 2>"$RUNS/$name.err" || rc=$?
  if [ "$rc" -ge 2 ]; then
    echo "build-pgo.sh: training run $name failed (exit $rc); see $RUNS/$name.err" >&2
    exit 1
  fi
}
log "training on ${#SAMPLE_CAPS[@]} sample captures and $(basename "$TRAIN")"
train samples-j1 -j1 "${SAMPLE_CAPS[@]}"
train samples-j2m -j2 --messages "${SAMPLE_CAPS[@]}"
SIPAUDIT_COLD=always train samples-cold -j2 "${SAMPLE_CAPS[@]}"
train gen-j1 -j1 "$TRAIN"
train gen-j2 -j2 "$TRAIN"
train gen-gz-j2 -j2 "$TRAIN.gz"
MERGED=$OUT/merged.profdata
"$PROFDATA" merge -o "$MERGED" "$PROFILES"

# ------------------------------------------------------------------ optimized build
log "building sipaudit with the profile (DIR/use)"
RUSTFLAGS="-Cprofile-use=$MERGED" CARGO_TARGET_DIR=$OUT/use cargo build --release --quiet --bin sipaudit
BIN=$OUT/use/release/sipaudit

# ------------------------------------------------------------------ same reports
"$BIN" analyze -j1 --progress never -o "$RUNS/check" "${SAMPLE_CAPS[@]}" >/dev/null 2>&1 || [ $? -lt 2 ]
for f in sessions.csv failures.csv summary.csv anomalies.csv inputs.csv; do
  if ! cmp -s "$RUNS/samples-j1/$f" "$RUNS/check/$f"; then
    echo "build-pgo.sh: $f of the samples differs between the instrumented and the PGO build" >&2
    exit 1
  fi
done
log "the PGO build's reports on the samples equal the instrumented build's"
echo "$BIN"
