// PriorityQueue and JoinablePriorityQueue over Redis: what the queue
// contract (test_redis_queue.cpp instantiates it for them) cannot say —
// order by priority across processes, the whole int64 range, leases and
// redelivery, dead letters, join(), exactly once under connection kills,
// and that a priority queue and a FIFO queue refuse each other's names.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "redis_env.hpp"

using namespace std::chrono_literals;
using namespace ipckit::testing;
namespace rd = ipckit::redis;

namespace {

using Prioritized = std::pair<std::int64_t, std::string>;
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

rd::Hub other_hub() { return rd::Hub(shared_redis().url()); }

TEST(RedisPriorityQueue, ItemsPutInAnotherProcessComeOutLowestPriorityFirstAndFifoAmongEquals) {
  const std::string name = unique_name("order");
  auto q = shared_hub().priority_queue<std::string>(name);
  // Every priority boundary the byte encoding has to get right, shuffled,
  // several items per priority.
  const std::vector<std::int64_t> priorities{kMin, kMin + 1, -(std::int64_t{1} << 32), -256,     -255, -1, 0, 1,
                                             255,  256,      std::int64_t{1} << 32,    kMax - 1, kMax};
  std::vector<Prioritized> put;
  for (int round = 0; round < 3; ++round)
    for (const std::int64_t p : priorities) put.emplace_back(p, std::to_string(p) + "#" + std::to_string(round));
  std::shuffle(put.begin(), put.end(), std::mt19937(7));
  Child producer([&] {
    auto mine = other_hub().priority_queue<std::string>(name);
    for (const auto& [p, x] : put) mine.put(p, x);
  });
  ASSERT_EQ(producer.wait_exit(20s), 0);
  EXPECT_EQ(q.qsize(), put.size());
  // The order expected: by priority, then in the order put (a stable sort).
  std::vector<Prioritized> expected = put;
  std::stable_sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Prioritized> got;
  for (std::size_t i = 0; i < put.size(); ++i) got.push_back(q.get_with_priority(5s));
  EXPECT_EQ(got, expected);
  EXPECT_FALSE(q.try_get_with_priority().has_value());
}

TEST(RedisPriorityQueue, EveryFormOfGetWithPriorityAndABlockedGetterWokenByAPut) {
  const std::string name = unique_name("forms");
  auto q = shared_hub().priority_queue<std::string>(name, {.max_items = 4});
  q.put(3, "c");
  q.put(-3, "a", 1s);
  q.put_until(0, "b", std::chrono::steady_clock::now() + 1s);
  q.put_nowait(kMax, "d");
  EXPECT_TRUE(q.full());
  EXPECT_FALSE(q.try_put(kMin, "refused"));
  EXPECT_THROW(q.put(kMin, "refused", 10ms), ipckit::Full);
  EXPECT_EQ(q.get_with_priority(), (Prioritized{-3, "a"}));
  EXPECT_EQ(q.get_with_priority(1s), (Prioritized{0, "b"}));
  EXPECT_EQ(q.get_with_priority_until(std::chrono::system_clock::now() + 1s), (Prioritized{3, "c"}));
  EXPECT_EQ(q.get_with_priority_nowait(), (Prioritized{kMax, "d"}));
  EXPECT_THROW(q.get_with_priority(20ms), ipckit::Empty);
  Child getter([&] { EXPECT_EQ(other_hub().priority_queue<std::string>(name, {.max_items = 4}).get(), "woken"); });
  ASSERT_TRUE(asleep_in_any_call(getter));
  const auto t0 = Clock::now();
  q.put(1, "woken");
  EXPECT_EQ(getter.wait_exit(10s), 0);
  EXPECT_LT(Clock::now() - t0, 500ms) << "the put woke the blocked getter, not its scan period";
}

TEST(RedisPriorityQueue, AnItemWhoseConsumerDiedIsDeliveredAgainAfterItsLeaseAheadOfLowerPriorities) {
  const std::string name = unique_name("lease");
  const rd::QueueOptions o{.visibility_timeout = 300ms};
  auto q = shared_hub().priority_queue<std::string>(name, o);
  q.put(-5, "urgent");
  Child consumer([&] {
    auto mine = other_hub().priority_queue<std::string>(name, o);
    EXPECT_EQ(mine.get(5s), "urgent");
    ::raise(SIGKILL);  // dies holding it
  });
  EXPECT_NE(consumer.wait_exit(10s), 0);
  q.put(0, "later");  // put after the delivery, but of a lower priority (a higher value)
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(350ms);  // the lease ends
  EXPECT_EQ(q.get_with_priority(10s), (Prioritized{-5, "urgent"}));
  EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{2});
  EXPECT_LT(Clock::now() - t0, 300ms + 1500ms) << "re-delivered within its lease and a scan period";
  EXPECT_EQ(q.get(1s), "later");
  EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{1});
  q.ack();
  EXPECT_THROW(q.get(600ms), ipckit::Empty) << "acknowledged: neither is delivered again";
}

TEST(RedisPriorityQueue, AfterMaxDeliveriesAnItemGoesToTheDeadLettersAndIsRequeuedWithItsPriority) {
  const std::string name = unique_name("dead");
  const rd::QueueOptions o{.visibility_timeout = 50ms, .max_deliveries = 2};
  auto q = shared_hub().joinable_priority_queue<std::string>(name, o);
  q.put(-1, "poison");
  for (int round = 1; round <= 2; ++round) {
    Child consumer([&] {
      auto mine = other_hub().joinable_priority_queue<std::string>(name, o);
      EXPECT_EQ(mine.get(5s), "poison");
      EXPECT_EQ(mine.delivery_counts(), std::vector<std::uint32_t>{static_cast<std::uint32_t>(round)});
      ::raise(SIGKILL);
    });
    EXPECT_NE(consumer.wait_exit(10s), 0);
  }
  EXPECT_THROW(q.get(600ms), ipckit::Empty) << "a third delivery goes to the dead letters instead";
  EXPECT_EQ(q.dead_letters(), 1u);
  EXPECT_TRUE(q.join(1s)) << "a dead letter counts as done for join()";
  q.put(-1, "behind");
  q.put(0, "after");
  EXPECT_EQ(q.requeue_dead(), 1u);
  EXPECT_EQ(q.dead_letters(), 0u);
  EXPECT_EQ(q.unfinished_tasks(), 3u);
  EXPECT_EQ(q.get_with_priority(1s), (Prioritized{-1, "behind"})) << "requeued behind its priority's items";
  EXPECT_EQ(q.get_with_priority(1s), (Prioritized{-1, "poison"}));
  EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{1}) << "its count starts again";
  EXPECT_EQ(q.get(1s), "after");
  for (int i = 0; i < 3; ++i) q.task_done();
  EXPECT_TRUE(q.join(1s));
}

TEST(RedisPriorityQueue, JoinWaitsForTaskDoneInOtherProcessesAndTaskDoneWithoutATaskIsInvalid) {
  const std::string name = unique_name("join");
  auto q = shared_hub().joinable_priority_queue<int>(name);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
  for (int i = 0; i < 20; ++i) q.put(i % 3, i);
  EXPECT_EQ(q.unfinished_tasks(), 20u);
  EXPECT_FALSE(q.join(20ms));
  std::vector<Child> workers;
  for (int w = 0; w < 2; ++w)
    workers.emplace_back([&] {
      auto mine = other_hub().joinable_priority_queue<int>(name);
      while (mine.try_get().has_value()) mine.task_done();
    });
  EXPECT_TRUE(q.join(20s));
  for (auto& w : workers) EXPECT_EQ(w.wait_exit(10s), 0);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_TRUE(q.empty());
}

// Connections killed by the server over and over while three producers put
// and two consumers get: every item arrives exactly once (a put whose reply
// was lost is applied once, a get's item is recovered by its resend).
TEST(RedisPriorityQueue, EveryItemArrivesExactlyOnceWhileConnectionsAreKilled) {
  const std::string name = unique_name("chaos");
  auto hub = shared_hub();
  auto q = hub.priority_queue<std::int64_t>(name);
  auto done = hub.queue<std::int64_t>(name + "-tally");
  constexpr int kProducers = 3, kItems = 1500;
  std::vector<Child> kids;
  for (int p = 0; p < kProducers; ++p)
    kids.emplace_back([&, p] {
      auto mine = other_hub().priority_queue<std::int64_t>(name);
      for (int i = 0; i < kItems; ++i) mine.put(i % 5 - 2, std::int64_t{p} * 1000000 + i);
    });
  for (int c = 0; c < 2; ++c)
    kids.emplace_back([&] {
      rd::Hub h(shared_redis().url());
      auto mine = h.priority_queue<std::int64_t>(name);
      auto tally = h.queue<std::int64_t>(name + "-tally");
      for (;;) {
        std::int64_t v = 0;
        try {
          v = mine.get();
        } catch (const ipckit::Closed&) {
          return;
        }
        tally.put(v);
      }
    });
  const auto until = Clock::now() + 30s;
  while (q.qsize() + done.qsize() < static_cast<std::size_t>(kProducers * kItems) / 3 && Clock::now() < until)
    std::this_thread::sleep_for(1ms);
  int kills = 0;
  for (int k = 0; k < 20; ++k) {
    const std::string r = shared_redis().command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
    if (r.starts_with(":")) kills += std::stoi(r.substr(1));
    std::this_thread::sleep_for(5ms);
  }
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(kids[p].wait_exit(60s), 0);
  std::map<std::int64_t, int> seen;
  while (seen.size() < static_cast<std::size_t>(kProducers * kItems) && Clock::now() < until + 30s)
    for (auto v : done.get_many(1000, 5s)) ++seen[v];
  q.close();
  for (std::size_t c = kProducers; c < kids.size(); ++c) EXPECT_EQ(kids[c].wait_exit(30s), 0);
  while (auto v = done.try_get()) ++seen[*v];
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kProducers * kItems));
  for (const auto& [v, n] : seen) ASSERT_EQ(n, 1) << "item " << v << " arrived " << n << " times";
  EXPECT_GT(kills, 20) << "the connections in use were killed";
}

// A get whose reply was lost (the server stalled past the call's bound,
// then ran it) delivered its item to this handle: the next get recovers it
// without a second delivery, and the put whose reply was lost is applied once.
TEST(RedisPriorityQueue, AGetWhoseReplyWasLostIsRecoveredByTheNextGetWithoutASecondDelivery) {
  auto server = RedisServer::start();
  rd::Hub hub(server.url(), {.reconnect_timeout = 400ms, .nowait_timeout = 300ms});
  auto q = hub.priority_queue<int>("q");
  EXPECT_FALSE(q.try_get().has_value());  // the get script is loaded: what the stalled server gets is a get
  q.put(5, 1);
  server.sigstop();
  auto t0 = Clock::now();
  EXPECT_THROW(q.get(100ms), ipckit::ConnectionLost);
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_THROW(q.put(9, 2), ipckit::ConnectionLost);
  server.sigcont();
  q.put(0, 3);
  EXPECT_EQ(q.get_with_priority(2s), (std::pair<std::int64_t, int>{5, 1})) << "recovered, ahead of priority 0";
  EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{1});
  EXPECT_EQ(q.get_with_priority(2s), (std::pair<std::int64_t, int>{0, 3}));
  EXPECT_EQ(q.get_with_priority(2s), (std::pair<std::int64_t, int>{9, 2})) << "the lost put, applied once";
  EXPECT_THROW(q.get(100ms), ipckit::Empty);
}

TEST(RedisPriorityQueue, WithAofNothingConfirmedIsLostAcrossARedisRestartAndTheOrderHolds) {
  auto server = RedisServer::start({.aof = true});
  rd::Hub hub(server.url());
  auto q = hub.joinable_priority_queue<std::string>("jobs");
  for (int i = 0; i < 100; ++i) q.put(-(i % 10), "job-" + std::to_string(i));
  EXPECT_EQ(q.get_with_priority(1s), (Prioritized{-9, "job-9"}));  // held, not done
  server.kill();                                                   // a crash: appendfsync always kept every write
  server.restart();
  EXPECT_EQ(q.qsize(), 99u);
  EXPECT_EQ(q.unfinished_tasks(), 100u);
  q.task_done();  // the held one, across the restart
  std::vector<Prioritized> got;
  while (auto v = q.try_get_with_priority()) {
    got.push_back(*v);
    q.task_done();
  }
  ASSERT_EQ(got.size(), 99u);
  EXPECT_EQ(got.front(), (Prioritized{-9, "job-19"}));
  EXPECT_EQ(got.back(), (Prioritized{0, "job-90"}));
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end(), [](const auto& a, const auto& b) { return a.first < b.first; }));
  EXPECT_TRUE(q.join(1s));
}

TEST(RedisPriorityQueue, APriorityQueueOnAClusterKeepsItsKeysInOneSlotAndWorksFromEveryNode) {
  auto cluster = RedisCluster::start(3);
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) names.push_back("cp" + std::to_string(i));  // spread over the slots
  int n = 0;
  for (const std::string& url : cluster.urls()) {
    rd::Hub hub(url);
    for (const auto& name : names) hub.joinable_priority_queue<std::string>(name).put(-n, url);
    ++n;
  }
  rd::Hub hub(cluster.url());
  for (const auto& name : names) {
    auto q = hub.joinable_priority_queue<std::string>(name);
    EXPECT_EQ(q.qsize(), cluster.urls().size());
    EXPECT_EQ(q.get_with_priority(1s), (Prioritized{-(n - 1), cluster.urls().back()}));
    q.task_done();
    while (q.try_get()) q.task_done();
    EXPECT_TRUE(q.join(1s));
    EXPECT_THROW(q.get(20ms), ipckit::Empty) << "a blocking get's XREAD goes to the queue's node too";
  }
}

TEST(RedisPriorityQueue, AFifoQueuesNameIsTypeMismatchAsAPriorityQueueAndTheReverse) {
  auto hub = shared_hub();
  const std::string fifo = unique_name("fifo"), prio = unique_name("prio");
  auto f = hub.queue<int>(fifo);
  auto p = hub.priority_queue<int>(prio);
  EXPECT_THROW(hub.priority_queue<int>(fifo), ipckit::TypeMismatch);
  EXPECT_THROW(hub.joinable_priority_queue<int>(fifo), ipckit::TypeMismatch);
  EXPECT_THROW(hub.queue<int>(prio), ipckit::TypeMismatch);
  EXPECT_THROW(hub.joinable_queue<int>(prio), ipckit::TypeMismatch);
  EXPECT_THROW(hub.joinable_priority_queue<int>(prio), ipckit::TypeMismatch);
  EXPECT_THROW(hub.priority_queue<int>(prio, {.max_items = 5}), ipckit::TypeMismatch);
  try {
    (void)hub.priority_queue<double>(prio);
    FAIL() << "no TypeMismatch";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find(prio), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("type"), std::string::npos) << e.what();
  }
  f.put(1);
  p.put(1, 2);
  EXPECT_EQ(f.get(1s), 1) << "both still work";
  EXPECT_EQ(p.get(1s), 2);
  EXPECT_THROW(hub.priority_queue<int>("a{b}"), ipckit::InvalidName);
}

TEST(RedisPriorityQueue, RemoveDeletesEveryKeyOfAPriorityQueue) {
  auto hub = shared_hub();
  const std::string name = unique_name("rm");
  {
    auto q = hub.joinable_priority_queue<std::string>(name, {.visibility_timeout = 20ms, .max_deliveries = 1});
    q.put(1, "x");
    q.put(2, "y");
    EXPECT_EQ(q.get(1s), "x");  // leased, then dead
    std::this_thread::sleep_for(30ms);
    EXPECT_EQ(q.get(1s), "y");
    EXPECT_EQ(q.dead_letters(), 1u);
  }
  const std::string pattern = "ipckit:{" + name + "}*";
  EXPECT_NE(shared_redis().command({"KEYS", pattern}), "*0\r\n");
  EXPECT_TRUE(hub.remove(name));
  EXPECT_EQ(shared_redis().command({"KEYS", pattern}), "*0\r\n") << "nothing left behind";
  EXPECT_FALSE(hub.remove(name));
}

}  // namespace
