// The `ipckit` CLI run against live objects: what `inspect` says of values,
// a lock whose holder died, queues (with the processes holding unfinished
// tasks) and priority queues, in text and as JSON.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

using namespace std::chrono_literals;
using ipckit::Segment;
using namespace ipckit::testing;

namespace {

// Runs the CLI with `args`; its exit status and standard output.
std::pair<int, std::string> run_cli(const std::string& args) {
  const std::string command = std::string(IPCKIT_CLI) + " " + args + " 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return {-1, ""};
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe.release());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST(Cli, InspectShowsValuesADeadLockHolderAndWhoHoldsUnfinishedTasks) {
  ScopedSegmentName n("cli_inspect");
  auto seg = Segment::create(n.name, 8 << 20);
  seg.value<std::int64_t>("counter").set(42);
  auto lock = seg.lock("guard");
  auto jobs = seg.joinable_queue<int>("jobs", {.capacity_bytes = 1 << 16});
  auto urgent = seg.priority_queue<int>("urgent", {.capacity_bytes = 1 << 12, .max_message = 8});
  for (int i = 0; i < 5; ++i) jobs.put(i);
  urgent.put(7, 1);
  urgent.put(-3, 2);
  Signal ready;
  Child holder([&] {
    lock.lock();
    (void)jobs.get(5s);
    (void)jobs.get(5s);
    ready.post();
    ::pause();
  });
  ASSERT_TRUE(ready.wait());
  (void)jobs.get_nowait();  // one task held by this process

  const auto [rc, text] = run_cli("inspect " + n.name);
  EXPECT_EQ(rc, 0) << text;
  EXPECT_TRUE(has(text, "42")) << text;
  EXPECT_TRUE(has(text, std::to_string(holder.pid()))) << "the lock holder\n" << text;
  EXPECT_TRUE(has(text, "2 items")) << "jobs: 2 still queued\n" << text;
  EXPECT_TRUE(has(text, "5 unfinished")) << text;
  EXPECT_TRUE(has(text, "2 by pid " + std::to_string(holder.pid()))) << text;
  EXPECT_TRUE(has(text, "1 by pid " + std::to_string(::getpid()))) << text;
  EXPECT_TRUE(has(text, "lowest priority -3")) << text;

  holder.kill(SIGKILL);
  EXPECT_EQ(holder.wait_exit(), -SIGKILL);
  const auto [rc2, after] = run_cli("inspect " + n.name);
  EXPECT_EQ(rc2, 0);
  EXPECT_TRUE(has(after, "2 by pid " + std::to_string(holder.pid()) + " (dead)")) << after;
  EXPECT_TRUE(has(after, "dead")) << "the lock's dead holder\n" << after;

  const auto [rc3, json] = run_cli("inspect --json " + n.name);
  EXPECT_EQ(rc3, 0);
  EXPECT_TRUE(has(json, "\"unfinished\": 5")) << json;
  EXPECT_TRUE(has(json, "{\"pid\": " + std::to_string(holder.pid()) + ", \"tasks\": 2, \"alive\": false}")) << json;
  EXPECT_TRUE(has(json, "\"lowest_priority\": -3")) << json;
  // join() then counts the dead holder's two tasks as abandoned.
  jobs.task_done();
  while (!jobs.empty()) {
    (void)jobs.get_nowait();
    jobs.task_done();
  }
  EXPECT_TRUE(jobs.join(2s));
  EXPECT_EQ(jobs.abandoned_tasks(), 2u);
  EXPECT_TRUE(has(run_cli("inspect " + n.name).second, "2 abandoned"));
}
