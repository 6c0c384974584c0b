// lifecycle — a worker process walks through the seed's lifecycle (created,
// started, running, blocked on a lock, blocked on a queue, terminated) while
// the main process watches it in the segment's process table, the way
// `ipckit ps` does: never locking, never waiting on the worker.
//
//   ./lifecycle [--segment NAME]
//
// The main process drives each step (it holds the lock the worker will want,
// it puts the item the worker waits for), so every state is seen for sure;
// the table's history ring shows the transitions too fast to poll (New and
// Runnable last microseconds).
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <thread>

#include "demo.hpp"
#include "ipckit/ipckit.hpp"
#include "ipckit/process_table.hpp"

using namespace std::chrono_literals;

namespace {

std::optional<ipckit::AttachedProcess> find(const ipckit::Segment& seg, int pid) {
  for (auto& p : seg.processes())
    if (p.pid == pid) return p;
  return std::nullopt;
}

std::string describe(const ipckit::AttachedProcess& p) {
  std::string s = std::string(ipckit::to_string(p.state)) + (p.alive ? "" : ", not alive");
  for (const auto& w : p.waits) s += ": " + w.operation + " on '" + w.object + "'";
  for (const auto& h : p.holds) s += ", holds '" + h.object + "'";
  return s;
}

// Polls the table until the worker matches `want` (at most 10 s); prints what it saw.
bool observe(const ipckit::Segment& seg, int pid, const char* step, bool (*want)(const ipckit::AttachedProcess&)) {
  const auto until = demo::Clock::now() + 10s;
  std::optional<ipckit::AttachedProcess> p;
  while (demo::Clock::now() < until) {
    p = find(seg, pid);
    if (p && want(*p)) {
      demo::say("  main sees %-28s pid %d '%s': %s\n", step, p->pid, p->name.c_str(), describe(*p).c_str());
      return true;
    }
    std::this_thread::sleep_for(2ms);
  }
  demo::say("  main never saw %s (last: %s)\n", step, p ? describe(*p).c_str() : "not listed");
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A worker walks through its lifecycle; the main process watches the process table"};
  std::string name = "lifecycle_demo_" + std::to_string(::getpid());
  app.add_option("--segment", name, "Segment name");
  CLI11_PARSE(app, argc, argv);

  ipckit::SegmentRemover remover(name);
  auto seg = ipckit::Segment::create(name, 4 << 20);
  auto lock = seg.lock("A");
  auto jobs = seg.queue<std::string>("jobs", {.capacity_bytes = 4096});
  auto phase = seg.raw_value<std::int32_t>("phase");
  demo::Verdict verdict;

  ipckit::Process worker(
      [&] {
        // Running: busy (polling, not blocked) until main says go on.
        while (std::atomic_ref<std::int32_t>(phase.ref()).load() == 0) std::this_thread::sleep_for(1ms);
        { std::lock_guard g(lock); }         // blocked on the lock main holds
        const std::string job = jobs.get();  // blocked on the empty queue
        demo::say("  worker got '%s' and ends\n", job.c_str());
      },
      {.name = "worker"});
  demo::say("created: a Process object, no process yet (it is listed from its start)\n");
  lock.lock();
  worker.start();
  const int pid = worker.pid();
  demo::say("started: pid %d\n", pid);
  verdict.expect(observe(seg, pid, "running", [](const auto& p) { return p.state == ipckit::ProcessState::Running; }),
                 "worker seen running");
  std::atomic_ref<std::int32_t>(phase.ref()).store(1);
  verdict.expect(
      observe(seg, pid, "blocked on the lock",
              [](const auto& p) { return p.state == ipckit::ProcessState::Blocked && p.waits[0].operation == "lock"; }),
      "worker seen blocked on lock 'A'");
  lock.unlock();
  verdict.expect(
      observe(seg, pid, "blocked on the queue",
              [](const auto& p) { return p.state == ipckit::ProcessState::Blocked && p.waits[0].operation == "get"; }),
      "worker seen blocked in get on queue 'jobs'");
  jobs.put("job-1");
  worker.join();
  verdict.expect(observe(seg, pid, "terminated",
                         [](const auto& p) { return p.state == ipckit::ProcessState::Terminated && !p.alive; }),
                 "worker seen terminated");
  if (auto p = find(seg, pid)) {
    demo::say("its history ring (every transition, even those too fast to poll):\n");
    const std::int64_t t0 = p->history.empty() ? 0 : p->history.front().unix_us;
    for (const auto& h : p->history)
      demo::say("  +%8.3f ms  %s\n", double(h.unix_us - t0) / 1000.0, ipckit::to_string(h.state));
    verdict.expect(p->history.size() >= 6 && p->history.front().state == ipckit::ProcessState::New,
                   "history from New to Terminated");
  }
  return verdict.finish();
}
