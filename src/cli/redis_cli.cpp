// `ipckit ... --redis URL` (redis_cli.hpp): renders ipckit/redis/inspect.hpp.
#include "redis_cli.hpp"

#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command.hpp"
#include "ipckit/error.hpp"
#include "text.hpp"

#ifdef IPCKIT_WITH_REDIS
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iomanip>

#include "ipckit/redis/hub.hpp"
#include "ipckit/redis/inspect.hpp"
#include "ipckit/redis/pool.hpp"
#include "json.hpp"
#include "values.hpp"
#endif

namespace ipckit::cli {
namespace {

// What every --redis command was given.
struct RedisArgs {
  std::vector<std::string> url;  // empty (or ""): $IPCKIT_REDIS_URL
  std::vector<std::string> names;
  bool json = false;
  bool force = false;
  bool pool = false;  // --pool: the pool NAME, not the queue
  std::size_t limit = 20;
  std::vector<std::size_t> requeue;  // --requeue [N]; 0 or none: all
  CLI::Option* requeue_opt = nullptr;
};

// The library's messages start with "ipckit: " as the CLI's do: one is enough.
int report(const std::string& message) {
  const std::string_view m = message;
  std::cerr << "ipckit: " << escape_text(m.starts_with("ipckit: ") ? m.substr(8) : m) << "\n";
  return kExitError;
}

#ifdef IPCKIT_WITH_REDIS

namespace rd = ipckit::redis;
using namespace std::chrono_literals;

std::string url_of(const RedisArgs& a) {
  if (!a.url.empty() && !a.url.front().empty()) return a.url.front();
  const char* env = std::getenv("IPCKIT_REDIS_URL");
  return env != nullptr && env[0] != '\0' ? env : "redis://127.0.0.1:6379/0";
}

// A CLI waits for nothing: an unreachable server is reported within seconds.
rd::Hub open_hub(const RedisArgs& a) {
  rd::HubOptions o;
  o.reconnect_timeout = 2s;
  o.nowait_timeout = 2s;
  o.connect_timeout = 2s;
  rd::Hub hub(url_of(a), o);
  if (!hub.ping(2s))
    throw ConnectionLost(hub.url(), "ipckit: cannot reach the Redis server at " + hub.url() +
                                        " within 2 s; check that it runs and that the URL is right (--redis URL, "
                                        "or IPCKIT_REDIS_URL with --redis alone)");
  return hub;
}

std::string closed_text(int closed) {
  switch (closed) {
    case 0:
      return "open";
    case 1:
      return "closed";
    default:
      return "shut down";
  }
}

// "std::string" rather than its four-line demangled name.
std::string type_text(const std::string& raw) {
  std::string t = pretty_type(raw);
  const std::string s = "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >";
  for (std::size_t at; (at = t.find(s)) != std::string::npos;) t.replace(at, s.size(), "std::string");
  return t;
}

std::string idle_text(std::int64_t ms) {
  if (ms < 0) return "-";  // unknown
  if (ms < 10000) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1fs", static_cast<double>(ms) / 1000.0);
    return b;
  }
  return human_age(ms / 1000);
}

std::string state_text(const rd::QueueInfo& q) { return closed_text(q.closed); }

std::string bound_text(std::uint64_t v) { return v == 0 ? "no bound" : std::to_string(v); }

// The first few: a listing keeps one line per queue (inspect shows them all).
std::string problems_text(const std::vector<std::string>& problems) {
  constexpr std::size_t kShown = 3;
  std::string out;
  for (std::size_t i = 0; i < problems.size() && i < kShown; ++i) out += (out.empty() ? "" : "; ") + problems[i];
  if (problems.size() > kShown) out += "; " + std::to_string(problems.size() - kShown) + " more (inspect it)";
  return out;
}
std::string problems_text(const rd::QueueInfo& q) { return problems_text(q.problems); }

// Whether a consumer's process still runs: known only for one on this host
// ("running", "gone"), "unknown" elsewhere. A consumer outlives its process
// in the group; this tells a stale one from a quiet one.
std::string process_state(const std::string& host, std::int64_t pid) {
  static const std::string here = [] {
    char name[256] = {};
    return gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string();
  }();
  if (pid <= 0 || host.empty() || host != here) return "unknown";
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM ? "running" : "gone";
}
std::string process_state(const rd::ConsumerInfo& c) { return process_state(c.host, c.pid); }

Json consumer_json(const rd::ConsumerInfo& c) {
  return Json{{"name", c.name},       {"host", c.host},       {"pid", c.pid},
              {"pending", c.pending}, {"idle_ms", c.idle_ms}, {"process", process_state(c)}};
}

Json queue_json(const rd::QueueInfo& q) {
  Json j;
  j["name"] = q.name;
  j["kind"] = q.kind;
  j["type"] = q.type;
  j["type_pretty"] = pretty_type(q.type);  // as shared-memory inspect writes it; tables shorten it
  j["state"] = state_text(q);
  j["queued"] = q.queued;
  j["queued_bytes"] = q.queued_bytes;
  j["pending"] = q.pending;
  j["unfinished"] = q.unfinished;
  j["consumers"] = q.consumer_count;
  j["dead"] = q.dead;
  j["stream_length"] = q.stream_length;
  j["options"] = Json{{"max_items", q.max_items},
                      {"capacity_bytes", q.capacity_bytes},
                      {"max_message", q.max_message},
                      {"visibility_timeout_ms", q.visibility_timeout_ms},
                      {"max_deliveries", q.max_deliveries}};
  j["corrupt"] = q.corrupt();
  j["problems"] = q.problems;
  return j;
}

// What a worker is doing, as its heartbeat says.
std::string worker_state(const rd::WorkerInfo& w) {
  if (w.corrupt()) return "corrupt";
  if (!w.ended.empty()) return "ending";
  if (w.silent) return "silent";
  return w.task != 0 ? "busy" : "idle";
}

Json worker_json(const rd::WorkerInfo& w) {
  return Json{{"name", w.name},
              {"host", w.host},
              {"pid", w.pid},
              {"process", process_state(w.host, w.pid)},
              {"state", worker_state(w)},
              {"started_ms", w.started_ms},
              {"tasks_done", w.tasks_done},
              {"task", w.task},
              {"running_ms", w.running_ms},
              {"heartbeat_age_ms", w.heartbeat_age_ms},
              {"pending", w.pending},
              {"silent", w.silent},
              {"ended", w.ended},
              {"heartbeat", w.heartbeat},
              {"corrupt", w.corrupt()},
              {"problems", w.problems}};
}

Json pool_json(const rd::PoolInfo& p) {
  Json j;
  j["name"] = p.name;
  j["kind"] = "pool";
  j["state"] = closed_text(p.closed);
  j["queued"] = p.queued;
  j["running"] = p.running;
  j["done"] = p.done;
  j["dead"] = p.dead;
  j["workers"] = p.worker_count;
  j["stream_length"] = p.stream_length;
  j["options"] = Json{{"max_message", p.max_message}, {"visibility_timeout_ms", p.visibility_timeout_ms}};
  j["corrupt"] = p.corrupt();
  j["problems"] = p.problems;
  return j;
}

// The workers of pools, one line each: what `ps` and `inspect` show.
void print_workers(std::ostream& out, const std::vector<std::pair<std::string, rd::WorkerInfo>>& rows, bool with_pool) {
  std::vector<std::string> header{"HOST", "PID", "PROCESS", "STATE", "DONE", "TASK", "RUNNING", "HEARTBEAT", "WORKER"};
  if (with_pool) header.insert(header.begin(), "POOL");
  Table t(header);
  for (const auto& [pool, w] : rows) {
    std::vector<std::string> row;
    if (with_pool) row.push_back(escape_text(pool));
    row.push_back(w.host.empty() ? "-" : escape_text(w.host));
    row.push_back(w.pid == 0 ? "-" : std::to_string(w.pid));
    if (w.corrupt()) {
      // A listing keeps one line per worker; inspect (no POOL column) shows every problem.
      std::string all;
      for (const auto& pr : w.problems) all += (all.empty() ? "" : "; ") + pr;
      row.push_back("corrupt: " + escape_text(with_pool ? problems_text(w.problems) : all) + " (" +
                    escape_text(w.name) + ")");
      t.add(std::move(row));
      continue;
    }
    const std::string process = process_state(w.host, w.pid);
    row.push_back(process == "unknown" ? "-" : process);
    row.push_back(w.ended.empty() ? worker_state(w) : "ending (" + escape_text(w.ended) + ")");
    row.push_back(std::to_string(w.tasks_done));
    row.push_back(w.task == 0 ? "-" : std::to_string(w.task));
    row.push_back(w.task == 0 ? "-" : idle_text(w.running_ms));
    row.push_back(idle_text(w.heartbeat_age_ms) + (w.silent ? " (silent)" : ""));
    row.push_back(escape_text(w.name));
    t.add(std::move(row));
  }
  t.print(out);
}

void print_pool(std::ostream& out, const rd::Hub& hub, const rd::PoolInfo& p) {
  const auto line = [&](const char* key, const std::string& value) {
    out << "  " << std::left << std::setw(20) << key << value << "\n";
  };
  out << "pool " << quote_text(p.name, '\'') << " on " << escape_text(hub.url()) << "\n";
  if (p.corrupt()) {
    out << "  corrupt:\n";
    for (const auto& pr : p.problems) out << "    " << escape_text(pr) << "\n";
  }
  line("state", closed_text(p.closed));
  line("queued", std::to_string(p.queued) + " (submitted, not taken by a worker)");
  line("running", std::to_string(p.running) + " (taken by a worker, not finished)");
  line("done", std::to_string(p.done));
  line("dead tasks", std::to_string(p.dead) + (p.dead == 0 ? "" : " (ipckit dead --redis URL NAME --pool)"));
  line("stream entries", std::to_string(p.stream_length));
  line("max_message", human_bytes(p.max_message));
  line("visibility_timeout", idle_text(static_cast<std::int64_t>(p.visibility_timeout_ms)));
  out << "workers (" << p.workers.size() << "):\n";
  if (!p.workers.empty()) {
    std::vector<std::pair<std::string, rd::WorkerInfo>> rows;
    for (const auto& w : p.workers) rows.emplace_back(p.name, w);
    print_workers(out, rows, false);
  }
  out << "clients (" << p.clients.size() << "):\n";
  if (!p.clients.empty()) {
    Table t({"UNREAD RESULTS", "CLIENT"});
    for (const auto& c : p.clients) t.add({std::to_string(c.results), escape_text(c.name)});
    t.print(out);
  }
}

Json pool_detail_json(const rd::Hub& hub, const rd::PoolInfo& p) {
  Json j = pool_json(p);
  Json ws = Json::array(), cs = Json::array();
  for (const auto& w : p.workers) ws.push_back(worker_json(w));
  for (const auto& c : p.clients) cs.push_back({{"name", c.name}, {"results", c.results}});
  j["workers"] = std::move(ws);
  j["clients"] = std::move(cs);
  j["server"] = hub.url();
  return j;
}

int run_ls(const RedisArgs& a) {
  const rd::Hub hub = open_hub(a);
  const auto queues = rd::list_queues(hub);
  const auto pools = rd::list_pools(hub);
  if (a.json) {
    Json list = Json::array(), plist = Json::array();
    for (const auto& q : queues) list.push_back(queue_json(q));
    for (const auto& p : pools) plist.push_back(pool_json(p));
    std::cout << dump(Json{{"server", hub.url()}, {"queues", std::move(list)}, {"pools", std::move(plist)}});
    return kExitOk;
  }
  if (queues.empty() && pools.empty()) {
    std::cout << "no ipckit queues or pools on " << escape_text(hub.url()) << "\n";
    return kExitOk;
  }
  Table t({"NAME", "KIND", "TYPE", "QUEUED", "PENDING", "CONSUMERS", "DEAD", "STATE"});
  for (const auto& q : queues) {
    if (q.corrupt()) {
      t.add({escape_text(q.name), "corrupt: " + escape_text(problems_text(q))});
      continue;
    }
    t.add({escape_text(q.name), q.kind, escape_text(type_text(q.type)), std::to_string(q.queued),
           std::to_string(q.pending), std::to_string(q.consumer_count), std::to_string(q.dead), state_text(q)});
  }
  // A pool's row: PENDING is its running tasks, CONSUMERS its workers.
  for (const auto& p : pools) {
    if (p.corrupt()) {
      t.add({escape_text(p.name), "pool", "corrupt: " + escape_text(problems_text(p.problems))});
      continue;
    }
    t.add({escape_text(p.name), "pool", "-", std::to_string(p.queued), std::to_string(p.running),
           std::to_string(p.worker_count), std::to_string(p.dead), closed_text(p.closed)});
  }
  t.print(std::cout);
  return kExitOk;
}

void print_consumers(std::ostream& out, const std::vector<std::pair<std::string, rd::ConsumerInfo>>& rows,
                     bool with_queue) {
  std::vector<std::string> header{"HOST", "PID", "PROCESS", "PENDING", "IDLE", "CONSUMER"};
  if (with_queue) header.insert(header.begin(), "QUEUE");
  Table t(header);
  for (const auto& [queue, c] : rows) {
    const std::string process = process_state(c);
    std::vector<std::string> row{c.host.empty() ? "-" : escape_text(c.host),
                                 c.pid == 0 ? "-" : std::to_string(c.pid),
                                 process == "unknown" ? "-" : process,
                                 std::to_string(c.pending),
                                 idle_text(c.idle_ms),
                                 escape_text(c.name)};
    if (with_queue) row.insert(row.begin(), escape_text(queue));
    t.add(std::move(row));
  }
  t.print(out);
}

void print_queue(std::ostream& out, const rd::Hub& hub, const rd::QueueInfo& q) {
  const auto line = [&](const char* key, const std::string& value) {
    out << "  " << std::left << std::setw(20) << key << value << "\n";
  };
  out << (q.kind == "queue" || q.kind.empty() ? ""
          : q.kind == "joinable_priority"     ? "joinable priority "
                                              : q.kind + " ")
      << "queue " << quote_text(q.name, '\'') << " on " << escape_text(hub.url()) << "\n";
  if (q.corrupt()) {
    out << "  corrupt:\n";
    for (const auto& p : q.problems) out << "    " << escape_text(p) << "\n";
  }
  line("kind", q.kind.empty() ? "?" : q.kind);
  line("type", q.type.empty() ? "?"
                              : escape_text(type_text(q.type)) +
                                    (type_text(q.type) != q.type ? " (" + escape_text(q.type) + ")" : ""));
  line("state", state_text(q));
  line("queued", std::to_string(q.queued) + " (" + human_bytes(q.queued_bytes) + ")");
  line("pending", std::to_string(q.pending) + " (delivered, not acknowledged)");
  if (q.kind == "joinable" || q.kind == "joinable_priority") line("unfinished", std::to_string(q.unfinished));
  line("dead letters", std::to_string(q.dead));
  line(q.kind.ends_with("priority") ? "ready set" : "stream entries", std::to_string(q.stream_length));
  line("max_items", bound_text(q.max_items));
  line("capacity_bytes", q.capacity_bytes == 0 ? "no bound" : human_bytes(q.capacity_bytes));
  line("max_message", human_bytes(q.max_message));
  line("visibility_timeout", idle_text(static_cast<std::int64_t>(q.visibility_timeout_ms)));
  line("max_deliveries", std::to_string(q.max_deliveries));
  out << "consumers (" << q.consumers.size() << "):\n";
  if (!q.consumers.empty()) {
    std::vector<std::pair<std::string, rd::ConsumerInfo>> rows;
    for (const auto& c : q.consumers) rows.emplace_back(q.name, c);
    print_consumers(out, rows, false);
  }
}

// One queue, one pool, or both when they share the name (--pool: the pool only).
int run_inspect(const RedisArgs& a) {
  if (a.names.size() != 1) return report("inspect --redis takes one queue or pool name");
  const rd::Hub hub = open_hub(a);
  const std::string& name = a.names.front();
  std::optional<rd::QueueInfo> queue;
  std::optional<rd::PoolInfo> pool;
  if (a.pool) {
    pool = rd::inspect_pool(hub, name);
  } else {
    try {
      queue = rd::inspect_queue(hub, name);
    } catch (const NotFound&) {  // NOLINT(bugprone-empty-catch): a pool may have the name
    }
    try {
      pool = rd::inspect_pool(hub, name);
    } catch (const NotFound&) {  // NOLINT(bugprone-empty-catch)
    }
    if (!queue && !pool)
      throw NotFound(
          name, "ipckit: no queue or pool named '" + name + "' on " + hub.url() + " (see `ipckit ls --redis URL`)");
  }
  if (a.json) {
    // A queue's object as before; a pool sharing its name rides along as "pool".
    Json j = pool ? pool_detail_json(hub, *pool) : Json();
    if (queue) {
      Json pj = std::move(j);
      j = queue_json(*queue);
      Json cs = Json::array();
      for (const auto& c : queue->consumers) cs.push_back(consumer_json(c));
      j["consumers"] = std::move(cs);
      j["server"] = hub.url();
      if (pool) j["pool"] = std::move(pj);
    }
    std::cout << dump(j);
    return kExitOk;
  }
  if (queue) print_queue(std::cout, hub, *queue);
  if (queue && pool) std::cout << "\n";
  if (pool) print_pool(std::cout, hub, *pool);
  return kExitOk;
}

int run_ps(const RedisArgs& a) {
  const rd::Hub hub = open_hub(a);
  std::vector<rd::QueueInfo> queues;
  std::vector<rd::PoolInfo> pools;
  if (!a.names.empty()) {
    // Each name a queue's, a pool's, or both.
    for (const auto& n : a.names) {
      bool found = false;
      try {
        queues.push_back(rd::inspect_queue(hub, n));
        found = true;
      } catch (const NotFound&) {  // NOLINT(bugprone-empty-catch): a pool may have the name
      }
      try {
        pools.push_back(rd::inspect_pool(hub, n));
        found = true;
      } catch (const NotFound&) {  // NOLINT(bugprone-empty-catch)
      }
      if (!found)
        throw NotFound(n,
                       "ipckit: no queue or pool named '" + n + "' on " + hub.url() + " (see `ipckit ls --redis URL`)");
    }
  } else {
    pools = rd::list_pools(hub);
    for (const auto& listed : rd::list_queues(hub)) {
      try {
        queues.push_back(rd::inspect_queue(hub, listed.name));
      } catch (const NotFound&) {
        // removed since it was listed
      }
    }
  }
  std::vector<std::pair<std::string, rd::ConsumerInfo>> rows;
  for (const auto& q : queues)
    for (const auto& c : q.consumers) rows.emplace_back(q.name, c);
  // The freshest heartbeat first within each queue.
  std::stable_sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) {
    return x.first != y.first ? x.first < y.first : x.second.idle_ms < y.second.idle_ms;
  });
  std::vector<std::pair<std::string, rd::WorkerInfo>> workers;
  for (const auto& p : pools)
    for (const auto& w : p.workers) workers.emplace_back(p.name, w);
  std::stable_sort(workers.begin(), workers.end(), [](const auto& x, const auto& y) {
    return x.first != y.first ? x.first < y.first : x.second.heartbeat_age_ms < y.second.heartbeat_age_ms;
  });
  if (a.json) {
    Json list = Json::array(), wlist = Json::array();
    for (const auto& [queue, c] : rows) {
      Json j{{"queue", queue}};
      j.update(consumer_json(c));
      list.push_back(std::move(j));
    }
    for (const auto& [pool, w] : workers) {
      Json j{{"pool", pool}};
      j.update(worker_json(w));
      wlist.push_back(std::move(j));
    }
    std::cout << dump(Json{{"server", hub.url()}, {"consumers", std::move(list)}, {"workers", std::move(wlist)}});
    return kExitOk;
  }
  if (rows.empty() && workers.empty()) {
    std::cout << "no consumers or pool workers on " << escape_text(hub.url()) << "\n";
    return kExitOk;
  }
  if (!rows.empty()) print_consumers(std::cout, rows, true);
  if (!rows.empty() && !workers.empty()) std::cout << "\n";
  if (!workers.empty()) print_workers(std::cout, workers, true);
  return kExitOk;
}

// A pool's tasks that failed with WorkerDied: their futures have failed,
// so there is nothing to requeue them into.
int run_dead_tasks(const RedisArgs& a, const rd::Hub& hub, const std::string& name) {
  if (a.requeue_opt->count() != 0)
    return report(
        "a pool's dead tasks cannot be requeued: their futures have already failed with WorkerDied "
        "(submit them again from a client)");
  const rd::PoolInfo p = rd::inspect_pool(hub, name);
  const auto tasks = rd::dead_tasks(hub, name, a.limit);
  if (a.json) {
    Json list = Json::array();
    for (const auto& d : tasks) {
      Json j{{"id", d.id},
             {"task_stream_id", d.task_stream_id},
             {"client", d.client},
             {"deliveries", d.deliveries},
             {"task", d.task},
             {"function", d.function},
             {"args_size", d.args_size},
             {"chunk", d.chunk}};
      if (!d.problem.empty()) j["problem"] = d.problem;
      list.push_back(std::move(j));
    }
    std::cout << dump(Json{{"server", hub.url()}, {"pool", name}, {"dead", p.dead}, {"dead_tasks", list}});
    return kExitOk;
  }
  std::cout << p.dead << " dead task" << (p.dead == 1 ? "" : "s") << " in pool " << quote_text(name, '\'');
  if (tasks.size() < p.dead) std::cout << " (the oldest " << tasks.size() << " shown; --limit 0 for all)";
  std::cout << "\n";
  if (tasks.empty()) return kExitOk;
  Table t({"ID", "TASK", "FUNCTION", "ARGS", "DELIVERIES", "CLIENT"});
  for (const auto& d : tasks)
    t.add({escape_text(d.id), std::to_string(d.task),
           d.problem.empty() ? escape_text(d.function) + (d.chunk ? " (map chunk)" : "") : "corrupt: " + d.problem,
           human_bytes(d.args_size), std::to_string(d.deliveries), escape_text(d.client)});
  t.print(std::cout);
  return kExitOk;
}

int run_dead(const RedisArgs& a) {
  const rd::Hub hub = open_hub(a);
  const std::string& name = a.names.front();
  if (a.pool) return run_dead_tasks(a, hub, name);
  if (a.requeue_opt->count() != 0) {
    // --requeue alone gives {} or {0} (CLI11's default): both mean all, as --limit 0 does.
    const std::size_t max = a.requeue.empty() || a.requeue.front() == 0 ? SIZE_MAX : a.requeue.front();
    const std::size_t n = rd::requeue_dead(hub, name, max);
    if (a.json) {
      std::cout << dump(Json{{"server", hub.url()}, {"queue", name}, {"requeued", n}});
    } else {
      std::cout << "requeued " << n << " dead letter" << (n == 1 ? "" : "s") << " to queue " << quote_text(name, '\'')
                << "\n";
    }
    return kExitOk;
  }
  const rd::QueueInfo q = rd::inspect_queue(hub, name);
  const auto letters = rd::dead_letters(hub, name, a.limit);
  if (a.json) {
    Json list = Json::array();
    for (const auto& d : letters)
      list.push_back({{"id", d.id},
                      {"original_id", d.original_id},
                      {"deliveries", d.deliveries},
                      {"size", d.size},
                      {"preview", d.preview}});
    std::cout << dump(Json{{"server", hub.url()}, {"queue", name}, {"dead", q.dead}, {"dead_letters", list}});
    return kExitOk;
  }
  std::cout << q.dead << " dead letter" << (q.dead == 1 ? "" : "s") << " in queue " << quote_text(name, '\'');
  if (letters.size() < q.dead) std::cout << " (the oldest " << letters.size() << " shown; --limit 0 for all)";
  std::cout << "\n";
  if (letters.empty()) return kExitOk;
  Table t({"ID", "ORIGINAL ID", "DELIVERIES", "SIZE", "PREVIEW"});
  // The preview is printable ASCII already (inspect.hpp).
  for (const auto& d : letters)
    t.add(
        {escape_text(d.id), escape_text(d.original_id), std::to_string(d.deliveries), human_bytes(d.size), d.preview});
  t.print(std::cout);
  return kExitOk;
}

int run_rm(const RedisArgs& a) {
  const rd::Hub hub = open_hub(a);
  int status = kExitOk;
  Json results = Json::array();
  for (const auto& name : a.names) {
    std::string result, message;
    try {
      result = (a.pool ? rd::remove_pool(hub, name) : rd::remove_queue(hub, name)) ? "removed" : "missing";
      if (result == "missing" && !a.force)
        message = std::string("no ") + (a.pool ? "pool" : "queue") + " named '" + name + "' on " + hub.url() +
                  " to remove (see `ipckit ls --redis URL`)";
    } catch (const Error& e) {
      result = "error";
      message = e.what();
    }
    if (!message.empty()) {
      status = kExitError;
      if (!a.json) (void)report(message);
    }
    Json r{{"name", name}, {"result", result}};
    if (!message.empty()) r["error"] = message;
    results.push_back(std::move(r));
  }
  if (a.json) std::cout << dump(Json{{"removed", std::move(results)}});
  return status;
}

#else  // without IPCKIT_WITH_REDIS

int not_built(const RedisArgs&) {
  return report(
      "this ipckit was built without Redis support (configure with -DIPCKIT_WITH_REDIS=ON; it needs "
      "hiredis: scripts/setup.sh installs libhiredis-dev)");
}
int run_ls(const RedisArgs& a) { return not_built(a); }
int run_inspect(const RedisArgs& a) { return not_built(a); }
int run_ps(const RedisArgs& a) { return not_built(a); }
int run_dead(const RedisArgs& a) { return not_built(a); }
int run_rm(const RedisArgs& a) { return not_built(a); }

#endif

// Runs `f`, reporting an ipckit error as every command does (one line, status 1).
std::function<int()> guarded(int (*f)(const RedisArgs&), const std::shared_ptr<RedisArgs>& a) {
  return [f, a] {
    try {
      return f(*a);
    } catch (const Error& e) {
      return report(e.what());
    }
  };
}

CLI::Option* add_url(CLI::App* sub, RedisArgs& a) {
  return sub
      ->add_option("--redis", a.url,
                   "Look at the queues and pools on this Redis server (redis://host:port/db) instead of shared memory; "
                   "alone (last, or --redis=): $IPCKIT_REDIS_URL")
      ->expected(0, 1)
      ->allow_extra_args(false);  // --redis URL NAME: NAME is the positional
}

}  // namespace

std::vector<RedisCommand> add_redis(CLI::App& app) {
  std::vector<RedisCommand> out;
  // The shared-memory subcommands' own options give a queue command its
  // arguments: one command line, read by whichever side runs.
  const auto flag = [](CLI::App* sub, const char* name) {
    const auto* o = sub->get_option_no_throw(name);
    return o != nullptr && o->count() != 0;
  };
  const auto positionals = [](CLI::App* sub, const char* name, std::vector<std::string>& into) {
    into.clear();
    if (const auto* o = sub->get_option_no_throw(name)) into = o->results();
  };
  for (const char* name : {"ls", "inspect", "ps", "rm"}) {
    CLI::App* sub = app.get_subcommand(name);
    auto a = std::make_shared<RedisArgs>();
    CLI::Option* url = add_url(sub, *a);
    if (std::string_view(name) == "inspect" || std::string_view(name) == "rm")
      sub->add_flag("--pool")
          ->description("With --redis: the pool NAME (ipckit:pool:{NAME}), not the queue")
          ->needs(url);
    int (*run)(const RedisArgs&) = std::string_view(name) == "ls"        ? run_ls
                                   : std::string_view(name) == "inspect" ? run_inspect
                                   : std::string_view(name) == "ps"      ? run_ps
                                                                         : run_rm;
    const auto inner = guarded(run, a);
    out.push_back({sub, url, [=] {
                     a->json = flag(sub, "--json");
                     a->force = flag(sub, "--force");
                     a->pool = flag(sub, "--pool");
                     positionals(sub, "segment", a->names);
                     if (flag(sub, "object") || flag(sub, "--limit"))
                       return report("inspect --redis takes a queue name only (no object, no --limit)");
                     return inner();
                   }});
  }

  auto a = std::make_shared<RedisArgs>();
  auto* dead = app.add_subcommand(
      "dead", "List a Redis queue's dead letters, or put them back (--requeue); a pool's dead tasks (--pool)");
  CLI::Option* url = add_url(dead, *a)->required();
  dead->add_option("queue", a->names, "Queue name")->required()->expected(1);
  dead->add_option("--limit", a->limit, "Dead letters to list, oldest first (0: all; default 20)");
  a->requeue_opt =
      dead->add_option("--requeue", a->requeue,
                       "Put the oldest N dead letters (all without N, or 0) back at the tail of the queue, "
                       "their delivery count reset")
          ->expected(0, 1)
          ->allow_extra_args(false);
  dead->add_flag("--json", a->json, "Print JSON instead of a table");
  dead->add_flag("--pool", a->pool, "The dead tasks of the pool NAME (failed with WorkerDied), not a queue's");
  out.push_back({dead, url, guarded(run_dead, a)});
  return out;
}

}  // namespace ipckit::cli
