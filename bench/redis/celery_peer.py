#!/usr/bin/python3
"""Celery 5.2 on a Redis server: the Celery rows of scripts/bench.sh's redis section.

A Celery app with the Redis server at --url as broker and result backend (the
defaults otherwise, as a Celery user runs it: JSON, prefetch 4, acks early),
one worker `celery -A celery_peer worker --pool prefork --concurrency 2`
started here as a subprocess (and killed at the end), the task square(n) = n*n.

submit   throughput: --tasks square.delay(i), then .get() of every result in
         submission order; tasks/s = tasks / (first delay .. last result).
rtt      --trips sequential delay -> get round trips (after --warm-trips
         untimed ones): the median and p99 of each run.

Medians over --runs runs are reported, min and max beside them:
    RESULT redis_celery_submit <tasks/s> tasks_per_s min=<> max=<>
    RESULT redis_celery_rtt_median <us> us min=<> max=<>   (and _rtt_p99)
Run it with Debian's python3 (python3-celery, python3-redis):
    /usr/bin/python3 bench/redis/celery_peer.py --url redis://127.0.0.1:6379/0
"""
import argparse
import os
import sys
import tempfile
import time

from celery import Celery

HERE = os.path.dirname(os.path.abspath(__file__))
URL_ENV = "IPCKIT_BENCH_CELERY_URL"
QUEUE = "ipckit-bench-celery"

# The worker imports this module (-A celery_peer) and finds the URL in its environment.
app = Celery("celery_peer", broker=os.environ.get(URL_ENV, "redis://127.0.0.1:6379/0"),
             backend=os.environ.get(URL_ENV, "redis://127.0.0.1:6379/0"))
app.conf.task_default_queue = QUEUE
app.conf.worker_hijack_root_logger = False


# An explicit name: this file is __main__ for the driver and celery_peer in the worker.
@app.task(name="ipckit_bench.square")
def square(n):
    return n * n


def main():
    sys.path.insert(0, HERE)
    from peer_common import Workers, print_results, round_trips, throughput, wait_until

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the Redis server: redis://127.0.0.1:PORT/0")
    ap.add_argument("--tasks", "-n", type=int, default=2000, help="submit: tasks per run (default 2000)")
    ap.add_argument("--trips", type=int, default=500, help="rtt: timed round trips per run (default 500)")
    ap.add_argument("--warm-trips", type=int, default=50, help="rtt: untimed round trips first (default 50)")
    ap.add_argument("--runs", "-r", type=int, default=3, help="measured runs of each part (default 3)")
    ap.add_argument("--concurrency", type=int, default=2, help="prefork processes of the worker (default 2)")
    ap.add_argument("--timeout-s", type=int, default=60, help="the worker must answer within this (default 60)")
    args = ap.parse_args()

    app.conf.broker_url = app.conf.result_backend = args.url
    env = dict(os.environ, **{URL_ENV: args.url})
    log = tempfile.NamedTemporaryFile(prefix="ipckit-celery-worker.", suffix=".log", delete=False).name
    cmd = [sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "--pool", "prefork",
           "--concurrency", str(args.concurrency), "--queues", QUEUE, "--loglevel", "WARNING",
           "--hostname", "ipckit-bench-%d@%%h" % os.getpid()]
    print("celery %s: 1 worker, prefork, concurrency %d, broker and backend %s"
          % (__import__("celery").__version__, args.concurrency, args.url))
    workers = Workers([cmd], cwd=HERE, env=env, log_path=log)
    try:
        submit = square.delay
        result = lambda h: h.get(timeout=args.timeout_s)  # noqa: E731

        def answers():
            return bool(app.control.ping(timeout=0.5)) and result(submit(7)) == 49
        t0 = time.monotonic()
        wait_until("the Celery worker", answers, args.timeout_s, workers)
        print("worker answered after %.1f s" % (time.monotonic() - t0))
        round_trips(submit, result, args.warm_trips)

        submits, medians, p99s = [], [], []
        for run in range(args.runs):
            tps = throughput(submit, result, args.tasks)
            median, p99 = round_trips(submit, result, args.trips)
            print("run %d: %d tasks %.0f tasks/s; %d round trips median %.0f us p99 %.0f us"
                  % (run + 1, args.tasks, tps, args.trips, median, p99))
            sys.stdout.flush()
            submits.append(tps)
            medians.append(median)
            p99s.append(p99)
        print_results("redis_celery", submits, medians, p99s)
    finally:
        workers.stop()
        os.unlink(log)


if __name__ == "__main__":
    main()
