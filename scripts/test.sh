#!/usr/bin/env bash
# scripts/test.sh — installs dependencies, builds ipckit in build/ and runs
# every test with ctest. Extra arguments go to ctest (e.g. -R lock, -V).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${IPCKIT_BUILD_TYPE:-RelWithDebInfo}"
ninja -C build
ctest --test-dir build --output-on-failure -j2 "$@"
