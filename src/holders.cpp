// Holder tables: find, claim, count, and free the slots of the dead.
#include "holders.hpp"

namespace ipckit::detail {

int holders_find(const HolderSlot* slots, std::size_t n, std::uint32_t tid) noexcept {
  if (tid == 0) return -1;
  for (std::size_t i = 0; i < n; ++i)
    if (slots[i].tid.load(std::memory_order_acquire) == tid) return static_cast<int>(i);
  return -1;
}

std::size_t holders_find_dead(const HolderSlot* slots, std::size_t n, DeadHolder* out) noexcept {
  std::size_t found = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t tid = slots[i].tid.load(std::memory_order_acquire);
    if (tid == 0 || slots[i].units.load(std::memory_order_relaxed) == 0) continue;  // nothing to give back
    // The start time was written before the tid was published; a slot that
    // changes hands meanwhile gives a pair that no longer matches the slot
    // when it is checked again under the lock.
    const std::uint64_t start = slots[i].start_ticks.load(std::memory_order_relaxed);
    if (thread_alive(tid, start)) continue;
    out[found++] = DeadHolder{static_cast<std::uint32_t>(i), tid, start};
  }
  return found;
}

int holders_claim(HolderSlot* slots, std::size_t n, const ThreadIdentity& me) noexcept {
  const int mine = holders_find(slots, n, me.tid);
  if (mine >= 0) return mine;
  int idle = -1;  // a slot holding nothing: its thread may have it back later, but need not
  for (std::size_t i = 0; i < n; ++i) {
    HolderSlot& h = slots[i];
    if (h.tid.load(std::memory_order_relaxed) == 0) {
      idle = static_cast<int>(i);
      break;
    }
    if (idle < 0 && h.units.load(std::memory_order_relaxed) == 0) idle = static_cast<int>(i);
  }
  if (idle < 0) return -1;
  // Fill it, then publish the tid: a reader that sees the tid sees its start time.
  HolderSlot& h = slots[idle];
  h.start_ticks.store(me.start_ticks, std::memory_order_relaxed);
  h.units.store(0, std::memory_order_relaxed);
  h.tid.store(me.tid, std::memory_order_release);
  return idle;
}

std::uint32_t holders_free_dead(HolderSlot* slots, const DeadHolder& dead) noexcept {
  HolderSlot& h = slots[dead.slot];
  if (h.tid.load(std::memory_order_relaxed) != dead.tid ||
      h.start_ticks.load(std::memory_order_relaxed) != dead.start_ticks)
    return 0;
  const std::uint32_t units = h.units.load(std::memory_order_relaxed);
  h.tid.store(0, std::memory_order_release);
  return units;
}

std::uint64_t holders_total(const HolderSlot* slots, std::size_t n) noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (slots[i].tid.load(std::memory_order_relaxed) != 0) total += slots[i].units.load(std::memory_order_relaxed);
  return total;
}

}  // namespace ipckit::detail
