// bench/lock_bench.cpp — lock hand-off between processes, side by side.
//
// Each contended mode forks 2 processes that each increment one shared counter
// N times (default 1,000,000) under the mode's lock. Both are released at once
// by a start flag; the timed region runs from the release (taken by the parent
// just before it raises the flag) to the later of the two children's own
// "finished" timestamps (CLOCK_MONOTONIC, taken right after their last
// unlock). Process creation, lock/segment setup, the first (warming) lock of
// each child, exit and reaping are all outside it. The final count is checked
// to be exactly 2 × N; a wrong count makes the program exit non-zero.
//
// Modes run interleaved (round r runs every selected mode once, starting at a
// rotating position) so that the noise of a shared machine falls on all of
// them alike; the ratios printed are between medians of the same invocation.
// Before each run the parent waits (bounded, --quiet-wait-ms) for the CPUs to
// be idle, and releases the children only once they spin on different CPUs:
// right after fork they often share one, and a run released then measures one
// process alone. The table's "sleeps" and "preempt" columns (the children's
// voluntary and involuntary context switches per run) show how much a lock
// slept and how much other programs got in the way.
//
//   ipckit_lock     ipckit::Lock from a Segment, counter = Value<int64_t>
//   ipckit_rlock    the Value's own get_lock() (an RLock): Python's pattern
//   boost_mutex     boost::interprocess::interprocess_mutex constructed in a
//                   managed_shared_memory, scoped_lock, plain int64 counter
//   pthread_mutex   process-shared pthread mutex (not crash-safe)
//   pthread_robust  process-shared + PTHREAD_MUTEX_ROBUST pthread mutex
//   atomic_floor    no lock at all: std::atomic fetch_add (the hardware floor)
//   uncontended     one process, lock+unlock in a tight loop (10M times) for
//                   ipckit Lock, ipckit RLock, std::mutex, Boost's mutex and
//                   the two pthread mutexes: ns per lock+unlock pair
//
// Output: a table, then one machine-readable line per row:
//   RESULT <row> <median> <unit> min=<min> max=<max>
// (unit incr_per_s for contended rows, ns_per_op for uncontended ones), which
// scripts/bench.sh reads to put Python's row beside these.
//
// With --count-futex (root, tracefs mounted) every row also reports how many
// futex system calls its processes made per increment, counted by the
// kernel's syscalls:sys_enter_futex tracepoint over the timed region.
#include <linux/perf_event.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef LOCK_BENCH_WITHOUT_IPCKIT
#include <ipckit/lock.hpp>
#include <ipckit/segment.hpp>
#include <ipckit/value.hpp>
#endif

#include "bench_common.hpp"

namespace bip = boost::interprocess;

namespace {

// From bench_common.hpp (this file keeps its own Stats/summarize).
using bench::cpu_relax;
using bench::FutexCounter;
using bench::now_ns;
using bench::SharedBlock;

constexpr int kProcs = 2;

// The start line and the finish timestamps, on their own cache lines.
struct Control {
  alignas(64) std::atomic<int> ready{0};
  alignas(64) std::atomic<int> go{0};
  alignas(64) std::atomic<int> cpu[kProcs]{-1, -1};
  alignas(64) std::atomic<std::int64_t> started_ns[kProcs]{};
  alignas(64) std::atomic<std::int64_t> finished_ns[kProcs]{};
  std::atomic<long> invol_switches[kProcs]{};  // preempted during the timed work
  std::atomic<long> vol_switches[kProcs]{};    // slept (futex waits) during it
};

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// One contended mode: how to set it up, what a child does, how to check it.

struct Instance {
  std::function<void()> warm;                 // in each child, before the start line
  std::function<void(std::int64_t n)> work;   // in each child, timed
  std::function<std::int64_t()> final_count;  // in the parent, afterwards
  std::function<void()> cleanup;              // in the parent, afterwards
};

struct Mode {
  std::string name;
  std::string label;
  std::function<Instance(std::int64_t n)> make;
};

struct Sample {
  double per_s = 0;
  double futex_per_incr = -1;      // < 0: not counted
  std::int64_t start_skew_ns = 0;  // release to the later child's first increment
  bool spread = true;              // the children ran on different CPUs at release
  bool quiet = true;               // the machine was idle just before the run
  long preempted = 0;              // involuntary context switches of both children
  long slept = 0;                  // voluntary ones (futex sleeps)
};

[[noreturn]] void child_fail(const char* mode, const char* what) {
  std::fprintf(stderr, "lock_bench: %s: child %d failed: %s\n", mode, getpid(), what);
  std::fflush(stderr);
  _exit(3);
}

bool g_verbose = false;
int g_quiet_wait_ms = 2000;  // before each run, wait at most this long for an idle machine
int g_unspread_runs = 0;     // runs released without seeing the children on different CPUs
int g_busy_runs = 0;         // runs started although the machine never went idle

// Waits (bounded) until the other load on the machine leaves the CPUs idle,
// so that a run measures the lock rather than the scheduler sharing a CPU
// between a child and somebody's compiler. Returns false if it never did.
bool wait_for_quiet() { return bench::wait_for_quiet(g_quiet_wait_ms); }

Sample run_contended(const Mode& mode, std::int64_t n, const std::optional<int>& futex_id) {
  const bool quiet = wait_for_quiet();
  Instance inst = mode.make(n);
  SharedBlock<Control> ctl;
  std::unique_ptr<FutexCounter> futexes;
  if (futex_id) {
    futexes = std::make_unique<FutexCounter>(*futex_id);
    if (!futexes->ok()) futexes.reset();
  }
  std::fflush(stdout);
  std::fflush(stderr);

  std::vector<pid_t> pids;
  auto abandon = [&](const std::string& why) {
    for (pid_t p : pids) kill(p, SIGKILL);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
    if (inst.cleanup) inst.cleanup();
    throw std::runtime_error(mode.name + ": " + why);
  };
  for (int i = 0; i < kProcs; ++i) {
    pid_t pid = fork();
    if (pid < 0) abandon(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      try {
        if (inst.warm) inst.warm();
        ctl->ready.fetch_add(1, std::memory_order_acq_rel);
        // Busy-wait (no yield) so that both children stay runnable and the
        // scheduler spreads them over the CPUs; report where we run.
        while (ctl->go.load(std::memory_order_acquire) == 0) {
          ctl->cpu[i].store(sched_getcpu(), std::memory_order_relaxed);
          for (int k = 0; k < 16; ++k) cpu_relax();
        }
        ctl->started_ns[i].store(now_ns(), std::memory_order_relaxed);
        rusage before{};
        getrusage(RUSAGE_SELF, &before);
        inst.work(n);
        ctl->finished_ns[i].store(now_ns(), std::memory_order_release);
        rusage after{};
        getrusage(RUSAGE_SELF, &after);
        ctl->invol_switches[i].store(after.ru_nivcsw - before.ru_nivcsw);
        ctl->vol_switches[i].store(after.ru_nvcsw - before.ru_nvcsw);
      } catch (const std::exception& e) {
        child_fail(mode.name.c_str(), e.what());
      } catch (...) {
        child_fail(mode.name.c_str(), "unknown exception");
      }
      _exit(0);
    }
    pids.push_back(pid);
  }

  // Release only once the children spin at the same time on different CPUs
  // (right after fork they often share one until the load balancer moves
  // one; released then, the second would start milliseconds late and the
  // run would measure one process alone). Give up waiting after 0.5 s.
  while (ctl->ready.load(std::memory_order_acquire) < kProcs) {
    for (pid_t p : pids) {
      int status = 0;
      if (waitpid(p, &status, WNOHANG) == p) {
        pids.erase(std::find(pids.begin(), pids.end(), p));
        abandon("a child process failed before the start");
      }
    }
    usleep(100);
  }
  bool spread = true;
  if (sysconf(_SC_NPROCESSORS_ONLN) >= kProcs) {
    const std::int64_t give_up = now_ns() + 500'000'000;
    int apart = 0;
    while (apart < 3 && now_ns() < give_up) {
      usleep(1000);
      const int c0 = ctl->cpu[0].load(std::memory_order_relaxed), c1 = ctl->cpu[1].load(std::memory_order_relaxed);
      apart = (c0 >= 0 && c1 >= 0 && c0 != c1) ? apart + 1 : 0;
    }
    spread = apart >= 3;
  }
  if (futexes) futexes->enable();
  const std::int64_t t0 = now_ns();
  ctl->go.store(1, std::memory_order_release);

  bool failed = false;
  for (pid_t pid : pids) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = true;
  }
  if (futexes) futexes->disable();
  std::int64_t t1 = 0;
  for (const auto& f : ctl->finished_ns) t1 = std::max(t1, f.load(std::memory_order_acquire));

  const std::int64_t got = failed ? -1 : inst.final_count();
  if (inst.cleanup) inst.cleanup();
  if (failed) throw std::runtime_error(mode.name + ": a child process failed");
  const std::int64_t want = n * kProcs;
  if (got != want) {
    throw std::runtime_error(mode.name + ": final count " + std::to_string(got) + " != expected " +
                             std::to_string(want) + " (the lock let increments be lost)");
  }
  if (g_verbose) {
    auto us = [&](std::int64_t t) { return static_cast<double>(t - t0) / 1e3; };
    std::fprintf(stderr,
                 "  %-15s %9.0f us; child 0 ran %.0f..%.0f us, child 1 ran %.0f..%.0f us (from release); "
                 "preempted %ld+%ld, slept %ld+%ld times%s%s\n",
                 mode.name.c_str(), us(t1), us(ctl->started_ns[0]), us(ctl->finished_ns[0]), us(ctl->started_ns[1]),
                 us(ctl->finished_ns[1]), ctl->invol_switches[0].load(), ctl->invol_switches[1].load(),
                 ctl->vol_switches[0].load(), ctl->vol_switches[1].load(),
                 spread ? "" : "; NOT spread over 2 CPUs at release", quiet ? "" : "; machine was busy");
  }
  Sample s;
  s.spread = spread;
  s.quiet = quiet;
  s.preempted = ctl->invol_switches[0].load() + ctl->invol_switches[1].load();
  s.slept = ctl->vol_switches[0].load() + ctl->vol_switches[1].load();
  s.start_skew_ns = std::max(ctl->started_ns[0].load(), ctl->started_ns[1].load()) - t0;
  s.per_s = static_cast<double>(want) / (static_cast<double>(t1 - t0) * 1e-9);
  if (futexes) {
    const std::int64_t c = futexes->read_count();
    if (c >= 0) s.futex_per_incr = static_cast<double>(c) / static_cast<double>(want);
  }
  return s;
}

std::string unique_name(const char* what) {
  static int seq = 0;
  return std::string("lockbench_") + what + "_" + std::to_string(getpid()) + "_" + std::to_string(++seq);
}

// Pthread mutex + counter in one anonymous shared page.
struct PthreadShared {
  pthread_mutex_t m;
  alignas(64) std::int64_t counter = 0;
};

void init_pthread(PthreadShared& s, bool robust) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (int rc = pthread_mutex_init(&s.m, &a); rc != 0)
    throw std::runtime_error(std::string("pthread_mutex_init: ") + std::strerror(rc));
  pthread_mutexattr_destroy(&a);
}

void lock_pthread(pthread_mutex_t* m) {
  int rc = pthread_mutex_lock(m);
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(m);  // nobody dies in a benchmark, but be correct
  } else if (rc != 0) {
    throw std::runtime_error(std::string("pthread_mutex_lock: ") + std::strerror(rc));
  }
}

struct BoostShared {
  std::unique_ptr<bip::managed_shared_memory> shm;
  bip::interprocess_mutex* m = nullptr;
  std::int64_t* counter = nullptr;
  std::string name;
};

std::shared_ptr<BoostShared> make_boost() {
  auto b = std::make_shared<BoostShared>();
  b->name = unique_name("boost");
  bip::shared_memory_object::remove(b->name.c_str());
  b->shm = std::make_unique<bip::managed_shared_memory>(bip::create_only, b->name.c_str(), 1 << 16);
  b->m = b->shm->construct<bip::interprocess_mutex>("m")();
  b->counter = b->shm->construct<std::int64_t>("c")(0);
  return b;
}

std::vector<Mode> contended_modes() {
  std::vector<Mode> modes;

#ifndef LOCK_BENCH_WITHOUT_IPCKIT
  modes.push_back({"ipckit_lock", "ipckit Lock (crash-safe)", [](std::int64_t) {
                     auto name = unique_name("ipckit");
                     auto seg = std::make_shared<ipckit::Segment>(ipckit::Segment::create(name, 1 << 20));
                     auto lock = std::make_shared<ipckit::Lock>(seg->lock("L"));
                     auto counter = std::make_shared<ipckit::Value<std::int64_t>>(seg->value<std::int64_t>("c"));
                     Instance in;
                     in.warm = [lock] {
                       lock->lock();
                       lock->unlock();
                     };
                     in.work = [lock, counter](std::int64_t n) {
                       auto& l = *lock;
                       auto& c = *counter;
                       for (std::int64_t i = 0; i < n; ++i) {
                         std::lock_guard g(l);
                         c.set(c.get() + 1);
                       }
                     };
                     in.final_count = [counter] { return counter->get(); };
                     in.cleanup = [name] { ipckit::Segment::remove(name); };
                     return in;
                   }});
  modes.push_back({"ipckit_rlock", "ipckit Value.get_lock() (RLock)", [](std::int64_t) {
                     auto name = unique_name("ipckitr");
                     auto seg = std::make_shared<ipckit::Segment>(ipckit::Segment::create(name, 1 << 20));
                     auto counter = std::make_shared<ipckit::Value<std::int64_t>>(seg->value<std::int64_t>("c"));
                     Instance in;
                     in.warm = [counter] {
                       counter->get_lock().lock();
                       counter->get_lock().unlock();
                     };
                     in.work = [counter](std::int64_t n) {
                       auto& c = *counter;
                       auto& l = c.get_lock();
                       for (std::int64_t i = 0; i < n; ++i) {
                         std::lock_guard g(l);
                         c.set(c.get() + 1);
                       }
                     };
                     in.final_count = [counter] { return counter->get(); };
                     in.cleanup = [name] { ipckit::Segment::remove(name); };
                     return in;
                   }});
#endif

  modes.push_back({"boost_mutex", "Boost interprocess_mutex", [](std::int64_t) {
                     auto b = make_boost();
                     Instance in;
                     in.warm = [b] {
                       b->m->lock();
                       b->m->unlock();
                     };
                     in.work = [b](std::int64_t n) {
                       auto* m = b->m;
                       volatile std::int64_t* c = b->counter;
                       for (std::int64_t i = 0; i < n; ++i) {
                         bip::scoped_lock<bip::interprocess_mutex> g(*m);
                         *c = *c + 1;
                       }
                     };
                     in.final_count = [b] { return *b->counter; };
                     in.cleanup = [b] {
                       b->shm.reset();
                       bip::shared_memory_object::remove(b->name.c_str());
                     };
                     return in;
                   }});

  for (bool robust : {false, true}) {
    modes.push_back({robust ? "pthread_robust" : "pthread_mutex",
                     robust ? "pthread mutex, ROBUST" : "pthread mutex (pshared)", [robust](std::int64_t) {
                       auto s = std::make_shared<SharedBlock<PthreadShared>>();
                       init_pthread(**s, robust);
                       Instance in;
                       in.warm = [s] {
                         lock_pthread(&(*s)->m);
                         pthread_mutex_unlock(&(*s)->m);
                       };
                       in.work = [s](std::int64_t n) {
                         pthread_mutex_t* m = &(*s)->m;
                         volatile std::int64_t* c = &(*s)->counter;
                         for (std::int64_t i = 0; i < n; ++i) {
                           lock_pthread(m);
                           *c = *c + 1;
                           pthread_mutex_unlock(m);
                         }
                       };
                       in.final_count = [s] { return (*s)->counter; };
                       in.cleanup = [s] { pthread_mutex_destroy(&(*s)->m); };
                       return in;
                     }});
  }

  modes.push_back({"atomic_floor", "floor: atomic fetch_add", [](std::int64_t) {
                     auto s = std::make_shared<SharedBlock<std::atomic<std::int64_t>>>();
                     Instance in;
                     in.work = [s](std::int64_t n) {
                       auto& c = **s;
                       for (std::int64_t i = 0; i < n; ++i) c.fetch_add(1, std::memory_order_acq_rel);
                     };
                     in.final_count = [s] { return (*s)->load(); };
                     return in;
                   }});
  return modes;
}

// ---------------------------------------------------------------------------
// Uncontended lock+unlock, one process.

struct UncontendedRow {
  std::string name;
  std::string label;
  std::function<double(std::int64_t iters, const std::optional<int>& futex_id, double* futex_per_op)> run;
};

template <class LockFn, class UnlockFn>
double time_loop(std::int64_t iters, LockFn&& lk, UnlockFn&& ul, const std::optional<int>& futex_id,
                 double* futex_per_op) {
  std::unique_ptr<FutexCounter> futexes;
  if (futex_id) {
    futexes = std::make_unique<FutexCounter>(*futex_id);
    if (!futexes->ok()) futexes.reset();
  }
  lk();
  ul();  // warm
  if (futexes) futexes->enable();
  const std::int64_t t0 = now_ns();
  for (std::int64_t i = 0; i < iters; ++i) {
    lk();
    asm volatile("" ::: "memory");
    ul();
  }
  const std::int64_t t1 = now_ns();
  if (futexes) {
    futexes->disable();
    *futex_per_op = static_cast<double>(futexes->read_count()) / static_cast<double>(iters);
  }
  return static_cast<double>(t1 - t0) / static_cast<double>(iters);
}

std::vector<UncontendedRow> uncontended_rows() {
  std::vector<UncontendedRow> rows;
#ifndef LOCK_BENCH_WITHOUT_IPCKIT
  rows.push_back({"uncontended_ipckit_lock", "ipckit Lock", [](std::int64_t it, const auto& fid, double* fpo) {
                    auto name = unique_name("ipckitu");
                    double ns = 0;
                    {
                      auto seg = ipckit::Segment::create(name, 1 << 20);
                      auto l = seg.lock("L");
                      ns = time_loop(
                          it, [&] { l.lock(); }, [&] { l.unlock(); }, fid, fpo);
                    }
                    ipckit::Segment::remove(name);
                    return ns;
                  }});
  rows.push_back({"uncontended_ipckit_rlock", "ipckit RLock", [](std::int64_t it, const auto& fid, double* fpo) {
                    auto name = unique_name("ipckitu");
                    double ns = 0;
                    {
                      auto seg = ipckit::Segment::create(name, 1 << 20);
                      auto l = seg.rlock("R");
                      ns = time_loop(
                          it, [&] { l.lock(); }, [&] { l.unlock(); }, fid, fpo);
                    }
                    ipckit::Segment::remove(name);
                    return ns;
                  }});
#endif
  rows.push_back(
      {"uncontended_std_mutex", "std::mutex (one process only)", [](std::int64_t it, const auto& fid, double* fpo) {
         std::mutex m;
         return time_loop(
             it, [&] { m.lock(); }, [&] { m.unlock(); }, fid, fpo);
       }});
  rows.push_back(
      {"uncontended_boost_mutex", "Boost interprocess_mutex", [](std::int64_t it, const auto& fid, double* fpo) {
         auto b = make_boost();
         double ns = time_loop(
             it, [&] { b->m->lock(); }, [&] { b->m->unlock(); }, fid, fpo);
         b->shm.reset();
         bip::shared_memory_object::remove(b->name.c_str());
         return ns;
       }});
  for (bool robust : {false, true}) {
    rows.push_back({robust ? "uncontended_pthread_robust" : "uncontended_pthread_mutex",
                    robust ? "pthread mutex, ROBUST" : "pthread mutex (pshared)",
                    [robust](std::int64_t it, const auto& fid, double* fpo) {
                      SharedBlock<PthreadShared> s;
                      init_pthread(*s, robust);
                      double ns = time_loop(
                          it, [&] { lock_pthread(&s->m); }, [&] { pthread_mutex_unlock(&s->m); }, fid, fpo);
                      pthread_mutex_destroy(&s->m);
                      return ns;
                    }});
  }
  return rows;
}

// ---------------------------------------------------------------------------
// Reporting.

struct Stats {
  double median = 0, min = 0, max = 0;
  double futex = -1;                // median futex calls per increment / per op
  double slept = 0, preempted = 0;  // medians per run (contended rows)
};

Stats summarize(std::vector<double> v, std::vector<double> futex) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const std::size_t k = v.size();
  s.median = (k % 2) ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
  s.min = v.front();
  s.max = v.back();
  if (!futex.empty()) {
    std::sort(futex.begin(), futex.end());
    s.futex = futex[futex.size() / 2];
  }
  return s;
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "lock_bench — lock hand-off between 2 processes (ipckit Lock vs Boost.Interprocess vs pthread vs the "
      "atomic floor), plus the uncontended lock+unlock cost"};
  std::int64_t iterations = 1'000'000;
  std::int64_t uncontended_iterations = 10'000'000;
  int runs = 5;
  int warmup = 1;
  std::vector<std::string> only;
  bool count_futex = false;
  bool list = false;
  app.add_option("--iterations,-n", iterations, "increments per process in the contended modes")
      ->check(CLI::PositiveNumber);
  app.add_option("--uncontended-iterations", uncontended_iterations, "lock+unlock pairs in the uncontended rows")
      ->check(CLI::PositiveNumber);
  app.add_option("--runs,-r", runs, "measured runs per mode (median, min, max reported)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "unmeasured runs per mode first")->check(CLI::NonNegativeNumber);
  app.add_option("--mode,-m", only,
                 "run only these modes (repeatable): a contended mode name, 'uncontended', or an uncontended row "
                 "name; see --list");
  app.add_flag("--count-futex", count_futex,
               "also count futex syscalls per increment (needs root and tracefs at /sys/kernel/tracing)");
  app.add_flag("--list", list, "list the modes and exit");
  app.add_option("--quiet-wait-ms", g_quiet_wait_ms,
                 "before each contended run, wait up to this long for the machine to be idle (0: don't)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--verbose,-v", g_verbose, "print every contended run's timeline (on stderr)");
  CLI11_PARSE(app, argc, argv);

  auto modes = contended_modes();
  auto urows = uncontended_rows();
  if (list) {
    for (const auto& m : modes) std::printf("%-28s %s\n", m.name.c_str(), m.label.c_str());
    std::printf("%-28s %s\n", "uncontended", "all of the rows below");
    for (const auto& u : urows) std::printf("  %-26s %s\n", u.name.c_str(), u.label.c_str());
    return 0;
  }

  std::set<std::string> wanted(only.begin(), only.end());
  auto selected = [&](const std::string& name, bool uncontended) {
    return wanted.empty() || wanted.count(name) || (uncontended && wanted.count("uncontended"));
  };
  {
    std::set<std::string> known{"uncontended"};
    for (const auto& m : modes) known.insert(m.name);
    for (const auto& u : urows) known.insert(u.name);
    for (const auto& w : wanted) {
      if (!known.count(w)) {
        std::fprintf(stderr, "lock_bench: unknown mode '%s' (see --list)\n", w.c_str());
        return 2;
      }
    }
  }
  std::vector<const Mode*> cmodes;
  for (const auto& m : modes)
    if (selected(m.name, false)) cmodes.push_back(&m);
  std::vector<const UncontendedRow*> umodes;
  for (const auto& u : urows)
    if (selected(u.name, true)) umodes.push_back(&u);

  std::optional<int> futex_id;
  if (count_futex) {
    futex_id = FutexCounter::tracepoint_id();
    if (futex_id) {
      FutexCounter probe(*futex_id);
      if (!probe.ok()) futex_id.reset();
    }
    if (!futex_id)
      std::fprintf(stderr,
                   "lock_bench: --count-futex: the syscalls:sys_enter_futex tracepoint is not usable here (needs root "
                   "and tracefs: mount -t tracefs nodev /sys/kernel/tracing); not counting\n");
  }

  std::printf("lock_bench: %d processes x %" PRId64
              " increments, %d runs (+%d warm-up) per mode, interleaved; "
              "%ld CPUs online\n",
              kProcs, iterations, runs, warmup, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("timed: from the start flag to the later child's last unlock; setup, fork, exit not included\n\n");
  std::fflush(stdout);

  // Contended modes, interleaved.
  std::map<std::string, std::vector<double>> samples, futex_samples, slept_samples, preempt_samples;
  const std::size_t M = cmodes.size();
  try {
    for (int round = -warmup; round < runs; ++round) {
      for (std::size_t j = 0; j < M; ++j) {
        const Mode& m = *cmodes[(j + static_cast<std::size_t>(round + warmup)) % M];
        Sample s = run_contended(m, iterations, futex_id);
        if (!s.spread) ++g_unspread_runs;
        if (!s.quiet) ++g_busy_runs;
        if (round >= 0) {
          samples[m.name].push_back(s.per_s);
          slept_samples[m.name].push_back(static_cast<double>(s.slept));
          preempt_samples[m.name].push_back(static_cast<double>(s.preempted));
          if (s.futex_per_incr >= 0) futex_samples[m.name].push_back(s.futex_per_incr);
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lock_bench: FAILED: %s\n", e.what());
    return 1;
  }

  std::map<std::string, Stats> stats;
  for (const Mode* m : cmodes) {
    Stats& st = stats[m->name] = summarize(samples[m->name], futex_samples[m->name]);
    st.slept = summarize(slept_samples[m->name], {}).median;
    st.preempted = summarize(preempt_samples[m->name], {}).median;
  }
  auto median_of = [&](const char* name) -> double {
    auto it = stats.find(name);
    return it == stats.end() ? 0.0 : it->second.median;
  };
  const double boost = median_of("boost_mutex");
  const double floor = median_of("atomic_floor");

  if (!cmodes.empty()) {
    std::printf("Contended: 2 processes, each %" PRId64 " increments under the lock (M increments/s)\n", iterations);
    std::printf("%-16s %-32s %9s %9s %9s %9s %9s %7s %7s%s\n", "mode", "", "median", "min", "max", "vs Boost",
                "vs floor", "sleeps", "preempt", futex_id ? "  futex/incr" : "");
    for (const Mode* m : cmodes) {
      const Stats& s = stats[m->name];
      std::printf("%-16s %-32s %9.2f %9.2f %9.2f %9s %9s", m->name.c_str(), m->label.c_str(), s.median / 1e6,
                  s.min / 1e6, s.max / 1e6, boost > 0 ? fmt("%.2fx", s.median / boost).c_str() : "-",
                  floor > 0 ? fmt("%.2fx", s.median / floor).c_str() : "-");
      std::printf(" %7.0f %7.0f", s.slept, s.preempted);
      if (futex_id) std::printf("  %10s", s.futex >= 0 ? fmt("%.4f", s.futex).c_str() : "-");
      std::printf("\n");
    }
    std::printf(
        "(sleeps, preempt: median per run of the children's voluntary context switches — futex sleeps — and\n"
        " involuntary ones — preempted by another task; both children added)\n\n");
    std::fflush(stdout);
  }

  // Uncontended rows.
  std::map<std::string, Stats> ustats;
  try {
    for (const UncontendedRow* u : umodes) {
      std::vector<double> v, f;
      for (int r = -warmup; r < runs; ++r) {
        double fpo = -1;
        double ns = u->run(uncontended_iterations, futex_id, &fpo);
        if (r >= 0) {
          v.push_back(ns);
          if (fpo >= 0) f.push_back(fpo);
        }
      }
      ustats[u->name] = summarize(v, f);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lock_bench: FAILED: %s\n", e.what());
    return 1;
  }
  if (!umodes.empty()) {
    std::printf("Uncontended: one process, %" PRId64 " lock+unlock pairs (ns per pair)\n", uncontended_iterations);
    std::printf("%-28s %-30s %8s %8s %8s%s\n", "row", "", "median", "min", "max", futex_id ? "  futex/op" : "");
    for (const UncontendedRow* u : umodes) {
      const Stats& s = ustats[u->name];
      std::printf("%-28s %-30s %8.2f %8.2f %8.2f", u->name.c_str(), u->label.c_str(), s.median, s.min, s.max);
      if (futex_id) std::printf("  %9s", s.futex >= 0 ? fmt("%.6f", s.futex).c_str() : "-");
      std::printf("\n");
    }
    std::printf("(a futex syscall costs well over 100 ns; a pair in the tens of ns means the fast path made none)\n\n");
  }

  if (g_busy_runs > 0)
    std::printf(
        "note: %d contended run(s) started while other programs kept the CPUs busy (waited %d ms for "
        "quiet); expect noise\n",
        g_busy_runs, g_quiet_wait_ms);
  if (g_unspread_runs > 0)
    std::printf("note: %d run(s) were released before both children were seen on different CPUs (busy machine?)\n",
                g_unspread_runs);
  for (const Mode* m : cmodes) {
    const Stats& s = stats[m->name];
    std::printf("RESULT %s %.4e incr_per_s min=%.4e max=%.4e", m->name.c_str(), s.median, s.min, s.max);
    if (s.futex >= 0) std::printf(" futex_per_incr=%.4f", s.futex);
    std::printf("\n");
  }
  for (const UncontendedRow* u : umodes) {
    const Stats& s = ustats[u->name];
    std::printf("RESULT %s %.3f ns_per_op min=%.3f max=%.3f", u->name.c_str(), s.median, s.min, s.max);
    if (s.futex >= 0) std::printf(" futex_per_op=%.6f", s.futex);
    std::printf("\n");
  }
  return 0;
}
