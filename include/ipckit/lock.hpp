// ipckit/lock.hpp — crash-safe Lock and RLock shared between processes.
//
// A Lock is a mutual-exclusion lock that lives in a Segment and is found by
// name from any process; it works with std::lock_guard, std::unique_lock and
// std::scoped_lock, and between threads of one process as well.
//
//   auto lock = seg.lock("A");
//   {
//     std::lock_guard g(lock);
//     if (lock.owner_died()) repair_shared_state();   // previous holder was killed
//     ...
//   }
//
// When a holder dies (even by SIGKILL) the next acquirer gets the lock within
// a few tens of milliseconds and `owner_died()` is true until it unlocks or
// calls `mark_consistent()`: the state the lock protected may be half updated,
// and that is never hidden. An uncontended lock/unlock is one atomic each and
// makes no system call.
//
// RLock may be re-acquired by the thread that holds it; it counts acquisitions
// and is released by the matching number of unlocks.
//
// Handles are cheap to copy; every copy names the same lock. A handle keeps
// its segment mapped.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ipckit/detail/async_fwd.hpp"
#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/stats.hpp"
#include "ipckit/wait_handle.hpp"

namespace ipckit {

// Who holds a lock right now, as seen by `holder()`.
struct LockHolder {
  int pid = 0;  // process id (0 when the holding thread is gone)
  std::uint32_t tid = 0;
  bool alive = false;  // false: the holder died; the next acquirer takes over
};

namespace detail {

// What Lock and RLock share: the state pointer, the mapping it lives in and
// who it is, for messages ("lock 'A' in segment 'demo'").
class SegmentAccess;

class LockHandle {
 public:
  // True while the caller holds the lock and took it over from a holder that
  // died. Never throws.
  [[nodiscard]] bool owner_died() const noexcept {
    return owned_by(*s_, this_thread()) && s_->owner_died.load(std::memory_order_relaxed) != 0;
  }
  // The caller has repaired what the dead holder left: owner_died() turns false.
  // Throws NotOwner if the caller does not hold the lock.
  void mark_consistent();

  [[nodiscard]] bool locked() const noexcept { return (s_->word.load(std::memory_order_relaxed) & kLockTidMask) != 0; }
  [[nodiscard]] bool held_by_me() const noexcept { return owned_by(*s_, this_thread()); }
  [[nodiscard]] std::optional<LockHolder> holder() const;
  // How many times a dead holder's lock was taken over, over the lock's life.
  [[nodiscard]] std::uint64_t recoveries() const noexcept { return s_->recoveries.load(std::memory_order_relaxed); }
  [[nodiscard]] const std::string& label() const noexcept { return label_.text; }
  [[nodiscard]] LockStats stats() const;  // a read-only snapshot (ipckit/stats.hpp)
  // A descriptor readable once the lock may be free, or its holder died
  // (ipckit/wait_handle.hpp). A lock belongs to a thread: take it with
  // try_lock() in the thread that will unlock it.
  [[nodiscard]] WaitHandle wait_handle() const;

 protected:
  friend class SegmentAccess;  // hands the state to a condition bound to the lock
  LockHandle(LockState* state, std::shared_ptr<const void> keepalive, Label label)
      : s_(state), keep_(std::move(keepalive)), label_(std::move(label)) {}
  bool acquire(Deadline deadline, bool reentrant);
  void acquire_or_throw(Deadline deadline, bool reentrant);
  [[noreturn]] void throw_not_owner(const char* action) const;

  LockState* s_;
  std::shared_ptr<const void> keep_;
  Label label_;
};

}  // namespace detail

class Lock : public detail::LockHandle {
 public:
  // Blocks until acquired. Throws DeadlockDetected if this thread already holds it.
  void lock() {
    if (!detail::try_lock_fast(*s_, detail::this_thread())) acquire(detail::Deadline::never(), false);
  }
  // lock(d), lock_until(t): block at most `d` (any duration) / until `t`
  // (any clock); throw Timeout naming the lock and its holder (for code
  // where not getting the lock is an error; the try_lock forms return false
  // instead).
  IPCKIT_DETAIL_TIMED_FORMS(void, lock, lock_until, lock_or_throw);
  // Never blocks. Takes the lock over if its holder died.
  [[nodiscard]] bool try_lock() { return try_lock_by(detail::Deadline::now()); }
  // async_acquire([timeout,] [CancelSignal,] token) -> bool: ipckit/asio.hpp
  // (the lock is then held by the thread that runs the completion).
  template <class... A>
  auto async_acquire(A&&... a) {
    return detail::AsyncOpsFor<Lock, A...>::acquire(*this, std::forward<A>(a)...);
  }
  // try_lock_for(d), try_lock_until(t): false if not acquired in time.
  IPCKIT_DETAIL_TIMED_FORMS([[nodiscard]] bool, try_lock_for, try_lock_until, try_lock_by);
  // Every form above in one call, for ipckit's own primitives.
  [[nodiscard]] bool try_lock_by(detail::Deadline deadline) {
    return detail::try_lock_fast(*s_, detail::this_thread()) || acquire(deadline, false);
  }
  // Throws NotOwner unless the calling thread holds the lock.
  void unlock() {
    if (!detail::owned_by(*s_, detail::this_thread())) [[unlikely]]
      throw_not_owner("unlock");
    detail::unlock_owned(*s_);
  }

 private:
  // Made on a state by Segment::lock() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  Lock(detail::LockState* s, std::shared_ptr<const void> keepalive, detail::Label label)
      : LockHandle(s, std::move(keepalive), std::move(label)) {}
  void lock_or_throw(detail::Deadline deadline) { acquire_or_throw(deadline, false); }
};

class RLock : public detail::LockHandle {
 public:
  void lock() {
    const auto& me = detail::this_thread();
    if (detail::owned_by(*s_, me)) {
      ++s_->depth;
    } else if (detail::try_lock_fast(*s_, me) || acquire(detail::Deadline::never(), true)) {
      s_->depth = 1;
    }
  }
  // The other forms as Lock's; re-acquiring a lock the thread holds succeeds at once.
  IPCKIT_DETAIL_TIMED_FORMS(void, lock, lock_until, lock_or_throw);
  [[nodiscard]] bool try_lock() { return try_lock_by(detail::Deadline::now()); }
  // async_acquire([timeout,] [CancelSignal,] token) -> bool: ipckit/asio.hpp
  // (the lock is then held by the thread that runs the completion).
  template <class... A>
  auto async_acquire(A&&... a) {
    return detail::AsyncOpsFor<RLock, A...>::acquire(*this, std::forward<A>(a)...);
  }
  IPCKIT_DETAIL_TIMED_FORMS([[nodiscard]] bool, try_lock_for, try_lock_until, try_lock_by);
  [[nodiscard]] bool try_lock_by(detail::Deadline deadline) {
    const auto& me = detail::this_thread();
    if (detail::owned_by(*s_, me)) {
      ++s_->depth;
      return true;
    }
    if (!detail::try_lock_fast(*s_, me) && !acquire(deadline, true)) return false;
    s_->depth = 1;
    return true;
  }
  // Throws NotOwner unless the calling thread holds the lock.
  void unlock() {
    if (!detail::owned_by(*s_, detail::this_thread())) [[unlikely]]
      throw_not_owner("unlock");
    if (--s_->depth == 0) detail::unlock_owned(*s_);
  }
  // How many times the calling thread holds it (0 if it does not).
  [[nodiscard]] std::uint32_t depth() const noexcept { return held_by_me() ? s_->depth : 0; }

 private:
  // Made on a state by Segment::rlock() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  RLock(detail::LockState* s, std::shared_ptr<const void> keepalive, detail::Label label)
      : LockHandle(s, std::move(keepalive), std::move(label)) {}
  void lock_or_throw(detail::Deadline deadline) {
    if (detail::owned_by(*s_, detail::this_thread())) {
      ++s_->depth;
      return;
    }
    acquire_or_throw(deadline, true);
    s_->depth = 1;
  }
};

}  // namespace ipckit
