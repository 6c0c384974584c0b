// A JoinableQueue's task accounting; see task_ledger.hpp for the word layout
// and why each step is a single atomic operation.
#include "ipckit/detail/task_ledger.hpp"

namespace ipckit::detail {
namespace {

constexpr std::uint64_t kInFlight = std::uint64_t{1} << 38;
constexpr std::uint64_t kParity = std::uint64_t{1} << 39;
constexpr int kFinishedShift = 40;
constexpr std::uint64_t kCountMask24 = (std::uint64_t{1} << 24) - 1;

constexpr std::uint64_t outstanding(std::uint64_t t) { return ledger_outstanding(t); }
constexpr std::uint64_t finished(std::uint64_t t) { return t >> kFinishedShift; }

// Moves one outstanding task of `tally` to finished; false if it has none.
bool finish_one(std::atomic<std::uint64_t>& tally) noexcept {
  std::uint64_t t = tally.load(std::memory_order_acquire);
  do {
    if (outstanding(t) == 0) return false;
  } while (!tally.compare_exchange_weak(t, t - 1 + (std::uint64_t{1} << kFinishedShift), std::memory_order_acq_rel));
  return true;
}

bool owned_by(const TaskLedger& l, std::size_t i, const ThreadIdentity& process) noexcept {
  return l.pid[i].load(std::memory_order_acquire) == process.tid && l.start_ticks[i] == process.start_ticks;
}

}  // namespace

int ledger_lease(TaskLedger& l, const ThreadIdentity& process) noexcept {
  for (std::size_t i = 0; i < kLeaseSlots; ++i)
    if (owned_by(l, i, process)) return static_cast<int>(i);
  for (int pass = 0; pass < 2; ++pass) {
    for (std::size_t i = 0; i < kLeaseSlots; ++i) {
      if (l.pid[i].load(std::memory_order_relaxed) != 0) continue;
      // Under the consumers' lock nobody else claims or frees a slot. Its
      // finished count stays: it is part of the queue's total.
      l.start_ticks[i] = process.start_ticks;
      l.pid[i].store(process.tid, std::memory_order_release);
      return static_cast<int>(i);
    }
    if (pass == 0) (void)ledger_reclaim_dead(l);
  }
  return -1;
}

void ledger_begin_get(TaskLedger& l, int lease, std::uint64_t freed_count) noexcept {
  l.tally[lease].fetch_add(kInFlight | ((freed_count & 1) != 0 ? kParity : 0), std::memory_order_acq_rel);
}

void ledger_end_get(TaskLedger& l, int lease) noexcept {
  // One add: outstanding + 1, and the in-flight mark (whatever its parity) cleared.
  const std::uint64_t marks = l.tally[lease].load(std::memory_order_relaxed) & (kInFlight | kParity);
  l.tally[lease].fetch_add(1 - marks, std::memory_order_acq_rel);
}

void ledger_settle(TaskLedger& l, std::uint64_t head_count) noexcept {
  for (auto& tally : l.tally) {
    std::uint64_t t = tally.load(std::memory_order_acquire);
    while ((t & kInFlight) != 0) {
      // The dead get() published head count `c` with c's parity if it freed
      // its record; the head has not moved since (we hold the lock after it).
      const bool freed = ((head_count & 1) != 0) == ((t & kParity) != 0);
      const std::uint64_t settled = (t & ~(kInFlight | kParity)) + (freed ? 1 : 0);
      if (tally.compare_exchange_weak(t, settled, std::memory_order_acq_rel)) break;
    }
  }
}

std::uint64_t ledger_reclaim_dead(TaskLedger& l) noexcept {
  std::uint64_t reclaimed = 0;
  for (std::size_t i = 0; i < kLeaseSlots; ++i) {
    const std::uint32_t pid = l.pid[i].load(std::memory_order_acquire);
    if (pid == 0 || process_alive(pid, l.start_ticks[i])) continue;
    std::uint64_t t = l.tally[i].load(std::memory_order_acquire);
    std::uint64_t moved = 0;
    for (;;) {
      if ((t & kInFlight) != 0) break;  // settled first, by the next takeover of the lock
      moved = outstanding(t);
      if (l.tally[i].compare_exchange_weak(t, t - moved + (moved << kFinishedShift), std::memory_order_acq_rel)) break;
    }
    if ((t & kInFlight) != 0) continue;
    if (moved != 0) l.abandoned.fetch_add(moved, std::memory_order_acq_rel);
    reclaimed += moved;
    l.pid[i].store(0, std::memory_order_release);
  }
  return reclaimed;
}

namespace {

// Settles one abandoned task (already counted finished): false if there is none.
bool settle_abandoned(TaskLedger& l) noexcept {
  std::uint64_t a = l.abandoned.load(std::memory_order_acquire);
  do {
    if (a == 0) return false;
  } while (!l.abandoned.compare_exchange_weak(a, a - 1, std::memory_order_acq_rel));
  return true;
}

}  // namespace

bool ledger_task_done(TaskLedger& l, const ThreadIdentity& process, std::uint64_t published) noexcept {
  for (std::size_t i = 0; i < kLeaseSlots; ++i)
    if (owned_by(l, i, process) && finish_one(l.tally[i])) return true;
  // Not one of ours: most likely handed over by a consumer that has since
  // exited, so settle one of the gone consumers' tasks first. It already
  // counts as finished: only `abandoned` goes down, and a live consumer's
  // unfinished task stays unfinished (join() still waits for it).
  if (settle_abandoned(l)) return true;
  // Handed over by a live consumer, or got without a lease: any lease's
  // outstanding task will do, the total is the same.
  for (auto& tally : l.tally)
    if (finish_one(tally)) return true;
  std::uint64_t extra = l.done_extra.load(std::memory_order_acquire);
  do {
    if (ledger_unfinished(l, published) == 0) return false;
  } while (!l.done_extra.compare_exchange_weak(extra, extra + 1, std::memory_order_acq_rel));
  return true;
}

std::uint64_t ledger_unfinished(const TaskLedger& l, std::uint64_t published) noexcept {
  std::uint64_t done = l.done_extra.load(std::memory_order_acquire);
  for (const auto& tally : l.tally) done += finished(tally.load(std::memory_order_acquire));
  return (published - done) & kCountMask24;
}

}  // namespace ipckit::detail
