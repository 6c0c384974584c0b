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
    if (!detail::holders_remove(s_->holders, detail::kSemaphoreHolderSlots, me, n))
      throw NotOwner(label_, label_ + ": this thread holds " +
                                 std::to_string(detail::holders_count(s_->holders, detail::kSemaphoreHolderSlots, me)) +
                                 " unit(s) and cannot release " + std::to_string(n) +
                                 "; a semaphore that tracks holders is released by its holders");
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

void Semaphore::record_holder(std::uint32_t units) {
  if (detail::holders_add(s_->holders, detail::kSemaphoreHolderSlots, detail::this_thread(), units)) return;
  detail::semaphore_give(*s_, units);
  throw OutOfSpace(label_, label_ + ": " + std::to_string(detail::kSemaphoreHolderSlots) +
                               " threads hold units already, the most a tracked semaphore records; "
                               "use an untracked semaphore for more holders");
}

bool Semaphore::reclaim_dead_holders() {
  const std::uint64_t units = detail::holders_reclaim(s_->holders, detail::kSemaphoreHolderSlots);
  if (units == 0) return false;
  s_->reclaimed.fetch_add(units, std::memory_order_relaxed);
  detail::semaphore_give(*s_, static_cast<std::uint32_t>(units));
  return true;
}

}  // namespace ipckit
