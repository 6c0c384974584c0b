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

int futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept {
  const long r = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, n, nullptr, nullptr, 0);
  return r < 0 ? -1 : static_cast<int>(r);
}

namespace {

// Longer than any sleeper's tick (the longest is 1 s): by then every live
// sleeper has woken at least once and counted itself in the new epoch.
constexpr std::uint32_t kGraceSeconds = 2;

std::uint32_t coarse_seconds() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint32_t>(ts.tv_sec) & (kSleeperAuditStamp >> kSleeperAuditShift);
}

}  // namespace

bool sleeper_grace_on(std::atomic<std::uint32_t>& sleepers, std::uint32_t seen) noexcept {
  const std::uint32_t began = (seen & kSleeperAuditStamp) >> kSleeperAuditShift;
  const std::uint32_t elapsed = (coarse_seconds() - began) & (kSleeperAuditStamp >> kSleeperAuditShift);
  if (elapsed <= kGraceSeconds) return true;
  // Over: clear the flag (if the word moved meanwhile, the next look retries).
  sleepers.compare_exchange_strong(seen, seen & ~(kSleeperGrace | kSleeperAuditStamp), std::memory_order_seq_cst,
                                   std::memory_order_relaxed);
  return false;
}

void sleeper_audit(std::atomic<std::uint32_t>& sleepers) noexcept {
  std::uint32_t s = sleepers.load(std::memory_order_relaxed);
  if (sleeper_count(s) == 0) return;
  const std::uint32_t next_epoch = ((s & kSleeperEpoch) + kSleeperEpochOne) & kSleeperEpoch;
  const std::uint32_t audit =
      kSleeperGrace | (coarse_seconds() << kSleeperAuditShift) | next_epoch | (s & kSleeperAsync);
  // One attempt: if the word moved, a sleeper came or went and the next
  // empty wake call audits again.
  sleepers.compare_exchange_strong(s, audit, std::memory_order_seq_cst, std::memory_order_relaxed);
}

}  // namespace ipckit::detail
