#!/usr/bin/env python3
"""Wake-up round trip through multiprocessing.Event: the peer row for ipckit's wake_bench.

Two processes ping-pong through two multiprocessing.Event objects, "ping" and
"pong", with the same protocol wake_bench uses for ipckit's Event:
    A (the timing side):  ping.set(); pong.wait(); pong.clear()
    B (the answering side): ping.wait(); ping.clear(); pong.set()
Each side clears its own event before it sets the other's, and only the other
side sets it, so no set is lost. A and B are both forked children (as in
wake_bench); A takes a CLOCK_MONOTONIC timestamp (time.monotonic_ns) before
each round trip and one after the last, so each round trip's time is the
difference of consecutive stamps. The first --warmup-trips round trips of a
run are not timed; process start-up and exit are outside the timed region.
A and B are pinned to two different CPUs (as in wake_bench; --no-pin lets the
scheduler put them on one), and each run starts once the CPUs are idle
(bounded wait, --quiet-wait-ms).
Every wait has a timeout (--timeout-s): a lost wake-up fails the run instead of
hanging it.

Prints one line per run and, last, machine-readable lines:
    RESULT wake_python_mp_event_median <median us> us min=<min> max=<max>
    RESULT wake_python_mp_event_p99 <p99 us> us min=<min> max=<max>
(median over runs of each run's median / p99, min and max over runs).
"""

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

from bench_common import quantile, wait_for_quiet


CPUS = (None, None)


def side_a(total, skip, ping, pong, ready, go, stamps, timeout, cpu=None):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    n = total - skip
    local = [0] * (n + 1)  # stamps are kept locally, copied out at the end
    now = time.monotonic_ns
    ready.release()
    go.wait()
    for i in range(total):
        if i >= skip:
            local[i - skip] = now()
        ping.set()
        if not pong.wait(timeout):
            sys.stderr.write("python_event: A: no answer to round trip %d within %s s (lost wake-up?)\n" % (i, timeout))
            os._exit(4)
        pong.clear()
    local[n] = now()
    stamps[:] = local


def side_b(total, ping, pong, ready, go, timeout, cpu=None):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    ready.release()
    go.wait()
    for i in range(total):
        if not ping.wait(timeout):
            sys.stderr.write("python_event: B: no ping %d within %s s (lost wake-up?)\n" % (i, timeout))
            os._exit(4)
        ping.clear()
        pong.set()


def one_run(ctx, n, warm_trips, timeout, quiet_wait_s):
    quiet = wait_for_quiet(quiet_wait_s)
    total = warm_trips + n
    ping = ctx.Event()
    pong = ctx.Event()
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    stamps = ctx.Array("q", n + 1, lock=False)
    a = ctx.Process(target=side_a, args=(total, warm_trips, ping, pong, ready, go, stamps, timeout, CPUS[0]))
    b = ctx.Process(target=side_b, args=(total, ping, pong, ready, go, timeout, CPUS[1]))
    a.start()
    b.start()
    for _ in range(2):
        if not ready.acquire(timeout=timeout):
            a.kill()
            b.kill()
            raise RuntimeError("the children never reached the start line")
    time.sleep(0.01)  # let both settle into go.wait()
    go.set()
    a.join(timeout * 4)
    b.join(timeout)
    for p in (a, b):
        if p.is_alive():
            p.kill()
            p.join()
            raise RuntimeError("a child did not finish (deadlock?)")
    if a.exitcode != 0 or b.exitcode != 0:
        raise RuntimeError("a child process failed: exit codes %s, %s" % (a.exitcode, b.exitcode))
    st = list(stamps)
    rts = sorted((st[i + 1] - st[i]) / 1e3 for i in range(n))
    return quantile(rts, 0.5), quantile(rts, 0.99), rts[-1], quiet


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--round-trips", "-n", type=int, default=5000, help="timed round trips per run (default 5000)")
    ap.add_argument("--warmup-trips", type=int, default=200, help="untimed round trips first in each run (default 200)")
    ap.add_argument("--runs", "-r", type=int, default=5, help="measured runs (default 5)")
    ap.add_argument("--warmup", type=int, default=0, help="unmeasured runs first (default 0)")
    ap.add_argument("--timeout-s", type=float, default=10.0, help="a wait longer than this fails the run (default 10)")
    ap.add_argument("--start-method", default="fork", choices=["fork", "forkserver", "spawn"],
                    help="multiprocessing start method (default fork, Linux's default)")
    ap.add_argument("--quiet-wait-ms", type=int, default=2000,
                    help="before each run, wait up to this long for idle CPUs (0: don't; default 2000)")
    ap.add_argument("--no-pin", action="store_true",
                    help="do not pin A and B to two different CPUs (the scheduler may then put them on one)")
    ap.add_argument("--quiet", "-q", action="store_true", help="print only the RESULT lines")
    args = ap.parse_args()
    if args.round_trips <= 0 or args.runs <= 0 or args.warmup < 0 or args.warmup_trips < 0:
        ap.error("--round-trips and --runs must be positive, --warmup and --warmup-trips non-negative")

    global CPUS
    allowed = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(allowed) >= 2:
        CPUS = (allowed[0], allowed[1])
    ctx = mp.get_context(args.start_method)
    if not args.quiet:
        print("python_event: multiprocessing.Event ping-pong between 2 processes, %d timed round trips per run "
              "(after %d untimed), %d runs (+%d warm-up); Python %s, %d CPUs; %s"
              % (args.round_trips, args.warmup_trips, args.runs, args.warmup, sys.version.split()[0], os.cpu_count(),
                 "A on CPU %d, B on CPU %d" % CPUS if CPUS[0] is not None else "not pinned"),
              flush=True)
    medians, p99s = [], []
    for r in range(-args.warmup, args.runs):
        med, p99, mx, quiet = one_run(ctx, args.round_trips, args.warmup_trips, args.timeout_s,
                                      args.quiet_wait_ms / 1000.0)
        if r >= 0:
            medians.append(med)
            p99s.append(p99)
        if not args.quiet:
            print("  run %d%s: median %.2f us  p99 %.2f us  max %.1f us%s"
                  % (r + 1 if r >= 0 else 0, "" if r >= 0 else " (warm-up)", med, p99, mx,
                     "" if quiet else "  (machine was busy)"), flush=True)
    m, p = statistics.median(medians), statistics.median(p99s)
    if not args.quiet:
        print("python_mp_event  median %.2f us (runs %.2f..%.2f)  p99 %.2f us (runs %.2f..%.2f)"
              % (m, min(medians), max(medians), p, min(p99s), max(p99s)))
    print("RESULT wake_python_mp_event_median %.3f us min=%.3f max=%.3f" % (m, min(medians), max(medians)))
    print("RESULT wake_python_mp_event_p99 %.3f us min=%.3f max=%.3f" % (p, min(p99s), max(p99s)), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("python_event: FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)
