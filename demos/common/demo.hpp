// demos/common/demo.hpp — the few helpers every demo prints and times with.
#pragma once

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>

namespace demo {

using Clock = std::chrono::steady_clock;

// printf, then flush: demo processes die by SIGKILL or _exit, and a line left
// in a stdio buffer would be lost; one write per call also keeps the lines
// of several processes from mixing.
__attribute__((format(printf, 1, 2))) inline void say(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  std::vprintf(fmt, args);
  va_end(args);
  std::fflush(stdout);
}

// Nanoseconds on the monotonic clock, which every process on the machine shares.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

inline long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

}  // namespace demo
