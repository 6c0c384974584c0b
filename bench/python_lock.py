#!/usr/bin/env python3
"""Lock hand-off in Python's multiprocessing: the peer row for ipckit's lock_bench.

Two multiprocessing.Process each increment one multiprocessing.Value('q')
N times under `with v.get_lock():`. Both wait on an Event and are released
together; the timed region runs from the parent's release (just before
Event.set()) to the later child's own "finished" timestamp (CLOCK_MONOTONIC,
the same clock lock_bench uses), so process start-up and exit are outside it.
The final value is checked to be exactly 2 x N.

Prints a table line per run and, last, one machine-readable line:
    RESULT python_mp_value <median incr/s> incr_per_s min=<min> max=<max>
"""

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

PROCS = 2


def now():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def worker(index, n, value, ready, go, started, finished):
    lock = value.get_lock()
    with lock:  # warm the lock (and its semaphore) before the start line
        pass
    ready.release()
    go.wait()
    started[index] = now()
    for _ in range(n):
        with lock:
            value.value += 1
    finished[index] = now()


def one_run(ctx, n):
    value = ctx.Value("q", 0)
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    started = ctx.Array("d", PROCS, lock=False)
    finished = ctx.Array("d", PROCS, lock=False)
    procs = [ctx.Process(target=worker, args=(i, n, value, ready, go, started, finished)) for i in range(PROCS)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    time.sleep(0.01)  # let both settle into go.wait()
    t0 = now()
    go.set()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        raise RuntimeError("a child process failed: exit codes %s" % [p.exitcode for p in procs])
    want = n * PROCS
    if value.value != want:
        raise RuntimeError("final count %d != expected %d" % (value.value, want))
    elapsed = max(finished) - t0
    skew = max(started) - t0
    return want / elapsed, elapsed, skew


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", "-n", type=int, default=1_000_000, help="increments per process (default 1000000)")
    ap.add_argument("--runs", "-r", type=int, default=5, help="measured runs (default 5)")
    ap.add_argument("--warmup", type=int, default=0, help="unmeasured runs first (default 0)")
    ap.add_argument("--start-method", default="fork", choices=["fork", "forkserver", "spawn"],
                    help="multiprocessing start method (default fork, Linux's default)")
    ap.add_argument("--quiet", "-q", action="store_true", help="print only the RESULT line")
    args = ap.parse_args()
    if args.iterations <= 0 or args.runs <= 0 or args.warmup < 0:
        ap.error("--iterations and --runs must be positive, --warmup non-negative")

    ctx = mp.get_context(args.start_method)
    if not args.quiet:
        print("python_lock: %d processes x %d increments of multiprocessing.Value('q') under get_lock(), "
              "%d runs (+%d warm-up); Python %s, %d CPUs"
              % (PROCS, args.iterations, args.runs, args.warmup, sys.version.split()[0], os.cpu_count()),
              flush=True)
    rates = []
    for r in range(-args.warmup, args.runs):
        rate, elapsed, skew = one_run(ctx, args.iterations)
        if r >= 0:
            rates.append(rate)
        if not args.quiet:
            print("  run %d%s: %.3f M incr/s (%.3f s, later child started %.0f us after release)"
                  % (r + 1 if r >= 0 else 0, "" if r >= 0 else " (warm-up)", rate / 1e6, elapsed, skew * 1e6),
                  flush=True)
    med = statistics.median(rates)
    if not args.quiet:
        print("python_mp_value  median %.3f  min %.3f  max %.3f  M incr/s" % (med / 1e6, min(rates) / 1e6,
                                                                             max(rates) / 1e6))
    print("RESULT python_mp_value %.4e incr_per_s min=%.4e max=%.4e" % (med, min(rates), max(rates)), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("python_lock: FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)
