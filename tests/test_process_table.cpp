// The process table (ipckit/process_table.hpp) and `ipckit ps`: slots claimed,
// shared and given back, pid + start time identity, a full table that only
// stops listing, waits shown on the right object and operation, held locks,
// a SIGKILLed process's slot reclaimed, churn, corrupted slot bytes, the
// lifecycle of an ipckit::Process, and the CLI in text and JSON.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli_run.hpp"
#include "ipckit/detail/thread_id.hpp"
#include "ipckit/ipckit.hpp"
#include "ipckit/process_table.hpp"
#include "multiprocess.hpp"
#include "process_table_layout.hpp"
#include "segment_layout.hpp"

using namespace std::chrono_literals;
using ipckit::AttachedProcess;
using ipckit::ProcessState;
using ipckit::Segment;
using namespace ipckit::testing;

namespace ipckit {
// gtest prints states by name.
inline void PrintTo(ProcessState state, std::ostream* os) { *os << to_string(state); }
}  // namespace ipckit

namespace {

constexpr std::size_t kSize = 1 << 20;

// A look-only handle: it is not listed itself.
Segment look(const std::string& name) {
  ipckit::OpenOptions o;
  o.any_owner = true;
  return Segment::open(name, o);
}

std::optional<AttachedProcess> find_pid(const Segment& seg, int pid) {
  for (auto& p : seg.processes())
    if (p.pid == pid) return p;
  return std::nullopt;
}

// Waits until process `pid` is shown blocked in `op` on `object`.
bool shown_blocked(const Segment& seg, int pid, const std::string& op, const std::string& object) {
  return eventually([&] {
    auto p = find_pid(seg, pid);
    return p && p->state == ProcessState::Blocked && !p->waits.empty() && p->waits[0].operation == op &&
           p->waits[0].object == object;
  });
}

// The raw table of a segment, mapped a second time, for planting bytes.
struct RawTable {
  explicit RawTable(const std::string& name) {
    const int fd = ::open(("/dev/shm/ipckit." + name).c_str(), O_RDWR);
    EXPECT_GE(fd, 0);
    size = kSize;
    base = static_cast<char*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    ::close(fd);
    const auto& h = *reinterpret_cast<ipckit::detail::SegmentHeader*>(base);
    slots = reinterpret_cast<ipckit::detail::ProcessSlot*>(base + h.process_table_offset);
    n = h.max_processes;
  }
  ~RawTable() { ::munmap(base, size); }
  RawTable(const RawTable&) = delete;
  RawTable& operator=(const RawTable&) = delete;
  char* base = nullptr;
  std::size_t size = 0;
  ipckit::detail::ProcessSlot* slots = nullptr;
  std::uint32_t n = 0;
};

}  // namespace

TEST(ProcessTable, ListsTheCreatorByPidAndStartTime) {
  ScopedSegmentName n("pt_creator");
  auto seg = Segment::create(n.name, kSize);
  const auto all = seg.processes();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].pid, ::getpid());
  EXPECT_EQ(all[0].start_ticks, ipckit::detail::process_start_ticks(::getpid()));
  EXPECT_EQ(all[0].name, ipckit::current_process().name);
  EXPECT_TRUE(all[0].alive);
  EXPECT_EQ(all[0].state, ProcessState::Running);
  EXPECT_TRUE(all[0].waits.empty());
  EXPECT_NEAR(static_cast<double>(all[0].attached_unix), static_cast<double>(std::time(nullptr)), 60);
}

TEST(ProcessTable, HandlesShareOneSlotAndTheLastGivesItBack) {
  ScopedSegmentName n("pt_share");
  {
    auto a = Segment::create(n.name, kSize);
    auto b = Segment::open(n.name);
    EXPECT_EQ(look(n.name).processes().size(), 1u);
  }
  EXPECT_TRUE(look(n.name).processes().empty());  // look-only opens are not listed
}

TEST(ProcessTable, MaxProcessesIsValidated) {
  ScopedSegmentName n("pt_bad");
  EXPECT_THROW(Segment::create(n.name, kSize, {.max_processes = 0}), ipckit::InvalidArgument);
  EXPECT_THROW(Segment::create(n.name, kSize, {.max_processes = 70'000}), ipckit::InvalidArgument);
  EXPECT_THROW(Segment::create(n.name, Segment::min_size(256, 4096) - 1, {.max_processes = 4096}),
               ipckit::InvalidArgument);
  EXPECT_NO_THROW(Segment::create(n.name, Segment::min_size(256, 4096), {.max_processes = 4096}));
}

// The default table (SegmentOptions::max_processes) must leave the smallest
// segments users make, 64 KiB, usable with the default directory.
TEST(ProcessTable, TheDefaultTableFitsA64KiBSegment) {
  ScopedSegmentName n("pt_small");
  EXPECT_LE(Segment::min_size(), std::size_t{64} << 10);
  auto seg = Segment::create(n.name, std::size_t{64} << 10);
  EXPECT_EQ(seg.info().max_processes, ipckit::SegmentOptions{}.max_processes);
  EXPECT_EQ(seg.processes().size(), 1u);
}

TEST(ProcessTable, ShowsALockWaiterAndTheHolder) {
  ScopedSegmentName n("pt_lock");
  auto seg = Segment::create(n.name, kSize);
  auto a = seg.lock("A");
  a.lock();
  Child c([&] {
    a.lock();  // a forked child: listed on its first blocking wait
    a.unlock();
  });
  ASSERT_TRUE(shown_blocked(seg, c.pid(), "lock", "A"));
  const auto waiter = *find_pid(seg, c.pid());
  EXPECT_EQ(waiter.waits[0].kind, ipckit::ObjectKind::Lock);
  EXPECT_EQ(waiter.waits[0].tid, static_cast<std::uint32_t>(c.pid()));
  EXPECT_EQ(waiter.waits[0].thread_start_ticks, ipckit::detail::process_start_ticks(c.pid()));
  EXPECT_GE(waiter.waits[0].seconds, 0.0);
  const auto me = *find_pid(seg, ::getpid());
  ASSERT_EQ(me.holds.size(), 1u);
  EXPECT_EQ(me.holds[0].object, "A");
  EXPECT_TRUE(me.holds[0].tid != 0);
  a.unlock();
  EXPECT_EQ(c.wait_exit(), 0);
  // The wait record went with the wait; the history shows the blocked spell.
  const auto after = *find_pid(seg, c.pid());
  EXPECT_TRUE(after.waits.empty());
  EXPECT_FALSE(after.alive);
  EXPECT_TRUE(std::any_of(after.history.begin(), after.history.end(),
                          [](const auto& h) { return h.state == ProcessState::Blocked; }));
}

TEST(ProcessTable, ShowsQueueGetAndSemaphoreAcquire) {
  ScopedSegmentName n("pt_queue");
  auto seg = Segment::create(n.name, kSize);
  auto q = seg.queue<int>("jobs", {.capacity_bytes = 4096});
  auto s = seg.semaphore("slots", 0);
  Child getter([&] { EXPECT_EQ(q.get(), 7); });
  Child acquirer([&] { EXPECT_TRUE(s.acquire(20s)); });
  ASSERT_TRUE(shown_blocked(seg, getter.pid(), "get", "jobs"));
  ASSERT_TRUE(shown_blocked(seg, acquirer.pid(), "acquire", "slots"));
  EXPECT_EQ(find_pid(seg, getter.pid())->waits[0].kind, ipckit::ObjectKind::Queue);
  q.put(7);
  s.release();
  EXPECT_EQ(getter.wait_exit(), 0);
  EXPECT_EQ(acquirer.wait_exit(), 0);
}

TEST(ProcessTable, AFullTableOnlyStopsListing) {
  ScopedSegmentName n("pt_full");
  auto seg = Segment::create(n.name, kSize, {.max_processes = 2});
  auto e = seg.event("go");
  std::vector<Child> kids;
  for (int i = 0; i < 4; ++i)
    kids.emplace_back([&] {
      auto mine = Segment::open(n.name);
      EXPECT_TRUE(mine.event("go").wait(20s));
    });
  ASSERT_TRUE(eventually([&] { return seg.processes().size() == 2; }));
  e.set();
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(), 0);
  EXPECT_LE(seg.processes().size(), 2u);
}

TEST(ProcessTable, ASigkilledProcessesSlotIsReclaimed) {
  ScopedSegmentName n("pt_kill");
  auto seg = Segment::create(n.name, kSize, {.max_processes = 2});
  auto e = seg.event("never");
  Child victim([&] {
    auto mine = Segment::open(n.name);
    (void)mine.event("never").wait(30s);
  });
  ASSERT_TRUE(shown_blocked(seg, victim.pid(), "wait", "never"));
  victim.kill(SIGKILL);
  victim.wait_exit();
  auto dead = find_pid(seg, victim.pid());
  ASSERT_TRUE(dead);
  EXPECT_FALSE(dead->alive);
  Child next([&] { auto mine = Segment::open(n.name); });  // the table is full but for the dead slot
  EXPECT_EQ(next.wait_exit(), 0);
  EXPECT_FALSE(find_pid(seg, victim.pid()));
}

TEST(ProcessTable, AnotherProcessWithARecycledPidIsNotTheOwner) {
  ScopedSegmentName n("pt_recycled");
  auto seg = Segment::create(n.name, kSize, {.max_processes = 2});
  RawTable raw(n.name);
  // Plant a slot claiming our own pid but another start time: a dead process whose pid we got.
  auto& s = raw.slots[1];
  s.start.store(12345, std::memory_order_relaxed);
  s.owner.store(std::uint64_t{7} << 32 | static_cast<std::uint32_t>(::getpid()), std::memory_order_release);
  const auto all = seg.processes();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(std::count_if(all.begin(), all.end(), [](const auto& p) { return p.alive; }), 1);
  Child c([&] { auto mine = Segment::open(n.name); });  // takes the planted slot
  EXPECT_EQ(c.wait_exit(), 0);
  for (const auto& p : seg.processes()) EXPECT_NE(p.start_ticks, 12345u);
}

// Thousands of processes attach and die (half with their handle still open)
// through a table of 8 slots, from a few forkers at once: no slot leaks.
TEST(ProcessTable, ChurnNeverLeaksSlots) {
  ScopedSegmentName n("pt_churn");
  auto seg = Segment::create(n.name, kSize, {.max_processes = 8});
  auto l = seg.lock("L");
  auto ran = seg.raw_value<std::int64_t>("ran", 0);  // under L
  constexpr int kProcesses = 2000;
  constexpr int kForkers = 3;
  constexpr int kAtOnce = 3;  // per forker: up to 9 at once, so the table is sometimes full too
  const auto start = std::chrono::steady_clock::now();
  std::vector<Child> forkers;
  for (int f = 0; f < kForkers; ++f)
    forkers.emplace_back([&, f] {
      const int mine = kProcesses / kForkers + (f < kProcesses % kForkers ? 1 : 0);
      int started = 0;
      std::deque<Child> running;
      while (started < mine || !running.empty()) {
        while (started < mine && static_cast<int>(running.size()) < kAtOnce) {
          const int i = started;
          running.emplace_back([&, i] {
            auto attached = Segment::open(n.name);
            {
              std::lock_guard g(l);  // sometimes contended: a wait record too
              ran.set(ran.get() + 1);
            }
            // A few die holding the lock (the next taker waits up to 25 ms to
            // see it dead and take it over, so only a few).
            if (i % 64 == 0) l.lock();
            if (i % 2 == 0) ::_exit(0);  // dies attached: its slot is reclaimed later
          });
          ++started;
        }
        ASSERT_EQ(running.front().wait_exit(), 0);
        running.pop_front();
      }
    });
  for (auto& f : forkers) EXPECT_EQ(f.wait_exit(120s), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("churn_seconds", std::to_string(seconds));
  EXPECT_EQ(ran.get(), kProcesses);
  const auto all = seg.processes();
  EXPECT_LE(all.size(), 8u);
  EXPECT_EQ(std::count_if(all.begin(), all.end(), [](const auto& p) { return p.alive; }), 1);  // this process
  Child last([&] {
    auto mine = Segment::open(n.name);
    EXPECT_TRUE(find_pid(mine, ::getpid()).has_value());
  });
  EXPECT_EQ(last.wait_exit(), 0);
}

TEST(ProcessTable, CorruptedSlotBytesAreReadSafely) {
  ScopedSegmentName n("pt_corrupt");
  auto seg = Segment::create(n.name, kSize, {.max_processes = 16});
  seg.lock("A");
  RawTable raw(n.name);
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (std::uint32_t i = 1; i < raw.n; ++i) {
    auto* bytes = reinterpret_cast<unsigned char*>(&raw.slots[i]);
    for (std::size_t b = 0; b < sizeof(ipckit::detail::ProcessSlot); ++b) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      bytes[b] = static_cast<unsigned char>(x);
    }
  }
  // Half of them look published with a live pid (ours) and garbage everywhere else.
  for (std::uint32_t i = 1; i < raw.n; i += 2)
    raw.slots[i].owner.store(static_cast<std::uint32_t>(::getpid()), std::memory_order_release);
  for (int round = 0; round < 3; ++round) {
    const auto all = seg.processes();
    for (const auto& p : all) {
      EXPECT_LE(p.name.size(), 23u);
      EXPECT_LE(static_cast<std::uint32_t>(p.state), 4u);
      EXPECT_LE(p.waits.size(), ipckit::detail::kWaitRecords);
      EXPECT_LE(p.history.size(), ipckit::detail::kHistory);
      for (const auto& w : p.waits) EXPECT_FALSE(w.operation.empty());
    }
  }
  const auto [rc, text] = run_cli("ps --json " + n.name);
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(nlohmann::json::accept(text)) << text;
}

TEST(ProcessTable, AProcessWalksThroughItsLifecycle) {
  ScopedSegmentName n("pt_life");
  auto seg = Segment::create(n.name, kSize);
  auto go = seg.event("go");
  ipckit::Process worker([&] { (void)go.wait(20s); }, {.name = "walker"});
  worker.start();
  ASSERT_TRUE(shown_blocked(seg, worker.pid(), "wait", "go"));
  EXPECT_EQ(find_pid(seg, worker.pid())->name, "walker");
  go.set();
  worker.join();
  const auto done = *find_pid(seg, worker.pid());
  EXPECT_EQ(done.state, ProcessState::Terminated);
  EXPECT_FALSE(done.alive);
  std::vector<ProcessState> seen;
  for (const auto& h : done.history) seen.push_back(h.state);
  const std::vector<ProcessState> expected{ProcessState::New,     ProcessState::Runnable, ProcessState::Running,
                                           ProcessState::Blocked, ProcessState::Running,  ProcessState::Terminated};
  EXPECT_EQ(seen, expected);
}

TEST(ProcessTable, PsShowsABlockedChildInTextAndJson) {
  ScopedSegmentName n("pt_cli");
  auto seg = Segment::create(n.name, kSize);
  auto a = seg.lock("A");
  auto q = seg.queue<int>("jobs", {.capacity_bytes = 4096});
  a.lock();
  ipckit::Process getter([&] { (void)q.get(); }, {.name = "get\x1b]0;x"});
  getter.start();
  ASSERT_TRUE(shown_blocked(seg, getter.pid(), "get", "jobs"));
  const auto [rc, text] = run_cli("ps " + n.name);
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("BLOCKED ON"), std::string::npos) << text;
  EXPECT_NE(text.find(std::to_string(getter.pid())), std::string::npos) << text;
  EXPECT_NE(text.find("get on queue 'jobs'"), std::string::npos) << text;
  EXPECT_NE(text.find("get\\x1b]0;x"), std::string::npos) << text;  // the name, escaped
  EXPECT_NE(text.find("lock 'A'"), std::string::npos) << text;      // what this process holds
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  const auto [rc2, json_text] = run_cli("ps --json " + n.name);
  EXPECT_EQ(rc2, 0);
  const auto j = nlohmann::json::parse(json_text);
  ASSERT_EQ(j["segments"].size(), 1u);
  bool found = false;
  for (const auto& p : j["segments"][0]["processes"]) {
    if (p["pid"] != getter.pid()) continue;
    found = true;
    EXPECT_EQ(p["state"], "blocked");
    EXPECT_EQ(p["blocked_on"][0]["operation"], "get");
    EXPECT_EQ(p["blocked_on"][0]["object"], "jobs");
    EXPECT_EQ(p["name"], "get\x1b]0;x");
    EXPECT_EQ(p["blocked_on"][0]["kind"], "queue");
    EXPECT_TRUE(p["alive"].get<bool>());
  }
  EXPECT_TRUE(found) << json_text;
  const auto [rc3, all] = run_cli("ps");
  EXPECT_EQ(rc3, 0);
  EXPECT_NE(all.find(n.name), std::string::npos);
  EXPECT_EQ(run_cli("ps no_such_segment_pt").first, 1);
  q.put(1);
  a.unlock();
  getter.join();
}

// However the target ends its process (a return, a throw, std::exit,
// std::quick_exit), the table reads Terminated afterwards, not Running.
class ProcessTableEnding : public ::testing::TestWithParam<int> {};

TEST_P(ProcessTableEnding, AnEndedTargetReadsTerminated) {
  ScopedSegmentName n("pt_end");
  auto seg = Segment::create(n.name, kSize);
  auto go = seg.event("go");
  const int how = GetParam();
  ipckit::Process worker(
      [&, how] {
        (void)go.wait(20s);
        switch (how) {
          case 1:
            throw std::runtime_error("thrown on purpose by the test");
          case 2:
            std::exit(3);
          case 3:
            std::quick_exit(4);
          default:
            return;
        }
      },
      {.name = "ender"});
  worker.start();
  ASSERT_TRUE(shown_blocked(seg, worker.pid(), "wait", "go"));
  EXPECT_EQ(find_pid(seg, worker.pid())->state, ProcessState::Blocked);
  go.set();
  worker.join();
  const int expected_code[] = {0, 1, 3, 4};
  EXPECT_EQ(worker.exitcode(), expected_code[how]);
  const auto done = find_pid(seg, worker.pid());
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, ProcessState::Terminated);
  EXPECT_FALSE(done->alive);
  ASSERT_FALSE(done->history.empty());
  EXPECT_EQ(done->history.back().state, ProcessState::Terminated);
  EXPECT_EQ(std::count_if(done->history.begin(), done->history.end(),
                          [](const auto& h) { return h.state == ProcessState::Terminated; }),
            1);
}

std::string ending_name(const ::testing::TestParamInfo<int>& info) {
  static const char* const names[] = {"Return", "Throw", "Exit", "QuickExit"};
  return names[info.param];
}

INSTANTIATE_TEST_SUITE_P(ProcessTable, ProcessTableEnding, ::testing::Values(0, 1, 2, 3), ending_name);

// A plain fork of a Process child that calls std::exit() is not the child:
// it inherits the exit handler but records nothing (it was never listed).
TEST(ProcessTable, AForkOfAProcessChildExitingIsNotRecordedAsIt) {
  ScopedSegmentName n("pt_end_fork");
  auto seg = Segment::create(n.name, kSize);
  auto go = seg.event("go");
  ipckit::Process worker(
      [&] {
        Child grandchild([] { std::exit(0); });
        if (grandchild.wait_exit() != 0) std::exit(5);
        (void)go.wait(20s);
      },
      {.name = "parent-of-fork"});
  worker.start();
  ASSERT_TRUE(shown_blocked(seg, worker.pid(), "wait", "go"));
  for (const auto& p : seg.processes())
    EXPECT_TRUE(p.pid == ::getpid() || p.pid == worker.pid()) << "pid " << p.pid << " listed";
  EXPECT_EQ(find_pid(seg, worker.pid())->state, ProcessState::Blocked);
  go.set();
  worker.join();
  EXPECT_EQ(worker.exitcode(), 0);
  EXPECT_EQ(find_pid(seg, worker.pid())->state, ProcessState::Terminated);
}

namespace {

bool holds(const AttachedProcess& p, const std::string& object, ipckit::ObjectKind kind, const std::string& part) {
  return std::any_of(p.holds.begin(), p.holds.end(),
                     [&](const auto& h) { return h.object == object && h.kind == kind && h.part == part; });
}

}  // namespace

// The locks built into values, arrays and queues show as held, by the
// process that holds them, and only while it does.
TEST(ProcessTable, ShowsBuiltInLocksOfValuesArraysAndQueues) {
  using ipckit::ObjectKind;
  ScopedSegmentName n("pt_builtin");
  auto seg = Segment::create(n.name, kSize);
  auto counter = seg.value<int>("counter", 0);
  auto arr = seg.array<int>("arr", 4);
  auto named = seg.lock("named");
  auto bound = seg.value<int>("bound", 0, named);
  auto frames = seg.byte_queue("frames", {.capacity_bytes = 4096});
  auto jobs = seg.byte_queue("jobs", {.capacity_bytes = 4096});
  auto pq = seg.priority_queue<int>("pq", {.capacity_bytes = 4096, .max_message = 64});
  jobs.put("one");
  auto go = seg.event("go");
  auto held = seg.event("held");
  Child holder([&] {
    std::lock_guard g(counter.get_lock());
    std::lock_guard a(arr.get_lock());
    held.set();
    EXPECT_TRUE(go.wait(20s));
  });
  ASSERT_TRUE(held.wait(20s));
  // The child holds the value's and the array's own locks; this process nothing.
  ASSERT_TRUE(eventually([&] {
    auto p = find_pid(seg, holder.pid());
    return p && holds(*p, "counter", ObjectKind::Value, "its lock") && holds(*p, "arr", ObjectKind::Array, "its lock");
  }));
  EXPECT_TRUE(find_pid(seg, ::getpid())->holds.empty());
  {
    std::lock_guard b(bound.get_lock());  // a bound value's lock is the named lock, listed as such
    ipckit::ByteLoan loan = frames.loan(16);
    ipckit::ByteView view = jobs.get_view();
    const auto me = *find_pid(seg, ::getpid());
    EXPECT_TRUE(holds(me, "named", ObjectKind::Lock, ""));
    EXPECT_TRUE(holds(me, "frames", ObjectKind::Queue, "producers' side"));
    EXPECT_TRUE(holds(me, "jobs", ObjectKind::Queue, "consumers' side"));
    EXPECT_EQ(me.holds.size(), 3u);
    for (const auto& h : me.holds) EXPECT_EQ(h.tid, ipckit::detail::this_thread().tid);
    const auto [rc, text] = run_cli("ps " + n.name);
    EXPECT_EQ(rc, 0) << text;
    EXPECT_NE(text.find("value 'counter'"), std::string::npos) << text;
    EXPECT_NE(text.find("'frames'"), std::string::npos) << text;
    EXPECT_NE(text.find("'jobs'"), std::string::npos) << text;
    loan.abandon();
    view.keep();
  }
  EXPECT_TRUE(find_pid(seg, ::getpid())->holds.empty());
  pq.put(1, 1);
  EXPECT_TRUE(find_pid(seg, ::getpid())->holds.empty());  // a priority queue's lock only during an operation
  go.set();
  EXPECT_EQ(holder.wait_exit(), 0);
  for (const auto& p : seg.processes()) EXPECT_TRUE(p.holds.empty()) << "pid " << p.pid;
}
