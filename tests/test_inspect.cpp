// Snapshots (stats(), Segment::inspect): what another process is doing
// shows in them — a child holding a lock, waiting on a condition, sitting in
// a barrier, holding units or tasks — and what a dead one left; a state
// overwritten with garbage gives CorruptSegment or a snapshot that says it
// is corrupt, never a crash.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <variant>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/inspect.hpp"
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::ObjectKind;
using ipckit::Segment;
using namespace ipckit::testing;

namespace {

// The snapshot of `name`, which must be an S.
template <class S>
S stats_of(const Segment& seg, const std::string& name) {
  const auto snap = seg.inspect(name);
  EXPECT_EQ(snap.info.name, name);
  const S* s = std::get_if<S>(&snap.stats);
  if (s == nullptr) {
    ADD_FAILURE() << name << ": snapshot holds alternative " << snap.stats.index();
    return S{};
  }
  return *s;
}

// The bytes of an object's state, to overwrite.
template <class State = unsigned char>
State* state_of(Segment& seg, const std::string& name) {
  return static_cast<State*>(const_cast<void*>(ipckit::detail::SegmentAccess::object_body(seg, name)));
}

}  // namespace

TEST(Inspect, ALockHeldByAChildShowsItsHolderThenItsDeathThenTheTakeover) {
  ScopedSegmentName n("insp_lock");
  auto seg = Segment::create(n.name, 1 << 20);
  auto lock = seg.lock("L");
  const auto free = stats_of<ipckit::LockStats>(seg, "L");
  EXPECT_FALSE(free.locked);
  EXPECT_EQ(free.recoveries, 0u);

  Signal locked;
  Child holder([&] {
    lock.lock();
    locked.post();
    ::pause();
  });
  ASSERT_TRUE(locked.wait());
  for (const auto& s : {lock.stats(), stats_of<ipckit::LockStats>(seg, "L")}) {
    EXPECT_TRUE(s.locked);
    EXPECT_EQ(s.holder_pid, holder.pid());
    EXPECT_TRUE(s.holder_alive);
    EXPECT_FALSE(s.owner_died);
  }

  holder.kill(SIGKILL);
  ASSERT_EQ(holder.wait_exit(), -SIGKILL);
  const auto dead = lock.stats();
  EXPECT_TRUE(dead.locked);
  EXPECT_FALSE(dead.holder_alive);

  ASSERT_TRUE(lock.try_lock_for(5s));
  const auto taken = stats_of<ipckit::LockStats>(seg, "L");
  EXPECT_EQ(taken.holder_pid, ::getpid());
  EXPECT_TRUE(taken.holder_alive);
  EXPECT_TRUE(taken.owner_died);
  EXPECT_EQ(taken.recoveries, 1u);
  lock.unlock();
  EXPECT_FALSE(lock.stats().locked);
}

TEST(Inspect, AValueAndAnArrayShowTheirTypeTheirElementsAndTheirLockHolder) {
  ScopedSegmentName n("insp_values");
  auto seg = Segment::create(n.name, 1 << 20);
  auto v = seg.value<std::int64_t>("v", -42);
  auto a = seg.array<std::int32_t>("a", 10);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::int32_t>(i * i);

  const auto vs = v.stats();
  EXPECT_EQ(vs.type_name, typeid(std::int64_t).name());
  EXPECT_EQ(vs.elem_size, 8u);
  EXPECT_EQ(vs.count, 1u);
  ASSERT_EQ(vs.data.size(), 8u);
  std::int64_t got = 0;
  std::memcpy(&got, vs.data.data(), 8);
  EXPECT_EQ(got, -42);

  // Segment::inspect copies only the elements asked for; stats() all of them.
  const auto snap = seg.inspect("a", 3);
  ASSERT_TRUE(std::holds_alternative<ipckit::ValueStats>(snap.stats));
  const auto& as = std::get<ipckit::ValueStats>(snap.stats);
  EXPECT_EQ(as.count, 10u);
  ASSERT_EQ(as.data.size(), 3 * sizeof(std::int32_t));
  std::int32_t third = 0;
  std::memcpy(&third, as.data.data() + 2 * sizeof(std::int32_t), sizeof third);
  EXPECT_EQ(third, 4);
  EXPECT_EQ(a.stats().data.size(), 10 * sizeof(std::int32_t));
  EXPECT_EQ(a.stats(4).data.size(), 4 * sizeof(std::int32_t));

  Signal locked;
  Child holder([&] {
    a.get_lock().lock();
    locked.post();
    ::pause();
  });
  ASSERT_TRUE(locked.wait());
  const auto held = stats_of<ipckit::ValueStats>(seg, "a");
  ASSERT_TRUE(held.lock.has_value());
  EXPECT_EQ(held.lock->holder_pid, holder.pid());
  ASSERT_TRUE(v.stats().lock.has_value());
  EXPECT_FALSE(v.stats().lock->locked);
}

TEST(Inspect, RawValuesHaveNoLockAndBoundOnesShowTheNamedLock) {
  ScopedSegmentName n("insp_guards");
  auto seg = Segment::create(n.name, 1 << 20);
  auto raw = seg.raw_value<std::int32_t>("raw", 7);
  auto raw_array = seg.raw_array<std::int16_t>("raw_array", {1, 2, 3});
  auto named = seg.lock("L");
  auto bound = seg.array<std::int64_t>("bound", {10, 20}, named);

  const auto r = stats_of<ipckit::ValueStats>(seg, "raw");
  EXPECT_FALSE(r.lock.has_value());
  EXPECT_EQ(r.type_name, typeid(std::int32_t).name());  // without the guard's prefix
  std::int32_t seven = 0;
  ASSERT_EQ(r.data.size(), sizeof seven);
  std::memcpy(&seven, r.data.data(), sizeof seven);
  EXPECT_EQ(seven, 7);
  const auto ra = stats_of<ipckit::ValueStats>(seg, "raw_array");
  EXPECT_FALSE(ra.lock.has_value());
  std::int16_t third = 0;
  ASSERT_EQ(ra.data.size(), 3 * sizeof third);
  std::memcpy(&third, ra.data.data() + 2 * sizeof third, sizeof third);
  EXPECT_EQ(third, 3);

  std::lock_guard g(named);
  const auto b = stats_of<ipckit::ValueStats>(seg, "bound");
  ASSERT_TRUE(b.lock.has_value());
  EXPECT_TRUE(b.lock->locked);
  EXPECT_EQ(b.lock->holder_pid, ::getpid());
  std::int64_t second = 0;
  ASSERT_EQ(b.data.size(), 2 * sizeof second);
  std::memcpy(&second, b.data.data() + sizeof second, sizeof second);
  EXPECT_EQ(second, 20);
  EXPECT_EQ(bound.stats().data, b.data);
  EXPECT_EQ(raw.stats().data, r.data);
  EXPECT_EQ(raw_array.stats().data, ra.data);
}

TEST(Inspect, AChildWaitingOnAConditionIsAWaiterUntilNotified) {
  ScopedSegmentName n("insp_cond");
  auto seg = Segment::create(n.name, 1 << 20);
  auto anchor = seg.lock("anchor");
  auto cond = seg.condition("C", anchor);
  auto own = seg.condition("own");
  Signal waiting;
  Child waiter([&] {
    std::unique_lock g(cond);
    waiting.post();
    EXPECT_TRUE(cond.wait(20s));
  });
  ASSERT_TRUE(waiting.wait());
  ASSERT_TRUE(asleep(waiter));
  const auto s = stats_of<ipckit::ConditionStats>(seg, "C");
  EXPECT_EQ(s.waiters, 1u);
  EXPECT_EQ(s.sleepers, 1u);
  EXPECT_FALSE(s.own_lock);
  EXPECT_FALSE(s.lock.locked) << "the waiter released the bound lock";
  EXPECT_TRUE(s.corrupt.empty()) << s.corrupt;
  EXPECT_TRUE(stats_of<ipckit::ConditionStats>(seg, "own").own_lock);

  {
    std::lock_guard g(cond);
    EXPECT_TRUE(cond.stats().lock.locked) << "the condition's snapshot shows its bound lock";
    EXPECT_EQ(anchor.stats().holder_pid, ::getpid());
    cond.notify();
  }
  EXPECT_EQ(waiter.wait_exit(), 0);
  const auto after = cond.stats();
  EXPECT_EQ(after.waiters, 0u);
  EXPECT_EQ(after.notified, 0u);
}

TEST(Inspect, AChildSittingInABarrierIsCountedThenAnAbortShowsWhy) {
  ScopedSegmentName n("insp_barrier");
  auto seg = Segment::create(n.name, 1 << 20);
  auto barrier = seg.barrier("B", 3);
  Signal arriving;
  Child party([&] {
    arriving.post();
    EXPECT_THROW(barrier.wait(20s), ipckit::BrokenBarrier);
  });
  ASSERT_TRUE(arriving.wait());
  ASSERT_TRUE(eventually([&] { return barrier.stats().waiting == 1; }));
  const auto s = stats_of<ipckit::BarrierStats>(seg, "B");
  EXPECT_EQ(s.parties, 3u);
  EXPECT_EQ(s.waiting, 1u);
  EXPECT_EQ(s.round, 0u);
  EXPECT_FALSE(s.broken);
  EXPECT_TRUE(s.broken_reason.empty());

  barrier.abort();
  EXPECT_EQ(party.wait_exit(), 0);
  const auto broken = stats_of<ipckit::BarrierStats>(seg, "B");
  EXPECT_TRUE(broken.broken);
  EXPECT_EQ(broken.broken_reason, "aborted");
}

TEST(Inspect, ATrackedSemaphoreShowsWhichProcessHoldsItsUnitsAndWhetherItLives) {
  ScopedSegmentName n("insp_sem");
  auto seg = Segment::create(n.name, 1 << 20);
  auto sem = seg.bounded_semaphore("S", 3, {.track_holders = true});
  Signal took;
  Child holder([&] {
    sem.acquire();
    sem.acquire();
    took.post();
    ::pause();
  });
  ASSERT_TRUE(took.wait());
  auto s = stats_of<ipckit::SemaphoreStats>(seg, "S");
  EXPECT_EQ(s.value, 1u);
  EXPECT_EQ(s.initial, 3u);
  EXPECT_TRUE(s.bounded);
  EXPECT_TRUE(s.tracked);
  ASSERT_EQ(s.holders.size(), 1u);
  EXPECT_EQ(s.holders[0].pid, holder.pid());
  EXPECT_EQ(s.holders[0].units, 2u);
  EXPECT_TRUE(s.holders[0].alive);

  holder.kill(SIGKILL);
  ASSERT_EQ(holder.wait_exit(), -SIGKILL);
  s = sem.stats();
  ASSERT_EQ(s.holders.size(), 1u);
  EXPECT_FALSE(s.holders[0].alive);
  EXPECT_EQ(s.holders[0].pid, 0);
  // The free unit, then one that only the dead holder's return makes free.
  ASSERT_TRUE(sem.try_acquire());
  ASSERT_TRUE(sem.acquire(5s));
  s = sem.stats();
  EXPECT_EQ(s.reclaimed, 2u);
  EXPECT_EQ(s.value, 1u);
  ASSERT_EQ(s.holders.size(), 1u);
  EXPECT_EQ(s.holders[0].pid, ::getpid());
  EXPECT_EQ(s.holders[0].units, 2u);
}

TEST(Inspect, AnEventShowsItsFlagAndItsSleepers) {
  ScopedSegmentName n("insp_event");
  auto seg = Segment::create(n.name, 1 << 20);
  auto ev = seg.event("E");
  Child waiter([&] { EXPECT_TRUE(ev.wait(20s)); });
  ASSERT_TRUE(asleep(waiter));
  auto s = stats_of<ipckit::EventStats>(seg, "E");
  EXPECT_FALSE(s.set);
  EXPECT_EQ(s.sleepers, 1u);
  ev.set();
  EXPECT_EQ(waiter.wait_exit(), 0);
  s = ev.stats();
  EXPECT_TRUE(s.set);
  EXPECT_EQ(s.sleepers, 0u);
}

TEST(Inspect, AJoinableQueueShowsItsItemsAndWhoHoldsUnfinishedTasks) {
  ScopedSegmentName n("insp_queue");
  auto seg = Segment::create(n.name, 4 << 20);
  auto jobs = seg.joinable_queue<int>("jobs", {.capacity_bytes = 1 << 16, .max_items = 100});
  auto plain = seg.queue<int>("plain");
  auto bytes = seg.byte_queue("bytes");
  for (int i = 0; i < 5; ++i) jobs.put(i);
  Signal got;
  Child consumer([&] {
    (void)jobs.get(5s);
    (void)jobs.get(5s);
    got.post();
    ::pause();
  });
  ASSERT_TRUE(got.wait());
  const auto s = stats_of<ipckit::QueueStats>(seg, "jobs");
  EXPECT_EQ(s.items, 3u);
  EXPECT_EQ(s.capacity, 1u << 16);
  EXPECT_EQ(s.max_items, 100u);
  EXPECT_GT(s.bytes_used, 0u);
  EXPECT_FALSE(s.closed);
  EXPECT_FALSE(s.producers_lock.locked);
  ASSERT_TRUE(s.tasks.has_value());
  EXPECT_EQ(s.tasks->unfinished, 5u);
  ASSERT_EQ(s.tasks->holders.size(), 1u);
  EXPECT_EQ(s.tasks->holders[0].pid, consumer.pid());
  EXPECT_EQ(s.tasks->holders[0].tasks, 2u);
  EXPECT_TRUE(s.tasks->holders[0].alive);
  EXPECT_TRUE(s.corrupt.empty()) << s.corrupt;

  consumer.kill(SIGKILL);
  ASSERT_EQ(consumer.wait_exit(), -SIGKILL);
  const auto dead = jobs.stats();
  ASSERT_TRUE(dead.tasks.has_value());
  ASSERT_EQ(dead.tasks->holders.size(), 1u);
  EXPECT_FALSE(dead.tasks->holders[0].alive);

  EXPECT_FALSE(plain.stats().tasks.has_value());
  bytes.put("abc");
  bytes.close();
  const auto b = stats_of<ipckit::QueueStats>(seg, "bytes");
  EXPECT_EQ(b.items, 1u);
  EXPECT_TRUE(b.closed);
  EXPECT_EQ(b.items, bytes.stats().items);
}

TEST(Inspect, APriorityQueueShowsItsLowestPriorityAndASleepingConsumer) {
  ScopedSegmentName n("insp_pq");
  auto seg = Segment::create(n.name, 1 << 20);
  auto pq = seg.priority_queue<int>("P", {.capacity_bytes = 1 << 12, .max_message = 8});
  auto s = stats_of<ipckit::PriorityQueueStats>(seg, "P");
  EXPECT_EQ(s.items, 0u);
  EXPECT_FALSE(s.lowest_priority.has_value());
  EXPECT_EQ(s.slots, pq.slots());
  Child consumer([&] { EXPECT_EQ(pq.get(20s), 11); });
  ASSERT_TRUE(asleep(consumer));
  EXPECT_EQ(pq.stats().sleeping_consumers, 1u);
  pq.put(5, 11);
  EXPECT_EQ(consumer.wait_exit(), 0);
  pq.put(7, 1);
  pq.put(-3, 2);
  s = stats_of<ipckit::PriorityQueueStats>(seg, "P");
  EXPECT_EQ(s.items, 2u);
  ASSERT_TRUE(s.lowest_priority.has_value());
  EXPECT_EQ(*s.lowest_priority, -3);
  EXPECT_FALSE(s.lock.locked);
}

TEST(Inspect, AMissingObjectIsNotFound) {
  ScopedSegmentName n("insp_missing");
  auto seg = Segment::create(n.name, 1 << 20);
  EXPECT_THROW((void)seg.inspect("nothing"), ipckit::NotFound);
}

// ------------------------------------------------------------- corruption

TEST(Inspect, ImpossibleCountsAreReportedInTheSnapshot) {
  ScopedSegmentName n("insp_flags");
  auto seg = Segment::create(n.name, 1 << 20);
  auto barrier = seg.barrier("B", 2);
  auto sem = seg.bounded_semaphore("S", 2);
  auto cond = seg.condition("C");
  auto pq = seg.priority_queue<int>("P", {.capacity_bytes = 1 << 12, .max_message = 8});
  auto q = seg.queue<int>("Q", {.capacity_bytes = 1024});

  std::atomic_ref(state_of<ipckit::detail::BarrierState>(seg, "B")->arrived).store(7);
  state_of<ipckit::detail::SemaphoreState>(seg, "S")->count.store(3);
  state_of<ipckit::detail::ConditionState>(seg, "C")->high.store(100000);
  state_of<ipckit::detail::PriorityQueueState>(seg, "P")->count.store(1u << 30);
  state_of<ipckit::detail::QueueState>(seg, "Q")->get.pos.store(512);  // freed past the tail

  const auto b = stats_of<ipckit::BarrierStats>(seg, "B");
  EXPECT_NE(b.corrupt.find("7 parties arrived of 2"), std::string::npos) << b.corrupt;
  const auto s = stats_of<ipckit::SemaphoreStats>(seg, "S");
  EXPECT_NE(s.corrupt.find("exceeds its initial value 2"), std::string::npos) << s.corrupt;
  const auto c = stats_of<ipckit::ConditionStats>(seg, "C");
  EXPECT_NE(c.corrupt.find("100000 slots"), std::string::npos) << c.corrupt;
  const auto p = stats_of<ipckit::PriorityQueueStats>(seg, "P");
  EXPECT_NE(p.corrupt.find("exceeds its"), std::string::npos) << p.corrupt;
  const auto qs = stats_of<ipckit::QueueStats>(seg, "Q");
  EXPECT_NE(qs.corrupt.find("bytes apart in a ring of 1024"), std::string::npos) << qs.corrupt;
  // The handles' own snapshots say the same.
  EXPECT_EQ(barrier.stats().corrupt, b.corrupt);
  EXPECT_EQ(q.stats().corrupt, qs.corrupt);
  EXPECT_EQ(pq.stats().corrupt, p.corrupt);
}

TEST(Inspect, ImpossibleSettingsAreCorruptSegmentNamingTheObject) {
  ScopedSegmentName n("insp_settings");
  auto seg = Segment::create(n.name, 4 << 20);
  (void)seg.barrier("B", 2);
  (void)seg.semaphore("S", 2);
  (void)seg.queue<int>("Q");
  (void)seg.priority_queue<int>("P");
  state_of<ipckit::detail::BarrierState>(seg, "B")->parties = 100000;
  state_of<ipckit::detail::SemaphoreState>(seg, "S")->bounded = 9;
  state_of<ipckit::detail::QueueState>(seg, "Q")->capacity = 12345;
  state_of<ipckit::detail::PriorityQueueState>(seg, "P")->slot_size = 3;
  for (const char* name : {"B", "S", "Q", "P"}) {
    try {
      (void)seg.inspect(name);
      ADD_FAILURE() << name << ": no CorruptSegment";
    } catch (const ipckit::CorruptSegment& e) {
      EXPECT_NE(std::string(e.what()).find("'" + std::string(name) + "'"), std::string::npos) << e.what();
    }
  }
}

// Every kind's state overwritten with random bytes, many times over: each
// snapshot is taken or refused with CorruptSegment, and nothing crashes.
TEST(Inspect, GarbageInEveryKindsStateNeverCrashesASnapshot) {
  ScopedSegmentName n("insp_garbage");
  auto seg = Segment::create(n.name, 4 << 20);
  auto anchor = seg.rlock("R");
  (void)seg.value<double>("v");
  (void)seg.array<char>("text", 200);
  (void)seg.lock("L");
  (void)seg.condition("C", anchor);
  (void)seg.semaphore("S", 1, {.track_holders = true});
  (void)seg.event("E");
  (void)seg.barrier("B", 4);
  (void)seg.joinable_queue<int>("Q", {.capacity_bytes = 4096});
  (void)seg.priority_queue<int>("P", {.capacity_bytes = 4096, .max_message = 16});
  std::mt19937_64 rng(42);
  int taken = 0, refused = 0;
  for (int round = 0; round < 40; ++round) {
    for (const auto& o : seg.objects()) {
      auto* body = state_of(seg, o.name);
      // Overwrite the fixed state only (queues' rings and slots are data).
      const std::size_t n_bytes = std::min<std::uint64_t>(o.bytes, 4096);
      for (std::size_t i = 0; i < n_bytes; ++i)
        if (rng() % 4 == 0) body[i] = static_cast<unsigned char>(rng());
      try {
        const auto snap = seg.inspect(o.name);
        EXPECT_FALSE(std::holds_alternative<std::monostate>(snap.stats)) << o.name;
        ++taken;
      } catch (const ipckit::CorruptSegment&) {
        ++refused;
      }
    }
  }
  EXPECT_GT(taken, 0);
  EXPECT_GT(refused, 0);
}
