// ipckit/current_process.hpp — who this process is, and who started it
// (Python's multiprocessing.current_process() and parent_process()).
//
//   auto me = ipckit::current_process();         // {.name = "worker-1", .pid = ..., .daemon = ...}
//   if (auto parent = ipckit::parent_process()) {
//     parent->join(5s);                          // or poll/epoll parent->sentinel()
//     if (!parent->is_alive()) cleanup();
//   }
//
// Where the answers come from:
//   - the main program (started any other way): name "MainProcess", not a
//     daemon, no parent (parent_process() is nullopt), as in Python;
//   - a child started by ipckit::Process (function form): its own name and
//     daemon flag; its parent is the process that called start();
//   - a program started by Process::exec: ipckit passes its name, daemon flag
//     and parent in the environment (IPCKIT_PROCESS_NAME, IPCKIT_PROCESS_DAEMON,
//     IPCKIT_PARENT_PROCESS), read on the first call. Like any environment
//     variable they are inherited by what that program starts by other means
//     (a shell, system()); ipckit replaces them for the children it starts.
// A child forked directly with fork() (not through ipckit) keeps the answers
// of the process that forked it, as os.fork() does in Python.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "ipckit/process.hpp"

namespace ipckit {

// A snapshot of the calling process. Never throws but std::bad_alloc.
struct ProcessInfo {
  std::string name;          // "MainProcess" in the main program
  pid_t pid = 0;             // getpid()
  bool daemon = false;       // started as a daemon (killed when its parent dies)
  bool pool_worker = false;  // a worker of an ipckit process pool
};
[[nodiscard]] ProcessInfo current_process();

// The process that started this one. Its pid and name are fixed at the start;
// is_alive(), join() and sentinel() follow it live, through a pidfd of the
// parent opened right after the fork (or, in an exec'd program, opened from
// the pid and checked against the parent's start time, so a reused pid is
// never taken for the parent). Copies share one descriptor, closed with the
// last copy. Safe to use from any thread.
class ParentProcess {
 public:
  [[nodiscard]] pid_t pid() const noexcept;
  [[nodiscard]] const std::string& name() const noexcept;
  // Non-blocking: whether the parent still runs (a zombie has ended).
  [[nodiscard]] bool is_alive() const;
  // Waits until the parent has ended (untimed, with a duration, until a time
  // point of any clock, or just a look); the timed forms return whether it
  // has ended. A zero or negative timeout, or a time point already past, is
  // a single look.
  void join() const { (void)join_by(detail::Deadline::never()); }
  template <class Rep, class Period>
  bool join(const std::chrono::duration<Rep, Period>& timeout) const {
    return join_by(detail::Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  bool join_until(const std::chrono::time_point<Clock, Duration>& t) const {
    return join_by(detail::Deadline::at(t));
  }
  [[nodiscard]] bool try_join() const { return join_by(detail::Deadline::now()); }
  bool join_by(detail::Deadline deadline) const;
  // A descriptor for poll/select/epoll that becomes readable when the parent
  // ends (already readable if it had ended when this process started). Owned
  // by the ParentProcess objects of this process: do not close it; valid as
  // long as one of them lives. Throws ProcessError if pidfds are unavailable
  // (Linux < 5.3, seccomp, or no descriptor left at the start).
  [[nodiscard]] int sentinel() const;

  struct Record;  // defined in process.cpp

 private:
  friend std::optional<ParentProcess> parent_process();
  explicit ParentProcess(std::shared_ptr<const Record> r) : r_(std::move(r)) {}
  std::shared_ptr<const Record> r_;
};

// The parent of this process, or nullopt in the main program (Python's None).
[[nodiscard]] std::optional<ParentProcess> parent_process();

namespace detail {
// For the process pool: marks the calling process as one of its workers.
void set_pool_worker(bool worker) noexcept;
}  // namespace detail

}  // namespace ipckit
