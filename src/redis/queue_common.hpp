// src/redis/queue_common.hpp — what the Redis queue engines (stream_queue.cpp,
// priority_queue.cpp) share.
#pragma once

#include <string>
#include <string_view>

namespace ipckit::redis::detail {

// `name` if it can name a Redis queue (its Cluster hash tag); InvalidName otherwise.
std::string checked_name(std::string_view name);

// TypeMismatch for a queue stored with `field` = `stored`, opened as `label` with item type `type`.
[[noreturn]] void raise_mismatch(const std::string& name, const std::string& label, const std::string& field,
                                 const std::string& stored, const std::string& type);

}  // namespace ipckit::redis::detail
