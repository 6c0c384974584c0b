#!/usr/bin/env bash
# scripts/bench.sh — ipckit's side-by-side benchmarks, with their peers measured
# in the same run, and a summary of ratios against the targets.
#
#   scripts/bench.sh                 # every section
#   scripts/bench.sh lock wake       # only the named sections: lock wake queue pool async redis
#   scripts/bench.sh async           # wake latency of event-loop waiters (wait handles, Asio)
#   scripts/bench.sh --strict lock   # exit 1 when a target is missed
#   scripts/bench.sh --list          # list the sections
#
# Environment:
#   BENCH_RUNS=9              measured runs per C++ row (medians are compared;
#                             one run is ~0.1 s, and contended lock runs are noisy)
#   BENCH_PY_RUNS=5           measured runs of Python's row (each takes seconds)
#   BENCH_ITERATIONS=1000000  increments per process in lock_bench
#   BENCH_PY_ITERATIONS=1000000  increments per process for Python's row (it is
#                             slow: 200000 keeps the run short; incr/s is compared)
#   BENCH_BUILD_DIR=build-bench   where the Release build goes
#   BENCH_SKIP_SETUP=1        do not run scripts/setup.sh first
#   BENCH_SKIP_BUILD=1        use the binaries already in BENCH_BUILD_DIR
#   BENCH_FUTEX=1             also count futex syscalls per increment (root + tracefs)
#                             (wake_bench counts them whenever it can: futex
#                             calls per round trip and per semaphore op)
#   BENCH_WAKE_TRIPS=20000    timed round trips per run in wake_bench's rows
#                             that spin (BENCH_WAKE_SLOW_TRIPS=5000 for the
#                             rows that always sleep: raw futex, Boost)
#   BENCH_PY_WAKE_TRIPS=5000  round trips per run for Python's Event row
#   BENCH_IDLE_RUNS=3         runs of the idle-waiter part (2.35 s each; the
#                             queue section's idle consumers take 2.3 s a run)
#   BENCH_QUEUE_RUNS=5        measured runs per C++ row of the queue section ($BENCH_RUNS if set)
#                             (its two-process rows run twice: unpinned, pinned)
#   BENCH_QUEUE_MESSAGES=500000   64-byte messages per one-way run (queue_bench;
#                             the queue section's sizes keep it near 2-3 min on a
#                             2-CPU VM, with every two-process row run twice)
#   BENCH_QUEUE_REAL_MESSAGES=200000  realistic-object messages per one-way run
#   BENCH_QUEUE_QUIET_MS=300  queue section: before each run, wait up to this
#                             long for idle CPUs
#   BENCH_QUEUE_BIG_MESSAGES=500  1 MiB messages per run
#   BENCH_QUEUE_MPMC_MESSAGES=400000  messages per 4x4 MPMC run (all producers)
#   BENCH_PY_QUEUE_MESSAGES=100000    items per run of Python's one-way row
#   BENCH_PY_QUEUE_REAL_MESSAGES=50000  dicts per run of Python's realistic row
#   BENCH_PY_QUEUE_TRIPS=5000 round trips per run of Python's ping-pong row
#   BENCH_RT=1                queue section: run the measured C++ processes
#                             SCHED_FIFO (root only), so that other programs on
#                             a busy machine do not preempt them (Python's rows
#                             are not affected; two-process rows then run
#                             pinned only, and the unpinned checks show n/a)
#   BENCH_POOL_RUNS=5         measured runs per C++ row of the pool section ($BENCH_RUNS if set)
#   BENCH_POOL_WORKERS=2      workers of every pool (C++ and Python)
#   BENCH_POOL_TASKS=200000   tasks per throughput run of the C++ pools
#   BENCH_POOL_MAP_TASKS=1000000  inputs per map run of the C++ pools
#   BENCH_POOL_CHUNK=64       inputs per chunk of every map row (C++ and Python)
#   BENCH_POOL_TRIPS=20000    timed submit->result round trips per C++ run
#                             (the pool section also uses BENCH_IDLE_RUNS, idle
#                             pools of 1.1 s each, and BENCH_QUEUE_QUIET_MS;
#                             with the defaults it takes ~40 s on a 2-CPU VM)
#   BENCH_PY_POOL_RUNS=3      measured runs of each Python pool row (Python's
#                             process pools do ~5-30 k tasks/s: the sizes below
#                             keep the Python part near 15-30 s)
#   BENCH_PY_POOL_TASKS=20000 tasks per throughput run of Python's pools
#   BENCH_PY_POOL_MAP_TASKS=100000  inputs per map run of Python's pools
#   BENCH_PY_POOL_TRIPS=2000  timed round trips per run of Python's pools
#   BENCH_ASYNC_SAMPLES=20000 async section: one-way wake samples per row (an
#                             item every ~0.1-0.3 ms: ~5 s a row, 4 rows)
#   BENCH_ASYNC_ROUNDS=4      async section: interleaved rounds of every row
#   BENCH_ASYNC_BASELINE=REV  async section: also build queue_bench from git
#                             revision REV (e.g. the commit before the wait
#                             handles) and run its put+get rows in the same run:
#                             the blocking fast path before/after
#   BENCH_REDIS_RUNS=5        redis section: measured runs per row of redis_bench
#                             (the section starts its own redis-server on a free
#                             loopback port, no persistence, stopped at the end)
#   BENCH_REDIS_PEER_RUNS=3   redis section: runs of the XADD and Celery rows
#   BENCH_XADD_REQUESTS=200000  redis-benchmark XADD entries per run (one client,
#                             unpipelined and pipelined 16 deep)
#   BENCH_CELERY_TASKS=2000   Celery: tasks per throughput run (~450-900 tasks/s)
#   BENCH_CELERY_TRIPS=500    Celery: timed submit->result round trips per run
#   BENCH_RQ_RUNS=1           RQ: runs of its rows (RQ forks a process per job)
#   BENCH_RQ_TASKS=200        RQ: jobs per throughput run (~20-150 jobs/s)
#   BENCH_RQ_TRIPS=50         RQ: timed round trips per run
#   BENCH_REDIS_PYTHON=/usr/bin/python3  the Python with python3-celery,
#                             python3-rq and python3-redis (Debian's)
#
# Adding a benchmark: write a `section_NAME` function that runs its programs
# through `run_tool` (which collects their `RESULT <row> <value> <unit> ...`
# lines) and declares its targets with `check`, then add NAME to SECTIONS
# (and a `targets_NAME` that names its build targets; a target followed by
# "?" is optional: built only if the build defines it).
# The summary at the end prints every check of the sections that ran.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

SECTIONS=(lock wake queue pool async redis)

RUNS=${BENCH_RUNS:-9}
PY_RUNS=${BENCH_PY_RUNS:-5}
ITERATIONS=${BENCH_ITERATIONS:-1000000}
PY_ITERATIONS=${BENCH_PY_ITERATIONS:-1000000}
WAKE_TRIPS=${BENCH_WAKE_TRIPS:-20000}
WAKE_SLOW_TRIPS=${BENCH_WAKE_SLOW_TRIPS:-5000}
PY_WAKE_TRIPS=${BENCH_PY_WAKE_TRIPS:-5000}
IDLE_RUNS=${BENCH_IDLE_RUNS:-3}
QUEUE_RUNS=${BENCH_QUEUE_RUNS:-${BENCH_RUNS:-5}}
QUEUE_MESSAGES=${BENCH_QUEUE_MESSAGES:-500000}
QUEUE_REAL_MESSAGES=${BENCH_QUEUE_REAL_MESSAGES:-200000}
QUEUE_QUIET_MS=${BENCH_QUEUE_QUIET_MS:-300}
QUEUE_BIG_MESSAGES=${BENCH_QUEUE_BIG_MESSAGES:-500}
QUEUE_MPMC_MESSAGES=${BENCH_QUEUE_MPMC_MESSAGES:-400000}
PY_QUEUE_MESSAGES=${BENCH_PY_QUEUE_MESSAGES:-100000}
PY_QUEUE_REAL_MESSAGES=${BENCH_PY_QUEUE_REAL_MESSAGES:-50000}
PY_QUEUE_TRIPS=${BENCH_PY_QUEUE_TRIPS:-5000}
RT=${BENCH_RT:-}
POOL_RUNS=${BENCH_POOL_RUNS:-${BENCH_RUNS:-5}}
POOL_WORKERS=${BENCH_POOL_WORKERS:-2}
POOL_TASKS=${BENCH_POOL_TASKS:-200000}
POOL_MAP_TASKS=${BENCH_POOL_MAP_TASKS:-1000000}
POOL_CHUNK=${BENCH_POOL_CHUNK:-64}
POOL_TRIPS=${BENCH_POOL_TRIPS:-20000}
PY_POOL_RUNS=${BENCH_PY_POOL_RUNS:-3}
PY_POOL_TASKS=${BENCH_PY_POOL_TASKS:-20000}
PY_POOL_MAP_TASKS=${BENCH_PY_POOL_MAP_TASKS:-100000}
PY_POOL_TRIPS=${BENCH_PY_POOL_TRIPS:-2000}
ASYNC_SAMPLES=${BENCH_ASYNC_SAMPLES:-20000}
ASYNC_ROUNDS=${BENCH_ASYNC_ROUNDS:-4}
ASYNC_BASELINE=${BENCH_ASYNC_BASELINE:-}
REDIS_RUNS=${BENCH_REDIS_RUNS:-5}
REDIS_PEER_RUNS=${BENCH_REDIS_PEER_RUNS:-3}
XADD_REQUESTS=${BENCH_XADD_REQUESTS:-200000}
CELERY_TASKS=${BENCH_CELERY_TASKS:-2000}
CELERY_TRIPS=${BENCH_CELERY_TRIPS:-500}
RQ_RUNS=${BENCH_RQ_RUNS:-1}
RQ_TASKS=${BENCH_RQ_TASKS:-200}
RQ_TRIPS=${BENCH_RQ_TRIPS:-50}
REDIS_PYTHON=${BENCH_REDIS_PYTHON:-/usr/bin/python3}
BUILD_DIR=${BENCH_BUILD_DIR:-build-bench}
PYTHON=${PYTHON:-python3}
STRICT=0

declare -A RESULT=()     # row name -> value (from RESULT lines)
declare -A RESULT_UNIT=()
CHECKS=()                # "label|numerator row|denominator row|target|kind|pinned num row|pinned den row"
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ipckit-bench.XXXXXX")
REDIS_PID=""             # the redis section's server while it runs
REDIS_URL=""
CHOSEN=()                # the sections this invocation runs
cleanup() {
  if [[ -n $REDIS_PID ]]; then
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  rm -rf "$LOG_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n=== %s ===\n' "$*"; }

# run_tool NAME CMD...: runs CMD, shows its output, records its RESULT lines
# (also those of a CMD that then fails: a tool may report its other rows
# after one failed); returns 1 if CMD failed.
run_tool() {
  local name=$1; shift
  local log="$LOG_DIR/$name.log"
  printf '$ %s\n' "$*"
  local rc=0
  "$@" 2>&1 | tee "$log" || rc=$?
  local tag row value unit rest
  while read -r tag row value unit rest; do
    [[ $tag == RESULT ]] || continue
    RESULT[$row]=$value
    RESULT_UNIT[$row]=$unit
  done < "$log"
  if ((rc)); then
    echo "bench.sh: '$name' failed (see its output above)" >&2
    return 1
  fi
}

# check LABEL NUM_ROW DEN_ROW TARGET [KIND [PIN_NUM_ROW [PIN_DEN_ROW]]]
#   KIND higher (the default): ratio = NUM/DEN (both "higher is better" rows,
#   e.g. incr/s); PASS when ratio >= TARGET. "lower": ratio = NUM/DEN of two
#   "lower is better" rows (ns, us); PASS when ratio <= TARGET. "info" rows
#   print the ratio with no verdict.
#   at_most / below / at_least compare the value of NUM_ROW itself (DEN_ROW
#   is "-") with TARGET, in NUM_ROW's unit: PASS when value <= TARGET /
#   value < TARGET / value >= TARGET (latencies in us, CPU shares in % of a
#   core, syscalls per op, ratios a tool computed itself); "value" prints
#   NUM_ROW's value with no verdict (DEN_ROW and TARGET are "-").
#   "todo": a target whose row cannot be measured yet (NUM_ROW names what is
#   missing); it prints "not implemented yet" and counts as pending.
#   PIN_NUM_ROW (and PIN_DEN_ROW for ratios): the same figure from the run
#   with the two processes pinned to two CPUs, printed beside the result
#   (the verdict is on the result: processes unpinned, as users run them).
check() { CHECKS+=("$1|$2|$3|$4|${5:-higher}|${6:-}|${7:-}"); }

# -----------------------------------------------------------------------------
# Build

setup_and_build() {
  if [[ -z ${BENCH_SKIP_SETUP:-} && -f scripts/setup.sh ]]; then
    local opts=()
    [[ " ${CHOSEN[*]} " == *" redis "* ]] && opts+=(--bench-redis)
    say "setup (scripts/setup.sh ${opts[*]})"
    bash scripts/setup.sh "${opts[@]}"
  fi
  if [[ -n ${BENCH_SKIP_BUILD:-} ]]; then
    return 0
  fi
  say "build (Release, $BUILD_DIR)"
  cmake -S "$ROOT" -B "$ROOT/$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DIPCKIT_BUILD_TESTS=OFF -DIPCKIT_BUILD_DEMOS=OFF -DIPCKIT_BUILD_BENCH=ON >/dev/null
  # Optional targets ("name?") are built only if this build defines them.
  local t targets=() defined
  defined=$(ninja -C "$ROOT/$BUILD_DIR" -t targets all | cut -d: -f1)
  for t in "${BUILD_TARGETS[@]}"; do
    if [[ $t == *'?' ]]; then
      t=${t%'?'}
      grep -qx "$t" <<<"$defined" || { echo "bench.sh: no target $t in this build; its rows are skipped"; continue; }
    fi
    targets+=("$t")
  done
  # No target left: nothing to build (ninja would build everything).
  ((${#targets[@]})) || return 0
  ninja -C "$ROOT/$BUILD_DIR" "${targets[@]}"
}

# -----------------------------------------------------------------------------
# Sections

# Lock hand-off: 2 processes x N increments of a shared counter under the lock.
targets_lock() { echo lock_bench; }
section_lock() {
  say "lock hand-off: 2 processes x $ITERATIONS increments under the lock ($RUNS runs each)"
  local bin="$ROOT/$BUILD_DIR/bench/lock_bench"
  local extra=()
  if [[ -n ${BENCH_FUTEX:-} ]]; then extra+=(--count-futex); fi
  run_tool lock_bench "$bin" --runs "$RUNS" --iterations "$ITERATIONS" "${extra[@]}"

  say "lock hand-off, Python: multiprocessing.Value('q').get_lock(), 2 processes x $PY_ITERATIONS increments ($PY_RUNS runs)"
  if command -v "$PYTHON" >/dev/null 2>&1; then
    run_tool python_lock "$PYTHON" bench/python_lock.py --runs "$PY_RUNS" --iterations "$PY_ITERATIONS"
  else
    echo "bench.sh: $PYTHON not found; Python's row is skipped"
  fi

  check "ipckit Lock vs Boost interprocess_mutex" ipckit_lock boost_mutex 1.0
  check "ipckit Lock vs Python mp.Value.get_lock()" ipckit_lock python_mp_value 20
  check "ipckit Lock vs floor (atomic fetch_add)" ipckit_lock atomic_floor - info
  check "ipckit Lock vs pthread ROBUST mutex" ipckit_lock pthread_robust - info
  check "ipckit Value.get_lock() (RLock) vs Boost" ipckit_rlock boost_mutex - info
  check "ipckit Value.get_lock() (RLock) vs Python" ipckit_rlock python_mp_value - info
}

# Waking a peer process: ping-pong round trips through ipckit Event and
# Condition beside a raw futex, a raw spin, Boost's interprocess_condition and
# Python's multiprocessing.Event; the CPU an idle waiter burns; the uncontended
# Semaphore against an atomic increment, with futex calls counted.
targets_wake() { echo wake_bench; }
section_wake() {
  say "wake-up round trip: 2 processes ping-pong ($RUNS runs per row; $WAKE_TRIPS round trips, $WAKE_SLOW_TRIPS for the always-sleeping rows), idle waiters ($IDLE_RUNS x 2 s), uncontended semaphore"
  local bin="$ROOT/$BUILD_DIR/bench/wake_bench"
  if [[ $(id -u) -eq 0 && ! -e /sys/kernel/tracing/events/syscalls/sys_enter_futex/id ]]; then
    echo "bench.sh: futex counting needs tracefs; it is not mounted at /sys/kernel/tracing" \
      "(mount -t tracefs nodev /sys/kernel/tracing)"
  fi
  run_tool wake_bench "$bin" --runs "$RUNS" --round-trips "$WAKE_TRIPS" --slow-round-trips "$WAKE_SLOW_TRIPS" \
    --idle-runs "$IDLE_RUNS"

  say "wake-up round trip, Python: multiprocessing.Event ping-pong, $PY_WAKE_TRIPS round trips ($PY_RUNS runs)"
  if command -v "$PYTHON" >/dev/null 2>&1; then
    run_tool python_event "$PYTHON" bench/python_event.py --runs "$PY_RUNS" --round-trips "$PY_WAKE_TRIPS"
  else
    echo "bench.sh: $PYTHON not found; Python's row is skipped"
  fi

  check "ipckit Event round trip, median (us)" wake_ipckit_event_median - 2 at_most
  check "ipckit Condition round trip, median (us)" wake_ipckit_condition_median - 2 at_most
  check "idle Event.wait() 2 s, worst run (% core)" idle_ipckit_event_wait_cpu - 2 below
  check "idle Condition.wait_for 2 s, worst (% core)" idle_ipckit_condition_wait_for_cpu - 2 below
  check "idle Semaphore.acquire 2 s, worst (% core)" idle_ipckit_semaphore_acquire_cpu - 2 below
  check "Semaphore acq+rel futex calls per pair" futex_per_op_ipckit_semaphore - 0 at_most
  check "ipckit Event vs Boost condition (x faster)" wake_boost_condition_median wake_ipckit_event_median - info
  check "ipckit Event vs Python mp.Event (x faster)" wake_python_mp_event_median wake_ipckit_event_median - info
  check "ipckit Event vs raw futex (x faster)" wake_raw_futex_median wake_ipckit_event_median - info
  check "raw spin floor vs ipckit Event (ipckit = 1)" wake_raw_spin_median wake_ipckit_event_median - info
  check "ipckit Condition vs Boost condition (x faster)" wake_boost_condition_median wake_ipckit_condition_median - info
  check "ipckit Event p99 vs Boost p99 (x faster)" wake_boost_condition_p99 wake_ipckit_event_p99 - info
  check "ipckit Semaphore acq+rel / atomic pair (ns)" uncontended_ipckit_semaphore uncontended_atomic_pair - info
  check "ipckit Semaphore acq+rel / Boost sem (ns)" uncontended_ipckit_semaphore uncontended_boost_semaphore - info
}

# Message queues: ipckit Queue<T>/ByteQueue beside Boost.Interprocess
# message_queue, Python's multiprocessing.Queue and raw shared-memory floors:
# one-way 64-byte throughput (vs a spinning SPSC ring), a realistic object
# (string, vector, map; 150 bytes with cereal) vs Boost carrying the user's
# own cereal bytes and vs Python's mp.Queue of the equivalent dict, ping-pong
# round trip, 1 MiB messages (vs memcpy in and out of shared buffers), 4x4
# MPMC, the CPU of a consumer idle in get(), and single-process costs
# (put+get, and the encode / ring put / ring get / decode steps of the
# serialized paths) that show where a message's time goes. Two-process rows
# run unpinned (the verdicts) and then pinned to two CPUs (printed beside).
targets_queue() { echo queue_bench; }
section_queue() {
  say "queues: one-way 64 B ($QUEUE_MESSAGES msgs), realistic object ($QUEUE_REAL_MESSAGES msgs)," \
    "ping-pong ($WAKE_TRIPS round trips, $WAKE_SLOW_TRIPS for Boost), 1 MiB ($QUEUE_BIG_MESSAGES msgs)," \
    "each unpinned then pinned; 4x4 MPMC ($QUEUE_MPMC_MESSAGES msgs), idle consumer ($IDLE_RUNS x 2 s), costs;" \
    "$QUEUE_RUNS runs per row"
  local bin="$ROOT/$BUILD_DIR/bench/queue_bench"
  local extra=(--pinning both)
  if [[ -n $RT && $RT != 0 ]]; then
    # Two SCHED_FIFO spinners must not share a CPU: real-time runs are pinned only.
    if [[ $(id -u) -eq 0 ]]; then
      extra=(--rt 1 --pinning pinned)
    else
      echo "bench.sh: BENCH_RT needs root; ignored"
    fi
  fi
  # A failed row prints no RESULT line (its checks show n/a); the others still count.
  run_tool queue_bench "$bin" --runs "$QUEUE_RUNS" --messages "$QUEUE_MESSAGES" --real-messages "$QUEUE_REAL_MESSAGES" \
    --round-trips "$WAKE_TRIPS" --slow-round-trips "$WAKE_SLOW_TRIPS" --big-messages "$QUEUE_BIG_MESSAGES" \
    --mpmc-messages "$QUEUE_MPMC_MESSAGES" --idle-runs "$IDLE_RUNS" --quiet-wait-ms "$QUEUE_QUIET_MS" "${extra[@]}" ||
    echo "bench.sh: queue_bench reported a failure; its other rows are kept"

  say "queues, Python: multiprocessing.Queue one-way ($PY_QUEUE_MESSAGES items), realistic dict" \
    "($PY_QUEUE_REAL_MESSAGES items) and ping-pong ($PY_QUEUE_TRIPS round trips), not pinned, $PY_RUNS runs"
  if command -v "$PYTHON" >/dev/null 2>&1; then
    run_tool python_queue "$PYTHON" bench/python_queue.py --runs "$PY_RUNS" --messages "$PY_QUEUE_MESSAGES" \
      --real-messages "$PY_QUEUE_REAL_MESSAGES" --round-trips "$PY_QUEUE_TRIPS" --no-pin \
      --quiet-wait-ms "$QUEUE_QUIET_MS" || echo "bench.sh: python_queue failed; Python's rows are skipped"
  else
    echo "bench.sh: $PYTHON not found; Python's rows are skipped"
  fi

  # The targets use paired ratios (row / peer in the same interleaved round,
  # median over rounds): on this VM both rows of a ratio move together with
  # the host's vCPU placement (queue_bench's "link ns"), so pairing them keeps
  # a run-to-run placement change out of the ratio. Verdicts are on the
  # unpinned runs; the pinned column is the same figure with the two sides
  # pinned to two CPUs. Ratios of the medians follow as info.
  local p=q1_paired_ pp=q1pin_paired_
  check "Queue<plain 64B> one-way vs raw ring floor (paired)" ${p}ipckit_queue_vs_raw_ring - 0.8 at_least \
    ${pp}ipckit_queue_vs_raw_ring
  check "Queue<cereal 64B> one-way vs raw ring floor (paired)" ${p}ipckit_queue_cereal_vs_raw_ring - 0.5 at_least \
    ${pp}ipckit_queue_cereal_vs_raw_ring
  check "Queue<cereal 64B> one-way vs Boost mq (paired)" ${p}ipckit_queue_cereal_vs_boost_mq - 1.5 at_least \
    ${pp}ipckit_queue_cereal_vs_boost_mq
  check "Queue<plain 64B> one-way vs Boost mq (paired)" ${p}ipckit_queue_vs_boost_mq - 5 at_least \
    ${pp}ipckit_queue_vs_boost_mq
  check "Queue<Realistic> vs Boost mq + user's cereal (paired)" qr_paired_ipckit_queue_vs_boost_mq_cereal - 2 \
    at_least qrpin_paired_ipckit_queue_vs_boost_mq_cereal
  check "Queue<Realistic> vs Python mp.Queue of the dict" qr_ipckit_queue qr_python_mp_queue 100 higher \
    qrpin_ipckit_queue qr_python_mp_queue
  check "put+get in one process: Queue<plain 64B> / Boost (ns)" cost_ipckit_queue_put_get \
    cost_boost_mq_send_receive 1.0 lower
  check "put+get in one process: Queue<cereal 64B> / Boost (ns)" cost_ipckit_queue_cereal_put_get \
    cost_boost_mq_send_receive 1.5 lower
  check "put+get in one process: Queue<Realistic> / Boost+cereal" cost_ipckit_queue_realistic_put_get \
    cost_boost_mq_cereal_send_receive - info
  check "Queue 4x4 MPMC vs Boost 4x4 (paired; always unpinned)" mpmc_paired_ipckit_queue_vs_boost_mq - 2 at_least
  check "Queue round trip / raw spin round trip (medians)" rt_ipckit_queue_median rt_raw_spin_median 1.3 lower \
    rtpin_ipckit_queue_median rtpin_raw_spin_median
  check "Queue round trip, median (us)" rt_ipckit_queue_median - 2 at_most rtpin_ipckit_queue_median
  check "Queue<vector<char>> 1 MiB vs raw copy (paired)" big_paired_ipckit_queue_vec_vs_raw_copy - 0.6 at_least \
    bigpin_paired_ipckit_queue_vec_vs_raw_copy
  check "ByteQueue loan/get_view 1 MiB vs two-copy floor (paired)" big_paired_ipckit_queue_loan_vs_raw_copy - 1.5 \
    at_least bigpin_paired_ipckit_queue_loan_vs_raw_copy
  check "idle Queue.get() 2 s, worst run (% core)" idle_queue_get_cpu - 2 below
  check "idle Queue.get(timeout) 2 s, worst (% core)" idle_queue_get_timeout_cpu - 2 below
  # Figures without targets: where the others stand, and where the time goes.
  check "Queue put_many/get_many (16) 64B vs raw ring (paired)" ${p}ipckit_queue_batch_vs_raw_ring - - value \
    ${pp}ipckit_queue_batch_vs_raw_ring
  check "Queue put_many/get_many (16) 64B vs Boost (paired)" ${p}ipckit_queue_batch_vs_boost_mq - - value \
    ${pp}ipckit_queue_batch_vs_boost_mq
  check "ByteQueue 64B vs raw ring floor (paired)" ${p}ipckit_byte_queue_vs_raw_ring - - value \
    ${pp}ipckit_byte_queue_vs_raw_ring
  check "Boost message_queue vs raw ring (paired)" ${p}boost_mq_vs_raw_ring - - value ${pp}boost_mq_vs_raw_ring
  check "raw ring floor vs Boost (paired): the most 'x Boost' can be" ${p}raw_ring_vs_boost_mq - - value \
    ${pp}raw_ring_vs_boost_mq
  check "Queue 64B one-way vs Python mp.Queue" q1_ipckit_queue q1_python_mp_queue - info \
    q1pin_ipckit_queue q1_python_mp_queue
  check "Queue round trip vs Boost (x faster)" rt_boost_mq_median rt_ipckit_queue_median - info \
    rtpin_boost_mq_median rtpin_ipckit_queue_median
  check "Queue round trip vs Python (x faster)" rt_python_mp_queue_median rt_ipckit_queue_median - info
  check "Queue p99 round trip vs Boost p99 (x faster)" rt_boost_mq_p99 rt_ipckit_queue_p99 - info \
    rtpin_boost_mq_p99 rtpin_ipckit_queue_p99
  check "ByteQueue 1 MiB vs raw copy floor (paired)" big_paired_ipckit_byte_queue_vs_raw_copy - - value \
    bigpin_paired_ipckit_byte_queue_vs_raw_copy
  check "ByteQueue loan, memcpy fill, 1 MiB vs raw copy (paired)" big_paired_ipckit_loan_copy_in_vs_raw_copy - - \
    value bigpin_paired_ipckit_loan_copy_in_vs_raw_copy
  check "raw copy, one buffer vs floor (paired)" big_paired_raw_copy_1slot_vs_raw_copy - - value \
    bigpin_paired_raw_copy_1slot_vs_raw_copy
  # The zero-copy floor: what the loan row can reach at most, beside the two-copy floor.
  check "raw written/read in place vs raw copy (paired)" big_paired_raw_in_place_vs_raw_copy - - value \
    bigpin_paired_raw_in_place_vs_raw_copy
  check "ByteQueue loan 1 MiB vs raw in place (medians)" big_ipckit_queue_loan big_raw_in_place - info \
    bigpin_ipckit_queue_loan bigpin_raw_in_place
  local step
  for step in ipckit_encode ipckit_ring_put_64 ipckit_ring_get_64 ipckit_decode ipckit_queue_cereal_put_get \
    ipckit_encode_realistic ipckit_ring_put_150 ipckit_ring_get_150 ipckit_decode_realistic \
    ipckit_queue_realistic_put_get boost_user_encode_realistic boost_user_decode_realistic \
    boost_mq_cereal_send_receive; do
    check "  step (ns): $step" "cost_$step" - - value
  done
}

# Process pools: a tiny task (n*n) through ipckit's ProcessPool beside
# Boost.Asio's thread_pool (threads in one process), a raw two-process spin
# floor, and Python's concurrent.futures.ProcessPoolExecutor and
# multiprocessing.Pool: throughput (submit N, then every result), the
# submit->result round trip one task at a time, map in chunks, and the CPU an
# idle pool burns. While pool_bench lists an ipckit row as "not implemented
# yet", that row's targets print as pending (not missed).
targets_pool() { echo pool_bench; }
section_pool() {
  say "process pools, $POOL_WORKERS workers, task n*n: submit $POOL_TASKS then every result," \
    "round trip ($POOL_TRIPS), map ($POOL_MAP_TASKS in chunks of $POOL_CHUNK), idle ($IDLE_RUNS x 1 s);" \
    "$POOL_RUNS runs per row"
  local bin="$ROOT/$BUILD_DIR/bench/pool_bench"
  run_tool pool_bench "$bin" --runs "$POOL_RUNS" --workers "$POOL_WORKERS" --tasks "$POOL_TASKS" \
    --map-tasks "$POOL_MAP_TASKS" --chunk "$POOL_CHUNK" --round-trips "$POOL_TRIPS" --idle-runs "$IDLE_RUNS" \
    --quiet-wait-ms "$QUEUE_QUIET_MS" || echo "bench.sh: pool_bench reported a failure; its other rows are kept"

  say "process pools, Python: ProcessPoolExecutor and multiprocessing.Pool, $POOL_WORKERS workers: submit" \
    "$PY_POOL_TASKS then every result, round trip ($PY_POOL_TRIPS), map ($PY_POOL_MAP_TASKS in chunks of" \
    "$POOL_CHUNK); $PY_POOL_RUNS runs"
  if command -v "$PYTHON" >/dev/null 2>&1; then
    run_tool python_pool "$PYTHON" bench/python_pool.py --runs "$PY_POOL_RUNS" --workers "$POOL_WORKERS" \
      --tasks "$PY_POOL_TASKS" --map-tasks "$PY_POOL_MAP_TASKS" --chunk "$POOL_CHUNK" --round-trips "$PY_POOL_TRIPS" \
      --quiet-wait-ms "$QUEUE_QUIET_MS" || echo "bench.sh: python_pool failed; Python's rows are skipped"
  else
    echo "bench.sh: $PYTHON not found; Python's rows are skipped"
  fi

  local py=pool_python_
  pool_target ipckit_pool_submit ">= 100x" "ProcessPool submit vs Python ProcessPoolExecutor" \
    pool_ipckit_pool_submit ${py}ppe_submit 100 higher
  pool_target ipckit_pool_submit ">= 1.0x" "ProcessPool submit vs Boost.Asio thread_pool" \
    pool_ipckit_pool_submit pool_asio_submit 1.0 higher
  pool_target ipckit_pool_rtt "<= 5" "ProcessPool round trip, median (us)" pool_ipckit_pool_rtt_median - 5 at_most
  pool_target ipckit_pool_map ">= 2x" "ProcessPool map (chunks of $POOL_CHUNK) vs single submits" \
    pool_ipckit_pool_map pool_ipckit_pool_submit 2 higher
  pool_target ipckit_pool_idle "< 1" "idle ProcessPool, worst run (% core)" pool_ipckit_pool_idle_cpu - 1 below
  if ! pool_pending ipckit_pool_submit; then
    check "ProcessPool submit vs Python mp.Pool.apply_async" pool_ipckit_pool_submit ${py}mp_pool_submit - info
  fi
  if ! pool_pending ipckit_pool_rtt; then
    check "ProcessPool round trip vs ProcessPoolExecutor (x faster)" ${py}ppe_rtt_median \
      pool_ipckit_pool_rtt_median - info
    check "ProcessPool round trip vs Asio thread_pool (x faster)" pool_asio_rtt_median pool_ipckit_pool_rtt_median \
      - info
    check "ProcessPool round trip / raw spin floor" pool_ipckit_pool_rtt_median pool_raw_spin_rtt_median - info
    check "ProcessPool round trip, p99 (us)" pool_ipckit_pool_rtt_p99 - - value
  fi
  # The peers' own figures.
  check "Python ProcessPoolExecutor submit (tasks/s)" ${py}ppe_submit - - value
  check "Python mp.Pool.apply_async (tasks/s)" ${py}mp_pool_submit - - value
  check "Python ProcessPoolExecutor round trip, median (us)" ${py}ppe_rtt_median - - value
  check "Python mp.Pool.apply_async round trip, median (us)" ${py}mp_pool_rtt_median - - value
  check "Python ProcessPoolExecutor.map, chunks (tasks/s)" ${py}ppe_map - - value
  check "Python mp.Pool.map, chunks (tasks/s)" ${py}mp_pool_map - - value
  check "Asio thread_pool post+promise (tasks/s)" pool_asio_submit - - value
  check "Asio thread_pool use_future (tasks/s)" pool_asio_use_future - - value
  check "Asio thread_pool round trip, median (us)" pool_asio_rtt_median - - value
  check "Asio thread_pool round trip, p99 (us)" pool_asio_rtt_p99 - - value
  check "Asio thread_pool, a post per chunk (tasks/s)" pool_asio_map - - value
  check "Asio thread_pool vs ProcessPoolExecutor (submit)" pool_asio_submit ${py}ppe_submit - info
  check "raw spin floor, 2 processes: round trip (us)" pool_raw_spin_rtt_median - - value
  check "idle Asio thread_pool, worst run (% core)" pool_asio_idle_cpu - - value
}

# pool_pending ROW: does pool_bench list ipckit's ROW as not implemented yet?
pool_pending() { grep -q "^$1 .*not implemented yet" "$LOG_DIR/pool_bench.log" 2>/dev/null; }

# pool_target ROW SHOWN LABEL CHECK_ARGS...: `check LABEL CHECK_ARGS...` once
# ipckit's ROW is measured; while it is not implemented yet, a pending target
# (SHOWN: the target as printed).
pool_target() {
  local row=$1 shown=$2 label=$3
  shift 3
  if pool_pending "$row"; then
    check "$label" "$row" - "$shown" todo
  else
    check "$label" "$@"
  fi
}

# Event loops: how soon an idle waiter learns of a put from another process,
# one way (producer's stamp before put -> waiter's clock after get), for the
# blocking get (futex), the queue's wait handle polled with epoll, a
# Boost.Asio coroutine awaiting async_get (when <ipckit/asio.hpp> is built),
# and an inherited eventfd (the floor of any fd-based wake); then the blocking
# fast path with nobody awaiting (uncontended put+get in one process, the
# queue section's cost rows): the wait handles must not slow it down.
targets_async() { echo async_wake queue_bench; }
section_async() {
  say "async wake: one-way put -> waiter resumed, waiter idle (producer sleeps 50-200 us between items)," \
    "unpinned, $ASYNC_SAMPLES samples per row in $ASYNC_ROUNDS interleaved rounds"
  run_tool async_wake "$ROOT/$BUILD_DIR/bench/async_wake" --samples "$ASYNC_SAMPLES" --rounds "$ASYNC_ROUNDS" \
    --quiet-wait-ms "$QUEUE_QUIET_MS" || echo "bench.sh: async_wake reported a failure; its other rows are kept"

  local cost_rows=(--mode cost:ipckit_queue_put_get --mode cost:ipckit_byte_queue_put_get
    --mode cost:boost_mq_send_receive)
  local base_bin=""
  if [[ -n $ASYNC_BASELINE ]]; then
    base_bin=$(build_baseline_queue_bench "$ASYNC_BASELINE") || base_bin=""
  fi
  # With a baseline, current and baseline alternate for 3 rounds and each
  # row keeps the median of its rounds' medians (a neighbour's burst of CPU
  # then moves one round, not the verdict).
  local round rounds=1 row
  [[ -n $base_bin ]] && rounds=3
  declare -A fast=()
  for ((round = 1; round <= rounds; round++)); do
    say "blocking fast path, nobody awaiting: uncontended put+get in one process ($QUEUE_RUNS runs)"
    run_tool queue_bench_cost "$ROOT/$BUILD_DIR/bench/queue_bench" --runs "$QUEUE_RUNS" "${cost_rows[@]}" \
      --quiet-wait-ms "$QUEUE_QUIET_MS" || echo "bench.sh: queue_bench (cost rows) reported a failure"
    [[ -n $base_bin ]] || break
    say "the same, built from $ASYNC_BASELINE (rows renamed base_cost_*; round $round of $rounds)"
    run_tool queue_bench_base bash -c 'set -o pipefail; "$@" | sed "s/^RESULT cost_/RESULT base_cost_/"' _ \
      "$base_bin" --runs "$QUEUE_RUNS" "${cost_rows[@]}" --quiet-wait-ms "$QUEUE_QUIET_MS" ||
      echo "bench.sh: the baseline queue_bench reported a failure"
    for row in {,base_}cost_{ipckit_queue_put_get,ipckit_byte_queue_put_get,boost_mq_send_receive}; do
      [[ -n ${RESULT[$row]:-} ]] && fast[$row]+="${RESULT[$row]} "
    done
  done
  for row in "${!fast[@]}"; do
    RESULT[$row]=$(printf '%s\n' ${fast[$row]} | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
  done

  local a=async_wake_
  if grep -q "^${a}asio not built" "$LOG_DIR/async_wake.log" 2>/dev/null; then
    check "Asio co_await async_get after a put, median (us)" ${a}asio_p50 - "<= 20" todo
  else
    check "Asio co_await async_get after a put, median (us)" ${a}asio_p50 - 20 at_most
    check "Asio async_get p50 / blocking get p50" ${a}asio_p50 ${a}blocking_p50 - info
    check "Asio async_get p50 / blocking get p50, slept" ${a}asio_p50 ${a}blocking_slept_p50 - info
    check "Asio async_get p50 / eventfd floor p50" ${a}asio_p50 ${a}eventfd_p50 - info
    check "Asio async_get, p99 (us)" ${a}asio_p99 - - value
  fi
  check "wait_handle + epoll after a put, median (us)" ${a}fd_epoll_p50 - 20 at_most
  check "wait_handle + epoll p50 / blocking get p50" ${a}fd_epoll_p50 ${a}blocking_p50 - info
  check "wait_handle + epoll p50 / eventfd floor p50" ${a}fd_epoll_p50 ${a}eventfd_p50 - info
  check "wait_handle + epoll p50 / blocking get p50, slept" ${a}fd_epoll_p50 ${a}blocking_slept_p50 - info
  check "blocking get p50 / eventfd floor p50" ${a}blocking_p50 ${a}eventfd_p50 - info
  check "blocking get after a put, median (us)" ${a}blocking_p50 - - value
  check "blocking get, p99 (us)" ${a}blocking_p99 - - value
  check "blocking get, items it slept for, median (us)" ${a}blocking_slept_p50 - - value
  check "wait_handle + epoll, p99 (us)" ${a}fd_epoll_p99 - - value
  check "eventfd floor, median (us)" ${a}eventfd_p50 - - value
  check "eventfd floor, p99 (us)" ${a}eventfd_p99 - - value
  check "put+get in one process: Queue<plain 64B> (ns)" cost_ipckit_queue_put_get - - value
  check "put+get in one process: ByteQueue 64B (ns)" cost_ipckit_byte_queue_put_get - - value
  check "put+get in one process: Boost message_queue (ns)" cost_boost_mq_send_receive - - value
  if [[ -n $base_bin ]]; then
    check "put+get Queue<plain 64B>: now / before ($ASYNC_BASELINE)" cost_ipckit_queue_put_get \
      base_cost_ipckit_queue_put_get 1.05 lower
    check "put+get ByteQueue 64B: now / before ($ASYNC_BASELINE)" cost_ipckit_byte_queue_put_get \
      base_cost_ipckit_byte_queue_put_get 1.05 lower
  fi
}

# Redis Streams (the Redis transport): ipckit's Queue and ProcessPool over a
# redis-server beside the peers on the same server in the same run:
# redis-benchmark's XADD on one connection (unpipelined, and pipelined 16
# deep: the floor of any Streams transport), Celery 5.2 (prefork, 2 processes,
# Redis broker and result backend) and RQ 1.13 (2 workers), with Debian's
# python3. The section starts its own redis-server on a free loopback port in
# a temporary directory (no persistence) and stops it at the end (the EXIT
# trap kills it if the script stops early). While redis_bench is not built
# (the transport is not there yet), ipckit's targets print as pending.
targets_redis() { echo 'redis_bench?'; }
section_redis() {
  say "redis: XADD floor ($XADD_REQUESTS entries, $REDIS_PEER_RUNS runs), ipckit over Redis ($REDIS_RUNS runs)," \
    "Celery ($CELERY_TASKS tasks, $CELERY_TRIPS round trips, $REDIS_PEER_RUNS runs)," \
    "RQ ($RQ_TASKS jobs, $RQ_TRIPS round trips, $RQ_RUNS runs); one local redis-server"
  local bin="$ROOT/$BUILD_DIR/bench/redis_bench"
  if redis_start; then
    echo "redis-server $(redis-server --version | grep -o 'v=[^ ]*' | cut -c3-) at $REDIS_URL (pid $REDIS_PID)"
    redis_peers "$REDIS_URL" "$bin"
    redis_stop
  fi
  redis_checks "$bin"
}

# redis_start: starts redis-server on 127.0.0.1 and a free port in
# $LOG_DIR/redis (REDIS_PID); sets REDIS_URL once it answers PING. Another
# program may take the port first: the server then exits, and another port
# is tried.
redis_start() {
  local server dir="$LOG_DIR/redis" port attempt deadline
  server=$(command -v redis-server) || {
    echo "bench.sh: redis-server not found (scripts/setup.sh installs it); the redis rows are skipped" >&2
    return 1
  }
  mkdir -p "$dir"
  for attempt in 1 2 3 4 5; do
    port=$("$REDIS_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$server" --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' --appendonly no --daemonize no \
      --logfile "$dir/redis.log" >>"$dir/stdout.log" 2>&1 &
    REDIS_PID=$!
    deadline=$((SECONDS + 10))
    while kill -0 "$REDIS_PID" 2>/dev/null && ((SECONDS < deadline)); do
      if [[ $(redis_call "$port" PING) == "+PONG" ]]; then
        REDIS_URL="redis://127.0.0.1:$port/0"
        return 0
      fi
      sleep 0.05
    done
    redis_stop
    grep -q "Address already in use" "$dir/redis.log" "$dir/stdout.log" 2>/dev/null || break
    rm -f "$dir/redis.log" "$dir/stdout.log"
  done
  echo "bench.sh: redis-server did not start; the redis rows are skipped. Its log:" >&2
  tail -n 20 "$dir/redis.log" "$dir/stdout.log" >&2 2>/dev/null || true
  return 1
}

# redis_call PORT WORD...: one inline command over bash's /dev/tcp (no
# redis-cli needed); prints the first line of the reply without its CR.
redis_call() {
  local port=$1 line=""
  shift
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf '%s\r\n' "$*" >&3
  read -r -t 2 line <&3 || true
  exec 3<&-
  printf '%s\n' "${line%$'\r'}"
}

# redis_stop: SIGTERM (no save points: nothing is written), then the
# server is reaped (SIGKILL after 5 s).
redis_stop() {
  [[ -n $REDIS_PID ]] || return 0
  kill -TERM "$REDIS_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 5))
  while kill -0 "$REDIS_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  kill -KILL "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  REDIS_PID=""
}

# redis_peers URL BIN: the rows, each tool on the same server.
redis_peers() {
  local url=$1 bin=$2 port
  port=${url##*:}
  port=${port%%/*}
  say "redis, floor: redis-benchmark XADD, 1 client, unpipelined and pipelined 16 deep, 64-byte field," \
    "$XADD_REQUESTS entries ($REDIS_PEER_RUNS runs)"
  if command -v redis-benchmark >/dev/null; then
    run_tool redis_xadd bash bench/redis/xadd_peer.sh --port "$port" --requests "$XADD_REQUESTS" \
      --runs "$REDIS_PEER_RUNS" || echo "bench.sh: xadd_peer.sh failed; the XADD rows are skipped"
  else
    echo "bench.sh: redis-benchmark not found (scripts/setup.sh --bench-redis); the XADD rows are skipped"
  fi

  say "redis, ipckit: Queue<64-byte struct> one-way, ProcessPool over Redis ($REDIS_RUNS runs)"
  if [[ -x $bin ]]; then
    run_tool redis_bench "$bin" --url "$url" --runs "$REDIS_RUNS" ||
      echo "bench.sh: redis_bench reported a failure; its other rows are kept"
  else
    echo "bench.sh: $bin is not built (no redis_bench target yet); ipckit's redis rows are pending"
  fi

  say "redis, Celery 5.2: 1 worker, prefork, concurrency 2, Redis broker and result backend; submit" \
    "$CELERY_TASKS then every result, $CELERY_TRIPS round trips ($REDIS_PEER_RUNS runs)"
  if "$REDIS_PYTHON" -c 'import celery, redis' 2>/dev/null; then
    run_tool redis_celery "$REDIS_PYTHON" bench/redis/celery_peer.py --url "$url" --tasks "$CELERY_TASKS" \
      --trips "$CELERY_TRIPS" --runs "$REDIS_PEER_RUNS" || echo "bench.sh: celery_peer.py failed; Celery's rows are skipped"
  else
    echo "bench.sh: $REDIS_PYTHON cannot import celery and redis (scripts/setup.sh --bench-redis); Celery's rows are skipped"
  fi

  say "redis, RQ 1.13: 2 workers; enqueue $RQ_TASKS then every result, $RQ_TRIPS round trips ($RQ_RUNS runs)"
  if "$REDIS_PYTHON" -c 'import rq, redis' 2>/dev/null; then
    run_tool redis_rq "$REDIS_PYTHON" bench/redis/rq_peer.py --url "$url" --tasks "$RQ_TASKS" --trips "$RQ_TRIPS" \
      --runs "$RQ_RUNS" || echo "bench.sh: rq_peer.py failed; RQ's rows are skipped"
  else
    echo "bench.sh: $REDIS_PYTHON cannot import rq and redis (scripts/setup.sh --bench-redis); RQ's rows are skipped"
  fi
}

# redis_checks BIN: the issue's targets (pending while BIN is not built),
# then the peers' own figures. redis_pool_submit is the pool with workers
# taking 16 tasks at a time (Celery's workers prefetch 4 per process by
# default); the round trip is with the pool's default, one at a time.
redis_checks() {
  local bin=$1
  redis_target "$bin" "Redis Queue<64B> one-way vs pipelined XADD (16)" ">= 0.5x" \
    redis_queue_oneway redis_xadd_c1_p16 0.5 higher
  redis_target "$bin" "Redis ProcessPool submit vs Celery (tasks/s)" ">= 50x" \
    redis_pool_submit redis_celery_submit 50 higher
  redis_target "$bin" "Redis ProcessPool round trip / Celery's (medians)" "<= 0.1x" \
    redis_pool_rtt_median redis_celery_rtt_median 0.1 lower
  # Re-delivered within the lease and one scan for expired leases (<= 1 s);
  # redis_bench prints the lease it used.
  local lease=${RESULT[redis_redelivery_lease_ms]:-}
  if [[ -n $lease ]]; then
    check "killed worker's task re-delivered (ms; lease $lease + 1 s)" redis_redelivery_ms - \
      "$(awk -v l="$lease" 'BEGIN { print l + 1000 }')" at_most
  else
    redis_target "$bin" "killed worker's task re-delivered (ms; lease + 1 s)" "<= lease+1000" \
      redis_redelivery_ms - 0 at_most
  fi
  if [[ -x $bin ]]; then
    check "Redis Queue<64B> one-way vs unpipelined XADD" redis_queue_oneway redis_xadd_c1 - info
    check "Redis Queue<64B> batches of 64 vs pipelined XADD (16)" redis_queue_oneway_b64 redis_xadd_c1_p16 - info
    check "Redis Queue<64B> put()/get() one by one vs unpiped XADD" redis_queue_oneway_single redis_xadd_c1 - info
    check "Redis Queue<64B> put() one by one vs unpipelined XADD" redis_queue_put_single redis_xadd_c1 - info
    check "Redis ProcessPool submit, prefetch 1, vs Celery" redis_pool_submit_p1 redis_celery_submit - info
    check "Redis ProcessPool submit vs RQ (tasks/s)" redis_pool_submit redis_rq_submit - info
    check "Redis ProcessPool round trip vs RQ's (x faster)" redis_rq_rtt_median redis_pool_rtt_median - info
    check "Redis ProcessPool round trip, prefetch 16 / Celery's" redis_pool_rtt_p16_median redis_celery_rtt_median \
      - info
    check "Redis ProcessPool round trip / unpipelined XADD's p50" redis_pool_rtt_median redis_xadd_c1_p50 - info
    check "Redis Queue<64B> one-way, batches of 256 (items/s)" redis_queue_oneway - - value
    check "Redis ProcessPool submit, prefetch 16 (tasks/s)" redis_pool_submit - - value
    check "Redis ProcessPool submit, prefetch 1 (tasks/s)" redis_pool_submit_p1 - - value
    check "Redis ProcessPool round trip, median (us)" redis_pool_rtt_median - - value
    check "Redis ProcessPool round trip, p99 (us)" redis_pool_rtt_p99 - - value
  fi
  check "redis-benchmark XADD, 1 client (ops/s)" redis_xadd_c1 - - value
  check "redis-benchmark XADD, 1 client, pipelined 16 (ops/s)" redis_xadd_c1_p16 - - value
  check "redis-benchmark XADD, 1 client, p50 latency (us)" redis_xadd_c1_p50 - - value
  check "Celery submit (tasks/s)" redis_celery_submit - - value
  check "Celery round trip, median (us)" redis_celery_rtt_median - - value
  check "Celery round trip, p99 (us)" redis_celery_rtt_p99 - - value
  check "RQ submit (tasks/s)" redis_rq_submit - - value
  check "RQ round trip, median (us)" redis_rq_rtt_median - - value
  check "RQ round trip, p99 (us)" redis_rq_rtt_p99 - - value
}

# redis_target BIN LABEL SHOWN CHECK_ARGS...: `check LABEL CHECK_ARGS...`
# once BIN (redis_bench) exists; until then a pending target.
redis_target() {
  local bin=$1 label=$2 shown=$3
  shift 3
  if [[ -x $bin ]]; then
    check "$label" "$@"
  else
    check "$label" redis_bench - "$shown" todo
  fi
}

# build_baseline_queue_bench REV: builds queue_bench (Release) from git
# revision REV, extracted with git archive into $BUILD_DIR-base-REV (no
# worktree is touched); prints the binary's path.
build_baseline_queue_bench() {
  local rev sha dir
  rev=$1
  sha=$(git -C "$ROOT" rev-parse --short "$rev^{commit}") || { echo "bench.sh: no revision '$rev'" >&2; return 1; }
  dir="$ROOT/$BUILD_DIR-base-$sha"
  if [[ ! -x $dir/build/bench/queue_bench ]]; then
    echo "bench.sh: building queue_bench from $rev ($sha) in $dir" >&2
    rm -rf "$dir/src" && mkdir -p "$dir/src"
    git -C "$ROOT" archive "$sha" | tar -x -C "$dir/src"
    cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIPCKIT_BUILD_TESTS=OFF \
      -DIPCKIT_BUILD_DEMOS=OFF -DIPCKIT_BUILD_BENCH=ON >/dev/null &&
      nice ninja -C "$dir/build" queue_bench >&2 || return 1
  fi
  echo "$dir/build/bench/queue_bench"
}

# -----------------------------------------------------------------------------
# Summary

fmt_rate() {  # value unit -> human text
  awk -v v="$1" -v u="$2" 'BEGIN {
    if (u == "bytes_per_s") printf "%.2f GB/s", v / 1e9;
    else if (u == "ratio") printf "%.3fx", v;
    else if (u == "tasks_per_s" && v < 1e3) printf "%.1f /s", v;
    else if (u == "tasks_per_s" && v < 1e6) printf "%.1f k/s", v / 1e3;
    else if (u == "incr_per_s" || u ~ /_per_s$/) printf "%.2f M/s", v / 1e6;
    else if (u == "ns_per_op") printf "%.2f ns", v;
    else if (u == "us") printf "%.2f us", v;
    else if (u == "pct_core") printf "%.3f %% core", v;
    else if (u == "futex_per_op") printf "%.6f futex/op", v;
    else printf "%g %s", v, u }'
}

summary() {
  say "summary (medians: $RUNS runs per C++ row, $PY_RUNS of Python's; one invocation)"
  local rows=("${!RESULT[@]}")
  if ((${#rows[@]})); then
    local sorted
    mapfile -t sorted < <(printf '%s\n' "${rows[@]}" | sort)
    for row in "${sorted[@]}"; do
      printf '  %-38s %s\n' "$row" "$(fmt_rate "${RESULT[$row]}" "${RESULT_UNIT[$row]}")"
    done
  fi
  echo
  printf '  %-56s %9s %9s %9s  %s\n' "comparison (processes unpinned)" "result" "pinned" "target" "verdict"
  local missed=0 pending=0 c label num den target kind pnum pden shown value pinned verdict op
  for c in "${CHECKS[@]}"; do
    IFS='|' read -r label num den target kind pnum pden <<<"$c"
    case $kind in
      higher) shown=">= ${target}x" ;;
      lower) shown="<= ${target}x" ;;
      at_most) shown="<= $target" ;;
      below) shown="< $target" ;;
      at_least) shown=">= $target" ;;
      todo) shown=$target ;;
      *) shown="-" ;;
    esac
    if [[ $kind == todo ]]; then
      printf '  %-56s %9s %9s %9s  %s\n' "$label" "-" "-" "$shown" "not implemented yet ($num)"
      pending=$((pending + 1))
      continue
    fi
    value=$(figure "$num" "$den" "$kind")
    pinned=""
    [[ -n $pnum ]] && pinned=$(figure "$pnum" "${pden:--}" "$kind")
    if [[ $value == n/a:* ]]; then
      printf '  %-56s %9s %9s %9s  %s\n' "$label" "-" "${pinned/n\/a:*/-}" "$shown" "n/a (no ${value#n/a:} row)"
      continue
    fi
    verdict=""
    if [[ $kind != info && $kind != value ]]; then
      case $kind in
        higher | at_least) op=">=" ;;
        lower | at_most) op="<=" ;;
        below) op="<" ;;
      esac
      local v=${value%x}
      [[ $kind == at_least || $kind == at_most || $kind == below ]] && v=${RESULT[$num]}
      if awk -v v="$v" -v t="$target" -v op="$op" \
        'BEGIN { exit !(op == ">=" ? v >= t : (op == "<" ? v < t : v <= t)) }'; then
        verdict="PASS"
      else
        verdict="MISS"
        missed=$((missed + 1))
      fi
    fi
    printf '  %-56s %9s %9s %9s  %s\n' "$label" "$value" "${pinned/n\/a:*/-}" "$shown" "$verdict"
  done
  echo
  local tail=""
  ((pending)) && tail=" ($pending target(s) not measurable yet: not implemented)"
  if ((missed)); then
    echo "bench.sh: $missed target(s) missed$tail"
    ((STRICT)) && return 1
  else
    echo "bench.sh: all measured targets met$tail"
  fi
  return 0
}

# figure NUM_ROW DEN_ROW KIND: the text of one check's figure: NUM/DEN as
# "1.23x" for ratio kinds, NUM_ROW's value otherwise (ratio rows as "1.23x");
# "n/a:ROW" when a row is missing.
figure() {
  local num=$1 den=$2 kind=$3
  if [[ -z ${RESULT[$num]:-} ]]; then
    echo "n/a:$num"
  elif [[ $kind == higher || $kind == lower || $kind == info ]]; then
    if [[ -z ${RESULT[$den]:-} ]]; then
      echo "n/a:$den"
    else
      awk -v a="${RESULT[$num]}" -v b="${RESULT[$den]}" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'
    fi
  else
    local f="%.4g"
    [[ ${RESULT_UNIT[$num]:-} == ratio ]] && f="%.2fx"
    awk -v v="${RESULT[$num]}" -v f="$f" 'BEGIN { printf f, v }'
  fi
}

# -----------------------------------------------------------------------------

main() {
  local chosen=()
  while (($#)); do
    case $1 in
      --strict) STRICT=1 ;;
      --list) printf '%s\n' "${SECTIONS[@]}"; return 0 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; return 0 ;;
      -*) echo "bench.sh: unknown option $1" >&2; return 2 ;;
      *)
        if ! declare -F "section_$1" >/dev/null; then
          echo "bench.sh: unknown section '$1' (have: ${SECTIONS[*]})" >&2
          return 2
        fi
        chosen+=("$1") ;;
    esac
    shift
  done
  ((${#chosen[@]})) || chosen=("${SECTIONS[@]}")
  CHOSEN=("${chosen[@]}")

  BUILD_TARGETS=()
  local s t
  for s in "${chosen[@]}"; do
    for t in $("targets_$s"); do BUILD_TARGETS+=("$t"); done
  done
  setup_and_build

  echo
  echo "machine: $(nproc) CPUs, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for s in "${chosen[@]}"; do
    "section_$s"
  done
  summary
}

main "$@"
