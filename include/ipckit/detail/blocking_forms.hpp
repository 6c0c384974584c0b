// ipckit/detail/blocking_forms.hpp — the timed forms of a blocking call, written once.
//
// Every blocking operation `op` of every primitive is implemented once, as
// `op_by(Deadline)` (detail/deadline.hpp); its public forms only say which
// Deadline they mean. The duration and time-point forms are the same two
// templates on every primitive, so they are generated here:
//
//   IPCKIT_DETAIL_TIMED_FORMS(bool, acquire, acquire_until, acquire_by);
//
// declares, inside the class, with the return type as given (an attribute
// such as [[nodiscard]] may lead it):
//
//   template <class Rep, class Period>
//   bool acquire(const std::chrono::duration<Rep, Period>& timeout);      // acquire_by(Deadline::after(timeout))
//   template <class Clock, class Duration>
//   bool acquire_until(const std::chrono::time_point<Clock, Duration>& t);  // acquire_by(Deadline::at(t))
//
// Any duration is accepted (hours, duration<double>, ...), not only
// nanoseconds: a conversion to nanoseconds at the caller would overflow for
// hours::max(), while Deadline::after saturates it to "no bound". The
// untimed and non-blocking forms are written out by each class: several have
// an inline fast path of their own.
#pragma once

#include <chrono>

#include "ipckit/detail/deadline.hpp"

// The expansion ends in a declaration that wants a semicolon, so that the
// use reads (and is formatted) as one.
#define IPCKIT_DETAIL_TIMED_FORMS(RET, OP, OP_UNTIL, BY)                \
  template <class Rep_, class Period_>                                  \
  RET OP(const ::std::chrono::duration<Rep_, Period_>& timeout) {       \
    return BY(::ipckit::detail::Deadline::after(timeout));              \
  }                                                                     \
  template <class Clock_, class Duration_>                              \
  RET OP_UNTIL(const ::std::chrono::time_point<Clock_, Duration_>& t) { \
    return BY(::ipckit::detail::Deadline::at(t));                       \
  }                                                                     \
  static_assert(true, "IPCKIT_DETAIL_TIMED_FORMS is followed by a semicolon")
