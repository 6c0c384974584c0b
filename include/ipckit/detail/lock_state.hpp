// ipckit/detail/lock_state.hpp — the shared-memory layout of Lock and RLock,
// with the inline fast paths.
//
// `word` is a futex: 0 when free, else the owner's thread id, with bit 31 set
// when a thread may be sleeping on it. The fast path is one CAS to lock and
// one exchange to unlock; no syscall unless someone sleeps. Crash safety
// costs nothing there: a sleeping waiter wakes every `kLivenessInterval`,
// checks whether the recorded owner still lives and, if not, takes the lock
// over with a CAS and raises `owner_died` for the new owner to see.
//
// Every field but `word` is written only by the owner while holding it (or by
// the thread that took it over), so a process killed at any instant leaves
// at worst a stale owner identity behind, which the liveness check handles.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/thread_id.hpp"

namespace ipckit::detail {

// Checked whenever a process opens a Lock or RLock: change it with the layout.
inline constexpr std::uint32_t kLockLayout = 1;

inline constexpr std::uint32_t kLockWaiters = 0x8000'0000u;
inline constexpr std::uint32_t kLockTidMask = 0x3fff'ffffu;
inline constexpr std::chrono::milliseconds kLivenessInterval{25};

struct alignas(64) LockState {
  std::atomic<std::uint32_t> word{0};
  std::uint32_t depth = 0;                     // RLock recursion depth
  std::atomic<std::uint32_t> owner_tid{0};     // tid whose start time is below
  std::atomic<std::uint32_t> owner_died{0};    // set for the owner that took over
  std::atomic<std::uint64_t> owner_start{0};   // owner's thread start time
  std::atomic<std::uint64_t> recoveries{0};    // takeovers from dead owners, ever
  std::atomic<std::uint64_t> acquisitions{0};  // slow-path acquisitions (contention)
  // kSleeperAsync while a wait handle is armed on `word` (which then also
  // carries kLockWaiters, so that the unlock takes the slow path and rings).
  std::atomic<std::uint32_t> watchers{0};
};
static_assert(sizeof(LockState) == 64);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

struct Label;

// Slow path: spins, then sleeps; returns false on deadline, and at once
// when `reentrant` is false and the caller already owns it (waiting would
// never end: callers that block without a deadline check that first).
// `may_give_up_as`: the lock's label when the wait may end in
// DeadlockDetected (a user's Lock/RLock acquire in a segment with deadlock
// detection on); null for acquires that must not fail (a Condition's lock
// after its wait, a queue's own lock), which still show as links of cycles.
bool lock_slow(LockState& s, const ThreadIdentity& me, Deadline deadline, bool reentrant,
               const Label* may_give_up_as = nullptr);

inline void note_owner(LockState& s, const ThreadIdentity& me) noexcept {
  s.owner_start.store(me.start_ticks, std::memory_order_relaxed);
  s.owner_tid.store(me.tid, std::memory_order_release);
}

inline bool try_lock_fast(LockState& s, const ThreadIdentity& me) noexcept {
  std::uint32_t expected = 0;
  if (s.word.compare_exchange_strong(expected, me.tid, std::memory_order_acquire, std::memory_order_relaxed)) {
    note_owner(s, me);
    return true;
  }
  return false;
}

void wake_one(LockState& s) noexcept;

inline void unlock_owned(LockState& s) noexcept {
  s.owner_tid.store(0, std::memory_order_relaxed);
  if (s.owner_died.load(std::memory_order_relaxed) != 0) s.owner_died.store(0, std::memory_order_relaxed);
  if (s.word.exchange(0, std::memory_order_release) & kLockWaiters) wake_one(s);
}

inline bool owned_by(const LockState& s, const ThreadIdentity& me) noexcept {
  return (s.word.load(std::memory_order_relaxed) & kLockTidMask) == me.tid;
}

}  // namespace ipckit::detail
