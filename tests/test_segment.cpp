// Segment contract: create/open/remove, names, permissions, races, corruption.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <vector>

#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"
#include "segment_layout.hpp"
#include "shm_file.hpp"
#include "test_helpers.hpp"

using namespace std::chrono_literals;
using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::ScopedSegmentName;

namespace {

std::string shm_path(const std::string& name) { return "/dev/shm/ipckit." + name; }

// Overwrites `len` bytes at `offset` of a segment's file, as a buggy or
// hostile process could.
void poke(const std::string& name, off_t offset, const void* bytes, size_t len) {
  int fd = ::open(shm_path(name).c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, bytes, len, offset), static_cast<ssize_t>(len));
  ::close(fd);
}

}  // namespace

TEST(Segment, CreateThenOpenFromAnotherProcessSeesTheSameObjects) {
  ScopedSegmentName n("share");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.value<std::int64_t>("answer").set(42);
  Child child([&] {
    auto other = Segment::open(n.name);
    EXPECT_EQ(other.value<std::int64_t>("answer").get(), 42);
    other.value<std::int64_t>("reply").set(7);
  });
  ASSERT_EQ(child.wait_exit(), 0);
  EXPECT_EQ(seg.value<std::int64_t>("reply").get(), 7);
  EXPECT_EQ(seg.objects().size(), 2u);
}

TEST(Segment, CreateIsExclusive) {
  ScopedSegmentName n("excl");
  auto seg = Segment::create(n.name, 1 << 20);
  EXPECT_THROW(Segment::create(n.name, 1 << 20), ipckit::AlreadyExists);
}

TEST(Segment, OpenOfAMissingNameThrowsNotFound) {
  ScopedSegmentName n("missing");
  try {
    Segment::open(n.name);
    FAIL() << "expected NotFound";
  } catch (const ipckit::NotFound& e) {
    EXPECT_NE(std::string(e.what()).find(n.name), std::string::npos);
    EXPECT_EQ(e.object(), n.name);
    EXPECT_EQ(e.segment(), n.name);
  }
}

TEST(Segment, RemoveReportsWhetherThereWasOne) {
  ScopedSegmentName n("rm");
  { auto seg = Segment::create(n.name, 1 << 20); }
  EXPECT_TRUE(Segment::exists(n.name));
  EXPECT_TRUE(Segment::remove(n.name));
  EXPECT_FALSE(Segment::remove(n.name));
  EXPECT_FALSE(Segment::exists(n.name));
}

TEST(Segment, ListShowsTheSegment) {
  ScopedSegmentName n("listed");
  auto seg = Segment::create(n.name, 1 << 20);
  auto names = Segment::list();
  EXPECT_NE(std::find(names.begin(), names.end(), n.name), names.end());
}

TEST(Segment, BadSegmentNamesThrowInvalidName) {
  for (std::string bad : {std::string(), std::string("a/b"), std::string(201, 'x'), std::string("tab\there"),
                          std::string("."), std::string(".."), std::string("del\x7f")}) {
    EXPECT_THROW(Segment::create(bad, 1 << 20), ipckit::InvalidName) << "name: " << bad;
    EXPECT_THROW(Segment::open(bad), ipckit::InvalidName) << "name: " << bad;
    EXPECT_THROW(Segment::open_or_create(bad, 1 << 20), ipckit::InvalidName) << "name: " << bad;
  }
}

TEST(Segment, BadObjectNamesThrowInvalidName) {
  ScopedSegmentName n("objnames");
  auto seg = Segment::create(n.name, 1 << 20);
  EXPECT_THROW(seg.value<int>(""), ipckit::InvalidName);
  EXPECT_THROW(seg.lock(std::string(64, 'x')), ipckit::InvalidName);
  EXPECT_THROW(seg.rlock("new\nline"), ipckit::InvalidName);
  EXPECT_NO_THROW(seg.lock(std::string(63, 'x')));
}

TEST(Segment, SizeOutOfRangeThrowsInvalidArgument) {
  ScopedSegmentName n("small");
  EXPECT_THROW(Segment::create(n.name, 100), ipckit::InvalidArgument);
  EXPECT_THROW(Segment::create(n.name, Segment::min_size() - 1), ipckit::InvalidArgument);
  EXPECT_NO_THROW(Segment::create(n.name, Segment::min_size()));
}

TEST(Segment, IsCreatedOwnerOnlyWhateverTheUmask) {
  ScopedSegmentName n("mode");
  const mode_t old = ::umask(0);
  auto seg = Segment::create(n.name, 1 << 20);
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(shm_path(n.name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(seg.info().mode, 0600u);
}

TEST(Segment, HonoursAnExplicitMode) {
  ScopedSegmentName n("mode640");
  const mode_t old = ::umask(0077);
  auto seg = Segment::create(n.name, 1 << 20, {.mode = 0640});
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(shm_path(n.name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(Segment, AnotherUserGetsPermissionDenied) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another user";
  ScopedSegmentName n("perm");
  auto seg = Segment::create(n.name, 1 << 20);
  Child child([&] {
    ASSERT_EQ(::setgid(65534), 0);
    ASSERT_EQ(::setuid(65534), 0);
    EXPECT_THROW(Segment::open(n.name), ipckit::PermissionDenied);
    EXPECT_THROW(Segment::open_or_create(n.name, 1 << 20), ipckit::PermissionDenied);
  });
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Segment, SixteenProcessesRacingOpenOrCreateShareOneSegment) {
  ScopedSegmentName n("race");
  constexpr int kProcs = 16;
  std::vector<Child> children;
  // A pipe as a start gun so that the processes really race.
  int gun[2];
  ASSERT_EQ(::pipe(gun), 0);
  for (int i = 0; i < kProcs; ++i) {
    children.emplace_back([&] {
      ::close(gun[1]);
      char c;
      (void)::read(gun[0], &c, 1);
      auto seg = Segment::open_or_create(n.name, 1 << 20);
      auto counter = seg.value<std::int64_t>("counter", 1000);  // initialised once
      std::lock_guard g(counter.get_lock());
      counter.set(counter.get() + 1);
    });
  }
  ::close(gun[0]);
  ::close(gun[1]);  // fires: every read returns 0
  for (auto& c : children) EXPECT_EQ(c.wait_exit(), 0);
  auto seg = Segment::open(n.name);
  EXPECT_EQ(seg.value<std::int64_t>("counter").get(), 1000 + kProcs);
  EXPECT_EQ(seg.objects().size(), 1u);
}

TEST(Segment, OpenOrCreateKeepsTheExistingSize) {
  ScopedSegmentName n("keep");
  auto a = Segment::create(n.name, 1 << 20);
  auto b = Segment::open_or_create(n.name, 4 << 20);
  EXPECT_EQ(b.size(), std::size_t{1} << 20);
}

TEST(Segment, WrongMagicIsCorrupt) {
  ScopedSegmentName n("magic");
  { auto seg = Segment::create(n.name, 1 << 20); }
  const char junk[8] = {'n', 'o', 't', 'o', 'u', 'r', 's', '!'};
  poke(n.name, 0, junk, sizeof junk);
  EXPECT_THROW(Segment::open(n.name), ipckit::CorruptSegment);
}

TEST(Segment, TruncatedSegmentIsCorrupt) {
  ScopedSegmentName n("trunc");
  { auto seg = Segment::create(n.name, 1 << 20); }
  ASSERT_EQ(::truncate(shm_path(n.name).c_str(), 1 << 19), 0);
  EXPECT_THROW(Segment::open(n.name), ipckit::CorruptSegment);
}

TEST(Segment, LayoutFromTheFutureIsCorruptAndSaysUpgrade) {
  ScopedSegmentName n("future");
  { auto seg = Segment::create(n.name, 1 << 20); }
  const std::uint32_t v = 99;
  poke(n.name, 8, &v, sizeof v);  // layout_version follows the 8-byte magic
  try {
    Segment::open(n.name);
    FAIL() << "expected CorruptSegment";
  } catch (const ipckit::CorruptSegment& e) {
    EXPECT_NE(std::string(e.what()).find("upgrade"), std::string::npos) << e.what();
  }
}

TEST(Segment, OlderLayoutIsCorruptAndSaysRecreate) {
  ScopedSegmentName n("older");
  { auto seg = Segment::create(n.name, 1 << 20); }
  const std::uint32_t v = 2;
  poke(n.name, 8, &v, sizeof v);
  try {
    Segment::open(n.name);
    FAIL() << "expected CorruptSegment";
  } catch (const ipckit::CorruptSegment& e) {
    EXPECT_NE(std::string(e.what()).find("older ipckit"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ipckit rm " + n.name), std::string::npos) << e.what();
  }
}

TEST(Segment, DirectoryEntryPointingOutsideIsCorrupt) {
  ScopedSegmentName n("entry");
  { Segment::create(n.name, 1 << 20).value<int>("v"); }
  const std::uint64_t far = std::uint64_t{1} << 40;
  poke(n.name, sizeof(ipckit::detail::SegmentHeader) + offsetof(ipckit::detail::DirEntry, offset), &far, sizeof far);
  auto seg = Segment::open(n.name);
  EXPECT_THROW(seg.value<int>("v"), ipckit::CorruptSegment);
  EXPECT_THROW(seg.objects(), ipckit::CorruptSegment);
}

TEST(Segment, AnUninitialisedFileUnderTheNameIsReportedNotReplaced) {
  ScopedSegmentName n("abandoned");
  // What an older ipckit's creator left when it died right after shm_open.
  // This one never shows an unfinished segment under its name, so such a
  // file is someone else's: reported, never replaced (only a provably dead
  // creator's segment could be, and this file names none).
  int fd = ::shm_open(("/ipckit." + n.name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_THROW(Segment::open(n.name), ipckit::CorruptSegment);
  EXPECT_THROW(Segment::open_or_create(n.name, 1 << 20), ipckit::CorruptSegment);
  ASSERT_TRUE(Segment::remove(n.name));
  auto seg = Segment::open_or_create(n.name, 1 << 20);
  seg.value<int>("works").set(1);
  EXPECT_EQ(Segment::open(n.name).value<int>("works").get(), 1);
}

TEST(Segment, RunningOutOfSpaceThrowsOutOfSpace) {
  ScopedSegmentName n("full");
  auto seg = Segment::create(n.name, Segment::min_size(4), {.max_objects = 4});
  EXPECT_THROW(seg.array<char>("big", 1 << 20), ipckit::OutOfSpace);
  seg.value<int>("a");
  seg.value<int>("b");
  seg.value<int>("c");
  seg.value<int>("d");
  try {
    seg.value<int>("e");
    FAIL() << "expected OutOfSpace";
  } catch (const ipckit::OutOfSpace& e) {
    EXPECT_NE(std::string(e.what()).find("max_objects"), std::string::npos) << e.what();
  }
  EXPECT_EQ(seg.value<int>("a").get(), 0);  // the segment still works
}

TEST(Segment, OpeningAsAnotherTypeThrowsTypeMismatch) {
  ScopedSegmentName n("types");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.value<std::int64_t>("counter");
  seg.array<int>("arr", 3);
  seg.lock("L");
  try {
    seg.value<double>("counter");
    FAIL() << "expected TypeMismatch";
  } catch (const ipckit::TypeMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("counter"), std::string::npos);
  }
  EXPECT_THROW(seg.value<std::int32_t>("counter"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.lock("counter"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.rlock("L"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.value<int>("L"), ipckit::TypeMismatch);
  EXPECT_THROW(seg.array<int>("arr", 4), ipckit::TypeMismatch);
  EXPECT_THROW(seg.array<long>("arr", 3), ipckit::TypeMismatch);
  EXPECT_NO_THROW(seg.array<int>("arr", 3));
}

// Errors name the object and its segment apart, whichever layer raises them.
TEST(Segment, ErrorsCarryTheBareObjectNameAndItsSegment) {
  ScopedSegmentName n("names");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.lock("L");
  const auto expect_names = [&](auto&& f, const std::string& object, const std::string& in_message) {
    try {
      f();
      ADD_FAILURE() << "expected an error";
    } catch (const ipckit::Error& e) {
      EXPECT_EQ(e.object(), object) << e.what();
      EXPECT_EQ(e.segment(), n.name) << e.what();
      EXPECT_NE(std::string(e.what()).find(in_message), std::string::npos) << e.what();
    }
  };
  // The directory: a kind mismatch, a bad object name.
  expect_names([&] { seg.event("L"); }, "L", "lock 'L' in segment '" + n.name + "'");
  expect_names([&] { seg.event(std::string("bad\n")); }, "bad\n", "invalid object name");
  // The handles: a lock, a semaphore, a condition.
  auto lock = seg.lock("L");
  expect_names([&] { lock.unlock(); }, "L", "only the holder");
  auto sem = seg.bounded_semaphore("S", 1);
  expect_names([&] { sem.release(); }, "S", "above its initial value");
  expect_names([&] { sem.release(0); }, "S", "release(0)");
  expect_names([&] { seg.semaphore("big", 1u << 31); }, "big", "too large");
  auto cond = seg.condition("C");
  expect_names([&] { cond.wait(); }, "C", "condition 'C'");
  std::lock_guard g(lock);
  expect_names([&] { lock.lock(); }, "L", "already holds it");
}

TEST(Segment, TypeMismatchIsSeenFromAnotherProcess) {
  ScopedSegmentName n("types2");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.value<std::int64_t>("counter");
  Child child([&] { EXPECT_THROW(Segment::open(n.name).value<double>("counter"), ipckit::TypeMismatch); });
  EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Segment, HandlesKeepTheMappingAliveAfterTheSegmentHandleIsGone) {
  ScopedSegmentName n("alive");
  auto v = Segment::create(n.name, 1 << 20).value<int>("v");
  v.set(5);
  EXPECT_EQ(v.get(), 5);
}

namespace {

struct stat stat_of_segment(const std::string& name) {
  struct stat st {};
  EXPECT_EQ(::stat(ipckit::detail::shm_path(name).c_str(), &st), 0);
  return st;
}

}  // namespace

using ipckit::testing::Child;
using ipckit::testing::contains;
using ipckit::testing::eventually;
using ipckit::testing::message_of;
using ipckit::testing::Signal;

// Every participating handle holds a shared flock on its segment's file (its
// lease), also across fork; gc removes only under an exclusive one.
TEST(SegmentLease, HeldByEveryHandleAndItsForkedChildrenAndReleasedWithTheLast) {
  using ipckit::detail::RemoveIfUnused;
  ipckit::testing::ScopedSegmentName n("lease");
  const auto remove = [&] {
    const struct stat st = stat_of_segment(n.name);
    return ipckit::detail::remove_if_unused(n.name, st.st_dev, st.st_ino);
  };
  Signal ready, go;
  {
    auto seg = ipckit::Segment::create(n.name, 1 << 16);
    EXPECT_TRUE(ipckit::detail::lease_held(n.name));
    EXPECT_EQ(remove(), RemoveIfUnused::InUse);
    // A forked child shares the open file: the lease outlives the parent's handle.
    Child child([&] {
      ready.post();
      EXPECT_TRUE(go.wait(20s));
    });
    ASSERT_TRUE(ready.wait());
    seg = ipckit::Segment::open(n.name);  // the creating handle is gone, the child's copy remains
    go.post();
    EXPECT_EQ(child.wait_exit(), 0);
    EXPECT_EQ(remove(), RemoveIfUnused::InUse);  // this process's open handle
  }
  ipckit::OpenOptions look;
  look.any_owner = true;
  auto looking = ipckit::Segment::open(n.name, look);  // a look-only handle holds no lease
  EXPECT_FALSE(ipckit::detail::lease_held(n.name));
  EXPECT_EQ(remove(), RemoveIfUnused::Removed);
  EXPECT_FALSE(ipckit::Segment::exists(n.name));
}

TEST(SegmentLease, AnOpenRacingARemovalFailsClearlyNeverUsesARemovedFile) {
  ipckit::testing::ScopedSegmentName n("lease2");
  ipckit::Segment::create(n.name, 1 << 16);
  const int fd = ::open(ipckit::detail::shm_path(n.name).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as gc holds it while it removes
  // Held past the opener's patience: a clear error naming the holder, no hang.
  const std::string held = message_of<ipckit::SystemError>([&] { ipckit::Segment::open(n.name); });
  EXPECT_TRUE(contains(held, "locked for removal")) << held;
  // Removed while the opener waits: NotFound, not a handle on a dead file.
  Signal opening;
  Child opener([&] {
    ::close(fd);  // the inherited descriptor shares the exclusive lock: not the opener's own
    opening.post();
    const std::string m = message_of<ipckit::NotFound>([&] { ipckit::Segment::open(n.name); });
    EXPECT_TRUE(contains(m, "removed")) << m;
  });
  ASSERT_TRUE(opening.wait());
  // Unlinked only once the opener has the file open (and so waits for the lease).
  const auto has_it_open = [&] {
    const std::string dir = "/proc/" + std::to_string(opener.pid()) + "/fd/";
    for (int i = 0; i < 64; ++i) {
      char target[512];
      const ssize_t len = ::readlink((dir + std::to_string(i)).c_str(), target, sizeof target - 1);
      if (len > 0 && std::string(target, static_cast<std::size_t>(len)) == ipckit::detail::shm_path(n.name))
        return true;
    }
    return false;
  };
  ASSERT_TRUE(eventually(has_it_open));
  ASSERT_EQ(::unlink(ipckit::detail::shm_path(n.name).c_str()), 0);
  ::close(fd);
  EXPECT_EQ(opener.wait_exit(), 0);
}
