// Deadlock detection: the wait-for graph is read from the process table's
// wait records (who sleeps on which lock word) and the lock words themselves
// (who holds each lock). Nothing is locked and nothing waits: a record being
// written is skipped, and a cycle counts only when two looks in a row see
// every link unchanged (a record's seq moves whenever its wait ends or a
// new one begins), so a chain that changed while it was read is dropped.
#include "deadlock.hpp"

#include <unistd.h>

#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "ipckit/detail/wait_record.hpp"
#include "ipckit/process_table.hpp"
#include "process_table.hpp"
#include "segment_impl.hpp"

namespace ipckit::detail {
namespace {

constexpr std::uint32_t kNotListed = UINT32_MAX;

// One thread asleep acquiring a lock, as its wait record shows it.
struct LockWait {
  const WaitRecord* record = nullptr;  // null: the caller, not listed in the table
  std::uint32_t seq = 0;
  std::uint32_t tid = 0;
  std::uint64_t thread_start = 0;
  std::uint32_t slot = kNotListed;
  std::uint64_t lock_offset = 0;
  WaitOp op = WaitOp::Lock;
  bool operator==(const LockWait&) const = default;
};

std::optional<LockWait> read_lock_wait(const WaitRecord& r, std::uint32_t slot) {
  const auto raw = read_wait_record(r);
  if (!raw || (raw->op != WaitOp::Lock && raw->op != WaitOp::Relock)) return std::nullopt;
  LockWait w;
  w.record = &r;
  w.seq = raw->seq;
  w.slot = slot;
  w.tid = raw->tid;
  w.thread_start = raw->thread_start;
  w.lock_offset = raw->offset;
  w.op = raw->op;
  return w;
}

// Every lock wait published in the table now.
std::vector<LockWait> lock_waits(const SegmentImpl& seg) {
  std::vector<LockWait> out;
  const ProcessSlot* slots = seg.slots();
  for (std::uint32_t i = 0; i < seg.geometry().max_processes; ++i) {
    const std::uint64_t owner = slots[i].owner.load(std::memory_order_acquire);
    if ((owner & kSlotPidMask) == 0 || (owner & kSlotInit) != 0) continue;
    for (const WaitRecord& r : slots[i].waits)
      if (auto w = read_lock_wait(r, i)) out.push_back(*w);
  }
  return out;
}

// The lock at `offset`, if a LockState fits there (the offset came from
// shared memory: anything else is no lock).
const LockState* lock_at(const SegmentImpl& seg, std::uint64_t offset) {
  const std::uint64_t size = seg.geometry().size;
  if (offset % alignof(LockState) != 0 || offset > size || size - offset < sizeof(LockState)) return nullptr;
  return reinterpret_cast<const LockState*>(seg.at(offset));
}

// The wait of the thread holding the lock at `offset`: the holder's tid from
// the word, its start time from the owner record when that is the holder's.
struct Holder {
  std::uint32_t tid = 0;
  std::uint64_t start = 0;  // 0: unknown yet (the owner record lags the word)
};
Holder holder_of(const SegmentImpl& seg, std::uint64_t offset) {
  const LockState* l = lock_at(seg, offset);
  if (l == nullptr) return {};
  const std::uint32_t tid = l->word.load(std::memory_order_acquire) & kLockTidMask;
  const std::uint64_t start =
      l->owner_tid.load(std::memory_order_acquire) == tid ? l->owner_start.load(std::memory_order_relaxed) : 0;
  return {tid, start};
}

// The chain of waits from `from` back to `from`'s thread: the cycle that
// `from` closes, or empty. A chain that meets itself elsewhere (a cycle
// `from` only waits on) is not `from`'s to report: its members see it.
std::vector<LockWait> cycle_from(const SegmentImpl& seg, const LockWait& from, const std::vector<LockWait>& waits) {
  std::vector<LockWait> chain{from};
  for (std::size_t step = 0; step <= waits.size(); ++step) {
    const Holder h = holder_of(seg, chain.back().lock_offset);
    if (h.tid == 0) return {};
    if (h.tid == from.tid) return chain;
    const auto next = std::find_if(waits.begin(), waits.end(), [&](const LockWait& w) {
      return w.tid == h.tid && (h.start == 0 || w.thread_start == h.start);
    });
    if (next == waits.end()) return {};
    if (std::any_of(chain.begin(), chain.end(), [&](const LockWait& w) { return w.tid == h.tid; })) return {};
    chain.push_back(*next);
  }
  return {};
}

bool all_alive(const std::vector<LockWait>& cycle) {
  return std::all_of(cycle.begin(), cycle.end(), [](const LockWait& w) { return thread_alive(w.tid, w.thread_start); });
}

// "lock 'A'" for the object holding the word at `offset`.
std::string lock_name(const std::vector<ObjectInfo>& objects, std::uint64_t offset) {
  for (const ObjectInfo& o : objects)
    if (offset >= o.offset && offset - o.offset < o.bytes)
      return noun(o.kind) + " '" + o.name + "'" +
             (o.kind == ObjectKind::Lock || o.kind == ObjectKind::RLock ? "" : " (its lock)");
  if (offset < kDirectoryOffset) return "the segment's directory lock";
  return "the lock at offset " + std::to_string(offset);
}

Deadlock describe(const SegmentImpl& seg, const std::vector<LockWait>& cycle) {
  std::vector<ObjectInfo> objects;
  try {
    objects = list_objects(seg);
  } catch (const Error&) {
    // A corrupt directory: the locks are named by offset.
  }
  Deadlock d;
  for (std::size_t i = 0; i < cycle.size(); ++i) {
    const LockWait& w = cycle[i];
    DeadlockMember m;
    m.tid = w.tid;
    if (w.slot != kNotListed) {
      const ProcessSlot& s = seg.slots()[w.slot];
      m.pid = static_cast<int>(s.owner.load(std::memory_order_acquire) & kSlotPidMask);
      m.name = slot_name(s);
    } else {
      m.pid = ::getpid();
    }
    m.holds = lock_name(objects, cycle[(i + cycle.size() - 1) % cycle.size()].lock_offset);
    m.waits_for = lock_name(objects, w.lock_offset);
    m.may_give_up = w.op == WaitOp::Lock;
    d.members.push_back(std::move(m));
  }
  return d;
}

// The cycle for an exception message: names from the table are another
// process's bytes, so control characters are shown as '?'.
std::string printable(Deadlock d) {
  for (DeadlockMember& m : d.members)
    for (char& c : m.name)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return d.describe();
}

// The member that gives up: the latest-started thread that may, so that
// every member, looking at the same cycle, picks the same one.
const LockWait* victim_of(const std::vector<LockWait>& cycle) {
  const LockWait* v = nullptr;
  for (const LockWait& w : cycle)
    if (w.op == WaitOp::Lock && (v == nullptr || std::tie(w.thread_start, w.tid) > std::tie(v->thread_start, v->tid)))
      v = &w;
  return v;
}

}  // namespace

void give_up_if_deadlocked(const SegmentImpl& segment, const LockState& lock, const ThreadIdentity& me,
                           const Label& who) {
  const auto offset = static_cast<std::uint64_t>(reinterpret_cast<const char*>(&lock.word) - segment.at(0));
  const auto mine = [&](const std::vector<LockWait>& waits) {
    for (const LockWait& w : waits)
      if (w.tid == me.tid && w.thread_start == me.start_ticks && w.lock_offset == offset) return w;
    LockWait w;  // not listed (a full table): the walk still starts from here
    w.tid = me.tid;
    w.thread_start = me.start_ticks;
    w.lock_offset = offset;
    return w;
  };
  const std::vector<LockWait> first_look = lock_waits(segment);
  const std::vector<LockWait> cycle = cycle_from(segment, mine(first_look), first_look);
  if (cycle.empty()) return;
  const std::vector<LockWait> second_look = lock_waits(segment);
  if (cycle_from(segment, mine(second_look), second_look) != cycle || !all_alive(cycle)) return;
  const LockWait* victim = victim_of(cycle);
  if (victim == nullptr || victim->tid != me.tid) return;
  raise<DeadlockDetected>(who,
                          "waiting for it would never end, a cycle of " + std::to_string(cycle.size()) +
                              " threads: " + printable(describe(segment, cycle)),
                          "this thread gives up, as the cycle's latest-started member; release the locks it holds "
                          "(unwinding does) and retry, or take the locks in one global order");
}

}  // namespace ipckit::detail

namespace ipckit {

std::string Deadlock::describe() const {
  std::string out;
  for (const DeadlockMember& m : members) {
    if (!out.empty()) out += "; ";
    out += "pid " + std::to_string(m.pid);
    if (!m.name.empty()) out += " (" + m.name + ")";
    out += " holds " + m.holds + " and waits for " + m.waits_for;
  }
  return out;
}

std::vector<Deadlock> Segment::deadlocks() const {
  using detail::LockWait;
  const detail::SegmentImpl& seg = *impl_;
  const std::vector<LockWait> first_look = detail::lock_waits(seg);
  std::vector<std::vector<LockWait>> cycles;
  for (const LockWait& w : first_look) {
    std::vector<LockWait> c = detail::cycle_from(seg, w, first_look);
    if (c.empty()) continue;
    // Each cycle once: rotated to begin at its smallest tid.
    std::rotate(c.begin(),
                std::min_element(c.begin(), c.end(), [](const auto& a, const auto& b) { return a.tid < b.tid; }),
                c.end());
    if (std::find(cycles.begin(), cycles.end(), c) == cycles.end()) cycles.push_back(std::move(c));
  }
  std::vector<Deadlock> out;
  if (cycles.empty()) return out;
  const std::vector<LockWait> second_look = detail::lock_waits(seg);
  for (const auto& c : cycles)
    if (std::find(second_look.begin(), second_look.end(), c.front()) != second_look.end() &&
        detail::cycle_from(seg, c.front(), second_look) == c && detail::all_alive(c))
      out.push_back(detail::describe(seg, c));
  return out;
}

}  // namespace ipckit
