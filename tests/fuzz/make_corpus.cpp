// fuzz_make_corpus — writes the committed seed corpus of the fuzz targets.
//
//   build-fuzz/tests/fuzz/fuzz_make_corpus tests/fuzz/corpus
//
// corpus/fuzz_open_segment/*.seg: small segment images made through the API
// (every kind of object, items queued, a lock, a tracked semaphore unit, a
// joinable task and a barrier party left behind by a process that died).
// corpus/fuzz_live_corruption/*.script: scripts in live_script.hpp's
// language — every action once, and the stray writes that broke ipckit
// before (a queue's capacity, the header's offsets and counts, lock words),
// kept as regression seeds.
// Re-run it after a layout change; the images are deterministic except for
// pids, thread ids and times.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "decode_item.hpp"
#include "exercise.hpp"
#include "ipckit/ipckit.hpp"
#include "live_script.hpp"
#include "segment_layout.hpp"

namespace {

using namespace ipckit;
namespace live = ipckit::fuzz::live;

void write_file(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz_make_corpus: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

std::vector<unsigned char> read_segment(const std::string& name) {
  std::ifstream in(ipckit::fuzz::segment_path(name), std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `f` in a child process that then dies (_exit, no cleanup).
template <class F>
void in_dying_child(F&& f) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    f();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
}

// Makes a segment with `fill`, writes its image to `path`, removes it.
template <class F>
void image(const std::string& path, std::size_t size, std::uint32_t max_objects, F&& fill) {
  const std::string name = "fuzz.corpus." + std::to_string(::getpid());
  Segment::remove(name);
  {
    Segment seg = Segment::create(name, size, {.mode = 0600, .max_objects = max_objects});
    fill(seg);
  }
  write_file(path, read_segment(name));
  Segment::remove(name);
}

void open_segment_corpus(const std::string& dir) {
  image(dir + "/empty.seg", Segment::min_size(4), 4, [](Segment&) {});

  image(dir + "/values.seg", 16 * 1024, 12, [](Segment& seg) {
    seg.value<std::int64_t>("i64", -5);
    seg.value<double>("double", 2.5);
    seg.value<std::int32_t>("i32", 7);
    seg.value<fuzz::Blob>("blob");
    auto a = seg.array<std::int32_t>("i32s", 8);
    a[3] = 3;
    seg.array<std::int64_t>("i64s", 4);
    seg.array<std::uint8_t>("bytes", 33);
    seg.array<double>("doubles", 2);
    auto held = seg.value<std::int64_t>("held_by_dead");
    in_dying_child([&] { held.get_lock().lock(); });
  });

  image(dir + "/sync.seg", 48 * 1024, 20, [](Segment& seg) {
    auto lock = seg.lock("lock");
    auto rlock = seg.rlock("rlock");
    seg.condition("cond");
    seg.condition("cond_on_lock", lock);
    seg.condition("cond_on_rlock", rlock);
    seg.semaphore("sem", 3);
    seg.bounded_semaphore("bounded", 2);
    auto tracked = seg.semaphore("tracked", 2, {.track_holders = true});
    seg.event("event").set();
    seg.event("event_clear");
    seg.barrier("solo", 1);
    auto trio = seg.barrier("trio", 3);
    try {
      (void)trio.wait(std::chrono::milliseconds(1));  // breaks it
    } catch (const BrokenBarrier&) {
    }
    auto pair = seg.barrier("pair", 2);
    auto dead_lock = seg.lock("held_by_dead");
    in_dying_child([&] {
      dead_lock.lock();
      (void)tracked.acquire(std::chrono::milliseconds(10));
      try {
        (void)pair.wait(std::chrono::milliseconds(1));  // a party that then died
      } catch (const BrokenBarrier&) {
      }
    });
    pair.reset();
  });

  image(dir + "/queues.seg", 64 * 1024, 12, [](Segment& seg) {
    auto q = seg.queue<std::string>("strings", {.capacity_bytes = 1024, .max_message = 200});
    // Wrap the ring once so that a skip marker is in it.
    for (int i = 0; i < 12; ++i) q.put(std::string(60, static_cast<char>('a' + i)));
    for (int i = 0; i < 10; ++i) (void)q.get();
    for (int i = 0; i < 6; ++i) q.put(std::string(i * 9, 'z'));
    auto n = seg.queue<std::int64_t>("numbers", {.capacity_bytes = 512, .max_items = 10});
    for (int i = 0; i < 5; ++i) n.put(i);
    auto b = seg.byte_queue("bytes", {.capacity_bytes = 256});
    b.put("raw bytes");
    b.put("");
    auto j = seg.joinable_queue<std::string>("jobs", {.capacity_bytes = 1024});
    for (int i = 0; i < 4; ++i) j.put("job " + std::to_string(i));
    (void)j.get();
    j.task_done();
    in_dying_child([&] { (void)j.get(); });  // a task abandoned by a dead consumer
    auto ji = seg.joinable_queue<std::int64_t>("jobs64", {.capacity_bytes = 256});
    ji.put(1);
    auto p = seg.priority_queue<std::string>("urgent", {.capacity_bytes = 2048, .max_items = 8, .max_message = 64});
    p.put(3, "c");
    p.put(-1, "a");
    p.put(2, std::string(50, 'b'));
    auto pi = seg.priority_queue<std::int64_t>("prio64", {.capacity_bytes = 512, .max_message = 8});
    pi.put(1, 10);
    auto closed = seg.queue<std::string>("closed", {.capacity_bytes = 128});
    closed.put("left");
    closed.close();
  });

  image(dir + "/slot_queues.seg", 32 * 1024, 6, [](Segment& seg) {
    auto stack = seg.lifo_queue<std::string>("stack", {.capacity_bytes = 1024, .max_items = 6, .max_message = 64});
    for (int i = 0; i < 4; ++i) stack.put("edit " + std::to_string(i));
    (void)stack.get();
    auto jp = seg.joinable_priority_queue<std::int64_t>("jprio", {.capacity_bytes = 512, .max_message = 8});
    for (int i = 0; i < 4; ++i) jp.put(3 - i, i);
    (void)jp.get();
    jp.task_done();
    in_dying_child([&] { (void)jp.get(); });  // a task abandoned by a dead consumer
  });
}

// ---------------------------------------------------------------------------
// Scripts for fuzz_live_corruption

class Script {
 public:
  Script& act(live::Action a, std::uint8_t arg = 0) {
    b_.push_back(static_cast<std::uint8_t>(int{live::FirstAction} + int{a}));
    b_.push_back(arg);
    return *this;
  }
  Script& poke(live::Object o, std::uint16_t offset, std::uint64_t value, bool wide) {
    b_.push_back(live::ObjectPoke);
    b_.push_back(o);
    u16(offset);
    b_.push_back(value_index(value));
    b_.push_back(wide ? 1 : 0);
    return *this;
  }
  Script& poke_own_tid(live::Object o, std::uint16_t offset) {
    b_.push_back(live::ObjectPoke);
    b_.push_back(o);
    u16(offset);
    b_.push_back(static_cast<std::uint8_t>(live::kPokeOwnTid));
    b_.push_back(0);
    return *this;
  }
  Script& header(std::size_t offset, std::uint64_t value, bool wide) {
    b_.push_back(live::HeaderPoke);
    b_.push_back(static_cast<std::uint8_t>(offset / 4));
    b_.push_back(value_index(value));
    b_.push_back(wide ? 1 : 0);
    return *this;
  }
  Script& write(live::Object o, std::uint16_t offset, const std::vector<std::uint8_t>& bytes) {
    b_.push_back(live::ObjectWrite);
    b_.push_back(o);
    u16(offset);
    b_.push_back(static_cast<std::uint8_t>(bytes.size() - 1));
    b_.insert(b_.end(), bytes.begin(), bytes.end());
    return *this;
  }
  [[nodiscard]] const std::vector<std::uint8_t>& bytes() const { return b_; }

 private:
  void u16(std::uint16_t v) {
    b_.push_back(static_cast<std::uint8_t>(v & 0xff));
    b_.push_back(static_cast<std::uint8_t>(v >> 8));
  }
  static std::uint8_t value_index(std::uint64_t v) {
    for (std::size_t i = 0; i < live::kPokeValueCount; ++i)
      if (live::kPokeValues[i] == v) return static_cast<std::uint8_t>(i);
    std::fprintf(stderr, "fuzz_make_corpus: %llu is not in kPokeValues\n", static_cast<unsigned long long>(v));
    std::exit(1);
  }
  std::vector<std::uint8_t> b_;
};

#define FIELD(Type, field) static_cast<std::uint16_t>(offsetof(Type, field))

void live_corruption_corpus(const std::string& dir) {
  using namespace live;
  using detail::PriorityQueueState;
  using detail::QueueState;
  using detail::SegmentHeader;

  Script every;
  for (int a = 0; a < kActionCount; ++a) every.act(static_cast<Action>(a), static_cast<std::uint8_t>(0x11 * (a % 7)));
  write_file(dir + "/every_action.script", every.bytes());

  Script held;  // fields changed under a held lock, semaphore units, queued items
  held.act(LockTake)
      .act(RLockTake)
      .act(SemTake)
      .act(TrackedTake)
      .act(QueuePut, 20)
      .act(QueuePut, 40)
      .poke(TheLock, 0, 0, false)
      .act(BoundCondWait)
      .act(LockRelease)
      .poke(Sem, 0, 0xffffffff, false)
      .act(SemTake)
      .act(SemRelease, 0xff)
      .poke(TrackedSem, 0, 0, false)
      .act(TrackedRelease)
      .act(RLockRelease)
      .act(RLockRelease)
      .act(QueueGetMany, 7)
      .act(JoinableCycle, 5)
      .act(PriorityCycle, 9);
  write_file(dir + "/held_then_changed.script", held.bytes());

  Script own;  // lock words naming this very thread
  own.poke_own_tid(TheLock, 0)
      .act(LockTake)
      .act(LockRelease)
      .act(LockRelease)
      .poke_own_tid(TheRLock, 0)
      .act(RLockTake)
      .act(RLockRelease)
      .poke_own_tid(Cond, 0)
      .act(CondWait)
      .poke_own_tid(BlobValue, 0)
      .act(BlobRW, 3);
  write_file(dir + "/own_tid.script", own.bytes());

  Script pid1;  // lock words naming a process that never dies (pid 1)
  pid1.poke(TheLock, 0, 1, false)
      .act(LockTake)
      .act(BoundCondWait)
      .poke(TheQueue, FIELD(QueueState, put.lock), 1, false)
      .act(QueuePut, 3)
      .poke(TheQueue, FIELD(QueueState, get.lock), 1, false)
      .act(QueueGet)
      .poke(Barrier2, 0, 1, false)
      .act(BarrierPair);
  write_file(dir + "/held_by_pid1.script", pid1.bytes());

  // Regression seeds: stray writes that made ipckit write outside its objects.
  Script capacity;
  capacity.poke(TheQueue, FIELD(QueueState, capacity), std::uint64_t{1} << 27, true)
      .poke(TheQueue, FIELD(QueueState, put.pos), 0xffff, true)
      .act(QueuePut, 60)
      .act(QueuePutMany, 4)
      .act(QueueGet)
      .act(QueueGetMany, 8);
  write_file(dir + "/queue_capacity.script", capacity.bytes());

  Script odd_capacity;
  odd_capacity.poke(TheQueue, FIELD(QueueState, capacity), 0xffff, true)
      .act(QueuePutMany, 4)
      .poke(Bytes, FIELD(QueueState, max_message), 0xffff, true)
      .act(BytesCycle, 99);
  write_file(dir + "/queue_geometry.script", odd_capacity.bytes());

  Script dir_offset;
  dir_offset.header(offsetof(SegmentHeader, directory_offset), kSegmentSize - 64, true).act(CreateObjects).act(Reopen);
  write_file(dir + "/header_directory_offset.script", dir_offset.bytes());

  Script heap_top;
  heap_top.header(offsetof(SegmentHeader, heap_top), 0xffffffffffffffffULL, true).act(CreateObjects).act(Reopen);
  write_file(dir + "/header_heap_top.script", heap_top.bytes());

  Script max_objects;  // new directory entries must not land on live objects
  max_objects.header(offsetof(SegmentHeader, max_objects), 0xffff, false)
      .act(CreateObjects)
      .act(CreateObjects)
      .act(CreateObjects)
      .act(SemTake)
      .act(Reopen);
  write_file(dir + "/header_max_objects.script", max_objects.bytes());

  Script count;
  count.header(offsetof(SegmentHeader, object_count), 0xff, false).act(CreateObjects).act(Reopen).act(Inspect);
  write_file(dir + "/header_object_count.script", count.bytes());

  Script dir_lock;  // the directory lock held by a process that never lets go
  dir_lock.header(offsetof(SegmentHeader, directory_lock), 1, false).act(CreateObjects).act(Reopen);
  write_file(dir + "/directory_lock_pid1.script", dir_lock.bytes());

  Script record;  // a record header that lies about its length
  record.write(TheQueue, sizeof(QueueState), {0xf0, 0xff, 0xff, 0x7f})
      .act(QueueGet)
      .act(QueueGetMany, 3)
      .write(Joinable, sizeof(QueueState), {0xff, 0xff, 0xff, 0xff})
      .act(JoinableCycle, 1);
  write_file(dir + "/ring_record.script", record.bytes());

  Script prio;  // the priority queue copies its geometry: these must be harmless
  prio.poke(Priority, FIELD(PriorityQueueState, slot_count), std::uint64_t{1} << 40, true)
      .poke(Priority, FIELD(PriorityQueueState, heap_size), 0xffff, true)
      .act(PriorityCycle, 4)
      .act(PriorityCycle, 200);
  write_file(dir + "/priority_geometry.script", prio.bytes());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR   (e.g. tests/fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  for (const char* sub : {"", "/fuzz_open_segment", "/fuzz_live_corruption", "/fuzz_decode"})
    ::mkdir((root + sub).c_str(), 0755);
  try {
    open_segment_corpus(root + "/fuzz_open_segment");
    live_corruption_corpus(root + "/fuzz_live_corruption");
    const std::vector<std::string> records = fuzz_decode::seeds();
    for (std::size_t i = 0; i < records.size(); ++i)
      write_file(root + "/fuzz_decode/item" + std::to_string(i) + ".bin",
                 std::vector<unsigned char>(records[i].begin(), records[i].end()));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_make_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
