// src/redis/queue_common.cpp — see queue_common.hpp.
#include "queue_common.hpp"

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

void raise_mismatch(const std::string& name, const std::string& label, const std::string& field,
                    const std::string& stored, const std::string& type) {
  throw TypeMismatch(name, "ipckit: " + label + " exists with " + field + " = " + stored +
                               ", not what this program opens it with" +
                               (field == "type" ? " (another item type: " + type + ")" : std::string()) +
                               "; open it with the same item type, kind and options, or remove it first "
                               "(ipckit rm --redis URL " +
                               name + ")");
}

}  // namespace ipckit::redis::detail
