// Uses the installed ipckit::redis: parses URLs and reports an unreachable
// server as it should, without a server.
#include <cstdio>
#include <ipckit/redis.hpp>

int main() {
  try {
    (void)ipckit::redis::connect("http://nowhere");
    std::puts("a bad URL was accepted");
    return 1;
  } catch (const ipckit::InvalidArgument&) {
  }
  const ipckit::redis::Hub hub("redis://127.0.0.1:1/0");
  auto copy = hub;
  if (copy.ping(std::chrono::milliseconds(200))) {
    std::puts("port 1 answered PING");
    return 1;
  }
  std::puts("OK");
  return 0;
}
