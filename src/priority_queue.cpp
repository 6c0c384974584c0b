// The slots and heap behind PriorityQueue<T>. See priority_queue_core.hpp for
// the layout and why one store publishes or frees an item.
#include "ipckit/detail/priority_queue_core.hpp"

#include <climits>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include "ipckit/detail/side_lock.hpp"
#include "ipckit/error.hpp"
#include "ipckit/segment.hpp"

namespace ipckit::detail {
namespace {

// A waiter re-takes the lock at least this often even if nobody wakes it: a
// holder that died before updating the item count leaves it stale, and the
// next lock holder (who takes the dead one's lock over) repairs it.
constexpr auto kRecheck = std::chrono::seconds(1);

bool before(const PriorityHeapEntry& a, const PriorityHeapEntry& b) noexcept {
  return a.priority < b.priority || (a.priority == b.priority && a.seq < b.seq);
}

std::string why_of(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
  }
  return "unknown error";
}

}  // namespace

PriorityQueueCore::PriorityQueueCore(PriorityQueueState* s, std::shared_ptr<const void> keepalive, std::string label,
                                     std::uint64_t slots, std::uint64_t slot_size, std::uint64_t max_message)
    : s_(s),
      keep_(std::move(keepalive)),
      label_(std::move(label)),
      slots_(slots),
      slot_size_(slot_size),
      max_message_(max_message) {
  const auto layout = priority_queue_layout(slots_, slot_size_);
  char* base = reinterpret_cast<char*>(s_);
  heap_ = reinterpret_cast<PriorityHeapEntry*>(base + layout.heap_offset);
  free_ = reinterpret_cast<std::uint32_t*>(base + layout.free_offset);
  slots_base_ = base + layout.slots_offset;
}

void PriorityQueueCore::throw_corrupt(const std::string& what) const {
  throw CorruptSegment(label_, label_ + ": " + what +
                                   "; the segment was overwritten by a stray write: recreate the queue");
}

bool PriorityQueueCore::names_ready_slot(const PriorityHeapEntry& e) const noexcept {
  return e.slot < slots_ && slot(e.slot).state.load(std::memory_order_acquire) == kSlotReady &&
         slot(e.slot).seq == e.seq;
}

// The state words are the truth: every ready slot goes into the heap, every
// other one onto the free stack. Idempotent, so a holder killed in here
// leaves the next one nothing worse to do. Returns the sizes it derived (the
// shared copies may be overwritten again at any time).
PriorityQueueCore::Sizes PriorityQueueCore::rebuild() noexcept {
  std::uint64_t n = 0, f = 0, next = s_->next_seq;
  for (std::uint64_t i = 0; i < slots_; ++i) {
    PrioritySlot& sl = slot(i);
    const std::uint32_t st = sl.state.load(std::memory_order_acquire);
    if (st == kSlotReady) {
      const std::uint64_t seq = sl.seq;
      heap_[n++] = PriorityHeapEntry{sl.priority, seq, i};
      if (seq >= next) next = seq + 1;
    } else {
      if (st != kSlotFree) sl.state.store(kSlotFree, std::memory_order_release);
      free_[f++] = static_cast<std::uint32_t>(i);
    }
  }
  s_->heap_size = n;
  s_->free_top = f;
  s_->next_seq = next;
  // Bottom-up heapify.
  for (std::uint64_t i = n / 2; i-- > 0;) {
    std::uint64_t j = i;
    const PriorityHeapEntry e = heap_[j];
    for (;;) {
      std::uint64_t c = 2 * j + 1;
      if (c >= n) break;
      if (c + 1 < n && before(heap_[c + 1], heap_[c])) ++c;
      if (!before(heap_[c], e)) break;
      heap_[j] = heap_[c];
      j = c;
    }
    heap_[j] = e;
  }
  s_->rebuilds.fetch_add(1, std::memory_order_relaxed);
  publish_counts(n);
  return {n, f};
}

void PriorityQueueCore::heap_push(const PriorityHeapEntry& e, std::uint64_t heap) noexcept {
  std::uint64_t j = heap;  // < slots_: the caller took a free slot, so the heap has room
  while (j > 0) {
    const std::uint64_t parent = (j - 1) / 2;
    if (!before(e, heap_[parent])) break;
    heap_[j] = heap_[parent];
    j = parent;
  }
  heap_[j] = e;
  s_->heap_size = heap + 1;
}

PriorityHeapEntry PriorityQueueCore::heap_pop(std::uint64_t heap) noexcept {
  const PriorityHeapEntry top = heap_[0];
  const std::uint64_t n = heap - 1;
  s_->heap_size = n;
  if (n > 0) {
    const PriorityHeapEntry last = heap_[n];
    std::uint64_t j = 0;
    for (;;) {
      std::uint64_t c = 2 * j + 1;
      if (c >= n) break;
      if (c + 1 < n && before(heap_[c + 1], heap_[c])) ++c;
      if (!before(heap_[c], last)) break;
      heap_[j] = heap_[c];
      j = c;
    }
    heap_[j] = last;
  }
  return top;
}

void PriorityQueueCore::publish_counts(std::uint64_t heap) noexcept {
  if (heap > 0) s_->lowest.store(heap_[0].priority, std::memory_order_relaxed);
  s_->count.store(heap, std::memory_order_seq_cst);
}

void PriorityQueueCore::put(std::int64_t priority, const void* data, std::size_t n, Deadline deadline) {
  if (n > max_message_)
    throw MessageTooLarge(label_, label_ + ": an item of " + std::to_string(n) + " bytes exceeds its max_message of " +
                                      std::to_string(max_message_) +
                                      " bytes; split it, or create the queue with a larger max_message");
  const auto has_room = [&] { return qsize() < slots_; };
  const auto full = [&] {
    return Full(label_, label_ + " is full (" + std::to_string(qsize()) + " of " + std::to_string(slots_) +
                            " slots); consume faster, wait longer or make it larger");
  };
  bool recheck = false;
  for (;;) {
    if (closed()) throw Closed(label_, label_ + " is closed; nothing more can be put");
    bool put_it = false, repaired = false;
    {
      // While there is room the lock is all that stands in the way (its
      // holder is mid-put or mid-get): wait on for it, within bounds.
      SideLock lock(s_->lock, deadline, label_, [&] { return has_room() && !closed(); });
      if (!lock.held()) {
        if (closed()) throw Closed(label_, label_ + " is closed; nothing more can be put");
        if (lock.miss() == SideLockMiss::Holder)
          throw Full(label_, label_ + " has free slots, but the put gave up at its deadline" + lock.blame("its lock"));
        throw full();
      }
      Sizes z = sizes();
      if (lock.took_over() || !consistent(z)) {
        z = rebuild();
        repaired = true;
      }
      if (closed()) throw Closed(label_, label_ + " is closed; nothing more can be put");
      // The free stack's top, read once and checked before it is used.
      std::uint32_t i = 0;
      const auto top_is_free = [&] {
        i = free_[z.free - 1];
        return i < slots_ && slot(i).state.load(std::memory_order_relaxed) == kSlotFree;
      };
      if (z.free > 0 && !top_is_free()) {
        z = rebuild();  // a stray write: the states are the truth
        repaired = true;
        if (z.free > 0 && !top_is_free()) throw_corrupt("its free slots change under its lock");
      }
      if (z.free > 0) {
        s_->free_top = z.free - 1;
        PrioritySlot& sl = slot(i);
        const std::uint64_t seq = s_->next_seq;
        s_->next_seq = seq + 1;  // first: a seq is never handed out twice
        if (n != 0) std::memcpy(payload(i), data, n);
        sl.length = static_cast<std::uint32_t>(n);
        sl.priority = priority;
        sl.seq = seq;
        // The one store that makes the item visible.
        sl.state.store(kSlotReady, std::memory_order_release);
        heap_push(PriorityHeapEntry{priority, seq, i}, z.heap);
        publish_counts(z.heap + 1);
        put_it = true;
      }
    }
    if (repaired) {
      publish_change(s_->data_seq, s_->data_sleepers, INT_MAX);
      publish_change(s_->space_seq, s_->space_sleepers, INT_MAX);
    }
    if (put_it) {
      wake_if_sleeping(s_->data_seq, s_->data_sleepers, 1);
      return;
    }
    recheck = false;
    if (!wait_for_change(
            s_->space_seq, s_->space_sleepers, [&] { return recheck || has_room() || closed(); }, deadline, kRecheck,
            [&] { recheck = true; }))
      throw full();
  }
}

void PriorityQueueCore::get(void (*read)(void* ctx, const char* data, std::size_t n), void* ctx, Deadline deadline,
                            std::int64_t* priority) {
  const auto has_item = [&] { return qsize() > 0; };
  bool recheck = false;
  for (;;) {
    bool got = false, repaired = false;
    std::exception_ptr failure;
    std::uint32_t len = 0;
    {
      SideLock lock(s_->lock, deadline, label_, has_item);
      if (!lock.held()) {
        if (closed() && !has_item()) throw Closed(label_, label_ + " is closed and drained");
        if (lock.miss() == SideLockMiss::Holder)
          throw Empty(label_, label_ + " holds items, but the get gave up at its deadline" + lock.blame("its lock"));
        throw Empty(label_, label_ + " is empty");
      }
      Sizes z = sizes();
      if (lock.took_over() || !consistent(z)) {
        z = rebuild();
        repaired = true;
      }
      // The top is taken off, then checked: the copy popped is the one used.
      PriorityHeapEntry e{};
      bool have = false;
      if (z.heap > 0) {
        e = heap_pop(z.heap);
        z.heap -= 1;
        have = names_ready_slot(e);
        if (!have) {
          z = rebuild();  // the heap was overwritten: the states are the truth
          repaired = true;
          if (z.heap > 0) {
            e = heap_pop(z.heap);
            z.heap -= 1;
            if (!names_ready_slot(e)) throw_corrupt("its heap changes under its lock");
            have = true;
          }
        }
      }
      if (have) {
        // heap + free == slots_ held before the pop, so z.free < slots_ now.
        PrioritySlot& sl = slot(e.slot);
        len = sl.length;
        const auto release_slot = [&] {
          // The one store that frees the slot.
          sl.state.store(kSlotFree, std::memory_order_release);
          free_[z.free] = static_cast<std::uint32_t>(e.slot);
          s_->free_top = z.free + 1;
          publish_counts(z.heap);
        };
        if (len > max_message_) {
          release_slot();
          throw_corrupt("it held an item of " + std::to_string(len) + " bytes in a slot of " +
                        std::to_string(max_message_) + " (the item was dropped)");
        }
        if (priority != nullptr) *priority = sl.priority;
        try {
          read(ctx, payload(e.slot), len);
        } catch (...) {
          failure = std::current_exception();
        }
        release_slot();
        got = true;
      } else if (closed()) {
        throw Closed(label_, label_ + " is closed and drained");
      }
    }
    if (repaired) {
      publish_change(s_->data_seq, s_->data_sleepers, INT_MAX);
      publish_change(s_->space_seq, s_->space_sleepers, INT_MAX);
    }
    if (got) {
      wake_if_sleeping(s_->space_seq, s_->space_sleepers, 1);
      if (failure)
        throw DecodeError(label_, label_ + ": an item of " + std::to_string(len) + " bytes did not decode (" +
                                      why_of(failure) +
                                      ") and was dropped; every process must use the same item type and serialize()");
      return;
    }
    recheck = false;
    if (!wait_for_change(
            s_->data_seq, s_->data_sleepers, [&] { return recheck || has_item() || closed(); }, deadline, kRecheck,
            [&] { recheck = true; }))
      throw Empty(label_, label_ + " is empty");
  }
}

void PriorityQueueCore::close() noexcept {
  s_->closed.store(1, std::memory_order_seq_cst);
  s_->data_seq.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(s_->data_seq, INT_MAX);
  s_->space_seq.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(s_->space_seq, INT_MAX);
}

}  // namespace ipckit::detail

namespace ipckit {

detail::PriorityQueueCore Segment::open_priority_queue(std::string_view name, const char* type_name,
                                                       const QueueOptions& options) {
  const std::string what = label(ObjectKind::PriorityQueue, name);
  if (options.capacity_bytes < 64 || options.capacity_bytes > detail::kMaxQueueCapacity)
    throw InvalidArgument(std::string(name), what + ": capacity_bytes " + std::to_string(options.capacity_bytes) +
                                                 " is out of range; use 64 bytes to 128 MiB");
  // Slots are fixed-size, so the default max_message keeps many of them: 64
  // slots' worth of capacity each (a FIFO's records take only what they need).
  const std::uint64_t max_message = options.max_message == 0 ? options.capacity_bytes / 64 : options.max_message;
  if (max_message > detail::kMaxPriorityMessage)
    throw InvalidArgument(std::string(name), what + ": max_message " + std::to_string(max_message) +
                                                 " is out of range; use at most 128 MiB");
  const std::uint64_t slot_size = detail::priority_slot_size(max_message);
  const std::uint64_t slots = options.max_items != 0 ? options.max_items : options.capacity_bytes / slot_size;
  if (slots == 0)
    throw InvalidArgument(std::string(name), what + ": capacity_bytes " + std::to_string(options.capacity_bytes) +
                                                 " cannot hold one slot of max_message " + std::to_string(max_message) +
                                                 " bytes (plus a " + std::to_string(detail::kPrioritySlotHeader) +
                                                 "-byte header); use a smaller max_message or a larger capacity");
  if (slots > detail::kMaxPrioritySlots)
    throw InvalidArgument(std::string(name), what + ": " + std::to_string(slots) + " slots is too many; use at most " +
                                                 std::to_string(detail::kMaxPrioritySlots) +
                                                 " (max_items, or capacity_bytes / (max_message + header))");
  const auto layout = detail::priority_queue_layout(slots, slot_size);
  auto spec = detail::ObjectSpec{ObjectKind::PriorityQueue, type_name, 0, 1, slots, detail::kPriorityQueueLayout,
                                 layout.bytes};
  struct Init {
    std::uint64_t capacity_bytes, max_message, max_items, slots, slot_size;
  } init{options.capacity_bytes, max_message, options.max_items, slots, slot_size};
  spec.init = [](void* body, const void* arg) {
    const auto& i = *static_cast<const Init*>(arg);
    auto* q = static_cast<detail::PriorityQueueState*>(body);
    q->capacity_bytes = i.capacity_bytes;
    q->max_message = i.max_message;
    q->max_items = i.max_items;
    q->slot_count = i.slots;
    q->slot_size = i.slot_size;
    q->free_top = i.slots;
    auto* free = reinterpret_cast<std::uint32_t*>(static_cast<char*>(body) +
                                                  detail::priority_queue_layout(i.slots, i.slot_size).free_offset);
    // Lowest index on top: the first puts use the first slots.
    for (std::uint64_t k = 0; k < i.slots; ++k) free[k] = static_cast<std::uint32_t>(i.slots - 1 - k);
  };
  spec.init_arg = &init;

  const auto mismatch = [&](const detail::PriorityQueueState& q) {
    return TypeMismatch(std::string(name),
                        what + " was created with capacity_bytes " + std::to_string(q.capacity_bytes) +
                            ", max_message " + std::to_string(q.max_message) + " and max_items " +
                            std::to_string(q.max_items) + ", not " + std::to_string(options.capacity_bytes) + ", " +
                            std::to_string(max_message) + " and " + std::to_string(options.max_items) +
                            "; open it with its options");
  };
  detail::PriorityQueueState* q = nullptr;
  try {
    q = static_cast<detail::PriorityQueueState*>(find_or_create(name, spec));
  } catch (const CorruptSegment&) {
    // Same kind, type, layout and slot count but another size: the slots
    // differ, i.e. another max_message. Say so, if that is what it is.
    ObjectInfo info;
    const void* body = nullptr;
    try {
      body = object_body(name, &info);
    } catch (const Error&) {
    }
    if (body != nullptr && info.kind == ObjectKind::PriorityQueue && info.bytes >= sizeof(detail::PriorityQueueState)) {
      const auto& existing = *static_cast<const detail::PriorityQueueState*>(body);
      if (existing.max_message != max_message) throw mismatch(existing);
    }
    throw;
  }
  if (q->capacity_bytes != options.capacity_bytes || q->max_message != max_message ||
      q->max_items != options.max_items || q->slot_count != slots || q->slot_size != slot_size)
    throw mismatch(*q);
  // The handle keeps the geometry validated here, not the segment's copy.
  return detail::PriorityQueueCore(q, keepalive(), what, slots, slot_size, max_message);
}

}  // namespace ipckit
