#!/usr/bin/env bash
# scripts/soak.sh [SECONDS] [ipckit_soak options] — the soak test (not in CI).
#
# Builds ipckit_soak (build/, like scripts/test.sh) and runs it for SECONDS
# (default 60): 4 producers and 4 consumers on a JoinableQueue, 2 lock users
# on a counter, condition waiters and a notifier, while a supervisor SIGKILLs
# and SIGSTOPs random workers and restarts the killed. It then checks that
# every confirmed put was received exactly once, the counter is exact, and
# throughput and each process's memory stayed flat from the first to the last
# 10 s, and prints a summary ending in PASS or FAIL (exit status 0 / 1).
# tests/soak/soak.cpp explains each check. Options: --seed N (replay a run's
# fault schedule, as far as timing allows), --fault-ms MS (mean gap between
# faults, default 80).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-60}
(($# > 0)) && shift
scripts/setup.sh >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${IPCKIT_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
ninja -C build ipckit_soak
exec build/tests/soak/ipckit_soak --seconds "$seconds" "$@"
