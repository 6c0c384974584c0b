// PriorityQueue across real processes: lowest priority first and FIFO among
// equals, Python's queue semantics and typed errors, blocking and wake-ups,
// close(), many producers and consumers, and producers and consumers
// SIGKILLed at random instants inside put() and get() — after which the heap
// must still give the right order.
//
// Readiness is reached through pipes, the queue itself, shared counters, or
// by polling /proc until a waiter sleeps in the kernel, never by a bare
// sleep; every wait has a deadline so that a lost wake-up or a wedged queue
// fails a test instead of hanging it. Timing checks assert lower bounds only.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
#include "ipckit/lifo_queue.hpp"
#include "kill_harness.hpp"
#include "multiprocess.hpp"
#include "queue_items.hpp"

using namespace std::chrono_literals;
using ipckit::QueueOptions;
using ipckit::Segment;
using namespace ipckit::testing;
using Clock = std::chrono::steady_clock;

namespace {

// Roomy slots for small items: 64 KiB / (64 + 24) = 744 slots.
const QueueOptions kSmall{.capacity_bytes = 1 << 16, .max_message = 64};

// Five priorities, -2..2, scattered over the sequence: many equal ones.
std::int64_t priority_of(std::uint32_t producer, std::uint32_t seq) {
  const std::uint32_t h = (seq * 2654435761u + producer * 40503u) >> 13;
  return static_cast<std::int64_t>(h % 5) - 2;
}

// Direct access to a priority queue's shared state, to play a holder that
// dies half-way through an update.
struct RawPriorityQueue {
  ipckit::detail::PriorityQueueState* s;
  ipckit::detail::PriorityHeapEntry* heap;
  std::uint32_t* free;
  char* slots;
  RawPriorityQueue(const Segment& seg, const std::string& name) {
    char* body = static_cast<char*>(const_cast<void*>(ipckit::detail::SegmentAccess::object_body(seg, name)));
    s = reinterpret_cast<ipckit::detail::PriorityQueueState*>(body);
    const auto layout = ipckit::detail::priority_queue_layout(s->slot_count, s->slot_size);
    heap = reinterpret_cast<ipckit::detail::PriorityHeapEntry*>(body + layout.heap_offset);
    free = reinterpret_cast<std::uint32_t*>(body + layout.free_offset);
    slots = body + layout.slots_offset;
  }
  ipckit::detail::PrioritySlot& slot(std::uint64_t i) const {
    return *reinterpret_cast<ipckit::detail::PrioritySlot*>(slots + i * s->slot_size);
  }
  // Takes the queue's lock and keeps it: the calling process dies holding it.
  void lock_for_good() const { ASSERT_TRUE(ipckit::detail::try_lock_fast(s->lock, ipckit::detail::this_thread())); }
  // What a producer killed between its publishing store and the heap push
  // leaves: a ready slot taken off the free stack, in no heap, not counted.
  void publish_only(std::int64_t priority, std::string_view bytes) const {
    const std::uint32_t i = free[--s->free_top];
    auto& sl = slot(i);
    const std::uint64_t seq = s->next_seq++;
    std::memcpy(slots + i * s->slot_size + ipckit::detail::kPrioritySlotHeader, bytes.data(), bytes.size());
    sl.length = static_cast<std::uint32_t>(bytes.size());
    sl.priority = priority;
    sl.seq = seq;
    sl.state.store(ipckit::detail::kSlotReady, std::memory_order_release);
  }
};

}  // namespace

// ---------------------------------------------------------------- order

TEST(PriorityQueue, TheSeedsTasksPutByAnotherProcessComeOutLowestPriorityFirst) {
  ScopedSegmentName n("pq_seed");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("tasks", kSmall);
  EXPECT_TRUE(pq.empty());
  Child producer([&] {
    auto mine = Segment::open(n.name).priority_queue<std::string>("tasks", kSmall);
    mine.put(3, "C");
    mine.put(1, "A");
    mine.put(2, "B");
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(pq.qsize(), 3u);
  EXPECT_EQ(pq.get(), "A");
  EXPECT_EQ(pq.get(1s), "B");
  EXPECT_EQ(pq.get_nowait(), "C");
  EXPECT_TRUE(pq.empty());

  // And the other way round, with the priorities handed back.
  pq.put(3, "C");
  pq.put(1, "A");
  pq.put(2, "B");
  Child consumer([&] {
    auto mine = Segment::open(n.name).priority_queue<std::string>("tasks", kSmall);
    EXPECT_EQ(mine.get_with_priority(), std::make_pair(std::int64_t{1}, std::string("A")));
    EXPECT_EQ(mine.get_with_priority(1s), std::make_pair(std::int64_t{2}, std::string("B")));
    EXPECT_EQ(mine.get_with_priority(), std::make_pair(std::int64_t{3}, std::string("C")));
  });
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_TRUE(pq.empty());
}

TEST(PriorityQueue, AThousandItemsOfEqualPrioritiesComeOutInPutOrder) {
  ScopedSegmentName n("pq_fifo");
  auto seg = Segment::create(n.name, 4 << 20);
  const QueueOptions opts{.max_items = 1000, .max_message = 16};
  auto pq = seg.priority_queue<std::int32_t>("q", opts);
  EXPECT_EQ(pq.slots(), 1000u);
  Child producer([&] {
    auto mine = Segment::open(n.name).priority_queue<std::int32_t>("q", opts);
    for (std::int32_t i = 0; i < 1000; ++i) mine.put(i % 3 == 1 ? 7 : (i % 3 == 2 ? -7 : 0), i);
    EXPECT_TRUE(mine.full());
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(pq.qsize(), 1000u);
  for (const std::int64_t prio : {-7, 0, 7}) {
    for (std::int32_t i = 0; i < 1000; ++i) {
      if ((i % 3 == 1 ? 7 : (i % 3 == 2 ? -7 : 0)) != prio) continue;
      const auto [p, v] = pq.get_with_priority(1s);
      ASSERT_EQ(p, prio);
      ASSERT_EQ(v, i) << "items of priority " << prio << " out of put order";
    }
  }
  EXPECT_TRUE(pq.empty());
  // One priority only: a plain FIFO.
  for (std::int32_t i = 0; i < 1000; ++i) pq.put(42, i);
  for (std::int32_t i = 0; i < 1000; ++i) ASSERT_EQ(pq.get_nowait(), i);
}

TEST(PriorityQueue, NegativeAndInt64ExtremePrioritiesComeOutInOrder) {
  ScopedSegmentName n("pq_extremes");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("q", kSmall);
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  const std::vector<std::int64_t> prios = {
      0, kMax, -1, kMin, 1, kMax - 1, kMin + 1, -(std::int64_t{1} << 40), kMax, kMin, std::int64_t{1} << 40, -1};
  Child producer([&] {
    for (std::size_t i = 0; i < prios.size(); ++i) pq.put(prios[i], "item-" + std::to_string(i));
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  std::vector<std::pair<std::int64_t, std::size_t>> want;
  for (std::size_t i = 0; i < prios.size(); ++i) want.emplace_back(prios[i], i);
  std::stable_sort(want.begin(), want.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (const auto& [prio, i] : want) {
    const auto got = pq.get_with_priority(1s);
    EXPECT_EQ(got.first, prio);
    EXPECT_EQ(got.second, "item-" + std::to_string(i));
  }
  EXPECT_TRUE(pq.empty());
}

// Random puts and gets against a model: (priority, put order) decides.
TEST(PriorityQueue, RandomPutsAndGetsMatchAModelPriorityQueue) {
  ScopedSegmentName n("pq_model");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("q", {.capacity_bytes = 4096, .max_items = 50, .max_message = 48});
  std::set<std::tuple<std::int64_t, std::uint64_t, std::string>> model;
  std::mt19937 rng(11);
  std::uint64_t order = 0;
  int fulls = 0, empties = 0;
  for (int op = 0; op < 30000; ++op) {
    if (rng() % 2 == 0) {
      const std::int64_t prio = static_cast<std::int64_t>(rng() % 9) - 4;
      std::string s(rng() % 30, static_cast<char>('a' + op % 26));
      s += std::to_string(op);
      try {
        pq.put_nowait(prio, s);
        model.emplace(prio, order++, s);
      } catch (const ipckit::Full&) {
        ++fulls;
        ASSERT_EQ(model.size(), 50u) << "Full with free slots";
      }
    } else {
      auto got = pq.try_get();
      if (model.empty()) {
        ASSERT_FALSE(got.has_value()) << "op " << op;
        ++empties;
      } else {
        ASSERT_TRUE(got.has_value()) << "op " << op;
        ASSERT_EQ(*got, std::get<2>(*model.begin())) << "op " << op;
        model.erase(model.begin());
      }
    }
    ASSERT_EQ(pq.qsize(), model.size()) << "op " << op;
  }
  EXPECT_GT(fulls, 0) << "the queue never filled";
  EXPECT_GT(empties, 0) << "the queue never emptied";
}

// ---------------------------------------------------------------- errors and timeouts

TEST(PriorityQueue, PutNowaitOnAFullQueueThrowsFullAndGetNowaitOnAnEmptyOneThrowsEmpty) {
  ScopedSegmentName n("pq_nowait");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<int>("q", {.max_items = 2, .max_message = 16});
  EXPECT_THROW(pq.get_nowait(), ipckit::Empty);
  EXPECT_EQ(pq.try_get(), std::nullopt);
  pq.put_nowait(5, 50);
  pq.put_nowait(1, 10);
  EXPECT_TRUE(pq.full());
  try {
    pq.put_nowait(0, 0);
    FAIL() << "expected Full";
  } catch (const ipckit::Full& e) {
    EXPECT_NE(std::string(e.what()).find("'q'"), std::string::npos) << "the message names the queue: " << e.what();
  }
  EXPECT_EQ(pq.qsize(), 2u);
  EXPECT_EQ(pq.get_nowait(), 10);
  EXPECT_FALSE(pq.full());
  pq.put_nowait(9, 90);
  EXPECT_EQ(pq.try_get(), 50);
  EXPECT_EQ(pq.try_get(), 90);
  EXPECT_EQ(pq.try_get(), std::nullopt);
  EXPECT_THROW(pq.get_nowait(), ipckit::Empty);
}

TEST(PriorityQueue, TimedGetAndPutThrowEmptyAndFullAfterAtLeastTheTimeout) {
  ScopedSegmentName n("pq_timeouts");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<int>("q", {.max_items = 1, .max_message = 16});
  for (auto timeout : {1ms, 30ms, 120ms}) {
    const auto t0 = Clock::now();
    EXPECT_THROW(pq.get(timeout), ipckit::Empty);
    EXPECT_GE(Clock::now() - t0, timeout);
    const auto t1 = Clock::now();
    EXPECT_THROW(pq.get_with_priority(timeout), ipckit::Empty);
    EXPECT_GE(Clock::now() - t1, timeout);
  }
  pq.put(1, 1);
  for (auto timeout : {1ms, 30ms, 120ms}) {
    const auto t0 = Clock::now();
    EXPECT_THROW(pq.put(0, 2, timeout), ipckit::Full);
    EXPECT_GE(Clock::now() - t0, timeout);
  }
  // Zero and negative timeouts mean "do not wait" (in a child: one mistaken
  // for a huge unsigned timeout fails instead of hanging).
  Child child([&] {
    const auto t0 = Clock::now();
    EXPECT_THROW(pq.put(0, 2, 0ns), ipckit::Full);
    EXPECT_THROW(pq.put(0, 2, -1s), ipckit::Full);
    EXPECT_EQ(pq.get(0ns), 1);
    EXPECT_THROW(pq.get(0ns), ipckit::Empty);
    EXPECT_THROW(pq.get(-1s), ipckit::Empty);
    EXPECT_LT(Clock::now() - t0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
  EXPECT_TRUE(pq.empty());
}

TEST(PriorityQueue, OpeningWithAnotherTypeOptionsOrKindThrowsTypeMismatch) {
  ScopedSegmentName n("pq_mismatch");
  auto seg = Segment::create(n.name, 8 << 20);
  const QueueOptions made{.capacity_bytes = 1 << 16, .max_items = 100, .max_message = 1000};
  auto pq = seg.priority_queue<std::int32_t>("q", made);
  pq.put(4, 44);
  EXPECT_NO_THROW(seg.priority_queue<std::int32_t>("q", made));
  EXPECT_THROW(seg.priority_queue<std::int64_t>("q", made), ipckit::TypeMismatch);
  EXPECT_THROW(seg.priority_queue<std::string>("q", made), ipckit::TypeMismatch);
  const QueueOptions larger{.capacity_bytes = 1 << 17, .max_items = 100, .max_message = 1000};
  const QueueOptions more_items{.capacity_bytes = 1 << 16, .max_items = 101, .max_message = 1000};
  EXPECT_THROW(seg.priority_queue<std::int32_t>("q", larger), ipckit::TypeMismatch);
  EXPECT_THROW(seg.priority_queue<std::int32_t>("q", more_items), ipckit::TypeMismatch);
  EXPECT_THROW(seg.priority_queue<std::int32_t>("q", {.capacity_bytes = 1 << 16, .max_items = 0, .max_message = 1000}),
               ipckit::TypeMismatch);
  try {
    seg.priority_queue<std::int32_t>("q", {.capacity_bytes = 1 << 16, .max_items = 100, .max_message = 999});
    FAIL() << "expected TypeMismatch for another max_message";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("max_message 1000"), std::string::npos) << e.what();
  }
  try {
    seg.priority_queue<std::int32_t>("q", {.capacity_bytes = 1 << 16, .max_items = 100, .max_message = 2000});
    FAIL() << "expected TypeMismatch for another max_message (and so another object size)";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("max_message 1000"), std::string::npos) << e.what();
  }
  EXPECT_THROW(seg.priority_queue<std::int32_t>("q"), ipckit::TypeMismatch) << "default options are other options";
  // Another kind of the same name, both ways.
  EXPECT_THROW(seg.queue<std::int32_t>("q", made), ipckit::TypeMismatch);
  EXPECT_THROW(seg.joinable_queue<std::int32_t>("q", made), ipckit::TypeMismatch);
  EXPECT_THROW(seg.value<std::int32_t>("q"), ipckit::TypeMismatch);
  seg.queue<std::int32_t>("fifo", made);
  try {
    seg.priority_queue<std::int32_t>("fifo", made);
    FAIL() << "expected TypeMismatch for a FIFO queue of the same name";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("'fifo'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Queue"), std::string::npos) << e.what();
  }
  Child child([&] {
    auto seg2 = Segment::open(n.name);
    EXPECT_THROW(seg2.priority_queue<double>("q", made), ipckit::TypeMismatch);
    EXPECT_EQ(seg2.priority_queue<std::int32_t>("q", made).get_nowait(), 44) << "the right type still opens it";
  });
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(PriorityQueue, AnItemLargerThanMaxMessageThrowsMessageTooLargeBeforeAnythingIsWritten) {
  ScopedSegmentName n("pq_too_large");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("q", {.capacity_bytes = 4096, .max_items = 2, .max_message = 200});
  pq.put(5, "before");
  const std::string fits(192, 'f');     // 8-byte length + 192 = 200 encoded: the largest accepted
  const std::string too_big(193, 'b');  // 201 encoded
  EXPECT_THROW(pq.put(0, too_big), ipckit::MessageTooLarge);
  EXPECT_THROW(pq.put(0, too_big, 10ms), ipckit::MessageTooLarge);
  EXPECT_THROW(pq.put_nowait(0, too_big), ipckit::MessageTooLarge);
  EXPECT_THROW(pq.put(0, std::string(1 << 20, 'h')), ipckit::MessageTooLarge);
  EXPECT_EQ(pq.qsize(), 1u);
  EXPECT_NO_THROW(pq.put(9, fits));
  ASSERT_TRUE(pq.full());
  // On a full queue an oversize item is refused at once, not waited for.
  Child child([&] {
    const auto t0 = Clock::now();
    EXPECT_THROW(pq.put(0, too_big), ipckit::MessageTooLarge);
    EXPECT_LT(Clock::now() - t0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
  EXPECT_EQ(pq.get_nowait(), "before");
  EXPECT_EQ(pq.get_nowait(), fits);
  EXPECT_THROW(pq.get_nowait(), ipckit::Empty);
}

TEST(PriorityQueue, SlotsComeFromMaxItemsOrCapacityAndMaxMessageDefaultsToASixtyFourthOfIt) {
  ScopedSegmentName n("pq_slots");
  auto seg = Segment::create(n.name, 8 << 20);
  EXPECT_EQ(seg.priority_queue<int>("a", {.capacity_bytes = 1 << 16, .max_message = 1000}).slots(), 64u)
      << "65536 / (1000 + 24)";
  EXPECT_EQ(seg.priority_queue<int>("b", {.capacity_bytes = 1 << 16, .max_items = 7, .max_message = 1000}).slots(), 7u);
  auto d = seg.priority_queue<std::string>("c", {.capacity_bytes = 1 << 16});
  EXPECT_EQ(d.slots(), 62u) << "max_message 1024: 62 slots of 1048 bytes";
  EXPECT_NO_THROW(d.put(0, std::string(1024 - 8, 'a')));
  EXPECT_THROW(d.put(0, std::string(1024 - 7, 'a')), ipckit::MessageTooLarge);
  EXPECT_EQ(seg.priority_queue<int>("e").slots(), 63u) << "the default 1 MiB: 63 slots of 16 KiB";
}

TEST(PriorityQueue, OptionsThatCanNeverWorkThrowInvalidArgument) {
  ScopedSegmentName n("pq_bad_options");
  auto seg = Segment::create(n.name, 4 << 20);
  EXPECT_THROW(seg.priority_queue<int>("huge", {.capacity_bytes = (std::size_t{128} << 20) + 1}),
               ipckit::InvalidArgument);
  EXPECT_THROW(seg.priority_queue<int>("tiny", {.capacity_bytes = 32}), ipckit::InvalidArgument);
  EXPECT_THROW(seg.priority_queue<int>("no_room", {.capacity_bytes = 64, .max_message = 48}), ipckit::InvalidArgument);
  EXPECT_THROW(seg.priority_queue<int>("no_slot", {.capacity_bytes = 4096, .max_message = 4096}),
               ipckit::InvalidArgument)
      << "not one slot fits";
  EXPECT_THROW(seg.priority_queue<int>("many", {.max_items = std::size_t{1} << 30, .max_message = 8}),
               ipckit::InvalidArgument);
  EXPECT_THROW(seg.priority_queue<int>("big_message", {.max_items = 1, .max_message = std::size_t{1} << 30}),
               ipckit::InvalidArgument);
  EXPECT_TRUE(seg.objects().empty()) << "a refused queue leaves nothing in the segment";
}

TEST(PriorityQueue, APayloadThatDoesNotDecodeThrowsDecodeErrorAndTheQueueGoesOn) {
  ScopedSegmentName n("pq_decode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<Fragile>("q", kSmall);
  Child producer([&] {
    auto mine = Segment::open(n.name).priority_queue<Fragile>("q", kSmall);
    mine.put(6, {6, true, 60});
    mine.put(2, {2, false, 0});  // short: its extra field is missing
    mine.put(1, {1, true, 10});
    mine.put(3, {3, true, 30});
    mine.put(4, {4, false, 0});
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(pq.get_nowait().extra, 10);
  try {
    pq.get_nowait();
    FAIL() << "expected DecodeError";
  } catch (const ipckit::DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("'q'"), std::string::npos) << "the message names the queue: " << e.what();
  }
  EXPECT_EQ(pq.qsize(), 3u) << "the bad payload is dropped";
  EXPECT_EQ(pq.get_nowait().extra, 30) << "the next item is intact";
  EXPECT_THROW(pq.try_get(), ipckit::DecodeError) << "try_get swallows only Empty and Closed";
  Child consumer([&] { EXPECT_EQ(pq.get(5s).extra, 60); });
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_TRUE(pq.empty());
  // Bytes that are no T at all, written past the typed layer.
  auto raw = ipckit::detail::SegmentAccess::open_priority_queue(seg, "q", typeid(Fragile).name(), kSmall);
  const std::string absurd(8, '\xff');
  raw.put(0, absurd.data(), absurd.size(), ipckit::detail::Deadline::never());
  raw.put(0, "", 0, ipckit::detail::Deadline::never());
  pq.put(0, {7, true, 70});
  EXPECT_THROW(pq.get_nowait(), ipckit::DecodeError);
  EXPECT_THROW(pq.get_nowait(), ipckit::DecodeError);
  EXPECT_EQ(pq.get_nowait().extra, 70);
  EXPECT_TRUE(pq.empty());
}

// ---------------------------------------------------------------- blocking

TEST(PriorityQueueBlocking, ABlockedConsumerInAnotherProcessIsWokenByAPut) {
  ScopedSegmentName n("pq_wake_consumer");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("q", kSmall);
  Signal got;
  Child consumer([&] {
    EXPECT_EQ(pq.get_with_priority(), std::make_pair(std::int64_t{-5}, std::string("wake")));
    got.post();
  });
  ASSERT_TRUE(asleep(consumer)) << "the consumer did not block on the empty queue";
  EXPECT_FALSE(got.wait(30ms)) << "get returned from an empty queue";
  Child producer([&] { Segment::open(n.name).priority_queue<std::string>("q", kSmall).put(-5, "wake"); });
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_TRUE(got.wait(kStallLimit)) << "the put's wake-up was lost (healed by a periodic re-check)";
  EXPECT_EQ(consumer.wait_exit(), 0);
}

TEST(PriorityQueueBlocking, EachPutWakesOneOfSeveralSleepingConsumers) {
  ScopedSegmentName n("pq_wake_each");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<int>("q", kSmall);
  std::vector<Child> consumers;
  consumers.reserve(3);
  for (int i = 0; i < 3; ++i) consumers.emplace_back([&] { EXPECT_GE(pq.get(), 0); });
  for (auto& c : consumers) ASSERT_TRUE(asleep(c));
  const auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) pq.put(i, i);
  for (auto& c : consumers) EXPECT_EQ(c.wait_exit(10s), 0);
  EXPECT_LT(Clock::now() - t0, kStallLimit) << "a wake-up was lost (healed by a periodic re-check)";
  EXPECT_TRUE(pq.empty());
}

TEST(PriorityQueueBlocking, ABlockedProducerInAnotherProcessIsWokenByAGet) {
  ScopedSegmentName n("pq_wake_producer");
  auto seg = Segment::create(n.name, 4 << 20);
  const QueueOptions opts{.max_items = 2, .max_message = 16};
  auto pq = seg.priority_queue<int>("q", opts);
  pq.put(2, 2);
  pq.put(1, 1);
  Signal returned;
  Child producer([&] {
    pq.put(0, 3);
    returned.post();
  });
  ASSERT_TRUE(asleep(producer)) << "the producer did not block on the full queue";
  EXPECT_FALSE(returned.wait(30ms)) << "put returned while the queue was full";
  EXPECT_EQ(pq.qsize(), 2u);
  Child consumer([&] { EXPECT_EQ(Segment::open(n.name).priority_queue<int>("q", opts).get(5s), 1); });
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_TRUE(returned.wait(kStallLimit)) << "the freed slot did not wake the producer";
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(pq.get_nowait(), 3) << "priority 0 goes first";
  EXPECT_EQ(pq.get_nowait(), 2);
}

TEST(PriorityQueueBlocking, ATimedGetReturnsTheItemAnotherProcessPutsBeforeTheTimeout) {
  ScopedSegmentName n("pq_timed_ok");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("q", kSmall);
  Child producer([&] {
    EXPECT_TRUE(eventually([&] { return sleeps_in_futex(::getppid(), ::getppid()); })) << "the getter never slept";
    pq.put(1, "late");
  });
  EXPECT_EQ(pq.get(20s), "late");
  EXPECT_EQ(producer.wait_exit(), 0);
}

// ---------------------------------------------------------------- close

TEST(PriorityQueueClose, ProducersGetClosedAndConsumersDrainTheRestInPriorityOrderThenGetClosed) {
  ScopedSegmentName n("pq_close");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("q", kSmall);
  pq.put(2, "b");
  pq.put(3, "c");
  pq.put(1, "a");
  EXPECT_FALSE(pq.closed());
  pq.close();
  EXPECT_TRUE(pq.closed());
  EXPECT_THROW(pq.put(0, "d"), ipckit::Closed);
  EXPECT_THROW(pq.put(0, "d", 10ms), ipckit::Closed);
  EXPECT_THROW(pq.put_nowait(0, "d"), ipckit::Closed);
  EXPECT_EQ(pq.qsize(), 3u);
  Child consumer([&] {
    auto mine = Segment::open(n.name).priority_queue<std::string>("q", kSmall);
    EXPECT_TRUE(mine.closed());
    EXPECT_EQ(mine.get(), "a");
    EXPECT_EQ(mine.get(1s), "b");
    EXPECT_EQ(mine.get_nowait(), "c");
    const auto t0 = Clock::now();
    EXPECT_THROW(mine.get(), ipckit::Closed);
    EXPECT_THROW(mine.get(10s), ipckit::Closed);
    EXPECT_THROW(mine.get_nowait(), ipckit::Closed);
    EXPECT_THROW(mine.get_with_priority(), ipckit::Closed);
    EXPECT_EQ(mine.try_get(), std::nullopt);
    EXPECT_LT(Clock::now() - t0, 2s) << "a closed, drained queue does not make getters wait";
  });
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_TRUE(pq.empty());
}

TEST(PriorityQueueClose, CloseWakesBlockedConsumersAndBlockedProducersInOtherProcesses) {
  ScopedSegmentName n("pq_close_wakes");
  auto seg = Segment::create(n.name, 4 << 20);
  auto empty = seg.priority_queue<int>("empty", kSmall);
  auto full = seg.priority_queue<int>("full", {.max_items = 1, .max_message = 16});
  full.put(1, 1);
  std::vector<Child> kids;
  kids.reserve(4);
  kids.emplace_back([&] { EXPECT_THROW(empty.get(), ipckit::Closed); });
  kids.emplace_back([&] { EXPECT_THROW(empty.get(60s), ipckit::Closed); });
  kids.emplace_back([&] { EXPECT_THROW(full.put(0, 2), ipckit::Closed); });
  kids.emplace_back([&] { EXPECT_THROW(full.put(0, 3, 60s), ipckit::Closed); });
  for (auto& k : kids) ASSERT_TRUE(asleep(k)) << "process " << k.pid() << " never slept";
  const auto t0 = Clock::now();
  Child closer([&] {
    auto s = Segment::open(n.name);
    s.priority_queue<int>("empty", kSmall).close();
    s.priority_queue<int>("full", {.max_items = 1, .max_message = 16}).close();
  });
  EXPECT_EQ(closer.wait_exit(), 0);
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(10s), 0);
  EXPECT_LT(Clock::now() - t0, kStallLimit) << "the close's wake-up was lost (healed by a periodic re-check)";
  EXPECT_EQ(full.qsize(), 1u) << "the blocked puts added nothing";
  EXPECT_EQ(full.get_nowait(), 1);
  EXPECT_THROW(full.get_nowait(), ipckit::Closed);
}

// ---------------------------------------------------------------- many producers and consumers

TEST(PriorityQueueMpmc, FourProducersAndFourConsumersPassEightyThousandItemsExactlyOnceEqualPrioritiesInPutOrder) {
  constexpr std::uint32_t kProducers = 4, kItems = 20000;
  constexpr int kConsumers = 4;
  enum Fault { kGarbage, kTwice, kOutOfOrder, kWrongPriority, kUnexpected, kFaults };
  ScopedSegmentName n("pq_mpmc");
  auto seg = Segment::create(n.name, 16 << 20);
  auto pq = seg.priority_queue<Tagged>("q", {.max_items = 256, .max_message = 32});
  auto received = seg.array<std::uint8_t>("received", std::size_t{kProducers} * kItems);
  auto taken = seg.array<std::int64_t>("taken", kConsumers);
  auto faults = seg.array<std::int64_t>("faults", kFaults);
  auto fault = [&](Fault f) { at(faults[f]).fetch_add(1); };

  std::vector<Child> consumers;
  consumers.reserve(kConsumers);
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      // Per (producer, priority): the last sequence number this consumer got.
      std::vector<std::int64_t> last(kProducers * 5, -1);
      std::int64_t mine = 0;
      for (;;) {
        std::pair<std::int64_t, Tagged> got;
        try {
          got = c % 2 == 0 ? pq.get_with_priority() : pq.get_with_priority(50ms);
        } catch (const ipckit::Closed&) {
          break;
        } catch (const ipckit::Empty&) {
          continue;
        } catch (...) {
          fault(kUnexpected);
          continue;
        }
        const auto& [prio, t] = got;
        if (t.producer >= kProducers || t.seq >= kItems) {
          fault(kGarbage);
          continue;
        }
        if (prio != priority_of(t.producer, t.seq)) fault(kWrongPriority);
        auto& l = last[t.producer * 5 + static_cast<std::size_t>(prio + 2)];
        if (static_cast<std::int64_t>(t.seq) <= l) fault(kOutOfOrder);
        l = t.seq;
        if (at(received[std::size_t{t.producer} * kItems + t.seq]).fetch_add(1) != 0) fault(kTwice);
        ++mine;
      }
      taken[c] = mine;
    });
  }
  std::vector<Child> producers;
  producers.reserve(kProducers);
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (std::uint32_t seq = 0; seq < kItems; ++seq) {
        if (p % 2 == 0) {
          pq.put(priority_of(p, seq), Tagged{p, seq});
        } else {
          for (;;) {
            try {
              pq.put(priority_of(p, seq), Tagged{p, seq}, 50ms);
              break;
            } catch (const ipckit::Full&) {
            }
          }
        }
      }
    });
  }
  const auto t0 = Clock::now();
  for (auto& p : producers) EXPECT_EQ(p.wait_exit(60s), 0);
  pq.close();
  for (auto& c : consumers) EXPECT_EQ(c.wait_exit(60s), 0);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  ::testing::Test::RecordProperty("ms", static_cast<int>(ms));

  static const char* const kNames[] = {"garbage", "delivered twice", "out of put order", "wrong priority",
                                       "unexpected exceptions"};
  for (int f = 0; f < kFaults; ++f) EXPECT_EQ(faults[f], 0) << kNames[f];
  std::int64_t total = 0;
  for (int c = 0; c < kConsumers; ++c) total += taken[c];
  EXPECT_EQ(total, std::int64_t{kProducers} * kItems);
  std::int64_t missing = 0;
  for (std::size_t i = 0; i < std::size_t{kProducers} * kItems; ++i) missing += received[i] == 0;
  EXPECT_EQ(missing, 0);
  EXPECT_TRUE(pq.empty());
}

TEST(PriorityQueueMpmc, ThreadsOfSeveralProcessesShareOneQueueLosingAndDoublingNothing) {
  constexpr std::uint32_t kProcesses = 2, kThreads = 2, kItems = 5000;
  constexpr std::uint32_t kProducers = kProcesses * kThreads;
  constexpr std::int64_t kTotal = std::int64_t{kProducers} * kItems;
  ScopedSegmentName n("pq_threads");
  auto seg = Segment::create(n.name, 8 << 20);
  auto pq = seg.priority_queue<Tagged>("q", {.max_items = 64, .max_message = 32});
  auto received = seg.array<std::uint8_t>("received", std::size_t{kProducers} * kItems);
  auto counts = seg.array<std::int64_t>("counts", 2);  // taken, bad
  std::int64_t& taken = counts[0];
  std::int64_t& bad = counts[1];
  std::vector<Child> kids;
  kids.reserve(kProcesses);
  for (std::uint32_t proc = 0; proc < kProcesses; ++proc) {
    kids.emplace_back([&, proc] {
      std::vector<std::thread> threads;
      for (std::uint32_t t = 0; t < kThreads; ++t) {
        const std::uint32_t producer = proc * kThreads + t;
        threads.emplace_back([&, producer] {
          for (std::uint32_t seq = 0; seq < kItems; ++seq) pq.put(priority_of(producer, seq), Tagged{producer, seq});
        });
        threads.emplace_back([&] {
          while (at(taken).load() < kTotal) {
            std::optional<std::pair<std::int64_t, Tagged>> got;
            try {
              got = pq.get_with_priority(20ms);
            } catch (const ipckit::Empty&) {
              continue;
            }
            const auto& [prio, item] = *got;
            if (item.producer >= kProducers || item.seq >= kItems || prio != priority_of(item.producer, item.seq) ||
                at(received[std::size_t{item.producer} * kItems + item.seq]).fetch_add(1) != 0)
              at(bad).fetch_add(1);
            at(taken).fetch_add(1);
          }
        });
      }
      for (auto& t : threads) t.join();
    });
  }
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(60s), 0);
  EXPECT_EQ(at(taken).load(), kTotal);
  EXPECT_EQ(at(bad).load(), 0);
  std::int64_t missing = 0;
  for (std::size_t i = 0; i < std::size_t{kProducers} * kItems; ++i) missing += received[i] != 1;
  EXPECT_EQ(missing, 0);
  EXPECT_TRUE(pq.empty());
}

// ---------------------------------------------------------------- crashes

// A holder that dies half-way through an update: the next process to take
// the lock rebuilds the heap from the slot states. Played deterministically
// by a child that takes the lock, scrambles what a put or get in progress
// could leave, and exits holding it.
TEST(PriorityQueueCrash, AHolderThatDiesWithTheHeapHalfUpdatedLeavesItRebuiltByTheNextProcess) {
  ScopedSegmentName n("pq_half_updated");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::int32_t>("q", {.max_items = 64, .max_message = 16});
  auto core = ipckit::detail::SegmentAccess::open_priority_queue(seg, "q", typeid(std::int32_t).name(),
                                                                 {.max_items = 64, .max_message = 16});
  for (int round = 0; round < 4; ++round) {
    std::vector<std::pair<std::int64_t, std::int32_t>> want;
    for (std::int32_t i = 0; i < 20; ++i) {
      const std::int64_t prio = (i * 7) % 5;
      pq.put(prio, i);
      want.emplace_back(prio, i);
    }
    const auto rebuilds_before = core.rebuilds();
    Child holder([&] {
      RawPriorityQueue raw(seg, "q");
      raw.lock_for_good();
      if (round % 2 == 0) {
        // Sizes still add up, but the heap's order is gone (a sift cut short).
        std::reverse(raw.heap, raw.heap + raw.s->heap_size);
      } else {
        // A put whose item is published but not yet in the heap or the count.
        raw.publish_only(-1, ipckit::detail::encode(std::int32_t{100 + round}));
        std::reverse(raw.heap, raw.heap + raw.s->heap_size);
      }
    });
    ASSERT_EQ(holder.wait_exit(), 0);
    if (round % 2 == 1) want.emplace(want.begin(), -1, 100 + round);  // before all: lowest priority
    std::stable_sort(want.begin(), want.end(), [](auto& a, auto& b) { return a.first < b.first; });
    Child next([&] {
      for (std::size_t k = 0; k < want.size(); ++k) {
        // Rounds 0 and 1 take the dead holder's lock over in a non-blocking get.
        const auto got =
            round < 2 && k == 0 ? std::make_pair(std::int64_t{0}, pq.get_nowait()) : pq.get_with_priority(5s);
        if (!(round < 2 && k == 0)) {
          EXPECT_EQ(got.first, want[k].first) << "round " << round << " item " << k;
        }
        EXPECT_EQ(got.second, want[k].second) << "round " << round << " item " << k;
      }
      EXPECT_THROW(pq.get_nowait(), ipckit::Empty);
    });
    EXPECT_EQ(next.wait_exit(), 0) << "round " << round;
    EXPECT_GT(core.rebuilds(), rebuilds_before) << "round " << round;
    EXPECT_TRUE(pq.empty());
  }
}

// A producer that dies mid-put holding the lock leaves the consumers' count
// stale; a consumer already asleep still gets the item (it re-takes the lock
// now and then, and taking it over repairs the count).
TEST(PriorityQueueCrash, AConsumerAsleepWhenAProducerDiesMidPutStillGetsTheItem) {
  ScopedSegmentName n("pq_stale_count");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("q", kSmall);
  Signal got;
  Child consumer([&] {
    EXPECT_EQ(pq.get(10s), "orphan");
    got.post();
  });
  ASSERT_TRUE(asleep(consumer));
  Child producer([&] {
    RawPriorityQueue raw(seg, "q");
    raw.lock_for_good();
    raw.publish_only(3, ipckit::detail::encode(std::string("orphan")));
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(pq.qsize(), 0u) << "the count was not updated: the test plays the wrong instant";
  EXPECT_TRUE(got.wait(5s)) << "the sleeping consumer never found the item";
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_TRUE(pq.empty());
}

TEST(PriorityQueueCrash, AConsumerKilledWhileDecodingLeavesTheItemQueuedForTheNextConsumer) {
  ScopedSegmentName n("pq_kill_decode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<Stalling>("q", kSmall);
  for (int round = 0; round < 3; ++round) {
    pq.put(5, {round});
    pq.put(1, {kStallOnLoad});
    pq.put(9, {round + 10});
    Signal stalled;
    Child victim([&] {
      g_stall_fd = stalled.fd[1];
      (void)pq.get();
    });
    ASSERT_TRUE(stalled.wait()) << "round " << round;
    EXPECT_EQ(pq.qsize(), 3u) << "a get that has not returned frees nothing";
    victim.kill(SIGKILL);
    EXPECT_EQ(victim.wait_exit(), -SIGKILL);
    Child next([&] {
      if (round == 1) {
        EXPECT_EQ(pq.get_nowait().value, kStallOnLoad) << "the victim's item is delivered to the next consumer";
      } else {
        EXPECT_EQ(pq.get(5s).value, kStallOnLoad) << "the victim's item is delivered to the next consumer";
      }
      EXPECT_EQ(pq.get(5s).value, round);
      EXPECT_EQ(pq.get(5s).value, round + 10);
    });
    EXPECT_EQ(next.wait_exit(), 0) << "round " << round;
    EXPECT_TRUE(pq.empty());
  }
}

TEST(PriorityQueueCrash, AProducerKilledWhileEncodingLeavesNothingInTheQueue) {
  ScopedSegmentName n("pq_kill_encode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<Stalling>("q", kSmall);
  pq.put(2, {1});
  Signal stalled;
  Child victim([&] {
    g_stall_fd = stalled.fd[1];
    pq.put(0, {kStallOnSave});
  });
  ASSERT_TRUE(stalled.wait());
  victim.kill(SIGKILL);
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  Child other([&] { pq.put(1, {2}); });
  EXPECT_EQ(other.wait_exit(), 0);
  EXPECT_EQ(pq.qsize(), 2u);
  EXPECT_EQ(pq.get_nowait().value, 2);
  EXPECT_EQ(pq.get_nowait().value, 1);
  EXPECT_THROW(pq.get_nowait(), ipckit::Empty);
}

// Producers and consumers SIGKILLed at random instants inside their put and
// get loops (as QueueCrash does for the FIFO), with the checks of
// tests/kill_harness.hpp; each item is put with priority_of(producer, seq)
// and must come out with it, each producer's items of equal priority in put
// order. The last round kills the consumers first, then, once they have
// filled the queue, the producers, so that the drain has a full heap to
// order: its priorities must never decrease. Items are up to 12 KiB: copying
// one into or out of a slot keeps the lock held long enough for a good share
// of the kills to land while it is, and some must (the heap is rebuilt).
TEST(PriorityQueueCrash, ProducersAndConsumersKilledThreeHundredTimesLoseDoubleAndMisorderNothing) {
  ScopedSegmentName n("pq_crash");
  auto seg = Segment::create(n.name, 8 << 20);
  const QueueOptions opts{.max_items = 48, .max_message = 12 << 10};
  auto pq = seg.priority_queue<Stamped>("q", opts);
  auto core = ipckit::detail::SegmentAccess::open_priority_queue(seg, "q", typeid(Stamped).name(), opts);
  constexpr int kWrongPriority = KillRun::kOwnFault;
  KillRun run(seg, {.seed = 20240611u,
                    .kills = 300,
                    .max_seq = 1u << 20,
                    .max_ops_before_kill = 32,
                    .pad_unit = 200,
                    .order_classes = 5,  // the priorities -2..2
                    .own_faults = {"wrong priority"}});

  auto put = [&](const Stamped& s, auto... timeout) { pq.put(priority_of(s.producer, s.seq), s, timeout...); };
  // Returns the priority the item came with.
  auto get_and_take = [&](std::vector<std::int64_t>& last, auto... timeout) {
    const auto [prio, s] = pq.get_with_priority(timeout...);
    const std::int64_t put_with = priority_of(s.producer, s.seq);
    if (run.record(s, last, static_cast<std::size_t>(put_with + 2)) && prio != put_with) run.fault(kWrongPriority);
    return prio;
  };
  run.kill_at_random(put, get_and_take);
  for (int victim = KillRun::kProducers; victim < KillRun::kSlots; ++victim) run.kill_for_good(victim, 100ms);
  EXPECT_TRUE(eventually([&] { return pq.full(); }, 5s)) << "the producers never filled the queue";
  for (int victim = 0; victim < static_cast<int>(KillRun::kProducers); ++victim) run.kill_for_good(victim, 0ms);

  std::int64_t previous = std::numeric_limits<std::int64_t>::min(), inversions = 0;
  const bool drained = run.drain([&](std::vector<std::int64_t>& last, auto timeout) {
    const std::int64_t prio = get_and_take(last, timeout);
    if (prio < previous) ++inversions;
    previous = prio;
  });
  if (!drained) return;
  EXPECT_EQ(inversions, 0) << "the drain's priorities went down: the heap lost its order";
  EXPECT_GE(run.drained(), static_cast<std::int64_t>(pq.slots()) - 1) << "the drain had (almost) a full queue to order";
  EXPECT_EQ(pq.qsize(), 0u);
  run.check_books();
  EXPECT_GT(core.rebuilds(), 0u) << "no kill landed inside the lock: the run did not test recovery";

  // The queue still works, across processes.
  EXPECT_TRUE(run.returns_in_a_new_process([&] { pq.put(-100, run.item(0, run.max_seq() - 1)); }))
      << "a put after the kills failed";
  const auto last_one = pq.get_with_priority(5s);
  EXPECT_EQ(last_one.first, -100);
  EXPECT_TRUE(run.intact(last_one.second));

  run.record_properties();
  ::testing::Test::RecordProperty("rebuilds", static_cast<int>(core.rebuilds()));
}

// ---------------------------------------------------------------- LifoQueue

// Python's queue.LifoQueue: the item put last comes out first, whichever
// process put it.
TEST(LifoQueue, TheLastItemPutComesOutFirstWhicheverProcessPutIt) {
  ScopedSegmentName n("lifo_order");
  auto seg = Segment::create(n.name, 4 << 20);
  auto stack = seg.lifo_queue<std::string>("stack", kSmall);
  EXPECT_TRUE(stack.empty());
  Child producer([&] {
    auto mine = Segment::open(n.name).lifo_queue<std::string>("stack", kSmall);
    for (int i = 0; i < 100; ++i) mine.put(std::to_string(i));
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(stack.qsize(), 100u);
  stack.put("a");
  stack.put("b");
  EXPECT_EQ(stack.get(), "b");
  EXPECT_EQ(stack.get(), "a");
  Child consumer([&] {
    for (int i = 99; i >= 50; --i) ASSERT_EQ(stack.get_nowait(), std::to_string(i));
  });
  ASSERT_EQ(consumer.wait_exit(), 0);
  stack.put("c");
  EXPECT_EQ(stack.get(1s), "c");
  for (int i = 49; i >= 0; --i) ASSERT_EQ(stack.get_nowait(), std::to_string(i));
  EXPECT_FALSE(stack.try_get().has_value());
  EXPECT_EQ(stack.slots(), 744u) << "the slots of a priority queue of the same options";
}

TEST(LifoQueue, IsAKindOfItsOwn) {
  ScopedSegmentName n("lifo_kind");
  auto seg = Segment::create(n.name, 4 << 20);
  (void)seg.lifo_queue<int>("stack", kSmall);
  (void)seg.priority_queue<int>("heap", kSmall);
  EXPECT_THROW(seg.priority_queue<int>("stack", kSmall), ipckit::TypeMismatch);
  EXPECT_THROW(seg.joinable_priority_queue<int>("stack", kSmall), ipckit::TypeMismatch);
  EXPECT_THROW(seg.lifo_queue<int>("heap", kSmall), ipckit::TypeMismatch);
  EXPECT_THROW(seg.lifo_queue<long>("stack", kSmall), ipckit::TypeMismatch);
  EXPECT_THROW(seg.queue<int>("stack"), ipckit::TypeMismatch);
}

// A holder that dies with the heap scrambled: the next process rebuilds it
// in LIFO order, not in priority order.
TEST(LifoQueue, AHolderThatDiesWithTheHeapScrambledLeavesItRebuiltInLifoOrder) {
  ScopedSegmentName n("lifo_rebuild");
  auto seg = Segment::create(n.name, 4 << 20);
  auto stack = seg.lifo_queue<std::int32_t>("q", kSmall);
  for (std::int32_t i = 0; i < 30; ++i) stack.put(i);
  Child holder([&] {
    RawPriorityQueue raw(seg, "q");
    raw.lock_for_good();
    std::reverse(raw.heap, raw.heap + raw.s->heap_size);
    raw.publish_only(0, ipckit::detail::encode(std::int32_t{100}));  // published, in no heap: the latest
  });
  ASSERT_EQ(holder.wait_exit(), 0);
  EXPECT_EQ(stack.get(5s), 100);
  for (std::int32_t i = 29; i >= 0; --i) ASSERT_EQ(stack.get_nowait(), i);
  EXPECT_TRUE(stack.empty());
}

// wait_readable(): a waiter in another process wakes on a put without taking
// the item; times out when nothing comes; wakes when the queue is closed.
TEST(PriorityQueue, WaitReadableWakesOnAPutFromAnotherProcessAndOnCloseWithoutTaking) {
  ScopedSegmentName n("pq_readable");
  auto seg = Segment::create(n.name, 4 << 20);
  auto pq = seg.priority_queue<std::string>("tasks", kSmall);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(pq.wait_readable(20ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  Child waiter([&] {
    auto mine = Segment::open(n.name).priority_queue<std::string>("tasks", kSmall);
    ASSERT_TRUE(mine.wait_readable(20s));
    EXPECT_EQ(mine.qsize(), 1u) << "wait_readable took the item";
    ASSERT_TRUE(mine.wait_readable(20s));  // still there: ready at once
  });
  ASSERT_TRUE(asleep(waiter));
  pq.put(5, "x");
  EXPECT_EQ(waiter.wait_exit(10s), 0);
  EXPECT_EQ(pq.get(), "x");
  Child closer_waiter([&] {
    auto mine = Segment::open(n.name).priority_queue<std::string>("tasks", kSmall);
    EXPECT_TRUE(mine.wait_readable(20s));
    EXPECT_TRUE(mine.closed());
  });
  ASSERT_TRUE(asleep(closer_waiter));
  pq.close();
  EXPECT_EQ(closer_waiter.wait_exit(10s), 0);
}
