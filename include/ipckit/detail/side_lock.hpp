// ipckit/detail/side_lock.hpp — a queue's internal crash-safe lock, held for
// one put or get, and the wake-up that follows a change.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/error.hpp"

namespace ipckit::detail {

// A side lock is held for well under a microsecond unless its holder is
// itself waiting on a full (or empty) queue; so even put_nowait/get_nowait
// wait this long for it before concluding the queue is full (or empty),
// rather than failing because another producer (consumer) was mid-put.
inline constexpr auto kSideLockGrace = std::chrono::milliseconds(2);

// Holds one of the queue's locks for a scope; a lock taken over from a dead
// holder needs no repair (positions move only by single stores), so its
// owner_died flag is simply cleared; `took_over()` tells the caller, for
// state of its own that a dead holder may have left half-done.
class SideLock {
 public:
  template <class KeepWaiting>
  SideLock(LockState& s, Deadline deadline, const std::string& label, KeepWaiting&& keep_waiting) : s_(s) {
    const auto& me = this_thread();
    // Only an item's own serialize() can get here holding it (a get from
    // inside a get): waiting would never end.
    if (owned_by(s_, me))
      throw DeadlockDetected(label, label + " was used from inside this thread's own get/put on it (from an "
                                            "item's serialize()?); that would wait forever");
    if (deadline) deadline = std::max(*deadline, std::chrono::steady_clock::now() + kSideLockGrace);
    held_ = try_lock_fast(s_, me) || lock_slow(s_, me, deadline, false, label.c_str());
    // The holder may just be preempted mid-operation: while `keep_waiting()`
    // says the queue itself is not the obstacle, wait on.
    while (!held_ && keep_waiting()) {
      held_ = lock_slow(s_, me, std::chrono::steady_clock::now() + kSideLockGrace, false, label.c_str());
    }
    took_over_ = held_ && s_.owner_died.load(std::memory_order_relaxed) != 0;
    if (took_over_) s_.owner_died.store(0, std::memory_order_relaxed);
  }
  ~SideLock() { unlock(); }
  void unlock() noexcept {
    if (held_) unlock_owned(s_);
    held_ = false;
  }
  SideLock(const SideLock&) = delete;
  SideLock& operator=(const SideLock&) = delete;
  [[nodiscard]] bool held() const noexcept { return held_; }
  // The previous holder died holding it.
  [[nodiscard]] bool took_over() const noexcept { return took_over_; }

 private:
  LockState& s_;
  bool held_ = false;
  bool took_over_ = false;
};

// Orders a store made before SideLock::unlock() before the loads after it (a
// publisher's "position, then sleepers?" against a sleeper's "sleepers++,
// then position?"). On x86 the unlock's locked exchange already is that
// barrier, so only the compiler needs telling.
inline void fence_after_unlock() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  std::atomic_signal_fence(std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

inline void wake_if_sleeping(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleepers, int n) noexcept {
  if (sleepers.load(std::memory_order_seq_cst) != 0) {
    word.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(word, n);
  }
}

}  // namespace ipckit::detail
