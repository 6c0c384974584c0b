// src/redis/priority_scripts.hpp — the Lua scripts of a Redis priority queue.
// Streams have no order but arrival, so the items wait in a sorted set whose
// scores are all 0: Redis then orders its members by their bytes, and each
// member is an item's id, 16 bytes that sort as (priority, arrival):
//
//   id = 8-byte big-endian priority with its sign bit flipped (so that
//        -2^63 < ... < -1 < 0 < ... < 2^63-1 as bytes)
//      + 8-byte big-endian sequence number (the meta hash's counter `seq`)
//
// ZPOPMIN takes the lowest: the lowest priority value, FIFO among equals.
// Every script takes the same keys, all with the queue's name as hash tag
// (one Cluster slot), in this order:
//
//   1 ipckit:{NAME}            hash: as a FIFO queue's (stream_scripts.hpp), kind priority or
//                              joinable_priority (so the two kinds refuse each other's names), seq
//   2 ipckit:{NAME}:ready      sorted set of the ids waiting to be delivered (all scores 0)
//   3 ipckit:{NAME}:data       hash: id -> item bytes, while the item exists
//   4 ipckit:{NAME}:leases     sorted set of the delivered ids, scored by lease expiry (ms, server TIME)
//   5 ipckit:{NAME}:deliv      hash: id -> "deliveries|consumer" (consumer empty while ready again)
//   6 ipckit:{NAME}:dead       stream of dead letters (fields id (hex), n, d, k (the raw id))
//   7 ipckit:{NAME}:producers  hash: producer -> "seq:done:status" of its last put (applied once)
//   8 ipckit:{NAME}:wake       stream of one entry, added to by every put and close: blocked
//                              getters XREAD BLOCK on it from the id the get script saw
//   9 ipckit:{NAME}:holds      hash: consumer -> the ids leased to it, concatenated (after a lost
//                              reply, its next get hands out those its handle does not know of)
#pragma once

#include "connection.hpp"

namespace ipckit::redis::detail {

inline constexpr int kPriorityKeys = 9;

extern const Script kPriorityOpenScript;  // ARGV layout kind type max_items max_bytes max_message vis_ms max_deliveries
extern const Script kPriorityPutScript;   // ARGV producer seq (priority8 item)...
extern const Script kPriorityGetScript;   // ARGV consumer max recover nacks ack... held...
extern const Script kPriorityAckScript;   // ARGV id...: finished (acknowledged, a task done)
extern const Script kPriorityCloseScript;    // ARGV immediate(0/1)
extern const Script kPriorityRequeueScript;  // ARGV max

}  // namespace ipckit::redis::detail
