// ipckit/detail/futex.hpp — the one way ipckit waits: spin, then sleep.
//
// Every blocking primitive waits for a 32-bit word to change. A waiter first
// polls it for a bounded time (a peer spinning on the other core answers in
// ~0.25 µs, while waking a sleeper costs ~50 µs here), then sleeps in
// FUTEX_WAIT. Sleepers are counted so that a notifier makes no system call
// when nobody sleeps. A sleeper killed in its sleep leaves the count one too
// high; that never loses a wake-up (the kernel wakes only live waiters) but
// would make every later change pay a wake call, so the count audits itself
// (see "The sleepers word" below).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/wait_record.hpp"

namespace ipckit::detail {

// Raw FUTEX_WAIT on a process-shared word; returns false on timeout.
// Spurious returns are possible: callers re-check their condition.
bool futex_sleep(std::atomic<std::uint32_t>& word, std::uint32_t expected, std::chrono::nanoseconds timeout) noexcept;
// FUTEX_WAKE of up to `n` sleepers (INT32_MAX: all); returns how many woke.
int futex_wake(std::atomic<std::uint32_t>& word, int n) noexcept;

// The sleepers word: [14:0] how many sleep (or are about to), [15] a
// process awaits it through a wait handle (ipckit/wait_handle.hpp), [23:16]
// an epoch, [30:24] when the last audit began (coarse seconds, mod 128),
// [31] the audit's grace period is on.
//
// Why: a sleeper killed in its sleep never takes itself off the count, and
// a count that never returns to 0 makes every later put, release or set pay
// a wake system call (the soak run saw a queue fall to a third of its speed
// after a few hundred kills). So a waker whose wake call woke nobody although
// sleepers were counted starts an audit: the count restarts at 0 in a new
// epoch (sleepers of the old epoch leave without decrementing it), and for a
// grace period of at least one sleeper tick (the longest a live sleeper
// sleeps before it looks again and re-counts itself) every waker wakes
// unconditionally, so that a live sleeper that was between counting itself
// and entering the kernel is still woken. After the grace period the count
// holds exactly the live sleepers again. A false alarm (a sleeper caught in
// that window) costs only the grace period's wake calls.
inline constexpr std::uint32_t kSleeperCount = 0x7fffu;
// Set by a process that arms a wait handle on the word; the next waker
// clears it and rings the armed handles' doorbells besides waking the
// sleepers (one-shot: doorbell.cpp).
inline constexpr std::uint32_t kSleeperAsync = 0x8000u;
inline constexpr std::uint32_t kSleeperEpoch = 0xffu << 16;
inline constexpr std::uint32_t kSleeperEpochOne = 1u << 16;
inline constexpr unsigned kSleeperAuditShift = 24;
inline constexpr std::uint32_t kSleeperAuditStamp = 0x7fu << kSleeperAuditShift;
inline constexpr std::uint32_t kSleeperGrace = 1u << 31;

[[nodiscard]] inline std::uint32_t sleeper_count(std::uint32_t sleepers_word) noexcept {
  return sleepers_word & kSleeperCount;
}
// Counts the caller as a sleeper; returns the epoch it was counted in.
inline std::uint32_t sleeper_enter(std::atomic<std::uint32_t>& sleepers) noexcept {
  return sleepers.fetch_add(1, std::memory_order_seq_cst) & kSleeperEpoch;
}
// Takes the caller off the count, unless an audit restarted it since.
inline void sleeper_leave(std::atomic<std::uint32_t>& sleepers, std::uint32_t epoch) noexcept {
  std::uint32_t s = sleepers.load(std::memory_order_relaxed);
  while ((s & kSleeperEpoch) == epoch && sleeper_count(s) != 0)
    if (sleepers.compare_exchange_weak(s, s - 1, std::memory_order_seq_cst, std::memory_order_relaxed)) return;
}
// Out of line: whether an audit's grace period still runs (ends it if not).
bool sleeper_grace_on(std::atomic<std::uint32_t>& sleepers, std::uint32_t seen) noexcept;
// Out of line: restarts the count after a wake call that woke nobody.
void sleeper_audit(std::atomic<std::uint32_t>& sleepers) noexcept;

// Out of line (doorbell.cpp): clears kSleeperAsync from `watchers` and
// rings the doorbell of every process with a wait handle armed on `word`.
void ring_doorbells(const std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& watchers) noexcept;

// Whether a change must be followed by a wake call (one load, usually).
[[nodiscard]] inline bool must_wake(std::atomic<std::uint32_t>& sleepers) noexcept {
  const std::uint32_t s = sleepers.load(std::memory_order_seq_cst);
  if ((s & (kSleeperCount | kSleeperAsync)) != 0) return true;
  return (s & kSleeperGrace) != 0 && sleeper_grace_on(sleepers, s);
}
// Wakes up to `n` sleepers on `word` and rings armed wait handles; audits
// the count when nobody woke.
inline void wake_sleepers(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleepers, int n) noexcept {
  const std::uint32_t s = sleepers.load(std::memory_order_relaxed);
  if ((s & kSleeperAsync) != 0) {
    ring_doorbells(word, sleepers);
    if ((s & (kSleeperCount | kSleeperGrace)) == 0) return;  // nobody sleeps in the kernel
  }
  if (futex_wake(word, n) == 0 && sleeper_count(sleepers.load(std::memory_order_relaxed)) != 0) sleeper_audit(sleepers);
}

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

// The sleeping half of wait_for_change, kept out of line: the process
// table's wait record (a scope with a destructor) and the futex loop must not
// weigh on the callers' inlined fast paths.
template <class Ready, class OnTick>
[[gnu::noinline]] bool sleep_until_change(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleepers,
                                          Ready& ready, Deadline deadline, std::chrono::nanoseconds tick,
                                          OnTick& on_tick, WaitOp op) {
  WaitScope shown;
  shown.begin(&word, op);
  for (;;) {
    const std::uint32_t seen = word.load(std::memory_order_seq_cst);
    if (ready()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (deadline.passed(now)) return ready();
    const std::chrono::nanoseconds sleep = deadline.nap(tick, now);
    // Announce the sleep, then look once more: a change published after the
    // look but before the sleep alters `word`, so the sleep returns at once.
    // `ready()` may consume (a semaphore unit): every true is returned.
    const std::uint32_t epoch = sleeper_enter(sleepers);
    if (ready()) {
      sleeper_leave(sleepers, epoch);
      return true;
    }
    const bool woken = futex_sleep(word, seen, sleep);
    sleeper_leave(sleepers, epoch);
    if (!woken) on_tick();
  }
}

// Waits until `ready()` holds or the deadline passes (then returns ready()).
// `ready()` may consume what it finds (a semaphore unit): whenever it
// returns true, so does this.
// `word` is the futex that changes whenever `ready()` may have become true;
// `sleepers` counts the threads sleeping on it. `on_tick()` runs whenever a
// sleep lasted `tick` without news: liveness checks that may make `ready()`
// true (a dead holder's units returned, a barrier broken).
// `op` is what the process table shows while the caller sleeps ("blocked
// in get on queue 'jobs'"): recorded only once spinning failed.
template <class Ready, class OnTick>
bool wait_for_change(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleepers, Ready&& ready,
                     Deadline deadline, std::chrono::nanoseconds tick, OnTick&& on_tick, WaitOp op = WaitOp::Wait) {
  if (deadline.passed()) return ready();
  if (spin_until(ready)) return true;
  return sleep_until_change(word, sleepers, ready, deadline, tick, on_tick, op);
}

// Bumps `word` and wakes up to `n` sleepers if any sleep.
inline void publish_change(std::atomic<std::uint32_t>& word, std::atomic<std::uint32_t>& sleepers, int n) noexcept {
  word.fetch_add(1, std::memory_order_seq_cst);
  if (must_wake(sleepers)) wake_sleepers(word, sleepers, n);
}

}  // namespace ipckit::detail
