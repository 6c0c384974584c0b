// The futex system calls behind every ipckit wait.
#include "ipckit/detail/futex.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace ipckit::detail {

bool futex_sleep(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept {
  if (timeout <= std::chrono::nanoseconds::zero()) return false;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
  // Not FUTEX_PRIVATE: sleepers and wakers live in different processes.
  const long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, &ts, nullptr, 0);
  return !(r == -1 && errno == ETIMEDOUT);
}

bool single_cpu() noexcept {
  // The machine's CPU count, not this process's affinity: a process pinned
  // to one CPU says nothing about where its peer runs. Looked up once.
  static const bool one = ::sysconf(_SC_NPROCESSORS_ONLN) <= 1;
  return one;
}

void yield_cpu() noexcept { ::sched_yield(); }

void futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, n, nullptr, nullptr, 0);
}

}  // namespace ipckit::detail
