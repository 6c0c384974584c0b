// Zero-copy loans and views (ipckit/loan.hpp) across real processes: items
// written in place with loan()/publish() and read in place with
// get_view()/release(); every blocking form, misuse, and the crash-safety
// promises (a loan whose process dies leaves nothing visible, a view whose
// process dies leaves its item queued), with peers SIGKILLed and SIGSTOPped
// while they hold a loan or a view.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ipckit/detail/queue_state.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
#include "kill_harness.hpp"
#include "multiprocess.hpp"
#include "queue_items.hpp"
#include "test_helpers.hpp"

using namespace std::chrono_literals;
using ipckit::ByteLoan;
using ipckit::ByteQueue;
using ipckit::ByteView;
using ipckit::QueueOptions;
using ipckit::Segment;
using namespace ipckit::testing;
namespace d = ipckit::detail;

namespace {

// ---------------------------------------------------------------- helpers

// How far past its deadline a call may return: the machine is shared with
// parallel builds, so the bound is loose.
constexpr auto kSlack = 250ms;

// The byte at `i` of payload number `seed`: every payload differs from its
// neighbours, so a stale or torn record shows up.
char pattern_byte(std::uint32_t seed, std::size_t i) {
  return static_cast<char>((seed * 2654435761u + i * 131u + (i >> 8)) & 0xff);
}
void fill(char* p, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = 0; i < n; ++i) p[i] = pattern_byte(seed, i);
}
std::string payload(std::size_t n, std::uint32_t seed) {
  std::string s(n, '\0');
  fill(s.data(), n, seed);
  return s;
}
bool is_payload(std::string_view got, std::size_t n, std::uint32_t seed) { return got == payload(n, seed); }

// A ByteQueue message of the many-process runs: a header naming its producer
// and sequence number, then a pattern of a length that varies with seq (so
// records land at every offset and wrap the ring's end).
struct Header {
  std::uint32_t producer;
  std::uint32_t seq;
};
std::size_t message_size(std::uint32_t seq) { return sizeof(Header) + (seq * 7) % 301; }
std::uint32_t seed_of(std::uint32_t producer, std::uint32_t seq) { return (producer << 24) ^ seq; }
void write_message(char* p, std::uint32_t producer, std::uint32_t seq) {
  const Header h{producer, seq};
  std::memcpy(p, &h, sizeof h);
  fill(p + sizeof h, message_size(seq) - sizeof h, seed_of(producer, seq));
}
// The header of a message, or nullopt if it is not one write_message made.
std::optional<Header> read_message(std::string_view m, std::uint32_t producers) {
  Header h{};
  if (m.size() < sizeof h) return std::nullopt;
  std::memcpy(&h, m.data(), sizeof h);
  if (h.producer >= producers || m.size() != message_size(h.seq)) return std::nullopt;
  const std::string_view rest = m.substr(sizeof h);
  for (std::size_t i = 0; i < rest.size(); ++i)
    if (rest[i] != pattern_byte(seed_of(h.producer, h.seq), i)) return std::nullopt;
  return h;
}

// The item of the typed tests: trivially copyable, aligned to 8.
struct Frame {
  std::uint32_t producer = 0;
  std::uint32_t seq = 0;
  std::uint64_t check = 0;
  double value = 0;
  char tag[12] = {};
};
static_assert(sizeof(Frame) == 40);
Frame make_frame(std::uint32_t producer, std::uint32_t seq) {
  Frame f;
  f.producer = producer;
  f.seq = seq;
  f.check = stamp_of(producer, seq);
  f.value = seq * 0.5;
  std::snprintf(f.tag, sizeof f.tag, "f%u", seq);
  return f;
}
bool intact(const Frame& f) {
  const Frame want = make_frame(f.producer, f.seq);
  return f.check == want.check && f.value == want.value && std::strcmp(f.tag, want.tag) == 0;
}

// Runs `call` and checks it returned within `timeout` + kSlack (and not
// before `timeout`). If it has not returned after 3 s, `rescue()` runs (it
// lets a stopped holder go) so that an unbounded wait fails the test
// instead of hanging it.
template <class Rescue, class Call>
void expect_bounded(const char* what, std::chrono::milliseconds timeout, Rescue&& rescue, Call&& call) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false, rescued = false;
  std::thread rescuer([&] {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, 3s, [&] { return done; })) {
      rescued = true;
      rescue();
    }
  });
  const auto t0 = Clock::now();
  try {
    call();
  } catch (...) {
    ADD_FAILURE() << what << " threw an unexpected exception";
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_all();
  rescuer.join();
  EXPECT_FALSE(rescued) << what << " did not return until it was rescued (" << took.count() << " ms)";
  EXPECT_LT(took, timeout + kSlack) << what << " took " << took.count() << " ms with a timeout of " << timeout.count()
                                    << " ms";
  EXPECT_GE(took + 1ms, timeout) << what << " returned before its timeout";
}
template <class Call>
void expect_bounded(const char* what, std::chrono::milliseconds timeout, Call&& call) {
  const auto no_rescue = [] {};
  expect_bounded(what, timeout, no_rescue, std::forward<Call>(call));
}

// Runs `body` in a child that must exit 0 within 20 s: a call that would
// hang fails the test instead.
template <class F>
void in_child(const char* what, F&& body) {
  Child c(std::forward<F>(body));
  EXPECT_EQ(c.wait_exit(20s), 0) << what << " (-1000: it hung)";
}

}  // namespace

// ================================================================ ByteQueue

TEST(QueueLoan, ALoanWrittenInOneProcessIsGotWhole_OrItsFirstKBytes_InAnother) {
  ScopedSegmentName n("ql_publish");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1 << 16});
  in_child("producer", [&] {
    auto mine = Segment::open(n.name).byte_queue("q", {.capacity_bytes = 1 << 16});
    ByteLoan whole = mine.loan(1000);
    EXPECT_TRUE(static_cast<bool>(whole));
    EXPECT_EQ(whole.size(), 1000u);
    EXPECT_EQ(whole.bytes().size(), 1000u);
    fill(whole.data(), 1000, 1);
    whole.publish();
    EXPECT_FALSE(static_cast<bool>(whole)) << "a published loan is empty";
    ByteLoan part = mine.loan(1000);
    fill(part.data(), 1000, 2);
    part.publish(300);  // only its first 300 bytes
    ByteLoan none = mine.loan(64);
    none.publish(0);  // an empty item
    ByteLoan zero = mine.loan(0);
    zero.publish();
  });
  EXPECT_EQ(q.qsize(), 4u);
  EXPECT_TRUE(is_payload(q.get(5s), 1000, 1));
  const std::string part = q.get(5s);
  EXPECT_EQ(part.size(), 300u) << "publish(300) made more or less than 300 bytes visible";
  EXPECT_TRUE(is_payload(part, 300, 2));
  EXPECT_EQ(q.get(5s), "");
  EXPECT_EQ(q.get(5s), "");
  EXPECT_THROW(q.get_nowait(), ipckit::Empty);
  EXPECT_EQ(q.bytes_used(), 0u);
}

TEST(QueueLoan, AnAbandonedOrDestroyedLoanLeavesNothingVisibleAndTheNextProducerReusesItsRoom) {
  ScopedSegmentName n("ql_abandon");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096});
  q.put("first");
  const char* room = nullptr;
  {
    ByteLoan loan = q.loan(500);
    room = loan.data();
    std::memset(loan.data(), 'Z', 500);
    loan.abandon();
    EXPECT_FALSE(static_cast<bool>(loan));
    loan.abandon();  // a second abandon does nothing
  }
  EXPECT_EQ(q.qsize(), 1u);
  {
    ByteLoan loan = q.loan(500);
    EXPECT_EQ(loan.data(), room) << "the abandoned loan's room was not reused";
    std::memset(loan.data(), 'Y', 500);
  }  // destroyed unpublished
  EXPECT_EQ(q.qsize(), 1u);
  // Another process abandons one and destroys one too.
  in_child("abandoning producer", [&] {
    ByteLoan a = q.loan(200);
    std::memset(a.data(), 'X', 200);
    a.abandon();
    ByteLoan b = q.loan(300);
    std::memset(b.data(), 'W', 300);
  });
  EXPECT_EQ(q.qsize(), 1u);
  in_child("producer after them", [&] {
    ByteLoan loan = q.loan(10);
    EXPECT_EQ(loan.data(), room) << "the room of the abandoned loans was not reused";
    std::memcpy(loan.data(), "second....", 10);
    loan.publish(6);
  });
  EXPECT_EQ(q.get_nowait(), "first");
  EXPECT_EQ(q.get_nowait(), "second");
  EXPECT_THROW(q.get_nowait(), ipckit::Empty) << "an unpublished loan became visible";
  EXPECT_EQ(q.bytes_used(), 0u);
}

TEST(QueueLoan, AViewReadsInPlace_ReleaseAndTheDestructorConsume_KeepLeavesTheItemFirstInLine) {
  ScopedSegmentName n("ql_view");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1 << 14});
  for (std::uint32_t i = 0; i < 4; ++i) q.put(payload(100 + i, i));
  in_child("viewing consumer", [&] {
    ByteView v = q.get_view();
    EXPECT_TRUE(static_cast<bool>(v));
    EXPECT_EQ(v.size(), 100u);
    EXPECT_TRUE(is_payload(v.bytes(), 100, 0));
    EXPECT_EQ(q.qsize(), 4u) << "an unreleased view consumed its item";
    v.keep();
    EXPECT_FALSE(static_cast<bool>(v));
    EXPECT_EQ(q.qsize(), 4u) << "keep() consumed the item";
    ByteView again = q.get_view(1s);
    EXPECT_TRUE(is_payload(again.bytes(), 100, 0)) << "keep() did not leave the item first in line";
    const char* where = again.data();
    again.release();
    EXPECT_FALSE(static_cast<bool>(again));
    EXPECT_EQ(q.qsize(), 3u);
    {
      ByteView next = q.get_view(1s);
      EXPECT_TRUE(is_payload(next.bytes(), 101, 1));
      // In place: the next record lies right after the first (8-byte header,
      // 100 bytes, padded to 112) in the ring.
      EXPECT_EQ(next.data(), where + 112) << "the view is not in the ring (a copy?)";
    }  // the destructor releases
    EXPECT_EQ(q.qsize(), 2u);
  });
  EXPECT_TRUE(is_payload(q.get(1s), 102, 2));
  ByteView v = q.get_view_nowait();
  EXPECT_TRUE(is_payload(v.bytes(), 103, 3));
  ByteView moved = std::move(v);
  EXPECT_FALSE(static_cast<bool>(v));
  moved = ByteView();  // assigning over a view releases it
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_FALSE(q.try_get_view().has_value());
}

// A model of the queue (a deque) beside random puts, gets, loans (published,
// in part, abandoned) and views (released, kept), in two processes taking
// turns: the queue always holds what the model says, in order.
TEST(QueueLoan, InterleavedPutsGetsLoansAndViewsKeepFifoOrder) {
  ScopedSegmentName n("ql_order");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 2048, .max_message = 400});
  std::deque<std::string> model;
  std::uint32_t next_seed = 0;
  auto step = [&](std::mt19937& rng) {
    const std::size_t size = rng() % 300;
    const std::uint32_t seed = next_seed++;
    switch (rng() % 7) {
      case 0:
        if (q.try_put(payload(size, seed))) model.push_back(payload(size, seed));
        break;
      case 1:
      case 2: {
        std::optional<ByteLoan> loan = q.try_loan(size);
        if (!loan) break;
        fill(loan->data(), size, seed);
        const std::size_t used = rng() % 3 == 0 ? rng() % (size + 1) : size;
        if (rng() % 5 == 0) {
          loan->abandon();
        } else {
          loan->publish(used);
          model.push_back(payload(size, seed).substr(0, used));
        }
        break;
      }
      case 3: {
        std::optional<std::string> got = q.try_get();
        EXPECT_EQ(got.has_value(), !model.empty());
        if (!got || model.empty()) break;
        EXPECT_EQ(*got, model.front());
        model.pop_front();
        break;
      }
      default: {
        std::optional<ByteView> view = q.try_get_view();
        EXPECT_EQ(view.has_value(), !model.empty());
        if (!view || model.empty()) break;
        EXPECT_EQ(view->bytes(), model.front());
        if (rng() % 3 == 0) {
          view->keep();
        } else {
          view->release();
          model.pop_front();
        }
      }
    }
    EXPECT_EQ(q.qsize(), model.size());
  };
  // The processes take turns; each hands its model to the next through a
  // second queue, so each checks the queue against what the other did.
  auto models = seg.byte_queue("models", {.capacity_bytes = 1 << 16});
  std::mt19937 rng(7);
  for (int turn = 0; turn < 20; ++turn) {
    in_child("a turn of random operations", [&] {
      std::mt19937 mine(static_cast<unsigned>(turn) * 1000u + 1u);
      next_seed = 1'000'000u * static_cast<std::uint32_t>(turn + 1);
      for (int i = 0; i < 200; ++i) step(mine);
      for (const auto& s : model) models.put(s);
    });
    model.clear();
    while (auto s = models.try_get()) model.push_back(*s);
    for (int i = 0; i < 200; ++i) step(rng);
    ASSERT_FALSE(HasFailure()) << "turn " << turn;
  }
  while (!model.empty()) {
    EXPECT_EQ(q.get_nowait(), model.front());
    model.pop_front();
  }
  EXPECT_EQ(q.bytes_used(), 0u);
}

// A ring of 1 KiB with loans of varying size keeps producers writing at
// every offset, wrapping the end (skip markers) hundreds of times; a
// consumer in another process checks every item's bytes.
TEST(QueueLoan, LoansAndViewsWrapTheRingAtEveryOffsetWithContentsIntact) {
  ScopedSegmentName n("ql_wrap");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1024, .max_message = 400});
  constexpr std::uint32_t kItems = 20000;
  Child producer([&] {
    std::mt19937 rng(11);
    for (std::uint32_t i = 0; i < kItems; ++i) {
      const std::size_t want = message_size(i);
      // Loans larger than what is published, and abandoned ones, move where
      // the next record starts and where the ring wraps.
      const std::size_t extra = rng() % 4 == 0 ? rng() % (400 - want + 1) : 0;
      if (rng() % 8 == 0) {
        ByteLoan junk = q.loan(want + extra);
        std::memset(junk.data(), 0xEE, junk.size());
        junk.abandon();
      }
      if (i % 5 == 4) {
        std::string m(want, '\0');
        write_message(m.data(), 0, i);
        q.put(m);
        continue;
      }
      ByteLoan loan = q.loan(want + extra);
      write_message(loan.data(), 0, i);
      loan.publish(want);
    }
  });
  std::uint32_t expected = 0;
  while (expected < kItems) {
    std::optional<Header> h;
    if (expected % 3 == 0) {
      h = read_message(q.get(10s), 1);
    } else {
      ByteView v = q.get_view(10s);
      h = read_message(v.bytes(), 1);
    }
    if (!h || h->seq != expected) {
      ADD_FAILURE() << "item " << expected << " arrived "
                    << (h ? "as item " + std::to_string(h->seq) : std::string("damaged"));
      break;
    }
    ++expected;
  }
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_EQ(q.bytes_used(), 0u);
}

// Deterministic: a loan that does not fit before the ring's end goes to its
// start behind a skip marker. Abandoned, it leaves nothing (the next record
// fits at the end); published in part, it is read whole after the marker.
TEST(QueueLoan, ALoanWrappingTheRingsEndIsSkippedToTheStartAndAnAbandonedOneLeavesNoSkipBehind) {
  ScopedSegmentName n("ql_skip");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1024, .max_message = 500});
  // Move head and tail to offset 992 (two records of 8 + 488 bytes).
  q.put(payload(488, 1));
  q.put(payload(488, 2));
  EXPECT_TRUE(is_payload(q.get_nowait(), 488, 1));
  EXPECT_TRUE(is_payload(q.get_nowait(), 488, 2));
  in_child("wrapping loan, abandoned", [&] {
    ByteLoan loan = q.loan(100);  // 32 bytes left before the end: it goes to offset 0
    std::memset(loan.data(), 'Z', 100);
    loan.abandon();
  });
  q.put("hi");  // fits before the end
  in_child("wrapping loan, published", [&] {
    ByteLoan loan = q.loan(100);  // 16 bytes left: offset 0 again
    fill(loan.data(), 100, 3);
    loan.publish(50);
  });
  EXPECT_EQ(q.qsize(), 2u);
  in_child("viewer", [&] {
    ByteView hi = q.get_view_nowait();
    EXPECT_EQ(hi.bytes(), "hi");
    hi.release();
    ByteView wrapped = q.get_view_nowait();
    EXPECT_EQ(wrapped.size(), 50u);
    EXPECT_TRUE(is_payload(wrapped.bytes(), 50, 3));
  });
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_EQ(q.bytes_used(), 0u);
  q.put("after");
  EXPECT_EQ(q.get_nowait(), "after");
}

// ================================================================ Queue<T>

// A small ring (about 50 frames) makes the producer wait for room in loan()
// while the consumer alternates views and gets.
TEST(QueueLoan, ATypedLoanIsWrittenThroughItsPointerAndATypedViewReadsItMixedWithPutAndGet) {
  ScopedSegmentName n("ql_typed");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Frame>("q", {.capacity_bytes = 2048});
  constexpr std::uint32_t kItems = 3000;
  Child producer([&] {
    for (std::uint32_t i = 0; i < kItems; ++i) {
      if (i % 3 == 0) {
        q.put(make_frame(1, i));
        continue;
      }
      ipckit::Loan<Frame> loan = q.loan();
      EXPECT_EQ(loan.size(), sizeof(Frame));
      loan->producer = 1;
      loan->seq = i;
      (*loan).check = stamp_of(1, i);
      loan->value = i * 0.5;
      std::snprintf(loan.get()->tag, sizeof loan->tag, "f%u", i);
      loan.publish();
      EXPECT_FALSE(static_cast<bool>(loan));
    }
  });
  for (std::uint32_t i = 0; i < kItems; ++i) {
    Frame f;
    if (i % 2 == 0) {
      f = q.get(10s);
    } else {
      ipckit::View<Frame> v = q.get_view(10s);
      EXPECT_EQ(v.size(), sizeof(Frame));
      EXPECT_EQ(v->seq, (*v).seq);
      f = *v.get();
    }
    ASSERT_TRUE(intact(f)) << "item " << i;
    ASSERT_EQ(f.seq, i);
  }
  EXPECT_EQ(producer.wait_exit(), 0);
  EXPECT_TRUE(q.empty());
}

// A Queue<T> record of the wrong size can be made only by publishing a typed
// loan in part (through its ByteLoan base): a view of it is DecodeError, it
// is dropped, and the queue goes on. On a JoinableQueue its task counts done.
TEST(QueueLoan, ATypedViewOfARecordOfTheWrongSizeIsDecodeErrorAndTheQueueGoesOn) {
  ScopedSegmentName n("ql_short");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.queue<Frame>("q");
  auto jq = seg.joinable_queue<Frame>("jq");
  in_child("producer of short records", [&] {
    for (ipckit::Queue<Frame>* any : {&q, static_cast<ipckit::Queue<Frame>*>(&jq)}) {
      ipckit::Loan<Frame> shorter = any->loan();
      *shorter = make_frame(0, 1);
      shorter.ByteLoan::publish(12);
      any->put(make_frame(0, 2));
      ipckit::Loan<Frame> again = any->loan();
      *again = make_frame(0, 3);
      static_cast<ByteLoan&>(again).publish(8);
      any->put(make_frame(0, 4));
    }
  });
  in_child("viewer", [&] {
    const std::string why = message_of<ipckit::DecodeError>([&] { (void)q.get_view(1s); });
    EXPECT_TRUE(contains(why, "12 bytes")) << why;
    EXPECT_EQ(q.qsize(), 3u) << "the record of the wrong size was not dropped";
    EXPECT_EQ(q.get_view_nowait()->seq, 2u);
    EXPECT_THROW((void)q.try_get_view(), ipckit::DecodeError);  // try_ forms report it too
    EXPECT_EQ(q.try_get_view().value()->seq, 4u);
    EXPECT_FALSE(q.try_get_view().has_value());

    EXPECT_THROW((void)jq.get_view(1s), ipckit::DecodeError);
    {
      ipckit::View<Frame> v = jq.get_view(1s);
      EXPECT_EQ(v->seq, 2u);
    }
    jq.task_done();
    EXPECT_THROW((void)jq.get(1s), ipckit::DecodeError);  // a plain get agrees
    EXPECT_EQ(jq.get(1s).seq, 4u);
    jq.task_done();
    EXPECT_TRUE(jq.join(5s)) << jq.unfinished_tasks() << " unfinished: a dropped record's task was not counted done";
  });
}

// ================================================================ forms

TEST(QueueLoanForms, OnAFullQueueEveryLoanFormIsFullOnTimeAndWritesNothing) {
  ScopedSegmentName n("qlf_full");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096, .max_items = 2});
  auto tq = seg.queue<Frame>("tq", {.capacity_bytes = 4096, .max_items = 2});
  q.put("a");
  q.put("b");
  tq.put(make_frame(0, 0));
  tq.put(make_frame(0, 1));
  expect_bounded("loan(n, 200ms)", 200ms, [&] { EXPECT_THROW((void)q.loan(10, 200ms), ipckit::Full); });
  expect_bounded("loan_until(n, system_clock + 200ms)", 200ms,
                 [&] { EXPECT_THROW((void)q.loan_until(10, std::chrono::system_clock::now() + 200ms), ipckit::Full); });
  expect_bounded("loan_nowait(n)", 0ms, [&] { EXPECT_THROW((void)q.loan_nowait(10), ipckit::Full); });
  expect_bounded("try_loan(n)", 0ms, [&] { EXPECT_FALSE(q.try_loan(10).has_value()); });
  expect_bounded("loan(n, -1s)", 0ms, [&] { EXPECT_THROW((void)q.loan(10, -1s), ipckit::Full); });
  expect_bounded("typed loan(200ms)", 200ms, [&] { EXPECT_THROW((void)tq.loan(200ms), ipckit::Full); });
  expect_bounded("typed loan_until(steady + 200ms)", 200ms,
                 [&] { EXPECT_THROW((void)tq.loan_until(Clock::now() + 200ms), ipckit::Full); });
  expect_bounded("typed loan_nowait()", 0ms, [&] { EXPECT_THROW((void)tq.loan_nowait(), ipckit::Full); });
  expect_bounded("typed try_loan()", 0ms, [&] { EXPECT_FALSE(tq.try_loan().has_value()); });
  const std::string why = message_of<ipckit::Full>([&] { (void)q.loan_nowait(10); });
  EXPECT_TRUE(contains(why, "full")) << why;
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(tq.qsize(), 2u);

  // An untimed loan waits for room, made by a get in another process.
  Signal got;
  Child consumer([&] {
    EXPECT_TRUE(got.wait(10s));
    // Once the parent sleeps in loan(), waiting for room.
    EXPECT_TRUE(eventually([] { return all_threads_sleep_in_futex(::getppid()); }));
    EXPECT_EQ(q.get(1s), "a");
  });
  got.post();
  ByteLoan loan = q.loan(1);
  loan.data()[0] = 'c';
  loan.publish();
  EXPECT_EQ(consumer.wait_exit(), 0);
  EXPECT_EQ(q.get_nowait(), "b");
  EXPECT_EQ(q.get_nowait(), "c");
}

TEST(QueueLoanForms, OnAnEmptyQueueEveryViewFormIsEmptyOnTime) {
  ScopedSegmentName n("qlf_empty");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q");
  auto tq = seg.queue<Frame>("tq");
  expect_bounded("get_view(200ms)", 200ms, [&] { EXPECT_THROW((void)q.get_view(200ms), ipckit::Empty); });
  expect_bounded("get_view_until(system_clock + 200ms)", 200ms, [&] {
    EXPECT_THROW((void)q.get_view_until(std::chrono::system_clock::now() + 200ms), ipckit::Empty);
  });
  expect_bounded("get_view_nowait()", 0ms, [&] { EXPECT_THROW((void)q.get_view_nowait(), ipckit::Empty); });
  expect_bounded("try_get_view()", 0ms, [&] { EXPECT_FALSE(q.try_get_view().has_value()); });
  expect_bounded("typed get_view(200ms)", 200ms, [&] { EXPECT_THROW((void)tq.get_view(200ms), ipckit::Empty); });
  expect_bounded("typed get_view_nowait()", 0ms, [&] { EXPECT_THROW((void)tq.get_view_nowait(), ipckit::Empty); });
  expect_bounded("typed try_get_view()", 0ms, [&] { EXPECT_FALSE(tq.try_get_view().has_value()); });

  // An untimed view waits for an item, put by another process.
  Child producer([&] {
    ByteLoan loan = q.loan(5, 5s);
    std::memcpy(loan.data(), "later", 5);
    loan.publish();
  });
  ByteView v = q.get_view();
  EXPECT_EQ(v.bytes(), "later");
  v.release();
  EXPECT_EQ(producer.wait_exit(), 0);
}

TEST(QueueLoanForms, AfterCloseLoansAreClosedAndViewsDrainThenAreClosed) {
  ScopedSegmentName n("qlf_closed");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096, .max_items = 3});
  auto tq = seg.queue<Frame>("tq");
  q.put("one");
  q.put("two");
  q.put("three");
  // A producer waiting for room in loan() is woken by close() with Closed.
  Child waiting([&] { EXPECT_THROW((void)q.loan(10, 20s), ipckit::Closed); });
  ASSERT_TRUE(asleep(waiting));
  q.close();
  EXPECT_EQ(waiting.wait_exit(), 0);
  tq.put(make_frame(0, 7));
  tq.close();
  EXPECT_THROW((void)q.loan(1), ipckit::Closed);
  EXPECT_THROW((void)q.loan(1, 100ms), ipckit::Closed);
  EXPECT_THROW((void)q.loan_until(1, Clock::now() + 100ms), ipckit::Closed);
  EXPECT_THROW((void)q.loan_nowait(1), ipckit::Closed);
  EXPECT_FALSE(q.try_loan(1).has_value());
  EXPECT_THROW((void)tq.loan(), ipckit::Closed);
  EXPECT_FALSE(tq.try_loan().has_value());
  in_child("draining viewer", [&] {
    EXPECT_EQ(q.get_view().bytes(), "one");
    EXPECT_EQ(q.get_view(1s).bytes(), "two");
    EXPECT_EQ(q.try_get_view().value().bytes(), "three");
    EXPECT_THROW((void)q.get_view(), ipckit::Closed);
    EXPECT_THROW((void)q.get_view(100ms), ipckit::Closed);
    EXPECT_THROW((void)q.get_view_until(Clock::now() + 100ms), ipckit::Closed);
    EXPECT_THROW((void)q.get_view_nowait(), ipckit::Closed);
    EXPECT_FALSE(q.try_get_view().has_value());
    EXPECT_EQ(tq.get_view()->seq, 7u);
    EXPECT_THROW((void)tq.get_view(), ipckit::Closed);
  });
}

// A loan taken before close() is still published (like a put past its
// closed check): consumers get it, then Closed.
TEST(QueueLoanForms, ALoanTakenBeforeCloseIsStillPublishedAndDrained) {
  ScopedSegmentName n("qlf_close_held");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q");
  ByteLoan loan = q.loan(4);
  std::memcpy(loan.data(), "last", 4);
  in_child("closer", [&] { q.close(); });
  loan.publish();
  in_child("consumer", [&] {
    EXPECT_EQ(q.get(1s), "last");
    EXPECT_THROW((void)q.get_view(1s), ipckit::Closed);
  });
}

TEST(QueueLoanForms, ALoanLargerThanMaxMessageIsMessageTooLargeFromEveryFormAndWritesNothing) {
  ScopedSegmentName n("qlf_large");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096, .max_message = 100});
  q.put("x");
  EXPECT_NO_THROW(q.loan(100).abandon());
  const std::string why = message_of<ipckit::MessageTooLarge>([&] { (void)q.loan(101); });
  EXPECT_TRUE(contains(why, "101")) << why;
  EXPECT_THROW((void)q.loan(101, 1s), ipckit::MessageTooLarge);
  EXPECT_THROW((void)q.loan_until(101, Clock::now() + 1s), ipckit::MessageTooLarge);
  EXPECT_THROW((void)q.loan_nowait(1 << 20), ipckit::MessageTooLarge);
  EXPECT_THROW((void)q.try_loan(SIZE_MAX), ipckit::MessageTooLarge);
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.bytes_used(), 16u);
  in_child("producer after the refusals", [&] { q.loan(3).publish(); });
  EXPECT_EQ(q.get_nowait(), "x");
  EXPECT_EQ(q.get_nowait().size(), 3u);
}

// ================================================================ misuse

TEST(QueueLoanMisuse, PublishOrReleaseOfAnEmptyLoanOrViewIsInvalidArgument) {
  ScopedSegmentName n("qlm_empty");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q");
  auto tq = seg.queue<Frame>("tq");
  ByteLoan none;
  EXPECT_FALSE(static_cast<bool>(none));
  EXPECT_THROW(none.publish(), ipckit::InvalidArgument);
  EXPECT_THROW(none.publish(0), ipckit::InvalidArgument);
  EXPECT_NO_THROW(none.abandon());
  ipckit::Loan<Frame> typed_none;
  EXPECT_THROW(typed_none.publish(), ipckit::InvalidArgument);

  ByteLoan loan = q.loan(3);
  std::memcpy(loan.data(), "abc", 3);
  ByteLoan moved = std::move(loan);
  EXPECT_THROW(loan.publish(), ipckit::InvalidArgument) << "publish() on a moved-from loan";
  moved.publish();
  const std::string why = message_of<ipckit::InvalidArgument>([&] { moved.publish(); });
  EXPECT_TRUE(contains(why, "publish()")) << why;
  EXPECT_TRUE(contains(why, "take a new one")) << why;
  ipckit::Loan<Frame> typed = tq.loan();
  *typed = make_frame(0, 1);
  typed.publish();
  EXPECT_THROW(typed.publish(), ipckit::InvalidArgument) << "a typed loan published twice";
  EXPECT_EQ(q.qsize(), 1u) << "a loan published twice queued two items";
  EXPECT_EQ(tq.qsize(), 1u);

  ByteView empty_view;
  EXPECT_THROW(empty_view.release(), ipckit::InvalidArgument);
  EXPECT_NO_THROW(empty_view.keep());
  ByteView v = q.get_view_nowait();
  v.release();
  EXPECT_THROW(v.release(), ipckit::InvalidArgument) << "release() twice";
  ipckit::View<Frame> tv = tq.get_view_nowait();
  ipckit::View<Frame> tv2 = std::move(tv);
  EXPECT_THROW(tv.release(), ipckit::InvalidArgument) << "release() on a moved-from view";
  tv2.release();
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(tq.empty());
}

TEST(QueueLoanMisuse, PublishPastTheLoansSizeIsInvalidArgumentAndTheLoanStaysUsable) {
  ScopedSegmentName n("qlm_past");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q");
  ByteLoan loan = q.loan(8);
  std::memcpy(loan.data(), "12345678", 8);
  const std::string why = message_of<ipckit::InvalidArgument>([&] { loan.publish(9); });
  EXPECT_TRUE(contains(why, "publish(9)")) << why;
  EXPECT_TRUE(static_cast<bool>(loan)) << "the refused publish emptied the loan";
  EXPECT_TRUE(q.empty()) << "the refused publish made something visible";
  EXPECT_THROW(loan.publish(SIZE_MAX), ipckit::InvalidArgument);
  loan.publish(8);
  EXPECT_EQ(q.get_nowait(), "12345678");
}

// A loan or view belongs to the thread that took it: publish() and
// release() from another thread (or a forked process) are NotOwner, and
// leave it usable by its owner; a copy destroyed there does not let go.
TEST(QueueLoanMisuse, PublishOrReleaseFromAnotherThreadOrProcessIsNotOwner) {
  ScopedSegmentName n("qlm_owner");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q");
  ByteLoan loan = q.loan(5);
  std::memcpy(loan.data(), "owned", 5);
  std::string why;
  std::thread([&] { why = message_of<ipckit::NotOwner>([&] { loan.publish(); }); }).join();
  EXPECT_TRUE(contains(why, "thread")) << why;
  std::thread([&] { EXPECT_THROW(loan.publish(2), ipckit::NotOwner); }).join();
  in_child("forked copy of the loan", [&] {
    EXPECT_THROW(loan.publish(), ipckit::NotOwner);
    ByteLoan gone = std::move(loan);  // destroyed here: only forgotten
  });
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(static_cast<bool>(loan));
  in_child("another producer, while the loan is held",
           [&] { EXPECT_THROW(q.put_nowait("no"), ipckit::Full) << "the forked copy's destructor let the loan go"; });
  loan.publish();
  EXPECT_EQ(q.qsize(), 1u);

  ByteView view = q.get_view_nowait();
  std::thread([&] { EXPECT_THROW(view.release(), ipckit::NotOwner); }).join();
  in_child("forked copy of the view", [&] {
    EXPECT_THROW(view.release(), ipckit::NotOwner);
    ByteView gone = std::move(view);
  });
  EXPECT_EQ(q.qsize(), 1u) << "a view was released by a thread or process that does not hold it";
  EXPECT_EQ(view.bytes(), "owned");
  view.release();
  EXPECT_TRUE(q.empty());
}

// The thread holding a loan (view) may not put (get) on the same queue: it
// would wait for itself. DeadlockDetected, in every form, never a hang. The
// other side is free: a loan holder may get, a view holder may put.
TEST(QueueLoanMisuse, PutOrLoanWhileHoldingALoanAndGetOrViewWhileHoldingAViewAreDeadlockDetected) {
  ScopedSegmentName n("qlm_deadlock");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q");
  auto tq = seg.queue<Frame>("tq");
  q.put("queued");
  in_child("loan holder", [&] {
    ByteLoan loan = q.loan(4);
    std::memcpy(loan.data(), "mine", 4);
    const std::string why = message_of<ipckit::DeadlockDetected>([&] { q.put("x"); });
    EXPECT_TRUE(contains(why, "loan")) << why;
    EXPECT_THROW(q.put("x", 1s), ipckit::DeadlockDetected);
    EXPECT_THROW(q.put_nowait("x"), ipckit::DeadlockDetected);
    EXPECT_THROW((void)q.try_put("x"), ipckit::DeadlockDetected);
    EXPECT_THROW(q.put_many(std::vector<std::string_view>{"x"}), ipckit::DeadlockDetected);
    EXPECT_THROW((void)q.loan(1), ipckit::DeadlockDetected);
    EXPECT_THROW((void)q.try_loan(1), ipckit::DeadlockDetected);
    EXPECT_EQ(q.get(1s), "queued") << "the consumers' side is free to the loan holder";
    EXPECT_TRUE(static_cast<bool>(loan));
    loan.publish();
    q.put("after");  // let go: puts work again
    ipckit::Loan<Frame> typed = tq.loan();
    EXPECT_THROW(tq.put(make_frame(0, 0)), ipckit::DeadlockDetected);
    typed->seq = 5;
    typed.publish();
  });
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(tq.qsize(), 1u);
  in_child("view holder", [&] {
    ByteView view = q.get_view(1s);
    EXPECT_EQ(view.bytes(), "mine");
    const std::string why = message_of<ipckit::DeadlockDetected>([&] { (void)q.get(); });
    EXPECT_TRUE(contains(why, "view")) << why;
    EXPECT_THROW((void)q.get(1s), ipckit::DeadlockDetected);
    EXPECT_THROW((void)q.get_nowait(), ipckit::DeadlockDetected);
    EXPECT_THROW((void)q.try_get(), ipckit::DeadlockDetected);
    EXPECT_THROW((void)q.get_many(2), ipckit::DeadlockDetected);
    EXPECT_THROW((void)q.get_view(), ipckit::DeadlockDetected);
    EXPECT_THROW((void)q.try_get_view(), ipckit::DeadlockDetected);
    q.put("put by the view holder");  // the producers' side is free
    EXPECT_EQ(view.bytes(), "mine");
    view.release();
    EXPECT_EQ(q.get(1s), "after");
    ipckit::View<Frame> tv = tq.get_view(1s);
    EXPECT_THROW((void)tq.get(), ipckit::DeadlockDetected);
    EXPECT_EQ(tv->seq, 5u);
  });
  EXPECT_EQ(q.get_nowait(), "put by the view holder");
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(tq.empty());
}

// ================================================================ kills

// A producer SIGKILLed holding a loan it has half written, at several places
// in the ring (some loans wrap its end, leaving a skip marker behind): the
// queue shows nothing of it, the next puts (blocking, non-blocking, loans)
// take the lock over, and every item put afterwards arrives once, in order.
TEST(QueueLoanKill, AProducerKilledHoldingAHalfWrittenLoanLeavesNothingVisibleAndTheQueueGoesOn) {
  ScopedSegmentName n("qlk_loan");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1024, .max_message = 400});
  const std::size_t sizes[] = {100, 390, 300, 50, 250, 399, 8, 200};
  std::uint32_t seed = 0;
  std::deque<std::string> expected;
  for (std::size_t round = 0; round < std::size(sizes); ++round) {
    // Items queued before the kill, which must survive it: they also move
    // where the victim's loan lies.
    for (std::size_t i = 0; i < round % 3; ++i) {
      expected.push_back(payload(40 + 30 * i, seed++));
      q.put(expected.back());
    }
    Signal half_written;
    Child victim([&] {
      ByteLoan loan = q.loan(sizes[round]);
      std::memset(loan.data(), 'Z', loan.size() / 2);
      half_written.post();
      for (;;) ::pause();
    });
    ASSERT_TRUE(half_written.wait()) << "round " << round;
    EXPECT_EQ(q.qsize(), expected.size()) << "a loan in flight is visible";
    victim.kill(SIGKILL);
    EXPECT_EQ(victim.wait_exit(), -SIGKILL);
    EXPECT_EQ(q.qsize(), expected.size()) << "round " << round << ": the dead loan became visible";

    // The next producer takes the dead holder's lock over.
    expected.push_back(payload(sizes[round] / 3, seed++));
    switch (round % 3) {
      case 0:
        q.put(expected.back(), 5s);
        break;
      case 1:
        q.put_nowait(expected.back());
        break;
      default:
        in_child("a loan after the kill", [&] {
          ByteLoan loan = q.loan_nowait(expected.back().size());
          std::memcpy(loan.data(), expected.back().data(), loan.size());
          loan.publish();
        });
    }
    expected.push_back(payload(60, seed++));
    in_child("a put after the kill", [&] { q.put(expected.back(), 5s); });
    // Drain half (gets and views), keep the rest for the next round.
    for (std::size_t i = 0; i < expected.size() / 2 + 1 && !expected.empty(); ++i) {
      const std::string got = i % 2 == 0 ? q.get(5s) : std::string(q.get_view(5s).bytes());
      ASSERT_EQ(got, expected.front()) << "round " << round;
      ASSERT_EQ(got.find("ZZZZ"), std::string::npos);
      expected.pop_front();
    }
  }
  while (!expected.empty()) {
    EXPECT_EQ(q.get(5s), expected.front());
    expected.pop_front();
  }
  EXPECT_THROW((void)q.get_nowait(), ipckit::Empty) << "something of a dead loan arrived";
  EXPECT_EQ(q.bytes_used(), 0u);
}

// A consumer SIGKILLed holding a view: the item is delivered again, first,
// to the next get (blocking, non-blocking, or a view), which takes the
// dead holder's lock over.
TEST(QueueLoanKill, AConsumerKilledHoldingAViewLeavesTheItemQueuedForTheNextGet) {
  ScopedSegmentName n("qlk_view");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1024, .max_message = 400});
  for (std::uint32_t round = 0; round < 6; ++round) {
    const std::string first = payload(100 + 50 * round, 2 * round), second = payload(30, 2 * round + 1);
    q.put(first);
    q.put(second);
    Signal viewing;
    Child victim([&] {
      ByteView v = q.get_view();
      if (v.bytes() == first) viewing.post();
      for (;;) ::pause();
    });
    ASSERT_TRUE(viewing.wait()) << "round " << round;
    victim.kill(SIGKILL);
    EXPECT_EQ(victim.wait_exit(), -SIGKILL);
    EXPECT_EQ(q.qsize(), 2u) << "round " << round << ": the dead view consumed its item";
    in_child("the next consumer", [&] {
      switch (round % 3) {
        case 0:
          EXPECT_EQ(q.get(5s), first) << "the viewed item was not delivered again";
          break;
        case 1:
          EXPECT_EQ(q.get_nowait(), first) << "the viewed item was not delivered again";
          break;
        default:
          EXPECT_EQ(q.get_view(5s).bytes(), first) << "the viewed item was not delivered again";
      }
      EXPECT_EQ(q.get_view_nowait().bytes(), second);
    });
    EXPECT_TRUE(q.empty());
  }
  EXPECT_EQ(q.bytes_used(), 0u);
}

// ================================================================ stopped holders

// A producer SIGSTOPped holding a loan holds the producers' side: other
// processes' timed and non-blocking puts and loans fail with Full on time,
// naming it (the queue has room), while gets go on. Continued, it publishes
// and everything continues.
TEST(QueueLoanStopped, TimedAndNonBlockingPutsAndLoansAreFullOnTimeBehindAStoppedLoanHolderNamingIt) {
  ScopedSegmentName n("qls_loan");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1 << 14});
  auto* s = raw_state<d::QueueState>(seg, "q");
  q.put("before");
  Signal taken, go;
  Child holder([&] {
    ByteLoan loan = q.loan(6);
    std::memcpy(loan.data(), "loaned", 6);
    taken.post();
    EXPECT_TRUE(go.wait(30s));
    loan.publish();
  });
  ASSERT_TRUE(taken.wait());
  holder.kill(SIGSTOP);
  ASSERT_TRUE(stopped(holder));
  ASSERT_EQ(holder_tid(s->put.lock), static_cast<std::uint32_t>(holder.pid()));
  const auto rescue = [&] {
    go.post();
    holder.kill(SIGCONT);
  };
  const std::vector<std::string_view> two{"m1", "m2"};
  expect_bounded("put(x, 100ms)", 100ms, rescue, [&] { EXPECT_THROW(q.put("x", 100ms), ipckit::Full); });
  expect_bounded("put_until(x, t)", 100ms, rescue,
                 [&] { EXPECT_THROW(q.put_until("x", Clock::now() + 100ms), ipckit::Full); });
  expect_bounded("put_nowait(x)", 0ms, rescue, [&] { EXPECT_THROW(q.put_nowait("x"), ipckit::Full); });
  expect_bounded("try_put(x)", 0ms, rescue, [&] { EXPECT_FALSE(q.try_put("x")); });
  expect_bounded("put_many(2, 100ms)", 100ms, rescue,
                 [&] { EXPECT_THROW(q.put_many(std::span<const std::string_view>(two), 100ms), ipckit::Full); });
  expect_bounded("loan(n, 100ms)", 100ms, rescue, [&] { EXPECT_THROW((void)q.loan(1, 100ms), ipckit::Full); });
  expect_bounded("loan_nowait(n)", 0ms, rescue, [&] { EXPECT_THROW((void)q.loan_nowait(1), ipckit::Full); });
  expect_bounded("try_loan(n)", 0ms, rescue, [&] { EXPECT_FALSE(q.try_loan(1).has_value()); });
  const std::string why = message_of<ipckit::Full>([&] { q.put_nowait("x"); });
  EXPECT_TRUE(contains(why, "pid " + std::to_string(holder.pid()))) << why;
  EXPECT_TRUE(contains(why, "stopped")) << why;
  EXPECT_EQ(q.get_nowait(), "before") << "the consumers' side is not held by a loan";
  EXPECT_TRUE(q.empty()) << "a put that threw Full put something";

  holder.kill(SIGCONT);
  go.post();
  EXPECT_EQ(holder.wait_exit(), 0);
  EXPECT_EQ(q.get(1s), "loaned");
  q.put("after", 1s);
  EXPECT_EQ(q.get_nowait(), "after");
}

// A consumer SIGSTOPped holding a view: other processes' timed and
// non-blocking gets and views are Empty on time, naming it (items are
// queued), while puts go on. Continued, it releases and the rest arrive.
TEST(QueueLoanStopped, TimedAndNonBlockingGetsAndViewsAreEmptyOnTimeBehindAStoppedViewHolderNamingIt) {
  ScopedSegmentName n("qls_view");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 1 << 14});
  auto* s = raw_state<d::QueueState>(seg, "q");
  for (const char* m : {"one", "two", "three"}) q.put(m);
  Signal viewing, go;
  Child holder([&] {
    ByteView v = q.get_view();
    EXPECT_EQ(v.bytes(), "one");
    viewing.post();
    EXPECT_TRUE(go.wait(30s));
    v.release();
  });
  ASSERT_TRUE(viewing.wait());
  holder.kill(SIGSTOP);
  ASSERT_TRUE(stopped(holder));
  ASSERT_EQ(holder_tid(s->get.lock), static_cast<std::uint32_t>(holder.pid()));
  const auto rescue = [&] {
    go.post();
    holder.kill(SIGCONT);
  };
  expect_bounded("get(100ms)", 100ms, rescue, [&] { EXPECT_THROW((void)q.get(100ms), ipckit::Empty); });
  expect_bounded("get_until(t)", 100ms, rescue,
                 [&] { EXPECT_THROW((void)q.get_until(Clock::now() + 100ms), ipckit::Empty); });
  expect_bounded("get_nowait()", 0ms, rescue, [&] { EXPECT_THROW((void)q.get_nowait(), ipckit::Empty); });
  expect_bounded("try_get()", 0ms, rescue, [&] { EXPECT_FALSE(q.try_get().has_value()); });
  expect_bounded("get_many(2, 100ms)", 100ms, rescue, [&] { EXPECT_THROW((void)q.get_many(2, 100ms), ipckit::Empty); });
  expect_bounded("get_view(100ms)", 100ms, rescue, [&] { EXPECT_THROW((void)q.get_view(100ms), ipckit::Empty); });
  expect_bounded("get_view_nowait()", 0ms, rescue, [&] { EXPECT_THROW((void)q.get_view_nowait(), ipckit::Empty); });
  expect_bounded("try_get_view()", 0ms, rescue, [&] { EXPECT_FALSE(q.try_get_view().has_value()); });
  const std::string why = message_of<ipckit::Empty>([&] { (void)q.get_nowait(); });
  EXPECT_TRUE(contains(why, "pid " + std::to_string(holder.pid()))) << why;
  EXPECT_TRUE(contains(why, "stopped")) << why;
  q.put("four", 1s);  // the producers' side is not held by a view
  EXPECT_EQ(q.qsize(), 4u);

  holder.kill(SIGCONT);
  go.post();
  EXPECT_EQ(holder.wait_exit(), 0);
  for (const char* m : {"two", "three", "four"}) EXPECT_EQ(q.get(1s), m);
  EXPECT_TRUE(q.empty());
}

// ================================================================ many processes

// Two producers writing with loans (one blocking, one timed and retrying) and
// three consumers (views blocking with an occasional keep(), views timed,
// plain gets) on one small ring: every message arrives once, intact, and
// each consumer sees each producer's messages in order.
TEST(QueueLoanMpmc, TwoLoaningProducersAndViewingAndGettingConsumersLoseAndDoubleNothing) {
  ScopedSegmentName n("qlm_mpmc");
  auto seg = Segment::create(n.name, 8 << 20);
  auto q = seg.byte_queue("q", {.capacity_bytes = 4096, .max_message = 400});
  constexpr std::uint32_t kProducers = 2, kItems = 50000;
  constexpr int kConsumers = 3;
  auto seen = seg.array<std::uint8_t>("seen", std::size_t{kProducers} * kItems);
  auto faults = seg.array<std::int64_t>("faults", 3);  // garbage, out of order, twice
  std::vector<Child> consumers;
  consumers.reserve(kConsumers);
  for (int c = 0; c < kConsumers; ++c)
    consumers.emplace_back([&, c] {
      std::vector<std::int64_t> last(kProducers, -1);
      auto enter = [&](std::string_view m) {
        const std::optional<Header> h = read_message(m, kProducers);
        if (!h || h->seq >= kItems) {
          at(faults[0]).fetch_add(1);
          return;
        }
        if (static_cast<std::int64_t>(h->seq) <= last[h->producer]) at(faults[1]).fetch_add(1);
        last[h->producer] = h->seq;
        if (at(seen[std::size_t{h->producer} * kItems + h->seq]).fetch_add(1) != 0) at(faults[2]).fetch_add(1);
      };
      std::uint64_t n_ops = 0;
      for (;;) {
        try {
          if (c == 2) {
            enter(q.get());
            continue;
          }
          ByteView v = c == 0 ? q.get_view() : q.get_view(20ms);
          if (c == 0 && ++n_ops % 17 == 0) {
            v.keep();  // first in line again: whoever comes next takes it
            continue;
          }
          enter(v.bytes());
        } catch (const ipckit::Empty&) {
        } catch (const ipckit::Closed&) {
          return;
        }
      }
    });
  std::vector<Child> producers;
  producers.reserve(kProducers);
  for (std::uint32_t p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      for (std::uint32_t i = 0; i < kItems; ++i) {
        const std::size_t size = message_size(i);
        std::optional<ByteLoan> loan;
        while (!loan) {
          try {
            loan = p == 0 ? q.loan(size) : q.loan(size, 20ms);
          } catch (const ipckit::Full&) {
          }
        }
        write_message(loan->data(), p, i);
        loan->publish();
      }
    });
  for (auto& p : producers) EXPECT_EQ(p.wait_exit(50s), 0);
  q.close();
  for (auto& c : consumers) EXPECT_EQ(c.wait_exit(20s), 0);
  EXPECT_EQ(faults[0], 0) << "garbage messages";
  EXPECT_EQ(faults[1], 0) << "a consumer saw a producer's messages out of order";
  EXPECT_EQ(faults[2], 0) << "messages delivered twice";
  std::size_t lost = 0;
  for (const auto s : seen) lost += s == 0;
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(q.bytes_used(), 0u);
}

// The kill harness of the put/get crash tests (tests/kill_harness.hpp) with
// loans and views: producers write each item in a loan and consumers read it
// in a view, SIGKILLed at random instants (often while holding one). A
// Stamped item travels as its fields then its pad.
namespace {

struct StampHead {
  std::uint32_t producer, seq;
  std::uint64_t check;
};

void loan_stamped(ByteQueue& q, const Stamped& s, std::optional<std::chrono::milliseconds> timeout) {
  const std::size_t size = sizeof(StampHead) + s.pad.size();
  ByteLoan loan = timeout ? q.loan(size, *timeout) : q.loan(size);
  const StampHead head{s.producer, s.seq, s.check};
  std::memcpy(loan.data(), &head, sizeof head);
  std::memcpy(loan.data() + sizeof head, s.pad.data(), s.pad.size());
  loan.publish();
}

// A copy of the viewed item, made before the view is released (garbage, not
// intact, if it is not one loan_stamped wrote).
Stamped view_stamped(ByteQueue& q, std::optional<std::chrono::milliseconds> timeout) {
  ByteView v = timeout ? q.get_view(*timeout) : q.get_view();
  Stamped s;
  s.producer = ~0u;
  if (v.size() < sizeof(StampHead)) return s;
  StampHead head{};
  std::memcpy(&head, v.data(), sizeof head);
  s = {head.producer, head.seq, std::string(v.bytes().substr(sizeof head)), head.check};
  return s;
}

void run_loan_crash(const std::string& name, int kills, const QueueOptions& options) {
  auto seg = Segment::create(name, 24 << 20);
  auto q = seg.byte_queue("q", options);
  KillRun run(seg, {.seed = 20240901u, .kills = kills, .max_seq = 1u << 22, .max_ops_before_kill = 64});
  auto put = [&](const Stamped& s, auto... timeout) {
    loan_stamped(q, s, std::optional<std::chrono::milliseconds>(timeout...));
  };
  // The item is entered after the view is released (as after a get's
  // return): a consumer killed holding the view leaves it queued.
  auto get_and_take = [&](std::vector<std::int64_t>& last, auto... timeout) {
    run.record(view_stamped(q, std::optional<std::chrono::milliseconds>(timeout...)), last);
  };
  run.kill_at_random(put, get_and_take);
  run.kill_everyone_for_good(200ms);
  if (!run.drain(get_and_take)) return;
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_EQ(q.bytes_used(), 0u);
  run.check_books();
  EXPECT_TRUE(run.returns_in_a_new_process([&] { loan_stamped(q, run.item(0, run.max_seq() - 1), 5000ms); }))
      << "a loan after the kills failed";
  const Stamped last_one = view_stamped(q, 5000ms);
  EXPECT_TRUE(run.intact(last_one));
  EXPECT_EQ(last_one.seq, run.max_seq() - 1);
  run.record_properties();
}

}  // namespace

TEST(QueueLoanCrash, ProducersAndConsumersKilledAtRandomHoldingLoansAndViewsLoseAndDoubleNothing) {
  ScopedSegmentName n("qlc_crash");
  run_loan_crash(n.name, 400, {.capacity_bytes = 1 << 13});
}

TEST(QueueLoanCrash, KillsOnAnAlmostAlwaysFullOrEmptyRingLoseAndDoubleNothing) {
  ScopedSegmentName n("qlc_tiny");
  run_loan_crash(n.name, 200, {.capacity_bytes = 512, .max_message = 128});
}

// ================================================================ JoinableQueue

TEST(QueueLoanJoinable, ViewsReleasedThenTaskDoneLetJoinReturn) {
  ScopedSegmentName n("qlj_done");
  auto seg = Segment::create(n.name, 4 << 20);
  auto jq = seg.joinable_queue<Frame>("jq");
  for (std::uint32_t i = 0; i < 4; ++i) {
    ipckit::Loan<Frame> loan = jq.loan(1s);
    *loan = make_frame(0, i);
    loan.publish();
  }
  EXPECT_EQ(jq.unfinished_tasks(), 4u);
  EXPECT_FALSE(jq.join(100ms));
  in_child("viewing consumer", [&] {
    for (std::uint32_t i = 0; i < 4; ++i) {
      ipckit::View<Frame> v = jq.get_view(1s);
      EXPECT_EQ(v->seq, i);
      EXPECT_TRUE(intact(*v));
      if (i % 2 == 0) v.release();  // else its destructor does
    }
    for (std::uint32_t i = 0; i < 4; ++i) jq.task_done();
  });
  EXPECT_TRUE(jq.join(10s)) << jq.unfinished_tasks() << " unfinished";
  EXPECT_EQ(jq.unfinished_tasks(), 0u);
  EXPECT_EQ(jq.abandoned_tasks(), 0u);
}

// A consumer killed holding a view got no task: the item is delivered again
// and join() returns once that delivery is marked done (not before).
TEST(QueueLoanJoinable, AConsumerKilledHoldingAViewLosesNoTaskAndJoinReturnsOnceItIsDone) {
  ScopedSegmentName n("qlj_kill");
  auto seg = Segment::create(n.name, 4 << 20);
  auto jq = seg.joinable_queue<Frame>("jq");
  for (std::uint32_t i = 0; i < 3; ++i) jq.put(make_frame(0, i));
  Signal viewing;
  Child victim([&] {
    ipckit::View<Frame> v = jq.get_view();
    if (v->seq == 0) viewing.post();
    for (;;) ::pause();
  });
  ASSERT_TRUE(viewing.wait());
  victim.kill(SIGKILL);
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  EXPECT_FALSE(jq.join(300ms)) << "join() returned with the viewed task not done";
  EXPECT_EQ(jq.unfinished_tasks(), 3u);
  EXPECT_EQ(jq.qsize(), 3u);
  in_child("the next consumer", [&] {
    for (std::uint32_t i = 0; i < 3; ++i) {
      {
        ipckit::View<Frame> v = jq.get_view(5s);
        EXPECT_EQ(v->seq, i) << "the viewed task was not delivered again first";
      }
      jq.task_done();
    }
  });
  EXPECT_TRUE(jq.join(10s)) << jq.unfinished_tasks() << " unfinished";
  EXPECT_EQ(jq.abandoned_tasks(), 0u);
  EXPECT_THROW(jq.task_done(), ipckit::InvalidArgument);
}

// A loan whose thread ends without publishing it (the loan object moved to
// another thread, whose destructor only forgets it) is like a dead
// process's: nothing visible, and the next put takes the lock over.
TEST(QueueLoanKill, ALoanWhoseThreadEndedUnpublishedLeavesNothingAndTheNextPutTakesOver) {
  ScopedSegmentName n("qlk_thread");
  auto seg = Segment::create(n.name, 4 << 20);
  auto q = seg.byte_queue("q");
  in_child("a process whose loaning thread ended", [&] {
    std::optional<ByteLoan> moved;
    std::thread([&] {
      ByteLoan loan = q.loan(4);
      std::memcpy(loan.data(), "lost", 4);
      moved.emplace(std::move(loan));
    }).join();
    EXPECT_THROW(moved->publish(), ipckit::NotOwner);
    moved.reset();  // only forgotten here
    EXPECT_TRUE(q.empty());
    q.put("next", 5s);
  });
  EXPECT_EQ(q.get_nowait(), "next");
  EXPECT_TRUE(q.empty());
}
