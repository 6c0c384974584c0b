// src/redis/stream_scripts.hpp — the Lua scripts of a Redis queue. Every
// change of a queue's state is one script, so that Redis applies it whole
// (a client that dies between two commands leaves nothing half done), and
// every script touches only the queue's own keys, which share one hash tag
// (one Cluster slot):
//
//   ipckit:{NAME}            hash: layout, kind, type, options, closed (0 open, 1 closed, 2 shut down),
//                            queued / qbytes (undelivered), unfinished (joinable), scan_at / scan_from
//   ipckit:{NAME}:items      stream of items (field d) and close markers (field c); consumer group "ipckit"
//   ipckit:{NAME}:dead       stream of dead letters (fields id, n, d)
//   ipckit:{NAME}:producers  hash: producer -> "seq:done:status" of its last put (a resent put is applied once)
#pragma once

#include "connection.hpp"

namespace ipckit::redis::detail {

// The layout version stored with every queue.
inline constexpr const char* kQueueLayout = "1";

extern const Script
    kOpenScript;  // KEYS meta items; ARGV layout kind type max_items max_bytes max_message vis_ms max_deliveries
extern const Script kPutScript;       // KEYS meta items producers; ARGV producer seq item...
extern const Script kGetScript;       // KEYS meta items dead; ARGV consumer max recover nacks ack... held...
extern const Script kTaskDoneScript;  // KEYS meta items; ARGV id
extern const Script kCloseScript;     // KEYS meta items; ARGV immediate(0/1)
extern const Script kRequeueScript;   // KEYS meta items dead; ARGV max

}  // namespace ipckit::redis::detail
