// tests/redis/redis_env.hpp — one redis-server per test process, started on
// first use (a test that needs a server of its own — AOF, restarts, kills —
// starts it itself), and unique queue names on it.
#pragma once

#include <string>

#include "ipckit/redis.hpp"
#include "multiprocess.hpp"
#include "redis_server.hpp"

namespace ipckit::testing {

inline RedisServer& shared_redis() {
  static RedisServer server = RedisServer::start();
  return server;
}

inline ipckit::redis::Hub shared_hub() { return ipckit::redis::Hub(shared_redis().url()); }

}  // namespace ipckit::testing
