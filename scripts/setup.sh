#!/usr/bin/env bash
# scripts/setup.sh — installs the Debian packages ipckit needs to build, test
# and run its demos. Idempotent: when everything is present it only checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  cmake ninja-build g++
  libboost-dev libcereal-dev libgtest-dev libcli11-dev nlohmann-json3-dev
  libsqlite3-dev
  python3
  # The Redis transport (src/redis): hiredis to build it, a redis-server that
  # its tests start on a free loopback port, pkg-config to find hiredis.
  redis-server libhiredis-dev pkg-config
)

# `setup.sh --fuzz`: also what scripts/fuzz.sh needs (clang-14's libFuzzer
# and sanitizer runtimes, llvm-symbolizer for readable stacks). Kept apart
# so that the default path installs and checks no more than before.
fuzz_packages=(clang-14 libclang-rt-14-dev llvm-14)
# `setup.sh --lint`: what scripts/lint.sh runs.
lint_packages=(clang-format-14 clang-tidy-14)
# `setup.sh --bench-redis`: the peers of scripts/bench.sh's redis section
# (Celery and RQ on Debian's python3, redis-benchmark from redis-tools).
bench_redis_packages=(python3-celery python3-rq python3-redis redis-tools)
for arg in "$@"; do
  case $arg in
    --fuzz) packages+=("${fuzz_packages[@]}") ;;
    --lint) packages+=("${lint_packages[@]}") ;;
    --bench-redis) packages+=("${bench_redis_packages[@]}") ;;
    *) echo "setup: unknown option $arg (known: --fuzz, --lint, --bench-redis)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi

echo "setup: all ${#packages[@]} build dependencies are installed"
