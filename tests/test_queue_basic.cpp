// Queue basics across real processes: Python's queue semantics, typed
// errors, item types and their encodings, blocking and wake-ups, close(),
// and put_many/get_many. (Crash runs: test_queue_crash.cpp; JoinableQueue:
// test_joinable_queue.cpp; ByteQueue: test_byte_queue.cpp; what every kind
// of queue shares, typed: test_queue_typed.cpp.)
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

#include <algorithm>
#include <array>
#include <atomic>
#include <cereal/types/map.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
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

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
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
  const std::string fits(192, 'f');     // 8-byte length + 192 = 200 encoded: the largest accepted
  const std::string too_big(193, 'b');  // 201 encoded
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
  constexpr std::uint32_t kItems = 10'000;  // 40000 in all
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
  auto raw =
      ipckit::detail::SegmentAccess::open_queue(seg, "q", ipckit::ObjectKind::Queue, typeid(std::string).name(), {});
  const std::string absurd_length(8, '\xff');  // a length no string can have
  const std::string truncated(
      "\x40\x00\x00\x00\x00\x00\x00\x00"
      "abc",
      11);                                        // says 64 bytes, holds 3
  const std::string short_length("\x01\x02", 2);  // not even a whole length
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
  auto raw = ipckit::detail::SegmentAccess::open_queue(seg, "readings", ipckit::ObjectKind::Queue,
                                                       typeid(PlainReading).name(), {});
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
  auto raw = ipckit::detail::SegmentAccess::open_queue(seg, "q", ipckit::ObjectKind::Queue, typeid(Checked).name(), {});
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
    EXPECT_NE(std::string(e.what()).find("16 of 100 items"), std::string::npos) << e.what();
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
