// The process table: claiming slots, recording waits and lifecycle states,
// and reading the table back (Segment::processes()). Layout and rules:
// process_table_layout.hpp.
#include "process_table.hpp"

#include <pthread.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <new>
#include <vector>

#include "doorbell.hpp"
#include "ipckit/current_process.hpp"
#include "ipckit/detail/thread_id.hpp"
#include "ipckit/process_table.hpp"
#include "segment_impl.hpp"

namespace ipckit::detail {

// One listed mapping of a segment in this process.
struct Attachment {
  const SegmentImpl* impl = nullptr;
  const char* base = nullptr;
  std::uint64_t size = 0;
  ProcessSlot* slots = nullptr;
  std::uint32_t max_processes = 0;
  std::string name;
  std::uint32_t claimed_pid = 0;  // the process the slot below was claimed for (a fork child re-claims)
  int slot = -1;                  // -1: not listed (the table was full)
};

namespace {

// The listed mappings of this process. Only taken by slow paths (opening,
// closing, a wait about to sleep); held across fork so a child never
// inherits it locked.
std::mutex* g_mu = new std::mutex;  // never destroyed: waits may run during exit
std::vector<Attachment*>* g_attached = new std::vector<Attachment*>;

void before_fork() noexcept { g_mu->lock(); }
void after_fork() noexcept { g_mu->unlock(); }
const bool g_fork_handlers = [] { return ::pthread_atfork(before_fork, after_fork, after_fork) == 0; }();

std::int64_t unix_us() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

std::uint64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1'000'000'000u + std::uint64_t(ts.tv_nsec);
}

constexpr std::uint64_t kHistoryTimeMask = (std::uint64_t{1} << 56) - 1;

void push_history(ProcessSlot& s, ProcessState state) noexcept {
  const std::uint32_t i = s.history_next.fetch_add(1, std::memory_order_relaxed) % kHistory;
  s.history[i].store((std::uint64_t(state) << 56) | (std::uint64_t(unix_us()) & kHistoryTimeMask),
                     std::memory_order_release);
}

void set_state(ProcessSlot& s, ProcessState state) noexcept {
  s.state.store(static_cast<std::uint32_t>(state), std::memory_order_release);
  push_history(s, state);
}

std::string my_name() noexcept {
  try {
    return ipckit::current_process().name;
  } catch (...) {
    return {};
  }
}

void write_name(ProcessSlot& s, const std::string& name) noexcept {
  char bytes[kSlotNameWords * 8] = {};
  name.copy(bytes, sizeof bytes - 1);  // the last byte stays 0
  for (std::uint32_t w = 0; w < kSlotNameWords; ++w) {
    std::uint64_t v = 0;
    std::memcpy(&v, bytes + std::size_t{w} * 8, 8);
    s.name[w].store(v, std::memory_order_relaxed);
  }
}

// Fills a slot just won (its owner word still carries kSlotInit).
void fill_slot(ProcessSlot& s, const ThreadIdentity& me, ProcessState state, const std::string& name) noexcept {
  s.start.store(me.start_ticks, std::memory_order_relaxed);
  s.attached_unix.store(unix_us() / 1'000'000, std::memory_order_relaxed);
  s.blocked.store(0, std::memory_order_relaxed);
  write_name(s, name);
  for (auto& h : s.history) h.store(0, std::memory_order_relaxed);
  s.doorbell.store(0, std::memory_order_relaxed);
  s.watching.store(0, std::memory_order_relaxed);
  s.history_next.store(0, std::memory_order_relaxed);
  for (auto& r : s.waits) {
    r.what.store(0, std::memory_order_relaxed);
    r.seq.store((r.seq.load(std::memory_order_relaxed) + 2) & ~1u, std::memory_order_relaxed);
    r.tid.store(0, std::memory_order_relaxed);
  }
  set_state(s, state);
}

bool owned_by(const ProcessSlot& s, std::uint64_t owner, const ThreadIdentity& me) noexcept {
  return (owner & kSlotInit) == 0 && (owner & kSlotPidMask) == me.tid &&
         s.start.load(std::memory_order_relaxed) == me.start_ticks;
}

// Whether slot `s`, last seen as `owner`, may be taken: free, or its owner is dead.
bool claimable(const ProcessSlot& s, std::uint64_t owner, bool free_only) noexcept {
  const auto pid = static_cast<std::uint32_t>(owner & kSlotPidMask);
  if (pid == 0) return true;
  if (free_only) return false;
  // A claimer killed while filling its slot never wrote its start time: judge it by its pid alone.
  const std::uint64_t start = (owner & kSlotInit) != 0 ? 0 : s.start.load(std::memory_order_relaxed);
  return !process_alive(pid, start);
}

// The slot of this process in `slots`: its own if it has one (another
// mapping of the segment), else a free one, else a dead process's; -1 when
// every slot belongs to a live process.
int claim(ProcessSlot* slots, std::uint32_t n, ProcessState state) noexcept {
  const ThreadIdentity me = this_process();
  for (std::uint32_t i = 0; i < n; ++i)
    if (owned_by(slots[i], slots[i].owner.load(std::memory_order_acquire), me)) return static_cast<int>(i);
  const std::string name = my_name();
  for (const bool free_only : {true, false}) {
    for (std::uint32_t i = 0; i < n; ++i) {
      ProcessSlot& s = slots[i];
      std::uint64_t seen = s.owner.load(std::memory_order_acquire);
      if (!claimable(s, seen, free_only)) continue;
      const std::uint64_t mine = ((seen >> 32) + 1) << 32 | kSlotInit | me.tid;
      if (!s.owner.compare_exchange_strong(seen, mine, std::memory_order_acq_rel)) continue;
      fill_slot(s, me, state, name);
      s.owner.store(mine & ~kSlotInit, std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  return -1;
}

// This process's slot in `a`, claimed (in `state`) if this process has none
// yet (first use, or a forked child); null when not listed. Registry held.
ProcessSlot* own_slot(Attachment& a, ProcessState state, bool* claimed = nullptr) noexcept {
  const std::uint32_t pid = this_process().tid;
  if (a.claimed_pid != pid) {
    a.claimed_pid = pid;
    a.slot = claim(a.slots, a.max_processes, state);
    if (claimed != nullptr) *claimed = true;
  }
  return a.slot >= 0 ? &a.slots[a.slot] : nullptr;
}

Attachment* attachment_of(const void* p) noexcept {
  const auto* c = static_cast<const char*>(p);
  for (Attachment* a : *g_attached)
    if (c >= a->base && c < a->base + a->size) return a;
  return nullptr;
}

}  // namespace

void SegmentImpl::attach() noexcept {
  auto* a = new (std::nothrow) Attachment;
  if (a == nullptr) return;
  a->impl = this;
  a->base = map_.base();
  a->size = geo_.size;
  a->slots = slots();
  a->max_processes = geo_.max_processes;
  try {
    a->name = name_;
    std::lock_guard g(*g_mu);
    g_attached->push_back(a);
    own_slot(*a, ProcessState::Running);
  } catch (...) {
    delete a;
    return;
  }
  attachment_ = a;
}

void SegmentImpl::detach() noexcept {
  if (attachment_ == nullptr) return;
  std::lock_guard g(*g_mu);
  auto& all = *g_attached;
  all.erase(std::remove(all.begin(), all.end(), attachment_), all.end());
  const Attachment& a = *attachment_;
  const ThreadIdentity me = this_process();
  const bool shared = std::any_of(all.begin(), all.end(), [&](const Attachment* o) {
    return o->name == a.name && o->claimed_pid == a.claimed_pid && o->slot == a.slot;
  });
  // The last mapping of this segment in this process gives the slot back.
  if (!shared && a.slot >= 0 && a.claimed_pid == me.tid) {
    ProcessSlot& s = a.slots[a.slot];
    std::uint64_t seen = s.owner.load(std::memory_order_acquire);
    if (owned_by(s, seen, me)) s.owner.compare_exchange_strong(seen, seen & ~kSlotPidMask, std::memory_order_acq_rel);
  }
  delete attachment_;
  attachment_ = nullptr;
}

WaitToken wait_begin(const void* word, WaitOp op) noexcept {
  const ThreadIdentity& me = this_thread();
  ProcessSlot* slot = nullptr;
  std::uint64_t offset = 0;
  const SegmentImpl* detecting = nullptr;
  {
    std::lock_guard g(*g_mu);
    Attachment* a = attachment_of(word);
    if (a == nullptr) return {};
    slot = own_slot(*a, ProcessState::Running);
    offset = static_cast<std::uint64_t>(static_cast<const char*>(word) - a->base);
    if (a->impl->geometry().deadlock_detection) detecting = a->impl;
  }
  if (slot == nullptr) return {nullptr, nullptr, detecting};
  for (WaitRecord& r : slot->waits) {
    std::uint32_t free = 0;
    if (!r.tid.compare_exchange_strong(free, me.tid, std::memory_order_acquire)) continue;
    const std::uint32_t seq = r.seq.load(std::memory_order_relaxed);
    r.seq.store(seq | 1u, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    r.thread_start.store(me.start_ticks, std::memory_order_relaxed);
    r.since_ns.store(monotonic_ns(), std::memory_order_relaxed);
    r.what.store(std::uint64_t(op) << kWaitOpShift | (offset & kWaitOffsetMask), std::memory_order_relaxed);
    r.seq.store((seq | 1u) + 1, std::memory_order_release);
    if (slot->blocked.fetch_add(1, std::memory_order_acq_rel) == 0) push_history(*slot, ProcessState::Blocked);
    return {&r, slot, detecting};
  }
  return {nullptr, nullptr, detecting};  // more blocked threads than records: this one is not shown
}

void wait_end(const WaitToken& token) noexcept {
  auto& r = *static_cast<WaitRecord*>(token.record);
  auto& slot = *static_cast<ProcessSlot*>(token.slot);
  const std::uint32_t seq = r.seq.load(std::memory_order_relaxed);
  r.seq.store(seq | 1u, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  r.what.store(0, std::memory_order_relaxed);
  r.seq.store((seq | 1u) + 1, std::memory_order_release);
  r.tid.store(0, std::memory_order_release);
  if (slot.blocked.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    const std::uint32_t state = slot.state.load(std::memory_order_relaxed);
    push_history(slot, state <= static_cast<std::uint32_t>(ProcessState::Terminated) ? ProcessState(state)
                                                                                     : ProcessState::Running);
  }
}

std::optional<DoorbellAddress> publish_watch(const void* word) noexcept {
  std::lock_guard g(*g_mu);
  Attachment* a = attachment_of(word);
  if (a == nullptr) return std::nullopt;
  ProcessSlot* slot = own_slot(*a, ProcessState::Running);
  if (slot == nullptr) return std::nullopt;
  DoorbellAddress out;
  out.offset = static_cast<std::uint64_t>(static_cast<const char*>(word) - a->base);
  out.nonce = slot->doorbell.load(std::memory_order_relaxed);
  while (out.nonce == 0) {
    if (::getrandom(&out.nonce, sizeof out.nonce, 0) != sizeof out.nonce) return std::nullopt;
    // A new nonce starts with an empty filter (the bit follows, before the
    // caller sets the word's flag).
    slot->watching.store(0, std::memory_order_relaxed);
    slot->doorbell.store(out.nonce, std::memory_order_release);
  }
  slot->watching.fetch_or(watch_bit(out.offset), std::memory_order_seq_cst);
  return out;
}

bool ring_targets(const void* word, RingTargets& out) noexcept {
  std::lock_guard g(*g_mu);
  const Attachment* a = attachment_of(word);
  if (a == nullptr) return false;
  out.slots = a->slots;
  out.count = a->max_processes;
  out.offset = static_cast<std::uint64_t>(static_cast<const char*>(word) - a->base);
  return true;
}

void note_lifecycle(ProcessState state) noexcept {
  std::lock_guard g(*g_mu);
  for (Attachment* a : *g_attached) {
    bool claimed = false;
    ProcessSlot* s = own_slot(*a, state, &claimed);
    if (s != nullptr && !claimed) set_state(*s, state);
  }
}

}  // namespace ipckit::detail
