// tests/queue_contract.hpp — what every kind of queue promises, whatever
// carries it: the four forms of put and get, their timeouts and errors, the
// try_ forms that never throw for "not now" (and throw nothing inside
// either: every throw in the binary is counted), close() and shutdown() seen
// from other processes, MessageTooLarge. One body, instantiated for the
// shared-memory queues (test_queue_typed.cpp) and the Redis ones
// (redis/test_redis_queue.cpp).
//
// A kind K names its handle and items and says how to reach a queue:
//   using Handle, Item; kLifo; kHasOversize
//   struct Env { Env(); Handle open(name, QueueOptions); Handle reopen(name, QueueOptions);
//                bool blocked(const Child&) }
//     (reopen: through handles of its own, as another process does; blocked: the child waits in a call)
//   static Item make(int); static int value(const Item&); static Item oversize(std::size_t max_message)
// Include this header in one file per test binary (it defines the throw counter).
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ipckit/queue_options.hpp"
#include "multiprocess.hpp"

// Every exception thrown by the test binary passes through here (the
// library is linked in statically), so a test can tell that a call threw
// nothing, not even an exception it caught itself.
namespace queue_contract {
inline thread_local long g_throws = 0;
}  // namespace queue_contract
extern "C" [[noreturn]] void __cxa_throw(void* object, void* type, void (*destroy)(void*)) {
  using Real = void (*)(void*, void*, void (*)(void*));
  static const auto real = reinterpret_cast<Real>(::dlsym(RTLD_NEXT, "__cxa_throw"));
  ++queue_contract::g_throws;
  real(object, type, destroy);
  __builtin_unreachable();
}

namespace queue_contract {

using namespace std::chrono_literals;
using namespace ipckit::testing;

// put in every form, with the priority a PriorityQueue needs.
template <class Q, class Item, class... Rest>
void put(Q& q, const Item& x, Rest... rest) {
  if constexpr (requires { q.put(std::int64_t{0}, x, rest...); })
    q.put(7, x, rest...);
  else
    q.put(x, rest...);
}
template <class Q, class Item, class T>
void put_until(Q& q, const Item& x, const T& t) {
  if constexpr (requires { q.put_until(std::int64_t{0}, x, t); })
    q.put_until(7, x, t);
  else
    q.put_until(x, t);
}
template <class Q, class Item>
void put_nowait(Q& q, const Item& x) {
  if constexpr (requires { q.put_nowait(std::int64_t{0}, x); })
    q.put_nowait(7, x);
  else
    q.put_nowait(x);
}
template <class Q, class Item>
bool try_put(Q& q, const Item& x) {
  if constexpr (requires { q.try_put(std::int64_t{0}, x); })
    return q.try_put(7, x);
  else
    return q.try_put(x);
}

template <class K>
class QueueContract : public ::testing::Test {
 protected:
  // max_items 4, items up to 64 bytes.
  static constexpr ipckit::QueueOptions kOptions{.capacity_bytes = 4096, .max_items = 4, .max_message = 64};
  QueueContract() : q_(open("q")) {}
  typename K::Handle open(const std::string& queue) { return env_.open(queue, kOptions); }
  // Queue `queue` opened afresh, through handles of its own (as another process does).
  typename K::Handle reopen(const std::string& queue = "q") { return env_.reopen(queue, kOptions); }
  // The values `count` items put as make(0..count-1) come out as.
  static std::vector<int> expected_order(int count) {
    std::vector<int> v;
    for (int i = 0; i < count; ++i) v.push_back(K::kLifo ? count - 1 - i : i);
    return v;
  }
  typename K::Env env_;
  typename K::Handle q_;
};
TYPED_TEST_SUITE_P(QueueContract);

TYPED_TEST_P(QueueContract, EveryFormOfPutAndGetMovesItemsInTheKindsOrder) {
  using K = TypeParam;
  auto& q = this->q_;
  put(q, K::make(0));
  put(q, K::make(1), 1s);
  put_until(q, K::make(2), std::chrono::steady_clock::now() + 1s);
  put_until(q, K::make(3), std::chrono::system_clock::now() + 1s);
  EXPECT_EQ(q.qsize(), 4u);
  EXPECT_TRUE(q.full());
  std::vector<int> got;
  got.push_back(K::value(q.get()));
  got.push_back(K::value(q.get(1s)));
  got.push_back(K::value(q.get_until(std::chrono::system_clock::now() + 1s)));
  got.push_back(K::value(q.get_nowait()));
  EXPECT_EQ(got, this->expected_order(4));
  put_nowait(q, K::make(4));
  EXPECT_TRUE(try_put(q, K::make(5)));
  const auto first = q.try_get();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(K::value(*first), K::kLifo ? 5 : 4);
  EXPECT_EQ(K::value(q.get_until(std::chrono::steady_clock::now() + 1s)), K::kLifo ? 4 : 5);
  EXPECT_TRUE(q.empty());
}

TYPED_TEST_P(QueueContract, ItemsPutInAnotherProcessComeOutHereInTheKindsOrder) {
  using K = TypeParam;
  Child producer([&] {
    auto mine = this->reopen();
    for (int i = 0; i < 4; ++i) put(mine, K::make(i));
  });
  ASSERT_EQ(producer.wait_exit(), 0);
  std::vector<int> got;
  for (int i = 0; i < 4; ++i) got.push_back(K::value(this->q_.get(5s)));
  EXPECT_EQ(got, this->expected_order(4));
}

TYPED_TEST_P(QueueContract, ABlockedGetterInAnotherProcessGetsTheItemPutHere) {
  using K = TypeParam;
  Child getter([&] { EXPECT_EQ(K::value(this->reopen().get()), 42); });
  ASSERT_TRUE(this->env_.blocked(getter));
  put(this->q_, K::make(42));
  EXPECT_EQ(getter.wait_exit(), 0);
}

TYPED_TEST_P(QueueContract, TimedAndNonBlockingGetsOnAnEmptyQueueThrowEmptyAfterAtLeastTheirTimeout) {
  auto& q = this->q_;
  for (auto timeout : {1ms, 40ms}) {
    auto t0 = Clock::now();
    EXPECT_THROW(q.get(timeout), ipckit::Empty);
    EXPECT_GE(Clock::now() - t0, timeout);
    t0 = Clock::now();
    EXPECT_THROW(q.get_until(std::chrono::system_clock::now() + timeout), ipckit::Empty);
    EXPECT_GE(Clock::now() - t0, timeout - 1ms) << "another clock is converted once, by its distance from now";
  }
  // Zero, negative and past: one try. In a child, so that a wait mistaken
  // for a huge one fails instead of hanging.
  Child child([&] {
    const auto t0 = Clock::now();
    EXPECT_THROW(q.get(0ns), ipckit::Empty);
    EXPECT_THROW(q.get(-1s), ipckit::Empty);
    EXPECT_THROW(q.get_until(std::chrono::steady_clock::now() - 1h), ipckit::Empty);
    EXPECT_THROW(q.get_nowait(), ipckit::Empty);
    EXPECT_LT(Clock::now() - t0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
}

TYPED_TEST_P(QueueContract, TimedAndNonBlockingPutsOnAFullQueueThrowFullAfterAtLeastTheirTimeout) {
  using K = TypeParam;
  auto& q = this->q_;
  for (int i = 0; i < 4; ++i) put(q, K::make(i));
  for (auto timeout : {1ms, 40ms}) {
    auto t0 = Clock::now();
    EXPECT_THROW(put(q, K::make(9), timeout), ipckit::Full);
    EXPECT_GE(Clock::now() - t0, timeout);
    t0 = Clock::now();
    EXPECT_THROW(put_until(q, K::make(9), std::chrono::steady_clock::now() + timeout), ipckit::Full);
    EXPECT_GE(Clock::now() - t0, timeout);
  }
  Child child([&] {
    const auto t0 = Clock::now();
    EXPECT_THROW(put(q, K::make(9), 0ns), ipckit::Full);
    EXPECT_THROW(put(q, K::make(9), -1s), ipckit::Full);
    EXPECT_THROW(put_nowait(q, K::make(9)), ipckit::Full);
    EXPECT_LT(Clock::now() - t0, 2s);
  });
  EXPECT_EQ(child.wait_exit(10s), 0);
  EXPECT_EQ(q.qsize(), 4u) << "refused puts add nothing";
}

// try_get / try_put report "not now" (empty, full, closed, shut down) by
// value: no exception is thrown, not even one caught inside the library.
TYPED_TEST_P(QueueContract, TryGetAndTryPutThrowNothingWhenEmptyFullClosedOrShutDown) {
  using K = TypeParam;
  auto& q = this->q_;
  const long before = g_throws;
  for (int round = 0; round < 100; ++round) EXPECT_FALSE(q.try_get().has_value());
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(try_put(q, K::make(i)));
  for (int round = 0; round < 100; ++round) EXPECT_FALSE(try_put(q, K::make(99)));
  q.close();
  EXPECT_FALSE(try_put(q, K::make(99))) << "closed";
  EXPECT_TRUE(q.try_get().has_value()) << "closed, not yet drained";
  q.shutdown();
  EXPECT_FALSE(q.try_get().has_value()) << "shut down: the rest was discarded";
  EXPECT_FALSE(try_put(q, K::make(99)));
  EXPECT_EQ(g_throws, before) << "a try_ form threw (and maybe caught) an exception";
  // The throwing forms do throw, and are counted: the check can fail.
  EXPECT_THROW(q.get_nowait(), ipckit::Closed);
  EXPECT_EQ(g_throws, before + 1);
}

TYPED_TEST_P(QueueContract, AnOversizeItemIsMessageTooLargeFromEveryFormAndNothingIsWritten) {
  using K = TypeParam;
  if constexpr (!K::kHasOversize) {
    GTEST_SKIP() << "a fixed-size item is never too large";
  } else {
    auto& q = this->q_;
    const auto big = K::oversize(this->kOptions.max_message);
    EXPECT_THROW(put(q, big), ipckit::MessageTooLarge);
    EXPECT_THROW(put(q, big, 10ms), ipckit::MessageTooLarge);
    EXPECT_THROW(put_nowait(q, big), ipckit::MessageTooLarge);
    EXPECT_THROW((void)try_put(q, big), ipckit::MessageTooLarge) << "bad input is not 'not now'";
    EXPECT_TRUE(q.empty());
    put(q, K::make(1));
    EXPECT_EQ(K::value(q.get_nowait()), 1);
  }
}

TYPED_TEST_P(QueueContract, CloseRefusesPutsInEveryProcessAndLetsConsumersDrainThenClosed) {
  using K = TypeParam;
  auto& q = this->q_;
  put(q, K::make(0));
  put(q, K::make(1));
  Child closer([&] { this->reopen().shutdown(false); });  // == close()
  ASSERT_EQ(closer.wait_exit(), 0);
  EXPECT_TRUE(q.closed());
  EXPECT_THROW(put(q, K::make(2)), ipckit::Closed);
  EXPECT_THROW(put(q, K::make(2), 10ms), ipckit::Closed);
  EXPECT_THROW(put_nowait(q, K::make(2)), ipckit::Closed);
  std::vector<int> got;
  got.push_back(K::value(q.get()));
  got.push_back(K::value(q.get(1s)));
  EXPECT_EQ(got, this->expected_order(2));
  EXPECT_THROW(q.get(), ipckit::Closed) << "closed and drained: no wait";
  EXPECT_THROW(q.get(10ms), ipckit::Closed);
  EXPECT_THROW(q.get_nowait(), ipckit::Closed);
}

// Python 3.13's shutdown(immediate=True): the items are discarded, and
// getters blocked on an empty queue and putters blocked on a full one, in
// other processes, all wake with Closed.
TYPED_TEST_P(QueueContract, ShutdownDiscardsTheItemsAndWakesBlockedGettersAndPuttersInOtherProcessesWithClosed) {
  using K = TypeParam;
  auto& full = this->q_;
  auto empty = this->open("empty");
  for (int i = 0; i < 4; ++i) put(full, K::make(i));
  std::vector<Child> blocked;
  blocked.emplace_back([&] { EXPECT_THROW(put(full, K::make(9)), ipckit::Closed); });
  blocked.emplace_back(
      [&] { EXPECT_THROW(put_until(full, K::make(9), std::chrono::steady_clock::now() + 60s), ipckit::Closed); });
  blocked.emplace_back([&] { EXPECT_THROW(empty.get(), ipckit::Closed); });
  blocked.emplace_back([&] { EXPECT_THROW(empty.get(60s), ipckit::Closed); });
  for (auto& c : blocked) ASSERT_TRUE(this->env_.blocked(c));
  Child shutter([&] {
    this->reopen("q").shutdown();
    this->reopen("empty").shutdown();
  });
  EXPECT_EQ(shutter.wait_exit(), 0);
  for (auto& c : blocked) EXPECT_EQ(c.wait_exit(20s), 0);
  EXPECT_TRUE(full.closed());
  EXPECT_EQ(full.qsize(), 0u) << "the queued items were discarded";
  EXPECT_THROW(full.get(), ipckit::Closed);
  EXPECT_THROW(put(full, K::make(1)), ipckit::Closed);
  EXPECT_FALSE(empty.try_get().has_value());
}

REGISTER_TYPED_TEST_SUITE_P(QueueContract, EveryFormOfPutAndGetMovesItemsInTheKindsOrder,
                            ItemsPutInAnotherProcessComeOutHereInTheKindsOrder,
                            ABlockedGetterInAnotherProcessGetsTheItemPutHere,
                            TimedAndNonBlockingGetsOnAnEmptyQueueThrowEmptyAfterAtLeastTheirTimeout,
                            TimedAndNonBlockingPutsOnAFullQueueThrowFullAfterAtLeastTheirTimeout,
                            TryGetAndTryPutThrowNothingWhenEmptyFullClosedOrShutDown,
                            AnOversizeItemIsMessageTooLargeFromEveryFormAndNothingIsWritten,
                            CloseRefusesPutsInEveryProcessAndLetsConsumersDrainThenClosed,
                            ShutdownDiscardsTheItemsAndWakesBlockedGettersAndPuttersInOtherProcessesWithClosed);

}  // namespace queue_contract
