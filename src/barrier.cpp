// Barrier: arrivals are counted under a (crash-safe) lock; waiters sleep on a
// change counter and, while they sleep, look for parties that died. A timed
// wait never waits for the lock past its deadline (see detail/barrier_state.hpp, Sealing).
// Also Segment::barrier, its factory.
#include "ipckit/barrier.hpp"

#include <array>
#include <atomic>
#include <climits>
#include <mutex>
#include <optional>
#include <string>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/detail/thread_id.hpp"
#include "ipckit/error.hpp"
#include "ipckit/segment.hpp"

namespace ipckit {
namespace {

// How long a waiter whose time is up still tries for the lock to record its
// timeout in order, before it breaks the barrier without the lock.
constexpr std::chrono::milliseconds kLockGrace{5};

// Whether a party slot records the calling process.
bool is_me(const detail::BarrierParty& p, const detail::ThreadIdentity& me) noexcept {
  return p.pid == static_cast<std::int32_t>(me.tid) && p.start_ticks == me.start_ticks;
}

// `arrived` is a plain field (the CLI reads it as one) written under the
// lock; n_waiting() reads it without: every access here is atomic.
std::atomic_ref<std::uint32_t> arrived(detail::BarrierState& s) noexcept { return std::atomic_ref(s.arrived); }

void bump(detail::BarrierState& s) noexcept { detail::publish_change(s.wake, s.sleepers, INT_MAX); }

std::uint32_t sealed(std::uint32_t round) noexcept {
  return detail::kBarrierSealed | (round & ~detail::kBarrierSealed);
}

// Whether a round is over for its waiters: advanced, or really broken (a
// sealed round is being completed).
bool round_over(const detail::BarrierState& s, std::uint32_t my_round) noexcept {
  return s.round.load(std::memory_order_acquire) != my_round ||
         detail::barrier_broken(s.broken.load(std::memory_order_acquire));
}

}  // namespace

Barrier::Barrier(detail::BarrierState* s, std::shared_ptr<const void> keepalive, detail::Label label,
                 BarrierOptions options)
    : s_(s),
      parties_(s->parties),
      keep_(std::move(keepalive)),
      label_(std::move(label)),
      action_(std::move(options.action)),
      timeout_(options.timeout) {
  if (parties_ < 1 || parties_ > detail::kBarrierMaxParties)
    throw_corrupt("its shared party count is " + std::to_string(parties_) + ", outside 1.." +
                  std::to_string(detail::kBarrierMaxParties));
}

void Barrier::throw_corrupt(const std::string& what) const {
  detail::raise<CorruptSegment>(label_, what,
                                "its shared state was overwritten (a stray write by a process using the "
                                "segment?): recreate the segment");
}

// Called with the lock held.
void Barrier::break_locked(detail::BreakReason why) noexcept {
  s_->broken.store(static_cast<std::uint32_t>(why), std::memory_order_seq_cst);
  bump(*s_);
}

// Breaks the current round without the lock, unless it is broken already
// or sealed (being completed). True if this call broke it.
bool Barrier::break_unlocked(detail::BreakReason why) noexcept {
  std::uint32_t expected = 0;
  if (!s_->broken.compare_exchange_strong(expected, static_cast<std::uint32_t>(why), std::memory_order_seq_cst))
    return false;
  bump(*s_);
  return true;
}

// Called with the lock held: the round sealed for `round` is complete.
void Barrier::finish_round_locked(std::uint32_t round) noexcept {
  arrived(*s_).store(0, std::memory_order_relaxed);
  s_->round.store(round + 1, std::memory_order_seq_cst);
  s_->broken.store(0, std::memory_order_seq_cst);
  bump(*s_);
}

// Called holding a lock taken over from a holder that died.
void Barrier::recover_locked() noexcept {
  const std::uint32_t b = s_->broken.load(std::memory_order_acquire);
  if ((b & detail::kBarrierSealed) != 0) {
    // It died completing a round: finish it (advance `round` only if it had not).
    const std::uint32_t round = s_->round.load(std::memory_order_acquire);
    const std::uint32_t sealed_round = b & ~detail::kBarrierSealed;
    finish_round_locked((round & ~detail::kBarrierSealed) == sealed_round ? round : round - 1);
    return;
  }
  // Every party had arrived: the last one died before sealing, running the
  // action. Else it died elsewhere inside an operation: the arrival count may
  // be off by one. Either way say so to everyone rather than guess.
  const bool tripping = arrived(*s_).load(std::memory_order_relaxed) == parties_;
  break_locked(tripping ? detail::BreakReason::ActionDied : detail::BreakReason::DiedInWait);
}

// Takes the lock by `deadline` and repairs what a dead holder left. False on deadline.
bool Barrier::lock_by(Lock& lock, detail::Deadline deadline) {
  if (!lock.try_lock_by(deadline)) return false;
  if (lock.owner_died()) {
    recover_locked();
    lock.mark_consistent();
  }
  return true;
}

void Barrier::throw_broken() const {
  const std::uint32_t reason = s_->broken.load(std::memory_order_acquire);
  // By BreakReason. Not broken any more (None, or sealed for a new round):
  // the round this waiter was in was reset under it.
  static constexpr std::array<const char*, 7> kWhy = {
      "it was reset while parties waited",            // None
      "a wait timed out",                             // Timeout
      "abort() was called",                           // Aborted
      "a party died before arriving",                 // PartyDied
      "a party died inside wait()",                   // DiedInWait
      "its action threw (in the party that ran it)",  // ActionFailed
      "the party running its action died",            // ActionDied
  };
  static_assert(kWhy.size() == static_cast<std::size_t>(detail::BreakReason::ActionDied) + 1, "one per BreakReason");
  const char* why = reason < kWhy.size() ? kWhy[reason] : kWhy[0];
  throw BrokenBarrier(label_.object, label_.segment,
                      label_.text + " is broken: " + why + "; call reset() before using it again");
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

// Called with the lock held: registers the caller and counts its arrival.
// Returns its index; sets `my_round`. Completes the round if it is the last.
std::uint32_t Barrier::arrive_locked(std::uint32_t& my_round) {
  if (detail::barrier_broken(s_->broken.load(std::memory_order_relaxed))) throw_broken();
  const std::uint32_t shared_parties = s_->parties;
  if (shared_parties != parties_)
    throw_corrupt("its shared party count changed from " + std::to_string(parties_) + " to " +
                  std::to_string(shared_parties));
  const std::uint32_t waiting = arrived(*s_).load(std::memory_order_relaxed);
  if (waiting >= parties_)
    throw_corrupt(std::to_string(waiting) + " parties are recorded as waiting, of " + std::to_string(parties_));
  my_round = s_->round.load(std::memory_order_relaxed);
  // Register as a party of this round (see barrier.hpp for the rule).
  const detail::ThreadIdentity me = detail::this_process();
  detail::BarrierParty* slot = nullptr;
  for (auto& p : s_->party) {
    if (is_me(p, me)) {
      slot = &p;
      break;
    }
    if (slot == nullptr &&
        (p.pid == 0 || (p.last_round + 1 < my_round && detail::process_start_ticks(p.pid) != p.start_ticks)))
      slot = &p;
  }
  if (slot != nullptr) {
    slot->pid = static_cast<std::int32_t>(me.tid);
    slot->start_ticks = me.start_ticks;
    slot->last_round = my_round;
  }
  const std::uint32_t index = waiting;
  arrived(*s_).store(waiting + 1, std::memory_order_relaxed);
  if (waiting + 1 == parties_) trip_locked(my_round, index);
  return index;
}

// Called with the lock held by the last arrival, `index`: runs the action,
// then seals and completes the round (see detail/barrier_state.hpp, Sealing). Throws what
// the action threw (having broken the round), or BrokenBarrier if the round
// was broken without the lock meanwhile.
void Barrier::trip_locked(std::uint32_t my_round, std::uint32_t index) {
  if (action_) {
    try {
      action_();
    } catch (...) {
      arrived(*s_).store(index, std::memory_order_relaxed);
      break_unlocked(detail::BreakReason::ActionFailed);  // unless a timeout or abort() broke it first
      throw;
    }
  }
  std::uint32_t expected = 0;
  if (!s_->broken.compare_exchange_strong(expected, sealed(my_round), std::memory_order_seq_cst)) {
    arrived(*s_).store(index, std::memory_order_relaxed);  // broken without the lock just now: over for all
    throw_broken();
  }
  finish_round_locked(my_round);
}

// How round `my_round` ended for a party that arrived in it with `index`.
std::uint32_t Barrier::outcome(std::uint32_t my_round, std::uint32_t index) const {
  const std::uint32_t round = s_->round.load(std::memory_order_acquire);
  if (round != my_round) {
    if (s_->broken_round.load(std::memory_order_acquire) != my_round + 1) return index;
    throw_broken();  // reset() while it waited
  }
  // Sealed: the last party arrived and is completing the round.
  if ((s_->broken.load(std::memory_order_acquire) & detail::kBarrierSealed) != 0) return index;
  throw_broken();
}

Lock Barrier::internal_lock() const {
  return detail::SegmentAccess::make<Lock>(&s_->lock, keep_, label_.part("its lock"));
}

std::uint32_t Barrier::wait_by(detail::Deadline deadline) {
  Lock lock = internal_lock();
  std::uint32_t my_round = 0;
  std::uint32_t index = 0;
  if (!lock_by(lock, deadline)) {
    // It could not even arrive in time: a timeout all the same, which
    // breaks the barrier (as in Python); done without the lock.
    break_unlocked(detail::BreakReason::Timeout);
    std::string who = "another thread";
    if (auto h = lock.holder()) who = "pid " + std::to_string(h->pid) + (h->alive ? " (alive: stopped?)" : " (dead)");
    detail::raise<BrokenBarrier>(label_, "wait() timed out before it could arrive: its internal lock is held by " + who,
                                 "the barrier is broken; call reset() before using it again");
  }
  {
    std::lock_guard g(lock, std::adopt_lock);
    index = arrive_locked(my_round);
    if (s_->round.load(std::memory_order_relaxed) != my_round) return index;  // it was the last
  }

  const auto on_tick = [&] {
    // A dead missing party, or a holder of the lock that died (perhaps while
    // completing this round): take the lock (never past the deadline) to act.
    const auto holder = lock.locked() ? lock.holder() : std::nullopt;
    if (!missing_party_died(my_round) && !(holder && !holder->alive)) return;
    if (!lock_by(lock, deadline)) return;
    std::lock_guard g(lock, std::adopt_lock);
    if (s_->round.load() == my_round && missing_party_died(my_round)) break_locked(detail::BreakReason::PartyDied);
  };
  const bool over = detail::wait_for_change(
      s_->wake, s_->sleepers, [&] { return round_over(*s_, my_round); }, deadline, detail::kLivenessInterval, on_tick);
  if (!over) {
    // Time is up: break the round, in order under the lock if it can be had
    // at once, else without it (its holder may be stopped).
    if (lock_by(lock, detail::Deadline::after(kLockGrace))) {
      std::lock_guard g(lock, std::adopt_lock);
      if (!round_over(*s_, my_round)) break_locked(detail::BreakReason::Timeout);
    } else if (s_->round.load(std::memory_order_acquire) == my_round) {
      // Should the round complete between this check and the CAS, the break
      // lands on the next round instead: that one is then broken for all of
      // its parties alike, and this one completed for all of its own.
      break_unlocked(detail::BreakReason::Timeout);
    }
  }
  return outcome(my_round, index);
}

void Barrier::abort() noexcept {
  // Without the lock: a process stopped holding it must not hold up abort().
  std::uint32_t b = s_->broken.load(std::memory_order_acquire);
  while ((b & detail::kBarrierSealed) == 0) {
    if (s_->broken.compare_exchange_weak(b, static_cast<std::uint32_t>(detail::BreakReason::Aborted),
                                         std::memory_order_seq_cst)) {
      bump(*s_);
      return;
    }
  }
  // A round is being completed: abort breaks the next one, once it has.
  Lock lock = internal_lock();
  try {
    lock_by(lock, detail::Deadline::never());
    break_locked(detail::BreakReason::Aborted);
    lock.unlock();
  } catch (...) {
    // Locking cannot fail here but for a deadlock with ourselves; break anyway.
    break_locked(detail::BreakReason::Aborted);
  }
}

bool Barrier::reset_by(detail::Deadline deadline) {
  Lock lock = internal_lock();
  if (!lock_by(lock, deadline)) return false;
  std::lock_guard g(lock, std::adopt_lock);
  const std::uint32_t round = s_->round.load(std::memory_order_relaxed);
  // Whoever waits in the current round (broken or not) ends with BrokenBarrier.
  if (arrived(*s_).load(std::memory_order_relaxed) > 0 || s_->broken.load(std::memory_order_relaxed) != 0) {
    s_->broken_round.store(round + 1, std::memory_order_seq_cst);
    s_->round.store(round + 1, std::memory_order_seq_cst);
  }
  arrived(*s_).store(0, std::memory_order_relaxed);
  s_->broken.store(0, std::memory_order_seq_cst);
  // Back to the initial state: who took part before the reset is forgotten.
  for (auto& p : s_->party) p = detail::BarrierParty{};
  bump(*s_);
  return true;
}

bool Barrier::leave_by(detail::Deadline deadline) {
  Lock lock = internal_lock();
  if (!lock_by(lock, deadline)) return false;
  std::lock_guard g(lock, std::adopt_lock);
  const detail::ThreadIdentity me = detail::this_process();
  for (auto& p : s_->party)
    if (is_me(p, me)) p = detail::BarrierParty{};
  return true;
}

std::uint32_t Barrier::n_waiting() const noexcept {
  return broken() ? 0 : arrived(*s_).load(std::memory_order_relaxed);
}

Barrier Segment::barrier(std::string_view name, std::uint32_t parties, BarrierOptions options) {
  if (parties < 1 || parties > detail::kBarrierMaxParties)
    detail::raise<InvalidArgument>(label_of(ObjectKind::Barrier, name),
                                   std::to_string(parties) + " parties is out of range",
                                   "use 1 to " + std::to_string(detail::kBarrierMaxParties));
  auto spec =
      detail::state_spec<detail::BarrierState>(ObjectKind::Barrier, "ipckit::Barrier", detail::kBarrierLayout, parties);
  spec.init = [](void* body, const void* arg) {
    static_cast<detail::BarrierState*>(body)->parties = *static_cast<const std::uint32_t*>(arg);
  };
  spec.init_arg = &parties;
  return detail::SegmentAccess::make<Barrier>(static_cast<detail::BarrierState*>(find_or_create(name, spec)),
                                              keepalive(), label_of(ObjectKind::Barrier, name), std::move(options));
}

}  // namespace ipckit
