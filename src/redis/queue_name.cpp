// src/redis/queue_name.cpp — checked_name.
#include "queue_name.hpp"

#include "ipckit/error.hpp"

namespace ipckit::redis::detail {

std::string checked_name(std::string_view name, const char* what) {
  const auto bad = [&](const std::string& why) {
    throw InvalidName(std::string(name), "ipckit: cannot use '" + std::string(name) + "' as a Redis " + what +
                                             " name: " + why + " (use 1-200 printable characters without '{' and '}')");
  };
  if (name.empty()) bad("it is empty");
  if (name.size() > 200) bad("it is longer than 200 bytes");
  for (const char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad("it has control characters");
    if (c == '{' || c == '}') bad("braces would change its Cluster hash tag");
  }
  return std::string(name);
}

}  // namespace ipckit::redis::detail
