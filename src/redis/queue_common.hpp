// src/redis/queue_common.hpp — what the Redis queue engines (stream_queue.cpp,
// priority_queue.cpp) and pools share.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "connection.hpp"
#include "ipckit/redis/queue.hpp"

namespace ipckit::redis::detail {

// `name`, or InvalidName: 1-200 printable bytes without '{' and '}' (they
// would change the keys' Cluster hash tag). `what`: "queue", "pool".
std::string checked_name(std::string_view name, const char* what = "queue");

// TypeMismatch for a queue stored with `field` = `stored`, opened as `label` with item type `type`.
[[noreturn]] void raise_mismatch(const std::string& name, const std::string& label, const std::string& field,
                                 const std::string& stored, const std::string& type);

// `o` with its defaults filled in (max_message 0: 1 MiB, at most
// capacity_bytes); InvalidArgument for max_deliveries 0 or a visibility_timeout under 1 ms.
QueueOptions checked_options(QueueOptions o, const std::string& name, const std::string& label);

// NotFound: the queue's keys were removed under an open handle.
[[noreturn]] void raise_gone(const std::string& name, const std::string& label);

// What an engine reads about its queue outside the scripts, through its
// "misc" connection: each one round trip, bounded as a non-blocking call.
struct StatusReader {
  Connection& conn;
  std::mutex& m;
  const std::string& name;
  const std::string& label;
  // A number in the meta hash at `meta`; NotFound once the queue is removed.
  [[nodiscard]] long long field(const std::string& meta, const char* which) const;
  [[nodiscard]] std::uint64_t stream_length(const std::string& stream) const;
  // Whether max_items / capacity_bytes refuse a put now.
  [[nodiscard]] bool full(const std::string& meta, const QueueOptions& o) const;
};

}  // namespace ipckit::redis::detail
