// Barrier: arrivals are counted under a (crash-safe) lock; waiters sleep on a
// change counter and, while they sleep, look for parties that died.
#include "ipckit/barrier.hpp"

#include <unistd.h>

#include <climits>
#include <mutex>
#include <string>

#include "ipckit/error.hpp"
#include "ipckit/lock.hpp"

namespace ipckit {
namespace {

struct ProcessIdentity {
  int pid;
  std::uint64_t start_ticks;
};

ProcessIdentity this_process() {
  static thread_local ProcessIdentity cached{0, 0};
  const int pid = ::getpid();
  if (cached.pid != pid) cached = {pid, detail::process_start_ticks(pid)};
  return cached;
}

void bump(detail::BarrierState& s) noexcept { detail::publish_change(s.wake, s.sleepers, INT_MAX); }

}  // namespace

// Called with the lock held.
void Barrier::break_locked(detail::BreakReason why) noexcept {
  s_->broken.store(static_cast<std::uint32_t>(why), std::memory_order_seq_cst);
  bump(*s_);
}

void Barrier::throw_broken() const {
  using detail::BreakReason;
  std::string why;
  switch (static_cast<BreakReason>(s_->broken.load(std::memory_order_acquire))) {
    case BreakReason::Timeout: why = "a wait timed out"; break;
    case BreakReason::Aborted: why = "abort() was called"; break;
    case BreakReason::PartyDied: why = "a party died before arriving"; break;
    case BreakReason::DiedInWait: why = "a party died inside wait()"; break;
    default: why = "it was reset while parties waited"; break;
  }
  throw BrokenBarrier(label_, label_ + " is broken: " + why + "; call reset() before using it again");
}

// A party that arrived in the previous round, has not arrived in this one
// and is dead can never arrive: the round cannot complete.
bool Barrier::missing_party_died(std::uint32_t round) const noexcept {
  if (round == 0) return false;
  for (const auto& p : s_->party) {
    if (p.pid == 0 || p.last_round != round - 1) continue;
    if (detail::process_start_ticks(p.pid) != p.start_ticks) return true;
  }
  return false;
}

std::uint32_t Barrier::wait_impl(detail::Deadline deadline) {
  Lock lock(&s_->lock, keep_, label_ + " (its lock)");
  const ProcessIdentity me = this_process();
  std::uint32_t my_round = 0;
  std::uint32_t index = 0;
  {
    std::lock_guard g(lock);
    if (lock.owner_died()) {
      // A process died inside wait() with the lock held: the arrival count
      // may be off by one. Say so to everyone rather than guess.
      break_locked(detail::BreakReason::DiedInWait);
      lock.mark_consistent();
    }
    if (s_->broken.load(std::memory_order_relaxed) != 0) throw_broken();
    my_round = s_->round.load(std::memory_order_relaxed);
    // Register as a party of this round (see barrier.hpp for the rule).
    detail::BarrierParty* slot = nullptr;
    for (auto& p : s_->party) {
      if (p.pid == me.pid && p.start_ticks == me.start_ticks) { slot = &p; break; }
      if (slot == nullptr && (p.pid == 0 || (p.last_round + 1 < my_round && detail::process_start_ticks(p.pid) != p.start_ticks)))
        slot = &p;
    }
    if (slot != nullptr) {
      slot->pid = me.pid;
      slot->start_ticks = me.start_ticks;
      slot->last_round = my_round;
    }
    index = s_->arrived++;
    if (s_->arrived == s_->parties) {
      s_->arrived = 0;
      s_->round.store(my_round + 1, std::memory_order_seq_cst);
      bump(*s_);
      return index;
    }
  }

  const auto round_over = [&] {
    return s_->round.load(std::memory_order_acquire) != my_round || s_->broken.load(std::memory_order_acquire) != 0;
  };
  const bool over = detail::wait_for_change(s_->wake, s_->sleepers, round_over, deadline, detail::kLivenessInterval,
                                            [&] {
                                              if (!missing_party_died(my_round)) return;
                                              std::lock_guard g(lock);
                                              if (s_->round.load() == my_round) break_locked(detail::BreakReason::PartyDied);
                                            });
  if (!over) {
    std::lock_guard g(lock);
    if (s_->round.load() == my_round) break_locked(detail::BreakReason::Timeout);
  }
  const std::uint32_t round = s_->round.load(std::memory_order_acquire);
  const bool completed = round != my_round && s_->broken_round.load(std::memory_order_acquire) != my_round + 1;
  if (completed) return index;
  throw_broken();
}

std::uint32_t Barrier::wait() { return wait_impl(std::nullopt); }

std::uint32_t Barrier::wait(std::chrono::nanoseconds timeout) {
  return wait_impl(std::chrono::steady_clock::now() + timeout);
}

void Barrier::abort() noexcept {
  Lock lock(&s_->lock, keep_, label_);
  try {
    std::lock_guard g(lock);
    break_locked(detail::BreakReason::Aborted);
  } catch (...) {
    // Locking cannot fail here but for a deadlock with ourselves; break anyway.
    break_locked(detail::BreakReason::Aborted);
  }
}

void Barrier::reset() {
  Lock lock(&s_->lock, keep_, label_ + " (its lock)");
  std::lock_guard g(lock);
  const std::uint32_t round = s_->round.load(std::memory_order_relaxed);
  // Whoever waits in the current round (broken or not) ends with BrokenBarrier.
  if (s_->arrived > 0 || s_->broken.load(std::memory_order_relaxed) != 0) {
    s_->broken_round.store(round + 1, std::memory_order_seq_cst);
    s_->round.store(round + 1, std::memory_order_seq_cst);
  }
  s_->arrived = 0;
  s_->broken.store(0, std::memory_order_seq_cst);
  // Back to the initial state: who took part before the reset is forgotten.
  for (auto& p : s_->party) p = detail::BarrierParty{};
  if (lock.owner_died()) lock.mark_consistent();
  bump(*s_);
}

void Barrier::leave() {
  Lock lock(&s_->lock, keep_, label_ + " (its lock)");
  std::lock_guard g(lock);
  const ProcessIdentity me = this_process();
  for (auto& p : s_->party)
    if (p.pid == me.pid && p.start_ticks == me.start_ticks) p = detail::BarrierParty{};
}

std::uint32_t Barrier::n_waiting() const noexcept { return s_->arrived; }

}  // namespace ipckit
