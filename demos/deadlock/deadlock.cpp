// deadlock — the seed's two-lock example, between processes.
//
// Each worker runs func1 (A then B) and then func2 (B, a pause, then A). One
// worker sits in func2 holding B while another, in func1, holds A and wants
// B: a cycle, and neither ever moves again. This demo shows the cycle and the
// seed's remedies:
//   (default)        the segment has deadlock detection on: the worker that
//                    would close the cycle gets DeadlockDetected naming every
//                    process and lock, backs off, and the others finish
//   --no-detect      workers block forever; a watchdog names who holds what
//                    and the cycle (while it waits, `ipckit ps SEG` and
//                    `ipckit doctor SEG` show the same from a shell)
//   --timeout MS     each acquire is timed; the Timeout names the lock and the
//                    pid holding it, the worker backs off and the other finishes
//   --fix rlock      mutexA = mutexB = one RLock: re-entry, no cycle
//   --fix ordered    func2 takes A before B as func1 does: no cycle
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "demo.hpp"

using demo::say;

namespace {

struct Config {
  int hold_ms = 200;
  int timeout_ms = 0;  // 0: wait forever, as the seed does
  bool ordered = false;
};

template <class L>
std::unique_lock<L> take(L& lock, const Config& cfg) {
  if (cfg.timeout_ms > 0) {
    lock.lock(std::chrono::milliseconds(cfg.timeout_ms));  // throws ipckit::Timeout
    return std::unique_lock<L>(lock, std::adopt_lock);
  }
  return std::unique_lock<L>(lock);
}

template <class L>
void func1(L& a, L& b, const std::string& me, const Config& cfg) {
  auto ga = take(a, cfg);
  say("%s acquired lock A\n", me.c_str());
  auto gb = take(b, cfg);
  say("%s acquired lock B\n", me.c_str());
}

template <class L>
void func2(L& a, L& b, const std::string& me, const Config& cfg) {
  if (cfg.ordered) {  // the fix: every path takes A before B
    auto ga = take(a, cfg);
    say("%s acquired lock A\n", me.c_str());
    auto gb = take(b, cfg);
    say("%s acquired lock B\n", me.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(cfg.hold_ms));
    return;
  }
  auto gb = take(b, cfg);
  say("%s acquired lock B\n", me.c_str());
  std::this_thread::sleep_for(std::chrono::milliseconds(cfg.hold_ms));
  auto ga = take(a, cfg);
  say("%s acquired lock A\n", me.c_str());
}

// Exit code 0: finished; 2: gave up on a timed acquire or a detected
// deadlock (the message says why).
template <class L>
int run_worker(L& a, L& b, const std::string& me, const Config& cfg) {
  try {
    func1(a, b, me, cfg);
    func2(a, b, me, cfg);
    say("%s finished\n", me.c_str());
    return 0;
  } catch (const ipckit::Timeout& e) {
    say("%s gave up: %s\n", me.c_str(), e.what());
    return 2;
  } catch (const ipckit::DeadlockDetected& e) {
    say("%s gave up: %s\n", me.c_str(), e.what());
    return 2;
  }
}

std::string describe(const std::optional<ipckit::LockHolder>& h) {
  if (!h) return "free";
  return "held by pid " + std::to_string(h->pid) + (h->alive ? "" : " (dead)");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Two workers, two locks, opposite orders: a deadlock across processes, diagnosed and fixed"};
  Config cfg;
  int workers = 2, watchdog_ms = 3000;
  std::string fix;
  bool no_detect = false;
  app.add_option("-w,--workers", workers, "worker processes (the seed uses 5)")->check(CLI::Range(2, 32));
  app.add_option("--hold-ms", cfg.hold_ms, "pause in func2 while holding a lock")->check(CLI::Range(0, 60000));
  app.add_option("--timeout", cfg.timeout_ms, "time out each acquire after MS and name the holder")
      ->check(CLI::Range(1, 600000));
  app.add_option("--fix", fix, "apply a remedy: rlock (one re-entrant lock) or ordered (A before B everywhere)")
      ->check(CLI::IsMember({"rlock", "ordered"}));
  app.add_option("--watchdog-ms", watchdog_ms, "how long to wait before calling it a deadlock")
      ->check(CLI::Range(100, 600000));
  app.add_flag("--no-detect", no_detect, "create the segment without deadlock detection: the cycle hangs");
  CLI11_PARSE(app, argc, argv);
  cfg.ordered = fix == "ordered";

  const std::string name = "demo-deadlock-" + std::to_string(::getpid());
  try {
    ipckit::SegmentOptions options;
    options.deadlock_detection = !no_detect;
    auto seg = ipckit::Segment::create(name, 1 << 20, options);
    ipckit::SegmentRemover remove(name);
    auto a = seg.lock("A");
    auto b = seg.lock("B");
    auto r = seg.rlock("AB");  // mutexA = mutexB = RLock()

    std::vector<ipckit::Process> procs;
    for (int w = 1; w <= workers; ++w) {
      const std::string me = "worker-" + std::to_string(w);
      procs.emplace_back(
          [&, me] {
            const int code = fix == "rlock" ? run_worker(r, r, me, cfg) : run_worker(a, b, me, cfg);
            std::fflush(stdout);
            if (code != 0) ::_exit(code);
          },
          ipckit::ProcessOptions{.name = me});
      procs.back().start();
    }

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(watchdog_ms);
    bool stuck = false;
    for (auto& p : procs) {
      using std::chrono::steady_clock;
      stuck |= !p.join(std::max(deadline - steady_clock::now(), steady_clock::duration::zero()));
    }

    if (stuck) {
      std::printf("\nDEADLOCK: no progress for %d ms.\n  lock 'A' is %s\n  lock 'B' is %s\n", watchdog_ms,
                  describe(a.holder()).c_str(), describe(b.holder()).c_str());
      for (auto& p : procs)
        if (p.is_alive()) std::printf("  %s (pid %d) is blocked\n", p.name().c_str(), p.pid());
      for (const auto& cycle : seg.deadlocks()) std::printf("  the cycle: %s\n", cycle.describe().c_str());
      std::printf(
          "Each holds the lock the other wants. Try --timeout 500, --fix rlock, --fix ordered, or leave detection "
          "on.\n");
      for (auto& p : procs) p.kill();
      for (auto& p : procs) p.join();
      return fix.empty() ? 0 : 1;  // a fixed run must never get here
    }
    int gave_up = 0;
    for (auto& p : procs) gave_up += p.exitcode() == 2;
    if (gave_up > 0)
      std::printf("\n%d worker(s) gave up and backed off; the deadlock was diagnosed, not suffered.\n", gave_up);
    else
      std::printf("\nall %d workers finished%s\n", workers, fix.empty() ? "" : (" (fix: " + fix + ")").c_str());
    for (auto& p : procs)
      if (p.exitcode() != 0 && p.exitcode() != 2) return 1;
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "deadlock: %s\n", e.what());
    return 1;
  }
}
