// ipckit/detail/task_ledger.hpp — a JoinableQueue's unfinished tasks, kept
// exact when consumer processes die at any instant.
//
// Unfinished tasks = records ever published − tasks finished. "Finished" is
// not one counter but a sum: `done_extra` plus one finished count per lease.
// A lease belongs to a consumer PROCESS (pid + start time) and packs into one
// 64-bit word what would otherwise need two stores to move a task along:
//
//   bits  0..37  outstanding: tasks this process got and has not marked done
//   bit     38   a get() is in flight (set before the record is freed)
//   bit     39   the parity of the head count that free publishes
//   bits 40..63  finished, modulo 2^24 like every count in the queue
//
// so every step is ONE atomic operation and a process killed between any two
// of them leaves a state the survivors can read:
//   get       mark in flight · free the record (head store) · outstanding+1 and
//             clear the mark (one add)
//   task_done outstanding−1, finished+1 (one CAS)
//   a death   outstanding → finished (one CAS), then added to `abandoned`
//   a late task_done() of a gone consumer's task: `abandoned` − 1 (one CAS;
//             it was counted finished at the death)
// (`abandoned` is the one count kept apart from the tally: a reclaimer killed
// between a death's two steps leaves it short; the totals stay exact, but a
// late task_done() of those tasks is then refused, as if never abandoned.)
// A get() cut short is settled by the next holder of the consumers' lock: the
// head count's parity says whether its free happened. Lease slots change
// owner only under the consumers' lock; a freed slot keeps its finished count
// for the next owner, so nothing is ever folded from one word into another.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "ipckit/detail/thread_id.hpp"

namespace ipckit::detail {

inline constexpr std::size_t kLeaseSlots = 64;  // consumer processes with a lease at once

struct TaskLedger {
  std::atomic<std::uint64_t> done_extra{0};  // task_done()s no lease could be charged with
  std::atomic<std::uint64_t> abandoned{0};   // counted finished at their consumer's death, not yet task_done()
  std::atomic<std::uint32_t> join_seq{0};    // futex: join() sleeps here
  std::atomic<std::uint32_t> join_sleepers{0};
  std::atomic<std::uint32_t> pid[kLeaseSlots] = {};  // lease owner; 0: free
  std::uint64_t start_ticks[kLeaseSlots] = {};
  std::atomic<std::uint64_t> tally[kLeaseSlots] = {};
};

// Consumers' side; call with the consumers' lock held.
// The caller process's lease, claimed if it has none (dead owners' slots are
// reclaimed to make room); -1 when 64 live processes hold one each.
int ledger_lease(TaskLedger& l, const ThreadIdentity& process) noexcept;
// Around the free of a record whose head count becomes `freed_count`.
void ledger_begin_get(TaskLedger& l, int lease, std::uint64_t freed_count) noexcept;
void ledger_end_get(TaskLedger& l, int lease) noexcept;
// After taking the consumers' lock over from a dead holder: settles its get().
void ledger_settle(TaskLedger& l, std::uint64_t head_count) noexcept;
// Counts the outstanding tasks of dead processes finished (and abandoned),
// frees their slots; returns how many tasks that finished.
std::uint64_t ledger_reclaim_dead(TaskLedger& l) noexcept;

// Any process, any time.
// Marks one task finished: one of the caller process's own if it has any,
// else settles an abandoned one (the finished count stays), else one of
// another lease's, else one never leased. False (nothing changed) when
// `published` leaves no unfinished task and none is abandoned.
bool ledger_task_done(TaskLedger& l, const ThreadIdentity& process, std::uint64_t published) noexcept;
std::uint64_t ledger_unfinished(const TaskLedger& l, std::uint64_t published) noexcept;
// The tasks a lease's tally says its process got and has not marked done.
constexpr std::uint64_t ledger_outstanding(std::uint64_t tally) noexcept {
  return tally & ((std::uint64_t{1} << 38) - 1);
}

}  // namespace ipckit::detail
