// ipckit/futures.hpp — waiting on many futures of a ProcessPool: Python's
// concurrent.futures.wait() and as_completed(), and AnyFuture, a future of
// any result type.
//
//   std::vector<ipckit::Future<int>> fs = ...;               // pool.submit(...) each
//   auto [done, not_done] = ipckit::wait(fs, ipckit::FIRST_COMPLETED);
//   for (std::size_t i : done) use(fs[i].get());             // indices into fs
//   for (ipckit::Future<int>& f : ipckit::as_completed(fs, 10s)) use(f.get());
//
// wait() returns INDICES into the caller's range, in input order, where
// Python returns sets of futures: a C++ future has no identity to key a map
// on, so the position in the caller's vector is what ties a future to its
// input (Python's {future: url} dict becomes urls[i]); indices also cost no
// copies and read the same for every element type. as_completed() yields
// the futures themselves, as Python does (copies it holds: the range passed
// may be a temporary).
//
// Futures of different result types wait together as AnyFuture:
//   std::vector<ipckit::AnyFuture> any{pool.submit(square, 3), pool.submit(greet, "x")};
//
// How: each call has one condition variable of its own, which a listener on
// every future not yet done notifies once that future completes (in the
// thread that completes it: the pool's collector thread, which takes results
// at once while listeners wait). No thread per future, no polling. A listener
// stays with its future until the future completes, even when the call
// returned before (by a timeout, or FIRST_COMPLETED): it then only records
// into a structure nobody reads any more.
#pragma once

#include <chrono>
#include <compare>
#include <condition_variable>
#include <cstddef>
#include <iterator>
#include <memory>
#include <mutex>
#include <ranges>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/lazy_range.hpp"
#include "ipckit/error.hpp"
#include "ipckit/pool.hpp"

namespace ipckit {

// When wait() returns (Python's return_when).
enum class ReturnWhen {
  FIRST_COMPLETED,  // one future is done (a value or an error)
  FIRST_EXCEPTION,  // one future failed (a cancelled one does not count), or else all are done
  ALL_COMPLETED,    // all are done
};
using enum ReturnWhen;  // ipckit::FIRST_COMPLETED, as concurrent.futures.FIRST_COMPLETED

// A Future of any result type, for waiting on futures of several types
// together: what it says about the task, not its value. Copies of one future
// compare equal (with == between AnyFuture handles).
class AnyFuture {
 public:
  AnyFuture() = default;
  template <class R>
  AnyFuture(const Future<R>& f);  // NOLINT(google-explicit-constructor): any Future is one

  [[nodiscard]] bool valid() const noexcept { return s_ != nullptr; }
  [[nodiscard]] bool ready() const { return state().wait_by(detail::Deadline::now()); }
  [[nodiscard]] bool done() const { return ready(); }
  void wait() { (void)wait_by(detail::Deadline::never()); }
  IPCKIT_DETAIL_TIMED_FORMS(bool, wait, wait_until, wait_by);
  bool wait_by(detail::Deadline deadline) { return state().wait_by(deadline); }
  // Waits; what the task failed with, or null if it has a value.
  std::exception_ptr exception() {
    wait();
    return state().error;
  }
  // A descriptor readable once the task is done (ipckit/wait_handle.hpp).
  [[nodiscard]] WaitHandle wait_handle() const {
    if (s_ == nullptr) detail::raise_invalid_future();
    return detail::future_wait_handle(s_);
  }
  // async_wait([timeout,] [CancelSignal,] token) -> bool (done): ipckit/asio.hpp.
  template <class... A>
  auto async_wait(A&&... a) {
    return detail::AsyncOpsFor<AnyFuture, A...>::wait(*this, std::forward<A>(a)...);
  }
  friend bool operator==(const AnyFuture& a, const AnyFuture& b) noexcept { return a.s_ == b.s_; }

 private:
  friend struct detail::FutureAccess;
  detail::FutureState& state() const {
    if (s_ == nullptr) detail::raise_invalid_future();
    return *s_;
  }
  std::shared_ptr<detail::FutureState> s_;
};

// wait()'s answer: indices into the range waited on, each in input order.
struct DoneAndNotDone {
  std::vector<std::size_t> done;      // done (a value or an error) when wait() returned
  std::vector<std::size_t> not_done;  // the others
};

namespace detail {

struct FutureAccess {
  template <class R>
  static const std::shared_ptr<FutureState>& shared(const Future<R>& f) noexcept {
    return f.s_;
  }
  // Throws InvalidArgument for a default-made future.
  template <class F>
  static FutureState& state(const F& f) {
    return f.state();
  }
};

template <class F>
inline constexpr bool kFutureHandle = false;
template <class R>
inline constexpr bool kFutureHandle<Future<R>> = true;
template <>
inline constexpr bool kFutureHandle<AnyFuture> = true;

template <class Fs>
concept FutureRange =
    std::ranges::input_range<Fs> && kFutureHandle<std::remove_cvref_t<std::ranges::range_value_t<Fs>>>;

// The futures of one wait() or as_completed() call that are done, as their
// indices in the order they completed.
struct Completions {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::size_t> order;  // guarded by m
  bool failed = false;             // guarded by m: one of them failed

  void add(std::size_t i, bool error) {
    {
      std::lock_guard lock(m);
      order.push_back(i);
      failed = failed || error;
    }
    cv.notify_all();
  }
};

template <class Fs>
std::vector<FutureState*> states_of(Fs&& fs) {
  std::vector<FutureState*> out;
  for (const auto& f : fs) out.push_back(&FutureAccess::state(f));
  return out;
}

// A done future that failed, for FIRST_EXCEPTION: as in Python, a cancelled one did not.
inline bool failed(const FutureState& s) noexcept { return s.error != nullptr && !s.cancelled; }

// Adds the futures done now to c, in input order; the indices of the others.
inline std::vector<std::size_t> scan(Completions& c, const std::vector<FutureState*>& states) {
  std::vector<std::size_t> pending;
  std::lock_guard lock(c.m);
  for (std::size_t i = 0; i < states.size(); ++i) {
    if (states[i]->done.load(std::memory_order_acquire)) {
      c.order.push_back(i);
      c.failed = c.failed || failed(*states[i]);
    } else {
      pending.push_back(i);
    }
  }
  return pending;
}

// Each of `pending` adds itself to c once done (at once if it is by now).
// The state outlives its listener's run: its completer holds it.
inline void listen(const std::shared_ptr<Completions>& c, const std::vector<FutureState*>& states,
                   const std::vector<std::size_t>& pending) {
  for (std::size_t i : pending) {
    FutureState* s = states[i];
    s->add_listener([c, i, s] { c->add(i, failed(*s)); });
  }
}

template <class Fs>
DoneAndNotDone wait_by(Fs&& fs, ReturnWhen when, Deadline deadline) {
  const std::vector<FutureState*> states = states_of(fs);
  auto c = std::make_shared<Completions>();
  const std::vector<std::size_t> pending = scan(*c, states);
  const auto enough = [&] {  // under c->m
    return c->order.size() == states.size() || (when == FIRST_COMPLETED && !c->order.empty()) ||
           (when == FIRST_EXCEPTION && c->failed);
  };
  bool satisfied = false;
  {
    std::lock_guard lock(c->m);
    satisfied = enough();
  }
  if (!satisfied && !deadline.passed()) {  // Python installs its waiters only when it has to wait, too
    listen(c, states, pending);
    std::unique_lock lock(c->m);
    if (deadline.is_never())
      c->cv.wait(lock, enough);
    else
      (void)c->cv.wait_until(lock, deadline.when(), enough);
  }
  DoneAndNotDone out;
  for (std::size_t i = 0; i < states.size(); ++i)
    (states[i]->done.load(std::memory_order_acquire) ? out.done : out.not_done).push_back(i);
  return out;
}

}  // namespace detail

template <class R>
AnyFuture::AnyFuture(const Future<R>& f) : s_(detail::FutureAccess::shared(f)) {}

// Python's concurrent.futures.wait(fs, timeout, return_when): waits until
// `return_when` holds for the futures of `fs` (Future<R>s of one R, or
// AnyFutures) or the timeout passes; which are done and which not, as
// indices. Untimed: waits as long as it takes. An empty range returns at
// once. Throws InvalidArgument for a default-made future in `fs`.
template <detail::FutureRange Fs>
DoneAndNotDone wait(Fs&& fs, ReturnWhen return_when = ALL_COMPLETED) {
  return detail::wait_by(fs, return_when, detail::Deadline::never());
}
template <detail::FutureRange Fs, class Rep, class Period>
DoneAndNotDone wait(Fs&& fs, ReturnWhen return_when, const std::chrono::duration<Rep, Period>& timeout) {
  return detail::wait_by(fs, return_when, detail::Deadline::after(timeout));
}
template <detail::FutureRange Fs, class Rep, class Period>
DoneAndNotDone wait(Fs&& fs, const std::chrono::duration<Rep, Period>& timeout) {
  return detail::wait_by(fs, ALL_COMPLETED, detail::Deadline::after(timeout));
}
template <detail::FutureRange Fs, class Clock, class Duration>
DoneAndNotDone wait_until(Fs&& fs, ReturnWhen return_when, const std::chrono::time_point<Clock, Duration>& t) {
  return detail::wait_by(fs, return_when, detail::Deadline::at(t));
}

// as_completed()'s range: the futures (copies), each yielded once, those
// done at the call first (in input order), then the others as they complete.
// An input range, read once; movable until its iteration begins.
template <class F>
class AsCompleted : public detail::LazyRange<AsCompleted<F>, F> {
 public:
  template <class Fs>
  AsCompleted(Fs&& fs, detail::Deadline deadline) : c_(std::make_shared<detail::Completions>()), deadline_(deadline) {
    for (const auto& f : fs) futures_.push_back(f);
    const std::vector<detail::FutureState*> states = detail::states_of(futures_);
    detail::listen(c_, states, detail::scan(*c_, states));
  }
  AsCompleted(AsCompleted&&) noexcept = default;
  AsCompleted& operator=(AsCompleted&&) noexcept = default;
  AsCompleted(const AsCompleted&) = delete;
  AsCompleted& operator=(const AsCompleted&) = delete;
  ~AsCompleted() = default;

 private:
  friend detail::LazyRange<AsCompleted, F>;
  F& current() { return futures_[current_]; }
  using detail::LazyRange<AsCompleted, F>::finished_;

  // The next future done into current_, or finished_; Timeout once the
  // deadline passes with none done (the range is then finished).
  void advance() {
    if (taken_ == futures_.size()) {
      finished_ = true;
      return;
    }
    std::unique_lock lock(c_->m);
    const auto more = [&] { return c_->order.size() > taken_; };
    const bool any =
        deadline_.is_never() ? (c_->cv.wait(lock, more), true) : c_->cv.wait_until(lock, deadline_.when(), more);
    if (!any) {
      finished_ = true;
      const std::size_t left = futures_.size() - taken_;
      throw Timeout("as_completed", "ipckit: as_completed: " + std::to_string(left) + " (of " +
                                        std::to_string(futures_.size()) +
                                        ") futures are not done by the timeout; allow longer, or wait() for them");
    }
    current_ = c_->order[taken_++];
  }

  std::vector<F> futures_;
  std::shared_ptr<detail::Completions> c_;
  detail::Deadline deadline_;
  std::size_t taken_ = 0;  // futures yielded
  std::size_t current_ = 0;
};

namespace detail {
template <class Fs>
using AsCompletedOf = AsCompleted<std::remove_cvref_t<std::ranges::range_value_t<Fs>>>;
}  // namespace detail

// Python's concurrent.futures.as_completed(fs, timeout): an input range
// (range-for) yielding each future of `fs` as it completes, those done
// already first. Untimed: waits as long as it takes. With a timeout
// (counted from this call), the step that would pass it throws Timeout,
// naming how many futures are still pending. Throws InvalidArgument for a
// default-made future in `fs`.
template <detail::FutureRange Fs>
detail::AsCompletedOf<Fs> as_completed(Fs&& fs) {
  return {fs, detail::Deadline::never()};
}
template <detail::FutureRange Fs, class Rep, class Period>
detail::AsCompletedOf<Fs> as_completed(Fs&& fs, const std::chrono::duration<Rep, Period>& timeout) {
  return {fs, detail::Deadline::after(timeout)};
}
template <detail::FutureRange Fs, class Clock, class Duration>
detail::AsCompletedOf<Fs> as_completed_until(Fs&& fs, const std::chrono::time_point<Clock, Duration>& t) {
  return {fs, detail::Deadline::at(t)};
}

}  // namespace ipckit
