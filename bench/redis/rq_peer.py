#!/usr/bin/python3
"""RQ 1.13 on a Redis server: the RQ rows of scripts/bench.sh's redis section.

An RQ queue on the Redis server at --url, --workers (2) `rq worker`
processes started here as subprocesses (killed at the end), the job
square(n) = n*n. An RQ worker forks a work horse for every job: expect tens
of jobs per second, and keep --tasks small.

RQ 1.13 has no blocking wait for a job's result: the driver polls each job's
status every --poll-ms (1 ms), as RQ users do.

submit   throughput: --tasks queue.enqueue(square, i), then every result in
         enqueue order; tasks/s = tasks / (first enqueue .. last result).
rtt      --trips sequential enqueue -> result round trips (after
         --warm-trips untimed ones): the median and p99 of each run.

Medians over --runs runs are reported, min and max beside them:
    RESULT redis_rq_submit <tasks/s> tasks_per_s min=<> max=<>
    RESULT redis_rq_rtt_median <us> us min=<> max=<>   (and _rtt_p99)
Run it with Debian's python3 (python3-rq, python3-redis):
    /usr/bin/python3 bench/redis/rq_peer.py --url redis://127.0.0.1:6379/0
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QUEUE = "ipckit-bench-rq"


def square(n):
    return n * n


def main():
    sys.path.insert(0, HERE)
    import redis
    import rq
    from peer_common import Workers, print_results, round_trips, throughput, wait_until

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the Redis server: redis://127.0.0.1:PORT/0")
    ap.add_argument("--tasks", "-n", type=int, default=200, help="submit: jobs per run (default 200)")
    ap.add_argument("--trips", type=int, default=50, help="rtt: timed round trips per run (default 50)")
    ap.add_argument("--warm-trips", type=int, default=5, help="rtt: untimed round trips first (default 5)")
    ap.add_argument("--runs", "-r", type=int, default=1, help="measured runs of each part (default 1)")
    ap.add_argument("--workers", "-w", type=int, default=2, help="rq worker processes (default 2)")
    ap.add_argument("--poll-ms", type=float, default=1.0, help="result polling interval (default 1 ms)")
    ap.add_argument("--timeout-s", type=int, default=60, help="a job must finish within this (default 60)")
    args = ap.parse_args()

    conn = redis.Redis.from_url(args.url)
    queue = rq.Queue(QUEUE, connection=conn)
    # The job names this module: the workers import rq_peer.square from HERE.
    import rq_peer
    job_func = rq_peer.square

    def submit(n):
        return queue.enqueue(job_func, n)

    def result(job):
        deadline = time.monotonic() + args.timeout_s
        while True:
            status = job.get_status(refresh=True)
            if status == "finished":
                return job.return_value(refresh=True)
            if status in ("failed", "stopped", "canceled"):
                raise RuntimeError("RQ job %s %s: %s" % (job.id, status, job.exc_info))
            if time.monotonic() >= deadline:
                raise RuntimeError("RQ job %s not finished within %d s (status %s)" % (job.id, args.timeout_s, status))
            time.sleep(args.poll_ms / 1e3)

    log = tempfile.NamedTemporaryFile(prefix="ipckit-rq-worker.", suffix=".log", delete=False).name
    cmd = [sys.executable, "-m", "rq.cli", "worker", "--url", args.url, "--path", HERE, "--logging_level", "WARNING",
           QUEUE]
    print("rq %s: %d workers, redis %s" % (rq.__version__ if hasattr(rq, "__version__") else rq.VERSION,
                                           args.workers, args.url))
    workers = Workers([cmd] * args.workers, cwd=HERE, env=dict(os.environ), log_path=log)
    try:
        def answers():
            return len(rq.Worker.all(queue=queue)) == args.workers
        t0 = time.monotonic()
        wait_until("the RQ workers", answers, args.timeout_s, workers)
        print("workers registered after %.1f s" % (time.monotonic() - t0))
        round_trips(submit, result, args.warm_trips)

        submits, medians, p99s = [], [], []
        for run in range(args.runs):
            tps = throughput(submit, result, args.tasks)
            median, p99 = round_trips(submit, result, args.trips)
            print("run %d: %d jobs %.1f tasks/s; %d round trips median %.0f us p99 %.0f us"
                  % (run + 1, args.tasks, tps, args.trips, median, p99))
            sys.stdout.flush()
            submits.append(tps)
            medians.append(median)
            p99s.append(p99)
        print_results("redis_rq", submits, medians, p99s)
    finally:
        workers.stop()
        os.unlink(log)


if __name__ == "__main__":
    main()
