// bench/redis_bench.cpp — ipckit's queues and ProcessPool over Redis Streams.
//
// The ipckit rows of scripts/bench.sh's `redis` section; its peers (the
// redis-benchmark XADD floor, Celery, RQ) run on the same server in the same
// run (bench/redis/). Every process runs unpinned, as users run them, and
// talks to the server at --url over its own connections; each run uses fresh
// keys (removed afterwards).
//
// Parts (select with --mode PART; see --list):
//
// 1. queue — one way, 64-byte plain structs through hub.queue<Item64>: a
//    forked producer put_many()s --items items in batches of --batch, a forked
//    consumer get_many(--batch)s them (each get also acknowledges the
//    previous batch, in the same script call) and checks their order.
//    items/s = items / (start .. the consumer's last item). Rows:
//      redis_queue_oneway         batches of --batch (256): the target's row
//      redis_queue_oneway_b64     batches of 64
//      redis_queue_oneway_single  put() / get() one item at a time
//                                 (--single-items), and beside it
//      redis_queue_put_single     the producer's own rate (its last put)
//
// 2. pool — ipckit::ProcessPool from ipckit::redis::pool() with --workers (2)
//    worker processes forked from here (serve_pool, tasks by IPCKIT_TASK
//    name), the task n*n. Each run makes a fresh pool, waits until every
//    worker has checked in and warms it with --warm-tasks tasks. Rows, each
//    with workers taking 1 and 16 tasks at a time (PoolOptions::prefetch):
//      redis_pool_submit[_p1]     submit --tasks tasks, then get every future
//                                 in order; tasks / (first submit .. last get)
//      redis_pool_rtt[_p16]       --trips sequential submit -> get round
//                                 trips; the median and p99 of each run
//    The unsuffixed rows are the ones scripts/bench.sh checks against Celery
//    (submit with prefetch 16, Celery's own default being 4 per process;
//    round trips with prefetch 1, the pool's default).
//
// 3. redelivery — a killed worker's task: a pool with visibility_timeout
//    --lease-ms (500) and retries 1, two workers; a task that stalls on the
//    worker that first runs it; that worker is SIGKILLed once it runs it,
//    and the time from the kill until the task's future completes (on the
//    other worker) is measured. Rows:
//      redis_redelivery_ms        median over runs
//      redis_redelivery_lease_ms  the lease, so that the check can compare
//
// Medians over --runs runs are reported, min and max beside them:
//   RESULT <row> <value> <unit> min=<> max=<>
// A row that fails prints no RESULT line and the program exits 1 (the other
// rows are still reported). A watchdog (--timeout-s per run) ends the
// program, naming the run, if one does not finish.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstring>
#include <ipckit/redis.hpp>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"

using namespace bench;
namespace rd = ipckit::redis;

namespace {

// ---------------------------------------------------------------------------
// Parameters.

struct Params {
  std::string url;
  std::int64_t items = 200'000;
  std::int64_t single_items = 10'000;
  std::int64_t batch = 256;
  int workers = 2;
  std::int64_t tasks = 20'000;
  std::int64_t warm_tasks = 500;
  std::int64_t trips = 2'000;
  std::int64_t warm_trips = 100;
  int lease_ms = 500;
};
Params P;

int g_timeout_s = 120;
int g_quiet_wait_ms = 300;
bool g_verbose = false;
std::map<std::string, std::string> g_failed;  // row -> why
std::vector<std::string> g_results;           // RESULT lines, printed last

std::string unique(const std::string& what) {
  static int n = 0;
  return "bench-" + what + "-" + std::to_string(getpid()) + "-" + std::to_string(++n);
}

// The watchdog: SIGALRM past --timeout-s ends the program naming the run.
char g_running[128] = "";
extern "C" void on_alarm(int) {
  const char head[] = "redis_bench: watchdog: this run did not finish in time: ";
  [[maybe_unused]] auto a = ::write(2, head, sizeof head - 1);
  [[maybe_unused]] auto b = ::write(2, g_running, std::strlen(g_running));
  [[maybe_unused]] auto c = ::write(2, "\n", 1);
  _exit(1);  // the forked children die with it (PR_SET_PDEATHSIG)
}
void arm_watchdog(const std::string& run) {
  std::snprintf(g_running, sizeof g_running, "%s", run.c_str());
  std::signal(SIGALRM, on_alarm);
  alarm(static_cast<unsigned>(g_timeout_s));
}

// What forked children report back, in anonymous shared memory.
struct Shared {
  std::atomic<int> go{0};
  std::atomic<std::int64_t> start_ns{0}, producer_end_ns{0}, consumer_end_ns{0};
  std::atomic<std::int64_t> got{0};
  std::atomic<int> bad{0};    // the consumer saw an item out of order
  std::atomic<int> ready{0};  // children that opened their handle
  // redelivery: the pid that first ran the stalling task, and when.
  std::atomic<int> stalled_pid{0};
  std::atomic<int> runs_of_stall{0};
  char why[256]{};
};
Shared* g_shared = nullptr;

void child_failed(const char* what) {
  std::snprintf(g_shared->why, sizeof g_shared->why, "%s", what);
  std::fprintf(stderr, "redis_bench: child pid %d: %s\n", getpid(), what);
  _exit(1);
}

// ---------------------------------------------------------------------------
// 1. queue.

struct Item64 {
  std::uint64_t seq;
  char pad[56];
};
static_assert(sizeof(Item64) == 64);

struct QueueRun {
  double rate = 0;      // items/s, one way
  double put_rate = 0;  // items/s, the producer alone
};

// In every forked child: it dies with the bench (a watchdog's _exit too).
void die_with_parent() { ::prctl(PR_SET_PDEATHSIG, SIGKILL); }

void wait_go() {
  while (g_shared->go.load(std::memory_order_acquire) == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

QueueRun queue_run(std::int64_t items, std::int64_t batch, bool single) {
  const std::string name = unique("queue");
  Shared& s = *new (g_shared) Shared();
  rd::Hub hub(P.url);
  { auto q = hub.queue<Item64>(name); }  // made before either side starts
  Children kids;
  std::atomic<int>& ready = s.ready;
  kids.spawn([&] {
    die_with_parent();
    try {
      auto q = rd::Hub(P.url).queue<Item64>(name);
      (void)q.qsize();  // connected
      ready.fetch_add(1);
      wait_go();
      std::vector<Item64> buf(static_cast<std::size_t>(batch));
      for (auto& it : buf) std::memset(it.pad, 'x', sizeof it.pad);
      std::int64_t seq = 0;
      while (seq < items) {
        if (single) {
          buf[0].seq = static_cast<std::uint64_t>(seq++);
          q.put(buf[0]);
          continue;
        }
        const std::int64_t n = std::min(batch, items - seq);
        for (std::int64_t i = 0; i < n; ++i) buf[static_cast<std::size_t>(i)].seq = static_cast<std::uint64_t>(seq++);
        q.put_many(std::span<const Item64>(buf.data(), static_cast<std::size_t>(n)));
      }
      s.producer_end_ns = now_ns();
    } catch (const std::exception& e) {
      child_failed(e.what());
    }
    _exit(0);
  });
  kids.spawn([&] {
    die_with_parent();
    try {
      auto q = rd::Hub(P.url).queue<Item64>(name);
      (void)q.qsize();
      ready.fetch_add(1);
      wait_go();
      std::int64_t next = 0;
      while (next < items) {
        if (single) {
          const Item64 it = q.get();
          if (it.seq != static_cast<std::uint64_t>(next)) s.bad = 1;
          ++next;
          continue;
        }
        for (const Item64& it : q.get_many(static_cast<std::size_t>(batch))) {
          if (it.seq != static_cast<std::uint64_t>(next)) s.bad = 1;
          ++next;
        }
      }
      s.consumer_end_ns = now_ns();
      s.got = next;
      q.ack();
    } catch (const std::exception& e) {
      child_failed(e.what());
    }
    _exit(0);
  });
  const std::int64_t ready_by = now_ns() + 10'000'000'000;
  while (ready.load() < 2 && now_ns() < ready_by && !kids.any_exited())
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  if (ready.load() < 2) throw std::runtime_error(std::string("a side did not start: ") + s.why);
  s.start_ns = now_ns();
  s.go.store(1, std::memory_order_release);
  bool timed_out = false;
  const bool ok = kids.wait_all(now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000, &timed_out);
  hub.remove(name);
  if (!ok) throw std::runtime_error(timed_out ? "timed out" : std::string("a side failed: ") + s.why);
  if (s.bad != 0) throw std::runtime_error("items arrived out of order");
  if (s.got != items) throw std::runtime_error("the consumer got " + std::to_string(s.got.load()) + " items");
  QueueRun r;
  r.rate = static_cast<double>(items) * 1e9 / static_cast<double>(s.consumer_end_ns - s.start_ns);
  r.put_rate = static_cast<double>(items) * 1e9 / static_cast<double>(s.producer_end_ns - s.start_ns);
  return r;
}

// ---------------------------------------------------------------------------
// 2. and 3. pool.

std::int64_t rb_square(std::int64_t n) { return n * n; }
// Stalls (60 s) on the first worker that runs it; answers its pid on any other.
std::int64_t rb_stall(std::int64_t) {
  int none = 0;
  g_shared->runs_of_stall.fetch_add(1);
  if (g_shared->stalled_pid.compare_exchange_strong(none, getpid()))
    std::this_thread::sleep_for(std::chrono::seconds(60));
  return getpid();
}
IPCKIT_TASK(rb_square);
IPCKIT_TASK(rb_stall);

// Worker processes serving `name` (forked before the client pool exists:
// the client's threads are not forked), until close_pool.
void start_workers(Children& kids, const std::string& name, const rd::PoolOptions& o) {
  for (int i = 0; i < P.workers; ++i)
    kids.spawn([=] {
      die_with_parent();
      try {
        rd::serve_pool(rd::Hub(P.url), name, o);
      } catch (const std::exception& e) {
        child_failed(e.what());
      }
      _exit(0);
    });
}

void wait_workers(ipckit::ProcessPool& pool, unsigned n) {
  const std::int64_t until = now_ns() + 20'000'000'000;
  while (pool.workers() < n) {
    if (now_ns() > until) throw std::runtime_error("the workers did not check in within 20 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void stop_workers(Children& kids, const std::string& name, bool all_clean) {
  rd::Hub hub(P.url);
  rd::close_pool(hub, name);
  bool timed_out = false;
  const bool ok = kids.wait_all(now_ns() + 20'000'000'000, &timed_out);
  rd::remove_pool(hub, name);
  if (timed_out) throw std::runtime_error("the workers did not leave after close_pool");
  if (all_clean && !ok) throw std::runtime_error(std::string("a worker failed: ") + g_shared->why);
}

void check_square(std::int64_t n, std::int64_t got) {
  if (got != n * n)
    throw std::runtime_error("task " + std::to_string(n) + " returned " + std::to_string(got) + ", not its square");
}

struct PoolRun {
  double rate = 0, median = 0, p99 = 0;
};

// One fresh pool: the throughput run, then the round trips.
PoolRun pool_run(unsigned prefetch, bool do_submit, bool do_rtt) {
  const std::string name = unique("pool");
  new (g_shared) Shared();
  Children kids;
  start_workers(kids, name, {.prefetch = prefetch});
  PoolRun r;
  try {
    ipckit::ProcessPool pool = rd::pool(rd::Hub(P.url), name);
    wait_workers(pool, static_cast<unsigned>(P.workers));
    {
      std::vector<ipckit::Future<std::int64_t>> warm;
      for (std::int64_t i = 0; i < P.warm_tasks; ++i) warm.push_back(pool.submit(rb_square, i));
      for (std::int64_t i = 0; i < P.warm_tasks; ++i) check_square(i, warm[static_cast<std::size_t>(i)].get());
    }
    if (do_submit) {
      std::vector<ipckit::Future<std::int64_t>> fs;
      fs.reserve(static_cast<std::size_t>(P.tasks));
      const std::int64_t t0 = now_ns();
      for (std::int64_t i = 0; i < P.tasks; ++i) fs.push_back(pool.submit(rb_square, i));
      for (std::int64_t i = 0; i < P.tasks; ++i) check_square(i, fs[static_cast<std::size_t>(i)].get());
      r.rate = static_cast<double>(P.tasks) * 1e9 / static_cast<double>(now_ns() - t0);
    }
    if (do_rtt) {
      for (std::int64_t i = 0; i < P.warm_trips; ++i) check_square(i, pool.submit(rb_square, i).get());
      std::vector<double> us;
      us.reserve(static_cast<std::size_t>(P.trips));
      std::int64_t t = now_ns();
      for (std::int64_t i = 0; i < P.trips; ++i) {
        check_square(i, pool.submit(rb_square, i).get());
        const std::int64_t t1 = now_ns();
        us.push_back(static_cast<double>(t1 - t) / 1e3);
        t = t1;
      }
      std::sort(us.begin(), us.end());
      r.median = quantile(us, 0.5);
      r.p99 = quantile(us, 0.99);
    }
    pool.shutdown();
  } catch (...) {
    try {
      stop_workers(kids, name, false);
    } catch (...) {  // NOLINT(bugprone-empty-catch): the first failure is the one reported
    }
    throw;
  }
  stop_workers(kids, name, true);
  return r;
}

// The time from SIGKILL of the worker running a task until its future completes.
double redelivery_run() {
  const std::string name = unique("redeliver");
  new (g_shared) Shared();
  const rd::PoolOptions o{.visibility_timeout = std::chrono::milliseconds(P.lease_ms), .retries = 1};
  Children kids;
  start_workers(kids, name, o);
  double ms = 0;
  try {
    ipckit::ProcessPool pool = rd::pool(rd::Hub(P.url), name, o);
    wait_workers(pool, static_cast<unsigned>(P.workers));
    check_square(3, pool.submit(rb_square, 3).get());
    auto f = pool.submit(rb_stall, 0);
    const std::int64_t until = now_ns() + 10'000'000'000;
    while (g_shared->stalled_pid.load() == 0) {
      if (now_ns() > until) throw std::runtime_error("no worker started the task within 10 s");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    const int victim = g_shared->stalled_pid.load();
    // Let the victim's heartbeat renew the lease once: the kill lands mid-lease.
    std::this_thread::sleep_for(std::chrono::milliseconds(P.lease_ms / 2));
    const std::int64_t killed = now_ns();
    ::kill(victim, SIGKILL);
    const std::int64_t pid = f.get(std::chrono::seconds(30));
    ms = static_cast<double>(now_ns() - killed) / 1e6;
    if (pid == victim || pid <= 0) throw std::runtime_error("the task's result came from the killed worker");
    pool.shutdown();
  } catch (...) {
    try {
      stop_workers(kids, name, false);
    } catch (...) {  // NOLINT(bugprone-empty-catch): the first failure is the one reported
    }
    throw;
  }
  stop_workers(kids, name, false);  // the victim died of SIGKILL: not clean
  return ms;
}

// ---------------------------------------------------------------------------
// Running and reporting.

void add_result(const std::string& row, const std::vector<double>& v, const char* unit) {
  const Stats a = summarize(v);
  char buf[256];
  std::snprintf(buf, sizeof buf, "RESULT %s %.6g %s min=%.6g max=%.6g", row.c_str(), a.median, unit, a.min, a.max);
  g_results.emplace_back(buf);
}

void print_row(const std::string& row, const std::string& label, const std::vector<double>& v, const char* unit,
               double scale = 1) {
  const Stats a = summarize(v);
  std::printf("%-28s %-44s %12.6g %12.6g %12.6g  %s\n", row.c_str(), label.c_str(), a.median / scale, a.min / scale,
              a.max / scale, unit);
  std::fflush(stdout);
}

// Runs `body` `runs` times (after `warmup` unmeasured ones); on failure the
// rows are marked failed and nothing is returned.
template <class F>
bool repeat(const std::string& what, int runs, int warmup, const std::vector<std::string>& rows, F&& body) {
  for (int i = -warmup; i < runs; ++i) {
    if (!wait_for_quiet(g_quiet_wait_ms) && g_verbose) std::fprintf(stderr, "  (%s: CPUs busy)\n", what.c_str());
    arm_watchdog(what + " run " + std::to_string(i));
    try {
      body(i >= 0);
    } catch (const std::exception& e) {
      alarm(0);
      for (const auto& r : rows) g_failed[r] = e.what();
      std::fprintf(stderr, "redis_bench: %s: FAILED: %s\n", what.c_str(), e.what());
      return false;
    }
    alarm(0);
  }
  return true;
}

void part_queue(int runs, int warmup) {
  std::printf("\nQueue<64-byte plain struct> one way, a producer and a consumer process (items/s; %d runs)\n", runs);
  std::printf("%-28s %-44s %12s %12s %12s\n", "row", "", "median", "(min", "max)");
  struct Cfg {
    std::string row;
    std::string label;
    std::int64_t items, batch;
    bool single;
  };
  const std::vector<Cfg> cfgs{
      {"redis_queue_oneway", "put_many/get_many, batches of " + std::to_string(P.batch), P.items, P.batch, false},
      {"redis_queue_oneway_b64", "put_many/get_many, batches of 64", P.items, 64, false},
      {"redis_queue_oneway_single", "put()/get(), one at a time", P.single_items, 1, true},
  };
  for (const Cfg& c : cfgs) {
    std::vector<double> rate, put;
    const bool ok = repeat(c.row, runs, warmup, {c.row}, [&](bool measured) {
      const QueueRun r = queue_run(c.items, c.batch, c.single);
      if (g_verbose) std::fprintf(stderr, "  %s: %.0f items/s (put %.0f)\n", c.row.c_str(), r.rate, r.put_rate);
      if (!measured) return;
      rate.push_back(r.rate);
      put.push_back(r.put_rate);
    });
    if (!ok) {
      std::printf("%-28s %-44s FAILED\n", c.row.c_str(), c.label.c_str());
      continue;
    }
    print_row(c.row, c.label + " (" + std::to_string(c.items) + ")", rate, "items/s");
    add_result(c.row, rate, "items_per_s");
    if (c.single) {
      print_row("redis_queue_put_single", "put() one at a time: the producer alone", put, "items/s");
      add_result("redis_queue_put_single", put, "items_per_s");
    }
  }
}

void part_pool(int runs, int warmup) {
  std::printf("\nProcessPool over Redis, %d worker processes, task n*n: submit %" PRId64
              " then get every result (tasks/s); %" PRId64 " sequential round trips (us); %d runs\n",
              P.workers, P.tasks, P.trips, runs);
  std::printf("%-28s %-44s %12s %12s %12s\n", "row", "", "median", "(min", "max)");
  for (const unsigned prefetch : {16U, 1U}) {
    const std::string sfx = prefetch == 16 ? "" : "_p1";
    const std::string rsfx = prefetch == 1 ? "" : "_p16";
    const std::string srow = "redis_pool_submit" + sfx, rrow = "redis_pool_rtt" + rsfx;
    std::vector<double> rate, med, p99;
    const bool ok = repeat("pool prefetch " + std::to_string(prefetch), runs, warmup,
                           {srow, rrow + "_median", rrow + "_p99"}, [&](bool measured) {
                             const PoolRun r = pool_run(prefetch, true, true);
                             if (g_verbose)
                               std::fprintf(stderr, "  prefetch %u: %.0f tasks/s, rtt %.1f us (p99 %.1f)\n", prefetch,
                                            r.rate, r.median, r.p99);
                             if (!measured) return;
                             rate.push_back(r.rate);
                             med.push_back(r.median);
                             p99.push_back(r.p99);
                           });
    const std::string pf = "prefetch " + std::to_string(prefetch);
    if (!ok) {
      std::printf("%-28s %-44s FAILED\n", srow.c_str(), pf.c_str());
      continue;
    }
    print_row(srow, "submit then get all, " + pf, rate, "tasks/s");
    add_result(srow, rate, "tasks_per_s");
    print_row(rrow + "_median", "round trip, median, " + pf, med, "us");
    add_result(rrow + "_median", med, "us");
    print_row(rrow + "_p99", "round trip, p99, " + pf, p99, "us");
    add_result(rrow + "_p99", p99, "us");
  }
}

void part_redelivery(int runs) {
  std::printf(
      "\nA worker SIGKILLed while it runs a task: kill -> the task's future completes on the other worker\n"
      "(visibility_timeout %d ms, retries 1, %d workers; ms; %d runs)\n",
      P.lease_ms, P.workers, runs);
  std::printf("%-28s %-44s %12s %12s %12s\n", "row", "", "median", "(min", "max)");
  std::vector<double> ms;
  const bool ok = repeat("redelivery", runs, 0, {"redis_redelivery_ms"}, [&](bool) {
    const double m = redelivery_run();
    if (g_verbose) std::fprintf(stderr, "  redelivery: %.1f ms\n", m);
    ms.push_back(m);
  });
  if (!ok) {
    std::printf("%-28s %-44s FAILED\n", "redis_redelivery_ms", "");
    return;
  }
  print_row("redis_redelivery_ms", "kill -> result from another worker", ms, "ms");
  add_result("redis_redelivery_ms", ms, "ms");
  g_results.push_back("RESULT redis_redelivery_lease_ms " + std::to_string(P.lease_ms) + " ms");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "redis_bench — ipckit over Redis Streams: Queue<64-byte struct> one way, ProcessPool throughput and round "
      "trip, a killed worker's task re-delivered"};
  int runs = 5, warmup = 1;
  std::vector<std::string> only;
  bool list = false;
  app.add_option("--url", P.url, "the Redis server, redis://127.0.0.1:PORT/0")->required();
  app.add_option("--runs,-r", runs, "measured runs per row (median, min, max reported)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "unmeasured runs first (queue, pool)")->check(CLI::NonNegativeNumber);
  app.add_option("--items", P.items, "queue: items per batched run")->check(CLI::PositiveNumber);
  app.add_option("--single-items", P.single_items, "queue: items per one-at-a-time run")->check(CLI::PositiveNumber);
  app.add_option("--batch", P.batch, "queue: put_many/get_many batch")->check(CLI::Range(1, 100000));
  app.add_option("--workers,-w", P.workers, "pool: worker processes")->check(CLI::Range(1, 64));
  app.add_option("--tasks,-n", P.tasks, "pool: tasks per throughput run")->check(CLI::PositiveNumber);
  app.add_option("--warm-tasks", P.warm_tasks, "pool: untimed tasks on each fresh pool")->check(CLI::NonNegativeNumber);
  app.add_option("--round-trips", P.trips, "pool: timed round trips per run")->check(CLI::PositiveNumber);
  app.add_option("--warm-trips", P.warm_trips, "pool: untimed round trips first")->check(CLI::NonNegativeNumber);
  app.add_option("--lease-ms", P.lease_ms, "redelivery: the pool's visibility_timeout")->check(CLI::Range(50, 60000));
  app.add_option("--mode,-m", only, "run only these parts (queue, pool, redelivery)");
  app.add_option("--quiet-wait-ms", g_quiet_wait_ms, "before each run, wait up to this long for idle CPUs (0: don't)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout-s", g_timeout_s, "watchdog: a run that takes longer ends the program")
      ->check(CLI::PositiveNumber);
  app.add_flag("--list", list, "list the parts and exit");
  app.add_flag("--verbose,-v", g_verbose, "print every run (on stderr)");
  CLI11_PARSE(app, argc, argv);
  const std::set<std::string> known{"queue", "pool", "redelivery"};
  if (list) {
    for (const auto& k : {"queue", "pool", "redelivery"}) std::printf("%s\n", k);
    return 0;
  }
  for (const auto& w : only)
    if (!known.count(w)) {
      std::fprintf(stderr, "redis_bench: unknown part '%s' (see --list)\n", w.c_str());
      return 2;
    }
  const auto want = [&](const char* p) { return only.empty() || std::count(only.begin(), only.end(), p) > 0; };

  rd::Hub hub(P.url);
  if (!hub.ping()) {
    std::fprintf(stderr, "redis_bench: no Redis server answers at %s\n", hub.url().c_str());
    return 2;
  }
  SharedBlock<Shared> shared;
  g_shared = shared.get();
  std::printf("redis_bench: %s; %d runs (+%d warm-up) per row; processes unpinned; %ld CPUs online\n",
              hub.url().c_str(), runs, warmup, sysconf(_SC_NPROCESSORS_ONLN));
  std::fflush(stdout);

  if (want("queue")) part_queue(runs, warmup);
  if (want("pool")) part_pool(runs, warmup);
  if (want("redelivery")) part_redelivery(runs);

  std::printf("\n(medians over runs; items/s and tasks/s from the first put or submit to the last item or result)\n");
  for (const auto& [row, why] : g_failed) std::printf("FAILED %s: %s\n", row.c_str(), why.c_str());
  for (const auto& line : g_results) std::printf("%s\n", line.c_str());
  return g_failed.empty() ? 0 : 1;
}
