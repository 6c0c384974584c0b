// Lock/RLock slow paths: bounded spinning, futex sleep, dead-owner takeover.
#include "ipckit/lock.hpp"

#include <algorithm>
#include <string>

#include "deadlock.hpp"
#include "ipckit/detail/segment_access.hpp"
#include "ipckit/detail/wait_record.hpp"
#include "ipckit/error.hpp"
#include "wait_source.hpp"

namespace ipckit::detail {
namespace {

// Spinning: about 12 µs in all, well under the ~50 µs it costs here to wake a
// sleeper on the other core. The gaps between looks at the word grow
// exponentially: every look pulls the lock's cache line away from the
// holder, and polling it on every pause made each hand-off pay a transfer
// between cores (measured: 0.5x a pthread mutex; with back-off, 3x).
constexpr int kSpinRounds = 12;
constexpr int kMaxPausesPerRound = 64;

bool cas(LockState& s, std::uint32_t expected, std::uint32_t desired) noexcept {
  return s.word.compare_exchange_strong(expected, desired, std::memory_order_acquire, std::memory_order_relaxed);
}

// Whether thread `tid`, read from the lock's word, lives. The owner records
// its start time right after winning the word; it is used only if it
// belongs to this tid (else the record is still the previous owner's, and
// existence alone is checked).
bool owner_alive(const LockState& s, std::uint32_t tid) noexcept {
  const std::uint64_t start =
      s.owner_tid.load(std::memory_order_acquire) == tid ? s.owner_start.load(std::memory_order_relaxed) : 0;
  return thread_alive(tid, start);
}

// `seen` is the word as last read (owner tid, maybe the waiters bit). If that
// owner is gone, take the lock over and flag it for the new owner.
bool take_over_if_owner_dead(LockState& s, const ThreadIdentity& me, std::uint32_t seen) noexcept {
  if (owner_alive(s, seen & kLockTidMask)) return false;
  if (!cas(s, seen, me.tid | kLockWaiters)) return false;  // someone else moved first
  note_owner(s, me);
  s.owner_died.store(1, std::memory_order_relaxed);
  s.recoveries.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace

void wake_one(LockState& s) noexcept {
  futex_wake(s.word, 1);
  // Orders the unlock's exchange (which saw kLockWaiters, set after
  // `watchers` by an armer) before this look at `watchers`.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if ((s.watchers.load(std::memory_order_seq_cst) & kSleeperAsync) != 0) ring_doorbells(s.word, s.watchers);
}

bool lock_slow(LockState& s, const ThreadIdentity& me, Deadline deadline, bool reentrant, const Label* may_give_up_as) {
  const auto owned_by_me = [&](std::uint32_t v) { return (v & kLockTidMask) == me.tid; };
  if (deadline.passed()) {
    // try_lock: no spinning, no sleeping; only a dead owner's lock is taken.
    const std::uint32_t v = s.word.load(std::memory_order_relaxed);
    if (v == 0) return try_lock_fast(s, me);
    return !owned_by_me(v) && take_over_if_owner_dead(s, me, v);
  }
  for (int i = 0, pauses = 1; i < kSpinRounds; ++i, pauses = std::min(2 * pauses, kMaxPausesPerRound)) {
    std::uint32_t v = s.word.load(std::memory_order_relaxed);
    if (v == 0 && cas(s, 0, me.tid)) {
      note_owner(s, me);
      return true;
    }
    if (owned_by_me(v)) break;
    for (int p = 0; p < pauses; ++p) cpu_relax();
  }
  // Spinning failed: from here the process table shows this thread blocked on the lock.
  WaitScope shown;
  shown.begin(&s.word, may_give_up_as != nullptr ? WaitOp::Lock : WaitOp::Relock);
  const SegmentImpl* detecting = may_give_up_as != nullptr ? shown.detecting() : nullptr;
  auto next_check = std::chrono::steady_clock::time_point::min();  // the first check comes before the first sleep
  for (;;) {
    std::uint32_t v = s.word.load(std::memory_order_relaxed);
    if (v == 0) {
      // We cannot know whether others sleep, so keep the waiters bit: at worst
      // the next unlock makes one needless wake call.
      if (cas(s, 0, me.tid | kLockWaiters)) {
        note_owner(s, me);
        s.acquisitions.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
      continue;
    }
    if (owned_by_me(v) && !reentrant) return false;  // a wait on oneself can only time out
    if ((v & kLockWaiters) == 0) {
      if (!cas(s, v, v | kLockWaiters)) continue;
      v |= kLockWaiters;
    }
    const auto now = std::chrono::steady_clock::now();
    if (deadline.passed(now)) return take_over_if_owner_dead(s, me, v);
    if (detecting != nullptr && now >= next_check) {
      give_up_if_deadlocked(*detecting, s, me, *may_give_up_as);
      next_check = now + kLivenessInterval;
    }
    if (!futex_sleep(s.word, v, deadline.nap(kLivenessInterval, now)) && take_over_if_owner_dead(s, me, v)) return true;
  }
}

}  // namespace ipckit::detail

namespace ipckit::detail {

bool LockHandle::acquire(Deadline deadline, bool reentrant) {
  const auto& me = this_thread();
  if (!reentrant && deadline.is_never() && owned_by(*s_, me))
    raise<DeadlockDetected>(label_, "this thread already holds it, so waiting would never end",
                            "unlock it first or use an RLock");
  return lock_slow(*s_, me, deadline, reentrant, &label_);
}

void LockHandle::acquire_or_throw(Deadline deadline, bool reentrant) {
  const auto& me = this_thread();
  if (try_lock_fast(*s_, me)) return;
  const auto start = std::chrono::steady_clock::now();
  if (lock_slow(*s_, me, deadline, reentrant, &label_)) return;
  std::string who = "nobody (it was just released)";
  if (auto h = holder()) {
    who = h->tid == me.tid ? "this thread itself"
                           : "pid " + std::to_string(h->pid) + " (thread " + std::to_string(h->tid) + ", " +
                                 (h->alive ? "alive" : "dead") + ")";
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  raise<Timeout>(label_,
                 "not acquired by its deadline (waited " + std::to_string(ms.count()) + " ms); it is held by " + who,
                 "look for a lock-order cycle (`ipckit inspect`) or raise the timeout");
}

std::optional<LockHolder> LockHandle::holder() const {
  const std::uint32_t tid = s_->word.load(std::memory_order_acquire) & kLockTidMask;
  if (tid == 0) return std::nullopt;
  LockHolder h;
  h.tid = tid;
  h.alive = owner_alive(*s_, tid);
  h.pid = h.alive ? process_of_thread(tid) : 0;
  return h;
}

WaitHandle LockHandle::wait_handle() const {
  LockState* s = s_;
  // Free, or held by a thread that is gone (try_lock then takes it over).
  return shared_word_handle(
      s->word, s->watchers, ArmKind::Lock,
      [s] {
        const std::uint32_t tid = s->word.load(std::memory_order_acquire) & kLockTidMask;
        return tid == 0 || !owner_alive(*s, tid);
      },
      keep_, label_, "");
}

void LockHandle::mark_consistent() {
  if (!owned_by(*s_, this_thread())) throw_not_owner("mark consistent");
  s_->owner_died.store(0, std::memory_order_relaxed);
}

void LockHandle::throw_not_owner(const char* action) const {
  std::string state = "it is not locked";
  if (auto h = holder())
    state = "it is held by pid " + std::to_string(h->pid) + " (thread " + std::to_string(h->tid) + ")";
  raise<NotOwner>(label_,
                  "cannot " + std::string(action) + " from thread " + std::to_string(this_thread().tid) + ": " + state,
                  "only the holder may unlock it");
}

}  // namespace ipckit::detail

namespace ipckit {

Lock Segment::lock(std::string_view name) {
  const auto spec = detail::state_spec<detail::LockState>(ObjectKind::Lock, "ipckit::Lock", detail::kLockLayout);
  return detail::SegmentAccess::open<Lock, detail::LockState>(*this, name, spec);
}

RLock Segment::rlock(std::string_view name) {
  const auto spec = detail::state_spec<detail::LockState>(ObjectKind::RLock, "ipckit::RLock", detail::kLockLayout);
  return detail::SegmentAccess::open<RLock, detail::LockState>(*this, name, spec);
}

}  // namespace ipckit
