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

# Names planted in /dev/shm by any local user: a newline that would forge a
# row, terminal escapes, a C1 control, bytes that are not UTF-8. `ls` shows
# one line per segment with every such byte escaped, and valid JSON.
planted=()
cleanup() {
  local p
  for p in "${planted[@]}"; do rm -f -- "$p"; done
  if [[ -n "${holder_pid:-}" ]]; then kill "$holder_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
tag="ipckit_cli_test_evil_$$"
for evil in $'nl\nFORGED  1.0 MiB' $'esc\e[31mred\e]0;title\a' $'c1\xc2\x9b' $'bad\xc0\xaf\xed\xa0\x80\xff'; do
  path="/dev/shm/ipckit.${tag}_$evil"
  planted+=("$path")
  printf 'not a segment' >"$path"
done
ls_out=$("$ipckit" ls 2>&1) || fail "ls with planted names"
if LS_OUT="$ls_out" TAG="$tag" python3 -c '
import os, sys
text = os.environb[b"LS_OUT"].decode("utf-8")   # strict: valid UTF-8 only
bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
assert not bad, "raw control characters: %r" % bad
lines = text.split("\n")
mine = [l for l in lines if os.environ["TAG"] in l]
assert len(mine) == 4, "expected one line per planted segment, got %r" % mine
assert not any(l.startswith("FORGED") for l in lines), "a forged row"
'; then
  echo "ok: ls escapes planted names, one line each"
else
  fail "ls printed planted names raw: $ls_out"
fi
if "$ipckit" ls --json | TAG="$tag" python3 -c '
import json, os, sys
doc = json.loads(sys.stdin.buffer.read().decode("utf-8"))
names = sorted(s["name"][len(os.environ["TAG"]) + 1:] for s in doc["segments"] if s["name"].startswith(os.environ["TAG"]))
assert len(names) == 4, names
assert "nl\nFORGED  1.0 MiB" in names and "esc\x1b[31mred\x1b]0;title\x07" in names and "c1\x9b" in names, names
bad = [n for n in names if n.startswith("bad")][0]
assert set(bad[3:]) == {"\ufffd"}, repr(bad)
'; then
  echo "ok: ls --json is valid UTF-8 JSON with planted names"
else
  fail "ls --json with planted names"
fi

# A segment file that someone holds a lock on (a stopped creator, or any
# user who can open it) must not stall the listing of the others.
locked="ipckit_cli_test_locked_$$"
planted+=("/dev/shm/ipckit.$locked")
: >"/dev/shm/ipckit.$locked"
# One process holds the lock (sleep, after exec), with no inherited output
# for ctest to wait on; cleanup() kills it.
(
  exec 9<>"/dev/shm/ipckit.$locked"
  flock 9
  exec sleep 120
) </dev/null >/dev/null 2>&1 &
holder_pid=$!
for _ in $(seq 50); do
  flock -n "/dev/shm/ipckit.$locked" true 2>/dev/null || break
  sleep 0.1
done
start=$(date +%s)
ls_rc=0
ls_out=$(timeout 40 "$ipckit" ls 2>&1) || ls_rc=$?
elapsed=$(($(date +%s) - start))
if [[ $ls_rc -eq 0 && $elapsed -le 15 ]] && grep -q "^$locked  *error: " <<<"$ls_out"; then
  echo "ok: ls lists a locked segment as unreadable within ${elapsed}s"
else
  fail "ls with a locked segment file: exit $ls_rc after ${elapsed}s: $ls_out"
fi

rc=0
"$ipckit" >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] && echo "ok: no subcommand -> 2" || fail "no subcommand: exit status $rc, expected 2"

if ((failures > 0)); then
  echo "$failures CLI check(s) failed" >&2
  exit 1
fi
echo "all CLI checks passed"
