// src/redis/pool_common.hpp — what a Redis pool's clients and workers share:
// its keys, the task record, opening (or making) the pool.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "connection.hpp"
#include "ipckit/redis/pool.hpp"

namespace ipckit::redis::detail {

struct PoolKeys {
  explicit PoolKeys(std::string_view name);
  std::string name, label;
  std::string meta, tasks, dead, workers, producers;
  [[nodiscard]] std::string results(const std::string& client) const { return meta + ":results:" + client; }
};

// A task record: [u64 id][i64 timeout ns][u32 name length | kChunkTask][name][arguments].
// The id's 8 bytes lead, so that the pool's Lua can name a task it fails.
// kChunkTask: the arguments are a chunk of map() inputs (PoolTasks::Entry::chunk).
inline constexpr std::uint32_t kChunkTask = 0x80000000U;
struct TaskRecord {
  std::uint64_t id = 0;
  std::int64_t timeout_ns = 0;
  bool chunk = false;
  std::string_view name;
  std::string_view args;
};
inline constexpr std::size_t kTaskRecordHead = 8 + 8 + 4;
std::string encode_task(const TaskRecord& t);
// False if `bytes` is not a whole record.
bool decode_task(std::string_view bytes, TaskRecord& out);
std::string id_bytes(std::uint64_t id);
std::uint64_t id_of(std::string_view bytes);  // 0 unless 8 bytes

// Makes the pool or checks that it was made with the same max_message and
// visibility_timeout (TypeMismatch); InvalidArgument for bad options.
void open_pool(Connection& c, const PoolKeys& k, const PoolOptions& o);

}  // namespace ipckit::redis::detail
