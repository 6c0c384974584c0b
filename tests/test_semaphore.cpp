// Semaphore and BoundedSemaphore across real processes (and threads): Python's
// semantics, timeouts as lower bounds, misuse, holders and waiters killed with
// SIGKILL, holder tracking.
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

TEST(Semaphore, StartsWithItsInitialValueAndTryAcquireTakesUnitsUntilNoneAreLeft) {
  ScopedSegmentName n("sem_initial");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("slots", 3);
  EXPECT_EQ(s.value(), 3u);
  EXPECT_EQ(s.initial_value(), 3u);
  EXPECT_FALSE(s.bounded());
  EXPECT_FALSE(s.tracks_holders());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_TRUE(s.try_acquire());
  EXPECT_FALSE(s.try_acquire());
  EXPECT_EQ(s.value(), 0u);
  Child child([&] {
    auto other = Segment::open(n.name).semaphore("slots", 3);
    EXPECT_FALSE(other.try_acquire());
    other.release(2);
  });
  EXPECT_EQ(child.wait_exit(), 0);
  EXPECT_EQ(s.value(), 2u) << "units released in another process are seen here";
  s.release();
  EXPECT_EQ(s.value(), 3u);
  s.release();  // a plain semaphore may go above its initial value (as Python's)
  EXPECT_EQ(s.value(), 4u);
  auto b = seg.bounded_semaphore("bounded", 2);
  EXPECT_TRUE(b.bounded());
  EXPECT_EQ(b.value(), 2u);
}

TEST(Semaphore, ReopeningDoesNotResetTheCount) {
  ScopedSegmentName n("sem_reopen");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 3);
  ASSERT_TRUE(s.try_acquire());
  EXPECT_EQ(seg.semaphore("S", 3).value(), 2u);
  Child child([&] { EXPECT_EQ(Segment::open(n.name).semaphore("S", 3).value(), 2u); });
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Semaphore, TimedAcquireOnAnEmptySemaphoreReturnsFalseAfterAtLeastTheTimeout) {
  ScopedSegmentName n("sem_timeout");
  auto s = Segment::create(n.name, 1 << 20).semaphore("S", 0);
  auto t0 = Clock::now();
  EXPECT_FALSE(s.acquire(50ms));
  EXPECT_GE(Clock::now() - t0, 50ms);
  EXPECT_FALSE(s.acquire(0ns));
  EXPECT_EQ(s.value(), 0u);
  Child child([&] {
    const auto c0 = Clock::now();
    EXPECT_FALSE(s.acquire(-1s)) << "a negative timeout means do not wait";
    EXPECT_LT(Clock::now() - c0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
  s.release();
  EXPECT_TRUE(s.acquire(0ns));
  s.release();
  EXPECT_TRUE(s.acquire(10s));
  EXPECT_EQ(s.value(), 0u);
}

TEST(Semaphore, ReleaseOfNWakesNSleepingWaitersInOtherProcesses) {
  ScopedSegmentName n("sem_release_n");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 0);
  Signal got;
  std::vector<Child> kids;
  kids.reserve(5);
  for (int i = 0; i < 5; ++i)
    kids.emplace_back([&] {
      EXPECT_TRUE(s.acquire(20s));
      got.post();
    });
  for (auto& k : kids) ASSERT_TRUE(asleep(k));
  s.release(3);
  EXPECT_TRUE(got.wait_n(3)) << "release(3) must let three waiters through";
  EXPECT_FALSE(got.wait(100ms)) << "only three units were released";
  EXPECT_EQ(s.value(), 0u);
  s.release(2);
  EXPECT_TRUE(got.wait_n(2));
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(15s), 0);
  EXPECT_EQ(s.value(), 0u);
}

TEST(Semaphore, AtMostKHoldersAreInsideTheGuardedSectionAcrossEightProcesses) {
  ScopedSegmentName n("sem_k");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr std::uint32_t kK = 3;
  auto s = seg.semaphore("slots", kK);
  auto lock = seg.lock("stats");
  auto inside = seg.value<std::int32_t>("inside");
  auto max_inside = seg.value<std::int32_t>("max_inside");
  auto entries = seg.value<std::int32_t>("entries");
  auto section = [&] {
    {
      std::lock_guard g(lock);
      inside.set(inside.get() + 1);
      max_inside.set(std::max(max_inside.get(), inside.get()));
      entries.set(entries.get() + 1);
    }
    std::this_thread::sleep_for(200us);  // the "work": lets others pile up at the door
    std::lock_guard g(lock);
    inside.set(inside.get() - 1);
  };
  std::vector<Child> kids;
  kids.reserve(8);
  for (int i = 0; i < 8; ++i)
    kids.emplace_back([&, i] {
      for (int k = 0; k < 60; ++k) {
        if (i % 2 == 0) {
          ipckit::SemaphoreGuard g(s);
          section();
        } else {
          std::lock_guard g(s);
          section();
        }
      }
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(60s), 0);
  EXPECT_EQ(entries.get(), 8 * 60);
  EXPECT_LE(max_inside.get(), static_cast<std::int32_t>(kK)) << "more holders than units at once";
  EXPECT_GE(max_inside.get(), 2) << "the section never had company: the test proves little";
  EXPECT_EQ(inside.get(), 0);
  EXPECT_EQ(s.value(), kK) << "every unit came back";
  RecordProperty("max_concurrency", max_inside.get());
}

TEST(Semaphore, AtMostKHoldersAreInsideTheGuardedSectionAcrossThreads) {
  ScopedSegmentName n("sem_k_threads");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("slots", 2);
  std::atomic<int> inside{0}, max_inside{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 6; ++i)
    ts.emplace_back([&] {
      for (int k = 0; k < 300; ++k) {
        ASSERT_TRUE(s.acquire(20s));
        const int now = ++inside;
        int seen = max_inside.load();
        while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();
        --inside;
        s.release();
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_LE(max_inside.load(), 2);
  EXPECT_EQ(s.value(), 2u);
}

// A semaphore of one unit used as a mutex by four threads in each of two
// processes: every acquire is matched by a release, so the unit must be there
// at the end, and nobody may time out on the way.
TEST(Semaphore, UnitsAreNeitherLostNorInventedUnderContentionFromThreadsAndProcesses) {
  ScopedSegmentName n("sem_contention");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 1);
  auto failures = seg.value<std::int32_t>("failures");
  auto inside = seg.array<std::int32_t>("inside", 2);  // now, most ever
  auto run = [&] {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&] {
        for (int k = 0; k < 2000; ++k) {
          if (!s.acquire(5s)) {
            std::lock_guard g(failures.get_lock());
            failures.set(failures.get() + 1);
            return;
          }
          // Guarded by the semaphore alone; the yield makes the others
          // give up spinning and sleep, so releases take the wake-up path.
          inside[0] = inside[0] + 1;
          inside[1] = std::max(inside[1], inside[0]);
          std::this_thread::yield();
          inside[0] = inside[0] - 1;
          s.release();
        }
      });
    for (auto& t : ts) t.join();
  };
  std::vector<Child> kids;
  kids.reserve(2);
  for (int p = 0; p < 2; ++p) kids.emplace_back(run);
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(90s), 0);
  EXPECT_EQ(failures.get(), 0) << "an acquire timed out: a unit went missing";
  EXPECT_EQ(s.value(), 1u) << "the one unit is not back (or was duplicated)";
  EXPECT_EQ(inside[1], 1) << "two holders of a one-unit semaphore at once";
}

TEST(Semaphore, BoundedSemaphoreRefusesAReleaseAboveItsInitialValue) {
  ScopedSegmentName n("sem_bounded");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.bounded_semaphore("pool_slots", 2);
  try {
    b.release();
    FAIL() << "expected TooManyReleases";
  } catch (const ipckit::TooManyReleases& e) {
    EXPECT_NE(std::string(e.what()).find("pool_slots"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b.value(), 2u);
  ASSERT_TRUE(b.try_acquire());
  EXPECT_THROW(b.release(2), ipckit::TooManyReleases) << "2 would lift it to 3";
  EXPECT_EQ(b.value(), 1u) << "a refused release changes nothing";
  b.release();
  EXPECT_EQ(b.value(), 2u);
  ASSERT_TRUE(b.try_acquire());
  ASSERT_TRUE(b.try_acquire());
  b.release(2);
  EXPECT_EQ(b.value(), 2u);
  Child child([&] { EXPECT_THROW(b.release(), ipckit::TooManyReleases); });
  EXPECT_EQ(child.wait_exit(), 0);
  EXPECT_EQ(b.value(), 2u);
}

TEST(Semaphore, ReleaseOfZeroThrowsInvalidArgument) {
  ScopedSegmentName n("sem_zero");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 1);
  auto b = seg.bounded_semaphore("B", 1);
  auto t = seg.semaphore("T", 1, {.track_holders = true});
  EXPECT_THROW(s.release(0), ipckit::InvalidArgument);
  ASSERT_TRUE(b.try_acquire());
  EXPECT_THROW(b.release(0), ipckit::InvalidArgument);
  ASSERT_TRUE(t.try_acquire());
  EXPECT_THROW(t.release(0), ipckit::InvalidArgument);
  EXPECT_EQ(s.value(), 1u);
  EXPECT_EQ(b.value(), 0u);
  EXPECT_EQ(t.value(), 0u);
  b.release();
  t.release();
}

TEST(Semaphore, OpeningWithAnotherInitialValueThrowsTypeMismatch) {
  ScopedSegmentName n("sem_initial_mismatch");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.semaphore("S", 3);
  EXPECT_THROW(seg.semaphore("S", 4), ipckit::TypeMismatch);
  EXPECT_THROW(seg.semaphore("S", 0), ipckit::TypeMismatch);
  seg.bounded_semaphore("B", 2);
  EXPECT_THROW(seg.bounded_semaphore("B", 1), ipckit::TypeMismatch);
  Child child([&] {
    auto other = Segment::open(n.name);
    EXPECT_THROW(other.semaphore("S", 2), ipckit::TypeMismatch);
    EXPECT_NO_THROW(other.semaphore("S", 3));
  });
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Semaphore, SemaphoreAndBoundedSemaphoreAreDifferentKinds) {
  ScopedSegmentName n("sem_kinds");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.semaphore("S", 2);
  seg.bounded_semaphore("B", 2);
  EXPECT_THROW(seg.bounded_semaphore("S", 2), ipckit::TypeMismatch);
  EXPECT_THROW(seg.semaphore("B", 2), ipckit::TypeMismatch);
  EXPECT_THROW(seg.event("S"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.lock("B"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.barrier("S", 2), ipckit::TypeMismatch);
  seg.event("E");
  EXPECT_THROW(seg.semaphore("E", 0), ipckit::TypeMismatch);
}

TEST(Semaphore, WorksWithTheStandardGuardsAndSemaphoreGuard) {
  ScopedSegmentName n("sem_guards");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 1);
  auto l = seg.lock("L");
  {
    std::lock_guard g(s);
    EXPECT_EQ(s.value(), 0u);
    EXPECT_FALSE(s.try_lock());
  }
  EXPECT_EQ(s.value(), 1u);
  {
    ipckit::SemaphoreGuard g(s);
    EXPECT_EQ(s.value(), 0u);
  }
  EXPECT_EQ(s.value(), 1u);
  {
    std::unique_lock u(s, std::try_to_lock);
    EXPECT_TRUE(u.owns_lock());
    std::unique_lock v(s, std::try_to_lock);
    EXPECT_FALSE(v.owns_lock());
  }
  EXPECT_EQ(s.value(), 1u);
  {
    std::scoped_lock both(s, l);
    EXPECT_EQ(s.value(), 0u);
    EXPECT_TRUE(l.held_by_me());
  }
  EXPECT_EQ(s.value(), 1u);
  EXPECT_FALSE(l.locked());
}

TEST(Semaphore, AWaiterKilledWhileWaitingDoesNotCostTheOthersAUnit) {
  ScopedSegmentName n("sem_killed_waiter");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 0);
  std::vector<Child> victims, living;
  victims.reserve(2);
  living.reserve(2);
  for (int i = 0; i < 2; ++i) {
    victims.emplace_back([&] { s.acquire(); });
    ASSERT_TRUE(asleep(victims.back()));
  }
  for (int i = 0; i < 2; ++i) {
    living.emplace_back([&] { EXPECT_TRUE(s.acquire(20s)); });
    ASSERT_TRUE(asleep(living.back()));
  }
  for (auto& v : victims) {
    v.kill(SIGKILL);
    EXPECT_EQ(v.wait_exit(), -SIGKILL);
  }
  s.release(2);
  for (auto& l : living) EXPECT_EQ(l.wait_exit(15s), 0);
  EXPECT_EQ(s.value(), 0u);
}

TEST(Semaphore, WithoutHolderTrackingAUnitTakenByAKilledProcessIsLost) {
  ScopedSegmentName n("sem_untracked");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 1);
  Signal held;
  Child holder([&] {
    s.acquire();
    held.post();
    ::pause();
  });
  ASSERT_TRUE(held.wait());
  holder.kill(SIGKILL);
  EXPECT_EQ(holder.wait_exit(), -SIGKILL);
  EXPECT_EQ(s.value(), 0u);
  const auto t0 = Clock::now();
  EXPECT_FALSE(s.acquire(300ms)) << "units have no owner unless tracking is asked for";
  EXPECT_GE(Clock::now() - t0, 300ms);
  EXPECT_EQ(s.reclaimed(), 0u);
  EXPECT_EQ(s.value(), 0u);
}

TEST(Semaphore, WithHolderTrackingAUnitTakenByAKilledProcessComesBack) {
  ScopedSegmentName n("sem_tracked");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 1, {.track_holders = true});
  EXPECT_TRUE(s.tracks_holders());
  for (int round = 0; round < 5; ++round) {
    Signal held;
    Child holder([&] {
      s.acquire();
      held.post();
      ::pause();
    });
    ASSERT_TRUE(held.wait()) << "round " << round;
    holder.kill(SIGKILL);
    EXPECT_EQ(holder.wait_exit(), -SIGKILL);
    const auto t0 = Clock::now();
    ASSERT_TRUE(s.acquire(5s)) << "round " << round << ": the dead holder's unit never came back";
    EXPECT_LT(Clock::now() - t0, 1500ms) << "round " << round;
    EXPECT_EQ(s.reclaimed(), static_cast<std::uint64_t>(round + 1));
    s.release();
    EXPECT_EQ(s.value(), 1u);
  }
}

TEST(Semaphore, WithHolderTrackingASleepingWaiterGetsTheUnitOfAHolderKilledMeanwhile) {
  ScopedSegmentName n("sem_tracked_waiter");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.bounded_semaphore("S", 2, {.track_holders = true});
  Signal held;
  Child holder([&] {
    s.acquire();
    s.acquire();  // both units, by one holder
    held.post();
    ::pause();
  });
  ASSERT_TRUE(held.wait());
  Child waiter([&] {
    ASSERT_TRUE(s.acquire(10s));
    s.release();
  });
  ASSERT_TRUE(asleep(waiter));
  holder.kill(SIGKILL);
  const auto t0 = Clock::now();
  EXPECT_EQ(waiter.wait_exit(10s), 0);
  EXPECT_LT(Clock::now() - t0, 2s) << "the waiter should get the dead holder's unit within about a second";
  EXPECT_EQ(holder.wait_exit(), -SIGKILL);
  EXPECT_EQ(s.reclaimed(), 2u);
  EXPECT_EQ(s.value(), 2u) << "both units of the dead holder are back";
}

TEST(Semaphore, OnATrackedSemaphoreAReleaseByAThreadHoldingNoUnitThrowsNotOwner) {
  ScopedSegmentName n("sem_not_owner");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 2, {.track_holders = true});
  EXPECT_THROW(s.release(), ipckit::NotOwner) << "nobody holds a unit";
  EXPECT_EQ(s.value(), 2u);
  ASSERT_TRUE(s.try_acquire());
  std::thread other([&] { EXPECT_THROW(s.release(), ipckit::NotOwner) << "another thread's unit"; });
  other.join();
  EXPECT_THROW(s.release(2), ipckit::NotOwner) << "the caller holds one unit, not two";
  EXPECT_EQ(s.value(), 1u);
  Child child([&] { EXPECT_THROW(s.release(), ipckit::NotOwner) << "another process's unit"; });
  EXPECT_EQ(child.wait_exit(), 0);
  EXPECT_EQ(s.value(), 1u);
  s.release();
  EXPECT_EQ(s.value(), 2u);
  EXPECT_THROW(s.release(), ipckit::NotOwner) << "the unit was already given back";
  {
    ipckit::SemaphoreGuard g(s);  // the guard works with tracking too
    EXPECT_EQ(s.value(), 1u);
  }
  EXPECT_EQ(s.value(), 2u);
  EXPECT_EQ(s.reclaimed(), 0u);
}
