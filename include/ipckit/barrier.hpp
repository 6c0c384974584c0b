// ipckit/barrier.hpp — Barrier: N processes start each phase together.
//
// Python's threading.Barrier across processes. `wait()` blocks until
// `parties` callers have arrived, then releases them all and returns each a
// distinct arrival index (0 .. parties-1). The barrier is then reused for the
// next phase.
//
//   auto start = seg.barrier("start", 4, {.action = [] { log_phase(); }, .timeout = 5s});
//   std::uint32_t index = start.wait();
//
// Options (BarrierOptions), Python's `action=` and `timeout=`, belong to the
// handle: a function cannot live in shared memory. `action` is run by exactly
// one party when the barrier trips: the last to arrive, in its own process,
// after every party has arrived and before any is released, so that what it
// writes is seen by all of them when their wait() returns. Give every
// process the same action: the last arrival runs its own handle's (none if
// its handle has none). `timeout` is the bound of the untimed wait() (a
// wait(d) or wait_until(t) uses its own).
//
// A barrier breaks — every current and later wait() throws BrokenBarrier,
// until reset() — when a wait times out, when abort() is called, when the
// action throws (its exception goes on in the party that ran it, as in
// Python; the others get BrokenBarrier), or when a party dies: a process
// becomes a party at its first wait(), and if one that took part in the
// previous phase is found dead (pid + start time, checked every ~25 ms by the
// sleepers) before arriving in the current one, the others get BrokenBarrier
// instead of hanging. A process that dies before its first wait() is unknown
// to the barrier: use a timed wait to cover that. A process that is done
// with a barrier others go on using calls leave() before it exits, so that
// its end is not taken for a death; reset() forgets every party.
//
// The action runs holding the barrier's internal lock (no party can arrive,
// leave or reset meanwhile). If its process dies inside it, the sleepers find
// the lock's holder dead within ~25 ms and break the barrier. A wait whose
// time runs out while the action runs breaks the round (see "Sealing" in
// detail/barrier_state.hpp): its party, the others and the one running the
// action all get BrokenBarrier (the last once its action returns), never
// some released and some broken.
//
// A timed wait() keeps its deadline (+ a few ms) whatever another process
// does, even one stopped (SIGSTOP, a debugger) while it holds the barrier's
// internal lock: a wait that cannot get the lock in time, or cannot get it
// to record its timeout, breaks the barrier without it and throws
// BrokenBarrier. abort() does not take the lock either. reset() and leave()
// come in the four forms; the bounded ones return false, having done
// nothing, when the lock cannot be had in time.
//
// Corruption: the party count is copied into the handle when it is opened
// (CorruptSegment if the shared one is out of range) and the shared counts
// are checked against it on every wait(): a stray write is CorruptSegment,
// never a wait that cannot end.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ipckit/detail/barrier_state.hpp"
#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/lock.hpp"

namespace ipckit {

namespace detail {
class SegmentAccess;
}

// Per-handle options of a barrier (see above): Python's `action=` and `timeout=`.
struct BarrierOptions {
  std::function<void()> action;                     // run by the last arrival before the round is released
  std::optional<std::chrono::nanoseconds> timeout;  // the bound of wait(); none: it waits as long as it takes
};

class Barrier {
 public:
  // Blocks until all parties arrive (at most the options' timeout, if set);
  // returns this caller's arrival index. Throws BrokenBarrier if the barrier
  // is or becomes broken (a timeout breaks it), or what the action threw in
  // the party that ran it.
  std::uint32_t wait() { return wait_by(timeout_ ? detail::Deadline::after(*timeout_) : detail::Deadline::never()); }
  // wait(d), wait_until(t): as wait(), bounded by `d` (any duration) / `t`
  // (any clock) instead of the options' timeout.
  IPCKIT_DETAIL_TIMED_FORMS(std::uint32_t, wait, wait_until, wait_by);
  // Breaks the barrier: current and future waiters get BrokenBarrier.
  void abort() noexcept;
  // Returns the barrier to its initial, unbroken state (waiters in the
  // current phase get BrokenBarrier, as in Python). The bounded forms return
  // false, having changed nothing, if the internal lock is not had in time
  // (its holder is running the action, or stopped): reset(d), reset_until(t), try_reset().
  void reset() { (void)reset_by(detail::Deadline::never()); }
  IPCKIT_DETAIL_TIMED_FORMS([[nodiscard]] bool, reset, reset_until, reset_by);
  [[nodiscard]] bool try_reset() { return reset_by(detail::Deadline::now()); }
  // This process takes no further part: its exit will not break the barrier.
  // Bounded forms as for reset(): leave(d), leave_until(t), try_leave().
  void leave() { (void)leave_by(detail::Deadline::never()); }
  IPCKIT_DETAIL_TIMED_FORMS([[nodiscard]] bool, leave, leave_until, leave_by);
  [[nodiscard]] bool try_leave() { return leave_by(detail::Deadline::now()); }
  [[nodiscard]] bool broken() const noexcept {
    return detail::barrier_broken(s_->broken.load(std::memory_order_acquire));
  }
  [[nodiscard]] std::uint32_t parties() const noexcept { return parties_; }
  // How many are waiting in the current phase (all of its parties while the
  // action runs; 0 once it is broken: its waiters are being released).
  [[nodiscard]] std::uint32_t n_waiting() const noexcept;
  [[nodiscard]] const std::string& label() const noexcept { return label_.text; }
  [[nodiscard]] BarrierStats stats() const;  // a read-only snapshot (ipckit/stats.hpp)
  // The options' timeout (Python's `timeout` attribute).
  [[nodiscard]] std::optional<std::chrono::nanoseconds> timeout() const noexcept { return timeout_; }

 private:
  // Made on a state by Segment::barrier() (through detail::SegmentAccess).
  // Throws CorruptSegment if the shared party count is out of range.
  friend class detail::SegmentAccess;
  Barrier(detail::BarrierState* s, std::shared_ptr<const void> keepalive, detail::Label label,
          BarrierOptions options = {});
  std::uint32_t wait_by(detail::Deadline deadline);
  bool reset_by(detail::Deadline deadline);
  bool leave_by(detail::Deadline deadline);
  std::uint32_t arrive_locked(std::uint32_t& my_round);
  void trip_locked(std::uint32_t my_round, std::uint32_t index);
  std::uint32_t outcome(std::uint32_t my_round, std::uint32_t index) const;
  [[nodiscard]] Lock internal_lock() const;
  bool lock_by(Lock& lock, detail::Deadline deadline);
  void recover_locked() noexcept;
  void finish_round_locked(std::uint32_t round) noexcept;
  void break_locked(detail::BreakReason why) noexcept;
  bool break_unlocked(detail::BreakReason why) noexcept;
  [[noreturn]] void throw_broken() const;
  [[noreturn]] void throw_corrupt(const std::string& what) const;
  bool missing_party_died(std::uint32_t round) const noexcept;
  detail::BarrierState* s_;
  std::uint32_t parties_;  // copied at open: the shared one is only checked against it
  std::shared_ptr<const void> keep_;
  detail::Label label_;
  std::function<void()> action_;
  std::optional<std::chrono::nanoseconds> timeout_;
};

}  // namespace ipckit
