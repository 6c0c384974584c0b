// ipckit/detail/condition_state.hpp — the shared-memory layout of Condition:
// its own lock and the waiter table, and the protocol on them.
//
// A bare "notification counter" cannot count: every waiter that sees it move
// leaves, so notify(1) woke them all. Here every waiter owns a slot for the
// length of one wait, and a notification is handed to one slot by CAS:
//
//  - A waiter, holding the condition's lock, draws a ticket (`tickets`, a
//    29-bit counter), claims a free slot (CAS of its tid on `tid`), records
//    its start time and publishes WAITING|ticket in `word`; then it releases
//    the lock, spins on `word`, then sleeps on it (a FUTEX_WAIT on its own
//    slot; it sets kSleeping first so that a notifier without sleepers to
//    wake makes no system call).
//  - notify(n) snapshots `tickets` (T) and moves the n WAITING slots with the
//    oldest tickets before T to NOTIFIED|T, each by one CAS, waking the ones
//    marked kSleeping. A waiter that began after the call has a ticket >= T
//    and is never chosen; the notifier needs the lock for nothing.
//  - A waiter whose time runs out withdraws with one CAS of its WAITING word
//    to FREE. Exactly one of the two CASes wins: the waiter either withdrew
//    (returns false, and no notification was spent on it) or was notified
//    (returns true). Nothing else is counted, so nothing can drift.
//  - A waiter that saw NOTIFIED frees its slot (word, then tid) and returns.
//
// Dead waiters. A slot whose owner died keeps its word. A dead WAITING slot
// is harmless until chosen; a dead NOTIFIED slot holds a notification nobody
// will consume. Sleeping waiters wake every tick (50 ms); at most one of
// them per sweep interval (50 ms) looks at the NOTIFIED slots, and hands the
// notification of each whose owner is dead (tid + start time, /proc) to the
// oldest live waiter that was waiting when it was sent (ticket before the T
// stored in the word), reclaiming dead WAITING slots it meets on the way. So
// a killed waiter delays one notification by at most ~2 ticks and swallows
// none; with no live waiter left that was waiting then, it is dropped, as a
// notification to nobody is. Slots of the dead that nobody notifies (and the
// rare slot left by a thread killed between its claim and its publication)
// are reclaimed when a waiter finds the table full.
//
// Overflow. Beyond kConditionSlots simultaneous waiters the extra ones wait
// the old way, on `overflow_seq`, which every notify bumps while any exist:
// they may wake on a notification meant for a slot waiter (a spurious
// wake-up, reported as true, as a consumed one), but never miss one.
//
// Corruption. `high` (slots in use are below it) is the one shared value
// that indexes memory: a waiter throws CorruptSegment when it is out of
// range, a notifier (noexcept) clamps it. A waiter whose word turns into
// something it cannot have become throws CorruptSegment (after retaking the
// lock) and leaves the slot alone.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipckit/detail/lock_state.hpp"

namespace ipckit::detail {

// Checked whenever a process opens a condition: change it with the layout.
// 2: the waiter table (notify(n) wakes n).
inline constexpr std::uint32_t kConditionLayout = 2;

inline constexpr std::uint32_t kConditionSlots = 256;

// Slot word: status in bits 0-1, kSleeping in bit 2, a 29-bit ticket above.
// WAITING carries the waiter's ticket, NOTIFIED the notifier's snapshot T.
inline constexpr std::uint32_t kWaiterFree = 0;
inline constexpr std::uint32_t kWaiterWaiting = 1;
inline constexpr std::uint32_t kWaiterNotified = 2;
inline constexpr std::uint32_t kWaiterStatus = 3;
inline constexpr std::uint32_t kWaiterSleeping = 4;
inline constexpr unsigned kTicketShift = 3;
inline constexpr std::uint32_t kTicketMask = (1u << (32 - kTicketShift)) - 1;
inline constexpr std::uint32_t kWaiterClaiming = 0x8000'0000u;  // tid | this: slot being filled

struct ConditionSlot {
  std::atomic<std::uint32_t> word{0};         // futex of its waiter
  std::atomic<std::uint32_t> tid{0};          // owner; 0: free
  std::atomic<std::uint64_t> start_ticks{0};  // owner's thread start time
};
static_assert(sizeof(ConditionSlot) == 16);

inline constexpr std::uint32_t slot_word(std::uint32_t ticket, std::uint32_t status) noexcept {
  return ((ticket & kTicketMask) << kTicketShift) | status;
}
inline constexpr std::uint32_t slot_ticket(std::uint32_t word) noexcept { return word >> kTicketShift; }
inline constexpr std::uint32_t slot_status(std::uint32_t word) noexcept { return word & kWaiterStatus; }
// How long ago, in tickets, `ticket` was drawn when `now` is the next one;
// 0 (not before `now`) for tickets drawn at or after it.
inline constexpr std::uint32_t ticket_age(std::uint32_t ticket, std::uint32_t now) noexcept {
  const std::uint32_t age = (now - ticket) & kTicketMask;
  return age < (kTicketMask >> 1) ? age : 0;
}

struct alignas(64) ConditionState {
  LockState own_lock;                          // used when not bound to a named lock
  std::atomic<std::uint32_t> overflow_seq{0};  // futex of overflow waiters: bumped by notify
  std::atomic<std::uint32_t> sleepers{0};      // waiters asleep (slot or overflow), for `ipckit inspect`
  std::atomic<std::uint64_t> bound_lock{0};    // offset of the named lock it is bound to (0: own)
  std::atomic<std::uint32_t> tickets{0};       // next ticket; drawn under the condition's lock
  std::atomic<std::uint32_t> high{0};          // slots [0, high) may be in use
  std::atomic<std::uint32_t> overflow{0};      // waiters without a slot
  std::atomic<std::uint32_t> reserved{0};
  std::atomic<std::int64_t> last_sweep{0};  // steady clock (ns) of the last sweep
  ConditionSlot slot[kConditionSlots];
};

}  // namespace ipckit::detail
