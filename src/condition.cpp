// Condition: every waiter holds a slot of a table in the shared state and a
// notification is handed to one slot by CAS (see detail/condition_state.hpp).
#include "ipckit/condition.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "ipckit/detail/segment_access.hpp"
#include "ipckit/error.hpp"

namespace ipckit {
namespace detail {
namespace {

constexpr std::chrono::milliseconds kConditionTick{50};   // a sleeper's liveness tick
constexpr std::chrono::milliseconds kConditionSweep{50};  // at most one sweep per this

std::uint32_t notify_slots(ConditionState& s, std::uint32_t before, std::uint32_t n, bool check_alive) noexcept;

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Slots [0, high) may be in use. Notifiers are noexcept: a corrupt value is
// clamped here (waiters check it and throw, see Condition::enlist).
std::uint32_t used_slots(const ConditionState& s) noexcept {
  return std::min(s.high.load(std::memory_order_acquire), kConditionSlots);
}

// Whether the owner of `slot`, whose word was `word`, is dead; `tid` gets
// the owner as recorded. The owner writes tid and start time before it
// publishes its word, and they change only after the word went FREE, so
// the word unchanged after reading them means they are the owner's.
bool owner_dead(const ConditionSlot& slot, std::uint32_t word, std::uint32_t& tid) noexcept {
  tid = slot.tid.load(std::memory_order_acquire);
  const std::uint64_t start = slot.start_ticks.load(std::memory_order_acquire);
  if (tid == 0 || slot.word.load(std::memory_order_acquire) != word) return false;
  const bool claiming = (tid & kWaiterClaiming) != 0;
  return !thread_alive(tid & ~kWaiterClaiming, claiming ? 0 : start);
}

// Frees the slot of a dead owner, word first (as its owner would), so that
// a free tid always means a free word. False if the word moved meanwhile.
bool reclaim(ConditionSlot& slot, std::uint32_t word, std::uint32_t tid) noexcept {
  if (word != kWaiterFree && !slot.word.compare_exchange_strong(word, kWaiterFree, std::memory_order_acq_rel))
    return false;
  slot.tid.compare_exchange_strong(tid, 0, std::memory_order_acq_rel);
  return true;
}

// A notification taken from a dead slot goes to a live waiter that was
// waiting when it was sent (ticket before `before`), else to the overflow
// waiters, else nowhere (nobody who could have had it is left).
void pass_on(ConditionState& s, std::uint32_t before) noexcept {
  if (notify_slots(s, before, 1, true) == 0 && s.overflow.load(std::memory_order_seq_cst) != 0)
    publish_change(s.overflow_seq, s.sleepers, INT_MAX);
}

// Moves the WAITING word `seen` of `slot` to NOTIFIED (carrying `before`),
// waking its owner if it sleeps. False if the word moved first.
bool hand_over(ConditionSlot& slot, std::uint32_t& seen, std::uint32_t before) noexcept {
  if (!slot.word.compare_exchange_strong(seen, slot_word(before, kWaiterNotified), std::memory_order_acq_rel))
    return false;
  if ((seen & kWaiterSleeping) != 0) futex_wake(slot.word, 1);
  return true;
}

// Hands up to `n` notifications to the longest-waiting slots whose ticket is
// before `before`; with `check_alive`, skips (and reclaims) dead owners.
// Returns how many were handed out.
std::uint32_t notify_slots(ConditionState& s, std::uint32_t before, std::uint32_t n, bool check_alive) noexcept {
  const std::uint32_t used = used_slots(s);
  std::uint32_t handed = 0;
  if (n >= used && !check_alive) {
    // Everyone who waits before `before` gets one: no need to rank them.
    for (std::uint32_t i = 0; i < used; ++i) {
      ConditionSlot& slot = s.slot[i];
      std::uint32_t w = slot.word.load(std::memory_order_acquire);
      while (slot_status(w) == kWaiterWaiting && ticket_age(slot_ticket(w), before) != 0) {
        if (hand_over(slot, w, before)) {
          ++handed;
          break;
        }
      }
    }
    return handed;
  }
  while (handed < n) {
    // The longest-waiting eligible slot (tickets say who came first).
    ConditionSlot* best = nullptr;
    std::uint32_t best_word = 0;
    std::uint32_t best_age = 0;
    for (std::uint32_t i = 0; i < used; ++i) {
      const std::uint32_t w = s.slot[i].word.load(std::memory_order_acquire);
      if (slot_status(w) != kWaiterWaiting) continue;
      const std::uint32_t age = ticket_age(slot_ticket(w), before);
      if (age > best_age) {
        best = &s.slot[i];
        best_word = w;
        best_age = age;
      }
    }
    if (best == nullptr) break;
    std::uint32_t tid = 0;
    if (check_alive && owner_dead(*best, best_word, tid)) {
      reclaim(*best, best_word, tid);
      continue;
    }
    if (hand_over(*best, best_word, before)) ++handed;
    // else its word moved (withdrawn, asleep, notified by another): rank again
  }
  return handed;
}

// Passes on the notifications that dead waiters were given, at most once per
// kConditionSweep over all callers.
void sweep_dead_notified(ConditionState& s) noexcept {
  // One sweeper per interval, whoever ticks first. A corrupt (future) stamp
  // must not stop the sweeps: only a recent past one defers them.
  const std::int64_t now = steady_ns();
  std::int64_t last = s.last_sweep.load(std::memory_order_relaxed);
  const std::int64_t since = now - last;
  if (since >= 0 && since < std::chrono::nanoseconds(kConditionSweep).count()) return;
  if (!s.last_sweep.compare_exchange_strong(last, now, std::memory_order_relaxed)) return;
  const std::uint32_t used = used_slots(s);
  for (std::uint32_t i = 0; i < used; ++i) {
    ConditionSlot& slot = s.slot[i];
    const std::uint32_t w = slot.word.load(std::memory_order_acquire);
    if (slot_status(w) != kWaiterNotified) continue;  // only these can hold a notification
    std::uint32_t tid = 0;
    if (!owner_dead(slot, w, tid) || !reclaim(slot, w, tid)) continue;
    pass_on(s, slot_ticket(w));
  }
}

// Frees the slots of every dead owner (passing on their notifications);
// for a waiter that found the table full.
void reclaim_dead_slots(ConditionState& s) noexcept {
  for (ConditionSlot& slot : s.slot) {
    const std::uint32_t tid = slot.tid.load(std::memory_order_acquire);
    if (tid == 0) continue;
    const std::uint32_t w = slot.word.load(std::memory_order_acquire);
    std::uint32_t owner = 0;
    if (!owner_dead(slot, w, owner) || owner != tid) continue;
    if (!reclaim(slot, w, tid)) continue;
    if (slot_status(w) == kWaiterNotified) pass_on(s, slot_ticket(w));
  }
}

}  // namespace
}  // namespace detail

Condition::Condition(detail::ConditionState* s, detail::LockState* lock, bool reentrant,
                     std::shared_ptr<const void> keepalive, detail::Label label)
    : s_(s),
      lock_(lock),
      reentrant_(reentrant),
      keep_(std::move(keepalive)),
      label_(std::move(label)),
      plain_(detail::SegmentAccess::make<Lock>(lock, keep_, label_.part("its lock"))),
      rlock_(detail::SegmentAccess::make<RLock>(lock, keep_, label_.part("its lock"))) {}

void Condition::lock() {
  if (reentrant_)
    rlock_.lock();
  else
    plain_.lock();
}

bool Condition::try_lock() { return reentrant_ ? rlock_.try_lock() : plain_.try_lock(); }

void Condition::unlock() {
  if (reentrant_)
    rlock_.unlock();
  else
    plain_.unlock();
}

bool Condition::owner_died() const noexcept { return plain_.owner_died(); }

// Called holding the lock, so tickets are drawn in the order waiters came.
Condition::Enlisted Condition::enlist(const detail::ThreadIdentity& me) {
  using namespace detail;
  ConditionState& s = *s_;
  const std::uint32_t high = s.high.load(std::memory_order_relaxed);
  if (high > kConditionSlots)
    detail::raise_corrupt(label_, "its waiter table claims " + std::to_string(high) + " slots in use, more than the " +
                                      std::to_string(kConditionSlots) + " it has");
  const auto claim = [&]() -> int {
    for (std::uint32_t i = 0; i < kConditionSlots; ++i) {
      ConditionSlot& slot = s.slot[i];
      std::uint32_t free = 0;
      if (slot.tid.load(std::memory_order_relaxed) != 0 ||
          !slot.tid.compare_exchange_strong(free, me.tid | kWaiterClaiming, std::memory_order_acq_rel))
        continue;
      // Until the start time is ours, a reclaimer judges the claim by the tid alone.
      slot.start_ticks.store(me.start_ticks, std::memory_order_relaxed);
      slot.tid.store(me.tid, std::memory_order_release);
      if (slot.word.load(std::memory_order_acquire) != kWaiterFree) {
        slot.tid.store(0, std::memory_order_release);
        detail::raise_corrupt(label_, "waiter slot " + std::to_string(i) + " is owned by nobody but not free");
      }
      return static_cast<int>(i);
    }
    return -1;
  };
  int i = claim();
  if (i < 0) {
    reclaim_dead_slots(s);
    i = claim();
  }
  if (i < 0) {
    s.overflow.fetch_add(1, std::memory_order_seq_cst);
    return {-1, s.overflow_seq.load(std::memory_order_seq_cst)};
  }
  const auto index = static_cast<std::uint32_t>(i);
  if (index >= high) s.high.store(index + 1, std::memory_order_release);
  const std::uint32_t ticket = s.tickets.fetch_add(1, std::memory_order_relaxed);
  const std::uint32_t word = slot_word(ticket, kWaiterWaiting);
  s.slot[index].word.store(word, std::memory_order_seq_cst);
  return {i, word};
}

Condition::WaitEnd Condition::sleep_in_slot(const Enlisted& e, detail::Deadline deadline) noexcept {
  using namespace detail;
  ConditionSlot& slot = s_->slot[e.slot];
  std::uint32_t mine = e.word;  // gains kWaiterSleeping before the first sleep
  if (!deadline.passed()) spin_until([&] { return slot.word.load(std::memory_order_acquire) != mine; });
  detail::WaitScope shown;  // shown in the process table once spinning failed
  for (;;) {
    std::uint32_t seen = slot.word.load(std::memory_order_acquire);
    if (seen != mine) {
      if (slot_status(seen) != kWaiterNotified) return WaitEnd::Corrupt;  // not ours to touch any more
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (deadline.passed(now)) {
      // Withdraw; losing this CAS means a notification just arrived: take it.
      if (!slot.word.compare_exchange_strong(seen, kWaiterFree, std::memory_order_acq_rel)) continue;
      slot.tid.store(0, std::memory_order_release);
      return WaitEnd::TimedOut;
    }
    if ((mine & kWaiterSleeping) == 0) {
      if (!slot.word.compare_exchange_strong(seen, mine | kWaiterSleeping, std::memory_order_acq_rel)) continue;
      mine |= kWaiterSleeping;
    }
    const std::chrono::nanoseconds nap = deadline.nap(kConditionTick, now);
    shown.begin(&slot.word, detail::WaitOp::Wait);
    const std::uint32_t epoch = detail::sleeper_enter(s_->sleepers);  // counted for `ipckit inspect`
    const bool woken = futex_sleep(slot.word, mine, nap);
    detail::sleeper_leave(s_->sleepers, epoch);
    if (!woken) sweep_dead_notified(*s_);
  }
  // Notified: consume it and free the slot (word first: a free tid means a free word).
  slot.word.store(kWaiterFree, std::memory_order_release);
  slot.tid.store(0, std::memory_order_release);
  return WaitEnd::Notified;
}

bool Condition::sleep_in_overflow(const Enlisted& e, detail::Deadline deadline) noexcept {
  const bool notified = detail::wait_for_change(
      s_->overflow_seq, s_->sleepers, [&] { return s_->overflow_seq.load(std::memory_order_acquire) != e.word; },
      deadline, detail::kConditionTick, [&] { detail::sweep_dead_notified(*s_); });
  s_->overflow.fetch_sub(1, std::memory_order_seq_cst);
  return notified;
}

bool Condition::wait_by(detail::Deadline deadline) {
  const auto& me = detail::this_thread();
  if (!detail::owned_by(*lock_, me))
    detail::raise<NotOwner>(label_, "wait() needs the condition's lock held by this thread",
                            "take it first (std::unique_lock g(condition))");
  // Enlisted before the lock is let go: a notify that comes after the
  // release finds this waiter in the table.
  const Enlisted e = enlist(me);
  const std::uint32_t depth = lock_->depth;
  detail::unlock_owned(*lock_);
  WaitEnd end = WaitEnd::TimedOut;
  if (e.slot >= 0)
    end = sleep_in_slot(e, deadline);
  else
    end = sleep_in_overflow(e, deadline) ? WaitEnd::Notified : WaitEnd::TimedOut;
  // Re-acquire without a deadline, as Python does; a dead holder's lock is
  // taken over and reported through owner_died().
  if (!detail::try_lock_fast(*lock_, me)) detail::lock_slow(*lock_, me, detail::Deadline::never(), reentrant_);
  lock_->depth = depth;
  if (end == WaitEnd::Corrupt)
    detail::raise_corrupt(
        label_, "waiter slot " + std::to_string(e.slot) + " changed into something no waiter or notifier writes");
  return end == WaitEnd::Notified;
}

void Condition::notify_n(std::uint32_t n) noexcept {
  detail::ConditionState& s = *s_;
  // Tickets drawn from here on belong to waiters that came later.
  const std::uint32_t before = s.tickets.load(std::memory_order_acquire);
  const std::uint32_t handed = detail::notify_slots(s, before, n, false);
  if (handed < n && s.overflow.load(std::memory_order_seq_cst) != 0)
    detail::publish_change(s.overflow_seq, s.sleepers, INT_MAX);
}

void Condition::notify(int n) noexcept {
  if (n > 0) notify_n(static_cast<std::uint32_t>(n));
}

void Condition::notify_all() noexcept { notify_n(UINT32_MAX); }

// ------------------------------------------------------------------ opening

namespace {

// The offset of the bound lock is the entry's count, so a process binding
// the name to another lock gets TypeMismatch (0: the condition's own lock).
Condition open_condition(Segment& seg, std::string_view name, detail::LockState* lock, bool reentrant) {
  using detail::SegmentAccess;
  std::uint64_t offset = 0;
  if (lock != nullptr) {
    const auto at = SegmentAccess::offset_of(seg, lock);
    if (!at)
      detail::raise<InvalidArgument>(SegmentAccess::label(seg, ObjectKind::Condition, name),
                                     "its lock must live in the same segment",
                                     "open the lock from '" + seg.name() + "'");
    offset = *at;
  }
  const auto spec = detail::state_spec<detail::ConditionState>(ObjectKind::Condition, "ipckit::Condition",
                                                               detail::kConditionLayout, offset);
  auto* s = static_cast<detail::ConditionState*>(SegmentAccess::find_or_create(seg, name, spec));
  return SegmentAccess::make<Condition>(s, lock != nullptr ? lock : &s->own_lock, reentrant,
                                        SegmentAccess::keepalive(seg), SegmentAccess::label(seg, spec.kind, name));
}

}  // namespace

Condition Segment::condition(std::string_view name) { return open_condition(*this, name, nullptr, false); }

Condition Segment::condition(std::string_view name, const Lock& lock) {
  return open_condition(*this, name, detail::SegmentAccess::state_of(lock), false);
}

Condition Segment::condition(std::string_view name, const RLock& lock) {
  return open_condition(*this, name, detail::SegmentAccess::state_of(lock), true);
}

}  // namespace ipckit
