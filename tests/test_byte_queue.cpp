// ByteQueue: raw bytes across processes, with the forms and errors of Queue.
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

TEST(ByteQueue, PutManyGetManyEmptyAndFullWorkAsForTypedQueues) {
  ScopedSegmentName n("bq_many");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("raw", {.capacity_bytes = 4096, .max_items = 5});
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  const std::vector<std::string_view> three{"one", "", std::string_view("t\0o", 3)};
  q.put_many(three);
  Child other([&] {
    auto mine = Segment::open(n.name).byte_queue("raw", {.capacity_bytes = 4096, .max_items = 5});
    const std::vector<std::string_view> more{"four", "five", "six"};
    EXPECT_EQ(mine.try_put_many(more), 2u) << "only two fit: a prefix goes in";
    EXPECT_TRUE(mine.full());
    EXPECT_THROW(mine.put_many(more, 10ms), ipckit::Full);
  });
  EXPECT_EQ(other.wait_exit(), 0);
  const auto got = q.get_many(10);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0], "one");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], std::string("t\0o", 3));
  EXPECT_EQ(got[4], "five");
  EXPECT_TRUE(q.try_get_many(10).empty());
  EXPECT_THROW(q.get_many_nowait(10), ipckit::Empty);
  EXPECT_THROW(q.get_many(10, 10ms), ipckit::Empty);
  q.close();
  EXPECT_THROW(q.get_many(10), ipckit::Closed);
  EXPECT_EQ(q.try_put_many(three), 0u);
}

// wait_readable(): readiness without taking. Several consumers in other
// processes wait so at once, none holding the queue; every item put reaches
// exactly one of them through try_get, and closing wakes those still waiting.
TEST(ByteQueue, WaitReadableWakesWaitersWithoutTakingAndCloseEndsTheirWait) {
  ScopedSegmentName n("bq_readable");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("raw");
  auto taken = seg.array<std::uint32_t>("taken", 64);
  const auto t0 = Clock::now();
  EXPECT_FALSE(q.wait_readable(20ms));
  EXPECT_GE(Clock::now() - t0, 20ms);
  q.put("x");
  EXPECT_TRUE(q.wait_readable(0s));
  EXPECT_EQ(q.qsize(), 1u) << "wait_readable took the item";
  EXPECT_EQ(q.get(), "x");
  constexpr int kItems = 64;
  std::vector<std::unique_ptr<Child>> consumers;
  for (int c = 0; c < 3; ++c)
    consumers.push_back(std::make_unique<Child>([&] {
      for (;;) {
        if (std::optional<std::string> item = q.try_get()) {
          ipckit::testing::at(taken[static_cast<std::size_t>(std::stoi(*item))]).fetch_add(1);
          continue;
        }
        if (q.closed() && q.qsize() == 0) return;
        ASSERT_TRUE(q.wait_readable(20s));
      }
    }));
  for (const auto& c : consumers) ASSERT_TRUE(asleep(*c));
  for (int i = 0; i < kItems; ++i) {
    q.put(std::to_string(i));
    if (i % 8 == 0) std::this_thread::sleep_for(1ms);  // pacing: some items reach sleeping consumers
  }
  ASSERT_TRUE(eventually([&] { return q.qsize() == 0; }));
  q.close();
  for (const auto& c : consumers) EXPECT_EQ(c->wait_exit(10s), 0);
  for (int i = 0; i < kItems; ++i) EXPECT_EQ(taken[static_cast<std::size_t>(i)], 1u) << "item " << i;
}
