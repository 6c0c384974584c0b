// src/redis/pool_scripts.hpp — the Lua scripts of a Redis pool. Keys share
// the hash tag {NAME} (one Cluster slot):
//
//   ipckit:pool:{NAME}                 hash: layout, max_message, vis_ms, closed, queued, done, scan_at, scan_from
//   ipckit:pool:{NAME}:tasks           stream of tasks (fields c client, r retries, t record) and close
//                                      markers (field x); consumer group "workers"
//   ipckit:pool:{NAME}:results:CLIENT  stream of CLIENT's results (fields i task id, s status, d bytes);
//                                      expires a day after its last result
//   ipckit:pool:{NAME}:workers         hash: worker -> "pid=..;host=..;...;seen=<ms>" (heartbeats)
//   ipckit:pool:{NAME}:dead            stream of tasks that failed with WorkerDied (fields id, c, n, t)
//   ipckit:pool:{NAME}:producers       hash: client -> "seq:done:status" of its last submit batch
//
// Result statuses: ok (d: the encoded result), threw (d: "<type>\0<what>"),
// died (d: how many times its workers died), timeout (d: the worker's pid).
#pragma once

#include "connection.hpp"

namespace ipckit::redis::detail {

inline constexpr const char* kPoolLayout = "1";

extern const Script kPoolOpenScript;    // KEYS meta tasks; ARGV layout max_message vis_ms
extern const Script kPoolSubmitScript;  // KEYS meta tasks producers; ARGV client seq retries record...
extern const Script
    kPoolTakeScript;  // KEYS meta tasks dead workers; ARGV worker info max nfin (client id task status bytes)...
extern const Script kPoolCloseScript;  // KEYS meta tasks

}  // namespace ipckit::redis::detail
