// barrier — worker processes start each phase together, and a killed worker
// breaks the barrier instead of hanging the others.
//
// Act 1: `--workers` processes run `--phases` phases; each phase begins with
// seg.barrier("phase", workers).wait(), which returns the caller's arrival
// index, and then takes each worker a different time. Every worker checks, as
// it starts a phase, that all the others finished the previous one: nobody
// gets through the barrier early.
//
// Act 2 (skip it with --no-kill): the workers start again on a fresh barrier.
// After phase 1 the last worker stalls instead of going on; once the others
// wait for it at phase 2, the main process SIGKILLs it. ipckit sees that a
// party of the previous phase is dead, so the survivors' wait() throws
// ipckit::BrokenBarrier within a few tens of milliseconds — with Python's or
// Boost's barrier they would wait forever.
//
// The claims it checks (it runs as a test): every phase of act 1 released all
// workers together, with the arrival indices 0..N-1 each given once; in act 2
// every survivor ended with BrokenBarrier before --break-timeout-ms. Exit code
// 0 when so, 1 otherwise.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <string>
#include <thread>
#include <vector>

#include "demo.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using demo::now_ns;
using demo::say;

namespace {

std::string worker_name(int k) { return "worker-" + std::to_string(k + 1); }

// Joins every process by `deadline`; kills and reaps the ones still running.
// Returns the names of those that had to be killed.
std::string join_or_kill(std::vector<ipckit::Process>& procs, Clock::time_point deadline) {
  std::string hung;
  for (auto& p : procs)
    if (!p.join(std::max(deadline - Clock::now(), Clock::duration::zero()))) hung += " " + p.name();
  for (auto& p : procs)
    if (p.is_alive()) {
      p.kill();
      p.join();
    }
  return hung;
}

// Act 1: phases that start together.
bool act_one(ipckit::Segment& seg, int workers, int phases) {
  auto barrier = seg.barrier("phase", static_cast<std::uint32_t>(workers));
  auto finished = seg.array<std::int32_t>("finished", workers);               // per worker: last phase done
  auto index_uses = seg.array<std::int32_t>("index-uses", workers * phases);  // per phase and index: times given
  auto early = seg.value<std::int32_t>("early");  // a phase started before all had finished the previous one

  say("act 1: %d workers, %d phases, each starting at barrier 'phase'\n", workers, phases);
  std::vector<ipckit::Process> procs;
  for (int k = 0; k < workers; ++k) {
    procs.emplace_back(
        [&, k] {
          for (int p = 1; p <= phases; ++p) {
            const std::uint32_t index = barrier.wait();
            for (int j = 0; j < workers; ++j)
              if (std::atomic_ref<std::int32_t>(finished[j]).load() < p - 1) {
                std::lock_guard g(early.get_lock());
                early.set(early.get() + 1);
              }
            if (index < static_cast<std::uint32_t>(workers))
              std::atomic_ref<std::int32_t>(index_uses[(p - 1) * workers + index]).fetch_add(1);
            say("  phase %d | %s starts (arrival index %u)\n", p, worker_name(k).c_str(), index);
            std::this_thread::sleep_for(std::chrono::milliseconds((k * 37 + p * 11) % 50));  // uneven work
            std::atomic_ref<std::int32_t>(finished[k]).store(p);
          }
        },
        ipckit::ProcessOptions{.name = worker_name(k)});
    procs.back().start();
  }
  const std::string hung = join_or_kill(procs, Clock::now() + 20s + 100ms * phases);
  if (!hung.empty()) {
    std::printf("FAILED: act 1 never finished; still waiting:%s\n", hung.c_str());
    return false;
  }
  bool ok = true;
  for (auto& p : procs)
    if (p.exitcode() != 0) {
      std::printf("FAILED: %s ended with code %d\n", p.name().c_str(), p.exitcode().value_or(-1));
      ok = false;
    }
  for (int i = 0; i < workers * phases; ++i)
    if (index_uses[i] != 1) {
      std::printf("FAILED: phase %d gave arrival index %d %d times\n", i / workers + 1, i % workers, index_uses[i]);
      ok = false;
    }
  if (early.get() != 0) {
    std::printf("FAILED: %d times a worker started a phase before the others had finished the last one\n", early.get());
    ok = false;
  }
  if (ok)
    std::printf("act 1: every phase started with all %d workers, arrival indices 0..%d each given once\n", workers,
                workers - 1);
  return ok;
}

// Act 2: a worker killed between phases breaks the barrier for the others.
bool act_two(ipckit::Segment& seg, int workers, int break_timeout_ms) {
  auto barrier = seg.barrier("act2", static_cast<std::uint32_t>(workers));
  auto victim_passed = seg.event("victim-passed");                 // the victim is through phase 1
  auto kill_ns = seg.value<std::int64_t>("kill-ns");               // when the main process killed it
  auto outcome = seg.array<std::int32_t>("outcome", workers);      // 1: BrokenBarrier, 2: passed phase 2
  auto broken_us = seg.array<std::int64_t>("broken-us", workers);  // BrokenBarrier this long after the kill
  const int victim = workers - 1;

  say("\nact 2: %d workers on a fresh barrier 'act2'; %s will be killed after phase 1\n", workers,
      worker_name(victim).c_str());
  std::vector<ipckit::Process> procs;
  for (int k = 0; k < workers; ++k) {
    procs.emplace_back(
        [&, k] {
          const std::string me = worker_name(k);
          try {
            const std::uint32_t index = barrier.wait();
            say("  phase 1 | %s starts (arrival index %u)\n", me.c_str(), index);
            if (k == victim) {
              say("  %s stalls before phase 2\n", me.c_str());
              victim_passed.set();
              for (;;) ::pause();  // until the SIGKILL
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5 + 7 * k));
            say("  %s waits at phase 2\n", me.c_str());
            barrier.wait();
            outcome[k] = 2;
            say("  phase 2 | %s starts -- it should not have\n", me.c_str());
          } catch (const ipckit::BrokenBarrier& e) {
            const std::int64_t kill_at = kill_ns.get();
            broken_us[k] = kill_at ? (now_ns() - kill_at) / 1000 : -1;
            outcome[k] = 1;
            say("  %s got ipckit::BrokenBarrier: %s\n", me.c_str(), e.what());
          }
        },
        ipckit::ProcessOptions{.name = worker_name(k)});
    procs.back().start();
  }

  // Kill the victim once it is through phase 1 and the others wait for it at phase 2.
  const bool passed = victim_passed.wait(10s);
  const auto settle = Clock::now() + 5s;
  while (passed && barrier.n_waiting() < static_cast<std::uint32_t>(workers - 1) && Clock::now() < settle)
    std::this_thread::sleep_for(1ms);
  const unsigned waiting = barrier.n_waiting();
  kill_ns.set(now_ns());
  procs[victim].kill();
  say("  main: %u workers wait at phase 2; SIGKILL %s (pid %d)\n", waiting, worker_name(victim).c_str(),
      procs[victim].pid());
  if (!passed) std::printf("  (the victim never reported passing phase 1)\n");

  const std::string hung = join_or_kill(procs, Clock::now() + std::chrono::milliseconds(break_timeout_ms));
  bool ok = passed;
  for (int k = 0; k < workers; ++k) {
    if (k == victim) {
      if (procs[k].exitcode() != -SIGKILL) {
        std::printf("FAILED: %s ended with %d, not by SIGKILL\n", worker_name(k).c_str(),
                    procs[k].exitcode().value_or(0));
        ok = false;
      }
      continue;
    }
    if (outcome[k] == 1 && procs[k].exitcode() == 0) {
      std::printf("  %s: BrokenBarrier %.1f ms after the kill\n", worker_name(k).c_str(), broken_us[k] / 1000.0);
    } else {
      std::printf("FAILED: %s %s\n", worker_name(k).c_str(),
                  outcome[k] == 2 ? "passed a barrier that was missing a party"
                  : hung.find(worker_name(k)) != std::string::npos
                      ? ("was still waiting after " + std::to_string(break_timeout_ms) + " ms").c_str()
                      : "ended without BrokenBarrier");
      ok = false;
    }
  }
  std::printf("  barrier 'act2' broken: %s\n", barrier.broken() ? "yes" : "no");
  if (!barrier.broken()) ok = false;
  if (ok)
    std::printf("act 2: all %d survivors got BrokenBarrier instead of waiting forever for the dead worker\n",
                workers - 1);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Worker processes start phases together at an ipckit::Barrier; a killed worker breaks it"};
  int workers = 4, phases = 3, break_timeout_ms = 5000;
  bool no_kill = false;
  app.add_option("-w,--workers", workers, "worker processes")->check(CLI::Range(2, 256));
  app.add_option("-p,--phases", phases, "phases in act 1")->check(CLI::Range(1, 1000));
  app.add_flag("--no-kill", no_kill, "skip act 2 (a worker killed between phases)");
  app.add_option("--break-timeout-ms", break_timeout_ms, "how long the survivors may take to see the barrier broken")
      ->check(CLI::Range(10, 600000));
  CLI11_PARSE(app, argc, argv);

  const std::string name = "demo-barrier-" + std::to_string(::getpid());
  try {
    auto seg = ipckit::Segment::create(name, 1 << 20);
    ipckit::SegmentRemover remove(name);
    bool ok = act_one(seg, workers, phases);
    if (!no_kill) ok = act_two(seg, workers, break_timeout_ms) && ok;
    return ok ? 0 : 1;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "barrier: %s\n", e.what());
    return 1;
  }
}
