// ipckit/detail/semaphore_state.hpp — the shared-memory layout of Semaphore
// and BoundedSemaphore, with the inline fast paths.
//
// `count` is the futex word: the units available. An untracked semaphore
// changes it with single atomic operations. A tracked one (SemaphoreOptions::
// track_holders) keeps a table of holders beside it; the two change together
// under `table_lock`, so that count + the holders' units == initial whenever
// that lock is free (src/semaphore.cpp says how a dead holder is repaired).
#pragma once

#include <atomic>
#include <cstdint>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/lock_state.hpp"

namespace ipckit::detail {

// Checked whenever a process opens a semaphore: change them with the layout.
inline constexpr std::uint32_t kSemaphoreLayout = 1;
// 2: a tracked semaphore's count and holders change under its table lock; a
// program built with the older protocol gets TypeMismatch, not a silent mix.
inline constexpr std::uint32_t kTrackedSemaphoreLayout = 2;

inline constexpr std::uint32_t kSemaphoreHolderSlots = 64;
inline constexpr std::uint32_t kSemaphoreMaxValue = 0x7fff'ffff;  // as SEM_VALUE_MAX
inline constexpr std::uint32_t kSemaphoreMaxInitial = 1u << 30;   // what a segment accepts

// One holder of a tracked semaphore: a thread (tid + start time) and the
// units it holds (src/holders.hpp keeps the table).
struct HolderSlot {
  std::atomic<std::uint32_t> tid{0};  // 0: free; published last when a slot is claimed
  std::atomic<std::uint32_t> units{0};
  std::atomic<std::uint64_t> start_ticks{0};
};
static_assert(sizeof(HolderSlot) == 16);

// `initial`, `bounded` and `track_holders` are written once by the creator;
// a handle copies them when it is made and never reads them again (a stray
// write to them changes nothing for processes that have it open).
struct alignas(64) SemaphoreState {
  std::atomic<std::uint32_t> count{0};  // futex word: units available
  std::atomic<std::uint32_t> sleepers{0};
  std::uint32_t initial = 0;
  std::uint32_t bounded = 0;  // 1: releases above `initial` throw
  std::uint32_t track_holders = 0;
  std::atomic<std::uint64_t> reclaimed{0};  // units given back from dead holders
  // Tracked semaphores: `count` and `holders` change only under this lock,
  // so that count + the holders' units == initial whenever it is free.
  LockState table_lock;
  HolderSlot holders[kSemaphoreHolderSlots];
};

inline bool semaphore_try_take(SemaphoreState& s) noexcept {
  std::uint32_t c = s.count.load(std::memory_order_relaxed);
  while (c > 0) {
    if (s.count.compare_exchange_weak(c, c - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  }
  return false;
}

// Adds `n` units unless that would lift the count above kSemaphoreMaxValue
// (then returns false and adds nothing). A CAS rather than an add, so that
// concurrent releases cannot each pass the check and together wrap the count.
inline bool semaphore_give(SemaphoreState& s, std::uint32_t n) noexcept {
  std::uint32_t c = s.count.load(std::memory_order_relaxed);
  do {
    if (n > kSemaphoreMaxValue || c > kSemaphoreMaxValue - n) return false;
  } while (!s.count.compare_exchange_weak(c, c + n, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (must_wake(s.sleepers)) wake_sleepers(s.count, s.sleepers, static_cast<int>(n));
  return true;
}

}  // namespace ipckit::detail
