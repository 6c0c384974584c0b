// What both fuzz targets do with a segment; see exercise.hpp.
#include "exercise.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "cli/inspect.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/ipckit.hpp"

namespace ipckit::fuzz {

bool oracles_enabled() noexcept {
  static const bool enabled = [] {
    const char* v = std::getenv("IPCKIT_FUZZ_NO_ORACLES");
    return v == nullptr || *v == '\0' || std::strcmp(v, "0") == 0;
  }();
  return enabled;
}

void finding(const std::string& what) noexcept {
  std::fprintf(stderr, "\n==ipckit-fuzz== FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// ---------------------------------------------------------------------------
// Segment files

namespace {
std::mutex g_files_mutex;
std::vector<std::string>* g_files = nullptr;  // never destroyed: used by atexit

void remove_files_at_exit() {
  std::lock_guard g(g_files_mutex);
  if (g_files != nullptr)
    for (const auto& p : *g_files) ::unlink(p.c_str());
}
}  // namespace

std::string unique_segment_name(std::string_view tag) {
  return "fuzz." + std::to_string(::getpid()) + "." + std::string(tag);
}

std::string segment_path(std::string_view name) { return "/dev/shm/ipckit." + std::string(name); }

void write_segment_file(std::string_view name, const std::uint8_t* data, std::size_t size) {
  const std::string path = segment_path(name);
  {
    std::lock_guard g(g_files_mutex);
    if (g_files == nullptr) {
      g_files = new std::vector<std::string>;
      std::atexit(remove_files_at_exit);
    }
    bool known = false;
    for (const auto& p : *g_files) known = known || p == path;
    if (!known) g_files->push_back(path);
  }
  // A fresh inode each time: a mapping left by the last input (there should
  // be none) must not see this one's bytes.
  ::unlink(path.c_str());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(("fuzz: cannot create " + path).c_str());
    std::abort();  // the harness itself is broken: stop loudly
  }
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) {
      std::perror(("fuzz: cannot write " + path).c_str());
      std::abort();
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

// ---------------------------------------------------------------------------
// Objects

namespace {

// Opens `name` as Value<T>; false if its type tag is not T's.
template <class T>
bool use_value(Segment& seg, const std::string& name) {
  Value<T> v = seg.value<T>(name);
  if constexpr (std::is_same_v<T, Blob>) {
    // get()/set() take the RLock untimed: take it with a deadline first.
    RLock& l = v.get_lock();
    if (!l.try_lock()) {
      l.lock(kShort);  // throws Timeout when a live process holds it
    }
    Blob b = v.get();
    b.bytes[0] ^= 1;
    v.set(b);
    (void)l.owner_died();
    l.unlock();
  } else {
    const T x = v.get();
    v.set(static_cast<T>(x + 1));
    v.set(x);
    expect_errors([&] {
      std::unique_lock g(v.get_lock(), std::defer_lock);
      if (g.try_lock() && v.get_lock().owner_died()) v.get_lock().mark_consistent();
    });
  }
  (void)v.get_lock().holder();
  return true;
}

bool try_as(bool (*use)(Segment&, const std::string&), Segment& seg, const std::string& name) {
  try {
    return use(seg, name);
  } catch (const TypeMismatch&) {
    return false;
  }
}

template <class T>
bool use_array(Segment& seg, const std::string& name, std::uint64_t count) {
  Array<T> a = seg.array<T>(name, static_cast<std::size_t>(count));
  if (a.size() != count)
    finding("Array '" + name + "' opened with " + std::to_string(a.size()) + " elements, not " + std::to_string(count));
  std::unique_lock g(a.get_lock(), std::defer_lock);
  if (!g.try_lock()) {
    try {
      a.get_lock().lock(kShort);
      g = std::unique_lock(a.get_lock(), std::adopt_lock);
    } catch (const Timeout&) {
    }
  }
  a.at(0) = a.at(a.size() - 1);
  bool threw = false;
  try {
    (void)a.at(a.size());
  } catch (const OutOfRange&) {
    threw = true;
  }
  if (!threw) finding("Array::at(size()) did not throw OutOfRange");
  return true;
}

void use_lock(Lock& l) {
  if (l.try_lock() || (expect_errors([&] { l.lock(kShort); }), l.held_by_me())) {
    if (l.owner_died()) l.mark_consistent();
    l.unlock();
  }
  (void)l.holder();
  (void)l.locked();
  (void)l.recoveries();
  expect_errors([&] { l.unlock(); });  // not held: NotOwner
}

void use_rlock(RLock& l) {
  if (l.try_lock()) {
    expect_errors([&] { l.lock(kShort); });  // reentrant: depth 2
    // A few unlocks at most: a stray write may have left any depth.
    for (int i = 0; i < 3 && l.depth() > 0; ++i) l.unlock();
  }
  (void)l.holder();
  (void)l.depth();
}

void use_condition(Condition& c) {
  c.notify();
  if (c.try_lock()) {
    (void)c.owner_died();
    (void)c.wait_for(std::chrono::nanoseconds(0));
    (void)c.wait_for(kShort);
    c.notify(2);
    c.notify_all();
    c.unlock();
  }
  expect_errors([&] { (void)c.wait_for(kShort); });  // not held: NotOwner
  c.notify_all();
}

void use_semaphore(Semaphore& s) {
  if (s.try_acquire()) expect_errors([&] { s.release(); });
  if (s.acquire(kShort)) expect_errors([&] { s.release(); });
  (void)s.value();
  (void)s.reclaimed();
  (void)s.initial_value();
  expect_errors([&] { s.release(1); });
  expect_errors([&] { s.release(0); });
  if (oracles_enabled() && !s.tracks_holders() && !s.bounded()) {
    // A release that would carry the 32-bit count past its top must throw, not wrap.
    const std::uint32_t before = s.value();
    bool threw = false;
    try {
      s.release(std::numeric_limits<std::uint32_t>::max());
    } catch (const Error&) {
      threw = true;
    }
    if (!threw && before > 0 && s.value() < before)
      finding("Semaphore::release(UINT32_MAX) wrapped the count from " + std::to_string(before) + " to " +
              std::to_string(s.value()) + " instead of throwing");
  }
}

void use_event(Event& e) {
  (void)e.wait(std::chrono::nanoseconds(0));
  e.set();
  if (!e.is_set()) finding("Event::is_set() is false right after set()");
  if (!e.wait(std::chrono::nanoseconds(0))) finding("Event::wait(0) is false right after set()");
  e.clear();
  (void)e.wait(kShort);
}

void use_barrier(Barrier& b) {
  (void)b.parties();
  (void)b.n_waiting();
  (void)b.broken();
  // One party completes a round alone; with more, the wait times out and
  // breaks the barrier (BrokenBarrier).
  expect_errors([&] { (void)b.wait(kShort); });
  expect_errors([&] { b.reset(); });
  b.abort();
  expect_errors([&] { (void)b.wait(kShort); });
  expect_errors([&] { b.reset(); });
  expect_errors([&] { b.leave(); });
}

template <class T>
T sample(int i) {
  if constexpr (std::is_same_v<T, std::string>) {
    return std::string(static_cast<std::size_t>(i * 7 % 50), static_cast<char>('a' + i % 26));
  } else {
    return static_cast<T>(i * 1000003);
  }
}

// A Queue<T> or JoinableQueue<T>: drains what the image holds, puts, gets.
template <class Q, class T>
void use_queue(Q& q) {
  (void)q.qsize();
  (void)q.empty();
  (void)q.full();
  (void)q.bytes_used();
  (void)q.closed();
  for (int i = 0; i < 3; ++i) expect_errors([&] { (void)q.get_nowait(); });
  expect_errors([&] { (void)q.try_get(); });
  expect_errors([&] { q.put_nowait(sample<T>(1)); });
  expect_errors([&] { q.put(sample<T>(2), kShort); });
  const std::vector<T> batch{sample<T>(3), sample<T>(4), sample<T>(5)};
  expect_errors([&] { q.put_many(std::span<const T>(batch), kShort); });
  expect_errors([&] { (void)q.get_many(4, kShort); });
  expect_errors([&] { (void)q.get(kShort); });
  if constexpr (std::is_same_v<T, std::int64_t>) {  // zero-copy: plain items only
    expect_errors([&] {
      auto loan = q.loan(kShort);
      *loan = sample<T>(7);
      loan.publish();
    });
    expect_errors([&] { (void)*q.get_view(kShort); });
    expect_errors([&] {
      if (auto view = q.try_get_view()) view->keep();
    });
  }
  if constexpr (requires { q.task_done(); }) {
    for (int i = 0; i < 3; ++i) expect_errors([&] { q.task_done(); });
    (void)q.unfinished_tasks();
    (void)q.abandoned_tasks();
    expect_errors([&] { (void)q.join(std::chrono::nanoseconds(0)); });
  }
  q.close();
  expect_errors([&] { q.put_nowait(sample<T>(6)); });
  expect_errors([&] { (void)q.get_nowait(); });
}

void use_byte_queue(ByteQueue& q) {
  (void)q.qsize();
  for (int i = 0; i < 3; ++i) expect_errors([&] { (void)q.get_nowait(); });
  expect_errors([&] { q.put_nowait("bytes"); });
  expect_errors([&] { q.put(std::string(40, 'b'), kShort); });
  expect_errors([&] { (void)q.get(kShort); });
  expect_errors([&] {
    auto loan = q.loan(24, kShort);
    std::memset(loan.data(), 'l', loan.size());
    loan.publish(20);
  });
  expect_errors([&] { (void)q.try_loan(8); });  // dropped: nothing published
  expect_errors([&] { (void)q.get_view(kShort).bytes(); });
  expect_errors([&] {
    if (auto view = q.try_get_view()) view->keep();
  });
  q.close();
  expect_errors([&] { (void)q.get_nowait(); });
}

// A PriorityQueue<T>, JoinablePriorityQueue<T> or LifoQueue<T>.
template <class T, class Q>
void use_priority_queue(Q& q) {
  (void)q.qsize();
  (void)q.slots();
  (void)q.full();
  for (int i = 0; i < 3; ++i) expect_errors([&] { (void)q.get_nowait(); });
  if constexpr (requires { q.get_with_priority(); }) {
    expect_errors([&] { q.put_nowait(5, sample<T>(1)); });
    expect_errors([&] { q.put(-5, sample<T>(2), kShort); });
    expect_errors([&] { q.put(std::numeric_limits<std::int64_t>::min(), sample<T>(3), kShort); });
    expect_errors([&] { (void)q.get_with_priority(kShort); });
  } else {
    expect_errors([&] { q.put_nowait(sample<T>(1)); });
    expect_errors([&] { q.put(sample<T>(2), kShort); });
    expect_errors([&] { (void)q.get(kShort); });
  }
  expect_errors([&] { (void)q.try_get(); });
  if constexpr (requires { q.task_done(); }) {
    for (int i = 0; i < 3; ++i) expect_errors([&] { q.task_done(); });
    (void)q.unfinished_tasks();
    expect_errors([&] { (void)q.join(std::chrono::nanoseconds(0)); });
  }
  q.close();
  expect_errors([&] { (void)q.get_nowait(); });
}

// A slot queue opened by `open(T{})` as a queue of strings, else of int64s.
template <class Open>
void use_priority_kind(Open&& open) {
  expect_errors([&] {
    try {
      auto q = open(std::string());
      use_priority_queue<std::string>(q);
    } catch (const TypeMismatch&) {
      auto q = open(std::int64_t{});
      use_priority_queue<std::int64_t>(q);
    }
  });
}

// The options a queue was created with, as its state in the image says.
// (Read only when the entry is large enough to hold that state: else the
// open fails anyway, and the read would be the harness's own overrun.)
QueueOptions queue_options(const Segment& seg, const ObjectInfo& info) {
  QueueOptions o;
  o.capacity_bytes = static_cast<std::size_t>(info.count);
  if (info.bytes < sizeof(detail::QueueState)) return o;
  const auto* q = static_cast<const detail::QueueState*>(detail::SegmentAccess::object_body(seg, info.name));
  o.max_message = static_cast<std::size_t>(q->max_message);
  o.max_items = static_cast<std::size_t>(q->max_items);
  return o;
}

QueueOptions priority_queue_options(const Segment& seg, const ObjectInfo& info) {
  QueueOptions o;
  if (info.bytes < sizeof(detail::PriorityQueueState)) return o;
  const auto* q = static_cast<const detail::PriorityQueueState*>(detail::SegmentAccess::object_body(seg, info.name));
  o.capacity_bytes = static_cast<std::size_t>(q->capacity_bytes);
  o.max_message = static_cast<std::size_t>(q->max_message);
  o.max_items = static_cast<std::size_t>(q->max_items);
  return o;
}

// Opening an object as another kind must fail (TypeMismatch, or
// CorruptSegment for a directory that cannot be trusted).
void open_as_wrong_kind(Segment& seg, const ObjectInfo& info) {
  bool opened = false;
  try {
    if (info.kind == ObjectKind::Event) {
      (void)seg.lock(info.name);
    } else {
      (void)seg.event(info.name);
    }
    opened = true;
  } catch (const Error&) {
  }
  if (opened && oracles_enabled())
    finding("'" + info.name + "', a " + to_string(info.kind) + ", was opened as another kind");
}

}  // namespace

void exercise_object(Segment& seg, const ObjectInfo& info, const std::vector<ObjectInfo>& all) {
  const std::string& name = info.name;
  std::size_t same_name = 0;
  for (const auto& o : all) same_name += o.name == name ? 1 : 0;
  // The first entry of a name is the one every lookup finds.
  const bool first_of_name = [&] {
    for (const auto& o : all)
      if (o.name == name) return &o == &info;
    return false;
  }();
  if (!first_of_name) return;
  if (same_name == 1) expect_errors([&] { open_as_wrong_kind(seg, info); });
  expect_errors([&] { (void)seg.inspect(name); });
  expect_errors([&] { (void)detail::SegmentAccess::object_body(seg, name); });

  switch (info.kind) {
    case ObjectKind::Value:
      expect_errors([&] {
        (void)(try_as(use_value<std::int64_t>, seg, name) || try_as(use_value<double>, seg, name) ||
               try_as(use_value<std::int32_t>, seg, name) || try_as(use_value<Blob>, seg, name));
      });
      break;
    case ObjectKind::Array:
      expect_errors([&] {
        for (auto use :
             {use_array<std::int32_t>, use_array<std::int64_t>, use_array<std::uint8_t>, use_array<double>}) {
          try {
            if (use(seg, name, info.count)) break;
          } catch (const TypeMismatch&) {
          }
        }
      });
      break;
    case ObjectKind::Lock:
      expect_errors([&] {
        Lock l = seg.lock(name);
        use_lock(l);
      });
      break;
    case ObjectKind::RLock:
      expect_errors([&] {
        RLock l = seg.rlock(name);
        use_rlock(l);
      });
      break;
    case ObjectKind::Condition:
      expect_errors([&] {
        if (info.count == 0) {
          Condition c = seg.condition(name);
          use_condition(c);
          return;
        }
        // Bound to the Lock or RLock at offset `count`.
        for (const auto& o : all) {
          if (o.offset != info.count) continue;
          if (o.kind == ObjectKind::Lock) {
            Condition c = seg.condition(name, seg.lock(o.name));
            use_condition(c);
          } else if (o.kind == ObjectKind::RLock) {
            Condition c = seg.condition(name, seg.rlock(o.name));
            use_condition(c);
          }
          return;
        }
        Condition c = seg.condition(name);  // its lock is elsewhere: TypeMismatch
        use_condition(c);
        if (oracles_enabled()) finding("condition '" + name + "' bound elsewhere opened with its own lock");
      });
      break;
    case ObjectKind::Semaphore:
    case ObjectKind::BoundedSemaphore:
      expect_errors([&] {
        const SemaphoreOptions opt{.track_holders = info.type_name == "ipckit::Semaphore(tracked)"};
        const auto initial = static_cast<std::uint32_t>(info.count);
        if (initial != info.count) return;  // no call can name that initial value
        Semaphore s = info.kind == ObjectKind::Semaphore ? seg.semaphore(name, initial, opt)
                                                         : seg.bounded_semaphore(name, initial, opt);
        use_semaphore(s);
      });
      break;
    case ObjectKind::Event:
      expect_errors([&] {
        Event e = seg.event(name);
        use_event(e);
      });
      break;
    case ObjectKind::Barrier:
      expect_errors([&] {
        if (info.count > std::numeric_limits<std::uint32_t>::max()) return;
        Barrier b = seg.barrier(name, static_cast<std::uint32_t>(info.count));
        use_barrier(b);
      });
      break;
    case ObjectKind::Queue:
      expect_errors([&] {
        const QueueOptions o = queue_options(seg, info);
        if (info.type_name == "ipckit::bytes") {
          ByteQueue q = seg.byte_queue(name, o);
          use_byte_queue(q);
          return;
        }
        try {
          auto q = seg.queue<std::string>(name, o);
          use_queue<Queue<std::string>, std::string>(q);
        } catch (const TypeMismatch&) {
          auto q = seg.queue<std::int64_t>(name, o);
          use_queue<Queue<std::int64_t>, std::int64_t>(q);
        }
      });
      break;
    case ObjectKind::JoinableQueue:
      expect_errors([&] {
        const QueueOptions o = queue_options(seg, info);
        try {
          auto q = seg.joinable_queue<std::string>(name, o);
          use_queue<JoinableQueue<std::string>, std::string>(q);
        } catch (const TypeMismatch&) {
          auto q = seg.joinable_queue<std::int64_t>(name, o);
          use_queue<JoinableQueue<std::int64_t>, std::int64_t>(q);
        }
      });
      break;
    case ObjectKind::PriorityQueue:
      use_priority_kind(
          [&](auto tag) { return seg.priority_queue<decltype(tag)>(name, priority_queue_options(seg, info)); });
      break;
    case ObjectKind::JoinablePriorityQueue:
      use_priority_kind([&](auto tag) {
        return seg.joinable_priority_queue<decltype(tag)>(name, priority_queue_options(seg, info));
      });
      break;
    case ObjectKind::LifoQueue:
      use_priority_kind(
          [&](auto tag) { return seg.lifo_queue<decltype(tag)>(name, priority_queue_options(seg, info)); });
      break;
  }
}

namespace {
// Set once a creation ran into the directory lock's bounded wait (a holder
// that never lets go): later creations of this input would only wait again.
bool g_creation_timed_out = false;
}  // namespace

void new_input() noexcept { g_creation_timed_out = false; }

void create_objects(Segment& seg, const std::string& prefix) {
  const auto create = [&](auto&& make) {
    if (g_creation_timed_out) return;
    try {
      make();
    } catch (const Timeout&) {
      g_creation_timed_out = true;
    } catch (const Error&) {
    }
  };
  create([&] { seg.value<std::int64_t>(prefix + ".value").set(7); });
  create([&] { (void)seg.array<std::int32_t>(prefix + ".array", 5); });
  create([&] {
    Lock l = seg.lock(prefix + ".lock");
    use_lock(l);
  });
  create([&] { (void)seg.semaphore(prefix + ".sem", 2); });
  create([&] { (void)seg.queue<std::string>(prefix + ".queue", {.capacity_bytes = 256}); });
}

void exercise_segment(Segment& seg, std::string_view leave_alone) {
  expect_errors([&] { (void)seg.info(); });
  (void)seg.free_bytes();
  (void)seg.size();
  std::vector<ObjectInfo> objects;
  expect_errors([&] { objects = seg.objects(); });
  for (const auto& info : objects)
    if (info.name != leave_alone) exercise_object(seg, info, objects);
  // Creating objects writes the directory and the heap the image describes.
  create_objects(seg, "fuzz.new");
  expect_errors([&] { (void)seg.info(); });
  expect_errors([&] { (void)seg.objects(); });
  exercise_inspect(seg);
}

// ---------------------------------------------------------------------------
// The CLI's inspect renderer

bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;  // a continuation byte, an overlong lead (C0, C1) or F5..FF
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += extra + 1;
  }
  return true;
}

namespace {

void check_text_output(const std::string& text) {
  if (!oracles_enabled()) return;
  for (const unsigned char c : text)
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
      finding("inspect's text output holds a raw control character (" + std::to_string(c) + ")");
}

void check_json_output(const std::string& json) {
  if (!oracles_enabled()) return;
  if (!valid_utf8(json)) finding("inspect's JSON output is not valid UTF-8");
  try {
    (void)nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    finding(std::string("inspect's JSON output does not parse: ") + e.what());
  }
}

}  // namespace

void exercise_inspect(const Segment& seg) {
  expect_errors([&] { check_text_output(cli::render_inspect(seg, false)); });
  expect_errors([&] { check_json_output(cli::render_inspect(seg, true)); });
}

}  // namespace ipckit::fuzz
