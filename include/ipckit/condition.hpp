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
// (an RLock is released fully and restored to its depth). Wake-ups can be
// spurious, as in Python: wait with a predicate, or re-check in a loop.
//
// The condition keeps no per-waiter state: a waiter killed in its wait costs
// nobody a notification. A holder killed with the lock held is handled as
// for Lock: the next one to take it (a notifier, or a waiter on its way out of
// wait()) gets it and sees `owner_died()`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/lock.hpp"

namespace ipckit {

namespace detail {
struct alignas(64) ConditionState {
  LockState own_lock;                       // used when not bound to a named lock
  std::atomic<std::uint32_t> seq{0};        // futex word: bumped by every notify
  std::atomic<std::uint32_t> sleepers{0};
  std::atomic<std::uint64_t> bound_lock{0}; // offset of the named lock it is bound to (0: own)
};
}  // namespace detail

class Condition {
 public:
  // `lock` is the LockState the condition is bound to; `reentrant` when it is an RLock's.
  Condition(detail::ConditionState* s, detail::LockState* lock, bool reentrant, std::shared_ptr<const void> keepalive,
            std::string label);

  // The bound lock, so std::lock_guard / std::unique_lock work on the Condition.
  void lock();
  bool try_lock();
  void unlock();
  // True while the caller holds the bound lock and took it from a holder that died.
  [[nodiscard]] bool owner_died() const noexcept;

  // Releases the lock, sleeps until notified (or spuriously), re-acquires.
  // Throws NotOwner if the caller does not hold the lock.
  void wait();
  // As wait(); returns false if `timeout` passed without a notification.
  bool wait_for(std::chrono::nanoseconds timeout);
  template <class Clock, class Duration>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& t) {
    return wait_for(std::chrono::duration_cast<std::chrono::nanoseconds>(t - Clock::now()));
  }
  // Waits until `pred()` holds (checked with the lock held).
  template <class Pred>
  void wait(Pred pred) {
    while (!pred()) wait();
  }
  // Returns pred()'s last value: false if it still fails when `timeout` is up.
  template <class Pred>
  bool wait_for(std::chrono::nanoseconds timeout, Pred pred) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      const auto left = end - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds::zero()) return pred();
      wait_for(std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    }
    return true;
  }
  template <class Clock, class Duration, class Pred>
  bool wait_until(const std::chrono::time_point<Clock, Duration>& t, Pred pred) {
    return wait_for(std::chrono::duration_cast<std::chrono::nanoseconds>(t - Clock::now()), std::move(pred));
  }

  // Wakes up to `n` waiters (they may also wake spuriously). Python requires
  // the lock to be held here; ipckit does not, but holding it avoids a
  // notification slipping between a waiter's check and its wait.
  void notify(int n = 1) noexcept;
  void notify_all() noexcept;
  [[nodiscard]] const std::string& label() const noexcept { return label_; }

 private:
  bool wait_impl(detail::Deadline deadline);
  detail::ConditionState* s_;
  detail::LockState* lock_;
  bool reentrant_;
  std::shared_ptr<const void> keep_;
  std::string label_;
  Lock plain_;   // views of the bound lock; `reentrant_` says which one is used
  RLock rlock_;
};

}  // namespace ipckit
