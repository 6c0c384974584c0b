// The `ipckit` CLI run against live objects: what `inspect` says of values,
// a lock whose holder died, queues (with the processes holding unfinished
// tasks) and priority queues, in text and as JSON; and against names planted
// to forge its output (control characters, invalid UTF-8).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_run.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
#include "ipckit/pool.hpp"
#include "ipckit/pool_tasks.hpp"
#include "ipckit/process_table.hpp"
#include "multiprocess.hpp"
#include "process_table_layout.hpp"
#include "segment_layout.hpp"

using namespace std::chrono_literals;
using ipckit::ProcessPool;
using ipckit::Segment;
using namespace ipckit::testing;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string read_fd(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

struct CliRun {
  int status = -1;  // exit status, -1 if it did not exit normally
  std::string out, err;
};

// Runs the CLI with exactly these arguments (any bytes, no shell between).
CliRun run_cli_argv(const std::vector<std::string>& args) {
  int out[2], err[2];
  if (::pipe(out) != 0 || ::pipe(err) != 0) return {};
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::close(out[0]), ::close(out[1]), ::close(err[0]), ::close(err[1]);
    std::vector<char*> argv{const_cast<char*>(IPCKIT_CLI)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(IPCKIT_CLI, argv.data());
    ::_exit(127);
  }
  ::close(out[1]), ::close(err[1]);
  CliRun r;
  // stderr is small (one message): read stdout to the end first.
  r.out = read_fd(out[0]);
  r.err = read_fd(err[0]);
  ::close(out[0]), ::close(err[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Runs a Python check on `data` (in a file whose path is sys.argv[1]);
// returns "" when it passed, else what it printed.
std::string python_check(const std::string& data, const std::string& script) {
  const std::string path = "/tmp/ipckit_cli_check_" + std::to_string(::getpid()) + ".bin";
  const std::string code = path + ".py";
  std::ofstream(path, std::ios::binary) << data;
  std::ofstream(code) << script;
  const std::string command = "python3 " + code + " " + path + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  std::string out;
  char buf[4096];
  for (std::size_t n; pipe && (n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0;) out.append(buf, n);
  const int status = pipe ? ::pclose(pipe.release()) : -1;
  ::unlink(path.c_str());
  ::unlink(code.c_str());
  if (status == 0) return "";
  return out.empty() ? "python3 failed" : out;
}

// Human output: valid UTF-8 without a control character but the line ends
// (C0, DEL, C1), nor a bidi override; its lines are printed on failure.
const char* const kCleanText = R"(
import sys
raw = open(sys.argv[1], 'rb').read()
text = raw.decode('utf-8')  # strict: raises on invalid UTF-8
for ch in text:
    o = ord(ch)
    if (o < 0x20 and ch != '\n') or 0x7f <= o <= 0x9f or o in (0x2028, 0x2029, 0x202e, 0x2066, 0x2067, 0x2068):
        sys.exit('raw control character U+%04X in %r' % (o, text))
)";

// A segment's file mapped read-write, to plant what the library refuses to write.
class RawSegment {
 public:
  explicit RawSegment(const std::string& name, const std::string& dir = "/dev/shm") {
    const int fd = ::open((dir + "/ipckit." + name).c_str(), O_RDWR);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) throw std::runtime_error("cannot open segment file " + name);
    size_ = static_cast<std::size_t>(st.st_size);
    base_ = static_cast<char*>(::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    ::close(fd);
    if (base_ == MAP_FAILED) throw std::runtime_error("cannot map segment file " + name);
  }
  ~RawSegment() { ::munmap(base_, size_); }
  RawSegment(const RawSegment&) = delete;
  RawSegment& operator=(const RawSegment&) = delete;
  ipckit::detail::DirEntry& entry(const std::string& object) {
    const auto& h = *reinterpret_cast<const ipckit::detail::SegmentHeader*>(base_);
    auto* entries = reinterpret_cast<ipckit::detail::DirEntry*>(base_ + h.directory_offset);
    for (std::uint32_t i = 0; i < h.object_count.load(); ++i)
      if (object == entries[i].name) return entries[i];
    throw std::runtime_error("no object " + object);
  }
  // Writes `name` (at most 23 bytes) into the process table slot of `pid`.
  void plant_process_name(int pid, const std::string& name) {
    const auto& h = *reinterpret_cast<const ipckit::detail::SegmentHeader*>(base_);
    auto* slots = reinterpret_cast<ipckit::detail::ProcessSlot*>(base_ + h.process_table_offset);
    for (std::uint32_t i = 0; i < h.max_processes; ++i) {
      if ((slots[i].owner.load() & ipckit::detail::kSlotPidMask) != static_cast<std::uint64_t>(pid)) continue;
      std::uint64_t words[ipckit::detail::kSlotNameWords] = {};
      ASSERT_LT(name.size(), sizeof words);
      std::memcpy(words, name.data(), name.size());
      for (std::uint32_t w = 0; w < ipckit::detail::kSlotNameWords; ++w) slots[i].name[w].store(words[w]);
      return;
    }
    FAIL() << "no slot of pid " << pid;
  }
  static void set(char* field, std::size_t size, const std::string& text) {
    ASSERT_LT(text.size(), size);
    std::memset(field, 0, size);
    std::memcpy(field, text.data(), text.size());
  }

 private:
  char* base_ = nullptr;
  std::size_t size_ = 0;
};

// Segment files planted under names that ipckit itself would refuse to
// create; unlinked directly (Segment::remove refuses such names too).
struct PlantedFiles {
  std::vector<std::string> paths;
  ~PlantedFiles() {
    for (const auto& p : paths) ::unlink(p.c_str());
  }
  void copy(const std::string& from_segment, const std::string& to_name) {
    std::ifstream in("/dev/shm/ipckit." + from_segment, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string path = "/dev/shm/ipckit." + to_name;
    paths.push_back(path);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0) << path;
    const std::string b = bytes.str();
    EXPECT_EQ(::write(fd, b.data(), b.size()), static_cast<ssize_t>(b.size()));
    ::close(fd);
  }
};

std::size_t count_lines_with(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += has(line, part);
  return n;
}

std::size_t count_lines_starting_with(const std::string& text, const std::string& start) {
  std::size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) n += line.rfind(start, 0) == 0;
  return n;
}

bool a_line_starts_with(const std::string& text, const std::string& start) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(start, 0) == 0) return true;
  return false;
}

// Names a local user can plant (as a segment file, or by writing a segment's
// directory): a newline that would forge a row, terminal escapes, a C1
// control (CSI), and byte sequences that are not UTF-8: overlong forms (2-
// and 3-byte), a UTF-16 surrogate, bytes 0xF5-0xFF. Each starts with a tag
// that the test looks for.
const std::vector<std::string> kEvilNames = {
    "nl\nFORGED  value  long  1  8  free  0  42",
    "esc\x1b[31mred\x1b]0;title\x07",
    "c1\xc2\x9b"
    "31m",
    "over2\xc0\xaf",
    "over3\xe0\x80\xaf",
    "surr\xed\xa0\x80",
    "ff\xff\x80\x80",
    "f5\xf5\x80\x80\x80",
    "bidi\xe2\x80\xae",
};
const std::vector<std::string> kEvilTags = {"nl", "esc", "c1", "over2", "over3", "surr", "ff", "f5", "bidi"};

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
  EXPECT_EQ(python_check(json, R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
jobs = [o for o in doc['objects'] if o['name'] == 'jobs'][0]
assert {'pid': )" + std::to_string(holder.pid()) +
                                   R"(, 'tasks': 2, 'alive': False} in jobs['state']['held'], jobs
)"),
            "")
      << json;
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

// Names with control characters or invalid UTF-8, planted as segment files
// and as objects in a segment's directory (and a char array holding such
// bytes): `ls` and `inspect` print one line per segment/object, escape every
// control character and invalid byte, and their JSON is strictly valid UTF-8
// with U+FFFD where the bytes were not UTF-8.
TEST(Cli, PlantedNamesNeitherForgeRowsNorEmitControlBytesNorBreakTheJson) {
  ScopedSegmentName n("cli_evil");
  {
    auto seg = Segment::create(n.name, 1 << 20);
    for (std::size_t i = 0; i < kEvilTags.size(); ++i)
      seg.value<std::int64_t>("obj" + std::to_string(i)).set(static_cast<std::int64_t>(i));
    (void)seg.array<char>("typed", 8);
    auto text = seg.array<char>("text", 32);
    const std::string bytes = "ok\x1b[2J\n\xff\xed\xa0\x80";
    for (std::size_t i = 0; i < bytes.size(); ++i) text[i] = bytes[i];
  }
  {
    RawSegment raw(n.name);
    for (std::size_t i = 0; i < kEvilNames.size(); ++i)
      RawSegment::set(raw.entry("obj" + std::to_string(i)).name, sizeof(ipckit::detail::DirEntry::name), kEvilNames[i]);
    auto& typed = raw.entry("typed");
    RawSegment::set(typed.type_name, sizeof typed.type_name, "c\x1b]0;pwned\x07");
  }
  PlantedFiles planted;
  for (const auto& evil : kEvilNames) planted.copy(n.name, n.name + "_" + evil);

  // ls: one line per planted segment, nothing raw.
  const auto ls = run_cli_argv({"ls"});
  EXPECT_EQ(ls.status, 0) << ls.err;
  EXPECT_EQ(python_check(ls.out, kCleanText), "");
  for (const auto& tag : kEvilTags)
    EXPECT_EQ(count_lines_with(ls.out, n.name + "_" + tag), 1u) << tag << " in\n" << ls.out;
  EXPECT_FALSE(a_line_starts_with(ls.out, "FORGED")) << ls.out;

  const auto ls_json = run_cli_argv({"ls", "--json"});
  EXPECT_EQ(ls_json.status, 0) << ls_json.err;
  EXPECT_EQ(python_check(ls_json.out, R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
prefix = ')" + n.name + R"(_'
names = {s['name'][len(prefix):] for s in doc['segments'] if s['name'].startswith(prefix)}
assert len(names) == 9, names
assert 'nl\nFORGED  value  long  1  8  free  0  42' in names, names
assert 'esc\x1b[31mred\x1b]0;title\x07' in names, names
assert 'c1\x9b31m' in names, names
assert 'bidi\u202e' in names, names
for tag in ('over2', 'over3', 'surr', 'ff', 'f5'):
    got = [x for x in names if x.startswith(tag)]
    assert len(got) == 1 and set(got[0][len(tag):]) == {'\ufffd'}, (tag, got)
)"),
            "");

  // inspect: one line per object, nothing raw; the JSON names every object.
  const auto insp = run_cli_argv({"inspect", n.name});
  EXPECT_EQ(insp.status, 0) << insp.err;
  EXPECT_EQ(python_check(insp.out, kCleanText), "");
  for (const auto& tag : kEvilTags)
    EXPECT_EQ(count_lines_starting_with(insp.out, tag), 1u) << tag << " in\n" << insp.out;
  EXPECT_FALSE(a_line_starts_with(insp.out, "FORGED")) << insp.out;
  EXPECT_TRUE(has(insp.out, "\\x1b[2J")) << "the char array's escape shown escaped\n" << insp.out;

  const auto insp_json = run_cli_argv({"inspect", "--json", n.name});
  EXPECT_EQ(insp_json.status, 0) << insp_json.err;
  EXPECT_EQ(python_check(insp_json.out, R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
objs = {o['name']: o for o in doc['objects']}
assert len(objs) == 11, list(objs)
assert objs['nl\nFORGED  value  long  1  8  free  0  42']['value'] == 0, objs
assert objs['esc\x1b[31mred\x1b]0;title\x07']['value'] == 1, objs
assert objs['typed']['type'] == 'c\x1b]0;pwned\x07', objs['typed']
text = objs['text']['values']
assert text.startswith('ok\x1b[2J\n') and set(text[7:]) == {'\ufffd'}, objs['text']
for tag in ('over2', 'over3', 'surr', 'ff', 'f5'):
    got = [x for x in objs if x.startswith(tag)]
    assert len(got) == 1 and set(got[0][len(tag):]) == {'\ufffd'}, (tag, got)
for name in objs:
    assert not any(0xd800 <= ord(c) <= 0xdfff for c in name), repr(name)
)"),
            "");

  // A segment whose own name is not UTF-8 is inspected by that name.
  const auto ff = run_cli_argv({"inspect", "--json", n.name + "_" + kEvilNames[6]});
  EXPECT_EQ(ff.status, 0) << ff.err;
  EXPECT_EQ(python_check(ff.out, R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
assert doc['segment']['name'].endswith('_ff\ufffd\ufffd\ufffd'), doc['segment']
)"),
            "");
  // Errors name the object escaped too.
  const auto missing = run_cli_argv({"inspect", n.name + "_" + kEvilNames[1]});
  EXPECT_EQ(missing.status, 1);
  EXPECT_EQ(python_check(missing.err, kCleanText), "") << "stderr";
}

// What the library's snapshots add: who holds a tracked semaphore's units,
// a condition's waiter, a barrier's party and why it broke; a state that
// cannot be right is flagged CORRUPT in its row, and an object whose fixed
// settings were overwritten is an error row, the others still shown.
TEST(Cli, InspectShowsHoldersWaitersAndPartiesAndFlagsACorruptState) {
  ScopedSegmentName n("cli_snapshots");
  auto seg = Segment::create(n.name, 4 << 20);
  auto units = seg.semaphore("units", 3, {.track_holders = true});
  auto ready = seg.condition("ready");
  auto start = seg.barrier("start", 2);
  auto aborted = seg.barrier("aborted", 2);
  auto odd = seg.barrier("odd", 2);
  (void)seg.queue<int>("mangled");
  aborted.abort();
  const auto body = [&](const char* name) {
    return const_cast<void*>(ipckit::detail::SegmentAccess::object_body(seg, name));
  };
  std::atomic_ref(static_cast<ipckit::detail::BarrierState*>(body("odd"))->arrived).store(9);
  static_cast<ipckit::detail::QueueState*>(body("mangled"))->capacity = 12345;

  Signal holding;
  Child holder([&] {
    units.acquire();
    units.acquire();
    std::unique_lock g(ready);
    holding.post();
    (void)ready.wait(20s);
  });
  Child party([&] { EXPECT_THROW(start.wait(20s), ipckit::BrokenBarrier); });
  ASSERT_TRUE(holding.wait());
  ASSERT_TRUE(asleep(holder));
  ASSERT_TRUE(eventually([&] { return start.n_waiting() == 1; }));

  const auto [rc, text] = run_cli("inspect " + n.name);
  EXPECT_EQ(rc, 0) << text;
  EXPECT_TRUE(has(text, "1/3 free, 0 sleeping, tracked, 0 reclaimed (held: 2 by pid " + std::to_string(holder.pid())))
      << text;
  EXPECT_TRUE(has(text, "1 sleeping, bound to its own lock, 1 waiting")) << text;
  EXPECT_TRUE(has(text, "1/2 arrived, round 0")) << text;
  EXPECT_TRUE(has(text, "BROKEN (aborted)")) << text;
  EXPECT_TRUE(has(text, "CORRUPT: 9 parties arrived of 2")) << text;
  EXPECT_EQ(count_lines_starting_with(text, "mangled"), 1u) << text;
  EXPECT_TRUE(has(text, "error: queue 'mangled'")) << text;

  const auto [rc2, json] = run_cli("inspect --json " + n.name);
  EXPECT_EQ(rc2, 0) << json;
  EXPECT_EQ(python_check(json, R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
objs = {o['name']: o for o in doc['objects']}
units = objs['units']['state']
assert units['holders'] == [{'pid': )" +
                                   std::to_string(holder.pid()) + R"(, 'tid': units['holders'][0]['tid'],
                             'units': 2, 'alive': True}], units
assert objs['ready']['state']['waiters'] == 1, objs['ready']
assert objs['start']['state']['arrived'] == 1 and not objs['start']['state']['broken'], objs['start']
assert objs['aborted']['state']['broken_reason'] == 'aborted', objs['aborted']
assert '9 parties arrived of 2' in objs['odd']['state']['corrupt'], objs['odd']
assert 'corrupt' not in objs['start']['state'], objs['start']
assert 'mangled' in objs['mangled']['error'] and 'state' not in objs['mangled'], objs['mangled']
)"),
            "")
      << json;

  // One object asked for by name: its error is the command's.
  const auto one = run_cli_argv({"inspect", n.name, "mangled"});
  EXPECT_EQ(one.status, 1);
  EXPECT_TRUE(has(one.err, "ipckit: queue 'mangled'")) << one.err;
  start.abort();
  {
    std::lock_guard g(ready);
    ready.notify();
  }
  EXPECT_EQ(party.wait_exit(), 0);
  EXPECT_EQ(holder.wait_exit(), 0);
}

namespace {

// A task that runs until released: the pool's worker is busy while the CLI looks.
int cli_held_task(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

// A private segment directory for the test (IPCKIT_SHM_DIR), so that gc sees
// only this test's segments; children forked afterwards inherit it.
struct PrivateShmDir {
  std::string path;
  PrivateShmDir() {
    char tmpl[] = "/dev/shm/ipckit_cli_gtest.XXXXXX";
    path = ::mkdtemp(tmpl);
    ::setenv("IPCKIT_SHM_DIR", path.c_str(), 1);
  }
  ~PrivateShmDir() {
    ::unsetenv("IPCKIT_SHM_DIR");
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  [[nodiscard]] bool has(const std::string& seg) const { return std::filesystem::exists(path + "/ipckit." + seg); }
};

// A child that makes (or opens) segment `name`, signals `ready`, then keeps it mapped until killed.
Child mapper(const std::string& name, int ready_fd, bool create) {
  return Child([=] {
    auto seg = create ? Segment::create(name, 1 << 16) : Segment::open(name);
    (void)::write(ready_fd, "r", 1);
    for (;;) ::pause();
  });
}

void wait_ready(int fd) {
  char c = 0;
  ASSERT_EQ(::read(fd, &c, 1), 1);
}

}  // namespace

IPCKIT_TASK(cli_held_task);

TEST(Cli, InspectOfANamedPoolShowsItsWorkersClientsAndTasks) {
  const std::string pool = unique_name("clipool");
  const std::string seg = "ipckit.pool." + pool;
  Child worker([pool] { ipckit::serve_pool(pool); });
  {
    ProcessPool client = ProcessPool::connect(pool);
    auto busy = client.submit(cli_held_task, 3000);
    auto queued = client.submit(cli_held_task, 1);
    // The worker takes the first task and runs it for 3 s; the second waits.
    ASSERT_TRUE(eventually([&] { return client.stats().running == 1; }));
    const auto text = run_cli_argv({"inspect", seg});
    EXPECT_EQ(text.status, 0) << text.err;
    EXPECT_TRUE(has(text.out, "pool: 1/")) << text.out;
    EXPECT_TRUE(has(text.out, "1 running")) << text.out;
    EXPECT_TRUE(has(text.out, "WORKER  PID")) << text.out;
    const auto json = run_cli_argv({"inspect", "--json", seg});
    ASSERT_EQ(json.status, 0) << json.err;
    EXPECT_EQ(python_check(json.out, R"(
import json, sys
p = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))['pool']
assert p['workers_alive'] == 1 and p['clients_alive'] == 1, p
assert p['running'] == 1 and p['submitted'] == 2 and p['succeeded'] == 0, p
w = p['workers'][0]
assert w['pid'] == )" + std::to_string(worker.pid()) +
                                         R"( and w['task'] is not None and w['running_seconds'] >= 0, w
)"),
              "");
    EXPECT_EQ(busy.get(), 3000);
    EXPECT_EQ(queued.get(), 1);
    const auto after = run_cli_argv({"inspect", "--json", seg});
    EXPECT_EQ(python_check(after.out, R"(
import json, sys
p = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))['pool']
assert p['succeeded'] == 2 and p['running'] == 0 and p['pending'] == 0, p
assert p['workers'][0]['task'] is None and p['workers'][0]['tasks_done'] == 2, p
)"),
              "");
  }
  ipckit::close_pool(pool);
  EXPECT_EQ(worker.wait_exit(), 0);
  // A segment that is not a pool's has no "pool" entry.
  ScopedSegmentName plain("clinopool");
  Segment::create(plain.name, 1 << 16);
  EXPECT_FALSE(has(run_cli_argv({"inspect", "--json", plain.name}).out, "\"pool\""));
}

TEST(Cli, GcSparesMappedAndYoungSegmentsEvenWithAStoppedMapperAndRemovesStaleOnes) {
  PrivateShmDir dir;
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  // "mapped": its creator is gone, but a stopped process maps it.
  Child([] { Segment::create("mapped", 1 << 16); }).wait_exit();
  Child holder = mapper("mapped", p[1], false);
  wait_ready(p[0]);
  holder.kill(SIGSTOP);
  // "owned": its creator lives (and maps it). "stale": nobody.
  Child creator = mapper("owned", p[1], true);
  wait_ready(p[0]);
  Child([] { Segment::create("stale", 1 << 16); }).wait_exit();
  std::this_thread::sleep_for(2100ms);  // the grace below is 2 s: "stale" is older; "young" will not be
  Child([] { Segment::create("young", 1 << 16); }).wait_exit();

  const auto dry = run_cli_argv({"gc", "--dry-run", "--grace", "2"});
  EXPECT_EQ(dry.status, 0) << dry.err;
  EXPECT_TRUE(a_line_starts_with(dry.out, "remove  stale")) << dry.out;
  EXPECT_TRUE(dir.has("stale"));

  const auto gc = run_cli_argv({"gc", "--json", "--grace", "2"});
  EXPECT_EQ(gc.status, 0) << gc.err;
  EXPECT_EQ(python_check(gc.out, R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
d = {s['name']: s for s in doc['segments']}
assert d['mapped']['action'] == 'keep' and d['mapped']['mapped_by'] == [)" +
                                     std::to_string(holder.pid()) +
                                     R"(], d['mapped']
assert d['owned']['action'] == 'keep' and d['owned']['creator_alive'], d['owned']
assert d['young']['action'] == 'keep' and 'too young' in d['young']['reason'], d['young']
assert d['stale']['action'] == 'removed' and not d['stale']['creator_alive'], d['stale']
)"),
            "");
  EXPECT_TRUE(dir.has("mapped") && dir.has("owned") && dir.has("young"));
  EXPECT_FALSE(dir.has("stale"));
  holder.kill(SIGKILL);
  creator.kill(SIGKILL);
  holder.wait_exit();
  creator.wait_exit();
  ::close(p[0]), ::close(p[1]);
}

TEST(Cli, PutAndGetMeetAnotherProcessAndRefuseAQueueOfAnotherType) {
  ScopedSegmentName n("cliqio");
  auto seg = Segment::create(n.name, 1 << 20);
  auto jobs = seg.queue<std::string>("jobs", {.capacity_bytes = 4096});
  auto ints = seg.queue<int>("ints", {.capacity_bytes = 4096});
  // Another process takes what the CLI puts.
  Child reader([&] {
    auto q = Segment::open(n.name).queue<std::string>("jobs", {.capacity_bytes = 4096});
    EXPECT_EQ(q.get(20s), "from the shell");
    q.put("line\nbreak\x1b[2J");
  });
  EXPECT_EQ(run_cli_argv({"put", n.name, "jobs", "from the shell"}).status, 0);
  const auto got = run_cli_argv({"get", n.name, "jobs", "--timeout", "20"});
  EXPECT_EQ(got.status, 0) << got.err;
  EXPECT_EQ(got.out, "line\\nbreak\\x1b[2J\n");
  EXPECT_EQ(reader.wait_exit(), 0);
  const auto refused = run_cli_argv({"put", n.name, "ints", "5"});
  EXPECT_EQ(refused.status, 1);
  EXPECT_TRUE(has(refused.err, "'ints'") && has(refused.err, "int")) << refused.err;
  EXPECT_EQ(ints.qsize(), 0u);
  EXPECT_EQ(run_cli_argv({"get", n.name, "jobs", "--timeout", "0.1"}).status, 3);
}

TEST(Cli, WatchInAPipePrintsPlainSnapshotsWithQueueRates) {
  ScopedSegmentName n("cliwatch");
  auto seg = Segment::create(n.name, 1 << 20);
  auto jobs = seg.byte_queue("jobs", {.capacity_bytes = 1 << 16});
  Child filler([&] {
    auto q = Segment::open(n.name).byte_queue("jobs", {.capacity_bytes = 1 << 16});
    for (int i = 0; i < 200; ++i) {
      q.put("x");
      std::this_thread::sleep_for(5ms);
    }
  });
  const auto w = run_cli_argv({"watch", n.name, "--count", "3", "--interval", "0.2"});
  EXPECT_EQ(w.status, 0) << w.err;
  EXPECT_EQ(count_lines_starting_with(w.out, "segment '" + n.name + "'"), 3u) << w.out;
  EXPECT_EQ(count_lines_starting_with(w.out, "QUEUE  DEPTH  RATE"), 3u) << w.out;
  EXPECT_EQ(w.out.find('\x1b'), std::string::npos) << w.out;
  EXPECT_EQ(python_check(w.out, kCleanText), "");
  filler.wait_exit();
}

namespace {

// A child that opens segment `name` (so it is listed in its table), posts
// `ready`, then waits to be killed.
Child attached_child(const std::string& name, const Signal& ready) {
  return Child([name, &ready] {
    auto seg = Segment::open(name);
    ready.post();
    for (;;) ::pause();
  });
}

}  // namespace

TEST(Cli, DoctorNamesBothPidsAndLocksOfARealTwoProcessDeadlock) {
  ScopedSegmentName n("clidl");
  auto seg = Segment::create(n.name, 1 << 20);  // deadlock detection off (the default): the cycle hangs
  (void)seg.lock("A");
  (void)seg.lock("B");
  (void)seg.barrier("both", 2);
  // Each takes its first lock, meets the other at the barrier (so both hold
  // one), then asks for the other's: a cycle that never resolves.
  auto crosser = [name = n.name](const char* first, const char* second) {
    return [name, first, second] {
      auto s = Segment::open(name);
      auto mine = s.lock(first);
      auto theirs = s.lock(second);
      mine.lock();
      s.barrier("both", 2).wait();
      theirs.lock();
    };
  };
  Child one(crosser("A", "B"));
  Child two(crosser("B", "A"));
  ASSERT_TRUE(eventually([&] { return !seg.deadlocks().empty(); }, 20s));

  const auto text = run_cli_argv({"doctor", n.name});
  EXPECT_EQ(text.status, 5) << text.out << text.err;
  const std::string p1 = std::to_string(one.pid()), p2 = std::to_string(two.pid());
  EXPECT_EQ(count_lines_with(text.out, "deadlock: "), 1u) << text.out;
  EXPECT_TRUE(has(text.out, "pid " + p1) && has(text.out, "pid " + p2)) << text.out;
  EXPECT_TRUE(has(text.out, "lock 'A'") && has(text.out, "lock 'B'")) << text.out;
  EXPECT_TRUE(has(text.out, "fix: kill one of pids ") && has(text.out, "deadlock_detection")) << text.out;
  EXPECT_EQ(python_check(text.out, kCleanText), "");

  const auto json = run_cli_argv({"doctor", "--json", n.name});
  EXPECT_EQ(json.status, 5);
  EXPECT_EQ(python_check(json.out, R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
dl = [f for f in doc['findings'] if f['check'] == 'deadlock']
assert len(dl) == 1, doc
f = dl[0]
assert f['segment'] == ')" + n.name + R"(' and f['object'] is None and f['fix'], f
assert sorted(f['pids']) == sorted([)" +
                                       p1 + "," + p2 + R"(]), f
assert len(f['cycle']) == 2, f
assert {m['holds'] for m in f['cycle']} == {"lock 'A'", "lock 'B'"}, f
assert {m['waits_for'] for m in f['cycle']} == {"lock 'A'", "lock 'B'"}, f
assert {m['pid'] for m in f['cycle']} == {)" +
                                       p1 + "," + p2 + R"(}, f
)"),
            "");
  one.kill();
  two.kill();
  EXPECT_EQ(one.wait_exit(), -SIGKILL);
  EXPECT_EQ(two.wait_exit(), -SIGKILL);
}

TEST(Cli, DoctorReportsTheSlotOfAKilledProcessAndLsCountsOnlyLiveOnes) {
  PrivateShmDir dir;
  ipckit::SegmentOptions options;
  options.deadlock_detection = true;
  auto seg = Segment::create("slots", 1 << 16, options);
  Signal ready;
  Child child = attached_child("slots", ready);
  ASSERT_TRUE(ready.wait());
  const std::string pid = std::to_string(child.pid());

  // While it lives: nothing wrong, two processes attached (this one and the child).
  const auto healthy = run_cli_argv({"doctor", "slots"});
  EXPECT_EQ(healthy.status, 0) << healthy.out;
  const std::string ls_check = R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
s = {x['name']: x for x in doc['segments']}['slots']
assert s['processes'] == PROCS and s['max_processes'] == 32 and s['deadlock_detection'] is True, s
)";
  auto with = [&](std::string script, const std::string& procs) {
    return script.replace(script.find("PROCS"), 5, procs);
  };
  EXPECT_EQ(python_check(run_cli_argv({"ls", "--json"}).out, with(ls_check, "2")), "");
  const auto ls = run_cli_argv({"ls"});
  EXPECT_TRUE(a_line_starts_with(ls.out, "NAME   SIZE    USED    OBJECTS  PROCESSES")) << ls.out;
  const auto inspect = run_cli_argv({"inspect", "slots"});
  EXPECT_TRUE(has(inspect.out, "\n2 process(es) attached (32 table slots), deadlock detection on\n")) << inspect.out;
  EXPECT_EQ(python_check(run_cli_argv({"inspect", "--json", "slots"}).out, R"(
import json, sys
s = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))['segment']
assert s['deadlock_detection'] is True and s['processes'] == 2 and s['max_processes'] == 32, s
)"),
            "");

  child.kill();
  EXPECT_EQ(child.wait_exit(), -SIGKILL);
  // Its name, as anyone may plant it, stays one escaped line.
  RawSegment(std::string("slots"), dir.path).plant_process_name(child.pid(), "w\n\x1b[2Jx\xff");
  const auto text = run_cli_argv({"doctor", "slots"});
  EXPECT_EQ(text.status, 5) << text.out;
  EXPECT_TRUE(has(text.out, "pid " + pid + " (w\\n\\x1b[2Jx\\xff) died while attached")) << text.out;
  EXPECT_EQ(python_check(text.out, kCleanText), "");
  EXPECT_TRUE(has(text.out, "fix: harmless: reclaimed by the next process that attaches")) << text.out;
  const auto json = run_cli_argv({"doctor", "--json", "slots"});
  EXPECT_EQ(json.status, 5);
  EXPECT_EQ(python_check(json.out, R"(
import json, sys
doc = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
assert [(f['check'], f['pids']) for f in doc['findings']] == [('stale_slot', [)" +
                                       pid + R"(])], doc
)"),
            "");
  EXPECT_EQ(python_check(run_cli_argv({"ls", "--json"}).out, with(ls_check, "1")), "");
}

TEST(Cli, WatchShowsEachProcessStateAndWhatItIsBlockedOn) {
  ScopedSegmentName n("cliwatchps");
  auto seg = Segment::create(n.name, 1 << 20);
  auto a = seg.lock("A");
  a.lock();
  Child waiter([name = n.name] {
    auto s = Segment::open(name);
    auto l = s.lock("A");
    l.lock();
    l.unlock();
  });
  const auto blocked = [&] {
    for (const auto& p : seg.processes())
      if (p.pid == waiter.pid() && !p.waits.empty()) return true;
    return false;
  };
  ASSERT_TRUE(eventually(blocked, 10s));
  const std::string pid = std::to_string(waiter.pid());

  const auto text = run_cli_argv({"watch", n.name, "--count", "1"});
  EXPECT_EQ(text.status, 0) << text.err;
  EXPECT_TRUE(a_line_starts_with(text.out, "PID ")) << text.out;
  std::string row;
  std::istringstream lines(text.out);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(pid + " ", 0) == 0) row = line;
  EXPECT_TRUE(has(row, "blocked") && has(row, "lock 'A'")) << text.out;
  EXPECT_TRUE(a_line_starts_with(text.out, std::to_string(::getpid()) + " ")) << text.out;

  const auto json = run_cli_argv({"watch", n.name, "--count", "1", "--json"});
  EXPECT_EQ(json.status, 0) << json.err;
  EXPECT_EQ(python_check(json.out, R"(
import json, sys
lines = [l for l in open(sys.argv[1], 'rb').read().decode('utf-8').splitlines() if l.strip()]
assert len(lines) == 1, lines
procs = {p['pid']: p for p in json.loads(lines[0])['processes']}
w = procs[)" + pid + R"(]
assert w['state'] == 'blocked' and w['alive'], w
assert [(b['operation'], b['object']) for b in w['blocked_on']] == [('lock', 'A')], w
me = procs[)" + std::to_string(::getpid()) +
                                       R"(]
assert [h['object'] for h in me['holds']] == ['A'], me
)"),
            "");
  a.unlock();
  EXPECT_EQ(waiter.wait_exit(), 0);
}

TEST(Cli, GcSparesASegmentWithALiveProcessInItsTableAndRemovesOneWhoseListedProcessesAreDead) {
  PrivateShmDir dir;
  Signal ready;
  // "used": its creator is gone; its only user is a live child that has it open.
  Child([] { Segment::create("used", 1 << 16); }).wait_exit();
  Child user = attached_child("used", ready);
  ASSERT_TRUE(ready.wait());
  // "dead": its creator is gone, and so is every process its table lists.
  Child([] { Segment::create("dead", 1 << 16); }).wait_exit();
  Child victim = attached_child("dead", ready);
  ASSERT_TRUE(ready.wait());
  victim.kill();
  EXPECT_EQ(victim.wait_exit(), -SIGKILL);
  ipckit::OpenOptions look;  // look-only: this process stays out of the table
  look.any_owner = true;
  {
    const auto listed = Segment::open("dead", look).processes();
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_FALSE(listed[0].alive);
  }
  const std::string user_pid = std::to_string(user.pid());

  // Whether the maps of every process can be read or not, the table alone says "used" is in use.
  const auto dry = run_cli_argv({"gc", "--dry-run", "--json", "--grace", "0"});
  EXPECT_EQ(dry.status, 0) << dry.err;
  EXPECT_EQ(python_check(dry.out, R"(
import json, sys
d = {s['name']: s for s in json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))['segments']}
assert d['used']['action'] == 'keep' and d['used']['attached'] == [)" +
                                      user_pid +
                                      R"(], d['used']
assert d['used']['reason'].startswith('in use: pid )" +
                                      user_pid + R"( attached'), d['used']
assert d['dead']['attached'] == [], d['dead']
)"),
            "");
  const auto gc = run_cli_argv({"gc", "--json", "--grace", "0"});
  EXPECT_EQ(gc.status, 0) << gc.err;
  EXPECT_EQ(python_check(gc.out, R"(
import json, sys
d = {s['name']: s for s in json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))['segments']}
assert d['used']['action'] == 'keep' and d['used']['attached'] == [)" +
                                     user_pid +
                                     R"(], d['used']
assert d['dead']['action'] == 'removed' and d['dead']['attached'] == [], d['dead']
)"),
            "");
  EXPECT_TRUE(dir.has("used"));
  EXPECT_FALSE(dir.has("dead"));
  user.kill();
  EXPECT_EQ(user.wait_exit(), -SIGKILL);
}

// The lease: a process that has the segment open but is in no table (its
// table was full) still keeps gc away, whatever /proc says; once it dies
// the segment goes.
TEST(Cli, GcSparesASegmentAnUnlistedProcessHasOpenAndRemovesItOnceThatProcessDies) {
  PrivateShmDir dir;
  Signal ready;
  Child([] {
    ipckit::SegmentOptions o;
    o.max_processes = 1;
    Segment::create("leased", 1 << 16, o);
  }).wait_exit();
  Child listed = attached_child("leased", ready);  // takes the dead creator's slot
  ASSERT_TRUE(ready.wait());
  Child unlisted = attached_child("leased", ready);  // the table is full: not listed
  ASSERT_TRUE(ready.wait());
  listed.kill();
  EXPECT_EQ(listed.wait_exit(), -SIGKILL);
  ipckit::OpenOptions look;
  look.any_owner = true;
  for (const auto& p : Segment::open("leased", look).processes()) EXPECT_NE(p.pid, unlisted.pid());

  const auto kept = run_cli_argv({"gc", "--json", "--grace", "0"});
  EXPECT_EQ(kept.status, 0) << kept.err;
  EXPECT_EQ(python_check(kept.out, R"(
import json, sys
d = {s['name']: s for s in json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))['segments']}
assert d['leased']['action'] == 'keep' and d['leased']['attached'] == [], d['leased']
assert 'open' in d['leased']['reason'] or 'mapped' in d['leased']['reason'], d['leased']
)"),
            "");
  EXPECT_TRUE(dir.has("leased"));
  unlisted.kill();
  EXPECT_EQ(unlisted.wait_exit(), -SIGKILL);
  const auto gone = run_cli_argv({"gc", "--grace", "0"});
  EXPECT_EQ(gone.status, 0) << gone.err;
  EXPECT_FALSE(dir.has("leased")) << gone.out;
}
