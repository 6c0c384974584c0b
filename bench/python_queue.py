#!/usr/bin/env python3
"""multiprocessing.Queue between processes: the Python rows of ipckit's queue_bench.

Two parts, as in queue_bench (both sides are forked children; A/the producer
on one CPU, B/the consumer on another unless --no-pin; each run starts once
the CPUs are idle, bounded by --quiet-wait-ms):

oneway   one-way throughput of 64-byte messages: the producer puts
         --messages items (after --warm-messages untimed ones that both sides
         pass first), the consumer gets them and checks the sequence numbers.
         An item is the Python analogue of queue_bench's 64-byte struct: a
         tuple (seq, 56-byte bytes payload), pickled by the Queue. The timed
         region runs from the parent's clock read just before it releases both
         sides to the consumer's clock read after the last item.
realistic one-way throughput, as oneway, of the Python analogue of queue_bench's
         realistic object: a dict {"name": 14-char str, "values": list of 10
         ints (values[0] is the sequence number), "counts": dict of 4 str ->
         int}, which a C++ user would send as a struct with a cereal
         serialize() (150 bytes encoded); --real-messages items per run.
pingpong round trip over two Queues: A puts (i, payload) on the first, B gets
         it, checks it and puts it on the second, A gets and checks it. A
         reads CLOCK_MONOTONIC before each round trip and after the last; a
         run's median and p99 are over its timed round trips.

The parent waits for every child with a timeout (--timeout-s, 4x for the
timing side) and kills a stuck run instead of hanging; the timed loops call
get() without a timeout (a timeout costs a poll() per item). Prints one line per run and, last, machine-readable lines:
    RESULT q1_python_mp_queue <msg/s> msg_per_s min=<> max=<>
    RESULT qr_python_mp_queue <msg/s> msg_per_s min=<> max=<>
    RESULT rt_python_mp_queue_median <us> us min=<> max=<>
    RESULT rt_python_mp_queue_p99 <us> us min=<> max=<>
(medians over runs; min and max over runs).
"""

import argparse
import multiprocessing as mp
import os
import queue as queue_mod
import statistics
import sys
import time

from bench_common import quantile, wait_for_quiet

CPUS = (None, None)
PAYLOAD = b"x" * 56
NAME = "sensor-0042-aa"
COUNTS = {"apples": 1, "grapes": 2, "lemons": 3, "mangos": 4}


def small_item(i):
    return (i, PAYLOAD)


def small_ok(item, i):
    return item[0] == i and item[1] == PAYLOAD


def realistic_item(i):
    # Built per item, as a program builds the object it sends.
    return {"name": NAME, "values": [i, 1, 2, 3, 4, 5, 6, 7, 8, 9], "counts": dict(COUNTS)}


def realistic_ok(item, i):
    return item["values"][0] == i and item["name"] == NAME and len(item["values"]) == 10 and item["counts"] == COUNTS


ITEMS = {"oneway": (small_item, small_ok), "realistic": (realistic_item, realistic_ok)}


def pin(cpu):
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def fail(who, what):
    sys.stderr.write("python_queue: %s: %s\n" % (who, what))
    sys.stderr.flush()
    os._exit(4)


def get_checked(q, want, timeout, who, ok=small_ok):
    """Gets one item and checks it; with timeout=None blocks (the parent's watchdog then bounds the run)."""
    try:
        item = q.get(timeout=timeout) if timeout is not None else q.get()
    except queue_mod.Empty:
        fail(who, "no item %d within %s s" % (want, timeout))
    if not ok(item, want):
        fail(who, "item %d arrived as %r" % (want, item))
    return item


# --- oneway -----------------------------------------------------------------

def producer(q, kind, warm, n, ready, go, timeout, cpu):
    pin(cpu)
    make = ITEMS[kind][0]
    for i in range(warm):
        q.put(make(i))
    ready.release()
    if not go.wait(timeout):
        fail("producer", "never released")
    put = q.put
    for i in range(warm, warm + n):
        put(make(i))
    # Process exit waits for the Queue's feeder thread to flush everything.


def consumer(q, kind, warm, n, ready, go, end_ns, timeout, cpu):
    pin(cpu)
    ok = ITEMS[kind][1]
    for i in range(warm):
        item = get_checked(q, i, timeout, "consumer (warm-up)", ok)
    ready.release()
    if not go.wait(timeout):
        fail("consumer", "never released")
    get = q.get  # no timeout in the timed loop (it costs a poll() per item); the parent has a watchdog
    for i in range(warm, warm + n):
        item = get()
        if not ok(item, i):
            fail("consumer", "item %d arrived as %r" % (i, item))
    end_ns.value = time.monotonic_ns()


def run_oneway(ctx, args, kind):
    quiet = wait_for_quiet(args.quiet_wait_ms / 1000.0)
    q = ctx.Queue()
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    end_ns = ctx.Value("q", 0, lock=False)
    n = args.messages if kind == "oneway" else args.real_messages
    p = ctx.Process(target=producer, args=(q, kind, args.warm_messages, n, ready, go, args.timeout_s, CPUS[0]))
    c = ctx.Process(target=consumer, args=(q, kind, args.warm_messages, n, ready, go, end_ns, args.timeout_s, CPUS[1]))
    p.start()
    c.start()
    for _ in range(2):
        if not ready.acquire(timeout=args.timeout_s):
            p.kill()
            c.kill()
            raise RuntimeError("oneway: the children never reached the start line")
    time.sleep(0.01)  # let both settle into go.wait()
    t0 = time.monotonic_ns()
    go.set()
    c.join(args.timeout_s * 4)
    p.join(args.timeout_s)
    for x in (p, c):
        if x.is_alive():
            x.kill()
            x.join()
            raise RuntimeError("oneway: a child did not finish")
    if p.exitcode != 0 or c.exitcode != 0:
        raise RuntimeError("oneway: a child failed: exit codes %s, %s" % (p.exitcode, c.exitcode))
    secs = (end_ns.value - t0) / 1e9
    return n / secs, quiet


# --- pingpong ---------------------------------------------------------------

def side_a(ab, ba, total, skip, ready, go, stamps, timeout, cpu):
    pin(cpu)
    n = total - skip
    local = [0] * (n + 1)
    now = time.monotonic_ns
    ready.release()
    if not go.wait(timeout):
        fail("A", "never released")
    for i in range(total):
        if i >= skip:
            local[i - skip] = now()
        ab.put((i, PAYLOAD))
        get_checked(ba, i, None, "A")
    local[n] = now()
    stamps[:] = local


def side_b(ab, ba, total, ready, go, timeout, cpu):
    pin(cpu)
    ready.release()
    if not go.wait(timeout):
        fail("B", "never released")
    for i in range(total):
        ba.put(get_checked(ab, i, None, "B"))


def run_pingpong(ctx, args):
    quiet = wait_for_quiet(args.quiet_wait_ms / 1000.0)
    n = args.round_trips
    total = args.warmup_trips + n
    ab, ba = ctx.Queue(), ctx.Queue()
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    stamps = ctx.Array("q", n + 1, lock=False)
    a = ctx.Process(target=side_a, args=(ab, ba, total, args.warmup_trips, ready, go, stamps, args.timeout_s, CPUS[0]))
    b = ctx.Process(target=side_b, args=(ab, ba, total, ready, go, args.timeout_s, CPUS[1]))
    a.start()
    b.start()
    for _ in range(2):
        if not ready.acquire(timeout=args.timeout_s):
            a.kill()
            b.kill()
            raise RuntimeError("pingpong: the children never reached the start line")
    time.sleep(0.01)
    go.set()
    a.join(args.timeout_s * 4)
    b.join(args.timeout_s)
    for x in (a, b):
        if x.is_alive():
            x.kill()
            x.join()
            raise RuntimeError("pingpong: a child did not finish")
    if a.exitcode != 0 or b.exitcode != 0:
        raise RuntimeError("pingpong: a child failed: exit codes %s, %s" % (a.exitcode, b.exitcode))
    st = list(stamps)
    rts = sorted((st[i + 1] - st[i]) / 1e3 for i in range(n))
    return quantile(rts, 0.5), quantile(rts, 0.99), rts[-1], quiet


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", "-m", action="append", choices=["oneway", "realistic", "pingpong"],
                    help="run only this part (repeatable; default all)")
    ap.add_argument("--messages", "-n", type=int, default=200000, help="oneway: timed items per run (default 200000)")
    ap.add_argument("--real-messages", type=int, default=100000,
                    help="realistic: timed items per run (default 100000)")
    ap.add_argument("--warm-messages", type=int, default=2000, help="oneway: untimed items first (default 2000)")
    ap.add_argument("--round-trips", type=int, default=5000, help="pingpong: timed round trips per run (default 5000)")
    ap.add_argument("--warmup-trips", type=int, default=200, help="pingpong: untimed round trips first (default 200)")
    ap.add_argument("--runs", "-r", type=int, default=5, help="measured runs per part (default 5)")
    ap.add_argument("--warmup", type=int, default=0, help="unmeasured runs first (default 0)")
    ap.add_argument("--timeout-s", type=float, default=20.0, help="a wait longer than this fails the run (default 20)")
    ap.add_argument("--start-method", default="fork", choices=["fork", "forkserver", "spawn"],
                    help="multiprocessing start method (default fork, Linux's default)")
    ap.add_argument("--quiet-wait-ms", type=int, default=1000,
                    help="before each run, wait up to this long for idle CPUs (0: don't; default 1000)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin the two sides to two different CPUs")
    ap.add_argument("--quiet", "-q", action="store_true", help="print only the RESULT lines")
    args = ap.parse_args()
    if min(args.messages, args.real_messages, args.round_trips, args.runs) <= 0 or min(args.warmup, args.warm_messages,
                                                                   args.warmup_trips) < 0:
        ap.error("counts must be positive (warm-ups non-negative)")
    modes = args.mode or ["oneway", "realistic", "pingpong"]

    global CPUS
    allowed = sorted(os.sched_getaffinity(0))
    if not args.no_pin and len(allowed) >= 2:
        CPUS = (allowed[0], allowed[1])
    ctx = mp.get_context(args.start_method)
    say = (lambda *a: None) if args.quiet else (lambda s: print(s, flush=True))
    say("python_queue: multiprocessing.Queue, Python %s, %d CPUs, %s; %d runs (+%d warm-up) per part"
        % (sys.version.split()[0], os.cpu_count(),
           "sides on CPUs %d and %d" % CPUS if CPUS[0] is not None else "not pinned", args.runs, args.warmup))
    lines = []
    for kind, row in (("oneway", "q1_python_mp_queue"), ("realistic", "qr_python_mp_queue")):
        if kind not in modes:
            continue
        rates = []
        n = args.messages if kind == "oneway" else args.real_messages
        for r in range(-args.warmup, args.runs):
            rate, quiet = run_oneway(ctx, args, kind)
            if r >= 0:
                rates.append(rate)
            say("  %s run %d%s: %.3f M msg/s (%d items)%s"
                % (kind, r + 1 if r >= 0 else 0, "" if r >= 0 else " (warm-up)", rate / 1e6, n,
                   "" if quiet else "  (machine was busy)"))
        m = statistics.median(rates)
        say("python_mp_queue %s  %.3f M msg/s (runs %.3f..%.3f)"
            % (kind, m / 1e6, min(rates) / 1e6, max(rates) / 1e6))
        lines.append("RESULT %s %.6g msg_per_s min=%.6g max=%.6g" % (row, m, min(rates), max(rates)))
    if "pingpong" in modes:
        meds, p99s = [], []
        for r in range(-args.warmup, args.runs):
            med, p99, mx, quiet = run_pingpong(ctx, args)
            if r >= 0:
                meds.append(med)
                p99s.append(p99)
            say("  pingpong run %d%s: median %.2f us  p99 %.2f us  max %.1f us%s"
                % (r + 1 if r >= 0 else 0, "" if r >= 0 else " (warm-up)", med, p99, mx,
                   "" if quiet else "  (machine was busy)"))
        m, p = statistics.median(meds), statistics.median(p99s)
        say("python_mp_queue pingpong  median %.2f us (runs %.2f..%.2f)  p99 %.2f us (runs %.2f..%.2f)"
            % (m, min(meds), max(meds), p, min(p99s), max(p99s)))
        lines.append("RESULT rt_python_mp_queue_median %.3f us min=%.3f max=%.3f" % (m, min(meds), max(meds)))
        lines.append("RESULT rt_python_mp_queue_p99 %.3f us min=%.3f max=%.3f" % (p, min(p99s), max(p99s)))
    for line in lines:
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("python_queue: FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)
