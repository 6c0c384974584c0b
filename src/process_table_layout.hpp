// The process table's bytes in a segment (internal): one slot per attached
// process, placed between the directory and the heap.
//
//   owner      pid in bits 0-29, kSlotInit while the claimer fills the slot,
//              a claim generation in bits 32-63 (bumped by every claim, so a
//              reclaimer's CAS from a dead owner's value can never succeed
//              on a slot that changed hands in between). pid 0: free.
//   start      the owner's start time (field 22 of /proc/<pid>/stat): with
//              the pid, its identity (a recycled pid is another process).
//   name       current_process().name, truncated to 23 bytes (untrusted on read)
//   waits      one record per blocked thread, each a small seqlock (`seq`
//              odd while it is written) so that readers never lock.
//   history    the last kHistory state changes (state << 56 | unix µs), so a
//              reader sees transitions faster than it polls.
//   doorbell   a random nonce naming this process's wait-handle sockets
//              for this segment (doorbell.cpp); 0: it armed none here.
//   watching   a 64-bit filter of the words its wait handles were armed on
//              (bit = hash of the word's offset): wakers ring only the
//              processes whose filter has the word's bit.
//
// Everything is an atomic written with single stores by the owning process
// only (after its claim); a process killed at any instant leaves at worst a
// slot that is skipped (kSlotInit, an odd seq) until it is reclaimed.
#pragma once

#include <atomic>
#include <cstdint>

namespace ipckit::detail {

inline constexpr std::uint32_t kWaitRecords = 4;
inline constexpr std::uint32_t kHistory = 8;
inline constexpr std::uint32_t kSlotNameWords = 3;  // 24 bytes, up to 23 shown
inline constexpr std::uint64_t kSlotPidMask = 0x3fff'ffffu;
inline constexpr std::uint64_t kSlotInit = 0x4000'0000u;
inline constexpr std::uint64_t kSlotGenerationOne = std::uint64_t{1} << 32;
inline constexpr std::uint32_t kMaxProcessesLimit = 65'536;

// The operation shares a word with the offset (segments are < 2^40 bytes).
inline constexpr unsigned kWaitOpShift = 56;
inline constexpr std::uint64_t kWaitOffsetMask = (std::uint64_t{1} << kWaitOpShift) - 1;

struct WaitRecord {
  std::atomic<std::uint32_t> seq;           // odd: being written
  std::atomic<std::uint32_t> tid;           // the thread that owns this record; 0: free
  std::atomic<std::uint64_t> thread_start;  // the thread's start time (with tid, its identity)
  std::atomic<std::uint64_t> what;          // WaitOp << kWaitOpShift | offset of the word waited on; op 0: none
  std::atomic<std::uint64_t> since_ns;      // CLOCK_MONOTONIC, when the sleep began
};
static_assert(sizeof(WaitRecord) == 32);

struct alignas(64) ProcessSlot {
  std::atomic<std::uint64_t> owner;
  std::atomic<std::uint64_t> start;
  std::atomic<std::int64_t> attached_unix;
  std::atomic<std::uint32_t> state;    // ProcessState (never Blocked: that is derived from `waits`)
  std::atomic<std::uint32_t> blocked;  // threads with a published wait record
  std::atomic<std::uint64_t> name[kSlotNameWords];
  std::atomic<std::uint32_t> history_next;
  std::uint32_t reserved;
  std::atomic<std::uint64_t> history[kHistory];
  WaitRecord waits[kWaitRecords];
  std::atomic<std::uint64_t> doorbell;
  std::atomic<std::uint64_t> watching;
  std::uint64_t reserved2[6];  // zero: room for later fields
};
static_assert(sizeof(ProcessSlot) == 320);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

inline std::uint64_t process_table_bytes(std::uint32_t max_processes) {
  return std::uint64_t{max_processes} * sizeof(ProcessSlot);
}

}  // namespace ipckit::detail
