// src/redis/pool_common.cpp — a Redis pool's keys, records, and opening.
#include "pool_common.hpp"

#include "ipckit/error.hpp"
#include "pool_scripts.hpp"
#include "queue_common.hpp"

namespace ipckit::redis::detail {

PoolKeys::PoolKeys(std::string_view n)
    : name(checked_name(n, "pool")),
      label("Redis pool '" + name + "'"),
      meta("ipckit:pool:{" + name + "}"),
      tasks(meta + ":tasks"),
      dead(meta + ":dead"),
      workers(meta + ":workers"),
      producers(meta + ":producers") {}

std::string id_bytes(std::uint64_t id) {
  std::string out(8, '\0');
  std::memcpy(out.data(), &id, 8);
  return out;
}

std::uint64_t id_of(std::string_view bytes) {
  std::uint64_t id = 0;
  if (bytes.size() == 8) std::memcpy(&id, bytes.data(), 8);
  return id;
}

std::string encode_task(const TaskRecord& t) {
  std::string out;
  out.reserve(kTaskRecordHead + t.name.size() + t.args.size());
  out.append(id_bytes(t.id));
  out.append(reinterpret_cast<const char*>(&t.timeout_ns), 8);
  const auto n = static_cast<std::uint32_t>(t.name.size()) | (t.chunk ? kChunkTask : 0);
  out.append(reinterpret_cast<const char*>(&n), 4);
  out.append(t.name);
  out.append(t.args);
  return out;
}

bool decode_task(std::string_view b, TaskRecord& out) {
  if (b.size() < kTaskRecordHead) return false;
  std::uint32_t n = 0;
  out.id = id_of(b.substr(0, 8));
  std::memcpy(&out.timeout_ns, b.data() + 8, 8);
  std::memcpy(&n, b.data() + 16, 4);
  out.chunk = (n & kChunkTask) != 0;
  n &= ~kChunkTask;
  if (n > b.size() - kTaskRecordHead) return false;
  out.name = b.substr(kTaskRecordHead, n);
  out.args = b.substr(kTaskRecordHead + n);
  return true;
}

void open_pool(Connection& c, const PoolKeys& k, const PoolOptions& o) {
  const auto bad = [&](const std::string& why) { throw InvalidArgument(k.name, "ipckit: " + k.label + ": " + why); };
  if (o.max_message == 0) bad("max_message 0 would carry no task; use 1 or more");
  if (o.visibility_timeout.count() < 10) bad("visibility_timeout must be at least 10 ms");
  if (o.max_pending == 0) bad("max_pending must be at least 1");
  if (o.prefetch == 0 || o.prefetch > 1024) bad("prefetch must be 1 to 1024");
  if (o.task_timeout.count() < 0) bad("a negative task_timeout; use 0 for none");
  Connection::Args argv{k.meta, k.tasks, kPoolLayout, std::to_string(o.max_message),
                        std::to_string(o.visibility_timeout.count())};
  Reply r = c.eval(kPoolOpenScript, 2, argv, Deadline::never());
  if (r->type == REDIS_REPLY_ERROR) raise_reply_error(*r, k.label, "opening it");
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && reply_text(*r->element[0]) == "mismatch")
    throw TypeMismatch(k.name, "ipckit: " + k.label + " on " + c.hub().url + " exists with " +
                                   std::string(reply_text(*r->element[1])) + " = " +
                                   std::string(reply_text(*r->element[2])) +
                                   "; pass the same max_message and visibility_timeout in every client and worker "
                                   "(or remove_pool() it first)");
}

}  // namespace ipckit::redis::detail
