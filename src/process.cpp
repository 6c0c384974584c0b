// process.cpp — ipckit::Process: worker processes, started by fork (a function)
// or fork + exec (another binary).
//
// Who reaps whom. A child is reaped (waitpid on its own pid, never
// waitpid(-1), so no other child of the user is ever touched) by whichever
// ipckit call first sees it ended: join, is_alive, exitcode, active_children,
// or — once its Process handle is gone — the reaper thread. Every reap
// happens under the child's State mutex and records the exit status there, so
// a pid is waited exactly once and the status is kept for every later call.
// Until it is reaped a pid cannot be reused, so signalling it (terminate, kill)
// under that mutex always reaches the right process.
//
// Waiting without blocking others. join() never blocks inside waitpid: it
// polls a pidfd (readable once the child has ended) and then reaps with
// WNOHANG. Several threads may join, poll and signal the same child at once.
// Where pidfds are unavailable (old kernel, seccomp, out of descriptors) it
// falls back to polling waitpid with a short back-off.
//
// Locks. Each State has a mutex; the registry has one. The registry mutex is
// a leaf: nothing else is locked while it is held, so State-then-registry is
// the only order and there is no deadlock.
//
// fork() in a threaded program. Only the forking thread exists in the child;
// a mutex another thread held stays held there. A pthread_atfork handler holds
// the registry mutex across every fork() in the process, so the child gets a
// consistent registry, which it then empties: the parent's children are not
// its children. The child never touches the States of its parent's Process
// handles: every operation first checks that it runs in the process that
// created the handle.
#include "ipckit/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>
#include <utility>

extern char** environ;

namespace ipckit {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int e) { return std::system_category().message(e); }

std::string quoted(const std::string& name) { return "process '" + name + "'"; }

// An owned file descriptor shared by the State and any thread polling it:
// reaping drops the State's reference, and the descriptor is closed when the
// last poller is done with it, never under a poller's feet.
struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { ::close(fd); }
};

// Default names are "Process-<n>", numbered in creation order. In a child,
// numbering restarts under the child's own number: the children of
// "Process-2" are "Process-2:1", "Process-2:2", ... (as in Python).
std::atomic<unsigned> g_counter{0};
std::string g_identity_prefix;   // "" at the top; "2:" inside Process-2

// Flushes what this process has buffered for stdout/stderr, so the text is
// neither lost (_exit skips stdio) nor printed twice (a fork copies buffers).
void flush_std_streams() noexcept {
  try {
    std::cout.flush();
    std::clog.flush();
    std::cerr.flush();
  } catch (...) {
  }
  std::fflush(nullptr);
}

[[noreturn]] void die_like_parent() noexcept {
  // The parent died before PR_SET_PDEATHSIG took effect: end the way the
  // signal would have ended us, so the status is the same either way.
  ::kill(::getpid(), SIGKILL);
  ::_exit(128 + SIGKILL);
}

// A daemon child must not outlive its parent, however the parent dies.
//
// CAVEAT: the kernel sends PDEATHSIG when the *thread* that called fork()
// ends, not when the parent process ends. A daemon started from a thread that
// later exits is killed at that moment, although its parent lives on. Start
// daemons from a thread that lives as long as they should (e.g. main).
//
// (Also: the kernel clears PDEATHSIG when a set-user-ID or set-group-ID
// program is exec'd, so an exec'd daemon of that kind is not covered.)
//
// Only async-signal-safe calls: this runs between fork and exec.
void become_daemon_child(pid_t parent) noexcept {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ::_exit(127);
  // The parent may have died between fork and prctl; then no signal will come.
  if (::getppid() != parent) die_like_parent();
}

std::optional<int> decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return std::nullopt;
}

// Finds `file` the way execvp would (PATH, or the default path), in the
// parent: the child then only has to call execv, and a missing program is
// reported before anything is forked. Returns the path, or sets `err`.
std::string search_path(const std::string& file, int& err) {
  if (file.find('/') != std::string::npos) return file;   // used as given
  const char* env = std::getenv("PATH");
  std::string path = env ? env : "/bin:/usr/bin";
  err = ENOENT;
  std::size_t begin = 0;
  for (;;) {
    std::size_t end = path.find(':', begin);
    std::string dir = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + file;
    struct stat sb{};
    if (::stat(candidate.c_str(), &sb) == 0 && S_ISREG(sb.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      err = EACCES;   // remember, as execvp does, but keep looking
    }
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return {};
}

// What a Process handle shares with the registry and the reaper: the body of
// Process::State, defined here so that the helpers below can name it.
struct ChildState {
  // Set at construction, read-only afterwards.
  std::string name;
  std::string identity;             // "2" or "2:1": what this child's children extend
  bool daemon = false;
  pid_t creator = 0;                // only this process may start/join/signal it
  std::function<void()> target;     // function form; moved out once started
  std::vector<std::string> argv;    // exec form

  // Guarded by `mu`.
  mutable std::mutex mu;
  bool started = false;
  bool reaped = false;
  std::optional<int> code;          // set when reaped (nullopt if the status was lost)
  std::shared_ptr<const Fd> pidfd;  // null before start, after reaping, or if unavailable

  std::atomic<pid_t> pid{0};        // readable without the lock (pid() is noexcept)

  // Guarded by the registry mutex: the handle is gone, the reaper owns it.
  bool orphaned = false;
};

using StatePtr = std::shared_ptr<ChildState>;

// The started, not yet reaped children of this process, and the reaper
// thread for those whose handle was destroyed. One per process; never
// destroyed (a detached reaper may still run during static destruction).
class Registry {
 public:
  static Registry& get() {
    static Registry* r = [] {
      auto* reg = new Registry;
      g_registry = reg;
      ::pthread_atfork(&Registry::before_fork, &Registry::after_fork_parent, &Registry::after_fork_child);
      return reg;
    }();
    return *r;
  }

  void add(StatePtr s) {
    std::lock_guard lk(mu_);
    children_.push_back(std::move(s));
  }
  void remove(const ChildState* s) noexcept {
    std::lock_guard lk(mu_);
    auto it = std::find_if(children_.begin(), children_.end(), [&](const StatePtr& p) { return p.get() == s; });
    if (it != children_.end()) children_.erase(it);
  }
  std::vector<StatePtr> snapshot() {
    std::lock_guard lk(mu_);
    return children_;
  }

  // The handle of a running child is gone: the reaper reaps it when it ends.
  void orphan(const StatePtr& s) {
    std::lock_guard lk(mu_);
    s->orphaned = true;
    if (!reaper_running_) {
      if (wake_fd_ < 0) wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      std::thread([this] { reap_loop(); }).detach();   // may throw: the caller copes
      reaper_running_ = true;
    }
    wake_locked();
  }

  // Exec error pipes in flight (see Process::start): their write ends are
  // closed in every forked child but the one they belong to. Created under
  // the lock that the fork handler holds, so no fork can copy an unlisted one.
  // Returns false (errno set) if pipe2 fails.
  bool open_exec_pipe(int fds[2]) {
    std::lock_guard lk(mu_);
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    try {
      exec_pipes_.push_back(fds[1]);
    } catch (...) {
      ::close(fds[0]);
      ::close(fds[1]);
      errno = ENOMEM;
      return false;
    }
    return true;
  }
  // Closes a write end from open_exec_pipe; under the lock for the same reason.
  void close_exec_pipe(int fd) noexcept {
    std::lock_guard lk(mu_);
    std::erase(exec_pipes_, fd);
    ::close(fd);
  }

  // The write end of the exec error pipe of the exec this thread is doing.
  static inline thread_local int t_own_exec_pipe = -1;

 private:
  Registry() = default;

  void wake_locked() noexcept {
    if (wake_fd_ >= 0) {
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    }
  }

  void reap_loop();

  static void before_fork() noexcept { g_registry->mu_.lock(); }
  static void after_fork_parent() noexcept { g_registry->mu_.unlock(); }
  static void after_fork_child() noexcept {
    Registry& r = *g_registry;
    // The forking thread locked it in before_fork, and is the only thread here.
    r.mu_.unlock();
    // Other threads' exec error pipes: holding their write ends would keep
    // those execs waiting for us.
    for (int fd : r.exec_pipes_)
      if (fd != t_own_exec_pipe) ::close(fd);
    r.exec_pipes_.clear();
    // The parent's children are not ours; its reaper thread did not come along.
    r.children_.clear();
    if (r.wake_fd_ >= 0) ::close(r.wake_fd_);
    r.wake_fd_ = -1;
    r.reaper_running_ = false;
  }

  static inline Registry* g_registry = nullptr;

  std::mutex mu_;
  std::vector<StatePtr> children_;
  std::vector<int> exec_pipes_;
  bool reaper_running_ = false;
  int wake_fd_ = -1;
};

// Reaps a child if it has ended. Call with s.mu held. Returns whether it is
// reaped (now or earlier).
bool reap_locked(ChildState& s) noexcept {
  if (s.reaped) return true;
  int st = 0;
  pid_t r;
  do r = ::waitpid(s.pid, &st, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  // r < 0 (ECHILD): someone else reaped it — a waitpid(-1) elsewhere in the
  // program, or SIGCHLD set to SIG_IGN. It has ended, but its status is lost:
  // is_alive() is false, join() returns, exitcode() stays nullopt.
  s.code = r == s.pid ? decode_status(st) : std::nullopt;
  s.reaped = true;
  s.pidfd.reset();
  Registry::get().remove(&s);
  return true;
}

void Registry::reap_loop() {
  std::vector<pollfd> fds;
  std::vector<std::shared_ptr<const Fd>> keep;
  for (;;) {
    std::vector<StatePtr> orphans;
    int wake;
    {
      std::lock_guard lk(mu_);
      wake = wake_fd_;
      for (const auto& s : children_)
        if (s->orphaned) orphans.push_back(s);
    }
    fds.assign(1, pollfd{wake, POLLIN, 0});
    keep.clear();
    // Without a pidfd (or a wake-up fd) some change would go unseen: look
    // again every 20 ms.
    bool tick = wake < 0;
    for (const auto& s : orphans) {
      std::lock_guard lk(s->mu);
      if (reap_locked(*s)) continue;
      if (s->pidfd) {
        keep.push_back(s->pidfd);
        fds.push_back(pollfd{s->pidfd->fd, POLLIN, 0});
      } else {
        tick = true;
      }
    }
    orphans.clear();
    ::poll(fds.data(), fds.size(), tick ? 20 : -1);
    if (fds[0].revents & POLLIN) {
      std::uint64_t v;
      [[maybe_unused]] auto n = ::read(wake, &v, sizeof v);
    }
  }
}

[[noreturn]] void run_function_child(ChildState& s) noexcept {
  int code = 0;
  try {
    s.target();
  } catch (const std::exception& e) {
    flush_std_streams();
    std::fprintf(stderr, "ipckit: process '%s' (pid %d) failed: %s\n", s.name.c_str(), int(::getpid()), e.what());
    code = 1;
  } catch (...) {
    flush_std_streams();
    std::fprintf(stderr, "ipckit: process '%s' (pid %d) failed: unknown exception (not a std::exception)\n",
                 s.name.c_str(), int(::getpid()));
    code = 1;
  }
  flush_std_streams();
  ::_exit(code);
}

ChildState& require(const StatePtr& s, const char* action) {
  if (!s)
    throw ProcessError("", std::string("cannot ") + action +
                               " a moved-from ipckit::Process; use the Process it was moved into");
  if (s->creator != ::getpid())
    throw ProcessError(s->name, "cannot " + std::string(action) + " " + quoted(s->name) + " from pid " +
                                    std::to_string(::getpid()) + ": it belongs to pid " +
                                    std::to_string(s->creator) +
                                    "; only the process that created a Process may start, join or signal it");
  return *s;
}

void require_started(const ChildState& s, const char* action) {
  if (!s.started)
    throw ProcessError(s.name, "cannot " + std::string(action) + " " + quoted(s.name) +
                                   ": it was never started; call start() first");
}

// Waits until the child is reaped or the deadline passes (none: forever).
bool wait_for_end(ChildState& s, std::optional<Clock::time_point> deadline) {
  auto backoff = std::chrono::milliseconds(1);
  for (;;) {
    std::shared_ptr<const Fd> pidfd;
    {
      std::lock_guard lk(s.mu);
      if (reap_locked(s)) return true;
      pidfd = s.pidfd;
    }
    std::optional<Clock::duration> left;
    if (deadline) {
      auto now = Clock::now();
      if (now >= *deadline) return false;
      left = *deadline - now;
    }
    if (pidfd) {
      pollfd p{pidfd->fd, POLLIN, 0};
      timespec ts{};
      if (left) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*left).count();
        ts.tv_sec = ns / 1'000'000'000;
        ts.tv_nsec = ns % 1'000'000'000;
      }
      ::ppoll(&p, 1, left ? &ts : nullptr, nullptr);   // EINTR: just look again
    } else {
      auto nap = left ? std::min<Clock::duration>(*left, backoff) : Clock::duration(backoff);
      std::this_thread::sleep_for(nap);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10));
    }
  }
}

void send_signal(const StatePtr& sp, int sig, const char* action) {
  ChildState& s = require(sp, action);
  std::lock_guard lk(s.mu);
  require_started(s, action);
  // Unreaped, the pid is still this child's (perhaps a zombie): safe to signal.
  if (reap_locked(s)) return;
  if (::kill(s.pid, sig) != 0 && errno != ESRCH)
    throw ProcessError(s.name, "cannot " + std::string(action) + " " + quoted(s.name) + " (pid " +
                                   std::to_string(s.pid) + "): " + errno_text(errno),
                       std::error_code(errno, std::system_category()));
}

}  // namespace

struct Process::State : ChildState {};

// ---------------------------------------------------------------------------

Process::Process(std::function<void()> target, ProcessOptions options) {
  auto s = std::make_shared<State>();
  unsigned n = ++g_counter;
  s->identity = g_identity_prefix + std::to_string(n);
  s->name = options.name.empty() ? "Process-" + s->identity : std::move(options.name);
  s->daemon = options.daemon;
  s->creator = ::getpid();
  if (!target)
    throw ProcessError(s->name, quoted(s->name) + " has no target: pass a callable to run in the child "
                                                  "(or use Process::exec to run a program)");
  s->target = std::move(target);
  state_ = std::move(s);
}

Process::Process(std::shared_ptr<State> state) : state_(std::move(state)) {}

Process Process::exec(std::vector<std::string> argv, ProcessOptions options) {
  auto s = std::make_shared<State>();
  unsigned n = ++g_counter;
  s->identity = g_identity_prefix + std::to_string(n);
  s->name = options.name.empty() ? "Process-" + s->identity : std::move(options.name);
  s->daemon = options.daemon;
  s->creator = ::getpid();
  if (argv.empty())
    throw ProcessError(s->name, "Process::exec for " + quoted(s->name) +
                                    " got an empty argv: pass at least the program, e.g. {\"/bin/true\"}");
  if (argv[0].empty())
    throw ProcessError(s->name, "Process::exec for " + quoted(s->name) +
                                    " got an empty program name in argv[0]; pass a path or a name found in PATH");
  for (const auto& a : argv)
    if (a.find('\0') != std::string::npos)
      throw ProcessError(s->name, "Process::exec for " + quoted(s->name) +
                                      ": an argument contains a NUL character, which no program can receive");
  s->argv = std::move(argv);
  Process p(std::move(s));
  p.start();
  return p;
}

Process::Process(Process&& other) noexcept : state_(std::move(other.state_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process old(std::move(*this));   // the child this handle had is handed to the reaper
    state_ = std::move(other.state_);
  }
  return *this;
}

Process::~Process() {
  auto s = std::move(state_);
  if (!s || s->creator != ::getpid()) return;   // moved-from, or a copy inherited by a child
  try {
    std::unique_lock lk(s->mu);
    if (!s->started || reap_locked(*s)) return;
    lk.unlock();
    // Never block here, never leave a zombie: the reaper waits for it.
    Registry::get().orphan(s);
  } catch (...) {
    // No thread for the reaper: it stays registered, and the next
    // active_children() call (or this process's exit) reaps it.
  }
}

void Process::start() {
  ChildState& s = require(state_, "start");
  std::unique_lock lk(s.mu);
  if (s.started)
    throw ProcessError(s.name, quoted(s.name) + " (pid " + std::to_string(s.pid) +
                                   ") was already started; a Process runs once, create a new one to run again");
  Registry& registry = Registry::get();   // registers the fork handlers before the first fork
  const pid_t parent = ::getpid();

  if (!s.argv.empty()) {
    // --- exec form ---------------------------------------------------------
    // Everything that allocates is done before fork: the child only calls
    // async-signal-safe functions (another thread may have held the malloc
    // lock at the moment of fork).
    int err = 0;
    std::string path = search_path(s.argv[0], err);
    if (path.empty())
      throw ProcessError(s.name, "cannot start " + quoted(s.name) + ": no executable '" + s.argv[0] +
                                     "' in PATH (" + errno_text(err) +
                                     "); check the name, or give its path",
                         std::error_code(err, std::system_category()));
    std::vector<char*> cargv;
    for (auto& a : s.argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);

    // The exec error pipe: close-on-exec, so EOF means exec succeeded, and a
    // number means it failed with that errno. Registered so that children
    // forked meanwhile by other threads close their copy of the write end.
    int pipefd[2];
    if (!registry.open_exec_pipe(pipefd))
      throw ProcessError(s.name, "cannot start " + quoted(s.name) + ": pipe failed: " + errno_text(errno),
                         std::error_code(errno, std::system_category()));
    Registry::t_own_exec_pipe = pipefd[1];
    flush_std_streams();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pipefd[0]);
      if (s.daemon) become_daemon_child(parent);
      // The program starts with no signal blocked and SIGPIPE at its default,
      // whatever this thread had set up for itself.
      sigset_t none;
      ::sigemptyset(&none);
      ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      ::execve(path.c_str(), cargv.data(), environ);
      int e = errno;
      [[maybe_unused]] auto n = ::write(pipefd[1], &e, sizeof e);
      ::_exit(127);
    }
    int fork_errno = errno;
    Registry::t_own_exec_pipe = -1;
    registry.close_exec_pipe(pipefd[1]);
    if (pid < 0) {
      ::close(pipefd[0]);
      throw ProcessError(s.name, "cannot start " + quoted(s.name) + ": fork failed: " + errno_text(fork_errno) +
                                     " (too many processes? check ulimit -u and memory)",
                         std::error_code(fork_errno, std::system_category()));
    }
    int child_errno = 0;
    ssize_t got;
    do got = ::read(pipefd[0], &child_errno, sizeof child_errno);
    while (got < 0 && errno == EINTR);
    ::close(pipefd[0]);
    if (got == static_cast<ssize_t>(sizeof child_errno)) {
      int st;
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      throw ProcessError(s.name, "cannot start " + quoted(s.name) + ": exec of '" + path + "' failed: " +
                                     errno_text(child_errno) + "; check the path and its permissions",
                         std::error_code(child_errno, std::system_category()));
    }
    s.pid = pid;
  } else {
    // --- function form -----------------------------------------------------
    flush_std_streams();
    pid_t pid = ::fork();
    if (pid == 0) {
      if (s.daemon) become_daemon_child(parent);
      // The fork handler emptied the registry; number our own children.
      g_identity_prefix = s.identity + ":";
      g_counter = 0;
      run_function_child(s);
    }
    if (pid < 0)
      throw ProcessError(s.name, "cannot start " + quoted(s.name) + ": fork failed: " + errno_text(errno) +
                                     " (too many processes? check ulimit -u and memory)",
                         std::error_code(errno, std::system_category()));
    s.pid = pid;
  }

  s.started = true;
  // Unreaped, so the pid is surely our child. (Through syscall(): glibc 2.36
  // declares pidfd_open without C linkage for C++.)
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(s.pid), 0u));
  if (fd >= 0) s.pidfd = std::make_shared<const Fd>(fd);
  // The child has its own copy of the target; the parent's copy (and what it
  // captured) is released now rather than when the handle goes.
  auto target = std::move(s.target);
  s.target = nullptr;
  try {
    registry.add(state_);
  } catch (...) {
    // Out of memory: the child runs, but active_children() will not list it.
  }
  lk.unlock();
}

void Process::join() {
  ChildState& s = require(state_, "join");
  {
    std::lock_guard lk(s.mu);
    require_started(s, "join");
  }
  auto keep = state_;
  wait_for_end(s, std::nullopt);
}

bool Process::join(std::chrono::nanoseconds timeout) {
  ChildState& s = require(state_, "join");
  {
    std::lock_guard lk(s.mu);
    require_started(s, "join");
  }
  auto keep = state_;
  auto now = Clock::now();
  // A timeout too large to add to now() is no timeout.
  if (timeout > Clock::time_point::max() - now) return wait_for_end(s, std::nullopt);
  return wait_for_end(s, now + std::max(timeout, std::chrono::nanoseconds::zero()));
}

bool Process::is_alive() const {
  ChildState& s = require(state_, "check");
  std::lock_guard lk(s.mu);
  return s.started && !reap_locked(s);
}

std::optional<int> Process::exitcode() const {
  ChildState& s = require(state_, "get the exit code of");
  std::lock_guard lk(s.mu);
  if (!s.started || !reap_locked(s)) return std::nullopt;
  return s.code;
}

pid_t Process::pid() const noexcept { return state_ ? state_->pid.load() : 0; }

const std::string& Process::name() const noexcept {
  static const std::string none;
  return state_ ? state_->name : none;
}

bool Process::daemon() const noexcept { return state_ && state_->daemon; }

void Process::terminate() { send_signal(state_, SIGTERM, "terminate"); }

void Process::kill() { send_signal(state_, SIGKILL, "kill"); }

std::vector<ChildInfo> active_children() {
  std::vector<ChildInfo> alive;
  for (const auto& s : Registry::get().snapshot()) {
    std::lock_guard lk(s->mu);
    if (!reap_locked(*s)) alive.push_back({s->pid, s->name});
  }
  return alive;
}

}  // namespace ipckit
