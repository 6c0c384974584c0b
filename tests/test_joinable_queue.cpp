// JoinableQueue and JoinablePriorityQueue across real processes:
// task_done()/join(), shutdown() settling the discarded items' tasks, and the
// task count kept exact when consumers are SIGKILLed between get() and
// task_done(), inside get(), while another process sleeps in join(), or when
// the process shutting the queue down is killed half-way.
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
#include "ipckit/lifo_queue.hpp"
#include "multiprocess.hpp"
#include "queue_items.hpp"

using namespace std::chrono_literals;
using ipckit::QueueOptions;
using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::ScopedSegmentName;
using namespace ipckit::testing;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------- JoinableQueue

TEST(JoinableQueue, TaskDoneWithoutAnUnfinishedTaskThrowsInvalidArgument) {
  ScopedSegmentName n("jq_too_many");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<std::string>("jobs");
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
  q.put("one");
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_EQ(q.get_nowait(), "one");
  EXPECT_EQ(q.unfinished_tasks(), 1u) << "a task is unfinished until task_done, not until get";
  q.task_done();
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
  EXPECT_EQ(q.unfinished_tasks(), 0u) << "a refused task_done changes nothing";
  EXPECT_TRUE(q.join(0ns));
  Child other([&] { EXPECT_THROW(q.task_done(), ipckit::InvalidArgument); });
  EXPECT_EQ(other.wait_exit(), 0);
}

TEST(JoinableQueue, TimedJoinReturnsFalseAfterAtLeastTheTimeoutWhileTasksAreUnfinished) {
  ScopedSegmentName n("jq_join_timeout");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<int>("jobs");
  EXPECT_TRUE(q.join(0ns)) << "nothing was put";
  q.put(1);
  for (auto timeout : {1ms, 50ms}) {
    const auto t0 = Clock::now();
    EXPECT_FALSE(q.join(timeout));
    EXPECT_GE(Clock::now() - t0, timeout);
  }
  EXPECT_EQ(q.get_nowait(), 1);
  const auto t0 = Clock::now();
  EXPECT_FALSE(q.join(30ms)) << "got but not done is still unfinished";
  EXPECT_GE(Clock::now() - t0, 30ms);
  q.task_done();
  EXPECT_TRUE(q.join(0ns));
  EXPECT_EQ(q.abandoned_tasks(), 0u);
}

TEST(JoinableQueue, JoinReturnsOnceConsumersInOtherProcessesHaveMarkedEveryTaskDone) {
  ScopedSegmentName n("jq_join");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<int>("jobs");
  constexpr int kJobs = 200, kConsumers = 3;
  auto got = seg.value<std::int32_t>("got");
  Signal release;
  for (int i = 0; i < kJobs; ++i) q.put(i);
  std::vector<Child> consumers;
  consumers.reserve(kConsumers);
  for (int c = 0; c < kConsumers; ++c)
    consumers.emplace_back([&] {
      auto mine = Segment::open(n.name).joinable_queue<int>("jobs");
      std::vector<int> mine_got;
      while (auto v = mine.try_get()) mine_got.push_back(*v);
      {
        std::lock_guard g(got.get_lock());
        got.set(got.get() + static_cast<std::int32_t>(mine_got.size()));
      }
      ASSERT_TRUE(release.wait(20s));
      for (std::size_t i = 0; i < mine_got.size(); ++i) mine.task_done();
    });
  ASSERT_TRUE(eventually([&] { return got.get() == kJobs; }));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.unfinished_tasks(), static_cast<std::uint64_t>(kJobs));
  const auto t0 = Clock::now();
  EXPECT_FALSE(q.join(50ms)) << "every task was got, none done";
  EXPECT_GE(Clock::now() - t0, 50ms);
  // An untimed join, in a process of its own, bounded by its wait.
  Signal joined;
  Child joiner([&] {
    Segment::open(n.name).joinable_queue<int>("jobs").join();
    joined.post();
  });
  ASSERT_TRUE(asleep(joiner));
  EXPECT_FALSE(joined.wait(0ms));
  release.post(kConsumers);
  for (auto& c : consumers) EXPECT_EQ(c.wait_exit(), 0);
  EXPECT_TRUE(joined.wait(5s)) << "join() did not return after the last task_done";
  EXPECT_EQ(joiner.wait_exit(), 0);
  EXPECT_TRUE(q.join(0ns));
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_EQ(q.abandoned_tasks(), 0u);
}

TEST(JoinableQueue, AConsumerKilledBetweenGetAndTaskDoneDoesNotMakeJoinHang) {
  ScopedSegmentName n("jq_killed");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<std::string>("jobs");
  q.put("doomed");
  q.put("fine");
  Signal got;
  Child victim([&] {
    EXPECT_EQ(q.get(5s), "doomed");
    got.post();
    ::pause();  // killed before task_done
  });
  ASSERT_TRUE(got.wait());
  EXPECT_EQ(q.get_nowait(), "fine");
  q.task_done();
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_FALSE(q.join(30ms)) << "the victim is alive and has not finished its task";
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  victim.kill(SIGKILL);
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  const auto t0 = Clock::now();
  EXPECT_TRUE(q.join(2s)) << "join() waited on a task whose consumer is dead";
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_EQ(q.abandoned_tasks(), 1u);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  // The queue goes on as usual.
  q.put("next");
  EXPECT_FALSE(q.join(1ms));
  EXPECT_EQ(q.get_nowait(), "next");
  q.task_done();
  EXPECT_TRUE(q.join(1s));
  EXPECT_EQ(q.abandoned_tasks(), 1u);
  // A late task_done() for the victim's task (handed to this process, say)
  // settles it; one more is refused: nothing is counted twice.
  q.task_done();
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument) << "the abandoned task was marked done twice";
}

// A consumer killed inside get(), before get() returned, did not get the
// task: the item stays queued, so join() must keep waiting for it, and the
// consumer that gets it next must be able to mark it done.
TEST(JoinableQueue, AConsumerKilledInsideGetLeavesItsTaskQueuedAndCountedOnce) {
  ScopedSegmentName n("jq_kill_decode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<Stalling>("jobs");
  q.put({kStallOnLoad});
  Signal stalled;
  Child victim([&] {
    g_stall_fd = stalled.fd[1];
    (void)q.get();
  });
  ASSERT_TRUE(stalled.wait());
  victim.kill(SIGKILL);
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  EXPECT_EQ(q.qsize(), 1u) << "the item is still queued";
  const auto t0 = Clock::now();
  EXPECT_FALSE(q.join(200ms)) << "join() returned while the task was still in the queue";
  EXPECT_GE(Clock::now() - t0, 200ms);
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  Child next([&] {
    EXPECT_EQ(q.get(5s).value, kStallOnLoad);
    EXPECT_NO_THROW(q.task_done()) << "the task re-delivered to this consumer can be marked done";
  });
  EXPECT_EQ(next.wait_exit(), 0);
  EXPECT_TRUE(q.join(2s));
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
  // The count is still right for the next task.
  q.put({7});
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_FALSE(q.join(30ms));
  EXPECT_EQ(q.get_nowait().value, 7);
  EXPECT_NO_THROW(q.task_done());
  EXPECT_TRUE(q.join(1s));
}

// The dead consumer's task must also free a join() already asleep.
TEST(JoinableQueue, AConsumerKilledWhileAnotherProcessSleepsInJoinLetsThatJoinReturn) {
  ScopedSegmentName n("jq_killed_joiner");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<int>("jobs");
  q.put(1);
  q.put(2);
  Signal got;
  std::vector<Child> victims;
  victims.reserve(2);
  for (int i = 0; i < 2; ++i)
    victims.emplace_back([&] {
      (void)q.get(5s);
      got.post();
      ::pause();
    });
  ASSERT_TRUE(got.wait_n(2));
  Child joiner([&] { q.join(); });
  ASSERT_TRUE(asleep(joiner));
  for (auto& v : victims) v.kill(SIGKILL);
  for (auto& v : victims) EXPECT_EQ(v.wait_exit(), -SIGKILL);
  const auto t0 = Clock::now();
  EXPECT_EQ(joiner.wait_exit(10s), 0);
  EXPECT_LT(Clock::now() - t0, 2s) << "join() returned only after its deadline-free wait was healed late";
  EXPECT_EQ(q.abandoned_tasks(), 2u);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
}

// Consumers looping get(); task_done(), SIGKILLed at random instants, hit
// every window between a task's steps (freed, leased, finished) hundreds of
// times. Whatever the instant, the books must balance: after the kills and a
// drain, nothing is unfinished, join() returns, one more task_done() is
// refused (no task counted twice) and no more tasks were abandoned than
// consumers were killed.
namespace {

// How the tests below reach each joinable kind of queue.
struct FifoJobs {
  static ipckit::JoinableQueue<std::int64_t> open(Segment& s, std::size_t items) {
    return s.joinable_queue<std::int64_t>("jobs", {.capacity_bytes = std::max<std::size_t>(items * 16, 1 << 14)});
  }
  template <class Q>
  static void put(Q& q, std::int64_t i) {
    q.put(i);
  }
  static constexpr bool kFifo = true;
};
struct PriorityJobs {
  static ipckit::JoinablePriorityQueue<std::int64_t> open(Segment& s, std::size_t items) {
    return s.joinable_priority_queue<std::int64_t>("jobs",
                                                   {.max_items = std::max<std::size_t>(items, 256), .max_message = 8});
  }
  template <class Q>
  static void put(Q& q, std::int64_t i) {
    q.put(i % 5, i);
  }
  static constexpr bool kFifo = false;
};

// Two consumers get and task_done() while a producer puts; the consumers are
// SIGKILLed at random instants `kills` times. After a drain nothing is left
// unfinished, and the tasks counted abandoned are exactly those late
// task_done()s can settle: none was counted finished twice.
template <class Jobs>
void consumers_killed_at_random(const std::string& name, int kills) {
  auto seg = Segment::create(name, 8 << 20);
  auto q = Jobs::open(seg, 0);
  auto progress = seg.array<std::int64_t>("progress", 3);
  std::mt19937 rng(4242);
  const auto consume_forever = [&](std::size_t slot) {
    return [&, slot] {
      for (;;) {
        (void)q.get();
        q.task_done();
        std::atomic_ref<std::int64_t>(progress[slot]).fetch_add(1, std::memory_order_relaxed);
      }
    };
  };
  Child producer([&] {
    for (std::int64_t i = 0;; ++i) {
      Jobs::put(q, i);
      std::atomic_ref<std::int64_t>(progress[2]).fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::vector<std::unique_ptr<Child>> consumers;
  for (std::size_t c = 0; c < 2; ++c) consumers.push_back(std::make_unique<Child>(consume_forever(c)));
  for (int k = 0; k < kills; ++k) {
    const std::size_t victim = rng() % 2;
    const auto seen = std::atomic_ref<std::int64_t>(progress[victim]).load();
    ASSERT_TRUE(eventually([&] { return std::atomic_ref<std::int64_t>(progress[victim]).load() > seen + 10; }))
        << "consumer " << victim << " made no progress after " << k << " kills: the queue wedged";
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));  // a random instant in its loop
    consumers[victim]->kill(SIGKILL);
    EXPECT_EQ(consumers[victim]->wait_exit(), -SIGKILL);
    consumers[victim] = std::make_unique<Child>(consume_forever(victim));
  }
  producer.kill(SIGKILL);
  EXPECT_EQ(producer.wait_exit(), -SIGKILL);
  for (auto& c : consumers) {
    c->kill(SIGKILL);
    EXPECT_EQ(c->wait_exit(), -SIGKILL);
  }
  for (;;) {
    std::optional<std::int64_t> item;
    try {
      item = q.get(200ms);  // may take the lock over from a killed consumer
    } catch (const ipckit::Empty&) {
    }
    if (!item) break;
    q.task_done();
  }
  EXPECT_TRUE(q.join(5s)) << q.unfinished_tasks() << " unfinished after the drain";
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  const std::uint64_t abandoned = q.abandoned_tasks();
  EXPECT_LE(abandoned, static_cast<std::uint64_t>(kills + 2));
  ::testing::Test::RecordProperty("abandoned", static_cast<int>(abandoned));
  // Late task_done()s settle the abandoned tasks, one each; then one more is
  // refused: no task was counted finished twice.
  for (std::uint64_t i = 0; i < abandoned; ++i) q.task_done();
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument) << "a task was counted finished twice";
  ::testing::Test::RecordProperty("consumed", static_cast<int>(progress[0] + progress[1]));
}

// The process calling shutdown() on a queue of `kItems` items is SIGKILLed
// at a random instant, round after round; the instant adapts so that some
// kills land while it discards. Whatever instant: the queue is left closed
// (unless the kill came first), what it still holds comes out intact and
// once (for a FIFO, the last items put: the discard goes from the head),
// and once those are done join() returns: the tasks the dead process had
// discarded count as abandoned, not as unfinished forever.
template <class Jobs>
void shutdown_killed_at_random(const std::string& stem) {
  constexpr std::int64_t kItems = 20000;
  std::mt19937 rng(99);
  auto delay = std::chrono::microseconds(300);
  int partial = 0;
  for (int round = 0; round < 24; ++round) {
    ScopedSegmentName n(stem);
    auto seg = Segment::create(n.name, 8 << 20);
    auto q = Jobs::open(seg, kItems);
    for (std::int64_t i = 0; i < kItems; ++i) Jobs::put(q, i);
    Signal started;
    Child shutter([&] {
      started.post();
      q.shutdown();
      for (;;) ::pause();
    });
    ASSERT_TRUE(started.wait());
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % (2 * delay.count() + 1)));
    shutter.kill(SIGKILL);
    ASSERT_EQ(shutter.wait_exit(), -SIGKILL);
    const std::size_t left_at_kill = q.qsize();
    if (left_at_kill == static_cast<std::size_t>(kItems)) {
      delay *= 2;
    } else if (left_at_kill == 0) {
      delay = std::max(delay / 2, std::chrono::microseconds(1));
    } else {
      ++partial;
    }
    if (!q.closed()) {
      EXPECT_EQ(left_at_kill, static_cast<std::size_t>(kItems)) << "killed before it began: nothing happened";
      q.close();
    }
    std::vector<std::int64_t> left;
    for (;;) {
      try {
        left.push_back(q.get(5s));  // may take over the consumers' lock and finish the discard
      } catch (const ipckit::Closed&) {
        break;
      }
      q.task_done();
    }
    std::set<std::int64_t> unique(left.begin(), left.end());
    EXPECT_EQ(unique.size(), left.size()) << "round " << round << ": an item came out twice";
    ASSERT_LE(left.size(), static_cast<std::size_t>(kItems));
    for (const std::int64_t v : left) ASSERT_TRUE(v >= 0 && v < kItems) << "garbage";
    if (Jobs::kFifo && !left.empty()) {
      EXPECT_EQ(left.front(), kItems - static_cast<std::int64_t>(left.size())) << "not the last items put";
      EXPECT_EQ(left.back(), kItems - 1);
    }
    EXPECT_TRUE(q.join(10s)) << "round " << round << ": " << q.unfinished_tasks() << " unfinished";
    EXPECT_THROW(Jobs::put(q, 1), ipckit::Closed);
  }
  EXPECT_GT(partial, 0) << "no kill landed while shutdown() was discarding";
  ::testing::Test::RecordProperty("kills_inside_the_discard", partial);
}

// Python 3.13: shutdown(immediate=True) marks the discarded items' tasks
// done, so join() returns once the tasks already got are done; a process
// sleeping in join() in another process is woken.
template <class Jobs>
void shutdown_settles_the_discarded_tasks(const std::string& name) {
  auto seg = Segment::create(name, 4 << 20);
  auto q = Jobs::open(seg, 0);
  for (std::int64_t i = 0; i < 10; ++i) Jobs::put(q, i);
  (void)q.get();  // one task got, not yet done
  Child joiner([&] { EXPECT_TRUE(q.join(20s)); });
  ASSERT_TRUE(asleep(joiner));
  q.shutdown();
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_EQ(q.unfinished_tasks(), 1u) << "the task got before stays unfinished";
  EXPECT_FALSE(q.join(50ms));
  q.task_done();
  EXPECT_EQ(joiner.wait_exit(), 0);
  EXPECT_TRUE(q.join(0s));
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument) << "the discarded tasks were marked done once";
}

}  // namespace

TEST(JoinableQueue, ConsumersKilledAtRandomInsideGetOrTaskDoneKeepTheTaskCountExact) {
  ScopedSegmentName n("jq_kill_task_done");
  consumers_killed_at_random<FifoJobs>(n.name, 300);
}

TEST(JoinablePriorityQueue, ConsumersKilledAtRandomInsideGetOrTaskDoneKeepTheTaskCountExact) {
  ScopedSegmentName n("jpq_kill_task_done");
  consumers_killed_at_random<PriorityJobs>(n.name, 200);
}

TEST(JoinableQueue, ShutdownMarksTheDiscardedTasksDoneSoJoinWaitsOnlyForTasksAlreadyGot) {
  ScopedSegmentName n("jq_shutdown");
  shutdown_settles_the_discarded_tasks<FifoJobs>(n.name);
}

TEST(JoinablePriorityQueue, ShutdownMarksTheDiscardedTasksDoneSoJoinWaitsOnlyForTasksAlreadyGot) {
  ScopedSegmentName n("jpq_shutdown");
  shutdown_settles_the_discarded_tasks<PriorityJobs>(n.name);
}

TEST(JoinableQueue, AProcessKilledInsideShutdownLeavesAClosedQueueWhoseTasksAllSettle) {
  shutdown_killed_at_random<FifoJobs>("jq_shutdown_kill");
}

TEST(JoinablePriorityQueue, AProcessKilledInsideShutdownLeavesAClosedQueueWhoseTasksAllSettle) {
  shutdown_killed_at_random<PriorityJobs>("jpq_shutdown_kill");
}

TEST(JoinablePriorityQueue, JoinReturnsOnceEveryTaskPutIsDoneInAnyProcessAndTooManyTaskDonesThrow) {
  ScopedSegmentName n("jpq_join");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = PriorityJobs::open(seg, 0);
  EXPECT_TRUE(q.join(0s)) << "nothing put: nothing to wait for";
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
  for (std::int64_t i = 0; i < 6; ++i) q.put(5 - i, i);
  EXPECT_EQ(q.unfinished_tasks(), 6u);
  const auto t0 = Clock::now();
  EXPECT_FALSE(q.join(30ms));
  EXPECT_GE(Clock::now() - t0, 30ms);
  EXPECT_FALSE(q.join_until(std::chrono::system_clock::now() + 10ms));
  Child consumer([&] {
    for (std::int64_t want = 5; want >= 0; --want) {
      EXPECT_EQ(q.get_with_priority(5s), std::make_pair(5 - want, want)) << "lowest priority first";
      q.task_done();
    }
  });
  EXPECT_TRUE(q.join_until(std::chrono::steady_clock::now() + 20s));
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
  EXPECT_THROW(seg.priority_queue<std::int64_t>("jobs", {.max_items = 256, .max_message = 8}), ipckit::TypeMismatch)
      << "a joinable priority queue is a kind of its own";
}

// A consumer SIGKILLed after get() returned and before task_done(): its
// task is abandoned, counted done once join()'s liveness pass notices.
TEST(JoinablePriorityQueue, AConsumerKilledBetweenGetAndTaskDoneDoesNotMakeJoinHang) {
  ScopedSegmentName n("jpq_dead_consumer");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = PriorityJobs::open(seg, 0);
  q.put(1, 10);
  q.put(2, 20);
  Signal got;
  Child consumer([&] {
    EXPECT_EQ(q.get(), 10);
    got.post();
    for (;;) ::pause();
  });
  ASSERT_TRUE(got.wait());
  consumer.kill(SIGKILL);
  ASSERT_EQ(consumer.wait_exit(), -SIGKILL);
  EXPECT_EQ(q.get(1s), 20);
  q.task_done();
  EXPECT_TRUE(q.join(10s)) << q.unfinished_tasks() << " unfinished";
  EXPECT_EQ(q.abandoned_tasks(), 1u);
  q.task_done();  // a late task_done() settles the abandoned task
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
}

// task_done() may come from another thread or process than the get(): the
// task is then charged to whichever lease holds one, so the totals stay exact
// and the getter's later death abandons nothing that was done.
TEST(JoinableQueue, TaskDoneFromAnotherProcessOrThreadThanTheGetKeepsTheCountExact) {
  ScopedSegmentName n("jq_handoff");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<int>("jobs");
  auto handoff = seg.queue<int>("handoff");
  for (int i = 0; i < 100; ++i) q.put(i);
  Signal done_getting;
  Child getter([&] {
    // Two threads get; neither marks anything done.
    std::thread t1([&] {
      for (int i = 0; i < 50; ++i) handoff.put(q.get(5s));
    });
    std::thread t2([&] {
      for (int i = 0; i < 50; ++i) handoff.put(q.get(5s));
    });
    t1.join();
    t2.join();
    done_getting.post();
    ::pause();  // killed later, with no task of its own left
  });
  ASSERT_TRUE(done_getting.wait());
  EXPECT_EQ(q.unfinished_tasks(), 100u);
  Child finisher([&] {
    std::thread t([&] {
      for (int i = 0; i < 50; ++i) (void)handoff.get(5s), q.task_done();
    });
    for (int i = 0; i < 50; ++i) (void)handoff.get(5s), q.task_done();
    t.join();
  });
  EXPECT_EQ(finisher.wait_exit(), 0);
  EXPECT_TRUE(q.join(2s));
  getter.kill(SIGKILL);
  EXPECT_EQ(getter.wait_exit(), -SIGKILL);
  q.put(1000);  // a join() now must see the new task, not a count bent by the death
  EXPECT_FALSE(q.join(100ms)) << "the getter's death was counted as finishing a task";
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  EXPECT_EQ(q.get_nowait(), 1000);
  q.task_done();
  EXPECT_TRUE(q.join(1s));
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
}
