// semaphore — at most N of many worker processes inside a section at once.
//
// The seed's `semaphore = threading.Semaphore(3)` guarding a resource, with
// processes: `--workers` workers (10) each take a unit of seg.semaphore("slots",
// `--limit`) through an ipckit::SemaphoreGuard, spend `--hold-ms` inside, and
// give it back when the guard goes out of scope. Inside, each worker bumps a
// shared "inside" counter under a Lock and records the largest value it ever
// reached, so the demo measures the concurrency the semaphore allowed.
//
// The claim it checks (it runs as a test): the maximum concurrency observed
// is exactly the limit — never above it, and reached (the workers all start
// together and hold long enough that the limit is always hit) — and every
// unit is back at the end. `--no-semaphore` skips the guard and shows every
// worker inside at once (that run exits 0: it shows the problem, as
// `counter --no-lock` does).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "demo.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using demo::now_ns;
using demo::say;

int main(int argc, char** argv) {
  CLI::App app{"Many processes, at most N inside: an ipckit::Semaphore guarding a section"};
  int workers = 10, limit = 3, hold_ms = 100, rounds = 1;
  bool no_semaphore = false;
  app.add_option("-w,--workers", workers, "worker processes")->check(CLI::Range(1, 256));
  app.add_option("-l,--limit", limit, "units of the semaphore: how many may be inside at once")
      ->check(CLI::Range(1, 256));
  app.add_option("--hold-ms", hold_ms, "time each worker spends inside")->check(CLI::Range(1, 10000));
  app.add_option("--rounds", rounds, "times each worker enters")->check(CLI::Range(1, 1000));
  app.add_flag("--no-semaphore", no_semaphore, "no guard: show how many get in without it");
  CLI11_PARSE(app, argc, argv);

  const std::string name = "demo-semaphore-" + std::to_string(::getpid());
  try {
    auto seg = ipckit::Segment::create(name, 1 << 20);
    ipckit::SegmentRemover remove(name);
    auto slots = seg.semaphore("slots", static_cast<std::uint32_t>(limit));
    auto books = seg.lock("books");                           // guards the four values below
    auto inside = seg.value<std::int32_t>("inside");          // workers inside now
    auto max_inside = seg.value<std::int32_t>("max-inside");  // the most ever inside at once
    auto reached_ns = seg.value<std::int64_t>("reached-ns");  // when `limit` were first inside
    auto entries = seg.value<std::int32_t>("entries");        // entries completed
    auto ready = seg.value<std::int32_t>("ready");
    auto go = seg.event("go");  // a start gate, so that every worker competes for a slot at once
    auto start_ns = seg.value<std::int64_t>("start-ns");

    std::vector<ipckit::Process> procs;
    for (int w = 1; w <= workers; ++w) {
      const std::string me = "worker-" + std::to_string(w);
      procs.emplace_back(
          [&, me] {
            {
              std::lock_guard g(ready.get_lock());
              ready.set(ready.get() + 1);
            }
            go.wait();
            for (int r = 0; r < rounds; ++r) {
              const auto asked = Clock::now();
              std::optional<ipckit::SemaphoreGuard> guard;
              if (!no_semaphore) guard.emplace(slots);  // acquire; released at the end of this round
              const auto waited_ms =
                  std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - asked).count();
              {
                std::lock_guard g(books);
                const int n = inside.get() + 1;
                inside.set(n);
                if (n > max_inside.get()) max_inside.set(n);
                if (n == limit && reached_ns.get() == 0) reached_ns.set(now_ns());
                say("%-9s in   (%d inside)%s\n", me.c_str(), n,
                    waited_ms > 0 ? (" after waiting " + std::to_string(waited_ms) + " ms for a slot").c_str() : "");
              }
              std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));  // use the resource
              {
                std::lock_guard g(books);
                inside.set(inside.get() - 1);
                entries.set(entries.get() + 1);
                say("%-9s out  (%d inside)\n", me.c_str(), inside.get());
              }
            }
          },
          ipckit::ProcessOptions{.name = me});
      procs.back().start();
    }

    // Open the gate once every worker is waiting at it.
    const auto gate_deadline = Clock::now() + 10s;
    while (ready.get() < workers && Clock::now() < gate_deadline) std::this_thread::sleep_for(1ms);
    start_ns.set(now_ns());
    const auto t0 = Clock::now();
    go.set();

    const auto deadline = t0 + std::chrono::milliseconds(hold_ms) * workers * rounds + 20s;
    bool hung = false, failed = false;
    for (auto& p : procs) {
      hung |= !p.join(std::max(deadline - Clock::now(), Clock::duration::zero()));
      failed |= p.exitcode() != 0;
    }
    if (hung) {
      std::printf("FAILED: workers still running after the deadline (%d inside, semaphore value %u)\n", inside.get(),
                  slots.value());
      for (auto& p : procs) p.kill();
      for (auto& p : procs) p.join();
      return 1;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

    const int observed = max_inside.get();
    std::printf("\n%d workers x %d round(s), %d ms inside each, %s\n", workers, rounds, hold_ms,
                no_semaphore ? "WITHOUT the semaphore" : ("semaphore of " + std::to_string(limit)).c_str());
    std::printf("maximum concurrency observed: %d", observed);
    if (!no_semaphore) std::printf(" (limit %d)", limit);
    std::printf("\n");
    if (!no_semaphore && reached_ns.get() != 0)
      std::printf("the limit was first reached %.1f ms after the start\n", (reached_ns.get() - start_ns.get()) / 1e6);
    const int at_once = no_semaphore ? workers : std::min(limit, workers);
    const int waves = (workers * rounds + at_once - 1) / at_once;
    std::printf("entries: %d in %.2f s (%d at a time: %d waves of %d ms = %.2f s)\n", entries.get(), secs, at_once,
                waves, hold_ms, waves * hold_ms / 1000.0);

    if (failed || entries.get() != workers * rounds) {
      std::printf("FAILED: a worker failed or an entry is missing\n");
      return 1;
    }
    if (no_semaphore) return 0;
    if (observed > limit) {
      std::printf("FAILED: %d workers were inside at once, above the limit of %d\n", observed, limit);
      return 1;
    }
    if (observed < at_once) {
      std::printf("FAILED: never more than %d inside; the semaphore should have let %d in\n", observed, at_once);
      return 1;
    }
    if (slots.value() != static_cast<std::uint32_t>(limit)) {
      std::printf("FAILED: the semaphore holds %u units at the end, not %d\n", slots.value(), limit);
      return 1;
    }
    std::printf("never more than %d inside, and all %d units back at the end\n", limit, limit);
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "semaphore: %s\n", e.what());
    return 1;
  }
}
