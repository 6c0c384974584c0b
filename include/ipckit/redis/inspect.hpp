// ipckit/redis/inspect.hpp — what the Redis objects of a hub hold, read
// without opening them: what `ipckit ls/inspect/ps/dead --redis` show.
//
//   auto hub = ipckit::redis::connect(url);
//   for (const auto& q : ipckit::redis::list_queues(hub)) ...   // q.queued, q.pending, q.dead
//   auto info = ipckit::redis::inspect_queue(hub, "jobs");      // + consumers, NotFound if none
//   auto letters = ipckit::redis::dead_letters(hub, "jobs", 20);
//   ipckit::redis::requeue_dead(hub, "jobs");                   // back at the tail of the queue
//
// Reading never changes a queue: no consumer is added to its group, no
// delivery is counted (XPENDING, XINFO and XRANGE only). Each read is one
// round trip bounded by HubOptions::nowait_timeout (ConnectionLost after).
// A listing is a series of reads, not a snapshot: a queue may change between
// two of them.
//
// What Redis returns is checked, not trusted: a key of ipckit's naming whose
// fields are missing or malformed (written by hand, by another program, by a
// future layout) is reported with its `problems`, never thrown at or crashed
// on. Keys are found with SCAN (never KEYS, which stops the server); on a
// Redis Cluster only the node the hub's URL names is scanned.
//
// Queues are "ipckit:{NAME}" (FIFO and joinable: stream_scripts.hpp;
// priority and joinable_priority: priority_scripts.hpp); pools live under
// their own prefix, "ipckit:pool:{NAME}" (pool_scripts.hpp), and have their
// own list_pools() and inspect_pool(). A queue and a pool may share a name.
//
//   for (const auto& p : ipckit::redis::list_pools(hub)) ...    // p.queued, p.running, p.dead
//   auto pool = ipckit::redis::inspect_pool(hub, "jobs");       // + workers, their heartbeats, clients
//   auto tasks = ipckit::redis::dead_tasks(hub, "jobs", 20);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/redis/hub.hpp"

namespace ipckit::redis {

// A consumer of a queue's group: one queue handle in one process. A
// priority queue's consumers are those holding items (its :holds hash), and
// their idle time is unknown (-1): they leave no heartbeat.
struct ConsumerInfo {
  std::string name;           // host/pid/random/n (queue.hpp)
  std::string host;           // parsed from name; empty when it has another form
  std::int64_t pid = 0;       // parsed from name; 0 when it has another form
  std::uint64_t pending = 0;  // delivered to it, not acknowledged (leased)
  std::int64_t idle_ms = 0;   // since it last read or claimed: the age of its heartbeat; -1 unknown
};

struct QueueInfo {
  std::string name;
  std::string key;                   // its meta hash: ipckit:{name}
  std::string layout;                // "1" (stream_scripts.hpp)
  std::string kind;                  // "queue", "joinable", "priority" or "joinable_priority"
  std::string type;                  // the item type tag (typeid(T).name() of its creator)
  std::uint64_t max_items = 0;       // 0: no bound
  std::uint64_t capacity_bytes = 0;  // 0: no bound
  std::uint64_t max_message = 0;
  std::uint64_t visibility_timeout_ms = 0;
  std::uint64_t max_deliveries = 0;
  int closed = 0;            // 0 open, 1 closed (draining), 2 shut down
  std::uint64_t queued = 0;  // put, not yet delivered
  std::uint64_t queued_bytes = 0;
  std::uint64_t pending = 0;            // delivered, not acknowledged (XPENDING; priority: leases)
  std::uint64_t unfinished = 0;         // joinable: put, not yet task_done
  std::uint64_t dead = 0;               // dead letters (XLEN of ipckit:{name}:dead)
  std::uint64_t stream_length = 0;      // entries in ipckit:{name}:items (close markers included);
                                        // priority: members of ipckit:{name}:ready
  std::vector<ConsumerInfo> consumers;  // empty in list_queues(): inspect_queue() reads them
  std::size_t consumer_count = 0;       // read by both
  // What does not look like an ipckit queue, one phrase each ("field
  // 'queued' is 'x', not a number"); the fields above it concerns keep
  // their defaults. Empty for a sound queue.
  std::vector<std::string> problems;
  [[nodiscard]] bool corrupt() const noexcept { return !problems.empty(); }
};

// A dead letter: an item moved out of its queue after max_deliveries.
struct DeadLetter {
  std::string id;           // its entry in ipckit:{name}:dead
  std::string original_id;  // its entry in ipckit:{name}:items when it was put (priority: its id in hex)
  std::uint64_t deliveries = 0;
  std::uint64_t size = 0;  // payload bytes
  std::string payload;     // the encoded item, raw
  // The first bytes of the payload as printable ASCII: bytes outside
  // 0x20-0x7e as \xNN, a backslash as \\, "..." appended when cut.
  std::string preview;
};

// Every queue on the hub's server (the node it names), sorted by name.
std::vector<QueueInfo> list_queues(const Hub& hub);
// One queue, with its consumers. Throws NotFound when there is none,
// InvalidName for a name no queue can have.
QueueInfo inspect_queue(const Hub& hub, std::string_view name);
// The oldest `max` dead letters of a queue (0: all). NotFound when the
// queue does not exist.
std::vector<DeadLetter> dead_letters(const Hub& hub, std::string_view name, std::size_t max = 100);
// Puts up to `max` dead letters (oldest first) back at the tail of the queue
// with their delivery count reset; how many. NotFound when there is no
// queue, Closed when it is closed.
std::size_t requeue_dead(const Hub& hub, std::string_view name, std::size_t max = SIZE_MAX);
// Deletes a queue and what it holds (Hub::remove). False if there was none.
bool remove_queue(const Hub& hub, std::string_view name);

// A worker of a pool: one serve_pool() program, as its heartbeat (the
// :workers hash, written at every take and every third of vis_ms) says.
struct WorkerInfo {
  std::string name;                    // host/pid/random/w
  std::string host;                    // parsed from name; empty when it has another form
  std::int64_t pid = 0;                // from the heartbeat, else its name; 0 when neither says
  std::int64_t started_ms = 0;         // unix ms, the worker's clock
  std::uint64_t tasks_done = 0;        // tasks it finished
  std::uint64_t task = 0;              // the id of the task it runs; 0: idle
  std::int64_t running_ms = -1;        // how long it has run that task (Redis TIME - since); -1 idle or unknown
  std::int64_t heartbeat_age_ms = -1;  // Redis TIME - its last heartbeat; -1 unknown
  std::uint64_t pending = 0;           // tasks leased to it in the group (prefetched ones included)
  // Its heartbeat is older than the pool's visibility_timeout: dead, stopped
  // or cut off; its tasks go to other workers.
  bool silent = false;
  std::string ended;                  // "timeout": it is ending after a task ran past its timeout
  std::string heartbeat;              // the raw text
  std::vector<std::string> problems;  // a heartbeat that does not parse: shown as corrupt
  [[nodiscard]] bool corrupt() const noexcept { return !problems.empty(); }
};

// A client's result stream (ipckit:pool:{name}:results:CLIENT): its results
// not yet read; it expires a day after its last result.
struct PoolClientInfo {
  std::string name;  // host/pid/random/c
  std::uint64_t results = 0;
};

struct PoolInfo {
  std::string name;
  std::string key;     // its meta hash: ipckit:pool:{name}
  std::string layout;  // "1" (pool_scripts.hpp)
  std::uint64_t max_message = 0;
  std::uint64_t visibility_timeout_ms = 0;
  int closed = 0;                       // 0 open, 1 closed (draining); 2 shut down
  std::uint64_t queued = 0;             // submitted, not yet taken by a worker
  std::uint64_t running = 0;            // taken, not finished (the group's pending entries)
  std::uint64_t done = 0;               // finished, ever
  std::uint64_t dead = 0;               // failed with WorkerDied (XLEN of its :dead stream)
  std::uint64_t stream_length = 0;      // entries in its :tasks stream
  std::size_t worker_count = 0;         // heartbeats recorded (silent ones included)
  std::vector<WorkerInfo> workers;      // inspect_pool() and list_pools(): sorted by name
  std::vector<PoolClientInfo> clients;  // inspect_pool() only
  std::vector<std::string> problems;    // as QueueInfo's
  [[nodiscard]] bool corrupt() const noexcept { return !problems.empty(); }
};

// A task that failed with WorkerDied: its workers died (or fell silent)
// more than `retries` times.
struct DeadTask {
  std::string id;              // its entry in ipckit:pool:{name}:dead
  std::string task_stream_id;  // its entry in the :tasks stream
  std::string client;          // who submitted it
  std::uint64_t deliveries = 0;
  std::uint64_t task = 0;  // the task's id in its client
  std::string function;    // the registered name (IPCKIT_TASK); empty when the record is corrupt
  std::uint64_t args_size = 0;
  bool chunk = false;   // a chunk of map() inputs
  std::string problem;  // why the record does not decode; empty when it does
};

// Every pool on the hub's server, with its workers, sorted by name.
std::vector<PoolInfo> list_pools(const Hub& hub);
// One pool with its workers and clients. NotFound when there is none.
PoolInfo inspect_pool(const Hub& hub, std::string_view name);
// The oldest `max` dead tasks of a pool (0: all). NotFound when there is no pool.
std::vector<DeadTask> dead_tasks(const Hub& hub, std::string_view name, std::size_t max = 100);

}  // namespace ipckit::redis
