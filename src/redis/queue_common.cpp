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

QueueOptions checked_options(QueueOptions o, const std::string& name, const std::string& label) {
  if (o.max_message == 0) o.max_message = std::size_t{1} << 20;
  if (o.max_deliveries == 0) throw InvalidArgument(name, "ipckit: " + label + ": max_deliveries must be at least 1");
  if (o.visibility_timeout < std::chrono::milliseconds(1))
    throw InvalidArgument(name, "ipckit: " + label + ": visibility_timeout must be at least 1 ms");
  if (o.capacity_bytes != 0 && o.max_message > o.capacity_bytes) o.max_message = o.capacity_bytes;
  return o;
}

void raise_gone(const std::string& name, const std::string& label) {
  throw NotFound(name, "ipckit: " + label + " was removed (its keys are gone); open it again to make a new one");
}

long long StatusReader::field(const std::string& meta, const char* which) const {
  Connection::Args argv{"HGET", meta, which};
  std::lock_guard lock(m);
  const Reply r = conn.call(argv, Deadline::now());
  if (r->type == REDIS_REPLY_ERROR) raise_reply_error(*r, label, "HGET");
  if (r->type == REDIS_REPLY_NIL) raise_gone(name, label);
  return reply_integer(*r);
}

std::uint64_t StatusReader::stream_length(const std::string& stream) const {
  Connection::Args argv{"XLEN", stream};
  std::lock_guard lock(m);
  const Reply r = conn.call(argv, Deadline::now());
  if (r->type == REDIS_REPLY_ERROR) raise_reply_error(*r, label, "XLEN");
  return static_cast<std::uint64_t>(reply_integer(*r));
}

bool StatusReader::full(const std::string& meta, const QueueOptions& o) const {
  if (o.max_items != 0 && static_cast<std::size_t>(field(meta, "queued")) >= o.max_items) return true;
  return o.capacity_bytes != 0 && static_cast<std::size_t>(field(meta, "qbytes")) >= o.capacity_bytes;
}

}  // namespace ipckit::redis::detail
