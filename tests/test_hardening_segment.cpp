// Hardening tests for the segment layer: stopped peers, hostile neighbours and
// corrupted shared memory (issue: every promise holds against them).
#include <fcntl.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
#include "multiprocess.hpp"
#include "segment_layout.hpp"
#include "shm_file.hpp"

using namespace std::chrono_literals;
using ipckit::Segment;
using ipckit::testing::Child;
using ipckit::testing::Clock;
using ipckit::testing::ScopedSegmentName;
using ipckit::testing::Signal;

namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

std::string shm_path(const std::string& name) { return "/dev/shm/ipckit." + name; }

// Whether process `pid` is stopped (state T in /proc/<pid>/stat).
bool is_stopped(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'T';
}

bool becomes_stopped(const Child& c) {
  return ipckit::testing::eventually([&] { return is_stopped(c.pid()); });
}

// Runs `body` in a child and returns how long it took; the child must exit
// 0 within `deadline` (a call that blocks forever fails the test).
std::chrono::milliseconds timed_in_child(const std::function<void()>& body, std::chrono::milliseconds deadline = 20s) {
  const auto t0 = Clock::now();
  Child c(body);
  EXPECT_EQ(c.wait_exit(deadline), 0) << "the child failed, or was still blocked after " << deadline.count() << " ms";
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Expects `f` to throw E whose message contains every one of `parts`.
template <class E, class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected an error, got none";
  } catch (const E& e) {
    for (const auto& p : parts) EXPECT_TRUE(contains(e.what(), p)) << "missing '" << p << "' in: " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected error type: " << e.what();
  }
}

// The segment's file mapped directly, as a second (buggy or hostile) process would.
struct RawMapping {
  explicit RawMapping(const std::string& name) {
    const int fd = ::open(shm_path(name).c_str(), O_RDWR);
    EXPECT_GE(fd, 0);
    struct stat st {};
    ::fstat(fd, &st);
    size = static_cast<std::size_t>(st.st_size);
    base = static_cast<char*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    ::close(fd);
    EXPECT_NE(base, MAP_FAILED);
  }
  ~RawMapping() { ::munmap(base, size); }
  RawMapping(const RawMapping&) = delete;
  RawMapping& operator=(const RawMapping&) = delete;
  ipckit::detail::SegmentHeader& header() const { return *reinterpret_cast<ipckit::detail::SegmentHeader*>(base); }
  ipckit::detail::DirEntry& entry(std::uint32_t i) const {
    return reinterpret_cast<ipckit::detail::DirEntry*>(base + sizeof(ipckit::detail::SegmentHeader))[i];
  }
  char* base = nullptr;
  std::size_t size = 0;
};

// Drops to the unprivileged user `nobody` (in a forked child); throws, so
// that the child fails, if it cannot.
void become_nobody() {
  if (::setgroups(0, nullptr) != 0 || ::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0 || ::geteuid() != kNobody)
    throw std::runtime_error(std::string("cannot become nobody: ") + std::strerror(errno));
}

// A file planted under a segment's name (empty, mode `mode`), flock-held by
// a child that then stops itself: a stalled creator of older ipckit
// versions, or a squatter.
Child plant_locked_file(const std::string& path, mode_t mode, bool as_nobody) {
  Signal planted;
  Child c([&, path, mode, as_nobody] {
    if (as_nobody) become_nobody();
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, mode);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::fchmod(fd, mode), 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    planted.post();
    ::raise(SIGSTOP);  // holds the lock for as long as the test lets it live
  });
  EXPECT_TRUE(planted.wait()) << "the planting child did not get going";
  EXPECT_TRUE(becomes_stopped(c));
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------
// Open/open_or_create never block on someone's flock of the file.

TEST(SegmentHardening, OpenDoesNotWaitForAStoppedProcessHoldingAFlockOnTheFile) {
  ScopedSegmentName n("flocked");
  Child holder = plant_locked_file(shm_path(n.name), 0600, false);
  const pid_t holder_pid = holder.pid();
  const auto took = timed_in_child([&] {
    expect_error<ipckit::CorruptSegment>([&] { Segment::open(n.name); },
                                         {"not an initialised", std::to_string(holder_pid), "ipckit rm"});
    // It is reported, not replaced: only a provably dead creator may be.
    expect_error<ipckit::CorruptSegment>([&] { Segment::open_or_create(n.name, 1 << 20); },
                                         {"not an initialised", std::to_string(holder_pid)});
  });
  EXPECT_LT(took, 3s) << "opening waited for the stopped lock holder";
  // Once the name is cleared, creation works while the holder still sits there.
  ASSERT_TRUE(Segment::remove(n.name));
  auto seg = Segment::open_or_create(n.name, 1 << 20);
  seg.value<int>("v").set(1);
  EXPECT_EQ(Segment::open(n.name).value<int>("v").get(), 1);
}

// A creator stopped in the middle of creating holds up nobody: its segment
// is not visible until complete, and when it resumes it finds the name taken.
TEST(SegmentHardening, AStoppedCreatorHoldsUpNobody) {
  ScopedSegmentName n("stopped_creator");
  Child creator([&] {
    ipckit::detail::g_create_hook = [](ipckit::detail::CreateStage stage) {
      if (stage == ipckit::detail::CreateStage::Initialised) ::raise(SIGSTOP);
    };
    EXPECT_THROW(Segment::create(n.name, 1 << 20), ipckit::AlreadyExists);
    // open_or_create after the same stall joins the existing segment.
    EXPECT_EQ(Segment::open_or_create(n.name, 1 << 20).value<int>("v").get(), 42);
  });
  ASSERT_TRUE(becomes_stopped(creator));
  const auto t0 = Clock::now();
  EXPECT_THROW(Segment::open(n.name), ipckit::NotFound);
  auto seg = Segment::open_or_create(n.name, 1 << 20);
  seg.value<int>("v").set(42);
  EXPECT_LT(Clock::now() - t0, 2s);
  creator.kill(SIGCONT);
  EXPECT_EQ(creator.wait_exit(), 0);
}

// ---------------------------------------------------------------------------
// No timing window decides that a segment was abandoned.

namespace {
// One round: process A's creation stalls for `delay` at `stage` while process
// B runs open_or_create; both must end up on one segment.
void race_with_a_stalled_creator(ipckit::detail::CreateStage stage) {
  ScopedSegmentName n("split_brain");
  Signal a_stalled, a_wrote, b_wrote;
  static ipckit::detail::CreateStage s_stage;
  static const Signal* s_stalled;
  s_stage = stage;
  s_stalled = &a_stalled;
  Child a([&] {
    ipckit::detail::g_create_hook = [](ipckit::detail::CreateStage at) {
      if (at != s_stage) return;
      s_stalled->post();
      std::this_thread::sleep_for(300ms);  // a loaded machine deschedules the creator here
    };
    auto seg = Segment::open_or_create(n.name, 1 << 20);
    seg.value<std::int64_t>("from_a").set(42);
    a_wrote.post();
    ASSERT_TRUE(b_wrote.wait());
    EXPECT_EQ(seg.value<std::int64_t>("from_b").get(), 7) << "A and B use different segments";
  });
  Child b([&] {
    ASSERT_TRUE(a_stalled.wait());
    auto seg = Segment::open_or_create(n.name, 1 << 20);
    seg.value<std::int64_t>("from_b").set(7);
    b_wrote.post();
    ASSERT_TRUE(a_wrote.wait());
    EXPECT_EQ(seg.value<std::int64_t>("from_a").get(), 42) << "A and B use different segments";
  });
  EXPECT_EQ(a.wait_exit(), 0);
  EXPECT_EQ(b.wait_exit(), 0);
}
}  // namespace

TEST(SegmentHardening, ACreatorStalledAfterReservingSharesTheSegmentWithAConcurrentOpener) {
  race_with_a_stalled_creator(ipckit::detail::CreateStage::Reserved);
}

TEST(SegmentHardening, ACreatorStalledBeforePublishingSharesTheSegmentWithAConcurrentOpener) {
  race_with_a_stalled_creator(ipckit::detail::CreateStage::Initialised);
}

TEST(SegmentHardening, ACreatorKilledMidwayLeavesNothingUnderTheName) {
  ScopedSegmentName n("killed_creator");
  for (auto stage : {ipckit::detail::CreateStage::SpaceChecked, ipckit::detail::CreateStage::Reserved,
                     ipckit::detail::CreateStage::Initialised}) {
    static ipckit::detail::CreateStage s_stage;
    s_stage = stage;
    Child creator([&] {
      ipckit::detail::g_create_hook = [](ipckit::detail::CreateStage at) {
        if (at == s_stage) ::raise(SIGKILL);
      };
      Segment::create(n.name, 1 << 20);
    });
    EXPECT_EQ(creator.wait_exit(), -SIGKILL);
    EXPECT_FALSE(Segment::exists(n.name));
    EXPECT_THROW(Segment::open(n.name), ipckit::NotFound);
  }
  auto seg = Segment::open_or_create(n.name, 1 << 20);
  seg.value<int>("v").set(3);
  EXPECT_EQ(Segment::open(n.name).value<int>("v").get(), 3);
}

// ---------------------------------------------------------------------------
// Group/other bits the caller did not ask for are refused.

TEST(SegmentHardening, OpenRefusesModeBitsItDidNotAskFor) {
  ScopedSegmentName n("mode");
  { auto planted = Segment::create(n.name, 1 << 20, {.mode = 0666}); }
  expect_error<ipckit::PermissionDenied>([&] { Segment::open(n.name); }, {"0666", "mode = 0666"});
  expect_error<ipckit::PermissionDenied>([&] { Segment::open_or_create(n.name, 1 << 20); }, {"0666"});
  // 0640 does not cover 0666 either.
  EXPECT_THROW(Segment::open(n.name, {.mode = 0640}), ipckit::PermissionDenied);
  // Asked for explicitly, it is fine.
  EXPECT_NO_THROW(Segment::open(n.name, {.mode = 0666}).value<int>("v"));
  EXPECT_NO_THROW(Segment::open_or_create(n.name, 1 << 20, {.mode = 0666}).value<int>("v"));
  EXPECT_NO_THROW(Segment::open(n.name, {.any_owner = true}));
}

TEST(SegmentHardening, ASymlinkOrFifoUnderTheNameIsRefused) {
  ScopedSegmentName n("link");
  ScopedSegmentName target("link_target");
  { auto t = Segment::create(target.name, 1 << 20); }
  ASSERT_EQ(::symlink(shm_path(target.name).c_str(), shm_path(n.name).c_str()), 0);
  EXPECT_THROW(Segment::open(n.name), ipckit::PermissionDenied);
  EXPECT_THROW(Segment::open_or_create(n.name, 1 << 20), ipckit::PermissionDenied);
  ASSERT_TRUE(Segment::remove(n.name));
  ASSERT_EQ(::mkfifo(shm_path(n.name).c_str(), 0600), 0);
  const auto took = timed_in_child([&] {
    EXPECT_THROW(Segment::open(n.name), ipckit::CorruptSegment);
    EXPECT_THROW(Segment::open_or_create(n.name, 1 << 20), ipckit::CorruptSegment);
  });
  EXPECT_LT(took, 3s);
}

// ---------------------------------------------------------------------------
// Space is reserved at creation; a full /dev/shm is OutOfSpace.

TEST(SegmentHardening, ATebibyteSegmentIsOutOfSpaceBeforeAnythingIsTouched) {
  ScopedSegmentName n("huge");
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs("/dev/shm", &vfs), 0);
  const std::uint64_t huge = std::uint64_t{1} << 40;
  if (static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize >= huge) GTEST_SKIP() << "/dev/shm can hold 1 TiB here";
  expect_error<ipckit::OutOfSpace>([&] { Segment::create(n.name, huge); }, {std::to_string(huge), "/dev/shm"});
  EXPECT_FALSE(Segment::exists(n.name));
  EXPECT_THROW(Segment::open_or_create(n.name, huge), ipckit::OutOfSpace);
  EXPECT_FALSE(Segment::exists(n.name));
}

namespace {
// A small tmpfs mounted on a fresh directory for one test (needs root).
struct SmallTmpfs {
  explicit SmallTmpfs(const char* size) {
    char tmpl[] = "/tmp/ipckit_tmpfs_XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir = tmpl;
    const std::string opts = std::string("size=") + size + ",mode=1777";
    mounted = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted) why = std::strerror(errno);
  }
  ~SmallTmpfs() {
    if (mounted) ::umount2(dir.c_str(), MNT_DETACH);
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  std::string dir;
  bool mounted = false;
  std::string why;
};
}  // namespace

TEST(SegmentHardening, AFullShmDirectoryIsOutOfSpaceNeverSigbus) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs (run the suite as root to cover this)";
  SmallTmpfs fs("8m");
  if (!fs.mounted) GTEST_SKIP() << "cannot mount a tmpfs here: " << fs.why;
  // In a child: IPCKIT_SHM_DIR is read per call, and a SIGBUS must fail the test, not kill the suite.
  Child c([&] {
    ASSERT_EQ(::setenv("IPCKIT_SHM_DIR", fs.dir.c_str(), 1), 0);
    auto a = Segment::create("a", 6 << 20);
    auto fill = a.array<char>("fill", 5 << 20);
    std::memset(fill.data(), 1, fill.size());
    // Too big for what is left: refused up front, with the numbers.
    try {
      auto b = Segment::create("b", 6 << 20);
      auto more = b.array<char>("fill", 5 << 20);  // before the fix: SIGBUS here
      std::memset(more.data(), 1, more.size());
      ADD_FAILURE() << "a 6 MiB segment was created on a tmpfs with 2 MiB left";
    } catch (const ipckit::OutOfSpace& e) {
      EXPECT_TRUE(contains(e.what(), std::to_string(6 << 20))) << e.what();
      EXPECT_TRUE(contains(e.what(), fs.dir)) << e.what();
    }
    EXPECT_FALSE(Segment::exists("b"));
    EXPECT_THROW(Segment::open_or_create("b", 6 << 20), ipckit::OutOfSpace);
    // Larger than the whole file system: "ever" is said.
    expect_error<ipckit::OutOfSpace>([] { Segment::create("c", 64 << 20); }, {"in all"});
    // The space vanishes between the check and the reservation: posix_fallocate says so.
    static std::string s_dir;
    s_dir = fs.dir;
    ipckit::detail::g_create_hook = [](ipckit::detail::CreateStage at) {
      if (at != ipckit::detail::CreateStage::SpaceChecked) return;
      const int fd = ::open((s_dir + "/filler").c_str(), O_CREAT | O_RDWR, 0600);
      (void)::posix_fallocate(fd, 0, 1 << 20);
      ::close(fd);
    };
    struct statvfs vfs {};
    ASSERT_EQ(::statvfs(fs.dir.c_str(), &vfs), 0);
    const std::uint64_t left = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    ASSERT_GE(left, std::uint64_t{1} << 20);
    expect_error<ipckit::OutOfSpace>([&] { Segment::create("d", left); }, {std::to_string(left), "free"});
    ipckit::detail::g_create_hook = nullptr;
    EXPECT_FALSE(Segment::exists("d"));
    // The first segment still works.
    EXPECT_EQ(a.array<char>("fill", 5 << 20)[12345], 1);
  });
  const int rc = c.wait_exit();
  EXPECT_EQ(rc, 0) << (rc == -SIGBUS ? "the child died of SIGBUS" : "");
}

// ---------------------------------------------------------------------------
// A word changed in the header or directory after open never leads
// to a wild access or to one object written over another.

TEST(SegmentHardening, StrayWritesToTheHeaderNeverCrashOrOverwriteObjects) {
  using ipckit::detail::SegmentHeader;
  struct Mutation {
    const char* what;
    std::function<void(RawMapping&)> apply;
  };
  const std::vector<Mutation> mutations = {
      {"directory_offset far away", [](RawMapping& m) { m.header().directory_offset = std::uint64_t{1} << 40; }},
      {"directory_offset onto the objects", [](RawMapping& m) { m.header().directory_offset = m.entry(0).offset; }},
      {"max_objects raised", [](RawMapping& m) { m.header().max_objects = 100000; }},
      {"max_objects lowered", [](RawMapping& m) { m.header().max_objects = 1; }},
      {"heap_offset moved", [](RawMapping& m) { m.header().heap_offset = 64; }},
      {"size raised", [](RawMapping& m) { m.header().size = std::uint64_t{1} << 40; }},
      {"heap_top past the end", [](RawMapping& m) { m.header().heap_top = std::uint64_t{1} << 40; }},
      {"heap_top moved back", [](RawMapping& m) { m.header().heap_top = m.header().heap_offset; }},
      {"object_count past the directory", [](RawMapping& m) { m.header().object_count = 100000; }},
      {"object_count onto blank entries", [](RawMapping& m) { m.header().object_count = 4; }},
      {"an entry moved onto another object", [](RawMapping& m) { m.entry(1).offset = m.entry(0).offset; }},
      {"an entry moved outside", [](RawMapping& m) { m.entry(1).offset = std::uint64_t{1} << 40; }},
  };
  for (const auto& mut : mutations) {
    SCOPED_TRACE(mut.what);
    ScopedSegmentName n("stray");
    // A full directory (4 entries), so that a raised max_objects would put
    // new entries where the first objects live.
    auto seg = Segment::create(n.name, 1 << 20, {.max_objects = 4});
    auto sem = seg.semaphore("s", 3);
    auto v = seg.value<std::int64_t>("v", 7);
    auto lock = seg.lock("L");
    Child c([&] {
      {
        RawMapping raw(n.name);
        mut.apply(raw);
      }
      const auto tolerated = [&](const std::function<void()>& f) {
        try {
          f();
        } catch (const ipckit::CorruptSegment&) {
        } catch (const ipckit::OutOfSpace&) {
        }
      };
      for (int i = 0; i < 4; ++i) tolerated([&] { seg.value<std::int64_t>("new" + std::to_string(i)).set(99); });
      tolerated([&] { seg.value<std::int64_t>("v").set(99); });
      tolerated([&] { EXPECT_EQ(seg.semaphore("s", 3).value(), 3u); });
      tolerated([&] { (void)seg.objects(); });
      tolerated([&] { (void)seg.info(); });
      tolerated([&] {
        auto again = Segment::open(n.name);
        again.value<std::int64_t>("again").set(99);
      });
      // What lived there before is untouched (a 99 written over the
      // semaphore or the lock would show here).
      EXPECT_EQ(sem.value(), 3u);
      EXPECT_TRUE(v.get() == 7 || v.get() == 99);
      EXPECT_FALSE(lock.locked());
      EXPECT_TRUE(lock.try_lock());
    });
    const int rc = c.wait_exit();
    EXPECT_EQ(rc, 0) << "exit " << rc << (rc < 0 ? " (killed by a signal: a wild access)" : "");
  }
}

// ---------------------------------------------------------------------------
// Creating an object gives up on a stopped holder
// of the directory lock.

TEST(SegmentHardening, ObjectCreationTimesOutOnAStoppedDirectoryLockHolder) {
  ScopedSegmentName n("dirlock");
  auto seg = Segment::create(n.name, 1 << 20);
  seg.value<int>("existing", 5);
  Signal holding;
  Child holder([&] {
    RawMapping raw(n.name);
    auto dir = ipckit::detail::SegmentAccess::make<ipckit::Lock>(
        &raw.header().directory_lock, nullptr, ipckit::detail::Label("directory", "", "directory lock"));
    dir.lock();
    holding.post();
    ::raise(SIGSTOP);
  });
  ASSERT_TRUE(holding.wait());
  ASSERT_TRUE(becomes_stopped(holder));
  const pid_t holder_pid = holder.pid();
  const auto took = timed_in_child([&] {
    // Opening an existing object takes no lock.
    EXPECT_EQ(seg.value<int>("existing").get(), 5);
    const auto t0 = Clock::now();
    expect_error<ipckit::Timeout>([&] { seg.value<int>("fresh"); },
                                  {"value 'fresh'", "pid " + std::to_string(holder_pid), "stopped"});
    const auto waited = Clock::now() - t0;
    EXPECT_GE(waited, ipckit::kDirectoryLockWait - 100ms);
    EXPECT_LT(waited, ipckit::kDirectoryLockWait + 1500ms);
  });
  EXPECT_LT(took, ipckit::kDirectoryLockWait + 3s);
  // Once the holder is gone its lock is taken over and creation works.
  holder.kill(SIGKILL);
  holder.wait_exit();
  EXPECT_EQ(seg.value<int>("fresh", 8).get(), 8);
}

// ---------------------------------------------------------------------------
// A second Unix user: cannot read, plant or squat its way into the victim's
// segments.

TEST(SecondUser, CannotReadPlantOrSquatItsWayIn) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to act as a second user (nobody, uid 65534); run the suite as root to cover this";
  ScopedSegmentName secret("secret");
  ScopedSegmentName planted("planted");
  ScopedSegmentName squatted("squatted");
  ScopedSegmentName squatted_private("squatted0600");

  // Default segments: owner-only.
  auto mine = Segment::create(secret.name, 1 << 20);
  mine.value<std::int64_t>("pin", 1234);
  Child reader([&] {
    become_nobody();
    EXPECT_THROW(Segment::open(secret.name), ipckit::PermissionDenied);
    EXPECT_THROW(Segment::open(secret.name, {.mode = 0666, .allow_owner = 0}), ipckit::PermissionDenied);
    EXPECT_THROW(Segment::open_or_create(secret.name, 1 << 20), ipckit::PermissionDenied);
    EXPECT_LT(::open(shm_path(secret.name).c_str(), O_RDONLY), 0);
    EXPECT_EQ(errno, EACCES);
    EXPECT_THROW(Segment::remove(secret.name), ipckit::PermissionDenied);
  });
  EXPECT_EQ(reader.wait_exit(), 0);
  EXPECT_TRUE(Segment::exists(secret.name));
  EXPECT_EQ(mine.value<std::int64_t>("pin").get(), 1234);

  // Planted: a valid, world-writable segment made by nobody.
  Child planter([&] {
    become_nobody();
    Segment::create(planted.name, 1 << 20, {.mode = 0666}).value<std::int64_t>("pin");
  });
  ASSERT_EQ(planter.wait_exit(), 0);
  expect_error<ipckit::PermissionDenied>([&] { Segment::open(planted.name); }, {"uid 65534", "allow_owner"});
  expect_error<ipckit::PermissionDenied>([&] { Segment::open_or_create(planted.name, 1 << 20); }, {"uid 65534"});
  // Even with the mode accepted, the owner is not.
  EXPECT_THROW(Segment::open(planted.name, {.mode = 0666}), ipckit::PermissionDenied);
  // Explicit trust in that user opens it.
  EXPECT_EQ(Segment::open(planted.name, {.mode = 0666, .allow_owner = kNobody}).value<std::int64_t>("pin").get(), 0);

  // Squatted: an empty file, flock-held by a stopped process of nobody, with
  // a shared and with a private mode. Neither hangs the victim.
  Child squatter = plant_locked_file(shm_path(squatted.name), 0666, true);
  Child squatter_private = plant_locked_file(shm_path(squatted_private.name), 0600, true);
  const auto took = timed_in_child([&] {
    for (const auto* name : {&squatted.name, &squatted_private.name}) {
      expect_error<ipckit::PermissionDenied>([&] { Segment::open(*name); }, {"uid 65534"});
      expect_error<ipckit::PermissionDenied>([&] { Segment::open_or_create(*name, 1 << 20); }, {"uid 65534"});
    }
  });
  EXPECT_LT(took, 3s);
}
