"""Helpers shared by the Redis peers of scripts/bench.sh's redis section
(celery_peer.py, rq_peer.py): worker subprocesses, timing, RESULT lines.

They run under Debian's /usr/bin/python3 (python3-celery, python3-rq,
python3-redis), importing only the standard library here.
"""
import ctypes
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench_common import quantile  # noqa: E402  (bench/bench_common.py)


def _die_with_parent():
    """In the worker, before exec: SIGTERM when the driver dies (even by
    SIGKILL), so that no worker outlives the benchmark."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Workers:
    """Worker subprocesses, each in its own session, so that stop() also ends
    the processes they fork (Celery's prefork children, RQ's work horses)."""

    def __init__(self, commands, cwd, env, log_path):
        self.log = open(log_path, "ab")
        self.procs = [subprocess.Popen(c, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                       start_new_session=True, preexec_fn=_die_with_parent) for c in commands]

    def check_alive(self):
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError("a worker exited with status %s; see %s" % (p.returncode, self.log.name))

    def stop(self, grace_s=10):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The whole session: a warm-shutdown worker may leave children behind.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        self.log.close()

    def log_tail(self, lines=20):
        with open(self.log.name, "rb") as f:
            return b"".join(f.readlines()[-lines:]).decode(errors="replace")


def wait_until(what, ready, timeout_s, workers):
    """Polls ready() (bounded by timeout_s) while the workers are alive."""
    deadline = time.monotonic() + timeout_s
    while True:
        workers.check_alive()
        if ready():
            return
        if time.monotonic() >= deadline:
            raise RuntimeError("%s not ready within %d s; worker log:\n%s" % (what, timeout_s, workers.log_tail()))
        time.sleep(0.1)


def throughput(submit, result, n):
    """Submits n tasks (square(i)), then waits for every result in order; tasks/s."""
    t0 = time.monotonic_ns()
    handles = [submit(i) for i in range(n)]
    for i, h in enumerate(handles):
        check(i, result(h))
    return n * 1e9 / (time.monotonic_ns() - t0)


def round_trips(submit, result, trips):
    """trips sequential submit -> result round trips; (median, p99) in us."""
    samples = []
    for i in range(trips):
        t0 = time.monotonic_ns()
        check(i, result(submit(i)))
        samples.append((time.monotonic_ns() - t0) / 1e3)
    samples.sort()
    return statistics.median(samples), quantile(samples, 0.99)


def check(n, got):
    if got != n * n:
        raise RuntimeError("task %d returned %r, not its square" % (n, got))


def print_results(prefix, submits, medians, p99s):
    """Medians over runs, with min and max, in bench.sh's RESULT format."""
    def line(row, vals, unit, fmt):
        print(("RESULT %s_%s " + fmt + " %s min=" + fmt + " max=" + fmt) %
              (prefix, row, statistics.median(vals), unit, min(vals), max(vals)))
    if submits:
        line("submit", submits, "tasks_per_s", "%.6g")
    if medians:
        line("rtt_median", medians, "us", "%.6g")
        line("rtt_p99", p99s, "us", "%.6g")
    sys.stdout.flush()
