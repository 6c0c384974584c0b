// Barrier across real processes (and threads): Python's semantics, reuse
// across phases, timeouts, abort/reset, parties killed with SIGKILL, the
// action (Python's action=, a party killed inside it) and the default timeout.
//
// Readiness is reached through pipes, the primitives themselves, or by
// polling /proc until a waiter sleeps in the kernel, never by a bare sleep;
// every wait has a deadline so that a lost wake-up fails a test instead of
// hanging it.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
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

TEST(Barrier, ArrivalIndicesAcrossNProcessesAreAPermutation) {
  ScopedSegmentName n("bar_perm");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr int kN = 5;
  auto b = seg.barrier("start", kN);
  EXPECT_EQ(b.parties(), static_cast<std::uint32_t>(kN));
  EXPECT_FALSE(b.broken());
  auto index = seg.array<std::int32_t>("index", kN);
  std::vector<Child> kids;
  kids.reserve(kN);
  for (int i = 0; i < kN; ++i) kids.emplace_back([&, i] { index[i] = static_cast<std::int32_t>(b.wait()); });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(15s), 0);
  std::vector<std::int32_t> got(index.begin(), index.end());
  std::sort(got.begin(), got.end());
  std::vector<std::int32_t> want(kN);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(got, want);
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, IsReusedAcrossManyPhasesAndNobodyLeavesAPhaseEarly) {
  ScopedSegmentName n("bar_phases");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr int kN = 4, kPhases = 100;
  auto b = seg.barrier("B", kN);
  auto arrivals = seg.array<std::int32_t>("arrivals", kPhases);
  auto index = seg.array<std::int32_t>("index", kN * kPhases);
  std::vector<Child> kids;
  kids.reserve(kN);
  for (int i = 0; i < kN; ++i)
    kids.emplace_back([&, i] {
      for (int p = 0; p < kPhases; ++p) {
        {
          std::lock_guard g(arrivals.get_lock());
          arrivals[p] = arrivals[p] + 1;
        }
        index[p * kN + i] = static_cast<std::int32_t>(b.wait(10s));
        std::lock_guard g(arrivals.get_lock());
        EXPECT_EQ(arrivals[p], kN) << "left phase " << p << " before everyone arrived";
        if (::testing::Test::HasFailure()) return;
      }
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(60s), 0);
  for (int p = 0; p < kPhases; ++p) {
    std::vector<std::int32_t> got(index.begin() + p * kN, index.begin() + (p + 1) * kN);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::int32_t>{0, 1, 2, 3})) << "phase " << p;
  }
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, ThreadsOfOneProcessAreCountedAsParties) {
  ScopedSegmentName n("bar_threads");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr int kN = 3, kPhases = 30;
  auto b = seg.barrier("B", kN);
  std::vector<std::vector<std::uint32_t>> index(kPhases, std::vector<std::uint32_t>(kN, 99));
  std::vector<std::thread> ts;
  for (int t = 0; t < kN; ++t)
    ts.emplace_back([&, t] {
      for (int p = 0; p < kPhases; ++p) {
        try {
          index[p][t] = b.wait(10s);
        } catch (const ipckit::BrokenBarrier&) {
          return;
        }
      }
    });
  for (auto& t : ts) t.join();
  for (int p = 0; p < kPhases; ++p) {
    std::sort(index[p].begin(), index[p].end());
    EXPECT_EQ(index[p], (std::vector<std::uint32_t>{0, 1, 2})) << "phase " << p;
  }
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, ATimedOutWaitBreaksItForTheTimerAndTheOthers) {
  ScopedSegmentName n("bar_timeout");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 3);
  Child other([&] {
    const auto t0 = Clock::now();
    EXPECT_THROW(b.wait(), ipckit::BrokenBarrier);
    EXPECT_LT(Clock::now() - t0, 8s);
  });
  ASSERT_TRUE(eventually([&] { return b.n_waiting() == 1; }));
  const auto t0 = Clock::now();
  EXPECT_THROW(b.wait(100ms), ipckit::BrokenBarrier);
  EXPECT_GE(Clock::now() - t0, 100ms);
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(other.wait_exit(10s), 0);
  const auto t1 = Clock::now();
  EXPECT_THROW(b.wait(), ipckit::BrokenBarrier) << "a broken barrier stays broken";
  EXPECT_THROW(b.wait(5s), ipckit::BrokenBarrier);
  EXPECT_LT(Clock::now() - t1, 2s) << "and says so at once";
}

TEST(Barrier, AbortBreaksItForCurrentAndLaterWaiters) {
  ScopedSegmentName n("bar_abort");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 3);
  std::vector<Child> kids;
  kids.reserve(2);
  for (int i = 0; i < 2; ++i) kids.emplace_back([&] { EXPECT_THROW(b.wait(), ipckit::BrokenBarrier); });
  ASSERT_TRUE(eventually([&] { return b.n_waiting() == 2; }));
  for (auto& k : kids) ASSERT_TRUE(asleep(k));
  b.abort();
  EXPECT_TRUE(b.broken());
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(10s), 0);
  EXPECT_THROW(b.wait(), ipckit::BrokenBarrier);
  Child later([&] { EXPECT_THROW(b.wait(5s), ipckit::BrokenBarrier); });
  EXPECT_EQ(later.wait_exit(10s), 0);
}

TEST(Barrier, ResetMakesItUsableAgainAndBreaksTheCurrentWaiters) {
  ScopedSegmentName n("bar_reset");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 2);
  Child waiting([&] { EXPECT_THROW(b.wait(), ipckit::BrokenBarrier); });
  ASSERT_TRUE(eventually([&] { return b.n_waiting() == 1; }));
  b.reset();
  EXPECT_EQ(waiting.wait_exit(10s), 0) << "reset() releases the current waiters with BrokenBarrier";
  EXPECT_FALSE(b.broken());
  EXPECT_EQ(b.n_waiting(), 0u);

  b.abort();
  EXPECT_TRUE(b.broken());
  b.reset();
  EXPECT_FALSE(b.broken());
  auto index = seg.value<std::int32_t>("index", -1);
  Child partner([&] { index.set(static_cast<std::int32_t>(b.wait(10s))); });
  const std::uint32_t mine = b.wait(10s);
  EXPECT_EQ(partner.wait_exit(), 0);
  EXPECT_EQ(mine + static_cast<std::uint32_t>(index.get()), 1u) << "indices 0 and 1";
  EXPECT_FALSE(b.broken());
}

// reset() returns the barrier to its initial state: a process that waited in
// the round that reset() ended, and has exited since, is no party of the
// next round, however long the new parties sleep before the last arrives.
TEST(Barrier, AfterResetAProcessThatLeftTheResetRoundDoesNotBreakTheNextOne) {
  ScopedSegmentName n("bar_reset_left");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 2);
  Child left([&] { EXPECT_THROW(b.wait(), ipckit::BrokenBarrier); });
  ASSERT_TRUE(eventually([&] { return b.n_waiting() == 1; }));
  b.reset();
  ASSERT_EQ(left.wait_exit(10s), 0);  // it got BrokenBarrier and is gone now
  Child first([&] { EXPECT_NO_THROW(b.wait(10s)); });
  ASSERT_TRUE(eventually([&] { return b.n_waiting() == 1; }));
  ASSERT_TRUE(asleep(first));
  // Give the sleeper several of its liveness checks before arriving: not a
  // synchronisation, the point is that time passes while it sleeps.
  std::this_thread::sleep_for(150ms);
  EXPECT_NO_THROW(b.wait(10s));
  EXPECT_EQ(first.wait_exit(15s), 0);
  EXPECT_FALSE(b.broken());
}

TEST(Barrier, PartiesOutOfRangeThrowInvalidArgument) {
  ScopedSegmentName n("bar_range");
  auto seg = Segment::create(n.name, 1 << 20);
  EXPECT_THROW(seg.barrier("zero", 0), ipckit::InvalidArgument);
  EXPECT_THROW(seg.barrier("many", 257), ipckit::InvalidArgument);
  EXPECT_EQ(seg.barrier("max", 256).parties(), 256u);
  auto one = seg.barrier("one", 1);
  EXPECT_EQ(one.wait(), 0u) << "a barrier of one never waits";
  EXPECT_EQ(one.wait(1s), 0u);
}

TEST(Barrier, OpeningWithOtherPartiesThrowsTypeMismatch) {
  ScopedSegmentName n("bar_mismatch");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.barrier("B", 3);
  EXPECT_THROW(seg.barrier("B", 4), ipckit::TypeMismatch);
  EXPECT_EQ(seg.barrier("B", 3).parties(), 3u);
  EXPECT_THROW(seg.event("B"), ipckit::TypeMismatch);
  Child child([&] { EXPECT_THROW(Segment::open(n.name).barrier("B", 2), ipckit::TypeMismatch); });
  EXPECT_EQ(child.wait_exit(), 0);
}

// Four parties complete phase 1; one is then killed before it arrives in
// phase 2. The three others, already asleep in phase 2, must get
// BrokenBarrier within a bound instead of hanging.
TEST(Barrier, APartyKilledBeforeArrivingInPhaseTwoBreaksItForTheWaitingOthers) {
  ScopedSegmentName n("bar_killed");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 4);
  Signal phase1;
  Child victim([&] {
    b.wait(10s);
    phase1.post();
    ::pause();
  });
  std::vector<Child> others;
  others.reserve(3);
  for (int i = 0; i < 3; ++i)
    others.emplace_back([&] {
      b.wait(10s);
      EXPECT_THROW(b.wait(), ipckit::BrokenBarrier);
    });
  ASSERT_TRUE(phase1.wait());
  ASSERT_TRUE(eventually([&] { return b.n_waiting() == 3; }));
  for (auto& o : others) ASSERT_TRUE(asleep(o));
  victim.kill(SIGKILL);
  const auto t0 = Clock::now();
  for (auto& o : others) EXPECT_EQ(o.wait_exit(5s), 0);
  EXPECT_LT(Clock::now() - t0, 2s) << "the dead party should be noticed within about 25 ms";
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
}

// As above, but the others arrive in phase 2 only after the party died.
TEST(Barrier, APartyKilledBeforeArrivingInPhaseTwoBreaksItForLaterArrivals) {
  ScopedSegmentName n("bar_killed_late");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 3);
  Signal phase1, go;
  Child victim([&] {
    b.wait(10s);
    phase1.post();
    ::pause();
  });
  std::vector<Child> others;
  others.reserve(2);
  for (int i = 0; i < 2; ++i)
    others.emplace_back([&] {
      b.wait(10s);
      ASSERT_TRUE(go.wait());
      const auto t0 = Clock::now();
      EXPECT_THROW(b.wait(), ipckit::BrokenBarrier);
      EXPECT_LT(Clock::now() - t0, 2s);
    });
  ASSERT_TRUE(phase1.wait());
  victim.kill(SIGKILL);
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  go.post(2);
  for (auto& o : others) EXPECT_EQ(o.wait_exit(10s), 0);
  EXPECT_TRUE(b.broken());
}

// ---------------------------------------------------------------- action= and timeout=

namespace {
std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}
}  // namespace

// CPython's test_action: the action runs once per phase, in one party, and
// no party leaves wait() before it has run. Here: in the last to arrive.
TEST(BarrierAction, RunsOncePerPhaseInTheLastArrivalBeforeAnyPartyIsReleased) {
  ScopedSegmentName n("bar_action");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr int kN = 4, kPhases = 30;
  auto runs = seg.value<std::int32_t>("runs");
  auto runner = seg.array<std::int32_t>("runner", kPhases);
  const auto action = [&] {
    const std::int32_t r = runs.get();
    if (r < kPhases) runner[r] = ::getpid();
    // Widens the window in which a party released too early would see the
    // count not yet bumped (not a synchronisation).
    if (r % 5 == 0) std::this_thread::sleep_for(2ms);
    runs.set(r + 1);
  };
  std::vector<Child> kids;
  kids.reserve(kN);
  for (int i = 0; i < kN; ++i)
    kids.emplace_back([&] {
      auto b = Segment::open(n.name).barrier("B", kN, {.action = action});
      for (int p = 0; p < kPhases; ++p) {
        const std::uint32_t index = b.wait(10s);
        ASSERT_EQ(runs.get(), p + 1) << "released in phase " << p << " before the action ran, or it ran twice";
        if (index == kN - 1) EXPECT_EQ(runner[p], ::getpid()) << "the last arrival runs the action";
        if (index != kN - 1) EXPECT_NE(runner[p], ::getpid());
      }
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(60s), 0);
  EXPECT_EQ(runs.get(), kPhases);
}

// Python: an exception in the action goes on in the thread that ran it, and
// the barrier is broken for everyone else.
TEST(BarrierAction, AnExceptionInTheActionReachesItsRunnerAndBreaksTheBarrierForTheOthers) {
  ScopedSegmentName n("bar_action_throws");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr int kN = 3;
  auto b = seg.barrier("B", kN, {.action = [] { throw std::runtime_error("the action failed"); }});
  std::vector<Child> kids;
  kids.reserve(kN);
  for (int i = 0; i < kN; ++i)
    kids.emplace_back([&] {
      try {
        b.wait(10s);
      } catch (const ipckit::BrokenBarrier& e) {
        EXPECT_NE(std::string(e.what()).find("action threw"), std::string::npos) << e.what();
        std::_Exit(21);
      } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "the action failed");
        std::_Exit(20);
      }
    });
  std::multiset<int> codes;
  for (auto& k : kids) codes.insert(k.wait_exit());
  EXPECT_EQ(codes, (std::multiset<int>{20, 21, 21}));
  EXPECT_TRUE(b.broken());
  EXPECT_EQ(b.n_waiting(), 0u);
  EXPECT_THROW(b.wait(1s), ipckit::BrokenBarrier);
  b.reset();
  EXPECT_FALSE(b.broken());
}

// The party running the action is SIGKILLed inside it, holding the
// barrier's internal lock: the others, in untimed waits, must not hang.
TEST(BarrierAction, APartyKilledInsideTheActionBreaksTheBarrierForTheOthersWithinABound) {
  ScopedSegmentName n("bar_action_killed");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr int kN = 4;
  auto runner = seg.value<std::int32_t>("runner");
  Signal in_action;
  auto b = seg.barrier("B", kN, {.action = [&] {
                         runner.set(::getpid());
                         in_action.post();
                         ::pause();
                       }});
  auto broken_after_kill_ns = seg.array<std::int64_t>("broken_at", kN);
  auto kill_ns = seg.value<std::int64_t>("kill_ns");
  std::vector<Child> kids;
  kids.reserve(kN);
  for (int i = 0; i < kN; ++i)
    kids.emplace_back([&, i] {
      const std::string what = what_of([&] { b.wait(); });
      broken_after_kill_ns[i] = now_ns() - kill_ns.get();
      EXPECT_NE(what.find("the party running its action died"), std::string::npos) << what;
    });
  ASSERT_TRUE(in_action.wait(20s));
  const pid_t victim = runner.get();
  ASSERT_TRUE(eventually([&] {
    return std::all_of(kids.begin(), kids.end(), [&](const Child& k) { return k.pid() == victim || asleep(k); });
  }));
  kill_ns.set(now_ns());
  ::kill(victim, SIGKILL);
  std::int64_t slowest = 0;
  for (int i = 0; i < kN; ++i) {
    if (kids[i].pid() == victim) {
      EXPECT_EQ(kids[i].wait_exit(), -SIGKILL);
      continue;
    }
    EXPECT_EQ(kids[i].wait_exit(10s), 0);
    slowest = std::max(slowest, broken_after_kill_ns[i]);
  }
  EXPECT_LT(slowest, std::chrono::nanoseconds(3s).count()) << "the dead runner should be noticed within ~25 ms";
  std::printf("BrokenBarrier reached the slowest survivor %.1f ms after the kill\n", slowest / 1e6);
  EXPECT_TRUE(b.broken());
  EXPECT_TRUE(b.reset(5s)) << "the dead runner's lock is taken over";
  EXPECT_FALSE(b.broken());
}

// A wait whose time runs out while the action runs cannot be held back (it
// keeps its deadline) and cannot pass (the action is not done): it breaks
// the round, for every party of it, the action's runner included.
TEST(BarrierAction, AWaitTimingOutDuringASlowActionBreaksTheRoundForAllItsParties) {
  ScopedSegmentName n("bar_action_slow");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 3);
  Signal in_action, finish;
  constexpr auto kTimeout = 4s;
  std::vector<Child> early;
  early.reserve(2);
  for (int i = 0; i < 2; ++i)
    early.emplace_back([&] {
      const auto t0 = Clock::now();
      EXPECT_THROW(b.wait(kTimeout), ipckit::BrokenBarrier);
      EXPECT_GE(Clock::now() - t0, kTimeout);
      EXPECT_LT(Clock::now() - t0, kTimeout + 2s) << "the deadline is kept while the action holds the lock";
    });
  ASSERT_TRUE(eventually([&] { return b.n_waiting() == 2; }));
  Child last([&] {
    auto mine = Segment::open(n.name).barrier("B", 3, {.action = [&] {
                                                in_action.post();
                                                EXPECT_TRUE(finish.wait(20s));
                                              }});
    const std::string what = what_of([&] { mine.wait(20s); });
    EXPECT_NE(what.find("a wait timed out"), std::string::npos) << what;
  });
  ASSERT_TRUE(in_action.wait(20s));
  for (auto& e : early) EXPECT_EQ(e.wait_exit(20s), 0);
  finish.post();
  EXPECT_EQ(last.wait_exit(20s), 0);
  EXPECT_TRUE(b.broken());
}

// CPython's test_default_timeout: one party is later than the barrier's
// default timeout, so the others' wait() breaks it.
TEST(BarrierTimeout, TheDefaultTimeoutBoundsWaitAndBreaksTheBarrier) {
  ScopedSegmentName n("bar_default_timeout");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr int kN = 3;
  constexpr auto kDefault = 300ms;
  auto b = seg.barrier("B", kN, {.timeout = kDefault});
  EXPECT_EQ(b.timeout(), std::optional<std::chrono::nanoseconds>(kDefault));
  EXPECT_EQ(seg.barrier("B", kN).timeout(), std::nullopt) << "options belong to the handle";
  Signal others_done;
  std::vector<Child> kids;
  kids.reserve(kN);
  for (int i = 0; i < kN; ++i)
    kids.emplace_back([&, i] {
      b.wait(10s);  // phase 1: everyone in time
      if (i == kN / 2) {
        ASSERT_TRUE(others_done.wait_n(kN - 1, 20s));  // late for phase 2
        EXPECT_THROW(b.wait(), ipckit::BrokenBarrier);
        return;
      }
      const auto t0 = Clock::now();
      EXPECT_THROW(b.wait(), ipckit::BrokenBarrier);
      EXPECT_GE(Clock::now() - t0, kDefault);
      EXPECT_LT(Clock::now() - t0, kDefault + 3s);
      others_done.post();
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(30s), 0);
  EXPECT_TRUE(b.broken());
}

TEST(BarrierTimeout, AnExplicitTimeoutOverridesTheDefaultOne) {
  ScopedSegmentName n("bar_explicit_timeout");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 2, {.timeout = 50ms});
  Child first([&] { EXPECT_NO_THROW(b.wait(20s)); });
  ASSERT_TRUE(eventually([&] { return b.n_waiting() == 1; }));
  // Later than the default timeout on purpose (the scenario, not a synchronisation).
  std::this_thread::sleep_for(300ms);
  EXPECT_NO_THROW(b.wait_until(std::chrono::system_clock::now() + 20s));
  EXPECT_EQ(first.wait_exit(), 0);
  EXPECT_FALSE(b.broken());
}

// reset() and leave() wait for the internal lock; their bounded forms give
// up in time (here it is held by a party stuck in its action) and change
// nothing, and take it over once its holder is dead.
TEST(Barrier, BoundedResetAndLeaveGiveUpBehindAHeldInternalLock) {
  ScopedSegmentName n("bar_bounded_reset");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.barrier("B", 1);
  Signal in_action;
  Child stuck([&] {
    auto mine = Segment::open(n.name).barrier("B", 1, {.action = [&] {
                                                in_action.post();
                                                ::pause();
                                              }});
    mine.wait();
  });
  ASSERT_TRUE(in_action.wait(20s));
  EXPECT_FALSE(b.try_reset());
  EXPECT_FALSE(b.try_leave());
  auto t0 = Clock::now();
  EXPECT_FALSE(b.reset(200ms));
  EXPECT_GE(Clock::now() - t0, 200ms);
  EXPECT_LT(Clock::now() - t0, 2200ms);
  t0 = Clock::now();
  EXPECT_FALSE(b.leave_until(Clock::now() + 100ms));
  EXPECT_LT(Clock::now() - t0, 2100ms);
  EXPECT_EQ(b.n_waiting(), 1u) << "a reset that gave up changed nothing";
  EXPECT_FALSE(b.broken());
  stuck.kill(SIGKILL);
  EXPECT_EQ(stuck.wait_exit(), -SIGKILL);
  EXPECT_TRUE(b.reset(10s));
  EXPECT_FALSE(b.broken());
  EXPECT_TRUE(b.leave(1s));
  EXPECT_EQ(b.wait(1s), 0u);
}
