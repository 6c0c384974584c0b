// Hardening tests for the semaphore layer: stopped peers, hostile neighbours and
// corrupted shared memory (issue: every promise holds against them).
//
//  - a tracked semaphore keeps every unit through a storm of SIGKILLs that
//    land anywhere in acquire() and release();
//  - release(n) never wraps the count, from one caller or many at once;
//  - a stopped process inside the tracked semaphore's table lock does not
//    make acquire(timeout) / try_acquire() overrun their bound;
//  - what a handle was opened as (tracked, bounded, initial value) is kept in
//    the handle: a stray write to the shared copy changes nothing.
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

using ipckit::Segment;
using namespace ipckit::testing;

namespace {

// SIGCONTs and SIGKILLs every child it was given when it goes out of scope,
// so that a failed assertion never leaves a stopped process behind (the
// Child destructors reap them).
struct KillOnExit {
  std::vector<std::unique_ptr<Child>>& kids;
  ~KillOnExit() {
    for (auto& k : kids)
      if (k) {
        k->kill(SIGCONT);
        k->kill(SIGKILL);
      }
  }
};

ipckit::detail::SemaphoreState& raw_state(Segment& seg, const std::string& name) {
  return *static_cast<ipckit::detail::SemaphoreState*>(
      const_cast<void*>(ipckit::detail::SegmentAccess::object_body(seg, name)));
}

void busy_wait(std::chrono::nanoseconds d) {
  const auto end = Clock::now() + d;
  while (Clock::now() < end) {
  }
}

}  // namespace

// ------------------------------------------------------------- kill storm

// Four processes loop acquire/release on a tracked semaphore of 3 units (the
// blocking, timed and non-blocking forms in turn) and are SIGKILLed about a
// thousand times at random instants, each replaced by a new process. Every
// kill lands somewhere in the loop: between taking the count and recording
// the holder, between forgetting the holder and giving the count back, or
// while holding, or inside the table lock. Afterwards the three units are
// all there (the dead holders' ones given back), never two and never four.
TEST(HardeningSemaphore, ATrackedSemaphoreKeepsEveryUnitThroughAThousandKillsAtRandomInstants) {
  ScopedSegmentName n("hsem_storm");
  auto seg = Segment::create(n.name, 1 << 20);
  constexpr std::uint32_t kUnits = 3;
  constexpr int kChildren = 4;
  constexpr int kKills = 1000;
  auto s = seg.semaphore("S", kUnits, {.track_holders = true});
  auto progress = seg.array<std::int64_t>("progress", kChildren);  // loops done, per slot
  auto faults = seg.array<std::int64_t>("faults", 2);              // value() above kUnits, unexpected errors

  auto body = [&](int slot) {
    for (std::uint64_t i = static_cast<std::uint64_t>(slot);; ++i) {
      try {
        bool got = false;
        switch (i % 3) {
          case 0:
            s.acquire();
            got = true;
            break;
          case 1:
            got = s.acquire(50ms);
            break;
          default:
            got = s.try_acquire();
            break;
        }
        if (s.value() > kUnits) at(faults[0]).fetch_add(1);
        if (got) {
          busy_wait(std::chrono::nanoseconds(i % 7 * 500));  // hold a little, sometimes
          s.release();
        }
      } catch (const std::exception& e) {
        at(faults[1]).fetch_add(1);
        std::fprintf(stderr, "storm child: %s\n", e.what());
        std::this_thread::sleep_for(1ms);
      }
      at(progress[static_cast<std::size_t>(slot)]).fetch_add(1);
    }
  };

  std::vector<std::unique_ptr<Child>> kids(kChildren);
  KillOnExit guard{kids};
  std::vector<std::int64_t> at_spawn(kChildren);
  auto spawn = [&](int slot) {
    at_spawn[slot] = at(progress[static_cast<std::size_t>(slot)]).load();
    kids[slot] = std::make_unique<Child>([&, slot] { body(slot); });
  };
  for (int slot = 0; slot < kChildren; ++slot) spawn(slot);

  std::vector<std::unique_ptr<Child>> dead;
  KillOnExit dead_guard{dead};
  auto reap = [&] {
    for (auto& d : dead) EXPECT_EQ(d->wait_exit(), -SIGKILL);
    dead.clear();
  };
  std::mt19937 rng(20240607);
  const auto t0 = Clock::now();
  int kills = 0;
  bool wedged = false;
  // The kills stop early on a machine so loaded (or a build so slow) that a
  // thousand would take more than 25 s.
  for (; kills < kKills && !wedged && Clock::now() - t0 < 25s; ++kills) {
    const int victim = static_cast<int>(rng() % kChildren);
    // Into its loop first (not still starting up), then a random instant later.
    const std::int64_t target = at_spawn[victim] + 1 + static_cast<std::int64_t>(rng() % 4);
    const auto patience = Clock::now() + 5s;
    while (at(progress[static_cast<std::size_t>(victim)]).load() < target) {
      if (Clock::now() > patience) {
        wedged = true;
        break;
      }
      std::this_thread::yield();
    }
    busy_wait(std::chrono::nanoseconds(rng() % 20'000));
    kids[victim]->kill(SIGKILL);
    // Reaped in batches: waiting for each teardown would triple the run.
    dead.push_back(std::move(kids[victim]));
    spawn(victim);
    if (dead.size() >= 100) reap();
  }
  reap();
  const auto storm = Clock::now() - t0;
  EXPECT_FALSE(wedged) << "after " << kills << " kills no process got through its loop for 5 s: units were lost ("
                       << s.value() << " of " << kUnits << " free, " << s.reclaimed() << " reclaimed)";
  for (auto& k : kids) {
    k->kill(SIGKILL);
    (void)k->wait_exit();
  }

  // All holders are dead now: the units must all come back to us, and no more.
  for (std::uint32_t u = 0; u < kUnits; ++u)
    ASSERT_TRUE(s.acquire(5s)) << "unit " << u + 1 << " of " << kUnits << " never came back after " << kills
                               << " kills (" << s.reclaimed() << " reclaimed)";
  EXPECT_FALSE(s.try_acquire()) << "a unit was duplicated";
  EXPECT_EQ(s.value(), 0u);
  for (std::uint32_t u = 0; u < kUnits; ++u) s.release();
  EXPECT_EQ(s.value(), kUnits);
  EXPECT_EQ(faults[0], 0) << "value() was seen above the initial value";
  EXPECT_EQ(faults[1], 0) << "unexpected exceptions in the children";
  EXPECT_GT(s.reclaimed(), 0u) << "no kill landed while a unit was held: the storm proves little";
  RecordProperty("kills", kills);
  RecordProperty("table_lock_takeovers", static_cast<int>(raw_state(seg, "S").table_lock.recoveries.load()));
  RecordProperty("reclaimed", static_cast<int>(s.reclaimed()));
  RecordProperty("storm_ms", static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(storm).count()));
}

// ------------------------------------------------------------- overflow

TEST(HardeningSemaphore, AReleaseThatWouldWrapTheCountThrowsInvalidArgumentAndChangesNothing) {
  ScopedSegmentName n("hsem_wrap");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 1);
  try {
    s.release(std::numeric_limits<std::uint32_t>::max());
    ADD_FAILURE() << "release(UINT32_MAX) on 1 did not throw; the count is now " << s.value();
  } catch (const ipckit::InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'S'"), std::string::npos) << what;
    EXPECT_NE(what.find("4294967295"), std::string::npos) << "names the count released: " << what;
    EXPECT_NE(what.find("2147483647"), std::string::npos) << "names the maximum: " << what;
  }
  EXPECT_EQ(s.value(), 1u);

  // Up to the maximum exactly, then not one more, by the single-unit path too.
  constexpr std::uint32_t kMax = 0x7fff'ffff;
  s.release(kMax - 1);
  EXPECT_EQ(s.value(), kMax);
  EXPECT_THROW(s.release(), ipckit::InvalidArgument);
  EXPECT_THROW(s.release(2), ipckit::InvalidArgument);
  EXPECT_EQ(s.value(), kMax);
  EXPECT_TRUE(s.try_acquire());
  s.release();
  EXPECT_EQ(s.value(), kMax);

  // A bounded semaphore refuses anything above its initial value; a tracked
  // one anything its caller does not hold.
  auto b = seg.bounded_semaphore("B", 2);
  EXPECT_THROW(b.release(std::numeric_limits<std::uint32_t>::max()), ipckit::TooManyReleases);
  EXPECT_EQ(b.value(), 2u);
  auto t = seg.semaphore("T", 2, {.track_holders = true});
  ASSERT_TRUE(t.try_acquire());
  EXPECT_THROW(t.release(std::numeric_limits<std::uint32_t>::max()), ipckit::NotOwner);
  t.release();
  EXPECT_EQ(t.value(), 2u);
}

// Eight processes release 2^29 units each at once into an empty semaphore:
// three fit below the maximum (2^31 - 1), the others must be refused; none
// may slip past a check made before another's add.
TEST(HardeningSemaphore, ConcurrentReleasesNeverWrapTheCount) {
  ScopedSegmentName n("hsem_wrap_race");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 0);
  auto start = seg.event("start");
  auto outcome = seg.array<std::int32_t>("outcome", 2);  // released, refused
  constexpr int kProcs = 8;
  constexpr std::uint32_t kChunk = 1u << 29;
  std::vector<std::unique_ptr<Child>> kids;
  KillOnExit guard{kids};
  for (int p = 0; p < kProcs; ++p)
    kids.push_back(std::make_unique<Child>([&] {
      ASSERT_TRUE(start.wait(10s));
      try {
        s.release(kChunk);
        at(outcome[0]).fetch_add(1);
      } catch (const ipckit::InvalidArgument&) {
        at(outcome[1]).fetch_add(1);
      }
    }));
  start.set();
  for (auto& k : kids) EXPECT_EQ(k->wait_exit(), 0);
  EXPECT_EQ(outcome[0], 3);
  EXPECT_EQ(outcome[1], kProcs - 3);
  EXPECT_EQ(s.value(), 3 * kChunk);
}

// ------------------------------------------------------------- stray writes

// What a process opened is what it keeps: a stray write that flips the
// shared "tracked" flag or raises the initial value changes neither the
// handle's tracking nor its bound.
TEST(HardeningSemaphore, AStrayWriteToTheSharedFlagsDoesNotChangeAnOpenHandle) {
  ScopedSegmentName n("hsem_stray");
  auto seg = Segment::create(n.name, 1 << 20);
  auto b = seg.bounded_semaphore("B", 3);
  auto t = seg.semaphore("T", 1, {.track_holders = true});
  raw_state(seg, "B").initial = 100;
  raw_state(seg, "T").track_holders = 0;

  EXPECT_THROW(b.release(), ipckit::TooManyReleases) << "the handle was opened bounded at 3";
  EXPECT_EQ(b.value(), 3u);

  Signal held;
  Child holder([&] {
    t.acquire();
    held.post();
    ::pause();
  });
  ASSERT_TRUE(held.wait());
  holder.kill(SIGKILL);
  EXPECT_EQ(holder.wait_exit(), -SIGKILL);
  EXPECT_TRUE(t.acquire(5s)) << "the handle was opened tracking holders: the dead holder's unit comes back";
}

// ------------------------------------------------------------- stopped peer

// A process stopped (SIGSTOP, a debugger) while it holds the tracked
// semaphore's table lock: the others' timed and non-blocking calls keep their
// bound and report no unit; once it is killed, its lock is taken over and
// the units are all there.
TEST(HardeningSemaphore, AStoppedHolderOfTheTableLockDoesNotMakeTimedCallsOverrunTheirBound) {
  ScopedSegmentName n("hsem_stopped");
  auto seg = Segment::create(n.name, 1 << 20);
  auto s = seg.semaphore("S", 2, {.track_holders = true});
  auto& state = raw_state(seg, "S");
  std::vector<std::unique_ptr<Child>> kids;
  KillOnExit guard{kids};
  Signal locked;
  kids.push_back(std::make_unique<Child>([&] {
    // As if stopped between two stores of an acquire.
    ASSERT_TRUE(ipckit::detail::try_lock_fast(state.table_lock, ipckit::detail::this_thread()));
    locked.post();
    ::raise(SIGSTOP);
    ::pause();
  }));
  ASSERT_TRUE(locked.wait());
  Child& stopped = *kids.back();
  ASSERT_TRUE(eventually([&] {
    std::ifstream stat("/proc/" + std::to_string(stopped.pid()) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto paren = line.rfind(')');
    return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'T';
  }));

  auto t0 = Clock::now();
  EXPECT_FALSE(s.try_acquire());
  EXPECT_LT(Clock::now() - t0, 250ms) << "try_acquire() waited for a stopped process";
  t0 = Clock::now();
  EXPECT_FALSE(s.acquire(200ms));
  EXPECT_LT(Clock::now() - t0, 200ms + 250ms) << "acquire(200ms) overran its timeout";
  EXPECT_EQ(s.value(), 2u);

  stopped.kill(SIGKILL);
  EXPECT_EQ(stopped.wait_exit(), -SIGKILL);
  ASSERT_TRUE(s.acquire(5s)) << "the dead holder's table lock was not taken over";
  ASSERT_TRUE(s.acquire(5s));
  EXPECT_FALSE(s.try_acquire());
  s.release(2);
  EXPECT_EQ(s.value(), 2u);
}
