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

// A demo's verdict: each failed check prints one FAILED line, and the demo
// ends with OK or FAILED and the matching exit status.
class Verdict {
 public:
  void expect(bool cond, const char* what) {
    if (!cond) say("FAILED: %s\n", what);
    ok_ = ok_ && cond;
  }
  int finish() const {
    say(ok_ ? "OK\n" : "FAILED\n");
    return ok_ ? 0 : 1;
  }

 private:
  bool ok_ = true;
};

}  // namespace demo
