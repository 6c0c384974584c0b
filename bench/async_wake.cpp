// bench/async_wake.cpp — how soon an idle waiter learns of a put made by
// another process: the blocking get, the queue's wait handle polled with
// epoll, a Boost.Asio coroutine awaiting async_get, and an eventfd (the floor).
//
// One-way latency, one sample per item: the producer (a forked process)
// stamps CLOCK_MONOTONIC into the item just before put(); the waiter reads
// the clock right after its get returns and records now - stamp. Between
// samples the producer waits for the waiter's acknowledgement (an ack queue),
// then sleeps a random 50-200 µs (timer slack 1 ns), so that every item finds
// the waiter idle, as a daemon's event loop is. Neither side is pinned.
// Rows:
//
//   blocking   q.get(): the futex path. It spins ~50 µs before it sleeps, so
//              some items still find it spinning: the share of items each
//              row slept for is printed (from the waiter's voluntary context
//              switches, read after each item), and the blocking row again
//              over only the items it slept for (blocking_slept).
//   fd_epoll   q.wait_handle() in an epoll set: try_get(); on nothing arm()
//              and, unless arm() says it is ready already, epoll_wait().
//   asio       one io_context thread, a coroutine doing
//              co_await q.async_get(boost::asio::use_awaitable). Built only
//              when <ipckit/asio.hpp> exists; otherwise the row prints
//              "n/a (asio layer not built)".
//   eventfd    the floor of an fd-based wake: an eventfd inherited through
//              fork; the producer writes the stamp itself as the eventfd's
//              value, the waiter epoll_waits and reads it.
//
// The rows run interleaved: --rounds rounds, each runs every row once (from a
// rotating start) with --samples / --rounds samples and a fresh producer, so
// that a shared machine's noise falls on all rows alike; each row's p50/p99
// are over all of its samples. Before each run the parent waits (bounded) for
// idle CPUs. A watchdog (--timeout-s) ends a run that hangs.
//
// Output: a table, then lines for scripts/bench.sh (its `async` section):
//   RESULT async_wake_<row>_p50 <us> us    (and _p99)
//   async_wake_asio not built              (when the Asio row is missing)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ipckit/queue.hpp>
#include <ipckit/segment.hpp>
#include <ipckit/wait_handle.hpp>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#if __has_include(<ipckit/asio.hpp>)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ipckit/asio.hpp>
#define ASYNC_WAKE_HAS_ASIO 1
#else
#define ASYNC_WAKE_HAS_ASIO 0
#endif

#include "bench_common.hpp"

namespace {

using bench::now_ns;

struct Sample {
  std::int64_t stamp_ns;
  std::uint64_t seq;
};

struct Params {
  int samples = 20000;
  int warmup = 200;  // per run, not recorded
  int rounds = 4;
  int gap_min_us = 50;
  int gap_max_us = 200;
  int quiet_wait_ms = 300;
  int timeout_s = 60;
} P;

const std::vector<std::string> kRows = {"blocking", "fd_epoll", "asio", "eventfd"};

const char* row_label(const std::string& row) {
  if (row == "blocking") return "blocking q.get() (futex)";
  if (row == "fd_epoll") return "q.wait_handle() + epoll_wait, try_get";
  if (row == "asio") return "Asio co_await q.async_get (1 thread)";
  return "eventfd + epoll_wait (floor)";
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "async_wake: %s\n", what.c_str());
  std::fflush(stderr);
  _exit(3);
}

void on_alarm(int) {
  const char msg[] = "async_wake: a run exceeded --timeout-s (a lost wake-up?)\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(4);
}

void sleep_us(int us) {
  timespec ts{0, static_cast<long>(us) * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// The producer: waits for the ack of item i-1, sleeps a random gap, stamps
// and puts item i (or, for the eventfd row, writes the stamp to the eventfd).
void produce(ipckit::Queue<Sample>& q, ipckit::Queue<std::uint64_t>& ack, int efd, int n, unsigned seed) {
  prctl(PR_SET_TIMERSLACK, 1UL);     // the gap as asked, not +50 µs of default slack
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // the parent's watchdog must not leave it blocked
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> gap(P.gap_min_us, P.gap_max_us);
  for (int i = 0; i < n; ++i) {
    if (i > 0 && ack.get() != static_cast<std::uint64_t>(i - 1)) fail("producer: ack out of order");
    sleep_us(gap(rng));
    const Sample s{now_ns(), static_cast<std::uint64_t>(i)};
    if (efd >= 0) {
      const auto v = static_cast<std::uint64_t>(s.stamp_ns);
      if (write(efd, &v, sizeof v) != sizeof v) fail("producer: eventfd write failed");
    } else {
      q.put(s);
    }
  }
}

// Waits for readability of `fd` (already in `ep`).
void wait_readable(int ep) {
  epoll_event ev{};
  while (epoll_wait(ep, &ev, 1, -1) < 0)
    if (errno != EINTR) fail(std::string("epoll_wait: ") + std::strerror(errno));
}

int make_epoll(int fd) {
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) fail(std::string("epoll: ") + std::strerror(errno));
  return ep;
}

struct RunResult {
  std::vector<double> us;        // recorded latencies
  std::vector<double> slept_us;  // those of the items the waiter slept for
  bool ran = true;
};

// The waiting thread's voluntary context switches: read after each item (out
// of the timed span), they tell whether the waiter slept for it.
long voluntary_switches() {
  rusage ru{};
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw;
}

// One run of `row`: a fresh segment and producer, n = warmup + samples items.
RunResult run_row(const std::string& row, int samples, unsigned seed) {
  RunResult res;
#if !ASYNC_WAKE_HAS_ASIO
  if (row == "asio") {
    res.ran = false;
    return res;
  }
#endif
  const int n = P.warmup + samples;
  const std::string name = "asyncwake_" + std::to_string(getpid()) + "_" + std::to_string(seed);
  std::optional<ipckit::Segment> seg(ipckit::Segment::create(name, std::size_t{8} << 20));
  auto q = seg->queue<Sample>("items");
  auto ack = seg->queue<std::uint64_t>("ack");
  const int efd = row == "eventfd" ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
  if (row == "eventfd" && efd < 0) fail(std::string("eventfd: ") + std::strerror(errno));

  bench::wait_for_quiet(P.quiet_wait_ms);
  bench::Children kids;
  kids.spawn([&] {
    produce(q, ack, efd, n, seed);
    _exit(0);
  });

  res.us.reserve(static_cast<std::size_t>(samples));
  long switches = voluntary_switches();
  auto record = [&](std::int64_t stamp, std::uint64_t seq, std::uint64_t expect) {
    const std::int64_t t = now_ns();
    const long now_switches = voluntary_switches();
    const bool slept = now_switches != switches;
    if (seq != expect) fail(row + ": item " + std::to_string(seq) + " arrived, expected " + std::to_string(expect));
    if (static_cast<int>(expect) >= P.warmup) {
      res.us.push_back(static_cast<double>(t - stamp) / 1000.0);
      if (slept) res.slept_us.push_back(res.us.back());
    }
    ack.put(expect);
    switches = voluntary_switches();  // ack.put() wakes the producer; it does not sleep
  };

  alarm(static_cast<unsigned>(P.timeout_s));
  if (row == "blocking") {
    for (int i = 0; i < n; ++i) {
      const Sample s = q.get();
      record(s.stamp_ns, s.seq, static_cast<std::uint64_t>(i));
    }
  } else if (row == "fd_epoll") {
    ipckit::WaitHandle h = q.wait_handle();
    const int ep = make_epoll(h.fd());
    for (int i = 0; i < n; ++i) {
      std::optional<Sample> s;
      while (!(s = q.try_get()))
        if (!h.arm()) wait_readable(ep);
      record(s->stamp_ns, s->seq, static_cast<std::uint64_t>(i));
    }
    close(ep);
  } else if (row == "eventfd") {
    const int ep = make_epoll(efd);
    for (int i = 0; i < n; ++i) {
      std::uint64_t v = 0;
      while (read(efd, &v, sizeof v) != sizeof v) {
        if (errno != EAGAIN && errno != EINTR) fail(std::string("eventfd read: ") + std::strerror(errno));
        wait_readable(ep);
      }
      record(static_cast<std::int64_t>(v), static_cast<std::uint64_t>(i), static_cast<std::uint64_t>(i));
    }
    close(ep);
  } else {
#if ASYNC_WAKE_HAS_ASIO
    namespace asio = boost::asio;
    asio::io_context io(1);
    std::string error;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          for (int i = 0; i < n; ++i) {
            const Sample s = co_await q.async_get(asio::use_awaitable);
            record(s.stamp_ns, s.seq, static_cast<std::uint64_t>(i));
          }
        },
        [&](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            error = x.what();
          }
        });
    io.run();
    if (!error.empty()) fail("asio: " + error);
#endif
  }
  alarm(0);

  bool timed_out = false;
  if (!kids.wait_all(now_ns() + std::int64_t{P.timeout_s} * 1'000'000'000, &timed_out))
    fail(row + ": the producer " + (timed_out ? "did not finish" : "failed"));
  if (efd >= 0) close(efd);
  seg.reset();
  ipckit::Segment::remove(name);
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"One-way wake latency of an idle waiter: blocking get, wait handle + epoll, Asio, eventfd floor"};
  std::vector<std::string> only;
  app.add_option("--samples,-n", P.samples, "recorded samples per row, over all rounds")->check(CLI::PositiveNumber);
  app.add_option("--warmup", P.warmup, "unrecorded items at the start of each run")->check(CLI::NonNegativeNumber);
  app.add_option("--rounds", P.rounds, "rounds; each runs every row once")->check(CLI::PositiveNumber);
  app.add_option("--gap-min-us", P.gap_min_us, "shortest sleep of the producer between items")
      ->check(CLI::Range(0, 1'000'000));
  app.add_option("--gap-max-us", P.gap_max_us, "longest sleep of the producer between items")
      ->check(CLI::Range(0, 1'000'000));
  app.add_option("--quiet-wait-ms", P.quiet_wait_ms, "before each run, wait up to this long for idle CPUs");
  app.add_option("--timeout-s", P.timeout_s, "watchdog: a run that takes longer fails")->check(CLI::PositiveNumber);
  app.add_option("--row", only, "run only these rows (blocking, fd_epoll, asio, eventfd)")->check(CLI::IsMember(kRows));
  CLI11_PARSE(app, argc, argv);
  if (P.gap_max_us < P.gap_min_us) P.gap_max_us = P.gap_min_us;
  std::vector<std::string> rows;
  for (const auto& r : kRows)
    if (only.empty() || std::find(only.begin(), only.end(), r) != only.end()) rows.push_back(r);
  std::signal(SIGALRM, on_alarm);

  std::printf(
      "one-way wake latency, waiter idle, producer in another process, unpinned: %d samples per row,\n"
      "%d rounds interleaved, producer sleeps %d-%d us between items (after the waiter's ack)\n",
      P.samples, P.rounds, P.gap_min_us, P.gap_max_us);
  std::printf(
      "note: the blocking get spins ~50 us before it sleeps: an item can still find it spinning (on a busy\n"
      "machine, or after a preemption); the blocking row is shown again over only the items it slept for\n\n");
  std::fflush(stdout);

  std::map<std::string, RunResult> all;
  for (int r = 0; r < P.rounds; ++r) {
    const int share = P.samples / P.rounds + (r < P.samples % P.rounds ? 1 : 0);
    for (std::size_t k = 0; k < rows.size(); ++k) {
      const std::string& row = rows[(k + static_cast<std::size_t>(r)) % rows.size()];
      RunResult one = run_row(row, share, static_cast<unsigned>(1000 * r + k + 1));
      auto& acc = all[row];
      acc.ran = one.ran;
      acc.us.insert(acc.us.end(), one.us.begin(), one.us.end());
      acc.slept_us.insert(acc.slept_us.end(), one.slept_us.begin(), one.slept_us.end());
    }
  }

  // The table: every row over all its samples; for the blocking get also
  // over the samples it slept for (the others found it still spinning).
  std::map<std::string, double> p50;
  std::vector<std::pair<std::string, std::vector<double>*>> shown;
  std::printf("%-40s %9s %9s %9s %9s %8s\n", "row", "p50 us", "p99 us", "min us", "max us", "slept");
  for (const auto& row : rows) {
    auto& res = all[row];
    if (!res.ran) {
      std::printf("%-40s n/a (asio layer not built)\n", row_label(row));
      continue;
    }
    const double slept = res.us.empty() ? 0 : static_cast<double>(res.slept_us.size()) / res.us.size();
    shown.emplace_back(row, &res.us);
    if (row == "blocking") shown.emplace_back("blocking_slept", &res.slept_us);
    for (std::size_t k = shown.size() - (row == "blocking" ? 2 : 1); k < shown.size(); ++k) {
      auto& v = *shown[k].second;
      if (v.empty()) continue;
      std::sort(v.begin(), v.end());
      p50[shown[k].first] = bench::quantile(v, 0.5);
      const bool sub = shown[k].first == "blocking_slept";
      std::printf("%-40s %9.2f %9.2f %9.2f %9.2f %7.0f%%\n", sub ? "  the same, items it slept for" : row_label(row),
                  p50[shown[k].first], bench::quantile(v, 0.99), v.front(), v.back(), sub ? 100.0 : 100 * slept);
    }
  }
  std::printf("(slept: share of items the waiter slept for, from its voluntary context switches)\n");
  std::printf("\n%-40s %14s %14s\n", "p50 ratios", "vs blocking", "vs eventfd");
  for (const auto& [name, v] : shown) {
    if (!p50.count(name)) continue;
    auto ratio = [&](const char* den) {
      return p50.count(den) && p50[den] > 0 ? bench::fmt("%.2fx", p50[name] / p50[den]) : std::string("-");
    };
    const std::string label = name == "blocking_slept" ? "  blocking, items it slept for" : row_label(name);
    std::printf("%-40s %14s %14s\n", label.c_str(), ratio("blocking").c_str(), ratio("eventfd").c_str());
  }
  std::printf("\n");
  for (const auto& row : rows)
    if (!all[row].ran) std::printf("async_wake_%s not built\n", row.c_str());
  for (const auto& [name, v] : shown) {
    if (!p50.count(name)) continue;
    std::printf("RESULT async_wake_%s_p50 %.3f us\n", name.c_str(), p50[name]);
    std::printf("RESULT async_wake_%s_p99 %.3f us\n", name.c_str(), bench::quantile(*v, 0.99));
  }
  return 0;
}
