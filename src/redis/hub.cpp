// src/redis/hub.cpp — Hub: a parsed URL and the name every consumer of this
// process starts with.
#include "ipckit/redis/hub.hpp"

#include <unistd.h>

#include <cstdlib>
#include <random>

#include "connection.hpp"
#include "ipckit/error.hpp"
#include "stream_scripts.hpp"

namespace ipckit::redis {

std::string detail::new_client_base() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device rd;
  char rnd[17];
  std::snprintf(rnd, sizeof rnd, "%08x%08x", rd(), rd());
  return std::string(host[0] != '\0' ? host : "host") + "/" + std::to_string(getpid()) + "/" + rnd;
}

Hub::Hub(std::string_view url, const HubOptions& options) : s_(std::make_shared<detail::HubState>()) {
  s_->endpoint = detail::parse_url(url);
  s_->options = options;
  s_->url = s_->endpoint.shown;
  s_->client_base = detail::new_client_base();
}

const std::string& Hub::url() const noexcept { return s_->url; }

bool Hub::ping(std::chrono::milliseconds timeout) {
  detail::Connection c(s_, "ping");
  detail::Connection::Args argv{"PING"};
  try {
    const detail::Reply r = c.call(argv, detail::Deadline::after(timeout));
    return r->type == REDIS_REPLY_STATUS;
  } catch (const ConnectionLost&) {
    return false;
  }
}

bool Hub::remove(std::string_view name) {
  const std::string base = "ipckit:{" + std::string(name) + "}";
  detail::Connection c(s_, "queue '" + std::string(name) + "'");
  // A FIFO queue's keys and a priority queue's (stream_scripts.hpp, priority_scripts.hpp).
  detail::Connection::Args argv{"DEL", base};
  for (const char* k : {":items", ":dead", ":producers", ":ready", ":data", ":leases", ":deliv", ":wake", ":holds"})
    argv.push_back(base + k);
  const detail::Reply r = c.call(argv, detail::Deadline::never());
  if (r->type == REDIS_REPLY_ERROR) detail::raise_reply_error(*r, c.label(), "DEL");
  return r->integer > 0;
}

Hub connect(std::string_view url, const HubOptions& options) { return Hub(url, options); }

Hub connect() {
  const char* env = std::getenv("IPCKIT_REDIS_URL");
  return Hub(env != nullptr && env[0] != '\0' ? env : "redis://127.0.0.1:6379/0");
}

}  // namespace ipckit::redis
