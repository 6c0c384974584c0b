// Value and Array: zero-initialised, shared by name, the seed's examples exact.
#include <mutex>
#include <numeric>
#include <vector>

#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"

using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::ScopedSegmentName;

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
