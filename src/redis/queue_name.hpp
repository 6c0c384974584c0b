// src/redis/queue_name.hpp — the names a Redis queue or pool may have.
#pragma once

#include <string>
#include <string_view>

namespace ipckit::redis::detail {

// `name`, or InvalidName: 1-200 printable bytes without '{' and '}' (they
// would change the keys' Cluster hash tag). `what`: "queue", "pool".
std::string checked_name(std::string_view name, const char* what);

}  // namespace ipckit::redis::detail
