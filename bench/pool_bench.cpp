// bench/pool_bench.cpp — pools of workers running a tiny task, side by side.
//
// The C++ rows of scripts/bench.sh's `pool` section (its Python peers,
// concurrent.futures.ProcessPoolExecutor and multiprocessing.Pool, are
// bench/python_pool.py). The task is the smallest there is, `n*n` on an
// int64, so that every row measures what the pool itself costs: handing a
// task to a worker and its result back. Every pool has --workers (2) workers
// and is made fresh for each run, then warmed with --warm-tasks untimed tasks
// (its workers started and their first allocations done). Every result is
// checked (a wrong square fails the row).
//
// Parts (select with --mode PART or PART:ROW; see --list):
//
// 1. submit — throughput: submit --tasks tasks one by one, each with its own
//    future, then get every future in submission order. tasks/s = tasks /
//    (first submit .. last get). Rows:
//      ipckit_pool_submit  ipckit ProcessPool: submit(square, n) -> Future
//      asio_submit         Boost.Asio thread_pool: post() of a lambda that
//                          sets a std::promise; the std::future is kept
//      asio_use_future     Boost.Asio thread_pool: post(use_future(lambda))
//
// 2. rtt — submit -> result round trip, one task at a time: submit, get, the
//    next. The clock is read before each submit (and after the last get); a
//    run's median and p99 are over its --round-trips timed round trips (after
//    --warm-trips untimed ones). Rows:
//      ipckit_pool_rtt      ipckit ProcessPool: submit, get
//      asio_rtt             as asio_submit
//      asio_use_future_rtt  as asio_use_future
//      raw_spin_rtt         the floor between two processes: two forked
//                           children (pinned to two CPUs when there are two)
//                           hand a number and its square back and forth
//                           through two shared cache lines, both spinning: no
//                           pool, no future, no sleep, no serialization.
//
// 3. map — throughput of map-like submission: --map-tasks inputs in chunks of
//    --chunk (64): one submission per chunk, which carries a copy of its
//    inputs (as a process pool's message would) and whose future carries the
//    chunk's results; results are read in input order. Rows:
//      ipckit_pool_map  ProcessPool::map(square, inputs, {.chunksize}), its
//                       results read by range-for into a vector
//      asio_map         Boost.Asio thread_pool: post() per chunk + std::promise
//    After the tables: ipckit's map rate over its single submits' rate (the
//    issue's target: >= 2x), when both parts ran.
//
// 4. idle — the CPU an idle pool burns: a warmed pool with nothing to do for
//    --idle-ms; % of a core = CPU time of the pool's threads (and worker
//    processes) / wall time. The worst of --idle-runs runs is reported. Rows:
//      ipckit_pool_idle  ipckit ProcessPool (idle workers sleep in
//                        Queue::wait_readable, its collector on a futex)
//      asio_idle         Boost.Asio thread_pool (its threads block in a
//                        condition variable)
//
// Rows of a part run interleaved (round r runs every row once, from a
// rotating start), so that a shared machine's noise falls on all alike;
// medians over --runs runs are compared (after --warmup unmeasured rounds),
// min and max over runs are printed beside them. Before each run the program
// waits (bounded, --quiet-wait-ms) for idle CPUs. A watchdog (--timeout-s)
// ends the program, naming the row, if a run does not finish.
//
// Output: tables, then machine-readable lines for scripts/bench.sh:
//   RESULT pool_<row> <tasks/s> tasks_per_s min=<> max=<>   (submit, map)
//   RESULT pool_<row>_median <us> us min=<> max=<>          (rtt; and _p99)
//   RESULT pool_<row>_cpu <% of a core, worst run> pct_core min=<> median=<>
// A row not implemented yet prints "not implemented yet: no figure" and no
// RESULT line; a row that fails prints no RESULT line and the program exits 1.
#include <CLI/CLI.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <cinttypes>
#include <future>
#include <ipckit/pool.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "bench_common.hpp"

using namespace bench;

namespace {

// ---------------------------------------------------------------------------
// Parameters.

struct Params {
  int workers = 2;
  std::int64_t tasks = 200'000;     // submit, timed
  std::int64_t warm_tasks = 2'000;  // every part, untimed, on each fresh pool
  std::int64_t map_tasks = 1'000'000;
  std::int64_t chunk = 64;
  std::int64_t trips = 20'000;
  std::int64_t warm_trips = 500;
  int idle_runs = 3;
  int idle_ms = 1000;
};
Params P;

bool g_verbose = false;
int g_quiet_wait_ms = 300;
int g_timeout_s = 60;
int g_busy_runs = 0;
std::map<std::string, std::string> g_failed;  // row -> why
std::map<std::string, double> g_rates;        // rate rows measured: row -> median tasks/s

// The task.
std::int64_t square(std::int64_t n) { return n * n; }

void check_square(std::int64_t n, std::int64_t got) {
  if (got != n * n)
    throw std::runtime_error("task " + std::to_string(n) + " returned " + std::to_string(got) + ", not its square");
}

// The watchdog: SIGALRM past --timeout-s ends the program naming the row
// (a stuck pool must not hang scripts/bench.sh). write() and _exit() only.
char g_running[128] = "";
extern "C" void on_alarm(int) {
  const char head[] = "pool_bench: watchdog: this run did not finish in time: ";
  [[maybe_unused]] auto a = ::write(2, head, sizeof head - 1);
  [[maybe_unused]] auto b = ::write(2, g_running, std::strlen(g_running));
  [[maybe_unused]] auto c = ::write(2, "\n", 1);
  _exit(1);
}
void arm_watchdog(const std::string& row, int seconds) {
  std::snprintf(g_running, sizeof g_running, "%s", row.c_str());
  std::signal(SIGALRM, on_alarm);
  alarm(static_cast<unsigned>(seconds));
}

// ---------------------------------------------------------------------------
// The peers: Boost.Asio's thread_pool with two ways to get a std::future.

struct AsioPool {
  boost::asio::thread_pool pool{static_cast<std::size_t>(P.workers)};
  AsioPool() = default;
  AsioPool(const AsioPool&) = delete;
  AsioPool& operator=(const AsioPool&) = delete;
  ~AsioPool() { pool.join(); }
};

std::future<std::int64_t> asio_promise_submit(AsioPool& p, std::int64_t n) {
  std::promise<std::int64_t> promise;
  std::future<std::int64_t> f = promise.get_future();
  boost::asio::post(p.pool, [n, promise = std::move(promise)]() mutable { promise.set_value(square(n)); });
  return f;
}

std::future<std::int64_t> asio_use_future_submit(AsioPool& p, std::int64_t n) {
  return boost::asio::post(p.pool, boost::asio::use_future([n] { return square(n); }));
}

// One post per chunk; the chunk carries a copy of its inputs, as a process
// pool's message does, and its future the chunk's results.
std::vector<std::int64_t> asio_map(AsioPool& p, const std::vector<std::int64_t>& in) {
  using Chunk = std::vector<std::int64_t>;
  std::vector<std::future<Chunk>> parts;
  parts.reserve(in.size() / static_cast<std::size_t>(P.chunk) + 1);
  for (std::size_t at = 0; at < in.size(); at += static_cast<std::size_t>(P.chunk)) {
    const auto end = std::min(in.size(), at + static_cast<std::size_t>(P.chunk));
    std::promise<Chunk> promise;
    parts.push_back(promise.get_future());
    boost::asio::post(p.pool, [args = Chunk(in.begin() + static_cast<std::ptrdiff_t>(at),
                                            in.begin() + static_cast<std::ptrdiff_t>(end)),
                               promise = std::move(promise)]() mutable {
      for (auto& x : args) x = square(x);
      promise.set_value(std::move(args));
    });
  }
  std::vector<std::int64_t> out;
  out.reserve(in.size());
  for (auto& f : parts) {
    const Chunk c = f.get();
    out.insert(out.end(), c.begin(), c.end());
  }
  return out;
}

std::vector<pid_t> no_processes(AsioPool&) { return {}; }

// ipckit's pool, with as many workers as the peers' threads.
struct IpckitPool {
  ipckit::ProcessPool pool{{.workers = static_cast<unsigned>(P.workers), .name = "bench"}};
};
ipckit::Future<std::int64_t> ipckit_submit(IpckitPool& p, std::int64_t n) { return p.pool.submit(square, n); }
std::vector<std::int64_t> ipckit_map(IpckitPool& p, const std::vector<std::int64_t>& in) {
  std::vector<std::int64_t> out;
  out.reserve(in.size());
  for (std::int64_t r : p.pool.map(square, in, {.chunksize = static_cast<std::size_t>(P.chunk)})) out.push_back(r);
  return out;
}
std::vector<pid_t> ipckit_workers(IpckitPool& p) { return p.pool.worker_pids(); }

// ---------------------------------------------------------------------------
// What a row measures, for any pool: `Pool` is default-constructible with
// P.workers workers; submit(pool, n) returns a future of n*n with get();
// map(pool, inputs) returns the squares in input order; processes(pool) the
// worker processes whose CPU time counts beside this process's.

struct Measure {
  double value = 0;  // tasks/s; median us (rtt); % of a core (idle)
  double p99 = 0;    // rtt only
};

template <class Pool, class Submit>
void warm_up(Pool& pool, Submit& submit) {
  for (std::int64_t i = 0; i < P.warm_tasks; ++i) check_square(i, submit(pool, i).get());
}

template <class Pool, class Submit>
Measure submit_rate(Submit submit) {
  Pool pool;
  warm_up(pool, submit);
  std::vector<decltype(submit(pool, 0))> futures;
  futures.reserve(static_cast<std::size_t>(P.tasks));
  const std::int64_t t0 = now_ns();
  for (std::int64_t i = 0; i < P.tasks; ++i) futures.push_back(submit(pool, i));
  for (std::int64_t i = 0; i < P.tasks; ++i) check_square(i, futures[static_cast<std::size_t>(i)].get());
  const std::int64_t t1 = now_ns();
  return {static_cast<double>(P.tasks) * 1e9 / static_cast<double>(t1 - t0)};
}

// Median and p99 of the round trips between consecutive clock reads.
Measure latency(const std::vector<std::int64_t>& stamps) {
  std::vector<double> rt(stamps.size() - 1);
  for (std::size_t i = 0; i + 1 < stamps.size(); ++i) rt[i] = static_cast<double>(stamps[i + 1] - stamps[i]) / 1e3;
  std::sort(rt.begin(), rt.end());
  return {quantile(rt, 0.5), quantile(rt, 0.99)};
}

template <class Pool, class Submit>
Measure round_trips(Submit submit) {
  Pool pool;
  warm_up(pool, submit);
  for (std::int64_t i = 0; i < P.warm_trips; ++i) check_square(i, submit(pool, i).get());
  std::vector<std::int64_t> stamps(static_cast<std::size_t>(P.trips) + 1);
  for (std::int64_t i = 0; i < P.trips; ++i) {
    stamps[static_cast<std::size_t>(i)] = now_ns();
    check_square(i, submit(pool, i).get());
  }
  stamps.back() = now_ns();
  return latency(stamps);
}

template <class Pool, class Submit, class Map>
Measure map_rate(Submit submit, Map map) {
  Pool pool;
  warm_up(pool, submit);
  std::vector<std::int64_t> in(static_cast<std::size_t>(P.map_tasks));
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<std::int64_t>(i);
  const std::int64_t t0 = now_ns();
  const std::vector<std::int64_t> out = map(pool, in);
  if (out.size() != in.size())
    throw std::runtime_error("map returned " + std::to_string(out.size()) + " results for " +
                             std::to_string(in.size()) + " inputs");
  for (std::size_t i = 0; i < in.size(); ++i) check_square(in[i], out[i]);
  const std::int64_t t1 = now_ns();
  return {static_cast<double>(P.map_tasks) * 1e9 / static_cast<double>(t1 - t0)};
}

// CPU time of another process (ns), from /proc/<pid>/schedstat; 0 if it is gone.
std::int64_t cpu_ns_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/schedstat");
  std::int64_t ns = 0;
  return (f >> ns) ? ns : 0;
}

template <class Pool, class Submit, class Processes>
Measure idle_cpu(Submit submit, Processes processes) {
  Pool pool;
  warm_up(pool, submit);
  sleep_ms(100);  // let the workers settle into their wait
  const auto cpu = [&] {
    std::int64_t ns = cpu_ns();
    for (pid_t pid : processes(pool)) ns += cpu_ns_of(pid);
    return ns;
  };
  const std::int64_t c0 = cpu(), w0 = now_ns();
  sleep_ms(P.idle_ms);
  const std::int64_t c1 = cpu(), w1 = now_ns();
  return {100.0 * static_cast<double>(c1 - c0) / static_cast<double>(w1 - w0)};
}

// ---------------------------------------------------------------------------
// The floor: a round trip between two processes spinning on shared words.

struct SpinLine {
  alignas(64) std::atomic<std::uint64_t> seq{0};  // trip number + 1 of the value below
  std::int64_t value = 0;
};
struct SpinShared {
  SpinLine ask, answer;
  alignas(64) std::atomic<std::uint64_t> started{0};
};

// Spins until `word` holds `want`; false past `deadline` (the peer died or stalled).
bool spin_until(const std::atomic<std::uint64_t>& word, std::uint64_t want, std::int64_t deadline) {
  for (std::uint32_t k = 1; word.load(std::memory_order_acquire) != want; ++k) {
    cpu_relax();
    if ((k & 0xffff) == 0 && now_ns() > deadline) return false;
  }
  return true;
}

Measure raw_spin_rtt() {
  SharedBlock<SpinShared> sh;
  const std::int64_t total = P.warm_trips + P.trips;
  SharedBytes stamps_mem(static_cast<std::size_t>(P.trips + 1) * sizeof(std::int64_t));
  auto* stamps = static_cast<std::int64_t*>(stamps_mem.get());
  const std::int64_t deadline = now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000;
  const std::vector<int> cpus = allowed_cpus(2);
  Children kids;
  for (int role = 0; role < 2; ++role) {
    kids.spawn([&, role] {
      if (cpus.size() == 2) pin_to(cpus[static_cast<std::size_t>(role)]);
      sh->started.fetch_add(1);
      if (!spin_until(sh->started, 2, deadline)) _exit(3);  // both running before the first trip
      for (std::int64_t i = 0; i < total; ++i) {
        const auto trip = static_cast<std::uint64_t>(i + 1);
        if (role == 0) {  // A: asks, waits for the answer, checks it
          if (i >= P.warm_trips) stamps[i - P.warm_trips] = now_ns();
          sh->ask.value = i;
          sh->ask.seq.store(trip, std::memory_order_release);
          if (!spin_until(sh->answer.seq, trip, deadline) || sh->answer.value != i * i) _exit(3);
        } else {  // B: the worker
          if (!spin_until(sh->ask.seq, trip, deadline)) _exit(3);
          sh->answer.value = square(sh->ask.value);
          sh->answer.seq.store(trip, std::memory_order_release);
        }
      }
      if (role == 0) stamps[P.trips] = now_ns();
      _exit(0);
    });
  }
  bool timed_out = false;
  if (!kids.wait_all(deadline + 1'000'000'000, &timed_out))
    throw std::runtime_error(timed_out ? "the two processes did not finish"
                                       : "a process failed (wrong answer or stall)");
  return latency(std::vector<std::int64_t>(stamps, stamps + P.trips + 1));
}

// ---------------------------------------------------------------------------
// Rows and parts.

struct Row {
  std::string name, label;
  std::function<Measure()> run;  // empty: not implemented yet
};
enum class Kind { rate, latency, idle };
struct Part {
  std::string name;
  Kind kind;
  std::vector<Row> rows;
};

std::vector<Part> parts() {
  using A = AsioPool;
  using I = IpckitPool;
  const auto promise = asio_promise_submit;
  const auto use_future = asio_use_future_submit;
  return {
      {"submit",
       Kind::rate,
       {{"ipckit_pool_submit", "ipckit ProcessPool: submit -> Future", [] { return submit_rate<I>(ipckit_submit); }},
        {"asio_submit", "Asio thread_pool: post + std::promise", [=] { return submit_rate<A>(promise); }},
        {"asio_use_future", "Asio thread_pool: post(use_future(fn))", [=] { return submit_rate<A>(use_future); }}}},
      {"rtt",
       Kind::latency,
       {{"ipckit_pool_rtt", "ipckit ProcessPool: submit, get", [] { return round_trips<I>(ipckit_submit); }},
        {"asio_rtt", "Asio thread_pool: post + std::promise", [=] { return round_trips<A>(promise); }},
        {"asio_use_future_rtt", "Asio thread_pool: use_future", [=] { return round_trips<A>(use_future); }},
        {"raw_spin_rtt", "floor: 2 processes spinning", raw_spin_rtt}}},
      {"map",
       Kind::rate,
       {{"ipckit_pool_map", "ipckit ProcessPool::map, chunks", [] { return map_rate<I>(ipckit_submit, ipckit_map); }},
        {"asio_map", "Asio thread_pool: a post per chunk", [=] { return map_rate<A>(promise, asio_map); }}}},
      {"idle",
       Kind::idle,
       {{"ipckit_pool_idle", "ipckit ProcessPool, idle", [] { return idle_cpu<I>(ipckit_submit, ipckit_workers); }},
        {"asio_idle", "Asio thread_pool, idle", [=] { return idle_cpu<A>(promise, no_processes); }}}},
  };
}

// Runs every implemented row `runs` times (after `warmup` unmeasured
// rounds), interleaved; a failed row is not run again.
std::map<std::string, std::vector<Measure>> interleave(const std::vector<const Row*>& rows, int runs, int warmup,
                                                       int watchdog_s) {
  std::map<std::string, std::vector<Measure>> out;
  const std::size_t n = rows.size();
  for (int round = -warmup; round < runs && n > 0; ++round) {
    for (std::size_t j = 0; j < n; ++j) {
      const Row& row = *rows[(j + static_cast<std::size_t>(round + warmup)) % n];
      if (!row.run || g_failed.count(row.name)) continue;
      if (!wait_for_quiet(g_quiet_wait_ms)) ++g_busy_runs;
      try {
        arm_watchdog(row.name, watchdog_s);
        const Measure m = row.run();
        alarm(0);
        if (round >= 0) out[row.name].push_back(m);
        if (g_verbose) std::fprintf(stderr, "  %-20s round %2d: %.6g %.6g\n", row.name.c_str(), round, m.value, m.p99);
      } catch (const std::exception& e) {
        alarm(0);
        g_failed[row.name] = e.what();
        std::fprintf(stderr, "pool_bench: %s: FAILED: %s\n", row.name.c_str(), e.what());
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Reporting.

using Results = std::vector<std::string>;

void add_result(Results& results, const std::string& row, double v, const char* unit, const char* extra) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "RESULT pool_%s %.6g %s %s", row.c_str(), v, unit, extra);
  results.emplace_back(buf);
}

// false (and the row's line printed) if the row has no figure.
bool has_figure(const Row& row, const std::map<std::string, std::vector<Measure>>& samples) {
  const char* why = !row.run ? "not implemented yet: no figure" : g_failed.count(row.name) ? "FAILED" : nullptr;
  if (why == nullptr && !samples.count(row.name)) why = "no runs";
  if (why != nullptr) std::printf("%-20s %-40s %s\n", row.name.c_str(), row.label.c_str(), why);
  return why == nullptr;
}

std::vector<double> field(const std::vector<Measure>& v, double Measure::*f) {
  std::vector<double> out;
  for (const auto& m : v) out.push_back(m.*f);
  return out;
}

void print_part(const Part& part, const std::vector<const Row*>& rows,
                const std::map<std::string, std::vector<Measure>>& samples, Results& results) {
  switch (part.kind) {
    case Kind::rate:
      std::printf("%-20s %-40s %10s %9s %9s\n", "row", "", "M tasks/s", "(min", "max)");
      break;
    case Kind::latency:
      std::printf("%-20s %-40s %8s %8s %8s %8s %8s %8s\n", "row", "", "median", "(min", "max)", "p99", "(min", "max)");
      break;
    case Kind::idle:
      std::printf("%-20s %-40s %9s %8s %8s\n", "row", "", "% core", "(min", "median)");
      break;
  }
  for (const Row* row : rows) {
    if (!has_figure(*row, samples)) continue;
    const auto& v = samples.at(row->name);
    const Stats a = summarize(field(v, &Measure::value));
    const std::string range = "min=" + fmt("%.6g", a.min) + " max=" + fmt("%.6g", a.max);
    if (part.kind == Kind::rate) {
      std::printf("%-20s %-40s %10.3f %9.3f %9.3f\n", row->name.c_str(), row->label.c_str(), a.median / 1e6,
                  a.min / 1e6, a.max / 1e6);
      add_result(results, row->name, a.median, "tasks_per_s", range.c_str());
      g_rates[row->name] = a.median;
    } else if (part.kind == Kind::latency) {
      const Stats b = summarize(field(v, &Measure::p99));
      std::printf("%-20s %-40s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", row->name.c_str(), row->label.c_str(), a.median,
                  a.min, a.max, b.median, b.min, b.max);
      add_result(results, row->name + "_median", a.median, "us", range.c_str());
      const std::string range99 = "min=" + fmt("%.6g", b.min) + " max=" + fmt("%.6g", b.max);
      add_result(results, row->name + "_p99", b.median, "us", range99.c_str());
    } else {  // idle: the worst run is the figure
      std::printf("%-20s %-40s %9.3f %8.3f %8.3f\n", row->name.c_str(), row->label.c_str(), a.max, a.min, a.median);
      const std::string spread = "min=" + fmt("%.4f", a.min) + " median=" + fmt("%.4f", a.median);
      add_result(results, row->name + "_cpu", a.max, "pct_core", spread.c_str());
    }
  }
}

std::string title(const Part& part, int runs, int warmup) {
  char buf[512];
  const int w = P.workers;
  switch (part.kind) {
    case Kind::rate:
      if (part.name == "map")
        std::snprintf(buf, sizeof buf,
                      "Map: %" PRId64 " tiny tasks (n*n) in chunks of %" PRId64
                      ", results in input order, %d workers"
                      " (M tasks/s; %d runs, +%d warm-up)",
                      P.map_tasks, P.chunk, w, runs, warmup);
      else
        std::snprintf(buf, sizeof buf,
                      "Throughput: submit %" PRId64
                      " tiny tasks (n*n), then get every future, %d workers"
                      " (M tasks/s; %d runs, +%d warm-up)",
                      P.tasks, w, runs, warmup);
      break;
    case Kind::latency:
      std::snprintf(buf, sizeof buf,
                    "Round trip: submit one tiny task, get its result, the next, %d workers (us; %" PRId64
                    " timed round trips per run after %" PRId64 " untimed; %d runs, +%d warm-up)",
                    w, P.trips, P.warm_trips, runs, warmup);
      break;
    case Kind::idle:
      std::snprintf(buf, sizeof buf,
                    "Idle pool: %d warmed workers with nothing to do for %d ms, CPU time of the pool / wall time"
                    " (worst of %d runs)",
                    w, P.idle_ms, P.idle_runs);
      break;
  }
  return buf;
}

// ipckit's map in chunks over its own single submits (the target:
// >= 2x) and beside the Asio thread pool's chunks, when those rows ran.
void print_map_ratios() {
  const auto ratio = [](const char* a, const char* b, const char* what) {
    if (g_rates.count(a) && g_rates.count(b) && g_rates.at(b) > 0)
      std::printf("%-62s %6.2fx\n", what, g_rates.at(a) / g_rates.at(b));
  };
  std::printf("\n");
  ratio("ipckit_pool_map", "ipckit_pool_submit", "ipckit map (chunks) / ipckit single submits (target >= 2x)");
  ratio("ipckit_pool_map", "asio_map", "ipckit map (chunks) / Asio thread_pool, a post per chunk");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pool_bench — pools of workers running a tiny task (n*n): ipckit ProcessPool beside Boost.Asio's "
      "thread_pool and a raw two-process floor (throughput, round trip, map in chunks, idle CPU)"};
  int runs = 5, warmup = 1;
  std::vector<std::string> only;
  bool list = false;
  app.add_option("--runs,-r", runs, "measured runs per row (median, min, max reported)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "unmeasured rounds first")->check(CLI::NonNegativeNumber);
  app.add_option("--workers,-w", P.workers, "workers of every pool")->check(CLI::Range(1, 64));
  app.add_option("--tasks,-n", P.tasks, "submit: timed tasks per run")->check(CLI::PositiveNumber);
  app.add_option("--warm-tasks", P.warm_tasks, "untimed tasks on each fresh pool")->check(CLI::NonNegativeNumber);
  app.add_option("--map-tasks", P.map_tasks, "map: inputs per run")->check(CLI::PositiveNumber);
  app.add_option("--chunk", P.chunk, "map: inputs per chunk")->check(CLI::PositiveNumber);
  app.add_option("--round-trips", P.trips, "rtt: timed round trips per run")->check(CLI::PositiveNumber);
  app.add_option("--warm-trips", P.warm_trips, "rtt: untimed round trips first")->check(CLI::NonNegativeNumber);
  app.add_option("--idle-runs", P.idle_runs, "idle: runs (each lasts --idle-ms + 0.1 s)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--idle-ms", P.idle_ms, "idle: how long the pool has nothing to do")->check(CLI::PositiveNumber);
  app.add_option("--mode,-m", only, "run only these parts (submit, rtt, map, idle) or part:row");
  app.add_option("--quiet-wait-ms", g_quiet_wait_ms, "before each run, wait up to this long for idle CPUs (0: don't)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout-s", g_timeout_s, "watchdog: a run that takes longer ends the program")
      ->check(CLI::PositiveNumber);
  app.add_flag("--list", list, "list the rows and exit");
  app.add_flag("--verbose,-v", g_verbose, "print every run (on stderr)");
  CLI11_PARSE(app, argc, argv);

  const std::vector<Part> all = parts();
  if (list) {
    for (const auto& part : all) {
      std::printf("%s\n", part.name.c_str());
      for (const auto& r : part.rows)
        std::printf("  %-22s %s%s\n", r.name.c_str(), r.label.c_str(), r.run ? "" : " (not implemented yet)");
    }
    return 0;
  }
  std::set<std::string> wanted(only.begin(), only.end());
  {
    std::set<std::string> known;
    for (const auto& part : all) {
      known.insert(part.name);
      for (const auto& r : part.rows) known.insert(part.name + ":" + r.name);
    }
    for (const auto& w : wanted) {
      if (!known.count(w)) {
        std::fprintf(stderr, "pool_bench: unknown part or row '%s' (see --list)\n", w.c_str());
        return 2;
      }
    }
  }
  std::printf("pool_bench: %d workers per pool; %d runs (+%d warm-up) per row, interleaved; %ld CPUs online\n",
              P.workers, runs, warmup, sysconf(_SC_NPROCESSORS_ONLN));
  std::fflush(stdout);

  Results results;  // RESULT lines, printed last
  for (const auto& part : all) {
    std::vector<const Row*> rows;
    for (const auto& r : part.rows)
      if (wanted.empty() || wanted.count(part.name) || wanted.count(part.name + ":" + r.name)) rows.push_back(&r);
    if (rows.empty() || (part.kind == Kind::idle && P.idle_runs == 0)) continue;
    const bool idle = part.kind == Kind::idle;
    const int watchdog_s = g_timeout_s + (idle ? P.idle_ms / 1000 + 1 : 0);
    const auto samples = interleave(rows, idle ? P.idle_runs : runs, idle ? 0 : warmup, watchdog_s);
    std::printf("\n%s\n", title(part, runs, warmup).c_str());
    print_part(part, rows, samples, results);
    std::fflush(stdout);
  }
  print_map_ratios();
  std::printf(
      "\n(M tasks/s: median over runs of tasks / (first submit .. last result); round trips: median and p99 of\n"
      " each run's round trips, one clock read per round trip included, then the median over runs)\n");
  if (g_busy_runs > 0)
    std::printf("note: %d run(s) started while other programs kept the CPUs busy (waited up to %d ms); expect noise\n",
                g_busy_runs, g_quiet_wait_ms);
  for (const auto& [row, why] : g_failed) std::printf("FAILED %s: %s\n", row.c_str(), why.c_str());
  for (const auto& line : results) std::printf("%s\n", line.c_str());
  return g_failed.empty() ? 0 : 1;
}
