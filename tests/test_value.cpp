// Value and Array: zero-initialised, shared by name, the seed's examples
// exact; Python's RawValue/RawArray, `lock=`, arrays made from a sequence and
// slices, across processes.
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <set>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::ScopedSegmentName;
using namespace std::chrono_literals;

namespace {
struct Pose {
  double x, y, z;
  std::int64_t stamp;
};
}  // namespace

TEST(Value, IsZeroOnFirstUseAndSharedByName) {
  ScopedSegmentName n("value");
  auto seg = Segment::create(n.name, 1 << 20);
  EXPECT_EQ(seg.value<std::int64_t>("counter").get(), 0);
  EXPECT_EQ(seg.value<double>("ratio").get(), 0.0);
  Child child([&] { Segment::open(n.name).value<double>("ratio").set(2.5); });
  ASSERT_EQ(child.wait_exit(), 0);
  EXPECT_EQ(seg.value<double>("ratio").get(), 2.5);
}

TEST(Value, InitialValueIsSetOnlyByTheCreator) {
  ScopedSegmentName n("initial");
  auto seg = Segment::create(n.name, 1 << 20);
  EXPECT_EQ(seg.value<int>("v", 10).get(), 10);
  seg.value<int>("v").set(11);
  EXPECT_EQ(seg.value<int>("v", 10).get(), 11);
}

TEST(Value, LargeStructsAreReadAndWrittenWholeEvenUnderTheirOwnLock) {
  ScopedSegmentName n("pose");
  auto seg = Segment::create(n.name, 1 << 20);
  auto pose = seg.value<Pose>("pose");
  {
    std::lock_guard g(pose.get_lock());  // get/set re-enter the same RLock
    pose.set({4, 4, 4, 4});
    EXPECT_EQ(pose.get().stamp, 4);
  }
  std::vector<Child> writers;
  for (int w = 0; w < 2; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < 20000; ++i) {
        const double v = w * 100000 + i;
        pose.set({v, v, v, static_cast<std::int64_t>(v)});
      }
    });
  for (int i = 0; i < 20000; ++i) {
    const Pose p = pose.get();
    ASSERT_TRUE(p.x == p.y && p.y == p.z && p.z == static_cast<double>(p.stamp)) << "torn read at " << i;
  }
  for (auto& c : writers) EXPECT_EQ(c.wait_exit(), 0);
}

// The seed's example: worker(counter, array) increments both under
// counter.get_lock(); N processes, exact result.
TEST(Value, SeedWorkerExampleIsExactAcrossProcesses) {
  ScopedSegmentName n("seed");
  auto seg = Segment::create(n.name, 1 << 20);
  auto counter = seg.value<std::int32_t>("counter");
  auto array = seg.array<std::int32_t>("array", 3);
  constexpr int kWorkers = 8, kRounds = 5000;
  std::vector<Child> kids;
  for (int w = 0; w < kWorkers; ++w)
    kids.emplace_back([&] {
      auto s = Segment::open(n.name);
      auto c = s.value<std::int32_t>("counter");
      auto a = s.array<std::int32_t>("array", 3);
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard g(c.get_lock());
        c.set(c.get() + 1);
        a[0] += 1;
      }
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(), 0);
  EXPECT_EQ(counter.get(), kWorkers * kRounds);
  EXPECT_EQ(array[0], kWorkers * kRounds);
  EXPECT_EQ(array[1], 0);
}

TEST(Array, IsZeroedIteratesAndChecksBounds) {
  ScopedSegmentName n("array");
  auto seg = Segment::create(n.name, 1 << 20);
  auto a = seg.array<std::int32_t>("a", 5);
  EXPECT_EQ(a.size(), 5u);
  EXPECT_EQ(std::accumulate(a.begin(), a.end(), 0), 0);
  std::iota(a.begin(), a.end(), 1);
  EXPECT_EQ(std::accumulate(a.begin(), a.end(), 0), 15);
  EXPECT_EQ(a.at(4), 5);
  try {
    a.at(5);
    FAIL() << "expected OutOfRange";
  } catch (const ipckit::OutOfRange& e) {
    EXPECT_NE(std::string(e.what()).find("array 'a'"), std::string::npos) << e.what();
  }
  const auto& ca = a;
  EXPECT_THROW(ca.at(99), ipckit::OutOfRange);
}

TEST(Array, ZeroOrAbsurdLengthThrowsInvalidArgument) {
  ScopedSegmentName n("array_bad");
  auto seg = Segment::create(n.name, 1 << 20);
  EXPECT_THROW(seg.array<int>("empty", 0), ipckit::InvalidArgument);
  EXPECT_THROW(seg.array<int>("huge", std::size_t{1} << 62), ipckit::InvalidArgument);
}

TEST(Array, IsSeenWithItsLengthFromAnotherProcess) {
  ScopedSegmentName n("array_len");
  auto seg = Segment::create(n.name, 1 << 20);
  auto a = seg.array<double>("d", 1000);
  a[999] = 3.5;
  Child child([&] {
    auto b = Segment::open(n.name).array<double>("d", 1000);
    EXPECT_EQ(b.size(), 1000u);
    EXPECT_EQ(b[999], 3.5);
    EXPECT_THROW(Segment::open(n.name).array<double>("d", 10), ipckit::TypeMismatch);
  });
  EXPECT_EQ(child.wait_exit(), 0);
}

// ---------------------------------------------------------------- RawValue / RawArray

TEST(RawValue, IsSharedByNameAndHasNoLockWordInTheSegment) {
  ScopedSegmentName n("raw");
  auto seg = Segment::create(n.name, 1 << 20);
  auto r = seg.raw_value<std::int64_t>("r", 7);
  EXPECT_EQ(r.get(), 7);
  EXPECT_EQ(seg.raw_value<std::int64_t>("r", 9).get(), 7);  // initial only on creation
  Child child([&] {
    auto mine = Segment::open(n.name).raw_value<std::int64_t>("r");
    EXPECT_EQ(mine.get(), 7);
    mine.set(42);
  });
  ASSERT_EQ(child.wait_exit(), 0);
  EXPECT_EQ(r.get(), 42);
  r.ref() += 1;
  EXPECT_EQ(seg.raw_value<std::int64_t>("r").get(), 43);
  for (const auto& o : seg.objects()) {
    if (o.name != "r") continue;
    EXPECT_EQ(o.bytes, sizeof(std::int64_t)) << "a raw value is its data alone";
    EXPECT_EQ(o.type_name.rfind("raw:", 0), 0u) << o.type_name;
  }
}

TEST(RawValue, OpeningARawValueAsALockedOneOrBackThrowsTypeMismatch) {
  ScopedSegmentName n("raw_mismatch");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.raw_value<int>("raw");
  seg.value<int>("locked");
  seg.raw_array<int>("raw_a", 3);
  try {
    seg.value<int>("raw");
    FAIL() << "expected TypeMismatch";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("raw value without a lock"), std::string::npos) << e.what();
  }
  EXPECT_THROW(seg.raw_value<int>("locked"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.array<int>("raw_a", 3), ipckit::TypeMismatch);
  EXPECT_THROW(seg.raw_value<double>("raw"), ipckit::TypeMismatch);    // the type still counts
  EXPECT_THROW(seg.raw_array<int>("raw_a", 4), ipckit::TypeMismatch);  // and the length
}

TEST(RawArray, IsSharedSlicedAndCreatedFromASequenceOnce) {
  ScopedSegmentName n("raw_array");
  auto seg = Segment::create(n.name, 1 << 20);
  auto a = seg.raw_array<std::int32_t>("a", {1, 2, 3, 4, 5});
  EXPECT_EQ(a.size(), 5u);
  Child child([&] {
    auto mine = Segment::open(n.name).raw_array<std::int32_t>("a", {9, 9, 9, 9, 9});
    EXPECT_EQ(std::accumulate(mine.begin(), mine.end(), 0), 15) << "the creator's contents, not these";
    auto tail = mine.subspan(3);
    std::fill(tail.begin(), tail.end(), 0);
  });
  ASSERT_EQ(child.wait_exit(), 0);
  EXPECT_EQ((std::vector<std::int32_t>(a.begin(), a.end())), (std::vector<std::int32_t>{1, 2, 3, 0, 0}));
  EXPECT_THROW(a.subspan(4, 2), ipckit::OutOfRange);
  EXPECT_THROW(seg.raw_array<std::int32_t>("empty", std::span<const std::int32_t>{}), ipckit::InvalidArgument);
}

// ---------------------------------------------------------------- lock=

namespace {
// Whether another process finds `lock` free right now (it tries it once).
template <class L>
bool free_in_another_process(const L& lock) {
  Child probe([&] {
    auto l = lock;
    if (!l.try_lock()) std::_Exit(3);
    l.unlock();
  });
  return probe.wait_exit() == 0;
}
}  // namespace

TEST(ValueLock, AValueBoundToANamedLockIsGuardedByThatLock) {
  ScopedSegmentName n("bound");
  auto seg = Segment::create(n.name, 1 << 20);
  auto shared = seg.lock("L");
  ipckit::Value<std::int32_t, ipckit::Lock> counter = seg.value<std::int32_t>("counter", shared);
  auto total = seg.value<std::int64_t>("total", std::int64_t{100}, shared);  // several values, one lock
  EXPECT_EQ(total.get(), 100);
  EXPECT_EQ(counter.get_lock().label(), shared.label());
  {
    std::lock_guard g(shared);
    EXPECT_FALSE(free_in_another_process(counter.get_lock())) << "get_lock() is not the named lock";
  }
  EXPECT_TRUE(free_in_another_process(counter.get_lock()));

  constexpr int kWorkers = 4, kRounds = 3000;
  std::vector<Child> kids;
  for (int w = 0; w < kWorkers; ++w)
    kids.emplace_back([&] {
      auto s = Segment::open(n.name);
      auto l = s.lock("L");
      auto c = s.value<std::int32_t>("counter", l);
      auto t = s.value<std::int64_t>("total", l);
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard g(c.get_lock());
        c.set(c.get() + 1);
        t.set(t.get() + 2);
      }
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(), 0);
  EXPECT_EQ(counter.get(), kWorkers * kRounds);
  EXPECT_EQ(total.get(), 100 + 2 * kWorkers * kRounds);
}

// A large T's get()/set() take the lock, unless the caller holds it already:
// a value bound to a plain Lock does not deadlock inside its own lock_guard.
TEST(ValueLock, LargeValuesBoundToALockOrAnRLockAreReadAndWrittenUnderTheirHeldLock) {
  ScopedSegmentName n("bound_large");
  auto seg = Segment::create(n.name, 1 << 20);
  auto lock = seg.lock("L");
  auto rlock = seg.rlock("R");
  auto a = seg.value<Pose>("a", lock);
  auto b = seg.value<Pose>("b", Pose{1, 1, 1, 1}, rlock);
  static_assert(std::is_same_v<decltype(b.get_lock()), ipckit::RLock&>);
  {
    std::lock_guard g(a.get_lock());
    a.set({2, 2, 2, 2});
    EXPECT_EQ(a.get().stamp, 2);
  }
  {
    std::lock_guard g(b.get_lock());
    b.set({b.get().x + 1, 2, 2, 2});
    EXPECT_EQ(b.get().x, 2);
    EXPECT_EQ(rlock.depth(), 1u);
  }
  Child writer([&] {
    auto s = Segment::open(n.name);
    auto v = s.value<Pose>("a", s.lock("L"));
    for (int i = 0; i < 20000; ++i) v.set({double(i), double(i), double(i), i});
  });
  for (int i = 0; i < 20000; ++i) {
    const Pose p = a.get();
    ASSERT_TRUE(p.x == p.y && p.y == p.z && p.z == static_cast<double>(p.stamp)) << "torn read at " << i;
  }
  EXPECT_EQ(writer.wait_exit(), 0);
}

TEST(ValueLock, BindingToAnotherLockOrNoneThrowsTypeMismatchAndALockOfAnotherSegmentInvalidArgument) {
  ScopedSegmentName n("bound_mismatch"), other("bound_other");
  auto seg = Segment::create(n.name, 1 << 20);
  auto a = seg.lock("A");
  seg.value<int>("v", a);
  seg.array<int>("arr", 4, a);
  Child child([&] {
    auto s = Segment::open(n.name);
    try {
      s.value<int>("v", s.rlock("B"));
      ADD_FAILURE() << "expected TypeMismatch";
    } catch (const ipckit::TypeMismatch& e) {
      EXPECT_NE(std::string(e.what()).find("lock 'A'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("rlock 'B'"), std::string::npos) << e.what();
    }
    EXPECT_THROW(s.array<int>("arr", 4, s.lock("C")), ipckit::TypeMismatch);
    EXPECT_THROW(s.value<int>("v"), ipckit::TypeMismatch);  // its own lock: not how it was made
    EXPECT_THROW(s.raw_value<int>("v"), ipckit::TypeMismatch);
    EXPECT_EQ(s.value<int>("v", s.lock("A")).get(), 0);  // the same lock is fine
  });
  EXPECT_EQ(child.wait_exit(), 0);
  seg.value<int>("own");
  EXPECT_THROW(seg.value<int>("own", a), ipckit::TypeMismatch);
  auto elsewhere = Segment::create(other.name, 1 << 20).lock("A");
  EXPECT_THROW(seg.value<int>("w", elsewhere), ipckit::InvalidArgument);
  EXPECT_THROW(seg.array<int>("w", 3, elsewhere), ipckit::InvalidArgument);
}

TEST(ValueLock, AnArrayBoundToAnRLockSharesItWithAValue) {
  ScopedSegmentName n("bound_array");
  auto seg = Segment::create(n.name, 1 << 20);
  auto r = seg.rlock("R");
  auto sum = seg.value<std::int64_t>("sum", r);
  const std::vector<std::int64_t> init{5, 6, 7};
  auto items = seg.array<std::int64_t>("items", {5, 6, 7}, r);
  std::vector<Child> kids;
  for (int w = 0; w < 3; ++w)
    kids.emplace_back([&, w] {
      auto s = Segment::open(n.name);
      auto rr = s.rlock("R");
      auto a = s.array<std::int64_t>("items", std::span<const std::int64_t>(init), rr);
      auto v = s.value<std::int64_t>("sum", rr);
      for (int i = 0; i < 2000; ++i) {
        std::lock_guard g(a.get_lock());
        a[w] += 1;
        v.set(v.get() + 1);  // re-enters the RLock it shares with the array
      }
    });
  for (auto& k : kids) EXPECT_EQ(k.wait_exit(), 0);
  EXPECT_EQ((std::vector<std::int64_t>(items.begin(), items.end())), (std::vector<std::int64_t>{2005, 2006, 2007}));
  EXPECT_EQ(sum.get(), 6000);
}

// ---------------------------------------------------------------- from a sequence, slices

// Python's Array('i', [..]): the contents are set by the call that creates
// it. Several processes race to create it with different contents: exactly
// one set is seen by all of them.
TEST(Array, CreatedFromASequenceIsInitialisedOnceByWhoeverCreatesIt) {
  ScopedSegmentName n("array_seq");
  auto seg = Segment::create(n.name, 1 << 20);
  auto go = seg.event("go");
  constexpr int kRacers = 6, kLen = 64;
  std::vector<Child> kids;
  for (int w = 1; w <= kRacers; ++w)
    kids.emplace_back([&, w] {
      ASSERT_TRUE(go.wait(10s));
      std::vector<std::int32_t> mine(kLen, w);
      auto a = Segment::open(n.name).array<std::int32_t>("a", mine);
      std::_Exit(a[0] >= 1 && a[0] <= kRacers && std::count(a.begin(), a.end(), a[0]) == kLen ? 10 + a[0] : 1);
    });
  go.set();
  std::set<int> seen;
  for (auto& k : kids) seen.insert(k.wait_exit());
  ASSERT_EQ(seen.size(), 1u) << "the racers saw different contents (or a mixture)";
  const int winner = *seen.begin() - 10;
  auto a = seg.array<std::int32_t>("a", kLen);
  EXPECT_EQ(std::count(a.begin(), a.end(), winner), kLen);
  EXPECT_THROW(seg.array<std::int32_t>("a", std::vector<std::int32_t>(kLen + 1)), ipckit::TypeMismatch);
  EXPECT_THROW(seg.array<std::int32_t>("empty", std::vector<std::int32_t>{}), ipckit::InvalidArgument);
  EXPECT_EQ(seg.array<double>("d", {0.5, 1.5}).at(1), 1.5);
}

TEST(Array, SlicesAreViewsThatWriteThroughToOtherProcessesAndBadRangesThrowOutOfRange) {
  ScopedSegmentName n("array_slices");
  auto seg = Segment::create(n.name, 1 << 20);
  auto a = seg.array<std::int32_t>("a", 10);
  std::span<std::int32_t> all = a.span();
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(all.data(), a.data());
  Child child([&] {
    auto mine = Segment::open(n.name).array<std::int32_t>("a", 10);
    std::span<std::int32_t> middle = mine.subspan(2, 3);
    std::iota(middle.begin(), middle.end(), 100);
    mine.subspan(8)[1] = -1;
  });
  ASSERT_EQ(child.wait_exit(), 0);
  EXPECT_EQ((std::vector<std::int32_t>(all.begin(), all.end())),
            (std::vector<std::int32_t>{0, 0, 100, 101, 102, 0, 0, 0, 0, -1}));
  EXPECT_TRUE(a.subspan(10).empty());
  EXPECT_EQ(a.subspan(0, 10).size(), 10u);
  EXPECT_EQ(a.subspan(10, 0).size(), 0u);
  const auto& ca = a;
  std::span<const std::int32_t> c = ca.subspan(4, 1);
  EXPECT_EQ(c[0], 102);
  for (auto [off, len] : {std::pair<std::size_t, std::size_t>{11, 0}, {0, 11}, {9, 2}, {5, std::size_t(-2)}}) {
    try {
      (void)a.subspan(off, len);
      ADD_FAILURE() << "expected OutOfRange for [" << off << ", +" << len << ")";
    } catch (const ipckit::OutOfRange& e) {
      EXPECT_NE(std::string(e.what()).find("array 'a'"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(ca.subspan(11), ipckit::OutOfRange);
}

// How tools (the CLI) read the guard back from a directory type name.
static_assert(ipckit::detail::guard_of("raw:l") == ipckit::detail::Guard::Raw);
static_assert(ipckit::detail::guard_of("bound:4Pose") == ipckit::detail::Guard::Bound);
static_assert(ipckit::detail::guard_of("l") == ipckit::detail::Guard::Own);
static_assert(ipckit::detail::unguarded_type_name("bound:4Pose") == "4Pose");
