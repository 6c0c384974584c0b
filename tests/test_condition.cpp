// Condition across real processes: Python's semantics, timeouts as lower
// bounds, binding to a named Lock/RLock, misuse, waiters and notifiers killed
// with SIGKILL.
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

TEST(Condition, WaitingWithoutHoldingTheLockThrowsNotOwner) {
  ScopedSegmentName n("cond_not_owner");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  EXPECT_THROW(c.wait(), ipckit::NotOwner);
  EXPECT_THROW(c.wait_for(10ms), ipckit::NotOwner);
  EXPECT_THROW(c.wait_until(Clock::now() + 10ms), ipckit::NotOwner);
  EXPECT_THROW(c.wait([] { return false; }), ipckit::NotOwner);
  EXPECT_THROW(c.wait_for(10ms, [] { return false; }), ipckit::NotOwner);
  {
    std::lock_guard g(c);
    std::thread t([&] { EXPECT_THROW(c.wait_for(10ms), ipckit::NotOwner) << "held by another thread"; });
    t.join();
    Child child([&] { EXPECT_THROW(c.wait_for(10ms), ipckit::NotOwner) << "held by another process"; });
    EXPECT_EQ(child.wait_exit(), 0);
  }
  auto l = seg.lock("L");
  auto cl = seg.condition("CL", l);
  EXPECT_THROW(cl.wait_for(10ms), ipckit::NotOwner);
  auto r = seg.rlock("R");
  auto cr = seg.condition("CR", r);
  EXPECT_THROW(cr.wait_for(10ms), ipckit::NotOwner);
  EXPECT_FALSE(l.locked());
  EXPECT_FALSE(r.locked());
}

TEST(Condition, TimedWaitWithoutANotificationReturnsFalseAfterAtLeastTheTimeoutHoldingTheLock) {
  ScopedSegmentName n("cond_timeout");
  auto seg = Segment::create(n.name, 1 << 20);
  auto l = seg.lock("L");
  auto c = seg.condition("C", l);
  {
    std::unique_lock g(l);
    auto t0 = Clock::now();
    EXPECT_FALSE(c.wait_for(50ms));
    EXPECT_GE(Clock::now() - t0, 50ms);
    EXPECT_TRUE(l.held_by_me()) << "the lock is taken again after a timeout";
    t0 = Clock::now();
    EXPECT_FALSE(c.wait_until(t0 + 30ms));
    EXPECT_GE(Clock::now() - t0, 30ms);
    t0 = Clock::now();
    EXPECT_FALSE(c.wait_for(40ms, [] { return false; }));
    EXPECT_GE(Clock::now() - t0, 40ms);
    t0 = Clock::now();
    EXPECT_FALSE(c.wait_until(Clock::now() + 20ms, [] { return false; }));
    EXPECT_GE(Clock::now() - t0, 20ms);
    EXPECT_TRUE(c.wait_for(0ns, [] { return true; }));
    EXPECT_TRUE(c.wait_for(10s, [] { return true; })) << "a predicate that holds returns at once";
    EXPECT_LT(Clock::now() - t0, 5s);
    EXPECT_TRUE(l.held_by_me());
  }
  EXPECT_FALSE(l.locked());
  // A condition with its own lock keeps it held after a timeout too.
  auto own = seg.condition("own");
  std::unique_lock g(own);
  const auto t0 = Clock::now();
  EXPECT_FALSE(own.wait_for(30ms));
  EXPECT_GE(Clock::now() - t0, 30ms);
  std::thread t([&] { EXPECT_FALSE(own.try_lock()) << "the waiter should hold its lock again"; });
  t.join();
}

TEST(Condition, NotifyWakesASleepingWaiterInAnotherProcess) {
  ScopedSegmentName n("cond_notify");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  auto flag = seg.value<std::int32_t>("flag");
  Child waiter([&] {
    std::unique_lock g(c);
    const auto t0 = Clock::now();
    EXPECT_TRUE(c.wait_for(10s, [&] { return flag.get() == 1; }));
    EXPECT_LT(Clock::now() - t0, 8s);
  });
  ASSERT_TRUE(asleep(waiter));
  {
    std::lock_guard g(c);
    flag.set(1);
    c.notify();
  }
  EXPECT_EQ(waiter.wait_exit(15s), 0);
}

TEST(Condition, NotifyAllWakesEveryWaiterInEveryProcess) {
  ScopedSegmentName n("cond_notify_all");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  auto waiting = seg.value<std::int32_t>("waiting");
  auto go = seg.value<std::int32_t>("go");
  constexpr int kProcs = 3, kThreads = 2;
  std::vector<Child> kids;
  kids.reserve(kProcs);
  for (int p = 0; p < kProcs; ++p)
    kids.emplace_back([&] {
      std::atomic<int> woke{0};
      std::vector<std::thread> ts;
      for (int t = 0; t < kThreads; ++t)
        ts.emplace_back([&] {
          std::unique_lock g(c);
          waiting.set(waiting.get() + 1);
          c.notify_all();  // tells the parent; the others re-check and sleep on
          if (c.wait_for(10s, [&] { return go.get() == 1; })) ++woke;
        });
      for (auto& t : ts) t.join();
      EXPECT_EQ(woke.load(), kThreads);
    });
  {
    std::unique_lock g(c);
    ASSERT_TRUE(c.wait_for(10s, [&] { return waiting.get() == kProcs * kThreads; }));
  }
  for (auto& k : kids) ASSERT_TRUE(asleep(k));
  {
    std::lock_guard g(c);
    go.set(1);
    c.notify_all();
  }
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(15s), 0);
}

TEST(Condition, NotifyNLetsNWaitersThrough) {
  ScopedSegmentName n("cond_notify_n");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  auto tokens = seg.value<std::int32_t>("tokens");
  Signal got;
  std::vector<Child> kids;
  kids.reserve(4);
  for (int i = 0; i < 4; ++i)
    kids.emplace_back([&] {
      std::unique_lock g(c);
      ASSERT_TRUE(c.wait_for(20s, [&] { return tokens.get() > 0; }));
      tokens.set(tokens.get() - 1);
      got.post();
    });
  for (auto& k : kids) ASSERT_TRUE(asleep(k));
  {
    std::lock_guard g(c);
    tokens.set(2);
    c.notify(2);
  }
  EXPECT_TRUE(got.wait_n(2)) << "notify(2) must let two waiters through";
  {
    std::lock_guard g(c);
    tokens.set(tokens.get() + 1);
    c.notify(1);
  }
  EXPECT_TRUE(got.wait_n(1));
  {
    std::lock_guard g(c);
    tokens.set(tokens.get() + 1);
    c.notify();
  }
  EXPECT_TRUE(got.wait_n(1));
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(15s), 0);
  EXPECT_EQ(tokens.get(), 0);
}

TEST(Condition, WaitWithAPredicateReturnsOnlyOnceItHolds) {
  ScopedSegmentName n("cond_pred");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  auto counter = seg.value<std::int32_t>("counter");
  auto notifier = [&] {
    for (int i = 1; i <= 5; ++i) {
      std::lock_guard g(c);
      counter.set(i);
      c.notify_all();
    }
  };
  {
    std::unique_lock g(c);
    Child child(notifier);  // blocks on the lock until we wait
    int checks = 0;
    EXPECT_TRUE(c.wait_for(10s, [&] {
      ++checks;
      return counter.get() == 5;
    }));
    EXPECT_EQ(counter.get(), 5);
    EXPECT_GE(checks, 2);
    EXPECT_EQ(child.wait_exit(), 0);
  }
  // The untimed form, in a child so that a lost wake-up fails within a bound.
  counter.set(0);
  Signal waiting;
  Child waiter([&] {
    std::unique_lock g(c);
    waiting.post();
    c.wait([&] { return counter.get() == 5; });
    EXPECT_EQ(counter.get(), 5);
  });
  ASSERT_TRUE(waiting.wait());
  notifier();
  EXPECT_EQ(waiter.wait_exit(15s), 0);
  // wait_until with a predicate.
  counter.set(0);
  std::unique_lock g(c);
  Child child(notifier);
  EXPECT_TRUE(c.wait_until(Clock::now() + 10s, [&] { return counter.get() == 5; }));
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Condition, BoundToANamedLockUsesThatLock) {
  ScopedSegmentName n("cond_bound_lock");
  auto seg = Segment::create(n.name, 1 << 20);
  auto l = seg.lock("L");
  auto c = seg.condition("C", l);
  auto flag = seg.value<std::int32_t>("flag");
  c.lock();
  EXPECT_TRUE(l.held_by_me());
  c.unlock();
  EXPECT_FALSE(l.locked());
  std::unique_lock g(l);
  Child notifier([&] {
    auto other = Segment::open(n.name);
    auto ol = other.lock("L");
    auto oc = other.condition("C", ol);
    std::lock_guard h(ol);  // taken once the parent waits
    flag.set(1);
    oc.notify();
  });
  EXPECT_TRUE(c.wait_for(10s, [&] { return flag.get() == 1; }));
  EXPECT_TRUE(l.held_by_me());
  EXPECT_EQ(notifier.wait_exit(), 0);
}

TEST(Condition, BoundToAnRLockHeldAtDepthTwoReleasesItFullyWhileWaitingAndRestoresTheDepth) {
  ScopedSegmentName n("cond_rlock");
  auto seg = Segment::create(n.name, 1 << 20);
  auto r = seg.rlock("R");
  auto c = seg.condition("C", r);
  auto flag = seg.value<std::int32_t>("flag");
  r.lock();
  r.lock();
  ASSERT_EQ(r.depth(), 2u);
  Child other([&] {
    r.lock(8s);  // possible only while the parent's wait has released it fully
    EXPECT_EQ(r.depth(), 1u);
    flag.set(1);
    c.notify_all();
    r.unlock();
  });
  EXPECT_TRUE(c.wait_for(10s, [&] { return flag.get() == 1; }));
  EXPECT_TRUE(r.held_by_me());
  EXPECT_EQ(r.depth(), 2u) << "wait() restores the depth it found";
  EXPECT_EQ(other.wait_exit(), 0);
  r.unlock();
  EXPECT_TRUE(r.locked());
  r.unlock();
  EXPECT_FALSE(r.locked());
  // A timeout restores the depth as well.
  r.lock();
  r.lock();
  r.lock();
  EXPECT_FALSE(c.wait_for(10ms));
  EXPECT_EQ(r.depth(), 3u);
  r.unlock();
  r.unlock();
  r.unlock();
  EXPECT_FALSE(r.locked());
}

TEST(Condition, BindingTheSameNameToADifferentLockThrowsTypeMismatch) {
  ScopedSegmentName n("cond_bind");
  auto seg = Segment::create(n.name, 1 << 20);
  auto a = seg.lock("A");
  auto b = seg.lock("B");
  auto r = seg.rlock("R");
  seg.condition("C", a);
  EXPECT_NO_THROW(seg.condition("C", a));
  EXPECT_THROW(seg.condition("C", b), ipckit::TypeMismatch);
  EXPECT_THROW(seg.condition("C", r), ipckit::TypeMismatch);
  EXPECT_THROW(seg.condition("C"), ipckit::TypeMismatch) << "bound to A, not to its own lock";
  seg.condition("own");
  EXPECT_THROW(seg.condition("own", a), ipckit::TypeMismatch);
  EXPECT_NO_THROW(seg.condition("own"));
  seg.condition("CR", r);
  EXPECT_THROW(seg.condition("CR", a), ipckit::TypeMismatch);
  EXPECT_THROW(seg.event("C"), ipckit::TypeMismatch);
  Child child([&] {
    auto other = Segment::open(n.name);
    EXPECT_NO_THROW(other.condition("C", other.lock("A")));
    EXPECT_THROW(other.condition("C", other.lock("B")), ipckit::TypeMismatch);
    EXPECT_NO_THROW(other.condition("CR", other.rlock("R")));
  });
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Condition, AWaiterKilledInItsWaitDoesNotSwallowANotification) {
  ScopedSegmentName n("cond_killed_waiter");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  auto flag = seg.value<std::int32_t>("flag");
  for (int round = 0; round < 3; ++round) {
    flag.set(0);
    std::vector<Child> victims;
    victims.reserve(3);
    // Victims sleep first, ahead of the survivor in the kernel's queue.
    for (int i = 0; i < 3; ++i) {
      victims.emplace_back([&] {
        std::unique_lock g(c);
        for (;;) c.wait();
      });
      ASSERT_TRUE(asleep(victims.back())) << "round " << round;
    }
    Child survivor([&] {
      std::unique_lock g(c);
      EXPECT_TRUE(c.wait_for(10s, [&] { return flag.get() == 1; }));
    });
    ASSERT_TRUE(asleep(survivor)) << "round " << round;
    for (auto& v : victims) {
      v.kill(SIGKILL);
      EXPECT_EQ(v.wait_exit(), -SIGKILL);
    }
    {
      std::lock_guard g(c);
      EXPECT_FALSE(c.owner_died()) << "victims died in wait(), not holding the lock";
      flag.set(1);
      c.notify(1);  // one notification, and it must reach the living waiter
    }
    EXPECT_EQ(survivor.wait_exit(15s), 0) << "round " << round;
  }
}

TEST(Condition, AProcessKilledHoldingTheLockHandsItToTheNextLockerWithOwnerDied) {
  ScopedSegmentName n("cond_killed_holder");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  Signal held;
  Child holder([&] {
    c.lock();
    held.post();
    ::pause();
  });
  ASSERT_TRUE(held.wait());
  holder.kill(SIGKILL);
  EXPECT_EQ(holder.wait_exit(), -SIGKILL);
  // The next locker, in a child so that a wedged lock fails within a bound.
  Child next([&] {
    c.lock();
    EXPECT_TRUE(c.owner_died());
    c.notify_all();
    c.unlock();
    c.lock();
    EXPECT_FALSE(c.owner_died()) << "only the first locker after the death is told";
    c.unlock();
  });
  EXPECT_EQ(next.wait_exit(10s), 0);
  std::lock_guard g(c);
  EXPECT_FALSE(c.owner_died());
}

TEST(Condition, AWaiterRetakingTheLockFromANotifierKilledHoldingItIsToldOwnerDied) {
  ScopedSegmentName n("cond_killed_notifier");
  auto seg = Segment::create(n.name, 1 << 20);
  auto c = seg.condition("C");
  auto flag = seg.value<std::int32_t>("flag");
  Child waiter([&] {
    std::unique_lock g(c);
    EXPECT_TRUE(c.wait_for(10s, [&] { return flag.get() == 1; }));
    EXPECT_TRUE(c.owner_died()) << "the lock came from a dead holder";
  });
  ASSERT_TRUE(asleep(waiter));
  Signal notified;
  Child notifier([&] {
    c.lock();
    flag.set(1);
    c.notify_all();
    notified.post();
    ::pause();  // killed holding the lock
  });
  ASSERT_TRUE(notified.wait());
  notifier.kill(SIGKILL);
  EXPECT_EQ(notifier.wait_exit(), -SIGKILL);
  EXPECT_EQ(waiter.wait_exit(10s), 0);
}
