// ipckit/queue.hpp — FIFO queues of serialized objects between processes.
//
// Python's "pickle + Queue" pattern with cereal: any cereal-serializable T
// (strings, vectors, maps, structs with serialize()) goes in one process and
// comes out in another, in order.
//
//   auto jobs = seg.queue<Job>("jobs", {.capacity_bytes = 1 << 20});
//   jobs.put(job);                    // blocks while full
//   Job j = jobs.get();               // blocks while empty
//   jobs.close();                     // producers get Closed; consumers drain, then get Closed
//   jobs.shutdown();                  // Python 3.13: queued items dropped, everyone gets Closed
//
// Every put and get comes in the four forms of every blocking call in ipckit:
//
//   put(x)               get()               blocks
//   put(x, 100ms)        get(100ms)          throws Full / Empty after the timeout (none or negative: one try)
//   put_until(x, t)      get_until(t)        t of any clock; throws Full / Empty
//   put_nowait(x)        get_nowait()        throws Full / Empty at once (Python's block=False)
//   try_put(x) -> bool   try_get() -> optional<T>   false / nullopt at once, never throws for
//                                            "not now" (full, empty, closed); does not use exceptions inside
//
// and so do put_many(items) / get_many(max) (try_put_many returns how many
// went in; try_get_many an empty vector). Every form throws Closed once the
// queue is closed (a get: closed and drained), except the try_ forms, which
// report it as false / nullopt (closed() tells).
//
// Many producers and consumers may share a queue; each producer's items
// arrive in the order it put them. Crash-safe: a producer killed inside put()
// leaves its item wholly in (put returned) or wholly out; a consumer killed
// inside get() leaves the item queued unless get() returned. Waiters spin
// briefly, then sleep on a futex, so an idle consumer costs no CPU.
//
// close() == shutdown(false): producers get Closed at once, consumers get
// what is queued, then Closed. shutdown() (immediate) also discards what is
// queued — a JoinableQueue marks those items' tasks done, so join() returns
// once the tasks already got are done — and every producer and consumer,
// blocked or not, in any process, gets Closed. It waits, like put() and get()
// without a timeout, for a process stopped (SIGSTOP) inside a put or get; a
// process killed inside shutdown() leaves the queue closed, and whatever it
// had not yet discarded is either drained by consumers or discarded by the
// next process to take over the consumers' lock.
//
// The capacity is in bytes (rounded up to a power of two, at most 128 MiB) and
// optionally in items; an item whose encoding exceeds `max_message` gets
// MessageTooLarge before anything is written (from every form). Every process
// must open a queue with the same T and options (TypeMismatch otherwise). A
// payload that does not decode as T is dropped with DecodeError (from every
// form), and the queue goes on.
//
// Timed and non-blocking calls keep their bound whatever other processes do.
// Producers take an internal lock for each put, consumers another for each
// get (a consumer waiting for an item, a producer waiting for room, holds
// it). Timed calls wait for it until their deadline; non-blocking ones up to
// 2 ms (its holder is nearly always mid-put). Only while there is room
// (items) and the holder is running — merely preempted — do they wait up to
// 50 ms longer. A holder that is stopped (SIGSTOP, Ctrl-Z, a debugger) makes
// them fail (Full / Empty, naming its pid; false / nullopt) on time, although
// the queue has room (items): as Python's get(block=False) raises Empty when
// it cannot take the reader lock at once. Untimed calls wait for it; a holder
// that dies is taken over.
//
// JoinableQueue adds task_done()/join() (join(), join(timeout) -> bool,
// join_until(t) -> bool): join() returns when every item put has been marked
// done. Tasks are leased to the consumer PROCESS that got them (pid + start
// time; at most 64 consumer processes at once, beyond that a task is not
// leased and is waited for like Python's). A task counts as ABANDONED when
// the process that got it has ended — killed, crashed, or exited normally —
// without a task_done() for it, as soon as a liveness pass notices: every
// ~25 ms while a consumer waits in get() on the queue or a process waits in
// join(), and whenever a get() needs a lease while all 64 are taken. An
// abandoned task counts as done (join() does not hang on a dead consumer)
// and is counted by abandoned_tasks(). A later task_done() from any process
// that has no unfinished task of its own settles an abandoned task first:
// abandoned_tasks() goes down by one, unfinished_tasks() stays. So a consumer
// may hand its task to another process and exit, but join() may then return
// once the exit is noticed, before that task_done(). task_done() throws
// InvalidArgument only when every item put is already done, and no abandoned
// task is left to settle. Killed at any instant inside get() or task_done(),
// a consumer never leaves a task counted twice or never.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>
#include <vector>

#include "ipckit/detail/async_fwd.hpp"
#include "ipckit/detail/blocking_forms.hpp"
#include "ipckit/detail/codec.hpp"
#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/queue_core.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/error.hpp"
#include "ipckit/loan.hpp"
#include "ipckit/segment.hpp"

namespace ipckit {

namespace detail {

// The records of `items` for one put_many; valid until this thread's next
// encode_many.
template <class T>
void encode_many(std::span<const T> items, std::vector<QueueCore::Record>& out) {
  out.clear();
  if constexpr (kBitwiseItem<T>) {
    check_item_type<T>();
    for (const T& item : items) out.push_back({{reinterpret_cast<const char*>(&item), sizeof(T)}, {}});
  } else if constexpr (kContiguousItem<T>) {
    thread_local std::vector<std::uint64_t> counts;
    counts.assign(items.size(), 0);
    for (std::size_t i = 0; i < items.size(); ++i) {
      counts[i] = items[i].size();
      out.push_back({{reinterpret_cast<const char*>(&counts[i]), sizeof(std::uint64_t)},
                     {reinterpret_cast<const char*>(items[i].data()),
                      items[i].size() * sizeof(typename ContiguousItem<T>::Element)}});
    }
  } else {
    // One buffer for all: it may move while growing, so views come last.
    thread_local std::string all;
    thread_local std::vector<std::size_t> ends;
    all.clear();
    ends.clear();
    for (const T& item : items) {
      all.append(encode(item));
      ends.push_back(all.size());
    }
    std::size_t begin = 0;
    for (const std::size_t end : ends) {
      out.push_back({std::string_view(all).substr(begin, end - begin), {}});
      begin = end;
    }
  }
}

}  // namespace detail

namespace detail {

// What every queue handle offers whatever its engine (QueueCore, PriorityQueueCore).
template <class Core>
class QueueHandle {
 public:
  [[nodiscard]] std::size_t qsize() const noexcept { return core_.qsize(); }
  [[nodiscard]] bool empty() const noexcept { return core_.qsize() == 0; }
  [[nodiscard]] bool full() const noexcept { return core_.full(); }
  // Producers then get Closed; consumers drain what is left, then get Closed.
  void close() noexcept { core_.close(); }
  // Python 3.13's Queue.shutdown: close(), and unless `immediate` is false
  // the queued items are discarded so that everyone gets Closed at once.
  void shutdown(bool immediate = true) { core_.shutdown(immediate); }
  [[nodiscard]] bool closed() const noexcept { return core_.closed(); }
  [[nodiscard]] const std::string& label() const noexcept { return core_.label().text; }
  // Readiness without taking: waits until an item is queued or the queue is
  // closed (true), or the time is up (false). Any number of consumers may
  // wait so and then take with try_get(): none sleeps holding the queue.
  bool wait_readable() { return core_.await_items(detail::Deadline::never()); }
  IPCKIT_DETAIL_TIMED_FORMS(bool, wait_readable, wait_readable_until, wait_readable_by);
  bool wait_readable_by(detail::Deadline deadline) { return core_.await_items(deadline); }
  // A read-only snapshot (ipckit/stats.hpp).
  [[nodiscard]] auto stats() const { return core_.stats(); }
  // Descriptors for event loops (ipckit/wait_handle.hpp): readable once an
  // item may be queued or the queue closed (wait_handle), once there may be
  // room or the queue closed (put_wait_handle).
  [[nodiscard]] WaitHandle wait_handle() const { return core_.items_handle(); }
  [[nodiscard]] WaitHandle put_wait_handle() const { return core_.room_handle(); }

 protected:
  explicit QueueHandle(Core core) : core_(std::move(core)) {}
  Core core_;
};

// The four forms of put(item) and get(), from a handle's
//   QueueOutcome put_outcome(const Item&, Deadline);  [[noreturn]] raise_put(outcome, count)
//   QueueOutcome get_outcome(Out&, Deadline);         [[noreturn]] raise_get(outcome)
template <class Derived, class Item>
class PutForms {
 public:
  // Blocks while the queue is full. Throws MessageTooLarge, Closed.
  void put(const Item& item) { put_by(item, Deadline::never()); }
  // Throws Full if no room came within `timeout` (or another producer held
  // the queue's lock that long: see queue.hpp).
  template <class Rep, class Period>
  void put(const Item& item, const std::chrono::duration<Rep, Period>& timeout) {
    put_by(item, Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  void put_until(const Item& item, const std::chrono::time_point<Clock, Duration>& t) {
    put_by(item, Deadline::at(t));
  }
  // Throws Full at once if there is no room.
  void put_nowait(const Item& item) { put_by(item, Deadline::now()); }
  // False where put_nowait() throws Full or Closed. Throws MessageTooLarge.
  [[nodiscard]] bool try_put(const Item& item) { return self().put_outcome(item, Deadline::now()).ok(); }
  // async_put(item, [timeout,] [CancelSignal,] token): ipckit/asio.hpp.
  template <class... A>
  auto async_put(A&&... a) {
    return AsyncOpsFor<Derived, A...>::template put<Item>(self(), std::forward<A>(a)...);
  }

 private:
  void put_by(const Item& item, Deadline deadline) {
    const QueueOutcome r = self().put_outcome(item, deadline);
    if (!r.ok()) [[unlikely]]
      self().raise_put(r, 1);
  }
  Derived& self() { return static_cast<Derived&>(*this); }
};

template <class Derived, class Out>
class GetForms {
 public:
  // Blocks while the queue is empty. Throws Closed once closed and drained, DecodeError.
  Out get() { return get_by(Deadline::never()); }
  // get(d), get_until(t): throw Empty if nothing came within `d` / by `t`
  // (or another consumer held the queue's lock that long: see queue.hpp).
  IPCKIT_DETAIL_TIMED_FORMS(Out, get, get_until, get_by);
  // Throws Empty at once if there is nothing.
  Out get_nowait() { return get_by(Deadline::now()); }
  // nullopt where get_nowait() throws Empty or Closed. Throws DecodeError.
  std::optional<Out> try_get() {
    std::optional<Out> out(std::in_place);
    if (!self().get_outcome(*out, Deadline::now()).ok()) out.reset();
    return out;
  }
  // async_get([timeout,] [CancelSignal,] token): ipckit/asio.hpp.
  template <class... A>
  auto async_get(A&&... a) {
    return AsyncOpsFor<Derived, A...>::get(self(), std::forward<A>(a)...);
  }

 private:
  Out get_by(Deadline deadline) {
    Out out{};
    const QueueOutcome r = self().get_outcome(out, deadline);
    if (!r.ok()) [[unlikely]]
      self().raise_get(r);
    return out;
  }
  Derived& self() { return static_cast<Derived&>(*this); }
};

// The four forms of put_many(items) and get_many(max), from a handle's
//   QueueOutcome put_many_outcome(std::span<const Item>, Deadline);
//   QueueOutcome get_many_outcome(std::vector<Out>&, std::size_t max, Deadline);
template <class Derived, class Item, class Out>
class BatchForms {
 public:
  // Puts every item, in order, taking the producers' lock and publishing once
  // per batch of up to 64 (far cheaper per item than put() for small items).
  // Blocks while full; a producer killed inside leaves a prefix of the items
  // put. Throws MessageTooLarge (nothing of that batch put), Closed.
  void put_many(std::span<const Item> items) { put_many_by(items, Deadline::never()); }
  // Throws Full if room for all did not come within `timeout` (the message
  // says how many were put).
  template <class Rep, class Period>
  void put_many(std::span<const Item> items, const std::chrono::duration<Rep, Period>& timeout) {
    put_many_by(items, Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  void put_many_until(std::span<const Item> items, const std::chrono::time_point<Clock, Duration>& t) {
    put_many_by(items, Deadline::at(t));
  }
  void put_many_nowait(std::span<const Item> items) { put_many_by(items, Deadline::now()); }
  // How many of `items` (a prefix) went in without waiting; never throws Full or Closed.
  [[nodiscard]] std::size_t try_put_many(std::span<const Item> items) {
    return self().put_many_outcome(items, Deadline::now()).done;
  }

  // Up to `max` items: waits (like get()) for the first, then takes what is
  // already queued, under one hold of the consumers' lock. Throws Closed once
  // closed and drained, DecodeError if the first item does not decode (an
  // item after the first that does not decode is left for the next get).
  std::vector<Out> get_many(std::size_t max) { return get_many_by(max, Deadline::never()); }
  // Throws Empty if nothing came within `timeout`.
  template <class Rep, class Period>
  std::vector<Out> get_many(std::size_t max, const std::chrono::duration<Rep, Period>& timeout) {
    return get_many_by(max, Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  std::vector<Out> get_many_until(std::size_t max, const std::chrono::time_point<Clock, Duration>& t) {
    return get_many_by(max, Deadline::at(t));
  }
  std::vector<Out> get_many_nowait(std::size_t max) { return get_many_by(max, Deadline::now()); }
  // What is queued (up to `max`; empty where get_many_nowait throws Empty or Closed).
  std::vector<Out> try_get_many(std::size_t max) {
    std::vector<Out> out;
    (void)self().get_many_outcome(out, max, Deadline::now());
    return out;
  }

 private:
  void put_many_by(std::span<const Item> items, Deadline deadline) {
    const QueueOutcome r = self().put_many_outcome(items, deadline);
    if (!r.ok()) [[unlikely]]
      self().raise_put(r, items.size());
  }
  std::vector<Out> get_many_by(std::size_t max, Deadline deadline) {
    std::vector<Out> out;
    const QueueOutcome r = self().get_many_outcome(out, max, deadline);
    if (!r.ok()) [[unlikely]]
      self().raise_get(r);
    return out;
  }
  Derived& self() { return static_cast<Derived&>(*this); }
};

// task_done()/join() on a queue whose engine keeps a task ledger.
template <class Base>
class Joinable : public Base {
 public:
  using Base::Base;
  // Marks one task done: one this process got if it has any, else an
  // abandoned one (settled), else another process's. Throws InvalidArgument
  // when there are no unfinished and no abandoned tasks (Python's ValueError).
  void task_done() { detail::tasks_done(this->core_.ledger(), this->core_.published(), this->core_.label()); }
  // Blocks until every item put has been marked done.
  void join() { (void)this->core_.join(Deadline::never()); }
  // Whether all were done within `timeout`.
  template <class Rep, class Period>
  bool join(const std::chrono::duration<Rep, Period>& timeout) {
    return this->core_.join(Deadline::after(timeout));
  }
  template <class Clock, class Duration>
  bool join_until(const std::chrono::time_point<Clock, Duration>& t) {
    return this->core_.join(Deadline::at(t));
  }
  [[nodiscard]] std::uint64_t unfinished_tasks() const noexcept {
    return detail::ledger_unfinished(this->core_.ledger(), this->core_.published());
  }
  // Tasks of consumers that ended before task_done(), counted as done and
  // not yet settled by a later task_done().
  [[nodiscard]] std::uint64_t abandoned_tasks() const noexcept {
    return this->core_.ledger().abandoned.load(std::memory_order_acquire);
  }
};

// A ring queue's get into `out` (one item) or onto `out` (up to max), each
// decoded by Decode.
template <class Out, void (*Decode)(Out&, const char*, std::size_t)>
QueueOutcome get_one(QueueCore& core, Out& out, Deadline deadline) {
  return core.get_many(
      [](void* ctx, std::size_t, const char* p, std::size_t n) { Decode(*static_cast<Out*>(ctx), p, n); }, &out, 1,
      deadline);
}
template <class Out, void (*Decode)(Out&, const char*, std::size_t)>
QueueOutcome get_appending(QueueCore& core, std::vector<Out>& out, std::size_t max, Deadline deadline) {
  out.reserve(std::min<std::size_t>(max, 1024));
  return core.get_many(
      [](void* ctx, std::size_t, const char* p, std::size_t n) {
        auto& v = *static_cast<std::vector<Out>*>(ctx);
        v.emplace_back();
        try {
          Decode(v.back(), p, n);
        } catch (...) {
          v.pop_back();
          throw;
        }
      },
      &out, max, deadline);
}
// Puts `items` in batches of up to 64 records, `encode(batch, records)` making each.
template <class Item, class Encode>
QueueOutcome put_batches(QueueCore& core, std::span<const Item> items, Deadline deadline, Encode&& encode) {
  thread_local std::vector<QueueCore::Record> records;
  constexpr std::size_t kBatch = 64;
  QueueOutcome total;
  for (std::size_t i = 0; i < items.size() && total.ok(); i += kBatch) {
    encode(items.subspan(i, std::min(kBatch, items.size() - i)), records);
    const QueueOutcome r = core.put_many(records.data(), records.size(), deadline);
    total.done += r.done;
    total.miss = r.miss;
  }
  return total;
}

inline void assign_bytes(std::string& out, const char* p, std::size_t n) { out.assign(p, n); }

}  // namespace detail

template <class T>
class Queue : public detail::QueueHandle<detail::QueueCore>,
              public detail::PutForms<Queue<T>, T>,
              public detail::GetForms<Queue<T>, T>,
              public detail::BatchForms<Queue<T>, T, T>,
              public detail::LoanForms<Queue<T>, Loan<T>>,  // zero-copy (loan.hpp): trivially copyable T only
              public detail::ViewForms<Queue<T>, View<T>> {
 public:
  [[nodiscard]] std::size_t bytes_used() const noexcept { return core_.bytes_used(); }

 private:
  // Made by Segment::queue() and joinable_queue() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  explicit Queue(detail::QueueCore core) : detail::QueueHandle<detail::QueueCore>(std::move(core)) {}
  friend detail::PutForms<Queue, T>;
  friend detail::GetForms<Queue, T>;
  friend detail::BatchForms<Queue, T, T>;
  friend detail::LoanForms<Queue, Loan<T>>;
  friend detail::ViewForms<Queue, View<T>>;
  detail::QueueOutcome put_outcome(const T& item, detail::Deadline deadline) {
    const auto [first, second] = detail::encode_pieces(item);
    return core_.put(first, second, deadline);
  }
  detail::QueueOutcome get_outcome(T& out, detail::Deadline deadline) {
    return detail::get_one<T, &detail::decode_into<T>>(core_, out, deadline);
  }
  detail::QueueOutcome put_many_outcome(std::span<const T> items, detail::Deadline deadline) {
    return detail::put_batches(core_, items, deadline, &detail::encode_many<T>);
  }
  detail::QueueOutcome get_many_outcome(std::vector<T>& out, std::size_t max, detail::Deadline deadline) {
    return detail::get_appending<T, &detail::decode_into<T>>(core_, out, max, deadline);
  }
  [[noreturn]] void raise_put(const detail::QueueOutcome& r, std::size_t count) const { core_.raise_put(r, count); }
  [[noreturn]] void raise_get(const detail::QueueOutcome& r) const { core_.raise_get(r); }
};

template <class T>
class JoinableQueue : public detail::Joinable<Queue<T>> {
 public:
  using detail::Joinable<Queue<T>>::Joinable;
};

// Raw byte messages for callers that do their own encoding: the forms of
// Queue with std::string_view in and std::string out.
class ByteQueue : public detail::QueueHandle<detail::QueueCore>,
                  public detail::PutForms<ByteQueue, std::string_view>,
                  public detail::GetForms<ByteQueue, std::string>,
                  public detail::BatchForms<ByteQueue, std::string_view, std::string>,
                  public detail::LoanForms<ByteQueue, ByteLoan>,  // zero-copy (loan.hpp)
                  public detail::ViewForms<ByteQueue, ByteView> {
 public:
  [[nodiscard]] std::size_t bytes_used() const noexcept { return core_.bytes_used(); }

 private:
  // Made by Segment::byte_queue() (through detail::SegmentAccess).
  friend class detail::SegmentAccess;
  explicit ByteQueue(detail::QueueCore core) : detail::QueueHandle<detail::QueueCore>(std::move(core)) {}
  friend detail::PutForms<ByteQueue, std::string_view>;
  friend detail::GetForms<ByteQueue, std::string>;
  friend detail::BatchForms<ByteQueue, std::string_view, std::string>;
  friend detail::LoanForms<ByteQueue, ByteLoan>;
  friend detail::ViewForms<ByteQueue, ByteView>;
  detail::QueueOutcome put_outcome(std::string_view bytes, detail::Deadline deadline) {
    return core_.put(bytes, {}, deadline);
  }
  detail::QueueOutcome get_outcome(std::string& out, detail::Deadline deadline) {
    return detail::get_one<std::string, &detail::assign_bytes>(core_, out, deadline);
  }
  detail::QueueOutcome put_many_outcome(std::span<const std::string_view> items, detail::Deadline deadline) {
    using Records = std::vector<detail::QueueCore::Record>;
    return detail::put_batches(core_, items, deadline, [](std::span<const std::string_view> batch, Records& out) {
      out.clear();
      for (const std::string_view b : batch) out.push_back({b, {}});
    });
  }
  detail::QueueOutcome get_many_outcome(std::vector<std::string>& out, std::size_t max, detail::Deadline deadline) {
    return detail::get_appending<std::string, &detail::assign_bytes>(core_, out, max, deadline);
  }
  [[noreturn]] void raise_put(const detail::QueueOutcome& r, std::size_t count) const { core_.raise_put(r, count); }
  [[noreturn]] void raise_get(const detail::QueueOutcome& r) const { core_.raise_get(r); }
};

template <class T>
Queue<T> Segment::queue(std::string_view name, const QueueOptions& options) {
  return detail::SegmentAccess::make<Queue<T>>(open_queue(name, ObjectKind::Queue, typeid(T).name(), options));
}

template <class T>
JoinableQueue<T> Segment::joinable_queue(std::string_view name, const QueueOptions& options) {
  return detail::SegmentAccess::make<JoinableQueue<T>>(
      open_queue(name, ObjectKind::JoinableQueue, typeid(T).name(), options));
}

inline ByteQueue Segment::byte_queue(std::string_view name, const QueueOptions& options) {
  return detail::SegmentAccess::make<ByteQueue>(open_queue(name, ObjectKind::Queue, "ipckit::bytes", options));
}

}  // namespace ipckit
