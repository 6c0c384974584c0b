// ipckit/detail/pool_state.hpp — what a process pool keeps in its segment:
// one slot per task in flight, one record per worker, and the counters.
//
// A named pool's segment ("ipckit.pool.<name>") holds the same table for
// every client channel, slots channel after channel, then the workers'
// records, the counters and the channels (PoolChannel).
//
// A task's slot is the one place its fate is decided. Its state word moves
//   Free(g) -> Queued(g) -> Running(w, g) -> Finishing(g) -> Free(g + 1)
// and every move that matters is a compare-and-swap on that word:
//   - a worker claims a task by Queued -> Running(itself); a second copy of
//     the task's record (a worker killed while taking it, or a record whose
//     task was cancelled) finds the slot in another state or generation and
//     is dropped, so no task runs twice;
//   - the worker that finished it, the pool watching a dead worker and
//     cancel() each move it on from the state they saw, so exactly one of
//     them decides the outcome.
// The word is also the futex a thread waiting on the task's future sleeps
// on: the generation changes when the slot is freed, so a waiter never
// mistakes the slot's next task for its own.
#pragma once

#include <atomic>
#include <cstdint>

namespace ipckit::detail {

enum class SlotKind : std::uint32_t {
  Free = 0,
  Queued = 1,     // its record is in the tasks queue
  Running = 2,    // a worker claimed it (the worker's index is in the word)
  Finishing = 3,  // its result is on the way back, or it is being failed or cancelled
};

// The state word: [2:0] kind, [12:3] worker, [31:13] generation.
inline constexpr unsigned kSlotWorkerShift = 3;
inline constexpr unsigned kSlotGenShift = 13;
inline constexpr std::uint32_t kSlotMaxWorkers = 1u << (kSlotGenShift - kSlotWorkerShift);
inline constexpr std::uint32_t kSlotGenMask = (1u << (32 - kSlotGenShift)) - 1;

[[nodiscard]] constexpr std::uint32_t slot_word(SlotKind kind, std::uint32_t worker, std::uint32_t gen) noexcept {
  return static_cast<std::uint32_t>(kind) | (worker << kSlotWorkerShift) | ((gen & kSlotGenMask) << kSlotGenShift);
}
[[nodiscard]] constexpr SlotKind slot_kind(std::uint32_t word) noexcept { return static_cast<SlotKind>(word & 7u); }
[[nodiscard]] constexpr std::uint32_t slot_worker(std::uint32_t word) noexcept {
  return (word >> kSlotWorkerShift) & (kSlotMaxWorkers - 1);
}
[[nodiscard]] constexpr std::uint32_t slot_gen(std::uint32_t word) noexcept { return word >> kSlotGenShift; }
// Whether the task of generation `gen` is still queued or running there.
[[nodiscard]] constexpr bool slot_in_flight(std::uint32_t word, std::uint32_t gen) noexcept {
  const SlotKind k = slot_kind(word);
  return slot_gen(word) == (gen & kSlotGenMask) && (k == SlotKind::Queued || k == SlotKind::Running);
}

struct alignas(64) PoolSlot {
  std::atomic<std::uint32_t> state;
  std::atomic<std::uint32_t> waiting;     // sleepers on `state` (futex.hpp's sleepers word)
  std::atomic<std::uint64_t> task;        // the task's number, for stats and messages
  std::atomic<std::uint64_t> started_ns;  // CLOCK_MONOTONIC when it last started; 0 until it does
  std::atomic<std::uint32_t> attempts;    // runs started
  // Named pools: the worker process that claimed it (owner_word(): pid and
  // start time), so that its client can tell a dead runner from the live
  // worker that took over its index. 0 in a fork pool.
  std::atomic<std::uint64_t> runner;
};

struct alignas(64) PoolWorkerRecord {
  std::atomic<std::int32_t> pid;
  std::atomic<std::uint32_t> unused;
  std::atomic<std::uint64_t> started_ns;  // when this worker process started
  std::atomic<std::uint64_t> tasks;       // tasks it finished
  std::atomic<std::uint64_t> owner;       // named pools: owner_word() of the process holding the index, 0 if free
};

// One client of the pool (a fork pool has one, the pool's own process; a
// named pool up to max_clients): it owns a range of slots and a results
// queue, "results.<channel>". Its collector thread sleeps on collector_seq.
// Workers bump it when the channel's results queue is full, and after each
// result while `collector_eager` (someone in the client waits for any
// result: a callback, as_completed, shutdown); otherwise results wait for
// their futures' owners, and no worker pays a wake call for the collector.
struct alignas(64) PoolChannel {
  std::atomic<std::uint64_t> owner;  // named pools: owner_word() of the client, 0 if free
  std::atomic<std::uint32_t> collector_seq;
  std::atomic<std::uint32_t> collector_sleepers;
  std::atomic<std::uint32_t> collector_eager;
};

struct alignas(64) PoolCounters {
  // Bumped when a slot is freed while someone sleeps on it (a submitter
  // waiting for a free slot, the collector waiting for results).
  std::atomic<std::uint32_t> done_seq;
  std::atomic<std::uint32_t> done_sleepers;
  std::atomic<std::uint64_t> submitted;
  std::atomic<std::uint64_t> succeeded;
  std::atomic<std::uint64_t> failed;  // threw, too large, worker died
  std::atomic<std::uint64_t> timed_out;
  std::atomic<std::uint64_t> cancelled;
  std::atomic<std::uint64_t> restarts;
};

}  // namespace ipckit::detail
