#!/usr/bin/env bash
# scripts/lint.sh — ipckit's style and static checks (a stage of .ci/run).
#
#   scripts/lint.sh              # every C++ file of the tree
#   scripts/lint.sh --changed    # only the files changed since LINT_BASE (default: HEAD~1) and uncommitted ones
#
# 1. No line over 120 columns.
# 2. clang-format (.clang-format) would change nothing.
# 3. clang-tidy (.clang-tidy: bugprone, concurrency, performance, readability
#    basics) finds nothing in the library's and the CLI's sources; headers are
#    checked through them.
# Needs clang-format-14 and clang-tidy-14 (scripts/setup.sh --lint).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh --lint >/dev/null

mode=all
[[ ${1:-} == --changed ]] && mode=changed

cxx_files() {
  if [[ $mode == changed ]]; then
    { git diff --name-only "${LINT_BASE:-HEAD~1}" --; git ls-files --others --exclude-standard; } | sort -u
  else
    git ls-files
  fi | grep -E '\.(cpp|hpp)$' | grep -v '^tests/fuzz/corpus/' | while read -r f; do [[ -f $f ]] && echo "$f"; done
}
mapfile -t files < <(cxx_files)
echo "lint: ${#files[@]} C++ files ($mode)"
((${#files[@]})) || exit 0
status=0

echo "lint: lines over 120 columns"
if awk 'length > 120 { printf "%s:%d: %d columns\n", FILENAME, FNR, length; bad = 1 } END { exit bad }' "${files[@]}"; then
  echo "  none"
else
  status=1
fi

echo "lint: clang-format"
mkdir -p build-lint
clang-format-14 --dry-run -Werror "${files[@]}" >build-lint/format.txt 2>&1 || true
if grep -qE 'warning|error' build-lint/format.txt; then
  grep -E 'warning|error' build-lint/format.txt | head -40
  echo "  (run: clang-format-14 -i FILE)"
  status=1
else
  echo "  clean"
fi

echo "lint: clang-tidy"
mapfile -t sources < <(printf '%s\n' "${files[@]}" | grep -E '^src/.*\.cpp$' || true)
if ((${#sources[@]})); then
  cmake -S . -B build-lint -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DIPCKIT_BUILD_TESTS=OFF \
    -DIPCKIT_BUILD_DEMOS=OFF -DIPCKIT_BUILD_BENCH=OFF >/dev/null
  printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -n 2 clang-tidy-14 -p build-lint --quiet 2>/dev/null |
    grep -E '(warning|error):' | sort -u >build-lint/tidy.txt || true
  if [[ -s build-lint/tidy.txt ]]; then
    cat build-lint/tidy.txt
    status=1
  else
    echo "  clean (${#sources[@]} sources)"
  fi
else
  echo "  no library sources changed"
fi
exit $status
