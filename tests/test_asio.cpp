// Boost.Asio integration (ipckit/asio.hpp) across real processes: awaiting
// coroutines resumed by other processes' puts, sets, releases and unlocks;
// timeouts, cancellation, callbacks and use_future; killed peers; a
// thousand queues on one io_context thread.
//
// Children never touch the parent's io_context: each is made after the
// fork (or the child makes its own). Every wait has a deadline (run_for).
#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/asio.hpp"
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using namespace ipckit::testing;
using ipckit::Segment;

namespace {

// Runs `io` until `done` or the deadline; whether it finished.
bool run_until(asio::io_context& io, const std::atomic<bool>& done, std::chrono::milliseconds limit = 10s) {
  const auto end = Clock::now() + limit;
  while (!done && Clock::now() < end) {
    io.restart();
    io.run_one_for(20ms);
  }
  return done;
}

// Spawns `aw` on `io`; `done` turns true when it ends, `error` keeps what it threw.
struct Spawned {
  std::atomic<bool> done{false};
  std::exception_ptr error;
  template <class Aw>
  void spawn(asio::io_context& io, Aw aw) {
    asio::co_spawn(io, std::move(aw), [this](std::exception_ptr e) {
      error = e;
      done = true;
    });
  }
  void rethrow() const {
    if (error) std::rethrow_exception(error);
  }
};

// Lets every ready handler run: the operations started try once and park.
void settle(asio::io_context& io) {
  io.restart();
  for (int i = 0; i < 5; ++i) io.poll();
}

int open_fds() {
  int n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

}  // namespace

TEST(Asio, AsyncGetResumesOnAPutFromAnotherProcess) {
  ScopedSegmentName n("as_get");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q");
  Signal go;
  Child producer([&] {
    ASSERT_TRUE(go.wait());
    Segment::open(n.name).queue<std::string>("q").put("hello");
  });
  asio::io_context io;
  Spawned s;
  std::string got;
  s.spawn(io, [&]() -> asio::awaitable<void> { got = co_await q.async_get(asio::use_awaitable); });
  settle(io);
  EXPECT_FALSE(s.done) << "nothing queued yet: the coroutine waits";
  go.post();
  ASSERT_TRUE(run_until(io, s.done));
  s.rethrow();
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(producer.wait_exit(), 0);
}

TEST(Asio, ManyProducerProcessesAndTwoAwaitingCoroutinesTakeEveryItemOnce) {
  ScopedSegmentName n("as_many");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.capacity_bytes = 4096});  // small: producers block on room too
  constexpr int kProducers = 4;
  constexpr int kEach = 1500;
  std::vector<Child> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      auto mine = Segment::open(n.name).queue<int>("q", {.capacity_bytes = 4096});
      for (int i = 0; i < kEach; ++i) mine.put(p * kEach + i);
    });
  asio::io_context io;
  std::vector<int> seen(kProducers * kEach, 0);
  std::atomic<int> count{0};
  std::atomic<bool> all{false};
  Spawned a, b;
  auto consumer = [&]() -> asio::awaitable<void> {
    while (count < kProducers * kEach) {
      const int v = co_await q.async_get(1s, asio::use_awaitable);
      ++seen.at(v);
      if (++count == kProducers * kEach) {
        all = true;
        q.close();  // the other consumer ends with Closed
      }
    }
  };
  a.spawn(io, consumer());
  b.spawn(io, consumer());
  ASSERT_TRUE(run_until(io, all, 15s)) << count << " items of " << kProducers * kEach;
  ASSERT_TRUE(run_until(io, a.done) && run_until(io, b.done));
  for (auto* s : {&a, &b})
    if (s->error) EXPECT_THROW(s->rethrow(), ipckit::Closed);
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; })) << "every item exactly once";
  for (auto& c : producers) EXPECT_EQ(c.wait_exit(), 0);
}

TEST(Asio, AsyncPutWaitsForRoomAndTimesOutWithFull) {
  ScopedSegmentName n("as_put");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.max_items = 2});
  q.put(1);
  q.put(2);
  asio::io_context io;
  Spawned timed;
  timed.spawn(io, [&]() -> asio::awaitable<void> { co_await q.async_put(3, 30ms, asio::use_awaitable); });
  const auto t0 = Clock::now();
  ASSERT_TRUE(run_until(io, timed.done));
  EXPECT_GE(Clock::now() - t0, 30ms);
  EXPECT_THROW(timed.rethrow(), ipckit::Full);

  Spawned s;
  s.spawn(io, [&]() -> asio::awaitable<void> { co_await q.async_put(3, asio::use_awaitable); });
  settle(io);
  EXPECT_FALSE(s.done) << "full: the put waits";
  Child consumer([&] { EXPECT_EQ(Segment::open(n.name).queue<int>("q", {.max_items = 2}).get(), 1); });
  ASSERT_TRUE(run_until(io, s.done));
  s.rethrow();
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_EQ(q.get(), 2);
  EXPECT_EQ(q.get(), 3);
}

TEST(Asio, GetTimesOutWithEmptyAndEndsWithClosed) {
  ScopedSegmentName n("as_empty");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q");
  asio::io_context io;
  Spawned s;
  s.spawn(io, [&]() -> asio::awaitable<void> { (void)co_await q.async_get(30ms, asio::use_awaitable); });
  const auto t0 = Clock::now();
  ASSERT_TRUE(run_until(io, s.done));
  EXPECT_GE(Clock::now() - t0, 30ms);
  EXPECT_THROW(s.rethrow(), ipckit::Empty);

  Spawned c;
  std::string got;
  c.spawn(io, [&]() -> asio::awaitable<void> {
    got = co_await q.async_get(asio::use_awaitable);
    (void)co_await q.async_get(asio::use_awaitable);
  });
  settle(io);
  Child closer([&] {
    auto other = Segment::open(n.name).byte_queue("q");
    other.put("last");
    other.close();
  });
  ASSERT_TRUE(run_until(io, c.done));
  EXPECT_EQ(got, "last") << "what was queued before close() is still got";
  EXPECT_THROW(c.rethrow(), ipckit::Closed);
  EXPECT_EQ(closer.wait_exit(), 0);
  Spawned p;
  p.spawn(io, [&]() -> asio::awaitable<void> { co_await q.async_put("more", asio::use_awaitable); });
  ASSERT_TRUE(run_until(io, p.done));
  EXPECT_THROW(p.rethrow(), ipckit::Closed);
}

TEST(Asio, PriorityQueueAsyncPutAndGet) {
  ScopedSegmentName n("as_prio");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.priority_queue<std::string>("q");
  asio::io_context io;
  Spawned s;
  std::vector<std::string> got;
  s.spawn(io, [&]() -> asio::awaitable<void> {
    co_await q.async_put(5, std::string("low"), asio::use_awaitable);
    co_await q.async_put(1, std::string("high"), 1s, asio::use_awaitable);
    got.push_back(co_await q.async_get(asio::use_awaitable));
    got.push_back(co_await q.async_get(asio::use_awaitable));
    got.push_back(co_await q.async_get(asio::use_awaitable));
  });
  settle(io);
  Child producer([&] { Segment::open(n.name).priority_queue<std::string>("q").put(0, "late"); });
  ASSERT_TRUE(run_until(io, s.done));
  s.rethrow();
  EXPECT_EQ(got, (std::vector<std::string>{"high", "low", "late"}));
  EXPECT_EQ(producer.wait_exit(), 0);
}

TEST(Asio, EventSemaphoreAndLockResumeOnAnotherProcess) {
  ScopedSegmentName n("as_sync");
  auto seg = Segment::create(n.name, 4 << 20);
  auto ev = seg.event("ev");
  auto sem = seg.semaphore("sem", 0);
  auto lock = seg.lock("lk");
  Signal locked, go;
  Child peer([&] {
    auto s = Segment::open(n.name);
    auto l = s.lock("lk");
    l.lock();
    locked.post();
    ASSERT_TRUE(go.wait());
    s.event("ev").set();
    s.semaphore("sem", 0).release();
    l.unlock();
  });
  ASSERT_TRUE(locked.wait());
  asio::io_context io;
  Spawned s;
  bool set = false, acquired = false, locked_by_me = false;
  s.spawn(io, [&]() -> asio::awaitable<void> {
    set = co_await ev.async_wait(asio::use_awaitable);
    acquired = co_await sem.async_acquire(asio::use_awaitable);
    locked_by_me = co_await lock.async_acquire(asio::use_awaitable);
    EXPECT_TRUE(lock.held_by_me()) << "held by the thread that runs the completion";
    lock.unlock();
  });
  settle(io);
  EXPECT_FALSE(s.done);
  go.post();
  ASSERT_TRUE(run_until(io, s.done));
  s.rethrow();
  EXPECT_TRUE(set && acquired && locked_by_me);
  EXPECT_EQ(sem.value(), 0U);
  EXPECT_FALSE(lock.locked());
  EXPECT_EQ(peer.wait_exit(), 0);
}

TEST(Asio, TimeoutsAnswerFalseLikeTheBlockingForms) {
  ScopedSegmentName n("as_false");
  auto seg = Segment::create(n.name, 4 << 20);
  auto ev = seg.event("ev");
  auto sem = seg.semaphore("sem", 0);
  auto lock = seg.rlock("lk");
  Signal locked, release;
  Child holder([&] {
    auto l = Segment::open(n.name).rlock("lk");
    l.lock();
    locked.post();
    ASSERT_TRUE(release.wait());
    l.unlock();
  });
  ASSERT_TRUE(locked.wait());
  asio::io_context io;
  Spawned s;
  std::vector<bool> answers;
  const auto t0 = Clock::now();
  s.spawn(io, [&]() -> asio::awaitable<void> {
    answers.push_back(co_await ev.async_wait(20ms, asio::use_awaitable));
    answers.push_back(co_await sem.async_acquire(20ms, asio::use_awaitable));
    answers.push_back(co_await lock.async_acquire(20ms, asio::use_awaitable));
    answers.push_back(co_await ev.async_wait(0ms, asio::use_awaitable));
  });
  ASSERT_TRUE(run_until(io, s.done));
  s.rethrow();
  EXPECT_GE(Clock::now() - t0, 60ms);
  EXPECT_EQ(answers, (std::vector<bool>{false, false, false, false}));
  release.post();
  EXPECT_EQ(holder.wait_exit(), 0);
}

namespace {
int square(int x) { return x * x; }
int fail(int) { throw std::runtime_error("no"); }
int gated(std::string segment) {
  (void)Segment::open(segment).event("gate").wait(10s);
  return 7;
}
}  // namespace

TEST(Asio, PoolFutureAsyncGetGivesTheValueTheErrorOrTimeout) {
  ScopedSegmentName n("as_pool");
  auto seg = Segment::create(n.name, 1 << 20);
  ipckit::ProcessPool pool({.workers = 2});
  auto ok = pool.submit(square, 9);
  auto bad = pool.submit(fail, 1);
  auto slow = pool.submit(gated, n.name);
  ipckit::AnyFuture any(slow);
  asio::io_context io;
  Spawned s;
  int value = 0, late = 0;
  bool timed_out = false, failed = false;
  s.spawn(io, [&]() -> asio::awaitable<void> {
    value = co_await ok.async_get(asio::use_awaitable);
    try {
      (void)co_await bad.async_get(asio::use_awaitable);
    } catch (const ipckit::TaskError&) {
      failed = true;
    }
    try {
      (void)co_await slow.async_get(20ms, asio::use_awaitable);
    } catch (const ipckit::Timeout&) {
      timed_out = true;
    }
    EXPECT_FALSE(co_await any.async_wait(10ms, asio::use_awaitable));
    seg.event("gate").set();
    EXPECT_TRUE(co_await any.async_wait(asio::use_awaitable));
    late = co_await slow.async_get(asio::use_awaitable);
  });
  ASSERT_TRUE(run_until(io, s.done));
  s.rethrow();
  EXPECT_EQ(value, 81);
  EXPECT_TRUE(failed);
  EXPECT_TRUE(timed_out);
  EXPECT_EQ(late, 7);
}

TEST(Asio, CancelSignalCompletesPendingOperationsWithCancelledAndLosesNothing) {
  ScopedSegmentName n("as_cancel");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q");
  auto ev = seg.event("ev");
  asio::io_context io;
  ipckit::CancelSignal stop;
  Spawned a, b;
  a.spawn(io, [&]() -> asio::awaitable<void> { (void)co_await q.async_get(stop, asio::use_awaitable); });
  b.spawn(io, [&]() -> asio::awaitable<void> { (void)co_await ev.async_wait(10s, stop, asio::use_awaitable); });
  settle(io);
  EXPECT_FALSE(a.done || b.done);
  stop.emit();
  EXPECT_TRUE(stop.emitted());
  ASSERT_TRUE(run_until(io, a.done) && run_until(io, b.done));
  EXPECT_THROW(a.rethrow(), ipckit::Cancelled);
  EXPECT_THROW(b.rethrow(), ipckit::Cancelled);
  // Started with an emitted signal: Cancelled at once, and the item stays queued.
  q.put(5);
  Spawned c;
  c.spawn(io, [&]() -> asio::awaitable<void> { (void)co_await q.async_get(stop, asio::use_awaitable); });
  ASSERT_TRUE(run_until(io, c.done));
  EXPECT_THROW(c.rethrow(), ipckit::Cancelled);
  EXPECT_EQ(q.qsize(), 1U);
  Child putter([&] { Segment::open(n.name).queue<int>("q").put(6); });
  EXPECT_EQ(putter.wait_exit(), 0);
  EXPECT_EQ(q.get(), 5);
  EXPECT_EQ(q.get(), 6) << "a cancelled get took nothing";
}

TEST(Asio, CallbacksAndUseFutureComplete) {
  ScopedSegmentName n("as_cb");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q");
  auto sem = seg.semaphore("sem", 0);
  Signal go;
  Child producer([&] {
    ASSERT_TRUE(go.wait());
    auto s = Segment::open(n.name);
    s.queue<int>("q").put(42);
    s.semaphore("sem", 0).release();
  });
  asio::io_context io;
  std::atomic<bool> called{false};
  int got = 0;
  bool in_initiation = true;
  q.async_get(io, [&](std::exception_ptr e, int v) {
    EXPECT_FALSE(in_initiation) << "never invoked inside the initiating call";
    EXPECT_FALSE(e);
    got = v;
    called = true;
  });
  in_initiation = false;
  std::future<bool> f = sem.async_acquire(io.get_executor(), asio::use_future);
  auto guard = asio::make_work_guard(io);
  std::thread runner([&] { io.run_for(10s); });
  go.post();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(f.get());
  EXPECT_TRUE(eventually([&] { return called.load(); }));
  EXPECT_EQ(got, 42);
  // An error reaches the callback as an exception_ptr and use_future's get() as the exception.
  std::future<int> empty = q.async_get(io, 10ms, asio::use_future);
  EXPECT_THROW(empty.get(), ipckit::Empty);
  guard.reset();
  io.stop();
  runner.join();
  EXPECT_EQ(producer.wait_exit(), 0);
}

TEST(Asio, AConsumerKilledWithPendingOperationsCostsTheOthersNothing) {
  ScopedSegmentName n("as_kill");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q");
  auto ev = seg.event("ev");
  Signal parked;
  Child victim([&] {
    auto s = Segment::open(n.name);
    auto mine = s.queue<int>("q");
    auto e = s.event("ev");
    asio::io_context io;  // its own, made after the fork
    mine.async_get(io, [](std::exception_ptr, int) {});
    e.async_wait(io, [](std::exception_ptr, bool) {});
    settle(io);
    parked.post();
    io.run_for(30s);
  });
  ASSERT_TRUE(parked.wait());
  victim.kill();
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  asio::io_context io;
  Spawned s;
  int got = 0;
  bool set = false;
  s.spawn(io, [&]() -> asio::awaitable<void> {
    got = co_await q.async_get(asio::use_awaitable);
    set = co_await ev.async_wait(asio::use_awaitable);
  });
  settle(io);
  Child producer([&] {
    auto other = Segment::open(n.name);
    other.queue<int>("q").put(9);
    other.event("ev").set();
  });
  ASSERT_TRUE(run_until(io, s.done));
  s.rethrow();
  EXPECT_EQ(got, 9);
  EXPECT_TRUE(set);
  EXPECT_EQ(producer.wait_exit(), 0);
}

TEST(Asio, ALockWhoseHolderIsKilledIsAcquiredWithOwnerDied) {
  ScopedSegmentName n("as_died");
  auto seg = Segment::create(n.name, 4 << 20);
  auto lock = seg.lock("lk");
  Signal held;
  Child holder([&] {
    Segment::open(n.name).lock("lk").lock();
    held.post();
    ::pause();
  });
  ASSERT_TRUE(held.wait());
  asio::io_context io;
  Spawned s;
  bool died = false;
  s.spawn(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await lock.async_acquire(asio::use_awaitable));
    died = lock.owner_died();
    lock.unlock();
  });
  settle(io);
  EXPECT_FALSE(s.done);
  holder.kill();
  EXPECT_EQ(holder.wait_exit(), -SIGKILL);
  ASSERT_TRUE(run_until(io, s.done));
  s.rethrow();
  EXPECT_TRUE(died);
}

TEST(Asio, OneIoContextThreadAwaitsAThousandQueuesFedInRandomOrder) {
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  lim.rlim_cur = lim.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
  constexpr int kQueues = 1000;
  if (lim.rlim_cur < kQueues + 200) GTEST_SKIP() << "RLIMIT_NOFILE hard limit " << lim.rlim_max << " is too low";
  ScopedSegmentName n("as_thousand");
  auto seg = Segment::create(n.name, 64 << 20, {.max_objects = kQueues + 8});
  std::vector<ipckit::Queue<int>> qs;
  for (int i = 0; i < kQueues; ++i) qs.push_back(seg.queue<int>("q" + std::to_string(i), {.capacity_bytes = 4096}));
  Signal go;
  Child feeder([&] {
    auto s = Segment::open(n.name);
    std::vector<int> order(kQueues);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(12345));
    ASSERT_TRUE(go.wait());
    for (int i : order) s.queue<int>("q" + std::to_string(i), {.capacity_bytes = 4096}).put(i);
  });
  asio::io_context io;
  const int fds_before = open_fds();
  std::vector<int> got(kQueues, -1);
  std::atomic<int> done{0};
  for (int i = 0; i < kQueues; ++i)
    qs[i].async_get(io, [&, i](std::exception_ptr e, int v) {
      EXPECT_FALSE(e);
      got[i] = v;
      ++done;
    });
  settle(io);
  EXPECT_EQ(done, 0);
  const int added = open_fds() - fds_before;
  EXPECT_LE(added, kQueues + 8) << "one descriptor per watched queue (and the io_context's own)";
  EXPECT_GE(added, kQueues);
  go.post();
  const auto end = Clock::now() + 15s;
  while (done < kQueues && Clock::now() < end) io.run_one_for(50ms);
  EXPECT_EQ(done, kQueues);
  for (int i = 0; i < kQueues; ++i) EXPECT_EQ(got[i], i);
  EXPECT_EQ(feeder.wait_exit(), 0);
}

// Threads of one process only (TSan sees them): an io_context run by four
// threads serving operations that threads complete.
TEST(AsioThreads, AnIoContextRunByFourThreadsServesAsyncGetsWithoutRaces) {
  ScopedSegmentName n("as_threads");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.capacity_bytes = 4096});
  auto sem = seg.semaphore("sem", 0);
  constexpr int kItems = 2000;
  asio::io_context io;
  auto strand_a = asio::make_strand(io);
  std::atomic<int> count{0};
  std::atomic<long> sum{0};
  std::atomic<int> acquired{0};
  std::function<void()> next = [&] {
    q.async_get(strand_a, [&](std::exception_ptr e, int v) {
      if (e) return;
      sum += v;
      if (++count < kItems) next();
    });
  };
  for (int i = 0; i < 4; ++i) next();  // four gets in flight on one queue
  ipckit::CancelSignal stop;
  std::function<void()> take = [&] {
    sem.async_acquire(io, stop, [&](std::exception_ptr e, bool ok) {
      if (e || !ok) return;
      ++acquired;
      take();
    });
  };
  take();
  take();
  std::vector<std::thread> runners;
  for (int i = 0; i < 4; ++i) runners.emplace_back([&] { io.run_for(20s); });
  std::thread producer([&] {
    for (int i = 0; i < kItems + 3; ++i) {
      q.put(i);
      if (i % 10 == 0) sem.release();
    }
  });
  producer.join();
  EXPECT_TRUE(eventually([&] { return count >= kItems && acquired == (kItems + 3 + 9) / 10; }, 15s))
      << count << " " << acquired;
  stop.emit();
  q.close();
  for (auto& t : runners) t.join();
  EXPECT_GE(count, kItems);
}

TEST(Asio, RelockingAHeldLockFailsWithDeadlockDetected) {
  ScopedSegmentName n("as_relock");
  auto lock = Segment::create(n.name, 1 << 20).lock("lk");
  asio::io_context io;
  Spawned s;
  bool timed = true;
  s.spawn(io, [&]() -> asio::awaitable<void> {
    EXPECT_TRUE(co_await lock.async_acquire(asio::use_awaitable));
    timed = co_await lock.async_acquire(10ms, asio::use_awaitable);  // as try_lock_for: false
    try {
      (void)co_await lock.async_acquire(asio::use_awaitable);
    } catch (...) {
      lock.unlock();
      throw;
    }
  });
  ASSERT_TRUE(run_until(io, s.done));
  EXPECT_FALSE(timed);
  EXPECT_THROW(s.rethrow(), ipckit::DeadlockDetected);
  EXPECT_FALSE(lock.locked());
}

TEST(Asio, TwoCoroutinesAwaitingOneQueueShareOneDescriptor) {
  ScopedSegmentName n("as_two");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<int>("q");
  asio::io_context io;
  Spawned warm;  // registers q once (and makes the io_context's own descriptors)
  warm.spawn(io, [&]() -> asio::awaitable<void> { (void)co_await q.async_get(1ms, asio::use_awaitable); });
  ASSERT_TRUE(run_until(io, warm.done));
  EXPECT_THROW(warm.rethrow(), ipckit::Empty);
  const int fds = open_fds();
  Spawned a, b;
  int sum = 0;
  auto one = [&]() -> asio::awaitable<void> {
    sum += co_await q.async_get(asio::use_awaitable);
    q.task_done();
  };
  a.spawn(io, one());
  b.spawn(io, one());
  settle(io);
  EXPECT_FALSE(a.done || b.done);
  EXPECT_EQ(open_fds(), fds) << "the second operation on the queue reuses the first one's descriptor";
  Child producer([&] {
    auto other = Segment::open(n.name).joinable_queue<int>("q");
    other.put(1);
    other.put(2);
    EXPECT_TRUE(other.join(10s)) << "both tasks were marked done by the awaiting consumers";
  });
  ASSERT_TRUE(run_until(io, a.done) && run_until(io, b.done));
  a.rethrow();
  b.rethrow();
  EXPECT_EQ(sum, 3);
  EXPECT_EQ(producer.wait_exit(), 0);
}

// 300 round trips through two queues with a blocking echo process: woken by
// descriptors, each takes microseconds; by the 25 ms re-check alone they
// would take ~4 s.
TEST(Asio, AwaitingCoroutinesAreWokenByTheDescriptorNotTheTick) {
  ScopedSegmentName n("as_echo");
  auto seg = Segment::create(n.name, 4 << 20);
  auto req = seg.queue<int>("req");
  auto resp = seg.queue<int>("resp");
  constexpr int kTrips = 300;
  Child echo([&] {
    auto s = Segment::open(n.name);
    auto in = s.queue<int>("req");
    auto out = s.queue<int>("resp");
    for (int i = 0; i < kTrips; ++i) out.put(in.get(10s) + 1);
  });
  asio::io_context io;
  Spawned s;
  std::vector<double> us;
  s.spawn(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < kTrips; ++i) {
      const auto t0 = Clock::now();
      co_await req.async_put(i, asio::use_awaitable);
      EXPECT_EQ(co_await resp.async_get(asio::use_awaitable), i + 1);
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
  });
  ASSERT_TRUE(run_until(io, s.done, 20s));
  s.rethrow();
  std::sort(us.begin(), us.end());
  const double total_ms = std::accumulate(us.begin(), us.end(), 0.0) / 1000;
  const auto slow = std::count_if(us.begin(), us.end(), [](double u) { return u > 5000; });
  std::printf("async round trip: median %.1f us, p99 %.1f us, max %.1f us, %d over 5 ms, total %.1f ms\n",
              us[us.size() / 2], us[us.size() * 99 / 100], us.back(), static_cast<int>(slow), total_ms);
  EXPECT_LT(total_ms, 1500) << "wakes came from the 25 ms re-check, not the descriptors";
  EXPECT_EQ(echo.wait_exit(), 0);
}

// Producer processes and consumer processes, each consumer an io_context
// with two awaiting coroutines forwarding what they get (async_put) to a
// results queue: every item arrives exactly once.
TEST(Asio, AwaitingConsumerProcessesAndProducerProcessesLoseAndDuplicateNothing) {
  ScopedSegmentName n("as_procs");
  auto seg = Segment::create(n.name, 8 << 20);
  const ipckit::QueueOptions small{.capacity_bytes = 2048};
  auto q = seg.queue<int>("q", small);
  auto out = seg.queue<int>("out", small);
  constexpr int kProducers = 3, kConsumers = 3, kEach = 1000;
  std::vector<Child> kids;
  for (int c = 0; c < kConsumers; ++c)
    kids.emplace_back([&] {
      auto s = Segment::open(n.name);
      auto in = s.queue<int>("q", small);
      auto to = s.queue<int>("out", small);
      asio::io_context io;
      int ended = 0;
      auto forward = [&]() -> asio::awaitable<void> {
        try {
          for (;;) co_await to.async_put(co_await in.async_get(asio::use_awaitable), asio::use_awaitable);
        } catch (const ipckit::Closed&) {
          ++ended;
        }
      };
      asio::co_spawn(io, forward(), asio::detached);
      asio::co_spawn(io, forward(), asio::detached);
      io.run_for(30s);
      EXPECT_EQ(ended, 2) << "both coroutines end with Closed";
    });
  for (int p = 0; p < kProducers; ++p)
    kids.emplace_back([&, p] {
      auto mine = Segment::open(n.name).queue<int>("q", small);
      for (int i = 0; i < kEach; ++i) mine.put(p * kEach + i);
    });
  std::vector<int> seen(kProducers * kEach, 0);
  for (int i = 0; i < kProducers * kEach; ++i) ++seen.at(out.get(10s));
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; })) << "every item exactly once";
  q.close();
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(), 0);
  EXPECT_EQ(out.qsize(), 0U);
}

// Threads of one process only: a lock taken by async_acquire on an
// io_context run by three threads is held by the thread that runs the
// completion, which may unlock it there; a thread that locks meanwhile
// makes the others wait.
TEST(AsioThreads, AsyncAcquireOnSeveralThreadsHandsTheLockToTheCompletingThread) {
  ScopedSegmentName n("as_lock_threads");
  auto seg = Segment::create(n.name, 1 << 20);
  auto lock = seg.lock("lk");
  asio::io_context io;
  constexpr int kRounds = 300;
  std::atomic<int> rounds{0}, not_mine{0};
  std::function<void()> again = [&] {
    lock.async_acquire(io, 5s, [&](std::exception_ptr e, bool ok) {
      if (e || !ok || !lock.held_by_me()) ++not_mine;
      if (ok && lock.held_by_me()) lock.unlock();
      if (++rounds < kRounds) again();
    });
  };
  for (int i = 0; i < 3; ++i) again();
  std::vector<std::thread> runners;
  for (int i = 0; i < 3; ++i) runners.emplace_back([&] { io.run_for(20s); });
  for (int i = 0; i < 100; ++i) {  // contention from a thread outside the io_context
    std::lock_guard g(lock);
  }
  for (auto& t : runners) t.join();
  EXPECT_GE(rounds, kRounds);
  EXPECT_EQ(not_mine, 0);
  EXPECT_FALSE(lock.locked());
}
