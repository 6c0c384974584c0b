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
//
// The reaper thread and fork. A child forked while another thread is inside
// the allocator inherits its locks held. glibc's malloc guards against that
// with fork handlers of its own; the sanitizers' allocators do not, and such a
// child hangs in its first malloc. So the reaper thread allocates and frees
// only while holding the registry mutex (which every fork() waits for), and
// the thread that starts it waits until it is running, past the thread
// start-up's own allocations.
//
// Who am I. current_process() and parent_process() read one record per
// process (SelfRecord). start() fills it in the child right after fork, while
// the child still has a single thread, so readers never race with a writer;
// an exec'd program fills it from the environment that start() prepared.
//
// Sentinels. A Process keeps its child's pidfd from start() until close() (or
// its destruction), also after reaping: a pidfd of a reaped process stays
// readable, so a sentinel given out stays valid and keeps meaning "ended".
#include "ipckit/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
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
#include <string_view>
#include <thread>
#include <utility>

#include "ipckit/current_process.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/thread_id.hpp"
#include "process_table.hpp"

namespace ipckit {

namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int e) { return std::system_category().message(e); }

std::string quoted(const std::string& name) { return "process '" + name + "'"; }

// An owned file descriptor shared by the State and any thread polling it:
// close() drops the State's reference, and the descriptor is closed when the
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
std::string g_identity_prefix;  // "" at the top; "2:" inside Process-2

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
  if (file.find('/') != std::string::npos) return file;  // used as given
  const char* env = std::getenv("PATH");
  std::string path = env ? env : "/bin:/usr/bin";
  err = ENOENT;
  std::size_t begin = 0;
  for (;;) {
    std::size_t end = path.find(':', begin);
    std::string dir = path.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + file;
    struct stat sb {};
    if (::stat(candidate.c_str(), &sb) == 0 && S_ISREG(sb.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      err = EACCES;  // remember, as execvp does, but keep looking
    }
    if (end == std::string::npos) break;
    begin = end + 1;
  }
  return {};
}

// What a Process handle shares with the registry and the reaper: the body of
// Process::State, defined here so that the helpers below can name it.
struct ChildState {
  // Set at construction; name and daemon may change until start() (by the
  // thread configuring the handle); read-only afterwards.
  std::string name;
  std::string identity;  // "2" or "2:1": what this child's children extend
  bool daemon = false;
  pid_t creator = 0;              // only this process may start/join/signal it
  std::function<void()> target;   // function form; moved out once started
  std::vector<std::string> argv;  // exec form

  // Guarded by `mu`.
  mutable std::mutex mu;
  bool started = false;
  bool reaped = false;
  std::optional<int> code;          // set when reaped (nullopt if the status was lost)
  std::shared_ptr<const Fd> pidfd;  // null before start, after close(), or if unavailable
  int pidfd_errno = 0;              // why start() got no pidfd

  std::atomic<pid_t> pid{0};        // readable without the lock
  std::atomic<bool> closed{false};  // set under `mu` by close(); checked first by every call

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
    std::unique_lock lk(mu_);
    s->orphaned = true;
    wake_locked();
    if (reaper_running_) return;
    if (wake_fd_ < 0) wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    reaper_started_.store(false, std::memory_order_relaxed);
    std::thread([this] { reap_loop(); }).detach();  // may throw: the caller copes
    reaper_running_ = true;
    lk.unlock();
    // Until it runs, the new thread may be inside the allocator (see the
    // head of this file); once, for the life of the process.
    while (!reaper_started_.load(std::memory_order_acquire)) std::this_thread::yield();
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
  std::atomic<bool> reaper_started_{false};
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
  Registry::get().remove(&s);
  return true;
}

void Registry::reap_loop() {
  reaper_started_.store(true, std::memory_order_release);
  std::vector<StatePtr> orphans;
  std::vector<pollfd> fds;
  std::vector<std::shared_ptr<const Fd>> keep;
  for (;;) {
    int wake;
    {
      // Every allocation and free of this loop happens here, under the lock
      // that fork() waits for (see the head of this file).
      std::lock_guard lk(mu_);
      orphans.clear();  // may free a State whose handle and registry entry are gone
      keep.clear();
      wake = wake_fd_;
      for (const auto& s : children_)
        if (s->orphaned) orphans.push_back(s);
      fds.reserve(orphans.size() + 1);
      keep.reserve(orphans.size());
    }
    // Within the capacities reserved above: no allocation from here on.
    fds.assign(1, pollfd{wake, POLLIN, 0});
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
    ::poll(fds.data(), fds.size(), tick ? 20 : -1);
    if (fds[0].revents & POLLIN) {
      std::uint64_t v;
      [[maybe_unused]] auto n = ::read(wake, &v, sizeof v);
    }
  }
}

// A target may also end its process itself: std::exit() runs the atexit
// handlers, std::quick_exit() the at_quick_exit ones. Either way the process
// ran to its end, so its slots read Terminated, as after a return or a throw.
// (_exit, abort and signals run nothing: those slots stay as they were and
// read as not alive.) Forks of the child inherit the handlers but are not
// the child: only the pid they were registered for records.
pid_t g_function_child = 0;

void note_self_exit() noexcept {
  if (g_function_child == ::getpid()) detail::note_lifecycle(ProcessState::Terminated);
}

void record_self_exits() noexcept {
  static bool registered = false;  // a grandchild inherits the registration (and this flag)
  g_function_child = ::getpid();
  if (registered) return;
  registered = true;
  (void)std::atexit(note_self_exit);  // fails only without memory: then such an exit is not recorded
  (void)std::at_quick_exit(note_self_exit);
}

[[noreturn]] void run_function_child(ChildState& s) noexcept {
  int code = 0;
  record_self_exits();
  detail::note_lifecycle(ProcessState::Running);
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
  detail::note_lifecycle(ProcessState::Terminated);
  flush_std_streams();
  ::_exit(code);
}

[[noreturn]] void throw_closed(const ChildState& s, const char* action) {
  throw ProcessError(s.name, "cannot " + std::string(action) + " " + quoted(s.name) +
                                 ": it was closed (close() released it); create a new Process to run again");
}

// The checks every call makes first. `closed_ok`: only close() itself.
ChildState& require(const StatePtr& s, const char* action, bool closed_ok = false) {
  if (!s)
    throw ProcessError(
        "", std::string("cannot ") + action + " a moved-from ipckit::Process; use the Process it was moved into");
  if (s->creator != ::getpid())
    throw ProcessError(s->name, "cannot " + std::string(action) + " " + quoted(s->name) + " from pid " +
                                    std::to_string(::getpid()) + ": it belongs to pid " + std::to_string(s->creator) +
                                    "; only the process that created a Process may start, join or signal it");
  if (!closed_ok && s->closed) throw_closed(*s, action);
  return *s;
}

void require_started(const ChildState& s, const char* action) {
  if (!s.started)
    throw ProcessError(
        s.name, "cannot " + std::string(action) + " " + quoted(s.name) + ": it was never started; call start() first");
}

void require_not_started(const ChildState& s, const char* action, const char* advice) {
  if (s.started)
    throw ProcessError(s.name, "cannot " + std::string(action) + " " + quoted(s.name) + " (pid " +
                                   std::to_string(s.pid) + "): it was already started; " + advice);
}

// A name travels to an exec'd child in its environment, where a NUL would cut it.
void check_name_chars(const std::string& name) {
  if (name.find('\0') != std::string::npos)
    throw InvalidArgument(name.substr(0, name.find('\0')),
                          "the process name '" + name.substr(0, name.find('\0')) +
                              "...' contains a NUL character; give a name without one");
}

// The setup both ways of making a Process share.
void init_state(ChildState& s, ProcessOptions options) {
  check_name_chars(options.name);
  s.identity = g_identity_prefix + std::to_string(++g_counter);
  s.name = options.name.empty() ? "Process-" + s.identity : std::move(options.name);
  s.daemon = options.daemon;
  s.creator = ::getpid();
}

[[noreturn]] void throw_fork_failed(const ChildState& s, int err) {
  throw ProcessError(s.name,
                     "cannot start " + quoted(s.name) + ": fork failed: " + errno_text(err) +
                         " (too many processes? check ulimit -u and memory)",
                     std::error_code(err, std::system_category()));
}

// Waits until `fd` is readable or the deadline passes. A signal ends the wait
// early: callers look again.
void wait_readable(int fd, detail::Deadline deadline) noexcept {
  pollfd p{fd, POLLIN, 0};
  timespec ts{};
  if (!deadline.is_never()) {
    const auto ns = deadline.left().count();
    ts.tv_sec = ns / 1'000'000'000;
    ts.tv_nsec = ns % 1'000'000'000;
  }
  ::ppoll(&p, 1, deadline.is_never() ? nullptr : &ts, nullptr);
}

// Looks with `ended(fd)` until it says so or the deadline passes (a deadline
// of now: one look). Between looks it waits for the descriptor `ended` handed
// out to become readable, or, without one (no pidfd), naps with a back-off.
template <class Ended>
bool wait_until_ended(detail::Deadline deadline, Ended ended) {
  std::chrono::nanoseconds backoff = std::chrono::milliseconds(1);
  for (;;) {
    std::shared_ptr<const Fd> fd;
    if (ended(fd)) return true;
    const auto now = Clock::now();
    if (deadline.passed(now)) return false;
    if (fd) {
      wait_readable(fd->fd, deadline);
    } else {
      std::this_thread::sleep_for(deadline.nap(backoff, now));
      backoff = std::min<std::chrono::nanoseconds>(backoff * 2, std::chrono::milliseconds(10));
    }
  }
}

// Waits until the child is reaped or the deadline passes.
bool wait_for_end(ChildState& s, detail::Deadline deadline) {
  return wait_until_ended(deadline, [&s](std::shared_ptr<const Fd>& fd) {
    std::lock_guard lk(s.mu);
    if (reap_locked(s)) return true;
    fd = s.pidfd;
    return false;
  });
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): a copy, another thread may move the handle
bool join_state(StatePtr sp, detail::Deadline deadline) {
  ChildState& s = require(sp, "join");
  {
    std::lock_guard lk(s.mu);
    require_started(s, "join");
  }
  return wait_for_end(s, deadline);
}

void send_signal(const StatePtr& sp, int sig, const char* action) {
  ChildState& s = require(sp, action);
  std::lock_guard lk(s.mu);
  require_started(s, action);
  // Unreaped, the pid is still this child's (perhaps a zombie): safe to signal.
  if (reap_locked(s)) return;
  if (::kill(s.pid, sig) != 0 && errno != ESRCH)
    throw ProcessError(s.name,
                       "cannot " + std::string(action) + " " + quoted(s.name) + " (pid " + std::to_string(s.pid) +
                           "): " + errno_text(errno),
                       std::error_code(errno, std::system_category()));
}

int pidfd_open(pid_t pid) noexcept {
  // Through syscall(): glibc 2.36 declares pidfd_open without C linkage for C++.
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u));
}

}  // namespace

// ---------------------------------------------------------------------------
// current_process() and parent_process()

struct ParentProcess::Record {
  pid_t pid = 0;
  std::uint64_t start_ticks = 0;  // its start time: the liveness check without a pidfd
  std::string name;
  std::shared_ptr<const Fd> fd;  // its pidfd, or a readable eventfd if it had ended already
  bool ended_at_start = false;
  int fd_errno = 0;  // why there is no fd

  [[nodiscard]] bool alive() const noexcept {
    if (ended_at_start) return false;
    if (fd) {
      pollfd p{fd->fd, POLLIN, 0};
      const int r = ::poll(&p, 1, 0);
      if (r >= 0) return r == 0;
    }
    return detail::process_alive(static_cast<std::uint32_t>(pid), start_ticks);
  }
};

namespace {

using ParentRecordPtr = std::shared_ptr<const ParentProcess::Record>;

// What current_process() and parent_process() report for this process.
struct SelfRecord {
  std::string name = "MainProcess";
  bool daemon = false;
  ParentRecordPtr parent;  // null in the main program
};

std::atomic<bool> g_pool_worker{false};

// How an exec'd child learns who it is (see child_environment).
constexpr const char* kNameVar = "IPCKIT_PROCESS_NAME";
constexpr const char* kDaemonVar = "IPCKIT_PROCESS_DAEMON";  // "1" for a daemon
constexpr const char* kParentVar = "IPCKIT_PARENT_PROCESS";  // "<pid>:<start ticks>:<name>"

// A record of the parent `pid`. `still_there()`, asked once its pidfd is open,
// says whether the parent had not ended yet: then the pidfd is surely the
// parent's (a pid is reused only after its process has ended). Otherwise an
// eventfd that is readable at once stands in, so the sentinel says "ended".
template <class StillThere>
ParentRecordPtr open_parent(pid_t pid, std::uint64_t start_ticks, std::string name, StillThere still_there) {
  auto r = std::make_shared<ParentProcess::Record>();
  r->pid = pid;
  r->start_ticks = start_ticks;
  r->name = std::move(name);
  int fd = pidfd_open(pid);
  int err = errno;
  if (!still_there()) {
    if (fd >= 0) ::close(fd);
    fd = ::eventfd(1, EFD_CLOEXEC);
    err = errno;
    r->ended_at_start = true;
  }
  if (fd >= 0) {
    r->fd = std::make_shared<const Fd>(fd);
  } else {
    r->fd_errno = err;
  }
  return r;
}

// An exec'd program's parent, from kParentVar's value; null if malformed.
ParentRecordPtr parent_from_environment(const char* text) {
  char* end = nullptr;
  errno = 0;
  const long pid = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != ':' || pid <= 0) return nullptr;
  const char* ticks_text = end + 1;
  const unsigned long long ticks = std::strtoull(ticks_text, &end, 10);
  if (errno != 0 || end == ticks_text || *end != ':' || ticks == 0) return nullptr;
  return open_parent(static_cast<pid_t>(pid), ticks, end + 1,
                     [&] { return detail::process_start_ticks(static_cast<int>(pid)) == ticks; });
}

SelfRecord self_from_environment() {
  SelfRecord me;
  const char* name = std::getenv(kNameVar);
  if (name != nullptr && *name != '\0') me.name = name;
  const char* daemon = std::getenv(kDaemonVar);
  me.daemon = daemon != nullptr && std::string_view(daemon) == "1";
  if (const char* parent = std::getenv(kParentVar)) me.parent = parent_from_environment(parent);
  return me;
}

bool wait_for_parent(const ParentProcess::Record& r, detail::Deadline deadline) {
  return wait_until_ended(deadline, [&r](std::shared_ptr<const Fd>& fd) {
    fd = r.fd;
    return !r.alive();
  });
}

// This process's record: read from the environment when the program loads
// (below), replaced in each child that start() forks.
SelfRecord& self() {
  static SelfRecord me = self_from_environment();
  return me;
}

// The variables describe how this program was started: read them before
// main() can change the environment. (If this fails for lack of memory, the
// first call tries again.)
const bool g_self_read_at_load = [] {
  try {
    (void)self();
    return true;
  } catch (...) {
    return false;
  }
}();

// What a child of this process learns about its parent, gathered before fork.
struct ParentSeed {
  pid_t pid;
  std::uint64_t start_ticks;
  std::string name;
};

ParentSeed seed_for_child() {
  const auto me = detail::this_process();
  return {static_cast<pid_t>(me.tid), me.start_ticks, self().name};
}

// Python's rule: a daemon ends with its parent, so children it started
// would be left behind without the parent they were started for.
void require_not_daemon(const ChildState& s) {
  const SelfRecord& me = self();
  if (me.daemon)
    throw ProcessError(s.name, "cannot start " + quoted(s.name) + " from daemon " + quoted(me.name) + " (pid " +
                                   std::to_string(::getpid()) +
                                   "): a daemon ends with its parent and would leave its children behind; "
                                   "start it from a non-daemon process, or make this one a non-daemon");
}

// In a child just forked by start(), still its only thread: from now on it
// is `s`, the child of `parent`.
void become_child(const ChildState& s, const ParentSeed& parent) noexcept {
  try {
    // The fork handler emptied the registry; number our own children.
    g_identity_prefix = s.identity + ":";
    g_counter = 0;
    SelfRecord& me = self();
    me.name = s.name;
    me.daemon = s.daemon;
    g_pool_worker = false;
    me.parent = open_parent(parent.pid, parent.start_ticks, parent.name, [&] { return ::getppid() == parent.pid; });
  } catch (...) {
    std::fprintf(stderr, "ipckit: process '%s' (pid %d) failed: out of memory while starting\n", s.name.c_str(),
                 int(::getpid()));
    ::_exit(1);
  }
}

bool is_ipckit_variable(std::string_view entry) {
  for (std::string_view var : {kNameVar, kDaemonVar, kParentVar})
    if (entry.size() > var.size() && entry.starts_with(var) && entry[var.size()] == '=') return true;
  return false;
}

// The environment of an exec'd child: this process's, with the ipckit
// variables set to the child's name, daemon flag and parent.
std::vector<std::string> child_environment(const ChildState& s, const ParentSeed& parent) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (!is_ipckit_variable(*e)) env.emplace_back(*e);
  env.push_back(std::string(kNameVar) + "=" + s.name);
  if (s.daemon) env.push_back(std::string(kDaemonVar) + "=1");
  env.push_back(std::string(kParentVar) + "=" + std::to_string(parent.pid) + ":" + std::to_string(parent.start_ticks) +
                ":" + parent.name);
  return env;
}

// execve's view of strings: pointers into them, then a null.
std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& x : strings) out.push_back(x.data());
  out.push_back(nullptr);
  return out;
}

// Forks the child of a function-form Process; returns its pid.
pid_t fork_function(ChildState& s, const ParentSeed& parent) {
  flush_std_streams();
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (s.daemon) become_daemon_child(parent.pid);
    become_child(s, parent);
    // Listed in every segment it inherited: created, then started.
    detail::note_lifecycle(ProcessState::New);
    detail::note_lifecycle(ProcessState::Runnable);
    run_function_child(s);
  }
  if (pid < 0) throw_fork_failed(s, errno);
  return pid;
}

// Forks and execs the child of an exec-form Process; returns its pid once
// the exec succeeded.
pid_t fork_exec(ChildState& s, Registry& registry, const ParentSeed& parent) {
  // Everything that allocates is done before fork: the child only calls
  // async-signal-safe functions (another thread may have held the malloc
  // lock at the moment of fork).
  int err = 0;
  const std::string path = search_path(s.argv[0], err);
  if (path.empty())
    throw ProcessError(s.name,
                       "cannot start " + quoted(s.name) + ": no executable '" + s.argv[0] + "' in PATH (" +
                           errno_text(err) + "); check the name, or give its path",
                       std::error_code(err, std::system_category()));
  std::vector<char*> cargv = c_strings(s.argv);
  std::vector<std::string> env = child_environment(s, parent);
  std::vector<char*> cenv = c_strings(env);

  // The exec error pipe: close-on-exec, so EOF means exec succeeded, and a
  // number means it failed with that errno. Registered so that children
  // forked meanwhile by other threads close their copy of the write end.
  int pipefd[2];
  if (!registry.open_exec_pipe(pipefd))
    throw ProcessError(s.name, "cannot start " + quoted(s.name) + ": pipe failed: " + errno_text(errno),
                       std::error_code(errno, std::system_category()));
  Registry::t_own_exec_pipe = pipefd[1];
  flush_std_streams();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    if (s.daemon) become_daemon_child(parent.pid);
    // The program starts with no signal blocked and SIGPIPE at its default,
    // whatever this thread had set up for itself.
    sigset_t none;
    ::sigemptyset(&none);
    ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(path.c_str(), cargv.data(), cenv.data());
    int e = errno;
    [[maybe_unused]] auto n = ::write(pipefd[1], &e, sizeof e);
    ::_exit(127);
  }
  const int fork_errno = errno;
  Registry::t_own_exec_pipe = -1;
  registry.close_exec_pipe(pipefd[1]);
  if (pid < 0) {
    ::close(pipefd[0]);
    throw_fork_failed(s, fork_errno);
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
    throw ProcessError(s.name,
                       "cannot start " + quoted(s.name) + ": exec of '" + path +
                           "' failed: " + errno_text(child_errno) + "; check the path and its permissions",
                       std::error_code(child_errno, std::system_category()));
  }
  return pid;
}

}  // namespace

ProcessInfo current_process() {
  const SelfRecord& me = self();
  return {me.name, ::getpid(), me.daemon, g_pool_worker.load(std::memory_order_relaxed)};
}

std::optional<ParentProcess> parent_process() {
  ParentRecordPtr parent = self().parent;
  if (!parent) return std::nullopt;
  return ParentProcess(std::move(parent));
}

void detail::set_pool_worker(bool worker) noexcept { g_pool_worker.store(worker, std::memory_order_relaxed); }

pid_t ParentProcess::pid() const noexcept { return r_->pid; }

const std::string& ParentProcess::name() const noexcept { return r_->name; }

bool ParentProcess::is_alive() const { return r_->alive(); }

bool ParentProcess::join_by(detail::Deadline deadline) const { return wait_for_parent(*r_, deadline); }

int ParentProcess::sentinel() const {
  if (!r_->fd)
    throw ProcessError(r_->name,
                       "no sentinel for the parent process '" + r_->name + "' (pid " + std::to_string(r_->pid) +
                           "): pidfd_open failed at the start (" + errno_text(r_->fd_errno) +
                           "); pidfds need Linux 5.3 or later; use join()",
                       std::error_code(r_->fd_errno, std::system_category()));
  return r_->fd->fd;
}

// ---------------------------------------------------------------------------
// Process

struct Process::State : ChildState {};

Process::Process(std::function<void()> target, ProcessOptions options) {
  auto s = std::make_shared<State>();
  init_state(*s, std::move(options));
  if (!target)
    throw ProcessError(s->name, quoted(s->name) +
                                    " has no target: pass a callable to run in the child "
                                    "(or use Process::exec to run a program)");
  s->target = std::move(target);
  state_ = std::move(s);
}

Process::Process(std::shared_ptr<State> state) : state_(std::move(state)) {}

Process Process::exec(std::vector<std::string> argv, ProcessOptions options) {
  auto s = std::make_shared<State>();
  init_state(*s, std::move(options));
  const std::string intro = "Process::exec for " + quoted(s->name);
  if (argv.empty())
    throw ProcessError(s->name, intro + " got an empty argv: pass at least the program, e.g. {\"/bin/true\"}");
  if (argv[0].empty())
    throw ProcessError(s->name, intro + " got an empty program name in argv[0]; pass a path or a name found in PATH");
  for (const auto& a : argv)
    if (a.find('\0') != std::string::npos)
      throw ProcessError(s->name, intro + ": an argument contains a NUL character, which no program can receive");
  s->argv = std::move(argv);
  Process p(std::move(s));
  p.start();
  return p;
}

Process::Process(Process&& other) noexcept : state_(std::move(other.state_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process old(std::move(*this));  // the child this handle had is handed to the reaper
    state_ = std::move(other.state_);
  }
  return *this;
}

Process::~Process() {
  auto s = std::move(state_);
  if (!s || s->creator != ::getpid()) return;  // moved-from, or a copy inherited by a child
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
  require_not_started(s, "start", "a Process runs once, create a new one to run again");
  require_not_daemon(s);
  Registry& registry = Registry::get();  // registers the fork handlers before the first fork
  // Also sets up this process's SelfRecord before the fork, so that no child
  // runs its one-time initialisation (whose guard another thread may hold).
  const ParentSeed parent = seed_for_child();
  s.pid = s.argv.empty() ? fork_function(s, parent) : fork_exec(s, registry, parent);
  s.started = true;
  // Unreaped, so the pid is surely our child.
  const int fd = pidfd_open(s.pid);
  s.pidfd_errno = fd < 0 ? errno : 0;
  if (fd >= 0) {
    try {
      s.pidfd = std::make_shared<const Fd>(fd);
    } catch (...) {
      ::close(fd);
      s.pidfd_errno = ENOMEM;
    }
  }
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

bool Process::join_by(detail::Deadline deadline) { return join_state(state_, deadline); }

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

pid_t Process::pid() const {
  if (!state_) return 0;
  if (state_->closed) throw_closed(*state_, "get the pid of");
  return state_->pid.load();
}

const std::string& Process::name() const noexcept {
  static const std::string none;
  return state_ ? state_->name : none;
}

bool Process::daemon() const noexcept { return state_ && state_->daemon; }

void Process::set_name(std::string name) {
  ChildState& s = require(state_, "rename");
  if (name.empty())
    throw InvalidArgument(s.name, "cannot rename " + quoted(s.name) + " to an empty name; give a non-empty name");
  check_name_chars(name);
  std::lock_guard lk(s.mu);
  require_not_started(s, "rename", "set the name before start()");
  s.name = std::move(name);
}

void Process::set_daemon(bool daemon) {
  ChildState& s = require(state_, "set the daemon flag of");
  std::lock_guard lk(s.mu);
  require_not_started(s, "set the daemon flag of", "set it before start()");
  s.daemon = daemon;
}

void Process::terminate() { send_signal(state_, SIGTERM, "terminate"); }

void Process::kill() { send_signal(state_, SIGKILL, "kill"); }

int Process::sentinel() const {
  ChildState& s = require(state_, "get the sentinel of");
  std::lock_guard lk(s.mu);
  require_started(s, "get the sentinel of");
  if (!s.pidfd)
    throw ProcessError(s.name,
                       "no sentinel for " + quoted(s.name) + " (pid " + std::to_string(s.pid) +
                           "): pidfd_open failed at start() (" + errno_text(s.pidfd_errno) +
                           "); pidfds need Linux 5.3 or later; use join() or is_alive()",
                       std::error_code(s.pidfd_errno, std::system_category()));
  return s.pidfd->fd;
}

void Process::close() {
  ChildState& s = require(state_, "close", /*closed_ok=*/true);
  std::lock_guard lk(s.mu);
  if (s.closed) return;
  if (s.started && !reap_locked(s))
    throw ProcessError(s.name, "cannot close " + quoted(s.name) + " (pid " + std::to_string(s.pid) +
                                   "): it is still running; join() or terminate() it first");
  s.pidfd.reset();  // a joiner polling it keeps its own reference until it returns
  s.target = nullptr;
  s.argv = {};
  s.closed = true;
}

std::vector<ChildInfo> active_children() {
  std::vector<ChildInfo> alive;
  for (const auto& s : Registry::get().snapshot()) {
    std::lock_guard lk(s->mu);
    if (!reap_locked(*s)) alive.push_back({s->pid, s->name});
  }
  return alive;
}

unsigned cpu_count() noexcept {
  // The mask may be larger than cpu_set_t's 1024 CPUs: grow until it fits.
  for (int cpus = CPU_SETSIZE; cpus <= (1 << 22); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) break;
    const std::size_t size = CPU_ALLOC_SIZE(cpus);
    const int r = ::sched_getaffinity(0, size, set);
    const int err = errno;
    const int count = r == 0 ? CPU_COUNT_S(size, set) : 0;
    CPU_FREE(set);
    if (count > 0) return static_cast<unsigned>(count);
    if (r == 0 || err != EINVAL) break;
  }
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<unsigned>(online) : 1u;
}

}  // namespace ipckit
