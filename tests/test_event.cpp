// Event across real processes (and threads): Python's semantics, timeouts as
// lower bounds, waiters killed with SIGKILL while they wait.
//
// Readiness is reached through pipes, the primitives themselves, or by
// polling /proc until a waiter sleeps in the kernel, never by a bare sleep;
// every wait has a deadline so that a lost wake-up fails a test instead of
// hanging it.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::ScopedSegmentName;
using namespace ipckit::testing;
using Clock = std::chrono::steady_clock;

TEST(Event, SetClearAndIsSetReflectOneFlagInEveryProcess) {
  ScopedSegmentName n("ev_flag");
  auto seg = Segment::create(n.name, 1 << 20);
  auto e = seg.event("green");
  EXPECT_FALSE(e.is_set()) << "a new event starts cleared";
  e.set();
  EXPECT_TRUE(e.is_set());
  e.set();  // setting twice is harmless
  EXPECT_TRUE(e.is_set());
  Child child([&] {
    auto other = Segment::open(n.name).event("green");
    EXPECT_TRUE(other.is_set());
    other.clear();
    EXPECT_FALSE(other.is_set());
  });
  EXPECT_EQ(child.wait_exit(), 0);
  EXPECT_FALSE(e.is_set()) << "a clear in another process lowers the same flag";
  e.clear();
  EXPECT_FALSE(e.is_set());
  auto again = seg.event("green");
  e.set();
  EXPECT_TRUE(again.is_set()) << "a second handle names the same flag";
}

TEST(Event, WaitReturnsAtOnceWhenTheFlagIsSet) {
  ScopedSegmentName n("ev_set");
  auto e = Segment::create(n.name, 1 << 20).event("E");
  e.set();
  const auto t0 = Clock::now();
  e.wait();
  EXPECT_TRUE(e.wait(0ns));
  EXPECT_TRUE(e.wait(10s));
  EXPECT_TRUE(e.wait_until(Clock::now() - 1s)) << "a past deadline still reports a set flag";
  EXPECT_TRUE(e.wait_until(std::chrono::system_clock::now() + 10s));
  EXPECT_LT(Clock::now() - t0, 2s);
}

TEST(Event, TimedWaitReturnsFalseAfterAtLeastTheTimeout) {
  ScopedSegmentName n("ev_timeout");
  auto e = Segment::create(n.name, 1 << 20).event("E");
  auto t0 = Clock::now();
  EXPECT_FALSE(e.wait(50ms));
  EXPECT_GE(Clock::now() - t0, 50ms);

  t0 = Clock::now();
  EXPECT_FALSE(e.wait_until(t0 + 30ms));
  EXPECT_GE(Clock::now() - t0, 30ms);

  t0 = Clock::now();
  EXPECT_FALSE(e.wait_until(std::chrono::system_clock::now() + 20ms));
  EXPECT_GE(Clock::now() - t0, 19ms);  // 1 ms of slop for the clock conversion

  EXPECT_FALSE(e.wait(0ns));
  // A negative timeout means "do not wait"; run it in a child so that a
  // timeout mistaken for a huge unsigned one fails instead of hanging.
  Child child([&] {
    const auto c0 = Clock::now();
    EXPECT_FALSE(e.wait(-1s));
    EXPECT_FALSE(e.wait_until(Clock::now() - 1h));
    EXPECT_LT(Clock::now() - c0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
}

TEST(Event, TimedWaitReturnsTrueWhenAnotherProcessSetsIt) {
  ScopedSegmentName n("ev_remote");
  auto seg = Segment::create(n.name, 1 << 20);
  auto e = seg.event("E");
  const pid_t parent = ::getpid();
  Child setter([&] {
    // Set only once the parent really sleeps in its wait, so the wake-up
    // path (not the spinning one) is what is tested.
    EXPECT_TRUE(eventually([&] { return sleeps_in_futex(parent, parent); })) << "the waiter never slept";
    Segment::open(n.name).event("E").set();
  });
  const auto t0 = Clock::now();
  EXPECT_TRUE(e.wait(20s));
  EXPECT_LT(Clock::now() - t0, 15s);
  EXPECT_TRUE(e.is_set());
  EXPECT_EQ(setter.wait_exit(), 0);
}

TEST(Event, ASetWakesEveryWaiterInEveryProcess) {
  ScopedSegmentName n("ev_all");
  auto seg = Segment::create(n.name, 1 << 20);
  auto e = seg.event("go");
  constexpr int kProcs = 4, kThreadsPerProc = 2, kLocalThreads = 2;
  Signal ready;
  std::vector<Child> kids;
  kids.reserve(kProcs);
  for (int p = 0; p < kProcs; ++p)
    kids.emplace_back([&] {
      std::atomic<int> woke{0};
      std::vector<std::thread> ts;
      for (int t = 0; t < kThreadsPerProc; ++t)
        ts.emplace_back([&] {
          ready.post();
          if (e.wait(20s)) ++woke;
        });
      for (auto& t : ts) t.join();
      EXPECT_EQ(woke.load(), kThreadsPerProc);
    });
  // Waiting threads of this process too (started after the forks).
  std::atomic<int> local_woke{0};
  std::vector<std::atomic<pid_t>> local_tids(kLocalThreads);
  std::vector<std::thread> local;
  for (int t = 0; t < kLocalThreads; ++t)
    local.emplace_back([&, t] {
      local_tids[t] = static_cast<pid_t>(::gettid());
      if (e.wait(20s)) ++local_woke;
    });
  // No ASSERT before the set(): this process's waiting threads must be joined.
  EXPECT_TRUE(ready.wait_n(kProcs * kThreadsPerProc));
  for (auto& k : kids) EXPECT_TRUE(asleep(k)) << "child " << k.pid() << " never slept";
  for (auto& tid : local_tids)
    EXPECT_TRUE(eventually([&] { return tid.load() != 0 && sleeps_in_futex(::getpid(), tid.load()); }));
  e.set();
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(15s), 0);
  for (auto& t : local) t.join();
  EXPECT_EQ(local_woke.load(), kLocalThreads);
}

TEST(Event, AWaiterKilledWhileWaitingDoesNotCostTheLivingWaitersTheirWakeUp) {
  ScopedSegmentName n("ev_killed");
  auto seg = Segment::create(n.name, 1 << 20);
  auto e = seg.event("E");
  for (int round = 0; round < 3; ++round) {
    std::vector<Child> victims, living;
    victims.reserve(2);
    living.reserve(3);
    // Victims first, so that they sleep ahead of the living ones.
    for (int i = 0; i < 2; ++i) {
      victims.emplace_back([&] { e.wait(); });
      ASSERT_TRUE(asleep(victims.back())) << "round " << round;
    }
    for (int i = 0; i < 3; ++i) {
      living.emplace_back([&] { EXPECT_TRUE(e.wait(20s)); });
      ASSERT_TRUE(asleep(living.back())) << "round " << round;
    }
    for (auto& v : victims) {
      v.kill(SIGKILL);
      EXPECT_EQ(v.wait_exit(), -SIGKILL);
    }
    e.set();
    for (auto& l : living) EXPECT_EQ(l.wait_exit(15s), 0) << "round " << round;
    e.clear();
  }
  // Dead sleepers leave nothing behind that makes a wait misbehave.
  const auto t0 = Clock::now();
  EXPECT_FALSE(e.wait(30ms));
  EXPECT_GE(Clock::now() - t0, 30ms);
  e.set();
  EXPECT_TRUE(e.wait(0ns));
}
