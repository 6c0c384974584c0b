// ipckit/detail/priority_queue_state.hpp — a priority (or LIFO) queue's state
// in shared memory:
//
//   [PriorityQueueState][heap: PriorityHeapEntry × slots][free: u32 × slots][slots]
//
// Each slot is [state u32][length u32][priority i64][seq u64][payload,
// max_message bytes] padded to 8. The slot state words are the truth; the
// heap, the free stack and the counts are derived from them (see
// priority_queue_core.hpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipckit/detail/lock_state.hpp"
#include "ipckit/detail/queue_state.hpp"  // the closed word's bits, WakeWord
#include "ipckit/detail/task_ledger.hpp"

namespace ipckit::detail {

// Checked whenever a process opens the queue: bump it when a field moves or
// changes meaning. 2: the order and joinable flags, the task ledger, seq
// counts a joinable queue's tasks, the closed word's discard bit.
inline constexpr std::uint32_t kPriorityQueueLayout = 2;

inline constexpr std::uint32_t kSlotFree = 0;
inline constexpr std::uint32_t kSlotReady = 1;
inline constexpr std::uint64_t kMaxPrioritySlots = std::uint64_t{1} << 24;
inline constexpr std::uint64_t kMaxPriorityMessage = std::uint64_t{1} << 27;  // 128 MiB, as a queue's capacity

// Which item comes out first.
inline constexpr std::uint32_t kOrderPriority = 0;  // lowest priority, then earliest put
inline constexpr std::uint32_t kOrderLifo = 1;      // latest put

struct PrioritySlot {
  std::atomic<std::uint32_t> state{kSlotFree};  // the one word that publishes / frees the slot
  std::uint32_t length = 0;
  std::int64_t priority = 0;
  std::uint64_t seq = 0;
  // payload follows
};
inline constexpr std::size_t kPrioritySlotHeader = sizeof(PrioritySlot);
static_assert(kPrioritySlotHeader == 24);

struct PriorityHeapEntry {
  std::int64_t priority;
  std::uint64_t seq;
  std::uint64_t slot;
};
static_assert(sizeof(PriorityHeapEntry) == 24);

struct alignas(64) PriorityQueueState {
  // Fixed at creation (and checked against the options of every opener).
  std::uint64_t capacity_bytes = 0;
  std::uint64_t max_message = 0;
  std::uint64_t max_items = 0;
  std::uint64_t slot_count = 0;
  std::uint64_t slot_size = 0;
  std::uint32_t order = kOrderPriority;
  std::uint32_t joinable = 0;
  std::atomic<std::uint32_t> closed{0};  // kQueueClosed | kQueueDiscard

  alignas(64) LockState lock;
  // Derived from the slot states; written under the lock only.
  alignas(64) std::uint64_t heap_size = 0;
  std::uint64_t free_top = 0;
  // Seqs handed out: bumped before an item is published, so it is never
  // below the items ever put, and above only while a put is under way (or
  // its producer died: the next holder's rebuild lowers it again). Read
  // without the lock as a joinable queue's count of tasks ever put.
  std::atomic<std::uint64_t> next_seq{0};
  std::uint64_t got_end = 0;               // 1 + the highest seq ever got, written before its slot is freed
  std::uint64_t get_slot = 0;              // joinable: the slot of the get whose task is in flight
  std::atomic<std::uint64_t> count{0};     // ready items: qsize() without the lock
  std::atomic<std::int64_t> lowest{0};     // the heap top's priority while count > 0
  std::atomic<std::uint64_t> rebuilds{0};  // heap rebuilds after a dead holder, ever

  alignas(64) WakeWord data;   // consumers sleep here
  alignas(64) WakeWord space;  // producers sleep here

  // Joinable: unfinished tasks = next_seq - tasks.finished.
  alignas(64) TaskLedger tasks;
  // heap, free stack and slots follow, each 64-aligned
};
static_assert(sizeof(PriorityQueueState) % 64 == 0);

// Where the parts of a priority queue of `slots` slots of `slot_size` bytes lie.
struct PriorityQueueLayout {
  std::uint64_t heap_offset;
  std::uint64_t free_offset;
  std::uint64_t slots_offset;
  std::uint64_t bytes;  // the whole object
};
constexpr PriorityQueueLayout priority_queue_layout(std::uint64_t slots, std::uint64_t slot_size) {
  const auto align64 = [](std::uint64_t v) { return (v + 63) & ~std::uint64_t{63}; };
  PriorityQueueLayout l{};
  l.heap_offset = sizeof(PriorityQueueState);
  l.free_offset = l.heap_offset + align64(slots * sizeof(PriorityHeapEntry));
  l.slots_offset = l.free_offset + align64(slots * sizeof(std::uint32_t));
  l.bytes = l.slots_offset + slots * slot_size;
  return l;
}
constexpr std::uint64_t priority_slot_size(std::uint64_t max_message) {
  return (kPrioritySlotHeader + max_message + 7) & ~std::uint64_t{7};
}

}  // namespace ipckit::detail
