// ipckit/semaphore.hpp — Semaphore and BoundedSemaphore across processes.
//
// Python's threading.Semaphore: a counter of available units. `acquire()`
// takes one, waiting while there are none; `release(n)` gives n back and wakes
// that many waiters. A BoundedSemaphore refuses (TooManyReleases) a release
// that would lift the count above its initial value, which catches a release
// without a matching acquire. An uncontended acquire/release is one atomic
// operation each and makes no system call.
//
//   auto slots = seg.semaphore("slots", 3);
//   { ipckit::SemaphoreGuard g(slots); use_the_resource(); }
//
// Units have no owner (as in Python), so units taken by a process that is
// then killed are lost to everyone. Opt in to owner tracking with
// `SemaphoreOptions{.track_holders = true}` when creating it: then each
// acquire records its holder (thread id + start time), a release gives back
// the caller's unit, and units whose holder died are returned to the pool by
// the next waiter that finds them (within ~25 ms). A tracked semaphore has
// room for 64 distinct holders at once. Its count and its holder table
// change together under a small internal lock, so a holder killed at any
// instruction of acquire() or release() neither loses nor duplicates a unit:
// the next user of the table recomputes the count from the holders. That
// costs a tracked acquire/release one lock and unlock more than an untracked
// one. A process stopped (SIGSTOP) inside that lock delays the others'
// acquire(timeout) by at most its timeout and try_acquire() by ~2 ms (both
// then report no unit); release() waits for it.
//
// The count never exceeds 2^31 - 1 (POSIX's SEM_VALUE_MAX): a release that
// would lift it higher throws InvalidArgument and gives nothing back.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ipckit/detail/async_fwd.hpp"
#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/detail/semaphore_state.hpp"
#include "ipckit/stats.hpp"
#include "ipckit/wait_handle.hpp"

namespace ipckit {

struct SemaphoreOptions {
  bool track_holders = false;  // give back units of holders that die
};

namespace detail {
class SegmentAccess;
}

class Semaphore {
 public:
  // Blocks until a unit is available, then takes it.
  void acquire() {
    if (!tracked_ && detail::semaphore_try_take(*s_)) return;  // the common case: no call
    acquire_by(detail::Deadline::never());
  }
  // acquire(d), acquire_until(t): block at most `d` (any duration) / until
  // `t` (any clock); return whether a unit was taken.
  IPCKIT_DETAIL_TIMED_FORMS(bool, acquire, acquire_until, acquire_by);
  // Never blocks: takes a unit if one is free now.
  bool try_acquire() {
    if (!tracked_) return detail::semaphore_try_take(*s_);
    return acquire_by(detail::Deadline::now());
  }
  // Gives back `n` units (n >= 1). Throws TooManyReleases on a bounded
  // semaphore that would exceed its initial value, NotOwner on a tracked one
  // when the caller holds fewer than `n` units, InvalidArgument for n < 1 or
  // when the count would exceed 2^31 - 1. A release that throws gives nothing back.
  void release(std::uint32_t n = 1) {
    if (n == 1 && !bounded_ && !tracked_ && detail::semaphore_give(*s_, 1)) return;
    release_checked(n);
  }
  [[nodiscard]] std::uint32_t value() const noexcept { return s_->count.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint32_t initial_value() const noexcept { return initial_; }
  [[nodiscard]] bool bounded() const noexcept { return bounded_; }
  [[nodiscard]] bool tracks_holders() const noexcept { return tracked_; }
  // Units returned to the pool because their holder died (tracked semaphores).
  [[nodiscard]] std::uint64_t reclaimed() const noexcept { return s_->reclaimed.load(std::memory_order_relaxed); }
  [[nodiscard]] const std::string& label() const noexcept { return label_.text; }
  [[nodiscard]] SemaphoreStats stats() const;  // a read-only snapshot (ipckit/stats.hpp)
  // A descriptor readable once a unit may be free (ipckit/wait_handle.hpp).
  [[nodiscard]] WaitHandle wait_handle() const;
  // async_acquire([timeout,] [CancelSignal,] token) -> bool: ipckit/asio.hpp.
  template <class... A>
  auto async_acquire(A&&... a) {
    return detail::AsyncOpsFor<Semaphore, A...>::acquire(*this, std::forward<A>(a)...);
  }

  // TimedLockable spelling, so std::lock_guard / std::unique_lock / std::scoped_lock work.
  void lock() { acquire(); }
  bool try_lock() { return try_acquire(); }
  IPCKIT_DETAIL_TIMED_FORMS(bool, try_lock_for, try_lock_until, acquire_by);
  void unlock() { release(); }

 private:
  // Made on a state by Segment::semaphore() (through detail::SegmentAccess).
  // Copies the creator's settings from `s`; throws CorruptSegment if they
  // are not ones a segment can hold.
  friend class detail::SegmentAccess;
  Semaphore(detail::SemaphoreState* s, std::shared_ptr<const void> keepalive, detail::Label label);
  bool acquire_by(detail::Deadline deadline);
  bool acquire_tracked(detail::Deadline deadline);
  bool take_tracked(detail::Deadline deadline);
  void release_checked(std::uint32_t n);
  void release_tracked(std::uint32_t n);
  bool reclaim_dead_holders(detail::Deadline deadline);
  void repair_after_takeover();
  [[noreturn]] void throw_overflow(std::uint32_t n) const;
  detail::SemaphoreState* s_;
  std::shared_ptr<const void> keep_;
  detail::Label label_;
  std::uint32_t initial_ = 0;  // the creator's settings, copied once
  bool bounded_ = false;
  bool tracked_ = false;
};

// Scope guard: acquires in the constructor, releases in the destructor.
class SemaphoreGuard {
 public:
  explicit SemaphoreGuard(Semaphore& s) : s_(s) { s_.acquire(); }
  // Giving back the unit it took fails only on a corrupt segment; ending
  // the program then is better than unwinding past it.
  ~SemaphoreGuard() { s_.release(); }  // NOLINT(bugprone-exception-escape)
  SemaphoreGuard(const SemaphoreGuard&) = delete;
  SemaphoreGuard& operator=(const SemaphoreGuard&) = delete;

 private:
  Semaphore& s_;
};

}  // namespace ipckit
