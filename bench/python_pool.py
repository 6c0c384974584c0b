#!/usr/bin/env python3
"""Python's process pools running a tiny task: the Python rows of ipckit's pool_bench.

Two pools, each with --workers (2) worker processes made by the --start-method
("fork", Linux's default before Python 3.14), the task `square(n) = n*n`:

  ppe      concurrent.futures.ProcessPoolExecutor(max_workers, mp_context):
           submit(square, n) -> Future, .result()
  mp_pool  multiprocessing.Pool(processes): apply_async(square, (n,)) ->
           AsyncResult, .get()

Parts (a fresh pool per run, warmed with --warm-tasks untimed tasks so that
its workers run; every result is checked):

submit   throughput: submit --tasks tasks, then wait for every result in
         submission order; tasks/s = tasks / (first submit .. last result).
rtt      round trip, one task at a time: submit, wait for the result, the
         next; the clock is read before each submit and after the last
         result; a run's median and p99 are over its --round-trips timed round
         trips (after --warm-trips untimed ones).
map      throughput of the pools' own map with chunks: list(executor.map(
         square, inputs, chunksize=--chunk)) and pool.map(square, inputs,
         chunksize=--chunk) over --map-tasks inputs.

Runs of the two pools alternate; medians over --runs runs are reported, min
and max over runs beside them. A run that takes longer than --timeout-s fails
(the workers are killed). Prints one line per run and, last:
    RESULT pool_python_<pool>_submit <tasks/s> tasks_per_s min=<> max=<>
    RESULT pool_python_<pool>_rtt_median <us> us min=<> max=<>   (and _rtt_p99)
    RESULT pool_python_<pool>_map <tasks/s> tasks_per_s min=<> max=<>
"""

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import signal
import statistics
import sys
import time

from bench_common import quantile, wait_for_quiet


def square(n):
    return n * n


class Stuck(RuntimeError):
    pass


def on_alarm(signum, frame):
    raise Stuck("a run did not finish within --timeout-s")


# --- the two pools, behind one interface -------------------------------------
# submit(n) returns a handle; result(h) waits for it; map(inputs) returns the
# squares in input order.

class Executor:
    label = "ProcessPoolExecutor"

    def __init__(self, ctx, workers, chunk):
        self.pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        self.chunk = chunk
        self.submit = lambda n: self.pool.submit(square, n)
        self.result = lambda h: h.result()

    def map(self, inputs):
        return list(self.pool.map(square, inputs, chunksize=self.chunk))

    def close(self):
        self.pool.shutdown(wait=True)


class MpPool:
    label = "multiprocessing.Pool"

    def __init__(self, ctx, workers, chunk):
        self.pool = ctx.Pool(processes=workers)
        self.chunk = chunk
        self.submit = lambda n: self.pool.apply_async(square, (n,))
        self.result = lambda h: h.get()

    def map(self, inputs):
        return self.pool.map(square, inputs, chunksize=self.chunk)

    def close(self):
        self.pool.close()
        self.pool.join()


POOLS = {"ppe": Executor, "mp_pool": MpPool}


def check(n, got):
    if got != n * n:
        raise RuntimeError("task %d returned %r, not its square" % (n, got))


def warm_up(pool, args):
    handles = [pool.submit(i) for i in range(args.warm_tasks)]
    for i, h in enumerate(handles):
        check(i, pool.result(h))


# --- the parts: each returns (value, p99 or None) ----------------------------

def part_submit(pool, args):
    n = args.tasks
    submit, result = pool.submit, pool.result
    t0 = time.monotonic_ns()
    handles = [submit(i) for i in range(n)]
    for i, h in enumerate(handles):
        check(i, result(h))
    t1 = time.monotonic_ns()
    return n * 1e9 / (t1 - t0), None


def part_rtt(pool, args):
    submit, result, now = pool.submit, pool.result, time.monotonic_ns
    for i in range(args.warm_trips):
        check(i, result(submit(i)))
    n = args.round_trips
    stamps = [0] * (n + 1)
    for i in range(n):
        stamps[i] = now()
        check(i, result(submit(i)))
    stamps[n] = now()
    rts = sorted((stamps[i + 1] - stamps[i]) / 1e3 for i in range(n))
    return quantile(rts, 0.5), quantile(rts, 0.99)


def part_map(pool, args):
    inputs = range(args.map_tasks)
    t0 = time.monotonic_ns()
    out = pool.map(inputs)
    if len(out) != args.map_tasks or any(out[i] != i * i for i in inputs):
        raise RuntimeError("map returned wrong or missing squares")
    t1 = time.monotonic_ns()
    return args.map_tasks * 1e9 / (t1 - t0), None


PARTS = {"submit": part_submit, "rtt": part_rtt, "map": part_map}


def kill_workers():
    for child in mp.active_children():
        child.kill()
        child.join(1)


def run_once(ctx, args, kind, part):
    """One run on a fresh, warmed pool; (value, p99, quiet)."""
    quiet = wait_for_quiet(args.quiet_wait_ms / 1000.0)
    signal.alarm(args.timeout_s)
    pool = None
    try:
        pool = POOLS[kind](ctx, args.workers, args.chunk)
        warm_up(pool, args)
        value, p99 = PARTS[part](pool, args)
        pool.close()
    except BaseException:
        signal.alarm(0)
        kill_workers()  # a stuck or broken pool must not hang the benchmark
        raise
    signal.alarm(0)
    return value, p99, quiet


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", "-m", action="append", choices=list(PARTS), help="run only this part (repeatable)")
    ap.add_argument("--pool", action="append", choices=list(POOLS), help="run only this pool (repeatable)")
    ap.add_argument("--workers", "-w", type=int, default=2, help="worker processes per pool (default 2)")
    ap.add_argument("--tasks", "-n", type=int, default=20000, help="submit: timed tasks per run (default 20000)")
    ap.add_argument("--warm-tasks", type=int, default=200, help="untimed tasks on each fresh pool (default 200)")
    ap.add_argument("--map-tasks", type=int, default=100000, help="map: inputs per run (default 100000)")
    ap.add_argument("--chunk", type=int, default=64, help="map: chunksize (default 64)")
    ap.add_argument("--round-trips", type=int, default=2000, help="rtt: timed round trips per run (default 2000)")
    ap.add_argument("--warm-trips", type=int, default=100, help="rtt: untimed round trips first (default 100)")
    ap.add_argument("--runs", "-r", type=int, default=3, help="measured runs per row (default 3)")
    ap.add_argument("--timeout-s", type=int, default=60, help="a run longer than this fails (default 60)")
    ap.add_argument("--start-method", default="fork", choices=["fork", "forkserver", "spawn"],
                    help="multiprocessing start method of the workers (default fork)")
    ap.add_argument("--quiet-wait-ms", type=int, default=300,
                    help="before each run, wait up to this long for idle CPUs (0: don't; default 300)")
    ap.add_argument("--quiet", "-q", action="store_true", help="print only the RESULT lines")
    args = ap.parse_args()
    if min(args.workers, args.tasks, args.map_tasks, args.chunk, args.round_trips, args.runs, args.timeout_s) <= 0 \
            or min(args.warm_tasks, args.warm_trips) < 0:
        ap.error("counts must be positive (warm-ups non-negative)")
    parts = args.mode or list(PARTS)
    kinds = args.pool or list(POOLS)
    ctx = mp.get_context(args.start_method)
    signal.signal(signal.SIGALRM, on_alarm)
    say = (lambda *a: None) if args.quiet else (lambda s: print(s, flush=True))
    say("python_pool: Python %s, %d CPUs, %d workers per pool (start method %s); %d runs per row"
        % (sys.version.split()[0], os.cpu_count(), args.workers, args.start_method, args.runs))
    lines = []
    for part in (p for p in PARTS if p in parts):
        got = {k: [] for k in kinds}
        for r in range(args.runs):
            for kind in kinds:  # the pools' runs alternate
                value, p99, quiet = run_once(ctx, args, kind, part)
                got[kind].append((value, p99))
                shown = ("median %.1f us  p99 %.1f us" % (value, p99)) if part == "rtt" else ("%.0f tasks/s" % value)
                say("  %-6s %-8s run %d: %s%s" % (part, kind, r + 1, shown, "" if quiet else "  (machine was busy)"))
        for kind in kinds:
            row = "pool_python_%s_%s" % (kind, part)
            vals = [v for v, _ in got[kind]]
            m = statistics.median(vals)
            if part == "rtt":
                p99s = [p for _, p in got[kind]]
                p = statistics.median(p99s)
                say("python %s (%s) rtt  median %.1f us (runs %.1f..%.1f)  p99 %.1f us (runs %.1f..%.1f)"
                    % (kind, POOLS[kind].label, m, min(vals), max(vals), p, min(p99s), max(p99s)))
                lines.append("RESULT %s_median %.4g us min=%.4g max=%.4g" % (row, m, min(vals), max(vals)))
                lines.append("RESULT %s_p99 %.4g us min=%.4g max=%.4g" % (row, p, min(p99s), max(p99s)))
            else:
                say("python %s (%s) %s  %.0f tasks/s (runs %.0f..%.0f)"
                    % (kind, POOLS[kind].label, part, m, min(vals), max(vals)))
                lines.append("RESULT %s %.6g tasks_per_s min=%.6g max=%.6g" % (row, m, min(vals), max(vals)))
    for line in lines:
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:  # Stuck is one
        print("python_pool: FAILED: %s" % e, file=sys.stderr, flush=True)
        kill_workers()
        os._exit(1)
