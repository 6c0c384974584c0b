// Reading the process table (Segment::processes()): lock-free snapshots of
// the slots, every byte validated, plus the locks each process holds,
// derived from the segment's Lock/RLock/Condition objects and the locks
// built into values, arrays and queues.
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>

#include "ipckit/detail/lock_state.hpp"
#include "ipckit/detail/priority_queue_state.hpp"
#include "ipckit/detail/queue_state.hpp"
#include "ipckit/detail/thread_id.hpp"
#include "ipckit/detail/value_state.hpp"
#include "ipckit/detail/wait_record.hpp"
#include "ipckit/process_table.hpp"
#include "process_table.hpp"
#include "segment_impl.hpp"

namespace ipckit::detail {

std::string slot_name(const ProcessSlot& s) {
  char bytes[kSlotNameWords * 8];
  for (std::uint32_t w = 0; w < kSlotNameWords; ++w) {
    const std::uint64_t v = s.name[w].load(std::memory_order_relaxed);
    std::memcpy(bytes + std::size_t{w} * 8, &v, 8);
  }
  bytes[sizeof bytes - 1] = '\0';
  return std::string(bytes, ::strnlen(bytes, sizeof bytes));
}

std::optional<WaitSnapshot> read_wait_record(const WaitRecord& r) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    WaitSnapshot w;
    w.seq = r.seq.load(std::memory_order_acquire);
    if ((w.seq & 1u) != 0) continue;
    w.tid = r.tid.load(std::memory_order_relaxed);
    w.thread_start = r.thread_start.load(std::memory_order_relaxed);
    const std::uint64_t what = r.what.load(std::memory_order_relaxed);
    w.since_ns = r.since_ns.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (r.seq.load(std::memory_order_relaxed) != w.seq) continue;
    const auto op = static_cast<std::uint32_t>(what >> kWaitOpShift);
    if (op == 0 || op > kLastWaitOp || w.tid == 0) return std::nullopt;
    w.op = static_cast<WaitOp>(op);
    w.offset = what & kWaitOffsetMask;
    return w;
  }
  return std::nullopt;
}

}  // namespace ipckit::detail

namespace ipckit {
namespace {

constexpr std::array<const char*, 5> kStateNames = {"new", "runnable", "running", "blocked", "terminated"};
constexpr std::array<const char*, detail::kLastWaitOp + 1> kOpNames = {"none", "lock", "acquire", "wait",
                                                                       "get",  "put",  "join",    "lock"};

std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

// One wait record, if it is published and consistent.
std::optional<WaitInfo> read_wait(const detail::WaitRecord& r, std::uint64_t now_ns) {
  const auto raw = detail::read_wait_record(r);
  if (!raw) return std::nullopt;
  WaitInfo w;
  w.tid = raw->tid;
  w.thread_start_ticks = raw->thread_start;
  w.offset = raw->offset;
  w.operation = kOpNames[static_cast<std::uint32_t>(raw->op)];
  w.seconds = raw->since_ns <= now_ns ? double(now_ns - raw->since_ns) / 1e9 : 0;
  return w;
}

std::vector<StateChange> read_history(const detail::ProcessSlot& s) {
  std::vector<StateChange> out;
  const std::uint32_t next = s.history_next.load(std::memory_order_acquire);
  const std::uint32_t first = next > detail::kHistory ? next - detail::kHistory : 0;
  for (std::uint32_t i = first; i != next; ++i) {
    const std::uint64_t v = s.history[i % detail::kHistory].load(std::memory_order_acquire);
    const auto state = static_cast<std::uint32_t>(v >> 56);
    if (v == 0 || state >= kStateNames.size()) continue;
    out.push_back({ProcessState(state), static_cast<std::int64_t>(v & ((std::uint64_t{1} << 56) - 1))});
  }
  return out;
}

// A snapshot of slot `s` if a live-or-dead process owns it and it did not
// change hands while it was read.
std::optional<AttachedProcess> read_slot(const detail::ProcessSlot& s) {
  const std::uint64_t owner = s.owner.load(std::memory_order_acquire);
  const auto pid = static_cast<std::uint32_t>(owner & detail::kSlotPidMask);
  if (pid == 0 || (owner & detail::kSlotInit) != 0) return std::nullopt;
  AttachedProcess p;
  p.pid = static_cast<int>(pid);
  p.start_ticks = s.start.load(std::memory_order_relaxed);
  p.attached_unix = s.attached_unix.load(std::memory_order_relaxed);
  const std::uint32_t state = s.state.load(std::memory_order_relaxed);
  p.state = state < kStateNames.size() && state != std::uint32_t(ProcessState::Blocked) ? ProcessState(state)
                                                                                        : ProcessState::Running;
  p.name = detail::slot_name(s);
  const std::uint64_t now = monotonic_ns();
  for (const auto& r : s.waits)
    if (auto w = read_wait(r, now)) p.waits.push_back(std::move(*w));
  p.history = read_history(s);
  if (s.owner.load(std::memory_order_acquire) != owner) return std::nullopt;
  p.alive = detail::process_alive(pid, p.start_ticks);
  if (!p.waits.empty() && p.alive) p.state = ProcessState::Blocked;
  return p;
}

// Whether thread `tid` belongs to process `pid` now.
bool thread_of(int pid, std::uint32_t tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task/%u", pid, tid);
  struct stat st {};
  return ::stat(path, &st) == 0;
}

// A lock state inside an object that a process may hold: `at` bytes into it.
struct EmbeddedLock {
  std::uint64_t at;
  const char* part;
};

// Where the lock states of object `o` lie (its body at `body`, only for
// member addresses: nothing is read). A Value/Array bound to a named lock
// has none of its own (the named lock is listed); a semaphore's table lock
// is held for one operation only, and is not shown.
std::vector<EmbeddedLock> locks_in(const ObjectInfo& o, const char* body) {
  const auto at = [&](const void* member) { return std::uint64_t(static_cast<const char*>(member) - body); };
  switch (o.kind) {
    case ObjectKind::Lock:
    case ObjectKind::RLock:
    case ObjectKind::Condition:  // its own lock, first (unused when bound to a named lock)
      return {{0, ""}};
    case ObjectKind::Value:
    case ObjectKind::Array:
      if (detail::guard_of(o.type_name) == detail::Guard::Own) return {{0, "its lock"}};
      return {};
    case ObjectKind::Queue:
    case ObjectKind::JoinableQueue: {
      const auto* q = reinterpret_cast<const detail::QueueState*>(body);
      return {{at(&q->put.lock), "producers' side"}, {at(&q->get.lock), "consumers' side"}};
    }
    case ObjectKind::PriorityQueue:
    case ObjectKind::LifoQueue:
    case ObjectKind::JoinablePriorityQueue:
      return {{at(&reinterpret_cast<const detail::PriorityQueueState*>(body)->lock), "its lock"}};
    default:
      return {};
  }
}

}  // namespace

const char* to_string(ProcessState state) noexcept {
  const auto i = static_cast<std::uint32_t>(state);
  return i < kStateNames.size() ? kStateNames[i] : "unknown";
}

std::vector<AttachedProcess> Segment::processes() const {
  const detail::Geometry& g = impl_->geometry();
  const detail::ProcessSlot* slots = impl_->slots();
  std::vector<AttachedProcess> out;
  for (std::uint32_t i = 0; i < g.max_processes; ++i) {
    std::optional<AttachedProcess> p;
    for (int attempt = 0; attempt < 3 && !p; ++attempt) p = read_slot(slots[i]);
    if (!p) continue;
    p->slot = i;
    out.push_back(std::move(*p));
  }
  std::vector<ObjectInfo> objs;
  try {
    objs = objects();
  } catch (const Error&) {
    // A corrupt directory: the processes are still shown, without object names.
  }
  const auto object_at = [&](std::uint64_t off) -> const ObjectInfo* {
    for (const auto& o : objs)
      if (off >= o.offset && off - o.offset < o.bytes) return &o;
    return nullptr;
  };
  for (auto& p : out)
    for (auto& w : p.waits)
      if (const ObjectInfo* o = object_at(w.offset)) {
        w.object = o->name;
        w.kind = o->kind;
      }
  // Holders: every lock's owner thread, matched to the process it belongs to.
  // Only lock states wholly inside their object and the segment, and aligned,
  // are read (the directory is untrusted); a read is one load, never a wait.
  for (const auto& o : objs) {
    if (o.offset > g.size || o.bytes > g.size - o.offset) continue;
    for (const EmbeddedLock& l : locks_in(o, static_cast<const char*>(impl_->at(0)) + o.offset)) {
      const std::uint64_t off = o.offset + l.at;
      if (off % alignof(detail::LockState) != 0 || l.at > o.bytes || o.bytes - l.at < sizeof(detail::LockState))
        continue;
      const auto& ls = *reinterpret_cast<const detail::LockState*>(impl_->at(off));
      const std::uint32_t tid = ls.word.load(std::memory_order_acquire) & detail::kLockTidMask;
      if (tid == 0) continue;
      for (auto& p : out)
        if (p.alive && thread_of(p.pid, tid)) p.holds.push_back({o.name, o.kind, tid, l.part});
    }
  }
  return out;
}

}  // namespace ipckit
