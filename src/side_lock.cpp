// Who holds a SideLock (src/side_lock.hpp): what a waiting thread reads from
// /proc about the holder, to decide whether to wait longer and to say why it
// gave up.
#include "side_lock.hpp"

#include <unistd.h>

#include <cstdint>
#include <string>

#include "ipckit/detail/thread_id.hpp"

namespace ipckit::detail {

bool side_lock_holder_may_be_preempted(const LockState& s) noexcept {
  const std::uint32_t tid = s.word.load(std::memory_order_relaxed) & kLockTidMask;
  if (tid == 0) return true;  // just let go
  switch (thread_run_state(tid)) {
    case 'R':  // running, or runnable and waiting for a CPU
    case 'D':  // a page fault, a brief uninterruptible wait
    case 0:    // gone: the next attempt takes its lock over
    case 'Z':
    case 'X':
      return true;
    default:  // stopped ('T', 't': SIGSTOP, a debugger), or asleep ('S'): not coming back soon
      return false;
  }
}

std::string describe_side_lock_holder(const LockState& s) {
  const std::uint32_t tid = s.word.load(std::memory_order_relaxed) & kLockTidMask;
  if (tid == 0) return "a thread that has let go since";
  const int pid = process_of_thread(tid);
  std::string state;
  switch (thread_run_state(tid)) {
    case 'T':
    case 't':
      state = "which is stopped (SIGSTOP, Ctrl-Z or a debugger)";
      break;
    case 'R':
      state = "which is running";
      break;
    case 'S':
      state = "which is asleep";
      break;
    case 'D':
      state = "which is in an uninterruptible wait";
      break;
    default:
      state = "which has just exited";
      break;
  }
  std::string who;
  if (pid == ::getpid())
    who = "thread " + std::to_string(tid) + " of this process";
  else if (pid != 0)
    who = "another live process, pid " + std::to_string(pid) + " (thread " + std::to_string(tid) + ")";
  else
    who = "thread " + std::to_string(tid);
  return who + ", " + state;
}

}  // namespace ipckit::detail
