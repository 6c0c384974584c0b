// test_process_parity.cpp — the multiprocessing process surface CPython's
// tests exercise (test_current, test_parent_process_attributes,
// test_parent_process, test_sentinel, test_close, test_cpu_count, the daemon
// assertion), with real child processes: current_process(), parent_process(),
// Process::sentinel() and close(), set_name/set_daemon, the join forms and
// cpu_count().
//
// Children report through pipes (a line each) or files, and every wait has a
// deadline, so a broken build fails a test instead of hanging it.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "ipckit/detail/thread_id.hpp"
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::Process;
using ipckit::ProcessError;
using ipckit::testing::Child;
using ipckit::testing::Signal;
using Clock = std::chrono::steady_clock;

namespace {

// Lines written by children (fork children inherit the pipe) and read by the
// test with a deadline. A line shorter than PIPE_BUF arrives whole.
class Lines {
 public:
  Lines() {
    if (::pipe2(fd_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  }
  ~Lines() {
    ::close(fd_[0]);
    ::close(fd_[1]);
  }
  Lines(const Lines&) = delete;
  Lines& operator=(const Lines&) = delete;

  void send(const std::string& line) const {
    const std::string text = line + "\n";
    if (::write(fd_[1], text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      throw std::runtime_error("pipe write failed");
  }
  // The next line, or nullopt if none came before the deadline.
  std::optional<std::string> next(std::chrono::milliseconds deadline = 30s) {
    const auto end = Clock::now() + deadline;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      pollfd p{fd_[0], POLLIN, 0};
      if (left <= 0ms || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char chunk[256];
      const ssize_t n = ::read(fd_[0], chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_[2];
  std::string buf_;
};

// "name|pid|daemon|pool_worker" of the calling process.
std::string describe_me() {
  const auto me = ipckit::current_process();
  return me.name + "|" + std::to_string(me.pid) + "|" + std::to_string(me.daemon) + "|" +
         std::to_string(me.pool_worker);
}

// "pid|name|alive" of the calling process's parent, or "none".
std::string describe_parent() {
  const auto parent = ipckit::parent_process();
  if (!parent) return "none";
  return std::to_string(parent->pid()) + "|" + parent->name() + "|" + (parent->is_alive() ? "alive" : "not alive");
}

// Whether `fd` becomes readable within `timeout`.
bool readable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  int r;
  do r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  while (r < 0 && errno == EINTR);
  return r == 1 && (p.revents & POLLIN) != 0;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream text;
  text << f.rdbuf();
  return text.str();
}

// Adopts orphaned descendants while alive, so a grandchild whose parent the
// test killed is reaped here rather than left to PID 1.
struct SubreaperScope {
  SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
  SubreaperScope(const SubreaperScope&) = delete;
  SubreaperScope& operator=(const SubreaperScope&) = delete;
};

// Waits for an orphan re-parented to us; whether it ended before the deadline
// (it is SIGKILLed and reaped otherwise).
bool reap_orphan(pid_t pid, std::chrono::milliseconds timeout) {
  const bool ended = ipckit::testing::eventually(
      [&] {
        int st = 0;
        return ::waitpid(pid, &st, WNOHANG) == pid;
      },
      timeout);
  if (!ended) {
    ::kill(pid, SIGKILL);
    ipckit::testing::eventually([&] {
      int st = 0;
      return ::waitpid(pid, &st, WNOHANG) == pid;
    });
  }
  return ended;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ProcessError& e) {
    return e.what();
  }
  return "(no ProcessError)";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

// --- current_process() / parent_process() ----------------------------------------

TEST(CurrentProcess, MainProcessAsInPython) {
  // test_current and test_parent_process_attributes: the main process.
  const auto me = ipckit::current_process();
  EXPECT_EQ(me.name, "MainProcess");
  EXPECT_EQ(me.pid, ::getpid());
  EXPECT_FALSE(me.daemon);
  EXPECT_FALSE(me.pool_worker);
  EXPECT_EQ(ipckit::parent_process(), std::nullopt);
}

TEST(CurrentProcess, ChildSeesItsOwnNameDaemonAndParent) {
  Lines out;
  Process named([&] { out.send(describe_me() + "#" + describe_parent()); }, {.name = "kid", .daemon = true});
  named.start();
  ASSERT_TRUE(named.join(30s));
  EXPECT_EQ(out.next(),
            "kid|" + std::to_string(named.pid()) + "|1|0#" + std::to_string(::getpid()) + "|MainProcess|alive");

  Process unnamed([&] { out.send(describe_me()); });  // "Process-<n>", as the parent calls it
  unnamed.start();
  ASSERT_TRUE(unnamed.join(30s));
  EXPECT_EQ(out.next(), unnamed.name() + "|" + std::to_string(unnamed.pid()) + "|0|0");
  EXPECT_EQ(unnamed.exitcode(), 0);
}

// Python: "daemonic processes are not allowed to have children".
TEST(CurrentProcess, ADaemonCannotStartChildren) {
  Lines out;
  Process daemon(
      [&] {
        Process inner([] {}, {.name = "inner"});
        try {
          inner.start();
          out.send("started");
        } catch (const ipckit::ProcessError& e) {
          out.send(e.what());
        }
      },
      {.name = "guard", .daemon = true});
  daemon.start();
  const auto said = out.next();
  ASSERT_TRUE(said);
  EXPECT_NE(said->find("cannot start process 'inner' from daemon process 'guard'"), std::string::npos) << *said;
  EXPECT_NE(said->find("non-daemon"), std::string::npos) << *said;
  ASSERT_TRUE(daemon.join(30s));
  EXPECT_EQ(daemon.exitcode(), 0);
}

TEST(CurrentProcess, GrandchildSeesItsParentNotTheMainProcess) {
  Lines out;
  Process mid(
      [&] {
        Process inner([&] { out.send(describe_me() + "#" + describe_parent()); }, {.name = "inner"});
        inner.start();
        if (!inner.join(30s)) ::_exit(3);
        out.send(std::to_string(inner.pid()));  // after the grandchild's line
      },
      {.name = "mid"});
  mid.start();
  const auto report = out.next();
  const auto inner_pid = out.next();
  ASSERT_TRUE(report && inner_pid);
  EXPECT_EQ(*report, "inner|" + *inner_pid + "|0|0#" + std::to_string(mid.pid()) + "|mid|alive");
  ASSERT_TRUE(mid.join(30s));
  EXPECT_EQ(mid.exitcode(), 0);
  // The parent's own view is unchanged by its children's.
  EXPECT_EQ(ipckit::current_process().name, "MainProcess");
}

TEST(CurrentProcess, PoolWorkerFlagIsSetByTheDetailSetterAndNotInherited) {
  Child worker([] {
    ipckit::detail::set_pool_worker(true);
    EXPECT_TRUE(ipckit::current_process().pool_worker);
    Lines out;
    Process child([&] { out.send(describe_me()); }, {.name = "task"});
    child.start();
    EXPECT_TRUE(child.join(30s));
    EXPECT_EQ(out.next(), "task|" + std::to_string(child.pid()) + "|0|0");
    ipckit::detail::set_pool_worker(false);
    EXPECT_FALSE(ipckit::current_process().pool_worker);
  });
  EXPECT_EQ(worker.wait_exit(30s), 0);
  EXPECT_FALSE(ipckit::current_process().pool_worker);
}

TEST(ParentProcess, GrandchildNoticesItsParentsDeath) {
  // CPython's test_parent_process: a child starts a grandchild, the test
  // kills the child, and the grandchild sees its parent end (join returns,
  // is_alive turns false, the sentinel becomes readable).
  SubreaperScope subreaper;
  Lines out;
  Signal never;
  Process mid(
      [&] {
        Process g(
            [&] {
              const auto parent = ipckit::parent_process();
              if (!parent) ::_exit(5);
              out.send(std::to_string(::getpid()) + "|" + (parent->is_alive() ? "alive" : "not alive") + "|" +
                       std::to_string(parent->try_join()) + "|" + std::to_string(readable(parent->sentinel(), 0ms)));
              const bool ended = parent->join(30s);
              out.send(std::string(parent->is_alive() ? "alive" : "not alive") + "|" + std::to_string(ended) + "|" +
                       std::to_string(parent->try_join()) + "|" + std::to_string(readable(parent->sentinel(), 0ms)) +
                       "|" + std::to_string(parent->join_until(std::chrono::system_clock::now() + 10s)));
            },
            {.name = "grandchild"});
        g.start();
        (void)never.wait(30s);
      },
      {.name = "mid"});
  mid.start();
  const auto first = out.next();
  ASSERT_TRUE(first);
  const std::string gpid = first->substr(0, first->find('|'));
  EXPECT_EQ(first->substr(gpid.size()), "|alive|0|0");
  mid.terminate();
  ASSERT_TRUE(mid.join(30s));
  EXPECT_EQ(mid.exitcode(), -SIGTERM);
  EXPECT_EQ(out.next(), "not alive|1|1|1|1");
  EXPECT_TRUE(reap_orphan(std::stoi(gpid), 30s));
}

TEST(ParentProcess, TimedJoinsOfALiveParentTimeOut) {
  Lines out;
  Process p([&] {
    const auto parent = ipckit::parent_process();
    if (!parent) ::_exit(5);
    const auto t0 = Clock::now();
    const bool timed = parent->join(50ms);
    const bool waited = Clock::now() - t0 >= 50ms;
    out.send(std::to_string(timed) + std::to_string(waited) + std::to_string(parent->join(-1s)) +
             std::to_string(parent->join_until(Clock::now() + 20ms)) +
             std::to_string(parent->join_until(std::chrono::system_clock::now() - 1h)) +
             std::to_string(parent->try_join()));
  });
  p.start();
  EXPECT_EQ(out.next(), "010000");
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
}

// --- sentinel ----------------------------------------------------------------

TEST(ProcessSentinel, ReadableWhenTheProcessEndsAndNotBefore) {
  // CPython's test_sentinel.
  Signal go;
  Process p(
      [&] {
        if (!go.wait(30s)) ::_exit(9);
      },
      {.name = "watched"});
  EXPECT_TRUE(contains(error_of([&] { (void)p.sentinel(); }), "never started")) << "sentinel before start";
  p.start();
  const int fd = p.sentinel();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(p.sentinel(), fd);  // one descriptor, owned by the Process
  EXPECT_FALSE(readable(fd, 0ms));
  EXPECT_FALSE(readable(fd, 100ms));  // a running child: not readable
  go.post();
  EXPECT_TRUE(readable(fd, 30s));  // it ended (before anyone reaped it)
  EXPECT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(p.sentinel(), fd);  // valid after reaping, until close()
  EXPECT_TRUE(readable(fd, 0ms));
}

TEST(ProcessSentinel, ReadableWhenTheProcessIsKilledAndForExecChildren) {
  Signal never;
  Process p([&] { (void)never.wait(30s); });
  p.start();
  auto sleeper = Process::exec({"/bin/sleep", "30"});
  EXPECT_FALSE(readable(p.sentinel(), 50ms));
  EXPECT_FALSE(readable(sleeper.sentinel(), 50ms));
  p.kill();
  sleeper.terminate();
  EXPECT_TRUE(readable(p.sentinel(), 30s));
  EXPECT_TRUE(readable(sleeper.sentinel(), 30s));
  EXPECT_TRUE(p.join(30s));
  EXPECT_TRUE(sleeper.join(30s));
  EXPECT_EQ(p.exitcode(), -SIGKILL);
  EXPECT_EQ(sleeper.exitcode(), -SIGTERM);
}

// --- close -------------------------------------------------------------------

TEST(ProcessClose, RunningProcessCannotBeClosedAndClosedOneIsUnusable) {
  // CPython's test_close.
  Signal go;
  Process p(
      [&] {
        if (!go.wait(30s)) ::_exit(9);
      },
      {.name = "closing", .daemon = true});
  p.start();
  EXPECT_TRUE(p.is_alive());
  EXPECT_TRUE(contains(error_of([&] { p.close(); }), "still running")) << "close of a running process";
  EXPECT_TRUE(p.is_alive());
  const int fd = p.sentinel();

  go.post();
  p.join();
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), 0);
  p.close();
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "close() must release the pidfd";
  EXPECT_EQ(errno, EBADF);

  const std::string closed = error_of([&] { (void)p.is_alive(); });
  EXPECT_TRUE(contains(closed, "'closing'") && contains(closed, "closed")) << closed;
  EXPECT_THROW(p.join(), ProcessError);
  EXPECT_THROW(p.join(1s), ProcessError);
  EXPECT_THROW((void)p.try_join(), ProcessError);
  EXPECT_THROW(p.join_until(Clock::now() + 1s), ProcessError);
  EXPECT_THROW(p.terminate(), ProcessError);
  EXPECT_THROW(p.kill(), ProcessError);
  EXPECT_THROW((void)p.exitcode(), ProcessError);
  EXPECT_THROW((void)p.pid(), ProcessError);
  EXPECT_THROW((void)p.sentinel(), ProcessError);
  EXPECT_THROW(p.start(), ProcessError);
  EXPECT_THROW(p.set_name("other"), ProcessError);
  EXPECT_THROW(p.set_daemon(false), ProcessError);
  EXPECT_EQ(p.name(), "closing");  // as in Python, name and daemon stay readable
  EXPECT_TRUE(p.daemon());
  p.close();  // closing again does nothing
}

TEST(ProcessClose, NeverStartedProcessClosesAndCannotStart) {
  Process p([] {}, {.name = "unused"});
  p.close();
  EXPECT_TRUE(contains(error_of([&] { p.start(); }), "closed"));
  EXPECT_THROW(p.join(), ProcessError);
}

TEST(ProcessClose, EndedButUnjoinedProcessCanBeClosed) {
  Process p([] { ::_exit(6); });
  p.start();
  const pid_t pid = p.pid();
  EXPECT_TRUE(readable(p.sentinel(), 30s));  // ended; close() reaps it
  p.close();
  int st = 0;
  EXPECT_EQ(::waitpid(pid, &st, WNOHANG), -1) << "close() left the child unreaped";
  EXPECT_EQ(errno, ECHILD);
}

TEST(ProcessClose, KilledProcessCanBeClosedAfterJoin) {
  Signal never;
  Process p([&] { (void)never.wait(30s); });
  p.start();
  p.terminate();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  EXPECT_NO_THROW(p.close());
}

// --- name / daemon setters ---------------------------------------------------

TEST(ProcessSetters, NameAndDaemonSetBeforeStartReachTheChild) {
  Lines out;
  Process p([&] { out.send(describe_me()); });
  const std::string default_name = p.name();
  p.set_name("renamed");
  p.set_daemon(true);
  EXPECT_EQ(p.name(), "renamed");
  EXPECT_TRUE(p.daemon());
  p.start();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(out.next(), "renamed|" + std::to_string(p.pid()) + "|1|0");
  EXPECT_NE(default_name, "renamed");
}

TEST(ProcessSetters, DaemonSetterReallyMakesADaemon) {
  // The child reads back its parent-death signal: SIGKILL for a daemon only.
  Lines out;
  auto report = [&] {
    int sig = -1;
    ::prctl(PR_GET_PDEATHSIG, &sig);
    out.send(std::to_string(sig));
  };
  Process daemon(report, {.daemon = false});
  daemon.set_daemon(true);
  Process plain(report, {.daemon = true});
  plain.set_daemon(false);
  daemon.start();
  ASSERT_TRUE(daemon.join(30s));
  EXPECT_EQ(out.next(), std::to_string(SIGKILL));
  plain.start();
  ASSERT_TRUE(plain.join(30s));
  EXPECT_EQ(out.next(), "0");
}

TEST(ProcessSetters, AfterStartTheyThrowAsPythonsAssertion) {
  Signal go;
  Process p([&] { (void)go.wait(30s); }, {.name = "started"});
  p.start();
  const std::string rename = error_of([&] { p.set_name("late"); });
  EXPECT_TRUE(contains(rename, "'started'") && contains(rename, "already started")) << rename;
  EXPECT_TRUE(contains(error_of([&] { p.set_daemon(true); }), "already started"));
  EXPECT_EQ(p.name(), "started");
  EXPECT_FALSE(p.daemon());
  go.post();
  ASSERT_TRUE(p.join(30s));
  EXPECT_THROW(p.set_name("later"), ProcessError);  // ended is still started

  auto e = Process::exec({"/bin/true"});  // started at once
  EXPECT_THROW(e.set_name("x"), ProcessError);
  EXPECT_THROW(e.set_daemon(true), ProcessError);
  EXPECT_TRUE(e.join(30s));
}

TEST(ProcessSetters, BadNamesAreRejected) {
  Process p([] {});
  EXPECT_THROW(p.set_name(""), ipckit::InvalidArgument);
  EXPECT_THROW(p.set_name(std::string("a\0b", 3)), ipckit::InvalidArgument);
  EXPECT_THROW(Process([] {}, {.name = std::string("x\0y", 3)}), ipckit::InvalidArgument);
  EXPECT_THROW(Process::exec({"/bin/true"}, {.name = std::string("x\0y", 3)}), ipckit::InvalidArgument);
  Process moved(std::move(p));
  EXPECT_THROW(p.set_name("x"), ProcessError);  // NOLINT(bugprone-use-after-move): moved-from throws
}

// --- join forms --------------------------------------------------------------

TEST(ProcessJoin, UntilAnyClockAndTryJoin) {
  Process idle([] {});
  EXPECT_THROW((void)idle.try_join(), ProcessError);  // never started
  EXPECT_THROW(idle.join_until(Clock::now() + 1s), ProcessError);

  Signal go;
  Process p([&] {
    if (!go.wait(30s)) ::_exit(9);
  });
  p.start();
  EXPECT_FALSE(p.try_join());
  EXPECT_FALSE(p.join_until(Clock::now() + 30ms));
  EXPECT_FALSE(p.join_until(std::chrono::system_clock::now() + 30ms));
  EXPECT_FALSE(p.join_until(Clock::now() - 1h));  // past: one look
  EXPECT_FALSE(p.join_until(Clock::time_point::min()));
  EXPECT_FALSE(p.join_until(std::chrono::system_clock::time_point::min() + 1h));
  go.post();
  EXPECT_TRUE(p.join_until(Clock::time_point::max()));  // no limit
  EXPECT_TRUE(p.try_join());
  EXPECT_TRUE(p.join_until(std::chrono::system_clock::now() - 1s));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(ProcessJoin, JoinUntilReturnsAtTheChildsEndNotAtTheDeadline) {
  Signal go;
  Process p([&] { (void)go.wait(30s); });
  p.start();
  go.post();
  const auto t0 = Clock::now();
  EXPECT_TRUE(p.join_until(std::chrono::system_clock::now() + 60s));
  EXPECT_LT(Clock::now() - t0, 20s);
}

// --- exec'd programs -----------------------------------------------------------

TEST(ProcessExec, ChildSeesItsNameDaemonFlagAndParentInTheEnvironment) {
  const std::string path = "/tmp/" + ipckit::testing::unique_name("exec-env");
  ::setenv("IPCKIT_PROCESS_NAME", "stale", 1);  // ours must not leak through
  ::setenv("IPCKIT_PROCESS_DAEMON", "1", 1);
  const std::string script =
      "printf '%s|%s|%s|%s\\n' \"$IPCKIT_PROCESS_NAME\" \"${IPCKIT_PROCESS_DAEMON-unset}\" "
      "\"$IPCKIT_PARENT_PROCESS\" \"$OTHER_VAR\" > \"$1\"";
  ::setenv("OTHER_VAR", "kept", 1);
  EXPECT_EQ(ipckit::current_process().name, "MainProcess");  // read when the program started
  auto p = Process::exec({"/bin/sh", "-c", script, "sh", path}, {.name = "exec'd worker"});
  ::unsetenv("IPCKIT_PROCESS_NAME");
  ::unsetenv("IPCKIT_PROCESS_DAEMON");
  ::unsetenv("OTHER_VAR");
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
  const auto me = ipckit::detail::this_process();
  EXPECT_EQ(slurp(path), "exec'd worker|unset|" + std::to_string(::getpid()) + ":" + std::to_string(me.start_ticks) +
                             ":MainProcess|kept\n");

  auto d = Process::exec({"/bin/sh", "-c", script, "sh", path}, {.daemon = true});
  ASSERT_TRUE(d.join(30s));
  const std::string text = slurp(path);
  EXPECT_EQ(text.substr(0, text.find('|', d.name().size() + 1)), d.name() + "|1") << text;
  ::unlink(path.c_str());
}

// The exec'd side of the next test: this binary, run again with
// IPCKIT_TEST_REPORT set, reports what ipckit tells it. Skipped otherwise.
TEST(ProcessExecChild, Report) {
  const char* report = std::getenv("IPCKIT_TEST_REPORT");
  if (report == nullptr) GTEST_SKIP() << "runs only as the exec'd child of ProcessExec.IpckitProgramKnowsItself";
  std::ofstream(report) << describe_me() << "#" << describe_parent() << "\n";
}

TEST(ProcessExec, IpckitProgramKnowsItselfAndItsParent) {
  const std::string path = "/tmp/" + ipckit::testing::unique_name("exec-report");
  ::setenv("IPCKIT_TEST_REPORT", path.c_str(), 1);
  auto p = Process::exec({"/proc/self/exe", "--gtest_filter=ProcessExecChild.Report"},
                         {.name = "self-exec", .daemon = true});
  ::unsetenv("IPCKIT_TEST_REPORT");
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(slurp(path),
            "self-exec|" + std::to_string(p.pid()) + "|1|0#" + std::to_string(::getpid()) + "|MainProcess|alive\n");
  ::unlink(path.c_str());
}

TEST(ProcessExec, MalformedParentVariableIsIgnored) {
  // A program given a garbled (or hand-written) variable has no parent
  // rather than a wrong one; a parent that has ended is reported as ended.
  const std::string path = "/tmp/" + ipckit::testing::unique_name("exec-bad-parent");
  Child c([&] {
    ::setenv("IPCKIT_TEST_REPORT", path.c_str(), 1);
    ::setenv("IPCKIT_PARENT_PROCESS", "12x:3:who", 1);
    // Not through Process::exec, which would set the variables itself.
    ::execl("/proc/self/exe", "ipckit_tests", "--gtest_filter=ProcessExecChild.Report", nullptr);
    ::_exit(127);
  });
  ASSERT_EQ(c.wait_exit(30s), 0);
  EXPECT_EQ(slurp(path), "MainProcess|" + std::to_string(c.pid()) + "|0|0#none\n");

  Child ended([&] {
    ::setenv("IPCKIT_TEST_REPORT", path.c_str(), 1);
    // pid 1 exists, but not with this start time: an ended parent whose pid was reused.
    ::setenv("IPCKIT_PARENT_PROCESS", "1:999999999999:gone", 1);
    ::execl("/proc/self/exe", "ipckit_tests", "--gtest_filter=ProcessExecChild.Report", nullptr);
    ::_exit(127);
  });
  ASSERT_EQ(ended.wait_exit(30s), 0);
  EXPECT_EQ(slurp(path), "MainProcess|" + std::to_string(ended.pid()) + "|0|0#1|gone|not alive\n");
  ::unlink(path.c_str());
}

// --- cpu_count ---------------------------------------------------------------

namespace {
int affinity_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  return CPU_COUNT(&set);
}
}  // namespace

TEST(CpuCount, IsTheAffinityMaskCount) {
  EXPECT_GE(ipckit::cpu_count(), 1u);
  EXPECT_EQ(static_cast<int>(ipckit::cpu_count()), affinity_count());
}

TEST(CpuCount, FollowsANarrowedAffinity) {
  Child narrowed([] {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
    int first = 0;
    while (!CPU_ISSET(first, &set)) ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    EXPECT_EQ(ipckit::cpu_count(), 1u);
    // A Process started from here inherits the mask, and counts the same.
    Lines out;
    Process p([&] { out.send(std::to_string(ipckit::cpu_count())); });
    p.start();
    EXPECT_TRUE(p.join(30s));
    EXPECT_EQ(out.next(), "1");
  });
  EXPECT_EQ(narrowed.wait_exit(30s), 0);
  EXPECT_EQ(static_cast<int>(ipckit::cpu_count()), affinity_count());  // ours is unchanged
}
