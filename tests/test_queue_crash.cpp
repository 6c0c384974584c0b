// Queue under load and under fire: many producers and consumers (processes
// and threads) losing and doubling nothing, and producers and consumers
// SIGKILLed at random instants inside put(), get(), put_many() and get_many().
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ipckit/ipckit.hpp"
#include "kill_harness.hpp"
#include "multiprocess.hpp"
#include "queue_items.hpp"

using namespace std::chrono_literals;
using ipckit::QueueOptions;
using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::ScopedSegmentName;
using namespace ipckit::testing;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- MPMC

namespace {

// `producers` processes put `items` {producer, seq} each; `consumers`
// processes get until the queue is closed and drained. Every item must arrive
// exactly once, and every consumer must see each producer's items in order.
void run_mpmc(const std::string& name, int producers, int consumers, std::uint32_t items, const QueueOptions& options) {
  auto seg = Segment::create(name, 16 << 20);
  auto q = seg.queue<Tagged>("q", options);
  const std::size_t total = static_cast<std::size_t>(producers) * items;
  auto seen = seg.array<std::uint8_t>("seen", total);
  auto per_consumer = seg.array<std::int64_t>("per_consumer", static_cast<std::size_t>(consumers));
  auto faults = seg.array<std::int64_t>("faults", 3);  // garbage, out of order, twice
  std::vector<Child> cons;
  cons.reserve(static_cast<std::size_t>(consumers));
  for (int c = 0; c < consumers; ++c)
    cons.emplace_back([&, c] {
      std::vector<std::int64_t> last(static_cast<std::size_t>(producers), -1);
      std::int64_t got = 0;
      for (;;) {
        Tagged t;
        try {
          t = q.get();
        } catch (const ipckit::Closed&) {
          break;
        }
        ++got;
        if (t.producer >= static_cast<std::uint32_t>(producers) || t.seq >= items) {
          at(faults[0]).fetch_add(1);
          continue;
        }
        if (static_cast<std::int64_t>(t.seq) <= last[t.producer]) at(faults[1]).fetch_add(1);
        last[t.producer] = t.seq;
        if (at(seen[std::size_t{t.producer} * items + t.seq]).fetch_add(1) != 0) at(faults[2]).fetch_add(1);
      }
      per_consumer[static_cast<std::size_t>(c)] = got;
    });
  std::vector<Child> prods;
  prods.reserve(static_cast<std::size_t>(producers));
  const auto t0 = Clock::now();
  for (int p = 0; p < producers; ++p)
    prods.emplace_back([&, p] {
      for (std::uint32_t s = 0; s < items; ++s) q.put(Tagged{static_cast<std::uint32_t>(p), s});
    });
  for (auto& p : prods) EXPECT_EQ(p.wait_exit(90s), 0);
  q.close();
  for (auto& c : cons) EXPECT_EQ(c.wait_exit(30s), 0);
  const auto elapsed = Clock::now() - t0;
  EXPECT_EQ(faults[0], 0) << "garbage items";
  EXPECT_EQ(faults[1], 0) << "a consumer saw a producer's items out of order";
  EXPECT_EQ(faults[2], 0) << "items delivered twice";
  std::size_t lost = 0, doubled = 0;
  for (std::size_t i = 0; i < total; ++i) {
    lost += seen[i] == 0;
    doubled += seen[i] > 1;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(doubled, 0u);
  std::int64_t sum = 0;
  for (auto g : per_consumer) sum += g;
  EXPECT_EQ(sum, static_cast<std::int64_t>(total));
  EXPECT_TRUE(q.empty());
  ::testing::Test::RecordProperty("items", static_cast<int>(total));
  ::testing::Test::RecordProperty("items_per_second", static_cast<int>(static_cast<double>(total) /
                                                                       std::chrono::duration<double>(elapsed).count()));
}

}  // namespace

TEST(QueueMpmc, FourProducersAndFourConsumersPassFourHundredThousandItemsEachExactlyOnceInProducerOrder) {
  ScopedSegmentName n("q_mpmc");
  run_mpmc(n.name, 4, 4, 100'000, {});
}

// A ring of 1 KiB keeps the producers blocking on a full queue and the
// consumers on an empty one: the same checks with many sleeps and wake-ups.
TEST(QueueMpmc, FourProducersAndFourConsumersThroughATinyRingLoseAndDoubleNothing) {
  ScopedSegmentName n("q_mpmc_tiny");
  run_mpmc(n.name, 4, 4, 25'000, {.capacity_bytes = 1024});
}

// ---------------------------------------------------------------- threads

TEST(QueueThreads, ThreadsOfSeveralProcessesShareOneQueueLosingAndDoublingNothing) {
  ScopedSegmentName n("q_threads");
  auto seg = Segment::create(n.name, 16 << 20);
  auto q = seg.queue<Tagged>("q", {.capacity_bytes = 1 << 14});
  constexpr int kProcs = 2, kThreadsPerSide = 2;            // per child: 2 producer + 2 consumer threads
  constexpr int kProducers = kProcs * kThreadsPerSide + 1;  // + one producer thread here
  constexpr std::uint32_t kItems = 20'000;
  auto seen = seg.array<std::uint8_t>("seen", std::size_t{kProducers} * kItems);
  auto faults = seg.array<std::int64_t>("faults", 3);
  auto producers_done = seg.value<std::int32_t>("producers_done");
  auto consume = [&] {
    std::vector<std::int64_t> last(kProducers, -1);
    for (;;) {
      Tagged t;
      try {
        t = q.get();
      } catch (const ipckit::Closed&) {
        return;
      }
      if (t.producer >= kProducers || t.seq >= kItems) {
        at(faults[0]).fetch_add(1);
        continue;
      }
      if (static_cast<std::int64_t>(t.seq) <= last[t.producer]) at(faults[1]).fetch_add(1);
      last[t.producer] = t.seq;
      if (at(seen[std::size_t{t.producer} * kItems + t.seq]).fetch_add(1) != 0) at(faults[2]).fetch_add(1);
    }
  };
  auto produce = [&](std::uint32_t id) {
    for (std::uint32_t s = 0; s < kItems; ++s) q.put(Tagged{id, s});
    std::lock_guard g(producers_done.get_lock());
    producers_done.set(producers_done.get() + 1);
  };
  std::vector<Child> kids;
  kids.reserve(kProcs);
  for (int p = 0; p < kProcs; ++p)
    kids.emplace_back([&, p] {
      std::vector<std::thread> ts;
      for (int t = 0; t < kThreadsPerSide; ++t) {
        ts.emplace_back(produce, static_cast<std::uint32_t>(p * kThreadsPerSide + t));
        ts.emplace_back(consume);
      }
      for (auto& t : ts) t.join();
    });
  std::thread local_consumer(consume);
  std::thread local_producer(produce, static_cast<std::uint32_t>(kProducers - 1));
  local_producer.join();
  EXPECT_TRUE(eventually([&] { return producers_done.get() == kProducers; }, 90s)) << "producers stalled";
  q.close();
  local_consumer.join();
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(30s), 0);
  EXPECT_EQ(faults[0], 0) << "garbage items";
  EXPECT_EQ(faults[1], 0) << "a consumer thread saw a producer's items out of order";
  EXPECT_EQ(faults[2], 0) << "items delivered twice";
  std::size_t lost = 0;
  for (auto s : seen) lost += s == 0;
  EXPECT_EQ(lost, 0u);
}

// ---------------------------------------------------------------- crash safety

namespace {

// Producers and consumers SIGKILLed at random instants inside their put and
// get loops, with the checks of tests/kill_harness.hpp; the last round kills
// everyone in random order (so the queue is left as a crash leaves it: items
// in flight, maybe a dead lock holder) before this process drains it. On a
// JoinableQueue, every get is followed by a task_done(), and after the drain
// nothing is left unfinished and join() returns.
struct CrashRun {
  std::string name;
  bool joinable;
  int kills;
  QueueOptions options;

  void run() {
    auto seg = Segment::create(name, 24 << 20);
    auto jq = seg.joinable_queue<Stamped>("jq", options);
    auto plain = seg.queue<Stamped>("q", options);
    ipckit::Queue<Stamped>& q = joinable ? static_cast<ipckit::Queue<Stamped>&>(jq) : plain;
    constexpr int kTaskDone = KillRun::kOwnFault;
    KillRun run(seg, {.seed = 20240607u + static_cast<unsigned>(joinable),
                      .kills = kills,
                      .max_seq = 1u << 22,
                      .max_ops_before_kill = 64,
                      .own_faults = {"task_done errors"}});

    auto put = [&](const Stamped& s, auto... timeout) { q.put(s, timeout...); };
    auto get_and_take = [&](std::vector<std::int64_t>& last, auto... timeout) {
      run.record(q.get(timeout...), last);
      if (joinable) {
        try {
          jq.task_done();
        } catch (...) {
          run.fault(kTaskDone);
        }
      }
    };
    run.kill_at_random(put, get_and_take);
    run.kill_everyone_for_good(200ms);

    if (!run.drain(get_and_take)) return;
    EXPECT_EQ(q.qsize(), 0u);
    EXPECT_EQ(q.bytes_used(), 0u);
    run.check_books();
    if (joinable) {
      EXPECT_TRUE(jq.join(5s)) << "join() hangs after the kills: " << jq.unfinished_tasks() << " unfinished";
      EXPECT_EQ(jq.unfinished_tasks(), 0u);
      EXPECT_LE(jq.abandoned_tasks(), static_cast<std::uint64_t>(run.consumer_kills()));
    }

    // The queue still works, across processes.
    EXPECT_TRUE(run.returns_in_a_new_process([&] { q.put(run.item(0, run.max_seq() - 1)); }))
        << "a put after the kills failed";
    const auto last_one = q.get(5s);
    EXPECT_TRUE(run.intact(last_one));
    EXPECT_EQ(last_one.seq, run.max_seq() - 1);
    if (joinable) {
      EXPECT_NO_THROW(jq.task_done());
      EXPECT_TRUE(jq.join(5s));
    }

    run.record_properties();
    if (joinable) ::testing::Test::RecordProperty("abandoned", static_cast<int>(jq.abandoned_tasks()));
  }
};

}  // namespace

TEST(QueueCrash, ProducersAndConsumersKilledFourHundredTimesInsidePutAndGetLoseAndDoubleNothing) {
  ScopedSegmentName n("q_crash");
  CrashRun{n.name, false, 400, {.capacity_bytes = 1 << 13}}.run();
}

// The same with a ring too small for more than a handful of records, so
// that kills also land in producers sleeping on a full queue and consumers
// sleeping on an empty one.
TEST(QueueCrash, KillsOnAnAlmostAlwaysFullOrEmptyRingLoseAndDoubleNothing) {
  ScopedSegmentName n("q_crash_tiny");
  CrashRun{n.name, false, 200, {.capacity_bytes = 512, .max_message = 128}}.run();
}

TEST(QueueCrash, KillsOnAJoinableQueueLeaveNoUnfinishedTaskBehind) {
  ScopedSegmentName n("q_crash_join");
  CrashRun{n.name, true, 200, {.capacity_bytes = 1 << 13}}.run();
}

// Deterministic kills at the two instants that matter most: a consumer
// inside get() after it has read the record but before freeing it, and a
// producer inside put() before anything is written.
TEST(QueueCrash, AConsumerKilledWhileDecodingLeavesTheItemQueuedForTheNextConsumer) {
  ScopedSegmentName n("q_kill_decode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Stalling>("q");
  for (int round = 0; round < 3; ++round) {
    q.put({kStallOnLoad});
    q.put({round});
    Signal stalled;
    Child victim([&] {
      g_stall_fd = stalled.fd[1];
      (void)q.get();
    });
    ASSERT_TRUE(stalled.wait()) << "round " << round;
    EXPECT_EQ(q.qsize(), 2u) << "a get that has not returned frees nothing";
    victim.kill(SIGKILL);
    EXPECT_EQ(victim.wait_exit(), -SIGKILL);
    Child next([&] {
      // The victim died holding the consumers' lock: a blocking get takes it
      // over, and so does a non-blocking one.
      if (round == 1) {
        EXPECT_EQ(q.get_nowait().value, kStallOnLoad) << "the victim's item is delivered to the next consumer";
      } else {
        EXPECT_EQ(q.get(5s).value, kStallOnLoad) << "the victim's item is delivered to the next consumer";
      }
      EXPECT_EQ(q.get(5s).value, round);
    });
    EXPECT_EQ(next.wait_exit(), 0) << "round " << round;
    EXPECT_TRUE(q.empty());
  }
}

TEST(QueueCrash, AProducerKilledWhileEncodingLeavesNothingInTheQueue) {
  ScopedSegmentName n("q_kill_encode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Stalling>("q");
  q.put({1});
  Signal stalled;
  Child victim([&] {
    g_stall_fd = stalled.fd[1];
    q.put({kStallOnSave});
  });
  ASSERT_TRUE(stalled.wait());
  victim.kill(SIGKILL);
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  Child other([&] { q.put({2}); });
  EXPECT_EQ(other.wait_exit(), 0);
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.get_nowait().value, 1);
  EXPECT_EQ(q.get_nowait().value, 2);
  EXPECT_THROW(q.get_nowait(), ipckit::Empty);
}

// Threads of ONE process only (so a thread sanitizer sees every access):
// producers use put and put_many, consumers get and get_many; every item
// arrives once, each producer's in order, for a plain and a joinable queue.
TEST(QueueThreads, ProducerAndConsumerThreadsOfOneProcessMixingSinglesAndBatchesLoseAndDoubleNothing) {
  ScopedSegmentName n("q_threads_only");
  auto seg = Segment::create(n.name, 4 << 20);
  for (const bool joinable : {false, true}) {
    auto jq = seg.joinable_queue<Tagged>("jq", {.capacity_bytes = 1 << 12});
    auto plain = seg.queue<Tagged>("q", {.capacity_bytes = 1 << 12});
    ipckit::Queue<Tagged>& q = joinable ? static_cast<ipckit::Queue<Tagged>&>(jq) : plain;
    constexpr std::uint32_t kProducers = 3, kConsumers = 3, kEach = 20000;
    std::vector<std::atomic<int>> received(kProducers * kEach);
    std::atomic<int> out_of_order{0};
    std::vector<std::thread> threads;
    for (std::uint32_t p = 0; p < kProducers; ++p)
      threads.emplace_back([&, p] {
        std::vector<Tagged> batch;
        for (std::uint32_t i = 0; i < kEach; ++i) {
          if (p % 2 == 0) {
            q.put({p, i});
            continue;
          }
          batch.push_back({p, i});
          if (batch.size() == 7 || i + 1 == kEach) {
            q.put_many(batch);
            batch.clear();
          }
        }
      });
    for (std::uint32_t c = 0; c < kConsumers; ++c)
      threads.emplace_back([&, c] {
        std::vector<std::int64_t> last(kProducers, -1);
        for (;;) {
          std::vector<Tagged> got;
          try {
            if (c % 2 == 0)
              got.push_back(q.get(10s));
            else
              got = q.get_many(5, 10s);
          } catch (const ipckit::Closed&) {
            return;  // closed and drained
          }
          for (const auto& t : got) {
            if (static_cast<std::int64_t>(t.seq) <= last[t.producer]) ++out_of_order;
            last[t.producer] = t.seq;
            ++received[std::size_t{t.producer} * kEach + t.seq];
            if (joinable) jq.task_done();
          }
        }
      });
    for (std::uint32_t p = 0; p < kProducers; ++p) threads[p].join();
    q.close();  // the consumers drain, then end
    for (std::size_t t = kProducers; t < threads.size(); ++t) threads[t].join();
    EXPECT_EQ(out_of_order.load(), 0);
    int missing = 0, doubled = 0;
    for (const auto& r : received) {
      missing += r.load() == 0;
      doubled += r.load() > 1;
    }
    EXPECT_EQ(missing, 0) << (joinable ? "joinable" : "plain");
    EXPECT_EQ(doubled, 0) << (joinable ? "joinable" : "plain");
    if (joinable) EXPECT_TRUE(jq.join(1s)) << jq.unfinished_tasks() << " unfinished";
  }
}

// A producer killed inside put_many leaves a prefix of its items: whatever
// arrived is 0..k-1 with no gap and nothing twice. A consumer killed inside
// get_many leaves its batch queued: nothing is lost but what get_many had
// returned to it.
TEST(QueueBatch, KillsInsidePutManyLeaveAPrefixAndKillsInsideGetManyLoseNothingQueued) {
  ScopedSegmentName n("q_batch_kill");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<std::int64_t>("q", {.capacity_bytes = 1 << 13});
  // Each round has its own range of item numbers, which its producer never
  // leaves (it pauses at the end), so the table of what was seen cannot overflow.
  constexpr int kRounds = 30;
  constexpr std::int64_t kPerRound = 37 * 3000;
  constexpr std::int64_t kItems = kRounds * kPerRound;
  auto seen = seg.array<std::uint8_t>("seen", kItems);
  std::mt19937 rng(99);
  for (int round = 0; round < kRounds; ++round) {
    const std::int64_t base = round * kPerRound;
    // Producer: batches of 37 from `base`; killed at a random instant.
    Child producer([&] {
      std::vector<std::int64_t> batch(37);
      for (std::int64_t i = base; i < base + kPerRound; i += 37) {
        for (std::int64_t k = 0; k < 37; ++k) batch[static_cast<std::size_t>(k)] = i + k;
        q.put_many(batch);
      }
      for (;;) ::pause();
    });
    Child consumer([&] {
      for (;;) {
        for (const auto v : q.get_many(16)) {
          std::atomic_ref<std::uint8_t>(seen[static_cast<std::size_t>(v)]).fetch_add(1);
        }
      }
    });
    ASSERT_TRUE(eventually([&] {  // both are at work
      return std::atomic_ref<std::uint8_t>(seen[static_cast<std::size_t>(base)]).load() != 0;
    }));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1000));  // a random instant
    producer.kill(SIGKILL);
    EXPECT_EQ(producer.wait_exit(), -SIGKILL);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
    consumer.kill(SIGKILL);
    EXPECT_EQ(consumer.wait_exit(), -SIGKILL);
    while (q.qsize() > 0) {  // get_many takes the lock over if the consumer died holding it
      for (const auto v : q.get_many(100, 5s)) ++seen[static_cast<std::size_t>(v)];
    }
    // What arrived of this round is a prefix of its range, seen once each,
    // with at most 16 (the killed consumer's last batch) unaccounted inside it.
    const std::int64_t limit = base + kPerRound;
    std::int64_t last_seen = base;
    for (std::int64_t i = base; i < limit; ++i)
      if (seen[static_cast<std::size_t>(i)] != 0) last_seen = i + 1;
    std::int64_t holes = 0;
    for (std::int64_t i = base; i < last_seen; ++i) {
      ASSERT_LE(seen[static_cast<std::size_t>(i)], 1) << "item " << i << " arrived twice";
      holes += seen[static_cast<std::size_t>(i)] == 0;
    }
    EXPECT_LE(holes, 16) << "round " << round << ": more missing than one get_many batch";
  }
}

// ---------------------------------------------------------------- wake-ups

// A consumer woken from its sleep stays counted as a sleeper until it gets a
// CPU again (milliseconds on a loaded machine; here it is stopped). Puts in
// that time must not each make a wake call: one wake is owed, not one per
// put (before, 4x4 MPMC on 2 CPUs made 250 k wake calls from 13 sleeps).
// data.seq moves once per wake call, so it counts them.
TEST(QueueWakeups, PutsWhileAWokenConsumerIsStillCountedMakeOneWakeCallNotOnePerPut) {
  ScopedSegmentName n("qw_woken");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.capacity_bytes = 1 << 16});
  const auto* state =
      static_cast<const ipckit::detail::QueueState*>(ipckit::detail::SegmentAccess::object_body(seg, "q"));
  Child consumer([&] {
    if (q.get(20s) != 0) std::_Exit(3);
  });
  ASSERT_TRUE(asleep(consumer));
  consumer.kill(SIGSTOP);
  const std::uint32_t before = state->data.seq.load();
  for (int i = 0; i < 1000; ++i) q.put(i);
  const std::uint32_t wakes = state->data.seq.load() - before;
  consumer.kill(SIGCONT);
  EXPECT_EQ(consumer.wait_exit(), 0) << "the woken consumer did not get the first item";
  EXPECT_LE(wakes, 2u) << "puts made a wake call each while the woken consumer was still counted";
  for (int i = 1; i < 1000; ++i) ASSERT_EQ(q.get_nowait(), i);
}

// The same for a producer waiting for room, woken by gets.
TEST(QueueWakeups, GetsWhileAWokenProducerIsStillCountedMakeOneWakeCallNotOnePerGet) {
  ScopedSegmentName n("qw_woken_room");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.capacity_bytes = 1 << 12, .max_items = 100});
  const auto* state =
      static_cast<const ipckit::detail::QueueState*>(ipckit::detail::SegmentAccess::object_body(seg, "q"));
  for (int i = 0; i < 100; ++i) q.put(i);
  Child producer([&] { q.put(100, 20s); });
  ASSERT_TRUE(asleep(producer));
  producer.kill(SIGSTOP);
  const std::uint32_t before = state->space.seq.load();
  for (int i = 0; i < 50; ++i) ASSERT_EQ(q.get_nowait(), i);
  const std::uint32_t wakes = state->space.seq.load() - before;
  producer.kill(SIGCONT);
  EXPECT_EQ(producer.wait_exit(), 0) << "the woken producer did not put its item";
  EXPECT_LE(wakes, 2u) << "gets made a wake call each while the woken producer was still counted";
  for (int i = 50; i <= 100; ++i) ASSERT_EQ(q.get_nowait(), i);
}

// A consumer killed in its sleep: the next put finds nobody to wake and
// later puts make no wake call; a live consumer that sleeps afterwards is
// woken by the next put.
TEST(QueueWakeups, AConsumerKilledAsleepCostsAtMostOneWakeCallAndALaterSleeperIsStillWoken) {
  ScopedSegmentName n("qw_killed");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.capacity_bytes = 1 << 16});
  const auto* state =
      static_cast<const ipckit::detail::QueueState*>(ipckit::detail::SegmentAccess::object_body(seg, "q"));
  {
    Child doomed([&] { (void)q.get(); });
    ASSERT_TRUE(asleep(doomed));
    doomed.kill(SIGKILL);
    EXPECT_EQ(doomed.wait_exit(), -SIGKILL);
  }
  const std::uint32_t before = state->data.seq.load();
  for (int i = 0; i < 1000; ++i) q.put(i);
  EXPECT_LE(state->data.seq.load() - before, 1u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(q.get_nowait(), i);
  Child live([&] {
    if (q.get(20s) != 7) std::_Exit(3);
  });
  ASSERT_TRUE(asleep(live));
  const std::uint32_t later = state->data.seq.load();
  q.put(7);
  EXPECT_EQ(state->data.seq.load() - later, 1u) << "no wake call for the live sleeper";
  EXPECT_EQ(live.wait_exit(), 0);
}
