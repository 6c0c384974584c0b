// src/redis/connection.cpp — Connection: hiredis's blocking context, made to
// survive losing its server.
#include "connection.hpp"

#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>

#include "ipckit/error.hpp"

namespace ipckit::redis::detail {
namespace {

using namespace std::chrono_literals;

timeval to_timeval(std::chrono::nanoseconds d) {
  d = std::clamp<std::chrono::nanoseconds>(d, 1ms, std::chrono::hours(24));
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d - s);
  return timeval{static_cast<time_t>(s.count()), static_cast<suseconds_t>(us.count())};
}

// The SHA1 of each script, as SCRIPT LOAD answered it (the same on every server).
std::mutex g_sha_mu;
std::map<const char*, std::string> g_sha;

std::string known_sha(const Script& s) {
  std::lock_guard lock(g_sha_mu);
  const auto it = g_sha.find(s.text);
  return it == g_sha.end() ? std::string() : it->second;
}

}  // namespace

std::string_view reply_text(const redisReply& r) noexcept {
  if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR)
    return {r.str, r.len};
  return {};
}

long long reply_integer(const redisReply& r) noexcept {
  if (r.type == REDIS_REPLY_INTEGER) return r.integer;
  if (r.type == REDIS_REPLY_STRING) {
    long long v = 0;
    const std::string_view t(r.str, r.len);
    for (const char c : t) {
      if (c < '0' || c > '9') return 0;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  return 0;
}

void raise_reply_error(const redisReply& r, const std::string& label, std::string_view during) {
  const std::string text(reply_text(r));
  const std::string msg = "ipckit: " + label + ": Redis refused " + std::string(during) + ": " + text;
  if (text.starts_with("NOAUTH") || text.starts_with("WRONGPASS") || text.starts_with("NOPERM") ||
      text.find("unauthenticated") != std::string::npos)
    throw PermissionDenied(label, msg + " (check the password or ACL user in the URL)");
  if (text.starts_with("OOM"))
    throw OutOfSpace(label, msg + " (the server reached maxmemory: free memory or raise it)");
  if (text.starts_with("WRONGTYPE"))
    throw TypeMismatch(label,
                       msg + " (a key of this queue's name holds something else: rename the queue or remove the key)");
  if (text.starts_with("LOADING") || text.starts_with("BUSY") || text.starts_with("MASTERDOWN") ||
      text.starts_with("CLUSTERDOWN") || text.starts_with("TRYAGAIN"))
    throw ConnectionLost(label, msg + " (the server is not serving yet; try again)");
  throw SystemError(label, msg);
}

Connection::Connection(std::shared_ptr<const HubState> hub, std::string label)
    : hub_(std::move(hub)), label_(std::move(label)) {}

Connection::~Connection() { drop(); }

void Connection::drop() noexcept {
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

bool Connection::open(Deadline limit) {
  drop();
  const Endpoint& e = hub_->endpoint;
  const auto left = std::min<std::chrono::nanoseconds>(limit.left(), hub_->options.connect_timeout);
  const timeval tv = to_timeval(left);
  if (!node_host_.empty())
    ctx_ = redisConnectWithTimeout(node_host_.c_str(), node_port_, tv);
  else if (!e.unix_path.empty())
    ctx_ = redisConnectUnixWithTimeout(e.unix_path.c_str(), tv);
  else
    ctx_ = redisConnectWithTimeout(e.host.c_str(), e.port, tv);
  if (ctx_ == nullptr || ctx_->err != 0) {
    last_error_ = ctx_ == nullptr ? "out of memory" : ctx_->errstr;
    drop();
    return false;
  }
  owner_ = getpid();
  if (e.unix_path.empty()) (void)redisEnableKeepAlive(ctx_);
  const auto hello = [&](const Args& argv) {
    redisReply* r = send(argv);
    if (r == nullptr) return false;
    const Reply owned(r);
    if (r->type == REDIS_REPLY_ERROR) raise_reply_error(*r, label_, argv[0]);
    return true;
  };
  (void)redisSetTimeout(ctx_, tv);
  timeout_ = left;
  if (!e.password.empty()) {
    Args auth{"AUTH"};
    if (!e.user.empty()) auth.push_back(e.user);
    auth.push_back(e.password);
    if (!hello(auth)) return false;
  }
  return e.db == 0 || !node_host_.empty() || hello({"SELECT", std::to_string(e.db)});
}

void Connection::set_timeout(std::chrono::nanoseconds t) {
  // Two setsockopt calls: skipped while the socket's timeout is already
  // between t and t + 200 ms (the calls of one loop ask for nearly the
  // same each time; a reply is awaited at most 200 ms past its bound).
  if (timeout_ >= t && timeout_ <= t + 200ms) return;
  (void)redisSetTimeout(ctx_, to_timeval(t));
  timeout_ = t;
}

redisReply* Connection::send(const Args& argv) {
  thread_local std::vector<const char*> ptrs;
  thread_local std::vector<std::size_t> lens;
  ptrs.clear();
  lens.clear();
  for (const std::string& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  void* r = redisCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs.data(), lens.data());
  if (r == nullptr) {
    last_error_ = ctx_->errstr[0] != '\0' ? ctx_->errstr : "connection lost";
    drop();
  }
  return static_cast<redisReply*>(r);
}

void Connection::lost(const std::string& during) const {
  throw ConnectionLost(label_, "ipckit: " + label_ + ": lost the Redis server at " + hub_->url + " during " + during +
                                   " (" + last_error_ +
                                   "); it did not come back in time. Check that it runs and is reachable; the "
                                   "call may be repeated (a put is applied at most once)");
}

Reply Connection::call(Args& argv, Deadline deadline, std::chrono::milliseconds block,
                       const std::function<void(Args&)>& resending) {
  // The bound of this call's round trips (hub.hpp): a timed call's own
  // deadline, but never less than one non-blocking round trip's.
  const Deadline floor = Deadline::after(hub_->options.nowait_timeout + block);
  Deadline limit =
      deadline.is_never() ? Deadline::after(hub_->options.reconnect_timeout + block) : std::max(deadline, floor);
  auto backoff = 5ms;
  bool first = true;
  // Inherited across fork(): the parent's connection, mid-conversation
  // perhaps. Closed here (nothing is sent on it); this process opens its own.
  if (ctx_ != nullptr && owner_ != getpid()) drop();
  for (int redirects = 0;;) {
    if (!first && resending) resending(argv);
    if (ctx_ == nullptr && !open(limit)) {
      if (limit.passed()) lost(argv[0]);
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(backoff, limit.left()));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
      first = false;
      continue;
    }
    set_timeout(std::min<std::chrono::nanoseconds>(limit.left(), 24h) + block + 100ms);
    redisReply* raw = send(argv);
    first = false;
    if (raw == nullptr) {
      if (limit.passed()) lost(argv[0]);
      if (deadline.is_never())
        limit = Deadline::after(hub_->options.reconnect_timeout + block);  // each loss its own window
      continue;
    }
    Reply r(raw);
    if (r->type == REDIS_REPLY_ERROR) {
      // A server starting (loading its AOF), busy with a script, or a Cluster
      // failing over: not serving yet. Try again within the call's bound.
      const std::string_view text = reply_text(*r);
      if ((text.starts_with("LOADING") || text.starts_with("BUSY ") || text.starts_with("TRYAGAIN") ||
           text.starts_with("CLUSTERDOWN") || text.starts_with("MASTERDOWN")) &&
          !limit.passed()) {
        last_error_ = std::string(text);
        std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(backoff, limit.left()));
        backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
        continue;
      }
    }
    if (r->type == REDIS_REPLY_ERROR && ++redirects < 8) {
      const std::string_view text = reply_text(*r);
      // MOVED slot host:port — this slot lives elsewhere now (Cluster): follow it.
      if (text.starts_with("MOVED ") || text.starts_with("ASK ")) {
        const auto sp = text.rfind(' ');
        const auto colon = text.rfind(':');
        if (sp != std::string_view::npos && colon != std::string_view::npos && colon > sp) {
          node_host_ = std::string(text.substr(sp + 1, colon - sp - 1));
          node_port_ = std::stoi(std::string(text.substr(colon + 1)));
          drop();
          if (text.starts_with("ASK ")) {
            if (!open(limit)) continue;
            Reply asking(send({"ASKING"}));
            if (asking == nullptr) continue;
          }
          continue;
        }
      }
    }
    return r;
  }
}

Reply Connection::eval(const Script& script, int nkeys, Args& argv, Deadline deadline,
                       const std::function<void(Args&)>& resending) {
  std::string sha = known_sha(script);
  if (sha.empty()) {
    Args load{"SCRIPT", "LOAD", script.text};
    Reply r = call(load, deadline);
    if (r->type != REDIS_REPLY_STRING) raise_reply_error(*r, label_, std::string("loading script ") + script.name);
    sha.assign(r->str, r->len);
    std::lock_guard lock(g_sha_mu);
    g_sha[script.text] = sha;
  }
  Args full;
  full.reserve(argv.size() + 3);
  full.push_back("EVALSHA");
  full.push_back(sha);
  full.push_back(std::to_string(nkeys));
  for (std::string& a : argv) full.push_back(std::move(a));
  const auto forward = [&](Args& f) {
    if (!resending) return;
    Args inner(std::make_move_iterator(f.begin() + 3), std::make_move_iterator(f.end()));
    resending(inner);
    f.resize(3);
    for (std::string& a : inner) f.push_back(std::move(a));
  };
  Reply r = call(full, deadline, {}, forward);
  if (r->type == REDIS_REPLY_ERROR && reply_text(*r).starts_with("NOSCRIPT")) {
    // A restarted or other server (Cluster node): EVAL loads and runs it.
    full[0] = "EVAL";
    full[1] = script.text;
    r = call(full, deadline, {}, forward);
  }
  // Give the arguments back: the caller may run the call again.
  argv.assign(std::make_move_iterator(full.begin() + 3), std::make_move_iterator(full.end()));
  return r;
}

}  // namespace ipckit::redis::detail
