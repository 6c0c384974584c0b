#!/usr/bin/env bash
# cli_test.sh IPCKIT — checks the `ipckit` CLI's listings and its errors.
set -euo pipefail

ipckit=${1:?usage: cli_test.sh path/to/ipckit}
missing="ipckit_cli_test_missing_$$"
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect_error WHAT COMMAND... : must exit 1 with one "ipckit: ..." line naming the segment.
expect_error() {
  local what=$1
  shift
  local err rc=0
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  if [[ $rc -ne 1 ]]; then
    fail "$what: exit status $rc, expected 1 (stderr: $err)"
  elif [[ "$err" != "ipckit: "* ]]; then
    fail "$what: stderr does not start with 'ipckit: ': $err"
  elif [[ "$err" != *"$missing"* ]]; then
    fail "$what: the message does not name the segment: $err"
  else
    echo "ok: $what -> $err"
  fi
}

"$ipckit" --help >/dev/null || fail "--help"
"$ipckit" ls >/dev/null || fail "ls"
if out=$("$ipckit" ls --json) && python3 -c '
import json, sys
doc = json.load(sys.stdin)
assert isinstance(doc["segments"], list), doc
' <<<"$out"; then
  echo "ok: ls --json is valid JSON"
else
  fail "ls --json did not print valid JSON: $out"
fi

expect_error "rm of a missing segment" "$ipckit" rm "$missing"
expect_error "inspect of a missing segment" "$ipckit" inspect "$missing"
expect_error "inspect --json of a missing segment" "$ipckit" inspect --json "$missing"
if "$ipckit" rm -f "$missing"; then echo "ok: rm -f of a missing segment"; else fail "rm -f of a missing segment"; fi

rc=0
"$ipckit" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] && echo "ok: no subcommand -> 2" || fail "no subcommand: exit status $rc, expected 2"

if ((failures > 0)); then
  echo "$failures CLI check(s) failed" >&2
  exit 1
fi
echo "all CLI checks passed"
