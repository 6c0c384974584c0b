// tests/redis/test_redis_server.cpp — the throw-away redis-server helper
// itself: the Redis transport's tests trust it to start, restart with the
// data an AOF keeps, die with the test, and form a cluster.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

#include "redis_server.hpp"

namespace ipckit::testing {
namespace {

#define SKIP_WITHOUT_REDIS() \
  if (!RedisServer::available()) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)"

// Gone: no such process, or a zombie (dead; an orphan waits for init, which
// in a container may never reap it).
bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return true;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

TEST(RedisServer, StartsOnLoopbackAndAnswersPing) {
  SKIP_WITHOUT_REDIS();
  auto s = RedisServer::start();
  EXPECT_GT(s.port(), 0);
  EXPECT_GT(s.pid(), 0);
  EXPECT_EQ(s.url(), "redis://127.0.0.1:" + std::to_string(s.port()) + "/0");
  EXPECT_EQ(s.command({"PING"}), "+PONG\r\n");
  EXPECT_EQ(s.command({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(s.command({"GET", "k"}), "$1\r\nv\r\n");
  EXPECT_EQ(s.command({"GET", "missing"}), "$-1\r\n");
  // No persistence unless asked; an error reply is returned, not thrown.
  EXPECT_NE(s.command({"CONFIG", "GET", "appendonly"}).find("no"), std::string::npos);
  EXPECT_EQ(s.command({"CONFIG", "GET", "save"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(s.command({"NO-SUCH-COMMAND"}).rfind("-ERR", 0), 0u);
  // Multi-bulk replies are read whole.
  EXPECT_EQ(s.command({"XADD", "st", "1-1", "f", "v"}), "$3\r\n1-1\r\n");
  EXPECT_EQ(s.command({"XRANGE", "st", "-", "+"}), "*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
}

TEST(RedisServer, TwoServersAtOnceGetTheirOwnPortAndDirectory) {
  SKIP_WITHOUT_REDIS();
  auto a = RedisServer::start();
  auto b = RedisServer::start();
  EXPECT_NE(a.port(), b.port());
  EXPECT_NE(a.dir(), b.dir());
  ASSERT_EQ(a.command({"SET", "k", "a"}), "+OK\r\n");
  EXPECT_EQ(b.command({"GET", "k"}), "$-1\r\n");
}

TEST(RedisServer, DestructorKillsTheServerAndRemovesItsDirectory) {
  SKIP_WITHOUT_REDIS();
  pid_t pid = -1;
  std::string dir;
  {
    auto s = RedisServer::start();
    pid = s.pid();
    dir = s.dir();
    ASSERT_TRUE(std::filesystem::exists(dir + "/redis.log"));
    // Moving hands over the server: only the last owner kills it.
    RedisServer moved = std::move(s);
    EXPECT_EQ(moved.command({"PING"}), "+PONG\r\n");
  }
  EXPECT_TRUE(process_gone(pid));
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(RedisServer, DiesWithTheProcessThatStartedIt) {
  SKIP_WITHOUT_REDIS();
  // A test process that crashes (here: _exit, no destructor) must leave no
  // server behind: the server gets SIGKILL when its parent dies.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    auto s = RedisServer::start();
    const std::string line = std::to_string(s.pid()) + " " + s.dir() + "\n";
    const bool written = ::write(fds[1], line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::_exit(written ? 0 : 1);
  }
  ::close(fds[1]);
  std::string line;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) line.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child could not start a server";
  const auto space = line.find(' ');
  ASSERT_NE(space, std::string::npos) << line;
  const pid_t server = static_cast<pid_t>(std::stol(line.substr(0, space)));
  const std::string dir = line.substr(space + 1, line.size() - space - 2);
  // Orphaned, the server is killed and then reaped by init: poll with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!process_gone(server) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(process_gone(server));
  std::filesystem::remove_all(dir);
}

TEST(RedisServer, RestartWithAofKeepsConfirmedWrites) {
  SKIP_WITHOUT_REDIS();
  auto s = RedisServer::start({.aof = true});
  const int port = s.port();
  const pid_t first = s.pid();
  ASSERT_EQ(s.command({"SET", "k", "before"}), "+OK\r\n");
  ASSERT_EQ(s.command({"XADD", "st", "1-1", "f", "v"}), "$3\r\n1-1\r\n");
  s.restart();
  EXPECT_EQ(s.port(), port);
  EXPECT_NE(s.pid(), first);
  EXPECT_TRUE(process_gone(first));
  EXPECT_EQ(s.command({"GET", "k"}), "$6\r\nbefore\r\n");
  EXPECT_EQ(s.command({"XLEN", "st"}), ":1\r\n");
}

TEST(RedisServer, AofSurvivesSigkill) {
  SKIP_WITHOUT_REDIS();
  // appendfsync always: a write is on disk before its reply, so a crash keeps it.
  auto s = RedisServer::start({.aof = true});
  ASSERT_EQ(s.command({"SET", "k", "v"}), "+OK\r\n");
  s.kill();
  s.restart();
  EXPECT_EQ(s.command({"GET", "k"}), "$1\r\nv\r\n");
}

TEST(RedisServer, KillThenRestartWithoutPersistenceStartsEmpty) {
  SKIP_WITHOUT_REDIS();
  auto s = RedisServer::start();
  const int port = s.port();
  const pid_t first = s.pid();
  ASSERT_EQ(s.command({"SET", "k", "v"}), "+OK\r\n");
  s.kill();
  EXPECT_FALSE(s.running());
  EXPECT_TRUE(process_gone(first));
  EXPECT_THROW(s.command({"PING"}), std::runtime_error);
  s.restart();
  EXPECT_EQ(s.port(), port);
  EXPECT_EQ(s.command({"PING"}), "+PONG\r\n");
  EXPECT_EQ(s.command({"GET", "k"}), "$-1\r\n");
}

TEST(RedisServer, StopShutsDownCleanly) {
  SKIP_WITHOUT_REDIS();
  auto s = RedisServer::start();
  const pid_t pid = s.pid();
  s.stop();
  EXPECT_TRUE(process_gone(pid));
  EXPECT_NE(s.log_tail(50).find("ready to exit"), std::string::npos) << s.log_tail(50);
  s.stop();  // a no-op when stopped
}

TEST(RedisServer, SigstopFreezesRepliesUntilSigcont) {
  SKIP_WITHOUT_REDIS();
  auto s = RedisServer::start({.args = {"--timeout", "0"}});
  s.sigstop();
  // The kernel still accepts the connection; the reply waits for SIGCONT.
  // Resume from another thread once the command is under way.
  std::thread resumer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    s.sigcont();
  });
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.command({"PING"}), "+PONG\r\n");
  const auto waited = std::chrono::steady_clock::now() - t0;
  resumer.join();
  EXPECT_GE(waited, std::chrono::milliseconds(250));
}

TEST(RedisServer, ClusterOfThreeComesUpWithEverySlotAssigned) {
  SKIP_WITHOUT_REDIS();
  const auto t0 = std::chrono::steady_clock::now();
  auto cluster = RedisCluster::start(3);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::cout << "3-node cluster up in " << ms.count() << " ms\n";
  RecordProperty("cluster_start_ms", static_cast<int>(ms.count()));
  const auto urls = cluster.urls();
  ASSERT_EQ(urls.size(), 3u);
  EXPECT_EQ(cluster.url(), urls[0]);
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    const auto info = cluster.node(i).command({"CLUSTER", "INFO"});
    EXPECT_NE(info.find("cluster_state:ok"), std::string::npos) << info;
    EXPECT_NE(info.find("cluster_slots_assigned:16384"), std::string::npos) << info;
    EXPECT_NE(info.find("cluster_known_nodes:3"), std::string::npos) << info;
  }
  // A key lives on one node; the others redirect to it.
  int moved = 0, stored = 0;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    const auto reply = cluster.node(i).command({"SET", "{tag}k", "v"});
    moved += reply.rfind("-MOVED", 0) == 0;
    stored += reply == "+OK\r\n";
  }
  EXPECT_EQ(stored, 1);
  EXPECT_EQ(moved, 2);
}

}  // namespace
}  // namespace ipckit::testing
