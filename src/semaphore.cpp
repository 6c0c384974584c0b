// Semaphore: the count is the futex word; tracked semaphores also keep a
// table of holders so that a dead holder's units can be given back.
#include "ipckit/semaphore.hpp"

#include <string>

#include "ipckit/detail/lock_state.hpp"
#include "ipckit/error.hpp"

namespace ipckit {
namespace {

using detail::semaphore_try_take;

}  // namespace

bool Semaphore::acquire_until(detail::Deadline deadline) {
  const bool tracked = s_->track_holders != 0;
  bool got = semaphore_try_take(*s_);
  if (!got && tracked && reclaim_dead_holders()) got = semaphore_try_take(*s_);
  if (!got) {
    // Only a tracked semaphore has dead holders to look for while it sleeps.
    const std::chrono::nanoseconds tick = tracked ? std::chrono::nanoseconds(detail::kLivenessInterval)
                                                  : std::chrono::nanoseconds(std::chrono::seconds(1));
    got = detail::wait_for_change(s_->count, s_->sleepers, [this] { return semaphore_try_take(*s_); }, deadline,
                                  tick, [this, tracked] {
                                    if (tracked) reclaim_dead_holders();
                                  });
  }
  if (got && tracked) record_holder(1);
  return got;
}

bool Semaphore::acquire(std::chrono::nanoseconds timeout) {
  return acquire_until(std::chrono::steady_clock::now() + timeout);
}
bool Semaphore::try_acquire() { return acquire_until(std::chrono::steady_clock::time_point::min()); }

void Semaphore::release_checked(std::uint32_t n) {
  if (n == 0) throw InvalidArgument(label_, label_ + ": release(0) gives nothing back; release at least one unit");
  if (s_->track_holders != 0) {
    const auto& me = detail::this_thread();
    detail::SemaphoreHolder* mine = nullptr;
    for (auto& h : s_->holders)
      if (h.tid.load(std::memory_order_acquire) == me.tid) mine = &h;
    const std::uint32_t held = mine != nullptr ? mine->units : 0;
    if (held < n)
      throw NotOwner(label_, label_ + ": this thread holds " + std::to_string(held) + " unit(s) and cannot release " +
                                 std::to_string(n) + "; a semaphore that tracks holders is released by its holders");
    mine->units -= n;
    if (mine->units == 0) mine->tid.store(0, std::memory_order_release);
  }
  if (s_->bounded != 0) {
    std::uint32_t c = s_->count.load(std::memory_order_relaxed);
    do {
      if (std::uint64_t{c} + n > s_->initial)
        throw TooManyReleases(label_, label_ + ": releasing " + std::to_string(n) + " would raise it to " +
                                          std::to_string(std::uint64_t{c} + n) + ", above its initial value " +
                                          std::to_string(s_->initial) + "; release only what was acquired");
    } while (!s_->count.compare_exchange_weak(c, c + n, std::memory_order_seq_cst, std::memory_order_relaxed));
    if (s_->sleepers.load(std::memory_order_seq_cst) != 0) detail::futex_wake(s_->count, static_cast<int>(n));
    return;
  }
  detail::semaphore_give(*s_, n);
}

// Holder slots are claimed by CAS on their tid; `units` is written only by
// the holding thread while it lives, and by one reclaimer after it died.
void Semaphore::record_holder(std::uint32_t units) {
  const auto& me = detail::this_thread();
  for (auto& h : s_->holders) {
    if (h.tid.load(std::memory_order_acquire) == me.tid) {
      h.units += units;
      return;
    }
  }
  for (auto& h : s_->holders) {
    // Claim with a marker first: until start_ticks is ours, a reclaimer
    // must not judge this holder by the previous holder's start time.
    std::uint32_t free = 0;
    if (h.tid.compare_exchange_strong(free, me.tid | detail::kHolderClaiming, std::memory_order_acq_rel)) {
      h.start_ticks = me.start_ticks;
      h.units = units;
      h.tid.store(me.tid, std::memory_order_release);
      return;
    }
  }
  detail::semaphore_give(*s_, units);
  throw OutOfSpace(label_, label_ + ": " + std::to_string(detail::kSemaphoreHolderSlots) +
                               " threads hold units already, the most a tracked semaphore records; "
                               "use an untracked semaphore for more holders");
}

bool Semaphore::reclaim_dead_holders() {
  bool any = false;
  for (auto& h : s_->holders) {
    std::uint32_t tid = h.tid.load(std::memory_order_acquire);
    if (tid == 0) continue;
    const bool claiming = (tid & detail::kHolderClaiming) != 0;
    if (detail::thread_alive(tid & ~detail::kHolderClaiming, claiming ? 0 : h.start_ticks)) continue;
    // A dead holder's count no longer changes: read it before freeing the
    // slot, since a new holder may claim the slot right after.
    const std::uint32_t units = claiming ? 0 : h.units;
    if (!h.tid.compare_exchange_strong(tid, 0, std::memory_order_acq_rel)) continue;  // another reclaimer won
    if (units == 0) continue;
    s_->reclaimed.fetch_add(units, std::memory_order_relaxed);
    detail::semaphore_give(*s_, units);
    any = true;
  }
  return any;
}

}  // namespace ipckit
