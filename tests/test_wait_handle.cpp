// Wait handles (ipckit/wait_handle.hpp) across real processes: a change in
// another process makes the descriptor readable, arm() answers "ready
// already", no wake is lost under many producers and awaiting consumers,
// a process killed while armed costs the others nothing, thousands of
// handles in one epoll set.
//
// Every poll has a deadline of seconds: a lost wake fails the test instead
// of hanging it. A descriptor that must NOT be readable is checked with a
// zero timeout after the state it depends on is settled.
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/queue_state.hpp"
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"
#include "test_helpers.hpp"

using namespace std::chrono_literals;
using ipckit::Segment;
using ipckit::WaitHandle;
using namespace ipckit::testing;

namespace {

// Whether `fd` becomes readable within `deadline`.
bool readable(int fd, std::chrono::milliseconds deadline = 10s) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(deadline.count())) == 1 && (p.revents & POLLIN) != 0;
}
bool readable_now(int fd) { return readable(fd, 0ms); }

}  // namespace

TEST(WaitHandle, AnItemPutByAnotherProcessMakesTheQueueHandleReadable) {
  ScopedSegmentName n("wh_q");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<int>("q");
  Signal go;
  WaitHandle h = q.wait_handle();
  ASSERT_GE(h.fd(), 0);
  EXPECT_NE(h.label().find("items of queue 'q'"), std::string::npos) << h.label();
  EXPECT_FALSE(h.arm()) << "an empty queue is not ready";
  EXPECT_FALSE(readable_now(h.fd())) << "armed and nothing happened, yet readable";
  Child producer([&] {
    auto s = Segment::open(n.name);
    auto cq = s.queue<int>("q");
    ASSERT_TRUE(go.wait());
    cq.put(42);
  });
  go.post();
  ASSERT_TRUE(readable(h.fd())) << "the put never reached the descriptor";
  EXPECT_EQ(q.try_get(), std::optional<int>(42));
  EXPECT_EQ(producer.wait_exit(), 0);
  // Re-armed on an empty queue: not readable until the next change.
  EXPECT_FALSE(h.arm());
  EXPECT_FALSE(readable_now(h.fd()));
  // Ready already: arm() says so.
  q.put(7);
  EXPECT_TRUE(h.arm());
  EXPECT_TRUE(h.ready());
}

TEST(WaitHandle, CloseMakesTheItemsAndRoomHandlesReadable) {
  ScopedSegmentName n("wh_close");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<int>("q", {.capacity_bytes = 64});
  while (q.try_put(1)) {
  }
  WaitHandle room = q.put_wait_handle();
  auto consumer_side = seg.queue<int>("q2");
  WaitHandle items = consumer_side.wait_handle();
  EXPECT_FALSE(room.arm());
  EXPECT_FALSE(items.arm());
  Child closer([&] {
    auto s = Segment::open(n.name);
    s.queue<int>("q", {.capacity_bytes = 64}).close();
    s.queue<int>("q2").close();
  });
  EXPECT_TRUE(readable(room.fd()));
  EXPECT_TRUE(readable(items.fd()));
  EXPECT_TRUE(room.ready());
  EXPECT_TRUE(items.ready());
  EXPECT_EQ(closer.wait_exit(), 0);
}

TEST(WaitHandle, RoomMadeByAnotherProcessMakesThePutHandleReadable) {
  ScopedSegmentName n("wh_room");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<int>("q", {.max_items = 2});
  q.put(1);
  q.put(2);
  WaitHandle h = q.put_wait_handle();
  EXPECT_FALSE(h.arm());
  Signal go;
  Child consumer([&] {
    auto s = Segment::open(n.name);
    ASSERT_TRUE(go.wait());
    EXPECT_EQ(s.queue<int>("q", {.max_items = 2}).get(5s), 1);
  });
  go.post();
  ASSERT_TRUE(readable(h.fd()));
  EXPECT_TRUE(q.try_put(3));
  EXPECT_EQ(consumer.wait_exit(), 0);
}

TEST(WaitHandle, EventSemaphoreAndPriorityQueueHandlesWakeAcrossProcesses) {
  ScopedSegmentName n("wh_sync");
  auto seg = Segment::create(n.name, 8 << 20);
  auto ev = seg.event("e");
  auto sem = seg.semaphore("s", 0);
  auto pq = seg.priority_queue<int>("p");
  WaitHandle he = ev.wait_handle(), hs = sem.wait_handle(), hp = pq.wait_handle();
  EXPECT_FALSE(he.arm());
  EXPECT_FALSE(hs.arm());
  EXPECT_FALSE(hp.arm());
  Signal go;
  Child peer([&] {
    auto s = Segment::open(n.name);
    ASSERT_TRUE(go.wait());
    s.event("e").set();
    ASSERT_TRUE(go.wait());
    s.semaphore("s", 0).release();
    ASSERT_TRUE(go.wait());
    s.priority_queue<int>("p").put(1, 5);
  });
  go.post();
  ASSERT_TRUE(readable(he.fd()));
  EXPECT_TRUE(ev.is_set());
  EXPECT_TRUE(he.arm()) << "a set event is ready at arm()";
  EXPECT_FALSE(readable_now(hs.fd()));
  go.post();
  ASSERT_TRUE(readable(hs.fd()));
  EXPECT_TRUE(sem.try_acquire());
  go.post();
  ASSERT_TRUE(readable(hp.fd()));
  EXPECT_EQ(pq.try_get(), std::optional<int>(5));
  EXPECT_EQ(peer.wait_exit(), 0);
}

TEST(WaitHandle, AnUnlockInAnotherProcessMakesTheLockHandleReadable) {
  ScopedSegmentName n("wh_lock");
  auto seg = Segment::create(n.name, 8 << 20);
  auto lock = seg.lock("L");
  Signal held, release;
  Child holder([&] {
    auto s = Segment::open(n.name);
    auto l = s.lock("L");
    l.lock();  // the fast path: no waiters bit until the parent arms
    held.post();
    ASSERT_TRUE(release.wait());
    l.unlock();
  });
  ASSERT_TRUE(held.wait());
  WaitHandle h = lock.wait_handle();
  EXPECT_FALSE(h.arm());
  EXPECT_FALSE(lock.try_lock());
  release.post();
  ASSERT_TRUE(readable(h.fd())) << "the unlock did not ring";
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
  EXPECT_EQ(holder.wait_exit(), 0);
}

TEST(WaitHandle, ALockWhoseHolderIsKilledReadsReadyAndIsTakenOver) {
  ScopedSegmentName n("wh_lockdead");
  auto seg = Segment::create(n.name, 8 << 20);
  auto lock = seg.lock("L");
  Signal held;
  Child holder([&] {
    auto s = Segment::open(n.name);
    s.lock("L").lock();
    held.post();
    ::pause();
  });
  ASSERT_TRUE(held.wait());
  WaitHandle h = lock.wait_handle();
  EXPECT_FALSE(h.arm());
  holder.kill();
  holder.wait();
  // A death rings nobody: a waiter's periodic re-check finds it ready.
  EXPECT_TRUE(h.ready());
  EXPECT_TRUE(lock.try_lock());
  EXPECT_TRUE(lock.owner_died());
  lock.unlock();
}

// Every item arrives exactly once though consumers only ever wait on their
// descriptors: a wake lost between a failed try and the poll would leave a
// consumer asleep for the poll's 10 s and fail the test.
TEST(WaitHandle, NoWakeIsLostUnderManyProducersAndAwaitingConsumers) {
  constexpr int kProducers = 3, kConsumers = 2, kEach = 3000;
  constexpr int kTotal = kProducers * kEach;
  ScopedSegmentName n("wh_many");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<std::uint32_t>("q", {.capacity_bytes = 4096});
  auto seen = seg.array<std::uint32_t>("seen", kTotal);
  auto lost = seg.value<std::uint32_t>("lost");
  std::vector<Child> kids;
  for (int c = 0; c < kConsumers; ++c)
    kids.emplace_back([&] {
      auto s = Segment::open(n.name);
      auto cq = s.queue<std::uint32_t>("q", {.capacity_bytes = 4096});
      auto mine = s.array<std::uint32_t>("seen", kTotal);
      auto lost_here = s.value<std::uint32_t>("lost");
      WaitHandle h = cq.wait_handle();
      for (;;) {
        while (auto v = cq.try_get()) at(mine[*v]).fetch_add(1);
        if (cq.closed() && cq.empty()) return;
        if (!h.arm() && !readable(h.fd())) {
          lost_here.set(lost_here.get() + 1);
          return;
        }
      }
    });
  std::vector<Child> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      auto s = Segment::open(n.name);
      auto pq = s.queue<std::uint32_t>("q", {.capacity_bytes = 4096});
      std::mt19937 rng(static_cast<unsigned>(p));
      for (int i = 0; i < kEach; ++i) {
        pq.put(static_cast<std::uint32_t>(p * kEach + i));
        // Now and then a pause long enough for the consumers to go idle.
        if (rng() % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
      }
    });
  for (auto& p : producers) EXPECT_EQ(p.wait_exit(), 0);
  q.close();
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(), 0);
  EXPECT_EQ(lost.get(), 0u) << "a consumer waited 10 s on its descriptor with items queued";
  int once = 0;
  for (int i = 0; i < kTotal; ++i) once += seen[static_cast<std::size_t>(i)] == 1 ? 1 : 0;
  EXPECT_EQ(once, kTotal) << "items lost or duplicated";
}

// Producers SIGKILLed at random instants of their puts (holding the
// producers' lock, mid-copy, between publish and wake): the awaiting
// consumer keeps getting items, none twice, and a last clean producer's
// items all arrive through the descriptor.
TEST(WaitHandle, ProducersKilledMidPutNeitherStallNorDuplicateForAnAwaitingConsumer) {
  constexpr std::uint32_t kRounds = 6, kFinal = 2000, kTagged = 1u << 31;
  ScopedSegmentName n("wh_kill");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<std::uint32_t>("q", {.capacity_bytes = 4096});
  auto progress = seg.value<std::uint32_t>("progress");
  Child consumer([&] {
    auto s = Segment::open(n.name);
    auto cq = s.queue<std::uint32_t>("q", {.capacity_bytes = 4096});
    auto got = s.value<std::uint32_t>("progress");
    WaitHandle h = cq.wait_handle();
    std::vector<bool> seen(kRounds << 20);
    std::uint32_t tagged = 0;
    while (tagged < kFinal) {
      while (auto v = cq.try_get()) {
        if ((*v & kTagged) != 0) {
          ++tagged;
          continue;
        }
        ASSERT_LT(*v, seen.size());
        ASSERT_FALSE(seen[*v]) << "item " << *v << " arrived twice";
        seen[*v] = true;
        got.set(got.get() + 1);
      }
      if (tagged < kFinal && !h.arm()) ASSERT_TRUE(readable(h.fd())) << "stalled with " << tagged << " tagged items";
    }
  });
  std::mt19937 rng(11);
  for (std::uint32_t r = 0; r < kRounds; ++r) {
    const std::uint32_t before = progress.get();
    Child producer([&, r] {
      auto pq = Segment::open(n.name).queue<std::uint32_t>("q", {.capacity_bytes = 4096});
      for (std::uint32_t i = 0; i < (1u << 20); ++i) pq.put((r << 20) | i);
    });
    ASSERT_TRUE(eventually([&] { return progress.get() >= before + 50 + rng() % 500; }));
    producer.kill();
    producer.wait();
  }
  Child last([&] {
    auto pq = Segment::open(n.name).queue<std::uint32_t>("q", {.capacity_bytes = 4096});
    for (std::uint32_t i = 0; i < kFinal; ++i) pq.put(kTagged | i);
  });
  EXPECT_EQ(last.wait_exit(), 0);
  EXPECT_EQ(consumer.wait_exit(), 0);
}

// A process killed while armed leaves its filter bit and its slot's
// doorbell behind; the first waker that finds its socket gone takes both
// down, and the word's flag with them, so later puts make no call at all.
TEST(WaitHandle, AProcessKilledWhileArmedCostsTheOthersNothing) {
  ScopedSegmentName n("wh_dead");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<int>("q");
  auto* state = raw_state<ipckit::detail::QueueState>(seg, "q");
  Signal armed;
  Child waiter([&] {
    auto s = Segment::open(n.name);
    auto cq = s.queue<int>("q");
    WaitHandle h = cq.wait_handle();
    EXPECT_FALSE(h.arm());
    armed.post();
    ::pause();
  });
  ASSERT_TRUE(armed.wait());
  EXPECT_NE(state->data.sleepers.load() & ipckit::detail::kSleeperAsync, 0u) << "arming set no flag";
  waiter.kill();
  waiter.wait();
  q.put(1);
  EXPECT_EQ(state->data.sleepers.load() & ipckit::detail::kSleeperAsync, 0u)
      << "a dead process's registration still makes every put ring";
  // A live process that arms afterwards is rung again.
  WaitHandle h = q.wait_handle();
  EXPECT_TRUE(h.arm());  // the item is there
  EXPECT_EQ(q.try_get(), std::optional<int>(1));
  EXPECT_FALSE(h.arm());
  Child producer([&] { Segment::open(n.name).queue<int>("q").put(2); });
  EXPECT_TRUE(readable(h.fd()));
  EXPECT_EQ(producer.wait_exit(), 0);
}

TEST(WaitHandle, HandlesOfOneWordShareADescriptorAndBelongToTheirProcess) {
  ScopedSegmentName n("wh_share");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<int>("q");
  WaitHandle a = q.wait_handle(), b = q.wait_handle(), room = q.put_wait_handle();
  EXPECT_EQ(a.fd(), b.fd());
  EXPECT_NE(a.fd(), room.fd());
  Child child([&] {
    EXPECT_EQ(message_of<ipckit::InvalidArgument>([&] { a.arm(); }).find("forked child") != std::string::npos, true);
  });
  EXPECT_EQ(child.wait_exit(), 0);
  WaitHandle empty;
  EXPECT_EQ(empty.fd(), -1);
  EXPECT_FALSE(empty.arm());
  EXPECT_FALSE(static_cast<bool>(empty));
}

// A child forked while the parent holds a handle closes its copy of the
// socket: the parent can drop its handle and bind the name again while the
// child lives, and the child never reads the parent's rings.
TEST(WaitHandle, AForkedChildDoesNotKeepItsParentsDoorbellBound) {
  ScopedSegmentName n("wh_forkbind");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<int>("q");
  auto h = std::make_unique<WaitHandle>(q.wait_handle());
  EXPECT_FALSE(h->arm());
  Signal checked, done;
  Child child([&] {
    EXPECT_EQ(h->fd(), -1) << "the child kept its parent's doorbell";
    checked.post();
    ASSERT_TRUE(done.wait());
  });
  ASSERT_TRUE(checked.wait());
  h.reset();
  WaitHandle again = q.wait_handle();  // threw "Address already in use" while the child held the name
  EXPECT_FALSE(again.arm());
  q.put(1);
  EXPECT_TRUE(readable(again.fd()));
  done.post();
  EXPECT_EQ(child.wait_exit(), 0);
}

// One epoll set over a thousand queues' descriptors, fed in random order by
// another process: every queue's item is found through its own descriptor.
TEST(WaitHandle, AThousandQueuesInOneEpollSet) {
  constexpr int kQueues = 1000;
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_cur < kQueues + 100) {
    lim.rlim_cur = std::min<rlim_t>(lim.rlim_max, kQueues + 200);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
  }
  if (lim.rlim_cur < kQueues + 100) GTEST_SKIP() << "fewer than " << kQueues + 100 << " descriptors allowed";
  ScopedSegmentName n("wh_thousand");
  auto seg = Segment::create(n.name, 32 << 20, {.max_objects = 2000});
  std::vector<ipckit::Queue<int>> queues;
  std::vector<WaitHandle> handles;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  for (int i = 0; i < kQueues; ++i) {
    queues.push_back(seg.queue<int>("q" + std::to_string(i), {.capacity_bytes = 256}));
    handles.push_back(queues.back().wait_handle());
    ASSERT_FALSE(handles.back().arm());
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    ASSERT_EQ(::epoll_ctl(ep, EPOLL_CTL_ADD, handles.back().fd(), &ev), 0);
  }
  Child producer([&] {
    auto s = Segment::open(n.name);
    std::vector<int> order(kQueues);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), std::mt19937(7));
    for (int i : order) s.queue<int>("q" + std::to_string(i), {.capacity_bytes = 256}).put(i);
  });
  std::vector<int> got(kQueues, 0);
  int total = 0;
  epoll_event events[64];
  while (total < kQueues) {
    const int k = ::epoll_wait(ep, events, 64, 10'000);
    ASSERT_GT(k, 0) << "only " << total << " of " << kQueues << " queues' items arrived";
    for (int e = 0; e < k; ++e) {
      const auto i = events[e].data.u32;
      handles[i].arm();  // empties the descriptor
      while (auto v = queues[i].try_get()) {
        EXPECT_EQ(*v, static_cast<int>(i));
        ++got[i];
        ++total;
      }
    }
  }
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](int c) { return c == 1; }));
  ::close(ep);
}

namespace {
int slow_square(int x) {
  std::this_thread::sleep_for(50ms);
  return x * x;
}
}  // namespace

TEST(WaitHandle, APoolFutureHandleIsReadableOnceDoneAndStaysSo) {
  ipckit::ProcessPool pool({.workers = 1});
  auto f = pool.submit(slow_square, 9);
  WaitHandle h = f.wait_handle();
  ASSERT_TRUE(readable(h.fd()));
  EXPECT_TRUE(h.arm());
  EXPECT_TRUE(readable_now(h.fd())) << "a done future's descriptor stays readable";
  EXPECT_EQ(f.get(), 81);
  ipckit::AnyFuture any = f;
  EXPECT_TRUE(readable(any.wait_handle().fd(), 0ms));
}

// Threads of one process (also run under TSan): one awaits through the
// descriptor, the others put, and handles are made and dropped meanwhile.
TEST(WaitHandleThreads, PutsFromOtherThreadsReachAnAwaitingThread) {
  constexpr int kPutters = 2, kEach = 2000;
  ScopedSegmentName n("wh_threads");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<int>("q", {.capacity_bytes = 4096});
  std::atomic<bool> stop{false};
  std::thread churn([&] {  // handles of another word made and dropped while rings go on
    while (!stop.load()) (void)q.put_wait_handle().arm();
  });
  std::vector<std::thread> putters;
  for (int t = 0; t < kPutters; ++t)
    putters.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) q.put(i);
    });
  WaitHandle h = q.wait_handle();
  int got = 0;
  while (got < kPutters * kEach) {
    while (q.try_get()) ++got;
    if (got < kPutters * kEach && !h.arm()) ASSERT_TRUE(readable(h.fd())) << "stalled at " << got;
  }
  for (auto& t : putters) t.join();
  stop = true;
  churn.join();
  EXPECT_EQ(got, kPutters * kEach);
}
