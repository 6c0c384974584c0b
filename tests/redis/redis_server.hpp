// tests/redis/redis_server.hpp — a throw-away redis-server (or a 3-node Redis
// Cluster) for tests and demos: started on a free loopback port in a fresh
// temporary directory, no persistence unless asked, killed with the test.
//
// It talks RESP over a plain TCP socket (no hiredis): the helper must not
// depend on the transport it is used to test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace ipckit::testing {

struct RedisServerOptions {
  // appendonly yes with appendfsync always: every confirmed write survives
  // stop()/restart() (a SIGKILL too: the AOF is fsynced before the reply).
  bool aof = false;
  // --cluster-enabled yes (nodes.conf in the server's directory, node
  // timeout 2 s); the port is chosen so that its bus port (+10000) is free.
  bool cluster = false;
  // Appended to redis-server's command line, e.g. {"--maxmemory", "1mb"}.
  std::vector<std::string> args = {};
};

class RedisServer {
 public:
  // Whether a redis-server binary exists (PATH, then /usr/bin/redis-server).
  static bool available();

  // Starts redis-server on 127.0.0.1 and a free port and waits (10 s) until
  // it answers PING; throws std::runtime_error with the end of its log.
  static RedisServer start(RedisServerOptions options = {});

  RedisServer(RedisServer&& other) noexcept;
  RedisServer& operator=(RedisServer&& other) noexcept;
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  // Kills the server and removes its directory (only in the process that
  // started it: a forked child's copy leaves both alone).
  ~RedisServer();

  std::string url() const;  // "redis://127.0.0.1:PORT/0"
  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // -1 while stopped
  const std::string& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }

  // SIGKILL and reap: a crash (with aof, confirmed writes are on disk).
  void kill();
  // A clean shutdown: SHUTDOWN NOSAVE, or SIGTERM with aof (the AOF is
  // flushed); reaped. No-op when not running.
  void stop();
  // stop(), then the same server again: same port, same directory (so the
  // AOF is replayed); waits until it answers PING (LOADING is not ready).
  void restart();

  // Freezes the server (SIGSTOP): connections stay open but nothing is
  // answered, as with a stalled or partitioned server. sigcont() resumes it.
  void sigstop();
  void sigcont();
  void pause_for(std::chrono::milliseconds how_long);

  // Sends one command over a fresh connection and returns the raw RESP reply
  // ("+PONG\r\n", "$1\r\nv\r\n", ":1\r\n", "-ERR ...\r\n", "*2\r\n..."); an
  // error reply is returned, not thrown. Throws std::runtime_error when the
  // server cannot be reached or does not answer within 30 s.
  std::string command(std::initializer_list<std::string_view> args) const;
  std::string command(const std::vector<std::string>& args) const;

  // The last lines of the server's log (for failure messages).
  std::string log_tail(int lines = 20) const;

 private:
  RedisServer() = default;
  // Forks and execs redis-server on port_ in dir_; true once it answers
  // PING, false if it exited first (e.g. the port was taken meanwhile).
  bool launch(std::chrono::steady_clock::time_point deadline);
  void reap(std::chrono::milliseconds grace);

  RedisServerOptions options_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  pid_t owner_ = -1;  // the process that started the server
};

class RedisCluster {
 public:
  // `nodes` masters (no replicas) sharing the 16384 slots; waits (20 s) until
  // every node reports cluster_state:ok. Throws std::runtime_error.
  static RedisCluster start(int nodes = 3);

  std::vector<std::string> urls() const;
  std::string url() const { return nodes_.front().url(); }
  RedisServer& node(std::size_t i) { return nodes_.at(i); }
  std::size_t size() const { return nodes_.size(); }
  // Whether every node reports cluster_state:ok.
  bool ok() const;

 private:
  void create();
  std::vector<RedisServer> nodes_;
};

}  // namespace ipckit::testing
