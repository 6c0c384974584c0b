// src/redis/url.hpp — a Redis server's address, as a URL names it.
#pragma once

#include <string>
#include <string_view>

namespace ipckit::redis::detail {

struct Endpoint {
  std::string host;  // empty for a Unix socket
  int port = 6379;
  std::string unix_path;  // set for unix://
  std::string user;       // AUTH user (Redis 6 ACL); empty: the default user
  std::string password;   // empty: no AUTH
  int db = 0;
  std::string shown;  // the URL with the password hidden, for messages
};

// redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N].
// Throws InvalidArgument naming what is wrong (rediss:// included: no TLS).
Endpoint parse_url(std::string_view url);

}  // namespace ipckit::redis::detail
