// fuzz_live_corruption — bytes of a segment rewritten while it is in use.
//
// Each input creates a fresh 64 KiB segment holding one object of every kind
// (live_script.hpp lists them), opens a handle to each, maps the segment file
// a second time, and runs the input as a script (format: live_script.hpp):
// stray writes through the second mapping, interleaved with calls on the
// open handles. Fields change under handles that trusted them at open.
//
// Findings: a crash, a sanitizer report, a hang (libFuzzer -timeout), an
// exception other than ipckit::Error, or a broken promise:
//  - the canary: a Value that no script write touched must keep its value
//    (the directory, new objects and queues must never spill into it). Once
//    a write lands in the directory or the canary itself, it is not checked:
//    a forged directory entry can legitimately alias it.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "exercise.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"
#include "live_script.hpp"
#include "segment_layout.hpp"

namespace {

using namespace ipckit;
using namespace ipckit::fuzz;
using namespace ipckit::fuzz::live;

constexpr std::int64_t kCanaryValue = 0x0123456789abcdefLL;
constexpr int kMaxReopens = 3;
constexpr int kMaxCreates = 8;

const char* const kNames[kObjectCount] = {
    "canary",  "counter", "blob",  "ints",     "lock",     "rlock", "cond",  "bound_cond", "sem",
    "bounded", "tracked", "event", "barrier1", "barrier2", "queue", "bytes", "joinable",   "priority",
};

constexpr QueueOptions kQueueOptions{.capacity_bytes = 4096, .max_items = 0, .max_message = 256};
constexpr QueueOptions kBytesOptions{.capacity_bytes = 1024, .max_items = 8, .max_message = 128};
constexpr QueueOptions kJoinableOptions{.capacity_bytes = 2048, .max_items = 0, .max_message = 0};
constexpr QueueOptions kPriorityOptions{.capacity_bytes = 2048, .max_items = 16, .max_message = 48};

[[noreturn]] void harness_broken(const std::string& what) {
  std::fprintf(stderr, "fuzz_live_corruption: harness setup failed: %s\n", what.c_str());
  std::abort();
}

// The handles, opened right after creation, in kNames order.
struct Handles {
  explicit Handles(Segment& s)
      : canary(s.value<std::int64_t>(kNames[Canary], kCanaryValue)),
        counter(s.value<std::int64_t>(kNames[Counter])),
        blob(s.value<Blob>(kNames[BlobValue])),
        ints(s.array<std::int32_t>(kNames[Ints], 16)),
        lock(s.lock(kNames[TheLock])),
        rlock(s.rlock(kNames[TheRLock])),
        cond(s.condition(kNames[Cond])),
        bound_cond(s.condition(kNames[BoundCond], lock)),
        sem(s.semaphore(kNames[Sem], 3)),
        bounded(s.bounded_semaphore(kNames[BoundedSem], 2)),
        tracked(s.semaphore(kNames[TrackedSem], 2, {.track_holders = true})),
        event(s.event(kNames[TheEvent])),
        barrier1(s.barrier(kNames[Barrier1], 1)),
        barrier2(s.barrier(kNames[Barrier2], 2)),
        queue(s.queue<std::string>(kNames[TheQueue], kQueueOptions)),
        bytes(s.byte_queue(kNames[Bytes], kBytesOptions)),
        joinable(s.joinable_queue<std::int64_t>(kNames[Joinable], kJoinableOptions)),
        priority(s.priority_queue<std::string>(kNames[Priority], kPriorityOptions)) {}

  Value<std::int64_t> canary;
  Value<std::int64_t> counter;
  Value<Blob> blob;
  Array<std::int32_t> ints;
  Lock lock;
  RLock rlock;
  Condition cond;
  Condition bound_cond;
  Semaphore sem;
  Semaphore bounded;
  Semaphore tracked;
  Event event;
  Barrier barrier1;
  Barrier barrier2;
  Queue<std::string> queue;
  ByteQueue bytes;
  JoinableQueue<std::int64_t> joinable;
  PriorityQueue<std::string> priority;

  // What this thread holds, so that releases pair with takes.
  bool lock_held = false;
  int sem_units = 0;
  int tracked_units = 0;
  int created = 0;
  int reopened = 0;
};

class Reader {
 public:
  Reader(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
  [[nodiscard]] bool done() const { return i_ >= n_; }
  std::uint8_t u8() { return i_ < n_ ? p_[i_++] : 0; }
  std::uint16_t u16() {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | (u8() << 8));
  }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
  std::size_t i_ = 0;
};

// The second mapping: where the script's stray writes go.
class Scribbler {
 public:
  explicit Scribbler(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) harness_broken("open " + path);
    void* p = ::mmap(nullptr, kSegmentSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) harness_broken("mmap " + path);
    base_ = static_cast<unsigned char*>(p);
  }
  ~Scribbler() { ::munmap(base_, kSegmentSize); }
  Scribbler(const Scribbler&) = delete;
  Scribbler& operator=(const Scribbler&) = delete;

  // Writes what fits of `bytes` at `off`; returns the range written.
  std::pair<std::size_t, std::size_t> write(std::size_t off, const unsigned char* bytes, std::size_t n) {
    off %= kSegmentSize;
    n = std::min(n, kSegmentSize - off);
    std::memcpy(base_ + off, bytes, n);
    return {off, off + n};
  }

 private:
  unsigned char* base_ = nullptr;
};

std::uint64_t poke_value(std::uint8_t index) {
  const std::size_t i = index % kPokeChoices;
  if (i == kPokeOwnTid) return detail::this_thread().tid;
  return kPokeValues[i];
}

template <class F>
void quietly(F&& f) {
  expect_errors(std::forward<F>(f));
}

void act(Action a, Handles& h, Segment& seg, const std::string& name, Reader& in) {
  const std::uint8_t arg = in.u8();
  switch (a) {
    case CounterRW:
      quietly([&] {
        h.counter.set(h.counter.get() + 1);
        std::unique_lock g(h.counter.get_lock(), std::defer_lock);
        if (g.try_lock()) h.counter.set(h.counter.get() + arg);
      });
      break;
    case BlobRW:
      quietly([&] {
        RLock& l = h.blob.get_lock();
        if (!l.try_lock()) l.lock(kShort);
        Blob b = h.blob.get();
        b.bytes[arg % sizeof b.bytes] = static_cast<char>(arg);
        h.blob.set(b);
        l.unlock();
      });
      break;
    case ArrayRW:
      quietly([&] {
        h.ints.at(arg % h.ints.size()) += 1;
        std::unique_lock g(h.ints.get_lock(), std::defer_lock);
        if (g.try_lock()) h.ints[h.ints.size() - 1] = arg;
      });
      break;
    case LockTake:
      quietly([&] {
        if (h.lock_held) return;
        if (h.lock.try_lock()) {
          h.lock_held = true;
        } else {
          h.lock.lock(kShort);
          h.lock_held = true;
        }
        if (h.lock.owner_died()) h.lock.mark_consistent();
      });
      break;
    case LockRelease:
      h.lock_held = false;
      quietly([&] { h.lock.unlock(); });
      (void)h.lock.holder();
      break;
    case RLockTake:
      quietly([&] { h.rlock.lock(kShort); });
      break;
    case RLockRelease:
      quietly([&] { h.rlock.unlock(); });
      (void)h.rlock.depth();
      break;
    case CondWait:
      quietly([&] {
        if (!h.cond.try_lock()) return;
        (void)h.cond.wait_for(std::chrono::nanoseconds(0));
        (void)h.cond.wait_for(kShort);
        h.cond.unlock();
      });
      break;
    case CondNotify:
      h.cond.notify(1 + arg % 3);
      h.bound_cond.notify_all();
      break;
    case BoundCondWait:
      quietly([&] {
        if (h.lock_held) {  // bound to `lock`, which we hold
          (void)h.bound_cond.wait_for(kShort);
          return;
        }
        if (!h.bound_cond.try_lock()) return;
        (void)h.bound_cond.wait_for(std::chrono::nanoseconds(0));
        h.bound_cond.unlock();
      });
      break;
    case SemTake:
      quietly([&] {
        if (h.sem.try_acquire() || h.sem.acquire(kShort)) ++h.sem_units;
      });
      break;
    case SemRelease: {
      const std::uint32_t before = h.sem.value();
      const std::uint32_t n = arg == 0xff ? 0xffffffffu : 1;
      bool threw = false;
      try {
        h.sem.release(n);
        if (h.sem_units > 0) --h.sem_units;
      } catch (const Error&) {
        threw = true;
      }
      // (A stray write may change the count meanwhile only through a poke step, not here.)
      if (!threw && n == 0xffffffffu && before > 0 && h.sem.value() < before && oracles_enabled())
        finding("Semaphore::release(UINT32_MAX) wrapped the count from " + std::to_string(before) + " to " +
                std::to_string(h.sem.value()) + " instead of throwing");
      break;
    }
    case BoundedCycle:
      quietly([&] {
        if (h.bounded.try_acquire()) h.bounded.release();
      });
      quietly([&] { h.bounded.release(1 + arg % 2); });  // above the initial value: TooManyReleases
      break;
    case TrackedTake:
      quietly([&] {
        if (h.tracked.acquire(kShort)) ++h.tracked_units;
      });
      break;
    case TrackedRelease:
      quietly([&] {
        h.tracked.release();
        if (h.tracked_units > 0) --h.tracked_units;
      });
      (void)h.tracked.reclaimed();
      break;
    case EventCycle:
      h.event.set();
      if (!h.event.is_set() && oracles_enabled()) finding("Event::is_set() is false right after set()");
      (void)h.event.wait(std::chrono::nanoseconds(0));
      h.event.clear();
      (void)h.event.wait(kShort);
      break;
    case BarrierSolo:
      quietly([&] { (void)h.barrier1.wait(kShort); });
      quietly([&] { (void)h.barrier1.n_waiting(); });
      break;
    case BarrierPair:
      quietly([&] { (void)h.barrier2.wait(kShort); });  // times out: BrokenBarrier
      // reset() has no timed form: it waits for the barrier's lock like an
      // untimed lock(), so only while no (forged) holder is recorded there.
      quietly([&] {
        const void* body = ipckit::detail::SegmentAccess::object_body(seg, kNames[Barrier2]);
        const auto* b = static_cast<const ipckit::detail::BarrierState*>(body);
        if (b->lock.word.load(std::memory_order_acquire) == 0) h.barrier2.reset();
      });
      break;
    case QueuePut:
      quietly([&] { h.queue.put_nowait(std::string(arg % 64, 'q')); });
      (void)h.queue.qsize();
      (void)h.queue.full();
      break;
    case QueuePutMany:
      quietly([&] {
        const std::vector<std::string> items(1 + arg % 5, std::string(arg % 32, 'm'));
        h.queue.put_many(std::span<const std::string>(items), kShort);
      });
      break;
    case QueueGet:
      quietly([&] { (void)h.queue.get_nowait(); });
      quietly([&] { (void)h.queue.try_get(); });
      break;
    case QueueGetMany:
      quietly([&] { (void)h.queue.get_many(1 + arg % 8, kShort); });
      (void)h.queue.bytes_used();
      break;
    case BytesCycle:
      quietly([&] { h.bytes.put_nowait(std::string(arg % 100, 'b')); });
      quietly([&] { (void)h.bytes.get_nowait(); });
      quietly([&] { (void)h.bytes.get(kShort); });
      break;
    case JoinableCycle:
      quietly([&] { h.joinable.put_nowait(arg); });
      quietly([&] { (void)h.joinable.get_nowait(); });
      quietly([&] { h.joinable.task_done(); });
      quietly([&] { (void)h.joinable.join(std::chrono::nanoseconds(0)); });
      (void)h.joinable.unfinished_tasks();
      (void)h.joinable.abandoned_tasks();
      break;
    case PriorityCycle:
      quietly([&] { h.priority.put_nowait(static_cast<std::int8_t>(arg), std::string(arg % 40, 'p')); });
      quietly([&] { (void)h.priority.get_with_priority(kShort); });
      quietly([&] { (void)h.priority.get_nowait(); });
      (void)h.priority.qsize();
      break;
    case CloseQueues:
      if (arg & 1) h.queue.close();
      if (arg & 2) h.bytes.close();
      if (arg & 4) h.joinable.close();
      if (arg & 8) h.priority.close();
      break;
    case Reopen:
      // A few per input: each may wait (bounded) for a directory lock a
      // poke made look held, or 100 ms for a creator a poke made look unfinished.
      if (h.reopened++ >= kMaxReopens) break;
      quietly([&] {
        Segment again = Segment::open(name);
        exercise_segment(again, kNames[Canary]);
      });
      break;
    case CreateObjects:
      if (h.created < kMaxCreates) create_objects(seg, "new." + std::to_string(h.created++));
      quietly([&] { (void)seg.objects(); });
      quietly([&] { (void)seg.info(); });
      break;
    case Inspect:
      exercise_inspect(seg);
      break;
    case kActionCount:
      break;
  }
}

void run_script(const std::uint8_t* data, std::size_t size) {
  new_input();
  static const std::string name = unique_segment_name("live");
  static const std::string path = segment_path(name);
  try {
    Segment::remove(name);
  } catch (const Error& e) {
    harness_broken(e.what());
  }

  std::optional<Segment> seg;
  std::optional<Handles> h;
  try {
    seg.emplace(Segment::create(name, kSegmentSize, {.mode = 0600, .max_objects = kMaxObjects}));
    h.emplace(*seg);
    h->queue.put("first");
    h->queue.put(std::string(100, 'x'));
    h->bytes.put("raw");
    h->joinable.put(42);
    h->priority.put(3, "three");
    h->priority.put(-1, "minus one");
  } catch (const Error& e) {
    harness_broken(e.what());
  }
  // Where each object lies, as created (object-relative writes use it).
  std::vector<ObjectInfo> layout;
  try {
    layout = seg->objects();
  } catch (const Error& e) {
    harness_broken(e.what());
  }
  if (layout.size() != kObjectCount) harness_broken("unexpected object count");
  for (std::size_t i = 0; i < kObjectCount; ++i)
    if (layout[i].name != kNames[i]) harness_broken("unexpected object order");

  Scribbler scribble(path);
  const std::size_t canary_begin = layout[Canary].offset;
  const std::size_t canary_end = canary_begin + layout[Canary].bytes;
  // The directory and the canary: a write there may alias the canary.
  const std::size_t guarded_begin = sizeof(detail::SegmentHeader);
  bool canary_checked = true;
  const auto wrote = [&](std::pair<std::size_t, std::size_t> r) {
    if (r.first < canary_end && r.second > guarded_begin) canary_checked = false;
  };

  Reader in(data, size);
  for (std::size_t step = 0; step < kMaxSteps && !in.done(); ++step) {
    const std::uint8_t op = in.u8() % kOpCount;
    unsigned char buf[16];
    switch (op) {
      case RawWrite: {
        const std::size_t off = in.u16();
        const std::size_t n = in.u8() % 16 + 1;
        for (std::size_t i = 0; i < n; ++i) buf[i] = in.u8();
        wrote(scribble.write(off, buf, n));
        break;
      }
      case ObjectWrite: {
        const ObjectInfo& o = layout[in.u8() % kObjectCount];
        const std::size_t off = o.offset + in.u16() % o.bytes;
        const std::size_t n = in.u8() % 16 + 1;
        for (std::size_t i = 0; i < n; ++i) buf[i] = in.u8();
        wrote(scribble.write(off, buf, std::min<std::size_t>(n, o.offset + o.bytes - off)));
        break;
      }
      case ObjectPoke:
      case HeaderPoke: {
        std::size_t off = 0;
        if (op == ObjectPoke) {
          const ObjectInfo& o = layout[in.u8() % kObjectCount];
          off = o.offset + (in.u16() % o.bytes) / 4 * 4;
        } else {
          off = (in.u8() % 64) * 4;
        }
        const std::uint64_t v = poke_value(in.u8());
        const std::size_t width = (in.u8() & 1) ? 8 : 4;
        std::memcpy(buf, &v, width);  // little-endian: the low half for width 4
        wrote(scribble.write(off, buf, width));
        break;
      }
      default:
        act(static_cast<Action>(op - FirstAction), *h, *seg, name, in);
        break;
    }
    if (canary_checked && oracles_enabled() && h->canary.get() != kCanaryValue)
      finding("value 'canary' changed from " + std::to_string(kCanaryValue) + " to " + std::to_string(h->canary.get()) +
              " though no write touched it or the directory (step " + std::to_string(step) + ", op " +
              std::to_string(op) + ")");
  }
  h.reset();
  seg.reset();
  try {
    Segment::remove(name);
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_script(data, size);
  return 0;
}
