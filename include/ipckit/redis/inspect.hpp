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
// Objects other than queues (pools: "ipckit:pool:{NAME}") live under their own
// prefix and are not listed here; each kind has its own list_<kind>() and
// inspect_<kind>().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/redis/hub.hpp"

namespace ipckit::redis {

// A consumer of a queue's group: one queue handle in one process.
struct ConsumerInfo {
  std::string name;           // host/pid/random/n (queue.hpp)
  std::string host;           // parsed from name; empty when it has another form
  std::int64_t pid = 0;       // parsed from name; 0 when it has another form
  std::uint64_t pending = 0;  // delivered to it, not acknowledged (leased)
  std::int64_t idle_ms = 0;   // since it last read or claimed: the age of its heartbeat
};

struct QueueInfo {
  std::string name;
  std::string key;                   // its meta hash: ipckit:{name}
  std::string layout;                // "1" (stream_scripts.hpp)
  std::string kind;                  // "queue" or "joinable"
  std::string type;                  // the item type tag (typeid(T).name() of its creator)
  std::uint64_t max_items = 0;       // 0: no bound
  std::uint64_t capacity_bytes = 0;  // 0: no bound
  std::uint64_t max_message = 0;
  std::uint64_t visibility_timeout_ms = 0;
  std::uint64_t max_deliveries = 0;
  int closed = 0;            // 0 open, 1 closed (draining), 2 shut down
  std::uint64_t queued = 0;  // put, not yet delivered
  std::uint64_t queued_bytes = 0;
  std::uint64_t pending = 0;            // delivered, not acknowledged (XPENDING)
  std::uint64_t unfinished = 0;         // joinable: put, not yet task_done
  std::uint64_t dead = 0;               // dead letters (XLEN of ipckit:{name}:dead)
  std::uint64_t stream_length = 0;      // entries in ipckit:{name}:items (close markers included)
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
  std::string original_id;  // its entry in ipckit:{name}:items when it was put
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

}  // namespace ipckit::redis
