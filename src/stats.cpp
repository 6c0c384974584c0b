// Every primitive's stats(): a read-only snapshot of its shared state
// (ipckit/stats.hpp), computed with the primitive's own accessors where it
// has them (qsize(), holder(), n_waiting(), unfinished_tasks(), ...).
//
// Nothing here takes a lock, waits, or lets a shared value index memory: the
// only arrays read are fixed-size parts of the state structs, walked in
// full. What cannot be right is written into `corrupt`.
#include "ipckit/stats.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include "ipckit/barrier.hpp"
#include "ipckit/condition.hpp"
#include "ipckit/detail/priority_queue_core.hpp"
#include "ipckit/detail/queue_core.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/event.hpp"
#include "ipckit/lock.hpp"
#include "ipckit/semaphore.hpp"

namespace ipckit {

namespace detail {
namespace {

std::uint32_t sleepers_of(const std::atomic<std::uint32_t>& word) {
  return sleeper_count(word.load(std::memory_order_relaxed));
}

// The lock inside another object (a queue's, a barrier's), seen through a
// handle that names nothing: stats() reads no label.
LockStats inner_lock_stats(const LockState& s) {
  return SegmentAccess::make<Lock>(const_cast<LockState*>(&s), nullptr, Label({}, {}, {})).stats();
}

// Appends one more thing found wrong to `corrupt`.
void note(std::string& corrupt, const std::string& what) { corrupt += (corrupt.empty() ? "" : "; ") + what; }

template <class U>
void load_into(unsigned char* out, const unsigned char* in) {
  const U v = __atomic_load_n(reinterpret_cast<const U*>(in), __ATOMIC_ACQUIRE);
  std::memcpy(out, &v, sizeof v);
}

// One element of `size` bytes: a single atomic load when the hardware has
// one of that size and it is aligned (how Value<T>::set stores it), else a copy.
void copy_element(unsigned char* out, const unsigned char* in, std::size_t size) {
  const bool aligned = reinterpret_cast<std::uintptr_t>(in) % size == 0;
  switch (aligned ? size : 0) {
    case 1:
      return load_into<std::uint8_t>(out, in);
    case 2:
      return load_into<std::uint16_t>(out, in);
    case 4:
      return load_into<std::uint32_t>(out, in);
    case 8:
      return load_into<std::uint64_t>(out, in);
    default:
      std::memcpy(out, in, size);
  }
}

// A joinable queue's books: who holds tasks (each lease slot is read once).
TaskStats task_stats(TaskLedger& l, std::uint64_t unfinished) {
  TaskStats t;
  t.unfinished = unfinished;
  t.abandoned = l.abandoned.load(std::memory_order_relaxed);
  t.joiners = sleepers_of(l.join_sleepers);
  for (std::size_t i = 0; i < kLeaseSlots; ++i) {
    const auto pid = l.pid[i].load(std::memory_order_relaxed);
    const auto got = ledger_outstanding(l.tally[i].load(std::memory_order_relaxed));
    if (pid == 0 || got == 0) continue;
    const bool alive = process_alive(pid, std::atomic_ref(l.start_ticks[i]).load(std::memory_order_relaxed));
    t.holders.push_back(TaskHolder{static_cast<int>(pid), got, alive});
  }
  return t;
}

// What broke a barrier, at its BreakReason's number (None: nothing).
constexpr std::array<const char*, 7> kBreakReasons = {
    nullptr,
    "timeout",
    "aborted",
    "a party died",
    "a party died waiting",
    "its action threw",
    "a party died running its action",
};
static_assert(kBreakReasons.size() == static_cast<std::size_t>(BreakReason::ActionDied) + 1);

// Null for a word that is no reason.
const char* break_reason(std::uint32_t broken) {
  return broken < kBreakReasons.size() ? kBreakReasons[broken] : nullptr;
}

}  // namespace

ValueStats value_stats(std::optional<LockStats> lock, const char* type_name, std::uint32_t elem_size,
                       std::uint64_t count, const void* data, std::uint64_t max_elements) {
  ValueStats st;
  st.type_name = type_name;
  st.elem_size = elem_size;
  st.count = count;
  st.lock = lock;
  if (elem_size == 0) return st;
  const std::uint64_t n = std::min(count, max_elements);
  st.data.resize(n * elem_size);
  const auto* in = static_cast<const unsigned char*>(data);
  for (std::uint64_t i = 0; i < n; ++i) copy_element(st.data.data() + i * elem_size, in + i * elem_size, elem_size);
  return st;
}

}  // namespace detail

namespace detail {

LockStats LockHandle::stats() const {
  LockStats st;
  if (const auto h = holder()) {
    st.locked = true;
    st.holder_pid = h->pid;
    st.holder_tid = h->tid;
    st.holder_alive = h->alive;
    st.owner_died = s_->owner_died.load(std::memory_order_relaxed) != 0;
  }
  st.waiters = (s_->word.load(std::memory_order_relaxed) & kLockWaiters) != 0;
  st.recoveries = recoveries();
  st.contended = s_->acquisitions.load(std::memory_order_relaxed);
  return st;
}

QueueStats QueueCore::stats() const {
  QueueStats st;
  st.items = qsize();
  st.bytes_used = bytes_used();
  st.capacity = geo_.capacity;
  st.max_message = geo_.max_message;
  st.max_items = geo_.max_items;
  st.closed = closed();
  st.sleeping_consumers = sleepers_of(s_->data.sleepers);
  st.sleeping_producers = sleepers_of(s_->space.sleepers);
  st.producers_lock = inner_lock_stats(s_->put.lock);
  st.consumers_lock = inner_lock_stats(s_->get.lock);
  // Positions read at two instants can be apart by more than the ring only
  // if a consumer freed records in between: read again before calling it corrupt.
  if (st.bytes_used > st.capacity && bytes_used() > st.capacity)
    note(st.corrupt, "its positions are " + std::to_string(bytes_used()) + " bytes apart in a ring of " +
                         std::to_string(st.capacity));
  if (geo_.joinable) st.tasks = task_stats(s_->tasks, ledger_unfinished(s_->tasks, published()));
  return st;
}

PriorityQueueStats PriorityQueueCore::stats() const {
  PriorityQueueStats st;
  st.items = qsize();
  st.slots = slots_;
  st.max_message = max_message_;
  const auto lowest = s_->lowest.load(std::memory_order_relaxed);
  if (st.items > 0) st.lowest_priority = lowest;
  st.closed = closed();
  st.sleeping_consumers = sleepers_of(s_->data.sleepers);
  st.sleeping_producers = sleepers_of(s_->space.sleepers);
  st.rebuilds = rebuilds();
  st.lock = inner_lock_stats(s_->lock);
  if (joinable_) st.tasks = task_stats(s_->tasks, ledger_unfinished(s_->tasks, published()));
  // The count changes under the lock only, never past the slots.
  if (st.items > slots_)
    note(st.corrupt,
         "its item count " + std::to_string(st.items) + " exceeds its " + std::to_string(slots_) + " slots");
  return st;
}

}  // namespace detail

EventStats Event::stats() const { return EventStats{is_set(), detail::sleepers_of(s_->sleepers)}; }

SemaphoreStats Semaphore::stats() const {
  SemaphoreStats st;
  st.value = value();
  st.initial = initial_;
  st.bounded = bounded_;
  st.tracked = tracked_;
  st.reclaimed = reclaimed();
  st.sleepers = detail::sleepers_of(s_->sleepers);
  if (st.value > detail::kSemaphoreMaxValue)
    detail::note(st.corrupt, "its count " + std::to_string(st.value) + " exceeds the maximum " +
                                 std::to_string(detail::kSemaphoreMaxValue));
  // Releases of bounded and tracked semaphores check the count against the initial value.
  if ((bounded_ || tracked_) && st.value > initial_)
    detail::note(st.corrupt,
                 "its count " + std::to_string(st.value) + " exceeds its initial value " + std::to_string(initial_));
  if (!tracked_) return st;
  for (const auto& slot : s_->holders) {
    const auto tid = slot.tid.load(std::memory_order_relaxed);
    const auto units = slot.units.load(std::memory_order_relaxed);
    if (tid == 0 || units == 0) continue;
    const bool alive = detail::thread_alive(tid, slot.start_ticks.load(std::memory_order_relaxed));
    st.holders.push_back(UnitHolder{alive ? detail::process_of_thread(tid) : 0, tid, units, alive});
  }
  return st;
}

ConditionStats Condition::stats() const {
  ConditionStats st;
  const auto high = s_->high.load(std::memory_order_acquire);
  if (high > detail::kConditionSlots)
    detail::note(st.corrupt, "its waiter table claims " + std::to_string(high) + " slots in use, more than its " +
                                 std::to_string(detail::kConditionSlots));
  for (const auto& slot : s_->slot) {
    const auto status = detail::slot_status(slot.word.load(std::memory_order_relaxed));
    st.waiters += status == detail::kWaiterWaiting ? 1 : 0;
    st.notified += status == detail::kWaiterNotified ? 1 : 0;
  }
  st.waiters += s_->overflow.load(std::memory_order_relaxed);
  st.sleepers = detail::sleepers_of(s_->sleepers);
  st.own_lock = lock_ == &s_->own_lock;
  st.lock = plain_.stats();
  return st;
}

BarrierStats Barrier::stats() const {
  BarrierStats st;
  st.parties = parties_;
  st.waiting = n_waiting();
  st.round = s_->round.load(std::memory_order_relaxed);
  const auto broken = s_->broken.load(std::memory_order_relaxed);
  st.broken = detail::barrier_broken(broken);
  st.sleepers = detail::sleepers_of(s_->sleepers);
  st.lock = detail::inner_lock_stats(s_->lock);
  if (st.broken) {
    const char* why = detail::break_reason(broken);
    st.broken_reason = why != nullptr ? why : "unknown";
    if (why == nullptr) detail::note(st.corrupt, "its broken word is " + std::to_string(broken));
  }
  if (st.waiting > parties_)
    detail::note(st.corrupt, std::to_string(st.waiting) + " parties arrived of " + std::to_string(parties_));
  const auto shared_parties = std::atomic_ref(s_->parties).load(std::memory_order_relaxed);
  if (shared_parties != parties_)
    detail::note(st.corrupt, "its shared party count changed from " + std::to_string(parties_) + " to " +
                                 std::to_string(shared_parties));
  return st;
}

}  // namespace ipckit
