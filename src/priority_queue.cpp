// The slots and heap behind PriorityQueue<T>, LifoQueue<T> and
// JoinablePriorityQueue<T>, and Segment::open_priority_queue. See
// priority_queue_core.hpp for why one store publishes or frees an item.
#include <algorithm>
#include <climits>
#include <cstring>
#include <exception>
#include <string>
#include <utility>

#include "ipckit/detail/priority_queue_core.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/error.hpp"
#include "ipckit/segment.hpp"
#include "side_lock.hpp"
#include "wait_source.hpp"

namespace ipckit::detail {
namespace {

// A waiter re-takes the lock at least this often even if nobody wakes it: a
// holder that died before updating the item count leaves it stale, and the
// next lock holder (who takes the dead one's lock over) repairs it.
constexpr auto kRecheck = std::chrono::seconds(1);

// Sleeps on `seq` until `ready()`, looking again at least every kRecheck
// (the caller then retakes the lock); false once `deadline` passed.
template <class Ready>
bool wait_to_retry(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleepers, Ready&& ready,
                   Deadline deadline, WaitOp op) {
  bool recheck = false;
  return wait_for_change(
      seq, sleepers, [&] { return recheck || ready(); }, deadline, kRecheck, [&] { recheck = true; }, op);
}

// The heap's order for the standard heap algorithms (a max-heap): whether
// `a` comes out after `b`, so that the top is the item to come out first.
struct ComesOutAfter {
  bool lifo;
  bool operator()(const PriorityHeapEntry& a, const PriorityHeapEntry& b) const noexcept {
    if (lifo) return a.seq < b.seq;
    return a.priority > b.priority || (a.priority == b.priority && a.seq > b.seq);
  }
};

// The parity a joinable get records in its lease (ledger_begin_get) and the
// "head count" its settling passes: equal when the dead get's free happened.
constexpr std::uint64_t kFreed = 1, kNotFreed = 0;

}  // namespace

PriorityQueueCore::PriorityQueueCore(PriorityQueueState* s, std::shared_ptr<const void> keepalive, Label label,
                                     const PriorityGeometry& geometry)
    : s_(s),
      keep_(std::move(keepalive)),
      label_(std::move(label)),
      slots_(geometry.slots),
      slot_size_(geometry.slot_size),
      max_message_(geometry.max_message),
      lifo_(geometry.order == kOrderLifo),
      joinable_(geometry.joinable) {
  const auto layout = priority_queue_layout(slots_, slot_size_);
  char* base = reinterpret_cast<char*>(s_);
  heap_ = reinterpret_cast<PriorityHeapEntry*>(base + layout.heap_offset);
  free_ = reinterpret_cast<std::uint32_t*>(base + layout.free_offset);
  slots_base_ = base + layout.slots_offset;
}

bool PriorityQueueCore::names_ready_slot(const PriorityHeapEntry& e) const noexcept {
  return e.slot < slots_ && slot(e.slot).state.load(std::memory_order_acquire) == kSlotReady &&
         slot(e.slot).seq == e.seq;
}

// The state words are the truth: every ready slot goes into the heap, every
// other one onto the free stack, and the next seq follows the highest seq
// ever published (ready now, or got: got_end). Idempotent, so a holder killed
// in here leaves the next one nothing worse to do. Returns the sizes it
// derived (the shared copies may be overwritten again at any time).
PriorityQueueCore::Sizes PriorityQueueCore::rebuild() noexcept {
  std::uint64_t n = 0, f = 0, next = s_->got_end;
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
  // A producer killed between its seq bump and its publishing store took a
  // seq (a task, if joinable) that no item carries: given back here.
  s_->next_seq.store(next, std::memory_order_release);
  std::make_heap(heap_, heap_ + n, ComesOutAfter{lifo_});
  s_->rebuilds.fetch_add(1, std::memory_order_relaxed);
  publish_counts(n);
  return {n, f};
}

PriorityQueueCore::Sizes PriorityQueueCore::recover_locked() {
  if (joinable_) {
    // A get killed with its task in flight: its free happened iff the slot
    // it noted is free (nobody has used the slot since: we hold the lock next).
    const std::uint64_t i = s_->get_slot;
    const bool freed = i < slots_ && slot(i).state.load(std::memory_order_acquire) == kSlotFree;
    ledger_settle(s_->tasks, freed ? kFreed : kNotFreed);
  }
  Sizes z = rebuild();
  if ((s_->closed.load(std::memory_order_acquire) & kQueueDiscard) != 0) discard_locked(z);
  return z;
}

void PriorityQueueCore::heap_push(const PriorityHeapEntry& e, std::uint64_t heap) noexcept {
  heap_[heap] = e;  // heap < slots_: the caller took a free slot, so the heap has room
  std::push_heap(heap_, heap_ + heap + 1, ComesOutAfter{lifo_});
  s_->heap_size = heap + 1;
}

PriorityHeapEntry PriorityQueueCore::heap_pop(std::uint64_t heap) noexcept {
  std::pop_heap(heap_, heap_ + heap, ComesOutAfter{lifo_});
  s_->heap_size = heap - 1;
  return heap_[heap - 1];
}

void PriorityQueueCore::publish_counts(std::uint64_t heap) noexcept {
  if (heap > 0) s_->lowest.store(heap_[0].priority, std::memory_order_relaxed);
  s_->count.store(heap, std::memory_order_seq_cst);
}

bool PriorityQueueCore::await_items(Deadline deadline) {
  // Consumers of this queue wait outside its lock anyway: the same wait, minus the take.
  return wait_for_change(
      s_->data.seq, s_->data.sleepers, [&] { return qsize() != 0 || closed(); }, deadline, kRecheck, [] {},
      WaitOp::Get);
}

WaitHandle PriorityQueueCore::items_handle() const {
  return shared_word_handle(
      s_->data.seq, s_->data.sleepers, ArmKind::Sleepers, [core = *this] { return core.qsize() != 0 || core.closed(); },
      keep_, label_, "items of ");
}

WaitHandle PriorityQueueCore::room_handle() const {
  return shared_word_handle(
      s_->space.seq, s_->space.sleepers, ArmKind::Sleepers, [core = *this] { return !core.full() || core.closed(); },
      keep_, label_, "room in ");
}

void PriorityQueueCore::wake_all_after_repair() noexcept {
  publish_change(s_->data.seq, s_->data.sleepers, INT_MAX);
  publish_change(s_->space.seq, s_->space.sleepers, INT_MAX);
}

QueueOutcome PriorityQueueCore::put(std::int64_t priority, const void* data, std::size_t n, Deadline deadline) {
  if (n > max_message_) raise_too_large(label_, n, max_message_, "max_message");
  const auto has_room = [&] { return qsize() < slots_; };
  for (;;) {
    if (closed()) return {0, QueueMiss::Closed};
    bool put_it = false, repaired = false;
    {
      // While there is room the lock is all that stands in the way (its
      // holder is mid-put or mid-get): wait on for it, within bounds.
      SideLock lock(s_->lock, deadline, label_, [&] { return has_room() && !closed(); });
      if (!lock.held()) {
        if (closed()) return {0, QueueMiss::Closed};
        return {0, lock.miss() == SideLockMiss::Holder ? QueueMiss::Holder : QueueMiss::Waited};
      }
      Sizes z = sizes();
      if (lock.took_over() || !consistent(z)) {
        z = recover_locked();
        repaired = true;
      }
      if (closed()) return {0, QueueMiss::Closed};
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
        const std::uint64_t seq = s_->next_seq.load(std::memory_order_relaxed);
        s_->next_seq.store(seq + 1, std::memory_order_relaxed);  // first: a seq is never handed out twice
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
    if (repaired) wake_all_after_repair();
    if (put_it) {
      wake_if_sleeping(s_->data.seq, s_->data.sleepers, 1);
      return {1, QueueMiss::None};
    }
    if (!wait_to_retry(
            s_->space.seq, s_->space.sleepers, [&] { return has_room() || closed(); }, deadline, WaitOp::Put))
      return {0, QueueMiss::Waited};
  }
}

void PriorityQueueCore::raise_put(const QueueOutcome& outcome) const {
  raise_missed(label_, {true, s_->lock, "its lock"}, outcome.miss,
               " (" + std::to_string(qsize()) + " of " + std::to_string(slots_) + " slots)");
}

void PriorityQueueCore::free_slot(const PriorityHeapEntry& e, Sizes& z, int lease) noexcept {
  // Before the free: rebuild derives the next seq from it.
  if (s_->got_end <= e.seq) s_->got_end = e.seq + 1;
  if (lease >= 0) {
    s_->get_slot = e.slot;
    ledger_begin_get(s_->tasks, lease, kFreed);
  }
  // The one store that frees the slot.
  slot(e.slot).state.store(kSlotFree, std::memory_order_release);
  if (lease >= 0) ledger_end_get(s_->tasks, lease);
  // heap + free == slots_ held before the pop, so z.free < slots_ here.
  free_[z.free] = static_cast<std::uint32_t>(e.slot);
  z.free += 1;
  s_->free_top = z.free;
  publish_counts(z.heap);
}

bool PriorityQueueCore::take_locked(Sizes& z, ReadFn read, void* ctx, std::int64_t* priority,
                                    std::exception_ptr& failure, std::uint32_t& len, bool& repaired) {
  if (z.heap == 0) return false;
  // The top is taken off, then checked: the copy popped is the one used.
  PriorityHeapEntry e = heap_pop(z.heap);
  z.heap -= 1;
  if (!names_ready_slot(e)) {
    z = rebuild();  // the heap was overwritten: the states are the truth
    repaired = true;
    if (z.heap == 0) return false;
    e = heap_pop(z.heap);
    z.heap -= 1;
    if (!names_ready_slot(e)) throw_corrupt("its heap changes under its lock");
  }
  const int lease = joinable_ ? ledger_lease(s_->tasks, this_process()) : -1;
  PrioritySlot& sl = slot(e.slot);
  len = sl.length;
  if (len > max_message_) {
    free_slot(e, z, lease);
    if (joinable_) (void)ledger_task_done(s_->tasks, this_process(), published());  // nobody got it
    throw_corrupt("it held an item of " + std::to_string(len) + " bytes in a slot of " + std::to_string(max_message_) +
                  " (the item was dropped)");
  }
  if (priority != nullptr) *priority = sl.priority;
  if (read != nullptr) {
    try {
      read(ctx, payload(e.slot), len);
    } catch (...) {
      failure = std::current_exception();
    }
  }
  free_slot(e, z, lease);
  return true;
}

void PriorityQueueCore::discard_locked(Sizes& z) {
  s_->closed.fetch_or(kQueueClosed | kQueueDiscard, std::memory_order_seq_cst);
  std::exception_ptr none;
  std::uint32_t len = 0;
  bool repaired = false;
  std::size_t discarded = 0;
  while (take_locked(z, nullptr, nullptr, nullptr, none, len, repaired)) ++discarded;
  if (!joinable_ || discarded == 0) return;
  // Leased to this process as they were taken: done, as Python's shutdown
  // does. Killed before, they count as abandoned.
  for (std::size_t i = 0; i < discarded; ++i) (void)ledger_task_done(s_->tasks, this_process(), published());
  wake_if_sleeping(s_->tasks.join_seq, s_->tasks.join_sleepers, INT_MAX);
}

QueueOutcome PriorityQueueCore::get(ReadFn read, void* ctx, Deadline deadline, std::int64_t* priority) {
  const auto has_item = [&] { return qsize() > 0; };
  for (;;) {
    bool got = false, repaired = false;
    std::exception_ptr failure;
    std::uint32_t len = 0;
    {
      SideLock lock(s_->lock, deadline, label_, has_item);
      if (!lock.held()) {
        if (closed() && !has_item()) return {0, QueueMiss::Closed};
        return {0, lock.miss() == SideLockMiss::Holder ? QueueMiss::Holder : QueueMiss::Waited};
      }
      Sizes z = sizes();
      if (lock.took_over() || !consistent(z)) {
        z = recover_locked();
        repaired = true;
      }
      got = take_locked(z, read, ctx, priority, failure, len, repaired);
      if (!got && closed()) return {0, QueueMiss::Closed};
    }
    if (repaired) wake_all_after_repair();
    if (got) {
      wake_if_sleeping(s_->space.seq, s_->space.sleepers, 1);
      if (failure) {
        if (joinable_) task_done();  // the caller never got this task
        raise_decode_error(label_, len, failure);
      }
      return {1, QueueMiss::None};
    }
    if (!wait_to_retry(
            s_->data.seq, s_->data.sleepers, [&] { return has_item() || closed(); }, deadline, WaitOp::Get))
      return {0, QueueMiss::Waited};
  }
}

void PriorityQueueCore::raise_get(const QueueOutcome& outcome) const {
  raise_missed(label_, {false, s_->lock, "its lock"}, outcome.miss, "");
}

void PriorityQueueCore::shutdown(bool immediate) {
  close();
  if (!immediate) return;
  {
    // Like put() and get() without a timeout, this waits for the lock (a
    // dead holder's is taken over). Puts check the closed word under it, so
    // once it is held nothing more is published.
    SideLock lock(s_->lock, Deadline::never(), label_, [] { return false; });
    Sizes z = sizes();
    if (lock.took_over() || !consistent(z)) z = recover_locked();
    discard_locked(z);
  }
  close_queue(*s_, kQueueClosed);  // producers and consumers look again: Closed
}

bool PriorityQueueCore::join(Deadline deadline) {
  return tasks_join(
      s_->tasks, deadline, [&] { return published(); },
      [&] {
        // Nobody waits holding the lock, so join() itself counts the tasks of
        // consumers that died before task_done() finished (abandoned_tasks()),
        // and repairs after a dead holder: its seq count may be one too high.
        bool repaired = false;
        {
          SideLock lock(s_->lock, Deadline::now(), label_, [] { return false; });
          if (!lock.held()) return;
          if (lock.took_over() || !consistent(sizes())) {
            (void)recover_locked();
            repaired = true;
          }
          if (ledger_reclaim_dead(s_->tasks) != 0)
            wake_if_sleeping(s_->tasks.join_seq, s_->tasks.join_sleepers, INT_MAX);
        }
        if (repaired) wake_all_after_repair();
      });
}

}  // namespace ipckit::detail

namespace ipckit {

detail::PriorityQueueCore Segment::open_priority_queue(std::string_view name, const char* type_name,
                                                       const QueueOptions& options, ObjectKind kind) {
  const detail::Label who = label_of(kind, name);
  if (kind != ObjectKind::PriorityQueue && kind != ObjectKind::LifoQueue && kind != ObjectKind::JoinablePriorityQueue)
    detail::raise<InvalidArgument>(who, "open_priority_queue opens priority, LIFO and joinable priority queues only",
                                   "open it with its own kind's call");
  detail::check_capacity(who, options);
  // Slots are fixed-size, so the default max_message keeps many of them: 64
  // slots' worth of capacity each (a FIFO's records take only what they need).
  const std::uint64_t max_message = options.max_message == 0 ? options.capacity_bytes / 64 : options.max_message;
  if (max_message > detail::kMaxPriorityMessage)
    detail::raise<InvalidArgument>(who, "max_message " + std::to_string(max_message) + " is out of range",
                                   "use at most 128 MiB");
  const std::uint64_t slot_size = detail::priority_slot_size(max_message);
  const std::uint64_t slots = options.max_items != 0 ? options.max_items : options.capacity_bytes / slot_size;
  if (slots == 0)
    detail::raise<InvalidArgument>(who,
                                   "capacity_bytes " + std::to_string(options.capacity_bytes) +
                                       " cannot hold one slot of max_message " + std::to_string(max_message) +
                                       " bytes (plus a " + std::to_string(detail::kPrioritySlotHeader) +
                                       "-byte header)",
                                   "use a smaller max_message or a larger capacity");
  if (slots > detail::kMaxPrioritySlots)
    detail::raise<InvalidArgument>(who, std::to_string(slots) + " slots is too many",
                                   "use at most " + std::to_string(detail::kMaxPrioritySlots) +
                                       " (max_items, or capacity_bytes / (max_message + header))");
  const auto layout = detail::priority_queue_layout(slots, slot_size);
  auto spec = detail::ObjectSpec{kind, type_name, 0, 1, slots, detail::kPriorityQueueLayout, layout.bytes};
  struct Init {
    std::uint64_t capacity_bytes, max_items;
    detail::PriorityGeometry geometry;
  } init{options.capacity_bytes,
         options.max_items,
         {slots, slot_size, max_message, kind == ObjectKind::LifoQueue ? detail::kOrderLifo : detail::kOrderPriority,
          kind == ObjectKind::JoinablePriorityQueue}};
  spec.init = [](void* body, const void* arg) {
    const auto& i = *static_cast<const Init*>(arg);
    auto* q = static_cast<detail::PriorityQueueState*>(body);
    q->capacity_bytes = i.capacity_bytes;
    q->max_message = i.geometry.max_message;
    q->max_items = i.max_items;
    q->slot_count = i.geometry.slots;
    q->slot_size = i.geometry.slot_size;
    q->order = i.geometry.order;
    q->joinable = i.geometry.joinable ? 1 : 0;
    q->free_top = i.geometry.slots;
    auto* free = reinterpret_cast<std::uint32_t*>(
        static_cast<char*>(body) + detail::priority_queue_layout(i.geometry.slots, i.geometry.slot_size).free_offset);
    // Lowest index on top: the first puts use the first slots.
    for (std::uint64_t k = 0; k < i.geometry.slots; ++k) free[k] = static_cast<std::uint32_t>(i.geometry.slots - 1 - k);
  };
  spec.init_arg = &init;

  const auto mismatch = [&](const detail::PriorityQueueState& q) {
    detail::raise_about<TypeMismatch>(
        who, "was created with capacity_bytes " + std::to_string(q.capacity_bytes) + ", max_message " +
                 std::to_string(q.max_message) + " and max_items " + std::to_string(q.max_items) + ", not " +
                 std::to_string(options.capacity_bytes) + ", " + std::to_string(max_message) + " and " +
                 std::to_string(options.max_items) + "; open it with its options");
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
    if (body != nullptr && info.kind == kind && info.bytes >= sizeof(detail::PriorityQueueState)) {
      const auto& existing = *static_cast<const detail::PriorityQueueState*>(body);
      if (existing.max_message != max_message) mismatch(existing);
    }
    throw;
  }
  if (q->capacity_bytes != options.capacity_bytes || q->max_message != max_message ||
      q->max_items != options.max_items || q->slot_count != slots || q->slot_size != slot_size)
    mismatch(*q);
  // The handle keeps the geometry validated here, not the segment's copy.
  return detail::SegmentAccess::make<detail::PriorityQueueCore>(q, keepalive(), who, init.geometry);
}

detail::PriorityQueueCore detail::SegmentAccess::open_priority_queue(Segment& seg, std::string_view name,
                                                                     const char* type_name, const QueueOptions& options,
                                                                     ObjectKind kind) {
  return seg.open_priority_queue(name, type_name, options, kind);
}

}  // namespace ipckit
