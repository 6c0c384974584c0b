// Holder tables: claim, count, release and reclaim from the dead.
#include "ipckit/detail/holders.hpp"

namespace ipckit::detail {
namespace {

HolderSlot* find(HolderSlot* slots, std::size_t n, std::uint32_t tid) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (slots[i].tid.load(std::memory_order_acquire) == tid) return &slots[i];
  return nullptr;
}

}  // namespace

int holders_claim(HolderSlot* slots, std::size_t n, const ThreadIdentity& me) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (slots[i].tid.load(std::memory_order_acquire) == me.tid) return static_cast<int>(i);
  for (std::size_t i = 0; i < n; ++i) {
    // Claim with a marker first: until start_ticks is ours, a reclaimer must
    // not judge this holder by the previous holder's start time.
    std::uint32_t free = 0;
    if (slots[i].tid.compare_exchange_strong(free, me.tid | kHolderClaiming, std::memory_order_acq_rel)) {
      slots[i].start_ticks = me.start_ticks;
      slots[i].units = 0;
      slots[i].tid.store(me.tid, std::memory_order_release);
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool holders_add(HolderSlot* slots, std::size_t n, const ThreadIdentity& me, std::uint32_t units) noexcept {
  const int i = holders_claim(slots, n, me);
  if (i < 0) return false;
  slots[i].units += units;
  return true;
}

std::uint32_t holders_count(const HolderSlot* slots, std::size_t n, const ThreadIdentity& me) noexcept {
  for (std::size_t i = 0; i < n; ++i)
    if (slots[i].tid.load(std::memory_order_acquire) == me.tid) return slots[i].units;
  return 0;
}

bool holders_remove(HolderSlot* slots, std::size_t n, const ThreadIdentity& me, std::uint32_t units) noexcept {
  HolderSlot* mine = find(slots, n, me.tid);
  if (mine == nullptr || mine->units < units) return false;
  mine->units -= units;
  if (mine->units == 0) mine->tid.store(0, std::memory_order_release);
  return true;
}

std::uint64_t holders_reclaim(HolderSlot* slots, std::size_t n, const std::uint64_t* busy) noexcept {
  std::uint64_t reclaimed = 0;
  for (std::size_t i = 0; i < n; ++i) {
    HolderSlot& h = slots[i];
    std::uint32_t tid = h.tid.load(std::memory_order_acquire);
    if (tid == 0 || (busy != nullptr && busy[i] != 0)) continue;
    const bool claiming = (tid & kHolderClaiming) != 0;
    if (thread_alive(tid & ~kHolderClaiming, claiming ? 0 : h.start_ticks)) continue;
    // A dead holder's count no longer changes: read it before freeing the
    // slot, since a new holder may claim the slot right after.
    const std::uint32_t units = claiming ? 0 : h.units;
    if (!h.tid.compare_exchange_strong(tid, 0, std::memory_order_acq_rel)) continue;  // another reclaimer won
    reclaimed += units;
  }
  return reclaimed;
}

}  // namespace ipckit::detail
