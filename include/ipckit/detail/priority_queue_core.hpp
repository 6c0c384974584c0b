// ipckit/detail/priority_queue_core.hpp — the fixed slots under PriorityQueue<T>.
//
//   [PriorityQueueState][heap: HeapEntry × slots][free: u32 × slots][slots]
//
// Each slot is [state u32][length u32][priority i64][seq u64][payload,
// max_message bytes] padded to 8. ONE crash-safe lock guards puts and gets.
// Under it a producer copies its (already encoded) item into a free slot and
// publishes it with one release store of the slot's state (free -> ready),
// then pushes {priority, seq, slot} onto a binary min-heap ordered by
// (priority, seq); `seq` is a 64-bit put counter, so equal priorities come
// out in put order. A consumer pops the heap's top, decodes the slot (still
// under the lock) and frees it with one store (ready -> free).
//
// The slot state words are the truth; the heap, the free stack and the item
// count are derived from them. A holder killed at any instant may leave those
// half-updated, so whoever takes the lock over from a dead holder rebuilds
// them from the state words before anything else: a producer killed inside
// put() leaves its item wholly in (ready) or out (free), a consumer killed
// inside get() leaves it queued unless its freeing store happened.
//
// Nobody sleeps holding the lock: a consumer finding no item (a producer
// finding no free slot) releases it and waits on a futex sequence word, so
// producers and consumers never wait for each other's lock hold. A holder
// stopped (SIGSTOP) or preempted keeps it, though: timed and non-blocking
// calls then wait for it as side_lock.hpp says, bounded by their deadline.
//
// Any process mapping the segment can overwrite any of it. The geometry
// (slot count, slot size, max_message) is the handle's own copy, never read
// from the segment again; every shared value that indexes memory (heap size,
// free-stack top, heap entries' and the free stack's slot numbers, a slot's
// length) is read once, range-checked and used as read. A derived value out
// of range is rebuilt from the slot states; a length out of range, or a heap
// that is wrong again right after a rebuild, is CorruptSegment.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/detail/queue_core.hpp"  // QueueOptions

namespace ipckit::detail {

inline constexpr std::uint32_t kPriorityQueueLayout = 1;
inline constexpr std::uint32_t kSlotFree = 0;
inline constexpr std::uint32_t kSlotReady = 1;
inline constexpr std::uint64_t kMaxPrioritySlots = std::uint64_t{1} << 24;
inline constexpr std::uint64_t kMaxPriorityMessage = std::uint64_t{1} << 27;  // 128 MiB, as a queue's capacity

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
  std::atomic<std::uint32_t> closed{0};

  alignas(64) LockState lock;
  // Derived from the slot states; written under the lock only.
  alignas(64) std::uint64_t heap_size = 0;
  std::uint64_t free_top = 0;
  std::uint64_t next_seq = 0;
  std::atomic<std::uint64_t> count{0};        // ready items: qsize() without the lock
  std::atomic<std::int64_t> lowest{0};        // the heap top's priority while count > 0
  std::atomic<std::uint64_t> rebuilds{0};     // heap rebuilds after a dead holder, ever

  alignas(64) std::atomic<std::uint32_t> data_seq{0};   // futex: consumers sleep here
  std::atomic<std::uint32_t> data_sleepers{0};
  alignas(64) std::atomic<std::uint32_t> space_seq{0};  // futex: producers sleep here
  std::atomic<std::uint32_t> space_sleepers{0};
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

// The non-template engine; PriorityQueue<T> encodes/decodes around it.
class PriorityQueueCore {
 public:
  // `s` must be an object of priority_queue_layout(slots, slot_size).bytes
  // bytes, validated for this geometry by the opener.
  PriorityQueueCore(PriorityQueueState* s, std::shared_ptr<const void> keepalive, std::string label,
                    std::uint64_t slots, std::uint64_t slot_size, std::uint64_t max_message);

  // Copies `n` bytes in as one item of `priority`. Throws MessageTooLarge
  // (before anything is written), Closed, or Full when `deadline` passes first.
  void put(std::int64_t priority, const void* data, std::size_t n, Deadline deadline);
  // Hands the item of lowest (priority, seq) to `read(ctx, data, n)` (called
  // with the lock held; the slot is freed after it returns, or if it throws —
  // then DecodeError is thrown) and stores its priority in `*priority`.
  // Throws Empty when `deadline` passes first, Closed once closed and drained.
  void get(void (*read)(void* ctx, const char* data, std::size_t n), void* ctx, Deadline deadline,
           std::int64_t* priority);

  [[nodiscard]] std::size_t qsize() const noexcept { return s_->count.load(std::memory_order_acquire); }
  [[nodiscard]] bool full() const noexcept { return qsize() >= slots_; }
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept { return s_->closed.load(std::memory_order_acquire) != 0; }
  [[nodiscard]] std::size_t slots() const noexcept { return slots_; }
  [[nodiscard]] std::size_t max_message() const noexcept { return max_message_; }
  // Times the heap was rebuilt from the slot states after a holder died.
  [[nodiscard]] std::uint64_t rebuilds() const noexcept { return s_->rebuilds.load(std::memory_order_relaxed); }
  [[nodiscard]] const std::string& label() const noexcept { return label_; }
  [[nodiscard]] PriorityQueueStats stats() const;

 private:
  PrioritySlot& slot(std::uint64_t i) const noexcept {
    return *reinterpret_cast<PrioritySlot*>(slots_base_ + i * slot_size_);
  }
  char* payload(std::uint64_t i) const noexcept { return slots_base_ + i * slot_size_ + kPrioritySlotHeader; }
  // The heap size and free-stack top, each read once, with the lock held.
  struct Sizes {
    std::uint64_t heap = 0, free = 0;
  };
  // Whether `z` is in range: what may index heap_ and free_.
  [[nodiscard]] bool consistent(const Sizes& z) const noexcept {
    return z.heap <= slots_ && z.free <= slots_ && z.heap + z.free == slots_;
  }
  [[nodiscard]] Sizes sizes() const noexcept { return {s_->heap_size, s_->free_top}; }
  // The repair: derives heap, free stack and counts from the slot states.
  Sizes rebuild() noexcept;
  // Whether a heap entry names a ready slot holding that very item.
  [[nodiscard]] bool names_ready_slot(const PriorityHeapEntry& e) const noexcept;
  // With `heap` entries (checked) in the heap: adds `e`, or takes the top.
  void heap_push(const PriorityHeapEntry& e, std::uint64_t heap) noexcept;
  PriorityHeapEntry heap_pop(std::uint64_t heap) noexcept;
  void publish_counts(std::uint64_t heap) noexcept;
  [[noreturn]] void throw_corrupt(const std::string& what) const;

  PriorityQueueState* s_;
  std::shared_ptr<const void> keep_;
  std::string label_;
  // Copies of the fixed geometry, taken once validated: a stray write into
  // the segment cannot move this process's accesses out of the object.
  std::uint64_t slots_;
  std::uint64_t slot_size_;
  std::uint64_t max_message_;
  PriorityHeapEntry* heap_;
  std::uint32_t* free_;
  char* slots_base_;
};

}  // namespace ipckit::detail
