#!/usr/bin/env bash
# Coverage-guided fuzzing of one target (fuzz/fuzz_targets/TARGET.rs) with
# cargo-fuzz/libFuzzer on the stable compiler (RUSTC_BOOTSTRAP=1):
#   scripts/fuzz.sh TARGET [SECONDS] [RUNS]  (default 60 s; RUNS caps the
#                                            executions, e.g. 10000000)
#   scripts/fuzz.sh all [SECONDS]            (every target at the same time,
#                                            one build; what CI runs)
#   scripts/fuzz.sh list                     (the targets)
# Seeds are built at run time (fuzz/seeds.py) from samples/ and the public
# corpus (SIPAUDIT_CORPUS, default ../shared/corpus/public) into
# fuzz/corpus/TARGET, which also keeps what the fuzzer finds; neither is
# committed. Limits: 1 s per input (a hang; SIPAUDIT_FUZZ_TIMEOUT=S for long
# runs on a busy machine, where a starved run looks like a hang), 256 MB RSS
# (an oom). Crashers
# land in fuzz/artifacts/TARGET/. Prints one line per target: executions,
# wall time, coverage (cov = edges, ft = features) and crashers. Scratch
# files of the capture and pipeline targets go to SIPAUDIT_FUZZ_TMP
# (default /dev/shm when it exists). Needs `cargo install cargo-fuzz` and
# python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
self="$root/scripts/fuzz.sh"
cd "$root/fuzz"
targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' Cargo.toml | grep -v sipaudit-fuzz)
target=${1:?usage: scripts/fuzz.sh TARGET|all|list [SECONDS] [RUNS]}
secs=${2:-60}
runs=${3:-0}
if [ "$target" = list ]; then echo "$targets"; exit 0; fi
export RUSTC_BOOTSTRAP=1
if [ -z "${SIPAUDIT_FUZZ_TMP:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export SIPAUDIT_FUZZ_TMP=/dev/shm
fi

if [ "$target" = all ]; then
  # One build, then every target at once, each for SECONDS of wall time.
  cargo fuzz build --sanitizer none >/dev/null
  logs=$(mktemp -d)
  pids=()
  for t in $targets; do
    "$self" "$t" "$secs" "$runs" >"$logs/$t" 2>&1 &
    pids+=($!)
  done
  status=0
  for p in "${pids[@]}"; do wait "$p" || status=1; done
  for t in $targets; do
    grep -E '^fuzz |ERROR|SUMMARY' "$logs/$t" || { echo "fuzz $t: no result"; tail -5 "$logs/$t"; status=1; }
  done
  rm -rf "$logs"
  exit "$status"
fi

echo "$targets" | grep -qx "$target" || { echo "unknown target $target; one of:" $targets >&2; exit 2; }
corpus_dir=${SIPAUDIT_CORPUS:-../shared/corpus/public}
case $corpus_dir in /*) ;; *) corpus_dir="$root/$corpus_dir" ;; esac
captures=$(find "$root/samples" -name 'capture.*' -type f; [ -d "$corpus_dir" ] && find "$corpus_dir" -type f ! -name '*.md' || true)
mkdir -p "corpus/$target" "artifacts/$target"
# shellcheck disable=SC2086
python3 seeds.py "$target" "corpus/$target" $captures
case $target in
  capture|pipeline|decode) max_len=262144 ;;
  *) max_len=65536 ;;
esac
log=$(mktemp)
start=$(date +%s)
set +e
cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
  -max_total_time="$secs" -runs="$((runs > 0 ? runs : -1))" -timeout="${SIPAUDIT_FUZZ_TIMEOUT:-1}" -rss_limit_mb=256 -malloc_limit_mb=256 \
  -max_len="$max_len" -print_final_stats=1 -close_fd_mask=3 -artifact_prefix="artifacts/$target/" 2>&1 \
  | tee "$log" | grep -E '^#[0-9]+\s+(INITED|DONE)|ERROR|SUMMARY|Test unit written'
status=${PIPESTATUS[0]}
set -e
wall=$(( $(date +%s) - start ))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
if [ "$status" != 0 ] && ! grep -q 'Test unit written' "$log"; then tail -20 "$log"; fi
crashes=$(find "artifacts/$target" -type f | wc -l)
echo "fuzz $target: ${execs:-?} executions in ${wall} s (build included), ${cov:-no coverage line}, exit $status, ${crashes} crasher(s) in fuzz/artifacts/$target"
rm -f "$log"
exit "$status"
