// ipckit/process.hpp — worker processes, Python's multiprocessing.Process.
//
//   ipckit::Process p([&] { work(seg); }, {.name = "worker-1"});
//   p.set_daemon(true);              // name and daemon may change until start()
//   p.start();
//   p.join();                        // or p.join(2s) / p.join_until(t) -> whether it ended
//   int code = *p.exitcode();        // negative signal number if killed, as in Python
//   p.close();                       // frees the pidfd; the handle is then unusable
//
//   auto w = ipckit::Process::exec({"./consumer", "--segment", "demo"});  // started at once
//
// The function runs in a forked child. When it returns the child exits with
// code 0 (after flushing stdout/stderr); an exception escaping it prints
// "ipckit: process '<name>' (pid N) failed: <what>" to stderr and exits with 1.
// A daemon child is killed (SIGKILL) when its parent dies, however it dies.
// Destroying a started, un-joined Process neither blocks nor leaves a zombie:
// the child is reaped when it ends. In the child, ipckit::current_process()
// and ipckit::parent_process() (current_process.hpp) describe it and its parent.
//
// Handles move but do not copy. Thread-safe between threads of the parent,
// except set_name/set_daemon, which configure a handle before it is shared.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/error.hpp"

namespace ipckit {

struct ProcessOptions {
  std::string name{};   // default "Process-<n>", as in Python
  bool daemon = false;  // killed when the parent dies
};

class Process {
 public:
  explicit Process(std::function<void()> target, ProcessOptions options = {});
  // Starts `argv[0]` (searched in PATH) with those arguments, at once.
  // Throws ProcessError if the binary cannot be started.
  static Process exec(std::vector<std::string> argv, ProcessOptions options = {});

  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  // Throws ProcessError if already started or the fork fails.
  void start();

  // Waiting for the end, in the four forms. Each throws ProcessError if the
  // process was never started. The timed forms return whether it has ended; a
  // zero or negative timeout, or a time point already past, is a single look.
  void join() { (void)join_by(detail::Deadline::never()); }
  IPCKIT_DETAIL_TIMED_FORMS(bool, join, join_until, join_by);
  [[nodiscard]] bool try_join() { return join_by(detail::Deadline::now()); }
  // Every form above in one call.
  bool join_by(detail::Deadline deadline);
  // False before start and once it has ended (never throws for "not started").
  [[nodiscard]] bool is_alive() const;
  // nullopt while running (or not started); else the exit status, or the
  // negative number of the signal that ended it.
  [[nodiscard]] std::optional<int> exitcode() const;
  // 0 before start (and for a moved-from handle). Throws ProcessError once closed.
  [[nodiscard]] pid_t pid() const;
  // Readable without checks, also after close() (as in Python).
  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] bool daemon() const noexcept;
  // Until start(): a name (not empty, no NUL character; InvalidArgument
  // otherwise) and the daemon flag. ProcessError once started (an exec'd
  // Process is started at once): the child has its own copy by then.
  void set_name(std::string name);
  void set_daemon(bool daemon);
  void terminate();  // SIGTERM; no-op if it has ended
  void kill();       // SIGKILL; no-op if it has ended

  // A descriptor that becomes readable (POLLIN) when the process ends, for
  // poll/select/epoll: the child's pidfd. Valid from start() until close()
  // or the handle's destruction; the Process owns it, do not close it. Throws
  // ProcessError before start, once closed, or if the kernel gave no pidfd
  // (Linux < 5.3, seccomp, out of descriptors at start()).
  [[nodiscard]] int sentinel() const;
  // Releases the handle's resources (the pidfd). Throws ProcessError if the
  // process still runs (join() or terminate() it first). Afterwards every
  // call but close(), name() and daemon() throws ProcessError; closing again
  // does nothing.
  void close();

 private:
  struct State;
  explicit Process(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

struct ChildInfo {
  pid_t pid;
  std::string name;
};

// The children started through Process (by this process) that are still alive,
// as Python's multiprocessing.active_children(); ended ones are reaped.
std::vector<ChildInfo> active_children();

// The CPUs this process may run on (its affinity mask, as Python's
// os.process_cpu_count()); the online CPUs if the mask cannot be read. At least 1.
[[nodiscard]] unsigned cpu_count() noexcept;

}  // namespace ipckit
