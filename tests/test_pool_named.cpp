// test_pool_named.cpp — named pools: clients (ProcessPool::connect) served by
// worker processes that join by name (serve_pool).
//
// The workers here are forked children that call serve_pool: separate
// processes that share nothing with the client but the pool's name (their
// registry of tasks is this binary's, registered with IPCKIT_TASK). Every wait
// has a deadline; each test closes its pool, which ends its workers.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/pool.hpp"
#include "ipckit/pool_tasks.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::NamedPoolOptions;
using ipckit::ProcessPool;
using ipckit::testing::Child;
using ipckit::testing::eventually;

namespace {

int named_square(int n) { return n * n; }
int named_nap_square(int n) {
  std::this_thread::sleep_for(300ms);
  return n * n;
}
long named_tag(int client, int i) { return client * 100000L + i; }
int named_hold(int ms) {  // a task that runs until its worker is killed (or `ms` pass)
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}
int named_brief(int n) {
  std::this_thread::sleep_for(2ms);
  return n;
}
int only_in_the_client(int n) { return n; }
int never_registered(int n) { return n; }

}  // namespace

IPCKIT_TASK(named_square);
IPCKIT_TASK(named_nap_square);
IPCKIT_TASK(named_tag);
IPCKIT_TASK(hold, named_hold);
IPCKIT_TASK(named_brief);

namespace {

// A pool name of this test, closed (its workers end) when the test ends.
struct PoolName {
  std::string name = ipckit::testing::unique_name("np");
  ~PoolName() {
    try {
      ipckit::close_pool(name);
    } catch (...) {
    }
  }
};

Child worker(const std::string& name, const NamedPoolOptions& options = {}) {
  return Child([name, options] { ipckit::serve_pool(name, options); });
}

}  // namespace

TEST(NamedPool, WorkersThatStartAfterTheClientSubmittedTakeTheQueuedTasks) {
  PoolName pool;
  ProcessPool client = ProcessPool::connect(pool.name);
  std::vector<ipckit::Future<int>> futures;
  for (int i = 0; i < 200; ++i) futures.push_back(client.submit(named_square, i));
  EXPECT_FALSE(futures[0].wait(50ms));  // nobody serves yet
  Child a = worker(pool.name);
  Child b = worker(pool.name);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(futures[i].get(20s), i * i);
  EXPECT_TRUE(eventually([&] { return client.workers() == 2; }));
  EXPECT_TRUE(ipckit::close_pool(pool.name));
  EXPECT_EQ(a.wait_exit(10s), 0);
  EXPECT_EQ(b.wait_exit(10s), 0);
}

// map() sends chunks of inputs: a worker program runs them with the task's
// chunk form, which IPCKIT_TASK registers beside the plain one.
TEST(NamedPool, MapRunsOverAPoolServedByOtherPrograms) {
  PoolName pool;
  Child a = worker(pool.name);
  ProcessPool client = ProcessPool::connect(pool.name);
  std::vector<int> inputs(100);
  for (int i = 0; i < 100; ++i) inputs[i] = i;
  int i = 0;
  for (int r : client.map(named_square, inputs, {.chunksize = 8})) {
    EXPECT_EQ(r, i * i);
    ++i;
  }
  EXPECT_EQ(i, 100);
  EXPECT_TRUE(ipckit::close_pool(pool.name));
  EXPECT_EQ(a.wait_exit(10s), 0);
}

TEST(NamedPool, AWorkerKilledMidTaskFailsThatTaskWithWorkerDiedAndStatsShowTheServingWorkers) {
  PoolName pool;
  ProcessPool client = ProcessPool::connect(pool.name);
  Child a = worker(pool.name);
  auto held = client.submit(named_hold, 20000);
  ASSERT_TRUE(eventually([&] { return held.running(); }));
  // Stats read from the segment: the serving worker, the task it runs.
  ipckit::PoolStats st = ProcessPool::connect(pool.name).stats();
  ASSERT_EQ(st.per_worker.size(), 1u);
  EXPECT_EQ(st.per_worker[0].pid, a.pid());
  EXPECT_NE(st.per_worker[0].task, 0u);
  EXPECT_EQ(st.running, 1u);
  a.kill();
  try {
    (void)held.get(10s);
    FAIL() << "expected WorkerDied";
  } catch (const ipckit::WorkerDied& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(a.pid())), std::string::npos) << e.what();
  }
  // The pool goes on with the next worker.
  Child b = worker(pool.name);
  EXPECT_EQ(client.submit(named_square, 9).get(20s), 81);
}

TEST(NamedPool, WithRetriesATaskWhoseWorkerProgramDiedRunsAgainOnAnotherWorker) {
  PoolName pool;
  ProcessPool client = ProcessPool::connect(pool.name, {.retries = 1});
  Child a = worker(pool.name);
  auto f = client.submit(named_nap_square, 7);
  ASSERT_TRUE(eventually([&] { return f.running(); }));
  a.kill();
  (void)a.wait_exit();
  Child b = worker(pool.name);
  EXPECT_EQ(f.get(20s), 49);
}

TEST(NamedPool, TwoClientsAtOnceEachGetOnlyTheirOwnResults) {
  PoolName pool;
  Child w1 = worker(pool.name);
  Child w2 = worker(pool.name);
  std::vector<Child> clients;
  for (int c = 1; c <= 2; ++c)
    clients.emplace_back([&pool, c] {
      ProcessPool client = ProcessPool::connect(pool.name);
      std::vector<ipckit::Future<long>> fs;
      for (int i = 0; i < 300; ++i) fs.push_back(client.submit(named_tag, c, i));
      for (int i = 0; i < 300; ++i) ASSERT_EQ(fs[i].get(20s), c * 100000L + i);
      client.shutdown();
    });
  for (Child& c : clients) EXPECT_EQ(c.wait_exit(40s), 0);
  // One after another: a third client is served by the same workers.
  EXPECT_EQ(ProcessPool::connect(pool.name).submit(named_square, 12).get(20s), 144);
}

TEST(NamedPool, AClientKilledWithTasksInFlightLeavesItsChannelToTheNextClient) {
  PoolName pool;
  const NamedPoolOptions one_client{.max_clients = 1};
  Child w = worker(pool.name, one_client);
  ipckit::testing::Signal submitted;
  Child doomed([&] {
    ProcessPool client = ProcessPool::connect(pool.name, one_client);
    for (int i = 0; i < 100; ++i) (void)client.submit(named_nap_square, i);  // 30 s of work for one worker
    submitted.post();
    std::this_thread::sleep_for(60s);
  });
  ASSERT_TRUE(submitted.wait(20s));
  // While it lives, its channel is taken.
  EXPECT_THROW((void)ProcessPool::connect(pool.name, one_client), ipckit::Full);
  doomed.kill();
  (void)doomed.wait_exit();
  // Its queued tasks are dropped: the next client's run soon.
  ProcessPool next = ProcessPool::connect(pool.name, one_client);
  auto f = next.submit(named_square, 5);
  EXPECT_EQ(f.get(10s), 25);
  next.shutdown();
  EXPECT_TRUE(ipckit::close_pool(pool.name));
  EXPECT_EQ(w.wait_exit(10s), 0);
}

TEST(NamedPool, ATaskNameTheWorkerDoesNotKnowFailsThatFutureSayingHowToRegisterIt) {
  PoolName pool;
  Child w = worker(pool.name);  // forked before the client registers the task: it does not know it
  ipckit::pool_tasks().add("only_in_the_client", only_in_the_client);
  ProcessPool client = ProcessPool::connect(pool.name);
  auto f = client.submit(only_in_the_client, 3);
  try {
    (void)f.get(20s);
    FAIL() << "expected the task to fail";
  } catch (const ipckit::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("only_in_the_client"), std::string::npos) << what;
    EXPECT_NE(what.find("IPCKIT_TASK"), std::string::npos) << what;
    EXPECT_NE(what.find(std::to_string(w.pid())), std::string::npos) << what;
  }
  EXPECT_EQ(client.submit(named_square, 4).get(20s), 16);  // the worker goes on
}

TEST(NamedPool, SubmittingAnUnregisteredFunctionIsInvalidArgument) {
  PoolName pool;
  ProcessPool client = ProcessPool::connect(pool.name);
  try {
    (void)client.submit(never_registered, 1);
    FAIL() << "expected InvalidArgument";
  } catch (const ipckit::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("IPCKIT_TASK"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)client.submit([](int n) { return n; }, 1), ipckit::InvalidArgument);
}

TEST(NamedPool, OptionsThatDifferFromThePoolsAreTypeMismatchAndBadOnesInvalidArgument) {
  PoolName pool;
  ProcessPool first = ProcessPool::connect(pool.name, {.max_pending = 16});
  try {
    (void)ProcessPool::connect(pool.name, {.max_pending = 32});
    FAIL() << "expected TypeMismatch";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("max_pending 16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ipckit::serve_pool(pool.name, {.max_workers = 3}), ipckit::TypeMismatch);
  EXPECT_THROW((void)ProcessPool::connect(pool.name + "x", {.max_pending = 0}), ipckit::InvalidArgument);
  EXPECT_THROW((void)ProcessPool::connect("", {}), ipckit::InvalidArgument);
}

TEST(NamedPool, ClosePoolEndsServePoolAndAStopFlagToo) {
  PoolName pool;
  Child w = worker(pool.name);
  ProcessPool client = ProcessPool::connect(pool.name);
  EXPECT_EQ(client.submit(named_square, 3).get(20s), 9);
  EXPECT_TRUE(ipckit::close_pool(pool.name));
  EXPECT_EQ(w.wait_exit(10s), 0);
  EXPECT_THROW((void)client.submit(named_square, 3), ipckit::Closed);
  EXPECT_FALSE(ipckit::close_pool(pool.name));

  PoolName other;
  static volatile std::sig_atomic_t stop = 0;
  ipckit::testing::Signal serving;
  Child flagged([&] {
    std::signal(SIGUSR1, [](int) { stop = 1; });
    serving.post();
    ipckit::serve_pool(other.name, {.stop = &stop});
  });
  ASSERT_TRUE(serving.wait(10s));
  ProcessPool c2 = ProcessPool::connect(other.name);
  EXPECT_EQ(c2.submit(named_square, 6).get(20s), 36);  // it serves
  flagged.kill(SIGUSR1);
  EXPECT_EQ(flagged.wait_exit(10s), 0);
}

TEST(NamedPool, TasksQueuedWhenThePoolIsClosedWithNoWorkerFailWithClosed) {
  PoolName pool;
  ProcessPool client = ProcessPool::connect(pool.name);
  auto f = client.submit(named_square, 2);
  EXPECT_TRUE(ipckit::close_pool(pool.name));
  EXPECT_THROW((void)f.get(10s), ipckit::Closed);
  client.shutdown();  // nothing left to wait for
}

TEST(NamedPool, WorkersThatStartLateAndDieRepeatedlyStillServeEveryTaskWithRetries) {
  PoolName pool;
  ProcessPool client = ProcessPool::connect(pool.name, {.retries = 50});
  std::vector<ipckit::Future<int>> futures;
  for (int i = 0; i < 400; ++i) futures.push_back(client.submit(named_brief, i));
  std::optional<Child> workers[2];
  workers[0].emplace(worker(pool.name));
  workers[1].emplace(worker(pool.name));
  // Kill a worker in the middle of the run, start another, again and again.
  for (int round = 0; round < 12; ++round) {
    std::this_thread::sleep_for(25ms);
    workers[round % 2]->kill();
    (void)workers[round % 2]->wait_exit();
    workers[round % 2].emplace(worker(pool.name));
  }
  for (int i = 0; i < 400; ++i) ASSERT_EQ(futures[i].get(30s), i);
  const ipckit::PoolStats st = client.stats();
  EXPECT_EQ(st.succeeded, 400u);
  EXPECT_GE(st.restarts, 1u);  // killed workers' indexes were taken over
}

// The pool's segment has a table slot for every worker and client it allows
// (and its owner), so `ipckit ps` lists them all.
TEST(NamedPool, ItsSegmentListsEveryWorkerAndClientItAllows) {
  PoolName pool;
  NamedPoolOptions o;
  o.max_workers = 100;
  o.max_clients = 10;
  ProcessPool client = ProcessPool::connect(pool.name, o);
  ipckit::OpenOptions look;
  look.any_owner = true;
  EXPECT_GE(ipckit::Segment::open("ipckit.pool." + pool.name, look).info().max_processes, 111u);
}
