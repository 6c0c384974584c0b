// ipckit/redis/queue.hpp — Queue and JoinableQueue over Redis Streams.
//
//   auto hub = ipckit::redis::connect("redis://10.0.0.5:6379/0");
//   auto jobs = hub.joinable_queue<Job>("jobs", {.max_items = 10000});
//   jobs.put(job);                 // any machine
//   Job j = jobs.get();            // any machine; blocks while empty
//   jobs.task_done();              // acknowledges it
//   jobs.join();                   // every item put is done
//
// The same methods, forms and errors as the shared-memory queues
// (ipckit/queue.hpp): put/get in their four forms (untimed, timed,
// _until, _nowait) plus try_put/try_get, put_many/get_many likewise,
// close()/shutdown(immediate), qsize()/empty()/full()/closed(), and for
// JoinableQueue task_done()/join()/unfinished_tasks(). Full, Empty, Closed,
// MessageTooLarge, DecodeError and TypeMismatch mean what they mean there;
// ConnectionLost is added (ipckit/redis/hub.hpp). Items are encoded as
// shared-memory queue items are (plain structs as bytes, the rest through
// cereal), so producer and consumer must be built from the same T.
//
// Delivery is AT LEAST ONCE, with a lease. Each item is delivered to one
// consumer (a handle: its Redis consumer name is host/pid/random/n) and
// stays leased to it until it is acknowledged:
//  - Queue: when the same handle calls get()/get_many() again (the items it
//    got before are then done), calls ack(), or is destroyed.
//  - JoinableQueue: by task_done(), one item per call, oldest first.
// An item not acknowledged within `visibility_timeout` of its delivery (its
// consumer died, hung, or lost its connection) is delivered again, to any
// consumer; delivery_counts() tells the consumer how many times each item of
// its last get was delivered (1 the first time), so that work can be made
// idempotent. After `max_deliveries` deliveries an item is moved to the
// queue's dead-letter stream instead (ipckit:{name}:dead; `ipckit ls --redis`
// lists it, `dead_letters()` counts it, `requeue_dead()` puts them back);
// a JoinableQueue counts it done so that join() returns. Choose a
// visibility_timeout longer than any consumer takes between get() and its
// acknowledgement: a live consumer past it sees its item go to another.
//
// Exactly once where ipckit can see it: a put whose reply was lost with the
// connection is sent again with the same token, and Redis applies it once; a
// get whose reply was lost is recovered from the consumer's own pending
// entries on its next call, without a new delivery.
//
// Capacity: `max_items` and `capacity_bytes` bound what is queued and not yet
// delivered (0: no bound; a put blocks, or throws Full, beyond). A blocked
// put looks again every 1-20 ms; a blocked get wakes at once (Redis
// XREAD BLOCK), and looks for expired leases at least every
// min(visibility_timeout / 2, 1 s). Every process must open a queue with the
// same T, kind and options (TypeMismatch otherwise; stored with the stream).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ipckit/detail/codec.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/queue_core.hpp"
#include "ipckit/error.hpp"
#include "ipckit/queue.hpp"
#include "ipckit/redis/hub.hpp"

namespace ipckit::redis {

struct QueueOptions {
  std::size_t capacity_bytes = 0;  // undelivered bytes allowed; 0: no bound
  std::size_t max_items = 0;       // undelivered items allowed; 0: no bound
  std::size_t max_message = 0;     // largest encoded item; 0: 1 MiB
  std::chrono::milliseconds visibility_timeout{30000};
  unsigned max_deliveries = 5;  // then the item goes to the dead-letter stream
};

namespace detail {

using ipckit::detail::Deadline;
using ipckit::detail::QueueOutcome;

enum class QueueKind : std::uint8_t { Queue, Joinable };

// The engine under every Redis queue handle: bytes in, bytes out
// (src/redis/stream_queue.cpp). Copies share one connection and one lease
// list.
class StreamQueue {
 public:
  StreamQueue(const Hub& hub, std::string_view name, QueueKind kind, std::string_view type,
              const QueueOptions& options);

  QueueOutcome put_many(std::span<const std::string_view> items, Deadline deadline);
  // Calls sink(ctx, bytes, size) for each item got, in order, up to `max`.
  // A sink that throws drops that item (acknowledged, a task done) and
  // keeps the ones after it for the next get.
  using Sink = void (*)(void* ctx, const char* p, std::size_t n);
  QueueOutcome get_many(Sink sink, void* ctx, std::size_t max, Deadline deadline);
  [[noreturn]] void raise_put(const QueueOutcome& r, std::size_t count) const;
  [[noreturn]] void raise_get(const QueueOutcome& r) const;

  void ack();
  void task_done();
  bool join(Deadline deadline);
  void close();
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
  [[nodiscard]] std::size_t max_message() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The handle: what Queue and JoinableQueue share.
class StreamHandle {
 public:
  [[nodiscard]] std::size_t qsize() const { return core_.qsize(); }
  [[nodiscard]] bool empty() const { return core_.qsize() == 0; }
  [[nodiscard]] bool full() const { return core_.full(); }
  void close() { core_.close(); }
  void shutdown(bool immediate = true) { core_.shutdown(immediate); }
  [[nodiscard]] bool closed() const { return core_.closed(); }
  [[nodiscard]] const std::string& label() const { return core_.label(); }
  // How many times each item of this handle's last get was delivered (1: the first time).
  [[nodiscard]] const std::vector<std::uint32_t>& delivery_counts() const { return core_.delivery_counts(); }
  // Items moved to the dead-letter stream after max_deliveries.
  [[nodiscard]] std::uint64_t dead_letters() const { return core_.dead_letters(); }
  // Puts up to `max` dead letters back at the tail of the queue (delivery
  // count reset); how many.
  std::size_t requeue_dead(std::size_t max = SIZE_MAX) { return core_.requeue_dead(max); }
  // This handle's Redis consumer name.
  [[nodiscard]] const std::string& consumer() const { return core_.consumer(); }

 protected:
  explicit StreamHandle(StreamQueue core) : core_(std::move(core)) {}
  StreamQueue core_;
};

template <class T>
void decode_item(void* ctx, const char* p, std::size_t n) {
  ipckit::detail::decode_into(*static_cast<T*>(ctx), p, n);
}
template <class T>
void decode_appending(void* ctx, const char* p, std::size_t n) {
  auto& v = *static_cast<std::vector<T>*>(ctx);
  v.emplace_back();
  try {
    ipckit::detail::decode_into(v.back(), p, n);
  } catch (...) {
    v.pop_back();
    throw;
  }
}

}  // namespace detail

template <class T>
class Queue : public detail::StreamHandle,
              public ipckit::detail::PutForms<Queue<T>, T>,
              public ipckit::detail::GetForms<Queue<T>, T>,
              public ipckit::detail::BatchForms<Queue<T>, T, T> {
 public:
  Queue(const Hub& hub, std::string_view name, const QueueOptions& options = {})
      : Queue(hub, name, detail::QueueKind::Queue, options) {}
  // Acknowledges the items of the last get now (get() does it for the
  // previous ones; see above).
  void ack() { core_.ack(); }

 protected:
  Queue(const Hub& hub, std::string_view name, detail::QueueKind kind, const QueueOptions& options)
      : detail::StreamHandle(detail::StreamQueue(hub, name, kind, typeid(T).name(), options)) {
    ipckit::detail::check_item_type<T>();
  }

 private:
  friend ipckit::detail::PutForms<Queue, T>;
  friend ipckit::detail::GetForms<Queue, T>;
  friend ipckit::detail::BatchForms<Queue, T, T>;
  detail::QueueOutcome put_outcome(const T& item, detail::Deadline deadline) {
    const std::string_view bytes = ipckit::detail::encode(item);
    return core_.put_many(std::span<const std::string_view>(&bytes, 1), deadline);
  }
  detail::QueueOutcome get_outcome(T& out, detail::Deadline deadline) {
    return core_.get_many(&detail::decode_item<T>, &out, 1, deadline);
  }
  detail::QueueOutcome put_many_outcome(std::span<const T> items, detail::Deadline deadline) {
    // Each encoding is copied out: encode() reuses one buffer per thread.
    std::vector<std::string> bytes;
    bytes.reserve(items.size());
    for (const T& item : items) bytes.emplace_back(ipckit::detail::encode(item));
    std::vector<std::string_view> views(bytes.begin(), bytes.end());
    return core_.put_many(views, deadline);
  }
  detail::QueueOutcome get_many_outcome(std::vector<T>& out, std::size_t max, detail::Deadline deadline) {
    return core_.get_many(&detail::decode_appending<T>, &out, max, deadline);
  }
  [[noreturn]] void raise_put(const detail::QueueOutcome& r, std::size_t count) const { core_.raise_put(r, count); }
  [[noreturn]] void raise_get(const detail::QueueOutcome& r) const { core_.raise_get(r); }
};

namespace detail {

// task_done() / join() on a Redis queue handle (Queue, PriorityQueue) opened
// as joinable.
template <class Base>
class JoinableHandle : public Base {
 public:
  JoinableHandle(const Hub& hub, std::string_view name, const QueueOptions& options)
      : Base(hub, name, QueueKind::Joinable, options) {}
  // Acknowledges the oldest item this handle got and has not acknowledged.
  // Throws InvalidArgument if it holds none. An item whose lease expired
  // meanwhile (delivered to another consumer) is not counted twice: that
  // consumer's task_done() counts it.
  void task_done() { this->core_.task_done(); }
  // Blocks until every item put has been acknowledged (or dead-lettered).
  void join() { (void)this->core_.join(Deadline::never()); }
  template <class Rep, class Period>
  bool join(const std::chrono::duration<Rep, Period>& timeout) {
    return this->core_.join(Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  bool join_until(const std::chrono::time_point<Clock, Duration>& t) {
    return this->core_.join(Deadline::at(t));
  }
  [[nodiscard]] std::uint64_t unfinished_tasks() const { return this->core_.unfinished_tasks(); }

 private:
  using Base::ack;  // task_done() acknowledges
};

}  // namespace detail

template <class T>
class JoinableQueue : public detail::JoinableHandle<Queue<T>> {
 public:
  JoinableQueue(const Hub& hub, std::string_view name, const QueueOptions& options = {})
      : detail::JoinableHandle<Queue<T>>(hub, name, options) {}
};

template <class T>
Queue<T> Hub::queue(std::string_view name, const QueueOptions& options) {
  return Queue<T>(*this, name, options);
}
template <class T>
Queue<T> Hub::queue(std::string_view name) {
  return Queue<T>(*this, name, QueueOptions{});
}
template <class T>
JoinableQueue<T> Hub::joinable_queue(std::string_view name, const QueueOptions& options) {
  return JoinableQueue<T>(*this, name, options);
}
template <class T>
JoinableQueue<T> Hub::joinable_queue(std::string_view name) {
  return JoinableQueue<T>(*this, name, QueueOptions{});
}

}  // namespace ipckit::redis
