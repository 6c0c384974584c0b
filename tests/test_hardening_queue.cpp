// Hardening tests for the queue layer: stopped peers, hostile neighbours and
// corrupted shared memory (issue: every promise holds against them).
//
//  - QueueStoppedPeer / PriorityQueueStoppedPeer: a process SIGSTOPped while
//    it holds a queue's internal lock (inside get() or put()) must not stretch
//    anybody's timed or non-blocking call past its deadline. Each measured
//    call runs under a rescuer that SIGCONTs the stopped process after 3 s, so
//    that an unbounded wait fails the test instead of hanging it.
//  - QueueCorruption / PriorityQueueCorruption: words of a queue rewritten in
//    shared memory after it was opened give CorruptSegment or correct
//    behaviour, never an access outside the object. The operations run in a
//    child, so that a crash is an exit status, not the end of the test binary.
//  - JoinableQueueHandover: a consumer that exits normally without
//    task_done() and hands its task to another process, which marks it done
//    later, keeps the task counts exact.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cereal/types/string.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/detail/priority_queue_core.hpp"
#include "ipckit/detail/queue_core.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"
#include "test_helpers.hpp"

using namespace std::chrono_literals;
using ipckit::QueueOptions;
using ipckit::Segment;
using namespace ipckit::testing;
namespace d = ipckit::detail;

namespace {

// ---------------------------------------------------------------- stopped peers

// How far past its deadline a call may return, generously: the machine is
// shared with parallel builds. The old code returned only when the stopped
// process was continued (here after kRescueAfter).
constexpr auto kSlack = 250ms;
constexpr auto kRescueAfter = 3s;

// An item whose decoding stops the decoding process when it holds kStopMe:
// a consumer Ctrl-Z'd in the middle of get(), holding the queue's lock (a
// consumer decodes with it held).
constexpr std::int32_t kStopMe = -1;
struct StopOnDecode {
  std::int32_t v = 0;
  template <class Archive>
  void save(Archive& ar) const {
    ar(v);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(v);
    if (v == kStopMe) ::raise(SIGSTOP);
  }
};

// Runs `call` and checks that it returned within `timeout` + kSlack. If it
// has not returned after kRescueAfter, `stopped` is continued (SIGCONT) so
// that an unbounded wait ends, and the overrun is reported.
template <class Call>
void expect_bounded(const char* what, const Child& stopped, std::chrono::milliseconds timeout, Call&& call) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false, rescued = false;
  std::thread rescuer([&] {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, kRescueAfter, [&] { return done; })) {
      rescued = true;
      stopped.kill(SIGCONT);
    }
  });
  const auto t0 = Clock::now();
  struct Finish {
    std::mutex& m;
    std::condition_variable& cv;
    bool& done;
    std::thread& t;
    ~Finish() {
      {
        std::lock_guard lock(m);
        done = true;
      }
      cv.notify_all();
      t.join();
    }
  };
  {
    Finish finish{m, cv, done, rescuer};
    call();
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  EXPECT_FALSE(rescued) << what << " waited until the stopped process " << stopped.pid() << " was continued ("
                        << took.count() << " ms)";
  EXPECT_LT(took, timeout + kSlack) << what << " took " << took.count() << " ms with a timeout of " << timeout.count()
                                    << " ms while a stopped process held the lock";
}

// ---------------------------------------------------------------- corruption

// Runs `scribble(segment)` in another process: a cooperating process with a
// stray write, through its own mapping of the segment.
template <class F>
void scribble_from_another_process(const std::string& segment, F&& scribble) {
  Child writer([&] {
    auto seg = Segment::open(segment);
    scribble(seg);
  });
  ASSERT_EQ(writer.wait_exit(), 0);
}

// What a child's operations on a damaged queue may end in: correct behaviour
// or a typed error, never a signal.
template <class F>
void expect_no_crash(const char* what, F&& body) {
  Child user(std::forward<F>(body));
  EXPECT_EQ(user.wait_exit(60s), 0) << what
                                    << ": the process using the damaged queue died or failed "
                                       "(a negative status is the signal that killed it)";
}

// A user putting and getting at random for 1.5 s while words of the queue
// are rewritten; typed errors are expected, anything else fails.
template <class Put, class Get>
void put_and_get_at_random(unsigned seed, Put&& put, Get&& get) {
  const auto end = Clock::now() + 1500ms;
  std::mt19937 rng(seed);
  std::uint64_t calls = 0;
  while (Clock::now() < end) {
    try {
      if (rng() % 2 == 0)
        put(rng);
      else
        get();
    } catch (const ipckit::Error&) {
    }
    ++calls;
  }
  EXPECT_GT(calls, 100u);
}

constexpr std::uint64_t pack(std::uint64_t count, std::uint64_t pos) {
  return ((count & d::kCountMask) << d::kPosBits) | (pos & d::kPosMask);
}

}  // namespace

// ================================ stopped peers

// A consumer stopped inside get() (while decoding, so holding the consumers'
// lock with items still queued): every other consumer's timed and
// non-blocking gets keep their bounds. Before, they waited for as long as it
// was stopped, because "the queue is not the obstacle" kept them waiting.
TEST(QueueStoppedPeer, TimedAndNonBlockingGetsKeepTheirBoundWhileAStoppedConsumerHoldsTheConsumersLock) {
  ScopedSegmentName n("hq_stop_get");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<StopOnDecode>("q", {.capacity_bytes = 1 << 16});
  auto* s = raw_state<d::QueueState>(seg, "q");
  q.put({kStopMe});
  for (std::int32_t i = 1; i <= 4; ++i) q.put({i});
  Child consumer([&] { (void)q.get(); });
  ASSERT_TRUE(stopped(consumer));
  ASSERT_EQ(holder_tid(s->get.lock), static_cast<std::uint32_t>(consumer.pid()));
  ASSERT_EQ(q.qsize(), 5u);

  expect_bounded("get(200ms)", consumer, 200ms, [&] { EXPECT_THROW(q.get(200ms), ipckit::Empty); });
  expect_bounded("get_nowait()", consumer, 0ms, [&] { EXPECT_THROW(q.get_nowait(), ipckit::Empty); });
  expect_bounded("try_get()", consumer, 0ms, [&] { EXPECT_FALSE(q.try_get().has_value()); });
  expect_bounded("get_many(3, 200ms)", consumer, 200ms, [&] { EXPECT_THROW(q.get_many(3, 200ms), ipckit::Empty); });
  const std::string why = message_of<ipckit::Empty>([&] { (void)q.get_nowait(); });
  EXPECT_TRUE(contains(why, "pid " + std::to_string(consumer.pid()))) << why;
  EXPECT_TRUE(contains(why, "stopped")) << why;

  // Continued, it finishes its get and the queue goes on with nothing lost.
  consumer.kill(SIGCONT);
  EXPECT_EQ(consumer.wait_exit(), 0);
  for (std::int32_t i = 1; i <= 4; ++i) EXPECT_EQ(q.get(1s).v, i);
}

// The same on a JoinableQueue, with join(timeout) too (it looks for dead
// consumers under the consumers' lock).
TEST(QueueStoppedPeer, AJoinableQueuesGetsAndTimedJoinKeepTheirBoundWhileAStoppedConsumerHoldsTheLock) {
  ScopedSegmentName n("hq_stop_join");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<StopOnDecode>("q", {.capacity_bytes = 1 << 16});
  auto* s = raw_state<d::QueueState>(seg, "q");
  q.put({kStopMe});
  for (std::int32_t i = 1; i <= 3; ++i) q.put({i});
  Child consumer([&] {
    (void)q.get();
    q.task_done();
  });
  ASSERT_TRUE(stopped(consumer));
  ASSERT_EQ(holder_tid(s->get.lock), static_cast<std::uint32_t>(consumer.pid()));

  expect_bounded("get(200ms)", consumer, 200ms, [&] { EXPECT_THROW(q.get(200ms), ipckit::Empty); });
  expect_bounded("get_nowait()", consumer, 0ms, [&] { EXPECT_THROW(q.get_nowait(), ipckit::Empty); });
  expect_bounded("try_get()", consumer, 0ms, [&] { EXPECT_FALSE(q.try_get().has_value()); });
  expect_bounded("get_many(2, 200ms)", consumer, 200ms, [&] { EXPECT_THROW(q.get_many(2, 200ms), ipckit::Empty); });
  expect_bounded("join(200ms)", consumer, 200ms, [&] { EXPECT_FALSE(q.join(200ms)); });
  EXPECT_EQ(q.unfinished_tasks(), 4u);

  consumer.kill(SIGCONT);
  EXPECT_EQ(consumer.wait_exit(), 0);
  for (std::int32_t i = 1; i <= 3; ++i) {
    EXPECT_EQ(q.get(1s).v, i);
    q.task_done();
  }
  EXPECT_TRUE(q.join(1s));
  EXPECT_EQ(q.abandoned_tasks(), 0u);
}

// A producer stopped while it waits for room holds the producers' lock. On a
// full queue, put(x, t) and put_nowait throw Full by their deadline as
// before; once room is made the stopped holder is the only obstacle, and
// they (and put_many) must still keep their bounds.
TEST(QueueStoppedPeer, TimedAndNonBlockingPutsKeepTheirBoundWhileAStoppedProducerHoldsTheProducersLock) {
  ScopedSegmentName n("hq_stop_put");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::int64_t>("q", {.capacity_bytes = 4096, .max_items = 8});
  auto* s = raw_state<d::QueueState>(seg, "q");
  for (std::int64_t i = 0; i < 8; ++i) q.put(i);
  Child producer([&] { q.put(99); });  // waits for room, holding the producers' lock
  ASSERT_TRUE(eventually([&] {
    return holder_tid(s->put.lock) == static_cast<std::uint32_t>(producer.pid()) &&
           all_threads_sleep_in_futex(producer.pid());
  }));
  producer.kill(SIGSTOP);
  ASSERT_TRUE(stopped(producer));

  const std::vector<std::int64_t> three{100, 101, 102};
  expect_bounded("put(x, 200ms) on a full queue", producer, 200ms,
                 [&] { EXPECT_THROW(q.put(7, 200ms), ipckit::Full); });
  expect_bounded("put_nowait on a full queue", producer, 0ms, [&] { EXPECT_THROW(q.put_nowait(7), ipckit::Full); });
  expect_bounded("put_many(3, 200ms) on a full queue", producer, 200ms,
                 [&] { EXPECT_THROW(q.put_many(std::span<const std::int64_t>(three), 200ms), ipckit::Full); });

  for (std::int64_t i = 0; i < 8; ++i) EXPECT_EQ(q.get_nowait(), i);  // room for all; the holder cannot run
  ASSERT_EQ(holder_tid(s->put.lock), static_cast<std::uint32_t>(producer.pid()));
  expect_bounded("put(x, 200ms)", producer, 200ms, [&] { EXPECT_THROW(q.put(7, 200ms), ipckit::Full); });
  expect_bounded("put_nowait", producer, 0ms, [&] { EXPECT_THROW(q.put_nowait(7), ipckit::Full); });
  expect_bounded("put_many(3, 200ms)", producer, 200ms,
                 [&] { EXPECT_THROW(q.put_many(std::span<const std::int64_t>(three), 200ms), ipckit::Full); });
  const std::string why = message_of<ipckit::Full>([&] { q.put_nowait(7); });
  EXPECT_TRUE(contains(why, "pid " + std::to_string(producer.pid()))) << why;
  EXPECT_TRUE(contains(why, "stopped")) << why;

  producer.kill(SIGCONT);
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(q.get(1s), 99);
  EXPECT_TRUE(q.empty()) << "a put that threw Full put something";
}

// A ByteQueue consumer stopped while it waits for data (it holds the
// consumers' lock then); items arrive meanwhile.
TEST(QueueStoppedPeer, AByteQueuesTimedAndNonBlockingGetsKeepTheirBoundBehindAStoppedWaitingConsumer) {
  ScopedSegmentName n("hq_stop_bytes");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1 << 12});
  auto* s = raw_state<d::QueueState>(seg, "q");
  Child consumer([&] { EXPECT_EQ(q.get(), "first"); });
  ASSERT_TRUE(eventually([&] {
    return holder_tid(s->get.lock) == static_cast<std::uint32_t>(consumer.pid()) &&
           all_threads_sleep_in_futex(consumer.pid());
  }));
  consumer.kill(SIGSTOP);
  ASSERT_TRUE(stopped(consumer));
  q.put("first");
  q.put("second");
  q.put("third");

  expect_bounded("get(200ms)", consumer, 200ms, [&] { EXPECT_THROW(q.get(200ms), ipckit::Empty); });
  expect_bounded("get_nowait()", consumer, 0ms, [&] { EXPECT_THROW(q.get_nowait(), ipckit::Empty); });
  expect_bounded("put_nowait", consumer, 0ms, [&] { q.put_nowait("fourth"); });  // the other side is not affected

  consumer.kill(SIGCONT);
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_EQ(q.get(1s), "second");
  EXPECT_EQ(q.get(1s), "third");
  EXPECT_EQ(q.get(1s), "fourth");
}

// A PriorityQueue has one lock for producers and consumers: a consumer
// stopped while decoding holds it, and every timed or non-blocking put and
// get of everybody else must keep its bound.
TEST(PriorityQueueStoppedPeer, EveryTimedAndNonBlockingCallKeepsItsBoundWhileAStoppedConsumerHoldsTheLock) {
  ScopedSegmentName n("hpq_stop");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<StopOnDecode>("pq", {.capacity_bytes = 1 << 16, .max_message = 64});
  auto* s = raw_state<d::PriorityQueueState>(seg, "pq");
  pq.put(0, {kStopMe});
  pq.put(1, {1});
  pq.put(2, {2});
  Child consumer([&] { EXPECT_EQ(pq.get().v, kStopMe); });
  ASSERT_TRUE(stopped(consumer));
  ASSERT_EQ(holder_tid(s->lock), static_cast<std::uint32_t>(consumer.pid()));

  expect_bounded("put(p, x, 200ms)", consumer, 200ms, [&] { EXPECT_THROW(pq.put(5, {5}, 200ms), ipckit::Full); });
  expect_bounded("put_nowait", consumer, 0ms, [&] { EXPECT_THROW(pq.put_nowait(5, {5}), ipckit::Full); });
  expect_bounded("get(200ms)", consumer, 200ms, [&] { EXPECT_THROW(pq.get(200ms), ipckit::Empty); });
  expect_bounded("get_nowait()", consumer, 0ms, [&] { EXPECT_THROW(pq.get_nowait(), ipckit::Empty); });
  expect_bounded("try_get()", consumer, 0ms, [&] { EXPECT_FALSE(pq.try_get().has_value()); });
  expect_bounded("get_with_priority(200ms)", consumer, 200ms,
                 [&] { EXPECT_THROW(pq.get_with_priority(200ms), ipckit::Empty); });
  const std::string why = message_of<ipckit::Empty>([&] { (void)pq.get_nowait(); });
  EXPECT_TRUE(contains(why, "pid " + std::to_string(consumer.pid()))) << why;
  EXPECT_TRUE(contains(why, "stopped")) << why;

  consumer.kill(SIGCONT);
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_EQ(pq.get(1s).v, 1);
  EXPECT_EQ(pq.get(1s).v, 2);
  EXPECT_TRUE(pq.empty()) << "a put that threw Full put something";
}

// Untimed calls still wait for a stopped holder (that is correct: it will
// be continued or killed), and go on once it is continued.
TEST(QueueStoppedPeer, AnUntimedGetWaitsForTheStoppedHolderAndGoesOnWhenItIsContinued) {
  ScopedSegmentName n("hq_stop_untimed");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<StopOnDecode>("q", {.capacity_bytes = 1 << 16});
  q.put({kStopMe});
  q.put({1});
  q.put({2});
  Child stopper([&] { (void)q.get(); });
  ASSERT_TRUE(stopped(stopper));
  Signal got;
  Child waiter([&] {
    EXPECT_EQ(q.get().v, 1);
    got.post();
  });
  EXPECT_FALSE(got.wait(300ms)) << "an untimed get() gave up while items were queued";
  stopper.kill(SIGCONT);
  EXPECT_TRUE(got.wait(5s));
  EXPECT_EQ(stopper.wait_exit(), 0);
  EXPECT_EQ(waiter.wait_exit(), 0);
  EXPECT_EQ(q.get(1s).v, 2);
}

// ================================ corrupted words

// A stray write raises a queue's capacity and max_message after it was
// opened. The handle keeps the geometry it opened with: puts stop at the
// real ring's end (Full), an item over the real max_message is refused, and
// nothing outside the ring is written. Before, puts ran on past the ring
// into the next object.
TEST(QueueCorruption, ARaisedCapacityOrMaxMessageCannotMovePutsOutsideTheRing) {
  ScopedSegmentName n("hq_capacity");
  auto seg = Segment::create(n.name, 1 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096});
  auto canary = seg.array<std::uint8_t>("canary", 64 << 10);
  std::fill(canary.begin(), canary.end(), std::uint8_t{0xA5});
  scribble_from_another_process(n.name, [](Segment& seg) {
    auto* s = raw_state<d::QueueState>(seg, "q");
    s->capacity = std::uint64_t{1} << 27;
    s->max_message = std::uint64_t{1} << 26;
  });
  expect_no_crash("puts and gets after capacity was raised", [&] {
    const std::string item(100, 'x');
    int put = 0;
    for (int i = 0; i < 2000; ++i) {
      try {
        q.put_nowait(item);
        ++put;
      } catch (const ipckit::Full&) {
        break;
      } catch (const ipckit::CorruptSegment&) {
        break;
      }
    }
    EXPECT_LE(put, 4096 / 112) << "more items went in than the ring can hold";
    EXPECT_THROW(q.put_nowait(std::string(3000, 'y')), ipckit::MessageTooLarge);
    for (int i = 0; i < put; ++i) EXPECT_EQ(q.get_nowait(), item);
    EXPECT_THROW(q.get_nowait(), ipckit::Empty);
  });
  EXPECT_TRUE(std::all_of(canary.begin(), canary.end(), [](std::uint8_t b) { return b == 0xA5; }))
      << "the object after the queue was overwritten";
}

// A record whose length field was rewritten (with the fields that would
// have vouched for it: capacity, max_message, tail) is CorruptSegment, not
// a read of gigabytes past the ring.
TEST(QueueCorruption, AForgedRecordLengthIsCorruptSegmentNotAReadPastTheRing) {
  ScopedSegmentName n("hq_length");
  auto seg = Segment::create(n.name, 1 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096});
  q.put("hello");
  scribble_from_another_process(n.name, [](Segment& seg) {
    auto* s = raw_state<d::QueueState>(seg, "q");
    char* ring = reinterpret_cast<char*>(s) + sizeof(d::QueueState);
    const std::uint32_t forged = 0x7fff0000u;
    std::memcpy(ring, &forged, sizeof forged);  // the record at head position 0
    s->capacity = std::uint64_t{1} << 39;
    s->max_message = std::uint64_t{1} << 38;
    s->put.pos.store(pack(1, 0x7fff0010u));
  });
  expect_no_crash("a get of the forged record", [&] { EXPECT_THROW((void)q.get_nowait(), ipckit::CorruptSegment); });
}

// Misaligned or runaway positions: the producer's tail, the consumer's head.
// A misaligned tail made the skip marker land past the ring's end.
TEST(QueueCorruption, AMisalignedOrRunawayPositionIsCorruptSegmentAndNothingPastTheRingIsWritten) {
  ScopedSegmentName n("hq_positions");
  auto seg = Segment::create(n.name, 1 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096});
  auto after = seg.array<std::uint8_t>("after", 4096);
  std::fill(after.begin(), after.end(), std::uint8_t{0xA5});
  auto* s = raw_state<d::QueueState>(seg, "q");
  char* ring_end = reinterpret_cast<char*>(s) + sizeof(d::QueueState) + 4096;
  std::array<char, 64> beyond{};
  std::memcpy(beyond.data(), ring_end, beyond.size());

  scribble_from_another_process(n.name, [](Segment& seg) {
    auto* s = raw_state<d::QueueState>(seg, "q");
    s->put.pos.store(pack(0, 4095));
    s->get.pos.store(pack(0, 4095));
    s->put.peer_cache = pack(0, 4095);
  });
  expect_no_crash("a put at a misaligned tail",
                  [&] { EXPECT_THROW(q.put_nowait("0123456789"), ipckit::CorruptSegment); });
  EXPECT_EQ(std::memcmp(beyond.data(), ring_end, beyond.size()), 0) << "a put wrote past the ring's end";

  scribble_from_another_process(n.name, [](Segment& seg) {
    auto* s = raw_state<d::QueueState>(seg, "q");
    s->get.pos.store(pack(0, 4094));
    s->put.pos.store(pack(1, 4094 + 64));
  });
  expect_no_crash("a get at a misaligned head", [&] { EXPECT_THROW((void)q.get_nowait(), ipckit::CorruptSegment); });

  scribble_from_another_process(n.name, [](Segment& seg) {
    auto* s = raw_state<d::QueueState>(seg, "q");
    s->get.pos.store(pack(0, 0));
    s->put.peer_cache = pack(0, 0);
    s->put.pos.store(pack(3, 3 * 4096));  // three rings' worth queued in a ring of one
  });
  expect_no_crash("a put and a get with the tail three rings ahead", [&] {
    EXPECT_THROW(q.put_nowait("x"), ipckit::CorruptSegment);
    EXPECT_THROW((void)q.get_nowait(), ipckit::CorruptSegment);
  });
  EXPECT_EQ(std::memcmp(beyond.data(), ring_end, beyond.size()), 0) << "a put wrote past the ring's end";
}

// A scribbler rewrites a queue's geometry, positions and ring bytes with
// random values, over and over, while another process puts and gets: every
// call ends in an item, Full, Empty, DecodeError or CorruptSegment; the
// user never dies of it.
TEST(QueueCorruption, WordsRewrittenWhileTheQueueIsInUseNeverCrashTheUser) {
  ScopedSegmentName n("hq_scribble");
  auto seg = Segment::create(n.name, 1 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096});
  auto stop = seg.value<int>("stop", 0);
  Child scribbler([&] {
    auto* s = raw_state<d::QueueState>(seg, "q");
    char* ring = reinterpret_cast<char*>(s) + sizeof(d::QueueState);
    std::mt19937_64 rng(7);
    const auto wild = [&]() -> std::uint64_t {
      switch (rng() % 4) {
        case 0:
          return rng();
        case 1:
          return rng() % 8192;
        case 2:
          return std::uint64_t{1} << (rng() % 64);
        default:
          return pack(rng() % 64, rng() % 16384);
      }
    };
    while (stop.get() == 0) {
      switch (rng() % 8) {
        case 0:
          s->capacity = wild();
          break;
        case 1:
          s->max_message = wild();
          break;
        case 2:
          s->put.pos.store(wild());
          break;
        case 3:
          s->get.pos.store(wild());
          break;
        case 4:
          s->put.peer_cache = wild();
          break;
        case 5:
          s->get.peer_cache = wild();
          break;
        case 6:
          s->max_items = wild();
          break;
        default: {
          const std::uint32_t v = static_cast<std::uint32_t>(wild());
          std::memcpy(ring + (rng() % (4096 / 4)) * 4, &v, sizeof v);
        }
      }
    }
  });
  expect_no_crash("puts and gets under a scribbler", [&] {
    put_and_get_at_random(
        11, [&](std::mt19937& rng) { q.put_nowait(std::string(rng() % 300, 'p')); }, [&] { (void)q.get_nowait(); });
  });
  stop.set(1);
  EXPECT_EQ(scribbler.wait_exit(), 0);
}

// The priority queue's shared words that index memory: heap size, free-stack
// top, heap entries, free-stack entries, slot lengths and states, rewritten
// at random while another process puts and gets.
TEST(PriorityQueueCorruption, WordsRewrittenWhileTheQueueIsInUseNeverCrashTheUser) {
  ScopedSegmentName n("hpq_scribble");
  auto seg = Segment::create(n.name, 1 << 20);
  const QueueOptions options{.capacity_bytes = 1 << 14, .max_message = 64};
  auto pq = seg.priority_queue<std::string>("pq", options);
  auto stop = seg.value<int>("stop", 0);
  const std::uint64_t slots = pq.slots();
  Child scribbler([&] {
    auto* s = raw_state<d::PriorityQueueState>(seg, "pq");
    const auto layout = d::priority_queue_layout(slots, s->slot_size);
    char* body = reinterpret_cast<char*>(s);
    auto* heap = reinterpret_cast<d::PriorityHeapEntry*>(body + layout.heap_offset);
    auto* free = reinterpret_cast<std::uint32_t*>(body + layout.free_offset);
    const std::uint64_t slot_size = s->slot_size;
    std::mt19937_64 rng(5);
    // Mostly plausible values (so that the consistency checks pass and the
    // next read of the same word is the one that matters), sometimes wild.
    const auto value = [&](std::uint64_t plausible) -> std::uint64_t {
      return rng() % 4 == 0 ? (rng() % 2 == 0 ? rng() : std::uint64_t{1} << (rng() % 64)) : rng() % plausible;
    };
    while (stop.get() == 0) {
      switch (rng() % 9) {
        case 0:
          s->heap_size = value(slots + 1);
          break;
        case 1:
          s->free_top = value(slots + 1);
          break;
        case 2:
          heap[rng() % slots].slot = value(slots);
          break;
        case 3:
          free[rng() % slots] = static_cast<std::uint32_t>(value(slots));
          break;
        case 4: {
          auto* sl = reinterpret_cast<d::PrioritySlot*>(body + layout.slots_offset + (rng() % slots) * slot_size);
          sl->length = static_cast<std::uint32_t>(value(128));
          break;
        }
        case 5: {
          auto* sl = reinterpret_cast<d::PrioritySlot*>(body + layout.slots_offset + (rng() % slots) * slot_size);
          sl->state.store(static_cast<std::uint32_t>(rng() % 3));
          break;
        }
        case 6:
          s->slot_count = value(slots * 4);
          break;
        case 7:
          s->slot_size = value(4096);
          break;
        default:
          s->max_message = value(4096);
          break;
      }
    }
  });
  expect_no_crash("puts and gets under a scribbler", [&] {
    put_and_get_at_random(
        13,
        [&](std::mt19937& rng) {
          const auto priority = static_cast<std::int64_t>(rng() % 5);
          pq.put_nowait(priority, std::string(rng() % 40, 'p'));
        },
        [&] { (void)pq.get_nowait(); });
  });
  stop.set(1);
  EXPECT_EQ(scribbler.wait_exit(), 0);
}

// Deterministic cases: geometry fields rewritten (the handle keeps its
// own), a heap entry naming a slot that does not exist with the heap size
// out of range (rebuilt from the slots), and a slot length over max_message
// (CorruptSegment): each the right item or a typed error.
TEST(PriorityQueueCorruption, ForgedLengthsHeapEntriesCountsAndGeometryAreCorruptSegmentOrRepaired) {
  ScopedSegmentName n("hpq_forged");
  auto seg = Segment::create(n.name, 1 << 20);
  const QueueOptions options{.capacity_bytes = 1 << 14, .max_message = 64};
  auto pq = seg.priority_queue<std::string>("pq", options);
  const std::uint64_t slots = pq.slots();
  const auto layout = d::priority_queue_layout(slots, d::priority_slot_size(64));
  pq.put(1, "a");
  pq.put(2, "b");
  pq.put(3, "z");
  scribble_from_another_process(n.name, [&](Segment& seg) {
    auto* s = raw_state<d::PriorityQueueState>(seg, "pq");
    s->slot_count = slots * 1000;
    s->slot_size = 1 << 20;
    s->max_message = 1 << 30;
  });
  expect_no_crash("gets after the geometry fields were rewritten", [&] {
    EXPECT_EQ(pq.get_nowait(), "a");
    EXPECT_THROW(pq.put_nowait(0, std::string(65, 'c')), ipckit::MessageTooLarge);
    pq.put_nowait(0, "c");
    EXPECT_EQ(pq.get_nowait(), "c");
  });
  scribble_from_another_process(n.name, [&](Segment& seg) {
    auto* s = raw_state<d::PriorityQueueState>(seg, "pq");
    auto* heap = reinterpret_cast<d::PriorityHeapEntry*>(reinterpret_cast<char*>(s) + layout.heap_offset);
    heap[0].slot = std::uint64_t{1} << 40;
    s->heap_size = s->heap_size + (std::uint64_t{1} << 40);
  });
  expect_no_crash("a get after the heap was rewritten",
                  [&] { EXPECT_EQ(pq.get_nowait(), "b") << "the heap is rebuilt from the slots"; });
  scribble_from_another_process(n.name, [&](Segment& seg) {
    auto* s = raw_state<d::PriorityQueueState>(seg, "pq");
    char* body = reinterpret_cast<char*>(s);
    auto* heap = reinterpret_cast<d::PriorityHeapEntry*>(body + layout.heap_offset);
    auto* sl =
        reinterpret_cast<d::PrioritySlot*>(body + layout.slots_offset + heap[0].slot * d::priority_slot_size(64));
    sl->length = 1u << 31;
  });
  expect_no_crash("a get of a slot with a forged length",
                  [&] { EXPECT_THROW((void)pq.get_nowait(), ipckit::CorruptSegment); });
  EXPECT_TRUE(pq.empty()) << "the forged item was dropped";
}

// ================================ a task handed over at exit

// A consumer gets a task and exits normally without task_done(), handing
// the work to another process (legal in Python). Its task counts as
// abandoned once its death is noticed (join() returns); the later
// task_done() by the other process settles it instead of throwing, and the
// counts stay exact.
TEST(JoinableQueueHandover, ATaskGotByAProcessThatExitsIsSettledByALaterTaskDoneFromAnotherProcess) {
  ScopedSegmentName n("hjq_handover");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<int>("jobs");
  q.put(1);
  Child getter([&] { EXPECT_EQ(q.get(5s), 1); });  // exits 0 without task_done()
  ASSERT_EQ(getter.wait_exit(), 0);
  EXPECT_TRUE(q.join(5s)) << "the getter's death abandons its task";
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_EQ(q.abandoned_tasks(), 1u);

  Child finisher([&] { q.task_done(); });  // the work was handed to it
  EXPECT_EQ(finisher.wait_exit(), 0) << "the later task_done() of an abandoned task threw";
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_EQ(q.abandoned_tasks(), 0u) << "the task_done settled the abandoned task";
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument) << "one more task_done() than items were put";
  EXPECT_TRUE(q.join(1s));
}

// The same while other tasks are in flight: the late task_done() settles
// the abandoned task, not another consumer's unfinished one, so join() still
// waits for that one; every count adds up at every step.
TEST(JoinableQueueHandover, ALateTaskDoneSettlesTheAbandonedTaskAndNotAnotherConsumersUnfinishedOne) {
  ScopedSegmentName n("hjq_handover_busy");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<int>("jobs");
  for (int i = 1; i <= 3; ++i) q.put(i);
  Child getter([&] { EXPECT_EQ(q.get(5s), 1); });  // exits without task_done()
  ASSERT_EQ(getter.wait_exit(), 0);
  Signal got, finish;
  Child worker([&] {
    EXPECT_EQ(q.get(5s), 2);
    got.post();
    EXPECT_TRUE(finish.wait(20s));
    q.task_done();
  });
  ASSERT_TRUE(got.wait());
  // A join() looks for dead consumers while it waits: it finds the getter.
  EXPECT_FALSE(q.join(300ms)) << "the worker's task and the queued one are unfinished";
  ASSERT_EQ(q.abandoned_tasks(), 1u);
  EXPECT_EQ(q.unfinished_tasks(), 2u);

  Child finisher([&] { q.task_done(); });  // finishes the getter's task
  EXPECT_EQ(finisher.wait_exit(), 0);
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  EXPECT_EQ(q.unfinished_tasks(), 2u) << "the late task_done() finished somebody else's task";
  EXPECT_FALSE(q.join(100ms));

  finish.post();
  EXPECT_EQ(worker.wait_exit(), 0);
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_EQ(q.get_nowait(), 3);
  q.task_done();
  EXPECT_TRUE(q.join(1s));
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
}

// The task_done() may also come before the getter's death was noticed:
// then it finishes the dead getter's task directly, nothing is abandoned.
TEST(JoinableQueueHandover, ATaskDoneBeforeTheExitIsNoticedFinishesTheTaskAndNothingIsAbandoned) {
  ScopedSegmentName n("hjq_handover_early");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<int>("jobs");
  q.put(1);
  Child getter([&] { EXPECT_EQ(q.get(5s), 1); });
  ASSERT_EQ(getter.wait_exit(), 0);
  Child finisher([&] { q.task_done(); });
  EXPECT_EQ(finisher.wait_exit(), 0);
  EXPECT_TRUE(q.join(1s));
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_EQ(q.abandoned_tasks(), 0u);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
}

// ============================================ waiters killed in their sleep

// A consumer SIGKILLed while asleep in get() never takes itself off the
// queue's sleeper count. Before, the count stayed at 1 for good and every
// later put paid a wake system call (the soak run lost two thirds of its
// throughput after a few hundred kills). Now the first wake call that wakes
// nobody audits the count: it restarts at 0, and once the audit's grace
// period is over a put makes no wake call again. A live consumer asleep
// through all this is still woken by the next put.
TEST(SleeperAudit, AConsumerKilledAsleepStopsCostingEveryPutAWakeCall) {
  ScopedSegmentName n("hq_sleeper_audit");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.capacity_bytes = 1 << 16});
  const auto* state = static_cast<const d::QueueState*>(ipckit::detail::SegmentAccess::object_body(seg, "q"));
  auto& sleepers = const_cast<std::atomic<std::uint32_t>&>(state->data.sleepers);

  {
    Child doomed([&] { (void)q.get(); });
    ASSERT_TRUE(asleep(doomed));
    ASSERT_EQ(d::sleeper_count(sleepers.load()), 1u);
    doomed.kill(SIGKILL);
    EXPECT_EQ(doomed.wait_exit(), -SIGKILL);
  }
  EXPECT_EQ(d::sleeper_count(sleepers.load()), 1u) << "the dead consumer is still counted";

  q.put(1);  // wakes nobody: the audit restarts the count
  EXPECT_EQ(q.get(1s), 1);
  EXPECT_EQ(d::sleeper_count(sleepers.load()), 0u) << "a dead sleeper stayed counted";

  // A live consumer that falls asleep during the grace period is counted in
  // the new epoch and woken by the next put.
  Signal got;
  Child live([&] {
    EXPECT_EQ(q.get(10s), 2);
    got.post();
  });
  ASSERT_TRUE(asleep(live));
  q.put(2);
  EXPECT_TRUE(got.wait(2s)) << "a live sleeper missed its wake-up after the audit";
  EXPECT_EQ(live.wait_exit(), 0);

  // After the grace period, with nobody asleep, changes make no wake call.
  EXPECT_TRUE(eventually([&] { return !d::must_wake(sleepers); }, 6s))
      << "sleepers word " << std::hex << sleepers.load();
}

// The same for a semaphore, whose futex word is its count.
TEST(SleeperAudit, AWaiterKilledAsleepOnASemaphoreIsAuditedAway) {
  ScopedSegmentName n("hq_sleeper_audit_sem");
  auto seg = Segment::create(n.name, 1 << 20);
  auto sem = seg.semaphore("s", 0);
  const auto* state = static_cast<const d::SemaphoreState*>(ipckit::detail::SegmentAccess::object_body(seg, "s"));
  auto& sleepers = const_cast<std::atomic<std::uint32_t>&>(state->sleepers);
  {
    Child doomed([&] { sem.acquire(); });
    ASSERT_TRUE(asleep(doomed));
    doomed.kill(SIGKILL);
    EXPECT_EQ(doomed.wait_exit(), -SIGKILL);
  }
  ASSERT_EQ(d::sleeper_count(sleepers.load()), 1u);
  sem.release();
  EXPECT_EQ(d::sleeper_count(sleepers.load()), 0u);
  EXPECT_TRUE(sem.try_acquire());
  Signal got;
  Child live([&] {
    EXPECT_TRUE(sem.acquire(10s));
    got.post();
  });
  ASSERT_TRUE(asleep(live));
  sem.release();
  EXPECT_TRUE(got.wait(2s));
  EXPECT_EQ(live.wait_exit(), 0);
  EXPECT_TRUE(eventually([&] { return !d::must_wake(sleepers); }, 6s));
}
