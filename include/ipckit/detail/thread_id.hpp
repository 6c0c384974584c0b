// ipckit/detail/thread_id.hpp — who "I" am, as the locks record it.
//
// A lock's owner is a kernel thread id (unique across processes in one pid
// namespace: all participants must share one) plus that thread's start time,
// so that a waiter can tell a dead owner from a thread that reused its id.
// Both are cached per thread; a fork handler clears the cache in the child.
#pragma once

#include <cstdint>

namespace ipckit::detail {

struct ThreadIdentity {
  std::uint32_t tid = 0;          // gettid()
  std::uint64_t start_ticks = 0;  // field 22 of /proc/thread-self/stat
};

// Fills the cache on first use in a thread (one syscall and one /proc read).
const ThreadIdentity& load_thread_identity() noexcept;

inline thread_local ThreadIdentity t_identity;

inline const ThreadIdentity& this_thread() noexcept {
  if (t_identity.tid == 0) [[unlikely]]
    return load_thread_identity();
  return t_identity;
}

// The calling process as the same pair: tid is its pid, start_ticks its
// start time. Cached; a forked child looks itself up again.
ThreadIdentity this_process() noexcept;

// Whether the process `pid` started at `start_ticks` is still running (not a zombie).
bool process_alive(std::uint32_t pid, std::uint64_t start_ticks) noexcept;

// Liveness of a thread recorded by a lock: false when it is gone, a zombie,
// or its id now belongs to a thread started at another time. When
// `start_ticks` is 0 (not yet recorded) only existence is checked.
bool thread_alive(std::uint32_t tid, std::uint64_t start_ticks) noexcept;

// The process (thread group) a thread belongs to, or 0 if it is gone.
int process_of_thread(std::uint32_t tid) noexcept;

// Start time (clock ticks since boot) of a process, 0 if it is gone.
std::uint64_t process_start_ticks(int pid) noexcept;

// The scheduler state of a thread ('R', 'S', 'D', 'T', ...), 0 if it is gone
// or cannot be read.
char thread_run_state(std::uint32_t tid) noexcept;

}  // namespace ipckit::detail
