// src/redis/inspect_pool.cpp — reading a Redis pool's keys
// (pool_scripts.hpp has their layout) without opening it: its counts, its
// workers' heartbeats, its clients, its dead tasks.
#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "inspect_read.hpp"
#include "ipckit/error.hpp"
#include "ipckit/redis/inspect.hpp"
#include "pool_common.hpp"
#include "pool_scripts.hpp"

namespace ipckit::redis {
namespace {

using namespace detail::inspect_read;  // NOLINT(google-build-using-namespace): the shared readers
using detail::Reply;
using detail::reply_text;

constexpr std::string_view kPoolPrefix = "ipckit:pool:{";

std::string pool_key(std::string_view name) { return std::string(kPoolPrefix) + std::string(name) + "}"; }

std::optional<std::string> pool_name_of(std::string_view key) {
  if (!key.starts_with(kPoolPrefix) || !key.ends_with("}")) return std::nullopt;
  const std::string_view name = key.substr(kPoolPrefix.size(), key.size() - kPoolPrefix.size() - 1);
  if (name.empty() || name.find_first_of("{}") != std::string_view::npos) return std::nullopt;
  return std::string(name);
}

std::string checked_pool(std::string_view name) {
  if (name.empty() || name.find_first_of("{}") != std::string_view::npos)
    throw InvalidName(std::string(name), "ipckit: '" + std::string(name) +
                                             "' cannot be a Redis pool name (empty, or with '{' or '}'); "
                                             "see `ipckit ls --redis URL`");
  return std::string(name);
}

[[noreturn]] void no_pool(const Hub& hub, std::string_view name) {
  throw NotFound(std::string(name), "ipckit: no pool named '" + std::string(name) + "' on " + hub.url() +
                                        " (see `ipckit ls --redis URL`)");
}

// A SCAN pattern matching `text` literally.
std::string glob_escaped(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The server's clock in unix ms: heartbeats are stamped with it (seen=), so
// their age does not depend on this host's clock.
std::optional<std::int64_t> server_now_ms(Reader& rd) {
  const Reply r = rd.call({"TIME"});
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) return std::nullopt;
  const auto s = as_u64(r->element[0]), us = as_u64(r->element[1]);
  if (!s || !us || *s > INT64_MAX / 1000 - 1) return std::nullopt;
  return static_cast<std::int64_t>(*s * 1000 + *us / 1000);
}

// Fills the meta fields of `p`; false when it does not exist.
bool read_pool_meta(Reader& rd, PoolInfo& p) {
  const Reply r = rd.call({"HGETALL", p.key});
  if (r->type == REDIS_REPLY_ERROR) {
    if (reply_text(*r).starts_with("WRONGTYPE")) {
      p.problems.push_back(p.key + " is not a hash");
      return true;
    }
    detail::raise_reply_error(*r, rd.label(), "HGETALL");
  }
  if (r->type != REDIS_REPLY_ARRAY) {
    p.problems.push_back("HGETALL " + p.key + " did not answer a list");
    return true;
  }
  if (r->elements == 0) return false;
  const auto f = fields_of(*r);
  const auto number = [&](const char* field, std::uint64_t& out) {
    const auto it = f.find(field);
    if (it == f.end() || !is_text(it->second)) {
      p.problems.push_back(std::string("field '") + field + "' is missing");
      return;
    }
    const std::string_view v = reply_text(*it->second);
    if (const auto n = parse_u64(v)) {
      out = *n;
    } else {
      p.problems.push_back(std::string("field '") + field + "' is " + shown(v) + ", not a number");
    }
  };
  if (const auto it = f.find("layout"); it == f.end() || !is_text(it->second)) {
    p.problems.push_back("field 'layout' is missing");
  } else {
    p.layout = std::string(reply_text(*it->second));
    if (p.layout != detail::kPoolLayout)
      p.problems.push_back("layout " + shown(p.layout) + " is not one this ipckit reads (" + detail::kPoolLayout + ")");
  }
  number("max_message", p.max_message);
  number("vis_ms", p.visibility_timeout_ms);
  number("queued", p.queued);
  number("done", p.done);
  std::uint64_t closed = 0;
  number("closed", closed);
  if (closed > 2) {
    p.problems.push_back("field 'closed' is " + std::to_string(closed) + ", not 0, 1 or 2");
  } else {
    p.closed = static_cast<int>(closed);
  }
  return true;
}

// The tasks stream: its length, the group's pending count, each worker's.
std::map<std::string, std::uint64_t, std::less<>> read_tasks(Reader& rd, PoolInfo& p) {
  std::map<std::string, std::uint64_t, std::less<>> leased;
  const std::string tasks = p.key + ":tasks";
  const Reply len = rd.call({"XLEN", tasks});
  if (len->type == REDIS_REPLY_ERROR) {
    p.problems.push_back(tasks + " is not a stream");
    return leased;
  }
  p.stream_length = as_u64(len.get()).value_or(0);
  const Reply groups = rd.call({"XINFO", "GROUPS", tasks});
  if (groups->type != REDIS_REPLY_ARRAY) {
    p.problems.push_back(tasks + " is missing");
    return leased;
  }
  bool found = false;
  for (std::size_t i = 0; i < groups->elements; ++i) {
    const auto g = fields_of(*groups->element[i]);
    const auto name = g.find("name");
    if (name == g.end() || !is_text(name->second) || reply_text(*name->second) != "workers") continue;
    found = true;
    if (const auto pending = g.find("pending"); pending != g.end()) p.running = as_u64(pending->second).value_or(0);
  }
  if (!found) {
    p.problems.push_back(tasks + " has no consumer group 'workers'");
    return leased;
  }
  const Reply cs = rd.call({"XINFO", "CONSUMERS", tasks, "workers"});
  if (cs->type != REDIS_REPLY_ARRAY) return leased;
  for (std::size_t i = 0; i < cs->elements; ++i) {
    const auto c = fields_of(*cs->element[i]);
    const auto name = c.find("name");
    const auto pending = c.find("pending");
    if (name == c.end() || !is_text(name->second) || pending == c.end()) continue;
    leased[std::string(reply_text(*name->second))] = as_u64(pending->second).value_or(0);
  }
  return leased;
}

// "pid=..;started=..;tasks=..;task=..;since=..;seen=.." (pool_worker.cpp and
// the take script), or "ended=timeout;seen=.." from a worker ending.
void parse_heartbeat(WorkerInfo& w, std::optional<std::int64_t> now, std::uint64_t vis_ms) {
  std::map<std::string, std::string, std::less<>> kv;
  std::string_view rest = w.heartbeat;
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    const std::string_view part = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    const auto eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      w.problems.push_back("heartbeat part " + shown(part) + " is not key=value");
      continue;
    }
    kv[std::string(part.substr(0, eq))] = std::string(part.substr(eq + 1));
  }
  const auto number = [&](const char* key) -> std::optional<std::uint64_t> {
    const auto it = kv.find(key);
    if (it == kv.end()) {
      w.problems.push_back(std::string("heartbeat has no '") + key + "'");
      return std::nullopt;
    }
    const auto n = parse_u64(it->second);
    if (!n || *n > static_cast<std::uint64_t>(INT64_MAX)) {
      w.problems.push_back(std::string("heartbeat '") + key + "' is " + shown(it->second) + ", not a number");
      return std::nullopt;
    }
    return n;
  };
  const auto seen = number("seen");
  if (seen && now) w.heartbeat_age_ms = std::max<std::int64_t>(0, *now - static_cast<std::int64_t>(*seen));
  if (w.heartbeat_age_ms >= 0 && vis_ms > 0 && static_cast<std::uint64_t>(w.heartbeat_age_ms) > vis_ms) w.silent = true;
  if (const auto it = kv.find("ended"); it != kv.end()) {
    w.ended = it->second.empty() ? "?" : it->second;
    return;  // a worker ending says no more
  }
  if (const auto pid = number("pid")) {
    if (*pid == 0 || *pid > INT32_MAX) {
      w.problems.push_back("heartbeat 'pid' is " + std::to_string(*pid) + ", not a process id");
    } else {
      w.pid = static_cast<std::int64_t>(*pid);
    }
  }
  if (const auto v = number("started")) w.started_ms = static_cast<std::int64_t>(*v);
  if (const auto v = number("tasks")) w.tasks_done = *v;
  const auto task = number("task");
  const auto since = number("since");
  if (task) w.task = *task;
  if (task && *task != 0 && since && *since != 0 && now)
    w.running_ms = std::max<std::int64_t>(0, *now - static_cast<std::int64_t>(*since));
}

void read_workers(Reader& rd, PoolInfo& p, const std::map<std::string, std::uint64_t, std::less<>>& leased) {
  const std::string key = p.key + ":workers";
  const Reply r = rd.call({"HGETALL", key});
  if (r->type != REDIS_REPLY_ARRAY) {
    if (r->type == REDIS_REPLY_ERROR) p.problems.push_back(key + " is not a hash");
    return;
  }
  const auto now = server_now_ms(rd);
  for (const auto& [name, value] : fields_of(*r)) {
    WorkerInfo w;
    w.name = name;
    std::int64_t name_pid = 0;
    parse_client_name(w.name, w.host, name_pid);
    if (const auto it = leased.find(name); it != leased.end()) w.pending = it->second;
    if (!is_text(value)) {
      w.problems.push_back("heartbeat is not text");
    } else {
      w.heartbeat = std::string(reply_text(*value));
      parse_heartbeat(w, now, p.visibility_timeout_ms);
    }
    if (w.pid == 0) w.pid = name_pid;  // an ending or corrupt heartbeat: its name's
    p.workers.push_back(std::move(w));
  }
  p.worker_count = p.workers.size();  // fields_of sorted them by name
}

// Its clients: those that submitted (the :producers hash) and those with
// results waiting (a result stream outlives its client by a day).
void read_clients(Reader& rd, PoolInfo& p) {
  const std::string prefix = p.key + ":results:";
  std::set<std::string> names;
  if (const Reply r = rd.call({"HKEYS", p.key + ":producers"}); r->type == REDIS_REPLY_ARRAY)
    for (std::size_t i = 0; i < r->elements; ++i)
      if (is_text(r->element[i])) names.emplace(reply_text(*r->element[i]));
  std::string cursor = "0";
  do {
    const Reply r = rd.call({"SCAN", cursor, "MATCH", glob_escaped(prefix) + "*", "COUNT", "1000", "TYPE", "stream"});
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_text(r->element[0]) ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
      break;
    cursor = std::string(reply_text(*r->element[0]));
    for (std::size_t i = 0; i < r->element[1]->elements; ++i)
      if (is_text(r->element[1]->element[i]))
        names.emplace(std::string(reply_text(*r->element[1]->element[i])).substr(prefix.size()));
  } while (cursor != "0");
  for (const auto& n : names) {
    const Reply len = rd.call({"XLEN", prefix + n});
    p.clients.push_back({n, as_u64(len.get()).value_or(0)});  // 0: none yet, or not a stream
  }
}

std::optional<PoolInfo> read_pool(Reader& rd, const std::string& name, bool with_clients) {
  PoolInfo p;
  p.name = name;
  p.key = pool_key(name);
  if (!read_pool_meta(rd, p)) return std::nullopt;
  const auto leased = read_tasks(rd, p);
  const Reply dead = rd.call({"XLEN", p.key + ":dead"});
  if (dead->type == REDIS_REPLY_ERROR) {
    p.problems.push_back(p.key + ":dead is not a stream");
  } else {
    p.dead = as_u64(dead.get()).value_or(0);
  }
  read_workers(rd, p, leased);
  if (with_clients) read_clients(rd, p);
  return p;
}

}  // namespace

std::vector<PoolInfo> list_pools(const Hub& hub) {
  Reader rd(hub);
  std::vector<PoolInfo> out;
  for (const std::string& key : scan_hashes(rd, std::string(kPoolPrefix) + "*")) {
    const auto name = pool_name_of(key);
    if (!name) continue;  // its :workers and :producers hashes
    if (auto p = read_pool(rd, *name, false)) out.push_back(std::move(*p));
  }
  return out;
}

PoolInfo inspect_pool(const Hub& hub, std::string_view name) {
  Reader rd(hub, "pool '" + std::string(name) + "' on " + hub.url());
  auto p = read_pool(rd, checked_pool(name), true);
  if (!p) no_pool(hub, name);
  return std::move(*p);
}

std::vector<DeadTask> dead_tasks(const Hub& hub, std::string_view name, std::size_t max) {
  Reader rd(hub, "pool '" + std::string(name) + "' on " + hub.url());
  const std::string key = pool_key(checked_pool(name));
  const Reply exists = rd.call({"EXISTS", key});
  if (as_u64(exists.get()).value_or(0) == 0) no_pool(hub, name);
  Args argv{"XRANGE", key + ":dead", "-", "+"};
  if (max != 0) argv.insert(argv.end(), {"COUNT", std::to_string(max)});
  const Reply r = rd.call(argv);
  if (r->type == REDIS_REPLY_ERROR) detail::raise_reply_error(*r, rd.label(), "XRANGE of its dead tasks");
  std::vector<DeadTask> out;
  if (r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !is_text(e->element[0])) continue;
    DeadTask d;
    d.id = std::string(reply_text(*e->element[0]));
    const auto f = fields_of(*e->element[1]);
    const auto text = [&](const char* field) {
      const auto it = f.find(field);
      return it != f.end() && is_text(it->second) ? std::string(reply_text(*it->second)) : std::string();
    };
    d.task_stream_id = text("id");
    d.client = text("c");
    if (const auto it = f.find("n"); it != f.end()) d.deliveries = as_u64(it->second).value_or(0);
    detail::TaskRecord t;
    if (const auto it = f.find("t"); it == f.end() || !is_text(it->second)) {
      d.problem = "no task record";
    } else if (!detail::decode_task(reply_text(*it->second), t)) {
      d.problem = "the task record does not decode";
    } else {
      d.task = t.id;
      d.function = std::string(t.name);
      d.args_size = t.args.size();
      d.chunk = t.chunk;
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace ipckit::redis
