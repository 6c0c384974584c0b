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
// The queue keeps fixed slots of `max_message` bytes each (default
// capacity_bytes / 64: 16 KiB items, 63 slots in the default 1 MiB):
// `max_items` slots if set, otherwise as many as `capacity_bytes` holds
// (capacity_bytes / (max_message + 24), rounded down) — so set max_message
// near your items' encoded size to hold more. slots() says how many.
// Priorities are std::int64_t; the whole range, negatives included, works.
//
// Errors and blocking are those of Queue: put() blocks while every slot is
// taken (put(item, timeout) and put_nowait throw Full), get() while empty
// (get(timeout) and get_nowait throw Empty); an item whose encoding exceeds
// max_message gets MessageTooLarge before anything is written; a payload that
// does not decode as T is dropped with DecodeError and the queue goes on;
// every process must open it with the same T and options (TypeMismatch).
// Timed and non-blocking calls keep their bound as Queue's do (queue.hpp):
// a process stopped (SIGSTOP, a debugger) while it holds the queue's lock
// makes them throw Full / Empty by their deadline, naming it.
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

#include "ipckit/detail/priority_queue_core.hpp"
#include "ipckit/error.hpp"
#include "ipckit/queue.hpp"  // detail::encode, detail::decode_into
#include "ipckit/segment.hpp"

namespace ipckit {

template <class T>
class PriorityQueue {
 public:
  explicit PriorityQueue(detail::PriorityQueueCore core) : core_(std::move(core)) {}

  // Blocks while every slot is taken. Throws MessageTooLarge, Closed.
  void put(std::int64_t priority, const T& item) { put_by(priority, item, detail::Deadline::never()); }
  // Throws Full if no slot came free within `timeout`.
  void put(std::int64_t priority, const T& item, std::chrono::nanoseconds timeout) {
    put_by(priority, item, detail::Deadline::after(timeout));
  }
  // Throws Full at once if every slot is taken.
  void put_nowait(std::int64_t priority, const T& item) { put_by(priority, item, detail::Deadline::now()); }

  // The item of lowest priority (the earliest put among equals). Blocks
  // while the queue is empty. Throws Closed once closed and drained, DecodeError.
  T get() { return get_by(detail::Deadline::never()).second; }
  // Throws Empty if nothing came within `timeout`.
  T get(std::chrono::nanoseconds timeout) { return get_by(detail::Deadline::after(timeout)).second; }
  // Throws Empty at once if there is nothing.
  T get_nowait() { return get_by(detail::Deadline::now()).second; }
  // nullopt if empty (or closed and drained); never blocks.
  std::optional<T> try_get() {
    try {
      return get_by(detail::Deadline::now()).second;
    } catch (const Empty&) {
      return std::nullopt;
    } catch (const Closed&) {
      return std::nullopt;
    }
  }
  // The item with the priority it was put with.
  std::pair<std::int64_t, T> get_with_priority() { return get_by(detail::Deadline::never()); }
  std::pair<std::int64_t, T> get_with_priority(std::chrono::nanoseconds timeout) { return get_by(detail::Deadline::after(timeout)); }

  [[nodiscard]] std::size_t qsize() const noexcept { return core_.qsize(); }
  [[nodiscard]] bool empty() const noexcept { return core_.qsize() == 0; }
  [[nodiscard]] bool full() const noexcept { return core_.full(); }
  // How many items it holds at most.
  [[nodiscard]] std::size_t slots() const noexcept { return core_.slots(); }
  // Producers then get Closed; consumers drain what is left, then get Closed.
  void close() noexcept { core_.close(); }
  [[nodiscard]] bool closed() const noexcept { return core_.closed(); }
  [[nodiscard]] const std::string& label() const noexcept { return core_.label(); }
  [[nodiscard]] PriorityQueueStats stats() const { return core_.stats(); }  // a read-only snapshot

 private:
  void put_by(std::int64_t priority, const T& item, detail::Deadline deadline) {
    const std::string_view bytes = detail::encode(item);  // outside the lock
    core_.put(priority, bytes.data(), bytes.size(), deadline);
  }
  std::pair<std::int64_t, T> get_by(detail::Deadline deadline) {
    std::pair<std::int64_t, T> out{0, T{}};
    core_.get([](void* ctx, const char* p, std::size_t n) { detail::decode_into(*static_cast<T*>(ctx), p, n); },
              &out.second, deadline, &out.first);
    return out;
  }

  detail::PriorityQueueCore core_;
};

template <class T>
PriorityQueue<T> Segment::priority_queue(std::string_view name, const QueueOptions& options) {
  return PriorityQueue<T>(open_priority_queue(name, typeid(T).name(), options));
}

}  // namespace ipckit
