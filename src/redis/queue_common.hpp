// src/redis/queue_common.hpp — what the Redis queue engines (stream_queue.cpp,
// priority_queue.cpp) and pools share.
#pragma once

#include <string>
#include <string_view>

namespace ipckit::redis::detail {

// `name`, or InvalidName: 1-200 printable bytes without '{' and '}' (they
// would change the keys' Cluster hash tag). `what`: "queue", "pool".
std::string checked_name(std::string_view name, const char* what = "queue");

// TypeMismatch for a queue stored with `field` = `stored`, opened as `label` with item type `type`.
[[noreturn]] void raise_mismatch(const std::string& name, const std::string& label, const std::string& field,
                                 const std::string& stored, const std::string& type);

}  // namespace ipckit::redis::detail
