// ipckit/lifo_queue.hpp — a LIFO queue (a stack) of serialized objects
// between processes: Python's queue.LifoQueue. The item put last comes out
// first.
//
//   auto undo = seg.lifo_queue<Edit>("undo", {.max_items = 100, .max_message = 256});
//   undo.put(a);  undo.put(b);
//   Edit e = undo.get();            // b; blocks while empty
//
// It is a priority queue ordered by put order alone, latest first (see
// priority_queue.hpp): the same fixed slots, the same four forms of put(x)
// and get() as Queue (queue.hpp), the same errors, close() and shutdown(),
// and the same crash safety: a producer killed inside put() leaves its item
// wholly in or out, a consumer killed inside get() leaves it queued unless
// get() returned. Among producers racing, "last" is the order in which their
// puts took the queue's lock.
#pragma once

#include <typeinfo>
#include <utility>

#include "ipckit/priority_queue.hpp"

namespace ipckit {

template <class T>
class LifoQueue : public detail::SlotQueue<LifoQueue<T>, T>, public detail::PutForms<LifoQueue<T>, T> {
 private:
  // Made by Segment::lifo_queue() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  explicit LifoQueue(detail::PriorityQueueCore core) : detail::SlotQueue<LifoQueue<T>, T>(std::move(core)) {}
  friend detail::PutForms<LifoQueue, T>;
  detail::QueueOutcome put_outcome(const T& item, detail::Deadline deadline) {
    return this->put_with(0, item, deadline);
  }
  [[noreturn]] void raise_put(const detail::QueueOutcome& r, std::size_t) const { this->core_.raise_put(r); }
};

template <class T>
LifoQueue<T> Segment::lifo_queue(std::string_view name, const QueueOptions& options) {
  return detail::SegmentAccess::make<LifoQueue<T>>(
      open_priority_queue(name, typeid(T).name(), options, ObjectKind::LifoQueue));
}

}  // namespace ipckit
