// condition — a producer and consumers hand items over through a ring buffer
// guarded by Conditions, each in its own process.
//
// The seed's `cond = threading.Condition(lock)`, used the way Python's
// queue.Queue uses it: one Lock and two Conditions bound to it, "not-empty"
// and "not-full". The ring is a shared Array of `--capacity` slots with head,
// tail and count in shared Values, all changed only with the lock held.
//
//   producer:  wait(not_full, count < capacity); put; not_empty.notify()
//   consumer:  wait(not_empty, count > 0 || done); take; not_full.notify()
//
// When the producer has put every item it raises "done" and calls
// not_empty.notify_all(), so every consumer drains the ring and ends.
//
// The claim it checks (it runs as a test): every item 0..N-1 was consumed
// exactly once (a per-item "seen" counter in a shared Array), each consumer
// got its items in the order they were produced, and every process ended.
// Exit code 0 when so, 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"A producer and consumers in separate processes, handing items over through a Condition-guarded ring"};
  int consumers = 3, items = 1000, capacity = 8, work_us = 100;
  app.add_option("-c,--consumers", consumers, "consumer processes")->check(CLI::Range(1, 64));
  app.add_option("-n,--items", items, "items to hand over")->check(CLI::Range(1, 10'000'000));
  app.add_option("--capacity", capacity, "slots in the ring buffer")->check(CLI::Range(1, 4096));
  app.add_option("--work-us", work_us, "time a consumer spends on each item, outside the lock")
      ->check(CLI::Range(0, 1'000'000));
  CLI11_PARSE(app, argc, argv);

  const std::string name = "demo-condition-" + std::to_string(::getpid());
  try {
    auto seg = ipckit::Segment::create(name, (1 << 20) + std::size_t(items) * 4);
    ipckit::SegmentRemover remove(name);
    auto lock = seg.lock("ring-lock");
    auto not_empty = seg.condition("not-empty", lock);
    auto not_full = seg.condition("not-full", lock);
    auto ring = seg.array<std::int32_t>("ring", capacity);
    auto head = seg.value<std::int32_t>("head");                      // next slot to take
    auto tail = seg.value<std::int32_t>("tail");                      // next slot to fill
    auto count = seg.value<std::int32_t>("count");                    // items in the ring
    auto done = seg.value<std::int32_t>("done");                      // the producer has finished
    auto seen = seg.array<std::int32_t>("seen", items);               // per item: times consumed
    auto got = seg.array<std::int64_t>("got", consumers);             // per consumer: items taken
    auto waited = seg.array<std::int64_t>("waited", consumers);       // per consumer: waits for an item
    auto disorder = seg.array<std::int64_t>("disorder", consumers);   // per consumer: items after a later one
    auto producer_waits = seg.value<std::int64_t>("producer-waits");  // waits for a free slot

    ipckit::Process producer(
        [&] {
          std::int64_t waits = 0;
          for (int item = 0; item < items; ++item) {
            std::unique_lock g(lock);
            if (count.get() == capacity) ++waits;
            not_full.wait([&] { return count.get() < capacity; });
            ring[tail.get()] = item;
            tail.set((tail.get() + 1) % capacity);
            count.set(count.get() + 1);
            not_empty.notify();
          }
          {
            std::lock_guard g(lock);
            done.set(1);
            not_empty.notify_all();
          }
          producer_waits.set(waits);
        },
        ipckit::ProcessOptions{.name = "producer"});

    std::vector<ipckit::Process> procs;
    for (int c = 0; c < consumers; ++c) {
      procs.emplace_back(
          [&, c] {
            std::int64_t mine = 0, waits = 0, late = 0;
            int last = -1;
            for (;;) {
              int item;
              {
                std::unique_lock g(lock);
                if (count.get() == 0 && done.get() == 0) ++waits;
                not_empty.wait([&] { return count.get() > 0 || done.get() != 0; });
                if (count.get() == 0) break;  // done, and the ring is drained
                item = ring[head.get()];
                head.set((head.get() + 1) % capacity);
                count.set(count.get() - 1);
                not_full.notify();
              }
              // One producer and a FIFO ring: each consumer sees rising item numbers.
              if (item <= last) ++late;
              last = item;
              if (item >= 0 && item < items) std::atomic_ref<std::int32_t>(seen[item]).fetch_add(1);
              ++mine;
              if (work_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(work_us));
            }
            got[c] = mine;
            waited[c] = waits;
            disorder[c] = late;
          },
          ipckit::ProcessOptions{.name = "consumer-" + std::to_string(c + 1)});
    }
    for (auto& p : procs) p.start();
    const auto t0 = Clock::now();
    producer.start();

    const auto deadline = t0 + std::chrono::microseconds(std::int64_t(work_us) * items) + 30s;
    auto left = [&] { return std::max(deadline - Clock::now(), Clock::duration::zero()); };
    bool hung = !producer.join(left());
    for (auto& p : procs) hung |= !p.join(left());
    if (hung) {
      std::printf("FAILED: still running at the deadline (ring holds %d, done=%d):", count.get(), done.get());
      if (producer.is_alive()) std::printf(" producer");
      for (auto& p : procs)
        if (p.is_alive()) std::printf(" %s", p.name().c_str());
      std::printf("\n");
      producer.kill();
      for (auto& p : procs) p.kill();
      producer.join();
      for (auto& p : procs) p.join();
      return 1;
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();

    bool ok = producer.exitcode() == 0;
    std::int64_t total = 0, late = 0;
    std::printf("producer put %d items through a ring of %d slots; it waited for a free slot %lld times\n", items,
                capacity, static_cast<long long>(producer_waits.get()));
    for (int c = 0; c < consumers; ++c) {
      ok = ok && procs[c].exitcode() == 0;
      total += got[c];
      late += disorder[c];
      std::printf("consumer-%d got %5lld items, waited for one %lld times\n", c + 1, static_cast<long long>(got[c]),
                  static_cast<long long>(waited[c]));
    }
    int missing = 0, doubled = 0;
    for (int i = 0; i < items; ++i) {
      missing += seen[i] == 0;
      doubled += seen[i] > 1;
    }
    std::printf("%lld items handed over in %.3f s\n", static_cast<long long>(total), secs);
    const bool exact = missing == 0 && doubled == 0 && total == items;
    if (!ok) std::printf("FAILED: a process did not end cleanly\n");
    if (!exact)
      std::printf("FAILED: %d items never consumed, %d consumed more than once (%lld taken for %d produced)\n", missing,
                  doubled, static_cast<long long>(total), items);
    if (late) std::printf("FAILED: %lld items reached a consumer after a later one\n", static_cast<long long>(late));
    if (!ok || !exact || late) return 1;
    std::printf("every item 0..%d consumed exactly once, in order per consumer\n", items - 1);
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "condition: %s\n", e.what());
    return 1;
  }
}
