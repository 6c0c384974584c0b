// ipckit/detail/pool_start.hpp — how a pool learns that its workers' initializer ran.
//
// Each worker start with an initializer gets a pipe of its own (opened just
// before the fork). The worker runs the initializer and writes one record,
// "initialized" or "failed: <type>\0<what>", in one write (below PIPE_BUF,
// so it arrives whole). The pool reads it: the constructor waits for every
// worker's record (WorkerStarts::await_all), the collector reads a dead
// replacement's (failure_of). A worker that dies before writing also
// reports: its pidfd becomes readable, so the wait has no deadline and
// still cannot hang on a dead worker. (The pipe's end-of-file is not
// enough: a process forked meanwhile by another thread may hold the write
// end.) Without an initializer nothing of this runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ipckit {
class Process;
namespace detail {

class WorkerStarts {
 public:
  WorkerStarts(std::string pool, void (*initializer)(), unsigned workers);
  ~WorkerStarts();
  WorkerStarts(const WorkerStarts&) = delete;
  WorkerStarts& operator=(const WorkerStarts&) = delete;

  // In the pool's process, around the fork of worker `w`.
  void forking(unsigned w);
  void forked(unsigned w);
  // In worker `w`, first thing: runs the initializer and reports. If it
  // throws, tears the worker_locals down and ends the worker (_Exit).
  void initialize(unsigned w) noexcept;
  // The constructor's wait: returns once every worker reported
  // "initialized"; throws ProcessError at the first that failed or died
  // first (naming the pool, the pid, the exception's type and what()).
  void await_all(const std::vector<Process>& workers);
  // For worker `w`, which has ended: nullopt if its initializer had
  // succeeded (or a live worker's still runs); else why not ("the
  // initializer threw T: ... (in worker pid N)"). Never waits.
  std::optional<std::string> failure_of(unsigned w, const Process& worker);

 private:
  struct Slot {
    int rd = -1;
    int wr = -1;
    bool initialized = false;
  };
  // Waits for (or, if !block, looks at) worker w's record: nullopt once
  // initialized, else the failure text.
  std::optional<std::string> outcome(unsigned w, const Process& worker, bool block);
  void close_slot(Slot& s) noexcept;

  std::string pool_;
  void (*initializer_)();
  std::vector<Slot> slots_;
};

// "exited with code 3", "was killed by signal 9 (SIGKILL)", "ended".
std::string describe_exit(const std::optional<int>& code);

}  // namespace detail
}  // namespace ipckit
