// ipckit/detail/queue_core.hpp — the byte ring under every FIFO queue, and
// what the FIFO and the priority engines share.
//
// The ring (queue_state.hpp) is written by producers serialised on
// `put.lock` and read by consumers serialised on `get.lock` (both crash-safe
// Locks), so each side is a single writer of its own position. A producer
// killed before its publishing store leaves nothing visible, a consumer
// killed before its freeing store leaves the record queued.
//
// Every engine call reports "not now" (no room, no item, closed) by value,
// as a QueueOutcome: the non-blocking forms (try_put, try_get) return it as
// false / nullopt, and the others hand it to raise_put / raise_get, which
// build Full, Empty or Closed. Only real errors are thrown from inside:
// MessageTooLarge, DecodeError, CorruptSegment, DeadlockDetected.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "ipckit/detail/deadline.hpp"
#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/label.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/detail/queue_state.hpp"
#include "ipckit/detail/task_ledger.hpp"
#include "ipckit/queue_options.hpp"
#include "ipckit/stats.hpp"
#include "ipckit/wait_handle.hpp"

namespace ipckit::detail {

class SegmentAccess;
class SideLock;

// Why a put or get did not happen.
enum class QueueMiss : std::uint8_t {
  None,                // it happened
  Waited,              // no room (no item) came by the deadline
  Waiter,              // another producer (consumer) held the queue's lock, itself waiting on the queue
  Holder,              // another thread held the queue's lock past the deadline (stopped, asleep, slow)
  Closed,              // closed (a get: closed and drained)
  ClosedWhileWaiting,  // a put: closed while it waited for room
};

// What a put or get did: how many records it put (got), and why not more.
struct QueueOutcome {
  std::size_t done = 0;
  QueueMiss miss = QueueMiss::None;
  [[nodiscard]] bool ok() const noexcept { return miss == QueueMiss::None; }
};

// A queue's fixed geometry, as its opener validated it.
struct QueueGeometry {
  std::uint64_t capacity = 0;     // ring bytes: a power of two, 64 .. kMaxQueueCapacity
  std::uint64_t max_message = 0;  // at most capacity / 2 - kRecordHeader
  std::uint64_t max_items = 0;
  bool joinable = false;
};

// Sets `bits` of a queue's closed word and wakes every producer and consumer
// (and the lock waiters behind them) to look again. Any queue state with the
// closed word and both futex words will do.
template <class State>
void close_queue(State& s, std::uint32_t bits) noexcept {
  s.closed.fetch_or(bits, std::memory_order_seq_cst);
  for (auto* side : {&s.data, &s.space}) {
    side->seq.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(side->seq, INT_MAX);
    if ((side->sleepers.load(std::memory_order_seq_cst) & kSleeperAsync) != 0)
      ring_doorbells(side->seq, side->sleepers);
  }
}

// Shared by both engines' error paths (src/queue.cpp).
//
// MessageTooLarge for an item of `bytes` bytes; `more` goes on the message
// (" (nothing of this put_many was put)"), `larger` names what to make larger.
[[noreturn]] void raise_too_large(const Label& who, std::size_t bytes, std::uint64_t max_message, const char* larger,
                                  const std::string& more = "");
// DecodeError for an item of `bytes` bytes whose decoding threw `failure`.
[[noreturn]] void raise_decode_error(const Label& who, std::size_t bytes, const std::exception_ptr& failure);
// The side of a queue a put or get that missed was on, for its error.
struct QueueSide {
  bool put;               // Full for a put, Empty for a get (Closed for either)
  const LockState& lock;  // the lock a QueueMiss::Holder names ...
  const char* lock_name;  // ... as "the producers' lock"
};
// Full / Empty or Closed for a put or get that missed. `full` describes a
// full queue (" (3 items, 120 bytes)"); `so_far` ends every message (what a
// put_many did put).
[[noreturn]] void raise_missed(const Label& who, const QueueSide& side, QueueMiss miss, const std::string& full,
                               const std::string& so_far = "");

// InvalidArgument unless options.capacity_bytes is one both engines accept.
void check_capacity(const Label& who, const QueueOptions& options);

// A joinable queue's side, shared by both engines: `published` is the
// engine's count of items ever put. task_done() throws InvalidArgument when
// no task is left to mark done.
void tasks_done(TaskLedger& l, std::uint64_t published, const Label& who);
// Waits until no task is unfinished; `reclaim` runs every kLivenessInterval
// meanwhile (it takes the consumers' lock if free and counts dead
// consumers' tasks finished).
template <class Published, class Reclaim>
bool tasks_join(TaskLedger& l, Deadline deadline, Published&& published, Reclaim&& reclaim) {
  return wait_for_change(
      l.join_seq, l.join_sleepers, [&] { return ledger_unfinished(l, published()) == 0; }, deadline, kLivenessInterval,
      reclaim, WaitOp::Join);
}

// The non-template engine; typed queues encode/decode around it.
//
// Everything in QueueState is shared memory that any process mapping the
// segment can overwrite. The geometry is therefore copied into the handle
// once, at open, and never read from the segment again; the shared values
// that must be read per operation (positions, record lengths, skip markers,
// counts) are range-checked before they index anything, and a value out of
// range is CorruptSegment: never an access outside the queue's ring.
class QueueCore {
 public:
  // One record's bytes, in two pieces (the second may be empty).
  struct Record {
    std::string_view first, second;
    [[nodiscard]] std::size_t size() const noexcept { return first.size() + second.size(); }
  };
  // Decodes record number `index` of a get_many; may throw (DecodeError follows).
  using ReadFn = void (*)(void* ctx, std::size_t index, const char* data, std::size_t n);

  // Copies the records in, in order, under one hold of the producers' lock,
  // making them visible with one store (more when it must wait for room in
  // between). Reports Full / Closed by value when `deadline` passes first or
  // the queue is closed (the records before stay put). Throws
  // MessageTooLarge (before anything is written).
  QueueOutcome put_many(const Record* records, std::size_t count, Deadline deadline);
  QueueOutcome put(std::string_view first, std::string_view second, Deadline deadline) {
    const Record one{first, second};
    return put_many(&one, 1, deadline);
  }
  // Hands up to `max` queued records to `read` (called with the consumers'
  // lock held) and frees them; waits only for the first. Reports Empty /
  // Closed (closed and drained) by value. Throws DecodeError when the first
  // record does not decode (it is dropped; a later one that does not decode
  // ends the batch and stays).
  QueueOutcome get_many(ReadFn read, void* ctx, std::size_t max, Deadline deadline);
  // Zero-copy (ipckit/loan.hpp). lend() reserves room for a record of
  // `bytes` bytes and keeps the producers' lock held: `at` is where its
  // payload goes. publish_lent() makes its first `used` (<= bytes) visible
  // with one store and lets go; drop_lent() lets go, leaving nothing
  // visible (as a producer killed holding it does). Throws MessageTooLarge.
  struct Lent {
    char* at = nullptr;
    std::size_t size = 0;
    std::uint64_t tpos = 0, tcount = 0;  // where its header lies, and the tail's count before it
  };
  QueueOutcome lend(std::size_t bytes, Deadline deadline, Lent& out);
  void publish_lent(const Lent& lent, std::size_t used) noexcept;
  void drop_lent() noexcept;
  // view_first() waits for the first record, like get_many, and keeps the
  // consumers' lock held: `at` is its payload in the ring. With `exact` not
  // 0, a record of another size is dropped with DecodeError (a typed view). release_viewed()
  // frees it and lets go; keep_viewed() lets go, leaving it queued (as a
  // consumer killed holding it does).
  struct Viewed {
    const char* at = nullptr;
    std::size_t size = 0;
  };
  QueueOutcome view_first(Deadline deadline, Viewed& out, std::size_t exact);
  void release_viewed();
  void keep_viewed() noexcept;
  // Whether this thread holds the producers' (consumers') lock: a loan (view) is its own.
  [[nodiscard]] bool holds_put_side() const noexcept;
  [[nodiscard]] bool holds_get_side() const noexcept;

  // Full or Closed for a put_many of `count` records that missed.
  [[noreturn]] void raise_put(const QueueOutcome& outcome, std::size_t count) const;
  // Empty or Closed for a get that missed.
  [[noreturn]] void raise_get(const QueueOutcome& outcome) const;

  // Waits, without taking the consumers' side, until a record is queued or
  // the queue is closed; false if neither by the deadline. For consumers
  // that then take with a try_ form (a pool's workers): none of them sleeps
  // holding the side, so a record reaches whichever looks first instead of
  // being handed from sleeper to sleeper through the side lock's futex.
  bool await_items(Deadline deadline);
  // Wait handles (ipckit/wait_handle.hpp): items or closed; room or closed.
  [[nodiscard]] WaitHandle items_handle() const;
  [[nodiscard]] WaitHandle room_handle() const;
  [[nodiscard]] std::size_t qsize() const noexcept;
  [[nodiscard]] std::size_t bytes_used() const noexcept;
  [[nodiscard]] bool full() const noexcept;
  // Producers get Closed; consumers drain, then get Closed.
  void close() noexcept { close_queue(*s_, kQueueClosed); }
  // close(), and with `immediate` the items queued are discarded (a joinable
  // queue's tasks for them marked done) so consumers get Closed at once.
  void shutdown(bool immediate);
  [[nodiscard]] bool closed() const noexcept { return s_->closed.load(std::memory_order_acquire) != 0; }
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return geo_.capacity; }
  [[nodiscard]] std::size_t max_message() const noexcept { return geo_.max_message; }
  [[nodiscard]] const Label& label() const noexcept { return label_; }
  [[nodiscard]] QueueStats stats() const;

  // JoinableQueue: its task ledger, the count of items ever put (see
  // Joinable in queue.hpp), and join(), which reclaims dead consumers' tasks.
  [[nodiscard]] TaskLedger& ledger() const noexcept { return s_->tasks; }
  [[nodiscard]] std::uint64_t published() const noexcept;
  bool join(Deadline deadline);

 private:
  // Made by Segment::open_queue and inspection (through SegmentAccess). Takes
  // the geometry the opener validated (so no later write to the segment can
  // slip in between that check and the copy); CorruptSegment if it is not
  // one a queue can have.
  friend class SegmentAccess;
  QueueCore(QueueState* s, std::shared_ptr<const void> keepalive, Label label, const QueueGeometry& geometry);
  char* ring() const noexcept { return reinterpret_cast<char*>(s_) + sizeof(QueueState); }

  // Whether a side lock's waiter should keep waiting for its holder: there is
  // room for a record of `bytes` (RoomFor) / items are queued (ItemsFor).
  struct RoomFor {
    const QueueCore* q;
    std::size_t bytes;
    bool operator()() const noexcept;
  };
  struct ItemsFor {
    const QueueCore* q;
    bool operator()() const noexcept;
  };
  // A producer's view of the tail while it holds the producers' lock.
  struct PutCursor {
    std::uint64_t tpos, tcount;
    std::uint64_t published;  // tpos as last stored
  };
  [[nodiscard]] PutCursor put_cursor() const;
  // Room for a record of `n` bytes at the cursor, waiting until `deadline`
  // (publishing what the cursor wrote first): where its header goes, or null
  // with `miss` set. Writes a skip marker when the record must wrap.
  char* make_room(PutCursor& c, std::size_t n, Deadline deadline, QueueMiss& miss);
  char* make_room_slowly(PutCursor& c, std::size_t n, Deadline deadline, QueueMiss& miss);
  // Writes the header of the record of `n` bytes at `at`; moves the cursor past it.
  static void append(PutCursor& c, char* at, std::size_t n) noexcept;
  // The publishing store, if the cursor wrote anything since the last one.
  bool publish(PutCursor& c) noexcept;

  // With the consumers' lock held: waits for a record (Waited / Closed if none came).
  QueueMiss await_data(const SideLock& lock, Deadline deadline);
  QueueMiss await_data_slowly(const SideLock& lock, Deadline deadline);
  // The head, CorruptSegment unless 8-aligned.
  [[nodiscard]] std::uint64_t checked_head() const;
  // The record at `hpos`, checked against the ring and the last tail seen.
  struct Located {
    std::uint64_t pos, off;  // its header's position (past any skip marker) and ring offset
    std::uint32_t len;
    std::uint64_t rec, queued;
    bool ok;
  };
  [[nodiscard]] Located locate(std::uint64_t hpos) const noexcept;
  [[noreturn]] void throw_bad_record(const Located& at) const;
  void task_done() { tasks_done(s_->tasks, published(), label_); }
  // With get.lock held: takes up to `max` records (`read` null: discards
  // them); a record that fails to decode is stored in `failure` (len in
  // `failed_len`) when it is the first.
  std::size_t take_locked(ReadFn read, void* ctx, std::size_t max, std::exception_ptr& failure,
                          std::uint32_t& failed_len);
  // With get.lock held: discards every record (marking a joinable queue's
  // tasks for them done) and sets the discard bit.
  void discard_locked();
  // With get.lock just taken over from a dead holder: settles its get, and
  // finishes its discard if it was shutting the queue down.
  void recover_locked();
  // With get.lock held: counts dead consumers' tasks finished, wakes join().
  void reclaim_dead_consumers() noexcept;
  [[noreturn]] void throw_corrupt(const std::string& what) const { raise_corrupt(label_, what); }
  QueueState* s_;
  std::shared_ptr<const void> keep_;
  Label label_;
  QueueGeometry geo_;  // never re-read from s_
};

}  // namespace ipckit::detail
