// test_pool_worker.cpp — ProcessPool's per-worker setup: the initializer,
// worker_local state and its teardown, and task exceptions of registered types.
//
// The initializer is a plain function pointer run in forked workers, so it
// talks to the test through what the workers inherit: counters in a segment
// of the test's own (g_c) and a pipe the teardown writes records into.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "ipckit/task_error.hpp"
#include "ipckit/worker_local.hpp"
#include "pool_test.hpp"

using ipckit::EmptyWorkerLocal;
using ipckit::ProcessError;

// Exception types with predictable demangled names.
namespace pool_worker_test {
struct Registered : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct RegisteredChild : Registered {  // not registered itself
  using Registered::Registered;
};
struct FromCString : std::exception {
  explicit FromCString(const char* m) : msg(m) {}
  const char* what() const noexcept override { return msg.c_str(); }
  std::string msg;
};
struct LateRegistered : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct IpcFlavoured : ipckit::Error {
  using Error::Error;
};
template <int N>
struct Tagged : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace pool_worker_test
namespace pwt = pool_worker_test;

namespace {

// ---------------------------------------------------------------- what workers inherit

// Indices into the counters.
enum : std::size_t { kInits, kFailFrom, kPidCount, kPids, kCounters = kPids + 32 };
std::uint32_t* g_c = nullptr;
std::atomic_ref<std::uint32_t> counter(std::size_t i) { return at(g_c[i]); }

// Counters in a segment of the test's own, which every worker inherits.
struct Counters {
  Counters()
      : name("pool_worker"), seg(Segment::create(name.name, 1 << 16)), c(seg.array<std::uint32_t>("c", kCounters)) {
    g_c = &c[0];
  }
  ~Counters() { g_c = nullptr; }
  Counters(const Counters&) = delete;
  Counters& operator=(const Counters&) = delete;
  [[nodiscard]] std::uint32_t of(std::size_t i) const { return counter(i).load(); }
  [[nodiscard]] std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (std::uint32_t i = 0; i < std::min<std::uint32_t>(of(kPidCount), 32); ++i)
      out.push_back(static_cast<pid_t>(of(kPids + i)));
    return out;
  }
  ScopedSegmentName name;
  Segment seg;
  ipckit::Array<std::uint32_t> c;
};

// A worker's own state, made by the initializer.
struct WorkerState {
  pid_t pid;
  int tasks = 0;
};
ipckit::worker_local<WorkerState> g_state{"state"};
ipckit::worker_local<int> g_never_filled{"never_filled"};

// Counts an initializer's run and records its pid; how many ran before.
std::uint32_t record_start() {
  const std::uint32_t slot = counter(kPidCount).fetch_add(1);
  if (slot < 32) counter(kPids + slot).store(static_cast<std::uint32_t>(::getpid()));
  return counter(kInits).fetch_add(1);
}

// Throws once kFailFrom is reached (kFailFrom = 0: never).
void counting_initializer() {
  const std::uint32_t n = record_start();
  const std::uint32_t fail_from = counter(kFailFrom).load();
  if (fail_from != 0 && n + 1 >= fail_from) throw std::runtime_error("no database at /nowhere");
  g_state.emplace(WorkerState{::getpid()});
}

struct Seen {
  std::int32_t stored_pid;  // what the initializer put in g_state
  std::int32_t pid;         // the worker's getpid()
  std::int32_t count;       // this worker's tasks so far, this one included
};
Seen whoami(int) {
  WorkerState& s = *g_state;
  std::this_thread::sleep_for(200us);  // lets the other workers take tasks too
  return {s.pid, ::getpid(), ++g_state->tasks};
}
int square(int x) { return x * x; }
int read_never_filled(int) { return g_never_filled.get(); }

// Teardown records: the tag of a Probe destroyed, and in which process.
int g_teardown_wr = -1;
struct TeardownRecord {
  pid_t pid;
  char tag;
};
struct Probe {
  explicit Probe(char t) : tag(t) {}
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;
  ~Probe() {
    const TeardownRecord r{::getpid(), tag};
    (void)!::write(g_teardown_wr, &r, sizeof r);  // smaller than PIPE_BUF: whole
  }
  char tag;
};
ipckit::worker_local<Probe> g_first{"first"};
ipckit::worker_local<Probe> g_second{"second"};
ipckit::worker_local<Probe> g_parents{"parents"};
void probing_initializer() {
  g_first.emplace('A');
  g_second.emplace('B');
}
// Whether the worker sees the pool process's Probe (a copy of its bytes).
bool sees_parents_probe(int) { return g_parents.has_value() && g_parents->tag == 'P'; }

void throwing_initializer() {
  (void)record_start();
  throw pwt::Registered("the initializer gives up");
}
void int_throwing_initializer() { throw 42; }
void dying_initializer() {
  (void)record_start();
  ::raise(SIGKILL);
}

enum class Throw : int { registered, child, cstring, late, ipc, unregistered, domain };
int thrower(Throw what) {
  switch (what) {
    case Throw::registered:
      throw pwt::Registered("registered 1");
    case Throw::child:
      throw pwt::RegisteredChild("child 2");
    case Throw::cstring:
      throw pwt::FromCString("from a C string 3");
    case Throw::late:
      throw pwt::LateRegistered("late 4");
    case Throw::ipc:
      throw pwt::IpcFlavoured("ignored", "ipc flavoured 5");
    case Throw::unregistered:
      throw std::length_error("unregistered 6");
    case Throw::domain:
      throw std::domain_error("domain 7");
  }
  return 0;
}

void register_test_types() {
  ipckit::register_task_error<pwt::Registered>();
  ipckit::register_task_error<pwt::FromCString>();
  ipckit::register_task_error<pwt::IpcFlavoured>();
}

// ---------------------------------------------------------------- checks

bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// The message of the ProcessError the pool's constructor throws with this initializer.
std::string start_failure(void (*initializer)(), unsigned workers, std::vector<pid_t>* started = nullptr) {
  Counters c;
  std::string msg;
  const auto t0 = Clock::now();
  try {
    ProcessPool pool({.workers = workers, .initializer = initializer, .name = "doomed"});
    ADD_FAILURE() << "the pool started although its initializer fails";
  } catch (const ProcessError& e) {
    msg = e.what();
  }
  EXPECT_LT(Clock::now() - t0, 20s) << "the failed start took too long";
  if (started != nullptr) *started = c.pids();
  return msg;
}

// get() must throw E; its what() (empty if something else happened).
template <class E, class R>
std::string thrown(Future<R> f) {
  try {
    (void)f.get(20s);
    ADD_FAILURE() << "get() returned a value";
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "get() threw something else: " << e.what();
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------- initializer and worker_local

// The constructor returns once every worker ran the initializer; a
// replacement runs it too, before its first task.
TEST(PoolInitializer, RunsOnceInEachWorkerAndInAReplacement) {
  Counters c;
  ProcessPool pool({.workers = 3, .initializer = counting_initializer});
  EXPECT_EQ(c.of(kInits), 3u) << "the constructor returned before every initializer ran";
  const std::vector<pid_t> first = pool.worker_pids();
  ASSERT_EQ(first.size(), 3u);
  const std::vector<pid_t> initialized = c.pids();
  EXPECT_EQ(std::set<pid_t>(first.begin(), first.end()), std::set<pid_t>(initialized.begin(), initialized.end()));

  ASSERT_EQ(::kill(first[1], SIGKILL), 0);
  EXPECT_TRUE(eventually([&] { return pool.restarts() == 1 && pool.worker_pids().size() == 3; }));
  EXPECT_TRUE(eventually([&] { return c.of(kInits) == 4; }));
  std::vector<Future<Seen>> fs;
  for (int i = 0; i < 60; ++i) fs.push_back(pool.submit(whoami, i));
  for (auto& f : fs) {
    const Seen s = f.get(20s);
    EXPECT_EQ(s.stored_pid, s.pid) << "a task saw another process's state";
    EXPECT_NE(s.pid, first[1]);
  }
  EXPECT_EQ(c.of(kInits), 4u) << "an initializer ran more than once in a worker";
}

// Each worker has its own state, kept from task to task; the pool's own
// process has an empty slot.
TEST(PoolInitializer, WorkerLocalStateIsPerWorkerAndKeptAcrossTasks) {
  Counters c;
  ProcessPool pool({.workers = 2, .initializer = counting_initializer});
  std::vector<Future<Seen>> fs;
  for (int i = 0; i < 200; ++i) fs.push_back(pool.submit(whoami, i));
  std::map<pid_t, std::vector<int>> counts;
  for (auto& f : fs) {
    const Seen s = f.get(20s);
    EXPECT_EQ(s.stored_pid, s.pid);
    counts[s.pid].push_back(s.count);
  }
  for (auto& [pid, seen] : counts) {
    std::sort(seen.begin(), seen.end());
    for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], static_cast<int>(i) + 1) << "worker " << pid;
  }
  EXPECT_LE(counts.size(), 2u);
  EXPECT_FALSE(g_state.has_value()) << "the pool's own process got a worker's state";
  EXPECT_FALSE(static_cast<bool>(g_state));
}

// Teardown at the worker's normal end: the last emplaced first; a copy
// inherited from the pool's process is not destroyed by the workers.
TEST(PoolInitializer, TeardownRunsAtShutdownLastEmplacedFirst) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0);
  g_teardown_wr = fds[1];
  g_parents.emplace('P');
  std::vector<pid_t> workers;
  {
    ProcessPool pool({.workers = 2, .initializer = probing_initializer});
    workers = pool.worker_pids();
    EXPECT_TRUE(pool.submit(sees_parents_probe, 0).get(20s)) << "a worker inherits the filled slot (documented)";
    pool.shutdown();
  }
  g_parents.reset();  // destroyed here, in the process that made it
  std::map<pid_t, std::string> order;
  TeardownRecord r{};
  while (::read(fds[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r)) order[r.pid] += r.tag;
  g_teardown_wr = -1;
  ::close(fds[0]);
  ::close(fds[1]);
  ASSERT_EQ(workers.size(), 2u);
  for (pid_t w : workers) EXPECT_EQ(order[w], "BA") << "worker " << w;
  EXPECT_EQ(order[::getpid()], "P");
  EXPECT_EQ(order.size(), 3u);
}

TEST(PoolInitializer, UsingAnEmptyWorkerLocalFailsTheTaskWithEmptyWorkerLocal) {
  ProcessPool pool({.workers = 1});
  try {
    (void)pool.submit(read_never_filled, 0).get(20s);
    ADD_FAILURE() << "reading an empty worker_local gave a value";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.type_name(), "ipckit::EmptyWorkerLocal");
    EXPECT_TRUE(contains(e.message(), "never_filled")) << e.message();
    EXPECT_TRUE(contains(e.message(), "initializer")) << e.message();
  }
  try {
    (void)g_never_filled.get();
    ADD_FAILURE() << "get() of an empty slot returned";
  } catch (const EmptyWorkerLocal& e) {
    EXPECT_TRUE(contains(e.what(), "'never_filled' <int>")) << e.what();
    EXPECT_TRUE(contains(e.what(), "emplace()")) << e.what();
    EXPECT_EQ(e.object(), "never_filled");
  }
  EXPECT_THROW((void)*g_never_filled, EmptyWorkerLocal);
  const ipckit::worker_local<std::string> unnamed;
  EXPECT_THROW((void)unnamed->size(), EmptyWorkerLocal);
  ipckit::worker_local<std::string> filled{"filled"};
  EXPECT_EQ(filled.emplace(3, 'x'), "xxx");
  EXPECT_EQ(filled.emplace("again"), "again");  // replaces the value
  filled.reset();
  EXPECT_FALSE(filled.has_value());
}

// ---------------------------------------------------------------- initializer failures

// A failing initializer fails the start: ProcessError naming the pool, the
// pid, the type and the message; no worker is left.
TEST(PoolInitializer, AnInitializerThatThrowsFailsTheStartAndLeavesNoWorker) {
  std::vector<pid_t> started;
  const std::string msg = start_failure(throwing_initializer, 3, &started);
  EXPECT_TRUE(contains(msg, "pool 'doomed' was not started")) << msg;
  EXPECT_TRUE(contains(msg, "pool_worker_test::Registered")) << msg;
  EXPECT_TRUE(contains(msg, "the initializer gives up")) << msg;
  EXPECT_TRUE(contains(msg, "PoolOptions::initializer")) << msg;
  ASSERT_FALSE(started.empty());
  EXPECT_TRUE(std::any_of(started.begin(), started.end(), [&](pid_t p) {
    return contains(msg, "worker pid " + std::to_string(p));
  })) << msg;
  for (pid_t p : started) EXPECT_TRUE(gone(p)) << "worker " << p << " outlived the failed start";
}

// One worker of three fails: the two that initialized are stopped too.
TEST(PoolInitializer, OneFailingWorkerFailsTheStartAndTheOthersAreStopped) {
  Counters c;
  counter(kFailFrom).store(2);  // the second initializer to run throws
  std::string msg;
  try {
    ProcessPool pool({.workers = 3, .initializer = counting_initializer, .name = "half"});
    ADD_FAILURE() << "the pool started";
  } catch (const ProcessError& e) {
    msg = e.what();
  }
  EXPECT_TRUE(contains(msg, "std::runtime_error: no database at /nowhere")) << msg;
  const auto pids = c.pids();
  EXPECT_EQ(pids.size(), 3u);
  for (pid_t p : pids) EXPECT_TRUE(gone(p)) << "worker " << p << " outlived the failed start";
}

TEST(PoolInitializer, AnInitializerThrowingANonStdExceptionOrDyingFailsTheStart) {
  std::string msg = start_failure(int_throwing_initializer, 2);
  EXPECT_TRUE(contains(msg, "threw int")) << msg;
  std::vector<pid_t> started;
  msg = start_failure(dying_initializer, 2, &started);
  EXPECT_TRUE(contains(msg, "killed by signal 9")) << msg;
  EXPECT_TRUE(contains(msg, "before its initializer finished")) << msg;
  EXPECT_EQ(started.size(), 2u);
  for (pid_t p : started) EXPECT_TRUE(gone(p)) << "worker " << p << " outlived the failed start";
}

// A replacement whose initializer fails is not replaced again; the pool
// goes on with the workers it has.
TEST(PoolInitializer, AReplacementWhoseInitializerFailsIsNotRespawned) {
  Counters c;
  ProcessPool pool({.workers = 2, .initializer = counting_initializer});
  counter(kFailFrom).store(1);  // from now on every initializer throws
  const pid_t victim = pool.worker_pids().at(0);
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  EXPECT_TRUE(eventually([&] { return c.of(kInits) == 3 && pool.worker_pids().size() == 1; }, 20s));
  std::this_thread::sleep_for(500ms);  // a respawn loop would start more meanwhile
  EXPECT_EQ(c.of(kInits), 3u) << "the failed replacement was started again";
  EXPECT_EQ(pool.restarts(), 1u);
  std::vector<Future<int>> fs;
  for (int i = 0; i < 50; ++i) fs.push_back(pool.submit(square, i));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(fs[static_cast<std::size_t>(i)].get(20s), i * i);
}

// With no worker left, every pending future fails (now and later) with
// WorkerDied naming the initializer, and shutdown() returns.
TEST(PoolInitializer, WithNoWorkerLeftEveryFutureFailsWithWorkerDied) {
  Counters c;
  ProcessPool pool({.workers = 1, .initializer = counting_initializer, .name = "lonely"});
  counter(kFailFrom).store(1);
  ASSERT_EQ(::kill(pool.worker_pids().at(0), SIGKILL), 0);
  std::vector<Future<int>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(pool.submit(square, i));
  for (auto& f : fs) {
    const std::string msg = thrown<WorkerDied>(f);
    EXPECT_TRUE(contains(msg, "no worker left")) << msg;
    EXPECT_TRUE(contains(msg, "no database at /nowhere")) << msg;
  }
  EXPECT_TRUE(contains(thrown<WorkerDied>(pool.submit(square, 1)), "initializer"));
  EXPECT_EQ(c.of(kInits), 2u);
  pool.shutdown();
}

// ---------------------------------------------------------------- registered task errors

TEST(PoolTaskErrors, RegisteredTypesArriveAsThemselvesOthersAsTaskError) {
  register_test_types();
  ProcessPool pool({.workers = 2, .name = "errs"});
  EXPECT_EQ(thrown<pwt::Registered>(pool.submit(thrower, Throw::registered)), "registered 1");
  EXPECT_EQ(thrown<pwt::FromCString>(pool.submit(thrower, Throw::cstring)), "from a C string 3");
  try {
    (void)pool.submit(thrower, Throw::ipc).get(20s);
    ADD_FAILURE() << "no exception";
  } catch (const pwt::IpcFlavoured& e) {
    EXPECT_STREQ(e.what(), "ipc flavoured 5");
    EXPECT_TRUE(contains(e.object(), "of pool 'errs'")) << e.object();
  }
  // Exact types only: an unregistered subclass of a registered type is a TaskError.
  for (const Throw t : {Throw::child, Throw::unregistered, Throw::late}) {
    try {
      (void)pool.submit(thrower, t).get(20s);
      ADD_FAILURE() << "no exception";
    } catch (const TaskError& e) {
      EXPECT_FALSE(e.type_name().empty());
    }
  }
  // Registered after the pool started (only the receiving process looks).
  ipckit::register_task_error<pwt::LateRegistered>();
  EXPECT_EQ(thrown<pwt::LateRegistered>(pool.submit(thrower, Throw::late)), "late 4");
  try {
    (void)pool.submit(thrower, Throw::domain).get(20s);
    ADD_FAILURE() << "no exception";
  } catch (const TaskError& e) {
    EXPECT_EQ(e.type_name(), "std::domain_error");
    EXPECT_EQ(e.message(), "domain 7");
  }
}

TEST(PoolTaskErrors, TaskFailureUsesTheRegistryAndRegistrationIsThreadSafe) {
  // Whether task_failure() makes an E (whose message is "m") for the type name.
  const auto rethrows_as = []<class E>(const std::string& type, const E* /*which*/) {
    try {
      std::rethrow_exception(ipckit::detail::task_failure("task 1", type, "m"));
    } catch (const E& e) {
      if constexpr (std::is_same_v<E, TaskError>)
        return e.message() == "m";
      else
        return std::string(e.what()) == "m";
    } catch (...) {
    }
    return false;
  };
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        ipckit::register_task_error<pwt::Tagged<1>>();
        ipckit::register_task_error<pwt::Tagged<2>>();
        wrong += rethrows_as("pool_worker_test::Tagged<1>", static_cast<pwt::Tagged<1>*>(nullptr)) ? 0 : 1;
        wrong += rethrows_as("pool_worker_test::Tagged<3>", static_cast<TaskError*>(nullptr)) ? 0 : 1;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_TRUE(rethrows_as("pool_worker_test::Tagged<2>", static_cast<pwt::Tagged<2>*>(nullptr)));
  try {
    std::rethrow_exception(ipckit::detail::task_failure("task 9 of pool 'p'", "no::Such", "what it said"));
  } catch (const TaskError& e) {
    EXPECT_STREQ(e.what(), "ipckit: task 9 of pool 'p' threw no::Such: what it said");
    EXPECT_EQ(e.object(), "task 9 of pool 'p'");
  }
}
