#!/usr/bin/env bash
# scripts/demo.sh — builds and runs the counter demo: 8 worker processes
# increment one shared counter under a crash-safe Lock. Arguments replace the
# defaults (try: scripts/demo.sh --workers 4 --no-lock).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${IPCKIT_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
ninja -C build counter
if (($# == 0)); then
  set -- --workers 8
fi
exec build/demos/counter "$@"
