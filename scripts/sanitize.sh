#!/usr/bin/env bash
# scripts/sanitize.sh asan|tsan [gtest/ctest arguments] — the test suite
# under the sanitizers, each in its own build directory.
#
#   asan  build-asan: ASan+UBSan (-DIPCKIT_SANITIZE=address,undefined), the
#         whole suite through ctest (each test with its ctest deadline);
#         any sanitizer report fails the test that made it.
#   tsan  build-tsan: ThreadSanitizer, the tests whose concurrency is threads
#         of one process (TSAN_FILTER). TSan cannot see synchronisation done
#         by another process through shared memory, so multi-process tests
#         would report false races: they are left to asan and the plain run.
#
# Extra arguments go to ctest (asan: e.g. -R Lock) or to the test binary
# (tsan: e.g. --gtest_repeat=3). Demos and benchmarks are not built (no test
# needs them). Environment: IPCKIT_SANITIZE_JOBS (default: nproc) for ctest -j,
# TSAN_FILTER to replace the selection below.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Threads-only tests: every test with "Thread" in its name but those whose
# name says other processes take part, and the threads-only tests named
# otherwise. (When adding a threads-only test, put "Thread" in its name.)
# Also the pool tests (but the long kill storms): their workers are other
# processes, but what TSan checks there is the submitting process's threads —
# the collector, the threads waiting on futures, done callbacks — sharing
# FutureStates and the slot tables.
DEFAULT_TSAN_FILTER='*Thread*:Lock.UnlockByANonOwnerThrowsNotOwner:Condition.TimedWaitWithoutANotificationReturnsFalseAfterAtLeastTheTimeoutHoldingTheLock'
DEFAULT_TSAN_FILTER+=':Pool*:NamedPool*'
DEFAULT_TSAN_REDIS_FILTER='RedisThreads*:RedisPool.WorkersRun*'  # workers forked before any thread: TSan cannot follow a fork from threads
DEFAULT_TSAN_FILTER+='-Process.*:*Processes*:*AnotherProcess*:*EveryProcess*:*OtherProcess*:*ProcessOr*:*KillStorm*'

configure() {  # DIR SANITIZERS
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIPCKIT_SANITIZE="$2" \
    -DIPCKIT_BUILD_DEMOS=OFF -DIPCKIT_BUILD_BENCH=OFF >/dev/null
}

stage_asan() {
  configure build-asan address,undefined
  ninja -C build-asan
  # halt_on_error: a UBSan report fails the test instead of scrolling by.
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  ctest --test-dir build-asan --output-on-failure -j"${IPCKIT_SANITIZE_JOBS:-$(nproc)}" "$@"
}

stage_tsan() {
  configure build-tsan thread
  ninja -C build-tsan ipckit_tests
  local filter=${TSAN_FILTER:-$DEFAULT_TSAN_FILTER}
  # die_after_fork=0: some of these tests fork (a child that only calls
  # _exit or exec) while threads run; TSan would otherwise kill the child.
  export TSAN_OPTIONS=${TSAN_OPTIONS:-die_after_fork=0:halt_on_error=1:second_deadlock_stack=1}
  echo "sanitize.sh tsan: tests selected by --gtest_filter=$filter:"
  build-tsan/tests/ipckit_tests --gtest_filter="$filter" --gtest_list_tests | sed 's/^/  /'
  build-tsan/tests/ipckit_tests --gtest_filter="$filter" "$@"
  # The Redis transport's threads (a shared handle, the pool client's sender
  # and collector), when it is built: each test starts its own redis-server.
  if ninja -C build-tsan -t targets all 2>/dev/null | grep '^ipckit_redis_tests:' >/dev/null; then  # not -q: pipefail
    ninja -C build-tsan ipckit_redis_tests
    local redis_filter=${TSAN_REDIS_FILTER:-$DEFAULT_TSAN_REDIS_FILTER}
    echo "sanitize.sh tsan: Redis tests selected by --gtest_filter=$redis_filter"
    build-tsan/tests/redis/ipckit_redis_tests --gtest_filter="$redis_filter" "$@"
  fi
}

case ${1:-} in
  asan|tsan)
    stage=$1
    shift
    scripts/setup.sh
    "stage_$stage" "$@"
    ;;
  *)
    echo "usage: scripts/sanitize.sh asan|tsan [arguments for ctest (asan) or the test binary (tsan)]" >&2
    exit 2
    ;;
esac
