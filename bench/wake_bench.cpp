// bench/wake_bench.cpp — waking a peer process, side by side.
//
// Three parts, each selectable with --mode (see --list):
//
// 1. Ping-pong (wake-up round trip). Two forked processes, A and B, hand a
//    turn back and forth through the mode's primitive: A signals B, B wakes and
//    signals A back, A wakes: one round trip. A takes a CLOCK_MONOTONIC
//    timestamp before each round trip (and one after the last), so each round
//    trip's time is the difference of two consecutive stamps; one clock read
//    (printed as "clock read") is inside every round trip. Each run does
//    --warmup-trips untimed round trips first, then the timed ones; a run's
//    median and p99 are over its timed round trips, and a row reports the
//    median over runs of those (min and max over runs beside). Process
//    creation, object setup, the release and reaping are outside the timed
//    region. Rows:
//
//      ipckit_event      two ipckit Events "ping" and "pong": A does
//                        ping.set(); pong.wait(); pong.clear(); B does
//                        ping.wait(); ping.clear(); pong.set(). Each side
//                        clears its own event before it sets the other's,
//                        and only the other side sets it, so no set is lost.
//      ipckit_condition  one ipckit Condition (its own lock) and a turn Value:
//                        each side holds the lock, sets the turn to the other
//                        side, notify(), wait(pred: the turn is mine).
//      raw_spin          a shared word, both sides spin on it (the floor).
//      raw_futex         the same word; the waiter always FUTEX_WAITs and the
//                        signaller always FUTEX_WAKEs: no spinning at all.
//      raw_adaptive      spin up to --adaptive-spin-us on the word, then count
//                        oneself a sleeper and FUTEX_WAIT; the signaller wakes
//                        only when a sleeper is counted (a reference for what a
//                        spin-then-block wait can reach here).
//      boost_condition   Boost.Interprocess interprocess_mutex +
//                        interprocess_condition in a managed_shared_memory,
//                        same pattern as ipckit_condition.
//
//    A and B are pinned to two different CPUs: the case that matters (a
//    peer on another core) and one the scheduler otherwise picks only
//    sometimes (left alone, it often moves two processes that wake each
//    other onto one CPU, where a futex wake-up is a mere context switch;
//    --no-pin shows that). Modes run interleaved (round r runs every mode
//    once, from a rotating start) so that a shared machine's noise falls on
//    all alike. Before each run the parent waits (bounded) for idle CPUs and
//    releases the children only once they spin on different CPUs. A watchdog
//    kills a run that does not finish within --timeout-s (a lost wake-up
//    shows as a failure naming how far each side got, never as a hang). Per
//    run it also records the children's voluntary context switches (sleeps)
//    per round trip and, with futex counting, futex system calls per round
//    trip.
//
//    Probes for tuning a spin-then-block wait (not used by scripts/bench.sh):
//    --reply-delay-us D makes B busy-work D µs before each answer (round
//    trips jump by a wake-up once D exceeds how long the waiter spins);
//    --same-cpu pins A and B to one CPU (a busy machine: a spinning waiter
//    then holds the CPU its peer needs); --adaptive-spin-us and
//    --adaptive-yield-after-us shape raw_adaptive's spin.
//
// 2. Idle waiters. Children block for --idle-ms (2 s) in: ipckit Event.wait()
//    (set by the parent 0.3 s after the idle time), Event.wait(timeout) and
//    Condition.wait_for(timeout, pred) (both time out after the idle time),
//    Semaphore.acquire() (released 0.35 s after it). Each child measures its own
//    CPU time (CLOCK_PROCESS_CPUTIME_ID) across the wait: % of one core =
//    CPU time / wall time of the wait. All run concurrently (they are idle);
//    the parent sleeps meanwhile. The wake-up delay after the parent's
//    set/release is reported too.
//
// 3. Uncontended, one process: ipckit Semaphore acquire()+release() pairs
//    beside a bare atomic fetch_sub+fetch_add pair on a shared word, an
//    inlined CAS-take/fetch_add-give semaphore fast path, Boost's
//    interprocess_semaphore wait()+post(), and ipckit Event set()+clear() and
//    Condition notify() with nobody waiting: ns per pair and, with futex
//    counting, futex system calls per pair (0 = no syscall on the fast path).
//
// Futex counting (--count-futex auto|on|off, default auto) uses the kernel's
// syscalls:sys_enter_futex tracepoint through perf_event_open; it needs root
// and tracefs (mount -t tracefs nodev /sys/kernel/tracing).
//
// Output: tables, then machine-readable lines for scripts/bench.sh:
//   RESULT wake_<row>_median <us> us min=<> max=<>   (and wake_<row>_p99)
//   RESULT idle_<row>_cpu <percent of a core, worst run> pct_core min=<> median=<>
//   RESULT uncontended_<row> <ns> ns_per_op min=<> max=<>
//   RESULT futex_per_op_<row> <calls> futex_per_op
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <poll.h>
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
#include <boost/interprocess/sync/interprocess_condition.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <climits>
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

#ifndef WAKE_BENCH_WITHOUT_IPCKIT
#include <ipckit/condition.hpp>
#include <ipckit/event.hpp>
#include <ipckit/segment.hpp>
#include <ipckit/semaphore.hpp>
#include <ipckit/value.hpp>
#endif

#include "bench_common.hpp"

namespace bip = boost::interprocess;
using namespace std::chrono_literals;

namespace {

using namespace bench;  // clocks, shared memory, pinning, Children, summaries

// ---------------------------------------------------------------------------
// Raw futex calls on process-shared words (not FUTEX_PRIVATE: the pages are
// shared between processes).

long sys_futex_wait(std::atomic<std::uint32_t>& w, std::uint32_t expected) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAIT, expected, nullptr, nullptr, 0);
}
long sys_futex_wake(std::atomic<std::uint32_t>& w, int n) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

// ---------------------------------------------------------------------------

std::optional<int> g_futex_id;  // set when futex counting is on

std::unique_ptr<FutexCounter> make_futex_counter() {
  if (!g_futex_id) return nullptr;
  auto c = std::make_unique<FutexCounter>(*g_futex_id);
  if (!c->ok()) return nullptr;
  return c;
}

// ---------------------------------------------------------------------------
// Machine quiet, child bookkeeping.

bool g_verbose = false;
int g_quiet_wait_ms = 2000;
int g_timeout_s = 30;
int g_unspread_runs = 0;
int g_busy_runs = 0;
int g_pin_cpu[2] = {-1, -1};  // ping-pong sides pinned to these CPUs (-1: not pinned)

// Picks two CPUs this process may run on for A and B; false if there are not two.
bool choose_pin_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  int found = 0;
  for (int c = 0; c < CPU_SETSIZE && found < 2; ++c)
    if (CPU_ISSET(c, &set)) g_pin_cpu[found++] = c;
  if (found < 2) g_pin_cpu[0] = g_pin_cpu[1] = -1;
  return found == 2;
}

// Waits (bounded) until other programs leave the CPUs idle; false if they never did.
bool wait_for_quiet() { return bench::wait_for_quiet(g_quiet_wait_ms); }

[[noreturn]] void child_fail(const std::string& mode, const char* what) {
  std::fprintf(stderr, "wake_bench: %s: child %d failed: %s\n", mode.c_str(), getpid(), what);
  std::fflush(stderr);
  _exit(3);
}

std::string unique_name(const char* what) {
  static int seq = 0;
  return std::string("wakebench_") + what + "_" + std::to_string(getpid()) + "_" + std::to_string(++seq);
}

// ---------------------------------------------------------------------------
// Part 1: ping-pong.

constexpr int kA = 0, kB = 1;

// The start line, progress and the children's counters, on their own cache lines.
struct Control {
  alignas(64) std::atomic<int> ready{0};
  alignas(64) std::atomic<int> go{0};
  alignas(64) std::atomic<int> cpu[2]{-1, -1};
  alignas(64) std::atomic<std::int64_t> progress_a{0};  // round trips A completed
  alignas(64) std::atomic<std::int64_t> progress_b{0};  // answers B gave
  alignas(64) std::atomic<long> vol_switches[2]{};
  std::atomic<long> invol_switches[2]{};
};

// What one run of a mode does in each child. `a` signals and waits `total`
// times, stamping stamps[i - skip] before round trip i >= skip and
// stamps[total - skip] after the last; `b` answers `total` times.
struct PingPong {
  std::function<void(int side)> warm;  // in each child, before the start line (may be empty)
  std::function<void(std::int64_t total, std::int64_t skip, std::int64_t* stamps, std::atomic<std::int64_t>* progress)>
      a;
  std::function<void(std::int64_t total, std::atomic<std::int64_t>* progress)> b;
  std::function<void()> cleanup;  // in the parent, afterwards
};

struct PingPongMode {
  std::string name;
  std::string label;
  bool slow;  // sleeps every time: fewer round trips
  std::function<PingPong()> make;
};

// The A and B loops, with the mode's signal/await steps inlined.
template <class Ping, class AwaitPong>
void side_a(std::int64_t total, std::int64_t skip, std::int64_t* stamps, std::atomic<std::int64_t>* progress,
            Ping&& ping, AwaitPong&& await_pong) {
  for (std::int64_t i = 0; i < total; ++i) {
    if (i >= skip) stamps[i - skip] = now_ns();
    ping(i);
    await_pong(i);
    progress->store(i + 1, std::memory_order_relaxed);
  }
  stamps[total - skip] = now_ns();
}

std::int64_t g_reply_delay_ns = 0;  // B works this long (busy) before it answers

template <class AwaitPing, class Pong>
void side_b(std::int64_t total, std::atomic<std::int64_t>* progress, AwaitPing&& await_ping, Pong&& pong) {
  const std::int64_t delay = g_reply_delay_ns;
  for (std::int64_t i = 0; i < total; ++i) {
    await_ping(i);
    if (delay > 0) {
      const std::int64_t until = now_ns() + delay;
      while (now_ns() < until) cpu_relax();
    }
    pong(i);
    progress->store(i + 1, std::memory_order_relaxed);
  }
}

// A shared word on its own cache line, for the raw rows. Round trip i: A
// stores 2i+1, B answers with 2i+2.
struct RawWord {
  alignas(64) std::atomic<std::uint32_t> word{0};
  alignas(64) std::atomic<std::uint32_t> sleepers{0};  // raw_adaptive only
};

std::uint32_t ping_value(std::int64_t i) { return static_cast<std::uint32_t>(2 * i + 1); }
std::uint32_t pong_value(std::int64_t i) { return static_cast<std::uint32_t>(2 * i + 2); }

void spin_for(std::atomic<std::uint32_t>& w, std::uint32_t want) {
  while (w.load(std::memory_order_acquire) != want) cpu_relax();
}

void futex_for(std::atomic<std::uint32_t>& w, std::uint32_t want) {
  for (;;) {
    const std::uint32_t v = w.load(std::memory_order_acquire);
    if (v == want) return;
    sys_futex_wait(w, v);
  }
}

int g_adaptive_spin_us = 50;
int g_adaptive_yield_after_us = -1;  // >= 0: after this long, sched_yield() between polls

// Spin up to g_adaptive_spin_us (yielding the CPU between polls once
// g_adaptive_yield_after_us has passed, if set), then sleep as a counted sleeper.
void adaptive_for(RawWord& r, std::uint32_t want) {
  auto& w = r.word;
  const std::int64_t start = now_ns();
  const std::int64_t spin_until = start + std::int64_t{g_adaptive_spin_us} * 1000;
  const std::int64_t yield_from =
      g_adaptive_yield_after_us < 0 ? INT64_MAX : start + std::int64_t{g_adaptive_yield_after_us} * 1000;
  for (int polls = 0;; ++polls) {
    if (w.load(std::memory_order_acquire) == want) return;
    cpu_relax();
    if ((polls & 63) == 63) {
      const std::int64_t t = now_ns();
      if (t >= spin_until) break;
      if (t >= yield_from) {
        // From here on poll between yields: a peer waiting for this CPU gets it.
        while (w.load(std::memory_order_acquire) != want && now_ns() < spin_until) sched_yield();
        if (w.load(std::memory_order_acquire) == want) return;
        break;
      }
    }
  }
  for (;;) {
    r.sleepers.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t v = w.load(std::memory_order_seq_cst);
    if (v != want) sys_futex_wait(w, v);
    r.sleepers.fetch_sub(1, std::memory_order_seq_cst);
    if (w.load(std::memory_order_acquire) == want) return;
  }
}

void adaptive_publish(RawWord& r, std::uint32_t v) {
  r.word.store(v, std::memory_order_seq_cst);
  if (r.sleepers.load(std::memory_order_seq_cst) != 0) sys_futex_wake(r.word, 1);
}

struct BoostPingPong {
  std::unique_ptr<bip::managed_shared_memory> shm;
  bip::interprocess_mutex* m = nullptr;
  bip::interprocess_condition* c = nullptr;
  int* turn = nullptr;  // guarded by m: 1 = B's turn, 0 = A's
  std::string name;
};

std::vector<PingPongMode> pingpong_modes() {
  std::vector<PingPongMode> modes;

#ifndef WAKE_BENCH_WITHOUT_IPCKIT
  modes.push_back({"ipckit_event", "ipckit Event x2 (set/wait/clear)", false, [] {
                     auto name = unique_name("ev");
                     auto seg = std::make_shared<ipckit::Segment>(ipckit::Segment::create(name, 1 << 20));
                     auto ping = std::make_shared<ipckit::Event>(seg->event("ping"));
                     auto pong = std::make_shared<ipckit::Event>(seg->event("pong"));
                     PingPong p;
                     p.a = [seg, ping, pong](std::int64_t total, std::int64_t skip, std::int64_t* st,
                                             std::atomic<std::int64_t>* prog) {
                       auto& e1 = *ping;
                       auto& e2 = *pong;
                       side_a(
                           total, skip, st, prog, [&](std::int64_t) { e1.set(); },
                           [&](std::int64_t) {
                             e2.wait();
                             e2.clear();
                           });
                     };
                     p.b = [seg, ping, pong](std::int64_t total, std::atomic<std::int64_t>* prog) {
                       auto& e1 = *ping;
                       auto& e2 = *pong;
                       side_b(
                           total, prog,
                           [&](std::int64_t) {
                             e1.wait();
                             e1.clear();
                           },
                           [&](std::int64_t) { e2.set(); });
                     };
                     p.cleanup = [name] { ipckit::Segment::remove(name); };
                     return p;
                   }});

  modes.push_back({"ipckit_condition", "ipckit Condition + turn Value", false, [] {
                     auto name = unique_name("cv");
                     auto seg = std::make_shared<ipckit::Segment>(ipckit::Segment::create(name, 1 << 20));
                     auto cond = std::make_shared<ipckit::Condition>(seg->condition("turn_changed"));
                     auto turn = std::make_shared<ipckit::Value<std::int32_t>>(seg->value<std::int32_t>("turn", 0));
                     PingPong p;
                     p.warm = [cond](int) {
                       cond->lock();
                       cond->unlock();
                     };
                     p.a = [seg, cond, turn](std::int64_t total, std::int64_t skip, std::int64_t* st,
                                             std::atomic<std::int64_t>* prog) {
                       auto& c = *cond;
                       auto& t = *turn;
                       std::unique_lock g(c);
                       side_a(
                           total, skip, st, prog,
                           [&](std::int64_t) {
                             t.set(1);
                             c.notify();
                           },
                           [&](std::int64_t) { c.wait([&] { return t.get() == 0; }); });
                     };
                     p.b = [seg, cond, turn](std::int64_t total, std::atomic<std::int64_t>* prog) {
                       auto& c = *cond;
                       auto& t = *turn;
                       std::unique_lock g(c);
                       side_b(
                           total, prog, [&](std::int64_t) { c.wait([&] { return t.get() == 1; }); },
                           [&](std::int64_t) {
                             t.set(0);
                             c.notify();
                           });
                     };
                     p.cleanup = [name] { ipckit::Segment::remove(name); };
                     return p;
                   }});
#endif

  auto raw = [](const char* name, const char* label, bool slow, auto wait_for, auto publish) {
    return PingPongMode{name, label, slow, [wait_for, publish] {
                          auto r = std::make_shared<SharedBlock<RawWord>>();
                          PingPong p;
                          p.a = [r, wait_for, publish](std::int64_t total, std::int64_t skip, std::int64_t* st,
                                                       std::atomic<std::int64_t>* prog) {
                            RawWord& w = **r;
                            side_a(
                                total, skip, st, prog, [&](std::int64_t i) { publish(w, ping_value(i)); },
                                [&](std::int64_t i) { wait_for(w, pong_value(i)); });
                          };
                          p.b = [r, wait_for, publish](std::int64_t total, std::atomic<std::int64_t>* prog) {
                            RawWord& w = **r;
                            side_b(
                                total, prog, [&](std::int64_t i) { wait_for(w, ping_value(i)); },
                                [&](std::int64_t i) { publish(w, pong_value(i)); });
                          };
                          return p;
                        }};
  };
  modes.push_back(raw(
      "raw_spin", "raw: both spin on a word (floor)", false,
      [](RawWord& w, std::uint32_t want) { spin_for(w.word, want); },
      [](RawWord& w, std::uint32_t v) { w.word.store(v, std::memory_order_release); }));
  modes.push_back(raw(
      "raw_adaptive", "raw: spin, then counted futex sleep", false,
      [](RawWord& w, std::uint32_t want) { adaptive_for(w, want); },
      [](RawWord& w, std::uint32_t v) { adaptive_publish(w, v); }));
  modes.push_back(raw(
      "raw_futex", "raw: FUTEX_WAIT / FUTEX_WAKE always", true,
      [](RawWord& w, std::uint32_t want) { futex_for(w.word, want); },
      [](RawWord& w, std::uint32_t v) {
        w.word.store(v, std::memory_order_release);
        sys_futex_wake(w.word, 1);
      }));

  modes.push_back({"boost_condition", "Boost interprocess_condition", true, [] {
                     auto b = std::make_shared<BoostPingPong>();
                     b->name = unique_name("boost");
                     bip::shared_memory_object::remove(b->name.c_str());
                     b->shm = std::make_unique<bip::managed_shared_memory>(bip::create_only, b->name.c_str(), 1 << 16);
                     b->m = b->shm->construct<bip::interprocess_mutex>("m")();
                     b->c = b->shm->construct<bip::interprocess_condition>("c")();
                     b->turn = b->shm->construct<int>("turn")(0);
                     PingPong p;
                     p.warm = [b](int) {
                       b->m->lock();
                       b->m->unlock();
                     };
                     p.a = [b](std::int64_t total, std::int64_t skip, std::int64_t* st,
                               std::atomic<std::int64_t>* prog) {
                       bip::scoped_lock<bip::interprocess_mutex> g(*b->m);
                       volatile int* t = b->turn;
                       side_a(
                           total, skip, st, prog,
                           [&](std::int64_t) {
                             *t = 1;
                             b->c->notify_one();
                           },
                           [&](std::int64_t) {
                             while (*t != 0) b->c->wait(g);
                           });
                     };
                     p.b = [b](std::int64_t total, std::atomic<std::int64_t>* prog) {
                       bip::scoped_lock<bip::interprocess_mutex> g(*b->m);
                       volatile int* t = b->turn;
                       side_b(
                           total, prog,
                           [&](std::int64_t) {
                             while (*t != 1) b->c->wait(g);
                           },
                           [&](std::int64_t) {
                             *t = 0;
                             b->c->notify_one();
                           });
                     };
                     p.cleanup = [b] {
                       b->shm.reset();
                       bip::shared_memory_object::remove(b->name.c_str());
                     };
                     return p;
                   }});
  return modes;
}

struct PingPongSample {
  double median_us = 0, p99_us = 0, max_us = 0, mean_us = 0;
  double futex_per_rt = -1;  // < 0: not counted
  double sleeps_per_rt = 0;  // voluntary context switches of both children per round trip
  double preempt = 0;        // involuntary ones, total for the run
  bool spread = true, quiet = true;
};

PingPongSample run_pingpong(const PingPongMode& mode, std::int64_t n, std::int64_t warm_trips) {
  PingPongSample s;
  s.quiet = wait_for_quiet();
  PingPong inst = mode.make();
  SharedBlock<Control> ctl;
  const std::int64_t total = warm_trips + n;
  SharedBytes stamp_mem(static_cast<std::size_t>(n + 1) * sizeof(std::int64_t));
  auto* stamps = static_cast<std::int64_t*>(stamp_mem.get());
  auto futexes = make_futex_counter();

  auto cleanup = [&] {
    if (inst.cleanup) inst.cleanup();
  };
  Children kids;
  try {
    for (int side : {kA, kB}) {
      kids.spawn([&, side] {
        try {
          pin_to(g_pin_cpu[side]);
          if (side == kA) std::memset(stamps, 0, stamp_mem.size());  // fault the pages in now
          if (inst.warm) inst.warm(side);
          ctl->ready.fetch_add(1, std::memory_order_acq_rel);
          // Busy-wait (no yield) so that both stay runnable and the scheduler
          // spreads them over the CPUs; report where we run.
          while (ctl->go.load(std::memory_order_acquire) == 0) {
            ctl->cpu[side].store(sched_getcpu(), std::memory_order_relaxed);
            for (int k = 0; k < 16; ++k) cpu_relax();
          }
          rusage before{};
          getrusage(RUSAGE_SELF, &before);
          if (side == kA) {
            inst.a(total, warm_trips, stamps, &ctl->progress_a);
          } else {
            inst.b(total, &ctl->progress_b);
          }
          rusage after{};
          getrusage(RUSAGE_SELF, &after);
          ctl->vol_switches[side].store(after.ru_nvcsw - before.ru_nvcsw);
          ctl->invol_switches[side].store(after.ru_nivcsw - before.ru_nivcsw);
        } catch (const std::exception& e) {
          child_fail(mode.name, e.what());
        } catch (...) {
          child_fail(mode.name, "unknown exception");
        }
        _exit(0);
      });
    }
  } catch (...) {
    kids.kill_all();
    cleanup();
    throw;
  }

  auto abandon = [&](const std::string& why) {
    kids.kill_all();
    cleanup();
    throw std::runtime_error(mode.name + ": " + why);
  };
  {
    const std::int64_t give_up = now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000;
    while (ctl->ready.load(std::memory_order_acquire) < 2) {
      if (kids.any_exited()) abandon("a child process failed before the start");
      if (now_ns() > give_up) abandon("the children never reached the start line");
      usleep(100);
    }
  }
  // Release only once both spin at the same time on different CPUs (right
  // after fork they often share one); give up waiting after 0.5 s.
  if (sysconf(_SC_NPROCESSORS_ONLN) >= 2 && (g_pin_cpu[0] < 0 || g_pin_cpu[0] != g_pin_cpu[1])) {
    const std::int64_t give_up = now_ns() + 500'000'000;
    int apart = 0;
    while (apart < 3 && now_ns() < give_up) {
      usleep(1000);
      const int c0 = ctl->cpu[0].load(std::memory_order_relaxed), c1 = ctl->cpu[1].load(std::memory_order_relaxed);
      apart = (c0 >= 0 && c1 >= 0 && c0 != c1) ? apart + 1 : 0;
    }
    s.spread = apart >= 3;
  }
  if (futexes) futexes->enable();
  ctl->go.store(1, std::memory_order_release);

  bool timed_out = false;
  const bool ok = kids.wait_all(now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000, &timed_out);
  if (futexes) futexes->disable();
  if (timed_out) {
    const auto a = ctl->progress_a.load(), b = ctl->progress_b.load();
    abandon("no progress within " + std::to_string(g_timeout_s) + " s: A completed " + std::to_string(a) +
            " round trips, B answered " + std::to_string(b) + " of " + std::to_string(total) +
            " (a lost wake-up or a deadlock)");
  }
  if (!ok) abandon("a child process failed");
  cleanup();
  if (ctl->progress_a.load() != total || ctl->progress_b.load() != total)
    throw std::runtime_error(mode.name + ": round trips do not add up");

  std::vector<double> rt(static_cast<std::size_t>(n));
  double sum = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    rt[static_cast<std::size_t>(i)] = static_cast<double>(stamps[i + 1] - stamps[i]) / 1e3;
    sum += rt[static_cast<std::size_t>(i)];
  }
  std::sort(rt.begin(), rt.end());
  s.median_us = quantile(rt, 0.5);
  s.p99_us = quantile(rt, 0.99);
  s.max_us = rt.back();
  s.mean_us = sum / static_cast<double>(n);
  s.sleeps_per_rt =
      static_cast<double>(ctl->vol_switches[0].load() + ctl->vol_switches[1].load()) / static_cast<double>(total);
  s.preempt = static_cast<double>(ctl->invol_switches[0].load() + ctl->invol_switches[1].load());
  if (futexes) {
    const std::int64_t c = futexes->read_count();
    if (c >= 0) s.futex_per_rt = static_cast<double>(c) / static_cast<double>(total);
  }
  if (g_verbose) {
    std::fprintf(stderr,
                 "  %-17s median %8.2f us  p99 %8.2f us  max %9.1f us  mean %8.2f us  sleeps/rt %.3f  preempt %.0f"
                 "%s%s%s\n",
                 mode.name.c_str(), s.median_us, s.p99_us, s.max_us, s.mean_us, s.sleeps_per_rt, s.preempt,
                 s.futex_per_rt >= 0 ? ("  futex/rt " + std::to_string(s.futex_per_rt)).c_str() : "",
                 s.spread ? "" : "; NOT spread over 2 CPUs at release", s.quiet ? "" : "; machine was busy");
  }
  return s;
}

// ---------------------------------------------------------------------------
// Part 2: idle waiters.

struct IdleSlot {
  alignas(64) std::atomic<int> ready{0};
  std::atomic<std::int64_t> wall_ns{0};
  std::atomic<std::int64_t> cpu_ns{0};
  std::atomic<std::int64_t> returned_at{0};  // CLOCK_MONOTONIC when the wait returned
  std::atomic<long> vol_switches{0};
  std::atomic<int> result{-1};  // what the wait returned (1 true, 0 false)
};

struct IdleControl {
  alignas(64) std::atomic<std::int64_t> woken_at[2]{};  // when the parent set the event / released the semaphore
  IdleSlot slot[8];
};
// The waiters that the parent wakes are woken this long after the timed
// waits have ended (so that their wake-up is not slowed by the others'
// exits), the semaphore's waiter a little after the event's.
constexpr int kIdleWakeAfterMs = 300;
constexpr int kIdleSecondWakeMs = 50;

struct IdleMode {
  std::string name;
  std::string label;
  bool parent_wakes;  // the parent sets/releases after the idle time (else the wait times out)
};

std::vector<IdleMode> idle_modes() {
  return {
      {"ipckit_event_wait", "ipckit Event.wait(), set after the idle time", true},
      {"ipckit_event_wait_timeout", "ipckit Event.wait(timeout), times out", false},
      {"ipckit_condition_wait_for", "ipckit Condition.wait_for(timeout, pred), times out", false},
      {"ipckit_semaphore_acquire", "ipckit Semaphore.acquire(), released after", true},
  };
}

struct IdleSample {
  double cpu_pct = 0;  // of one core, over the wait
  double wall_ms = 0;
  double wake_us = -1;  // set/release -> wait returned (parent_wakes modes)
  double sleeps = 0;    // voluntary context switches during the wait
};

#ifndef WAKE_BENCH_WITHOUT_IPCKIT
std::map<std::string, IdleSample> run_idle(const std::vector<const IdleMode*>& modes, int idle_ms) {
  const auto name = unique_name("idle");
  std::map<std::string, IdleSample> out;
  auto seg = ipckit::Segment::create(name, 1 << 20);
  struct RemoveAtEnd {
    std::string n;
    ~RemoveAtEnd() { ipckit::Segment::remove(n); }
  } remove_at_end{name};
  auto ev_set_later = seg.event("set_later");
  auto ev_never = seg.event("never");
  auto cond = seg.condition("never_notified");
  auto flag = seg.value<std::int32_t>("flag", 0);
  auto sem = seg.semaphore("released_later", 0);
  SharedBlock<IdleControl> ctl;
  const auto idle = std::chrono::milliseconds(idle_ms);

  Children kids;
  for (std::size_t i = 0; i < modes.size(); ++i) {
    const IdleMode& m = *modes[i];
    IdleSlot& slot = ctl->slot[i];
    kids.spawn([&] {
      try {
        std::function<int()> wait;
        if (m.name == "ipckit_event_wait") {
          wait = [&] {
            ev_set_later.wait();
            return 1;
          };
        } else if (m.name == "ipckit_event_wait_timeout") {
          wait = [&] { return ev_never.wait(idle) ? 1 : 0; };
        } else if (m.name == "ipckit_condition_wait_for") {
          wait = [&] {
            std::unique_lock g(cond);
            return cond.wait_for(idle, [&] { return flag.get() != 0; }) ? 1 : 0;
          };
        } else if (m.name == "ipckit_semaphore_acquire") {
          wait = [&] {
            sem.acquire();
            return 1;
          };
        } else {
          child_fail(m.name, "unknown idle mode");
        }
        slot.ready.store(1, std::memory_order_release);
        rusage before{};
        getrusage(RUSAGE_SELF, &before);
        const std::int64_t c0 = cpu_ns(), w0 = now_ns();
        const int r = wait();
        const std::int64_t w1 = now_ns(), c1 = cpu_ns();
        rusage after{};
        getrusage(RUSAGE_SELF, &after);
        slot.returned_at.store(w1);
        slot.wall_ns.store(w1 - w0);
        slot.cpu_ns.store(c1 - c0);
        slot.vol_switches.store(after.ru_nvcsw - before.ru_nvcsw);
        slot.result.store(r, std::memory_order_release);
      } catch (const std::exception& e) {
        child_fail(m.name, e.what());
      }
      _exit(0);
    });
  }
  const std::int64_t give_up = now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000;
  for (std::size_t i = 0; i < modes.size(); ++i) {
    while (ctl->slot[i].ready.load(std::memory_order_acquire) == 0) {
      if (kids.any_exited()) throw std::runtime_error("idle: a child failed before waiting");
      if (now_ns() > give_up) throw std::runtime_error("idle: children never started waiting");
      usleep(1000);
    }
  }
  // The children took their first timestamps right after `ready`. Sleep
  // (one nanosleep each: the parent adds no wake-ups of its own) past the
  // timed waits' end and their exits, then wake the Event waiter, and a
  // little later the Semaphore waiter, each on an otherwise idle machine.
  auto sleep_ms = [](int ms) {
    timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1'000'000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  };
  sleep_ms(idle_ms + kIdleWakeAfterMs);
  ctl->woken_at[0].store(now_ns());
  ev_set_later.set();
  sleep_ms(kIdleSecondWakeMs);
  ctl->woken_at[1].store(now_ns());
  sem.release();
  bool timed_out = false;
  if (!kids.wait_all(now_ns() + std::int64_t{g_timeout_s} * 1'000'000'000, &timed_out)) {
    kids.kill_all();
    throw std::runtime_error(timed_out ? "idle: a waiter did not return (lost wake-up?)" : "idle: a child failed");
  }
  for (std::size_t i = 0; i < modes.size(); ++i) {
    const IdleMode& m = *modes[i];
    const IdleSlot& slot = ctl->slot[i];
    IdleSample s;
    s.wall_ms = static_cast<double>(slot.wall_ns.load()) / 1e6;
    s.cpu_pct = 100.0 * static_cast<double>(slot.cpu_ns.load()) / static_cast<double>(slot.wall_ns.load());
    s.sleeps = static_cast<double>(slot.vol_switches.load());
    const int want = m.parent_wakes ? 1 : 0;
    if (slot.result.load() != want)
      throw std::runtime_error("idle: " + m.name + " returned " + std::to_string(slot.result.load()) + ", expected " +
                               std::to_string(want));
    if (m.parent_wakes) {
      const int which = m.name == "ipckit_semaphore_acquire" ? 1 : 0;
      s.wake_us = static_cast<double>(slot.returned_at.load() - ctl->woken_at[which].load()) / 1e3;
      if (s.wake_us < 0) throw std::runtime_error("idle: " + m.name + " returned before it was woken");
    } else if (s.wall_ms < 0.99 * idle_ms) {
      throw std::runtime_error("idle: " + m.name + " timed out early (" + std::to_string(s.wall_ms) + " ms)");
    }
    out[m.name] = s;
  }
  return out;
}
#endif

// ---------------------------------------------------------------------------
// Part 3: uncontended, one process.

struct UncontendedRow {
  std::string name;
  std::string label;
  std::function<double(std::int64_t iters, double* futex_per_op)> run;
};

template <class Op1, class Op2>
double time_pairs(std::int64_t iters, Op1&& op1, Op2&& op2, double* futex_per_op) {
  auto futexes = make_futex_counter();
  for (int i = 0; i < 1000; ++i) {  // warm
    op1();
    op2();
  }
  if (futexes) futexes->enable();
  const std::int64_t t0 = now_ns();
  for (std::int64_t i = 0; i < iters; ++i) {
    op1();
    asm volatile("" ::: "memory");
    op2();
  }
  const std::int64_t t1 = now_ns();
  if (futexes) {
    futexes->disable();
    const std::int64_t c = futexes->read_count();
    if (c >= 0) *futex_per_op = static_cast<double>(c) / static_cast<double>(iters);
  }
  return static_cast<double>(t1 - t0) / static_cast<double>(iters);
}

std::vector<UncontendedRow> uncontended_rows() {
  std::vector<UncontendedRow> rows;
#ifndef WAKE_BENCH_WITHOUT_IPCKIT
  auto with_segment = [](auto&& body) {
    auto name = unique_name("unc");
    double ns = 0;
    try {
      auto seg = ipckit::Segment::create(name, 1 << 20);
      ns = body(seg);
    } catch (...) {
      ipckit::Segment::remove(name);
      throw;
    }
    ipckit::Segment::remove(name);
    return ns;
  };
  rows.push_back({"ipckit_semaphore", "ipckit Semaphore acquire+release", [with_segment](std::int64_t it, double* f) {
                    return with_segment([&](ipckit::Segment& seg) {
                      auto s = seg.semaphore("S", 1);
                      return time_pairs(
                          it, [&] { s.acquire(); }, [&] { s.release(); }, f);
                    });
                  }});
  rows.push_back(
      {"ipckit_bounded_semaphore", "ipckit BoundedSemaphore acq+rel", [with_segment](std::int64_t it, double* f) {
         return with_segment([&](ipckit::Segment& seg) {
           auto s = seg.bounded_semaphore("B", 1);
           return time_pairs(
               it, [&] { s.acquire(); }, [&] { s.release(); }, f);
         });
       }});
  rows.push_back(
      {"ipckit_event_set_clear", "ipckit Event set+clear, no waiter", [with_segment](std::int64_t it, double* f) {
         return with_segment([&](ipckit::Segment& seg) {
           auto e = seg.event("E");
           return time_pairs(
               it, [&] { e.set(); }, [&] { e.clear(); }, f);
         });
       }});
  rows.push_back(
      {"ipckit_condition_notify", "ipckit Condition lock+notify+unlock", [with_segment](std::int64_t it, double* f) {
         return with_segment([&](ipckit::Segment& seg) {
           auto c = seg.condition("C");
           return time_pairs(
               it,
               [&] {
                 c.lock();
                 c.notify();
               },
               [&] { c.unlock(); }, f);
         });
       }});
#endif
  rows.push_back({"atomic_pair", "floor: atomic fetch_sub+fetch_add", [](std::int64_t it, double* f) {
                    SharedBlock<RawWord> w;
                    w->word.store(1);
                    return time_pairs(
                        it, [&] { w->word.fetch_sub(1, std::memory_order_acq_rel); },
                        [&] { w->word.fetch_add(1, std::memory_order_acq_rel); }, f);
                  }});
  rows.push_back({"raw_semaphore", "raw inline: CAS take, fetch_add give", [](std::int64_t it, double* f) {
                    // What an inlined semaphore fast path costs: take with a CAS
                    // loop on the count, give with fetch_add, then look at a
                    // sleeper count (no sleeper: no syscall).
                    SharedBlock<RawWord> w;
                    w->word.store(1);
                    return time_pairs(
                        it,
                        [&] {
                          std::uint32_t c = w->word.load(std::memory_order_relaxed);
                          while (c == 0 || !w->word.compare_exchange_weak(c, c - 1, std::memory_order_acquire,
                                                                          std::memory_order_relaxed)) {
                            if (c == 0) c = w->word.load(std::memory_order_relaxed);
                          }
                        },
                        [&] {
                          w->word.fetch_add(1, std::memory_order_seq_cst);
                          if (w->sleepers.load(std::memory_order_seq_cst) != 0) sys_futex_wake(w->word, 1);
                        },
                        f);
                  }});
  rows.push_back({"boost_semaphore", "Boost interprocess_semaphore wait+post", [](std::int64_t it, double* f) {
                    auto name = unique_name("bsem");
                    bip::shared_memory_object::remove(name.c_str());
                    double ns = 0;
                    {
                      bip::managed_shared_memory shm(bip::create_only, name.c_str(), 1 << 16);
                      auto* s = shm.construct<bip::interprocess_semaphore>("s")(1);
                      ns = time_pairs(
                          it, [&] { s->wait(); }, [&] { s->post(); }, f);
                    }
                    bip::shared_memory_object::remove(name.c_str());
                    return ns;
                  }});
  return rows;
}

// ---------------------------------------------------------------------------
// Reporting.

double clock_read_ns() {
  constexpr int k = 200000;
  std::int64_t sink = 0;
  const std::int64_t t0 = now_ns();
  for (int i = 0; i < k; ++i) sink += now_ns();
  const std::int64_t t1 = now_ns();
  asm volatile("" ::"r"(sink));
  return static_cast<double>(t1 - t0) / k;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "wake_bench — waking a peer process: ping-pong round trips (ipckit Event/Condition vs raw futex, raw spin, "
      "Boost.Interprocess condition), idle waiters' CPU, uncontended Semaphore cost"};
  std::int64_t trips = 20000;
  std::int64_t slow_trips = 5000;
  std::int64_t warm_trips = 500;
  std::int64_t uncontended_iterations = 10'000'000;
  int runs = 5;
  int warmup = 1;
  int idle_runs = 3;
  int idle_ms = 2000;
  std::string count_futex = "auto";
  std::vector<std::string> only;
  bool list = false;
  bool no_pin = false;
  bool same_cpu = false;
  app.add_option("--round-trips,-n", trips, "timed round trips per run, for the rows that spin")
      ->check(CLI::PositiveNumber);
  app.add_option("--slow-round-trips", slow_trips, "timed round trips per run, for the rows that always sleep")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup-trips", warm_trips, "untimed round trips at the start of every run")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--runs,-r", runs, "measured runs per row (median, min, max of the runs reported)")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "unmeasured runs per ping-pong/uncontended row first")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--idle-runs", idle_runs, "runs of the idle-waiter part (each lasts --idle-ms)")
      ->check(CLI::PositiveNumber);
  app.add_option("--idle-ms", idle_ms, "how long the idle waiters wait")->check(CLI::PositiveNumber);
  app.add_option("--uncontended-iterations", uncontended_iterations, "pairs per uncontended run")
      ->check(CLI::PositiveNumber);
  double reply_delay_us = 0;
  app.add_option("--reply-delay-us", reply_delay_us,
                 "B busy-works this long before each answer (probes how long a waiter spins before it sleeps: "
                 "round trips jump by a wake-up once the delay exceeds the spin)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--adaptive-spin-us", g_adaptive_spin_us, "raw_adaptive's spin before it sleeps")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--adaptive-yield-after-us", g_adaptive_yield_after_us,
                 "raw_adaptive: after this long, poll between sched_yield() calls for the rest of the spin "
                 "(-1: never yield)");
  app.add_option("--count-futex", count_futex,
                 "count futex syscalls (auto: when the tracepoint is usable; needs root and tracefs)")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--mode,-m", only,
                 "run only these (repeatable): a row name, or a part: pingpong, idle, uncontended; see --list");
  app.add_option("--quiet-wait-ms", g_quiet_wait_ms,
                 "before each ping-pong run, wait up to this long for idle CPUs (0: don't)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout-s", g_timeout_s, "watchdog: a run that takes longer fails (lost wake-up/deadlock)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--no-pin", no_pin,
               "do not pin the ping-pong sides to two different CPUs (the scheduler may then put them on one, "
               "where a futex wake-up costs a context switch instead of waking a halted CPU)");
  app.add_flag("--same-cpu", same_cpu,
               "pin both ping-pong sides to ONE CPU (the case of a busy machine: a spinning waiter then holds "
               "the CPU its peer needs); raw_spin is left out unless named with --mode")
      ->excludes("--no-pin");
  app.add_flag("--list", list, "list the rows and exit");
  app.add_flag("--verbose,-v", g_verbose, "print every run (on stderr)");
  CLI11_PARSE(app, argc, argv);

  auto pmodes = pingpong_modes();
  auto imodes = idle_modes();
  auto urows = uncontended_rows();
#ifdef WAKE_BENCH_WITHOUT_IPCKIT
  imodes.clear();
#endif
  if (list) {
    std::printf("pingpong\n");
    for (const auto& m : pmodes) std::printf("  %-28s %s\n", m.name.c_str(), m.label.c_str());
    std::printf("idle\n");
    for (const auto& m : imodes) std::printf("  %-28s %s\n", m.name.c_str(), m.label.c_str());
    std::printf("uncontended\n");
    for (const auto& u : urows) std::printf("  %-28s %s\n", u.name.c_str(), u.label.c_str());
    return 0;
  }
  std::set<std::string> wanted(only.begin(), only.end());
  {
    std::set<std::string> known{"pingpong", "idle", "uncontended"};
    for (const auto& m : pmodes) known.insert(m.name);
    for (const auto& m : imodes) known.insert(m.name);
    for (const auto& u : urows) known.insert(u.name);
    for (const auto& w : wanted) {
      if (!known.count(w)) {
        std::fprintf(stderr, "wake_bench: unknown row '%s' (see --list)\n", w.c_str());
        return 2;
      }
    }
  }
  auto selected = [&](const std::string& name, const char* part) {
    return wanted.empty() || wanted.count(name) || wanted.count(part);
  };
  std::vector<const PingPongMode*> psel;
  for (const auto& m : pmodes) {
    // Two pure spinners on one CPU hand over only when the scheduler preempts
    // one (milliseconds per round trip): only when asked for by name.
    if (same_cpu && m.name == "raw_spin" && !wanted.count(m.name)) continue;
    if (selected(m.name, "pingpong")) psel.push_back(&m);
  }
  std::vector<const IdleMode*> isel;
  for (const auto& m : imodes)
    if (selected(m.name, "idle")) isel.push_back(&m);
  std::vector<const UncontendedRow*> usel;
  for (const auto& u : urows)
    if (selected(u.name, "uncontended")) usel.push_back(&u);

  if (count_futex != "off") {
    g_futex_id = FutexCounter::tracepoint_id();
    if (g_futex_id) {
      FutexCounter probe(*g_futex_id);
      if (!probe.ok()) g_futex_id.reset();
    }
    if (!g_futex_id) {
      std::fprintf(stderr,
                   "wake_bench: futex counting: the syscalls:sys_enter_futex tracepoint is not usable here (needs "
                   "root and tracefs: mount -t tracefs nodev /sys/kernel/tracing); not counting\n");
      if (count_futex == "on") return 2;
    }
  }

  g_reply_delay_ns = static_cast<std::int64_t>(reply_delay_us * 1e3);
  const bool pinned = !no_pin && choose_pin_cpus();
  if (pinned && same_cpu) g_pin_cpu[1] = g_pin_cpu[0];
  const double clock_ns = clock_read_ns();
  std::printf(
      "wake_bench: %d runs (+%d warm-up) per row, interleaved; %ld CPUs online; futex counting %s; "
      "clock read %.1f ns; %s\n",
      runs, warmup, sysconf(_SC_NPROCESSORS_ONLN), g_futex_id ? "on" : "off", clock_ns,
      pinned ? ("ping-pong sides pinned: A on CPU " + std::to_string(g_pin_cpu[0]) + ", B on CPU " +
                std::to_string(g_pin_cpu[1]))
                   .c_str()
             : "ping-pong sides not pinned");
  std::fflush(stdout);

  // Part 1: ping-pong, interleaved.
  std::map<std::string, std::vector<PingPongSample>> psamples;
  const std::size_t M = psel.size();
  try {
    for (int round = -warmup; round < runs && M > 0; ++round) {
      for (std::size_t j = 0; j < M; ++j) {
        const PingPongMode& m = *psel[(j + static_cast<std::size_t>(round + warmup)) % M];
        PingPongSample s = run_pingpong(m, m.slow ? slow_trips : trips, warm_trips);
        if (!s.spread) ++g_unspread_runs;
        if (!s.quiet) ++g_busy_runs;
        if (round >= 0) psamples[m.name].push_back(s);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wake_bench: FAILED: %s\n", e.what());
    return 1;
  }
  struct PStats {
    Stats median, p99;
    double futex = -1, sleeps = 0, mean = 0;
  };
  std::map<std::string, PStats> pstats;
  for (const PingPongMode* m : psel) {
    std::vector<double> med, p99, fut, slp, mean;
    for (const auto& s : psamples[m->name]) {
      med.push_back(s.median_us);
      p99.push_back(s.p99_us);
      slp.push_back(s.sleeps_per_rt);
      mean.push_back(s.mean_us);
      if (s.futex_per_rt >= 0) fut.push_back(s.futex_per_rt);
    }
    PStats& ps = pstats[m->name];
    ps.median = summarize(med);
    ps.p99 = summarize(p99);
    ps.sleeps = summarize(slp).median;
    ps.mean = summarize(mean).median;
    if (!fut.empty()) ps.futex = summarize(fut).median;
  }
  if (M > 0) {
    std::printf("\nPing-pong: wake-up round trip between 2 processes (us; %" PRId64
                " timed round trips per run, %" PRId64 " for the always-sleeping rows, after %" PRId64 " untimed)\n",
                trips, slow_trips, warm_trips);
    std::printf("%-17s %-36s %8s %8s %8s %8s %8s %8s %9s%s\n", "row", "", "median", "(min", "max)", "p99", "(min",
                "max)", "sleeps/rt", g_futex_id ? " futex/rt" : "");
    for (const PingPongMode* m : psel) {
      const PStats& s = pstats[m->name];
      std::printf("%-17s %-36s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %9.3f", m->name.c_str(), m->label.c_str(),
                  s.median.median, s.median.min, s.median.max, s.p99.median, s.p99.min, s.p99.max, s.sleeps);
      if (g_futex_id) std::printf(" %8s", s.futex >= 0 ? fmt("%.3f", s.futex).c_str() : "-");
      std::printf("\n");
    }
    if (g_reply_delay_ns > 0)
      std::printf("(B busy-worked %.1f us before every answer: it is inside every round trip)\n", reply_delay_us);
    std::printf(
        "(median and p99 of each run's round trips, then the median over runs (min, max over runs);\n"
        " sleeps/rt: voluntary context switches of both processes per round trip — how often they slept;\n"
        " every round trip includes one clock read, %.0f ns)\n",
        clock_ns);
    std::fflush(stdout);
  }

  // Part 2: idle waiters.
  std::map<std::string, std::vector<IdleSample>> isamples;
#ifndef WAKE_BENCH_WITHOUT_IPCKIT
  if (!isel.empty()) {
    try {
      for (int r = 0; r < idle_runs; ++r) {
        auto got = run_idle(isel, idle_ms);
        for (auto& [k, v] : got) {
          isamples[k].push_back(v);
          if (g_verbose)
            std::fprintf(stderr, "  idle %-28s cpu %.3f%%  wall %.1f ms  sleeps %.0f  wake %.1f us\n", k.c_str(),
                         v.cpu_pct, v.wall_ms, v.sleeps, v.wake_us);
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "wake_bench: FAILED: %s\n", e.what());
      return 1;
    }
    std::printf(
        "\nIdle waiters: children blocked for %d ms (timed waits) or %d ms (woken by the parent), each "
        "measuring its own CPU time over the wait (%d runs, all waiters at once)\n",
        idle_ms, idle_ms + kIdleWakeAfterMs, idle_runs);
    std::printf("%-28s %-52s %9s %8s %8s %9s %9s\n", "row", "", "% core", "(min", "max)", "wake-ups", "woken in");
    for (const IdleMode* m : isel) {
      std::vector<double> cpu, sl, wk;
      for (const auto& s : isamples[m->name]) {
        cpu.push_back(s.cpu_pct);
        sl.push_back(s.sleeps);
        if (s.wake_us >= 0) wk.push_back(s.wake_us);
      }
      const Stats c = summarize(cpu);
      std::printf("%-28s %-52s %9.3f %8.3f %8.3f %9.0f %9s\n", m->name.c_str(), m->label.c_str(), c.median, c.min,
                  c.max, summarize(sl).median, wk.empty() ? "-" : fmt("%.0f us", summarize(wk).median).c_str());
    }
    std::printf(
        "(%% core = CPU time / wall time of the wait; wake-ups = voluntary context switches during it;\n"
        " woken in = from the parent's set()/release() to the wait's return)\n");
    std::fflush(stdout);
  }
#endif

  // Part 3: uncontended.
  std::map<std::string, Stats> ustats;
  std::map<std::string, double> ufutex;
  try {
    for (const UncontendedRow* u : usel) {
      std::vector<double> v, f;
      for (int r = -warmup; r < runs; ++r) {
        double fpo = -1;
        const double ns = u->run(uncontended_iterations, &fpo);
        if (r >= 0) {
          v.push_back(ns);
          if (fpo >= 0) f.push_back(fpo);
        }
      }
      ustats[u->name] = summarize(v);
      if (!f.empty()) ufutex[u->name] = summarize(f).max;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wake_bench: FAILED: %s\n", e.what());
    return 1;
  }
  if (!usel.empty()) {
    const double floor = ustats.count("atomic_pair") ? ustats["atomic_pair"].median : 0;
    std::printf("\nUncontended: one process, %" PRId64 " pairs per run (ns per pair)\n", uncontended_iterations);
    std::printf("%-26s %-40s %8s %8s %8s %9s%s\n", "row", "", "median", "min", "max", "vs floor",
                g_futex_id ? "  futex/pair" : "");
    for (const UncontendedRow* u : usel) {
      const Stats& s = ustats[u->name];
      std::printf("%-26s %-40s %8.2f %8.2f %8.2f %9s", u->name.c_str(), u->label.c_str(), s.median, s.min, s.max,
                  floor > 0 ? fmt("%.2fx", s.median / floor).c_str() : "-");
      if (g_futex_id) std::printf("  %10s", ufutex.count(u->name) ? fmt("%.6f", ufutex[u->name]).c_str() : "-");
      std::printf("\n");
    }
    std::printf(
        "(futex/pair: the most over the runs; a futex syscall costs well over 100 ns, so a pair in the\n"
        " tens of ns made none)\n");
  }

  std::printf("\n");
  if (g_busy_runs > 0)
    std::printf(
        "note: %d ping-pong run(s) started while other programs kept the CPUs busy (waited %d ms for "
        "quiet); expect noise\n",
        g_busy_runs, g_quiet_wait_ms);
  if (g_unspread_runs > 0)
    std::printf("note: %d run(s) were released before both children were seen on different CPUs\n", g_unspread_runs);
  for (const PingPongMode* m : psel) {
    const PStats& s = pstats[m->name];
    std::printf("RESULT wake_%s_median %.3f us min=%.3f max=%.3f", m->name.c_str(), s.median.median, s.median.min,
                s.median.max);
    if (s.futex >= 0) std::printf(" futex_per_rt=%.3f", s.futex);
    std::printf(" sleeps_per_rt=%.3f\n", s.sleeps);
    std::printf("RESULT wake_%s_p99 %.3f us min=%.3f max=%.3f\n", m->name.c_str(), s.p99.median, s.p99.min, s.p99.max);
  }
  for (const IdleMode* m : isel) {
    std::vector<double> cpu;
    for (const auto& s : isamples[m->name]) cpu.push_back(s.cpu_pct);
    const Stats c = summarize(cpu);
    // The worst run is the one that counts against a "< 2% of a core" target.
    std::printf("RESULT idle_%s_cpu %.4f pct_core min=%.4f median=%.4f\n", m->name.c_str(), c.max, c.min, c.median);
  }
  for (const UncontendedRow* u : usel) {
    const Stats& s = ustats[u->name];
    std::printf("RESULT uncontended_%s %.3f ns_per_op min=%.3f max=%.3f\n", u->name.c_str(), s.median, s.min, s.max);
    if (ufutex.count(u->name))
      std::printf("RESULT futex_per_op_%s %.6f futex_per_op\n", u->name.c_str(), ufutex[u->name]);
  }
  return 0;
}
