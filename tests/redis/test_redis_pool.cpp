// ProcessPool over Redis: worker programs (forked here, serving by task
// name) on any machine, futures, exceptions, map, backpressure, a worker
// SIGKILLed mid-task (retried, or WorkerDied), task timeouts, close_pool, a
// Redis restart under load.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/futures.hpp"
#include "ipckit/redis.hpp"
#include "redis_env.hpp"

using namespace std::chrono_literals;
using namespace ipckit::testing;
namespace rd = ipckit::redis;

namespace {

int rp_square(int n) { return n * n; }
std::string rp_tag(std::string s) { return "<" + s + ">"; }
int rp_fail(int n) { throw std::invalid_argument("bad n " + std::to_string(n)); }
// Sleeps `ms`, then answers its pid (so a test can tell which worker ran it).
int rp_nap(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ::getpid();
}
int rp_unregistered(int n) { return n; }

IPCKIT_TASK(rp_square);
IPCKIT_TASK(rp_tag);
IPCKIT_TASK(rp_fail);
IPCKIT_TASK(rp_nap);

// Worker programs serving `name` until close_pool (forked: the same tasks).
std::vector<Child> start_workers(const std::string& url, const std::string& name, int n,
                                 const rd::PoolOptions& o = {}) {
  std::vector<Child> out;
  for (int i = 0; i < n; ++i) out.emplace_back([=] { rd::serve_pool(rd::Hub(url), name, o); });
  return out;
}

void stop_workers(const std::string& url, const std::string& name, std::vector<Child>& workers) {
  rd::close_pool(rd::Hub(url), name);
  for (auto& w : workers) EXPECT_EQ(w.wait_exit(20s), 0);
}

TEST(RedisPool, WorkersRunSubmittedTasksByNameWithResultsExceptionsAndMap) {
  const std::string url = shared_redis().url(), name = unique_name("pool");
  auto workers = start_workers(url, name, 2);
  {
    ipckit::ProcessPool pool = rd::Hub(url).pool(name);
    EXPECT_EQ(pool.submit(rp_square, 7).get(10s), 49);
    EXPECT_EQ(pool.submit(rp_tag, "x").get(10s), "<x>");
    auto bad = pool.submit(rp_fail, 3);
    try {
      (void)bad.get(10s);
      FAIL() << "no exception";
    } catch (const ipckit::TaskError& e) {
      EXPECT_NE(std::string(e.what()).find("bad n 3"), std::string::npos) << e.what();
    }
    std::vector<ipckit::Future<int>> fs;
    for (int i = 0; i < 500; ++i) fs.push_back(pool.submit(rp_square, i));
    for (int i = 0; i < 500; ++i) ASSERT_EQ(fs[i].get(20s), i * i);
    std::vector<int> inputs(300);
    for (int i = 0; i < 300; ++i) inputs[i] = i;
    int i = 0;
    for (int r : pool.map(rp_square, inputs, {.chunksize = 16})) {
      EXPECT_EQ(r, i * i);
      ++i;
    }
    EXPECT_EQ(i, 300);
    EXPECT_THROW(pool.submit(rp_unregistered, 1), ipckit::InvalidArgument);
    const auto s = pool.stats();
    EXPECT_EQ(s.workers, 2u);
    EXPECT_GE(s.submitted, 503u);
    EXPECT_EQ(pool.worker_pids().size(), 2u);
    pool.shutdown();
    EXPECT_THROW(pool.submit(rp_square, 1), ipckit::Closed);
  }
  stop_workers(url, name, workers);
}

TEST(RedisPool, AWorkerKilledMidTaskHasItsTaskRetriedByAnotherOrFailedWithWorkerDied) {
  const std::string url = shared_redis().url();
  for (const unsigned retries : {1u, 0u}) {
    const std::string name = unique_name("kill");
    const rd::PoolOptions o{.visibility_timeout = 300ms, .retries = retries};
    auto victim = start_workers(url, name, 1, o);
    ipckit::ProcessPool pool = rd::pool(rd::Hub(url), name, o);
    auto f = pool.submit(rp_nap, 400);
    // Wait until the victim runs it, then kill it mid-task.
    const auto until = Clock::now() + 10s;
    while (pool.stats().running == 0 && Clock::now() < until) std::this_thread::sleep_for(5ms);
    ASSERT_EQ(pool.stats().running, 1u);
    ::kill(victim[0].pid(), SIGKILL);
    EXPECT_NE(victim[0].wait_exit(10s), 0);
    auto rescuer = start_workers(url, name, 1, o);
    const auto t0 = Clock::now();
    if (retries == 1) {
      EXPECT_EQ(f.get(10s), rescuer[0].pid()) << "the task ran again, on the other worker";
    } else {
      EXPECT_THROW(f.get(10s), ipckit::WorkerDied);
    }
    EXPECT_LT(Clock::now() - t0, 300ms + 2s) << "within its lease and a scan";
    EXPECT_EQ(pool.submit(rp_square, 3).get(10s), 9) << "the pool goes on";
    pool.shutdown();
    stop_workers(url, name, rescuer);
  }
}

TEST(RedisPool, ATaskPastItsTimeoutFailsWithTimeoutAndItsWorkerEnds) {
  const std::string url = shared_redis().url(), name = unique_name("timeout");
  auto workers = start_workers(url, name, 1);
  ipckit::ProcessPool pool = rd::pool(rd::Hub(url), name, {.task_timeout = 200ms});
  auto f = pool.submit(rp_nap, 5000);
  EXPECT_THROW(f.get(10s), ipckit::Timeout);
  EXPECT_EQ(workers[0].wait_exit(10s), 124) << "the worker program ended, as timeout(1) ends a command";
  auto more = start_workers(url, name, 1);
  EXPECT_EQ(pool.submit(rp_square, 4).get(10s), 16);
  pool.shutdown();
  stop_workers(url, name, more);
}

TEST(RedisPool, SubmitBlocksAtMaxPendingAndSubmitForThrowsFull) {
  const std::string url = shared_redis().url(), name = unique_name("full");
  ipckit::ProcessPool pool = rd::pool(rd::Hub(url), name, {.max_pending = 2});
  auto a = pool.submit(rp_square, 1);
  auto b = pool.submit(rp_square, 2);
  const auto t0 = Clock::now();
  EXPECT_THROW(pool.submit_for(50ms, rp_square, 3), ipckit::Full);
  EXPECT_GE(Clock::now() - t0, 50ms);
  EXPECT_FALSE(pool.try_submit(rp_square, 3).has_value());
  auto workers = start_workers(url, name, 1);  // served later: the tasks wait for it
  EXPECT_EQ(a.get(10s), 1);
  EXPECT_EQ(b.get(10s), 4);
  EXPECT_EQ(pool.submit_for(5s, rp_square, 3).get(10s), 9);
  pool.shutdown();
  stop_workers(url, name, workers);
}

TEST(RedisPool, ClosePoolEndsTheWorkersAfterTheQueuedTasksAndLaterTasksFailClosed) {
  const std::string url = shared_redis().url(), name = unique_name("close");
  ipckit::ProcessPool pool = rd::pool(rd::Hub(url), name);
  std::vector<ipckit::Future<int>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(pool.submit(rp_square, i));
  // submit() queues in the client; the tasks reach Redis in the background.
  const auto until = Clock::now() + 10s;
  while (pool.stats().pending < 20 && Clock::now() < until) std::this_thread::sleep_for(1ms);
  auto workers = start_workers(url, name, 2);
  EXPECT_TRUE(rd::close_pool(rd::Hub(url), name));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(fs[i].get(10s), i * i) << "queued before the close: run";
  for (auto& w : workers) EXPECT_EQ(w.wait_exit(20s), 0);
  EXPECT_THROW(pool.submit(rp_square, 1).get(10s), ipckit::Closed);
  EXPECT_TRUE(rd::remove_pool(rd::Hub(url), name));
  EXPECT_FALSE(rd::close_pool(rd::Hub(url), name));
  const std::string keys = shared_redis().command({"KEYS", "ipckit:pool:{" + name + "}*"});
  EXPECT_EQ(keys, "*0\r\n") << "remove_pool leaves no key behind (result streams included)";
}

TEST(RedisPool, OtherOptionsAreTypeMismatchAndBadOnesInvalidArgument) {
  const std::string url = shared_redis().url(), name = unique_name("mismatch");
  ipckit::ProcessPool pool = rd::pool(rd::Hub(url), name, {.max_message = 1000});
  EXPECT_THROW(rd::pool(rd::Hub(url), name, {.max_message = 2000}), ipckit::TypeMismatch);
  EXPECT_THROW(rd::pool(rd::Hub(url), name, {.max_message = 1000, .visibility_timeout = 1s}), ipckit::TypeMismatch);
  EXPECT_THROW(rd::pool(rd::Hub(url), unique_name("p"), {.max_pending = 0}), ipckit::InvalidArgument);
  EXPECT_THROW(rd::pool(rd::Hub(url), "a{b}"), ipckit::InvalidName);
  EXPECT_THROW(pool.submit(rp_tag, std::string(2000, 'x')), ipckit::MessageTooLarge);
}

// Every task of a load completes exactly once although Redis restarts
// (AOF on) in the middle: the client and the workers reconnect.
TEST(RedisPool, EveryTaskCompletesOnceAcrossARedisRestart) {
  auto server = RedisServer::start({.aof = true});
  const std::string url = server.url(), name = "restart";
  const rd::PoolOptions o{.visibility_timeout = 2s, .retries = 3};
  auto workers = start_workers(url, name, 2, o);
  ipckit::ProcessPool pool = rd::pool(rd::Hub(url), name, o);
  std::vector<ipckit::Future<int>> fs;
  for (int i = 0; i < 300; ++i) fs.push_back(pool.submit(rp_nap, 2));
  std::this_thread::sleep_for(100ms);  // some done, some queued, some running
  server.restart();
  for (int i = 0; i < 300; ++i) fs.push_back(pool.submit(rp_nap, 1));
  std::set<int> pids;
  for (auto& f : fs) pids.insert(f.get(30s));
  EXPECT_GE(pids.size(), 1u);
  pool.shutdown();
  stop_workers(url, name, workers);
}

}  // namespace

namespace {

// Threads submitting into one Redis pool client at once (its sender and
// collector threads between them), for TSan (workers forked first).
TEST(RedisThreads, ThreadsSubmittingIntoOnePoolGetEveryResult) {
  const std::string url = shared_redis().url(), name = unique_name("tpool");
  auto workers = start_workers(url, name, 2);
  {
    ipckit::ProcessPool pool = rd::pool(rd::Hub(url), name, {.max_pending = 64});
    std::atomic<int> done{0}, wrong{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
      ts.emplace_back([&, t] {
        std::vector<ipckit::Future<int>> fs;
        for (int i = 0; i < 150; ++i) {
          fs.push_back(pool.submit(rp_square, t * 1000 + i));
          fs.back().add_done_callback([&](ipckit::Future<int>&) { done.fetch_add(1); });
        }
        for (int i = 0; i < 150; ++i)
          if (fs[i].get(30s) != (t * 1000 + i) * (t * 1000 + i)) wrong.fetch_add(1);
      });
    for (auto& t : ts) t.join();
    pool.shutdown();
    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(pool.stats().succeeded, 600u);
  }
  stop_workers(url, name, workers);
}

}  // namespace
