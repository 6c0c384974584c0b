// ipckit/condition.hpp — Condition: wait until another process says so.
//
// Python's threading.Condition across processes. A Condition is bound to a
// lock: its own (seg.condition(name)) or a named Lock or RLock
// (seg.condition(name, lock)); it is itself lockable, so
//
//   auto ready = seg.condition("ready");
//   { std::unique_lock g(ready); ready.wait([&] { return items.get() > 0; }); ... }   // consumer
//   { std::lock_guard g(ready); items.set(items.get() + 1); ready.notify(); }          // producer
//
// `wait()` must be called holding the lock (else NotOwner); it releases the
// lock, sleeps until notified, and takes the lock again before returning
// (an RLock is released fully and restored to its depth). Wait with a
// predicate, or re-check in a loop, as with any condition variable: another
// thread may take the lock (and what was notified) first, and beyond 256
// simultaneous waiters the extra ones can wake spuriously.
//
// notify(n) wakes at most n of the threads that were waiting when it was
// called, the longest-waiting first, and never one that began waiting after
// it; notify_all() wakes all of those. `wait_for(t)` returns true only when
// the caller consumed a notification, false when its time ran out. A waiter
// killed in its wait costs nobody a notification: one it had been given and
// not consumed is passed on to another waiter within about 0.1 s (see
// detail/condition_state.hpp for how, and for what happens beyond 256
// simultaneous waiters). A holder killed with the lock held is handled as
// for Lock: the next one to take it (a notifier, or a waiter on its way out
// of wait()) gets it and sees `owner_died()`.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>

#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/condition_state.hpp"
#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/lock.hpp"

namespace ipckit {

namespace detail {
class SegmentAccess;
}

class Condition {
 public:
  // The bound lock, so std::lock_guard / std::unique_lock work on the Condition.
  void lock();
  bool try_lock();
  void unlock();
  // True while the caller holds the bound lock and took it from a holder that died.
  [[nodiscard]] bool owner_died() const noexcept;

  // Releases the lock, sleeps until notified, re-acquires; returns true.
  // Throws NotOwner if the caller does not hold the lock, CorruptSegment if
  // the condition's shared state was overwritten (the lock is held again
  // then too).
  bool wait() { return wait_by(detail::Deadline::never()); }
  // wait(d), wait_until(t): as wait(); true if it consumed a notification,
  // false if `d` (any duration) passed / `t` (any clock) came without one
  // (Python's wait(timeout)). wait_for is the same call under
  // std::condition_variable's name.
  IPCKIT_DETAIL_TIMED_FORMS(bool, wait, wait_until, wait_by);
  template <class Rep, class Period>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout) {
    return wait(timeout);
  }
  // Waits until `pred()` holds (checked with the lock held), as Python's wait_for(pred).
  template <std::predicate Pred>
  void wait(Pred pred) {
    while (!pred()) wait();
  }
  // Returns pred()'s last value: false if it still fails when `timeout` is up.
  template <class Rep, class Period, std::predicate Pred>
  bool wait(const std::chrono::duration<Rep, Period>& timeout, Pred pred) {
    return wait_by(detail::Deadline::after(timeout), std::move(pred));
  }
  template <class Rep, class Period, std::predicate Pred>
  bool wait_for(const std::chrono::duration<Rep, Period>& timeout, Pred pred) {
    return wait(timeout, std::move(pred));
  }
  template <class Clock, class Duration, std::predicate Pred>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& t, Pred pred) {
    return wait_by(detail::Deadline::at(t), std::move(pred));
  }

  // Wakes up to `n` of the waiters waiting now, longest-waiting first.
  // Python requires the lock to be held here; ipckit does not, but holding
  // it avoids a notification slipping between a waiter's check and its wait.
  void notify(int n = 1) noexcept;
  void notify_all() noexcept;
  [[nodiscard]] const std::string& label() const noexcept { return label_.text; }
  [[nodiscard]] ConditionStats stats() const;  // a read-only snapshot (ipckit/stats.hpp)

 private:
  // Made on a state by Segment::condition() (through detail::SegmentAccess).
  // `lock` is the LockState it is bound to; `reentrant` when it is an RLock's.
  friend class detail::SegmentAccess;
  Condition(detail::ConditionState* s, detail::LockState* lock, bool reentrant, std::shared_ptr<const void> keepalive,
            detail::Label label);
  bool wait_by(detail::Deadline deadline);
  template <class Pred>
  bool wait_by(detail::Deadline deadline, Pred pred) {
    while (!pred()) {
      if (deadline.passed()) return pred();
      wait_by(deadline);
    }
    return true;
  }
  // What a waiter holds between releasing the lock and retaking it.
  struct Enlisted {
    int slot = -1;           // -1: no slot free, waits as an overflow waiter
    std::uint32_t word = 0;  // its WAITING word (slot) or the overflow_seq seen
  };
  Enlisted enlist(const detail::ThreadIdentity& me);
  enum class WaitEnd { Notified, TimedOut, Corrupt };
  WaitEnd sleep_in_slot(const Enlisted& e, detail::Deadline deadline) noexcept;
  bool sleep_in_overflow(const Enlisted& e, detail::Deadline deadline) noexcept;
  void notify_n(std::uint32_t n) noexcept;
  detail::ConditionState* s_;
  detail::LockState* lock_;
  bool reentrant_;
  std::shared_ptr<const void> keep_;
  detail::Label label_;
  Lock plain_;  // views of the bound lock; `reentrant_` says which one is used
  RLock rlock_;
};

}  // namespace ipckit
