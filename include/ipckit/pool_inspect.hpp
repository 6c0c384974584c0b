// ipckit/pool_inspect.hpp — a named pool's state, read from its segment by
// a process that is none of its clients or workers (`ipckit inspect`).
//
//   auto seg = ipckit::Segment::open("ipckit.pool.render", {.any_owner = true});
//   if (auto p = ipckit::inspect_pool(seg)) std::cout << p->stats.pending << " pending\n";
//
// It only reads (a copy of the pool's table, no lock, no wait), so it cannot
// disturb the pool; what it copies is checked field by field, and a table no
// pool can have written is reported in `corrupt`, never trusted. A fork
// pool's segment has no name once its workers are started, so only named
// pools (serve_pool / ProcessPool::connect) can be inspected this way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ipckit/pool.hpp"
#include "ipckit/segment.hpp"

namespace ipckit {

struct PoolSnapshot {
  // The pool's geometry, as it was created.
  std::uint64_t max_pending = 0;
  std::uint64_t max_message = 0;
  std::uint32_t max_clients = 0;
  std::uint32_t max_workers = 0;
  unsigned clients_alive = 0;  // connected client programs
  // workers: serving worker programs (= workers_alive); per_worker: the live
  // ones, with the task each runs and for how long.
  PoolStats stats;
  std::string corrupt;  // non-empty: what in the table is impossible (the counts may be partial)
};

// The state of the pool whose segment `seg` is; nullopt when it is not a
// named pool's segment. Throws CorruptSegment when it has a pool's objects
// with a geometry no pool has.
[[nodiscard]] std::optional<PoolSnapshot> inspect_pool(const Segment& seg);

}  // namespace ipckit
