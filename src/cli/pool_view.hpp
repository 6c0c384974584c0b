// src/cli/pool_view.hpp — what `ipckit inspect` adds for a named pool's
// segment (ipckit/pool_inspect.hpp): its workers, clients and tasks.
//
// JSON: "pool": {"max_pending", "max_message", "max_clients", "max_workers",
//   "workers_alive", "clients_alive", "restarts", "submitted", "pending",
//   "running", "succeeded", "failed", "timed_out", "cancelled",
//   "workers": [{"index", "pid", "task" (null when idle),
//   "running_seconds", "tasks_done"}], "corrupt"?}
#pragma once

#include <string>

#include "ipckit/pool_inspect.hpp"
#include "json.hpp"

namespace ipckit::cli {

Json pool_json(const PoolSnapshot& p);
std::string pool_text(const PoolSnapshot& p);

}  // namespace ipckit::cli
