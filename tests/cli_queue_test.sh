#!/usr/bin/env bash
# cli_queue_test.sh IPCKIT CLI_PEER — `ipckit put/get/gc/watch/rm` against a
# live peer (cli_peer): round trips both ways, type refusal, timeouts and
# their exit statuses, gc sparing what is in use, JSON that parses.
# Runs in a private segment directory, so gc never sees anyone else's.
set -euo pipefail

ipckit=${1:?usage: cli_queue_test.sh path/to/ipckit path/to/cli_peer}
peer=${2:?usage: cli_queue_test.sh path/to/ipckit path/to/cli_peer}
IPCKIT_SHM_DIR=$(mktemp -d /dev/shm/ipckit_cli_queue_test.XXXXXX)
export IPCKIT_SHM_DIR
failures=0
peer_pid=
cleanup() {
  if [[ -n "$peer_pid" ]]; then kill "$peer_pid" 2>/dev/null || true; fi
  rm -rf -- "$IPCKIT_SHM_DIR"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

# check WHAT EXPECTED_STATUS COMMAND... : the command's exit status.
check_status() {
  local what=$1 want=$2 rc=0
  shift 2
  "$@" >/dev/null 2>&1 || rc=$?
  [[ $rc -eq $want ]] && ok "$what -> $rc" || fail "$what: exit status $rc, expected $want"
}

json_ok() { python3 -c "import json, sys; json.loads(sys.stdin.buffer.read().decode('utf-8'))"; }

# The peer makes segment "live" and keeps it mapped while its stdin is open.
coproc PEER { exec "$peer" make live; }
peer_pid=$PEER_PID
read -r -t 30 line <&"${PEER[0]}" || true
[[ "${line:-}" == ready ]] || { echo "FAIL: the peer did not start" >&2; exit 1; }

# Shell -> peer: the peer reads what put wrote, in order.
"$ipckit" put live jobs one
"$ipckit" put live jobs $'two\twith tab'
got=$("$peer" get live jobs 2)
[[ "$got" == $'one\ntwo\twith tab' ]] && ok "put -> another process gets it" || fail "peer got: $got"

# Peer -> shell: get prints one line per item, control characters escaped.
"$peer" put live jobs a $'b\e[31mred\nline' c
out=$("$ipckit" get live jobs --count 3 --timeout 10)
[[ "$out" == $'a\nb\\x1b[31mred\\nline\nc' ]] && ok "get escapes control characters, one line each" ||
  fail "get printed: $(printf %q "$out")"

# Timeouts: an empty queue (3), a full one (jobs holds 3 items: 4).
check_status "get --timeout on an empty queue" 3 "$ipckit" get live jobs --timeout 0.2
"$peer" put live jobs x y z
check_status "put --timeout on a full queue" 4 "$ipckit" put live jobs w --timeout 0.2
check_status "get --count 5 of 3" 3 "$ipckit" get live jobs --count 5 --timeout 0.2

# --count 0 drains until the timeout, exit 0; JSON items are strings.
"$peer" put live jobs p q
if "$ipckit" get live jobs --count 0 --timeout 0.2 --json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
assert doc["items"] == ["p", "q"] and doc["type"] == "string" and doc["encoding"] == "utf-8", doc
assert doc["complete"] is True, doc
'; then ok "get --count 0 --json drains"; else fail "get --count 0 --json"; fi

# A byte queue: raw bytes in, base64 in JSON.
"$ipckit" put live raw $'\x01\xffab'
if "$ipckit" get live raw --json | python3 -c '
import base64, json, sys
doc = json.load(sys.stdin)
assert doc["encoding"] == "base64" and base64.b64decode(doc["items"][0]) == b"\x01\xffab", doc
'; then ok "byte queue round trip, base64 in JSON"; else fail "byte queue JSON"; fi

# A joinable queue: its item is marked done once printed.
"$ipckit" put live tasks job1
[[ "$("$ipckit" get live tasks)" == job1 ]] && ok "joinable queue get" || fail "joinable queue get"
"$ipckit" inspect --json live tasks | python3 -c '
import json, sys
o = json.load(sys.stdin)["objects"][0]
assert o["state"]["unfinished"] == 0, o' && ok "get marks a joinable item done" || fail "joinable item not done"

# Refusals: a queue of int (named with its type), a missing queue, a missing segment.
err=$("$ipckit" put live ints 5 2>&1 >/dev/null) || true
[[ "$err" == *"'ints'"*"int"* ]] && ok "a queue of int is refused: $err" || fail "int queue: $err"
check_status "put into a queue of int" 1 "$ipckit" put live ints 5
check_status "get from a missing queue" 1 "$ipckit" get live nope --timeout 0
check_status "put into a missing segment" 1 "$ipckit" put nothere jobs x
check_status "get --count -1" 2 "$ipckit" get live jobs --count -1

# watch in a pipe: plain snapshots, no escape sequences.
out=$("$ipckit" watch live --count 2 --interval 0.1)
if [[ "$out" != *$'\e'* && $(grep -c "^segment 'live'" <<<"$out") -eq 2 && "$out" == *jobs* ]]; then
  ok "watch --count 2 in a pipe: two plain snapshots"
else
  fail "watch output: $(printf %q "$out")"
fi
"$ipckit" watch live jobs --count 2 --interval 0.1 --json | python3 -c '
import json, sys
docs = [json.loads(l) for l in sys.stdin if l.strip()]
assert len(docs) == 2 and docs[0]["objects"][0]["name"] == "jobs", docs
assert "rate_per_second" in docs[1]["objects"][0], docs[1]' && ok "watch --json: one document per line" ||
  fail "watch --json"

# gc: spares "live" (mapped by the peer) and "fresh" (just made, creator gone),
# removes "stale" (creator gone, nobody maps it, older than the grace).
"$peer" make fresh </dev/null >/dev/null
"$peer" make stale </dev/null >/dev/null

gc_json=$("$ipckit" gc --dry-run --json --grace 5)
json_ok <<<"$gc_json" && ok "gc --json parses" || fail "gc --json: $gc_json"
sleep 3.2
# "stale" was made over 3 s ago: grace 3 makes it old enough, "fresh" is
# recreated now so that it is younger than that.
"$ipckit" rm fresh
"$peer" make fresh </dev/null >/dev/null
if "$ipckit" gc --json --grace 3 | python3 -c '
import json, sys
doc = json.load(sys.stdin)
act = {s["name"]: s for s in doc["segments"]}
assert act["live"]["action"] == "keep" and act["live"]["mapped_by"], act["live"]
assert act["fresh"]["action"] == "keep" and "too young" in act["fresh"]["reason"], act["fresh"]
assert act["stale"]["action"] == "removed", act["stale"]
assert doc["dry_run"] is False and doc["grace_seconds"] == 3, doc
'; then ok "gc spares a segment in use and a fresh one, removes a stale one"; else fail "gc decisions"; fi
[[ -e "$IPCKIT_SHM_DIR/ipckit.live" && -e "$IPCKIT_SHM_DIR/ipckit.fresh" && ! -e "$IPCKIT_SHM_DIR/ipckit.stale" ]] &&
  ok "gc removed only the stale file" || fail "gc files: $(ls "$IPCKIT_SHM_DIR")"

# rm of several, one missing: the others go, exit 1, JSON says which.
"$peer" make r1 </dev/null >/dev/null
"$peer" make r2 </dev/null >/dev/null
rc=0
rm_json=$("$ipckit" rm --json r1 r2 r3) || rc=$?
if [[ $rc -eq 1 ]] && python3 -c '
import json, sys
doc = json.loads(sys.argv[1])
assert [r["result"] for r in doc["removed"]] == ["removed", "removed", "missing"], doc
' "$rm_json" && [[ ! -e "$IPCKIT_SHM_DIR/ipckit.r1" && ! -e "$IPCKIT_SHM_DIR/ipckit.r2" ]]; then
  ok "rm of several, one missing"
else
  fail "rm of several: $rc $rm_json"
fi

# bench runs the script it finds, passing the arguments on; a clear error without one.
fake="$IPCKIT_SHM_DIR/fake_bench.sh"
printf '#!/usr/bin/env bash\necho "bench args: $*"\n' >"$fake"
out=$(IPCKIT_BENCH_SCRIPT="$fake" "$ipckit" bench lock --strict)
[[ "$out" == "bench args: lock --strict" ]] && ok "bench passes its arguments on" || fail "bench printed: $out"
err=$(IPCKIT_BENCH_SCRIPT=/nonexistent/bench.sh "$ipckit" bench 2>&1 >/dev/null) || true
if [[ "$err" == "ipckit: bench: scripts/bench.sh not found"*"IPCKIT_BENCH_SCRIPT"* ]]; then
  ok "bench without a script: $err"
else
  fail "bench without a script: $err"
fi
check_status "bench without a script" 1 env IPCKIT_BENCH_SCRIPT=/nonexistent/bench.sh "$ipckit" bench

# doctor: a dead lock holder and a world-accessible segment, each with a fix; exit status 5.
"$peer" make sick </dev/null >/dev/null
"$peer" lockdie sick
"$peer" world open
rc=0
doc=$("$ipckit" doctor --json) || rc=$?
if [[ $rc -eq 5 ]] && python3 -c '
import json, sys
doc = json.loads(sys.argv[1])
f = {(x["segment"], x["check"]): x for x in doc["findings"]}
assert ("sick", "dead_lock_holder") in f and f[("sick", "dead_lock_holder")]["object"] == "A", doc
assert ("open", "world_accessible") in f and f[("open", "world_accessible")]["fix"], doc
assert ("live", "dead_lock_holder") not in f, doc
' "$doc"; then ok "doctor finds a dead lock holder and a world-accessible segment (exit 5)"; else
  fail "doctor: $rc $doc"
fi
out=$("$ipckit" doctor sick 2>&1) || true
[[ "$out" == *"lock 'A'"*"dead"*"fix: "* ]] && ok "doctor's text has a fix per finding" || fail "doctor text: $out"
check_status "doctor of a healthy segment" 0 "$ipckit" doctor live
check_status "doctor of a missing segment" 1 "$ipckit" doctor nothere

# --help on every command.
for c in ls inspect rm gc put get watch bench doctor; do
  "$ipckit" "$c" --help >/dev/null || fail "$c --help"
done
"$ipckit" --help | grep -q "^Exit status: 0 ok" && ok "--help documents the exit statuses" ||
  fail "--help exit statuses"

exec {PEER[1]}>&-
wait "$peer_pid" || true
peer_pid=
if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all queue/gc CLI checks passed"
