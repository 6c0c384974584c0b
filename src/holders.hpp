// holders.hpp — who holds what, so that a dead holder's share can be given
// back: a tracked semaphore's units. The slots' layout is HolderSlot
// (detail/semaphore_state.hpp); these are the operations on a table of them.
//
// A slot belongs to one thread (tid + start time) and counts the units it
// holds. A thread keeps its slot when its count drops to 0, so that its next
// acquire finds it at once; such idle slots are handed to other threads
// when no slot is free. Slots change only under their table's lock (the owner of the
// table keeps its other books, e.g. the semaphore's count, under the same
// lock), and every change is a single store, so a process killed at any
// instant leaves each slot whole: either as it was or as it was meant to be.
// Anyone may read slots without the lock (a snapshot), which is how dead
// holders are looked for before the lock is taken to free their slots.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ipckit/detail/semaphore_state.hpp"
#include "ipckit/detail/thread_id.hpp"

namespace ipckit::detail {

// A holder found dead by a look without the lock: the slot and whom it held.
struct DeadHolder {
  std::uint32_t slot = 0;
  std::uint32_t tid = 0;
  std::uint64_t start_ticks = 0;
};

// Any time, without the lock.
// The slot of thread `tid`, or -1.
int holders_find(const HolderSlot* slots, std::size_t n, std::uint32_t tid) noexcept;
// Fills `out` (room for n) with the slots holding units whose thread is
// gone; returns how many. Reads /proc for every slot holding units.
std::size_t holders_find_dead(const HolderSlot* slots, std::size_t n, DeadHolder* out) noexcept;

// With the table's lock held.
// The caller's slot, claimed (with 0 units) if it has none: a free slot, else
// an idle one (0 units) of another thread; -1 when every slot holds units.
int holders_claim(HolderSlot* slots, std::size_t n, const ThreadIdentity& me) noexcept;
// Frees `slot` if it still belongs to the dead holder `dead` (same thread,
// same start time: a dead thread's identity never comes back); returns the
// units it held (0 when the slot moved on meanwhile).
std::uint32_t holders_free_dead(HolderSlot* slots, const DeadHolder& dead) noexcept;
// The units recorded in all claimed slots, live holders' and dead ones'.
std::uint64_t holders_total(const HolderSlot* slots, std::size_t n) noexcept;

}  // namespace ipckit::detail
