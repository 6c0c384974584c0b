// Semaphore: the count is the futex word. An untracked semaphore changes it
// with single atomic operations. A tracked one keeps a table of holders
// beside it, and the two must move together: a unit is either in the count
// or in exactly one holder's slot. They change under the table lock, a
// crash-safe lock (LockState): if a holder of it dies half-way, the next
// holder takes the lock over and recomputes the count from the table
// (count = initial - every slot's units), which is exact because nothing
// else ever changes either of them.
#include "ipckit/semaphore.hpp"

#include <algorithm>
#include <exception>
#include <string>

#include "holders.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/error.hpp"
#include "side_lock.hpp"
#include "wait_source.hpp"

namespace ipckit {
namespace {

std::string units(std::uint64_t n) { return std::to_string(n) + (n == 1 ? " unit" : " units"); }

// The table lock is held for a few dozen instructions, so it is taken as a
// queue's side lock that never waits on the semaphore itself: a caller with a
// deadline waits for it until then (at least kSideLockGrace, for a holder
// preempted mid-operation) and no longer. A lock taken over from a dead
// holder is repaired by the caller (repair_after_takeover) first thing.
constexpr auto kOnlyTheHolderIsInTheWay = [] { return false; };

}  // namespace

WaitHandle Semaphore::wait_handle() const {
  auto* s = s_;
  return detail::shared_word_handle(
      s->count, s->sleepers, detail::ArmKind::Sleepers, [s] { return s->count.load(std::memory_order_acquire) > 0; },
      keep_, label_, "");
}

Semaphore::Semaphore(detail::SemaphoreState* s, std::shared_ptr<const void> keepalive, detail::Label label)
    : s_(s), keep_(std::move(keepalive)), label_(std::move(label)) {
  initial_ = s_->initial;
  const std::uint32_t bounded = s_->bounded, tracked = s_->track_holders;
  if (bounded > 1 || tracked > 1 || initial_ > detail::kSemaphoreMaxInitial)
    detail::raise_corrupt(label_, "its settings read initial " + std::to_string(initial_) + ", bounded " +
                                      std::to_string(bounded) + ", tracked " + std::to_string(tracked));
  bounded_ = bounded != 0;
  tracked_ = tracked != 0;
}

// ------------------------------------------------------------------ acquire

bool Semaphore::acquire_by(detail::Deadline deadline) {
  if (tracked_) return acquire_tracked(deadline);
  return detail::wait_for_change(
      s_->count, s_->sleepers, [this] { return detail::semaphore_try_take(*s_); }, deadline, std::chrono::seconds(1),
      [] {}, detail::WaitOp::Acquire);
}

bool Semaphore::acquire_tracked(detail::Deadline deadline) {
  if (take_tracked(deadline)) return true;
  if (reclaim_dead_holders(deadline) && take_tracked(deadline)) return true;
  // take_tracked() may throw (OutOfSpace, CorruptSegment); carried out of the
  // wait so that it never leaves the sleeper count raised.
  std::exception_ptr failure;
  const bool got = detail::wait_for_change(
      s_->count, s_->sleepers,
      [&] {
        try {
          return take_tracked(deadline);
        } catch (...) {
          failure = std::current_exception();
          return true;
        }
      },
      deadline, detail::kLivenessInterval, [&] { reclaim_dead_holders(deadline); }, detail::WaitOp::Acquire);
  if (failure) std::rethrow_exception(failure);
  return got;
}

// One unit from the count into the caller's slot, if there is one (and the
// table lock could be had by the deadline).
bool Semaphore::take_tracked(detail::Deadline deadline) {
  if (s_->count.load(std::memory_order_relaxed) == 0) return false;
  detail::SideLock lock(s_->table_lock, deadline, label_, kOnlyTheHolderIsInTheWay);
  if (!lock.held()) return false;
  if (lock.took_over()) repair_after_takeover();
  const std::uint32_t c = s_->count.load(std::memory_order_relaxed);
  if (c == 0) return false;
  const auto& me = detail::this_thread();
  const int slot = detail::holders_claim(s_->holders, detail::kSemaphoreHolderSlots, me);
  if (slot < 0)
    detail::raise<OutOfSpace>(label_,
                              std::to_string(detail::kSemaphoreHolderSlots) +
                                  " threads hold units already, the most a tracked semaphore records",
                              "use an untracked semaphore for more holders");
  auto& held = s_->holders[slot].units;
  const std::uint32_t mine = held.load(std::memory_order_relaxed);
  if (mine >= initial_)
    detail::raise_corrupt(label_,
                          "this thread's slot says it holds " + units(mine) + " of " + std::to_string(initial_));
  // Two stores; a death between them is repaired by the lock's next holder.
  s_->count.store(c - 1, std::memory_order_relaxed);
  held.store(mine + 1, std::memory_order_relaxed);
  return true;
}

// ------------------------------------------------------------------ release

void Semaphore::release_checked(std::uint32_t n) {
  if (n == 0) detail::raise<InvalidArgument>(label_, "release(0) gives nothing back", "release at least one unit");
  if (tracked_) return release_tracked(n);
  if (bounded_) {
    std::uint32_t c = s_->count.load(std::memory_order_relaxed);
    do {
      if (std::uint64_t{c} + n > initial_)
        detail::raise<TooManyReleases>(label_,
                                       "releasing " + std::to_string(n) + " would raise it to " +
                                           std::to_string(std::uint64_t{c} + n) + ", above its initial value " +
                                           std::to_string(initial_),
                                       "release only what was acquired");
    } while (!s_->count.compare_exchange_weak(c, c + n, std::memory_order_seq_cst, std::memory_order_relaxed));
    if (detail::must_wake(s_->sleepers)) detail::wake_sleepers(s_->count, s_->sleepers, static_cast<int>(n));
    return;
  }
  if (!detail::semaphore_give(*s_, n)) throw_overflow(n);
}

void Semaphore::throw_overflow(std::uint32_t n) const {
  detail::raise<InvalidArgument>(label_,
                                 "releasing " + std::to_string(n) + " to its count of " +
                                     std::to_string(s_->count.load(std::memory_order_relaxed)) +
                                     " would exceed the maximum " + std::to_string(detail::kSemaphoreMaxValue),
                                 "nothing was released (release only what was acquired)");
}

void Semaphore::release_tracked(std::uint32_t n) {
  {
    // No deadline: a release must happen (the lock is held for instructions,
    // and a dead holder's is taken over).
    detail::SideLock lock(s_->table_lock, detail::Deadline::never(), label_, kOnlyTheHolderIsInTheWay);
    if (lock.took_over()) repair_after_takeover();
    const auto& me = detail::this_thread();
    const int slot = detail::holders_find(s_->holders, detail::kSemaphoreHolderSlots, me.tid);
    const std::uint32_t mine = slot < 0 ? 0 : s_->holders[slot].units.load(std::memory_order_relaxed);
    if (mine < n)
      detail::raise<NotOwner>(label_, "this thread holds " + units(mine) + " and cannot release " + std::to_string(n),
                              "a semaphore that tracks holders is released by its holders");
    const std::uint32_t c = s_->count.load(std::memory_order_relaxed);
    if (std::uint64_t{c} + n > initial_)
      detail::raise_corrupt(label_, "its count " + std::to_string(c) + " and this thread's " + units(mine) +
                                        " exceed its initial value " + std::to_string(initial_));
    // The slot stays this thread's at 0 units (claim hands it on if needed).
    s_->holders[slot].units.store(mine - n, std::memory_order_relaxed);
    s_->count.store(c + n, std::memory_order_seq_cst);
  }
  if (detail::must_wake(s_->sleepers)) detail::wake_sleepers(s_->count, s_->sleepers, static_cast<int>(n));
}

// ------------------------------------------------------------------ the dead

// With the table lock just taken over from a dead holder: it may have died
// between its two stores, so the count is recomputed from the table.
void Semaphore::repair_after_takeover() {
  const std::uint64_t held = detail::holders_total(s_->holders, detail::kSemaphoreHolderSlots);
  if (held > initial_)
    detail::raise_corrupt(label_, "its holders hold " + units(held) + " of " + std::to_string(initial_));
  const auto c = static_cast<std::uint32_t>(initial_ - held);
  const std::uint32_t before = s_->count.exchange(c, std::memory_order_seq_cst);
  if (c > before && detail::must_wake(s_->sleepers))
    detail::wake_sleepers(s_->count, s_->sleepers, static_cast<int>(c - before));
}

// Looks for dead holders without the lock (that reads /proc), then frees
// the slots that still belong to them under it. Also takes the table lock
// when someone holds it: a holder of it that died half-way through a release
// left a unit out of the count, and only the lock's next holder repairs that
// (a live holder keeps it for instructions, so this rarely waits). Returns
// whether units came back.
bool Semaphore::reclaim_dead_holders(detail::Deadline deadline) {
  detail::DeadHolder dead[detail::kSemaphoreHolderSlots];
  const std::size_t found = detail::holders_find_dead(s_->holders, detail::kSemaphoreHolderSlots, dead);
  if (found == 0 && s_->table_lock.word.load(std::memory_order_relaxed) == 0) return false;
  std::uint32_t before = 0, after = 0;
  std::uint64_t back = 0;
  {
    detail::SideLock lock(s_->table_lock, deadline, label_, kOnlyTheHolderIsInTheWay);
    if (!lock.held()) return false;
    before = s_->count.load(std::memory_order_relaxed);
    if (lock.took_over()) repair_after_takeover();
    const std::uint32_t c = s_->count.load(std::memory_order_relaxed);
    // Only slots that still belong to the dead holders count (one may have
    // been freed by another reclaimer and claimed by a live thread since).
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < found; ++i) {
      const auto& h = s_->holders[dead[i].slot];
      if (h.tid.load(std::memory_order_relaxed) == dead[i].tid &&
          h.start_ticks.load(std::memory_order_relaxed) == dead[i].start_ticks)
        total += h.units.load(std::memory_order_relaxed);
    }
    if (c + total > initial_)
      detail::raise_corrupt(label_, "its count " + std::to_string(c) + " and the " + units(total) +
                                        " of dead holders exceed its initial value " + std::to_string(initial_));
    for (std::size_t i = 0; i < found; ++i) back += detail::holders_free_dead(s_->holders, dead[i]);
    after = static_cast<std::uint32_t>(c + back);
    if (back != 0) {
      s_->count.store(after, std::memory_order_seq_cst);
      s_->reclaimed.fetch_add(back, std::memory_order_relaxed);
    }
  }
  if (after <= before) return false;
  if (back != 0 && detail::must_wake(s_->sleepers))
    detail::wake_sleepers(s_->count, s_->sleepers, static_cast<int>(back));
  return true;
}

// ------------------------------------------------------------------ opening

namespace {

Semaphore open_semaphore(Segment& seg, std::string_view name, std::uint32_t initial, bool bounded,
                         SemaphoreOptions options) {
  const ObjectKind kind = bounded ? ObjectKind::BoundedSemaphore : ObjectKind::Semaphore;
  if (initial > detail::kSemaphoreMaxInitial)
    detail::raise<InvalidArgument>(detail::SegmentAccess::label(seg, kind, name),
                                   "initial value " + std::to_string(initial) + " is too large", "use at most 2^30");
  // Tracked and untracked semaphores are different types: mixing them up is a TypeMismatch.
  auto spec = options.track_holders ? detail::state_spec<detail::SemaphoreState>(
                                          kind, "ipckit::Semaphore(tracked)", detail::kTrackedSemaphoreLayout, initial)
                                    : detail::state_spec<detail::SemaphoreState>(kind, "ipckit::Semaphore",
                                                                                 detail::kSemaphoreLayout, initial);
  struct Init {
    std::uint32_t initial;
    bool bounded;
    bool tracked;
  } init{initial, bounded, options.track_holders};
  spec.init = [](void* body, const void* arg) {
    const auto& i = *static_cast<const Init*>(arg);
    auto* st = static_cast<detail::SemaphoreState*>(body);
    st->count.store(i.initial, std::memory_order_relaxed);
    st->initial = i.initial;
    st->bounded = i.bounded ? 1 : 0;
    st->track_holders = i.tracked ? 1 : 0;
  };
  spec.init_arg = &init;
  return detail::SegmentAccess::open<Semaphore, detail::SemaphoreState>(seg, name, spec);
}

}  // namespace

Semaphore Segment::semaphore(std::string_view name, std::uint32_t initial, SemaphoreOptions options) {
  return open_semaphore(*this, name, initial, false, options);
}

Semaphore Segment::bounded_semaphore(std::string_view name, std::uint32_t initial, SemaphoreOptions options) {
  return open_semaphore(*this, name, initial, true, options);
}

}  // namespace ipckit
