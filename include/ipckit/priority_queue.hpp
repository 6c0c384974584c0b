// ipckit/priority_queue.hpp — a priority queue of serialized objects between processes.
//
// Python's queue.PriorityQueue across processes: the item of the LOWEST
// priority value comes out first, and items of equal priority come out in
// the order they were put. Any cereal-serializable T works.
//
//   auto urgent = seg.priority_queue<Task>("urgent", {.capacity_bytes = 1 << 20, .max_message = 256});
//   urgent.put(3, task_c);  urgent.put(1, task_a);  urgent.put(2, task_b);
//   Task t = urgent.get();                         // task_a; blocks while empty
//   auto [priority, next] = urgent.get_with_priority();   // {2, task_b}
//   urgent.close();                                // producers get Closed; consumers drain, then Closed
//
// put(priority, item) and get() / get_with_priority() come in the four forms
// of queue.hpp: put(p, x) / put(p, x, timeout) / put_until(p, x, t) /
// put_nowait(p, x) (Full) / try_put(p, x) -> bool, and get() / get(timeout) /
// get_until(t) / get_nowait() (Empty) / try_get() -> optional<T>, likewise
// get_with_priority...() and try_get_with_priority() -> optional<pair>.
// close() and shutdown(immediate) behave as a FIFO queue's.
//
// JoinablePriorityQueue<T> (seg.joinable_priority_queue<T>) adds
// task_done()/join()/unfinished_tasks()/abandoned_tasks() with the crash
// accounting of JoinableQueue (queue.hpp): a consumer killed between get()
// and task_done() leaves its task abandoned, counted done once a liveness
// pass of join() (every ~25 ms) notices, so join() does not hang on it.
//
// The queue keeps fixed slots of `max_message` bytes each (default
// capacity_bytes / 64: 16 KiB items, 63 slots in the default 1 MiB):
// `max_items` slots if set, otherwise as many as `capacity_bytes` holds
// (capacity_bytes / (max_message + 24), rounded down) — so set max_message
// near your items' encoded size to hold more. slots() says how many.
// Priorities are std::int64_t; the whole range, negatives included, works.
//
// Errors and blocking are those of Queue: put() blocks while every slot is
// taken, get() while empty; an item whose encoding exceeds max_message gets
// MessageTooLarge before anything is written; a payload that does not decode
// as T is dropped with DecodeError and the queue goes on; every process must
// open it with the same T and options (TypeMismatch). Timed and non-blocking
// calls keep their bound as Queue's do: a process stopped (SIGSTOP, a
// debugger) while it holds the queue's lock makes them fail by their
// deadline, naming it.
//
// Crash-safe: a producer killed inside put() leaves its item wholly in or
// wholly out; a consumer killed inside get() leaves the item queued unless
// get() returned (the next process to take the queue's lock rebuilds its
// heap from the slots). One lock serves producers and consumers and nobody
// sleeps holding it; a consumer decodes under it, so huge items slow the
// producers down. Queue is the faster choice when FIFO order will do.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/priority_queue_core.hpp"
#include "ipckit/error.hpp"
#include "ipckit/queue.hpp"  // the codecs, the forms
#include "ipckit/segment.hpp"

namespace ipckit {

namespace detail {

// A slot queue's handle: the get forms, and the hooks every slot queue's
// forms use.
template <class Derived, class T>
class SlotQueue : public QueueHandle<PriorityQueueCore>, public GetForms<Derived, T> {
 public:
  // How many items it holds at most.
  [[nodiscard]] std::size_t slots() const noexcept { return this->core_.slots(); }

 protected:
  explicit SlotQueue(PriorityQueueCore core) : QueueHandle<PriorityQueueCore>(std::move(core)) {}
  QueueOutcome put_with(std::int64_t priority, const T& item, Deadline deadline) {
    const std::string_view bytes = encode(item);  // outside the lock
    return this->core_.put(priority, bytes.data(), bytes.size(), deadline);
  }
  QueueOutcome get_with(T& out, std::int64_t* priority, Deadline deadline) {
    return this->core_.get([](void* ctx, const char* p, std::size_t n) { decode_into(*static_cast<T*>(ctx), p, n); },
                           &out, deadline, priority);
  }

 private:
  friend GetForms<Derived, T>;
  QueueOutcome get_outcome(T& out, Deadline deadline) { return get_with(out, nullptr, deadline); }
  [[noreturn]] void raise_get(const QueueOutcome& r) const { this->core_.raise_get(r); }
};

}  // namespace detail

template <class T>
class PriorityQueue : public detail::SlotQueue<PriorityQueue<T>, T> {
  using Deadline = detail::Deadline;

 public:
  // Blocks while every slot is taken. Throws MessageTooLarge, Closed.
  void put(std::int64_t priority, const T& item) { put_by(priority, item, Deadline::never()); }
  // Throws Full if no slot came free within `timeout`.
  template <class Rep, class Period>
  void put(std::int64_t priority, const T& item, const std::chrono::duration<Rep, Period>& timeout) {
    put_by(priority, item, Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  void put_until(std::int64_t priority, const T& item, const std::chrono::time_point<Clock, Duration>& t) {
    put_by(priority, item, Deadline::at(t));
  }
  // Throws Full at once if every slot is taken.
  void put_nowait(std::int64_t priority, const T& item) { put_by(priority, item, Deadline::now()); }
  // False where put_nowait() throws Full or Closed.
  [[nodiscard]] bool try_put(std::int64_t priority, const T& item) {
    return this->put_with(priority, item, Deadline::now()).ok();
  }
  // async_put(priority, item, [timeout,] [CancelSignal,] token): ipckit/asio.hpp.
  template <class... A>
  auto async_put(A&&... a) {
    return detail::AsyncOpsFor<PriorityQueue, A...>::template put_prioritized<T>(*this, std::forward<A>(a)...);
  }

  // The item with the priority it was put with; the forms of get().
  using Prioritized = std::pair<std::int64_t, T>;
  Prioritized get_with_priority() { return prioritized_by(Deadline::never()); }
  IPCKIT_DETAIL_TIMED_FORMS(Prioritized, get_with_priority, get_with_priority_until, prioritized_by);
  Prioritized get_with_priority_nowait() { return prioritized_by(Deadline::now()); }
  std::optional<Prioritized> try_get_with_priority() {
    std::optional<Prioritized> out(std::in_place);
    if (!this->get_with(out->second, &out->first, Deadline::now()).ok()) out.reset();
    return out;
  }

 private:
  // Made by Segment::priority_queue() and joinable_priority_queue() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  explicit PriorityQueue(detail::PriorityQueueCore core) : detail::SlotQueue<PriorityQueue<T>, T>(std::move(core)) {}
  void put_by(std::int64_t priority, const T& item, Deadline deadline) {
    const detail::QueueOutcome r = this->put_with(priority, item, deadline);
    if (!r.ok()) [[unlikely]]
      this->core_.raise_put(r);
  }
  Prioritized prioritized_by(Deadline deadline) {
    Prioritized out{0, T{}};
    const detail::QueueOutcome r = this->get_with(out.second, &out.first, deadline);
    if (!r.ok()) [[unlikely]]
      this->core_.raise_get(r);
    return out;
  }
};

template <class T>
class JoinablePriorityQueue : public detail::Joinable<PriorityQueue<T>> {
 public:
  using detail::Joinable<PriorityQueue<T>>::Joinable;
};

template <class T>
PriorityQueue<T> Segment::priority_queue(std::string_view name, const QueueOptions& options) {
  return detail::SegmentAccess::make<PriorityQueue<T>>(open_priority_queue(name, typeid(T).name(), options));
}

template <class T>
JoinablePriorityQueue<T> Segment::joinable_priority_queue(std::string_view name, const QueueOptions& options) {
  return detail::SegmentAccess::make<JoinablePriorityQueue<T>>(
      open_priority_queue(name, typeid(T).name(), options, ObjectKind::JoinablePriorityQueue));
}

}  // namespace ipckit
