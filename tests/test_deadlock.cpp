// Deadlock detection (SegmentOptions::deadlock_detection): real cycles of
// lock waits between processes end with exactly one DeadlockDetected naming
// every process and lock; heavy contention without cycles never raises it;
// with detection off the cycle hangs (and Segment::deadlocks() shows it); a
// cycle through a dead holder is not a deadlock (its lock is taken over).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/ipckit.hpp"
#include "ipckit/process_table.hpp"
#include "multiprocess.hpp"
#include "segment_layout.hpp"
#include "test_helpers.hpp"

using namespace std::chrono_literals;
using ipckit::Segment;
using namespace ipckit::testing;

namespace {

constexpr std::size_t kSize = 1 << 20;
constexpr int kGotAll = 0;    // child exit: it took every lock it wanted
constexpr int kVictim = 3;    // child exit: it got DeadlockDetected
constexpr int kTimedOut = 4;  // child exit: it got Timeout

Segment create(const std::string& name, bool detect) {
  ipckit::SegmentOptions o;
  o.deadlock_detection = detect;
  return Segment::create(name, kSize, o);
}

// A pipe the children write their DeadlockDetected messages into.
struct Messages {
  int fd[2];
  Messages() { EXPECT_EQ(::pipe2(fd, O_NONBLOCK), 0); }
  ~Messages() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  Messages(const Messages&) = delete;
  Messages& operator=(const Messages&) = delete;
  void post(const std::string& m) const { (void)!::write(fd[1], (m + "\n").data(), m.size() + 1); }
  std::string all() const {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
};

// Member `i` of a ring of `n` processes: holds lock i, and once every member
// holds its own, wants lock (i+1) % n. Exit kGotAll, kVictim or kTimedOut.
template <class L>
int ring_member(Segment& seg, int i, int n, const std::string& kind, const Messages& msgs,
                std::chrono::milliseconds timeout) {
  const auto lock_named = [&](int k) {
    if constexpr (std::is_same_v<L, ipckit::RLock>)
      return seg.rlock(kind + std::to_string(k));
    else
      return seg.lock(kind + std::to_string(k));
  };
  L mine = lock_named(i);
  L next = lock_named((i + 1) % n);
  auto all_hold = seg.barrier("hold", static_cast<std::uint32_t>(n));
  std::lock_guard g(mine);
  all_hold.wait();
  try {
    if (timeout.count() > 0) {
      next.lock(timeout);
    } else {
      next.lock();
    }
    next.unlock();
    return kGotAll;
  } catch (const ipckit::DeadlockDetected& e) {
    msgs.post(e.what());
    return kVictim;
  } catch (const ipckit::Timeout&) {
    return kTimedOut;
  }
}

struct RingOutcome {
  int victims = 0, finished = 0, other = 0;
  std::string messages;
  std::vector<int> pids;
};

template <class L>
RingOutcome run_ring(const std::string& name, int n, std::chrono::milliseconds timeout = 0ms, bool detect = true) {
  auto seg = create(name, detect);
  seg.barrier("hold", static_cast<std::uint32_t>(n));
  Messages msgs;
  std::vector<Child> kids;
  for (int i = 0; i < n; ++i)
    kids.emplace_back([&, i] {
      auto s = Segment::open(name);
      ::_exit(ring_member<L>(s, i, n, "L", msgs, timeout));
    });
  RingOutcome out;
  for (auto& k : kids) {
    out.pids.push_back(k.pid());
    const int code = k.wait_exit(20s);
    if (code == kVictim)
      ++out.victims;
    else if (code == kGotAll)
      ++out.finished;
    else
      ++out.other;
  }
  out.messages = msgs.all();
  return out;
}

TEST(DeadlockDetection, TwoProcessCycleEndsWithOneVictimNamingBothProcessesAndLocks) {
  ScopedSegmentName name("dl2");
  const RingOutcome r = run_ring<ipckit::Lock>(name.name, 2);
  std::printf("%s", r.messages.c_str());
  EXPECT_EQ(r.victims, 1) << r.messages;
  EXPECT_EQ(r.finished, 1);
  EXPECT_EQ(r.other, 0);
  for (int pid : r.pids) EXPECT_TRUE(contains(r.messages, "pid " + std::to_string(pid))) << r.messages;
  EXPECT_TRUE(contains(r.messages, "holds lock 'L0' and waits for lock 'L1'")) << r.messages;
  EXPECT_TRUE(contains(r.messages, "holds lock 'L1' and waits for lock 'L0'")) << r.messages;
  EXPECT_TRUE(contains(r.messages, "a cycle of 2 threads")) << r.messages;
}

// Process names come from other processes' table slots: the message shows
// their control characters as '?', never raw.
TEST(DeadlockDetection, ControlCharactersInProcessNamesNeverReachTheMessage) {
  ScopedSegmentName name("dlname");
  auto seg = create(name.name, true);
  seg.barrier("hold", 2);
  Messages msgs;
  std::vector<ipckit::Process> procs;
  for (int i = 0; i < 2; ++i) {
    procs.emplace_back(
        [&, i] {
          auto s = Segment::open(name.name);
          ::_exit(ring_member<ipckit::Lock>(s, i, 2, "L", msgs, 0ms));
        },
        ipckit::ProcessOptions{.name = "w" + std::to_string(i) + "\x1b[2J\n"});
    procs.back().start();
  }
  int victims = 0;
  for (auto& p : procs) {
    EXPECT_TRUE(p.join(20s));
    victims += p.exitcode() == kVictim ? 1 : 0;
  }
  EXPECT_EQ(victims, 1);
  const std::string m = msgs.all();
  EXPECT_TRUE(contains(m, "(w0?[2J?)") && contains(m, "(w1?[2J?)")) << m;
  EXPECT_EQ(m.find('\x1b'), std::string::npos);
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 1);  // the one the test's pipe adds
}

TEST(DeadlockDetection, ThreeProcessRingOfRLocksEndsWithOneVictim) {
  ScopedSegmentName name("dl3");
  const RingOutcome r = run_ring<ipckit::RLock>(name.name, 3);
  EXPECT_EQ(r.victims, 1) << r.messages;
  EXPECT_EQ(r.finished, 2);
  EXPECT_TRUE(contains(r.messages, "a cycle of 3 threads")) << r.messages;
  for (int pid : r.pids) EXPECT_TRUE(contains(r.messages, "pid " + std::to_string(pid))) << r.messages;
  EXPECT_TRUE(contains(r.messages, "rlock 'L2'")) << r.messages;
}

TEST(DeadlockDetection, TimedLocksAreDetectedBeforeTheirDeadline) {
  ScopedSegmentName name("dlt");
  const auto start = Clock::now();
  const RingOutcome r = run_ring<ipckit::Lock>(name.name, 2, 10s);
  EXPECT_EQ(r.victims, 1) << r.messages;
  EXPECT_EQ(r.finished, 1);
  EXPECT_LT(Clock::now() - start, 8s);  // not by the 10 s timeout
}

TEST(DeadlockDetection, ExactlyOneVictimEveryTime) {
  constexpr int kRounds = 20;
  int ok = 0;
  for (int round = 0; round < kRounds; ++round) {
    ScopedSegmentName name("dlr");
    const RingOutcome r = run_ring<ipckit::Lock>(name.name, 2);
    EXPECT_EQ(r.victims, 1) << "round " << round << ": " << r.messages;
    EXPECT_EQ(r.finished, 1) << "round " << round;
    ok += r.victims == 1 && r.finished == 1 ? 1 : 0;
  }
  EXPECT_EQ(ok, kRounds);
}

TEST(DeadlockDetection, OffTheCycleHangsAndDeadlocksShowsIt) {
  ScopedSegmentName name("dloff");
  auto seg = create(name.name, false);
  seg.barrier("hold", 2);
  Messages msgs;
  std::vector<Child> kids;
  for (int i = 0; i < 2; ++i)
    kids.emplace_back([&, i] {
      auto s = Segment::open(name.name);
      ::_exit(ring_member<ipckit::Lock>(s, i, 2, "L", msgs, 0ms));
    });
  std::vector<ipckit::Deadlock> found;
  EXPECT_TRUE(eventually([&] { return !(found = seg.deadlocks()).empty(); }));
  ASSERT_EQ(found.size(), 1u);
  ASSERT_EQ(found[0].members.size(), 2u);
  const std::string text = found[0].describe();
  for (auto& k : kids) EXPECT_TRUE(contains(text, "pid " + std::to_string(k.pid()))) << text;
  EXPECT_TRUE(contains(text, "holds lock 'L0' and waits for lock 'L1'")) << text;
  EXPECT_TRUE(found[0].members[0].may_give_up);
  // Still hung: nobody gave up.
  for (auto& k : kids) EXPECT_TRUE(eventually([&] { return all_threads_sleep_in_futex(k.pid()); }));
  EXPECT_TRUE(msgs.all().empty());
  for (auto& k : kids) {
    k.kill();
    EXPECT_EQ(k.wait_exit(), -SIGKILL);
  }
  // The dead leave stale records, but no cycle of the living.
  EXPECT_TRUE(seg.deadlocks().empty());
}

TEST(DeadlockDetection, OffTimedLocksTimeOut) {
  ScopedSegmentName name("dloff2");
  const RingOutcome r = run_ring<ipckit::Lock>(name.name, 2, 300ms, false);
  EXPECT_EQ(r.victims, 0);
  EXPECT_GE(r.other, 1);  // at least one timed out; the other may then get its lock
}

// Parent holds A; a child holds B and waits for A, and is SIGKILLed there,
// leaving its wait record. The parent then wants B: the chain A -> child ->
// B closes a "cycle" through a dead thread, which is no deadlock: the
// parent takes B over from the dead holder.
TEST(DeadlockDetection, ACycleThroughADeadHolderIsTakenOverNotReported) {
  ScopedSegmentName name("dldead");
  auto seg = create(name.name, true);
  auto a = seg.lock("A");
  auto b = seg.lock("B");
  std::lock_guard ga(a);
  Signal holds_b;
  Child child([&] {
    auto s = Segment::open(name.name);
    auto cb = s.lock("B");
    auto ca = s.lock("A");
    cb.lock();
    holds_b.post();
    ca.lock();  // blocks: the parent holds A
  });
  ASSERT_TRUE(holds_b.wait());
  ASSERT_TRUE(eventually([&] {
    for (const auto& p : seg.processes())
      if (p.pid == child.pid() && !p.waits.empty()) return true;
    return false;
  }));
  child.kill();
  EXPECT_EQ(child.wait_exit(), -SIGKILL);
  EXPECT_NO_THROW(b.lock(5s));
  EXPECT_TRUE(b.owner_died());
  b.unlock();
}

// No cycles, heavy contention: processes take random subsets of the locks in
// one global order, many thousands of times; nobody may ever be a victim.
// IPCKIT_DEADLOCK_SOAK_SECONDS runs it longer than CI's 3 s.
TEST(DeadlockDetection, NoFalsePositivesUnderContentionInAGlobalOrder) {
  constexpr int kProcs = 5, kLocks = 4;
  const char* env = std::getenv("IPCKIT_DEADLOCK_SOAK_SECONDS");
  const int soak_seconds = env != nullptr ? std::max(1, std::atoi(env)) : 3;
  ScopedSegmentName name("dlnofp");
  auto seg = create(name.name, true);
  for (int k = 0; k < kLocks; ++k) seg.lock("L" + std::to_string(k));
  auto rounds = seg.value<std::uint64_t>("rounds", 0);
  auto reports = seg.value<std::uint64_t>("reports", 0);
  std::vector<Child> kids;
  for (int i = 0; i < kProcs; ++i)
    kids.emplace_back([&, i] {
      auto s = Segment::open(name.name);
      std::vector<ipckit::Lock> locks;
      for (int k = 0; k < kLocks; ++k) locks.push_back(s.lock("L" + std::to_string(k)));
      auto r = s.value<std::uint64_t>("rounds");
      auto bad = s.value<std::uint64_t>("reports");
      std::mt19937 rng(static_cast<unsigned>(i * 7919 + ::getpid()));
      const auto end = Clock::now() + std::chrono::seconds(soak_seconds);
      std::uint64_t mine = 0;
      while (Clock::now() < end) {
        const unsigned subset = rng() % (1u << kLocks);
        std::vector<ipckit::Lock*> held;
        try {
          for (int k = 0; k < kLocks; ++k)
            if ((subset >> k) & 1u) {
              locks[k].lock();
              held.push_back(&locks[k]);
            }
          if (rng() % 8 == 0) std::this_thread::yield();
        } catch (const ipckit::DeadlockDetected& e) {
          std::fprintf(stderr, "false positive: %s\n", e.what());
          std::lock_guard g(bad.get_lock());
          bad.set(bad.get() + 1);
        }
        for (auto it = held.rbegin(); it != held.rend(); ++it) (*it)->unlock();
        ++mine;
      }
      std::lock_guard g(r.get_lock());
      r.set(r.get() + mine);
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(std::chrono::seconds(soak_seconds + 30)), 0);
  EXPECT_EQ(reports.get(), 0u);
  EXPECT_GT(rounds.get(), 1000u);
  std::printf("no-false-positive run: %llu rounds, %llu reports, %llu slow-path acquisitions\n",
              static_cast<unsigned long long>(rounds.get()), static_cast<unsigned long long>(reports.get()),
              static_cast<unsigned long long>(seg.lock("L0").stats().contended));
}

// Two threads of one process are two members as well (and this runs under TSan).
TEST(DeadlockDetection, TwoThreadsOfOneProcessEndWithOneVictim) {
  ScopedSegmentName name("dlthr");
  auto seg = create(name.name, true);
  auto hold = seg.barrier("hold", 2);
  std::atomic<int> victims{0}, finished{0};
  const auto member = [&](int i) {
    auto mine = seg.lock("L" + std::to_string(i));
    auto next = seg.lock("L" + std::to_string(1 - i));
    std::lock_guard g(mine);
    hold.wait();
    try {
      std::lock_guard g2(next);
      ++finished;
    } catch (const ipckit::DeadlockDetected& e) {
      EXPECT_TRUE(contains(e.what(), "pid " + std::to_string(::getpid()))) << e.what();
      ++victims;
    }
  };
  std::thread t0(member, 0), t1(member, 1);
  t0.join();
  t1.join();
  EXPECT_EQ(victims.load(), 1);
  EXPECT_EQ(finished.load(), 1);
}

TEST(DeadlockDetection, TryLockNeverReportsAndTheOptionIsShownInInfo) {
  ScopedSegmentName name("dltry");
  auto seg = create(name.name, true);
  EXPECT_TRUE(seg.info().deadlock_detection);
  auto a = seg.lock("A");
  std::lock_guard g(a);
  Child child([&] {
    auto s = Segment::open(name.name);
    EXPECT_FALSE(s.lock("A").try_lock());
  });
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(DeadlockDetection, UnknownOptionBitsInTheHeaderMakeTheSegmentCorrupt) {
  ScopedSegmentName name("dlbits");
  create(name.name, false);
  {
    const int fd = ::open(("/dev/shm/ipckit." + name.name).c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_NE(p, MAP_FAILED);
    static_cast<ipckit::detail::SegmentHeader*>(p)->flags = 0x80;
    ::munmap(p, kSize);
  }
  const std::string m = message_of<ipckit::CorruptSegment>([&] { Segment::open(name.name); });
  EXPECT_TRUE(contains(m, "unknown option bits")) << m;
}

}  // namespace
