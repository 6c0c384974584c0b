// src/redis/connection.hpp — one connection to a Redis server that survives
// losing it: every call reconnects and sends again, with backoff, until its
// deadline; then ConnectionLost. Follows Redis Cluster's MOVED and ASK.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ipckit/detail/deadline.hpp"
#include "ipckit/redis/hub.hpp"
#include "url.hpp"

namespace ipckit::redis::detail {

using ipckit::detail::Deadline;

struct HubState {
  Endpoint endpoint;
  HubOptions options;
  std::string url;          // endpoint.shown
  std::string client_base;  // host/pid/random: consumer names start with it
};

// host/pid/random: unique per process (a forked child calls it again).
std::string new_client_base();

struct ReplyFree {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// A Lua script, run by EVALSHA (loaded on first use and again after NOSCRIPT).
struct Script {
  const char* name;  // for messages
  const char* text;
};

class Connection {
 public:
  Connection(std::shared_ptr<const HubState> hub, std::string label);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  using Args = std::vector<std::string>;
  // Sends `argv`, returns the reply (an error reply too: the caller reads
  // it). `block`: how long the server may hold the command (XREAD BLOCK).
  // Before each resend after a loss, `resending` runs (it may change argv).
  // Throws ConnectionLost once the call's bound passes (see hub.hpp).
  Reply call(Args& argv, Deadline deadline, std::chrono::milliseconds block = {},
             const std::function<void(Args&)>& resending = {});
  // EVALSHA script keys... args...: argv is {keys..., args...} with `nkeys` keys.
  Reply eval(const Script& script, int nkeys, Args& argv, Deadline deadline,
             const std::function<void(Args&)>& resending = {});

  [[nodiscard]] const std::string& label() const noexcept { return label_; }
  [[nodiscard]] const HubState& hub() const noexcept { return *hub_; }

 private:
  // Connects to host:port (the hub's endpoint when empty) with AUTH/SELECT; false on failure (why in last_error_).
  bool open(Deadline limit);
  void drop() noexcept;
  redisReply* send(const Args& argv);
  void set_timeout(std::chrono::nanoseconds t);
  [[noreturn]] void lost(const std::string& during) const;

  std::shared_ptr<const HubState> hub_;
  std::string label_;
  redisContext* ctx_ = nullptr;
  int owner_ = 0;                        // the pid that opened ctx_: a forked child opens its own
  std::chrono::nanoseconds timeout_{0};  // the socket's send/receive timeout, as last set
  std::string node_host_;                // where MOVED sent us (Cluster); empty: the hub's endpoint
  int node_port_ = 0;
  std::string last_error_;
};

// Throws the typed error an error reply stands for (WRONGTYPE, NOGROUP, OOM, ...).
[[noreturn]] void raise_reply_error(const redisReply& r, const std::string& label, std::string_view during);
// A string reply's bytes (empty for nil).
std::string_view reply_text(const redisReply& r) noexcept;
long long reply_integer(const redisReply& r) noexcept;

}  // namespace ipckit::redis::detail
