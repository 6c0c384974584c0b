// `ipckit ls/inspect/ps/dead/rm --redis URL` (src/cli/redis_cli.hpp) run as
// a program against queues made here: items queued, items leased by a live
// consumer in a child process, dead letters left by a killed one, priority
// queues, pools with worker programs (one busy, one killed mid-task), and
// keys planted by hand that no ipckit queue or pool would have.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/redis.hpp"
#include "ipckit/redis/inspect.hpp"
#include "redis_env.hpp"

using namespace std::chrono_literals;
using namespace ipckit::testing;
namespace rd = ipckit::redis;
using Json = nlohmann::json;

namespace {

struct CliRun {
  int status = -1;  // exit status; -1: killed (overran its deadline) or not run
  std::string out, err;
  std::chrono::milliseconds took{};
};

// Runs the CLI with `args` (and `env` added to the environment), capturing
// both outputs; killed after `deadline`.
CliRun run_cli(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
               std::chrono::milliseconds deadline = 20s) {
  CliRun r;
  int out[2], err[2];
  if (::pipe(out) != 0 || ::pipe(err) != 0) return r;
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::close(out[0]);
    ::close(err[0]);
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv{const_cast<char*>(IPCKIT_CLI)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(IPCKIT_CLI, argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* into[2] = {&r.out, &r.err};
  int open = 2;
  const auto end = t0 + deadline;
  while (open > 0 && Clock::now() < end) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
    if (::poll(fds, 2, static_cast<int>(left.count()) + 1) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        into[i]->append(buf, static_cast<std::size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  if (open > 0) ::kill(pid, SIGKILL);
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  r.status = open == 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string url() { return shared_redis().url(); }

// Parses `r`'s output as JSON (a failure, not a throw, when it is not).
Json json_of(const CliRun& r) {
  Json j = Json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << r.out << r.err;
  return j;
}

// The entry of `list` whose `field` is `value`, or null.
Json find(const Json& list, const std::string& field, const Json& value) {
  if (list.is_array())
    for (const auto& e : list)
      if (e.contains(field) && e[field] == value) return e;
  return nullptr;
}

std::string hostname() {
  char host[256] = {};
  (void)::gethostname(host, sizeof host - 1);
  return host;
}

// A pool task that runs until `path` exists (at most 20 s), then answers its
// worker's pid: keeps a worker busy for as long as a test looks at it.
int cli_hold(std::string path) {
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (!std::filesystem::exists(path) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  return ::getpid();
}
IPCKIT_TASK(cli_hold);  // test_redis_pool.cpp registers rp_* names only

// Polls `ok` until it holds or `deadline` passes.
template <class F>
bool eventually(F ok, std::chrono::milliseconds deadline = 10s) {
  const auto until = Clock::now() + deadline;
  while (!ok()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

#define SKIP_WITHOUT_REDIS() \
  if (!RedisServer::available()) GTEST_SKIP() << "redis-server is not installed (scripts/setup.sh installs it)"

TEST(RedisCli, LsListsEveryQueueWithItsCountsAsATableAndAsJson) {
  SKIP_WITHOUT_REDIS();
  auto hub = shared_hub();
  const std::string plain = unique_name("ls_plain"), joinable = unique_name("ls_join");
  auto q = hub.queue<std::string>(plain, {.max_items = 100});
  auto j = hub.joinable_queue<std::int32_t>(joinable);
  q.put_many(std::vector<std::string>{"a", "b", "c"});
  j.put(1);
  j.put(2);
  j.close();

  const CliRun text = run_cli({"ls", "--redis", url()});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("NAME"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("CONSUMERS"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(plain), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("std::string"), std::string::npos) << "the type tag demangled:\n" << text.out;

  const CliRun js = run_cli({"ls", "--redis", url(), "--json"});
  ASSERT_EQ(js.status, 0) << js.err;
  const Json all = json_of(js);
  EXPECT_EQ(all["server"], url());
  const Json a = find(all["queues"], "name", plain);
  ASSERT_TRUE(a.is_object()) << js.out;
  EXPECT_EQ(a["kind"], "queue");
  EXPECT_EQ(a["queued"], 3);
  EXPECT_EQ(a["pending"], 0);
  EXPECT_EQ(a["dead"], 0);
  EXPECT_EQ(a["state"], "open");
  EXPECT_EQ(a["corrupt"], false);
  EXPECT_EQ(a["options"]["max_items"], 100);
  EXPECT_EQ(a["type_pretty"].get<std::string>().rfind("std::__cxx11::basic_string<char", 0), 0u) << a;
  const Json b = find(all["queues"], "name", joinable);
  ASSERT_TRUE(b.is_object()) << js.out;
  EXPECT_EQ(b["kind"], "joinable");
  EXPECT_EQ(b["type_pretty"], "int");
  EXPECT_EQ(b["queued"], 2);
  EXPECT_EQ(b["unfinished"], 2);
  EXPECT_EQ(b["state"], "closed");

  // --redis alone takes $IPCKIT_REDIS_URL.
  const CliRun env = run_cli({"ls", "--json", "--redis"}, {"IPCKIT_REDIS_URL=" + url()});
  ASSERT_EQ(env.status, 0) << env.err;
  EXPECT_TRUE(find(json_of(env)["queues"], "name", plain).is_object()) << env.out;
}

TEST(RedisCli, InspectAndPsShowAConsumerHoldingItemsWithItsHostPidAndIdleTime) {
  SKIP_WITHOUT_REDIS();
  auto hub = shared_hub();
  const std::string name = unique_name("held");
  auto q = hub.queue<std::string>(name);
  q.put_many(std::vector<std::string>{"one", "two", "three"});
  Signal got, release;
  Child consumer([&] {
    auto mine = rd::Hub(url()).queue<std::string>(name);
    EXPECT_EQ(mine.get_many(2, 5s).size(), 2u);  // leased until its next get
    got.post();
    (void)release.wait(30s);
  });
  ASSERT_TRUE(got.wait(10s));

  const CliRun js = run_cli({"inspect", "--redis", url(), name, "--json"});
  ASSERT_EQ(js.status, 0) << js.err;
  const Json info = json_of(js);
  EXPECT_EQ(info["name"], name);
  EXPECT_EQ(info["queued"], 1);
  EXPECT_EQ(info["pending"], 2);
  const Json c = find(info["consumers"], "pid", consumer.pid());
  ASSERT_TRUE(c.is_object()) << js.out;
  EXPECT_EQ(c["host"], hostname());
  EXPECT_EQ(c["pending"], 2);
  EXPECT_GE(c["idle_ms"].get<std::int64_t>(), 0);
  EXPECT_EQ(c["process"], "running");

  const CliRun text = run_cli({"inspect", "--redis", url(), name});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("queue '" + name + "'"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("pending"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(std::to_string(consumer.pid())), std::string::npos) << text.out;

  const CliRun ps = run_cli({"ps", "--redis", url(), "--json"});
  ASSERT_EQ(ps.status, 0) << ps.err;
  const Json p = find(json_of(ps)["consumers"], "pid", consumer.pid());
  ASSERT_TRUE(p.is_object()) << ps.out;
  EXPECT_EQ(p["queue"], name);
  EXPECT_EQ(p["pending"], 2);
  const CliRun ps_text = run_cli({"ps", "--redis", url(), name});
  ASSERT_EQ(ps_text.status, 0) << ps_text.err;
  EXPECT_NE(ps_text.out.find("IDLE"), std::string::npos) << ps_text.out;
  EXPECT_NE(ps_text.out.find(std::to_string(consumer.pid())), std::string::npos) << ps_text.out;

  release.post();
  EXPECT_EQ(consumer.wait_exit(10s), 0);
}

TEST(RedisCli, DeadListsWhatAKilledConsumerLeftAndRequeuePutsItBack) {
  SKIP_WITHOUT_REDIS();
  auto hub = shared_hub();
  const std::string name = unique_name("dead");
  const rd::QueueOptions o{.visibility_timeout = 50ms, .max_deliveries = 1};
  auto q = hub.queue<std::string>(name, o);
  q.put("poison\x1b[31m pill");
  Child consumer([&] {
    auto mine = rd::Hub(url()).queue<std::string>(name, o);
    EXPECT_EQ(mine.get(5s), "poison\x1b[31m pill");
    ::raise(SIGKILL);  // dies holding it
  });
  EXPECT_NE(consumer.wait_exit(10s), 0);
  EXPECT_THROW(q.get(600ms), ipckit::Empty) << "its second delivery goes to the dead letters";
  ASSERT_EQ(q.dead_letters(), 1u);

  const CliRun ls = run_cli({"ls", "--redis", url(), "--json"});
  ASSERT_EQ(ls.status, 0) << ls.err;
  EXPECT_EQ(find(json_of(ls)["queues"], "name", name)["dead"], 1) << ls.out;
  const CliRun ps = run_cli({"ps", "--redis", url(), name, "--json"});
  ASSERT_EQ(ps.status, 0) << ps.err;
  EXPECT_EQ(find(json_of(ps)["consumers"], "pid", consumer.pid())["process"], "gone") << ps.out;

  const CliRun js = run_cli({"dead", "--redis", url(), name, "--json"});
  ASSERT_EQ(js.status, 0) << js.err;
  const Json d = json_of(js);
  EXPECT_EQ(d["dead"], 1);
  ASSERT_EQ(d["dead_letters"].size(), 1u) << js.out;
  const Json letter = d["dead_letters"][0];
  EXPECT_EQ(letter["deliveries"], 1);
  EXPECT_EQ(letter["size"], 8 + 16) << "the cereal encoding: a length, then the bytes";
  EXPECT_NE(letter["preview"].get<std::string>().find("poison\\x1b[31m pill"), std::string::npos) << js.out;
  EXPECT_FALSE(letter["original_id"].get<std::string>().empty());

  const CliRun text = run_cli({"dead", "--redis", url(), name});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("1 dead letter in queue"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("poison\\x1b[31m pill"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find('\x1b'), std::string::npos) << "no raw escape sequence reaches the terminal";

  const CliRun requeue = run_cli({"dead", "--redis", url(), name, "--requeue", "--json"});
  ASSERT_EQ(requeue.status, 0) << requeue.err;
  EXPECT_EQ(json_of(requeue)["requeued"], 1);
  EXPECT_EQ(q.dead_letters(), 0u);
  EXPECT_EQ(q.get(2s), "poison\x1b[31m pill");
  EXPECT_EQ(q.delivery_counts(), std::vector<std::uint32_t>{1});

  const CliRun none = run_cli({"dead", "--redis", url(), name, "--requeue"});
  ASSERT_EQ(none.status, 0) << none.err;
  EXPECT_NE(none.out.find("requeued 0 dead letters"), std::string::npos) << none.out;
}

TEST(RedisCli, RmDeletesAQueueAndSaysSoWhenThereIsNone) {
  SKIP_WITHOUT_REDIS();
  auto hub = shared_hub();
  const std::string name = unique_name("rm");
  hub.queue<int>(name).put(7);
  const CliRun rm = run_cli({"rm", "--redis", url(), name});
  ASSERT_EQ(rm.status, 0) << rm.err;
  EXPECT_EQ(shared_redis().command({"EXISTS", "ipckit:{" + name + "}"}), ":0\r\n");
  const CliRun inspect = run_cli({"inspect", "--redis", url(), name});
  EXPECT_EQ(inspect.status, 1);
  EXPECT_EQ(inspect.err.rfind("ipckit: no queue or pool named '" + name + "'", 0), 0u) << inspect.err;
  const CliRun again = run_cli({"rm", "--redis", url(), name, "--json"});
  EXPECT_EQ(again.status, 1);
  EXPECT_EQ(json_of(again)["removed"][0]["result"], "missing");
  EXPECT_EQ(run_cli({"rm", "-f", "--redis", url(), name}).status, 0);
  EXPECT_EQ(run_cli({"dead", "--redis", url(), name}).status, 1);
}

TEST(RedisCli, AnUnreachableServerOrABadUrlIsAnErrorWithinSeconds) {
  SKIP_WITHOUT_REDIS();
  // A loopback port nobody listens on: bound, then closed.
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
  ::close(s);
  const std::string dead_url = "redis://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/0";
  const CliRun r = run_cli({"ls", "--redis", dead_url});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_EQ(r.err.rfind("ipckit: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(dead_url), std::string::npos) << "names the server: " << r.err;
  EXPECT_LT(r.took, 5s);
  for (const char* bad : {"http://127.0.0.1:6379", "redis://127.0.0.1:notaport/0", "rediss://127.0.0.1/0"}) {
    const CliRun r = run_cli({"ls", "--redis", bad});
    EXPECT_EQ(r.status, 1) << bad << ": " << r.err;
    EXPECT_EQ(r.err.rfind("ipckit: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
  EXPECT_EQ(run_cli({"dead", "jobs"}).status, 2) << "dead needs --redis";
}

TEST(RedisCli, KeysThatAreNoQueueAreSkippedOrShownAsCorruptNeverACrash) {
  SKIP_WITHOUT_REDIS();
  const std::string garbage = unique_name("garbage"), evil = unique_name("evil") + "\n\x1b[31m";
  shared_redis().command({"HSET", "ipckit:{" + garbage + "}", "kind", "zzz", "queued", "notanumber"});
  shared_redis().command({"HSET", "ipckit:{" + evil + "}", "kind", "queue", "type", "\x1b]0;owned\x07"});
  // Not queue meta hashes: another ipckit prefix, a queue's other keys, a non-hash.
  const std::string other = unique_name("other");
  shared_redis().command({"HSET", "ipckit:pool:{" + other + "}", "kind", "pool"});
  shared_redis().command({"HSET", "ipckit:{" + other + "}:producers", "p", "1:1:ok"});
  shared_redis().command({"SET", "ipckit:{" + other + "x}", "a string"});

  const CliRun js = run_cli({"ls", "--redis", url(), "--json"});
  ASSERT_EQ(js.status, 0) << js.err;
  const Json all = json_of(js);
  const Json g = find(all["queues"], "name", garbage);
  ASSERT_TRUE(g.is_object()) << js.out;
  EXPECT_EQ(g["corrupt"], true);
  const std::string problems = g["problems"].dump();
  EXPECT_NE(problems.find("zzz"), std::string::npos) << problems;
  EXPECT_NE(problems.find("notanumber"), std::string::npos) << problems;
  for (const auto& q : all["queues"])
    EXPECT_EQ(q["name"].get<std::string>().find(other), std::string::npos) << "not a queue: " << q.dump();

  const CliRun text = run_cli({"ls", "--redis", url()});
  ASSERT_EQ(text.status, 0) << text.err;
  const auto row = text.out.find(garbage + " ");
  ASSERT_NE(row, std::string::npos) << text.out;
  const std::string line = text.out.substr(row, text.out.find('\n', row) - row);
  EXPECT_NE(line.find("corrupt: "), std::string::npos) << text.out;
  EXPECT_NE(line.find("more (inspect it)"), std::string::npos) << "a listing shows the first few problems: " << line;
  EXPECT_EQ(text.out.find('\x1b'), std::string::npos) << "names and values are escaped:\n" << text.out;
  EXPECT_NE(text.out.find("\\n\\x1b[31m"), std::string::npos) << text.out;

  const CliRun inspect = run_cli({"inspect", "--redis", url(), garbage});
  ASSERT_EQ(inspect.status, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("corrupt"), std::string::npos) << inspect.out;
  EXPECT_EQ(run_cli({"ps", "--redis", url()}).status, 0);
  EXPECT_EQ(run_cli({"dead", "--redis", url(), garbage}).status, 0);
  EXPECT_EQ(run_cli({"rm", "--redis", url(), garbage}).status, 0);
  EXPECT_EQ(shared_redis().command({"EXISTS", "ipckit:{" + garbage + "}"}), ":0\r\n");
}

TEST(RedisCli, PriorityQueuesShowTheirCountsHoldersAndDeadLettersAndRequeue) {
  SKIP_WITHOUT_REDIS();
  auto hub = shared_hub();
  const std::string name = unique_name("prio");
  const rd::QueueOptions o{.visibility_timeout = 50ms, .max_deliveries = 1};
  auto q = hub.priority_queue<std::string>(name, o);
  q.put(-1, "poison");
  Child consumer([&] {
    auto mine = rd::Hub(url()).priority_queue<std::string>(name, o);  // alive: its next get would ack
    EXPECT_EQ(mine.get(5s), "poison");
    ::raise(SIGKILL);  // dies holding it
  });
  EXPECT_NE(consumer.wait_exit(10s), 0);
  EXPECT_THROW(q.get(600ms), ipckit::Empty) << "its second delivery goes to the dead letters";
  ASSERT_EQ(q.dead_letters(), 1u);
  q.put(2, "b");
  q.put(1, "a");
  EXPECT_EQ(q.get(2s), "a");  // held by this handle until its next get

  const CliRun ls = run_cli({"ls", "--redis", url(), "--json"});
  ASSERT_EQ(ls.status, 0) << ls.err;
  const Json l = find(json_of(ls)["queues"], "name", name);
  ASSERT_TRUE(l.is_object()) << ls.out;
  EXPECT_EQ(l["kind"], "priority");
  EXPECT_EQ(l["corrupt"], false) << l;
  EXPECT_EQ(l["queued"], 1);
  EXPECT_EQ(l["pending"], 1);
  EXPECT_EQ(l["dead"], 1);

  const CliRun in = run_cli({"inspect", "--redis", url(), name, "--json"});
  ASSERT_EQ(in.status, 0) << in.err;
  const Json c = find(json_of(in)["consumers"], "pid", ::getpid());
  ASSERT_TRUE(c.is_object()) << in.out;
  EXPECT_EQ(c["pending"], 1);
  EXPECT_EQ(c["idle_ms"], -1) << "a priority queue keeps no heartbeat";
  const CliRun text = run_cli({"inspect", "--redis", url(), name});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("priority queue '" + name + "'"), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("corrupt"), std::string::npos) << text.out;

  const CliRun dead = run_cli({"dead", "--redis", url(), name, "--json"});
  ASSERT_EQ(dead.status, 0) << dead.err;
  const Json d = json_of(dead);
  ASSERT_EQ(d["dead_letters"].size(), 1u) << dead.out;
  EXPECT_EQ(d["dead_letters"][0]["deliveries"], 1);
  EXPECT_NE(d["dead_letters"][0]["preview"].get<std::string>().find("poison"), std::string::npos) << dead.out;
  const CliRun requeue = run_cli({"dead", "--redis", url(), name, "--requeue", "--json"});
  ASSERT_EQ(requeue.status, 0) << requeue.err;
  EXPECT_EQ(json_of(requeue)["requeued"], 1);
  EXPECT_EQ(q.dead_letters(), 0u);
  EXPECT_EQ(q.get(2s), "poison") << "back with its priority, ahead of b";
  EXPECT_EQ(q.get(2s), "b");
}

TEST(RedisCli, LsInspectAndPsShowAPoolItsWorkersWithPidsHeartbeatsAndTheBusyOnesTask) {
  SKIP_WITHOUT_REDIS();
  const std::string name = unique_name("cli_pool");
  const std::string release = "/tmp/ipckit_cli_release_" + name;
  std::filesystem::remove(release);
  const rd::PoolOptions o{.visibility_timeout = 3s};
  std::vector<Child> workers;
  const std::string u = url();  // the server starts here, not in each child
  for (int i = 0; i < 2; ++i) workers.emplace_back([&] { rd::serve_pool(rd::Hub(u), name, o); });
  ipckit::ProcessPool pool = rd::pool(shared_hub(), name, o);
  auto f = pool.submit(cli_hold, release);
  // Both heartbeats in, and the busy worker's naming its task (a beat comes every second).
  ASSERT_TRUE(eventually([&] {
    const auto p = rd::inspect_pool(shared_hub(), name);
    return p.workers.size() == 2 &&
           std::any_of(p.workers.begin(), p.workers.end(), [](const auto& w) { return w.task != 0; });
  }));

  const CliRun ls = run_cli({"ls", "--redis", url(), "--json"});
  ASSERT_EQ(ls.status, 0) << ls.err;
  const Json l = find(json_of(ls)["pools"], "name", name);
  ASSERT_TRUE(l.is_object()) << ls.out;
  EXPECT_EQ(l["kind"], "pool");
  EXPECT_EQ(l["workers"], 2);
  EXPECT_EQ(l["running"], 1);
  EXPECT_EQ(l["queued"], 0);
  EXPECT_EQ(l["state"], "open");
  EXPECT_EQ(l["corrupt"], false) << l;
  EXPECT_EQ(l["options"]["visibility_timeout_ms"], 3000);
  const CliRun ls_text = run_cli({"ls", "--redis", url()});
  ASSERT_EQ(ls_text.status, 0) << ls_text.err;
  const auto row = ls_text.out.find(name + " ");
  ASSERT_NE(row, std::string::npos) << ls_text.out;
  EXPECT_NE(ls_text.out.substr(row, ls_text.out.find('\n', row) - row).find(" pool "), std::string::npos)
      << ls_text.out;

  const CliRun in = run_cli({"inspect", "--redis", url(), name, "--json"});
  ASSERT_EQ(in.status, 0) << in.err;
  const Json info = json_of(in);
  EXPECT_EQ(info["kind"], "pool");
  ASSERT_EQ(info["workers"].size(), 2u) << in.out;
  int busy = 0;
  for (const auto& child : workers) {
    const Json w = find(info["workers"], "pid", child.pid());
    ASSERT_TRUE(w.is_object()) << "worker " << child.pid() << " in " << in.out;
    EXPECT_EQ(w["host"], hostname());
    EXPECT_EQ(w["process"], "running");
    EXPECT_EQ(w["corrupt"], false) << w;
    EXPECT_EQ(w["silent"], false) << w;
    EXPECT_GE(w["heartbeat_age_ms"].get<std::int64_t>(), 0);
    EXPECT_LT(w["heartbeat_age_ms"].get<std::int64_t>(), 3000);
    EXPECT_GT(w["started_ms"].get<std::int64_t>(), 0);
    if (w["state"] == "busy") {
      ++busy;
      EXPECT_NE(w["task"], 0);
      EXPECT_GE(w["running_ms"].get<std::int64_t>(), 0);
      EXPECT_EQ(w["pending"], 1);
    } else {
      EXPECT_EQ(w["state"], "idle") << w;
      EXPECT_EQ(w["running_ms"], -1);
    }
  }
  EXPECT_EQ(busy, 1) << in.out;
  ASSERT_EQ(info["clients"].size(), 1u) << "the client's result stream: " << in.out;
  EXPECT_NE(info["clients"][0]["name"].get<std::string>().find("/" + std::to_string(::getpid()) + "/"),
            std::string::npos)
      << in.out;
  const CliRun text = run_cli({"inspect", "--redis", url(), name});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("pool '" + name + "'"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("busy"), std::string::npos) << text.out;
  for (const auto& child : workers) EXPECT_NE(text.out.find(std::to_string(child.pid())), std::string::npos);

  const CliRun ps = run_cli({"ps", "--redis", url(), "--json"});
  ASSERT_EQ(ps.status, 0) << ps.err;
  const Json pw = find(json_of(ps)["workers"], "pid", workers[0].pid());
  ASSERT_TRUE(pw.is_object()) << ps.out;
  EXPECT_EQ(pw["pool"], name);
  const CliRun ps_text = run_cli({"ps", "--redis", url(), name});
  ASSERT_EQ(ps_text.status, 0) << ps_text.err;
  EXPECT_NE(ps_text.out.find("HEARTBEAT"), std::string::npos) << ps_text.out;
  EXPECT_NE(ps_text.out.find("busy"), std::string::npos) << ps_text.out;
  EXPECT_NE(ps_text.out.find(std::to_string(workers[1].pid())), std::string::npos) << ps_text.out;

  { std::ofstream{release}; }
  const int ran_on = f.get(20s);
  EXPECT_TRUE(ran_on == workers[0].pid() || ran_on == workers[1].pid()) << ran_on;
  std::filesystem::remove(release);
  pool.shutdown();
  rd::close_pool(shared_hub(), name);
  for (auto& w : workers) EXPECT_EQ(w.wait_exit(20s), 0);
  const CliRun rm = run_cli({"rm", "--redis", url(), name, "--pool"});
  ASSERT_EQ(rm.status, 0) << rm.err;
  EXPECT_EQ(shared_redis().command({"EXISTS", "ipckit:pool:{" + name + "}"}), ":0\r\n");
  EXPECT_EQ(run_cli({"rm", "--redis", url(), name, "--pool"}).status, 1) << "no pool left to remove";
  EXPECT_EQ(run_cli({"inspect", name, "--pool"}).status, 2) << "--pool needs --redis";
}

TEST(RedisCli, DeadPoolShowsATaskWhoseWorkerWasKilledAndGarbageHeartbeatsShowAsCorrupt) {
  SKIP_WITHOUT_REDIS();
  const std::string name = unique_name("cli_dead_pool");
  const std::string never = "/tmp/ipckit_cli_never_" + name;  // not made: the task runs till it is killed
  const rd::PoolOptions o{.visibility_timeout = 200ms, .retries = 0};
  const std::string u = url();  // the server starts here, not in each child
  Child victim([&] { rd::serve_pool(rd::Hub(u), name, o); });
  ipckit::ProcessPool pool = rd::pool(shared_hub(), name, o);
  auto f = pool.submit(cli_hold, never);
  ASSERT_TRUE(eventually([&] { return pool.stats().running == 1; }));
  victim.kill(SIGKILL);
  EXPECT_NE(victim.wait_exit(10s), 0);
  Child rescuer([&] { rd::serve_pool(rd::Hub(u), name, o); });
  EXPECT_THROW(f.get(10s), ipckit::WorkerDied);

  const CliRun js = run_cli({"dead", "--redis", url(), name, "--pool", "--json"});
  ASSERT_EQ(js.status, 0) << js.err;
  const Json d = json_of(js);
  EXPECT_EQ(d["pool"], name);
  EXPECT_EQ(d["dead"], 1);
  ASSERT_EQ(d["dead_tasks"].size(), 1u) << js.out;
  const Json t = d["dead_tasks"][0];
  EXPECT_EQ(t["function"], "cli_hold");
  EXPECT_EQ(t["deliveries"], 1);
  EXPECT_NE(t["task"], 0);
  EXPECT_FALSE(t.contains("problem")) << t;
  const CliRun text = run_cli({"dead", "--redis", url(), name, "--pool"});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("1 dead task in pool"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("cli_hold"), std::string::npos) << text.out;
  EXPECT_EQ(run_cli({"dead", "--redis", url(), name, "--pool", "--requeue"}).status, 1);
  const CliRun no_queue = run_cli({"dead", "--redis", url(), name});
  EXPECT_EQ(no_queue.status, 1) << "a pool's name is no queue's: " << no_queue.out;

  // The killed worker's heartbeat stays, older than the lease: silent, its process gone.
  const std::string workers_key = "ipckit:pool:{" + name + "}:workers";
  shared_redis().command({"HSET", workers_key, "evil/1/x/w", "pid=abc;\x1b[31m;seen=zz"});
  shared_redis().command({"HSET", workers_key, "bare", ""});
  const CliRun ps = run_cli({"ps", "--redis", url(), name, "--json"});
  ASSERT_EQ(ps.status, 0) << ps.err;
  const Json all = json_of(ps)["workers"];
  const Json dead_worker = find(all, "pid", victim.pid());
  ASSERT_TRUE(dead_worker.is_object()) << ps.out;
  EXPECT_EQ(dead_worker["state"], "silent") << dead_worker;
  EXPECT_EQ(dead_worker["process"], "gone");
  const Json evil = find(all, "name", "evil/1/x/w");
  ASSERT_TRUE(evil.is_object()) << ps.out;
  EXPECT_EQ(evil["corrupt"], true);
  EXPECT_EQ(evil["state"], "corrupt");
  EXPECT_NE(evil["problems"].dump().find("abc"), std::string::npos) << evil;
  EXPECT_EQ(find(all, "name", "bare")["corrupt"], true) << ps.out;
  EXPECT_TRUE(find(all, "pid", rescuer.pid()).is_object()) << ps.out;
  const CliRun ps_text = run_cli({"ps", "--redis", url(), name});
  ASSERT_EQ(ps_text.status, 0) << ps_text.err;
  EXPECT_NE(ps_text.out.find("corrupt: "), std::string::npos) << ps_text.out;
  EXPECT_NE(ps_text.out.find("(silent)"), std::string::npos) << ps_text.out;
  EXPECT_EQ(ps_text.out.find('\x1b'), std::string::npos) << "escaped:\n" << ps_text.out;
  EXPECT_EQ(run_cli({"inspect", "--redis", url(), name}).status, 0);

  // A pool meta hash of garbage: listed as corrupt, never a crash.
  const std::string garbage = unique_name("garbage_pool");
  shared_redis().command({"HSET", "ipckit:pool:{" + garbage + "}", "layout", "9", "closed", "zz"});
  const CliRun ls = run_cli({"ls", "--redis", url(), "--json"});
  ASSERT_EQ(ls.status, 0) << ls.err;
  const Json g = find(json_of(ls)["pools"], "name", garbage);
  ASSERT_TRUE(g.is_object()) << ls.out;
  EXPECT_EQ(g["corrupt"], true);
  EXPECT_NE(g["problems"].dump().find("zz"), std::string::npos) << g;
  EXPECT_EQ(run_cli({"ls", "--redis", url()}).status, 0);
  EXPECT_EQ(run_cli({"inspect", "--redis", url(), garbage, "--pool"}).status, 0);
  EXPECT_EQ(run_cli({"rm", "--redis", url(), garbage, "--pool"}).status, 0);

  pool.shutdown();
  rd::close_pool(shared_hub(), name);
  EXPECT_EQ(rescuer.wait_exit(20s), 0);
  rd::remove_pool(shared_hub(), name);
}

}  // namespace
