// src/redis/url.cpp — parse_url.
#include "url.hpp"

#include <charconv>
#include <string>

#include "ipckit/error.hpp"

namespace ipckit::redis::detail {
namespace {

[[noreturn]] void bad(std::string_view url, const std::string& why) {
  throw InvalidArgument("redis", "ipckit: cannot use the Redis URL '" + std::string(url) + "': " + why +
                                     " (expected redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N])");
}

int number(std::string_view url, std::string_view text, const char* what, int max) {
  int v = -1;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || v < 0 || v > max)
    bad(url, std::string(what) + " '" + std::string(text) + "' is not a number from 0 to " + std::to_string(max));
  return v;
}

}  // namespace

Endpoint parse_url(std::string_view url) {
  Endpoint e;
  for (const char c : url)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) bad("(with control characters)", "control characters");
  std::string_view rest = url;
  if (rest.starts_with("rediss://")) bad(url, "TLS (rediss://) is not supported; use redis:// on a trusted network");
  if (rest.starts_with("unix://")) {
    rest.remove_prefix(7);
    const auto q = rest.find('?');
    e.unix_path = std::string(rest.substr(0, q));
    if (e.unix_path.empty() || e.unix_path[0] != '/') bad(url, "the socket path must be absolute");
    if (q != std::string_view::npos) {
      const std::string_view query = rest.substr(q + 1);
      if (!query.starts_with("db=")) bad(url, "the only parameter is db=N");
      e.db = number(url, query.substr(3), "database", 1 << 20);
    }
    e.shown = std::string(url);
    return e;
  }
  if (!rest.starts_with("redis://")) bad(url, "the scheme must be redis:// or unix://");
  rest.remove_prefix(8);
  std::string shown = "redis://";
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    const std::string_view auth = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    const auto colon = auth.find(':');
    if (colon == std::string_view::npos) {
      e.password = std::string(auth);  // redis://secret@host: a password alone
    } else {
      e.user = std::string(auth.substr(0, colon));
      e.password = std::string(auth.substr(colon + 1));
    }
    shown += e.user + ":***@";
  }
  const auto slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) e.db = number(url, db, "database", 1 << 20);
  }
  if (hostport.starts_with('[')) {  // [::1]:6379
    const auto close = hostport.find(']');
    if (close == std::string_view::npos) bad(url, "an IPv6 address lacks its ']'");
    e.host = std::string(hostport.substr(1, close - 1));
    hostport.remove_prefix(close + 1);
    if (!hostport.empty()) {
      if (hostport[0] != ':') bad(url, "expected ':port' after the IPv6 address");
      e.port = number(url, hostport.substr(1), "port", 65535);
    }
  } else {
    const auto colon = hostport.rfind(':');
    e.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) e.port = number(url, hostport.substr(colon + 1), "port", 65535);
  }
  if (e.host.empty()) bad(url, "no host");
  if (e.port == 0) bad(url, "port 0");
  shown += std::string(rest);
  e.shown = shown;
  return e;
}

}  // namespace ipckit::redis::detail
