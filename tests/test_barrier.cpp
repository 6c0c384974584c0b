// Barrier across real processes (and threads): Python's semantics, reuse
// across phases, timeouts, abort/reset, parties killed with SIGKILL.
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
  for (int i = 0; i < kN; ++i)
    kids.emplace_back([&, i] { index[i] = static_cast<std::int32_t>(b.wait()); });
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
