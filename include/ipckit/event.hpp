// ipckit/event.hpp — Event: a flag that processes wait for.
//
// Python's threading.Event across processes: `set()` raises the flag and wakes
// every waiter in every process; `clear()` lowers it; `wait()` returns as soon
// as it is set. A waiter spins briefly before it sleeps, so a peer that is
// already running answers in about a microsecond, and an idle waiter costs no
// CPU. A process killed while waiting takes nothing with it: the next set()
// still wakes every living waiter.
//
//   auto green = seg.event("green");
//   if (!green.wait(2s)) { ... }   // timed out
//   green.set();
//
// wait() comes in the four forms of every blocking call (README, "Blocking
// calls"): wait(), wait(d), wait_until(t) of any clock, and try_wait(); each
// returns whether the flag is set, as Python's wait() does.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ipckit/detail/async_fwd.hpp"
#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/event_state.hpp"
#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/stats.hpp"
#include "ipckit/wait_handle.hpp"

namespace ipckit {

namespace detail {
class SegmentAccess;
}

class Event {
 public:
  // Raises the flag and wakes every waiter. Never throws.
  void set() noexcept;
  // Lowers the flag. Never throws.
  void clear() noexcept { s_->flag.store(0, std::memory_order_seq_cst); }
  [[nodiscard]] bool is_set() const noexcept { return s_->flag.load(std::memory_order_acquire) != 0; }
  // Blocks until the flag is set; returns true (as Python's wait()).
  bool wait() { return is_set() || wait_by(detail::Deadline::never()); }
  // wait(d), wait_until(t): block at most `d` (any duration) / until `t`
  // (any clock); return whether the flag is set (as Python's wait(timeout)).
  IPCKIT_DETAIL_TIMED_FORMS(bool, wait, wait_until, set_or_wait_by);
  // Never blocks: whether the flag is set.
  [[nodiscard]] bool try_wait() const noexcept { return is_set(); }
  [[nodiscard]] const std::string& label() const noexcept { return label_.text; }
  [[nodiscard]] EventStats stats() const;  // a read-only snapshot (ipckit/stats.hpp)
  // A descriptor readable once the flag may be set (ipckit/wait_handle.hpp).
  [[nodiscard]] WaitHandle wait_handle() const;
  // async_wait([timeout,] [CancelSignal,] token) -> bool: ipckit/asio.hpp.
  template <class... A>
  auto async_wait(A&&... a) {
    return detail::AsyncOpsFor<Event, A...>::wait(*this, std::forward<A>(a)...);
  }

 private:
  // Made on a state by Segment::event() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  Event(detail::EventState* s, std::shared_ptr<const void> keepalive, detail::Label label)
      : s_(s), keep_(std::move(keepalive)), label_(std::move(label)) {}
  bool wait_by(detail::Deadline deadline);
  // A set flag answers without a call (or a look at the clock).
  bool set_or_wait_by(detail::Deadline deadline) { return is_set() || wait_by(deadline); }
  detail::EventState* s_;
  std::shared_ptr<const void> keep_;
  detail::Label label_;
};

}  // namespace ipckit
