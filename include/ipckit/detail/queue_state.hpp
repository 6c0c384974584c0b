// ipckit/detail/queue_state.hpp — a FIFO queue's state in shared memory.
//
// Records [u32 length][u32 0][payload, padded to 8] in a power-of-two ring
// that follows the state. A position word packs the byte position (low 40
// bits) and the count of records that passed it (high 24 bits), so ONE
// release store publishes a record (tail) or frees it (head). A record that
// would straddle the ring's end is preceded by a skip marker. queue_core.hpp
// says who writes what, and when.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipckit/detail/lock_state.hpp"
#include "ipckit/detail/task_ledger.hpp"

namespace ipckit::detail {

// Checked whenever a process opens the queue: bump it when a field moves or
// changes meaning. 3: the closed word's discard bit (shutdown(immediate)).
// 4: the waiters' seen words. (The halves became QueueHalf / WakeWord
// structs at 4 without moving a byte.)
inline constexpr std::uint32_t kQueueLayout = 4;

inline constexpr std::uint64_t kPosBits = 40;
inline constexpr std::uint64_t kPosMask = (std::uint64_t{1} << kPosBits) - 1;
inline constexpr std::uint64_t kCountMask = (std::uint64_t{1} << 24) - 1;
inline constexpr std::uint32_t kSkipMarker = 0xffff'ffffu;
inline constexpr std::size_t kRecordHeader = 8;
inline constexpr std::uint64_t kMaxQueueCapacity = std::uint64_t{1} << 27;  // 128 MiB: counts fit 24 bits

// The bits of every queue's `closed` word (FIFO, priority and LIFO alike).
// kQueueClosed: producers get Closed, consumers drain (close(), shutdown()).
// kQueueDiscard: set by shutdown(immediate) once it holds the consumers'
// lock; whoever takes that lock over from a dead holder finishes the discard.
inline constexpr std::uint32_t kQueueClosed = 1;
inline constexpr std::uint32_t kQueueDiscard = 2;

// Where one side of a queue sleeps while it waits for the other: consumers
// for data, producers for room. The other side moves `seq` on (and wakes)
// after a change the sleepers wait for; side_lock.hpp's QueueWaiter says how.
struct WakeWord {
  std::atomic<std::uint32_t> seq{0};       // the futex word
  std::atomic<std::uint32_t> sleepers{0};  // futex.hpp's sleeper count
  std::atomic<std::uint32_t> seen{0};      // seq as the waiter last saw it (unused by priority queues)
};

// What one side of the ring writes, a cache line per part: producers the
// tail, consumers the head.
struct alignas(64) QueueHalf {
  LockState lock;                                 // one process of the side at a time
  alignas(64) std::atomic<std::uint64_t> pos{0};  // count<<40 | pos: tail published, head freed
  std::uint64_t peer_cache = 0;                   // this side's last look at the other's pos (under lock)
};

struct alignas(64) QueueState {
  // Fixed at creation; every handle works from its own copy (QueueGeometry).
  std::uint64_t capacity = 0;     // ring bytes, a power of two
  std::uint64_t max_message = 0;  // largest payload accepted
  std::uint64_t max_items = 0;    // 0: bounded by bytes only
  std::uint32_t joinable = 0;
  std::atomic<std::uint32_t> closed{0};  // kQueueClosed | kQueueDiscard

  QueueHalf put;               // producers: the tail ...
  alignas(64) WakeWord data;   // ... which they move on for consumers waiting for data
  QueueHalf get;               // consumers: the head ...
  alignas(64) WakeWord space;  // ... which they move on for producers waiting for room

  // JoinableQueue: unfinished tasks = tail's count - tasks.finished.
  alignas(64) TaskLedger tasks;
  // ring bytes follow, 64-aligned
};
static_assert(sizeof(QueueState) % 64 == 0);

}  // namespace ipckit::detail
