// Queue, JoinableQueue and ByteQueue across real processes (and threads):
// Python's queue semantics, typed errors, blocking and wake-ups, close(),
// many producers and consumers, and above all producers and consumers
// SIGKILLed at random instants inside put() and get().
//
// Readiness is reached through pipes, the queue itself, shared counters, or
// by polling /proc until a waiter sleeps in the kernel, never by a bare
// sleep; every wait has a deadline so that a lost wake-up or a wedged queue
// fails a test instead of hanging it. Timing checks assert lower bounds only.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <algorithm>
#include <array>
#include <atomic>
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
#include "kill_harness.hpp"
#include "multiprocess.hpp"
#include "queue_items.hpp"

using namespace std::chrono_literals;
using ipckit::QueueOptions;
using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::ScopedSegmentName;
using namespace ipckit::testing;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------- helpers

// CPU time this process has used.
std::chrono::nanoseconds process_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// ---------------------------------------------------------------- item types

// A user struct with a single serialize().
struct Point {
  std::int32_t x = 0;
  double y = 0;
  std::string label;
  std::vector<std::int16_t> tags;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, y, label, tags);
  }
  bool operator==(const Point&) const = default;
};

}  // namespace

// ---------------------------------------------------------------- basics

TEST(Queue, ItemsComeOutInTheOrderTheyWentIn) {
  ScopedSegmentName n("q_fifo");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::int64_t>("numbers");
  EXPECT_TRUE(q.empty());
  for (std::int64_t i = 0; i < 1000; ++i) q.put(i * 7 - 3);
  EXPECT_EQ(q.qsize(), 1000u);
  for (std::int64_t i = 0; i < 1000; ++i) ASSERT_EQ(q.get_nowait(), i * 7 - 3);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes_used(), 0u);
}

TEST(Queue, AnotherProcessOpeningTheQueueByNameGetsTheItemsInOrder) {
  ScopedSegmentName n("q_fifo_procs");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("words");
  Child producer([&] {
    auto mine = Segment::open(n.name).queue<std::string>("words");
    for (int i = 0; i < 2000; ++i) mine.put("word-" + std::to_string(i));
  });
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(q.get(10s), "word-" + std::to_string(i));
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_TRUE(q.empty());
}

TEST(Queue, StringsVectorsMapsAndUserStructsSurviveTheTripBetweenProcesses) {
  ScopedSegmentName n("q_types");
  auto seg = Segment::create(n.name, 8 << 20);
  auto strings = seg.queue<std::string>("strings");
  auto vectors = seg.queue<std::vector<double>>("vectors");
  auto maps = seg.queue<std::map<std::string, int>>("maps");
  auto points = seg.queue<Point>("points");
  const std::string with_nul("a\0b\0c", 5);
  const std::string long_one(100000, 'z');
  const std::vector<double> vec{1.5, -2.25, 1e300, 0.0};
  const std::map<std::string, int> dict{{"a", 1}, {"b", 2}, {"", -7}};
  const Point point{42, 3.25, "centre", {1, -2, 3}};
  Child producer([&] {
    auto seg2 = Segment::open(n.name);
    auto s = seg2.queue<std::string>("strings");
    s.put("");
    s.put(with_nul);
    s.put(long_one);
    auto v = seg2.queue<std::vector<double>>("vectors");
    v.put({});
    v.put(vec);
    seg2.queue<std::map<std::string, int>>("maps").put(dict);
    seg2.queue<Point>("points").put(point);
    seg2.queue<Point>("points").put(Point{});
  });
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(strings.get(5s), "");
  EXPECT_EQ(strings.get(5s), with_nul);
  EXPECT_EQ(strings.get(5s), long_one);
  EXPECT_TRUE(vectors.get(5s).empty());
  EXPECT_EQ(vectors.get(5s), vec);
  EXPECT_EQ(maps.get(5s), dict);
  EXPECT_EQ(points.get(5s), point);
  EXPECT_EQ(points.get(5s), Point{});
}

TEST(Queue, QsizeEmptyAndFullFollowPutsAndGets) {
  ScopedSegmentName n("q_sizes");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.max_items = 3});
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.qsize(), 0u);
  q.put(1);
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_GT(q.bytes_used(), 0u);
  q.put(2);
  q.put(3);
  EXPECT_TRUE(q.full());
  EXPECT_EQ(q.qsize(), 3u);
  Child other([&] {
    auto mine = Segment::open(n.name).queue<int>("q", {.max_items = 3});
    EXPECT_EQ(mine.qsize(), 3u);
    EXPECT_TRUE(mine.full());
    EXPECT_EQ(mine.get_nowait(), 1);
  });
  EXPECT_EQ(other.wait_exit(), 0);
  EXPECT_EQ(q.qsize(), 2u) << "a get in another process shows in this one";
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_EQ(q.get_nowait(), 3);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes_used(), 0u);
}

TEST(Queue, PutNowaitOnAQueueFullOfItemsThrowsFull) {
  ScopedSegmentName n("q_full_items");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.max_items = 3});
  for (int i = 0; i < 3; ++i) q.put_nowait(i);
  EXPECT_THROW(q.put_nowait(3), ipckit::Full);
  EXPECT_EQ(q.qsize(), 3u) << "a refused put adds nothing";
  EXPECT_EQ(q.get_nowait(), 0);
  EXPECT_NO_THROW(q.put_nowait(3));
  EXPECT_THROW(q.put_nowait(4), ipckit::Full);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(q.get_nowait(), i);
}

TEST(Queue, PutNowaitOnAQueueFullOfBytesThrowsFull) {
  ScopedSegmentName n("q_full_bytes");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q", {.capacity_bytes = 4096});
  const std::string item(100, 'x');  // 108 bytes encoded: 120 in the ring with its header and padding
  int n_put = 0;
  try {
    for (; n_put < 1000; ++n_put) q.put_nowait(item);
  } catch (const ipckit::Full&) {
  }
  // 4096 bytes hold 34 such records; allow a little for the implementation's
  // bookkeeping, but not a queue that refuses while most of it is free.
  EXPECT_GE(n_put, 30);
  EXPECT_LE(n_put, 4096 / 108);
  EXPECT_EQ(q.qsize(), static_cast<std::size_t>(n_put));
  EXPECT_LE(q.bytes_used(), 4096u);
  EXPECT_THROW(q.put_nowait(item), ipckit::Full);
  // Freeing two records makes room again, also across the ring's end.
  EXPECT_EQ(q.get_nowait(), item);
  EXPECT_EQ(q.get_nowait(), item);
  EXPECT_NO_THROW(q.put_nowait(item));
  EXPECT_EQ(q.qsize(), static_cast<std::size_t>(n_put - 1));
  while (!q.empty()) EXPECT_EQ(q.get_nowait(), item);
  EXPECT_EQ(q.bytes_used(), 0u);
}

TEST(Queue, GetNowaitOnAnEmptyQueueThrowsEmptyAndTryGetReturnsNothing) {
  ScopedSegmentName n("q_empty");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q");
  EXPECT_THROW(q.get_nowait(), ipckit::Empty);
  EXPECT_EQ(q.try_get(), std::nullopt);
  q.put("one");
  auto got = q.try_get();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, "one");
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_THROW(q.get_nowait(), ipckit::Empty);
}

TEST(Queue, TimedGetOnAnEmptyQueueThrowsEmptyAfterAtLeastTheTimeout) {
  ScopedSegmentName n("q_get_timeout");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q");
  for (auto timeout : {1ms, 30ms, 120ms}) {
    const auto t0 = Clock::now();
    EXPECT_THROW(q.get(timeout), ipckit::Empty);
    EXPECT_GE(Clock::now() - t0, timeout);
  }
  // A zero or negative timeout means "do not wait"; run it in a child so that
  // one mistaken for a huge unsigned timeout fails instead of hanging.
  Child child([&] {
    const auto t0 = Clock::now();
    EXPECT_THROW(q.get(0ns), ipckit::Empty);
    EXPECT_THROW(q.get(-1s), ipckit::Empty);
    EXPECT_LT(Clock::now() - t0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
}

TEST(Queue, TimedPutOnAFullQueueThrowsFullAfterAtLeastTheTimeout) {
  ScopedSegmentName n("q_put_timeout");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.max_items = 1});
  q.put(1);
  for (auto timeout : {1ms, 30ms, 120ms}) {
    const auto t0 = Clock::now();
    EXPECT_THROW(q.put(2, timeout), ipckit::Full);
    EXPECT_GE(Clock::now() - t0, timeout);
  }
  Child child([&] {
    const auto t0 = Clock::now();
    EXPECT_THROW(q.put(2, 0ns), ipckit::Full);
    EXPECT_THROW(q.put(2, -1s), ipckit::Full);
    EXPECT_LT(Clock::now() - t0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get_nowait(), 1);
}

TEST(Queue, ATimedGetReturnsTheItemAnotherProcessPutsBeforeTheTimeout) {
  ScopedSegmentName n("q_timed_ok");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q");
  Child producer([&] {
    EXPECT_TRUE(eventually([&] { return sleeps_in_futex(::getppid(), ::getppid()); })) << "the getter never slept";
    q.put("late");
  });
  EXPECT_EQ(q.get(20s), "late");
  EXPECT_EQ(producer.wait_exit(), 0);
}

TEST(Queue, OpeningWithAnotherItemTypeThrowsTypeMismatch) {
  ScopedSegmentName n("q_type");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::int32_t>("q");
  q.put(5);
  EXPECT_THROW(seg.queue<std::int64_t>("q"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.queue<std::string>("q"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.queue<Point>("q"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.byte_queue("q"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.joinable_queue<std::int32_t>("q"), ipckit::TypeMismatch) << "a joinable queue is another kind";
  EXPECT_THROW(seg.value<std::int32_t>("q"), ipckit::TypeMismatch);
  seg.byte_queue("bytes");
  EXPECT_THROW(seg.queue<std::string>("bytes"), ipckit::TypeMismatch);
  seg.joinable_queue<int>("jobs");
  EXPECT_THROW(seg.queue<int>("jobs"), ipckit::TypeMismatch);
  Child child([&] {
    auto seg2 = Segment::open(n.name);
    EXPECT_THROW(seg2.queue<double>("q"), ipckit::TypeMismatch);
    EXPECT_EQ(seg2.queue<std::int32_t>("q").get_nowait(), 5) << "the right type still opens it";
  });
  EXPECT_EQ(child.wait_exit(), 0);
  try {
    seg.queue<std::string>("q");
    FAIL() << "expected TypeMismatch";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("'q'"), std::string::npos) << "the message names the queue: " << e.what();
  }
}

TEST(Queue, OpeningWithAnotherCapacityMaxMessageOrMaxItemsThrowsTypeMismatch) {
  ScopedSegmentName n("q_options");
  auto seg = Segment::create(n.name, 8 << 20);
  const QueueOptions made{.capacity_bytes = 1 << 16, .max_items = 100, .max_message = 1000};
  auto q = seg.queue<int>("q", made);
  EXPECT_NO_THROW(seg.queue<int>("q", made));
  EXPECT_THROW(seg.queue<int>("q", {.capacity_bytes = 1 << 17, .max_items = 100, .max_message = 1000}),
               ipckit::TypeMismatch);
  EXPECT_THROW(seg.queue<int>("q", {.capacity_bytes = 1 << 16, .max_items = 101, .max_message = 1000}),
               ipckit::TypeMismatch);
  EXPECT_THROW(seg.queue<int>("q", {.capacity_bytes = 1 << 16, .max_items = 0, .max_message = 1000}),
               ipckit::TypeMismatch);
  EXPECT_THROW(seg.queue<int>("q", {.capacity_bytes = 1 << 16, .max_items = 100, .max_message = 999}),
               ipckit::TypeMismatch);
  EXPECT_THROW(seg.queue<int>("q"), ipckit::TypeMismatch) << "default options are other options";
  Child child([&] {
    auto seg2 = Segment::open(n.name);
    EXPECT_THROW(seg2.queue<int>("q", {.capacity_bytes = 1 << 15, .max_items = 100, .max_message = 1000}),
                 ipckit::TypeMismatch);
    seg2.queue<int>("q", made).put(9);
  });
  EXPECT_EQ(child.wait_exit(), 0);
  EXPECT_EQ(q.get_nowait(), 9);
}

TEST(Queue, AnItemLargerThanMaxMessageThrowsMessageTooLargeBeforeAnythingIsWritten) {
  ScopedSegmentName n("q_too_large");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q", {.capacity_bytes = 4096, .max_message = 200});
  q.put("before");
  const auto size_before = q.qsize();
  const auto bytes_before = q.bytes_used();
  const std::string fits(192, 'f');       // 8-byte length + 192 = 200 encoded: the largest accepted
  const std::string too_big(193, 'b');    // 201 encoded
  EXPECT_THROW(q.put(too_big), ipckit::MessageTooLarge);
  EXPECT_THROW(q.put(too_big, 10ms), ipckit::MessageTooLarge);
  EXPECT_THROW(q.put_nowait(too_big), ipckit::MessageTooLarge);
  EXPECT_THROW(q.put(std::string(1 << 20, 'h')), ipckit::MessageTooLarge);
  EXPECT_EQ(q.qsize(), size_before);
  EXPECT_EQ(q.bytes_used(), bytes_before);
  EXPECT_NO_THROW(q.put(fits));
  q.put("after");
  EXPECT_EQ(q.get_nowait(), "before");
  EXPECT_EQ(q.get_nowait(), fits);
  EXPECT_EQ(q.get_nowait(), "after");
  EXPECT_THROW(q.get_nowait(), ipckit::Empty);
}

TEST(Queue, WithoutMaxMessageAnItemOverAQuarterOfTheCapacityThrowsMessageTooLarge) {
  ScopedSegmentName n("q_default_max");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q", {.capacity_bytes = 1 << 16});
  EXPECT_NO_THROW(q.put(std::string((1 << 14) - 8, 'a')));
  EXPECT_THROW(q.put(std::string((1 << 14) - 7, 'a')), ipckit::MessageTooLarge);
  EXPECT_THROW(q.put(std::string(1 << 16, 'a')), ipckit::MessageTooLarge);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get_nowait().size(), (1u << 14) - 8);
}

TEST(Queue, OptionsThatCanNeverWorkThrowInvalidArgument) {
  ScopedSegmentName n("q_bad_options");
  auto seg = Segment::create(n.name, 4 << 20);
  EXPECT_THROW(seg.queue<int>("huge", {.capacity_bytes = (std::size_t{128} << 20) + 1}), ipckit::InvalidArgument);
  EXPECT_THROW(seg.queue<int>("no_room", {.capacity_bytes = 4096, .max_message = 4096}), ipckit::InvalidArgument)
      << "a max_message the ring can never hold";
  EXPECT_THROW(seg.byte_queue("no_room2", {.capacity_bytes = 1024, .max_message = 1 << 20}), ipckit::InvalidArgument);
  EXPECT_TRUE(seg.objects().empty()) << "a refused queue leaves nothing in the segment";
}

// Under contention for the producers' side, "no room" must still mean no
// room: a put_nowait into a queue with plenty of space never throws Full.
TEST(Queue, PutNowaitDoesNotThrowFullWhileThereIsRoomEvenWhenOtherProducersAreBusy) {
  ScopedSegmentName n("q_nowait_put");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<Tagged>("q", {.capacity_bytes = 1 << 20});  // 16-byte records: room for 65536
  constexpr int kProducers = 4;
  constexpr std::uint32_t kItems = 10'000;                      // 40000 in all
  auto spurious = seg.array<std::int64_t>("spurious", kProducers);
  std::vector<Child> kids;
  kids.reserve(kProducers);
  for (int p = 0; p < kProducers; ++p)
    kids.emplace_back([&, p] {
      for (std::uint32_t s = 0; s < kItems;) {
        try {
          q.put_nowait(Tagged{static_cast<std::uint32_t>(p), s});
          ++s;
        } catch (const ipckit::Full&) {
          spurious[p] = spurious[p] + 1;  // and retry
        }
      }
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(60s), 0);
  std::int64_t total = 0;
  for (auto v : spurious) total += v;
  EXPECT_EQ(total, 0) << "put_nowait threw Full on a queue at most 61% full: it gave up waiting for the producers' "
                          "lock while another producer, preempted in the middle of its put, held it";
  EXPECT_EQ(q.qsize(), std::size_t{kProducers} * kItems);
}

// The same for consumers: a get_nowait never throws Empty while items
// remain. (Only one record is being taken at any instant, so an Empty while
// qsize() is still 2 or more was spurious.)
TEST(Queue, GetNowaitDoesNotThrowEmptyWhileItemsRemainEvenWhenOtherConsumersAreBusy) {
  ScopedSegmentName n("q_nowait_get");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<Tagged>("q", {.capacity_bytes = 1 << 20});
  constexpr int kConsumers = 4;
  constexpr std::uint32_t kItems = 40'000;
  for (std::uint32_t s = 0; s < kItems; ++s) q.put(Tagged{0, s});
  auto spurious = seg.array<std::int64_t>("spurious", kConsumers);
  auto got = seg.array<std::int64_t>("got", kConsumers);
  std::vector<Child> kids;
  kids.reserve(kConsumers);
  for (int c = 0; c < kConsumers; ++c)
    kids.emplace_back([&, c] {
      for (;;) {
        try {
          (void)q.get_nowait();
          got[c] = got[c] + 1;
        } catch (const ipckit::Empty&) {
          if (q.qsize() < 2) break;
          spurious[c] = spurious[c] + 1;  // items remain: retry
        }
      }
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(60s), 0);
  std::int64_t total_spurious = 0, total_got = 0;
  for (int c = 0; c < kConsumers; ++c) {
    total_spurious += spurious[c];
    total_got += got[c];
  }
  EXPECT_EQ(total_spurious, 0) << "get_nowait threw Empty while items remained: it gave up waiting for the "
                                  "consumers' lock while another consumer, preempted in the middle of its get, held it";
  EXPECT_EQ(total_got + static_cast<std::int64_t>(q.qsize()), static_cast<std::int64_t>(kItems));
}

// On a full queue an oversize item must not wait for room it can never use.
TEST(Queue, AnOversizeItemIsRefusedAtOnceEvenWhenTheQueueIsFull) {
  ScopedSegmentName n("q_too_large_full");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q", {.capacity_bytes = 4096, .max_items = 1, .max_message = 100});
  q.put("occupant");
  Child child([&] {
    const auto t0 = Clock::now();
    EXPECT_THROW(q.put(std::string(500, 'x')), ipckit::MessageTooLarge);
    EXPECT_LT(Clock::now() - t0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
  EXPECT_EQ(q.qsize(), 1u);
}

TEST(Queue, APayloadThatDoesNotDecodeThrowsDecodeErrorAndTheQueueGoesOn) {
  ScopedSegmentName n("q_decode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Fragile>("q");
  Child producer([&] {
    auto mine = Segment::open(n.name).queue<Fragile>("q");
    mine.put({1, true, 10});
    mine.put({2, false, 0});  // short: its extra field is missing
    mine.put({3, true, 30});
    mine.put({4, false, 0});
    mine.put({5, false, 0});
    mine.put({6, true, 60});
  });
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(q.qsize(), 6u);
  EXPECT_EQ(q.get_nowait().extra, 10);
  try {
    q.get_nowait();
    FAIL() << "expected DecodeError";
  } catch (const ipckit::DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("'q'"), std::string::npos) << "the message names the queue: " << e.what();
  }
  EXPECT_EQ(q.qsize(), 4u) << "the bad payload is dropped";
  EXPECT_EQ(q.get_nowait().extra, 30) << "the next item is intact: decoding stayed inside the bad record";
  EXPECT_THROW(q.get(1s), ipckit::DecodeError);
  EXPECT_THROW(q.try_get(), ipckit::DecodeError) << "try_get swallows only Empty and Closed";
  Child consumer([&] { EXPECT_EQ(q.get(5s).extra, 60); });
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_TRUE(q.empty());
  q.put({7, true, 70});
  EXPECT_EQ(q.get_nowait().extra, 70);
}

// A writer that bypasses the typed layer (another program, a bug) may leave
// bytes that are no T at all; any failure to decode them is a DecodeError.
TEST(Queue, ForeignBytesThatAreNoTThrowDecodeErrorAndAreDropped) {
  ScopedSegmentName n("q_foreign");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q");
  auto raw = seg.open_queue("q", ipckit::ObjectKind::Queue, typeid(std::string).name(), {});
  const std::string absurd_length(8, '\xff');                      // a length no string can have
  const std::string truncated("\x40\x00\x00\x00\x00\x00\x00\x00" "abc", 11);  // says 64 bytes, holds 3
  const std::string short_length("\x01\x02", 2);                   // not even a whole length
  q.put("first");
  raw.put(absurd_length, {}, ipckit::detail::Deadline::never());
  raw.put(truncated, {}, ipckit::detail::Deadline::never());
  raw.put(short_length, {}, ipckit::detail::Deadline::never());
  raw.put({}, {}, ipckit::detail::Deadline::never());
  q.put("last");
  EXPECT_EQ(q.get_nowait(), "first");
  for (int i = 0; i < 4; ++i) EXPECT_THROW(q.get_nowait(), ipckit::DecodeError) << "record " << i;
  EXPECT_EQ(q.get_nowait(), "last");
  EXPECT_TRUE(q.empty());
}

// A plain struct needs no serialize(): it travels as its bytes. A record of
// another size is no such struct: DecodeError, and the queue goes on.
struct PlainReading {
  std::int64_t sensor;
  double value;
  std::array<char, 12> unit;
};
static_assert(ipckit::detail::kBitwiseItem<PlainReading>);

TEST(Queue, PlainStructsWithoutSerializeTravelAsTheirBytesAndWrongSizesAreDecodeErrors) {
  ScopedSegmentName n("q_plain");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<PlainReading>("readings");
  Child producer([&] {
    auto mine = Segment::open(n.name).queue<PlainReading>("readings");
    for (std::int64_t i = 0; i < 100; ++i) mine.put({i, 0.5 * static_cast<double>(i), {'k', 'P', 'a'}});
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  for (std::int64_t i = 0; i < 100; ++i) {
    const PlainReading r = q.get(5s);
    EXPECT_EQ(r.sensor, i);
    EXPECT_EQ(r.value, 0.5 * static_cast<double>(i));
    EXPECT_STREQ(r.unit.data(), "kPa");
  }
  auto raw = seg.open_queue("readings", ipckit::ObjectKind::Queue, typeid(PlainReading).name(), {});
  raw.put(std::string(sizeof(PlainReading) - 1, 'x'), {}, ipckit::detail::Deadline::never());
  raw.put(std::string(sizeof(PlainReading) + 8, 'x'), {}, ipckit::detail::Deadline::never());
  q.put({7, 7.0, {}});
  for (int i = 0; i < 2; ++i) {
    try {
      (void)q.get_nowait();
      ADD_FAILURE() << "record " << i << " of the wrong size decoded";
    } catch (const ipckit::DecodeError& e) {
      EXPECT_NE(std::string(e.what()).find("bytes"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(q.get_nowait().sensor, 7);
}

// A trivially copyable struct WITH a serialize() goes through it: the user's
// code decides the encoding (here it rejects a reserved value on load).
struct Checked {
  std::int32_t value = 0;
  template <class Archive>
  void save(Archive& ar) const {
    ar(value, std::int32_t{~value});
  }
  template <class Archive>
  void load(Archive& ar) {
    std::int32_t inverse = 0;
    ar(value, inverse);
    if (inverse != ~value) throw std::runtime_error("check word does not match");
  }
};
static_assert(!ipckit::detail::kBitwiseItem<Checked>);

TEST(Queue, AStructWithItsOwnSerializationIsEncodedByItEvenWhenTriviallyCopyable) {
  ScopedSegmentName n("q_checked");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Checked>("q");
  q.put({41});
  EXPECT_EQ(q.bytes_used(), 16u) << "8-byte header + the 8 bytes save() writes";
  EXPECT_EQ(q.get_nowait().value, 41);
  auto raw = seg.open_queue("q", ipckit::ObjectKind::Queue, typeid(Checked).name(), {});
  const std::int32_t forged[2] = {5, 5};
  raw.put({reinterpret_cast<const char*>(forged), sizeof forged}, {}, ipckit::detail::Deadline::never());
  EXPECT_THROW((void)q.get_nowait(), ipckit::DecodeError) << "load() was not called";
}

// Strings and vectors of numbers are written as cereal writes them (count,
// then the bytes) without a copy through a buffer; every size round-trips.
TEST(Queue, StringsAndNumberVectorsOfEverySizeRoundTripAndMatchCerealsEncoding) {
  ScopedSegmentName n("q_contiguous");
  auto seg = Segment::create(n.name, 4 << 20);
  auto strings = seg.queue<std::string>("s");
  auto doubles = seg.queue<std::vector<double>>("d");
  auto shorts = seg.queue<std::vector<std::int16_t>>("i");
  Child producer([&] {
    auto s = Segment::open(n.name);
    auto qs = s.queue<std::string>("s");
    auto qd = s.queue<std::vector<double>>("d");
    auto qi = s.queue<std::vector<std::int16_t>>("i");
    for (std::size_t len = 0; len < 300; len += 7) {
      qs.put(std::string(len, static_cast<char>('a' + len % 26)));
      std::vector<double> d(len);
      for (std::size_t k = 0; k < len; ++k) d[k] = static_cast<double>(k) / 3;
      qd.put(d);
      qi.put(std::vector<std::int16_t>(len, static_cast<std::int16_t>(-static_cast<int>(len))));
    }
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  for (std::size_t len = 0; len < 300; len += 7) {
    EXPECT_EQ(strings.get(5s), std::string(len, static_cast<char>('a' + len % 26)));
    const auto d = doubles.get(5s);
    ASSERT_EQ(d.size(), len);
    for (std::size_t k = 0; k < len; ++k) EXPECT_EQ(d[k], static_cast<double>(k) / 3);
    EXPECT_EQ(shorts.get(5s), std::vector<std::int16_t>(len, static_cast<std::int16_t>(-static_cast<int>(len))));
  }
  // The bytes are cereal's: what a cereal archive wrote decodes, and back.
  const std::vector<double> v = {1.5, -2.25, 1e300};
  std::ostringstream os;
  {
    cereal::BinaryOutputArchive ar(os);
    ar(v);
  }
  EXPECT_EQ(std::string(ipckit::detail::encode(v)), os.str());
  std::vector<double> back;
  ipckit::detail::decode_into(back, os.str().data(), os.str().size());
  EXPECT_EQ(back, v);
}

// An item whose load() uses the queue it is being got from would wait on
// the consumers' lock its own get() holds: refused, not a hang.
ipckit::Queue<struct Reentrant>* g_reentrant_queue = nullptr;
struct Reentrant {
  std::int32_t value = 0;
  template <class Archive>
  void serialize(Archive& ar);
};
template <class Archive>
void Reentrant::serialize(Archive& ar) {
  ar(value);
  if (Archive::is_loading::value && g_reentrant_queue != nullptr) (void)g_reentrant_queue->get_nowait();
}

TEST(Queue, AGetFromInsideAnItemsOwnDecodeIsRefusedInsteadOfHanging) {
  ScopedSegmentName n("q_reentrant");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Reentrant>("q");
  q.put({1});
  q.put({2});
  g_reentrant_queue = &q;
  try {
    (void)q.get(5s);
    ADD_FAILURE() << "the nested get succeeded";
  } catch (const ipckit::DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("from inside"), std::string::npos) << e.what();
  }
  g_reentrant_queue = nullptr;
  EXPECT_EQ(q.get_nowait().value, 2) << "the queue goes on";
}

// Records of every size through a small ring, so that they wrap its end at
// every offset; a model deque says what must come out.
TEST(Queue, ItemsOfVaryingSizeWrapTheRingAndStayInOrder) {
  ScopedSegmentName n("q_wrap");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q", {.capacity_bytes = 1024, .max_message = 256});
  std::deque<std::string> model;
  std::mt19937 rng(7);
  int fulls = 0;
  for (int op = 0; op < 50000; ++op) {
    if (rng() % 2 == 0) {
      std::string s(rng() % 249, static_cast<char>('A' + op % 50));
      try {
        q.put_nowait(s);
        model.push_back(std::move(s));
      } catch (const ipckit::Full&) {
        ++fulls;
        ASSERT_FALSE(model.empty()) << "Full on an empty queue";
      }
    } else {
      auto got = q.try_get();
      if (model.empty()) {
        ASSERT_FALSE(got.has_value()) << "op " << op;
      } else {
        ASSERT_TRUE(got.has_value()) << "op " << op;
        ASSERT_EQ(*got, model.front()) << "op " << op;
        model.pop_front();
      }
    }
    ASSERT_EQ(q.qsize(), model.size()) << "op " << op;
  }
  EXPECT_GT(fulls, 0) << "the ring never filled: the test did not wrap it under pressure";
  while (!model.empty()) {
    ASSERT_EQ(q.get_nowait(), model.front());
    model.pop_front();
  }
  EXPECT_EQ(q.bytes_used(), 0u);
}

// ---------------------------------------------------------------- close

TEST(QueueClose, ProducersGetClosedAndConsumersDrainTheRestThenGetClosed) {
  ScopedSegmentName n("q_close");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q");
  q.put("a");
  q.put("b");
  q.put("c");
  EXPECT_FALSE(q.closed());
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_THROW(q.put("d"), ipckit::Closed);
  EXPECT_THROW(q.put("d", 10ms), ipckit::Closed);
  EXPECT_THROW(q.put_nowait("d"), ipckit::Closed);
  EXPECT_EQ(q.qsize(), 3u);
  Child consumer([&] {
    auto mine = Segment::open(n.name).queue<std::string>("q");
    EXPECT_TRUE(mine.closed());
    EXPECT_THROW(mine.put("e"), ipckit::Closed);
    EXPECT_EQ(mine.get(), "a");
    EXPECT_EQ(mine.get(1s), "b");
    EXPECT_EQ(mine.get_nowait(), "c");
    const auto t0 = Clock::now();
    EXPECT_THROW(mine.get(), ipckit::Closed);
    EXPECT_THROW(mine.get(10s), ipckit::Closed);
    EXPECT_THROW(mine.get_nowait(), ipckit::Closed);
    EXPECT_EQ(mine.try_get(), std::nullopt);
    EXPECT_LT(Clock::now() - t0, 2s) << "a closed, drained queue does not make getters wait";
  });
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_TRUE(q.empty());
  q.close();  // closing twice is harmless
  EXPECT_TRUE(q.closed());
}

TEST(QueueClose, CloseWakesAConsumerBlockedInAnotherProcess) {
  ScopedSegmentName n("q_close_consumer");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q");
  std::vector<Child> consumers;
  consumers.reserve(3);
  consumers.emplace_back([&] { EXPECT_THROW(q.get(), ipckit::Closed); });
  consumers.emplace_back([&] { EXPECT_THROW(q.get(60s), ipckit::Closed); });
  consumers.emplace_back([&] {
    std::thread t([&] { EXPECT_THROW(q.get(), ipckit::Closed); });
    EXPECT_THROW(q.get(), ipckit::Closed);
    t.join();
  });
  for (auto& c : consumers) ASSERT_TRUE(asleep(c)) << "consumer " << c.pid() << " never slept";
  const auto t0 = Clock::now();
  q.close();
  for (auto& c : consumers) EXPECT_EQ(c.wait_exit(10s), 0);
  EXPECT_LT(Clock::now() - t0, kStallLimit) << "the close's wake-up was lost (healed by a periodic re-check)";
}

TEST(QueueClose, CloseWakesAProducerBlockedOnAFullQueueInAnotherProcess) {
  ScopedSegmentName n("q_close_producer");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.max_items = 1});
  q.put(1);
  std::vector<Child> producers;
  producers.reserve(2);
  producers.emplace_back([&] { EXPECT_THROW(q.put(2), ipckit::Closed); });
  producers.emplace_back([&] { EXPECT_THROW(q.put(3, 60s), ipckit::Closed); });
  for (auto& p : producers) ASSERT_TRUE(asleep(p)) << "producer " << p.pid() << " never slept";
  const auto t0 = Clock::now();
  Child closer([&] { Segment::open(n.name).queue<int>("q", {.max_items = 1}).close(); });
  EXPECT_EQ(closer.wait_exit(), 0);
  for (auto& p : producers) EXPECT_EQ(p.wait_exit(10s), 0);
  EXPECT_LT(Clock::now() - t0, kStallLimit) << "the close's wake-up was lost (healed by a periodic re-check)";
  EXPECT_EQ(q.qsize(), 1u) << "the blocked puts added nothing";
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_THROW(q.get_nowait(), ipckit::Closed);
}

// ---------------------------------------------------------------- blocking

TEST(QueueBlocking, AFullQueueBlocksAProducerUntilAConsumerInAnotherProcessFreesSpace) {
  ScopedSegmentName n("q_block_full");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.max_items = 2});
  q.put(1);
  q.put(2);
  Signal returned;
  Child producer([&] {
    q.put(3);
    returned.post();
  });
  ASSERT_TRUE(asleep(producer)) << "the producer did not block on the full queue";
  EXPECT_FALSE(returned.wait(50ms)) << "put returned while the queue was full";
  EXPECT_EQ(q.qsize(), 2u);
  Child consumer([&] { EXPECT_EQ(Segment::open(n.name).queue<int>("q", {.max_items = 2}).get(5s), 1); });
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_TRUE(returned.wait(kStallLimit)) << "the freed space did not wake the producer";
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_EQ(q.get_nowait(), 3);
}

TEST(QueueBlocking, AFullQueueOfBytesBlocksAProducerUntilEnoughSpaceIsFreed) {
  ScopedSegmentName n("q_block_bytes");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q", {.capacity_bytes = 4096, .max_message = 1024});
  int n_put = 0;
  try {
    for (;; ++n_put) q.put_nowait(std::string(56, 's'));  // 64 bytes encoded
  } catch (const ipckit::Full&) {
  }
  ASSERT_GT(n_put, 0);
  Signal returned;
  Child producer([&] {
    q.put(std::string(1000, 'L'));  // needs many small records freed
    returned.post();
  });
  ASSERT_TRUE(asleep(producer));
  EXPECT_FALSE(returned.wait(30ms));
  // Free one small record at a time: the big one (1016 bytes in the ring)
  // cannot go in before about fourteen of them (72 bytes each) are gone.
  int taken = 0;
  bool back = false;
  while (!back && taken < n_put) {
    EXPECT_EQ(q.get_nowait().size(), 56u);
    ++taken;
    back = returned.wait(20ms);
  }
  if (!back) back = returned.wait(kStallLimit);
  EXPECT_TRUE(back) << "the producer was not woken once there was room";
  EXPECT_GE(taken, 1000 / 72) << "the big item went in before there was room for it";
  EXPECT_EQ(producer.wait_exit(), 0);
  while (q.qsize() > 1) EXPECT_EQ(q.get_nowait().size(), 56u);
  EXPECT_EQ(q.get_nowait().size(), 1000u);
}

TEST(QueueBlocking, ABlockedConsumerIsWokenByAPutFromAnotherProcess) {
  ScopedSegmentName n("q_block_empty");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q");
  auto woke_at = seg.value<std::int64_t>("woke_at");
  Child consumer([&] {
    EXPECT_EQ(q.get(), "wake up");
    woke_at.set(now_ns());
  });
  ASSERT_TRUE(asleep(consumer));
  const auto put_at = now_ns();
  Child producer([&] { Segment::open(n.name).queue<std::string>("q").put("wake up"); });
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(consumer.wait_exit(10s), 0);
  EXPECT_LT(woke_at.get() - put_at, std::chrono::nanoseconds(kStallLimit).count())
      << "the put's wake-up was lost (healed by a periodic re-check)";
}

TEST(QueueBlocking, EachPutWakesOneOfSeveralSleepingConsumers) {
  ScopedSegmentName n("q_block_many");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q");
  auto got = seg.array<std::int32_t>("got", 4);
  std::vector<Child> consumers;
  consumers.reserve(4);
  for (int i = 0; i < 4; ++i) consumers.emplace_back([&, i] { got[i] = q.get(20s); });
  for (auto& c : consumers) ASSERT_TRUE(asleep(c));
  for (int v = 1; v <= 4; ++v) q.put(v * 10);
  for (auto& c : consumers) EXPECT_EQ(c.wait_exit(15s), 0);
  std::multiset<int> values(got.begin(), got.end());
  EXPECT_EQ(values, (std::multiset<int>{10, 20, 30, 40}));
}

TEST(QueueBlocking, AConsumerKilledWhileWaitingDoesNotSwallowTheWakeUpOfTheNextItem) {
  ScopedSegmentName n("q_block_killed");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q");
  for (int round = 0; round < 3; ++round) {
    Child victim([&] { (void)q.get(); });
    ASSERT_TRUE(asleep(victim));
    Child living([&] { EXPECT_EQ(q.get(20s), round); });
    ASSERT_TRUE(asleep(living));
    victim.kill(SIGKILL);
    EXPECT_EQ(victim.wait_exit(), -SIGKILL);
    const auto t0 = Clock::now();
    q.put(round);
    EXPECT_EQ(living.wait_exit(15s), 0) << "round " << round;
    EXPECT_LT(Clock::now() - t0, kStallLimit) << "round " << round;
  }
  EXPECT_TRUE(q.empty());
}

TEST(QueueBlocking, AProducerKilledWhileWaitingForSpaceLeavesNothingBehind) {
  ScopedSegmentName n("q_block_pkilled");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q", {.max_items = 1});
  q.put(1);
  Child victim([&] { q.put(666); });
  ASSERT_TRUE(asleep(victim));
  Signal returned;
  Child living([&] {
    q.put(2);
    returned.post();
  });
  ASSERT_TRUE(asleep(living));
  victim.kill(SIGKILL);
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  EXPECT_EQ(q.get_nowait(), 1);
  EXPECT_TRUE(returned.wait(kStallLimit));
  EXPECT_EQ(living.wait_exit(), 0);
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_THROW(q.get_nowait(), ipckit::Empty) << "the killed producer's item never went in";
}

TEST(QueueBlocking, AnIdleConsumerSleepsInsteadOfBurningACore) {
  ScopedSegmentName n("q_idle");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<int>("q");
  Child consumer([&] {
    const auto cpu0 = process_cpu_time();
    const auto t0 = Clock::now();
    EXPECT_THROW(q.get(1s), ipckit::Empty);
    const auto wall = Clock::now() - t0;
    const auto cpu = process_cpu_time() - cpu0;
    EXPECT_GE(wall, 1s);
    EXPECT_LT(cpu, 50ms) << "a consumer waiting 1 s on an empty queue used "
                         << std::chrono::duration_cast<std::chrono::microseconds>(cpu).count() << " us of CPU";
  });
  EXPECT_EQ(consumer.wait_exit(), 0);
}

// ---------------------------------------------------------------- MPMC

namespace {

// `producers` processes put `items` {producer, seq} each; `consumers`
// processes get until the queue is closed and drained. Every item must arrive
// exactly once, and every consumer must see each producer's items in order.
void run_mpmc(const std::string& name, int producers, int consumers, std::uint32_t items,
              const QueueOptions& options) {
  auto seg = Segment::create(name, 16 << 20);
  auto q = seg.queue<Tagged>("q", options);
  const std::size_t total = static_cast<std::size_t>(producers) * items;
  auto seen = seg.array<std::uint8_t>("seen", total);
  auto per_consumer = seg.array<std::int64_t>("per_consumer", static_cast<std::size_t>(consumers));
  auto faults = seg.array<std::int64_t>("faults", 3);  // garbage, out of order, twice
  std::vector<Child> cons;
  cons.reserve(static_cast<std::size_t>(consumers));
  for (int c = 0; c < consumers; ++c)
    cons.emplace_back([&, c] {
      std::vector<std::int64_t> last(static_cast<std::size_t>(producers), -1);
      std::int64_t got = 0;
      for (;;) {
        Tagged t;
        try {
          t = q.get();
        } catch (const ipckit::Closed&) {
          break;
        }
        ++got;
        if (t.producer >= static_cast<std::uint32_t>(producers) || t.seq >= items) {
          at(faults[0]).fetch_add(1);
          continue;
        }
        if (static_cast<std::int64_t>(t.seq) <= last[t.producer]) at(faults[1]).fetch_add(1);
        last[t.producer] = t.seq;
        if (at(seen[std::size_t{t.producer} * items + t.seq]).fetch_add(1) != 0) at(faults[2]).fetch_add(1);
      }
      per_consumer[static_cast<std::size_t>(c)] = got;
    });
  std::vector<Child> prods;
  prods.reserve(static_cast<std::size_t>(producers));
  const auto t0 = Clock::now();
  for (int p = 0; p < producers; ++p)
    prods.emplace_back([&, p] {
      for (std::uint32_t s = 0; s < items; ++s) q.put(Tagged{static_cast<std::uint32_t>(p), s});
    });
  for (auto& p : prods) EXPECT_EQ(p.wait_exit(90s), 0);
  q.close();
  for (auto& c : cons) EXPECT_EQ(c.wait_exit(30s), 0);
  const auto elapsed = Clock::now() - t0;
  EXPECT_EQ(faults[0], 0) << "garbage items";
  EXPECT_EQ(faults[1], 0) << "a consumer saw a producer's items out of order";
  EXPECT_EQ(faults[2], 0) << "items delivered twice";
  std::size_t lost = 0, doubled = 0;
  for (std::size_t i = 0; i < total; ++i) {
    lost += seen[i] == 0;
    doubled += seen[i] > 1;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(doubled, 0u);
  std::int64_t sum = 0;
  for (auto g : per_consumer) sum += g;
  EXPECT_EQ(sum, static_cast<std::int64_t>(total));
  EXPECT_TRUE(q.empty());
  ::testing::Test::RecordProperty("items", static_cast<int>(total));
  ::testing::Test::RecordProperty(
      "items_per_second",
      static_cast<int>(static_cast<double>(total) / std::chrono::duration<double>(elapsed).count()));
}

}  // namespace

TEST(QueueMpmc, FourProducersAndFourConsumersPassFourHundredThousandItemsEachExactlyOnceInProducerOrder) {
  ScopedSegmentName n("q_mpmc");
  run_mpmc(n.name, 4, 4, 100'000, {});
}

// A ring of 1 KiB keeps the producers blocking on a full queue and the
// consumers on an empty one: the same checks with many sleeps and wake-ups.
TEST(QueueMpmc, FourProducersAndFourConsumersThroughATinyRingLoseAndDoubleNothing) {
  ScopedSegmentName n("q_mpmc_tiny");
  run_mpmc(n.name, 4, 4, 25'000, {.capacity_bytes = 1024});
}

// ---------------------------------------------------------------- threads

TEST(QueueThreads, ThreadsOfSeveralProcessesShareOneQueueLosingAndDoublingNothing) {
  ScopedSegmentName n("q_threads");
  auto seg = Segment::create(n.name, 16 << 20);
  auto q = seg.queue<Tagged>("q", {.capacity_bytes = 1 << 14});
  constexpr int kProcs = 2, kThreadsPerSide = 2;           // per child: 2 producer + 2 consumer threads
  constexpr int kProducers = kProcs * kThreadsPerSide + 1;  // + one producer thread here
  constexpr std::uint32_t kItems = 20'000;
  auto seen = seg.array<std::uint8_t>("seen", std::size_t{kProducers} * kItems);
  auto faults = seg.array<std::int64_t>("faults", 3);
  auto producers_done = seg.value<std::int32_t>("producers_done");
  auto consume = [&] {
    std::vector<std::int64_t> last(kProducers, -1);
    for (;;) {
      Tagged t;
      try {
        t = q.get();
      } catch (const ipckit::Closed&) {
        return;
      }
      if (t.producer >= kProducers || t.seq >= kItems) {
        at(faults[0]).fetch_add(1);
        continue;
      }
      if (static_cast<std::int64_t>(t.seq) <= last[t.producer]) at(faults[1]).fetch_add(1);
      last[t.producer] = t.seq;
      if (at(seen[std::size_t{t.producer} * kItems + t.seq]).fetch_add(1) != 0) at(faults[2]).fetch_add(1);
    }
  };
  auto produce = [&](std::uint32_t id) {
    for (std::uint32_t s = 0; s < kItems; ++s) q.put(Tagged{id, s});
    std::lock_guard g(producers_done.get_lock());
    producers_done.set(producers_done.get() + 1);
  };
  std::vector<Child> kids;
  kids.reserve(kProcs);
  for (int p = 0; p < kProcs; ++p)
    kids.emplace_back([&, p] {
      std::vector<std::thread> ts;
      for (int t = 0; t < kThreadsPerSide; ++t) {
        ts.emplace_back(produce, static_cast<std::uint32_t>(p * kThreadsPerSide + t));
        ts.emplace_back(consume);
      }
      for (auto& t : ts) t.join();
    });
  std::thread local_consumer(consume);
  std::thread local_producer(produce, static_cast<std::uint32_t>(kProducers - 1));
  local_producer.join();
  EXPECT_TRUE(eventually([&] { return producers_done.get() == kProducers; }, 90s)) << "producers stalled";
  q.close();
  local_consumer.join();
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(30s), 0);
  EXPECT_EQ(faults[0], 0) << "garbage items";
  EXPECT_EQ(faults[1], 0) << "a consumer thread saw a producer's items out of order";
  EXPECT_EQ(faults[2], 0) << "items delivered twice";
  std::size_t lost = 0;
  for (auto s : seen) lost += s == 0;
  EXPECT_EQ(lost, 0u);
}

// ---------------------------------------------------------------- crash safety

namespace {

// Producers and consumers SIGKILLed at random instants inside their put and
// get loops, with the checks of tests/kill_harness.hpp; the last round kills
// everyone in random order (so the queue is left as a crash leaves it: items
// in flight, maybe a dead lock holder) before this process drains it. On a
// JoinableQueue, every get is followed by a task_done(), and after the drain
// nothing is left unfinished and join() returns.
struct CrashRun {
  std::string name;
  bool joinable;
  int kills;
  QueueOptions options;

  void run() {
    auto seg = Segment::create(name, 24 << 20);
    auto jq = seg.joinable_queue<Stamped>("jq", options);
    auto plain = seg.queue<Stamped>("q", options);
    ipckit::Queue<Stamped>& q = joinable ? static_cast<ipckit::Queue<Stamped>&>(jq) : plain;
    constexpr int kTaskDone = KillRun::kOwnFault;
    KillRun run(seg, {.seed = 20240607u + static_cast<unsigned>(joinable),
                      .kills = kills,
                      .max_seq = 1u << 22,
                      .max_ops_before_kill = 64,
                      .own_faults = {"task_done errors"}});

    auto put = [&](const Stamped& s, auto... timeout) { q.put(s, timeout...); };
    auto get_and_take = [&](std::vector<std::int64_t>& last, auto... timeout) {
      run.record(q.get(timeout...), last);
      if (joinable) {
        try {
          jq.task_done();
        } catch (...) {
          run.fault(kTaskDone);
        }
      }
    };
    run.kill_at_random(put, get_and_take);
    // Once one side is gone the other may block for good (no room, or no
    // items): it is then killed inside its blocked put or get.
    std::vector<int> order(KillRun::kSlots);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), run.rng());
    for (int victim : order) run.kill_for_good(victim, 200ms);

    if (!run.drain(get_and_take)) return;
    EXPECT_EQ(q.qsize(), 0u);
    EXPECT_EQ(q.bytes_used(), 0u);
    run.check_books();
    if (joinable) {
      EXPECT_TRUE(jq.join(5s)) << "join() hangs after the kills: " << jq.unfinished_tasks() << " unfinished";
      EXPECT_EQ(jq.unfinished_tasks(), 0u);
      EXPECT_LE(jq.abandoned_tasks(), static_cast<std::uint64_t>(run.consumer_kills()));
    }

    // The queue still works, across processes.
    EXPECT_TRUE(run.returns_in_a_new_process([&] { q.put(run.item(0, run.max_seq() - 1)); }))
        << "a put after the kills failed";
    const auto last_one = q.get(5s);
    EXPECT_TRUE(run.intact(last_one));
    EXPECT_EQ(last_one.seq, run.max_seq() - 1);
    if (joinable) {
      EXPECT_NO_THROW(jq.task_done());
      EXPECT_TRUE(jq.join(5s));
    }

    run.record_properties();
    if (joinable) ::testing::Test::RecordProperty("abandoned", static_cast<int>(jq.abandoned_tasks()));
  }
};

}  // namespace

TEST(QueueCrash, ProducersAndConsumersKilledFourHundredTimesInsidePutAndGetLoseAndDoubleNothing) {
  ScopedSegmentName n("q_crash");
  CrashRun{n.name, false, 400, {.capacity_bytes = 1 << 13}}.run();
}

// The same with a ring too small for more than a handful of records, so
// that kills also land in producers sleeping on a full queue and consumers
// sleeping on an empty one.
TEST(QueueCrash, KillsOnAnAlmostAlwaysFullOrEmptyRingLoseAndDoubleNothing) {
  ScopedSegmentName n("q_crash_tiny");
  CrashRun{n.name, false, 200, {.capacity_bytes = 512, .max_message = 128}}.run();
}

TEST(QueueCrash, KillsOnAJoinableQueueLeaveNoUnfinishedTaskBehind) {
  ScopedSegmentName n("q_crash_join");
  CrashRun{n.name, true, 200, {.capacity_bytes = 1 << 13}}.run();
}

// Deterministic kills at the two instants that matter most: a consumer
// inside get() after it has read the record but before freeing it, and a
// producer inside put() before anything is written.
TEST(QueueCrash, AConsumerKilledWhileDecodingLeavesTheItemQueuedForTheNextConsumer) {
  ScopedSegmentName n("q_kill_decode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Stalling>("q");
  for (int round = 0; round < 3; ++round) {
    q.put({kStallOnLoad});
    q.put({round});
    Signal stalled;
    Child victim([&] {
      g_stall_fd = stalled.fd[1];
      (void)q.get();
    });
    ASSERT_TRUE(stalled.wait()) << "round " << round;
    EXPECT_EQ(q.qsize(), 2u) << "a get that has not returned frees nothing";
    victim.kill(SIGKILL);
    EXPECT_EQ(victim.wait_exit(), -SIGKILL);
    Child next([&] {
      // The victim died holding the consumers' lock: a blocking get takes it
      // over, and so does a non-blocking one.
      if (round == 1) {
        EXPECT_EQ(q.get_nowait().value, kStallOnLoad) << "the victim's item is delivered to the next consumer";
      } else {
        EXPECT_EQ(q.get(5s).value, kStallOnLoad) << "the victim's item is delivered to the next consumer";
      }
      EXPECT_EQ(q.get(5s).value, round);
    });
    EXPECT_EQ(next.wait_exit(), 0) << "round " << round;
    EXPECT_TRUE(q.empty());
  }
}

TEST(QueueCrash, AProducerKilledWhileEncodingLeavesNothingInTheQueue) {
  ScopedSegmentName n("q_kill_encode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Stalling>("q");
  q.put({1});
  Signal stalled;
  Child victim([&] {
    g_stall_fd = stalled.fd[1];
    q.put({kStallOnSave});
  });
  ASSERT_TRUE(stalled.wait());
  victim.kill(SIGKILL);
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  Child other([&] { q.put({2}); });
  EXPECT_EQ(other.wait_exit(), 0);
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.get_nowait().value, 1);
  EXPECT_EQ(q.get_nowait().value, 2);
  EXPECT_THROW(q.get_nowait(), ipckit::Empty);
}

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
TEST(JoinableQueue, ConsumersKilledAtRandomInsideGetOrTaskDoneKeepTheTaskCountExact) {
  ScopedSegmentName n("jq_kill_task_done");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.joinable_queue<std::int64_t>("jobs", {.capacity_bytes = 1 << 14});
  auto progress = seg.array<std::int64_t>("progress", 3);
  constexpr int kKills = 300;
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
      q.put(i);
      std::atomic_ref<std::int64_t>(progress[2]).fetch_add(1, std::memory_order_relaxed);
    }
  });
  std::vector<std::unique_ptr<Child>> consumers;
  for (std::size_t c = 0; c < 2; ++c) consumers.push_back(std::make_unique<Child>(consume_forever(c)));
  int kills = 0;
  for (; kills < kKills; ++kills) {
    const std::size_t victim = rng() % 2;
    const auto seen = std::atomic_ref<std::int64_t>(progress[victim]).load();
    ASSERT_TRUE(eventually([&] { return std::atomic_ref<std::int64_t>(progress[victim]).load() > seen + 10; }))
        << "consumer " << victim << " made no progress after " << kills << " kills: the queue wedged";
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
    std::thread t1([&] { for (int i = 0; i < 50; ++i) handoff.put(q.get(5s)); });
    std::thread t2([&] { for (int i = 0; i < 50; ++i) handoff.put(q.get(5s)); });
    t1.join();
    t2.join();
    done_getting.post();
    ::pause();  // killed later, with no task of its own left
  });
  ASSERT_TRUE(done_getting.wait());
  EXPECT_EQ(q.unfinished_tasks(), 100u);
  Child finisher([&] {
    std::thread t([&] { for (int i = 0; i < 50; ++i) (void)handoff.get(5s), q.task_done(); });
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

// Threads of ONE process only (so a thread sanitizer sees every access):
// producers use put and put_many, consumers get and get_many; every item
// arrives once, each producer's in order, for a plain and a joinable queue.
TEST(QueueThreads, ProducerAndConsumerThreadsOfOneProcessMixingSinglesAndBatchesLoseAndDoubleNothing) {
  ScopedSegmentName n("q_threads_only");
  auto seg = Segment::create(n.name, 4 << 20);
  for (const bool joinable : {false, true}) {
    auto jq = seg.joinable_queue<Tagged>("jq", {.capacity_bytes = 1 << 12});
    auto plain = seg.queue<Tagged>("q", {.capacity_bytes = 1 << 12});
    ipckit::Queue<Tagged>& q = joinable ? static_cast<ipckit::Queue<Tagged>&>(jq) : plain;
    constexpr std::uint32_t kProducers = 3, kConsumers = 3, kEach = 20000;
    std::vector<std::atomic<int>> received(kProducers * kEach);
    std::atomic<int> out_of_order{0};
    std::vector<std::thread> threads;
    for (std::uint32_t p = 0; p < kProducers; ++p)
      threads.emplace_back([&, p] {
        std::vector<Tagged> batch;
        for (std::uint32_t i = 0; i < kEach; ++i) {
          if (p % 2 == 0) {
            q.put({p, i});
            continue;
          }
          batch.push_back({p, i});
          if (batch.size() == 7 || i + 1 == kEach) {
            q.put_many(batch);
            batch.clear();
          }
        }
      });
    for (std::uint32_t c = 0; c < kConsumers; ++c)
      threads.emplace_back([&, c] {
        std::vector<std::int64_t> last(kProducers, -1);
        for (;;) {
          std::vector<Tagged> got;
          try {
            if (c % 2 == 0) got.push_back(q.get(10s));
            else got = q.get_many(5, 10s);
          } catch (const ipckit::Closed&) {
            return;  // closed and drained
          }
          for (const auto& t : got) {
            if (static_cast<std::int64_t>(t.seq) <= last[t.producer]) ++out_of_order;
            last[t.producer] = t.seq;
            ++received[std::size_t{t.producer} * kEach + t.seq];
            if (joinable) jq.task_done();
          }
        }
      });
    for (std::uint32_t p = 0; p < kProducers; ++p) threads[p].join();
    q.close();  // the consumers drain, then end
    for (std::size_t t = kProducers; t < threads.size(); ++t) threads[t].join();
    EXPECT_EQ(out_of_order.load(), 0);
    int missing = 0, doubled = 0;
    for (const auto& r : received) {
      missing += r.load() == 0;
      doubled += r.load() > 1;
    }
    EXPECT_EQ(missing, 0) << (joinable ? "joinable" : "plain");
    EXPECT_EQ(doubled, 0) << (joinable ? "joinable" : "plain");
    if (joinable) EXPECT_TRUE(jq.join(1s)) << jq.unfinished_tasks() << " unfinished";
  }
}

// ---------------------------------------------------------------- batches

TEST(QueueBatch, PutManyAndGetManyKeepOrderAcrossProcessesAndGetManyTakesOnlyWhatIsQueued) {
  ScopedSegmentName n("q_batch");
  auto seg = Segment::create(n.name, 8 << 20);
  auto ints = seg.queue<std::int64_t>("ints", {.capacity_bytes = 1 << 12});  // 256 records: batches must wait
  auto words = seg.queue<std::string>("words");
  Child producer([&] {
    auto s = Segment::open(n.name);
    auto q = s.queue<std::int64_t>("ints", {.capacity_bytes = 1 << 12});
    std::vector<std::int64_t> v(10000);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::int64_t>(i);
    q.put_many(v);
    s.queue<std::string>("words").put_many(std::vector<std::string>{"a", "", std::string(300, 'c')});
  });
  std::int64_t next = 0;
  while (next < 10000) {
    const auto got = ints.get_many(1000, 5s);
    ASSERT_FALSE(got.empty());
    ASSERT_LE(got.size(), 1000u);
    for (const auto v : got) ASSERT_EQ(v, next++);
  }
  EXPECT_EQ(words.get_many(10, 5s), (std::vector<std::string>{"a", "", std::string(300, 'c')}));
  EXPECT_EQ(producer.wait_exit(), 0);
  // get_many waits only for the first item, then takes what is there.
  ints.put(1);
  ints.put(2);
  EXPECT_EQ(ints.get_many(10), (std::vector<std::int64_t>{1, 2}));
  const auto t0 = Clock::now();
  EXPECT_THROW(ints.get_many(10, 50ms), ipckit::Empty);
  EXPECT_GE(Clock::now() - t0, 50ms);
  EXPECT_TRUE(ints.get_many(0).empty());
  ints.put_many(std::vector<std::int64_t>{});
  EXPECT_TRUE(ints.empty());
  ints.close();
  EXPECT_THROW(ints.get_many(10), ipckit::Closed);
  EXPECT_THROW(ints.put_many(std::vector<std::int64_t>{1}), ipckit::Closed);
}

TEST(QueueBatch, PutManyRefusesAnOversizeItemBeforePuttingAnyOfItsBatchAndFullSaysHowManyWentIn) {
  ScopedSegmentName n("q_batch_errors");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("q", {.capacity_bytes = 1024, .max_message = 100});
  EXPECT_THROW(q.put_many(std::vector<std::string>{"ok", std::string(200, 'x')}), ipckit::MessageTooLarge);
  EXPECT_TRUE(q.empty()) << "nothing of the refused batch was put";
  const std::vector<std::string> many(100, std::string(48, 'm'));  // 8 + 8 + 48 = 64 bytes each in the ring: 16 fit
  try {
    q.put_many(many, 20ms);
    ADD_FAILURE() << "100 records cannot fit a 1 KiB ring";
  } catch (const ipckit::Full& e) {
    EXPECT_NE(std::string(e.what()).find("16 of 64 items"), std::string::npos) << e.what();
  }
  EXPECT_EQ(q.qsize(), 16u);
}

TEST(QueueBatch, AnItemThatDoesNotDecodeEndsAGetManyAndIsReportedByTheNextGet) {
  ScopedSegmentName n("q_batch_decode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Fragile>("q");
  q.put({1});
  q.put({2});
  q.put({3, false});  // does not decode
  q.put({4});
  const auto first = q.get_many(10);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[1].value, 2);
  EXPECT_THROW(q.get_many(10), ipckit::DecodeError);
  const auto rest = q.get_many(10);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].value, 4);
}

// A producer killed inside put_many leaves a prefix of its items: whatever
// arrived is 0..k-1 with no gap and nothing twice. A consumer killed inside
// get_many leaves its batch queued: nothing is lost but what get_many had
// returned to it.
TEST(QueueBatch, KillsInsidePutManyLeaveAPrefixAndKillsInsideGetManyLoseNothingQueued) {
  ScopedSegmentName n("q_batch_kill");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.queue<std::int64_t>("q", {.capacity_bytes = 1 << 13});
  // Each round has its own range of item numbers, which its producer never
  // leaves (it pauses at the end), so the table of what was seen cannot overflow.
  constexpr int kRounds = 30;
  constexpr std::int64_t kPerRound = 37 * 3000;
  constexpr std::int64_t kItems = kRounds * kPerRound;
  auto seen = seg.array<std::uint8_t>("seen", kItems);
  std::mt19937 rng(99);
  for (int round = 0; round < kRounds; ++round) {
    const std::int64_t base = round * kPerRound;
    // Producer: batches of 37 from `base`; killed at a random instant.
    Child producer([&] {
      std::vector<std::int64_t> batch(37);
      for (std::int64_t i = base; i < base + kPerRound; i += 37) {
        for (std::int64_t k = 0; k < 37; ++k) batch[static_cast<std::size_t>(k)] = i + k;
        q.put_many(batch);
      }
      for (;;) ::pause();
    });
    Child consumer([&] {
      for (;;) {
        for (const auto v : q.get_many(16)) {
          std::atomic_ref<std::uint8_t>(seen[static_cast<std::size_t>(v)]).fetch_add(1);
        }
      }
    });
    ASSERT_TRUE(eventually([&] {  // both are at work
      return std::atomic_ref<std::uint8_t>(seen[static_cast<std::size_t>(base)]).load() != 0;
    }));
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1000));  // a random instant
    producer.kill(SIGKILL);
    EXPECT_EQ(producer.wait_exit(), -SIGKILL);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
    consumer.kill(SIGKILL);
    EXPECT_EQ(consumer.wait_exit(), -SIGKILL);
    while (q.qsize() > 0) {  // get_many takes the lock over if the consumer died holding it
      for (const auto v : q.get_many(100, 5s)) ++seen[static_cast<std::size_t>(v)];
    }
    // What arrived of this round is a prefix of its range, seen once each,
    // with at most 16 (the killed consumer's last batch) unaccounted inside it.
    const std::int64_t limit = base + kPerRound;
    std::int64_t last_seen = base;
    for (std::int64_t i = base; i < limit; ++i)
      if (seen[static_cast<std::size_t>(i)] != 0) last_seen = i + 1;
    std::int64_t holes = 0;
    for (std::int64_t i = base; i < last_seen; ++i) {
      ASSERT_LE(seen[static_cast<std::size_t>(i)], 1) << "item " << i << " arrived twice";
      holes += seen[static_cast<std::size_t>(i)] == 0;
    }
    EXPECT_LE(holes, 16) << "round " << round << ": more missing than one get_many batch";
  }
}

// ---------------------------------------------------------------- ByteQueue

TEST(ByteQueue, RawBytesIncludingEmptyAndBinaryPayloadsRoundTripBetweenProcesses) {
  ScopedSegmentName n("bq_roundtrip");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("raw");
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  std::string big(200000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) ^ (i >> 7));
  const std::vector<std::string> payloads = {
      "", std::string(1, '\0'), std::string("\0\0abc\0", 6), all_bytes, "", "x", std::string(7, '\xff'), big};
  Child producer([&] {
    auto mine = Segment::open(n.name).byte_queue("raw");
    for (const auto& p : payloads) mine.put(p);
  });
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(q.qsize(), payloads.size());
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    const std::string got = q.get(5s);
    EXPECT_EQ(got.size(), payloads[i].size()) << "payload " << i;
    EXPECT_EQ(got, payloads[i]) << "payload " << i;
  }
  EXPECT_THROW(q.get_nowait(), ipckit::Empty);
}

TEST(ByteQueue, MaxMessageBoundsThePayloadExactly) {
  ScopedSegmentName n("bq_max");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("raw", {.capacity_bytes = 4096, .max_message = 100});
  EXPECT_NO_THROW(q.put(std::string(100, 'a')));
  EXPECT_THROW(q.put(std::string(101, 'b')), ipckit::MessageTooLarge);
  EXPECT_THROW(q.put_nowait(std::string(4096, 'c')), ipckit::MessageTooLarge);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get_nowait(), std::string(100, 'a'));
}

TEST(ByteQueue, TimeoutsAndCloseBehaveAsForTypedQueues) {
  ScopedSegmentName n("bq_close");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("raw", {.max_items = 1});
  auto t0 = Clock::now();
  EXPECT_THROW(q.get(20ms), ipckit::Empty);
  EXPECT_GE(Clock::now() - t0, 20ms);
  q.put_nowait("only");
  EXPECT_THROW(q.put_nowait("more"), ipckit::Full);
  t0 = Clock::now();
  EXPECT_THROW(q.put("more", 20ms), ipckit::Full);
  EXPECT_GE(Clock::now() - t0, 20ms);
  Child consumer([&] {
    EXPECT_EQ(q.get(), "only");
    EXPECT_THROW(q.get(), ipckit::Closed);
  });
  ASSERT_TRUE(eventually([&] { return q.qsize() == 0; }));
  ASSERT_TRUE(asleep(consumer));
  q.close();
  EXPECT_TRUE(q.closed());
  EXPECT_EQ(consumer.wait_exit(10s), 0);
  EXPECT_THROW(q.put("late"), ipckit::Closed);
}
