// The queue contract (queue_contract.hpp) over Redis, then what only a
// network queue has: leases and redelivery, dead letters, type tags, lost
// connections and server restarts, exactly-once puts and gets across
// connection kills, Redis Cluster.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "queue_contract.hpp"
#include "redis_env.hpp"

using namespace std::chrono_literals;
using namespace ipckit::testing;
namespace rd = ipckit::redis;

namespace {

rd::QueueOptions redis_options(const ipckit::QueueOptions& o) {
  return {.capacity_bytes = 0, .max_items = o.max_items, .max_message = o.max_message};
}

// Queue names unique per test on the process's server.
template <class Open>
class RedisEnv {
 public:
  auto open(const std::string& n, const ipckit::QueueOptions& o) {
    return Open::open(hub_, prefix_ + n, redis_options(o));
  }
  auto reopen(const std::string& n, const ipckit::QueueOptions& o) {
    rd::Hub other(shared_redis().url());
    return Open::open(other, prefix_ + n, redis_options(o));
  }
  static bool blocked(const Child& c) { return asleep_in_any_call(c); }

 private:
  rd::Hub hub_ = shared_hub();
  std::string prefix_ = unique_name("q") + "/";
};

struct RedisIntKind {
  using Handle = rd::Queue<std::int32_t>;
  using Item = std::int32_t;
  struct Open {
    static Handle open(rd::Hub& h, const std::string& n, const rd::QueueOptions& o) { return h.queue<Item>(n, o); }
  };
  using Env = RedisEnv<Open>;
  static constexpr bool kLifo = false;
  static Item make(int i) { return i; }
  static int value(const Item& x) { return x; }
  static Item oversize(std::size_t) { return 0; }
  static constexpr bool kHasOversize = false;
};
struct RedisStringKind {
  using Handle = rd::Queue<std::string>;
  using Item = std::string;
  struct Open {
    static Handle open(rd::Hub& h, const std::string& n, const rd::QueueOptions& o) { return h.queue<Item>(n, o); }
  };
  using Env = RedisEnv<Open>;
  static constexpr bool kLifo = false;
  static Item make(int i) { return "item-" + std::to_string(i); }
  static int value(const Item& x) { return std::stoi(x.substr(5)); }
  static Item oversize(std::size_t max) { return std::string(max, 'x'); }  // + its 8-byte length
  static constexpr bool kHasOversize = true;
};
struct RedisJoinableKind : RedisStringKind {
  using Handle = rd::JoinableQueue<std::string>;
  struct Open {
    static Handle open(rd::Hub& h, const std::string& n, const rd::QueueOptions& o) {
      return h.joinable_queue<Item>(n, o);
    }
  };
  using Env = RedisEnv<Open>;
};

// The priority queues (every contract put is at priority 7: FIFO order).
struct RedisPriorityKind : RedisStringKind {
  using Handle = rd::PriorityQueue<std::string>;
  struct Open {
    static Handle open(rd::Hub& h, const std::string& n, const rd::QueueOptions& o) {
      return h.priority_queue<Item>(n, o);
    }
  };
  using Env = RedisEnv<Open>;
};
struct RedisJoinablePriorityKind : RedisStringKind {
  using Handle = rd::JoinablePriorityQueue<std::string>;
  struct Open {
    static Handle open(rd::Hub& h, const std::string& n, const rd::QueueOptions& o) {
      return h.joinable_priority_queue<Item>(n, o);
    }
  };
  using Env = RedisEnv<Open>;
};

using Kinds = ::testing::Types<RedisIntKind, RedisStringKind, RedisJoinableKind>;
using PriorityKinds = ::testing::Types<RedisPriorityKind, RedisJoinablePriorityKind>;
class KindNames {
 public:
  template <class K>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<K, RedisIntKind>)
      return "QueueOfInt";
    else if constexpr (std::is_same_v<K, RedisStringKind>)
      return "QueueOfString";
    else if constexpr (std::is_same_v<K, RedisJoinableKind>)
      return "JoinableQueue";
    else if constexpr (std::is_same_v<K, RedisPriorityKind>)
      return "PriorityQueue";
    else
      return "JoinablePriorityQueue";
  }
};

}  // namespace

namespace queue_contract {
INSTANTIATE_TYPED_TEST_SUITE_P(Redis, QueueContract, Kinds, KindNames);
INSTANTIATE_TYPED_TEST_SUITE_P(RedisPriority, QueueContract, PriorityKinds, KindNames);
}  // namespace queue_contract

namespace {

std::string qname(const std::string& stem) { return unique_name(stem); }

TEST(RedisQueue, AnItemWhoseConsumerDiedIsDeliveredAgainAfterItsLeaseWithItsDeliveryCount) {
  auto hub = shared_hub();
  const std::string name = qname("lease");
  const rd::QueueOptions o{.visibility_timeout = 300ms};
  auto q = hub.queue<std::string>(name, o);
  q.put("job");
  Child consumer([&] {
    auto mine = rd::Hub(shared_redis().url()).queue<std::string>(name, o);
    EXPECT_EQ(mine.get(5s), "job");
    ::raise(SIGKILL);  // dies holding it
  });
  EXPECT_NE(consumer.wait_exit(10s), 0);
  const auto t0 = Clock::now();
  EXPECT_EQ(q.get(10s), "job");
  const auto waited = Clock::now() - t0;
  EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{2});
  EXPECT_LT(waited, 300ms + 1500ms) << "re-delivered within its lease and a scan period";
  q.ack();
  EXPECT_THROW(q.get(50ms), ipckit::Empty) << "acknowledged: not delivered a third time";
}

TEST(RedisQueue, AConsumerThatAsksAgainAcknowledgesWhatItGotSoNothingIsRedelivered) {
  auto hub = shared_hub();
  const std::string name = qname("ack");
  const rd::QueueOptions o{.visibility_timeout = 50ms};
  auto q = hub.queue<int>(name, o);
  for (int i = 0; i < 5; ++i) q.put(i);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(q.get(1s), i);
    EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{1});
    std::this_thread::sleep_for(60ms);  // past the lease, but this handle asks again: done
  }
  EXPECT_THROW(q.get(200ms), ipckit::Empty);
}

TEST(RedisQueue, AfterMaxDeliveriesAnItemGoesToTheDeadLettersAndCanBeRequeued) {
  auto hub = shared_hub();
  const std::string name = qname("dead");
  const rd::QueueOptions o{.visibility_timeout = 50ms, .max_deliveries = 2};
  auto q = hub.joinable_queue<std::string>(name, o);
  q.put("poison");
  for (int round = 1; round <= 2; ++round) {
    Child consumer([&] {
      auto mine = rd::Hub(shared_redis().url()).joinable_queue<std::string>(name, o);
      EXPECT_EQ(mine.get(5s), "poison");
      EXPECT_EQ(mine.delivery_counts(), std::vector<std::uint32_t>{static_cast<std::uint32_t>(round)});
      ::raise(SIGKILL);
    });
    EXPECT_NE(consumer.wait_exit(10s), 0);
  }
  EXPECT_THROW(q.get(600ms), ipckit::Empty) << "a third delivery goes to the dead letters instead";
  EXPECT_EQ(q.dead_letters(), 1u);
  EXPECT_TRUE(q.join(1s)) << "a dead letter counts as done for join()";
  EXPECT_EQ(q.requeue_dead(), 1u);
  EXPECT_EQ(q.dead_letters(), 0u);
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_EQ(q.get(1s), "poison");
  EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{1});
  q.task_done();
  EXPECT_TRUE(q.join(1s));
}

TEST(RedisQueue, JoinWaitsForTaskDoneInOtherProcessesAndTaskDoneWithoutATaskIsInvalid) {
  auto hub = shared_hub();
  const std::string name = qname("join");
  auto q = hub.joinable_queue<int>(name);
  EXPECT_THROW(q.task_done(), ipckit::InvalidArgument);
  for (int i = 0; i < 20; ++i) q.put(i);
  EXPECT_EQ(q.unfinished_tasks(), 20u);
  EXPECT_FALSE(q.join(20ms));
  std::vector<Child> workers;
  for (int w = 0; w < 2; ++w)
    workers.emplace_back([&] {
      auto mine = rd::Hub(shared_redis().url()).joinable_queue<int>(name);
      for (;;) {
        std::size_t got = 0;
        try {
          got = mine.get_many(3, 200ms).size();
        } catch (const ipckit::Empty&) {
          return;
        }
        for (std::size_t i = 0; i < got; ++i) mine.task_done();
      }
    });
  EXPECT_TRUE(q.join(20s));
  for (auto& w : workers) EXPECT_EQ(w.wait_exit(10s), 0);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
}

TEST(RedisQueue, OpeningWithAnotherTypeKindOrOptionsIsTypeMismatchAndAForeignKeyToo) {
  auto hub = shared_hub();
  const std::string name = qname("types");
  auto q = hub.queue<int>(name, {.max_items = 4});
  EXPECT_THROW(hub.queue<std::string>(name, {.max_items = 4}), ipckit::TypeMismatch);
  EXPECT_THROW(hub.queue<int>(name, {.max_items = 5}), ipckit::TypeMismatch);
  EXPECT_THROW(hub.joinable_queue<int>(name, {.max_items = 4}), ipckit::TypeMismatch);
  try {
    (void)hub.queue<double>(name, {.max_items = 4});
    FAIL() << "no TypeMismatch";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("type"), std::string::npos) << e.what();
  }
  (void)shared_redis().command({"SET", "ipckit:{" + qname("squat") + "}", "not a queue"});
  const std::string squatted = qname("squatted");
  (void)shared_redis().command({"SET", "ipckit:{" + squatted + "}", "not a queue"});
  EXPECT_THROW(hub.queue<int>(squatted), ipckit::TypeMismatch);
}

TEST(RedisQueue, BadUrlsAndNamesAreRefusedWithTypedErrors) {
  for (const char* url :
       {"http://x", "redis://", "redis://h:99999", "redis://h:x/0", "rediss://h", "unix://rel", "redis://h/abc"})
    EXPECT_THROW(rd::connect(url), ipckit::InvalidArgument) << url;
  EXPECT_EQ(rd::connect("redis://:secret@10.0.0.1:7000/3").url(), "redis://:***@10.0.0.1:7000/3");
  auto hub = shared_hub();
  for (const std::string& bad : {std::string(), std::string("a{b}"), std::string("a\nb"), std::string(300, 'n')})
    EXPECT_THROW(hub.queue<int>(bad), ipckit::InvalidName);
}

TEST(RedisQueue, AnUnreachableServerIsConnectionLostWithinTheCallsBound) {
  auto server = RedisServer::start();
  const std::string url = server.url();
  server.kill();
  rd::Hub hub(url, {.reconnect_timeout = 300ms, .nowait_timeout = 200ms, .connect_timeout = 100ms});
  const auto t0 = Clock::now();
  EXPECT_THROW(hub.queue<int>("q"), ipckit::ConnectionLost);
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_FALSE(hub.ping(100ms));
}

TEST(RedisQueue, AStalledServerMakesTimedCallsFailOnTimeAndTheQueueWorksOnceItResumes) {
  auto server = RedisServer::start();
  rd::Hub hub(server.url(), {.reconnect_timeout = 400ms, .nowait_timeout = 300ms});
  auto q = hub.queue<int>("q");
  q.put(1);
  server.sigstop();
  auto t0 = Clock::now();
  EXPECT_THROW(q.get(100ms), ipckit::ConnectionLost);
  EXPECT_LT(Clock::now() - t0, 2s) << "bound: max(timeout, nowait_timeout), plus reconnect tries";
  t0 = Clock::now();
  EXPECT_THROW(q.put(2), ipckit::ConnectionLost) << "an untimed call gives up after reconnect_timeout";
  EXPECT_LT(Clock::now() - t0, 3s);
  server.sigcont();
  EXPECT_EQ(q.get(2s), 1) << "the item whose reply was lost is recovered, not lost";
  EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{1});
  // The put that got ConnectionLost reached the server, which ran it once it
  // resumed (its resends carried the same sequence number: applied once).
  // Its outcome was unknown to the caller: in, once, or not at all.
  q.put(3);
  auto rest = q.get_many(10, 2s);
  if (rest.size() == 1) rest.push_back(q.get(200ms));
  EXPECT_EQ(rest, (std::vector<int>{2, 3}));
  EXPECT_THROW(q.get(100ms), ipckit::Empty);
}

TEST(RedisQueue, WithAofNothingConfirmedIsLostAcrossARedisRestart) {
  auto server = RedisServer::start({.aof = true});
  rd::Hub hub(server.url());
  auto q = hub.joinable_queue<std::string>("jobs");
  for (int i = 0; i < 100; ++i) q.put("job-" + std::to_string(i));
  EXPECT_EQ(q.get(1s), "job-0");  // held, not done
  server.kill();                  // a crash: appendfsync always kept every write
  server.restart();
  EXPECT_EQ(q.qsize(), 99u);
  EXPECT_EQ(q.unfinished_tasks(), 100u);
  q.task_done();  // the held one, across the restart
  std::set<std::string> got;
  while (auto v = q.try_get()) {
    got.insert(*v);
    q.task_done();
  }
  EXPECT_EQ(got.size(), 99u);
  EXPECT_TRUE(q.join(1s));
}

// Connections killed by the server (CLIENT KILL) over and over while three
// producers put and two consumers get: every item arrives exactly once (a
// put whose reply was lost is applied once, a get's items are recovered).
TEST(RedisQueue, EveryItemArrivesExactlyOnceWhileConnectionsAreKilled) {
  auto hub = shared_hub();
  const std::string name = qname("chaos");
  auto q = hub.queue<std::int64_t>(name);
  auto done = hub.queue<std::int64_t>(name + "-tally");
  constexpr int kProducers = 3, kItems = 1500;
  std::vector<Child> kids;
  for (int p = 0; p < kProducers; ++p)
    kids.emplace_back([&, p] {
      auto mine = rd::Hub(shared_redis().url()).queue<std::int64_t>(name);
      for (int i = 0; i < kItems; ++i) mine.put(std::int64_t{p} * 1000000 + i);
    });
  for (int c = 0; c < 2; ++c)
    kids.emplace_back([&] {
      rd::Hub h(shared_redis().url());
      auto mine = h.queue<std::int64_t>(name);
      auto tally = h.queue<std::int64_t>(name + "-tally");
      for (;;) {
        std::vector<std::int64_t> batch;
        try {
          batch = mine.get_many(50);
        } catch (const ipckit::Closed&) {
          return;
        }
        tally.put_many(batch);
      }
    });
  const auto until = Clock::now() + 30s;
  while (q.qsize() + done.qsize() < static_cast<std::size_t>(kProducers * kItems) / 2 && Clock::now() < until)
    std::this_thread::sleep_for(1ms);
  int kills = 0;  // connections killed
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

TEST(RedisQueue, AQueueOnAClusterFollowsItsSlotAndWorksFromEveryNode) {
  auto cluster = RedisCluster::start(3);
  std::vector<std::string> names;
  for (int i = 0; i < 6; ++i) names.push_back("cq" + std::to_string(i));  // spread over the slots
  for (const std::string& url : cluster.urls()) {
    rd::Hub hub(url);
    for (const auto& n : names) {
      auto q = hub.joinable_queue<std::string>(n);
      q.put(url);
      q.put_many(std::vector<std::string>{"a", "b"});
    }
  }
  rd::Hub hub(cluster.url());
  for (const auto& n : names) {
    auto q = hub.joinable_queue<std::string>(n);
    EXPECT_EQ(q.qsize(), 9u);
    auto all = q.get_many(100, 1s);
    EXPECT_EQ(all.size(), 9u);
    for (std::size_t i = 0; i < all.size(); ++i) q.task_done();
    EXPECT_TRUE(q.join(1s));
  }
}

}  // namespace

namespace {

// One handle shared by threads (puts and gets on their own connections and
// locks), for TSan (scripts/sanitize.sh tsan runs RedisThreads*).
TEST(RedisThreads, ThreadsSharingHandlesMoveEveryItemOnce) {
  auto hub = shared_hub();
  const std::string name = unique_name("threads");
  auto producer = hub.queue<std::int64_t>(name);
  auto consumer = hub.joinable_queue<std::int64_t>(name + "-j");
  auto jp = hub.joinable_queue<std::int64_t>(name + "-j");
  constexpr int kThreads = 3, kItems = 400;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kItems; ++i) producer.put(std::int64_t{t} * 100000 + i);
    });
  std::mutex m;
  std::multiset<std::int64_t> seen;
  for (int t = 0; t < 2; ++t)
    ts.emplace_back([&] {
      auto mine = hub.queue<std::int64_t>(name);
      for (;;) {
        std::vector<std::int64_t> got;
        try {
          got = mine.get_many(32, 2s);
        } catch (const ipckit::Empty&) {
          return;
        }
        jp.put_many(got);
        std::lock_guard lock(m);
        seen.insert(got.begin(), got.end());
      }
    });
  std::thread finisher([&] {
    for (int n = 0; n < kThreads * kItems; ++n) {
      (void)consumer.get(10s);
      consumer.task_done();
    }
  });
  for (auto& t : ts) t.join();
  finisher.join();
  EXPECT_TRUE(consumer.join(5s));
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kItems));
  std::set<std::int64_t> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "an item came out twice";
}

}  // namespace

namespace {

TEST(RedisQueue, APasswordInTheUrlIsUsedAndAWrongOneIsPermissionDenied) {
  auto server = RedisServer::start();
  (void)server.command({"CONFIG", "SET", "requirepass", "s3cret"});
  const std::string port = std::to_string(server.port());
  auto q = rd::connect("redis://:s3cret@127.0.0.1:" + port + "/2").queue<int>("q");
  q.put(5);
  EXPECT_EQ(q.get(1s), 5);
  EXPECT_THROW(rd::connect("redis://:wrong@127.0.0.1:" + port).queue<int>("q"), ipckit::PermissionDenied);
  try {
    (void)rd::connect("redis://127.0.0.1:" + port).queue<int>("q");
    ADD_FAILURE() << "no password: no NOAUTH";
  } catch (const ipckit::PermissionDenied&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << "no password: " << e.what();
  }
  EXPECT_EQ(rd::connect("redis://:s3cret@127.0.0.1:" + port + "/0").queue<std::string>("q").qsize(), 0u)
      << "db 0 is another namespace than db 2: its q is another queue";
}

}  // namespace
