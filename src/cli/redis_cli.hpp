// src/cli/redis_cli.hpp — the CLI's view of Redis queues and pools
// (ipckit/redis/inspect.hpp):
//
//   ipckit ls --redis URL [--json]                 queues: kind, type, queued, pending, consumers, dead, state;
//                                                  pools (kind pool): queued, running, workers, dead, state
//   ipckit inspect --redis URL NAME [--pool] [--json]
//                                                  one queue: options, counts, consumers (host, pid, pending, idle);
//                                                  a pool: counts, workers and their heartbeats, clients
//   ipckit ps --redis URL [NAME] [--json]          consumers of every queue, idle time as their heartbeat's age;
//                                                  workers of every pool: state, task, running for, heartbeat age
//   ipckit dead --redis URL NAME [--limit N] [--requeue [N]] [--json]
//                                                  dead letters, or put them back at the tail of the queue
//   ipckit dead --redis URL NAME --pool [--limit N] [--json]
//                                                  a pool's tasks that failed with WorkerDied
//   ipckit rm --redis URL NAME... [-f] [--pool] [--json]
//                                                  deletes queues (pools) and what they hold
//
// `--redis` alone (last on the line, or as --redis=) takes $IPCKIT_REDIS_URL,
// else redis://127.0.0.1:6379/0. The server must answer within 2 s
// (ConnectionLost otherwise: exit status 1). Built only with
// IPCKIT_WITH_REDIS; without it `--redis` says so and exits 1.
//
// JSON (stable field names; docs/cli.md describes them):
//   ls:      {"server", "queues": [{"name", "kind", "type", "type_pretty", "state", "queued", "queued_bytes",
//             "pending", "unfinished", "consumers", "dead", "stream_length", "options": {"max_items",
//             "capacity_bytes", "max_message", "visibility_timeout_ms", "max_deliveries"}, "corrupt",
//             "problems": [...]}], "pools": [{"name", "kind": "pool", "state", "queued", "running", "done",
//             "dead", "workers", "stream_length", "options": {"max_message", "visibility_timeout_ms"},
//             "corrupt", "problems"}]}
//   inspect: one such queue object, plus "server" and "consumers": [{"name", "host", "pid", "pending",
//             "idle_ms", "process"}] in place of the count "consumers"; process: running, gone (its
//             process on this host has ended) or unknown (another host); a pool: its object, plus
//             "server", "workers": [worker...], "clients": [{"name", "results"}]; a queue and a pool of
//             one name: the queue's, with the pool's as "pool"
//   ps:      {"server", "consumers": [{"queue", "name", "host", "pid", "pending", "idle_ms", "process"}],
//             "workers": [{"pool", "name", "host", "pid", "process", "state", "started_ms", "tasks_done",
//             "task", "running_ms", "heartbeat_age_ms", "pending", "silent", "ended", "heartbeat",
//             "corrupt", "problems"}]}
//   dead:    {"server", "queue", "dead", "dead_letters": [{"id", "original_id", "deliveries", "size",
//             "preview"}]}, or with --requeue {"server", "queue", "requeued"}; with --pool {"server",
//             "pool", "dead", "dead_tasks": [{"id", "task_stream_id", "client", "deliveries", "task",
//             "function", "args_size", "chunk", "problem"?}]}
//   rm:      {"removed": [{"name", "result", "error"?}]}  result: removed, missing or error
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace ipckit::cli {

struct RedisCommand {
  CLI::App* app = nullptr;     // the subcommand
  CLI::Option* url = nullptr;  // its --redis: this command runs when it was given
  std::function<int()> run;
};

// Adds --redis to the `ls`, `inspect`, `ps` and `rm` subcommands already
// on `app` (and --pool, which needs it, to `inspect` and `rm`), and the
// `dead` subcommand.
std::vector<RedisCommand> add_redis(CLI::App& app);

}  // namespace ipckit::cli
