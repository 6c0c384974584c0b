// ipckit/process.hpp — worker processes, Python's multiprocessing.Process.
//
//   ipckit::Process p([&] { work(seg); }, {.name = "worker-1"});
//   p.start();
//   p.join();                       // or p.join(2s) -> whether it ended
//   int code = *p.exitcode();       // negative signal number if killed, as in Python
//
//   auto w = ipckit::Process::exec({"./consumer", "--segment", "demo"});  // started at once
//
// The function runs in a forked child. When it returns the child exits with
// code 0 (after flushing stdout/stderr); an exception escaping it prints
// "ipckit: process '<name>' (pid N) failed: <what>" to stderr and exits with 1.
// A daemon child is killed (SIGKILL) when its parent dies, however it dies.
// Destroying a started, un-joined Process neither blocks nor leaves a zombie:
// the child is reaped when it ends.
//
// Handles move but do not copy. Thread-safe between threads of the parent.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipckit/error.hpp"

namespace ipckit {

struct ProcessOptions {
  std::string name{};    // default "Process-<n>", as in Python
  bool daemon = false;   // killed when the parent dies
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
  // Waits for the end. Throws ProcessError if never started.
  void join();
  // Waits at most `timeout`; returns whether the process has ended.
  bool join(std::chrono::nanoseconds timeout);
  [[nodiscard]] bool is_alive() const;
  // nullopt while running (or not started); else the exit status, or the
  // negative number of the signal that ended it.
  [[nodiscard]] std::optional<int> exitcode() const;
  [[nodiscard]] pid_t pid() const noexcept;      // 0 before start
  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] bool daemon() const noexcept;
  void terminate();   // SIGTERM; no-op if it has ended
  void kill();        // SIGKILL; no-op if it has ended

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

}  // namespace ipckit
