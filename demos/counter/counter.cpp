// counter — N worker processes increment one shared counter M times.
//
// The seed's first lesson: `number += 1` from many workers loses updates
// unless a lock guards the read-modify-write. With the lock the count is
// exact; `--no-lock` does a plain read, then a write, and shows the loss.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app{"N processes increment a shared counter under an ipckit Lock (or race without it)"};
  int workers = 8;
  long increments = 1000000;
  bool no_lock = false;
  std::string name = "demo-counter-" + std::to_string(::getpid());
  app.add_option("-w,--workers", workers, "worker processes")->check(CLI::Range(1, 512));
  app.add_option("-n,--increments", increments, "increments per worker")->check(CLI::Range(1L, 100'000'000L));
  app.add_flag("--no-lock", no_lock, "race: plain read then write, no lock");
  app.add_option("--segment", name, "segment name (removed at the end)");
  CLI11_PARSE(app, argc, argv);

  try {
    auto seg = ipckit::Segment::create(name, 1 << 20);
    ipckit::SegmentRemover remove(name);
    auto counter = seg.value<std::int64_t>("counter");
    auto lock = seg.lock("counter-lock");
    // A start gate: forking takes longer than the work, so without it each
    // worker would finish before the next starts and nothing would race.
    auto ready = seg.value<std::int32_t>("ready");
    auto go = seg.value<std::int32_t>("go");

    std::vector<ipckit::Process> procs;
    for (int w = 0; w < workers; ++w) {
      procs.emplace_back(
          [&] {
            {
              std::lock_guard g(ready.get_lock());
              ready.set(ready.get() + 1);
            }
            while (go.get() == 0) std::this_thread::yield();
            for (long i = 0; i < increments; ++i) {
              if (no_lock) {
                counter.set(counter.get() + 1);  // two atomic steps: another worker may come between
              } else {
                std::lock_guard g(lock);
                counter.set(counter.get() + 1);
              }
            }
          },
          ipckit::ProcessOptions{.name = "worker-" + std::to_string(w + 1)});
      procs.back().start();
    }
    while (ready.get() < workers) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go.set(1);
    bool all_ok = true;
    for (auto& p : procs) {
      p.join();
      all_ok = all_ok && p.exitcode() == 0;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const long expected = workers * increments;
    const long actual = counter.get();
    std::printf("%d workers x %ld increments %s\n", workers, increments,
                no_lock ? "WITHOUT a lock" : "under ipckit::Lock");
    std::printf("expected: %ld\nactual:   %ld\n", expected, actual);
    if (actual == expected) {
      std::printf("exact: no update was lost (%.2f M increments/s)\n", expected / secs / 1e6);
    } else {
      std::printf("lost %ld updates (%.1f%%): workers overwrote each other's writes\n", expected - actual,
                  100.0 * (expected - actual) / expected);
    }
    if (!all_ok) {
      std::fprintf(stderr, "counter: a worker failed\n");
      return 1;
    }
    return (no_lock || actual == expected) ? 0 : 1;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "counter: %s\n", e.what());
    return 1;
  }
}
