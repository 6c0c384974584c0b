// ipckit/detail/queue_core.hpp — the byte ring under every typed queue.
//
// Records [u32 length][u32 0][payload, padded to 8] in a power-of-two ring.
// Producers serialise on `put_lock`, consumers on `get_lock` (both crash-safe
// Locks), so each side is a single writer of its own position. A position
// word packs the byte position (low 40 bits) and the count of records that
// passed it (high 24 bits), so ONE release store publishes a record (tail)
// or frees it (head): a producer killed before that store leaves nothing
// visible, a consumer killed before it leaves the record queued. A record
// that would straddle the ring's end is preceded by a skip marker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ipckit/detail/futex.hpp"
#include "ipckit/detail/lock_state.hpp"
#include "ipckit/detail/task_ledger.hpp"
#include "ipckit/stats.hpp"

namespace ipckit {

struct QueueOptions {
  std::size_t capacity_bytes = std::size_t{1} << 20;  // rounded up to a power of two; at most 128 MiB
  std::size_t max_items = 0;     // 0: limited by bytes only
  std::size_t max_message = 0;   // largest encoded item; 0: capacity_bytes / 4
};

}  // namespace ipckit

namespace ipckit::detail {

inline constexpr std::uint32_t kQueueLayout = 2;
inline constexpr std::uint64_t kPosBits = 40;
inline constexpr std::uint64_t kPosMask = (std::uint64_t{1} << kPosBits) - 1;
inline constexpr std::uint64_t kCountMask = (std::uint64_t{1} << 24) - 1;
inline constexpr std::uint32_t kSkipMarker = 0xffff'ffffu;
inline constexpr std::size_t kRecordHeader = 8;
inline constexpr std::uint64_t kMaxQueueCapacity = std::uint64_t{1} << 27;  // 128 MiB: counts fit 24 bits

struct alignas(64) QueueState {
  // Fixed at creation; every handle works from its own copy (QueueGeometry).
  std::uint64_t capacity = 0;        // ring bytes, a power of two
  std::uint64_t max_message = 0;     // largest payload accepted
  std::uint64_t max_items = 0;       // 0: bounded by bytes only
  std::uint32_t joinable = 0;
  std::atomic<std::uint32_t> closed{0};

  alignas(64) LockState put_lock;
  alignas(64) std::atomic<std::uint64_t> tail{0};   // published: count<<40 | pos
  std::uint64_t head_cache = 0;                    // producers' last look at head (under put_lock)
  alignas(64) std::atomic<std::uint32_t> data_seq{0};      // futex: consumers sleep here
  std::atomic<std::uint32_t> data_sleepers{0};

  alignas(64) LockState get_lock;
  alignas(64) std::atomic<std::uint64_t> head{0};   // freed: count<<40 | pos
  std::uint64_t tail_cache = 0;                    // consumers' last look at tail (under get_lock)
  alignas(64) std::atomic<std::uint32_t> space_seq{0};     // futex: producers sleep here
  std::atomic<std::uint32_t> space_sleepers{0};

  // JoinableQueue: unfinished tasks = tail's count - tasks.finished.
  alignas(64) TaskLedger tasks;
  // ring bytes follow, 64-aligned
};
static_assert(sizeof(QueueState) % 64 == 0);

// A queue's fixed geometry, as its opener validated it.
struct QueueGeometry {
  std::uint64_t capacity = 0;     // ring bytes: a power of two, 64 .. kMaxQueueCapacity
  std::uint64_t max_message = 0;  // at most capacity / 2 - kRecordHeader
  std::uint64_t max_items = 0;
  bool joinable = false;
};

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
  // Takes the geometry the opener validated (so no later write to the
  // segment can slip in between that check and the copy); CorruptSegment if
  // it is not one a queue can have.
  QueueCore(QueueState* s, std::shared_ptr<const void> keepalive, std::string label, const QueueGeometry& geometry);

  // One record's bytes, in two pieces (the second may be empty).
  struct Record {
    std::string_view first, second;
    [[nodiscard]] std::size_t size() const noexcept { return first.size() + second.size(); }
  };
  // Decodes record number `index` of a get_many; may throw (DecodeError follows).
  using ReadFn = void (*)(void* ctx, std::size_t index, const char* data, std::size_t n);

  // Copies the records in, in order, under one hold of the producers' lock,
  // making them visible with one store (more when it must wait for room in
  // between). Throws MessageTooLarge (before anything is written), Closed, or
  // Full when `deadline` passes first (the records before stay put).
  void put_many(const Record* records, std::size_t count, Deadline deadline);
  void put(std::string_view first, std::string_view second, Deadline deadline) {
    const Record one{first, second};
    put_many(&one, 1, deadline);
  }
  // Hands up to `max` queued records to `read` (called with the consumers'
  // lock held) and frees them; waits only for the first. Returns how many.
  // Throws Empty when `deadline` passes first, Closed when the queue is closed
  // and drained; DecodeError when the first record does not decode (it is
  // dropped; a later one that does not decode ends the batch and stays).
  std::size_t get_many(ReadFn read, void* ctx, std::size_t max, Deadline deadline);

  [[nodiscard]] std::size_t qsize() const noexcept;
  [[nodiscard]] std::size_t bytes_used() const noexcept;
  [[nodiscard]] bool full() const noexcept;
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept { return s_->closed.load(std::memory_order_acquire) != 0; }
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return geo_.capacity; }
  [[nodiscard]] std::size_t max_message() const noexcept { return geo_.max_message; }
  [[nodiscard]] const std::string& label() const noexcept { return label_; }
  [[nodiscard]] QueueStats stats() const;

  // JoinableQueue.
  void task_done();
  void join();
  bool join(std::chrono::nanoseconds timeout);
  [[nodiscard]] std::uint64_t unfinished_tasks() const noexcept;
  [[nodiscard]] std::uint64_t abandoned_tasks() const noexcept {
    return s_->tasks.abandoned.load(std::memory_order_acquire);
  }

 private:
  char* ring() const noexcept { return reinterpret_cast<char*>(s_) + sizeof(QueueState); }
  // With get_lock held: counts dead consumers' tasks finished, wakes join().
  void reclaim_dead_consumers() noexcept;
  [[noreturn]] void throw_corrupt(const std::string& what) const;
  QueueState* s_;
  std::shared_ptr<const void> keep_;
  std::string label_;
  QueueGeometry geo_;  // never re-read from s_
};

}  // namespace ipckit::detail
