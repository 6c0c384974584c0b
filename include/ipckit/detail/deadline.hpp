// ipckit/detail/deadline.hpp — when a blocking call gives up.
//
// Every blocking call of every primitive comes in four forms (see the README's
// table): untimed, timed with a duration, with a time point of any clock
// (`..._until`), and non-blocking (`try_...` / `..._nowait`). All four reach
// the implementation as one Deadline:
//
//   Deadline::never()     untimed: wait as long as it takes
//   Deadline::now()       non-blocking: one try, no spinning, no sleeping
//   Deadline::after(d)    timed: d from now; d <= 0 is now()
//   Deadline::at(t)       any clock's time point; one already past is a single try
//
// A Deadline is a steady_clock instant, with the extremes standing for never
// and now, so that comparing and taking the earlier of two needs no special
// cases. Durations too long to add to the clock saturate to never() instead
// of overflowing.
#pragma once

#include <chrono>
#include <compare>
#include <ratio>
#include <type_traits>

namespace ipckit::detail {

// `d` in nanoseconds, clamped to what nanoseconds can hold (a duration of
// hours::max() or a floating duration does not overflow into the past; a
// NaN means no time at all).
template <class Rep, class Period>
constexpr std::chrono::nanoseconds saturating_ns(const std::chrono::duration<Rep, Period>& d) noexcept {
  using std::chrono::nanoseconds;
  if constexpr (std::is_same_v<std::chrono::duration<Rep, Period>, nanoseconds>) {
    return d;
  } else {
    const std::chrono::duration<long double, std::nano> wide = d;
    if (wide.count() != wide.count()) return nanoseconds::zero();  // NaN: no wait, a single try
    if (wide.count() >= static_cast<long double>(nanoseconds::max().count())) return nanoseconds::max();
    if (wide.count() <= static_cast<long double>(nanoseconds::min().count())) return nanoseconds::min();
    return nanoseconds(static_cast<nanoseconds::rep>(wide.count()));
  }
}

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  [[nodiscard]] static constexpr Deadline never() noexcept { return Deadline(Clock::time_point::max()); }
  [[nodiscard]] static constexpr Deadline now() noexcept { return Deadline(Clock::time_point::min()); }
  [[nodiscard]] static Deadline after(std::chrono::nanoseconds d) noexcept {
    if (d <= std::chrono::nanoseconds::zero()) return now();
    const auto start = Clock::now();
    if (d >= Clock::time_point::max() - start) return never();
    return Deadline(start + d);
  }
  template <class Rep, class Period>
  [[nodiscard]] static Deadline after(const std::chrono::duration<Rep, Period>& d) noexcept {
    return after(saturating_ns(d));
  }
  template <class C, class D>
  [[nodiscard]] static Deadline at(const std::chrono::time_point<C, D>& t) noexcept {
    if constexpr (std::is_same_v<C, Clock> && std::is_same_v<D, Clock::duration>) {
      return Deadline(t);  // the extremes are never() and now() already
    } else {
      if (t == std::chrono::time_point<C, D>::max()) return never();
      // Another clock: converted once, by its distance from now (compared
      // first, so that a time point far in the past cannot overflow it).
      const auto from = C::now();
      if (t <= from) return now();
      return after(t - from);
    }
  }

  [[nodiscard]] constexpr bool is_never() const noexcept { return t_ == Clock::time_point::max(); }
  // A non-blocking call: one try, no spinning.
  [[nodiscard]] constexpr bool is_now() const noexcept { return t_ == Clock::time_point::min(); }
  // Reads the clock only for a deadline that is neither never nor now (the
  // untimed and non-blocking forms never pay for it).
  [[nodiscard]] bool passed() const noexcept { return !is_never() && (is_now() || t_ <= Clock::now()); }
  [[nodiscard]] constexpr bool passed(Clock::time_point now) const noexcept { return !is_never() && t_ <= now; }
  // Time left (zero once passed; nanoseconds::max() for never).
  [[nodiscard]] constexpr std::chrono::nanoseconds left(Clock::time_point now) const noexcept {
    if (is_never()) return std::chrono::nanoseconds::max();
    if (t_ <= now) return std::chrono::nanoseconds::zero();
    return t_ - now;
  }
  [[nodiscard]] std::chrono::nanoseconds left() const noexcept { return left(Clock::now()); }
  // How long to sleep before looking again: `tick`, or less when the deadline comes first.
  [[nodiscard]] std::chrono::nanoseconds nap(std::chrono::nanoseconds tick, Clock::time_point now) const noexcept {
    const auto l = left(now);
    return l < tick ? l : tick;
  }
  [[nodiscard]] constexpr Clock::time_point when() const noexcept { return t_; }

  friend constexpr auto operator<=>(const Deadline&, const Deadline&) = default;

 private:
  constexpr explicit Deadline(Clock::time_point t) noexcept : t_(t) {}
  Clock::time_point t_;
};

}  // namespace ipckit::detail
