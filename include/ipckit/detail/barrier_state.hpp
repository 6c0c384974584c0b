// ipckit/detail/barrier_state.hpp — the shared-memory layout of Barrier.
//
// Arrivals are counted under `lock`; waiters sleep on `wake`, bumped on every
// change. Each process that took part is recorded in `party` (pid + start
// time) so that the others can tell when one died.
#pragma once

#include <atomic>
#include <cstdint>

#include "ipckit/detail/lock_state.hpp"

namespace ipckit::detail {

// Checked whenever a process opens a barrier: change it with the layout.
// Layout 2: rounds are sealed by their last arrival.
inline constexpr std::uint32_t kBarrierLayout = 2;

inline constexpr std::uint32_t kBarrierMaxParties = 256;
// Why a round broke, as `broken` records it: numbered from 0 in this order
// (the numbers are in shared memory: a new reason goes last). ActionFailed:
// the action threw; ActionDied: the last arrival died before releasing the
// round (in its action).
enum class BreakReason : std::uint32_t { None, Timeout, Aborted, PartyDied, DiedInWait, ActionFailed, ActionDied };
struct BarrierParty {
  std::int32_t pid = 0;          // 0: free slot
  std::uint32_t last_round = 0;  // round in which it last arrived
  std::uint64_t start_ticks = 0;
};
// A round is one use of the barrier: it ends when the last party arrives, or
// broken (timeout, abort, dead party, failed action: `broken` set) and then
// reset().
//
// Sealing. Breaking without the lock (a CAS of `broken` from 0) must not
// race with the last arrival completing the round, or some parties of one
// round would pass and others be broken. So the last arrival, under the
// lock, counts itself (`arrived` == parties), runs the action if it has one,
// and then CASes `broken` from 0 to kBarrierSealed | round: if that fails
// the round was broken first (during the action, say) and it throws like the
// others; if it succeeds no break can land until the round is over (round
// advanced, then `broken` back to 0). The action thus runs before the seal:
// a wait timing out meanwhile can still break the round for everyone, which
// keeps its deadline without releasing anyone before the action is done. A
// sealed `broken` is not a broken barrier. Whoever takes the lock over from
// a process killed with it held repairs the round: it finishes a sealed one
// (the sealed round number says whether `round` was already advanced), and
// breaks an unsealed one (ActionDied if every party had arrived: the action
// was running, else DiedInWait).
inline constexpr std::uint32_t kBarrierSealed = 0x8000'0000u;
inline constexpr bool barrier_broken(std::uint32_t broken) noexcept {
  return broken != 0 && (broken & kBarrierSealed) == 0;
}
struct alignas(64) BarrierState {
  LockState lock;  // guards arrived, party[] and round changes
  std::uint32_t parties = 0;
  std::uint32_t arrived = 0;                   // in the current round
  std::atomic<std::uint32_t> round{0};         // rounds ended so far
  std::atomic<std::uint32_t> broken{0};        // the current round is broken: a BreakReason (or sealed)
  std::atomic<std::uint32_t> broken_round{0};  // 1 + the last round that ended broken (0: none)
  std::atomic<std::uint32_t> wake{0};          // futex word: bumped on every change above
  std::atomic<std::uint32_t> sleepers{0};
  BarrierParty party[kBarrierMaxParties];
};

}  // namespace ipckit::detail
