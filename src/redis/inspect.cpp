// src/redis/inspect.cpp — reading a Redis queue's keys (stream_scripts.hpp,
// priority_scripts.hpp have their layouts) without opening it, and the
// readers inspect_pool.cpp shares (inspect_read.hpp). Every reply is checked
// for its shape: a key of ipckit's naming may hold anything.
#include "ipckit/redis/inspect.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <set>

#include "connection.hpp"
#include "inspect_read.hpp"
#include "ipckit/error.hpp"
#include "priority_scripts.hpp"
#include "stream_scripts.hpp"

namespace ipckit::redis::detail::inspect_read {

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// An integer reply, or a string of digits (RESP2 sends some counts as text).
std::optional<std::uint64_t> as_u64(const redisReply* r) {
  if (r == nullptr) return std::nullopt;
  if (r->type == REDIS_REPLY_INTEGER) {
    if (r->integer < 0) return std::nullopt;
    return static_cast<std::uint64_t>(r->integer);
  }
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) return parse_u64(reply_text(*r));
  return std::nullopt;
}

bool is_text(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

// A value as a problem message shows it: cut, the rest left to the printer's escaping.
std::string shown(std::string_view v) { return "'" + std::string(v.substr(0, 40)) + (v.size() > 40 ? "...'" : "'"); }

// A flat [field, value, field, value...] array (HGETALL, XINFO in RESP2) as a
// map of its text fields; entries that are not text pairs are left out.
std::map<std::string, const redisReply*, std::less<>> fields_of(const redisReply& r) {
  std::map<std::string, const redisReply*, std::less<>> out;
  if (r.type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i + 1 < r.elements; i += 2)
    if (is_text(r.element[i])) out.emplace(std::string(reply_text(*r.element[i])), r.element[i + 1]);
  return out;
}

// host/pid/random/x (new_client_base), the host being whatever comes before
// the last three parts; host and pid stay empty and 0 for another form.
void parse_client_name(std::string_view n, std::string& host, std::int64_t& pid) {
  const auto s3 = n.rfind('/');
  const auto s2 = s3 == std::string_view::npos || s3 == 0 ? std::string_view::npos : n.rfind('/', s3 - 1);
  const auto s1 = s2 == std::string_view::npos || s2 == 0 ? std::string_view::npos : n.rfind('/', s2 - 1);
  if (s1 == std::string_view::npos || s1 == 0) return;
  const auto p = parse_u64(n.substr(s1 + 1, s2 - s1 - 1));
  if (!p || *p == 0 || *p > INT32_MAX) return;
  host = std::string(n.substr(0, s1));
  pid = static_cast<std::int64_t>(*p);
}

// The keys matching `pattern` that hold a hash, by SCAN (each key once).
std::vector<std::string> scan_hashes(Reader& rd, const std::string& pattern) {
  std::set<std::string> keys;
  std::string cursor = "0";
  do {
    const Reply r = rd.call({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000", "TYPE", "hash"});
    if (r->type == REDIS_REPLY_ERROR) detail::raise_reply_error(*r, rd.label(), "SCAN");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || !is_text(r->element[0]) ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
      throw SystemError(rd.label(), "ipckit: " + rd.label() + ": unexpected reply to SCAN");
    cursor = std::string(reply_text(*r->element[0]));
    const redisReply& batch = *r->element[1];
    for (std::size_t i = 0; i < batch.elements; ++i)
      if (is_text(batch.element[i])) keys.emplace(reply_text(*batch.element[i]));
  } while (cursor != "0");
  return {keys.begin(), keys.end()};
}

}  // namespace ipckit::redis::detail::inspect_read

namespace ipckit::redis {
namespace {

using namespace detail::inspect_read;  // NOLINT(google-build-using-namespace): this file's own helpers
using detail::Connection;
using detail::Deadline;
using detail::Reply;
using detail::reply_text;
using Args = Connection::Args;

constexpr std::string_view kKeyPrefix = "ipckit:{";
constexpr std::size_t kPreviewBytes = 48;
constexpr std::size_t kRequeueBatch = 1000;  // dead letters per script: a script holds the server

std::string meta_key(std::string_view name) { return std::string(kKeyPrefix) + std::string(name) + "}"; }

// The queue a key names, if it is a queue's meta hash: "ipckit:{NAME}" and
// nothing after (not ":items", not ":producers", not another prefix).
std::optional<std::string> queue_name_of(std::string_view key) {
  if (!key.starts_with(kKeyPrefix) || !key.ends_with("}")) return std::nullopt;
  const std::string_view name = key.substr(kKeyPrefix.size(), key.size() - kKeyPrefix.size() - 1);
  if (name.empty() || name.find_first_of("{}") != std::string_view::npos) return std::nullopt;
  return std::string(name);
}

// A name the CLI was given: one that can form a queue's keys.
std::string checked(std::string_view name) {
  if (name.empty() || name.find_first_of("{}") != std::string_view::npos)
    throw InvalidName(std::string(name), "ipckit: '" + std::string(name) +
                                             "' cannot be a Redis queue name (empty, or with '{' or '}'); "
                                             "see `ipckit ls --redis URL`");
  return std::string(name);
}

std::string label_of(const Hub& hub, std::string_view name) {
  return "queue '" + std::string(name) + "' on " + hub.url();
}

Reader reader(const Hub& hub, std::string_view name) { return Reader(hub, label_of(hub, name)); }

// Fills the meta fields of `q` from its hash; false when it does not exist.
bool read_meta(Reader& rd, QueueInfo& q) {
  const Reply r = rd.call({"HGETALL", q.key});
  if (r->type == REDIS_REPLY_ERROR) {
    if (reply_text(*r).starts_with("WRONGTYPE")) {
      q.problems.push_back(q.key + " is not a hash");
      return true;
    }
    detail::raise_reply_error(*r, rd.label(), "HGETALL");
  }
  if (r->type != REDIS_REPLY_ARRAY) {
    q.problems.push_back("HGETALL " + q.key + " did not answer a list");
    return true;
  }
  if (r->elements == 0) return false;
  const auto f = fields_of(*r);
  const auto text = [&](const char* field) -> std::optional<std::string> {
    const auto it = f.find(field);
    if (it == f.end() || !is_text(it->second)) {
      q.problems.push_back(std::string("field '") + field + "' is missing");
      return std::nullopt;
    }
    return std::string(reply_text(*it->second));
  };
  const auto number = [&](const char* field, std::uint64_t& out) {
    const auto v = text(field);
    if (!v) return;
    if (const auto n = parse_u64(*v)) {
      out = *n;
    } else {
      q.problems.push_back(std::string("field '") + field + "' is " + shown(*v) + ", not a number");
    }
  };
  if (const auto v = text("layout")) {
    q.layout = *v;
    if (*v != detail::kQueueLayout)
      q.problems.push_back("layout " + shown(*v) + " is not one this ipckit reads (" + detail::kQueueLayout + ")");
  }
  if (const auto v = text("kind")) {
    if (*v == "queue" || *v == "joinable" || *v == "priority" || *v == "joinable_priority") {
      q.kind = *v;
    } else {
      q.problems.push_back("kind " + shown(*v) + " is not 'queue', 'joinable', 'priority' or 'joinable_priority'");
    }
  }
  if (const auto v = text("type")) q.type = *v;
  number("max_items", q.max_items);
  number("max_bytes", q.capacity_bytes);
  number("max_message", q.max_message);
  number("vis_ms", q.visibility_timeout_ms);
  number("max_deliveries", q.max_deliveries);
  number("queued", q.queued);
  number("qbytes", q.queued_bytes);
  number("unfinished", q.unfinished);
  std::uint64_t closed = 0;
  number("closed", closed);
  if (closed > 2) {
    q.problems.push_back("field 'closed' is " + std::to_string(closed) + ", not 0, 1 or 2");
  } else {
    q.closed = static_cast<int>(closed);
  }
  return true;
}

bool is_priority(const QueueInfo& q) { return q.kind == "priority" || q.kind == "joinable_priority"; }

// A priority queue's sets: waiting ids, leased ids, and who holds them.
void read_priority(Reader& rd, QueueInfo& q, bool with_consumers) {
  const auto count = [&](const char* cmd, const std::string& key) -> std::uint64_t {
    const Reply r = rd.call({cmd, key});
    if (r->type == REDIS_REPLY_ERROR) {
      q.problems.push_back(key + " is not a " + (std::string_view(cmd) == "ZCARD" ? "sorted set" : "hash"));
      return 0;
    }
    return as_u64(r.get()).value_or(0);
  };
  q.stream_length = count("ZCARD", q.key + ":ready");
  q.pending = count("ZCARD", q.key + ":leases");
  q.consumer_count = count("HLEN", q.key + ":holds");
  if (!with_consumers) return;
  const Reply r = rd.call({"HGETALL", q.key + ":holds"});
  if (r->type != REDIS_REPLY_ARRAY) return;
  for (const auto& [name, held] : fields_of(*r)) {
    ConsumerInfo info;
    info.name = name;
    info.pending = is_text(held) ? reply_text(*held).size() / 16 : 0;  // 16-byte ids, concatenated
    info.idle_ms = -1;
    parse_client_name(info.name, info.host, info.pid);
    q.consumers.push_back(std::move(info));
  }
  q.consumer_count = q.consumers.size();  // fields_of sorted them by name
}

// The items stream: its length, its group's pending count and consumers.
void read_stream(Reader& rd, QueueInfo& q, bool with_consumers) {
  if (is_priority(q)) {
    read_priority(rd, q, with_consumers);
    return;
  }
  const std::string items = q.key + ":items";
  const Reply len = rd.call({"XLEN", items});
  if (len->type == REDIS_REPLY_ERROR) {
    q.problems.push_back(items + " is not a stream");
    return;
  }
  q.stream_length = as_u64(len.get()).value_or(0);
  const Reply groups = rd.call({"XINFO", "GROUPS", items});
  if (groups->type == REDIS_REPLY_ERROR || groups->type != REDIS_REPLY_ARRAY) {
    q.problems.push_back(items + " is missing");  // "ERR no such key"
    return;
  }
  bool found = false;
  for (std::size_t i = 0; i < groups->elements; ++i) {
    const auto g = fields_of(*groups->element[i]);
    const auto name = g.find("name");
    if (name == g.end() || !is_text(name->second) || reply_text(*name->second) != "ipckit") continue;
    found = true;
    const auto pending = g.find("pending");
    const auto consumers = g.find("consumers");
    q.pending = pending == g.end() ? 0 : as_u64(pending->second).value_or(0);
    q.consumer_count = consumers == g.end() ? 0 : as_u64(consumers->second).value_or(0);
  }
  if (!found) {
    q.problems.push_back(items + " has no consumer group 'ipckit'");
    return;
  }
  if (!with_consumers) return;
  const Reply cs = rd.call({"XINFO", "CONSUMERS", items, "ipckit"});
  if (cs->type != REDIS_REPLY_ARRAY) return;
  for (std::size_t i = 0; i < cs->elements; ++i) {
    const auto c = fields_of(*cs->element[i]);
    const auto name = c.find("name");
    if (name == c.end() || !is_text(name->second)) continue;
    ConsumerInfo info;
    info.name = std::string(reply_text(*name->second));
    if (const auto p = c.find("pending"); p != c.end()) info.pending = as_u64(p->second).value_or(0);
    if (const auto idle = c.find("idle"); idle != c.end())
      info.idle_ms = static_cast<std::int64_t>(std::min<std::uint64_t>(as_u64(idle->second).value_or(0), INT64_MAX));
    parse_client_name(info.name, info.host, info.pid);
    q.consumers.push_back(std::move(info));
  }
  std::sort(q.consumers.begin(), q.consumers.end(),
            [](const ConsumerInfo& a, const ConsumerInfo& b) { return a.name < b.name; });
  q.consumer_count = q.consumers.size();
}

void read_dead_count(Reader& rd, QueueInfo& q) {
  const Reply r = rd.call({"XLEN", q.key + ":dead"});
  if (r->type == REDIS_REPLY_ERROR) {
    q.problems.push_back(q.key + ":dead is not a stream");
    return;
  }
  q.dead = as_u64(r.get()).value_or(0);
}

// nullopt: no such queue (or gone since it was listed).
std::optional<QueueInfo> read_queue(Reader& rd, const std::string& name, bool with_consumers) {
  QueueInfo q;
  q.name = name;
  q.key = meta_key(name);
  if (!read_meta(rd, q)) return std::nullopt;
  read_stream(rd, q, with_consumers);
  read_dead_count(rd, q);
  return q;
}

std::string preview_of(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : bytes.substr(0, kPreviewBytes)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (bytes.size() > kPreviewBytes) out += "...";
  return out;
}

[[noreturn]] void no_queue(const Hub& hub, std::string_view name) {
  throw NotFound(std::string(name), "ipckit: no queue named '" + std::string(name) + "' on " + hub.url() +
                                        " (see `ipckit ls --redis URL`)");
}

}  // namespace

std::vector<QueueInfo> list_queues(const Hub& hub) {
  Reader rd(hub);
  std::vector<QueueInfo> out;
  for (const std::string& key : scan_hashes(rd, std::string(kKeyPrefix) + "*")) {
    const auto name = queue_name_of(key);
    if (!name) continue;  // ipckit:{x}:producers and the like
    if (auto q = read_queue(rd, *name, false)) out.push_back(std::move(*q));
  }
  return out;  // sorted: scan_hashes sorts the keys, and so their names
}

QueueInfo inspect_queue(const Hub& hub, std::string_view name) {
  Reader rd = reader(hub, name);
  auto q = read_queue(rd, checked(name), true);
  if (!q) no_queue(hub, name);
  return std::move(*q);
}

std::vector<DeadLetter> dead_letters(const Hub& hub, std::string_view name, std::size_t max) {
  Reader rd = reader(hub, name);
  const std::string key = meta_key(checked(name));
  const Reply exists = rd.call({"EXISTS", key});
  if (as_u64(exists.get()).value_or(0) == 0) no_queue(hub, name);
  Args argv{"XRANGE", key + ":dead", "-", "+"};
  if (max != 0) argv.insert(argv.end(), {"COUNT", std::to_string(max)});
  const Reply r = rd.call(argv);
  if (r->type == REDIS_REPLY_ERROR) detail::raise_reply_error(*r, rd.label(), "XRANGE of its dead letters");
  std::vector<DeadLetter> out;
  if (r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || !is_text(e->element[0])) continue;
    DeadLetter d;
    d.id = std::string(reply_text(*e->element[0]));
    const auto f = fields_of(*e->element[1]);
    if (const auto it = f.find("id"); it != f.end() && is_text(it->second))
      d.original_id = std::string(reply_text(*it->second));
    if (const auto it = f.find("n"); it != f.end()) d.deliveries = as_u64(it->second).value_or(0);
    if (const auto it = f.find("d"); it != f.end() && is_text(it->second))
      d.payload = std::string(reply_text(*it->second));
    d.size = d.payload.size();
    d.preview = preview_of(d.payload);
    out.push_back(std::move(d));
  }
  return out;
}

std::size_t requeue_dead(const Hub& hub, std::string_view name, std::size_t max) {
  Reader rd = reader(hub, name);
  const std::string key = meta_key(checked(name));
  const Reply kind = rd.call({"HGET", key, "kind"});
  const bool priority =
      is_text(kind.get()) && (reply_text(*kind) == "priority" || reply_text(*kind) == "joinable_priority");
  std::size_t total = 0;
  while (total < max) {
    const std::size_t batch = std::min(kRequeueBatch, max - total);
    Args argv{key, key + ":items", key + ":dead", std::to_string(batch)};
    if (priority) {  // its nine keys, in priority_scripts.hpp's order
      argv = {key};
      for (const char* k : {":ready", ":data", ":leases", ":deliv", ":dead", ":producers", ":wake", ":holds"})
        argv.push_back(key + k);
      argv.push_back(std::to_string(batch));
    }
    const Reply r = priority
                        ? rd.conn().eval(detail::kPriorityRequeueScript, detail::kPriorityKeys, argv, Deadline::now())
                        : rd.conn().eval(detail::kRequeueScript, 3, argv, Deadline::now());
    if (r->type == REDIS_REPLY_ERROR) detail::raise_reply_error(*r, rd.label(), "the requeue script");
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 || !is_text(r->element[0]))
      throw SystemError(std::string(name), "ipckit: " + rd.label() + ": unexpected reply to the requeue script");
    const std::string_view what = reply_text(*r->element[0]);
    if (what == "gone") no_queue(hub, name);
    if (what == "closed")
      throw Closed(std::string(name), "ipckit: " + rd.label() +
                                          " is closed; its dead letters cannot go back into it (remove it, or "
                                          "read them with `ipckit dead --redis URL " +
                                          std::string(name) + "`)");
    const std::size_t n = r->elements > 1 ? as_u64(r->element[1]).value_or(0) : 0;
    total += n;
    if (n < batch) break;
  }
  return total;
}

bool remove_queue(const Hub& hub, std::string_view name) {
  Hub h = hub;
  return h.remove(checked(name));
}

}  // namespace ipckit::redis
