// How queues name themselves in errors, for every kind of queue: object() is
// the bare queue name and segment() its segment, as for every other
// primitive, and the message names it ("queue 'jobs' in segment '...'").
// Also the timed forms with any std::chrono::duration: one too long for
// nanoseconds (hours::max()) waits as long as it takes instead of
// overflowing into a single try.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
#include "ipckit/lifo_queue.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::QueueOptions;
using ipckit::Segment;
using namespace ipckit::testing;

namespace {

// Each kind of queue, opened as "jobs", with the noun its label uses.
struct FifoKind {
  static constexpr const char* kNoun = "queue";
  static auto open(Segment& s, const QueueOptions& o) { return s.queue<std::string>("jobs", o); }
};
struct BytesKind {
  static constexpr const char* kNoun = "queue";
  static auto open(Segment& s, const QueueOptions& o) { return s.byte_queue("jobs", o); }
};
struct JoinableKind {
  static constexpr const char* kNoun = "joinable queue";
  static auto open(Segment& s, const QueueOptions& o) { return s.joinable_queue<std::string>("jobs", o); }
};
struct PriorityKind {
  static constexpr const char* kNoun = "priority queue";
  static auto open(Segment& s, const QueueOptions& o) { return s.priority_queue<std::string>("jobs", o); }
};
struct LifoKind {
  static constexpr const char* kNoun = "lifo queue";
  static auto open(Segment& s, const QueueOptions& o) { return s.lifo_queue<std::string>("jobs", o); }
};
struct JoinablePriorityKind {
  static constexpr const char* kNoun = "joinable priority queue";
  static auto open(Segment& s, const QueueOptions& o) { return s.joinable_priority_queue<std::string>("jobs", o); }
};

// put with the priority a priority queue needs.
template <class Q, class... Rest>
void put(Q& q, const std::string& x, Rest... rest) {
  if constexpr (requires { q.put(std::int64_t{0}, x, rest...); })
    q.put(3, x, rest...);
  else
    q.put(x, rest...);
}
template <class Q>
void put_nowait(Q& q, const std::string& x) {
  if constexpr (requires { q.put_nowait(std::int64_t{0}, x); })
    q.put_nowait(3, x);
  else
    q.put_nowait(x);
}

// Runs `f`, which must throw E about queue "jobs" of segment `seg`, with a
// message that names it and contains `says`.
template <class E, class F>
void expect_about_jobs(const std::string& seg, const std::string& says, F&& f) {
  try {
    f();
    ADD_FAILURE() << "expected " << typeid(E).name() << " (" << says << ")";
  } catch (const E& e) {
    EXPECT_EQ(e.object(), "jobs") << e.what();
    EXPECT_EQ(e.segment(), seg) << e.what();
    EXPECT_NE(std::string(e.what()).find("'jobs' in segment '" + seg + "'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

template <class K>
class QueueLabels : public ::testing::Test {
 protected:
  // One item at most, of up to 64 bytes.
  static constexpr QueueOptions kOptions{.capacity_bytes = 4096, .max_items = 1, .max_message = 64};
  ScopedSegmentName name_{"qlabels"};
  Segment seg_ = Segment::create(name_.name, 4 << 20);
  decltype(K::open(std::declval<Segment&>(), kOptions)) q_ = K::open(seg_, kOptions);
};

using Kinds = ::testing::Types<FifoKind, BytesKind, JoinableKind, PriorityKind, LifoKind, JoinablePriorityKind>;
class KindNames {
 public:
  template <class K>
  static std::string GetName(int) {
    std::string name = K::kNoun;
    for (auto& c : name) c = c == ' ' ? '_' : c;
    return std::is_same_v<K, BytesKind> ? "byte_queue" : name;
  }
};
TYPED_TEST_SUITE(QueueLabels, Kinds, KindNames);

TYPED_TEST(QueueLabels, TheLabelNamesTheKindTheQueueAndItsSegment) {
  EXPECT_EQ(this->q_.label(), std::string(TypeParam::kNoun) + " 'jobs' in segment '" + this->name_.name + "'");
}

TYPED_TEST(QueueLabels, EmptyFullClosedAndTooLargeAreAboutTheBareQueueName) {
  auto& q = this->q_;
  const std::string& seg = this->name_.name;
  expect_about_jobs<ipckit::Empty>(seg, "is empty", [&] { (void)q.get_nowait(); });
  expect_about_jobs<ipckit::Empty>(seg, "is empty", [&] { (void)q.get(1ms); });
  put_nowait(q, "a");
  expect_about_jobs<ipckit::Full>(seg, "is full", [&] { put_nowait(q, "b"); });
  expect_about_jobs<ipckit::Full>(seg, "is full", [&] { put(q, "b", 1ms); });
  expect_about_jobs<ipckit::MessageTooLarge>(seg, "max_message", [&] { put_nowait(q, std::string(100, 'x')); });
  q.close();
  expect_about_jobs<ipckit::Closed>(seg, "is closed", [&] { put_nowait(q, "b"); });
  EXPECT_EQ(q.get_nowait(), "a");
  expect_about_jobs<ipckit::Closed>(seg, "closed and drained", [&] { (void)q.get_nowait(); });
}

TYPED_TEST(QueueLabels, OptionsRefusedAtOpenAreAboutTheBareQueueName) {
  const std::string& seg = this->name_.name;
  expect_about_jobs<ipckit::InvalidArgument>(seg, "capacity_bytes 1 is out of range",
                                             [&] { (void)TypeParam::open(this->seg_, {.capacity_bytes = 1}); });
  expect_about_jobs<ipckit::TypeMismatch>(seg, "was created with", [&] {
    (void)TypeParam::open(this->seg_, {.capacity_bytes = 4096, .max_items = 2, .max_message = 64});
  });
}

TYPED_TEST(QueueLabels, TimedFormsTakeAnyDurationWithoutOverflow) {
  auto& q = this->q_;
  put(q, "a", std::chrono::hours::max());  // room: at once
  EXPECT_EQ(q.get(std::chrono::hours::max()), "a");
  put(q, "b", std::chrono::duration<double>(1e300));  // a floating duration saturates too
  EXPECT_EQ(q.get(std::chrono::duration<double, std::milli>(0.5)), "b");
  // A negative one (however expressed) is a single try.
  expect_about_jobs<ipckit::Empty>(this->name_.name, "is empty", [&] { (void)q.get(-std::chrono::hours(1)); });
}

TEST(QueueLabels, TaskDoneWithNoTaskLeftIsAboutTheBareQueueName) {
  ScopedSegmentName n("qlabels_tasks");
  auto seg = Segment::create(n.name, 4 << 20);
  auto fifo = seg.joinable_queue<int>("jobs");
  expect_about_jobs<ipckit::InvalidArgument>(n.name, "task_done()", [&] { fifo.task_done(); });
  fifo.close();
  ScopedSegmentName n2("qlabels_ptasks");
  auto seg2 = Segment::create(n2.name, 4 << 20);
  auto prio = seg2.joinable_priority_queue<int>("jobs");
  expect_about_jobs<ipckit::InvalidArgument>(n2.name, "task_done()", [&] { prio.task_done(); });
  EXPECT_TRUE(prio.join(std::chrono::hours::max())) << "no task is unfinished";
}

TEST(QueueLabels, AnItemThatDoesNotDecodeIsAboutTheBareQueueName) {
  ScopedSegmentName n("qlabels_decode");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<std::string>("jobs");
  auto raw =
      ipckit::detail::SegmentAccess::open_queue(seg, "jobs", ipckit::ObjectKind::Queue, typeid(std::string).name(), {});
  raw.put(std::string("\x01\x02", 2), {}, ipckit::detail::Deadline::never());  // not even a whole length
  expect_about_jobs<ipckit::DecodeError>(n.name, "did not decode", [&] { (void)q.get_nowait(); });
}

// The kind names the library prints, and the nouns its messages use.
TEST(QueueLabels, KindNamesAndNouns) {
  EXPECT_STREQ(ipckit::to_string(ipckit::ObjectKind::JoinablePriorityQueue), "JoinablePriorityQueue");
  EXPECT_STREQ(ipckit::to_string(ipckit::ObjectKind::Value), "Value");
  EXPECT_STREQ(ipckit::to_string(static_cast<ipckit::ObjectKind>(0)), "unknown");
  EXPECT_STREQ(ipckit::to_string(static_cast<ipckit::ObjectKind>(99)), "unknown");
  ScopedSegmentName n("qlabels_nouns");
  auto seg = Segment::create(n.name, 4 << 20);
  EXPECT_EQ(seg.rlock("r").label(), "rlock 'r' in segment '" + n.name + "'");
  EXPECT_EQ(seg.bounded_semaphore("s", 1).label(), "bounded semaphore 's' in segment '" + n.name + "'");
}

// get(hours::max()) on an empty queue waits for the item another process
// puts (it used to overflow into a negative timeout: Empty at once).
template <class Q, class Get>
void wait_forever_for_a_put(Q& q, Get&& get) {
  Child producer([&] {
    // Put only once the parent sleeps in its get (or after 10 s regardless,
    // so that a parent that did not wait still gets the item and finishes).
    (void)eventually([&] { return q.stats().sleeping_consumers > 0; });
    put(q, "late");
  });
  EXPECT_EQ(get(), "late");
  EXPECT_EQ(producer.wait_exit(), 0);
}

TEST(QueueLabels, GetWithHoursMaxWaitsForAnItemFromAnotherProcess) {
  ScopedSegmentName n("qlabels_forever");
  auto seg = Segment::create(n.name, 4 << 20);
  auto fifo = seg.queue<std::string>("fifo");
  wait_forever_for_a_put(fifo, [&] { return fifo.get(std::chrono::hours::max()); });
  auto prio = seg.priority_queue<std::string>("prio");
  wait_forever_for_a_put(prio, [&] { return prio.get_with_priority(std::chrono::hours::max()).second; });
  auto batch = seg.byte_queue("batch");
  wait_forever_for_a_put(batch, [&] { return batch.get_many(4, std::chrono::hours::max()).at(0); });
  const std::vector<std::string_view> many{"x", "y"};
  batch.put_many(many, std::chrono::hours::max());
  EXPECT_EQ(batch.qsize(), 2u);
}

}  // namespace
