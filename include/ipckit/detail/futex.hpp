// ipckit/detail/futex.hpp — the one way ipckit waits: spin, then sleep.
//
// Every blocking primitive waits for a 32-bit word to change. A waiter first
// polls it for a bounded time (a peer spinning on the other core answers in
// ~0.25 µs, while waking a sleeper costs ~50 µs here), then sleeps in
// FUTEX_WAIT. Sleepers are counted so that a notifier makes no system call
// when nobody sleeps. A sleeper killed in its sleep leaves the count one too
// high, which costs only needless wake calls, never a lost wake-up: the
// kernel wakes only live waiters.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace ipckit::detail {

using Deadline = std::optional<std::chrono::steady_clock::time_point>;

// Raw FUTEX_WAIT on a process-shared word; returns false on timeout.
// Spurious returns are possible: callers re-check their condition.
bool futex_sleep(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept;
// FUTEX_WAKE of up to `n` sleepers (INT32_MAX: all).
void futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long a waiter polls before it sleeps, by the clock (a pause lasts 25 ns
// on one CPU model and ten times that on another). First it polls with
// pause instructions, which answers a peer running on another CPU in a
// fraction of a microsecond; then it yields between polls, so that a peer
// sharing this CPU gets to run (pure spinning there cost ~115 µs a round
// trip, yielding ~10 µs). On a machine with one CPU the pause phase is
// skipped.
inline constexpr std::chrono::nanoseconds kSpinPause{2'000};
inline constexpr std::chrono::nanoseconds kSpinTotal{50'000};

// Whether the machine has a single CPU online (looked up once).
bool single_cpu() noexcept;
void yield_cpu() noexcept;

// Polls `ready()` for at most kSpinTotal; returns whether it held.
template <class Ready>
bool spin_until(Ready&& ready) noexcept {
  if (ready()) return true;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  if (!single_cpu()) {
    do {
      for (int i = 0; i < 64; ++i) {
        if (ready()) return true;
        cpu_relax();
      }
    } while (Clock::now() - start < kSpinPause);
  }
  while (Clock::now() - start < kSpinTotal) {
    yield_cpu();
    if (ready()) return true;
  }
  return ready();
}

// Waits until `ready()` holds or the deadline passes (then returns ready()).
// `ready()` may consume what it finds (a semaphore unit): whenever it
// returns true, so does this.
// `word` is the futex that changes whenever `ready()` may have become true;
// `sleepers` counts the threads sleeping on it. `on_tick()` runs whenever a
// sleep lasted `tick` without news: liveness checks that may make `ready()`
// true (a dead holder's units returned, a barrier broken).
template <class Ready, class OnTick>
bool wait_for_change(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleepers, Ready&& ready,
                     Deadline deadline, std::chrono::nanoseconds tick, OnTick&& on_tick) {
  if (deadline && *deadline <= std::chrono::steady_clock::now()) return ready();
  if (spin_until(ready)) return true;
  for (;;) {
    const std::uint32_t seen = word.load(std::memory_order_seq_cst);
    if (ready()) return true;
    std::chrono::nanoseconds sleep = tick;
    if (deadline) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= *deadline) return ready();
      if (*deadline - now < sleep) sleep = *deadline - now;
    }
    // Announce the sleep, then look once more: a change published after the
    // look but before the sleep alters `word`, so the sleep returns at once.
    // `ready()` may consume (a semaphore unit): every true is returned.
    sleepers.fetch_add(1, std::memory_order_seq_cst);
    if (ready()) {
      sleepers.fetch_sub(1, std::memory_order_seq_cst);
      return true;
    }
    const bool woken = futex_sleep(word, seen, sleep);
    sleepers.fetch_sub(1, std::memory_order_seq_cst);
    if (!woken) on_tick();
  }
}

// Bumps `word` and wakes up to `n` sleepers if any sleep.
inline void publish_change(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleepers, int n) noexcept {
  word.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers.load(std::memory_order_seq_cst) != 0) futex_wake(word, n);
}

}  // namespace ipckit::detail
