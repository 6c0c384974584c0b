// Condition: a notification counter that waiters sleep on after releasing
// the bound lock. No per-waiter state, so a dead waiter swallows nothing.
#include "ipckit/condition.hpp"

#include <climits>

#include "ipckit/error.hpp"

namespace ipckit {

Condition::Condition(detail::ConditionState* s, detail::LockState* lock, bool reentrant,
                     std::shared_ptr<const void> keepalive, std::string label)
    : s_(s),
      lock_(lock),
      reentrant_(reentrant),
      keep_(std::move(keepalive)),
      label_(std::move(label)),
      plain_(lock, keep_, label_ + " (its lock)"),
      rlock_(lock, keep_, label_ + " (its lock)") {}

void Condition::lock() {
  if (reentrant_) rlock_.lock();
  else plain_.lock();
}

bool Condition::try_lock() { return reentrant_ ? rlock_.try_lock() : plain_.try_lock(); }

void Condition::unlock() {
  if (reentrant_) rlock_.unlock();
  else plain_.unlock();
}

bool Condition::owner_died() const noexcept { return plain_.owner_died(); }

bool Condition::wait_impl(detail::Deadline deadline) {
  const auto& me = detail::this_thread();
  if (!detail::owned_by(*lock_, me))
    throw NotOwner(label_, label_ + ": wait() needs the condition's lock held by this thread; take it first "
                                    "(std::unique_lock g(condition))");
  // Read the counter before letting go of the lock: a notify that comes
  // after the release changes it, so it cannot slip by unseen.
  const std::uint32_t seen = s_->seq.load(std::memory_order_seq_cst);
  const std::uint32_t depth = lock_->depth;
  detail::unlock_owned(*lock_);
  const bool notified = detail::wait_for_change(
      s_->seq, s_->sleepers, [&] { return s_->seq.load(std::memory_order_acquire) != seen; }, deadline,
      std::chrono::seconds(1), [] {});
  // Re-acquire without a deadline, as Python does; a dead holder's lock is
  // taken over and reported through owner_died().
  if (!detail::try_lock_fast(*lock_, me)) detail::lock_slow(*lock_, me, std::nullopt, reentrant_, label_.c_str());
  lock_->depth = depth;
  return notified;
}

void Condition::wait() { wait_impl(std::nullopt); }

bool Condition::wait_for(std::chrono::nanoseconds timeout) {
  return wait_impl(std::chrono::steady_clock::now() + timeout);
}

void Condition::notify(int n) noexcept {
  if (n > 0) detail::publish_change(s_->seq, s_->sleepers, n);
}

void Condition::notify_all() noexcept { detail::publish_change(s_->seq, s_->sleepers, INT_MAX); }

}  // namespace ipckit
