// test_process.cpp — ipckit::Process with real child processes.
//
// Synchronisation is by pipes (a child reports its pid, or waits for a byte)
// and every wait has a deadline, so a broken build fails a test instead of
// hanging it. Children that must stay alive for a while wait on a Gate with a
// generous bound; they are killed or released long before it.
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/process.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::Process;
using ipckit::ProcessError;
using Clock = std::chrono::steady_clock;

namespace {

// A pipe; both ends close-on-exec (fork children still inherit them).
struct Pipe {
  int rd = -1, wr = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    rd = fds[0];
    wr = fds[1];
  }
  ~Pipe() {
    if (rd >= 0) ::close(rd);
    if (wr >= 0) ::close(wr);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  void write_int(int v) const {
    if (::write(wr, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) throw std::runtime_error("pipe write failed");
  }
  // The next int, or nullopt if none arrived before the deadline.
  [[nodiscard]] std::optional<int> read_int(std::chrono::milliseconds timeout) const {
    if (!readable(timeout)) return std::nullopt;
    int v = 0;
    ssize_t n;
    do n = ::read(rd, &v, sizeof v);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof v)) return std::nullopt;
    return v;
  }
  [[nodiscard]] bool readable(std::chrono::milliseconds timeout) const {
    auto end = Clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      if (left < 0) return false;
      pollfd p{rd, POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r == 0) return false;
      if (errno != EINTR) return false;
    }
  }
};

// Children wait for `open()`; each open(n) releases n waiters.
struct Gate {
  Pipe pipe;
  void open(int n = 1) const {
    for (int i = 0; i < n; ++i) pipe.write_int(1);
  }
  // In a child: true if released, false if the bound passed first.
  [[nodiscard]] bool wait(std::chrono::milliseconds bound = 20s) const { return pipe.read_int(bound).has_value(); }
};

// /proc/<pid>/stat: state letter and start time; nullopt when the pid is gone.
struct ProcStat {
  char state;
  unsigned long long start;
};
std::optional<ProcStat> proc_stat(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(f, text)) return std::nullopt;
  auto close_paren = text.rfind(')');  // the command name may contain spaces
  if (close_paren == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close_paren + 2));
  ProcStat st{};
  rest >> st.state;
  std::string skip;
  for (int field = 4; field < 22; ++field) rest >> skip;  // fields 4..21
  rest >> st.start;                                       // field 22
  return st;
}

// True once `pid` (started at `start`) has been reaped by its parent: its
// /proc entry is gone, or the pid now names a process started later.
bool wait_reaped(pid_t pid, unsigned long long start, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  for (;;) {
    auto st = proc_stat(pid);
    if (!st || st->start != start) return true;
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(2ms);
  }
}

// Redirects a file descriptor (1 or 2) into a temporary file while alive;
// children started meanwhile inherit it. text() reads what was written.
class Capture {
 public:
  explicit Capture(int fd) : fd_(fd) {
    std::cout.flush();
    std::fflush(nullptr);
    file_ = std::tmpfile();
    saved_ = ::dup(fd_);
    ::dup2(::fileno(file_), fd_);
  }
  ~Capture() {
    restore();
    std::fclose(file_);
  }
  void restore() {
    if (saved_ < 0) return;
    std::cout.flush();
    std::fflush(nullptr);
    ::dup2(saved_, fd_);
    ::close(saved_);
    saved_ = -1;
  }
  std::string text() const {
    std::string out;
    char buf[4096];
    off_t off = 0;
    ssize_t n;
    while ((n = ::pread(::fileno(file_), buf, sizeof buf, off)) > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      off += n;
    }
    return out;
  }

 private:
  int fd_;
  int saved_ = -1;
  std::FILE* file_ = nullptr;
};

bool has_child(pid_t pid) {
  auto kids = ipckit::active_children();
  return std::any_of(kids.begin(), kids.end(), [&](const ipckit::ChildInfo& c) { return c.pid == pid; });
}

// Marks this test process as the reaper of orphaned descendants while alive,
// so a grandchild whose parent died is re-parented to us and we can waitpid
// it — an exact answer to "is it dead, and how did it end" (PID 1 of a
// container may never reap it).
struct SubreaperScope {
  SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

// Waits for an orphan re-parented to us; its exit code (negative signal), or
// nullopt if it is still running at the deadline.
std::optional<int> reap_orphan(pid_t pid, std::chrono::milliseconds timeout) {
  auto end = Clock::now() + timeout;
  for (;;) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
    // 0: still running; ECHILD: not yet re-parented to us.
    if (Clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(2ms);
  }
}

}  // namespace

// --- exit codes ----------------------------------------------------------

TEST(Process, ReturnGivesExitCodeZero) {
  Process p([] {});
  p.start();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
}

TEST(Process, ExceptionGivesExitCodeOneAndMessage) {
  Capture err(2);
  Process p([] { throw std::runtime_error("boom at step 3"); }, {.name = "thrower"});
  p.start();
  err.restore();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 1);
  std::string expected = "ipckit: process 'thrower' (pid " + std::to_string(p.pid()) + ") failed: boom at step 3\n";
  EXPECT_NE(err.text().find(expected), std::string::npos) << "stderr was: " << err.text();
}

TEST(Process, NonStdExceptionAlsoGivesExitCodeOne) {
  Capture err(2);
  Process p([] { throw 42; }, {.name = "odd-thrower"});
  p.start();
  err.restore();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 1);
  EXPECT_NE(err.text().find("ipckit: process 'odd-thrower' (pid "), std::string::npos) << err.text();
}

TEST(Process, UnderscoreExitCodeIsReported) {
  Process p([] { ::_exit(7); });
  p.start();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 7);
}

TEST(Process, KillGivesMinusNine) {
  Gate never;
  Process p([&] { (void)never.wait(); });
  p.start();
  p.kill();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), -9);
  p.kill();  // ended: a no-op
  p.terminate();
}

TEST(Process, TerminateGivesMinusFifteen) {
  Gate never;
  Pipe ready;
  Process p([&] {
    ready.write_int(1);
    (void)never.wait();
  });
  p.start();
  ASSERT_TRUE(ready.read_int(30s));  // it runs the function (not just forked)
  p.terminate();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), -15);
}

TEST(Process, NormalExitFlushesStdoutAndParentBufferIsNotDuplicated) {
  Capture out(1);
  std::printf("parent-before-start;");  // still buffered: start() must flush it, once
  Process p([] {
    std::cout << "child-cout;";  // neither flushed nor newline-terminated
    std::printf("child-printf;");
  });
  p.start();
  out.restore();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
  std::string text = out.text();
  EXPECT_NE(text.find("child-cout;"), std::string::npos) << text;
  EXPECT_NE(text.find("child-printf;"), std::string::npos) << text;
  auto first = text.find("parent-before-start;");
  ASSERT_NE(first, std::string::npos) << text;
  EXPECT_EQ(text.find("parent-before-start;", first + 1), std::string::npos) << "printed twice: " << text;
}

// --- join, is_alive, exitcode ----------------------------------------------

TEST(Process, JoinWithTimeoutFalseThenTrue) {
  Gate go;
  Process p([&] {
    if (!go.wait()) ::_exit(99);
  });
  p.start();
  EXPECT_FALSE(p.join(50ms));
  EXPECT_FALSE(p.join(0ns));
  EXPECT_FALSE(p.join(-5s));  // negative: just a look
  EXPECT_TRUE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::nullopt);
  go.open();
  EXPECT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(p.join(0ns));  // stays ended
}

TEST(Process, JoinWithHugeTimeoutDoesNotOverflow) {
  Process p([] {});
  p.start();
  EXPECT_TRUE(p.join(std::chrono::nanoseconds::max()));
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, IsAliveTransitions) {
  Gate go;
  Process p([&] { (void)go.wait(); });
  EXPECT_FALSE(p.is_alive());  // not started
  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_EQ(p.pid(), 0);
  p.start();
  EXPECT_GT(p.pid(), 0);
  EXPECT_TRUE(p.is_alive());
  go.open();
  p.join();
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_GT(p.pid(), 0);  // kept after the end, as in Python
}

TEST(Process, IsAliveTurnsFalseWithoutJoin) {
  Process p([] { ::_exit(4); });
  p.start();
  auto end = Clock::now() + 30s;
  while (p.is_alive() && Clock::now() < end) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), 4);
}

// --- names -----------------------------------------------------------------

TEST(Process, DefaultAndCustomNames) {
  Process a([] {});
  Process b([] {});
  Process c([] {}, {.name = "worker-1"});
  EXPECT_EQ(a.name().rfind("Process-", 0), 0u) << a.name();
  EXPECT_EQ(b.name().rfind("Process-", 0), 0u) << b.name();
  EXPECT_NE(a.name(), b.name());
  EXPECT_EQ(c.name(), "worker-1");
  EXPECT_FALSE(a.daemon());
  EXPECT_TRUE(Process([] {}, {.daemon = true}).daemon());
}

TEST(Process, ChildrenOfAChildAreNumberedUnderIt) {
  Pipe out;
  Process parent([&] {
    Process inner([] {});
    // Report whether the name is "<parent's name>:1" (Python's scheme).
    out.write_int(inner.name() == std::string(parent.name()) + ":1" ? 1 : 0);
  });
  parent.start();
  EXPECT_EQ(out.read_int(30s), 1) << parent.name();
  ASSERT_TRUE(parent.join(30s));
  EXPECT_EQ(parent.exitcode(), 0);
}

// --- exec ------------------------------------------------------------------

TEST(Process, ExecTrueFromPathAndByAbsolutePath) {
  auto a = Process::exec({"true"});
  auto b = Process::exec({"/bin/true"}, {.name = "abs-true"});
  EXPECT_GT(a.pid(), 0);
  EXPECT_EQ(b.name(), "abs-true");
  ASSERT_TRUE(a.join(30s));
  ASSERT_TRUE(b.join(30s));
  EXPECT_EQ(a.exitcode(), 0);
  EXPECT_EQ(b.exitcode(), 0);
}

TEST(Process, ExecShellExitCodeAndArguments) {
  auto p = Process::exec({"/bin/sh", "-c", "exit 3"});
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 3);
  auto q = Process::exec({"sh", "-c", "test \"$1\" = 'two words'", "sh", "two words"});
  ASSERT_TRUE(q.join(30s));
  EXPECT_EQ(q.exitcode(), 0);
}

TEST(Process, ExecIsStartedAtOnceAndCannotStartAgain) {
  auto p = Process::exec({"/bin/true"});
  EXPECT_THROW(p.start(), ProcessError);
  p.join();
}

TEST(Process, ExecOfMissingBinaryThrows) {
  try {
    auto p = Process::exec({"/nonexistent/ipckit-no-such-binary"}, {.name = "ghost"});
    FAIL() << "exec of a missing binary returned";
  } catch (const ProcessError& e) {
    EXPECT_EQ(e.code(), std::error_code(ENOENT, std::system_category()));
    EXPECT_EQ(e.object(), "ghost");
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ipckit-no-such-binary"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'ghost'"), std::string::npos) << e.what();
  }
  try {
    auto p = Process::exec({"ipckit-no-such-binary-in-path"});
    FAIL() << "exec of a name missing from PATH returned";
  } catch (const ProcessError& e) {
    EXPECT_EQ(e.code(), std::error_code(ENOENT, std::system_category()));
    EXPECT_NE(std::string(e.what()).find("ipckit-no-such-binary-in-path"), std::string::npos) << e.what();
  }
}

TEST(Process, ExecOfNonExecutableFileThrows) {
  // Fails in the child's execve (the path has a '/'), so the errno travels
  // back through the close-on-exec pipe.
  std::string path = "/tmp/" + ipckit::testing::unique_name("not-executable");
  { std::ofstream(path) << "not a program\n"; }
  ::chmod(path.c_str(), 0644);
  try {
    auto p = Process::exec({path});
    FAIL() << "exec of a non-executable file returned";
  } catch (const ProcessError& e) {
    EXPECT_EQ(e.code(), std::error_code(EACCES, std::system_category())) << e.what();
  }
  ::unlink(path.c_str());
  EXPECT_THROW(Process::exec({"/tmp"}), ProcessError);  // a directory
}

TEST(Process, ExecFailureLeavesNoChild) {
  // Children of earlier tests may end meanwhile: no *new* child may appear.
  std::vector<pid_t> before;
  for (const auto& c : ipckit::active_children()) before.push_back(c.pid);
  EXPECT_THROW(Process::exec({"/nonexistent/x"}), ProcessError);
  for (const auto& c : ipckit::active_children())
    EXPECT_NE(std::find(before.begin(), before.end(), c.pid), before.end()) << "new child " << c.pid;
}

TEST(Process, ExecRejectsBadArgv) {
  EXPECT_THROW(Process::exec({}), ProcessError);
  EXPECT_THROW(Process::exec({""}), ProcessError);
  EXPECT_THROW(Process::exec({"/bin/echo", std::string("a\0b", 3)}), ProcessError);
}

// --- misuse ----------------------------------------------------------------

TEST(Process, EmptyTargetThrows) {
  EXPECT_THROW(Process(std::function<void()>{}), ProcessError);
  EXPECT_THROW(Process(nullptr, {.name = "nothing"}), ProcessError);
}

TEST(Process, DoubleStartThrows) {
  Process p([] {}, {.name = "once"});
  p.start();
  try {
    p.start();
    FAIL() << "second start did not throw";
  } catch (const ProcessError& e) {
    EXPECT_EQ(e.object(), "once");
    EXPECT_NE(std::string(e.what()).find("already started"), std::string::npos) << e.what();
  }
  p.join();
  EXPECT_THROW(p.start(), ProcessError);  // ended is still started
}

TEST(Process, UseBeforeStartThrows) {
  Process p([] {}, {.name = "idle"});
  EXPECT_THROW(p.join(), ProcessError);
  EXPECT_THROW(p.join(1s), ProcessError);
  EXPECT_THROW(p.terminate(), ProcessError);
  EXPECT_THROW(p.kill(), ProcessError);
  try {
    p.join();
  } catch (const ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("'idle'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("start()"), std::string::npos) << e.what();
  }
}

TEST(Process, UseFromAnotherProcessThrows) {
  Gate go;
  Process p([&] { (void)go.wait(); }, {.name = "parents-own"});
  p.start();
  // A forked copy of the handle must not join, signal or reap our child.
  ipckit::testing::Child other([&] {
    int thrown = 0;
    try {
      p.join(10ms);
    } catch (const ProcessError&) {
      ++thrown;
    }
    try {
      p.kill();
    } catch (const ProcessError&) {
      ++thrown;
    }
    try {
      (void)p.is_alive();
    } catch (const ProcessError&) {
      ++thrown;
    }
    try {
      p.start();
    } catch (const ProcessError&) {
      ++thrown;
    }
    if (thrown != 4) ::_exit(10 + thrown);
    // A forked child has no children of its own yet.
    if (!ipckit::active_children().empty()) ::_exit(20);
  });
  EXPECT_EQ(other.wait_exit(30s), 0);
  EXPECT_TRUE(p.is_alive());
  go.open();
  ASSERT_TRUE(p.join(30s));
  EXPECT_EQ(p.exitcode(), 0);
}

// --- moving ----------------------------------------------------------------

TEST(Process, MoveKeepsTheChild) {
  Process a([] { ::_exit(5); }, {.name = "mover"});
  a.start();
  pid_t pid = a.pid();
  Process b(std::move(a));
  EXPECT_EQ(b.pid(), pid);
  EXPECT_EQ(b.name(), "mover");
  EXPECT_EQ(a.pid(), 0);  // NOLINT(bugprone-use-after-move): moved-from is defined
  EXPECT_EQ(a.name(), "");
  EXPECT_THROW(a.join(), ProcessError);
  EXPECT_THROW(a.start(), ProcessError);
  EXPECT_THROW((void)a.is_alive(), ProcessError);

  std::vector<Process> all;
  all.push_back(std::move(b));
  all.emplace_back([] {});
  ASSERT_TRUE(all[0].join(30s));
  EXPECT_EQ(all[0].exitcode(), 5);

  a = std::move(all[0]);  // a moved-from handle can be assigned to
  EXPECT_EQ(a.pid(), pid);
  EXPECT_EQ(a.exitcode(), 5);
}

TEST(Process, MoveAssignOverARunningChildHandsItToTheReaper) {
  Gate go;
  Process a([&] { (void)go.wait(); });
  a.start();
  pid_t pid = a.pid();
  auto start = proc_stat(pid);
  ASSERT_TRUE(start);
  a = Process([] {});  // the old child runs on, un-joined
  go.open();
  EXPECT_TRUE(wait_reaped(pid, start->start, 30s)) << "pid " << pid << " left a zombie";
}

// --- reaping ---------------------------------------------------------------

TEST(Process, DestroyedRunningProcessLeavesNoZombie) {
  Gate go;
  pid_t pid = 0;
  std::optional<ProcStat> start;
  auto t0 = Clock::now();
  {
    Process p([&] { (void)go.wait(); });
    p.start();
    pid = p.pid();
    start = proc_stat(pid);
  }  // destroyed while running: must neither block nor leak a zombie
  EXPECT_LT(Clock::now() - t0, 10s);
  ASSERT_TRUE(start);
  EXPECT_TRUE(proc_stat(pid)) << "the destructor must not kill the child";
  go.open();
  EXPECT_TRUE(wait_reaped(pid, start->start, 30s)) << "pid " << pid << " left a zombie";
}

TEST(Process, DestroyedEndedProcessLeavesNoZombie) {
  Pipe done;
  pid_t pid = 0;
  std::optional<ProcStat> start;
  {
    Process p([&] { done.write_int(1); });
    p.start();
    pid = p.pid();
    start = proc_stat(pid);
    ASSERT_TRUE(done.read_int(30s));
  }
  ASSERT_TRUE(start);
  EXPECT_TRUE(wait_reaped(pid, start->start, 30s)) << "pid " << pid << " left a zombie";
}

TEST(Process, ManyDestroyedProcessesAreAllReaped) {
  Gate go;
  std::vector<std::pair<pid_t, unsigned long long>> pids;
  for (int i = 0; i < 20; ++i) {
    Process p([&] { (void)go.wait(); });
    p.start();
    auto st = proc_stat(p.pid());
    ASSERT_TRUE(st);
    pids.emplace_back(p.pid(), st->start);
  }
  go.open(20);
  for (auto [pid, start] : pids) EXPECT_TRUE(wait_reaped(pid, start, 30s)) << "pid " << pid;
}

TEST(Process, NeverReapsOtherChildren) {
  // A child forked without ipckit, which ends at once.
  pid_t plain = ::fork();
  ASSERT_GE(plain, 0);
  if (plain == 0) ::_exit(42);

  // Exercise every reaping path of ipckit meanwhile.
  Process a([] {});
  a.start();
  a.join();
  {
    Process b([] {});
    b.start();
  }  // the reaper
  Process c([] {});
  c.start();
  auto end = Clock::now() + 30s;
  while (c.is_alive() && Clock::now() < end) (void)ipckit::active_children();

  int st = 0;
  ASSERT_EQ(::waitpid(plain, &st, 0), plain) << "ipckit reaped a child it did not start";
  EXPECT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 42);
}

// --- active_children -------------------------------------------------------

TEST(Process, ActiveChildrenBeforeAndAfterJoin) {
  Gate go;
  Process p([&] { (void)go.wait(); }, {.name = "listed"});
  EXPECT_FALSE(has_child(p.pid()));
  p.start();
  auto kids = ipckit::active_children();
  auto it = std::find_if(kids.begin(), kids.end(), [&](const ipckit::ChildInfo& c) { return c.pid == p.pid(); });
  ASSERT_NE(it, kids.end());
  EXPECT_EQ(it->name, "listed");
  go.open();
  p.join();
  EXPECT_FALSE(has_child(p.pid()));
}

TEST(Process, ActiveChildrenReapsEndedChildren) {
  Process p([] { ::_exit(3); });
  p.start();
  auto end = Clock::now() + 30s;
  while (has_child(p.pid()) && Clock::now() < end) std::this_thread::sleep_for(1ms);
  EXPECT_FALSE(has_child(p.pid()));
  // It was reaped by active_children: the status is kept for the handle.
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), 3);
  EXPECT_TRUE(p.join(0ns));
}

// --- daemons ---------------------------------------------------------------

namespace {

// Starts an intermediate child that starts one grandchild (a Process, daemon
// or not; a function or an exec'd binary) and then waits to be killed. The
// grandchild's pid comes back through a pipe. The intermediate is then
// SIGKILLed, and the grandchild's fate is returned: its exit code (negative
// signal) if it died within the deadline, nullopt if it still runs.
std::optional<int> grandchild_fate_after_parent_sigkill(bool daemon, bool exec) {
  SubreaperScope subreaper;
  Pipe pids;
  Gate never;
  ipckit::testing::Child mid([&] {
    std::optional<Process> g;  // kept until the end: its parent dies holding it
    if (exec) {
      g = Process::exec({"/bin/sleep", "30"}, {.daemon = daemon});
      pids.write_int(g->pid());
    } else {
      g.emplace(
          [&] {
            pids.write_int(::getpid());
            (void)never.wait(30s);
          },
          ipckit::ProcessOptions{.name = "grandchild", .daemon = daemon});
      g->start();
    }
    (void)never.wait(30s);
  });
  auto gpid = pids.read_int(30s);
  if (!gpid) {
    ADD_FAILURE() << "the grandchild did not report its pid";
    return std::nullopt;
  }
  mid.kill(SIGKILL);
  EXPECT_EQ(mid.wait_exit(30s), -SIGKILL);
  auto fate = reap_orphan(*gpid, daemon ? 30s : 300ms);
  if (!fate) {  // still running (expected for a non-daemon): clean up
    ::kill(*gpid, SIGKILL);
    EXPECT_EQ(reap_orphan(*gpid, 30s), -SIGKILL);
  }
  return fate;
}

}  // namespace

TEST(Process, DaemonDiesWhenItsParentIsKilled) {
  EXPECT_EQ(grandchild_fate_after_parent_sigkill(/*daemon=*/true, /*exec=*/false), -SIGKILL);
}

TEST(Process, ExecDaemonDiesWhenItsParentIsKilled) {
  EXPECT_EQ(grandchild_fate_after_parent_sigkill(/*daemon=*/true, /*exec=*/true), -SIGKILL);
}

TEST(Process, NonDaemonOutlivesItsParent) {
  EXPECT_EQ(grandchild_fate_after_parent_sigkill(/*daemon=*/false, /*exec=*/false), std::nullopt);
}

TEST(Process, DaemonOfANormallyEndingParentDies) {
  // The parent returns without joining its daemon (the demo's case).
  SubreaperScope subreaper;
  Pipe from_grandchild, from_mid;
  Gate never;
  ipckit::testing::Child mid([&] {
    Process g(
        [&] {
          from_grandchild.write_int(::getpid());
          (void)never.wait(30s);
        },
        {.daemon = true});
    g.start();
    auto gpid = from_grandchild.read_int(30s);  // it runs; pass its pid on
    from_mid.write_int(gpid.value_or(0));
  });  // returns without joining: Process' destructor does not wait
  auto gpid = from_mid.read_int(30s);
  ASSERT_TRUE(gpid && *gpid > 0);
  EXPECT_EQ(mid.wait_exit(30s), 0);
  EXPECT_EQ(reap_orphan(*gpid, 30s), -SIGKILL);
}

// --- threads -----------------------------------------------------------------

TEST(Process, ConcurrentJoinersAgree) {
  Gate go;
  Process p([&] {
    if (go.wait()) ::_exit(17);
  });
  p.start();
  std::atomic<int> agree{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      if (i % 2) {
        p.join();
      } else {
        auto end = Clock::now() + 30s;
        while (p.is_alive() && Clock::now() < end) (void)ipckit::active_children();
      }
      if (p.exitcode() == 17) ++agree;
    });
  go.open();
  for (auto& t : threads) t.join();
  EXPECT_EQ(agree.load(), 4);
}

TEST(Process, StartsFromManyThreads) {
  std::atomic<int> right{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 8; ++i) {
        int code = t * 10 + i;
        if (i % 2) {
          auto p = Process::exec({"/bin/sh", "-c", "exit " + std::to_string(code)});
          if (p.join(30s) && p.exitcode() == code) ++right;
        } else {
          Process p([code] { ::_exit(code); });
          p.start();
          if (p.join(30s) && p.exitcode() == code) ++right;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(right.load(), 32);
}

TEST(Process, ExecIsNotHeldUpByChildrenForkedMeanwhile) {
  // Children forked by another thread while an exec is in flight inherit its
  // error pipe; they must drop it, or exec() would wait for them to end.
  Gate release;
  std::atomic<bool> stop{false};
  std::vector<Process> sleepers;
  std::thread forker([&] {
    while (!stop) {
      Process p([&] { (void)release.wait(30s); });
      p.start();
      sleepers.push_back(std::move(p));
      if (sleepers.size() >= 40) break;
    }
  });
  auto t0 = Clock::now();
  // A broken build waits up to the sleepers' bound on some exec: stop early.
  for (int i = 0; i < 30 && Clock::now() - t0 < 15s; ++i) {
    auto p = Process::exec({"/bin/true"});
    p.join();
  }
  auto took = Clock::now() - t0;
  stop = true;
  forker.join();
  release.open(static_cast<int>(sleepers.size()));
  for (auto& p : sleepers) EXPECT_TRUE(p.join(30s));
  EXPECT_LT(took, 15s) << "exec waited for unrelated children";
}
