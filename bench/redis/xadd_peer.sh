#!/usr/bin/env bash
# bench/redis/xadd_peer.sh — redis-benchmark's XADD on one connection, the
# floor of what any Redis Streams transport can do on this server: one
# client unpipelined (a round trip per entry) and pipelined 16 deep. The
# entry carries one 64-byte field, the size of the Redis Queue<64-byte
# struct> row it is compared with.
#
#   bench/redis/xadd_peer.sh --port PORT [--host 127.0.0.1] [--requests 200000] [--runs 3]
#
# Prints each run, then (medians over runs, min and max beside them):
#   RESULT redis_xadd_c1 <ops/s> ops_per_s min=<> max=<>
#   RESULT redis_xadd_c1_p16 <ops/s> ops_per_s min=<> max=<>
#   RESULT redis_xadd_c1_p50 <us> us min=<> max=<>   (unpipelined round trip, 1 us steps)
# The stream (key ipckit-bench-xadd) is deleted before each run and at the end.
set -euo pipefail

host=127.0.0.1 port="" requests=200000 runs=3
while (($#)); do
  case $1 in
    --host) host=$2; shift ;;
    --port) port=$2; shift ;;
    --requests | -n) requests=$2; shift ;;
    --runs | -r) runs=$2; shift ;;
    *) echo "xadd_peer.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $port ]] || { echo "xadd_peer.sh: --port is required" >&2; exit 2; }
for tool in redis-benchmark redis-cli; do
  command -v $tool >/dev/null || { echo "xadd_peer.sh: $tool not found (scripts/setup.sh --bench-redis)" >&2; exit 1; }
done

key=ipckit-bench-xadd
value=$(printf 'x%.0s' {1..64})
cli=(redis-cli -h "$host" -p "$port")

# xadd PIPELINE: one redis-benchmark run; prints "rps p50_us".
xadd() {
  "${cli[@]}" DEL "$key" >/dev/null
  redis-benchmark -h "$host" -p "$port" -c 1 -n "$requests" -P "$1" --csv XADD "$key" '*' d "$value" |
    awk -F, 'NR == 2 { gsub(/"/, "", $2); gsub(/"/, "", $5); printf "%s %.0f\n", $2, $5 * 1000 }'
}

declare -a c1=() p16=() lat=()
for ((run = 1; run <= runs; run++)); do
  read -r rps p50 < <(xadd 1)
  read -r rps16 _ < <(xadd 16)
  [[ -n $rps && -n $rps16 ]] || { echo "xadd_peer.sh: redis-benchmark printed no figure" >&2; exit 1; }
  printf 'run %d: XADD %d entries, 1 client: %s ops/s (p50 %s us); pipelined 16: %s ops/s\n' \
    "$run" "$requests" "$rps" "$p50" "$rps16"
  c1+=("$rps") p16+=("$rps16") lat+=("$p50")
done
"${cli[@]}" DEL "$key" >/dev/null

# result ROW UNIT VALUES...: the median, min and max of VALUES.
result() {
  local row=$1 unit=$2
  shift 2
  printf '%s\n' "$@" | sort -g | awk -v row="$row" -v unit="$unit" \
    '{ v[NR] = $1 } END { printf "RESULT %s %.6g %s min=%.6g max=%.6g\n", row, v[int((NR + 1) / 2)], unit, v[1], v[NR] }'
}
result redis_xadd_c1 ops_per_s "${c1[@]}"
result redis_xadd_c1_p16 ops_per_s "${p16[@]}"
result redis_xadd_c1_p50 us "${lat[@]}"
