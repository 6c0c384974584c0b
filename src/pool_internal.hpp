// pool_internal.hpp — what the fork pool (pool.cpp) and the named pool
// (pool_named.cpp) share: the records that travel through the queues, the
// segment's table, and the loop a worker runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ipckit/detail/pool_state.hpp"
#include "ipckit/pool.hpp"
#include "ipckit/queue.hpp"
#include "ipckit/segment.hpp"
#include "ipckit/value.hpp"

namespace ipckit::detail {

// A task as it travels to a worker: this header, then (named pools) the
// task's registered name, then the encoded arguments. A fork pool's
// records carry code addresses instead of a name (the workers are forks of
// the submitter); a named pool's worker never calls an address it read.
struct TaskHeader {
  std::uint32_t slot;  // in its channel
  std::uint32_t gen;
  std::uint32_t channel;   // the client's
  std::uint32_t name_len;  // 0 in a fork pool
  std::uint64_t invoke;    // InvokeFn (fork pools); named pools: 0, or kNamedChunkTask
  std::uint64_t fn;
};
// A named pool's map() chunk: the worker runs the task's chunk invoker
// (PoolTasks::Entry::chunk), not its plain one.
inline constexpr std::uint64_t kNamedChunkTask = 1;
// A result as it travels back: this header, then the encoded result or, for
// an error, "<type name>\0<what()>".
struct ResultHeader {
  std::uint32_t slot;
  std::uint32_t gen;
  std::uint32_t kind;  // kResultOk, kResultThrew, kResultTooLarge
  std::uint32_t unused;
};
inline constexpr std::uint32_t kResultOk = 0;
inline constexpr std::uint32_t kResultThrew = 1;     // body: "<type>\0<what>"
inline constexpr std::uint32_t kResultTooLarge = 2;  // body: the result's size

// How long a sleeper sleeps before it looks again on its own: only a peer
// killed between a change and its wake call makes that matter.
inline constexpr auto kSleeperTick = std::chrono::milliseconds(100);

// One cache line of the pool's table, as a segment array holds it.
struct alignas(64) Line {
  unsigned char bytes[64];
};

std::uint64_t monotonic_ns() noexcept;
// The byte size of a queue ring for messages of up to `max_message` bytes.
std::size_t ring_bytes(std::size_t max_message);
// A process as a pool's tables record it: pid and (the low 32 bits of) its start time.
std::uint64_t owner_word_of_self() noexcept;
[[nodiscard]] constexpr pid_t owner_pid(std::uint64_t word) noexcept { return static_cast<pid_t>(word & 0xffffffffu); }
// Whether the process recorded as `word` still runs (not a zombie).
bool owner_alive(std::uint64_t word) noexcept;

// A pool's segment and the objects in it: the tasks queue, a results queue
// per channel, and the table (slots channel after channel, the workers'
// records, the counters, the channels' records).
struct PoolSegment {
  Segment seg;
  ByteQueue tasks;
  std::vector<ByteQueue> results;  // per channel
  std::size_t max_message = 0;     // of the arguments or a result, without headers
  std::uint32_t per_channel = 0;   // slots
  std::uint32_t channels = 0;
  unsigned workers = 0;  // records
  PoolSlot* slots = nullptr;
  PoolWorkerRecord* worker_records = nullptr;
  PoolCounters* counters = nullptr;
  PoolChannel* channel_records = nullptr;

  [[nodiscard]] std::uint32_t all_slots() const noexcept { return per_channel * channels; }
  // The queues' and the table's options, for a pool of this geometry.
  static QueueOptions tasks_options(std::size_t max_message);
  static QueueOptions results_options(std::size_t max_message);
  static std::size_t table_lines(std::uint32_t per_channel, std::uint32_t channels, unsigned workers);
  // The segment's options for that geometry: a process table with a slot
  // for every worker and client (and the owner), at least the default's.
  static SegmentOptions segment_options(std::uint32_t channels, unsigned workers);
  // The segment's size for that geometry.
  static std::size_t bytes(std::size_t max_message, std::uint32_t per_channel, std::uint32_t channels,
                           unsigned workers);
  // Opens (creating them on first use) the objects in `seg`.
  static PoolSegment bind(Segment seg, std::size_t max_message, std::uint32_t per_channel, std::uint32_t channels,
                          unsigned workers);
};

// What a worker process runs: takes tasks, claims their slots, runs them,
// sends the results to the slot's channel. Returns when the tasks queue is
// closed and drained, or once *stop is set (checked every kSleeperTick).
struct WorkerLoop {
  PoolSegment& shm;
  unsigned index;            // this worker's record
  bool by_name = false;      // named pool: run registered tasks by name, never an address
  std::uint64_t runner = 0;  // named pool: owner_word_of_self(), stored into each claimed slot
  const volatile std::sig_atomic_t* stop = nullptr;
  std::string pool;  // for messages

  void run();

 private:
  std::uint32_t run_task(const TaskHeader& h, const std::string& name, const std::string& args, std::string& reply);
  void send(ByteQueue& results, PoolChannel& channel, std::string& reply);
};

// Named pools (pool_named.cpp). Opens, or creates, the segment of pool
// `name`: TypeMismatch if it exists with another geometry.
PoolSegment open_named_pool(const std::string& name, const NamedPoolOptions& options);
// Claims a free channel, or one whose client died (its tasks are dropped:
// their slots move to the next generation). Full if none.
std::uint32_t claim_channel(PoolSegment& shm, const std::string& name, std::uint64_t me);

// "<type>\0<what>" of the exception being handled.
std::string describe_current_exception();

}  // namespace ipckit::detail
