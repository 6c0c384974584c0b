// side_lock.hpp — a queue's (or a tracked semaphore's) internal crash-safe
// lock, held for one operation, and the wake-up that follows a change.
// Internal to the library: not installed.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/error.hpp"

namespace ipckit::detail {

// How long a call with a deadline waits for a side lock. The rule:
//
//  1. Until its deadline, but at least kSideLockGrace: a side lock is held for
//     well under a microsecond unless its holder is itself waiting on a full
//     (or empty) queue, so even put_nowait/get_nowait wait this long rather
//     than fail because another producer (consumer) was mid-put.
//  2. Past that only while the queue itself is not the obstacle (there is
//     room / there are items, so the holder is not waiting on the queue) AND
//     the holder is running or runnable, i.e. merely preempted — and then at
//     most kSideLockPatience more.
//  3. Then it gives up (put: Full, get: Empty), naming the holder.
//
// So a holder that is stopped (SIGSTOP, Ctrl-Z, a debugger) or asleep cannot
// keep a timed call past its deadline, nor a non-blocking one past
// kSideLockGrace; one that runs and never lets go, at most kSideLockPatience
// longer. (Python's Queue.get(block=False) raises Empty when it cannot take
// the reader lock at once.) A call without a deadline waits as long as it
// takes: a stopped holder is continued or dies, and a dead holder's lock is
// taken over.
inline constexpr auto kSideLockGrace = std::chrono::milliseconds(2);
// A preempted thread on a loaded machine can wait tens of milliseconds for a
// CPU (over 20 ms was seen with two cores shared by several builds): less
// patience than that turns a busy moment into a spurious Full / Empty.
inline constexpr auto kSideLockPatience = std::chrono::milliseconds(50);

// Why a SideLock with a deadline was not taken.
enum class SideLockMiss : std::uint8_t {
  None,
  Queue,   // the queue was the obstacle (full / empty): the holder waits on it too
  Holder,  // another thread held the lock past the deadline (stopped, asleep, or slow)
};

// Whether the holder of `s` may just be preempted: running, runnable, in a
// brief uninterruptible wait, or gone (its lock is then taken over). Reads
// /proc: for the slow path only.
bool side_lock_holder_may_be_preempted(const LockState& s) noexcept;
// "another live process, pid 123 (thread 124), which is stopped", for error messages.
std::string describe_side_lock_holder(const LockState& s);

// Holds one of the queue's locks for a scope; a lock taken over from a dead
// holder needs no repair (positions move only by single stores), so its
// owner_died flag is simply cleared; `took_over()` tells the caller, for
// state of its own that a dead holder may have left half-done.
class SideLock {
 public:
  // `keep_waiting()` says whether the queue itself is not the obstacle (rule 2).
  // `owner` is the object the lock belongs to, for errors.
  template <class KeepWaiting>
  SideLock(LockState& s, Deadline deadline, const Label& owner, KeepWaiting&& keep_waiting) : s_(s) {
    const auto& me = this_thread();
    // Only an item's own serialize() can get here holding it (a get from
    // inside a get): waiting would never end.
    if (owned_by(s_, me))
      raise<DeadlockDetected>(
          owner,
          "it was used from inside this thread's own get/put on it (from an item's "
          "serialize()?), or while this thread holds a loan or view of it",
          "that would wait forever: publish or release the loan or view first, or do not use it from there");
    held_ = try_lock_fast(s_, me) || lock_slowly(me, deadline, keep_waiting);
    took_over_ = held_ && s_.owner_died.load(std::memory_order_relaxed) != 0;
    if (took_over_) s_.owner_died.store(0, std::memory_order_relaxed);
  }
  ~SideLock() { unlock(); }
  void unlock() noexcept {
    if (held_) unlock_owned(s_);
    held_ = false;
  }
  // Leaves it held past this scope (a loan or view): its owner unlocks it
  // with unlock_owned().
  void keep_held() noexcept { held_ = false; }
  SideLock(const SideLock&) = delete;
  SideLock& operator=(const SideLock&) = delete;
  [[nodiscard]] bool held() const noexcept { return held_; }
  // The previous holder died holding it.
  [[nodiscard]] bool took_over() const noexcept { return took_over_; }
  // When not held: whether the queue or the holder was in the way.
  [[nodiscard]] SideLockMiss miss() const noexcept { return miss_; }

 private:
  template <class KeepWaiting>
  bool lock_slowly(const ThreadIdentity& me, Deadline deadline, KeepWaiting& keep_waiting) {
    if (deadline.is_never()) return lock_slow(s_, me, deadline, false);
    const auto limit = std::max(deadline, Deadline::after(kSideLockGrace));
    if (lock_slow(s_, me, limit, false)) return true;
    const auto last = limit.when() + kSideLockPatience;
    for (;;) {
      if (!keep_waiting()) {
        miss_ = SideLockMiss::Queue;
        return false;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= last || !side_lock_holder_may_be_preempted(s_)) {
        miss_ = SideLockMiss::Holder;
        return false;
      }
      if (lock_slow(s_, me, Deadline::at(std::min(last, now + kSideLockGrace)), false)) return true;
    }
  }

  LockState& s_;
  bool held_ = false;
  bool took_over_ = false;
  SideLockMiss miss_ = SideLockMiss::None;
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
  if (must_wake(sleepers)) {
    word.fetch_add(1, std::memory_order_seq_cst);
    wake_sleepers(word, sleepers, n);
  }
}

// The futex a queue's side waits on when the queue is full (empty): `seq`,
// the count of its `sleepers`, and `seen`, the value of `seq` the waiter
// last looked at. Only the holder of the side's lock waits there, so at
// most one live waiter uses it (dead ones may still be counted).
//
// Why `seen`: a woken waiter stays counted until it gets a CPU again, which
// on a loaded machine takes milliseconds, and a sleeper killed in its sleep
// stays counted for good. Waking whenever sleepers are counted made every
// put in that time a wake system call (measured: 4x4 MPMC with 8 processes
// on 2 CPUs made 250 k wake calls from 13 sleeps per run, and fell from 5-9
// to 0.8 M msg/s; futex.hpp's audit of a count that a wake call finds
// empty, meant for dead sleepers, then made it worse for seconds). A waker
// instead moves `seq` on only from the value the waiter saw and wakes it;
// if `seq` moved past that already, the one who moved it wakes the waiter
// (or its futex wait returns at once): nothing left to do.
struct QueueWaiter {
  std::atomic<std::uint32_t>& seq;
  std::atomic<std::uint32_t>& sleepers;
  std::atomic<std::uint32_t>& seen;

  // In the waiter's `ready()`, before it looks at the queue: records `seq`
  // (no store unless it moved, so that spinning writes nothing), ordered
  // before that look (a seq_cst exchange, as sleeper_enter is): if a waker
  // misses the new value, the look sees its item.
  void about_to_look() noexcept {
    const std::uint32_t v = seq.load(std::memory_order_relaxed);
    if (seen.load(std::memory_order_relaxed) != v) seen.exchange(v, std::memory_order_seq_cst);
  }
  // After a change the waiter waits for, and a full barrier (the waker's
  // "change, then sleepers?" against the waiter's "sleepers++, then change?").
  // A waker that dies between moving `seq` and its wake call leaves the waiter
  // asleep until its next tick.
  void wake() noexcept {
    if (must_wake(sleepers)) [[unlikely]]
      wake_counted();
  }

 private:
  // Out of line, so that the put's and get's inlined fast path stays one load.
  [[gnu::noinline]] void wake_counted() noexcept {
    if ((sleepers.load(std::memory_order_relaxed) & kSleeperAsync) != 0) {
      // Armed wait handles do not record `seen`: every change rings them.
      seq.fetch_add(1, std::memory_order_seq_cst);
      wake_sleepers(seq, sleepers, 1);
      return;
    }
    std::uint32_t v = seen.load(std::memory_order_seq_cst);
    if (seq.load(std::memory_order_relaxed) != v) return;
    if (seq.compare_exchange_strong(v, v + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
      wake_sleepers(seq, sleepers, 1);
  }
};

}  // namespace ipckit::detail
