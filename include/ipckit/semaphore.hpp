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
// room for 64 distinct holders at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/holders.hpp"

namespace ipckit {

struct SemaphoreOptions {
  bool track_holders = false;  // give back units of holders that die
};

namespace detail {
inline constexpr std::uint32_t kSemaphoreHolderSlots = 64;
struct SemaphoreState;
bool semaphore_try_take(SemaphoreState& s) noexcept;
struct alignas(64) SemaphoreState {
  std::atomic<std::uint32_t> count{0};    // futex word: units available
  std::atomic<std::uint32_t> sleepers{0};
  std::uint32_t initial = 0;
  std::uint32_t bounded = 0;              // 1: releases above `initial` throw
  std::uint32_t track_holders = 0;
  std::atomic<std::uint64_t> reclaimed{0};  // units given back from dead holders
  alignas(64) std::atomic<std::uint32_t> holders_lock{0};  // spin lock for the table
  HolderSlot holders[kSemaphoreHolderSlots];
};

inline bool semaphore_try_take(SemaphoreState& s) noexcept {
  std::uint32_t c = s.count.load(std::memory_order_relaxed);
  while (c > 0) {
    if (s.count.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  }
  return false;
}

inline void semaphore_give(SemaphoreState& s, std::uint32_t n) noexcept {
  s.count.fetch_add(n, std::memory_order_seq_cst);
  if (s.sleepers.load(std::memory_order_seq_cst) != 0) futex_wake(s.count, static_cast<int>(n));
}
}  // namespace detail

class Semaphore {
 public:
  Semaphore(detail::SemaphoreState* s, std::shared_ptr<const void> keepalive, std::string label)
      : s_(s), keep_(std::move(keepalive)), label_(std::move(label)) {}

  // Blocks until a unit is available, then takes it.
  void acquire() {
    if (s_->track_holders == 0 && detail::semaphore_try_take(*s_)) return;  // the common case: no call
    acquire_until(std::nullopt);
  }
  // Blocks at most `timeout`; returns whether a unit was taken.
  bool acquire(std::chrono::nanoseconds timeout);
  // Never blocks.
  bool try_acquire();
  // Gives back `n` units (n >= 1). Throws TooManyReleases on a bounded
  // semaphore that would exceed its initial value, NotOwner on a tracked one
  // when the caller holds fewer than `n` units, InvalidArgument for n < 1.
  void release(std::uint32_t n = 1) {
    if (n == 1 && s_->bounded == 0 && s_->track_holders == 0) return detail::semaphore_give(*s_, 1);
    release_checked(n);
  }
  [[nodiscard]] std::uint32_t value() const noexcept { return s_->count.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint32_t initial_value() const noexcept { return s_->initial; }
  [[nodiscard]] bool bounded() const noexcept { return s_->bounded != 0; }
  [[nodiscard]] bool tracks_holders() const noexcept { return s_->track_holders != 0; }
  // Units returned to the pool because their holder died (tracked semaphores).
  [[nodiscard]] std::uint64_t reclaimed() const noexcept { return s_->reclaimed.load(std::memory_order_relaxed); }
  [[nodiscard]] const std::string& label() const noexcept { return label_; }

  // Lockable spelling, so std::lock_guard / std::unique_lock / std::scoped_lock work.
  void lock() { acquire(); }
  bool try_lock() { return try_acquire(); }
  void unlock() { release(); }

 private:
  bool acquire_until(detail::Deadline deadline);
  void release_checked(std::uint32_t n);
  void record_holder(std::uint32_t units);
  bool reclaim_dead_holders();
  detail::SemaphoreState* s_;
  std::shared_ptr<const void> keep_;
  std::string label_;
};

// Scope guard: acquires in the constructor, releases in the destructor.
class SemaphoreGuard {
 public:
  explicit SemaphoreGuard(Semaphore& s) : s_(s) { s_.acquire(); }
  ~SemaphoreGuard() { s_.release(); }
  SemaphoreGuard(const SemaphoreGuard&) = delete;
  SemaphoreGuard& operator=(const SemaphoreGuard&) = delete;

 private:
  Semaphore& s_;
};

}  // namespace ipckit
