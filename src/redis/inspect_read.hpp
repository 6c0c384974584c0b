// src/redis/inspect_read.hpp — what inspect.cpp (queues) and
// inspect_pool.cpp (pools) share: one connection bounded per read, and
// checked readings of replies (a key of ipckit's naming may hold anything).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "connection.hpp"
#include "ipckit/redis/hub.hpp"

namespace ipckit::redis::detail::inspect_read {

using Args = Connection::Args;

std::optional<std::uint64_t> parse_u64(std::string_view s);
// An integer reply, or a string of digits (RESP2 sends some counts as text).
std::optional<std::uint64_t> as_u64(const redisReply* r);
bool is_text(const redisReply* r);
// A value as a problem message shows it: cut, the rest left to the printer's escaping.
std::string shown(std::string_view v);
// A flat [field, value, field, value...] array (HGETALL, XINFO in RESP2) as a
// map of its text fields; entries that are not text pairs are left out.
std::map<std::string, const redisReply*, std::less<>> fields_of(const redisReply& r);
// host/pid/random/x (new_client_base), the host being whatever comes before
// the last three parts; host and pid stay empty and 0 for another form.
void parse_client_name(std::string_view n, std::string& host, std::int64_t& pid);

class Reader {
 public:
  Reader(const Hub& hub, std::string label) : conn_(hub.state(), std::move(label)) {}
  explicit Reader(const Hub& hub) : conn_(hub.state(), "the Redis server at " + hub.url()) {}

  // One command, one round trip bounded by nowait_timeout; an error reply is returned.
  Reply call(Args argv) { return conn_.call(argv, Deadline::now()); }
  Connection& conn() { return conn_; }
  const std::string& label() const { return conn_.label(); }

 private:
  Connection conn_;
};

// The keys matching `pattern` that hold a hash, by SCAN (each key once), sorted.
std::vector<std::string> scan_hashes(Reader& rd, const std::string& pattern);

}  // namespace ipckit::redis::detail::inspect_read
