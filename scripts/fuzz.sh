#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] — libFuzzer campaign over segment bytes and queue records.
#
# Builds the fuzz targets of tests/fuzz (clang-14, libFuzzer, ASan+UBSan) in
# build-fuzz/ and runs each for SECONDS (default 30) on a copy of its
# committed seed corpus (tests/fuzz/corpus/<target>/; what the run adds is
# thrown away). A crash, a sanitizer report, an ipckit promise broken
# (==ipckit-fuzz== FINDING), an exception other than ipckit::Error, or an
# input running longer than FUZZ_TIMEOUT seconds (a hang) is a finding: the
# input is kept under FUZZ_FINDINGS and the script exits 1.
#
#   scripts/fuzz.sh              # 30 s per target, stops a target at its first finding
#   scripts/fuzz.sh 600          # a longer campaign
#   FUZZ_KEEP_GOING=1 scripts/fuzz.sh 300   # libFuzzer -fork=1: collect every finding
#   build-fuzz/tests/fuzz/fuzz_live_corruption FILE   # replay one input
#
# Environment:
#   FUZZ_TARGETS="fuzz_open_segment fuzz_live_corruption fuzz_decode"  which targets
#   FUZZ_TIMEOUT=15        seconds one input may take
#   FUZZ_RSS_MB=2048       memory limit (-rss_limit_mb)
#   FUZZ_BUILD_DIR=build-fuzz
#   FUZZ_FINDINGS=$FUZZ_BUILD_DIR/findings   where finding inputs and logs go
#   FUZZ_KEEP_GOING=1      go on after a finding (fork mode), to list them all
#   IPCKIT_FUZZ_NO_ORACLES=1  skip the harness's semantic checks (crashes only)
#   FUZZ_SKIP_SETUP=1 / FUZZ_SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

DURATION=${1:-30}
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
# Longer than the library's own longest bounded wait (5 s for the directory
# lock of a segment, which a forged lock word makes it wait for).
TIMEOUT=${FUZZ_TIMEOUT:-15}
RSS_MB=${FUZZ_RSS_MB:-2048}
FINDINGS=${FUZZ_FINDINGS:-$BUILD_DIR/findings}
read -r -a TARGETS <<<"${FUZZ_TARGETS:-fuzz_open_segment fuzz_live_corruption fuzz_decode}"

if [[ -z ${FUZZ_SKIP_SETUP:-} ]]; then
  scripts/setup.sh --fuzz
fi
if [[ -z ${FUZZ_SKIP_BUILD:-} ]]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DIPCKIT_FUZZ=ON -DIPCKIT_SANITIZE=address,undefined \
    -DIPCKIT_BUILD_TESTS=OFF -DIPCKIT_BUILD_DEMOS=OFF -DIPCKIT_BUILD_BENCH=OFF >/dev/null
  ninja -C "$BUILD_DIR" "${TARGETS[@]}"
fi

mkdir -p "$FINDINGS"
FINDINGS=$(cd "$FINDINGS" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ipckit-fuzz.XXXXXX")
cleanup() {
  rm -rf "$WORK"
  # Segment files of fuzz processes that are gone (a crash skips their cleanup).
  local f pid
  for f in /dev/shm/ipckit.fuzz.*; do
    [[ -e $f ]] || continue
    pid=${f#/dev/shm/ipckit.fuzz.}
    pid=${pid%%.*}
    [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null && rm -f "$f"
  done
  return 0
}
trap cleanup EXIT

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$symbolizer}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:handle_abort=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

declare -A EXECS=() FOUND=()
status=0
for target in "${TARGETS[@]}"; do
  bin="$ROOT/$BUILD_DIR/tests/fuzz/$target"
  corpus="$WORK/$target"
  mkdir -p "$corpus"
  cp "$ROOT/tests/fuzz/corpus/$target/"* "$corpus/"
  args=(-max_total_time="$DURATION" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" -print_final_stats=1
        -artifact_prefix="$FINDINGS/$target-")
  [[ -f $ROOT/tests/fuzz/$target.dict ]] && args+=(-dict="$ROOT/tests/fuzz/$target.dict")
  if [[ -n ${FUZZ_KEEP_GOING:-} && ${FUZZ_KEEP_GOING} != 0 ]]; then
    args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  log="$FINDINGS/$target.log"
  before=$(find "$FINDINGS" -maxdepth 1 -name "$target-*" -type f | wc -l)
  printf '\n=== %s: %s s (timeout %s s per input) ===\n' "$target" "$DURATION" "$TIMEOUT"
  rc=0
  (cd "$WORK" && "$bin" "${args[@]}" "$corpus") >"$log" 2>&1 || rc=$?
  grep -E '^#[0-9]+.*(pulse|DONE|NEW)|INFO: (Loaded|seed corpus)|^Done |stat::number_of_executed_units|ERROR|FINDING|SUMMARY|Test unit written' "$log" |
    grep -v ' NEW ' | tail -n 25 || true
  # Executions: the final stats line, or (fork mode) the last status line.
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  [[ -n $execs ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  EXECS[$target]=${execs:-0}
  after=$(find "$FINDINGS" -maxdepth 1 -name "$target-*" -type f | wc -l)
  FOUND[$target]=$((after - before))
  if ((rc != 0 || after > before)); then
    status=1
    echo "fuzz.sh: $target: FINDING (exit status $rc); inputs in $FINDINGS/$target-*, log $log"
  fi
done

echo
echo "=== fuzz summary (${DURATION} s per target) ==="
for target in "${TARGETS[@]}"; do
  printf '  %-24s %12s executions  %s finding input(s)\n' "$target" "${EXECS[$target]}" "${FOUND[$target]}"
done
if ((status)); then
  echo "fuzz.sh: FINDINGS — replay one with: $BUILD_DIR/tests/fuzz/<target> <input>"
else
  echo "fuzz.sh: no findings"
fi
exit $status
