// priority_queue — lowest priority first, between processes.
//
// The seed's priority example,
//
//   q = queue.PriorityQueue()
//   q.put((3, "C")); q.put((1, "A")); q.put((2, "B"))
//   q.get()  # (1, "A"), then (2, "B"), then (3, "C")
//
// with an ipckit::PriorityQueue and processes instead of threads: a producer
// process puts (3, "C"), (1, "A"), (2, "B"); a consumer process gets them
// back as A, B, C.
//
// Then a bigger round: `--producers` processes each put `--tasks` chores, a
// cereal-serialized struct, each with the chore's priority (1 = most urgent).
// The consumer process waits until they have all put theirs (an Event), then
// gets every chore and prints it: the most urgent first, and chores of equal
// priority in the order they were put. The main process has closed the queue
// once the producers finished, so the consumer drains what is queued and its
// next get() throws ipckit::Closed, which ends it.
//
// The claim it checks (it runs as a test): the seed's items came out as A, B,
// C; every chore was got exactly once (a per-chore "seen" counter in a shared
// Array), the priorities the consumer saw never went down, each producer's
// chores of equal priority came in put order, the consumer ended through
// Closed, and every process ended cleanly before a deadline. Exit code 0
// when so, 1 otherwise.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cereal/types/string.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ipckit/ipckit.hpp>
#include <limits>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct Chore {
  std::int32_t producer = 0;  // 0-based
  std::int32_t seq = 0;       // 0-based, per producer
  std::string what;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(producer, seq, what);
  }
};

struct Kind {
  std::int64_t priority;
  const char* what;
};
constexpr Kind kKinds[] = {
    {1, "page the on-call engineer"}, {4, "tidy the wiki"},    {2, "fix the red build"}, {3, "review a patch"},
    {1, "restore the database"},      {5, "water the plants"}, {2, "answer a customer"}, {3, "update the docs"},
};
constexpr int kKindCount = static_cast<int>(sizeof kKinds / sizeof kKinds[0]);

const Kind& kind_of(int producer, int seq) { return kKinds[(producer * 3 + seq * 5) % kKindCount]; }

// Act 1: the seed's three items, put by one process and got by another.
bool seed_example(ipckit::Segment& seg, std::chrono::seconds timeout) {
  auto q = seg.priority_queue<std::string>("seed", {.max_items = 8, .max_message = 64});
  auto order = seg.array<char>("seed_order", 4);
  std::printf("the seed: a producer process puts (3, \"C\"), (1, \"A\"), (2, \"B\")\n");
  ipckit::Process producer(
      [&] {
        q.put(3, "C");
        q.put(1, "A");
        q.put(2, "B");
      },
      {.name = "seed-producer", .daemon = true});
  producer.start();
  if (!producer.join(timeout) || producer.exitcode() != 0) {
    producer.kill();
    std::printf("FAILED: the seed's producer did not end cleanly\n");
    return false;
  }
  ipckit::Process consumer(
      [&] {
        for (int i = 0; i < 3; ++i) {
          const auto [priority, item] = q.get_with_priority(5s);
          std::printf("  consumer got (%lld, \"%s\")\n", static_cast<long long>(priority), item.c_str());
          order[static_cast<std::size_t>(i)] = item.empty() ? '?' : item[0];
        }
      },
      {.name = "seed-consumer", .daemon = true});
  consumer.start();
  if (!consumer.join(timeout) || consumer.exitcode() != 0) {
    consumer.kill();
    std::printf("FAILED: the seed's consumer did not end cleanly\n");
    return false;
  }
  const std::string got{order[0], order[1], order[2]};
  if (got != "ABC") {
    std::printf("FAILED: the seed's items came out as %s, not ABC\n\n", got.c_str());
    return false;
  }
  std::printf("  -> A, B, C: lowest priority first\n\n");
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Producer processes put prioritised chores into an ipckit PriorityQueue; a consumer process gets them "
      "most urgent first"};
  int producers = 3, tasks = 8, show = 1000, timeout_s = 30;
  app.add_option("-p,--producers", producers, "producer processes")->check(CLI::Range(1, 64));
  app.add_option("-n,--tasks", tasks, "chores each producer puts")->check(CLI::Range(1, 10'000));
  app.add_option("--show", show, "chores the consumer prints (the rest are counted)")->check(CLI::Range(0, 1'000'000));
  app.add_option("--timeout-s", timeout_s, "give up (and fail) if the processes have not ended by then")
      ->check(CLI::Range(1, 3600));
  CLI11_PARSE(app, argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines from each process

  const std::string name = "demo-priority-queue-" + std::to_string(::getpid());
  const int total = producers * tasks;
  const ipckit::QueueOptions options{.max_items = static_cast<std::size_t>(total), .max_message = 128};
  try {
    auto seg = ipckit::Segment::create(name, (1 << 20) + std::size_t(total) * 200);
    ipckit::SegmentRemover remove(name);
    const auto timeout = std::chrono::seconds(timeout_s);

    if (!seed_example(seg, timeout)) return 1;

    auto q = seg.priority_queue<Chore>("chores", options);
    auto go = seg.event("go");
    auto seen = seg.array<std::int32_t>("seen", static_cast<std::size_t>(total));  // per chore: times got
    auto got = seg.value<std::int64_t>("got");
    auto descents = seg.value<std::int64_t>("descents");  // a priority lower than the one before
    auto reorders = seg.value<std::int64_t>("reorders");  // equal priority, same producer, out of put order
    auto garbled = seg.value<std::int64_t>("garbled");    // not what its producer put
    auto closed = seg.value<std::int32_t>("closed");      // the consumer ended through Closed

    std::printf("%d producer processes put %d chores each; the consumer waits until all are in\n", producers, tasks);
    ipckit::Process consumer(
        [&] {
          if (!go.wait(std::chrono::seconds(timeout_s))) return;
          std::int64_t mine = 0, down = 0, late = 0, wrong = 0;
          std::int64_t previous = std::numeric_limits<std::int64_t>::min();
          std::vector<std::vector<int>> last(static_cast<std::size_t>(producers), std::vector<int>(6, -1));
          for (;;) {
            std::pair<std::int64_t, Chore> item;
            try {
              item = q.get_with_priority();  // Closed once closed and drained
            } catch (const ipckit::Closed&) {
              closed.set(1);
              break;
            }
            const auto& [priority, c] = item;
            ++mine;
            if (c.producer < 0 || c.producer >= producers || c.seq < 0 || c.seq >= tasks ||
                kind_of(c.producer, c.seq).priority != priority || c.what != kind_of(c.producer, c.seq).what) {
              ++wrong;
              continue;
            }
            if (priority < previous) ++down;
            previous = priority;
            int& l = last[static_cast<std::size_t>(c.producer)][static_cast<std::size_t>(priority)];
            if (c.seq <= l) ++late;
            l = c.seq;
            std::atomic_ref<std::int32_t>(seen[static_cast<std::size_t>(c.producer * tasks + c.seq)]).fetch_add(1);
            if (mine <= show)
              std::printf("  consumer got priority %lld: %-26s (producer-%d, chore %d)\n",
                          static_cast<long long>(priority), c.what.c_str(), c.producer + 1, c.seq + 1);
          }
          got.set(mine);
          descents.set(down);
          reorders.set(late);
          garbled.set(wrong);
        },
        {.name = "consumer", .daemon = true});
    consumer.start();

    std::vector<ipckit::Process> prods;
    for (int p = 0; p < producers; ++p) {
      prods.emplace_back(
          [&, p] {
            for (int seq = 0; seq < tasks; ++seq) {
              const Kind& k = kind_of(p, seq);
              q.put(k.priority, Chore{p, seq, k.what});
            }
          },
          ipckit::ProcessOptions{.name = "producer-" + std::to_string(p + 1), .daemon = true});
      prods.back().start();
    }

    const auto deadline = Clock::now() + timeout;
    auto left = [&] { return std::max(deadline - Clock::now(), Clock::duration::zero()); };
    bool ok = true;
    for (auto& p : prods) {
      if (!p.join(left()) || p.exitcode() != 0) {
        std::printf("FAILED: %s did not end cleanly\n", p.name().c_str());
        ok = false;
      }
    }
    if (!ok) {
      for (auto& p : prods) p.kill();
      consumer.kill();
      return 1;
    }
    // Every chore is in: close (the consumer drains what is queued, then gets Closed) and let it start.
    std::printf("all %zu chores queued; main closes the queue and tells the consumer to start\n\n", q.qsize());
    q.close();
    try {
      q.put(1, Chore{0, 0, "too late"}, 1s);
      std::printf("FAILED: a put after close() did not throw Closed\n");
      ok = false;
    } catch (const ipckit::Closed&) {
    }
    go.set();
    if (!consumer.join(left()) || consumer.exitcode() != 0) {
      std::printf("FAILED: the consumer did not end cleanly (queue holds %zu)\n", q.qsize());
      consumer.kill();
      return 1;
    }

    int missing = 0, doubled = 0;
    for (int i = 0; i < total; ++i) {
      missing += seen[static_cast<std::size_t>(i)] == 0;
      doubled += seen[static_cast<std::size_t>(i)] > 1;
    }
    std::printf("\nthe consumer got %lld chores, then Closed\n", static_cast<long long>(got.get()));
    if (closed.get() != 1) std::printf("FAILED: the consumer did not end through Closed\n");
    if (missing || doubled || got.get() != total)
      std::printf("FAILED: %d chores never got, %d got more than once (%lld got for %d put)\n", missing, doubled,
                  static_cast<long long>(got.get()), total);
    if (garbled.get())
      std::printf("FAILED: %lld chores were not what was put\n", static_cast<long long>(garbled.get()));
    if (descents.get())
      std::printf("FAILED: the priority went down %lld time(s)\n", static_cast<long long>(descents.get()));
    if (reorders.get())
      std::printf("FAILED: %lld chores of equal priority came before an earlier one of their producer\n",
                  static_cast<long long>(reorders.get()));
    if (!ok || closed.get() != 1 || missing || doubled || got.get() != total || garbled.get() || descents.get() ||
        reorders.get())
      return 1;
    std::printf("every chore got exactly once, most urgent first, equal priorities in put order\n");
    return 0;
  } catch (const ipckit::Error& e) {
    std::fprintf(stderr, "priority_queue: %s\n", e.what());
    return 1;
  }
}
