// ipckit/detail/priority_queue_core.hpp — the fixed slots under
// PriorityQueue<T>, LifoQueue<T> and JoinablePriorityQueue<T>.
//
// ONE crash-safe lock guards puts and gets (layout: priority_queue_state.hpp).
// Under it a producer copies its (already encoded) item into a free slot and
// publishes it with one release store of the slot's state (free -> ready),
// then pushes {priority, seq, slot} onto a binary heap kept with the standard
// heap algorithms; `seq` is a 64-bit put counter, so equal priorities come out
// in put order (a LIFO queue orders by seq alone, latest first). A consumer
// pops the heap's top, decodes the slot (still under the lock) and frees it
// with one store (ready -> free).
//
// The slot state words are the truth; the heap, the free stack, the item
// count and the seq counter are derived from them. A holder killed at any
// instant may leave those half-updated, so whoever takes the lock over from
// a dead holder rebuilds them from the state words before anything else: a
// producer killed inside put() leaves its item wholly in (ready) or out
// (free), a consumer killed inside get() leaves it queued unless its freeing
// store happened. A joinable queue's tasks: items ever put (next_seq) minus
// the task ledger's finished count; a get leases its task to the consumer
// process around the freeing store (task_ledger.hpp), noting the slot first,
// so that the next holder can tell whether a dead consumer's free happened.
//
// Nobody sleeps holding the lock: a consumer finding no item (a producer
// finding no free slot) releases it and waits on a futex sequence word, so
// producers and consumers never wait for each other's lock hold. A holder
// stopped (SIGSTOP) or preempted keeps it, though: timed and non-blocking
// calls then wait for it as side_lock.hpp says, bounded by their deadline.
//
// Any process mapping the segment can overwrite any of it. The geometry
// (slot count, slot size, max_message, order) is the handle's own copy, never
// read from the segment again; every shared value that indexes memory (heap
// size, free-stack top, heap entries' and the free stack's slot numbers, a
// slot's length) is read once, range-checked and used as read. A derived
// value out of range is rebuilt from the slot states; a length out of range,
// or a heap that is wrong again right after a rebuild, is CorruptSegment.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>

#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/detail/priority_queue_state.hpp"
#include "ipckit/detail/queue_core.hpp"  // QueueOutcome, close_queue, tasks_*
#include "ipckit/wait_handle.hpp"

namespace ipckit::detail {

// A priority queue's fixed geometry, as its opener validated it: `s` must be
// an object of priority_queue_layout(slots, slot_size).bytes bytes.
struct PriorityGeometry {
  std::uint64_t slots = 0, slot_size = 0, max_message = 0;
  std::uint32_t order = kOrderPriority;
  bool joinable = false;
};

// The non-template engine; the typed queues encode/decode around it.
class PriorityQueueCore {
 public:
  // Copies `n` bytes in as one item of `priority`. Reports Full / Closed by
  // value; throws MessageTooLarge (before anything is written).
  QueueOutcome put(std::int64_t priority, const void* data, std::size_t n, Deadline deadline);
  // Hands the first item (lowest (priority, seq); LIFO: highest seq) to
  // `read(ctx, data, n)` (called with the lock held; the slot is freed after
  // it returns, or if it throws — then DecodeError is thrown) and stores its
  // priority in `*priority` (unless null). Reports Empty / Closed (closed and
  // drained) by value.
  using ReadFn = void (*)(void* ctx, const char* data, std::size_t n);
  QueueOutcome get(ReadFn read, void* ctx, Deadline deadline, std::int64_t* priority);
  [[noreturn]] void raise_put(const QueueOutcome& outcome) const;
  [[noreturn]] void raise_get(const QueueOutcome& outcome) const;

  // Waits until an item is queued or the queue is closed (false: not by the deadline); takes nothing.
  bool await_items(Deadline deadline);
  // Wait handles (ipckit/wait_handle.hpp): items or closed; room or closed.
  [[nodiscard]] WaitHandle items_handle() const;
  [[nodiscard]] WaitHandle room_handle() const;
  [[nodiscard]] std::size_t qsize() const noexcept { return s_->count.load(std::memory_order_acquire); }
  [[nodiscard]] bool full() const noexcept { return qsize() >= slots_; }
  void close() noexcept { close_queue(*s_, kQueueClosed); }
  // close(), and with `immediate` the queued items are discarded (a joinable
  // queue's tasks for them marked done).
  void shutdown(bool immediate);
  [[nodiscard]] bool closed() const noexcept { return s_->closed.load(std::memory_order_acquire) != 0; }
  [[nodiscard]] std::size_t slots() const noexcept { return slots_; }
  [[nodiscard]] std::size_t max_message() const noexcept { return max_message_; }
  // Times the heap was rebuilt from the slot states after a holder died.
  [[nodiscard]] std::uint64_t rebuilds() const noexcept { return s_->rebuilds.load(std::memory_order_relaxed); }
  [[nodiscard]] const Label& label() const noexcept { return label_; }
  [[nodiscard]] PriorityQueueStats stats() const;

  // Joinable: as QueueCore's.
  [[nodiscard]] TaskLedger& ledger() const noexcept { return s_->tasks; }
  [[nodiscard]] std::uint64_t published() const noexcept { return s_->next_seq.load(std::memory_order_acquire); }
  bool join(Deadline deadline);

 private:
  // Made by Segment::open_priority_queue and inspection (through SegmentAccess).
  friend class SegmentAccess;
  PriorityQueueCore(PriorityQueueState* s, std::shared_ptr<const void> keepalive, Label label,
                    const PriorityGeometry& geometry);
  PrioritySlot& slot(std::uint64_t i) const noexcept {
    return *reinterpret_cast<PrioritySlot*>(slots_base_ + i * slot_size_);
  }
  char* payload(std::uint64_t i) const noexcept { return slots_base_ + i * slot_size_ + kPrioritySlotHeader; }
  void task_done() { tasks_done(s_->tasks, published(), label_); }
  // The heap size and free-stack top, each read once, with the lock held.
  struct Sizes {
    std::uint64_t heap = 0, free = 0;
  };
  // Whether `z` is in range: what may index heap_ and free_.
  [[nodiscard]] bool consistent(const Sizes& z) const noexcept {
    return z.heap <= slots_ && z.free <= slots_ && z.heap + z.free == slots_;
  }
  [[nodiscard]] Sizes sizes() const noexcept { return {s_->heap_size, s_->free_top}; }
  // The repair: derives heap, free stack, counts and next seq from the slot states.
  Sizes rebuild() noexcept;
  // With the lock taken over from a dead holder (or found inconsistent):
  // settles its get's task, rebuilds, and finishes its discard if it was
  // shutting the queue down.
  Sizes recover_locked();
  // With the lock held: takes the first item, handing it to `read` unless
  // null; false if there is none. A decoding failure goes to `failure`.
  bool take_locked(Sizes& z, ReadFn read, void* ctx, std::int64_t* priority, std::exception_ptr& failure,
                   std::uint32_t& len, bool& repaired);
  // With the lock held: frees popped entry `e`'s slot, leasing its task to
  // this process (lease >= 0) around the freeing store.
  void free_slot(const PriorityHeapEntry& e, Sizes& z, int lease) noexcept;
  // With the lock held: discards every item (and marks their tasks done).
  void discard_locked(Sizes& z);
  // Whether a heap entry names a ready slot holding that very item.
  [[nodiscard]] bool names_ready_slot(const PriorityHeapEntry& e) const noexcept;
  // With `heap` entries (checked) in the heap: adds `e`, or takes the top.
  void heap_push(const PriorityHeapEntry& e, std::uint64_t heap) noexcept;
  PriorityHeapEntry heap_pop(std::uint64_t heap) noexcept;
  void publish_counts(std::uint64_t heap) noexcept;
  // After a repair: everybody waiting looks again.
  void wake_all_after_repair() noexcept;
  [[noreturn]] void throw_corrupt(const std::string& what) const { raise_corrupt(label_, what); }

  PriorityQueueState* s_;
  std::shared_ptr<const void> keep_;
  Label label_;
  // Copies of the fixed geometry, taken once validated: a stray write into
  // the segment cannot move this process's accesses out of the object.
  std::uint64_t slots_;
  std::uint64_t slot_size_;
  std::uint64_t max_message_;
  bool lifo_;
  bool joinable_;
  PriorityHeapEntry* heap_;
  std::uint32_t* free_;
  char* slots_base_;
};

}  // namespace ipckit::detail
