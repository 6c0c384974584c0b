// ipckit/redis/priority_queue.hpp — PriorityQueue and JoinablePriorityQueue over Redis.
//
//   auto hub = ipckit::redis::connect("redis://10.0.0.5:6379/0");
//   auto urgent = hub.joinable_priority_queue<Task>("urgent");
//   urgent.put(3, c);  urgent.put(1, a);  urgent.put(1, b);   // any machine
//   Task t = urgent.get();                                     // a: lowest priority value first
//   auto [priority, next] = urgent.get_with_priority();        // {1, b}: FIFO among equals
//   urgent.task_done();  urgent.task_done();  // ...            urgent.join();
//
// The same methods, forms and errors as the shared-memory PriorityQueue
// (ipckit/priority_queue.hpp): put(priority, item) in its four forms plus
// try_put, get() and get_with_priority() in theirs plus try_get /
// try_get_with_priority, close()/shutdown(immediate), qsize()/empty()/
// full()/closed(), and for JoinablePriorityQueue task_done()/join()/
// unfinished_tasks(). Priorities are std::int64_t, the whole range.
//
// Delivery is that of the Redis Queue (ipckit/redis/queue.hpp): at least
// once, each item leased to the consumer that got it until acknowledged
// (a PriorityQueue's next get, ack() or the handle's end; a
// JoinablePriorityQueue's task_done()); an item not acknowledged within
// `visibility_timeout` goes back among the waiting items (by its priority,
// ahead of later arrivals of the same priority) and is delivered again,
// delivery_counts() counting; after `max_deliveries` it goes to the
// dead-letter stream ipckit:{name}:dead (dead_letters(), requeue_dead()).
// Puts are applied once across lost replies, a get's lost reply is
// recovered by its resend, ConnectionLost after the call's bound.
//
// A priority queue is not a stream queue: its items wait in a sorted set
// (src/redis/priority_scripts.hpp). Opening a Queue's name as a priority
// queue, or the reverse, is TypeMismatch. A get costs one script call
// whatever the queue's length (O(log n) in Redis).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/redis/queue.hpp"

namespace ipckit::redis {

namespace detail {

// The engine under every Redis priority queue handle: bytes in, bytes out
// (src/redis/priority_queue.cpp). Copies share one connection and one lease list.
class PriorityStream {
 public:
  PriorityStream(const Hub& hub, std::string_view name, QueueKind kind, std::string_view type,
                 const QueueOptions& options);

  QueueOutcome put(std::int64_t priority, std::string_view item, Deadline deadline);
  // Calls sink(ctx, bytes, size) with the item got and stores its priority
  // in *priority (if not null). A sink that throws drops the item
  // (acknowledged, a task done) and the throw goes on.
  using Sink = StreamQueue::Sink;
  QueueOutcome get(Sink sink, void* ctx, std::int64_t* priority, Deadline deadline);
  [[noreturn]] void raise_put(const QueueOutcome& r) const;
  [[noreturn]] void raise_get(const QueueOutcome& r) const;

  void ack();
  void task_done();
  bool join(Deadline deadline);
  void shutdown(bool immediate);

  [[nodiscard]] std::size_t qsize() const;
  [[nodiscard]] bool full() const;
  [[nodiscard]] bool closed() const;
  [[nodiscard]] std::uint64_t unfinished_tasks() const;
  [[nodiscard]] std::uint64_t dead_letters() const;
  std::size_t requeue_dead(std::size_t max);
  [[nodiscard]] const std::vector<std::uint32_t>& delivery_counts() const;
  [[nodiscard]] const std::string& label() const;
  [[nodiscard]] const std::string& consumer() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace detail

template <class T>
class PriorityQueue : public ipckit::detail::GetForms<PriorityQueue<T>, T> {
  using Deadline = detail::Deadline;

 public:
  PriorityQueue(const Hub& hub, std::string_view name, const QueueOptions& options = {})
      : PriorityQueue(hub, name, detail::QueueKind::Queue, options) {}

  // Blocks while full (max_items / capacity_bytes). Throws MessageTooLarge, Closed.
  void put(std::int64_t priority, const T& item) { put_by(priority, item, Deadline::never()); }
  // Throws Full if no room came within `timeout`.
  template <class Rep, class Period>
  void put(std::int64_t priority, const T& item, const std::chrono::duration<Rep, Period>& timeout) {
    put_by(priority, item, Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  void put_until(std::int64_t priority, const T& item, const std::chrono::time_point<Clock, Duration>& t) {
    put_by(priority, item, Deadline::at(t));
  }
  // Throws Full at once if there is no room.
  void put_nowait(std::int64_t priority, const T& item) { put_by(priority, item, Deadline::now()); }
  // False where put_nowait() throws Full or Closed.
  [[nodiscard]] bool try_put(std::int64_t priority, const T& item) {
    return put_with(priority, item, Deadline::now()).ok();
  }

  // The item with the priority it was put with; the forms of get().
  using Prioritized = std::pair<std::int64_t, T>;
  Prioritized get_with_priority() { return prioritized_by(Deadline::never()); }
  IPCKIT_DETAIL_TIMED_FORMS(Prioritized, get_with_priority, get_with_priority_until, prioritized_by);
  Prioritized get_with_priority_nowait() { return prioritized_by(Deadline::now()); }
  std::optional<Prioritized> try_get_with_priority() {
    std::optional<Prioritized> out(std::in_place);
    if (!get_with(out->second, &out->first, Deadline::now()).ok()) out.reset();
    return out;
  }

  // Acknowledges the item of the last get now (the next get does it; see above).
  void ack() { core_.ack(); }

  [[nodiscard]] std::size_t qsize() const { return core_.qsize(); }
  [[nodiscard]] bool empty() const { return core_.qsize() == 0; }
  [[nodiscard]] bool full() const { return core_.full(); }
  void close() { core_.shutdown(false); }
  void shutdown(bool immediate = true) { core_.shutdown(immediate); }
  [[nodiscard]] bool closed() const { return core_.closed(); }
  [[nodiscard]] const std::string& label() const { return core_.label(); }
  // How many times the item of this handle's last get was delivered (1: the first time).
  [[nodiscard]] const std::vector<std::uint32_t>& delivery_counts() const { return core_.delivery_counts(); }
  // Items moved to the dead-letter stream after max_deliveries.
  [[nodiscard]] std::uint64_t dead_letters() const { return core_.dead_letters(); }
  // Puts up to `max` dead letters back, each with its priority, behind the
  // items of that priority (delivery count reset); how many.
  std::size_t requeue_dead(std::size_t max = SIZE_MAX) { return core_.requeue_dead(max); }
  // This handle's Redis consumer name.
  [[nodiscard]] const std::string& consumer() const { return core_.consumer(); }

 protected:
  PriorityQueue(const Hub& hub, std::string_view name, detail::QueueKind kind, const QueueOptions& options)
      : core_(hub, name, kind, typeid(T).name(), options) {
    ipckit::detail::check_item_type<T>();
  }
  detail::PriorityStream core_;

 private:
  friend ipckit::detail::GetForms<PriorityQueue, T>;
  detail::QueueOutcome put_with(std::int64_t priority, const T& item, Deadline deadline) {
    return core_.put(priority, ipckit::detail::encode(item), deadline);
  }
  detail::QueueOutcome get_with(T& out, std::int64_t* priority, Deadline deadline) {
    return core_.get(&detail::decode_item<T>, &out, priority, deadline);
  }
  void put_by(std::int64_t priority, const T& item, Deadline deadline) {
    const detail::QueueOutcome r = put_with(priority, item, deadline);
    if (!r.ok()) [[unlikely]]
      core_.raise_put(r);
  }
  Prioritized prioritized_by(Deadline deadline) {
    Prioritized out{0, T{}};
    const detail::QueueOutcome r = get_with(out.second, &out.first, deadline);
    if (!r.ok()) [[unlikely]]
      core_.raise_get(r);
    return out;
  }
  detail::QueueOutcome get_outcome(T& out, Deadline deadline) { return get_with(out, nullptr, deadline); }
  [[noreturn]] void raise_get(const detail::QueueOutcome& r) const { core_.raise_get(r); }
};

template <class T>
class JoinablePriorityQueue : public detail::JoinableHandle<PriorityQueue<T>> {
 public:
  JoinablePriorityQueue(const Hub& hub, std::string_view name, const QueueOptions& options = {})
      : detail::JoinableHandle<PriorityQueue<T>>(hub, name, options) {}
};

template <class T>
PriorityQueue<T> Hub::priority_queue(std::string_view name, const QueueOptions& options) {
  return PriorityQueue<T>(*this, name, options);
}
template <class T>
PriorityQueue<T> Hub::priority_queue(std::string_view name) {
  return PriorityQueue<T>(*this, name, QueueOptions{});
}
template <class T>
JoinablePriorityQueue<T> Hub::joinable_priority_queue(std::string_view name, const QueueOptions& options) {
  return JoinablePriorityQueue<T>(*this, name, options);
}
template <class T>
JoinablePriorityQueue<T> Hub::joinable_priority_queue(std::string_view name) {
  return JoinablePriorityQueue<T>(*this, name, QueueOptions{});
}

}  // namespace ipckit::redis
