// ipckit/stats.hpp — what each primitive's `stats()` returns: a read-only
// snapshot of its shared state, for tools, logs and tests.
//
//   auto jobs = seg.joinable_queue<Job>("jobs");
//   auto s = jobs.stats();        // QueueStats: items, bytes, sleepers, who holds unfinished tasks
//   if (s.tasks) log(s.tasks->unfinished);
//
// Taking a snapshot only observes: it never takes the object's lock and never
// waits, so it cannot block or disturb the processes using the object. Each
// field is read with one atomic load; fields are not read at one instant, so
// a snapshot of a busy object may mix moments (items counted before a put,
// sleepers after it). Whether holders are alive is read from /proc.
//
// The state lives in shared memory that any process mapping the segment can
// overwrite. A snapshot never trusts it to index memory; a value that cannot
// be right (more waiters than a barrier has parties, a count above its
// maximum) is reported in `corrupt` rather than hidden.
//
// Segment::inspect(name) (ipckit/inspect.hpp) returns these for any object by
// name, without knowing its type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

namespace ipckit {

// A Lock or RLock, or the lock inside a Value, Array, Condition, Barrier or queue.
struct LockStats {
  bool locked = false;
  // The holder while locked: its process (0 when the holding thread is gone)
  // and thread, and whether that thread is alive (false: the next acquirer
  // takes the lock over and is told, see Lock::owner_died()).
  int holder_pid = 0;
  std::uint32_t holder_tid = 0;
  bool holder_alive = false;
  bool owner_died = false;       // the holder took it over from a dead one and has not marked it consistent
  bool waiters = false;          // a thread may be asleep waiting for it
  std::uint64_t recoveries = 0;  // takeovers from dead holders, ever
  std::uint64_t contended = 0;   // acquisitions that had to wait (the slow path), ever
};

// A Value or an Array (Value: count 1).
struct ValueStats {
  std::string type_name;  // as typeid(T).name() spells it ("l" for long)
  std::uint32_t elem_size = 0;
  std::uint64_t count = 0;        // elements
  std::optional<LockStats> lock;  // its RLock (get_lock())
  // A copy of the first elements (all of them unless fewer were asked for),
  // each read with one atomic load when its size allows: never a torn scalar.
  std::vector<unsigned char> data;
};

// A thread holding units of a tracked semaphore.
struct UnitHolder {
  int pid = 0;  // 0 when the thread is gone
  std::uint32_t tid = 0;
  std::uint32_t units = 0;
  bool alive = false;  // false: its units go back to the pool at the next acquire
};

struct SemaphoreStats {
  std::uint32_t value = 0;  // units available now
  std::uint32_t initial = 0;
  bool bounded = false;
  bool tracked = false;             // created with SemaphoreOptions::track_holders
  std::vector<UnitHolder> holders;  // tracked: the threads holding units
  std::uint64_t reclaimed = 0;      // units given back from dead holders, ever
  std::uint32_t sleepers = 0;       // threads asleep in acquire()
  std::string corrupt;              // empty unless the state cannot be right
};

struct EventStats {
  bool set = false;
  std::uint32_t sleepers = 0;  // threads asleep in wait()
};

struct ConditionStats {
  std::uint32_t waiters = 0;   // threads in wait() not yet notified
  std::uint32_t notified = 0;  // notified, not yet back (a dead waiter's is passed on)
  std::uint32_t sleepers = 0;  // waiters asleep (the rest are spinning)
  bool own_lock = true;        // false: bound to a named Lock/RLock
  LockStats lock;              // the lock it is bound to
  std::string corrupt;
};

struct BarrierStats {
  std::uint32_t parties = 0;
  std::uint32_t waiting = 0;  // arrived in the current round
  std::uint32_t round = 0;    // rounds completed
  bool broken = false;
  // "timeout", "aborted", "a party died", "a party died waiting", "its action threw", "a party died
  // running its action"; "" if not broken
  std::string broken_reason;
  std::uint32_t sleepers = 0;
  LockStats lock;  // its internal lock
  std::string corrupt;
};

// A process holding tasks of a joinable queue that it got and has not marked done.
struct TaskHolder {
  int pid = 0;
  std::uint64_t tasks = 0;
  bool alive = false;  // false: its tasks are counted done (abandoned) at the next get()
};

// Joinable queues: the task_done() / join() books.
struct TaskStats {
  std::uint64_t unfinished = 0;  // put and not marked done
  std::uint64_t abandoned = 0;   // held by processes that died, not (yet) marked done
  std::vector<TaskHolder> holders;
  std::uint32_t joiners = 0;  // threads asleep in join()
};

// Queue, JoinableQueue and ByteQueue.
struct QueueStats {
  std::uint64_t items = 0;
  std::uint64_t bytes_used = 0;  // of the ring, record headers included
  std::uint64_t capacity = 0;    // ring bytes
  std::uint64_t max_message = 0;
  std::uint64_t max_items = 0;  // 0: bounded by bytes only
  bool closed = false;
  std::uint32_t sleeping_consumers = 0;
  std::uint32_t sleeping_producers = 0;
  std::optional<TaskStats> tasks;  // joinable queues only
  LockStats producers_lock;
  LockStats consumers_lock;
  std::string corrupt;
};

struct PriorityQueueStats {
  std::uint64_t items = 0;
  std::uint64_t slots = 0;  // items it can hold
  std::uint64_t max_message = 0;
  std::optional<std::int64_t> lowest_priority;  // of the next item out; empty when there is none
  bool closed = false;
  std::uint32_t sleeping_consumers = 0;
  std::uint32_t sleeping_producers = 0;
  std::uint64_t rebuilds = 0;      // heap rebuilds after a holder died, ever
  std::optional<TaskStats> tasks;  // joinable priority queues only
  LockStats lock;                  // the one lock of producers and consumers
  std::string corrupt;
};

namespace detail {
// Value<T> / Array<T>: copies at most `max_elements` of `count` elements of
// `elem_size` bytes from `data` (read with atomic loads where the size allows).
ValueStats value_stats(std::optional<LockStats> lock, const char* type_name, std::uint32_t elem_size,
                       std::uint64_t count, const void* data, std::uint64_t max_elements);
template <class T>
ValueStats value_stats(std::optional<LockStats> lock, const T* data, std::uint64_t count,
                       std::uint64_t max_elements = UINT64_MAX) {
  return value_stats(lock, typeid(T).name(), sizeof(T), count, data, max_elements);
}
}  // namespace detail

}  // namespace ipckit
