// test_pool_futures.cpp — Future::add_done_callback, ipckit::wait,
// as_completed and ProcessPool::map, with real worker processes.
//
// The workers talk back through a Board, a segment of the test's own that
// they inherit: a task reports "started" (its tag) in a queue and its pid in
// an array, counts itself, and, when its tag is marked held, waits for that
// tag's Event, so that the test releases held tasks one by one in the order
// it chooses. Every wait has a deadline and a held task gives up after
// kHoldLimit; the Fixture releases every tag before its pool is destroyed,
// so a failing test ends instead of hanging.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cereal/types/string.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ipckit/event.hpp"
#include "ipckit/futures.hpp"
#include "ipckit/queue.hpp"
#include "pool_test.hpp"

using ipckit::AnyFuture;
using ipckit::DoneAndNotDone;
using ipckit::ReturnWhen;
using Indices = std::vector<std::size_t>;

namespace {

constexpr auto kHoldLimit = 20s;
constexpr std::size_t kTags = 128;

// ---------------------------------------------------------------- the board

class Board;
Board* g_board = nullptr;  // inherited by the workers of a pool made after the board

class Board {
 public:
  Board()
      : seg_(Segment::create(name_.name, 4 << 20)),
        started_(seg_.queue<std::int32_t>("started")),
        held_(seg_.raw_array<std::uint32_t>("held", kTags)),
        fails_(seg_.raw_array<std::uint32_t>("fails", kTags)),
        pids_(seg_.raw_array<std::int32_t>("pids", kTags)),
        runs_(seg_.raw_array<std::uint32_t>("runs", 1)) {
    for (std::size_t t = 0; t < kTags; ++t) release_.push_back(seg_.event("release-" + std::to_string(t)));
    g_board = this;
  }
  ~Board() { g_board = nullptr; }
  Board(const Board&) = delete;
  Board& operator=(const Board&) = delete;

  void hold(std::initializer_list<int> tags) {
    for (int t : tags) at(held_[static_cast<std::size_t>(t)]).store(1);
  }
  void fail(int tag) { at(fails_[static_cast<std::size_t>(tag)]).store(1); }
  void release(int tag) { release_[static_cast<std::size_t>(tag)].set(); }
  void release_all() {
    for (auto& e : release_) e.set();
  }
  // The next task's "started" tag, or nullopt after `timeout`.
  std::optional<int> next_started(std::chrono::milliseconds timeout = 10s) {
    try {
      return started_.get(timeout);
    } catch (const ipckit::Empty&) {
      return std::nullopt;
    }
  }
  // Waits for the tasks of these tags to report (in any order).
  bool await_started(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      if (!next_started()) return false;
    return true;
  }
  pid_t pid_of(int tag) { return at(pids_[static_cast<std::size_t>(tag)]).load(); }
  std::uint32_t runs() { return at(runs_[0]).load(); }

  // In a worker: what gated() does.
  int run_gated(int tag) {
    const auto t = static_cast<std::size_t>(tag);
    at(runs_[0]).fetch_add(1);
    at(pids_[t]).store(::getpid());
    started_.put(tag);
    if (at(held_[t]).load() != 0 && !release_[t].wait(kHoldLimit)) return -1;
    if (at(fails_[t]).load() != 0) throw std::runtime_error("tag " + std::to_string(tag) + " fails");
    return tag;
  }

 private:
  ScopedSegmentName name_{"futures"};
  Segment seg_;
  ipckit::Queue<std::int32_t> started_;
  ipckit::RawArray<std::uint32_t> held_;
  ipckit::RawArray<std::uint32_t> fails_;
  ipckit::RawArray<std::int32_t> pids_;
  ipckit::RawArray<std::uint32_t> runs_;
  std::vector<ipckit::Event> release_;
};

// A pool whose workers see a board; every tag is released before the pool
// is destroyed (its destructor waits for every task).
struct Fixture {
  Board board;
  ProcessPool pool;
  explicit Fixture(PoolOptions options) : pool(std::move(options)) {}
  ~Fixture() { board.release_all(); }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  std::vector<Future<int>> submit_gated(std::initializer_list<int> tags);
  // Holds these tags, submits them and waits until every one runs (throws if one does not start).
  std::vector<Future<int>> run_held(std::initializer_list<int> tags);
};

// ---------------------------------------------------------------- tasks

// Reports its start; holds while its tag is held; throws if its tag fails; returns the tag.
int gated(int tag) { return g_board->run_gated(tag); }

int square(int x) { return x * x; }
long long square_ll(long long x) { return x * x; }
std::size_t length(const std::string& s) { return s.size(); }
std::string spell(int x) { return "#" + std::to_string(x); }
int fails_at_20(int x) {
  if (x == 20) throw std::runtime_error("input 20 is not welcome");
  return x + 1000;
}

struct Point {
  double x, y;
};
Point halve(Point p) { return {p.x / 2, p.y / 2}; }

std::vector<Future<int>> Fixture::submit_gated(std::initializer_list<int> tags) {
  std::vector<Future<int>> fs;
  for (int t : tags) fs.push_back(pool.submit(gated, t));
  return fs;
}

std::vector<Future<int>> Fixture::run_held(std::initializer_list<int> tags) {
  board.hold(tags);
  auto fs = submit_gated(tags);
  if (!board.await_started(tags.size())) throw std::runtime_error("a held task did not start within 10 s");
  return fs;
}

void expect_split(const DoneAndNotDone& r, const Indices& done, const Indices& not_done) {
  EXPECT_EQ(r.done, done);
  EXPECT_EQ(r.not_done, not_done);
}

// Some time for something that must not happen to show up (never needed for a test to pass).
void give_it_time() { std::this_thread::sleep_for(300ms); }

}  // namespace

// ---------------------------------------------------------------- add_done_callback

namespace {
struct CallLog {
  std::mutex m;
  std::vector<std::pair<int, int>> calls;  // (which callback, the value it saw)
  std::vector<std::thread::id> threads;
  std::size_t size() {
    std::lock_guard lock(m);
    return calls.size();
  }
};
}  // namespace

TEST(PoolCallbacks, AddedBeforeCompletionTheyRunOnceInOrderInTheCompletingThread) {
  Fixture fx({.workers = 1});
  fx.board.hold({0});
  auto f = fx.pool.submit(gated, 0);
  ASSERT_TRUE(fx.board.next_started());
  auto log = std::make_shared<CallLog>();
  for (int k = 0; k < 3; ++k)
    f.add_done_callback([log, k](Future<int>& g) {
      std::lock_guard lock(log->m);
      log->calls.emplace_back(k, g.get());  // done: get() does not wait
      log->threads.push_back(std::this_thread::get_id());
    });
  EXPECT_EQ(log->size(), 0u) << "a callback ran before its task was done";
  fx.board.release(0);
  EXPECT_EQ(f.get(10s), 0);
  ASSERT_TRUE(eventually([&] { return log->size() == 3; }));
  give_it_time();
  std::lock_guard lock(log->m);
  EXPECT_EQ(log->calls, (std::vector<std::pair<int, int>>{{0, 0}, {1, 0}, {2, 0}}));
  // They run in the thread that completed the future: the pool's collector,
  // or this one if its get() took the result first. All in one thread.
  ASSERT_EQ(log->threads.size(), 3u);
  EXPECT_EQ(log->threads[0], log->threads[1]);
  EXPECT_EQ(log->threads[1], log->threads[2]);
}

TEST(PoolCallbacks, AddedAfterCompletionTheyRunAtOnceInTheCaller) {
  ProcessPool pool({.workers = 1});
  auto f = pool.submit(square, 6);
  EXPECT_EQ(f.get(), 36);
  bool ran = false;
  std::thread::id where;
  f.add_done_callback([&](const Future<int>& g) {  // a const Future& works too
    ran = g.ready();
    where = std::this_thread::get_id();
  });
  EXPECT_TRUE(ran) << "the callback did not run at once on a done future";
  EXPECT_EQ(where, std::this_thread::get_id());
}

TEST(PoolCallbacks, ACallbackThatThrowsIsIgnoredAndTheOthersAndThePoolGoOn) {
  Fixture fx({.workers = 1});
  fx.board.hold({0});
  auto f = fx.pool.submit(gated, 0);
  ASSERT_TRUE(fx.board.next_started());
  std::atomic<int> after{0};
  f.add_done_callback([](Future<int>&) { throw std::runtime_error("callback failure"); });
  f.add_done_callback([](Future<int>&) { throw 42; });  // not even a std::exception
  f.add_done_callback([&](Future<int>&) { ++after; });
  fx.board.release(0);
  EXPECT_EQ(f.get(10s), 0);
  EXPECT_TRUE(eventually([&] { return after.load() == 1; }));
  EXPECT_NO_THROW(f.add_done_callback([](Future<int>&) { throw std::runtime_error("at once"); }));
  // The collector thread survived: later futures still complete.
  EXPECT_EQ(fx.pool.submit(square, 7).get(10s), 49);
}

TEST(PoolCallbacks, ACallbackSeesTheFailureOfItsTask) {
  Fixture fx({.workers = 1});
  fx.board.hold({0});
  fx.board.fail(0);
  auto f = fx.pool.submit(gated, 0);
  ASSERT_TRUE(fx.board.next_started());
  std::atomic<int> saw_task_error{0};
  f.add_done_callback([&](Future<int>& g) {
    try {
      std::rethrow_exception(g.exception());
    } catch (const TaskError& e) {
      saw_task_error += contains(e.message(), "tag 0 fails") ? 1 : 100;
    }
  });
  fx.board.release(0);
  EXPECT_THROW(f.get(10s), TaskError);
  EXPECT_TRUE(eventually([&] { return saw_task_error.load() != 0; }));
  EXPECT_EQ(saw_task_error.load(), 1);
}

TEST(PoolCallbacks, EachOfManyFuturesCallsBackExactlyOnce) {
  ProcessPool pool({.workers = 2});
  constexpr int kTasks = 500;
  std::atomic<long long> sum{0};
  std::atomic<int> calls{0};
  std::vector<Future<int>> fs;
  for (int i = 0; i < kTasks; ++i) {
    fs.push_back(pool.submit(square, i));
    fs.back().add_done_callback([&](Future<int>& f) {
      sum += f.get();
      ++calls;
    });
  }
  for (auto& f : fs) f.wait();
  EXPECT_TRUE(eventually([&] { return calls.load() == kTasks; })) << calls.load();
  long long expected = 0;
  for (long long i = 0; i < kTasks; ++i) expected += i * i;
  EXPECT_EQ(sum.load(), expected);
  give_it_time();
  EXPECT_EQ(calls.load(), kTasks);
}

TEST(PoolCallbacks, OnADefaultFutureThrowsInvalidArgument) {
  Future<int> f;
  EXPECT_THROW(f.add_done_callback([](Future<int>&) {}), ipckit::InvalidArgument);
}

// ---------------------------------------------------------------- wait

TEST(PoolWait, AllCompletedWaitsForEveryFutureAndATimeoutReturnsNotDoneFilled) {
  Fixture fx({.workers = 3});
  auto fs = fx.run_held({0, 1, 2});
  auto t0 = Clock::now();
  expect_split(ipckit::wait(fs, ipckit::ALL_COMPLETED, 300ms), {}, {0, 1, 2});
  EXPECT_GE(Clock::now() - t0, 300ms) << "wait(300ms) gave up early";
  EXPECT_LT(Clock::now() - t0, 10s);
  fx.board.release(0);
  fx.board.release(2);
  ASSERT_TRUE(fs[0].wait(10s) && fs[2].wait(10s));
  expect_split(ipckit::wait(fs, 100ms), {0, 2}, {1});  // ALL_COMPLETED is the default
  std::thread late([&] {
    std::this_thread::sleep_for(100ms);
    fx.board.release(1);
  });
  expect_split(ipckit::wait(fs), {0, 1, 2}, {});  // untimed: as long as it takes
  EXPECT_EQ(fs[1].get(0ms), 1);
  late.join();
}

TEST(PoolWait, FirstCompletedReturnsOnceOneIsDone) {
  Fixture fx({.workers = 3});
  auto fs = fx.run_held({0, 1, 2});
  expect_split(ipckit::wait(fs, ipckit::FIRST_COMPLETED, 200ms), {}, {0, 1, 2});
  fx.board.release(1);
  expect_split(ipckit::wait(fs, ReturnWhen::FIRST_COMPLETED), {1}, {0, 2});
  // One done already: at once, whatever the timeout.
  const auto t0 = Clock::now();
  expect_split(ipckit::wait(fs, ipckit::FIRST_COMPLETED, 1h), {1}, {0, 2});
  EXPECT_LT(Clock::now() - t0, 5s);
}

TEST(PoolWait, FirstExceptionReturnsAsSoonAsATaskThrowsWhileOthersAreHeld) {
  Fixture fx({.workers = 3});
  fx.board.hold({0, 1, 2});
  fx.board.fail(2);
  auto fs = fx.submit_gated({0, 1, 2});
  ASSERT_TRUE(fx.board.await_started(3));
  fx.board.release(0);
  ASSERT_TRUE(fs[0].wait(10s));
  // A value is not an exception: FIRST_EXCEPTION goes on waiting.
  expect_split(ipckit::wait(fs, ipckit::FIRST_EXCEPTION, 300ms), {0}, {1, 2});
  fx.board.release(2);
  expect_split(ipckit::wait(fs, ipckit::FIRST_EXCEPTION), {0, 2}, {1});  // 1 is still held
  EXPECT_THROW(fs[2].get(), TaskError);
  expect_split(ipckit::wait(fs, ipckit::FIRST_EXCEPTION), {0, 2}, {1});  // a failure already there: at once
  fx.board.release(1);
  expect_split(ipckit::wait(fs, ipckit::ALL_COMPLETED, 10s), {0, 1, 2}, {});
}

TEST(PoolWait, FirstExceptionCountsATaskWhoseWorkerDied) {
  Fixture fx({.workers = 2});
  auto fs = fx.run_held({0, 1});
  ASSERT_EQ(::kill(fx.board.pid_of(0), SIGKILL), 0);
  expect_split(ipckit::wait(fs, ipckit::FIRST_EXCEPTION, 20s), {0}, {1});
  EXPECT_THROW(fs[0].get(), WorkerDied);
}

// As in Python: a cancelled future is done, but it did not fail.
TEST(PoolWait, FirstExceptionDoesNotCountACancelledFuture) {
  Fixture fx({.workers = 1});
  fx.board.hold({0});
  auto fs = fx.submit_gated({0, 1});  // 1 waits behind the held 0
  ASSERT_TRUE(fx.board.await_started(1));
  ASSERT_TRUE(fs[1].cancel());
  expect_split(ipckit::wait(fs, ipckit::FIRST_EXCEPTION, 200ms), {1}, {0});
  fx.board.release(0);
  expect_split(ipckit::wait(fs, ipckit::FIRST_EXCEPTION, 10s), {0, 1}, {});
}

TEST(PoolWait, FirstExceptionWithNoFailureWaitsForAll) {
  ProcessPool pool({.workers = 2});
  std::vector<Future<int>> fs;
  for (int i = 0; i < 200; ++i) fs.push_back(pool.submit(square, i));
  const auto r = ipckit::wait(fs, ipckit::FIRST_EXCEPTION);
  EXPECT_EQ(r.done.size(), 200u);
  EXPECT_TRUE(r.not_done.empty());
}

// Python's loop: done, not_done = wait(not_done, return_when=FIRST_COMPLETED).
TEST(PoolWait, AFirstCompletedLoopSeesEveryFutureDoneExactlyOnce) {
  ProcessPool pool({.workers = 2});
  std::vector<Future<int>> rest;
  for (int i = 0; i < 300; ++i) rest.push_back(pool.submit(square, i));
  std::vector<int> seen;
  int rounds = 0;
  while (!rest.empty()) {
    ASSERT_LT(++rounds, 1000);
    const auto r = ipckit::wait(rest, ipckit::FIRST_COMPLETED, 20s);
    ASSERT_FALSE(r.done.empty()) << "FIRST_COMPLETED returned with nothing done";
    for (std::size_t i : r.done) seen.push_back(rest[i].get());
    std::vector<Future<int>> next;
    for (std::size_t i : r.not_done) next.push_back(rest[i]);
    rest = std::move(next);
  }
  std::sort(seen.begin(), seen.end());
  std::vector<int> expected;
  for (int i = 0; i < 300; ++i) expected.push_back(i * i);
  EXPECT_EQ(seen, expected);
}

TEST(PoolWait, AnEmptyRangeReturnsAtOnce) {
  const std::vector<Future<int>> none;
  for (auto when : {ipckit::FIRST_COMPLETED, ipckit::FIRST_EXCEPTION, ipckit::ALL_COMPLETED}) {
    expect_split(ipckit::wait(none, when), {}, {});
    expect_split(ipckit::wait(none, when, 1h), {}, {});
  }
}

TEST(PoolWait, AZeroTimeoutOrAPastTimePointIsASingleCheck) {
  Fixture fx({.workers = 1});
  auto fs = fx.run_held({0});
  const auto t0 = Clock::now();
  expect_split(ipckit::wait(fs, ipckit::ALL_COMPLETED, 0ms), {}, {0});
  expect_split(ipckit::wait(fs, ipckit::FIRST_COMPLETED, -5s), {}, {0});
  expect_split(ipckit::wait_until(fs, ipckit::FIRST_COMPLETED, std::chrono::system_clock::now() - 1s), {}, {0});
  expect_split(ipckit::wait_until(fs, ipckit::FIRST_COMPLETED, Clock::now() - 1s), {}, {0});
  EXPECT_LT(Clock::now() - t0, 2s);
  const auto t1 = Clock::now();
  expect_split(ipckit::wait_until(fs, ipckit::ALL_COMPLETED, std::chrono::system_clock::now() + 200ms), {}, {0});
  EXPECT_GE(Clock::now() - t1, 150ms);  // the system clock's 200 ms, converted once
}

TEST(PoolWait, FuturesOfDifferentTypesWaitTogetherAsAnyFuture) {
  Fixture fx({.workers = 3});
  fx.board.hold({0});
  Future<int> held = fx.pool.submit(gated, 0);
  Future<int> sq = fx.pool.submit(square, 9);
  Future<std::string> text = fx.pool.submit(spell, 5);
  ASSERT_TRUE(sq.wait(10s) && text.wait(10s));
  std::vector<AnyFuture> any{held, sq, text};
  expect_split(ipckit::wait(any, ipckit::ALL_COMPLETED, 100ms), {1, 2}, {0});
  EXPECT_TRUE(any[0] == AnyFuture(held));
  EXPECT_FALSE(any[0] == any[1]);
  EXPECT_TRUE(any[2].done());
  EXPECT_EQ(any[2].exception(), nullptr);
  EXPECT_EQ(text.get(), "#5");
  fx.board.release(0);
  expect_split(ipckit::wait(any), {0, 1, 2}, {});
}

TEST(PoolWait, ADefaultFutureInTheRangeThrowsInvalidArgument) {
  ProcessPool pool({.workers = 1});
  std::vector<Future<int>> fs{pool.submit(square, 2), Future<int>{}};
  EXPECT_THROW(ipckit::wait(fs), ipckit::InvalidArgument);
  EXPECT_THROW(ipckit::as_completed(fs), ipckit::InvalidArgument);
  EXPECT_THROW((void)std::vector<AnyFuture>{AnyFuture{}}.front().ready(), ipckit::InvalidArgument);
}

// ---------------------------------------------------------------- as_completed

TEST(PoolAsCompleted, YieldsTheDoneFirstThenHeldTasksInTheOrderTheyAreReleased) {
  Fixture fx({.workers = 4});
  fx.board.hold({10, 11, 12, 13});
  std::vector<Future<int>> fs{fx.pool.submit(square, 5), fx.pool.submit(square, 6)};
  ASSERT_TRUE(fs[0].wait(10s) && fs[1].wait(10s));
  for (int t : {10, 11, 12, 13}) fs.push_back(fx.pool.submit(gated, t));
  ASSERT_TRUE(fx.board.await_started(4));
  const int order[] = {13, 10, 12, 11};
  std::size_t released = 0;
  std::vector<int> seen;
  for (Future<int>& f : ipckit::as_completed(fs, 20s)) {
    seen.push_back(f.get());
    // One released at a time, after the done ones came out: each comes out before the next is released.
    if (seen.size() >= 2 && released < 4) fx.board.release(order[released++]);
  }
  EXPECT_EQ(seen, (std::vector<int>{25, 36, 13, 10, 12, 11}));
}

TEST(PoolAsCompleted, ATimeoutThrowsTimeoutNamingHowManyArePending) {
  Fixture fx({.workers = 3});
  auto fs = fx.run_held({0, 1, 2});
  fx.board.release(1);
  ASSERT_TRUE(fs[1].wait(10s));
  const auto t0 = Clock::now();
  std::vector<int> seen;
  try {
    for (auto& f : ipckit::as_completed(fs, 500ms)) seen.push_back(f.get());
    ADD_FAILURE() << "as_completed did not time out";
  } catch (const ipckit::Timeout& e) {
    EXPECT_TRUE(contains(e.what(), "2 (of 3)")) << e.what();
  }
  EXPECT_GE(Clock::now() - t0, 500ms);
  EXPECT_LT(Clock::now() - t0, 10s);
  EXPECT_EQ(seen, std::vector<int>{1});
  // A time point of another clock, and a time point already past.
  EXPECT_THROW(
      {
        for (auto& f : ipckit::as_completed_until(fs, std::chrono::system_clock::now() + 100ms)) (void)f;
      },
      ipckit::Timeout);
  auto past = ipckit::as_completed_until(fs, Clock::now() - 1s);
  auto it = past.begin();  // the done one comes out even so
  EXPECT_EQ(it->get(), 1);
  EXPECT_THROW(++it, ipckit::Timeout);
  EXPECT_TRUE(it == past.end()) << "the range goes on after its Timeout";
}

TEST(PoolAsCompleted, FailedFuturesAreYieldedAndTheirGetThrows) {
  Fixture fx({.workers = 2});
  fx.board.fail(3);
  std::vector<Future<int>> fs{fx.pool.submit(square, 4), fx.pool.submit(gated, 3), fx.pool.submit(square, 5)};
  int values = 0;
  int failures = 0;
  for (auto& f : ipckit::as_completed(fs)) {
    if (f.exception() != nullptr)
      ++failures;
    else
      values += f.get();
  }
  EXPECT_EQ(values, 16 + 25);
  EXPECT_EQ(failures, 1);
}

TEST(PoolAsCompleted, AnEmptyRangeYieldsNothing) {
  int n = 0;
  for (auto& f : ipckit::as_completed(std::vector<Future<int>>{})) n += f.valid() ? 1 : 2;
  for (auto& f : ipckit::as_completed(std::vector<AnyFuture>{}, 0ms)) n += f.valid() ? 1 : 2;
  EXPECT_EQ(n, 0);
  static_assert(std::ranges::input_range<decltype(ipckit::as_completed(std::vector<Future<int>>{}))>);
}

TEST(PoolAsCompleted, FuturesOfDifferentTypesComeOutAsAnyFuture) {
  Fixture fx({.workers = 2});
  fx.board.hold({0});
  Future<int> held = fx.pool.submit(gated, 0);
  Future<std::string> text = fx.pool.submit(spell, 8);
  ASSERT_TRUE(fx.board.await_started(1));
  std::vector<AnyFuture> seen;
  for (AnyFuture& f : ipckit::as_completed(std::vector<AnyFuture>{held, text}, 20s)) {
    seen.push_back(f);
    if (seen.size() == 1) fx.board.release(0);
  }
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0] == AnyFuture(text));
  EXPECT_TRUE(seen[1] == AnyFuture(held));
}

// Leaving the loop early leaves listeners on futures still running: they
// complete into a record nobody reads, and nothing breaks.
TEST(PoolAsCompleted, LeavingTheLoopEarlyIsSafe) {
  Fixture fx({.workers = 3});
  auto fs = fx.run_held({0, 1, 2});
  fx.board.release(2);
  {
    auto ac = ipckit::as_completed(fs, 20s);
    for (auto& f : ac) {
      EXPECT_EQ(f.get(), 2);
      break;
    }
  }
  fx.board.release(0);
  fx.board.release(1);
  expect_split(ipckit::wait(fs, 20s), {0, 1, 2}, {});
  EXPECT_EQ(fx.pool.submit(square, 3).get(10s), 9);
}

// ---------------------------------------------------------------- map

TEST(PoolMap, ResultsComeInInputOrderForEveryChunkSize) {
  ProcessPool pool({.workers = 2});
  std::vector<long long> serial;
  for (long long x = 1; x <= 1000; ++x) serial.push_back(square_ll(x));
  std::vector<long long> inputs(1000);
  std::iota(inputs.begin(), inputs.end(), 1LL);
  for (std::size_t chunk : {1, 7, 64}) {
    SCOPED_TRACE("chunksize " + std::to_string(chunk));
    std::vector<long long> got;
    for (long long r : pool.map(square_ll, std::views::iota(1, 1001), {.chunksize = chunk})) got.push_back(r);
    EXPECT_EQ(got, serial);
    got.clear();
    for (long long r : pool.map(square_ll, inputs, {.chunksize = chunk})) got.push_back(r);  // an lvalue vector
    EXPECT_EQ(got, serial);
  }
  // A chunk larger than the input, and a lambda.
  std::vector<int> got;
  std::ranges::copy(pool.map([](int x) { return -x; }, std::vector<int>{3, 1, 2}, {.chunksize = 100}),
                    std::back_inserter(got));
  EXPECT_EQ(got, (std::vector<int>{-3, -1, -2}));
}

TEST(PoolMap, StringsAndPlainStructsTravelInChunks) {
  ProcessPool pool({.workers = 2});
  const std::vector<std::string> words{"", "a", "four", std::string(1000, 'x'), "seven!!"};
  std::vector<std::size_t> lengths;
  for (std::size_t n : pool.map(length, words, {.chunksize = 2})) lengths.push_back(n);
  EXPECT_EQ(lengths, (std::vector<std::size_t>{0, 1, 4, 1000, 7}));
  std::vector<std::string> spelled;
  for (auto& s : pool.map(spell, std::views::iota(0, 5), {.chunksize = 3})) spelled.push_back(std::move(s));
  EXPECT_EQ(spelled, (std::vector<std::string>{"#0", "#1", "#2", "#3", "#4"}));
  std::vector<Point> points;
  for (int i = 0; i < 10; ++i) points.push_back({2.0 * i, -4.0 * i});
  int i = 0;
  for (const Point& p : pool.map(halve, points, {.chunksize = 4})) {
    EXPECT_EQ(p.x, 1.0 * i);
    EXPECT_EQ(p.y, -2.0 * i);
    ++i;
  }
  EXPECT_EQ(i, 10);
}

TEST(PoolMap, ATaskThatThrowsFailsAtItsChunkAfterEveryResultBeforeIt) {
  ProcessPool pool({.workers = 2});
  for (std::size_t chunk : {1, 7}) {
    SCOPED_TRACE("chunksize " + std::to_string(chunk));
    auto results = pool.map(fails_at_20, std::views::iota(0, 50), {.chunksize = chunk});
    std::vector<int> got;
    try {
      for (int r : results) got.push_back(r);
      ADD_FAILURE() << "the iteration did not throw";
    } catch (const TaskError& e) {
      EXPECT_EQ(e.type_name(), "std::runtime_error");
      EXPECT_EQ(e.message(), "input 20 is not welcome");
    }
    // As in Python, a chunk fails as a whole: the results of the chunks before it come out.
    const std::size_t before = 20 / chunk * chunk;
    ASSERT_EQ(got.size(), before);
    for (std::size_t i = 0; i < before; ++i) EXPECT_EQ(got[i], static_cast<int>(i) + 1000);
    EXPECT_TRUE(results.begin() == results.end()) << "the range goes on after a failure";
  }
}

TEST(PoolMap, AWorkerKilledMidChunkFailsItsChunkWithWorkerDiedAndThePoolGoesOn) {
  Fixture fx({.workers = 2});
  fx.board.hold({37});
  auto results = fx.pool.map(gated, std::views::iota(0, 64), {.chunksize = 8});
  for (;;) {  // inputs 32..36 of chunk 4 are done when 37 reports
    const auto tag = fx.board.next_started();
    ASSERT_TRUE(tag) << "input 37 never started";
    if (*tag == 37) break;
  }
  const pid_t victim = fx.board.pid_of(37);
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  std::vector<int> got;
  try {
    for (int r : results) got.push_back(r);
    ADD_FAILURE() << "the iteration did not throw";
  } catch (const WorkerDied& e) {
    EXPECT_TRUE(contains(e.what(), std::to_string(victim))) << e.what();
  }
  ASSERT_EQ(got.size(), 32u);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(fx.pool.submit(square, 12).get(20s), 144);
  EXPECT_TRUE(eventually([&] { return fx.pool.worker_pids().size() == 2; }));
}

TEST(PoolMap, TheTimeoutCountsFromTheMapCall) {
  Fixture fx({.workers = 2});
  fx.board.hold({3});
  const auto t0 = Clock::now();
  auto results = fx.pool.map(gated, std::views::iota(0, 10), {.timeout = 1500ms});
  std::this_thread::sleep_for(1s);  // the iteration starts late: its steps have 0.5 s left, not 1.5 s
  const auto t1 = Clock::now();
  std::vector<int> got;
  try {
    for (int r : results) got.push_back(r);
    ADD_FAILURE() << "the iteration did not time out";
  } catch (const ipckit::Timeout& e) {
    EXPECT_TRUE(contains(e.what(), "map")) << e.what();
    EXPECT_TRUE(contains(e.what(), fx.pool.name())) << e.what();
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  EXPECT_GE(Clock::now() - t0, 1500ms);
  EXPECT_LT(Clock::now() - t1, 1400ms) << "the timeout was counted from the iteration, not from map()";
}

TEST(PoolMap, BuffersizeKeepsThatManyChunksInFlight) {
  struct Case {
    std::size_t chunk, buffer;
  };
  for (const Case c : {Case{1, 3}, Case{4, 2}}) {
    SCOPED_TRACE("chunksize " + std::to_string(c.chunk) + ", buffersize " + std::to_string(c.buffer));
    Fixture fx({.workers = 2});
    fx.board.hold({0});
    auto results = fx.pool.map(gated, std::views::iota(0, 40), {.chunksize = c.chunk, .buffersize = c.buffer});
    // Input 0 holds the first chunk's worker: of that chunk only input 0 starts.
    const std::size_t window = 1 + (c.buffer - 1) * c.chunk;
    ASSERT_TRUE(fx.board.await_started(window)) << "the first chunks did not all start";
    EXPECT_FALSE(fx.board.next_started(300ms)) << "more than buffersize chunks went out";
    EXPECT_EQ(fx.board.runs(), window);
    fx.board.release(0);
    int i = 0;
    for (int r : results) {
      EXPECT_EQ(r, i);
      // Taking a result of chunk k has sent chunk k + buffersize, no more.
      const auto bound = (static_cast<std::size_t>(i) / c.chunk + 1 + c.buffer) * c.chunk;
      EXPECT_LE(fx.board.runs(), bound) << "at result " << i;
      ++i;
    }
    EXPECT_EQ(i, 40);
    EXPECT_EQ(fx.board.runs(), 40u);
  }
}

TEST(PoolMap, BuffersizeReadsAnEndlessRangeLazily) {
  ProcessPool pool({.workers = 2});
  std::vector<int> got;
  for (int r : pool.map(square, std::views::iota(0), {.chunksize = 3, .buffersize = 4})) {
    got.push_back(r);
    if (got.size() == 10) break;
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}));
}

TEST(PoolMap, MoreChunksThanMaxPendingAllComplete) {
  ProcessPool pool({.workers = 2, .max_pending = 4});
  long long sum = 0;
  for (long long r : pool.map(square_ll, std::views::iota(0, 500))) sum += r;
  EXPECT_EQ(sum, 499LL * 500 * 999 / 6);
}

TEST(PoolMap, AnEmptyInputYieldsNothing) {
  ProcessPool pool({.workers = 1});
  int n = 0;
  for (int r : pool.map(square, std::vector<int>{})) n += r + 1;
  for (int r : pool.map(square, std::views::iota(0, 0), {.chunksize = 5, .buffersize = 2})) n += r + 1;
  EXPECT_EQ(n, 0);
  auto none = pool.map(square, std::vector<int>{});
  EXPECT_TRUE(none.begin() == none.end());
  static_assert(std::ranges::input_range<decltype(pool.map(square, std::vector<int>{}))>);
}

TEST(PoolMap, BadChunksizeOversizedChunksAndAClosedPoolAreTypedErrors) {
  const std::string name = ipckit::testing::unique_name("mapper");
  ProcessPool pool({.workers = 1, .max_message = 1024, .name = name});
  try {
    (void)pool.map(square, std::vector<int>{1}, {.chunksize = 0});
    ADD_FAILURE() << "chunksize 0 was accepted";
  } catch (const ipckit::InvalidArgument& e) {
    EXPECT_TRUE(contains(e.what(), "chunksize")) << e.what();
    EXPECT_TRUE(contains(e.what(), name)) << e.what();
  }
  const std::vector<std::string> words(40, std::string(100, 'w'));
  EXPECT_THROW((void)pool.map(length, words, {.chunksize = 20}), ipckit::MessageTooLarge);
  std::size_t total = 0;
  for (std::size_t n : pool.map(length, words, {.chunksize = 5})) total += n;  // 5 x 108 bytes fit
  EXPECT_EQ(total, 4000u);
  pool.shutdown();
  EXPECT_THROW((void)pool.map(square, std::vector<int>{1, 2}), ipckit::Closed);
}

// As Python's map: a range ended early (destroyed, or ended by an error)
// cancels the chunks no worker took yet; they never run.
TEST(PoolMap, AMapEndedEarlyCancelsTheChunksNoWorkerTookYet) {
  Fixture fx({.workers = 1});
  fx.board.hold({0, 1, 2, 3, 4, 5});
  {
    auto results = fx.pool.map(gated, std::vector<int>{0, 1, 2, 3, 4, 5});
    ASSERT_EQ(fx.board.next_started(), 0);
    fx.board.release(0);
    auto it = results.begin();
    EXPECT_EQ(*it, 0);
    ASSERT_EQ(fx.board.next_started(), 1);  // the worker holds chunk 1; 2..5 wait
  }
  fx.board.release_all();
  EXPECT_FALSE(fx.board.next_started(300ms)) << "a chunk of a destroyed map ran";
  EXPECT_EQ(fx.board.runs(), 2u);
  EXPECT_EQ(fx.pool.stats().cancelled, 4u);
}
